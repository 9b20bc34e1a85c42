//! `airlock verify`: checks a bundle offline, every byte of it, whichever way it is read.
//!
//! The contract first ([`crate::bundle::contract`], through [`BundleSource::check`]), then
//! every blob an image uses is hashed against its name as its reader delivers it: through the
//! seek table, blobs in parallel, each streamed frame by frame; in order, as they pass. No
//! extraction to disk, memory bounded by a few frames per core.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::blob::Bytes;
use crate::bundle::contract;
use crate::bundle::reader::BundleError;
use crate::bundle::BundleSource;
use crate::digest::{Digest, Hasher};
use crate::problem::Problem;
use crate::progress::{Phase, Reporter};

/// What `verify` found.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
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

/// Verifies the bundle `src` reads, hashing on up to `jobs` threads where the reader allows.
/// `Err` means the bundle could not be read at all; everything else is a [`Problem`] in the
/// report.
pub fn verify(
    src: &mut dyn BundleSource,
    jobs: usize,
    reporter: &dyn Reporter,
) -> Result<VerifyReport, BundleError> {
    let started = Instant::now();
    let mut checked = src.check()?;
    let used = checked.used();
    // Only blobs an image uses are hashed, and only those of the size their descriptor says
    // (the reader delivers no other): any other entry has a size nothing vouches for.
    let wanted: BTreeMap<Digest, u64> = used.iter().map(|(d, u)| (d.clone(), u.size)).collect();
    // Sizes from descriptors; a progress total, never wrapped.
    let bytes = crate::space::total(wanted.values().copied()).unwrap_or(u64::MAX);
    reporter.phase(Phase::Verify, bytes);
    let bad: Mutex<BTreeMap<Digest, String>> = Mutex::new(BTreeMap::new());
    let hashed = Mutex::new(0usize);
    let entries = src.blobs(&wanted, jobs, &|d, b| {
        let what = match hash(b, reporter) {
            Ok(actual) if actual == *d => None,
            Ok(actual) => Some(format!("wrong digest: its bytes hash to {actual}")),
            Err(err) => Some(format!("unreadable: {}", crate::error_chain(&err))),
        };
        *hashed.lock().unwrap() += 1;
        if let Some(what) = what {
            bad.lock().unwrap().insert(d.clone(), what);
        }
    })?;
    reporter.finish_phase(Phase::Verify);
    if checked.entries.is_none() {
        contract::complete(&mut checked, entries.clone());
    }
    let mut problems = checked.problems.clone();
    problems.extend(contract::unused(&checked, &entries));
    let bad = bad.into_inner().unwrap();
    problems.extend(bad.into_iter().map(|(d, what)| {
        let images = used.get(&d).map(|u| u.images.clone()).unwrap_or_default();
        Problem::blob(&d, what, &images)
    }));
    let omitted = checked.manifest.omitted();
    Ok(VerifyReport {
        images: checked.manifest.images.len(),
        omitted_blobs: omitted.len(),
        // Sizes from bundle.json, as written by anyone: a report figure, never wrapped.
        omitted_bytes: crate::space::total(omitted.values().copied()).unwrap_or(u64::MAX),
        blobs: hashed.into_inner().unwrap(),
        bytes,
        problems,
        converted: checked.manifest.conversions(),
        elapsed: started.elapsed(),
    })
}

/// Hashes a blob's bytes, reporting progress.
fn hash(b: Bytes<'_>, reporter: &dyn Reporter) -> std::io::Result<Digest> {
    let mut opened;
    let r: &mut dyn Read = match b {
        Bytes::Reopen(open) => {
            opened = open()?;
            &mut opened
        }
        Bytes::Once(r) => r,
    };
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish());
        }
        h.update(&buf[..n]);
        reporter.advance(Phase::Verify, n as u64);
    }
}
