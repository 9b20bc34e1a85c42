//! `airlock pack`: fetch every image into the local cache, then write one bundle.
//!
//! 1. Resolve: find each image at its places with `HEAD` (pins checked), stop if a
//!    registry's pull allowance is too small (`locate`), then read each image's manifests (from
//!    the cache, or fetched by digest; `sources`) and convert them for Docker 1.12–17.03 unless
//!    `--keep-digests` (`resolve`), in parallel.
//! 2. Fetch: download every distinct blob once into the [`Cache`], verified while it streams;
//!    blobs already cached are checked, not downloaded.
//! 3. Write: stream the bundle from the cache to a temporary file beside the output, fsync,
//!    rename. Nothing under the final name is ever incomplete. When every image resolved, the
//!    writing runs while the downloads do ([`fetch`] posts each blob as it lands).
//!
//! With `--no-cache` ([`CacheMode::Transient`]) the cache is a temporary directory beside the
//! output: downloads stay within [`LOOKAHEAD`] bytes of the writer, and each blob is deleted as
//! soon as it is in the bundle, before the kernel writes it back. Only the bundle reaches the
//! disk, which at 2.6 GB made pack 1.6x faster on a disk-bound host.

mod bounds;
mod fetch;
mod locate;
mod pull_limit;
mod resolve;
mod sources;
mod write;

pub use locate::AllowanceExceeded;
pub use pull_limit::failure_lines;

pub use write::estimate_bundle;

use fetch::{fetch_all, Board, FetchStats, Window};
use write::{check_space, write_layout, Layout};

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::bundle::format::{Failure, ImageRecord, Request};
use crate::bundle::writer::WriteOptions;
use crate::cache::{Cache, CacheError};
use crate::delta::DeltaBase;
use crate::digest::Digest;
use crate::manifest::{BlobRef, Platform};
use crate::parts;
use crate::progress::{Phase, Reporter};
use crate::reference::Reference;
use crate::registry::Client;
use crate::safe_write::{own_sibling, sibling_prefix};

/// One image to pack, with where it goes in the private registry.
#[derive(Debug, Clone)]
pub struct PlannedImage {
    pub reference: Reference,
    /// `repository:tag` in the private registry.
    pub target: String,
    pub alt_targets: Vec<String>,
    pub group: String,
    /// Where to fetch it from, in order ([`crate::upstream::places`]); empty means the
    /// reference itself.
    pub places: Vec<Reference>,
    /// The digest its tag must resolve to, when a pin table gives one.
    pub pin: Option<Digest>,
}

impl PlannedImage {
    /// An image fetched from its own reference only, with no pin.
    pub fn new(reference: Reference, target: &str, group: &str) -> PlannedImage {
        PlannedImage {
            reference,
            target: target.to_string(),
            alt_targets: vec![],
            group: group.to_string(),
            places: vec![],
            pin: None,
        }
    }
}

/// Which platforms of a multi-platform image to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Platforms {
    /// The platform manifest matching this platform is stored under the tag.
    One(Platform),
    /// Several platforms: multi-platform images keep their whole index and every platform,
    /// byte for byte (a registry refuses an index whose platforms are missing), once each
    /// asked platform is found in it.
    Several(Vec<Platform>),
    /// The index and every platform, byte for byte.
    All,
}

/// Options of a pack run.
#[derive(Debug, Clone)]
pub struct PackOptions {
    pub output: PathBuf,
    pub cache: CacheMode,
    /// Parallel downloads.
    pub jobs: usize,
    pub platforms: Platforms,
    /// Write a bundle of what could be fetched even when some images failed.
    pub keep_going: bool,
    pub write: WriteOptions,
    /// `SOURCE_DATE_EPOCH`, recorded as `created`.
    pub created: Option<u64>,
    /// `--split`: write parts of at most this many bytes instead of one file.
    pub split: Option<u64>,
    /// `--base` / `--base-registry-inventory`: write a delta bundle without these blobs.
    pub base: Option<DeltaBase>,
    /// `--keep-digests`: store every manifest exactly as upstream served it (OCI and schema 1
    /// included) instead of converting it for Docker 1.12–17.03.
    pub keep_digests: bool,
}

/// Where downloads go before they are written into the bundle.
#[derive(Debug, Clone)]
pub enum CacheMode {
    /// A lasting cache in this directory: blobs stay for the next pack, and an interrupted
    /// pack resumes from it.
    Keep(PathBuf),
    /// `--no-cache`: a temporary cache beside the output, at most `lookahead` bytes
    /// ([`LOOKAHEAD`] from the command line) ahead of the writer; each blob is removed once
    /// written, and the directory at the end.
    Transient { lookahead: u64 },
}

/// How far downloads may run ahead of the writer with [`CacheMode::Transient`].
pub const LOOKAHEAD: u64 = 256 << 20;

/// What a pack did.
#[derive(Debug, Clone)]
pub struct PackSummary {
    pub images: usize,
    pub failures: Vec<Failure>,
    pub blobs: u64,
    /// Bytes of every image added up (shared blobs counted per image).
    pub bytes_summed: u64,
    /// Bytes of distinct blobs.
    pub bytes_dedup: u64,
    /// Bytes downloaded in this run (the rest came from the cache).
    pub bytes_downloaded: u64,
    pub blobs_from_cache: u64,
    pub bundle_size: u64,
    /// sha256 of the whole bundle stream (all parts concatenated).
    pub bundle_sha256: Digest,
    /// The files written: the bundle, or its parts.
    pub files: Vec<PathBuf>,
    /// What bundle.json records of each image (where it came from, what was converted).
    pub records: Vec<ImageRecord>,
    /// Configs and layers left out of a delta bundle, and their bytes.
    pub omitted_blobs: u64,
    pub omitted_bytes: u64,
    pub elapsed: Duration,
}

/// Why a pack failed.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("{} of {} could not be fetched:\n{}", .failures.len(), crate::units::count(*.total, "image"), list_failures(.failures))]
    ImagesFailed {
        failures: Vec<Failure>,
        total: usize,
    },
    #[error("nothing to pack: the image list is empty")]
    Empty,
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("not enough space on the file system of {}: the bundle needs about {needed} bytes, {available} are available", .dir.display())]
    NoSpace {
        dir: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("no space left on the file system of {} while writing {}; nothing was left under that name", .dir.display(), .path.display())]
    Full {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("measuring the free space of {}", .dir.display())]
    Measure {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} already exists: move the parts of the earlier pack away first (airlock never deletes parts)", .path.display())]
    PartsExist { path: PathBuf },
    #[error(transparent)]
    Split(crate::parts::PartsError),
    #[error("{second} and {first} would both be pushed to {target}, one over the other; pack them into separate bundles, or leave one out")]
    Collision {
        target: String,
        first: String,
        second: String,
    },
    #[error("the bundle would not be readable: {reason}")]
    Limit { reason: String },
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    /// A registry's pull allowance is smaller than what the pack needs from it.
    #[error(transparent)]
    Allowance(#[from] AllowanceExceeded),
    /// A blob the bundle is being written with could not be fetched (the full list of failed
    /// images follows once every download has ended).
    #[error("{}", .digest.describe(.error))]
    BlobFailed { digest: Digest, error: String },
}

fn list_failures(f: &[Failure]) -> String {
    failure_lines(f)
        .iter()
        .map(|l| format!("  {}", crate::escape::Escaped(l)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// An image after its manifests were fetched (and converted).
struct Resolved {
    record: ImageRecord,
    /// Where its blobs are fetched from.
    place: Reference,
    /// Manifests and indexes to store: (sha256 of the bytes, media type, raw bytes).
    manifests: Vec<(Digest, String, Vec<u8>)>,
    /// Configs and layers.
    blobs: Vec<BlobRef>,
    /// Which of `blobs` are configs (written before the layers).
    configs: Vec<Digest>,
    /// Configs airlock wrote itself (schema 1 conversions): written from memory, not fetched.
    generated: Vec<(Digest, Vec<u8>)>,
}

/// A distinct blob to fetch, and one place to fetch it from.
struct Wanted {
    blob: BlobRef,
    is_config: bool,
    registry: String,
    repository: String,
    images: BTreeSet<String>,
}

/// Packs `images` into one bundle at `opts.output`.
pub fn pack(
    client: &Client,
    images: &[PlannedImage],
    request: Request,
    opts: &PackOptions,
    reporter: &dyn Reporter,
) -> Result<PackSummary, PackError> {
    let started = Instant::now();
    if images.is_empty() {
        return Err(PackError::Empty);
    }
    bounds::check_plan(images)?;
    if opts.split.is_some() {
        let first = parts::part_path(&opts.output, 0);
        if first.exists() {
            return Err(PackError::PartsExist { path: first });
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .expect("building a thread pool");
    // A lasting cache is opened now: it holds manifests and diff IDs too.
    let keep_cache = match &opts.cache {
        CacheMode::Keep(dir) => Some(Cache::open(dir)?),
        CacheMode::Transient { .. } => None,
    };
    // 1. Resolve: locate (HEAD), check the pull allowance, then read and convert manifests.
    let (mut resolved, mut failures, resolve_downloads) =
        resolve_all(client, images, opts, keep_cache.as_ref(), &pool, reporter)?;
    // What readers would refuse fails here, before any download.
    bounds::check_resolved(&mut resolved, &mut failures)?;
    // 2. Fetch distinct blobs, after the free-space check.
    let plan = FetchPlan::of(&resolved, opts, reporter)?;
    // After the space check, which fails on a missing output directory: --no-cache must not
    // create one.
    let (cache, _transient_dir) = match keep_cache {
        Some(c) => (c, None),
        None => {
            let t = TransientDir::for_output(&opts.output).map_err(|source| {
                PackError::Cache(CacheError::Io {
                    path: transient_cache_dir(&opts.output),
                    source,
                })
            })?;
            (Cache::open(&t.0)?, Some(t))
        }
    };
    crate::interrupt::track_temp_dir(&cache.dir().join("tmp"));
    crate::interrupt::track_temp_dir(match opts.output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    });
    // 3. Write, while the downloads run when it can.
    let run = Run {
        client,
        cache: &cache,
        opts,
        reporter,
        plan: &plan,
    };
    let (written, layout, stats) =
        run.fetch_and_write(&resolved, failures, request, images.len())?;
    let (bundle_size, bundle_sha256, files) = written.0;
    Ok(PackSummary {
        images: layout.records.len(),
        failures: written.1,
        blobs: layout.blob_count(),
        bytes_summed: layout.bytes_summed,
        bytes_dedup: layout.bytes_dedup(),
        bytes_downloaded: stats.downloaded.into_inner() + resolve_downloads,
        blobs_from_cache: stats.from_cache.into_inner(),
        bundle_size,
        bundle_sha256,
        files,
        records: layout.records.clone(),
        omitted_blobs: layout.omitted.len() as u64,
        omitted_bytes: crate::space::total(layout.omitted.iter().map(|b| b.size))
            .unwrap_or(u64::MAX),
        elapsed: started.elapsed(),
    })
}

/// Step 1: every image located and resolved, in parallel: the resolved images, the failures,
/// and the bytes downloaded for manifests.
fn resolve_all(
    client: &Client,
    images: &[PlannedImage],
    opts: &PackOptions,
    keep_cache: Option<&Cache>,
    pool: &rayon::ThreadPool,
    reporter: &dyn Reporter,
) -> Result<(Vec<Resolved>, Vec<Failure>, u64), PackError> {
    reporter.phase(Phase::Resolve, 0);
    let limits = pull_limit::PullLimits::default();
    let located: Vec<Result<locate::Located, Failure>> = pool.install(|| {
        images
            .par_iter()
            .with_max_len(1)
            .map(|plan| {
                locate::locate(client, plan, &limits).map_err(|e| Failure {
                    source: plan.reference.to_string(),
                    error: crate::error_chain(e.as_ref()),
                })
            })
            .collect()
    });
    crate::interrupt::check()?;
    let mut failures = Vec::new();
    let mut found = Vec::new();
    for l in located {
        match l {
            Ok(l) => found.push(l),
            Err(f) => failures.push(f),
        }
    }
    let pulls = std::sync::atomic::AtomicU64::new(0);
    let resolve_downloads = std::sync::atomic::AtomicU64::new(0);
    let sources = sources::Sources {
        client,
        cache: keep_cache,
        pulls: &pulls,
        downloaded: &resolve_downloads,
        limits: &limits,
    };
    locate::check_allowance(
        keep_cache,
        &|place, digest| sources.manifest(place, digest).ok(),
        &mut found,
        &opts.platforms,
        opts.keep_digests,
    )?;
    let results: Vec<Result<Resolved, Failure>> = pool.install(|| {
        found
            .par_iter()
            .with_max_len(1)
            .map(|l| {
                let r = resolve::resolve(&sources, l, &opts.platforms, opts.keep_digests).map_err(
                    |e| Failure {
                        source: l.plan.reference.to_string(),
                        error: crate::error_chain(e.as_ref()),
                    },
                );
                if let Ok(r) = &r {
                    let mut line = format!(
                        "resolved {} {} (from {})",
                        r.record.source, r.record.digest, r.place
                    );
                    if !l.misses.is_empty() {
                        line.push_str(&format!("; not at {}", l.misses.join(", ")));
                    }
                    reporter.item(&line);
                }
                r
            })
            .collect()
    });
    reporter.finish_phase(Phase::Resolve);
    crate::interrupt::check()?;
    let mut resolved = Vec::new();
    for r in results {
        match r {
            Ok(r) => resolved.push(r),
            Err(f) => failures.push(f),
        }
    }
    Ok((resolved, failures, resolve_downloads.into_inner()))
}

/// What step 2 fetches: every distinct config and layer once, from one place.
struct FetchPlan {
    /// Configs airlock wrote (schema 1 conversions): never fetched.
    generated: BTreeMap<Digest, Vec<u8>>,
    wanted: BTreeMap<Digest, Wanted>,
    /// Images whose descriptors name one digest with two sizes, and why.
    size_conflicts: BTreeMap<String, String>,
    /// Manifests, written from their bytes (never fetched as blobs).
    manifests: BTreeSet<Digest>,
    /// Blobs to fetch, the base's left out.
    total_fetch: u64,
    /// With `--no-cache`, how far downloads may run ahead of the writer.
    lookahead: Option<u64>,
}

impl FetchPlan {
    /// The distinct blobs of `resolved`, and the free-space check for the bundle they make.
    fn of(
        resolved: &[Resolved],
        opts: &PackOptions,
        reporter: &dyn Reporter,
    ) -> Result<FetchPlan, PackError> {
        let lookahead = match opts.cache {
            CacheMode::Transient { lookahead } => Some(lookahead),
            CacheMode::Keep(_) => None,
        };
        // Configs airlock wrote are never fetched.
        let generated: BTreeMap<Digest, Vec<u8>> = resolved
            .iter()
            .flat_map(|r| r.generated.iter().cloned())
            .collect();
        let wanted = wanted_blobs(resolved, &generated);
        let size_conflicts = size_conflicts(resolved, &wanted, &generated);
        let manifests: BTreeSet<Digest> = resolved
            .iter()
            .flat_map(|r| r.manifests.iter().map(|(d, _, _)| d.clone()))
            .collect();
        let mut plan = FetchPlan {
            generated,
            wanted,
            size_conflicts,
            manifests,
            total_fetch: 0,
            lookahead,
        };
        plan.check_space(resolved, opts, reporter)?;
        Ok(plan)
    }

    /// True for a blob a delta leaves out (and so never downloads): its base carries it.
    fn omit(&self, opts: &PackOptions, d: &Digest) -> bool {
        opts.base.as_ref().is_some_and(|b| b.blobs.contains_key(d))
    }

    /// The bundle's size, estimated, against the free space of the output's file system.
    fn check_space(
        &mut self,
        resolved: &[Resolved],
        opts: &PackOptions,
        reporter: &dyn Reporter,
    ) -> Result<(), PackError> {
        // Written: the three documents, each manifest once, and each blob that is not a
        // manifest and not left out.
        let written = self
            .wanted
            .keys()
            .filter(|d| !self.omit(opts, d) && !self.manifests.contains(*d))
            .count();
        bounds::check_entries(3 + (self.manifests.len() + written) as u64)?;
        let mut entries = 3 + self.wanted.len() as u64 + self.manifests.len() as u64;
        // Sizes come from the registries: added up checked, as two layers of 2^63 bytes wrap
        // to 0.
        let fetched_sizes = self
            .wanted
            .iter()
            .filter(|(d, _)| !self.omit(opts, d))
            .map(|(_, w)| w.blob.size);
        self.total_fetch = crate::space::total(fetched_sizes).ok_or_else(|| PackError::Limit {
            reason: "the images' blobs add up to more than 2^64 bytes: a registry declares an impossible size".into(),
        })?;
        let manifest_bytes = resolved
            .iter()
            .flat_map(|r| &r.manifests)
            .map(|(d, _, raw)| (d, raw.len() as u64))
            .collect::<BTreeMap<_, _>>();
        // Configs airlock wrote are written from memory (bounded by the manifest cap each).
        entries += self.generated.len() as u64;
        let written = self.generated.values().map(|raw| raw.len() as u64);
        let estimate = crate::space::total(manifest_bytes.into_values().chain(written))
            .and_then(|m| m.checked_add(self.total_fetch))
            .ok_or_else(|| PackError::Limit {
                reason: "the images add up to more than 2^64 bytes".into(),
            })?;
        // --no-cache keeps its downloads beside the output: at most the look-ahead plus the
        // blob that crosses it.
        let transient_peak = match self.lookahead {
            Some(ahead) => {
                let largest = self.wanted.values().map(|w| w.blob.size).max().unwrap_or(0);
                estimate.min(ahead.saturating_add(largest))
            }
            None => 0,
        };
        check_space(
            &opts.output,
            estimate_bundle(estimate, entries),
            transient_peak,
            opts.split,
            reporter,
        )
    }

    /// Downloads in the order the bundle is written (configs, then layers by digest), so the
    /// writer can follow them closely. A blob that is also a manifest is written from the
    /// manifest's bytes: never fetched (with --no-cache the writer would never release it
    /// from the window).
    fn order(&self, opts: &PackOptions) -> Vec<&Wanted> {
        let mut order: Vec<&Wanted> = self
            .wanted
            .iter()
            .filter(|(d, _)| !self.omit(opts, d) && !self.manifests.contains(*d))
            .map(|(_, w)| w)
            .collect();
        order.sort_by_key(|w| !w.is_config);
        order
    }
}

/// Every distinct config and layer of `resolved` but the generated ones, with one place to
/// fetch it from and the images that use it.
fn wanted_blobs(
    resolved: &[Resolved],
    generated: &BTreeMap<Digest, Vec<u8>>,
) -> BTreeMap<Digest, Wanted> {
    let mut wanted: BTreeMap<Digest, Wanted> = BTreeMap::new();
    for r in resolved {
        for b in r
            .blobs
            .iter()
            .filter(|b| !generated.contains_key(&b.digest))
        {
            let w = wanted.entry(b.digest.clone()).or_insert_with(|| Wanted {
                blob: b.clone(),
                is_config: false,
                registry: r.place.registry().to_string(),
                repository: r.place.repository().to_string(),
                images: BTreeSet::new(),
            });
            w.images.insert(r.record.source.clone());
        }
        for config in &r.configs {
            if let Some(w) = wanted.get_mut(config) {
                w.is_config = true;
            }
        }
    }
    wanted
}

/// Two descriptors that name one digest with different sizes cannot both be right: the
/// images that name it otherwise than the first, and why.
fn size_conflicts(
    resolved: &[Resolved],
    wanted: &BTreeMap<Digest, Wanted>,
    generated: &BTreeMap<Digest, Vec<u8>>,
) -> BTreeMap<String, String> {
    let mut conflicts: BTreeMap<String, String> = BTreeMap::new();
    for r in resolved {
        for b in r
            .blobs
            .iter()
            .filter(|b| !generated.contains_key(&b.digest))
        {
            let w = &wanted[&b.digest];
            if w.blob.size != b.size {
                conflicts.insert(
                    r.record.source.clone(),
                    format!(
                        "blob {} is declared with {} bytes here and {} bytes in {}",
                        b.digest,
                        b.size,
                        w.blob.size,
                        w.images.iter().next().cloned().unwrap_or_default()
                    ),
                );
            }
        }
    }
    conflicts
}

/// Step 3: the downloads and the bundle.
struct Run<'a> {
    client: &'a Client,
    cache: &'a Cache,
    opts: &'a PackOptions,
    reporter: &'a dyn Reporter,
    plan: &'a FetchPlan,
}

/// The bundle written (size, sha256, files) and the failures it records.
type Written = ((u64, Digest, Vec<PathBuf>), Vec<Failure>);

impl Run<'_> {
    /// Fetches every blob and writes the bundle. When every image resolved and --keep-going
    /// cannot drop any (which would change bundle.json, the third entry), the bundle is
    /// written while the downloads run: each blob as soon as it is in the cache, and a failed
    /// download stops the writer before its temp file is renamed. Otherwise the downloads
    /// still run (filling the cache for a rerun) before anything is written.
    fn fetch_and_write(
        &self,
        resolved: &[Resolved],
        mut failures: Vec<Failure>,
        request: Request,
        total: usize,
    ) -> Result<(Written, Layout, FetchStats), PackError> {
        let (opts, plan) = (self.opts, self.plan);
        let stats = FetchStats::default();
        let board = Board::default();
        let order = plan.order(opts);
        let overlap = !opts.keep_going && plan.size_conflicts.is_empty() && failures.is_empty();
        if plan.lookahead.is_some() && !overlap && !opts.keep_going {
            // Downloads would only fill a directory that is about to be deleted.
            split_failed(
                resolved,
                &BTreeMap::new(),
                &plan.size_conflicts,
                &mut failures,
            );
            return Err(PackError::ImagesFailed { failures, total });
        }
        self.reporter.phase(Phase::Download, plan.total_fetch);
        // The download bar ends with the downloads, while the writer may still be at work.
        let fetch = |abort: &AtomicBool, window: Option<&Window>| {
            fetch_all(
                self.client,
                self.cache,
                &order,
                opts.jobs.max(1),
                self.reporter,
                &board,
                &stats,
                abort,
                window,
            );
            self.reporter.finish_phase(Phase::Download);
        };
        let omit = |d: &Digest| plan.omit(opts, d);
        let mut written = None;
        if overlap {
            let all: Vec<&Resolved> = resolved.iter().collect();
            let layout = Layout::of(&all, &plan.wanted, &plan.generated, &omit);
            let abort = AtomicBool::new(false);
            let window = plan.lookahead.map(|ahead| Window::new(&order, ahead));
            written = Some(std::thread::scope(|s| {
                s.spawn(|| fetch(&abort, window.as_ref()));
                let ready = |d: &Digest| {
                    if let Some(w) = &window {
                        w.reached(d);
                    }
                    board.wait(d)
                };
                // However the writer ends (done, failed or panicking), no download may stay
                // parked in the window, or the scope would never end.
                let _release = window.as_ref().map(Window::releaser);
                let r = self.write(&layout, &failures, request.clone(), &ready);
                if r.is_err() {
                    // Stop dispatching; downloads in flight finish into the cache for a rerun.
                    abort.store(true, Ordering::SeqCst);
                }
                (r, layout)
            }));
        } else {
            fetch(&AtomicBool::new(false), None);
        }
        crate::interrupt::check()?;
        let blob_failures = board.failures();
        let ok_images = split_failed(
            resolved,
            &blob_failures,
            &plan.size_conflicts,
            &mut failures,
        );
        if !failures.is_empty() && (!opts.keep_going || ok_images.is_empty()) {
            return Err(PackError::ImagesFailed { failures, total });
        }
        let (bundle, layout) = match written {
            Some((r, layout)) => (r?, layout),
            None => {
                // Now that every download is done.
                let layout = Layout::of(&ok_images, &plan.wanted, &plan.generated, &omit);
                let ready = |_: &Digest| Ok(());
                (self.write(&layout, &failures, request, &ready)?, layout)
            }
        };
        Ok(((bundle, failures), layout, stats))
    }

    fn write(
        &self,
        layout: &Layout,
        failures: &[Failure],
        request: Request,
        ready: &(dyn Fn(&Digest) -> Result<(), String> + Sync),
    ) -> Result<(u64, Digest, Vec<PathBuf>), PackError> {
        write_layout(
            self.cache,
            layout,
            failures,
            request,
            self.opts,
            ready,
            self.reporter,
        )
    }
}

/// Adds to `failures` (and sorts it) every image with a failed blob or a size conflict: such an
/// image fails as a whole. Returns the others.
fn split_failed<'a>(
    resolved: &'a [Resolved],
    blob_failures: &BTreeMap<Digest, String>,
    size_conflicts: &BTreeMap<String, String>,
    failures: &mut Vec<Failure>,
) -> Vec<&'a Resolved> {
    let mut ok_images = Vec::new();
    for r in resolved {
        let bad: Vec<String> = r
            .blobs
            .iter()
            .filter_map(|b| blob_failures.get(&b.digest).map(|e| b.digest.describe(e)))
            .chain(size_conflicts.get(&r.record.source).cloned())
            .collect();
        if bad.is_empty() {
            ok_images.push(r);
        } else {
            failures.push(Failure {
                source: r.record.source.clone(),
                error: bad.join("; "),
            });
        }
    }
    failures.sort_by(|a, b| a.source.cmp(&b.source));
    ok_images
}

/// The temporary cache of `--no-cache`: beside the output (so on its file system, counted by
/// the same free-space check), named after this process.
fn transient_cache_dir(output: &Path) -> PathBuf {
    own_sibling(output, TRANSIENT_KIND)
}

/// The kind of hidden sibling the `--no-cache` directory is: `.NAME.blobs-PID`.
const TRANSIENT_KIND: &str = "blobs";

/// Removes the `--no-cache` directories beside `output` that a pack killed outright
/// (SIGKILL, a power cut) left behind: those whose process no longer runs.
fn remove_stale_transient_dirs(output: &Path) {
    let prefix = sibling_prefix(output, TRANSIENT_KIND);
    let Ok(rd) = std::fs::read_dir(crate::space::output_dir(output)) else {
        return;
    };
    for e in rd.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = file
            .strip_prefix(&prefix)
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: signal 0 only asks whether the process exists.
        let gone = pid > 0
            && unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone && e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Removes the `--no-cache` directory when the pack ends, whichever way, and on a forced stop.
struct TransientDir(PathBuf);

impl TransientDir {
    /// Creates the `--no-cache` directory for `output` (its directory must exist) and takes
    /// charge of it, after removing what packs of the same output killed outright left.
    fn for_output(output: &Path) -> std::io::Result<Self> {
        remove_stale_transient_dirs(output);
        let dir = transient_cache_dir(output);
        std::fs::create_dir(&dir)?;
        crate::interrupt::track_temp_tree(&dir);
        Ok(TransientDir(dir))
    }
}

impl Drop for TransientDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
