//! The stderr [`Reporter`]: one bar per phase on a terminal (indicatif), each against its own
//! total, cleared when its phase ends; a plain line every few seconds at most otherwise;
//! nothing but warnings with `--quiet` or `--progress never`. The counts behind every bar
//! live in a [`Tally`], apart from the drawing. Sizes and rates are in binary units
//! ([`airlock::units`]), as in every summary. Every line is made safe for a terminal
//! ([`escape::terminal`]): items and warnings can carry names from a bundle or a registry.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use airlock::escape;
use airlock::progress::{Counts, Phase, Reporter, Tally};
use airlock::units;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use super::cli::ProgressMode;

/// The shortest time between two plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How progress is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// indicatif bars; `forced` draws them even where standard error is not a terminal.
    Bars { forced: bool },
    /// A plain line every few seconds at most (a pipe, a file, a log on).
    Plain,
    /// Nothing but warnings.
    Off,
}

impl Draw {
    /// What `--quiet` and `--progress` ask for, on a terminal (`tty`) or not, with a log
    /// (`-v`) on or not: a log's lines would tear a bar apart, so `auto` draws plain lines.
    pub fn choose(quiet: bool, mode: ProgressMode, tty: bool, logging: bool) -> Draw {
        match mode {
            _ if quiet => Draw::Off,
            ProgressMode::Never => Draw::Off,
            ProgressMode::Always => Draw::Bars { forced: !tty },
            ProgressMode::Auto if tty && !logging => Draw::Bars { forced: false },
            ProgressMode::Auto => Draw::Plain,
        }
    }
}

/// Draws progress on stderr.
pub struct Stderr {
    draw: Draw,
    tally: Tally,
    multi: Option<MultiProgress>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    bars: BTreeMap<Phase, ProgressBar>,
    started: BTreeMap<Phase, Instant>,
    /// What each phase works on now ([`Reporter::working_on`]).
    working_on: BTreeMap<Phase, String>,
    /// What a request waits for ([`Reporter::waiting`]).
    waiting: Option<String>,
    last_line: Option<Instant>,
}

impl Stderr {
    /// A reporter for `--quiet` and `--progress`.
    pub fn new(quiet: bool, mode: ProgressMode) -> Stderr {
        let tty = std::io::stderr().is_terminal();
        Stderr::with(Draw::choose(quiet, mode, tty, super::logging::enabled()))
    }

    /// A reporter that draws as `draw` says.
    pub fn with(draw: Draw) -> Stderr {
        let multi = match draw {
            Draw::Bars { forced: false } => Some(MultiProgress::with_draw_target(
                ProgressDrawTarget::stderr_with_hz(10),
            )),
            // console's Term is drawn to whether or not it is a terminal.
            Draw::Bars { forced: true } => Some(MultiProgress::with_draw_target(
                ProgressDrawTarget::term_like_with_hz(Box::new(console::Term::stderr()), 10),
            )),
            Draw::Plain | Draw::Off => None,
        };
        Stderr {
            draw,
            tally: Tally::default(),
            multi,
            state: Mutex::new(State::default()),
        }
    }

    /// The counts behind the bars.
    #[cfg(test)]
    pub fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Prints a line above the bars (or plainly without them).
    fn line(&self, text: &str) {
        match &self.multi {
            Some(m) => m.suspend(|| super::err(text)),
            None => super::err(text),
        }
    }

    /// The message beside `phase`'s bar: what it works on, and for the first bar what a
    /// request waits for.
    fn message(st: &State, phase: Phase) -> String {
        let mut msg = st.working_on.get(&phase).cloned().unwrap_or_default();
        if st.bars.keys().next() == Some(&phase) {
            if let Some(w) = &st.waiting {
                if !msg.is_empty() {
                    msg.push_str("; ");
                }
                msg.push_str(w);
            }
        }
        escape::terminal(&msg).into_owned()
    }

    fn refresh(st: &State) {
        for (p, bar) in &st.bars {
            bar.set_message(Stderr::message(st, *p));
        }
    }

    /// The plain line of every phase under way, at most every [`PLAIN_EVERY`].
    fn plain_line(&self, st: &mut State) {
        let now = Instant::now();
        if st.last_line.is_some_and(|t| now - t < PLAIN_EVERY) {
            return;
        }
        let parts: Vec<String> = self
            .tally
            .all()
            .into_iter()
            .filter(|(_, c)| !c.finished && c.total > 0)
            .map(|(p, c)| {
                let secs = st.started.get(&p).map_or(0.0, |t| (now - *t).as_secs_f64());
                let mut s = plain(p, c, secs);
                if let Some(w) = st.working_on.get(&p) {
                    let _ = write!(s, ", now {w}");
                }
                s
            })
            .collect();
        if parts.is_empty() {
            return;
        }
        st.last_line = Some(now);
        super::err(&parts.join("; "));
    }
}

/// `download: 1.2 GiB of 2.9 GiB (30.0 MiB/s, about 1 min 00 s left)` after `secs` seconds.
fn plain(phase: Phase, c: Counts, secs: f64) -> String {
    let rate = if secs > 0.0 {
        c.done as f64 / secs
    } else {
        0.0
    };
    let left = if rate > 0.0 && c.total > c.done {
        format!(
            ", about {} left",
            units::duration(((c.total - c.done) as f64 / rate) as u64)
        )
    } else {
        String::new()
    };
    format!(
        "{}: {} of {} ({}{left})",
        phase.name(),
        units::bytes(c.done),
        units::bytes(c.total),
        units::rate(rate)
    )
}

/// A bar in bytes, with the units of the summaries, and what it works on: on the same line
/// (a request waited for), or below it for the push (the images in flight), where 80
/// columns would leave too little room beside it.
fn bytes_style(below: bool) -> ProgressStyle {
    let template = if below {
        "{prefix:9} [{bar:25}] {done} of {whole}  {speed}  eta {left}\n          {wide_msg}"
    } else {
        "{prefix:9} [{bar:25}] {done} of {whole}  {speed}  eta {left}  {wide_msg}"
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("done", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&units::bytes(s.pos()));
        })
        .with_key("whole", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&units::bytes(s.len().unwrap_or(0)));
        })
        .with_key("speed", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&units::rate(s.per_sec()));
        })
        .with_key("left", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            // Nothing moved yet: no estimate.
            let _ = match s.pos() {
                0 => w.write_str("?"),
                _ => w.write_str(&units::duration(s.eta().as_secs())),
            };
        })
        .progress_chars("=> ")
}

/// A phase without a byte total: a spinner and what it works on.
fn spinner_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix:9} {spinner} {wide_msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

impl Reporter for Stderr {
    fn phase(&self, phase: Phase, total_bytes: u64) {
        self.tally.phase(phase, total_bytes);
        let mut st = self.state.lock().unwrap();
        let now = Instant::now();
        st.started.insert(phase, now);
        // The first plain line comes a few seconds in, when a rate means something.
        st.last_line.get_or_insert(now);
        st.working_on.remove(&phase);
        match (&self.multi, self.draw) {
            (Some(m), _) => {
                let bar = if total_bytes > 0 {
                    ProgressBar::new(total_bytes).with_style(bytes_style(phase == Phase::Push))
                } else {
                    let b = ProgressBar::new_spinner().with_style(spinner_style());
                    b.enable_steady_tick(Duration::from_millis(120));
                    b
                };
                bar.set_prefix(phase.name());
                if let Some(old) = st.bars.insert(phase, m.add(bar)) {
                    old.finish_and_clear();
                    m.remove(&old);
                }
                Stderr::refresh(&st);
            }
            (None, Draw::Plain) if total_bytes > 0 => {
                super::err(&format!("{}: {}", phase.name(), units::bytes(total_bytes)));
            }
            _ => {}
        }
    }

    fn advance(&self, phase: Phase, bytes: u64) {
        self.tally.advance(phase, bytes);
        match self.draw {
            Draw::Bars { .. } => {
                if let Some(b) = self.state.lock().unwrap().bars.get(&phase) {
                    b.inc(bytes);
                }
            }
            Draw::Plain => self.plain_line(&mut self.state.lock().unwrap()),
            Draw::Off => {}
        }
    }

    fn working_on(&self, phase: Phase, what: Option<&str>) {
        if self.draw == Draw::Off {
            return;
        }
        let mut st = self.state.lock().unwrap();
        match what {
            Some(w) => st.working_on.insert(phase, w.to_string()),
            None => st.working_on.remove(&phase),
        };
        Stderr::refresh(&st);
    }

    fn item(&self, what: &str) {
        if self.draw != Draw::Off {
            self.line(what);
        }
    }

    fn warn(&self, what: &str) {
        self.line(&format!("warning: {what}"));
    }

    fn finish_phase(&self, phase: Phase) {
        self.tally.finish_phase(phase);
        let mut st = self.state.lock().unwrap();
        st.working_on.remove(&phase);
        if let Some(bar) = st.bars.remove(&phase) {
            bar.finish_and_clear();
            if let Some(m) = &self.multi {
                m.remove(&bar);
            }
        }
        Stderr::refresh(&st);
    }

    fn waiting(&self, what: Option<&str>) {
        match self.draw {
            Draw::Off => {}
            Draw::Bars { .. } => {
                let mut st = self.state.lock().unwrap();
                st.waiting = what.map(str::to_string);
                Stderr::refresh(&st);
            }
            // The client repeats it every few seconds while the wait lasts.
            Draw::Plain => {
                if let Some(w) = what {
                    super::err(w);
                }
            }
        }
    }
}

impl Drop for Stderr {
    /// A run that ends early (an error, a signal) leaves no bar on the screen either.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        for bar in std::mem::take(&mut st.bars).into_values() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_drawn_as_asked() {
        use ProgressMode::*;
        let bars = Draw::Bars { forced: false };
        assert_eq!(Draw::choose(false, Auto, true, false), bars);
        assert_eq!(Draw::choose(false, Auto, false, false), Draw::Plain);
        assert_eq!(Draw::choose(false, Auto, true, true), Draw::Plain, "-v");
        assert_eq!(
            Draw::choose(false, Always, false, false),
            Draw::Bars { forced: true }
        );
        assert_eq!(Draw::choose(false, Never, true, false), Draw::Off);
        assert_eq!(Draw::choose(true, Always, true, false), Draw::Off);
    }

    /// Pack's two phases overlap: each bar counts its own bytes against its own total, and
    /// ends at it (issue 15: the write bar used to count downloads too and end at twice
    /// its total, the download bar never moved).
    #[test]
    fn overlapping_phases_each_reach_their_own_total() {
        for draw in [Draw::Off, Draw::Plain] {
            let r = Stderr::with(draw);
            r.phase(Phase::Download, 300);
            r.advance(Phase::Download, 100);
            r.phase(Phase::Write, 300);
            r.advance(Phase::Write, 50);
            r.advance(Phase::Download, 200);
            r.finish_phase(Phase::Download);
            r.advance(Phase::Write, 250);
            r.finish_phase(Phase::Write);
            for p in [Phase::Download, Phase::Write] {
                assert_eq!(
                    r.tally().get(p),
                    Some(Counts {
                        total: 300,
                        done: 300,
                        finished: true
                    }),
                    "{p:?}"
                );
            }
            assert!(r.state.lock().unwrap().bars.is_empty());
        }
    }

    #[test]
    fn a_plain_line_names_the_phase_its_bytes_rate_and_time_left() {
        let c = Counts {
            total: 3 << 30,
            done: 1 << 30,
            finished: false,
        };
        assert_eq!(
            plain(Phase::Download, c, 16.0),
            "download: 1.0 GiB of 3.0 GiB (64.0 MiB/s, about 32 s left)"
        );
    }
}
