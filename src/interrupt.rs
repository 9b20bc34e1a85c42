//! SIGINT and SIGTERM: stop cleanly instead of dying mid-write.
//!
//! The handlers only record the signal. Long operations call [`check`] between steps, and the
//! readers that feed downloads, uploads and hashing wrap their source in [`Guarded`], so an
//! in-flight transfer ends at its next read. The error then unwinds normally: temporary files
//! are removed by their guards, upload sessions are cancelled, and `main` exits with 130
//! (SIGINT) or 143 (SIGTERM). A rerun resumes from the cache or the registry.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
/// Directories where this process keeps temporary files (named with its pid).
static TEMP_DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Directories this process created and owns whole, removed with their contents.
static TEMP_TREES: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// How long a graceful stop may take before the watchdog removes the temporary files and
/// exits: a read blocked on a stalled connection would otherwise hold the process until its
/// timeout.
const GRACE: Duration = Duration::from_secs(2);

/// Installs the handlers and the watchdog (once; later calls do nothing). When a stop takes
/// longer than its grace period, the watchdog removes this process's temporary files, calls
/// `forced` (the command layer says so) and exits.
pub fn install(forced: fn(Interrupted, Duration)) -> io::Result<()> {
    if SIGNAL.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, flag.clone(), sig as usize)?;
    }
    let _ = SIGNAL.set(flag);
    std::thread::Builder::new()
        .name("interrupt-watchdog".into())
        .spawn(move || loop {
            std::thread::sleep(Duration::from_millis(50));
            if let Some(sig) = received() {
                std::thread::sleep(GRACE);
                remove_own_temps();
                forced(Interrupted(sig), GRACE);
                std::process::exit(exit_code(sig));
            }
        })?;
    Ok(())
}

/// Registers a directory where this process writes temporary files, so a forced stop removes
/// them: `.<name>.partial-<pid>` (bundle, parts, sidecar) and `<hex>.<pid>.<n>` (cache).
pub fn track_temp_dir(dir: &Path) {
    let mut dirs = TEMP_DIRS.lock().unwrap_or_else(|e| e.into_inner());
    if !dirs.iter().any(|d| d == dir) {
        dirs.push(dir.to_path_buf());
    }
}

/// Registers a directory this process created and owns whole (the `--no-cache` blobs), so a
/// forced stop removes it with everything in it.
pub fn track_temp_tree(dir: &Path) {
    let mut trees = TEMP_TREES.lock().unwrap_or_else(|e| e.into_inner());
    if !trees.iter().any(|d| d == dir) {
        trees.push(dir.to_path_buf());
    }
}

fn remove_own_temps() {
    for t in TEMP_TREES.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        let _ = std::fs::remove_dir_all(t);
    }
    let pid = std::process::id();
    let (partial, cached) = (format!(".partial-{pid}"), format!(".{pid}."));
    let dirs = TEMP_DIRS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for d in dirs {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.contains(&partial) || name.contains(&cached) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

/// The signal received, if any.
pub fn received() -> Option<i32> {
    let v = SIGNAL.get()?.load(Ordering::SeqCst);
    (v != 0).then_some(v as i32)
}

/// The error every interrupted operation returns.
#[derive(Debug, thiserror::Error)]
#[error("interrupted by {}", signal_name(*.0))]
pub struct Interrupted(pub i32);

fn signal_name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT (Ctrl-C)",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// `Err(Interrupted)` once a signal arrived.
pub fn check() -> Result<(), Interrupted> {
    match received() {
        Some(s) => Err(Interrupted(s)),
        None => Ok(()),
    }
}

/// Sleeps for `d`, or until a signal arrives (checked every 20 ms): a backoff never holds an
/// interrupted run.
pub fn sleep(d: Duration) {
    let until = std::time::Instant::now() + d;
    loop {
        let now = std::time::Instant::now();
        if now >= until || received().is_some() {
            return;
        }
        std::thread::sleep((until - now).min(Duration::from_millis(20)));
    }
}

/// The exit code for a signal: 128 + its number.
pub fn exit_code(sig: i32) -> i32 {
    128 + sig
}

/// A reader that fails at its next read once a signal arrived.
pub struct Guarded<R>(pub R);

impl<R: Read> Read for Guarded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Err(e) = check() {
            // Not ErrorKind::Interrupted: io::copy would retry that forever.
            return Err(io::Error::other(e));
        }
        self.0.read(buf)
    }
}
