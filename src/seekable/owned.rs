//! [`OwnedRange`]: a decompressed range that owns its source, for consumers that need a
//! `'static` reader (an HTTP request body handed to `ureq`).

use std::io::{self, Read};
use std::sync::Arc;

use super::{ReadAt, SeekTable, SeekableReader};

/// Streams decompressed bytes `[offset, offset + len)` of a shared source, one frame in memory
/// at a time, like [`SeekableReader::range`].
pub struct OwnedRange {
    src: Arc<dyn ReadAt>,
    table: Arc<SeekTable>,
    pos: u64,
    end: u64,
    /// Decompressed offset of `buf[0]`.
    buf_start: u64,
    buf: Vec<u8>,
}

impl OwnedRange {
    pub fn new(src: Arc<dyn ReadAt>, table: Arc<SeekTable>, offset: u64, len: u64) -> OwnedRange {
        OwnedRange {
            src,
            table,
            pos: offset,
            end: offset.saturating_add(len),
            buf_start: 0,
            buf: Vec::new(),
        }
    }
}

impl Read for OwnedRange {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() || self.pos >= self.end {
            return Ok(0);
        }
        if self.end > self.table.decompressed_len() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "range up to {} is past the end of the stream ({})",
                    self.end,
                    self.table.decompressed_len()
                ),
            ));
        }
        let inside =
            self.pos >= self.buf_start && self.pos - self.buf_start < self.buf.len() as u64;
        if !inside {
            let i = self.table.frame_at(self.pos).ok_or_else(|| {
                io::Error::other(format!("no frame holds decompressed offset {}", self.pos))
            })?;
            let f = self.table.frame(i);
            SeekableReader::new(self.src.as_ref(), &self.table)
                .decompress_frame(i, &mut self.buf)?;
            self.buf_start = f.d_offset;
        }
        let at = (self.pos - self.buf_start) as usize;
        let n = (self.buf.len() - at)
            .min(out.len())
            .min(usize::try_from(self.end - self.pos).unwrap_or(usize::MAX));
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_same_as_the_borrowed_range() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = crate::seekable::SeekableWriter::new(Vec::new(), 1, 64 << 10);
        std::io::Write::write_all(&mut w, &data).unwrap();
        let file = w.finish().unwrap();
        let table = SeekTable::read(&file).unwrap().unwrap();
        let src: Arc<dyn ReadAt> = Arc::new(file);
        let table = Arc::new(table);
        for (off, len) in [(0u64, 10u64), (65_530, 100), (1, 299_999), (299_999, 1)] {
            let mut got = Vec::new();
            OwnedRange::new(src.clone(), table.clone(), off, len)
                .read_to_end(&mut got)
                .unwrap();
            assert_eq!(got, &data[off as usize..(off + len) as usize]);
        }
        let mut r = OwnedRange::new(src, table, 299_999, 2);
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
