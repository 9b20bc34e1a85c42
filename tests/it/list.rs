//! `airlock list` as an operator runs it.

use crate::support::*;

const DOCS_1_6_14: [&str; 17] = [
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
];

/// The image lines of `list` text output.
fn images(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().strip_prefix("- "))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

#[test]
fn list_1_6_14_has_the_docs_images_and_the_final_catalog() {
    let o = airlock(&["list", "--version", "1.6.14"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let imgs = images(&out);
    for want in DOCS_1_6_14 {
        assert!(imgs.iter().any(|i| i == want), "missing {want} in\n{out}");
    }
    for extra in [
        "docker.io/rancher/k8s:v1.8.10-rancher1-1",
        "docker.io/rancher/network-manager:v0.7.19",
        "docker.io/rancher/net:holder",
        "docker.io/rancher/healthcheck:v0.3.3",
    ] {
        assert!(imgs.iter().any(|i| i == extra), "missing {extra} in\n{out}");
    }
    assert!(out.contains("k8s: v1.8.10-rancher1-1"), "{out}");
    assert!(out.contains("k8s: v1.8.5-rancher4"), "{out}");
}

#[test]
fn list_template_and_groups_gives_exactly_the_docs_17() {
    let o = airlock(&[
        "list",
        "--version",
        "1.6.14",
        "--k8s-template",
        "v1.8.5-rancher4",
        "--only",
        "pause",
        "--only",
        "infra",
        "--only",
        "addons",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut got = images(&stdout(&o));
    got.sort();
    let mut want: Vec<String> = DOCS_1_6_14.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got, want);
    // Rancher's spelling of the add-on filter works too.
    let o = airlock(&[
        "list",
        "--version",
        "1.6.14",
        "--k8s-template",
        "v1.8.5-rancher4",
        "--k8saddons",
    ]);
    assert_eq!(images(&stdout(&o)).len(), 8, "{}", stdout(&o));
}

#[test]
fn list_json_carries_groups_and_private_paths() {
    let o = airlock(&["list", "--version", "1.6.14", "--output", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("list --output json parses");
    let images: Vec<&serde_json::Value> = v["templates"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|t| t["images"].as_array().unwrap())
        .collect();
    let busybox = images
        .iter()
        .find(|i| i["reference"] == "docker.io/library/busybox:latest")
        .unwrap();
    assert_eq!(busybox["privatePath"], "busybox:latest");
    assert_eq!(busybox["group"], "infra");
    let pause = images
        .iter()
        .find(|i| i["reference"] == "gcr.io/google_containers/pause-amd64:3.0")
        .unwrap();
    assert_eq!(pause["privatePath"], "google_containers/pause-amd64:3.0");
    assert_eq!(
        pause["altPaths"][0],
        "gcr.io/google_containers/pause-amd64:3.0"
    );
}

#[test]
fn list_unknown_version_names_the_known_ones() {
    let o = airlock(&["list", "--version", "1.6.99"]);
    // A value that is not a release: a usage error (issue 15).
    assert_exit(&o, 2);
    let e = stderr(&o);
    assert!(
        e.contains("1.6.99") && e.contains("1.6.0") && e.contains("1.6.30"),
        "{e}"
    );
    let o = airlock(&["list", "--versions"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).lines().filter(|l| l.starts_with("1.6.")).count(),
        31,
        "{}",
        stdout(&o)
    );
}

#[test]
fn list_of_later_releases() {
    // 1.6.15 moved pause and add-ons to docker.io/rancher.
    let o = airlock(&["list", "--version", "1.6.15", "--only", "pause"]);
    assert!(
        images(&stdout(&o)).contains(&"docker.io/rancher/pause-amd64:3.0".to_string()),
        "{}",
        stdout(&o)
    );
    // 1.6.29's add-ons are inferred, and marked so.
    let o = airlock(&["list", "--version", "1.6.29", "--only", "addons"]);
    let out = stdout(&o);
    assert!(
        out.contains("docker.io/rancher/tiller:v2.11.0") && out.contains("inferred"),
        "{out}"
    );
}

/// A Rancher 2 release is out of scope, and airlock says so rather than "unknown" (issue 15).
#[test]
fn r15_list_of_rancher_2_says_it_is_out_of_scope() {
    for v in ["2.0.0", "v2.6.9", "2.x"] {
        let o = airlock(&["list", "--version", v]);
        assert_exit(&o, 2);
        let e = stderr(&o);
        assert!(
            e.contains("out of scope") && e.contains("Rancher 1.6") && e.contains("1.6.30"),
            "{v}: {e}"
        );
    }
    let e = stderr(&airlock(&["list", "--version", "1.6.99"]));
    assert!(!e.contains("out of scope"), "{e}");
}

/// Every image of a bundle: source, target, and alternate targets (sorted).
fn targets(bundle: &std::path::Path) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<_> = manifest_of(bundle)
        .images
        .into_iter()
        .map(|i| {
            let mut alt = i.alt_targets;
            alt.sort();
            (i.source, i.target, alt)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn i15_list_output_packed_as_images_gives_the_targets_of_pack_version() {
    // `airlock list --version 1.6.14 > l.txt; airlock pack --images l.txt` against
    // `airlock pack --version 1.6.14`, both through the stand-ins of today's places.
    let per = airlock::catalog::select(&airlock::catalog::Selection {
        version: "1.6.14".into(),
        ..Default::default()
    })
    .unwrap();
    let names: Vec<String> = airlock::catalog::union(&per)
        .iter()
        .map(|i| i.reference.to_string())
        .collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let t = crate::harness::upstreams::Today::start(SEED, SCALE, &refs, 1000);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let by_version = dir.path().join("version.tar.zst");
    let o = pack_today(&t, "1.6.14", &by_version, Some(&cache), &[]);
    assert!(o.status.success(), "{}", stderr(&o));

    let pins = t.pins_file().display().to_string();
    // `list`'s text, and one reference a line (`--format refs`), each packed as a list.
    let by_list = |name: &str, format: &str| {
        let o = airlock(&["list", "--version", "1.6.14", "--format", format]);
        assert!(o.status.success(), "{}", stderr(&o));
        let list = dir.path().join(format!("{name}.txt"));
        std::fs::write(&list, &o.stdout).unwrap();
        let out = dir.path().join(format!("{name}.tar.zst"));
        let mut args: Vec<String> = [
            "pack",
            "--images",
            list.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--pins",
            &pins,
            "--cache",
            cache.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec();
        args.extend(t.mirror_args());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = airlock(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        targets(&out)
    };
    let want = targets(&by_version);
    assert_eq!(by_list("text", "text"), want);
    assert_eq!(by_list("refs", "refs"), want);
    // What the round trip is for: Rancher's paths, not the references' own.
    assert!(want.contains(&(
        "docker.io/library/busybox:latest".into(),
        "busybox:latest".into(),
        vec![]
    )));
    assert!(want.contains(&(
        "gcr.io/google_containers/pause-amd64:3.0".into(),
        "google_containers/pause-amd64:3.0".into(),
        vec!["gcr.io/google_containers/pause-amd64:3.0".into()]
    )));
}
