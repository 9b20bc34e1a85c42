//! Where resolving reads from: manifests from the cache or the registry (by digest, cached),
//! and the diff IDs of schema 1 layers, computed while the layer streams (cached per layer).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};

use super::locate::ResolveError;
use super::pull_limit::PullLimits;
use crate::cache::{Cache, Cached};
use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::manifest::BlobRef;
use crate::media_type;
use crate::reference::Reference;
use crate::registry::{Client, Manifest};

/// Reads manifests and layers for resolving: the cache first (with `--no-cache`, none).
pub(super) struct Sources<'a> {
    pub(super) client: &'a Client,
    pub(super) cache: Option<&'a Cache>,
    /// Manifest `GET`s made.
    pub(super) pulls: &'a AtomicU64,
    /// Layer bytes downloaded to compute diff IDs.
    pub(super) downloaded: &'a AtomicU64,
    /// Registries not to ask any more.
    pub(super) limits: &'a PullLimits,
}

impl Sources<'_> {
    /// The manifest `digest` of `place`, from the cache or fetched by digest (and cached).
    pub(super) fn manifest(
        &self,
        place: &Reference,
        digest: &Digest,
    ) -> Result<Manifest, ResolveError> {
        let what = place.with_digest(digest.clone()).to_string();
        if let Some(c) = self.cache {
            if let Some(raw) = c.manifest(digest)? {
                let media_type = crate::registry::detect_media_type(&what, None, &raw)?;
                return Ok(Manifest {
                    raw,
                    media_type,
                    digest: digest.clone(),
                });
            }
        }
        self.limits.check(place.registry())?;
        let m = self
            .client
            .get_manifest(&place.with_digest(digest.clone()))
            .map_err(|e| -> ResolveError {
                match self.limits.note(place.registry(), e) {
                    Ok(e) => Box::new(e),
                    Err(l) => Box::new(l),
                }
            })?;
        self.pulls.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.cache {
            c.insert_manifest(&m.digest, &m.raw)?;
        }
        Ok(m)
    }

    /// A platform manifest, checked against its descriptor in the index.
    pub(super) fn child(
        &self,
        place: &Reference,
        desc: &BlobRef,
    ) -> Result<Manifest, ResolveError> {
        let m = self.manifest(place, &desc.digest)?;
        if m.raw.len() as u64 != desc.size {
            return Err(format!(
                "{place}: platform manifest {} is {} bytes, its index says {}",
                desc.digest,
                m.raw.len(),
                desc.size
            )
            .into());
        }
        if media_type::essence(&m.media_type) != media_type::essence(&desc.media_type) {
            return Err(format!(
                "{place}: platform manifest {} is {}, its index says {}",
                desc.digest, m.media_type, desc.media_type
            )
            .into());
        }
        Ok(m)
    }

    /// The diff ID of a gzip layer: from the cache, from the cached layer, or by downloading
    /// it (into the cache, when there is one) while it is decompressed and hashed.
    pub(super) fn diff_id(
        &self,
        place: &Reference,
        blob: &BlobRef,
    ) -> Result<Digest, ResolveError> {
        let not_gzip = |e: io::Error| -> ResolveError {
            format!(
                "{place}: layer {} cannot be decompressed ({e}); airlock converts only gzip schema 1 layers (--keep-digests carries the manifest unchanged)",
                blob.digest
            )
            .into()
        };
        if let Some(c) = self.cache {
            if let Some(d) = c.diff_id(&blob.digest) {
                return Ok(d);
            }
            if c.check(&blob.digest, blob.size)? == Cached::Valid {
                let mut gz = DiffId::new();
                io::copy(&mut c.open_blob(&blob.digest)?, &mut gz).map_err(not_gzip)?;
                let d = gz.finish().map_err(not_gzip)?;
                c.insert_diff_id(&blob.digest, &d)?;
                return Ok(d);
            }
        }
        let stream = self
            .client
            .get_blob(place.registry(), place.repository(), &blob.digest)?;
        let mut gz = DiffId::new();
        let mut tee = Tee {
            inner: stream.reader,
            out: &mut gz,
            error: None,
        };
        // The whole download is read and verified before a decompression error is believed:
        // bytes garbled in transit break the deflate stream too, and the operator must hear
        // "corrupt" (retry), not "not gzip" (--keep-digests).
        match self.cache {
            Some(c) => {
                c.insert(&blob.digest, blob.size, &mut tee)?;
            }
            None => {
                let mut r = VerifyingReader::new(&mut tee, blob.digest.clone(), blob.size);
                io::copy(&mut r, &mut io::sink()).map_err(|e| -> ResolveError {
                    format!("{place}: layer {}: {e}", blob.digest).into()
                })?;
            }
        }
        if let Some(e) = tee.error.take() {
            return Err(not_gzip(e));
        }
        let d = gz.finish().map_err(not_gzip)?;
        self.downloaded.fetch_add(blob.size, Ordering::Relaxed);
        if let Some(c) = self.cache {
            c.insert_diff_id(&blob.digest, &d)?;
        }
        Ok(d)
    }
}

/// Decompresses gzip written to it and hashes the result: a layer's diff ID. Deflate cannot
/// expand more than about 1032:1, so the work is bounded by the layer's size.
struct DiffId(flate2::write::MultiGzDecoder<HashingWriter<io::Sink>>);

impl DiffId {
    fn new() -> DiffId {
        DiffId(flate2::write::MultiGzDecoder::new(HashingWriter::new(
            io::sink(),
        )))
    }

    fn finish(self) -> io::Result<Digest> {
        let (d, len, _) = self.0.finish()?.finish();
        if len == 0 {
            return Err(io::Error::other("it decompresses to nothing"));
        }
        Ok(d)
    }
}

impl Write for DiffId {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// Passes a download through while feeding a [`DiffId`]; a decompression error is kept aside
/// (the download itself goes on, so it is verified, and the cache still gets the blob).
struct Tee<'a, R> {
    inner: R,
    out: &'a mut DiffId,
    error: Option<io::Error>,
}

impl<R: Read> Read for Tee<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.error.is_none() {
            if let Err(e) = self.out.write_all(&buf[..n]) {
                self.error = Some(e);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_ids_are_the_hash_of_the_decompressed_layer() {
        let layer = crate::fixtures::layer("diff", 1, 5000);
        let mut gz = DiffId::new();
        gz.write_all(&layer.data).unwrap();
        assert_eq!(gz.finish().unwrap(), layer.diff_id.unwrap());
        let mut gz = DiffId::new();
        gz.write_all(b"not gzip at all").unwrap_or(());
        assert!(gz.finish().is_err());
        // A truncated layer is an error, not a short hash.
        let mut gz = DiffId::new();
        let _ = gz.write_all(&layer.data[..layer.data.len() / 2]);
        assert!(gz.finish().is_err());
    }
}
