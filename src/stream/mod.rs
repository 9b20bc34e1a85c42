//! Reading a bundle without a seek table, in one sequential pass: a bundle recompressed with
//! the plain `zstd` tool, or one read from a pipe (`-`).
//!
//! The pass relies on the entry order every airlock bundle has (`oci-layout`, `index.json`,
//! `bundle.json`, then manifests, configs and layers): small blobs (up to 4 MiB, at most
//! 64 MiB of them in all) are held in memory until the manifests that use them are known;
//! every larger blob must already be known to be needed when it arrives, and is hashed (and,
//! for `unpack`, uploaded) as it streams. Entries are validated as in
//! [`crate::bundle::reader`]: only regular files, no links, devices, `..` or absolute names,
//! no duplicates.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bundle::check::{ImageContent, Problem};
use crate::bundle::entries::{EntryRules, Header, Refusal};
use crate::bundle::format::{self, BundleManifest, OciIndex};
use crate::bundle::limits::{self, Budget, MAX_CONFIG_BYTES};
use crate::bundle::reader::{BundleError, MAX_JSON_BYTES};
use crate::digest::{Digest, Hasher};
use crate::manifest::{self, BlobRef, Parsed};
use crate::media_type::{self, Kind};
use crate::progress::Reporter;
use crate::registry::MAX_MANIFEST_BYTES;
use crate::unpack::UnpackError;

/// Blobs up to this size may be held in memory while their manifest is not known yet.
const SMALL_BLOB: u64 = MAX_MANIFEST_BYTES;
/// At most this much is held in memory in all.
const SMALL_TOTAL: u64 = 64 << 20;

mod sinks;

pub use sinks::{unpack_stream, verify_stream};

/// What happens to the blobs as they stream by.
trait Consumer {
    /// Called once, after `bundle.json`, before any blob.
    fn start(&mut self, bundle: &BundleManifest) -> Result<(), UnpackError>;
    /// A needed blob from memory (already verified).
    fn small_blob(&mut self, d: &Digest, data: &[u8], users: &BTreeSet<String>);
    /// A needed blob streaming by; the consumer must read exactly `size` bytes from `r` and
    /// report a mismatch as an error string.
    fn stream_blob(
        &mut self,
        d: &Digest,
        size: u64,
        r: &mut dyn Read,
        users: &BTreeSet<String>,
    ) -> Result<(), String>;
}

/// The state of one sequential pass.
struct Pass<'a> {
    path: PathBuf,
    reporter: &'a dyn Reporter,
    bundle: Option<BundleManifest>,
    index: Option<OciIndex>,
    /// Verified small blobs, shared with the images that push them.
    small: HashMap<Digest, Arc<[u8]>>,
    small_total: u64,
    /// Sizes of the blobs seen and found good.
    good: BTreeMap<Digest, u64>,
    problems: Vec<Problem>,
    /// Manifests expected: digest -> (media type, size, the images that use it).
    expected: BTreeMap<Digest, (String, u64, BTreeSet<String>)>,
    /// What the images cost in all (the same bounds as through the seek table).
    budget: Budget,
    parsed: BTreeMap<Digest, Parsed>,
    /// Configs and layers referenced so far: digest -> (size, images).
    needed: BTreeMap<Digest, (u64, BTreeSet<String>)>,
    configs: BTreeSet<Digest>,
    delivered: BTreeSet<Digest>,
    blobs: usize,
    bytes: u64,
}

impl<'a> Pass<'a> {
    fn new(path: &Path, reporter: &'a dyn Reporter) -> Pass<'a> {
        Pass {
            path: path.to_path_buf(),
            reporter,
            bundle: None,
            index: None,
            small: HashMap::new(),
            small_total: 0,
            good: BTreeMap::new(),
            problems: Vec::new(),
            expected: BTreeMap::new(),
            budget: Budget::new(),
            parsed: BTreeMap::new(),
            needed: BTreeMap::new(),
            configs: BTreeSet::new(),
            delivered: BTreeSet::new(),
            blobs: 0,
            bytes: 0,
        }
    }

    fn entry_err(&self, name: &str, reason: impl Into<String>) -> BundleError {
        BundleError::Entry {
            path: self.path.clone(),
            name: name.to_string(),
            reason: reason.into(),
        }
    }

    /// A read of the stream failed at (or after) the header at `offset`.
    fn stream_err(&self, offset: u64, source: io::Error) -> BundleError {
        BundleError::Read {
            path: self.path.clone(),
            offset,
            source,
        }
    }

    fn run(&mut self, src: impl Read, consumer: &mut dyn Consumer) -> Result<(), UnpackError> {
        let decoder = crate::seekable::streaming_decoder(src).map_err(|e| self.stream_err(0, e))?;
        let mut archive = tar::Archive::new(decoder);
        // Raw entries: PAX and GNU long-name records come as entries of their own, judged by
        // the same rules as through the seek table (the tar crate would read them whole,
        // however large).
        let entries = archive
            .entries()
            .map_err(|e| self.stream_err(0, e))?
            .raw(true);
        let mut rules = EntryRules::new();
        let mut offset = 0;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.stream_err(offset, e))?;
            offset = entry.raw_header_position();
            let verdict = rules
                .header(entry.header(), offset)
                .map_err(|r| self.refused(offset, r))?;
            let (name, size) = match verdict {
                Header::Extension { size } => {
                    let mut raw = Vec::with_capacity(size as usize);
                    (&mut entry)
                        .take(size)
                        .read_to_end(&mut raw)
                        .map_err(|e| self.stream_err(offset, e))?;
                    rules.extension(&raw).map_err(|r| self.refused(offset, r))?;
                    continue;
                }
                Header::Directory => continue,
                // Unknown regular files (an operator's metadata) are read past.
                Header::Unknown { .. } => {
                    io::copy(&mut entry, &mut io::sink())
                        .map_err(|e| self.stream_err(offset, e))?;
                    continue;
                }
                Header::Known { name, size } => (name, size),
            };
            match name.as_str() {
                format::OCI_LAYOUT | format::INDEX_JSON | format::BUNDLE_JSON => {
                    let raw = self.read_json(&name, size, &mut entry)?;
                    self.metadata(&name, &raw)?;
                    if self.bundle.is_some() && self.index.is_some() && name != format::OCI_LAYOUT {
                        let b = self.bundle.clone().expect("just set");
                        self.expect_images(&b)?;
                        consumer.start(&b)?;
                    }
                }
                n => {
                    if self.bundle.is_none() || self.index.is_none() {
                        return Err(self
                            .entry_err(n, "a blob comes before index.json and bundle.json; a sequential read needs them first")
                            .into());
                    }
                    // The rules admit only blobs/sha256/<valid digest> besides the three above.
                    let hex = n.strip_prefix("blobs/sha256/").unwrap_or(n);
                    let d = Digest::parse(&format!("sha256:{hex}"))
                        .map_err(|e| self.entry_err(n, format!("not a valid blob name: {e}")))?;
                    self.blob(d, size, &mut entry, consumer)?;
                }
            }
        }
        rules.finish().map_err(|r| self.refused(offset, r))?;
        // After the end-of-archive blocks only zero padding may follow, and the compressed
        // stream must end cleanly: appended bytes or a cut-off frame are refused.
        let mut rest = archive.into_inner();
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = rest
                .read(&mut buf)
                .map_err(|e| self.stream_err(offset, e))?;
            if n == 0 {
                break;
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(BundleError::Format {
                    path: self.path.clone(),
                    reason: "data follows the end of the tar archive".into(),
                }
                .into());
            }
        }
        Ok(())
    }

    /// The error for what [`EntryRules`] refused, at the header's `offset` in the tar.
    fn refused(&self, offset: u64, r: Refusal) -> BundleError {
        match r {
            Refusal::Header(reason) => BundleError::Tar {
                path: self.path.clone(),
                offset,
                reason,
            },
            Refusal::Entry { name, reason } => self.entry_err(&name, reason),
        }
    }

    fn read_json(&self, name: &str, size: u64, r: &mut dyn Read) -> Result<Vec<u8>, BundleError> {
        if size > MAX_JSON_BYTES {
            return Err(BundleError::TooLarge {
                path: self.path.clone(),
                name: name.to_string(),
                size,
                limit: MAX_JSON_BYTES,
            });
        }
        let mut raw = Vec::with_capacity(size as usize);
        r.take(size)
            .read_to_end(&mut raw)
            .map_err(|source| BundleError::Read {
                path: self.path.clone(),
                offset: 0,
                source,
            })?;
        Ok(raw)
    }

    fn metadata(&mut self, name: &str, raw: &[u8]) -> Result<(), BundleError> {
        let json_err = |source| BundleError::Json {
            path: self.path.clone(),
            name: name.to_string(),
            source,
        };
        match name {
            format::BUNDLE_JSON => {
                let m: BundleManifest = serde_json::from_slice(raw).map_err(json_err)?;
                if m.format != format::FORMAT_NAME || !format::is_readable(m.format_version) {
                    return Err(BundleError::Format {
                        path: self.path.clone(),
                        reason: format!(
                            "bundle.json says format {:?} version {}; this airlock reads {} versions {:?}",
                            m.format,
                            m.format_version,
                            format::FORMAT_NAME,
                            format::READABLE_VERSIONS
                        ),
                    });
                }
                limits::image_count(m.images.len()).map_err(|what| BundleError::Format {
                    path: self.path.clone(),
                    reason: format!("bundle.json lists {what}"),
                })?;
                self.bundle = Some(m);
            }
            format::INDEX_JSON => {
                let index: OciIndex = serde_json::from_slice(raw).map_err(json_err)?;
                limits::image_count(index.manifests.len()).map_err(|what| BundleError::Format {
                    path: self.path.clone(),
                    reason: format!("index.json lists {what}"),
                })?;
                self.index = Some(index);
            }
            _ => {
                serde_json::from_slice::<serde::de::IgnoredAny>(raw).map_err(json_err)?;
            }
        }
        Ok(())
    }

    /// The manifests `bundle.json` and `index.json` promise.
    fn expect_images(&mut self, b: &BundleManifest) -> Result<(), BundleError> {
        let index = self.index.as_ref().expect("read before");
        let by_name: BTreeMap<&str, &format::Descriptor> = index
            .manifests
            .iter()
            .filter_map(|d| Some((d.annotations.get(format::ANNOTATION_REF_NAME)?.as_str(), d)))
            .collect();
        let mut problems = Vec::new();
        for rec in &b.images {
            // The same target rule as through the seek table: `unpack` would refuse it.
            if let Err(what) = crate::bundle::check::check_targets(rec) {
                problems.push(Problem {
                    subject: rec.source.clone(),
                    what,
                });
            }
            match by_name.get(rec.source.as_str()) {
                Some(d)
                    if d.digest == rec.digest
                        && d.size == rec.size
                        && d.media_type == rec.media_type =>
                {
                    self.budget
                        .manifest(&rec.digest, rec.size)
                        .map_err(|what| self.bundle_err(what))?;
                    self.expected
                        .entry(rec.digest.clone())
                        .or_insert((rec.media_type.clone(), rec.size, BTreeSet::new()))
                        .2
                        .insert(rec.source.clone());
                    self.budget
                        .references(1)
                        .map_err(|what| self.bundle_err(what))?;
                }
                _ => problems.push(Problem {
                    subject: rec.source.clone(),
                    what: "bundle.json and index.json disagree about this image".into(),
                }),
            }
        }
        if by_name.len() != b.images.len() {
            problems.push(Problem {
                subject: format::INDEX_JSON.into(),
                what: format!(
                    "lists {} images, bundle.json {}",
                    by_name.len(),
                    b.images.len()
                ),
            });
        }
        problems.extend(crate::bundle::check::collisions(&b.images));
        self.problems.extend(problems);
        Ok(())
    }

    /// A bound of the whole bundle was passed: it is refused, nothing more is read.
    fn bundle_err(&self, what: String) -> BundleError {
        BundleError::Format {
            path: self.path.clone(),
            reason: crate::said_of(format::BUNDLE_JSON, &what),
        }
    }

    fn blob(
        &mut self,
        d: Digest,
        size: u64,
        r: &mut dyn Read,
        consumer: &mut dyn Consumer,
    ) -> Result<(), UnpackError> {
        self.blobs += 1;
        self.bytes = self.bytes.saturating_add(size);
        if size <= SMALL_BLOB && self.small_total + size <= SMALL_TOTAL {
            let mut data = Vec::with_capacity(size as usize);
            let mut h = Hasher::new();
            let read = r.take(size).read_to_end(&mut data);
            self.reporter.advance(size);
            if let Err(e) = read {
                self.bad(&d, format!("unreadable: {e}"));
                return Err(self.read_error(e));
            }
            h.update(&data);
            let actual = h.finish();
            if actual != d {
                self.bad(&d, format!("wrong digest: its bytes hash to {actual}"));
                return Ok(());
            }
            self.good.insert(d.clone(), size);
            self.small_total += size;
            self.small.insert(d, data.into());
            return self.resolve(consumer).map_err(Into::into);
        }
        let users = match self.needed.get(&d) {
            Some((want, users)) if *want == size => users.clone(),
            Some((want, _)) => {
                self.bad(&d, format!("{size} bytes in the bundle, its manifest says {want}"));
                io::copy(r, &mut io::sink()).map_err(|e| self.read_error(e))?;
                return Ok(());
            }
            None if self.expected.keys().all(|m| self.parsed.contains_key(m)) => {
                // Every manifest is known and none uses it: hash it and move on.
                let result = hash_stream(r, size, &d, self.reporter);
                match result {
                    Ok(()) => {
                        self.good.insert(d, size);
                    }
                    Err(e) => self.bad(&d, e),
                }
                return Ok(());
            }
            None => {
                return Err(self
                    .entry_err(
                        &format::blob_entry(&d),
                        format!("this {size}-byte blob comes before the manifest that uses it; a sequential read cannot hold it (use a bundle with its seek table)"),
                    )
                    .into())
            }
        };
        match consumer.stream_blob(&d, size, r, &users) {
            Ok(()) => {
                self.good.insert(d.clone(), size);
                self.delivered.insert(d);
            }
            Err(e) => self.bad(&d, e),
        }
        Ok(())
    }

    fn read_error(&self, source: io::Error) -> UnpackError {
        BundleError::Read {
            path: self.path.clone(),
            offset: 0,
            source,
        }
        .into()
    }

    fn bad(&mut self, d: &Digest, what: String) {
        let used_by = self
            .needed
            .get(d)
            .map(|(_, u)| format!(" (used by {})", some_of(u)))
            .unwrap_or_default();
        self.problems.push(Problem {
            subject: format!("blob {d}"),
            what: format!("{what}{used_by}"),
        });
    }

    /// Parses every expected manifest that has arrived, learning what else is needed, and
    /// hands over small blobs that are now known to be needed. `Err` when the images pass a
    /// bound of the whole bundle.
    fn resolve(&mut self, consumer: &mut dyn Consumer) -> Result<(), BundleError> {
        loop {
            let ready: Vec<Digest> = self
                .expected
                .keys()
                .filter(|d| !self.parsed.contains_key(*d) && self.small.contains_key(*d))
                .cloned()
                .collect();
            if ready.is_empty() {
                break;
            }
            for d in ready {
                let (mt, size, owners) = self.expected[&d].clone();
                let raw = self.small[&d].clone();
                let parsed = if raw.len() as u64 != size {
                    Err(format!(
                        "manifest {d}: {} bytes, its descriptor says {size}",
                        raw.len()
                    ))
                } else if media_type::kind(&mt) == Kind::Schema1 {
                    // Kept with --keep-digests: its layer sizes come from bundle.json.
                    let rec = self.bundle.as_ref().and_then(|b| {
                        b.images
                            .iter()
                            .find(|r| owners.contains(&r.source) && r.digest == d)
                    });
                    match rec {
                        Some(rec) => rec
                            .schema1_blobs(&raw)
                            .map(|layers| Parsed::Schema1 { layers }),
                        None => Err(format!(
                            "manifest {d}: a schema 1 manifest is only read as an image's own"
                        )),
                    }
                } else {
                    manifest::parse(&format!("manifest {d}"), &mt, &raw).map_err(|e| e.to_string())
                };
                let parsed = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        self.problem_of(&owners, &e);
                        self.parsed.insert(d, Parsed::Index(vec![]));
                        continue;
                    }
                };
                match &parsed {
                    Parsed::Index(children) => match limits::index_children(size, children) {
                        Err(e) => self.problem_of(&owners, &e),
                        Ok(children) => {
                            for c in children {
                                if media_type::kind(&c.blob.media_type) != Kind::Manifest {
                                    self.problem_of(
                                        &owners,
                                        &format!(
                                            "platform manifest {} is not an image manifest",
                                            c.blob.digest
                                        ),
                                    );
                                    continue;
                                }
                                self.budget
                                    .manifest(&c.blob.digest, c.blob.size)
                                    .map_err(|what| self.bundle_err(what))?;
                                self.expected.entry(c.blob.digest.clone()).or_insert((
                                    c.blob.media_type.clone(),
                                    c.blob.size,
                                    BTreeSet::new(),
                                ));
                            }
                        }
                    },
                    Parsed::Image { config, .. } => {
                        if let Err(e) = limits::config_size(config) {
                            self.problem_of(&owners, &e);
                        }
                        self.configs.insert(config.digest.clone());
                    }
                    // Its layers are owned below, as an image manifest's are.
                    Parsed::Schema1 { .. } => {}
                }
                self.parsed.insert(d.clone(), parsed);
                // What it points at is used by every image that uses it.
                for o in &owners {
                    self.own(&d, o)?;
                }
            }
        }
        let ready: Vec<Digest> = self
            .needed
            .keys()
            .filter(|d| !self.delivered.contains(*d) && self.small.contains_key(*d))
            .cloned()
            .collect();
        for d in ready {
            let (size, users) = self.needed[&d].clone();
            let data = self.small[&d].clone();
            if data.len() as u64 != size {
                self.bad(
                    &d,
                    format!(
                        "{} bytes in the bundle, its manifest says {size}",
                        data.len()
                    ),
                );
                self.delivered.insert(d);
                continue;
            }
            if self.configs.contains(&d)
                && (size > MAX_CONFIG_BYTES
                    || serde_json::from_slice::<serde::de::IgnoredAny>(&data).is_err())
            {
                self.bad(&d, "the image config is not valid JSON".into());
                self.delivered.insert(d);
                continue;
            }
            consumer.small_blob(&d, &data, &users);
            self.delivered.insert(d);
        }
        Ok(())
    }

    /// Records that image `owner` uses manifest `d`, and so what `d` points at once it is
    /// parsed (platform manifests, config, layers), counting each new reference.
    fn own(&mut self, d: &Digest, owner: &str) -> Result<(), BundleError> {
        let mut new = 0;
        let mut todo = vec![d.clone()];
        while let Some(m) = todo.pop() {
            let Some(e) = self.expected.get_mut(&m) else {
                continue;
            };
            if !e.2.insert(owner.to_string()) && m != *d {
                continue;
            }
            new += usize::from(m != *d);
            match self.parsed.get(&m) {
                Some(Parsed::Index(children)) => {
                    let size = e.1;
                    if let Ok(children) = limits::index_children(size, children) {
                        todo.extend(children.into_iter().map(|c| c.blob.digest.clone()));
                    }
                }
                Some(p @ (Parsed::Image { .. } | Parsed::Schema1 { .. })) => {
                    for b in p.blobs() {
                        let users = &mut self
                            .needed
                            .entry(b.digest.clone())
                            .or_insert((b.size, BTreeSet::new()))
                            .1;
                        new += usize::from(users.insert(owner.to_string()));
                    }
                }
                None => {}
            }
        }
        self.budget
            .references(new)
            .map_err(|what| self.bundle_err(what))
    }

    /// A problem of every image in `owners`.
    fn problem_of(&mut self, owners: &BTreeSet<String>, what: &str) {
        for o in owners {
            self.problems.push(Problem {
                subject: o.clone(),
                what: what.to_string(),
            });
        }
    }

    /// Blobs a delta bundle relies on its base for.
    fn omitted(&self) -> BTreeMap<Digest, u64> {
        self.bundle
            .as_ref()
            .map(BundleManifest::omitted)
            .unwrap_or_default()
    }

    /// What is missing at the end of the pass.
    fn finish(&mut self) {
        let Some(count) = self.bundle.as_ref().map(|b| b.blobs.count) else {
            self.problems.push(Problem {
                subject: format::BUNDLE_JSON.into(),
                what: "the bundle has no bundle.json".into(),
            });
            return;
        };
        let missing_manifests: Vec<(Digest, BTreeSet<String>)> = self
            .expected
            .iter()
            .filter(|(d, _)| !self.parsed.contains_key(*d))
            .map(|(d, (_, _, owners))| (d.clone(), owners.clone()))
            .collect();
        for (d, owners) in missing_manifests {
            self.problem_of(&owners, &format!("manifest {d} is missing from the bundle"));
        }
        let omitted = self.omitted();
        let reported: HashSet<&str> = self.problems.iter().map(|p| p.subject.as_str()).collect();
        let missing: Vec<Digest> = self
            .needed
            .keys()
            .filter(|d| {
                !self.good.contains_key(*d)
                    && !omitted.contains_key(*d)
                    && !reported.contains(format!("blob {d}").as_str())
            })
            .cloned()
            .collect();
        for d in missing {
            self.bad(&d, "missing from the bundle".into());
        }
        let referenced: u64 = (self.needed.len() - omitted.len().min(self.needed.len())) as u64
            + self.parsed.len() as u64;
        if self.problems.is_empty() && count != referenced {
            self.problems.push(Problem {
                subject: format::BUNDLE_JSON.into(),
                what: format!(
                    "its totals ({count} blobs) disagree with the images ({referenced} blobs)"
                ),
            });
        }
    }

    /// The images whose manifests and blobs all arrived intact, ready to push.
    fn complete_images(&self) -> Vec<ImageContent> {
        let Some(bundle) = &self.bundle else {
            return vec![];
        };
        let users_of: HashMap<String, &BTreeSet<String>> = self
            .needed
            .iter()
            .map(|(d, (_, u))| (format!("blob {d}"), u))
            .collect();
        let failed: HashSet<&str> = self
            .problems
            .iter()
            .flat_map(|p| {
                std::iter::once(p.subject.as_str()).chain(
                    users_of
                        .get(&p.subject)
                        .into_iter()
                        .flat_map(|u| u.iter().map(String::as_str)),
                )
            })
            .collect();
        let mut out = Vec::new();
        for rec in &bundle.images {
            if failed.contains(rec.source.as_str()) {
                continue;
            }
            let (Some(top), Some(raw)) =
                (self.parsed.get(&rec.digest), self.small.get(&rec.digest))
            else {
                continue;
            };
            let mut manifests = Vec::new();
            let mut blobs: Vec<BlobRef> = Vec::new();
            let mut seen = HashSet::new();
            let mut push_blobs = |p: &Parsed| {
                for b in p.blobs() {
                    if seen.insert(b.digest.clone()) {
                        blobs.push(b.clone());
                    }
                }
            };
            let mut ok = true;
            if let Parsed::Index(children) = top {
                let Ok(children) = limits::index_children(rec.size, children) else {
                    continue;
                };
                for c in children {
                    match (
                        self.parsed.get(&c.blob.digest),
                        self.small.get(&c.blob.digest),
                    ) {
                        (Some(p), Some(raw)) => {
                            push_blobs(p);
                            manifests.push((
                                c.blob.digest.clone(),
                                c.blob.media_type.clone(),
                                raw.clone(),
                            ));
                        }
                        _ => ok = false,
                    }
                }
            } else {
                push_blobs(top);
            }
            manifests.push((rec.digest.clone(), rec.media_type.clone(), raw.clone()));
            if ok && blobs.iter().all(|b| self.good.contains_key(&b.digest)) {
                out.push(ImageContent {
                    record: rec.clone(),
                    manifests,
                    blobs,
                });
            }
        }
        out
    }
}

/// The first few of `names`, and how many more, for a message.
fn some_of(names: &BTreeSet<String>) -> String {
    const SHOWN: usize = 5;
    let first: Vec<&str> = names.iter().take(SHOWN).map(String::as_str).collect();
    match names.len().saturating_sub(SHOWN) {
        0 => first.join(", "),
        more => format!("{} and {more} more", first.join(", ")),
    }
}

fn hash_stream(
    r: &mut dyn Read,
    size: u64,
    d: &Digest,
    reporter: &dyn Reporter,
) -> Result<(), String> {
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut limited = r.take(size);
    loop {
        let n = limited
            .read(&mut buf)
            .map_err(|e| format!("unreadable: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        reporter.advance(n as u64);
    }
    if h.len() != size {
        return Err(format!("truncated: {} of {size} bytes", h.len()));
    }
    let actual = h.finish();
    if actual != *d {
        return Err(format!("wrong digest: its bytes hash to {actual}"));
    }
    Ok(())
}
