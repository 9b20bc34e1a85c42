//! Writes seed corpora for the fuzz targets into `fuzz/corpus/<target>/`: a small real bundle
//! (two fixture images, one Docker-typed, one OCI), its plain tar, its manifests, some
//! references, and today's schema 1 and OCI index shapes for the conversions. Deterministic: the same files every run.

use std::io::Write;
use std::path::Path;

use airlock::bundle::format::{
    BlobTotals, BundleManifest, ImageRecord, OciIndex, Request, BUNDLE_JSON, FORMAT_NAME,
    FORMAT_VERSION, INDEX_JSON, OCI_LAYOUT, OCI_LAYOUT_CONTENT,
};
use airlock::bundle::writer::{BundleWriter, WriteOptions};
use airlock::fixtures::{self, Artifact};
use airlock::seekable::SeekableWriter;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let fx = fixtures::rancher_1_6_14(7, 0.0005);
    let pick = [
        "docker.io/rancher/etc-host-updater:v0.0.3",
        "docker.io/rancher/kubernetes-auth:v0.0.8",
    ];
    let mut images = Vec::new();
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut manifests: Vec<(u8, Vec<u8>)> = Vec::new();
    for name in pick {
        let f = fx.iter().find(|f| f.name == name).expect("fixture");
        let Artifact::Image(img) = &f.artifact else {
            panic!("{name} is an index")
        };
        let mut total = img.manifest.len() as u64;
        blobs.push((img.digest.hex().to_string(), img.manifest.clone()));
        for b in std::iter::once(&img.config).chain(&img.layers) {
            blobs.push((b.digest.hex().to_string(), b.data.clone()));
            total += b.data.len() as u64;
        }
        manifests.push((
            if img.media_type.contains("oci") { 1 } else { 3 },
            img.manifest.clone(),
        ));
        let (_, repo, tag) = fixtures::upstream_path(name);
        images.push(ImageRecord {
            source: name.to_string(),
            target: format!("{repo}:{tag}"),
            alt_targets: vec![],
            group: "list".into(),
            digest: img.digest.clone(),
            media_type: img.media_type.clone(),
            size: img.manifest.len() as u64,
            total_bytes: total,
            from_index: None,
            upstream: None,
        });
    }
    blobs.sort();
    blobs.dedup();
    let bm = BundleManifest {
        format: FORMAT_NAME.into(),
        format_version: FORMAT_VERSION,
        airlock_version: "0.1.0".into(),
        created: None,
        request: Request::default(),
        platforms: vec!["linux/amd64".into()],
        images: images.clone(),
        failures: vec![],
        blobs: BlobTotals {
            count: blobs.len() as u64,
            bytes: blobs.iter().map(|b| b.1.len() as u64).sum(),
        },
        base: None,
    };
    let mut entries: Vec<(String, Vec<u8>)> = vec![
        (OCI_LAYOUT.into(), OCI_LAYOUT_CONTENT.to_vec()),
        (
            INDEX_JSON.into(),
            serde_json::to_vec(&OciIndex::for_images(&images)).expect("json"),
        ),
        (BUNDLE_JSON.into(), serde_json::to_vec(&bm).expect("json")),
    ];
    entries.extend(
        blobs
            .into_iter()
            .map(|(hex, data)| (format!("blobs/sha256/{hex}"), data)),
    );

    let opts = WriteOptions::default();
    let mut w = BundleWriter::new(Vec::new(), &opts);
    for (n, d) in &entries {
        w.add_bytes(n, d).expect("add");
    }
    let bundle = w.finish().expect("finish");
    // The same tar, uncompressed, for bundle_tar: decompress the bundle.
    let tar = zstd_decode(&bundle);

    write(&root.join("bundle"), "seed-bundle", &bundle);
    write(&root.join("bundle_tar"), "seed-tar", &tar);
    // The sequential reader: the tar (read as a file and through a seek table), and the plain
    // stream and the bundle itself as standard input.
    let seq = root.join("sequential");
    write(&seq, "seed-tar", &[&[0u8][..], &tar].concat());
    let plain = zstd::stream::encode_all(&tar[..], 3).expect("compress");
    write(&seq, "seed-plain-stdin", &[&[1u8][..], &plain].concat());
    write(&seq, "seed-bundle-stdin", &[&[1u8][..], &bundle].concat());
    let mut sw = SeekableWriter::new(Vec::new(), 3, 1000);
    sw.write_all(&tar[..tar.len().min(5000)]).expect("write");
    write(
        &root.join("seek_table"),
        "seed-5-frames",
        &sw.finish().expect("finish"),
    );
    write(&root.join("seek_table"), "seed-bundle", &bundle);
    for (i, (sel, raw)) in manifests.iter().enumerate() {
        let mut v = vec![*sel];
        v.extend_from_slice(raw);
        write(&root.join("manifest"), &format!("seed-manifest-{i}"), &v);
    }
    // The conversions: today's pause (signed schema 1), busybox (an OCI index with
    // attestations) and one of its OCI manifests, each after its media-type selector.
    for f in fixtures::rancher_1_6_14_today(7, 0.0005) {
        let (name, sel) = match &f.artifact {
            Artifact::Schema1(_) => ("seed-schema1", 4u8),
            Artifact::Index(ix) => {
                let child = &ix.children[0].manifest;
                write(
                    &root.join("convert"),
                    "seed-oci-manifest",
                    &[&[0u8][..], child].concat(),
                );
                ("seed-oci-index", 2u8)
            }
            Artifact::Image(_) => continue,
        };
        write(
            &root.join("convert"),
            name,
            &[&[sel][..], f.artifact.manifest()].concat(),
        );
    }
    let list = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","size":7,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","platform":{"architecture":"arm","os":"linux","variant":"v7"}}]}"#;
    write(
        &root.join("manifest"),
        "seed-list",
        &[&[2u8][..], list].concat(),
    );
    // Side files: a checksum file, parts.json and an inventory, as pack and inventory write them.
    let hex = |b: u8| format!("{:02x}", b).repeat(32);
    let side = format!(
        "{}  b.tar.zst.000\n{} *b.tar.zst.001\n",
        hex(0x11),
        hex(0x22)
    );
    write(&root.join("checksum_file"), "seed-parts", side.as_bytes());
    let part = |i: usize, size: u64| {
        serde_json::json!({
            "name": format!("b.tar.zst.{i:03}"),
            "size": size,
            "sha256": format!("sha256:{}", hex(i as u8)),
            "headSha256": format!("sha256:{}", hex(0x40 + i as u8)),
        })
    };
    let parts = serde_json::json!({
        "format": "airlock-parts",
        "splitSize": 4096,
        "totalSize": 9000,
        "parts": [part(0, 4096), part(1, 4096), part(2, 808)],
    });
    write(
        &root.join("parts_json"),
        "seed-3-parts",
        &serde_json::to_vec_pretty(&parts).expect("json"),
    );
    let inventory = serde_json::json!({
        "format": "airlock-inventory",
        "registry": "reg.local:5000",
        "repositories": [{"name": "rancher/k8s", "tags": [{
            "tag": "v1.8.5-rancher4",
            "digest": format!("sha256:{}", hex(0x33)),
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "blobs": [{"digest": format!("sha256:{}", hex(0x44)), "size": 1234}],
        }]}],
    });
    write(
        &root.join("inventory"),
        "seed-1-tag",
        &serde_json::to_vec_pretty(&inventory).expect("json"),
    );
    for (i, r) in [
        "busybox",
        "docker.io/library/busybox:latest",
        "gcr.io/google_containers/pause-amd64:3.0",
        "127.0.0.1:5000/rancher/k8s:v1.8.5-rancher4@sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "[::1]:5000/a/b-c_d.e:tag",
        "localhost/x",
    ]
    .iter()
    .enumerate()
    {
        write(&root.join("reference"), &format!("seed-{i}"), r.as_bytes());
    }
}

fn zstd_decode(file: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    airlock::seekable::streaming_decoder(file)
        .expect("decoder")
        .read_to_end(&mut out)
        .expect("decode");
    out
}

fn write(dir: &Path, name: &str, data: &[u8]) {
    std::fs::create_dir_all(dir).expect("corpus dir");
    std::fs::write(dir.join(name), data).expect("write seed");
}
