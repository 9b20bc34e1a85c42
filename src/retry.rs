//! Trying again: one policy ([`Retry`]), one budget of attempts ([`Budget`]) and one loop
//! ([`Budget::run`]) for every operation that may fail for a moment: a registry request
//! (transport), a blob download (`pack`) and a blob upload (`unpack`). Each caller says which
//! outcomes are worth another attempt; the loop does the counting, the backoff and the stop
//! on SIGINT/SIGTERM, so an interrupted run never sleeps through a backoff or starts another
//! attempt.

use std::time::Duration;

/// Retry policy for one operation.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base: Duration,
    /// Upper bound for one delay (also caps `Retry-After`).
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// The delay before retry number `n` (1-based), with up to 50 % random jitter so parallel
    /// workers do not retry in lock step; `retry_after` (seconds, from the server) wins, up to
    /// [`Retry::max`].
    pub fn delay(&self, n: u32, retry_after: Option<u64>) -> Duration {
        if let Some(s) = retry_after {
            return Duration::from_secs(s).min(self.max);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16));
        let d = exp.min(self.max);
        let jitter = (jitter_seed() % 1000) as u32; // 0..999 per mille
        d + d.mul_f64(f64::from(jitter) / 2000.0)
    }

    /// A budget of [`Retry::attempts`] attempts.
    pub fn budget(&self) -> Budget {
        Budget::new(self.attempts)
    }
}

fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

/// Whether an outcome is worth another attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Again {
    /// Final: return it.
    No,
    /// Try again after the policy's backoff.
    Yes,
    /// Try again after this many seconds (a `Retry-After`), at most [`Retry::max`].
    After(u64),
}

/// Attempts left for one operation; shared by the steps of one request (its redirect hops).
#[derive(Debug)]
pub struct Budget {
    attempts: u32,
    used: u32,
}

impl Budget {
    pub fn new(attempts: u32) -> Budget {
        Budget {
            attempts: attempts.max(1),
            used: 0,
        }
    }

    /// Retries taken so far.
    pub fn used(&self) -> u32 {
        self.used
    }

    /// Takes one retry; false when none is left or a signal arrived.
    pub fn take(&mut self) -> bool {
        if self.used + 1 >= self.attempts || crate::interrupt::received().is_some() {
            return false;
        }
        self.used += 1;
        true
    }

    /// Runs `attempt` until `again` calls its outcome final, the budget is spent or a signal
    /// arrives, waiting `policy`'s backoff in between (cut short by a signal). `retried` is told
    /// of every retry (for the statistics) and says what failed, for the log (`-v`).
    pub fn run<T>(
        &mut self,
        policy: &Retry,
        mut attempt: impl FnMut() -> T,
        mut again: impl FnMut(&T) -> Again,
        mut retried: impl FnMut(&T) -> String,
    ) -> T {
        loop {
            let outcome = attempt();
            let after = match again(&outcome) {
                Again::No => return outcome,
                Again::Yes => None,
                Again::After(s) => Some(s),
            };
            if !self.take() {
                if self.used > 0 {
                    log::info!("giving up after {} attempts", self.used + 1);
                }
                return outcome;
            }
            let what = retried(&outcome);
            let delay = policy.delay(self.used, after);
            log::info!(
                "retry {} of {} in {} ms{}: {what}",
                self.used,
                self.attempts - 1,
                delay.as_millis(),
                if after.is_some() {
                    " (Retry-After)"
                } else {
                    ""
                }
            );
            crate::interrupt::sleep(delay);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let r = Retry {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        assert!(r.delay(1, None) >= Duration::from_millis(100));
        assert!(r.delay(1, None) <= Duration::from_millis(150));
        assert!(r.delay(5, None) <= Duration::from_millis(450));
        assert_eq!(r.delay(1, Some(100)), Duration::from_millis(300));
    }

    #[test]
    fn a_budget_is_shared_and_bounded() {
        let mut b = Budget::new(3);
        assert!(b.take());
        assert!(b.take());
        assert!(!b.take(), "three attempts in all");
        assert!(!Budget::new(1).take());
    }

    #[test]
    fn run_stops_at_a_final_outcome_or_the_last_attempt() {
        let fast = Retry {
            attempts: 4,
            base: Duration::from_millis(1),
            max: Duration::from_millis(1),
        };
        let (mut calls, mut retries) = (0, 0);
        let r = fast.budget().run(
            &fast,
            || {
                calls += 1;
                calls
            },
            |n| if *n < 3 { Again::Yes } else { Again::No },
            |n| {
                retries += 1;
                format!("attempt {n}")
            },
        );
        assert_eq!((r, retries), (3, 2));
        let mut calls = 0;
        let r = fast.budget().run(
            &fast,
            || {
                calls += 1;
                calls
            },
            |_| Again::After(0),
            |_| String::new(),
        );
        assert_eq!(r, 4, "four attempts in all");
    }
}
