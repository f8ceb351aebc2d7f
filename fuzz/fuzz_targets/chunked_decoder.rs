//! Feeds aws-chunked bodies to `ChunkedDecoder` in every mode, split into
//! pieces at arbitrary places.
//!
//! A body is either raw fuzz bytes or a valid encoding (correct chunk
//! signatures, trailer checksum and trailer signature) of fuzz-chosen chunks,
//! optionally with one byte changed afterwards, so the fuzzer reaches the
//! states behind a valid signature chain too.
//!
//! Checked besides "never panics":
//! - the outcome does not depend on how the body is split: the same decoded
//!   bytes, or the same error;
//! - a valid body that was not changed decodes to exactly its chunks' data;
//! - after success, `decoded_len` equals the number of bytes returned.

#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use osp_core::checksum::{Checksum, ChecksumAlgorithm};
use osp_core::chunked::{ChunkSigning, ChunkedDecoder, ChunkedError, DecoderOptions};
use sha2::{Digest, Sha256};

const AMZ_DATE: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const SIGNING_KEY: [u8; 32] = [7; 32];
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

#[derive(Debug, Clone, Copy, Arbitrary)]
enum Mode {
    /// aws-chunked framing with neither signatures nor trailer.
    Plain,
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD
    Signed,
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
    SignedTrailer,
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER
    UnsignedTrailer,
}

impl Mode {
    fn signed(self) -> bool {
        matches!(self, Mode::Signed | Mode::SignedTrailer)
    }

    fn trailer(self) -> bool {
        matches!(self, Mode::SignedTrailer | Mode::UnsignedTrailer)
    }
}

/// The x-amz-trailer header.
#[derive(Debug, Arbitrary)]
enum TrailerName {
    Absent,
    /// Index into `ChecksumAlgorithm::ALL`.
    Algorithm(u8),
    Raw(String),
}

/// The x-amz-decoded-content-length header.
#[derive(Debug, Arbitrary)]
enum DecodedLength {
    Absent,
    /// The length of the data a built body encodes; absent for raw bodies.
    Exact,
    Value(u64),
}

#[derive(Debug, Arbitrary)]
enum Body {
    Raw(Vec<u8>),
    Built {
        chunks: Vec<Vec<u8>>,
        /// XORs the byte at this position (modulo the length) with the mask.
        change: Option<(u32, u8)>,
        /// Replaces the correct checksum value in the trailer.
        checksum_value: Option<String>,
        /// Appends the extra CRLF that some clients send.
        extra_crlf: bool,
    },
}

#[derive(Debug, Arbitrary)]
struct Input {
    mode: Mode,
    trailer_name: TrailerName,
    decoded_length: DecodedLength,
    /// Piece sizes; the last piece takes the rest.
    splits: Vec<u16>,
    body: Body,
}

type HmacSha256 = Hmac<Sha256>;

fn hmac_hex(message: &[u8]) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&SIGNING_KEY).expect("any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// Encodes `chunks` as a valid body of `mode`, with a trailer for `algorithm`.
fn encode(
    mode: Mode,
    chunks: &[Vec<u8>],
    algorithm: Option<ChecksumAlgorithm>,
    checksum_value: Option<&str>,
) -> Vec<u8> {
    let mut body = Vec::new();
    let mut previous = SEED.to_string();
    let mut checksum = algorithm.map(Checksum::new);
    let final_chunk: &[u8] = &[];
    for chunk in chunks.iter().map(Vec::as_slice).chain([final_chunk]) {
        if let Some(checksum) = checksum.as_mut() {
            checksum.update(chunk);
        }
        if mode.signed() {
            let string_to_sign = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{EMPTY_SHA256}\n{}",
                hex::encode(Sha256::digest(chunk))
            );
            previous = hmac_hex(string_to_sign.as_bytes());
            body.extend(format!("{:x};chunk-signature={previous}\r\n", chunk.len()).bytes());
        } else {
            body.extend(format!("{:x}\r\n", chunk.len()).bytes());
        }
        if !chunk.is_empty() {
            body.extend(chunk);
            body.extend(b"\r\n");
        }
    }
    if mode.trailer() {
        let mut lines = String::new();
        if let (Some(algorithm), Some(checksum)) = (algorithm, checksum) {
            let value = checksum_value
                .map(str::to_string)
                .unwrap_or_else(|| checksum.finalize_base64());
            lines = format!("{}:{value}\n", algorithm.header_name());
        }
        body.extend(lines.replace('\n', "\r\n").bytes());
        if mode.signed() {
            let string_to_sign = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{}",
                hex::encode(Sha256::digest(lines.as_bytes()))
            );
            let signature = hmac_hex(string_to_sign.as_bytes());
            body.extend(format!("x-amz-trailer-signature:{signature}\r\n").bytes());
        }
    }
    body.extend(b"\r\n");
    body
}

/// Decodes `body` fed in pieces of the given sizes.
fn decode(options: &DecoderOptions, body: &Bytes, splits: &[u16]) -> Result<Vec<u8>, ChunkedError> {
    let mut decoder = ChunkedDecoder::new(options.clone())?;
    let mut out = Vec::new();
    let mut start = 0;
    for &size in splits {
        if start >= body.len() {
            break;
        }
        let end = (start + usize::from(size)).min(body.len());
        decoder.feed(body.slice(start..end), &mut out)?;
        start = end;
    }
    if start < body.len() {
        decoder.feed(body.slice(start..), &mut out)?;
    }
    decoder.finish()?;
    let data: Vec<u8> = out.iter().flat_map(|piece| piece.iter().copied()).collect();
    assert_eq!(decoder.decoded_len(), data.len() as u64);
    assert!(decoder.is_done());
    Ok(data)
}

fuzz_target!(|input: Input| {
    let algorithm = match &input.trailer_name {
        TrailerName::Algorithm(index) => {
            let all = ChecksumAlgorithm::ALL;
            Some(all[usize::from(*index) % all.len()])
        }
        _ => None,
    };
    let expected_trailer = match &input.trailer_name {
        TrailerName::Absent => None,
        TrailerName::Algorithm(_) => algorithm.map(|a| a.header_name().to_string()),
        TrailerName::Raw(name) => Some(name.clone()),
    };

    // A data chunk may not be empty: an empty chunk is the final one.
    let mut intact = None;
    let body = match &input.body {
        Body::Raw(bytes) => bytes.clone(),
        Body::Built {
            chunks,
            change,
            checksum_value,
            extra_crlf,
        } => {
            let chunks: Vec<Vec<u8>> = chunks.iter().filter(|c| !c.is_empty()).cloned().collect();
            let mut body = encode(input.mode, &chunks, algorithm, checksum_value.as_deref());
            if *extra_crlf {
                body.extend(b"\r\n");
            }
            let changed = match change {
                Some((position, mask)) if *mask != 0 => {
                    let index = *position as usize % body.len();
                    body[index] ^= mask;
                    true
                }
                _ => false,
            };
            if !changed && checksum_value.is_none() {
                intact = Some(chunks.concat());
            }
            body
        }
    };

    let decoded_length = match input.decoded_length {
        DecodedLength::Absent => None,
        DecodedLength::Exact => intact.as_ref().map(|data| data.len() as u64),
        DecodedLength::Value(value) => Some(value),
    };
    let options = DecoderOptions {
        signing: input.mode.signed().then(|| ChunkSigning {
            signing_key: SIGNING_KEY,
            amz_date: AMZ_DATE.to_string(),
            scope: SCOPE.to_string(),
            seed_signature: SEED.to_string(),
        }),
        trailer: input.mode.trailer(),
        expected_trailer,
        decoded_length,
    };

    let body = Bytes::from(body);
    let whole = decode(&options, &body, &[]);
    let split = decode(&options, &body, &input.splits);
    assert_eq!(
        whole, split,
        "the outcome depends on where the body was split"
    );

    let consistent_length = matches!(
        input.decoded_length,
        DecodedLength::Absent | DecodedLength::Exact
    );
    let consistent_trailer = match &input.trailer_name {
        TrailerName::Algorithm(_) => input.mode.trailer(),
        TrailerName::Absent => true,
        TrailerName::Raw(_) => false,
    };
    if let (Some(data), true, true) = (&intact, consistent_length, consistent_trailer) {
        assert_eq!(whole.as_ref(), Ok(data), "a valid body failed to decode");
    }
});
