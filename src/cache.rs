//! The local content-addressed cache that `pack` downloads into.
//!
//! Layout:
//! - `<dir>/blobs/sha256/<hex>`: verified blobs;
//! - `<dir>/manifests/sha256/<hex>`: manifests by the digest registries give them (for a signed
//!   schema 1 manifest that is the digest of its JWS payload), so a rerun asks a registry only
//!   for the digest a tag points at (a `HEAD`, which Docker Hub does not count as a pull) and
//!   `GET`s a manifest only when it is not here;
//! - `<dir>/diffids/sha256/<hex>`: the sha256 of a gzip layer's decompressed tar (its diff ID),
//!   computed once for a schema 1 image's conversion, so a rerun need not download the layer
//!   to build the config again. The entry names its layer and carries a checksum of itself
//!   (`DiffIdEntry`);
//! - `<dir>/tmp/`: downloads in flight.
//!
//! A blob is written under a temporary name, checked (size and sha256) while it streams, and
//! only then renamed to its digest name (ocidir `complete_verified_as`), so a file under a
//! digest name is always complete. Re-running an interrupted pack finds what is already there;
//! a cached blob or manifest is hashed again before use, and a damaged one is replaced. A diff
//! ID cannot be checked against its name without decompressing the layer, so its entry checks
//! itself instead: one that is damaged, stored under another layer's name, or written by hand
//! or by an older airlock fails its checksum, is removed, and the diff ID is computed again
//! from the layer. (A checksum is not a signature: whoever can write the cache can write a
//! consistent entry, as they could replace the bundle. It keeps an accident or a stray file
//! from reaching a config.)

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::digest::{Digest, Hasher, VerifyError, VerifyingReader};

/// Errors of the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The bytes do not match the digest or size (the message names the blob).
    #[error("{error}")]
    Verify { digest: Digest, error: VerifyError },
    #[error("blob {digest}: download failed")]
    Download {
        digest: Digest,
        #[source]
        source: io::Error,
    },
}

/// A directory of verified blobs.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    tmp_seq: AtomicU64,
}

/// What [`Cache::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cached {
    /// Present with the right size and digest.
    Valid,
    /// Not there.
    Missing,
    /// There but damaged; it has been removed.
    Removed,
}

impl Cache {
    /// Opens (creating) a cache directory.
    pub fn open(dir: &Path) -> Result<Cache, CacheError> {
        for sub in ["blobs/sha256", "manifests/sha256", "diffids/sha256", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|source| CacheError::Io { path: p, source })?;
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
            tmp_seq: AtomicU64::new(0),
        })
    }

    /// The default location: `$XDG_CACHE_HOME/airlock` or `~/.cache/airlock`.
    pub fn default_dir() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("airlock");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h).join(".cache/airlock");
        }
        std::env::temp_dir().join("airlock-cache")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a verified blob lives.
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// Checks a cached blob by size and hash; a damaged file is removed.
    pub fn check(&self, digest: &Digest, size: u64) -> Result<Cached, CacheError> {
        let path = self.path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Cached::Missing),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        let ok = match file.metadata() {
            Ok(m) if m.len() == size => {
                let mut h = Hasher::new();
                let mut r = BufReader::with_capacity(1 << 20, file);
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let n = r.read(&mut buf).map_err(|source| CacheError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    if n == 0 {
                        break;
                    }
                    h.update(&buf[..n]);
                }
                h.finish() == *digest
            }
            _ => false,
        };
        if ok {
            return Ok(Cached::Valid);
        }
        fs::remove_file(&path).map_err(|source| CacheError::Io { path, source })?;
        Ok(Cached::Removed)
    }

    /// Streams `src` into the cache, verifying size and digest, then renames it into place.
    /// Returns the bytes written. On any failure the partial file is removed.
    pub fn insert(
        &self,
        digest: &Digest,
        size: u64,
        src: &mut dyn Read,
    ) -> Result<u64, CacheError> {
        let tmp = self.dir.join("tmp").join(format!(
            "{}.{}.{}",
            digest.hex(),
            std::process::id(),
            self.tmp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut out = File::create(&tmp).map_err(|source| CacheError::Io {
                path: tmp.clone(),
                source,
            })?;
            let mut r = VerifyingReader::new(src, digest.clone(), size);
            let n =
                crate::copy::copy_large(&mut r, &mut out).map_err(
                    |e| match VerifyError::split_io(e) {
                        Ok(error) => CacheError::Verify {
                            digest: digest.clone(),
                            error,
                        },
                        Err(source) => CacheError::Download {
                            digest: digest.clone(),
                            source,
                        },
                    },
                )?;
            out.flush().map_err(|source| CacheError::Io {
                path: tmp.clone(),
                source,
            })?;
            let dest = self.path(digest);
            fs::rename(&tmp, &dest).map_err(|source| CacheError::Io { path: dest, source })?;
            Ok(n)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Opens a verified blob.
    pub fn open_blob(&self, digest: &Digest) -> Result<File, CacheError> {
        let path = self.path(digest);
        File::open(&path).map_err(|source| CacheError::Io { path, source })
    }

    /// A cached manifest by the digest registries give it, checked against that digest (a
    /// damaged file is removed and `None` returned).
    pub fn manifest(&self, digest: &Digest) -> Result<Option<Vec<u8>>, CacheError> {
        let path = self.dir.join("manifests/sha256").join(digest.hex());
        let raw = match fs::read(&path) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(CacheError::Io { path, source }),
        };
        if raw.len() as u64 <= crate::manifest::MAX_MANIFEST_BYTES
            && crate::convert::schema1::registry_digest(&raw).as_ref() == Some(digest)
        {
            return Ok(Some(raw));
        }
        fs::remove_file(&path).map_err(|source| CacheError::Io { path, source })?;
        Ok(None)
    }

    /// Keeps a manifest whose registry digest is `digest` (the caller checked it).
    pub fn insert_manifest(&self, digest: &Digest, raw: &[u8]) -> Result<(), CacheError> {
        self.write_small(&format!("manifests/sha256/{}", digest.hex()), raw)
    }

    /// The diff ID recorded for a gzip layer, if there is an entry and it checks out
    /// (`DiffIdEntry::parse`); an entry that does not is removed.
    pub fn diff_id(&self, layer: &Digest) -> Option<Digest> {
        let path = self.dir.join("diffids/sha256").join(layer.hex());
        // Entries are a few hundred bytes: anything bigger is not one.
        let mut text = String::new();
        File::open(&path)
            .ok()?
            .take(1024)
            .read_to_string(&mut text)
            .ok();
        let d = DiffIdEntry::parse(layer, &text);
        if d.is_none() {
            let _ = fs::remove_file(&path);
        }
        d
    }

    /// Records the diff ID of a gzip layer (computed from its verified bytes).
    pub fn insert_diff_id(&self, layer: &Digest, diff_id: &Digest) -> Result<(), CacheError> {
        self.write_small(
            &format!("diffids/sha256/{}", layer.hex()),
            DiffIdEntry::render(layer, diff_id).as_bytes(),
        )
    }

    /// Writes a small file under a temporary name and renames it into place.
    fn write_small(&self, rel: &str, data: &[u8]) -> Result<(), CacheError> {
        let dest = self.dir.join(rel);
        let tmp = self.dir.join("tmp").join(format!(
            "small.{}.{}",
            std::process::id(),
            self.tmp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let result = fs::write(&tmp, data).and_then(|()| fs::rename(&tmp, &dest));
        if let Err(source) = result {
            let _ = fs::remove_file(&tmp);
            return Err(CacheError::Io { path: dest, source });
        }
        Ok(())
    }

    /// Removes leftovers of downloads that were interrupted.
    pub fn clean_tmp(&self) {
        if let Ok(rd) = fs::read_dir(self.dir.join("tmp")) {
            for e in rd.flatten() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The text of a diff ID entry: what it is, the layer it belongs to, the diff ID, and the
/// sha256 of those three lines, so that an entry is used only whole, unchanged and for its
/// own layer.
///
/// ```text
/// airlock diff-id 1
/// layer sha256:<the gzip blob>
/// diff-id sha256:<its decompressed tar>
/// check sha256:<sha256 of the three lines above, newlines included>
/// ```
struct DiffIdEntry;

impl DiffIdEntry {
    const HEADER: &'static str = "airlock diff-id 1\n";

    fn body(layer: &Digest, diff_id: &Digest) -> String {
        format!("{}layer {layer}\ndiff-id {diff_id}\n", Self::HEADER)
    }

    /// The entry for `layer`.
    fn render(layer: &Digest, diff_id: &Digest) -> String {
        let body = Self::body(layer, diff_id);
        format!("{body}check {}\n", Digest::of(body.as_bytes()))
    }

    /// The diff ID of an entry read for `layer`: `None` unless it is exactly what
    /// [`DiffIdEntry::render`] writes for `layer`.
    fn parse(layer: &Digest, text: &str) -> Option<Digest> {
        let rest = text.strip_prefix(Self::HEADER)?;
        let rest = rest.strip_prefix("layer ")?;
        let (named, rest) = rest.split_once('\n')?;
        if named != layer.to_string() {
            return None;
        }
        let (diff_id, _) = rest.strip_prefix("diff-id ")?.split_once('\n')?;
        let diff_id = Digest::parse(diff_id).ok()?;
        (text == Self::render(layer, &diff_id)).then_some(diff_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_verified_and_refuses_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let data = b"layer bytes".to_vec();
        let d = Digest::of(&data);
        assert_eq!(c.check(&d, 11).unwrap(), Cached::Missing);
        assert_eq!(c.insert(&d, 11, &mut &data[..]).unwrap(), 11);
        assert_eq!(c.check(&d, 11).unwrap(), Cached::Valid);

        let bad = Digest::of(b"other");
        let e = c.insert(&bad, 11, &mut &data[..]).unwrap_err();
        assert!(matches!(e, CacheError::Verify { .. }), "{e}");
        assert!(!c.path(&bad).exists());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        // A damaged cached file is detected and removed.
        fs::write(c.path(&d), b"layer bytez").unwrap();
        assert_eq!(c.check(&d, 11).unwrap(), Cached::Removed);
        assert!(!c.path(&d).exists());
    }

    #[test]
    fn keeps_manifests_by_registry_digest_and_diff_ids() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let m = br#"{"schemaVersion":2}"#;
        let d = Digest::of(m);
        assert_eq!(c.manifest(&d).unwrap(), None);
        c.insert_manifest(&d, m).unwrap();
        assert_eq!(c.manifest(&d).unwrap().as_deref(), Some(&m[..]));
        // A file that does not match its name is dropped.
        let other = Digest::of(b"other");
        c.insert_manifest(&other, m).unwrap();
        assert_eq!(c.manifest(&other).unwrap(), None);
        assert!(!dir
            .path()
            .join("manifests/sha256")
            .join(other.hex())
            .exists());

        let layer = Digest::of(b"gz");
        assert_eq!(c.diff_id(&layer), None);
        c.insert_diff_id(&layer, &d).unwrap();
        assert_eq!(c.diff_id(&layer), Some(d));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_diff_id_entry_is_used_only_whole_unchanged_and_for_its_own_layer() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let (layer, other) = (Digest::of(b"gz"), Digest::of(b"other gz"));
        let (good, forged) = (Digest::of(b"tar"), Digest::of(b"forged tar"));
        let path = |l: &Digest| dir.path().join("diffids/sha256").join(l.hex());
        let entry = DiffIdEntry::render(&layer, &good);
        let tampered = [
            // An older airlock's entry, or one written by hand: the bare diff ID.
            format!("{forged}\n"),
            // The diff ID changed, the checksum not.
            entry.replace(&good.to_string(), &forged.to_string()),
            // A consistent entry, but of another layer, under this layer's name.
            DiffIdEntry::render(&other, &forged),
            // Cut short, or with something after it.
            entry[..entry.len() - 10].to_string(),
            format!("{entry}x"),
            // Bigger than any entry.
            format!("{entry}{}", " ".repeat(2000)),
            String::new(),
        ];
        for bad in tampered {
            fs::write(path(&layer), &bad).unwrap();
            assert_eq!(c.diff_id(&layer), None, "{bad:?}");
            assert!(!path(&layer).exists(), "{bad:?} is removed");
        }
        c.insert_diff_id(&layer, &good).unwrap();
        assert_eq!(fs::read_to_string(path(&layer)).unwrap(), entry);
        assert_eq!(c.diff_id(&layer), Some(good));
    }
}
