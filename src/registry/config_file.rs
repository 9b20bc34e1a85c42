//! Writing Docker's `config.json`, as `docker login` and `docker logout` do
//! (<https://docs.docker.com/reference/cli/docker/login/>); credentials.rs reads it.
//!
//! - Only the entry of the one registry changes: every other `auths` entry, `credHelpers`,
//!   `credsStore` and every key airlock does not know (`HttpHeaders`, `proxies`, ...) keep
//!   their values. serde_json orders the keys of an object, so the order of keys may change.
//! - Where the secret goes is Docker's rule: when a credential helper is configured for that
//!   registry (`credHelpers`) or for all (`credsStore`), `docker-credential-NAME store` keeps
//!   it, and the `auths` entry holds no secret (an empty object, as Docker writes one). A
//!   failing helper is an error and nothing is written: an operator who set up a keychain
//!   must never find the password in the file instead. Without a helper, the entry is
//!   `{"auth": base64(user:password)}`, readable by Docker, skopeo, crane and airlock.
//! - The file is replaced atomically (a temporary sibling, fsync, rename) with mode 0600,
//!   in a directory made with mode 0700 when missing; a `config.json` that is a symbolic
//!   link is written where it points, as Docker does.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Map, Value};

use super::credentials::{config_key, host_key, Credentials, HELPER_TIMEOUT};
use super::credhelper;

/// Why `config.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not a valid Docker config.json; fix or move it first", path.display())]
    Parse {
        path: PathBuf,
        // serde_json's message names a position, never the content (which holds secrets).
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a Docker config.json: {what} is not a JSON object; fix or move it first", path.display())]
    Shape { path: PathBuf, what: &'static str },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {what}", path.display())]
    Helper { path: PathBuf, what: String },
}

/// Where a saved secret went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// An `auth` entry of this file (base64, not encrypted).
    File(PathBuf),
    /// `docker-credential-NAME`, named by this file's `credHelpers` or `credsStore`.
    Helper { name: String, file: PathBuf },
}

/// What a logout removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    /// The `auths` keys removed (none: the registry had no entry, "not logged in").
    pub keys: Vec<String>,
    /// The credential helper asked to erase the secret, and what went wrong with it if
    /// anything (the entry is removed all the same, as `docker logout` does).
    pub helper: Option<(String, Option<String>)>,
}

/// Saves `creds` for `registry` in the `config.json` at `path`, through its credential helper
/// when one is configured for that registry.
pub fn save(path: &Path, registry: &str, creds: &Credentials) -> Result<Saved, ConfigFileError> {
    let file = real_path(path)?;
    let mut doc = read(&file)?;
    let key = config_key(registry);
    let helper = helper_for(&file, &doc, registry)?;
    let auths = auths_of(&file, &mut doc)?;
    // Docker's older keys for the same host (`https://reg.local:5000`) give way to one entry;
    // fields of that entry that hold no secret stay.
    let mut entry = Map::new();
    for old in matching_keys(auths, registry) {
        if let Some(Value::Object(o)) = auths.remove(&old) {
            entry.extend(o);
        }
    }
    for secret in [
        "auth",
        "username",
        "password",
        "identitytoken",
        "registrytoken",
    ] {
        entry.remove(secret);
    }
    let saved = match helper {
        Some(name) => {
            credhelper::store(&name, &key, creds, HELPER_TIMEOUT).map_err(|why| {
                ConfigFileError::Helper {
                    path: file.clone(),
                    what: format!(
                        "docker-credential-{name} (configured there for {}) {why}; nothing was saved",
                        host_key(registry)
                    ),
                }
            })?;
            Saved::Helper {
                name,
                file: file.clone(),
            }
        }
        None => {
            let raw = format!("{}:{}", creds.username, creds.password());
            let auth = base64::engine::general_purpose::STANDARD.encode(raw);
            entry.insert("auth".into(), Value::String(auth));
            Saved::File(file.clone())
        }
    };
    auths.insert(key, Value::Object(entry));
    write(&file, &doc)?;
    Ok(saved)
}

/// Removes the entry of `registry` from the `config.json` at `path`, and asks its credential
/// helper, if one is configured, to erase the secret.
pub fn remove(path: &Path, registry: &str) -> Result<Removed, ConfigFileError> {
    let file = real_path(path)?;
    if !file.exists() {
        return Ok(Removed::default());
    }
    let mut doc = read(&file)?;
    let helper = helper_for(&file, &doc, registry)?;
    let auths = auths_of(&file, &mut doc)?;
    let keys = matching_keys(auths, registry);
    if keys.is_empty() {
        return Ok(Removed::default());
    }
    for k in &keys {
        auths.remove(k);
    }
    let helper = helper.map(|name| {
        let problem = credhelper::erase(&name, &config_key(registry), HELPER_TIMEOUT)
            .err()
            .map(|why| format!("docker-credential-{name} {why}"));
        (name, problem)
    });
    write(&file, &doc)?;
    Ok(Removed { keys, helper })
}

/// The file to read and replace: `path`, or where it points when it is a symbolic link.
fn real_path(path: &Path) -> Result<PathBuf, ConfigFileError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|source| ConfigFileError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// The document, or an empty one when the file does not exist.
fn read(file: &Path) -> Result<Value, ConfigFileError> {
    let bytes = match fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Value::Object(Map::new())),
        Err(source) => {
            return Err(ConfigFileError::Read {
                path: file.to_path_buf(),
                source,
            })
        }
    };
    // `docker login` leaves an empty file behind at times; it holds nothing.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    let doc: Value = serde_json::from_slice(&bytes).map_err(|source| ConfigFileError::Parse {
        path: file.to_path_buf(),
        source,
    })?;
    if !doc.is_object() {
        return Err(ConfigFileError::Shape {
            path: file.to_path_buf(),
            what: "the file",
        });
    }
    Ok(doc)
}

/// The helper that keeps `registry`'s secrets: its `credHelpers` entry, else `credsStore`.
fn helper_for(file: &Path, doc: &Value, registry: &str) -> Result<Option<String>, ConfigFileError> {
    let host = host_key(registry);
    let per_host = doc
        .get("credHelpers")
        .and_then(Value::as_object)
        .and_then(|h| h.iter().find(|(k, _)| host_key(k) == host))
        .and_then(|(_, v)| v.as_str());
    let name = per_host.or_else(|| doc.get("credsStore").and_then(Value::as_str));
    match name.filter(|n| !n.is_empty()) {
        None => Ok(None),
        Some(n) => credhelper::check_name(n)
            .map(|()| Some(n.to_string()))
            .map_err(|what| ConfigFileError::Helper {
                path: file.to_path_buf(),
                what,
            }),
    }
}

/// The `auths` object, made when missing.
fn auths_of<'a>(
    file: &Path,
    doc: &'a mut Value,
) -> Result<&'a mut Map<String, Value>, ConfigFileError> {
    let top = doc.as_object_mut().expect("read() returns an object");
    top.entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| ConfigFileError::Shape {
            path: file.to_path_buf(),
            what: "\"auths\"",
        })
}

/// The `auths` keys that name `registry`'s host, however Docker spelled them.
fn matching_keys(auths: &Map<String, Value>, registry: &str) -> Vec<String> {
    let host = host_key(registry);
    auths
        .keys()
        .filter(|k| host_key(k) == host)
        .cloned()
        .collect()
}

/// Replaces `file` with `doc` (tab-indented, as Docker writes it), mode 0600.
fn write(file: &Path, doc: &Value) -> Result<(), ConfigFileError> {
    let failed = |source| ConfigFileError::Write {
        path: file.to_path_buf(),
        source,
    };
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            use std::os::unix::fs::DirBuilderExt as _;
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(failed)?;
        }
    }
    let mut text = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
    serde::Serialize::serialize(doc, &mut ser).map_err(|e| failed(io::Error::other(e)))?;
    text.push(b'\n');
    crate::safe_write::write_private_file(file, &text).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn save_keeps_everything_else_and_remove_takes_only_its_entry() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("docker/config.json");
        // A missing file and directory: made, 0700 and 0600.
        let saved = save(&p, "reg.local:5000", &Credentials::new("u", "p:w")).unwrap();
        assert_eq!(saved, Saved::File(p.clone()));
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(p.parent().unwrap()), 0o700);
        let other = r#"{"auths":{"other:1":{"auth":"eDp5"},"https://reg.local:5000":{"auth":"b2xkOm9sZA==","email":"e@x"}},
            "credHelpers":{"gcr.io":"gcr"},"HttpHeaders":{"X-Meta":"1"},"psFormat":"table"}"#;
        fs::write(&p, other).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        save(&p, "https://Reg.Local:5000/", &Credentials::new("u", "p:w")).unwrap();
        assert_eq!(mode(&p), 0o600);
        let doc: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(doc["auths"]["other:1"]["auth"], "eDp5");
        assert_eq!(doc["credHelpers"]["gcr.io"], "gcr");
        assert_eq!(doc["HttpHeaders"]["X-Meta"], "1");
        assert_eq!(doc["psFormat"], "table");
        // The old spelling of the same host gave way; its non-secret field stayed.
        assert!(doc["auths"].get("https://reg.local:5000").is_none());
        assert_eq!(doc["auths"]["reg.local:5000"]["email"], "e@x");
        assert_eq!(doc["auths"]["reg.local:5000"]["auth"], "dTpwOnc=");
        let r = remove(&p, "reg.local:5000").unwrap();
        assert_eq!(r.keys, vec!["reg.local:5000".to_string()]);
        let doc: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert!(doc["auths"].get("reg.local:5000").is_none());
        assert_eq!(doc["auths"]["other:1"]["auth"], "eDp5");
        assert_eq!(remove(&p, "reg.local:5000").unwrap(), Removed::default());
        // Docker Hub under Docker's key.
        save(&p, "docker.io", &Credentials::new("hub", "x")).unwrap();
        let doc: Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert!(doc["auths"]["https://index.docker.io/v1/"]["auth"].is_string());
        // Nothing written beside it.
        let names: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_file_that_is_not_a_config_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.json");
        for (text, why) in [
            ("{not json", "is not a valid Docker config.json"),
            ("[1]", "the file is not a JSON object"),
            (r#"{"auths":[]}"#, "\"auths\" is not a JSON object"),
            (
                r#"{"credsStore":"../x"}"#,
                "is not a credential helper name",
            ),
        ] {
            fs::write(&p, text).unwrap();
            let e = save(&p, "r", &Credentials::new("u", "p")).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
            assert_eq!(fs::read_to_string(&p).unwrap(), text);
        }
    }

    #[test]
    fn a_symbolic_link_is_written_where_it_points() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.json");
        fs::write(&real, "{}").unwrap();
        let link = dir.path().join("config.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        save(&link, "r:1", &Credentials::new("u", "p")).unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::read_to_string(&real).unwrap().contains("\"r:1\""));
    }
}
