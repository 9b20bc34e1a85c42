//! A registry's pull limit, once it answers with it (Docker Hub's 429 "You have reached your
//! pull rate limit"): that registry is asked nothing more in this pack, and every image it
//! leaves unfetched fails with the same text, which the failure report prints once with the
//! images counted ([`failure_lines`]) instead of once per image.
//!
//! Asking again cannot help before the window passes (docker/docs `docker-hub/usage/pulls.md`),
//! and every refused `GET` may count against the next window too. Requests already in flight
//! when the first answer arrives (at most `--jobs`) still get theirs.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::bundle::format::Failure;
use crate::registry::RegistryError;

/// Why an image was not fetched: its registry's pull limit was reached. The text is the same
/// for every image of that registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(super) struct LimitReached(String);

/// The registries that answered with their pull limit in this pack, and their first answer.
#[derive(Default)]
pub(super) struct PullLimits {
    reached: Mutex<BTreeMap<String, LimitReached>>,
}

impl PullLimits {
    /// `Err` when `registry` already answered with its pull limit: do not ask it.
    pub(super) fn check(&self, registry: &str) -> Result<(), LimitReached> {
        match self.lock().get(registry) {
            Some(r) => Err(r.clone()),
            None => Ok(()),
        }
    }

    /// Passes `e` through, unless it is `registry`'s pull limit: then the registry is not asked
    /// again, and the answer becomes the [`LimitReached`] every image of it gets (the first
    /// answer's, when several requests were in flight).
    pub(super) fn note(
        &self,
        registry: &str,
        e: RegistryError,
    ) -> Result<RegistryError, LimitReached> {
        if !matches!(e, RegistryError::PullLimit { .. }) {
            return Ok(e);
        }
        let mut reached = self.lock();
        let r = reached.entry(registry.to_string()).or_insert_with(|| {
            LimitReached(format!(
                "{e}; airlock asked {registry} nothing more in this pack"
            ))
        });
        Err(r.clone())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, LimitReached>> {
        self.reached.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The report lines of `failures`: one per image, except that images that failed with the very
/// same text (a registry's pull limit) share one line, which counts and names them.
pub fn failure_lines(failures: &[Failure]) -> Vec<String> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for f in failures {
        match groups.iter_mut().find(|(e, _)| *e == f.error) {
            Some((_, images)) => images.push(&f.source),
            None => groups.push((&f.error, vec![&f.source])),
        }
    }
    groups
        .into_iter()
        .map(|(error, images)| match images.as_slice() {
            [one] => crate::said_of(one, error),
            many => format!("{} images ({}): {error}", many.len(), many.join(", ")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(path: &str) -> RegistryError {
        RegistryError::PullLimit {
            request: format!("GET https://registry-1.docker.io/v2/{path}"),
            host: "registry-1.docker.io".into(),
            limit: Some(100),
            window_secs: Some(21600),
        }
    }

    #[test]
    fn the_first_pull_limit_answer_closes_the_registry_for_every_image() {
        let l = PullLimits::default();
        assert_eq!(l.check("docker.io"), Ok(()));
        // Other errors pass through and close nothing.
        let other = RegistryError::Config("x".into());
        assert!(matches!(
            l.note("docker.io", other),
            Ok(RegistryError::Config(_))
        ));
        assert_eq!(l.check("docker.io"), Ok(()));
        let first = l.note("docker.io", limit("a/manifests/1")).unwrap_err();
        assert!(first.0.contains("a/manifests/1") && first.0.contains("100 pulls per 6 h"));
        assert!(first
            .0
            .ends_with("airlock asked docker.io nothing more in this pack"));
        // A second answer in flight, and every later check, give the first text.
        assert_eq!(
            l.note("docker.io", limit("b/manifests/2")).unwrap_err(),
            first
        );
        assert_eq!(l.check("docker.io"), Err(first));
        assert_eq!(l.check("gcr.io"), Ok(()));
    }

    #[test]
    fn failures_with_the_same_text_are_reported_once_and_counted() {
        let f = |s: &str, e: &str| Failure {
            source: s.into(),
            error: e.into(),
        };
        let lines = failure_lines(&[
            f("docker.io/a:1", "limit"),
            f("gcr.io/b:1", "gcr.io/b:1 is at none of its places"),
            f("docker.io/c:1", "limit"),
            f("docker.io/d:1", "limit"),
            f("ghcr.io/e:1", "manifest unknown"),
        ]);
        assert_eq!(
            lines,
            [
                "3 images (docker.io/a:1, docker.io/c:1, docker.io/d:1): limit",
                "gcr.io/b:1 is at none of its places",
                "ghcr.io/e:1: manifest unknown",
            ]
        );
    }
}
