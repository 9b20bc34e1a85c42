//! Bundles without a seek table (recompressed with the plain zstd tool, or piped in): one
//! sequential pass, with the same guarantees.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock::progress::Silent;
use airlock::registry::{Client, Endpoint};
use airlock::unpack::{Status, UnpackOptions};

use crate::bundles::{flip, rewrite, Edit};
use crate::harness::Registry;
use crate::pack::{pack_17, Upstream};
use crate::support::*;

/// A packed bundle, and the same bundle recompressed by the zstd tool (no seek table).
fn packed_and_plain() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.zst");
    let o = pack_17(&up, &bundle, &dir.path().join("cache"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let plain = recompress(&bundle, &dir.path().join("plain.tar.zst"));
    (dir, bundle, plain)
}

fn recompress(src: &Path, dst: &Path) -> PathBuf {
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -q -dc '{}' | zstd -q -3 -o '{}'",
            src.display(),
            dst.display()
        ))
        .status()
        .expect("zstd (install the Debian package zstd)");
    assert!(st.success());
    assert!(
        airlock::seekable::SeekTable::read(&std::fs::File::open(dst).unwrap())
            .unwrap()
            .is_none(),
        "the zstd tool writes no seek table"
    );
    dst.to_path_buf()
}

fn client_for(reg: &Registry) -> Client {
    let mut o = fast_options();
    o.endpoints
        .push((reg.host(), Endpoint::parse(&reg.url()).unwrap()));
    Client::new(o).unwrap()
}

/// `verify` of a bundle without seek table, through the library.
fn verify_plain(plain: &Path) -> airlock::verify::VerifyReport {
    let mut opened = airlock::bundle::open::open(plain).unwrap();
    assert!(opened.sequential_reason().is_some());
    airlock::verify::verify(opened.source(), 2, &Silent).unwrap()
}

/// `unpack` of a bundle without seek table into `target`, through the library.
fn unpack_plain(
    target: &Registry,
    plain: &Path,
) -> (
    Vec<airlock::unpack::Mapping>,
    Option<airlock::unpack::UnpackReport>,
) {
    let mut opened = airlock::bundle::open::open(plain).unwrap();
    airlock::unpack::unpack(&client_for(target), opened.source(), &opts(target), &Silent).unwrap()
}

fn opts(reg: &Registry) -> UnpackOptions {
    UnpackOptions {
        registry: reg.host(),
        prefix: String::new(),
        jobs: 4,
        dry_run: false,
    }
}

#[test]
fn verifies_and_unpacks_a_bundle_without_seek_table() {
    let (_dir, bundle, plain) = packed_and_plain();
    let r = verify_plain(&plain);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.images, 17);

    let target = Registry::start();
    let (_, report) = unpack_plain(&target, &plain);
    let report = report.unwrap();
    assert_eq!(report.failed(), 0, "{:?}", report.images);
    // Same digests as the seekable bundle records, at every target.
    assert_targets(&bundle, &target, "");
}

#[test]
fn a_corrupt_layer_in_a_stream_fails_only_its_image() {
    let (dir, bundle, _) = packed_and_plain();
    let k8s = fixture("docker.io/rancher/k8s:v1.8.5-rancher4");
    let layer = k8s.artifact.images()[0]
        .layers
        .iter()
        .max_by_key(|l| l.data.len())
        .unwrap();
    let name = format!("blobs/sha256/{}", layer.digest.hex());
    let bad = dir.path().join("bad.tar.zst");
    rewrite(&bundle, &bad, |n, d| {
        if n == name {
            Edit::Replace(flip(d))
        } else {
            Edit::Keep
        }
    });
    let plain = recompress(&bad, &dir.path().join("bad-plain.tar.zst"));
    let r = verify_plain(&plain);
    let text: Vec<String> = r.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(r.problems.len(), 1, "{text:?}");
    assert!(
        text[0].contains(&layer.digest.to_string()) && text[0].contains("rancher/k8s"),
        "{text:?}"
    );

    let target = Registry::start();
    let (_, report) = unpack_plain(&target, &plain);
    let report = report.unwrap();
    for img in &report.images {
        if img.source.contains("/k8s:") {
            assert_eq!(img.status, Status::Failed, "{img:?}");
        } else {
            assert_eq!(img.status, Status::Pushed, "{img:?}");
        }
    }
    let r = airlock::reference::Reference::parse(&format!(
        "{}/rancher/k8s:v1.8.5-rancher4",
        target.host()
    ))
    .unwrap();
    assert!(
        client_for(&target).head_manifest(&r).unwrap().is_none(),
        "no manifest for the damaged image"
    );
}

#[test]
fn the_cli_reads_a_recompressed_bundle_and_standard_input() {
    let (_dir, _bundle, plain) = packed_and_plain();
    let o = airlock(&["verify", plain.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("no seek table"), "{}", stderr(&o));
    assert!(stdout(&o).contains("OK: 17 images"), "{}", stdout(&o));
    let target = Registry::start();
    let bytes = std::fs::read(&plain).unwrap();
    let o = airlock_with(
        &["unpack", "-", "--registry", &target.url()],
        Some(&bytes),
        &[],
    );
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("google_containers/pause-amd64:3.0"),
        "{}",
        stdout(&o)
    );
}
