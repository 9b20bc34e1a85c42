//! Flaky networks and busy registries: stalls, expiring tokens, load, and secrets.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use airlock::registry::{Client, Credentials, Endpoint};

use crate::harness::proxy::{Faults, Proxy};
use crate::harness::{Registry, RegistryBuilder, TokenPolicy};
use crate::pack::{pack_17, Upstream};
use crate::support::*;

fn packed() -> (tempfile::TempDir, std::path::PathBuf) {
    let up = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.tar.zst");
    let o = pack_17(&up, &bundle, &dir.path().join("cache"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    (dir, bundle)
}

#[test]
fn a_stalled_registry_hits_the_timeout_with_a_clear_error() {
    let (_dir, bundle) = packed();
    let target = Registry::start();
    // The registry answers the first requests, then stops answering without closing.
    let proxy = Proxy::start(
        &target.host(),
        Faults {
            hang_after_response_bytes: Some(20_000),
            ..Faults::default()
        },
    );
    let started = Instant::now();
    let o = airlock_with(
        &[
            "unpack",
            bundle.to_str().unwrap(),
            "--registry",
            &proxy.url(),
        ],
        None,
        &[
            ("AIRLOCK_IO_TIMEOUT_SECS", "1"),
            ("AIRLOCK_RETRY_ATTEMPTS", "2"),
        ],
    );
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}\n{}", stdout(&o), stderr(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("timed out"), "{all}");
    assert!(took < Duration::from_secs(60), "gave up after {took:?}");
}

#[test]
fn expiring_tokens_are_fetched_again_before_they_lapse() {
    for (ttl, refetch) in [(1u64, 1usize), (300, 0)] {
        let reg = RegistryBuilder::new()
            .token_auth(TokenPolicy {
                token_ttl: Duration::from_secs(ttl),
                ..TokenPolicy::new("ops", "pw")
            })
            .start();
        let mut o = fast_options();
        o.endpoints
            .push((reg.host(), Endpoint::parse(&reg.url()).unwrap()));
        o.credentials
            .insert(&reg.host(), Credentials::new("ops", "pw"));
        let client = Client::new(o).unwrap();
        let d = airlock::digest::Digest::of(b"nothing");
        assert_eq!(client.blob_exists(&reg.host(), "a/b", &d).unwrap(), None);
        let before = reg.token_server().unwrap().requests();
        std::thread::sleep(Duration::from_millis(1200));
        assert_eq!(client.blob_exists(&reg.host(), "a/b", &d).unwrap(), None);
        let after = reg.token_server().unwrap().requests();
        assert_eq!(after - before, refetch, "ttl {ttl}s");
    }
}

#[test]
fn three_unpacks_at_once_with_32_jobs_leave_every_digest_right_and_no_session() {
    let (_dir, bundle) = packed();
    let target = Registry::start();
    let children: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|p| {
            Command::new(env!("CARGO_BIN_EXE_airlock"))
                .args([
                    "unpack",
                    bundle.to_str().unwrap(),
                    "--registry",
                    &target.url(),
                ])
                .args(["--prefix", p, "--jobs", "32", "--quiet"])
                .env("AIRLOCK_RETRY_BASE_MS", "2")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    }
    for p in ["a/", "b/", "c/"] {
        assert_targets(&bundle, &target, p);
    }
    let root = target.storage_dir().join("docker/registry/v2/repositories");
    let live = walk(&root)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/_uploads/") && p.ends_with("data"))
        .collect::<Vec<_>>();
    assert!(live.is_empty(), "upload sessions left: {live:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn a_canary_password_appears_nowhere() {
    const CANARY: &str = "canary-7f3a9-secret";
    let (dir, bundle) = packed();
    let reg = Registry::with_htpasswd("ops", CANARY);
    // From a Docker config.json, as an operator who ran `docker login` has it.
    let cfg = dir.path().join("docker");
    std::fs::create_dir(&cfg).unwrap();
    use base64::Engine as _;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ops:{CANARY}"));
    std::fs::write(
        cfg.join("config.json"),
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    )
    .unwrap();
    let docker_config = cfg.to_str().unwrap();
    let url = reg.url();
    for extra in [&[][..], &["--output", "json"][..], &["--dry-run"][..]] {
        let mut args = vec!["unpack", bundle.to_str().unwrap(), "--registry", &url];
        args.extend_from_slice(extra);
        let o = airlock_with(&args, None, &[("DOCKER_CONFIG", docker_config)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(
            !stdout(&o).contains(CANARY) && !stderr(&o).contains(CANARY),
            "{args:?}"
        );
    }
    // Refused credentials: the error says so without repeating them.
    let wrong = format!("{CANARY}-wrong");
    let o = airlock_with(
        &[
            "unpack",
            bundle.to_str().unwrap(),
            "--registry",
            &reg.url(),
            "--username",
            "ops",
            "--password-stdin",
        ],
        Some(wrong.as_bytes()),
        &[],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !stdout(&o).contains(CANARY) && !stderr(&o).contains(CANARY),
        "{}",
        stderr(&o)
    );
    // There is no way to put a password on the command line (where `ps` would show it).
    let o = airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &reg.url(),
        "--password",
        CANARY,
    ]);
    assert_eq!(o.status.code(), Some(2), "clap refuses an unknown flag");
    assert!(stderr(&o).contains("--password"), "{}", stderr(&o));
    // The registry's own log never saw it either.
    assert!(!reg.log().contains(CANARY));
}

#[test]
fn the_registry_killed_mid_push_and_restarted_then_a_rerun_completes() {
    let (_dir, bundle) = packed();
    let mut target = Registry::start();
    // Uploads run through a proxy that stops answering after a while, so pushes are in flight
    // when the registry is killed.
    let proxy = Proxy::start(
        &target.host(),
        Faults {
            hang_after_response_bytes: Some(30_000),
            ..Faults::default()
        },
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_airlock"))
        .args([
            "unpack",
            bundle.to_str().unwrap(),
            "--registry",
            &proxy.url(),
        ])
        .env("AIRLOCK_RETRY_BASE_MS", "2")
        .env("AIRLOCK_RETRY_ATTEMPTS", "2")
        .env("AIRLOCK_IO_TIMEOUT_SECS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the proxy has stalled (uploads are hanging), then SIGKILL the registry.
    let deadline = Instant::now() + Duration::from_secs(30);
    while proxy.up_bytes() < 100_000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Without this the registry would die before any push, and the test would prove nothing
    // about a push cut in the middle.
    assert!(
        proxy.up_bytes() >= 100_000,
        "uploads never got under way: {} bytes sent in 30 s",
        proxy.up_bytes()
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "the unpack is still running when the registry dies"
    );
    target.stop();
    target.restart();
    let o = child.wait_with_output().unwrap();
    // Nothing or not everything pushed (1), or some small images in before the stall (3).
    assert!(
        matches!(o.status.code(), Some(1 | 3)),
        "exit {:?}\n{}\n{}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    // The rerun, straight to the restarted registry, completes with every digest right.
    let o = airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &target.url(),
    ]);
    assert!(o.status.success(), "{}\n{}", stdout(&o), stderr(&o));
    assert_targets(&bundle, &target, "");
}

/// What a registry killed mid-push can leave: a repository's link to a blob written but empty.
/// distribution then answers HEAD of that blob with 500 (it cannot read the link), which made
/// `the_registry_killed_mid_push_and_restarted_then_a_rerun_completes` fail now and then. A HEAD
/// that fails on the registry's side says nothing about the blob, so the rerun uploads it, and
/// the upload rewrites the link.
#[test]
fn a_blob_link_left_empty_by_a_crash_is_uploaded_again() {
    let (_dir, bundle) = packed();
    let target = Registry::start();
    let o = airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &target.url(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let layers = target
        .storage_dir()
        .join("docker/registry/v2/repositories/rancher/k8s/_layers/sha256");
    let link = std::fs::read_dir(&layers)
        .unwrap_or_else(|e| panic!("{}: {e}", layers.display()))
        .map(|e| e.unwrap().path().join("link"))
        .find(|l| l.is_file())
        .expect("rancher/k8s links a blob");
    std::fs::write(&link, b"").unwrap();
    let hex = link
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let head = crate::harness::http::send(
        "HEAD",
        &format!("{}/v2/rancher/k8s/blobs/sha256:{hex}", target.url()),
        &[],
        b"",
    );
    assert_eq!(head.status, 500, "the emptied link is what a crash leaves");
    // As after the crash, the image's manifest never made it: the rerun must push its blobs.
    std::fs::remove_dir_all(
        target
            .storage_dir()
            .join("docker/registry/v2/repositories/rancher/k8s/_manifests"),
    )
    .unwrap();
    let o = airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &target.url(),
    ]);
    assert_exit(&o, 0);
    assert_targets(&bundle, &target, "");
    let head = crate::harness::http::send(
        "HEAD",
        &format!("{}/v2/rancher/k8s/blobs/sha256:{hex}", target.url()),
        &[],
        b"",
    );
    assert_eq!(head.status, 200, "the upload rewrote the link");
}

#[test]
fn inventory_works_against_a_bearer_token_registry() {
    // `_catalog` needs the `registry:catalog:*` scope, which the client takes from the
    // registry's challenge.
    let reg = RegistryBuilder::new()
        .token_auth(TokenPolicy::new("ops", "pw"))
        .start();
    let f = fixture(PAUSE);
    let (_, repo, _) = airlock::fixtures::upstream_path(&f.name);
    let token = reg
        .token_server()
        .unwrap()
        .issue("ops", &[(repo.as_str(), &["pull", "push"][..])]);
    seed_with(
        &reg,
        &[f],
        Some(&crate::harness::http::bearer(&token)),
        None,
    );
    let o = airlock_with(
        &[
            "inventory",
            "--registry",
            &reg.url(),
            "--username",
            "ops",
            "--password-stdin",
        ],
        Some(b"pw"),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let inv: airlock::inventory::Inventory = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(inv.repositories.len(), 1, "{}", stdout(&o));
    assert!(inv
        .blobs()
        .contains_key(&f.artifact.images()[0].layers[0].digest));
}

#[test]
fn an_unreachable_registry_is_reported_once_with_what_to_check() {
    let (_dir, bundle) = packed();
    // A port nothing listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let o = airlock_with(
        &[
            "unpack",
            bundle.to_str().unwrap(),
            "--registry",
            &format!("http://127.0.0.1:{port}"),
        ],
        None,
        &[("AIRLOCK_RETRY_ATTEMPTS", "1")],
    );
    assert_exit(&o, 1);
    let all = format!("{}{}", stdout(&o), stderr(&o)).to_lowercase();
    assert!(all.contains("is the registry running"), "{all}");
    assert_eq!(
        all.matches("connection refused").count(),
        1,
        "the cause is said once: {all}"
    );
}

/// A registry that stops taking an upload's bytes (its window full, nothing read) fails the
/// upload within the minimum-rate window, as a stalled download does, not after the 60 s
/// per-write timeout, and the error names the blob.
#[test]
fn a_stalled_upload_fails_within_the_rate_window_naming_the_blob() {
    let target = Registry::start();
    let proxy = Proxy::start(
        &target.host(),
        Faults {
            hang_after_request_bytes: Some(256 << 10),
            ..Faults::default()
        },
    );
    // More than loopback's socket buffers hold on both sides, so the writes really block.
    let blob: std::sync::Arc<[u8]> = noise(48 << 20).into();
    let digest = airlock::digest::Digest::of(&blob);
    let mut o = fast_options();
    o.endpoints
        .push((proxy.host(), Endpoint::parse(&proxy.url()).unwrap()));
    o.retry.attempts = 1;
    o.min_rate = airlock::registry::MinRate {
        bytes: 32 << 10,
        window: Duration::from_secs(2),
    };
    o.io_timeout = Duration::from_secs(60);
    let client = Client::new(o).unwrap();
    let open = {
        let blob = blob.clone();
        move || -> std::io::Result<Box<dyn std::io::Read + Send>> {
            Ok(Box::new(std::io::Cursor::new(blob.clone())))
        }
    };
    let started = Instant::now();
    let e = client
        .push_blob(
            &proxy.host(),
            "x/stall",
            &digest,
            blob.len() as u64,
            None,
            &open,
        )
        .unwrap_err();
    let took = started.elapsed();
    let chain: Vec<String> =
        std::iter::successors(Some(&e as &dyn std::error::Error), |e| e.source())
            .map(|e| e.to_string())
            .collect();
    let all = chain.join("\n");
    assert!(
        took < Duration::from_secs(20),
        "gave up after {took:?}: {all}"
    );
    assert!(all.contains(&format!("uploading blob {digest}")), "{all}");
    assert!(all.contains("the upload stalled"), "{all}");
    assert!(all.contains("--min-rate"), "{all}");
}
