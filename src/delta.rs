//! Delta bundles: what `pack --base BUNDLE` and `pack --base-registry-inventory FILE` build on.
//! A delta leaves out every config and layer the base carries (manifests always travel); its
//! `bundle.json` names the base and lists the omitted blobs, and `unpack` checks the target
//! registry holds them before it pushes anything.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::bundle::format::{self, BaseRef, InventoryRef};
use crate::bundle::limits::{MAX_JSON_BYTES, MAX_SIDE_FILE_BYTES};
use crate::digest::Digest;
use crate::inventory::Inventory;
use crate::parts::{self, PartsError};

/// What a delta bundle builds on: blobs the target registry will already hold.
#[derive(Debug, Clone, Default)]
pub struct DeltaBase {
    /// Recorded in `bundle.json` (its `omittedBlobs` is filled in by `pack`).
    pub record: BaseRef,
    /// Configs and layers available on the other side, with their sizes.
    pub blobs: BTreeMap<Digest, u64>,
}

/// Why a base cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DeltaError {
    #[error("reading the base bundle {}", .path.display())]
    Bundle {
        path: PathBuf,
        #[source]
        source: PartsError,
    },
    #[error("reading the inventory {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{} is not an airlock inventory: {reason}", .path.display())]
    Inventory { path: PathBuf, reason: String },
}

/// The base bundle's blobs (read through its seek table: entry names only, no layer is
/// decompressed), plus what the base itself relied on when it is a delta too.
pub fn from_bundle(path: &Path) -> Result<DeltaBase, DeltaError> {
    let err = |source| DeltaError::Bundle {
        path: path.to_path_buf(),
        source,
    };
    let (reader, _) = parts::open_bundle(path).map_err(err)?;
    let raw = reader
        .read_small(format::BUNDLE_JSON, MAX_JSON_BYTES)
        .map_err(|e| err(e.into()))?;
    let manifest = reader.bundle_manifest().map_err(|e| err(e.into()))?;
    let mut blobs: BTreeMap<Digest, u64> = manifest.omitted();
    for e in reader.entries() {
        if let Some(hex) = e.name.strip_prefix("blobs/sha256/") {
            if let Ok(d) = Digest::parse(&format!("sha256:{hex}")) {
                blobs.insert(d, e.size);
            }
        }
    }
    Ok(DeltaBase {
        record: BaseRef {
            bundle_json_sha256: Some(Digest::of(&raw)),
            ..BaseRef::default()
        },
        blobs,
    })
}

/// The blobs an inventory lists. The file must be a regular file of at most
/// [`MAX_SIDE_FILE_BYTES`].
pub fn from_inventory(path: &Path) -> Result<DeltaBase, DeltaError> {
    let raw = crate::input_file::read_capped(path, MAX_SIDE_FILE_BYTES).map_err(|e| {
        DeltaError::Read {
            path: path.to_path_buf(),
            source: e.into(),
        }
    })?;
    let inv = Inventory::parse(&raw).map_err(|reason| DeltaError::Inventory {
        path: path.to_path_buf(),
        reason,
    })?;
    Ok(DeltaBase {
        record: BaseRef {
            inventory: Some(InventoryRef {
                registry: inv.registry.clone(),
                sha256: Digest::of(&raw),
            }),
            ..BaseRef::default()
        },
        blobs: inv.blobs(),
    })
}
