//! Progress reporting: library code calls a [`Reporter`]; the command layer draws it
//! (indicatif on a terminal, plain lines otherwise, nothing with `--quiet`).

/// Receives progress from long operations. Implementations must be cheap and thread-safe.
pub trait Reporter: Sync {
    /// A new phase starts, with the bytes it will move (0 if unknown).
    fn phase(&self, name: &str, total_bytes: u64);
    /// Bytes moved in the current phase.
    fn advance(&self, bytes: u64);
    /// One item (image, blob) finished; `what` is a short line.
    fn item(&self, what: &str);
    /// Something the operator should know that is not an error.
    fn warn(&self, what: &str);
    /// The phase ended.
    fn finish_phase(&self);
    /// A request has gone unanswered for a while: `Some("waiting 12 s for GET https://..")`,
    /// repeated every few seconds while it lasts; `None` once nothing waits any more.
    fn waiting(&self, _what: Option<&str>) {}
}

/// Reports nothing.
pub struct Silent;

impl Reporter for Silent {
    fn phase(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn item(&self, _: &str) {}
    fn warn(&self, _: &str) {}
    fn finish_phase(&self) {}
}

/// `1.5 MB`-style sizes (decimal units, as registries and `df -H` count).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn human() {
        assert_eq!(super::human_bytes(999), "999 B");
        assert_eq!(super::human_bytes(1_500_000), "1.5 MB");
    }
}
