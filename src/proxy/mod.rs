//! The data plane: pingora proxy phases, body checks, routing and the server
//! lifecycle. Free of Node: the bindings drive it through `RunningServer`.

mod auth;
mod body;
mod ctx;
mod errors;
mod request;
mod route;
pub mod server;
pub mod service;
mod upstream;

pub use server::{RunningServer, StartError};
