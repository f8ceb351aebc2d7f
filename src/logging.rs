//! The process-wide `tracing` subscriber: stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal;
use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// Filter used when `RUST_LOG` is unset: lifecycle and errors of this
/// package, warnings of its dependencies, and no per-request access events
/// (enable them with `object_storage_proxy::access=info`).
const DEFAULT_FILTER: &str =
    "warn,object_storage_proxy=info,osp_core=info,object_storage_proxy::access=off";

/// Installs the subscriber once per process. When the host process already
/// installed a global subscriber, that one is kept.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
    });
}
