//! A private containerd (`/usr/bin/containerd`, 1.6) for tests that check images land in a
//! container runtime, driven with `ctr`.
//!
//! Root, state, the `opt` plugin dir and the gRPC socket all live in one temp dir under `/tmp`
//! with a short name, because a unix socket path may hold at most 108 bytes. Plugins that need
//! privileges or kernel features a test box may lack (CRI, btrfs, zfs, devmapper, aufs) are
//! disabled. Config reference:
//! <https://github.com/containerd/containerd/blob/release/1.6/docs/man/containerd-config.toml.5.md>.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

use super::{log_tail, poll, require_tool, ChildGuard, STARTUP_TIMEOUT};

const BINARY: &str = "/usr/bin/containerd";
const CTR: &str = "/usr/bin/ctr";
const PACKAGE: &str = "containerd";
/// Lines of the containerd log quoted in panic messages.
const TAIL: usize = 40;

/// The containerd namespace [`Containerd::ctr`] works in.
pub const NAMESPACE: &str = "airlock-test";

/// A running containerd; killed (and its temp dir removed) on drop.
pub struct Containerd {
    child: ChildGuard,
    socket: PathBuf,
    log_file: PathBuf,
    dir: TempDir,
}

impl Containerd {
    /// Starts containerd and waits until `ctr version` answers.
    pub fn start() -> Containerd {
        require_tool(BINARY, PACKAGE);
        require_tool(CTR, PACKAGE);
        let dir = tempfile::Builder::new()
            .prefix("ctd")
            .tempdir_in("/tmp")
            .expect("creating the containerd temp dir");
        let path = dir.path();
        let socket = path.join("containerd.sock");
        let config_file = path.join("config.toml");
        let log_file = path.join("containerd.log");
        // TOML basic strings: the temp path holds no quotes or backslashes.
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs",
]

[grpc]
  address = "{socket}"

[ttrpc]
  address = "{socket}.ttrpc"

[debug]
  level = "warn"

[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
"#,
            root = path.join("root").display(),
            state = path.join("state").display(),
            socket = socket.display(),
            opt = path.join("opt").display(),
        );
        std::fs::write(&config_file, config)
            .unwrap_or_else(|e| panic!("writing {}: {e}", config_file.display()));

        let log = File::create(&log_file)
            .unwrap_or_else(|e| panic!("creating {}: {e}", log_file.display()));
        let log_err = log.try_clone().expect("cloning the log file handle");
        let child = Command::new(BINARY)
            .arg("--config")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {BINARY}: {e}"));
        let mut containerd = Containerd {
            child: ChildGuard::new(child),
            socket,
            log_file,
            dir,
        };
        let ready = poll(STARTUP_TIMEOUT, || {
            if let Some(status) = containerd.child.exited() {
                return Some(Err(format!("exited with {status}")));
            }
            // The socket appears before the version service answers, so ask it.
            (containerd.socket.exists() && containerd.ctr(&["version"]).status.success())
                .then_some(Ok(()))
        });
        match ready {
            Some(Ok(())) => containerd,
            Some(Err(why)) => panic!(
                "{BINARY} did not start: {why}; log tail:\n{}",
                log_tail(&containerd.log_file, TAIL)
            ),
            None => panic!(
                "{BINARY} not ready after {STARTUP_TIMEOUT:?}; log tail:\n{}",
                log_tail(&containerd.log_file, TAIL)
            ),
        }
    }

    /// Runs `ctr -a <socket> -n airlock-test <args>` and returns its output.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new(CTR)
            .arg("-a")
            .arg(&self.socket)
            .args(["-n", NAMESPACE])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {CTR} {args:?}: {e}"))
    }

    /// The gRPC socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The temp dir holding config, root, state and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.log_file)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }
}
