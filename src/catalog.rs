//! The images each Rancher 1.6 release needs for a Kubernetes environment, and user image lists.
//!
//! The facts live in `data/rancher-1.6.json` (see `data/README.md`), embedded at build time. They
//! reproduce what Rancher's `print-catalog-images.py --k8saddons` selects from
//! [rancher/rancher-catalog](https://github.com/rancher/rancher-catalog) `v1.6-release`, corrected where that
//! script is wrong: add-ons come from the kubernetes-package tag equal to the `rancher/k8s` image tag, the
//! pause image and the network-services/ipsec/healthcheck stacks are included, and every image carries the
//! path Rancher asks a private registry for.
//!
//! A release has one or two k8s templates: the one the final catalog head selects, and, when a catalog
//! commit names the release and it chose a different template, the one selected at release time.
//! An air-gapped server without a catalog mirror runs roughly the latter, so the union is safest.
//!
//! A release also has its server group, outside the default selection: the `rancher/server` image,
//! the agent image that server requires on every host (cattle's `bootstrap.required.image`) and the
//! load-balancer image it starts (`lb.instance.image`), each with the repository, path and commit
//! it was read from.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::digest::Digest;
use crate::rancher::Role;
use crate::reference::{Reference, ReferenceError};
use crate::upstream::{self, Pins, Place, Relocation};

const DATA: &str = include_str!("../data/rancher-1.6.json");

/// Which part of a Kubernetes environment an image belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// The kubelet's pod infra container (`--pod-infra-container-image`).
    Pause,
    /// The images of the `kubernetes` infrastructure stack (k8s, etcd, kubectld, ...).
    Infra,
    /// The add-ons `rancher/k8s` deploys: kube-dns, dashboard, heapster, tiller.
    Addons,
    /// The other stacks of a k8s environment: network-services, ipsec, healthcheck.
    Stacks,
    /// The Rancher server, the agent it requires and its load balancer: not part of a k8s
    /// environment, so only when asked for (`--with-server`, `--only server`).
    Server,
}

impl Group {
    /// Every group, in image order.
    pub const ALL: [Group; 5] = [
        Group::Pause,
        Group::Infra,
        Group::Addons,
        Group::Stacks,
        Group::Server,
    ];
    /// The groups of a Kubernetes environment: what a selection without `--only` gives.
    pub const K8S: [Group; 4] = [Group::Pause, Group::Infra, Group::Addons, Group::Stacks];

    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Pause => "pause",
            Group::Infra => "infra",
            Group::Addons => "addons",
            Group::Stacks => "stacks",
            Group::Server => "server",
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Group {
    type Err = CatalogError;
    /// Accepts `pause`, `infra`, `addons` (or `k8saddons`, as Rancher's script spells it),
    /// `stacks` and `server`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pause" => Ok(Group::Pause),
            "infra" => Ok(Group::Infra),
            "addons" | "k8saddons" => Ok(Group::Addons),
            "stacks" => Ok(Group::Stacks),
            "server" => Ok(Group::Server),
            _ => Err(CatalogError::UnknownGroup(s.to_string())),
        }
    }
}

/// One image a template needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogImage {
    /// Where to pull it from, fully qualified.
    pub reference: Reference,
    /// Which part of the environment uses it.
    pub group: Group,
    /// `repository:tag` under the private registry that Rancher asks for: `busybox:latest` (no
    /// `library/`), `google_containers/pause-amd64:3.0`.
    pub private_path: String,
    /// Other paths to push it to as well, e.g. `gcr.io/google_containers/pause-amd64:3.0` for the pause
    /// image when the template default is left unchanged.
    pub alt_paths: Vec<String>,
    /// True when the image is not from sources but inferred (the add-ons of 1.6.29 and 1.6.30).
    pub inferred: bool,
    /// What the image is to a Rancher server, for the server group's images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Where to fetch it from today, in order ([`upstream::places`]): the reference first, then
    /// the places it moved to, after any `--relocate` places ([`with_upstream`]).
    pub places: Vec<Place>,
    /// The upstream digest its tag must resolve to, when a trusted record gives one.
    pub pin: Option<Digest>,
}

impl CatalogImage {
    /// The references to push this image to in `registry`: the private path, then the alternates.
    pub fn private_refs(&self, registry: &str) -> Result<Vec<Reference>, ReferenceError> {
        std::iter::once(&self.private_path)
            .chain(&self.alt_paths)
            .map(|p| {
                let (repo, tag) = split_path(p);
                let moved = self.reference.in_registry(registry, repo)?;
                match tag {
                    Some(t) if moved.tag() != Some(t) => moved.with_tag(t),
                    _ => Ok(moved),
                }
            })
            .collect()
    }
}

/// Sets every image's places (the operator's `relocations` first) and pin (from `pins`).
pub fn with_upstream(
    selected: &mut [(String, Vec<CatalogImage>)],
    relocations: &[Relocation],
    pins: &Pins,
) {
    for (_, images) in selected {
        for i in images {
            i.set_upstream(relocations, pins);
        }
    }
}

impl CatalogImage {
    fn set_upstream(&mut self, relocations: &[Relocation], pins: &Pins) {
        self.places = upstream::places(&self.reference, relocations);
        self.pin = pins.get(&self.reference).cloned();
    }
}

/// Splits `repo[:tag]` at the tag's `:` (the last one after the last `/`).
fn split_path(p: &str) -> (&str, Option<&str>) {
    let slash = p.rfind('/').map_or(0, |i| i + 1);
    match p[slash..].rfind(':') {
        Some(i) => (&p[..slash + i], Some(&p[slash + i + 1..])),
        None => (p, None),
    }
}

/// A k8s template as one release selects it, with all the images an environment on it needs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Template {
    /// The catalog template version, e.g. `v1.8.5-rancher4`.
    pub version: String,
    /// Where the answer comes from: `final catalog v1.6-release@52a5850` or
    /// `at release: catalog commit 069270d (2018-01-11)`.
    pub source: String,
    /// Pause, infra, add-ons, then stacks, each in data-file order.
    pub images: Vec<CatalogImage>,
}

/// A Rancher release and its k8s templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `1.6.14`.
    pub version: String,
    /// The final-catalog template first, then the at-release one if it differs.
    pub templates: Vec<Template>,
    /// The server, agent and load-balancer images of the release.
    pub server: ServerGroup,
}

/// A release's server group: the images and the files they were read from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServerGroup {
    /// The files read: rancher/rancher's `server/Dockerfile` at the release tag, and
    /// rancher/cattle's `cattle-global.properties` at the tag that Dockerfile pins.
    pub sources: Vec<Source>,
    /// The server, the agent and the load balancer, in that order (see [`Role`]).
    pub images: Vec<CatalogImage>,
}

impl ServerGroup {
    /// The image with `role`; every release has one of each.
    pub fn image(&self, role: Role) -> &CatalogImage {
        self.images
            .iter()
            .find(|i| i.role == Some(role))
            .expect("every role is checked when the data loads")
    }

    /// What bundle.json records of the group, so that `unpack` knows the server and its agent.
    pub fn request(&self) -> crate::bundle::format::ServerRequest {
        let r = |role| self.image(role).reference.to_string();
        crate::bundle::format::ServerRequest {
            server: r(Role::Server),
            agent: r(Role::Agent),
            load_balancer: r(Role::LoadBalancer),
        }
    }
}

/// A file a fact was read from: repository, tag, commit and path.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Source {
    /// `rancher/rancher`, `rancher/cattle` (on GitHub).
    pub repository: String,
    pub tag: String,
    /// The tag's commit, 40 hex digits.
    pub commit: String,
    pub path: String,
}

/// What `list` and `pack` were asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// The Rancher release, `1.6.14` or `v1.6.14`.
    pub version: String,
    /// One k8s template (`--k8s-template`); `None` means every template of the release.
    pub template: Option<String>,
    /// The groups to keep (`--only`); empty means those of a Kubernetes environment
    /// ([`Group::K8S`]).
    pub groups: Vec<Group>,
    /// Add the server group (`--with-server`).
    pub with_server: bool,
}

impl Selection {
    /// True when images of `group` are selected.
    pub fn wants(&self, group: Group) -> bool {
        match group {
            Group::Server => self.with_server || self.groups.contains(&Group::Server),
            g => self.groups.is_empty() || self.groups.contains(&g),
        }
    }
}

/// Why a catalog lookup or an image list failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The embedded data file is broken: a bug in airlock, caught by its tests.
    #[error("the embedded Rancher catalog data/rancher-1.6.json is invalid: {0}")]
    Data(String),
    /// A release the catalog does not know.
    #[error("unknown Rancher release {version:?}; known releases: {known}")]
    UnknownRelease { version: String, known: String },
    /// A Rancher 2 (or later) release: another product, out of airlock's scope.
    #[error(
        "Rancher {version} is out of scope: airlock moves the images of Rancher 1.6 (Cattle \
         environments running Kubernetes); Rancher 2 and later list their images in the \
         rancher-images.txt of each release. Known releases: {known}"
    )]
    OutOfScope { version: String, known: String },
    /// A k8s template the release does not use.
    #[error("Rancher {release} has no k8s template {template:?}; its templates: {known}")]
    UnknownTemplate {
        release: String,
        template: String,
        known: String,
    },
    /// An image group name that is not one of the five.
    #[error(
        "unknown image group {0:?}: expected pause, infra, addons (or k8saddons), stacks or server"
    )]
    UnknownGroup(String),
    /// The image list file could not be read.
    #[error("cannot read image list {}", path.display())]
    ReadList {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A line of the image list is not a valid reference.
    #[error("{}:{line}: bad entry in image list", path.display())]
    ListLine {
        path: PathBuf,
        line: usize,
        #[source]
        source: ReferenceError,
    },
}

// ---- the data file ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataFile {
    origin: String,
    schema: u32,
    templates: Vec<DataTemplate>,
    releases: Vec<DataRelease>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataTemplate {
    version: String,
    #[allow(dead_code)] // documentation for readers of the data file
    addons_source: Option<String>,
    pause: DataImage,
    infra: Vec<DataImage>,
    addons: Vec<DataImage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataImage {
    #[serde(rename = "ref")]
    reference: String,
    path: String,
    #[serde(default)]
    alt: Vec<String>,
    #[serde(default)]
    inferred: bool,
    #[allow(dead_code)] // which stack (and its template version) an image comes from
    #[serde(default)]
    stack: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataRelease {
    version: String,
    #[serde(rename = "final")]
    final_: DataPick,
    at_release: Option<DataPick>,
    stacks: Vec<DataImage>,
    server: DataServer,
}

/// A release's server group as the data file writes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataServer {
    /// rancher/rancher `server/Dockerfile` at the release tag.
    rancher: DataSource,
    /// rancher/cattle `resources/content/cattle-global.properties` at the tag the Dockerfile's
    /// `pinned_by` variable names.
    cattle: DataSource,
    images: Vec<DataServerImage>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataSource {
    repository: String,
    tag: String,
    commit: String,
    path: String,
    #[allow(dead_code)] // the variable of server/Dockerfile that names this tag
    #[serde(default)]
    pinned_by: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataServerImage {
    #[serde(rename = "ref")]
    reference: String,
    path: String,
    role: Role,
    /// `rancher` or `cattle`: which source holds it.
    from: String,
    #[allow(dead_code)] // the variable or property read, for readers of the data file
    key: String,
    #[serde(default)]
    inferred: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DataPick {
    template: String,
    source: String,
    #[allow(dead_code)] // the catalog directory, for readers of the data file
    dir: String,
}

struct Catalog {
    origin: String,
    releases: Vec<Release>,
}

fn catalog() -> Result<&'static Catalog, CatalogError> {
    static CATALOG: OnceLock<Result<Catalog, String>> = OnceLock::new();
    CATALOG
        .get_or_init(|| load(DATA))
        .as_ref()
        .map_err(|e| CatalogError::Data(e.clone()))
}

fn load(text: &str) -> Result<Catalog, String> {
    let data: DataFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if data.schema != 1 {
        return Err(format!("unsupported schema {}", data.schema));
    }
    let pins = Pins::builtin();
    let image = |d: &DataImage, group: Group| -> Result<CatalogImage, String> {
        let reference = Reference::parse(&d.reference).map_err(|e| e.to_string())?;
        Ok(CatalogImage {
            places: upstream::places(&reference, &[]),
            pin: pins.get(&reference).cloned(),
            reference,
            group,
            private_path: d.path.clone(),
            alt_paths: d.alt.clone(),
            inferred: d.inferred,
            role: None,
        })
    };
    let mut templates: HashMap<&str, Vec<CatalogImage>> = HashMap::new();
    for t in &data.templates {
        let mut images = vec![image(&t.pause, Group::Pause)?];
        for i in &t.infra {
            images.push(image(i, Group::Infra)?);
        }
        for i in &t.addons {
            images.push(image(i, Group::Addons)?);
        }
        if templates.insert(&t.version, images).is_some() {
            return Err(format!("template {} is listed twice", t.version));
        }
    }
    let template_images = |name: &str| {
        templates
            .get(name)
            .cloned()
            .ok_or_else(|| format!("unknown template {name}"))
    };
    let mut releases = Vec::new();
    for r in &data.releases {
        semver(&r.version).ok_or_else(|| format!("bad release version {:?}", r.version))?;
        // The stacks were only researched against the final catalog, so only the final template gets them.
        let mut images = template_images(&r.final_.template)?;
        for s in &r.stacks {
            images.push(image(s, Group::Stacks)?);
        }
        let mut source = r.final_.source.clone();
        let mut at = None;
        if let Some(a) = &r.at_release {
            if a.template == r.final_.template {
                source = format!("{source}; also {}", a.source);
            } else {
                at = Some(Template {
                    version: a.template.clone(),
                    source: a.source.clone(),
                    images: template_images(&a.template)?,
                });
            }
        }
        let mut ts = vec![Template {
            version: r.final_.template.clone(),
            source,
            images,
        }];
        ts.extend(at);
        let server = server_group(&r.version, &r.server, |d| {
            let mut i = image(
                &DataImage {
                    reference: d.reference.clone(),
                    path: d.path.clone(),
                    alt: vec![],
                    inferred: d.inferred,
                    stack: None,
                },
                Group::Server,
            )?;
            i.role = Some(d.role);
            Ok(i)
        })
        .map_err(|e| format!("release {}: server group: {e}", r.version))?;
        releases.push(Release {
            version: r.version.clone(),
            templates: ts,
            server,
        });
    }
    releases.sort_by_key(|r| semver(&r.version));
    Ok(Catalog {
        origin: data.origin,
        releases,
    })
}

/// A release's server group, checked: one image per role, in role order, each from a source
/// that names a full commit, and the server tagged with the release.
fn server_group(
    version: &str,
    d: &DataServer,
    image: impl Fn(&DataServerImage) -> Result<CatalogImage, String>,
) -> Result<ServerGroup, String> {
    let roles: Vec<Role> = d.images.iter().map(|i| i.role).collect();
    if roles != Role::ALL {
        return Err(format!("roles {roles:?}, expected {:?}", Role::ALL));
    }
    let mut sources = Vec::new();
    for (name, s) in [("rancher", &d.rancher), ("cattle", &d.cattle)] {
        let hex = |c: &str| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(&s.commit) || s.repository.is_empty() || s.path.is_empty() || s.tag.is_empty() {
            return Err(format!(
                "source {name} needs a repository, tag, path and full commit"
            ));
        }
        sources.push(Source {
            repository: s.repository.clone(),
            tag: s.tag.clone(),
            commit: s.commit.clone(),
            path: s.path.clone(),
        });
    }
    if d.rancher.tag != format!("v{version}") {
        return Err(format!(
            "rancher/rancher tag {} is not v{version}",
            d.rancher.tag
        ));
    }
    let mut images = Vec::new();
    for i in &d.images {
        if i.from != "rancher" && i.from != "cattle" {
            return Err(format!("{}: unknown source {:?}", i.reference, i.from));
        }
        images.push(image(i)?);
    }
    if images[0].reference.tag() != Some(d.rancher.tag.as_str()) {
        return Err(format!(
            "the server image {} is not tagged {}",
            images[0].reference, d.rancher.tag
        ));
    }
    Ok(ServerGroup { sources, images })
}

/// `1.6.14` as numbers, for sorting.
fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

/// Where the catalog data comes from, as stated in the data file.
pub fn origin() -> Result<&'static str, CatalogError> {
    Ok(&catalog()?.origin)
}

/// Every known release, oldest first: `1.6.0` .. `1.6.30`.
pub fn releases() -> Vec<&'static str> {
    catalog()
        .map(|c| c.releases.iter().map(|r| r.version.as_str()).collect())
        .unwrap_or_default()
}

/// The templates and images of one release; `version` may start with `v`.
pub fn release(version: &str) -> Result<Release, CatalogError> {
    let c = catalog()?;
    let want = version.trim();
    let want = want.strip_prefix('v').unwrap_or(want);
    c.releases
        .iter()
        .find(|r| r.version == want)
        .cloned()
        .ok_or_else(|| {
            let known = releases().join(", ");
            let version = version.to_string();
            let major = want.split('.').next().and_then(|m| m.parse::<u32>().ok());
            match major {
                Some(m) if m >= 2 => CatalogError::OutOfScope { version, known },
                _ => CatalogError::UnknownRelease { version, known },
            }
        })
}

/// The images of a selection, per template (template version, images), filtered by group.
pub fn select(sel: &Selection) -> Result<Vec<(String, Vec<CatalogImage>)>, CatalogError> {
    let rel = release(&sel.version)?;
    let templates: Vec<Template> = match &sel.template {
        None => rel.templates,
        Some(t) => {
            let want = t.trim();
            let found = rel
                .templates
                .iter()
                .find(|x| x.version == want || x.version.strip_prefix('v') == Some(want));
            match found {
                Some(x) => vec![x.clone()],
                None => {
                    return Err(CatalogError::UnknownTemplate {
                        release: rel.version.clone(),
                        template: t.clone(),
                        known: rel
                            .templates
                            .iter()
                            .map(|x| x.version.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
            }
        }
    };
    Ok(templates
        .into_iter()
        .map(|t| {
            let images = t
                .images
                .into_iter()
                .filter(|i| sel.wants(i.group))
                .collect();
            (t.version, images)
        })
        .collect())
}

/// A selection resolved: the images of its k8s templates, and its server group when selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selected {
    /// Per k8s template, `(template version, images)` as [`select`] gives them; none when no
    /// Kubernetes group is selected (`--only server`).
    pub templates: Vec<(String, Vec<CatalogImage>)>,
    /// The server group, when selected ([`Selection::wants`]).
    pub server: Option<ServerGroup>,
}

impl Selected {
    /// Resolves `sel` against the catalog.
    pub fn resolve(sel: &Selection) -> Result<Selected, CatalogError> {
        let mut templates = select(sel)?;
        if !Group::K8S.iter().any(|g| sel.wants(*g)) {
            templates.clear();
        }
        let server = match sel.wants(Group::Server) {
            true => Some(release(&sel.version)?.server),
            false => None,
        };
        Ok(Selected { templates, server })
    }

    /// Sets every image's places and pin, as [`with_upstream`] does.
    pub fn with_upstream(&mut self, relocations: &[Relocation], pins: &Pins) {
        with_upstream(&mut self.templates, relocations, pins);
        for i in self.server.iter_mut().flat_map(|s| &mut s.images) {
            i.set_upstream(relocations, pins);
        }
    }

    /// The k8s template versions.
    pub fn template_names(&self) -> Vec<String> {
        self.templates.iter().map(|(t, _)| t.clone()).collect()
    }

    /// Every image once ([`union`]): the templates' first, then the server group's, where an
    /// image a template already has is not repeated.
    pub fn images(&self) -> Vec<CatalogImage> {
        let mut all = self.templates.clone();
        if let Some(s) = &self.server {
            all.push((Group::Server.to_string(), s.images.clone()));
        }
        union(&all)
    }
}

/// All images of a selection, each reference once, in first-seen order.
///
/// When the same reference appears twice, the private paths of the later entry are added to the first's
/// alternates, it counts as inferred only if every entry is, and it keeps the role any entry has.
pub fn union(selected: &[(String, Vec<CatalogImage>)]) -> Vec<CatalogImage> {
    let mut out: Vec<CatalogImage> = Vec::new();
    let mut index: HashMap<Reference, usize> = HashMap::new();
    for img in selected.iter().flat_map(|(_, images)| images) {
        match index.get(&img.reference) {
            None => {
                index.insert(img.reference.clone(), out.len());
                out.push(img.clone());
            }
            Some(&i) => {
                let first = &mut out[i];
                first.inferred &= img.inferred;
                first.role = first.role.or(img.role);
                for p in std::iter::once(&img.private_path).chain(&img.alt_paths) {
                    if *p != first.private_path && !first.alt_paths.contains(p) {
                        first.alt_paths.push(p.clone());
                    }
                }
            }
        }
    }
    out
}

/// The image the catalog knows under `reference` in any release, its private path and
/// alternates merged as [`union`] merges them: an `--images` list naming it gets the paths
/// `pack --version` gives it (`busybox:latest` without `library/`, pause at both paths).
pub fn known(reference: &Reference) -> Option<CatalogImage> {
    static KNOWN: OnceLock<HashMap<Reference, CatalogImage>> = OnceLock::new();
    let map = KNOWN.get_or_init(|| {
        let every: Vec<(String, Vec<CatalogImage>)> = releases()
            .into_iter()
            .filter_map(|v| release(v).ok())
            .flat_map(|r| {
                r.templates
                    .into_iter()
                    .map(|t| (t.version, t.images))
                    .chain([(Group::Server.to_string(), r.server.images)])
            })
            .collect();
        union(&every)
            .into_iter()
            .map(|i| (i.reference.clone(), i))
            .collect()
    });
    map.get(reference).cloned()
}

/// Reads a user image list: one reference per line; see [`parse_image_list`].
pub fn read_image_list(path: &Path) -> Result<Vec<Reference>, CatalogError> {
    let text = std::fs::read_to_string(path).map_err(|source| CatalogError::ReadList {
        path: path.to_path_buf(),
        source,
    })?;
    parse_image_list(&text, path)
}

/// Parses an image list; `path` only names the file in errors.
///
/// One reference per line, whitespace trimmed; blank lines and `#` comments (a whole line, or after
/// whitespace) are skipped. The text `airlock list` prints reads back too: its `k8s: <template>`
/// headers are skipped and its `- <reference>` bullets are read. Duplicates (after normalisation) are
/// dropped, keeping the first.
pub fn parse_image_list(text: &str, path: &Path) -> Result<Vec<Reference>, CatalogError> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for (n, raw) in text.lines().enumerate() {
        let Some(entry) = list_entry(raw) else {
            continue;
        };
        let r = Reference::parse(entry).map_err(|source| CatalogError::ListLine {
            path: path.to_path_buf(),
            line: n + 1,
            source,
        })?;
        if seen.insert(r.clone()) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The reference on one line of an image list, if it has one.
fn list_entry(raw: &str) -> Option<&str> {
    // A comment starts at a `#` that begins the line or follows whitespace; a `#` glued to a
    // reference is left in so that the reference is refused rather than silently cut.
    let mut line = raw;
    let mut prev_space = true;
    for (i, c) in raw.char_indices() {
        if c == '#' && prev_space {
            line = &raw[..i];
            break;
        }
        prev_space = c.is_whitespace();
    }
    let line = line.trim();
    if line.is_empty() {
        return None;
    }
    // `    - image` bullets from `airlock list`.
    if let Some(rest) = line.strip_prefix('-') {
        if rest.starts_with(char::is_whitespace) {
            return Some(rest.trim());
        }
    }
    // `k8s: v1.8.5-rancher4` headers: a word, a colon, whitespace, one more word. A reference has no
    // whitespace, so this cannot swallow one.
    let mut words = line.split_whitespace();
    if let (Some(head), Some(_), None) = (words.next(), words.next(), words.next()) {
        if let Some(label) = head.strip_suffix(':') {
            if !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return None;
            }
        }
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(images: &[CatalogImage]) -> Vec<String> {
        images.iter().map(|i| i.reference.to_string()).collect()
    }

    #[test]
    fn embedded_data_loads_and_is_consistent() {
        let c = catalog().unwrap();
        assert!(c.origin.contains("shared/rancher-1.6-images.json"));
        assert!(c.origin.contains("52a5850"));
        assert_eq!(c.releases.len(), 31);
        let want: Vec<String> = (0..=30).map(|n| format!("1.6.{n}")).collect();
        assert_eq!(releases(), want);
        for r in &c.releases {
            assert!(
                !r.templates.is_empty() && r.templates.len() <= 2,
                "{}",
                r.version
            );
            for t in &r.templates {
                assert_eq!(
                    t.images[0].group,
                    Group::Pause,
                    "{} {}",
                    r.version,
                    t.version
                );
                // Groups come in order.
                assert!(t.images.windows(2).all(|w| w[0].group <= w[1].group));
                for i in &t.images {
                    // The private path is the reference without its registry (and without library/).
                    let name = format!(
                        "{}:{}",
                        i.reference.repository(),
                        i.reference.tag().unwrap()
                    );
                    let want = name.strip_prefix("library/").unwrap_or(&name);
                    assert_eq!(i.private_path, want, "{}", i.reference);
                    assert!(i.private_refs("reg.local:5000").is_ok());
                }
            }
            assert!(r.templates[0]
                .images
                .iter()
                .any(|i| i.group == Group::Stacks));
            // The server group: the server of this very release, its agent and load
            // balancer, from docker.io as Rancher names them, none inferred.
            let roles: Vec<Option<Role>> = r.server.images.iter().map(|i| i.role).collect();
            assert_eq!(roles, Role::ALL.map(Some));
            let server = r.server.image(Role::Server);
            assert_eq!(
                server.reference.to_string(),
                format!("docker.io/rancher/server:v{}", r.version)
            );
            for i in &r.server.images {
                assert_eq!(i.group, Group::Server);
                assert_eq!(i.reference.registry(), "docker.io");
                assert_eq!(
                    i.private_path,
                    format!(
                        "{}:{}",
                        i.reference.repository(),
                        i.reference.tag().unwrap()
                    )
                );
                assert!(!i.inferred, "{}", i.reference);
                assert_eq!(i.places.len(), 1);
            }
            let repos: Vec<&str> = r
                .server
                .sources
                .iter()
                .map(|s| s.repository.as_str())
                .collect();
            assert_eq!(repos, ["rancher/rancher", "rancher/cattle"]);
        }
    }

    #[test]
    fn release_1_6_14_has_final_and_at_release_templates() {
        let r = release("1.6.14").unwrap();
        assert_eq!(r, release("v1.6.14").unwrap());
        let versions: Vec<&str> = r.templates.iter().map(|t| t.version.as_str()).collect();
        assert_eq!(versions, ["v1.8.10-rancher1-1", "v1.8.5-rancher4"]);
        assert_eq!(r.templates[0].source, "final catalog v1.6-release@52a5850");
        assert!(r.templates[1]
            .source
            .starts_with("at release: catalog commit 069270d"));
        let fin = refs(&r.templates[0].images);
        assert!(fin.contains(&"docker.io/rancher/k8s:v1.8.10-rancher1-1".to_string()));
        for s in [
            "docker.io/rancher/network-manager:v0.7.19",
            "docker.io/rancher/metadata:v0.9.5",
            "docker.io/rancher/dns:v0.15.3",
            "docker.io/rancher/net:holder",
            "docker.io/rancher/net:v0.13.7",
            "docker.io/rancher/healthcheck:v0.3.3",
        ] {
            assert!(fin.contains(&s.to_string()), "{s}");
        }
        // At-release blocks carry no stacks.
        assert!(r.templates[1]
            .images
            .iter()
            .all(|i| i.group != Group::Stacks));
    }

    #[test]
    fn select_1_6_14_at_release_without_stacks() {
        let sel = Selection {
            version: "1.6.14".into(),
            template: Some("v1.8.5-rancher4".into()),
            groups: vec![Group::Pause, Group::Infra, Group::Addons],
            with_server: false,
        };
        let got = select(&sel).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "v1.8.5-rancher4");
        assert_eq!(
            refs(&got[0].1),
            [
                "gcr.io/google_containers/pause-amd64:3.0",
                "docker.io/rancher/k8s:v1.8.5-rancher4",
                "docker.io/rancher/etcd:v2.3.7-13",
                "docker.io/library/busybox:latest",
                "docker.io/rancher/etc-host-updater:v0.0.3",
                "docker.io/rancher/kubectld:v0.8.5",
                "docker.io/rancher/kubernetes-agent:v0.6.6",
                "docker.io/rancher/lb-service-rancher:v0.7.17",
                "docker.io/rancher/kubernetes-auth:v0.0.8",
                "gcr.io/google_containers/kubernetes-dashboard-amd64:v1.8.0",
                "gcr.io/google_containers/k8s-dns-kube-dns-amd64:1.14.5",
                "gcr.io/google_containers/k8s-dns-dnsmasq-nanny-amd64:1.14.5",
                "gcr.io/google_containers/k8s-dns-sidecar-amd64:1.14.5",
                "gcr.io/google_containers/heapster-grafana-amd64:v4.4.3",
                "gcr.io/google_containers/heapster-amd64:v1.4.0",
                "gcr.io/google_containers/heapster-influxdb-amd64:v1.3.3",
                "gcr.io/kubernetes-helm/tiller:v2.6.1",
            ]
        );
        let by_ref = |s: &str| {
            got[0]
                .1
                .iter()
                .find(|i| i.reference.to_string() == s)
                .unwrap()
        };
        let busybox = by_ref("docker.io/library/busybox:latest");
        assert_eq!(busybox.private_path, "busybox:latest");
        assert!(busybox.alt_paths.is_empty());
        let pause = by_ref("gcr.io/google_containers/pause-amd64:3.0");
        assert_eq!(pause.private_path, "google_containers/pause-amd64:3.0");
        assert_eq!(
            pause.alt_paths,
            ["gcr.io/google_containers/pause-amd64:3.0"]
        );
        let pushed: Vec<String> = pause
            .private_refs("reg.local")
            .unwrap()
            .iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(
            pushed,
            [
                "reg.local/google_containers/pause-amd64:3.0",
                "reg.local/gcr.io/google_containers/pause-amd64:3.0"
            ]
        );
        assert_eq!(
            busybox.private_refs("reg.local").unwrap()[0].to_string(),
            "reg.local/busybox:latest"
        );
        assert_eq!(
            by_ref("gcr.io/kubernetes-helm/tiller:v2.6.1").private_path,
            "kubernetes-helm/tiller:v2.6.1"
        );
        assert!(got[0].1.iter().all(|i| !i.inferred));

        // Without the leading v, too.
        let sel2 = Selection {
            template: Some("1.8.5-rancher4".into()),
            ..sel.clone()
        };
        assert_eq!(select(&sel2).unwrap(), got);
    }

    #[test]
    fn release_1_6_0() {
        let r = release("1.6.0").unwrap();
        assert_eq!(r.templates.len(), 1, "at release equals final");
        let t = &r.templates[0];
        assert_eq!(t.version, "v1.5.4-rancher1-4.1");
        assert!(t
            .source
            .starts_with("final catalog master@e01639f; also at release: catalog commit e2d4b2e"));
        assert_eq!(
            refs(&t.images),
            [
                "gcr.io/google_containers/pause-amd64:3.0",
                "docker.io/rancher/k8s:v1.5.4-rancher1-4",
                "docker.io/rancher/k8s:v1.5.4-rancher1-3",
                "docker.io/rancher/etcd:v2.3.7-11",
                "docker.io/rancher/etc-host-updater:v0.0.2",
                "docker.io/rancher/kubectld:v0.6.0",
                "docker.io/rancher/kubernetes-agent:v0.5.4",
                "docker.io/rancher/lb-service-rancher:v0.6.1",
                "gcr.io/google_containers/kubernetes-dashboard-amd64:v1.5.0",
                "gcr.io/google_containers/heapster-grafana-amd64:v4.0.2",
                "gcr.io/google_containers/heapster-amd64:v1.3.0-beta.1",
                "gcr.io/google_containers/heapster-influxdb-amd64:v1.1.1",
                "gcr.io/kubernetes-helm/tiller:v2.1.3",
                "docker.io/rancher/network-manager:v0.7.0",
                "docker.io/rancher/metadata:v0.9.1",
                "docker.io/rancher/dns:v0.15.0",
                "docker.io/rancher/net:holder",
                "docker.io/rancher/net:v0.11.2",
                "docker.io/rancher/healthcheck:v0.3.1",
            ]
        );
    }

    #[test]
    fn release_1_6_15_uses_docker_hub() {
        let r = release("1.6.15").unwrap();
        let versions: Vec<&str> = r.templates.iter().map(|t| t.version.as_str()).collect();
        assert_eq!(versions, ["v1.9.5-rancher1-3", "v1.9.4-rancher1-1"]);
        let sel = Selection {
            version: "1.6.15".into(),
            template: Some("v1.9.5-rancher1-3".into()),
            groups: vec![Group::Pause, Group::Addons],
            with_server: false,
        };
        let got = select(&sel).unwrap();
        assert_eq!(
            refs(&got[0].1),
            [
                "docker.io/rancher/pause-amd64:3.0",
                "docker.io/rancher/kubernetes-dashboard-amd64:v1.8.0",
                "docker.io/rancher/k8s-dns-kube-dns-amd64:1.14.7",
                "docker.io/rancher/k8s-dns-dnsmasq-nanny-amd64:1.14.7",
                "docker.io/rancher/k8s-dns-sidecar-amd64:1.14.7",
                "docker.io/rancher/heapster-grafana-amd64:v4.4.3",
                "docker.io/rancher/heapster-amd64:v1.5.0",
                "docker.io/rancher/heapster-influxdb-amd64:v1.3.3",
                "docker.io/rancher/tiller:v2.7.2",
            ]
        );
        let pause = &got[0].1[0];
        assert_eq!(pause.private_path, "rancher/pause-amd64:3.0");
        assert!(pause.alt_paths.is_empty());
    }

    #[test]
    fn releases_1_6_29_and_1_6_30_have_inferred_addons() {
        for v in ["1.6.29", "1.6.30"] {
            let r = release(v).unwrap();
            assert_eq!(r.templates.len(), 1, "{v}");
            let t = &r.templates[0];
            assert_eq!(t.version, "v1.12.10-rancher1-1");
            let addons: Vec<&CatalogImage> = t
                .images
                .iter()
                .filter(|i| i.group == Group::Addons)
                .collect();
            assert_eq!(addons.len(), 8);
            assert!(addons.iter().all(|i| i.inferred));
            assert!(t
                .images
                .iter()
                .filter(|i| i.group != Group::Addons)
                .all(|i| !i.inferred));
            let all = refs(&t.images);
            for s in [
                "docker.io/rancher/pause-amd64:3.0",
                "docker.io/rancher/k8s:v1.12.10-rancher1-1",
                "docker.io/rancher/lb-service-rancher:v0.9.13",
                "docker.io/rancher/kubectld:v0.8.11",
                "docker.io/rancher/k8s-dns-kube-dns-amd64:1.14.13",
                "docker.io/rancher/tiller:v2.11.0",
                "docker.io/rancher/network-manager:v0.7.22",
                "docker.io/rancher/net:v0.13.17",
                "docker.io/rancher/healthcheck:v0.3.8",
            ] {
                assert!(all.contains(&s.to_string()), "{v}: {s}");
            }
            let tiller = t
                .images
                .iter()
                .find(|i| i.reference.repository() == "rancher/tiller")
                .unwrap();
            assert_eq!(tiller.private_path, "rancher/tiller:v2.11.0");
        }
    }

    #[test]
    fn unknown_release_and_template_list_the_choices() {
        let e = release("1.7.0").unwrap_err().to_string();
        assert!(e.contains("\"1.7.0\""), "{e}");
        assert!(e.contains("1.6.0, 1.6.1, 1.6.2"), "{e}");
        assert!(e.contains("1.6.29, 1.6.30"), "{e}");
        let e = select(&Selection {
            version: "1.6.14".into(),
            template: Some("v1.9.5-rancher1-3".into()),
            groups: vec![],
            with_server: false,
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("v1.8.10-rancher1-1, v1.8.5-rancher4"), "{e}");
        assert!(e.contains("v1.9.5-rancher1-3"), "{e}");
    }

    #[test]
    fn union_dedups_across_templates() {
        let sel = Selection {
            version: "1.6.14".into(),
            ..Default::default()
        };
        let per = select(&sel).unwrap();
        assert_eq!(per.len(), 2);
        let n: usize = per.iter().map(|(_, i)| i.len()).sum();
        let u = union(&per);
        // The templates differ only in rancher/k8s, so the union adds just that one image.
        assert_eq!(u.len(), per[0].1.len() + 1);
        assert!(n > u.len());
        assert_eq!(
            u.last().unwrap().reference.to_string(),
            "docker.io/rancher/k8s:v1.8.5-rancher4"
        );
        let mut seen = HashSet::new();
        assert!(u.iter().all(|i| seen.insert(i.reference.clone())));
        assert_eq!(refs(&u[..per[0].1.len()]), refs(&per[0].1));
    }

    #[test]
    fn union_merges_paths_and_inferred() {
        let r = Reference::parse("rancher/x:1").unwrap();
        let a = CatalogImage {
            reference: r.clone(),
            group: Group::Addons,
            private_path: "rancher/x:1".into(),
            alt_paths: vec![],
            inferred: true,
            role: None,
            places: vec![],
            pin: None,
        };
        let b = CatalogImage {
            private_path: "other/x:1".into(),
            inferred: false,
            ..a.clone()
        };
        let u = union(&[("t1".into(), vec![a.clone()]), ("t2".into(), vec![b, a])]);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].alt_paths, ["other/x:1"]);
        assert!(!u[0].inferred);
    }

    #[test]
    fn images_carry_their_places_and_pins() {
        let per = select(&Selection {
            version: "1.6.14".into(),
            template: Some("v1.8.5-rancher4".into()),
            groups: vec![],
            with_server: false,
        })
        .unwrap();
        let find = |s: &str| {
            per[0]
                .1
                .iter()
                .find(|i| i.reference.to_string() == s)
                .unwrap()
        };
        let pause = find("gcr.io/google_containers/pause-amd64:3.0");
        let places: Vec<String> = pause
            .places
            .iter()
            .map(|p| p.reference.to_string())
            .collect();
        assert_eq!(
            places,
            [
                "gcr.io/google_containers/pause-amd64:3.0",
                "registry.k8s.io/pause-amd64:3.0"
            ]
        );
        assert_eq!(
            pause.pin.as_ref().unwrap().to_string(),
            "sha256:163ac025575b775d1c0f9bf0bdd0f086883171eb475b5068e7defa4ca9e76516"
        );
        let busybox = find("docker.io/library/busybox:latest");
        assert_eq!(busybox.places.len(), 1);
        assert!(busybox.pin.is_none());
        // The operator's rules come first; their own pin table replaces airlock's.
        let mut per = per;
        let rules = vec!["docker.io=hub.local/proxy".parse().unwrap()];
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pins");
        std::fs::write(&f, "docker.io/library/busybox:latest sha256:0000000000000000000000000000000000000000000000000000000000000000\n").unwrap();
        with_upstream(&mut per, &rules, &Pins::read(&f).unwrap());
        let busybox = per[0]
            .1
            .iter()
            .find(|i| i.reference.repository() == "library/busybox")
            .unwrap();
        assert_eq!(
            busybox.places[0].reference.to_string(),
            "hub.local/proxy/library/busybox:latest"
        );
        assert!(busybox.pin.is_some());
        let pause = &per[0].1[0];
        assert!(pause.pin.is_none(), "the file replaces the built-in table");
    }

    #[test]
    fn groups_parse_from_cli_strings() {
        assert_eq!("pause".parse::<Group>().unwrap(), Group::Pause);
        assert_eq!("infra".parse::<Group>().unwrap(), Group::Infra);
        assert_eq!("addons".parse::<Group>().unwrap(), Group::Addons);
        assert_eq!("k8saddons".parse::<Group>().unwrap(), Group::Addons);
        assert_eq!("stacks".parse::<Group>().unwrap(), Group::Stacks);
        assert_eq!("Server".parse::<Group>().unwrap(), Group::Server);
        let e = "images".parse::<Group>().unwrap_err().to_string();
        assert!(e.contains("\"images\"") && e.contains("server"), "{e}");
        assert_eq!(serde_json::to_string(&Group::Addons).unwrap(), "\"addons\"");
        assert_eq!(Group::Stacks.to_string(), "stacks");
    }

    #[test]
    fn the_server_group_is_only_there_when_asked_for() {
        let sel = |groups: Vec<Group>, with_server| Selection {
            version: "1.6.14".into(),
            groups,
            with_server,
            ..Default::default()
        };
        let refs_of = |s: &Selection| refs(&Selected::resolve(s).unwrap().images());
        let default = refs_of(&sel(vec![], false));
        assert!(default.iter().all(|r| !r.contains("rancher/server")));
        assert!(Group::K8S.iter().all(|g| sel(vec![], false).wants(*g)));
        assert!(!sel(vec![], false).wants(Group::Server));

        let server = [
            "docker.io/rancher/server:v1.6.14",
            "docker.io/rancher/agent:v1.2.9",
            "docker.io/rancher/lb-service-haproxy:v0.7.15",
        ];
        let with = refs_of(&sel(vec![], true));
        assert_eq!(with[..default.len()], default[..]);
        assert_eq!(with[default.len()..], server);
        assert_eq!(refs_of(&sel(vec![Group::Server], false)), server);
        assert_eq!(refs_of(&sel(vec![Group::Server], true)), server);
        let infra = refs_of(&sel(vec![Group::Infra], true));
        assert!(infra.ends_with(&server.map(String::from)));
        assert!(infra.contains(&"docker.io/rancher/k8s:v1.8.5-rancher4".to_string()));
        assert!(!infra.iter().any(|r| r.contains("pause")));

        let s = Selected::resolve(&sel(vec![Group::Server], false)).unwrap();
        assert!(s.templates.is_empty() && s.template_names().is_empty());
        let group = s.server.unwrap();
        let agent = group.image(Role::Agent);
        assert_eq!(agent.private_path, "rancher/agent:v1.2.9");
        assert_eq!(agent.group, Group::Server);
        assert_eq!(
            agent.private_refs("reg.local").unwrap()[0].to_string(),
            "reg.local/rancher/agent:v1.2.9"
        );
        let r = group.request();
        assert_eq!(r.server, "docker.io/rancher/server:v1.6.14");
        assert_eq!(r.agent, "docker.io/rancher/agent:v1.2.9");
        assert_eq!(
            r.load_balancer,
            "docker.io/rancher/lb-service-haproxy:v0.7.15"
        );
        // A template of another release is still refused with the group alone.
        let mut bad = sel(vec![Group::Server], false);
        bad.template = Some("v1.9.5-rancher1-3".into());
        assert!(Selected::resolve(&bad).is_err());
    }

    #[test]
    fn a_server_image_a_template_has_already_is_not_repeated() {
        let mut s = Selected::resolve(&Selection {
            version: "1.6.14".into(),
            template: Some("v1.8.5-rancher4".into()),
            groups: vec![Group::Infra],
            with_server: true,
        })
        .unwrap();
        // Suppose the load balancer were an infra image too.
        let lb = s.server.as_ref().unwrap().image(Role::LoadBalancer).clone();
        s.templates[0].1.push(CatalogImage {
            group: Group::Infra,
            role: None,
            ..lb.clone()
        });
        let all = s.images();
        let found: Vec<&CatalogImage> =
            all.iter().filter(|i| i.reference == lb.reference).collect();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].group, Group::Infra, "the first entry stays");
        assert_eq!(found[0].role, Some(Role::LoadBalancer), "its role is kept");
        // Eight infra images and the load balancer, then the server and the agent.
        assert_eq!(all.len(), 8 + 1 + 2);
    }

    #[test]
    fn the_loader_refuses_a_server_group_it_cannot_trust() {
        let data: serde_json::Value = serde_json::from_str(DATA).unwrap();
        let refused = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut d = data.clone();
            edit(&mut d["releases"][14]["server"]);
            load(&d.to_string()).err().expect("refused")
        };
        let e = refused(&|s| s["cattle"]["commit"] = "ac6eb5c".into());
        assert!(e.contains("1.6.14") && e.contains("full commit"), "{e}");
        let e = refused(&|s| s["images"].as_array_mut().unwrap().swap(0, 1));
        assert!(e.contains("roles"), "{e}");
        let e = refused(&|s| s["images"][0]["ref"] = "docker.io/rancher/server:v1.6.15".into());
        assert!(e.contains("not tagged v1.6.14"), "{e}");
        let e = refused(&|s| s["rancher"]["tag"] = "v1.6.15".into());
        assert!(e.contains("is not v1.6.14"), "{e}");
        let e = refused(&|s| s["images"][2]["from"] = "catalog".into());
        assert!(e.contains("unknown source"), "{e}");
        let e = refused(&|s| s["images"][1]["role"] = "worker".into());
        assert!(e.contains("worker"), "{e}");
        assert!(load(&data.to_string()).is_ok());
    }

    #[test]
    fn image_list_parses_comments_blanks_and_duplicates() {
        let text = "# my images\n\n  busybox  \nrancher/k8s:v1.8.5-rancher4 # the k8s image\n\
                    docker.io/library/busybox:latest\n\tgcr.io/google_containers/pause-amd64:3.0\n";
        let got = parse_image_list(text, Path::new("list.txt")).unwrap();
        let got: Vec<String> = got.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            got,
            [
                "docker.io/library/busybox:latest",
                "docker.io/rancher/k8s:v1.8.5-rancher4",
                "gcr.io/google_containers/pause-amd64:3.0",
            ]
        );
    }

    #[test]
    fn image_list_errors_name_file_and_line() {
        let e = parse_image_list("busybox\n\nFoo/bar\n", Path::new("imgs.txt")).unwrap_err();
        assert_eq!(e.to_string(), "imgs.txt:3: bad entry in image list");
        let src = std::error::Error::source(&e).unwrap().to_string();
        assert!(src.contains("\"Foo/bar\""), "{src}");
        // A `#` glued to a reference is not a comment.
        let e = parse_image_list("busybox#latest\n", Path::new("x")).unwrap_err();
        assert!(e.to_string().starts_with("x:1:"));
        // A lone `word:` is not a header.
        let e = parse_image_list("a:\n", Path::new("x")).unwrap_err();
        assert_eq!(e.to_string(), "x:1: bad entry in image list");

        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let e = read_image_list(&missing).unwrap_err();
        assert!(e.to_string().contains("nope.txt"), "{e}");
        let file = dir.path().join("list.txt");
        std::fs::write(&file, "busybox\n").unwrap();
        assert_eq!(read_image_list(&file).unwrap().len(), 1);
    }

    #[test]
    fn image_list_reads_list_text_output() {
        let text = "# Rancher 1.6.14\nk8s: v1.8.5-rancher4  # at release: catalog commit 069270d\n\
                    \x20   - gcr.io/google_containers/pause-amd64:3.0\n\
                    \x20   - docker.io/rancher/tiller:v2.11.0 # inferred\n";
        let got = parse_image_list(text, Path::new("list.txt")).unwrap();
        let got: Vec<String> = got.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            got,
            [
                "gcr.io/google_containers/pause-amd64:3.0",
                "docker.io/rancher/tiller:v2.11.0"
            ]
        );
    }

    #[test]
    fn split_path_finds_the_tag() {
        assert_eq!(split_path("busybox:latest"), ("busybox", Some("latest")));
        assert_eq!(
            split_path("gcr.io/google_containers/pause-amd64:3.0"),
            ("gcr.io/google_containers/pause-amd64", Some("3.0"))
        );
        assert_eq!(split_path("a/b"), ("a/b", None));
    }

    #[test]
    fn known_images_have_the_paths_every_release_gives_them() {
        for v in releases() {
            let sel = Selection {
                version: v.into(),
                with_server: true,
                ..Default::default()
            };
            for i in Selected::resolve(&sel).unwrap().images() {
                let k = known(&i.reference).unwrap();
                assert_eq!(
                    (&k.private_path, &k.alt_paths, k.group),
                    (&i.private_path, &i.alt_paths, i.group),
                    "{v}: {}",
                    i.reference
                );
            }
        }
        let busybox = known(&Reference::parse("busybox").unwrap()).unwrap();
        assert_eq!(busybox.private_path, "busybox:latest");
        assert!(known(&Reference::parse("docker.io/x/unknown:1").unwrap()).is_none());
    }

    #[test]
    fn rancher_2_is_out_of_scope() {
        for v in ["2.0.0", "v2.5.7", "2", "3.1"] {
            let e = release(v).unwrap_err();
            assert!(matches!(e, CatalogError::OutOfScope { .. }), "{v}: {e}");
            assert!(e.to_string().contains("out of scope") && e.to_string().contains("1.6.30"));
        }
        assert!(matches!(
            release("1.6.99").unwrap_err(),
            CatalogError::UnknownRelease { .. }
        ));
    }
}
