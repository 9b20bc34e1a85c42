//! The readers' bounds ([`crate::bundle::limits`]), applied by `pack` before it fetches or
//! writes anything, so that airlock never writes a bundle its own `verify` and `unpack` refuse.

use super::{PackError, PlannedImage, Resolved};
use crate::bundle::contract;
use crate::bundle::format::Failure;
use crate::bundle::limits::{self, Budget};

/// Before anything is fetched: no more images than a bundle may hold, every target one that
/// `unpack` accepts (an image named by digest alone has no tag to push to), and no two images
/// that `unpack` would push to the same tag.
pub(super) fn check_plan(images: &[PlannedImage]) -> Result<(), PackError> {
    limits::image_count(images.len()).map_err(|reason| PackError::Limit { reason })?;
    let sources: Vec<String> = images.iter().map(|p| p.reference.to_string()).collect();
    for (p, source) in images.iter().zip(&sources) {
        for t in std::iter::once(&p.target).chain(&p.alt_targets) {
            contract::target(t).map_err(|e| PackError::Limit {
                reason: format!("{source}: {e}; name the image with a tag (repository:tag or repository:tag@digest)"),
            })?;
        }
    }
    let targets = images.iter().zip(&sources).map(|(p, source)| {
        let ts = std::iter::once(&p.target).chain(&p.alt_targets);
        (source.as_str(), ts.map(String::as_str).collect())
    });
    match contract::target_collisions(targets).into_iter().next() {
        Some((target, first, second)) => Err(PackError::Collision {
            target,
            first,
            second,
        }),
        None => Ok(()),
    }
}

/// After the manifests are fetched, before any blob is: an image whose config is larger than
/// readers accept, or one of whose manifests nests deeper than they accept, fails (it moves from `resolved` to `failures`, and none of its blobs is
/// fetched), and the manifests and references of the others must fit one bundle.
pub(super) fn check_resolved(
    resolved: &mut Vec<Resolved>,
    failures: &mut Vec<Failure>,
) -> Result<(), PackError> {
    resolved.retain(|r| {
        let configs = r.blobs.iter().filter(|b| r.configs.contains(&b.digest));
        let deep = r.manifests.iter().find_map(|(d, _, raw)| {
            contract::json_depth(raw)
                .err()
                .map(|e| format!("manifest {d}: {e}"))
        });
        match configs
            .map(limits::config_size)
            .find_map(Result::err)
            .or(deep)
        {
            None => true,
            Some(error) => {
                failures.push(Failure {
                    source: r.record.source.clone(),
                    error,
                });
                false
            }
        }
    });
    let mut budget = Budget::new();
    let limit = |reason| PackError::Limit { reason };
    for r in resolved.iter() {
        for (d, _, raw) in &r.manifests {
            budget.manifest(d, raw.len() as u64).map_err(limit)?;
        }
        budget
            .references(r.manifests.len() + r.blobs.len())
            .map_err(limit)?;
    }
    Ok(())
}

/// Before any blob is fetched: the bundle's tar, `entries` files in all, holds no more entries
/// than readers accept.
pub(super) fn check_entries(entries: u64) -> Result<(), PackError> {
    if entries > limits::MAX_ENTRIES {
        return Err(PackError::Limit {
            reason: format!(
                "it would hold {entries} entries, more than the {} readers accept; pack the images into several bundles",
                limits::MAX_ENTRIES
            ),
        });
    }
    Ok(())
}
