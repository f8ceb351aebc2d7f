//! The data plane: pingora proxy phases, body checks, routing and the server
//! lifecycle. Free of Node: the bindings drive it through `RunningServer`.

mod auth;
mod body;
mod ctx;
mod decisions;
mod delete_objects;
mod errors;
pub mod hooks;
mod iam;
mod request;
mod request_info;
mod route;
pub mod server;
pub mod service;
mod tls;
mod upstream;

pub use server::{RunningServer, StartError};
