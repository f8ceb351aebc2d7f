//! Reading the client request: raw path and query, the S3 target and
//! operation, and the plan for checking its body.

use osp_core::checksum::ChecksumAlgorithm;
use osp_core::chunked::{ChunkSigning, DecoderOptions};
use osp_core::s3::operation::{operation_name, OperationInput};
use osp_core::s3::{resolve_target, S3Error, S3Target};
use osp_core::sigv4::PayloadMode;
use pingora::http::RequestHeader;

use super::auth::Authenticated;
use super::body::BodyCheck;

/// Max size of an object uploaded in a single PUT, as S3 enforces it (5 GiB).
pub const MAX_SINGLE_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// The raw request target split into path and query, still percent-encoded.
pub struct ParsedRequest {
    pub raw_path: String,
    pub raw_query: Option<String>,
}

impl ParsedRequest {
    pub fn from_header(header: &RequestHeader) -> Result<Self, S3Error> {
        let target = std::str::from_utf8(header.raw_path()).map_err(|_| {
            S3Error::invalid_request(
                "the request target is not valid UTF-8; percent-encode the key",
            )
        })?;
        let target = strip_absolute_form(target);
        let (raw_path, raw_query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (target, None),
        };
        Ok(Self {
            raw_path: raw_path.to_string(),
            raw_query,
        })
    }

    /// Resolves the bucket and key from the path and the Host header, or the
    /// HTTP/2 `:authority` when there is no Host header.
    pub fn target(&self, header: &RequestHeader, domains: &[String]) -> Result<S3Target, S3Error> {
        let host = header
            .headers
            .get(http::header::HOST)
            .and_then(|value| value.to_str().ok())
            .or_else(|| header.uri.authority().map(|authority| authority.as_str()));
        resolve_target(&self.raw_path, host, domains)
    }

    /// Returns the S3 API action this request performs, such as "GetObject".
    pub fn operation(&self, header: &RequestHeader, target: &S3Target) -> String {
        let query = self.raw_query.as_deref().unwrap_or("");
        let has_param = |name: &str| {
            query
                .split('&')
                .any(|pair| pair.split('=').next() == Some(name))
        };
        let list_type = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("list-type="));
        operation_name(&OperationInput {
            method: header.method.as_str(),
            has_bucket: target.bucket.is_some(),
            has_key: target.key.is_some(),
            has_param: &has_param,
            list_type,
            has_copy_source: header.headers.contains_key("x-amz-copy-source"),
        })
    }
}

/// Returns the path of an absolute-form target (`http://host/path`).
fn strip_absolute_form(target: &str) -> &str {
    for scheme in ["http://", "https://"] {
        if let Some(rest) = target.strip_prefix(scheme) {
            return rest.find('/').map_or("/", |slash| &rest[slash..]);
        }
    }
    target
}

/// The plan for a request body: its checks, and whether the client waits for
/// `100 Continue` before sending it.
pub struct RequestPlan {
    pub body: Option<BodyCheck>,
    pub expects_continue: bool,
}

impl RequestPlan {
    pub fn new(header: &RequestHeader, auth: &Authenticated) -> Result<Self, S3Error> {
        let decoded_length = header_u64(header, "x-amz-decoded-content-length")?;
        let content_length = header_u64(header, "content-length")?;
        let object_size = if auth.payload.is_streaming() {
            decoded_length
        } else {
            content_length
        };
        if header.method == http::Method::PUT
            && object_size.is_some_and(|size| size > MAX_SINGLE_PUT_SIZE)
        {
            return Err(S3Error::entity_too_large(
                "Your proposed upload exceeds the maximum allowed size of 5 GiB for a single PUT; use a multipart upload",
            ));
        }
        let body = match &auth.payload {
            PayloadMode::Hash(hex) => Some(BodyCheck::plain(Some(hex))),
            PayloadMode::Unsigned => None,
            streaming => Some(BodyCheck::chunked(DecoderOptions {
                signing: chunk_signing(streaming, auth)?,
                trailer: streaming.has_trailer(),
                expected_trailer: header_str(header, "x-amz-trailer").map(str::to_ascii_lowercase),
                decoded_length,
            })?),
        };
        let body = match checksum_header(header)? {
            Some((algorithm, expected)) => Some(
                body.unwrap_or_else(|| BodyCheck::plain(None))
                    .with_checksum(algorithm, &expected),
            ),
            None => body,
        };
        let expects_continue = header
            .headers
            .get(http::header::EXPECT)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
        Ok(Self {
            body,
            expects_continue,
        })
    }
}

/// Returns the chunk-signature chain of a signed streaming upload, seeded by
/// the request signature, or None when signature validation is off.
fn chunk_signing(
    payload: &PayloadMode,
    auth: &Authenticated,
) -> Result<Option<ChunkSigning>, S3Error> {
    if !payload.signs_chunks() {
        return Ok(None);
    }
    let Some(verified) = auth.verified.as_ref() else {
        return Ok(None);
    };
    Ok(Some(ChunkSigning {
        signing_key: verified.signing_key,
        amz_date: verified.amz_date.clone(),
        scope: verified.scope.to_scope_string(),
        seed_signature: verified.seed_signature.clone(),
    }))
}

/// Returns the `x-amz-checksum-*` header of the request, if it has one. A
/// request with several is rejected, as S3 does.
fn checksum_header(header: &RequestHeader) -> Result<Option<(ChecksumAlgorithm, String)>, S3Error> {
    let mut found = None;
    for algorithm in ChecksumAlgorithm::ALL {
        let Some(value) = header_str(header, algorithm.header_name()) else {
            continue;
        };
        if found.is_some() {
            return Err(S3Error::invalid_request("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed."));
        }
        found = Some((algorithm, value.trim().to_string()));
    }
    Ok(found)
}

fn header_str<'a>(header: &'a RequestHeader, name: &str) -> Option<&'a str> {
    header
        .headers
        .get(name)
        .and_then(|value| value.to_str().ok())
}

fn header_u64(header: &RequestHeader, name: &str) -> Result<Option<u64>, S3Error> {
    match header.headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .map(Some)
            .ok_or_else(|| {
                S3Error::invalid_argument(format!(
                    "the {name} header is not a whole number of bytes"
                ))
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_becomes_path() {
        assert_eq!(strip_absolute_form("http://host:9000/b/k?x=1"), "/b/k?x=1");
        assert_eq!(strip_absolute_form("http://host"), "/");
        assert_eq!(strip_absolute_form("/b/k"), "/b/k");
    }

    #[test]
    fn parsed_request_splits_query() {
        let header = RequestHeader::build("GET", b"/b/a%20b?list-type=2&prefix=x", None).unwrap();
        let parsed = ParsedRequest::from_header(&header).unwrap();
        assert_eq!(parsed.raw_path, "/b/a%20b");
        assert_eq!(parsed.raw_query.as_deref(), Some("list-type=2&prefix=x"));
        let target = parsed.target(&header, &[]).unwrap();
        assert_eq!(parsed.operation(&header, &target), "GetObject");
    }
}
