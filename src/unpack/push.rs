//! Pushing: every blob once per registry, from whatever reader delivers its bytes
//! ([`Bytes`]: opened again for a retry through the seek table or from memory, or streamed
//! once), then each image's manifests once all its blobs are in.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::sync::Mutex;

use rayon::prelude::*;

use super::{BlobCounts, ImageReport, Status, UnpackError, UnpackOptions};
use crate::blob::{Bytes, OpenBlob};
use crate::bundle::contract::{Checked, ImageContent};
use crate::bundle::BundleSource;
use crate::digest::Digest;
use crate::progress::{Phase, Reporter};
use crate::reference::Reference;
use crate::registry::{Client, PushError};

/// A blob to push: its size and the repositories that need it.
pub(super) struct Job {
    size: u64,
    repos: BTreeSet<String>,
}

/// Which repositories need which blob: the configs and layers of every image not already
/// present.
pub(super) fn jobs(
    checked: &Checked,
    targets: &[Vec<Reference>],
    present: &[bool],
) -> BTreeMap<Digest, Job> {
    let mut need: BTreeMap<Digest, Job> = BTreeMap::new();
    for ((img, ts), done) in checked.images.iter().zip(targets).zip(present) {
        if *done {
            continue;
        }
        for b in &img.blobs {
            let job = need.entry(b.digest.clone()).or_insert_with(|| Job {
                size: b.size,
                repos: BTreeSet::new(),
            });
            job.repos
                .extend(ts.iter().map(|t| t.repository().to_string()));
        }
    }
    need
}

/// What the blob phase did.
pub(super) struct Pushed {
    pub counts: BlobCounts,
    /// Blobs that could not be pushed, and why.
    pub failed: BTreeMap<Digest, String>,
    /// Every blob entry the reader met, with its size.
    pub entries: BTreeMap<Digest, u64>,
}

/// Pushes every blob of `jobs`: those the bundle carries as the reader delivers them, and a
/// delta bundle's omitted ones (found in the target by the preflight) by HEAD or mount.
pub(super) fn blobs(
    client: &Client,
    src: &mut dyn BundleSource,
    jobs: BTreeMap<Digest, Job>,
    mount_source: &BTreeMap<Digest, String>,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
    pool: &rayon::ThreadPool,
) -> Result<Pushed, UnpackError> {
    // A delta's omitted blobs have sizes from bundle.json: a progress total, never wrapped.
    let total = crate::space::total(jobs.values().map(|j| j.size)).unwrap_or(u64::MAX);
    reporter.phase(Phase::Push, total);
    let in_flight = InFlight::default();
    let state = Mutex::new((
        BlobCounts::default(),
        BTreeMap::new(),
        BTreeSet::<Digest>::new(),
    ));
    let push = |d: &Digest, bytes: Bytes<'_>| {
        if crate::interrupt::received().is_some() {
            return;
        }
        let job = &jobs[d];
        let first = mount_source.get(d).map(String::as_str);
        in_flight.change(&job.repos, true, reporter);
        let result = push_blob(client, &opts.registry, d, job, first, bytes);
        in_flight.change(&job.repos, false, reporter);
        let mut st = state.lock().unwrap();
        match result {
            Ok(counts) => {
                st.0.uploaded += counts.uploaded;
                st.0.mounted += counts.mounted;
                st.0.present += counts.present;
                st.0.bytes += counts.bytes;
                st.2.insert(d.clone());
            }
            Err(e) => {
                st.1.insert(d.clone(), e);
            }
        }
        drop(st);
        reporter.advance(Phase::Push, job.size);
    };
    // Omitted from a delta: in the registry (the preflight found it), never in the bundle.
    let omitted: Vec<&Digest> = jobs
        .keys()
        .filter(|d| mount_source.contains_key(*d))
        .collect();
    pool.install(|| {
        omitted.par_iter().with_max_len(1).for_each(|d| {
            let gone = || -> io::Result<Box<dyn Read + Send + 'static>> {
                Err(io::Error::other(
                    "omitted from this delta bundle, and the registry no longer has it",
                ))
            };
            push(d, Bytes::Reopen(&gone));
        })
    });
    let carried: BTreeMap<Digest, u64> = jobs
        .iter()
        .filter(|(d, _)| !mount_source.contains_key(*d))
        .map(|(d, j)| (d.clone(), j.size))
        .collect();
    let entries = src.blobs(&carried, opts.jobs, &push)?;
    reporter.finish_phase(Phase::Push);
    let (counts, mut failed, done) = state.into_inner().unwrap();
    for d in carried.keys().filter(|d| !done.contains(*d)) {
        failed
            .entry(d.clone())
            .or_insert_with(|| "not delivered by the bundle".into());
    }
    Ok(Pushed {
        counts,
        failed,
        entries,
    })
}

/// The repositories whose blobs are being pushed: the images in flight, on the push bar.
#[derive(Default)]
struct InFlight(Mutex<BTreeMap<String, usize>>);

impl InFlight {
    /// Marks `repos` as having one more (`on`) or one fewer blob in flight, and tells the
    /// reporter which are now.
    fn change(&self, repos: &BTreeSet<String>, on: bool, reporter: &dyn Reporter) {
        let mut m = self.0.lock().unwrap();
        for r in repos {
            let n = m.entry(r.clone()).or_default();
            *n = if on { *n + 1 } else { n.saturating_sub(1) };
            if *n == 0 {
                m.remove(r);
            }
        }
        let names: Vec<&str> = m.keys().map(String::as_str).collect();
        let line = match names.len() {
            0 => None,
            1..=3 => Some(names.join(", ")),
            n => Some(format!("{} +{}", names[..3].join(", "), n - 3)),
        };
        reporter.working_on(Phase::Push, line.as_deref());
    }
}

/// Makes sure every repository of `job` holds blob `d`: the first by HEAD, mount (from
/// `mount_from`) or upload of `bytes`, the others by mount from the first.
fn push_blob(
    client: &Client,
    registry: &str,
    d: &Digest,
    job: &Job,
    mount_from: Option<&str>,
    bytes: Bytes<'_>,
) -> Result<BlobCounts, String> {
    let mut counts = BlobCounts::default();
    let mut repos = job.repos.iter();
    let Some(first_repo) = repos.next() else {
        return Ok(counts);
    };
    let streamed = "the bytes of a streamed blob are gone; rerun unpack to finish";
    let gone = || -> io::Result<Box<dyn Read + Send + 'static>> { Err(io::Error::other(streamed)) };
    let later: &OpenBlob<'_> = match bytes {
        Bytes::Reopen(open) => {
            let outcome = client
                .push_blob(registry, first_repo, d, job.size, mount_from, open)
                .map_err(|e| describe(&e))?;
            counts.add(outcome, job.size);
            open
        }
        Bytes::Once(r) => {
            let outcome = push_stream(client, registry, first_repo, d, job.size, mount_from, r)?;
            counts.add(outcome, job.size);
            &gone
        }
    };
    for repo in repos {
        let outcome = client
            .push_blob(registry, repo, d, job.size, Some(first_repo), later)
            .map_err(|e| describe(&e))?;
        counts.add(outcome, job.size);
    }
    Ok(counts)
}

/// A push failure as a report line.
fn describe(e: &PushError) -> String {
    crate::error_chain(e)
}

/// Pushes a blob that streams by once: the upload reads from a pipe this thread fills from
/// the stream.
fn push_stream(
    client: &Client,
    registry: &str,
    repo: &str,
    d: &Digest,
    size: u64,
    mount_from: Option<&str>,
    r: &mut dyn Read,
) -> Result<crate::registry::BlobOutcome, String> {
    let (pipe_r, mut pipe_w) = io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
    let slot = Mutex::new(Some(pipe_r));
    let open = || -> io::Result<Box<dyn Read + Send + 'static>> {
        slot.lock()
            .unwrap()
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>)
            .ok_or_else(|| {
                io::Error::other("a streamed blob cannot be sent twice; rerun unpack to finish")
            })
    };
    let (pushed, copied) = std::thread::scope(|s| {
        let h = s.spawn(|| {
            let r = client.push_blob(registry, repo, d, size, mount_from, &open);
            // Whatever happened, stop the writer from blocking on a full pipe.
            slot.lock().unwrap().take();
            r
        });
        let copied = crate::copy::copy_large(r, &mut pipe_w);
        drop(pipe_w);
        (h.join(), copied)
    });
    let pushed = pushed.map_err(|_| "the upload thread panicked".to_string())?;
    match (pushed, copied) {
        (Ok(o), Ok(n)) if n == size => Ok(o),
        // Already there, or mounted: the stream was not needed.
        (
            Ok(o @ (crate::registry::BlobOutcome::Present | crate::registry::BlobOutcome::Mounted)),
            _,
        ) => Ok(o),
        (Ok(_), Ok(n)) => Err(format!("truncated: {n} of {size} bytes")),
        (Err(e), _) => Err(describe(&e)),
        (Ok(_), Err(e)) => Err(format!("unreadable: {e}")),
    }
}

/// Pushes the manifests of every image not already present whose blobs are all in, in
/// parallel; the report of each image.
pub(super) fn manifests(
    client: &Client,
    images: &[ImageContent],
    targets: &[Vec<Reference>],
    present: &[bool],
    pushed: &Pushed,
    reporter: &dyn Reporter,
    pool: &rayon::ThreadPool,
) -> Vec<ImageReport> {
    reporter.phase(Phase::Manifests, 0);
    let todo = present.iter().filter(|p| !**p).count();
    let finished = std::sync::atomic::AtomicUsize::new(0);
    let reports = pool.install(|| {
        images
            .par_iter()
            .with_max_len(1)
            .zip(targets)
            .zip(present)
            .map(|((img, ts), done)| {
                let mut rep = ImageReport::new(&img.record, ts);
                if *done {
                    return rep;
                }
                let bad: Vec<String> = img
                    .blobs
                    .iter()
                    .filter_map(|b| pushed.failed.get(&b.digest).map(|e| b.digest.describe(e)))
                    .collect();
                let result = if bad.is_empty() {
                    push_manifests(client, img, ts)
                } else {
                    Err(format!("not pushed, its blobs failed: {}", bad.join("; ")))
                };
                // The closing report names each image once: no line per image here.
                match result {
                    Ok(()) => rep.status = Status::Pushed,
                    Err(e) => {
                        rep.status = Status::Failed;
                        rep.error = Some(e);
                    }
                }
                let n = 1 + finished.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let line = format!("{n} of {}", crate::units::count(todo, "image"));
                reporter.working_on(Phase::Manifests, Some(&line));
                rep
            })
            .collect()
    });
    reporter.finish_phase(Phase::Manifests);
    reports
}

/// Pushes an image's platform manifests by digest, then its manifest to every target tag,
/// then checks each target by HEAD.
fn push_manifests(
    client: &Client,
    img: &ImageContent,
    targets: &[Reference],
) -> Result<(), String> {
    let Some((top, children)) = img.manifests.split_last() else {
        return Err("the image has no manifest".into());
    };
    // What the registry will call the image's own manifest (for a signed schema 1 manifest,
    // the digest of its JWS payload, not of the stored bytes).
    let expected = img.record.registry_digest();
    for t in targets {
        for (d, mt, raw) in children {
            client
                .put_manifest(t.registry(), t.repository(), &d.to_string(), mt, raw)
                .map_err(|e| format!("platform manifest {d} to {t}: {}", crate::error_chain(&e)))?;
        }
        let tag = t.tag().ok_or_else(|| format!("{t} has no tag"))?;
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
