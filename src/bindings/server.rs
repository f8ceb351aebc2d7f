//! `startServer` and the `ProxyServer` handle returned to JavaScript.

use std::sync::Arc;

use napi::bindgen_prelude::{Function, JsObjectValue, Object, PromiseRaw};
use napi::threadsafe_function::ThreadsafeFunction;
use napi::{Env, JsValue, Status};
use napi_derive::napi;
use tokio::sync::Mutex;

use super::config::read_config;
use crate::logging;
use crate::proxy::{RunningServer, StartError};

/// A referenced threadsafe function: while one exists, Node's event loop
/// stays alive, as it does for a listening `net.Server`.
type KeepAlive = ThreadsafeFunction<(), (), (), Status, false, false>;

/// A running proxy server.
#[napi]
pub struct ProxyServer {
    server: Arc<Mutex<RunningServer>>,
    http_port: Option<u16>,
    https_port: Option<u16>,
    keep_alive: Option<KeepAlive>,
}

#[napi]
impl ProxyServer {
    /// Returns the port the HTTP listener is bound to (the real one when 0 was configured), or null.
    #[napi(getter)]
    pub fn http_port(&self) -> Option<u32> {
        self.http_port.map(u32::from)
    }

    /// Returns the port the HTTPS listener is bound to (the real one when 0 was configured), or null.
    #[napi(getter)]
    pub fn https_port(&self) -> Option<u32> {
        self.https_port.map(u32::from)
    }

    /// Stops accepting connections, lets in-flight requests finish within
    /// `shutdownTimeoutMs`, and frees the ports. Afterwards Node can exit.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close<'env>(&mut self, env: &'env Env) -> napi::Result<PromiseRaw<'env, ()>> {
        // The pending promise keeps Node alive until the server has stopped.
        self.keep_alive = None;
        let server = self.server.clone();
        env.spawn_future(async move {
            server.lock().await.close().await;
            Ok(())
        })
    }
}

/// Starts a proxy server. Resolves once it is listening; rejects with an
/// `Error` whose `code` is `ERR_INVALID_CONFIG`, `ERR_INVALID_TLS`,
/// `ERR_ADDRESS_IN_USE` or `ERR_LISTEN` when the config is invalid, a
/// certificate, key or CA cannot be used, or a port cannot be bound.
#[napi(
    ts_args_type = "config: ProxyServerConfig",
    ts_return_type = "Promise<ProxyServer>"
)]
pub fn start_server<'env>(
    env: &'env Env,
    config: Object<'env>,
) -> napi::Result<PromiseRaw<'env, ProxyServer>> {
    logging::init();
    crate::allocator::configure();
    let invalid = |error: osp_core::config::ConfigError| StartError {
        code: "ERR_INVALID_CONFIG",
        message: error.to_string(),
    };
    let validated =
        read_config(&config).and_then(|(input, functions)| Ok((input.validate()?, functions)));
    let started = match validated {
        Ok((config, functions)) => {
            let hooks = functions.into_hooks(config.callback_timeout)?;
            RunningServer::start(config, hooks)
        }
        Err(error) => Err(invalid(error)),
    };
    match started {
        Ok(server) => {
            let keep_alive = keep_alive(env)?;
            let handle = ProxyServer {
                http_port: server.http_port,
                https_port: server.https_port,
                server: Arc::new(Mutex::new(server)),
                keep_alive: Some(keep_alive),
            };
            env.spawn_future(async move { Ok(handle) })
        }
        Err(error) => rejected(env, error),
    }
}

fn keep_alive(env: &Env) -> napi::Result<KeepAlive> {
    let noop: Function<(), ()> = env.create_function_from_closure("keepAlive", |_| Ok(()))?;
    noop.build_threadsafe_function().build()
}

/// Returns a promise rejected with an `Error` carrying `code`.
fn rejected<'env, T: napi::bindgen_prelude::ToNapiValue + Send + 'static>(
    env: &'env Env,
    error: StartError,
) -> napi::Result<PromiseRaw<'env, T>> {
    env.spawn_future_with_callback(async { Ok(()) }, move |env, ()| -> napi::Result<T> {
        let mut object =
            env.create_error(napi::Error::new(Status::GenericFailure, error.message))?;
        object.set_named_property("code", error.code)?;
        Err(napi::Error::from(object.to_unknown()))
    })
}
