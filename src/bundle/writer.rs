//! Writes a bundle: a POSIX (ustar) tar inside a seekable zstd stream.
//!
//! Every tar header is a frame of its own and every entry's data starts a new frame (cut into
//! frames of `frame_size` bytes), so a reader can walk the headers through the seek table
//! without decompressing any data, and open any blob at its frame.

use std::collections::HashSet;
use std::io::{self, Read, Write};

use crate::seekable::SeekableWriter;

/// Knobs for the compressed stream.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// zstd level for every frame.
    pub level: i32,
    /// Largest decompressed size of one frame.
    pub frame_size: usize,
    /// mtime of every entry (`SOURCE_DATE_EPOCH`, or 0).
    pub mtime: u64,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            level: 3,
            frame_size: 4 << 20,
            mtime: 0,
        }
    }
}

/// A tar writer whose entries start on frame boundaries.
pub struct BundleWriter<W: Write> {
    out: SeekableWriter<W>,
    mtime: u64,
    names: HashSet<String>,
    /// Decompressed offset of the next header.
    offset: u64,
}

impl<W: Write> BundleWriter<W> {
    pub fn new(out: W, opts: &WriteOptions) -> Self {
        BundleWriter {
            out: SeekableWriter::new(out, opts.level, opts.frame_size),
            mtime: opts.mtime,
            names: HashSet::new(),
            offset: 0,
        }
    }

    /// Adds a file entry from memory.
    pub fn add_bytes(&mut self, name: &str, data: &[u8]) -> io::Result<()> {
        self.add_reader(name, data.len() as u64, &mut &data[..])
    }

    /// Adds a file entry of exactly `size` bytes streamed from `r`.
    pub fn add_reader(&mut self, name: &str, size: u64, r: &mut dyn Read) -> io::Result<()> {
        if !self.names.insert(name.to_string()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("duplicate bundle entry {name}"),
            ));
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(name)?;
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(self.mtime);
        h.set_uid(0);
        h.set_gid(0);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        self.out.cut()?;
        self.out.write_all(h.as_bytes())?;
        self.out.cut()?;
        let n = crate::copy::copy_large(&mut r.take(size), &mut self.out)?;
        if n != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{name}: source ended after {n} of {size} bytes"),
            ));
        }
        let pad = (512 - size % 512) % 512;
        self.out.write_all(&[0u8; 512][..pad as usize])?;
        self.offset += 512 + size + pad;
        Ok(())
    }

    /// Writes the tar end (two zero blocks) and the seek table; returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.cut()?;
        self.out.write_all(&[0u8; 1024])?;
        self.out.finish()
    }

    /// Bytes of tar written so far.
    pub fn tar_len(&self) -> u64 {
        self.offset
    }
}
