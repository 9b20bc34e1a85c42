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
//! A writeback error is returned by the `write` that waited for it: a waiting
//! `sync_file_range` reports the file's writeback error and clears it, so the closing fsync
//! would no longer see it. A file system that does not support the calls changes nothing (the
//! closing fsync writes everything), and dropping pages is only advice.

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

    /// Hands `[submitted, written)` to writeback, then waits for the step before it and drops
    /// it from the page cache.
    fn advance(&mut self) -> io::Result<()> {
        let fd = self.file.as_raw_fd();
        // SAFETY: a valid open descriptor and a range inside the file; the call only schedules
        // I/O.
        let r = unsafe {
            libc::sync_file_range(
                fd,
                self.submitted as libc::off64_t,
                (self.written - self.submitted) as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            )
        };
        check(r)?;
        if self.submitted > self.dropped {
            // From the page holding `dropped`: posix_fadvise drops whole pages only, and the
            // page a step ends in is complete (and written back) only after the next step.
            let start = self.dropped - self.dropped % page_size();
            let len = self.submitted - start;
            // SAFETY: as above; the call waits for the range's writeback.
            let r = unsafe {
                libc::sync_file_range(
                    fd,
                    start as libc::off64_t,
                    len as libc::off64_t,
                    libc::SYNC_FILE_RANGE_WAIT_BEFORE
                        | libc::SYNC_FILE_RANGE_WRITE
                        | libc::SYNC_FILE_RANGE_WAIT_AFTER,
                )
            };
            check(r)?;
            // Advice only: where `off_t` is 32 bits, a range past 2 GiB is simply kept.
            if let (Ok(start), Ok(len)) = (libc::off_t::try_from(start), libc::off_t::try_from(len))
            {
                // SAFETY: as above; the call drops clean pages of the range.
                unsafe { libc::posix_fadvise(fd, start, len, libc::POSIX_FADV_DONTNEED) };
            }
            self.dropped = self.submitted;
        }
        self.submitted = self.written;
        Ok(())
    }
}

/// The result of a `sync_file_range` call: its error, unless the file system does not support
/// the call (the closing fsync then does all the work).
fn check(r: libc::c_int) -> io::Result<()> {
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL | libc::ENOSYS | libc::ESPIPE | libc::EOPNOTSUPP) => Ok(()),
        _ => Err(e),
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf only reads a system constant.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(n).ok().filter(|&n| n > 0).unwrap_or(4096)
}

impl Write for DropBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.written - self.submitted >= self.step {
            self.advance()?;
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

    /// For each page of the file at `path`, whether it is in the page cache (`mincore` over a
    /// read-only mapping).
    fn cached_pages(path: &std::path::Path) -> Vec<bool> {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        let pages = len.div_ceil(page_size() as usize);
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
            vec.iter().map(|&b| b & 1 == 1).collect()
        }
    }

    #[test]
    fn writes_every_byte_and_keeps_only_the_last_two_steps_cached() {
        // Under target/, not in /tmp: a tmpfs keeps its pages whatever it is told.
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir_in(exe.parent().unwrap()).unwrap();
        let path = dir.path().join("out");
        const STEP: usize = 1 << 20;
        let mut w = DropBehind::with_step(File::create(&path).unwrap(), STEP as u64);
        // Sixteen steps and a bit, in writes of an odd size so steps end mid-page.
        let total = 16 * STEP + 12_345;
        let pattern: Vec<u8> = (0..65_521u32).map(|i| (i % 251) as u8).collect();
        let mut left = total;
        while left > 0 {
            let n = left.min(pattern.len());
            w.write_all(&pattern[..n]).unwrap();
            left -= n;
        }
        w.flush().unwrap();
        w.into_inner().sync_all().unwrap();

        // Everything before the last two steps (each up to a write longer than STEP) left the
        // page cache, every page of it, including those a step ended in.
        let page = page_size() as usize;
        let cached = cached_pages(&path);
        let kept_from = (total - 2 * (STEP + pattern.len())) / page;
        let stale: Vec<usize> = (0..kept_from).filter(|&i| cached[i]).collect();
        assert!(
            stale.is_empty(),
            "{} of the first {kept_from} pages are still cached (first: page {:?}); if every page \
             is, the file system under {} ignores POSIX_FADV_DONTNEED (tmpfs, ZFS)",
            stale.len(),
            stale.first(),
            dir.path().display()
        );
        assert!(
            cached[kept_from..].iter().any(|&c| c),
            "mincore sees the pages of the last steps, which stay cached"
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
    #[test]
    fn a_file_without_writeback_control_is_still_written() {
        // sync_file_range on a pipe fails with ESPIPE: not an error of the data, so every
        // write still succeeds and every byte arrives.
        let mut fds = [0; 2];
        // SAFETY: pipe(2) fills the two descriptors, each then owned by one File.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0, "pipe");
        let (r, w) = unsafe {
            use std::os::fd::FromRawFd as _;
            (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1]))
        };
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut r = r;
            r.read_to_end(&mut got).unwrap();
            got
        });
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let mut w = DropBehind::with_step(w, 4096);
        for chunk in data.chunks(10_000) {
            w.write_all(chunk).expect("writes to a pipe succeed");
        }
        drop(w);
        assert!(reader.join().unwrap() == data);
    }
}
