//! S3 request routing, operation names, errors and the responses the proxy
//! writes itself.

pub mod error;
pub mod list_buckets;
pub mod operation;
pub mod request;

pub use error::S3Error;
pub use operation::operation_name;
pub use request::{resolve_target, S3Target};
