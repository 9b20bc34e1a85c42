//! What the sequential pass does with the blobs: `verify` hashes them, `unpack` pushes them
//! as they stream by.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use super::{hash_stream, Consumer, Pass};
use crate::bundle::format::BundleManifest;
use crate::bundle::reader::BundleError;
use crate::digest::Digest;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::{BlobOutcome, Client, PushError};
use crate::unpack::{
    self, BlobCounts, ImageReport, Mapping, Status, UnpackError, UnpackOptions, UnpackReport,
};
use crate::verify::VerifyReport;

/// `verify` without a seek table.
struct VerifySink;

impl Consumer for VerifySink {
    fn start(&mut self, _: &BundleManifest) -> Result<(), UnpackError> {
        Ok(())
    }
    fn small_blob(&mut self, _: &Digest, _: &[u8], _: &BTreeSet<String>) {}
    fn stream_blob(
        &mut self,
        d: &Digest,
        size: u64,
        r: &mut dyn Read,
        _: &BTreeSet<String>,
    ) -> Result<(), String> {
        hash_stream(r, size, d, &crate::progress::Silent)
    }
}

/// Verifies a bundle read sequentially from `src`; `path` names it in messages.
pub fn verify_stream(
    src: impl Read,
    path: &Path,
    reporter: &dyn Reporter,
) -> Result<VerifyReport, BundleError> {
    let started = Instant::now();
    let mut pass = Pass::new(path, reporter);
    reporter.phase("verify", 0);
    match pass.run(src, &mut VerifySink) {
        Ok(()) => {}
        Err(UnpackError::Bundle(e)) => return Err(e),
        Err(e) => {
            return Err(BundleError::Format {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })
        }
    }
    reporter.finish_phase();
    pass.finish();
    let omitted = pass.omitted();
    Ok(VerifyReport {
        omitted_blobs: omitted.len(),
        omitted_bytes: crate::space::total(omitted.values().copied()).unwrap_or(u64::MAX),
        images: pass.bundle.as_ref().map_or(0, |b| b.images.len()),
        blobs: pass.blobs,
        bytes: pass.bytes,
        problems: pass.problems,
        converted: pass
            .bundle
            .as_ref()
            .map(|b| b.conversions())
            .unwrap_or_default(),
        elapsed: started.elapsed(),
    })
}

/// `unpack` without a seek table: blobs are pushed as they stream by.
struct UnpackSink<'a> {
    client: &'a Client,
    opts: &'a UnpackOptions,
    /// Image source -> target references.
    targets: BTreeMap<String, Vec<Reference>>,
    mappings: Vec<Mapping>,
    counts: BlobCounts,
    reporter: &'a dyn Reporter,
}

impl UnpackSink<'_> {
    /// The repositories that need a blob used by `users`.
    fn repos(&self, users: &BTreeSet<String>) -> Vec<String> {
        let mut repos: Vec<String> = users
            .iter()
            .flat_map(|u| self.targets.get(u).into_iter().flatten())
            .map(|t| t.repository().to_string())
            .collect();
        repos.sort();
        repos.dedup();
        repos
    }

    /// Mounts (or, for bytes in memory, uploads) the blob into every repository after the first.
    fn spread(
        &mut self,
        d: &Digest,
        size: u64,
        repos: &[String],
        data: Option<&[u8]>,
    ) -> Result<(), String> {
        let reg = self.opts.registry.clone();
        for repo in repos.iter().skip(1) {
            let owned: Option<Vec<u8>> = data.map(<[u8]>::to_vec);
            let open = move || -> io::Result<Box<dyn Read + Send + 'static>> {
                match &owned {
                    Some(v) => Ok(Box::new(io::Cursor::new(v.clone()))),
                    None => Err(io::Error::other(
                        "the bytes of a streamed blob are gone; rerun unpack to finish",
                    )),
                }
            };
            let outcome = self
                .client
                .push_blob(&reg, repo, d, size, Some(&repos[0]), &open)
                .map_err(|e| crate::error_chain(&e))?;
            self.counts.add(outcome, size);
        }
        Ok(())
    }
}

impl Consumer for UnpackSink<'_> {
    fn start(&mut self, bundle: &BundleManifest) -> Result<(), UnpackError> {
        if bundle.base.is_some() {
            // A delta's omitted blobs must be checked in the target before anything is pushed,
            // which needs the whole bundle known first.
            return Err(UnpackError::Bundle(BundleError::Format {
                path: PathBuf::from("bundle.json"),
                reason: "this is a delta bundle; it can only be unpacked through its seek table (keep the file as airlock pack wrote it, not recompressed or piped)".into(),
            }));
        }
        self.mappings = unpack::plan(&bundle.images, &self.opts.registry, &self.opts.prefix)?;
        for m in &self.mappings {
            self.targets.insert(
                m.source.clone(),
                m.targets
                    .iter()
                    .map(|t| Reference::parse(t).expect("validated by plan"))
                    .collect(),
            );
        }
        if self.opts.dry_run {
            return Ok(());
        }
        let reg = self.opts.registry.as_str();
        let registry_err = |source| UnpackError::Registry {
            registry: reg.to_string(),
            source,
        };
        self.client.ping(reg).map_err(registry_err)?;
        if let Some(first) = self.targets.values().flatten().next() {
            self.client
                .check_push_access(reg, first.repository())
                .map_err(registry_err)?;
        }
        unpack::check_schema1_target(
            self.client,
            reg,
            bundle
                .images
                .iter()
                .filter_map(|r| self.targets.get(&r.source).map(|ts| (r, ts.as_slice()))),
        )?;
        Ok(())
    }

    fn small_blob(&mut self, d: &Digest, data: &[u8], users: &BTreeSet<String>) {
        if self.opts.dry_run {
            return;
        }
        let repos = self.repos(users);
        let Some(first) = repos.first() else { return };
        let owned = data.to_vec();
        let open = move || -> io::Result<Box<dyn Read + Send + 'static>> {
            Ok(Box::new(io::Cursor::new(owned.clone())))
        };
        let size = data.len() as u64;
        match self
            .client
            .push_blob(&self.opts.registry, first, d, size, None, &open)
        {
            Ok(o) => {
                self.counts.add(o, size);
                if let Err(e) = self.spread(d, size, &repos, Some(data)) {
                    self.reporter.warn(&d.describe(&e.to_string()));
                }
            }
            Err(e) => self.reporter.warn(&d.describe(&crate::error_chain(&e))),
        }
        self.reporter.advance(size);
    }

    fn stream_blob(
        &mut self,
        d: &Digest,
        size: u64,
        r: &mut dyn Read,
        users: &BTreeSet<String>,
    ) -> Result<(), String> {
        let repos = self.repos(users);
        if self.opts.dry_run || repos.is_empty() {
            return hash_stream(r, size, d, self.reporter);
        }
        let reg = self.opts.registry.clone();
        let first = repos[0].clone();
        let outcome = if matches!(self.client.blob_exists(&reg, &first, d), Ok(Some(_))) {
            // Already there: the bytes still pass through the hash, so the report is honest.
            hash_stream(r, size, d, self.reporter)?;
            BlobOutcome::Present
        } else {
            // The upload reads from a pipe that this thread fills from the tar stream.
            let (pipe_r, mut pipe_w) = io::pipe().map_err(|e| format!("creating a pipe: {e}"))?;
            let slot = Mutex::new(Some(pipe_r));
            let open = || -> io::Result<Box<dyn Read + Send + 'static>> {
                slot.lock()
                    .unwrap()
                    .take()
                    .map(|p| Box::new(p) as Box<dyn Read + Send>)
                    .ok_or_else(|| {
                        io::Error::other(
                            "a streamed blob cannot be sent twice; rerun unpack to finish",
                        )
                    })
            };
            let client = self.client;
            let reporter = self.reporter;
            let (pushed, copied) = std::thread::scope(|s| {
                let h = s.spawn(|| {
                    let r = client.push_blob(&reg, &first, d, size, None, &open);
                    // Whatever happened, stop the writer from blocking on a full pipe.
                    slot.lock().unwrap().take();
                    r
                });
                let mut counted = CountingReader {
                    inner: r.take(size),
                    reporter,
                };
                let copied = io::copy(&mut counted, &mut pipe_w);
                drop(pipe_w);
                (h.join().expect("upload thread"), copied)
            });
            match (pushed, copied) {
                (Ok(o), Ok(n)) if n == size => o,
                (Ok(_), Ok(n)) => return Err(format!("truncated: {n} of {size} bytes")),
                (Err(PushError::Corrupt { error, .. }), _) => return Err(error.to_string()),
                (Err(e), _) => return Err(crate::error_chain(&e)),
                (Ok(_), Err(e)) => return Err(format!("unreadable: {e}")),
            }
        };
        self.counts.add(outcome, size);
        self.spread(d, size, &repos, None)
    }
}

struct CountingReader<'a, R> {
    inner: R,
    reporter: &'a dyn Reporter,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.reporter.advance(n as u64);
        Ok(n)
    }
}

/// Unpacks a bundle read sequentially from `src`.
pub fn unpack_stream(
    client: &Client,
    src: impl Read,
    path: &Path,
    opts: &UnpackOptions,
    reporter: &dyn Reporter,
) -> Result<(Vec<Mapping>, Option<UnpackReport>), UnpackError> {
    let started = Instant::now();
    let mut pass = Pass::new(path, reporter);
    let mut sink = UnpackSink {
        client,
        opts,
        targets: BTreeMap::new(),
        mappings: Vec::new(),
        counts: BlobCounts::default(),
        reporter,
    };
    reporter.phase("push", 0);
    pass.run(src, &mut sink)?;
    reporter.finish_phase();
    if opts.dry_run {
        return Ok((sink.mappings, None));
    }
    pass.finish();
    let complete = pass.complete_images();
    let mut reports = Vec::new();
    let bundle = pass.bundle.clone().expect("run read bundle.json");
    for rec in &bundle.images {
        let targets = sink.targets.get(&rec.source).cloned().unwrap_or_default();
        let mut rep = ImageReport {
            status: Status::Failed,
            ..ImageReport::new(rec, &targets)
        };
        match complete.iter().find(|c| c.record.source == rec.source) {
            Some(img) => match unpack::push_manifests(client, img, &targets) {
                Ok(()) => rep.status = Status::Pushed,
                Err(e) => rep.error = Some(e),
            },
            None => {
                let why: Vec<String> = pass
                    .problems
                    .iter()
                    .filter(|p| p.subject == rec.source || p.what.contains(&rec.source))
                    // The report names the image already.
                    .map(|p| {
                        if p.subject == rec.source {
                            p.what.clone()
                        } else {
                            p.to_string()
                        }
                    })
                    .collect();
                rep.error = Some(if why.is_empty() {
                    "not pushed: its content is incomplete in the bundle".into()
                } else {
                    format!("not pushed: {}", why.join("; "))
                });
            }
        }
        reports.push(rep);
    }
    let counts = sink.counts;
    let (rancher_settings, rancher_server) = crate::rancher::advice(
        &bundle.request,
        complete.iter().map(|c| &c.record),
        &opts.registry,
        &opts.prefix,
    );
    Ok((
        sink.mappings,
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
