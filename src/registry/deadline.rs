//! Time bounds that a slow or hostile server cannot stretch: a minimum transfer rate for blob
//! bodies, and the record of requests still waiting for an answer (for the progress line).
//!
//! A per-read timeout alone never fires against a server that trickles one byte a second.
//! Small documents (manifests, tokens, `/v2/`, HEADs, error bodies) get a whole-request
//! deadline (ureq's global timeout, set per request by the transport); blob bodies, which may
//! rightly take an hour, must instead keep up a minimum rate: at least
//! [`MinRate::bytes`] in every [`MinRate::window`].

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The slowest transfer accepted for a blob body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MinRate {
    /// Bytes that must move in every window.
    pub bytes: u64,
    /// The window.
    pub window: Duration,
}

impl Default for MinRate {
    /// 32 KiB in every 30 s (about 1 KiB/s): far below any real link, far above a trickle.
    fn default() -> Self {
        MinRate {
            bytes: 32 * 1024,
            window: Duration::from_secs(30),
        }
    }
}

/// A transfer that fell below the minimum rate.
#[derive(Debug, thiserror::Error)]
#[error("{what} moved only {moved} bytes in {secs} s (at least {min} bytes are required in every {secs} s; see --min-rate)", secs = .window.as_secs())]
pub struct TooSlow {
    pub what: String,
    pub moved: u64,
    pub min: u64,
    pub window: Duration,
}

/// A reader that fails once a window passes with fewer than the minimum bytes.
pub(crate) struct RateGuard<R> {
    inner: R,
    rate: MinRate,
    what: String,
    window_start: Instant,
    moved: u64,
}

impl<R> RateGuard<R> {
    /// `what` names the transfer in the error (`GET http://host/v2/x/blobs/sha256:..`).
    pub(crate) fn new(inner: R, rate: MinRate, what: String) -> RateGuard<R> {
        RateGuard {
            inner,
            rate,
            what,
            window_start: Instant::now(),
            moved: 0,
        }
    }

    fn account(&mut self, n: usize) -> io::Result<()> {
        self.moved += n as u64;
        let elapsed = self.window_start.elapsed();
        if elapsed >= self.rate.window {
            if self.moved < self.rate.bytes {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    TooSlow {
                        what: self.what.clone(),
                        moved: self.moved,
                        min: self.rate.bytes,
                        window: self.rate.window,
                    },
                ));
            }
            self.window_start = Instant::now();
            self.moved = 0;
        }
        Ok(())
    }
}

impl<R: Read> Read for RateGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        // The end of the body ends the guard: a last short window is no fault.
        if n > 0 || buf.is_empty() {
            self.account(n)?;
        }
        Ok(n)
    }
}

/// Requests sent and not yet answered, with when they started: what the progress line
/// names when a wait grows long.
#[derive(Debug, Default)]
pub(crate) struct Waits {
    next: AtomicU64,
    open: Mutex<HashMap<u64, (Instant, String)>>,
}

impl Waits {
    /// Records a request until the returned guard drops.
    pub(crate) fn begin(&self, what: String) -> WaitGuard<'_> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.open.lock().unwrap().insert(id, (Instant::now(), what));
        WaitGuard { waits: self, id }
    }

    /// The request that has waited longest, if it waited at least `longer_than`.
    pub(crate) fn longest(&self, longer_than: Duration) -> Option<(Duration, String)> {
        let open = self.open.lock().unwrap();
        open.values()
            .min_by_key(|(t, _)| *t)
            .map(|(t, w)| (t.elapsed(), w.clone()))
            .filter(|(d, _)| *d >= longer_than)
    }
}

/// Removes its request from [`Waits`] when dropped.
pub(crate) struct WaitGuard<'a> {
    waits: &'a Waits,
    id: u64,
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.waits.open.lock().unwrap().remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Yields one byte per read, sleeping `pause` before each.
    struct Trickle(Duration, usize);

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 == 0 || buf.is_empty() {
                return Ok(0);
            }
            std::thread::sleep(self.0);
            self.1 -= 1;
            buf[0] = b'x';
            Ok(1)
        }
    }

    #[test]
    fn a_trickle_fails_once_a_window_passes() {
        let rate = MinRate {
            bytes: 100,
            window: Duration::from_millis(50),
        };
        let mut g = RateGuard::new(
            Trickle(Duration::from_millis(10), 1000),
            rate,
            "GET x".into(),
        );
        let started = Instant::now();
        let e = io::copy(&mut g, &mut io::sink()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("GET x moved only"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(1));
        // A fast source passes, and so does a short body that ends inside a window.
        let mut g = RateGuard::new(io::repeat(1).take(1 << 20), rate, "x".into());
        assert_eq!(io::copy(&mut g, &mut io::sink()).unwrap(), 1 << 20);
        let mut g = RateGuard::new(Trickle(Duration::from_millis(1), 3), rate, "x".into());
        assert_eq!(io::copy(&mut g, &mut io::sink()).unwrap(), 3);
    }

    #[test]
    fn waits_name_the_oldest_request() {
        let w = Waits::default();
        assert!(w.longest(Duration::ZERO).is_none());
        let a = w.begin("GET a".into());
        std::thread::sleep(Duration::from_millis(5));
        let _b = w.begin("GET b".into());
        assert_eq!(w.longest(Duration::ZERO).unwrap().1, "GET a");
        assert!(w.longest(Duration::from_secs(60)).is_none());
        drop(a);
        assert_eq!(w.longest(Duration::ZERO).unwrap().1, "GET b");
    }
}
