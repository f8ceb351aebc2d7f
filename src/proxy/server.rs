//! A running proxy server: its listening sockets (HTTP, HTTPS or both), its
//! own tokio runtime with the configured number of worker threads, and a
//! graceful shutdown.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::IntoRawFd;
use std::sync::Arc;
use std::time::Duration;

use osp_core::config::ProxyConfig;
use parking_lot::Mutex;
use pingora::listeners::{L4BufferSettings, ListenerConfig};
use pingora::proxy::http_proxy_service;
use pingora::server::configuration::ServerConf;
use pingora::server::Fds;
use pingora::services::Service;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::hooks::Hooks;
use super::service::{ProxyState, S3Proxy};
use super::tls::{backend_trust, listener_settings, BackendTrust};

/// How long `close()` waits for the accept loops to stop once the in-flight
/// requests are done (or the grace period is over).
const LISTENER_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// Read buffer of each client connection, in bytes: room for a request head
/// with large headers in one read.
const CLIENT_READ_BUFFER: usize = 16 * 1024;

/// Why a server could not start.
#[derive(Debug)]
pub struct StartError {
    /// Stable code for JavaScript, such as `ERR_ADDRESS_IN_USE`.
    pub code: &'static str,
    pub message: String,
}

/// A proxy that is accepting connections.
pub struct RunningServer {
    runtime: Option<Runtime>,
    shutdown: watch::Sender<bool>,
    service_task: Option<JoinHandle<()>>,
    state: Arc<ProxyState>,
    pub http_port: Option<u16>,
    pub https_port: Option<u16>,
}

impl RunningServer {
    /// Binds the listeners and starts serving. TLS material is parsed first,
    /// then binding happens here, before anything is spawned, so a bad
    /// certificate or a busy port fails at once and nothing stays bound.
    pub fn start(config: ProxyConfig, hooks: Hooks) -> Result<Self, StartError> {
        let tls_settings = config.tls.as_ref().map(listener_settings).transpose()?;
        let server_trust = config
            .ca_cert
            .as_ref()
            .map(|pem| backend_trust(pem, "caCert"))
            .transpose()?;
        let trust = backend_trust_by_bucket(&config, server_trust.as_ref())?;

        // The sockets stay owned until every bind has succeeded: a raw fd
        // handed to `Fds` is never closed, so a later failure would leak it.
        let mut http_listener = None;
        if let Some(port) = config.http_port {
            http_listener = Some(bind(SocketAddr::new(config.listen_address, port))?);
        }
        let mut https_listener = None;
        if let Some(port) = config.https_port {
            https_listener = Some(bind(SocketAddr::new(config.listen_address, port))?);
        }
        let http_port = http_listener.as_ref().map(|(address, _)| address.port());
        let https_port = https_listener.as_ref().map(|(address, _)| address.port());

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads)
            .thread_name("osp-worker")
            .enable_all()
            .build()
            .map_err(|error| StartError {
                code: "ERR_RUNTIME",
                message: format!("could not start the worker threads: {error}"),
            })?;

        let verify = config.verify;
        let mut state = ProxyState::new(config, hooks);
        state.backend_trust = trust;
        state.iam.trust = server_trust;
        let state = Arc::new(state);
        let server_conf = Arc::new(ServerConf::default());
        let mut service = http_proxy_service(
            &server_conf,
            S3Proxy {
                state: state.clone(),
            },
        );
        // pingora finds each listener's socket in `Fds` by its address string.
        let mut fds = Fds::new();
        let mut addresses = Vec::new();
        if let Some((address, listener)) = http_listener {
            let key = address.to_string();
            fds.add(key.clone(), listener.into_raw_fd());
            service.add_listener(ListenerConfig::tcp(&key).l4_buffer(client_buffers()));
            addresses.push(key);
        }
        if let (Some((address, listener)), Some(settings)) = (https_listener, tls_settings) {
            let key = address.to_string();
            fds.add(key.clone(), listener.into_raw_fd());
            service.add_listener(
                ListenerConfig::tcp(&key)
                    .tls(settings)
                    .l4_buffer(client_buffers()),
            );
            addresses.push(key);
        }
        let (shutdown, shutdown_watch) = watch::channel(false);
        let fds = Arc::new(Mutex::new(fds));
        let service_task = runtime.spawn(async move {
            Service::start_service(&mut service, Some(fds), shutdown_watch, 1).await;
        });
        if !verify {
            tracing::warn!("backend TLS certificates are not verified because verify is false");
        }
        tracing::info!(?http_port, ?https_port, listen = ?addresses, "proxy server started");
        Ok(Self {
            runtime: Some(runtime),
            shutdown,
            service_task: Some(service_task),
            state,
            http_port,
            https_port,
        })
    }

    /// Stops accepting connections, waits up to the configured grace period
    /// for in-flight requests, then stops the worker threads, which closes
    /// every remaining connection. Safe to call more than once.
    pub async fn close(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let _ = self.shutdown.send(true);
        let grace = self.state.config.shutdown_timeout;
        let in_flight = self.state.in_flight.clone();
        let drained = tokio::time::timeout(grace, in_flight.wait_idle())
            .await
            .is_ok();
        if let Some(task) = self.service_task.take() {
            let _ = tokio::time::timeout(LISTENER_STOP_TIMEOUT, task).await;
        }
        runtime.shutdown_background();
        if drained {
            tracing::info!(http_port = ?self.http_port, https_port = ?self.https_port, "proxy server stopped");
        } else {
            tracing::warn!(
                http_port = ?self.http_port,
                https_port = ?self.https_port,
                unfinished = in_flight.count(),
                grace_ms = grace.as_millis() as u64,
                "proxy server stopped with requests still in flight after the grace period"
            );
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            let _ = self.shutdown.send(true);
            runtime.shutdown_background();
        }
    }
}

/// Parses the trust roots of every bucket that has them: its own `caCert`,
/// else the server's. Buckets without either use the platform store.
fn backend_trust_by_bucket(
    config: &ProxyConfig,
    server_trust: Option<&BackendTrust>,
) -> Result<HashMap<String, BackendTrust>, StartError> {
    let mut trust = HashMap::new();
    for (name, bucket) in &config.buckets {
        let bucket_trust = match &bucket.ca_cert {
            Some(pem) => Some(backend_trust(pem, &format!("cosMap.{name}.caCert"))?),
            None => server_trust.cloned(),
        };
        if let Some(bucket_trust) = bucket_trust {
            trust.insert(name.clone(), bucket_trust);
        }
    }
    Ok(trust)
}

/// Binds a non-blocking listening socket; pingora's accept loop hangs a
/// worker on a blocking one.
/// Returns the buffer sizes of client connections. pingora reserves a
/// 64 KiB read buffer per connection by default, which only request heads
/// go through: body reads of 64 KiB bypass any buffer that is not larger. A
/// smaller buffer keeps idle and streaming connections cheap.
fn client_buffers() -> L4BufferSettings {
    L4BufferSettings::default().read(CLIENT_READ_BUFFER)
}

fn bind(address: SocketAddr) -> Result<(SocketAddr, TcpListener), StartError> {
    let listener = TcpListener::bind(address).map_err(|error| bind_error(address, &error))?;
    listener
        .set_nonblocking(true)
        .map_err(|error| bind_error(address, &error))?;
    let local = listener
        .local_addr()
        .map_err(|error| bind_error(address, &error))?;
    Ok((local, listener))
}

fn bind_error(address: SocketAddr, error: &io::Error) -> StartError {
    match error.kind() {
        io::ErrorKind::AddrInUse => StartError {
            code: "ERR_ADDRESS_IN_USE",
            message: format!("address {address} is already in use; stop the other server or choose another port (0 picks a free one)"),
        },
        io::ErrorKind::PermissionDenied => StartError {
            code: "ERR_LISTEN",
            message: format!("permission denied listening on {address}; ports below 1024 need privileges, choose a higher port"),
        },
        io::ErrorKind::AddrNotAvailable => StartError {
            code: "ERR_LISTEN",
            message: format!("cannot listen on {address}: the address is not assigned to this machine; check listenAddress"),
        },
        _ => StartError {
            code: "ERR_LISTEN",
            message: format!("cannot listen on {address}: {error}"),
        },
    }
}
