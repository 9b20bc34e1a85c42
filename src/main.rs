//! The `airlock` command: parse, run, print the error chain, exit.

use clap::Parser;

fn main() {
    let cli = airlock::cli::Cli::parse();
    let code = match airlock::app::run(cli) {
        Ok(code) => code,
        Err(e) => {
            airlock::app::print_error(&e);
            airlock::app::exit_code(&e)
        }
    };
    std::process::exit(code);
}
