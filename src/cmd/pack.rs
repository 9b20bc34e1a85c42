//! `airlock pack`: every image of a release (or a list) into one bundle.

use airlock::bundle::format::{ImageListSource, Request};
use airlock::bundle::writer::WriteOptions;
use airlock::cache::Cache;
use airlock::catalog;
use airlock::digest::Digest;
use airlock::escape::Escaped;
use airlock::manifest::Platform;
use airlock::pack::{CacheMode, PackOptions, PackSummary, PlannedImage, Platforms};
use airlock::reference::Reference;
use airlock::registry::Client;
use airlock::units::{bytes as human_bytes, count, count_as, is_are, was_were};
use airlock::upstream::{self, Pins, Relocation};
use std::path::Path;

use airlock::parts;
use anyhow::{bail, Context as _, Result};

use super::cli::OutputFormat;
use super::cli::PackArgs;
use super::progress::Stderr;
use super::{err, exit, json, registry_options, selection, upstream_options};

pub fn run(args: PackArgs) -> Result<i32> {
    if args.output.as_os_str() == "json" || args.output.as_os_str() == "text" {
        // `pack --output json` wrote a bundle named `json` (issue 15).
        return Err(exit::usage(format!(
            "-o/--output names the bundle to write; for a JSON report use --format {0} (to write a bundle named {0}, say -o ./{0})",
            args.output.display()
        )));
    }
    check_output(&args.output, args.split.is_some(), args.force)?;
    let (relocations, pins) = upstream_options(&args.upstream)?;
    let (planned, mut request) = match &args.images {
        Some(file) => from_list(file, &relocations, &pins)?,
        None => from_release(&args, &relocations, &pins)?,
    };
    request.relocations = relocations.iter().map(|r| r.to_string()).collect();
    request.pins = Some(pins.source.clone());
    request.keep_digests = args.keep_digests;
    let opts = options(&args)?;
    let client = Client::new(registry_options(&args.registry, None)?)?;
    let reporter = Stderr::new(args.progress.quiet, args.progress.mode);
    let summary = client
        .observe(&reporter, || {
            airlock::pack::pack(&client, &planned, request, &opts, &reporter)
        })
        .with_context(|| format!("packing {}", args.output.display()))?;
    let retries = client
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    let code = report(&args, &summary, retries);
    if args.format == OutputFormat::Json {
        json::print(
            "pack",
            summary.failures.is_empty(),
            Body::of(&args, &summary, retries),
        )?;
    }
    Ok(code)
}

/// `pack --format json`: the bundle written.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    bundle: &'a Path,
    /// Bytes of the bundle (all parts).
    size: u64,
    /// Of the whole bundle stream, as its `.sha256` file has it (one line per part when split).
    sha256: String,
    files: &'a [std::path::PathBuf],
    images: &'a [airlock::bundle::format::ImageRecord],
    conversions: Vec<airlock::bundle::format::ConversionNote>,
    failures: &'a [airlock::bundle::format::Failure],
    blobs: u64,
    bytes_summed: u64,
    bytes_dedup: u64,
    bytes_downloaded: u64,
    blobs_from_cache: u64,
    omitted_blobs: u64,
    omitted_bytes: u64,
    retries: u64,
    elapsed_seconds: f64,
}

impl<'a> Body<'a> {
    fn of(args: &'a PackArgs, s: &'a PackSummary, retries: u64) -> Body<'a> {
        Body {
            bundle: &args.output,
            size: s.bundle_size,
            sha256: s.bundle_sha256.hex().to_string(),
            files: &s.files,
            images: &s.records,
            conversions: airlock::bundle::format::conversions(&s.records),
            failures: &s.failures,
            blobs: s.blobs,
            bytes_summed: s.bytes_summed,
            bytes_dedup: s.bytes_dedup,
            bytes_downloaded: s.bytes_downloaded,
            blobs_from_cache: s.blobs_from_cache,
            omitted_blobs: s.omitted_blobs,
            omitted_bytes: s.omitted_bytes,
            retries,
            elapsed_seconds: s.elapsed.as_secs_f64(),
        }
    }
}

/// Refuses, before any download, an output pack could not write or should not replace: a
/// missing directory (with the `mkdir -p` that creates it), or, without `--force`, an
/// existing file airlock did not write (its bundle, parts, checksum or parts manifest).
fn check_output(output: &Path, split: bool, force: bool) -> Result<()> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!(
            "{} is not a directory; -o must name a file in a directory",
            dir.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "the output directory {} does not exist; create it first: mkdir -p {}",
            dir.display(),
            shell_quote(&dir.display().to_string())
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("reading the directory {}", dir.display()))
        }
    }
    if output.is_dir() {
        bail!(
            "{} is a directory; -o names the bundle file to write, e.g. {}",
            output.display(),
            output.join("bundle.tar.zst").display()
        );
    }
    if force {
        return Ok(());
    }
    let mut ours = vec![(parts::sidecar_path(output), Kind::Checksums)];
    if split {
        ours.push((parts::manifest_path(output), Kind::PartsManifest));
        let parts_ok = Kind::PartsManifest.holds(&parts::manifest_path(output));
        for i in 0.. {
            let p = parts::part_path(output, i);
            if !p.exists() {
                break;
            }
            ours.push((p, if parts_ok { Kind::Anything } else { Kind::Part }));
        }
    } else {
        ours.push((output.to_path_buf(), Kind::Bundle));
    }
    for (path, kind) in ours {
        if path.exists() && !kind.holds(&path) {
            bail!(
                "{} exists and was not written by airlock ({}); pack will not replace it. Choose another -o, or add --force to replace it",
                path.display(),
                kind.what()
            );
        }
    }
    Ok(())
}

/// What airlock writes at a path, to tell its own files from an operator's.
#[derive(Clone, Copy)]
enum Kind {
    /// A bundle: a zstd frame first and a seek table last.
    Bundle,
    /// `FILE.NNN` of a split bundle whose `parts.json` is missing or not airlock's.
    Part,
    /// `FILE.NNN` beside an airlock `parts.json`.
    Anything,
    /// `FILE.sha256`: `sha256sum` lines, and the size comments airlock writes after them.
    Checksums,
    /// `FILE.parts.json`.
    PartsManifest,
}

impl Kind {
    fn what(self) -> &'static str {
        match self {
            Kind::Bundle => "not an airlock bundle",
            Kind::Part => "a part without an airlock parts.json beside it",
            Kind::Anything => "",
            Kind::Checksums => "not a sha256sum checksum file",
            Kind::PartsManifest => "not an airlock parts manifest",
        }
    }

    /// True when `path` holds what airlock writes there (an empty file holds nothing to lose).
    fn holds(self, path: &Path) -> bool {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let Ok(mut f) = std::fs::File::open(path) else {
            return false;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        if len == 0 || matches!(self, Kind::Anything) {
            return true;
        }
        let mut head = vec![0u8; len.min(1 << 20) as usize];
        if f.read_exact(&mut head).is_err() {
            return false;
        }
        match self {
            Kind::Bundle => {
                let mut tail = [0u8; 4];
                head.len() >= 4
                    && u32::from_le_bytes([head[0], head[1], head[2], head[3]])
                        == airlock::seekable::ZSTD_MAGIC
                    && f.seek(SeekFrom::End(-4)).is_ok()
                    && f.read_exact(&mut tail).is_ok()
                    && u32::from_le_bytes(tail) == airlock::seekable::SEEKABLE_MAGIC
            }
            Kind::Part | Kind::Anything => false,
            // The reader's own rules: sha256sum lines, and the size comments airlock adds
            // (complete lines only, when the file is longer than what was read).
            Kind::Checksums => {
                let whole = match len > head.len() as u64 {
                    true => head.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1),
                    false => head.len(),
                };
                airlock::sidecar::parse(&head[..whole]).is_ok_and(|l| !l.is_empty())
            }
            Kind::PartsManifest => serde_json::from_slice::<serde_json::Value>(&head)
                .is_ok_and(|v| v["format"] == airlock::parts::PARTS_FORMAT),
        }
    }
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The images of an `--images` list, each at its own place, and the request that names the
/// list.
fn from_list(
    file: &std::path::Path,
    relocations: &[Relocation],
    pins: &Pins,
) -> Result<(Vec<PlannedImage>, Request)> {
    let refs = catalog::read_image_list(file)?;
    let content = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    // An image the catalog knows goes where `pack --version` puts it (Rancher's paths).
    let planned = refs
        .into_iter()
        .map(|r| {
            let (target, alt_targets, group) = match catalog::known(&r) {
                Some(c) => (c.private_path, c.alt_paths, c.group.as_str().into()),
                None => (list_target(&r), vec![], "list".into()),
            };
            PlannedImage {
                target,
                alt_targets,
                group,
                places: places(&r, relocations),
                pin: pins.get(&r).cloned(),
                reference: r,
            }
        })
        .collect();
    let request = Request {
        image_list: Some(ImageListSource {
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha256: Digest::of(&content),
        }),
        ..Request::default()
    };
    Ok((planned, request))
}

/// The images of the Rancher release the flags select, and the request that names it.
fn from_release(
    args: &PackArgs,
    relocations: &[Relocation],
    pins: &Pins,
) -> Result<(Vec<PlannedImage>, Request)> {
    let sel = selection(&args.select)?;
    let mut selected = catalog::Selected::resolve(&sel)?;
    selected.with_upstream(relocations, pins);
    let planned = selected
        .images()
        .into_iter()
        .map(|c| PlannedImage {
            target: c.private_path.clone(),
            alt_targets: c.alt_paths.clone(),
            group: c.group.as_str().into(),
            places: c.places.iter().map(|p| p.reference.clone()).collect(),
            pin: c.pin.clone(),
            reference: c.reference.clone(),
        })
        .collect();
    let request = Request {
        rancher_version: Some(sel.version.clone()),
        k8s_templates: selected.template_names(),
        groups: sel.groups.iter().map(|g| g.as_str().to_string()).collect(),
        server: selected.server.as_ref().map(|s| s.request()),
        ..Request::default()
    };
    Ok((planned, request))
}

/// Where an image is fetched from, in order.
fn places(r: &Reference, relocations: &[Relocation]) -> Vec<Reference> {
    upstream::places(r, relocations)
        .into_iter()
        .map(|p| p.reference)
        .collect()
}

/// Where an image from an `--images` list goes: its repository path and tag (or digest).
fn list_target(r: &Reference) -> String {
    match (r.tag(), r.digest()) {
        (Some(t), _) => format!("{}:{t}", r.repository()),
        (None, Some(d)) => format!("{}@{d}", r.repository()),
        (None, None) => format!("{}:latest", r.repository()),
    }
}

/// The platforms `--platform` and `--all-platforms` ask for.
fn platforms(args: &PackArgs) -> Result<Platforms> {
    let mut asked: Vec<Platform> = Vec::new();
    for p in &args.platform {
        if !asked.contains(p) {
            asked.push(p.clone());
        }
    }
    Ok(match (args.all_platforms, asked.len()) {
        (true, _) => Platforms::All,
        (false, 0) => Platforms::One(Platform::linux_amd64()),
        (false, 1) => Platforms::One(asked.remove(0)),
        (false, _) => Platforms::Several(asked),
    })
}

/// `SOURCE_DATE_EPOCH`, when set: the only wall-clock time a bundle may carry.
fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().parse().map_err(|_| {
            super::exit::usage(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds"
            ))
        })?)),
        _ => Ok(None),
    }
}

/// The pack options the flags ask for.
fn options(args: &PackArgs) -> Result<PackOptions> {
    let created = source_date_epoch()?;
    Ok(PackOptions {
        output: args.output.clone(),
        cache: if args.no_cache {
            CacheMode::Transient {
                lookahead: airlock::pack::LOOKAHEAD,
            }
        } else {
            CacheMode::Keep(args.cache.clone().unwrap_or_else(Cache::default_dir))
        },
        jobs: args.jobs.clamp(1, 64),
        platforms: platforms(args)?,
        keep_going: args.keep_going,
        write: WriteOptions {
            level: args.level,
            mtime: created.unwrap_or(0),
            ..WriteOptions::default()
        },
        created,
        split: args.split,
        base: match (&args.base, &args.base_registry_inventory) {
            (Some(b), _) => Some(airlock::delta::from_bundle(b)?),
            (None, Some(i)) => Some(airlock::delta::from_inventory(i)?),
            (None, None) => None,
        },
        keep_digests: args.keep_digests,
    })
}

/// Says what was packed; the exit code.
fn report(args: &PackArgs, summary: &PackSummary, retries: u64) -> i32 {
    err(&format!(
        "packed {}, {}: {} summed, {} after dedup, {} downloaded ({} from cache); bundle {} is {} (sha256 {}) in {:.1}s{}",
        count(summary.images, "image"),
        count(summary.blobs, "blob"),
        human_bytes(summary.bytes_summed),
        human_bytes(summary.bytes_dedup),
        human_bytes(summary.bytes_downloaded),
        count(summary.blobs_from_cache, "blob"),
        args.output.display(),
        human_bytes(summary.bundle_size),
        summary.bundle_sha256.hex(),
        summary.elapsed.as_secs_f64(),
        if retries > 0 { format!(", {}", count_as(retries, "retry", "retries")) } else { String::new() }
    ));
    if summary.files.len() > 1 {
        err(&format!(
            "{}: {} (checksums in {})",
            count(summary.files.len(), "part"),
            summary
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            airlock::parts::sidecar_path(&args.output).display()
        ));
    }
    for r in &summary.records {
        let Some(u) = &r.upstream else { continue };
        if u.fetched_from != r.source {
            err(&format!("{}: fetched from {}", r.source, u.fetched_from));
        }
        if let Some(c) = &u.conversion {
            err(&format!(
                "{}: converted {} ({}) to {} ({}) for Docker 1.12-17.03{}",
                r.source,
                u.digest,
                Escaped(&u.media_type),
                r.digest,
                r.media_type,
                if c.dropped.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", {} left out",
                        count_as(
                            c.dropped.len(),
                            "non-image index entry",
                            "non-image index entries"
                        )
                    )
                }
            ));
        }
    }
    if summary.omitted_blobs > 0 {
        err(&format!(
            "delta bundle: {} ({}) the base carries {} left out",
            count(summary.omitted_blobs, "blob"),
            human_bytes(summary.omitted_bytes),
            was_were(summary.omitted_blobs)
        ));
    }
    if summary.failures.is_empty() {
        return exit::OK;
    }
    err(&format!(
        "error: {} could not be fetched and {} NOT in the bundle (--keep-going):",
        count(summary.failures.len(), "image"),
        is_are(summary.failures.len())
    ));
    for line in airlock::pack::failure_lines(&summary.failures) {
        err(&format!("  {}", Escaped(&line)));
    }
    exit::PARTIAL
}
