//! The parts of object-storage-proxy that need neither Node nor pingora:
//! SigV4 verification and signing, SigV2 verification, aws-chunked decoding,
//! checksums, S3 request parsing, S3 errors and configuration validation,
//! including the TLS material it carries.

pub mod checksum;
pub mod chunked;
pub mod config;
pub mod s3;
pub mod secret;
pub mod sigv2;
pub mod sigv4;
pub mod tls;
