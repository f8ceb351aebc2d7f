//! Reads the JavaScript config object into the core's `ConfigInput`,
//! rejecting unknown keys and options this version does not implement, so
//! that nothing the caller set is silently ignored.

use std::time::Duration;

use napi::bindgen_prelude::{
    BufferSlice, Either, FnArgs, FromNapiValue, Function, JsObjectValue, Object, Unknown,
};
use napi::{JsValue, ValueType};
use osp_core::config::{BucketInput, Callbacks, ConfigError, ConfigInput};
use osp_core::tls::{Pem, SecretPem, TlsEnv, TlsInput, TLS_CERT_PATH_ENV, TLS_KEY_PATH_ENV};

use super::hooks::{
    CredentialsHook, CredentialsObject, MaybePromise, RequestInfoJs, SecretHook, ValidatorHook,
};
use crate::proxy::hooks::Hooks;
use osp_core::secret::SecretKey;

/// Options of `startServer` that this version implements.
const SERVER_OPTIONS: &[&str] = &[
    "cosMap",
    "hmacKeystore",
    "httpPort",
    "httpsPort",
    "tls",
    "caCert",
    "listenAddress",
    "virtualHostDomains",
    "shutdownTimeoutMs",
    "threads",
    "verify",
    "skipSignatureValidation",
    "allowSigV2",
    "validator",
    "bucketCredsFetcher",
    "hmacFetcher",
    "callbackTimeoutMs",
    "secretCacheTtl",
    "iamEndpoint",
];

/// Options of the documented API that this version does not implement yet.
/// They are rejected: an ignored `validator` would allow every request.
const SERVER_OPTIONS_NOT_YET_SUPPORTED: &[&str] = &[];

const BUCKET_OPTIONS: &[&str] = &[
    "host",
    "port",
    "region",
    "tls",
    "addressingStyle",
    "accessKey",
    "secretKey",
    "ttl",
    "streamingUploads",
    "addContentMd5",
    "apiKey",
    "caCert",
];

const BUCKET_OPTIONS_NOT_YET_SUPPORTED: &[&str] = &[];

const TLS_OPTIONS: &[&str] = &["cert", "key"];

const KEYSTORE_ENTRY_OPTIONS: &[&str] = &["accessKey", "secretKey"];

type ValidatorFunction<'env> =
    Function<'env, FnArgs<(String, String, RequestInfoJs)>, MaybePromise<bool>>;
type CredentialsFunction<'env> =
    Function<'env, FnArgs<(String, String)>, MaybePromise<Either<String, CredentialsObject>>>;
type SecretFunction<'env> = Function<'env, FnArgs<(String,)>, MaybePromise<Option<String>>>;

/// The JavaScript callbacks of a config, turned into hooks once the config
/// (and so `callbackTimeoutMs`) is validated.
pub struct CallbackFunctions<'env> {
    pub validator: Option<ValidatorFunction<'env>>,
    pub bucket_creds_fetcher: Option<CredentialsFunction<'env>>,
    pub hmac_fetcher: Option<SecretFunction<'env>>,
}

impl CallbackFunctions<'_> {
    /// Creates the hooks, each call bounded by `timeout`.
    pub fn into_hooks(self, timeout: Duration) -> napi::Result<Hooks> {
        let mut hooks = Hooks::default();
        if let Some(function) = &self.validator {
            hooks.validator = Some(Box::new(ValidatorHook::new(
                "validator",
                function,
                timeout,
            )?));
        }
        if let Some(function) = &self.bucket_creds_fetcher {
            hooks.credentials_fetcher = Some(Box::new(CredentialsHook::new(
                "bucketCredsFetcher",
                function,
                timeout,
            )?));
        }
        if let Some(function) = &self.hmac_fetcher {
            hooks.secret_fetcher =
                Some(Box::new(SecretHook::new("hmacFetcher", function, timeout)?));
        }
        Ok(hooks)
    }
}

/// Reads `config` into a `ConfigInput` and its callbacks; every error names
/// the option's path.
pub fn read_config<'env>(
    config: &Object<'env>,
) -> Result<(ConfigInput, CallbackFunctions<'env>), ConfigError> {
    let reader = Reader::new(config, "");
    reader.check_keys(SERVER_OPTIONS, SERVER_OPTIONS_NOT_YET_SUPPORTED)?;
    let functions = CallbackFunctions {
        validator: reader.function("validator")?,
        bucket_creds_fetcher: reader.function("bucketCredsFetcher")?,
        hmac_fetcher: reader.function("hmacFetcher")?,
    };
    let callbacks = Callbacks {
        validator: functions.validator.is_some(),
        bucket_creds_fetcher: functions.bucket_creds_fetcher.is_some(),
        hmac_fetcher: functions.hmac_fetcher.is_some(),
    };
    let input = ConfigInput {
        cos_map: reader
            .object("cosMap")?
            .map(|map| read_cos_map(&map))
            .transpose()?,
        hmac_keystore: read_keystore(&reader)?,
        http_port: reader.integer("httpPort")?,
        https_port: reader.integer("httpsPort")?,
        tls: read_tls(&reader)?,
        tls_env: tls_env(),
        ca_cert: reader.pem("caCert")?.map(Pem::new),
        listen_address: reader.string("listenAddress")?,
        virtual_host_domains: reader
            .string_array("virtualHostDomains")?
            .unwrap_or_default(),
        shutdown_timeout_ms: reader.integer("shutdownTimeoutMs")?,
        threads: reader.integer("threads")?,
        verify: reader.boolean("verify")?,
        skip_signature_validation: reader.boolean("skipSignatureValidation")?,
        allow_sig_v2: reader.boolean("allowSigV2")?,
        callback_timeout_ms: reader.integer("callbackTimeoutMs")?,
        secret_cache_ttl: reader.number("secretCacheTtl")?,
        iam_endpoint: reader.string("iamEndpoint")?,
        callbacks,
    };
    Ok((input, functions))
}

fn read_cos_map(map: &Reader) -> Result<Vec<(String, BucketInput)>, ConfigError> {
    let mut buckets = Vec::new();
    for name in map.keys()? {
        let bucket = map.object(&name)?.ok_or_else(|| {
            ConfigError::new(
                map.path(&name),
                "missing: give the bucket's backend as an object",
            )
        })?;
        buckets.push((name, read_bucket(&bucket)?));
    }
    Ok(buckets)
}

fn read_bucket(bucket: &Reader) -> Result<BucketInput, ConfigError> {
    bucket.check_keys(BUCKET_OPTIONS, BUCKET_OPTIONS_NOT_YET_SUPPORTED)?;
    Ok(BucketInput {
        host: bucket.string("host")?,
        port: bucket.integer("port")?,
        region: bucket.string("region")?,
        tls: bucket.boolean("tls")?,
        addressing_style: bucket.string("addressingStyle")?,
        access_key: bucket.string("accessKey")?,
        secret_key: bucket.string("secretKey")?.map(SecretKey::new),
        api_key: bucket.string("apiKey")?.map(SecretKey::new),
        add_content_md5: bucket.boolean("addContentMd5")?,
        streaming_uploads: bucket.string("streamingUploads")?,
        ttl: bucket.number("ttl")?,
        ca_cert: bucket.pem("caCert")?.map(Pem::new),
    })
}

/// Reads the `tls` option. A missing `cert` or `key` stays empty, and the
/// server reports it with code `ERR_INVALID_TLS` when it starts.
fn read_tls(reader: &Reader) -> Result<Option<TlsInput>, ConfigError> {
    let Some(tls) = reader.object("tls")? else {
        return Ok(None);
    };
    tls.check_keys(TLS_OPTIONS, &[])?;
    Ok(Some(TlsInput {
        cert: Pem::new(tls.pem("cert")?.unwrap_or_default()),
        key: SecretPem::new(tls.pem("key")?.unwrap_or_default()),
    }))
}

/// Reads `TLS_CERT_PATH` and `TLS_KEY_PATH`. An empty value counts as unset.
fn tls_env() -> TlsEnv {
    let variable = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    TlsEnv {
        cert_path: variable(TLS_CERT_PATH_ENV),
        key_path: variable(TLS_KEY_PATH_ENV),
    }
}

fn read_keystore(reader: &Reader) -> Result<Vec<(String, SecretKey)>, ConfigError> {
    let Some(entries) = reader.object_array("hmacKeystore")? else {
        return Ok(Vec::new());
    };
    let mut keystore = Vec::new();
    for entry in entries {
        entry.check_keys(KEYSTORE_ENTRY_OPTIONS, &[])?;
        let access_key = entry.string("accessKey")?.ok_or_else(|| {
            ConfigError::new(
                entry.path("accessKey"),
                "missing: set the client's access key id",
            )
        })?;
        let secret_key = entry.string("secretKey")?.ok_or_else(|| {
            ConfigError::new(
                entry.path("secretKey"),
                "missing: set the client's secret access key",
            )
        })?;
        keystore.push((access_key, SecretKey::new(secret_key)));
    }
    Ok(keystore)
}

/// Typed access to the properties of one JavaScript object, with errors that
/// name the property's path in the config.
struct Reader<'env> {
    object: Object<'env>,
    prefix: String,
}

impl<'env> Reader<'env> {
    fn new(object: &Object<'env>, prefix: &str) -> Self {
        Self {
            object: *object,
            prefix: prefix.to_string(),
        }
    }

    fn path(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.prefix)
        }
    }

    fn keys(&self) -> Result<Vec<String>, ConfigError> {
        Object::keys(&self.object)
            .map_err(|error| ConfigError::new(self.prefix.clone(), error.to_string()))
    }

    /// Rejects keys that are neither in `known` nor in `not_yet_supported`,
    /// and keys in `not_yet_supported` whose value is set.
    fn check_keys(&self, known: &[&str], not_yet_supported: &[&str]) -> Result<(), ConfigError> {
        for key in self.keys()? {
            if known.contains(&key.as_str()) {
                continue;
            }
            if not_yet_supported.contains(&key.as_str()) {
                if self.value_type(&key)? == ValueType::Undefined {
                    continue;
                }
                return Err(ConfigError::new(
                    self.path(&key),
                    "not supported by this version yet; remove the option",
                ));
            }
            let hint = closest(&key, known)
                .map(|candidate| format!(" (did you mean '{candidate}'?)"))
                .unwrap_or_default();
            return Err(ConfigError::new(
                self.path(&key),
                format!(
                    "unknown option{hint}; valid options are: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(())
    }

    fn raw(&self, key: &str) -> Result<Unknown<'env>, ConfigError> {
        self.object
            .get_named_property_unchecked::<Unknown>(key)
            .map_err(|error| ConfigError::new(self.path(key), error.to_string()))
    }

    fn value_type(&self, key: &str) -> Result<ValueType, ConfigError> {
        self.raw(key)?
            .get_type()
            .map_err(|error| ConfigError::new(self.path(key), error.to_string()))
    }

    /// Returns the value when it has the `expected` type; None when it is
    /// undefined or null.
    fn typed<T: FromNapiValue>(
        &self,
        key: &str,
        expected: ValueType,
        noun: &str,
    ) -> Result<Option<T>, ConfigError> {
        let value = self.raw(key)?;
        let actual = value
            .get_type()
            .map_err(|error| ConfigError::new(self.path(key), error.to_string()))?;
        if matches!(actual, ValueType::Undefined | ValueType::Null) {
            return Ok(None);
        }
        if actual != expected {
            return Err(ConfigError::new(
                self.path(key),
                format!("expected {noun}, got {}", type_name(actual)),
            ));
        }
        T::from_unknown(value)
            .map(Some)
            .map_err(|error| ConfigError::new(self.path(key), error.to_string()))
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.typed(key, ValueType::String, "a string")
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ConfigError> {
        self.typed(key, ValueType::Boolean, "a boolean")
    }

    /// Reads PEM given as a string or a Buffer.
    fn pem(&self, key: &str) -> Result<Option<Vec<u8>>, ConfigError> {
        let value = self.raw(key)?;
        let value_type = value
            .get_type()
            .map_err(|error| ConfigError::new(self.path(key), error.to_string()))?;
        match value_type {
            ValueType::Undefined | ValueType::Null => Ok(None),
            ValueType::String => String::from_unknown(value)
                .map(|text| Some(text.into_bytes()))
                .map_err(|error| ConfigError::new(self.path(key), error.to_string())),
            ValueType::Object if value.is_buffer().unwrap_or(false) => {
                BufferSlice::from_unknown(value)
                    .map(|buffer| Some(buffer.to_vec()))
                    .map_err(|error| ConfigError::new(self.path(key), error.to_string()))
            }
            other => Err(ConfigError::new(
                self.path(key),
                format!(
                    "expected PEM as a string or a Buffer, got {}",
                    type_name(other)
                ),
            )),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, ConfigError> {
        self.typed(key, ValueType::Number, "a number")
    }

    fn integer(&self, key: &str) -> Result<Option<i64>, ConfigError> {
        match self.number(key)? {
            None => Ok(None),
            Some(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Ok(Some(value as i64)),
            Some(value) => Err(ConfigError::new(
                self.path(key),
                format!("expected a whole number, got {value}"),
            )),
        }
    }

    fn function<Args, Return>(
        &self,
        key: &str,
    ) -> Result<Option<Function<'env, Args, Return>>, ConfigError>
    where
        Args: napi::bindgen_prelude::JsValuesTupleIntoVec,
        Return: FromNapiValue,
    {
        self.typed(key, ValueType::Function, "a function")
    }

    fn object(&self, key: &str) -> Result<Option<Reader<'env>>, ConfigError> {
        let object: Option<Object<'env>> = self.typed(key, ValueType::Object, "an object")?;
        Ok(object.map(|object| Reader::new(&object, &self.path(key))))
    }

    fn array_items(&self, key: &str) -> Result<Option<Vec<(String, Unknown<'env>)>>, ConfigError> {
        let Some(array) = self.object(key)? else {
            return Ok(None);
        };
        let is_array = array.object.is_array().unwrap_or(false);
        if !is_array {
            return Err(ConfigError::new(self.path(key), "expected an array"));
        }
        let length = array
            .object
            .get_array_length()
            .map_err(|error| ConfigError::new(self.path(key), error.to_string()))?;
        let mut items = Vec::with_capacity(length as usize);
        for index in 0..length {
            let item = array
                .object
                .get_element::<Unknown>(index)
                .map_err(|error| ConfigError::new(self.path(key), error.to_string()))?;
            items.push((format!("{}[{index}]", self.path(key)), item));
        }
        Ok(Some(items))
    }

    fn string_array(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        let Some(items) = self.array_items(key)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|(path, item)| {
                match item.get_type() {
                    Ok(ValueType::String) => {}
                    Ok(other) => {
                        return Err(ConfigError::new(
                            path,
                            format!("expected a string, got {}", type_name(other)),
                        ))
                    }
                    Err(error) => return Err(ConfigError::new(path, error.to_string())),
                }
                String::from_unknown(item)
                    .map_err(|error| ConfigError::new(path, error.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn object_array(&self, key: &str) -> Result<Option<Vec<Reader<'env>>>, ConfigError> {
        let Some(items) = self.array_items(key)? else {
            return Ok(None);
        };
        items
            .into_iter()
            .map(|(path, item)| {
                match item.get_type() {
                    Ok(ValueType::Object) => {}
                    Ok(other) => {
                        return Err(ConfigError::new(
                            path,
                            format!("expected an object, got {}", type_name(other)),
                        ))
                    }
                    Err(error) => return Err(ConfigError::new(path, error.to_string())),
                }
                let object = Object::from_unknown(item)
                    .map_err(|error| ConfigError::new(path.clone(), error.to_string()))?;
                Ok(Reader::new(&object, &path))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

fn type_name(value_type: ValueType) -> &'static str {
    match value_type {
        ValueType::Undefined => "undefined",
        ValueType::Null => "null",
        ValueType::Boolean => "a boolean",
        ValueType::Number => "a number",
        ValueType::String => "a string",
        ValueType::Symbol => "a symbol",
        ValueType::Object => "an object",
        ValueType::Function => "a function",
        ValueType::External => "an external value",
        ValueType::BigInt => "a bigint",
        _ => "an unknown type",
    }
}

/// The known option closest to a misspelled one, when it is close enough to
/// be a likely typo.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| {
            (
                edit_distance(&key.to_ascii_lowercase(), &candidate.to_ascii_lowercase()),
                *candidate,
            )
        })
        .filter(|(distance, _)| *distance <= 2)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggests_known_option() {
        assert_eq!(closest("cosMapp", SERVER_OPTIONS), Some("cosMap"));
        assert_eq!(closest("httpport", SERVER_OPTIONS), Some("httpPort"));
        assert_eq!(closest("somethingElse", SERVER_OPTIONS), None);
    }
}
