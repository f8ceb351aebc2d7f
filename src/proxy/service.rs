//! The pingora `ProxyHttp` implementation: each phase is a short delegate
//! around the per-request context.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::Method;
use osp_core::checksum::content_md5;
use osp_core::config::{BucketConfig, ProxyConfig};
use osp_core::s3::delete::parse_delete_keys;
use osp_core::s3::list_buckets::list_buckets_xml;
use osp_core::s3::S3Error;
use osp_core::sigv4::RequestView;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::*;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::upstreams::peer::HttpPeer;

use super::auth::{authenticate, Rejection};
use super::ctx::{InFlight, RequestCtx, RequestIds};
use super::decisions::Decisions;
use super::delete_objects::{self, PendingDelete};
use super::errors::{log_failure, s3_error_for};
use super::hooks::{BackendCredentials, Hooks, RequestInfo};
use super::iam::IamClient;
use super::request::{ParsedRequest, RequestPlan};
use super::request_info::{request_info, with_headers, RequestInfoInput};
use super::route::{backend_peer, BackendAuth, Resolver, Route};
use super::tls::BackendTrust;
use super::upstream::rewrite_for_backend;

/// Target of the per-request access events; enable them with
/// `RUST_LOG=object_storage_proxy::access=info`.
pub const ACCESS_LOG_TARGET: &str = "object_storage_proxy::access";

/// Everything the proxy phases share across requests of one server.
pub struct ProxyState {
    pub config: ProxyConfig,
    pub buckets: HashMap<String, Arc<BucketConfig>>,
    pub decisions: Decisions,
    pub iam: IamClient,
    pub resolver: Resolver,
    pub request_ids: RequestIds,
    pub in_flight: Arc<InFlight>,
    /// Trust roots per bucket name, for buckets with a `caCert` of their own
    /// or a server-wide one; the others use the platform store.
    pub backend_trust: HashMap<String, BackendTrust>,
}

impl ProxyState {
    pub fn new(config: ProxyConfig, hooks: Hooks) -> Self {
        let buckets = config
            .buckets
            .iter()
            .map(|(name, bucket)| (name.clone(), Arc::new(bucket.clone())))
            .collect();
        Self {
            decisions: Decisions::new(hooks, config.secret_cache_ttl),
            iam: IamClient::new(config.iam_endpoint.clone(), config.verify),
            config,
            buckets,
            resolver: Resolver::new(),
            request_ids: RequestIds::new(),
            in_flight: Arc::new(InFlight::default()),
            backend_trust: HashMap::new(),
        }
    }
}

/// The S3 proxy that pingora drives.
pub struct S3Proxy {
    pub state: Arc<ProxyState>,
}

/// The outcome of `request_filter`.
enum Decision {
    /// Forward the request to the route's backend.
    Forward,
    /// The proxy wrote the response itself.
    Answered,
}

impl S3Proxy {
    /// Authenticates, routes and authorizes the request, in that order: the
    /// signature is checked before the bucket is looked up, so an
    /// unauthenticated caller learns nothing about the bucket map.
    async fn decide(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Decision, Rejection> {
        let state = &self.state;
        let header = session.req_header();
        let parsed = ParsedRequest::from_header(header)?;
        let view = RequestView {
            method: header.method.as_str(),
            raw_path: &parsed.raw_path,
            raw_query: parsed.raw_query.as_deref(),
            headers: &header.headers,
            authority: header.uri.authority().map(|authority| authority.as_str()),
        };
        let skip = state.config.skip_signature_validation;
        let auth = authenticate(
            &view,
            &state.config.keystore,
            &state.decisions,
            skip,
            state.config.allow_sig_v2,
            &state.config.virtual_host_domains,
        )
        .await?;
        ctx.access_key = auth.access_key.clone();
        let token = auth.access_key.clone().unwrap_or_default();

        let target = parsed.target(header, &state.config.virtual_host_domains)?;
        ctx.operation = parsed.operation(header, &target);
        let Some(bucket_name) = target.bucket.clone() else {
            return self.answer_service_request(session, ctx, &token).await;
        };
        ctx.bucket = Some(bucket_name.clone());
        let bucket = state
            .buckets
            .get(&bucket_name)
            .cloned()
            .ok_or_else(|| S3Error::no_such_bucket(&bucket_name))?;

        let plan = RequestPlan::new(header, &auth)?;
        let mut info = request_info(RequestInfoInput {
            header,
            raw_query: parsed.raw_query.as_deref(),
            bucket: &bucket_name,
            target: &target,
            operation: &ctx.operation,
            source_ip: source_ip(session),
            delete_keys: None,
            with_query: state.decisions.has_validator(),
        })?;
        if let Some(source) = &info.copy_source {
            self.check_copy_source(&bucket, &source.bucket)?;
        }

        // The keys of a DeleteObjects request are in its body: a small body is
        // read now (after 100 Continue, if the client waits for it), a larger
        // one is authorized when it has streamed in. The same read lets the
        // proxy add a Content-MD5 header for backends that require one.
        let mut continue_sent = false;
        let mut decided_later = false;
        let wants_md5 =
            bucket.add_content_md5 && !session.req_header().headers.contains_key("content-md5");
        let is_delete = ctx.operation == "DeleteObjects";
        if is_delete && (state.decisions.has_validator() || wants_md5) {
            if plan.expects_continue {
                send_continue(session).await?;
                continue_sent = true;
            }
            match delete_objects::read_ahead(session).await? {
                Some(body) => {
                    if state.decisions.has_validator() {
                        info.delete_keys = Some(parse_delete_keys(&body)?);
                    }
                    if wants_md5 {
                        ctx.content_md5 = Some(content_md5(&body));
                    }
                }
                None if wants_md5 => {
                    return Err(S3Error::invalid_request(format!(
                        "this bucket adds Content-MD5 to DeleteObjects, which needs a body of at most {} bytes \
                         with Content-Length; send Content-MD5 yourself for larger requests",
                        delete_objects::READ_AHEAD_LIMIT
                    ))
                    .into())
                }
                None => decided_later = true,
            }
        }

        if decided_later {
            let info = with_headers(info, session.req_header());
            ctx.pending_delete = Some(PendingDelete::new(token.clone(), info, bucket.ttl));
        } else if state.decisions.has_validator() {
            let allowed = match state.decisions.cached(&token, &info, bucket.ttl).await {
                Some(allowed) => allowed,
                None => {
                    let info = with_headers(info, session.req_header());
                    state.decisions.allowed(&token, &info, bucket.ttl).await?
                }
            };
            if !allowed {
                return Err(S3Error::access_denied("Access Denied").into());
            }
        }
        let backend_auth = match state
            .decisions
            .credentials(&token, &bucket_name, &bucket)
            .await?
        {
            BackendCredentials::Hmac(credentials) => BackendAuth::Sign(credentials),
            BackendCredentials::ApiKey(api_key) => {
                match state.iam.token(&api_key, &state.resolver).await {
                    Ok(bearer) => BackendAuth::Bearer(bearer),
                    Err(error) => {
                        error.log(&ctx.request_id);
                        return Err(error.to_s3_error().into());
                    }
                }
            }
        };

        ctx.route = Some(Route::new(
            &bucket_name,
            bucket,
            backend_auth,
            &target.encoded_key_path,
            parsed.raw_query.as_deref().unwrap_or(""),
        ));
        ctx.payload = Some(auth.payload);
        ctx.body = plan.body;
        if plan.expects_continue && !continue_sent {
            send_continue(session).await?;
        }
        Ok(Decision::Forward)
    }

    /// A copy reads another object: its bucket must be in the bucket map and
    /// on the same backend, which the proxy signs the copy for.
    fn check_copy_source(&self, bucket: &BucketConfig, source_bucket: &str) -> Result<(), S3Error> {
        let source = self.state.buckets.get(source_bucket).ok_or_else(|| {
            S3Error::access_denied(format!(
                "the copy source bucket '{source_bucket}' is not served by this proxy"
            ))
        })?;
        let same_backend =
            source.host == bucket.host && source.port == bucket.port && source.tls == bucket.tls;
        if !same_backend {
            return Err(S3Error::access_denied(format!(
                "the copy source bucket '{source_bucket}' is on another backend; copy across backends is not possible"
            )));
        }
        Ok(())
    }

    /// Responds to requests without a bucket: `GET /` lists the configured
    /// buckets, or with a validator those it allows this caller to list.
    async fn answer_service_request(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        token: &str,
    ) -> Result<Decision, Rejection> {
        if session.req_header().method != Method::GET {
            return Err(S3Error::new(
                405,
                "MethodNotAllowed",
                "The specified method is not allowed against this resource.",
            )
            .into());
        }
        let source_ip = source_ip(session);
        let mut visible = Vec::new();
        for (name, bucket) in &self.state.config.buckets {
            let info = RequestInfo {
                method: "GET".to_string(),
                bucket: name.clone(),
                key: None,
                operation: "ListBuckets".to_string(),
                query: Vec::new(),
                headers: Vec::new(),
                source_ip: source_ip.clone(),
                copy_source: None,
                delete_keys: None,
            };
            if self
                .state
                .decisions
                .allowed(token, &info, bucket.ttl)
                .await?
            {
                visible.push(name.as_str());
            }
        }
        let owner = ctx.access_key.as_deref().unwrap_or("anonymous");
        let xml = list_buckets_xml(owner, visible);
        write_response(session, ctx, 200, Bytes::from(xml)).await;
        Ok(Decision::Answered)
    }
}

/// Returns the client's IP address as text, or an empty string when unknown.
fn source_ip(session: &Session) -> String {
    session
        .client_addr()
        .and_then(|address| address.as_inet())
        .map(|address| address.ip().to_string())
        .unwrap_or_default()
}

/// Sends `100 Continue` to a client that waits for it before the body.
// NOTE: pingora 0.9.1 drops 1xx responses on HTTP/2 streams, so an HTTP/2
// client that waits for 100 Continue sends its body only when its own wait
// is over (curl: 1 s). The request still succeeds.
async fn send_continue(session: &mut Session) -> Result<(), S3Error> {
    session
        .as_downstream_mut()
        .write_continue_response()
        .await
        .map_err(|error| S3Error::internal(format!("could not send 100 Continue: {error}")))
}

#[async_trait]
impl ProxyHttp for S3Proxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx::new(self.state.request_ids.next_id(), &self.state.in_flight)
    }

    /// Parses, authenticates and routes the request. An error gets its S3 XML
    /// response here, and the request goes no further.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        match self.decide(session, ctx).await {
            Ok(Decision::Forward) => Ok(false),
            Ok(Decision::Answered) => Ok(true),
            Err(rejection) => {
                let error = rejection.into_s3_error(&ctx.request_id);
                write_error(session, ctx, &error).await;
                Ok(true)
            }
        }
    }

    /// Connects to the backend of the request's bucket; nothing else ever
    /// picks a host.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let route = ctx
            .route
            .as_ref()
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "request has no route"))?;
        let address = match self
            .state
            .resolver
            .resolve(&route.host(), route.bucket.port)
            .await
        {
            Ok(address) => address,
            Err(error) => {
                ctx.failure = Some(error);
                return Err(Error::explain(
                    ErrorType::ConnectNoRoute,
                    "backend host not resolved",
                ));
            }
        };
        Ok(Box::new(backend_peer(
            route,
            address,
            self.state.config.verify,
            self.state.backend_trust.get(&route.bucket_name),
        )))
    }

    /// Rewrites the request for the backend and signs it with the bucket's
    /// credentials. Runs once per connection attempt, so the body checks
    /// restart here too: a retry replays the body from its start.
    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream_request: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(body) = ctx.body.as_mut() {
            body.restart();
        }
        if let Some(pending) = ctx.pending_delete.as_mut() {
            pending.restart();
        }
        let (Some(route), Some(payload)) = (ctx.route.as_ref(), ctx.payload.as_ref()) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "request has no route",
            ));
        };
        if let Some(md5) = ctx.content_md5.as_deref() {
            if let Err(error) = upstream_request.insert_header("content-md5", md5) {
                ctx.failure = Some(S3Error::internal(format!(
                    "could not add Content-MD5: {error}"
                )));
                return Err(Error::explain(
                    ErrorType::InternalError,
                    "could not add Content-MD5",
                ));
            }
        }
        match rewrite_for_backend(upstream_request, route, payload) {
            Ok(encoder) => {
                if let (Some(encoder), Some(body)) = (encoder, ctx.body.as_mut()) {
                    body.reframe(encoder);
                }
                Ok(())
            }
            Err(error) => {
                ctx.failure = Some(error);
                Err(Error::explain(
                    ErrorType::InternalError,
                    "could not rewrite the request for the backend",
                ))
            }
        }
    }

    /// Verifies the body while it streams; a failed check aborts the backend
    /// request before its last bytes are sent.
    async fn request_body_filter(
        &self,
        _session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        if let Some(pending) = ctx.pending_delete.as_mut() {
            if let Err(rejection) = pending
                .process(body, end_of_stream, &self.state.decisions)
                .await
            {
                ctx.failure = Some(rejection.into_s3_error(&ctx.request_id));
                return Err(Error::explain(
                    ErrorType::InvalidHTTPHeader,
                    "DeleteObjects was not authorized",
                ));
            }
        }
        if let Some(check) = ctx.body.as_mut() {
            check.process(body, end_of_stream).map_err(|error| {
                tracing::info!(request_id = %ctx.request_id, code = error.code, message = %error.message, "request body rejected");
                ctx.failure = Some(error);
                Error::explain(ErrorType::InvalidHTTPHeader, "request body failed verification")
            })?;
        }
        // pingora hands body-less requests an empty piece at the end, which
        // its upstream writer reports as a write after the end; None is the
        // same end without the noise.
        if end_of_stream && body.as_ref().is_some_and(Bytes::is_empty) {
            *body = None;
        }
        Ok(())
    }

    /// This proxy logs its own failures in `fail_to_proxy`, with the request id.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, _error: &Error) -> bool {
        true
    }

    /// Answers a request that could not be proxied with an S3 XML error.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        error: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let s3_error = match ctx.failure.take() {
            Some(failure) => Some(failure),
            None => s3_error_for(error),
        };
        let Some(s3_error) = s3_error else {
            // The client connection failed; no response can be sent.
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        };
        log_failure(&ctx.request_id, ctx.bucket.as_deref(), &s3_error, error);
        if session.response_written().is_none() {
            write_error(session, ctx, &s3_error).await;
        }
        FailToProxy {
            error_code: s3_error.status,
            can_reuse_downstream: false,
        }
    }

    /// Writes one access event per request.
    async fn logging(&self, session: &mut Session, _error: Option<&Error>, ctx: &mut RequestCtx) {
        if !tracing::enabled!(target: ACCESS_LOG_TARGET, tracing::Level::INFO) {
            return;
        }
        let status = session
            .response_written()
            .map(|response| response.status.as_u16())
            .or(ctx.local_status)
            .unwrap_or(0);
        let header = session.req_header();
        tracing::info!(
            target: ACCESS_LOG_TARGET,
            request_id = %ctx.request_id,
            method = %header.method,
            bucket = ctx.bucket.as_deref().unwrap_or("-"),
            operation = %ctx.operation,
            access_key = ctx.access_key.as_deref().unwrap_or("-"),
            status,
            bytes_in = session.body_bytes_read(),
            bytes_out = session.body_bytes_sent(),
            duration_ms = ctx.started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    }
}

/// Writes an S3 XML error with the request id. HEAD responses carry no body,
/// as HTTP requires. A request whose body was not read yet closes the
/// connection afterwards instead of draining a body that is not needed.
pub async fn write_error(session: &mut Session, ctx: &mut RequestCtx, error: &S3Error) {
    if !session.as_downstream_mut().is_body_done() {
        session.set_keepalive(None);
    }
    let body = Bytes::from(error.to_xml(&ctx.request_id));
    write_response(session, ctx, error.status, body).await;
}

/// Writes a complete response with an XML body (omitted for HEAD).
async fn write_response(session: &mut Session, ctx: &mut RequestCtx, status: u16, body: Bytes) {
    let is_head = session.req_header().method == Method::HEAD;
    let body = if is_head { Bytes::new() } else { body };
    let result = async {
        let mut header = ResponseHeader::build(status, Some(4))?;
        header.insert_header("content-type", "application/xml")?;
        header.insert_header("content-length", body.len().to_string())?;
        header.insert_header("x-amz-request-id", ctx.request_id.as_str())?;
        session
            .write_response_header(Box::new(header), body.is_empty())
            .await?;
        if !body.is_empty() {
            session.write_response_body(Some(body), true).await?;
        }
        Ok::<(), Box<Error>>(())
    }
    .await;
    ctx.local_status = Some(status);
    if let Err(error) = result {
        tracing::debug!(request_id = %ctx.request_id, %error, "could not write the response; the client connection is gone");
    }
}
