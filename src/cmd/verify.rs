//! `airlock verify`: every byte of a bundle, offline, and the checksum file beside it.

use airlock::bundle::open::open;
use airlock::escape::Escaped;
use airlock::parts;
use airlock::progress::Reporter as _;
use airlock::units::{bytes as human_bytes, count, is_are};
use airlock::verify::VerifyReport;
use anyhow::{Context as _, Result};

use super::cli::{OutputFormat, VerifyArgs};
use super::progress::Stderr;
use super::{err, exit, json, out};

pub fn run(args: VerifyArgs) -> Result<i32> {
    let reporter = Stderr::new(
        args.progress.quiet || args.format == OutputFormat::Json,
        args.progress.mode,
    );
    let stdin = args.bundle.as_os_str() == "-";
    let side = parts::sidecar_path(&parts::base_name(&args.bundle));
    let mut opened = open(&args.bundle);
    let jobs = rayon::current_num_threads();
    // The checksum file is checked alongside the bundle: file hashes on one side, the bundle's
    // own digests on the other.
    let (report, sidecar) = rayon::join(
        || {
            let o = opened.as_mut().ok()?;
            if let Some(why) = o.sequential_reason() {
                reporter.warn(&format!("{why}: reading it in one sequential pass"));
            }
            Some(airlock::verify::verify(o.source(), jobs, &reporter))
        },
        || match stdin {
            true => Ok(None),
            false => airlock::sidecar::check(&side),
        },
    );
    let sidecar = sidecar.with_context(|| format!("reading {}", side.display()))?;
    let mut report = match (report, opened) {
        (Some(r), Ok(_)) => r?,
        (_, Err(e)) => {
            // The bundle cannot even be opened: still say which file differs from its checksum.
            if let Some(problems) = sidecar.filter(|p| !p.is_empty()) {
                err(&format!(
                    "error: {} differs from {}:",
                    args.bundle.display(),
                    side.display()
                ));
                for p in &problems {
                    err(&format!("  {p}"));
                }
            }
            return Err(e.into());
        }
        (None, Ok(_)) => unreachable!("verified whenever the bundle opened"),
    };
    let checked = Checked {
        file: (!stdin && sidecar.is_some()).then_some(side.as_path()),
        text: match (stdin, &sidecar) {
            (true, _) => "no checksum file for standard input".to_string(),
            (false, Some(_)) => format!("checksum file {} checked", side.display()),
            (false, None) => format!(
                "no checksum file {} beside it: only the bundle's own digests checked",
                side.display()
            ),
        },
    };
    report.problems.extend(sidecar.into_iter().flatten());
    print(&args, &report, &checked)
}

/// What was done about the checksum file beside the bundle.
struct Checked<'a> {
    /// The file checked, when there was one.
    file: Option<&'a std::path::Path>,
    /// The same in words, for the OK line.
    text: String,
}

/// `verify --format json`: the bundle, the report's keys, the time taken.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    bundle: &'a std::path::Path,
    #[serde(flatten)]
    report: &'a VerifyReport,
    /// The checksum file checked beside the bundle; `null` when there was none.
    checksum_file: Option<&'a std::path::Path>,
    elapsed_seconds: f64,
}

/// Prints a verify report (`checked`: what was done about the checksum file); the exit code.
fn print(args: &VerifyArgs, report: &VerifyReport, checked: &Checked<'_>) -> Result<i32> {
    if args.format == OutputFormat::Json {
        json::print(
            "verify",
            report.is_ok(),
            Body {
                bundle: &args.bundle,
                report,
                checksum_file: checked.file,
                elapsed_seconds: report.elapsed.as_secs_f64(),
            },
        )?;
    }
    if report.is_ok() {
        if args.format == OutputFormat::Text {
            out(&format!(
                "{}: OK: {}, {}, {} verified in {:.1}s; {}",
                args.bundle.display(),
                count(report.images, "image"),
                count(report.blobs, "blob"),
                human_bytes(report.bytes),
                report.elapsed.as_secs_f64(),
                checked.text
            ));
            if report.omitted_blobs > 0 {
                out(&format!(
                    "delta bundle: {} ({}) {} omitted; the target registry must already hold {} (unpack checks)",
                    count(report.omitted_blobs, "blob"),
                    human_bytes(report.omitted_bytes),
                    is_are(report.omitted_blobs),
                    if report.omitted_blobs == 1 { "it" } else { "them" }
                ));
            }
            for c in &report.converted {
                out(&format!(
                    "converted at pack time for Docker 1.12-17.03: {} ({} {} -> {} {})",
                    Escaped(&c.source),
                    Escaped(&c.upstream_media_type),
                    c.upstream_digest,
                    Escaped(&c.media_type),
                    c.digest
                ));
            }
        }
        return Ok(exit::OK);
    }
    err(&format!(
        "error: {} is damaged: {}",
        args.bundle.display(),
        count(report.problems.len(), "problem")
    ));
    for p in &report.problems {
        err(&format!("  {p}"));
    }
    err("  hint: copy the bundle again from the source (sha256sum -c bundle.tar.zst.sha256 tells whether the copy differs)");
    Ok(exit::FAILED)
}
