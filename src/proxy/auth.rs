//! Authentication of the client request: SigV4 or SigV2 in the
//! Authorization header or in a presigned query, checked against the
//! keystore, then `hmacFetcher`.

use std::collections::HashMap;

use osp_core::s3::request::Addressing;
use osp_core::s3::{resolve_target, S3Error};
use osp_core::secret::SecretKey;
use osp_core::sigv2::{self, SigV2Error};
use osp_core::sigv4::{self, PayloadMode, RequestView, SigV4Error, VerifiedRequest};
use time::OffsetDateTime;

use super::decisions::Decisions;
use super::hooks::HookError;

/// The sender of a request and the check its payload needs.
#[derive(Debug)]
pub struct Authenticated {
    /// The access key the client signed with; None only when signature
    /// validation is skipped and the request carried no signature.
    pub access_key: Option<String>,
    pub payload: PayloadMode,
    /// Present when the signature was verified; chunk signatures chain from it.
    pub verified: Option<VerifiedRequest>,
}

/// The reason a request is not served: an S3 error for the client, or a
/// failed callback, which gets 500 or 503 and is logged with its name.
#[derive(Debug)]
pub enum Rejection {
    S3(S3Error),
    Hook(HookError),
}

impl Rejection {
    /// Returns the error answered to the client. A failed callback is logged
    /// here, once, with its name and the request id.
    pub fn into_s3_error(self, request_id: &str) -> S3Error {
        match self {
            Self::S3(error) => {
                tracing::debug!(request_id, code = error.code, message = %error.message, "request rejected");
                error
            }
            Self::Hook(error) => {
                tracing::error!(request_id, hook = error.hook(), %error, "callback failed");
                error.to_s3_error()
            }
        }
    }
}

impl From<S3Error> for Rejection {
    fn from(error: S3Error) -> Self {
        Self::S3(error)
    }
}

impl From<HookError> for Rejection {
    fn from(error: HookError) -> Self {
        Self::Hook(error)
    }
}

impl From<SigV4Error> for Rejection {
    fn from(error: SigV4Error) -> Self {
        Self::S3(error.into())
    }
}

impl From<SigV2Error> for Rejection {
    fn from(error: SigV2Error) -> Self {
        Self::S3(error.into())
    }
}

/// The error returned to a SigV2 request when `allowSigV2` is false.
const SIG_V2_TURNED_OFF: &str = "The authorization mechanism you have provided (AWS Signature Version 2) is turned off on this proxy. Please use AWS4-HMAC-SHA256.";

/// Verifies the request's signature with the secret of the access key it
/// names. With `skip_verification`, the access key and payload mode are still
/// read but nothing is verified. SigV2 requests are verified when
/// `allow_sig_v2` is set and get 400 InvalidRequest otherwise. SigV2 signs
/// the bucket, which `virtual_host_domains` locates in the Host header.
pub async fn authenticate(
    request: &RequestView<'_>,
    keystore: &HashMap<String, SecretKey>,
    decisions: &Decisions,
    skip_verification: bool,
    allow_sig_v2: bool,
    virtual_host_domains: &[String],
) -> Result<Authenticated, Rejection> {
    let claims = match sigv4::parse_auth(request) {
        Ok(claims) => claims,
        Err(SigV4Error::SigV2) if allow_sig_v2 => {
            let bucket = virtual_host_bucket(request, virtual_host_domains);
            return authenticate_v2(
                request,
                bucket.as_deref(),
                keystore,
                decisions,
                skip_verification,
            )
            .await;
        }
        Err(SigV4Error::SigV2) => return Err(S3Error::invalid_request(SIG_V2_TURNED_OFF).into()),
        Err(error) if skip_verification => {
            tracing::debug!(%error, "ignoring malformed signature because signature validation is skipped");
            None
        }
        Err(error) => return Err(error.into()),
    };
    if skip_verification {
        return Ok(Authenticated {
            access_key: claims.map(|claims| claims.access_key),
            payload: payload_without_verification(request),
            verified: None,
        });
    }
    let Some(claims) = claims else {
        return Err(anonymous_denied());
    };
    let secret = secret_for(&claims.access_key, keystore, decisions).await?;
    let verified = sigv4::verify(request, &claims, &secret, OffsetDateTime::now_utc())?;
    Ok(Authenticated {
        access_key: Some(claims.access_key),
        payload: verified.payload.clone(),
        verified: Some(verified),
    })
}

/// Verifies a SigV2 request. SigV2 does not sign the body, so the payload is
/// unsigned: the backend request is signed UNSIGNED-PAYLOAD, and a
/// Content-MD5 header, which the signature covers, reaches the backend
/// unchanged for it to check.
async fn authenticate_v2(
    request: &RequestView<'_>,
    virtual_host_bucket: Option<&str>,
    keystore: &HashMap<String, SecretKey>,
    decisions: &Decisions,
    skip_verification: bool,
) -> Result<Authenticated, Rejection> {
    let claims = match sigv2::parse_auth_v2(request, virtual_host_bucket) {
        Ok(claims) => claims,
        Err(error) if skip_verification => {
            tracing::debug!(%error, "ignoring malformed signature because signature validation is skipped");
            None
        }
        Err(error) => return Err(error.into()),
    };
    if skip_verification {
        return Ok(Authenticated {
            access_key: claims.map(|claims| claims.access_key),
            payload: PayloadMode::Unsigned,
            verified: None,
        });
    }
    let Some(claims) = claims else {
        return Err(anonymous_denied());
    };
    let secret = secret_for(&claims.access_key, keystore, decisions).await?;
    sigv2::verify_v2(request, &claims, &secret, OffsetDateTime::now_utc())?;
    Ok(Authenticated {
        access_key: Some(claims.access_key),
        payload: PayloadMode::Unsigned,
        verified: None,
    })
}

/// Looks up the secret of `access_key` in the keystore, else through `hmacFetcher`.
async fn secret_for(
    access_key: &str,
    keystore: &HashMap<String, SecretKey>,
    decisions: &Decisions,
) -> Result<SecretKey, Rejection> {
    match keystore.get(access_key) {
        Some(secret) => Ok(secret.clone()),
        None => Ok(decisions
            .secret(access_key)
            .await?
            .ok_or_else(S3Error::invalid_access_key_id)?),
    }
}

fn anonymous_denied() -> Rejection {
    S3Error::access_denied(
        "Anonymous requests are not allowed; sign the request with an access key from the keystore",
    )
    .into()
}

/// Returns the bucket named by the Host header (or the HTTP/2 `:authority`)
/// of a virtual-host style request. SigV2 signs it in front of the path.
fn virtual_host_bucket(request: &RequestView<'_>, domains: &[String]) -> Option<String> {
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .or(request.authority);
    let target = resolve_target(request.raw_path, host, domains).ok()?;
    match target.addressing {
        Addressing::VirtualHost => target.bucket,
        Addressing::Path => None,
    }
}

/// Returns the payload mode of an unverified request: the x-amz-content-sha256
/// value, or an unsigned payload when it is absent or invalid.
fn payload_without_verification(request: &RequestView<'_>) -> PayloadMode {
    request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| PayloadMode::parse(value).ok())
        .unwrap_or(PayloadMode::Unsigned)
}
