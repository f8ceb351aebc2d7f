//! Node.js addon of object-storage-proxy: an S3-compatible reverse proxy
//! whose data plane is pingora and whose control plane is JavaScript.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// Under `cargo test` napi-derive registers nothing, so the exported items look unused.
#![cfg_attr(test, allow(dead_code))]

mod allocator;
mod bindings;
mod logging;
mod proxy;
