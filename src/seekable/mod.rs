//! Seekable Zstandard: the compressed container of a `tar.zst` bundle.
//!
//! A seekable file is a run of independent zstd frames followed by a skippable frame that holds
//! a seek table (compressed and decompressed size of every frame). Plain `zstd -d` reads it as an
//! ordinary multi-frame stream and skips the table; airlock reads the table to decompress only
//! the frames a blob lives in, and to decompress many frames in parallel when verifying.
//! Spec: zstd `contrib/seekable_format/zstd_seekable_compression_format.md`
//! (<https://github.com/facebook/zstd/blob/dev/contrib/seekable_format/zstd_seekable_compression_format.md>).
//!
//! This module owns the byte format only: [`SeekableWriter`] produces it, [`SeekTable`] parses
//! and validates the table, and [`SeekableReader`] decompresses frames and ranges. Everything
//! read is treated as hostile: the table is checked against the file length before anything is
//! allocated from it, and each frame is decompressed into a buffer bounded by the size the table
//! declares, with the zstd window capped at [`WINDOW_LOG_MAX`].

use std::io::{self, Read};

pub mod frames;
mod reader;
mod stored;
mod table;
mod writer;

pub use reader::{Frames, OwnedRange, ParFrames, RangeOf, RangeReader, SeekableReader, Shared};
pub use table::{FrameInfo, SeekTable};
pub use writer::SeekableWriter;

/// Magic number of the skippable frame that holds the seek table.
pub const SKIPPABLE_MAGIC: u32 = 0x184D_2A5E;
/// Magic number at the very end of a seekable file (`Seekable_Magic_Number`).
pub const SEEKABLE_MAGIC: u32 = 0x8F92_EAB1;
/// Magic number of an ordinary zstd frame.
pub const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Largest decompressed frame we accept from a seek table (and the largest frame we write).
pub const MAX_FRAME_DECOMPRESSED: usize = 64 << 20;
/// Largest number of frames we accept in a seek table (4 MiB frames: 256 TiB of data).
pub const MAX_FRAMES: u64 = 1 << 26;
/// Largest zstd window we decode with: 2^27 = 128 MiB, the default limit of the `zstd` CLI too,
/// so a frame we accept is a frame the operator's `zstd -d` accepts.
pub const WINDOW_LOG_MAX: u32 = 27;
/// The frame size the bundle writer uses unless told otherwise.
pub const DEFAULT_MAX_FRAME: usize = 4 << 20;

/// Bytes in the `Seek_Table_Footer`.
const FOOTER_LEN: u64 = 9;
/// Bytes in the skippable frame header (magic + `Frame_Size`).
const SKIPPABLE_HEADER_LEN: u64 = 8;

/// Where compressed bytes are read from with positioned reads (a file; split parts later).
///
/// Positioned reads let many threads decompress different frames of one file at once.
pub trait ReadAt: Send + Sync {
    /// Total length of the source in bytes.
    fn len(&self) -> u64;
    /// Whether the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads up to `buf.len()` bytes at `offset`; `Ok(0)` means `offset` is at or past the end.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
}

impl ReadAt for std::fs::File {
    /// The length from `fstat`. `fstat` on an open descriptor does not fail in practice; if it
    /// does, the file reads as empty, which [`SeekTable::read`] reports as "no seek table", and
    /// every positioned read then fails with an error naming its offset.
    fn len(&self) -> u64 {
        self.metadata().map(|m| m.len()).unwrap_or(0)
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = self.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

impl ReadAt for &[u8] {
    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        (**self).read_at(buf, offset)
    }
}

impl ReadAt for Vec<u8> {
    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.as_slice().read_at(buf, offset)
    }
}

/// Reads a [`ReadAt`] in order from its first byte (for a streaming decoder).
pub struct InOrder {
    src: std::sync::Arc<dyn ReadAt>,
    pos: u64,
}

impl InOrder {
    pub fn new(src: std::sync::Arc<dyn ReadAt>) -> InOrder {
        InOrder { src, pos: 0 }
    }
}

impl Read for InOrder {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.src.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Fills `buf` from `offset`; a short read is an `UnexpectedEof` error naming the offset.
pub fn read_exact_at(src: &dyn ReadAt, buf: &mut [u8], offset: u64) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        match src.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "short read at offset {offset}: wanted {} bytes, got {done} (source is {} bytes)",
                        buf.len(),
                        src.len()
                    ),
                ))
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sequential decoder for a zstd file without a seek table (or when seeking is not needed).
///
/// It decodes every frame in turn and skips skippable frames, so it also reads a seekable file,
/// seek table included, as its plain content. The window is capped at [`WINDOW_LOG_MAX`] so a
/// hostile frame cannot make it allocate gigabytes.
pub fn streaming_decoder<R: Read>(
    r: R,
) -> io::Result<zstd::stream::read::Decoder<'static, io::BufReader<R>>> {
    let mut d = zstd::stream::read::Decoder::new(r)?;
    d.window_log_max(WINDOW_LOG_MAX)?;
    Ok(d)
}

/// Why a seekable file was refused or could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeekableError {
    #[error("reading {len} bytes of the seek table at offset {offset}")]
    TableRead {
        offset: u64,
        len: u64,
        #[source]
        source: io::Error,
    },
    #[error("seek table descriptor {descriptor:#04x} has reserved bits set")]
    ReservedBits { descriptor: u8 },
    #[error("seek table claims {frames} frames, more than the {max} airlock accepts")]
    TooManyFrames { frames: u64, max: u64 },
    #[error(
        "seek table claims {frames} frames, which needs {table_len} bytes, but the file is {file_len} bytes"
    )]
    TableLargerThanFile {
        frames: u64,
        table_len: u64,
        file_len: u64,
    },
    #[error("seek table skippable frame at offset {offset} has magic {found:#010x}, expected {SKIPPABLE_MAGIC:#010x}")]
    SkippableMagic { offset: u64, found: u32 },
    #[error("seek table skippable frame at offset {offset} declares {declared} bytes, but {frames} frames need {expected}")]
    FrameSizeMismatch {
        offset: u64,
        frames: u64,
        declared: u32,
        expected: u64,
    },
    #[error("seek table frame {index} declares {d_size} decompressed bytes, more than the {MAX_FRAME_DECOMPRESSED} airlock accepts")]
    FrameTooLarge { index: usize, d_size: u32 },
    #[error("seek table frame {index} at compressed offset {c_offset} has a compressed size of 0")]
    EmptyFrame { index: usize, c_offset: u64 },
    #[error("seek table frames add up to {sum} compressed bytes, but {expected} bytes precede the table (trailing garbage or a lying table)")]
    CompressedSizesMismatch { sum: u64, expected: u64 },
    #[error("frame index {index} is out of range: the seek table has {frames} frames")]
    FrameOutOfRange { index: usize, frames: usize },
    #[error(
        "decompressed range at {offset} of {len} bytes is past the end ({decompressed_len} bytes)"
    )]
    RangeOutOfBounds {
        offset: u64,
        len: u64,
        decompressed_len: u64,
    },
    #[error("frame {index} at compressed offset {c_offset}: reading {c_size} compressed bytes")]
    FrameRead {
        index: usize,
        c_offset: u64,
        c_size: u32,
        #[source]
        source: io::Error,
    },
    #[error("frame {index} at compressed offset {c_offset}: {problem}")]
    BadFrameHeader {
        index: usize,
        c_offset: u64,
        problem: &'static str,
    },
    #[error("frame {index} at compressed offset {c_offset}: window of {window} bytes is larger than the {} airlock accepts", 1u64 << WINDOW_LOG_MAX)]
    WindowTooLarge {
        index: usize,
        c_offset: u64,
        window: u64,
    },
    #[error("frame {index} at compressed offset {c_offset}: frame header declares {header} decompressed bytes, the seek table {table}")]
    ContentSizeMismatch {
        index: usize,
        c_offset: u64,
        header: u64,
        table: u32,
    },
    #[error("frame {index} at compressed offset {c_offset}: the zstd frame is {actual} bytes, the seek table declares {c_size}")]
    FrameLength {
        index: usize,
        c_offset: u64,
        c_size: u32,
        actual: usize,
    },
    #[error("frame {index} at compressed offset {c_offset}: decompressed to more than the {d_size} bytes the seek table declares")]
    Expands {
        index: usize,
        c_offset: u64,
        d_size: u32,
    },
    #[error("frame {index} at compressed offset {c_offset}: decompressed to {actual} bytes, the seek table declares {d_size}")]
    Short {
        index: usize,
        c_offset: u64,
        actual: usize,
        d_size: u32,
    },
    #[error("frame {index} at compressed offset {c_offset}: cannot decompress")]
    Decompress {
        index: usize,
        c_offset: u64,
        #[source]
        source: io::Error,
    },
}

impl From<SeekableError> for io::Error {
    fn from(e: SeekableError) -> io::Error {
        let kind = match &e {
            SeekableError::TableRead { source, .. } | SeekableError::FrameRead { source, .. } => {
                source.kind()
            }
            SeekableError::FrameOutOfRange { .. } | SeekableError::RangeOutOfBounds { .. } => {
                io::ErrorKind::InvalidInput
            }
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
pub(crate) mod test_util {
    use super::SeekableWriter;
    use std::io::Write;

    /// `data` as a seekable file with frames of `max_frame` bytes.
    pub fn seekable(data: &[u8], max_frame: usize, content_size: bool) -> Vec<u8> {
        let mut w = SeekableWriter::new(Vec::new(), 3, max_frame).with_content_size(content_size);
        w.write_all(data).expect("write to Vec");
        w.finish().expect("finish to Vec")
    }

    /// Rewrites the seek-table entry of frame `i`: (compressed, decompressed) size.
    #[allow(dead_code)]
    pub fn patch_entry(file: &mut [u8], i: usize, c: Option<u32>, d: Option<u32>) {
        let n = u32::from_le_bytes(file[file.len() - 9..file.len() - 5].try_into().expect("4"));
        let at = file.len() - 9 - 8 * n as usize + 8 * i;
        if let Some(c) = c {
            file[at..at + 4].copy_from_slice(&c.to_le_bytes());
        }
        if let Some(d) = d {
            file[at + 4..at + 8].copy_from_slice(&d.to_le_bytes());
        }
    }

    /// Deterministic xorshift64* so fixtures never depend on a `rand` crate or the clock.
    pub struct Prng(u64);

    impl Prng {
        pub fn new(seed: u64) -> Prng {
            Prng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
        }
        pub fn next_u64(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        /// Uniform-ish in `0..n` (n > 0).
        pub fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }
        /// Incompressible bytes.
        pub fn bytes(&mut self, n: usize) -> Vec<u8> {
            let mut v = Vec::with_capacity(n + 8);
            while v.len() < n {
                v.extend_from_slice(&self.next_u64().to_le_bytes());
            }
            v.truncate(n);
            v
        }
        /// Compressible bytes: random words from a small vocabulary.
        pub fn text(&mut self, n: usize) -> Vec<u8> {
            const WORDS: &[&[u8]] = &[
                b"rancher ",
                b"layer ",
                b"sha256 ",
                b"blob\n",
                b"k8s ",
                b"0123 ",
            ];
            let mut v = Vec::with_capacity(n + 8);
            while v.len() < n {
                v.extend_from_slice(WORDS[self.below(WORDS.len() as u64) as usize]);
            }
            v.truncate(n);
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_exact_at_names_offset_on_short_read() {
        let src = vec![1u8, 2, 3];
        let mut buf = [0u8; 2];
        read_exact_at(&src, &mut buf, 1).expect("in range");
        assert_eq!(buf, [2, 3]);
        let err = read_exact_at(&src, &mut buf, 2).expect_err("short");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(err.to_string().contains("offset 2"), "{err}");
        let err = read_exact_at(&src, &mut buf, u64::MAX).expect_err("far past end");
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(
            err.to_string()
                .contains(&format!("short read at offset {}", u64::MAX)),
            "{err}"
        );
    }

    #[test]
    fn file_read_at() {
        use std::io::Write;
        let mut f = tempfile::tempfile().expect("tempfile");
        f.write_all(b"hello world").expect("write");
        assert_eq!(ReadAt::len(&f), 11);
        let mut buf = [0u8; 5];
        read_exact_at(&f, &mut buf, 6).expect("read");
        assert_eq!(&buf, b"world");
    }
}
