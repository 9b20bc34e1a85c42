//! SIGINT and SIGTERM during pack and unpack: a clean stop (exit 130/143, temporary files
//! removed, nothing under a final name) and a rerun that finishes the job.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use airlock::bundle::reader::BundleReader;

use crate::harness::proxy::{Faults, Proxy};
use crate::harness::Registry;
use crate::pack::{pack_17, Upstream, SELECT_17};
use crate::support::*;

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args(args)
        .env("AIRLOCK_RETRY_BASE_MS", "2")
        .env("HOME", std::env::temp_dir().join("airlock-test-home"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running airlock")
}

/// Sends `sig` after `after`, then waits; returns the exit code and stderr.
fn interrupt(mut child: Child, sig: i32, after: Duration) -> (Option<i32>, String) {
    std::thread::sleep(after);
    if child.try_wait().unwrap().is_some() {
        let out = child.wait_with_output().unwrap();
        panic!(
            "finished before the signal ({:?}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Upstream stand-ins behind proxies that stall for good after 300 kB of answers: a pack
/// through them hangs in a read, which only the watchdog can end.
fn stalling(up: &Upstream) -> (Proxy, Proxy) {
    let slow = Faults {
        hang_after_response_bytes: Some(300_000),
        ..Faults::default()
    };
    (
        Proxy::start(&up.docker.host(), slow.clone()),
        Proxy::start(&up.gcr.host(), slow),
    )
}

/// `airlock pack` of the 17 images into `bundle` through the proxies, with `cache_args`.
fn pack_args(bundle: &Path, cache_args: &[String], pd: &Proxy, pg: &Proxy) -> Vec<String> {
    let mut args: Vec<String> = vec!["pack".into()];
    args.extend(SELECT_17.iter().map(|s| s.to_string()));
    args.extend(["-o".into(), bundle.display().to_string()]);
    args.extend(cache_args.iter().cloned());
    args.extend([
        "--jobs".into(),
        "2".into(),
        "--mirror".into(),
        format!("docker.io={}", pd.url()),
        "--mirror".into(),
        format!("gcr.io={}", pg.url()),
    ]);
    args.extend(fixture_pack_args());
    args
}

#[test]
fn sigint_stops_a_pack_without_cache_and_leaves_nothing() {
    let up = Upstream::start();
    let (pd, pg) = stalling(&up);
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.zst");
    let args = pack_args(&bundle, &["--no-cache".into()], &pd, &pg);
    let (code, err) = interrupt(spawn(&args), libc::SIGINT, Duration::from_millis(1500));
    assert_eq!(code, Some(130), "{err}");
    assert!(
        files_in(dir.path()).is_empty(),
        "the temporary downloads are gone too: {:?}",
        files_in(dir.path())
    );
}

#[test]
fn sigint_stops_pack_cleanly_and_a_rerun_resumes() {
    let up = Upstream::start();
    let (pd, pg) = stalling(&up);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let bundle = out.join("bundle.tar.zst");
    let cache = dir.path().join("cache");
    let args = pack_args(
        &bundle,
        &["--cache".into(), cache.display().to_string()],
        &pd,
        &pg,
    );
    let (code, err) = interrupt(spawn(&args), libc::SIGINT, Duration::from_millis(1500));
    assert_eq!(code, Some(130), "{err}");
    assert!(
        err.contains("interrupted by SIGINT") && err.contains("resume"),
        "{err}"
    );
    assert!(
        files_in(&out).is_empty(),
        "nothing is left in the output directory: {:?}",
        files_in(&out)
    );
    assert!(
        files_in(&cache.join("tmp")).is_empty(),
        "no partial downloads: {:?}",
        files_in(&cache.join("tmp"))
    );
    let cached = files_in(&cache.join("blobs/sha256")).len();
    // The interrupt must come after some downloads, or the rerun resumes nothing.
    assert!(cached > 0, "nothing was cached before the interrupt: {err}");

    // The rerun, at full speed, finishes and uses what the first run downloaded.
    let o = pack_17(&up, &bundle, &cache, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("({cached} blobs from cache)")),
        "{cached} blobs were cached before: {}",
        stderr(&o)
    );
    assert_eq!(
        BundleReader::open(&bundle)
            .unwrap()
            .bundle_manifest()
            .unwrap()
            .images
            .len(),
        17
    );
}

#[test]
fn sigterm_stops_unpack_cleanly_and_a_rerun_finishes() {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.zst");
    assert!(pack_17(&up, &bundle, &dir.path().join("cache"), &[])
        .status
        .success());
    let target = Registry::start();
    let proxy = Proxy::start(
        &target.host(),
        Faults {
            hang_after_response_bytes: Some(2_000),
            ..Faults::default()
        },
    );
    let args: Vec<String> = vec![
        "unpack".into(),
        bundle.display().to_string(),
        "--registry".into(),
        proxy.url(),
        "--jobs".into(),
        "2".into(),
    ];
    let (code, err) = interrupt(spawn(&args), libc::SIGTERM, Duration::from_millis(2500));
    assert_eq!(code, Some(143), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    // The rerun completes with every digest right.
    proxy.set_faults(Faults::default());
    let o = airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &target.url(),
        "--output",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for img in v["images"].as_array().unwrap() {
        assert_ne!(img["status"], "failed", "{img}");
    }
    assert_targets(&bundle, &target, "");
}
