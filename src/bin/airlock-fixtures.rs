//! `airlock-fixtures`: generate the deterministic test images of [`airlock::fixtures`] and seed
//! local registries or an OCI layout with them, for scripts, benchmarks and the demo.
//!
//! ```text
//! airlock-fixtures seed --set rancher-1.6.14 --seed 1 --scale 0.01 \
//!     --registry docker.io=http://127.0.0.1:5001 --registry gcr.io=http://127.0.0.1:5002
//! airlock-fixtures layout --set rancher-1.6.14 DIR
//! airlock-fixtures list --set rancher-1.6.14 --extra-names docker.io/rancher/k8s:v1.8.10-rancher1-1
//! airlock-fixtures pins --set rancher-1.6.14 > pins.txt     # for `airlock pack --pins`
//! # today's internet (scripts/demo.sh): pause schema 1 at registry.k8s.io, busybox an OCI
//! # index with attestations, tiller at ghcr.io
//! airlock-fixtures seed --set rancher-1.6.14-today --registry docker.io=http://127.0.0.1:5001 \
//!     --registry registry.k8s.io=http://127.0.0.1:5002 --registry ghcr.io=http://127.0.0.1:5003
//! airlock-fixtures pins --set rancher-1.6.14-today --builtin-only > pins.txt
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand, ValueEnum};
use rayon::prelude::*;

use airlock::fixtures::{self, Fixture};

#[derive(Parser)]
#[command(
    name = "airlock-fixtures",
    version,
    about = "Generate deterministic test images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Push every image into the local registry mapped for its source registry.
    Seed {
        #[command(flatten)]
        select: Select,
        /// `SOURCE=URL`, e.g. `docker.io=http://127.0.0.1:5001`; repeat per source registry.
        /// Only 127.0.0.1, ::1 and localhost are accepted.
        #[arg(long = "registry", value_name = "SOURCE=URL", required = true)]
        registries: Vec<String>,
    },
    /// Write the images as an OCI image layout in DIR, tagged with their full names.
    Layout {
        #[command(flatten)]
        select: Select,
        dir: PathBuf,
    },
    /// Print each image's name, digest and size.
    List {
        #[command(flatten)]
        select: Select,
    },
    /// Print a pin table (`REFERENCE DIGEST` per line) of the images, for `airlock pack
    /// --pins`: the fixtures are not the upstream images, whose digests airlock pins.
    Pins {
        #[command(flatten)]
        select: Select,
        /// Only the references airlock's built-in table pins (the gcr.io/google_containers
        /// images), as upstream: the others are not pinned there either.
        #[arg(long)]
        builtin_only: bool,
    },
}

#[derive(Args)]
struct Select {
    /// The image set.
    #[arg(long, value_enum, default_value = "rancher-1.6.14")]
    set: Set,
    /// More images by full name (Docker schema2, two layers each), comma separated; a name
    /// the set already has stays the set's.
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    extra_names: Vec<String>,
    /// Seed for every byte generated.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Size factor: 1.0 is about 860 MB summed over the Rancher images.
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
}

#[derive(Clone, Copy, ValueEnum)]
enum Set {
    /// The 17 images of Rancher 1.6.14 (Kubernetes template v1.8.5-rancher4).
    #[value(name = "rancher-1.6.14")]
    Rancher1614,
    /// The same 17 in the formats served today (pause schema 1, busybox an OCI index with
    /// attestations, the rest Docker schema 2), seeded at today's places (registry.k8s.io for
    /// gcr.io/google_containers, ghcr.io/helm/tiller for tiller).
    #[value(name = "rancher-1.6.14-today")]
    Rancher1614Today,
    /// No set: only `--extra-names`.
    None,
}

impl Select {
    fn fixtures(&self) -> anyhow::Result<Vec<Fixture>> {
        if !(self.scale.is_finite() && self.scale > 0.0) {
            bail!("--scale must be a positive number, not {}", self.scale);
        }
        let set = match self.set {
            Set::Rancher1614 => fixtures::rancher_1_6_14(self.seed, self.scale),
            Set::Rancher1614Today => fixtures::rancher_1_6_14_today(self.seed, self.scale),
            Set::None => Vec::new(),
        };
        let extra: Vec<&str> = self.extra_names.iter().map(String::as_str).collect();
        Ok(fixtures::with_extra(set, &extra, self.seed, self.scale))
    }
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Seed { select, registries } => {
            let targets = parse_registries(&registries)?;
            let fixtures = select.fixtures()?;
            // Check every mapping before pushing anything.
            let plan: Vec<(&Fixture, &str, String, String)> = fixtures
                .iter()
                .map(|f| {
                    let (registry, repository, tag) = match select.set {
                        Set::Rancher1614Today => fixtures::today_path(&f.name),
                        _ => fixtures::upstream_path(&f.name),
                    };
                    let url = targets.get(&registry).with_context(|| {
                        format!("{}: no --registry {registry}=URL given", f.name)
                    })?;
                    Ok((f, url.as_str(), repository, tag))
                })
                .collect::<anyhow::Result<_>>()?;
            let results: Vec<anyhow::Result<()>> = plan
                .par_iter()
                .map(|(f, url, repository, tag)| {
                    fixtures::push_raw(url, repository, tag, &f.artifact)
                        .with_context(|| format!("pushing {} to {url}", f.name))
                })
                .collect();
            for ((f, ..), result) in plan.iter().zip(results) {
                result?;
                print_line(f);
            }
            Ok(())
        }
        Command::Layout { select, dir } => {
            let fixtures = select.fixtures()?;
            fixtures::write_oci_layout(&dir, &fixtures)
                .with_context(|| format!("writing an OCI layout in {}", dir.display()))?;
            fixtures.iter().for_each(print_line);
            Ok(())
        }
        Command::List { select } => {
            select.fixtures()?.iter().for_each(print_line);
            Ok(())
        }
        Command::Pins {
            select,
            builtin_only,
        } => {
            print!("{}", fixtures::pin_table(&select.fixtures()?, builtin_only));
            Ok(())
        }
    }
}

fn print_line(f: &Fixture) {
    println!(
        "{} {} {}",
        f.name,
        f.artifact.digest(),
        f.artifact.total_size()
    );
}

/// `SOURCE=URL` pairs, refusing any URL that is not on this machine: fixtures are for local
/// test registries, and a typo must not push junk somewhere real.
fn parse_registries(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let (source, url) = pair
            .split_once('=')
            .with_context(|| format!("--registry {pair:?}: expected SOURCE=URL"))?;
        local_host(url).with_context(|| format!("--registry {pair:?}"))?;
        out.insert(source.to_string(), url.trim_end_matches('/').to_string());
    }
    Ok(out)
}

/// The host of an `http(s)://host[:port][/...]` URL, if it is 127.0.0.1, ::1 or localhost.
fn local_host(url: &str) -> anyhow::Result<&str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .with_context(|| format!("{url}: only http:// and https:// URLs are supported"))?;
    let authority = rest.split('/').next().unwrap_or("");
    if authority.contains('@') {
        bail!("{url}: credentials in the URL are not supported");
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    match host {
        "127.0.0.1" | "::1" | "localhost" => Ok(host),
        _ => bail!("{url}: refusing host {host:?}; only 127.0.0.1, ::1 and localhost are allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_registries_are_accepted() {
        for ok in [
            "http://127.0.0.1:5000",
            "http://localhost:5000/",
            "http://[::1]:5000",
        ] {
            assert!(local_host(ok).is_ok(), "{ok}");
        }
        let refused = "; only 127.0.0.1, ::1 and localhost are allowed";
        for (bad, why) in [
            (
                "http://10.0.0.1:5000",
                format!("refusing host \"10.0.0.1\"{refused}"),
            ),
            (
                "http://127.0.0.1.example.com:5000",
                format!("refusing host \"127.0.0.1.example.com\"{refused}"),
            ),
            (
                "http://user@127.0.0.1:5000",
                "credentials in the URL are not supported".into(),
            ),
            (
                "ftp://127.0.0.1",
                "only http:// and https:// URLs are supported".into(),
            ),
            (
                "127.0.0.1:5000",
                "only http:// and https:// URLs are supported".into(),
            ),
            (
                "https://registry-1.docker.io",
                format!("refusing host \"registry-1.docker.io\"{refused}"),
            ),
        ] {
            assert_eq!(
                local_host(bad).unwrap_err().to_string(),
                format!("{bad}: {why}")
            );
        }
    }
}
