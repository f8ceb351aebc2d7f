//! The one place where pingora errors become S3 errors and log lines.

use osp_core::s3::S3Error;
use pingora::{Error, ErrorSource, ErrorType};

/// Maps a pingora error to the S3 error answered to the client, or None when
/// the client connection itself failed and nobody can be answered.
pub fn s3_error_for(error: &Error) -> Option<S3Error> {
    let message = error.to_string();
    match error.etype() {
        ErrorType::ConnectTimedout
        | ErrorType::ConnectRefused
        | ErrorType::ConnectNoRoute
        | ErrorType::ConnectError
        | ErrorType::BindError
        | ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::HandshakeError => Some(S3Error::bad_gateway(format!(
            "could not connect to the backend: {message}"
        ))),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout
            if error.esource() == &ErrorSource::Upstream =>
        {
            Some(S3Error::new(
                504,
                "GatewayTimeout",
                format!("the backend did not answer in time: {message}"),
            ))
        }
        _ => match error.esource() {
            ErrorSource::Upstream => Some(S3Error::bad_gateway(format!(
                "the backend connection failed: {message}"
            ))),
            ErrorSource::Downstream => match error.etype() {
                ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => None,
                _ => Some(S3Error::new(
                    400,
                    "BadRequest",
                    format!("the request could not be read: {message}"),
                )),
            },
            ErrorSource::Internal | ErrorSource::Unset => {
                Some(S3Error::internal("the proxy failed to handle the request"))
            }
        },
    }
}

/// Logs a request that could not be proxied: client-caused failures at info,
/// backend and proxy failures at warn and error, with the ids involved.
pub fn log_failure(request_id: &str, bucket: Option<&str>, s3_error: &S3Error, error: &Error) {
    let bucket = bucket.unwrap_or("-");
    match s3_error.status {
        400..=499 => {
            tracing::info!(request_id, bucket, code = s3_error.code, message = %s3_error.message, "request rejected")
        }
        502..=504 => {
            tracing::warn!(request_id, bucket, code = s3_error.code, %error, "backend request failed")
        }
        _ => tracing::error!(request_id, bucket, code = s3_error.code, %error, "request failed"),
    }
}
