//! AWS Signature Version 4 for S3: parsing the signature claims of an incoming
//! request (Authorization header or presigned query), verifying them with the
//! caller's secret key, and signing requests sent to a backend.
//!
//! The signing steps are public one by one (canonical request, string to sign,
//! signing key, signature) so that each can be tested on its own and reused by
//! the aws-chunked decoder, which signs chunks with the same key.

mod canonical;
mod parse;
mod sign;
mod verify;

pub use canonical::{
    canonical_headers, canonical_query, canonical_request, canonical_uri, uri_encode, RequestView,
};
pub use parse::{parse_auth, CredentialScope, SignedRequestAuth};
pub use sign::{format_amz_date, sha256_hex, sign, signing_key, string_to_sign, BackendSigner};
pub use verify::{verify, VerifiedRequest};

/// The only signing algorithm accepted and produced.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// x-amz-content-sha256 value of a request whose payload is not hashed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// x-amz-content-sha256 value of an aws-chunked body with a signature per chunk.
pub const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// Same as [`STREAMING_SIGNED`], followed by signed trailing headers.
pub const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// x-amz-content-sha256 value of an aws-chunked body without chunk signatures,
/// followed by trailing headers (usually a checksum).
pub const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// SHA-256 of the empty string, in lowercase hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Max difference between the request time and the proxy clock for header auth (S3: 15 minutes).
pub const MAX_CLOCK_SKEW: time::Duration = time::Duration::minutes(15);
/// Max X-Amz-Expires of a presigned URL (S3: 7 days = 604800 s).
pub const MAX_PRESIGNED_EXPIRES: u64 = 604_800;

/// The payload signing mode of a request, from its x-amz-content-sha256 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadMode {
    /// The SHA-256 of the whole body, in lowercase hex.
    Hash(String),
    Unsigned,
    StreamingSigned,
    StreamingSignedTrailer,
    StreamingUnsignedTrailer,
}

impl PayloadMode {
    /// Parses an x-amz-content-sha256 value: one of the four keywords (exact
    /// case) or 64 lowercase hex digits. Uppercase hex is rejected because the
    /// value is copied into the canonical request as sent and compared with a
    /// lowercase digest later.
    pub fn parse(value: &str) -> Result<Self, SigV4Error> {
        match value {
            UNSIGNED_PAYLOAD => Ok(Self::Unsigned),
            STREAMING_SIGNED => Ok(Self::StreamingSigned),
            STREAMING_SIGNED_TRAILER => Ok(Self::StreamingSignedTrailer),
            STREAMING_UNSIGNED_TRAILER => Ok(Self::StreamingUnsignedTrailer),
            _ if is_lower_hex(value, 64) => Ok(Self::Hash(value.to_owned())),
            _ => Err(SigV4Error::InvalidContentSha256(excerpt(value))),
        }
    }

    /// Returns the exact x-amz-content-sha256 string of this mode.
    pub fn header_value(&self) -> &str {
        match self {
            Self::Hash(hash) => hash,
            Self::Unsigned => UNSIGNED_PAYLOAD,
            Self::StreamingSigned => STREAMING_SIGNED,
            Self::StreamingSignedTrailer => STREAMING_SIGNED_TRAILER,
            Self::StreamingUnsignedTrailer => STREAMING_UNSIGNED_TRAILER,
        }
    }

    /// True for the three aws-chunked (STREAMING-*) modes.
    pub fn is_streaming(&self) -> bool {
        matches!(
            self,
            Self::StreamingSigned | Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }

    /// True when every chunk carries a signature chained from the seed signature.
    pub fn signs_chunks(&self) -> bool {
        matches!(self, Self::StreamingSigned | Self::StreamingSignedTrailer)
    }

    /// True when trailing headers follow the last chunk.
    pub fn has_trailer(&self) -> bool {
        matches!(
            self,
            Self::StreamingSignedTrailer | Self::StreamingUnsignedTrailer
        )
    }
}

/// A SigV4 failure. `Display` names the offending value where there is one,
/// and never contains a secret key or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    #[error("The authorization mechanism you have provided (AWS Signature Version 2) is not supported. Please use AWS4-HMAC-SHA256.")]
    SigV2,
    /// An Authorization header with a scheme other than AWS4-HMAC-SHA256.
    #[error("Unsupported authorization scheme {0:?}: only AWS4-HMAC-SHA256 is supported")]
    UnsupportedAlgorithm(String),
    /// A presigned URL whose X-Amz-Algorithm is not AWS4-HMAC-SHA256.
    #[error("X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\", got {0:?}")]
    UnsupportedQueryAlgorithm(String),
    #[error("The authorization header is malformed: {0}")]
    HeaderMalformed(String),
    #[error("The presigned query parameters are malformed: {0}")]
    QueryMalformed(String),
    /// Both an Authorization header and presigned query parameters.
    #[error("Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")]
    MultipleAuthMechanisms,
    #[error("Invalid x-amz-content-sha256 {0:?}: expected 64 lowercase hex digits, UNSIGNED-PAYLOAD or a STREAMING-* value")]
    InvalidContentSha256(String),
    #[error("Missing required header for this request: x-amz-content-sha256")]
    MissingContentSha256,
    #[error("AWS authentication requires a valid Date or x-amz-date header: neither is present")]
    MissingDate,
    #[error(
        "AWS authentication requires a valid Date or x-amz-date header: {0:?} is not a valid date"
    )]
    InvalidDate(String),
    #[error("The signed header {0:?} is missing from the request")]
    MissingSignedHeader(String),
    #[error("The host header must be signed")]
    HostNotSigned,
    #[error("Invalid credential date: it does not match the date of x-amz-date or Date")]
    DateMismatch,
    #[error("The difference between the request time and the current time is too large (more than 15 minutes)")]
    RequestTimeTooSkewed,
    #[error("Request has expired")]
    Expired,
    #[error("Request is not valid yet")]
    RequestNotYetValid,
    #[error("X-Amz-Expires must be less than a week (in seconds) that is; 604800")]
    ExpiresTooLarge,
    #[error("The request signature we calculated does not match the signature you provided. Check your key and signing method.")]
    SignatureDoesNotMatch,
}

impl SigV4Error {
    /// Returns the S3 error code and HTTP status that S3 returns for this failure.
    pub fn s3_code(&self) -> (&'static str, u16) {
        match self {
            Self::SigV2 | Self::MissingContentSha256 => ("InvalidRequest", 400),
            Self::UnsupportedAlgorithm(_) | Self::HeaderMalformed(_) | Self::DateMismatch => {
                ("AuthorizationHeaderMalformed", 400)
            }
            Self::UnsupportedQueryAlgorithm(_)
            | Self::QueryMalformed(_)
            | Self::ExpiresTooLarge => ("AuthorizationQueryParametersError", 400),
            Self::InvalidContentSha256(_) | Self::MultipleAuthMechanisms => {
                ("InvalidArgument", 400)
            }
            Self::MissingDate
            | Self::InvalidDate(_)
            | Self::HostNotSigned
            | Self::Expired
            | Self::RequestNotYetValid => ("AccessDenied", 403),
            // A signed header that is absent means the request changed after
            // it was signed, which is what a signature mismatch reports.
            Self::MissingSignedHeader(_) | Self::SignatureDoesNotMatch => {
                ("SignatureDoesNotMatch", 403)
            }
            Self::RequestTimeTooSkewed => ("RequestTimeTooSkewed", 403),
        }
    }
}

/// True when `value` is exactly `len` lowercase hex digits.
fn is_lower_hex(value: &str, len: usize) -> bool {
    value.len() == len
        && value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
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

    #[test]
    fn payload_mode_parses_keywords() {
        assert_eq!(
            PayloadMode::parse("UNSIGNED-PAYLOAD"),
            Ok(PayloadMode::Unsigned)
        );
        assert_eq!(
            PayloadMode::parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
            Ok(PayloadMode::StreamingSigned)
        );
        assert_eq!(
            PayloadMode::parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"),
            Ok(PayloadMode::StreamingSignedTrailer)
        );
        assert_eq!(
            PayloadMode::parse("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
            Ok(PayloadMode::StreamingUnsignedTrailer)
        );
        assert_eq!(
            PayloadMode::parse(EMPTY_SHA256),
            Ok(PayloadMode::Hash(EMPTY_SHA256.to_owned()))
        );
    }

    #[test]
    fn payload_mode_rejects_bad_values() {
        for bad in [
            "",
            "unsigned-payload",
            "UNSIGNED-PAYLOAD ",
            "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855a",
            "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ] {
            assert!(
                matches!(
                    PayloadMode::parse(bad),
                    Err(SigV4Error::InvalidContentSha256(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn payload_mode_round_trips_header_value() {
        for value in [
            UNSIGNED_PAYLOAD,
            STREAMING_SIGNED,
            STREAMING_SIGNED_TRAILER,
            STREAMING_UNSIGNED_TRAILER,
            EMPTY_SHA256,
        ] {
            let mode = PayloadMode::parse(value).unwrap();
            assert_eq!(mode.header_value(), value);
        }
    }

    #[test]
    fn payload_mode_flags() {
        let hash = PayloadMode::Hash(EMPTY_SHA256.to_owned());
        assert!(!hash.is_streaming());
        assert!(!hash.signs_chunks());
        assert!(!hash.has_trailer());
        let unsigned = PayloadMode::Unsigned;
        assert!(!unsigned.is_streaming());
        assert!(!unsigned.signs_chunks());
        assert!(!unsigned.has_trailer());
        let signed = PayloadMode::StreamingSigned;
        assert!(signed.is_streaming());
        assert!(signed.signs_chunks());
        assert!(!signed.has_trailer());
        let signed_trailer = PayloadMode::StreamingSignedTrailer;
        assert!(signed_trailer.is_streaming());
        assert!(signed_trailer.signs_chunks());
        assert!(signed_trailer.has_trailer());
        let unsigned_trailer = PayloadMode::StreamingUnsignedTrailer;
        assert!(unsigned_trailer.is_streaming());
        assert!(!unsigned_trailer.signs_chunks());
        assert!(unsigned_trailer.has_trailer());
    }

    #[test]
    fn error_codes_match_s3() {
        let cases = [
            (SigV4Error::SigV2, ("InvalidRequest", 400)),
            (SigV4Error::MissingContentSha256, ("InvalidRequest", 400)),
            (
                SigV4Error::UnsupportedAlgorithm("Bearer".into()),
                ("AuthorizationHeaderMalformed", 400),
            ),
            (
                SigV4Error::UnsupportedQueryAlgorithm("HMAC".into()),
                ("AuthorizationQueryParametersError", 400),
            ),
            (
                SigV4Error::HeaderMalformed(String::new()),
                ("AuthorizationHeaderMalformed", 400),
            ),
            (
                SigV4Error::QueryMalformed(String::new()),
                ("AuthorizationQueryParametersError", 400),
            ),
            (
                SigV4Error::InvalidContentSha256("x".into()),
                ("InvalidArgument", 400),
            ),
            (
                SigV4Error::RequestTimeTooSkewed,
                ("RequestTimeTooSkewed", 403),
            ),
            (SigV4Error::Expired, ("AccessDenied", 403)),
            (SigV4Error::RequestNotYetValid, ("AccessDenied", 403)),
            (
                SigV4Error::ExpiresTooLarge,
                ("AuthorizationQueryParametersError", 400),
            ),
            (
                SigV4Error::SignatureDoesNotMatch,
                ("SignatureDoesNotMatch", 403),
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.s3_code(), expected, "{error:?}");
        }
    }

    #[test]
    fn excerpt_truncates_long_values() {
        assert_eq!(excerpt("short"), "short");
        let long = "a".repeat(100);
        assert_eq!(excerpt(&long), format!("{}...", "a".repeat(64)));
    }
}
