//! `airlock unpack`: pushes every image of a bundle into the private registry, at the paths
//! Rancher expects, with the digests unchanged.
//!
//! Order of work:
//! 1. structural check of the bundle (as `verify`, without hashing layers);
//! 2. the target mapping, refusing two images on one target;
//! 3. the registry: reachable, credentials accepted, pushing permitted;
//! 4. blobs in parallel, each once per target registry (HEAD first; a mount from a
//!    repository that already got it; else an upload, hashed while it streams);
//! 5. manifests, only once every blob (and platform manifest) they reference is confirmed,
//!    as the exact bytes in the bundle;
//! 6. every target checked by HEAD against the bundle's digest.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::bundle::check::{self, ImageContent, Problem};
use crate::bundle::format::ImageRecord;
use crate::bundle::reader::{BundleError, BundleReader};
use crate::digest::Digest;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{BlobOutcome, Client, RegistryError};

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

/// Where one image goes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mapping {
    pub source: String,
    /// The main target, then the alternative paths (the pause image's second path).
    pub targets: Vec<String>,
    /// The digest the registry will give it.
    pub digest: Digest,
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
    pub rancher_settings: Vec<(String, String)>,
    /// How to start the Rancher server, when the bundle holds its server group.
    #[serde(rename = "rancherServer", skip_serializing_if = "Option::is_none")]
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

/// Why unpack stopped before pushing anything.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("the bundle is damaged; nothing was pushed:\n{}", list(.0))]
    Structure(Vec<Problem>),
    #[error("invalid target for {source_ref}: {reason}")]
    Target { source_ref: String, reason: String },
    #[error("{target} would receive two images: {first} and {second}; nothing was pushed")]
    Collision {
        target: String,
        first: String,
        second: String,
    },
    #[error("this is a delta bundle and {registry} lacks {} blobs it relies on (unpack its base bundle there first); nothing was pushed:\n{}", .missing.len(), .missing.join("\n"))]
    BaseMissing {
        registry: String,
        missing: Vec<String>,
    },
    #[error(transparent)]
    Interrupted(#[from] crate::interrupt::Interrupted),
    #[error("cannot use registry {registry}; nothing was pushed")]
    Registry {
        registry: String,
        #[source]
        source: RegistryError,
    },
    #[error("{registry} does not store Docker schema 1 manifests ({reason}), and the bundle carries {} as schema 1 (packed with --keep-digests); nothing was pushed. Pack again without --keep-digests (airlock then converts it to schema 2, which every Docker engine pulls), or push to a registry that stores schema 1 (distribution 2.x with compatibility.schema1.enabled)", .images.join(", "))]
    Schema1Unsupported {
        registry: String,
        images: Vec<String>,
        reason: String,
    },
}

/// Refuses, before anything is pushed, to unpack schema 1 images (kept with
/// `--keep-digests`) into a registry that does not store schema 1: asked with
/// [`Client::schema1_support`] in the first such image's target repository.
pub(crate) fn check_schema1_target<'a>(
    client: &Client,
    registry: &str,
    images: impl Iterator<Item = (&'a ImageRecord, &'a [Reference])>,
) -> Result<(), UnpackError> {
    let schema1: Vec<(&ImageRecord, &[Reference])> = images
        .filter(|(r, _)| crate::media_type::kind(&r.media_type) == crate::media_type::Kind::Schema1)
        .collect();
    let Some((_, targets)) = schema1.first() else {
        return Ok(());
    };
    let Some(first) = targets.first() else {
        return Ok(());
    };
    let support = client
        .schema1_support(registry, first.repository())
        .map_err(|source| UnpackError::Registry {
            registry: registry.to_string(),
            source,
        })?;
    match support {
        crate::registry::Schema1Support::Accepted => Ok(()),
        crate::registry::Schema1Support::Refused(reason) => Err(UnpackError::Schema1Unsupported {
            registry: registry.to_string(),
            images: schema1.iter().map(|(r, _)| r.source.clone()).collect(),
            reason,
        }),
    }
}

fn list(p: &[Problem]) -> String {
    p.iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Maps every image of the bundle to its target references under `registry`/`prefix`.
pub fn plan(
    images: &[ImageRecord],
    registry: &str,
    prefix: &str,
) -> Result<Vec<Mapping>, UnpackError> {
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for rec in images {
        let mut targets = Vec::new();
        for t in std::iter::once(&rec.target).chain(&rec.alt_targets) {
            let r =
                target_reference(registry, prefix, t).map_err(|reason| UnpackError::Target {
                    source_ref: rec.source.clone(),
                    reason,
                })?;
            let key = r.to_string();
            if let Some(first) = owner.insert(key.clone(), rec.source.clone()) {
                if first != rec.source {
                    return Err(UnpackError::Collision {
                        target: key,
                        first,
                        second: rec.source.clone(),
                    });
                }
                continue;
            }
            targets.push(key);
        }
        out.push(Mapping {
            source: rec.source.clone(),
            targets,
            digest: rec.registry_digest().clone(),
        });
    }
    Ok(out)
}

/// `registry/prefix/repository:tag`, validated: the path from `bundle.json` can only name a
/// repository and tag under `--registry`, never another host or a `..` path.
fn target_reference(registry: &str, prefix: &str, target: &str) -> Result<Reference, String> {
    let (repo, tag) = target
        .rsplit_once(':')
        .filter(|(r, t)| !t.contains('/') && !r.is_empty())
        .ok_or_else(|| format!("target {target:?} is not repository:tag"))?;
    let repository = format!("{prefix}{repo}");
    let full = format!("{registry}/{repository}:{tag}");
    let r = Reference::parse(&full).map_err(|e| e.to_string())?;
    if r.registry() != registry
        || r.repository() != repository
        || r.tag() != Some(tag)
        || r.digest().is_some()
    {
        return Err(format!(
            "target {target:?} does not stay a repository under {registry}"
        ));
    }
    Ok(r)
}

/// Unpacks the bundle read by `r` into `opts.registry`.
pub fn unpack(
    client: &Client,
    r: &BundleReader,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
) -> Result<(Vec<Mapping>, Option<UnpackReport>), UnpackError> {
    let started = Instant::now();
    let checked = check::check(r)?;
    if !checked.problems.is_empty() {
        return Err(UnpackError::Structure(checked.problems));
    }
    let mappings = plan(&checked.manifest.images, &opts.registry, &opts.prefix)?;
    if opts.dry_run {
        return Ok((mappings, None));
    }
    let reg = opts.registry.as_str();
    let registry_err = |source| UnpackError::Registry {
        registry: reg.to_string(),
        source,
    };
    client.ping(reg).map_err(registry_err)?;
    let Some(first_target) = mappings.iter().flat_map(|m| &m.targets).next() else {
        return Err(UnpackError::Structure(vec![Problem {
            subject: crate::bundle::format::BUNDLE_JSON.into(),
            what: "the bundle lists no images".into(),
        }]));
    };
    let first_repo = Reference::parse(first_target).expect("validated by plan");
    client
        .check_push_access(reg, first_repo.repository())
        .map_err(registry_err)?;

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .expect("building a thread pool");

    // Images whose every target already has the digest need nothing (a rerun).
    let targets: Vec<Vec<Reference>> = mappings
        .iter()
        .map(|m| {
            m.targets
                .iter()
                .map(|t| Reference::parse(t).expect("validated"))
                .collect()
        })
        .collect();
    let present: Vec<bool> = pool.install(|| {
        checked
            .images
            .par_iter()
            .with_max_len(1)
            .zip(&targets)
            .map(|(img, ts)| {
                ts.iter().all(|t| {
                    matches!(client.head_manifest(t), Ok(Some((d, _, _))) if d == *img.record.registry_digest())
                })
            })
            .collect()
    });
    check_schema1_target(
        client,
        reg,
        checked
            .images
            .iter()
            .zip(&targets)
            .zip(&present)
            .filter(|(_, done)| !**done)
            .map(|((img, ts), _)| (&img.record, ts.as_slice())),
    )?;

    // A delta bundle: every omitted blob must be in the target already, found before anything
    // is pushed; where it sits in another repository, it is mounted from there.
    let omitted = checked.manifest.omitted();
    let mut mount_source: BTreeMap<Digest, String> = BTreeMap::new();
    if !omitted.is_empty() {
        let mut users: BTreeMap<&Digest, (BTreeSet<String>, BTreeSet<&str>)> = BTreeMap::new();
        for ((img, ts), done) in checked.images.iter().zip(&targets).zip(&present) {
            for b in img.blobs.iter().filter(|b| omitted.contains_key(&b.digest)) {
                if *done {
                    continue;
                }
                let e = users.entry(&b.digest).or_default();
                e.0.extend(ts.iter().map(|t| t.repository().to_string()));
                e.1.insert(img.record.source.as_str());
            }
        }
        let bundle_repos: BTreeSet<String> = targets
            .iter()
            .flatten()
            .map(|t| t.repository().to_string())
            .collect();
        let catalog: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let users: Vec<_> = users.into_iter().collect();
        let found: Vec<Result<Option<String>, RegistryError>> = pool.install(|| {
            users
                .par_iter()
                .with_max_len(1)
                .map(|(d, (repos, _))| {
                    let in_bundle = bundle_repos.iter().filter(|r| !repos.contains(*r));
                    for repo in repos.iter().chain(in_bundle) {
                        if client.blob_exists(reg, repo, d)?.is_some() {
                            return Ok(Some(repo.clone()));
                        }
                    }
                    // Elsewhere in the registry (the base may have other repositories).
                    let all = catalog.get_or_init(|| client.catalog(reg, 1000).unwrap_or_default());
                    for repo in all.iter().filter(|r| !bundle_repos.contains(*r)) {
                        if client.blob_exists(reg, repo, d)?.is_some() {
                            return Ok(Some(repo.clone()));
                        }
                    }
                    Ok(None)
                })
                .collect()
        });
        let mut missing = Vec::new();
        for ((d, (_, images)), f) in users.iter().zip(found) {
            match f.map_err(registry_err)? {
                Some(repo) => {
                    mount_source.insert((*d).clone(), repo);
                }
                None => missing.push(format!(
                    "  blob {d} ({} bytes), used by {}",
                    omitted[*d],
                    images.iter().copied().collect::<Vec<_>>().join(", ")
                )),
            }
        }
        if !missing.is_empty() {
            return Err(UnpackError::BaseMissing {
                registry: reg.to_string(),
                missing,
            });
        }
    }

    // Which repositories need which blob.
    let mut need: BTreeMap<Digest, (u64, BTreeSet<String>)> = BTreeMap::new();
    for ((img, ts), done) in checked.images.iter().zip(&targets).zip(&present) {
        if *done {
            continue;
        }
        for b in &img.blobs {
            let e = need
                .entry(b.digest.clone())
                .or_insert((b.size, BTreeSet::new()));
            for t in ts {
                e.1.insert(t.repository().to_string());
            }
        }
    }
    // A delta's omitted blobs have sizes from bundle.json: a progress total, never wrapped.
    let total = crate::space::total(need.values().map(|(s, _)| *s)).unwrap_or(u64::MAX);
    reporter.phase("push", total);
    let mut jobs: Vec<(&Digest, &(u64, BTreeSet<String>))> = need.iter().collect();
    jobs.sort_by_key(|j| std::cmp::Reverse(j.1 .0));
    let counts = Mutex::new(BlobCounts::default());
    let failed_blobs: Mutex<BTreeMap<Digest, String>> = Mutex::new(BTreeMap::new());
    pool.install(|| {
        // One stealable job per blob (see verify): the largest ones must not queue behind
        // each other on one thread.
        jobs.par_iter()
            .with_max_len(1)
            .for_each(|(digest, (size, repos))| {
                if crate::interrupt::received().is_some() {
                    return;
                }
                // Absent only when omitted from a delta (the check above found it in the target).
                let entry = r.blob(digest);
                let open = || -> std::io::Result<Box<dyn Read + Send + 'static>> {
                    match entry {
                        Some(e) => Ok(Box::new(crate::interrupt::Guarded(r.open_entry_owned(e)))),
                        None => Err(std::io::Error::other(
                            "omitted from this delta bundle, and the registry no longer has it",
                        )),
                    }
                };
                let mut first: Option<&str> = mount_source.get(*digest).map(String::as_str);
                for repo in repos.iter() {
                    match client.push_blob(reg, repo, digest, *size, first, &open) {
                        Ok(outcome) => {
                            counts.lock().unwrap().add(outcome, *size);
                            first.get_or_insert(repo);
                        }
                        Err(e) => {
                            let msg = crate::error_chain(&e);
                            failed_blobs.lock().unwrap().insert((*digest).clone(), msg);
                            break;
                        }
                    }
                }
                reporter.advance(*size);
            })
    });
    reporter.finish_phase();
    crate::interrupt::check()?;
    let failed_blobs = failed_blobs.into_inner().unwrap();
    let counts = counts.into_inner().unwrap();

    // Manifests, image by image, only when all their blobs are there.
    reporter.phase("manifests", 0);
    let reports: Vec<ImageReport> = pool.install(|| {
        checked
            .images
            .par_iter()
            .with_max_len(1)
            .zip(&targets)
            .zip(&present)
            .map(|((img, ts), done)| {
                let mut rep = ImageReport::new(&img.record, ts);
                if *done {
                    return rep;
                }
                let bad: Vec<String> = img
                    .blobs
                    .iter()
                    .filter_map(|b| failed_blobs.get(&b.digest).map(|e| b.digest.describe(e)))
                    .collect();
                let result = if bad.is_empty() {
                    push_manifests(client, img, ts)
                } else {
                    Err(format!("not pushed, its blobs failed: {}", bad.join("; ")))
                };
                match result {
                    Ok(()) => rep.status = Status::Pushed,
                    Err(e) => {
                        rep.status = Status::Failed;
                        rep.error = Some(e);
                    }
                }
                reporter.item(&format!(
                    "{:?} {} -> {}",
                    rep.status,
                    rep.source,
                    rep.targets.join(", ")
                ));
                rep
            })
            .collect()
    });
    reporter.finish_phase();
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
            images: reports,
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

/// Pushes an image's platform manifests by digest, then its manifest to every target tag,
/// then checks each target by HEAD.
pub(crate) fn push_manifests(
    client: &Client,
    img: &ImageContent,
    targets: &[Reference],
) -> Result<(), String> {
    let (top, children) = img
        .manifests
        .split_last()
        .expect("at least the image's own manifest");
    // What the registry will call the image's own manifest (for a signed schema 1 manifest,
    // the digest of its JWS payload, not of the stored bytes).
    let expected = img.record.registry_digest();
    for t in targets {
        for (d, mt, raw) in children {
            client
                .put_manifest(t.registry(), t.repository(), &d.to_string(), mt, raw)
                .map_err(|e| format!("platform manifest {d} to {t}: {}", crate::error_chain(&e)))?;
        }
        let tag = t.tag().expect("targets have tags");
        let got = client
            .put_manifest(t.registry(), t.repository(), tag, &top.1, &top.2)
            .map_err(|e| format!("manifest to {t}: {}", crate::error_chain(&e)))?;
        if got != *expected {
            return Err(format!(
                "{t}: the registry stored {got}, the bundle has {expected}"
            ));
        }
    }
    for t in targets {
        match client.head_manifest(t) {
            Ok(Some((d, _, _))) if d == *expected => {}
            Ok(Some((d, _, _))) => {
                return Err(format!(
                    "{t}: after the push the registry answers {d}, not {expected}"
                ))
            }
            Ok(None) => return Err(format!("{t}: not found after the push")),
            Err(e) => {
                return Err(format!(
                    "{t}: checking after the push: {}",
                    crate::error_chain(&e)
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_stay_under_the_registry() {
        let ok = target_reference("reg.local:5000", "", "busybox:latest").unwrap();
        assert_eq!(ok.to_string(), "reg.local:5000/busybox:latest");
        let p = target_reference("reg.local", "proj/", "rancher/k8s:v1").unwrap();
        assert_eq!(p.to_string(), "reg.local/proj/rancher/k8s:v1");
        let alt =
            target_reference("reg.local", "", "gcr.io/google_containers/pause-amd64:3.0").unwrap();
        assert_eq!(alt.repository(), "gcr.io/google_containers/pause-amd64");
        for bad in [
            "../x:1",
            "a/../b:1",
            "x",
            "evil.com:5000/x",
            "X:1",
            "a:b/c",
            "a@sha256:00:1",
            "/x:1",
            "a//b:1",
        ] {
            let e = target_reference("reg.local", "", bad).unwrap_err();
            assert!(
                e.starts_with(&format!("target {bad:?} is not repository:tag"))
                    || e.starts_with(&format!("invalid image reference \"reg.local/{bad}\"")),
                "{bad}: {e}"
            );
        }
    }
}
