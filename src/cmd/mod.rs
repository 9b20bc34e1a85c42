//! The command layer: turns command-line values into library calls and prints what they
//! return, one file per command (uv's `commands/`). Output happens here and in `main.rs` only:
//! the library reports through return values and the [`Reporter`](airlock::progress::Reporter)
//! that [`progress::Stderr`] draws. Every line goes out through [`out`] or [`err`], which
//! escape what a terminal would act on; text from a bundle or a registry is also escaped
//! where it is put in a line ([`Escaped`](airlock::escape::Escaped)), so a newline in it
//! cannot forge a line of airlock's own.

mod cli;
mod examples;
pub mod exit;
mod inspect;
mod inventory;
mod json;
mod list;
mod logging;
mod login;
mod manual;
mod pack;
mod progress;
mod prompt;
mod unpack;
mod verify;

use std::time::Duration;

use airlock::catalog::{Group, Selection};
use airlock::escape;
use airlock::registry::{self, Client, Credentials};
use airlock::upstream::{Pins, Relocation};
use anyhow::{Context as _, Result};

pub use cli::Cli;
use cli::{Command, ConnectArgs, RegistryArgs, RegistryTarget, SelectArgs, UpstreamArgs};

/// Runs one command; the returned code is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    // A deliberate panic, so that a test can check what a bug in airlock exits with.
    if std::env::var_os("AIRLOCK_TEST_PANIC").is_some() {
        panic!("AIRLOCK_TEST_PANIC is set");
    }
    logging::init(cli.verbose);
    let json_input = json_input(&cli.command);
    let result = match cli.command {
        Command::List(args) => list::run(args),
        Command::Pack(args) => pack::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Unpack(args) => unpack::run(args),
        Command::Inventory(args) => inventory::run(args),
        Command::Login(args) => login::run(args),
        Command::Logout(args) => login::logout(args),
        Command::Completions(args) => manual::completions(args),
        Command::Man(args) => manual::man(args),
    };
    if let (Err(e), Some((command, input))) = (&result, json_input) {
        json::print_failure(command, &input, e);
    }
    result
}

/// For a command asked for JSON: its name and its input, for the document a failure prints.
fn json_input(c: &Command) -> Option<(&'static str, Vec<(&'static str, String)>)> {
    use cli::{ListFormat, OutputFormat::Json};
    let path = |p: &std::path::Path| p.display().to_string();
    match c {
        Command::List(a) if a.format == ListFormat::Json => Some((
            "list",
            a.select
                .version
                .iter()
                .map(|v| ("release", v.clone()))
                .collect(),
        )),
        Command::Pack(a) if a.format == Json => Some(("pack", vec![("bundle", path(&a.output))])),
        Command::Inspect(a) if a.format == Json => {
            Some(("inspect", vec![("bundle", path(&a.bundle))]))
        }
        Command::Verify(a) if a.format == Json => {
            Some(("verify", vec![("bundle", path(&a.bundle))]))
        }
        Command::Unpack(a) if a.format == Json => Some((
            "unpack",
            vec![
                ("bundle", path(&a.bundle)),
                ("registry", a.registry.host.clone()),
            ],
        )),
        _ => None,
    }
}

/// Prints a line of a command's result on standard output.
pub fn out(line: &str) {
    write_stdout(format!("{}\n", escape::terminal(line)).as_bytes());
}

/// Writes `bytes` to standard output as they are. A reader that went away (`airlock list |
/// head`) ends the run quietly with exit code 0, as ripgrep does: what it read was what it
/// wanted. Any other write error ends it with exit code 1 and says so.
pub fn write_stdout(bytes: &[u8]) {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(bytes).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(exit::OK);
        }
        err(&format!("error: writing to standard output: {e}"));
        std::process::exit(exit::FAILED);
    }
}

/// Prints a line for the operator on standard error.
pub fn err(line: &str) {
    eprintln!("{}", escape::terminal(line));
}

/// A client for the registry of `--registry` (`unpack`, `inventory`): the credentials given
/// on the command line are for it, and a URL names its endpoint.
fn client_for(args: &RegistryArgs, target: &RegistryTarget) -> Result<Client> {
    let mut opts = registry_options(args, Some(&target.host))?;
    if let Some(e) = &target.endpoint {
        opts.endpoints.push((target.host.clone(), e.clone()));
    }
    Ok(Client::new(opts)?)
}

/// The `--relocate` rules and the pin table the flags ask for.
pub(crate) fn upstream_options(args: &UpstreamArgs) -> Result<(Vec<Relocation>, Pins)> {
    let relocations = args.relocate.clone();
    let pins = match &args.pins {
        Some(f) => Pins::read(f)?,
        None => Pins::builtin(),
    };
    Ok((relocations, pins))
}

/// The catalog selection the flags ask for.
pub(crate) fn selection(args: &SelectArgs) -> Result<Selection> {
    let Some(version) = &args.version else {
        return Err(exit::usage("give a Rancher release with --version (for example --version 1.6.14); `airlock list --versions` lists them"));
    };
    let mut groups = Vec::new();
    for &group in &args.only {
        if !groups.contains(&group) {
            groups.push(group);
        }
    }
    if args.k8saddons && !groups.contains(&Group::Addons) {
        groups.push(Group::Addons);
    }
    Ok(Selection {
        version: version.clone(),
        template: args.k8s_template.clone(),
        groups,
        with_server: args.with_server,
    })
}

/// Client options for TLS, plain http and time bounds, from the command line and the
/// environment: no endpoints, no credentials.
pub(crate) fn connect_options(args: &ConnectArgs) -> registry::Options {
    registry::Options {
        insecure: args.insecure,
        insecure_registries: args.insecure_registry.clone(),
        ca_file: args.ca_file.clone(),
        certs_d: args.certs_dir.clone(),
        retry: registry::Retry {
            attempts: args.retries,
            base: Duration::from_millis(args.retry_delay_ms),
            max: Duration::from_millis(args.retry_delay_ms.saturating_mul(20).max(1)),
        },
        connect_timeout: Duration::from_secs(args.connect_timeout),
        io_timeout: Duration::from_secs(args.read_timeout),
        request_timeout: Duration::from_secs(args.request_timeout),
        min_rate: registry::MinRate {
            bytes: args.min_rate_kib.saturating_mul(1024),
            window: Duration::from_secs(args.rate_window),
        },
        ..registry::Options::default()
    }
}

/// Builds registry client options from the command line, the environment and config.json.
///
/// `target` is the registry the credentials given on the command line are for (unpack's and
/// inventory's `--registry`); `None` for pack, where `--login` must name it.
pub(crate) fn registry_options(
    args: &RegistryArgs,
    target: Option<&str>,
) -> Result<registry::Options> {
    let mut opts = connect_options(&args.connect);
    for m in &args.mirror {
        opts.endpoints.push((m.from.clone(), m.endpoint.clone()));
    }
    opts.credentials
        .load_docker_config()
        .context("reading Docker credentials")?;
    if let Some(user) = &args.username {
        let host = match (target, &args.login) {
            (Some(t), Some(l)) if registry::host_key(l) != registry::host_key(t) => {
                return Err(exit::usage(format!(
                    "--login {l}: --username is for the --registry target {t} here; drop --login"
                )))
            }
            (Some(t), _) => t.to_string(),
            (None, Some(l)) => l.clone(),
            (None, None) => return Err(exit::usage(
                "pack talks to several registries: name the one --username is for with --login REGISTRY (e.g. --login docker.io, or a --mirror's HOST:PORT); the others get credentials from ~/.docker/config.json only"
            )),
        };
        let password = prompt::password_stdin(user, &host)?;
        if let Some((_, m)) = opts.endpoints.iter().find(|(r, e)| {
            registry::host_key(r) == registry::host_key(&host) && e.host != r.as_str()
        }) {
            err(&format!(
                "warning: --login {host}: requests for {host} go to the mirror {}, which gets only its own credentials (--login {} for it)",
                m.base(),
                m.host
            ));
        }
        opts.credentials
            .insert(&host, Credentials::new(user.clone(), password));
    }
    Ok(opts)
}

/// Prints an error the way uv does: the message, each cause, then a hint where one helps; a
/// usage error ends as clap's own do.
pub fn print_error(e: &anyhow::Error, usage: bool) {
    err(&format!("error: {e}"));
    for cause in e.chain().skip(1) {
        err(&format!("  caused by: {cause}"));
    }
    if let Some(h) = hint(e) {
        err(&format!("  hint: {h}"));
    }
    if usage {
        err("\nFor more information, try '--help'.");
    }
}

/// What to do, where the error itself does not say it. (Registry errors that have one fix,
/// plain http, TLS, the pull limit, say it in their own text: pack lists them per image.)
fn hint(e: &anyhow::Error) -> Option<String> {
    use registry::RegistryError as R;
    for cause in e.chain() {
        if let Some(R::Unauthorized { .. }) = cause.downcast_ref::<R>() {
            return Some("check the user name and password (--username with --password-stdin, and for pack --login REGISTRY; or ~/.docker/config.json)".into());
        }
    }
    None
}
