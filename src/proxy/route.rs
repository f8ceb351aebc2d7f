//! Request routing: the backend of a bucket, the path and query sent there,
//! and the backend connection (`HttpPeer`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use moka::future::Cache;
use osp_core::config::{AddressingStyle, BucketConfig, HmacCredentials};
use osp_core::s3::S3Error;
use osp_core::secret::SecretKey;
use pingora::upstreams::peer::HttpPeer;

use super::tls::BackendTrust;

/// How long a backend host's resolved addresses are reused.
const DNS_CACHE_TTL: Duration = Duration::from_secs(30);
/// Max backend hosts whose addresses are cached at once.
const DNS_CACHE_CAPACITY: u64 = 1024;
/// Time allowed for the TCP (and TLS) connection to a backend.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an idle backend connection stays in the pool for reuse.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// The authorization of a backend request.
#[derive(Debug, Clone)]
pub enum BackendAuth {
    /// Signed with SigV4 and these credentials.
    Sign(HmacCredentials),
    /// `Authorization: Bearer` with an IBM Cloud IAM token.
    Bearer(SecretKey),
}

/// The backend a request is forwarded to.
#[derive(Debug, Clone)]
pub struct Route {
    pub bucket_name: String,
    pub bucket: Arc<BucketConfig>,
    /// The authorization of the backend request.
    pub auth: BackendAuth,
    /// The path sent to the backend, already encoded as signed.
    pub path: String,
    /// The query sent to the backend, without presigned-URL parameters.
    pub query: String,
}

impl Route {
    /// Builds the route of a request for `bucket_name` whose key path is
    /// `encoded_key_path` (`/` plus the encoded key, or `/` alone).
    pub fn new(
        bucket_name: &str,
        bucket: Arc<BucketConfig>,
        auth: BackendAuth,
        encoded_key_path: &str,
        raw_query: &str,
    ) -> Self {
        let path = match bucket.addressing {
            AddressingStyle::Virtual => encoded_key_path.to_string(),
            AddressingStyle::Path if encoded_key_path == "/" => format!("/{bucket_name}"),
            AddressingStyle::Path => format!("/{bucket_name}{encoded_key_path}"),
        };
        Self {
            bucket_name: bucket_name.to_string(),
            path,
            query: forwarded_query(raw_query),
            bucket,
            auth,
        }
    }

    /// Returns the host name the backend request is addressed and signed for.
    pub fn host(&self) -> String {
        match self.bucket.addressing {
            AddressingStyle::Virtual => format!("{}.{}", self.bucket_name, self.bucket.host),
            AddressingStyle::Path => self.bucket.host.clone(),
        }
    }

    /// Returns the Host header value: the host name, plus the port unless it is
    /// the scheme's default.
    pub fn host_header(&self) -> String {
        let default_port = if self.bucket.tls { 443 } else { 80 };
        if self.bucket.port == default_port {
            self.host()
        } else {
            format!("{}:{}", self.host(), self.bucket.port)
        }
    }

    /// Path and query as written on the request line.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }
}

/// Drops the parameters of a client's presigned URL (`X-Amz-Signature`,
/// `X-Amz-Credential`, ...): the backend request is signed in headers with
/// the backend's own key. Every other parameter is kept as received.
pub fn forwarded_query(raw_query: &str) -> String {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or_default();
            !is_presign_parameter(name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// True for the auth parameters of a presigned URL: SigV4's `X-Amz-*` ones
/// in any letter case, and SigV2's `AWSAccessKeyId`, `Expires` and
/// `Signature` in the exact case that makes them auth parameters.
pub fn is_presign_parameter(name: &str) -> bool {
    const PARAMETERS: [&str; 7] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Security-Token",
    ];
    const SIG_V2_PARAMETERS: [&str; 3] = ["AWSAccessKeyId", "Expires", "Signature"];
    PARAMETERS
        .iter()
        .any(|parameter| parameter.eq_ignore_ascii_case(name))
        || SIG_V2_PARAMETERS.contains(&name)
}

/// Resolves backend host names without blocking a worker thread, caching the
/// results briefly.
pub struct Resolver {
    cache: Cache<(String, u16), Arc<Vec<SocketAddr>>>,
}

impl Resolver {
    pub fn new() -> Self {
        Self {
            cache: Cache::builder()
                .max_capacity(DNS_CACHE_CAPACITY)
                .time_to_live(DNS_CACHE_TTL)
                .build(),
        }
    }

    pub async fn resolve(&self, host: &str, port: u16) -> Result<SocketAddr, S3Error> {
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return Ok(SocketAddr::new(ip, port));
        }
        let key = (host.to_string(), port);
        let addresses = self
            .cache
            .try_get_with(key, async {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
                if found.is_empty() {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no addresses",
                    ));
                }
                Ok(Arc::new(found))
            })
            .await
            .map_err(|error: Arc<std::io::Error>| {
                S3Error::bad_gateway(format!("could not resolve backend host '{host}': {error}"))
            })?;
        Ok(addresses[0])
    }
}

/// Builds the backend connection for `route` at `address`. With `trust`,
/// the backend's certificate is verified against those roots instead of
/// the platform store.
pub fn backend_peer(
    route: &Route,
    address: SocketAddr,
    verify: bool,
    trust: Option<&BackendTrust>,
) -> HttpPeer {
    let sni = if route.bucket.tls {
        route.host()
    } else {
        String::new()
    };
    let mut peer = HttpPeer::new(address, route.bucket.tls, sni);
    let options = &mut peer.options;
    options.connection_timeout = Some(CONNECT_TIMEOUT);
    options.total_connection_timeout = Some(CONNECT_TIMEOUT);
    options.idle_timeout = Some(IDLE_TIMEOUT);
    options.verify_cert = verify;
    options.verify_hostname = verify;
    if let Some(trust) = trust {
        options.ca = Some(trust.roots.clone());
        peer.group_key = trust.group_key;
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(addressing: AddressingStyle, port: u16, tls: bool) -> Arc<BucketConfig> {
        Arc::new(BucketConfig {
            host: "s3.example.test".into(),
            port,
            region: "us-east-1".into(),
            tls,
            addressing,
            credentials: None,
            ttl: Duration::from_secs(300),
            add_content_md5: false,
            streaming_uploads: osp_core::config::StreamingUploads::Decode,
            ca_cert: None,
        })
    }

    fn credentials() -> BackendAuth {
        BackendAuth::Sign(HmacCredentials {
            access_key: "a".into(),
            secret_key: SecretKey::new("s"),
        })
    }

    #[test]
    fn path_style_prefixes_bucket() {
        let route = Route::new(
            "photos",
            bucket(AddressingStyle::Path, 9000, false),
            credentials(),
            "/a%20b",
            "",
        );
        assert_eq!(route.path, "/photos/a%20b");
        assert_eq!(route.host_header(), "s3.example.test:9000");
    }

    #[test]
    fn path_style_bucket_request() {
        let route = Route::new(
            "photos",
            bucket(AddressingStyle::Path, 443, true),
            credentials(),
            "/",
            "list-type=2",
        );
        assert_eq!(route.target(), "/photos?list-type=2");
        assert_eq!(route.host_header(), "s3.example.test");
    }

    #[test]
    fn virtual_style_moves_bucket_to_host() {
        let route = Route::new(
            "photos",
            bucket(AddressingStyle::Virtual, 443, true),
            credentials(),
            "/key",
            "",
        );
        assert_eq!(route.path, "/key");
        assert_eq!(route.host(), "photos.s3.example.test");
    }

    #[test]
    fn presign_parameters_dropped() {
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&versionId=3&X-Amz-Signature=ab&x-amz-expires=5&uploads";
        assert_eq!(forwarded_query(query), "versionId=3&uploads");
    }

    #[test]
    fn sig_v2_parameters_dropped() {
        let query = "AWSAccessKeyId=AK&Expires=1175139620&versionId=3&Signature=ab%2Bc%3D&response-expires=x&expires=1";
        assert_eq!(
            forwarded_query(query),
            "versionId=3&response-expires=x&expires=1"
        );
    }
}
