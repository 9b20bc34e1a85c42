//! Runs the subcommands: turns command-line values into library calls and prints results.
//! Printing happens here and in `main.rs` only; the library reports through return values
//! and the `progress` reporter.

use std::io::Read as _;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::catalog::{self, Group, Selection};
use crate::cli::{Cli, Command, ListArgs, OutputFormat, RegistryArgs, SelectArgs};
use crate::registry::{self, Credentials, Endpoint};

/// Runs one command; the returned code is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::List(args) => list(args),
    }
}

fn list(args: ListArgs) -> Result<i32> {
    if args.versions {
        print!("{}", crate::list::render_versions());
        return Ok(0);
    }
    let sel = selection(&args.select)?;
    let per_template = catalog::select(&sel)?;
    let out = match args.output {
        OutputFormat::Text => crate::list::render_text(&sel.version, &per_template),
        OutputFormat::Json => crate::list::render_json(&sel.version, &per_template),
    };
    print!("{out}");
    Ok(0)
}

/// The catalog selection the flags ask for.
pub fn selection(args: &SelectArgs) -> Result<Selection> {
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
    })
}

/// Builds registry client options from the command line, the environment and config.json.
///
/// `target` is the registry the credentials given on the command line are for; `None` means
/// every registry this command talks to.
pub fn registry_options(args: &RegistryArgs, target: Option<&str>) -> Result<registry::Options> {
    let mut opts = registry::Options {
        insecure: args.insecure,
        ca_file: args.ca_file.clone(),
        ..registry::Options::default()
    };
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
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("reading the password from standard input")?;
        let password = password.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("--password-stdin: standard input was empty; pipe the password in, e.g. `cat pw.txt | airlock ... --username {user} --password-stdin`");
        }
        let creds = Credentials::new(user.clone(), password);
        match target {
            Some(t) => opts.credentials.insert(t, creds),
            None => opts.credentials.insert_default(creds),
        }
    }
    // Tests make retries fast; operators never need this.
    if let Some(ms) = std::env::var("AIRLOCK_RETRY_BASE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        opts.retry.base = Duration::from_millis(ms);
        opts.retry.max = Duration::from_millis(ms.saturating_mul(20).max(1));
    }
    if let Some(s) = std::env::var("AIRLOCK_IO_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        opts.io_timeout = Duration::from_secs(s.max(1));
    }
    Ok(opts)
}

/// Prints an error the way uv does: the message, each cause, then a hint where one helps.
pub fn print_error(e: &anyhow::Error) {
    eprintln!("error: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(h) = hint(e) {
        eprintln!("  hint: {h}");
    }
}

fn hint(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        if let Some(r) = cause.downcast_ref::<registry::RegistryError>() {
            match r {
                registry::RegistryError::Unauthorized { .. } => {
                    return Some("check the user name and password (--username with --password-stdin, or ~/.docker/config.json)".into())
                }
                registry::RegistryError::Transport { reason, .. }
                    if reason.contains("certificate") || reason.contains("Certificate") =>
                {
                    return Some("if the registry uses a private CA, pass it with --ca-file ca.pem (or --insecure to skip verification)".into())
                }
                _ => {}
            }
        }
    }
    None
}

/// Exit code for an error: 1 when the operator can fix it (bad input, refused credentials,
/// corrupt bundle), 2 for anything unexpected.
pub fn exit_code(_e: &anyhow::Error) -> i32 {
    1
}
