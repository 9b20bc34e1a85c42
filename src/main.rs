//! The `airlock` command: parse, run, print the error chain, exit.

use clap::Parser;

fn main() {
    let cli = airlock::cli::Cli::parse();
    if let Err(e) = airlock::interrupt::install() {
        eprintln!("warning: cannot handle SIGINT/SIGTERM: {e}");
    }
    let code = match airlock::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            airlock::app::print_error(&e);
            airlock::app::exit_code(&e)
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
