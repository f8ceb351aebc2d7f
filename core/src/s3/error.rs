//! S3 error responses: every failure the proxy answers itself becomes one
//! `S3Error`, written as S3's XML error document.

use std::fmt;

use crate::chunked::ChunkedError;
use crate::sigv2::SigV2Error;
use crate::sigv4::SigV4Error;

/// An error answered to the client in S3's format: HTTP status, S3 error code
/// and a message that names the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Error {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// The bucket or object the error is about, written as `<Resource>`.
    pub resource: Option<String>,
}

impl S3Error {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            resource: None,
        }
    }

    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(403, "AccessDenied", message)
    }

    pub fn invalid_access_key_id() -> Self {
        Self::new(
            403,
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
        )
    }

    pub fn no_such_bucket(bucket: &str) -> Self {
        Self::new(404, "NoSuchBucket", "The specified bucket does not exist").with_resource(bucket)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidRequest", message)
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(400, "InvalidArgument", message)
    }

    pub fn content_sha256_mismatch() -> Self {
        Self::new(
            400,
            "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed.",
        )
    }

    pub fn incomplete_body(message: impl Into<String>) -> Self {
        Self::new(400, "IncompleteBody", message)
    }

    pub fn entity_too_large(message: impl Into<String>) -> Self {
        Self::new(400, "EntityTooLarge", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message)
    }

    /// The backend could not be reached or its TLS handshake failed. Not an S3
    /// code: S3 itself never proxies, but clients still get an XML body.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(502, "BadGateway", message)
    }

    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// Renders S3's XML error document.
    pub fn to_xml(&self, request_id: &str) -> String {
        let mut xml = String::with_capacity(256);
        xml.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        xml.push_str(self.code);
        xml.push_str("</Code><Message>");
        push_escaped(&mut xml, &self.message);
        xml.push_str("</Message>");
        if let Some(resource) = &self.resource {
            xml.push_str("<Resource>");
            push_escaped(&mut xml, resource);
            xml.push_str("</Resource>");
        }
        xml.push_str("<RequestId>");
        push_escaped(&mut xml, request_id);
        xml.push_str("</RequestId></Error>");
        xml
    }
}

impl fmt::Display for S3Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl std::error::Error for S3Error {}

impl From<SigV4Error> for S3Error {
    fn from(error: SigV4Error) -> Self {
        let (code, status) = error.s3_code();
        Self::new(status, code, error.to_string())
    }
}

impl From<SigV2Error> for S3Error {
    fn from(error: SigV2Error) -> Self {
        let (code, status) = error.s3_code();
        Self::new(status, code, error.to_string())
    }
}

impl From<ChunkedError> for S3Error {
    fn from(error: ChunkedError) -> Self {
        let (code, status) = error.s3_code();
        Self::new(status, code, error.to_string())
    }
}

/// Appends `text` with the five XML special characters escaped.
pub fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_has_code_message_and_request_id() {
        let xml = S3Error::no_such_bucket("photos").to_xml("req-1");
        assert!(xml.contains("<Code>NoSuchBucket</Code>"));
        assert!(xml.contains("<Message>The specified bucket does not exist</Message>"));
        assert!(xml.contains("<Resource>photos</Resource>"));
        assert!(xml.contains("<RequestId>req-1</RequestId>"));
    }

    #[test]
    fn xml_escapes_message_text() {
        let xml = S3Error::invalid_argument("bad <value> & 'quote'").to_xml("r");
        assert!(xml.contains("bad &lt;value&gt; &amp; &apos;quote&apos;"));
    }
}
