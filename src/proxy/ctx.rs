//! The per-request context that the proxy phases share.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use osp_core::s3::S3Error;
use osp_core::sigv4::PayloadMode;
use tokio::sync::Notify;

use super::body::BodyCheck;
use super::delete_objects::PendingDelete;
use super::route::Route;

/// Counts requests in progress so that `close()` can wait for them to finish.
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

impl InFlight {
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Waits until no request is in progress.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Marks one request in progress for as long as it lives.
#[derive(Debug)]
pub struct InFlightGuard(Arc<InFlight>);

impl InFlightGuard {
    pub fn new(in_flight: &Arc<InFlight>) -> Self {
        in_flight.count.fetch_add(1, Ordering::AcqRel);
        Self(in_flight.clone())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// Generates request ids in the style S3 uses: 16 upper-case hex digits,
/// unique within the process and hard to guess across processes.
#[derive(Debug)]
pub struct RequestIds {
    next: AtomicU64,
}

impl RequestIds {
    pub fn new() -> Self {
        let seed = std::collections::hash_map::RandomState::new();
        let start = std::hash::BuildHasher::hash_one(&seed, Instant::now());
        Self {
            next: AtomicU64::new(start),
        }
    }

    pub fn next_id(&self) -> String {
        // A large odd step visits every u64 once before repeating.
        let value = self
            .next
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        format!("{value:016X}")
    }
}

/// State of one request, created before the request is read and dropped when
/// its response is finished.
pub struct RequestCtx {
    pub request_id: String,
    pub started: Instant,
    _in_flight: InFlightGuard,
    /// The access key the client signed with, once parsed.
    pub access_key: Option<String>,
    pub bucket: Option<String>,
    pub operation: String,
    pub route: Option<Route>,
    /// How the client sent the payload, from its signed x-amz-content-sha256.
    pub payload: Option<PayloadMode>,
    pub body: Option<BodyCheck>,
    /// Content-MD5 the proxy adds to the backend request.
    pub content_md5: Option<String>,
    /// A DeleteObjects request authorized once its body has streamed in.
    pub pending_delete: Option<PendingDelete>,
    /// An error found while checking the body, answered by `fail_to_proxy`.
    pub failure: Option<S3Error>,
    /// Status of the response the proxy wrote itself, for the access log.
    pub local_status: Option<u16>,
}

impl RequestCtx {
    pub fn new(request_id: String, in_flight: &Arc<InFlight>) -> Self {
        Self {
            request_id,
            started: Instant::now(),
            _in_flight: InFlightGuard::new(in_flight),
            access_key: None,
            bucket: None,
            operation: String::from("Unknown"),
            route: None,
            payload: None,
            body: None,
            pending_delete: None,
            content_md5: None,
            failure: None,
            local_status: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_counts_in_flight() {
        let in_flight = Arc::new(InFlight::default());
        let first = InFlightGuard::new(&in_flight);
        let second = InFlightGuard::new(&in_flight);
        assert_eq!(in_flight.count(), 2);
        drop(first);
        drop(second);
        assert_eq!(in_flight.count(), 0);
    }

    #[test]
    fn request_ids_are_distinct() {
        let ids = RequestIds::new();
        let a = ids.next_id();
        let b = ids.next_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
