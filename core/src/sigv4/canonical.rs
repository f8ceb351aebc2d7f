//! The canonical request: the normalized form of an HTTP request that SigV4
//! hashes and signs.

use http::HeaderMap;
use percent_encoding::{percent_decode_str, percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::SigV4Error;

/// Bytes that SigV4 percent-encodes in a query name or value: every byte
/// except the unreserved characters A-Z a-z 0-9 `-` `.` `_` `~`.
const QUERY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Bytes that SigV4 percent-encodes in a path: as in a query, except `/`.
const PATH_ENCODE_SET: &AsciiSet = &QUERY_ENCODE_SET.remove(b'/');

/// The parts of an incoming HTTP request that SigV4 covers.
///
/// No `Debug`: the headers contain the Authorization signature.
#[derive(Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// Path exactly as received, still percent-encoded.
    pub raw_path: &'a str,
    /// Query exactly as received, without the leading `?`.
    pub raw_query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    /// HTTP/2 `:authority`, used as the host header value when the request has
    /// no Host header.
    pub authority: Option<&'a str>,
}

/// Percent-encodes `bytes` with S3's rules: unreserved characters are kept,
/// every other byte becomes an uppercase `%XX`. `/` is kept when `keep_slash`
/// is true (paths) and encoded as `%2F` otherwise (query components).
pub fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let set = if keep_slash {
        PATH_ENCODE_SET
    } else {
        QUERY_ENCODE_SET
    };
    percent_encode(bytes, set).to_string()
}

/// Decodes `%XX` escapes once. `+` stays `+`, and a `%` that does not start a
/// valid escape (as in `%zz` or a trailing `%`) stays a literal `%`.
fn percent_decode(raw: &str) -> Vec<u8> {
    percent_decode_str(raw).collect()
}

/// Returns the canonical URI of a raw request path: decoded once, then
/// re-encoded with [`uri_encode`] keeping `/`.
///
/// S3 does not normalize paths, so `//`, `/./` and `/../` are kept as they
/// are. `+` is a literal plus in a path and becomes `%2B`. An empty path
/// becomes `/`.
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_owned();
    }
    uri_encode(&percent_decode(raw_path), true)
}

/// Splits a raw query on `&` and decodes each name and value once. A
/// parameter without `=` gets an empty value, and empty segments (`a=1&&b=2`)
/// are skipped.
pub(super) fn query_pairs(raw_query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    raw_query
        .split('&')
        .filter(|segment| !segment.is_empty())
        .map(|segment| {
            let (name, value) = segment.split_once('=').unwrap_or((segment, ""));
            (percent_decode(name), percent_decode(value))
        })
}

/// Returns the canonical query string: every parameter decoded once and
/// re-encoded with [`uri_encode`] (`/` included), sorted by encoded name and
/// then encoded value, written as `name=value` (also for parameters sent
/// without a value, such as `?uploads`) and joined with `&`.
///
/// `+` is decoded as a literal `+` (encoded `%2B`), not as a space: the AWS
/// SDKs send a space as `%20`. With `exclude_signature`, the `X-Amz-Signature`
/// parameter of a presigned URL is left out.
pub fn canonical_query(raw_query: &str, exclude_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query)
        .filter(|(name, _)| !(exclude_signature && name.as_slice() == b"X-Amz-Signature"))
        .map(|(name, value)| (uri_encode(&name, false), uri_encode(&value, false)))
        .collect();
    pairs.sort_unstable();

    let mut query = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            query.push('&');
        }
        query.push_str(name);
        query.push('=');
        query.push_str(value);
    }
    query
}

/// Returns the signed header names lowercased and sorted, the order of both
/// the canonical headers and the signed-headers line.
fn sorted_names(signed_headers: &[String]) -> Vec<String> {
    let mut names: Vec<String> = signed_headers
        .iter()
        .map(|name| name.to_ascii_lowercase())
        .collect();
    names.sort_unstable();
    names
}

/// Trims a header value and collapses each inner run of whitespace to one
/// space, as the AWS SDKs do before signing.
fn normalize_value(value: &str) -> String {
    value.split_ascii_whitespace().collect::<Vec<_>>().join(" ")
}

/// Returns the canonical value of header `name`: all its values normalized and
/// joined with `,`, or `None` when the request does not have it. For `host`,
/// `authority` is used when the request has no Host header.
///
/// NOTE: a value that is not UTF-8 is converted lossily, so its signature
/// cannot match. SigV4 clients sign header values as text.
pub(super) fn header_value(
    headers: &HeaderMap,
    name: &str,
    authority: Option<&str>,
) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|value| normalize_value(&String::from_utf8_lossy(value.as_bytes())))
        .collect();
    if values.is_empty() {
        return match name {
            "host" => authority.map(normalize_value),
            _ => None,
        };
    }
    Some(values.join(","))
}

/// Returns the canonical headers: one `name:value\n` line per signed header,
/// sorted by name. Each value is trimmed with inner whitespace runs collapsed
/// to one space, and several values of one name are joined with `,`. A missing
/// Host header is replaced by `authority` when given.
pub fn canonical_headers(
    headers: &HeaderMap,
    signed_headers: &[String],
    authority: Option<&str>,
) -> Result<String, SigV4Error> {
    let mut lines = String::new();
    for name in sorted_names(signed_headers) {
        let Some(value) = header_value(headers, &name, authority) else {
            return Err(SigV4Error::MissingSignedHeader(name));
        };
        lines.push_str(&name);
        lines.push(':');
        lines.push_str(&value);
        lines.push('\n');
    }
    Ok(lines)
}

/// Joins the six parts of a canonical request. `canonical_headers` ends with
/// a newline, so an empty line separates it from the signed-headers line.
pub(super) fn join_canonical_request(
    method: &str,
    canonical_uri: &str,
    canonical_query: &str,
    canonical_headers: &str,
    signed_headers_line: &str,
    payload_hash: &str,
) -> String {
    format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers_line}\n{payload_hash}"
    )
}

/// Builds the canonical request of an incoming request. `payload_hash` is the
/// x-amz-content-sha256 value (or UNSIGNED-PAYLOAD for a presigned URL), and
/// `exclude_signature` drops X-Amz-Signature from the query.
pub fn canonical_request(
    req: &RequestView,
    signed_headers: &[String],
    payload_hash: &str,
    exclude_signature: bool,
) -> Result<String, SigV4Error> {
    let names = sorted_names(signed_headers);
    let headers = canonical_headers(req.headers, &names, req.authority)?;
    Ok(join_canonical_request(
        req.method,
        &canonical_uri(req.raw_path),
        &canonical_query(req.raw_query.unwrap_or(""), exclude_signature),
        &headers,
        &names.join(";"),
        payload_hash,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    #[test]
    fn uri_keeps_dot_segments_and_double_slashes() {
        assert_eq!(canonical_uri("//"), "//");
        assert_eq!(canonical_uri("/a//b"), "/a//b");
        assert_eq!(canonical_uri("/./a"), "/./a");
        assert_eq!(canonical_uri("/a/../b"), "/a/../b");
    }

    #[test]
    fn uri_encodes_plus_literally() {
        assert_eq!(canonical_uri("/a+b"), "/a%2Bb");
        assert_eq!(canonical_uri("/a%2Bb"), "/a%2Bb");
        assert_eq!(canonical_uri("/a%2bb"), "/a%2Bb");
    }

    #[test]
    fn uri_decodes_once() {
        assert_eq!(canonical_uri("/a%25b"), "/a%25b");
        assert_eq!(canonical_uri("/a%252Fb"), "/a%252Fb");
        assert_eq!(canonical_uri("/a%2Fb"), "/a/b");
    }

    #[test]
    fn uri_encodes_reserved_characters() {
        assert_eq!(canonical_uri("/a=b"), "/a%3Db");
        assert_eq!(canonical_uri("/test$file.text"), "/test%24file.text");
        assert_eq!(
            canonical_uri("/a:b@c!d*e'(f)"),
            "/a%3Ab%40c%21d%2Ae%27%28f%29"
        );
        assert_eq!(canonical_uri("/a&b,c;d"), "/a%26b%2Cc%3Bd");
    }

    #[test]
    fn uri_keeps_unreserved_characters() {
        assert_eq!(canonical_uri("/A-Z_a.z~09"), "/A-Z_a.z~09");
        assert_eq!(canonical_uri("/a%7Eb"), "/a~b");
        assert_eq!(canonical_uri("/a%41"), "/aA");
    }

    #[test]
    fn uri_encodes_space() {
        assert_eq!(canonical_uri("/a%20b"), "/a%20b");
        assert_eq!(canonical_uri("/a b"), "/a%20b");
    }

    #[test]
    fn uri_encodes_unicode_bytes() {
        assert_eq!(canonical_uri("/b/%E2%82%AC"), "/b/%E2%82%AC");
        assert_eq!(canonical_uri("/b/%e2%82%ac"), "/b/%E2%82%AC");
        assert_eq!(canonical_uri("/b/€"), "/b/%E2%82%AC");
        // A decoded byte sequence need not be UTF-8.
        assert_eq!(canonical_uri("/b/%FF%fe"), "/b/%FF%FE");
    }

    #[test]
    fn uri_keeps_malformed_escapes() {
        assert_eq!(canonical_uri("/a%zz"), "/a%25zz");
        assert_eq!(canonical_uri("/a%"), "/a%25");
        assert_eq!(canonical_uri("/a%4"), "/a%254");
        assert_eq!(canonical_uri("/a%4g"), "/a%254g");
    }

    #[test]
    fn uri_empty_is_root() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
    }

    #[test]
    fn query_sorts_by_name() {
        assert_eq!(
            canonical_query("prefix=J&max-keys=2", false),
            "max-keys=2&prefix=J"
        );
        // Uppercase letters sort before lowercase ones (byte order).
        assert_eq!(canonical_query("b=1&B=2&a=3", false), "B=2&a=3&b=1");
    }

    #[test]
    fn query_valueless_params_get_equals() {
        assert_eq!(canonical_query("uploads", false), "uploads=");
        assert_eq!(canonical_query("acl", false), "acl=");
        assert_eq!(canonical_query("lifecycle=", false), "lifecycle=");
        assert_eq!(
            canonical_query("uploadId=x&partNumber=1&uploads", false),
            "partNumber=1&uploadId=x&uploads="
        );
    }

    #[test]
    fn query_repeated_names_sorted_by_value() {
        assert_eq!(canonical_query("a=3&a=1&a=2", false), "a=1&a=2&a=3");
        assert_eq!(canonical_query("a=b&a", false), "a=&a=b");
    }

    #[test]
    fn query_encodes_slash_plus_equals_space() {
        assert_eq!(canonical_query("prefix=a/b", false), "prefix=a%2Fb");
        assert_eq!(canonical_query("prefix=a%2Fb", false), "prefix=a%2Fb");
        assert_eq!(canonical_query("prefix=a%2fb", false), "prefix=a%2Fb");
        assert_eq!(canonical_query("k=a=b", false), "k=a%3Db");
        assert_eq!(canonical_query("k=a%20b", false), "k=a%20b");
        assert_eq!(canonical_query("k%20x=v", false), "k%20x=v");
    }

    #[test]
    fn query_plus_is_literal_not_space() {
        // S3 and the AWS SDKs send a space as %20, so a raw '+' is a plus sign.
        assert_eq!(canonical_query("k=a+b", false), "k=a%2Bb");
        assert_eq!(canonical_query("k=a%2Bb", false), "k=a%2Bb");
    }

    #[test]
    fn query_sorts_after_encoding() {
        // '%' (0x25) sorts before letters, so "%2F..." comes first.
        assert_eq!(canonical_query("k=b&k=/", false), "k=%2F&k=b");
    }

    #[test]
    fn query_skips_empty_segments() {
        assert_eq!(canonical_query("", false), "");
        assert_eq!(canonical_query("a=1&&b=2&", false), "a=1&b=2");
    }

    #[test]
    fn query_excludes_signature_when_asked() {
        let raw = "X-Amz-Signature=abc&X-Amz-Date=20130524T000000Z";
        assert_eq!(canonical_query(raw, true), "X-Amz-Date=20130524T000000Z");
        assert_eq!(
            canonical_query(raw, false),
            "X-Amz-Date=20130524T000000Z&X-Amz-Signature=abc"
        );
    }

    #[test]
    fn headers_trim_and_collapse_spaces() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.insert(
            "x-amz-meta-a",
            HeaderValue::from_static("  one   two \t three  "),
        );
        let lines = canonical_headers(&headers, &names(&["x-amz-meta-a", "host"]), None);
        assert_eq!(
            lines,
            Ok("host:example.com\nx-amz-meta-a:one two three\n".to_owned())
        );
    }

    #[test]
    fn headers_join_multiple_values() {
        let mut headers = HeaderMap::new();
        headers.append("x-amz-meta-a", HeaderValue::from_static(" 1 "));
        headers.append("x-amz-meta-a", HeaderValue::from_static("2  3"));
        let lines = canonical_headers(&headers, &names(&["x-amz-meta-a"]), None);
        assert_eq!(lines, Ok("x-amz-meta-a:1,2 3\n".to_owned()));
    }

    #[test]
    fn headers_missing_signed_header() {
        let headers = HeaderMap::new();
        let lines = canonical_headers(&headers, &names(&["range"]), None);
        assert_eq!(
            lines,
            Err(SigV4Error::MissingSignedHeader("range".to_owned()))
        );
    }

    #[test]
    fn headers_host_falls_back_to_authority() {
        let headers = HeaderMap::new();
        let lines = canonical_headers(&headers, &names(&["host"]), Some("example.com:8443"));
        assert_eq!(lines, Ok("host:example.com:8443\n".to_owned()));
    }

    #[test]
    fn headers_host_header_wins_over_authority() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("a.example.com"));
        let lines = canonical_headers(&headers, &names(&["host"]), Some("b.example.com"));
        assert_eq!(lines, Ok("host:a.example.com\n".to_owned()));
    }

    #[test]
    fn headers_empty_value_kept() {
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-meta-empty", HeaderValue::from_static(""));
        let lines = canonical_headers(&headers, &names(&["x-amz-meta-empty"]), None);
        assert_eq!(lines, Ok("x-amz-meta-empty:\n".to_owned()));
    }

    #[test]
    fn request_sorts_signed_headers_line() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20130524T000000Z"));
        let req = RequestView {
            method: "GET",
            raw_path: "/a b",
            raw_query: Some("z=1&a"),
            headers: &headers,
            authority: None,
        };
        let creq = canonical_request(
            &req,
            &names(&["x-amz-date", "host"]),
            "UNSIGNED-PAYLOAD",
            false,
        );
        assert_eq!(
            creq,
            Ok("GET\n/a%20b\na=&z=1\nhost:example.com\nx-amz-date:20130524T000000Z\n\nhost;x-amz-date\nUNSIGNED-PAYLOAD".to_owned())
        );
    }
}
