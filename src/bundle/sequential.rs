//! A bundle read in order, without its seek table: a file recompressed with the plain `zstd`
//! tool (or the split parts of one), or standard input (`-`). A driver of the contract
//! ([`super::contract`]) like the walk through the seek table ([`super::check`]): each tar
//! header goes to the same [`EntryRules`], each document to the same [`Resolver`], and blobs
//! are delivered as they stream by.
//!
//! - A file (or its parts, read one after the other) is read twice: once to learn its
//!   documents and every entry, then to deliver blobs. So nothing is pushed from a bundle
//!   found damaged at its end, and the entries may come in any order: a document that comes
//!   before the manifest naming it is held (or found by one more pass over the documents, at
//!   most [`MAX_PASSES`] in all).
//! - Standard input is read once, in airlock's order (`oci-layout`, `index.json`,
//!   `bundle.json`, manifests, configs, layers). A document that arrives before the manifest
//!   naming it is held in memory (at most [`HELD_ONE`] bytes each, [`HELD_MAX`] in all, documents
//!   included); at the first larger blob, or the end, every document still wanted is missing.
//!
//! After the tar's end-of-archive block only a little zero padding may follow, and the zstd
//! stream must end cleanly ([`contract::trailer`]).

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;

use super::contract::{self, Checked, Refusal, Resolver};
use super::entries::{self, EntryRules, Header};
use super::format;
use super::limits::MAX_JSON_BYTES;
use super::reader::BundleError;
use super::BundleSource;
use crate::blob::Bytes;
use crate::digest::Digest;
use crate::manifest::MAX_MANIFEST_BYTES;
use crate::seekable::{InOrder, ReadAt};

/// Largest blob held in memory while no manifest names it yet.
pub const HELD_ONE: u64 = MAX_MANIFEST_BYTES;
/// Most bytes held in memory in all, standard input's documents included.
pub const HELD_MAX: u64 = 64 << 20;
/// Most passes over a file to find its documents (each level of an image, index, platform
/// manifest and config, can need one when the entries come in reverse order).
pub const MAX_PASSES: usize = 5;

/// Where the bytes come from.
enum Input {
    /// Standard input, until its one pass starts.
    Stdin(Option<Box<dyn Read + Send>>),
    /// A file, or the parts of a split bundle: read again for each pass.
    File(Arc<dyn ReadAt>),
}

/// A bundle read in order (see the module documentation).
pub struct Sequential {
    path: PathBuf,
    input: Input,
    /// For a file, why it has no seek table: said when reading it fails too.
    why: Option<String>,
    /// Standard input's pass, paused after the documents.
    paused: Option<TarStream>,
    /// Keep the documents read (standard input: its blob phase cannot read them again).
    keep_documents: bool,
    /// Blobs held in memory (documents, and small blobs met before their manifest).
    held: HashMap<Digest, Arc<[u8]>>,
    held_bytes: u64,
    /// Every blob entry met, with its size.
    seen: BTreeMap<Digest, u64>,
}

impl Sequential {
    /// Standard input (or any one-pass stream), named `path` in messages.
    pub fn stdin(path: &Path, r: Box<dyn Read + Send>) -> Sequential {
        Sequential::new(path, Input::Stdin(Some(r)), None)
    }

    /// A file or split parts without a seek table; `why` says why there is none.
    pub fn file(path: &Path, src: Arc<dyn ReadAt>, why: String) -> Sequential {
        Sequential::new(path, Input::File(src), Some(why))
    }

    fn new(path: &Path, input: Input, why: Option<String>) -> Sequential {
        Sequential {
            path: path.to_path_buf(),
            keep_documents: matches!(input, Input::Stdin(_)),
            input,
            why,
            paused: None,
            held: HashMap::new(),
            held_bytes: 0,
            seen: BTreeMap::new(),
        }
    }

    /// Why the file has no seek table, for a file.
    pub fn why_no_seek_table(&self) -> Option<&str> {
        self.why.as_deref()
    }

    /// A new pass from the first byte (standard input: its only one).
    fn start(&mut self) -> Result<TarStream, BundleError> {
        let raw: Box<dyn Read + Send> = match &mut self.input {
            Input::File(src) => Box::new(InOrder::new(src.clone())),
            Input::Stdin(r) => r.take().ok_or_else(|| {
                BundleError::refused(
                    &self.path,
                    Refusal::Bundle("standard input can be read only once".into()),
                )
            })?,
        };
        TarStream::new(&self.path, Box::new(crate::interrupt::Guarded(raw)))
    }

    /// Says, for a file, why it was read without a seek table.
    fn context(&self, e: BundleError) -> BundleError {
        match &self.why {
            Some(why) => BundleError::Sequential {
                why: why.clone(),
                source: Box::new(e),
            },
            None => e,
        }
    }

    /// Holds a small blob met before any manifest names it; false when there is no room.
    fn hold(&mut self, d: &Digest, raw: Arc<[u8]>) -> bool {
        let n = raw.len() as u64;
        if self.held.contains_key(d) {
            return true;
        }
        if n > HELD_ONE || self.held_bytes + n > HELD_MAX {
            return false;
        }
        self.held_bytes += n;
        self.held.insert(d.clone(), raw);
        true
    }

    /// Gives the resolver every wanted document that is held, until it wants nothing held.
    fn give_held(&self, resolver: &mut Resolver) -> Result<(), BundleError> {
        loop {
            let wanted = resolver.wanted().map_err(|r| self.refused(r))?;
            let ready: Vec<Digest> = wanted
                .into_iter()
                .filter(|d| self.held.contains_key(d))
                .collect();
            if ready.is_empty() {
                return Ok(());
            }
            for d in ready {
                let raw = &self.held[&d];
                if resolver.admit(&d, raw.len() as u64) {
                    resolver.give(&d, Ok(raw));
                }
            }
        }
    }

    fn refused(&self, r: Refusal) -> BundleError {
        BundleError::refused(&self.path, r)
    }

    /// The resolver of a bundle whose metadata is `meta`, checked in the order the seek
    /// table's reader checks it (layout, `bundle.json`, `index.json`), with what is held given.
    fn resolver(&self, meta: Meta) -> Result<Resolver, BundleError> {
        let refused = |r| self.refused(r);
        let doc = |d: Option<Result<Vec<u8>, Refusal>>, name: &str| match d {
            None => Err(Refusal::Missing(name.into())),
            Some(r) => r,
        };
        let layout = match meta.layout {
            None => None,
            Some(r) => Some(r.map_err(refused)?),
        };
        contract::layout(layout.as_deref()).map_err(refused)?;
        let bundle = doc(meta.bundle, format::BUNDLE_JSON).map_err(refused)?;
        let bundle = contract::bundle_json(&bundle).map_err(refused)?;
        let index = doc(meta.index, format::INDEX_JSON).map_err(refused)?;
        let index = contract::index_json(&index).map_err(refused)?;
        let mut resolver = Resolver::new(bundle, index).map_err(refused)?;
        self.give_held(&mut resolver)?;
        Ok(resolver)
    }

    /// A blob entry met while documents are still wanted: given to the resolver when wanted,
    /// held when small, else noted in `passed` (a file reads it in one more pass).
    fn document(
        &mut self,
        s: &mut TarStream,
        resolver: Option<&mut Resolver>,
        d: Digest,
        size: u64,
        passed: &mut Vec<Digest>,
    ) -> Result<(), BundleError> {
        match resolver {
            Some(r) if r.wants(&d) => {
                if r.admit(&d, size) {
                    match s.read_data_or_err() {
                        Ok(raw) => {
                            let raw: Arc<[u8]> = raw.into();
                            r.give(&d, Ok(&raw));
                            // Standard input cannot be read again: what the blob phase needs
                            // of it is kept.
                            if self.keep_documents && !self.hold(&d, raw) {
                                return Err(self.refused(Refusal::Bundle(format!(
                                    "more than {HELD_MAX} bytes of manifests and configs come before the layers; read the bundle from a file instead of standard input"
                                ))));
                            }
                        }
                        Err(e) => r.give(&d, Err(e)),
                    }
                }
                self.give_held(r)
            }
            Some(r) if r.is_done() => Ok(()),
            resolver if size <= HELD_ONE && self.held_bytes + size <= HELD_MAX => {
                let raw = s.read_data()?;
                self.hold(&d, raw.into());
                match resolver {
                    Some(r) => self.give_held(r),
                    None => Ok(()),
                }
            }
            _ => {
                passed.push(d);
                Ok(())
            }
        }
    }

    /// Every document the resolver still wants and nothing holds is missing.
    fn close_documents(&self, resolver: &mut Resolver) -> Result<(), BundleError> {
        loop {
            self.give_held(resolver)?;
            let wanted = resolver.wanted().map_err(|r| self.refused(r))?;
            if wanted.is_empty() {
                return Ok(());
            }
            for d in wanted {
                resolver.absent(&d);
            }
        }
    }

    /// A file: its documents and every entry, in as many passes as its order needs.
    fn check_file(&mut self) -> Result<Checked, BundleError> {
        let mut s = self.start()?;
        let mut meta = Meta::default();
        let mut resolver: Option<Resolver> = None;
        let mut passed = Vec::new();
        while let Some((name, size)) = s.next()? {
            match blob_digest(&name) {
                None => {
                    meta.read(&name, size, &mut s)?;
                    if resolver.is_none() && meta.is_complete() {
                        resolver = Some(self.resolver(std::mem::take(&mut meta))?);
                    }
                }
                Some(d) => {
                    self.seen.insert(d.clone(), size);
                    self.document(&mut s, resolver.as_mut(), d, size, &mut passed)?;
                }
            }
        }
        let mut resolver = match resolver {
            Some(r) => r,
            None => self.resolver(meta)?,
        };
        for _ in 1..MAX_PASSES {
            self.give_held(&mut resolver)?;
            if !passed.iter().any(|d| resolver.wants(d)) {
                break;
            }
            passed.clear();
            let mut s = self.start()?;
            while let Some((name, size)) = s.next()? {
                if let Some(d) = blob_digest(&name) {
                    self.document(&mut s, Some(&mut resolver), d, size, &mut passed)?;
                }
            }
        }
        self.close_documents(&mut resolver)?;
        let mut checked = resolver.finish();
        contract::complete(&mut checked, self.seen.clone());
        Ok(checked)
    }

    /// Standard input: its metadata first, then documents until the resolver wants nothing
    /// more; the pass is paused before the first blob it has not used.
    fn check_stdin(&mut self) -> Result<Checked, BundleError> {
        let mut s = self.start()?;
        let mut meta = Meta::default();
        // A blob before index.json and bundle.json: whether they come later (out of order)
        // or never (missing) is known only at the end.
        let mut early: Option<String> = None;
        while let Some((name, size)) = s.next()? {
            if blob_digest(&name).is_some() {
                if meta.index.is_some() && meta.bundle.is_some() {
                    s.unread(name, size);
                    break;
                }
                early.get_or_insert(name);
                continue;
            }
            if let Some(first) = &early {
                return Err(s.entry_err(first, EARLY.into()));
            }
            meta.read(&name, size, &mut s)?;
        }
        let mut resolver = self.resolver(meta)?;
        while !resolver.is_done() {
            let Some((name, size)) = s.next()? else {
                break;
            };
            let Some(d) = blob_digest(&name) else {
                return Err(s.entry_err(&name, LATE.into()));
            };
            let wanted = resolver.wants(&d);
            if !wanted && (size > HELD_ONE || self.held_bytes + size > HELD_MAX) {
                // In airlock's order every document came before this blob: what is still
                // wanted is missing.
                s.unread(name, size);
                break;
            }
            self.seen.insert(d.clone(), size);
            self.document(&mut s, Some(&mut resolver), d, size, &mut Vec::new())?;
        }
        self.close_documents(&mut resolver)?;
        self.paused = Some(s);
        Ok(resolver.finish())
    }

    /// Delivers the wanted blobs held in memory, in parallel.
    fn held_blobs(
        &self,
        wanted: &BTreeMap<Digest, u64>,
        jobs: usize,
        each: &(dyn Fn(&Digest, Bytes<'_>) + Sync),
    ) {
        let held: Vec<(&Digest, &Arc<[u8]>)> = self
            .held
            .iter()
            .filter(|(d, raw)| wanted.get(*d) == Some(&(raw.len() as u64)))
            .collect();
        let deliver = |(d, raw): &(&Digest, &Arc<[u8]>)| {
            let raw = (*raw).clone();
            let open = move || -> io::Result<Box<dyn Read + Send + 'static>> {
                Ok(Box::new(io::Cursor::new(raw.clone())))
            };
            each(d, Bytes::Reopen(&open));
        };
        match rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build()
        {
            Ok(pool) => pool.install(|| held.par_iter().with_max_len(1).for_each(deliver)),
            Err(_) => held.iter().for_each(deliver),
        }
    }

    /// Delivers the wanted blobs of the rest of pass `s`, one after the other.
    fn stream_blobs(
        &mut self,
        s: &mut TarStream,
        wanted: &BTreeMap<Digest, u64>,
        skip: &dyn Fn(&Digest) -> bool,
        each: &(dyn Fn(&Digest, Bytes<'_>) + Sync),
    ) -> Result<(), BundleError> {
        while let Some((name, size)) = s.next()? {
            // Metadata was read in the first pass.
            let Some(d) = blob_digest(&name) else {
                continue;
            };
            self.seen.insert(d.clone(), size);
            if wanted.get(&d) == Some(&size) && !skip(&d) {
                let mut data = s.data();
                each(&d, Bytes::Once(&mut data));
            }
        }
        Ok(())
    }
}

impl BundleSource for Sequential {
    fn path(&self) -> &Path {
        &self.path
    }

    fn check(&mut self) -> Result<Checked, BundleError> {
        let r = match self.input {
            Input::File(_) => self.check_file(),
            Input::Stdin(_) => self.check_stdin(),
        };
        r.map_err(|e| self.context(e))
    }

    fn blobs(
        &mut self,
        wanted: &BTreeMap<Digest, u64>,
        jobs: usize,
        each: &(dyn Fn(&Digest, Bytes<'_>) + Sync),
    ) -> Result<BTreeMap<Digest, u64>, BundleError> {
        let r = match self.paused.take() {
            // Standard input: what it held, then the rest of its one pass.
            Some(mut s) => {
                self.held_blobs(wanted, jobs, each);
                let held: Vec<Digest> = self.held.keys().cloned().collect();
                let skip = |d: &Digest| held.contains(d);
                self.stream_blobs(&mut s, wanted, &skip, each)
            }
            None => match self.start() {
                Ok(mut s) => self.stream_blobs(&mut s, wanted, &|_| false, each),
                Err(e) => Err(e),
            },
        };
        r.map_err(|e| self.context(e))?;
        Ok(self.seen.clone())
    }
}

/// What a sequential read says of metadata met after the blobs on standard input.
const LATE: &str = "comes after a blob; standard input must come in airlock's order (oci-layout, index.json, bundle.json, then the blobs): read the bundle from a file instead";

/// What a sequential read says of a blob met before the metadata on standard input.
const EARLY: &str = "comes before index.json and bundle.json; standard input must come in airlock's order (oci-layout, index.json, bundle.json, then the blobs): read the bundle from a file instead";

/// The digest of a blob entry's name (`blobs/sha256/<hex>`); `None` for the metadata.
fn blob_digest(name: &str) -> Option<Digest> {
    let hex = name.strip_prefix("blobs/sha256/")?;
    // The entry rules admit only valid digests as blob names.
    Digest::parse(&format!("sha256:{hex}")).ok()
}

/// `oci-layout`, `index.json` and `bundle.json`, each read (or refused for its size) as it
/// is met.
#[derive(Default)]
struct Meta {
    layout: Option<Result<Vec<u8>, Refusal>>,
    index: Option<Result<Vec<u8>, Refusal>>,
    bundle: Option<Result<Vec<u8>, Refusal>>,
}

impl Meta {
    fn read(&mut self, name: &str, size: u64, s: &mut TarStream) -> Result<(), BundleError> {
        let limit = if name == format::OCI_LAYOUT {
            4096
        } else {
            MAX_JSON_BYTES
        };
        let doc = match contract::document_size(name, size, limit) {
            Err(r) => Err(r),
            Ok(()) => Ok(s.read_data()?),
        };
        match name {
            format::OCI_LAYOUT => self.layout = Some(doc),
            format::INDEX_JSON => self.index = Some(doc),
            _ => self.bundle = Some(doc),
        }
        Ok(())
    }

    fn is_complete(&self) -> bool {
        self.layout.is_some() && self.index.is_some() && self.bundle.is_some()
    }
}

/// A [`ReadAt`] read from its first byte to its last.
/// A tar stream walked header by header with the bundle's [`EntryRules`], over the zstd
/// stream decoded as it is read.
struct TarStream {
    r: Box<dyn Read + Send>,
    path: PathBuf,
    /// Decompressed offset of the next byte to read.
    offset: u64,
    rules: EntryRules,
    /// The current entry: its header's offset, its size, and the bytes of its data not read.
    header_at: u64,
    size: u64,
    left: u64,
    /// An entry given back by [`TarStream::unread`], to be given again by the next
    /// [`TarStream::next`].
    peeked: Option<(String, u64)>,
    /// The end-of-archive block was read.
    ended: bool,
}

/// `size` rounded up to whole tar blocks.
fn padded(size: u64) -> Option<u64> {
    size.checked_add(511).map(|s| s / 512 * 512)
}

impl TarStream {
    fn new(path: &Path, raw: Box<dyn Read + Send>) -> Result<TarStream, BundleError> {
        let r = crate::seekable::streaming_decoder(raw).map_err(|source| BundleError::Read {
            path: path.to_path_buf(),
            offset: 0,
            source,
        })?;
        Ok(TarStream {
            r: Box::new(r),
            path: path.to_path_buf(),
            offset: 0,
            rules: EntryRules::new(),
            header_at: 0,
            size: 0,
            left: 0,
            peeked: None,
            ended: false,
        })
    }

    fn tar_err(&self, offset: u64, reason: String) -> BundleError {
        BundleError::Tar {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    fn entry_err(&self, name: &str, reason: String) -> BundleError {
        BundleError::Entry {
            path: self.path.clone(),
            name: name.to_string(),
            reason,
        }
    }

    fn read_err(&self, source: io::Error) -> BundleError {
        BundleError::Read {
            path: self.path.clone(),
            offset: self.offset,
            source,
        }
    }

    /// Fills `buf`; `Ok(false)` at the end of the stream (nothing read).
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, BundleError> {
        let mut done = 0;
        while done < buf.len() {
            match self.r.read(&mut buf[done..]) {
                Ok(0) if done == 0 => return Ok(false),
                Ok(0) => {
                    return Err(self.tar_err(
                        self.offset,
                        "the tar stream ends inside a header block".into(),
                    ))
                }
                Ok(n) => {
                    done += n;
                    self.offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_err(e)),
            }
        }
        Ok(true)
    }

    /// Reads past `n` bytes of the current entry's data and padding.
    fn skip(&mut self, n: u64) -> Result<(), BundleError> {
        let mut buf = vec![0u8; (n.min(1 << 20)) as usize];
        let mut left = n;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            match self.r.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(self.tar_err(
                        self.header_at,
                        format!(
                            "entry claims {} bytes, past the end of the stream ({} bytes)",
                            self.size, self.offset
                        ),
                    ))
                }
                Ok(k) => {
                    left -= k as u64;
                    self.offset += k as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_err(e)),
            }
        }
        Ok(())
    }

    /// The next entry airlock reads (`oci-layout`, `index.json`, `bundle.json` or a blob),
    /// with its size; `None` after the end-of-archive block. Directories and other files are
    /// read past.
    fn next(&mut self) -> Result<Option<(String, u64)>, BundleError> {
        if let Some(p) = self.peeked.take() {
            return Ok(Some(p));
        }
        if self.ended {
            return Ok(None);
        }
        let rest = self.left;
        self.skip(rest)?;
        self.left = 0;
        loop {
            let at = self.offset;
            let mut block = [0u8; 512];
            if !self.fill(&mut block)? {
                return Err(self.tar_err(
                    at,
                    "the tar stream ends without its end-of-archive blocks".into(),
                ));
            }
            if block.iter().all(|&b| b == 0) {
                self.ended = true;
                self.trailer()?;
                let refused = |s: &Self, r| s.refused(at, r);
                self.rules.finish().map_err(|r| refused(self, r))?;
                return Ok(None);
            }
            let verdict = self
                .rules
                .header(tar::Header::from_byte_slice(&block), at)
                .map_err(|r| self.refused(at, r))?;
            let size = match &verdict {
                Header::Directory => 0,
                Header::Extension { size }
                | Header::Known { size, .. }
                | Header::Unknown { size } => *size,
            };
            let total = padded(size).ok_or_else(|| {
                self.tar_err(
                    at,
                    format!("entry claims {size} bytes, past the end of the stream"),
                )
            })?;
            (self.header_at, self.size, self.left) = (at, size, total);
            match verdict {
                Header::Extension { .. } => {
                    let raw = self.read_data()?;
                    self.skip(self.left)?;
                    self.left = 0;
                    self.rules
                        .extension(&raw)
                        .map_err(|r| self.refused(at, r))?;
                }
                Header::Directory | Header::Unknown { .. } => {
                    self.skip(total)?;
                    self.left = 0;
                }
                Header::Known { name, size } => return Ok(Some((name, size))),
            }
        }
    }

    /// Gives back the entry [`TarStream::next`] just gave, its data unread.
    fn unread(&mut self, name: String, size: u64) {
        self.peeked = Some((name, size));
    }

    /// The current entry's data, read whole (its size was checked by the caller).
    fn read_data(&mut self) -> Result<Vec<u8>, BundleError> {
        let mut raw = Vec::with_capacity(self.size as usize);
        let r = self.data().read_to_end(&mut raw);
        match r {
            Ok(_) => Ok(raw),
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(self.tar_err(
                self.header_at,
                format!(
                    "entry claims {} bytes, past the end of the stream ({} bytes)",
                    self.size, self.offset
                ),
            )),
            Err(e) => Err(self.read_err(e)),
        }
    }

    /// Like [`TarStream::read_data`], the failure as a message (for a document's verdict).
    fn read_data_or_err(&mut self) -> Result<Vec<u8>, String> {
        self.read_data().map_err(|e| crate::error_chain(&e))
    }

    /// A reader of the current entry's data.
    fn data(&mut self) -> EntryData<'_> {
        let data = self.size.min(self.left);
        let unread_pad = self.left - data;
        EntryData {
            s: self,
            data,
            pad: unread_pad,
        }
    }

    /// After the end-of-archive block: at most [`contract::MAX_TRAILER`] bytes, all zero,
    /// then the end of a well-formed zstd stream.
    fn trailer(&mut self) -> Result<(), BundleError> {
        let mut rest = Vec::new();
        (&mut self.r)
            .take(contract::MAX_TRAILER + 1)
            .read_to_end(&mut rest)
            .map_err(|e| self.read_err(e))?;
        self.offset += rest.len() as u64;
        let zeros = rest.iter().all(|&b| b == 0);
        contract::trailer(rest.len() as u64, zeros).map_err(|r| BundleError::refused(&self.path, r))
    }

    /// The error for what [`EntryRules`] refused, at the header's `offset` in the tar.
    fn refused(&self, offset: u64, r: entries::Refusal) -> BundleError {
        match r {
            entries::Refusal::Header(reason) => self.tar_err(offset, reason),
            entries::Refusal::Entry { name, reason } => self.entry_err(&name, reason),
        }
    }
}

/// The data of the current entry: at most its size, and a failure at an early end.
struct EntryData<'a> {
    s: &'a mut TarStream,
    /// Data bytes not read yet.
    data: u64,
    /// Padding after the data.
    pad: u64,
}

impl Read for EntryData<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.data == 0 {
            return Ok(0);
        }
        let want = (buf.len() as u64).min(self.data) as usize;
        let n = self.s.r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the stream ends {} bytes before the end of the entry",
                    self.data
                ),
            ));
        }
        self.data -= n as u64;
        self.s.offset += n as u64;
        self.s.left = self.data + self.pad;
        Ok(n)
    }
}
