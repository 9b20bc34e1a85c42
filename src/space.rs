//! Free space and file system type of the place a bundle is written to (`statvfs`,
//! `statfs`), so `pack` can refuse before it writes a byte, and warn about FAT32's 4 GiB limit;
//! and [`total`], the one way sizes are added up.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

/// `f_type` of FAT file systems (`MSDOS_SUPER_MAGIC`, linux/magic.h).
pub const MSDOS_SUPER_MAGIC: i64 = 0x4d44;
/// Tests set this to pretend a file system has that many bytes free.
pub const FREE_BYTES_OVERRIDE: &str = "AIRLOCK_TEST_FREE_BYTES";

/// What the file system holding a directory offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsInfo {
    /// The directory measured.
    pub dir: PathBuf,
    /// Bytes an unprivileged writer may still use (`f_bavail * f_frsize`).
    pub available: u64,
    /// `statfs` `f_type`.
    pub fs_type: i64,
}

impl FsInfo {
    pub fn is_fat(&self) -> bool {
        self.fs_type == MSDOS_SUPER_MAGIC
    }
}

/// The directory a file at `output` will be written into.
pub fn output_dir(output: &Path) -> PathBuf {
    match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Measures the file system holding `dir`; [`FREE_BYTES_OVERRIDE`] replaces the free bytes.
pub fn measure(dir: &Path) -> io::Result<FsInfo> {
    let c = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid NUL-terminated path and the structs are plain data that the
    // calls fill in; they are only read after a zero return.
    let (available, fs_type) = unsafe {
        let mut v: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut v) != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut s: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut s) != 0 {
            return Err(io::Error::last_os_error());
        }
        (
            (v.f_bavail as u64).saturating_mul(v.f_frsize as u64),
            s.f_type as i64,
        )
    };
    let available = match std::env::var(FREE_BYTES_OVERRIDE) {
        Ok(v) => v.trim().parse().unwrap_or(available),
        Err(_) => available,
    };
    Ok(FsInfo {
        dir: dir.to_path_buf(),
        available,
        fs_type,
    })
}

/// The sum of `sizes`, or `None` when it does not fit in 64 bits. Sizes come from descriptors
/// that a registry or a bundle wrote, so any of them may be absurd (2^63 twice wraps to 0): every
/// sum of sizes goes through here, and a `None` is refused, never wrapped or saturated into a
/// number that looks plausible.
pub fn total(sizes: impl IntoIterator<Item = u64>) -> Option<u64> {
    sizes.into_iter().try_fold(0u64, u64::checked_add)
}

/// Whether an I/O error means the file system is full.
pub fn is_no_space(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC) || e.kind() == io::ErrorKind::StorageFull
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_never_wrap() {
        assert_eq!(total([1, 2, 3]), Some(6));
        assert_eq!(total([]), Some(0));
        assert_eq!(total([1 << 63, 1 << 63]), None);
        assert_eq!(total([u64::MAX, 0]), Some(u64::MAX));
    }

    #[test]
    fn measures_the_temp_dir() {
        let info = measure(&std::env::temp_dir()).unwrap();
        assert!(info.available > 0 || std::env::var(FREE_BYTES_OVERRIDE).is_ok());
        assert_eq!(output_dir(Path::new("b.tar.zst")), PathBuf::from("."));
        assert_eq!(output_dir(Path::new("/x/b.tar.zst")), PathBuf::from("/x"));
    }
}
