//! Hostile bundles (issues 7 and 14): every case is built byte by byte by [`crate::rawbundle`]
//! and run through `airlock verify` AND `airlock unpack --registry <fresh real registry>`, three
//! ways ([`Case`]): the seekable file as `pack` writes it, the same tar recompressed with plain
//! zstd as a file (no seek table: read in order), and that stream through standard input
//! (`-`). Every way must give the same verdict: the same exit codes, the same error text, the
//! same images pushed. Each run must
//! - fail with exit code 1 and an error naming the part, entry, blob or image;
//! - write no file (the child runs with an empty temp cwd and HOME; the sandbox is listed
//!   before and after);
//! - push no manifest for an affected image (the registry's catalog or the image's tag);
//! - send no request to any host but `--registry` (a [`FakeServer`] stands in for every other
//!   host, as the HTTP(S) proxy of the child, and must see zero requests);
//! - stay under [`MAX_RSS_KB`] of peak RSS (`/usr/bin/time -f %M`) and [`TIMEOUT`].
//!
//! Valid but unusual bundles must unpack with exact digests (checked with skopeo), every way.
//! Cases about the zstd container itself (frames, seek table) have no tar of their own to
//! recompress: they run as the file and through `-`, and where one damaged frame takes only
//! one image down through the seek table, through the table only (a stream cannot skip a
//! damaged frame).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock::digest::Digest;
use airlock::media_type;
use serde_json::{json, Value};

use crate::harness::fake::{FakeServer, Reply};
use crate::harness::{http, require_tool, Registry};
use crate::rawbundle::*;

/// Peak RSS allowed to one airlock run. A hostile frame may cost one 64 MiB frame buffer per
/// thread; a good bundle costs a few 4 MiB frames per thread.
const MAX_RSS_KB: u64 = 400 << 10;
/// Wall time allowed to one airlock run (a debug build).
const TIMEOUT: Duration = Duration::from_secs(90);

/// Runs a case every way, each in its own sandbox.
trait InSandboxes {
    fn in_sandboxes<V: PartialEq + std::fmt::Debug + Send>(
        &self,
        f: impl Fn(Way, &Sandbox) -> V + Sync,
    );
}

impl InSandboxes for Case {
    fn in_sandboxes<V: PartialEq + std::fmt::Debug + Send>(
        &self,
        f: impl Fn(Way, &Sandbox) -> V + Sync,
    ) {
        self.each(|way, bytes| f(way, &Sandbox::new(bytes, way)));
    }
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    out: String,
    max_rss_kb: u64,
    elapsed: Duration,
}

/// An empty directory tree for one way of a case: `in/` holds the bundle, `cwd/` and `home/`
/// are the child's working directory and HOME.
struct Sandbox {
    dir: tempfile::TempDir,
    way: Way,
}

impl Sandbox {
    fn new(bundle: &[u8], way: Way) -> Sandbox {
        let dir = tempfile::Builder::new()
            .prefix("airlock-hostile")
            .tempdir()
            .unwrap();
        for d in ["in", "cwd", "home", "tmp"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("in/bundle.tar.zst"), bundle).unwrap();
        Sandbox { dir, way }
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("in/bundle.tar.zst")
    }

    /// The bundle argument of this way: its file, or `-`.
    fn arg(&self) -> String {
        match self.way {
            Way::Stdin => "-".into(),
            Way::Seekable | Way::Plain => self.bundle().to_str().unwrap().into(),
        }
    }

    /// `needles`, but what only a file has: its name, and a seek table to miss.
    fn needles<'a>(&self, needles: &[&'a str]) -> Vec<&'a str> {
        let file_only = [
            "bundle.tar.zst",
            "is cut short: its ",
            "bytes appended after its end",
        ];
        needles
            .iter()
            .copied()
            .filter(|n| self.way != Way::Stdin || !file_only.contains(n))
            .collect()
    }

    /// `verify`, then `unpack` into a fresh registry: both fail (exit 1, no panic) naming
    /// their needles. The runs, the registry and the other host they were given.
    fn both_fail(
        &self,
        verify_needles: &[&str],
        unpack_needles: &[&str],
    ) -> (Run, Run, Registry, FakeServer) {
        let other = other_host();
        let way = self.way;
        let v = self.run("verify", &[], &other);
        must_name(
            &v,
            &format!("verify ({way:?})"),
            &self.needles(verify_needles),
        );
        // A registry that stores schema 1 too, so that what fails is the bundle, however
        // late a reader learns it (standard input learns a layer's size only at the layer).
        let reg = crate::harness::RegistryBuilder::new().schema1().start();
        let u = self.run("unpack", &["--registry", &reg.url()], &other);
        must_name(
            &u,
            &format!("unpack ({way:?})"),
            &self.needles(unpack_needles),
        );
        (v, u, reg, other)
    }

    /// Every path under the sandbox.
    fn files(&self) -> BTreeSet<PathBuf> {
        let mut out = BTreeSet::new();
        let mut stack = vec![self.dir.path().to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p.clone());
                }
                out.insert(p.strip_prefix(self.dir.path()).unwrap().to_path_buf());
            }
        }
        out
    }

    /// Runs `airlock CMD <bundle> rest..` in the sandbox under `/usr/bin/time`, with every
    /// proxy variable pointing at `other_host`, so a request to any host but 127.0.0.1 lands
    /// there.
    fn run(&self, cmd: &str, rest: &[&str], other_host: &FakeServer) -> Run {
        let mut args = vec![cmd.to_string(), self.arg()];
        args.extend(rest.iter().map(|s| s.to_string()));
        self.run_args(&args, other_host)
    }

    fn run_args(&self, args: &[String], other_host: &FakeServer) -> Run {
        require_tool("/usr/bin/time", "time");
        let rss_file = self.dir.path().join("tmp/rss");
        let before = self.files();
        let started = Instant::now();
        let mut cmd = Command::new("/usr/bin/time");
        cmd.arg("-f")
            .arg("%M")
            .arg("-o")
            .arg(&rss_file)
            .arg(env!("CARGO_BIN_EXE_airlock"))
            .args(args)
            .current_dir(self.dir.path().join("cwd"))
            .env("HOME", self.dir.path().join("home"))
            .env("TMPDIR", self.dir.path().join("tmp"))
            .env("AIRLOCK_RETRY_BASE_MS", "2")
            .env_remove("DOCKER_CONFIG")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(match self.way {
                Way::Stdin => Stdio::from(std::fs::File::open(self.bundle()).unwrap()),
                Way::Seekable | Way::Plain => Stdio::null(),
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for k in [
            "http_proxy",
            "https_proxy",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
        ] {
            cmd.env(k, other_host.url());
        }
        cmd.env("NO_PROXY", "127.0.0.1")
            .env("no_proxy", "127.0.0.1");
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("running airlock under /usr/bin/time");
        let pid = child.id();
        // Read the pipes on threads so a chatty child cannot block on a full pipe.
        let mut so = child.stdout.take().unwrap();
        let mut se = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || crate::support::read_all(&mut so));
        let t_err = std::thread::spawn(move || crate::support::read_all(&mut se));
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if started.elapsed() > TIMEOUT {
                let _ = Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{pid}")])
                    .status();
                let _ = child.wait();
                panic!("airlock {args:?} ran longer than {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let elapsed = started.elapsed();
        let out = format!(
            "{}{}",
            String::from_utf8_lossy(&t_out.join().unwrap()),
            String::from_utf8_lossy(&t_err.join().unwrap())
        );
        let rss = std::fs::read_to_string(&rss_file).unwrap_or_default();
        let max_rss_kb = rss
            .lines()
            .last()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or_else(|| panic!("no RSS from /usr/bin/time: {rss:?}\n{out}"));
        std::fs::remove_file(&rss_file).unwrap();
        // `time` exits with the child's code (or 128+signal).
        let code = status.code();
        let after = self.files();
        let new: Vec<_> = after.difference(&before).collect();
        assert!(new.is_empty(), "airlock {args:?} wrote {new:?}\n{out}");
        assert!(
            max_rss_kb < MAX_RSS_KB,
            "airlock {args:?} peaked at {max_rss_kb} kB\n{out}"
        );
        // Text from the bundle is escaped before it reaches a terminal.
        assert!(
            !out.contains('\u{1b}'),
            "airlock {args:?} printed an escape character\n{out}"
        );
        Run {
            code,
            out,
            max_rss_kb,
            elapsed,
        }
    }
}

/// The repositories a registry holds.
fn catalog(reg: &Registry) -> Vec<String> {
    let r = http::get(&format!("{}/v2/_catalog", reg.url()), &[]);
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    v["repositories"]
        .as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// The digest a registry serves for `repo:tag`, if any.
fn tag_digest(reg: &Registry, target: &str) -> Option<String> {
    let (repo, tag) = target.rsplit_once(':').unwrap();
    let accept = media_type::MANIFEST_ACCEPT;
    let r = http::send(
        "HEAD",
        &format!("{}/v2/{repo}/manifests/{tag}", reg.url()),
        &[("Accept", accept)],
        b"",
    );
    (r.status == 200).then(|| r.header("Docker-Content-Digest").unwrap().to_string())
}

/// The other host: answers everything with 404 and records it.
fn other_host() -> FakeServer {
    FakeServer::start(|_| Reply::new(404))
}

fn must_name(run: &Run, what: &str, needles: &[&str]) {
    // An unpack that pushed the other images is a partial success, exit 3 (issue 15).
    let partial = run.out.lines().any(|l| l.starts_with("pushed "));
    let code = if partial { 3 } else { 1 };
    assert_eq!(run.code, Some(code), "{what}: exit code\n{}", run.out);
    for n in needles {
        assert!(run.out.contains(n), "{what}: no {n:?} in:\n{}", run.out);
    }
    assert!(
        !run.out.contains("panicked"),
        "{what}: airlock panicked\n{}",
        run.out
    );
}

/// The images of the base bundle the registry serves under their targets, with the bundle's
/// digests.
fn pushed_images(reg: &Registry) -> BTreeSet<String> {
    Model::base()
        .bundle_manifest()
        .images
        .iter()
        .filter(|rec| tag_digest(reg, &rec.target) == Some(rec.digest.to_string()))
        .map(|rec| rec.source.clone())
        .collect()
}

/// A bundle refused as a whole, every way: verify and unpack both fail naming `needles`, and
/// no image reaches the registry, nor anything any other host. Read from a file, no blob is
/// sent either: the whole file is checked first. (Standard input, read once, may have sent
/// the blobs that came before the damage: never a manifest.)
fn refused(case: Case, needles: &[&str]) {
    case.in_sandboxes(|way, sb| {
        let (v, u, reg, other) = sb.both_fail(needles, needles);
        assert!(pushed_images(&reg).is_empty(), "{way:?}: {}", u.out);
        if way != Way::Stdin {
            assert_eq!(catalog(&reg), Vec::<String>::new(), "{}", u.out);
            assert!(
                !reg.storage_dir().join("docker/registry/v2/blobs").exists(),
                "{way:?}: a blob reached the registry\n{}",
                u.out
            );
        }
        assert!(other.requests().is_empty(), "{:?}", other.requests());
        eprintln!(
            "{way:?}: verify: {} kB {:?}; unpack: {} kB {:?}",
            v.max_rss_kb, v.elapsed, u.max_rss_kb, u.elapsed
        );
        (v.code, u.code)
    });
}

/// A bundle where only `image` is damaged, in its blob `damaged`: every way, verify fails
/// naming `needles`; unpack fails, does not push `image` (no tag, no manifest by digest, and
/// the damaged blob nowhere in the registry's storage), and pushes the others exactly.
fn refused_image(case: Case, image: &str, damaged: &Digest, needles: &[&str]) {
    case.in_sandboxes(|way, sb| {
        let (v, u, reg, other) = sb.both_fail(needles, &[image]);
        let m = Model::base().bundle_manifest();
        for rec in &m.images {
            let got = tag_digest(&reg, &rec.target);
            let repo = rec.target.rsplit_once(':').unwrap().0;
            let by_digest = manifest_status(&reg, repo, &rec.digest.to_string());
            if rec.source == image {
                assert_eq!(got, None, "{way:?}: {image} was pushed\n{}", u.out);
                assert_eq!(
                    by_digest, 404,
                    "{way:?}: {image}'s manifest is in the registry by digest\n{}",
                    u.out
                );
            } else {
                let want = Some(rec.digest.to_string());
                assert_eq!(got, want, "{way:?}: {}\n{}", rec.source, u.out);
                // The same request finds a pushed image, so a 404 above means something.
                assert_eq!(by_digest, 200, "{way:?}: {}\n{}", rec.source, u.out);
            }
        }
        // The others' blobs are there, so the storage path is the right one.
        let stored = stored_blobs(&reg);
        assert!(!stored.is_empty(), "{}", u.out);
        assert!(
            !stored.contains(damaged),
            "{way:?}: the damaged blob {damaged} is in the registry's storage\n{}",
            u.out
        );
        assert!(other.requests().is_empty(), "{:?}", other.requests());
        (v.code, u.code, pushed_images(&reg))
    });
}

/// The status of `GET /v2/<repo>/manifests/<reference>`, accepting every manifest type.
fn manifest_status(reg: &Registry, repo: &str, reference: &str) -> u16 {
    let r = http::send(
        "GET",
        &format!("{}/v2/{repo}/manifests/{reference}", reg.url()),
        &[("Accept", media_type::MANIFEST_ACCEPT)],
        b"",
    );
    r.status
}

/// Every blob digest in the registry's storage (`docker/registry/v2/blobs/sha256/xx/<hex>`),
/// linked to a repository or not.
fn stored_blobs(reg: &Registry) -> BTreeSet<Digest> {
    let root = reg.storage_dir().join("docker/registry/v2/blobs/sha256");
    let mut out = BTreeSet::new();
    for prefix in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for blob in std::fs::read_dir(prefix.path()).unwrap().flatten() {
            let name = blob.file_name().to_string_lossy().into_owned();
            out.insert(Digest::parse(&format!("sha256:{name}")).unwrap());
        }
    }
    out
}

/// The images of a bundle (read through its seek table).
fn images_of(seekable: &[u8]) -> Vec<airlock::bundle::format::ImageRecord> {
    let r = airlock::bundle::reader::BundleReader::from_source(
        Path::new("x"),
        std::sync::Arc::new(seekable.to_vec()),
    )
    .unwrap();
    r.bundle_manifest().unwrap().images
}

/// Every image of `images` is in `reg` under its target, with the bundle's digest, as skopeo
/// and a HEAD by tag see it.
fn assert_pushed_exactly(
    images: &[airlock::bundle::format::ImageRecord],
    reg: &Registry,
    out: &str,
) {
    assert!(!images.is_empty());
    for rec in images {
        let o = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", "--raw"])
            .arg(format!("docker://{}/{}", reg.host(), rec.target))
            .output()
            .expect("skopeo (install the Debian package skopeo)");
        assert!(
            o.status.success(),
            "{}: {}\n{out}",
            rec.source,
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(Digest::of(&o.stdout), rec.digest, "{}\n{out}", rec.source);
        assert_eq!(
            tag_digest(reg, &rec.target),
            Some(rec.digest.to_string()),
            "{}\n{out}",
            rec.source
        );
    }
}

/// A valid bundle, every way: verify passes, unpack pushes every image with the bundle's
/// digests, as skopeo sees them.
fn accepted(case: Case) {
    let images = images_of(case.input(Way::Seekable));
    case.in_sandboxes(|way, sb| {
        let other = other_host();
        let v = sb.run("verify", &[], &other);
        assert_eq!(v.code, Some(0), "{way:?}: {}", v.out);
        let reg = Registry::start();
        let u = sb.run("unpack", &["--registry", &reg.url()], &other);
        assert_eq!(u.code, Some(0), "{way:?}: {}", u.out);
        assert_pushed_exactly(&images, &reg, &u.out);
        assert!(other.requests().is_empty(), "{:?}", other.requests());
        (v.code, u.code)
    });
}

#[test]
fn r18_the_other_host_trap_sees_requests_to_another_host() {
    // The positive control of the trap every case above relies on: a registry that is not
    // 127.0.0.1 is reached through the proxy variables, so the trap records the request (as a
    // CONNECT, which ureq sends for http too, or as an absolute URL). If the child ignored those
    // variables or the trap stopped recording, every "no request to another host" check would
    // pass for nothing. No name is resolved and nothing leaves loopback: the trap is the proxy,
    // and it refuses with 404.
    let sb = Sandbox::new(&Model::base().bundle(), Way::Seekable);
    for registry in ["http://registry.invalid:5000", "registry.invalid:5000"] {
        let other = other_host();
        let u = sb.run("unpack", &["--registry", registry], &other);
        must_name(&u, "unpack", &["registry.invalid:5000"]);
        let seen = other.requests();
        assert!(
            seen.iter().any(
                |r| (r.method == "CONNECT" && r.path == "registry.invalid:5000")
                    || r.path.starts_with("http://registry.invalid:5000/")
            ),
            "the trap saw no request for {registry}: {seen:?}\n{}",
            u.out
        );
    }
}

// ---- helpers for building cases ----

/// The largest layer only `image` uses, and its data-frame label.
fn layer_of(image: &str) -> (Digest, String) {
    let f = crate::support::fixture(image);
    let l = f.artifact.images()[0]
        .layers
        .iter()
        .filter(|l| unshared(&l.digest))
        .max_by_key(|l| l.data.len())
        .unwrap()
        .digest
        .clone();
    let label = format!("data:{}", blob_name(&l));
    (l, label)
}

/// The config of a single image.
fn config_of(image: &str) -> Digest {
    crate::support::fixture(image).artifact.images()[0]
        .config
        .digest
        .clone()
}

/// Is `d` used by one image only (so damaging it affects only that image)?
fn unshared(d: &Digest) -> bool {
    [DOCKER_IMG, OCI_IMG, LIST_IMG]
        .iter()
        .filter(|n| {
            crate::support::fixture(n)
                .artifact
                .all_blobs()
                .iter()
                .any(|b| &b.digest == d)
        })
        .count()
        == 1
}

fn frames() -> Frames {
    Frames::from_chunks(&Model::base().chunks())
}

fn with_chunks(extra: Vec<Chunk>) -> Case {
    Case::chunks(&before_end(Model::base().chunks(), extra))
}

/// Flips a byte in the middle of the compressed frame `label`.
fn flip_in_frame(label: &str) -> Vec<u8> {
    let mut f = frames();
    let i = f.find(label);
    let c = &mut f.0[i].compressed;
    let mid = c.len() / 2;
    c[mid] ^= 0x55;
    f.file()
}

fn sizes_table_offset(file: &[u8]) -> usize {
    let n = u32::from_le_bytes(file[file.len() - 9..file.len() - 5].try_into().unwrap());
    file.len() - 9 - 8 * n as usize
}

// ---- container ----

#[test]
fn r7_container_empty_file() {
    refused(
        Case::container(vec![]),
        &["bundle.tar.zst", "is empty (0 bytes)"],
    );
}

#[test]
fn r7_container_not_zstd() {
    let junk: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    refused(
        Case::container(junk),
        &[
            "bundle.tar.zst",
            "is not zstd-compressed, so not an airlock bundle: it looks like nothing airlock knows",
        ],
    );
}

#[test]
fn r7_container_plain_tar() {
    refused(
        Case::container(Model::base().tar()),
        &[
            "bundle.tar.zst",
            "is not zstd-compressed, so not an airlock bundle: it looks like a plain tar archive",
        ],
    );
}

#[test]
fn r7_container_truncated() {
    let b = Model::base().bundle();
    refused(
        Case::container(b[..b.len() / 2].to_vec()),
        &["bundle.tar.zst", "is cut short: its "],
    );
}

#[test]
fn r7_container_frame_missing_before_the_table() {
    // A cut inside the file that keeps the table: the frames no longer add up.
    let f = frames();
    let file = f.file();
    let i = f.find("header:index.json");
    let (a, b) = (f.offset(i), f.offset(i + 1));
    let cut = [&file[..a], &file[b..]].concat();
    refused(Case::table_only(cut), &["bundle.tar.zst", "add up to"]);
}

#[test]
fn r7_container_corrupt_byte_in_a_header_frame() {
    let f = frames();
    let i = f.find("header:index.json");
    refused(
        Case::table_only(flip_in_frame("header:index.json")),
        &[&format!("frame {i} at compressed offset {}", f.offset(i))],
    );
}

#[test]
fn r7_container_corrupt_byte_in_a_layer_frame() {
    let (layer, label) = layer_of(DOCKER_IMG);
    assert!(unshared(&layer));
    let f = frames();
    let i = f.find(&label);
    refused_image(
        Case::table_only(flip_in_frame(&label)),
        DOCKER_IMG,
        &layer,
        &[
            &format!("blob {layer}"),
            &format!("frame {i} at compressed offset {}", f.offset(i)),
        ],
    );
}

#[test]
fn r7_container_trailing_garbage_after_the_table() {
    let mut b = Model::base().bundle();
    b.extend_from_slice(b"trailing garbage");
    refused(
        Case::container(b),
        &["bundle.tar.zst", "bytes appended after its end"],
    );
}

#[test]
fn r7_container_garbage_between_frames_and_table() {
    let f = frames();
    let mut file: Vec<u8> = f.0.iter().flat_map(|x| x.compressed.clone()).collect();
    file.extend_from_slice(b"garbage!");
    let sizes: Vec<(u32, u32)> =
        f.0.iter()
            .map(|x| (x.compressed.len() as u32, x.d_size))
            .collect();
    file.extend(seek_table(&sizes));
    refused(
        Case::table_only(file),
        &["bundle.tar.zst", "trailing garbage or a lying table"],
    );
}

#[test]
fn r7_container_seek_table_lies_about_a_decompressed_size() {
    let mut f = frames();
    let i = f.find("header:bundle.json");
    f.0[i].d_size = 1024;
    refused(
        Case::table_only(f.file()),
        &[&format!(
            "frame {i} at compressed offset {}: frame header declares 512 decompressed bytes, the seek table 1024",
            f.offset(i)
        )],
    );
}

#[test]
fn r7_container_seek_table_lies_about_compressed_sizes() {
    // Two entries swap compressed sizes: the sum still tiles the file, the frames do not.
    let f = frames();
    let mut file = f.file();
    let at = sizes_table_offset(&file);
    let (c0, c1) = (
        f.0[0].compressed.len() as u32,
        f.0[1].compressed.len() as u32,
    );
    assert_ne!(c0, c1);
    file[at..at + 4].copy_from_slice(&c1.to_le_bytes());
    file[at + 8..at + 12].copy_from_slice(&c0.to_le_bytes());
    refused(
        Case::table_only(file),
        &["bundle.tar.zst", "frame 0 at compressed offset 0"],
    );
}

#[test]
fn r7_container_corrupt_seek_table() {
    let mut file = Model::base().bundle();
    let n = file.len();
    file[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes());
    refused(
        Case::table_only(file),
        &["bundle.tar.zst", "seek table claims 4294967295 frames"],
    );
    let mut file = Model::base().bundle();
    let at = sizes_table_offset(&file) - 8;
    file[at] ^= 1;
    refused(
        Case::table_only(file),
        &["bundle.tar.zst", "seek table skippable frame"],
    );
}

#[test]
fn r7_container_huge_window_in_a_header_frame() {
    let mut f = frames();
    let i = f.find("header:oci-layout");
    f.0[i].compressed = with_window_log(&f.0[i].compressed, 31);
    // Through the table only: a streaming decoder, as the zstd tool's, takes the window of a
    // frame that declares its content size as at most that size (here 512 bytes), so in a
    // stream this frame costs nothing and decodes as what it holds.
    refused(
        Case::table_only(f.file()),
        &["frame 0 at compressed offset 0: window of 2147483648 bytes"],
    );
}

#[test]
fn r7_container_huge_window_in_a_layer_frame() {
    let (layer, label) = layer_of(OCI_IMG);
    assert!(unshared(&layer));
    let mut f = frames();
    let i = f.find(&label);
    f.0[i].compressed = with_window_log(&f.0[i].compressed, 31);
    refused_image(
        Case::table_only(f.file()),
        OCI_IMG,
        &layer,
        &[&format!("blob {layer}"), "window of 2147483648 bytes"],
    );
}

// ---- tar ----

fn entry_refused(extra: Vec<Chunk>, needles: &[&str]) {
    refused(with_chunks(extra), needles);
}

#[test]
fn r7_tar_dotdot_name() {
    entry_refused(
        file_chunks(b"../../etc/evil", b"x", b'0'),
        &["\"../../etc/evil\" refused", "'..'"],
    );
    entry_refused(
        file_chunks(b"blobs/../../evil", b"x", b'0'),
        &["\"blobs/../../evil\" refused"],
    );
}

#[test]
fn r7_tar_absolute_name() {
    entry_refused(
        file_chunks(b"/tmp/airlock-evil", b"x", b'0'),
        &["\"/tmp/airlock-evil\" refused", "absolute path"],
    );
}

#[test]
fn r7_tar_dotdot_in_pax_path() {
    let mut c = pax_chunks(&[("path", "../../evil-pax")]);
    c.extend(file_chunks(b"harmless", b"x", b'0'));
    entry_refused(c, &["\"../../evil-pax\" refused", "'..'"]);
    let mut c = pax_chunks(&[("path", "/etc/evil-pax")]);
    c.extend(file_chunks(b"harmless", b"x", b'0'));
    entry_refused(c, &["\"/etc/evil-pax\" refused", "absolute path"]);
}

#[test]
fn r7_tar_dotdot_in_gnu_long_name() {
    let long = format!("{}/../../../evil-gnu", "a".repeat(120));
    let mut c = gnu_long_name_chunks(long.as_bytes());
    c.extend(file_chunks(b"harmless", b"x", b'0'));
    entry_refused(c, &["evil-gnu\" refused", "'..'"]);
    let mut c = gnu_long_name_chunks(b"/etc/evil-gnu");
    c.extend(file_chunks(b"harmless", b"x", b'0'));
    entry_refused(c, &["\"/etc/evil-gnu\" refused", "absolute path"]);
}

#[test]
fn r7_tar_symlink() {
    let h = header_with_link(b"blobs/sha256/evil", 0, b'2', b"/etc/passwd");
    entry_refused(
        vec![Chunk::raw("symlink", h)],
        &["\"blobs/sha256/evil\" refused", "symbolic links"],
    );
}

#[test]
fn r7_tar_hard_link() {
    let h = header_with_link(b"evil-link", 0, b'1', b"index.json");
    entry_refused(
        vec![Chunk::raw("hardlink", h)],
        &["\"evil-link\" refused", "hard links"],
    );
}

#[test]
fn r7_tar_devices_and_fifo() {
    for (t, what) in [
        (b'3', "device files"),
        (b'4', "device files"),
        (b'6', "FIFOs"),
    ] {
        entry_refused(
            vec![Chunk::raw("special", header(b"evil-special", 0, t))],
            &["\"evil-special\" refused", what],
        );
    }
}

#[test]
fn r7_tar_duplicate_entries() {
    let m = Model::base();
    entry_refused(
        file_chunks(b"index.json", m.get("index.json"), b'0'),
        &[
            "\"index.json\" refused",
            "a second entry with the same name",
        ],
    );
    entry_refused(
        file_chunks(b"./index.json", m.get("index.json"), b'0'),
        &[
            "\"./index.json\" refused",
            "a second entry with the same name",
        ],
    );
    // A duplicate blob with other bytes, the kind that could swap content after a check.
    let (layer, _) = layer_of(DOCKER_IMG);
    let name = format!("./{}", blob_name(&layer));
    entry_refused(
        file_chunks(name.as_bytes(), b"other bytes", b'0'),
        &[&format!("\"{name}\" refused"), "same name"],
    );
}

#[test]
fn r7_tar_pax_size_disagrees_with_header() {
    let mut c = pax_chunks(&[("size", "5")]);
    c.extend(file_chunks(b"meta/extra", b"0123456789", b'0'));
    entry_refused(
        c,
        &[
            "\"meta/extra\" refused",
            "PAX size (5) disagrees with its header size (10)",
        ],
    );
}

#[test]
fn r7_tar_truncated_entry() {
    // The last entry's data is cut short: its header claims more than the stream holds.
    let mut c = vec![Chunk::raw("hdr", header(b"meta/cut", 8192, b'0'))];
    c.push(Chunk::raw("cut", vec![b'x'; 1024]));
    entry_refused(
        c,
        &[
            "bundle.tar.zst",
            "entry claims 8192 bytes, past the end of the stream",
        ],
    );
}

// ---- bombs ----

#[test]
fn r7_bomb_entry_claiming_a_terabyte() {
    let h = header(b"meta/terabyte", 1 << 40, b'0');
    entry_refused(
        vec![Chunk::raw("tb", h)],
        &["entry claims 1099511627776 bytes, past the end of the stream"],
    );
}

#[test]
fn r7_bomb_frame_declaring_32_gib() {
    // index.json's data frame replaced by 1 MiB that declares (and holds) 32 GiB of zeros.
    let mut f = frames();
    let i = f.find("data:index.json");
    f.0[i].compressed = rle_frame(0, 32 << 30, Some(32 << 30));
    refused(
        Case::table_only(f.file()),
        &[&format!(
            "frame {i} at compressed offset {}: frame header declares 34359738368 decompressed bytes",
            f.offset(i)
        )],
    );
}

#[test]
fn r7_bomb_frame_expanding_to_32_gib_undeclared() {
    // The same without a declared size: decompression stops at the size the table declares.
    let mut f = frames();
    let i = f.find("data:index.json");
    f.0[i].compressed = rle_frame(b' ', 32 << 30, None);
    refused(
        Case::table_only(f.file()),
        &[&format!(
            "frame {i} at compressed offset {}: decompressed to more than the",
            f.offset(i)
        )],
    );
}

#[test]
fn r7_bomb_layer_expanding_to_32_gib() {
    // A layer's data frame replaced by an undeclared 32 GiB bomb: only that image fails.
    let (layer, label) = layer_of(OCI_IMG);
    let mut f = frames();
    let i = f.find(&label);
    f.0[i].compressed = rle_frame(0, 32 << 30, None);
    refused_image(
        Case::table_only(f.file()),
        OCI_IMG,
        &layer,
        &[&format!("blob {layer}"), "decompressed to more than the"],
    );
}

#[test]
fn r7_bomb_real_20_gib_entry() {
    // A layer entry really 20 GiB long: 320 frames of 64 MiB of zeros, 2 kB each. Its size
    // disagrees with the manifest, so nothing may decompress it: neither verify (hashing it
    // would take minutes) nor unpack.
    let (layer, label) = layer_of(OCI_IMG);
    let mut chunks = Model::base().chunks();
    let name = blob_name(&layer);
    let hi = chunks
        .iter()
        .position(|c| c.label == format!("header:{name}"))
        .unwrap();
    const FRAME: u64 = 64 << 20;
    let total = 320 * FRAME;
    chunks[hi].bytes = header(name.as_bytes(), total, b'0');
    let di = hi + 1;
    assert_eq!(chunks[di].label, label);
    let mut f = Frames::from_chunks(&chunks);
    let bomb = Frame {
        label: "bomb".into(),
        compressed: rle_frame(0, FRAME, Some(FRAME)),
        d_size: FRAME as u32,
    };
    f.0.splice(di..di + 1, std::iter::repeat_n(bomb, 320));
    refused(
        Case::container(f.file()),
        &[
            OCI_IMG,
            &format!("blob {layer}: {total} bytes in the bundle"),
        ],
    );
}

// ---- content ----

/// The base bundle with one entry's bytes replaced.
fn with_entry(name: &str, data: Vec<u8>) -> Case {
    let mut m = Model::base();
    m.set(name, data);
    Case::model(&m)
}

fn flipped(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    let i = d.len() / 2;
    d[i] ^= 0x55;
    d
}

#[test]
fn r7_content_layer_does_not_match_its_digest() {
    let (layer, _) = layer_of(DOCKER_IMG);
    let name = blob_name(&layer);
    let bad = flipped(Model::base().get(&name));
    refused_image(
        with_entry(&name, bad),
        DOCKER_IMG,
        &layer,
        &[&format!("blob {layer}"), "wrong digest", DOCKER_IMG],
    );
}

#[test]
fn r7_content_config_does_not_match_its_digest() {
    let c = config_of(OCI_IMG);
    assert!(unshared(&c));
    let name = blob_name(&c);
    let bad = flipped(Model::base().get(&name));
    refused(
        with_entry(&name, bad),
        &[OCI_IMG, &format!("config {c} is corrupt")],
    );
}

#[test]
fn r7_content_manifest_does_not_match_its_digest() {
    let m = Model::base();
    let d = m.image(DOCKER_IMG).digest;
    let name = blob_name(&d);
    // Same length, other bytes: whitespace added where a space was.
    let raw = String::from_utf8(m.get(&name).to_vec()).unwrap();
    let bad = raw.replacen(',', " ,", 1);
    refused(
        with_entry(&name, bad.into_bytes()),
        &[DOCKER_IMG, &format!("manifest {d}")],
    );
}

#[test]
fn r7_content_layer_size_differs_from_its_descriptor() {
    let (layer, _) = layer_of(DOCKER_IMG);
    let name = blob_name(&layer);
    let mut longer = Model::base().get(&name).to_vec();
    longer.extend_from_slice(b"extra");
    refused(
        with_entry(&name, longer),
        &[
            DOCKER_IMG,
            &format!("blob {layer}: 6395 bytes in the bundle"),
        ],
    );
}

#[test]
fn r7_content_missing_parts() {
    let m = Model::base();
    let manifest = m.image(DOCKER_IMG).digest;
    let config = config_of(OCI_IMG);
    let (layer, _) = layer_of(DOCKER_IMG);
    let Some(child) = crate::support::fixture(LIST_IMG)
        .artifact
        .images()
        .iter()
        .map(|i| i.digest.clone())
        .next()
    else {
        panic!("busybox has platforms")
    };
    for (d, image) in [
        (manifest, DOCKER_IMG),
        (config, OCI_IMG),
        (layer, DOCKER_IMG),
        (child, LIST_IMG),
    ] {
        let mut m = Model::base();
        m.remove(&blob_name(&d));
        m.fix_totals();
        refused(
            Case::model(&m),
            &[image, &d.to_string(), "missing from the bundle"],
        );
    }
    for name in ["index.json", "bundle.json", "oci-layout"] {
        let mut m = Model::base();
        m.remove(name);
        refused(Case::model(&m), &["the bundle has no", name]);
    }
}

// ---- types and digests ----

#[test]
fn r7_types_media_type_disagrees_with_the_document() {
    // bundle.json and index.json call the Docker manifest an OCI one.
    let mut m = Model::base();
    let d = m.image(DOCKER_IMG).digest.to_string();
    for (name, list) in [("index.json", "manifests"), ("bundle.json", "images")] {
        let mut v = m.json(name);
        for e in v[list].as_array_mut().unwrap() {
            if e["digest"] == d {
                e["mediaType"] = media_type::OCI_MANIFEST.into();
            }
        }
        m.set_json(name, &v);
    }
    refused(
        Case::model(&m),
        &[DOCKER_IMG, "the document says its media type is"],
    );
}

#[test]
fn r7_types_document_ambiguous_between_manifest_and_index() {
    // An OCI manifest without mediaType that also lists "manifests": a reader that takes it as
    // an index sees other content than one that takes it as a manifest.
    let mut m = Model::base();
    let mut v: Value = serde_json::from_slice(&m.top_manifest(OCI_IMG)).unwrap();
    v.as_object_mut().unwrap().remove("mediaType");
    v["manifests"] = json!([]);
    let raw = serde_json::to_vec(&v).unwrap();
    m.replace_top(OCI_IMG, raw, media_type::OCI_MANIFEST);
    refused(
        Case::model(&m),
        &[
            OCI_IMG,
            "it has both \"manifests\" and \"config\"/\"layers\": ambiguous between an index and a manifest",
        ],
    );
}

#[test]
fn r7_types_schema1() {
    let mut m = Model::base();
    let raw = br#"{"schemaVersion":1,"name":"x","tag":"1","architecture":"amd64","fsLayers":[],"history":[]}"#;
    m.replace_top(DOCKER_IMG, raw.to_vec(), media_type::DOCKER_SCHEMA1_SIGNED);
    refused(Case::model(&m), &[DOCKER_IMG, "unsupported media type"]);
}

#[test]
fn r7_types_unknown_manifest_type() {
    let mut m = Model::base();
    let raw = br#"{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}"#;
    m.replace_top(
        DOCKER_IMG,
        raw.to_vec(),
        "application/vnd.example.thing+json",
    );
    refused(Case::model(&m), &[DOCKER_IMG, "unsupported media type"]);
}

const BAD_DIGESTS: [&str; 6] = [
    "sha256:ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
    "sha256:abc",
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    "sha256:../../../../tmp/airlock-evil",
    "sha512:cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e",
    "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde/",
];

/// Why airlock's own digest parser refuses `bad` (in bundle.json and index.json).
fn digest_refusal(bad: &str) -> String {
    if bad.starts_with("sha512:") {
        "unsupported digest algorithm in \"sha512:".into()
    } else {
        format!(
            "invalid digest {bad:?}: expected \"sha256:\" followed by 64 lowercase hex characters"
        )
    }
}

/// Why a manifest holding `bad` as a layer digest is refused: oci-spec's own digest check
/// words most cases, airlock's descriptor check the algorithm.
fn manifest_digest_refusal(bad: &str) -> String {
    let why = match bad.split_once(':') {
        None => "missing ':' in digest".to_string(),
        Some(("sha512", _)) => {
            return "descriptor has an invalid digest: unsupported digest algorithm".into()
        }
        Some((_, "abc")) => "Invalid digest length 3 expected 64".into(),
        Some((_, hex)) if hex.chars().any(|c| c.is_ascii_uppercase()) => {
            "Invalid non-hexadecimal character in digest".into()
        }
        Some((_, hex)) => format!("Invalid encoded value {hex}"),
    };
    format!(
        "is not a valid {} document: {why}",
        media_type::DOCKER_MANIFEST
    )
}

#[test]
fn r7_digests_malformed_in_bundle_json_and_index_json() {
    for bad in BAD_DIGESTS {
        for (name, list) in [("bundle.json", "images"), ("index.json", "manifests")] {
            let mut m = Model::base();
            let mut v = m.json(name);
            v[list][0]["digest"] = bad.into();
            m.set_json(name, &v);
            refused(
                Case::model(&m),
                &[&format!("{name} is not valid"), &digest_refusal(bad)],
            );
        }
    }
}

#[test]
fn r7_digests_malformed_in_a_manifest() {
    for bad in BAD_DIGESTS {
        let mut m = Model::base();
        let mut v: Value = serde_json::from_slice(&m.top_manifest(DOCKER_IMG)).unwrap();
        v["layers"][0]["digest"] = bad.into();
        let raw = serde_json::to_vec(&v).unwrap();
        m.replace_top(DOCKER_IMG, raw, media_type::DOCKER_MANIFEST);
        refused(
            Case::model(&m),
            &[DOCKER_IMG, &manifest_digest_refusal(bad)],
        );
    }
}

#[test]
fn r7_digests_malformed_in_entry_names() {
    for (name, what) in [
        (
            "blobs/sha256/ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789",
            "not a valid blob name",
        ),
        ("blobs/sha256/abc", "not a valid blob name"),
        ("blobs/sha512/cf83e1357eefb8bdf1542850", "other than sha256"),
    ] {
        entry_refused(
            file_chunks(name.as_bytes(), b"x", b'0'),
            &[&format!("{name:?} refused"), what],
        );
    }
}

// ---- JSON ----

/// `depth` nested arrays.
fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn r7_json_oversized_and_deeply_nested_index_and_bundle_json() {
    let deep = "nests arrays and objects more than 64 levels deep";
    for name in ["index.json", "bundle.json"] {
        let mut big = Model::base().get(name).to_vec();
        big.splice(1..1, std::iter::repeat_n(b' ', 9 << 20));
        refused(
            with_entry(name, big),
            &[&format!("{name} is 9"), "more than the 8388608 accepted"],
        );
        // 10k levels as the whole document, and in a field: the depth is bounded before
        // anything parses it (no stack overflow, and a field serde skips is no way round).
        refused(
            with_entry(name, nested(10_000).into_bytes()),
            &[&format!("{name} is not valid"), deep],
        );
        let mut m = Model::base();
        let mut v = m.json(name);
        if name == "index.json" {
            v["manifests"][0]["platform"] = "NESTED".into();
        } else {
            v["futureField"] = "NESTED".into();
        }
        let text = serde_json::to_string(&v)
            .unwrap()
            .replace("\"NESTED\"", &nested(10_000));
        m.set(name, text.into_bytes());
        refused(Case::model(&m), &[&format!("{name} is not valid"), deep]);
    }
}

#[test]
fn r7_json_oversized_and_deeply_nested_manifest() {
    let mut m = Model::base();
    let mut raw = m.top_manifest(DOCKER_IMG);
    raw.splice(1..1, std::iter::repeat_n(b' ', 5 << 20));
    m.replace_top(DOCKER_IMG, raw, media_type::DOCKER_MANIFEST);
    refused(
        Case::model(&m),
        &[DOCKER_IMG, "more than the 4194304 accepted"],
    );
    let deep = "nests arrays and objects more than 64 levels deep";
    let mut m = Model::base();
    m.replace_top(
        DOCKER_IMG,
        nested(10_000).into_bytes(),
        media_type::DOCKER_MANIFEST,
    );
    refused(Case::model(&m), &[DOCKER_IMG, deep]);
    // Deep nesting inside the layers list.
    let layers = format!("\"layers\":{},\"y\":", nested(10_000));
    refused_deep(
        DOCKER_IMG,
        media_type::DOCKER_MANIFEST,
        "\"layers\":",
        &layers,
    );
}

/// An image's own manifest with `anchor` replaced (once) by `deep`, refused for its depth.
fn refused_deep(image: &str, media_type: &str, anchor: &str, deep: &str) {
    let top = String::from_utf8(Model::base().top_manifest(image)).unwrap();
    let doc = top.replacen(anchor, deep, 1);
    let mut m = Model::base();
    m.replace_top(image, doc.into_bytes(), media_type);
    refused(
        Case::model(&m),
        &[image, "nests arrays and objects more than 64 levels deep"],
    );
}

#[test]
fn r14_a_manifest_with_an_unknown_field_nested_100000_levels_deep_is_refused() {
    // serde skips an unknown field without building it, so the parser's own depth limit never
    // saw this one: both paths accepted it, and the registry refused it at push time.
    let unknown = format!("{{\"x-unknown\":{{\"a\":{}}},", nested(100_000));
    refused_deep(OCI_IMG, media_type::OCI_MANIFEST, "{", &unknown);
}

// ---- bundle.json lying ----

#[test]
fn r7_bundle_json_target_with_dotdot_or_another_host() {
    let other = other_host();
    for bad in [
        "../../x:1".to_string(),
        "a/../../b:1".to_string(),
        "evil.example:5000/x:1".to_string(),
        format!("{}/x:1", other.host()),
        "https://evil.example/x:1".to_string(),
    ] {
        for field in ["target", "altTargets"] {
            let mut m = Model::base();
            m.edit_bundle_json(|v| {
                v["images"][1][field] = if field == "target" {
                    bad.clone().into()
                } else {
                    json!([bad])
                };
            });
            refused(Case::model(&m), &[&bad, "target"]);
        }
    }
    assert!(other.requests().is_empty(), "{:?}", other.requests());
}

#[test]
fn r7_bundle_json_disagrees_with_index_json() {
    let mut m = Model::base();
    let other = m.image(OCI_IMG);
    m.edit_index_json(|v| {
        for d in v["manifests"].as_array_mut().unwrap() {
            if d["annotations"]["org.opencontainers.image.ref.name"] == DOCKER_IMG {
                d["digest"] = other.digest.to_string().into();
                d["size"] = other.size.into();
            }
        }
    });
    refused(Case::model(&m), &[DOCKER_IMG, "index.json says"]);
    // An image only bundle.json lists, and one only index.json lists.
    let mut m = Model::base();
    m.edit_bundle_json(|v| {
        v["images"][0]["source"] = "docker.io/library/other:1".into();
    });
    refused(
        Case::model(&m),
        &["bundle.json lists it, index.json does not"],
    );
}

#[test]
fn r7_bundle_json_wrong_totals() {
    // The count, and (issue 14: the sequential reader checked only the count) the bytes.
    for field in ["count", "bytes"] {
        let mut m = Model::base();
        m.edit_bundle_json(|v| {
            let n = v["blobs"][field].as_u64().unwrap();
            v["blobs"][field] = (n + 1).into();
        });
        refused(Case::model(&m), &["bundle.json", "its totals"]);
    }
}

#[test]
fn r7_bundle_json_unknown_format_version() {
    let mut m = Model::base();
    // Version 2 is this airlock's own (it reads 1 and 2); 3 is from the future.
    m.edit_bundle_json(|v| v["formatVersion"] = 3.into());
    refused(Case::model(&m), &["bundle.json says format", "version 3"]);
    let mut m = Model::base();
    m.edit_bundle_json(|v| v["format"] = "tarball".into());
    refused(Case::model(&m), &["bundle.json says format \"tarball\""]);
}

// ---- valid but unusual ----

#[test]
fn r7_valid_base_bundle_unpacks_exactly() {
    accepted(Case::model(&Model::base()));
}

#[test]
fn r7_valid_unknown_json_fields() {
    let mut m = Model::base();
    m.edit_bundle_json(|v| {
        v["futureField"] = json!({"a": [1, 2]});
        v["images"][0]["futureField"] = "x".into();
    });
    m.edit_index_json(|v| {
        v["annotations"] = json!({"org.example": "y"});
        v["manifests"][0]["futureField"] = true.into();
    });
    accepted(Case::model(&m));
}

#[test]
fn r7_valid_unknown_layer_media_type_in_an_oci_manifest() {
    let mut m = Model::base();
    let mut v: Value = serde_json::from_slice(&m.top_manifest(OCI_IMG)).unwrap();
    v["layers"][0]["mediaType"] = "application/vnd.example.layer.v1.tar+foo".into();
    let raw = serde_json::to_vec(&v).unwrap();
    m.replace_top(OCI_IMG, raw, media_type::OCI_MANIFEST);
    accepted(Case::model(&m));
}

#[test]
fn r7_valid_extra_metadata_and_directory_entries() {
    let m = Model::base();
    let mut chunks = m.chunks();
    // Directories after oci-layout, as `tar -c` of an extracted layout would write them.
    chunks.splice(
        2..2,
        [
            Chunk::raw("dir", header(b"blobs/", 0, b'5')),
            Chunk::raw("dir", header(b"./blobs/sha256/", 0, b'5')),
        ],
    );
    let mut extra = file_chunks(b"meta/provenance.json", br#"{"by":"ops"}"#, b'0');
    extra.extend(file_chunks(b"README.txt", b"made by airlock\n", b'0'));
    let mut pax_named = pax_chunks(&[("path", "meta/a-name-from-pax.txt")]);
    pax_named.extend(file_chunks(b"ignored", b"pax", b'0'));
    extra.extend(pax_named);
    let chunks = before_end(chunks, extra);
    accepted(Case::chunks(&chunks));
}

#[test]
fn r7_bomb_unused_20_gib_blob() {
    // A valid bundle plus a blob entry no image uses, really 20 GiB of zeros (320 frames of
    // 2 kB). verify reports it without hashing it (hashing would take minutes); unpack has no
    // use for it and pushes the images.
    let junk = Digest::of(b"not the content");
    let name = blob_name(&junk);
    const FRAME: u64 = 64 << 20;
    let total = 320 * FRAME;
    let mut f = Frames::from_chunks(&before_end(
        Model::base().chunks(),
        vec![Chunk::raw(
            "bomb-header",
            header(name.as_bytes(), total, b'0'),
        )],
    ));
    let at = f.find("end");
    let bomb = Frame {
        label: "bomb".into(),
        compressed: rle_frame(0, FRAME, Some(FRAME)),
        d_size: FRAME as u32,
    };
    f.0.splice(at..at, std::iter::repeat_n(bomb, 320));
    let file = f.file();
    let images = images_of(&file);
    // Through the seek table the unused entry is never decompressed; read in order it is
    // decompressed (not hashed) to get past it.
    Case::container(file).in_sandboxes(|way, sb| {
        let other = other_host();
        let v = sb.run("verify", &[], &other);
        must_name(
            &v,
            &format!("verify ({way:?})"),
            &[&format!("blob {junk}"), "not used by any image"],
        );
        assert!(v.elapsed < Duration::from_secs(20), "{:?}", v.elapsed);
        let reg = Registry::start();
        let u = sb.run("unpack", &["--registry", &reg.url()], &other);
        assert_eq!(u.code, Some(0), "{way:?}: {}", u.out);
        assert_pushed_exactly(&images, &reg, &u.out);
        assert!(
            !stored_blobs(&reg).contains(&junk),
            "the unused blob was pushed\n{}",
            u.out
        );
        assert!(other.requests().is_empty(), "{:?}", other.requests());
        (v.code, u.code)
    });
}

#[test]
fn r7_bundle_json_no_images() {
    // bundle.json and index.json agree on zero images, and no blobs. unpack used to panic
    // (index out of bounds at src/unpack.rs:204, exit 101) after the check passed.
    let mut m = Model::base();
    m.entries.retain(|e| !e.0.starts_with("blobs/"));
    m.edit_bundle_json(|v| v["images"] = json!([]));
    m.edit_index_json(|v| v["manifests"] = json!([]));
    m.fix_totals();
    refused(Case::model(&m), &["bundle.json", "no images"]);
}

// ---- issue 14: the cases where the two readers disagreed ----

#[test]
fn r14_an_oci_layout_of_another_version_is_refused() {
    let mut m = Model::base();
    m.set("oci-layout", br#"{"imageLayoutVersion":"9.9.9"}"#.to_vec());
    refused(
        Case::model(&m),
        &["oci-layout is not valid", "\"9.9.9\" is not 1.0.0"],
    );
}

#[test]
fn r14_a_source_holding_escapes_and_a_newline_is_refused_and_printed_escaped() {
    // The bundle tried to clear the screen and print a line of its own.
    let evil = "docker.io/x/a:1\u{1b}[2J\nOK: every image verified";
    let mut m = Model::base();
    let old = m.image(OCI_IMG).source;
    m.edit_bundle_json(|v| {
        for i in v["images"].as_array_mut().unwrap() {
            if i["source"] == old.as_str() {
                i["source"] = evil.into();
            }
        }
    });
    m.edit_index_json(|v| {
        for d in v["manifests"].as_array_mut().unwrap() {
            for k in [
                "org.opencontainers.image.ref.name",
                "io.containerd.image.name",
            ] {
                if d["annotations"][k] == old.as_str() {
                    d["annotations"][k] = evil.into();
                }
            }
        }
    });
    Case::model(&m).in_sandboxes(|way, sb| {
        let other = other_host();
        let reg = Registry::start();
        let v = sb.run("verify", &[], &other);
        let u = sb.run("unpack", &["--registry", &reg.url()], &other);
        for (what, r) in [("verify", &v), ("unpack", &u)] {
            // Escaped where it is shown: no escape character (the sandbox checks every run),
            // and no line of the bundle's own.
            must_name(
                r,
                &format!("{what} ({way:?})"),
                &[
                    "docker.io/x/a:1\\u{1b}[2J\\nOK: every image verified",
                    "its source is not a valid reference",
                ],
            );
            assert!(
                !r.out.lines().any(|l| l.starts_with("OK: every image")),
                "{what} ({way:?}) printed the bundle's line:\n{}",
                r.out
            );
        }
        assert!(pushed_images(&reg).is_empty(), "{}", u.out);
        (v.code, u.code)
    });
}

/// The base bundle with the OCI image's config descriptor carrying `data`.
fn with_embedded_config(data: &[u8]) -> Model {
    use base64::Engine as _;
    let mut m = Model::base();
    let mut v: Value = serde_json::from_slice(&m.top_manifest(OCI_IMG)).unwrap();
    v["config"]["data"] = base64::engine::general_purpose::STANDARD
        .encode(data)
        .into();
    m.replace_top(
        OCI_IMG,
        serde_json::to_vec(&v).unwrap(),
        media_type::OCI_MANIFEST,
    );
    m
}

#[test]
fn r14_embedded_data_must_be_the_content_it_describes() {
    let config = Model::base().get(&blob_name(&config_of(OCI_IMG))).to_vec();
    let mut other = config.clone();
    other[1] ^= 1;
    refused(
        Case::model(&with_embedded_config(&other)),
        &[
            OCI_IMG,
            &format!(
                "the embedded data of descriptor {} hashes to",
                config_of(OCI_IMG)
            ),
        ],
    );
    // The config's own bytes are fine.
    accepted(Case::model(&with_embedded_config(&config)));
}

#[test]
fn r14_zstd_of_1024_zero_bytes_is_refused_without_a_panic() {
    // `airlock unpack -` fed this panicked (stream/sinks.rs, "run read bundle.json").
    let zeros = plain_zstd(&[0u8; 1024]);
    refused(Case::container(zeros), &["the bundle has no oci-layout"]);
}

/// A bundle with two images, `docker.io/x/a:1` (the Docker image) and `docker.io/x/a:10` (the
/// OCI image), in that order.
fn a1_and_a10() -> Model {
    let base = Model::base();
    let mut images = Vec::new();
    for (source, from) in [
        ("docker.io/x/a:1", DOCKER_IMG),
        ("docker.io/x/a:10", OCI_IMG),
    ] {
        let mut rec = base.image(from);
        rec.source = source.into();
        rec.target = source.trim_start_matches("docker.io/").into();
        images.push(rec);
    }
    let keep: BTreeSet<Digest> = [DOCKER_IMG, OCI_IMG]
        .iter()
        .flat_map(|n| crate::support::fixture(n).artifact.all_blobs())
        .map(|b| b.digest.clone())
        .chain([base.image(DOCKER_IMG).digest, base.image(OCI_IMG).digest])
        .collect();
    let blobs = base
        .entries
        .iter()
        .filter_map(|(name, data)| {
            let d =
                Digest::parse(&format!("sha256:{}", name.strip_prefix("blobs/sha256/")?)).ok()?;
            keep.contains(&d).then(|| (d, data.clone()))
        })
        .collect();
    Model::of(images, blobs)
}

#[test]
fn r14_an_image_is_not_failed_by_the_problems_of_a_longer_name() {
    // `a:1` used to pick up what was said of `a:10` (problems matched by substring).
    let mut m = a1_and_a10();
    let (layer, _) = layer_of(OCI_IMG);
    let name = blob_name(&layer);
    let bad = flipped(m.get(&name));
    m.set(&name, bad);
    Case::model(&m).in_sandboxes(|way, sb| {
        let other = other_host();
        let reg = Registry::start();
        let u = sb.run("unpack", &["--registry", &reg.url()], &other);
        must_name(&u, &format!("unpack ({way:?})"), &["docker.io/x/a:10"]);
        let a1 = m.image("docker.io/x/a:1");
        assert_eq!(
            tag_digest(&reg, "x/a:1"),
            Some(a1.digest.to_string()),
            "{way:?}: a:1 was not pushed\n{}",
            u.out
        );
        assert_eq!(tag_digest(&reg, "x/a:10"), None, "{way:?}\n{}", u.out);
        assert!(
            u.out
                .lines()
                .any(|l| l.starts_with("pushed") && l.ends_with("docker.io/x/a:1")),
            "{way:?}\n{}",
            u.out
        );
        (u.code, tag_digest(&reg, "x/a:1"))
    });
}

#[test]
fn r14_a_file_in_another_entry_order_is_read_in_more_passes() {
    // Extracted and re-tarred: the blobs first, the metadata last, in reverse order. Through
    // the seek table and as a file without one, it unpacks exactly; standard input, which can
    // be read only once, needs airlock's order and says so.
    let mut m = Model::base();
    m.entries.reverse();
    let case = Case::model(&m);
    accepted(Case {
        ways: case
            .ways
            .iter()
            .filter(|(w, _)| *w != Way::Stdin)
            .cloned()
            .collect(),
    });
    let stdin = Case {
        ways: vec![(Way::Stdin, case.input(Way::Stdin).to_vec())],
    };
    stdin.in_sandboxes(|_, sb| {
        let other = other_host();
        let u = sb.run("verify", &[], &other);
        must_name(
            &u,
            "verify -",
            &["airlock's order", "read the bundle from a file"],
        );
    });
}

#[test]
fn r14_split_parts_without_a_seek_table_are_read_in_order() {
    let plain = plain_zstd(&Model::base().tar());
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("bundle.tar.zst");
    let parts = crate::bounds::write_parts(&base, &plain, 4096);
    assert!(parts.len() > 3, "{parts:?}");
    let images = images_of(&Model::base().bundle());
    let first = parts[0].to_str().unwrap();
    let o = crate::support::airlock(&["verify", first]);
    assert!(
        o.status.success(),
        "{}\n{}",
        crate::support::stdout(&o),
        crate::support::stderr(&o)
    );
    assert!(crate::support::stderr(&o).contains("has no seek table"));
    let reg = Registry::start();
    let o = crate::support::airlock(&["unpack", first, "--registry", &reg.url()]);
    assert!(o.status.success(), "{}", crate::support::stderr(&o));
    assert_pushed_exactly(&images, &reg, &crate::support::stderr(&o));
}

#[test]
fn r14_images_already_present_are_skipped_whichever_way_the_bundle_is_read() {
    Case::model(&Model::base()).in_sandboxes(|way, sb| {
        let other = other_host();
        let reg = Registry::start();
        let first = sb.run("unpack", &["--registry", &reg.url()], &other);
        assert_eq!(first.code, Some(0), "{way:?}: {}", first.out);
        let again = sb.run("unpack", &["--registry", &reg.url()], &other);
        assert_eq!(again.code, Some(0), "{way:?}: {}", again.out);
        assert!(
            again
                .out
                .contains(" already, with the digests of the bundle: nothing to push"),
            "{way:?}: a rerun sent blobs\n{}",
            again.out
        );
        let present = again
            .out
            .lines()
            .filter(|l| l.starts_with("already present"))
            .count();
        assert_eq!(present, 3, "{way:?}\n{}", again.out);
        (first.code, again.code, present)
    });
}

// A schema 1 manifest kept with --keep-digests is stored under the sha256 of its bytes while
// its record carries the registry digest (of its JWS payload) and its layers: the one place
// where a bundle names a manifest by two digests. Each lie about it is refused by every
// reader before anything is pushed.

const S1_IMG: &str = "gcr.io/google_containers/pause-amd64:3.0";

/// A bundle of one signed schema 1 image, as `pack --keep-digests` writes it.
fn schema1_model() -> (Model, airlock::fixtures::Schema1Image) {
    use airlock::bundle::format::{ImageRecord, OmittedBlob, Upstream};
    let img = airlock::fixtures::schema1_image(
        "google_containers/pause-amd64",
        "3.0",
        airlock::fixtures::layer("hostile-s1", crate::support::SEED, 2000),
        "hostile-s1",
    );
    let layers: u64 = img.layers.iter().map(|l| l.data.len() as u64).sum();
    let rec = ImageRecord {
        source: S1_IMG.into(),
        target: "google_containers/pause-amd64:3.0".into(),
        alt_targets: vec![],
        group: "pause".into(),
        digest: Digest::of(&img.manifest),
        media_type: media_type::DOCKER_SCHEMA1_SIGNED.into(),
        size: img.manifest.len() as u64,
        total_bytes: img.manifest.len() as u64 + layers,
        from_index: None,
        upstream: Some(Upstream {
            fetched_from: "registry.k8s.io/pause-amd64:3.0".into(),
            digest: img.digest.clone(),
            media_type: media_type::DOCKER_SCHEMA1_SIGNED.into(),
            pinned: false,
            conversion: None,
            schema1_layers: img
                .layers
                .iter()
                .map(|l| OmittedBlob {
                    digest: l.digest.clone(),
                    size: l.data.len() as u64,
                })
                .collect(),
        }),
    };
    let mut blobs = vec![(Digest::of(&img.manifest), img.manifest.clone())];
    blobs.extend(
        img.layers
            .iter()
            .map(|l| (l.digest.clone(), l.data.clone())),
    );
    (Model::of(vec![rec], blobs), img)
}

#[test]
fn r12_schema1_kept_as_served_reads_back_and_lands_under_its_registry_digest() {
    // The positive control of the cases below.
    let (m, img) = schema1_model();
    Case::model(&m).in_sandboxes(|way, sb| {
        let other = other_host();
        let v = sb.run("verify", &[], &other);
        assert_eq!(v.code, Some(0), "{way:?}: {}", v.out);
        let reg = crate::harness::RegistryBuilder::new().schema1().start();
        let u = sb.run("unpack", &["--registry", &reg.url()], &other);
        assert_eq!(u.code, Some(0), "{way:?}: {}", u.out);
        let got = tag_digest(&reg, "google_containers/pause-amd64:3.0");
        assert_eq!(got, Some(img.digest.to_string()), "{way:?}");
        (v.code, u.code, got)
    });
}

#[test]
fn r12_schema1_whose_payload_is_not_the_recorded_registry_digest() {
    // The record claims another registry digest: the push would land under a digest the
    // bytes do not give, and a rerun would take it for done.
    let (mut m, img) = schema1_model();
    let other_digest = Digest::of(b"another manifest");
    m.edit_bundle_json(|v| {
        v["images"][0]["upstream"]["digest"] = other_digest.to_string().into();
    });
    let needles = [S1_IMG, "payload hashes to", &img.digest.to_string()];
    refused(Case::model(&m), &needles);
}

#[test]
fn r12_schema1_whose_recorded_layers_are_not_its_fslayers() {
    // A layer left out of upstream.schema1Layers would be neither verified nor pushed.
    let (mut m, _) = schema1_model();
    m.edit_bundle_json(|v| {
        v["images"][0]["upstream"]["schema1Layers"]
            .as_array_mut()
            .unwrap()
            .pop();
    });
    let needles = [S1_IMG, "schema1Layers"];
    refused(Case::model(&m), &needles);
}

#[test]
fn r12_schema1_whose_recorded_layer_size_lies() {
    let (mut m, img) = schema1_model();
    m.edit_bundle_json(|v| {
        v["images"][0]["upstream"]["schema1Layers"][1]["size"] = 10.into();
    });
    let needles = [S1_IMG, &img.layers[1].digest.to_string()];
    refused(Case::model(&m), &needles);
}

#[test]
fn r12_a_schema2_manifest_labelled_schema1() {
    // A document that is not schema 1 cannot pass as one to reach the schema 1 path.
    let (mut m, _) = schema1_model();
    let docker = Model::base().top_manifest(DOCKER_IMG);
    m.replace_top(S1_IMG, docker, media_type::DOCKER_SCHEMA1_SIGNED);
    let needles = [S1_IMG, "schema 1"];
    refused(Case::model(&m), &needles);
}
