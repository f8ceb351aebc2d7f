//! Throughput of aws-chunked decoding compared with plain SHA-256 over the
//! same bytes, which is what the proxy computes for a body signed with a hex
//! payload hash.
//!
//! Run with `cargo bench -p osp-core --bench chunked`. `OSP_BENCH_MIB` sets
//! the payload size (default 256 MiB) and `OSP_BENCH_ROUNDS` the number of
//! rounds per case (default 3; the fastest round counts).
//!
//! The body is fed in 64 KiB pieces, the size of a typical socket read, which
//! do not line up with the 64 KiB chunks because of the chunk headers.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use osp_core::checksum::{Checksum, ChecksumAlgorithm};
use osp_core::chunked::{ChunkSigning, ChunkedDecoder, DecoderOptions};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;
const CHUNK_SIZE: usize = 64 * 1024;
const PIECE_SIZE: usize = 64 * 1024;
/// The proxy's target: signed chunks at no less than this share of plain SHA-256.
const SIGNED_TARGET_RATIO: f64 = 0.8;

const AMZ_DATE: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const SIGNING_KEY: [u8; 32] = [0x5a; 32];

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .filter(|&value| value > 0)
        .unwrap_or(default)
}

/// Returns deterministic pseudo-random bytes (xorshift64), so runs are comparable.
fn payload(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    data.truncate(len);
    data
}

fn hmac_hex(message: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&SIGNING_KEY).expect("any key length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Encodes `data` in 64 KiB chunks: signed when `signed`, with a trailer for
/// `trailer` when given.
fn encode(data: &[u8], signed: bool, trailer: Option<ChecksumAlgorithm>) -> Vec<u8> {
    let mut body = Vec::with_capacity(data.len() + data.len() / CHUNK_SIZE * 100 + 200);
    let mut previous = SEED.to_string();
    let final_chunk: &[u8] = &[];
    for chunk in data.chunks(CHUNK_SIZE).chain([final_chunk]) {
        if signed {
            let string_to_sign = format!(
                "AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{EMPTY_SHA256}\n{}",
                hex::encode(Sha256::digest(chunk))
            );
            previous = hmac_hex(&string_to_sign);
            body.extend(format!("{:x};chunk-signature={previous}\r\n", chunk.len()).bytes());
        } else {
            body.extend(format!("{:x}\r\n", chunk.len()).bytes());
        }
        if !chunk.is_empty() {
            body.extend_from_slice(chunk);
            body.extend_from_slice(b"\r\n");
        }
    }
    if let Some(algorithm) = trailer {
        let mut checksum = Checksum::new(algorithm);
        checksum.update(data);
        let line = format!(
            "{}:{}\n",
            algorithm.header_name(),
            checksum.finalize_base64()
        );
        body.extend(line.replace('\n', "\r\n").bytes());
        if signed {
            let string_to_sign = format!(
                "AWS4-HMAC-SHA256-TRAILER\n{AMZ_DATE}\n{SCOPE}\n{previous}\n{}",
                hex::encode(Sha256::digest(line.as_bytes()))
            );
            body.extend(
                format!("x-amz-trailer-signature:{}\r\n", hmac_hex(&string_to_sign)).bytes(),
            );
        }
    }
    body.extend_from_slice(b"\r\n");
    body
}

/// Runs `work` `rounds` times and returns the fastest duration.
fn fastest(rounds: usize, mut work: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .min()
        .expect("at least one round")
}

fn decode_all(options: &DecoderOptions, body: &Bytes, expected_len: usize) {
    let mut decoder = ChunkedDecoder::new(options.clone()).expect("valid options");
    let mut out = Vec::with_capacity(4);
    let mut decoded = 0;
    let mut start = 0;
    while start < body.len() {
        let end = (start + PIECE_SIZE).min(body.len());
        decoder
            .feed(body.slice(start..end), &mut out)
            .expect("the encoded body is valid");
        decoded += out.iter().map(Bytes::len).sum::<usize>();
        black_box(&out);
        out.clear();
        start = end;
    }
    decoder.finish().expect("the encoded body is valid");
    assert_eq!(decoded, expected_len);
}

struct Case {
    name: &'static str,
    signed: bool,
    trailer: Option<ChecksumAlgorithm>,
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and a
    // quick build check is all it needs.
    let benchmarking = std::env::args().any(|arg| arg == "--bench");
    let mib = if benchmarking {
        env_number("OSP_BENCH_MIB", 256)
    } else {
        4
    };
    let rounds = if benchmarking {
        env_number("OSP_BENCH_ROUNDS", 3)
    } else {
        1
    };
    let data = payload(mib * MIB);
    let seconds_to_mib_s = |elapsed: Duration| mib as f64 / elapsed.as_secs_f64();

    let sha256_time = fastest(rounds, || {
        black_box(Sha256::digest(black_box(&data)));
    });
    let sha256_rate = seconds_to_mib_s(sha256_time);

    let cases = [
        Case {
            name: "signed chunks (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)",
            signed: true,
            trailer: None,
        },
        Case {
            name: "signed chunks + CRC32 trailer (…-PAYLOAD-TRAILER)",
            signed: true,
            trailer: Some(ChecksumAlgorithm::Crc32),
        },
        Case {
            name: "unsigned, CRC32 trailer",
            signed: false,
            trailer: Some(ChecksumAlgorithm::Crc32),
        },
        Case {
            name: "unsigned, CRC32C trailer",
            signed: false,
            trailer: Some(ChecksumAlgorithm::Crc32c),
        },
        Case {
            name: "unsigned, CRC64NVME trailer",
            signed: false,
            trailer: Some(ChecksumAlgorithm::Crc64Nvme),
        },
        Case {
            name: "unsigned, SHA1 trailer",
            signed: false,
            trailer: Some(ChecksumAlgorithm::Sha1),
        },
        Case {
            name: "unsigned, SHA256 trailer",
            signed: false,
            trailer: Some(ChecksumAlgorithm::Sha256),
        },
    ];

    if !benchmarking {
        println!("build check without --bench: the numbers below are not a measurement; run `cargo bench`");
    }
    println!("aws-chunked decoding, {mib} MiB in {} KiB chunks fed in {} KiB pieces, fastest of {rounds}", CHUNK_SIZE / 1024, PIECE_SIZE / 1024);
    println!();
    println!("| case | MiB/s | ratio to SHA-256 |");
    println!("| --- | ---: | ---: |");
    println!("| raw SHA-256 (hex x-amz-content-sha256) | {sha256_rate:.0} | 1.00 |");
    let mut signed_ratio = None;
    for case in &cases {
        let body = Bytes::from(encode(&data, case.signed, case.trailer));
        let options = DecoderOptions {
            signing: case.signed.then(|| ChunkSigning {
                signing_key: SIGNING_KEY,
                amz_date: AMZ_DATE.to_string(),
                scope: SCOPE.to_string(),
                seed_signature: SEED.to_string(),
            }),
            trailer: case.trailer.is_some(),
            expected_trailer: case
                .trailer
                .map(|algorithm| algorithm.header_name().to_string()),
            decoded_length: Some(data.len() as u64),
        };
        let elapsed = fastest(rounds, || decode_all(&options, &body, data.len()));
        let rate = seconds_to_mib_s(elapsed);
        let ratio = rate / sha256_rate;
        if case.signed && case.trailer.is_none() {
            signed_ratio = Some(ratio);
        }
        println!("| {} | {rate:.0} | {ratio:.2} |", case.name);
    }
    if let Some(ratio) = signed_ratio {
        let verdict = if ratio >= SIGNED_TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        };
        println!();
        println!(
            "signed chunks at {ratio:.2}x raw SHA-256: target {SIGNED_TARGET_RATIO}x {verdict}"
        );
    }
}
