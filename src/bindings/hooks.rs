//! JavaScript callbacks as the proxy's hooks. Each callback becomes a weak
//! threadsafe function: a pingora worker queues the call on Node's thread and
//! awaits the answer without blocking, with a timeout. A callback may return
//! its value or a Promise of it; a throw, a rejection, a value of the wrong
//! type or a timeout becomes a `HookError`.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use napi::bindgen_prelude::{
    Either, FnArgs, FromNapiValue, Function, JsValuesTupleIntoVec, Promise, TypeName,
    ValidateNapiValue,
};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::Status;
use napi_derive::napi;
use osp_core::config::HmacCredentials;
use osp_core::secret::SecretKey;

use crate::proxy::hooks::{
    BackendCredentials, CredentialsFetcher, HookError, RequestInfo, SecretFetcher, Validator,
};

/// A value or a Promise of it, as a callback may return. Promise comes first:
/// a Promise is also an object, which an object type would accept.
pub type MaybePromise<T> = Either<Promise<T>, T>;

/// A callback that does not keep Node alive and whose errors come back to
/// the caller instead of becoming uncaught exceptions.
type Callback<Args, T> =
    ThreadsafeFunction<FnArgs<Args>, MaybePromise<T>, FnArgs<Args>, Status, false, true>;

/// One JavaScript callback with its name (for errors) and timeout.
pub struct JsHook<Args, T>
where
    Args: 'static,
    FnArgs<Args>: JsValuesTupleIntoVec,
    T: 'static + FromNapiValue + ValidateNapiValue + TypeName,
{
    name: &'static str,
    callback: Callback<Args, T>,
    timeout: Duration,
}

impl<Args, T> JsHook<Args, T>
where
    Args: 'static + Send,
    FnArgs<Args>: JsValuesTupleIntoVec,
    T: 'static + Send + FromNapiValue + ValidateNapiValue + TypeName,
{
    pub fn new(
        name: &'static str,
        function: &Function<FnArgs<Args>, MaybePromise<T>>,
        timeout: Duration,
    ) -> napi::Result<Self> {
        let callback = function
            .build_threadsafe_function::<FnArgs<Args>>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()?;
        Ok(Self {
            name,
            callback,
            timeout,
        })
    }

    /// Calls the callback and waits for its value, settling a returned Promise.
    pub async fn call(&self, args: Args) -> Result<T, HookError> {
        let failed = |error: napi::Error| HookError::Failed {
            hook: self.name,
            message: error.reason.clone(),
        };
        let outcome = async {
            match self
                .callback
                .call_async_catch(FnArgs::from(args))
                .await
                .map_err(failed)?
            {
                Either::A(promise) => promise.await.map_err(failed),
                Either::B(value) => Ok(value),
            }
        };
        tokio::time::timeout(self.timeout, outcome)
            .await
            .map_err(|_| HookError::TimedOut {
                hook: self.name,
                timeout: self.timeout,
            })?
    }
}

/// The request as a validator receives it (`RequestInfo` in TypeScript).
#[napi(object, object_from_js = false, js_name = "RequestInfo")]
pub struct RequestInfoJs {
    pub method: String,
    pub bucket: String,
    #[napi(ts_type = "string | null")]
    pub key: Option<String>,
    /** S3 API action, such as "GetObject", "PutObject", "ListObjectsV2" or "DeleteObjects". */
    pub operation: String,
    /** Decoded query parameters; the signature parameters of a presigned URL are left out. */
    pub query: HashMap<String, String>,
    /** Lower-case header names; no Authorization header, signatures or secrets. */
    pub headers: HashMap<String, String>,
    pub source_ip: String,
    /** The object a CopyObject or UploadPartCopy reads. */
    pub copy_source: Option<CopySourceJs>,
    /** DeleteObjects: the keys listed in the request body. */
    pub delete_keys: Option<Vec<String>>,
}

#[napi(object, object_from_js = false, js_name = "CopySource")]
pub struct CopySourceJs {
    pub bucket: String,
    pub key: String,
}

impl From<&RequestInfo> for RequestInfoJs {
    fn from(info: &RequestInfo) -> Self {
        Self {
            method: info.method.clone(),
            bucket: info.bucket.clone(),
            key: info.key.clone(),
            operation: info.operation.clone(),
            query: info.query.iter().cloned().collect(),
            headers: info.headers.iter().cloned().collect(),
            source_ip: info.source_ip.clone(),
            copy_source: info.copy_source.as_ref().map(|source| CopySourceJs {
                bucket: source.bucket.clone(),
                key: source.key.clone(),
            }),
            delete_keys: info.delete_keys.clone(),
        }
    }
}

/// What `bucketCredsFetcher` may return as an object: an HMAC pair or an
/// IBM Cloud API key.
#[napi(object, object_to_js = false)]
pub struct CredentialsObject {
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub api_key: Option<String>,
}

pub type ValidatorHook = JsHook<(String, String, RequestInfoJs), bool>;
pub type CredentialsHook = JsHook<(String, String), Either<String, CredentialsObject>>;
pub type SecretHook = JsHook<(String,), Option<String>>;

#[async_trait]
impl Validator for ValidatorHook {
    async fn validate(
        &self,
        token: &str,
        bucket: &str,
        request: &RequestInfo,
    ) -> Result<bool, HookError> {
        self.call((
            token.to_string(),
            bucket.to_string(),
            RequestInfoJs::from(request),
        ))
        .await
    }
}

#[async_trait]
impl CredentialsFetcher for CredentialsHook {
    async fn fetch(&self, token: &str, bucket: &str) -> Result<BackendCredentials, HookError> {
        let value = self.call((token.to_string(), bucket.to_string())).await?;
        backend_credentials(value).map_err(|message| HookError::Failed {
            hook: self.name,
            message,
        })
    }
}

#[async_trait]
impl SecretFetcher for SecretHook {
    async fn fetch(&self, access_key: &str) -> Result<Option<SecretKey>, HookError> {
        let secret = self.call((access_key.to_string(),)).await?;
        Ok(secret
            .filter(|secret| !secret.is_empty())
            .map(SecretKey::new))
    }
}

/// Reads what `bucketCredsFetcher` returned: `{ accessKey, secretKey }`,
/// `{ apiKey }`, an API key string, or the JSON string
/// `{"access_key": ..., "secret_key": ...}` that the Python package used.
fn backend_credentials(
    value: Either<String, CredentialsObject>,
) -> Result<BackendCredentials, String> {
    match value {
        Either::A(text) => {
            let trimmed = text.trim();
            if trimmed.starts_with('{') {
                return json_credentials(trimmed);
            }
            if trimmed.is_empty() {
                return Err("returned an empty string".to_string());
            }
            Ok(BackendCredentials::ApiKey(SecretKey::new(trimmed)))
        }
        Either::B(object) => match (object.access_key, object.secret_key, object.api_key) {
            (Some(access_key), Some(secret_key), None)
                if !access_key.is_empty() && !secret_key.is_empty() =>
            {
                Ok(BackendCredentials::Hmac(HmacCredentials {
                    access_key,
                    secret_key: SecretKey::new(secret_key),
                }))
            }
            (None, None, Some(api_key)) if !api_key.is_empty() => {
                Ok(BackendCredentials::ApiKey(SecretKey::new(api_key)))
            }
            _ => Err(
                "returned an object that is neither { accessKey, secretKey } nor { apiKey }"
                    .to_string(),
            ),
        },
    }
}

fn json_credentials(text: &str) -> Result<BackendCredentials, String> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|error| format!("returned a string that is not valid JSON: {error}"))?;
    let field = |name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .filter(|text| !text.is_empty())
    };
    match (field("access_key"), field("secret_key")) {
        (Some(access_key), Some(secret_key)) => Ok(BackendCredentials::Hmac(HmacCredentials {
            access_key: access_key.to_string(),
            secret_key: SecretKey::new(secret_key),
        })),
        _ => Err("returned a JSON string without \"access_key\" and \"secret_key\"".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_string_is_hmac_pair() {
        let parsed =
            backend_credentials(Either::A(r#"{"access_key":"AK","secret_key":"SK"}"#.into()))
                .unwrap();
        assert!(matches!(parsed, BackendCredentials::Hmac(ref pair) if pair.access_key == "AK"));
    }

    #[test]
    fn plain_string_is_api_key() {
        let parsed = backend_credentials(Either::A("my-api-key".into())).unwrap();
        assert!(matches!(parsed, BackendCredentials::ApiKey(_)));
    }

    #[test]
    fn incomplete_object_rejected() {
        let object = CredentialsObject {
            access_key: Some("AK".into()),
            secret_key: None,
            api_key: None,
        };
        assert!(backend_credentials(Either::B(object)).is_err());
    }
}
