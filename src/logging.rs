//! The process-wide `tracing` subscriber: stderr, filtered by `RUST_LOG`.

use std::io::IsTerminal;
use std::sync::Once;

use tracing_subscriber::EnvFilter;

/// Filter used when `RUST_LOG` is unset: lifecycle and errors of this
/// package, warnings of its dependencies, and no per-request access events
/// (enable them with `object_storage_proxy::access=info`).
const DEFAULT_FILTER: &str =
    "warn,rustls=error,object_storage_proxy=info,osp_core=info,object_storage_proxy::access=off";

/// pingora writes whole request headers, Authorization included, to its
/// debug and trace events; these directives keep pingora at warn, so those
/// events stay out of the log even when `RUST_LOG` asks for debug everywhere.
const REDACTING_DIRECTIVES: [&str; 3] = ["pingora_proxy=warn", "pingora_core=warn", "pingora=warn"];

/// Installs the subscriber once per process. When the host process already
/// installed a global subscriber, that one is kept.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let mut filter =
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
        for directive in REDACTING_DIRECTIVES {
            if let Ok(directive) = directive.parse() {
                filter = filter.add_directive(directive);
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
            .try_init();
    });
}
