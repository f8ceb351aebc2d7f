//! Encoder of aws-chunked request bodies, for backends that take an upload in
//! the client's streaming format instead of plain bytes.
//!
//! The encoder frames the verified payload again in chunks of
//! [`ENCODED_CHUNK_SIZE`] bytes, whatever chunk sizes the client picked, so
//! the framed length is known from the decoded length before the body starts
//! and memory stays bounded by one chunk. In the signed modes every chunk and
//! the trailer are signed with the backend's key, chained from the backend
//! request's own signature.

use bytes::{BufMut, BytesMut};
use sha2::Digest as _;

use super::{
    hex_array, ChunkSigner, ChunkSigning, ChunkedError, CHUNK_SIGNATURE_EXTENSION,
    TRAILER_SIGNATURE_NAME,
};
use crate::checksum::ChecksumAlgorithm;

/// Size of every chunk the encoder writes except the last data chunk, as in
/// the 64 KiB example of AWS's SigV4 streaming upload documentation.
pub const ENCODED_CHUNK_SIZE: usize = 64 * 1024;

/// Length of `;chunk-signature=` followed by 64 hex digits.
const SIGNATURE_EXTENSION_LEN: u64 = 1 + CHUNK_SIGNATURE_EXTENSION.len() as u64 + 1 + 64;

/// Incremental aws-chunked encoder of one body.
pub struct ChunkedEncoder {
    signer: Option<ChunkSigner>,
    /// True for the two `*-TRAILER` modes.
    trailer: bool,
    /// The checksum the trailer carries, named by `x-amz-trailer`.
    checksum: Option<ChecksumAlgorithm>,
    /// Payload not yet written as a chunk, shorter than one chunk.
    pending: BytesMut,
}

impl std::fmt::Debug for ChunkedEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkedEncoder")
            .field("signed", &self.signer.is_some())
            .field("trailer", &self.trailer)
            .field("checksum", &self.checksum)
            .field("pending", &self.pending.len())
            .finish()
    }
}

impl ChunkedEncoder {
    /// Creates an encoder. `signing` contains the backend's key and the backend
    /// request's signature for the two signed modes, and is None for
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`. `checksum` is the trailer checksum
    /// and requires `trailer`.
    pub fn new(
        signing: Option<ChunkSigning>,
        trailer: bool,
        checksum: Option<ChecksumAlgorithm>,
    ) -> Result<Self, ChunkedError> {
        if let (Some(algorithm), false) = (checksum, trailer) {
            return Err(ChunkedError::TrailerNotAllowed(
                algorithm.header_name().to_string(),
            ));
        }
        Ok(Self {
            signer: signing.map(ChunkSigner::new).transpose()?,
            trailer,
            checksum,
            pending: BytesMut::new(),
        })
    }

    /// Returns the length of the encoded body of a payload of `decoded_len`
    /// bytes: the Content-Length of the backend request.
    pub fn encoded_len(&self, decoded_len: u64) -> u64 {
        let chunk_size = ENCODED_CHUNK_SIZE as u64;
        let full_chunks = decoded_len / chunk_size;
        let last = decoded_len % chunk_size;
        let mut total = full_chunks * self.chunk_len(chunk_size);
        if last > 0 {
            total += self.chunk_len(last);
        }
        total + self.final_chunk_len()
    }

    /// Appends `data` to the body, writing every chunk it completes to `out`.
    pub fn push(&mut self, mut data: &[u8], out: &mut BytesMut) {
        while !data.is_empty() {
            let take = (ENCODED_CHUNK_SIZE - self.pending.len()).min(data.len());
            if self.pending.is_empty() && take == ENCODED_CHUNK_SIZE {
                self.write_chunk(&data[..take], out);
            } else {
                self.pending.extend_from_slice(&data[..take]);
                if self.pending.len() == ENCODED_CHUNK_SIZE {
                    let chunk = self.pending.split();
                    self.write_chunk(&chunk, out);
                }
            }
            data = &data[take..];
        }
    }

    /// Writes the rest of the body to `out`: the last data chunk, the final
    /// empty chunk and the trailer with `checksum_value`, the verified base64
    /// value of the trailer checksum.
    pub fn finish(
        &mut self,
        checksum_value: Option<&str>,
        out: &mut BytesMut,
    ) -> Result<(), ChunkedError> {
        let line = match (self.checksum, checksum_value) {
            (Some(algorithm), Some(value)) => Some(format!("{}:{value}", algorithm.header_name())),
            (Some(algorithm), None) => {
                return Err(ChunkedError::MissingTrailer(
                    algorithm.header_name().to_string(),
                ))
            }
            (None, _) => None,
        };
        if !self.pending.is_empty() {
            let chunk = self.pending.split();
            self.write_chunk(&chunk, out);
        }
        self.write_chunk(&[], out);
        if self.trailer {
            if let Some(line) = &line {
                out.put_slice(line.as_bytes());
                out.put_slice(b"\r\n");
            }
            if let Some(signer) = &self.signer {
                let mut hasher = sha2::Sha256::new();
                if let Some(line) = &line {
                    hasher.update(line.as_bytes());
                    hasher.update(b"\n");
                }
                let signature = signer.sign_trailer(hasher.finalize().into());
                out.put_slice(TRAILER_SIGNATURE_NAME.as_bytes());
                out.put_u8(b':');
                out.put_slice(&hex_array(&signature));
                out.put_slice(b"\r\n");
            }
        }
        out.put_slice(b"\r\n");
        Ok(())
    }

    /// Writes one chunk: its header, and its data with the closing CRLF unless
    /// it is the final empty chunk.
    fn write_chunk(&mut self, data: &[u8], out: &mut BytesMut) {
        out.reserve(data.len() + 100);
        out.put_slice(format!("{:x}", data.len()).as_bytes());
        if let Some(signer) = &mut self.signer {
            signer.chunk_hasher.update(data);
            let signature = signer.sign_chunk();
            out.put_u8(b';');
            out.put_slice(CHUNK_SIGNATURE_EXTENSION.as_bytes());
            out.put_u8(b'=');
            out.put_slice(&hex_array(&signature));
        }
        out.put_slice(b"\r\n");
        if !data.is_empty() {
            out.put_slice(data);
            out.put_slice(b"\r\n");
        }
    }

    /// Encoded length of a chunk of `size` data bytes.
    fn chunk_len(&self, size: u64) -> u64 {
        hex_digits(size) + self.extension_len() + 2 + size + 2
    }

    /// Encoded length of the final empty chunk and the trailer section.
    fn final_chunk_len(&self) -> u64 {
        let mut total = 1 + self.extension_len() + 2;
        if self.trailer {
            if let Some(algorithm) = self.checksum {
                let base64_len = (algorithm.digest_len() as u64).div_ceil(3) * 4;
                total += algorithm.header_name().len() as u64 + 1 + base64_len + 2;
            }
            if self.signer.is_some() {
                total += TRAILER_SIGNATURE_NAME.len() as u64 + 1 + 64 + 2;
            }
        }
        total + 2
    }

    fn extension_len(&self) -> u64 {
        if self.signer.is_some() {
            SIGNATURE_EXTENSION_LEN
        } else {
            0
        }
    }
}

/// Number of lowercase hex digits of `value`.
fn hex_digits(value: u64) -> u64 {
    u64::from((64 - value.leading_zeros()).div_ceil(4).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum::Checksum;
    use crate::chunked::{ChunkedDecoder, DecoderOptions};
    use bytes::Bytes;

    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

    fn signing() -> ChunkSigning {
        ChunkSigning {
            signing_key: [7u8; 32],
            amz_date: "20130524T000000Z".into(),
            scope: "20130524/us-east-1/s3/aws4_request".into(),
            seed_signature: SEED.into(),
        }
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 251) as u8).collect()
    }

    /// Encodes `data` pushed in pieces of `piece_len`, checks the length
    /// against `encoded_len`, and decodes it again with the same key.
    fn round_trip(
        signed: bool,
        checksum: Option<ChecksumAlgorithm>,
        trailer: bool,
        data: &[u8],
        piece_len: usize,
    ) {
        let mut encoder = ChunkedEncoder::new(signed.then(signing), trailer, checksum).unwrap();
        let mut out = BytesMut::new();
        for piece in data.chunks(piece_len.max(1)) {
            encoder.push(piece, &mut out);
            assert!(
                encoder.pending.len() < ENCODED_CHUNK_SIZE,
                "at most one chunk is held"
            );
        }
        let value = checksum.map(|algorithm| {
            let mut running = Checksum::new(algorithm);
            running.update(data);
            running.finalize_base64()
        });
        encoder.finish(value.as_deref(), &mut out).unwrap();
        assert_eq!(
            out.len() as u64,
            encoder.encoded_len(data.len() as u64),
            "declared length matches"
        );

        let mut decoder = ChunkedDecoder::new(DecoderOptions {
            signing: signed.then(signing),
            trailer,
            expected_trailer: checksum.map(|algorithm| algorithm.header_name().to_string()),
            decoded_length: Some(data.len() as u64),
        })
        .unwrap();
        let mut decoded = Vec::new();
        decoder
            .feed(Bytes::from(out.to_vec()), &mut decoded)
            .unwrap();
        let trailer_value = decoder.finish().unwrap();
        assert_eq!(decoded.concat(), data);
        assert_eq!(trailer_value.map(|(_, value)| value), value);
    }

    #[test]
    fn every_mode_round_trips_through_the_decoder() {
        for len in [
            0,
            1,
            ENCODED_CHUNK_SIZE - 1,
            ENCODED_CHUNK_SIZE,
            ENCODED_CHUNK_SIZE + 1,
            3 * ENCODED_CHUNK_SIZE + 17,
        ] {
            let data = payload(len);
            for piece_len in [1000, ENCODED_CHUNK_SIZE, 200_000] {
                round_trip(true, None, false, &data, piece_len);
                round_trip(true, None, true, &data, piece_len);
                round_trip(false, None, true, &data, piece_len);
                for algorithm in ChecksumAlgorithm::ALL {
                    round_trip(true, Some(algorithm), true, &data, piece_len);
                    round_trip(false, Some(algorithm), true, &data, piece_len);
                }
            }
        }
    }

    #[test]
    fn chunks_have_the_fixed_size() {
        let mut encoder = ChunkedEncoder::new(None, true, None).unwrap();
        let mut out = BytesMut::new();
        encoder.push(&payload(ENCODED_CHUNK_SIZE + 5), &mut out);
        assert!(out.starts_with(b"10000\r\n"));
        assert_eq!(
            out.len(),
            7 + ENCODED_CHUNK_SIZE + 2,
            "the 5 extra bytes wait for more data"
        );
        let full_chunk_end = out.len();
        encoder.finish(None, &mut out).unwrap();
        let rest = &out[full_chunk_end..];
        assert!(
            rest.starts_with(b"5\r\n"),
            "the last data chunk holds the 5 bytes"
        );
        assert!(rest.ends_with(b"\r\n0\r\n\r\n"));
        assert_eq!(rest.len(), 3 + 5 + 2 + 5);
    }

    #[test]
    fn signed_empty_body_matches_aws_format() {
        let mut encoder = ChunkedEncoder::new(Some(signing()), false, None).unwrap();
        let mut out = BytesMut::new();
        encoder.finish(None, &mut out).unwrap();
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("0;chunk-signature="), "{text}");
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(text.len(), 1 + 17 + 64 + 4);
    }

    #[test]
    fn missing_checksum_value_rejected() {
        let mut encoder = ChunkedEncoder::new(None, true, Some(ChecksumAlgorithm::Crc32)).unwrap();
        let mut out = BytesMut::new();
        assert_eq!(
            encoder.finish(None, &mut out).unwrap_err(),
            ChunkedError::MissingTrailer("x-amz-checksum-crc32".into())
        );
    }

    #[test]
    fn checksum_without_trailer_rejected() {
        assert!(
            ChunkedEncoder::new(Some(signing()), false, Some(ChecksumAlgorithm::Sha256)).is_err()
        );
    }

    #[test]
    fn hex_digits_counts() {
        assert_eq!(hex_digits(0), 1);
        assert_eq!(hex_digits(15), 1);
        assert_eq!(hex_digits(16), 2);
        assert_eq!(hex_digits(0x10000), 5);
    }
}
