//! Runs the subcommands: turns command-line values into library calls and prints results.
//! Printing happens here and in `main.rs` only; the library reports through return values
//! and the `progress` reporter.

use std::io::Read as _;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};

use crate::bundle::format::{ImageListSource, Request};
use crate::bundle::reader::BundleReader;
use crate::bundle::writer::WriteOptions;
use crate::cache::Cache;
use crate::catalog::{self, Group, Selection};
use crate::cli::{
    Cli, Command, InspectArgs, ListArgs, OutputFormat, PackArgs, RegistryArgs, SelectArgs,
    UnpackArgs, UpstreamArgs, VerifyArgs,
};
use crate::digest::Digest;
use crate::pack::{CacheMode, PackOptions, PlannedImage, Platforms};
use crate::progress::{self, human_bytes, Reporter as _};
use crate::registry::{self, Credentials, Endpoint};
use crate::unpack::UnpackOptions;
use crate::upstream::{self, Pins, Relocation};

/// Runs one command; the returned code is the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::List(args) => list(args),
        Command::Pack(args) => pack(args),
        Command::Inspect(args) => inspect(args),
        Command::Verify(args) => verify(args),
        Command::Unpack(args) => unpack(args),
        Command::Inventory(args) => inventory(args),
    }
}

/// A bundle opened for reading: through its seek table, or as one sequential stream (a bundle
/// recompressed without the table, or standard input given as `-`).
enum Opened {
    Seekable(BundleReader),
    /// The stream, and for a file the reason it has no seek table (said when the sequential
    /// read fails too).
    Stream(Box<dyn std::io::Read>, Option<String>),
}

fn open_any(path: &std::path::Path) -> Result<Opened> {
    if path == std::path::Path::new("-") {
        return Ok(Opened::Stream(Box::new(std::io::stdin().lock()), None));
    }
    match crate::parts::open_bundle(path) {
        Ok((r, _)) => Ok(Opened::Seekable(r)),
        Err(crate::parts::PartsError::Bundle(
            e @ crate::bundle::reader::BundleError::NoSeekTable { len, .. },
        )) => {
            if len == 0 {
                return Err(e.into());
            }
            let f =
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
            Ok(Opened::Stream(
                Box::new(std::io::BufReader::with_capacity(1 << 20, f)),
                Some(e.to_string()),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// The error of a sequential read that failed, saying first why the file had no seek table.
fn sequential_failed(e: anyhow::Error, why: Option<String>) -> anyhow::Error {
    match why {
        Some(why) => e.context(format!(
            "{why}; read as a plain zstd stream instead, it fails too"
        )),
        None => e,
    }
}

fn verify(args: VerifyArgs) -> Result<i32> {
    let reporter = progress::Stderr::new(args.quiet || args.output == OutputFormat::Json);
    if let Opened::Stream(src, why) = open_any(&args.bundle)? {
        reporter.warn("the bundle has no seek table: reading it in one sequential pass");
        let report = crate::stream::verify_stream(src, &args.bundle, &reporter)
            .map_err(|e| sequential_failed(e.into(), why))?;
        return finish_verify(&args, report);
    }
    let side = crate::parts::sidecar_path(&crate::parts::base_name(&args.bundle));
    let opened = crate::parts::open_bundle(&args.bundle);
    // The checksum file is checked alongside the bundle: file hashes on one side, the bundle's
    // own digests on the other.
    let (report, sidecar) = rayon::join(
        || {
            opened
                .as_ref()
                .ok()
                .map(|(r, _)| crate::verify::verify(r, &reporter))
        },
        || crate::sidecar::check(&side),
    );
    let sidecar = sidecar.with_context(|| format!("reading {}", side.display()))?;
    let (mut report, _): (crate::verify::VerifyReport, _) = match (report, opened) {
        (Some(r), Ok(o)) => (r?, o),
        (_, Err(e)) => {
            // The bundle cannot even be opened: still say which file differs from its checksum.
            if let Some(problems) = sidecar.filter(|p| !p.is_empty()) {
                eprintln!(
                    "error: {} differs from {}:",
                    args.bundle.display(),
                    side.display()
                );
                for p in &problems {
                    eprintln!("  {p}");
                }
            }
            return Err(e.into());
        }
        (None, Ok(_)) => unreachable!("verified whenever the bundle opened"),
    };
    if let Some(problems) = sidecar {
        report.problems.extend(problems.into_iter().map(|mut p| {
            p.subject = format!("file {}", p.subject);
            p
        }));
    }
    finish_verify(&args, report)
}

/// Prints a verify report; the exit code.
fn finish_verify(args: &VerifyArgs, report: crate::verify::VerifyReport) -> Result<i32> {
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if report.is_ok() {
        if args.output == OutputFormat::Text {
            println!(
                "{}: OK: {} images, {} blobs, {} verified in {:.1}s",
                args.bundle.display(),
                report.images,
                report.blobs,
                human_bytes(report.bytes),
                report.elapsed.as_secs_f64()
            );
            if report.omitted_blobs > 0 {
                println!(
                    "delta bundle: {} blobs ({}) are omitted; the target registry must already hold them (unpack checks)",
                    report.omitted_blobs,
                    human_bytes(report.omitted_bytes)
                );
            }
            for c in &report.converted {
                println!(
                    "converted at pack time for Docker 1.12-17.03: {} ({} {} -> {} {})",
                    c.source, c.upstream_media_type, c.upstream_digest, c.media_type, c.digest
                );
            }
        }
        return Ok(0);
    }
    eprintln!(
        "error: {} is damaged: {} problems",
        args.bundle.display(),
        report.problems.len()
    );
    for p in &report.problems {
        eprintln!("  {p}");
    }
    eprintln!("  hint: copy the bundle again from the source (sha256sum -c bundle.tar.zst.sha256 tells whether the copy differs)");
    Ok(1)
}

fn unpack(args: UnpackArgs) -> Result<i32> {
    let (registry, endpoint) = if args.registry.contains("://") {
        let e = Endpoint::parse(&args.registry)?;
        (e.host.clone(), Some(e))
    } else {
        (args.registry.trim_end_matches('/').to_string(), None)
    };
    if registry.is_empty() || registry.contains('/') {
        bail!(
            "--registry {:?}: give host[:port] or http(s)://host[:port]; use --prefix for a path",
            args.registry
        );
    }
    let prefix = match args.prefix.trim_matches('/') {
        "" => String::new(),
        p => format!("{p}/"),
    };
    let opened = open_any(&args.bundle)?;
    let mut opts = registry_options(&args.registry_args, Some(&registry))?;
    if let Some(e) = endpoint {
        opts.endpoints.push((registry.clone(), e));
    }
    let client = registry::Client::new(opts)?;
    let reporter = progress::Stderr::new(args.quiet || args.output == OutputFormat::Json);
    let uopts = UnpackOptions {
        registry: registry.clone(),
        prefix,
        jobs: args.jobs.clamp(1, 64),
        dry_run: args.dry_run,
    };
    let result: Result<_> = match opened {
        Opened::Seekable(reader) => client.observe(&reporter, || {
            crate::unpack::unpack(&client, &reader, &uopts, &reporter).map_err(Into::into)
        }),
        Opened::Stream(src, why) => {
            if why.is_some() && !uopts.dry_run {
                // A file can be read twice: check all of it before the first byte moves, as
                // the seek table allows for a seekable bundle. (Standard input cannot; its
                // images are still only pushed once all their blobs arrived intact.)
                reporter.warn("the bundle has no seek table: checking it in one sequential pass before pushing");
                let f = std::fs::File::open(&args.bundle)
                    .with_context(|| format!("opening {}", args.bundle.display()))?;
                let report = crate::stream::verify_stream(
                    std::io::BufReader::with_capacity(1 << 20, f),
                    &args.bundle,
                    &reporter,
                )
                .map_err(|e| sequential_failed(e.into(), why.clone()))?;
                if !report.is_ok() {
                    let list: Vec<String> =
                        report.problems.iter().map(|p| format!("  {p}")).collect();
                    bail!(
                        "{} is damaged; nothing was pushed:\n{}",
                        args.bundle.display(),
                        list.join("\n")
                    );
                }
            }
            reporter.warn("the bundle has no seek table: reading it in one sequential pass");
            client
                .observe(&reporter, || {
                    crate::stream::unpack_stream(&client, src, &args.bundle, &uopts, &reporter)
                })
                .map_err(|e| match e {
                    crate::unpack::UnpackError::Bundle(b) => sequential_failed(b.into(), why),
                    e => e.into(),
                })
        }
    };
    let (mappings, report) =
        result.with_context(|| format!("unpacking {} into {registry}", args.bundle.display()))?;
    let Some(report) = report else {
        // --dry-run
        if args.output == OutputFormat::Json {
            println!("{}", serde_json::to_string_pretty(&mappings)?);
        } else {
            println!(
                "would push {} images to {registry} (nothing was pushed):",
                mappings.len()
            );
            for m in &mappings {
                println!(
                    "{}
    -> {}  ({})",
                    m.source,
                    m.targets.join("\n    -> "),
                    m.digest
                );
            }
        }
        return Ok(0);
    };
    if args.output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", crate::app::render_unpack(&report));
    }
    let failed = report.failed();
    if failed > 0 {
        eprintln!("error: {failed} of {} images were not pushed (see above); rerun the same command to retry them", report.images.len());
        return Ok(1);
    }
    Ok(0)
}

/// The closing report of `unpack`.
pub fn render_unpack(r: &crate::unpack::UnpackReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for i in &r.images {
        let status = match i.status {
            crate::unpack::Status::Pushed => "pushed",
            crate::unpack::Status::AlreadyPresent => "already present",
            crate::unpack::Status::Failed => "FAILED",
        };
        let _ = writeln!(s, "{status:16} {}", i.source);
        for t in &i.targets {
            let _ = writeln!(s, "{:16}   -> {t}", "");
        }
        let _ = writeln!(s, "{:16}   {}", "", i.digest);
        if let Some(from) = &i.converted_from {
            let _ = writeln!(s, "{:16}   converted at pack time from {from}", "");
        }
        if let Some(e) = &i.error {
            let _ = writeln!(s, "{:16}   error: {e}", "");
        }
    }
    let _ = writeln!(
        s,
        "\n{} images into {}: {} blobs uploaded ({}), {} mounted, {} already there, in {:.1}s",
        r.images.len(),
        r.registry,
        r.blobs_uploaded,
        human_bytes(r.bytes_uploaded),
        r.blobs_mounted,
        r.blobs_present,
        r.elapsed.as_secs_f64()
    );
    if r.retries > 0 {
        let _ = writeln!(
            s,
            "{} requests were retried after transient failures",
            r.retries
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
            "{converted} images were converted at pack time to Docker schema 2 for Docker 1.12-17.03 (their digests differ from upstream's; `airlock inspect` says why)"
        );
    }
    s.push_str(&crate::rancher::render(
        r.rancher_server.as_ref(),
        &r.rancher_settings,
    ));
    s
}

/// The `--relocate` rules and the pin table the flags ask for.
fn upstream_options(args: &UpstreamArgs) -> Result<(Vec<Relocation>, Pins)> {
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

fn pack(args: PackArgs) -> Result<i32> {
    let (relocations, pins) = upstream_options(&args.upstream)?;
    let places = |r: &crate::reference::Reference| -> Vec<crate::reference::Reference> {
        upstream::places(r, &relocations)
            .into_iter()
            .map(|p| p.reference)
            .collect()
    };
    let (planned, mut request): (Vec<PlannedImage>, Request) = match &args.images {
        Some(file) => {
            let refs = catalog::read_image_list(file)?;
            let content =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let planned = refs
                .into_iter()
                .map(|r| PlannedImage {
                    target: list_target(&r),
                    alt_targets: vec![],
                    group: "list".into(),
                    places: places(&r),
                    pin: pins.get(&r).cloned(),
                    reference: r,
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
            (planned, request)
        }
        None => {
            let sel = selection(&args.select)?;
            let mut selected = catalog::Selected::resolve(&sel)?;
            selected.with_upstream(&relocations, &pins);
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
            (planned, request)
        }
    };
    request.relocations = relocations.iter().map(|r| r.to_string()).collect();
    request.pins = Some(pins.source.clone());
    request.keep_digests = args.keep_digests;
    let mut asked = Vec::new();
    for p in &args.platform {
        let p: crate::manifest::Platform = p.parse()?;
        if !asked.contains(&p) {
            asked.push(p);
        }
    }
    let platforms = match (args.all_platforms, asked.len()) {
        (true, _) => Platforms::All,
        (false, 0) => Platforms::One(crate::manifest::Platform::linux_amd64()),
        (false, 1) => Platforms::One(asked.remove(0)),
        (false, _) => Platforms::Several(asked),
    };
    let created = source_date_epoch()?;
    let opts = PackOptions {
        output: args.output.clone(),
        cache: if args.no_cache {
            CacheMode::Transient {
                lookahead: crate::pack::LOOKAHEAD,
            }
        } else {
            CacheMode::Keep(args.cache.clone().unwrap_or_else(Cache::default_dir))
        },
        jobs: args.jobs.clamp(1, 64),
        platforms,
        keep_going: args.keep_going,
        write: WriteOptions {
            level: args.level,
            mtime: created.unwrap_or(0),
            ..WriteOptions::default()
        },
        created,
        split: args.split,
        base: match (&args.base, &args.base_registry_inventory) {
            (Some(b), _) => Some(crate::delta::from_bundle(b)?),
            (None, Some(i)) => Some(crate::delta::from_inventory(i)?),
            (None, None) => None,
        },
        keep_digests: args.keep_digests,
    };
    let client = registry::Client::new(registry_options(&args.registry, None)?)?;
    let reporter = progress::Stderr::new(args.quiet);
    let summary = client
        .observe(&reporter, || {
            crate::pack::pack(&client, &planned, request, &opts, &reporter)
        })
        .with_context(|| format!("packing {}", args.output.display()))?;
    let retries = client
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "packed {} images, {} blobs: {} summed, {} after dedup, {} downloaded ({} blobs from cache); bundle {} is {} (sha256 {}) in {:.1}s{}",
        summary.images,
        summary.blobs,
        human_bytes(summary.bytes_summed),
        human_bytes(summary.bytes_dedup),
        human_bytes(summary.bytes_downloaded),
        summary.blobs_from_cache,
        args.output.display(),
        human_bytes(summary.bundle_size),
        summary.bundle_sha256.hex(),
        summary.elapsed.as_secs_f64(),
        if retries > 0 { format!(", {retries} retries") } else { String::new() }
    );
    if summary.files.len() > 1 {
        eprintln!(
            "{} parts: {} (checksums in {})",
            summary.files.len(),
            summary
                .files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            crate::parts::sidecar_path(&args.output).display()
        );
    }
    for r in &summary.records {
        let Some(u) = &r.upstream else { continue };
        if u.fetched_from != r.source {
            eprintln!("{}: fetched from {}", r.source, u.fetched_from);
        }
        if let Some(c) = &u.conversion {
            eprintln!(
                "{}: converted {} ({}) to {} ({}) for Docker 1.12-17.03{}",
                r.source,
                u.digest,
                u.media_type,
                r.digest,
                r.media_type,
                if c.dropped.is_empty() {
                    String::new()
                } else {
                    format!(", {} non-image index entries left out", c.dropped.len())
                }
            );
        }
    }
    if summary.omitted_blobs > 0 {
        eprintln!(
            "delta bundle: {} blobs ({}) the base carries were left out",
            summary.omitted_blobs,
            human_bytes(summary.omitted_bytes)
        );
    }
    if !summary.failures.is_empty() {
        eprintln!(
            "error: {} images could not be fetched and are NOT in the bundle:",
            summary.failures.len()
        );
        for line in crate::pack::failure_lines(&summary.failures) {
            eprintln!("  {line}");
        }
        return Ok(1);
    }
    Ok(0)
}

fn inventory(args: crate::cli::InventoryArgs) -> Result<i32> {
    let (registry, endpoint) = if args.registry.contains("://") {
        let e = Endpoint::parse(&args.registry)?;
        (e.host.clone(), Some(e))
    } else {
        (args.registry.trim_end_matches('/').to_string(), None)
    };
    let mut opts = registry_options(&args.registry_args, Some(&registry))?;
    if let Some(e) = endpoint {
        opts.endpoints.push((registry.clone(), e));
    }
    let client = registry::Client::new(opts)?;
    let reporter = progress::Stderr::new(false);
    let inv = client
        .observe(&reporter, || {
            crate::inventory::collect(&client, &registry, args.jobs.clamp(1, 64))
        })
        .with_context(|| format!("taking the inventory of {registry}"))?;
    println!("{}", inv.render()?);
    Ok(0)
}

fn inspect(args: InspectArgs) -> Result<i32> {
    let (reader, _) = crate::parts::open_bundle(&args.bundle)?;
    let bundle = reader.bundle_manifest()?;
    match args.output {
        OutputFormat::Json => {
            println!("{}", serde_json::to_string_pretty(&bundle)?);
        }
        OutputFormat::Text => print!("{}", crate::bundle::render_inspect(&bundle)),
    }
    Ok(0)
}

/// Where an image from an `--images` list goes: its repository path and tag (or digest).
fn list_target(r: &crate::reference::Reference) -> String {
    match (r.tag(), r.digest()) {
        (Some(t), _) => format!("{}:{t}", r.repository()),
        (None, Some(d)) => format!("{}@{d}", r.repository()),
        (None, None) => format!("{}:latest", r.repository()),
    }
}

/// `SOURCE_DATE_EPOCH`, when set: the only wall-clock time a bundle may carry.
fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.trim().is_empty() => {
            Ok(Some(v.trim().parse().with_context(|| {
                format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds")
            })?))
        }
        _ => Ok(None),
    }
}

fn list(args: ListArgs) -> Result<i32> {
    if args.versions {
        print!("{}", crate::list::render_versions());
        return Ok(0);
    }
    let sel = selection(&args.select)?;
    let (relocations, pins) = upstream_options(&args.upstream)?;
    let mut selected = catalog::Selected::resolve(&sel)?;
    selected.with_upstream(&relocations, &pins);
    let out = match args.output {
        OutputFormat::Text => crate::list::render_text(&sel.version, &selected),
        OutputFormat::Json => crate::list::render_json(&sel.version, &selected),
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
        with_server: args.with_server,
    })
}

/// Builds registry client options from the command line, the environment and config.json.
///
/// `target` is the registry the credentials given on the command line are for (unpack's and
/// inventory's `--registry`); `None` for pack, where `--login` must name it.
pub fn registry_options(args: &RegistryArgs, target: Option<&str>) -> Result<registry::Options> {
    let defaults = registry::Options::default();
    let mut opts = registry::Options {
        insecure: args.insecure,
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
        ..defaults
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
        let mut password = String::new();
        std::io::stdin()
            .read_to_string(&mut password)
            .context("reading the password from standard input")?;
        let password = password.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            bail!("--password-stdin: standard input was empty; pipe the password in, e.g. `cat pw.txt | airlock ... --username {user} --password-stdin`");
        }
        if let Some((_, m)) = opts.endpoints.iter().find(|(r, e)| {
            registry::host_key(r) == registry::host_key(&host) && e.host != r.as_str()
        }) {
            eprintln!(
                "warning: --login {host}: requests for {host} go to the mirror {}, which gets only its own credentials (--login {} for it)",
                m.base(),
                m.host
            );
        }
        opts.credentials
            .insert(&host, Credentials::new(user.clone(), password));
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
