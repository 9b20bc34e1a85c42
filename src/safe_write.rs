//! Writing files so that nothing partial ever sits under a final name: a temporary sibling
//! (same directory, so the rename is atomic), fsync, rename, fsync of the directory. Used by
//! `pack` (the bundle, its parts, `parts.json`), the checksum file and the cache.
//!
//! The temporary names are hidden siblings named after this process, `.NAME.KIND-PID`, so a
//! forced stop ([`crate::interrupt`]) and the next run can tell whose they are.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A temporary name beside `output`: same directory, so the rename is atomic.
pub fn temp_path_for(output: &Path) -> PathBuf {
    own_sibling(output, "partial")
}

/// `.NAME.KIND-`: how the hidden siblings of `output` of one kind begin, before the pid of
/// the process that owns each.
pub fn sibling_prefix(output: &Path, kind: &str) -> String {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    format!(".{name}.{kind}-")
}

/// `.NAME.KIND-PID` beside `output`: a hidden sibling this process owns.
pub fn own_sibling(output: &Path, kind: &str) -> PathBuf {
    output.with_file_name(format!(
        "{}{}",
        sibling_prefix(output, kind),
        std::process::id()
    ))
}

/// Removes a temporary file when dropped, unless it was kept (renamed to its final name).
pub struct TempGuard {
    path: PathBuf,
    keep: bool,
}

impl TempGuard {
    /// Takes charge of the temporary file at `path` (which may not exist yet).
    pub fn new(path: PathBuf) -> TempGuard {
        TempGuard { path, keep: false }
    }

    /// The file is kept: it was renamed, or someone else removes it.
    pub fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Writes a small file durably: temporary name, fsync, rename, fsync of the directory.
pub fn write_file(path: &Path, data: &[u8]) -> io::Result<()> {
    write_via(path, data, |tmp| File::create(tmp))
}

/// Writes a small file readable by its owner only (mode 0600, as a credentials file must be)
/// durably, as [`write_file`] does. The temporary file is made with that mode, so the content
/// is never readable by others, not even for a moment.
pub fn write_private_file(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    write_via(path, data, |tmp| {
        // One left by a killed run of the same pid may have other permissions.
        let _ = fs::remove_file(tmp);
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(tmp)
    })
}

/// Writes `data` to a temporary sibling made by `create`, fsyncs it, renames it to `path` and
/// fsyncs the directory.
fn write_via(
    path: &Path,
    data: &[u8],
    create: impl FnOnce(&Path) -> io::Result<File>,
) -> io::Result<()> {
    let tmp = temp_path_for(path);
    let mut guard = TempGuard::new(tmp.clone());
    let mut f = create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    guard.keep();
    sync_dir(path);
    Ok(())
}

/// fsyncs the directory holding `path`, so the rename survives a power cut.
pub fn sync_dir(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.json");
        write_file(&p, b"{}").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"{}");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        assert_eq!(
            temp_path_for(&p).file_name().unwrap().to_string_lossy(),
            format!(".x.json.partial-{}", std::process::id())
        );
        // A write into a missing directory fails and leaves nothing.
        assert!(write_file(&dir.path().join("no/such"), b"x").is_err());
    }
}
