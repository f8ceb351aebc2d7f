//! TypeScript declarations of the config objects `startServer` accepts.
//! `config.rs` reads the objects property by property, so it can reject
//! unknown keys; these structs exist for the generated `index.d.ts`.

#![allow(dead_code)]

use std::collections::HashMap;

use napi_derive::napi;

/// Configuration of one proxy server.
#[napi(object)]
pub struct ProxyServerConfig {
    /** Bucket name as clients address it -> its backend. */
    pub cos_map: HashMap<String, BucketConfig>,
    /** Client keys accepted by the proxy; required unless skipSignatureValidation is set. */
    pub hmac_keystore: Option<Vec<HmacKey>>,
    /** HTTP listener port; 0 picks a free port, reported as `ProxyServer.httpPort`. Set httpPort, httpsPort or both. */
    pub http_port: Option<u32>,
    /**
     * HTTPS listener port (HTTP/2 and HTTP/1.1 through ALPN); 0 picks a free port, reported as
     * `ProxyServer.httpsPort`. Needs `tls`, or the files named by the environment variables
     * TLS_CERT_PATH and TLS_KEY_PATH.
     */
    pub https_port: Option<u32>,
    /** Certificate chain and private key of the HTTPS listener, as PEM; kept in memory. Requires httpsPort. */
    pub tls: Option<TlsConfig>,
    /**
     * PEM CA certificates that backend TLS certificates are verified against, instead of the
     * platform trust store. A bucket's own caCert takes precedence.
     */
    #[napi(ts_type = "string | Buffer")]
    pub ca_cert: Option<String>,
    /** IP address to listen on, default "0.0.0.0". */
    pub listen_address: Option<String>,
    /** The proxy's own host names: a Host of "<bucket>.<domain>" is a virtual-host style request. */
    pub virtual_host_domains: Option<Vec<String>>,
    /** How long close() lets in-flight requests finish, in milliseconds; default 10000. */
    pub shutdown_timeout_ms: Option<u32>,
    /** Worker threads of the proxy, default 1. */
    pub threads: Option<u32>,
    /** Verify backend TLS certificates, default true. */
    pub verify: Option<bool>,
    /** Accept requests without checking their signatures; for development only. Default false. */
    pub skip_signature_validation: Option<bool>,
    /** Accept Signature Version 2 from clients, default true. */
    pub allow_sig_v2: Option<bool>,
    /**
     * Decides whether the caller may make this request. `token` is the access key the
     * client signed with. Decisions are cached for the bucket's `ttl`.
     */
    #[napi(
        ts_type = "(token: string, bucket: string, request: RequestInfo) => boolean | Promise<boolean>"
    )]
    pub validator: Option<bool>,
    /**
     * Returns the backend credentials for a bucket that has no accessKey/secretKey:
     * `{ accessKey, secretKey }`, `{ apiKey }`, an IBM Cloud API key string, or the JSON
     * string `{"access_key": ..., "secret_key": ...}`. Cached per token and bucket for the bucket's `ttl`.
     */
    #[napi(
        ts_type = "(token: string, bucket: string) => string | { accessKey: string; secretKey: string } | { apiKey: string } | Promise<string | { accessKey: string; secretKey: string } | { apiKey: string }>"
    )]
    pub bucket_creds_fetcher: Option<bool>,
    /**
     * Returns the secret of a client access key that is not in hmacKeystore, or null when
     * the key is unknown. Secrets are cached for `secretCacheTtl` seconds.
     */
    #[napi(
        ts_type = "(accessKey: string) => string | null | undefined | Promise<string | null | undefined>"
    )]
    pub hmac_fetcher: Option<bool>,
    /** Max time one callback call may take, in milliseconds, default 5000. */
    pub callback_timeout_ms: Option<u32>,
    /** Seconds a secret returned by hmacFetcher stays cached, default 300; 0 disables caching. */
    pub secret_cache_ttl: Option<f64>,
    /** IBM Cloud IAM base URL where API keys are exchanged for tokens, default "https://iam.cloud.ibm.com". */
    pub iam_endpoint: Option<String>,
}

/// The backend of one bucket.
#[napi(object)]
pub struct BucketConfig {
    /** Backend host name, without scheme or port. */
    pub host: String,
    /** Backend port, default 443. */
    pub port: Option<u32>,
    /** Region the backend request is signed for, default "us-east-1". */
    pub region: Option<String>,
    /** Use HTTPS towards the backend; default true when the port is 443. */
    pub tls: Option<bool>,
    /** Addressing towards the backend, default 'virtual' (bucket.host/key). */
    #[napi(ts_type = "'virtual' | 'path'")]
    pub addressing_style: Option<String>,
    /** Access key id the proxy signs backend requests with; omit to use bucketCredsFetcher. */
    pub access_key: Option<String>,
    /** Secret access key the proxy signs backend requests with. */
    pub secret_key: Option<String>,
    /** IBM Cloud API key, exchanged at IAM for a bearer token; instead of accessKey/secretKey. */
    pub api_key: Option<String>,
    /** Seconds that credentials and decisions stay cached, default 300; 0 disables caching. */
    pub ttl: Option<f64>,
    /** PEM CA certificates that this backend's TLS certificate is verified against, instead of the server's caCert or the platform trust store. */
    #[napi(ts_type = "string | Buffer")]
    pub ca_cert: Option<String>,
    /**
     * The form in which aws-chunked (streaming) uploads reach this backend. 'decode' (default)
     * sends the verified bytes as a plain body with the decoded length, which every backend takes.
     * 'passthrough' keeps the client's streaming mode: the body is framed again in 64 KiB chunks,
     * re-signed with the backend's key, and the trailer checksum is passed on, for backends
     * that store checksums.
     */
    #[napi(ts_type = "'decode' | 'passthrough'")]
    pub streaming_uploads: Option<String>,
    /** Add Content-MD5 to DeleteObjects requests that carry none, for backends that require it. */
    pub add_content_md5: Option<bool>,
}

/// The HTTPS listener's certificate and key.
#[napi(object)]
pub struct TlsConfig {
    /** Certificate chain as PEM: the server certificate first, then any intermediates. */
    #[napi(ts_type = "string | Buffer")]
    pub cert: String,
    /** Private key as PEM (PKCS#8, PKCS#1 or SEC1), matching the certificate. */
    #[napi(ts_type = "string | Buffer")]
    pub key: String,
}

/// A client key pair accepted by the proxy.
#[napi(object)]
pub struct HmacKey {
    pub access_key: String,
    pub secret_key: String,
}
