//! The bounds every reader of a bundle applies, and that `pack` applies before it writes one,
//! so that airlock never writes a bundle its own readers refuse. One place for the numbers;
//! `docs/security.md` states them.
//!
//! They bound what a hostile bundle or side file can cost: memory grows with the distinct
//! documents and entries a bundle holds, never with how often they are referenced, and every
//! file is read with a cap.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::manifest::{BlobRef, Child};

/// Largest `index.json`, `bundle.json` or image config accepted.
pub const MAX_JSON_BYTES: u64 = 8 << 20;

/// Largest side file accepted: `parts.json`, the `.sha256` checksum file, an inventory. The
/// same cap as `bundle.json`: 8 MiB holds the checksums of far more parts than a bundle may
/// have, and an inventory of about 60,000 blobs.
pub const MAX_SIDE_FILE_BYTES: u64 = MAX_JSON_BYTES;

/// Most parts a split bundle may have: `pack --split` refuses a size that would give more, and
/// readers refuse a layout (or a checksum file) that lists more.
pub const MAX_PARTS: usize = 10_000;

/// Most entries (files and directories) a bundle's tar may hold: as many as 10,000 images of
/// ten blobs each that share nothing. Real bundles hold a few hundred.
pub const MAX_ENTRIES: u64 = 100_000;

/// Longest entry name accepted, in bytes (airlock writes names of at most 77).
pub const MAX_NAME_BYTES: usize = 1024;

/// Largest PAX or GNU long-name record accepted.
pub const MAX_EXT_HEADER: u64 = 64 << 10;

/// Largest image config accepted.
pub const MAX_CONFIG_BYTES: u64 = MAX_JSON_BYTES;

/// Most images a bundle may hold.
pub const MAX_IMAGES: usize = 10_000;

/// Most platform manifests an index may list (real ones list a few dozen at most).
pub const MAX_INDEX_CHILDREN: usize = 1_024;

/// Most bytes of distinct manifests one image may have: its index and platform manifests.
pub const MAX_IMAGE_MANIFEST_BYTES: u64 = 16 << 20;

/// Most bytes of distinct manifests a whole bundle may have.
pub const MAX_BUNDLE_MANIFEST_BYTES: u64 = 64 << 20;

/// Most references a bundle's images may make, added up over its images: each image's
/// manifests, configs and layers, each once per image. Bounds what readers keep per image,
/// however many images share one document.
pub const MAX_REFERENCES: u64 = 500_000;

/// The platform manifests of an index whose own document is `top` bytes, each digest once (an
/// index may name one manifest many times; it is read, held and pushed once). Refused: more
/// than [`MAX_INDEX_CHILDREN`] children, or more than [`MAX_IMAGE_MANIFEST_BYTES`] of distinct
/// manifests in all.
pub fn index_children(top: u64, children: &[Child]) -> Result<Vec<&Child>, String> {
    if children.len() > MAX_INDEX_CHILDREN {
        return Err(format!(
            "its index lists {} platform manifests, more than the {MAX_INDEX_CHILDREN} accepted",
            children.len()
        ));
    }
    let mut seen = HashSet::new();
    let distinct: Vec<&Child> = children
        .iter()
        .filter(|c| seen.insert(&c.blob.digest))
        .collect();
    let bytes =
        crate::space::total(std::iter::once(top).chain(distinct.iter().map(|c| c.blob.size)));
    match bytes {
        Some(b) if b <= MAX_IMAGE_MANIFEST_BYTES => Ok(distinct),
        _ => Err(format!(
            "its index and platform manifests add up to more than the {MAX_IMAGE_MANIFEST_BYTES} bytes accepted for one image"
        )),
    }
}

/// Refuses a config larger than readers accept, from its descriptor (before reading it).
pub fn config_size(config: &BlobRef) -> Result<(), String> {
    if config.size > MAX_CONFIG_BYTES {
        return Err(format!(
            "config {} is {} bytes, more than the {MAX_CONFIG_BYTES} accepted",
            config.digest, config.size
        ));
    }
    Ok(())
}

/// What a bundle's images cost in all: distinct manifest bytes and references. Readers and
/// `pack` add every image's documents to one budget and refuse the bundle once it is spent.
#[derive(Debug, Default)]
pub struct Budget {
    manifests: HashSet<Digest>,
    manifest_bytes: u64,
    references: u64,
}

impl Budget {
    pub fn new() -> Budget {
        Budget::default()
    }

    /// Counts a manifest of `size` bytes (once per digest), before it is read.
    pub fn manifest(&mut self, d: &Digest, size: u64) -> Result<(), String> {
        if self.manifests.contains(d) {
            return Ok(());
        }
        match self.manifest_bytes.checked_add(size) {
            Some(total) if total <= MAX_BUNDLE_MANIFEST_BYTES => {
                self.manifest_bytes = total;
                self.manifests.insert(d.clone());
                Ok(())
            }
            _ => Err(format!(
                "its manifests add up to more than the {MAX_BUNDLE_MANIFEST_BYTES} bytes accepted for one bundle"
            )),
        }
    }

    /// Counts `n` references an image makes (its manifests, config and layers).
    pub fn references(&mut self, n: usize) -> Result<(), String> {
        self.references = self.references.saturating_add(n as u64);
        if self.references > MAX_REFERENCES {
            return Err(format!(
                "its images make more than {MAX_REFERENCES} references to manifests and blobs in all, more than accepted"
            ));
        }
        Ok(())
    }
}

/// Refuses more images than a bundle may hold.
pub fn image_count(n: usize) -> Result<(), String> {
    if n > MAX_IMAGES {
        return Err(format!(
            "{n} images, more than the {MAX_IMAGES} a bundle may hold"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type;

    fn child(d: &Digest, size: u64) -> Child {
        Child {
            blob: BlobRef {
                digest: d.clone(),
                size,
                media_type: media_type::DOCKER_MANIFEST.into(),
            },
            platform: None,
        }
    }

    #[test]
    fn an_index_naming_one_manifest_many_times_has_one_child() {
        let (a, b) = (Digest::of(b"a"), Digest::of(b"b"));
        let mut children = vec![child(&a, 4 << 20); 400];
        children.push(child(&b, 10));
        let distinct = index_children(1000, &children).unwrap();
        assert_eq!(distinct.len(), 2);
        assert_eq!(distinct[0].blob.digest, a);
        let five: Vec<Child> = (0..5u8)
            .map(|i| child(&Digest::of(&[i]), 4 << 20))
            .collect();
        let e = index_children(1000, &five).unwrap_err();
        assert!(e.contains("more than the 16777216 bytes"), "{e}");
        let many = vec![child(&a, 1); MAX_INDEX_CHILDREN + 1];
        assert!(index_children(10, &many).unwrap_err().contains("1025"));
        assert!(index_children(u64::MAX, &[child(&a, 2)]).is_err());
    }

    #[test]
    fn the_budget_counts_each_manifest_once() {
        let mut b = Budget::new();
        let a = Digest::of(b"a");
        for _ in 0..1000 {
            b.manifest(&a, 4 << 20).unwrap();
        }
        for i in 0..15u8 {
            b.manifest(&Digest::of(&[i]), 4 << 20).unwrap();
        }
        assert!(b.manifest(&Digest::of(b"one more"), 1).is_err());
        assert!(b.manifest(&a, 4 << 20).is_ok());
        let mut b = Budget::new();
        b.references(MAX_REFERENCES as usize).unwrap();
        assert!(b.references(1).is_err());
    }

    #[test]
    fn image_count_is_bounded() {
        assert!(image_count(MAX_IMAGES).is_ok());
        assert!(image_count(MAX_IMAGES + 1).is_err());
    }
}
