//! Issue 17: every input has bounded time, memory and file handles. Each case builds its
//! hostile bundle or side file here, runs the binary as a child with a timeout (and, where the
//! case is about handles, a lowered `RLIMIT_NOFILE`), and measures the peak RSS of that child
//! alone (its `VmHWM`; no tool needed). A bundle case runs through every reader: the seekable
//! file, the same frames without their seek table (a plain zstd stream), and `-` on standard
//! input.

use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock::bundle::format::ImageRecord;
use airlock::digest::Digest;
use airlock::media_type;
use serde_json::json;

use crate::harness::fake::{FakeServer, Reply};
use crate::harness::proxy::{Faults, Proxy};
use crate::rawbundle::*;
use crate::support::{fixture, read_all};

/// Wall time allowed to one run (a debug build on a busy 2-core machine).
const TIMEOUT: Duration = Duration::from_secs(20);
/// Peak RSS allowed to one run: a few frame buffers and the distinct documents of a bundle.
const MAX_RSS_KB: u64 = 200 << 10;

/// What one run of the binary did.
pub struct Run {
    pub code: Option<i32>,
    pub out: String,
    pub max_rss_kb: u64,
    pub elapsed: Duration,
}

impl Run {
    /// Exit code 1, no panic, every needle in the output, and within the memory bound.
    pub fn refused(&self, what: &str, needles: &[&str]) {
        assert_eq!(self.code, Some(1), "{what}: exit code\n{}", self.out);
        self.says(what, needles);
    }

    /// Exit code 0, within the memory bound.
    pub fn accepted(&self, what: &str) {
        assert_eq!(self.code, Some(0), "{what}: exit code\n{}", self.out);
        self.says(what, &[]);
    }

    fn says(&self, what: &str, needles: &[&str]) {
        eprintln!(
            "{what}: exit {:?}, {} kB, {:.2?}",
            self.code, self.max_rss_kb, self.elapsed
        );
        assert!(
            !self.out.contains("panicked"),
            "{what}: panic\n{}",
            self.out
        );
        for n in needles {
            assert!(self.out.contains(n), "{what}: no {n:?} in:\n{}", self.out);
        }
        assert!(
            self.max_rss_kb < MAX_RSS_KB,
            "{what}: peaked at {} kB (bound {MAX_RSS_KB} kB)\n{}",
            self.max_rss_kb,
            self.out
        );
    }
}

/// How to run the binary.
#[derive(Default)]
pub struct Opts<'a> {
    /// A file given as standard input.
    pub stdin: Option<&'a Path>,
    /// `RLIMIT_NOFILE` of the child.
    pub nofile: Option<u64>,
    pub env: &'a [(&'a str, &'a str)],
}

/// `VmHWM` (peak RSS, kB) of process `pid` once it runs airlock: before its exec, a child
/// forked from this (large) test process shows this process's pages.
fn airlock_hwm_kb(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    if field("Name:")? != "airlock" {
        return None;
    }
    field("VmHWM:")?.trim_end_matches("kB").trim().parse().ok()
}

/// This test process's own `VmHWM`, kB.
fn own_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// Runs airlock with `args`, killing it (and failing) after [`TIMEOUT`].
///
/// The peak RSS is the child's `VmHWM`, read every 5 ms while it runs. `wait4`'s `ru_maxrss`
/// alone would not do: Linux counts in it the memory of the process image the child was forked
/// from (this test process) until its exec. Where `ru_maxrss` is above this process's own peak,
/// it can only be the child's, and it is exact.
pub fn run(args: &[&str], o: &Opts<'_>) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.args(args)
        .env("AIRLOCK_RETRY_BASE_MS", "2")
        .env("HOME", home.path())
        .env_remove("DOCKER_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(match o.stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        })
        .process_group(0);
    for (k, v) in o.env {
        cmd.env(k, v);
    }
    if let Some(n) = o.nofile {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let started = Instant::now();
    // Reaped by wait4 below, which also gives its rusage (`Child::wait` would not).
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("running airlock");
    let pid = child.id() as libc::pid_t;
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || read_all(&mut so));
    let t_err = std::thread::spawn(move || read_all(&mut se));
    let mut status = 0;
    // SAFETY: plain data, filled in by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let mut hwm = 0;
    loop {
        if let Some(kb) = airlock_hwm_kb(pid) {
            hwm = hwm.max(kb);
        }
        // SAFETY: waits for our own child; status and usage are valid for writes.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break;
        }
        assert!(r == 0, "wait4: {}", std::io::Error::last_os_error());
        if started.elapsed() > TIMEOUT {
            // SAFETY: signals our own process group, then reaps the child.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
                libc::wait4(pid, &mut status, 0, &mut usage);
            }
            panic!("airlock {args:?} ran longer than {TIMEOUT:?} (peak at least {hwm} kB)");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = started.elapsed();
    let maxrss = usage.ru_maxrss as u64;
    if maxrss > own_hwm_kb() {
        hwm = hwm.max(maxrss);
    }
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&t_out.join().unwrap()),
        String::from_utf8_lossy(&t_err.join().unwrap())
    );
    Run {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        out,
        max_rss_kb: hwm,
        elapsed,
    }
}

/// A bundle case written for three readers ([`Case::frames`]): the seekable file, the same
/// frames without their seek table (a plain zstd stream, as the zstd tool reads it), and that
/// plain file again for standard input.
struct Drivers {
    dir: tempfile::TempDir,
    case: Case,
}

impl Drivers {
    fn new(frames: &Frames) -> Drivers {
        let dir = tempfile::tempdir().unwrap();
        let case = Case::frames(frames);
        std::fs::write(dir.path().join("bundle.tar.zst"), case.input(Way::Seekable)).unwrap();
        std::fs::write(dir.path().join("plain.tar.zst"), case.input(Way::Plain)).unwrap();
        Drivers { dir, case }
    }

    fn seekable(&self) -> PathBuf {
        self.dir.path().join("bundle.tar.zst")
    }

    fn plain(&self) -> PathBuf {
        self.dir.path().join("plain.tar.zst")
    }

    /// Runs `cmd BUNDLE rest..` for each driver, the three at once; `check` judges each run,
    /// and the three must end with the same exit code.
    fn each(&self, cmd: &str, rest: &[&str], check: impl Fn(&str, &Run) + Sync) {
        let (seekable, plain) = (self.seekable(), self.plain());
        self.case.each(|way, _| {
            let (label, path, stdin) = match way {
                Way::Seekable => ("seekable", seekable.to_str().unwrap(), None),
                Way::Plain => ("plain zstd", plain.to_str().unwrap(), None),
                Way::Stdin => ("stdin", "-", Some(plain.as_path())),
            };
            let mut args = vec![cmd, path];
            args.extend_from_slice(rest);
            let r = run(
                &args,
                &Opts {
                    stdin,
                    ..Opts::default()
                },
            );
            check(&format!("{cmd} ({label})"), &r);
            r.code
        });
    }

    /// `verify` and `unpack --dry-run` (the structural check and the plan, no registry)
    /// accept the bundle through every reader, each within the bounds.
    fn verify_and_plan(&self) {
        self.each("verify", &[], |what, r| r.accepted(what));
        self.each(
            "unpack",
            &["--dry-run", "--registry", "127.0.0.1:9"],
            |what, r| r.accepted(what),
        );
    }
}

/// Blob entries: digest and bytes.
type Blobs = Vec<(Digest, Vec<u8>)>;

fn record(source: &str, digest: &Digest, media_type: &str, size: u64) -> ImageRecord {
    let (_, path) = source.split_once('/').unwrap();
    ImageRecord {
        source: source.into(),
        target: path.into(),
        alt_targets: vec![],
        group: "list".into(),
        digest: digest.clone(),
        media_type: media_type.into(),
        size,
        total_bytes: size,
        from_index: None,
        upstream: None,
    }
}

/// The Docker image of the base bundle: its manifest padded with spaces to `size` bytes
/// (still the same JSON), and its config and layers.
fn padded_image(size: usize) -> (Vec<u8>, Blobs) {
    let f = fixture(DOCKER_IMG);
    let mut raw = f.artifact.manifest().to_vec();
    raw.resize(size, b' ');
    let img = &f.artifact.images()[0];
    let mut blobs = vec![(img.config.digest.clone(), img.config.data.clone())];
    for l in &img.layers {
        blobs.push((l.digest.clone(), l.data.clone()));
    }
    (raw, blobs)
}

// ---- point 5: time bounded by the input ----

#[test]
fn r17_headers_sharing_one_64_mib_frame_are_handled_in_time() {
    // 131,072 directory headers decompress to one 64 MiB frame of a few hundred kB. A reader
    // that decompresses the whole frame for each 512-byte header does 131,072 x 64 MiB.
    let dirs: Vec<u8> = (0..131_072u32)
        .flat_map(|i| header(format!("d{i:06}/").as_bytes(), 0, b'5'))
        .collect();
    let chunks = before_end(Model::base().chunks(), vec![Chunk::raw("dirs", dirs)]);
    let d = Drivers::new(&Frames::from_chunks(&chunks));
    // Through the seek table, the second header is inside the first one's frame; read in one
    // pass, the 100,001st entry is one too many.
    let needle = |what: &str| {
        if what.contains("seekable") {
            "tar header at offset"
        } else {
            "more than 100000 entries"
        }
    };
    d.each("verify", &[], |what, r| {
        r.refused(what, &[needle(what)]);
    });
    d.each(
        "unpack",
        &["--dry-run", "--registry", "127.0.0.1:9"],
        |what, r| {
            r.refused(what, &[needle(what)]);
        },
    );
    let r = run(
        &["inspect", d.seekable().to_str().unwrap()],
        &Opts::default(),
    );
    r.refused("inspect", &["is not at the start of a zstd frame"]);
    // A delta pack reads its base the same way, before it fetches anything.
    let list = d.dir.path().join("images.txt");
    std::fs::write(&list, "docker.io/library/busybox:latest\n").unwrap();
    let out = d.dir.path().join("delta.tar.zst");
    let base = d.seekable();
    let args = [
        "pack",
        "--images",
        list.to_str().unwrap(),
        "--base",
        base.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--mirror",
        "docker.io=http://127.0.0.1:9",
    ];
    run(&args, &Opts::default()).refused("pack --base", &["is not at the start of a zstd frame"]);
}

// ---- point 8: memory bounded by distinct documents ----

/// The Docker image's manifest padded to 4 MiB, its digest, and its config and layers.
fn four_mib_manifest() -> (Digest, Vec<u8>, Blobs) {
    let (raw, blobs) = padded_image(4 << 20);
    (Digest::of(&raw), raw, blobs)
}

/// A Docker manifest list naming manifest `m` of `size` bytes `n` times.
fn index_of(m: &Digest, size: usize, n: usize) -> Vec<u8> {
    let child = json!({
        "mediaType": media_type::DOCKER_MANIFEST,
        "digest": m.to_string(),
        "size": size,
        "platform": {"architecture": "amd64", "os": "linux"},
    });
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::DOCKER_LIST,
        "manifests": vec![child; n],
    }))
    .unwrap()
}

/// A bundle of one image, `docker.io/x/many:1`: an index naming the Docker image's manifest
/// (padded to `size` bytes) 400 times. The index digest, and the bytes of its blobs, too.
fn index_bundle(size: usize) -> (Digest, Drivers, u64) {
    let (raw, blobs) = padded_image(size);
    let m = Digest::of(&raw);
    let index = index_of(&m, raw.len(), 400);
    let ix = Digest::of(&index);
    let mut all = vec![(ix.clone(), index.clone()), (m, raw)];
    all.extend(blobs);
    let rec = record(
        "docker.io/x/many:1",
        &ix,
        media_type::DOCKER_LIST,
        index.len() as u64,
    );
    let bytes = all.iter().map(|(_, b)| b.len() as u64).sum();
    (ix, Drivers::new(&Model::of(vec![rec], all).frames()), bytes)
}

#[test]
fn r17_an_index_naming_one_4_mib_manifest_400_times_holds_it_once() {
    index_bundle(4 << 20).1.verify_and_plan();
}

#[test]
fn r17_400_images_sharing_one_4_mib_manifest_hold_it_once() {
    let (m, raw, blobs) = four_mib_manifest();
    let recs = (0..400)
        .map(|i| {
            record(
                &format!("docker.io/x/img{i}:1"),
                &m,
                media_type::DOCKER_MANIFEST,
                raw.len() as u64,
            )
        })
        .collect();
    let mut all = vec![(m.clone(), raw)];
    all.extend(blobs);
    Drivers::new(&Model::of(recs, all).frames()).verify_and_plan();
}

#[test]
fn r17_an_index_naming_one_manifest_many_times_unpacks_exactly() {
    // The index is pushed byte for byte, its one platform manifest once.
    let (ix, d, bytes) = index_bundle(64 << 10);
    for (what, path, stdin) in [
        ("seekable", d.seekable(), None),
        ("stdin", PathBuf::from("-"), Some(d.plain())),
    ] {
        let reg = crate::harness::Registry::start();
        // Through a proxy that counts what is sent.
        let proxy = Proxy::start(&reg.host(), Faults::default());
        let r = run(
            &["unpack", path.to_str().unwrap(), "--registry", &proxy.url()],
            &Opts {
                stdin: stdin.as_deref(),
                ..Opts::default()
            },
        );
        r.accepted(&format!("unpack ({what})"));
        let got = crate::harness::http::send(
            "HEAD",
            &format!("{}/v2/x/many/manifests/1", reg.url()),
            &[("Accept", media_type::MANIFEST_ACCEPT)],
            b"",
        );
        assert_eq!(
            got.header("Docker-Content-Digest"),
            Some(ix.to_string().as_str())
        );
        // Pushed 400 times, the platform manifest alone would be 26 MB.
        let sent = proxy.up_bytes();
        assert!(
            sent < bytes + (1 << 20),
            "{sent} bytes sent for {bytes} bytes of blobs ({what})"
        );
    }
}

#[test]
fn r17_pack_all_platforms_fetches_a_manifest_named_400_times_once() {
    let (m, raw, blobs) = four_mib_manifest();
    let index = index_of(&m, raw.len(), 400);
    let ix = Digest::of(&index);
    let mut served: Vec<(String, &'static str, Vec<u8>)> = vec![
        (
            "/v2/x/many/manifests/1".into(),
            media_type::DOCKER_LIST,
            index,
        ),
        (
            format!("/v2/x/many/manifests/{m}"),
            media_type::DOCKER_MANIFEST,
            raw,
        ),
    ];
    for (d, data) in blobs {
        served.push((
            format!("/v2/x/many/blobs/{d}"),
            "application/octet-stream",
            data,
        ));
    }
    let up = serving(served);
    let packed = pack_list(&up, &["docker.io/x/many:1".into()], &["--all-platforms"]);
    packed.run.accepted("pack --all-platforms");
    let out = &packed.out;
    let child_gets = up
        .requests()
        .iter()
        .filter(|r| r.path.replace("%3A", ":").ends_with(&m.to_string()))
        .count();
    assert_eq!(child_gets, 1, "the platform manifest is fetched once");
    run(&["verify", out.to_str().unwrap()], &Opts::default()).accepted("verify");
    let r = airlock::bundle::reader::BundleReader::open(out).unwrap();
    assert_eq!(r.bundle_manifest().unwrap().images[0].digest, ix);
}

// ---- point 9: names are bounded ----

#[test]
fn r17_long_pax_names_are_refused_before_they_cost_memory() {
    // 8,000 unknown entries, each named by a 64 KiB PAX path: a 2 MB bundle that held 1 GB.
    let mut extra = Vec::new();
    for i in 0..8_000 {
        let name = format!("meta/{i:05}/{}", "n".repeat(65_000));
        extra.extend(pax_chunks(&[("path", &name)]));
        extra.push(Chunk::header("x", header(b"placeholder", 0, b'0')));
    }
    let d = Drivers::new(&Frames::from_chunks(&before_end(
        Model::base().chunks(),
        extra,
    )));
    d.each("verify", &[], |what, r| {
        r.refused(what, &["meta/00000/nnn", "longer than the 1024 bytes"])
    });
    let r = run(
        &["inspect", d.seekable().to_str().unwrap()],
        &Opts::default(),
    );
    r.refused("inspect", &["longer than the 1024 bytes"]);
}

#[test]
fn r17_a_pax_header_claiming_a_gib_is_refused_unread() {
    // The sequential reader used to read a PAX record whole, whatever its size: 1 GiB of
    // zeros is 16 frames of a few kB.
    let mut frames = Frames::from_chunks(&Model::base().chunks());
    let end = frames.0.pop().unwrap();
    let frame = |label: &str, compressed: Vec<u8>, d_size: u32| Frame {
        label: label.into(),
        compressed,
        d_size,
    };
    frames.0.push(frame(
        "pax-header",
        zstd_frame(&header(b"PaxHeaders/x", 1 << 30, b'x')),
        512,
    ));
    for _ in 0..16 {
        frames.0.push(frame(
            "pax-data",
            rle_frame(0, 64 << 20, Some(64 << 20)),
            64 << 20,
        ));
    }
    frames
        .0
        .push(frame("name", zstd_frame(&header(b"x", 0, b'0')), 512));
    frames.0.push(end);
    Drivers::new(&frames).each("verify", &[], |what, r| {
        r.refused(
            what,
            &["PAX header of 1073741824 bytes is larger than the 65536 accepted"],
        )
    });
}

// ---- point 10: side files are capped ----

/// A sparse file of `len` bytes: no disk, all zeros.
fn sparse(path: &Path, len: u64) {
    std::fs::File::create(path).unwrap().set_len(len).unwrap();
}

/// Writes `bundle` as parts of `split` bytes beside `base`, with parts.json and the checksum
/// file, as `pack --split` does; the part paths.
pub(crate) fn write_parts(base: &Path, bundle: &[u8], split: u64) -> Vec<PathBuf> {
    let mut w = airlock::parts::SplitWriter::new(base, split);
    w.write_all(bundle).unwrap();
    let m = w.finish().unwrap();
    std::fs::write(
        airlock::parts::manifest_path(base),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    let lines: Vec<(Digest, String)> = m
        .parts
        .iter()
        .map(|p| (p.sha256.clone(), p.name.clone()))
        .collect();
    airlock::sidecar::write(&airlock::parts::sidecar_path(base), &lines, &[]).unwrap();
    (0..m.parts.len())
        .map(|i| airlock::parts::part_path(base, i))
        .collect()
}

const TWO_GIB: u64 = 2 << 30;

#[test]
fn r17_side_files_over_their_cap_are_refused_without_reading_them() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Model::base().bundle();
    // The checksum file beside a whole bundle.
    std::fs::create_dir(dir.path().join("whole")).unwrap();
    let whole = dir.path().join("whole/bundle.tar.zst");
    std::fs::write(&whole, &bundle).unwrap();
    sparse(&airlock::parts::sidecar_path(&whole), TWO_GIB);
    run(&["verify", whole.to_str().unwrap()], &Opts::default()).refused(
        "verify with a 2 GiB .sha256",
        &["bundle.tar.zst.sha256", "more than the 8388608 bytes"],
    );
    // parts.json of a split bundle.
    std::fs::create_dir(dir.path().join("split")).unwrap();
    let base = dir.path().join("split/bundle.tar.zst");
    let parts = write_parts(&base, &bundle, 1 << 16);
    sparse(&airlock::parts::manifest_path(&base), TWO_GIB);
    run(&["verify", parts[0].to_str().unwrap()], &Opts::default()).refused(
        "verify with a 2 GiB parts.json",
        &["bundle.tar.zst.parts.json", "more than the 8388608 bytes"],
    );
    // Without parts.json, the layout comes from the checksum file.
    std::fs::remove_file(airlock::parts::manifest_path(&base)).unwrap();
    sparse(&airlock::parts::sidecar_path(&base), TWO_GIB);
    run(&["inspect", parts[0].to_str().unwrap()], &Opts::default()).refused(
        "inspect with a 2 GiB .sha256 and no parts.json",
        &["bundle.tar.zst.sha256", "more than the 8388608 bytes"],
    );
    // The inventory of a delta pack, read before anything is fetched.
    let inv = dir.path().join("inventory.json");
    sparse(&inv, TWO_GIB);
    let list = dir.path().join("images.txt");
    std::fs::write(&list, "docker.io/library/busybox:latest\n").unwrap();
    let out = dir.path().join("delta.tar.zst");
    run(
        &[
            "pack",
            "--images",
            list.to_str().unwrap(),
            "--base-registry-inventory",
            inv.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--mirror",
            "docker.io=http://127.0.0.1:9",
        ],
        &Opts::default(),
    )
    .refused(
        "pack with a 2 GiB inventory",
        &["inventory.json", "more than the 8388608 bytes"],
    );
    assert!(!out.exists());
}

// ---- point 7: only regular files are opened ----

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn r17_a_checksum_file_naming_a_fifo_or_dev_zero_does_not_hang_verify() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Model::base().bundle();
    let path = dir.path().join("bundle.tar.zst");
    std::fs::write(&path, &bundle).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
    mkfifo(&dir.path().join("fifo"));
    let zero = Digest::of(b"");
    airlock::sidecar::write(
        &airlock::parts::sidecar_path(&path),
        &[
            (Digest::of(&bundle), "bundle.tar.zst".into()),
            (zero.clone(), "zero".into()),
            (zero, "fifo".into()),
        ],
        &[],
    )
    .unwrap();
    run(&["verify", path.to_str().unwrap()], &Opts::default()).refused(
        "verify",
        &[
            "file zero: cannot be read",
            "file fifo: cannot be read",
            "not a regular file",
        ],
    );
}

#[test]
fn r17_a_part_that_is_a_fifo_is_refused_not_opened() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = Model::base().bundle();
    let base = dir.path().join("bundle.tar.zst");
    let parts = write_parts(&base, &bundle, 4096);
    let n = parts.len();
    let last = parts[n - 1].clone();
    let last_name = format!("bundle.tar.zst.{:03}", n - 1);
    // The last part is a FIFO, and parts.json says it is empty (as a FIFO's size reads).
    std::fs::remove_file(&last).unwrap();
    mkfifo(&last);
    let mpath = airlock::parts::manifest_path(&base);
    let mut m: serde_json::Value = serde_json::from_slice(&std::fs::read(&mpath).unwrap()).unwrap();
    m["parts"][n - 1]["size"] = 0.into();
    std::fs::write(&mpath, serde_json::to_vec(&m).unwrap()).unwrap();
    let first = parts[0].to_str().unwrap();
    run(&["verify", first], &Opts::default()).refused(
        "verify (parts.json)",
        &[
            ".parts.json is not a valid parts manifest",
            &format!("part {} is 0 bytes", n - 1),
        ],
    );
    // Without parts.json, the checksum file gives the parts and their sizes come from the disk.
    std::fs::remove_file(&mpath).unwrap();
    run(&["verify", first], &Opts::default()).refused(
        "verify (checksum file)",
        &[&last_name, "not a regular file but a FIFO"],
    );
    // A part that is a symbolic link to /dev/zero.
    std::fs::remove_file(&last).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &last).unwrap();
    run(&["verify", first], &Opts::default()).refused(
        "verify (symlink to /dev/zero)",
        &[&last_name, "not a regular file but a character device"],
    );
    // An empty regular file as the last part.
    std::fs::remove_file(&last).unwrap();
    std::fs::write(&last, b"").unwrap();
    run(&["verify", first], &Opts::default()).refused(
        "verify (empty part)",
        &[&format!("part {} is empty", last.display())],
    );
}

// ---- point 13: file handles ----

/// The base bundle with one more (ignored) file of incompressible bytes, so it is large.
fn large_bundle(extra: usize) -> Vec<u8> {
    let noise = crate::support::noise(extra);
    let chunks = before_end(
        Model::base().chunks(),
        file_chunks(b"notes.bin", &noise, b'0'),
    );
    Frames::from_chunks(&chunks).file()
}

#[test]
fn r17_a_bundle_in_many_parts_verifies_with_64_file_handles() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = large_bundle(1 << 20);
    let base = dir.path().join("bundle.tar.zst");
    let parts = write_parts(&base, &bundle, 4096);
    assert!(parts.len() > 256, "{} parts", parts.len());
    for args in [
        vec!["verify", parts[0].to_str().unwrap()],
        vec!["inspect", base.to_str().unwrap()],
    ] {
        let r = run(
            &args,
            &Opts {
                nofile: Some(64),
                ..Opts::default()
            },
        );
        r.accepted(&format!(
            "{} of {} parts with 64 handles",
            args[0],
            parts.len()
        ));
    }
}

// ---- points 11, 12 and 13: pack applies the readers' bounds before it fetches a blob ----

/// A Docker manifest whose config and layers have these declared sizes (the blobs exist
/// nowhere: pack must refuse before it asks for them). Digests differ with the sizes.
fn manifest_declaring(config_size: u64, layer_sizes: &[u64]) -> Vec<u8> {
    let desc = |mt: &str, i: usize, size: u64| {
        let d = Digest::of(format!("{config_size} {i} {size}").as_bytes());
        json!({"mediaType": mt, "digest": d.to_string(), "size": size})
    };
    let layers: Vec<_> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, s)| desc(media_type::DOCKER_LAYER_GZIP, i + 1, *s))
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": media_type::DOCKER_MANIFEST,
        "config": desc(media_type::DOCKER_CONFIG, 0, config_size),
        "layers": layers,
    }))
    .unwrap()
}

/// A registry serving `served` (path, media type, body), and nothing else; it records every
/// request.
fn serving(mut served: Vec<(String, &'static str, Vec<u8>)>) -> FakeServer {
    // Every manifest by its digest too, as registries serve them (pack resolves a tag with
    // HEAD, then GETs the manifest by digest).
    let by_digest: Vec<_> = served
        .iter()
        .filter_map(|(p, mt, body)| {
            let (repo, _) = p.split_once("/manifests/")?;
            Some((
                format!("{repo}/manifests/{}", Digest::of(body)),
                *mt,
                body.clone(),
            ))
        })
        .collect();
    for s in by_digest {
        if !served.iter().any(|(p, _, _)| *p == s.0) {
            served.push(s);
        }
    }
    FakeServer::start(move |req| {
        let path = req.path.replace("%3A", ":");
        match served.iter().find(|(p, _, _)| *p == path) {
            Some((_, mt, body)) => Reply::new(200)
                .header("Content-Type", mt)
                .header("Docker-Content-Digest", &Digest::of(body).to_string())
                .body(body.clone()),
            None => Reply::new(if path == "/v2/" { 200 } else { 404 }),
        }
    })
}

/// A registry serving `manifests` (repository, tag, body) as Docker manifests, and nothing else.
fn upstream(manifests: Vec<(&str, &str, Vec<u8>)>) -> FakeServer {
    serving(
        manifests
            .into_iter()
            .map(|(repo, tag, body)| {
                let path = format!("/v2/{repo}/manifests/{tag}");
                (path, media_type::DOCKER_MANIFEST, body)
            })
            .collect(),
    )
}

/// What `pack_list` did, and where.
struct Packed {
    _dir: tempfile::TempDir,
    out: PathBuf,
    run: Run,
}

impl Packed {
    /// Refused, and nothing written under the output's name.
    fn refused(&self, what: &str, needles: &[&str]) {
        self.run.refused(what, needles);
        let out = &self.out;
        assert!(!out.exists() && !airlock::parts::part_path(out, 0).exists());
    }
}

/// `airlock pack --images LIST` through `up` as docker.io's mirror.
fn pack_list(up: &FakeServer, images: &[String], extra: &[&str]) -> Packed {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("images.txt");
    std::fs::write(&list, images.join("\n")).unwrap();
    let out = dir.path().join("b.tar.zst");
    let mirror = format!("docker.io={}", up.url());
    let mut args = vec![
        "pack",
        "--images",
        list.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--cache",
        dir.path().to_str().unwrap(),
        "--mirror",
        &mirror,
    ];
    args.extend_from_slice(extra);
    let run = run(&args, &Opts::default());
    Packed {
        _dir: dir,
        out,
        run,
    }
}

/// No blob was asked for.
fn no_blob_requested(up: &FakeServer) {
    let blobs: Vec<String> = up
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/blobs/"))
        .map(|r| r.path)
        .collect();
    assert!(blobs.is_empty(), "{blobs:?}");
}

/// Readers refuse a tar of more than 100,000 entries; four images of 26,000 distinct small
/// layers each (within every other bound) would make 104,011. `pack` refuses before it
/// downloads, not after writing a bundle `verify` refuses.
#[test]
fn r17_pack_refuses_more_entries_than_readers_accept_before_any_download() {
    let layers = vec![1u64; 26_000];
    let manifests: Vec<(String, Vec<u8>)> = (0..4u64)
        .map(|i| (format!("x/m{i}"), manifest_declaring(100 + i, &layers)))
        .collect();
    let up = upstream(
        manifests
            .iter()
            .map(|(repo, m)| (repo.as_str(), "1", m.clone()))
            .collect(),
    );
    let images: Vec<String> = (0..4).map(|i| format!("docker.io/x/m{i}:1")).collect();
    pack_list(&up, &images, &[]).refused(
        "104,011 entries",
        &["104011 entries", "more than the 100000"],
    );
    no_blob_requested(&up);
}

#[test]
fn r17_sizes_that_overflow_are_refused_before_any_download() {
    let half = 1u64 << 63;
    let up = upstream(vec![
        ("x/two", "1", manifest_declaring(100, &[half, half])),
        ("x/a", "1", manifest_declaring(100, &[half])),
        ("x/b", "1", manifest_declaring(100, &[half - 1])),
    ]);
    // Two layers of 2^63 bytes in one image wrap its size to 0.
    pack_list(&up, &["docker.io/x/two:1".into()], &[]).refused(
        "one image of 2 x 2^63 bytes",
        &["docker.io/x/two:1", "add up to more than 2^64 bytes"],
    );
    // Two images of about 2^63 bytes each: each fits, the bundle does not.
    pack_list(
        &up,
        &["docker.io/x/a:1".into(), "docker.io/x/b:1".into()],
        &[],
    )
    .refused(
        "two images of 2^63 bytes",
        &["the images' blobs add up to more than 2^64 bytes"],
    );
    no_blob_requested(&up);
}

#[test]
fn r17_pack_refuses_what_its_readers_would_refuse_before_any_download() {
    let up = upstream(vec![
        ("x/big", "1", manifest_declaring(9 << 20, &[100])),
        ("x/y", "z", manifest_declaring(100, &[100])),
        ("x/huge", "1", manifest_declaring(100, &[100 << 20])),
    ]);
    // A 9 MiB config: readers accept 8 MiB.
    pack_list(&up, &["docker.io/x/big:1".into()], &[]).refused(
        "a 9 MiB config",
        &[
            "docker.io/x/big:1",
            "is 9437184 bytes, more than the 8388608 accepted",
        ],
    );
    no_blob_requested(&up);
    // Two images that unpack would push to one tag: refused before any request.
    let before = up.requests().len();
    let twins = [
        "docker.io/x/y:z".to_string(),
        format!("{}/x/y:z", up.host()),
    ];
    pack_list(&up, &twins, &[]).refused(
        "two images for one target",
        &["would both be pushed to x/y:z", "docker.io/x/y:z"],
    );
    assert_eq!(up.requests().len(), before, "nothing was fetched");
    // An image named by its digest alone has no tag for unpack to push to.
    let by_digest = format!("docker.io/x/y@{}", Digest::of(b"any"));
    pack_list(&up, &[by_digest], &[]).refused(
        "an image without a tag",
        &["is not a repository:tag", "name the image with a tag"],
    );
    assert_eq!(up.requests().len(), before, "nothing was fetched");
    // --split 4K of a 100 MiB bundle would be 25,600 parts.
    pack_list(&up, &["docker.io/x/huge:1".into()], &["--split", "4K"]).refused(
        "--split 4K of 100 MiB",
        &[
            "more than the 10000 airlock reads",
            "use --split 1M or larger",
        ],
    );
    no_blob_requested(&up);
}

/// The Docker image as bundle entries: its manifest's digest and size, and the manifest,
/// config and layers.
fn docker_image() -> (Digest, u64, Blobs) {
    let raw = fixture(DOCKER_IMG).artifact.manifest().to_vec();
    let (raw, mut blobs) = padded_image(raw.len());
    let m = Digest::of(&raw);
    blobs.insert(0, (m.clone(), raw.clone()));
    (m, raw.len() as u64, blobs)
}

#[test]
fn r17_verify_reports_two_images_for_one_target() {
    let (m, size, blobs) = docker_image();
    let mt = media_type::DOCKER_MANIFEST;
    let recs = vec![
        record("docker.io/x/y:z", &m, mt, size),
        record("127.0.0.1:5000/x/y:z", &m, mt, size),
    ];
    let d = Drivers::new(&Model::of(recs, blobs).frames());
    // Sources in bundle.json order: 127.0.0.1:5000/... sorts first.
    let needles = [
        "docker.io/x/y:z: its target x/y:z is also the target of 127.0.0.1:5000/x/y:z",
        "one would overwrite the other",
    ];
    d.each("verify", &[], |what, r| r.refused(what, &needles));
    d.each(
        "unpack",
        &["--dry-run", "--registry", "127.0.0.1:9"],
        |what, r| r.refused(what, &["x/y:z"]),
    );
}

/// A target `unpack` would refuse (a `..` path, another host with a port) is reported by
/// `verify` through every reader, not only through the seek table: `verify` before the trip
/// must not say OK to a bundle `unpack` then refuses.
#[test]
fn r17_verify_refuses_a_target_unpack_refuses_through_every_reader() {
    let (m, size, blobs) = docker_image();
    let mut rec = record("docker.io/x/y:z", &m, media_type::DOCKER_MANIFEST, size);
    rec.alt_targets = vec!["a/../../b:1".into()];
    let d = Drivers::new(&Model::of(vec![rec], blobs).frames());
    let needles = [
        "docker.io/x/y:z",
        "target \"a/../../b:1\" is not a repository:tag under the registry",
    ];
    d.each("verify", &[], |what, r| r.refused(what, &needles));
}
