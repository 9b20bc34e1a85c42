//! Credentials, and the host each one may be sent to.
//!
//! A credential belongs to one host (host and port, as Docker keys `config.json`): the one
//! named by `--login`/`--registry` on the command line, or the key of a `config.json` entry.
//! It is looked up by the host a request actually goes to, never by the registry name in an
//! image reference: a `--mirror docker.io=http://127.0.0.1:5001` gets the credentials of
//! `127.0.0.1:5001`, not Docker Hub's. Docker's own normalisation applies:
//! `https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io` and `docker.io` are
//! one host.
//!
//! Sources, as `docker login` leaves them (<https://docs.docker.com/reference/cli/docker/login/>):
//! `credHelpers` (per registry), `credsStore` (every registry), then `auths` (`auth`,
//! `username`/`password`, or `identitytoken`, an OAuth2 refresh token). Helpers run only when
//! a registry asks for credentials, once per host and run.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use base64::Engine as _;

use super::credhelper::{self, HelperAnswer};
use super::error::RegistryError;

/// How long a credential helper may take to answer.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// A user name and password, or an identity token. `Debug` prints `<redacted>` for the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
    /// The secret is an OAuth2 refresh token (`identitytoken`, or a helper's `<token>` user),
    /// exchanged at the token server, never sent as a password.
    identity_token: bool,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
            identity_token: false,
        }
    }

    /// An identity token (OAuth2 refresh token) for `username` (may be empty).
    pub fn identity_token(username: impl Into<String>, token: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: token.into(),
            identity_token: true,
        }
    }

    /// True when the secret is a refresh token for the token server's OAuth2 endpoint.
    pub fn is_identity_token(&self) -> bool {
        self.identity_token
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
            .field("identity_token", &self.identity_token)
            .finish()
    }
}

/// Where a credential came from (for `-v` and hints; never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--username` with `--password-stdin`.
    CommandLine,
    /// An `auths` entry of this `config.json`.
    ConfigFile(PathBuf),
    /// `docker-credential-NAME`, named by `credHelpers` or `credsStore`.
    Helper(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::CommandLine => f.write_str("--username/--password-stdin"),
            Source::ConfigFile(p) => write!(f, "{}", p.display()),
            Source::Helper(name) => write!(f, "credential helper docker-credential-{name}"),
        }
    }
}

/// The answer for one host: the credential (if any), where it came from, and what went wrong
/// on the way (a helper that is missing or failed), for warnings and 401 hints.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    pub credentials: Option<Credentials>,
    pub source: Option<Source>,
    pub problem: Option<String>,
}

/// Credentials by host: the command line's, then a Docker `config.json`'s.
#[derive(Clone, Default)]
pub struct CredentialStore {
    explicit: Vec<(String, Credentials)>,
    config: HashMap<String, ConfigEntry>,
    config_path: Option<PathBuf>,
    /// `credHelpers`: host -> helper name.
    helpers: HashMap<String, String>,
    /// `credsStore`: the helper for every host.
    store: Option<String>,
    /// Helper answers, once per host and run: requests that ask at once wait for the one run.
    asked: Arc<Mutex<HashMap<String, Arc<OnceLock<Lookup>>>>>,
}

#[derive(Clone)]
struct ConfigEntry {
    /// The key as written (`https://index.docker.io/v1/`): what a helper is asked for.
    key: String,
    credentials: Option<Credentials>,
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
            .field("helpers", &self.helpers)
            .field("store", &self.store)
            .finish()
    }
}

impl CredentialStore {
    /// An empty store: every request is anonymous.
    pub fn new() -> CredentialStore {
        CredentialStore::default()
    }

    /// Uses `creds` for `host` (`reg.local:5000`, `docker.io`), and for no other host.
    pub fn insert(&mut self, host: &str, creds: Credentials) {
        let host = host_key(host);
        self.explicit.retain(|(h, _)| *h != host);
        self.explicit.push((host, creds));
    }

    /// Reads `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`; a missing file is fine.
    pub fn load_docker_config(&mut self) -> Result<(), RegistryError> {
        let Some(path) = docker_config_path() else {
            return Ok(());
        };
        if !path.exists() {
            return Ok(());
        }
        self.load_docker_config_file(&path)
    }

    /// Reads `auths`, `credHelpers` and `credsStore` of a Docker `config.json`.
    pub fn load_docker_config_file(&mut self, path: &Path) -> Result<(), RegistryError> {
        let text = std::fs::read(path)
            .map_err(|e| RegistryError::Config(format!("cannot read {}: {e}", path.display())))?;
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            auths: HashMap<String, Entry>,
            #[serde(default, rename = "credHelpers")]
            cred_helpers: HashMap<String, String>,
            #[serde(default, rename = "credsStore")]
            creds_store: Option<String>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
            identitytoken: Option<String>,
        }
        let file: File = serde_json::from_slice(&text).map_err(|e| {
            // serde_json's message names a position, never the content.
            RegistryError::Config(format!(
                "{} is not a valid Docker config.json: {e}",
                path.display()
            ))
        })?;
        let bad = |what: String| RegistryError::Config(format!("{}: {what}", path.display()));
        for (key, entry) in file.auths {
            let mut user = entry.username;
            let mut password = entry.password;
            if let Some(auth) = entry.auth.filter(|a| !a.is_empty()) {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok());
                match raw.as_deref().and_then(|s| s.split_once(':')) {
                    Some((u, p)) => {
                        user = Some(u.to_string());
                        password = Some(p.to_string());
                    }
                    None => {
                        return Err(bad(format!(
                            "the \"auth\" field for {key:?} is not base64 of user:password"
                        )))
                    }
                }
            }
            let credentials = match (
                entry.identitytoken.filter(|t| !t.is_empty()),
                user,
                password,
            ) {
                (Some(token), user, _) => {
                    Some(Credentials::identity_token(user.unwrap_or_default(), token))
                }
                (None, Some(u), Some(p)) if !p.is_empty() => Some(Credentials::new(u, p)),
                _ => None,
            };
            self.config.insert(
                host_key(&key),
                ConfigEntry {
                    key: key.clone(),
                    credentials,
                },
            );
        }
        for (host, helper) in file.cred_helpers {
            credhelper::check_name(&helper)
                .map_err(|e| bad(format!("credHelpers {host:?}: {e}")))?;
            self.helpers.insert(host_key(&host), helper);
        }
        if let Some(store) = file.creds_store.filter(|s| !s.is_empty()) {
            credhelper::check_name(&store).map_err(|e| bad(format!("credsStore: {e}")))?;
            self.store = Some(store);
        }
        self.config_path = Some(path.to_path_buf());
        Ok(())
    }

    /// The credentials for `host` (`host[:port]` of the URL a request goes to), if any.
    pub fn get(&self, host: &str) -> Option<Credentials> {
        self.lookup(host).credentials
    }

    /// The credentials for `host` with their source, running a credential helper if
    /// `config.json` names one (once per host: the answer is kept for the run).
    pub fn lookup(&self, host: &str) -> Lookup {
        let key = host_key(host);
        if let Some((_, c)) = self.explicit.iter().find(|(h, _)| *h == key) {
            return Lookup {
                credentials: Some(c.clone()),
                source: Some(Source::CommandLine),
                problem: None,
            };
        }
        let helper = self.helpers.get(&key).or(self.store.as_ref());
        let from_file = || {
            self.config.get(&key).and_then(|e| {
                e.credentials.clone().map(|c| {
                    (
                        c,
                        Source::ConfigFile(self.config_path.clone().unwrap_or_default()),
                    )
                })
            })
        };
        let Some(helper) = helper else {
            let (credentials, source) = from_file().unzip();
            return Lookup {
                credentials,
                source,
                problem: None,
            };
        };
        let cell = self
            .asked
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .clone();
        cell.get_or_init(|| self.ask(helper, &key, from_file))
            .clone()
    }

    /// Runs `helper` for `key`, falling back to the `auths` entry (`from_file`).
    fn ask(
        &self,
        helper: &str,
        key: &str,
        from_file: impl Fn() -> Option<(Credentials, Source)>,
    ) -> Lookup {
        let server_url = self.server_url(key);
        let mut found = match credhelper::get(helper, &server_url, HELPER_TIMEOUT) {
            HelperAnswer::Found(c) => Lookup {
                credentials: Some(c),
                source: Some(Source::Helper(helper.to_string())),
                problem: None,
            },
            HelperAnswer::NotFound => Lookup::default(),
            HelperAnswer::Failed(why) => Lookup {
                problem: Some(format!(
                    "credentials for {key} should come from docker-credential-{helper}, which {why}"
                )),
                ..Lookup::default()
            },
        };
        // A full `auths` entry (written before the helper was configured) still counts.
        if found.credentials.is_none() {
            if let Some((c, s)) = from_file() {
                found.credentials = Some(c);
                found.source = Some(s);
            }
        }
        found
    }

    /// The server URL a helper is asked for: the `config.json` key as `docker login` wrote it,
    /// Docker Hub's historic URL, or the host.
    fn server_url(&self, key: &str) -> String {
        if let Some(e) = self.config.get(key) {
            return e.key.clone();
        }
        config_key(key)
    }
}

/// Where Docker keeps its `config.json`: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`; `None` without either variable.
pub fn docker_config_path() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join("config.json")),
        _ => std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".docker/config.json")),
    }
}

/// The `config.json` key Docker writes for a registry: Docker Hub's historic
/// `https://index.docker.io/v1/`, else the host as [`host_key`] gives it.
pub fn config_key(registry: &str) -> String {
    match host_key(registry).as_str() {
        "docker.io" => DOCKER_HUB_KEY.to_string(),
        host => host.to_string(),
    }
}

/// The key (and credential helper server URL) Docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// The host a credential belongs to, as Docker normalises `config.json` keys: no scheme, no
/// path, lower case, `:443` dropped, and Docker Hub's aliases folded into `docker.io`.
pub fn host_key(s: &str) -> String {
    let s = s.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    let host = host.strip_suffix(":443").unwrap_or(&host).to_string();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug() {
        let c = Credentials::new("alice", "canary-s3cret");
        assert!(!format!("{c:?}").contains("canary"));
        let mut s = CredentialStore::new();
        s.insert("reg.local", c);
        assert!(!format!("{s:?}").contains("canary"));
        let t = Credentials::identity_token("", "canary-refresh");
        assert!(!format!("{t:?}").contains("canary"));
    }

    #[test]
    fn reads_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        // "alice:pw:with:colons"
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:pw:with:colons");
        std::fs::write(
            &p,
            format!(
                r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
                "reg.local:5000":{{"username":"bob","password":"x"}},
                "https://az.example":{{"auth":"{}","identitytoken":"refresh-me"}},
                "stub.example":{{}}}}}}"#,
                base64::engine::general_purpose::STANDARD.encode("00000000-0000:")
            ),
        )
        .unwrap();
        let mut s = CredentialStore::new();
        s.load_docker_config_file(&p).unwrap();
        let l = s.lookup("registry-1.docker.io");
        let c = l.credentials.unwrap();
        assert_eq!(
            (c.username.as_str(), c.password()),
            ("alice", "pw:with:colons")
        );
        assert_eq!(l.source, Some(Source::ConfigFile(p.clone())));
        assert_eq!(s.get("reg.local:5000").unwrap().username, "bob");
        // The port is part of the host: another port gets nothing.
        assert!(s.get("reg.local:5001").is_none());
        assert!(s.get("reg.local").is_none());
        assert!(s.get("gcr.io").is_none());
        assert!(s.get("stub.example").is_none());
        let az = s.get("az.example").unwrap();
        assert!(az.is_identity_token());
        assert_eq!(az.password(), "refresh-me");
        std::fs::write(&p, r#"{"auths":{"x":{"auth":"!!!"}}}"#).unwrap();
        let e = CredentialStore::new()
            .load_docker_config_file(&p)
            .unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        std::fs::write(&p, r#"{"credsStore":"../evil"}"#).unwrap();
        let e = CredentialStore::new()
            .load_docker_config_file(&p)
            .unwrap_err();
        assert!(matches!(e, RegistryError::Config(_)), "{e:?}");
        assert!(
            e.to_string()
                .contains(r#"credsStore: "../evil" is not a credential helper name"#),
            "{e}"
        );
    }

    #[test]
    fn explicit_credentials_are_for_their_host_only() {
        let mut s = CredentialStore::new();
        s.insert("127.0.0.1:5000", Credentials::new("a", "1"));
        s.insert("docker.io", Credentials::new("hub", "2"));
        assert_eq!(s.get("127.0.0.1:5000").unwrap().username, "a");
        assert_eq!(s.lookup("127.0.0.1:5000").source, Some(Source::CommandLine));
        assert_eq!(s.get("index.docker.io").unwrap().username, "hub");
        assert!(s.get("127.0.0.1:5001").is_none());
        assert!(s.get("gcr.io").is_none());
    }

    #[test]
    fn host_keys_follow_docker() {
        assert_eq!(host_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(host_key("Reg.Local:5000"), "reg.local:5000");
        assert_eq!(host_key("https://reg.local:443/v2/"), "reg.local");
        assert_eq!(host_key("http://reg.local:80"), "reg.local:80");
    }
}
