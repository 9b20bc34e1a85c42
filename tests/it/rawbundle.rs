//! A deterministic generator of bundles byte by byte, for hostile cases: raw ustar/PAX/GNU
//! headers, raw zstd frames (including hand-made RLE frames that expand to gigabytes), and the
//! seek table, with nothing of airlock's writer in the way. The base content is three fixture
//! images (a Docker image, an OCI image, and busybox as a Docker manifest list with its three
//! platforms), laid out exactly as `airlock pack --all-platforms` lays them out.

#![allow(dead_code)]

use airlock::bundle::format::{
    BlobTotals, BundleManifest, ImageRecord, OciIndex, Request, BUNDLE_JSON, FORMAT_NAME,
    FORMAT_VERSION, INDEX_JSON, OCI_LAYOUT, OCI_LAYOUT_CONTENT,
};
use airlock::digest::Digest;
use airlock::fixtures::{self, Artifact, Fixture};
use serde_json::Value;

use crate::support::{fixture, BUSYBOX};

/// The Docker-typed single image of the base bundle.
pub const DOCKER_IMG: &str = "docker.io/rancher/etc-host-updater:v0.0.3";
/// The OCI-typed image.
pub const OCI_IMG: &str = "docker.io/rancher/kubernetes-auth:v0.0.8";
/// The multi-platform image (stored as its Docker manifest list).
pub const LIST_IMG: &str = BUSYBOX;

/// A bundle as entries in tar order; every edit keeps the rest consistent unless it says so.
#[derive(Clone)]
pub struct Model {
    pub entries: Vec<(String, Vec<u8>)>,
}

pub fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

impl Model {
    /// The three base images, as pack writes them.
    pub fn base() -> Model {
        let picks: Vec<&Fixture> = [DOCKER_IMG, OCI_IMG, LIST_IMG]
            .iter()
            .map(|n| fixture(n))
            .collect();
        let mut images = Vec::new();
        let mut docs: Vec<(Digest, Vec<u8>)> = Vec::new();
        let mut configs: Vec<(Digest, Vec<u8>)> = Vec::new();
        let mut layers: Vec<(Digest, Vec<u8>)> = Vec::new();
        for f in &picks {
            docs.push((f.artifact.digest().clone(), f.artifact.manifest().to_vec()));
            if let Artifact::Index(ix) = &f.artifact {
                for c in &ix.children {
                    docs.push((c.digest.clone(), c.manifest.clone()));
                }
            }
            for img in f.artifact.images() {
                configs.push((img.config.digest.clone(), img.config.data.clone()));
                for l in &img.layers {
                    layers.push((l.digest.clone(), l.data.clone()));
                }
            }
            let (_, repo, tag) = fixtures::upstream_path(&f.name);
            // As `pack --images` plans it: Rancher's paths for an image the catalog knows.
            let known = airlock::reference::Reference::parse(&f.name)
                .ok()
                .and_then(|r| airlock::catalog::known(&r));
            let (target, alt_targets, group) = match known {
                Some(c) => (c.private_path, c.alt_paths, c.group.as_str().to_string()),
                None => (format!("{repo}:{tag}"), vec![], "list".to_string()),
            };
            images.push(ImageRecord {
                source: f.name.clone(),
                target,
                alt_targets,
                group,
                digest: f.artifact.digest().clone(),
                media_type: f.artifact.media_type().to_string(),
                size: f.artifact.manifest().len() as u64,
                // As pack counts it: the manifests (an index's children too), config and layers.
                total_bytes: f.artifact.total_size()
                    + f.artifact.manifest().len() as u64
                    + match &f.artifact {
                        Artifact::Index(ix) => {
                            ix.children.iter().map(|c| c.manifest.len() as u64).sum()
                        }
                        Artifact::Image(_) | Artifact::Schema1(_) => 0,
                    },
                from_index: None,
                upstream: None,
            });
        }
        for v in [&mut docs, &mut configs, &mut layers] {
            v.sort();
            v.dedup();
        }
        let mut seen = std::collections::BTreeSet::new();
        let blobs = docs
            .into_iter()
            .chain(configs)
            .chain(layers)
            .filter(|(d, _)| seen.insert(d.clone()))
            .collect();
        Model::of(images, blobs)
    }

    /// A bundle of `images` over blob entries in the order given (manifests first, as pack
    /// writes them), with `index.json` and consistent totals.
    pub fn of(mut images: Vec<ImageRecord>, blobs: Vec<(Digest, Vec<u8>)>) -> Model {
        images.sort_by(|a, b| a.source.cmp(&b.source));
        let mut entries = vec![
            (OCI_LAYOUT.to_string(), OCI_LAYOUT_CONTENT.to_vec()),
            (
                INDEX_JSON.to_string(),
                serde_json::to_vec_pretty(&OciIndex::for_images(&images)).unwrap(),
            ),
            (BUNDLE_JSON.to_string(), Vec::new()),
        ];
        entries.extend(blobs.into_iter().map(|(d, data)| (blob_name(&d), data)));
        let bm = BundleManifest {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            airlock_version: "0.1.0".into(),
            created: None,
            request: Request::default(),
            platforms: vec!["all".into()],
            images,
            failures: vec![],
            blobs: BlobTotals::default(),
            base: None,
        };
        let mut m = Model { entries };
        m.set(BUNDLE_JSON, serde_json::to_vec_pretty(&bm).unwrap());
        m.fix_totals();
        m
    }

    pub fn get(&self, name: &str) -> &[u8] {
        &self
            .entries
            .iter()
            .find(|e| e.0 == name)
            .unwrap_or_else(|| panic!("no entry {name}"))
            .1
    }

    pub fn set(&mut self, name: &str, data: Vec<u8>) {
        match self.entries.iter_mut().find(|e| e.0 == name) {
            Some(e) => e.1 = data,
            None => self.entries.push((name.to_string(), data)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        let n = self.entries.len();
        self.entries.retain(|e| e.0 != name);
        assert_eq!(self.entries.len() + 1, n, "no entry {name}");
    }

    pub fn json(&self, name: &str) -> Value {
        serde_json::from_slice(self.get(name)).unwrap()
    }

    pub fn set_json(&mut self, name: &str, v: &Value) {
        self.set(name, serde_json::to_vec(v).unwrap());
    }

    /// Edits `bundle.json` as JSON.
    pub fn edit_bundle_json(&mut self, f: impl FnOnce(&mut Value)) {
        let mut v = self.json(BUNDLE_JSON);
        f(&mut v);
        self.set_json(BUNDLE_JSON, &v);
    }

    /// Edits `index.json` as JSON.
    pub fn edit_index_json(&mut self, f: impl FnOnce(&mut Value)) {
        let mut v = self.json(INDEX_JSON);
        f(&mut v);
        self.set_json(INDEX_JSON, &v);
    }

    /// `bundle.json` parsed.
    pub fn bundle_manifest(&self) -> BundleManifest {
        serde_json::from_slice(self.get(BUNDLE_JSON)).unwrap()
    }

    /// The record of an image.
    pub fn image(&self, source: &str) -> ImageRecord {
        self.bundle_manifest()
            .images
            .into_iter()
            .find(|i| i.source == source)
            .unwrap_or_else(|| panic!("no image {source}"))
    }

    /// The raw top manifest of an image.
    pub fn top_manifest(&self, source: &str) -> Vec<u8> {
        self.get(&blob_name(&self.image(source).digest)).to_vec()
    }

    /// Replaces an image's top manifest with `raw` (a new digest) and `media_type`, updating
    /// the blob, `index.json`, `bundle.json` and the totals so that only the document itself is
    /// what the case is about.
    pub fn replace_top(&mut self, source: &str, raw: Vec<u8>, media_type: &str) -> Digest {
        let old = self.image(source).digest;
        let new = Digest::of(&raw);
        let size = raw.len() as u64;
        self.remove(&blob_name(&old));
        self.entries.insert(3, (blob_name(&new), raw));
        for name in [INDEX_JSON, BUNDLE_JSON] {
            let mut v = self.json(name);
            let list = if name == INDEX_JSON {
                "manifests"
            } else {
                "images"
            };
            for d in v[list].as_array_mut().unwrap() {
                if d["digest"] == old.to_string() {
                    d["digest"] = new.to_string().into();
                    d["size"] = size.into();
                    d["mediaType"] = media_type.into();
                }
            }
            self.set_json(name, &v);
        }
        self.fix_totals();
        new
    }

    /// Recomputes `blobs` in `bundle.json` from the blob entries.
    pub fn fix_totals(&mut self) {
        let blobs: Vec<u64> = self
            .entries
            .iter()
            .filter(|e| e.0.starts_with("blobs/"))
            .map(|e| e.1.len() as u64)
            .collect();
        let mut v = self.json(BUNDLE_JSON);
        v["blobs"] = serde_json::json!({"count": blobs.len(), "bytes": blobs.iter().sum::<u64>()});
        self.set_json(BUNDLE_JSON, &v);
    }

    /// The plain tar stream, cut where airlock cuts frames: one chunk per header, one per
    /// entry's padded data, one for the end-of-archive blocks.
    pub fn chunks(&self) -> Vec<Chunk> {
        let mut out = Vec::new();
        for (name, data) in &self.entries {
            out.push(Chunk::header(
                name,
                header(name.as_bytes(), data.len() as u64, b'0'),
            ));
            out.push(Chunk::data(name, padded(data)));
        }
        out.push(Chunk::end());
        out
    }

    /// The bundle file, as airlock writes it.
    pub fn bundle(&self) -> Vec<u8> {
        self.frames().file()
    }

    /// The bundle's frames, as airlock writes them, before the seek table.
    pub fn frames(&self) -> Frames {
        Frames::from_chunks(&self.chunks())
    }

    /// The bundle as a plain (uncompressed) tar.
    pub fn tar(&self) -> Vec<u8> {
        self.chunks().into_iter().flat_map(|c| c.bytes).collect()
    }
}

/// One way of reading a bundle: the hostile and bounds cases run every way and demand the
/// same verdict (issue 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The file as `pack` writes it, read through its seek table.
    Seekable,
    /// The same tar without a seek table, as a file: recompressed with plain zstd, or (for a
    /// case about frames) the same frames without their table.
    Plain,
    /// Standard input (`-`), fed the plain file.
    Stdin,
}

/// A case and its input for each way it is read.
pub struct Case {
    pub ways: Vec<(Way, Vec<u8>)>,
}

impl Case {
    /// A bundle model, three ways.
    pub fn model(m: &Model) -> Case {
        Case::chunks(&m.chunks())
    }

    /// A tar stream cut where airlock cuts frames, three ways: the tar recompressed as the
    /// plain zstd tool does for the file and standard input.
    pub fn chunks(chunks: &[Chunk]) -> Case {
        let tar: Vec<u8> = chunks.iter().flat_map(|c| c.bytes.clone()).collect();
        let plain = plain_zstd(&tar);
        Case {
            ways: vec![
                (Way::Seekable, Frames::from_chunks(chunks).file()),
                (Way::Plain, plain.clone()),
                (Way::Stdin, plain),
            ],
        }
    }

    /// Frames three ways: with their seek table, and without it as a file and on standard
    /// input (for cases about where headers lie in frames).
    pub fn frames(f: &Frames) -> Case {
        let plain: Vec<u8> = f.0.iter().flat_map(|f| f.compressed.clone()).collect();
        Case {
            ways: vec![
                (Way::Seekable, f.file()),
                (Way::Plain, plain.clone()),
                (Way::Stdin, plain),
            ],
        }
    }

    /// A file damaged in its zstd container: the file, and the same bytes through `-`.
    pub fn container(file: Vec<u8>) -> Case {
        Case {
            ways: vec![(Way::Seekable, file.clone()), (Way::Stdin, file)],
        }
    }

    /// A file whose seek table lets a reader skip one damaged frame: through the table only.
    pub fn table_only(file: Vec<u8>) -> Case {
        Case {
            ways: vec![(Way::Seekable, file)],
        }
    }

    /// The input of `way`.
    pub fn input(&self, way: Way) -> &[u8] {
        &self
            .ways
            .iter()
            .find(|(w, _)| *w == way)
            .unwrap_or_else(|| panic!("no {way:?} way"))
            .1
    }

    /// Runs `f` for every way at once, then demands that the ways agree on what `f` returns
    /// (the verdict).
    pub fn each<V: PartialEq + std::fmt::Debug + Send>(&self, f: impl Fn(Way, &[u8]) -> V + Sync) {
        let verdicts: Vec<(Way, V)> = std::thread::scope(|s| {
            let runs: Vec<_> = self
                .ways
                .iter()
                .map(|(way, bytes)| {
                    let f = &f;
                    s.spawn(move || (*way, f(*way, bytes)))
                })
                .collect();
            runs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (first_way, first) = &verdicts[0];
        for (way, v) in &verdicts[1..] {
            assert_eq!(
                v, first,
                "{way:?} and {first_way:?} disagree on the verdict"
            );
        }
    }
}

/// `tar` compressed as the plain zstd tool does: one frame, with its checksum, no seek table.
pub fn plain_zstd(tar: &[u8]) -> Vec<u8> {
    let mut e = zstd::stream::Encoder::new(Vec::new(), 3).unwrap();
    e.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut e, tar).unwrap();
    e.finish().unwrap()
}

/// A piece of the tar stream that becomes one zstd frame.
#[derive(Clone, Debug)]
pub struct Chunk {
    /// What it is, for finding it again: `header:<name>`, `data:<name>`, `end`, or anything a
    /// case chooses.
    pub label: String,
    pub bytes: Vec<u8>,
}

impl Chunk {
    pub fn header(name: &str, bytes: Vec<u8>) -> Chunk {
        Chunk {
            label: format!("header:{name}"),
            bytes,
        }
    }
    pub fn data(name: &str, bytes: Vec<u8>) -> Chunk {
        Chunk {
            label: format!("data:{name}"),
            bytes,
        }
    }
    pub fn end() -> Chunk {
        Chunk {
            label: "end".into(),
            bytes: vec![0u8; 1024],
        }
    }
    pub fn raw(label: &str, bytes: Vec<u8>) -> Chunk {
        Chunk {
            label: label.into(),
            bytes,
        }
    }
}

/// Inserts `extra` before the end-of-archive chunk.
pub fn before_end(mut chunks: Vec<Chunk>, extra: Vec<Chunk>) -> Vec<Chunk> {
    let end = chunks.len() - 1;
    chunks.splice(end..end, extra);
    chunks
}

/// A regular-file entry as raw chunks (header + padded data).
pub fn file_chunks(name: &[u8], data: &[u8], typeflag: u8) -> Vec<Chunk> {
    let label = String::from_utf8_lossy(name).into_owned();
    vec![
        Chunk::header(&label, header(name, data.len() as u64, typeflag)),
        Chunk::data(&label, padded(data)),
    ]
}

/// One compressed frame and the decompressed size the seek table will declare for it.
#[derive(Clone, Debug)]
pub struct Frame {
    pub label: String,
    pub compressed: Vec<u8>,
    pub d_size: u32,
}

/// The frames of a seekable file, before its seek table is appended.
#[derive(Clone, Debug)]
pub struct Frames(pub Vec<Frame>);

impl Frames {
    pub fn from_chunks(chunks: &[Chunk]) -> Frames {
        Frames(
            chunks
                .iter()
                .map(|c| Frame {
                    label: c.label.clone(),
                    compressed: zstd_frame(&c.bytes),
                    d_size: c.bytes.len() as u32,
                })
                .collect(),
        )
    }

    /// The index of the frame labelled `label`.
    pub fn find(&self, label: &str) -> usize {
        self.0
            .iter()
            .position(|f| f.label == label)
            .unwrap_or_else(|| panic!("no frame {label}"))
    }

    /// Byte offset of frame `i` in the file.
    pub fn offset(&self, i: usize) -> usize {
        self.0[..i].iter().map(|f| f.compressed.len()).sum()
    }

    /// The frames followed by a seek table that matches them.
    pub fn file(&self) -> Vec<u8> {
        let sizes: Vec<(u32, u32)> = self
            .0
            .iter()
            .map(|f| (f.compressed.len() as u32, f.d_size))
            .collect();
        let mut out: Vec<u8> = self.0.iter().flat_map(|f| f.compressed.clone()).collect();
        out.extend(seek_table(&sizes));
        out
    }
}

/// A zstd frame of `data` with its content size and checksum, as airlock writes.
pub fn zstd_frame(data: &[u8]) -> Vec<u8> {
    let mut c = zstd::bulk::Compressor::new(3).unwrap();
    c.set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .unwrap();
    c.include_contentsize(true).unwrap();
    c.compress(data).unwrap()
}

/// The seek-table skippable frame (zstd `contrib/seekable_format`), no per-frame checksums.
pub fn seek_table(sizes: &[(u32, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0x184D_2A5Eu32.to_le_bytes());
    out.extend_from_slice(&((sizes.len() * 8 + 9) as u32).to_le_bytes());
    for (c, d) in sizes {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&(sizes.len() as u32).to_le_bytes());
    out.push(0);
    out.extend_from_slice(&0x8F92_EAB1u32.to_le_bytes());
    out
}

/// Rewrites a zstd frame's header to declare a window of `2^log` bytes, keeping its content
/// valid (a larger window never invalidates a frame). A single-segment frame loses that flag
/// and, when its content size was a 1-byte field only single-segment frames have, that field.
pub fn with_window_log(frame: &[u8], log: u8) -> Vec<u8> {
    assert!((10..=41).contains(&log));
    let fhd = frame[4];
    assert_eq!(fhd & 3, 0, "no dictionary id expected");
    let single = fhd & 0x20 != 0;
    let mut out = frame[..4].to_vec();
    let desc = (log - 10) << 3;
    if single {
        let fcs_flag = fhd >> 6;
        out.push(fhd & !0x20);
        out.push(desc);
        // FCS flag 0 with single-segment is a 1-byte size; without it, there is no field.
        let skip = if fcs_flag == 0 { 1 } else { 0 };
        out.extend_from_slice(&frame[5 + skip..]);
    } else {
        out.push(fhd);
        out.push(desc);
        out.extend_from_slice(&frame[6..]);
    }
    out
}

/// A hand-made zstd frame of RLE blocks: `total` bytes of `byte`, in blocks of 128 KiB, with a
/// 128 KiB window. `declared` is the Frame_Content_Size written in its header, if any. About
/// 4 bytes per 128 KiB: 32 GiB of zeros is a 1 MiB frame.
pub fn rle_frame(byte: u8, total: u64, declared: Option<u64>) -> Vec<u8> {
    const BLOCK: u64 = 128 << 10;
    let mut f = 0xFD2F_B528u32.to_le_bytes().to_vec();
    match declared {
        // FCS flag 3 (8 bytes), no single segment, no checksum.
        Some(n) => {
            f.push(0xC0);
            f.push((17 - 10) << 3);
            f.extend_from_slice(&n.to_le_bytes());
        }
        None => {
            f.push(0x00);
            f.push((17 - 10) << 3);
        }
    }
    let mut left = total;
    loop {
        let n = left.min(BLOCK);
        left -= n;
        let last = u32::from(left == 0);
        // Block header: Last_Block (1 bit), Block_Type 1 = RLE (2 bits), Block_Size (21 bits).
        let h = last | (1 << 1) | ((n as u32) << 3);
        f.extend_from_slice(&h.to_le_bytes()[..3]);
        f.push(byte);
        if left == 0 {
            break;
        }
    }
    f
}

/// A ustar header block with a valid checksum. Sizes above 8 GiB use the GNU base-256 form.
pub fn header(name: &[u8], size: u64, typeflag: u8) -> Vec<u8> {
    header_with_link(name, size, typeflag, b"")
}

pub fn header_with_link(name: &[u8], size: u64, typeflag: u8, link: &[u8]) -> Vec<u8> {
    assert!(name.len() <= 100 && link.len() <= 100);
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name);
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    if size < 8 << 30 {
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    } else {
        h[124] = 0x80;
        h[128..136].copy_from_slice(&size.to_be_bytes());
    }
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = typeflag;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    set_checksum(&mut h);
    h
}

/// Recomputes a header's checksum field, written as airlock's writer (the tar crate) writes
/// it: seven octal digits and a NUL.
pub fn set_checksum(h: &mut [u8]) {
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:07o}\0").as_bytes());
}

/// `data` padded with zeros to a multiple of 512.
pub fn padded(data: &[u8]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.resize(data.len().div_ceil(512) * 512, 0);
    v
}

/// PAX extended-header records `"<len> <key>=<value>\n"`.
pub fn pax(records: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in records {
        let body = format!(" {k}={v}\n");
        // The length counts its own digits.
        let mut len = body.len() + 1;
        while format!("{len}{body}").len() != len {
            len += 1;
        }
        out.extend_from_slice(format!("{len}{body}").as_bytes());
    }
    out
}

/// A PAX extended header ('x') carrying `records`, as chunks.
pub fn pax_chunks(records: &[(&str, &str)]) -> Vec<Chunk> {
    let body = pax(records);
    vec![
        Chunk::raw(
            "pax-header",
            header(b"PaxHeaders/x", body.len() as u64, b'x'),
        ),
        Chunk::raw("pax-data", padded(&body)),
    ]
}

/// A GNU long-name entry ('L') naming the next entry `name`, as chunks.
pub fn gnu_long_name_chunks(name: &[u8]) -> Vec<Chunk> {
    let mut body = name.to_vec();
    body.push(0);
    vec![
        Chunk::raw(
            "gnu-header",
            header(b"././@LongLink", body.len() as u64, b'L'),
        ),
        Chunk::raw("gnu-data", padded(&body)),
    ]
}

#[test]
fn generator_matches_airlocks_writer() {
    // The base bundle as this generator writes it, against a real `airlock pack
    // --all-platforms` of the same three images from a registry: the same tar byte for byte
    // and of the same length (bundle.json aside: its request and creation time differ, so its
    // images and totals are compared instead), cut into the same frames.
    use airlock::bundle::reader::BundleReader;
    use std::sync::Arc;
    let m = Model::base();
    let up = crate::harness::Registry::start();
    crate::support::seed(
        &up,
        &[fixture(DOCKER_IMG), fixture(OCI_IMG), fixture(LIST_IMG)],
    );
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("images.txt");
    std::fs::write(&list, format!("{DOCKER_IMG}\n{OCI_IMG}\n{LIST_IMG}\n")).unwrap();
    let out = dir.path().join("bundle.tar.zst");
    let o = crate::support::airlock(&[
        "pack",
        "--images",
        list.to_str().unwrap(),
        "--all-platforms",
        // The model stores upstream's manifests byte for byte (issue 12 converts OCI ones).
        "--keep-digests",
        "--no-cache",
        "-q",
        "-o",
        out.to_str().unwrap(),
        "--mirror",
        &format!("docker.io={}", up.url()),
    ]);
    assert!(o.status.success(), "{}", crate::support::stderr(&o));
    let real = std::fs::read(&out).unwrap();
    let plain = |f: &[u8]| {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut airlock::seekable::streaming_decoder(f).unwrap(),
            &mut out,
        )
        .unwrap();
        out
    };
    let real_tar = plain(&real);
    let real_json = tar_entry(&real_tar, BUNDLE_JSON);
    let real_bm: BundleManifest = serde_json::from_slice(&real_json).unwrap();
    let ours_bm = m.bundle_manifest();
    assert_eq!(real_bm.blobs.count, ours_bm.blobs.count);
    assert_eq!(real_bm.blobs.bytes, ours_bm.blobs.bytes);
    let key = |i: &ImageRecord| {
        (
            i.source.clone(),
            i.target.clone(),
            i.alt_targets.clone(),
            i.digest.clone(),
            i.media_type.clone(),
            i.size,
            i.total_bytes,
        )
    };
    assert_eq!(
        real_bm.images.iter().map(key).collect::<Vec<_>>(),
        ours_bm.images.iter().map(key).collect::<Vec<_>>()
    );
    // With pack's bundle.json in place, the generator's tar is pack's, every byte.
    let mut same = m.clone();
    same.set(BUNDLE_JSON, real_json);
    let ours_tar = same.tar();
    assert_eq!(ours_tar.len(), real_tar.len(), "tar lengths");
    if let Some(at) = (0..ours_tar.len()).find(|&i| ours_tar[i] != real_tar[i]) {
        let block = at / 512 * 512;
        panic!(
            "the tars differ first at byte {at} (offset {} in the 512-byte block at {block}):\n\
             generator: {:?}\npack:      {:?}",
            at - block,
            String::from_utf8_lossy(&ours_tar[block..block + 512]),
            String::from_utf8_lossy(&real_tar[block..block + 512])
        );
    }
    // Frames end where pack ends them: the seek tables declare the same decompressed sizes.
    let ours = same.bundle();
    assert_eq!(frame_sizes(&ours), frame_sizes(&real), "frame cuts");
    let r = BundleReader::from_source(std::path::Path::new("x"), Arc::new(ours)).unwrap();
    let names: Vec<&str> = r.entries().iter().map(|e| e.name.as_str()).collect();
    let want: Vec<&str> = same.entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, want);
    // A frame header rewritten to a 2^31 window still holds the same content.
    let f = zstd_frame(b"hello");
    let big = with_window_log(&f, 31);
    let mut d = zstd::zstd_safe::DCtx::create();
    d.set_parameter(zstd::zstd_safe::DParameter::WindowLogMax(31))
        .unwrap();
    let mut out = Vec::with_capacity(5);
    d.decompress(&mut out, &big).unwrap();
    assert_eq!(out, b"hello");
    // An RLE frame decodes to what it says.
    let mut out = Vec::with_capacity(300_000);
    zstd::zstd_safe::DCtx::create()
        .decompress(&mut out, &rle_frame(7, 300_000, Some(300_000)))
        .unwrap();
    assert!(out.len() == 300_000 && out.iter().all(|&b| b == 7));
}

/// The data of entry `name` in a plain ustar stream (sizes in octal, as airlock writes them).
fn tar_entry(tar: &[u8], name: &str) -> Vec<u8> {
    let mut at = 0;
    while at + 512 <= tar.len() && tar[at] != 0 {
        let h = &tar[at..at + 512];
        let end = h[..100].iter().position(|&b| b == 0).unwrap_or(100);
        let size_field = String::from_utf8_lossy(&h[124..135]).into_owned();
        let size = u64::from_str_radix(size_field.trim_matches(char::from(0)).trim(), 8)
            .unwrap_or_else(|e| panic!("size {size_field:?}: {e}")) as usize;
        if &h[..end] == name.as_bytes() {
            return tar[at + 512..at + 512 + size].to_vec();
        }
        at += 512 + size.div_ceil(512) * 512;
    }
    panic!("no entry {name} in the tar")
}

/// The decompressed size of every frame, from a seekable file's seek table.
fn frame_sizes(file: &[u8]) -> Vec<u32> {
    let n = u32::from_le_bytes(file[file.len() - 9..file.len() - 5].try_into().unwrap()) as usize;
    let table = &file[file.len() - 9 - 8 * n..file.len() - 9];
    table
        .chunks(8)
        .map(|e| u32::from_le_bytes(e[4..8].try_into().unwrap()))
        .collect()
}
