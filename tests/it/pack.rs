//! `airlock pack` against real registries standing in for docker.io and gcr.io, with skopeo
//! and containerd as independent readers of the bundle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use airlock::bundle::format::BundleManifest;
use airlock::bundle::reader::BundleReader;
use airlock::fixtures::Artifact;
use airlock::pack::{pack, PackError, PackOptions, PlannedImage, Platforms};
use airlock::progress::Silent;
use airlock::reference::Reference;
use airlock::registry::{Client, Endpoint};

use crate::harness::{Containerd, Registry};
use crate::support::*;

/// Two registries holding the 1.6.14 fixtures under their docker.io and gcr.io paths.
pub struct Upstream {
    pub docker: Registry,
    pub gcr: Registry,
}

impl Upstream {
    pub fn start() -> Upstream {
        let up = Upstream {
            docker: Registry::start(),
            gcr: Registry::start(),
        };
        let all: Vec<_> = rancher_fixtures().iter().collect();
        let (d, g): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|f| f.name.starts_with("docker.io/"));
        seed(&up.docker, &d);
        seed(&up.gcr, &g);
        up
    }

    /// The pack flags that point at the stand-ins (and [`fixture_pack_args`]).
    pub fn mirror_args(&self) -> Vec<String> {
        let mut v: Vec<String> = vec![
            "--mirror".into(),
            format!("docker.io={}", self.docker.url()),
            "--mirror".into(),
            format!("gcr.io={}", self.gcr.url()),
        ];
        v.extend(fixture_pack_args());
        v
    }

    pub fn client(&self) -> Client {
        let mut o = fast_options();
        o.endpoints.push((
            "docker.io".into(),
            Endpoint::parse(&self.docker.url()).unwrap(),
        ));
        o.endpoints
            .push(("gcr.io".into(), Endpoint::parse(&self.gcr.url()).unwrap()));
        Client::new(o).unwrap()
    }
}

/// The 17 images of Rancher's 1.6.14 docs.
pub const SELECT_17: [&str; 10] = [
    "--version",
    "1.6.14",
    "--k8s-template",
    "v1.8.5-rancher4",
    "--only",
    "pause",
    "--only",
    "infra",
    "--only",
    "addons",
];

/// Runs `airlock pack` for the 17 images into `out`, with the cache `cache` (unless `extra`
/// holds `--no-cache`).
pub fn pack_17(up: &Upstream, out: &Path, cache: &Path, extra: &[&str]) -> std::process::Output {
    pack_17_env(up, out, cache, extra, &[])
}

/// [`pack_17`] with extra environment variables.
pub fn pack_17_env(
    up: &Upstream,
    out: &Path,
    cache: &Path,
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args: Vec<String> = vec!["pack".into()];
    args.extend(SELECT_17.iter().map(|s| s.to_string()));
    args.extend(["-o".into(), out.display().to_string()]);
    // `cache` is ignored when `extra` asks for no cache.
    if !extra.contains(&"--no-cache") {
        args.extend(["--cache".into(), cache.display().to_string()]);
    }
    args.extend(up.mirror_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    airlock_with(&refs, None, env)
}

/// The digest stored under the tag for each fixture with linux/amd64 picked: the platform
/// manifest for an index.
fn expected_digests() -> BTreeMap<String, (String, Option<String>)> {
    rancher_fixtures()
        .iter()
        .map(|f| {
            let v = match &f.artifact {
                Artifact::Image(i) => (i.digest.to_string(), None),
                Artifact::Index(ix) => {
                    let amd = ix
                        .children
                        .iter()
                        .find(|c| c.platform.architecture == "amd64")
                        .unwrap();
                    (amd.digest.to_string(), Some(ix.digest.to_string()))
                }
                Artifact::Schema1(_) => unreachable!("the 2018 set has no schema 1 image"),
            };
            (f.name.clone(), v)
        })
        .collect()
}

fn tar_names(bundle: &Path) -> Vec<String> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("zstd -dc '{}' | tar -t", bundle.display()))
        .output()
        .expect("zstd and tar (install the Debian package zstd)");
    assert!(
        out.status.success(),
        "zstd -d | tar -t failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn packs_the_1_6_14_set_with_every_digest_and_each_blob_once() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar.zst");
    let o = pack_17(&up, &out, &dir.path().join("cache"), &["--jobs", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("packed 17 images"), "{}", stderr(&o));

    // The entries, in the documented order, each blob once.
    let names = tar_names(&out);
    assert_eq!(&names[..3], ["oci-layout", "index.json", "bundle.json"]);
    let uniq: BTreeSet<&String> = names.iter().collect();
    assert_eq!(uniq.len(), names.len(), "duplicate entries: {names:?}");

    let r = BundleReader::open(&out).unwrap();
    let b: BundleManifest = r.bundle_manifest().unwrap();
    assert_eq!(b.images.len(), 17);
    assert_eq!(b.blobs.count as usize, names.len() - 3);
    let want = expected_digests();
    for img in &b.images {
        let (digest, index) = &want[&img.source];
        assert_eq!(&img.digest.to_string(), digest, "{}", img.source);
        assert_eq!(
            img.from_index.as_ref().map(|f| f.digest.to_string()),
            *index,
            "{}",
            img.source
        );
    }
    // Every distinct upstream blob of the picked platforms is there.
    let mut blobs = BTreeSet::new();
    for f in rancher_fixtures() {
        for i in f.artifact.images() {
            if i.platform.architecture == "amd64" {
                blobs.insert(i.config.digest.clone());
                blobs.extend(i.layers.iter().map(|l| l.digest.clone()));
                blobs.insert(i.digest.clone());
            }
        }
    }
    for d in &blobs {
        assert!(r.blob(d).is_some(), "blob {d} missing");
    }
    assert_eq!(
        blobs.len() as u64,
        b.blobs.count,
        "exactly the blobs needed"
    );
    // Targets follow Rancher's private-registry rules.
    let target = |s: &str| b.images.iter().find(|i| i.source == s).unwrap();
    assert_eq!(target(BUSYBOX).target, "busybox:latest");
    assert_eq!(target(PAUSE).target, "google_containers/pause-amd64:3.0");
    assert_eq!(
        target(PAUSE).alt_targets,
        ["gcr.io/google_containers/pause-amd64:3.0"]
    );
    // The sidecar checksum is what sha256sum -c reads.
    let o = Command::new("sha256sum")
        .arg("-c")
        .arg("bundle.tar.zst.sha256")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    // inspect reads it without unpacking.
    let o = airlock(&["inspect", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("17 images"), "{}", stdout(&o));
    let o = airlock(&["inspect", "--output", "json", out.to_str().unwrap()]);
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["bundleJson"]["images"].as_array().unwrap().len(), 17);
}

#[test]
fn containerd_and_skopeo_read_the_bundle() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar.zst");
    let o = pack_17(&up, &out, &dir.path().join("cache"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let tar = dir.path().join("b.tar");
    let st = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "zstd -q -dc '{}' > '{}'",
            out.display(),
            tar.display()
        ))
        .status()
        .unwrap();
    assert!(st.success());

    let ctd = Containerd::start();
    let o = ctd.ctr(&[
        "images",
        "import",
        "--all-platforms",
        "--no-unpack",
        tar.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "ctr import: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        ctd.log()
    );
    let o = ctd.ctr(&["images", "ls"]);
    let listing = String::from_utf8_lossy(&o.stdout).into_owned();
    let want = expected_digests();
    let mut seen = 0;
    for line in listing.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (name, digest) = (cols[0], cols[2]);
        if let Some((d, _)) = want.get(name) {
            assert_eq!(digest, d, "{name} in containerd");
            seen += 1;
        }
    }
    assert_eq!(
        seen, 17,
        "containerd lists all 17 with source names:\n{listing}"
    );

    // skopeo reads the OCI-typed images straight from the extracted layout.
    let layout = dir.path().join("layout");
    std::fs::create_dir(&layout).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&layout)
        .status()
        .unwrap();
    assert!(st.success());
    for name in [KUBE_AUTH, "gcr.io/kubernetes-helm/tiller:v2.6.1"] {
        let o = Command::new("skopeo")
            .args(["inspect", "--raw"])
            .arg(format!("oci:{}:{name}", layout.display()))
            .output()
            .expect("skopeo (install the Debian package skopeo)");
        assert!(
            o.status.success(),
            "skopeo inspect {name}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            o.stdout,
            fixture(name).artifact.manifest(),
            "{name}: skopeo sees the same bytes"
        );
    }
}

#[test]
fn packs_are_byte_identical_and_resume_from_the_cache() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.tar.zst"),
        dir.path().join("b.tar.zst"),
        dir.path().join("c.tar.zst"),
    );
    let cache = dir.path().join("cache");
    assert!(pack_17(&up, &a, &cache, &[]).status.success());
    // Same cache: nothing is downloaded again (57 blobs: 17 manifests, which are always
    // fetched, and 40 configs and layers).
    let o = pack_17(&up, &b, &cache, &[]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains(" 0 B downloaded (40 blobs from cache)"),
        "{}",
        stderr(&o)
    );
    // A fresh cache and other parallelism give the same bytes.
    assert!(
        pack_17(&up, &c, &dir.path().join("cache2"), &["--jobs", "1"])
            .status
            .success()
    );
    let (ba, bb, bc) = (
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        std::fs::read(&c).unwrap(),
    );
    assert!(ba == bb && ba == bc, "packs differ");
    // --no-cache: the same bytes, every blob downloaded, nothing left beside the bundle and
    // nothing in the default cache.
    let nc = tempfile::tempdir().unwrap();
    let e = nc.path().join("e.tar.zst");
    // What a killed pack left is removed; what a running one uses is not.
    let mut done = Command::new("true").spawn().unwrap();
    let dead = done.id();
    done.wait().unwrap();
    let stale = nc.path().join(format!(".e.tar.zst.blobs-{dead}"));
    std::fs::create_dir_all(stale.join("blobs/sha256")).unwrap();
    std::fs::write(stale.join("blobs/sha256/x"), b"left by a killed pack").unwrap();
    let live = format!(".e.tar.zst.blobs-{}", std::process::id());
    std::fs::create_dir(nc.path().join(&live)).unwrap();
    let home = tempfile::tempdir().unwrap();
    let home_s = home.path().display().to_string();
    let o = pack_17_env(
        &up,
        &e,
        &cache,
        &["--no-cache", "--jobs", "2"],
        &[("XDG_CACHE_HOME", &home_s), ("HOME", &home_s)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("(0 blobs from cache)"),
        "{}",
        stderr(&o)
    );
    assert!(std::fs::read(&e).unwrap() == ba, "--no-cache pack differs");
    let mut left: Vec<String> = std::fs::read_dir(nc.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, [live.as_str(), "e.tar.zst", "e.tar.zst.sha256"]);
    std::fs::remove_dir(nc.path().join(&live)).unwrap();
    assert_eq!(std::fs::read_dir(home.path()).unwrap().count(), 0);
    // A missing output directory is refused, not created.
    let o = pack_17(
        &up,
        &nc.path().join("typo/sub/x.tar.zst"),
        &cache,
        &["--no-cache"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!nc.path().join("typo").exists(), "{}", stderr(&o));
    // It cannot be combined with a cache.
    let o = pack_17(&up, &e, &cache, &["--no-cache", "--cache", "/tmp/x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--no-cache"), "{}", stderr(&o));

    // SOURCE_DATE_EPOCH is the only clock a bundle carries.
    let d = dir.path().join("d.tar.zst");
    let o = pack_17_env(&up, &d, &cache, &[], &[("SOURCE_DATE_EPOCH", "1515628800")]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = BundleReader::open(&d).unwrap().bundle_manifest().unwrap();
    assert_eq!(m.created, Some(1515628800));
}

fn planned(names: &[&str]) -> Vec<PlannedImage> {
    names
        .iter()
        .map(|n| {
            let r = Reference::parse(n).unwrap();
            let target = format!("{}:{}", r.repository(), r.tag().unwrap());
            PlannedImage::new(r, &target, "list")
        })
        .collect()
}

fn options(dir: &Path, out: &str) -> PackOptions {
    PackOptions {
        output: dir.join(out),
        cache: airlock::pack::CacheMode::Keep(dir.join("cache")),
        jobs: 4,
        platforms: Platforms::One(airlock::manifest::Platform::linux_amd64()),
        keep_going: false,
        write: Default::default(),
        created: None,
        split: None,
        base: None,
        keep_digests: true,
    }
}

#[test]
fn a_missing_image_fails_the_pack_and_a_rerun_fetches_only_what_is_missing() {
    // gcr.io holds only pause: every other add-on is missing.
    let docker = Registry::start();
    let gcr = Registry::start();
    seed(&docker, &[fixture("docker.io/rancher/k8s:v1.8.5-rancher4")]);
    seed(&gcr, &[fixture(PAUSE)]);
    let mut o = fast_options();
    o.endpoints
        .push(("docker.io".into(), Endpoint::parse(&docker.url()).unwrap()));
    o.endpoints
        .push(("gcr.io".into(), Endpoint::parse(&gcr.url()).unwrap()));
    let client = Client::new(o).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let names = [
        "docker.io/rancher/k8s:v1.8.5-rancher4",
        PAUSE,
        "gcr.io/kubernetes-helm/tiller:v2.6.1",
    ];
    let opts = options(dir.path(), "b.tar.zst");
    let e = pack(
        &client,
        &planned(&names),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, PackError::ImagesFailed { .. }), "{msg}");
    assert!(
        msg.contains("gcr.io/kubernetes-helm/tiller:v2.6.1") && msg.contains("MANIFEST_UNKNOWN"),
        "{msg}"
    );
    assert!(
        !msg.contains("pause"),
        "only the failed image is named: {msg}"
    );
    // No bundle, no partial file.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["cache"], "{left:?}");
    // With --no-cache the failure comes before any download, and leaves nothing at all.
    let mut nc = options(dir.path(), "n.tar.zst");
    nc.cache = airlock::pack::CacheMode::Transient { lookahead: 0 };
    let e = pack(&client, &planned(&names), Default::default(), &nc, &Silent).unwrap_err();
    assert!(matches!(e, PackError::ImagesFailed { .. }), "{e}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["cache"], "{left:?}");

    // The operator fixes the source and runs again: only tiller's blobs are downloaded.
    seed(&gcr, &[fixture("gcr.io/kubernetes-helm/tiller:v2.6.1")]);
    let s = pack(
        &client,
        &planned(&names),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap();
    let tiller: u64 = fixture("gcr.io/kubernetes-helm/tiller:v2.6.1")
        .artifact
        .total_size();
    let shared: u64 = {
        // tiller shares its base layer with rancher images (already cached through k8s? no:
        // k8s uses debian-base), so everything of tiller but what k8s/pause share is new.
        let mut cached = BTreeSet::new();
        for n in ["docker.io/rancher/k8s:v1.8.5-rancher4", PAUSE] {
            for b in fixture(n).artifact.all_blobs() {
                cached.insert(b.digest.clone());
            }
        }
        fixture("gcr.io/kubernetes-helm/tiller:v2.6.1")
            .artifact
            .all_blobs()
            .iter()
            .filter(|b| cached.contains(&b.digest))
            .map(|b| b.size())
            .sum()
    };
    assert_eq!(
        s.bytes_downloaded,
        tiller - shared,
        "only the missing image's blobs"
    );
    assert!(s.blobs_from_cache >= 3);
}

#[test]
fn a_corrupt_cache_file_is_fetched_again() {
    let up = Upstream::start();
    let client = up.client();
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path(), "b.tar.zst");
    let names = [PAUSE];
    pack(
        &client,
        &planned(&names),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap();
    let layer = &fixture(PAUSE).artifact.images()[0].layers[0];
    let cached = dir
        .path()
        .join("cache/blobs/sha256")
        .join(layer.digest.hex());
    std::fs::write(&cached, vec![0u8; layer.data.len()]).unwrap();
    let s = pack(
        &client,
        &planned(&names),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap();
    assert_eq!(
        s.bytes_downloaded,
        layer.size(),
        "the damaged blob was downloaded again"
    );
    assert_eq!(std::fs::read(&cached).unwrap(), layer.data);
}

#[test]
fn keep_going_writes_what_it_could_and_still_fails() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("images.txt");
    std::fs::write(
        &list,
        format!("# two images, one missing\n{PAUSE}\ngcr.io/google_containers/nope:1\n"),
    )
    .unwrap();
    // `pack --images LIST -o OUT` through the upstream mirrors.
    let pack_list = |out: &Path, extra: &[&str]| {
        let mut args: Vec<String> = vec![
            "pack".into(),
            "--images".into(),
            list.display().to_string(),
            "-o".into(),
            out.display().to_string(),
            "--cache".into(),
            dir.path().join("cache").display().to_string(),
        ];
        args.extend(up.mirror_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        airlock(&refs)
    };
    let out = dir.path().join("b.tar.zst");
    let o = pack_list(&out, &["--keep-going"]);
    // A bundle without the image that failed, as asked: a partial success (issue 15).
    assert_exit(&o, 3);
    assert!(
        stderr(&o).contains("gcr.io/google_containers/nope:1"),
        "{}",
        stderr(&o)
    );
    let m = BundleReader::open(&out).unwrap().bundle_manifest().unwrap();
    assert_eq!(m.images.len(), 1);
    assert_eq!(m.failures.len(), 1);
    assert_eq!(m.failures[0].source, "gcr.io/google_containers/nope:1");
    assert_eq!(m.request.image_list.as_ref().unwrap().file, "images.txt");
    // Without --keep-going nothing is written.
    let out2 = dir.path().join("c.tar.zst");
    let o = pack_list(&out2, &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(!out2.exists());
}

#[test]
fn all_platforms_keeps_the_index_digest() {
    let up = Upstream::start();
    let client = up.client();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), "b.tar.zst");
    opts.platforms = Platforms::All;
    pack(
        &client,
        &planned(&[BUSYBOX]),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap();
    let r = BundleReader::open(&opts.output).unwrap();
    let m = r.bundle_manifest().unwrap();
    let Artifact::Index(ix) = &fixture(BUSYBOX).artifact else {
        panic!()
    };
    assert_eq!(m.images[0].digest, ix.digest);
    assert_eq!(m.images[0].media_type, airlock::media_type::DOCKER_LIST);
    assert!(m.images[0].from_index.is_none());
    for c in &ix.children {
        assert!(
            r.blob(&c.digest).is_some(),
            "platform {} kept",
            c.platform.architecture
        );
        assert!(r.blob(&c.config.digest).is_some());
    }
    // And --platform picks another one.
    let mut opts = options(dir.path(), "arm.tar.zst");
    opts.platforms = Platforms::One("linux/arm/v7".parse().unwrap());
    pack(
        &client,
        &planned(&[BUSYBOX]),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap();
    let m = BundleReader::open(&opts.output)
        .unwrap()
        .bundle_manifest()
        .unwrap();
    let arm = ix
        .children
        .iter()
        .find(|c| c.platform.architecture == "arm")
        .unwrap();
    assert_eq!(m.images[0].digest, arm.digest);
    assert_eq!(m.platforms, ["linux/arm/v7"]);
}

#[test]
fn a_blob_that_fails_mid_pack_leaves_no_bundle() {
    // The bundle is written while blobs download; a corrupt blob served by the upstream must
    // still leave nothing under the final name (and no temp file).
    let up = Upstream::start();
    let f = fixture("gcr.io/google_containers/heapster-amd64:v1.4.0");
    let layer = f.artifact.images()[0]
        .layers
        .iter()
        .max_by_key(|l| l.data.len())
        .unwrap();
    let hex = layer.digest.hex();
    let data = up.gcr.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for extra in [&[][..], &["--no-cache"][..]] {
        let o = pack_17(
            &up,
            &out.join("b.tar.zst"),
            &dir.path().join("cache"),
            extra,
        );
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&f.name) && e.contains("corrupt"), "{e}");
        assert_eq!(e.matches(&hex).count(), 1, "the blob is named once: {e}");
        // With --no-cache, its directory of downloads goes too.
        let left: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "{extra:?}: {left:?}");
    }
}

#[test]
fn several_platforms_keep_the_index_and_a_missing_one_is_named() {
    let up = Upstream::start();
    let client = up.client();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path(), "two.tar.zst");
    opts.platforms = Platforms::Several(vec![
        "linux/amd64".parse().unwrap(),
        "linux/arm64".parse().unwrap(),
    ]);
    pack(
        &client,
        &planned(&[BUSYBOX, PAUSE]),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap();
    let m = BundleReader::open(&opts.output)
        .unwrap()
        .bundle_manifest()
        .unwrap();
    let Artifact::Index(ix) = &fixture(BUSYBOX).artifact else {
        panic!()
    };
    let busybox = m.images.iter().find(|i| i.source == BUSYBOX).unwrap();
    assert_eq!(busybox.digest, ix.digest, "the index, byte for byte");
    assert_eq!(m.platforms, ["linux/amd64", "linux/arm64"]);
    // A single-platform image is not affected.
    let pause = m.images.iter().find(|i| i.source == PAUSE).unwrap();
    assert_eq!(&pause.digest, fixture(PAUSE).artifact.digest());

    let mut opts = options(dir.path(), "s390x.tar.zst");
    opts.platforms = Platforms::Several(vec![
        "linux/amd64".parse().unwrap(),
        "linux/s390x".parse().unwrap(),
    ]);
    let e = pack(
        &client,
        &planned(&[BUSYBOX]),
        Default::default(),
        &opts,
        &Silent,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no linux/s390x image") && e.contains("linux/arm/v7"),
        "{e}"
    );
    assert!(!opts.output.exists());
}

/// Counts, at every progress report, the finished downloads waiting in a `--no-cache`
/// directory under `dir`, and keeps the largest count.
struct Watcher<'a> {
    dir: &'a Path,
    most: std::sync::atomic::AtomicUsize,
}

impl Watcher<'_> {
    fn waiting(&self) -> usize {
        let Ok(rd) = std::fs::read_dir(self.dir) else {
            return 0;
        };
        rd.flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".blobs-"))
            .map(|e| {
                std::fs::read_dir(e.path().join("blobs/sha256"))
                    .map(|r| r.count())
                    .unwrap_or(0)
            })
            .sum()
    }
}

impl airlock::progress::Reporter for Watcher<'_> {
    fn phase(&self, _: airlock::progress::Phase, _: u64) {}
    fn advance(&self, _: airlock::progress::Phase, _: u64) {
        self.most
            .fetch_max(self.waiting(), std::sync::atomic::Ordering::SeqCst);
    }
    fn item(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn finish_phase(&self, _: airlock::progress::Phase) {}
}

#[test]
fn no_cache_downloads_stay_within_the_window_and_each_blob_goes_once_written() {
    let up = Upstream::start();
    let client = up.client();
    let names: Vec<String> = rancher_fixtures().iter().map(|f| f.name.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    let watch = |lookahead: u64| {
        let mut opts = options(dir.path(), "b.tar.zst");
        opts.cache = airlock::pack::CacheMode::Transient { lookahead };
        let w = Watcher {
            dir: dir.path(),
            most: Default::default(),
        };
        let s = pack(&client, &planned(&names), Default::default(), &opts, &w).unwrap();
        assert_eq!(s.images, 17);
        std::fs::remove_file(dir.path().join("b.tar.zst")).unwrap();
        std::fs::remove_file(dir.path().join("b.tar.zst.sha256")).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "all gone"
        );
        w.most.into_inner()
    };
    // No look-ahead: only the blob being written waits on disk (and, for a moment, the one
    // whose download the writer is waiting for).
    let tight = watch(0);
    assert!((1..=2).contains(&tight), "{tight} downloads waited at once");
    // A window of everything: downloads run ahead, which the tight one prevented.
    let wide = watch(u64::MAX / 2);
    assert!(wide > 2, "with no limit {wide} downloads waited at once");
}

/// Pack's progress (issue 15): the download phase counts every blob fetched, downloaded or
/// found in the cache, against its own total, and the write phase every blob written against
/// its own; neither counts the other's bytes, whether the two overlap (a cache, --no-cache) or
/// not (--keep-going). Counted through the reporter, not read off a screen.
#[test]
fn r15_pack_progress_counts_each_phase_against_its_own_total() {
    use airlock::progress::{Phase, Tally};
    let up = Upstream::start();
    let client = up.client();
    let names: Vec<String> = rancher_fixtures().iter().map(|f| f.name.clone()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let dir = tempfile::tempdir().unwrap();
    type Tweak = fn(&mut PackOptions);
    let runs: [(&str, Tweak); 4] = [
        ("a fresh cache", |_| {}),
        ("everything in the cache", |_| {}),
        ("--keep-going", |o| o.keep_going = true),
        ("--no-cache", |o| {
            o.cache = airlock::pack::CacheMode::Transient {
                lookahead: 256 << 20,
            }
        }),
    ];
    for (i, (run, tweak)) in runs.into_iter().enumerate() {
        let mut opts = options(dir.path(), "b.tar.zst");
        tweak(&mut opts);
        let tally = Tally::default();
        let s = pack(&client, &planned(&names), Default::default(), &opts, &tally).unwrap();
        let download = tally.get(Phase::Download).expect("a download phase");
        let write = tally.get(Phase::Write).expect("a write phase");
        assert!(download.finished && write.finished, "{run}");
        assert_eq!(download.done, download.total, "{run}: download");
        assert_eq!(write.done, write.total, "{run}: write");
        assert_eq!(write.total, s.bytes_dedup, "{run}: every blob written once");
        match i {
            0 | 3 => {
                assert_eq!(s.blobs_from_cache, 0, "{run}");
                assert_eq!(download.total, s.bytes_downloaded, "{run}");
            }
            _ => {
                assert_eq!(s.bytes_downloaded, 0, "{run}");
                assert_eq!(s.blobs_from_cache, s.blobs - 17, "{run}: all but manifests");
            }
        }
        std::fs::remove_file(&opts.output).unwrap();
        std::fs::remove_file(dir.path().join("b.tar.zst.sha256")).unwrap();
    }
}
