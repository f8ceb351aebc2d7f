//! AWS Signature Version 2 for S3, as clients send it: the
//! `Authorization: AWS <AccessKeyId>:<Signature>` header, or the
//! `AWSAccessKeyId`, `Expires` and `Signature` query parameters of a
//! presigned URL. This module only verifies, because the proxy signs
//! backend requests with SigV4.
//!
//! The signature is the base64 HMAC-SHA1 of
//!
//! ```text
//! METHOD \n Content-MD5 \n Content-Type \n Date \n CanonicalizedAmzHeaders CanonicalizedResource
//! ```
//!
//! where Date is the Expires value of a presigned URL, and empty when header
//! auth carries x-amz-date (which then appears among the x-amz-* headers).

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, CONTENT_TYPE, DATE};
use http::HeaderMap;
use percent_encoding::percent_decode_str;
use sha1::Sha1;
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc2822;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use crate::secret::SecretKey;
use crate::sigv4::{RequestView, MAX_CLOCK_SKEW};

type HmacSha1 = Hmac<Sha1>;

/// Query parameters that S3 includes in the CanonicalizedResource, with
/// their values, when a request has them. Sorted as they are written.
pub const SUB_RESOURCES: [&str; 35] = [
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

const ACCESS_KEY_PARAM: &str = "AWSAccessKeyId";
const EXPIRES_PARAM: &str = "Expires";
const SIGNATURE_PARAM: &str = "Signature";
const X_AMZ_DATE: &str = "x-amz-date";
const CONTENT_MD5: &str = "content-md5";

/// The `Expires` parameter of a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryExpiry {
    /// The decimal digits as sent, which take the place of Date in the
    /// string to sign.
    pub value: String,
    /// The same instant in seconds since the Unix epoch.
    pub epoch_seconds: i64,
}

/// The SigV2 claims of a request. `Debug` leaves out the signature.
#[derive(Clone, PartialEq, Eq)]
pub struct SigV2Auth {
    pub access_key: String,
    /// Base64 of the HMAC-SHA1, as sent (query value decoded). Never logged.
    pub signature: String,
    /// The CanonicalizedResource: `/bucket` and the path as received, then
    /// the signed sub-resources.
    pub resource: String,
    /// Present for a presigned URL, `None` for header auth.
    pub expires: Option<QueryExpiry>,
}

impl fmt::Debug for SigV2Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigV2Auth")
            .field("access_key", &self.access_key)
            .field("signature", &"<redacted>")
            .field("resource", &self.resource)
            .field("expires", &self.expires)
            .finish()
    }
}

/// A SigV2 failure. `Display` never contains a secret key or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV2Error {
    #[error("AWS authorization header is invalid. Expected AwsAccessKeyId:signature")]
    HeaderMalformed,
    /// A presigned URL whose AWSAccessKeyId, Expires or Signature is missing,
    /// repeated or invalid.
    #[error("{0}")]
    QueryMalformed(String),
    /// An Authorization header and SigV2 query parameters together.
    #[error("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")]
    MultipleAuthMechanisms,
    #[error("AWS authentication requires a valid Date or x-amz-date header: neither is present")]
    MissingDate,
    #[error(
        "AWS authentication requires a valid Date or x-amz-date header: {0:?} is not a valid date"
    )]
    InvalidDate(String),
    #[error("The difference between the request time and the current time is too large (more than 15 minutes)")]
    RequestTimeTooSkewed,
    #[error("Request has expired")]
    Expired,
    #[error("The request signature we calculated does not match the signature you provided. Check your key and signing method.")]
    SignatureDoesNotMatch,
}

impl SigV2Error {
    /// Returns the S3 error code and HTTP status that S3 returns for this failure.
    pub fn s3_code(&self) -> (&'static str, u16) {
        match self {
            Self::HeaderMalformed | Self::MultipleAuthMechanisms => ("InvalidArgument", 400),
            Self::QueryMalformed(_) | Self::MissingDate | Self::InvalidDate(_) | Self::Expired => {
                ("AccessDenied", 403)
            }
            Self::RequestTimeTooSkewed => ("RequestTimeTooSkewed", 403),
            Self::SignatureDoesNotMatch => ("SignatureDoesNotMatch", 403),
        }
    }
}

/// Extracts the SigV2 claims of a request without checking the signature.
///
/// Returns `Ok(None)` when the request carries no SigV2 auth: no
/// Authorization header starting with `AWS `, and neither an AWSAccessKeyId
/// nor a Signature query parameter. `virtual_host_bucket` is the bucket named
/// by the Host header of a virtual-host style request; it is put in front of
/// the path in the CanonicalizedResource.
pub fn parse_auth_v2(
    req: &RequestView,
    virtual_host_bucket: Option<&str>,
) -> Result<Option<SigV2Auth>, SigV2Error> {
    let params: Vec<(String, String)> = req.raw_query.map(decoded_pairs).unwrap_or_default();
    let has_param = |wanted: &str| params.iter().any(|(name, _)| name == wanted);
    let has_query_auth = has_param(ACCESS_KEY_PARAM) || has_param(SIGNATURE_PARAM);
    let authorization = authorization_header(req.headers)?;
    let resource = || canonical_resource(req.raw_path, req.raw_query, virtual_host_bucket);

    match (authorization, has_query_auth) {
        (Some(_), true) => Err(SigV2Error::MultipleAuthMechanisms),
        (Some(value), false) => {
            let Some(credentials) = value.strip_prefix("AWS ") else {
                return Ok(None);
            };
            let (access_key, signature) = credentials
                .trim_matches([' ', '\t'])
                .rsplit_once(':')
                .filter(|(key, signature)| !key.is_empty() && !signature.is_empty())
                .ok_or(SigV2Error::HeaderMalformed)?;
            Ok(Some(SigV2Auth {
                access_key: access_key.to_owned(),
                signature: signature.to_owned(),
                resource: resource(),
                expires: None,
            }))
        }
        (None, true) => {
            let access_key = single_param(&params, ACCESS_KEY_PARAM)?;
            let signature = single_param(&params, SIGNATURE_PARAM)?;
            let expires = single_param(&params, EXPIRES_PARAM)?;
            let epoch_seconds = parse_epoch_seconds(expires).ok_or_else(|| {
                SigV2Error::QueryMalformed(format!(
                    "Invalid date (should be seconds since epoch): {}",
                    excerpt(expires)
                ))
            })?;
            if access_key.is_empty() || signature.is_empty() {
                return Err(SigV2Error::QueryMalformed(format!(
                    "{ACCESS_KEY_PARAM} and {SIGNATURE_PARAM} must not be empty"
                )));
            }
            Ok(Some(SigV2Auth {
                access_key: access_key.to_owned(),
                signature: signature.to_owned(),
                resource: resource(),
                expires: Some(QueryExpiry {
                    value: expires.to_owned(),
                    epoch_seconds,
                }),
            }))
        }
        (None, false) => Ok(None),
    }
}

/// Verifies the signature of `req` as claimed by `auth`, with `secret` at
/// time `now`.
///
/// Header auth requires x-amz-date or Date within [`MAX_CLOCK_SKEW`] of
/// `now`, and a presigned URL must not be past its Expires. The signatures
/// are compared in constant time.
pub fn verify_v2(
    req: &RequestView,
    auth: &SigV2Auth,
    secret: &SecretKey,
    now: OffsetDateTime,
) -> Result<(), SigV2Error> {
    match &auth.expires {
        Some(expiry) => {
            if now.unix_timestamp() > expiry.epoch_seconds {
                return Err(SigV2Error::Expired);
            }
        }
        None => {
            let text = header_text(req.headers, X_AMZ_DATE)
                .or_else(|| header_text(req.headers, DATE.as_str()))
                .ok_or(SigV2Error::MissingDate)?;
            let timestamp =
                parse_request_date(&text).ok_or_else(|| SigV2Error::InvalidDate(excerpt(&text)))?;
            if (now - timestamp).abs() > MAX_CLOCK_SKEW {
                return Err(SigV2Error::RequestTimeTooSkewed);
            }
        }
    }

    let expected = signature_bytes(secret, &string_to_sign(req, auth));
    // A signature that is not base64 cannot match, so it is reported as a
    // mismatch too.
    let provided = BASE64.decode(auth.signature.as_bytes()).unwrap_or_default();
    if !bool::from(expected.as_slice().ct_eq(provided.as_slice())) {
        return Err(SigV2Error::SignatureDoesNotMatch);
    }
    Ok(())
}

/// Returns the string to sign of `req`: method, Content-MD5, Content-Type,
/// Date (the Expires value of a presigned URL, empty when the request has
/// x-amz-date), the canonical x-amz-* headers and the resource.
pub fn string_to_sign(req: &RequestView, auth: &SigV2Auth) -> String {
    let date = match &auth.expires {
        Some(expiry) => expiry.value.clone(),
        None if req.headers.contains_key(X_AMZ_DATE) => String::new(),
        None => header_text(req.headers, DATE.as_str()).unwrap_or_default(),
    };
    format!(
        "{}\n{}\n{}\n{}\n{}{}",
        req.method,
        header_text(req.headers, CONTENT_MD5).unwrap_or_default(),
        header_text(req.headers, CONTENT_TYPE.as_str()).unwrap_or_default(),
        date,
        canonical_amz_headers(req.headers),
        auth.resource
    )
}

/// Returns the CanonicalizedAmzHeaders: one `name:value\n` line per x-amz-*
/// header, names lowercase and sorted, values trimmed, the values of a
/// repeated header joined with `,`.
pub fn canonical_amz_headers(headers: &HeaderMap) -> String {
    let mut lines = BTreeMap::new();
    for name in headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-") {
            lines.insert(name, header_text(headers, name).unwrap_or_default());
        }
    }
    lines
        .into_iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect()
}

/// Returns the CanonicalizedResource: `/<bucket>` of a virtual-host style
/// request, the path as received (still percent-encoded), then `?` and the
/// [`SUB_RESOURCES`] of the query sorted by name, each as `name` or
/// `name=value` with the value decoded, joined with `&`.
pub fn canonical_resource(
    raw_path: &str,
    raw_query: Option<&str>,
    virtual_host_bucket: Option<&str>,
) -> String {
    let path = if raw_path.is_empty() { "/" } else { raw_path };
    let mut resource = match virtual_host_bucket {
        Some(bucket) => format!("/{bucket}{path}"),
        None => path.to_owned(),
    };

    let mut signed: Vec<(&str, Option<String>)> = raw_query
        .unwrap_or("")
        .split('&')
        .filter(|segment| !segment.is_empty())
        .filter_map(|segment| {
            let (raw_name, raw_value) = match segment.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (segment, None),
            };
            let name = percent_decode_str(raw_name).decode_utf8_lossy();
            let known = SUB_RESOURCES.iter().find(|known| **known == name)?;
            let value = raw_value.map(decode);
            Some((*known, value))
        })
        .collect();
    if signed.is_empty() {
        return resource;
    }
    signed.sort_by(|a, b| a.0.cmp(b.0));
    for (index, (name, value)) in signed.iter().enumerate() {
        resource.push(if index == 0 { '?' } else { '&' });
        resource.push_str(name);
        if let Some(value) = value {
            resource.push('=');
            resource.push_str(value);
        }
    }
    resource
}

/// Returns the base64 HMAC-SHA1 of `string_to_sign` with `secret`: the
/// signature a client sends.
pub fn sign(secret: &SecretKey, string_to_sign: &str) -> String {
    BASE64.encode(signature_bytes(secret, string_to_sign))
}

fn signature_bytes(secret: &SecretKey, string_to_sign: &str) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    mac.finalize().into_bytes().into()
}

/// Returns the single Authorization header value, if any.
fn authorization_header(headers: &HeaderMap) -> Result<Option<&str>, SigV2Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SigV2Error::HeaderMalformed);
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| SigV2Error::HeaderMalformed)
}

/// Returns the values of header `name` trimmed and joined with `,`, or
/// `None` when the request does not have it.
///
/// NOTE: a value that is not UTF-8 is converted lossily, so its signature
/// cannot match. Clients sign header values as text.
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| {
            String::from_utf8_lossy(value.as_bytes())
                .trim_matches([' ', '\t'])
                .to_owned()
        })
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Splits a raw query on `&` into decoded names and values.
fn decoded_pairs(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Decodes `%XX` escapes once. A `+` stays `+`, as in a base64 signature.
fn decode(raw: &str) -> String {
    percent_decode_str(raw).decode_utf8_lossy().into_owned()
}

/// Returns the value of a query parameter that must appear exactly once.
fn single_param<'a>(params: &'a [(String, String)], name: &str) -> Result<&'a str, SigV2Error> {
    let mut values = params.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
    let Some(value) = values.next() else {
        return Err(SigV2Error::QueryMalformed(format!(
            "Query-string authentication requires the {SIGNATURE_PARAM}, {EXPIRES_PARAM} and {ACCESS_KEY_PARAM} parameters; {name} is missing"
        )));
    };
    if values.next().is_some() {
        return Err(SigV2Error::QueryMalformed(format!(
            "{name} appears more than once"
        )));
    }
    Ok(value)
}

/// Parses Expires: decimal digits only, no sign.
fn parse_epoch_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses the request time of header auth: an RFC 2822 date with a numeric
/// zone (`Tue, 27 Mar 2007 19:36:42 +0000`, what SigV2 clients send), an
/// HTTP date ending in `GMT`, or the compact `YYYYMMDD'T'HHMMSS'Z'` form.
fn parse_request_date(text: &str) -> Option<OffsetDateTime> {
    if let Ok(timestamp) = OffsetDateTime::parse(text, &Rfc2822) {
        return Some(timestamp);
    }
    let http_date = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let compact = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, http_date)
        .or_else(|_| PrimitiveDateTime::parse(text, compact))
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Returns at most the first 64 characters of a client-supplied value, for
/// error messages that echo it.
fn excerpt(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    match value.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use time::macros::datetime;

    const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

    fn example_secret() -> SecretKey {
        SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            headers.append(name, HeaderValue::from_static(value));
        }
        headers
    }

    fn view<'a>(method: &'a str, target: &'a str, headers: &'a HeaderMap) -> RequestView<'a> {
        let (raw_path, raw_query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (target, None),
        };
        RequestView {
            method,
            raw_path,
            raw_query,
            headers,
            authority: None,
        }
    }

    /// Parses the Date or x-amz-date of an example, the time at which its
    /// clock check passes.
    fn time_of(req: &RequestView) -> OffsetDateTime {
        let text = header_text(req.headers, X_AMZ_DATE)
            .or_else(|| header_text(req.headers, "date"))
            .unwrap();
        parse_request_date(&text).unwrap()
    }

    /// Checks one published example: the claims parsed from the request, the
    /// string to sign, the signature, and verification with the example key.
    fn check_example(
        req: &RequestView,
        bucket: Option<&str>,
        expected_string_to_sign: &str,
        expected_signature: &str,
    ) {
        let auth = parse_auth_v2(req, bucket).unwrap().unwrap();
        assert_eq!(auth.access_key, ACCESS_KEY);
        assert_eq!(auth.signature, expected_signature, "signature as sent");
        let sts = string_to_sign(req, &auth);
        assert_eq!(sts, expected_string_to_sign, "string to sign");
        assert_eq!(
            sign(&example_secret(), &sts),
            expected_signature,
            "signature"
        );
        verify_v2(req, &auth, &example_secret(), time_of(req)).unwrap();
    }

    fn authorization(signature: &str) -> String {
        format!("AWS {ACCESS_KEY}:{signature}")
    }

    #[test]
    fn example_object_get() {
        let mut h = headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ]);
        let signature = "bWq2s1WEIj+Ydj0vQ697zp+IXMU=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        check_example(
            &view("GET", "/photos/puppy.jpg", &h),
            Some("johnsmith"),
            "GET\n\n\nTue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg",
            signature,
        );
    }

    #[test]
    fn example_object_put() {
        let mut h = headers(&[
            ("content-type", "image/jpeg"),
            ("content-length", "94328"),
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 21:15:45 +0000"),
        ]);
        let signature = "MyyxeRY7whkBe+bq8fHCL/2kKUg=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        check_example(
            &view("PUT", "/photos/puppy.jpg", &h),
            Some("johnsmith"),
            "PUT\n\nimage/jpeg\nTue, 27 Mar 2007 21:15:45 +0000\n/johnsmith/photos/puppy.jpg",
            signature,
        );
    }

    #[test]
    fn example_list() {
        let mut h = headers(&[
            ("user-agent", "Mozilla/5.0"),
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:42:41 +0000"),
        ]);
        let signature = "htDYFYduRNen8P9ZfE/s9SuKy0U=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        check_example(
            &view("GET", "/?prefix=photos&max-keys=50&marker=puppy", &h),
            Some("johnsmith"),
            "GET\n\n\nTue, 27 Mar 2007 19:42:41 +0000\n/johnsmith/",
            signature,
        );
    }

    #[test]
    fn example_fetch_acl() {
        let mut h = headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:44:46 +0000"),
        ]);
        let signature = "c2WLPFtWHVgbEmeEG93a4cG37dM=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        check_example(
            &view("GET", "/?acl", &h),
            Some("johnsmith"),
            "GET\n\n\nTue, 27 Mar 2007 19:44:46 +0000\n/johnsmith/?acl",
            signature,
        );
    }

    #[test]
    fn example_delete_with_x_amz_date() {
        // The published Delete example (path style, Date and x-amz-date)
        // prints the x-amz-date value in the Date line and no x-amz-date
        // header line. That contradicts the rule on the same page: with
        // x-amz-date, the Date line is empty and x-amz-date is a canonical
        // x-amz-* header, which is what clients such as s3cmd sign. So the
        // published string and signature are checked as a plain HMAC, and the
        // request is checked with the rule's string and its signature.
        let published_sts =
            "DELETE\n\n\nTue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg";
        assert_eq!(
            sign(&example_secret(), published_sts),
            "lx3byBScXR6KzyMaifNkardMwNk="
        );

        let mut h = headers(&[
            ("user-agent", "dotnet"),
            ("host", "s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 21:20:27 +0000"),
            ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"),
        ]);
        let signature = "R4dJ53KECjStyBO5iTBJZ4XVOaI=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        check_example(
            &view("DELETE", "/johnsmith/photos/puppy.jpg", &h),
            None,
            "DELETE\n\n\n\nx-amz-date:Tue, 27 Mar 2007 21:20:26 +0000\n/johnsmith/photos/puppy.jpg",
            signature,
        );
    }

    #[test]
    fn example_upload_with_metadata() {
        let mut h = headers(&[
            ("user-agent", "curl/7.15.5"),
            ("host", "static.johnsmith.net:8080"),
            ("date", "Tue, 27 Mar 2007 21:06:08 +0000"),
            ("x-amz-acl", "public-read"),
            ("content-type", "application/x-download"),
            ("content-md5", "4gJE4saaMU4BqNR0kLY+lw=="),
            ("x-amz-meta-reviewedby", "joe@johnsmith.net"),
            ("x-amz-meta-reviewedby", "jane@johnsmith.net"),
            ("x-amz-meta-filechecksum", "0x02661779"),
            ("x-amz-meta-checksumalgorithm", "crc32"),
            ("content-disposition", "attachment; filename=database.dat"),
            ("content-encoding", "gzip"),
            ("content-length", "5913339"),
        ]);
        let signature = "ilyl83RwaSoYIEdixDQcA4OnAnc=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        check_example(
            &view("PUT", "/db-backup.dat.gz", &h),
            Some("static.johnsmith.net"),
            "PUT\n4gJE4saaMU4BqNR0kLY+lw==\napplication/x-download\nTue, 27 Mar 2007 21:06:08 +0000\n\
             x-amz-acl:public-read\n\
             x-amz-meta-checksumalgorithm:crc32\n\
             x-amz-meta-filechecksum:0x02661779\n\
             x-amz-meta-reviewedby:joe@johnsmith.net,jane@johnsmith.net\n\
             /static.johnsmith.net/db-backup.dat.gz",
            signature,
        );
    }

    #[test]
    fn example_list_all_buckets() {
        let mut h = headers(&[
            ("host", "s3.amazonaws.com"),
            ("date", "Wed, 28 Mar 2007 01:29:59 +0000"),
        ]);
        let signature = "qGdzdERIC03wnaRNKh6OqZehG9s=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        check_example(
            &view("GET", "/", &h),
            None,
            "GET\n\n\nWed, 28 Mar 2007 01:29:59 +0000\n/",
            signature,
        );
    }

    #[test]
    fn example_unicode_keys() {
        let mut h = headers(&[
            ("host", "s3.amazonaws.com"),
            ("date", "Wed, 28 Mar 2007 01:49:49 +0000"),
        ]);
        let signature = "DNEZGsoieTZ92F3bUfSPQcbGmlM=";
        h.insert(
            "authorization",
            HeaderValue::from_str(&authorization(signature)).unwrap(),
        );
        // The path is signed as sent, lowercase escapes included.
        check_example(
            &view("GET", "/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re", &h),
            None,
            "GET\n\n\nWed, 28 Mar 2007 01:49:49 +0000\n/dictionary/fran%C3%A7ais/pr%c3%a9f%c3%a8re",
            signature,
        );
    }

    const QUERY_EXAMPLE: &str = "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1175139620&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D";

    fn query_example_headers() -> HeaderMap {
        headers(&[("host", "johnsmith.s3.amazonaws.com")])
    }

    #[test]
    fn example_query_auth() {
        let h = query_example_headers();
        let req = view("GET", QUERY_EXAMPLE, &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        assert_eq!(auth.access_key, ACCESS_KEY);
        assert_eq!(auth.signature, "NpgCjnDzrM+WFzoENXmpNDUsSn8=");
        assert_eq!(
            auth.expires,
            Some(QueryExpiry {
                value: "1175139620".into(),
                epoch_seconds: 1_175_139_620
            })
        );
        assert_eq!(auth.resource, "/johnsmith/photos/puppy.jpg");
        let sts = string_to_sign(&req, &auth);
        assert_eq!(sts, "GET\n\n\n1175139620\n/johnsmith/photos/puppy.jpg");
        assert_eq!(
            sign(&example_secret(), &sts),
            "NpgCjnDzrM+WFzoENXmpNDUsSn8="
        );
        let before_expiry = OffsetDateTime::from_unix_timestamp(1_175_139_620).unwrap();
        verify_v2(&req, &auth, &example_secret(), before_expiry).unwrap();
    }

    #[test]
    fn query_auth_expired() {
        let h = query_example_headers();
        let req = view("GET", QUERY_EXAMPLE, &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        let after_expiry = OffsetDateTime::from_unix_timestamp(1_175_139_621).unwrap();
        let error = verify_v2(&req, &auth, &example_secret(), after_expiry).unwrap_err();
        assert_eq!(error, SigV2Error::Expired);
        assert_eq!(error.s3_code(), ("AccessDenied", 403));
        assert_eq!(error.to_string(), "Request has expired");
    }

    #[test]
    fn query_auth_date_header_is_not_signed() {
        // Expires takes the place of Date, so a Date header changes nothing.
        let h = headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
        ]);
        let req = view("GET", QUERY_EXAMPLE, &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_175_139_000).unwrap();
        verify_v2(&req, &auth, &example_secret(), now).unwrap();
    }

    #[test]
    fn query_auth_requires_each_param_once() {
        let h = query_example_headers();
        for target in [
            "/k?AWSAccessKeyId=AK&Signature=abc%3D",
            "/k?AWSAccessKeyId=AK&Expires=1175139620",
            "/k?Signature=abc%3D&Expires=1175139620",
            "/k?AWSAccessKeyId=AK&AWSAccessKeyId=AK&Signature=abc%3D&Expires=1",
            "/k?AWSAccessKeyId=AK&Signature=abc%3D&Expires=soon",
            "/k?AWSAccessKeyId=AK&Signature=abc%3D&Expires=-1",
            "/k?AWSAccessKeyId=&Signature=abc%3D&Expires=1",
        ] {
            let error = parse_auth_v2(&view("GET", target, &h), None).unwrap_err();
            assert!(matches!(error, SigV2Error::QueryMalformed(_)), "{target}");
            assert_eq!(error.s3_code(), ("AccessDenied", 403), "{target}");
        }
    }

    #[test]
    fn tampered_query_signature_rejected() {
        let h = query_example_headers();
        let target = QUERY_EXAMPLE.replace("NpgCjnDzrM", "NpgCjnDzrN");
        let req = view("GET", &target, &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_175_139_000).unwrap();
        let error = verify_v2(&req, &auth, &example_secret(), now).unwrap_err();
        assert_eq!(error, SigV2Error::SignatureDoesNotMatch);
        assert_eq!(error.s3_code(), ("SignatureDoesNotMatch", 403));
    }

    #[test]
    fn tampered_request_rejected() {
        let now = OffsetDateTime::from_unix_timestamp(1_175_139_000).unwrap();
        let h = query_example_headers();
        // Same signature, another key.
        let target = QUERY_EXAMPLE.replace("puppy", "kitten");
        let req = view("GET", &target, &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        assert_eq!(
            verify_v2(&req, &auth, &example_secret(), now),
            Err(SigV2Error::SignatureDoesNotMatch)
        );

        // Same request, another bucket.
        let req = view("GET", QUERY_EXAMPLE, &h);
        let auth = parse_auth_v2(&req, Some("janedoe")).unwrap().unwrap();
        assert_eq!(
            verify_v2(&req, &auth, &example_secret(), now),
            Err(SigV2Error::SignatureDoesNotMatch)
        );

        // Another secret.
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        assert_eq!(
            verify_v2(&req, &auth, &SecretKey::new("other"), now),
            Err(SigV2Error::SignatureDoesNotMatch)
        );

        // A signature that is not base64.
        let mut auth = auth;
        auth.signature = "not base64!".into();
        assert_eq!(
            verify_v2(&req, &auth, &example_secret(), now),
            Err(SigV2Error::SignatureDoesNotMatch)
        );
    }

    #[test]
    fn tampered_header_signature_rejected() {
        let h = headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMV=",
            ),
        ]);
        let req = view("GET", "/photos/puppy.jpg", &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        assert_eq!(
            verify_v2(&req, &auth, &example_secret(), time_of(&req)),
            Err(SigV2Error::SignatureDoesNotMatch)
        );
    }

    fn get_with_date(date_header: &'static str, date: &'static str) -> HeaderMap {
        headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            (date_header, date),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
            ),
        ])
    }

    #[test]
    fn header_auth_clock_skew() {
        let h = get_with_date("date", "Tue, 27 Mar 2007 19:36:42 +0000");
        let req = view("GET", "/photos/puppy.jpg", &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        let signed_at = datetime!(2007-03-27 19:36:42 UTC);
        for now in [
            signed_at + time::Duration::minutes(15),
            signed_at - time::Duration::minutes(15),
        ] {
            verify_v2(&req, &auth, &example_secret(), now).unwrap();
        }
        for now in [
            signed_at + time::Duration::seconds(15 * 60 + 1),
            signed_at - time::Duration::seconds(15 * 60 + 1),
        ] {
            let error = verify_v2(&req, &auth, &example_secret(), now).unwrap_err();
            assert_eq!(error, SigV2Error::RequestTimeTooSkewed);
            assert_eq!(error.s3_code(), ("RequestTimeTooSkewed", 403));
        }
    }

    #[test]
    fn x_amz_date_sets_the_request_time() {
        // With x-amz-date, Date is neither signed nor checked against the clock.
        let h = headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            ("date", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("x-amz-date", "Tue, 27 Mar 2007 19:36:42 +0000"),
            ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:placeholder"),
        ]);
        let req = view("GET", "/photos/puppy.jpg", &h);
        let mut auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        let sts = string_to_sign(&req, &auth);
        assert_eq!(
            sts,
            "GET\n\n\n\nx-amz-date:Tue, 27 Mar 2007 19:36:42 +0000\n/johnsmith/photos/puppy.jpg"
        );
        auth.signature = sign(&example_secret(), &sts);
        let now = datetime!(2007-03-27 19:40:00 UTC);
        verify_v2(&req, &auth, &example_secret(), now).unwrap();
        let later = datetime!(2007-03-28 0:00 UTC);
        assert_eq!(
            verify_v2(&req, &auth, &example_secret(), later),
            Err(SigV2Error::RequestTimeTooSkewed)
        );
    }

    #[test]
    fn header_auth_requires_a_date() {
        let h = headers(&[
            ("host", "johnsmith.s3.amazonaws.com"),
            (
                "authorization",
                "AWS AKIAIOSFODNN7EXAMPLE:bWq2s1WEIj+Ydj0vQ697zp+IXMU=",
            ),
        ]);
        let req = view("GET", "/photos/puppy.jpg", &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        let error =
            verify_v2(&req, &auth, &example_secret(), OffsetDateTime::now_utc()).unwrap_err();
        assert_eq!(error, SigV2Error::MissingDate);
        assert_eq!(error.s3_code(), ("AccessDenied", 403));

        let h = get_with_date("date", "yesterday");
        let req = view("GET", "/photos/puppy.jpg", &h);
        let auth = parse_auth_v2(&req, Some("johnsmith")).unwrap().unwrap();
        let error =
            verify_v2(&req, &auth, &example_secret(), OffsetDateTime::now_utc()).unwrap_err();
        assert_eq!(error, SigV2Error::InvalidDate("yesterday".into()));
        assert_eq!(error.s3_code(), ("AccessDenied", 403));
    }

    #[test]
    fn request_date_forms() {
        let expected = datetime!(2007-03-27 19:36:42 UTC);
        for text in [
            "Tue, 27 Mar 2007 19:36:42 +0000",
            "Tue, 27 Mar 2007 21:36:42 +0200",
            "Tue, 27 Mar 2007 19:36:42 GMT",
            "20070327T193642Z",
        ] {
            assert_eq!(parse_request_date(text), Some(expected), "{text}");
        }
        for text in [
            "",
            "2007-03-27T19:36:42Z",
            "Tue, 27 Mar 2007 19:36:42",
            "1175024202",
        ] {
            assert_eq!(parse_request_date(text), None, "{text}");
        }
    }

    #[test]
    fn header_auth_parsing() {
        let parse = |value: &'static str| {
            let h = headers(&[("authorization", value)]);
            parse_auth_v2(&view("GET", "/b/k", &h), None)
        };
        let auth = parse("AWS AK:c2ln").unwrap().unwrap();
        assert_eq!(auth.access_key, "AK");
        assert_eq!(auth.signature, "c2ln");
        assert_eq!(auth.resource, "/b/k");
        assert_eq!(auth.expires, None);
        for bad in ["AWS ", "AWS AK", "AWS AK:", "AWS :c2ln"] {
            let error = parse(bad).unwrap_err();
            assert_eq!(error, SigV2Error::HeaderMalformed, "{bad}");
            assert_eq!(error.s3_code(), ("InvalidArgument", 400));
        }
        // Other schemes are not SigV2.
        assert_eq!(parse("AWS4-HMAC-SHA256 Credential=x").unwrap(), None);
        assert_eq!(parse("Bearer token").unwrap(), None);
    }

    #[test]
    fn no_auth_returns_none() {
        let h = headers(&[("host", "johnsmith.s3.amazonaws.com")]);
        assert_eq!(parse_auth_v2(&view("GET", "/b/k", &h), None).unwrap(), None);
        assert_eq!(
            parse_auth_v2(&view("GET", "/b/k?acl&Expires=1", &h), None).unwrap(),
            None
        );
    }

    #[test]
    fn header_and_query_auth_rejected() {
        let h = headers(&[("authorization", "AWS AK:c2ln")]);
        let error = parse_auth_v2(&view("GET", QUERY_EXAMPLE, &h), None).unwrap_err();
        assert_eq!(error, SigV2Error::MultipleAuthMechanisms);
        assert_eq!(error.s3_code(), ("InvalidArgument", 400));
    }

    #[test]
    fn sub_resources_sorted_with_decoded_values() {
        assert_eq!(
            canonical_resource(
                "/b/big%20file",
                Some("uploadId=a%2Fb&partNumber=3&x-id=UploadPart"),
                None
            ),
            "/b/big%20file?partNumber=3&uploadId=a/b"
        );
        assert_eq!(
            canonical_resource(
                "/b/k",
                Some(
                    "versionId=3&response-content-type=text%2Fplain%3B%20charset%3Dutf-8&prefix=p"
                ),
                None
            ),
            "/b/k?response-content-type=text/plain; charset=utf-8&versionId=3"
        );
        // Parameters without a value stay bare, and an explicit empty value keeps `=`.
        assert_eq!(
            canonical_resource("/b", Some("uploads&tagging="), None),
            "/b?tagging=&uploads"
        );
        assert_eq!(
            canonical_resource("/b/", Some("delete"), None),
            "/b/?delete"
        );
        // Other parameters, including the auth parameters, are not signed.
        assert_eq!(
            canonical_resource(
                "/b/",
                Some("list-type=2&prefix=a&AWSAccessKeyId=AK&Expires=1&Signature=x&Acl"),
                None
            ),
            "/b/"
        );
    }

    #[test]
    fn every_sub_resource_is_signed() {
        let mut sorted = SUB_RESOURCES;
        sorted.sort_unstable();
        assert_eq!(sorted, SUB_RESOURCES, "kept in signing order");
        for name in SUB_RESOURCES {
            assert_eq!(
                canonical_resource("/b/k", Some(&format!("{name}=v")), None),
                format!("/b/k?{name}=v")
            );
        }
    }

    #[test]
    fn virtual_host_resource() {
        assert_eq!(
            canonical_resource("/", None, Some("my.bucket")),
            "/my.bucket/"
        );
        assert_eq!(
            canonical_resource("/a%2Fb/c", Some("acl"), Some("photos")),
            "/photos/a%2Fb/c?acl"
        );
        assert_eq!(canonical_resource("/photos/k", None, None), "/photos/k");
    }

    #[test]
    fn amz_headers_canonical_form() {
        let h = headers(&[
            ("X-Amz-Meta-B", "  two  "),
            ("x-amz-meta-a", "one"),
            ("x-amz-meta-b", "three"),
            ("x-amzn-other", "not signed"),
            ("content-type", "not here"),
        ]);
        assert_eq!(
            canonical_amz_headers(&h),
            "x-amz-meta-a:one\nx-amz-meta-b:two,three\n"
        );
        assert_eq!(canonical_amz_headers(&HeaderMap::new()), "");
    }

    #[test]
    fn debug_hides_signature() {
        let h = query_example_headers();
        let auth = parse_auth_v2(&view("GET", QUERY_EXAMPLE, &h), None)
            .unwrap()
            .unwrap();
        let debug = format!("{auth:?}");
        assert!(!debug.contains("NpgCjnDzrM"), "{debug}");
        assert!(debug.contains(ACCESS_KEY), "{debug}");
    }

    #[test]
    fn errors_never_echo_the_signature() {
        let h = headers(&[("authorization", "AWS AKsecretsig")]);
        let error = parse_auth_v2(&view("GET", "/b/k", &h), None).unwrap_err();
        assert!(!error.to_string().contains("secretsig"));
    }
}
