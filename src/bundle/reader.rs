//! Reads a bundle through its seek table: walks the tar headers without decompressing any
//! blob, validates every entry, and opens any entry as a stream.
//!
//! Every bundle is hostile until proven otherwise: only regular files (and directories,
//! ignored) are accepted; names that are absolute, contain `..`, or appear twice (also as
//! `./x` vs `x`) are refused; PAX and GNU long-name records are bounded and applied; a size
//! that reaches past the end of the stream is refused before anything is read.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::contract::{self, Refusal};
use super::diagnose::{diagnose, recorded_size, Diagnosis};
use super::entries::{self, EntryRules, Header};
use super::format::{self, BundleManifest, OciIndex};
use crate::digest::Digest;
use crate::seekable::{OwnedRange, ReadAt, SeekTable, SeekableError, SeekableReader, Shared};

pub use super::limits::MAX_JSON_BYTES;

/// One regular file in the bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Normalised name (`blobs/sha256/<hex>`, `index.json`, ...).
    pub name: String,
    /// Offset of the data in the decompressed tar stream.
    pub offset: u64,
    pub size: u64,
}

/// Why a bundle cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot open bundle {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file does not end in a seek table; the diagnosis says what it is instead.
    #[error("{path} {diagnosis}{}", if diagnosis.readable_in_order() { "; this command needs the table" } else { "" })]
    NoSeekTable {
        path: PathBuf,
        len: u64,
        diagnosis: Diagnosis,
    },
    /// A stream that is not even zstd (standard input, told by its first bytes).
    #[error("{path} {diagnosis}")]
    NotABundle { path: PathBuf, diagnosis: Diagnosis },
    #[error("{path}: the compressed stream is damaged")]
    Stream {
        path: PathBuf,
        #[source]
        source: SeekableError,
    },
    #[error("{path}: reading the tar stream at offset {offset} failed")]
    Read {
        path: PathBuf,
        offset: u64,
        #[source]
        source: io::Error,
    },
    #[error("{path}: tar header at offset {offset}: {reason}")]
    Tar {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("{path}: entry {name:?} refused: {reason}")]
    Entry {
        path: PathBuf,
        name: String,
        reason: String,
    },
    /// A file without its seek table, read in order instead, fails that way too.
    #[error("{why}; read in one sequential pass instead, it fails")]
    Sequential {
        why: String,
        #[source]
        source: Box<BundleError>,
    },
    /// What the bundle contract ([`super::contract`]) refuses of the bundle as a whole.
    #[error("{path}: {refusal}")]
    Refused { path: PathBuf, refusal: Refusal },
}

impl BundleError {
    /// The refusal of the bundle at `path`.
    pub fn refused(path: &Path, refusal: Refusal) -> BundleError {
        BundleError::Refused {
            path: path.to_path_buf(),
            refusal,
        }
    }
}

/// A bundle opened for random access.
pub struct BundleReader {
    path: PathBuf,
    src: Arc<dyn ReadAt>,
    table: Arc<SeekTable>,
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

impl std::fmt::Debug for BundleReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BundleReader")
            .field("path", &self.path)
            .field("entries", &self.entries.len())
            .finish()
    }
}

impl BundleReader {
    /// Opens a bundle file (a regular file: never a FIFO or a device) and indexes its entries.
    pub fn open(path: &Path) -> Result<BundleReader, BundleError> {
        let file = crate::input_file::open_regular(path).map_err(|e| BundleError::Open {
            path: path.to_path_buf(),
            source: e.into(),
        })?;
        BundleReader::from_source(path, Arc::new(file))
    }

    /// Indexes the entries of a bundle read from `src`; `path` names it in errors.
    pub fn from_source(path: &Path, src: Arc<dyn ReadAt>) -> Result<BundleReader, BundleError> {
        let stream_err = |source| BundleError::Stream {
            path: path.to_path_buf(),
            source,
        };
        let table = SeekTable::read(src.as_ref())
            .map_err(stream_err)?
            .ok_or_else(|| BundleError::NoSeekTable {
                path: path.to_path_buf(),
                len: src.len(),
                diagnosis: diagnose(&src, recorded_size(path)),
            })?;
        let entries = walk(path, src.as_ref(), &table)?;
        let by_name = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        Ok(BundleReader {
            path: path.to_path_buf(),
            src,
            table: Arc::new(table),
            entries,
            by_name,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every regular file, in tar order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn entry(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// The entry holding a blob.
    pub fn blob(&self, d: &Digest) -> Option<&Entry> {
        self.entry(&format::blob_entry(d))
    }

    pub fn seek_table(&self) -> &SeekTable {
        &self.table
    }

    pub fn source(&self) -> &dyn ReadAt {
        self.src.as_ref()
    }

    /// Streams an entry's bytes (decompressing only the frames it spans).
    pub fn open_entry(&self, e: &Entry) -> impl Read + '_ {
        SeekableReader::new(self.src.as_ref(), &self.table).range(e.offset, e.size)
    }

    /// Like [`BundleReader::open_entry`], but owning what it reads from (for request bodies).
    pub fn open_entry_owned(&self, e: &Entry) -> OwnedRange {
        OwnedRange::new(
            Shared {
                src: self.src.clone(),
                table: self.table.clone(),
            },
            e.offset,
            e.size,
        )
    }

    /// Reads a small entry whole, refusing one over `limit` bytes.
    pub fn read_small(&self, name: &str, limit: u64) -> Result<Vec<u8>, BundleError> {
        let e = self
            .entry(name)
            .ok_or_else(|| BundleError::refused(&self.path, Refusal::Missing(name.into())))?;
        contract::document_size(name, e.size, limit)
            .map_err(|r| BundleError::refused(&self.path, r))?;
        self.read_entry(e)
    }

    /// Reads an entry whole (its size checked by the caller).
    pub fn read_entry(&self, e: &Entry) -> Result<Vec<u8>, BundleError> {
        let mut buf = Vec::with_capacity(e.size as usize);
        self.open_entry(e)
            .read_to_end(&mut buf)
            .map_err(|source| BundleError::Read {
                path: self.path.clone(),
                offset: e.offset,
                source,
            })?;
        Ok(buf)
    }

    /// Parses `bundle.json` and checks its format version ([`contract::bundle_json`]).
    pub fn bundle_manifest(&self) -> Result<BundleManifest, BundleError> {
        let raw = self.read_small(format::BUNDLE_JSON, MAX_JSON_BYTES)?;
        contract::bundle_json(&raw).map_err(|r| BundleError::refused(&self.path, r))
    }

    /// Parses `index.json` ([`contract::index_json`]).
    pub fn oci_index(&self) -> Result<OciIndex, BundleError> {
        let raw = self.read_small(format::INDEX_JSON, MAX_JSON_BYTES)?;
        contract::index_json(&raw).map_err(|r| BundleError::refused(&self.path, r))
    }
}

/// Walks the tar headers through the seek table, judging each with [`EntryRules`].
///
/// Every header and every entry's data must start a zstd frame, as `airlock pack` writes them:
/// then reading a header decompresses that header's frame only, and reading an entry only the
/// frames of its data. A seek table that puts many headers in one frame (131,072 headers in a
/// 64 MiB frame is a bundle of 400 kB) would otherwise cost a whole frame per header.
fn walk(path: &Path, src: &dyn ReadAt, table: &SeekTable) -> Result<Vec<Entry>, BundleError> {
    let reader = SeekableReader::new(src, table);
    let end = table.decompressed_len();
    let tar_err = |offset: u64, reason: String| BundleError::Tar {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let starts_frame = |offset: u64, what: &str| match frame_start(table, offset) {
        Ok(()) => Ok(()),
        Err(why) => Err(tar_err(offset, format!("{what} {why}"))),
    };
    let read_at = |offset: u64, len: u64| -> Result<Vec<u8>, BundleError> {
        if offset.checked_add(len).is_none_or(|e| e > end) {
            return Err(tar_err(
                offset,
                format!("needs {len} bytes but the stream ends at {end}"),
            ));
        }
        let mut buf = Vec::with_capacity(len as usize);
        reader
            .range(offset, len)
            .read_to_end(&mut buf)
            .map_err(|source| BundleError::Read {
                path: path.to_path_buf(),
                offset,
                source,
            })?;
        Ok(buf)
    };
    let refused = |offset: u64, r: entries::Refusal| match r {
        entries::Refusal::Header(reason) => tar_err(offset, reason),
        entries::Refusal::Entry { name, reason } => BundleError::Entry {
            path: path.to_path_buf(),
            name,
            reason,
        },
    };
    let mut rules = EntryRules::new();
    let mut entries = Vec::new();
    let mut offset = 0u64;
    loop {
        if offset == end {
            return Err(tar_err(
                offset,
                "the tar stream ends without its end-of-archive blocks".into(),
            ));
        }
        let block = read_at(offset, 512)?;
        if block.iter().all(|&b| b == 0) {
            // End of archive: what follows may only be a little zero padding.
            let rest = end - offset - 512;
            let zeros = rest <= contract::MAX_TRAILER
                && read_at(offset + 512, rest)?.iter().all(|&b| b == 0);
            contract::trailer(rest, zeros).map_err(|r| BundleError::refused(path, r))?;
            break;
        }
        starts_frame(offset, "the tar header")?;
        let header = tar::Header::from_byte_slice(&block);
        let verdict = rules
            .header(header, offset)
            .map_err(|r| refused(offset, r))?;
        let size = match &verdict {
            Header::Directory => 0,
            Header::Extension { size } | Header::Known { size, .. } | Header::Unknown { size } => {
                *size
            }
        };
        let data = offset + 512;
        let next = size
            .checked_add(511)
            .map(|s| s / 512 * 512)
            .and_then(|p| data.checked_add(p))
            .filter(|&n| n <= end)
            .ok_or_else(|| {
                tar_err(
                    offset,
                    format!("entry claims {size} bytes, past the end of the stream ({end} bytes)"),
                )
            })?;
        if size > 0 {
            starts_frame(data, "the entry's data")?;
        }
        match verdict {
            Header::Extension { size } => {
                let raw = read_at(data, size)?;
                rules.extension(&raw).map_err(|r| refused(offset, r))?;
            }
            Header::Known { name, size } => entries.push(Entry {
                name,
                offset: data,
                size,
            }),
            Header::Directory | Header::Unknown { .. } => {}
        }
        offset = next;
    }
    rules.finish().map_err(|r| refused(offset, r))?;
    Ok(entries)
}

/// Whether decompressed `offset` is the first byte of a frame; why not, if not.
fn frame_start(table: &SeekTable, offset: u64) -> Result<(), String> {
    match table.frame_at(offset).and_then(|i| table.get(i)) {
        Some(f) if f.d_offset == offset => Ok(()),
        Some(f) => Err(format!(
            "is not at the start of a zstd frame: it is inside frame {} (decompressed bytes {} to {}); airlock pack starts every header and every entry's data on a frame of its own, so a reader never decompresses a frame twice",
            f.index,
            f.d_offset,
            f.d_offset + u64::from(f.d_size)
        )),
        None => Err("is past the last frame".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::SeekableWriter;
    use std::io::Write;

    /// A tar of `n` empty files named f0, f1, ... written in frames of `frame` bytes.
    fn tar_in_frames(n: usize, frame: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for i in 0..n {
            let mut h = tar::Header::new_ustar();
            h.set_size(0);
            h.set_entry_type(tar::EntryType::Regular);
            b.append_data(&mut h, format!("f{i}"), &[][..]).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let mut w = SeekableWriter::new(Vec::new(), 1, frame);
        w.write_all(&tar).unwrap();
        w.finish().unwrap()
    }

    #[test]
    fn headers_must_start_their_frames() {
        let ok = tar_in_frames(4, 512);
        assert!(BundleReader::from_source(Path::new("b"), Arc::new(ok)).is_ok());
        let shared = tar_in_frames(4, 4096);
        let e = BundleReader::from_source(Path::new("b"), Arc::new(shared)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "b: tar header at offset 512: the tar header is not at the start of a zstd frame: it is inside frame 0 (decompressed bytes 0 to 3072); airlock pack starts every header and every entry's data on a frame of its own, so a reader never decompresses a frame twice"
        );
    }
}
