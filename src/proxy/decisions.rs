//! Caches in front of the hooks. Each fills through `try_get_with`, so
//! concurrent misses for one key share a single callback call, and failures
//! are never cached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use osp_core::config::BucketConfig;
use osp_core::secret::SecretKey;

use super::hooks::{BackendCredentials, HookError, Hooks, RequestInfo};

/// Max entries per cache; beyond it moka evicts the entries least likely to be used again.
const CACHE_CAPACITY: u64 = 100_000;

/// A cached value with the lifetime of its bucket's `ttl`.
#[derive(Clone)]
struct Timed<T> {
    value: T,
    ttl: Duration,
}

struct PerEntryTtl;

impl<K, T> Expiry<K, Timed<T>> for PerEntryTtl {
    fn expire_after_create(
        &self,
        _key: &K,
        value: &Timed<T>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// Validator decisions are keyed by everything a rule may depend on that
/// repeats across requests: caller, bucket, operation, key, query (a listing
/// prefix, a version id) and source IP. Headers are left out because most
/// change with every request (x-amz-date, SDK invocation ids).
#[derive(Clone, PartialEq, Eq, Hash)]
struct DecisionKey {
    token: String,
    bucket: String,
    operation: String,
    key: Option<String>,
    query: Vec<(String, String)>,
    source_ip: String,
}

impl DecisionKey {
    fn new(token: &str, request: &RequestInfo) -> Self {
        let mut query = request.query.clone();
        query.sort();
        Self {
            token: token.to_string(),
            bucket: request.bucket.clone(),
            operation: request.operation.clone(),
            key: request.key.clone(),
            query,
            source_ip: request.source_ip.clone(),
        }
    }
}

/// Returns whether a decision on `request` may be cached: the bucket's ttl
/// is not zero, and the request names no other objects (a copy source, a
/// list of keys to delete), which are decided afresh every time.
fn is_cacheable(request: &RequestInfo, ttl: Duration) -> bool {
    !ttl.is_zero() && request.copy_source.is_none() && request.delete_keys.is_none()
}

pub struct Decisions {
    pub hooks: Hooks,
    allowed: Cache<DecisionKey, Timed<bool>>,
    credentials: Cache<(String, String), Timed<BackendCredentials>>,
    secrets: Cache<String, SecretKey>,
    secret_ttl: Duration,
}

impl Decisions {
    pub fn new(hooks: Hooks, secret_ttl: Duration) -> Self {
        Self {
            hooks,
            allowed: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(PerEntryTtl)
                .build(),
            credentials: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .expire_after(PerEntryTtl)
                .build(),
            secrets: Cache::builder()
                .max_capacity(CACHE_CAPACITY)
                .time_to_live(secret_ttl.max(Duration::from_millis(1)))
                .build(),
            secret_ttl,
        }
    }

    pub fn has_validator(&self) -> bool {
        self.hooks.validator.is_some()
    }

    /// Returns the cached decision on whether `token` may make `request`,
    /// or None when the validator has to be asked. Checking first lets the
    /// caller copy the request headers for the validator only on a miss.
    pub async fn cached(&self, token: &str, request: &RequestInfo, ttl: Duration) -> Option<bool> {
        if !self.has_validator() || !is_cacheable(request, ttl) {
            return None;
        }
        let key = DecisionKey::new(token, request);
        self.allowed.get(&key).await.map(|decision| decision.value)
    }

    /// Asks the validator whether `token` may make `request`; true when no
    /// validator is configured. Requests that name other objects (a copy
    /// source, a list of keys to delete) are decided afresh every time.
    pub async fn allowed(
        &self,
        token: &str,
        request: &RequestInfo,
        ttl: Duration,
    ) -> Result<bool, HookError> {
        let Some(validator) = self.hooks.validator.as_deref() else {
            return Ok(true);
        };
        if !is_cacheable(request, ttl) {
            return validator.validate(token, &request.bucket, request).await;
        }
        let key = DecisionKey::new(token, request);
        let decision = self
            .allowed
            .try_get_with(key, async {
                let value = validator.validate(token, &request.bucket, request).await?;
                Ok::<_, HookError>(Timed { value, ttl })
            })
            .await
            .map_err(unwrap_shared)?;
        Ok(decision.value)
    }

    /// Returns the backend credentials for a request by `token` to
    /// `bucket_name`: the bucket's static pair, else `bucketCredsFetcher`.
    pub async fn credentials(
        &self,
        token: &str,
        bucket_name: &str,
        bucket: &BucketConfig,
    ) -> Result<BackendCredentials, HookError> {
        if let Some(static_credentials) = &bucket.credentials {
            return Ok(static_credentials.clone());
        }
        let Some(fetcher) = self.hooks.credentials_fetcher.as_deref() else {
            return Err(HookError::Failed {
                hook: "bucketCredsFetcher",
                message: format!("bucket '{bucket_name}' has no credentials and no bucketCredsFetcher is configured"),
            });
        };
        let ttl = bucket.ttl;
        if ttl.is_zero() {
            return fetcher.fetch(token, bucket_name).await;
        }
        let key = (token.to_string(), bucket_name.to_string());
        let credentials = self
            .credentials
            .try_get_with(key, async {
                let value = fetcher.fetch(token, bucket_name).await?;
                Ok::<_, HookError>(Timed { value, ttl })
            })
            .await
            .map_err(unwrap_shared)?;
        Ok(credentials.value)
    }

    /// Returns the secret of `access_key` from `hmacFetcher`, or None when it
    /// is unknown or no fetcher is configured. Unknown keys are not cached,
    /// so a key created in the host application works at once.
    pub async fn secret(&self, access_key: &str) -> Result<Option<SecretKey>, HookError> {
        let Some(fetcher) = self.hooks.secret_fetcher.as_deref() else {
            return Ok(None);
        };
        if self.secret_ttl.is_zero() {
            return fetcher.fetch(access_key).await;
        }
        let found = self
            .secrets
            .try_get_with(access_key.to_string(), async {
                match fetcher.fetch(access_key).await {
                    Ok(Some(secret)) => Ok(secret),
                    Ok(None) => Err(SecretLookupError::Unknown),
                    Err(error) => Err(SecretLookupError::Hook(error)),
                }
            })
            .await;
        match found {
            Ok(secret) => Ok(Some(secret)),
            Err(error) => match &*error {
                SecretLookupError::Unknown => Ok(None),
                SecretLookupError::Hook(error) => Err(error.clone()),
            },
        }
    }
}

/// Why `hmacFetcher` gave no secret; neither outcome is cached.
enum SecretLookupError {
    Unknown,
    Hook(HookError),
}

fn unwrap_shared(error: Arc<HookError>) -> HookError {
    Arc::try_unwrap(error).unwrap_or_else(|shared| (*shared).clone())
}
