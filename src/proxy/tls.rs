//! TLS material parsed once when a server starts: the HTTPS listener's
//! certificate and key, and the trust roots of backends with a `caCert`.
//! Every problem is a `StartError` with code `ERR_INVALID_TLS`, returned
//! before anything listens, whereas pingora's own file loading panics.

use std::borrow::Cow;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::Path;
use std::sync::Arc;

use osp_core::tls::{ListenerTls, Pem, TLS_CERT_PATH_ENV, TLS_KEY_PATH_ENV};
use pingora::listeners::tls::TlsSettings;
use pingora::protocols::tls::CaType;
use pingora::utils::tls::WrappedX509;
use rustls::pki_types::CertificateDer;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{InconsistentKeys, RootCertStore};

use super::server::StartError;

const INVALID_TLS: &str = "ERR_INVALID_TLS";

fn invalid_tls(message: String) -> StartError {
    StartError {
        code: INVALID_TLS,
        message,
    }
}

/// Builds the HTTPS listener's settings: rustls with the configured
/// certificate chain and private key held in memory, offering h2 and
/// http/1.1 through ALPN.
pub fn listener_settings(source: &ListenerTls) -> Result<TlsSettings, StartError> {
    let certified_key = load_certified_key(source)?;
    // The paths stay empty: with a certificate resolver set, pingora's
    // `TlsSettings::build` reads no files.
    let mut settings = TlsSettings::intermediate("", "").map_err(|error| {
        invalid_tls(format!(
            "could not create the HTTPS listener settings: {error}"
        ))
    })?;
    settings.set_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key)));
    settings.enable_h2();
    Ok(settings)
}

/// PEM of the certificate chain and key, with the names that error messages
/// give them.
struct KeyMaterial<'a> {
    cert: Cow<'a, [u8]>,
    cert_name: String,
    key: Cow<'a, [u8]>,
    key_name: String,
}

fn read_material(source: &ListenerTls) -> Result<KeyMaterial<'_>, StartError> {
    match source {
        ListenerTls::Pem { cert, key } => {
            if cert.is_empty() {
                return Err(invalid_tls(
                    "tls.cert is missing or empty: give the certificate chain as PEM (a string or a Buffer)".to_string(),
                ));
            }
            if key.is_empty() {
                return Err(invalid_tls(
                    "tls.key is missing or empty: give the private key as PEM (a string or a Buffer)".to_string(),
                ));
            }
            Ok(KeyMaterial {
                cert: Cow::Borrowed(cert.as_bytes()),
                cert_name: "tls.cert".to_string(),
                key: Cow::Borrowed(key.expose()),
                key_name: "tls.key".to_string(),
            })
        }
        ListenerTls::Files {
            cert_path,
            key_path,
        } => {
            let cert_path = file_path(cert_path.as_deref(), TLS_CERT_PATH_ENV, TLS_KEY_PATH_ENV)?;
            let key_path = file_path(key_path.as_deref(), TLS_KEY_PATH_ENV, TLS_CERT_PATH_ENV)?;
            Ok(KeyMaterial {
                cert: Cow::Owned(read_file(cert_path, TLS_CERT_PATH_ENV)?),
                cert_name: format!("{} ({TLS_CERT_PATH_ENV})", cert_path.display()),
                key: Cow::Owned(read_file(key_path, TLS_KEY_PATH_ENV)?),
                key_name: format!("{} ({TLS_KEY_PATH_ENV})", key_path.display()),
            })
        }
    }
}

fn file_path<'a>(
    path: Option<&'a Path>,
    variable: &str,
    other: &str,
) -> Result<&'a Path, StartError> {
    path.ok_or_else(|| {
        invalid_tls(format!(
            "{other} is set but {variable} is not: set both, or give tls: {{ cert, key }} instead"
        ))
    })
}

fn read_file(path: &Path, variable: &str) -> Result<Vec<u8>, StartError> {
    std::fs::read(path).map_err(|error| {
        invalid_tls(format!(
            "cannot read {}, named by {variable}: {error}",
            path.display()
        ))
    })
}

/// Parses the certificate chain and private key and checks that the key
/// belongs to the first certificate.
fn load_certified_key(source: &ListenerTls) -> Result<CertifiedKey, StartError> {
    let material = read_material(source)?;
    let certs = parse_certificates(&material.cert, &material.cert_name)?;

    let key = rustls_pemfile::private_key(&mut material.key.as_ref())
        .map_err(|error| {
            invalid_tls(format!(
                "{} is not valid PEM: {error}",
                material.key_name
            ))
        })?
        .ok_or_else(|| {
            invalid_tls(format!(
                "{} contains no private key: give a PEM block such as \"-----BEGIN PRIVATE KEY-----\" (PKCS#8, PKCS#1 or SEC1)",
                material.key_name
            ))
        })?;

    // ring is the provider pingora's listener uses.
    let signing_key = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|error| {
        invalid_tls(format!(
            "the private key in {} cannot be used: {error}. Give an RSA, ECDSA (P-256 or P-384) or Ed25519 key",
            material.key_name
        ))
    })?;
    let certified_key = CertifiedKey::new(certs, signing_key);
    match certified_key.keys_match() {
        // A key type whose public half rustls cannot extract is not compared.
        Ok(()) | Err(rustls::Error::InconsistentKeys(InconsistentKeys::Unknown)) => {
            Ok(certified_key)
        }
        Err(rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch)) => Err(invalid_tls(format!(
            "the private key in {} does not belong to the certificate in {}: give the key the certificate was issued for",
            material.key_name, material.cert_name
        ))),
        Err(other) => Err(invalid_tls(format!(
            "cannot use the certificate in {} with the key in {}: {other}",
            material.cert_name, material.key_name
        ))),
    }
}

/// Parses every certificate in `pem` and requires at least one.
fn parse_certificates(pem: &[u8], name: &str) -> Result<Vec<CertificateDer<'static>>, StartError> {
    let certs = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid_tls(format!("{name} is not valid PEM: {error}")))?;
    if certs.is_empty() {
        return Err(invalid_tls(format!(
            "{name} contains no certificate: give PEM blocks starting with \"-----BEGIN CERTIFICATE-----\""
        )));
    }
    Ok(certs)
}

/// Trust roots for the TLS connections to one backend. They replace the
/// platform store for that backend.
#[derive(Clone)]
pub struct BackendTrust {
    pub roots: Arc<CaType>,
    /// Keeps pooled connections apart by trust roots: pingora's connection
    /// reuse key does not include the peer's CA list, so without it a
    /// connection verified against one `caCert` could serve a bucket that
    /// trusts another.
    pub group_key: u64,
}

impl std::fmt::Debug for BackendTrust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BackendTrust({} certificates)", self.roots.len())
    }
}

/// Parses the CA certificates of the option `field` (such as
/// `cosMap.photos.caCert`) into backend trust roots.
pub fn backend_trust(pem: &Pem, field: &str) -> Result<BackendTrust, StartError> {
    let certs = parse_certificates(pem.as_bytes(), field)?;
    let mut hasher = DefaultHasher::new();
    let mut roots = Vec::with_capacity(certs.len());
    for (index, der) in certs.into_iter().enumerate() {
        let position = index + 1;
        // The same checks the connector makes on every handshake, made once
        // here so that a bad certificate fails at start and not per request.
        RootCertStore::empty().add(der.clone()).map_err(|error| {
            invalid_tls(format!(
                "certificate {position} in {field} cannot be a trust root: {error}"
            ))
        })?;
        let root = WrappedX509::try_new(der.to_vec(), |raw| {
            x509_parser::parse_x509_certificate(raw).map(|(_, certificate)| certificate)
        })
        .map_err(|error| {
            invalid_tls(format!(
                "certificate {position} in {field} is not a valid X.509 certificate: {error}"
            ))
        })?;
        der.as_ref().hash(&mut hasher);
        roots.push(root);
    }
    Ok(BackendTrust {
        roots: Arc::from(roots),
        group_key: hasher.finish(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use osp_core::tls::SecretPem;

    #[test]
    fn missing_cert_reported() {
        let source = ListenerTls::Pem {
            cert: Pem::default(),
            key: SecretPem::new("x"),
        };
        let error = listener_settings(&source).err().unwrap();
        assert_eq!(error.code, "ERR_INVALID_TLS");
        assert!(error.message.contains("tls.cert"), "{}", error.message);
    }

    #[test]
    fn text_without_certificate_reported() {
        let source = ListenerTls::Pem {
            cert: Pem::new("not a certificate"),
            key: SecretPem::new("not a key"),
        };
        let error = listener_settings(&source).err().unwrap();
        assert!(
            error.message.contains("contains no certificate"),
            "{}",
            error.message
        );
    }

    #[test]
    fn unreadable_file_reported() {
        let source = ListenerTls::Files {
            cert_path: Some("/nonexistent/cert.pem".into()),
            key_path: Some("/nonexistent/key.pem".into()),
        };
        let error = listener_settings(&source).err().unwrap();
        assert_eq!(error.code, "ERR_INVALID_TLS");
        assert!(
            error.message.contains("/nonexistent/cert.pem"),
            "{}",
            error.message
        );
        assert!(error.message.contains("TLS_CERT_PATH"), "{}", error.message);
    }

    #[test]
    fn half_environment_reported() {
        let source = ListenerTls::Files {
            cert_path: Some("/etc/cert.pem".into()),
            key_path: None,
        };
        let error = listener_settings(&source).err().unwrap();
        assert!(
            error.message.contains("TLS_KEY_PATH is not"),
            "{}",
            error.message
        );
    }

    #[test]
    fn invalid_ca_names_field() {
        let pem = Pem::new("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let error = backend_trust(&pem, "cosMap.photos.caCert").err().unwrap();
        assert_eq!(error.code, "ERR_INVALID_TLS");
        assert!(
            error.message.contains("cosMap.photos.caCert"),
            "{}",
            error.message
        );
    }
}
