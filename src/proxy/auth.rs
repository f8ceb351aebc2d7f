//! Authentication of the client request: SigV4 in the Authorization header
//! or in a presigned query, checked against the keystore.

use std::collections::HashMap;

use osp_core::s3::S3Error;
use osp_core::secret::SecretKey;
use osp_core::sigv4::{self, PayloadMode, RequestView, SigV4Error, VerifiedRequest};
use time::OffsetDateTime;

/// Who sent a request and how its payload is to be checked.
#[derive(Debug)]
pub struct Authenticated {
    /// The access key the client signed with; None only when signature
    /// validation is skipped and the request carried no signature.
    pub access_key: Option<String>,
    pub payload: PayloadMode,
    /// Present when the signature was verified; chunk signatures chain from it.
    pub verified: Option<VerifiedRequest>,
}

/// Verifies the request's signature with the secret of the access key it
/// names. With `skip_verification`, the access key and payload mode are still
/// read but nothing is verified.
pub fn authenticate(
    request: &RequestView<'_>,
    keystore: &HashMap<String, SecretKey>,
    skip_verification: bool,
) -> Result<Authenticated, S3Error> {
    let claims = match sigv4::parse_auth(request) {
        Ok(claims) => claims,
        Err(SigV4Error::SigV2) => {
            return Err(S3Error::invalid_request(
                "Signature Version 2 is not supported by this proxy yet; sign requests with AWS Signature Version 4",
            ))
        }
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
        return Err(S3Error::access_denied(
            "Anonymous requests are not allowed; sign the request with an access key from the keystore",
        ));
    };
    let secret = keystore
        .get(&claims.access_key)
        .ok_or_else(S3Error::invalid_access_key_id)?;
    let verified = sigv4::verify(request, &claims, secret, OffsetDateTime::now_utc())?;
    Ok(Authenticated {
        access_key: Some(claims.access_key),
        payload: verified.payload.clone(),
        verified: Some(verified),
    })
}

/// The payload mode of an unverified request: what x-amz-content-sha256 says,
/// or an unsigned payload when it is absent or invalid.
fn payload_without_verification(request: &RequestView<'_>) -> PayloadMode {
    request
        .headers
        .get("x-amz-content-sha256")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| PayloadMode::parse(value).ok())
        .unwrap_or(PayloadMode::Unsigned)
}
