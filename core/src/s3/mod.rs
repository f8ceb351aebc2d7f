//! S3 request routing, operation names, errors and the responses the proxy
//! writes itself.

pub mod delete;
pub mod error;
pub mod list_buckets;
pub mod operation;
pub mod request;

pub use error::S3Error;
pub use operation::operation_name;
pub use request::{parse_copy_source, resolve_target, CopySource, S3Target};
