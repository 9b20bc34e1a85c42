//! Image references: `[registry/]repository[:tag][@digest]`, parsed and normalised the way Docker does.
//!
//! The grammar is that of the distribution project's `reference` package
//! (<https://github.com/distribution/reference/blob/main/regexp.go>), written out by hand:
//!
//! - registry: host name components (`[a-zA-Z0-9]` with inner `-`) joined by `.`, or an IPv6 address
//!   in brackets, optionally followed by `:port`;
//! - repository: `/`-separated components of lowercase letters and digits, joined inside a component
//!   by `.`, `_`, `__` or a run of `-`;
//! - tag: `[\w][\w.-]{0,127}`; digest: see [`Digest::parse`].
//!
//! Normalisation follows `normalize.go` (`splitDockerDomain`) and Rancher's cattle `DockerImage.splitHostName`:
//! the first component is a registry only if it contains `.` or `:` or is `localhost`; otherwise the
//! registry is `docker.io`. `index.docker.io` becomes `docker.io`, a one-component Docker Hub name gets
//! `library/`, and a reference with neither tag nor digest gets the tag `latest`.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// Docker Hub, as every normalised reference spells it.
pub const DOCKER_HUB: &str = "docker.io";
/// The legacy Docker Hub name, normalised to [`DOCKER_HUB`].
const LEGACY_DOCKER_HUB: &str = "index.docker.io";
/// The longest `registry/repository` accepted (distribution's `NameTotalLengthMax`).
pub const NAME_MAX: usize = 255;
/// The longest tag accepted.
pub const TAG_MAX: usize = 128;

/// A validated, normalised image reference such as `docker.io/library/busybox:latest`.
///
/// It always has a tag or a digest (or both).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why an image reference was refused. Every message quotes the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    /// The input is empty.
    #[error("invalid image reference \"\": it is empty")]
    Empty,
    /// A character that no part of a reference may contain.
    #[error("invalid image reference {input:?}: invalid character {ch:?}")]
    InvalidCharacter { input: String, ch: char },
    /// A bare 64-hex string, which Docker reads as an image ID.
    #[error("invalid image reference {input:?}: a 64-character hex string is an image ID, not a reference")]
    ImageId { input: String },
    /// Nothing before the `:tag` or `@digest`.
    #[error("invalid image reference {input:?}: the repository name is missing")]
    MissingName { input: String },
    /// `a//b`, `a/` or `reg.io/`.
    #[error("invalid image reference {input:?}: empty path component")]
    EmptyComponent { input: String },
    /// Uppercase letters in the repository.
    #[error("invalid image reference {input:?}: repository must be lowercase")]
    Uppercase { input: String },
    /// A repository component with a misplaced separator, such as `-a`, `a-` or `a..b`.
    #[error(
        "invalid image reference {input:?}: path component {component:?} must be lowercase letters and digits \
         joined by \".\", \"_\", \"__\" or dashes"
    )]
    InvalidComponent { input: String, component: String },
    /// A registry that is not `host[:port]`, or that would not be read back as a registry.
    #[error(
        "invalid image reference {input:?}: invalid registry {registry:?} (expected host[:port] \
         containing \".\" or \":\", or localhost)"
    )]
    InvalidRegistry { input: String, registry: String },
    /// A tag outside `[\w][\w.-]{0,127}`.
    #[error(
        "invalid image reference {input:?}: invalid tag {tag:?} (1 to 128 letters, digits, \"_\", \".\" or \"-\", \
         not starting with \".\" or \"-\")"
    )]
    InvalidTag { input: String, tag: String },
    /// The part after `@` is not a digest airlock accepts.
    #[error("invalid image reference {input:?}: bad digest")]
    InvalidDigest {
        input: String,
        #[source]
        source: DigestError,
    },
    /// `registry/repository` is longer than [`NAME_MAX`].
    #[error("invalid image reference {input:?}: the name is {len} characters long, more than 255")]
    NameTooLong { input: String, len: usize },
}

impl Reference {
    /// Parses and normalises a reference: `busybox` becomes `docker.io/library/busybox:latest`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let input = || quote(s);
        if let Some(ch) = s
            .chars()
            .find(|&c| !(c.is_ascii_alphanumeric() || "._-/:@[]".contains(c)))
        {
            return Err(ReferenceError::InvalidCharacter { input: input(), ch });
        }
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ReferenceError::ImageId { input: input() });
        }

        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let digest = Digest::parse(d).map_err(|source| ReferenceError::InvalidDigest {
                    input: input(),
                    source,
                })?;
                (n, Some(digest))
            }
            None => (s, None),
        };

        let (registry, rest) = match name_tag.split_once('/') {
            Some((first, rest)) if is_registry_like(first) => (Some(first), rest),
            _ => (None, name_tag),
        };
        // A registry's `:port` is gone, so any `:` left starts the tag.
        let (path, tag) = match rest.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (rest, None),
        };

        if let Some(r) = registry {
            if !valid_registry(r) {
                return Err(ReferenceError::InvalidRegistry {
                    input: input(),
                    registry: quote(r),
                });
            }
        }
        if path.is_empty() && registry.is_none() {
            return Err(ReferenceError::MissingName { input: input() });
        }
        check_path(path, s)?;
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(ReferenceError::InvalidTag {
                    input: input(),
                    tag: quote(t),
                });
            }
        }

        let registry = match registry {
            None | Some(LEGACY_DOCKER_HUB) => DOCKER_HUB,
            Some(r) => r,
        };
        let repository = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        let len = registry.len() + 1 + repository.len();
        if len > NAME_MAX {
            return Err(ReferenceError::NameTooLong {
                input: input(),
                len,
            });
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, None) => Some("latest".to_string()),
            (None, Some(_)) => None,
        };
        Ok(Reference {
            registry: registry.to_string(),
            repository,
            tag,
            digest,
        })
    }

    /// The registry host, with port if any: `docker.io`, `gcr.io`, `127.0.0.1:5000`, `localhost`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository within the registry: `library/busybox`, `google_containers/pause-amd64`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if any. A reference without a digest always has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What goes in `/v2/<name>/manifests/<this>`: the digest if present, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            // Unreachable by construction; `latest` is what Docker would ask for.
            (None, None) => "latest".to_string(),
        }
    }

    /// The same reference pinned to `d`; the tag is kept.
    pub fn with_digest(&self, d: Digest) -> Reference {
        Reference {
            digest: Some(d),
            ..self.clone()
        }
    }

    /// The same reference with another tag; a digest, if any, is kept.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag {
                input: quote(&format!("{}:{tag}", self.name())),
                tag: quote(tag),
            });
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same tag and digest at another place: `registry/repository`, validated and normalised.
    ///
    /// `registry` must look like a registry (contain `.` or `:`, or be `localhost`), since otherwise the
    /// result would print as a Docker Hub name and not parse back to itself.
    pub fn in_registry(
        &self,
        registry: &str,
        repository: &str,
    ) -> Result<Reference, ReferenceError> {
        let mut s = format!("{registry}/{repository}");
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        if !is_registry_like(registry) || !valid_registry(registry) {
            return Err(ReferenceError::InvalidRegistry {
                input: quote(&s),
                registry: quote(registry),
            });
        }
        if repository.contains([':', '@']) {
            return Err(ReferenceError::InvalidCharacter {
                input: quote(&s),
                ch: if repository.contains(':') { ':' } else { '@' },
            });
        }
        Reference::parse(&s)
    }

    /// `registry/repository`, e.g. `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }
}

/// Whether the first component of a name is a registry (cattle `DockerImage.splitHostName`,
/// distribution `splitDockerDomain`).
fn is_registry_like(first: &str) -> bool {
    first.contains(['.', ':']) || first == "localhost"
}

/// `host[:port]` where host is a DNS name or a bracketed IPv6 address.
fn valid_registry(r: &str) -> bool {
    let (host_ok, port) = if let Some(inner) = r.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return false;
        };
        let ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port = match after {
            "" => None,
            a => match a.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (ok, port)
    } else {
        let (host, port) = match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        };
        let ok = !host.is_empty()
            && host.split('.').all(|c| {
                let b = c.as_bytes();
                !b.is_empty()
                    && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                    && b[0] != b'-'
                    && b[b.len() - 1] != b'-'
            });
        (ok, port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks every `/`-separated repository component. `input` is the whole reference, for messages.
fn check_path(path: &str, input: &str) -> Result<(), ReferenceError> {
    for c in path.split('/') {
        if c.is_empty() {
            return Err(ReferenceError::EmptyComponent {
                input: quote(input),
            });
        }
        if c.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                input: quote(input),
            });
        }
        if let Some(ch) = c
            .chars()
            .find(|&ch| !(ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch)))
        {
            return Err(ReferenceError::InvalidCharacter {
                input: quote(input),
                ch,
            });
        }
        if !valid_component(c) {
            return Err(ReferenceError::InvalidComponent {
                input: quote(input),
                component: quote(c),
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`, for a component already known to hold only `[a-z0-9._-]`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    let mut i = 0;
    loop {
        // One or more letters or digits.
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        // Then one separator: ".", "_", "__" or a run of "-".
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`.
fn valid_tag(t: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// Keeps hostile input from flooding an error message.
fn quote(s: &str) -> String {
    const MAX: usize = 100;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Reference::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn kind(e: &ReferenceError) -> &'static str {
        match e {
            ReferenceError::Empty => "empty",
            ReferenceError::InvalidCharacter { .. } => "char",
            ReferenceError::ImageId { .. } => "id",
            ReferenceError::MissingName { .. } => "noname",
            ReferenceError::EmptyComponent { .. } => "emptycomp",
            ReferenceError::Uppercase { .. } => "upper",
            ReferenceError::InvalidComponent { .. } => "comp",
            ReferenceError::InvalidRegistry { .. } => "registry",
            ReferenceError::InvalidTag { .. } => "tag",
            ReferenceError::InvalidDigest { .. } => "digest",
            ReferenceError::NameTooLong { .. } => "long",
        }
    }

    #[test]
    fn valid_references_normalise() {
        let d = format!("sha256:{HEX}");
        let cases: Vec<(String, String)> = vec![
            ("busybox".into(), "docker.io/library/busybox:latest".into()),
            (
                "busybox:latest".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
            ),
            (
                "docker.io/library/busybox:1.28".into(),
                "docker.io/library/busybox:1.28".into(),
            ),
            (
                "index.docker.io/foo".into(),
                "docker.io/library/foo:latest".into(),
            ),
            (
                "index.docker.io/rancher/k8s:v1".into(),
                "docker.io/rancher/k8s:v1".into(),
            ),
            (
                "rancher/k8s:v1.8.5-rancher4".into(),
                "docker.io/rancher/k8s:v1.8.5-rancher4".into(),
            ),
            (
                "gcr.io/google_containers/pause-amd64:3.0".into(),
                "gcr.io/google_containers/pause-amd64:3.0".into(),
            ),
            ("127.0.0.1:5000/x:y".into(), "127.0.0.1:5000/x:y".into()),
            ("localhost/x".into(), "localhost/x:latest".into()),
            (
                "localhost:5000/a/b".into(),
                "localhost:5000/a/b:latest".into(),
            ),
            ("[::1]:5000/x".into(), "[::1]:5000/x:latest".into()),
            ("[fe80::1]/x:t".into(), "[fe80::1]/x:t".into()),
            (format!("name@{d}"), format!("docker.io/library/name@{d}")),
            (
                format!("name:tag@{d}"),
                format!("docker.io/library/name:tag@{d}"),
            ),
            (format!("reg.io:443/a/b@{d}"), format!("reg.io:443/a/b@{d}")),
            (
                "x/a.b_c__d-e---f/g".into(),
                "docker.io/x/a.b_c__d-e---f/g:latest".into(),
            ),
            (
                "Reg.Example.COM/x".into(),
                "Reg.Example.COM/x:latest".into(),
            ),
            (
                "my-reg.local/x/y/z:T_1.x-y".into(),
                "my-reg.local/x/y/z:T_1.x-y".into(),
            ),
            ("x:_tag".into(), "docker.io/library/x:_tag".into()),
            (
                format!("x:{}", "t".repeat(128)),
                format!("docker.io/library/x:{}", "t".repeat(128)),
            ),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
            ),
            (
                "gcr.io/kubernetes-helm/tiller:v2.6.1".into(),
                "gcr.io/kubernetes-helm/tiller:v2.6.1".into(),
            ),
            (
                "reg.local/gcr.io/google_containers/pause-amd64:3.0".into(),
                "reg.local/gcr.io/google_containers/pause-amd64:3.0".into(),
            ),
        ];
        for (input, want) in &cases {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(&r.to_string(), want, "{input:?}");
            // Display round-trips.
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input:?}");
        }
    }

    #[test]
    fn invalid_references_say_why() {
        let long_name = format!("a/{}", "b".repeat(250));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "empty"),
            ("Foo/bar".into(), "upper"),
            ("foo/Bar".into(), "upper"),
            ("BUSYBOX".into(), "upper"),
            ("a:".into(), "tag"),
            ("a:-bad".into(), "tag"),
            ("a:.bad".into(), "tag"),
            ("a:b:c".into(), "tag"),
            (format!("a:{}", "t".repeat(129)), "tag"),
            ("a@sha256:abc".into(), "digest"),
            (format!("a@md5:{HEX}"), "digest"),
            (format!("a@sha256:{}", HEX.to_uppercase()), "digest"),
            ("a@".into(), "digest"),
            ("a//b".into(), "emptycomp"),
            ("a/".into(), "emptycomp"),
            ("reg.io/".into(), "emptycomp"),
            ("-a".into(), "comp"),
            ("a-".into(), "comp"),
            ("a..b".into(), "comp"),
            ("a___b".into(), "comp"),
            ("a._b".into(), "comp"),
            (":tag".into(), "noname"),
            (format!("@sha256:{HEX}"), "noname"),
            ("a b".into(), "char"),
            ("a\tb".into(), "char"),
            ("a/b#c".into(), "char"),
            ("ünïcode".into(), "char"),
            ("a/[b]".into(), "char"),
            ("-reg.io/x".into(), "registry"),
            ("reg-.io/x".into(), "registry"),
            ("reg..io/x".into(), "registry"),
            ("a_b.io/x".into(), "registry"),
            ("reg.io:/x".into(), "registry"),
            ("reg.io:50a/x".into(), "registry"),
            ("[::1/x".into(), "registry"),
            ("[::1]x:5000/x".into(), "registry"),
            ("[zz::1]:5000/x".into(), "registry"),
            (HEX.into(), "id"),
            (long_name.clone(), "long"),
            (format!("reg.io/{}", "b".repeat(249)), "long"),
        ];
        for (input, want) in &cases {
            match Reference::parse(input) {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => assert_eq!(kind(&e), *want, "{input:?}: {e}"),
            }
        }
        // 255 exactly is fine: "docker.io/" + 245.
        assert!(Reference::parse(&format!("a/{}", "b".repeat(243))).is_ok());
    }

    #[test]
    fn messages_quote_the_input() {
        let e = Reference::parse("Foo/bar").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid image reference "Foo/bar": repository must be lowercase"#
        );
        let e = Reference::parse("a@sha256:abc").unwrap_err();
        assert!(e.to_string().contains(r#""a@sha256:abc""#), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        let long = "b".repeat(300);
        let e = Reference::parse(&format!("a/{long}")).unwrap_err();
        assert!(e.to_string().len() < 250, "{e}");
        for bad in ["a:-bad", "a//b", "-a", "a b", "[::1/x"] {
            let msg = Reference::parse(bad).unwrap_err().to_string();
            assert!(msg.contains(&format!("{bad:?}")), "{msg}");
        }
    }

    #[test]
    fn accessors() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        let r = Reference::parse("gcr.io/google_containers/pause-amd64:3.0").unwrap();
        assert_eq!(r.registry(), "gcr.io");
        assert_eq!(r.repository(), "google_containers/pause-amd64");
        assert_eq!(r.tag(), Some("3.0"));
        assert_eq!(r.digest(), None);
        assert_eq!(r.manifest_ref(), "3.0");
        assert_eq!(r.name(), "gcr.io/google_containers/pause-amd64");

        let pinned = r.with_digest(d.clone());
        assert_eq!(pinned.tag(), Some("3.0"));
        assert_eq!(pinned.manifest_ref(), d.to_string());
        assert_eq!(
            pinned.to_string(),
            format!("gcr.io/google_containers/pause-amd64:3.0@{d}")
        );

        let by_digest = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(by_digest.tag(), None);
        assert_eq!(by_digest.manifest_ref(), d.to_string());

        let b = Reference::parse("busybox").unwrap();
        assert_eq!(b.registry(), "docker.io");
        assert_eq!(b.repository(), "library/busybox");
        assert_eq!(b.tag(), Some("latest"));
    }

    #[test]
    fn with_tag_validates() {
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(
            r.with_tag("1.28").unwrap().to_string(),
            "docker.io/library/busybox:1.28"
        );
        let e = r.with_tag("-x").unwrap_err();
        assert_eq!(kind(&e), "tag");
        assert!(e.to_string().contains("busybox"), "{e}");
        assert_eq!(kind(&r.with_tag("").unwrap_err()), "tag");
    }

    #[test]
    fn in_registry_moves_and_validates() {
        let d = Digest::parse(&format!("sha256:{HEX}")).unwrap();
        let b = Reference::parse("busybox").unwrap().with_digest(d.clone());
        let moved = b.in_registry("reg.local:5000", "busybox").unwrap();
        assert_eq!(moved.registry(), "reg.local:5000");
        assert_eq!(moved.repository(), "busybox");
        assert_eq!(
            moved.to_string(),
            format!("reg.local:5000/busybox:latest@{d}")
        );

        let p = Reference::parse("gcr.io/google_containers/pause-amd64:3.0").unwrap();
        let alt = p
            .in_registry("localhost", "gcr.io/google_containers/pause-amd64")
            .unwrap();
        assert_eq!(
            alt.to_string(),
            "localhost/gcr.io/google_containers/pause-amd64:3.0"
        );
        assert_eq!(Reference::parse(&alt.to_string()).unwrap(), alt);

        let hub = p.in_registry("index.docker.io", "pause").unwrap();
        assert_eq!(hub.to_string(), "docker.io/library/pause:3.0");

        assert_eq!(kind(&p.in_registry("myreg", "x").unwrap_err()), "registry");
        assert_eq!(kind(&p.in_registry("reg.io", "X").unwrap_err()), "upper");
        assert_eq!(kind(&p.in_registry("reg.io", "x:1").unwrap_err()), "char");
        assert_eq!(kind(&p.in_registry("reg.io", "").unwrap_err()), "emptycomp");
    }

    #[test]
    fn serde_uses_the_display_string() {
        let r = Reference::parse("rancher/k8s:v1.8.5-rancher4").unwrap();
        let j = serde_json::to_string(&r).unwrap();
        assert_eq!(j, r#""docker.io/rancher/k8s:v1.8.5-rancher4""#);
        let back: Reference = serde_json::from_str(&j).unwrap();
        assert_eq!(back, r);
        let e = serde_json::from_str::<Reference>(r#""Foo/bar""#).unwrap_err();
        assert!(
            e.to_string()
                .contains(r#"invalid image reference "Foo/bar": repository must be lowercase"#),
            "{e}"
        );
        let parsed: Reference = "localhost/x".parse().unwrap();
        assert_eq!(format!("{parsed:?}"), "Reference(localhost/x:latest)");
    }
}
