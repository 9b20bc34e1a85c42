//! The bundle's own metadata: `bundle.json`, the OCI `index.json` and the entry names.
//! The format is written down in `docs/bundle-format.md`; bump [`FORMAT_VERSION`] on any
//! change a reader of an older airlock could misread.

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

/// `bundle.json` `formatVersion` this airlock writes.
///
/// Version 2 added, per image, where it was fetched from and what was converted (`upstream`);
/// a version 2 bundle can also hold a signed schema 1 manifest (with `--keep-digests`), whose
/// digest is not the sha256 of its bytes: an airlock that reads only version 1 refuses it
/// rather than misreading it.
pub const FORMAT_VERSION: u32 = 2;

/// The `formatVersion`s this airlock reads.
pub const READABLE_VERSIONS: [u32; 2] = [1, 2];

/// True when this airlock reads bundles of `format_version`.
pub fn is_readable(format_version: u32) -> bool {
    READABLE_VERSIONS.contains(&format_version)
}
/// `bundle.json` `format`.
pub const FORMAT_NAME: &str = "airlock-bundle";
/// Entry names.
pub const OCI_LAYOUT: &str = "oci-layout";
pub const INDEX_JSON: &str = "index.json";
pub const BUNDLE_JSON: &str = "bundle.json";
/// The content of `oci-layout`.
pub const OCI_LAYOUT_CONTENT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;
/// Annotation with the image's full source reference (OCI image layout).
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The annotation containerd's `ctr images import` reads the image name from.
pub const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";

/// The entry name of a blob.
pub fn blob_entry(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

/// `bundle.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BundleManifest {
    pub format: String,
    pub format_version: u32,
    pub airlock_version: String,
    /// `SOURCE_DATE_EPOCH` when it was set, else absent: the same inputs give the same bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    pub request: Request,
    /// Platforms kept for multi-platform images: `["linux/amd64"]`, or `["all"]`.
    pub platforms: Vec<String>,
    pub images: Vec<ImageRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<Failure>,
    pub blobs: BlobTotals,
    /// For a delta bundle: what it builds on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<BaseRef>,
}

/// What a delta bundle builds on (`pack --base` or `--base-registry-inventory`): the blobs it
/// leaves out, which the target registry must already hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct BaseRef {
    /// sha256 of the base bundle's `bundle.json` bytes (with `--base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_json_sha256: Option<Digest>,
    /// The registry inventory the delta was made against (with `--base-registry-inventory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<InventoryRef>,
    /// Configs and layers the images need that this bundle does not carry.
    pub omitted_blobs: Vec<OmittedBlob>,
}

impl BaseRef {
    /// The omitted blobs by digest.
    pub fn omitted(&self) -> std::collections::BTreeMap<Digest, u64> {
        self.omitted_blobs
            .iter()
            .map(|b| (b.digest.clone(), b.size))
            .collect()
    }
}

/// An inventory file a delta was made against.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InventoryRef {
    /// The registry the inventory describes.
    pub registry: String,
    /// sha256 of the inventory file's bytes.
    pub sha256: Digest,
}

/// A blob a delta bundle relies on without carrying it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct OmittedBlob {
    pub digest: Digest,
    pub size: u64,
}

/// One image converted at pack time, for `inspect`, `verify` and `unpack` reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConversionNote {
    pub source: String,
    /// What upstream served.
    pub upstream_digest: Digest,
    pub upstream_media_type: String,
    /// What the bundle carries instead.
    pub digest: Digest,
    pub media_type: String,
}

/// The images of `images` converted at pack time, in order.
pub fn conversions(images: &[ImageRecord]) -> Vec<ConversionNote> {
    images
        .iter()
        .filter_map(|i| {
            let u = i.upstream.as_ref().filter(|u| u.conversion.is_some())?;
            Some(ConversionNote {
                source: i.source.clone(),
                upstream_digest: u.digest.clone(),
                upstream_media_type: u.media_type.clone(),
                digest: i.digest.clone(),
                media_type: i.media_type.clone(),
            })
        })
        .collect()
}

impl BundleManifest {
    /// The images converted at pack time, in bundle order.
    pub fn conversions(&self) -> Vec<ConversionNote> {
        conversions(&self.images)
    }

    /// The configs and layers a delta bundle leaves to its base (empty for a full bundle).
    pub fn omitted(&self) -> std::collections::BTreeMap<Digest, u64> {
        self.base.as_ref().map(BaseRef::omitted).unwrap_or_default()
    }
}

/// What the operator asked `pack` for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct Request {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rancher_version: Option<String>,
    /// The Kubernetes templates the images come from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub k8s_templates: Vec<String>,
    /// Groups asked for with `--only` (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The `--images` file name and the sha256 of its content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_list: Option<ImageListSource>,
    /// `--relocate` rules, as given (after normalisation).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relocations: Vec<String>,
    /// The pin table the upstream digests were checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pins: Option<crate::upstream::PinSource>,
    /// `--keep-digests`: every manifest stored exactly as upstream served it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_digests: bool,
    /// The server group, when it was asked for (`--with-server`, `--only server`): which
    /// images are the server and its agent, for `unpack`'s command that starts the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerRequest>,
}

/// The images of a Rancher release's server group, by their `source` in `images`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ServerRequest {
    /// `docker.io/rancher/server:v1.6.14`.
    pub server: String,
    /// The agent that server requires on every host, `docker.io/rancher/agent:v1.2.9`.
    pub agent: String,
    /// The load-balancer image it starts, `docker.io/rancher/lb-service-haproxy:v0.7.15`.
    pub load_balancer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ImageListSource {
    pub file: String,
    pub sha256: Digest,
}

/// One image in the bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageRecord {
    /// Full source reference, e.g. `docker.io/rancher/k8s:v1.8.5-rancher4`.
    pub source: String,
    /// Repository path and tag in the private registry, e.g. `rancher/k8s:v1.8.5-rancher4`.
    pub target: String,
    /// Further paths the same image is pushed to (the pause image's second path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alt_targets: Vec<String>,
    /// Catalog group (pause, infra, addons, stacks) or `list` for `--images`.
    pub group: String,
    /// The digest stored under the tag: the manifest (or index, with all platforms).
    pub digest: Digest,
    pub media_type: String,
    /// Manifest size in bytes.
    pub size: u64,
    /// Manifest(s), configs and layers of this image, in bytes.
    pub total_bytes: u64,
    /// When a single platform was picked out of an index: the index it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_index: Option<FromIndex>,
    /// Where the image was fetched from and what upstream served there (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream: Option<Upstream>,
}

impl ImageRecord {
    /// The digest a registry gives the stored manifest once pushed: `digest`, except for a
    /// signed schema 1 manifest kept with `--keep-digests`, whose registry digest covers its
    /// JWS payload (recorded as `upstream.digest`).
    pub fn registry_digest(&self) -> &Digest {
        match &self.upstream {
            Some(u)
                if crate::media_type::kind(&self.media_type)
                    == crate::media_type::Kind::Schema1 =>
            {
                &u.digest
            }
            _ => &self.digest,
        }
    }

    /// True when the stored manifest is a conversion of upstream's.
    pub fn is_converted(&self) -> bool {
        self.upstream
            .as_ref()
            .is_some_and(|u| u.conversion.is_some())
    }

    /// The layers of a schema 1 manifest kept as upstream served it (`--keep-digests`), from
    /// `upstream.schema1Layers`, after checking `raw` against the record: its JWS payload
    /// must hash to `upstream.digest`, and it must list exactly the recorded layers.
    pub fn schema1_blobs(&self, raw: &[u8]) -> Result<Vec<crate::manifest::BlobRef>, String> {
        let Some(u) = &self.upstream else {
            return Err(format!(
                "unsupported media type {:?} without its upstream record in bundle.json \
                 (format 2 records the schema 1 manifests --keep-digests carries)",
                self.media_type
            ));
        };
        let s = crate::convert::schema1::parse(&self.digest.to_string(), raw)
            .map_err(|e| e.to_string())?;
        if s.digest != u.digest {
            return Err(format!(
                "its schema 1 payload hashes to {}, bundle.json says {}",
                s.digest, u.digest
            ));
        }
        let listed: std::collections::BTreeSet<&Digest> = s.fs_layers.iter().collect();
        let recorded: std::collections::BTreeSet<&Digest> =
            u.schema1_layers.iter().map(|b| &b.digest).collect();
        if listed != recorded || recorded.len() != u.schema1_layers.len() {
            return Err(
                "its schema 1 layers disagree with upstream.schema1Layers in bundle.json".into(),
            );
        }
        Ok(u.schema1_layers
            .iter()
            .map(|b| crate::manifest::BlobRef {
                digest: b.digest.clone(),
                size: b.size,
                media_type: crate::media_type::DOCKER_LAYER_GZIP.into(),
            })
            .collect())
    }
}

/// Where an image was fetched from, and what upstream served there.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Upstream {
    /// The place it was fetched from, e.g. `registry.k8s.io/pause-amd64:3.0`.
    pub fetched_from: String,
    /// What the tag resolved to there (for a signed schema 1 manifest, the registry's digest
    /// of its JWS payload).
    pub digest: Digest,
    pub media_type: String,
    /// True when `digest` was checked against a pin table (see `request.pins`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pinned: bool,
    /// Present when what is stored is not what upstream served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion: Option<Conversion>,
    /// A schema 1 manifest kept as served (`--keep-digests`): its layers and their sizes,
    /// which the manifest does not state.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema1_layers: Vec<OmittedBlob>,
}

/// What a conversion did to an image, and why.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Conversion {
    /// Why the upstream form would not do, and what was made of it.
    pub reason: String,
    /// Each upstream manifest or index replaced, and its replacement.
    pub manifests: Vec<ConvertedManifest>,
    /// Index entries left out (attestations and other non-image entries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<DroppedEntry>,
    /// Image configs airlock wrote (schema 1 conversions): not from upstream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generated: Vec<Digest>,
}

/// One manifest a conversion replaced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConvertedManifest {
    pub from: Digest,
    pub from_media_type: String,
    pub to: Digest,
    pub to_media_type: String,
}

/// An index entry a conversion left out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DroppedEntry {
    pub digest: Digest,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FromIndex {
    pub digest: Digest,
    pub media_type: String,
    pub platform: String,
}

/// An image `pack --keep-going` could not fetch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub source: String,
    pub error: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct BlobTotals {
    /// Distinct blobs (manifests, indexes, configs, layers).
    pub count: u64,
    /// Their bytes, each counted once.
    pub bytes: u64,
}

/// An OCI descriptor as written in `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Embedded content (base64), which must be exactly the content described.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `index.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OciIndex {
    pub schema_version: u32,
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
}

impl OciIndex {
    /// The index of a bundle: one descriptor per image, named with its source reference.
    pub fn for_images(images: &[ImageRecord]) -> OciIndex {
        OciIndex {
            schema_version: 2,
            media_type: crate::media_type::OCI_INDEX.to_string(),
            manifests: images
                .iter()
                .map(|i| Descriptor {
                    media_type: i.media_type.clone(),
                    digest: i.digest.clone(),
                    size: i.size,
                    platform: None,
                    data: None,
                    annotations: [
                        (ANNOTATION_CONTAINERD_NAME.to_string(), i.source.clone()),
                        (ANNOTATION_REF_NAME.to_string(), i.source.clone()),
                    ]
                    .into_iter()
                    .collect(),
                })
                .collect(),
        }
    }
}
