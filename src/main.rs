//! The `airlock` command: parse, run, print the error chain, exit.

use clap::Parser;

fn main() {
    let cli = airlock::cli::Cli::parse();
    if let Err(e) = airlock::interrupt::install() {
        eprintln!("warning: cannot handle SIGINT/SIGTERM: {e}");
    }
    // Errors the operator can act on come back as `Err` and exit 1; a panic is a bug in
    // airlock and exits 2 (the default 101 would look like a crash of something else).
    let code = match std::panic::catch_unwind(|| airlock::app::run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(e)) => {
            airlock::app::print_error(&e);
            1
        }
        Err(_) => {
            eprintln!("error: airlock hit an internal error (a bug); please report it with the message above");
            2
        }
    };
    // A signal wins over whatever error the interruption caused.
    if let Some(sig) = airlock::interrupt::received() {
        eprintln!(
            "stopped: {}; run the same command again to resume",
            airlock::interrupt::Interrupted(sig)
        );
        std::process::exit(airlock::interrupt::exit_code(sig));
    }
    std::process::exit(code);
}
