//! Registry authentication: `WWW-Authenticate` challenges, credentials and bearer tokens.
//!
//! The flow is the distribution "token authentication" specification
//! (<https://distribution.github.io/distribution/spec/auth/token/>): a 401 carries a challenge,
//! `Bearer` sends us to a token server with `service` and `scope`, `Basic` wants the credentials
//! on every request. Secrets never reach `Debug`, `Display` or an error message.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::error::RegistryError;

/// A user name and password (or identity token). `Debug` prints `<redacted>` for the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// The value of an `Authorization: Basic` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }

    /// The secret, for code that must compare or send it.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Where credentials come from: the command line (for the registries it names) and a Docker
/// `config.json`.
#[derive(Clone, Default)]
pub struct CredentialStore {
    explicit: Vec<(String, Credentials)>,
    explicit_any: Option<Credentials>,
    config: HashMap<String, Credentials>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts: Vec<&str> = self
            .explicit
            .iter()
            .map(|(h, _)| h.as_str())
            .chain(self.config.keys().map(String::as_str))
            .collect();
        f.debug_struct("CredentialStore")
            .field("hosts", &hosts)
            .field("any", &self.explicit_any.is_some())
            .finish()
    }
}

impl CredentialStore {
    /// An empty store: every request is anonymous.
    pub fn new() -> CredentialStore {
        CredentialStore::default()
    }

    /// Uses `creds` for `registry` (a host such as `reg.local:5000` or `docker.io`).
    pub fn insert(&mut self, registry: &str, creds: Credentials) {
        let host = normalize_host(registry);
        self.explicit.retain(|(h, _)| *h != host);
        self.explicit.push((host, creds));
    }

    /// Uses `creds` for every registry that has no more specific entry.
    pub fn insert_default(&mut self, creds: Credentials) {
        self.explicit_any = Some(creds);
    }

    /// Reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; a missing file is fine.
    pub fn load_docker_config(&mut self) -> Result<(), RegistryError> {
        let path = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) => PathBuf::from(dir).join("config.json"),
            None => match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(".docker/config.json"),
                None => return Ok(()),
            },
        };
        if !path.exists() {
            return Ok(());
        }
        self.load_docker_config_file(&path)
    }

    /// Reads the `auths` of a Docker `config.json`.
    pub fn load_docker_config_file(&mut self, path: &Path) -> Result<(), RegistryError> {
        let text = std::fs::read(path)
            .map_err(|e| RegistryError::Config(format!("cannot read {}: {e}", path.display())))?;
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            auths: HashMap<String, Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
        }
        let file: File = serde_json::from_slice(&text).map_err(|e| {
            // serde_json's message names a position, never the content.
            RegistryError::Config(format!(
                "{} is not a valid Docker config.json: {e}",
                path.display()
            ))
        })?;
        for (key, entry) in file.auths {
            let creds = if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match raw.as_deref().and_then(|s| s.split_once(':')) {
                    Some((u, p)) => Credentials::new(u, p),
                    None => {
                        return Err(RegistryError::Config(format!(
                            "{}: the \"auth\" field for {key:?} is not base64 of user:password",
                            path.display()
                        )))
                    }
                }
            } else if let (Some(u), Some(p)) = (entry.username, entry.password) {
                Credentials::new(u, p)
            } else {
                continue;
            };
            self.config.insert(normalize_host(&key), creds);
        }
        Ok(())
    }

    /// The credentials for `registry`, if any.
    pub fn get(&self, registry: &str) -> Option<&Credentials> {
        let host = normalize_host(registry);
        self.explicit
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, c)| c)
            .or(self.explicit_any.as_ref())
            .or_else(|| self.config.get(&host))
    }
}

/// `https://index.docker.io/v1/`, `registry-1.docker.io` and `docker.io` are one registry.
fn normalize_host(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses the challenges of one or more `WWW-Authenticate` header values (RFC 7235 auth-params,
/// quoted strings with escapes). Unknown schemes are skipped.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in values {
        let mut rest = value.trim();
        while !rest.is_empty() {
            let scheme_end = rest
                .find(|c: char| c.is_whitespace() || c == ',')
                .unwrap_or(rest.len());
            let scheme = rest[..scheme_end].to_ascii_lowercase();
            rest = rest[scheme_end..].trim_start_matches([' ', '\t', ',']);
            let (params, after) = parse_params(rest);
            rest = after;
            match scheme.as_str() {
                "bearer" => {
                    if let Some(realm) = params.get("realm") {
                        out.push(Challenge::Bearer {
                            realm: realm.clone(),
                            service: params.get("service").cloned(),
                            scope: params.get("scope").cloned(),
                        });
                    }
                }
                "basic" => out.push(Challenge::Basic {
                    realm: params.get("realm").cloned(),
                }),
                _ => {}
            }
        }
    }
    out
}

/// Parses `k=v, k="v"` pairs until something that is not a pair (the next scheme).
fn parse_params(mut s: &str) -> (HashMap<String, String>, &str) {
    let mut params = HashMap::new();
    loop {
        s = s.trim_start_matches([' ', '\t', ',']);
        let Some(eq) = s.find('=') else { break };
        let key = &s[..eq];
        if key.is_empty() || key.contains([' ', '\t', ',', '"']) {
            break;
        }
        let mut v = &s[eq + 1..];
        let value;
        if let Some(q) = v.strip_prefix('"') {
            let mut buf = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            buf.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => buf.push(c),
                }
            }
            value = buf;
            v = &q[end.min(q.len())..];
        } else {
            let end = v.find([',', ' ', '\t']).unwrap_or(v.len());
            value = v[..end].to_string();
            v = &v[end..];
        }
        params.insert(key.to_ascii_lowercase(), value);
        s = v;
    }
    (params, s)
}

/// A bearer token and when it stops being usable.
#[derive(Clone)]
pub struct Token {
    value: String,
    expires: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Parses a token server answer (`token` or `access_token`, `expires_in`).
    pub fn from_response(realm: &str, body: &[u8]) -> Result<Token, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let a: Answer = serde_json::from_slice(body).map_err(|e| RegistryError::Token {
            realm: realm.to_string(),
            reason: format!("the answer is not token JSON: {e}"),
        })?;
        let value = a
            .token
            .filter(|t| !t.is_empty())
            .or(a.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Token {
                realm: realm.to_string(),
                reason: "the answer carries no token".into(),
            })?;
        if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(RegistryError::Token {
                realm: realm.to_string(),
                reason: "the token contains characters not allowed in a header".into(),
            });
        }
        // The spec's default lifetime is 60 s; refresh a little early so a long upload does not
        // start with a token about to expire.
        let lifetime = a.expires_in.unwrap_or(60).clamp(1, 86_400);
        let margin = (lifetime / 10).min(10);
        Ok(Token {
            value,
            expires: Instant::now() + Duration::from_secs(lifetime - margin),
        })
    }

    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.expires
    }

    /// The value of an `Authorization: Bearer` header.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        ]);
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }]
        );
        let c = parse_challenges([r#"Basic realm="airlock \"test\"""#]);
        assert_eq!(
            c,
            vec![Challenge::Basic {
                realm: Some("airlock \"test\"".into())
            }]
        );
        let c = parse_challenges([r#"Negotiate, Basic realm=x, Bearer realm="http://t/token""#]);
        assert_eq!(c.len(), 2);
        assert!(parse_challenges(["Bearer service=x"]).is_empty());
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = Credentials::new("alice", "canary-s3cret");
        assert!(!format!("{c:?}").contains("canary"));
        let mut s = CredentialStore::new();
        s.insert("reg.local", c);
        assert!(!format!("{s:?}").contains("canary"));
        let t = Token::from_response("r", br#"{"token":"canary-token"}"#).unwrap();
        assert!(!format!("{t:?}").contains("canary"));
        assert_eq!(t.header(), "Bearer canary-token");
    }

    #[test]
    fn reads_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        // "alice:pw:with:colons"
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:pw:with:colons");
        std::fs::write(
            &p,
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},"reg.local:5000":{{"username":"bob","password":"x"}}}}}}"#),
        )
        .unwrap();
        let mut s = CredentialStore::new();
        s.load_docker_config_file(&p).unwrap();
        let c = s.get("docker.io").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password()),
            ("alice", "pw:with:colons")
        );
        assert_eq!(s.get("reg.local:5000").unwrap().username, "bob");
        assert!(s.get("gcr.io").is_none());
        std::fs::write(&p, r#"{"auths":{"x":{"auth":"!!!"}}}"#).unwrap();
        let e = CredentialStore::new()
            .load_docker_config_file(&p)
            .unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
    }

    #[test]
    fn explicit_credentials_win() {
        let mut s = CredentialStore::new();
        s.insert("127.0.0.1:5000", Credentials::new("a", "1"));
        s.insert_default(Credentials::new("b", "2"));
        assert_eq!(s.get("127.0.0.1:5000").unwrap().username, "a");
        assert_eq!(s.get("other").unwrap().username, "b");
    }

    #[test]
    fn refuses_useless_tokens() {
        for (answer, why) in [
            (&b"{}"[..], "the answer carries no token"),
            (b"not json", "the answer is not token JSON"),
            (
                br#"{"token":"a\r\nX-Evil: 1"}"#,
                "the token contains characters not allowed in a header",
            ),
        ] {
            let e = Token::from_response("r", answer).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("token request to r failed: {why}")),
                "{e}"
            );
        }
        assert!(
            Token::from_response("r", br#"{"access_token":"abc","expires_in":300}"#)
                .unwrap()
                .is_fresh()
        );
    }
}
