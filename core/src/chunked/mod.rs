//! Streaming decoder for S3 `aws-chunked` request bodies.
//!
//! `x-amz-content-sha256` selects one of these body formats:
//!
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD`: chunks
//!   `hex(size);chunk-signature=<64 hex>\r\n<data>\r\n`, ending with
//!   `0;chunk-signature=<64 hex>\r\n\r\n`. Each chunk signature chains from
//!   the previous one, starting at the request's own signature (the seed).
//! - `STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER`: the same signed chunks, and
//!   after the final chunk the trailer lines (`x-amz-checksum-crc32:<base64>`),
//!   then `x-amz-trailer-signature:<64 hex>` and an empty line.
//! - `STREAMING-UNSIGNED-PAYLOAD-TRAILER`: chunks `hex(size)\r\n<data>\r\n`
//!   without signatures, `0\r\n`, the trailer lines and an empty line.
//!
//! [`ChunkedDecoder`] takes the raw body in pieces of any size as they arrive
//! and returns the decoded payload as zero-copy slices of those pieces, so a
//! chunk is never buffered whole. It verifies chunk signatures, the trailer
//! signature, the trailer checksum and `x-amz-decoded-content-length`.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

use crate::checksum::{Checksum, ChecksumAlgorithm};

mod encode;
pub use encode::{ChunkedEncoder, ENCODED_CHUNK_SIZE};

/// Maximum chunk size that a chunk header may declare. SDK chunk sizes are
/// typically 8 KiB to 8 MiB (an estimate, not a documented limit), so 16 MiB
/// leaves room for other clients. The decoder never buffers a chunk, because
/// data is forwarded as it arrives, so the limit only rejects absurd sizes early.
pub const MAX_CHUNK_SIZE: u64 = 16 * 1024 * 1024;

/// Maximum length of one chunk header line, CRLF included. A signed header
/// (`10000;chunk-signature=<64 hex>\r\n`) is under 100 bytes.
pub const MAX_CHUNK_HEADER_LEN: usize = 4 * 1024;

/// Maximum length of the whole trailer section after the final chunk, every
/// line and CRLF included. One checksum and the trailer signature take under
/// 200 bytes.
pub const MAX_TRAILER_LEN: usize = 16 * 1024;

/// Hex SHA-256 of the empty string, a fixed line of every chunk's string to sign.
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const CHUNK_SIGNATURE_EXTENSION: &str = "chunk-signature";
const TRAILER_SIGNATURE_NAME: &str = "x-amz-trailer-signature";

/// Maximum number of bytes of a rejected value quoted in an error message.
const MAX_QUOTED_LEN: usize = 64;

type HmacSha256 = Hmac<Sha256>;

/// The inputs for checking a signed-chunk chain, taken from the verified
/// request's SigV4 `Authorization` header.
#[derive(Clone)]
pub struct ChunkSigning {
    /// The SigV4 signing key derived for the request's date, region and service.
    pub signing_key: [u8; 32],
    /// The request's `x-amz-date`, e.g. `20130524T000000Z`.
    pub amz_date: String,
    /// The credential scope, e.g. `20130524/us-east-1/s3/aws4_request`.
    pub scope: String,
    /// The hex signature of the request itself, which the first chunk's
    /// signature chains from.
    pub seed_signature: String,
}

impl fmt::Debug for ChunkSigning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkSigning")
            .field("signing_key", &"<redacted>")
            .field("amz_date", &self.amz_date)
            .field("scope", &self.scope)
            .field("seed_signature", &self.seed_signature)
            .finish()
    }
}

/// Settings of one [`ChunkedDecoder`], taken from the request headers.
#[derive(Debug, Clone, Default)]
pub struct DecoderOptions {
    /// `Some` for the two `STREAMING-AWS4-HMAC-SHA256-*` modes, where every
    /// chunk must carry a valid `chunk-signature`.
    pub signing: Option<ChunkSigning>,
    /// True for the two `*-TRAILER` modes.
    pub trailer: bool,
    /// The `x-amz-trailer` header value, naming the one checksum the trailer
    /// must carry. Matched ignoring ASCII case and surrounding whitespace.
    pub expected_trailer: Option<String>,
    /// The `x-amz-decoded-content-length` header value, which the decoded
    /// payload length must equal.
    pub decoded_length: Option<u64>,
}

/// An error that rejects an aws-chunked body. The messages name the offending
/// value and contain no key material, so they can be sent to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// Broken framing: invalid hex size, missing CRLF, invalid chunk
    /// extension or trailer line.
    #[error("malformed aws-chunked body: {0}")]
    Malformed(String),
    #[error("chunk size {0} exceeds the maximum of {MAX_CHUNK_SIZE} bytes")]
    ChunkTooLarge(u64),
    #[error("chunk header line exceeds the maximum of {MAX_CHUNK_HEADER_LEN} bytes")]
    ChunkHeaderTooLong,
    #[error("trailer section exceeds the maximum of {MAX_TRAILER_LEN} bytes")]
    TrailerTooLong,
    /// A chunk of a signed body has no `chunk-signature` extension.
    /// `chunk_index` counts chunks from 0.
    #[error("chunk {chunk_index} (counting from 0) has no chunk-signature")]
    MissingChunkSignature { chunk_index: u64 },
    /// `chunk_index` counts chunks from 0.
    #[error("the chunk-signature of chunk {chunk_index} (counting from 0) does not match")]
    ChunkSignatureMismatch { chunk_index: u64 },
    #[error("the trailer has no x-amz-trailer-signature")]
    MissingTrailerSignature,
    #[error("the x-amz-trailer-signature does not match")]
    TrailerSignatureMismatch,
    /// The checksum trailer named by `x-amz-trailer` never came.
    #[error("the body has no {0} trailer, which x-amz-trailer declared")]
    MissingTrailer(String),
    /// A trailer that `x-amz-trailer` did not declare, or a trailer in a mode
    /// without trailers.
    #[error("unexpected trailer {0}: neither x-amz-trailer nor x-amz-content-sha256 announces it")]
    UnexpectedTrailer(String),
    #[error("the value of trailer {name} is not a base64 {algorithm} checksum")]
    InvalidChecksumValue {
        name: String,
        algorithm: ChecksumAlgorithm,
    },
    #[error("the {algorithm} checksum in the trailer does not match the payload")]
    BadDigest { algorithm: ChecksumAlgorithm },
    /// The body ended before its final chunk or inside the trailer section.
    #[error("the aws-chunked body ended early, after {received} decoded bytes")]
    TruncatedBody { received: u64 },
    /// The final chunk came before `x-amz-decoded-content-length` bytes.
    #[error(
        "the body has {received} decoded bytes but x-amz-decoded-content-length is {expected}"
    )]
    IncompleteBody { expected: u64, received: u64 },
    /// A chunk header declared more data than `x-amz-decoded-content-length`.
    /// `received` counts the bytes decoded so far plus the declared chunk size.
    #[error(
        "the chunks declare at least {received} decoded bytes but x-amz-decoded-content-length is {expected}"
    )]
    DecodedLengthTooLong { expected: u64, received: u64 },
    #[error("invalid x-amz-trailer value {0:?}: expected an x-amz-checksum-* header name")]
    InvalidTrailerName(String),
    /// `x-amz-trailer` was sent with an `x-amz-content-sha256` mode that has no trailer.
    #[error("x-amz-trailer {0:?} was sent, but the x-amz-content-sha256 mode has no trailer")]
    TrailerNotAllowed(String),
    #[error("the seed signature is not 64 hex digits")]
    InvalidSeedSignature,
    #[error("the body continues after the end of the aws-chunked stream")]
    DataAfterEnd,
}

impl ChunkedError {
    /// Returns the S3 error code and HTTP status to send to the client.
    ///
    /// NOTE: S3's documentation names no code for a body longer than
    /// `x-amz-decoded-content-length`. It gets `IncompleteBody`, the code for a
    /// body that does not match its declared length, like a shorter body.
    pub fn s3_code(&self) -> (&'static str, u16) {
        match self {
            ChunkedError::MissingChunkSignature { .. }
            | ChunkedError::ChunkSignatureMismatch { .. }
            | ChunkedError::MissingTrailerSignature
            | ChunkedError::TrailerSignatureMismatch
            | ChunkedError::InvalidSeedSignature => ("SignatureDoesNotMatch", 403),
            ChunkedError::BadDigest { .. } => ("BadDigest", 400),
            ChunkedError::TruncatedBody { .. }
            | ChunkedError::IncompleteBody { .. }
            | ChunkedError::DecodedLengthTooLong { .. }
            | ChunkedError::MissingTrailer(_) => ("IncompleteBody", 400),
            ChunkedError::InvalidChecksumValue { .. } => ("InvalidRequest", 400),
            ChunkedError::Malformed(_)
            | ChunkedError::ChunkTooLarge(_)
            | ChunkedError::ChunkHeaderTooLong
            | ChunkedError::TrailerTooLong
            | ChunkedError::UnexpectedTrailer(_)
            | ChunkedError::InvalidTrailerName(_)
            | ChunkedError::TrailerNotAllowed(_)
            | ChunkedError::DataAfterEnd => ("InvalidArgument", 400),
        }
    }
}

/// The signature chain of a signed body.
#[derive(Clone)]
struct ChunkSigner {
    /// HMAC keyed with the signing key once, cloned for every signature.
    mac: HmacSha256,
    /// `AWS4-HMAC-SHA256-PAYLOAD\n<amz-date>\n<scope>\n`
    chunk_prefix: Vec<u8>,
    /// `AWS4-HMAC-SHA256-TRAILER\n<amz-date>\n<scope>\n`
    trailer_prefix: Vec<u8>,
    /// Lowercase hex of the last verified signature, the seed at first.
    previous_signature: [u8; 64],
    /// SHA-256 of the current chunk's data so far.
    chunk_hasher: Sha256,
    /// Signature that the current chunk's header claims.
    claimed_signature: [u8; 32],
}

impl ChunkSigner {
    fn new(signing: ChunkSigning) -> Result<Self, ChunkedError> {
        let mut previous_signature = [0u8; 64];
        let seed = signing.seed_signature.as_bytes();
        if seed.len() != 64 || !seed.iter().all(u8::is_ascii_hexdigit) {
            return Err(ChunkedError::InvalidSeedSignature);
        }
        previous_signature.copy_from_slice(seed);
        previous_signature.make_ascii_lowercase();

        // HMAC pads a key shorter than the hash block with zero bytes, so the
        // 32-byte key placed in a zeroed 64-byte block is the same key. This
        // form of the constructor cannot fail.
        let mut key_block = [0u8; 64];
        key_block[..32].copy_from_slice(&signing.signing_key);
        let mac = <HmacSha256 as hmac::digest::KeyInit>::new(&key_block.into());

        let scope_lines = format!("{}\n{}\n", signing.amz_date, signing.scope);
        Ok(Self {
            mac,
            chunk_prefix: format!("AWS4-HMAC-SHA256-PAYLOAD\n{scope_lines}").into_bytes(),
            trailer_prefix: format!("AWS4-HMAC-SHA256-TRAILER\n{scope_lines}").into_bytes(),
            previous_signature,
            chunk_hasher: Sha256::new(),
            claimed_signature: [0u8; 32],
        })
    }

    /// Checks the claimed signature of the chunk whose data went through
    /// `chunk_hasher`, and on success makes it the previous signature.
    fn verify_chunk(&mut self, chunk_index: u64) -> Result<(), ChunkedError> {
        let computed = self.sign_chunk();
        if !bool::from(computed.ct_eq(&self.claimed_signature)) {
            return Err(ChunkedError::ChunkSignatureMismatch { chunk_index });
        }
        Ok(())
    }

    /// Signs the chunk whose data went through `chunk_hasher`, makes the
    /// signature the previous one and returns it.
    fn sign_chunk(&mut self) -> [u8; 32] {
        let data_hash: [u8; 32] = self.chunk_hasher.finalize_reset().into();
        let mut mac = self.mac.clone();
        mac.update(&self.chunk_prefix);
        mac.update(&self.previous_signature);
        mac.update(b"\n");
        mac.update(EMPTY_SHA256_HEX.as_bytes());
        mac.update(b"\n");
        mac.update(&hex_array(&data_hash));
        let signature: [u8; 32] = mac.finalize().into_bytes().into();
        self.previous_signature = hex_array(&signature);
        signature
    }

    /// Checks the trailer signature over the SHA-256 of the trailer lines.
    fn verify_trailer(&self, trailer_hash: [u8; 32], claimed: &[u8; 32]) -> bool {
        bool::from(self.sign_trailer(trailer_hash).ct_eq(claimed))
    }

    /// Returns the trailer signature over the SHA-256 of the trailer lines.
    fn sign_trailer(&self, trailer_hash: [u8; 32]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(&self.trailer_prefix);
        mac.update(&self.previous_signature);
        mac.update(b"\n");
        mac.update(&hex_array(&trailer_hash));
        mac.finalize().into_bytes().into()
    }
}

/// The trailer lines read so far.
struct TrailerSection {
    /// Bytes of the trailer section read so far, CRLFs included.
    len: usize,
    /// Value of the expected checksum trailer.
    checksum_value: Option<String>,
    /// Decoded `x-amz-trailer-signature`.
    signature: Option<[u8; 32]>,
    /// SHA-256 of the checksum trailer lines as `name:value\n`, with the name
    /// lowercased and the value trimmed, for the trailer signature.
    hasher: Sha256,
}

/// The position of the decoder in the body.
enum State {
    /// Reading a chunk header line.
    Header,
    /// Inside chunk data, with this many bytes left.
    Data { remaining: u64 },
    /// Expecting the CR after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// After the final chunk, reading trailer lines up to the empty line.
    Trailer,
    /// The stream ended. `padding` counts bytes of the one extra CRLF that is
    /// tolerated after the end.
    Done {
        outcome: Option<(ChecksumAlgorithm, String)>,
        padding: usize,
    },
    /// An error was returned, and every later call returns it again.
    Failed(ChunkedError),
}

/// Incremental decoder of one aws-chunked body. Feed it the raw body with
/// [`ChunkedDecoder::feed`] and call [`ChunkedDecoder::finish`] at its end.
pub struct ChunkedDecoder {
    signer: Option<ChunkSigner>,
    trailer_allowed: bool,
    expected_trailer: Option<ChecksumAlgorithm>,
    decoded_length: Option<u64>,
    /// Checksum of the decoded payload, for the expected trailer.
    checksum: Option<Checksum>,
    state: State,
    /// Start of a chunk header or trailer line that a previous feed split.
    line: Vec<u8>,
    decoded: u64,
    /// Index of the current chunk, counting from 0.
    chunk_index: u64,
    trailer: TrailerSection,
}

impl fmt::Debug for ChunkedDecoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Header => "header",
            State::Data { .. } => "data",
            State::DataCr | State::DataLf => "data-crlf",
            State::Trailer => "trailer",
            State::Done { .. } => "done",
            State::Failed(_) => "failed",
        };
        f.debug_struct("ChunkedDecoder")
            .field("signed", &self.signer.is_some())
            .field("trailer_allowed", &self.trailer_allowed)
            .field("expected_trailer", &self.expected_trailer)
            .field("decoded_length", &self.decoded_length)
            .field("state", &state)
            .field("decoded", &self.decoded)
            .field("chunk_index", &self.chunk_index)
            .finish_non_exhaustive()
    }
}

impl ChunkedDecoder {
    /// Creates a decoder. Fails when `expected_trailer` is not an
    /// `x-amz-checksum-*` name, when it is set in a mode without trailers, or
    /// when the seed signature is not 64 hex digits.
    pub fn new(options: DecoderOptions) -> Result<Self, ChunkedError> {
        let expected_trailer = match options.expected_trailer.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(name) => {
                let algorithm = ChecksumAlgorithm::from_header_name(name)
                    .ok_or_else(|| ChunkedError::InvalidTrailerName(name.to_string()))?;
                if !options.trailer {
                    return Err(ChunkedError::TrailerNotAllowed(name.to_string()));
                }
                Some(algorithm)
            }
        };
        let signer = options.signing.map(ChunkSigner::new).transpose()?;
        Ok(Self {
            signer,
            trailer_allowed: options.trailer,
            expected_trailer,
            decoded_length: options.decoded_length,
            checksum: expected_trailer.map(Checksum::new),
            state: State::Header,
            line: Vec::new(),
            decoded: 0,
            chunk_index: 0,
            trailer: TrailerSection {
                len: 0,
                checksum_value: None,
                signature: None,
                hasher: Sha256::new(),
            },
        })
    }

    /// Decodes the next piece of the raw body, split anywhere, and appends the
    /// payload it contains to `out` as zero-copy slices of `input`.
    ///
    /// Data is appended as it arrives, before its chunk's signature can be
    /// checked. The signature is checked when the CRLF after the chunk's data
    /// arrives, so a forged chunk fails before any data of the next chunk is
    /// appended. On error `out` is truncated back to its length at the call,
    /// and every later call returns the same error. Only the start of a chunk
    /// header or trailer line split across calls is buffered, bounded by
    /// [`MAX_CHUNK_HEADER_LEN`] and [`MAX_TRAILER_LEN`].
    pub fn feed(&mut self, input: Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkedError> {
        if let State::Failed(error) = &self.state {
            return Err(error.clone());
        }
        let out_len = out.len();
        match self.decode(&input, out) {
            Ok(()) => Ok(()),
            Err(error) => {
                out.truncate(out_len);
                Err(self.fail(error))
            }
        }
    }

    /// Checks the body as a whole once it has ended, and returns the verified
    /// trailer checksum as `(algorithm, base64 value)` if the body had one.
    ///
    /// The final CRLF of the stream may be missing when the body ends right
    /// where it would start. Calling `finish` again returns the same result.
    pub fn finish(&mut self) -> Result<Option<(ChecksumAlgorithm, String)>, ChunkedError> {
        match &self.state {
            State::Failed(error) => Err(error.clone()),
            State::Done { padding: 1, .. } => Err(self.fail(ChunkedError::DataAfterEnd)),
            State::Done { outcome, .. } => Ok(outcome.clone()),
            State::Trailer if self.line.is_empty() => match self.complete() {
                Ok(outcome) => {
                    self.state = State::Done {
                        outcome: outcome.clone(),
                        padding: 0,
                    };
                    Ok(outcome)
                }
                Err(error) => Err(self.fail(error)),
            },
            _ => Err(self.fail(ChunkedError::TruncatedBody {
                received: self.decoded,
            })),
        }
    }

    /// Returns the number of payload bytes decoded so far.
    pub fn decoded_len(&self) -> u64 {
        self.decoded
    }

    /// Returns whether the final chunk and the trailer section were parsed
    /// and verified.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done { .. })
    }

    fn fail(&mut self, error: ChunkedError) -> ChunkedError {
        self.state = State::Failed(error.clone());
        error
    }

    fn decode(&mut self, input: &Bytes, out: &mut Vec<Bytes>) -> Result<(), ChunkedError> {
        let mut pos = 0;
        while pos < input.len() {
            match &mut self.state {
                State::Data { remaining } => {
                    // Take the whole run of chunk data in this input at once.
                    let available = input.len() - pos;
                    let take = usize::try_from(*remaining).map_or(available, |r| r.min(available));
                    let end = pos + take;
                    let data = &input[pos..end];
                    if let Some(signer) = &mut self.signer {
                        signer.chunk_hasher.update(data);
                    }
                    if let Some(checksum) = &mut self.checksum {
                        checksum.update(data);
                    }
                    out.push(input.slice(pos..end));
                    self.decoded += take as u64;
                    *remaining -= take as u64;
                    if *remaining == 0 {
                        self.state = State::DataCr;
                    }
                    pos = end;
                }
                State::DataCr => {
                    expect_byte(input[pos], b'\r')?;
                    pos += 1;
                    self.state = State::DataLf;
                }
                State::DataLf => {
                    expect_byte(input[pos], b'\n')?;
                    pos += 1;
                    if let Some(signer) = &mut self.signer {
                        signer.verify_chunk(self.chunk_index)?;
                    }
                    self.chunk_index += 1;
                    self.state = State::Header;
                }
                State::Header => {
                    let line = self.next_line(
                        input,
                        &mut pos,
                        MAX_CHUNK_HEADER_LEN,
                        ChunkedError::ChunkHeaderTooLong,
                    )?;
                    if let Some(line) = line {
                        self.start_chunk(&line)?;
                    }
                }
                State::Trailer => {
                    let limit = MAX_TRAILER_LEN.saturating_sub(self.trailer.len);
                    let line =
                        self.next_line(input, &mut pos, limit, ChunkedError::TrailerTooLong)?;
                    if let Some(line) = line {
                        self.trailer.len += line.len() + 2;
                        if line.is_empty() {
                            let outcome = self.complete()?;
                            self.state = State::Done {
                                outcome,
                                padding: 0,
                            };
                        } else {
                            self.read_trailer_line(&line)?;
                        }
                    }
                }
                State::Done { padding, .. } => {
                    // NOTE: some clients end the body with one CRLF more than
                    // the format has. One extra CRLF is tolerated, because it
                    // carries no data. Anything else is rejected.
                    if *padding >= 2 || input[pos] != b"\r\n"[*padding] {
                        return Err(ChunkedError::DataAfterEnd);
                    }
                    *padding += 1;
                    pos += 1;
                }
                State::Failed(error) => return Err(error.clone()),
            }
        }
        Ok(())
    }

    /// Reads the line that starts at `input[*pos]`, buffering it when `input`
    /// ends first. Returns the line without its CRLF once complete. `limit`
    /// bounds the line's length, CRLF included, and exceeding it returns
    /// `too_long`.
    fn next_line(
        &mut self,
        input: &Bytes,
        pos: &mut usize,
        limit: usize,
        too_long: ChunkedError,
    ) -> Result<Option<Bytes>, ChunkedError> {
        let start = *pos;
        let room = limit.saturating_sub(self.line.len());
        let window_end = input.len().min(start.saturating_add(room));
        let Some(offset) = input[start..window_end].iter().position(|&b| b == b'\n') else {
            if window_end < input.len() {
                return Err(too_long);
            }
            self.line.extend_from_slice(&input[start..]);
            *pos = input.len();
            return Ok(None);
        };

        let newline = start + offset;
        *pos = newline + 1;
        let line = if self.line.is_empty() {
            input.slice(start..newline)
        } else {
            self.line.extend_from_slice(&input[start..newline]);
            Bytes::from(std::mem::take(&mut self.line))
        };
        match line.last() {
            Some(b'\r') => Ok(Some(line.slice(..line.len() - 1))),
            _ => Err(ChunkedError::Malformed(format!(
                "line {} does not end with CRLF",
                quote(&line)
            ))),
        }
    }

    /// Handles a complete chunk header line.
    fn start_chunk(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let (size, signature) = parse_chunk_header(line, self.signer.is_some())?;
        if let Some(signer) = &mut self.signer {
            signer.claimed_signature = signature.ok_or(ChunkedError::MissingChunkSignature {
                chunk_index: self.chunk_index,
            })?;
        }

        let total = self.decoded.saturating_add(size);
        if let Some(expected) = self.decoded_length {
            if total > expected {
                return Err(ChunkedError::DecodedLengthTooLong {
                    expected,
                    received: total,
                });
            }
        }

        if size > 0 {
            self.state = State::Data { remaining: size };
            return Ok(());
        }

        // The final chunk has no data and no CRLF after it, so its signature
        // (over empty data) is checked right away.
        if let Some(signer) = &mut self.signer {
            signer.verify_chunk(self.chunk_index)?;
        }
        self.chunk_index += 1;
        if let Some(expected) = self.decoded_length {
            if self.decoded < expected {
                return Err(ChunkedError::IncompleteBody {
                    expected,
                    received: self.decoded,
                });
            }
        }
        self.state = State::Trailer;
        Ok(())
    }

    /// Handles a non-empty line of the trailer section.
    fn read_trailer_line(&mut self, line: &[u8]) -> Result<(), ChunkedError> {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(ChunkedError::Malformed(format!(
                "trailer line {} has no colon",
                quote(line)
            )));
        };
        let name = std::str::from_utf8(trim_whitespace(&line[..colon]))
            .map_err(|_| {
                ChunkedError::Malformed(format!("trailer name {} is not UTF-8", quote(line)))
            })?
            .to_ascii_lowercase();
        let value = std::str::from_utf8(trim_whitespace(&line[colon + 1..])).map_err(|_| {
            ChunkedError::Malformed(format!("value of trailer {name} is not UTF-8"))
        })?;
        if name.is_empty() {
            return Err(ChunkedError::Malformed(format!(
                "trailer line {} has an empty name",
                quote(line)
            )));
        }
        if !self.trailer_allowed {
            return Err(ChunkedError::UnexpectedTrailer(name));
        }

        if name == TRAILER_SIGNATURE_NAME {
            if self.signer.is_none() {
                return Err(ChunkedError::UnexpectedTrailer(name));
            }
            if self.trailer.signature.is_some() {
                return Err(ChunkedError::Malformed(format!("duplicate trailer {name}")));
            }
            let signature = decode_signature(value.as_bytes()).ok_or_else(|| {
                ChunkedError::Malformed(format!("{name} value is not 64 hex digits"))
            })?;
            self.trailer.signature = Some(signature);
            return Ok(());
        }

        if self.trailer.signature.is_some() {
            return Err(ChunkedError::Malformed(format!(
                "trailer {name} follows {TRAILER_SIGNATURE_NAME}, which must come last"
            )));
        }
        let algorithm = ChecksumAlgorithm::from_header_name(&name);
        if algorithm.is_none() || algorithm != self.expected_trailer {
            return Err(ChunkedError::UnexpectedTrailer(name));
        }
        if self.trailer.checksum_value.is_some() {
            return Err(ChunkedError::Malformed(format!("duplicate trailer {name}")));
        }
        if self.signer.is_some() {
            let hasher = &mut self.trailer.hasher;
            hasher.update(name.as_bytes());
            hasher.update(b":");
            hasher.update(value.as_bytes());
            hasher.update(b"\n");
        }
        self.trailer.checksum_value = Some(value.to_string());
        Ok(())
    }

    /// Verifies the complete trailer section, checking the trailer signature
    /// first and then the presence and value of the expected checksum.
    fn complete(&mut self) -> Result<Option<(ChecksumAlgorithm, String)>, ChunkedError> {
        if let (Some(signer), true) = (&self.signer, self.trailer_allowed) {
            let claimed = self
                .trailer
                .signature
                .ok_or(ChunkedError::MissingTrailerSignature)?;
            let trailer_hash: [u8; 32] = self.trailer.hasher.clone().finalize().into();
            if !signer.verify_trailer(trailer_hash, &claimed) {
                return Err(ChunkedError::TrailerSignatureMismatch);
            }
        }

        let Some(algorithm) = self.expected_trailer else {
            return Ok(None);
        };
        let name = algorithm.header_name();
        let Some(value) = self.trailer.checksum_value.take() else {
            return Err(ChunkedError::MissingTrailer(name.to_string()));
        };
        let received = BASE64
            .decode(value.as_bytes())
            .ok()
            .filter(|digest| digest.len() == algorithm.digest_len())
            .ok_or_else(|| ChunkedError::InvalidChecksumValue {
                name: name.to_string(),
                algorithm,
            })?;
        let computed = self
            .checksum
            .take()
            .unwrap_or_else(|| Checksum::new(algorithm))
            .finalize_bytes();
        if computed != received {
            return Err(ChunkedError::BadDigest { algorithm });
        }
        Ok(Some((algorithm, BASE64.encode(computed))))
    }
}

/// Parses `hex-size[;name[=value]]...`, returning the size and the decoded
/// `chunk-signature` if present. Whitespace around the size, names and values
/// is ignored, and so are extensions other than `chunk-signature`.
fn parse_chunk_header(line: &[u8], signed: bool) -> Result<(u64, Option<[u8; 32]>), ChunkedError> {
    let mut parts = line.split(|&b| b == b';');
    let size_field = trim_whitespace(parts.next().unwrap_or_default());
    let size = parse_hex_size(size_field)?;

    let mut signature = None;
    for extension in parts {
        let extension = trim_whitespace(extension);
        let (name, value) = match extension.iter().position(|&b| b == b'=') {
            Some(eq) => (
                trim_whitespace(&extension[..eq]),
                trim_whitespace(&extension[eq + 1..]),
            ),
            None => (extension, &[][..]),
        };
        if name.is_empty() {
            return Err(ChunkedError::Malformed(format!(
                "chunk header {} has an empty extension",
                quote(line)
            )));
        }
        if !name.eq_ignore_ascii_case(CHUNK_SIGNATURE_EXTENSION.as_bytes()) {
            continue;
        }
        if !signed {
            return Err(ChunkedError::Malformed(
                "chunk-signature in an unsigned body".to_string(),
            ));
        }
        if signature.is_some() {
            return Err(ChunkedError::Malformed(
                "chunk header has two chunk-signature extensions".to_string(),
            ));
        }
        signature = Some(decode_signature(value).ok_or_else(|| {
            ChunkedError::Malformed(format!(
                "chunk-signature {} is not 64 hex digits",
                quote(value)
            ))
        })?);
    }
    Ok((size, signature))
}

/// Parses a chunk size: one or more hex digits, leading zeros allowed.
fn parse_hex_size(field: &[u8]) -> Result<u64, ChunkedError> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_hexdigit) {
        return Err(ChunkedError::Malformed(format!(
            "invalid chunk size {}",
            quote(field)
        )));
    }
    let mut size: u64 = 0;
    for &digit in field {
        let value = match digit {
            b'0'..=b'9' => digit - b'0',
            b'a'..=b'f' => digit - b'a' + 10,
            _ => digit - b'A' + 10,
        };
        size = size
            .checked_mul(16)
            .and_then(|shifted| shifted.checked_add(u64::from(value)))
            .ok_or(ChunkedError::ChunkTooLarge(u64::MAX))?;
    }
    if size > MAX_CHUNK_SIZE {
        return Err(ChunkedError::ChunkTooLarge(size));
    }
    Ok(size)
}

/// Decodes a 64-digit hex signature in either letter case.
fn decode_signature(value: &[u8]) -> Option<[u8; 32]> {
    let mut signature = [0u8; 32];
    hex::decode_to_slice(value, &mut signature).ok()?;
    Some(signature)
}

fn hex_array(bytes: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (i, byte) in bytes.iter().enumerate() {
        out[2 * i] = DIGITS[usize::from(byte >> 4)];
        out[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

fn expect_byte(actual: u8, expected: u8) -> Result<(), ChunkedError> {
    if actual == expected {
        return Ok(());
    }
    Err(ChunkedError::Malformed(format!(
        "chunk data is not followed by CRLF (found byte 0x{actual:02x})"
    )))
}

fn trim_whitespace(bytes: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

/// Quotes a rejected value for an error message, cut to `MAX_QUOTED_LEN` bytes.
fn quote(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(MAX_QUOTED_LEN)];
    let text = format!("{:?}", String::from_utf8_lossy(shown));
    if bytes.len() > MAX_QUOTED_LEN {
        format!("{text}...")
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The example of AWS's "Signature Calculations for the Authorization
    // Header: Transferring Payload in Multiple Chunks" page.
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const AMZ_DATE: &str = "20130524T000000Z";
    const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
    const AWS_CHUNK_SIGNATURES: [&str; 3] = [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ];

    fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().into()
    }

    fn signing_key() -> [u8; 32] {
        let date_key = hmac_sha256(format!("AWS4{SECRET}").as_bytes(), b"20130524");
        let region_key = hmac_sha256(&date_key, b"us-east-1");
        let service_key = hmac_sha256(&region_key, b"s3");
        hmac_sha256(&service_key, b"aws4_request")
    }

    fn signing() -> ChunkSigning {
        ChunkSigning {
            signing_key: signing_key(),
            amz_date: AMZ_DATE.to_string(),
            scope: SCOPE.to_string(),
            seed_signature: SEED.to_string(),
        }
    }

    fn sha256_hex(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn chunk_signature(previous: &str, data: &[u8]) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{EMPTY_SHA256_HEX}\n{}",
            sha256_hex(data)
        );
        hex::encode(hmac_sha256(&signing_key(), string_to_sign.as_bytes()))
    }

    fn trailer_signature(previous: &str, trailer_lines: &str) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{}",
            sha256_hex(trailer_lines.as_bytes())
        );
        hex::encode(hmac_sha256(&signing_key(), string_to_sign.as_bytes()))
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Mode {
        /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD
        Signed,
        /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
        SignedTrailer,
        /// STREAMING-UNSIGNED-PAYLOAD-TRAILER
        UnsignedTrailer,
        /// aws-chunked framing without signatures or trailer
        Unsigned,
    }

    const MODES: [Mode; 4] = [
        Mode::Signed,
        Mode::SignedTrailer,
        Mode::UnsignedTrailer,
        Mode::Unsigned,
    ];

    impl Mode {
        fn signed(self) -> bool {
            matches!(self, Mode::Signed | Mode::SignedTrailer)
        }

        fn trailer(self) -> bool {
            matches!(self, Mode::SignedTrailer | Mode::UnsignedTrailer)
        }
    }

    /// Builds valid bodies in every mode, with knobs to make them invalid.
    #[derive(Clone)]
    struct Encoder {
        mode: Mode,
        chunk_size: usize,
        trailer: Option<ChecksumAlgorithm>,
        /// Sent in place of the correct checksum value.
        checksum_value: Option<String>,
        /// Sent in place of the correct trailer signature.
        trailer_signature: Option<String>,
        /// Leaves out the x-amz-trailer-signature line.
        omit_trailer_signature: bool,
    }

    impl Encoder {
        fn new(mode: Mode) -> Self {
            Self {
                mode,
                chunk_size: 4,
                trailer: mode.trailer().then_some(ChecksumAlgorithm::Crc32),
                checksum_value: None,
                trailer_signature: None,
                omit_trailer_signature: false,
            }
        }

        fn options(&self) -> DecoderOptions {
            DecoderOptions {
                signing: self.mode.signed().then(signing),
                trailer: self.mode.trailer(),
                expected_trailer: self.trailer.map(|a| a.header_name().to_string()),
                decoded_length: None,
            }
        }

        fn encode(&self, data: &[u8]) -> Vec<u8> {
            let mut body = Vec::new();
            let mut previous = SEED.to_string();
            let final_chunk: &[u8] = &[];
            for chunk in data.chunks(self.chunk_size).chain([final_chunk]) {
                if self.mode.signed() {
                    let signature = chunk_signature(&previous, chunk);
                    body.extend(
                        format!("{:x};chunk-signature={signature}\r\n", chunk.len()).bytes(),
                    );
                    previous = signature;
                } else {
                    body.extend(format!("{:x}\r\n", chunk.len()).bytes());
                }
                if !chunk.is_empty() {
                    body.extend(chunk);
                    body.extend(b"\r\n");
                }
            }

            if self.mode.trailer() {
                let mut lines = String::new();
                if let Some(algorithm) = self.trailer {
                    let value = self.checksum_value.clone().unwrap_or_else(|| {
                        let mut checksum = Checksum::new(algorithm);
                        checksum.update(data);
                        checksum.finalize_base64()
                    });
                    lines.push_str(&format!("{}:{value}\n", algorithm.header_name()));
                }
                body.extend(lines.replace('\n', "\r\n").bytes());
                if self.mode.signed() && !self.omit_trailer_signature {
                    let signature = self
                        .trailer_signature
                        .clone()
                        .unwrap_or_else(|| trailer_signature(&previous, &lines));
                    body.extend(format!("x-amz-trailer-signature:{signature}\r\n").bytes());
                }
            }
            body.extend(b"\r\n");
            body
        }
    }

    struct Decoded {
        data: Vec<u8>,
        trailer: Option<(ChecksumAlgorithm, String)>,
    }

    /// Feeds `body` in pieces of `piece_len` bytes, then finishes.
    fn decode_in_pieces(
        options: DecoderOptions,
        body: &[u8],
        piece_len: usize,
    ) -> Result<Decoded, ChunkedError> {
        let mut decoder = ChunkedDecoder::new(options)?;
        let mut out = Vec::new();
        for piece in body.chunks(piece_len) {
            decoder.feed(Bytes::copy_from_slice(piece), &mut out)?;
        }
        let trailer = decoder.finish()?;
        Ok(Decoded {
            data: out.concat(),
            trailer,
        })
    }

    fn decode(options: DecoderOptions, body: &[u8]) -> Result<Decoded, ChunkedError> {
        decode_in_pieces(options, body, body.len().max(1))
    }

    fn decode_error(options: DecoderOptions, body: &[u8]) -> ChunkedError {
        match decode(options, body) {
            Ok(_) => panic!("the body was accepted"),
            Err(error) => error,
        }
    }

    const SAMPLE: &[u8] = b"The quick brown fox jumps over the lazy dog";

    fn aws_example_body() -> Vec<u8> {
        let mut body = Vec::new();
        body.extend(format!("10000;chunk-signature={}\r\n", AWS_CHUNK_SIGNATURES[0]).bytes());
        body.extend(std::iter::repeat_n(b'a', 65536));
        body.extend(b"\r\n");
        body.extend(format!("400;chunk-signature={}\r\n", AWS_CHUNK_SIGNATURES[1]).bytes());
        body.extend(std::iter::repeat_n(b'a', 1024));
        body.extend(b"\r\n");
        body.extend(format!("0;chunk-signature={}\r\n\r\n", AWS_CHUNK_SIGNATURES[2]).bytes());
        body
    }

    fn aws_example_options() -> DecoderOptions {
        DecoderOptions {
            signing: Some(signing()),
            trailer: false,
            expected_trailer: None,
            decoded_length: Some(66560),
        }
    }

    #[test]
    fn aws_example_verifies() {
        let decoded = decode(aws_example_options(), &aws_example_body()).unwrap();
        assert_eq!(decoded.data.len(), 66560);
        assert!(decoded.data.iter().all(|&b| b == b'a'));
        assert_eq!(decoded.trailer, None);
    }

    #[test]
    fn aws_example_in_odd_pieces() {
        let decoded = decode_in_pieces(aws_example_options(), &aws_example_body(), 977).unwrap();
        assert_eq!(decoded.data, vec![b'a'; 66560]);
    }

    #[test]
    fn aws_example_wrong_seed_fails() {
        let mut options = aws_example_options();
        if let Some(signing) = &mut options.signing {
            signing.seed_signature = "0".repeat(64);
        }
        let error = decode_error(options, &aws_example_body());
        assert_eq!(
            error,
            ChunkedError::ChunkSignatureMismatch { chunk_index: 0 }
        );
    }

    #[test]
    fn encoder_reproduces_aws_signatures() {
        let mut encoder = Encoder::new(Mode::Signed);
        encoder.chunk_size = 65536;
        let body = encoder.encode(&[b'a'; 66560]);
        assert_eq!(body, aws_example_body());
    }

    #[test]
    fn every_mode_decodes() {
        for mode in MODES {
            let encoder = Encoder::new(mode);
            let decoded = decode(encoder.options(), &encoder.encode(SAMPLE)).unwrap();
            assert_eq!(decoded.data, SAMPLE, "{mode:?}");
        }
    }

    #[test]
    fn signed_trailer_without_checksum_decodes() {
        let mut encoder = Encoder::new(Mode::SignedTrailer);
        encoder.trailer = None;
        let decoded = decode(encoder.options(), &encoder.encode(SAMPLE)).unwrap();
        assert_eq!(decoded.data, SAMPLE);
        assert_eq!(decoded.trailer, None);
    }

    #[test]
    fn trailer_modes_return_checksum() {
        for mode in [Mode::SignedTrailer, Mode::UnsignedTrailer] {
            let encoder = Encoder::new(mode);
            let decoded = decode(encoder.options(), &encoder.encode(b"123456789")).unwrap();
            let expected = (ChecksumAlgorithm::Crc32, "y/Q5Jg==".to_string());
            assert_eq!(decoded.trailer, Some(expected), "{mode:?}");
        }
    }

    #[test]
    fn empty_payload_decodes() {
        for mode in MODES {
            let encoder = Encoder::new(mode);
            let decoded = decode(encoder.options(), &encoder.encode(b"")).unwrap();
            assert!(decoded.data.is_empty(), "{mode:?}");
        }
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        for mode in MODES {
            let encoder = Encoder::new(mode);
            let body = encoder.encode(SAMPLE);
            let whole = decode(encoder.options(), &body).unwrap();
            let bytewise = decode_in_pieces(encoder.options(), &body, 1).unwrap();
            assert_eq!(bytewise.data, whole.data, "{mode:?}");
            assert_eq!(bytewise.trailer, whole.trailer, "{mode:?}");
        }
    }

    #[test]
    fn every_split_point_matches_whole() {
        for mode in MODES {
            let encoder = Encoder::new(mode);
            let body = encoder.encode(SAMPLE);
            for split in 0..=body.len() {
                let mut decoder = ChunkedDecoder::new(encoder.options()).unwrap();
                let mut out = Vec::new();
                decoder
                    .feed(Bytes::copy_from_slice(&body[..split]), &mut out)
                    .unwrap();
                decoder
                    .feed(Bytes::copy_from_slice(&body[split..]), &mut out)
                    .unwrap();
                let trailer = decoder.finish().unwrap();
                assert_eq!(out.concat(), SAMPLE, "{mode:?} split at {split}");
                assert_eq!(
                    trailer.is_some(),
                    mode.trailer(),
                    "{mode:?} split at {split}"
                );
            }
        }
    }

    #[test]
    fn output_slices_share_input() {
        let encoder = Encoder::new(Mode::UnsignedTrailer);
        let body = Bytes::from(encoder.encode(SAMPLE));
        let mut decoder = ChunkedDecoder::new(encoder.options()).unwrap();
        let mut out = Vec::new();
        decoder.feed(body.clone(), &mut out).unwrap();
        let body_range = body.as_ptr_range();
        for piece in &out {
            assert!(body_range.contains(&piece.as_ptr()));
        }
    }

    #[test]
    fn decoded_len_and_is_done_track_progress() {
        let encoder = Encoder::new(Mode::UnsignedTrailer);
        let body = encoder.encode(SAMPLE);
        let mut decoder = ChunkedDecoder::new(encoder.options()).unwrap();
        let mut out = Vec::new();
        decoder
            .feed(Bytes::copy_from_slice(&body[..10]), &mut out)
            .unwrap();
        assert_eq!(decoder.decoded_len(), 4);
        assert!(!decoder.is_done());
        decoder
            .feed(Bytes::copy_from_slice(&body[10..]), &mut out)
            .unwrap();
        assert_eq!(decoder.decoded_len(), SAMPLE.len() as u64);
        assert!(decoder.is_done());
    }

    #[test]
    fn trailer_checksums_verify_each_algorithm() {
        let cases = [
            (
                ChecksumAlgorithm::Crc32,
                BASE64.encode(0xCBF4_3926u32.to_be_bytes()),
            ),
            (
                ChecksumAlgorithm::Crc32c,
                BASE64.encode(0xE306_9283u32.to_be_bytes()),
            ),
            (
                ChecksumAlgorithm::Crc64Nvme,
                BASE64.encode(0xAE8B_1486_0A79_9888u64.to_be_bytes()),
            ),
            (
                ChecksumAlgorithm::Sha1,
                BASE64.encode(hex::decode("f7c3bc1d808e04732adf679965ccc34ca7ae3441").unwrap()),
            ),
            (
                ChecksumAlgorithm::Sha256,
                BASE64.encode(
                    hex::decode("15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225")
                        .unwrap(),
                ),
            ),
        ];
        for (algorithm, expected) in cases {
            let mut encoder = Encoder::new(Mode::UnsignedTrailer);
            encoder.trailer = Some(algorithm);
            encoder.checksum_value = Some(expected.clone());
            let decoded = decode(encoder.options(), &encoder.encode(b"123456789")).unwrap();
            assert_eq!(decoded.trailer, Some((algorithm, expected)), "{algorithm}");
        }
    }

    #[test]
    fn unsigned_trailer_literal_body() {
        let body = b"4\r\n1234\r\n5\r\n56789\r\n0\r\nx-amz-checksum-crc64nvme:rosUhgp5mIg=\r\n\r\n";
        let options = DecoderOptions {
            trailer: true,
            expected_trailer: Some("x-amz-checksum-crc64nvme".to_string()),
            ..DecoderOptions::default()
        };
        let decoded = decode(options, body).unwrap();
        assert_eq!(decoded.data, b"123456789");
        let expected = (ChecksumAlgorithm::Crc64Nvme, "rosUhgp5mIg=".to_string());
        assert_eq!(decoded.trailer, Some(expected));
    }

    #[test]
    fn extension_whitespace_is_tolerated() {
        let signature = chunk_signature(SEED, b"abc");
        let final_signature = chunk_signature(&signature, b"");
        let body = format!(
            "3 ; chunk-signature = {signature} \r\nabc\r\n0;chunk-signature={final_signature}\r\n\r\n"
        );
        let options = DecoderOptions {
            signing: Some(signing()),
            ..DecoderOptions::default()
        };
        let decoded = decode(options, body.as_bytes()).unwrap();
        assert_eq!(decoded.data, b"abc");
    }

    #[test]
    fn unknown_extensions_are_ignored() {
        let body = b"3;foo=bar;baz\r\nabc\r\n0\r\n\r\n";
        let decoded = decode(DecoderOptions::default(), body).unwrap();
        assert_eq!(decoded.data, b"abc");
    }

    #[test]
    fn hex_size_accepts_uppercase_and_leading_zeros() {
        let body = format!("0000A\r\n{}\r\n0\r\n\r\n", "x".repeat(10));
        let decoded = decode(DecoderOptions::default(), body.as_bytes()).unwrap();
        assert_eq!(decoded.data, b"xxxxxxxxxx");
    }

    #[test]
    fn trailer_name_case_is_ignored() {
        let body = b"4\r\n1234\r\n0\r\nX-Amz-Checksum-CRC32: m+Pgow== \r\n\r\n";
        let mut checksum = Checksum::new(ChecksumAlgorithm::Crc32);
        checksum.update(b"1234");
        assert_eq!(checksum.finalize_base64(), "m+Pgow==");
        let options = DecoderOptions {
            trailer: true,
            expected_trailer: Some("X-Amz-Checksum-Crc32".to_string()),
            ..DecoderOptions::default()
        };
        assert!(decode(options, body).is_ok());
    }

    #[test]
    fn missing_final_crlf_is_tolerated() {
        for mode in MODES {
            let encoder = Encoder::new(mode);
            let mut body = encoder.encode(SAMPLE);
            body.truncate(body.len() - 2);
            let decoded = decode(encoder.options(), &body).unwrap();
            assert_eq!(decoded.data, SAMPLE, "{mode:?}");
        }
    }

    #[test]
    fn one_extra_crlf_is_tolerated() {
        let encoder = Encoder::new(Mode::UnsignedTrailer);
        let mut body = encoder.encode(SAMPLE);
        body.extend(b"\r\n");
        assert!(decode(encoder.options(), &body).is_ok());
    }

    #[test]
    fn finish_twice_returns_same_result() {
        let encoder = Encoder::new(Mode::UnsignedTrailer);
        let mut decoder = ChunkedDecoder::new(encoder.options()).unwrap();
        let mut out = Vec::new();
        decoder
            .feed(Bytes::from(encoder.encode(SAMPLE)), &mut out)
            .unwrap();
        let first = decoder.finish().unwrap();
        assert!(first.is_some());
        assert_eq!(decoder.finish().unwrap(), first);
    }

    #[test]
    fn decoded_length_exact_passes() {
        let encoder = Encoder::new(Mode::Signed);
        let mut options = encoder.options();
        options.decoded_length = Some(SAMPLE.len() as u64);
        assert!(decode(options, &encoder.encode(SAMPLE)).is_ok());
    }

    #[test]
    fn debug_redacts_signing_key() {
        let text = format!("{:?}", signing());
        assert!(text.contains("<redacted>"));
        assert!(!text.contains(&format!("{:?}", signing_key())));
        assert!(text.contains(SCOPE));
    }

    #[test]
    fn s3_codes_match_error_kinds() {
        let mismatch = ChunkedError::ChunkSignatureMismatch { chunk_index: 1 };
        assert_eq!(mismatch.s3_code(), ("SignatureDoesNotMatch", 403));
        let bad_digest = ChunkedError::BadDigest {
            algorithm: ChecksumAlgorithm::Crc32,
        };
        assert_eq!(bad_digest.s3_code(), ("BadDigest", 400));
        let truncated = ChunkedError::TruncatedBody { received: 3 };
        assert_eq!(truncated.s3_code(), ("IncompleteBody", 400));
        let malformed = ChunkedError::Malformed("x".to_string());
        assert_eq!(malformed.s3_code(), ("InvalidArgument", 400));
        assert_eq!(
            ChunkedError::ChunkTooLarge(1).s3_code(),
            ("InvalidArgument", 400)
        );
    }

    // Negative cases.

    #[test]
    fn flipped_data_byte_fails_before_next_chunk() {
        let mut encoder = Encoder::new(Mode::Signed);
        encoder.chunk_size = 8;
        let data = b"aaaaaaaabbbbbbbbcccccccc";
        let mut body = encoder.encode(data);
        let header_len = body.iter().position(|&b| b == b'\n').unwrap() + 1;
        // Chunk 1 starts after chunk 0's header, 8 data bytes and CRLF.
        let chunk1_data = 2 * header_len + 8 + 2;
        assert_eq!(&body[chunk1_data..chunk1_data + 8], b"bbbbbbbb");
        body[chunk1_data + 3] = b'B';

        let mut decoder = ChunkedDecoder::new(encoder.options()).unwrap();
        let mut out = Vec::new();
        let mut error = None;
        for (i, byte) in body.iter().enumerate() {
            if let Err(e) = decoder.feed(Bytes::copy_from_slice(&[*byte]), &mut out) {
                error = Some((i, e));
                break;
            }
        }
        let (position, error) = error.unwrap();
        assert_eq!(
            error,
            ChunkedError::ChunkSignatureMismatch { chunk_index: 1 }
        );
        // The failing byte is the LF after chunk 1's data.
        assert_eq!(position, chunk1_data + 8 + 1);
        assert!(!out.concat().contains(&b'c'));
    }

    #[test]
    fn flipped_chunk_signature_fails() {
        let encoder = Encoder::new(Mode::Signed);
        let mut body = encoder.encode(SAMPLE);
        let signature_start = body.iter().position(|&b| b == b'=').unwrap() + 1;
        body[signature_start] = if body[signature_start] == b'0' {
            b'1'
        } else {
            b'0'
        };
        let error = decode_error(encoder.options(), &body);
        assert_eq!(
            error,
            ChunkedError::ChunkSignatureMismatch { chunk_index: 0 }
        );
    }

    #[test]
    fn flipped_final_chunk_signature_fails() {
        let encoder = Encoder::new(Mode::Signed);
        let mut body = encoder.encode(b"abcd");
        let signature_start = body.iter().rposition(|&b| b == b'=').unwrap() + 1;
        body[signature_start] = if body[signature_start] == b'0' {
            b'1'
        } else {
            b'0'
        };
        let error = decode_error(encoder.options(), &body);
        assert_eq!(
            error,
            ChunkedError::ChunkSignatureMismatch { chunk_index: 1 }
        );
    }

    #[test]
    fn missing_chunk_signature_fails() {
        let options = Encoder::new(Mode::Signed).options();
        let error = decode_error(options, b"3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(
            error,
            ChunkedError::MissingChunkSignature { chunk_index: 0 }
        );
    }

    #[test]
    fn short_chunk_signature_fails() {
        let options = Encoder::new(Mode::Signed).options();
        let error = decode_error(options, b"3;chunk-signature=abcd\r\nabc\r\n");
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn chunk_signature_in_unsigned_body_fails() {
        let body = format!("3;chunk-signature={SEED}\r\nabc\r\n0\r\n\r\n");
        let error = decode_error(DecoderOptions::default(), body.as_bytes());
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn wrong_trailer_checksum_is_bad_digest() {
        let mut encoder = Encoder::new(Mode::UnsignedTrailer);
        encoder.checksum_value = Some("AAAAAA==".to_string());
        let error = decode_error(encoder.options(), &encoder.encode(SAMPLE));
        let expected = ChunkedError::BadDigest {
            algorithm: ChecksumAlgorithm::Crc32,
        };
        assert_eq!(error, expected);
    }

    #[test]
    fn signed_wrong_trailer_checksum_is_bad_digest() {
        let mut encoder = Encoder::new(Mode::SignedTrailer);
        encoder.trailer = Some(ChecksumAlgorithm::Sha256);
        encoder.checksum_value = Some(BASE64.encode([0u8; 32]));
        let error = decode_error(encoder.options(), &encoder.encode(SAMPLE));
        let expected = ChunkedError::BadDigest {
            algorithm: ChecksumAlgorithm::Sha256,
        };
        assert_eq!(error, expected);
    }

    #[test]
    fn flipped_data_byte_is_bad_digest_unsigned() {
        let encoder = Encoder::new(Mode::UnsignedTrailer);
        let mut body = encoder.encode(SAMPLE);
        body[3] ^= 0x20;
        let error = decode_error(encoder.options(), &body);
        let expected = ChunkedError::BadDigest {
            algorithm: ChecksumAlgorithm::Crc32,
        };
        assert_eq!(error, expected);
    }

    #[test]
    fn invalid_checksum_value_fails() {
        let mut encoder = Encoder::new(Mode::UnsignedTrailer);
        encoder.checksum_value = Some("not*base64".to_string());
        let error = decode_error(encoder.options(), &encoder.encode(SAMPLE));
        assert!(
            matches!(error, ChunkedError::InvalidChecksumValue { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn checksum_value_of_wrong_length_fails() {
        let mut encoder = Encoder::new(Mode::UnsignedTrailer);
        encoder.checksum_value = Some(BASE64.encode([0u8; 8]));
        let error = decode_error(encoder.options(), &encoder.encode(SAMPLE));
        assert!(
            matches!(error, ChunkedError::InvalidChecksumValue { .. }),
            "{error:?}"
        );
    }

    #[test]
    fn wrong_trailer_signature_fails() {
        let mut encoder = Encoder::new(Mode::SignedTrailer);
        encoder.trailer_signature = Some("0".repeat(64));
        let error = decode_error(encoder.options(), &encoder.encode(SAMPLE));
        assert_eq!(error, ChunkedError::TrailerSignatureMismatch);
    }

    #[test]
    fn tampered_trailer_checksum_breaks_signature() {
        let encoder = Encoder::new(Mode::SignedTrailer);
        let body = encoder.encode(b"123456789");
        let text = String::from_utf8(body).unwrap();
        let tampered = text.replace("y/Q5Jg==", "AAAAAA==");
        assert_ne!(tampered, text);
        let error = decode_error(encoder.options(), tampered.as_bytes());
        assert_eq!(error, ChunkedError::TrailerSignatureMismatch);
    }

    #[test]
    fn missing_trailer_signature_fails() {
        let mut encoder = Encoder::new(Mode::SignedTrailer);
        encoder.omit_trailer_signature = true;
        let error = decode_error(encoder.options(), &encoder.encode(SAMPLE));
        assert_eq!(error, ChunkedError::MissingTrailerSignature);
    }

    #[test]
    fn trailer_signature_in_unsigned_body_fails() {
        let body = format!("3\r\nabc\r\n0\r\nx-amz-trailer-signature:{SEED}\r\n\r\n");
        let options = DecoderOptions {
            trailer: true,
            ..DecoderOptions::default()
        };
        let error = decode_error(options, body.as_bytes());
        let expected = ChunkedError::UnexpectedTrailer(TRAILER_SIGNATURE_NAME.to_string());
        assert_eq!(error, expected);
    }

    #[test]
    fn trailer_after_signature_fails() {
        let encoder = Encoder::new(Mode::SignedTrailer);
        let mut body = encoder.encode(SAMPLE);
        body.truncate(body.len() - 2);
        body.extend(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        let error = decode_error(encoder.options(), &body);
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn duplicate_trailer_fails() {
        let body = b"0\r\nx-amz-checksum-crc32:AAAAAA==\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let options = Encoder::new(Mode::UnsignedTrailer).options();
        let error = decode_error(options, body);
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn declared_trailer_missing_fails() {
        let mut encoder = Encoder::new(Mode::UnsignedTrailer);
        encoder.trailer = None;
        let body = encoder.encode(SAMPLE);
        let error = decode_error(Encoder::new(Mode::UnsignedTrailer).options(), &body);
        let expected = ChunkedError::MissingTrailer("x-amz-checksum-crc32".to_string());
        assert_eq!(error, expected);
    }

    #[test]
    fn declared_trailer_missing_at_eof_fails() {
        let options = Encoder::new(Mode::UnsignedTrailer).options();
        let error = decode_error(options, b"3\r\nabc\r\n0\r\n");
        let expected = ChunkedError::MissingTrailer("x-amz-checksum-crc32".to_string());
        assert_eq!(error, expected);
    }

    #[test]
    fn undeclared_trailer_fails() {
        let mut encoder = Encoder::new(Mode::UnsignedTrailer);
        encoder.trailer = Some(ChecksumAlgorithm::Crc32c);
        let body = encoder.encode(SAMPLE);
        let error = decode_error(Encoder::new(Mode::UnsignedTrailer).options(), &body);
        let expected = ChunkedError::UnexpectedTrailer("x-amz-checksum-crc32c".to_string());
        assert_eq!(error, expected);
    }

    #[test]
    fn trailer_in_mode_without_trailers_fails() {
        let body = b"3\r\nabc\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let error = decode_error(DecoderOptions::default(), body);
        let expected = ChunkedError::UnexpectedTrailer("x-amz-checksum-crc32".to_string());
        assert_eq!(error, expected);
    }

    #[test]
    fn trailer_line_without_colon_fails() {
        let options = Encoder::new(Mode::UnsignedTrailer).options();
        let error = decode_error(options, b"0\r\nx-amz-checksum-crc32\r\n\r\n");
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn decoded_length_too_short_fails() {
        let encoder = Encoder::new(Mode::Signed);
        let mut options = encoder.options();
        options.decoded_length = Some(SAMPLE.len() as u64 + 1);
        let error = decode_error(options, &encoder.encode(SAMPLE));
        let expected = ChunkedError::IncompleteBody {
            expected: SAMPLE.len() as u64 + 1,
            received: SAMPLE.len() as u64,
        };
        assert_eq!(error, expected);
    }

    #[test]
    fn decoded_length_too_long_fails() {
        let encoder = Encoder::new(Mode::Signed);
        let mut options = encoder.options();
        options.decoded_length = Some(10);
        let error = decode_error(options, &encoder.encode(SAMPLE));
        // The third 4-byte chunk is the first to pass 10 bytes.
        let expected = ChunkedError::DecodedLengthTooLong {
            expected: 10,
            received: 12,
        };
        assert_eq!(error, expected);
    }

    #[test]
    fn truncated_data_fails() {
        let encoder = Encoder::new(Mode::UnsignedTrailer);
        let error = decode_error(encoder.options(), b"8\r\nabcd");
        assert_eq!(error, ChunkedError::TruncatedBody { received: 4 });
    }

    #[test]
    fn truncated_before_final_chunk_fails() {
        let error = decode_error(DecoderOptions::default(), b"4\r\nabcd\r\n");
        assert_eq!(error, ChunkedError::TruncatedBody { received: 4 });
    }

    #[test]
    fn truncated_header_fails() {
        let error = decode_error(DecoderOptions::default(), b"4\r\nabcd\r\n0");
        assert_eq!(error, ChunkedError::TruncatedBody { received: 4 });
    }

    #[test]
    fn truncated_trailer_line_fails() {
        let options = Encoder::new(Mode::UnsignedTrailer).options();
        let error = decode_error(options, b"0\r\nx-amz-checksum-crc32:AAAA");
        assert_eq!(error, ChunkedError::TruncatedBody { received: 0 });
    }

    #[test]
    fn every_truncation_fails() {
        for mode in MODES {
            let encoder = Encoder::new(mode);
            let body = encoder.encode(SAMPLE);
            // A body that lacks only its final CRLF is the tolerated case.
            for cut in (0..body.len()).filter(|&cut| cut != body.len() - 2) {
                let result = decode(encoder.options(), &body[..cut]);
                assert!(result.is_err(), "{mode:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn bad_hex_size_fails() {
        let error = decode_error(DecoderOptions::default(), b"4g\r\nabcd\r\n0\r\n\r\n");
        assert_eq!(
            error,
            ChunkedError::Malformed("invalid chunk size \"4g\"".to_string())
        );
    }

    #[test]
    fn empty_size_fails() {
        let error = decode_error(DecoderOptions::default(), b";foo\r\nabcd\r\n0\r\n\r\n");
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn signed_size_fails() {
        let error = decode_error(DecoderOptions::default(), b"+4\r\nabcd\r\n0\r\n\r\n");
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn empty_extension_fails() {
        let error = decode_error(DecoderOptions::default(), b"4;\r\nabcd\r\n0\r\n\r\n");
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn chunk_over_max_size_fails() {
        let header = format!("{:x}\r\n", MAX_CHUNK_SIZE + 1);
        let error = decode_error(DecoderOptions::default(), header.as_bytes());
        assert_eq!(error, ChunkedError::ChunkTooLarge(MAX_CHUNK_SIZE + 1));
    }

    #[test]
    fn chunk_of_max_size_is_accepted() {
        let header = format!("{MAX_CHUNK_SIZE:x}\r\n");
        let mut decoder = ChunkedDecoder::new(DecoderOptions::default()).unwrap();
        let mut out = Vec::new();
        assert!(decoder.feed(Bytes::from(header), &mut out).is_ok());
    }

    #[test]
    fn size_overflowing_u64_fails() {
        let error = decode_error(DecoderOptions::default(), b"10000000000000000\r\n");
        assert_eq!(error, ChunkedError::ChunkTooLarge(u64::MAX));
    }

    #[test]
    fn oversized_header_line_fails() {
        let mut header = b"4;".to_vec();
        header.resize(MAX_CHUNK_HEADER_LEN, b'x');
        header.extend(b"\r\nabcd\r\n0\r\n\r\n");
        let error = decode_error(DecoderOptions::default(), &header);
        assert_eq!(error, ChunkedError::ChunkHeaderTooLong);
    }

    #[test]
    fn oversized_header_line_fails_bytewise() {
        let mut header = b"4;".to_vec();
        header.resize(MAX_CHUNK_HEADER_LEN * 2, b'x');
        let result = decode_in_pieces(DecoderOptions::default(), &header, 1);
        assert_eq!(result.err(), Some(ChunkedError::ChunkHeaderTooLong));
    }

    #[test]
    fn header_line_at_limit_is_accepted() {
        let mut header = b"4;".to_vec();
        header.resize(MAX_CHUNK_HEADER_LEN - 2, b'x');
        header.extend(b"\r\nabcd\r\n0\r\n\r\n");
        let decoded = decode_in_pieces(DecoderOptions::default(), &header, 7).unwrap();
        assert_eq!(decoded.data, b"abcd");
    }

    #[test]
    fn oversized_trailer_fails() {
        let options = Encoder::new(Mode::UnsignedTrailer).options();
        let mut body = b"0\r\nx-amz-checksum-crc32:".to_vec();
        body.resize(MAX_TRAILER_LEN + 10, b'A');
        let error = decode_error(options.clone(), &body);
        assert_eq!(error, ChunkedError::TrailerTooLong);
        let result = decode_in_pieces(options, &body, 100);
        assert_eq!(result.err(), Some(ChunkedError::TrailerTooLong));
    }

    #[test]
    fn data_after_end_fails() {
        let encoder = Encoder::new(Mode::UnsignedTrailer);
        let mut body = encoder.encode(SAMPLE);
        body.extend(b"x");
        let error = decode_error(encoder.options(), &body);
        assert_eq!(error, ChunkedError::DataAfterEnd);
    }

    #[test]
    fn second_extra_crlf_fails() {
        let encoder = Encoder::new(Mode::Signed);
        let mut body = encoder.encode(SAMPLE);
        body.extend(b"\r\n\r\n");
        let error = decode_error(encoder.options(), &body);
        assert_eq!(error, ChunkedError::DataAfterEnd);
    }

    #[test]
    fn lone_cr_after_end_fails() {
        let encoder = Encoder::new(Mode::Signed);
        let mut body = encoder.encode(SAMPLE);
        body.extend(b"\r");
        let error = decode_error(encoder.options(), &body);
        assert_eq!(error, ChunkedError::DataAfterEnd);
    }

    #[test]
    fn missing_crlf_after_data_fails() {
        let error = decode_error(DecoderOptions::default(), b"4\r\nabcdX\r\n0\r\n\r\n");
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn bare_lf_header_fails() {
        let error = decode_error(DecoderOptions::default(), b"4\nabcd\r\n0\r\n\r\n");
        assert!(matches!(error, ChunkedError::Malformed(_)), "{error:?}");
    }

    #[test]
    fn unknown_trailer_name_rejected_by_new() {
        let options = DecoderOptions {
            trailer: true,
            expected_trailer: Some("x-amz-checksum-md5".to_string()),
            ..DecoderOptions::default()
        };
        let error = ChunkedDecoder::new(options).unwrap_err();
        assert_eq!(
            error,
            ChunkedError::InvalidTrailerName("x-amz-checksum-md5".to_string())
        );
    }

    #[test]
    fn trailer_name_without_trailer_mode_rejected() {
        let options = DecoderOptions {
            expected_trailer: Some("x-amz-checksum-crc32".to_string()),
            ..DecoderOptions::default()
        };
        let error = ChunkedDecoder::new(options).unwrap_err();
        assert_eq!(
            error,
            ChunkedError::TrailerNotAllowed("x-amz-checksum-crc32".to_string())
        );
    }

    #[test]
    fn invalid_seed_signature_rejected_by_new() {
        let mut signing = signing();
        signing.seed_signature = "abc".to_string();
        let options = DecoderOptions {
            signing: Some(signing),
            ..DecoderOptions::default()
        };
        let error = ChunkedDecoder::new(options).unwrap_err();
        assert_eq!(error, ChunkedError::InvalidSeedSignature);
    }

    #[test]
    fn error_repeats_after_failure() {
        let mut decoder = ChunkedDecoder::new(DecoderOptions::default()).unwrap();
        let mut out = Vec::new();
        let first = decoder
            .feed(Bytes::from_static(b"zz\r\n"), &mut out)
            .unwrap_err();
        let again = decoder
            .feed(Bytes::from_static(b"0\r\n\r\n"), &mut out)
            .unwrap_err();
        assert_eq!(again, first);
        assert_eq!(decoder.finish().unwrap_err(), first);
        assert!(!decoder.is_done());
    }

    #[test]
    fn failed_feed_appends_nothing() {
        let mut encoder = Encoder::new(Mode::Signed);
        encoder.chunk_size = 8;
        let mut body = encoder.encode(b"aaaaaaaabbbbbbbb");
        let chunk1_data = body.windows(8).position(|w| w == b"bbbbbbbb").unwrap();
        body[chunk1_data + 7] = b'x';
        let mut decoder = ChunkedDecoder::new(encoder.options()).unwrap();
        let mut out = vec![Bytes::from_static(b"earlier")];
        let error = decoder.feed(Bytes::from(body), &mut out).unwrap_err();
        assert_eq!(
            error,
            ChunkedError::ChunkSignatureMismatch { chunk_index: 1 }
        );
        assert_eq!(out, vec![Bytes::from_static(b"earlier")]);
    }

    #[test]
    fn messages_name_the_value() {
        let error = ChunkedError::ChunkTooLarge(MAX_CHUNK_SIZE + 1);
        assert_eq!(
            error.to_string(),
            "chunk size 16777217 exceeds the maximum of 16777216 bytes"
        );
        let error = ChunkedError::InvalidTrailerName("x-amz-checksum-md5".to_string());
        assert!(error.to_string().contains("x-amz-checksum-md5"));
    }
}
