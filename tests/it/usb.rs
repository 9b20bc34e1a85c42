//! Issue 5, the USB transfer workflow: split parts (`pack --split`) read back without joining
//! them, the `sha256sum -c` sidecar, refusal of missing, swapped, short and stale parts before
//! any push, the free-space check on a real small tmpfs, delta bundles (`--base`,
//! `--base-registry-inventory`) and `airlock inventory`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use airlock::bundle::reader::BundleReader;
use airlock::digest::Digest;
use airlock::fixtures::{self, Fixture};
use airlock::parts;
use airlock::reference::Reference;
use airlock::registry::{Client, Endpoint};

use crate::harness::Registry;
use crate::pack::{pack_17, Upstream};
use crate::support::*;

fn run(args: &[String]) -> std::process::Output {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    airlock(&refs)
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// One bundle packed twice from the same cache: whole, and split into at least 3 parts.
struct Split {
    _up: Upstream,
    dir: tempfile::TempDir,
    one: PathBuf,
    /// The base name of the parts (`usb/bundle.tar.zst`).
    base: PathBuf,
    split: u64,
}

impl Split {
    fn parts(&self) -> Vec<PathBuf> {
        (0..)
            .map(|i| parts::part_path(&self.base, i))
            .take_while(|p| p.exists())
            .collect()
    }
}

fn split_pack() -> Split {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let one = dir.path().join("bundle.tar.zst");
    let o = pack_17(&up, &one, &cache, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let len = std::fs::metadata(&one).unwrap().len();
    let split = len / 4 + 1;
    std::fs::create_dir(dir.path().join("usb")).unwrap();
    let base = dir.path().join("usb/bundle.tar.zst");
    let o = pack_17(&up, &base, &cache, &["--split", &split.to_string()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!base.exists(), "a split pack writes no unsplit file");
    Split {
        _up: up,
        dir,
        one,
        base,
        split,
    }
}

/// Blob files in a registry's storage (none means nothing was pushed).
fn stored_blobs(reg: &Registry) -> usize {
    let root = reg.storage_dir().join("docker/registry/v2/blobs");
    let mut n = 0;
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "data") {
                n += 1;
            }
        }
    }
    n
}

/// A client that reaches `reg` over plain http.
fn client_for(reg: &Registry) -> Client {
    let mut o = fast_options();
    o.endpoints
        .push((reg.host(), Endpoint::parse(&reg.url()).unwrap()));
    Client::new(o).unwrap()
}

/// Every target of the bundle at `host`, with the digest the registry answers.
fn target_digests(bundle: &Path, reg: &Registry) -> BTreeMap<String, Digest> {
    let host = reg.host();
    let (r, _) = parts::open_bundle(bundle).unwrap();
    let c = client_for(reg);
    let mut out = BTreeMap::new();
    for img in r.bundle_manifest().unwrap().images {
        for t in std::iter::once(&img.target).chain(&img.alt_targets) {
            let rf = Reference::parse(&format!("{host}/{t}")).unwrap();
            let (d, _, _) = c
                .head_manifest(&rf)
                .unwrap()
                .unwrap_or_else(|| panic!("{rf} is missing"));
            out.insert(t.clone(), d);
        }
    }
    out
}

#[test]
fn r5_split_parts_concatenate_to_the_bundle_and_unpack_the_same() {
    let sp = split_pack();
    let parts = sp.parts();
    assert!(parts.len() >= 3, "{parts:?}");
    let mut joined = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let data = std::fs::read(p).unwrap();
        if i + 1 < parts.len() {
            assert_eq!(data.len() as u64, sp.split, "{}", p.display());
        } else {
            assert!(data.len() as u64 <= sp.split && !data.is_empty());
        }
        joined.extend(data);
    }
    assert!(
        joined == std::fs::read(&sp.one).unwrap(),
        "the parts concatenated are the unsplit bundle"
    );
    // Only the parts, their checksums and their layout: no temporary file is left.
    let mut names: Vec<String> = std::fs::read_dir(sp.base.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = (0..parts.len())
        .map(|i| format!("bundle.tar.zst.{i:03}"))
        .collect();
    want.extend([
        "bundle.tar.zst.parts.json".into(),
        "bundle.tar.zst.sha256".into(),
    ]);
    want.sort();
    assert_eq!(names, want);
    // sha256sum -c reads the sidecar: one line per part.
    let o = Command::new("sha256sum")
        .args(["-c", "bundle.tar.zst.sha256"])
        .current_dir(sp.base.parent().unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).matches(": OK").count(),
        parts.len()
    );
    // verify and inspect from the first part and from the base name.
    for arg in [&parts[0], &sp.base] {
        let o = airlock(&["verify", arg.to_str().unwrap()]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        assert!(
            stdout(&o).contains("OK: 17 images, 57 blobs"),
            "{}",
            stdout(&o)
        );
        let o = airlock(&["inspect", arg.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains("17 images"), "{}", stdout(&o));
    }
    // Unpack from the parts and from the single file: the same digests at every target.
    let (a, b) = (Registry::start(), Registry::start());
    let o = run(&["unpack".into(), s(&parts[0]), "--registry".into(), a.url()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let o = run(&["unpack".into(), s(&sp.one), "--registry".into(), b.url()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let (da, db) = (target_digests(&sp.base, &a), target_digests(&sp.one, &b));
    assert_eq!(da.len(), 18, "17 images, pause at two paths");
    assert_eq!(da, db);
    assert_eq!(stored_blobs(&a), stored_blobs(&b));
}

#[test]
fn r5_a_flipped_byte_fails_sha256sum_and_verify_names_the_part() {
    let sp = split_pack();
    let p1 = parts::part_path(&sp.base, 1);
    let mut data = std::fs::read(&p1).unwrap();
    let i = data.len() / 2;
    data[i] ^= 0x55;
    std::fs::write(&p1, &data).unwrap();
    let o = Command::new("sha256sum")
        .args(["-c", "bundle.tar.zst.sha256"])
        .current_dir(sp.base.parent().unwrap())
        .output()
        .unwrap();
    // sha256sum exits 1 when a file does not match.
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("bundle.tar.zst.001: FAILED"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = airlock(&["verify", parts::part_path(&sp.base, 0).to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("file bundle.tar.zst.001: its sha256 is"),
        "{}",
        stderr(&o)
    );
    assert!(!stderr(&o).contains("bundle.tar.zst.002"), "{}", stderr(&o));
    // The JSON report names it too.
    let o = airlock(&["verify", "--output", "json", sp.base.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "file" && p["subject"] == "bundle.tar.zst.001"),
        "{v}"
    );
}

/// Copies the parts and their layout into a fresh directory for one damage scenario.
fn copy_parts(sp: &Split, name: &str) -> PathBuf {
    let dir = sp.dir.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    for e in std::fs::read_dir(sp.base.parent().unwrap()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dir.join(e.file_name())).unwrap();
    }
    dir.join("bundle.tar.zst")
}

#[test]
fn r5_missing_swapped_short_or_stale_parts_are_refused_before_any_push() {
    let sp = split_pack();
    let n = sp.parts().len();
    let target = Registry::start();
    type Damage = Box<dyn Fn(&Path)>;
    let scenarios: Vec<(&str, Damage, Vec<String>)> = vec![
        (
            "missing",
            Box::new(|b: &Path| std::fs::remove_file(parts::part_path(b, 1)).unwrap()),
            vec!["part ".into(), "bundle.tar.zst.001 is missing".into()],
        ),
        (
            "swapped",
            Box::new(|b: &Path| {
                let (p1, p2, t) = (
                    parts::part_path(b, 1),
                    parts::part_path(b, 2),
                    b.with_file_name("tmp"),
                );
                std::fs::rename(&p1, &t).unwrap();
                std::fs::rename(&p2, &p1).unwrap();
                std::fs::rename(&t, &p2).unwrap();
            }),
            vec!["bundle.tar.zst.001 does not start with the bytes recorded for part 1".into()],
        ),
        (
            "short",
            Box::new(|b: &Path| {
                let p = parts::part_path(b, 1);
                let d = std::fs::read(&p).unwrap();
                std::fs::write(&p, &d[..d.len() - 10]).unwrap();
            }),
            vec![
                "bundle.tar.zst.001 is cut short: cut at ".into(),
                "bytes (the size ".into(),
            ],
        ),
        (
            "stale",
            Box::new(move |b: &Path| {
                std::fs::copy(parts::part_path(b, 0), parts::part_path(b, n)).unwrap();
            }),
            vec![format!("bundle.tar.zst.{n:03} is not listed in")],
        ),
    ];
    for (name, damage, want) in &scenarios {
        let base = copy_parts(&sp, name);
        damage(&base);
        for args in [
            vec![
                "unpack".to_string(),
                s(&parts::part_path(&base, 0)),
                "--registry".into(),
                target.url(),
            ],
            vec!["unpack".into(), s(&base), "--registry".into(), target.url()],
            vec!["verify".into(), s(&base)],
        ] {
            let o = run(&args);
            assert_eq!(o.status.code(), Some(1), "{name} {args:?}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(
                want.iter().all(|w| err.contains(w.as_str())),
                "{name} {args:?}: expected {want:?} in:\n{err}"
            );
        }
        assert_eq!(stored_blobs(&target), 0, "{name}: nothing was pushed");
    }
    // A later part given instead of the first is refused too, naming the rule.
    let o = airlock(&["verify", parts::part_path(&sp.base, 1).to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("give the first part (.000)"),
        "{}",
        stderr(&o)
    );
}

const BASE_SET: [&str; 2] = ["docker.io/rancher/app-a:v1", "docker.io/rancher/app-b:v1"];
const UPDATE_SET: [&str; 3] = [
    "docker.io/rancher/app-a:v2",
    "docker.io/rancher/app-b:v1",
    "docker.io/rancher/app-c:v2",
];

/// An upstream registry holding a release and its update (they share the base layer and one
/// image), with the image lists of both.
struct Releases {
    upstream: Registry,
    dir: tempfile::TempDir,
    base_fixtures: Vec<Fixture>,
    update_fixtures: Vec<Fixture>,
}

impl Releases {
    fn start() -> Releases {
        let upstream = Registry::start();
        let base_fixtures = fixtures::generic(&BASE_SET, SEED, SCALE * 10.0);
        let update_fixtures = fixtures::generic(&UPDATE_SET, SEED, SCALE * 10.0);
        let all: Vec<&Fixture> = base_fixtures.iter().chain(&update_fixtures).collect();
        seed(&upstream, &all);
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.txt"), BASE_SET.join("\n")).unwrap();
        std::fs::write(dir.path().join("update.txt"), UPDATE_SET.join("\n")).unwrap();
        Releases {
            upstream,
            dir,
            base_fixtures,
            update_fixtures,
        }
    }

    fn pack(&self, list: &str, out: &str, extra: &[String]) -> (PathBuf, std::process::Output) {
        let out = self.dir.path().join(out);
        let mut args = vec![
            "pack".to_string(),
            "--images".into(),
            s(&self.dir.path().join(list)),
            "-o".into(),
            s(&out),
            "--cache".into(),
            s(&self.dir.path().join("cache")),
            "--mirror".into(),
            format!("docker.io={}", self.upstream.url()),
        ];
        args.extend(extra.iter().cloned());
        let o = run(&args);
        (out, o)
    }

    /// Configs and layers of a fixture set.
    fn blobs(set: &[Fixture]) -> BTreeSet<Digest> {
        set.iter()
            .flat_map(|f| f.artifact.images())
            .flat_map(|i| std::iter::once(&i.config).chain(&i.layers))
            .map(|b| b.digest.clone())
            .collect()
    }
}

#[test]
fn r5_a_delta_bundle_holds_only_new_blobs_and_needs_its_base_in_the_target() {
    let rel = Releases::start();
    let (base, o) = rel.pack("base.txt", "base.tar.zst", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (delta, o) = rel.pack("update.txt", "delta.tar.zst", &["--base".into(), s(&base)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("delta bundle: 3 blobs"),
        "{}",
        stderr(&o)
    );

    // Exactly the new configs and layers, and every manifest.
    let old = Releases::blobs(&rel.base_fixtures);
    let new = Releases::blobs(&rel.update_fixtures);
    let in_delta = blob_entries(&delta);
    let manifests: BTreeSet<Digest> = rel
        .update_fixtures
        .iter()
        .map(|f| f.artifact.digest().clone())
        .collect();
    let expected: BTreeSet<Digest> = new.difference(&old).cloned().chain(manifests).collect();
    assert_eq!(in_delta, expected);
    let m = BundleReader::open(&delta)
        .unwrap()
        .bundle_manifest()
        .unwrap();
    let b = m.base.as_ref().unwrap();
    let base_json = BundleReader::open(&base)
        .unwrap()
        .read_small("bundle.json", 1 << 20)
        .unwrap();
    assert_eq!(b.bundle_json_sha256, Some(Digest::of(&base_json)));
    let omitted: BTreeSet<Digest> = b.omitted_blobs.iter().map(|o| o.digest.clone()).collect();
    assert_eq!(omitted, new.intersection(&old).cloned().collect());
    // verify accepts it and says what is omitted.
    let o = airlock(&["verify", delta.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("3 blobs"), "{}", stdout(&o));
    assert!(stdout(&o).contains("omitted"), "{}", stdout(&o));

    // An empty registry lacks the base: refused with the list, nothing pushed.
    let empty = Registry::start();
    let o = run(&["unpack".into(), s(&delta), "--registry".into(), empty.url()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("lacks 3 blobs"), "{err}");
    for d in &omitted {
        assert!(err.contains(&d.to_string()), "{d} listed: {err}");
    }
    assert_eq!(stored_blobs(&empty), 0);

    // Onto a registry with the base: every image complete, the shared base layer mounted
    // into the new repository.
    let target = Registry::start();
    let o = run(&["unpack".into(), s(&base), "--registry".into(), target.url()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run(&[
        "unpack".into(),
        s(&delta),
        "--registry".into(),
        target.url(),
        "--output".into(),
        "json".into(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["blobsMounted"].as_u64().unwrap() >= 1, "{v}");
    let c = client_for(&target);
    for f in &rel.update_fixtures {
        let image = in_registry(&target.host(), f);
        let (d, n) = pull_everything(&c, &image);
        assert_eq!(&d, f.artifact.digest(), "{image}");
        assert_eq!(n, 3, "{image}: config and two layers");
    }
}

#[test]
fn r5_inventory_round_trip_gives_a_delta_without_the_blobs_present() {
    let rel = Releases::start();
    let target = Registry::start();
    let base: Vec<&Fixture> = rel.base_fixtures.iter().collect();
    seed(&target, &base);
    // The catalog is paginated: a page of one still finds both repositories.
    let c = client_for(&target);
    assert_eq!(
        c.catalog(&target.host(), 1).unwrap(),
        ["rancher/app-a", "rancher/app-b"]
    );
    let o = airlock(&["inventory", "--registry", &target.url()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let inv_file = rel.dir.path().join("inventory.json");
    std::fs::write(&inv_file, &o.stdout).unwrap();
    let inv: airlock::inventory::Inventory = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(inv.repositories.len(), 2);
    assert_eq!(inv.repositories[0].tags[0].tag, "v1");
    let old = Releases::blobs(&rel.base_fixtures);
    assert_eq!(inv.blobs().keys().cloned().collect::<BTreeSet<_>>(), old);

    let (delta, o) = rel.pack(
        "update.txt",
        "delta.tar.zst",
        &["--base-registry-inventory".into(), s(&inv_file)],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let m = BundleReader::open(&delta)
        .unwrap()
        .bundle_manifest()
        .unwrap();
    let b = m.base.unwrap();
    assert_eq!(b.inventory.as_ref().unwrap().registry, target.host());
    let omitted: BTreeSet<Digest> = b.omitted_blobs.iter().map(|o| o.digest.clone()).collect();
    let new = Releases::blobs(&rel.update_fixtures);
    assert_eq!(omitted, new.intersection(&old).cloned().collect());
    assert!(blob_entries(&delta).is_disjoint(&omitted));
    let o = run(&[
        "unpack".into(),
        s(&delta),
        "--registry".into(),
        target.url(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    for f in &rel.update_fixtures {
        let (d, _) = pull_everything(&c, &in_registry(&target.host(), f));
        assert_eq!(&d, f.artifact.digest());
    }
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("running mount");
        assert!(
            o.status.success(),
            "this test mounts a small tmpfs and needs root (mount -t tmpfs): {}",
            String::from_utf8_lossy(&o.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn files(&self) -> Vec<String> {
        std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn r5_the_free_space_check_refuses_and_a_full_disk_leaves_nothing() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let small = Tmpfs::mount("256k");
    let out = small.path().join("bundle.tar.zst");
    // The estimate is checked before anything is written.
    let o = pack_17(&up, &out, &cache, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "not enough space on the file system of {}",
            small.path().display()
        )) && err.contains("needs about")
            && err.contains("are available"),
        "{err}"
    );
    assert!(small.files().is_empty(), "{:?}", small.files());
    // With the estimate bypassed, the disk fills up while writing: a clear error, and nothing
    // under the final name (nor a temporary file), whole or split.
    for extra in [vec![], vec!["--split", "100000"]] {
        let mut args: Vec<String> = vec!["pack".into()];
        args.extend(crate::pack::SELECT_17.iter().map(|s| s.to_string()));
        args.extend(["-o".into(), s(&out), "--cache".into(), s(&cache)]);
        args.extend(up.mirror_args());
        args.extend(extra.iter().map(|s| s.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = airlock_with(&refs, None, &[("AIRLOCK_TEST_FREE_BYTES", "1000000000000")]);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!(
                "no space left on the file system of {}",
                small.path().display()
            )),
            "{extra:?}: {}",
            stderr(&o)
        );
        assert!(small.files().is_empty(), "{extra:?}: {:?}", small.files());
    }
}

#[test]
fn r14_a_registry_that_denies_its_catalog_is_said_to_in_a_delta_unpack() {
    // The delta's omitted blobs are only in repositories the delta does not name (its base was
    // unpacked under another --prefix), so unpack must list the registry's repositories to
    // find them. A registry that refuses the listing used to look like one without the blobs
    // (the error was dropped: unwrap_or_default); it is now said.
    let rel = Releases::start();
    let (base, o) = rel.pack("base.txt", "base.tar.zst", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (delta, o) = rel.pack("update.txt", "delta.tar.zst", &["--base".into(), s(&base)]);
    assert!(o.status.success(), "{}", stderr(&o));
    for deny in [false, true] {
        let reg = crate::harness::registry::RegistryBuilder::new()
            .token_auth(crate::harness::token::TokenPolicy {
                deny_catalog: deny,
                ..crate::harness::token::TokenPolicy::new("ops", "pw")
            })
            .start();
        let unpack = |bundle: &Path, prefix: &str| {
            airlock_with(
                &[
                    "unpack",
                    bundle.to_str().unwrap(),
                    "--registry",
                    &reg.url(),
                    "--prefix",
                    prefix,
                    "--username",
                    "ops",
                    "--password-stdin",
                ],
                Some(b"pw"),
                &[],
            )
        };
        let o = unpack(&base, "old/");
        assert!(o.status.success(), "{}", stderr(&o));
        let o = unpack(&delta, "");
        if deny {
            assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
            let err = stderr(&o);
            assert!(err.contains("lacks 3 blobs"), "{err}");
            assert!(
                err.contains("refused to list its other repositories") && err.contains("_catalog"),
                "{err}"
            );
        } else {
            // The control: with the listing allowed, the blobs are found and mounted.
            assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
        }
    }
}
