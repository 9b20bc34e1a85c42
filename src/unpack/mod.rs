//! `airlock unpack`: pushes every image of a bundle into the private registry, at the paths
//! Rancher expects, with the digests unchanged. One pipeline, whichever way the bundle is read
//! ([`BundleSource`]): through its seek table or in order (no seek table, or standard input);
//! the two differ only in how blob bytes arrive.
//!
//! Order of work:
//! 1. the contract ([`crate::bundle::contract`]): nothing is pushed from a damaged bundle;
//! 2. the target mapping ([`plan`]), refusing two images on one target;
//! 3. the registry ([`preflight`]): reachable, credentials accepted, pushing permitted;
//!    images already there (a rerun) skipped; schema 1 accepted where the bundle holds it; a
//!    delta bundle's omitted blobs found in the target;
//! 4. blobs ([`push`]), each once per target registry (HEAD first; a mount from a repository
//!    that already got it; else an upload, hashed while it streams), in parallel where the
//!    reader allows;
//! 5. manifests, only once every blob (and platform manifest) they reference is confirmed,
//!    as the exact bytes in the bundle; then every target checked by HEAD against the
//!    bundle's digest.

mod plan;
mod preflight;
mod push;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::bundle::contract;
use crate::bundle::format::ImageRecord;
use crate::bundle::reader::BundleError;
use crate::bundle::BundleSource;
use crate::digest::Digest;
use crate::problem::Problem;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{BlobOutcome, Client, RegistryError};

pub use plan::{plan, Mapping};

/// Options of an unpack run.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// The registry host (`reg.local`, `127.0.0.1:5000`).
    pub registry: String,
    /// A path prefix for every image (`project/`), Harbor-style; empty for none.
    pub prefix: String,
    pub jobs: usize,
    pub dry_run: bool,
}

/// The result for one image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pushed,
    AlreadyPresent,
    Failed,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageReport {
    pub source: String,
    pub targets: Vec<String>,
    pub digest: Digest,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For an image converted at pack time: what upstream served (`digest (media type)`).
    #[serde(rename = "convertedFrom", skip_serializing_if = "Option::is_none")]
    pub converted_from: Option<String>,
}

impl ImageReport {
    /// The report of `rec`, pushed to `targets`, before anything happened to it.
    pub fn new(rec: &ImageRecord, targets: &[Reference]) -> ImageReport {
        ImageReport {
            source: rec.source.clone(),
            targets: targets.iter().map(|t| t.to_string()).collect(),
            digest: rec.registry_digest().clone(),
            status: Status::AlreadyPresent,
            error: None,
            converted_from: rec
                .upstream
                .as_ref()
                .filter(|u| u.conversion.is_some())
                .map(|u| format!("{} ({})", u.digest, u.media_type)),
        }
    }
}

/// What unpack did.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnpackReport {
    pub registry: String,
    pub images: Vec<ImageReport>,
    pub blobs_uploaded: u64,
    pub blobs_mounted: u64,
    pub blobs_present: u64,
    pub bytes_uploaded: u64,
    /// Requests that were tried again after a transient failure.
    pub retries: u64,
    /// What to set in Rancher ([`crate::rancher::settings`]).
    #[serde(serialize_with = "crate::rancher::serialize_settings")]
    pub rancher_settings: Vec<(String, String)>,
    /// How to start the Rancher server, when the bundle holds its server group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rancher_server: Option<crate::rancher::ServerStart>,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl UnpackReport {
    pub fn failed(&self) -> usize {
        self.images
            .iter()
            .filter(|i| i.status == Status::Failed)
            .count()
    }
}

/// How the blobs got into the registry, counted as they go.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct BlobCounts {
    pub uploaded: u64,
    pub mounted: u64,
    pub present: u64,
    /// Bytes uploaded.
    pub bytes: u64,
}

impl BlobCounts {
    pub(crate) fn add(&mut self, outcome: BlobOutcome, size: u64) {
        match outcome {
            BlobOutcome::Uploaded => {
                self.uploaded += 1;
                self.bytes += size;
            }
            BlobOutcome::Mounted => self.mounted += 1,
            BlobOutcome::Present => self.present += 1,
        }
    }
}

/// Why unpack stopped before pushing any image.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("the bundle is damaged; {}:\n{}", if *.sent { "no image was pushed (blobs sent before the damage showed, read from standard input, are unreferenced)" } else { "nothing was pushed" }, list(.problems))]
    Structure { problems: Vec<Problem>, sent: bool },
    #[error("invalid target for {source_ref}: {reason}")]
    Target { source_ref: String, reason: String },
    #[error("{target} would receive two images: {first} and {second}; nothing was pushed")]
    Collision {
        target: String,
        first: String,
        second: String,
    },
    #[error("this is a delta bundle and {registry} lacks {} it relies on (unpack its base bundle there first); nothing was pushed:\n{}{}", crate::units::count(.missing.len(), "blob"), .missing.join("\n"), .unlisted.as_ref().map_or(String::new(), |e| format!("\n  (only the bundle's own repositories were searched: {registry} refused to list its other repositories: {e})")))]
    BaseMissing {
        registry: String,
        missing: Vec<String>,
        /// Why the registry's other repositories could not be searched.
        unlisted: Option<String>,
    },
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    #[error("cannot use registry {registry}; nothing was pushed")]
    Registry {
        registry: String,
        #[source]
        source: RegistryError,
    },
    #[error("{registry} does not store Docker schema 1 manifests ({}), and the bundle carries {} as schema 1 (packed with --keep-digests); nothing was pushed. Pack again without --keep-digests (airlock then converts it to schema 2, which every Docker engine pulls), or push to a registry that stores schema 1 (distribution 2.x with compatibility.schema1.enabled)", crate::escape::Escaped(.reason), .images.join(", "))]
    Schema1Unsupported {
        registry: String,
        images: Vec<String>,
        reason: String,
    },
}

fn list(p: &[Problem]) -> String {
    p.iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Unpacks the bundle `src` reads into `opts.registry`: the mapping, and the report (none
/// with `--dry-run`).
pub fn unpack(
    client: &Client,
    src: &mut dyn BundleSource,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
) -> Result<(Vec<Mapping>, Option<UnpackReport>), UnpackError> {
    let started = Instant::now();
    // 1. The contract.
    let mut checked = src.check()?;
    if !checked.problems.is_empty() {
        return Err(UnpackError::Structure {
            problems: checked.problems,
            sent: false,
        });
    }
    // 2. Where each image goes.
    let mappings = plan(&checked.manifest.images, &opts.registry, &opts.prefix)?;
    if opts.dry_run {
        if checked.entries.is_none() {
            // Standard input: the rest of the stream is read, nothing pushed, so a dry run
            // judges the whole bundle as a real one does.
            let entries = src.blobs(&BTreeMap::new(), opts.jobs, &|_, _| {})?;
            contract::complete(&mut checked, entries);
            if !checked.problems.is_empty() {
                return Err(UnpackError::Structure {
                    problems: checked.problems,
                    sent: false,
                });
            }
        }
        return Ok((mappings, None));
    }
    let targets: Vec<Vec<Reference>> = mappings.iter().map(|m| m.references.clone()).collect();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .expect("building a thread pool");
    // 3. The registry.
    let ready = preflight::run(client, &checked, &targets, &opts.registry, &pool)?;
    // 4. Blobs.
    let blobs = push::blobs(
        client,
        src,
        push::jobs(&checked, &targets, &ready.present),
        &ready.mount_source,
        opts,
        reporter,
        &pool,
    )?;
    crate::interrupt::check()?;
    if checked.entries.is_none() {
        // Standard input: its entries are all known only now.
        contract::complete(&mut checked, blobs.entries.clone());
        if !checked.problems.is_empty() {
            return Err(UnpackError::Structure {
                problems: checked.problems,
                sent: true,
            });
        }
    }
    // 5. Manifests.
    let images = push::manifests(
        client,
        &checked.images,
        &targets,
        &ready.present,
        &blobs,
        reporter,
        &pool,
    );
    let counts = blobs.counts;
    let (rancher_settings, rancher_server) = crate::rancher::advice(
        &checked.manifest.request,
        checked.images.iter().map(|i| &i.record),
        &opts.registry,
        &opts.prefix,
    );
    Ok((
        mappings,
        Some(UnpackReport {
            registry: opts.registry.clone(),
            rancher_settings,
            rancher_server,
            images,
            blobs_uploaded: counts.uploaded,
            blobs_mounted: counts.mounted,
            blobs_present: counts.present,
            bytes_uploaded: counts.bytes,
            retries: client
                .stats()
                .retries
                .load(std::sync::atomic::Ordering::Relaxed),
            elapsed: started.elapsed(),
        }),
    ))
}
