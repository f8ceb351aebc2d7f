//! The cryptographic steps of SigV4 (string to sign, signing key, signature)
//! and the signer for requests sent to a backend.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use hmac::digest::Key;
use hmac::{Hmac, Mac};
use http::header::{HeaderName, HeaderValue, AUTHORIZATION};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use time::{OffsetDateTime, UtcOffset};

use super::canonical::{canonical_query, header_value, join_canonical_request};
use super::{CredentialScope, ALGORITHM, UNSIGNED_PAYLOAD};
use crate::chunked::ChunkSigning;
use crate::secret::SecretKey;

type HmacSha256 = Hmac<Sha256>;

const X_AMZ_DATE: HeaderName = HeaderName::from_static("x-amz-date");
const X_AMZ_CONTENT_SHA256: HeaderName = HeaderName::from_static("x-amz-content-sha256");

/// Returns the SHA-256 of `data` in lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Computes HMAC-SHA256 of `data` under `key`.
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new(&hmac_key_block(key));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Returns the HMAC key block of `key` as RFC 2104 defines it: a key longer
/// than the SHA-256 block (64 bytes) is hashed first, then the key is padded
/// with zeros to the block size. Passing this block to `Mac::new` gives
/// the same MAC as `Mac::new_from_slice(key)`, without its error path.
fn hmac_key_block(key: &[u8]) -> Key<HmacSha256> {
    let mut block = Key::<HmacSha256>::default();
    if key.len() > block.len() {
        let digest = Sha256::digest(key);
        block[..digest.len()].copy_from_slice(&digest);
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    block
}

/// Formats `time` in UTC as SigV4's `YYYYMMDD'T'HHMMSS'Z'`.
pub fn format_amz_date(time: OffsetDateTime) -> String {
    let utc = time.to_offset(UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// Builds the string to sign: the algorithm, the request time, the credential
/// scope and the SHA-256 of the canonical request, one per line.
pub fn string_to_sign(amz_date: &str, scope: &CredentialScope, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}\n{}",
        scope.to_scope_string(),
        sha256_hex(canonical_request.as_bytes())
    )
}

/// Most signing keys kept by [`signing_key`]; the cache starts over when
/// it is full. A key is valid for one day, so a running proxy needs one per
/// secret, region and service, plus the previous day's around midnight.
const SIGNING_KEY_CACHE_CAPACITY: usize = 4096;

/// Signing keys by the SHA-256 of their inputs (see [`signing_key`]).
static SIGNING_KEYS: OnceLock<Mutex<HashMap<[u8; 32], [u8; 32]>>> = OnceLock::new();

/// Derives the signing key of one day, region and service from the secret:
/// HMAC chained over the date, region, service and "aws4_request", starting
/// from the key "AWS4" + secret.
///
/// Every request needs the key of its day for the client's secret and
/// for the backend's, so derived keys are cached: one SHA-256 over the
/// inputs finds a key that otherwise takes four HMACs.
pub fn signing_key(secret: &SecretKey, date: &str, region: &str, service: &str) -> [u8; 32] {
    let mut inputs = Sha256::new();
    for part in [secret.expose(), date, region, service] {
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        inputs.update((part.len() as u64).to_le_bytes());
        inputs.update(part.as_bytes());
    }
    let id: [u8; 32] = inputs.finalize().into();
    let cache = SIGNING_KEYS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(key) = cache.lock().ok().and_then(|keys| keys.get(&id).copied()) {
        return key;
    }
    let key = derive_signing_key(secret, date, region, service);
    if let Ok(mut keys) = cache.lock() {
        if keys.len() >= SIGNING_KEY_CACHE_CAPACITY {
            keys.clear();
        }
        keys.insert(id, key);
    }
    key
}

fn derive_signing_key(secret: &SecretKey, date: &str, region: &str, service: &str) -> [u8; 32] {
    let initial_key = format!("AWS4{}", secret.expose());
    let date_key = hmac_sha256(initial_key.as_bytes(), date.as_bytes());
    let region_key = hmac_sha256(&date_key, region.as_bytes());
    let service_key = hmac_sha256(&region_key, service.as_bytes());
    hmac_sha256(&service_key, b"aws4_request")
}

/// Returns the signature of `string_to_sign`: HMAC-SHA256 under the signing
/// key, in lowercase hex.
pub fn sign(signing_key: &[u8; 32], string_to_sign: &str) -> String {
    hex::encode(hmac_sha256(signing_key, string_to_sign.as_bytes()))
}

/// Signs requests sent to a backend with the backend's credentials.
pub struct BackendSigner<'a> {
    pub access_key: &'a str,
    pub secret: &'a SecretKey,
    pub region: &'a str,
    /// The SigV4 service name, "s3" for S3.
    pub service: &'a str,
}

impl BackendSigner<'_> {
    /// Signs an outgoing request in place: sets x-amz-date (formatted from
    /// `now`) and Authorization on `headers`. Returns the signature together
    /// with the key, date and scope it was made with, which is what signing
    /// the chunks of a streaming body, chained from this signature, takes.
    ///
    /// `path` must already be encoded exactly as it will be sent (for example
    /// [`super::canonical_uri`] output) and is signed as is. `query` is the raw
    /// query to send, possibly empty. `headers` must already contain `host` and
    /// `x-amz-content-sha256`; when x-amz-content-sha256 is absent it is set to
    /// UNSIGNED-PAYLOAD. The signed headers are `host`, every `x-amz-*` header,
    /// and `content-type` and `content-md5` when present.
    ///
    /// When the access key, region or service contain control characters, the
    /// Authorization header cannot carry them: it is removed, so the backend
    /// rejects the request.
    pub fn sign_headers(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &mut HeaderMap,
        now: OffsetDateTime,
    ) -> ChunkSigning {
        let amz_date = format_amz_date(now);
        if let Ok(value) = HeaderValue::from_str(&amz_date) {
            headers.insert(X_AMZ_DATE, value);
        }
        if !headers.contains_key(X_AMZ_CONTENT_SHA256) {
            headers.insert(
                X_AMZ_CONTENT_SHA256,
                HeaderValue::from_static(UNSIGNED_PAYLOAD),
            );
        }

        let names = headers_to_sign(headers);
        let mut canonical_headers = String::new();
        for name in &names {
            // Every name comes from `headers`, so each one has a value.
            if let Some(value) = header_value(headers, name, None) {
                canonical_headers.push_str(name);
                canonical_headers.push(':');
                canonical_headers.push_str(&value);
                canonical_headers.push('\n');
            }
        }
        let signed_headers_line = names.join(";");
        let payload_hash =
            header_value(headers, X_AMZ_CONTENT_SHA256.as_str(), None).unwrap_or_default();
        let canonical_request = join_canonical_request(
            method,
            if path.is_empty() { "/" } else { path },
            &canonical_query(query, false),
            &canonical_headers,
            &signed_headers_line,
            &payload_hash,
        );

        let scope = CredentialScope {
            date: amz_date[..8].to_owned(),
            region: self.region.to_owned(),
            service: self.service.to_owned(),
        };
        let string_to_sign = string_to_sign(&amz_date, &scope, &canonical_request);
        let key = signing_key(self.secret, &scope.date, self.region, self.service);
        let signature = sign(&key, &string_to_sign);

        let authorization = format!(
            "{ALGORITHM} Credential={}/{}, SignedHeaders={signed_headers_line}, Signature={signature}",
            self.access_key,
            scope.to_scope_string()
        );
        match HeaderValue::from_bytes(authorization.as_bytes()) {
            Ok(value) => {
                headers.insert(AUTHORIZATION, value);
            }
            Err(_) => {
                headers.remove(AUTHORIZATION);
            }
        }
        ChunkSigning {
            signing_key: key,
            scope: scope.to_scope_string(),
            amz_date,
            seed_signature: signature,
        }
    }
}

/// Returns the sorted names of the headers the backend signer signs.
fn headers_to_sign(headers: &HeaderMap) -> Vec<String> {
    let mut names: Vec<String> = headers
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| {
            matches!(*name, "host" | "content-type" | "content-md5") || name.starts_with("x-amz-")
        })
        .map(str::to_owned)
        .collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn cached_signing_key_matches_derivation() {
        let secret = example_secret();
        let derived = derive_signing_key(&secret, "20130524", "us-east-1", "s3");
        assert_eq!(signing_key(&secret, "20130524", "us-east-1", "s3"), derived);
        assert_eq!(
            signing_key(&secret, "20130524", "us-east-1", "s3"),
            derived,
            "from the cache"
        );
        let other = SecretKey::new("another-secret");
        assert_ne!(signing_key(&other, "20130524", "us-east-1", "s3"), derived);
        assert_ne!(signing_key(&secret, "20130525", "us-east-1", "s3"), derived);
    }

    fn example_secret() -> SecretKey {
        SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(sha256_hex(b""), super::super::EMPTY_SHA256);
    }

    #[test]
    fn hmac_matches_new_from_slice() {
        for len in [0, 1, 32, 63, 64, 65, 200] {
            let key: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut reference = HmacSha256::new_from_slice(&key).unwrap();
            reference.update(b"data");
            let expected: [u8; 32] = reference.finalize().into_bytes().into();
            assert_eq!(hmac_sha256(&key, b"data"), expected, "key length {len}");
        }
    }

    #[test]
    fn hmac_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn amz_date_format() {
        assert_eq!(
            format_amz_date(datetime!(2013-05-24 0:00 UTC)),
            "20130524T000000Z"
        );
        assert_eq!(
            format_amz_date(datetime!(2013-05-24 1:02:03 +2)),
            "20130523T230203Z"
        );
    }

    #[test]
    fn signing_key_of_aws_example() {
        // Derived key of the AWS S3 examples (20130524, us-east-1, s3).
        let key = signing_key(&example_secret(), "20130524", "us-east-1", "s3");
        assert_eq!(
            hex::encode(key),
            "dbb893acc010964918f1fd433add87c70e8b0db6be30c1fbeafefa5ec6ba8378"
        );
    }

    #[test]
    fn backend_signer_signs_expected_headers() {
        let secret = example_secret();
        let signer = BackendSigner {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            secret: &secret,
            region: "us-east-1",
            service: "s3",
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("backend:9000"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        headers.insert("content-length", HeaderValue::from_static("3"));
        headers.insert("x-amz-meta-a", HeaderValue::from_static("b"));
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(super::super::EMPTY_SHA256),
        );
        headers.insert("authorization", HeaderValue::from_static("from the client"));
        let now = datetime!(2013-05-24 0:00 UTC);

        let signature = signer
            .sign_headers("PUT", "/b/k", "", &mut headers, now)
            .seed_signature;

        assert_eq!(headers["x-amz-date"], "20130524T000000Z");
        let authorization = headers["authorization"].to_str().unwrap();
        assert_eq!(
            authorization,
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-a, Signature={signature}"
            )
        );
    }

    #[test]
    fn backend_signer_defaults_to_unsigned_payload() {
        let secret = example_secret();
        let signer = BackendSigner {
            access_key: "AK",
            secret: &secret,
            region: "us-east-1",
            service: "s3",
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("backend"));
        signer.sign_headers("GET", "/", "", &mut headers, datetime!(2024-01-01 0:00 UTC));
        assert_eq!(headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
    }

    #[test]
    fn backend_signer_removes_authorization_it_cannot_set() {
        let secret = example_secret();
        let signer = BackendSigner {
            access_key: "AK\n",
            secret: &secret,
            region: "us-east-1",
            service: "s3",
        };
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("backend"));
        headers.insert("authorization", HeaderValue::from_static("from the client"));
        signer.sign_headers("GET", "/", "", &mut headers, datetime!(2024-01-01 0:00 UTC));
        assert!(headers.get("authorization").is_none());
    }
}
