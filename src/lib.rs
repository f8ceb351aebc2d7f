//! Node.js addon of object-storage-proxy: an S3-compatible reverse proxy
//! whose data plane is pingora and whose control plane is JavaScript.

#![deny(clippy::unwrap_used)]

mod bindings;
mod logging;
mod proxy;
