//! Request body checks that run while the body streams to the backend.
//!
//! Every check holds back the most recent piece of forwarded data until the
//! end of the body has been verified, so a backend never receives a complete
//! body that failed its check: on failure the upstream request is aborted
//! with bytes still missing, and the backend discards it.

use bytes::{Bytes, BytesMut};
use osp_core::checksum::{Checksum, ChecksumAlgorithm, PayloadHasher};
use osp_core::chunked::{ChunkedDecoder, ChunkedEncoder, DecoderOptions};
use osp_core::s3::S3Error;

/// The framing of the request body.
enum Framing {
    /// Plain bytes, forwarded as they are.
    Plain,
    /// aws-chunked: decoded while it streams, with chunk signatures, trailer
    /// checksum and decoded length verified by the decoder.
    Chunked {
        options: DecoderOptions,
        decoder: Box<ChunkedDecoder>,
        decoded: Vec<Bytes>,
    },
}

/// A checksum the client sent as an `x-amz-checksum-*` header, checked over
/// the (decoded) payload.
struct HeaderChecksum {
    algorithm: ChecksumAlgorithm,
    expected_base64: String,
    running: Checksum,
}

/// The checks the proxy runs on a request body, chosen from the signed
/// x-amz-content-sha256 value and the checksum headers.
pub struct BodyCheck {
    framing: Framing,
    /// The signed hex SHA-256 of a plain payload.
    sha256: Option<(String, PayloadHasher)>,
    checksum: Option<HeaderChecksum>,
    /// Frames the decoded payload again for a backend that takes the
    /// client's streaming mode; None forwards the decoded bytes.
    encoder: Option<ChunkedEncoder>,
    held: HeldBack,
}

impl BodyCheck {
    /// A plain body whose SHA-256 must equal `expected_hex`, when given.
    pub fn plain(expected_hex: Option<&str>) -> Self {
        Self {
            framing: Framing::Plain,
            sha256: expected_hex.map(|hex| (hex.to_string(), PayloadHasher::new(hex))),
            checksum: None,
            encoder: None,
            held: HeldBack::default(),
        }
    }

    /// Creates the check of an aws-chunked body, decoded as it streams.
    pub fn chunked(options: DecoderOptions) -> Result<Self, S3Error> {
        Ok(Self {
            framing: Framing::Chunked {
                decoder: Box::new(ChunkedDecoder::new(options.clone())?),
                options,
                decoded: Vec::new(),
            },
            sha256: None,
            checksum: None,
            encoder: None,
            held: HeldBack::default(),
        })
    }

    /// Also checks the payload against an `x-amz-checksum-*` header value.
    pub fn with_checksum(mut self, algorithm: ChecksumAlgorithm, expected_base64: &str) -> Self {
        self.checksum = Some(HeaderChecksum {
            algorithm,
            expected_base64: expected_base64.to_string(),
            running: Checksum::new(algorithm),
        });
        self
    }

    /// Forwards the verified payload framed by `encoder` instead of decoded,
    /// for this attempt.
    pub fn reframe(&mut self, encoder: ChunkedEncoder) {
        self.encoder = Some(encoder);
    }

    /// Processes one piece of the body as it arrives. Replaces `body` with the
    /// bytes to forward now: possibly empty, never `None` before the end,
    /// because pingora treats `None` as the end of the upstream body.
    pub fn process(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
    ) -> Result<(), S3Error> {
        let piece = body.take().unwrap_or_default();
        let payload = match &mut self.framing {
            Framing::Plain => piece,
            Framing::Chunked {
                decoder, decoded, ..
            } => {
                decoded.clear();
                if !piece.is_empty() {
                    decoder.feed(piece, decoded)?;
                }
                concat(decoded)
            }
        };
        if let Some((_, hasher)) = self.sha256.as_mut() {
            hasher.update(&payload);
        }
        if let Some(checksum) = self.checksum.as_mut() {
            checksum.running.update(&payload);
        }
        let mut framed = BytesMut::new();
        if let Some(encoder) = self.encoder.as_mut() {
            encoder.push(&payload, &mut framed);
        }
        if !end_of_stream {
            let forward = if self.encoder.is_some() {
                framed.freeze()
            } else {
                payload
            };
            *body = Some(if forward.is_empty() {
                Bytes::new()
            } else {
                self.held.swap(forward)
            });
            return Ok(());
        }
        let trailer = self.verify_end()?;
        let forward = match self.encoder.as_mut() {
            Some(encoder) => {
                let checksum_value = trailer.as_ref().map(|(_, value)| value.as_str());
                encoder.finish(checksum_value, &mut framed)?;
                framed.freeze()
            }
            None => payload,
        };
        *body = Some(join(self.held.take(), forward));
        Ok(())
    }

    /// Runs the checks that need the whole body, and returns the verified
    /// trailer checksum of an aws-chunked body that had one.
    fn verify_end(&mut self) -> Result<Option<(ChecksumAlgorithm, String)>, S3Error> {
        let trailer = match &mut self.framing {
            Framing::Chunked { decoder, .. } => decoder.finish()?,
            Framing::Plain => None,
        };
        if let Some((expected, hasher)) = self.sha256.as_mut() {
            let hasher = std::mem::replace(hasher, PayloadHasher::new(expected));
            if !hasher.matches() {
                return Err(S3Error::content_sha256_mismatch());
            }
        }
        if let Some(checksum) = self.checksum.as_mut() {
            let running =
                std::mem::replace(&mut checksum.running, Checksum::new(checksum.algorithm));
            if running.finalize_base64() != checksum.expected_base64 {
                return Err(S3Error::new(
                    400,
                    "BadDigest",
                    format!(
                        "The {} you specified did not match the calculated checksum.",
                        checksum.algorithm.header_name()
                    ),
                ));
            }
        }
        Ok(trailer)
    }

    /// Starts over for a new attempt: pingora replays the body from its start
    /// when it retries a backend connection.
    pub fn restart(&mut self) {
        if let Framing::Chunked {
            options,
            decoder,
            decoded,
        } = &mut self.framing
        {
            if let Ok(fresh) = ChunkedDecoder::new(options.clone()) {
                **decoder = fresh;
            }
            decoded.clear();
        }
        if let Some((expected, hasher)) = self.sha256.as_mut() {
            *hasher = PayloadHasher::new(expected);
        }
        if let Some(checksum) = self.checksum.as_mut() {
            checksum.running = Checksum::new(checksum.algorithm);
        }
        self.encoder = None;
        self.held = HeldBack::default();
    }
}

/// The piece of forwarded data held back until the body is verified.
#[derive(Default)]
struct HeldBack(Option<Bytes>);

impl HeldBack {
    /// Holds `piece` and returns the piece held before it, if any.
    fn swap(&mut self, piece: Bytes) -> Bytes {
        self.0.replace(piece).unwrap_or_default()
    }

    fn take(&mut self) -> Bytes {
        self.0.take().unwrap_or_default()
    }
}

/// Joins decoded pieces into one buffer; a single piece is passed on without copying.
fn concat(pieces: &mut Vec<Bytes>) -> Bytes {
    match pieces.len() {
        0 => Bytes::new(),
        1 => pieces.pop().unwrap_or_default(),
        _ => {
            let total = pieces.iter().map(Bytes::len).sum();
            let mut joined = BytesMut::with_capacity(total);
            for piece in pieces.drain(..) {
                joined.extend_from_slice(&piece);
            }
            joined.freeze()
        }
    }
}

fn join(first: Bytes, second: Bytes) -> Bytes {
    if first.is_empty() {
        return second;
    }
    if second.is_empty() {
        return first;
    }
    let mut joined = BytesMut::with_capacity(first.len() + second.len());
    joined.extend_from_slice(&first);
    joined.extend_from_slice(&second);
    joined.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use osp_core::sigv4::sha256_hex;

    fn run(check: &mut BodyCheck, pieces: &[&[u8]]) -> Result<Vec<u8>, S3Error> {
        let mut forwarded = Vec::new();
        for (index, piece) in pieces.iter().enumerate() {
            let mut body = Some(Bytes::copy_from_slice(piece));
            check.process(&mut body, index + 1 == pieces.len())?;
            forwarded.extend_from_slice(&body.expect("never None"));
        }
        Ok(forwarded)
    }

    #[test]
    fn sha256_forwards_all_bytes_when_hash_matches() {
        let mut check = BodyCheck::plain(Some(&sha256_hex(b"hello world")));
        assert_eq!(
            run(&mut check, &[b"hello", b" ", b"world"]).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn sha256_holds_back_last_piece_until_verified() {
        let mut check = BodyCheck::plain(Some(&sha256_hex(b"abc")));
        let mut body = Some(Bytes::from_static(b"a"));
        check.process(&mut body, false).unwrap();
        assert_eq!(body.unwrap(), Bytes::new(), "the first piece is held back");
        let mut body = Some(Bytes::from_static(b"b"));
        check.process(&mut body, false).unwrap();
        assert_eq!(body.unwrap(), Bytes::from_static(b"a"));
    }

    #[test]
    fn sha256_mismatch_rejected_at_end() {
        let mut check = BodyCheck::plain(Some(&sha256_hex(b"other")));
        let error = run(&mut check, &[b"hello", b"world"]).unwrap_err();
        assert_eq!(error.code, "XAmzContentSHA256Mismatch");
    }

    #[test]
    fn sha256_of_empty_body_checked() {
        let mut check = BodyCheck::plain(Some(&sha256_hex(b"")));
        let mut body = None;
        check.process(&mut body, true).unwrap();
        assert_eq!(body.unwrap(), Bytes::new());
    }

    #[test]
    fn checksum_header_checked_on_unsigned_payload() {
        // CRC32 of "123456789" is 0xCBF43926.
        let good = BodyCheck::plain(None).with_checksum(ChecksumAlgorithm::Crc32, "y/Q5Jg==");
        let mut good = good;
        assert_eq!(run(&mut good, &[b"1234", b"56789"]).unwrap(), b"123456789");
        let mut bad = BodyCheck::plain(None).with_checksum(ChecksumAlgorithm::Crc32, "AAAAAA==");
        assert_eq!(
            run(&mut bad, &[b"1234", b"56789"]).unwrap_err().code,
            "BadDigest"
        );
    }

    #[test]
    fn restart_replays_from_scratch() {
        let mut check = BodyCheck::plain(Some(&sha256_hex(b"abc")));
        let mut body = Some(Bytes::from_static(b"ab"));
        check.process(&mut body, false).unwrap();
        check.restart();
        assert_eq!(run(&mut check, &[b"a", b"bc"]).unwrap(), b"abc");
    }

    #[test]
    fn chunked_decodes_unsigned_trailer_body() {
        let options = DecoderOptions {
            signing: None,
            trailer: true,
            expected_trailer: None,
            decoded_length: Some(11),
        };
        let mut check = BodyCheck::chunked(options).unwrap();
        let raw: &[u8] = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let (first, second) = raw.split_at(9);
        assert_eq!(run(&mut check, &[first, second]).unwrap(), b"hello world");
    }
}
