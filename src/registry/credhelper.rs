//! Docker credential helpers, run the way Docker runs them
//! (<https://github.com/docker/docker-credential-helpers>): `docker-credential-NAME get`, the
//! server URL on standard input, `{"ServerURL","Username","Secret"}` on standard output. A
//! `Username` of `<token>` means the secret is an identity token (OAuth2 refresh token).

use std::io::{Read, Write};
use std::process::{Command, Stdio};
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
    let program = format!("docker-credential-{name}");
    let mut child = match Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return HelperAnswer::Failed("is not installed (not found on PATH)".into())
        }
        Err(e) => return HelperAnswer::Failed(format!("could not be started: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading gives a broken pipe; its exit status tells.
        let _ = stdin.write_all(server_url.as_bytes());
    }
    // Read both pipes on threads so a chatty helper cannot block on a full pipe.
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_OUTPUT).read_to_end(&mut out);
            }
            out
        })
    };
    let stdout = pipe(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = pipe(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                // Our own child: kill and reap it.
                let _ = child.kill();
                let _ = child.wait();
                return HelperAnswer::Failed(format!(
                    "did not answer within {} s",
                    timeout.as_secs()
                ));
            }
            Err(e) => return HelperAnswer::Failed(format!("could not be waited for: {e}")),
        }
    };
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if !status.success() {
        let said = String::from_utf8_lossy(if out.is_empty() { &err } else { &out }).to_string();
        // The helpers' protocol error for "nothing stored for this server".
        if said.contains("credentials not found") {
            return HelperAnswer::NotFound;
        }
        return HelperAnswer::Failed(format!("failed ({status}): {}", first_line_escaped(&said)));
    }
    parse_answer(&out)
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

    #[test]
    fn a_missing_helper_is_named() {
        let a = get("airlock-test-no-such-helper", "reg", Duration::from_secs(1));
        assert!(matches!(a, HelperAnswer::Failed(m) if m.contains("not installed")));
    }
}
