//! A file written once, front to back, that reaches the disk as it grows and leaves the page
//! cache once it is there.
//!
//! A bundle is written once and not read again on this host: it goes to a USB stick. Left to
//! itself, the kernel keeps all of it dirty until the closing fsync (on a machine with a lot of
//! memory, writeback only starts past 10% of it), so the disk idles while the bundle is made and
//! then the fsync waits for every byte; and the whole bundle stays in the page cache afterwards,
//! pushing out what the host had there. [`DropBehind`] does what the kernel's developers advise
//! for streaming writes: every `STEP` bytes it starts the writeback of that step
//! (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not wait), waits for the step before
//! it, and drops that one from the page cache (`posix_fadvise(POSIX_FADV_DONTNEED)`).
//!
//! So the disk works while the rest is produced, the closing fsync has at most two steps left,
//! and the file holds at most two steps of page cache: the pages freed are the ones the next
//! writes reuse. On a virtual machine whose host takes freed memory back, that also spares a
//! host page fault for every page of the bundle.
//!
//! The calls are advisory. If one fails, nothing is lost: the closing fsync still writes and
//! reports everything (a writeback error stays recorded for it).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd as _;

/// Bytes between two writeback calls.
const STEP: u64 = 32 << 20;

/// A [`File`] written front to back, handed to the disk and dropped from the page cache as it
/// grows (see the module documentation). The caller still fsyncs it at the end.
pub struct DropBehind {
    file: File,
    step: u64,
    /// Bytes written so far.
    written: u64,
    /// Where the bytes not yet handed to writeback start.
    submitted: u64,
    /// Where the bytes still in the page cache start.
    dropped: u64,
}

impl DropBehind {
    pub fn new(file: File) -> Self {
        Self::with_step(file, STEP)
    }

    fn with_step(file: File, step: u64) -> Self {
        DropBehind {
            file,
            step,
            written: 0,
            submitted: 0,
            dropped: 0,
        }
    }

    /// The file, for its closing fsync.
    pub fn into_inner(self) -> File {
        self.file
    }

    /// Hands `[submitted, written)` to writeback, then waits for and drops the step before it.
    fn advance(&mut self) {
        let fd = self.file.as_raw_fd();
        // SAFETY (both blocks): a valid open descriptor and a range inside the file; the calls
        // only schedule or wait for I/O and drop clean pages. Their results are advisory (see
        // the module documentation).
        unsafe {
            libc::sync_file_range(
                fd,
                self.submitted as libc::off64_t,
                (self.written - self.submitted) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
        if self.submitted > self.dropped {
            let (start, len) = (
                self.dropped as libc::off64_t,
                (self.submitted - self.dropped) as libc::off64_t,
            );
            unsafe {
                libc::sync_file_range(
                    fd,
                    start,
                    len,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                );
                libc::posix_fadvise(fd, start, len, libc::POSIX_FADV_DONTNEED);
            }
            self.dropped = self.submitted;
        }
        self.submitted = self.written;
    }
}

impl Write for DropBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.submitted >= self.step {
            self.advance();
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Pages of the file at `path` in the page cache, by `mincore` over a read-only mapping.
    fn resident_pages(path: &std::path::Path) -> usize {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let pages = len.div_ceil(page);
        // SAFETY: a shared read-only mapping of an open file, unmapped before returning;
        // mincore writes one byte per page into a vector of that many bytes.
        unsafe {
            let addr = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(addr, libc::MAP_FAILED, "mmap");
            let mut vec = vec![0u8; pages];
            let r = libc::mincore(addr, len, vec.as_mut_ptr());
            libc::munmap(addr, len);
            assert_eq!(r, 0, "mincore");
            vec.iter().filter(|&&b| b & 1 == 1).count()
        }
    }

    #[test]
    fn writes_every_byte_and_keeps_at_most_two_steps_cached() {
        // Beside the sources, not in /tmp: a tmpfs keeps its pages whatever it is told.
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let path = dir.path().join("out");
        const STEP: usize = 1 << 20;
        let mut w = DropBehind::with_step(File::create(&path).unwrap(), STEP as u64);
        // Sixteen steps and a bit, in writes of an odd size so steps end mid-write.
        let total = 16 * STEP + 12_345;
        let pattern: Vec<u8> = (0..65_521u32).map(|i| (i % 251) as u8).collect();
        let mut left = total;
        while left > 0 {
            let n = left.min(pattern.len());
            w.write_all(&pattern[..n]).unwrap();
            left -= n;
        }
        w.flush().unwrap();
        let file = w.into_inner();
        file.sync_all().unwrap();
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let resident = resident_pages(&path) * page;
        // The last step handed over, and the one being filled, stay.
        assert!(
            resident <= 2 * STEP + pattern.len() + page,
            "{resident} bytes of {total} still cached"
        );
        assert!(
            resident > 0,
            "mincore sees the pages the file still has cached"
        );

        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        assert_eq!(back.len(), total);
        let mut at = 0;
        while at < total {
            let n = (total - at).min(pattern.len());
            assert!(back[at..at + n] == pattern[..n], "bytes differ near {at}");
            at += n;
        }
    }
}
