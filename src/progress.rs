//! Progress reporting: library code calls a [`Reporter`]; the CLI draws it (indicatif on a
//! terminal, plain lines otherwise, nothing with `--quiet`).

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Instant;

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

/// Draws progress on stderr: a bar on a terminal, plain lines otherwise.
pub struct Stderr {
    bar: Mutex<Option<indicatif::ProgressBar>>,
    tty: bool,
    quiet: bool,
    plain: Mutex<PlainState>,
}

struct PlainState {
    name: String,
    total: u64,
    done: u64,
    started: Instant,
    last_print: Instant,
}

impl Stderr {
    pub fn new(quiet: bool) -> Stderr {
        Stderr {
            bar: Mutex::new(None),
            tty: std::io::stderr().is_terminal(),
            quiet,
            plain: Mutex::new(PlainState {
                name: String::new(),
                total: 0,
                done: 0,
                started: Instant::now(),
                last_print: Instant::now(),
            }),
        }
    }
}

impl Reporter for Stderr {
    fn phase(&self, name: &str, total_bytes: u64) {
        if self.quiet {
            return;
        }
        if self.tty {
            let bar = indicatif::ProgressBar::new(total_bytes);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(name.to_string());
            self.plain.lock().unwrap().name = name.to_string();
            *self.bar.lock().unwrap() = Some(bar);
        } else {
            let mut p = self.plain.lock().unwrap();
            *p = PlainState {
                name: name.to_string(),
                total: total_bytes,
                done: 0,
                started: Instant::now(),
                last_print: Instant::now(),
            };
            if total_bytes > 0 {
                eprintln!("{name}: {}", human_bytes(total_bytes));
            }
        }
    }

    fn advance(&self, bytes: u64) {
        if self.quiet {
            return;
        }
        if let Some(b) = self.bar.lock().unwrap().as_ref() {
            b.inc(bytes);
            return;
        }
        let mut p = self.plain.lock().unwrap();
        p.done += bytes;
        if p.last_print.elapsed().as_secs() >= 5 {
            p.last_print = Instant::now();
            let secs = p.started.elapsed().as_secs_f64().max(0.001);
            let rate = p.done as f64 / secs;
            let eta = if rate > 0.0 && p.total > p.done {
                format!(", about {:.0}s left", (p.total - p.done) as f64 / rate)
            } else {
                String::new()
            };
            eprintln!(
                "{}: {} of {} ({}/s{eta})",
                p.name,
                human_bytes(p.done),
                human_bytes(p.total),
                human_bytes(rate as u64)
            );
        }
    }

    fn item(&self, what: &str) {
        if self.quiet {
            return;
        }
        match self.bar.lock().unwrap().as_ref() {
            Some(b) => b.println(what),
            None => eprintln!("{what}"),
        }
    }

    fn warn(&self, what: &str) {
        match self.bar.lock().unwrap().as_ref() {
            Some(b) => b.println(format!("warning: {what}")),
            None => eprintln!("warning: {what}"),
        }
    }

    fn finish_phase(&self) {
        if let Some(b) = self.bar.lock().unwrap().take() {
            b.finish_and_clear();
        }
    }

    fn waiting(&self, what: Option<&str>) {
        if self.quiet {
            return;
        }
        let p = self.plain.lock().unwrap();
        match self.bar.lock().unwrap().as_ref() {
            Some(b) if self.tty => b.set_message(match what {
                Some(w) => format!("{} ({w})", p.name),
                None => p.name.clone(),
            }),
            _ => {
                if let Some(w) = what {
                    eprintln!("{w}");
                }
            }
        }
    }
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
