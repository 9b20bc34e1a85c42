//! `-v`, `-vv` and `AIRLOCK_LOG` (issue 15, point 2): each registry request logged with its
//! method, redacted URL, status, bytes and time, each decision with its reason, and never a
//! credential, a token or an upload's signed state.

use crate::harness::Registry;
use crate::support::*;

const CANARY: &str = "canary-5e1d-verbose-secret";

/// The log lines of a run's standard error (`[   1.234s debug] ...`).
fn log_lines(o: &std::process::Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with('[') && l.contains("s "))
        .map(str::to_string)
        .collect()
}

/// No credential, token or signed upload state in `text`.
fn assert_no_secret(text: &str) {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("ops:{CANARY}"));
    assert!(!text.contains(CANARY), "the password leaked:\n{text}");
    assert!(
        !text.contains(&basic),
        "the Basic credentials leaked:\n{text}"
    );
    assert!(!text.contains("Bearer"), "a token leaked:\n{text}");
    for (i, _) in text.match_indices("_state=") {
        assert!(
            text[i..].starts_with("_state=<redacted>"),
            "an upload's state leaked:\n{text}"
        );
    }
}

#[test]
fn r15_dash_vv_logs_each_request_with_status_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = small_bundle(dir.path());
    let b = bundle.to_str().unwrap();
    let target = Registry::with_token_auth("ops", CANARY);
    let url = target.url();
    let unpack = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "unpack",
            b,
            "--registry",
            &url,
            "--username",
            "ops",
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        airlock_with(&args, Some(CANARY.as_bytes()), env)
    };

    let o = unpack(&["-vv"], &[]);
    assert_exit(&o, 0);
    let lines = log_lines(&o);
    let all = lines.join("\n");
    assert_no_secret(&stderr(&o));
    // Each request: method, URL on the registry, status, bytes, time.
    let host = target.host();
    let request = |method: &str, status: u16| {
        lines.iter().any(|l| {
            l.contains(&format!("debug] {method} http://{host}/v2/"))
                && l.contains(&format!("-> HTTP {status}, answer "))
                && l.ends_with(" ms")
        })
    };
    assert!(request("GET", 401), "the challenge:\n{all}");
    assert!(request("HEAD", 404), "a blob not there yet:\n{all}");
    assert!(request("POST", 202), "an upload started:\n{all}");
    assert!(request("PUT", 201), "a blob or manifest stored:\n{all}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" PUT ") && l.contains(", sending ")),
        "the bytes sent:\n{all}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&target.token_server().unwrap().realm())),
        "the token request:\n{all}"
    );
    // And the decisions.
    assert!(
        lines.iter().any(
            |l| l.contains("info ] google_containers/pause-amd64: blob sha256:")
                && l.ends_with(" uploaded")
        ),
        "{all}"
    );

    // A rerun with -v: the decisions, no requests.
    let o = unpack(&["-v"], &[]);
    assert_exit(&o, 0);
    let lines = log_lines(&o);
    let all = lines.join("\n");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("pause-amd64:3.0: every target has sha256:")
                && l.ends_with("already, skipped")),
        "{all}"
    );
    assert!(!all.contains("-> HTTP"), "-v logs no requests:\n{all}");
    assert_no_secret(&stderr(&o));

    // Without -v, no log at all.
    let o = unpack(&[], &[]);
    assert_exit(&o, 0);
    assert!(log_lines(&o).is_empty(), "{}", stderr(&o));

    // AIRLOCK_LOG picks what to log, without -v: the requests of the transport only.
    let o = unpack(
        &[],
        &[("AIRLOCK_LOG", "airlock::registry::transport=debug")],
    );
    assert_exit(&o, 0);
    let lines = log_lines(&o);
    let all = lines.join("\n");
    assert!(
        !lines.is_empty() && lines.iter().all(|l| l.contains("-> HTTP")),
        "{all}"
    );
    assert_no_secret(&stderr(&o));
}

/// A retry says why and when: a registry whose first answer is a 503 is asked again.
#[test]
fn r15_dash_v_logs_a_retry_and_why() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let unavailable = AtomicUsize::new(1);
    let fake = crate::harness::fake::FakeServer::start(move |r| {
        if unavailable.fetch_sub(1, Ordering::SeqCst) == 1 {
            return crate::harness::fake::Reply::new(503);
        }
        match r.path.as_str() {
            "/v2/" => crate::harness::fake::Reply::new(200),
            p if p.starts_with("/v2/_catalog") => crate::harness::fake::Reply::new(200)
                .header("Content-Type", "application/json")
                .body(r#"{"repositories":[]}"#),
            _ => crate::harness::fake::Reply::new(404),
        }
    });
    let o = airlock(&["inventory", "--registry", &fake.url(), "-v"]);
    assert_exit(&o, 0);
    let all = log_lines(&o).join("\n");
    assert!(
        all.contains("retry 1 of 4 in ")
            && all.contains(&format!(
                "GET {}/v2/_catalog?n=100 answered HTTP 503",
                fake.url()
            )),
        "{}",
        stderr(&o)
    );
}

/// Every setting can come from the environment, and `--help` says which variable.
#[test]
fn r15_settings_come_from_airlock_variables_shown_in_help() {
    for (command, vars) in [
        (
            "pack",
            &[
                "AIRLOCK_JOBS",
                "AIRLOCK_CACHE_DIR",
                "AIRLOCK_CA_FILE",
                "AIRLOCK_CERTS_D",
                "AIRLOCK_PINS",
                "AIRLOCK_RETRY_ATTEMPTS",
                "AIRLOCK_RETRY_BASE_MS",
                "AIRLOCK_CONNECT_TIMEOUT_SECS",
                "AIRLOCK_IO_TIMEOUT_SECS",
                "AIRLOCK_REQUEST_TIMEOUT_SECS",
                "AIRLOCK_MIN_RATE_KIB",
                "AIRLOCK_RATE_WINDOW_SECS",
                "AIRLOCK_LOG",
            ][..],
        ),
        (
            "unpack",
            &[
                "AIRLOCK_JOBS",
                "AIRLOCK_CA_FILE",
                "AIRLOCK_RETRY_ATTEMPTS",
                "AIRLOCK_LOG",
            ][..],
        ),
        (
            "inventory",
            &["AIRLOCK_JOBS", "AIRLOCK_IO_TIMEOUT_SECS"][..],
        ),
    ] {
        let help = stdout(&airlock(&[command, "--help"]));
        for v in vars {
            assert!(help.contains(v), "{command} --help lacks {v}");
        }
    }
    // The variables are read: a bad value is a usage error naming the flag.
    for (var, flag) in [
        ("AIRLOCK_JOBS", "--jobs"),
        ("AIRLOCK_RETRY_ATTEMPTS", "--retries"),
        ("AIRLOCK_IO_TIMEOUT_SECS", "--read-timeout"),
    ] {
        let o = airlock_with(
            &["inventory", "--registry", "http://127.0.0.1:9"],
            None,
            &[(var, "many")],
        );
        assert_exit(&o, 2);
        assert!(stderr(&o).contains(flag), "{var}: {}", stderr(&o));
    }
    // --io-timeout is --read-timeout.
    let o = airlock(&[
        "inventory",
        "--registry",
        "http://127.0.0.1:9",
        "--io-timeout",
        "0",
    ]);
    assert_exit(&o, 2);
    assert!(stderr(&o).contains("--read-timeout"), "{}", stderr(&o));
}

/// A blob's first upload asks "is it there?" and starts the session in one request (a mount
/// from its own repository: 201 when it is there, 202 and a session when not), so no blob is
/// asked by HEAD before its first upload; a rerun after the manifests were lost finds every
/// blob there by the same request and sends no byte again.
#[test]
fn a_blob_is_asked_for_and_its_upload_started_in_one_request() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let b = bundle.to_str().unwrap();
    let target = Registry::start();
    let url = target.url();
    let o = airlock(&["unpack", b, "--registry", &url, "-vv"]);
    assert_exit(&o, 0);
    let lines = log_lines(&o);
    let uploaded: Vec<(String, String)> = lines
        .iter()
        .filter_map(|l| {
            let rest = l.split("] ").nth(1)?;
            let (repo, rest) = rest.split_once(": blob ")?;
            let digest = rest.split(' ').next()?;
            rest.ends_with(") uploaded")
                .then(|| (repo.to_string(), digest.replace(':', "%3A")))
        })
        .collect();
    assert!(!uploaded.is_empty(), "{}", lines.join("\n"));
    for (repo, digest) in &uploaded {
        let post = format!("POST {url}/v2/{repo}/blobs/uploads/?mount={digest}&from=");
        assert!(
            lines
                .iter()
                .any(|l| l.contains(&post) && l.contains("HTTP 202")),
            "{repo} {digest}: no upload started by a mount from its own repository\n{}",
            lines.join("\n")
        );
        let head = format!("HEAD {url}/v2/{repo}/blobs/{digest}");
        assert!(
            !lines.iter().any(|l| l.contains(&head)),
            "{repo} {digest}: asked by HEAD before its first upload\n{}",
            lines.join("\n")
        );
    }
    // The manifests lost (as after a crash): the rerun finds every blob by the same request.
    std::fs::remove_dir_all(
        target
            .storage_dir()
            .join("docker/registry/v2/repositories/google_containers/pause-amd64/_manifests"),
    )
    .unwrap();
    let o = airlock(&["unpack", b, "--registry", &url, "-vv"]);
    assert_exit(&o, 0);
    let lines = log_lines(&o);
    assert!(
        !lines.iter().any(|l| l.ends_with(") uploaded")),
        "a blob was sent again\n{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with("is there already, skipped")
                && l.contains("google_containers/pause-amd64: blob")),
        "{}",
        lines.join("\n")
    );
    assert_targets(&bundle, &target, "");
}
