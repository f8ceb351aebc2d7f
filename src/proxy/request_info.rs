//! Building the `RequestInfo` a validator sees.

use osp_core::s3::{parse_copy_source, S3Error, S3Target};
use percent_encoding::percent_decode_str;
use pingora::http::RequestHeader;

use super::hooks::RequestInfo;
use super::route::is_presign_parameter;

/// Headers a validator never sees: they carry the client's signature or a
/// credential.
const HIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "x-amz-security-token",
    "proxy-authorization",
    "cookie",
];

pub struct RequestInfoInput<'a> {
    pub header: &'a RequestHeader,
    pub raw_query: Option<&'a str>,
    pub bucket: &'a str,
    pub target: &'a S3Target,
    pub operation: &'a str,
    pub source_ip: String,
    pub delete_keys: Option<Vec<String>>,
    /// Copies the query; only a validator reads it, so requests without one
    /// skip the copy. Headers are copied by [`with_headers`] when needed.
    pub with_query: bool,
}

pub fn request_info(input: RequestInfoInput<'_>) -> Result<RequestInfo, S3Error> {
    let header = input.header;
    let copy_source = match header.headers.get("x-amz-copy-source") {
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| S3Error::invalid_argument("x-amz-copy-source is not valid text"))?;
            Some(parse_copy_source(value)?)
        }
        None => None,
    };
    let query = if input.with_query {
        decoded_query(input.raw_query.unwrap_or(""))
    } else {
        Vec::new()
    };
    Ok(RequestInfo {
        method: header.method.as_str().to_string(),
        bucket: input.bucket.to_string(),
        key: input.target.key.clone(),
        operation: input.operation.to_string(),
        query,
        headers: Vec::new(),
        source_ip: input.source_ip,
        copy_source,
        delete_keys: input.delete_keys,
    })
}

/// Copies the request headers that a validator may see into `info`. A
/// decision found in the cache does not need them, so the copy waits until
/// the validator is called.
pub fn with_headers(mut info: RequestInfo, header: &RequestHeader) -> RequestInfo {
    info.headers = header
        .headers
        .iter()
        .filter(|(name, _)| !HIDDEN_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    info
}

/// Decodes query parameters once; `+` stays a plus sign, as S3 reads it.
fn decoded_query(raw_query: &str) -> Vec<(String, String)> {
    raw_query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = percent_decode_str(name).decode_utf8_lossy().into_owned();
            if is_presign_parameter(&name) {
                return None;
            }
            Some((
                name,
                percent_decode_str(value).decode_utf8_lossy().into_owned(),
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use osp_core::s3::resolve_target;

    #[test]
    fn hides_authorization_and_signature() {
        let mut header =
            RequestHeader::build("GET", b"/b/k?X-Amz-Signature=ab&prefix=a%2Fb", None).unwrap();
        header
            .insert_header("authorization", "AWS4-HMAC-SHA256 secret-ish")
            .unwrap();
        header.insert_header("x-amz-meta-a", "1").unwrap();
        let target = resolve_target("/b/k", None, &[]).unwrap();
        let info = request_info(RequestInfoInput {
            header: &header,
            raw_query: Some("X-Amz-Signature=ab&prefix=a%2Fb"),
            bucket: "b",
            target: &target,
            operation: "GetObject",
            source_ip: "127.0.0.1".into(),
            delete_keys: None,
            with_query: true,
        })
        .unwrap();
        let info = with_headers(info, &header);
        assert_eq!(info.query, vec![("prefix".to_string(), "a/b".to_string())]);
        assert!(info.headers.iter().all(|(name, _)| name != "authorization"));
        assert!(info
            .headers
            .contains(&("x-amz-meta-a".to_string(), "1".to_string())));
        assert_eq!(info.key.as_deref(), Some("k"));
    }
}
