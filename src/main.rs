//! The `airlock` command: parse, run, print the error chain, exit. The command layer, one
//! file per command, is in `cmd/`; the exit codes in `cmd/exit.rs`.

mod cmd;

use clap::Parser;

use cmd::exit;

fn main() {
    let cli = cmd::Cli::parse();
    let forced = |sig: airlock::interrupt::Interrupted, grace: std::time::Duration| {
        cmd::err(&format!(
            "stopped: {sig} (forced after {}s); run the same command again to resume",
            grace.as_secs()
        ));
    };
    if let Err(e) = airlock::interrupt::install(forced) {
        cmd::err(&format!("warning: cannot handle SIGINT/SIGTERM: {e}"));
    }
    // Errors the operator can act on come back as `Err`; a panic is a bug in airlock and
    // exits 70 (the default 101 would look like a crash of something else).
    let code = match std::panic::catch_unwind(|| cmd::run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            let code = exit::of_error(&e);
            cmd::print_error(&e, code == exit::USAGE);
            code
        }
        Err(_) => {
            cmd::err("error: airlock hit an internal error (a bug); please report it with the message above");
            exit::INTERNAL
        }
    };
    // A signal wins over whatever error the interruption caused.
    if let Some(sig) = airlock::interrupt::received() {
        cmd::err(&format!(
            "stopped: {}; run the same command again to resume",
            airlock::interrupt::Interrupted(sig)
        ));
        std::process::exit(airlock::interrupt::exit_code(sig));
    }
    std::process::exit(code);
}
