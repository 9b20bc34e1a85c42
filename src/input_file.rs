//! Opening the files airlock reads from the operator's disk: a bundle, its parts, and the small
//! files beside them (`parts.json`, the `.sha256` checksum file, an inventory).
//!
//! A name on a USB stick may stand for anything. Opening a FIFO for reading waits for a writer
//! forever; reading `/dev/zero` never ends; a symbolic link may lead to either. So only regular
//! files are read: the file is opened with `O_NONBLOCK` (a FIFO cannot block the open), then
//! checked with `fstat` on the open descriptor (a link cannot be swapped between the check and
//! the read). Symbolic links to regular files are followed, as an operator may use them.
//!
//! Small files are read with a cap (for side files,
//! [`crate::bundle::limits::MAX_SIDE_FILE_BYTES`]): at most one byte more than the cap is ever
//! read, and a file over it is refused, whatever size it claims.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file was not read. It never names the file: the caller does, as it knows what the
/// file is for ("part", "inventory", ...).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("not a regular file but {kind}")]
    NotRegular { kind: &'static str },
    #[error("more than the {limit} bytes accepted for this file")]
    TooLarge { limit: u64 },
}

impl From<InputError> for io::Error {
    fn from(e: InputError) -> io::Error {
        match e {
            InputError::Io(e) => e,
            e @ InputError::NotRegular { .. } => io::Error::new(io::ErrorKind::InvalidInput, e),
            e @ InputError::TooLarge { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
        }
    }
}

/// Opens `path` for reading if it is a regular file (after following symbolic links).
pub fn open_regular(path: &Path) -> Result<File, InputError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let t = file.metadata()?.file_type();
    if !t.is_file() {
        let kind = if t.is_fifo() {
            "a FIFO"
        } else if t.is_char_device() {
            "a character device"
        } else if t.is_block_device() {
            "a block device"
        } else if t.is_dir() {
            "a directory"
        } else if t.is_socket() {
            "a socket"
        } else {
            "a special file"
        };
        return Err(InputError::NotRegular { kind });
    }
    // O_NONBLOCK only mattered for the open; put the descriptor back to blocking reads.
    // SAFETY: fcntl on a descriptor this function owns; the flags are plain integers.
    unsafe {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(file)
}

/// Reads a regular file whole, refusing one of more than `limit` bytes without reading more
/// than `limit + 1` of them.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    let file = open_regular(path)?;
    let claimed = file.metadata()?.len();
    if claimed > limit {
        return Err(InputError::TooLarge { limit });
    }
    let mut buf = Vec::with_capacity(claimed as usize);
    file.take(limit + 1).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        return Err(InputError::TooLarge { limit });
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"data").unwrap();
        std::os::unix::fs::symlink(&f, dir.path().join("link")).unwrap();
        assert_eq!(read_capped(&dir.path().join("link"), 4).unwrap(), b"data");
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        // A FIFO without a writer would block a plain open forever.
        let e = open_regular(&fifo).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file but a FIFO");
        let e = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert_eq!(e.to_string(), "not a regular file but a character device");
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
        assert!(open_regular(&dir.path().join("zero")).is_err());
        assert!(open_regular(dir.path()).is_err());
        let e: io::Error = open_regular(&dir.path().join("none")).unwrap_err().into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn reads_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_capped(&f, 5).unwrap(), b"12345");
        let e = read_capped(&f, 4).unwrap_err();
        assert_eq!(
            e.to_string(),
            "more than the 4 bytes accepted for this file"
        );
        // A sparse 1 TiB file is refused without a byte read.
        let big = dir.path().join("big");
        File::create(&big).unwrap().set_len(1 << 40).unwrap();
        assert!(matches!(
            read_capped(&big, 1 << 20),
            Err(InputError::TooLarge { .. })
        ));
    }
}
