//! Shared helpers for the suites: fixture images, seeding registries, running the binary.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use airlock::digest::{Digest, VerifyingReader};
use airlock::fixtures::{self, Fixture};
use airlock::manifest::{self, Parsed};
use airlock::reference::Reference;
use airlock::registry::{Client, Options};

use crate::harness::Registry;

/// Seed and scale of the test image set: small, but real gzip layers.
pub const SEED: u64 = 1;
pub const SCALE: f64 = 0.002;

/// The Rancher 1.6.14 fixture images (17), generated once per test binary.
pub fn rancher_fixtures() -> &'static [Fixture] {
    static F: OnceLock<Vec<Fixture>> = OnceLock::new();
    F.get_or_init(|| fixtures::rancher_1_6_14(SEED, SCALE))
}

/// The fixture with this full source name.
pub fn fixture(name: &str) -> &'static Fixture {
    rancher_fixtures()
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no fixture named {name}"))
}

/// A pin table (`--pins`) giving the fixture digests for the references airlock's built-in
/// table pins: the fixtures are not the upstream images, so the real pins would (rightly)
/// refuse them. Written once per test run.
pub fn fixture_pins() -> &'static str {
    static P: OnceLock<String> = OnceLock::new();
    P.get_or_init(|| {
        let text = fixtures::pin_table(rancher_fixtures(), true);
        // Under Cargo's scratch directory for integration tests (not /tmp, where one file per
        // run would stay behind); written under a private name and renamed, as test binaries
        // may run side by side (the content is always the same).
        let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
        let path = dir.join("fixture-pins.txt");
        let tmp = dir.join(format!(".fixture-pins.txt.{}", std::process::id()));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path.display().to_string()
    })
}

/// The flags every pack of the 2018-shaped fixture set takes: the fixture pin table, and
/// `--keep-digests`, so its OCI-typed images are carried byte for byte as before conversions
/// existed (the conversions have tests of their own, against today's shapes).
pub fn fixture_pack_args() -> Vec<String> {
    vec![
        "--pins".into(),
        fixture_pins().to_string(),
        "--keep-digests".into(),
    ]
}

pub const PAUSE: &str = "gcr.io/google_containers/pause-amd64:3.0";
pub const BUSYBOX: &str = "docker.io/library/busybox:latest";
pub const KUBE_AUTH: &str = "docker.io/rancher/kubernetes-auth:v0.0.8";

/// Pushes fixtures into a plain-http registry at their upstream repository paths, over raw
/// HTTP (not airlock's push code).
pub fn seed(reg: &Registry, fixtures: &[&Fixture]) {
    seed_with(reg, fixtures, None, None)
}

/// Like [`seed`], with an Authorization header and, for TLS, the CA to trust.
pub fn seed_with(
    reg: &Registry,
    fixtures: &[&Fixture],
    authorization: Option<&str>,
    ca_pem: Option<&str>,
) {
    let mut tls = ureq::tls::TlsConfig::builder();
    if let Some(pem) = ca_pem {
        let cert = ureq::tls::Certificate::from_pem(pem.as_bytes()).expect("CA PEM");
        tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]));
    }
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .build(),
    );
    for f in fixtures {
        let (_, repo, tag) = fixtures::upstream_path(&f.name);
        fixtures::push_raw_with(&agent, &reg.url(), authorization, &repo, &tag, &f.artifact)
            .unwrap_or_else(|e| {
                panic!(
                    "seeding {} into {}: {e:#}\n{}",
                    f.name,
                    reg.url(),
                    reg.log()
                )
            });
    }
}

/// Client options with fast retries, as ggcr's tests do.
pub fn fast_options() -> Options {
    let mut o = Options::default();
    o.retry.base = Duration::from_millis(2);
    o.retry.max = Duration::from_millis(20);
    o.io_timeout = Duration::from_secs(20);
    o
}

/// The reference of a fixture inside a test registry: `127.0.0.1:PORT/<repo>:<tag>`.
pub fn in_registry(host: &str, f: &Fixture) -> Reference {
    let (_, repo, tag) = fixtures::upstream_path(&f.name);
    Reference::parse(&format!("{host}/{repo}:{tag}")).unwrap()
}

/// Pulls an image completely (index children, config, layers), verifying every byte, and
/// returns the top digest and how many blobs were read.
pub fn pull_everything(client: &Client, image: &Reference) -> (Digest, usize) {
    let top = client
        .get_manifest(image)
        .unwrap_or_else(|e| panic!("manifest of {image}: {e}"));
    let mut blobs = 0;
    let mut docs = vec![(top.digest.clone(), top.media_type.clone(), top.raw.clone())];
    while let Some((digest, mt, raw)) = docs.pop() {
        match manifest::parse(&digest.to_string(), &mt, &raw).unwrap() {
            Parsed::Index(children) => {
                for c in children {
                    let m = client
                        .get_manifest(&image.with_digest(c.blob.digest.clone()))
                        .unwrap();
                    assert_eq!(m.raw.len() as u64, c.blob.size);
                    docs.push((m.digest, m.media_type, m.raw));
                }
            }
            p => {
                for b in p.blobs() {
                    let s = client
                        .get_blob(image.registry(), image.repository(), &b.digest)
                        .unwrap_or_else(|e| panic!("blob {} of {image}: {e}", b.digest));
                    let mut r = VerifyingReader::new(s.reader, b.digest.clone(), b.size);
                    std::io::copy(&mut r, &mut std::io::sink())
                        .unwrap_or_else(|e| panic!("blob {} of {image}: {e}", b.digest));
                    blobs += 1;
                }
            }
        }
    }
    (top.digest, blobs)
}

/// Runs the airlock binary.
pub fn airlock(args: &[&str]) -> Output {
    airlock_with(args, None, &[])
}

/// `airlock pack --images LIST -o out` and `args`, the list of `images` written beside `out`.
pub fn pack_images(images: &[&str], out: &std::path::Path, args: &[&str]) -> Output {
    let list = out.with_extension("images.txt");
    std::fs::write(&list, images.join("\n") + "\n").unwrap();
    let mut all = vec![
        "pack",
        "--images",
        list.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    airlock(&all)
}

/// Runs the airlock binary with standard input and extra environment.
pub fn airlock_with(args: &[&str], stdin: Option<&[u8]>, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.args(args)
        .env("AIRLOCK_RETRY_BASE_MS", "2")
        .env("HOME", std::env::temp_dir().join("airlock-test-home"))
        .env_remove("DOCKER_CONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("running airlock");
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// The run failed with exit code `code` (a documented one: 1 failed, 2 usage, 3 partial), not
/// with a panic (101) or a signal.
pub fn assert_exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "exit code\n{}{}",
        stdout(o),
        stderr(o)
    );
    assert!(
        !stderr(o).contains("panicked"),
        "airlock panicked\n{}",
        stderr(o)
    );
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Reads a whole stream, for tests.
pub fn read_all(mut r: impl Read) -> Vec<u8> {
    let mut v = Vec::new();
    r.read_to_end(&mut v).unwrap();
    v
}

/// Every image of `bundle` is at each of its targets under `reg` (and `prefix`, e.g. `a/`),
/// with the bundle's digest, checked by HEAD through airlock's own client.
pub fn assert_targets(bundle: &std::path::Path, reg: &Registry, prefix: &str) {
    let m = airlock::bundle::reader::BundleReader::open(bundle)
        .unwrap()
        .bundle_manifest()
        .unwrap();
    let mut o = fast_options();
    o.endpoints.push((
        reg.host(),
        airlock::registry::Endpoint::parse(&reg.url()).unwrap(),
    ));
    let client = Client::new(o).unwrap();
    for img in &m.images {
        for t in std::iter::once(&img.target).chain(&img.alt_targets) {
            let r = Reference::parse(&format!("{}/{prefix}{t}", reg.host())).unwrap();
            let (d, _, _) = client
                .head_manifest(&r)
                .unwrap()
                .unwrap_or_else(|| panic!("{r} missing"));
            assert_eq!(d, img.digest, "{r}");
        }
    }
}

/// `airlock pack --version VERSION` through the stand-ins of today's internet (only `--mirror`
/// rules, and the fixtures' pin table), with the cache `cache` (`None`: `--no-cache`).
pub fn pack_today(
    t: &crate::harness::upstreams::Today,
    version: &str,
    out: &std::path::Path,
    cache: Option<&std::path::Path>,
    extra: &[&str],
) -> Output {
    let mut args: Vec<String> = vec![
        "pack".into(),
        "--version".into(),
        version.into(),
        "-o".into(),
        out.display().to_string(),
        "--pins".into(),
        t.pins_file().display().to_string(),
    ];
    match cache {
        Some(c) => args.extend(["--cache".into(), c.display().to_string()]),
        None => args.push("--no-cache".into()),
    }
    args.extend(t.mirror_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    airlock(&refs)
}

/// A bundle's `bundle.json`, read through its seek table.
pub fn manifest_of(bundle: &std::path::Path) -> airlock::bundle::format::BundleManifest {
    airlock::bundle::reader::BundleReader::open(bundle)
        .unwrap()
        .bundle_manifest()
        .unwrap()
}

/// The digests of a bundle's blob entries (its parts read in place).
pub fn blob_entries(bundle: &std::path::Path) -> std::collections::BTreeSet<Digest> {
    let (r, _) = airlock::parts::open_bundle(bundle).unwrap();
    r.entries()
        .iter()
        .filter_map(|e| e.name.strip_prefix("blobs/sha256/"))
        .map(|h| Digest::parse(&format!("sha256:{h}")).unwrap())
        .collect()
}

/// A bundle of the pause fixture, packed from a plain-http registry started for it (and
/// stopped again), written into `dir`: listed by its public name, with `--mirror`.
pub fn pause_bundle(dir: &std::path::Path) -> std::path::PathBuf {
    pack_pause(dir, false)
}

/// The same, listed by the registry's own `HOST:PORT` name with `--insecure`, the cache in
/// `dir/cache` named by AIRLOCK_CACHE_DIR.
pub fn small_bundle(dir: &std::path::Path) -> std::path::PathBuf {
    pack_pause(dir, true)
}

/// Packs the pause fixture from a registry started for it: by `HOST:PORT` name with
/// `--insecure` and the cache from AIRLOCK_CACHE_DIR, or by its public name with `--mirror`.
fn pack_pause(dir: &std::path::Path, host_port: bool) -> std::path::PathBuf {
    let up = Registry::start();
    seed(&up, &[fixture(PAUSE)]);
    let image = if host_port {
        format!("{}/google_containers/pause-amd64:3.0", up.host())
    } else {
        PAUSE.to_string()
    };
    let list = dir.join("pause.images.txt");
    std::fs::write(&list, format!("{image}\n")).unwrap();
    let bundle = dir.join("pause.tar.zst");
    let cache = dir.join("cache");
    let mirror = format!("gcr.io={}", up.url());
    let mut args = vec![
        "pack",
        "--images",
        list.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ];
    let mut env = vec![];
    if host_port {
        args.push("--insecure");
        env.push(("AIRLOCK_CACHE_DIR", cache.to_str().unwrap()));
    } else {
        args.extend(["--cache", cache.to_str().unwrap(), "--mirror", &mirror]);
    }
    // The fixture is not upstream's pause (issue 12's pins).
    let fixture_args = fixture_pack_args();
    args.extend(fixture_args.iter().map(String::as_str));
    let o = airlock_with(&args, None, &env);
    assert_exit(&o, 0);
    assert!(cache.is_dir(), "the cache is where it was named");
    bundle
}

/// `n` incompressible bytes, the same every run (xorshift).
pub fn noise(n: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
