//! IBM Cloud IAM: API keys exchanged for bearer tokens, which IBM Cloud
//! Object Storage accepts instead of a SigV4 signature.
//!
//! Tokens are cached per API key and refreshed once their remaining lifetime
//! drops below `refresh_margin` of their lifetime; concurrent requests share
//! one exchange. IAM being unreachable or failing (5xx) is not remembered, so
//! the next request tries again. IAM rejecting a key (4xx) is remembered for
//! `REJECTION_MEMORY`, so clients retrying in a loop do not hammer IAM.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use moka::future::Cache;
use moka::Expiry;
use osp_core::config::IamEndpoint;
use osp_core::s3::S3Error;
use osp_core::secret::SecretKey;
use osp_core::sigv4::sha256_hex;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

use super::route::Resolver;
use super::tls::BackendTrust;

/// Refresh a token once less than this much of its life is left, or a fifth
/// of its lifetime for short-lived tokens, whichever is smaller.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long IAM's rejection of an API key is reused before asking again.
pub const REJECTION_MEMORY: Duration = Duration::from_secs(5);
/// Time allowed for one token exchange, connection included.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(10);
/// Max size of an IAM token response.
const MAX_RESPONSE_SIZE: usize = 64 * 1024;
/// Max API keys with a cached token.
const CACHE_CAPACITY: u64 = 10_000;

/// The reason no token was obtained.
#[derive(Debug, Clone)]
pub enum IamError {
    /// IAM could not be reached, timed out, or returned 5xx, so a retry may work.
    Unavailable {
        status: Option<u16>,
        transaction_id: Option<String>,
        detail: String,
    },
    /// IAM rejected the API key (4xx) or returned a response without a usable token.
    Rejected {
        status: u16,
        transaction_id: Option<String>,
        detail: String,
    },
}

impl IamError {
    pub fn to_s3_error(&self) -> S3Error {
        match self {
            Self::Unavailable { .. } => {
                S3Error::service_unavailable("IBM Cloud IAM is unavailable; retry the request")
            }
            Self::Rejected { .. } => {
                S3Error::internal("IBM Cloud IAM did not issue a token for the bucket's API key")
            }
        }
    }

    /// Logs the failure with IAM's status and transaction id; never the key
    /// or a token.
    pub fn log(&self, request_id: &str) {
        match self {
            Self::Unavailable {
                status,
                transaction_id,
                detail,
            } => tracing::warn!(
                request_id,
                iam_status = ?status,
                iam_transaction_id = transaction_id.as_deref().unwrap_or("-"),
                detail = detail.as_str(),
                "IBM Cloud IAM token exchange failed"
            ),
            Self::Rejected {
                status,
                transaction_id,
                detail,
            } => tracing::error!(
                request_id,
                iam_status = status,
                iam_transaction_id = transaction_id.as_deref().unwrap_or("-"),
                detail = detail.as_str(),
                "IBM Cloud IAM rejected the API key"
            ),
        }
    }
}

#[derive(Clone)]
struct Token {
    value: SecretKey,
    /// How long the token stays in the cache: its lifetime minus the margin.
    reuse_for: Duration,
}

struct TokenExpiry;

impl Expiry<String, Token> for TokenExpiry {
    fn expire_after_create(
        &self,
        _key: &String,
        token: &Token,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(token.reuse_for)
    }
}

/// Returns how long a token that lives `lifetime` can be reused before it is
/// refreshed.
pub fn reuse_duration(lifetime: Duration) -> Duration {
    let margin = MAX_REFRESH_MARGIN.min(lifetime / 5);
    lifetime.saturating_sub(margin)
}

pub struct IamClient {
    endpoint: IamEndpoint,
    verify: bool,
    /// The server's `caCert`, which replaces the platform store for IAM too.
    pub trust: Option<BackendTrust>,
    connector: Connector,
    tokens: Cache<String, Token>,
    rejections: Cache<String, IamError>,
}

impl IamClient {
    pub fn new(endpoint: IamEndpoint, verify: bool) -> Self {
        Self {
            endpoint,
            verify,
            trust: None,
            connector: Connector::new(None),
            tokens: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(TokenExpiry)
                .build(),
            rejections: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(REJECTION_MEMORY)
                .build(),
        }
    }

    /// Returns a bearer token for `api_key`, from the cache or a new exchange.
    pub async fn token(
        &self,
        api_key: &SecretKey,
        resolver: &Resolver,
    ) -> Result<SecretKey, IamError> {
        // Cache keys are hashes, so the API keys themselves are not kept twice.
        let key = sha256_hex(api_key.expose().as_bytes());
        if let Some(rejection) = self.rejections.get(&key).await {
            return Err(rejection);
        }
        let result = self
            .tokens
            .try_get_with(key.clone(), async {
                let (value, lifetime) = self.exchange(api_key, resolver).await?;
                Ok::<_, IamError>(Token {
                    value,
                    reuse_for: reuse_duration(lifetime),
                })
            })
            .await;
        match result {
            Ok(token) => Ok(token.value),
            Err(error) => {
                let error = (*error).clone();
                if matches!(error, IamError::Rejected { .. }) {
                    self.rejections.insert(key, error.clone()).await;
                }
                Err(error)
            }
        }
    }

    /// POSTs the API key to `{endpoint}/identity/token` and returns the
    /// access token with its lifetime.
    async fn exchange(
        &self,
        api_key: &SecretKey,
        resolver: &Resolver,
    ) -> Result<(SecretKey, Duration), IamError> {
        let unavailable = |detail: String| IamError::Unavailable {
            status: None,
            transaction_id: None,
            detail,
        };
        let exchange = async {
            let address = resolver
                .resolve(&self.endpoint.host, self.endpoint.port)
                .await
                .map_err(|error| unavailable(error.message))?;
            let (status, transaction_id, body) = self
                .post_form(address, api_key)
                .await
                .map_err(unavailable)?;
            parse_token_response(status, transaction_id, &body)
        };
        tokio::time::timeout(EXCHANGE_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                unavailable(format!("no answer within {} s", EXCHANGE_TIMEOUT.as_secs()))
            })?
    }

    async fn post_form(
        &self,
        address: SocketAddr,
        api_key: &SecretKey,
    ) -> Result<(u16, Option<String>, Bytes), String> {
        let endpoint = &self.endpoint;
        let sni = if endpoint.tls {
            endpoint.host.clone()
        } else {
            String::new()
        };
        let mut peer = HttpPeer::new(address, endpoint.tls, sni);
        peer.options.verify_cert = self.verify;
        peer.options.verify_hostname = self.verify;
        peer.options.connection_timeout = Some(EXCHANGE_TIMEOUT);
        if let Some(trust) = &self.trust {
            peer.options.ca = Some(trust.roots.clone());
            peer.group_key = trust.group_key;
        }

        let body = format!(
            "grant_type=urn%3Aibm%3Aparams%3Aoauth%3Agrant-type%3Aapikey&apikey={}",
            utf8_percent_encode(api_key.expose(), NON_ALPHANUMERIC)
        );
        let path = format!("{}/identity/token", endpoint.base_path);
        let mut request = RequestHeader::build("POST", path.as_bytes(), None)
            .map_err(|error| error.to_string())?;
        let default_port = if endpoint.tls { 443 } else { 80 };
        let host = if endpoint.port == default_port {
            endpoint.host.clone()
        } else {
            format!("{}:{}", endpoint.host, endpoint.port)
        };
        for (name, value) in [
            ("host", host),
            (
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("accept", "application/json".to_string()),
            ("content-length", body.len().to_string()),
        ] {
            request
                .insert_header(name, value)
                .map_err(|error| error.to_string())?;
        }

        let (mut session, _reused) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|error| format!("could not connect: {error}"))?;
        session
            .write_request_header(Box::new(request))
            .await
            .map_err(|error| error.to_string())?;
        session
            .write_request_body(Bytes::from(body), true)
            .await
            .map_err(|error| error.to_string())?;
        session
            .finish_request_body()
            .await
            .map_err(|error| error.to_string())?;
        session
            .read_response_header()
            .await
            .map_err(|error| error.to_string())?;
        let (status, transaction_id) = {
            let response = session.response_header().ok_or("no response header")?;
            let transaction_id = response
                .headers
                .get("transaction-id")
                .and_then(|value| value.to_str().ok())
                .map(str::to_string);
            (response.status.as_u16(), transaction_id)
        };
        let mut received = BytesMut::new();
        while let Some(piece) = session
            .read_response_body()
            .await
            .map_err(|error| error.to_string())?
        {
            if received.len() + piece.len() > MAX_RESPONSE_SIZE {
                return Err(format!("response larger than {MAX_RESPONSE_SIZE} bytes"));
            }
            received.extend_from_slice(&piece);
        }
        self.connector
            .release_http_session(session, &peer, Some(Duration::from_secs(60)))
            .await;
        Ok((status, transaction_id, received.freeze()))
    }
}

/// Reads IAM's response: `access_token` and `expires_in` (seconds) from a 200
/// JSON body; any 5xx is a failure worth retrying, anything else a rejection.
fn parse_token_response(
    status: u16,
    transaction_id: Option<String>,
    body: &[u8],
) -> Result<(SecretKey, Duration), IamError> {
    if status >= 500 {
        return Err(IamError::Unavailable {
            status: Some(status),
            transaction_id,
            detail: "server error".into(),
        });
    }
    if status != 200 {
        let detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|json| {
                json.get("errorCode")
                    .and_then(|code| code.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "request rejected".to_string());
        return Err(IamError::Rejected {
            status,
            transaction_id,
            detail,
        });
    }
    let rejected = |detail: &str| IamError::Rejected {
        status,
        transaction_id: transaction_id.clone(),
        detail: detail.to_string(),
    };
    let json: serde_json::Value =
        serde_json::from_slice(body).map_err(|_| rejected("the response is not JSON"))?;
    let token = json
        .get("access_token")
        .and_then(|token| token.as_str())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| rejected("the response has no access_token"))?;
    let lifetime = json
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| rejected("the response has no expires_in"))?;
    Ok((SecretKey::new(token), Duration::from_secs(lifetime)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_tokens_refresh_at_four_fifths() {
        assert_eq!(
            reuse_duration(Duration::from_secs(10)),
            Duration::from_secs(8)
        );
    }

    #[test]
    fn long_tokens_refresh_five_minutes_early() {
        assert_eq!(
            reuse_duration(Duration::from_secs(3600)),
            Duration::from_secs(3300)
        );
    }

    #[test]
    fn token_response_parsed() {
        let body = br#"{"access_token":"eyJ","refresh_token":"not_supported","token_type":"Bearer","expires_in":3600,"expiration":1700003600}"#;
        let (token, lifetime) = parse_token_response(200, None, body).unwrap();
        assert_eq!(token.expose(), "eyJ");
        assert_eq!(lifetime, Duration::from_secs(3600));
    }

    #[test]
    fn client_errors_are_rejections() {
        let body =
            br#"{"errorCode":"BXNIM0415E","errorMessage":"Provided API key could not be found."}"#;
        let error = parse_token_response(400, Some("tx-1".into()), body).unwrap_err();
        assert!(
            matches!(error, IamError::Rejected { status: 400, ref detail, .. } if detail == "BXNIM0415E")
        );
    }

    #[test]
    fn server_errors_are_retryable() {
        let error = parse_token_response(503, None, b"").unwrap_err();
        assert!(matches!(
            error,
            IamError::Unavailable {
                status: Some(503),
                ..
            }
        ));
    }
}
