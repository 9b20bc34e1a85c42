//! `airlock verify`: checks a bundle offline, every byte of it.
//!
//! The structural check ([`crate::bundle::check`]) first, then every blob is hashed against
//! its name, blobs in parallel, each streamed frame by frame through the seek table: no
//! extraction to disk, memory bounded by a few frames per core.

use std::collections::BTreeSet;
use std::io::Read;
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::bundle::check::{self, Problem};
use crate::bundle::reader::{BundleError, BundleReader, Entry};
use crate::digest::{Digest, Hasher};
use crate::progress::Reporter;

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub images: usize,
    pub blobs: usize,
    pub bytes: u64,
    /// Configs and layers a delta bundle leaves out (its base carries them); not problems.
    pub omitted_blobs: usize,
    pub omitted_bytes: u64,
    pub problems: Vec<Problem>,
    /// Images converted at pack time (for Docker 1.12–17.03): not upstream's bytes, by design.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub converted: Vec<crate::bundle::format::ConversionNote>,
    #[serde(skip)]
    pub elapsed: Duration,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Verifies `r`. `Err` means the bundle could not be read at all; everything else is a
/// [`Problem`] in the report.
pub fn verify(r: &BundleReader, reporter: &dyn Reporter) -> Result<VerifyReport, BundleError> {
    let started = Instant::now();
    let checked = check::check(r)?;
    let mut problems = checked.problems.clone();
    let users = checked.blob_users();
    // Only blobs a checked image uses are hashed: their sizes already match a descriptor.
    // Any other blob entry has a size nothing vouches for, so hashing it would let a small
    // file (one 2 kB frame per 64 MiB of zeros) keep verify busy for hours.
    let mut used: BTreeSet<&Digest> = users.keys().collect();
    used.extend(
        checked
            .images
            .iter()
            .flat_map(|i| i.manifests.iter().map(|m| &m.0)),
    );
    let (mut blobs, unused): (Vec<(Digest, &Entry)>, Vec<_>) = r
        .entries()
        .iter()
        .filter_map(|e| {
            let hex = e.name.strip_prefix("blobs/sha256/")?;
            Some((Digest::parse(&format!("sha256:{hex}")).ok()?, e))
        })
        .partition(|(d, _)| used.contains(d));
    // With problems, unused blobs belong to the images already reported. Without, nothing
    // explains them: `airlock pack` writes no blob that no image uses.
    if problems.is_empty() {
        problems.extend(unused.iter().map(|(d, e)| Problem {
            subject: format!("blob {d}"),
            what: format!(
                "is not used by any image ({} bytes, not hashed; airlock pack never writes one)",
                e.size
            ),
        }));
    }
    // Largest first, so the last blob to finish is a small one.
    blobs.sort_by_key(|b| std::cmp::Reverse(b.1.size));
    // Entry sizes fit in the stream, so their sum fits too.
    let bytes = crate::space::total(blobs.iter().map(|(_, e)| e.size)).unwrap_or(u64::MAX);
    reporter.phase("verify", bytes);
    // One stealable job per blob: without `with_max_len(1)` rayon cuts the list into one run
    // per thread and splits further only when a run is stolen, so the run holding the largest
    // blobs was hashed by one thread while the other idled (1.07 cores busy on 2).
    let mut bad: Vec<Problem> = blobs
        .par_iter()
        .with_max_len(1)
        .filter_map(|(d, e)| {
            let result = hash_entry(r, e, reporter);
            let what = match result {
                Ok(actual) if actual == *d => return None,
                Ok(actual) => format!("wrong digest: its bytes hash to {actual}"),
                Err(err) => format!("unreadable: {err}"),
            };
            let used_by = users
                .get(d)
                .map(|(_, imgs)| format!(" (used by {})", imgs.join(", ")))
                .unwrap_or_default();
            Some(Problem {
                subject: format!("blob {d}"),
                what: format!("{what}{used_by}"),
            })
        })
        .collect();
    reporter.finish_phase();
    bad.sort_by(|a, b| a.subject.cmp(&b.subject));
    problems.extend(bad);
    let omitted = checked.manifest.omitted();
    Ok(VerifyReport {
        images: checked.manifest.images.len(),
        omitted_blobs: omitted.len(),
        // Sizes from bundle.json, as written by anyone: a report figure, never wrapped.
        omitted_bytes: crate::space::total(omitted.values().copied()).unwrap_or(u64::MAX),
        blobs: blobs.len(),
        bytes,
        problems,
        converted: checked.manifest.conversions(),
        elapsed: started.elapsed(),
    })
}

fn hash_entry(r: &BundleReader, e: &Entry, reporter: &dyn Reporter) -> std::io::Result<Digest> {
    let mut h = Hasher::new();
    let mut rd = crate::interrupt::Guarded(r.open_entry(e));
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = rd.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        reporter.advance(n as u64);
    }
    Ok(h.finish())
}
