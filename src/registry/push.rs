//! The push side of the distribution API: blob uploads (POST, then a monolithic PUT with
//! `?digest=`), cross-repository mounts, and manifests.
//!
//! See the distribution-spec "Pushing blobs" and "Mounting a blob from another repository".

use std::io::{self, Read};
use std::sync::{Arc, Mutex};

use ureq::http::{self, header};

use super::error::{redact_url, RegistryError};
use super::transport::{encode_query, Action, Client, Req, ReqBody};
use crate::digest::{Digest, VerifyError, VerifyingReader};
use crate::retry::Again;

pub use crate::blob::OpenBlob;

/// How a blob got into the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobOutcome {
    /// It was there already.
    Present,
    /// Mounted from another repository of the same registry, no bytes sent.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// Why a push of a blob failed in a way retrying cannot fix.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// The upload of the bytes failed (retried as a whole with a new session).
    #[error("uploading blob {digest}")]
    Upload {
        digest: Digest,
        #[source]
        source: RegistryError,
    },
    /// The bytes read from the source did not match the digest: nothing was committed. (The
    /// check's message names the blob; it is not chained, or it would be said twice.)
    #[error("{error}; it was not uploaded")]
    Corrupt { digest: Digest, error: VerifyError },
    #[error("reading blob {digest} failed")]
    Read {
        digest: Digest,
        #[source]
        source: io::Error,
    },
}

impl Client {
    /// `POST /v2/<name>/blobs/uploads/` then `DELETE` of the session: proves we may push to
    /// `repository` without leaving anything behind.
    pub fn check_push_access(&self, registry: &str, repository: &str) -> Result<(), RegistryError> {
        if let Started::Location(l) = self.start_upload(registry, repository, None)? {
            self.cancel_upload(registry, repository, &l);
        }
        Ok(())
    }

    /// `DELETE` of an upload session, best effort: some registries do not implement cancel,
    /// and the session then simply expires.
    fn cancel_upload(&self, registry: &str, repository: &str, location: &str) {
        let req = Req {
            method: http::Method::DELETE,
            registry,
            repository: Some(repository),
            action: Action::Push,
            path: location.to_string(),
            headers: vec![],
            body: ReqBody::Empty,
            follow_redirects: false,
        };
        let _ = self.send(&req);
    }

    /// Makes sure `repository` holds the blob: HEAD, then a mount from `mount_from` if given,
    /// then an upload of the bytes `open` yields, verified against `digest` and `size` while
    /// they stream. Transient failures are retried as a whole (a new upload session).
    pub fn push_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
        open: &OpenBlob<'_>,
    ) -> Result<BlobOutcome, PushError> {
        // With another repository to mount from, ask first: a mount of a blob the target
        // already has would be counted as mounted. Without one, the upload's own POST asks
        // (see `upload_once`): one round trip per blob less than HEAD, then POST.
        let there = match mount_from {
            None => false,
            Some(_) => match self.blob_exists(registry, repository, digest) {
                Ok(found) => found.is_some(),
                // A HEAD that fails on the registry's side (5xx, after its retries) says
                // nothing about the blob: distribution answers 500 for a blob whose repository
                // link a crash left empty. The upload rewrites that link; a registry that is
                // really failing fails the upload too, with its own error.
                Err(RegistryError::Api { status, .. }) if status >= 500 => false,
                Err(e) => return Err(e.into()),
            },
        };
        // Only the streamed PUT is retried here, with a new session: every other request was
        // retried where it was sent.
        let policy = &self.options().retry;
        let outcome = if there {
            Ok(BlobOutcome::Present)
        } else {
            policy.budget().run(
                policy,
                || self.upload_once(registry, repository, digest, size, mount_from, open),
                |r| match r {
                    Err(PushError::Upload { source, .. }) if source.is_temporary() => Again::Yes,
                    _ => Again::No,
                },
                |r| {
                    self.stats()
                        .retries
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    match r {
                        Err(e) => format!(
                            "uploading {digest} to {repository}: {}",
                            crate::error_chain(e)
                        ),
                        Ok(_) => format!("uploading {digest} to {repository}"),
                    }
                },
            )
        };
        match &outcome {
            Ok(BlobOutcome::Present) => {
                log::info!("{repository}: blob {digest} ({size} B) is there already, skipped")
            }
            Ok(BlobOutcome::Mounted) => log::info!(
                "{repository}: blob {digest} ({size} B) mounted from {}, not uploaded",
                mount_from.unwrap_or("another repository")
            ),
            Ok(_) => log::info!("{repository}: blob {digest} ({size} B) uploaded"),
            Err(_) => {}
        }
        outcome
    }

    fn upload_once(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        mount_from: Option<&str>,
        open: &OpenBlob<'_>,
    ) -> Result<BlobOutcome, PushError> {
        // Without another repository, the mount is from the target repository itself: the
        // registry answers 201 when that repository has the blob, and otherwise starts the
        // upload session (202), as the distribution spec has a registry do with a mount it
        // cannot make (distribution `linkedBlobStore.Create`).
        let from = mount_from.unwrap_or(repository);
        let started =
            match self.start_upload(registry, repository, Some((digest, from))) {
                // A mount needs pull access to the other repository; without it, upload instead.
                Err(
                    RegistryError::Unauthorized { .. } | RegistryError::Api { status: 403, .. },
                ) if mount_from.is_some() => self.start_upload(registry, repository, None)?,
                // A registry that refuses the question (or the pull access it needs), or fails
                // on it (distribution answers 500 for a blob whose repository link a crash left
                // empty): asked by HEAD instead, then a plain upload, which fails on its own
                // if the credentials cannot push.
                Err(RegistryError::Unauthorized { .. } | RegistryError::Api { .. })
                    if mount_from.is_none() =>
                {
                    if let Ok(Some(_)) = self.blob_exists(registry, repository, digest) {
                        return Ok(BlobOutcome::Present);
                    }
                    self.start_upload(registry, repository, None)?
                }
                r => r?,
            };
        let location = match started {
            Started::Mounted if mount_from.is_none() => return Ok(BlobOutcome::Present),
            Started::Mounted => return Ok(BlobOutcome::Mounted),
            Started::Location(l) => l,
        };
        let result = self.put_upload(registry, repository, digest, size, &location, open);
        if result.is_err() {
            // Leave no half-written session behind in the registry's storage.
            self.cancel_upload(registry, repository, &location);
        }
        result
    }

    /// The monolithic `PUT <location>&digest=` of an upload session.
    fn put_upload(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
        size: u64,
        location: &str,
        open: &OpenBlob<'_>,
    ) -> Result<BlobOutcome, PushError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let path = format!(
            "{location}{sep}digest={}",
            encode_query(&digest.to_string())
        );
        // The verifying reader fails the request body when the bytes are wrong; the failure is
        // kept here so it is reported as corruption, not as a network error.
        let failure: Arc<Mutex<Option<VerifyError>>> = Arc::new(Mutex::new(None));
        let stream_open = || -> io::Result<Box<dyn Read + Send + 'static>> {
            let inner = open()?;
            Ok(Box::new(Sentinel {
                inner: VerifyingReader::new(inner, digest.clone(), size),
                failure: failure.clone(),
            }))
        };
        let req = Req {
            method: http::Method::PUT,
            registry,
            repository: Some(repository),
            action: Action::Push,
            path,
            headers: vec![("content-type", "application/octet-stream".into())],
            body: ReqBody::Stream {
                len: size,
                open: &stream_open,
            },
            follow_redirects: false,
        };
        let result = self.send(&req);
        if let Some(error) = failure.lock().unwrap().take() {
            return Err(PushError::Corrupt {
                digest: digest.clone(),
                error,
            });
        }
        let upload = |source| PushError::Upload {
            digest: digest.clone(),
            source,
        };
        let resp = result.map_err(upload)?;
        let url = self.display_url(registry, &req.path);
        if resp.status().as_u16() != 201 {
            return Err(upload(Client::api_error(&req.method, &url, resp)));
        }
        // The registry hashed what it stored; it must be what we meant to send.
        if let Some(h) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if h.trim() != digest.to_string() {
                return Err(RegistryError::Protocol {
                    method: "PUT".into(),
                    url: redact_url(&url),
                    reason: format!("the registry stored {h}, not {digest}"),
                }
                .into());
            }
        }
        Ok(BlobOutcome::Uploaded)
    }

    /// `POST /v2/<name>/blobs/uploads/`, with `?mount=&from=` when mounting.
    fn start_upload(
        &self,
        registry: &str,
        repository: &str,
        mount: Option<(&Digest, &str)>,
    ) -> Result<Started, RegistryError> {
        let mut path = format!("/v2/{repository}/blobs/uploads/");
        if let Some((d, from)) = mount {
            path.push_str(&format!(
                "?mount={}&from={}",
                encode_query(&d.to_string()),
                encode_query(from)
            ));
        }
        let req = Req {
            method: http::Method::POST,
            registry,
            repository: Some(repository),
            action: Action::Push,
            path,
            headers: vec![],
            body: ReqBody::Empty,
            follow_redirects: false,
        };
        let resp = self.send(&req)?;
        let url = self.display_url(registry, &req.path);
        match resp.status().as_u16() {
            201 if mount.is_some() => Ok(Started::Mounted),
            202 => {
                let loc = resp
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| RegistryError::Protocol {
                        method: "POST".into(),
                        url: redact_url(&url),
                        reason: "upload started without a Location".into(),
                    })?;
                let base = self.endpoint(registry).base();
                let location = if loc.starts_with("http://") || loc.starts_with("https://") {
                    loc.to_string()
                } else if loc.starts_with('/') && !loc.starts_with("//") {
                    // Keep relative locations relative: `send` puts them on the endpoint.
                    loc.to_string()
                } else {
                    return Err(RegistryError::Protocol {
                        method: "POST".into(),
                        url: redact_url(&format!("{base}{}", req.path)),
                        reason: format!("unusable upload Location {:?}", redact_url(loc)),
                    });
                };
                Ok(Started::Location(location))
            }
            _ => Err(Client::api_error(&req.method, &url, resp)),
        }
    }

    /// `PUT /v2/<name>/manifests/<reference>` with the exact bytes; checks the digest the
    /// registry computed.
    pub fn put_manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
        media_type: &str,
        raw: &[u8],
    ) -> Result<Digest, RegistryError> {
        let req = Req {
            method: http::Method::PUT,
            registry,
            repository: Some(repository),
            action: Action::Push,
            path: format!("/v2/{repository}/manifests/{reference}"),
            headers: vec![("content-type", media_type.to_string())],
            body: ReqBody::Bytes(raw),
            follow_redirects: false,
        };
        let resp = self.send(&req)?;
        let url = self.display_url(registry, &req.path);
        if resp.status().as_u16() != 201 {
            return Err(Client::api_error(&req.method, &url, resp));
        }
        // A signed schema 1 manifest is stored under the digest of its JWS payload.
        let want = if crate::media_type::kind(media_type) == crate::media_type::Kind::Schema1 {
            crate::convert::schema1::registry_digest(raw).unwrap_or_else(|| Digest::of(raw))
        } else {
            Digest::of(raw)
        };
        match resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            Some(h) if h.trim() != want.to_string() => Err(RegistryError::Protocol {
                method: "PUT".into(),
                url: redact_url(&url),
                reason: format!("the registry stored the manifest as {h}, not {want}"),
            }),
            _ => Ok(want),
        }
    }

    fn display_url(&self, registry: &str, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.endpoint(registry).base())
        }
    }
}

enum Started {
    Mounted,
    Location(String),
}

/// Passes reads through and remembers a verification failure.
struct Sentinel<R> {
    inner: VerifyingReader<R>,
    failure: Arc<Mutex<Option<VerifyError>>>,
}

impl<R: Read> Read for Sentinel<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            Ok(n) => Ok(n),
            Err(e) => match VerifyError::split_io(e) {
                Ok(v) => {
                    let msg = v.to_string();
                    *self.failure.lock().unwrap() = Some(v);
                    Err(io::Error::new(io::ErrorKind::InvalidData, msg))
                }
                Err(e) => Err(e),
            },
        }
    }
}
