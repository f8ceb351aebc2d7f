//! The `#[napi]` surface: JavaScript values in, core config and server
//! handles out.

mod config;
mod hooks;
mod server;
mod types;
