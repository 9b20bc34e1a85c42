//! Where an image is served today, and the digest a trusted record gives for it.
//!
//! Rancher 1.6 names its images as they were served in 2017–2019. Some of those places are gone:
//! gcr.io stopped serving `google_containers` in 2025 (the same images, same digests, are at
//! `registry.k8s.io/<name>`), `gcr.io/kubernetes-helm` was deleted (tiller is at
//! `ghcr.io/helm/tiller` and `docker.io/helmpack/tiller`). The facts live in
//! `data/upstreams-today.json` (sources in `data/README.md`), embedded at build time.
//!
//! - [`places`] gives, for a reference, the ordered places to fetch it from: the operator's own
//!   `--relocate` rules first (an internal proxy cache is where the operator wants traffic to
//!   go, and it may be the only way out of the site), then the reference as Rancher names it,
//!   then the known relocations. `pack` moves to the next place when one does not have the
//!   image (not found, denied, gone) or fails, and reports what each said
//!   (`pack::locate`); `--mirror` applies to every place.
//! - [`Pins`] holds upstream digests from a trusted record (the Kubernetes legacy backfill list
//!   for every `gcr.io/google_containers` image Rancher 1.6 uses). `pack` refuses an image whose
//!   tag resolves to another digest, naming both. `--pins FILE` replaces the table (a test
//!   rehearsal serves images of its own; an operator may keep a record of their own), and the
//!   bundle records which table was used.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::digest::Digest;
use crate::reference::{Reference, ReferenceError, DOCKER_HUB};

const DATA: &str = include_str!("../data/upstreams-today.json");

/// Why a place or pin table was refused.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The embedded data file is broken: a bug in airlock, caught by its tests.
    #[error("the embedded data/upstreams-today.json is invalid: {0}")]
    Data(String),
    #[error("invalid --relocate {rule:?}: {reason}")]
    Relocate { rule: String, reason: String },
    #[error("cannot read the pin table {}", path.display())]
    ReadPins {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    PinLine {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// One place an image can be fetched from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    /// The reference to fetch there.
    pub reference: Reference,
    /// Why this place is on the list.
    pub why: String,
}

/// A prefix rewrite: `FROM=TO`, applied at a path boundary of `registry/repository`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relocation {
    pub from: String,
    pub to: String,
}

impl Relocation {
    /// `image` at the place this rule sends it, if the rule applies.
    pub fn apply(&self, image: &Reference) -> Option<Reference> {
        let name = image.name();
        let rest = name.strip_prefix(&self.from)?;
        if !(rest.is_empty() || rest.starts_with('/')) {
            return None;
        }
        let mut s = format!("{}{rest}", self.to);
        if let Some(t) = image.tag() {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = image.digest() {
            s.push('@');
            s.push_str(&d.to_string());
        }
        let moved = Reference::parse(&s).ok()?;
        // TO names a registry (checked when the rule was parsed), so the result parses back to
        // exactly this name; anything else would be a silent move to Docker Hub.
        (moved.name() == format!("{}{rest}", self.to)).then_some(moved)
    }
}

/// `docker.io` for Docker Hub's other names; a trailing `/` dropped.
fn normalize_prefix(p: &str) -> String {
    let p = p.trim().trim_end_matches('/');
    for alias in ["index.docker.io", "registry-1.docker.io"] {
        if let Some(rest) = p.strip_prefix(alias) {
            if rest.is_empty() || rest.starts_with('/') {
                return format!("{DOCKER_HUB}{rest}");
            }
        }
    }
    p.to_string()
}

/// A prefix that names a registry and optional path: `harbor.local/proxy`, `docker.io`.
fn check_prefix(p: &str) -> Result<(), String> {
    // Two components, so a Docker Hub prefix gets no `library/`.
    let probe =
        Reference::parse(&format!("{p}/x/y:1")).map_err(|e: ReferenceError| e.to_string())?;
    if probe.name() != format!("{p}/x/y") {
        return Err(format!(
            "{p:?} must start with a registry host (with a \".\" or \":\", or localhost), e.g. docker.io or harbor.local/proxy"
        ));
    }
    Ok(())
}

impl FromStr for Relocation {
    type Err = UpstreamError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| UpstreamError::Relocate {
            rule: s.to_string(),
            reason,
        };
        let (from, to) = s.split_once('=').ok_or_else(|| {
            err("expected FROM=TO, e.g. docker.io=harbor.local/dockerhub-proxy".into())
        })?;
        let (from, to) = (normalize_prefix(from), normalize_prefix(to));
        check_prefix(&from).map_err(err)?;
        check_prefix(&to).map_err(err)?;
        Ok(Relocation { from, to })
    }
}

impl fmt::Display for Relocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.from, self.to)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataFile {
    #[allow(dead_code)] // for readers of the data file
    origin: String,
    schema: u32,
    relocations: Vec<DataRelocation>,
    pins: DataPins,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataRelocation {
    from: String,
    to: Vec<String>,
    source: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataPins {
    source: String,
    aliases: DataAliases,
    images: BTreeMap<String, String>,
}

/// Names under which the pinned images are served with the same digests.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataAliases {
    of: String,
    names: Vec<String>,
    #[allow(dead_code)] // for readers of the data file
    source: String,
}

struct Known {
    /// (rule, where it comes from)
    relocations: Vec<(Relocation, String)>,
    /// Rewrites of another name of a pinned image to the name the pin table uses.
    aliases: Vec<Relocation>,
    pins: Pins,
}

fn known() -> Result<&'static Known, UpstreamError> {
    static KNOWN: OnceLock<Result<Known, String>> = OnceLock::new();
    KNOWN
        .get_or_init(|| load(DATA))
        .as_ref()
        .map_err(|e| UpstreamError::Data(e.clone()))
}

fn load(text: &str) -> Result<Known, String> {
    let data: DataFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if data.schema != 1 {
        return Err(format!("unsupported schema {}", data.schema));
    }
    let mut relocations = Vec::new();
    for r in &data.relocations {
        for to in &r.to {
            let rule: Relocation = format!("{}={to}", r.from)
                .parse()
                .map_err(|e: UpstreamError| e.to_string())?;
            relocations.push((rule, r.source.clone()));
        }
    }
    let aliases = data
        .pins
        .aliases
        .names
        .iter()
        .map(|a| {
            format!("{a}={}", data.pins.aliases.of)
                .parse()
                .map_err(|e: UpstreamError| e.to_string())
        })
        .collect::<Result<Vec<Relocation>, _>>()?;
    let mut map = BTreeMap::new();
    for (r, d) in &data.pins.images {
        let r = Reference::parse(r).map_err(|e| e.to_string())?;
        let d = Digest::parse(d).map_err(|e| e.to_string())?;
        map.insert(r, d);
    }
    Ok(Known {
        relocations,
        pins: Pins {
            source: PinSource::Builtin {
                record: data.pins.source,
            },
            map,
            aliases: aliases.clone(),
        },
        aliases,
    })
}

/// The built-in alias rules (none if the embedded data were broken, which the tests catch).
fn known_aliases() -> Vec<Relocation> {
    known().map(|k| k.aliases.clone()).unwrap_or_default()
}

/// The places to fetch `image` from, in order: the operator's `user` rules applied to each
/// known place, then the reference itself, then the places it is known to have moved to.
/// Each place appears once.
pub fn places(image: &Reference, user: &[Relocation]) -> Vec<Place> {
    let mut known_places = vec![Place {
        reference: image.clone(),
        why: "as Rancher names it".into(),
    }];
    if let Ok(k) = known() {
        for (rule, source) in &k.relocations {
            if let Some(r) = rule.apply(image) {
                known_places.push(Place {
                    reference: r,
                    why: format!("moved ({source})"),
                });
            }
        }
    }
    let mut out: Vec<Place> = Vec::new();
    for p in &known_places {
        for rule in user {
            if let Some(r) = rule.apply(&p.reference) {
                out.push(Place {
                    reference: r,
                    why: format!("--relocate {rule}"),
                });
            }
        }
    }
    out.extend(known_places);
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(p.reference.clone()));
    out
}

/// Which pin table a pack used.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum PinSource {
    /// airlock's own, from `data/upstreams-today.json`; `record` names the trusted record.
    Builtin { record: String },
    /// `--pins FILE`: the file name and the sha256 of its content.
    File { file: String, sha256: Digest },
}

/// Upstream digests by reference: what each tag must resolve to.
///
/// A pin holds for every name the image is served under with the same digests: a pin of
/// `gcr.io/google_containers/X:T` holds for `gcr.io/google-containers/X:T`, `k8s.gcr.io/X:T`
/// and `registry.k8s.io/X:T` too (`pins.aliases` in `data/upstreams-today.json`), in the
/// built-in table and in a `--pins` file alike, so an image list that names the image as it
/// is served today is checked the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    pub source: PinSource,
    map: BTreeMap<Reference, Digest>,
    /// Other name → the name `map` uses.
    aliases: Vec<Relocation>,
}

impl Pins {
    /// airlock's built-in table (empty if the embedded data were broken, which the tests catch).
    pub fn builtin() -> Pins {
        known().map(|k| k.pins.clone()).unwrap_or(Pins {
            source: PinSource::Builtin {
                record: String::new(),
            },
            map: BTreeMap::new(),
            aliases: Vec::new(),
        })
    }

    /// Reads a pin table: one `REFERENCE DIGEST` pair a line; blank lines and `#` comments are
    /// skipped. A reference listed twice is refused, and so is one pinned under two of its
    /// names with different digests.
    pub fn read(path: &Path) -> Result<Pins, UpstreamError> {
        let raw = std::fs::read(path).map_err(|source| UpstreamError::ReadPins {
            path: path.to_path_buf(),
            source,
        })?;
        let text = String::from_utf8_lossy(&raw);
        let mut map = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let err = |reason: String| UpstreamError::PinLine {
                path: path.to_path_buf(),
                line: n + 1,
                reason,
            };
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(r), Some(d), None) = (words.next(), words.next(), words.next()) else {
                return Err(err("expected REFERENCE DIGEST".into()));
            };
            let r = Reference::parse(r).map_err(|e| err(e.to_string()))?;
            let d = Digest::parse(d).map_err(|e| err(e.to_string()))?;
            let aliases = known_aliases();
            let same =
                |a: &Reference, b: &Reference| canonical(&aliases, a) == canonical(&aliases, b);
            if let Some((other, _)) = map.iter().find(|(o, od)| same(o, &r) && **od != d) {
                return Err(err(format!(
                    "{r} is the image {other} names (the same digests under another name), pinned to another digest"
                )));
            }
            if map.insert(r.clone(), d).is_some() {
                return Err(err(format!("{r} is pinned twice")));
            }
        }
        Ok(Pins {
            source: PinSource::File {
                file: path
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                sha256: Digest::of(&raw),
            },
            map,
            aliases: known_aliases(),
        })
    }

    /// The digest `image` must resolve to, if the table pins it under this name or under
    /// another name of the same image.
    pub fn get(&self, image: &Reference) -> Option<&Digest> {
        self.map.get(image).or_else(|| {
            self.map
                .iter()
                .find(|(pinned, _)| {
                    canonical(&self.aliases, pinned) == canonical(&self.aliases, image)
                })
                .map(|(_, d)| d)
        })
    }

    /// How many references the table pins.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True for an empty table.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// `image` under the name the pin tables use for it (`k8s.gcr.io/X` → `gcr.io/google_containers/X`).
fn canonical(aliases: &[Relocation], image: &Reference) -> Reference {
    aliases
        .iter()
        .find_map(|a| a.apply(image))
        .unwrap_or_else(|| image.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        Reference::parse(s).unwrap()
    }

    fn refs(p: &[Place]) -> Vec<String> {
        p.iter().map(|p| p.reference.to_string()).collect()
    }

    #[test]
    fn embedded_data_loads() {
        let k = known().unwrap();
        assert!(k.relocations.len() >= 4);
        let pins = Pins::builtin();
        assert_eq!(pins.len(), 17);
        assert!(
            matches!(&pins.source, PinSource::Builtin { record } if record.contains("0a04c7f8dad34bf634905cb2b2fb85977de1e39e"))
        );
        assert_eq!(
            pins.get(&r("gcr.io/google_containers/pause-amd64:3.0"))
                .unwrap()
                .to_string(),
            "sha256:163ac025575b775d1c0f9bf0bdd0f086883171eb475b5068e7defa4ca9e76516"
        );
        assert_eq!(
            pins.get(&r("gcr.io/google_containers/k8s-dns-kube-dns-amd64:1.14.5"))
                .unwrap()
                .to_string(),
            "sha256:1a3fc069de481ae690188f6f1ba4664b5cc7760af37120f70c86505c79eea61d"
        );
        assert!(pins.get(&r("docker.io/library/busybox:latest")).is_none());
    }

    #[test]
    fn a_pin_holds_for_every_name_of_the_image() {
        let pause = "sha256:163ac025575b775d1c0f9bf0bdd0f086883171eb475b5068e7defa4ca9e76516";
        let pins = Pins::builtin();
        for name in [
            "gcr.io/google_containers/pause-amd64:3.0",
            "gcr.io/google-containers/pause-amd64:3.0",
            "k8s.gcr.io/pause-amd64:3.0",
            "registry.k8s.io/pause-amd64:3.0",
        ] {
            assert_eq!(
                pins.get(&r(name)).map(ToString::to_string).as_deref(),
                Some(pause),
                "{name}"
            );
        }
        // Other tags, other repositories and look-alike hosts are not pinned.
        for name in [
            "registry.k8s.io/pause-amd64:3.1",
            "registry.k8s.io/pause:3.0",
            "registry.k8s.io.example.com/pause-amd64:3.0",
            "docker.io/library/pause-amd64:3.0",
            "gcr.io/other/pause-amd64:3.0",
        ] {
            assert_eq!(pins.get(&r(name)), None, "{name}");
        }

        // A --pins file: the same, and a file that pins one image under two of its names
        // with different digests is refused.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pins.txt");
        let d = Digest::of(b"mine");
        std::fs::write(&f, format!("registry.k8s.io/pause-amd64:3.0 {d}\n")).unwrap();
        let p = Pins::read(&f).unwrap();
        assert_eq!(
            p.get(&r("gcr.io/google_containers/pause-amd64:3.0")),
            Some(&d)
        );
        assert_eq!(p.get(&r("k8s.gcr.io/pause-amd64:3.0")), Some(&d));
        std::fs::write(
            &f,
            format!(
                "gcr.io/google_containers/pause-amd64:3.0 {d}\nk8s.gcr.io/pause-amd64:3.0 {d}\n"
            ),
        )
        .unwrap();
        assert!(
            Pins::read(&f).is_ok(),
            "the same digest twice is consistent"
        );
        let other = Digest::of(b"other");
        std::fs::write(
            &f,
            format!("gcr.io/google_containers/pause-amd64:3.0 {d}\nk8s.gcr.io/pause-amd64:3.0 {other}\n"),
        )
        .unwrap();
        let e = Pins::read(&f).unwrap_err().to_string();
        assert!(
            e.contains("pins.txt:2")
                && e.contains("k8s.gcr.io/pause-amd64:3.0")
                && e.contains("another digest"),
            "{e}"
        );
    }

    #[test]
    fn every_gcr_image_of_every_release_is_pinned() {
        let pins = Pins::builtin();
        for v in crate::catalog::releases() {
            for t in crate::catalog::release(v).unwrap().templates {
                for i in t.images {
                    if i.reference.name().starts_with("gcr.io/google_containers/") {
                        assert!(pins.get(&i.reference).is_some(), "{v}: {}", i.reference);
                    }
                }
            }
        }
    }

    #[test]
    fn known_places_follow_the_reference() {
        assert_eq!(
            refs(&places(&r("gcr.io/google_containers/pause-amd64:3.0"), &[])),
            [
                "gcr.io/google_containers/pause-amd64:3.0",
                "registry.k8s.io/pause-amd64:3.0"
            ]
        );
        assert_eq!(
            refs(&places(&r("gcr.io/kubernetes-helm/tiller:v2.6.1"), &[])),
            [
                "gcr.io/kubernetes-helm/tiller:v2.6.1",
                "ghcr.io/helm/tiller:v2.6.1",
                "docker.io/helmpack/tiller:v2.6.1"
            ]
        );
        assert_eq!(
            refs(&places(&r("docker.io/rancher/k8s:v1.8.5-rancher4"), &[])),
            ["docker.io/rancher/k8s:v1.8.5-rancher4"]
        );
        // A path boundary: gcr.io/kubernetes-helm/tiller-x is not tiller.
        assert_eq!(
            places(&r("gcr.io/kubernetes-helm/tiller-x:1"), &[]).len(),
            1
        );
    }

    #[test]
    fn user_relocations_come_first_and_apply_to_every_place() {
        let user: Vec<Relocation> = vec![
            "registry.k8s.io=proxy.local:5000/k8s".parse().unwrap(),
            "index.docker.io=proxy.local:5000/hub/".parse().unwrap(),
        ];
        assert_eq!(user[1].to_string(), "docker.io=proxy.local:5000/hub");
        assert_eq!(
            refs(&places(
                &r("gcr.io/google_containers/pause-amd64:3.0"),
                &user
            )),
            [
                "proxy.local:5000/k8s/pause-amd64:3.0",
                "gcr.io/google_containers/pause-amd64:3.0",
                "registry.k8s.io/pause-amd64:3.0"
            ]
        );
        let p = places(&r("busybox"), &user);
        assert_eq!(
            refs(&p),
            [
                "proxy.local:5000/hub/library/busybox:latest",
                "docker.io/library/busybox:latest"
            ]
        );
        assert!(p[0]
            .why
            .contains("--relocate docker.io=proxy.local:5000/hub"));
    }

    #[test]
    fn bad_relocations_are_refused() {
        for bad in [
            "docker.io",
            "=x.io",
            "docker.io=",
            "docker.io=proxy/x",
            "a.io=b.io/X",
        ] {
            let e = bad.parse::<Relocation>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn pin_files_are_read_strictly() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pins.txt");
        let d = Digest::of(b"x");
        std::fs::write(
            &f,
            format!("# test pins\n\ngcr.io/google_containers/pause-amd64:3.0 {d}  # pause\n"),
        )
        .unwrap();
        let p = Pins::read(&f).unwrap();
        assert_eq!(
            p.get(&r("gcr.io/google_containers/pause-amd64:3.0")),
            Some(&d)
        );
        assert!(matches!(&p.source, PinSource::File { file, .. } if file == "pins.txt"));
        std::fs::write(&f, format!("a:1 {d}\na:1 {d}\n")).unwrap();
        let e = Pins::read(&f).unwrap_err().to_string();
        assert!(e.contains("pins.txt:2") && e.contains("twice"), "{e}");
        std::fs::write(&f, "a:1 sha256:xyz\n").unwrap();
        assert!(Pins::read(&f)
            .unwrap_err()
            .to_string()
            .contains("pins.txt:1"));
        std::fs::write(&f, format!("a:1 {d} extra\n")).unwrap();
        assert!(Pins::read(&f).is_err());
        assert!(Pins::read(&dir.path().join("none")).is_err());
    }
}
