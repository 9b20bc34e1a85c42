//! Reads a bundle through its seek table: walks the tar headers without decompressing any
//! blob, validates every entry, and opens any entry as a stream.
//!
//! Every bundle is hostile until proven otherwise: only regular files (and directories,
//! ignored) are accepted; names that are absolute, contain `..`, or appear twice (also as
//! `./x` vs `x`) are refused; PAX and GNU long-name records are bounded and applied; a size
//! that reaches past the end of the stream is refused before anything is read.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::format::{self, BundleManifest, OciIndex};
use crate::digest::Digest;
use crate::seekable::{OwnedRange, ReadAt, SeekTable, SeekableError, SeekableReader, Shared};

/// Largest `index.json` / `bundle.json` accepted.
pub const MAX_JSON_BYTES: u64 = 8 << 20;
/// Largest PAX or GNU long-name record accepted.
const MAX_EXT_HEADER: u64 = 64 << 10;

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
    #[error("{path} ({len} bytes) does not end in a seek table: it is truncated, has bytes appended, was not written by airlock pack, or was recompressed; this command needs one")]
    NoSeekTable { path: PathBuf, len: u64 },
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
    #[error("{path}: the bundle has no {name}")]
    Missing { path: PathBuf, name: String },
    #[error("{path}: {name} is {size} bytes, more than the {limit} accepted")]
    TooLarge {
        path: PathBuf,
        name: String,
        size: u64,
        limit: u64,
    },
    #[error("{path}: {name} is not valid")]
    Json {
        path: PathBuf,
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
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
    /// Opens a bundle file and indexes its entries.
    pub fn open(path: &Path) -> Result<BundleReader, BundleError> {
        let file = File::open(path).map_err(|source| BundleError::Open {
            path: path.to_path_buf(),
            source,
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
        let e = self.entry(name).ok_or_else(|| BundleError::Missing {
            path: self.path.clone(),
            name: name.to_string(),
        })?;
        if e.size > limit {
            return Err(BundleError::TooLarge {
                path: self.path.clone(),
                name: name.to_string(),
                size: e.size,
                limit,
            });
        }
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

    /// Parses `bundle.json` and checks its format version.
    pub fn bundle_manifest(&self) -> Result<BundleManifest, BundleError> {
        let raw = self.read_small(format::BUNDLE_JSON, MAX_JSON_BYTES)?;
        let m: BundleManifest = parse_json(&self.path, format::BUNDLE_JSON, &raw)?;
        if m.format != format::FORMAT_NAME || m.format_version != format::FORMAT_VERSION {
            return Err(BundleError::Format {
                path: self.path.clone(),
                reason: format!(
                    "bundle.json says format {:?} version {}; this airlock reads {} version {} (use the airlock release that wrote it)",
                    m.format,
                    m.format_version,
                    format::FORMAT_NAME,
                    format::FORMAT_VERSION
                ),
            });
        }
        Ok(m)
    }

    /// Parses `index.json`.
    pub fn oci_index(&self) -> Result<OciIndex, BundleError> {
        let raw = self.read_small(format::INDEX_JSON, MAX_JSON_BYTES)?;
        parse_json(&self.path, format::INDEX_JSON, &raw)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    name: &str,
    raw: &[u8],
) -> Result<T, BundleError> {
    // serde_json refuses nesting deeper than 128 levels, so depth is bounded too.
    serde_json::from_slice(raw).map_err(|source| BundleError::Json {
        path: path.to_path_buf(),
        name: name.to_string(),
        source,
    })
}

/// Walks the tar headers through the seek table.
fn walk(path: &Path, src: &dyn ReadAt, table: &SeekTable) -> Result<Vec<Entry>, BundleError> {
    let reader = SeekableReader::new(src, table);
    let end = table.decompressed_len();
    let tar_err = |offset: u64, reason: String| BundleError::Tar {
        path: path.to_path_buf(),
        offset,
        reason,
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
    let mut entries = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut offset = 0u64;
    let mut pending_name: Option<String> = None;
    let mut pending_size: Option<u64> = None;
    loop {
        if offset == end {
            return Err(tar_err(
                offset,
                "the tar stream ends without its end-of-archive blocks".into(),
            ));
        }
        let block = read_at(offset, 512)?;
        if block.iter().all(|&b| b == 0) {
            // End of archive. What follows must be zeros (padding) only if present at all.
            break;
        }
        let header = tar::Header::from_byte_slice(&block);
        check_checksum(&block).map_err(|r| tar_err(offset, r))?;
        let size = header
            .entry_size()
            .map_err(|e| tar_err(offset, format!("bad size field: {e}")))?;
        let data = offset + 512;
        let padded = size.checked_add(511).map(|s| s / 512 * 512);
        let next = padded
            .and_then(|p| data.checked_add(p))
            .filter(|&n| n <= end)
            .ok_or_else(|| {
                tar_err(
                    offset,
                    format!("entry claims {size} bytes, past the end of the stream ({end} bytes)"),
                )
            })?;
        let kind = header.entry_type();
        match kind {
            tar::EntryType::XHeader => {
                if size > MAX_EXT_HEADER {
                    return Err(tar_err(
                        offset,
                        format!("PAX header of {size} bytes is too large"),
                    ));
                }
                let raw = read_at(data, size)?;
                for rec in pax_records(&raw).map_err(|r| tar_err(offset, r))? {
                    match rec.0.as_str() {
                        "path" => pending_name = Some(rec.1),
                        "size" => {
                            pending_size = Some(rec.1.parse().map_err(|_| {
                                tar_err(offset, format!("PAX size {:?} is not a number", rec.1))
                            })?)
                        }
                        // linkpath, uid, mtime... do not matter for regular files.
                        _ => {}
                    }
                }
                offset = next;
                continue;
            }
            tar::EntryType::GNULongName => {
                if size > MAX_EXT_HEADER {
                    return Err(tar_err(
                        offset,
                        format!("GNU long name of {size} bytes is too large"),
                    ));
                }
                let raw = read_at(data, size)?;
                let name = raw.split(|&b| b == 0).next().unwrap_or(&[]);
                pending_name = Some(
                    String::from_utf8(name.to_vec())
                        .map_err(|_| tar_err(offset, "GNU long name is not UTF-8".into()))?,
                );
                offset = next;
                continue;
            }
            tar::EntryType::XGlobalHeader => {
                // Global PAX records apply to every later entry; airlock never writes them
                // and refuses them rather than model their effect on names and sizes.
                return Err(tar_err(
                    offset,
                    "global PAX headers are not accepted in a bundle".into(),
                ));
            }
            _ => {}
        }
        let raw_name = match pending_name.take() {
            Some(n) => n,
            None => {
                let p = header.path_bytes().into_owned();
                String::from_utf8(p)
                    .map_err(|_| tar_err(offset, "entry name is not UTF-8".into()))?
            }
        };
        if let Some(ps) = pending_size.take() {
            if ps != size {
                return Err(BundleError::Entry {
                    path: path.to_path_buf(),
                    name: raw_name,
                    reason: format!("its PAX size ({ps}) disagrees with its header size ({size})"),
                });
            }
        }
        let name = normalize_name(&raw_name).map_err(|reason| BundleError::Entry {
            path: path.to_path_buf(),
            name: raw_name.clone(),
            reason,
        })?;
        let refuse = |reason: &str| BundleError::Entry {
            path: path.to_path_buf(),
            name: raw_name.clone(),
            reason: reason.to_string(),
        };
        match entry_kind(kind) {
            Ok(EntryKind::File) => {}
            Ok(EntryKind::Directory) => {
                if size != 0 {
                    return Err(refuse("a directory entry with content"));
                }
                offset = next;
                continue;
            }
            Err(why) => return Err(refuse(&why)),
        }
        if let Some(first) = seen.insert(name.clone(), offset) {
            return Err(BundleError::Entry {
                path: path.to_path_buf(),
                name: raw_name,
                reason: format!(
                    "a second entry with the same name (the first is at offset {first})"
                ),
            });
        }
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            Digest::parse(&format!("sha256:{hex}"))
                .map_err(|e| refuse(&format!("not a valid blob name: {e}")))?;
        } else if name.starts_with("blobs/") {
            return Err(refuse(
                "blobs of an algorithm other than sha256 are not accepted",
            ));
        }
        entries.push(Entry {
            name,
            offset: data,
            size,
        });
        offset = next;
    }
    if pending_name.is_some() || pending_size.is_some() {
        return Err(tar_err(
            offset,
            "a PAX or long-name header is not followed by an entry".into(),
        ));
    }
    Ok(entries)
}

/// What an accepted tar entry is.
pub enum EntryKind {
    File,
    /// Directories are accepted and ignored.
    Directory,
}

/// Accepts regular files and directories; everything else (links, devices, FIFOs, sparse
/// files...) is refused with the reason.
pub fn entry_kind(kind: tar::EntryType) -> Result<EntryKind, String> {
    Err(match kind {
        tar::EntryType::Regular | tar::EntryType::Continuous => return Ok(EntryKind::File),
        tar::EntryType::Directory => return Ok(EntryKind::Directory),
        tar::EntryType::Symlink => "symbolic links are not accepted in a bundle".into(),
        tar::EntryType::Link => "hard links are not accepted in a bundle".into(),
        tar::EntryType::Char | tar::EntryType::Block => {
            "device files are not accepted in a bundle".into()
        }
        tar::EntryType::Fifo => "FIFOs are not accepted in a bundle".into(),
        other => format!(
            "entry type {:?} is not accepted in a bundle (only regular files)",
            other.as_byte() as char
        ),
    })
}

/// Checks a ustar header checksum (the sum of all bytes with the checksum field as spaces).
fn check_checksum(block: &[u8]) -> Result<(), String> {
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let stored = u32::from_str_radix(text.trim(), 8)
        .map_err(|_| format!("checksum field {text:?} is not octal (not a tar header)"))?;
    let sum: u32 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum();
    if sum != stored {
        return Err(format!(
            "checksum mismatch (stored {stored}, computed {sum})"
        ));
    }
    Ok(())
}

/// Parses PAX records `"<len> <key>=<value>\n"`.
fn pax_records(mut raw: &[u8]) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    while !raw.is_empty() {
        let sp = raw
            .iter()
            .position(|&b| b == b' ')
            .ok_or("PAX record without a length")?;
        let len: usize = std::str::from_utf8(&raw[..sp])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or("PAX record length is not a number")?;
        if len <= sp + 1 || len > raw.len() || raw[len - 1] != b'\n' {
            return Err("PAX record length does not fit the record".into());
        }
        let rec =
            std::str::from_utf8(&raw[sp + 1..len - 1]).map_err(|_| "PAX record is not UTF-8")?;
        let (k, v) = rec.split_once('=').ok_or("PAX record without '='")?;
        out.push((k.to_string(), v.to_string()));
        raw = &raw[len..];
    }
    Ok(out)
}

/// Normalises an entry name, refusing anything that could escape a directory.
pub fn normalize_name(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("empty name".into());
    }
    if raw.starts_with('/') {
        return Err("absolute path".into());
    }
    if raw.contains('\0') || raw.contains('\\') {
        return Err("name contains a NUL or backslash".into());
    }
    let mut parts = Vec::new();
    for part in raw.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err("name contains '..'".into()),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("name has no components".into());
    }
    Ok(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(normalize_name("./index.json").unwrap(), "index.json");
        assert_eq!(normalize_name("blobs//sha256/x").unwrap(), "blobs/sha256/x");
        for (bad, why) in [
            ("", "empty name"),
            ("/etc/passwd", "absolute path"),
            ("../x", "name contains '..'"),
            ("a/../../b", "name contains '..'"),
            ("./", "name has no components"),
            ("a\\b", "name contains a NUL or backslash"),
        ] {
            assert_eq!(normalize_name(bad).unwrap_err(), why, "{bad}");
        }
    }

    #[test]
    fn pax() {
        let r = pax_records(b"16 path=abc/def\n11 size=10\n").unwrap();
        assert_eq!(
            r,
            vec![
                ("path".into(), "abc/def".into()),
                ("size".into(), "10".into())
            ]
        );
        assert_eq!(
            pax_records(b"99 path=x\n").unwrap_err(),
            "PAX record length does not fit the record"
        );
        assert_eq!(
            pax_records(b"x").unwrap_err(),
            "PAX record without a length"
        );
    }
}
