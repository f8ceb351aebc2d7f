//! Request body checks that run while the body streams to the backend.
//!
//! Each check holds back the most recent piece of forwarded data until the
//! end of the body has been verified, so a backend never receives a complete
//! body that failed its check: on failure the upstream request is aborted
//! with bytes still missing, and the backend discards it.

use bytes::{Bytes, BytesMut};
use osp_core::checksum::PayloadHasher;
use osp_core::chunked::{ChunkedDecoder, DecoderOptions};
use osp_core::s3::S3Error;

/// What the proxy verifies in a request body, chosen from the signed
/// x-amz-content-sha256 value.
pub enum BodyCheck {
    /// The body's SHA-256 must equal the signed hex value.
    Sha256(Sha256Check),
    /// The body is aws-chunked: decoded while it streams, with chunk
    /// signatures, trailer checksum and decoded length verified.
    Chunked(Box<ChunkedCheck>),
}

impl BodyCheck {
    /// Processes one piece of the body as it arrives. Replaces `body` with the
    /// bytes to forward now: possibly empty, never `None` before the end,
    /// because pingora treats `None` as the end of the upstream body.
    pub fn process(
        &mut self,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
    ) -> Result<(), S3Error> {
        match self {
            BodyCheck::Sha256(check) => check.process(body, end_of_stream),
            BodyCheck::Chunked(check) => check.process(body, end_of_stream),
        }
    }

    /// Starts over for a new attempt: pingora replays the body from its start
    /// when it retries a backend connection.
    pub fn restart(&mut self) {
        match self {
            BodyCheck::Sha256(check) => *check = Sha256Check::new(&check.expected_hex),
            BodyCheck::Chunked(check) => check.restart(),
        }
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

pub struct Sha256Check {
    expected_hex: String,
    hasher: PayloadHasher,
    held: HeldBack,
}

impl Sha256Check {
    pub fn new(expected_hex: &str) -> Self {
        Self {
            expected_hex: expected_hex.to_string(),
            hasher: PayloadHasher::new(expected_hex),
            held: HeldBack::default(),
        }
    }

    fn process(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) -> Result<(), S3Error> {
        let piece = body.take().unwrap_or_default();
        self.hasher.update(&piece);
        if !end_of_stream {
            *body = Some(self.held.swap(piece));
            return Ok(());
        }
        let hasher = std::mem::replace(&mut self.hasher, PayloadHasher::new(&self.expected_hex));
        if !hasher.matches() {
            return Err(S3Error::content_sha256_mismatch());
        }
        *body = Some(join(self.held.take(), piece));
        Ok(())
    }
}

pub struct ChunkedCheck {
    options: DecoderOptions,
    decoder: ChunkedDecoder,
    decoded: Vec<Bytes>,
    held: HeldBack,
}

impl ChunkedCheck {
    pub fn new(options: DecoderOptions) -> Result<Self, S3Error> {
        Ok(Self {
            decoder: ChunkedDecoder::new(options.clone())?,
            options,
            decoded: Vec::new(),
            held: HeldBack::default(),
        })
    }

    fn restart(&mut self) {
        if let Ok(decoder) = ChunkedDecoder::new(self.options.clone()) {
            self.decoder = decoder;
        }
        self.decoded.clear();
        self.held = HeldBack::default();
    }

    fn process(&mut self, body: &mut Option<Bytes>, end_of_stream: bool) -> Result<(), S3Error> {
        self.decoded.clear();
        if let Some(piece) = body.take() {
            self.decoder.feed(piece, &mut self.decoded)?;
        }
        let decoded = concat(&mut self.decoded);
        if !end_of_stream {
            *body = Some(if decoded.is_empty() {
                Bytes::new()
            } else {
                self.held.swap(decoded)
            });
            return Ok(());
        }
        self.decoder.finish()?;
        *body = Some(join(self.held.take(), decoded));
        Ok(())
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
        let mut check = BodyCheck::Sha256(Sha256Check::new(&sha256_hex(b"hello world")));
        assert_eq!(
            run(&mut check, &[b"hello", b" ", b"world"]).unwrap(),
            b"hello world"
        );
    }

    #[test]
    fn sha256_holds_back_last_piece_until_verified() {
        let mut check = BodyCheck::Sha256(Sha256Check::new(&sha256_hex(b"abc")));
        let mut body = Some(Bytes::from_static(b"a"));
        check.process(&mut body, false).unwrap();
        assert_eq!(body.unwrap(), Bytes::new(), "the first piece is held back");
        let mut body = Some(Bytes::from_static(b"b"));
        check.process(&mut body, false).unwrap();
        assert_eq!(body.unwrap(), Bytes::from_static(b"a"));
    }

    #[test]
    fn sha256_mismatch_rejected_at_end() {
        let mut check = BodyCheck::Sha256(Sha256Check::new(&sha256_hex(b"other")));
        let error = run(&mut check, &[b"hello", b"world"]).unwrap_err();
        assert_eq!(error.code, "XAmzContentSHA256Mismatch");
    }

    #[test]
    fn sha256_of_empty_body_checked() {
        let mut check = BodyCheck::Sha256(Sha256Check::new(&sha256_hex(b"")));
        let mut body = None;
        check.process(&mut body, true).unwrap();
        assert_eq!(body.unwrap(), Bytes::new());
    }

    #[test]
    fn chunked_decodes_unsigned_trailer_body() {
        let options = DecoderOptions {
            signing: None,
            trailer: true,
            expected_trailer: None,
            decoded_length: Some(11),
        };
        let mut check = BodyCheck::Chunked(Box::new(ChunkedCheck::new(options).unwrap()));
        let raw: &[u8] = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
        let (first, second) = raw.split_at(9);
        assert_eq!(run(&mut check, &[first, second]).unwrap(), b"hello world");
    }
}
