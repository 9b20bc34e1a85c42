//! Split bundles: `pack --split` writes `bundle.tar.zst.000`, `.001`, ... for media that cannot
//! hold one large file (FAT32 USB sticks stop at 4 GiB - 1). A part is cut anywhere, so it is
//! not a zstd file on its own; the parts concatenated are exactly the unsplit bundle.
//!
//! Readers never join the files: [`PartsSource`] is a [`ReadAt`] over all of them, so the seek
//! table finds any entry across part boundaries. The layout is recorded at pack time in
//! `bundle.tar.zst.parts.json` (name, size, sha256 and the sha256 of the first 64 KiB of every
//! part); opening checks presence, sizes and those first bytes of every part, and refuses a
//! stale extra part, before anything is read or pushed. Parts are never modified or deleted by
//! a reader.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::bundle::limits::{MAX_PARTS, MAX_SIDE_FILE_BYTES};
use crate::bundle::reader::{BundleError, BundleReader};
use crate::digest::{Digest, Hasher};
use crate::seekable::ReadAt;
use crate::writeback::DropBehind;

/// `--split fat32`: the largest file FAT32 holds (4 GiB - 1).
pub const FAT32_MAX_FILE: u64 = 4_294_967_295;
/// How many leading bytes of each part are fingerprinted in the parts manifest.
pub const HEAD_BYTES: u64 = 64 << 10;
/// `format` of the parts manifest.
pub const PARTS_FORMAT: &str = "airlock-parts";
/// Most parts a reader keeps open at once; the others are opened when a read reaches them.
const OPEN_PARTS: usize = 16;

/// Why a split bundle cannot be written or opened.
#[derive(Debug, thiserror::Error)]
pub enum PartsError {
    #[error("invalid size {0:?}: give bytes (1048576), a size with a unit (500M, 4G) or `fat32`")]
    Size(String),
    #[error("part {part} is missing (the parts manifest {manifest} lists {count} parts); copy it again from the source")]
    Missing {
        part: PathBuf,
        manifest: PathBuf,
        count: usize,
    },
    #[error("{}", wrong_size(part, *expected, *actual, recorded_in))]
    WrongSize {
        part: PathBuf,
        expected: u64,
        actual: u64,
        /// The parts manifest or checksum file that records the size.
        recorded_in: PathBuf,
    },
    #[error("part {part} does not start with the bytes recorded for part {index} (parts swapped, renamed or damaged)")]
    OutOfOrder { part: PathBuf, index: usize },
    #[error("{part} is not listed in {manifest} (a stale part of an older pack?); move it away")]
    Stale { part: PathBuf, manifest: PathBuf },
    #[error("{path}: give the first part (.000) or the base name, not a later part")]
    NotFirst { path: PathBuf },
    #[error("split bundle {base}: neither {manifest} nor {sidecar} is there; copy them together with the parts")]
    NoLayout {
        base: PathBuf,
        manifest: PathBuf,
        sidecar: PathBuf,
    },
    #[error("{path} is not a valid parts manifest: {reason}")]
    BadManifest { path: PathBuf, reason: String },
    #[error("part {part} is empty: airlock pack never writes an empty part (a damaged copy, or not a part)")]
    Empty { part: PathBuf },
    #[error("reading part {part}")]
    Io {
        part: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--split {split}: the bundle of about {estimate} bytes would be cut into about {parts} parts, more than the {MAX_PARTS} airlock reads; use --split {suggested} or larger")]
    TooManyParts {
        split: u64,
        estimate: u64,
        parts: u64,
        suggested: String,
    },
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// Says how a part's size differs from the one recorded: cut short, or longer.
fn wrong_size(part: &Path, expected: u64, actual: u64, recorded_in: &Path) -> String {
    match actual < expected {
        true => format!(
            "part {} is cut short: cut at {actual} of {expected} bytes (the size {} records); copy it again from the source",
            part.display(),
            recorded_in.display()
        ),
        false => format!(
            "part {} is {actual} bytes, {} records {expected} (bytes appended, or another file); copy it again from the source",
            part.display(),
            recorded_in.display()
        ),
    }
}

/// Parses `--split`: `fat32`, bytes, or a number with K, M, G or T (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, PartsError> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("fat32") {
        return Ok(FAT32_MAX_FILE);
    }
    let bad = || PartsError::Size(s.to_string());
    let upper = t.to_ascii_uppercase();
    let digits = upper.trim_end_matches(['B', 'I']);
    let (num, shift) = match digits.chars().last() {
        Some('K') => (&digits[..digits.len() - 1], 10),
        Some('M') => (&digits[..digits.len() - 1], 20),
        Some('G') => (&digits[..digits.len() - 1], 30),
        Some('T') => (&digits[..digits.len() - 1], 40),
        _ if digits.len() == upper.len() => (digits, 0),
        _ => return Err(bad()),
    };
    let n: u64 = num.trim().parse().map_err(|_| bad())?;
    let v = n
        .checked_shl(shift)
        .filter(|v| v >> shift == n)
        .ok_or_else(bad)?;
    // A part must hold at least the seek table footer to be useful; tiny sizes are mistakes.
    if v < 4096 {
        return Err(bad());
    }
    Ok(v)
}

/// `<base>.NNN`.
pub fn part_path(base: &Path, i: usize) -> PathBuf {
    PathBuf::from(format!("{}.{i:03}", base.display()))
}

/// `<base>.parts.json`.
pub fn manifest_path(base: &Path) -> PathBuf {
    PathBuf::from(format!("{}.parts.json", base.display()))
}

/// `<base>.sha256`.
pub fn sidecar_path(base: &Path) -> PathBuf {
    crate::sidecar::path_for(base)
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `bundle.tar.zst.parts.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PartsManifest {
    pub format: String,
    /// Every part but the last is exactly this many bytes.
    pub split_size: u64,
    /// The parts' bytes added up: the length of the unsplit bundle.
    pub total_size: u64,
    pub parts: Vec<PartRecord>,
}

/// One part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PartRecord {
    /// File name, beside the manifest.
    pub name: String,
    pub size: u64,
    pub sha256: Digest,
    /// sha256 of the first [`HEAD_BYTES`] bytes: cheap to check on every open.
    pub head_sha256: Digest,
}

struct OpenPart {
    tmp: PathBuf,
    out: BufWriter<DropBehind>,
    hash: Hasher,
    head: Hasher,
    written: u64,
}

/// A `Write` that rolls over to a new part every `split` bytes. Parts are written under
/// temporary names, fsynced as they close, and renamed to their final names only by
/// [`SplitWriter::finish`]; dropping an unfinished writer removes every temporary part.
pub struct SplitWriter {
    base: PathBuf,
    split: u64,
    /// [`MAX_PARTS`], but for tests.
    max_parts: usize,
    current: Option<OpenPart>,
    closed: Vec<(PathBuf, PartRecord)>,
    finished: bool,
}

impl SplitWriter {
    pub fn new(base: &Path, split: u64) -> SplitWriter {
        SplitWriter {
            base: base.to_path_buf(),
            split: split.max(1),
            max_parts: MAX_PARTS,
            current: None,
            closed: Vec::new(),
            finished: false,
        }
    }

    fn open_next(&mut self) -> io::Result<()> {
        // pack checks the split size against its estimate first; this holds whatever the
        // estimate missed, as readers refuse more parts.
        if self.closed.len() >= self.max_parts {
            return Err(io::Error::other(format!(
                "the bundle needs more than {} parts of {} bytes; use a larger --split",
                self.max_parts, self.split
            )));
        }
        let final_path = part_path(&self.base, self.closed.len());
        let tmp = crate::safe_write::temp_path_for(&final_path);
        let file = File::create(&tmp)?;
        self.current = Some(OpenPart {
            tmp,
            out: BufWriter::with_capacity(1 << 20, DropBehind::new(file)),
            hash: Hasher::new(),
            head: Hasher::new(),
            written: 0,
        });
        Ok(())
    }

    fn close_current(&mut self) -> io::Result<()> {
        let Some(p) = self.current.take() else {
            return Ok(());
        };
        let name = file_name(&part_path(&self.base, self.closed.len()));
        // Keep the temp name known before anything can fail, so Drop removes it.
        let tmp = p.tmp.clone();
        self.closed.push((
            tmp,
            PartRecord {
                name,
                size: p.written,
                sha256: p.hash.finish(),
                head_sha256: p.head.finish(),
            },
        ));
        let file = p.out.into_inner().map_err(|e| e.into_error())?;
        file.into_inner().sync_all()
    }

    /// Closes the last part, renames every part to its final name and returns the layout.
    pub fn finish(mut self) -> io::Result<PartsManifest> {
        if self.current.is_none() && self.closed.is_empty() {
            self.open_next()?;
        }
        self.close_current()?;
        let mut renamed = Vec::new();
        for (i, (tmp, _)) in self.closed.iter().enumerate() {
            let dest = part_path(&self.base, i);
            if let Err(e) = fs::rename(tmp, &dest) {
                // Never leave some parts under their final names and others not.
                for d in &renamed {
                    let _ = fs::remove_file(d);
                }
                return Err(e);
            }
            renamed.push(dest);
        }
        self.finished = true;
        if let Some(first) = renamed.first() {
            crate::safe_write::sync_dir(first);
        }
        let parts: Vec<PartRecord> = self.closed.iter().map(|(_, r)| r.clone()).collect();
        Ok(PartsManifest {
            format: PARTS_FORMAT.into(),
            split_size: self.split,
            // Bytes this writer wrote: they fit.
            total_size: crate::space::total(parts.iter().map(|p| p.size)).unwrap_or(u64::MAX),
            parts,
        })
    }
}

impl Write for SplitWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self
            .current
            .as_ref()
            .is_some_and(|p| p.written == self.split)
        {
            self.close_current()?;
        }
        if self.current.is_none() {
            self.open_next()?;
        }
        let p = self.current.as_mut().expect("opened above");
        let room = (self.split - p.written).min(buf.len() as u64) as usize;
        let n = p.out.write(&buf[..room])?;
        p.hash.update(&buf[..n]);
        if p.written < HEAD_BYTES {
            let h = (HEAD_BYTES - p.written).min(n as u64) as usize;
            p.head.update(&buf[..h]);
        }
        p.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.current {
            Some(p) => p.out.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for SplitWriter {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        if let Some(p) = self.current.take() {
            drop(p.out);
            let _ = fs::remove_file(&p.tmp);
        }
        for (tmp, _) in &self.closed {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// The base name for a path that names a part (`x.000` gives `x`); other paths unchanged.
pub fn base_name(path: &Path) -> PathBuf {
    let name = file_name(path);
    match name.rsplit_once('.') {
        Some((stem, s)) if s.len() >= 3 && s.bytes().all(|b| b.is_ascii_digit()) => {
            path.with_file_name(stem)
        }
        _ => path.to_path_buf(),
    }
}

/// Where a bundle's bytes are: one file, or parts.
#[derive(Debug, Clone)]
pub enum Layout {
    Single(PathBuf),
    Split {
        base: PathBuf,
        /// Every part, in order, with its expected size.
        parts: Vec<(PathBuf, u64)>,
        /// From `parts.json`; `None` when the layout came from the sidecar.
        manifest: Option<PartsManifest>,
    },
}

impl Layout {
    /// The name the bundle is known by: the file, or the base name of the parts.
    pub fn base(&self) -> &Path {
        match self {
            Layout::Single(p) => p,
            Layout::Split { base, .. } => base,
        }
    }
}

/// Finds a bundle's parts: `path` is a bundle file, the first part (`x.000`), or the base name
/// of parts (`x` when only `x.000`, `x.001`, ... exist). Checks every part (a regular file,
/// present, not empty, its size, its first bytes) and refuses a stale extra part.
pub fn locate(path: &Path) -> Result<Layout, PartsError> {
    let name = file_name(path);
    let suffix = name.rsplit_once('.').map(|(_, s)| s).unwrap_or("");
    let is_part = suffix.len() >= 3 && suffix.bytes().all(|b| b.is_ascii_digit());
    let base = if is_part {
        if suffix.bytes().any(|b| b != b'0') {
            return Err(PartsError::NotFirst {
                path: path.to_path_buf(),
            });
        }
        path.with_file_name(&name[..name.len() - suffix.len() - 1])
    } else if path.exists() || !part_path(path, 0).exists() {
        return Ok(Layout::Single(path.to_path_buf()));
    } else {
        path.to_path_buf()
    };
    let mpath = manifest_path(&base);
    let (parts, manifest, layout_file) = match crate::input_file::read_capped(
        &mpath,
        MAX_SIDE_FILE_BYTES,
    )
    .map_err(io::Error::from)
    {
        Ok(raw) => {
            let m = parse_manifest(&mpath, &base, &raw)?;
            let parts = m
                .parts
                .iter()
                .enumerate()
                .map(|(i, p)| (part_path(&base, i), p.size))
                .collect();
            (parts, Some(m), mpath)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let side = sidecar_path(&base);
            (parts_from_sidecar(&base, &mpath, &side)?, None, side)
        }
        Err(source) => {
            return Err(PartsError::Read {
                path: mpath,
                source,
            })
        }
    };
    for (i, (p, size)) in parts.iter().enumerate() {
        let (file, actual) = open_part(p, &layout_file, parts.len())?;
        if actual != *size {
            return Err(PartsError::WrongSize {
                part: p.clone(),
                expected: *size,
                actual,
                recorded_in: layout_file.clone(),
            });
        }
        if let Some(m) = &manifest {
            let mut head = Vec::new();
            file.take(HEAD_BYTES)
                .read_to_end(&mut head)
                .map_err(|source| PartsError::Io {
                    part: p.clone(),
                    source,
                })?;
            if Digest::of(&head) != m.parts[i].head_sha256 {
                return Err(PartsError::OutOfOrder {
                    part: p.clone(),
                    index: i,
                });
            }
        }
    }
    let extra = part_path(&base, parts.len());
    if extra.exists() {
        return Err(PartsError::Stale {
            part: extra,
            manifest: layout_file,
        });
    }
    Ok(Layout::Split {
        base,
        parts,
        manifest,
    })
}

/// Parses and checks `parts.json` (at `mpath`, for the parts of `base`): its format, at most
/// [`MAX_PARTS`] parts, none empty, every part but the last exactly the split size, names in
/// order.
pub fn parse_manifest(mpath: &Path, base: &Path, raw: &[u8]) -> Result<PartsManifest, PartsError> {
    let bad = |reason: String| PartsError::BadManifest {
        path: mpath.to_path_buf(),
        reason,
    };
    let m: PartsManifest = serde_json::from_slice(raw).map_err(|e| bad(e.to_string()))?;
    if m.format != PARTS_FORMAT || m.parts.is_empty() || m.parts.len() > MAX_PARTS {
        return Err(bad(format!(
            "format {:?} with {} parts (at most {MAX_PARTS})",
            m.format,
            m.parts.len()
        )));
    }
    let last = m.parts.len() - 1;
    for (i, p) in m.parts.iter().enumerate() {
        let size_ok = if i < last {
            p.size == m.split_size
        } else {
            p.size <= m.split_size
        };
        if !size_ok || p.size == 0 {
            return Err(bad(format!(
                "part {i} is {} bytes with a split size of {}",
                p.size, m.split_size
            )));
        }
        if p.name != file_name(&part_path(base, i)) {
            return Err(bad(format!("part {i} is named {:?}", p.name)));
        }
    }
    Ok(m)
}

/// The parts the checksum file lists, with their sizes on disk: without `parts.json`, every
/// part but the last has the first part's size.
fn parts_from_sidecar(
    base: &Path,
    mpath: &Path,
    side: &Path,
) -> Result<Vec<(PathBuf, u64)>, PartsError> {
    let lines = crate::sidecar::read(side).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => PartsError::NoLayout {
            base: base.to_path_buf(),
            manifest: mpath.to_path_buf(),
            sidecar: side.to_path_buf(),
        },
        _ => PartsError::Read {
            path: side.to_path_buf(),
            source: e,
        },
    })?;
    let recorded = crate::sidecar::recorded_sizes(side);
    let mut parts = Vec::new();
    let mut first_size = None;
    for (i, (_, n)) in lines.iter().enumerate() {
        let p = part_path(base, i);
        if *n != file_name(&p) {
            return Err(PartsError::BadManifest {
                path: side.to_path_buf(),
                reason: format!("line {} names {n:?}, expected {}", i + 1, file_name(&p)),
            });
        }
        let (_, size) = open_part(&p, side, lines.len())?;
        // The size the checksum file records (airlock 0.x wrote none: then every part but the
        // last is as long as the first).
        let expect = match recorded.get(n) {
            Some(&m) => Some(m),
            None => Some(*first_size.get_or_insert(size)).filter(|_| i + 1 < lines.len()),
        };
        if let Some(expected) = expect.filter(|&m| m != size) {
            return Err(PartsError::WrongSize {
                part: p,
                expected,
                actual: size,
                recorded_in: side.to_path_buf(),
            });
        }
        parts.push((p, size));
    }
    Ok(parts)
}

/// Opens a part listed in `layout_file` (of `count` parts): a regular file, not empty. Gives
/// its size too.
fn open_part(p: &Path, layout_file: &Path, count: usize) -> Result<(File, u64), PartsError> {
    let file = crate::input_file::open_regular(p).map_err(|e| match io::Error::from(e) {
        e if e.kind() == io::ErrorKind::NotFound => PartsError::Missing {
            part: p.to_path_buf(),
            manifest: layout_file.to_path_buf(),
            count,
        },
        source => PartsError::Io {
            part: p.to_path_buf(),
            source,
        },
    })?;
    match file.metadata() {
        Ok(m) if m.len() == 0 => Err(PartsError::Empty {
            part: p.to_path_buf(),
        }),
        Ok(m) => Ok((file, m.len())),
        Err(source) => Err(PartsError::Io {
            part: p.to_path_buf(),
            source,
        }),
    }
}

/// Refuses a `--split` size that would cut a bundle of about `estimate` bytes into more than
/// [`MAX_PARTS`] parts, naming the size to use instead (before anything is written).
pub fn check_split(split: u64, estimate: u64) -> Result<(), PartsError> {
    let parts = estimate.div_ceil(split.max(1));
    if parts <= MAX_PARTS as u64 {
        return Ok(());
    }
    // The smallest whole number of MiB that keeps the count within the limit.
    let mib = estimate.div_ceil(MAX_PARTS as u64).div_ceil(1 << 20).max(1);
    Err(PartsError::TooManyParts {
        split,
        estimate,
        parts,
        suggested: format!("{mib}M"),
    })
}

/// Opens a bundle, split or not (see [`locate`]).
pub fn open_bundle(path: &Path) -> Result<(BundleReader, Layout), PartsError> {
    let layout = locate(path)?;
    let reader = match &layout {
        Layout::Single(p) => BundleReader::open(p)?,
        Layout::Split { base, parts, .. } => {
            let src = PartsSource::open(parts)?;
            BundleReader::from_source(base, Arc::new(src))?
        }
    };
    Ok((reader, layout))
}

/// Several files read as one: positioned reads find their part by offset.
///
/// Parts are opened when a read first reaches them, and at most [`OPEN_PARTS`] stay open
/// (least recently used closed first), so a bundle of thousands of parts reads within a small
/// file-handle limit.
pub struct PartsSource {
    paths: Vec<(PathBuf, u64)>,
    /// Start offset of every part, plus the total length at the end.
    starts: Vec<u64>,
    /// Open parts, most recently used last.
    open: Mutex<Vec<(usize, Arc<File>)>>,
}

impl PartsSource {
    /// A source over `parts` (each path with its expected size). Only the first part is
    /// opened now, so a missing one is reported before anything is read.
    pub fn open(parts: &[(PathBuf, u64)]) -> Result<PartsSource, PartsError> {
        let mut starts = vec![0u64];
        for (_, size) in parts {
            let end = starts
                .last()
                .expect("non-empty")
                .checked_add(*size)
                .ok_or_else(|| PartsError::BadManifest {
                    path: parts[0].0.clone(),
                    reason: "the parts' sizes add up to more than 2^64 bytes".into(),
                })?;
            starts.push(end);
        }
        let src = PartsSource {
            paths: parts.to_vec(),
            starts,
            open: Mutex::new(Vec::new()),
        };
        if !parts.is_empty() {
            src.part(0).map_err(|source| PartsError::Io {
                part: parts[0].0.clone(),
                source,
            })?;
        }
        Ok(src)
    }

    /// Part `i`, opened if it is not.
    fn part(&self, i: usize) -> io::Result<Arc<File>> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(k) = open.iter().position(|(j, _)| *j == i) {
            let entry = open.remove(k);
            let f = entry.1.clone();
            open.push(entry);
            return Ok(f);
        }
        let (path, size) = &self.paths[i];
        let name = |e: io::Error| io::Error::new(e.kind(), format!("part {}: {e}", path.display()));
        let f = crate::input_file::open_regular(path).map_err(|e| name(e.into()))?;
        // The part may have changed since it was checked; its size at least must still agree.
        let len = f.metadata().map_err(name)?.len();
        if len != *size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "part {} is now {len} bytes, it was {size} when the bundle was opened",
                    path.display()
                ),
            ));
        }
        if open.len() >= OPEN_PARTS {
            open.remove(0);
        }
        let f = Arc::new(f);
        open.push((i, f.clone()));
        Ok(f)
    }
}

impl ReadAt for PartsSource {
    fn len(&self) -> u64 {
        *self.starts.last().expect("non-empty")
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.len() || buf.is_empty() {
            return Ok(0);
        }
        // The part holding `offset`: the last one starting at or before it.
        let i = self.starts.partition_point(|&s| s <= offset) - 1;
        let (path, size) = &self.paths[i];
        let file = self.part(i)?;
        let within = offset - self.starts[i];
        let n = ((size - within) as usize).min(buf.len());
        let got = std::os::unix::fs::FileExt::read_at(file.as_ref(), &mut buf[..n], within)?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "part {} ends before its recorded size {size} (at {within})",
                    path.display()
                ),
            ));
        }
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("fat32").unwrap(), 4_294_967_295);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("500M").unwrap(), 500 << 20);
        assert_eq!(parse_size("500MiB").unwrap(), 500 << 20);
        assert_eq!(parse_size("1048576").unwrap(), 1 << 20);
        assert_eq!(parse_size("64k").unwrap(), 64 << 10);
        for bad in ["", "x", "4X", "-1", "1", "99999999999T"] {
            let e = parse_size(bad).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid size {bad:?}: give bytes")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn split_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar.zst");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = SplitWriter::new(&base, 4096);
        for c in data.chunks(777) {
            w.write_all(c).unwrap();
        }
        let m = w.finish().unwrap();
        assert_eq!(m.parts.len(), 3);
        assert_eq!(m.total_size, 10_000);
        let parts: Vec<(PathBuf, u64)> = (0..3)
            .map(|i| (part_path(&base, i), m.parts[i].size))
            .collect();
        let src = PartsSource::open(&parts).unwrap();
        let mut all = vec![0u8; 10_000];
        crate::seekable::read_exact_at(&src, &mut all, 0).unwrap();
        assert_eq!(all, data);
        let mut mid = vec![0u8; 300];
        crate::seekable::read_exact_at(&src, &mut mid, 4000).unwrap();
        assert_eq!(mid, data[4000..4300]);
        // No temporary file is left.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn a_split_into_too_many_parts_is_refused_with_the_size_to_use() {
        assert!(check_split(4096, 4096 * MAX_PARTS as u64).is_ok());
        let e = check_split(4096, 4096 * MAX_PARTS as u64 + 1).unwrap_err();
        assert!(e.to_string().contains("use --split 1M or larger"), "{e}");
        let e = check_split(4 << 10, 100 << 30).unwrap_err().to_string();
        assert!(
            e.contains("about 26214400 parts") && e.contains("--split 11M"),
            "{e}"
        );
        assert!(check_split(11 << 20, 100 << 30).is_ok());
    }

    #[test]
    fn parts_are_opened_on_demand_and_few_stay_open() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar.zst");
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let mut w = SplitWriter::new(&base, 4096);
        w.write_all(&data).unwrap();
        let m = w.finish().unwrap();
        let parts: Vec<(PathBuf, u64)> = (0..m.parts.len())
            .map(|i| (part_path(&base, i), m.parts[i].size))
            .collect();
        let src = PartsSource::open(&parts).unwrap();
        assert_eq!(src.open.lock().unwrap().len(), 1);
        // Backwards, so every part is opened and most are closed again.
        for (i, chunk) in data.chunks(4000).enumerate().rev() {
            let mut got = vec![0u8; chunk.len()];
            crate::seekable::read_exact_at(&src, &mut got, i as u64 * 4000).unwrap();
            assert_eq!(got, chunk);
        }
        assert_eq!(src.open.lock().unwrap().len(), OPEN_PARTS);
        // A closed part that changed size since the bundle was opened is named when reopened
        // (the last reads left parts 0 to 15 open).
        std::fs::write(&parts[20].0, b"short").unwrap();
        let e = crate::seekable::read_exact_at(&src, &mut [0u8; 10], 20 * 4096).unwrap_err();
        assert!(
            e.to_string().contains("b.tar.zst.020 is now 5 bytes"),
            "{e}"
        );
    }

    #[test]
    fn a_writer_stops_at_the_most_parts_readers_accept() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar.zst");
        let mut w = SplitWriter::new(&base, 1);
        w.max_parts = 5;
        w.write_all(&[7u8; 5]).unwrap();
        let e = w.write_all(&[7u8]).unwrap_err();
        assert!(
            e.to_string().contains("more than 5 parts of 1 bytes"),
            "{e}"
        );
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("b.tar.zst");
        let mut w = SplitWriter::new(&base, 4096);
        w.write_all(&[1u8; 9000]).unwrap();
        drop(w);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
