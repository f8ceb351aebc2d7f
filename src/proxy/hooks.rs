//! The decisions the proxy asks its host application for: whether a caller
//! may make a request, which credentials a bucket's backend takes, and the
//! secret of a client access key. The bindings implement them with
//! JavaScript callbacks; the proxy only sees these traits.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
pub use osp_core::config::BackendCredentials;
use osp_core::s3::{CopySource, S3Error};
use osp_core::secret::SecretKey;

/// What a validator learns about a request. It never contains the
/// Authorization header, a signature or a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    pub method: String,
    pub bucket: String,
    pub key: Option<String>,
    /// S3 API action, such as "GetObject".
    pub operation: String,
    /// Decoded query parameters, without those of a presigned URL's signature.
    pub query: Vec<(String, String)>,
    /// Lower-case header names and their values.
    pub headers: Vec<(String, String)>,
    pub source_ip: String,
    pub copy_source: Option<CopySource>,
    pub delete_keys: Option<Vec<String>>,
}

/// A callback that failed: it threw, its promise rejected, it returned a
/// value of the wrong type, or it took longer than allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    Failed {
        hook: &'static str,
        message: String,
    },
    TimedOut {
        hook: &'static str,
        timeout: Duration,
    },
}

impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Failed { hook, message } => write!(f, "{hook} failed: {message}"),
            Self::TimedOut { hook, timeout } => {
                write!(f, "{hook} did not return within {} ms", timeout.as_millis())
            }
        }
    }
}

impl std::error::Error for HookError {}

impl HookError {
    pub fn hook(&self) -> &'static str {
        match self {
            Self::Failed { hook, .. } | Self::TimedOut { hook, .. } => hook,
        }
    }

    /// The answer to the client: 503 for a timeout, which a retry may fix,
    /// else 500. The message names the callback but not its error text, which
    /// is the application's and goes to the log only.
    pub fn to_s3_error(&self) -> S3Error {
        match self {
            Self::TimedOut { hook, .. } => S3Error::service_unavailable(format!(
                "the proxy's {hook} callback timed out; retry the request"
            )),
            Self::Failed { hook, .. } => {
                S3Error::internal(format!("the proxy's {hook} callback failed"))
            }
        }
    }
}

/// Decides whether the caller `token` (the access key it signed with) may
/// make `request` on `bucket`.
#[async_trait]
pub trait Validator: Send + Sync {
    async fn validate(
        &self,
        token: &str,
        bucket: &str,
        request: &RequestInfo,
    ) -> Result<bool, HookError>;
}

/// Returns the backend credentials for `bucket` when the caller is `token`.
#[async_trait]
pub trait CredentialsFetcher: Send + Sync {
    async fn fetch(&self, token: &str, bucket: &str) -> Result<BackendCredentials, HookError>;
}

/// Returns the secret of a client access key, or None when it is unknown.
#[async_trait]
pub trait SecretFetcher: Send + Sync {
    async fn fetch(&self, access_key: &str) -> Result<Option<SecretKey>, HookError>;
}

/// The callbacks a server was configured with.
#[derive(Default)]
pub struct Hooks {
    pub validator: Option<Box<dyn Validator>>,
    pub credentials_fetcher: Option<Box<dyn CredentialsFetcher>>,
    pub secret_fetcher: Option<Box<dyn SecretFetcher>>,
}
