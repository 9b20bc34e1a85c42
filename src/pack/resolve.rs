//! Resolving a located image: its manifests are read (see [`super::sources`]) and converted to
//! what Docker 1.12–17.03 pulls unless `--keep-digests` ([`crate::convert`]). A schema 1
//! image's layers are decompressed to compute the diff IDs of its config.

use std::collections::{BTreeMap, BTreeSet};

use super::locate::{Located, ResolveError};
use super::sources::Sources;
use super::{Platforms, Resolved};
use crate::bundle::format::{
    Conversion, ConvertedManifest, DroppedEntry, FromIndex, ImageRecord, OmittedBlob, Upstream,
};
use crate::convert::oci::{self, EntryKind};
use crate::convert::{self, jws, schema1, Converted};
use crate::digest::Digest;
use crate::manifest::{self, BlobRef, Parsed, Platform};
use crate::media_type::{self, Kind};
use crate::reference::Reference;
use crate::registry::Manifest;

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
    /// Stores a manifest once, however many index entries name it.
    fn manifest(&mut self, raw: &[u8], mt: &str) -> Digest {
        let d = Digest::of(raw);
        if !self.manifests.iter().any(|m| m.0 == d) {
            self.manifests
                .push((d.clone(), mt.to_string(), raw.to_vec()));
        }
        d
    }

    fn image(&mut self, config: &BlobRef, layers: &[BlobRef]) {
        if !self.configs.contains(&config.digest) {
            self.configs.push(config.digest.clone());
        }
        self.blobs.push(config.clone());
        self.blobs.extend(layers.iter().cloned());
    }
}

/// The reason text of each kind of conversion.
const WHY_OCI: &str = "an OCI image manifest, which Docker 1.12–17.03 cannot pull (OCI support came in 18.06): written as a Docker schema 2 manifest, config and layer media types rewritten, blobs unchanged";
const WHY_DOCKER_OCI_TYPES: &str = "a Docker schema 2 manifest with OCI config or layer media types, which Docker 17.03 refuses (\"target is unknown\"): media types rewritten, blobs unchanged";
const WHY_INDEX: &str = "an OCI index, which Docker 1.12–17.03 cannot pull: written as a Docker manifest list of Docker schema 2 manifests, non-image entries left out";
const WHY_SCHEMA1: &str = "a Docker schema 1 manifest, which registries refuse by default since distribution 2.7 (3.0 cannot store it) and Docker 28 and containerd 2.1 cannot pull: written as a Docker schema 2 image whose config Docker 17.03 would build on pull (v1Compatibility history, diff IDs of the decompressed layers, throwaway layers left out)";

/// The digest, media type and size stored under an image's tag.
type Stored = (Digest, String, u64);

/// One upstream manifest or index replaced by its conversion.
fn converted(from: &Manifest, to: &Converted) -> ConvertedManifest {
    ConvertedManifest {
        from: from.digest.clone(),
        from_media_type: from.media_type.clone(),
        to: to.digest.clone(),
        to_media_type: to.media_type.to_string(),
    }
}

/// One image being resolved: what it stores and what bundle.json will record of it.
struct Resolution<'a> {
    src: &'a Sources<'a>,
    place: &'a Reference,
    /// The image, for messages.
    what: String,
    keep: bool,
    store: Store,
    conversion: Option<Conversion>,
    schema1_layers: Vec<OmittedBlob>,
    from_index: Option<FromIndex>,
}

/// Fetches and, unless `keep`, converts the manifests of a located image.
pub(super) fn resolve(
    src: &Sources<'_>,
    l: &Located,
    platforms: &Platforms,
    keep: bool,
) -> Result<Resolved, ResolveError> {
    let place = &l.place;
    let top = match &l.index {
        Some(m) => m.clone(),
        None => src.manifest(place, &l.digest)?,
    };
    let mut r = Resolution {
        src,
        place,
        what: l.plan.reference.to_string(),
        keep,
        store: Store::default(),
        conversion: None,
        schema1_layers: Vec::new(),
        from_index: None,
    };
    let (digest, media_type, size) = match media_type::kind(&top.media_type) {
        Kind::Manifest => r.image(&top)?,
        Kind::Schema1 => r.schema1(&top, platforms)?,
        Kind::Index => r.index(&top, platforms)?,
        Kind::Unknown => {
            return Err(format!(
                "{}: unsupported manifest media type {:?}",
                r.what, top.media_type
            )
            .into())
        }
    };
    let mut store = r.store;
    let mut seen = BTreeSet::new();
    store.blobs.retain(|b| seen.insert(b.digest.clone()));
    // Sizes come from the registries: added up checked.
    let sizes = store.manifests.iter().map(|(_, _, raw)| raw.len() as u64);
    let total_bytes = crate::space::total(sizes.chain(store.blobs.iter().map(|b| b.size)))
        .ok_or_else(|| {
            format!(
                "{}: its blobs add up to more than 2^64 bytes, an impossible size",
                r.what
            )
        })?;
    let plan = &l.plan;
    Ok(Resolved {
        record: ImageRecord {
            source: r.what,
            target: plan.target.clone(),
            alt_targets: plan.alt_targets.clone(),
            group: plan.group.clone(),
            digest,
            media_type,
            size,
            total_bytes,
            from_index: r.from_index,
            upstream: Some(Upstream {
                fetched_from: place.to_string(),
                digest: l.digest.clone(),
                media_type: l.media_type.clone(),
                pinned: plan.pin.is_some(),
                conversion: r.conversion,
                schema1_layers: r.schema1_layers,
            }),
        },
        place: place.clone(),
        manifests: store.manifests,
        blobs: store.blobs,
        configs: store.configs,
        generated: store.generated,
    })
}

impl Resolution<'_> {
    /// An image manifest, converted unless kept or already Docker-typed.
    fn image(&mut self, top: &Manifest) -> Result<Stored, ResolveError> {
        let (stored, c) = image_manifest(&self.what, top, self.keep, &mut self.store)?;
        if let Some(c) = c {
            self.conversion = Some(Conversion {
                reason: if media_type::is_docker(&top.media_type) {
                    WHY_DOCKER_OCI_TYPES
                } else {
                    WHY_OCI
                }
                .into(),
                manifests: vec![converted(top, &c)],
                dropped: vec![],
                generated: vec![],
            });
        }
        Ok((stored.digest, stored.media_type, stored.size))
    }

    /// A schema 1 manifest: kept with its layers' sizes (`--keep-digests`), or converted to
    /// schema 2 with a config built from its history and the layers' diff IDs.
    fn schema1(&mut self, top: &Manifest, platforms: &Platforms) -> Result<Stored, ResolveError> {
        let what = &self.what;
        let s = schema1::parse(what, &top.raw)?;
        schema1_platform(what, &s, platforms)?;
        let sizes = layer_sizes(self.src, self.place, &s.fs_layers)?;
        if self.keep {
            // Kept as served, it must be what a registry stores: refused now, not at
            // unpack after its layers were pushed.
            jws::verify(&top.raw).map_err(|e| {
                format!(
                    "{what}: its schema 1 manifest cannot be carried unchanged: {e}; a registry refuses to store it (distribution: MANIFEST_UNVERIFIED). Pack it without --keep-digests to convert it to Docker schema 2"
                )
            })?;
            for d in s.fs_layers.iter().collect::<BTreeSet<_>>() {
                self.store.blobs.push(BlobRef {
                    digest: d.clone(),
                    size: sizes[d],
                    media_type: media_type::DOCKER_LAYER_GZIP.into(),
                });
                self.schema1_layers.push(OmittedBlob {
                    digest: d.clone(),
                    size: sizes[d],
                });
            }
            let d = self.store.manifest(&top.raw, &top.media_type);
            return Ok((d, top.media_type.clone(), top.raw.len() as u64));
        }
        let layers = s.layers(what)?;
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
            .map(|b| self.src.diff_id(self.place, b))
            .collect::<Result<Vec<_>, _>>()?;
        let config = s.config(what, &layers, &diff_ids)?;
        let c = schema1::manifest(&config, &applied);
        let config_ref = BlobRef {
            digest: Digest::of(&config),
            size: config.len() as u64,
            media_type: media_type::DOCKER_CONFIG.into(),
        };
        self.store.image(&config_ref, &applied);
        self.store
            .generated
            .push((config_ref.digest.clone(), config));
        let d = self.store.manifest(&c.raw, c.media_type);
        self.conversion = Some(Conversion {
            reason: WHY_SCHEMA1.into(),
            manifests: vec![converted(top, &c)],
            dropped: vec![],
            generated: vec![config_ref.digest],
        });
        Ok((d, c.media_type.to_string(), c.raw.len() as u64))
    }

    /// An index or manifest list: one platform picked out, or all of them kept.
    fn index(&mut self, top: &Manifest, platforms: &Platforms) -> Result<Stored, ResolveError> {
        let entries = oci::index_entries(&self.what, &top.media_type, &top.raw)?;
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
            Platforms::One(want) => self.one_platform(top, &entries, want, dropped),
            Platforms::All | Platforms::Several(_) => {
                if let Platforms::Several(asked) = platforms {
                    for want in asked {
                        if !has_platform(&entries, want) {
                            return Err(no_platform(&self.what, want, &entries).into());
                        }
                    }
                }
                self.all_platforms(top, &entries, dropped)
            }
        }
    }

    /// The `want` entry of an index, stored under the tag (`fromIndex` names the index).
    fn one_platform(
        &mut self,
        top: &Manifest,
        entries: &[oci::IndexEntry],
        want: &Platform,
        dropped: Vec<DroppedEntry>,
    ) -> Result<Stored, ResolveError> {
        let what = &self.what;
        let entry = entries
            .iter()
            .filter(|e| e.kind == EntryKind::Image)
            .find(|e| e.platform.as_ref().is_some_and(|p| want.matches(p)))
            .ok_or_else(|| no_platform(what, want, entries))?;
        let child = self.src.child(self.place, &entry.blob)?;
        if media_type::kind(&child.media_type) != Kind::Manifest {
            return Err(format!(
                "{what}: the {want} entry {} of its index is {}, not an image manifest",
                entry.blob.digest, child.media_type
            )
            .into());
        }
        let (stored, c) = image_manifest(what, &child, self.keep, &mut self.store)?;
        if let Some(c) = c {
            self.conversion = Some(Conversion {
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
                // Other platforms are left out as always; non-image entries (attestations)
                // are named, as with --all-platforms.
                dropped,
                generated: vec![],
            });
        }
        self.from_index = Some(FromIndex {
            digest: top.digest.clone(),
            media_type: top.media_type.clone(),
            platform: entry
                .platform
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        });
        Ok((stored.digest, stored.media_type, stored.size))
    }

    /// Every platform of an index: the index byte for byte when nothing needs converting (or
    /// with `--keep-digests`), else a Docker manifest list of converted manifests.
    fn all_platforms(
        &mut self,
        top: &Manifest,
        entries: &[oci::IndexEntry],
        dropped: Vec<DroppedEntry>,
    ) -> Result<Stored, ResolveError> {
        let what = self.what.clone();
        // Each platform manifest fetched once (an index may name one many times), within the
        // readers' bounds, before any is fetched.
        let as_children: Vec<manifest::Child> = entries
            .iter()
            .map(|e| manifest::Child {
                blob: e.blob.clone(),
                platform: e.platform.clone(),
            })
            .collect();
        crate::bundle::limits::index_children(top.raw.len() as u64, &as_children)
            .map_err(|e| format!("{what}: {e}"))?;
        if !self.keep && !entries.iter().any(|e| e.kind == EntryKind::Image) {
            // A list of nothing: every engine answers "no supported platform found in
            // manifest list".
            let left_out: Vec<String> = dropped
                .iter()
                .map(|d| format!("{} {}", d.digest, d.reason))
                .collect();
            let why = if left_out.is_empty() {
                "it has no entries".to_string()
            } else {
                format!("every entry is left out: {}", left_out.join(", "))
            };
            return Err(format!(
                "{what}: its index holds no image to pull ({why}); --keep-digests carries the index unchanged"
            )
            .into());
        }
        let wanted: Vec<&oci::IndexEntry> = entries
            .iter()
            .filter(|e| self.keep || e.kind == EntryKind::Image)
            .collect();
        // The distinct platform manifests, in the index's order, each held once.
        let mut children: Vec<Manifest> = Vec::new();
        for e in &wanted {
            if children.iter().any(|m| m.digest == e.blob.digest) {
                continue;
            }
            let m = self.src.child(self.place, &e.blob)?;
            if media_type::kind(&m.media_type) != Kind::Manifest {
                return Err(
                    format!("{what}: nested index {} is not supported", e.blob.digest).into(),
                );
            }
            children.push(m);
        }
        let all_docker = media_type::is_docker(&top.media_type)
            && dropped.is_empty()
            && children.iter().all(|m| !child_needs_conversion(&what, m));
        if self.keep || all_docker {
            for m in &children {
                image_manifest(&what, m, true, &mut self.store)?;
            }
            let d = self.store.manifest(&top.raw, &top.media_type);
            return Ok((d, top.media_type.clone(), top.raw.len() as u64));
        }
        let mut stored: BTreeMap<&Digest, BlobRef> = BTreeMap::new();
        let mut manifests = Vec::new();
        for m in &children {
            let (s, c) = image_manifest(&what, m, false, &mut self.store)?;
            if let Some(c) = &c {
                manifests.push(converted(m, c));
            }
            stored.insert(&m.digest, s);
        }
        let mut list: Vec<(BlobRef, Platform)> = Vec::new();
        for e in &wanted {
            let platform = e
                .platform
                .clone()
                .ok_or_else(|| format!("{what}: index entry {} has no platform", e.blob.digest))?;
            list.push((stored[&e.blob.digest].clone(), platform));
        }
        let c = convert::docker_list(&list);
        manifests.push(converted(top, &c));
        self.conversion = Some(Conversion {
            reason: if media_type::is_docker(&top.media_type) {
                "a Docker manifest list with OCI-typed or non-image entries, which Docker 17.03 cannot pull as served: written as a Docker manifest list of Docker schema 2 manifests, non-image entries left out".into()
            } else {
                WHY_INDEX.into()
            },
            manifests,
            dropped,
            generated: vec![],
        });
        let d = self.store.manifest(&c.raw, c.media_type);
        Ok((d, c.media_type.to_string(), c.raw.len() as u64))
    }
}

/// True when an index has an image entry for `want`.
fn has_platform(entries: &[oci::IndexEntry], want: &Platform) -> bool {
    entries
        .iter()
        .filter(|e| e.kind == EntryKind::Image)
        .any(|e| e.platform.as_ref().is_some_and(|p| want.matches(p)))
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

/// Stores an image manifest, converted unless `keep` or already Docker-typed: what is stored
/// (digest, size, media type), and the conversion if there was one.
fn image_manifest(
    what: &str,
    m: &Manifest,
    keep: bool,
    store: &mut Store,
) -> Result<(BlobRef, Option<Converted>), ResolveError> {
    let parsed = manifest::parse(what, &m.media_type, &m.raw)?;
    let Parsed::Image { config, layers } = parsed else {
        return Err(format!("{what}: {} is not an image manifest", m.digest).into());
    };
    store.image(&config, &layers);
    let stored = |raw: &[u8], mt: &str, store: &mut Store| BlobRef {
        digest: store.manifest(raw, mt),
        size: raw.len() as u64,
        media_type: mt.to_string(),
    };
    if keep || !convert::needs_conversion(&m.media_type, &config, &layers) {
        return Ok((stored(&m.raw, &m.media_type, store), None));
    }
    let c = oci::to_docker(what, &m.media_type, &m.raw)?;
    Ok((stored(&c.raw, c.media_type, store), Some(c)))
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

/// Refuses a schema 1 image (one platform, no index) for another platform than was asked:
/// packed anyway, an arm64 pause would land where amd64 hosts pull it. The variant counts only
/// when both say one (schema 1 images rarely do).
fn schema1_platform(
    what: &str,
    s: &schema1::Schema1,
    platforms: &Platforms,
) -> Result<(), ResolveError> {
    let Some(have) = s.platform() else {
        return Ok(());
    };
    let fits = |want: &Platform| {
        want.os == have.os
            && want.architecture == have.architecture
            && (want.variant.is_none() || have.variant.is_none() || want.variant == have.variant)
    };
    let asked: Vec<&Platform> = match platforms {
        Platforms::One(p) => vec![p],
        Platforms::Several(ps) => ps.iter().collect(),
        Platforms::All => return Ok(()),
    };
    if asked.iter().any(|p| fits(p)) {
        return Ok(());
    }
    let asked: Vec<String> = asked.iter().map(ToString::to_string).collect();
    Err(format!(
        "{what}: its schema 1 manifest is a {have} image, and {} was asked; a schema 1 manifest holds one platform only: refusing it (pack it with --platform {have} if that is the platform you want)",
        asked.join(", ")
    )
    .into())
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
