//! Finding each image before anything is downloaded.
//!
//! 1. [`locate`]: each image is looked for at its places in order with `HEAD`, which resolves
//!    the tag to a digest without Docker Hub counting a pull. A place that answers that it does
//!    not have the image (not found, denied, gone, or a token server that refuses the
//!    repository, as gcr.io's does for the deleted `kubernetes-helm` project), and a place that
//!    fails (a server error after the retries, a timeout, TLS), moves on to the next, as
//!    containerd's resolver moves on to its next host (`remotes/docker/resolver.go`): the
//!    places hold the same image, and one broken host must not hide a copy elsewhere. Nothing
//!    is silent: each place's answer is reported when a later one has the image, and all of
//!    them when none has. A pinned image whose tag resolves to another digest is refused at
//!    once, naming both.
//! 2. [`check_allowance`]: where a registry sent its pull allowance (`ratelimit-remaining`), the
//!    manifest `GET`s the pack still needs (manifests not in the cache, one per platform pulled)
//!    must fit, or the pack stops before downloading anything, with both numbers (with more
//!    than one platform kept, after fetching the indexes, to count their platforms).
//!
//! Then [`super::resolve`] reads and converts the manifests.

use std::collections::BTreeMap;

use super::pull_limit::{LimitReached, PullLimits};
use super::{PlannedImage, Platforms};
use crate::cache::Cache;
use crate::convert::oci::{self, EntryKind};
use crate::digest::Digest;
use crate::media_type::{self, Kind};
use crate::reference::Reference;
use crate::registry::{Client, Manifest, RateLimit, RegistryError};

/// Errors of resolving one image (each names the image).
pub(super) type ResolveError = Box<dyn std::error::Error + Send + Sync>;

/// An image found at one of its places.
pub(super) struct Located {
    pub(super) plan: PlannedImage,
    /// Where it was found.
    pub(super) place: Reference,
    /// What its tag resolved to there.
    pub(super) digest: Digest,
    pub(super) media_type: String,
    /// The pull allowance the registry announced, if any.
    pub(super) rate_limit: Option<RateLimit>,
    /// The places that did not have it, and what each said.
    pub(super) misses: Vec<String>,
    /// The index its tag names, when [`check_allowance`] fetched it to count its platforms.
    pub(super) index: Option<Manifest>,
}

/// Finds `plan` at the first of its places that has it (see the module docs). A place whose
/// registry answered with its pull limit is not asked ([`PullLimits`]); when that leaves the
/// image nowhere, it fails with the limit's text.
pub(super) fn locate(
    client: &Client,
    plan: &PlannedImage,
    limits: &PullLimits,
) -> Result<Located, ResolveError> {
    let image = &plan.reference;
    let places = if plan.places.is_empty() {
        vec![image.clone()]
    } else {
        plan.places.clone()
    };
    let mut misses = Vec::new();
    // The first place whose HEAD said 404: a HEAD answer has no body, so before giving up
    // one GET there tells what the registry says (MANIFEST_UNKNOWN, NAME_UNKNOWN, ...).
    let mut first_404: Option<(usize, &Reference)> = None;
    // The pull limit that kept a place from being asked, and how many places it kept.
    let mut limited: Option<LimitReached> = None;
    let mut limited_places = 0;
    for place in &places {
        let registry = place.registry();
        if let Err(l) = limits.check(registry) {
            misses.push(format!(
                "{place}: not asked, the pull rate limit of {registry} is reached"
            ));
            limited = Some(l);
            limited_places += 1;
            continue;
        }
        let answer = match client.head(place) {
            Ok(Some(h)) => Ok(Some((h.digest, h.media_type, h.rate_limit))),
            Ok(None) => Ok(None),
            // A registry whose HEAD says nothing useful (no digest, or no HEAD at all): the
            // manifest itself tells, at the price of a counted pull.
            Err(RegistryError::Protocol { .. }) | Err(RegistryError::Api { status: 405, .. }) => {
                client
                    .get_manifest(place)
                    .map(|m| Some((m.digest, m.media_type, None)))
            }
            Err(e) => Err(e),
        };
        let found = match answer {
            Ok(Some(found)) => Some(found),
            Ok(None) => {
                first_404.get_or_insert((misses.len(), place));
                misses.push(format!("{place}: not found"));
                None
            }
            // Not here, or this place is broken: the next one may have it (module docs).
            Err(e) => {
                match limits.note(registry, e) {
                    Ok(e) => misses.push(format!("{place}: {}", crate::error_chain(&e))),
                    Err(l) => {
                        misses.push(format!(
                            "{place}: the pull rate limit of {registry} is reached"
                        ));
                        limited = Some(l);
                        limited_places += 1;
                    }
                }
                None
            }
        };
        let Some((digest, media_type, rate_limit)) = found else {
            if let Some(miss) = misses.last() {
                log::info!("{image}: {miss}; trying the next place");
            }
            continue;
        };
        log::info!("{image}: found at {place} as {digest}");
        if let Some(pin) = &plan.pin {
            if *pin != digest {
                let at = if place == image {
                    String::new()
                } else {
                    format!(" at {place}")
                };
                return Err(format!(
                    "{image}{at} resolves to {digest}, but the pin table says {pin}; \
                     refusing it (the image changed upstream, or the place serves another one; \
                     if you trust it, give a pin table of your own with --pins)"
                )
                .into());
            }
        }
        return Ok(Located {
            plan: plan.clone(),
            place: place.clone(),
            digest,
            media_type,
            rate_limit,
            misses,
            index: None,
        });
    }
    // Every place was kept from being asked (or refused) by its pull limit: the image fails
    // with the limit's text, which the report gives once for all such images.
    if let Some(l) = limited.filter(|_| limited_places == places.len()) {
        return Err(Box::new(l));
    }
    if let Some((i, place)) = first_404 {
        if limits.check(place.registry()).is_ok() {
            if let Err(e) = client.get_manifest(place) {
                misses[i] = match limits.note(place.registry(), e) {
                    Ok(e) => format!("{place}: {}", crate::error_chain(&e)),
                    Err(_) => format!("{place}: not found"),
                };
            }
        }
    }
    Err(format!("{image} is at none of its places: {}", misses.join("; ")).into())
}

/// Why a pack stops before downloading: a registry's pull allowance is too small.
#[derive(Debug, thiserror::Error)]
#[error("{registry} allows {}{window}, and this pack needs {needed} ({} not in the cache, one pull per manifest and per platform); nothing was downloaded. Log in (`docker login`; airlock reads ~/.docker/config.json) for a larger allowance, or run again when the window has passed (manifests already fetched are kept in the cache)", crate::units::count(*.remaining, "more manifest pull"), crate::units::count(*.images, "image"), window = window_text(*.limit, *.window))]
pub struct AllowanceExceeded {
    pub registry: String,
    pub remaining: u64,
    pub limit: Option<u64>,
    pub window: Option<u64>,
    pub needed: u64,
    pub images: usize,
}

fn window_text(limit: Option<u64>, window: Option<u64>) -> String {
    match (limit, window) {
        (Some(l), Some(w)) => format!(" (of {l} per {} h)", w as f64 / 3600.0),
        (Some(l), None) => format!(" (of {l})"),
        (None, Some(w)) => format!(" (per {} h)", w as f64 / 3600.0),
        (None, None) => String::new(),
    }
}

/// True when the cache holds the manifest `d` (checked against its digest).
fn is_cached(cache: Option<&Cache>, d: &Digest) -> bool {
    cache.is_some_and(|c| matches!(c.manifest(d), Ok(Some(_))))
}

/// The manifest `GET`s resolving `l` will make: none for what the cache holds (or what was
/// fetched already), one for the top manifest otherwise, and for an index one per distinct
/// platform manifest resolving fetches and the cache does not hold: the first match of the
/// platform asked for; with several platforms or all of them, every image entry (every entry
/// with `keep`: the index is carried whole). Exact once the index is known (cached, or
/// fetched by [`check_allowance`]); before, a lower bound: the platforms asked for, at least
/// one.
pub(super) fn pulls_needed(
    l: &Located,
    cache: Option<&Cache>,
    platforms: &Platforms,
    keep: bool,
) -> u64 {
    let cached = |d: &Digest| is_cached(cache, d);
    let mut n = 0;
    if l.index.is_none() && !cached(&l.digest) {
        n += 1;
    }
    if media_type::kind(&l.media_type) != Kind::Index {
        return n;
    }
    let index = match &l.index {
        Some(m) => Some((m.raw.clone(), m.media_type.clone())),
        None => cache
            .and_then(|c| c.manifest(&l.digest).ok().flatten())
            .map(|raw| (raw, l.media_type.clone())),
    };
    match index.and_then(|(raw, mt)| oci::index_entries("index", &mt, &raw).ok()) {
        Some(entries) => {
            let image = |e: &&oci::IndexEntry| e.kind == EntryKind::Image;
            let fetched: Vec<&Digest> = match platforms {
                Platforms::One(p) => entries
                    .iter()
                    .filter(image)
                    .find(|e| e.platform.as_ref().is_some_and(|q| p.matches(q)))
                    .map(|e| &e.blob.digest)
                    .into_iter()
                    .collect(),
                _ if keep => entries.iter().map(|e| &e.blob.digest).collect(),
                _ => entries
                    .iter()
                    .filter(image)
                    .map(|e| &e.blob.digest)
                    .collect(),
            };
            // An index may name one platform manifest many times: it is fetched once.
            let distinct: std::collections::BTreeSet<&Digest> = fetched.into_iter().collect();
            n + distinct.into_iter().filter(|d| !cached(d)).count() as u64
        }
        None => {
            n + match platforms {
                Platforms::One(_) | Platforms::All => 1,
                Platforms::Several(ps) => ps.len() as u64,
            }
        }
    }
}

/// Refuses to start when a registry that announced its pull allowance has fewer pulls left
/// than the pack needs from it. First with what is known before any `GET` (a lower bound
/// when an index is not cached); then, when more than one platform is kept, each such index
/// is fetched with `fetch` (resolving needs it anyway; it is kept in `located` and in the
/// cache) so that its platform manifests are counted exactly, before any of them or any blob
/// is fetched.
pub(super) fn check_allowance(
    cache: Option<&Cache>,
    fetch: &dyn Fn(&Reference, &Digest) -> Option<Manifest>,
    located: &mut [Located],
    platforms: &Platforms,
    keep: bool,
) -> Result<(), AllowanceExceeded> {
    let mut limits: BTreeMap<String, RateLimit> = BTreeMap::new();
    for l in located.iter() {
        let Some(rl) = l.rate_limit else { continue };
        let e = limits.entry(l.place.registry().to_string()).or_insert(rl);
        // The lowest count is the latest.
        if rl.remaining < e.remaining {
            *e = rl;
        }
    }
    // `spent`: the pulls made here, per registry.
    let check = |located: &[Located], spent: &BTreeMap<String, u64>| {
        for (registry, rl) in &limits {
            let mut needed = spent.get(registry).copied().unwrap_or(0);
            let mut images = 0;
            for l in located.iter().filter(|l| l.place.registry() == registry) {
                let n = pulls_needed(l, cache, platforms, keep);
                needed += n;
                if n > 0 {
                    images += 1;
                }
            }
            if needed > rl.remaining {
                return Err(AllowanceExceeded {
                    registry: registry.clone(),
                    remaining: rl.remaining,
                    limit: rl.limit,
                    window: rl.window,
                    needed,
                    images,
                });
            }
        }
        Ok(())
    };
    let mut spent = BTreeMap::new();
    check(located, &spent)?;
    if matches!(platforms, Platforms::One(_)) {
        return Ok(());
    }
    for l in located.iter_mut() {
        let registry = l.place.registry().to_string();
        if !limits.contains_key(&registry)
            || media_type::kind(&l.media_type) != Kind::Index
            || is_cached(cache, &l.digest)
        {
            continue;
        }
        // A failure here is resolving's to report, for this image.
        if let Some(m) = fetch(&l.place, &l.digest) {
            l.index = Some(m);
            *spent.entry(registry).or_insert(0) += 1;
        }
    }
    check(located, &spent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_messages_give_both_numbers() {
        let e = AllowanceExceeded {
            registry: "docker.io".into(),
            remaining: 3,
            limit: Some(100),
            window: Some(21600),
            needed: 7,
            images: 6,
        }
        .to_string();
        assert!(e.contains("allows 3 more") && e.contains("needs 7"), "{e}");
        assert!(
            e.contains("of 100 per 6 h") && e.contains("docker login"),
            "{e}"
        );
    }
}
