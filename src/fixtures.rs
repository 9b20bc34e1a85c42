//! Deterministic test images: real gzip tar layers, configs, manifests and indexes generated
//! from a seed, so their bytes and digests never drift between runs (ggcr `random.Image`).
//!
//! Each layer's bytes are a function of `(seed, label, size)` only, so two images that name the
//! same layer label share that layer, digest and all, the way real images share base layers.
//! [`rancher_1_6_14`] builds the 17 images a Rancher 1.6.14 Kubernetes environment pulls, with
//! the real shape (one Docker manifest list, three OCI images, shared bases) and sizes roughly
//! proportional to the real ones. [`push_raw`] and [`write_oci_layout`] seed an "upstream"
//! registry or an OCI layout without going through airlock's own push code, so tests of that
//! code do not grade their own homework.
//!
//! Formats: Docker "Image Manifest V2, Schema 2" and the OCI image-spec
//! (<https://github.com/opencontainers/image-spec/blob/main/manifest.md>,
//! <https://github.com/opencontainers/image-spec/blob/main/image-layout.md>); pushes follow the
//! distribution spec's monolithic upload
//! (<https://github.com/opencontainers/distribution-spec/blob/main/spec.md#pushing-blobs>).
//!
//! Drift: the gzip stream depends on the deflate implementation (flate2's miniz_oxide backend
//! today). Switching flate2 backends changes every layer digest; the drift tests will say so.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use flate2::{Compression, GzBuilder};
use rayon::prelude::*;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::digest::{Digest, HashingWriter};
use crate::media_type;

/// Every layer is at least this big, so tiny scales still produce real, distinct layers.
pub const MIN_LAYER_SIZE: usize = 1024;

/// The fixed creation time of every config: the epoch, so configs never drift.
const CREATED: &str = "1970-01-01T00:00:00Z";

/// A blob as it is pushed: a layer or a config.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    /// The descriptor media type (layer types follow the image's [`Format`]).
    pub media_type: String,
    /// The sha256 of `data`.
    pub digest: Digest,
    /// The bytes as pushed (gzip for layers, JSON for configs).
    pub data: Vec<u8>,
    /// For layers, the sha256 of the uncompressed tar (config `rootfs.diff_ids`); `None` for configs.
    pub diff_id: Option<Digest>,
}

impl Blob {
    /// The size in bytes.
    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }
}

/// Which manifest family an image or index uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Docker schema 2 manifests and Docker manifest lists.
    Docker,
    /// OCI image manifests and image indexes.
    Oci,
}

impl Format {
    /// The media type of a single-platform manifest.
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Docker => media_type::DOCKER_MANIFEST,
            Format::Oci => media_type::OCI_MANIFEST,
        }
    }
    /// The media type of an index (manifest list).
    pub fn index_type(self) -> &'static str {
        match self {
            Format::Docker => media_type::DOCKER_LIST,
            Format::Oci => media_type::OCI_INDEX,
        }
    }
    /// The media type of an image config.
    pub fn config_type(self) -> &'static str {
        match self {
            Format::Docker => media_type::DOCKER_CONFIG,
            Format::Oci => media_type::OCI_CONFIG,
        }
    }
    /// The media type of a gzip layer.
    pub fn layer_type(self) -> &'static str {
        match self {
            Format::Docker => media_type::DOCKER_LAYER_GZIP,
            Format::Oci => media_type::OCI_LAYER_GZIP,
        }
    }
}

/// The platform an image runs on, as written in configs and index descriptors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Platform {
    /// `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// Always `linux` here.
    pub os: String,
    /// `v7` for 32-bit arm, else `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// `linux/<architecture>[/<variant>]`.
    pub fn linux(architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(Into::into),
        }
    }
}

/// A single-platform image: its manifest, config and layers.
#[derive(Clone, Debug)]
pub struct Image {
    /// [`media_type::DOCKER_MANIFEST`] or [`media_type::OCI_MANIFEST`].
    pub media_type: String,
    /// The manifest bytes exactly as pushed; `digest` is their sha256.
    pub manifest: Vec<u8>,
    /// The sha256 of `manifest`.
    pub digest: Digest,
    /// The config JSON blob.
    pub config: Blob,
    /// The layers, base first.
    pub layers: Vec<Blob>,
    /// Also used for this image's descriptor when it is a child of an [`Index`].
    pub platform: Platform,
}

/// A multi-platform index (Docker manifest list or OCI image index).
#[derive(Clone, Debug)]
pub struct Index {
    /// [`media_type::DOCKER_LIST`] or [`media_type::OCI_INDEX`].
    pub media_type: String,
    /// The index bytes exactly as pushed; `digest` is their sha256.
    pub manifest: Vec<u8>,
    /// The sha256 of `manifest`.
    pub digest: Digest,
    /// The platform images, in descriptor order.
    pub children: Vec<Image>,
}

/// What a tag points at.
#[derive(Clone, Debug)]
pub enum Artifact {
    /// A single-platform image.
    Image(Image),
    /// A multi-platform index.
    Index(Index),
}

impl Artifact {
    /// The digest of the top-level manifest.
    pub fn digest(&self) -> &Digest {
        match self {
            Artifact::Image(i) => &i.digest,
            Artifact::Index(i) => &i.digest,
        }
    }
    /// The media type of the top-level manifest.
    pub fn media_type(&self) -> &str {
        match self {
            Artifact::Image(i) => &i.media_type,
            Artifact::Index(i) => &i.media_type,
        }
    }
    /// The raw top-level manifest bytes.
    pub fn manifest(&self) -> &[u8] {
        match self {
            Artifact::Image(i) => &i.manifest,
            Artifact::Index(i) => &i.manifest,
        }
    }
    /// The images: itself, or an index's children.
    pub fn images(&self) -> Vec<&Image> {
        match self {
            Artifact::Image(i) => vec![i],
            Artifact::Index(i) => i.children.iter().collect(),
        }
    }
    /// Every config and layer (all children's for an index), each digest once, in push order.
    pub fn all_blobs(&self) -> Vec<&Blob> {
        let mut seen = HashSet::new();
        self.images()
            .into_iter()
            .flat_map(|i| std::iter::once(&i.config).chain(&i.layers))
            .filter(|b| seen.insert(&b.digest))
            .collect()
    }
    /// The summed size of [`Artifact::all_blobs`] (manifests not included).
    pub fn total_size(&self) -> u64 {
        self.all_blobs().iter().map(|b| b.size()).sum()
    }
}

/// A named image as it exists upstream.
#[derive(Clone, Debug)]
pub struct Fixture {
    /// The fully qualified source reference, e.g. `docker.io/rancher/k8s:v1.8.5-rancher4`.
    pub name: String,
    /// The image or index the name points at.
    pub artifact: Artifact,
}

// ---------------------------------------------------------------------------------------------
// Layers

/// splitmix64: fast, tiny and good enough to make incompressible bytes.
struct SplitMix(u64);

impl SplitMix {
    fn new(seed: u64, label: &str) -> SplitMix {
        // sha256 mixes (seed, label) so similar labels still get unrelated streams.
        let h = Sha256::new()
            .chain_update(seed.to_le_bytes())
            .chain_update(label.as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&h[..8]);
        SplitMix(u64::from_le_bytes(first))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `remaining` pseudo-random bytes. The byte stream does not depend on the buffer sizes the
/// caller reads with (tar copies through `io::copy`, whose buffer size is std's business).
struct Noise<'a> {
    rng: &'a mut SplitMix,
    pending: [u8; 8],
    pending_len: usize,
    remaining: u64,
}

impl Read for Noise<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let out = &mut out[..n];
        let mut i = 0;
        while i < n && self.pending_len > 0 {
            out[i] = self.pending[8 - self.pending_len];
            self.pending_len -= 1;
            i += 1;
        }
        let mut words = out[i..].chunks_exact_mut(8);
        for w in &mut words {
            w.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.pending = self.rng.next_u64().to_le_bytes();
            rest.copy_from_slice(&self.pending[..rest.len()]);
            self.pending_len = 8 - rest.len();
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// A label made safe for a tar path.
fn path_label(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

/// A deterministic gzip tar layer whose content is a function of `(label, seed, size)` only.
///
/// It holds `data/`, `data/<label>/`, up to four `data/<label>/<n>.bin` files of incompressible
/// bytes totalling `size` (at least [`MIN_LAYER_SIZE`]) and a small `data/<label>/README.txt`,
/// in that (sorted) order, with mtime 0, uid/gid 0 and mode 0644 (0755 for directories). The
/// gzip header is fixed (mtime 0, no file name) and the level is `Compression::fast()`. The
/// blob is typed as a Docker layer; [`image`] retypes it for OCI images.
pub fn layer(label: &str, seed: u64, size: usize) -> Blob {
    build_layer(label, seed, size).expect("writing a layer into memory cannot fail")
}

fn build_layer(label: &str, seed: u64, size: usize) -> io::Result<Blob> {
    let size = size.max(MIN_LAYER_SIZE);
    let dir = format!("data/{}/", path_label(label));
    // Incompressible input grows slightly under deflate; reserve a little more than the input.
    let gz = GzBuilder::new().mtime(0).write(
        Vec::with_capacity(size + size / 64 + 8192),
        Compression::fast(),
    );
    let mut tar = tar::Builder::new(HashingWriter::new(gz));

    for path in ["data/", dir.as_str()] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, path, io::empty())?;
    }
    let files = (size / (256 * 1024)).clamp(1, 4);
    let mut rng = SplitMix::new(seed, label);
    for n in 0..files {
        let len = if n + 1 == files {
            size - (files - 1) * (size / files)
        } else {
            size / files
        };
        let mut h = header(tar::EntryType::Regular, 0o644, len as u64);
        let noise = Noise {
            rng: &mut rng,
            pending: [0; 8],
            pending_len: 0,
            remaining: len as u64,
        };
        tar.append_data(&mut h, format!("{dir}{n}.bin"), noise)?;
    }
    let readme = format!("airlock fixture layer\nlabel: {label}\nseed: {seed}\nsize: {size}\n");
    let mut h = header(tar::EntryType::Regular, 0o644, readme.len() as u64);
    tar.append_data(&mut h, format!("{dir}README.txt"), readme.as_bytes())?;

    let (diff_id, _, gz) = tar.into_inner()?.finish();
    let data = gz.finish()?;
    Ok(Blob {
        media_type: media_type::DOCKER_LAYER_GZIP.into(),
        digest: Digest::of(&data),
        data,
        diff_id: Some(diff_id),
    })
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

// ---------------------------------------------------------------------------------------------
// Manifests

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DescriptorJson<'a> {
    media_type: &'a str,
    size: u64,
    digest: &'a Digest,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a Platform>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<&'a str, &'a str>>,
}

impl<'a> DescriptorJson<'a> {
    fn new(media_type: &'a str, size: u64, digest: &'a Digest) -> Self {
        DescriptorJson {
            media_type,
            size,
            digest,
            platform: None,
            annotations: None,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ManifestJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    config: DescriptorJson<'a>,
    layers: Vec<DescriptorJson<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IndexJson<'a> {
    schema_version: u32,
    media_type: &'a str,
    manifests: Vec<DescriptorJson<'a>>,
}

// Docker's config field names (`Env`, `Cmd`, ...) in the order docker writes them.
#[derive(Serialize)]
struct ConfigJson<'a> {
    architecture: &'a str,
    config: RunConfigJson<'a>,
    created: &'a str,
    history: Vec<HistoryJson>,
    os: &'a str,
    rootfs: RootFsJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    variant: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfigJson<'a> {
    env: [&'a str; 1],
    cmd: [&'a str; 1],
    labels: BTreeMap<&'a str, &'a str>,
}

#[derive(Serialize)]
struct HistoryJson {
    created: &'static str,
    created_by: String,
}

#[derive(Serialize)]
struct RootFsJson<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: Vec<&'a Digest>,
}

fn to_json(v: &impl Serialize) -> Vec<u8> {
    // Structs (not `json!` maps) keep the field order fixed whatever serde_json features another
    // crate turns on; `preserve_order` would otherwise reorder keys and change every digest.
    serde_json::to_vec_pretty(v).expect("fixture JSON always serializes")
}

/// A single-platform image over `layers`, retyped for `format`. `label` goes into the config
/// (labels and history), so two images with the same layers still get distinct configs.
pub fn image(format: Format, platform: Platform, layers: Vec<Blob>, label: &str) -> Image {
    let layers: Vec<Blob> = layers
        .into_iter()
        .map(|mut l| {
            l.media_type = format.layer_type().into();
            l
        })
        .collect();
    let config = ConfigJson {
        architecture: &platform.architecture,
        config: RunConfigJson {
            env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            cmd: ["/bin/sh"],
            labels: BTreeMap::from([("io.airlock.fixture", label)]),
        },
        created: CREATED,
        history: layers
            .iter()
            .map(|l| HistoryJson {
                created: CREATED,
                created_by: format!("airlock-fixtures {label} layer {}", l.digest.short()),
            })
            .collect(),
        os: &platform.os,
        rootfs: RootFsJson {
            kind: "layers",
            diff_ids: layers.iter().filter_map(|l| l.diff_id.as_ref()).collect(),
        },
        variant: platform.variant.as_deref(),
    };
    let data = to_json(&config);
    let config = Blob {
        media_type: format.config_type().into(),
        digest: Digest::of(&data),
        data,
        diff_id: None,
    };
    let manifest = to_json(&ManifestJson {
        schema_version: 2,
        media_type: format.manifest_type(),
        config: DescriptorJson::new(&config.media_type, config.size(), &config.digest),
        layers: layers
            .iter()
            .map(|l| DescriptorJson::new(&l.media_type, l.size(), &l.digest))
            .collect(),
    });
    Image {
        media_type: format.manifest_type().into(),
        digest: Digest::of(&manifest),
        manifest,
        config,
        layers,
        platform,
    }
}

/// An index over `children` (a Docker manifest list for [`Format::Docker`]), with each child's
/// platform in its descriptor.
pub fn index(format: Format, children: Vec<Image>) -> Index {
    let manifest = to_json(&IndexJson {
        schema_version: 2,
        media_type: format.index_type(),
        manifests: children
            .iter()
            .map(|c| DescriptorJson {
                platform: Some(&c.platform),
                ..DescriptorJson::new(&c.media_type, c.manifest.len() as u64, &c.digest)
            })
            .collect(),
    });
    Index {
        media_type: format.index_type().into(),
        digest: Digest::of(&manifest),
        manifest,
        children,
    }
}

// ---------------------------------------------------------------------------------------------
// The Rancher 1.6.14 set

/// How an image of a plan is built.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Docker,
    Oci,
    /// A Docker manifest list with one single-layer child per entry of [`LIST_PLATFORMS`]: the
    /// image's i-th layer label is the i-th child's layer.
    DockerList,
}

const LIST_PLATFORMS: [(&str, Option<&str>); 3] =
    [("amd64", None), ("arm64", None), ("arm", Some("v7"))];

/// Layer labels and their sizes at scale 1.0, in kB (1000 bytes), roughly proportional to the
/// real compressed layers: hyperkube, dashboard and grafana big; influxdb small; pause tiny.
const LAYERS: &[(&str, u64)] = &[
    ("pause", 250),
    ("busybox-amd64", 720),
    ("busybox-arm64", 700),
    ("busybox-armv7", 680),
    ("alpine-base", 4_000),
    ("debian-base", 18_000),
    ("kubectl", 45_000),
    ("hyperkube", 140_000),
    ("k8s-scripts", 1_000),
    ("etcd", 16_000),
    ("etc-host-updater", 3_000),
    ("kubectld", 5_000),
    ("kubernetes-agent", 12_000),
    ("haproxy", 20_000),
    ("lb-controller", 10_000),
    ("kubernetes-auth", 8_000),
    ("kubernetes-dashboard", 120_000),
    ("kube-dns", 36_000),
    ("dnsmasq-nanny", 28_000),
    ("dns-sidecar", 30_000),
    ("grafana", 80_000),
    ("grafana-plugins", 20_000),
    ("heapster", 55_000),
    ("influxdb", 10_000),
    ("tiller", 22_000),
];

/// The images of Rancher 1.6.14's Kubernetes template v1.8.5-rancher4, in pull order.
const RANCHER_1_6_14: &[(&str, Shape, &[&str])] = &[
    (
        "gcr.io/google_containers/pause-amd64:3.0",
        Shape::Docker,
        &["pause"],
    ),
    (
        "docker.io/rancher/k8s:v1.8.5-rancher4",
        Shape::Docker,
        &["debian-base", "kubectl", "hyperkube", "k8s-scripts"],
    ),
    (
        "docker.io/rancher/etcd:v2.3.7-13",
        Shape::Docker,
        &["alpine-base", "etcd"],
    ),
    (
        "docker.io/library/busybox:latest",
        Shape::DockerList,
        &["busybox-amd64", "busybox-arm64", "busybox-armv7"],
    ),
    (
        "docker.io/rancher/etc-host-updater:v0.0.3",
        Shape::Docker,
        &["alpine-base", "etc-host-updater"],
    ),
    (
        "docker.io/rancher/kubectld:v0.8.5",
        Shape::Oci,
        &["alpine-base", "kubectl", "kubectld"],
    ),
    (
        "docker.io/rancher/kubernetes-agent:v0.6.6",
        Shape::Docker,
        &["alpine-base", "kubernetes-agent"],
    ),
    (
        "docker.io/rancher/lb-service-rancher:v0.7.17",
        Shape::Docker,
        &["alpine-base", "haproxy", "lb-controller"],
    ),
    (
        "docker.io/rancher/kubernetes-auth:v0.0.8",
        Shape::Oci,
        &["alpine-base", "kubernetes-auth"],
    ),
    (
        "gcr.io/google_containers/kubernetes-dashboard-amd64:v1.8.0",
        Shape::Docker,
        &["kubernetes-dashboard"],
    ),
    (
        "gcr.io/google_containers/k8s-dns-kube-dns-amd64:1.14.5",
        Shape::Docker,
        &["debian-base", "kube-dns"],
    ),
    (
        "gcr.io/google_containers/k8s-dns-dnsmasq-nanny-amd64:1.14.5",
        Shape::Docker,
        &["debian-base", "dnsmasq-nanny"],
    ),
    (
        "gcr.io/google_containers/k8s-dns-sidecar-amd64:1.14.5",
        Shape::Docker,
        &["debian-base", "dns-sidecar"],
    ),
    (
        "gcr.io/google_containers/heapster-grafana-amd64:v4.4.3",
        Shape::Docker,
        &["debian-base", "grafana", "grafana-plugins"],
    ),
    (
        "gcr.io/google_containers/heapster-amd64:v1.4.0",
        Shape::Docker,
        &["debian-base", "heapster"],
    ),
    (
        "gcr.io/google_containers/heapster-influxdb-amd64:v1.3.3",
        Shape::Docker,
        &["debian-base", "influxdb"],
    ),
    (
        "gcr.io/kubernetes-helm/tiller:v2.6.1",
        Shape::Oci,
        &["alpine-base", "tiller"],
    ),
];

/// A layer's size in bytes at `scale`, never below [`MIN_LAYER_SIZE`].
fn scaled(kb: u64, scale: f64) -> usize {
    ((kb as f64 * 1000.0 * scale).round() as usize).max(MIN_LAYER_SIZE)
}

fn planned_layer_size(label: &str, scale: f64) -> usize {
    let kb = LAYERS
        .iter()
        .find(|(l, _)| *l == label)
        .map(|(_, kb)| *kb)
        .unwrap_or_else(|| panic!("fixture plan names unknown layer {label}"));
    scaled(kb, scale)
}

/// Planned layer payload sizes of [`rancher_1_6_14`], computed without generating anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlannedSizes {
    /// Summed over images, a shared layer counted once per image that uses it.
    pub total: u64,
    /// Each distinct layer counted once.
    pub deduplicated: u64,
}

/// The planned payload sizes of [`rancher_1_6_14`] at `scale`. Real blobs differ by tar headers,
/// gzip framing and the (kilobyte-sized) configs: within a few percent at any scale.
pub fn planned_sizes(scale: f64) -> PlannedSizes {
    let mut seen = HashSet::new();
    let (mut total, mut deduplicated) = (0, 0);
    for (_, _, labels) in RANCHER_1_6_14 {
        for label in *labels {
            let size = planned_layer_size(label, scale) as u64;
            total += size;
            if seen.insert(*label) {
                deduplicated += size;
            }
        }
    }
    PlannedSizes {
        total,
        deduplicated,
    }
}

/// Generates each distinct label once, in parallel.
fn layers_by_label<'a>(
    wanted: impl Iterator<Item = (&'a str, usize)>,
    seed: u64,
) -> HashMap<&'a str, Blob> {
    let mut unique: Vec<(&str, usize)> = Vec::new();
    for (label, size) in wanted {
        if !unique.iter().any(|(l, _)| *l == label) {
            unique.push((label, size));
        }
    }
    unique
        .into_par_iter()
        .map(|(label, size)| (label, layer(label, seed, size)))
        .collect()
}

/// The 17 images Rancher 1.6.14 needs (Kubernetes template v1.8.5-rancher4), named by their
/// fully qualified source references. `scale` 1.0 gives about 860 MB summed over images and
/// about 685 MB deduplicated (see [`planned_sizes`]); tests use ~0.002.
pub fn rancher_1_6_14(seed: u64, scale: f64) -> Vec<Fixture> {
    let labels = RANCHER_1_6_14
        .iter()
        .flat_map(|(_, _, l)| l.iter().copied());
    let blobs = layers_by_label(labels.map(|l| (l, planned_layer_size(l, scale))), seed);
    let get = |label: &str| blobs[label].clone();
    RANCHER_1_6_14
        .iter()
        .map(|&(name, shape, labels)| {
            let amd64 = || Platform::linux("amd64", None);
            let layers = || labels.iter().map(|l| get(l)).collect::<Vec<_>>();
            let artifact = match shape {
                Shape::Docker => Artifact::Image(image(Format::Docker, amd64(), layers(), name)),
                Shape::Oci => Artifact::Image(image(Format::Oci, amd64(), layers(), name)),
                Shape::DockerList => {
                    let children = LIST_PLATFORMS
                        .iter()
                        .zip(labels)
                        .map(|(&(arch, variant), l)| {
                            let platform = Platform::linux(arch, variant);
                            image(
                                Format::Docker,
                                platform,
                                vec![get(l)],
                                &format!("{name} {l}"),
                            )
                        })
                        .collect();
                    Artifact::Index(index(Format::Docker, children))
                }
            };
            Fixture {
                name: name.into(),
                artifact,
            }
        })
        .collect()
}

/// Docker schema2 linux/amd64 images for arbitrary names: a shared `generic-base` layer (2 MB at
/// scale 1.0) plus one layer of 3-23 MB whose label and size derive from the name alone.
pub fn generic(names: &[&str], seed: u64, scale: f64) -> Vec<Fixture> {
    let own: Vec<(String, usize)> = names
        .iter()
        .map(|name| {
            let h = Sha256::digest(name.as_bytes());
            let kb = 3_000 + u64::from(u16::from_le_bytes([h[0], h[1]])) % 20_000;
            (format!("generic:{name}"), scaled(kb, scale))
        })
        .collect();
    let wanted = std::iter::once(("generic-base", scaled(2_000, scale)))
        .chain(own.iter().map(|(l, s)| (l.as_str(), *s)));
    let blobs = layers_by_label(wanted, seed);
    names
        .iter()
        .zip(&own)
        .map(|(name, (label, _))| {
            let layers = vec![blobs["generic-base"].clone(), blobs[label.as_str()].clone()];
            let platform = Platform::linux("amd64", None);
            Fixture {
                name: name.to_string(),
                artifact: Artifact::Image(image(Format::Docker, platform, layers, name)),
            }
        })
        .collect()
}

/// Splits a fully qualified name into `(registry, repository, tag)`:
/// `docker.io/library/busybox:latest` gives `("docker.io", "library/busybox", "latest")`. A
/// missing tag means `latest`. This is a plain split; airlock's reference parser lives elsewhere.
pub fn upstream_path(name: &str) -> (String, String, String) {
    let (registry, rest) = name.split_once('/').unwrap_or(("docker.io", name));
    let slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match rest[slash..].rfind(':') {
        Some(i) => (&rest[..slash + i], &rest[slash + i + 1..]),
        None => (rest, "latest"),
    };
    (registry.into(), repository.into(), tag.into())
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// Pushes `artifact` to `<base_url>/v2/<repository>` and tags it, with plain distribution-spec
/// requests (not airlock's push code): each missing blob by monolithic upload, an index's
/// children by digest, then the top manifest by `tag`. Checks every 201 and that the registry's
/// `Docker-Content-Digest` matches. No authentication: meant for local test registries.
pub fn push_raw(
    base_url: &str,
    repository: &str,
    tag: &str,
    artifact: &Artifact,
) -> anyhow::Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(Duration::from_secs(600)))
        .build()
        .into();
    push_raw_with(&agent, base_url, None, repository, tag, artifact)
}

/// [`push_raw`] over a caller's agent (for a test CA) and with an `Authorization` header
/// (Basic, or a bearer token minted by the test's token server).
pub fn push_raw_with(
    agent: &ureq::Agent,
    base_url: &str,
    authorization: Option<&str>,
    repository: &str,
    tag: &str,
    artifact: &Artifact,
) -> anyhow::Result<()> {
    let base = base_url.trim_end_matches('/');
    let push = Pusher {
        agent,
        base,
        repository,
        authorization,
    };
    for blob in artifact.all_blobs() {
        push.blob(blob)
            .with_context(|| format!("pushing blob {} to {base}/{repository}", blob.digest))?;
    }
    if let Artifact::Index(i) = artifact {
        for c in &i.children {
            push.manifest(&c.digest.to_string(), &c.media_type, &c.manifest, &c.digest)?;
        }
    }
    push.manifest(
        tag,
        artifact.media_type(),
        artifact.manifest(),
        artifact.digest(),
    )
}

struct Pusher<'a> {
    agent: &'a ureq::Agent,
    base: &'a str,
    repository: &'a str,
    authorization: Option<&'a str>,
}

impl Pusher<'_> {
    fn request(
        &self,
        method: &str,
        url: &str,
        content_type: Option<&str>,
        body: &[u8],
    ) -> anyhow::Result<ureq::http::Response<ureq::Body>> {
        let mut b = ureq::http::Request::builder().method(method).uri(url);
        if let Some(a) = self.authorization {
            b = b.header("Authorization", a);
        }
        if let Some(ct) = content_type {
            b = b.header("Content-Type", ct);
        }
        if method != "HEAD" {
            b = b.header("Content-Length", body.len().to_string());
        }
        let req = b.body(body.to_vec())?;
        self.agent
            .run(req)
            .with_context(|| format!("{method} {url}"))
    }

    fn blob(&self, blob: &Blob) -> anyhow::Result<()> {
        let (base, repo, d) = (self.base, self.repository, &blob.digest);
        let url = format!("{base}/v2/{repo}/blobs/{d}");
        let mut resp = self.request("HEAD", &url, None, &[])?;
        match resp.status().as_u16() {
            200 => return Ok(()),
            404 => {}
            s => bail!("HEAD {url}: {repo} answered {s}: {}", body_text(&mut resp)),
        }

        let url = format!("{base}/v2/{repo}/blobs/uploads/");
        let mut resp = self.request("POST", &url, None, &[])?;
        if resp.status().as_u16() != 202 {
            let s = resp.status().as_u16();
            bail!(
                "POST {url}: {repo} answered {s}, not 202: {}",
                body_text(&mut resp)
            );
        }
        let location = response_header(&resp, "location")
            .with_context(|| format!("POST {url}: {repo} gave no Location for the upload"))?;
        // Distribution answers with an absolute URL, others with a path; the upload URL often
        // carries its own query (`?_state=...`) already.
        let location = if location.starts_with("http://") || location.starts_with("https://") {
            location
        } else if location.starts_with('/') {
            format!("{base}{location}")
        } else {
            format!("{base}/{location}")
        };
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={d}");
        let mut resp = self.request("PUT", &url, Some("application/octet-stream"), &blob.data)?;
        expect_created(&mut resp, "PUT", &url, repo, d)
    }

    fn manifest(&self, reference: &str, mt: &str, raw: &[u8], d: &Digest) -> anyhow::Result<()> {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repository);
        let mut resp = self
            .request("PUT", &url, Some(mt), raw)
            .with_context(|| format!("{} manifest {d}", self.repository))?;
        expect_created(&mut resp, "PUT", &url, self.repository, d)
    }
}

fn response_header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers().get(name)?.to_str().ok().map(str::to_string)
}

fn body_text(resp: &mut ureq::http::Response<ureq::Body>) -> String {
    let mut text = resp.body_mut().read_to_string().unwrap_or_default();
    if text.len() > 300 {
        let mut end = 300;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text.trim().to_string()
}

fn expect_created(
    resp: &mut ureq::http::Response<ureq::Body>,
    method: &str,
    url: &str,
    repo: &str,
    expected: &Digest,
) -> anyhow::Result<()> {
    let status = resp.status().as_u16();
    if status != 201 {
        bail!(
            "{method} {url}: {repo} answered {status}, not 201: {}",
            body_text(resp)
        );
    }
    match response_header(resp, "docker-content-digest") {
        Some(got) if got == expected.to_string() => Ok(()),
        got => bail!(
            "{method} {url}: {repo} stored {}, expected {expected}",
            got.as_deref().unwrap_or("no Docker-Content-Digest")
        ),
    }
}

/// Writes `fixtures` as an OCI image layout in `dir`: `oci-layout`, `blobs/sha256/<hex>` for
/// every manifest, config and layer, and an `index.json` (replacing any existing one) with one
/// entry per fixture annotated `org.opencontainers.image.ref.name` = its full name, so that
/// `skopeo copy oci:DIR:docker.io/rancher/kubernetes-auth:v0.0.8 docker://...` works. skopeo
/// 1.9 only reads OCI-typed manifests from a layout; Docker-typed ones are written all the same.
pub fn write_oci_layout(dir: &Path, fixtures: &[Fixture]) -> anyhow::Result<()> {
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    let write_blob = |d: &Digest, data: &[u8]| -> anyhow::Result<()> {
        let path = blobs.join(d.hex());
        if path.exists() {
            return Ok(());
        }
        write_atomic(&path, data)
    };
    for f in fixtures {
        for b in f.artifact.all_blobs() {
            write_blob(&b.digest, &b.data)?;
        }
        for i in f.artifact.images() {
            write_blob(&i.digest, &i.manifest)?;
        }
        write_blob(f.artifact.digest(), f.artifact.manifest())?;
    }
    let index = IndexJson {
        schema_version: 2,
        media_type: media_type::OCI_INDEX,
        manifests: fixtures
            .iter()
            .map(|f| {
                let a = &f.artifact;
                DescriptorJson {
                    annotations: Some(BTreeMap::from([(
                        "org.opencontainers.image.ref.name",
                        f.name.as_str(),
                    )])),
                    ..DescriptorJson::new(a.media_type(), a.manifest().len() as u64, a.digest())
                }
            })
            .collect(),
    };
    write_atomic(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    write_atomic(&dir.join("index.json"), &to_json(&index))
}

/// Writes beside `path` and renames, so no partial file ever sits under a digest name.
fn write_atomic(path: &Path, data: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let write = || -> io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use serde_json::Value;

    const SCALE: f64 = 0.002;

    fn find<'a>(fixtures: &'a [Fixture], name: &str) -> &'a Artifact {
        &fixtures.iter().find(|f| f.name == name).unwrap().artifact
    }

    fn json(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn generation_is_deterministic() {
        let a = rancher_1_6_14(1, SCALE);
        let b = rancher_1_6_14(1, SCALE);
        for (a, b) in a.iter().zip(&b) {
            assert_eq!(a.name, b.name);
            assert_eq!(a.artifact.manifest(), b.artifact.manifest());
            let (ba, bb) = (a.artifact.all_blobs(), b.artifact.all_blobs());
            assert_eq!(ba, bb, "{}", a.name);
        }
        assert_eq!(layer("x", 7, 5000), layer("x", 7, 5000));
        assert_ne!(layer("x", 7, 5000).digest, layer("x", 8, 5000).digest);
        assert_ne!(layer("x", 7, 5000).digest, layer("y", 7, 5000).digest);
    }

    #[test]
    fn digests_do_not_drift() {
        let f = rancher_1_6_14(1, SCALE);
        let digest = |name| find(&f, name).digest().to_string();
        assert_eq!(
            digest("gcr.io/google_containers/pause-amd64:3.0"),
            "sha256:6a8151cbc6899003434c44cb73496d9414f519bcfa6e8d315934900b82094a70"
        );
        assert_eq!(
            digest("docker.io/library/busybox:latest"),
            "sha256:1178280aa7eeb55dcfb62f568b560c2db6a1eb360ceacf2c59e070ad23905cf9"
        );
        assert_eq!(
            digest("docker.io/rancher/kubernetes-auth:v0.0.8"),
            "sha256:a09ede417cecee3bb5993eb778410f7ee09949e3534d8e2c95533cc15144704b"
        );
        assert_eq!(
            layer("drift", 1, 1_000_000).digest.to_string(),
            "sha256:185e71daf2e632f1b76a772eaa3c0a409bd4b81a44263d7946aa83d63d88238a"
        );
    }

    #[test]
    fn noise_does_not_depend_on_read_sizes() {
        let read_with = |chunk: usize| {
            let mut rng = SplitMix::new(3, "n");
            let mut noise = Noise {
                rng: &mut rng,
                pending: [0; 8],
                pending_len: 0,
                remaining: 1001,
            };
            let mut out = Vec::new();
            let mut buf = vec![0; chunk];
            loop {
                let n = noise.read(&mut buf).unwrap();
                if n == 0 {
                    break out;
                }
                out.extend_from_slice(&buf[..n]);
            }
        };
        let whole = read_with(4096);
        assert_eq!(whole.len(), 1001);
        for chunk in [1, 3, 7, 8, 13, 64] {
            assert_eq!(read_with(chunk), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn layer_is_a_deterministic_tar() {
        let l = layer("some/label:1", 1, 600_000);
        let mut raw = Vec::new();
        GzDecoder::new(&l.data[..]).read_to_end(&mut raw).unwrap();
        assert_eq!(l.diff_id, Some(Digest::of(&raw)));
        // Random payload: gzip cannot shrink it, and only framing is added.
        assert!(
            l.data.len() > 600_000 && l.data.len() < 610_000,
            "{}",
            l.data.len()
        );
        // Fixed gzip header: magic, deflate, no flags, mtime 0.
        assert_eq!(&l.data[..8], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0]);
        let mut archive = tar::Archive::new(&raw[..]);
        let mut paths = Vec::new();
        let mut payload = 0;
        for e in archive.entries().unwrap() {
            let e = e.unwrap();
            let h = e.header();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            let path = e.path().unwrap().to_string_lossy().into_owned();
            if h.entry_type().is_file() {
                assert_eq!(h.mode().unwrap(), 0o644);
                if path.ends_with(".bin") {
                    payload += h.size().unwrap();
                }
            }
            paths.push(path);
        }
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert_eq!(paths[1], "data/some_label_1/");
        assert_eq!(paths.len(), 2 + 2 + 1);
        assert_eq!(payload, 600_000);
    }

    #[test]
    fn rancher_set_has_the_right_shape() {
        let f = rancher_1_6_14(1, SCALE);
        let names: Vec<&str> = f.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names.len(), 17);
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), 17);
        assert!(names.contains(&"docker.io/rancher/k8s:v1.8.5-rancher4"));
        assert!(names.contains(&"gcr.io/kubernetes-helm/tiller:v2.6.1"));

        let oci: Vec<&str> = f
            .iter()
            .filter(|f| f.artifact.media_type() == media_type::OCI_MANIFEST)
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            oci,
            [
                "docker.io/rancher/kubectld:v0.8.5",
                "docker.io/rancher/kubernetes-auth:v0.0.8",
                "gcr.io/kubernetes-helm/tiller:v2.6.1"
            ]
        );
        let lists: Vec<&Fixture> = f
            .iter()
            .filter(|f| f.artifact.media_type() == media_type::DOCKER_LIST)
            .collect();
        assert_eq!(lists.len(), 1);
        assert_eq!(lists[0].name, "docker.io/library/busybox:latest");
        let docker = f
            .iter()
            .filter(|f| f.artifact.media_type() == media_type::DOCKER_MANIFEST)
            .count();
        assert_eq!(docker, 13);

        // busybox: three platforms, each descriptor matching its child.
        let Artifact::Index(busybox) = &lists[0].artifact else {
            panic!("busybox is not an index")
        };
        let v = json(&busybox.manifest);
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], media_type::DOCKER_LIST);
        let platforms: Vec<String> = v["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .zip(&busybox.children)
            .map(|(d, c)| {
                assert_eq!(d["digest"], c.digest.to_string());
                assert_eq!(d["size"], c.manifest.len());
                assert_eq!(d["mediaType"], media_type::DOCKER_MANIFEST);
                let p = &d["platform"];
                let variant = p["variant"].as_str().map(|v| format!("/{v}"));
                format!(
                    "{}/{}{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap(),
                    variant.unwrap_or_default()
                )
            })
            .collect();
        assert_eq!(platforms, ["linux/amd64", "linux/arm64", "linux/arm/v7"]);
    }

    #[test]
    fn manifests_match_their_blobs() {
        let f = rancher_1_6_14(1, SCALE);
        for fixture in &f {
            for img in fixture.artifact.images() {
                let docker = img.media_type == media_type::DOCKER_MANIFEST;
                let (config_type, layer_type) = if docker {
                    (media_type::DOCKER_CONFIG, media_type::DOCKER_LAYER_GZIP)
                } else {
                    (media_type::OCI_CONFIG, media_type::OCI_LAYER_GZIP)
                };
                assert_eq!(img.digest, Digest::of(&img.manifest));
                let m = json(&img.manifest);
                assert_eq!(m["schemaVersion"], 2);
                assert_eq!(m["mediaType"], img.media_type);
                assert_eq!(m["config"]["mediaType"], config_type);
                assert_eq!(m["config"]["digest"], img.config.digest.to_string());
                assert_eq!(m["config"]["size"], img.config.data.len());
                assert_eq!(img.config.digest, Digest::of(&img.config.data));
                let descs = m["layers"].as_array().unwrap();
                assert_eq!(descs.len(), img.layers.len());
                let config = json(&img.config.data);
                assert_eq!(config["created"], CREATED);
                assert_eq!(config["os"], img.platform.os);
                assert_eq!(config["architecture"], img.platform.architecture);
                assert_eq!(config["rootfs"]["type"], "layers");
                let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
                assert_eq!(diff_ids.len(), img.layers.len());
                assert_eq!(
                    config["history"].as_array().unwrap().len(),
                    img.layers.len()
                );
                for ((d, l), diff_id) in descs.iter().zip(&img.layers).zip(diff_ids) {
                    assert_eq!(d["mediaType"], layer_type);
                    assert_eq!(d["digest"], l.digest.to_string());
                    assert_eq!(d["size"], l.data.len());
                    assert_eq!(l.digest, Digest::of(&l.data));
                    let mut raw = Vec::new();
                    GzDecoder::new(&l.data[..]).read_to_end(&mut raw).unwrap();
                    assert_eq!(diff_id, &Digest::of(&raw).to_string(), "{}", fixture.name);
                }
            }
        }
    }

    #[test]
    fn layers_are_shared_between_images() {
        let f = rancher_1_6_14(1, SCALE);
        let mut users: HashMap<Digest, Vec<&str>> = HashMap::new();
        for fixture in &f {
            for b in fixture.artifact.all_blobs() {
                users
                    .entry(b.digest.clone())
                    .or_default()
                    .push(&fixture.name);
            }
        }
        let alpine = layer("alpine-base", 1, planned_layer_size("alpine-base", SCALE)).digest;
        let debian = layer("debian-base", 1, planned_layer_size("debian-base", SCALE)).digest;
        assert_eq!(users[&alpine].len(), 7);
        assert!(users[&alpine]
            .iter()
            .all(|n| n.contains("/rancher/") || n.contains("tiller")));
        assert_eq!(users[&debian].len(), 7);
        for name in [
            "k8s-dns-kube-dns",
            "dnsmasq-nanny",
            "sidecar",
            "heapster-amd64",
            "grafana",
            "influxdb",
        ] {
            assert!(users[&debian].iter().any(|n| n.contains(name)), "{name}");
        }
        // The same bytes under a Docker and an OCI media type.
        let kubectl = layer("kubectl", 1, planned_layer_size("kubectl", SCALE)).digest;
        assert_eq!(users[&kubectl].len(), 2);
        let pause = find(&f, "gcr.io/google_containers/pause-amd64:3.0");
        assert_eq!(pause.images()[0].layers.len(), 1);
        assert!(pause.images()[0].layers[0].data.len() < 2048);
    }

    #[test]
    fn sizes_follow_the_plan() {
        let full = planned_sizes(1.0);
        assert!(
            (800_000_000..=900_000_000).contains(&full.total),
            "{full:?}"
        );
        assert!(
            (650_000_000..=720_000_000).contains(&full.deduplicated),
            "{full:?}"
        );

        let scale = 0.01;
        let plan = planned_sizes(scale);
        let f = rancher_1_6_14(1, scale);
        let total: u64 = f.iter().map(|f| f.artifact.total_size()).sum();
        let mut seen = HashSet::new();
        let dedup: u64 = f
            .iter()
            .flat_map(|f| f.artifact.all_blobs())
            .filter(|b| seen.insert(&b.digest))
            .map(|b| b.size())
            .sum();
        let close = |got: u64, want: u64| got >= want && got < want + want / 20;
        assert!(close(total, plan.total), "{total} vs {plan:?}");
        assert!(close(dedup, plan.deduplicated), "{dedup} vs {plan:?}");
    }

    #[test]
    fn generic_images_share_a_base() {
        let names = [
            "docker.io/rancher/k8s:v1.8.10-rancher1-1",
            "docker.io/rancher/network-manager:v0.7.20",
        ];
        let a = generic(&names, 1, SCALE);
        let b = generic(&names[1..], 1, SCALE);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].artifact.digest(), b[0].artifact.digest());
        let (ia, ib) = (a[0].artifact.images()[0], a[1].artifact.images()[0]);
        assert_eq!(ia.media_type, media_type::DOCKER_MANIFEST);
        assert_eq!(ia.layers.len(), 2);
        assert_eq!(ia.layers[0].digest, ib.layers[0].digest);
        assert_ne!(ia.layers[1].digest, ib.layers[1].digest);
    }

    #[test]
    fn splits_upstream_names() {
        let split = |n| upstream_path(n);
        assert_eq!(
            split("docker.io/library/busybox:latest"),
            (
                "docker.io".into(),
                "library/busybox".into(),
                "latest".into()
            )
        );
        assert_eq!(
            split("gcr.io/google_containers/pause-amd64:3.0"),
            (
                "gcr.io".into(),
                "google_containers/pause-amd64".into(),
                "3.0".into()
            )
        );
        assert_eq!(
            split("127.0.0.1:5000/rancher/k8s"),
            (
                "127.0.0.1:5000".into(),
                "rancher/k8s".into(),
                "latest".into()
            )
        );
    }

    #[test]
    fn writes_an_oci_layout() {
        let dir = tempfile::tempdir().unwrap();
        let f = rancher_1_6_14(1, SCALE);
        write_oci_layout(dir.path(), &f).unwrap();
        let layout = json(&fs::read(dir.path().join("oci-layout")).unwrap());
        assert_eq!(layout["imageLayoutVersion"], "1.0.0");
        let index = json(&fs::read(dir.path().join("index.json")).unwrap());
        let entries = index["manifests"].as_array().unwrap();
        assert_eq!(entries.len(), 17);
        for (e, fixture) in entries.iter().zip(&f) {
            assert_eq!(
                e["annotations"]["org.opencontainers.image.ref.name"],
                fixture.name
            );
            assert_eq!(e["mediaType"], fixture.artifact.media_type());
            let hex = fixture.artifact.digest().hex().to_string();
            let raw = fs::read(dir.path().join("blobs/sha256").join(hex)).unwrap();
            assert_eq!(raw, fixture.artifact.manifest());
            for b in fixture.artifact.all_blobs() {
                let raw = fs::read(dir.path().join("blobs/sha256").join(b.digest.hex())).unwrap();
                assert_eq!(Digest::of(&raw), b.digest);
            }
        }
    }
}
