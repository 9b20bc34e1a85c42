//! `airlock unpack`: every image of a bundle into the private registry, and what to set in
//! Rancher.

use std::fmt::Write as _;

use airlock::bundle::open::open;
use airlock::escape::Escaped;
use airlock::progress::Reporter as _;
use airlock::units::{bytes as human_bytes, count, was_were};
use airlock::unpack::{Mapping, Status, UnpackOptions, UnpackReport};
use anyhow::{Context as _, Result};

use super::cli::{OutputFormat, UnpackArgs};
use super::progress::Stderr;
use super::{client_for, err, exit, json, out};

pub fn run(args: UnpackArgs) -> Result<i32> {
    let registry = args.registry.host.clone();
    let prefix = match args.prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let mut opened = open(&args.bundle)?;
    let client = client_for(&args.registry_args, &args.registry)?;
    let reporter = Stderr::new(
        args.progress.quiet || args.format == OutputFormat::Json,
        args.progress.mode,
    );
    let opts = UnpackOptions {
        registry: registry.clone(),
        prefix,
        jobs: args.jobs.clamp(1, 64),
        dry_run: args.dry_run,
    };
    if let Some(why) = opened.sequential_reason() {
        reporter.warn(&format!("{why}: reading it in one sequential pass"));
    }
    let (mappings, report) = client
        .observe(&reporter, || {
            airlock::unpack::unpack(&client, opened.source(), &opts, &reporter)
        })
        .with_context(|| format!("unpacking {} into {registry}", args.bundle.display()))?;
    let Some(report) = report else {
        return dry_run(&args, &registry, &mappings);
    };
    if args.format == OutputFormat::Json {
        json::print(
            "unpack",
            report.failed() == 0,
            Body {
                bundle: &args.bundle,
                dry_run: false,
                report: &report,
                elapsed_seconds: report.elapsed.as_secs_f64(),
            },
        )?;
    } else {
        out(render(&report).trim_end());
    }
    let failed = report.failed();
    if failed > 0 {
        err(&format!(
            "error: {failed} of {} {} not pushed (see above); rerun the same command to retry {}",
            count(report.images.len(), "image"),
            was_were(failed),
            if failed == 1 { "it" } else { "them" }
        ));
        // Some images are in and usable: a partial success, unless none is.
        return Ok(if failed < report.images.len() {
            exit::PARTIAL
        } else {
            exit::FAILED
        });
    }
    Ok(exit::OK)
}

/// `unpack --format json`: the bundle, the report's keys, the time taken.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    bundle: &'a std::path::Path,
    dry_run: bool,
    #[serde(flatten)]
    report: &'a UnpackReport,
    elapsed_seconds: f64,
}

/// `--dry-run`: where each image would go.
fn dry_run(args: &UnpackArgs, registry: &str, mappings: &[Mapping]) -> Result<i32> {
    if args.format == OutputFormat::Json {
        json::print(
            "unpack",
            true,
            serde_json::json!({
                "bundle": args.bundle,
                "registry": registry,
                "dryRun": true,
                "images": mappings,
            }),
        )?;
        return Ok(exit::OK);
    }
    out(&format!(
        "would push {} to {registry} (nothing was pushed):",
        count(mappings.len(), "image")
    ));
    for m in mappings {
        let targets: Vec<String> = m.targets.iter().map(|t| Escaped(t).to_string()).collect();
        out(&format!(
            "{}\n    -> {}  ({})",
            Escaped(&m.source),
            targets.join("\n    -> "),
            m.digest
        ));
    }
    Ok(exit::OK)
}

/// The line after the images: what was pushed and how the blobs got there, in words when
/// there was nothing to do.
fn summary(r: &UnpackReport) -> String {
    let secs = r.elapsed.as_secs_f64();
    let n = r.images.len();
    let present = r
        .images
        .iter()
        .filter(|i| i.status == Status::AlreadyPresent)
        .count();
    if present == n {
        let all = match n {
            1 => "The image was".to_string(),
            n => format!("All {n} images were"),
        };
        return format!(
            "{all} in {} already, with the digests of the bundle: nothing to push ({secs:.1}s)",
            r.registry
        );
    }
    let failed = r.failed();
    let pushed = n - present - failed;
    let mut images = vec![format!(
        "{} pushed to {}",
        count(pushed, "image"),
        r.registry
    )];
    if present > 0 {
        images.push(format!("{present} already there"));
    }
    if failed > 0 {
        images.push(format!("{failed} FAILED"));
    }
    let mut blobs = Vec::new();
    if r.blobs_uploaded > 0 {
        blobs.push(format!(
            "{} uploaded ({})",
            count(r.blobs_uploaded, "blob"),
            human_bytes(r.bytes_uploaded)
        ));
    }
    if r.blobs_mounted > 0 {
        blobs.push(format!(
            "{} mounted from another repository",
            count(r.blobs_mounted, "blob")
        ));
    }
    if r.blobs_present > 0 {
        blobs.push(format!(
            "{} in the registry already",
            count(r.blobs_present, "blob")
        ));
    }
    let blobs = if blobs.is_empty() {
        "no blob to send".to_string()
    } else {
        blobs.join(", ")
    };
    format!("{}: {blobs}, in {secs:.1}s", images.join(", "))
}

/// The closing report of `unpack`.
fn render(r: &UnpackReport) -> String {
    let mut s = String::new();
    for i in &r.images {
        let status = match i.status {
            Status::Pushed => "pushed",
            Status::AlreadyPresent => "already present",
            Status::Failed => "FAILED",
        };
        if i.status == Status::AlreadyPresent {
            // A rerun: one line each, what was pushed before is not news.
            let targets: Vec<String> = i.targets.iter().map(|t| Escaped(t).to_string()).collect();
            let _ = writeln!(
                s,
                "{status:16} {} -> {}",
                Escaped(&i.source),
                targets.join(", ")
            );
            continue;
        }
        let _ = writeln!(s, "{status:16} {}", Escaped(&i.source));
        for t in &i.targets {
            let _ = writeln!(s, "{:16}   -> {}", "", Escaped(t));
        }
        let _ = writeln!(s, "{:16}   {}", "", i.digest);
        if let Some(from) = &i.converted_from {
            let _ = writeln!(
                s,
                "{:16}   converted at pack time from {}",
                "",
                Escaped(from)
            );
        }
        if let Some(e) = &i.error {
            let _ = writeln!(s, "{:16}   error: {}", "", Escaped(e));
        }
    }
    let _ = writeln!(s, "\n{}", summary(r));
    if r.retries > 0 {
        let _ = writeln!(
            s,
            "{} retried after transient failures",
            match r.retries {
                1 => "1 request was".to_string(),
                n => format!("{n} requests were"),
            }
        );
    }
    let converted = r
        .images
        .iter()
        .filter(|i| i.converted_from.is_some())
        .count();
    if converted > 0 {
        let _ = writeln!(
            s,
            "{} {} converted at pack time to Docker schema 2 for Docker 1.12-17.03 (their digests differ from upstream's; `airlock inspect` says why)",
            count(converted, "image"),
            was_were(converted)
        );
    }
    s.push_str(&airlock::rancher::render(
        r.rancher_server.as_ref(),
        &r.rancher_settings,
    ));
    s
}
