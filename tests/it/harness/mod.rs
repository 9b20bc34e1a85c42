//! Real servers for integration tests, each owned by a guard that kills it on drop.
//!
//! [`Registry`] runs CNCF distribution (`/usr/bin/docker-registry`), optionally with TLS
//! ([`TestCa`]), htpasswd or bearer-token auth ([`TokenServer`]); [`Containerd`] runs a private
//! containerd. Everything listens on 127.0.0.1 or a unix socket in a temp dir, so tests run in
//! parallel and never touch the network. Readiness is polled, never slept for.

// Not every suite uses every helper; an unused one is not a bug in a test-support module.
#![allow(dead_code)]

pub mod containerd;
pub mod fake;
pub mod http;
pub mod proxy;
pub mod registry;
pub mod tls;
pub mod token;
pub mod upstreams;

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use containerd::Containerd;
pub use registry::{Registry, RegistryBuilder};
pub use tls::TestCa;
pub use token::{TokenPolicy, TokenServer};

/// How long a server may take to become ready before the test fails.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Pause between readiness probes.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Panics with an install hint when the tool at `path` is missing.
pub fn require_tool(path: &str, package: &str) {
    if !Path::new(path).is_file() {
        panic!(
            "{path} not found: install the Debian package {package} (apt-get install {package})"
        );
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is found by binding port 0 and releasing it, so another process may still take it
/// before the server binds; callers detect that and retry. Within this process a port is never
/// handed out twice, so parallel tests cannot race each other for the same one.
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local address of a bound listener")
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if handed_out.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

/// Calls `probe` every 20 ms until it returns `Some`, or returns `None` after `timeout`.
pub fn poll<T>(timeout: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// The last `lines` lines of a log file, for panic messages.
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => return format!("(cannot read {}: {e})", path.display()),
    };
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A child process that is killed (SIGKILL) and reaped when dropped, so a panicking test
/// leaves no server behind.
pub struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// Takes ownership of a spawned child.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.as_ref().map_or(0, Child::id)
    }

    /// The exit status if the process has already exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.0.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kills the process and waits for it; a no-op when already stopped.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.0.take() {
            // An error here means it already exited; wait() still reaps it.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
