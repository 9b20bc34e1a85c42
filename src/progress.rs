//! Progress reporting: library code calls a [`Reporter`]; the command layer draws it
//! (indicatif bars on a terminal, a plain line every few seconds otherwise, nothing with
//! `--quiet`). Each [`Phase`] has its own total and its own count, so phases that overlap
//! (pack downloads while it writes) never add up into one bar. [`Tally`] keeps those counts,
//! for a drawing reporter and for tests.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A phase of work, drawn as its own bar against its own total of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Phase {
    /// pack: each image looked up at its places (no byte total).
    Resolve,
    /// pack: the blobs fetched, downloaded or found in the cache.
    Download,
    /// pack: the blobs written into the bundle.
    Write,
    /// verify: the blobs hashed.
    Verify,
    /// unpack: the blobs pushed, uploaded, mounted or found in the registry.
    Push,
    /// unpack: the manifests pushed (no byte total).
    Manifests,
}

impl Phase {
    /// The word an operator sees on the bar.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Download => "download",
            Phase::Write => "write",
            Phase::Verify => "verify",
            Phase::Push => "push",
            Phase::Manifests => "manifests",
        }
    }
}

/// Receives progress from long operations. Implementations must be cheap and thread-safe.
pub trait Reporter: Sync {
    /// `phase` starts, with the bytes it will move (0 if unknown). Phases may overlap.
    fn phase(&self, phase: Phase, total_bytes: u64);
    /// Bytes moved in `phase`.
    fn advance(&self, phase: Phase, bytes: u64);
    /// What `phase` works on now, for its line (`rancher/k8s, rancher/etcd +3`); `None`
    /// when nothing.
    fn working_on(&self, _phase: Phase, _what: Option<&str>) {}
    /// One item (image, blob) finished; `what` is a short line.
    fn item(&self, what: &str);
    /// Something the operator should know that is not an error.
    fn warn(&self, what: &str);
    /// `phase` ended.
    fn finish_phase(&self, phase: Phase);
    /// A request has gone unanswered for a while: `Some("waiting 12 s for GET https://..")`,
    /// repeated every few seconds while it lasts; `None` once nothing waits any more.
    fn waiting(&self, _what: Option<&str>) {}
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {
    fn phase(&self, _: Phase, _: u64) {}
    fn advance(&self, _: Phase, _: u64) {}
    fn item(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn finish_phase(&self, _: Phase) {}
}

/// What one phase has done: its total, the bytes reported against it, and whether it ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub done: u64,
    pub finished: bool,
}

/// Per-phase counts, kept apart from any drawing: a bar shows exactly these, and tests check
/// them (each phase against its own total).
#[derive(Debug, Default)]
pub struct Tally {
    phases: Mutex<BTreeMap<Phase, Counts>>,
}

impl Tally {
    /// The counts of `phase`, if it started.
    pub fn get(&self, phase: Phase) -> Option<Counts> {
        self.phases.lock().unwrap().get(&phase).copied()
    }

    /// Every phase that started, in [`Phase`] order.
    pub fn all(&self) -> Vec<(Phase, Counts)> {
        self.phases
            .lock()
            .unwrap()
            .iter()
            .map(|(p, c)| (*p, *c))
            .collect()
    }
}

impl Reporter for Tally {
    fn phase(&self, phase: Phase, total_bytes: u64) {
        self.phases.lock().unwrap().insert(
            phase,
            Counts {
                total: total_bytes,
                ..Counts::default()
            },
        );
    }
    fn advance(&self, phase: Phase, bytes: u64) {
        let mut phases = self.phases.lock().unwrap();
        let c = phases.entry(phase).or_default();
        c.done = c.done.saturating_add(bytes);
    }
    fn item(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn finish_phase(&self, phase: Phase) {
        self.phases
            .lock()
            .unwrap()
            .entry(phase)
            .or_default()
            .finished = true;
    }
}
