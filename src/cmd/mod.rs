//! The command layer: turns command-line values into library calls and prints what they
//! return, one file per command (uv's `commands/`). Output happens here and in `main.rs` only:
//! the library reports through return values and the [`Reporter`](airlock::progress::Reporter)
//! that [`progress::Stderr`] draws. Every line goes out through [`out`] or [`err`], which
//! escape what a terminal would act on; text from a bundle or a registry is also escaped
//! where it is put in a line ([`Escaped`](airlock::escape::Escaped)), so a newline in it
//! cannot forge a line of airlock's own.

mod cli;
mod inspect;
mod inventory;
mod list;
mod login;
mod pack;
mod progress;
mod prompt;
mod unpack;
mod verify;

use std::time::Duration;

use airlock::catalog::{Group, Selection};
use airlock::escape;
use airlock::registry::{self, Client, Credentials, Endpoint};
use airlock::upstream::{Pins, Relocation};
use anyhow::{bail, Context as _, Result};

pub use cli::Cli;
use cli::{Command, ConnectArgs, RegistryArgs, RegistryTarget, SelectArgs, UpstreamArgs};

/// Runs one command; the returned code is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::List(args) => list::run(args),
        Command::Pack(args) => pack::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Verify(args) => verify::run(args),
        Command::Unpack(args) => unpack::run(args),
        Command::Inventory(args) => inventory::run(args),
        Command::Login(args) => login::run(args),
        Command::Logout(args) => login::logout(args),
    }
}

/// Prints a line of a command's result on standard output.
pub fn out(line: &str) {
    println!("{}", escape::terminal(line));
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
    let relocations = args
        .relocate
        .iter()
        .map(|r| r.parse())
        .collect::<Result<Vec<Relocation>, _>>()?;
    let pins = match &args.pins {
        Some(f) => Pins::read(f)?,
        None => Pins::builtin(),
    };
    Ok((relocations, pins))
}

/// The catalog selection the flags ask for.
pub(crate) fn selection(args: &SelectArgs) -> Result<Selection> {
    let Some(version) = &args.version else {
        bail!("give a Rancher release with --version (for example --version 1.6.14); `airlock list --versions` lists them");
    };
    let mut groups = Vec::new();
    for g in &args.only {
        let group: Group = g.parse()?;
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
        let (from, url) = m
            .split_once('=')
            .with_context(|| format!("invalid --mirror {m:?}: expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5001"))?;
        let endpoint = Endpoint::parse(url).with_context(|| format!("invalid --mirror {m:?}"))?;
        let from = match from {
            "index.docker.io" | "registry-1.docker.io" => "docker.io",
            f => f,
        };
        opts.endpoints.push((from.to_string(), endpoint));
    }
    opts.credentials
        .load_docker_config()
        .context("reading Docker credentials")?;
    if let Some(user) = &args.username {
        let host = match (target, &args.login) {
            (Some(t), Some(l)) if registry::host_key(l) != registry::host_key(t) => bail!(
                "--login {l}: --username is for the --registry target {t} here; drop --login"
            ),
            (Some(t), _) => t.to_string(),
            (None, Some(l)) => l.clone(),
            (None, None) => bail!(
                "pack talks to several registries: name the one --username is for with --login REGISTRY (e.g. --login docker.io, or a --mirror's HOST:PORT); the others get credentials from ~/.docker/config.json only"
            ),
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

/// Prints an error the way uv does: the message, each cause, then a hint where one helps.
pub fn print_error(e: &anyhow::Error) {
    err(&format!("error: {e}"));
    for cause in e.chain().skip(1) {
        err(&format!("  caused by: {cause}"));
    }
    if let Some(h) = hint(e) {
        err(&format!("  hint: {h}"));
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
