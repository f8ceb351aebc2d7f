//! The request sent to the backend: target, headers and the backend's SigV4
//! signature.

use http::header::{HeaderName, CONTENT_ENCODING, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::HeaderValue;
use osp_core::checksum::ChecksumAlgorithm;
use osp_core::chunked::{ChunkSigning, ChunkedEncoder};
use osp_core::config::StreamingUploads;
use osp_core::s3::S3Error;
use osp_core::sigv4::{BackendSigner, PayloadMode, UNSIGNED_PAYLOAD};
use pingora::http::RequestHeader;
use time::OffsetDateTime;

use super::route::{BackendAuth, Route};

/// Headers that belong to one connection (RFC 9110 section 7.6.1), to the
/// client's own signature, or to proxies in front of this one. None of them
/// is forwarded.
const DROPPED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "expect",
    "forwarded",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "via",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-security-token",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-proto",
    "x-real-ip",
];

/// Headers that describe the aws-chunked framing; dropped when the proxy
/// forwards the decoded bytes instead.
const FRAMING_HEADERS: &[&str] = &[
    "x-amz-decoded-content-length",
    "x-amz-trailer",
    "x-amz-sdk-checksum-algorithm",
];

/// Rewrites `request` (a copy of the client's request) for the backend of
/// `route` and signs it with the bucket's credentials. Returns the encoder
/// that frames the body again when the bucket takes streaming uploads in
/// the client's mode (`streamingUploads: 'passthrough'`).
pub fn rewrite_for_backend(
    request: &mut RequestHeader,
    route: &Route,
    payload: &PayloadMode,
) -> Result<Option<ChunkedEncoder>, S3Error> {
    request
        .set_raw_path(route.target().as_bytes())
        .map_err(|error| {
            S3Error::internal(format!("could not set the backend request target: {error}"))
        })?;
    drop_connection_headers(request);
    let reframed = reframes_body(route, payload)
        .then(|| streaming_body(request))
        .transpose()?;
    let forwarded_payload = match (&reframed, payload.is_streaming()) {
        (None, true) => {
            forward_decoded_body(request)?;
            UNSIGNED_PAYLOAD
        }
        _ => payload.header_value(),
    };

    insert(request, HOST, header_value(&route.host_header())?)?;
    insert(
        request,
        "x-amz-content-sha256",
        header_value(forwarded_payload)?,
    )?;
    let credentials = match &route.auth {
        BackendAuth::Sign(credentials) => credentials,
        BackendAuth::Bearer(token) => {
            let value = header_value(&format!("Bearer {}", token.expose()))?;
            insert(request, http::header::AUTHORIZATION, value)?;
            return reframed
                .map(|body| body.encoder(request, payload, None))
                .transpose();
        }
    };
    let signer = BackendSigner {
        access_key: &credentials.access_key,
        secret: &credentials.secret_key,
        region: &route.bucket.region,
        service: "s3",
    };
    // The signer adds its headers to a copy; RequestHeader keeps its own
    // record of header-name case, so changes go through insert_header.
    let mut signed = request.headers.clone();
    let signature = signer.sign_headers(
        request.method.as_str(),
        &route.path,
        &route.query,
        &mut signed,
        OffsetDateTime::now_utc(),
    );
    for name in [http::header::AUTHORIZATION.as_str(), "x-amz-date"] {
        if let Some(value) = signed.get(name) {
            insert(request, name, value.clone())?;
        }
    }
    reframed
        .map(|body| body.encoder(request, payload, Some(signature)))
        .transpose()
}

/// Returns whether the body of this request goes to the backend framed
/// again in the client's streaming mode rather than decoded. Signed chunks
/// need a key to sign them with, so a backend reached with a bearer token
/// gets those decoded.
fn reframes_body(route: &Route, payload: &PayloadMode) -> bool {
    payload.is_streaming()
        && route.bucket.streaming_uploads == StreamingUploads::Passthrough
        && (matches!(route.auth, BackendAuth::Sign(_)) || !payload.signs_chunks())
}

/// A streaming body forwarded in its own mode.
struct StreamingBody {
    decoded_length: u64,
    checksum: Option<ChecksumAlgorithm>,
}

impl StreamingBody {
    /// Creates the encoder of the backend body and declares its length.
    fn encoder(
        self,
        request: &mut RequestHeader,
        payload: &PayloadMode,
        signature: Option<ChunkSigning>,
    ) -> Result<ChunkedEncoder, S3Error> {
        let signing = if payload.signs_chunks() {
            signature
        } else {
            None
        };
        let encoder = ChunkedEncoder::new(signing, payload.has_trailer(), self.checksum)?;
        let length = encoder.encoded_len(self.decoded_length);
        insert(request, CONTENT_LENGTH, HeaderValue::from(length))?;
        Ok(encoder)
    }
}

/// Keeps the aws-chunked headers of a streaming request whose body is framed
/// again: the decoded length (required, as S3 requires it) and the trailer.
/// The body length is set once the encoder exists.
fn streaming_body(request: &mut RequestHeader) -> Result<StreamingBody, S3Error> {
    let decoded_length = request
        .headers
        .get("x-amz-decoded-content-length")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok())
        .ok_or_else(|| {
            S3Error::new(
                411,
                "MissingContentLength",
                "A streaming upload to this bucket needs the x-amz-decoded-content-length header.",
            )
        })?;
    let checksum = request
        .headers
        .get("x-amz-trailer")
        .and_then(|value| value.to_str().ok())
        .and_then(|name| ChecksumAlgorithm::from_header_name(&name.trim().to_ascii_lowercase()));
    request.remove_header(&TRANSFER_ENCODING);
    drop_aws_chunked_coding(request)?;
    Ok(StreamingBody {
        decoded_length,
        checksum,
    })
}

fn insert(
    request: &mut RequestHeader,
    name: impl AsRef<str>,
    value: HeaderValue,
) -> Result<(), S3Error> {
    let name = name.as_ref().to_string();
    request
        .insert_header(name.clone(), value)
        .map_err(|error| S3Error::internal(format!("could not set header {name}: {error}")))
}

/// Removes the hop-by-hop headers, including any that `Connection` names.
fn drop_connection_headers(request: &mut RequestHeader) {
    let named: Vec<HeaderName> = request
        .headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        request.remove_header(&name);
    }
    for name in DROPPED_HEADERS {
        request.remove_header(*name);
    }
}

/// Turns an aws-chunked request into a plain one carrying the decoded bytes:
/// the decoded length becomes Content-Length (or the body is sent with HTTP
/// chunked framing when the client did not declare it).
fn forward_decoded_body(request: &mut RequestHeader) -> Result<(), S3Error> {
    let decoded_length = request.headers.get("x-amz-decoded-content-length").cloned();
    for name in FRAMING_HEADERS {
        request.remove_header(*name);
    }
    match decoded_length {
        Some(length) => {
            request.remove_header(&TRANSFER_ENCODING);
            insert(request, CONTENT_LENGTH, length)?;
        }
        None => {
            request.remove_header(&CONTENT_LENGTH);
            insert(
                request,
                TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            )?;
        }
    }
    drop_aws_chunked_coding(request)
}

/// Removes `aws-chunked` from Content-Encoding and keeps the other codings.
/// A backend that stores Content-Encoding as it arrives would otherwise
/// put `aws-chunked` into the object's metadata; S3 and s3s-fs tell a
/// streaming body from its signed x-amz-content-sha256, not this header.
fn drop_aws_chunked_coding(request: &mut RequestHeader) -> Result<(), S3Error> {
    let remaining: Vec<String> = request
        .headers
        .get_all(CONTENT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|coding| !coding.is_empty() && !coding.eq_ignore_ascii_case("aws-chunked"))
        .map(str::to_string)
        .collect();
    request.remove_header(&CONTENT_ENCODING);
    if remaining.is_empty() {
        return Ok(());
    }
    insert(
        request,
        CONTENT_ENCODING,
        header_value(&remaining.join(", "))?,
    )
}

fn header_value(text: &str) -> Result<HeaderValue, S3Error> {
    HeaderValue::from_str(text)
        .map_err(|_| S3Error::internal(format!("'{text}' is not a valid header value")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use osp_core::config::{AddressingStyle, BucketConfig, HmacCredentials};
    use osp_core::secret::SecretKey;
    use std::sync::Arc;
    use std::time::Duration;

    fn route() -> Route {
        let bucket = Arc::new(BucketConfig {
            host: "127.0.0.1".into(),
            port: 9000,
            region: "us-east-1".into(),
            tls: false,
            addressing: AddressingStyle::Path,
            credentials: None,
            ttl: Duration::from_secs(300),
            add_content_md5: false,
            streaming_uploads: StreamingUploads::Decode,
            ca_cert: None,
        });
        let credentials = BackendAuth::Sign(HmacCredentials {
            access_key: "backend".into(),
            secret_key: SecretKey::new("backend-secret"),
        });
        Route::new(
            "photos",
            bucket,
            credentials,
            "/a%20b",
            "X-Amz-Signature=00&versionId=1",
        )
    }

    fn request(headers: &[(&str, &str)]) -> RequestHeader {
        let mut request = RequestHeader::build("PUT", b"/photos/a%20b", None).unwrap();
        for (name, value) in headers {
            request.append_header(name.to_string(), *value).unwrap();
        }
        request
    }

    #[test]
    fn streaming_upload_forwarded_decoded() {
        let mut upstream = request(&[
            ("host", "proxy.local"),
            ("authorization", "AWS4-HMAC-SHA256 Credential=client/..."),
            ("content-encoding", "aws-chunked, gzip"),
            ("transfer-encoding", "chunked"),
            ("x-amz-decoded-content-length", "11"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
            ("expect", "100-continue"),
            ("x-amz-meta-color", "blue"),
        ]);
        rewrite_for_backend(
            &mut upstream,
            &route(),
            &PayloadMode::StreamingUnsignedTrailer,
        )
        .unwrap();
        let headers = &upstream.headers;
        assert_eq!(upstream.raw_path(), b"/photos/a%20b?versionId=1");
        assert_eq!(headers["host"], "127.0.0.1:9000");
        assert_eq!(headers["content-length"], "11");
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(headers["x-amz-content-sha256"], "UNSIGNED-PAYLOAD");
        assert_eq!(headers["x-amz-meta-color"], "blue");
        assert!(headers.get("transfer-encoding").is_none());
        assert!(headers.get("x-amz-trailer").is_none());
        assert!(headers.get("expect").is_none());
        let authorization = headers["authorization"].to_str().unwrap();
        assert!(authorization.starts_with("AWS4-HMAC-SHA256 Credential=backend/"));
    }

    fn passthrough_route() -> Route {
        let mut route = route();
        let mut bucket = (*route.bucket).clone();
        bucket.streaming_uploads = StreamingUploads::Passthrough;
        route.bucket = Arc::new(bucket);
        route
    }

    #[test]
    fn streaming_upload_passed_through_with_framed_length() {
        let mut upstream = request(&[
            ("content-encoding", "gzip"),
            ("content-length", "999"),
            ("x-amz-decoded-content-length", "70000"),
            ("x-amz-trailer", "x-amz-checksum-crc32"),
        ]);
        let encoder = rewrite_for_backend(
            &mut upstream,
            &passthrough_route(),
            &PayloadMode::StreamingSignedTrailer,
        )
        .unwrap()
        .expect("the body is framed again");

        let headers = &upstream.headers;
        assert_eq!(
            headers["x-amz-content-sha256"],
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
        );
        assert_eq!(headers["content-encoding"], "gzip");
        assert_eq!(headers["x-amz-decoded-content-length"], "70000");
        assert_eq!(headers["x-amz-trailer"], "x-amz-checksum-crc32");
        assert_eq!(
            headers["content-length"],
            encoder.encoded_len(70_000).to_string().as_str()
        );

        let authorization = headers["authorization"].to_str().unwrap();
        assert!(
            authorization.contains("x-amz-decoded-content-length;x-amz-trailer"),
            "{authorization}"
        );
    }

    #[test]
    fn passthrough_needs_decoded_length() {
        let mut upstream = request(&[("transfer-encoding", "chunked")]);
        let error = rewrite_for_backend(
            &mut upstream,
            &passthrough_route(),
            &PayloadMode::StreamingUnsignedTrailer,
        )
        .unwrap_err();
        assert_eq!((error.status, error.code), (411, "MissingContentLength"));
    }

    #[test]
    fn passthrough_with_bearer_token_decodes_signed_chunks() {
        let mut route = passthrough_route();
        route.auth = BackendAuth::Bearer(SecretKey::new("token"));
        let mut upstream = request(&[("x-amz-decoded-content-length", "5")]);
        let encoder =
            rewrite_for_backend(&mut upstream, &route, &PayloadMode::StreamingSigned).unwrap();
        assert!(encoder.is_none());
        assert_eq!(upstream.headers["content-length"], "5");
        let mut upstream = request(&[("x-amz-decoded-content-length", "5")]);
        let encoder = rewrite_for_backend(
            &mut upstream,
            &route,
            &PayloadMode::StreamingUnsignedTrailer,
        )
        .unwrap();
        assert!(encoder.is_some(), "unsigned chunks need no key");
    }

    #[test]
    fn connection_named_headers_dropped() {
        let mut upstream = request(&[("connection", "close, x-secret-hop"), ("x-secret-hop", "1")]);
        rewrite_for_backend(&mut upstream, &route(), &PayloadMode::Unsigned).unwrap();
        assert!(upstream.headers.get("x-secret-hop").is_none());
        assert!(upstream.headers.get("connection").is_none());
    }
}
