//! TLS material in the configuration: PEM text for the HTTPS listener and for
//! backend trust roots, and the rule that decides where the listener's
//! certificate comes from. Parsing the PEM is left to the proxy, which has
//! the TLS library.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::ConfigError;

/// Environment variable naming the HTTPS listener's certificate chain file.
pub const TLS_CERT_PATH_ENV: &str = "TLS_CERT_PATH";
/// Environment variable naming the HTTPS listener's private key file.
pub const TLS_KEY_PATH_ENV: &str = "TLS_KEY_PATH";

/// PEM text from the configuration, such as a certificate chain or CA
/// certificates. Formatting it prints the length only.
#[derive(Clone, PartialEq, Eq)]
pub struct Pem(Arc<[u8]>);

impl Pem {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Arc::from(bytes.into()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Pem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pem({} bytes)", self.0.len())
    }
}

/// A private key in PEM. Formatting it never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretPem(Arc<[u8]>);

impl SecretPem {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(Arc::from(bytes.into()))
    }

    /// Returns the key itself, for building the TLS acceptor only.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretPem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretPem(<redacted>)")
    }
}

/// The `tls` option as read from JavaScript. An empty value means that the
/// property was not given; the proxy reports it when the server starts, with
/// the other certificate problems.
#[derive(Debug, Clone, Default)]
pub struct TlsInput {
    pub cert: Pem,
    pub key: SecretPem,
}

impl Default for Pem {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl Default for SecretPem {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

/// The values of `TLS_CERT_PATH` and `TLS_KEY_PATH`, None when unset or
/// empty. The bindings read them, so validation does not depend on the
/// process environment.
#[derive(Debug, Clone, Default)]
pub struct TlsEnv {
    pub cert_path: Option<String>,
    pub key_path: Option<String>,
}

/// Source of the HTTPS listener's certificate chain and private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerTls {
    /// PEM from the `tls` option, kept in memory and never written to disk.
    Pem { cert: Pem, key: SecretPem },
    /// Files named by `TLS_CERT_PATH` and `TLS_KEY_PATH`, read when the server
    /// starts. A path is None when its variable is unset, which the proxy
    /// reports then.
    Files {
        cert_path: Option<PathBuf>,
        key_path: Option<PathBuf>,
    },
}

/// Decides where the HTTPS listener's certificate comes from: the `tls`
/// option, else the files named by the environment. Returns None when there
/// is no HTTPS listener. `tls` without `httpsPort` is an error, and so is
/// `httpsPort` with neither `tls` nor the environment variables. The
/// environment alone starts no HTTPS listener.
pub fn listener_tls(
    https_port: Option<u16>,
    tls: Option<TlsInput>,
    env: TlsEnv,
) -> Result<Option<ListenerTls>, ConfigError> {
    match (https_port, tls) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ConfigError::new(
            "tls",
            "given without httpsPort: set httpsPort (0 picks a free port) or remove tls",
        )),
        (Some(_), Some(tls)) => Ok(Some(ListenerTls::Pem {
            cert: tls.cert,
            key: tls.key,
        })),
        (Some(_), None) if env.cert_path.is_none() && env.key_path.is_none() => {
            Err(ConfigError::new(
                "httpsPort",
                format!(
                    "the HTTPS listener has no certificate: set tls: {{ cert, key }} (PEM) \
                     or the environment variables {TLS_CERT_PATH_ENV} and {TLS_KEY_PATH_ENV}"
                ),
            ))
        }
        (Some(_), None) => Ok(Some(ListenerTls::Files {
            cert_path: env.cert_path.map(PathBuf::from),
            key_path: env.key_path.map(PathBuf::from),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls() -> TlsInput {
        TlsInput {
            cert: Pem::new("-----BEGIN CERTIFICATE-----"),
            key: SecretPem::new("-----BEGIN PRIVATE KEY-----"),
        }
    }

    fn env(cert: Option<&str>, key: Option<&str>) -> TlsEnv {
        TlsEnv {
            cert_path: cert.map(String::from),
            key_path: key.map(String::from),
        }
    }

    #[test]
    fn no_https_port_no_listener() {
        let source = listener_tls(None, None, env(Some("/c.pem"), Some("/k.pem"))).unwrap();
        assert_eq!(source, None, "the environment alone starts no listener");
    }

    #[test]
    fn tls_without_https_port_rejected() {
        let error = listener_tls(None, Some(tls()), TlsEnv::default()).unwrap_err();
        assert_eq!(error.field, "tls");
        assert!(error.message.contains("httpsPort"));
    }

    #[test]
    fn https_port_without_certificate_rejected() {
        let error = listener_tls(Some(0), None, TlsEnv::default()).unwrap_err();
        assert_eq!(error.field, "httpsPort");
        assert!(error.message.contains("TLS_CERT_PATH"));
    }

    #[test]
    fn tls_option_wins_over_environment() {
        let source = listener_tls(Some(0), Some(tls()), env(Some("/c.pem"), Some("/k.pem")));
        assert!(matches!(source, Ok(Some(ListenerTls::Pem { .. }))));
    }

    #[test]
    fn environment_names_files() {
        let source = listener_tls(Some(443), None, env(Some("/c.pem"), None)).unwrap();
        assert_eq!(
            source,
            Some(ListenerTls::Files {
                cert_path: Some(PathBuf::from("/c.pem")),
                key_path: None,
            })
        );
    }

    #[test]
    fn formatting_hides_key() {
        let text = format!("{:?}", tls());
        assert!(!text.contains("PRIVATE KEY"));
        assert!(!text.contains("CERTIFICATE"));
    }
}
