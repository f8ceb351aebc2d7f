//! A bare pingora reverse proxy: the same pingora version, features and
//! allocator as the addon, with none of its S3 work (no parsing, signature
//! checks, re-signing or body checks). The benchmark runs it as a reference,
//! so the cost of pingora itself shows next to the cost of the proxy.
//!
//! Usage: pingora-floor <upstream host:port> <listen host:port> <threads>

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Forwards every request unchanged to one upstream over plain HTTP.
struct Passthrough {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Passthrough {
    type CTX = ();

    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, upstream, listen, threads] = args.as_slice() else {
        eprintln!("usage: pingora-floor <upstream host:port> <listen host:port> <threads>");
        std::process::exit(2);
    };
    let Ok(threads) = threads.parse::<usize>() else {
        eprintln!("pingora-floor: threads '{threads}' is not a number");
        std::process::exit(2);
    };
    // SIGTERM stops it at once: the benchmark has finished its loads by then.
    let conf = ServerConf {
        threads,
        grace_period_seconds: Some(0),
        graceful_shutdown_timeout_seconds: Some(1),
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut service = http_proxy_service(
        &server.configuration,
        Passthrough {
            upstream: upstream.clone(),
        },
    );
    service.add_tcp(listen);
    server.add_service(service);
    server.run_forever();
}
