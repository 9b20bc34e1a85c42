//! The stderr [`Reporter`]: a bar per phase on a terminal (indicatif), plain lines otherwise,
//! nothing but warnings with `--quiet`. Every line is made safe for a terminal
//! ([`escape::terminal`]): items and warnings can carry names from a bundle or a registry.

use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::Instant;

use airlock::escape;
use airlock::progress::{human_bytes, Reporter};

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
            // Log lines (-v) would tear a bar apart: with them, progress is plain lines.
            tty: std::io::stderr().is_terminal() && !super::logging::enabled(),
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
            Some(b) => b.println(escape::terminal(what)),
            None => super::err(what),
        }
    }

    fn warn(&self, what: &str) {
        match self.bar.lock().unwrap().as_ref() {
            Some(b) => b.println(format!("warning: {}", escape::terminal(what))),
            None => super::err(&format!("warning: {what}")),
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
                Some(w) => format!("{} ({})", p.name, escape::terminal(w)),
                None => p.name.clone(),
            }),
            _ => {
                if let Some(w) = what {
                    super::err(w);
                }
            }
        }
    }
}
