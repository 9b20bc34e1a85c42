//! What the operator runs and sets in Rancher 1.6 once the images are in the private registry:
//! the command that starts the server from there, and the settings of Rancher and of its
//! Kubernetes template. Pure functions over a bundle's records; `unpack` puts their answers in
//! its report.
//!
//! The server command follows Rancher's "Installing Rancher Server with No Internet Access"
//! (rancher/rancher.github.io `rancher/v1.6/en/installing-rancher/installing-server/no-internet-access/index.md`):
//! `CATTLE_BOOTSTRAP_REQUIRED_IMAGE` overrides cattle's `bootstrap.required.image`, so that
//! every host is told to run the agent from the private registry, and `registry.default` makes
//! the infrastructure stacks pull from it.

use crate::bundle::format::{ImageRecord, Request};

/// What an image of the server group is to a Rancher server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// `rancher/server`, which the operator starts with `docker run`.
    Server,
    /// The agent the server requires on every host (cattle's `bootstrap.required.image`).
    Agent,
    /// The load-balancer image the server starts (cattle's `lb.instance.image`).
    LoadBalancer,
}

impl Role {
    /// Every role, in the order a release lists its server group.
    pub const ALL: [Role; 3] = [Role::Server, Role::Agent, Role::LoadBalancer];

    /// As the data file and JSON write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::Agent => "agent",
            Role::LoadBalancer => "load-balancer",
        }
    }
}

/// How to start the Rancher server from the private registry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStart {
    /// The server image in the private registry: `REG/rancher/server:v1.6.14`.
    pub server: String,
    /// The agent image in the private registry: `REG/rancher/agent:v1.2.9`.
    pub agent: String,
    /// The whole `docker run` command.
    pub command: String,
    /// The value of the `registry.default` setting: `REG`, the registry and any prefix.
    pub registry_default: String,
}

/// Settings as JSON objects, `[{"name": "registry.default", "value": "reg.local"}]`.
pub fn serialize_settings<S: serde::Serializer>(
    settings: &[(String, String)],
    s: S,
) -> Result<S::Ok, S::Error> {
    #[derive(serde::Serialize)]
    struct Setting<'a> {
        name: &'a str,
        value: &'a str,
    }
    s.collect_seq(settings.iter().map(|(name, value)| Setting { name, value }))
}

/// `registry` and the `--prefix` path under it, as Rancher's settings take them:
/// `reg.local:5000` or `reg.local:5000/project`.
fn registry_path(registry: &str, prefix: &str) -> String {
    match prefix.trim_matches('/') {
        "" => registry.to_string(),
        p => format!("{registry}/{p}"),
    }
}

/// The command that starts the server of `request`'s server group, when `images` (the records
/// being pushed, whose targets `unpack` has validated) hold both its server and its agent.
pub fn server_start<'a>(
    request: &Request,
    images: impl IntoIterator<Item = &'a ImageRecord>,
    registry: &str,
    prefix: &str,
) -> Option<ServerStart> {
    let group = request.server.as_ref()?;
    let images: Vec<&ImageRecord> = images.into_iter().collect();
    let reg = registry_path(registry, prefix);
    let target = |source: &str| {
        images
            .iter()
            .find(|i| i.source == source)
            .map(|i| format!("{reg}/{}", i.target))
    };
    let server = target(&group.server)?;
    let agent = target(&group.agent)?;
    Some(ServerStart {
        command: format!(
            "docker run -d --restart=unless-stopped -p 8080:8080 \
             -e CATTLE_BOOTSTRAP_REQUIRED_IMAGE={agent} {server}"
        ),
        server,
        agent,
        registry_default: reg,
    })
}

/// What to set in Rancher 1.6, in the words of its settings and its Kubernetes template:
/// `registry.default` always; the template's questions when `images` hold more than the
/// server group.
pub fn settings<'a>(
    images: impl IntoIterator<Item = &'a ImageRecord>,
    registry: &str,
    prefix: &str,
) -> Vec<(String, String)> {
    let images: Vec<&ImageRecord> = images.into_iter().collect();
    let reg = registry_path(registry, prefix);
    let mut out = vec![(
        "Admin > Settings > Advanced > registry.default (Default Registry for Infrastructure Stacks)"
            .to_string(),
        reg.clone(),
    )];
    if images.iter().all(|i| i.group == "server") {
        return out;
    }
    out.push((
        "Kubernetes template: Private Registry for Add-Ons and Pod Infra Container Image"
            .to_string(),
        reg,
    ));
    if let Some(pause) = images.iter().find(|i| i.group == "pause") {
        out.push((
            "Kubernetes template: Pod Infra Container Image".to_string(),
            pause.target.clone(),
        ));
        if let Some((ns, _)) = pause.target.split_once('/') {
            out.push((
                "Kubernetes template: Image namespace for Add-Ons and Pod Infra Container Image"
                    .to_string(),
                ns.to_string(),
            ));
        }
    }
    if images
        .iter()
        .any(|i| i.target.starts_with("kubernetes-helm/"))
    {
        out.push((
            "Kubernetes template: Image namespace for kubernetes-helm Image".to_string(),
            "kubernetes-helm".to_string(),
        ));
    }
    out
}

/// What `unpack`'s report tells the operator about the images it pushed: the settings
/// ([`settings`]) and, when the bundle holds the server group, how to start the server
/// ([`server_start`]). One call for every way a bundle is read.
pub fn advice<'a>(
    request: &Request,
    images: impl IntoIterator<Item = &'a ImageRecord>,
    registry: &str,
    prefix: &str,
) -> (Vec<(String, String)>, Option<ServerStart>) {
    let images: Vec<&ImageRecord> = images.into_iter().collect();
    (
        settings(images.iter().copied(), registry, prefix),
        server_start(request, images, registry, prefix),
    )
}

/// The closing lines of `unpack`'s text report: how to start the server, when the bundle
/// holds one, then what to set in Rancher.
pub fn render(server: Option<&ServerStart>, settings: &[(String, String)]) -> String {
    let mut s = String::new();
    if let Some(st) = server {
        s.push_str("\nStart the Rancher server from the private registry:\n");
        s.push_str(&format!("  {}\n", st.command));
    }
    s.push_str("\nSet in Rancher:\n");
    for (k, v) in settings {
        s.push_str(&format!("  {k}:\n      {v}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::format::ServerRequest;
    use crate::digest::Digest;

    fn rec(source: &str, target: &str, group: &str) -> ImageRecord {
        ImageRecord {
            source: source.into(),
            target: target.into(),
            alt_targets: vec![],
            group: group.into(),
            digest: Digest::of(source.as_bytes()),
            media_type: crate::media_type::DOCKER_MANIFEST.into(),
            size: 1,
            total_bytes: 1,
            from_index: None,
            upstream: None,
        }
    }

    fn server_1_6_14() -> (Request, Vec<ImageRecord>) {
        let request = Request {
            rancher_version: Some("1.6.14".into()),
            server: Some(ServerRequest {
                server: "docker.io/rancher/server:v1.6.14".into(),
                agent: "docker.io/rancher/agent:v1.2.9".into(),
                load_balancer: "docker.io/rancher/lb-service-haproxy:v0.7.15".into(),
            }),
            ..Request::default()
        };
        let images = vec![
            rec(
                "docker.io/rancher/server:v1.6.14",
                "rancher/server:v1.6.14",
                "server",
            ),
            rec(
                "docker.io/rancher/agent:v1.2.9",
                "rancher/agent:v1.2.9",
                "server",
            ),
            rec(
                "docker.io/rancher/lb-service-haproxy:v0.7.15",
                "rancher/lb-service-haproxy:v0.7.15",
                "server",
            ),
        ];
        (request, images)
    }

    #[test]
    fn the_server_command_names_the_private_agent_and_server() {
        let (request, images) = server_1_6_14();
        let st = server_start(&request, &images, "reg.local:5000", "").unwrap();
        assert_eq!(
            st.command,
            "docker run -d --restart=unless-stopped -p 8080:8080 \
             -e CATTLE_BOOTSTRAP_REQUIRED_IMAGE=reg.local:5000/rancher/agent:v1.2.9 \
             reg.local:5000/rancher/server:v1.6.14"
        );
        assert_eq!(st.registry_default, "reg.local:5000");
        // Under a Harbor-style project, the prefix is part of REG.
        let st = server_start(&request, &images, "reg.local", "/proj/").unwrap();
        assert_eq!(st.server, "reg.local/proj/rancher/server:v1.6.14");
        assert_eq!(st.agent, "reg.local/proj/rancher/agent:v1.2.9");
        assert_eq!(st.registry_default, "reg.local/proj");
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["registryDefault"], "reg.local/proj");
        assert!(json["command"].as_str().unwrap().ends_with(&st.server));
    }

    #[test]
    fn no_command_without_the_group_or_its_agent() {
        let (request, images) = server_1_6_14();
        assert!(server_start(&Request::default(), &images, "r", "").is_none());
        // The agent is missing (a --keep-going pack that could not fetch it): no command
        // that would send every host to Docker Hub for it.
        let without_agent: Vec<&ImageRecord> = images
            .iter()
            .filter(|i| !i.source.contains("agent"))
            .collect();
        assert!(server_start(&request, without_agent, "r", "").is_none());
    }

    #[test]
    fn settings_of_a_server_only_bundle_are_registry_default_alone() {
        let (_, images) = server_1_6_14();
        let s = settings(&images, "reg.local", "");
        assert_eq!(s.len(), 1);
        assert!(s[0].0.contains("registry.default"));
        assert_eq!(s[0].1, "reg.local");
        let mut k8s = images.clone();
        k8s.push(rec(
            "gcr.io/google_containers/pause-amd64:3.0",
            "google_containers/pause-amd64:3.0",
            "pause",
        ));
        k8s.push(rec(
            "gcr.io/kubernetes-helm/tiller:v2.6.1",
            "kubernetes-helm/tiller:v2.6.1",
            "addons",
        ));
        let s = settings(&k8s, "reg.local", "p");
        let values: Vec<&str> = s.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(
            values,
            [
                "reg.local/p",
                "reg.local/p",
                "google_containers/pause-amd64:3.0",
                "google_containers",
                "kubernetes-helm"
            ]
        );
    }

    #[test]
    fn the_text_starts_the_server_then_lists_the_settings() {
        let (request, images) = server_1_6_14();
        let st = server_start(&request, &images, "reg.local", "").unwrap();
        let text = render(Some(&st), &settings(&images, "reg.local", ""));
        assert_eq!(
            text,
            "\nStart the Rancher server from the private registry:\n  \
             docker run -d --restart=unless-stopped -p 8080:8080 \
             -e CATTLE_BOOTSTRAP_REQUIRED_IMAGE=reg.local/rancher/agent:v1.2.9 \
             reg.local/rancher/server:v1.6.14\n\
             \nSet in Rancher:\n  \
             Admin > Settings > Advanced > registry.default (Default Registry for Infrastructure Stacks):\n      \
             reg.local\n"
        );
        assert!(!render(None, &[]).contains("docker run"));
    }
}
