//! Fetching blobs into the cache: workers take blobs strictly in the order the bundle is
//! written, and post each outcome on a [`Board`] the writer waits on.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};

use super::Wanted;
use crate::cache::{Cache, CacheError, Cached};
use crate::digest::Digest;
use crate::progress::{Phase, Reporter, Silent};
use crate::registry::{Client, RegistryError};
use crate::retry::Again;

/// Download counters.
#[derive(Default)]
pub(super) struct FetchStats {
    pub(super) downloaded: AtomicU64,
    pub(super) from_cache: AtomicU64,
}

/// Where each blob's download stands, for the writer to wait on.
#[derive(Default)]
pub(super) struct Board {
    state: Mutex<BTreeMap<Digest, Result<(), String>>>,
    changed: Condvar,
}

impl Board {
    pub(super) fn set(&self, d: &Digest, r: Result<(), String>) {
        self.state.lock().unwrap().insert(d.clone(), r);
        self.changed.notify_all();
    }

    /// Blocks until `d` is done.
    pub(super) fn wait(&self, d: &Digest) -> Result<(), String> {
        let mut state = self.state.lock().unwrap();
        loop {
            if let Some(r) = state.get(d) {
                return r.clone();
            }
            state = self.changed.wait(state).unwrap();
        }
    }

    pub(super) fn failures(&self) -> BTreeMap<Digest, String> {
        self.state
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(d, r)| r.as_ref().err().map(|e| (d.clone(), e.clone())))
            .collect()
    }
}

/// Keeps downloads at most `limit` bytes ahead of the writer: blob `i` of the fetch order may
/// start once the blobs between the writer's position and it add up to `limit` or less. The
/// blob the writer waits for may always start, so the two cannot wait on each other.
pub(super) struct Window {
    limit: u64,
    /// `starts[i]`: bytes of the blobs before `i` in the fetch order.
    starts: Vec<u64>,
    index: BTreeMap<Digest, usize>,
    /// The writer's position in the fetch order; `usize::MAX` once released.
    at: Mutex<usize>,
    moved: Condvar,
}

impl Window {
    pub(super) fn new(order: &[&Wanted], limit: u64) -> Window {
        let mut starts = Vec::with_capacity(order.len());
        let mut sum = 0u64;
        for w in order {
            starts.push(sum);
            sum += w.blob.size;
        }
        Window {
            limit,
            starts,
            index: order
                .iter()
                .enumerate()
                .map(|(i, w)| (w.blob.digest.clone(), i))
                .collect(),
            at: Mutex::new(0),
            moved: Condvar::new(),
        }
    }

    /// The writer has reached blob `d` (it only moves forward).
    pub(super) fn reached(&self, d: &Digest) {
        if let Some(&i) = self.index.get(d) {
            let mut at = self.at.lock().unwrap();
            if i > *at {
                *at = i;
                self.moved.notify_all();
            }
        }
    }

    /// A guard that releases the window when dropped.
    pub(super) fn releaser(&self) -> Releaser<'_> {
        Releaser(self)
    }

    /// Lets every waiting download go (the writer stopped).
    pub(super) fn release(&self) {
        *self.at.lock().unwrap() = usize::MAX;
        self.moved.notify_all();
    }

    /// Blocks until blob `i` may start.
    fn enter(&self, i: usize) {
        let mut at = self.at.lock().unwrap();
        loop {
            if *at == usize::MAX || i <= *at || self.starts[i] - self.starts[*at] <= self.limit {
                return;
            }
            // A timeout, so a signal is noticed even if the writer never moves again.
            at = self
                .moved
                .wait_timeout(at, std::time::Duration::from_millis(200))
                .unwrap()
                .0;
            if crate::interrupt::received().is_some() {
                return;
            }
        }
    }
}

/// Releases its [`Window`] when dropped: the writer is done, whichever way it ended.
pub(super) struct Releaser<'a>(&'a Window);

impl Drop for Releaser<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

/// Fetches `order` with `jobs` workers taking blobs strictly in order; every outcome goes on
/// the board. After `abort`, the blobs not started are marked as not fetched. With a
/// `window`, no download starts too far ahead of the writer.
#[allow(clippy::too_many_arguments)]
pub(super) fn fetch_all(
    client: &Client,
    cache: &Cache,
    order: &[&Wanted],
    jobs: usize,
    reporter: &dyn Reporter,
    board: &Board,
    stats: &FetchStats,
    abort: &AtomicBool,
    window: Option<&Window>,
) {
    crate::work_queue::in_order(jobs, order, |i, w| {
        if let Some(win) = window {
            win.enter(i);
        }
        if abort.load(Ordering::SeqCst) || crate::interrupt::received().is_some() {
            board.set(&w.blob.digest, Err("not fetched: the pack stopped".into()));
            return;
        }
        // A panic must still be posted: the writer may be waiting for this blob.
        let fetched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            fetch_blob(client, cache, w, reporter)
        }))
        .unwrap_or_else(|_| Err("internal error while fetching (a bug in airlock)".into()));
        let r = match fetched {
            Ok(FetchOutcome::Cached) => {
                stats.from_cache.fetch_add(1, Ordering::Relaxed);
                reporter.advance(Phase::Download, w.blob.size);
                Ok(())
            }
            Ok(FetchOutcome::Downloaded) => {
                stats.downloaded.fetch_add(w.blob.size, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(crate::error_chain(e.as_ref())),
        };
        board.set(&w.blob.digest, r);
    });
}

pub(super) enum FetchOutcome {
    Cached,
    Downloaded,
}

/// Ensures one blob is in the cache, downloading it (with retries) if needed.
pub(super) fn fetch_blob(
    client: &Client,
    cache: &Cache,
    w: &Wanted,
    reporter: &dyn Reporter,
) -> Result<FetchOutcome, Box<dyn std::error::Error + Send + Sync>> {
    let b = &w.blob;
    if cache.check(&b.digest, b.size)? == Cached::Valid {
        log::info!("{} ({} B): in the cache, not downloaded", b.digest, b.size);
        return Ok(FetchOutcome::Cached);
    }
    // Bytes already shown for this blob: a retry shows only what goes beyond them, so the
    // progress never counts a byte twice ("2.7 kB of 1.5 kB").
    let mut shown = 0u64;
    let attempt = || -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
        let stream = client.get_blob(&w.registry, &w.repository, &b.digest)?;
        if let Some(len) = stream.content_length {
            if len != b.size {
                // A retry cannot make the registry agree with the manifest.
                return Err(Box::new(RegistryError::BlobSize {
                    digest: b.digest.clone(),
                    announced: len,
                    expected: b.size,
                }));
            }
        }
        let mut body = Beyond {
            inner: Counting {
                inner: stream.reader,
                reporter: &Silent,
                phase: Phase::Download,
            },
            reporter,
            read: 0,
            shown,
        };
        let n = cache.insert(&b.digest, b.size, &mut body);
        shown = body.shown;
        Ok(n?)
    };
    // A digest mismatch will not fix itself; a broken connection may. A registry error was
    // already retried where the request was sent (transport), so it is final here: only a
    // body that broke off is fetched again.
    let final_error = |e: &(dyn std::error::Error + 'static)| {
        e.downcast_ref::<CacheError>()
            .is_some_and(|c| matches!(c, CacheError::Verify { .. } | CacheError::Io { .. }))
            || e.downcast_ref::<RegistryError>().is_some()
    };
    let policy = &client.options().retry;
    policy
        .budget()
        .run(
            policy,
            attempt,
            |r| match r {
                Err(e) if !final_error(e.as_ref()) => Again::Yes,
                _ => Again::No,
            },
            |r| {
                client.stats().retries.fetch_add(1, Ordering::Relaxed);
                match r {
                    Err(e) => format!(
                        "downloading {}: {}",
                        b.digest,
                        crate::error_chain(e.as_ref())
                    ),
                    Ok(_) => format!("downloading {}", b.digest),
                }
            },
        )
        .map(|_| FetchOutcome::Downloaded)
}

/// Reports the bytes of one attempt that go beyond what earlier attempts reported.
struct Beyond<'a, R> {
    inner: R,
    reporter: &'a dyn Reporter,
    /// Bytes read in this attempt.
    read: u64,
    /// Bytes reported so far, over every attempt.
    shown: u64,
}

impl<R: Read> Read for Beyond<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.shown {
            self.reporter
                .advance(Phase::Download, self.read - self.shown);
            self.shown = self.read;
        }
        Ok(n)
    }
}

/// Reports bytes as they pass, in `phase`.
pub(super) struct Counting<'a, R> {
    pub(super) inner: R,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) phase: Phase,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A signal ends in-flight downloads and writes at their next read.
        crate::interrupt::check().map_err(io::Error::other)?;
        let n = self.inner.read(buf)?;
        self.reporter.advance(self.phase, n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::BlobRef;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    fn wanted(n: u8, size: u64) -> Wanted {
        Wanted {
            blob: BlobRef {
                digest: Digest::of(&[n]),
                size,
                media_type: String::new(),
            },
            is_config: false,
            registry: "r".into(),
            repository: "x".into(),
            images: Default::default(),
        }
    }

    /// Runs `enter(i)` on a thread and reports whether it returned within 100 ms.
    fn enters_soon(w: &Window, i: usize) -> bool {
        let done = AtomicUsize::new(0);
        std::thread::scope(|s| {
            s.spawn(|| {
                w.enter(i);
                done.store(1, Ordering::SeqCst);
            });
            std::thread::sleep(Duration::from_millis(100));
            let soon = done.load(Ordering::SeqCst) == 1;
            // Let the thread finish either way.
            w.release();
            soon
        })
    }

    #[test]
    fn the_window_holds_downloads_until_the_writer_comes_near() {
        let blobs: Vec<Wanted> = (0..5).map(|n| wanted(n, 100)).collect();
        let order: Vec<&Wanted> = blobs.iter().collect();
        // 150 bytes: the writer's blob and the next one may download.
        let w = Window::new(&order, 150);
        assert!(enters_soon(&w, 1), "the next blob is within the window");
        let w = Window::new(&order, 150);
        assert!(!enters_soon(&w, 2), "200 bytes ahead is outside");
        let w = Window::new(&order, 150);
        w.reached(&blobs[1].blob.digest);
        assert!(enters_soon(&w, 2), "the writer moved to blob 1");
        let w = Window::new(&order, 150);
        w.reached(&blobs[4].blob.digest);
        assert!(enters_soon(&w, 3), "behind the writer");
        // A blob larger than the window may start once the writer waits for it.
        let big: Vec<Wanted> = vec![wanted(0, 10), wanted(1, 1000)];
        let order: Vec<&Wanted> = big.iter().collect();
        let w = Window::new(&order, 150);
        assert!(enters_soon(&w, 1), "starts[1] - starts[0] = 10");
        let w = Window::new(&order, 5);
        assert!(!enters_soon(&w, 1));
        let w = Window::new(&order, 5);
        w.reached(&big[1].blob.digest);
        assert!(enters_soon(&w, 1), "the writer waits for it");
    }

    #[test]
    fn a_finished_writer_releases_downloads_it_never_reached() {
        // A blob the writer never asks for (one whose digest is also a manifest, say) must
        // not keep its download parked once the writer is done, however it ended.
        let blobs: Vec<Wanted> = (0..3).map(|n| wanted(n, 100)).collect();
        let order: Vec<&Wanted> = blobs.iter().collect();
        let w = Window::new(&order, 0);
        std::thread::scope(|s| {
            let parked = s.spawn(|| w.enter(2));
            std::thread::sleep(Duration::from_millis(50));
            assert!(!parked.is_finished(), "blob 2 waits for the writer");
            drop(w.releaser());
            parked.join().unwrap();
        });
    }
}
