//! Proxy configuration: the plain values the bindings read from JavaScript
//! (`ConfigInput`), checked completely by `ConfigInput::validate` before
//! anything listens, and the validated `ProxyConfig` the proxy runs with.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::secret::SecretKey;
use crate::tls::{listener_tls, ListenerTls, Pem, TlsEnv, TlsInput};

/// Default seconds that credentials and decisions stay cached per bucket.
pub const DEFAULT_TTL_SECS: u32 = 300;
/// Default time `close()` lets in-flight requests finish.
pub const DEFAULT_SHUTDOWN_TIMEOUT_MS: u32 = 10_000;
/// Default time a JavaScript callback may take before the request fails.
pub const DEFAULT_CALLBACK_TIMEOUT_MS: u32 = 5_000;
/// Default seconds a secret returned by `hmacFetcher` stays cached.
pub const DEFAULT_SECRET_CACHE_TTL_SECS: u32 = 300;
/// Upper bound for cache lifetimes (`ttl`, `secretCacheTtl`): one year.
pub const MAX_CACHE_TTL_SECS: f64 = 31_536_000.0;
/// Upper bound for `threads`: more workers than this only add contention.
pub const MAX_THREADS: u32 = 256;
pub const DEFAULT_REGION: &str = "us-east-1";
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0";

/// A configuration value that is missing, of the wrong shape or out of range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending option, such as `cosMap.photos.port`.
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config: {}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Addressing style towards a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressingStyle {
    /// `https://bucket.host/key`
    Virtual,
    /// `https://host/bucket/key`
    Path,
}

/// A bucket's configuration as read from JavaScript, before validation.
#[derive(Debug, Clone, Default)]
pub struct BucketInput {
    pub host: Option<String>,
    pub port: Option<i64>,
    pub region: Option<String>,
    pub tls: Option<bool>,
    pub addressing_style: Option<String>,
    pub access_key: Option<String>,
    pub secret_key: Option<SecretKey>,
    pub api_key: Option<SecretKey>,
    pub add_content_md5: Option<bool>,
    pub streaming_uploads: Option<String>,
    pub ttl: Option<f64>,
    pub ca_cert: Option<Pem>,
}

/// The whole configuration as read from JavaScript, before validation. Options
/// that the bindings reject before this point (callbacks not yet supported,
/// unknown keys) have no field here.
#[derive(Debug, Clone, Default)]
pub struct ConfigInput {
    pub cos_map: Option<Vec<(String, BucketInput)>>,
    pub hmac_keystore: Vec<(String, SecretKey)>,
    pub http_port: Option<i64>,
    pub https_port: Option<i64>,
    pub tls: Option<TlsInput>,
    /// `TLS_CERT_PATH` and `TLS_KEY_PATH`, used when `httpsPort` is set without `tls`.
    pub tls_env: TlsEnv,
    pub ca_cert: Option<Pem>,
    pub listen_address: Option<String>,
    pub virtual_host_domains: Vec<String>,
    pub shutdown_timeout_ms: Option<i64>,
    pub threads: Option<i64>,
    pub verify: Option<bool>,
    pub skip_signature_validation: Option<bool>,
    pub allow_sig_v2: Option<bool>,
    pub callback_timeout_ms: Option<i64>,
    pub secret_cache_ttl: Option<f64>,
    pub iam_endpoint: Option<String>,
    /// The JavaScript callbacks given. The bindings keep the functions.
    pub callbacks: Callbacks,
}

/// The set of JavaScript callbacks a configuration has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Callbacks {
    pub validator: bool,
    pub bucket_creds_fetcher: bool,
    pub hmac_fetcher: bool,
}

/// The HMAC pair the proxy signs backend requests with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacCredentials {
    pub access_key: String,
    pub secret_key: SecretKey,
}

/// IBM Cloud IAM, where API keys are exchanged for bearer tokens.
pub const DEFAULT_IAM_ENDPOINT: &str = "https://iam.cloud.ibm.com";

/// The location of the IBM Cloud IAM token service: scheme, host, port and base path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamEndpoint {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without a trailing slash; empty for the root.
    pub base_path: String,
}

impl IamEndpoint {
    /// Parses a base URL such as `https://iam.cloud.ibm.com` or
    /// `http://127.0.0.1:8080/iam`.
    pub fn parse(url: &str) -> Result<Self, ConfigError> {
        let invalid = |reason: &str| {
            ConfigError::new(
                "iamEndpoint",
                format!("'{url}' {reason}; give a base URL such as \"https://iam.cloud.ibm.com\""),
            )
        };
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(invalid("does not start with https:// or http://"));
        };
        if rest.contains(['?', '#', '@']) {
            return Err(invalid("has a query, fragment or user part"));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => {
                let port = port
                    .parse::<u16>()
                    .map_err(|_| invalid("has an invalid port"))?;
                (host, port)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() || port == 0 {
            return Err(invalid("has no host or port"));
        }
        Ok(Self {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }
}

/// Credentials for backend requests.
#[derive(Clone, PartialEq, Eq)]
pub enum BackendCredentials {
    /// Requests are signed with SigV4.
    Hmac(HmacCredentials),
    /// An IBM Cloud API key, exchanged for an IAM bearer token.
    ApiKey(SecretKey),
}

impl fmt::Debug for BackendCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hmac(credentials) => write!(f, "Hmac({})", credentials.access_key),
            Self::ApiKey(_) => f.write_str("ApiKey(<redacted>)"),
        }
    }
}

/// A validated backend for one bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketConfig {
    pub host: String,
    pub port: u16,
    pub region: String,
    pub tls: bool,
    pub addressing: AddressingStyle,
    /// Static backend credentials; None when `bucketCredsFetcher` supplies them.
    pub credentials: Option<BackendCredentials>,
    /// How long credentials and decisions stay cached; zero disables caching.
    pub ttl: Duration,
    /// PEM trust roots for this backend's TLS; None uses the server's `caCert`.
    pub ca_cert: Option<Pem>,
    /// Add Content-MD5 to DeleteObjects requests that lack it, for backends
    /// that require it.
    pub add_content_md5: bool,
    /// The form in which aws-chunked uploads reach the backend.
    pub streaming_uploads: StreamingUploads,
}

/// The form in which a bucket's backend receives aws-chunked (streaming) uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamingUploads {
    /// Plain decoded bytes with the decoded length; every backend takes them.
    #[default]
    Decode,
    /// The client's streaming mode, framed again and re-signed with the
    /// backend's key, with the trailer checksum passed on, for backends that
    /// keep checksums.
    Passthrough,
}

/// The validated configuration a server runs with.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub buckets: BTreeMap<String, BucketConfig>,
    pub keystore: HashMap<String, SecretKey>,
    pub http_port: Option<u16>,
    pub https_port: Option<u16>,
    /// The HTTPS listener's certificate source; Some exactly when `https_port` is.
    pub tls: Option<ListenerTls>,
    /// PEM trust roots for backend TLS, replacing the platform store; a bucket's
    /// own `ca_cert` takes precedence.
    pub ca_cert: Option<Pem>,
    pub listen_address: IpAddr,
    pub virtual_host_domains: Vec<String>,
    pub shutdown_timeout: Duration,
    pub threads: usize,
    pub verify: bool,
    pub skip_signature_validation: bool,
    /// Accept AWS Signature Version 2 from clients.
    pub allow_sig_v2: bool,
    pub callback_timeout: Duration,
    pub secret_cache_ttl: Duration,
    pub iam_endpoint: IamEndpoint,
    pub callbacks: Callbacks,
}

impl ConfigInput {
    /// Checks every option and returns the configuration the proxy runs with,
    /// or the first invalid option with its path and the fix.
    pub fn validate(self) -> Result<ProxyConfig, ConfigError> {
        let http_port = self
            .http_port
            .map(|port| to_port("httpPort", port))
            .transpose()?;
        let https_port = self
            .https_port
            .map(|port| to_port("httpsPort", port))
            .transpose()?;
        if http_port.is_none() && https_port.is_none() {
            return Err(ConfigError::new(
                "httpPort",
                "no listener configured: set httpPort or httpsPort (0 picks a free port)",
            ));
        }
        let tls = listener_tls(https_port, self.tls, self.tls_env)?;
        let listen_address = match self.listen_address {
            None => DEFAULT_LISTEN_ADDRESS
                .parse()
                .expect("constant address parses"),
            Some(text) => text.parse().map_err(|_| {
                ConfigError::new(
                    "listenAddress",
                    format!("'{text}' is not an IP address; use e.g. \"127.0.0.1\" or \"0.0.0.0\""),
                )
            })?,
        };
        let buckets = validate_buckets(self.cos_map, self.callbacks.bucket_creds_fetcher)?;
        let keystore = validate_keystore(self.hmac_keystore)?;
        let skip_signature_validation = self.skip_signature_validation.unwrap_or(false);
        if keystore.is_empty() && !self.callbacks.hmac_fetcher && !skip_signature_validation {
            return Err(ConfigError::new(
                "hmacKeystore",
                "no client keys configured: add { accessKey, secretKey } entries or an hmacFetcher, \
                 or set skipSignatureValidation for development",
            ));
        }
        let callback_timeout_ms = match self.callback_timeout_ms {
            None => u64::from(DEFAULT_CALLBACK_TIMEOUT_MS),
            Some(ms) if (1..=600_000).contains(&ms) => ms as u64,
            Some(ms) => {
                return Err(ConfigError::new(
                    "callbackTimeoutMs",
                    format!("{ms} is out of range; use 1 to 600000 milliseconds"),
                ))
            }
        };
        let secret_cache_ttl = match self.secret_cache_ttl {
            None => Duration::from_secs(u64::from(DEFAULT_SECRET_CACHE_TTL_SECS)),
            Some(ttl) if (0.0..=MAX_CACHE_TTL_SECS).contains(&ttl) => Duration::from_secs_f64(ttl),
            Some(ttl) => {
                return Err(ConfigError::new(
                    "secretCacheTtl",
                    format!("{ttl} is out of range; use 0 to {MAX_CACHE_TTL_SECS} seconds (0 disables caching)"),
                ))
            }
        };
        let virtual_host_domains = validate_domains(self.virtual_host_domains)?;
        let shutdown_timeout_ms = match self.shutdown_timeout_ms {
            None => u64::from(DEFAULT_SHUTDOWN_TIMEOUT_MS),
            Some(ms) if (0..=3_600_000).contains(&ms) => ms as u64,
            Some(ms) => {
                return Err(ConfigError::new(
                    "shutdownTimeoutMs",
                    format!("{ms} is out of range; use 0 to 3600000 milliseconds"),
                ))
            }
        };
        let threads = match self.threads {
            None => 1,
            Some(n) if (1..=i64::from(MAX_THREADS)).contains(&n) => n as usize,
            Some(n) => {
                return Err(ConfigError::new(
                    "threads",
                    format!("{n} is out of range; use 1 to {MAX_THREADS}"),
                ))
            }
        };
        Ok(ProxyConfig {
            buckets,
            keystore,
            http_port,
            https_port,
            tls,
            ca_cert: self.ca_cert,
            listen_address,
            virtual_host_domains,
            shutdown_timeout: Duration::from_millis(shutdown_timeout_ms),
            threads,
            verify: self.verify.unwrap_or(true),
            skip_signature_validation,
            allow_sig_v2: self.allow_sig_v2.unwrap_or(true),
            callback_timeout: Duration::from_millis(callback_timeout_ms),
            secret_cache_ttl,
            iam_endpoint: IamEndpoint::parse(
                self.iam_endpoint.as_deref().unwrap_or(DEFAULT_IAM_ENDPOINT),
            )?,
            callbacks: self.callbacks,
        })
    }
}

fn to_port(field: &str, port: i64) -> Result<u16, ConfigError> {
    u16::try_from(port).map_err(|_| {
        ConfigError::new(
            field,
            format!("{port} is not a TCP port; use 0 to 65535 (0 picks a free port)"),
        )
    })
}

fn validate_buckets(
    cos_map: Option<Vec<(String, BucketInput)>>,
    has_creds_fetcher: bool,
) -> Result<BTreeMap<String, BucketConfig>, ConfigError> {
    let cos_map = cos_map.ok_or_else(|| {
        ConfigError::new("cosMap", "missing: map each bucket name to its backend, e.g. { photos: { host, accessKey, secretKey } }")
    })?;
    let mut buckets = BTreeMap::new();
    for (name, input) in cos_map {
        let bucket = validate_bucket(&name, input, has_creds_fetcher)?;
        buckets.insert(name, bucket);
    }
    Ok(buckets)
}

fn validate_bucket(
    name: &str,
    input: BucketInput,
    has_creds_fetcher: bool,
) -> Result<BucketConfig, ConfigError> {
    let field = |option: &str| format!("cosMap.{name}.{option}");
    if !is_valid_bucket_name(name) {
        return Err(ConfigError::new(
            format!("cosMap.{name}"),
            "not a valid bucket name: use 1 to 255 characters of a-z, A-Z, 0-9, '.', '-' and '_'",
        ));
    }
    let host = input
        .host
        .filter(|host| !host.trim().is_empty())
        .ok_or_else(|| {
            ConfigError::new(
                field("host"),
                "missing: set the backend host name, e.g. \"s3.us-east-1.amazonaws.com\"",
            )
        })?;
    if host.contains(['/', ' ', '?', '#', '@']) || host.contains("://") {
        return Err(ConfigError::new(
            field("host"),
            format!(
                "'{host}' is not a host name; give the name alone, without scheme, port or path"
            ),
        ));
    }
    let port = match input.port {
        None => 443,
        Some(port) if port > 0 => to_port(&field("port"), port)?,
        Some(port) => {
            return Err(ConfigError::new(
                field("port"),
                format!("{port} is not a backend port; use 1 to 65535"),
            ))
        }
    };
    let region = input.region.unwrap_or_else(|| DEFAULT_REGION.to_string());
    if region.is_empty()
        || !region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return Err(ConfigError::new(
            field("region"),
            format!("'{region}' is not a region name such as \"us-east-1\""),
        ));
    }
    let addressing = match input.addressing_style.as_deref() {
        None | Some("virtual") => AddressingStyle::Virtual,
        Some("path") => AddressingStyle::Path,
        Some(other) => {
            return Err(ConfigError::new(
                field("addressingStyle"),
                format!("'{other}' is not an addressing style; use \"virtual\" or \"path\""),
            ))
        }
    };
    let streaming_uploads = match input.streaming_uploads.as_deref() {
        None | Some("decode") => StreamingUploads::Decode,
        Some("passthrough") => StreamingUploads::Passthrough,
        Some(other) => {
            return Err(ConfigError::new(
                field("streamingUploads"),
                format!(
                    "'{other}' is not a streaming upload mode; use \"decode\" or \"passthrough\""
                ),
            ))
        }
    };
    if addressing == AddressingStyle::Virtual && host.parse::<IpAddr>().is_ok() {
        return Err(ConfigError::new(
            field("addressingStyle"),
            format!("virtual-host addressing puts the bucket in front of the host name, which '{host}' is not; set addressingStyle: \"path\""),
        ));
    }
    let credentials =
        match (input.access_key, input.secret_key, input.api_key) {
            (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    field("apiKey"),
                    "set either apiKey or accessKey and secretKey, not both",
                ))
            }
            (None, None, Some(api_key)) if !api_key.expose().is_empty() => {
                Some(BackendCredentials::ApiKey(api_key))
            }
            (None, None, Some(_)) => {
                return Err(ConfigError::new(field("apiKey"), "must not be empty"))
            }
            (Some(access_key), Some(secret_key), None)
                if !access_key.is_empty() && !secret_key.expose().is_empty() =>
            {
                Some(BackendCredentials::Hmac(HmacCredentials {
                    access_key,
                    secret_key,
                }))
            }
            (Some(_), _, None) => {
                return Err(ConfigError::new(
                    field("secretKey"),
                    "missing or empty: set both accessKey and secretKey",
                ))
            }
            (None, Some(_), None) => {
                return Err(ConfigError::new(
                    field("accessKey"),
                    "missing: set both accessKey and secretKey",
                ))
            }
            (None, None, None) if has_creds_fetcher => None,
            (None, None, None) => return Err(ConfigError::new(
                field("accessKey"),
                "missing backend credentials: set accessKey and secretKey, an IBM Cloud apiKey, \
                 or a bucketCredsFetcher",
            )),
        };
    let ttl = match input.ttl {
        None => Duration::from_secs(u64::from(DEFAULT_TTL_SECS)),
        Some(ttl) if (0.0..=MAX_CACHE_TTL_SECS).contains(&ttl) => Duration::from_secs_f64(ttl),
        Some(ttl) => {
            return Err(ConfigError::new(
                field("ttl"),
                format!(
                "{ttl} is out of range; use 0 to {MAX_CACHE_TTL_SECS} seconds (0 disables caching)"
            ),
            ))
        }
    };
    Ok(BucketConfig {
        host,
        port,
        region,
        tls: input.tls.unwrap_or(port == 443),
        addressing,
        credentials,
        ttl,
        ca_cert: input.ca_cert,
        add_content_md5: input.add_content_md5.unwrap_or(false),
        streaming_uploads,
    })
}

/// Bucket names as clients address them. Stricter S3 rules (lower case only,
/// 3 to 63 characters) are the backend's to enforce; the proxy only keeps out
/// characters that would change how a path or host is parsed.
fn is_valid_bucket_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

fn validate_keystore(
    entries: Vec<(String, SecretKey)>,
) -> Result<HashMap<String, SecretKey>, ConfigError> {
    let mut keystore = HashMap::new();
    for (index, (access_key, secret_key)) in entries.into_iter().enumerate() {
        if access_key.is_empty() {
            return Err(ConfigError::new(
                format!("hmacKeystore[{index}].accessKey"),
                "must not be empty",
            ));
        }
        if secret_key.expose().is_empty() {
            return Err(ConfigError::new(
                format!("hmacKeystore[{index}].secretKey"),
                "must not be empty",
            ));
        }
        if keystore.insert(access_key.clone(), secret_key).is_some() {
            return Err(ConfigError::new(
                format!("hmacKeystore[{index}].accessKey"),
                format!("'{access_key}' is listed twice; keep one entry per access key"),
            ));
        }
    }
    Ok(keystore)
}

fn validate_domains(domains: Vec<String>) -> Result<Vec<String>, ConfigError> {
    domains
        .into_iter()
        .enumerate()
        .map(|(index, domain)| {
            let normalized = domain.trim_end_matches('.').to_ascii_lowercase();
            let valid = !normalized.is_empty()
                && normalized.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if valid {
                Ok(normalized)
            } else {
                Err(ConfigError::new(
                    format!("virtualHostDomains[{index}]"),
                    format!("'{domain}' is not a host name such as \"s3.example.com\""),
                ))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket() -> BucketInput {
        BucketInput {
            host: Some("127.0.0.1".into()),
            port: Some(9000),
            addressing_style: Some("path".into()),
            access_key: Some("backend".into()),
            secret_key: Some(SecretKey::new("backend-secret")),
            ..Default::default()
        }
    }

    fn input() -> ConfigInput {
        ConfigInput {
            cos_map: Some(vec![("photos".into(), bucket())]),
            hmac_keystore: vec![("client".into(), SecretKey::new("client-secret"))],
            http_port: Some(0),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_apply() {
        let config = input().validate().unwrap();
        let photos = &config.buckets["photos"];
        assert_eq!(photos.region, "us-east-1");
        assert_eq!(photos.addressing, AddressingStyle::Path);
        assert!(!photos.tls, "port 9000 defaults to plain HTTP");
        assert_eq!(photos.ttl, Duration::from_secs(300));
        assert_eq!(config.threads, 1);
        assert!(config.verify);
        assert_eq!(config.shutdown_timeout, Duration::from_secs(10));
        assert!(config.allow_sig_v2, "SigV2 is accepted by default");
    }

    #[test]
    fn sig_v2_can_be_turned_off() {
        let mut config = input();
        config.allow_sig_v2 = Some(false);
        assert!(!config.validate().unwrap().allow_sig_v2);
    }

    #[test]
    fn port_443_defaults_to_tls() {
        let mut config = input();
        config.cos_map.as_mut().unwrap()[0].1.port = None;
        let config = config.validate().unwrap();
        assert_eq!(config.buckets["photos"].port, 443);
        assert!(config.buckets["photos"].tls);
    }

    #[test]
    fn missing_cos_map_names_field() {
        let mut config = input();
        config.cos_map = None;
        assert_eq!(config.validate().unwrap_err().field, "cosMap");
    }

    #[test]
    fn bucket_without_host_names_field() {
        let mut config = input();
        config.cos_map.as_mut().unwrap()[0].1.host = None;
        assert_eq!(config.validate().unwrap_err().field, "cosMap.photos.host");
    }

    #[test]
    fn host_with_scheme_rejected() {
        let mut config = input();
        config.cos_map.as_mut().unwrap()[0].1.host = Some("https://s3.example.test".into());
        assert_eq!(config.validate().unwrap_err().field, "cosMap.photos.host");
    }

    #[test]
    fn port_out_of_range_rejected() {
        let mut config = input();
        config.http_port = Some(70000);
        let error = config.validate().unwrap_err();
        assert_eq!(error.field, "httpPort");
        assert!(error.message.contains("70000"));
    }

    #[test]
    fn https_listener_alone_accepted() {
        let mut config = input();
        config.http_port = None;
        config.https_port = Some(0);
        config.tls = Some(TlsInput::default());
        let config = config.validate().unwrap();
        assert_eq!(config.http_port, None);
        assert_eq!(config.https_port, Some(0));
        assert!(matches!(config.tls, Some(ListenerTls::Pem { .. })));
    }

    #[test]
    fn https_port_needs_certificate() {
        let mut config = input();
        config.https_port = Some(0);
        assert_eq!(config.clone().validate().unwrap_err().field, "httpsPort");
        config.tls_env.cert_path = Some("/etc/proxy/cert.pem".into());
        config.tls_env.key_path = Some("/etc/proxy/key.pem".into());
        assert!(matches!(
            config.validate().unwrap().tls,
            Some(ListenerTls::Files { .. })
        ));
    }

    #[test]
    fn tls_needs_https_port() {
        let mut config = input();
        config.tls = Some(TlsInput::default());
        assert_eq!(config.validate().unwrap_err().field, "tls");
    }

    #[test]
    fn https_port_out_of_range_rejected() {
        let mut config = input();
        config.https_port = Some(-1);
        assert_eq!(config.validate().unwrap_err().field, "httpsPort");
    }

    #[test]
    fn no_listener_rejected() {
        let mut config = input();
        config.http_port = None;
        assert_eq!(config.validate().unwrap_err().field, "httpPort");
    }

    #[test]
    fn empty_keystore_rejected_unless_skipping() {
        let mut config = input();
        config.hmac_keystore.clear();
        assert_eq!(config.clone().validate().unwrap_err().field, "hmacKeystore");
        config.skip_signature_validation = Some(true);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn duplicate_access_key_rejected() {
        let mut config = input();
        config
            .hmac_keystore
            .push(("client".into(), SecretKey::new("other")));
        assert_eq!(
            config.validate().unwrap_err().field,
            "hmacKeystore[1].accessKey"
        );
    }

    #[test]
    fn addressing_style_checked() {
        let mut config = input();
        config.cos_map.as_mut().unwrap()[0].1.addressing_style = Some("vhost".into());
        assert_eq!(
            config.validate().unwrap_err().field,
            "cosMap.photos.addressingStyle"
        );
    }

    #[test]
    fn streaming_uploads_checked() {
        let mut config = input();
        config.cos_map.as_mut().unwrap()[0].1.streaming_uploads = Some("raw".into());
        let error = config.clone().validate().unwrap_err();
        assert_eq!(error.field, "cosMap.photos.streamingUploads");
        assert!(error.message.contains("'raw'"), "{}", error.message);
        config.cos_map.as_mut().unwrap()[0].1.streaming_uploads = Some("passthrough".into());
        let validated = config.validate().unwrap();
        assert_eq!(
            validated.buckets["photos"].streaming_uploads,
            StreamingUploads::Passthrough
        );
    }

    #[test]
    fn virtual_addressing_needs_host_name() {
        let mut config = input();
        config.cos_map.as_mut().unwrap()[0].1.addressing_style = None;
        assert_eq!(
            config.clone().validate().unwrap_err().field,
            "cosMap.photos.addressingStyle"
        );
        config.cos_map.as_mut().unwrap()[0].1.host = Some("s3.example.test".into());
        let config = config.validate().unwrap();
        assert_eq!(
            config.buckets["photos"].addressing,
            AddressingStyle::Virtual,
            "virtual is the default"
        );
    }

    #[test]
    fn half_credentials_rejected() {
        let mut config = input();
        config.cos_map.as_mut().unwrap()[0].1.secret_key = None;
        assert_eq!(
            config.validate().unwrap_err().field,
            "cosMap.photos.secretKey"
        );
    }

    #[test]
    fn creds_fetcher_makes_bucket_keys_optional() {
        let mut config = input();
        let bucket = &mut config.cos_map.as_mut().unwrap()[0].1;
        bucket.access_key = None;
        bucket.secret_key = None;
        assert_eq!(
            config.clone().validate().unwrap_err().field,
            "cosMap.photos.accessKey"
        );
        config.callbacks.bucket_creds_fetcher = true;
        assert_eq!(
            config.validate().unwrap().buckets["photos"].credentials,
            None
        );
    }

    #[test]
    fn hmac_fetcher_replaces_keystore() {
        let mut config = input();
        config.hmac_keystore.clear();
        config.callbacks.hmac_fetcher = true;
        assert!(config.validate().is_ok());
    }

    #[test]
    fn callback_timeout_checked() {
        let mut config = input();
        config.callback_timeout_ms = Some(0);
        assert_eq!(
            config.clone().validate().unwrap_err().field,
            "callbackTimeoutMs"
        );
        config.callback_timeout_ms = None;
        assert_eq!(
            config.validate().unwrap().callback_timeout,
            Duration::from_secs(5)
        );
    }

    #[test]
    fn iam_endpoint_parsed() {
        let default = input().validate().unwrap().iam_endpoint;
        assert_eq!(default.host, "iam.cloud.ibm.com");
        assert_eq!(default.port, 443);
        assert!(default.tls);
        let local = IamEndpoint::parse("http://127.0.0.1:8080/iam/").unwrap();
        assert_eq!(
            (local.host.as_str(), local.port, local.tls),
            ("127.0.0.1", 8080, false)
        );
        assert_eq!(local.base_path, "/iam");
        assert!(IamEndpoint::parse("iam.cloud.ibm.com").is_err());
        assert!(IamEndpoint::parse("https://iam.example.test:x").is_err());
    }

    #[test]
    fn api_key_or_hmac_pair() {
        let mut config = input();
        let bucket = &mut config.cos_map.as_mut().unwrap()[0].1;
        bucket.api_key = Some(SecretKey::new("ibm-key"));
        assert_eq!(
            config.clone().validate().unwrap_err().field,
            "cosMap.photos.apiKey"
        );
        let bucket = &mut config.cos_map.as_mut().unwrap()[0].1;
        bucket.access_key = None;
        bucket.secret_key = None;
        let validated = config.validate().unwrap();
        assert!(matches!(
            validated.buckets["photos"].credentials,
            Some(BackendCredentials::ApiKey(_))
        ));
    }

    #[test]
    fn threads_range_checked() {
        let mut config = input();
        config.threads = Some(0);
        assert_eq!(config.validate().unwrap_err().field, "threads");
    }

    #[test]
    fn domains_normalized() {
        let mut config = input();
        config.virtual_host_domains = vec!["S3.Example.Test.".into()];
        assert_eq!(
            config.validate().unwrap().virtual_host_domains,
            vec!["s3.example.test"]
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = input().validate().unwrap();
        let text = format!("{config:?}");
        assert!(!text.contains("backend-secret"));
        assert!(!text.contains("client-secret"));
    }
}
