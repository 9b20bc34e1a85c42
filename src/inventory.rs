//! `airlock inventory`: what a registry holds, as JSON, so a delta bundle can be packed on the
//! connected side against the disconnected registry (`pack --base-registry-inventory`).
//!
//! Repositories come from `/v2/_catalog`, tags from `/v2/<name>/tags/list`; every tag's
//! manifest is fetched (and an index's platform manifests) to list its configs and layers.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bundle::format::OmittedBlob;
use crate::bundle::limits::MAX_SIDE_FILE_BYTES;
use crate::digest::Digest;
use crate::manifest::{self, Parsed};
use crate::reference::Reference;
use crate::registry::{Client, RegistryError};

/// `format` of an inventory file.
pub const INVENTORY_FORMAT: &str = "airlock-inventory";
/// Repositories per catalog request.
pub const CATALOG_PAGE: usize = 100;

/// An inventory file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    pub format: String,
    /// The registry as given to `--registry`.
    pub registry: String,
    pub repositories: Vec<RepositoryEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RepositoryEntry {
    pub name: String,
    pub tags: Vec<TagEntry>,
}

/// One tag: its manifest and every config and layer it needs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TagEntry {
    pub tag: String,
    pub digest: Digest,
    pub media_type: String,
    pub blobs: Vec<OmittedBlob>,
}

/// Why an inventory could not be taken or read.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("listing the repositories of {registry}")]
    Catalog {
        registry: String,
        #[source]
        source: RegistryError,
    },
    #[error("{}", crate::said_of(.image, .reason))]
    Image { image: String, reason: String },
    #[error("the inventory of {registry} is {size} bytes, more than the {MAX_SIDE_FILE_BYTES} that pack --base-registry-inventory reads")]
    TooLarge { registry: String, size: usize },
}

impl Inventory {
    /// Parses an inventory file's bytes and checks its format. The reason names no file: the
    /// caller does.
    pub fn parse(raw: &[u8]) -> Result<Inventory, String> {
        let inv: Inventory = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
        if inv.format != INVENTORY_FORMAT {
            return Err(format!(
                "format {:?}, expected {INVENTORY_FORMAT:?}",
                inv.format
            ));
        }
        Ok(inv)
    }

    /// The inventory file's text, refused when it is larger than `pack` reads.
    pub fn render(&self) -> Result<String, InventoryError> {
        let text = serde_json::to_string_pretty(self).expect("an inventory serialises");
        if text.len() as u64 >= MAX_SIDE_FILE_BYTES {
            return Err(InventoryError::TooLarge {
                registry: self.registry.clone(),
                size: text.len(),
            });
        }
        Ok(text)
    }

    /// Every config and layer digest listed, with its size.
    pub fn blobs(&self) -> BTreeMap<Digest, u64> {
        self.repositories
            .iter()
            .flat_map(|r| &r.tags)
            .flat_map(|t| &t.blobs)
            .map(|b| (b.digest.clone(), b.size))
            .collect()
    }
}

/// Takes the inventory of `registry` with `jobs` parallel requests.
pub fn collect(client: &Client, registry: &str, jobs: usize) -> Result<Inventory, InventoryError> {
    let repos =
        client
            .catalog(registry, CATALOG_PAGE)
            .map_err(|source| InventoryError::Catalog {
                registry: registry.to_string(),
                source,
            })?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.max(1))
        .build()
        .expect("building a thread pool");
    let repositories: Result<Vec<RepositoryEntry>, InventoryError> = pool.install(|| {
        repos
            .par_iter()
            .with_max_len(1)
            .map(|name| {
                let err = |reason: String| InventoryError::Image {
                    image: format!("{registry}/{name}"),
                    reason,
                };
                let mut tags = client
                    .tags_list(registry, name)
                    .map_err(|e| err(format!("listing tags: {e}")))?;
                tags.sort();
                let tags = tags
                    .par_iter()
                    .with_max_len(1)
                    .map(|t| tag_entry(client, registry, name, t))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(RepositoryEntry {
                    name: name.clone(),
                    tags,
                })
            })
            .collect()
    });
    let mut repositories = repositories?;
    repositories.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Inventory {
        format: INVENTORY_FORMAT.into(),
        registry: registry.to_string(),
        repositories,
    })
}

fn tag_entry(
    client: &Client,
    registry: &str,
    repo: &str,
    tag: &str,
) -> Result<TagEntry, InventoryError> {
    let image_s = format!("{registry}/{repo}:{tag}");
    let err = |reason: String| InventoryError::Image {
        image: image_s.clone(),
        reason,
    };
    let image = Reference::parse(&image_s).map_err(|e| err(e.to_string()))?;
    let top = client
        .get_manifest(&image)
        .map_err(|e| err(e.to_string()))?;
    let mut blobs = BTreeMap::new();
    let mut add = |p: &Parsed| {
        for b in p.blobs() {
            blobs.insert(b.digest.clone(), b.size);
        }
    };
    // A schema 1 manifest states no blob sizes: its blobs are left out of the inventory, so a
    // delta bundle made against it carries them (safe, if not minimal).
    let parsed = if crate::media_type::kind(&top.media_type) == crate::media_type::Kind::Schema1 {
        Parsed::Index(vec![])
    } else {
        manifest::parse(&image_s, &top.media_type, &top.raw).map_err(|e| err(e.to_string()))?
    };
    match &parsed {
        Parsed::Index(children) => {
            for c in children {
                let m = client
                    .get_manifest(&image.with_digest(c.blob.digest.clone()))
                    .map_err(|e| err(format!("platform manifest {}: {e}", c.blob.digest)))?;
                let p = manifest::parse(&image_s, &m.media_type, &m.raw)
                    .map_err(|e| err(e.to_string()))?;
                add(&p);
            }
        }
        p => add(p),
    }
    Ok(TagEntry {
        tag: tag.to_string(),
        digest: top.digest,
        media_type: top.media_type,
        blobs: blobs
            .into_iter()
            .map(|(digest, size)| OmittedBlob { digest, size })
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inventory_is_written_only_as_large_as_pack_reads() {
        let blob = |i: u32| OmittedBlob {
            digest: Digest::of(&i.to_le_bytes()),
            size: 1,
        };
        let mut inv = Inventory {
            format: INVENTORY_FORMAT.into(),
            registry: "reg.local".into(),
            repositories: vec![RepositoryEntry {
                name: "x".into(),
                tags: vec![TagEntry {
                    tag: "1".into(),
                    digest: Digest::of(b"m"),
                    media_type: crate::media_type::DOCKER_MANIFEST.into(),
                    blobs: (0..100).map(blob).collect(),
                }],
            }],
        };
        let text = inv.render().unwrap();
        assert_eq!(Inventory::parse(text.as_bytes()).unwrap(), inv);
        inv.repositories[0].tags[0].blobs = (0..100_000).map(blob).collect();
        let e = inv.render().unwrap_err().to_string();
        assert!(e.contains("more than the 8388608"), "{e}");
    }
}
