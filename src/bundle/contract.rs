//! The bundle contract: every rule a bundle must satisfy, written once, as functions over
//! parsed metadata and facts about its blobs, with no I/O. Every reader is only a driver that
//! gathers those facts and hands them over: the walk through the seek table
//! ([`super::check`]) and the sequential pass (`crate::stream`, for a bundle without its seek
//! table and for standard input). A hostile bundle thus gets the same verdict whichever way it
//! is read (tests/it/hostile.rs runs every case three ways).
//!
//! The rules, in the order a reader meets them:
//! - [`layout`]: `oci-layout` is there and says version 1.0.0 (image-spec `image-layout.md`);
//! - [`bundle_json`], [`index_json`]: at most [`MAX_JSON_BYTES`], nested at most
//!   [`MAX_JSON_DEPTH`] levels, a format and version this airlock reads, at most
//!   [`limits::MAX_IMAGES`] images;
//! - [`Resolver::new`]: `index.json` and `bundle.json` name the same images with the same
//!   descriptors; every source is a reference in the distribution grammar (no control
//!   character); every target passes [`target`], the one target rule `unpack` builds its
//!   references with ([`target_reference`]); no two images share a target;
//! - [`Resolver`]: every manifest, index and config an image needs is there, of the size its
//!   descriptor says, within its limit, hashes to its digest, is nested at most
//!   [`MAX_JSON_DEPTH`] levels and parses ([`manifest`], [`config`]); embedded `data` of a
//!   descriptor matches it ([`crate::manifest::parse`]); the bundle stays within the bounds of
//!   [`limits`];
//! - [`complete`]: every config and layer is there with the size its descriptor says (a delta
//!   bundle's omitted blobs aside), and `bundle.json`'s totals agree with the images;
//! - [`unused`]: `verify` names a blob entry no image uses.
//!
//! Layers are not hashed here: `verify` hashes them, `unpack` hashes them while it uploads.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::format::{self, BundleManifest, ImageRecord, OciIndex, ANNOTATION_REF_NAME};
use super::limits::{self, Budget, MAX_CONFIG_BYTES, MAX_JSON_BYTES};
use crate::digest::Digest;
use crate::manifest::{self, BlobRef, Parsed, MAX_MANIFEST_BYTES};
use crate::media_type::{self, Kind};
use crate::problem::Problem;
use crate::reference::Reference;

/// The `imageLayoutVersion` of every bundle (image-spec `image-layout.md`).
pub const LAYOUT_VERSION: &str = "1.0.0";

/// Deepest nesting of arrays and objects accepted in any JSON document of a bundle. Real
/// ones nest fewer than ten levels. serde_json stops at 128 levels only where it builds a
/// value; an unknown field it skips may nest without bound, and a registry refuses such a
/// manifest only at push time.
pub const MAX_JSON_DEPTH: usize = 64;

/// Most bytes accepted after the tar's end-of-archive block, all zero: tar pads its last
/// record (at most 10 KiB with the usual blocking factor).
pub const MAX_TRAILER: u64 = 64 << 10;

/// Why a bundle is refused as a whole: something every image depends on is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the bundle has no {0}")]
    Missing(String),
    #[error("{name} is {size} bytes, more than the {limit} accepted")]
    TooLarge { name: String, size: u64, limit: u64 },
    #[error("{name} is not valid: {reason}")]
    Invalid { name: String, reason: String },
    /// A bound of the whole bundle, or a format this airlock does not read.
    #[error("{0}")]
    Bundle(String),
}

/// The layout marker: `oci-layout`, when the bundle has one, must say version 1.0.0.
pub fn layout(raw: Option<&[u8]>) -> Result<(), Refusal> {
    let name = format::OCI_LAYOUT;
    let raw = raw.ok_or_else(|| Refusal::Missing(name.into()))?;
    #[derive(serde::Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let l: Layout = json(name, raw, 4096)?;
    if l.version != LAYOUT_VERSION {
        return Err(Refusal::Invalid {
            name: name.into(),
            reason: format!("imageLayoutVersion {:?} is not {LAYOUT_VERSION}", l.version),
        });
    }
    Ok(())
}

/// Refuses a document of the bundle larger than `limit`, from its entry size (before it is
/// read).
pub fn document_size(name: &str, size: u64, limit: u64) -> Result<(), Refusal> {
    if size > limit {
        return Err(Refusal::TooLarge {
            name: name.into(),
            size,
            limit,
        });
    }
    Ok(())
}

/// Parses one of the bundle's own JSON documents: its size, its depth, then its content.
fn json<T: DeserializeOwned>(name: &str, raw: &[u8], limit: u64) -> Result<T, Refusal> {
    let invalid = |reason: String| Refusal::Invalid {
        name: name.into(),
        reason,
    };
    document_size(name, raw.len() as u64, limit)?;
    json_depth(raw).map_err(invalid)?;
    serde_json::from_slice(raw).map_err(|e| invalid(e.to_string()))
}

/// `bundle.json`: a format and version this airlock reads, with at most
/// [`limits::MAX_IMAGES`] images.
pub fn bundle_json(raw: &[u8]) -> Result<BundleManifest, Refusal> {
    let m: BundleManifest = json(format::BUNDLE_JSON, raw, MAX_JSON_BYTES)?;
    if m.format != format::FORMAT_NAME || !format::is_readable(m.format_version) {
        return Err(Refusal::Bundle(format!(
            "bundle.json says format {:?} version {}; this airlock reads {} versions {:?} (use the airlock release that wrote it)",
            m.format,
            m.format_version,
            format::FORMAT_NAME,
            format::READABLE_VERSIONS
        )));
    }
    limits::image_count(m.images.len())
        .map_err(|what| Refusal::Bundle(format!("bundle.json lists {what}")))?;
    Ok(m)
}

/// `index.json`, with at most [`limits::MAX_IMAGES`] images.
pub fn index_json(raw: &[u8]) -> Result<OciIndex, Refusal> {
    let index: OciIndex = json(format::INDEX_JSON, raw, MAX_JSON_BYTES)?;
    limits::image_count(index.manifests.len())
        .map_err(|what| Refusal::Bundle(format!("index.json lists {what}")))?;
    Ok(index)
}

/// Refuses JSON nested deeper than [`MAX_JSON_DEPTH`], scanning the bytes (strings skipped)
/// without parsing them.
pub fn json_depth(raw: &[u8]) -> Result<(), String> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in raw {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(format!(
                        "it nests arrays and objects more than {MAX_JSON_DEPTH} levels deep"
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// An image's source reference: valid in the distribution grammar, which leaves no room for
/// a control character, a space or a quote.
pub fn source_reference(source: &str) -> Result<Reference, String> {
    Reference::parse(source).map_err(|e| format!("its source is not a valid reference: {e}"))
}

/// A host name that cannot be a real one, put before a target to read it as a reference: any
/// host the target smuggles in shows up as a registry or repository other than the one asked.
const PROBE: &str = "airlock.invalid";

/// Checks that a target is a plain `repository:tag`: no host, no `..`, no digest (what
/// `unpack` pushes to, under `--registry`). The same rule as [`target_reference`].
pub fn target(t: &str) -> Result<(), String> {
    target_reference(PROBE, "", t).map(drop)
}

/// `registry/prefix/repository:tag` for the target `t` of `bundle.json`, validated: a target
/// can only name a repository and tag under `registry`, never another host, a `..` path or a
/// digest.
pub fn target_reference(registry: &str, prefix: &str, t: &str) -> Result<Reference, String> {
    let bad = || format!("target {t:?} is not a repository:tag under the registry");
    let (repo, tag) = t
        .rsplit_once(':')
        .filter(|(r, tag)| !r.is_empty() && !tag.contains('/'))
        .ok_or_else(bad)?;
    let repository = format!("{prefix}{repo}");
    let r = Reference::parse(&format!("{registry}/{repository}:{tag}"))
        .map_err(|e| format!("{}: {e}", bad()))?;
    if r.registry() != registry
        || r.repository() != repository
        || r.tag() != Some(tag)
        || r.digest().is_some()
    {
        return Err(bad());
    }
    Ok(r)
}

/// A target as the reference it becomes under any registry (its text when it is not one:
/// such a target is refused by [`target`]).
fn target_key(t: &str) -> String {
    match Reference::parse(&format!("{PROBE}/{t}")) {
        Ok(r) => r.to_string(),
        Err(_) => t.to_string(),
    }
}

/// Two images that `unpack` would push to one tag: `(target, first source, second source)`
/// for each image whose target (or alternative target) an earlier image already has. Targets
/// are compared as the references they become (`x` and `library/x` differ; `x:1` twice does
/// not).
pub fn target_collisions<'a>(
    images: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>,
) -> Vec<(String, String, String)> {
    let mut owner: HashMap<String, &str> = HashMap::new();
    let mut out = Vec::new();
    for (source, targets) in images {
        let mut mine = HashSet::new();
        for t in targets {
            let key = target_key(t);
            if !mine.insert(key.clone()) {
                continue;
            }
            match owner.get(key.as_str()) {
                Some(first) if *first != source => {
                    out.push((t.to_string(), first.to_string(), source.to_string()))
                }
                Some(_) => {}
                None => {
                    owner.insert(key, source);
                }
            }
        }
    }
    out
}

/// A problem for each image whose target another image already has: `unpack` would push one
/// over the other.
pub fn collisions(images: &[ImageRecord]) -> Vec<Problem> {
    let targets = images.iter().map(|i| {
        let ts = std::iter::once(&i.target).chain(&i.alt_targets);
        (i.source.as_str(), ts.map(String::as_str).collect())
    });
    target_collisions(targets)
        .into_iter()
        .map(|(target, first, second)| {
            Problem::image(
                &second,
                format!("its target {target} is also the target of {first}: one would overwrite the other"),
            )
        })
        .collect()
}

/// A manifest or index read from the bundle, against the descriptor that names it: its size,
/// its digest, its depth, then its content ([`manifest::parse`], which also checks embedded
/// `data`). Schema 1 manifests are read as an image's own only ([`ImageRecord::schema1_blobs`]).
pub fn manifest(desc: &BlobRef, raw: &[u8]) -> Result<Parsed, String> {
    let d = &desc.digest;
    if raw.len() as u64 != desc.size {
        return Err(format!(
            "manifest {d} is {} bytes in the bundle, its descriptor says {}",
            raw.len(),
            desc.size
        ));
    }
    check_digest("manifest", d, raw)?;
    json_depth(raw).map_err(|e| format!("manifest {d}: {e}"))?;
    manifest::parse(&d.to_string(), &desc.media_type, raw).map_err(|e| crate::error_chain(&e))
}

/// An image config read from the bundle: its digest, its depth, valid JSON. (Its size is
/// checked against each descriptor that names it, [`Resolver`].)
pub fn config(d: &Digest, raw: &[u8]) -> Result<(), String> {
    check_digest("config", d, raw)?;
    json_depth(raw).map_err(|e| format!("config {d}: {e}"))?;
    // Validated without building it: an 8 MiB config would take far more as a Value.
    serde_json::from_slice::<serde::de::IgnoredAny>(raw)
        .map(drop)
        .map_err(|e| format!("config {d} is not valid JSON: {e}"))
}

fn check_digest(kind: &str, d: &Digest, raw: &[u8]) -> Result<(), String> {
    let actual = Digest::of(raw);
    if actual != *d {
        return Err(format!("{kind} {d} is corrupt: its bytes hash to {actual}"));
    }
    Ok(())
}

/// After the tar's end-of-archive block: at most [`MAX_TRAILER`] bytes, all zero.
pub fn trailer(len: u64, all_zero: bool) -> Result<(), Refusal> {
    if len > MAX_TRAILER || !all_zero {
        return Err(Refusal::Bundle(
            "data follows the end of the tar archive".into(),
        ));
    }
    Ok(())
}

/// One image with everything needed to push it.
#[derive(Debug, Clone)]
pub struct ImageContent {
    pub record: ImageRecord,
    /// Manifests and indexes to push, platform manifests before their index, each once: (digest,
    /// media type, raw bytes). The last one is the image's own (`record.digest`). The bytes are
    /// shared by every image (and every index entry) that names the same digest.
    pub manifests: Vec<(Digest, String, Arc<[u8]>)>,
    /// Configs and layers, each once.
    pub blobs: Vec<BlobRef>,
}

/// A bundle's metadata and documents, checked.
#[derive(Debug)]
pub struct Checked {
    pub manifest: BundleManifest,
    /// Images whose documents passed, in `bundle.json` order.
    pub images: Vec<ImageContent>,
    pub problems: Vec<Problem>,
    /// The manifests and configs read and checked as documents.
    pub documents: BTreeSet<Digest>,
    /// Every blob entry's size, once the reader knows them all; [`complete`] has run then.
    pub entries: Option<BTreeMap<Digest, u64>>,
}

/// A config or layer, and the images that use it.
#[derive(Debug, Clone)]
pub struct BlobUse {
    pub size: u64,
    pub images: BTreeSet<String>,
}

impl Checked {
    /// Every config and layer digest, with its size and the images that use it.
    pub fn blob_users(&self) -> BTreeMap<Digest, BlobUse> {
        let mut m: BTreeMap<Digest, BlobUse> = BTreeMap::new();
        for i in &self.images {
            for b in &i.blobs {
                m.entry(b.digest.clone())
                    .or_insert_with(|| BlobUse {
                        size: b.size,
                        images: BTreeSet::new(),
                    })
                    .images
                    .insert(i.record.source.clone());
            }
        }
        m
    }

    /// Every blob an image uses, manifests included, with its size and its images.
    pub fn used(&self) -> BTreeMap<Digest, BlobUse> {
        let mut m = self.blob_users();
        for i in &self.images {
            for (d, _, raw) in &i.manifests {
                m.entry(d.clone())
                    .or_insert_with(|| BlobUse {
                        size: raw.len() as u64,
                        images: BTreeSet::new(),
                    })
                    .images
                    .insert(i.record.source.clone());
            }
        }
        m
    }
}

/// The checks that need every blob entry: each config and layer an image uses is there with
/// the size its descriptor says (a delta bundle's omitted blob may be absent when its size
/// matches), then, when nothing else is wrong, `bundle.json`'s totals. Records `entries` in
/// `checked`.
pub fn complete(checked: &mut Checked, entries: BTreeMap<Digest, u64>) {
    let omitted = checked.manifest.omitted();
    for (d, u) in checked.blob_users() {
        if checked.documents.contains(&d) {
            continue;
        }
        let what = match (entries.get(&d), omitted.get(&d)) {
            (None, Some(&size)) if size == u.size => continue,
            (None, _) => "missing from the bundle".to_string(),
            (Some(&size), _) if size != u.size => {
                format!("{size} bytes in the bundle, its manifest says {}", u.size)
            }
            (Some(_), _) => continue,
        };
        checked.problems.push(Problem::blob(&d, what, &u.images));
    }
    if checked.problems.is_empty() {
        checked.problems.extend(totals(checked));
    }
    checked.entries = Some(entries);
}

/// `bundle.json`'s totals against the distinct blobs the images use and the bundle carries:
/// every manifest, and every config and layer but a delta bundle's omitted ones.
pub fn totals(checked: &Checked) -> Option<Problem> {
    let omitted = checked.manifest.omitted();
    let mut carried: BTreeMap<Digest, u64> = checked
        .blob_users()
        .into_iter()
        .filter(|(d, _)| !omitted.contains_key(d))
        .map(|(d, u)| (d, u.size))
        .collect();
    for i in &checked.images {
        for (d, _, raw) in &i.manifests {
            carried.insert(d.clone(), raw.len() as u64);
        }
    }
    // Sizes checked against the entries, which fit in the stream: no overflow; a report
    // figure otherwise.
    let bytes = crate::space::total(carried.values().copied()).unwrap_or(u64::MAX);
    let t = &checked.manifest.blobs;
    (t.count != carried.len() as u64 || t.bytes != bytes).then(|| {
        Problem::file(
            format::BUNDLE_JSON,
            format!(
                "its totals ({} blobs, {} bytes) disagree with the images ({} blobs, {bytes} bytes)",
                t.count,
                t.bytes,
                carried.len()
            ),
        )
    })
}

/// Blob entries no image uses, for `verify` to name when nothing else is wrong (with other
/// problems, they belong to the images already reported): `airlock pack` never writes one.
pub fn unused(checked: &Checked, entries: &BTreeMap<Digest, u64>) -> Vec<Problem> {
    if !checked.problems.is_empty() {
        return vec![];
    }
    let used = checked.used();
    entries
        .iter()
        .filter(|(d, _)| !used.contains_key(*d))
        .map(|(d, size)| {
            Problem::blob(
                d,
                format!("not used by any image ({size} bytes, not hashed; airlock pack never writes one)"),
                &BTreeSet::new(),
            )
        })
        .collect()
}

/// What a reader found of a document the [`Resolver`] wants.
#[derive(Debug, Clone)]
enum Doc {
    /// Wanted, not found yet.
    Wanted,
    /// Admitted for reading: its entry is this many bytes.
    Reading(u64),
    /// The bundle has no entry for it.
    Absent,
    /// Its entry is this many bytes, more than the limit of its kind: not read.
    TooLarge(u64),
    /// Read: its entry size, and its bytes (a manifest) or its verdict (a config).
    Read {
        size: u64,
        result: Result<Option<Arc<[u8]>>, String>,
    },
}

/// Where one image's resolution stands.
enum Step {
    /// Documents are still wanted.
    Waiting,
    Done(Box<ImageContent>),
    Failed(String),
}

/// The images of a bundle, resolved as their documents arrive: says which manifests,
/// indexes and configs to read next ([`Resolver::wanted`]), takes what the reader found
/// ([`Resolver::admit`], [`Resolver::give`], [`Resolver::absent`]) and, once nothing more is
/// wanted, gives each image's content or its problem ([`Resolver::finish`]). It does no I/O:
/// through the seek table the reader fetches what is wanted; in one sequential pass it hands
/// over documents as they stream by. Each document is read, hashed and parsed once, however
/// many images name it.
pub struct Resolver {
    manifest: BundleManifest,
    omitted: BTreeMap<Digest, u64>,
    problems: Vec<Problem>,
    /// Images that failed, by index: reported in `bundle.json` order, whichever order the
    /// reader found their documents in.
    failed: Vec<(usize, Problem)>,
    /// Images still resolving (indexes into `manifest.images`), and whether their references
    /// were counted.
    pending: Vec<(usize, bool)>,
    done: Vec<(usize, ImageContent)>,
    manifests: HashMap<Digest, Doc>,
    parsed: HashMap<(Digest, String), Result<Arc<Parsed>, String>>,
    configs: HashMap<Digest, Doc>,
    documents: BTreeSet<Digest>,
    budget: Budget,
}

impl Resolver {
    /// Checks `index.json` against `bundle.json` and every image's reference and targets, and
    /// counts each image's own manifest against the bundle's bounds.
    pub fn new(manifest: BundleManifest, index: OciIndex) -> Result<Resolver, Refusal> {
        let (accepted, problems) = agreement(&manifest, &index);
        let mut budget = Budget::new();
        for &i in &accepted {
            let rec = &manifest.images[i];
            budget
                .manifest(&rec.digest, rec.size)
                .map_err(Refusal::Bundle)?;
        }
        Ok(Resolver {
            omitted: manifest.omitted(),
            manifest,
            problems,
            failed: Vec::new(),
            pending: accepted.into_iter().map(|i| (i, false)).collect(),
            done: Vec::new(),
            manifests: HashMap::new(),
            parsed: HashMap::new(),
            configs: HashMap::new(),
            documents: BTreeSet::new(),
            budget,
        })
    }

    /// `bundle.json`.
    pub fn bundle(&self) -> &BundleManifest {
        &self.manifest
    }

    /// The documents to read next, in digest order; empty once every image is resolved.
    /// `Err` when the images pass a bound of the whole bundle.
    pub fn wanted(&mut self) -> Result<Vec<Digest>, Refusal> {
        let pending = std::mem::take(&mut self.pending);
        for (i, counted) in pending {
            match self.walk(i, counted)? {
                (Step::Waiting, counted) => self.pending.push((i, counted)),
                (Step::Done(content), _) => self.done.push((i, *content)),
                (Step::Failed(what), _) => {
                    let source = &self.manifest.images[i].source;
                    self.failed.push((i, Problem::image(source, what)));
                }
            }
        }
        let mut out: Vec<Digest> = self
            .manifests
            .iter()
            .chain(&self.configs)
            .filter(|(_, s)| matches!(s, Doc::Wanted))
            .map(|(d, _)| d.clone())
            .collect();
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// True when `d` is wanted and not found yet.
    pub fn wants(&self, d: &Digest) -> bool {
        [&self.manifests, &self.configs]
            .iter()
            .any(|m| matches!(m.get(d), Some(Doc::Wanted)))
    }

    /// A wanted document's entry is `size` bytes: true when it is to be read and given
    /// ([`Resolver::give`]); false when its size is over the limit of its kind (or it is not
    /// wanted), which is recorded.
    pub fn admit(&mut self, d: &Digest, size: u64) -> bool {
        let mut read = false;
        for (map, limit) in [
            (&mut self.manifests, MAX_MANIFEST_BYTES),
            (&mut self.configs, MAX_CONFIG_BYTES),
        ] {
            if let Some(s @ Doc::Wanted) = map.get_mut(d) {
                *s = if size > limit {
                    Doc::TooLarge(size)
                } else {
                    read = true;
                    Doc::Reading(size)
                };
            }
        }
        read
    }

    /// The bytes of an admitted document, or why they could not be read.
    pub fn give(&mut self, d: &Digest, bytes: Result<&[u8], String>) {
        if let Some(Doc::Reading(size)) = self.manifests.get(d) {
            let size = *size;
            let result = match &bytes {
                Ok(raw) => check_digest("manifest", d, raw).map(|_| Some(Arc::from(*raw))),
                Err(e) => Err(format!("manifest {d} cannot be read: {e}")),
            };
            self.manifests.insert(d.clone(), Doc::Read { size, result });
        }
        if let Some(Doc::Reading(size)) = self.configs.get(d) {
            let size = *size;
            let result = match &bytes {
                Ok(raw) => config(d, raw).map(|_| None),
                Err(e) => Err(format!("config {d} cannot be read: {e}")),
            };
            self.configs.insert(d.clone(), Doc::Read { size, result });
        }
    }

    /// The bundle has no entry for wanted document `d`.
    pub fn absent(&mut self, d: &Digest) {
        for map in [&mut self.manifests, &mut self.configs] {
            if let Some(s @ Doc::Wanted) = map.get_mut(d) {
                *s = Doc::Absent;
            }
        }
    }

    /// True once every image is resolved.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// Each image's content or its problem, once [`Resolver::wanted`] is empty; an image
    /// still waiting for a document (a reader that stopped early) fails.
    pub fn finish(mut self) -> Checked {
        for (i, _) in std::mem::take(&mut self.pending) {
            let source = &self.manifest.images[i].source;
            let what = "its documents could not all be read";
            self.failed.push((i, Problem::image(source, what)));
        }
        self.failed.sort_by_key(|(i, _)| *i);
        self.problems
            .extend(std::mem::take(&mut self.failed).into_iter().map(|(_, p)| p));
        self.done.sort_by_key(|(i, _)| *i);
        self.problems.extend(collisions(&self.manifest.images));
        Checked {
            manifest: self.manifest,
            images: self.done.into_iter().map(|(_, c)| c).collect(),
            problems: self.problems,
            documents: self.documents,
            entries: None,
        }
    }

    /// Resolves image `i` as far as the documents at hand allow.
    fn walk(&mut self, i: usize, counted: bool) -> Result<(Step, bool), Refusal> {
        let rec = self.manifest.images[i].clone();
        let top = BlobRef {
            digest: rec.digest.clone(),
            size: rec.size,
            media_type: rec.media_type.clone(),
        };
        let (top_raw, top_parsed) = match self.document(&top, Some(&rec)) {
            Ok(Some(doc)) => doc,
            Ok(None) => return Ok((Step::Waiting, counted)),
            Err(e) => return Ok((Step::Failed(e), counted)),
        };
        let mut manifests = Vec::new();
        let mut blobs: Vec<BlobRef> = Vec::new();
        let mut configs: Vec<BlobRef> = Vec::new();
        let mut take = |p: &Parsed, blobs: &mut Vec<BlobRef>| {
            if let Parsed::Image { config, .. } = p {
                configs.push(config.clone());
            }
            blobs.extend(p.blobs().into_iter().cloned());
        };
        let mut waiting = false;
        match top_parsed.as_ref() {
            Parsed::Index(children) => {
                if rec.from_index.is_some() {
                    let e = "an index stored where a single platform was recorded";
                    return Ok((Step::Failed(e.into()), counted));
                }
                let children = match limits::index_children(rec.size, children) {
                    Ok(c) => c,
                    Err(e) => return Ok((Step::Failed(e), counted)),
                };
                for c in children {
                    if media_type::kind(&c.blob.media_type) != Kind::Manifest {
                        let e = format!(
                            "platform manifest {} has media type {:?}, not an image manifest",
                            c.blob.digest, c.blob.media_type
                        );
                        return Ok((Step::Failed(e), counted));
                    }
                    self.budget
                        .manifest(&c.blob.digest, c.blob.size)
                        .map_err(Refusal::Bundle)?;
                    match self.document(&c.blob, None) {
                        Ok(Some((raw, parsed))) => {
                            take(&parsed, &mut blobs);
                            manifests.push((c.blob.digest.clone(), c.blob.media_type.clone(), raw));
                        }
                        Ok(None) => waiting = true,
                        Err(e) => return Ok((Step::Failed(e), counted)),
                    }
                }
            }
            p => take(p, &mut blobs),
        }
        if waiting {
            return Ok((Step::Waiting, counted));
        }
        manifests.push((rec.digest.clone(), rec.media_type.clone(), top_raw));
        let mut seen = BTreeSet::new();
        blobs.retain(|b| seen.insert(b.digest.clone()));
        if !counted {
            self.budget
                .references(manifests.len() + blobs.len())
                .map_err(Refusal::Bundle)?;
        }
        for c in &configs {
            match self.config_state(c) {
                Ok(true) => {}
                Ok(false) => waiting = true,
                Err(e) => return Ok((Step::Failed(e), true)),
            }
        }
        if waiting {
            return Ok((Step::Waiting, true));
        }
        let content = ImageContent {
            record: rec,
            manifests,
            blobs,
        };
        Ok((Step::Done(Box::new(content)), true))
    }

    /// A manifest's bytes and what it points at, checked against `desc`: `Ok(None)` while it
    /// is still wanted. `rec` is given for an image's own manifest, which may be schema 1.
    #[allow(clippy::type_complexity)]
    fn document(
        &mut self,
        desc: &BlobRef,
        rec: Option<&ImageRecord>,
    ) -> Result<Option<(Arc<[u8]>, Arc<Parsed>)>, String> {
        let (d, mt) = (&desc.digest, &desc.media_type);
        let schema1 = media_type::kind(mt) == Kind::Schema1;
        if media_type::kind(mt) == Kind::Unknown || (schema1 && rec.is_none()) {
            return Err(format!("manifest {d} has unsupported media type {mt:?}"));
        }
        let state = self
            .manifests
            .entry(d.clone())
            .or_insert(Doc::Wanted)
            .clone();
        let raw = match state {
            Doc::Wanted | Doc::Reading(_) => return Ok(None),
            Doc::Absent => return Err(format!("manifest {d} is missing from the bundle")),
            Doc::TooLarge(size) | Doc::Read { size, .. } if size != desc.size => {
                return Err(format!(
                    "manifest {d} is {size} bytes in the bundle, its descriptor says {}",
                    desc.size
                ))
            }
            Doc::TooLarge(size) => {
                return Err(format!(
                    "manifest {d} is {size} bytes, more than the {MAX_MANIFEST_BYTES} accepted"
                ))
            }
            Doc::Read { result, .. } => {
                result?.ok_or_else(|| format!("manifest {d} is also named as a config"))?
            }
        };
        self.documents.insert(d.clone());
        let parsed = match rec {
            Some(rec) if schema1 => {
                json_depth(&raw).map_err(|e| format!("manifest {d}: {e}"))?;
                Arc::new(Parsed::Schema1 {
                    layers: rec.schema1_blobs(&raw)?,
                })
            }
            _ => self
                .parsed
                .entry((d.clone(), media_type::essence(mt).to_string()))
                .or_insert_with(|| manifest(desc, &raw).map(Arc::new))
                .clone()?,
        };
        Ok(Some((raw, parsed)))
    }

    /// Whether config `c` is checked (`Ok(true)`), still wanted (`Ok(false)`) or wrong. A delta
    /// bundle's omitted config may be absent when its size matches.
    fn config_state(&mut self, c: &BlobRef) -> Result<bool, String> {
        limits::config_size(c)?;
        let d = &c.digest;
        let state = self.configs.entry(d.clone()).or_insert(Doc::Wanted).clone();
        match state {
            Doc::Wanted | Doc::Reading(_) => Ok(false),
            Doc::Absent if self.omitted.get(d) == Some(&c.size) => Ok(true),
            Doc::Absent => Err(format!("config {d} is missing from the bundle")),
            Doc::TooLarge(size) | Doc::Read { size, .. } if size != c.size => Err(format!(
                "config {d} is {size} bytes in the bundle, its descriptor says {}",
                c.size
            )),
            Doc::TooLarge(size) => Err(format!(
                "config {d} is {size} bytes, more than the {MAX_CONFIG_BYTES} accepted"
            )),
            Doc::Read { result, .. } => {
                result?;
                self.documents.insert(d.clone());
                Ok(true)
            }
        }
    }
}

/// `index.json` against `bundle.json`, and each image's source and targets: the images that
/// may be resolved (indexes into `bundle.images`), and the problems of the others.
fn agreement(bundle: &BundleManifest, index: &OciIndex) -> (Vec<usize>, Vec<Problem>) {
    let mut problems = Vec::new();
    // Nothing to push is not a bundle anyone meant to carry across, and `unpack` takes the
    // first image's repository to check push access.
    if bundle.images.is_empty() {
        problems.push(Problem::file(format::BUNDLE_JSON, "lists no images"));
    }
    let mut by_name: BTreeMap<&str, &format::Descriptor> = BTreeMap::new();
    for d in &index.manifests {
        let Some(name) = d.annotations.get(ANNOTATION_REF_NAME) else {
            problems.push(Problem::file(
                format::INDEX_JSON,
                format!(
                    "descriptor {} has no {ANNOTATION_REF_NAME} annotation",
                    d.digest
                ),
            ));
            continue;
        };
        if by_name.insert(name, d).is_some() {
            problems.push(Problem::image(name, "index.json names this image twice"));
        }
        if let Some(data) = &d.data {
            if let Err(e) = manifest::check_embedded(&d.digest, d.size, data) {
                let what = format!("index.json: the embedded data of its descriptor {e}");
                problems.push(Problem::image(name, what));
            }
        }
    }
    let mut sources = BTreeSet::new();
    let mut accepted = Vec::new();
    for (i, rec) in bundle.images.iter().enumerate() {
        let source = rec.source.as_str();
        let what = if !sources.insert(source) {
            "bundle.json lists this image twice".to_string()
        } else if let Err(e) = source_reference(source) {
            e
        } else if let Err(e) = std::iter::once(&rec.target)
            .chain(&rec.alt_targets)
            .try_for_each(|t| target(t))
        {
            e
        } else {
            match by_name.get(source) {
                None => "bundle.json lists it, index.json does not".to_string(),
                Some(d)
                    if d.digest != rec.digest
                        || d.size != rec.size
                        || d.media_type != rec.media_type =>
                {
                    format!(
                        "index.json says {} ({}, {} bytes), bundle.json says {} ({}, {} bytes)",
                        d.digest, d.media_type, d.size, rec.digest, rec.media_type, rec.size
                    )
                }
                Some(_) => {
                    accepted.push(i);
                    continue;
                }
            }
        };
        problems.push(Problem::image(source, what));
    }
    for name in by_name.keys() {
        if !sources.contains(name) {
            problems.push(Problem::image(
                name,
                "index.json lists it, bundle.json does not",
            ));
        }
    }
    (accepted, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_repositories_under_the_registry() {
        let ok = target_reference("reg.local:5000", "", "busybox:latest").unwrap();
        assert_eq!(ok.to_string(), "reg.local:5000/busybox:latest");
        let p = target_reference("reg.local", "proj/", "rancher/k8s:v1").unwrap();
        assert_eq!(p.to_string(), "reg.local/proj/rancher/k8s:v1");
        let alt =
            target_reference("reg.local", "", "gcr.io/google_containers/pause-amd64:3.0").unwrap();
        assert_eq!(alt.repository(), "gcr.io/google_containers/pause-amd64");
        assert!(target("google_containers/pause-amd64:3.0").is_ok());
        for bad in [
            "../../x:1",
            "a/../../b:1",
            "evil.example:5000/x:1",
            "127.0.0.1:5000/x:1",
            "https://evil.example/x:1",
            "x",
            "/x:1",
            "X:1",
            "a:b/c",
            "a//b:1",
            "x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
            "x:1\u{1b}[2J",
        ] {
            let e = target(bad).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "target {bad:?} is not a repository:tag under the registry"
                )),
                "{e}"
            );
            assert!(target_reference("reg.local", "p/", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn collisions_are_found_by_the_reference_a_target_becomes() {
        let found = target_collisions([
            ("docker.io/x/y:z", vec!["x/y:z"]),
            ("127.0.0.1:5000/x/y:z", vec!["x/y:z"]),
            ("docker.io/library/a:1", vec!["a:1", "a:1"]),
            ("docker.io/other/a:1", vec!["library/a:1"]),
            ("docker.io/x/y:z", vec!["x/y:z"]),
        ]);
        assert_eq!(
            found,
            vec![(
                "x/y:z".to_string(),
                "docker.io/x/y:z".to_string(),
                "127.0.0.1:5000/x/y:z".to_string()
            )]
        );
    }

    #[test]
    fn depth_is_bounded_without_parsing() {
        assert!(json_depth(br#"{"a":[{"b":"[[[[[[["}]}"#).is_ok());
        let deep = format!(
            r#"{{"schemaVersion":2,"x":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let e = json_depth(deep.as_bytes()).unwrap_err();
        assert!(e.contains("more than 64 levels"), "{e}");
        let at_limit = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(json_depth(at_limit.as_bytes()).is_ok());
        // An escaped quote does not end a string.
        assert!(json_depth(br#"{"a":"\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}"#).is_ok());
    }

    #[test]
    fn the_layout_marker_must_say_1_0_0() {
        assert!(layout(Some(br#"{"imageLayoutVersion":"1.0.0"}"#)).is_ok());
        assert_eq!(
            layout(None).unwrap_err().to_string(),
            "the bundle has no oci-layout"
        );
        let e = layout(Some(br#"{"imageLayoutVersion":"9.9.9"}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "oci-layout is not valid: imageLayoutVersion \"9.9.9\" is not 1.0.0"
        );
        assert!(layout(Some(b"[")).is_err());
    }

    #[test]
    fn sources_must_be_references() {
        assert!(source_reference("docker.io/library/busybox:latest").is_ok());
        for bad in ["docker.io/x:1\u{1b}[2J\nOK", "x y:1", "", "docker.io/x:1\r"] {
            assert!(source_reference(bad).is_err(), "{bad:?}");
        }
    }
}
