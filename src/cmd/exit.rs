//! Exit codes: part of airlock's interface, documented in the README and in `airlock --help`
//! ([`HELP`]). clap's own argument errors exit [`USAGE`] too; the argument errors only
//! airlock can see (a `--mirror` without `=URL`, an unknown release) are [`Usage`] errors.

/// Everything was done.
pub const OK: i32 = 0;
/// Nothing, or not everything, was done; the cause is printed.
pub const FAILED: i32 = 1;
/// The command line is wrong (as clap exits).
pub const USAGE: i32 = 2;
/// Some of the work was done, as asked: `pack --keep-going` wrote a bundle without the
/// images that failed; `unpack` pushed some images and refused others.
pub const PARTIAL: i32 = 3;
/// A bug in airlock (a panic), `EX_SOFTWARE` of sysexits.h.
pub const INTERNAL: i32 = 70;

/// The exit codes as `--help` lists them.
pub const HELP: &str = "\
Exit codes:
  0    everything was done
  1    failed: nothing, or not everything, was done (the cause is printed)
  2    usage error: a wrong flag or value
  3    partial success: pack --keep-going left images out, or unpack pushed some images and
       refused others (each named)
  70   internal error: a bug in airlock; please report it
  130  interrupted by SIGINT (Ctrl-C); 143 by SIGTERM. Run the same command again to resume";

/// A wrong argument found after parsing: printed as clap prints its own, and exits [`USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A [`Usage`] error with this message.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    Usage(message.into()).into()
}

/// The exit code of a failed run: [`USAGE`] for a wrong argument, else [`FAILED`].
pub fn of_error(e: &anyhow::Error) -> i32 {
    if e.chain().any(|c| c.downcast_ref::<Usage>().is_some()) || is_argument_error(e) {
        USAGE
    } else {
        FAILED
    }
}

/// A library error that says a command-line value is wrong: a release or k8s template the
/// catalog does not know, a `--relocate` rule that does not parse.
fn is_argument_error(e: &anyhow::Error) -> bool {
    use airlock::catalog::CatalogError as C;
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<C>(),
            Some(
                C::UnknownRelease { .. }
                    | C::OutOfScope { .. }
                    | C::UnknownTemplate { .. }
                    | C::UnknownGroup(_)
            )
        )
    })
}
