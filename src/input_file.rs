//! Opening the files airlock reads from the operator's disk: a bundle, its parts, and the small
//! files beside them (`parts.json`, the `.sha256` checksum file, an inventory).
//!
//! A name on a USB stick may stand for anything. Opening a FIFO for reading waits for a writer
//! forever; reading `/dev/zero` never ends; a symbolic link may lead to either; and opening
//! some devices acts. So only regular files are opened and read: the name is checked with
//! `stat` first, then opened with `O_NONBLOCK` (a FIFO swapped in cannot block the open) and
//! checked again with `fstat` on the open descriptor (a link cannot be swapped between the check
//! and the read). Symbolic links to regular files are followed, as an operator may use them.
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
    // Refused before the open when it can be: opening a special file may act (a writer
    // waiting on a FIFO goes on, a tape rewinds, a watchdog arms).
    regular(std::fs::metadata(path)?.file_type())?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    // And on the open descriptor, in case the name changed in between.
    regular(file.metadata()?.file_type())?;
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

/// Refuses anything but a regular file, naming what it is.
fn regular(t: std::fs::FileType) -> Result<(), InputError> {
    if t.is_file() {
        return Ok(());
    }
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
    Err(InputError::NotRegular { kind })
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

    /// Opening a special file may act (a writer waiting on a FIFO is released, a tape
    /// rewinds, a watchdog arms): one that is not a regular file is refused unopened.
    #[test]
    fn a_special_file_is_refused_without_being_opened() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        // A writer's open blocks until a reader opens the FIFO.
        let writer = std::thread::spawn(move || {
            let f = std::fs::OpenOptions::new().write(true).open(&path);
            let _ = tx.send(());
            f
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for p in [&fifo, &link] {
            let e = open_regular(p).unwrap_err();
            assert_eq!(e.to_string(), "not a regular file but a FIFO");
        }
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "open_regular opened the FIFO: its writer was released"
        );
        // Release the writer.
        let _reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        writer.join().unwrap().unwrap();
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
