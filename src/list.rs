//! What `airlock list` prints: a release's images per k8s template, as text or JSON, and the
//! table of known releases.
//!
//! The text form follows Rancher's `print-catalog-images.py` (`k8s: <template>` then `    - image`
//! lines), with fully qualified references, so that [`crate::catalog::read_image_list`] can read it back.
//! These functions only build strings; the CLI prints them.

use crate::catalog::{self, CatalogImage, Selected, ServerGroup};

/// The source of `template` in `release`, if the catalog knows both.
fn source_of(release: &str, template: &str) -> Option<String> {
    let rel = catalog::release(release).ok()?;
    rel.templates
        .into_iter()
        .find(|t| t.version == template)
        .map(|t| t.source)
}

/// Text listing: a `k8s: <template>  # <source>` line per template, then `    - <reference>` per image,
/// with `# inferred` after images that are not from sources. The server group, when selected,
/// follows as `server: v<release>  # <sources>`, each image marked with its role. When an image
/// is fetched from elsewhere too, or its digest is pinned, a comment line below it says where
/// from, in order, and which digest its tag must resolve to. Comments read back as nothing
/// ([`crate::catalog::parse_image_list`]).
pub fn render_text(release: &str, selected: &Selected) -> String {
    let what = match (selected.templates.is_empty(), selected.server.is_some()) {
        (false, true) => "images per k8s template, then the server group",
        (true, true) => "the server group",
        _ => "images per k8s template",
    };
    let mut out = format!("# Rancher {release}: {what}\n");
    let mut section = |header: String, images: &[CatalogImage]| {
        out.push_str(&header);
        out.push('\n');
        for i in images {
            out.push_str(&format!("    - {}", i.reference));
            let notes: Vec<&str> = i
                .role
                .map(|r| r.as_str())
                .into_iter()
                .chain(i.inferred.then_some("inferred"))
                .collect();
            if !notes.is_empty() {
                out.push_str(&format!(" # {}", notes.join(", ")));
            }
            out.push('\n');
            if let Some(line) = fetch_line(i) {
                out.push_str(&format!("        # {line}\n"));
            }
        }
    };
    for (template, images) in &selected.templates {
        let header = match source_of(release, template) {
            Some(src) => format!("k8s: {template}  # {src}"),
            None => format!("k8s: {template}"),
        };
        section(header, images);
    }
    if let Some(server) = &selected.server {
        let tag = server.image(crate::rancher::Role::Server).reference.tag();
        let header = format!(
            "server: {}  # {}",
            tag.unwrap_or_default(),
            server_sources(server)
        );
        section(header, &server.images);
    }
    out
}

/// `rancher/rancher v1.6.14@1409844 server/Dockerfile; rancher/cattle ...`.
fn server_sources(server: &ServerGroup) -> String {
    server
        .sources
        .iter()
        .map(|s| {
            let short = s.commit.get(..7).unwrap_or(&s.commit);
            format!("{} {}@{short} {}", s.repository, s.tag, s.path)
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `from A, then B; pinned to sha256:..` when the image has more than its own place or a pin.
fn fetch_line(i: &CatalogImage) -> Option<String> {
    let only_itself = i.places.len() == 1 && i.places[0].reference == i.reference;
    if only_itself && i.pin.is_none() {
        return None;
    }
    let places: Vec<String> = i.places.iter().map(|p| p.reference.to_string()).collect();
    let mut s = format!("from {}", places.join(", then "));
    if let Some(d) = &i.pin {
        s.push_str(&format!("; pinned to {d}"));
    }
    Some(s)
}

/// A release's images for JSON: `{"release", "templates": [{"template", "source", "images":
/// [..]}]}`, and `"server": {"sources": [..], "images": [..]}` when the server group is
/// selected (docs/json.md).
#[derive(serde::Serialize)]
pub struct Listing<'a> {
    release: &'a str,
    templates: Vec<JsonTemplate<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<&'a ServerGroup>,
}

#[derive(serde::Serialize)]
struct JsonTemplate<'a> {
    template: &'a str,
    source: Option<String>,
    images: &'a [CatalogImage],
}

/// The images of `selected` for JSON.
pub fn listing<'a>(release: &'a str, selected: &'a Selected) -> Listing<'a> {
    Listing {
        release,
        server: selected.server.as_ref(),
        templates: selected
            .templates
            .iter()
            .map(|(t, images)| JsonTemplate {
                template: t,
                source: source_of(release, t),
                images,
            })
            .collect(),
    }
}

/// Every reference of `selected` once, in the order `list` shows them: one a line, for other
/// tools and for `pack --images`.
pub fn render_refs(selected: &Selected) -> String {
    selected
        .images()
        .iter()
        .map(|i| format!("{}\n", i.reference))
        .collect()
}

/// A known release for JSON: its templates, the final catalog's first.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnownRelease {
    version: String,
    templates: Vec<KnownTemplate>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct KnownTemplate {
    template: String,
    /// Which catalog offers it: the final one, or the one at release.
    source: Option<String>,
    /// True when the add-on images are inferred, not read from sources.
    addons_inferred: bool,
}

/// Every known release and its templates (`list --versions --format json`).
pub fn versions() -> Vec<KnownRelease> {
    catalog::releases()
        .iter()
        .filter_map(|v| catalog::release(v).ok().map(|rel| (v, rel)))
        .map(|(v, rel)| KnownRelease {
            version: v.to_string(),
            templates: rel
                .templates
                .iter()
                .map(|t| KnownTemplate {
                    template: t.version.clone(),
                    source: Some(t.source.clone()),
                    addons_inferred: t.images.iter().any(|i| i.inferred),
                })
                .collect(),
        })
        .collect()
}

/// One line per known release: its final-catalog template, and the at-release one when it differs.
pub fn render_versions() -> String {
    let mut out = String::from("# release  k8s template (final catalog); at release: template\n");
    for v in catalog::releases() {
        let Ok(rel) = catalog::release(v) else {
            continue;
        };
        let names: Vec<String> = rel
            .templates
            .iter()
            .map(|t| {
                let inferred = t.images.iter().any(|i| i.inferred);
                let mut s = t.version.clone();
                if inferred {
                    s.push_str(" (add-ons inferred)");
                }
                s
            })
            .collect();
        out.push_str(&format!("{v:<8} {}", names.join("; at release: ")));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{select, Group, Selection};
    use std::path::Path;

    fn sel(version: &str) -> Vec<(String, Vec<CatalogImage>)> {
        select(&Selection {
            version: version.into(),
            ..Default::default()
        })
        .unwrap()
    }

    /// Templates only, as a selection without the server group gives them.
    fn k8s(per: &[(String, Vec<CatalogImage>)]) -> Selected {
        Selected {
            templates: per.to_vec(),
            server: None,
        }
    }

    #[test]
    fn text_groups_by_template_and_reads_back() {
        let per = sel("1.6.14");
        let text = render_text("1.6.14", &k8s(&per));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# Rancher 1.6.14: images per k8s template");
        assert_eq!(
            lines[1],
            "k8s: v1.8.10-rancher1-1  # final catalog v1.6-release@52a5850"
        );
        assert_eq!(lines[2], "    - gcr.io/google_containers/pause-amd64:3.0");
        assert_eq!(
            lines[3],
            "        # from gcr.io/google_containers/pause-amd64:3.0, then registry.k8s.io/pause-amd64:3.0; \
             pinned to sha256:163ac025575b775d1c0f9bf0bdd0f086883171eb475b5068e7defa4ca9e76516"
        );
        assert_eq!(lines[4], "    - docker.io/rancher/k8s:v1.8.10-rancher1-1");
        assert!(text.contains(
            "    - gcr.io/kubernetes-helm/tiller:v2.6.1\n        # from gcr.io/kubernetes-helm/tiller:v2.6.1, \
             then ghcr.io/helm/tiller:v2.6.1, then docker.io/helmpack/tiller:v2.6.1\n"
        ));
        assert!(text.contains(
            "\nk8s: v1.8.5-rancher4  # at release: catalog commit 069270d (2018-01-11)\n"
        ));
        assert!(text.contains("\n    - docker.io/library/busybox:latest\n"));
        let back = catalog::parse_image_list(&text, Path::new("list.txt")).unwrap();
        let union = catalog::union(&per);
        let want: Vec<_> = union.iter().map(|i| i.reference.clone()).collect();
        assert_eq!(back, want);
    }

    #[test]
    fn text_marks_inferred_addons() {
        let per = select(&Selection {
            version: "v1.6.30".into(),
            groups: vec![Group::Addons],
            ..Default::default()
        })
        .unwrap();
        let text = render_text("1.6.30", &k8s(&per));
        assert!(
            text.contains("    - docker.io/rancher/tiller:v2.11.0 # inferred\n"),
            "{text}"
        );
        assert_eq!(
            catalog::parse_image_list(&text, Path::new("x"))
                .unwrap()
                .len(),
            8
        );
    }

    #[test]
    fn json_has_the_documented_shape() {
        let per = select(&Selection {
            version: "1.6.14".into(),
            template: Some("v1.8.5-rancher4".into()),
            groups: vec![Group::Pause, Group::Infra],
            ..Default::default()
        })
        .unwrap();
        let s = serde_json::to_string_pretty(&listing("1.6.14", &k8s(&per))).unwrap();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["release"], "1.6.14");
        let t = &v["templates"][0];
        assert_eq!(t["template"], "v1.8.5-rancher4");
        assert!(t["source"].as_str().unwrap().starts_with("at release"));
        let pause = &t["images"][0];
        assert_eq!(
            pause["reference"],
            "gcr.io/google_containers/pause-amd64:3.0"
        );
        assert_eq!(pause["group"], "pause");
        assert_eq!(pause["privatePath"], "google_containers/pause-amd64:3.0");
        assert_eq!(
            pause["altPaths"][0],
            "gcr.io/google_containers/pause-amd64:3.0"
        );
        assert_eq!(pause["inferred"], false);
        assert_eq!(
            pause["places"][1]["reference"],
            "registry.k8s.io/pause-amd64:3.0"
        );
        assert!(pause["places"][1]["why"]
            .as_str()
            .unwrap()
            .contains("k8s.io"));
        assert_eq!(
            pause["pin"],
            "sha256:163ac025575b775d1c0f9bf0bdd0f086883171eb475b5068e7defa4ca9e76516"
        );
        assert_eq!(
            t["images"][3]["reference"],
            "docker.io/library/busybox:latest"
        );
        assert_eq!(t["images"][3]["privatePath"], "busybox:latest");
        assert_eq!(t["images"].as_array().unwrap().len(), 9);
        // Field order as documented.
        let i = s.find("\"reference\"").unwrap();
        let j = s.find("\"group\"").unwrap();
        let k = s.find("\"privatePath\"").unwrap();
        assert!(i < j && j < k);
    }

    #[test]
    fn the_server_group_follows_the_templates_and_reads_back() {
        let selected = Selected::resolve(&Selection {
            version: "1.6.14".into(),
            with_server: true,
            ..Default::default()
        })
        .unwrap();
        let text = render_text("1.6.14", &selected);
        assert!(
            text.starts_with("# Rancher 1.6.14: images per k8s template, then the server group\n")
        );
        assert!(
            text.ends_with(
                "\nserver: v1.6.14  # rancher/rancher v1.6.14@1409844 server/Dockerfile; \
                 rancher/cattle v0.183.37@ac6eb5c resources/content/cattle-global.properties\n    \
                 - docker.io/rancher/server:v1.6.14 # server\n    \
                 - docker.io/rancher/agent:v1.2.9 # agent\n    \
                 - docker.io/rancher/lb-service-haproxy:v0.7.15 # load-balancer\n"
            ),
            "{text}"
        );
        let back = catalog::parse_image_list(&text, Path::new("list.txt")).unwrap();
        let want: Vec<_> = selected.images().into_iter().map(|i| i.reference).collect();
        assert_eq!(back, want);

        // --only server: the group alone, under its own heading.
        let only = Selected::resolve(&Selection {
            version: "1.6.14".into(),
            groups: vec![Group::Server],
            ..Default::default()
        })
        .unwrap();
        assert!(only.templates.is_empty());
        let text = render_text("1.6.14", &only);
        assert!(text.starts_with("# Rancher 1.6.14: the server group\nserver: v1.6.14  #"));
        assert_eq!(
            catalog::parse_image_list(&text, Path::new("x"))
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn json_carries_the_server_group_with_roles_and_sources() {
        let selected = Selected::resolve(&Selection {
            version: "1.6.30".into(),
            groups: vec![Group::Server],
            ..Default::default()
        })
        .unwrap();
        let v: serde_json::Value = serde_json::to_value(listing("1.6.30", &selected)).unwrap();
        assert_eq!(v["templates"].as_array().unwrap().len(), 0);
        let server = &v["server"];
        let images: Vec<(&str, &str, &str)> = server["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["reference"].as_str().unwrap(),
                    i["role"].as_str().unwrap(),
                    i["privatePath"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            images,
            [
                (
                    "docker.io/rancher/server:v1.6.30",
                    "server",
                    "rancher/server:v1.6.30"
                ),
                (
                    "docker.io/rancher/agent:v1.2.11",
                    "agent",
                    "rancher/agent:v1.2.11"
                ),
                (
                    "docker.io/rancher/lb-service-haproxy:v0.9.14",
                    "load-balancer",
                    "rancher/lb-service-haproxy:v0.9.14"
                ),
            ]
        );
        assert_eq!(server["images"][0]["group"], "server");
        assert_eq!(server["sources"][0]["repository"], "rancher/rancher");
        assert_eq!(
            server["sources"][0]["commit"],
            "e780d3416460277ec56d77ac367dacbf564669a9"
        );
        assert_eq!(server["sources"][1]["tag"], "v0.183.83");
        assert_eq!(
            server["sources"][1]["path"],
            "resources/content/cattle-global.properties"
        );
        // Without the group, no key at all (the documented shape of issue 12 stays).
        let plain = serde_json::to_string(&listing("1.6.30", &k8s(&sel("1.6.30")))).unwrap();
        assert!(!plain.contains("\"server\""), "{plain}");
    }

    #[test]
    fn versions_lists_every_release() {
        let s = render_versions();
        let lines: Vec<&str> = s.lines().skip(1).collect();
        assert_eq!(lines.len(), 31);
        assert_eq!(lines[0], "1.6.0    v1.5.4-rancher1-4.1");
        assert_eq!(
            lines[14],
            "1.6.14   v1.8.10-rancher1-1; at release: v1.8.5-rancher4"
        );
        assert_eq!(lines[30], "1.6.30   v1.12.10-rancher1-1 (add-ons inferred)");
    }
}
