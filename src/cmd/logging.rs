//! `-v` and `AIRLOCK_LOG`: what airlock does, line by line, on standard error (the `log`
//! facade, drawn by env_logger). `-v` logs each decision: an image or blob skipped because
//! the registry has it, a blob mounted, taken from the cache or uploaded, a place that did not
//! have an image, a retry and why. `-vv` adds every registry request: method, redacted URL,
//! status, bytes each way and time. `-vvv` adds the details below those. `AIRLOCK_LOG` takes
//! env_logger's filter syntax and wins over `-v` (`AIRLOCK_LOG=debug`,
//! `AIRLOCK_LOG=airlock::registry=debug`); other crates log only when it names them.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use airlock::escape;
use log::LevelFilter;

/// The environment variable with env_logger's filter syntax.
pub const ENV: &str = "AIRLOCK_LOG";

static ON: AtomicBool = AtomicBool::new(false);
static STARTED: OnceLock<Instant> = OnceLock::new();

/// The level of airlock's own log for `-v` given `verbose` times.
pub fn level(verbose: u8) -> LevelFilter {
    match verbose {
        0 => LevelFilter::Off,
        1 => LevelFilter::Info,
        2 => LevelFilter::Debug,
        _ => LevelFilter::Trace,
    }
}

/// Starts the log for `-v` given `verbose` times and `AIRLOCK_LOG`. Lines carry the seconds
/// since the start and the level, and are made safe for a terminal: they quote registry
/// answers and names from bundles.
pub fn init(verbose: u8) {
    let filters = std::env::var(ENV).ok().filter(|f| !f.trim().is_empty());
    let mut builder = env_logger::Builder::new();
    builder.filter_module("airlock", level(verbose));
    if let Some(f) = &filters {
        builder.parse_filters(f);
    }
    let started = *STARTED.get_or_init(Instant::now);
    builder.format(move |buf, record| {
        writeln!(
            buf,
            "[{:8.3}s {:5}] {}",
            started.elapsed().as_secs_f64(),
            record.level().as_str().to_ascii_lowercase(),
            escape::terminal(&record.args().to_string())
        )
    });
    let logger = builder.build();
    let max = logger.filter();
    // Fails only when a logger is set already, which only a second call would do.
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(max);
        ON.store(max != LevelFilter::Off, Ordering::Relaxed);
    }
}

/// Whether anything is logged: progress is then drawn as plain lines, which log lines do not
/// tear apart.
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}
