//! Content digests: the `sha256:<64 hex>` names that address every blob and manifest.
//!
//! A [`Digest`] is only ever built by validating its text, so code that turns one into a
//! file name (`blobs/sha256/<hex>`) or a URL path never sees `/`, `..` or other surprises.
//! See the OCI image-spec, "Digests": <https://github.com/opencontainers/image-spec/blob/main/descriptor.md#digests>.
//! Only `sha256` is accepted: it is the algorithm every registry and every Rancher 1.6 image uses,
//! and refusing others keeps a hostile bundle from naming an algorithm we cannot check.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lowercase hex>` digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    // Invariant: exactly 64 lowercase hex characters.
    hex: String,
}

/// Why a digest string was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected \"sha256:\" followed by 64 lowercase hex characters")]
    Malformed(String),
    #[error("unsupported digest algorithm in {0:?}: only sha256 is supported")]
    UnsupportedAlgorithm(String),
}

impl Digest {
    /// Parses and validates `sha256:<64 lowercase hex>`.
    pub fn parse(s: &str) -> Result<Digest, DigestError> {
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(DigestError::Malformed(truncate(s)));
        };
        // The OCI grammar allows other algorithms (sha512, blake3, ...); they are well-formed but
        // not something airlock can verify, so they get their own error.
        let alg_ok = !alg.is_empty()
            && alg
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
        if alg != "sha256" {
            return Err(if alg_ok && is_encoded(hex) {
                DigestError::UnsupportedAlgorithm(truncate(s))
            } else {
                DigestError::Malformed(truncate(s))
            });
        }
        if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(DigestError::Malformed(truncate(s)));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest::from_hasher(Sha256::new_with_prefix(bytes))
    }

    fn from_hasher(h: Sha256) -> Digest {
        Digest {
            hex: hex_lower(&h.finalize()),
        }
    }

    /// The algorithm, always `sha256`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }

    /// The 64 hex characters, safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// A short form for messages: `sha256:0123456789ab`.
    pub fn short(&self) -> String {
        format!("sha256:{}", &self.hex[..12])
    }

    /// `error` as said of this blob: prefixed with `blob <digest>: `, unless it names the blob
    /// already (most errors of a download or a check do, by hex alone in a URL).
    pub fn describe(&self, error: &str) -> String {
        if error.contains(&self.hex) {
            error.to_string()
        } else {
            format!("blob {self}: {error}")
        }
    }
}

fn is_encoded(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
}

/// Keeps hostile input from flooding an error message.
fn truncate(s: &str) -> String {
    if s.len() <= 100 {
        return s.to_string();
    }
    let mut end = 100;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// Lowercase hex of `bytes`.
pub fn hex_lower(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(sha256:{})", self.hex)
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 that also counts bytes.
#[derive(Clone, Default)]
pub struct Hasher {
    sha: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }
    pub fn update(&mut self, buf: &[u8]) {
        self.sha.update(buf);
        self.len += buf.len() as u64;
    }
    /// Bytes seen so far.
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn finish(self) -> Digest {
        Digest::from_hasher(self.sha)
    }
}

/// Why a verified read failed.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("blob {expected} is larger than its declared size of {size} bytes")]
    TooLong { expected: Digest, size: u64 },
    #[error("blob {expected} is shorter than its declared size: {got} of {size} bytes")]
    TooShort {
        expected: Digest,
        size: u64,
        got: u64,
    },
    #[error("blob {expected} is corrupt: its bytes hash to {actual}")]
    Mismatch { expected: Digest, actual: Digest },
}

/// Reads through `inner`, hashing and counting, and fails instead of returning EOF when the
/// bytes do not match the expected size and digest (ggcr `internal/verify`).
///
/// It never yields more than `size` bytes, so a hostile source cannot make a caller buffer more
/// than the descriptor declared. The error comes out of `read` as an `io::Error` whose inner
/// error is a [`VerifyError`]; use [`VerifyError::from_io`] to get it back.
pub struct VerifyingReader<R> {
    inner: R,
    expected: Digest,
    size: u64,
    hasher: Hasher,
    done: bool,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: u64) -> Self {
        VerifyingReader {
            inner,
            expected,
            size,
            hasher: Hasher::new(),
            done: false,
        }
    }

    /// Bytes read so far.
    pub fn position(&self) -> u64 {
        self.hasher.len()
    }

    fn check_end(&mut self) -> io::Result<()> {
        // Probe one byte past the declared size: a longer stream is corrupt too.
        let mut probe = [0u8; 1];
        loop {
            match self.inner.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(io_err(VerifyError::TooLong {
                        expected: self.expected.clone(),
                        size: self.size,
                    }))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.expected {
            return Err(io_err(VerifyError::Mismatch {
                expected: self.expected.clone(),
                actual,
            }));
        }
        self.done = true;
        Ok(())
    }
}

fn io_err(e: VerifyError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl VerifyError {
    /// Recovers a [`VerifyError`] carried inside an `io::Error` from [`VerifyingReader`].
    pub fn from_io(e: &io::Error) -> Option<&VerifyError> {
        e.get_ref()?.downcast_ref::<VerifyError>()
    }

    /// Takes a [`VerifyError`] out of an `io::Error`, or gives the `io::Error` back.
    pub fn split_io(e: io::Error) -> Result<VerifyError, io::Error> {
        if VerifyError::from_io(&e).is_none() {
            return Err(e);
        }
        let kind = e.kind();
        match e.into_inner().map(|b| b.downcast::<VerifyError>()) {
            Some(Ok(v)) => Ok(*v),
            Some(Err(b)) => Err(io::Error::new(kind, b)),
            None => Err(io::Error::from(kind)),
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.size - self.hasher.len();
        if remaining == 0 {
            self.check_end()?;
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = loop {
            match self.inner.read(&mut buf[..want]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            return Err(io_err(VerifyError::TooShort {
                expected: self.expected.clone(),
                size: self.size,
                got: self.hasher.len(),
            }));
        }
        self.hasher.update(&buf[..n]);
        if self.hasher.len() == self.size {
            self.check_end()?;
        }
        Ok(n)
    }
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }
    /// The digest and length of everything written, and the inner writer.
    pub fn finish(self) -> (Digest, u64, W) {
        let len = self.hasher.len();
        (self.hasher.finish(), len, self.inner)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_names_the_blob_once() {
        let d = Digest::of(b"x");
        assert_eq!(
            d.describe("connection reset"),
            format!("blob {d}: connection reset")
        );
        let named = format!("blob {d} is corrupt");
        assert_eq!(d.describe(&named), named);
    }

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parse_and_display_round_trip() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d, Digest::of(b""));
        assert_eq!(d.short(), "sha256:e3b0c44298fc");
    }

    #[test]
    fn refuses_malformed_digests() {
        let bad = [
            "",
            "sha256",
            "sha256:",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
            "sha256:../../../../etc/passwd",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b/55",
            "SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85g",
        ];
        for s in bad {
            assert!(
                matches!(Digest::parse(s), Err(DigestError::Malformed(_))),
                "{s:?} should be malformed"
            );
        }
        assert!(matches!(
            Digest::parse("sha512:abcd"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn verifying_reader_accepts_exact_bytes() {
        let data = b"hello world".to_vec();
        let mut r = VerifyingReader::new(&data[..], Digest::of(&data), data.len() as u64);
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn verifying_reader_catches_every_kind_of_lie() {
        let data = b"hello world";
        let d = Digest::of(data);
        let read = |src: &[u8], size: u64| {
            let mut r = VerifyingReader::new(src, d.clone(), size);
            let e = r.read_to_end(&mut Vec::new()).unwrap_err();
            VerifyError::from_io(&e).map(|v| v.to_string()).unwrap()
        };
        assert!(read(b"hello world!", 11).contains("larger than"));
        assert!(read(b"hello", 11).contains("shorter"));
        assert!(read(b"hello wormd", 11).contains("corrupt"));
    }

    #[test]
    fn hashing_writer_counts() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").unwrap();
        let (d, n, v) = w.finish();
        assert_eq!(n, 3);
        assert_eq!(v, b"abc");
        assert_eq!(d, Digest::of(b"abc"));
    }
}
