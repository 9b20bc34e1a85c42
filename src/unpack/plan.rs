//! Where each image of a bundle goes: its targets under `--registry` and `--prefix`, built by
//! the contract's one target rule ([`contract::target_reference`]).

use std::collections::BTreeMap;

use super::UnpackError;
use crate::bundle::contract;
use crate::bundle::format::ImageRecord;
use crate::digest::Digest;
use crate::reference::Reference;

/// Where one image goes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Mapping {
    pub source: String,
    /// The main target, then the alternative paths (the pause image's second path).
    pub targets: Vec<String>,
    /// The digest the registry will give it.
    pub digest: Digest,
    /// The targets as references.
    #[serde(skip)]
    pub references: Vec<Reference>,
}

/// Maps every image of the bundle to its target references under `registry`/`prefix`.
pub fn plan(
    images: &[ImageRecord],
    registry: &str,
    prefix: &str,
) -> Result<Vec<Mapping>, UnpackError> {
    let mut owner: BTreeMap<String, String> = BTreeMap::new();
    let mut out = Vec::new();
    for rec in images {
        let mut references = Vec::new();
        for t in std::iter::once(&rec.target).chain(&rec.alt_targets) {
            let r = contract::target_reference(registry, prefix, t).map_err(|reason| {
                UnpackError::Target {
                    source_ref: rec.source.clone(),
                    reason,
                }
            })?;
            let key = r.to_string();
            if let Some(first) = owner.insert(key.clone(), rec.source.clone()) {
                if first != rec.source {
                    return Err(UnpackError::Collision {
                        target: key,
                        first,
                        second: rec.source.clone(),
                    });
                }
                continue;
            }
            references.push(r);
        }
        out.push(Mapping {
            source: rec.source.clone(),
            targets: references.iter().map(|r| r.to_string()).collect(),
            digest: rec.registry_digest().clone(),
            references,
        });
    }
    Ok(out)
}
