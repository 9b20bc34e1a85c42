//! `airlock verify` and `airlock unpack` against real registries, checked with skopeo.

use std::path::{Path, PathBuf};
use std::process::Command;

use airlock::bundle::reader::BundleReader;

use crate::bundles::{flip, rewrite, Edit};
use crate::harness::proxy::{Faults, Proxy};
use crate::harness::{Registry, RegistryBuilder, TokenPolicy};
use crate::pack::{pack_17, Upstream};
use crate::support::*;

/// A packed 1.6.14 bundle (17 images) in a temp dir.
struct Packed {
    dir: tempfile::TempDir,
    bundle: PathBuf,
}

fn packed() -> Packed {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.zst");
    let o = pack_17(&up, &bundle, &dir.path().join("cache"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    Packed { dir, bundle }
}

fn unpack_args<'a>(bundle: &'a Path, registry: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "unpack".into(),
        bundle.display().to_string(),
        "--registry".into(),
        registry.into(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    a
}

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    airlock(&refs)
}

/// `skopeo inspect` of one target: its digest.
fn skopeo_digest(reference: &str, extra: &[&str]) -> Result<String, String> {
    let o = Command::new("skopeo")
        .arg("inspect")
        .args(extra)
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo (install the Debian package skopeo)");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    Ok(v["Digest"].as_str().unwrap().to_string())
}

/// Every image of the bundle is at its targets in `host`, with the bundle's digest.
fn assert_all_there(bundle: &Path, host: &str, prefix: &str, skopeo: &[&str]) {
    let m = BundleReader::open(bundle)
        .unwrap()
        .bundle_manifest()
        .unwrap();
    for img in &m.images {
        for t in std::iter::once(&img.target).chain(&img.alt_targets) {
            let d = skopeo_digest(&format!("{host}/{prefix}{t}"), skopeo)
                .unwrap_or_else(|e| panic!("{host}/{prefix}{t}: {e}"));
            assert_eq!(d, img.digest.to_string(), "{t}");
        }
    }
}

/// Upload sessions left open in a registry's storage: those still holding a `data` file.
/// (distribution 2.8 leaves an empty `hashstates` tree behind for a cancelled session, such
/// as the one unpack opens and cancels to check push permission; that is not a leak.)
fn leaked_uploads(reg: &Registry) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let root = reg.storage_dir().join("docker/registry/v2/repositories");
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.file_name().is_some_and(|n| n == "_uploads") {
                out.extend(
                    std::fs::read_dir(&p)
                        .unwrap()
                        .flatten()
                        .map(|e| e.path())
                        .filter(|s| s.join("data").exists()),
                );
            } else if p.is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn verify_accepts_a_good_bundle() {
    let p = packed();
    let o = airlock(&["verify", p.bundle.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("OK: 17 images, 57 blobs"),
        "{}",
        stdout(&o)
    );
    let o = airlock(&["verify", "--output", "json", p.bundle.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["problems"].as_array().unwrap().len(), 0);
}

#[test]
fn unpacks_every_image_at_rancher_paths_with_source_digests() {
    let p = packed();
    let target = Registry::start();
    let o = run(&unpack_args(&p.bundle, &target.url(), &["--jobs", "4"]));
    assert!(o.status.success(), "{}\n{}", stderr(&o), stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Pod Infra Container Image:\n      google_containers/pause-amd64:3.0"),
        "{out}"
    );
    assert_all_there(&p.bundle, &target.host(), "", &["--tls-verify=false"]);
    // The paths Rancher asks for, from the catalog: spot checks.
    for path in [
        "busybox:latest",
        "rancher/k8s:v1.8.5-rancher4",
        "google_containers/pause-amd64:3.0",
        "gcr.io/google_containers/pause-amd64:3.0",
        "kubernetes-helm/tiller:v2.6.1",
    ] {
        skopeo_digest(
            &format!("{}/{path}", target.host()),
            &["--tls-verify=false"],
        )
        .unwrap();
    }
    // The upstream digest, not just the bundle's: busybox is the amd64 manifest of its index.
    let d = skopeo_digest(
        &format!("{}/rancher/kubernetes-auth:v0.0.8", target.host()),
        &["--tls-verify=false"],
    )
    .unwrap();
    assert_eq!(d, fixture(KUBE_AUTH).artifact.digest().to_string());
    // skopeo can copy the images back out.
    let dest = p.dir.path().join("copied");
    let st = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!(
            "docker://{}/rancher/k8s:v1.8.5-rancher4",
            target.host()
        ))
        .arg(format!("dir:{}", dest.display()))
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    assert!(
        leaked_uploads(&target).is_empty(),
        "{:?}",
        leaked_uploads(&target)
    );

    // A second run finds everything there and sends no blob.
    let o = run(&unpack_args(
        &p.bundle,
        &target.url(),
        &["--output", "json"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["blobsUploaded"], 0);
    assert_eq!(v["bytesUploaded"], 0);
    assert!(
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "already-present"),
        "{v}"
    );
}

#[test]
fn prefix_and_dry_run() {
    let p = packed();
    let target = Registry::start();
    let o = run(&unpack_args(
        &p.bundle,
        &target.url(),
        &["--prefix", "mirror/rancher", "--dry-run"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("{}/mirror/rancher/busybox:latest", target.host())),
        "{out}"
    );
    assert!(out.contains("nothing was pushed"), "{out}");
    let e = skopeo_digest(
        &format!("{}/mirror/rancher/busybox:latest", target.host()),
        &["--tls-verify=false"],
    )
    .unwrap_err();
    assert!(e.contains("manifest unknown"), "{e}");
    let o = run(&unpack_args(
        &p.bundle,
        &target.url(),
        &["--prefix", "mirror/rancher/"],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_all_there(
        &p.bundle,
        &target.host(),
        "mirror/rancher/",
        &["--tls-verify=false"],
    );
    assert!(
        stdout(&o).contains(&format!("{}/mirror/rancher", target.host())),
        "{}",
        stdout(&o)
    );
}

#[test]
fn unpacks_over_tls_basic_and_token_auth_and_refuses_wrong_credentials_early() {
    let p = packed();
    // TLS with --ca-file.
    let tls = Registry::with_tls();
    let ca = tls.ca_file().unwrap();
    let o = run(&unpack_args(
        &p.bundle,
        &tls.host(),
        &["--ca-file", ca.to_str().unwrap()],
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_all_there(
        &p.bundle,
        &tls.host(),
        "",
        &["--cert-dir", tls.cert_dir().unwrap().to_str().unwrap()],
    );

    // Basic auth, password on stdin.
    let basic = Registry::with_htpasswd("ops", "canary-basic-pw");
    let args = unpack_args(
        &p.bundle,
        &basic.url(),
        &["--username", "ops", "--password-stdin"],
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = airlock_with(&refs, Some(b"canary-basic-pw\n"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("canary") && !stderr(&o).contains("canary"));
    assert_all_there(
        &p.bundle,
        &basic.host(),
        "",
        &["--tls-verify=false", "--creds", "ops:canary-basic-pw"],
    );

    // Wrong password: refused before any upload, nothing in the registry.
    let fresh = Registry::with_htpasswd("ops", "right");
    let args = unpack_args(
        &p.bundle,
        &fresh.url(),
        &["--username", "ops", "--password-stdin"],
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = airlock_with(&refs, Some(b"canary-wrong-pw\n"), &[]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("nothing was pushed") && e.contains("authentication failed"),
        "{e}"
    );
    assert!(!e.contains("canary"), "{e}");
    assert!(
        !fresh
            .storage_dir()
            .join("docker/registry/v2/blobs")
            .exists(),
        "a blob reached the registry"
    );

    // Bearer tokens, as docker.io and gcr.io do them.
    let token = RegistryBuilder::new()
        .token_auth(TokenPolicy::new("ops", "canary-token-pw"))
        .start();
    let args = unpack_args(
        &p.bundle,
        &token.url(),
        &["--username", "ops", "--password-stdin"],
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = airlock_with(&refs, Some(b"canary-token-pw"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        token.token_server().unwrap().requests() >= 17,
        "tokens per repository"
    );
    // Wrong password with tokens: also before any upload.
    let args = unpack_args(
        &p.bundle,
        &token.url(),
        &["--username", "ops", "--password-stdin"],
    );
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = airlock_with(&refs, Some(b"canary-nope"), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("nothing was pushed"), "{}", stderr(&o));
}

#[test]
fn a_corrupted_layer_is_named_by_verify_and_only_its_image_is_not_pushed() {
    let p = packed();
    let bad = p.dir.path().join("bad.tar.zst");
    // k8s's own (unshared) layer: its biggest one.
    let k8s = fixture("docker.io/rancher/k8s:v1.8.5-rancher4");
    let layer = k8s.artifact.images()[0]
        .layers
        .iter()
        .max_by_key(|l| l.data.len())
        .unwrap();
    let shared = rancher_fixtures()
        .iter()
        .filter(|f| {
            f.artifact
                .all_blobs()
                .iter()
                .any(|b| b.digest == layer.digest)
        })
        .count();
    assert_eq!(shared, 1, "the test needs a layer only k8s uses");
    let name = format!("blobs/sha256/{}", layer.digest.hex());
    rewrite(&p.bundle, &bad, |n, d| {
        if n == name {
            Edit::Replace(flip(d))
        } else {
            Edit::Keep
        }
    });

    let o = airlock(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains(&layer.digest.to_string()) && e.contains("wrong digest"),
        "{e}"
    );
    assert!(
        e.contains("docker.io/rancher/k8s:v1.8.5-rancher4"),
        "names the image: {e}"
    );

    let target = Registry::start();
    let o = run(&unpack_args(&bad, &target.url(), &[]));
    // The other 16 images are in: a partial success, exit 3 (issue 15).
    assert_exit(&o, 3);
    assert!(
        stdout(&o).contains("FAILED") && stdout(&o).contains(&layer.digest.to_string()),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        stdout(&o).matches("was not uploaded").count(),
        1,
        "each cause is said once: {}",
        stdout(&o)
    );
    // k8s's manifest was not pushed, and the damaged layer was not committed.
    let e = skopeo_digest(
        &format!("{}/rancher/k8s:v1.8.5-rancher4", target.host()),
        &["--tls-verify=false"],
    )
    .unwrap_err();
    assert!(e.contains("manifest unknown"), "{e}");
    let hex = layer.digest.hex();
    assert!(!target
        .storage_dir()
        .join(format!(
            "docker/registry/v2/blobs/sha256/{}/{hex}",
            &hex[..2]
        ))
        .exists());
    // Every other image is there.
    let m = BundleReader::open(&bad).unwrap().bundle_manifest().unwrap();
    for img in m.images.iter().filter(|i| !i.source.contains("/k8s:")) {
        let d = skopeo_digest(
            &format!("{}/{}", target.host(), img.target),
            &["--tls-verify=false"],
        )
        .unwrap();
        assert_eq!(d, img.digest.to_string());
    }
    // The damaged blob's bytes were sent up to the point the mismatch showed, so its session
    // stays: distribution 2.8 refuses to cancel a session whose offset moved ("upload resumed
    // at wrong offset") and purges it later. It is never committed (checked above). No other
    // session is left.
    let leaked = leaked_uploads(&target);
    assert!(
        leaked.len() <= 1
            && leaked
                .iter()
                .all(|p| p.to_string_lossy().contains("/rancher/k8s/")),
        "{leaked:?}"
    );
}

#[test]
fn a_corrupt_frame_is_reported_with_its_offset() {
    let p = packed();
    let bad = p.dir.path().join("frame.tar.zst");
    let mut bytes = std::fs::read(&p.bundle).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&bad, bytes).unwrap();
    let o = airlock(&["verify", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains(" at compressed offset "), "{e}");
}

#[test]
fn an_interrupted_unpack_is_finished_by_a_rerun() {
    let p = packed();
    let target = Registry::start();
    // The registry "goes away" for good once the two largest blobs (which the two workers
    // take first) and 64 KiB more went up: some blobs are in, the run cannot finish.
    let mut sizes: Vec<u64> = BundleReader::open(&p.bundle)
        .unwrap()
        .entries()
        .iter()
        .filter(|e| e.name.starts_with("blobs/sha256/"))
        .map(|e| e.size)
        .collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    let down_after = sizes[0] + sizes[1] + 64 * 1024;
    assert!(
        down_after < sizes.iter().sum::<u64>() / 2,
        "{down_after} of {sizes:?}"
    );
    let proxy = Proxy::start(
        &target.host(),
        Faults {
            down_after_bytes: Some(down_after),
            ..Faults::default()
        },
    );
    let o = run(&unpack_args(&p.bundle, &proxy.url(), &["--jobs", "2"]));
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    assert!(proxy.is_down());
    let first_bytes = proxy.up_bytes();
    assert!(
        leaked_uploads(&target).len() <= 2,
        "{:?}",
        leaked_uploads(&target)
    );
    // It comes back; the rerun completes and sends only what is missing.
    proxy.go_up();
    let o = run(&unpack_args(&p.bundle, &proxy.url(), &["--output", "json"]));
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["blobsPresent"].as_u64().unwrap() > 0,
        "blobs from the first run were kept: {v}"
    );
    let total: u64 = BundleReader::open(&p.bundle)
        .unwrap()
        .bundle_manifest()
        .unwrap()
        .blobs
        .bytes;
    assert!(
        v["bytesUploaded"].as_u64().unwrap() < total,
        "the rerun sent {} of {total} bytes after the first run sent {first_bytes}",
        v["bytesUploaded"]
    );
    assert_all_there(&p.bundle, &target.host(), "", &["--tls-verify=false"]);
}

#[test]
fn transient_resets_are_retried_within_one_run() {
    let p = packed();
    let target = Registry::start();
    // The first three connections that carry more than 200 kB are reset mid-body.
    let proxy = Proxy::start(
        &target.host(),
        Faults {
            cut_after_bytes: Some(200_000),
            cuts_left: Some(3),
            ..Faults::default()
        },
    );
    let o = run(&unpack_args(&p.bundle, &proxy.url(), &["--jobs", "2"]));
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    // cuts_left is checked as connections arrive, so a parallel one may slip in.
    assert!(proxy.cuts() >= 3, "{}", proxy.cuts());
    assert_all_there(&p.bundle, &target.host(), "", &["--tls-verify=false"]);
}

/// Blobs go out largest first, each worker taking the next from one queue: with two
/// workers the two largest start first and a small one ends the run (rayon's halving gave
/// a worker the half of small blobs at once, and the largest blob of a slow link could start
/// last).
#[test]
fn blobs_are_delivered_largest_first_to_every_worker() {
    use airlock::bundle::BundleSource;
    let p = packed();
    let mut r = BundleReader::open(&p.bundle).unwrap();
    let wanted: std::collections::BTreeMap<_, _> = r
        .entries()
        .iter()
        .filter_map(|e| {
            let hex = e.name.strip_prefix("blobs/sha256/")?;
            Some((
                airlock::digest::Digest::parse(&format!("sha256:{hex}")).unwrap(),
                e.size,
            ))
        })
        .collect();
    assert!(wanted.len() > 10, "{} blobs", wanted.len());
    let started = std::sync::Mutex::new(Vec::new());
    r.blobs(&wanted, 2, &|d, _| {
        started.lock().unwrap().push(wanted[d]);
        std::thread::sleep(std::time::Duration::from_millis(15));
    })
    .unwrap();
    let started = started.into_inner().unwrap();
    let mut sizes: Vec<u64> = wanted.values().copied().collect();
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(started.len(), sizes.len());
    let mut first_two = started[..2].to_vec();
    first_two.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(first_two, sizes[..2], "started: {started:?}");
    assert!(
        sizes[sizes.len() - 2..].contains(started.last().unwrap()),
        "started: {started:?}"
    );
}
