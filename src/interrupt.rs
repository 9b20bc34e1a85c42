//! SIGINT and SIGTERM: stop cleanly instead of dying mid-write.
//!
//! The handlers only record the signal. Long operations call [`check`] between steps, and the
//! readers that feed downloads, uploads and hashing wrap their source in [`Guarded`], so an
//! in-flight transfer ends at its next read. The error then unwinds normally: temporary files
//! are removed by their guards, upload sessions are cancelled, and `main` exits with 130
//! (SIGINT) or 143 (SIGTERM). A rerun resumes from the cache or the registry.

use std::io::{self, Read};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static SIGNAL: OnceLock<Arc<AtomicUsize>> = OnceLock::new();

/// Installs the handlers (once; later calls do nothing).
pub fn install() -> io::Result<()> {
    if SIGNAL.get().is_some() {
        return Ok(());
    }
    let flag = Arc::new(AtomicUsize::new(0));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register_usize(sig, flag.clone(), sig as usize)?;
    }
    let _ = SIGNAL.set(flag);
    Ok(())
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
