//! Extraction of the SigV4 claims of a request, from its Authorization header
//! or from the query parameters of a presigned URL.

use std::fmt;

use http::header::{AUTHORIZATION, DATE};
use http::HeaderMap;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

use super::canonical::{query_pairs, RequestView};
use super::sign::format_amz_date;
use super::{excerpt, is_lower_hex, SigV4Error, ALGORITHM};

/// The scope a signing key is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialScope {
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
}

impl CredentialScope {
    /// Returns `date/region/service/aws4_request`.
    pub fn to_scope_string(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// The signature claims of a request, from the Authorization header or the
/// presigned query. `Debug` leaves out the signature.
#[derive(Clone)]
pub struct SignedRequestAuth {
    pub access_key: String,
    pub scope: CredentialScope,
    /// Lowercase names, in the order given.
    pub signed_headers: Vec<String>,
    /// Lowercase hex. Never logged.
    pub signature: String,
    /// `YYYYMMDD'T'HHMMSS'Z'`: x-amz-date or X-Amz-Date as sent, or the Date
    /// header converted to this format when x-amz-date is absent.
    pub amz_date: String,
    pub timestamp: OffsetDateTime,
    /// X-Amz-Expires of a presigned URL, `None` for header auth.
    pub presigned_expires: Option<u64>,
}

impl fmt::Debug for SignedRequestAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedRequestAuth")
            .field("access_key", &self.access_key)
            .field("scope", &self.scope)
            .field("signed_headers", &self.signed_headers)
            .field("signature", &"<redacted>")
            .field("amz_date", &self.amz_date)
            .field("timestamp", &self.timestamp)
            .field("presigned_expires", &self.presigned_expires)
            .finish()
    }
}

const X_AMZ_DATE: &str = "x-amz-date";

/// Query parameters whose presence makes a request a presigned SigV4 request.
const QUERY_AUTH_MARKERS: [&str; 3] = ["X-Amz-Algorithm", "X-Amz-Signature", "X-Amz-Credential"];

/// Extracts the SigV4 claims of a request without checking the signature.
///
/// Returns `Ok(None)` when the request carries no auth at all: no
/// Authorization header and none of the X-Amz-Algorithm, X-Amz-Signature or
/// X-Amz-Credential query parameters. SigV2 auth (an Authorization header
/// starting with "AWS ", or a query with both AWSAccessKeyId and Signature)
/// returns [`SigV4Error::SigV2`], so the caller does not mistake it for an
/// anonymous request.
///
/// A request with both an Authorization header and SigV4 query parameters
/// returns [`SigV4Error::MultipleAuthMechanisms`], the 400 InvalidArgument
/// that S3 returns for such a request.
pub fn parse_auth(req: &RequestView) -> Result<Option<SignedRequestAuth>, SigV4Error> {
    let authorization = authorization_header(req.headers)?;
    let params: Vec<(Vec<u8>, Vec<u8>)> = req
        .raw_query
        .map(|q| query_pairs(q).collect())
        .unwrap_or_default();
    let has_query_auth = params.iter().any(|(name, _)| {
        QUERY_AUTH_MARKERS
            .iter()
            .any(|marker| name == marker.as_bytes())
    });

    match (authorization, has_query_auth) {
        (Some(_), true) => Err(SigV4Error::MultipleAuthMechanisms),
        (Some(value), false) => parse_header_auth(value, req.headers).map(Some),
        (None, true) => parse_query_auth(&params).map(Some),
        (None, false) => {
            let has_param = |wanted: &str| params.iter().any(|(name, _)| name == wanted.as_bytes());
            if has_param("AWSAccessKeyId") && has_param("Signature") {
                return Err(SigV4Error::SigV2);
            }
            Ok(None)
        }
    }
}

/// Returns the single Authorization header value, if any.
fn authorization_header(headers: &HeaderMap) -> Result<Option<&str>, SigV4Error> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SigV4Error::HeaderMalformed(
            "the request has more than one Authorization header".to_owned(),
        ));
    }
    value.to_str().map(Some).map_err(|_| {
        SigV4Error::HeaderMalformed("the Authorization header is not visible ASCII".to_owned())
    })
}

/// Parses an `AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`
/// header and reads the request time from x-amz-date or Date.
fn parse_header_auth(value: &str, headers: &HeaderMap) -> Result<SignedRequestAuth, SigV4Error> {
    if value.starts_with("AWS ") {
        return Err(SigV4Error::SigV2);
    }
    let (scheme, components) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if scheme != ALGORITHM {
        if scheme.starts_with(ALGORITHM) && scheme.contains('=') {
            return Err(SigV4Error::HeaderMalformed(
                "a space must separate AWS4-HMAC-SHA256 from Credential=...".to_owned(),
            ));
        }
        if components.is_empty() {
            // Without a scheme, the whole value may be a bare token: not echoed.
            return Err(SigV4Error::UnsupportedAlgorithm(
                "(value without a scheme)".to_owned(),
            ));
        }
        return Err(SigV4Error::UnsupportedAlgorithm(excerpt(scheme)));
    }

    let components = AuthorizationComponents::parse(components)?;
    let (access_key, scope) =
        parse_credential(components.credential).map_err(SigV4Error::HeaderMalformed)?;
    let signed_headers =
        parse_signed_headers(components.signed_headers).map_err(SigV4Error::HeaderMalformed)?;
    let signature = parse_signature(components.signature).map_err(SigV4Error::HeaderMalformed)?;
    let (amz_date, timestamp) = request_date(headers)?;

    Ok(SignedRequestAuth {
        access_key,
        scope,
        signed_headers,
        signature,
        amz_date,
        timestamp,
        presigned_expires: None,
    })
}

/// The three `key=value` components after the scheme of an Authorization header.
struct AuthorizationComponents<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

impl<'a> AuthorizationComponents<'a> {
    /// Splits the components on `,`, tolerating whitespace around each one.
    /// Each of Credential, SignedHeaders and Signature must appear exactly once
    /// and nothing else may appear.
    fn parse(text: &'a str) -> Result<Self, SigV4Error> {
        let malformed = |message: String| SigV4Error::HeaderMalformed(message);
        let mut credential = None;
        let mut signed_headers = None;
        let mut signature = None;

        if text.trim_matches([' ', '\t']).is_empty() {
            return Err(malformed(
                "the Credential, SignedHeaders and Signature components are missing".to_owned(),
            ));
        }
        for component in text.split(',') {
            let component = component.trim_matches([' ', '\t']);
            let Some((key, value)) = component.split_once('=') else {
                return Err(malformed(format!(
                    "expected key=value, found {:?}",
                    excerpt(component)
                )));
            };
            let slot = match key {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed_headers,
                "Signature" => &mut signature,
                _ => return Err(malformed(format!("unknown component {:?}", excerpt(key)))),
            };
            if slot.replace(value.trim_matches([' ', '\t'])).is_some() {
                return Err(malformed(format!("{key} appears more than once")));
            }
        }

        let require = |value: Option<&'a str>, key: &str| {
            value.ok_or_else(|| malformed(format!("the {key} component is missing")))
        };
        Ok(Self {
            credential: require(credential, "Credential")?,
            signed_headers: require(signed_headers, "SignedHeaders")?,
            signature: require(signature, "Signature")?,
        })
    }
}

/// Parses the presigned query parameters. All six X-Amz-* auth parameters are
/// required, each exactly once.
fn parse_query_auth(params: &[(Vec<u8>, Vec<u8>)]) -> Result<SignedRequestAuth, SigV4Error> {
    let param = |name: &str| -> Result<String, SigV4Error> {
        let mut values = params
            .iter()
            .filter(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v);
        let Some(value) = values.next() else {
            return Err(SigV4Error::QueryMalformed(format!(
                "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters; {name} is missing"
            )));
        };
        if values.next().is_some() {
            return Err(SigV4Error::QueryMalformed(format!(
                "{name} appears more than once"
            )));
        }
        String::from_utf8(value.clone())
            .map_err(|_| SigV4Error::QueryMalformed(format!("{name} is not valid UTF-8")))
    };

    let algorithm = param("X-Amz-Algorithm")?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::UnsupportedQueryAlgorithm(excerpt(&algorithm)));
    }
    let (access_key, scope) =
        parse_credential(&param("X-Amz-Credential")?).map_err(SigV4Error::QueryMalformed)?;
    let amz_date = param("X-Amz-Date")?;
    let timestamp = parse_amz_date(&amz_date).ok_or_else(|| {
        SigV4Error::QueryMalformed(format!(
            "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\", got {:?}",
            excerpt(&amz_date)
        ))
    })?;
    let expires_text = param("X-Amz-Expires")?;
    let expires = parse_expires(&expires_text).ok_or_else(|| {
        SigV4Error::QueryMalformed(format!(
            "X-Amz-Expires must be a whole number of seconds, got {:?}",
            excerpt(&expires_text)
        ))
    })?;
    let signed_headers =
        parse_signed_headers(&param("X-Amz-SignedHeaders")?).map_err(SigV4Error::QueryMalformed)?;
    let signature =
        parse_signature(&param("X-Amz-Signature")?).map_err(SigV4Error::QueryMalformed)?;

    Ok(SignedRequestAuth {
        access_key,
        scope,
        signed_headers,
        signature,
        amz_date,
        timestamp,
        presigned_expires: Some(expires),
    })
}

/// Parses X-Amz-Expires: decimal digits only, no sign.
fn parse_expires(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses `ACCESS_KEY/YYYYMMDD/REGION/SERVICE/aws4_request`. The error is a
/// message for the caller to wrap in the header or query variant.
fn parse_credential(value: &str) -> Result<(String, CredentialScope), String> {
    let malformed = || {
        format!(
            "the Credential {:?} is malformed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\"",
            excerpt(value)
        )
    };
    let parts: Vec<&str> = value.split('/').collect();
    let [access_key, date, region, service, terminator] = parts.as_slice() else {
        return Err(malformed());
    };
    if access_key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed());
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "the credential date {:?} is not in the format YYYYMMDD",
            excerpt(date)
        ));
    }
    if *terminator != "aws4_request" {
        return Err(format!(
            "the credential terminator {:?} is invalid; expecting \"aws4_request\"",
            excerpt(terminator)
        ));
    }
    let scope = CredentialScope {
        date: (*date).to_owned(),
        region: (*region).to_owned(),
        service: (*service).to_owned(),
    };
    Ok(((*access_key).to_owned(), scope))
}

/// Parses `name;name;...` into lowercase names, keeping their order. Empty
/// and repeated names are rejected.
fn parse_signed_headers(value: &str) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = Vec::new();
    for name in value.split(';') {
        let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !valid {
            return Err(format!(
                "SignedHeaders {:?} contains an empty or invalid header name",
                excerpt(value)
            ));
        }
        let name = name.to_ascii_lowercase();
        if names.contains(&name) {
            return Err(format!("SignedHeaders lists {name:?} more than once"));
        }
        names.push(name);
    }
    Ok(names)
}

/// Checks that a signature is 64 hex digits and returns it in lowercase. The
/// value itself never goes into an error message.
fn parse_signature(value: &str) -> Result<String, String> {
    let signature = value.to_ascii_lowercase();
    if !is_lower_hex(&signature, 64) {
        return Err("the Signature must be 64 hex digits".to_owned());
    }
    Ok(signature)
}

/// Reads the request time of header auth: x-amz-date, or the Date header when
/// x-amz-date is absent. Returns the time in `YYYYMMDD'T'HHMMSS'Z'` form (as
/// sent for x-amz-date, converted for Date) and as a timestamp.
pub(super) fn request_date(headers: &HeaderMap) -> Result<(String, OffsetDateTime), SigV4Error> {
    if let Some(value) = headers.get(X_AMZ_DATE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let timestamp =
            parse_amz_date(&text).ok_or_else(|| SigV4Error::InvalidDate(excerpt(&text)))?;
        return Ok((text.into_owned(), timestamp));
    }
    if let Some(value) = headers.get(DATE) {
        let text = String::from_utf8_lossy(value.as_bytes());
        let timestamp =
            parse_http_date(&text).ok_or_else(|| SigV4Error::InvalidDate(excerpt(&text)))?;
        return Ok((format_amz_date(timestamp), timestamp));
    }
    Err(SigV4Error::MissingDate)
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'` strictly: 16 characters, digits except the
/// `T` and `Z`, UTC.
pub(super) fn parse_amz_date(text: &str) -> Option<OffsetDateTime> {
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 16
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[..8]
            .iter()
            .chain(&bytes[9..15])
            .all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// Parses an HTTP date in the IMF-fixdate form of RFC 9110, for example
/// `Fri, 24 May 2013 00:00:00 GMT`, the form SigV4 clients send in Date.
fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let format = format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    PrimitiveDateTime::parse(text, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use time::macros::datetime;

    const SIGNATURE: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    fn header_request(authorization: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        headers.insert("x-amz-date", HeaderValue::from_static("20130524T000000Z"));
        headers.insert(
            "authorization",
            HeaderValue::from_str(authorization).unwrap(),
        );
        headers
    }

    fn parse_headers(
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<Option<SignedRequestAuth>, SigV4Error> {
        parse_auth(&RequestView {
            method: "GET",
            raw_path: "/test.txt",
            raw_query: query,
            headers,
            authority: None,
        })
    }

    fn parse_header(authorization: &str) -> Result<Option<SignedRequestAuth>, SigV4Error> {
        parse_headers(&header_request(authorization), None)
    }

    fn is_header_malformed(result: Result<Option<SignedRequestAuth>, SigV4Error>) -> bool {
        matches!(result, Err(SigV4Error::HeaderMalformed(_)))
    }

    #[test]
    fn header_auth_parsed() {
        let auth = parse_header(&format!(
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature={SIGNATURE}"
        ))
        .unwrap()
        .unwrap();
        assert_eq!(auth.access_key, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            auth.scope,
            CredentialScope {
                date: "20130524".into(),
                region: "us-east-1".into(),
                service: "s3".into()
            }
        );
        assert_eq!(
            auth.signed_headers,
            ["host", "range", "x-amz-content-sha256", "x-amz-date"]
        );
        assert_eq!(auth.signature, SIGNATURE);
        assert_eq!(auth.amz_date, "20130524T000000Z");
        assert_eq!(auth.timestamp, datetime!(2013-05-24 0:00 UTC));
        assert_eq!(auth.presigned_expires, None);
    }

    #[test]
    fn header_auth_tolerates_whitespace() {
        let auth = parse_header(&format!(
            "AWS4-HMAC-SHA256   Credential=AK/20130524/us-east-1/s3/aws4_request ,\t SignedHeaders=Host;X-Amz-Date,   Signature={}",
            SIGNATURE.to_uppercase()
        ))
        .unwrap()
        .unwrap();
        assert_eq!(auth.access_key, "AK");
        assert_eq!(auth.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(auth.signature, SIGNATURE);
    }

    #[test]
    fn header_auth_rejects_missing_parts() {
        let credential = "Credential=AK/20130524/us-east-1/s3/aws4_request";
        let signed = "SignedHeaders=host";
        let signature = format!("Signature={SIGNATURE}");
        for value in [
            format!("AWS4-HMAC-SHA256 {signed},{signature}"),
            format!("AWS4-HMAC-SHA256 {credential},{signature}"),
            format!("AWS4-HMAC-SHA256 {credential},{signed}"),
            format!("AWS4-HMAC-SHA256 {credential},{signed},{signature},"),
            format!("AWS4-HMAC-SHA256 {credential},{signed},{signature},Extra=1"),
            "AWS4-HMAC-SHA256".to_owned(),
            format!("AWS4-HMAC-SHA256{credential},{signed},{signature}"),
            format!("AWS4-HMAC-SHA256{credential}, {signed}, {signature}"),
        ] {
            assert!(is_header_malformed(parse_header(&value)), "{value}");
        }
    }

    #[test]
    fn header_auth_rejects_duplicates() {
        let value = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,SignedHeaders=host,Signature={SIGNATURE}"
        );
        assert!(is_header_malformed(parse_header(&value)));
        let value = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;host,Signature={SIGNATURE}"
        );
        assert!(is_header_malformed(parse_header(&value)));
    }

    #[test]
    fn header_auth_rejects_bad_credential() {
        for credential in [
            "AK/20130524/us-east-1/s3",
            "AK/20130524/us-east-1/s3/aws4_request/extra",
            "AK/20130524/us-east-1/s3/aws5_request",
            "/20130524/us-east-1/s3/aws4_request",
            "AK/2013052/us-east-1/s3/aws4_request",
            "AK/2013-05-24/us-east-1/s3/aws4_request",
            "AK/20130524//s3/aws4_request",
        ] {
            let value = format!(
                "AWS4-HMAC-SHA256 Credential={credential},SignedHeaders=host,Signature={SIGNATURE}"
            );
            assert!(is_header_malformed(parse_header(&value)), "{credential}");
        }
    }

    #[test]
    fn header_auth_rejects_bad_signature() {
        for signature in [
            &SIGNATURE[1..],
            &format!("{SIGNATURE}0"),
            &format!("g{}", &SIGNATURE[1..]),
            "",
        ] {
            let value = format!(
                "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature={signature}"
            );
            let result = parse_header(&value);
            assert!(is_header_malformed(result.clone()), "{signature}");
            // The message must not echo the rejected signature.
            let message = result.unwrap_err().to_string();
            assert!(
                signature.is_empty() || !message.contains(signature),
                "{message}"
            );
        }
    }

    #[test]
    fn header_sigv2_is_reported() {
        let result = parse_header("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=");
        assert_eq!(result.unwrap_err(), SigV4Error::SigV2);
    }

    #[test]
    fn header_other_scheme_unsupported() {
        let result = parse_header("Bearer abc.def");
        assert_eq!(
            result.unwrap_err(),
            SigV4Error::UnsupportedAlgorithm("Bearer".into())
        );
        let result = parse_header("AWS4-HMAC-SHA512 Credential=x");
        assert_eq!(
            result.unwrap_err(),
            SigV4Error::UnsupportedAlgorithm("AWS4-HMAC-SHA512".into())
        );
        let result = parse_header("sometoken");
        assert!(!result.unwrap_err().to_string().contains("sometoken"));
    }

    #[test]
    fn header_auth_date_fallback() {
        let mut headers = header_request(&format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host,Signature={SIGNATURE}"
        ));
        headers.remove("x-amz-date");
        headers.insert(
            "date",
            HeaderValue::from_static("Fri, 24 May 2013 00:00:00 GMT"),
        );
        let auth = parse_headers(&headers, None).unwrap().unwrap();
        assert_eq!(auth.amz_date, "20130524T000000Z");
        assert_eq!(auth.timestamp, datetime!(2013-05-24 0:00 UTC));
    }

    #[test]
    fn header_auth_requires_valid_date() {
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature={SIGNATURE}"
        );
        let mut headers = header_request(&authorization);
        headers.remove("x-amz-date");
        assert_eq!(
            parse_headers(&headers, None).unwrap_err(),
            SigV4Error::MissingDate
        );

        for bad in [
            "2013-05-24T00:00:00Z",
            "20130524T000000",
            "20131324T000000Z",
            "+0130524T000000Z",
        ] {
            headers.insert("x-amz-date", HeaderValue::from_static(bad));
            assert_eq!(
                parse_headers(&headers, None).unwrap_err(),
                SigV4Error::InvalidDate(bad.into()),
                "{bad}"
            );
        }
    }

    #[test]
    fn no_auth_returns_none() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "host",
            HeaderValue::from_static("examplebucket.s3.amazonaws.com"),
        );
        assert!(parse_headers(&headers, None).unwrap().is_none());
        assert!(parse_headers(&headers, Some("prefix=a&uploads"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn query_sigv2_is_reported() {
        let headers = HeaderMap::new();
        let query =
            "AWSAccessKeyId=AK&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D";
        assert_eq!(
            parse_headers(&headers, Some(query)).unwrap_err(),
            SigV4Error::SigV2
        );
    }

    const PRESIGNED_QUERY: &str = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    #[test]
    fn query_auth_parsed() {
        let headers = HeaderMap::new();
        let auth = parse_headers(&headers, Some(PRESIGNED_QUERY))
            .unwrap()
            .unwrap();
        assert_eq!(auth.access_key, "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(
            auth.scope.to_scope_string(),
            "20130524/us-east-1/s3/aws4_request"
        );
        assert_eq!(auth.signed_headers, ["host"]);
        assert_eq!(
            auth.signature,
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
        );
        assert_eq!(auth.amz_date, "20130524T000000Z");
        assert_eq!(auth.timestamp, datetime!(2013-05-24 0:00 UTC));
        assert_eq!(auth.presigned_expires, Some(86400));
    }

    #[test]
    fn query_auth_requires_every_param() {
        let headers = HeaderMap::new();
        for dropped in [
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        ] {
            let query: Vec<&str> = PRESIGNED_QUERY
                .split('&')
                .filter(|param| !param.starts_with(&format!("{dropped}=")))
                .collect();
            let result = parse_headers(&headers, Some(&query.join("&")));
            assert!(
                matches!(result, Err(SigV4Error::QueryMalformed(_))),
                "{dropped}"
            );
        }
    }

    #[test]
    fn query_auth_rejects_bad_values() {
        let headers = HeaderMap::new();
        for (from, to) in [
            ("X-Amz-Expires=86400", "X-Amz-Expires=1d"),
            ("X-Amz-Expires=86400", "X-Amz-Expires=-1"),
            ("X-Amz-Expires=86400", "X-Amz-Expires=86400&X-Amz-Expires=1"),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524"),
            ("%2Faws4_request", "%2Faws4"),
            ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=host%3B"),
        ] {
            let query = PRESIGNED_QUERY.replace(from, to);
            let result = parse_headers(&headers, Some(&query));
            assert!(matches!(result, Err(SigV4Error::QueryMalformed(_))), "{to}");
        }
    }

    #[test]
    fn query_auth_unsupported_algorithm() {
        let headers = HeaderMap::new();
        let query = PRESIGNED_QUERY.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256");
        assert_eq!(
            parse_headers(&headers, Some(&query)).unwrap_err(),
            SigV4Error::UnsupportedQueryAlgorithm("AWS4-ECDSA-P256-SHA256".into())
        );
    }

    #[test]
    fn header_and_query_auth_rejected() {
        let headers = header_request(&format!(
            "AWS4-HMAC-SHA256 Credential=AK/20130524/us-east-1/s3/aws4_request,SignedHeaders=host,Signature={SIGNATURE}"
        ));
        for query in [
            PRESIGNED_QUERY,
            "X-Amz-Signature=x",
            "X-Amz-Credential=x",
            "X-Amz-Algorithm=x",
        ] {
            let result = parse_headers(&headers, Some(query));
            assert_eq!(
                result.unwrap_err(),
                SigV4Error::MultipleAuthMechanisms,
                "{query}"
            );
        }
    }

    #[test]
    fn debug_hides_signature() {
        let headers = HeaderMap::new();
        let auth = parse_headers(&headers, Some(PRESIGNED_QUERY))
            .unwrap()
            .unwrap();
        let debug = format!("{auth:?}");
        assert!(!debug.contains(&auth.signature), "{debug}");
        assert!(debug.contains("AKIAIOSFODNN7EXAMPLE"), "{debug}");
    }
}
