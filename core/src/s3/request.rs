//! Which bucket and key a request addresses: path style (`/bucket/key`) or
//! virtual-host style (`bucket.<domain>/key`).

use percent_encoding::percent_decode_str;

use super::error::S3Error;
use crate::sigv4::canonical_uri;

/// How the client addressed the bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    Path,
    VirtualHost,
}

/// The bucket and key of a request, plus the key's path in the encoding the
/// proxy forwards (S3's canonical URI encoding, which is what gets signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Target {
    pub addressing: Addressing,
    /// None for service-level requests such as ListBuckets (`GET /`).
    pub bucket: Option<String>,
    /// The decoded object key; None when the request addresses the bucket.
    pub key: Option<String>,
    /// `/` followed by the encoded key, or `/` alone for bucket requests.
    pub encoded_key_path: String,
}

/// Resolves the bucket and key of a request from its raw (still encoded) path
/// and its Host header. A host ending in `.<domain>` for one of
/// `virtual_host_domains` names the bucket (everything before that suffix,
/// dots included); any other host means path style.
pub fn resolve_target(
    raw_path: &str,
    host: Option<&str>,
    virtual_host_domains: &[String],
) -> Result<S3Target, S3Error> {
    if !raw_path.starts_with('/') {
        return Err(S3Error::invalid_request(format!(
            "the request path '{raw_path}' does not start with '/'"
        )));
    }
    if let Some(bucket) = host.and_then(|host| virtual_host_bucket(host, virtual_host_domains)) {
        return Ok(S3Target {
            addressing: Addressing::VirtualHost,
            bucket: Some(bucket),
            key: decoded_key(&raw_path[1..]),
            encoded_key_path: canonical_uri(raw_path),
        });
    }

    let rest = &raw_path[1..];
    let (raw_bucket, raw_key) = match rest.find('/') {
        Some(slash) => (&rest[..slash], &rest[slash + 1..]),
        None => (rest, ""),
    };
    if raw_bucket.is_empty() {
        return Ok(S3Target {
            addressing: Addressing::Path,
            bucket: None,
            key: None,
            encoded_key_path: "/".to_string(),
        });
    }
    let bucket = percent_decode_str(raw_bucket)
        .decode_utf8()
        .map_err(|_| S3Error::invalid_request("the bucket name in the path is not valid UTF-8"))?
        .into_owned();
    Ok(S3Target {
        addressing: Addressing::Path,
        bucket: Some(bucket),
        key: decoded_key(raw_key),
        encoded_key_path: canonical_uri(&format!("/{raw_key}")),
    })
}

/// Returns the bucket named by `host` when it ends in `.<domain>` for one of
/// the proxy's own domains. The port and letter case are ignored.
fn virtual_host_bucket(host: &str, domains: &[String]) -> Option<String> {
    let host = strip_port(host).to_ascii_lowercase();
    domains.iter().find_map(|domain| {
        let prefix = host.strip_suffix(domain.as_str())?.strip_suffix('.')?;
        (!prefix.is_empty()).then(|| prefix.to_string())
    })
}

/// Removes a trailing `:port` from a Host value, keeping IPv6 literals whole.
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return match host.find(']') {
            Some(end) => &host[..=end],
            None => host,
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// The object a CopyObject or UploadPartCopy request reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
}

/// Parses an `x-amz-copy-source` value: `bucket/key` or `/bucket/key`,
/// percent-encoded, optionally followed by `?versionId=...`.
pub fn parse_copy_source(value: &str) -> Result<CopySource, S3Error> {
    let invalid = || {
        S3Error::invalid_argument(format!(
            "x-amz-copy-source '{value}' is not of the form bucket/key (optionally ?versionId=...)"
        ))
    };
    let without_version = value.split_once('?').map_or(value, |(path, _)| path);
    let path = without_version.strip_prefix('/').unwrap_or(without_version);
    let (bucket, key) = path.split_once('/').ok_or_else(invalid)?;
    let bucket = percent_decode_str(bucket)
        .decode_utf8()
        .map_err(|_| invalid())?;
    let key = percent_decode_str(key)
        .decode_utf8()
        .map_err(|_| invalid())?;
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok(CopySource {
        bucket: bucket.into_owned(),
        key: key.into_owned(),
    })
}

/// Decodes a raw key once; an empty key means the request addresses the bucket.
fn decoded_key(raw_key: &str) -> Option<String> {
    if raw_key.is_empty() {
        return None;
    }
    Some(percent_decode_str(raw_key).decode_utf8_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["s3.example.test".to_string()]
    }

    #[test]
    fn path_style_bucket_and_key() {
        let target =
            resolve_target("/photos/2024/a%20b.jpg", Some("localhost:9000"), &domains()).unwrap();
        assert_eq!(target.addressing, Addressing::Path);
        assert_eq!(target.bucket.as_deref(), Some("photos"));
        assert_eq!(target.key.as_deref(), Some("2024/a b.jpg"));
        assert_eq!(target.encoded_key_path, "/2024/a%20b.jpg");
    }

    #[test]
    fn path_style_bucket_only() {
        for path in ["/photos", "/photos/"] {
            let target = resolve_target(path, None, &[]).unwrap();
            assert_eq!(target.bucket.as_deref(), Some("photos"));
            assert_eq!(target.key, None);
            assert_eq!(target.encoded_key_path, "/");
        }
    }

    #[test]
    fn root_path_has_no_bucket() {
        let target = resolve_target("/", Some("localhost"), &domains()).unwrap();
        assert_eq!(target.bucket, None);
        assert_eq!(target.key, None);
    }

    #[test]
    fn virtual_host_with_dotted_bucket() {
        let target = resolve_target(
            "/a/b",
            Some("my.dotted.bucket.S3.example.test:8080"),
            &domains(),
        )
        .unwrap();
        assert_eq!(target.addressing, Addressing::VirtualHost);
        assert_eq!(target.bucket.as_deref(), Some("my.dotted.bucket"));
        assert_eq!(target.key.as_deref(), Some("a/b"));
        assert_eq!(target.encoded_key_path, "/a/b");
    }

    #[test]
    fn bare_domain_is_path_style() {
        let target = resolve_target("/photos/x", Some("s3.example.test"), &domains()).unwrap();
        assert_eq!(target.addressing, Addressing::Path);
        assert_eq!(target.bucket.as_deref(), Some("photos"));
    }

    #[test]
    fn other_hosts_are_path_style() {
        let target = resolve_target("/photos/x", Some("evilexample.test"), &domains()).unwrap();
        assert_eq!(target.addressing, Addressing::Path);
    }

    #[test]
    fn awkward_keys_are_kept_unnormalized() {
        let target = resolve_target("/b/a//./../%2B+=~", None, &[]).unwrap();
        assert_eq!(target.key.as_deref(), Some("a//./../++=~"));
        assert_eq!(target.encoded_key_path, "/a//./../%2B%2B%3D~");
    }

    #[test]
    fn path_must_start_with_slash() {
        assert!(resolve_target("photos/x", None, &[]).is_err());
    }

    #[test]
    fn copy_source_forms() {
        let expected = CopySource {
            bucket: "src".into(),
            key: "a b/c+d".into(),
        };
        assert_eq!(parse_copy_source("src/a%20b/c%2Bd").unwrap(), expected);
        assert_eq!(
            parse_copy_source("/src/a%20b/c%2Bd?versionId=3").unwrap(),
            expected
        );
        assert!(parse_copy_source("just-a-bucket").is_err());
        assert!(parse_copy_source("/src/").is_err());
    }

    #[test]
    fn strip_port_keeps_ipv6() {
        assert_eq!(strip_port("[::1]:9000"), "[::1]");
        assert_eq!(strip_port("example.test:80"), "example.test");
        assert_eq!(strip_port("example.test"), "example.test");
    }
}
