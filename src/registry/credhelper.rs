//! Docker credential helpers, run the way Docker runs them
//! (<https://github.com/docker/docker-credential-helpers>): `docker-credential-NAME get`, the
//! server URL on standard input, `{"ServerURL","Username","Secret"}` on standard output;
//! `store` (that JSON on standard input) and `erase` (the server URL), for `airlock login` and
//! `logout`. A `Username` of `<token>` means the secret is an identity token (OAuth2 refresh token).
//! A helper is killed at its timeout, and a process it leaves behind (`dbus-launch`, an agent)
//! that keeps its output pipes open cannot hold airlock past a short grace.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::credentials::Credentials;

/// What a helper said.
#[derive(Debug)]
pub(crate) enum HelperAnswer {
    Found(Credentials),
    /// The helper has nothing for this server (`credentials not found in native keychain`).
    NotFound,
    /// Missing, failed or too slow: why, in words that follow "docker-credential-NAME ...".
    Failed(String),
}

/// Most a helper may print: an answer is a few hundred bytes.
const MAX_OUTPUT: u64 = 64 * 1024;

/// Refuses helper names that would run something other than `docker-credential-NAME` on PATH.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        || name.starts_with('.')
    {
        return Err(format!(
            "{name:?} is not a credential helper name (letters, digits, '-', '_', '.')"
        ));
    }
    Ok(())
}

/// Runs `docker-credential-<name> get` for `server_url`, killing it after `timeout`.
pub(crate) fn get(name: &str, server_url: &str, timeout: Duration) -> HelperAnswer {
    run(&program(name), server_url, timeout)
}

/// Runs `docker-credential-<name> store`, as `docker login` does with a `credsStore` or
/// `credHelpers` entry: `{"ServerURL","Username","Secret"}` on standard input. An identity
/// token is stored as Docker stores one, under the user name `<token>`. The error says why,
/// in words that follow "docker-credential-NAME ...".
pub(crate) fn store(
    name: &str,
    server_url: &str,
    creds: &Credentials,
    timeout: Duration,
) -> Result<(), String> {
    let input = serde_json::json!({
        "ServerURL": server_url,
        "Username": if creds.is_identity_token() { "<token>" } else { creds.username.as_str() },
        "Secret": creds.password(),
    })
    .to_string();
    let done = exec(&program(name), "store", input.as_bytes(), timeout)?;
    done.success()
}

/// Runs `docker-credential-<name> erase` for `server_url`, as `docker logout` does. A helper
/// that holds nothing for it is no failure.
pub(crate) fn erase(name: &str, server_url: &str, timeout: Duration) -> Result<(), String> {
    let done = exec(&program(name), "erase", server_url.as_bytes(), timeout)?;
    match done.success() {
        Err(why) if why.contains("credentials not found") => Ok(()),
        r => r,
    }
}

fn program(name: &str) -> std::ffi::OsString {
    format!("docker-credential-{name}").into()
}

/// Runs `program get` for `server_url`, killing it after `timeout`.
fn run(program: &std::ffi::OsStr, server_url: &str, timeout: Duration) -> HelperAnswer {
    let done = match exec(program, "get", server_url.as_bytes(), timeout) {
        Ok(d) => d,
        Err(why) => return HelperAnswer::Failed(why),
    };
    if !done.status.success() {
        let said = done.said();
        // The helpers' protocol error for "nothing stored for this server".
        if said.contains("credentials not found") {
            return HelperAnswer::NotFound;
        }
        return HelperAnswer::Failed(format!(
            "failed ({}): {}",
            done.status,
            first_line_escaped(&said)
        ));
    }
    parse_answer(&done.out)
}

/// A helper run that ended: its exit status and what it printed.
struct Done {
    status: std::process::ExitStatus,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Done {
    /// What the helper said: its standard output, else its standard error (helpers print
    /// their errors on either).
    fn said(&self) -> String {
        let text = if self.out.is_empty() {
            &self.err
        } else {
            &self.out
        };
        String::from_utf8_lossy(text).into_owned()
    }

    fn success(&self) -> Result<(), String> {
        if self.status.success() {
            return Ok(());
        }
        Err(format!(
            "failed ({}): {}",
            self.status,
            first_line_escaped(&self.said())
        ))
    }
}

/// Runs `program action` with `input` on standard input, killing it after `timeout`.
fn exec(
    program: &std::ffi::OsStr,
    action: &str,
    input: &[u8],
    timeout: Duration,
) -> Result<Done, String> {
    let mut child = match Command::new(program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err("is not installed (not found on PATH)".into())
        }
        Err(e) => return Err(format!("could not be started: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives a broken pipe; its exit status tells.
        let _ = stdin.write_all(input);
    }
    // Read both pipes on threads so a chatty helper cannot block on a full pipe.
    let stdout = Pipe::read(child.stdout.take());
    let stderr = Pipe::read(child.stderr.take());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                // Our own child: kill and reap it.
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not answer within {} s", timeout.as_secs()));
            }
            Err(e) => return Err(format!("could not be waited for: {e}")),
        }
    };
    // Once the helper has exited its output is in the pipes; a process it left behind may
    // hold them open for ever, so the wait for their end is short.
    let until = Instant::now() + PIPE_GRACE;
    let out = stdout.finish(until);
    let err = stderr.finish(until);
    Ok(Done { status, out, err })
}

/// How long the pipes of a helper that exited may stay open before what they gave is taken.
const PIPE_GRACE: Duration = Duration::from_secs(1);

/// One of a helper's output pipes, read on its own thread into a shared buffer.
struct Pipe {
    bytes: Arc<Mutex<Vec<u8>>>,
    ended: mpsc::Receiver<()>,
}

impl Pipe {
    fn read(r: Option<impl Read + Send + 'static>) -> Pipe {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let (tx, ended) = mpsc::channel();
        let shared = bytes.clone();
        std::thread::spawn(move || {
            if let Some(r) = r {
                let mut r = r.take(MAX_OUTPUT);
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = r.read(&mut buf) {
                    shared
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend_from_slice(&buf[..n]);
                }
            }
            let _ = tx.send(());
        });
        Pipe { bytes, ended }
    }

    /// What the pipe gave by its end, or by `until` if it stays open.
    fn finish(self, until: Instant) -> Vec<u8> {
        let _ = self
            .ended
            .recv_timeout(until.saturating_duration_since(Instant::now()));
        std::mem::take(&mut *self.bytes.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn parse_answer(out: &[u8]) -> HelperAnswer {
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(rename = "Username", default)]
        username: String,
        #[serde(rename = "Secret", default)]
        secret: String,
    }
    match serde_json::from_slice::<Answer>(out) {
        Ok(a) if a.secret.is_empty() => HelperAnswer::NotFound,
        Ok(a) if a.username == "<token>" => {
            HelperAnswer::Found(Credentials::identity_token("", a.secret))
        }
        Ok(a) => HelperAnswer::Found(Credentials::new(a.username, a.secret)),
        // serde_json names a position, never the content (which may hold the secret).
        Err(e) => HelperAnswer::Failed(format!("answered something that is not its JSON: {e}")),
    }
}

/// The first line of a helper's message, without control characters, at most 200 characters.
fn first_line_escaped(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in [
            "desktop",
            "ecr-login",
            "pass",
            "secretservice",
            "gcr",
            "osxkeychain",
        ] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a/b", "a b", ".hidden", "x;rm"] {
            let e = check_name(bad).unwrap_err();
            assert!(
                e.starts_with(&format!("{bad:?} is not a credential helper name")),
                "{e}"
            );
        }
    }

    #[test]
    fn answers_are_parsed() {
        let a = parse_answer(br#"{"ServerURL":"r","Username":"u","Secret":"s"}"#);
        assert!(
            matches!(a, HelperAnswer::Found(c) if c.username == "u" && c.password() == "s" && !c.is_identity_token())
        );
        let a = parse_answer(br#"{"ServerURL":"r","Username":"<token>","Secret":"rt"}"#);
        assert!(
            matches!(a, HelperAnswer::Found(c) if c.is_identity_token() && c.password() == "rt")
        );
        assert!(matches!(
            parse_answer(br#"{"Secret":""}"#),
            HelperAnswer::NotFound
        ));
        assert!(
            matches!(parse_answer(b"secret-in-garbage"), HelperAnswer::Failed(m) if !m.contains("secret"))
        );
    }

    /// Writes an executable shell script and gives its path.
    fn script(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let p = dir.join("docker-credential-t");
        std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    #[test]
    fn a_helper_that_leaves_a_process_holding_its_output_does_not_hang() {
        let dir = tempfile::tempdir().unwrap();
        // As `dbus-launch` or an agent started on the way can: a background process that
        // inherits the helper's standard output and error keeps the pipes open after the
        // helper answered and exited.
        let p = script(
            dir.path(),
            "read url\nsleep 8 &\nprintf '{\"Username\":\"u\",\"Secret\":\"s\"}'\n",
        );
        let started = Instant::now();
        let a = run(p.as_os_str(), "reg", Duration::from_secs(1));
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert!(
            matches!(&a, HelperAnswer::Found(c) if c.username == "u" && c.password() == "s"),
            "{a:?}"
        );
        // A helper that never exits is killed at its timeout.
        let p = script(dir.path(), "sleep 8\n");
        let started = Instant::now();
        let a = run(p.as_os_str(), "reg", Duration::from_secs(1));
        assert!(started.elapsed() < Duration::from_secs(4));
        assert!(
            matches!(&a, HelperAnswer::Failed(m) if m.contains("within 1 s")),
            "{a:?}"
        );
    }

    #[test]
    fn a_missing_helper_is_named() {
        let a = get("airlock-test-no-such-helper", "reg", Duration::from_secs(1));
        assert!(matches!(a, HelperAnswer::Failed(m) if m.contains("not installed")));
    }
}
