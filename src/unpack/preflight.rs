//! Before the first byte moves: the registry answers, the credentials work and pushing is
//! permitted; images already there are found (a rerun skips them); a registry that must
//! store schema 1 does; a delta bundle's omitted blobs are in the target (and where).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use rayon::prelude::*;

use super::UnpackError;
use crate::bundle::contract::Checked;
use crate::bundle::format::ImageRecord;
use crate::digest::Digest;
use crate::reference::Reference;
use crate::registry::{Client, RegistryError};

/// What the registry said before anything was pushed.
pub(super) struct Ready {
    /// Per image: every target already has its digest.
    pub present: Vec<bool>,
    /// A delta bundle's omitted blobs: the repository of the target each is mounted from.
    pub mount_source: BTreeMap<Digest, String>,
}

/// Runs every check on `registry`; `targets` are the images' targets, in bundle order.
pub(super) fn run(
    client: &Client,
    checked: &Checked,
    targets: &[Vec<Reference>],
    registry: &str,
    pool: &rayon::ThreadPool,
) -> Result<Ready, UnpackError> {
    let registry_err = |source| UnpackError::Registry {
        registry: registry.to_string(),
        source,
    };
    client.ping(registry).map_err(registry_err)?;
    // The contract refuses a bundle without images, so there is a first target.
    if let Some(first) = targets.iter().flatten().next() {
        client
            .check_push_access(registry, first.repository())
            .map_err(registry_err)?;
    }
    // Images whose every target already has the digest need nothing (a rerun).
    let present: Vec<bool> = pool.install(|| {
        checked
            .images
            .par_iter()
            .with_max_len(1)
            .zip(targets)
            .map(|(img, ts)| {
                let digest = img.record.registry_digest();
                let there = ts.iter().all(
                    |t| matches!(client.head_manifest(t), Ok(Some((d, _, _))) if d == *digest),
                );
                if there {
                    log::info!(
                        "{}: every target has {digest} already, skipped",
                        img.record.source
                    );
                }
                there
            })
            .collect()
    });
    let todo = checked
        .images
        .iter()
        .zip(targets)
        .zip(&present)
        .filter(|(_, done)| !**done)
        .map(|((img, ts), _)| (&img.record, ts.as_slice()));
    check_schema1_target(client, registry, todo)?;
    let mount_source = base_blobs(client, checked, targets, &present, registry, pool)?;
    Ok(Ready {
        present,
        mount_source,
    })
}

/// Refuses, before anything is pushed, to unpack schema 1 images (kept with
/// `--keep-digests`) into a registry that does not store schema 1: asked with
/// [`Client::schema1_support`] in the first such image's target repository.
fn check_schema1_target<'a>(
    client: &Client,
    registry: &str,
    images: impl Iterator<Item = (&'a ImageRecord, &'a [Reference])>,
) -> Result<(), UnpackError> {
    let schema1: Vec<(&ImageRecord, &[Reference])> = images
        .filter(|(r, _)| crate::media_type::kind(&r.media_type) == crate::media_type::Kind::Schema1)
        .collect();
    let Some(first) = schema1.first().and_then(|(_, ts)| ts.first()) else {
        return Ok(());
    };
    let support = client
        .schema1_support(registry, first.repository())
        .map_err(|source| UnpackError::Registry {
            registry: registry.to_string(),
            source,
        })?;
    match support {
        crate::registry::Schema1Support::Accepted => Ok(()),
        crate::registry::Schema1Support::Refused(reason) => Err(UnpackError::Schema1Unsupported {
            registry: registry.to_string(),
            images: schema1.iter().map(|(r, _)| r.source.clone()).collect(),
            reason,
        }),
    }
}

/// A delta bundle: every omitted blob an image still to push needs must be in the target
/// already, found before anything is pushed; where it sits in another repository, it is
/// mounted from there. A registry that refuses to list its repositories is said to, in the
/// list of blobs not found.
fn base_blobs(
    client: &Client,
    checked: &Checked,
    targets: &[Vec<Reference>],
    present: &[bool],
    registry: &str,
    pool: &rayon::ThreadPool,
) -> Result<BTreeMap<Digest, String>, UnpackError> {
    let omitted = checked.manifest.omitted();
    let mut users: BTreeMap<&Digest, (BTreeSet<String>, BTreeSet<&str>)> = BTreeMap::new();
    for ((img, ts), done) in checked.images.iter().zip(targets).zip(present) {
        for b in img.blobs.iter().filter(|b| omitted.contains_key(&b.digest)) {
            if *done {
                continue;
            }
            let e = users.entry(&b.digest).or_default();
            e.0.extend(ts.iter().map(|t| t.repository().to_string()));
            e.1.insert(img.record.source.as_str());
        }
    }
    if users.is_empty() {
        return Ok(BTreeMap::new());
    }
    let bundle_repos: BTreeSet<String> = targets
        .iter()
        .flatten()
        .map(|t| t.repository().to_string())
        .collect();
    // The registry's other repositories (the base may have others), asked once.
    let catalog: OnceLock<Result<Vec<String>, String>> = OnceLock::new();
    let users: Vec<_> = users.into_iter().collect();
    type Found = Result<Option<String>, RegistryError>;
    let found: Vec<Found> = pool.install(|| {
        users
            .par_iter()
            .with_max_len(1)
            .map(|(d, (repos, _))| {
                let in_bundle = bundle_repos.iter().filter(|r| !repos.contains(*r));
                for repo in repos.iter().chain(in_bundle) {
                    if client.blob_exists(registry, repo, d)?.is_some() {
                        return Ok(Some(repo.clone()));
                    }
                }
                let all = catalog.get_or_init(|| {
                    client
                        .catalog(registry, 1000)
                        .map_err(|e| crate::error_chain(&e))
                });
                for repo in all.iter().flatten().filter(|r| !bundle_repos.contains(*r)) {
                    if client.blob_exists(registry, repo, d)?.is_some() {
                        return Ok(Some(repo.clone()));
                    }
                }
                Ok(None)
            })
            .collect()
    });
    let mut mount_source = BTreeMap::new();
    let mut missing = Vec::new();
    for ((d, (_, images)), f) in users.iter().zip(found) {
        let registry_err = |source| UnpackError::Registry {
            registry: registry.to_string(),
            source,
        };
        match f.map_err(registry_err)? {
            Some(repo) => {
                mount_source.insert((*d).clone(), repo);
            }
            None => missing.push(format!(
                "  blob {d} ({} bytes), used by {}",
                omitted[*d],
                images.iter().copied().collect::<Vec<_>>().join(", ")
            )),
        }
    }
    if !missing.is_empty() {
        return Err(UnpackError::BaseMissing {
            registry: registry.to_string(),
            missing,
            unlisted: catalog.get().and_then(|c| c.clone().err()),
        });
    }
    Ok(mount_source)
}
