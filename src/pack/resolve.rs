//! Resolving images before any layer is downloaded.
//!
//! 1. [`locate`]: each image is looked for at its places in order with `HEAD`, which resolves
//!    the tag to a digest without Docker Hub counting a pull. A place that answers that it does
//!    not have the image (not found, denied, gone) moves on to the next; any other failure
//!    stops. A pinned image whose tag resolves to another digest is refused, naming both.
//! 2. [`check_allowance`]: where a registry sent its pull allowance (`ratelimit-remaining`), the
//!    manifest `GET`s the pack still needs (manifests not in the cache, one per platform pulled)
//!    must fit, or the pack stops before downloading anything, with both numbers.
//! 3. [`resolve`]: the manifests are read from the cache or fetched by digest, and converted to
//!    what Docker 1.12–17.03 pulls unless `--keep-digests` ([`crate::convert`]). A schema 1
//!    image's layers are decompressed to compute the diff IDs of its config (cached per layer).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{PlannedImage, Platforms, Resolved};
use crate::bundle::format::{
    Conversion, ConvertedManifest, DroppedEntry, FromIndex, ImageRecord, OmittedBlob, Upstream,
};
use crate::cache::{Cache, Cached};
use crate::convert::oci::{self, EntryKind};
use crate::convert::{self, schema1, Converted};
use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::manifest::{self, BlobRef, Parsed, Platform};
use crate::media_type::{self, Kind};
use crate::reference::Reference;
use crate::registry::{Client, Manifest, RateLimit, RegistryError};

/// Errors of resolving one image (each names the image).
pub(super) type ResolveError = Box<dyn std::error::Error + Send + Sync>;

/// An image found at one of its places.
pub(super) struct Located {
    pub(super) plan: PlannedImage,
    /// Where it was found.
    pub(super) place: Reference,
    /// What its tag resolved to there.
    pub(super) digest: Digest,
    pub(super) media_type: String,
    /// The pull allowance the registry announced, if any.
    pub(super) rate_limit: Option<RateLimit>,
    /// The places that did not have it, and what each said.
    pub(super) misses: Vec<String>,
}

/// True for answers that mean "not here": look at the next place.
fn not_here(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Unauthorized { .. })
        || matches!(e.status(), Some(401 | 403 | 404 | 410))
}

/// Finds `plan` at the first of its places that has it (see the module docs).
pub(super) fn locate(client: &Client, plan: &PlannedImage) -> Result<Located, ResolveError> {
    let image = &plan.reference;
    let places = if plan.places.is_empty() {
        vec![image.clone()]
    } else {
        plan.places.clone()
    };
    let mut misses = Vec::new();
    // The first place whose HEAD said 404: a HEAD answer has no body, so before giving up
    // one GET there tells what the registry says (MANIFEST_UNKNOWN, NAME_UNKNOWN, ...).
    let mut first_404: Option<(usize, &Reference)> = None;
    for place in &places {
        let found = match client.head(place) {
            Ok(Some(h)) => Some((h.digest, h.media_type, h.rate_limit)),
            Ok(None) => {
                first_404.get_or_insert((misses.len(), place));
                misses.push(format!("{place}: not found"));
                None
            }
            Err(e) if not_here(&e) => {
                misses.push(format!("{place}: {}", crate::error_chain(&e)));
                None
            }
            // A registry whose HEAD says nothing useful (no digest, or no HEAD at all): the
            // manifest itself tells, at the price of a counted pull.
            Err(RegistryError::Protocol { .. }) | Err(RegistryError::Api { status: 405, .. }) => {
                match client.get_manifest(place) {
                    Ok(m) => Some((m.digest, m.media_type, None)),
                    Err(e) if not_here(&e) => {
                        misses.push(format!("{place}: {}", crate::error_chain(&e)));
                        None
                    }
                    Err(e) => return Err(Box::new(e)),
                }
            }
            Err(e) => return Err(Box::new(e)),
        };
        let Some((digest, media_type, rate_limit)) = found else {
            continue;
        };
        if let Some(pin) = &plan.pin {
            if *pin != digest {
                let at = if place == image {
                    String::new()
                } else {
                    format!(" at {place}")
                };
                return Err(format!(
                    "{image}{at} resolves to {digest}, but the pin table says {pin}; \
                     refusing it (the image changed upstream, or the place serves another one; \
                     if you trust it, give a pin table of your own with --pins)"
                )
                .into());
            }
        }
        return Ok(Located {
            plan: plan.clone(),
            place: place.clone(),
            digest,
            media_type,
            rate_limit,
            misses,
        });
    }
    if let Some((i, place)) = first_404 {
        if let Err(e) = client.get_manifest(place) {
            misses[i] = format!("{place}: {}", crate::error_chain(&e));
        }
    }
    Err(format!("{image} is at none of its places: {}", misses.join("; ")).into())
}

/// Why a pack stops before downloading: a registry's pull allowance is too small.
#[derive(Debug, thiserror::Error)]
#[error("{registry} allows {remaining} more manifest pulls{window}, and this pack needs {needed} ({images} images not in the cache, one pull per manifest and per platform); nothing was downloaded. Log in (`docker login`; airlock reads ~/.docker/config.json) for a larger allowance, or run again when the window has passed (manifests already fetched are kept in the cache)", window = window_text(*.limit, *.window))]
pub struct AllowanceExceeded {
    pub registry: String,
    pub remaining: u64,
    pub limit: Option<u64>,
    pub window: Option<u64>,
    pub needed: u64,
    pub images: usize,
}

fn window_text(limit: Option<u64>, window: Option<u64>) -> String {
    match (limit, window) {
        (Some(l), Some(w)) => format!(" (of {l} per {} h)", w as f64 / 3600.0),
        (Some(l), None) => format!(" (of {l})"),
        (None, Some(w)) => format!(" (per {} h)", w as f64 / 3600.0),
        (None, None) => String::new(),
    }
}

/// The manifest `GET`s resolving `l` will make: none for what the cache holds, one for the top
/// manifest otherwise, and for an index one per platform manifest to fetch (exact when the
/// index is cached; otherwise the platforms asked for, at least one).
pub(super) fn pulls_needed(l: &Located, cache: Option<&Cache>, platforms: &Platforms) -> u64 {
    let cached = |d: &Digest| cache.is_some_and(|c| matches!(c.manifest(d), Ok(Some(_))));
    let mut n = 0;
    if !cached(&l.digest) {
        n += 1;
    }
    if media_type::kind(&l.media_type) != Kind::Index {
        return n;
    }
    let index = cache.and_then(|c| c.manifest(&l.digest).ok().flatten());
    match index.and_then(|raw| oci::index_entries("index", &l.media_type, &raw).ok()) {
        Some(entries) => {
            let wanted = entries.iter().filter(|e| match platforms {
                Platforms::One(p) => {
                    e.kind == EntryKind::Image && e.platform.as_ref().is_some_and(|q| p.matches(q))
                }
                _ => true,
            });
            // One platform: only the first match is fetched.
            let wanted: Vec<_> = match platforms {
                Platforms::One(_) => wanted.take(1).collect(),
                _ => wanted.collect(),
            };
            n + wanted.iter().filter(|e| !cached(&e.blob.digest)).count() as u64
        }
        None => {
            n + match platforms {
                Platforms::One(_) | Platforms::All => 1,
                Platforms::Several(ps) => ps.len() as u64,
            }
        }
    }
}

/// Refuses to start when a registry that announced its pull allowance has fewer pulls left
/// than the pack needs from it.
pub(super) fn check_allowance(
    located: &[Located],
    cache: Option<&Cache>,
    platforms: &Platforms,
) -> Result<(), AllowanceExceeded> {
    let mut per: BTreeMap<&str, (RateLimit, u64, usize)> = BTreeMap::new();
    for l in located {
        let Some(rl) = l.rate_limit else { continue };
        let e = per.entry(l.place.registry()).or_insert((rl, 0, 0));
        // The lowest count is the latest.
        if rl.remaining < e.0.remaining {
            e.0 = rl;
        }
    }
    for l in located {
        if let Some(e) = per.get_mut(l.place.registry()) {
            let n = pulls_needed(l, cache, platforms);
            e.1 += n;
            if n > 0 {
                e.2 += 1;
            }
        }
    }
    for (registry, (rl, needed, images)) in per {
        if needed > rl.remaining {
            return Err(AllowanceExceeded {
                registry: registry.to_string(),
                remaining: rl.remaining,
                limit: rl.limit,
                window: rl.window,
                needed,
                images,
            });
        }
    }
    Ok(())
}

/// Reads manifests and layers for resolving: the cache first (with `--no-cache`, none).
pub(super) struct Sources<'a> {
    pub(super) client: &'a Client,
    pub(super) cache: Option<&'a Cache>,
    /// Manifest `GET`s made.
    pub(super) pulls: &'a AtomicU64,
    /// Layer bytes downloaded to compute diff IDs.
    pub(super) downloaded: &'a AtomicU64,
}

impl Sources<'_> {
    /// The manifest `digest` of `place`, from the cache or fetched by digest (and cached).
    fn manifest(&self, place: &Reference, digest: &Digest) -> Result<Manifest, ResolveError> {
        let what = place.with_digest(digest.clone()).to_string();
        if let Some(c) = self.cache {
            if let Some(raw) = c.manifest(digest)? {
                let media_type = crate::registry::detect_media_type(&what, None, &raw)?;
                return Ok(Manifest {
                    raw,
                    media_type,
                    digest: digest.clone(),
                });
            }
        }
        let m = self
            .client
            .get_manifest(&place.with_digest(digest.clone()))?;
        self.pulls.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.cache {
            c.insert_manifest(&m.digest, &m.raw)?;
        }
        Ok(m)
    }

    /// A platform manifest, checked against its descriptor in the index.
    fn child(&self, place: &Reference, desc: &BlobRef) -> Result<Manifest, ResolveError> {
        let m = self.manifest(place, &desc.digest)?;
        if m.raw.len() as u64 != desc.size {
            return Err(format!(
                "{place}: platform manifest {} is {} bytes, its index says {}",
                desc.digest,
                m.raw.len(),
                desc.size
            )
            .into());
        }
        if media_type::essence(&m.media_type) != media_type::essence(&desc.media_type) {
            return Err(format!(
                "{place}: platform manifest {} is {}, its index says {}",
                desc.digest, m.media_type, desc.media_type
            )
            .into());
        }
        Ok(m)
    }

    /// The diff ID of a gzip layer: from the cache, from the cached layer, or by downloading
    /// it (into the cache, when there is one) while it is decompressed and hashed.
    fn diff_id(&self, place: &Reference, blob: &BlobRef) -> Result<Digest, ResolveError> {
        let not_gzip = |e: io::Error| -> ResolveError {
            format!(
                "{place}: layer {} cannot be decompressed ({e}); airlock converts only gzip schema 1 layers (--keep-digests carries the manifest unchanged)",
                blob.digest
            )
            .into()
        };
        if let Some(c) = self.cache {
            if let Some(d) = c.diff_id(&blob.digest) {
                return Ok(d);
            }
            if c.check(&blob.digest, blob.size)? == Cached::Valid {
                let mut gz = DiffId::new();
                io::copy(&mut c.open_blob(&blob.digest)?, &mut gz).map_err(not_gzip)?;
                let d = gz.finish().map_err(not_gzip)?;
                c.insert_diff_id(&blob.digest, &d)?;
                return Ok(d);
            }
        }
        let stream = self
            .client
            .get_blob(place.registry(), place.repository(), &blob.digest)?;
        let mut gz = DiffId::new();
        let d = match self.cache {
            Some(c) => {
                let mut tee = Tee {
                    inner: stream.reader,
                    out: &mut gz,
                    error: None,
                };
                let inserted = c.insert(&blob.digest, blob.size, &mut tee);
                if let Some(e) = tee.error.take() {
                    return Err(not_gzip(e));
                }
                inserted?;
                gz.finish().map_err(not_gzip)?
            }
            None => {
                let mut r = VerifyingReader::new(stream.reader, blob.digest.clone(), blob.size);
                let mut buf = vec![0u8; 256 << 10];
                loop {
                    let n = r.read(&mut buf).map_err(|e| -> ResolveError {
                        format!("{place}: layer {}: {e}", blob.digest).into()
                    })?;
                    if n == 0 {
                        break;
                    }
                    gz.write_all(&buf[..n]).map_err(not_gzip)?;
                }
                gz.finish().map_err(not_gzip)?
            }
        };
        self.downloaded.fetch_add(blob.size, Ordering::Relaxed);
        if let Some(c) = self.cache {
            c.insert_diff_id(&blob.digest, &d)?;
        }
        Ok(d)
    }
}

/// Decompresses gzip written to it and hashes the result: a layer's diff ID. Deflate cannot
/// expand more than about 1032:1, so the work is bounded by the layer's size.
struct DiffId(flate2::write::MultiGzDecoder<HashingWriter<io::Sink>>);

impl DiffId {
    fn new() -> DiffId {
        DiffId(flate2::write::MultiGzDecoder::new(HashingWriter::new(
            io::sink(),
        )))
    }

    fn finish(self) -> io::Result<Digest> {
        let (d, len, _) = self.0.finish()?.finish();
        if len == 0 {
            return Err(io::Error::other("it decompresses to nothing"));
        }
        Ok(d)
    }
}

impl Write for DiffId {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Passes a download through to the cache while feeding a [`DiffId`]; a decompression error
/// is kept aside (the download itself goes on, so the cache still gets the verified blob).
struct Tee<'a, R> {
    inner: R,
    out: &'a mut DiffId,
    error: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(&buf[..n]) {
                self.error = Some(e);
            }
        }
        Ok(n)
    }
}

/// What resolving one image decided to store.
#[derive(Default)]
struct Store {
    /// (name in the bundle = sha256 of the bytes, media type, bytes)
    manifests: Vec<(Digest, String, Vec<u8>)>,
    blobs: Vec<BlobRef>,
    configs: Vec<Digest>,
    generated: Vec<(Digest, Vec<u8>)>,
}

impl Store {
    fn manifest(&mut self, raw: &[u8], mt: &str) -> Digest {
        let d = Digest::of(raw);
        self.manifests
            .push((d.clone(), mt.to_string(), raw.to_vec()));
        d
    }

    fn image(&mut self, config: &BlobRef, layers: &[BlobRef]) {
        self.configs.push(config.digest.clone());
        self.blobs.push(config.clone());
        self.blobs.extend(layers.iter().cloned());
    }
}

/// The reason text of each kind of conversion.
const WHY_OCI: &str = "an OCI image manifest, which Docker 1.12–17.03 cannot pull (OCI support came in 18.06): written as a Docker schema 2 manifest, config and layer media types rewritten, blobs unchanged";
const WHY_DOCKER_OCI_TYPES: &str = "a Docker schema 2 manifest with OCI config or layer media types, which Docker 17.03 refuses (\"target is unknown\"): media types rewritten, blobs unchanged";
const WHY_INDEX: &str = "an OCI index, which Docker 1.12–17.03 cannot pull: written as a Docker manifest list of Docker schema 2 manifests, non-image entries left out";
const WHY_SCHEMA1: &str = "a Docker schema 1 manifest, which registries refuse by default since distribution 2.7 (3.0 cannot store it) and Docker 28 and containerd 2.1 cannot pull: written as a Docker schema 2 image whose config Docker 17.03 would build on pull (v1Compatibility history, diff IDs of the decompressed layers, throwaway layers left out)";

/// Fetches and, unless `keep`, converts the manifests of a located image.
pub(super) fn resolve(
    src: &Sources<'_>,
    l: &Located,
    platforms: &Platforms,
    keep: bool,
) -> Result<Resolved, ResolveError> {
    let image = &l.plan.reference;
    let what = image.to_string();
    let place = &l.place;
    let top = src.manifest(place, &l.digest)?;
    let mut store = Store::default();
    let mut conversion: Option<Conversion> = None;
    let mut schema1_layers = Vec::new();
    let mut from_index = None;
    let converted = |from: &Manifest, to: &Converted| ConvertedManifest {
        from: from.digest.clone(),
        from_media_type: from.media_type.clone(),
        to: to.digest.clone(),
        to_media_type: to.media_type.to_string(),
    };
    // The digest, media type and size stored under the tag.
    let (digest, media_type, size): (Digest, String, u64) = match media_type::kind(&top.media_type)
    {
        Kind::Manifest => {
            let (d, mt, c) = image_manifest(&what, &top, keep, &mut store)?;
            if let Some(c) = c {
                conversion = Some(Conversion {
                    reason: if media_type::is_docker(&top.media_type) {
                        WHY_DOCKER_OCI_TYPES
                    } else {
                        WHY_OCI
                    }
                    .into(),
                    manifests: vec![converted(&top, &c)],
                    dropped: vec![],
                    generated: vec![],
                });
            }
            (
                d,
                mt,
                store.manifests.last().map_or(0, |m| m.2.len() as u64),
            )
        }
        Kind::Schema1 => {
            let s = schema1::parse(&what, &top.raw)?;
            let sizes = layer_sizes(src, place, &s.fs_layers)?;
            if keep {
                for d in s.fs_layers.iter().collect::<BTreeSet<_>>() {
                    store.blobs.push(BlobRef {
                        digest: d.clone(),
                        size: sizes[d],
                        media_type: media_type::DOCKER_LAYER_GZIP.into(),
                    });
                    schema1_layers.push(OmittedBlob {
                        digest: d.clone(),
                        size: sizes[d],
                    });
                }
                let d = store.manifest(&top.raw, &top.media_type);
                (d, top.media_type.clone(), top.raw.len() as u64)
            } else {
                let layers = s.layers(&what)?;
                let applied: Vec<BlobRef> = layers
                    .iter()
                    .filter(|l| !l.throwaway)
                    .map(|l| BlobRef {
                        digest: l.blob.clone(),
                        size: sizes[&l.blob],
                        media_type: media_type::DOCKER_LAYER_GZIP.into(),
                    })
                    .collect();
                let diff_ids = applied
                    .iter()
                    .map(|b| src.diff_id(place, b))
                    .collect::<Result<Vec<_>, _>>()?;
                let config = s.config(&what, &layers, &diff_ids)?;
                let c = schema1::manifest(&config, &applied);
                let config_ref = BlobRef {
                    digest: Digest::of(&config),
                    size: config.len() as u64,
                    media_type: media_type::DOCKER_CONFIG.into(),
                };
                store.image(&config_ref, &applied);
                store.generated.push((config_ref.digest.clone(), config));
                let d = store.manifest(&c.raw, c.media_type);
                conversion = Some(Conversion {
                    reason: WHY_SCHEMA1.into(),
                    manifests: vec![converted(&top, &c)],
                    dropped: vec![],
                    generated: vec![config_ref.digest],
                });
                (d, c.media_type.to_string(), c.raw.len() as u64)
            }
        }
        Kind::Index => {
            let entries = oci::index_entries(&what, &top.media_type, &top.raw)?;
            let images: Vec<&oci::IndexEntry> = entries
                .iter()
                .filter(|e| e.kind == EntryKind::Image)
                .collect();
            let dropped: Vec<DroppedEntry> = entries
                .iter()
                .filter_map(|e| match &e.kind {
                    EntryKind::Skipped(why) => Some(DroppedEntry {
                        digest: e.blob.digest.clone(),
                        platform: e.platform.as_ref().map(|p| p.to_string()),
                        reason: why.clone(),
                    }),
                    EntryKind::Image => None,
                })
                .collect();
            match platforms {
                Platforms::One(want) => {
                    let entry = images
                        .iter()
                        .find(|e| e.platform.as_ref().is_some_and(|p| want.matches(p)))
                        .ok_or_else(|| no_platform(&what, want, &entries))?;
                    let child = src.child(place, &entry.blob)?;
                    if media_type::kind(&child.media_type) != Kind::Manifest {
                        return Err(format!(
                            "{what}: the {want} entry {} of its index is {}, not an image manifest",
                            entry.blob.digest, child.media_type
                        )
                        .into());
                    }
                    let (d, mt, c) = image_manifest(&what, &child, keep, &mut store)?;
                    if let Some(c) = c {
                        conversion = Some(Conversion {
                            reason: format!(
                                "the {want} entry of {}: {}",
                                if media_type::is_docker(&top.media_type) {
                                    "a Docker manifest list"
                                } else {
                                    "an OCI index"
                                },
                                if media_type::is_docker(&child.media_type) {
                                    WHY_DOCKER_OCI_TYPES
                                } else {
                                    WHY_OCI
                                }
                            ),
                            manifests: vec![converted(&child, &c)],
                            // Other platforms are left out as always; non-image entries
                            // (attestations) are named, as with --all-platforms.
                            dropped: dropped.clone(),
                            generated: vec![],
                        });
                    }
                    from_index = Some(FromIndex {
                        digest: top.digest.clone(),
                        media_type: top.media_type.clone(),
                        platform: entry
                            .platform
                            .as_ref()
                            .map(|p| p.to_string())
                            .unwrap_or_default(),
                    });
                    let size = store.manifests.last().map_or(0, |m| m.2.len() as u64);
                    (d, mt, size)
                }
                Platforms::All | Platforms::Several(_) => {
                    if let Platforms::Several(asked) = platforms {
                        for want in asked {
                            if !images
                                .iter()
                                .any(|e| e.platform.as_ref().is_some_and(|p| want.matches(p)))
                            {
                                return Err(no_platform(&what, want, &entries).into());
                            }
                        }
                    }
                    let mut children = Vec::new();
                    for e in if keep {
                        entries.iter().collect::<Vec<_>>()
                    } else {
                        images.clone()
                    } {
                        let m = src.child(place, &e.blob)?;
                        if media_type::kind(&m.media_type) != Kind::Manifest {
                            return Err(format!(
                                "{what}: nested index {} is not supported",
                                e.blob.digest
                            )
                            .into());
                        }
                        children.push((e, m));
                    }
                    let all_docker = media_type::is_docker(&top.media_type)
                        && dropped.is_empty()
                        && children
                            .iter()
                            .all(|(_, m)| !child_needs_conversion(&what, m));
                    if keep || all_docker {
                        for (_, m) in &children {
                            image_manifest(&what, m, true, &mut store)?;
                        }
                        let d = store.manifest(&top.raw, &top.media_type);
                        (d, top.media_type.clone(), top.raw.len() as u64)
                    } else {
                        let mut list = Vec::new();
                        let mut manifests = Vec::new();
                        for (e, m) in &children {
                            let (d, mt, c) = image_manifest(&what, m, false, &mut store)?;
                            if let Some(c) = &c {
                                manifests.push(converted(m, c));
                            }
                            let size = store.manifests.last().map_or(0, |x| x.2.len() as u64);
                            let platform =
                                e.platform.clone().expect("image entries have a platform");
                            list.push((
                                BlobRef {
                                    digest: d,
                                    size,
                                    media_type: mt,
                                },
                                platform,
                            ));
                        }
                        let c = convert::docker_list(&list);
                        manifests.push(converted(&top, &c));
                        conversion = Some(Conversion {
                            reason: if media_type::is_docker(&top.media_type) {
                                "a Docker manifest list with OCI-typed or non-image entries, which Docker 17.03 cannot pull as served: written as a Docker manifest list of Docker schema 2 manifests, non-image entries left out".into()
                            } else {
                                WHY_INDEX.into()
                            },
                            manifests,
                            dropped,
                            generated: vec![],
                        });
                        let d = store.manifest(&c.raw, c.media_type);
                        (d, c.media_type.to_string(), c.raw.len() as u64)
                    }
                }
            }
        }
        Kind::Unknown => {
            return Err(format!(
                "{what}: unsupported manifest media type {:?}",
                top.media_type
            )
            .into())
        }
    };
    let mut seen = BTreeSet::new();
    store.blobs.retain(|b| seen.insert(b.digest.clone()));
    let total_bytes = store
        .manifests
        .iter()
        .map(|(_, _, raw)| raw.len() as u64)
        .sum::<u64>()
        + store.blobs.iter().map(|b| b.size).sum::<u64>();
    let plan = &l.plan;
    Ok(Resolved {
        record: ImageRecord {
            source: image.to_string(),
            target: plan.target.clone(),
            alt_targets: plan.alt_targets.clone(),
            group: plan.group.clone(),
            digest,
            media_type,
            size,
            total_bytes,
            from_index,
            upstream: Some(Upstream {
                fetched_from: place.to_string(),
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                pinned: plan.pin.is_some(),
                conversion,
                schema1_layers,
            }),
        },
        place: place.clone(),
        manifests: store.manifests,
        blobs: store.blobs,
        configs: store.configs,
        generated: store.generated,
    })
}

/// True when a platform manifest of a list has to be converted for Docker 17.03.
fn child_needs_conversion(what: &str, m: &Manifest) -> bool {
    match manifest::parse(what, &m.media_type, &m.raw) {
        Ok(Parsed::Image { config, layers }) => {
            convert::needs_conversion(&m.media_type, &config, &layers)
        }
        _ => true,
    }
}

/// Stores an image manifest, converted unless `keep` or already Docker-typed: the stored
/// digest and media type, and the conversion if there was one.
fn image_manifest(
    what: &str,
    m: &Manifest,
    keep: bool,
    store: &mut Store,
) -> Result<(Digest, String, Option<Converted>), ResolveError> {
    let parsed = manifest::parse(what, &m.media_type, &m.raw)?;
    let Parsed::Image { config, layers } = parsed else {
        return Err(format!("{what}: {} is not an image manifest", m.digest).into());
    };
    store.image(&config, &layers);
    if keep || !convert::needs_conversion(&m.media_type, &config, &layers) {
        let d = store.manifest(&m.raw, &m.media_type);
        return Ok((d, m.media_type.clone(), None));
    }
    let c = oci::to_docker(what, &m.media_type, &m.raw)?;
    let d = store.manifest(&c.raw, c.media_type);
    Ok((d, c.media_type.to_string(), Some(c)))
}

/// The sizes of a schema 1 image's layers (the manifest does not give them), from `HEAD`.
fn layer_sizes(
    src: &Sources<'_>,
    place: &Reference,
    layers: &[Digest],
) -> Result<BTreeMap<Digest, u64>, ResolveError> {
    let mut out = BTreeMap::new();
    for d in layers {
        if out.contains_key(d) {
            continue;
        }
        let size = src
            .client
            .blob_exists(place.registry(), place.repository(), d)?
            .ok_or_else(|| -> ResolveError {
                format!("{place}: layer {d} of its schema 1 manifest is not in the registry").into()
            })?;
        out.insert(d.clone(), size);
    }
    Ok(out)
}

/// The error for an index without the asked platform, listing the ones it has.
pub(super) fn no_platform(what: &str, want: &Platform, entries: &[oci::IndexEntry]) -> String {
    let have: Vec<String> = entries
        .iter()
        .filter(|e| e.kind == EntryKind::Image)
        .filter_map(|e| e.platform.as_ref().map(|p| p.to_string()))
        .collect();
    format!(
        "{what}: no {want} image in its index (it has: {}); choose one with --platform or keep all with --all-platforms",
        if have.is_empty() { "no platforms".to_string() } else { have.join(", ") }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ids_are_the_hash_of_the_decompressed_layer() {
        let layer = crate::fixtures::layer("diff", 1, 5000);
        let mut gz = DiffId::new();
        gz.write_all(&layer.data).unwrap();
        assert_eq!(gz.finish().unwrap(), layer.diff_id.unwrap());
        let mut gz = DiffId::new();
        gz.write_all(b"not gzip at all").unwrap_or(());
        assert!(gz.finish().is_err());
        // A truncated layer is an error, not a short hash.
        let mut gz = DiffId::new();
        let _ = gz.write_all(&layer.data[..layer.data.len() / 2]);
        assert!(gz.finish().is_err());
    }

    #[test]
    fn allowance_messages_give_both_numbers() {
        let e = AllowanceExceeded {
            registry: "docker.io".into(),
            remaining: 3,
            limit: Some(100),
            window: Some(21600),
            needed: 7,
            images: 6,
        }
        .to_string();
        assert!(e.contains("allows 3 more") && e.contains("needs 7"), "{e}");
        assert!(
            e.contains("of 100 per 6 h") && e.contains("docker login"),
            "{e}"
        );
    }
}
