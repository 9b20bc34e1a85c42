//! The structural check of a bundle, shared by `verify` and `unpack`: `oci-layout`,
//! `index.json` and `bundle.json` agree; every manifest, index and config referenced is
//! present, hashes to its name and parses; every layer is present with its declared size.
//! Layers are not hashed here (that is `verify`'s job, and `unpack` hashes while it uploads).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::io::Read;
use std::sync::Arc;

use super::format::{self, BundleManifest, ImageRecord, ANNOTATION_REF_NAME};
use super::limits::{self, Budget};
use super::reader::{BundleError, BundleReader};
use crate::digest::Digest;
use crate::manifest::{self, BlobRef, Parsed};
use crate::media_type::{self, Kind};
use crate::registry::MAX_MANIFEST_BYTES;

pub use super::limits::MAX_CONFIG_BYTES;

/// Something wrong with one image, blob or document of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// What it is about: an image reference, `blob sha256:..`, or a file name.
    pub subject: String,
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::said_of(&self.subject, &self.what))
    }
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

/// The outcome of the structural check.
#[derive(Debug)]
pub struct Checked {
    pub manifest: BundleManifest,
    /// Images that passed, in `bundle.json` order.
    pub images: Vec<ImageContent>,
    pub problems: Vec<Problem>,
}

impl Checked {
    /// Every config and layer digest, with its size and the images that use it.
    pub fn blob_users(&self) -> BTreeMap<Digest, (u64, Vec<String>)> {
        let mut m: BTreeMap<Digest, (u64, Vec<String>)> = BTreeMap::new();
        for i in &self.images {
            for b in &i.blobs {
                m.entry(b.digest.clone())
                    .or_insert((b.size, vec![]))
                    .1
                    .push(i.record.source.clone());
            }
        }
        m
    }
}

/// Runs the structural check. Errors that make the bundle unreadable as a whole come back
/// as `Err`; problems with single images are listed in [`Checked::problems`].
///
/// Memory grows with the distinct documents the bundle holds: each manifest is read, hashed
/// and parsed once however many images or index entries name it, and the bounds of
/// [`super::limits`] (images, platform manifests, manifest bytes, references) hold.
pub fn check(r: &BundleReader) -> Result<Checked, BundleError> {
    let layout = r.read_small(format::OCI_LAYOUT, 4096)?;
    #[derive(serde::Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let l: Layout = serde_json::from_slice(&layout).map_err(|source| BundleError::Json {
        path: r.path().to_path_buf(),
        name: format::OCI_LAYOUT.into(),
        source,
    })?;
    if l.version != "1.0.0" {
        return Err(BundleError::Format {
            path: r.path().to_path_buf(),
            reason: format!("oci-layout version {:?} is not 1.0.0", l.version),
        });
    }
    let manifest = r.bundle_manifest()?;
    let index = r.oci_index()?;
    for (name, n) in [
        (format::BUNDLE_JSON, manifest.images.len()),
        (format::INDEX_JSON, index.manifests.len()),
    ] {
        limits::image_count(n).map_err(|what| BundleError::Format {
            path: r.path().to_path_buf(),
            reason: format!("{name} lists {what}"),
        })?;
    }
    let mut problems = Vec::new();
    // Nothing to push is not a bundle anyone meant to carry across, and `unpack` takes the
    // first image's repository to check push access.
    if manifest.images.is_empty() {
        problems.push(Problem {
            subject: format::BUNDLE_JSON.into(),
            what: "lists no images".into(),
        });
    }

    // index.json and bundle.json must describe the same images.
    let mut by_name: BTreeMap<&str, &format::Descriptor> = BTreeMap::new();
    for d in &index.manifests {
        let Some(name) = d.annotations.get(ANNOTATION_REF_NAME) else {
            problems.push(Problem {
                subject: format::INDEX_JSON.into(),
                what: format!(
                    "descriptor {} has no {ANNOTATION_REF_NAME} annotation",
                    d.digest
                ),
            });
            continue;
        };
        if by_name.insert(name, d).is_some() {
            problems.push(Problem {
                subject: name.clone(),
                what: "index.json names this image twice".into(),
            });
        }
    }
    let mut sources = BTreeSet::new();
    let mut images = Vec::new();
    let mut blob_sizes: BTreeMap<Digest, u64> = BTreeMap::new();
    // A delta bundle leaves out blobs its base carries; they may be missing, nothing else.
    let omitted = manifest.omitted();
    let mut docs = Docs::default();
    let mut budget = Budget::new();
    for rec in &manifest.images {
        let subject = rec.source.clone();
        if !sources.insert(rec.source.as_str()) {
            problems.push(Problem {
                subject,
                what: "bundle.json lists this image twice".into(),
            });
            continue;
        }
        if let Err(what) = check_targets(rec) {
            problems.push(Problem { subject, what });
            continue;
        }
        match by_name.get(rec.source.as_str()) {
            None => {
                problems.push(Problem {
                    subject,
                    what: "bundle.json lists it, index.json does not".into(),
                });
                continue;
            }
            Some(d)
                if d.digest != rec.digest
                    || d.size != rec.size
                    || d.media_type != rec.media_type =>
            {
                problems.push(Problem {
                    subject,
                    what: format!(
                        "index.json says {} ({}, {} bytes), bundle.json says {} ({}, {} bytes)",
                        d.digest, d.media_type, d.size, rec.digest, rec.media_type, rec.size
                    ),
                });
                continue;
            }
            Some(_) => {}
        }
        match image_content(r, rec, &omitted, &mut docs, &mut budget) {
            Ok(content) => {
                for (d, _, raw) in &content.manifests {
                    blob_sizes.insert(d.clone(), raw.len() as u64);
                }
                for b in &content.blobs {
                    if !omitted.contains_key(&b.digest) {
                        blob_sizes.insert(b.digest.clone(), b.size);
                    }
                }
                images.push(content);
            }
            Err(Failed::Image(what)) => problems.push(Problem { subject, what }),
            Err(Failed::Bundle(what)) => {
                // Nothing more is read: the bundle is refused as a whole.
                problems.push(Problem {
                    subject: format::BUNDLE_JSON.into(),
                    what,
                });
                break;
            }
        }
    }
    problems.extend(collisions(&manifest.images));
    for name in by_name.keys() {
        if !sources.contains(name) {
            problems.push(Problem {
                subject: name.to_string(),
                what: "index.json lists it, bundle.json does not".into(),
            });
        }
    }
    if problems.is_empty() {
        // The sizes are checked against the entries, which fit in the stream: no overflow.
        let bytes = crate::space::total(blob_sizes.values().copied()).unwrap_or(u64::MAX);
        if manifest.blobs.count != blob_sizes.len() as u64 || manifest.blobs.bytes != bytes {
            problems.push(Problem {
                subject: format::BUNDLE_JSON.into(),
                what: format!(
                    "its totals ({} blobs, {} bytes) disagree with the images ({} blobs, {} bytes)",
                    manifest.blobs.count,
                    manifest.blobs.bytes,
                    blob_sizes.len(),
                    bytes
                ),
            });
        }
    }
    Ok(Checked {
        manifest,
        images,
        problems,
    })
}

/// A problem for each image whose target another image already has: `unpack` would push one
/// over the other.
pub fn collisions(images: &[ImageRecord]) -> Vec<Problem> {
    let targets = images.iter().map(|i| {
        let ts = std::iter::once(&i.target).chain(&i.alt_targets);
        (i.source.as_str(), ts.map(String::as_str).collect())
    });
    limits::target_collisions(targets)
        .into_iter()
        .map(|(target, first, second)| Problem {
            subject: second,
            what: format!(
                "its target {target} is also the target of {first}: one would overwrite the other"
            ),
        })
        .collect()
}

/// Checks that every target of an image is a plain `repository:tag` ([`limits::target`]).
/// `unpack` builds `<--registry>/<prefix><target>` from it and checks again; refusing here too
/// lets `verify` report what `unpack` would refuse.
pub fn check_targets(rec: &ImageRecord) -> Result<(), String> {
    std::iter::once(&rec.target)
        .chain(&rec.alt_targets)
        .try_for_each(|t| limits::target(t))
}

/// Why an image could not be checked: its own problem, or a bound of the whole bundle.
enum Failed {
    Image(String),
    Bundle(String),
}

impl From<String> for Failed {
    fn from(what: String) -> Failed {
        Failed::Image(what)
    }
}

/// The documents of one check, each read once: manifest bytes by digest (hashed against it),
/// parsed manifests by digest and media type, and the verdict on each config.
#[derive(Default)]
struct Docs {
    raw: HashMap<Digest, Result<Arc<[u8]>, String>>,
    parsed: HashMap<(Digest, String), Result<Arc<Parsed>, String>>,
    configs: HashMap<Digest, Result<(), String>>,
}

impl Docs {
    /// A manifest's bytes and what it points at, checked against its descriptor; read and
    /// parsed the first time only.
    fn manifest(
        &mut self,
        r: &BundleReader,
        b: &BlobRef,
    ) -> Result<(Arc<[u8]>, Arc<Parsed>), String> {
        let (d, mt) = (&b.digest, &b.media_type);
        if matches!(media_type::kind(mt), Kind::Schema1 | Kind::Unknown) {
            return Err(format!("manifest {d} has unsupported media type {mt:?}"));
        }
        check_entry(r, b, MAX_MANIFEST_BYTES, "manifest")?;
        let raw = self
            .raw
            .entry(d.clone())
            .or_insert_with(|| read_blob(r, b, "manifest").map(Arc::from))
            .clone()?;
        let parsed = self
            .parsed
            .entry((d.clone(), media_type::essence(mt).to_string()))
            .or_insert_with(|| {
                manifest::parse(&d.to_string(), mt, &raw)
                    .map(Arc::new)
                    .map_err(|e| crate::error_chain(&e))
            })
            .clone()?;
        Ok((raw, parsed))
    }

    /// An image's own schema 1 manifest (kept with `--keep-digests`), read the first time
    /// only. It states no layer sizes: they come from bundle.json, checked against the
    /// manifest ([`ImageRecord::schema1_blobs`]). Never an index entry: those must be image
    /// manifests.
    fn schema1(
        &mut self,
        r: &BundleReader,
        rec: &ImageRecord,
        b: &BlobRef,
    ) -> Result<(Arc<[u8]>, Arc<Parsed>), String> {
        check_entry(r, b, MAX_MANIFEST_BYTES, "manifest")?;
        let raw = self
            .raw
            .entry(b.digest.clone())
            .or_insert_with(|| read_blob(r, b, "manifest").map(Arc::from))
            .clone()?;
        let layers = rec.schema1_blobs(&raw)?;
        Ok((raw, Arc::new(Parsed::Schema1 { layers })))
    }

    /// Checks that a config is valid JSON, the first time only.
    fn config(&mut self, r: &BundleReader, c: &BlobRef) -> Result<(), String> {
        limits::config_size(c)?;
        check_entry(r, c, MAX_CONFIG_BYTES, "config")?;
        self.configs
            .entry(c.digest.clone())
            .or_insert_with(|| {
                let raw = read_blob(r, c, "config")?;
                // Validated without building it: an 8 MiB config would take far more as a Value.
                serde_json::from_slice::<serde::de::IgnoredAny>(&raw)
                    .map(|_| ())
                    .map_err(|e| format!("config {} is not valid JSON: {e}", c.digest))
            })
            .clone()
    }
}

/// Reads and checks one image's manifests and the presence of its blobs; blobs in `omitted`
/// (a delta bundle's base) may be absent when their size matches. Counts what it reads and
/// references against `budget`.
fn image_content(
    r: &BundleReader,
    rec: &ImageRecord,
    omitted: &BTreeMap<Digest, u64>,
    docs: &mut Docs,
    budget: &mut Budget,
) -> Result<ImageContent, Failed> {
    let top_ref = BlobRef {
        digest: rec.digest.clone(),
        size: rec.size,
        media_type: rec.media_type.clone(),
    };
    budget
        .manifest(&rec.digest, rec.size)
        .map_err(Failed::Bundle)?;
    let (top, parsed) = if media_type::kind(&rec.media_type) == Kind::Schema1 {
        docs.schema1(r, rec, &top_ref)?
    } else {
        docs.manifest(r, &top_ref)?
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
    match parsed.as_ref() {
        Parsed::Index(children) => {
            if rec.from_index.is_some() {
                return Err("an index stored where a single platform was recorded"
                    .to_string()
                    .into());
            }
            for c in limits::index_children(rec.size, children)? {
                if media_type::kind(&c.blob.media_type) != Kind::Manifest {
                    return Err(format!(
                        "platform manifest {} has media type {:?}, not an image manifest",
                        c.blob.digest, c.blob.media_type
                    )
                    .into());
                }
                budget
                    .manifest(&c.blob.digest, c.blob.size)
                    .map_err(Failed::Bundle)?;
                let (raw, parsed) = docs.manifest(r, &c.blob)?;
                take(&parsed, &mut blobs);
                manifests.push((c.blob.digest.clone(), c.blob.media_type.clone(), raw));
            }
        }
        p => take(p, &mut blobs),
    }
    manifests.push((rec.digest.clone(), rec.media_type.clone(), top));
    let mut seen = BTreeSet::new();
    blobs.retain(|b| seen.insert(b.digest.clone()));
    budget
        .references(manifests.len() + blobs.len())
        .map_err(Failed::Bundle)?;
    for b in &blobs {
        match r.blob(&b.digest) {
            None if omitted.get(&b.digest) == Some(&b.size) => {}
            None => return Err(format!("blob {} is missing from the bundle", b.digest).into()),
            Some(e) if e.size != b.size => {
                return Err(format!(
                    "blob {} is {} bytes in the bundle, its manifest says {}",
                    b.digest, e.size, b.size
                )
                .into())
            }
            Some(_) => {}
        }
    }
    for c in configs
        .iter()
        .filter(|c| r.blob(&c.digest).is_some() || !omitted.contains_key(&c.digest))
    {
        docs.config(r, c)?;
    }
    Ok(ImageContent {
        record: rec.clone(),
        manifests,
        blobs,
    })
}

/// Checks a small blob's entry against its descriptor before reading: present, the size the
/// descriptor says, at most `limit` bytes.
fn check_entry(r: &BundleReader, b: &BlobRef, limit: u64, kind: &str) -> Result<(), String> {
    let (d, size) = (&b.digest, b.size);
    let e = r
        .blob(d)
        .ok_or_else(|| format!("{kind} {d} is missing from the bundle"))?;
    if e.size != size {
        return Err(format!(
            "{kind} {d} is {} bytes in the bundle, its descriptor says {size}",
            e.size
        ));
    }
    if size > limit {
        return Err(format!(
            "{kind} {d} is {size} bytes, more than the {limit} accepted"
        ));
    }
    Ok(())
}

/// Reads a small blob whole (its entry checked by [`check_entry`]) and checks its digest.
fn read_blob(r: &BundleReader, b: &BlobRef, kind: &str) -> Result<Vec<u8>, String> {
    let d = &b.digest;
    let e = r
        .blob(d)
        .ok_or_else(|| format!("{kind} {d} is missing from the bundle"))?;
    let mut raw = Vec::with_capacity(e.size as usize);
    r.open_entry(e)
        .read_to_end(&mut raw)
        .map_err(|err| format!("{kind} {d} cannot be read: {err}"))?;
    let actual = Digest::of(&raw);
    if actual != *d {
        return Err(format!("{kind} {d} is corrupt: its bytes hash to {actual}"));
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(target: &str, alt: &[&str]) -> ImageRecord {
        ImageRecord {
            source: "docker.io/library/busybox:latest".into(),
            target: target.into(),
            alt_targets: alt.iter().map(|s| s.to_string()).collect(),
            group: "list".into(),
            digest: Digest::of(b"x"),
            media_type: media_type::DOCKER_MANIFEST.into(),
            size: 1,
            total_bytes: 1,
            from_index: None,
            upstream: None,
        }
    }

    #[test]
    fn targets_are_repositories_under_the_registry() {
        assert!(check_targets(&rec("busybox:latest", &[])).is_ok());
        assert!(check_targets(&rec(
            "google_containers/pause-amd64:3.0",
            &["gcr.io/google_containers/pause-amd64:3.0"]
        ))
        .is_ok());
        for bad in [
            "../../x:1",
            "a/../../b:1",
            "evil.example:5000/x:1",
            "127.0.0.1:5000/x:1",
            "https://evil.example/x:1",
            "x",
            "/x:1",
            "x@sha256:0000000000000000000000000000000000000000000000000000000000000000",
        ] {
            let e = check_targets(&rec("busybox:latest", &[bad])).unwrap_err();
            assert!(e.contains(bad), "{e}");
            let e = check_targets(&rec(bad, &[])).unwrap_err();
            assert!(
                e.starts_with(&format!(
                    "target {bad:?} is not a repository:tag under the registry"
                )),
                "{e}"
            );
        }
    }
}
