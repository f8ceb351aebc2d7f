//! Authorizing DeleteObjects by the keys in its body.
//!
//! A validator receives every key a DeleteObjects request deletes, so the body
//! (at most `MAX_DELETE_OBJECTS_BODY`) is read before the validator decides.
//! A body that fits pingora's retry buffer is read up front, so a denied
//! request never reaches the backend; pingora then replays the buffered body
//! to the backend. A larger body streams into `PendingDelete` and the decision
//! is made when it is complete, before any of it is forwarded: a denial aborts
//! the backend request with no body bytes sent, so nothing is deleted.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use osp_core::s3::delete::{parse_delete_keys, MAX_DELETE_OBJECTS_BODY};
use osp_core::s3::S3Error;
use pingora::proxy::Session;

use super::auth::Rejection;
use super::decisions::Decisions;
use super::hooks::RequestInfo;

/// Max size of a body read before the backend is contacted. It is the size of
/// pingora's retry buffer (64 KiB in pingora 0.9.1), which replays the body
/// to the backend afterwards.
pub const READ_AHEAD_LIMIT: usize = 64 * 1024;

/// Reads a DeleteObjects body of known small size before routing, so the
/// validator can see its keys and its MD5 can be added. Returns None when the
/// body is larger or of unknown size; it then streams as usual.
pub async fn read_ahead(session: &mut Session) -> Result<Option<Bytes>, S3Error> {
    let declared = session
        .req_header()
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_none_or(|length| length > READ_AHEAD_LIMIT) {
        return Ok(None);
    }
    let downstream = session.as_downstream_mut();
    downstream.enable_retry_buffering();
    let mut body = BytesMut::new();
    loop {
        let piece = downstream.read_request_body().await.map_err(|error| {
            S3Error::incomplete_body(format!("could not read the request body: {error}"))
        })?;
        let Some(piece) = piece else { break };
        if body.len() + piece.len() > READ_AHEAD_LIMIT {
            return Err(S3Error::incomplete_body(
                "the request body is longer than its Content-Length",
            ));
        }
        body.extend_from_slice(&piece);
    }
    Ok(Some(body.freeze()))
}

/// A DeleteObjects request whose body is collected while it streams and
/// authorized once complete.
pub struct PendingDelete {
    pub token: String,
    pub info: RequestInfo,
    pub ttl: Duration,
    body: BytesMut,
}

impl PendingDelete {
    pub fn new(token: String, info: RequestInfo, ttl: Duration) -> Self {
        Self {
            token,
            info,
            ttl,
            body: BytesMut::new(),
        }
    }

    /// Collects the body and forwards nothing until the end, where the
    /// validator decides on the listed keys; on approval the whole body is
    /// forwarded at once.
    pub async fn process(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        decisions: &Decisions,
    ) -> Result<(), Rejection> {
        if let Some(piece) = body.take() {
            if self.body.len() + piece.len() > MAX_DELETE_OBJECTS_BODY {
                return Err(S3Error::entity_too_large(format!(
                    "a DeleteObjects body may be at most {MAX_DELETE_OBJECTS_BODY} bytes"
                ))
                .into());
            }
            self.body.extend_from_slice(&piece);
        }
        if !end_of_stream {
            *body = Some(Bytes::new());
            return Ok(());
        }
        let complete = std::mem::take(&mut self.body).freeze();
        self.info.delete_keys = Some(parse_delete_keys(&complete)?);
        if !decisions.allowed(&self.token, &self.info, self.ttl).await? {
            return Err(S3Error::access_denied("Access Denied").into());
        }
        *body = Some(complete);
        Ok(())
    }

    /// Starts over when pingora replays the body for a retried connection.
    pub fn restart(&mut self) {
        self.body.clear();
    }
}
