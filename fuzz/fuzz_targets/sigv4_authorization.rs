//! Parses arbitrary SigV4 Authorization headers and presigned query strings
//! with `parse_auth`, and verifies whatever parses against a fixed secret, so
//! the canonical request is built from fuzz-chosen signed headers, paths and
//! queries.
//!
//! The input is text, one field per line (missing lines are empty):
//!
//! 1. the Authorization header value (no header when empty)
//! 2. the raw query, without `?` (no query when empty)
//! 3. the raw path
//! 4. the x-amz-date header value (no header when empty)
//! 5. the x-amz-content-sha256 header value (no header when empty)
//! 6. and on: more headers as `name: value`
//!
//! Checked besides "never panics": a request that verifies also verifies when
//! parsed a second time, and the parsed claims name a non-empty access key.

#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use osp_core::secret::SecretKey;
use osp_core::sigv4::{
    canonical_query, canonical_uri, parse_auth, verify, PayloadMode, RequestView,
};
use time::OffsetDateTime;

/// 2013-05-24T00:00:00Z, the date of AWS's published examples, so that their
/// signatures fall inside the allowed clock skew.
const NOW: i64 = 1_369_353_600;

fn insert(headers: &mut HeaderMap, name: &str, value: &[u8]) {
    if let (Ok(name), Ok(value)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_bytes(value),
    ) {
        headers.append(name, value);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let mut next = || lines.next().unwrap_or("");
    let authorization = next();
    let query = next();
    let path = next();
    let amz_date = next();
    let content_sha256 = next();

    let mut headers = HeaderMap::new();
    insert(&mut headers, "host", b"examplebucket.s3.amazonaws.com");
    if !authorization.is_empty() {
        insert(&mut headers, "authorization", authorization.as_bytes());
    }
    if !amz_date.is_empty() {
        insert(&mut headers, "x-amz-date", amz_date.as_bytes());
    }
    if !content_sha256.is_empty() {
        insert(
            &mut headers,
            "x-amz-content-sha256",
            content_sha256.as_bytes(),
        );
        let _ = PayloadMode::parse(content_sha256);
    }
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            insert(
                &mut headers,
                &name.trim().to_ascii_lowercase(),
                value.trim().as_bytes(),
            );
        }
    }

    let raw_query = (!query.is_empty()).then_some(query);
    let request = RequestView {
        method: "GET",
        raw_path: path,
        raw_query,
        headers: &headers,
        authority: None,
    };
    let _ = canonical_uri(path);
    if let Some(query) = raw_query {
        let _ = canonical_query(query, true);
        let _ = canonical_query(query, false);
    }

    let Ok(Some(auth)) = parse_auth(&request) else {
        return;
    };
    assert!(
        !auth.access_key.is_empty(),
        "parsed claims without an access key"
    );
    let now = OffsetDateTime::from_unix_timestamp(NOW).expect("valid timestamp");
    let secret = SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    let first = verify(&request, &auth, &secret, now).is_ok();
    let again = parse_auth(&request)
        .ok()
        .flatten()
        .map(|auth| verify(&request, &auth, &secret, now).is_ok());
    assert_eq!(again, Some(first), "parsing and verifying twice disagree");
});
