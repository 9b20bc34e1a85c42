//! Issue 16: the Rancher server group (server, agent, load balancer) in `list`, `pack` and
//! `unpack`, the command that starts the server from the private registry, and an upgrade
//! from 1.6.14 to 1.6.16 as one delta bundle, against a rehearsal of today's internet
//! ([`crate::harness::upstreams`]).

use std::collections::BTreeSet;
use std::path::Path;

use airlock::digest::Digest;
use airlock::fixtures::{Artifact, Fixture};

use crate::harness::upstreams::{docker_17_03_pull, Today};
use crate::harness::Registry;
use crate::support::*;

/// Per release, the agent its server requires and its load-balancer image, as read from
/// rancher/rancher `server/Dockerfile` (`CATTLE_CATTLE_VERSION`) and rancher/cattle
/// `resources/content/cattle-global.properties` (`bootstrap.required.image`,
/// `lb.instance.image`) at each tag: written out here from that research, not taken from
/// airlock's data file.
const SERVER_GROUPS: [(&str, &str, &str); 31] = [
    ("1.6.0", "v1.2.2", "v0.7.1"),
    ("1.6.1", "v1.2.2", "v0.7.1"),
    ("1.6.2", "v1.2.2", "v0.7.5"),
    ("1.6.3", "v1.2.5", "v0.7.5"),
    ("1.6.4", "v1.2.5", "v0.7.5"),
    ("1.6.5", "v1.2.5", "v0.7.5"),
    ("1.6.6", "v1.2.5", "v0.7.6"),
    ("1.6.7", "v1.2.5", "v0.7.6"),
    ("1.6.8", "v1.2.6", "v0.7.9"),
    ("1.6.9", "v1.2.6", "v0.7.9"),
    ("1.6.10", "v1.2.6", "v0.7.9"),
    ("1.6.11", "v1.2.7", "v0.7.15"),
    ("1.6.12", "v1.2.7", "v0.7.15"),
    ("1.6.13", "v1.2.8", "v0.7.15"),
    ("1.6.14", "v1.2.9", "v0.7.15"),
    ("1.6.15", "v1.2.10", "v0.9.1"),
    ("1.6.16", "v1.2.10", "v0.9.1"),
    ("1.6.17", "v1.2.10", "v0.9.1"),
    ("1.6.18", "v1.2.10", "v0.9.1"),
    ("1.6.19", "v1.2.11-rc1", "v0.9.3"),
    ("1.6.20", "v1.2.11", "v0.9.3"),
    ("1.6.21", "v1.2.11", "v0.9.3"),
    ("1.6.22", "v1.2.11", "v0.9.6"),
    ("1.6.23", "v1.2.11", "v0.9.6"),
    ("1.6.24", "v1.2.11", "v0.9.6"),
    ("1.6.25", "v1.2.11", "v0.9.6"),
    ("1.6.26", "v1.2.11", "v0.9.6"),
    ("1.6.27", "v1.2.11", "v0.9.11"),
    ("1.6.28", "v1.2.11", "v0.9.11"),
    ("1.6.29", "v1.2.11", "v0.9.13"),
    ("1.6.30", "v1.2.11", "v0.9.14"),
];

/// The image lines of `list` text output, with their comments.
fn listed(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(str::to_string)
        .collect()
}

#[test]
fn r16_list_with_server_gives_every_releases_server_agent_and_load_balancer() {
    for (version, agent, lb) in SERVER_GROUPS {
        let server_group = [
            format!("docker.io/rancher/server:v{version} # server"),
            format!("docker.io/rancher/agent:{agent} # agent"),
            format!("docker.io/rancher/lb-service-haproxy:{lb} # load-balancer"),
        ];
        let o = airlock(&["list", "--version", version, "--with-server"]);
        assert!(o.status.success(), "{version}: {}", stderr(&o));
        let all = listed(&stdout(&o));
        assert_eq!(all[all.len() - 3..], server_group, "{version}");
        // The default selection has none of them.
        let o = airlock(&["list", "--version", version]);
        assert_eq!(listed(&stdout(&o)), all[..all.len() - 3], "{version}");
    }
    // --only server: just the three, for pack as for list.
    let o = airlock(&["list", "--version", "v1.6.14", "--only", "server"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        listed(&stdout(&o)),
        [
            "docker.io/rancher/server:v1.6.14 # server",
            "docker.io/rancher/agent:v1.2.9 # agent",
            "docker.io/rancher/lb-service-haproxy:v0.7.15 # load-balancer",
        ]
    );
    // The group is not a k8s template: asking for it with an image list is refused.
    let o = airlock(&["pack", "--images", "x.txt", "--with-server", "-o", "b"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--with-server"), "{}", stderr(&o));
}

/// The references of `version` with the server group, as `pack --with-server` asks for them.
fn names(version: &str) -> Vec<String> {
    let s = airlock::catalog::Selected::resolve(&airlock::catalog::Selection {
        version: version.into(),
        with_server: true,
        ..Default::default()
    })
    .unwrap();
    s.images().iter().map(|i| i.reference.to_string()).collect()
}

/// Today's places, serving every image of 1.6.14 and 1.6.16 with their server groups.
fn today() -> Today {
    let mut all = names("1.6.14");
    for n in names("1.6.16") {
        if !all.contains(&n) {
            all.push(n);
        }
    }
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    Today::start(SEED, SCALE, &refs, 1000)
}

/// `airlock pack --version VERSION` through the stand-ins, with a cache beside `out`.
fn pack(t: &Today, version: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let cache = out.parent().unwrap().join("cache");
    pack_today(t, version, out, Some(&cache), extra)
}

fn unpack(bundle: &Path, reg: &Registry, extra: &[&str]) -> std::process::Output {
    let host = reg.host();
    let mut args = vec![
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &host,
        "--insecure",
    ];
    args.extend_from_slice(extra);
    airlock(&args)
}

fn command(reg: &str, agent: &str, server: &str) -> String {
    format!(
        "docker run -d --restart=unless-stopped -p 8080:8080 \
         -e CATTLE_BOOTSTRAP_REQUIRED_IMAGE={reg}/rancher/agent:{agent} {reg}/rancher/server:{server}"
    )
}

#[test]
fn r16_pack_and_unpack_carry_the_server_group_and_say_how_to_start_the_server() {
    let t = today();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle-1.6.14.tar.zst");
    let o = pack(&t, "1.6.14", &out, &["--with-server"]);
    assert!(o.status.success(), "{}\n{:?}", stderr(&o), t.traffic());
    let b = manifest_of(&out);
    assert_eq!(b.images.len(), 24 + 3, "{}", stderr(&o));
    let server = b.request.server.as_ref().expect("request.server");
    assert_eq!(server.server, "docker.io/rancher/server:v1.6.14");
    assert_eq!(server.agent, "docker.io/rancher/agent:v1.2.9");
    assert_eq!(
        server.load_balancer,
        "docker.io/rancher/lb-service-haproxy:v0.7.15"
    );
    let group: Vec<(&str, &str)> = b
        .images
        .iter()
        .filter(|i| i.group == "server")
        .map(|i| (i.source.as_str(), i.target.as_str()))
        .collect();
    assert_eq!(
        group,
        [
            ("docker.io/rancher/agent:v1.2.9", "rancher/agent:v1.2.9"),
            (
                "docker.io/rancher/lb-service-haproxy:v0.7.15",
                "rancher/lb-service-haproxy:v0.7.15"
            ),
            ("docker.io/rancher/server:v1.6.14", "rancher/server:v1.6.14"),
        ]
    );
    for (source, _) in &group {
        let rec = b.images.iter().find(|i| i.source == *source).unwrap();
        assert_eq!(&rec.digest, t.fixture(source).artifact.digest(), "{source}");
        assert_eq!(rec.upstream.as_ref().unwrap().fetched_from, *source);
    }

    // Text report: the images, then how to start the server and what to set.
    let target = Registry::start();
    let o = unpack(&out, &target, &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    let reg = target.host();
    let start = format!(
        "\nStart the Rancher server from the private registry:\n  {}\n\nSet in Rancher:\n  \
         Admin > Settings > Advanced > registry.default (Default Registry for Infrastructure Stacks):\n      \
         {reg}\n  Kubernetes template:",
        command(&reg, "v1.2.9", "v1.6.14")
    );
    assert!(text.contains(&start), "{text}");
    assert!(
        text.contains(&format!("-> {reg}/rancher/server:v1.6.14\n")),
        "{text}"
    );
    // What the command names is there, as a Docker 17.03 engine pulls it.
    for (repo, tag, source) in [
        ("rancher/server", "v1.6.14", server.server.as_str()),
        ("rancher/agent", "v1.2.9", server.agent.as_str()),
        (
            "rancher/lb-service-haproxy",
            "v0.7.15",
            server.load_balancer.as_str(),
        ),
    ] {
        let pulled = docker_17_03_pull(&target.url(), repo, tag)
            .unwrap_or_else(|e| panic!("Docker 17.03 cannot pull {repo}:{tag}: {e}"));
        assert_eq!(
            pulled.digest,
            t.fixture(source).artifact.digest().to_string()
        );
    }

    // JSON, under a Harbor-style project: REG is the registry and the prefix.
    let o = unpack(&out, &target, &["--prefix", "mirror/", "--output", "json"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let proj = format!("{reg}/mirror");
    let s = &v["rancherServer"];
    assert_eq!(s["command"], command(&proj, "v1.2.9", "v1.6.14"), "{v}");
    assert_eq!(s["server"], format!("{proj}/rancher/server:v1.6.14"));
    assert_eq!(s["agent"], format!("{proj}/rancher/agent:v1.2.9"));
    assert_eq!(s["registryDefault"], proj);
    assert_eq!(v["rancherSettings"][0]["value"], proj);
    docker_17_03_pull(&target.url(), "mirror/rancher/agent", "v1.2.9").unwrap();
    // Read in one sequential pass (standard input), the report is the same.
    let bytes = std::fs::read(&out).unwrap();
    let o = airlock_with(
        &[
            "unpack",
            "-",
            "--registry",
            &reg,
            "--insecure",
            "--prefix",
            "mirror",
            "--output",
            "json",
        ],
        Some(&bytes),
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let streamed: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(streamed["rancherServer"], v["rancherServer"]);
    assert_eq!(streamed["rancherSettings"], v["rancherSettings"]);

    let o = airlock(&["inspect", out.to_str().unwrap()]);
    assert!(
        stdout(&o).contains(
            "Rancher 1.6.14 (k8s templates: v1.8.10-rancher1-1, v1.8.5-rancher4; server group)"
        ),
        "{}",
        stdout(&o)
    );
    // --with-server adds to --only.
    let some = dir.path().join("pause-and-server.tar.zst");
    let o = pack(&t, "1.6.14", &some, &["--only", "pause", "--with-server"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = manifest_of(&some);
    assert_eq!(m.images.len(), 1 + 3);
    let server_only = dir.path().join("server.tar.zst");
    let o = pack(&t, "1.6.14", &server_only, &["--only", "server"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(manifest_of(&server_only).images.len(), 3);
    let o = airlock(&["inspect", server_only.to_str().unwrap()]);
    assert!(
        stdout(&o).contains("Rancher 1.6.14 (server group);"),
        "{}",
        stdout(&o)
    );
    // Its report ends with the command and registry.default, and no template settings.
    let o = unpack(&server_only, &target, &["--prefix", "only"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let only = format!("{reg}/only");
    assert!(
        stdout(&o).ends_with(&format!(
            "\nStart the Rancher server from the private registry:\n  {}\n\nSet in Rancher:\n  \
             Admin > Settings > Advanced > registry.default (Default Registry for Infrastructure Stacks):\n      \
             {only}\n",
            command(&only, "v1.2.9", "v1.6.14")
        )),
        "{}",
        stdout(&o)
    );
    assert_eq!(m.request.groups, ["pause"]);
    assert!(m.request.server.is_some());
    // Without the group, no command: the report is as before.
    let only_k8s = dir.path().join("pause.tar.zst");
    let o = pack(&t, "1.6.14", &only_k8s, &["--only", "pause"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = manifest_of(&only_k8s);
    assert!(m.request.server.is_none());
    let o = unpack(&only_k8s, &target, &["--output", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.get("rancherServer").is_none(), "{v}");
    let o = unpack(&only_k8s, &target, &[]);
    assert!(!stdout(&o).contains("docker run"), "{}", stdout(&o));
}

/// The configs and layers a bundle stores of a fixture (the linux/amd64 image of an index;
/// a schema 1 image's layers, as its config is airlock's own).
fn stored_blobs(f: &Fixture) -> BTreeSet<Digest> {
    let image = match &f.artifact {
        Artifact::Image(i) => i,
        Artifact::Index(ix) => ix
            .children
            .iter()
            .find(|c| c.platform.architecture == "amd64")
            .unwrap(),
        Artifact::Schema1(s) => return s.layers.iter().map(|l| l.digest.clone()).collect(),
    };
    std::iter::once(&image.config)
        .chain(&image.layers)
        .map(|b| b.digest.clone())
        .collect()
}

#[test]
fn r16_an_upgrade_from_1_6_14_to_1_6_16_is_one_delta_bundle() {
    let t = today();
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("bundle-1.6.14.tar.zst");
    let o = pack(&t, "1.6.14", &base, &["--with-server"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let delta = dir.path().join("upgrade-1.6.16.tar.zst");
    let o = pack(
        &t,
        "1.6.16",
        &delta,
        &["--with-server", "--base", base.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", stderr(&o));

    // The delta carries every manifest of 1.6.16, and of the configs and layers exactly those
    // the 1.6.14 images do not have.
    let blobs_of = |names: &[String]| -> BTreeSet<Digest> {
        names
            .iter()
            .flat_map(|n| stored_blobs(t.fixture(n)))
            .collect()
    };
    let (n14, n16) = (names("1.6.14"), names("1.6.16"));
    let (old, new) = (blobs_of(&n14), blobs_of(&n16));
    let m = manifest_of(&delta);
    assert_eq!(m.images.len(), 23 + 3);
    assert_eq!(
        m.request.server.as_ref().unwrap().agent,
        "docker.io/rancher/agent:v1.2.10"
    );
    let manifests: BTreeSet<Digest> = m.images.iter().map(|i| i.digest.clone()).collect();
    let carried: BTreeSet<Digest> = blob_entries(&delta)
        .difference(&manifests)
        .cloned()
        .collect();
    assert_eq!(carried, new.difference(&old).cloned().collect());
    assert!(blob_entries(&delta).is_superset(&manifests));
    let omitted: BTreeSet<Digest> = m
        .base
        .as_ref()
        .unwrap()
        .omitted_blobs
        .iter()
        .map(|b| b.digest.clone())
        .collect();
    assert_eq!(omitted, new.intersection(&old).cloned().collect());
    // Concretely: the new server and agent travel, what both releases share does not.
    for carried_name in [
        "docker.io/rancher/server:v1.6.16",
        "docker.io/rancher/agent:v1.2.10",
    ] {
        let own = stored_blobs(t.fixture(carried_name));
        assert!(own.iter().any(|d| carried.contains(d)), "{carried_name}");
    }
    for shared in [KUBE_AUTH, "docker.io/rancher/etcd:v2.3.7-13", BUSYBOX] {
        assert!(
            stored_blobs(t.fixture(shared)).is_subset(&omitted),
            "{shared}"
        );
    }
    assert!(!omitted.is_empty() && !carried.is_empty());

    // Onto a registry that holds 1.6.14: every 1.6.16 image complete, and the command that
    // starts the new server.
    let target = Registry::start();
    let o = unpack(&base, &target, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = unpack(&delta, &target, &["--output", "json"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["rancherServer"]["command"],
        command(&target.host(), "v1.2.10", "v1.6.16")
    );
    for rec in &m.images {
        let (repo, tag) = rec.target.rsplit_once(':').unwrap();
        let pulled = docker_17_03_pull(&target.url(), repo, tag)
            .unwrap_or_else(|e| panic!("Docker 17.03 cannot pull {}: {e}", rec.target));
        assert_eq!(pulled.digest, rec.digest.to_string(), "{}", rec.target);
    }
}
