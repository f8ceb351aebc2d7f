//! The request sent to the backend: target, headers and the backend's SigV4
//! signature.

use http::header::{HeaderName, CONTENT_ENCODING, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::HeaderValue;
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
/// `route` and signs it with the bucket's credentials.
pub fn rewrite_for_backend(
    request: &mut RequestHeader,
    route: &Route,
    payload: &PayloadMode,
) -> Result<(), S3Error> {
    request
        .set_raw_path(route.target().as_bytes())
        .map_err(|error| {
            S3Error::internal(format!("could not set the backend request target: {error}"))
        })?;
    drop_connection_headers(request);
    let forwarded_payload = if payload.is_streaming() {
        forward_decoded_body(request)?;
        UNSIGNED_PAYLOAD
    } else {
        payload.header_value()
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
            return insert(request, http::header::AUTHORIZATION, value);
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
    signer.sign_headers(
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
    Ok(())
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
/// chunked framing when the client did not declare it), and `aws-chunked`
/// leaves Content-Encoding so it never reaches object metadata.
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
    if !remaining.is_empty() {
        insert(
            request,
            CONTENT_ENCODING,
            header_value(&remaining.join(", "))?,
        )?;
    }
    Ok(())
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

    #[test]
    fn connection_named_headers_dropped() {
        let mut upstream = request(&[("connection", "close, x-secret-hop"), ("x-secret-hop", "1")]);
        rewrite_for_backend(&mut upstream, &route(), &PayloadMode::Unsigned).unwrap();
        assert!(upstream.headers.get("x-secret-hop").is_none());
        assert!(upstream.headers.get("connection").is_none());
    }
}
