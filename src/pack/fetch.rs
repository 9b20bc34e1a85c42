//! Fetching blobs into the cache: workers take blobs strictly in the order the bundle is
//! written, and post each outcome on a [`Board`] the writer waits on.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use super::Wanted;
use crate::cache::{Cache, CacheError, Cached};
use crate::digest::Digest;
use crate::progress::Reporter;
use crate::registry::{Client, RegistryError};

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

/// Fetches `order` with `jobs` workers taking blobs strictly in order; every outcome goes on
/// the board. After `abort`, the blobs not started are marked as not fetched.
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
) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..jobs.min(order.len()).max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(w) = order.get(i) else { break };
                if abort.load(Ordering::SeqCst) || crate::interrupt::received().is_some() {
                    board.set(&w.blob.digest, Err("not fetched: the pack stopped".into()));
                    continue;
                }
                // A panic must still be posted: the writer may be waiting for this blob.
                let fetched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    fetch_blob(client, cache, w, reporter)
                }))
                .unwrap_or_else(|_| Err("internal error while fetching (a bug in airlock)".into()));
                let r = match fetched {
                    Ok(FetchOutcome::Cached) => {
                        stats.from_cache.fetch_add(1, Ordering::Relaxed);
                        reporter.advance(w.blob.size);
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
        return Ok(FetchOutcome::Cached);
    }
    let attempts = client.options().retry.attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = (|| -> Result<u64, Box<dyn std::error::Error + Send + Sync>> {
            let stream = client.get_blob(&w.registry, &w.repository, &b.digest)?;
            if let Some(len) = stream.content_length {
                if len != b.size {
                    return Err(format!(
                        "the registry announces {len} bytes, the manifest says {}",
                        b.size
                    )
                    .into());
                }
            }
            let mut counting = Counting {
                inner: stream.reader,
                reporter,
            };
            Ok(cache.insert(&b.digest, b.size, &mut counting)?)
        })();
        match result {
            Ok(_) => return Ok(FetchOutcome::Downloaded),
            Err(e) => {
                // A digest mismatch will not fix itself; a broken connection may.
                let permanent = e.downcast_ref::<CacheError>().is_some_and(|c| {
                    matches!(c, CacheError::Verify { .. } | CacheError::Io { .. })
                }) || e
                    .downcast_ref::<RegistryError>()
                    .is_some_and(|r| !r.is_temporary());
                if permanent || attempt >= attempts || crate::interrupt::received().is_some() {
                    return Err(e);
                }
                client.stats().retries.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(client.options().retry.delay(attempt, None));
            }
        }
    }
}

/// Reports bytes as they pass.
pub(super) struct Counting<'a, R> {
    pub(super) inner: R,
    pub(super) reporter: &'a dyn Reporter,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // A signal ends in-flight downloads and writes at their next read.
        crate::interrupt::check().map_err(io::Error::other)?;
        let n = self.inner.read(buf)?;
        self.reporter.advance(n as u64);
        Ok(n)
    }
}
