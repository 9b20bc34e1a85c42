//! `airlock login` and `logout` (issue 15 point 7): credentials checked against the registry
//! before they are saved, Docker's `config.json` written with mode 0600 and every other entry
//! kept, credential helpers used as Docker uses them, and passwords never echoed on a
//! terminal.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;

use crate::harness::http::basic;
use crate::harness::Registry;
use crate::support::*;

/// `airlock login REGISTRY --username USER --password-stdin`, the password piped in.
fn login(cfg: &Path, registry: &str, user: &str, password: &str) -> std::process::Output {
    airlock_with(
        &["login", registry, "--username", user, "--password-stdin"],
        Some(format!("{password}\n").as_bytes()),
        &[("DOCKER_CONFIG", cfg.to_str().unwrap())],
    )
}

fn config(cfg: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(cfg.join("config.json")).unwrap()).unwrap()
}

fn decoded(auth: &Value) -> String {
    let b = base64::engine::general_purpose::STANDARD
        .decode(auth.as_str().unwrap())
        .unwrap();
    String::from_utf8(b).unwrap()
}

#[test]
fn r15_login_checks_the_password_first_then_saves_0600_keeping_every_other_entry() {
    const CANARY: &str = "canary-login-pw";
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let reg = Registry::with_htpasswd("ops", CANARY);
    seed_with(&reg, &[fixture(PAUSE)], Some(&basic("ops", CANARY)), None);
    let cfg = dir.path().join("docker");
    std::fs::create_dir_all(&cfg).unwrap();
    let before = r#"{"auths":{"other.example:5000":{"auth":"b3RoZXI6c2VjcmV0"}},"credHelpers":{"gcr.io":"gcr"},"HttpHeaders":{"X-Meta":"kept"},"psFormat":"table {{.ID}}","proxies":{"default":{"httpProxy":"http://proxy.example:3128"}}}"#;
    let file = cfg.join("config.json");
    std::fs::write(&file, before).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let target = reg.url();

    // A wrong password is refused by the registry before anything is written.
    let o = login(&cfg, &target, "ops", "wrong-password");
    assert_exit(&o, 1);
    let e = stderr(&o);
    assert!(e.contains("nothing was saved"), "{e}");
    assert!(e.contains("refused the user name and password"), "{e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);

    // The right one is checked, then saved with mode 0600; everything else stays.
    let o = login(&cfg, &target, "ops", CANARY);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("Login succeeded"), "{}", stdout(&o));
    assert!(stderr(&o).contains("unencrypted"), "{}", stderr(&o));
    assert!(!stdout(&o).contains(CANARY) && !stderr(&o).contains(CANARY));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let doc = config(&cfg);
    assert_eq!(
        decoded(&doc["auths"][reg.host()]["auth"]),
        format!("ops:{CANARY}")
    );
    assert_eq!(
        doc["auths"]["other.example:5000"]["auth"],
        "b3RoZXI6c2VjcmV0"
    );
    assert_eq!(doc["credHelpers"]["gcr.io"], "gcr");
    assert_eq!(doc["HttpHeaders"]["X-Meta"], "kept");
    assert_eq!(doc["psFormat"], "table {{.ID}}");
    assert_eq!(
        doc["proxies"]["default"]["httpProxy"],
        "http://proxy.example:3128"
    );
    let names: Vec<_> = std::fs::read_dir(&cfg).unwrap().flatten().collect();
    assert_eq!(names.len(), 1, "no temporary file left beside it");

    // Later commands use the saved credentials: no --username anywhere.
    let env = [("DOCKER_CONFIG", cfg.to_str().unwrap())];
    let o = airlock_with(
        &["unpack", bundle.to_str().unwrap(), "--registry", &target],
        None,
        &env,
    );
    assert_exit(&o, 0);
    let list = dir.path().join("from-private.txt");
    std::fs::write(
        &list,
        format!("{}/google_containers/pause-amd64:3.0\n", reg.host()),
    )
    .unwrap();
    let out = dir.path().join("again.tar.zst");
    let mirror = format!("{}={}", reg.host(), reg.url());
    let o = airlock_with(
        &[
            "pack",
            "--images",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
            "--mirror",
            &mirror,
        ],
        None,
        &env,
    );
    assert_exit(&o, 0);

    // Logout removes that entry and nothing else; a second one says there is nothing.
    let o = airlock_with(&["logout", &target], None, &env);
    assert_exit(&o, 0);
    let doc = config(&cfg);
    assert!(doc["auths"].get(reg.host()).is_none(), "{doc}");
    assert_eq!(
        doc["auths"]["other.example:5000"]["auth"],
        "b3RoZXI6c2VjcmV0"
    );
    assert_eq!(doc["credHelpers"]["gcr.io"], "gcr");
    assert_eq!(doc["HttpHeaders"]["X-Meta"], "kept");
    let o = airlock_with(&["logout", &reg.host()], None, &env);
    assert_exit(&o, 0);
    assert!(stdout(&o).contains("Not logged in"), "{}", stdout(&o));
    // Without the credentials the registry refuses again.
    let o = airlock_with(&["inventory", "--registry", &target], None, &env);
    assert_exit(&o, 1);
}

#[test]
fn r15_login_answers_a_bearer_challenge_and_a_refusing_token_server_saves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("docker");
    let reg = Registry::with_token_auth("ops", "token-pw");
    let o = login(&cfg, &reg.url(), "ops", "wrong");
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("refused the credentials"),
        "{}",
        stderr(&o)
    );
    assert!(!cfg.join("config.json").exists());
    let o = login(&cfg, &reg.url(), "ops", "token-pw");
    assert_exit(&o, 0);
    let doc = config(&cfg);
    assert_eq!(decoded(&doc["auths"][reg.host()]["auth"]), "ops:token-pw");
    // The token server saw the credentials: the check was real.
    assert!(reg
        .token_server()
        .unwrap()
        .authorizations()
        .contains(&Some(basic("ops", "token-pw"))));
    let mode = std::fs::metadata(cfg.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(&cfg).unwrap().permissions().mode() & 0o777,
        0o700
    );
}

/// Writes `docker-credential-test` into `dir/bin`: `store` keeps its standard input in
/// `bin/stored` (and the secret for `get`), `get` answers from it, `erase` logs the server
/// URL to `bin/erased` and forgets it.
fn storing_helper(dir: &Path) -> std::path::PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = format!(
        r#"#!/bin/sh
cd '{bin}'
case "$1" in
  store) cat > stored ;;
  get) read url; if [ -f stored ]; then cat stored; else echo 'credentials not found in native keychain'; exit 1; fi ;;
  erase) read url; echo "$url" >> erased; rm -f stored ;;
  *) exit 3 ;;
esac
"#,
        bin = bin.display()
    );
    let p = bin.join("docker-credential-test");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn r15_login_stores_through_the_configured_credential_helper_as_docker_does() {
    const CANARY: &str = "canary-helper-login";
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::with_htpasswd("ops", CANARY);
    seed_with(&reg, &[fixture(PAUSE)], Some(&basic("ops", CANARY)), None);
    let bin = storing_helper(dir.path());
    let cfg = dir.path().join("docker");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), r#"{"credsStore":"test"}"#).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let env = [
        ("DOCKER_CONFIG", cfg.to_str().unwrap()),
        ("PATH", path.as_str()),
    ];
    let o = airlock_with(
        &["login", &reg.url(), "-u", "ops", "--password-stdin"],
        Some(format!("{CANARY}\n").as_bytes()),
        &env,
    );
    assert_exit(&o, 0);
    assert!(
        stdout(&o).contains("stored with docker-credential-test"),
        "{}",
        stdout(&o)
    );
    assert!(!stderr(&o).contains("unencrypted"), "{}", stderr(&o));
    let stored: Value =
        serde_json::from_slice(&std::fs::read(bin.join("stored")).unwrap()).unwrap();
    assert_eq!(stored["ServerURL"], reg.host());
    assert_eq!(stored["Username"], "ops");
    assert_eq!(stored["Secret"], CANARY);
    // The file names the registry and holds no secret, as Docker's does.
    let text = std::fs::read_to_string(cfg.join("config.json")).unwrap();
    assert!(!text.contains(CANARY), "{text}");
    let doc = config(&cfg);
    assert_eq!(doc["auths"][reg.host()], serde_json::json!({}));
    assert_eq!(doc["credsStore"], "test");
    // The helper's answer serves the next command.
    let o = airlock_with(&["inventory", "--registry", &reg.url()], None, &env);
    assert_exit(&o, 0);
    // Logout erases it there too.
    let o = airlock_with(&["logout", &reg.url()], None, &env);
    assert_exit(&o, 0);
    assert_eq!(
        std::fs::read_to_string(bin.join("erased")).unwrap().trim(),
        reg.host()
    );
    assert!(!bin.join("stored").exists());
    assert!(config(&cfg)["auths"].get(reg.host()).is_none());
    // A helper that fails keeps the password out of the file: nothing is saved.
    std::fs::write(
        cfg.join("config.json"),
        r#"{"credsStore":"missing-helper"}"#,
    )
    .unwrap();
    let o = airlock_with(
        &["login", &reg.url(), "-u", "ops", "--password-stdin"],
        Some(format!("{CANARY}\n").as_bytes()),
        &env,
    );
    assert_exit(&o, 1);
    assert!(
        stderr(&o).contains("docker-credential-missing-helper"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(cfg.join("config.json")).unwrap(),
        r#"{"credsStore":"missing-helper"}"#
    );
}

// ---- The terminal: a pseudo-terminal stands in for the operator's ----

/// A new pseudo-terminal: (master, slave).
fn pty() -> (std::fs::File, std::fs::File) {
    use std::os::fd::FromRawFd as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // SAFETY: plain libc calls on a descriptor this function owns.
    unsafe {
        let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        assert!(m >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
        assert_eq!(libc::grantpt(m), 0);
        assert_eq!(libc::unlockpt(m), 0);
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(libc::ptsname_r(m, name.as_mut_ptr(), name.len()), 0);
        let name = std::ffi::CStr::from_ptr(name.as_ptr())
            .to_str()
            .unwrap()
            .to_string();
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(name)
            .unwrap();
        (std::fs::File::from_raw_fd(m), slave)
    }
}

/// Runs airlock with a terminal as standard input and error, typing each answer once its
/// prompt shows; the exit status, what the terminal showed, and standard output.
fn on_terminal(
    args: &[&str],
    env: &[(&str, &str)],
    answers: &[(&str, &str)],
) -> (std::process::ExitStatus, String, String) {
    let (mut master, slave) = pty();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.args(args)
        .env("HOME", std::env::temp_dir().join("airlock-test-home"))
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    drop(slave);
    let screen = Arc::new(Mutex::new(String::new()));
    let mut reader = master.try_clone().unwrap();
    let shown = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        // Ends with EIO once the child closed the terminal.
        while let Ok(n @ 1..) = reader.read(&mut buf) {
            shown
                .lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = 0;
    for (prompt, answer) in answers {
        loop {
            let s = screen.lock().unwrap().clone();
            if let Some(at) = s[seen..].find(prompt) {
                seen += at + prompt.len();
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no {prompt:?} on the terminal: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        master.write_all(format!("{answer}\n").as_bytes()).unwrap();
    }
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    // What the child wrote last reaches the master shortly after it exits.
    std::thread::sleep(Duration::from_millis(100));
    let shown = screen.lock().unwrap().clone();
    (status, shown, out)
}

#[test]
fn r15_passwords_typed_on_a_terminal_are_not_echoed() {
    const CANARY: &str = "canary-typed-pw";
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::with_htpasswd("ops", CANARY);
    let cfg = dir.path().join("docker");
    let env = [("DOCKER_CONFIG", cfg.to_str().unwrap())];
    // login asks for both: the user name is echoed (the terminal works), the password not.
    let (status, screen, out) = on_terminal(
        &["login", &reg.url()],
        &env,
        &[("Username: ", "typed-user-ops"), ("Password: ", CANARY)],
    );
    // (A user the registry does not know: refused, and nothing saved.)
    assert_eq!(status.code(), Some(1), "{screen}{out}");
    assert!(screen.contains("typed-user-ops"), "{screen}");
    assert!(
        !screen.contains(CANARY),
        "the password was echoed: {screen}"
    );
    assert!(!cfg.join("config.json").exists());
    let (status, screen, out) = on_terminal(
        &["login", &reg.url()],
        &env,
        &[("Username: ", "ops"), ("Password: ", CANARY)],
    );
    assert!(status.success(), "{screen}{out}");
    assert!(out.contains("Login succeeded"), "{screen}{out}");
    assert!(!screen.contains(CANARY), "{screen}");
    // --password-stdin on a terminal asks, without echo, instead of waiting silently.
    let (status, screen, out) = on_terminal(
        &[
            "inventory",
            "--registry",
            &reg.url(),
            "--username",
            "ops",
            "--password-stdin",
        ],
        &[],
        &[(&format!("Password for ops at {}: ", reg.host()), CANARY)],
    );
    assert!(status.success(), "{screen}{out}");
    assert!(!screen.contains(CANARY), "{screen}");
    assert!(out.contains("\"registry\""), "{out}");
}
