//! A real CNCF distribution registry (`/usr/bin/docker-registry`, 2.8) for integration tests.
//!
//! [`Registry`] writes a config into a temp dir, serves on `127.0.0.1:<free port>` with
//! filesystem storage there, polls `GET /v2/` until it answers, and SIGKILLs the process on
//! drop. Configuration reference: <https://distribution.github.io/distribution/about/configuration/>.
//! The config is written as JSON, which the registry's YAML parser reads as-is, so paths never
//! need YAML quoting.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::json;
use tempfile::TempDir;

use super::token::{self, TokenPolicy, TokenServer};
use super::{free_port, http, log_tail, poll, require_tool, ChildGuard, TestCa, STARTUP_TIMEOUT};

const BINARY: &str = "/usr/bin/docker-registry";
const PACKAGE: &str = "docker-registry";
/// Lines of the registry log quoted in panic messages.
const TAIL: usize = 40;
/// How often startup is retried when another process took the free port first.
const BIND_ATTEMPTS: usize = 5;

#[derive(Debug, Clone, Default)]
enum Auth {
    #[default]
    None,
    Htpasswd {
        user: String,
        password: String,
    },
    Token(TokenPolicy),
}

/// Options for a [`Registry`]; TLS combines with either kind of auth.
#[derive(Debug, Clone, Default)]
pub struct RegistryBuilder {
    tls: bool,
    /// Serve a self-signed `CA:TRUE` certificate instead of one issued by a test CA.
    self_signed: bool,
    auth: Auth,
    schema1: bool,
    /// Serve the token realm over https, on its own port, with a certificate from the
    /// registry's CA (as a registry and its auth server under one private CA are).
    realm_tls: bool,
}

impl RegistryBuilder {
    /// Plain HTTP, no auth.
    pub fn new() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Serve HTTPS with a certificate from a fresh [`TestCa`].
    pub fn tls(mut self) -> RegistryBuilder {
        self.tls = true;
        self
    }

    /// Serve HTTPS with a self-signed certificate marked `CA:TRUE`, made as
    /// `openssl req -x509` makes one (Docker's registry docs); [`Registry::ca_file`] is that
    /// certificate itself.
    pub fn tls_self_signed(mut self) -> RegistryBuilder {
        self.tls = true;
        self.self_signed = true;
        self
    }

    /// Require HTTP Basic auth for one user (htpasswd, bcrypt, realm `airlock-test`).
    pub fn htpasswd(mut self, user: &str, password: &str) -> RegistryBuilder {
        self.auth = Auth::Htpasswd {
            user: user.to_string(),
            password: password.to_string(),
        };
        self
    }

    /// Require bearer tokens from a [`TokenServer`] run with `policy`.
    pub fn token_auth(mut self, policy: TokenPolicy) -> RegistryBuilder {
        self.auth = Auth::Token(policy);
        self
    }

    /// With [`RegistryBuilder::tls`] and [`RegistryBuilder::token_auth`]: the token realm is
    /// `https://127.0.0.1:OTHER/token`, a front with a certificate from the registry's CA that
    /// forwards to the token server.
    pub fn realm_tls(mut self) -> RegistryBuilder {
        self.realm_tls = true;
        self
    }

    /// Store Docker schema 1 manifests (`compatibility.schema1.enabled`), which distribution
    /// refuses by default since 2.7: pause-amd64:3.0 is served as schema 1 to this day.
    pub fn schema1(mut self) -> RegistryBuilder {
        self.schema1 = true;
        self
    }

    /// Starts the registry and waits until it answers.
    pub fn start(self) -> Registry {
        require_tool(BINARY, PACKAGE);
        let dir = tempfile::Builder::new()
            .prefix("airlock-registry")
            .tempdir()
            .expect("creating the registry temp dir");
        let ca = (self.tls && !self.self_signed).then(|| TestCa::new(dir.path()));
        let self_signed = (self.tls && self.self_signed)
            .then(|| super::tls::self_signed_ca_true(dir.path(), "self-signed"));
        let token = match &self.auth {
            Auth::Token(policy) => Some(TokenServer::start(policy.clone(), dir.path())),
            _ => None,
        };
        let realm_front = match (&ca, &token, self.realm_tls) {
            (Some(ca), Some(t), true) => {
                let backend = t.realm().trim_end_matches("/token").to_string();
                Some(super::fake::FakeServer::start_with_cert(
                    &ca.issue_server_cert("realm"),
                    move |r| super::upstreams::forward(&backend, r),
                ))
            }
            (_, _, true) => panic!("realm_tls needs tls() and token_auth()"),
            _ => None,
        };
        let mut registry = Registry {
            realm_front,
            child: None,
            port: 0,
            config_file: dir.path().join("config.yml"),
            log_file: dir.path().join("registry.log"),
            storage: dir.path().join("storage"),
            ca,
            self_signed,
            token,
            builder: self,
            dir,
        };
        // Another process may bind the port between free_port() and the registry's bind.
        for attempt in 1..=BIND_ATTEMPTS {
            registry.port = free_port();
            registry.write_config();
            match registry.spawn_and_wait() {
                Ok(()) => return registry,
                Err(log) if log.contains("address already in use") && attempt < BIND_ATTEMPTS => {}
                Err(log) => panic!(
                    "{BINARY} on port {} did not start; log tail:\n{log}",
                    registry.port
                ),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }
}

/// A running registry; killed (and its temp dir removed) on drop.
pub struct Registry {
    child: Option<ChildGuard>,
    port: u16,
    config_file: PathBuf,
    log_file: PathBuf,
    storage: PathBuf,
    ca: Option<TestCa>,
    self_signed: Option<super::tls::ServerCert>,
    // Dropped after the registry process, which may still be verifying its tokens.
    token: Option<TokenServer>,
    /// The https front of the token realm ([`RegistryBuilder::realm_tls`]).
    realm_front: Option<super::fake::FakeServer>,
    builder: RegistryBuilder,
    dir: TempDir,
}

impl Registry {
    /// Plain HTTP, no auth.
    pub fn start() -> Registry {
        RegistryBuilder::new().start()
    }

    /// Plain HTTP with Basic auth for one user.
    pub fn with_htpasswd(user: &str, password: &str) -> Registry {
        RegistryBuilder::new().htpasswd(user, password).start()
    }

    /// HTTPS (certificate for 127.0.0.1 and localhost), no auth.
    pub fn with_tls() -> Registry {
        RegistryBuilder::new().tls().start()
    }

    /// Plain HTTP with bearer tokens for one user, no anonymous pull.
    pub fn with_token_auth(user: &str, password: &str) -> Registry {
        RegistryBuilder::new()
            .token_auth(TokenPolicy::new(user, password))
            .start()
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        let scheme = if self.builder.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.host())
    }

    /// The CA certificate (PEM file) that signed the server certificate, for TLS registries
    /// (for a self-signed one, the server certificate itself).
    pub fn ca_file(&self) -> Option<PathBuf> {
        match &self.self_signed {
            Some(c) => Some(c.cert_file.clone()),
            None => self.ca.as_ref().map(TestCa::ca_file),
        }
    }

    /// A directory holding only `ca.crt`, for `skopeo --cert-dir`, for TLS registries.
    pub fn cert_dir(&self) -> Option<PathBuf> {
        self.ca.as_ref().map(TestCa::cert_dir)
    }

    /// The token server of a token-auth registry.
    /// The https front of the token realm, with [`RegistryBuilder::realm_tls`].
    pub fn realm_front(&self) -> Option<&super::fake::FakeServer> {
        self.realm_front.as_ref()
    }

    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// The storage root; repositories live under `docker/registry/v2/repositories/`.
    pub fn storage_dir(&self) -> PathBuf {
        self.storage.clone()
    }

    /// The temp dir holding config, log, storage and certificates.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILLs the registry and waits for it (a crash, not a graceful shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill();
        }
    }

    /// Starts the registry again on the same port and storage, and waits until it answers.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.spawn_and_wait() {
            panic!(
                "{BINARY} did not restart on port {}; log tail:\n{log}",
                self.port
            );
        }
    }

    /// The registry's log so far (stdout and stderr of every run).
    pub fn log(&self) -> String {
        std::fs::read(&self.log_file)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    fn write_config(&self) {
        let mut http_section = json!({
            "addr": self.host(),
            "secret": "airlock-test-secret",
        });
        let cert = match (&self.ca, &self.self_signed) {
            (Some(ca), _) => Some(ca.issue_server_cert("server")),
            (None, Some(c)) => Some(c.clone()),
            (None, None) => None,
        };
        if let Some(cert) = cert {
            http_section["tls"] = json!({
                "certificate": cert.cert_file,
                "key": cert.key_file,
            });
        }
        let mut config = json!({
            "version": "0.1",
            "log": {"level": "warn", "accesslog": {"disabled": true}},
            "storage": {
                "filesystem": {"rootdirectory": self.storage},
                "delete": {"enabled": true},
            },
            "http": http_section,
        });
        if self.builder.schema1 {
            config["compatibility"] = json!({"schema1": {"enabled": true}});
        }
        match &self.builder.auth {
            Auth::None => {}
            Auth::Htpasswd { user, password } => {
                // Low cost: the registry checks it on every request and tests make many.
                let hash = bcrypt::hash_with_result(password, 4)
                    .expect("bcrypt hash")
                    .format_for_version(bcrypt::Version::TwoY);
                let path = self.dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n"))
                    .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
                config["auth"] = json!({"htpasswd": {"realm": "airlock-test", "path": path}});
            }
            Auth::Token(_) => {
                let server = self
                    .token
                    .as_ref()
                    .expect("token server started with the registry");
                let realm = match &self.realm_front {
                    Some(f) => format!("{}/token", f.url()),
                    None => server.realm(),
                };
                config["auth"] = json!({"token": {
                    "realm": realm,
                    "service": token::SERVICE,
                    "issuer": token::ISSUER,
                    "rootcertbundle": server.root_cert_file(),
                }});
            }
        }
        let text = serde_json::to_string_pretty(&config).expect("serializing the registry config");
        std::fs::write(&self.config_file, text)
            .unwrap_or_else(|e| panic!("writing {}: {e}", self.config_file.display()));
    }

    /// Spawns the process and polls until it owns the port and answers HTTP. On failure returns
    /// the log tail (the process is killed).
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .unwrap_or_else(|e| panic!("opening {}: {e}", self.log_file.display()));
        let log_err = log.try_clone().expect("cloning the log file handle");
        let mut command = Command::new(BINARY);
        command
            .arg("serve")
            .arg(&self.config_file)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        // REGISTRY_* variables override the config file; none may leak in from the environment.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("REGISTRY_") {
                command.env_remove(name);
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {BINARY}: {e}"));
        let mut child = ChildGuard::new(child);
        let pid = child.id();
        let port = self.port;
        let probe_url = format!("http://{}/v2/", self.host());
        let ready = poll(STARTUP_TIMEOUT, || {
            if let Some(status) = child.exited() {
                return Some(Err(format!("exited with {status}")));
            }
            // Only trust an answer from our own process: a stranger that grabbed the port
            // would answer too. A TLS listener answers this plain request with Go's 400.
            (owns_listener(pid, port) && http::request("GET", &probe_url, &[], &[]).is_ok())
                .then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => {
                self.child = Some(child);
                Ok(())
            }
            Some(Err(why)) => Err(format!("{why}\n{}", log_tail(&self.log_file, TAIL))),
            None => Err(format!(
                "not ready after {STARTUP_TIMEOUT:?}\n{}",
                log_tail(&self.log_file, TAIL)
            )),
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether process `pid` holds the IPv4 socket listening on 127.0.0.1:`port` (Linux `/proc`).
fn owns_listener(pid: u32, port: u16) -> bool {
    let Some(inode) = listening_inode(port) else {
        return false;
    };
    let target = format!("socket:[{inode}]");
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str())
    })
}

/// The inode of the socket in LISTEN state on local port `port`, from `/proc/net/tcp`
/// (`sl local_address rem_address st ... uid timeout inode`).
fn listening_inode(port: u16) -> Option<u64> {
    const LISTEN: &str = "0A";
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (_, local_port) = fields.get(1)?.split_once(':')?;
        let matches =
            u16::from_str_radix(local_port, 16).ok()? == port && *fields.get(3)? == LISTEN;
        matches.then(|| fields.get(9)?.parse().ok()).flatten()
    })
}
