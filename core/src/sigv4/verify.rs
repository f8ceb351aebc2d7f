//! Verification of a parsed SigV4 claim against the caller's secret key.

use std::fmt;

use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

use super::canonical::{canonical_request, RequestView};
use super::parse::{request_date, CredentialScope, SignedRequestAuth};
use super::sign::{sign, signing_key, string_to_sign};
use super::{PayloadMode, SigV4Error, MAX_CLOCK_SKEW, MAX_PRESIGNED_EXPIRES};

const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";

/// The result of a successful verification: what the aws-chunked decoder
/// needs to check a chain of chunk signatures. `Debug` leaves out the signing
/// key and the seed signature.
#[derive(Clone)]
pub struct VerifiedRequest {
    pub access_key: String,
    pub signing_key: [u8; 32],
    /// The request signature, which the first chunk signature chains from.
    pub seed_signature: String,
    pub amz_date: String,
    pub scope: CredentialScope,
    pub payload: PayloadMode,
}

impl fmt::Debug for VerifiedRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedRequest")
            .field("access_key", &self.access_key)
            .field("signing_key", &"<redacted>")
            .field("seed_signature", &"<redacted>")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("payload", &self.payload)
            .finish()
    }
}

/// Verifies the signature of `req` as claimed by `auth`, with `secret` at
/// time `now`.
///
/// Header auth requires x-amz-content-sha256, a request time within
/// [`MAX_CLOCK_SKEW`] of `now`, and a credential date equal to the date of
/// x-amz-date (or Date). A presigned URL requires X-Amz-Expires in
/// 1..=[`MAX_PRESIGNED_EXPIRES`], must not have expired and must not start
/// more than [`MAX_CLOCK_SKEW`] in the future. Both require `host` among the
/// signed headers and every signed header present. The signatures are
/// compared in constant time.
pub fn verify(
    req: &RequestView,
    auth: &SignedRequestAuth,
    secret: &crate::secret::SecretKey,
    now: OffsetDateTime,
) -> Result<VerifiedRequest, SigV4Error> {
    let payload = match auth.presigned_expires {
        None => check_header_auth(req, auth, now)?,
        Some(expires) => check_presigned(req, auth, expires, now)?,
    };
    if !auth
        .signed_headers
        .iter()
        .any(|name| name.eq_ignore_ascii_case("host"))
    {
        return Err(SigV4Error::HostNotSigned);
    }

    let presigned = auth.presigned_expires.is_some();
    let canonical_request =
        canonical_request(req, &auth.signed_headers, payload.header_value(), presigned)?;
    let string_to_sign = string_to_sign(&auth.amz_date, &auth.scope, &canonical_request);
    let key = signing_key(
        secret,
        &auth.scope.date,
        &auth.scope.region,
        &auth.scope.service,
    );
    let expected = sign(&key, &string_to_sign);
    if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
        return Err(SigV4Error::SignatureDoesNotMatch);
    }

    Ok(VerifiedRequest {
        access_key: auth.access_key.clone(),
        signing_key: key,
        seed_signature: expected,
        amz_date: auth.amz_date.clone(),
        scope: auth.scope.clone(),
        payload,
    })
}

/// Checks the claims specific to header auth and returns the payload mode
/// from x-amz-content-sha256.
fn check_header_auth(
    req: &RequestView,
    auth: &SignedRequestAuth,
    now: OffsetDateTime,
) -> Result<PayloadMode, SigV4Error> {
    let payload = match req.headers.get(X_AMZ_CONTENT_SHA256) {
        Some(value) => PayloadMode::parse(&String::from_utf8_lossy(value.as_bytes()))?,
        None => return Err(SigV4Error::MissingContentSha256),
    };

    let (request_amz_date, _) = request_date(req.headers)?;
    if request_amz_date != auth.amz_date || !scope_date_matches(auth) {
        return Err(SigV4Error::DateMismatch);
    }
    if (now - auth.timestamp).abs() > MAX_CLOCK_SKEW {
        return Err(SigV4Error::RequestTimeTooSkewed);
    }
    Ok(payload)
}

/// Checks the claims specific to a presigned URL and returns the payload
/// mode: from x-amz-content-sha256 when the request has it, UNSIGNED-PAYLOAD
/// otherwise.
fn check_presigned(
    req: &RequestView,
    auth: &SignedRequestAuth,
    expires: u64,
    now: OffsetDateTime,
) -> Result<PayloadMode, SigV4Error> {
    if expires == 0 {
        return Err(SigV4Error::QueryMalformed(
            "X-Amz-Expires must be at least 1 second".to_owned(),
        ));
    }
    if expires > MAX_PRESIGNED_EXPIRES {
        return Err(SigV4Error::ExpiresTooLarge);
    }
    if !scope_date_matches(auth) {
        return Err(SigV4Error::QueryMalformed(format!(
            "the credential date {} does not match X-Amz-Date {}",
            auth.scope.date, auth.amz_date
        )));
    }

    if auth.timestamp - now > MAX_CLOCK_SKEW {
        return Err(SigV4Error::RequestNotYetValid);
    }
    let lifetime = Duration::seconds(i64::try_from(expires).unwrap_or(i64::MAX));
    // `checked_add` fails past the year 9999, the last year `time` represents
    // without its large-dates feature, and such a URL does not expire.
    if let Some(expiry) = auth.timestamp.checked_add(lifetime) {
        if now > expiry {
            return Err(SigV4Error::Expired);
        }
    }

    match req.headers.get(X_AMZ_CONTENT_SHA256) {
        Some(value) => PayloadMode::parse(&String::from_utf8_lossy(value.as_bytes())),
        None => Ok(PayloadMode::Unsigned),
    }
}

/// True when the credential scope date is the date part of the request time.
fn scope_date_matches(auth: &SignedRequestAuth) -> bool {
    auth.amz_date.get(..8) == Some(auth.scope.date.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretKey;
    use crate::sigv4::{
        canonical_request, parse_auth, sign, signing_key, string_to_sign, BackendSigner,
        EMPTY_SHA256, UNSIGNED_PAYLOAD,
    };
    use http::{HeaderMap, HeaderValue};
    use time::macros::datetime;

    const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const EXAMPLE_TIME: OffsetDateTime = datetime!(2013-05-24 0:00 UTC);

    fn example_secret() -> SecretKey {
        SecretKey::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
    }

    fn example_scope() -> CredentialScope {
        CredentialScope {
            date: "20130524".into(),
            region: "us-east-1".into(),
            service: "s3".into(),
        }
    }

    fn example_headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| (*name).to_owned()).collect()
    }

    /// Checks one AWS published example stage by stage.
    fn check_stages(
        req: &RequestView,
        signed_headers: &[&str],
        payload_hash: &str,
        presigned: bool,
        expected_canonical_request: &str,
        expected_string_to_sign: &str,
        expected_signature: &str,
    ) {
        let creq = canonical_request(req, &names(signed_headers), payload_hash, presigned).unwrap();
        assert_eq!(creq, expected_canonical_request, "canonical request");
        let sts = string_to_sign("20130524T000000Z", &example_scope(), &creq);
        assert_eq!(sts, expected_string_to_sign, "string to sign");
        let key = signing_key(&example_secret(), "20130524", "us-east-1", "s3");
        assert_eq!(sign(&key, &sts), expected_signature, "signature");
    }

    /// Runs parse_auth and verify on a request at `now`.
    fn parse_and_verify(
        req: &RequestView,
        now: OffsetDateTime,
    ) -> Result<VerifiedRequest, SigV4Error> {
        let auth = parse_auth(req)?.expect("request carries auth");
        verify(req, &auth, &example_secret(), now)
    }

    const GET_OBJECT_SIGNATURE: &str =
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    fn get_object_headers() -> HeaderMap {
        example_headers(&[
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ])
    }

    fn get_object_request(headers: &HeaderMap) -> RequestView<'_> {
        RequestView {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: None,
            headers,
            authority: None,
        }
    }

    #[test]
    fn aws_example_get_object() {
        let headers = get_object_headers();
        check_stages(
            &get_object_request(&headers),
            &["host", "range", "x-amz-content-sha256", "x-amz-date"],
            EMPTY_SHA256,
            false,
            "GET\n\
             /test.txt\n\
             \n\
             host:examplebucket.s3.amazonaws.com\n\
             range:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\
             \n\
             host;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n\
             20130524T000000Z\n\
             20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972",
            GET_OBJECT_SIGNATURE,
        );
    }

    #[test]
    fn aws_example_put_object() {
        let headers = example_headers(&[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            (
                "x-amz-content-sha256",
                "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            ),
        ]);
        let req = RequestView {
            method: "PUT",
            raw_path: "/test$file.text",
            raw_query: None,
            headers: &headers,
            authority: None,
        };
        check_stages(
            &req,
            &["date", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-storage-class"],
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            false,
            "PUT\n\
             /test%24file.text\n\
             \n\
             date:Fri, 24 May 2013 00:00:00 GMT\n\
             host:examplebucket.s3.amazonaws.com\n\
             x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n\
             x-amz-date:20130524T000000Z\n\
             x-amz-storage-class:REDUCED_REDUNDANCY\n\
             \n\
             date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n\
             44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
            "AWS4-HMAC-SHA256\n\
             20130524T000000Z\n\
             20130524/us-east-1/s3/aws4_request\n\
             9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        );
    }

    #[test]
    fn aws_example_get_bucket_lifecycle() {
        let headers = example_headers(&[
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256),
        ]);
        let req = RequestView {
            method: "GET",
            raw_path: "/",
            raw_query: Some("lifecycle"),
            headers: &headers,
            authority: None,
        };
        check_stages(
            &req,
            &["host", "x-amz-content-sha256", "x-amz-date"],
            EMPTY_SHA256,
            false,
            "GET\n\
             /\n\
             lifecycle=\n\
             host:examplebucket.s3.amazonaws.com\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\
             \n\
             host;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n\
             20130524T000000Z\n\
             20130524/us-east-1/s3/aws4_request\n\
             9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        );
    }

    #[test]
    fn aws_example_list_objects() {
        let headers = example_headers(&[
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-content-sha256", EMPTY_SHA256),
        ]);
        let req = RequestView {
            method: "GET",
            raw_path: "/",
            raw_query: Some("max-keys=2&prefix=J"),
            headers: &headers,
            authority: None,
        };
        check_stages(
            &req,
            &["host", "x-amz-content-sha256", "x-amz-date"],
            EMPTY_SHA256,
            false,
            "GET\n\
             /\n\
             max-keys=2&prefix=J\n\
             host:examplebucket.s3.amazonaws.com\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\
             \n\
             host;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "AWS4-HMAC-SHA256\n\
             20130524T000000Z\n\
             20130524/us-east-1/s3/aws4_request\n\
             df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        );
    }

    const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    fn presigned_request<'a>(headers: &'a HeaderMap, query: &'a str) -> RequestView<'a> {
        RequestView {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: Some(query),
            headers,
            authority: None,
        }
    }

    #[test]
    fn aws_example_presigned_url() {
        let headers = example_headers(&[]);
        check_stages(
            &presigned_request(&headers, PRESIGNED_QUERY),
            &["host"],
            UNSIGNED_PAYLOAD,
            true,
            "GET\n\
             /test.txt\n\
             X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\n\
             host:examplebucket.s3.amazonaws.com\n\
             \n\
             host\n\
             UNSIGNED-PAYLOAD",
            "AWS4-HMAC-SHA256\n\
             20130524T000000Z\n\
             20130524/us-east-1/s3/aws4_request\n\
             3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04",
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
        );
    }

    #[test]
    fn verify_accepts_header_auth() {
        let headers = get_object_headers();
        let verified = parse_and_verify(&get_object_request(&headers), EXAMPLE_TIME).unwrap();
        assert_eq!(verified.access_key, ACCESS_KEY);
        assert_eq!(verified.seed_signature, GET_OBJECT_SIGNATURE);
        assert_eq!(verified.amz_date, "20130524T000000Z");
        assert_eq!(verified.scope, example_scope());
        assert_eq!(verified.payload, PayloadMode::Hash(EMPTY_SHA256.into()));
        assert_eq!(
            verified.signing_key,
            signing_key(&example_secret(), "20130524", "us-east-1", "s3")
        );
    }

    #[test]
    fn verify_accepts_skew_within_limit() {
        let headers = get_object_headers();
        let req = get_object_request(&headers);
        assert!(parse_and_verify(&req, EXAMPLE_TIME + Duration::minutes(15)).is_ok());
        assert!(parse_and_verify(&req, EXAMPLE_TIME - Duration::minutes(15)).is_ok());
    }

    #[test]
    fn verify_wrong_secret() {
        let headers = get_object_headers();
        let req = get_object_request(&headers);
        let auth = parse_auth(&req).unwrap().unwrap();
        let result = verify(&req, &auth, &SecretKey::new("another secret"), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::SignatureDoesNotMatch);
    }

    #[test]
    fn verify_rejects_skew_over_15_minutes() {
        let headers = get_object_headers();
        let req = get_object_request(&headers);
        let late = EXAMPLE_TIME + Duration::minutes(15) + Duration::seconds(1);
        assert_eq!(
            parse_and_verify(&req, late).unwrap_err(),
            SigV4Error::RequestTimeTooSkewed
        );
        let early = EXAMPLE_TIME - Duration::minutes(15) - Duration::seconds(1);
        assert_eq!(
            parse_and_verify(&req, early).unwrap_err(),
            SigV4Error::RequestTimeTooSkewed
        );
    }

    #[test]
    fn verify_tampered_signed_header() {
        let mut headers = get_object_headers();
        headers.insert("range", HeaderValue::from_static("bytes=0-99"));
        let result = parse_and_verify(&get_object_request(&headers), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::SignatureDoesNotMatch);
    }

    #[test]
    fn verify_tampered_path() {
        let headers = get_object_headers();
        let mut req = get_object_request(&headers);
        req.raw_path = "/test2.txt";
        assert_eq!(
            parse_and_verify(&req, EXAMPLE_TIME).unwrap_err(),
            SigV4Error::SignatureDoesNotMatch
        );
    }

    #[test]
    fn verify_missing_signed_header() {
        let mut headers = get_object_headers();
        headers.remove("range");
        let result = parse_and_verify(&get_object_request(&headers), EXAMPLE_TIME);
        assert_eq!(
            result.unwrap_err(),
            SigV4Error::MissingSignedHeader("range".into())
        );
    }

    #[test]
    fn verify_requires_content_sha256() {
        let mut headers = get_object_headers();
        headers.remove("x-amz-content-sha256");
        let result = parse_and_verify(&get_object_request(&headers), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::MissingContentSha256);
    }

    #[test]
    fn verify_rejects_invalid_content_sha256() {
        let mut headers = get_object_headers();
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static("not-a-hash"),
        );
        let result = parse_and_verify(&get_object_request(&headers), EXAMPLE_TIME);
        assert_eq!(
            result.unwrap_err(),
            SigV4Error::InvalidContentSha256("not-a-hash".into())
        );
    }

    #[test]
    fn verify_rejects_credential_date_mismatch() {
        let mut headers = get_object_headers();
        headers.insert(
            "authorization",
            HeaderValue::from_str(&format!(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130525/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature={GET_OBJECT_SIGNATURE}"
            ))
            .unwrap(),
        );
        let result = parse_and_verify(&get_object_request(&headers), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::DateMismatch);
    }

    #[test]
    fn verify_rejects_auth_of_another_date() {
        // The claims were read while x-amz-date had another value.
        let headers = get_object_headers();
        let req = get_object_request(&headers);
        let mut auth = parse_auth(&req).unwrap().unwrap();
        auth.amz_date = "20130524T000001Z".into();
        let result = verify(&req, &auth, &example_secret(), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::DateMismatch);
    }

    #[test]
    fn verify_requires_signed_host() {
        let headers = example_headers(&[
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        ]);
        let result = parse_and_verify(&get_object_request(&headers), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::HostNotSigned);
    }

    #[test]
    fn verify_host_from_http2_authority() {
        let mut headers = get_object_headers();
        headers.remove("host");
        let mut req = get_object_request(&headers);
        assert_eq!(
            parse_and_verify(&req, EXAMPLE_TIME).unwrap_err(),
            SigV4Error::MissingSignedHeader("host".into())
        );
        req.authority = Some("examplebucket.s3.amazonaws.com");
        assert!(parse_and_verify(&req, EXAMPLE_TIME).is_ok());
    }

    #[test]
    fn verify_accepts_presigned_url() {
        let headers = example_headers(&[]);
        let req = presigned_request(&headers, PRESIGNED_QUERY);
        let verified = parse_and_verify(&req, EXAMPLE_TIME + Duration::hours(1)).unwrap();
        assert_eq!(verified.payload, PayloadMode::Unsigned);
        assert_eq!(verified.access_key, ACCESS_KEY);
    }

    #[test]
    fn verify_presigned_expired() {
        let headers = example_headers(&[]);
        let req = presigned_request(&headers, PRESIGNED_QUERY);
        let last_second = EXAMPLE_TIME + Duration::seconds(86400);
        assert!(parse_and_verify(&req, last_second).is_ok());
        let result = parse_and_verify(&req, last_second + Duration::seconds(1));
        assert_eq!(result.unwrap_err(), SigV4Error::Expired);
    }

    #[test]
    fn verify_presigned_in_future() {
        let headers = example_headers(&[]);
        let req = presigned_request(&headers, PRESIGNED_QUERY);
        assert!(parse_and_verify(&req, EXAMPLE_TIME - Duration::minutes(15)).is_ok());
        let result = parse_and_verify(&req, EXAMPLE_TIME - Duration::minutes(16));
        assert_eq!(result.unwrap_err(), SigV4Error::RequestNotYetValid);
    }

    #[test]
    fn verify_presigned_expires_too_large() {
        let headers = example_headers(&[]);
        let query = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=604801");
        let result = parse_and_verify(&presigned_request(&headers, &query), EXAMPLE_TIME);
        let error = result.unwrap_err();
        assert_eq!(error, SigV4Error::ExpiresTooLarge);
        assert_eq!(
            error.to_string(),
            "X-Amz-Expires must be less than a week (in seconds) that is; 604800"
        );
    }

    #[test]
    fn verify_presigned_expires_zero() {
        let headers = example_headers(&[]);
        let query = PRESIGNED_QUERY.replace("X-Amz-Expires=86400", "X-Amz-Expires=0");
        let result = parse_and_verify(&presigned_request(&headers, &query), EXAMPLE_TIME);
        assert!(matches!(result, Err(SigV4Error::QueryMalformed(_))));
    }

    #[test]
    fn verify_presigned_tampered_query() {
        let headers = example_headers(&[]);
        let query = format!("{PRESIGNED_QUERY}&response-content-type=text%2Fhtml");
        let result = parse_and_verify(&presigned_request(&headers, &query), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::SignatureDoesNotMatch);
    }

    #[test]
    fn verify_presigned_uses_content_sha256_header() {
        // The header's value replaces UNSIGNED-PAYLOAD in the canonical request.
        let headers = example_headers(&[("x-amz-content-sha256", EMPTY_SHA256)]);
        let result = parse_and_verify(&presigned_request(&headers, PRESIGNED_QUERY), EXAMPLE_TIME);
        assert_eq!(result.unwrap_err(), SigV4Error::SignatureDoesNotMatch);
        let headers = example_headers(&[("x-amz-content-sha256", UNSIGNED_PAYLOAD)]);
        let result = parse_and_verify(&presigned_request(&headers, PRESIGNED_QUERY), EXAMPLE_TIME);
        assert!(result.is_ok());
    }

    fn example_signer(secret: &SecretKey) -> BackendSigner<'_> {
        BackendSigner {
            access_key: ACCESS_KEY,
            secret,
            region: "eu-west-3",
            service: "s3",
        }
    }

    const ROUND_TRIP_PATH: &str = "/my-bucket/dir/a%20b%2Bc%E2%82%AC";
    const ROUND_TRIP_QUERY: &str = "list-type=2&prefix=dir%2F&delimiter=%2F&uploads";

    fn round_trip_request(headers: &HeaderMap) -> RequestView<'_> {
        RequestView {
            method: "GET",
            raw_path: ROUND_TRIP_PATH,
            raw_query: Some(ROUND_TRIP_QUERY),
            headers,
            authority: None,
        }
    }

    #[test]
    fn backend_signature_round_trip() {
        let secret = example_secret();
        let now = datetime!(2024-03-01 12:34:56 UTC);
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("backend.example:9000"));
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_static(EMPTY_SHA256),
        );
        headers.insert(
            "x-amz-meta-note",
            HeaderValue::from_static("  two   spaces "),
        );
        headers.insert("content-type", HeaderValue::from_static("application/xml"));
        headers.insert("user-agent", HeaderValue::from_static("not signed"));

        let signer = example_signer(&secret);
        let signature = signer
            .sign_headers("GET", ROUND_TRIP_PATH, ROUND_TRIP_QUERY, &mut headers, now)
            .seed_signature;

        let auth = parse_auth(&round_trip_request(&headers)).unwrap().unwrap();
        assert_eq!(auth.signature, signature);
        assert_eq!(
            auth.signed_headers,
            [
                "content-type",
                "host",
                "x-amz-content-sha256",
                "x-amz-date",
                "x-amz-meta-note"
            ]
        );
        let verified = verify(&round_trip_request(&headers), &auth, &secret, now).unwrap();
        assert_eq!(verified.scope.region, "eu-west-3");
        assert_eq!(verified.amz_date, "20240301T123456Z");

        // An unsigned header may change, a signed one may not.
        headers.insert("user-agent", HeaderValue::from_static("changed"));
        assert!(verify(&round_trip_request(&headers), &auth, &secret, now).is_ok());
        headers.insert("x-amz-meta-note", HeaderValue::from_static("changed"));
        assert_eq!(
            verify(&round_trip_request(&headers), &auth, &secret, now).unwrap_err(),
            SigV4Error::SignatureDoesNotMatch
        );
    }

    #[test]
    fn debug_hides_key_and_signature() {
        let headers = get_object_headers();
        let req = get_object_request(&headers);
        let auth = parse_auth(&req).unwrap().unwrap();
        let verified = verify(&req, &auth, &example_secret(), EXAMPLE_TIME).unwrap();

        let auth_debug = format!("{auth:?}");
        assert!(!auth_debug.contains(GET_OBJECT_SIGNATURE), "{auth_debug}");
        let verified_debug = format!("{verified:?}");
        assert!(
            !verified_debug.contains(GET_OBJECT_SIGNATURE),
            "{verified_debug}"
        );
        assert!(
            !verified_debug.contains(&hex::encode(verified.signing_key)),
            "{verified_debug}"
        );
        assert!(
            !verified_debug.contains(&format!("{:?}", verified.signing_key)),
            "{verified_debug}"
        );
        assert!(
            verified_debug.contains("AKIAIOSFODNN7EXAMPLE"),
            "{verified_debug}"
        );
    }
}
