//! S3 object checksums (the `x-amz-checksum-*` values) and the SHA-256 check
//! of a plain payload against `x-amz-content-sha256`.
//!
//! S3 transmits every checksum as the base64 of the big-endian digest bytes:
//! 4 bytes for CRC32 and CRC32C, 8 for CRC64NVME, 20 for SHA1, 32 for SHA256.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use crc_fast::{CrcAlgorithm, Digest as CrcDigest};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;

/// A checksum algorithm that S3 accepts in `x-amz-checksum-*` headers and trailers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// CRC-32/ISO-HDLC, the CRC of zlib and `crc32fast`.
    Crc32,
    /// CRC-32C (Castagnoli, CRC-32/ISCSI).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    Sha1,
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every supported algorithm.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32c,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];

    /// Parses a header or trailer name such as `x-amz-checksum-crc64nvme`,
    /// ignoring ASCII case. Returns `None` for any other name.
    pub fn from_header_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.header_name().eq_ignore_ascii_case(name))
    }

    /// Parses an algorithm name such as `CRC32C`, the value form used by
    /// `x-amz-sdk-checksum-algorithm` and `x-amz-checksum-algorithm`, ignoring
    /// ASCII case.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(name))
    }

    /// Returns the lowercase header name, e.g. `x-amz-checksum-crc32`.
    pub fn header_name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "x-amz-checksum-crc32",
            ChecksumAlgorithm::Crc32c => "x-amz-checksum-crc32c",
            ChecksumAlgorithm::Crc64Nvme => "x-amz-checksum-crc64nvme",
            ChecksumAlgorithm::Sha1 => "x-amz-checksum-sha1",
            ChecksumAlgorithm::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Returns the algorithm name as S3 spells it, e.g. `CRC64NVME`.
    pub fn name(self) -> &'static str {
        match self {
            ChecksumAlgorithm::Crc32 => "CRC32",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Crc64Nvme => "CRC64NVME",
            ChecksumAlgorithm::Sha1 => "SHA1",
            ChecksumAlgorithm::Sha256 => "SHA256",
        }
    }

    /// Returns the digest length in bytes.
    pub fn digest_len(self) -> usize {
        match self {
            ChecksumAlgorithm::Crc32 | ChecksumAlgorithm::Crc32c => 4,
            ChecksumAlgorithm::Crc64Nvme => 8,
            ChecksumAlgorithm::Sha1 => 20,
            ChecksumAlgorithm::Sha256 => 32,
        }
    }
}

impl fmt::Display for ChecksumAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone)]
enum ChecksumState {
    /// CRC32, CRC32C and CRC64NVME, through `crc-fast` (SIMD where the CPU has it).
    Crc(CrcDigest),
    Sha1(Sha1),
    Sha256(Sha256),
}

/// An incremental checksum. Feed data with [`Checksum::update`] in any split,
/// then take the value S3 expects with [`Checksum::finalize_base64`].
#[derive(Clone)]
pub struct Checksum {
    algorithm: ChecksumAlgorithm,
    state: ChecksumState,
}

impl Checksum {
    pub fn new(algorithm: ChecksumAlgorithm) -> Self {
        let state = match algorithm {
            ChecksumAlgorithm::Crc32 => {
                ChecksumState::Crc(CrcDigest::new(CrcAlgorithm::Crc32IsoHdlc))
            }
            ChecksumAlgorithm::Crc32c => {
                ChecksumState::Crc(CrcDigest::new(CrcAlgorithm::Crc32Iscsi))
            }
            ChecksumAlgorithm::Crc64Nvme => {
                ChecksumState::Crc(CrcDigest::new(CrcAlgorithm::Crc64Nvme))
            }
            ChecksumAlgorithm::Sha1 => ChecksumState::Sha1(Sha1::new()),
            ChecksumAlgorithm::Sha256 => ChecksumState::Sha256(Sha256::new()),
        };
        Self { algorithm, state }
    }

    pub fn algorithm(&self) -> ChecksumAlgorithm {
        self.algorithm
    }

    pub fn update(&mut self, data: &[u8]) {
        match &mut self.state {
            ChecksumState::Crc(digest) => digest.update(data),
            ChecksumState::Sha1(hasher) => hasher.update(data),
            ChecksumState::Sha256(hasher) => hasher.update(data),
        }
    }

    /// Returns the big-endian digest bytes, `algorithm().digest_len()` long.
    pub fn finalize_bytes(self) -> Vec<u8> {
        match self.state {
            ChecksumState::Crc(digest) => {
                let value = digest.finalize().to_be_bytes();
                // crc-fast returns every width in a u64, so a 32-bit CRC sits
                // in the low four bytes.
                value[value.len() - self.algorithm.digest_len()..].to_vec()
            }
            ChecksumState::Sha1(hasher) => hasher.finalize().to_vec(),
            ChecksumState::Sha256(hasher) => hasher.finalize().to_vec(),
        }
    }

    /// Returns the checksum as S3 writes it in headers and trailers, in
    /// standard base64 with padding.
    pub fn finalize_base64(self) -> String {
        BASE64.encode(self.finalize_bytes())
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checksum")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// An incremental SHA-256 of a plain (not aws-chunked) payload, compared at
/// the end with the hex digest the client sent in `x-amz-content-sha256`.
#[derive(Clone)]
pub struct PayloadHasher {
    /// `None` when the expected value is not 64 hex digits, so no payload matches.
    expected: Option<[u8; 32]>,
    hasher: Sha256,
}

impl PayloadHasher {
    /// Starts a hash to compare with `expected_hex` (either letter case).
    pub fn new(expected_hex: &str) -> Self {
        let mut expected = [0u8; 32];
        let expected = hex::decode_to_slice(expected_hex, &mut expected)
            .ok()
            .map(|()| expected);
        Self {
            expected,
            hasher: Sha256::new(),
        }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
    }

    /// Returns whether the payload's SHA-256 equals the expected value,
    /// compared in constant time. An expected value that is not 64 hex digits
    /// never matches.
    pub fn matches(self) -> bool {
        let actual = self.hasher.finalize();
        match self.expected {
            Some(expected) => bool::from(actual.as_slice().ct_eq(&expected)),
            None => false,
        }
    }
}

impl fmt::Debug for PayloadHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayloadHasher")
            .field("expected_valid", &self.expected.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECK_INPUT: &[u8] = b"123456789";

    fn checksum_of(algorithm: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
        let mut checksum = Checksum::new(algorithm);
        checksum.update(data);
        checksum.finalize_bytes()
    }

    #[test]
    fn crc32_check_value() {
        let value = checksum_of(ChecksumAlgorithm::Crc32, CHECK_INPUT);
        assert_eq!(value, 0xCBF4_3926u32.to_be_bytes());
    }

    #[test]
    fn crc32c_check_value() {
        let value = checksum_of(ChecksumAlgorithm::Crc32c, CHECK_INPUT);
        assert_eq!(value, 0xE306_9283u32.to_be_bytes());
    }

    #[test]
    fn crc64nvme_check_value() {
        let value = checksum_of(ChecksumAlgorithm::Crc64Nvme, CHECK_INPUT);
        assert_eq!(value, 0xAE8B_1486_0A79_9888u64.to_be_bytes());
    }

    #[test]
    fn sha1_check_value() {
        let value = checksum_of(ChecksumAlgorithm::Sha1, b"abc");
        assert_eq!(
            hex::encode(value),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }

    #[test]
    fn sha256_check_value() {
        let value = checksum_of(ChecksumAlgorithm::Sha256, b"abc");
        assert_eq!(
            hex::encode(value),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base64_is_big_endian_digest() {
        let mut checksum = Checksum::new(ChecksumAlgorithm::Crc32);
        checksum.update(CHECK_INPUT);
        // 0xCBF43926 as big-endian bytes, base64-encoded.
        assert_eq!(checksum.finalize_base64(), "y/Q5Jg==");
    }

    #[test]
    fn empty_input_crc32_is_zero() {
        let checksum = Checksum::new(ChecksumAlgorithm::Crc32);
        assert_eq!(checksum.finalize_base64(), "AAAAAA==");
    }

    #[test]
    fn split_updates_equal_one_update() {
        let data: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        for algorithm in ChecksumAlgorithm::ALL {
            let whole = checksum_of(algorithm, &data);
            let mut split = Checksum::new(algorithm);
            for piece in data.chunks(7) {
                split.update(piece);
            }
            assert_eq!(split.finalize_bytes(), whole, "{algorithm}");
        }
    }

    #[test]
    fn digest_lengths_match_algorithms() {
        for algorithm in ChecksumAlgorithm::ALL {
            let value = checksum_of(algorithm, CHECK_INPUT);
            assert_eq!(value.len(), algorithm.digest_len(), "{algorithm}");
        }
    }

    #[test]
    fn header_names_round_trip() {
        for algorithm in ChecksumAlgorithm::ALL {
            let upper = algorithm.header_name().to_ascii_uppercase();
            assert_eq!(
                ChecksumAlgorithm::from_header_name(algorithm.header_name()),
                Some(algorithm)
            );
            assert_eq!(ChecksumAlgorithm::from_header_name(&upper), Some(algorithm));
        }
    }

    #[test]
    fn algorithm_names_round_trip() {
        for algorithm in ChecksumAlgorithm::ALL {
            let lower = algorithm.name().to_ascii_lowercase();
            assert_eq!(
                ChecksumAlgorithm::from_name(algorithm.name()),
                Some(algorithm)
            );
            assert_eq!(ChecksumAlgorithm::from_name(&lower), Some(algorithm));
        }
    }

    #[test]
    fn unknown_names_are_rejected() {
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-md5"),
            None
        );
        assert_eq!(
            ChecksumAlgorithm::from_header_name("x-amz-checksum-crc"),
            None
        );
        assert_eq!(ChecksumAlgorithm::from_header_name("content-md5"), None);
        assert_eq!(ChecksumAlgorithm::from_name("MD5"), None);
        assert_eq!(ChecksumAlgorithm::from_name(""), None);
    }

    #[test]
    fn payload_hasher_matches_digest() {
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut hasher = PayloadHasher::new(expected);
        hasher.update(b"a");
        hasher.update(b"bc");
        assert!(hasher.matches());
    }

    #[test]
    fn payload_hasher_accepts_uppercase_hex() {
        let expected = "BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD";
        let mut hasher = PayloadHasher::new(expected);
        hasher.update(b"abc");
        assert!(hasher.matches());
    }

    #[test]
    fn payload_hasher_rejects_other_payload() {
        let expected = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let mut hasher = PayloadHasher::new(expected);
        hasher.update(b"abd");
        assert!(!hasher.matches());
    }

    #[test]
    fn payload_hasher_rejects_invalid_expected() {
        let mut hasher = PayloadHasher::new("UNSIGNED-PAYLOAD");
        hasher.update(b"abc");
        assert!(!hasher.matches());
    }

    #[test]
    fn payload_hasher_empty_payload() {
        let expected = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert!(PayloadHasher::new(expected).matches());
    }
}

/// Returns the base64 MD5 digest of `body`, the value of a Content-MD5 header.
pub fn content_md5(body: &[u8]) -> String {
    use base64::Engine;
    use md5::Digest;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body))
}

#[cfg(test)]
mod content_md5_tests {
    #[test]
    fn md5_of_known_text() {
        // RFC 1321 test suite: MD5("abc") = 900150983cd24fb0d6963f7d28e17f72.
        assert_eq!(super::content_md5(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }
}
