//! Issue 12: `pack --version 1.6.14` against a rehearsal of today's internet
//! ([`crate::harness::upstreams`]), and what lands in a private registry as Rancher 1.6's
//! Docker 1.12–17.03 engines pull it.

use std::path::Path;
use std::process::Command;

use airlock::fixtures::Artifact;
use airlock::media_type;

use crate::harness::upstreams::{docker_17_03_pull, Today};
use crate::harness::{Containerd, Registry, RegistryBuilder};
use crate::support::*;

const PAUSE_TODAY: &str = "registry.k8s.io/pause-amd64:3.0";
const TILLER: &str = "gcr.io/kubernetes-helm/tiller:v2.6.1";

/// The 24 references `pack --version 1.6.14` asks for (both templates, all groups).
fn names_1_6_14() -> Vec<String> {
    let per = airlock::catalog::select(&airlock::catalog::Selection {
        version: "1.6.14".into(),
        ..Default::default()
    })
    .unwrap();
    airlock::catalog::union(&per)
        .iter()
        .map(|i| i.reference.to_string())
        .collect()
}

fn today(allowance: u64) -> Today {
    let names = names_1_6_14();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Today::start(SEED, SCALE, &refs, allowance)
}

/// `airlock pack --version 1.6.14` through the stand-ins ([`pack_today`]).
fn pack_1_6_14(
    t: &Today,
    out: &Path,
    cache: Option<&Path>,
    extra: &[&str],
) -> std::process::Output {
    pack_today(t, "1.6.14", out, cache, extra)
}

/// `airlock pack --images` of `images` through the stand-ins (only `--mirror` rules), with
/// `extra` flags.
fn pack_list(t: &Today, images: &[&str], out: &Path, extra: &[&str]) -> std::process::Output {
    let mirrors = t.mirror_args();
    let mut args: Vec<&str> = extra.to_vec();
    args.extend(mirrors.iter().map(String::as_str));
    pack_images(images, out, &args)
}

/// `GET` (or `HEAD`) of `repo`'s manifest `reference` from a plain-http registry, with the
/// harness's own HTTP client.
fn manifest_request(
    method: &str,
    registry_url: &str,
    repo: &str,
    reference: &str,
    accept: &str,
) -> crate::harness::http::Response {
    crate::harness::http::request(
        method,
        &format!("{registry_url}/v2/{repo}/manifests/{reference}"),
        &[("Accept", accept)],
        &[],
    )
    .unwrap()
}

fn unpack(bundle: &Path, reg: &Registry) -> std::process::Output {
    airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &reg.host(),
        "--insecure",
    ])
}

#[test]
fn r12_pack_1_6_14_from_todays_places_and_pull_every_target_as_docker_17_03() {
    let t = today(1000);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle.tar.zst");
    let o = pack_1_6_14(&t, &out, Some(&dir.path().join("cache")), &[]);
    assert!(o.status.success(), "{}\n{:?}", stderr(&o), t.traffic());
    let b = manifest_of(&out);
    assert_eq!(b.images.len(), 24, "{}", stderr(&o));
    assert_eq!(b.format_version, 2);
    assert!(b.request.pins.is_some());

    // Where each came from, and what was converted.
    let rec = |s: &str| b.images.iter().find(|i| i.source == s).unwrap();
    let up = |s: &str| rec(s).upstream.as_ref().unwrap();
    assert_eq!(up(PAUSE).fetched_from, PAUSE_TODAY);
    assert!(up(PAUSE).pinned);
    assert_eq!(up(TILLER).fetched_from, "ghcr.io/helm/tiller:v2.6.1");
    assert_eq!(
        up("gcr.io/google_containers/k8s-dns-kube-dns-amd64:1.14.5").fetched_from,
        "registry.k8s.io/k8s-dns-kube-dns-amd64:1.14.5"
    );
    for (name, upstream_type) in [
        (PAUSE, media_type::DOCKER_SCHEMA1_SIGNED),
        (BUSYBOX, media_type::OCI_INDEX),
    ] {
        let r = rec(name);
        let u = up(name);
        assert_eq!(&u.digest, t.fixture(name).artifact.digest(), "{name}");
        assert_eq!(u.media_type, upstream_type, "{name}");
        let c = u
            .conversion
            .as_ref()
            .unwrap_or_else(|| panic!("{name} not converted"));
        assert!(!c.reason.is_empty());
        assert_eq!(r.media_type, media_type::DOCKER_MANIFEST, "{name}");
        assert_ne!(&r.digest, t.fixture(name).artifact.digest());
    }
    assert_eq!(
        rec(PAUSE).alt_targets,
        ["gcr.io/google_containers/pause-amd64:3.0"]
    );
    assert_eq!(
        up(PAUSE).conversion.as_ref().unwrap().generated.len(),
        1,
        "pause's config is airlock's"
    );
    // busybox's attestation entry is named as left out, with the platform picked.
    let dropped = &up(BUSYBOX).conversion.as_ref().unwrap().dropped;
    assert!(
        !dropped.is_empty() && dropped.iter().all(|d| d.reason == "attestation-manifest"),
        "{dropped:?}"
    );
    assert_eq!(
        rec(BUSYBOX).from_index.as_ref().unwrap().platform,
        "linux/amd64"
    );
    // Every Docker-typed upstream keeps its digest.
    for r in &b.images {
        if r.source == PAUSE || r.source == BUSYBOX {
            continue;
        }
        assert!(!r.is_converted(), "{}", r.source);
        assert_eq!(
            &r.digest,
            t.fixture(&r.source).artifact.digest(),
            "{}",
            r.source
        );
    }
    // gcr.io was asked first and said no, for each of its images.
    assert!(t
        .gcr
        .requests()
        .iter()
        .any(|r| r.path.contains("pause-amd64")));

    // Unpack into a default registry (no schema 1, no OCI needed).
    let target = Registry::start();
    let o = unpack(&out, &target);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("converted at pack time"),
        "{}",
        stdout(&o)
    );
    let ctd = Containerd::start();
    let paths: Vec<(&airlock::bundle::format::ImageRecord, &String)> = b
        .images
        .iter()
        .flat_map(|r| {
            std::iter::once(&r.target)
                .chain(&r.alt_targets)
                .map(move |p| (r, p))
        })
        .collect();
    // Each target as Docker 17.03, skopeo and containerd read it; independent, so in
    // parallel (most of the time is spent starting skopeo and ctr).
    rayon::ThreadPoolBuilder::new()
        .num_threads(6)
        .build()
        .unwrap()
        .install(|| {
            use rayon::prelude::*;
            paths.par_iter().for_each(|(r, path)| {
                let (repo, tag) = path.rsplit_once(':').unwrap();
                let pulled = docker_17_03_pull(&target.url(), repo, tag)
                    .unwrap_or_else(|e| panic!("Docker 17.03 cannot pull {path}: {e}"));
                assert_eq!(pulled.digest, r.digest.to_string(), "{path}");
                assert_eq!(pulled.media_type, media_type::DOCKER_MANIFEST, "{path}");
                let s = Command::new("skopeo")
                    .args(["inspect", "--tls-verify=false"])
                    .arg(format!("docker://{}/{path}", target.host()))
                    .output()
                    .expect("skopeo (install the Debian package skopeo)");
                assert!(
                    s.status.success(),
                    "skopeo {path}: {}",
                    String::from_utf8_lossy(&s.stderr)
                );
                let c = ctd.ctr(&[
                    "images",
                    "pull",
                    "--plain-http",
                    &format!("{}/{path}", target.host()),
                ]);
                assert!(
                    c.status.success(),
                    "ctr pull {path}: {}{}",
                    String::from_utf8_lossy(&c.stdout),
                    String::from_utf8_lossy(&c.stderr)
                );
            })
        });
    let targets = paths.len();
    assert_eq!(targets, 25, "24 images, pause at both paths");

    // The converted configs say what the layers are: pause's diff_id is its layer's.
    let Artifact::Schema1(p) = &t.fixture(PAUSE).artifact else {
        panic!("pause is schema 1")
    };
    let pulled = docker_17_03_pull(&target.url(), "google_containers/pause-amd64", "3.0").unwrap();
    assert_eq!(
        pulled.config["rootfs"]["diff_ids"][0],
        p.applied[0].diff_id.as_ref().unwrap().to_string()
    );
    assert_eq!(pulled.config["history"].as_array().unwrap().len(), 2);
    assert_eq!(pulled.config["history"][1]["empty_layer"], true);
    assert_eq!(pulled.config["config"]["Entrypoint"][0], "/pause");
    // busybox: the linux/amd64 entry of the index, its layer and config blobs as upstream's.
    let Artifact::Index(ix) = &t.fixture(BUSYBOX).artifact else {
        panic!("busybox is an index")
    };
    let amd = ix
        .children
        .iter()
        .find(|c| c.platform.architecture == "amd64")
        .unwrap();
    let pulled = docker_17_03_pull(&target.url(), "busybox", "latest").unwrap();
    assert_eq!(pulled.layers, [amd.layers[0].digest.to_string()]);
    assert_eq!(
        pulled.config["rootfs"]["diff_ids"][0],
        amd.layers[0].diff_id.as_ref().unwrap().to_string()
    );

    // inspect and verify say what was converted.
    let o = airlock(&["inspect", out.to_str().unwrap()]);
    assert!(stdout(&o).contains("converted from"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains(&format!("fetched: {PAUSE_TODAY}")),
        "{}",
        stdout(&o)
    );
    let o = airlock(&["verify", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        stdout(&o).matches("converted at pack time").count(),
        2,
        "{}",
        stdout(&o)
    );
}

#[test]
fn r12_conversions_are_deterministic_and_a_rerun_pulls_nothing() {
    let t = today(1000);
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a.tar.zst"),
        dir.path().join("b.tar.zst"),
        dir.path().join("c.tar.zst"),
    );
    let cache = dir.path().join("cache");
    let o = pack_1_6_14(&t, &a, Some(&cache), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let first = t.docker_requests();
    assert!(first.1 > 0, "the first pack GETs manifests");
    // Same cache: tags are resolved with HEAD (free), nothing is GET, no layer downloaded
    // (pause's diff ID comes from the cache too).
    let o = pack_1_6_14(&t, &b, Some(&cache), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let second = t.docker_requests();
    assert_eq!(second.1, first.1, "no manifest GET on a rerun");
    assert_eq!(second.2, first.2, "no blob GET on a rerun");
    assert!(second.0 > first.0, "HEADs resolve the tags");
    assert!(stderr(&o).contains(" 0 B downloaded"), "{}", stderr(&o));
    // A fresh cache, other parallelism: the same bytes, conversions included.
    let o = pack_1_6_14(&t, &c, Some(&dir.path().join("cache2")), &["--jobs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let (ra, rb, rc) = (
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        std::fs::read(&c).unwrap(),
    );
    assert!(ra == rb && rb == rc, "bundles differ");
    // --no-cache converts the same way.
    let d = dir.path().join("d.tar.zst");
    let o = pack_1_6_14(&t, &d, None, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(&d).unwrap(),
        ra,
        "--no-cache gives the same bundle"
    );
}

#[test]
fn r12_docker_hub_allowance_stops_the_pack_before_any_download() {
    // 1.6.14 needs 16 manifest GETs from docker.io (15 images, busybox counting twice: its
    // index and one platform manifest); 5 are left.
    let t = today(5);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let o = pack_1_6_14(&t, &out, Some(&dir.path().join("cache")), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("docker.io allows 5 more manifest pulls") && e.contains("needs 16 (15 images"),
        "{e}"
    );
    assert!(e.contains("docker login"), "{e}");
    let (heads, gets, blobs) = t.docker_requests();
    assert!(heads > 0);
    assert_eq!((gets, blobs), (0, 0), "nothing downloaded from docker.io");
    assert!(!out.exists());

    // When the HEAD answers do not say what remains, the pack cannot know in advance: the
    // 429 that comes is reported at once with its window, not retried for minutes, and
    // docker.io is asked nothing more: one report, the images it left counted, not one line
    // each (issue 12 follow-up).
    t.set_docker_head_limits(false);
    let started = std::time::Instant::now();
    let jobs = 4;
    let o = pack_1_6_14(
        &t,
        &out,
        Some(&dir.path().join("cache-429")),
        &["--jobs", &jobs.to_string()],
    );
    let took = started.elapsed();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("pull rate limit") && e.contains("6 h") && e.contains("docker login"),
        "{e}"
    );
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    assert_eq!(
        e.matches("pull rate limit of").count(),
        1,
        "the limit is reported once: {e}"
    );
    assert!(
        e.contains("airlock asked docker.io nothing more in this pack"),
        "{e}"
    );
    // "N of 24 images could not be fetched": the N are the docker.io images the limit left,
    // counted on the one line that names them.
    let failed: usize = e
        .split(" of 24 images could not be fetched")
        .next()
        .and_then(|h| h.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{e}"));
    assert!(failed >= 2, "{e}");
    assert!(e.contains(&format!("  {failed} images (docker.io/")), "{e}");
    // Every manifest GET is counted, the refused ones too; 5 were allowed. Past the first
    // refusal nothing more is asked: only the GETs already in flight (at most --jobs).
    let refused = t.docker_pulls() - 5;
    assert!(
        (1..=jobs).contains(&refused),
        "{refused} GETs past the limit with --jobs {jobs}"
    );
    assert!(!out.exists());
    t.set_docker_head_limits(true);

    // Logged in (a larger allowance, here a new window), the same pack goes through.
    t.set_docker_allowance(100);
    let o = pack_1_6_14(&t, &out, Some(&dir.path().join("cache")), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(t.docker_pulls(), 16);
}

#[test]
fn r12_keep_digests_carries_upstream_bytes_and_needs_a_schema1_target() {
    let t = today(1000);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keep.tar.zst");
    let o = pack_1_6_14(
        &t,
        &out,
        Some(&dir.path().join("cache")),
        &["--keep-digests", "--all-platforms"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let b = manifest_of(&out);
    assert!(b.request.keep_digests);
    for r in &b.images {
        assert!(!r.is_converted(), "{}", r.source);
        assert_eq!(
            r.registry_digest(),
            t.fixture(&r.source).artifact.digest(),
            "{}",
            r.source
        );
    }
    let pause = b.images.iter().find(|i| i.source == PAUSE).unwrap();
    assert_eq!(pause.media_type, media_type::DOCKER_SCHEMA1_SIGNED);
    assert_eq!(pause.upstream.as_ref().unwrap().schema1_layers.len(), 2);
    let o = airlock(&["verify", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));

    // A default registry refuses schema 1: unpack says so before pushing anything.
    let plain = Registry::start();
    let o = unpack(&out, &plain);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains(PAUSE) && e.contains("schema 1") && e.contains("nothing was pushed"),
        "{e}"
    );
    let repos = plain.storage_dir().join("docker/registry/v2/repositories");
    let pushed: Vec<_> = std::fs::read_dir(&repos)
        .map(|rd| rd.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    // The probe may leave an empty repository directory behind; no image landed.
    for img in &b.images {
        let (repo, tag) = img.target.rsplit_once(':').unwrap();
        let r = manifest_request("HEAD", &plain.url(), repo, tag, media_type::MANIFEST_ACCEPT);
        assert_eq!(r.status, 404, "{} was pushed ({pushed:?})", img.target);
    }

    // One that stores schema 1 takes every image with its upstream digest.
    let s1 = RegistryBuilder::new().schema1().start();
    let o = unpack(&out, &s1);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    for img in &b.images {
        for path in std::iter::once(&img.target).chain(&img.alt_targets) {
            let (repo, tag) = path.rsplit_once(':').unwrap();
            let r = manifest_request("HEAD", &s1.url(), repo, tag, media_type::MANIFEST_ACCEPT);
            assert_eq!(
                r.header("Docker-Content-Digest"),
                Some(
                    t.fixture(&img.source)
                        .artifact
                        .digest()
                        .to_string()
                        .as_str()
                ),
                "{path}"
            );
        }
    }
    // Docker 17.03 pulls the schema 1 pause as it always did.
    let pulled = docker_17_03_pull(&s1.url(), "google_containers/pause-amd64", "3.0").unwrap();
    assert_eq!(pulled.media_type, media_type::DOCKER_SCHEMA1_SIGNED);
}

#[test]
fn r12_all_platforms_turns_an_oci_index_into_a_docker_list_without_attestations() {
    let t = today(1000);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let cache = dir.path().join("cache");
    let o = pack_list(
        &t,
        &[BUSYBOX],
        &out,
        &["--cache", cache.to_str().unwrap(), "--all-platforms"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let b = manifest_of(&out);
    let r = &b.images[0];
    assert_eq!(r.media_type, media_type::DOCKER_LIST);
    let c = r.upstream.as_ref().unwrap().conversion.as_ref().unwrap();
    assert_eq!(c.dropped.len(), 2, "{c:?}");
    assert!(c.dropped.iter().all(|d| d.reason == "attestation-manifest"));
    assert_eq!(c.manifests.len(), 3, "two platforms and the index");
    let target = Registry::start();
    let o = unpack(&out, &target);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let pulled = docker_17_03_pull(&target.url(), "busybox", "latest").unwrap();
    assert_eq!(pulled.media_type, media_type::DOCKER_LIST);
    assert!(pulled.image_digest.is_some());
    // The list names only the two images, with their platforms.
    let raw = manifest_request(
        "GET",
        &target.url(),
        "busybox",
        "latest",
        media_type::DOCKER_LIST,
    );
    let v: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
    let platforms: Vec<String> = v["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
}

#[test]
fn r12_the_real_pins_refuse_an_image_that_is_not_upstreams() {
    // The fixture pause is not Kubernetes' pause: airlock's built-in pins (no --pins) refuse
    // it, naming both digests, and nothing is written. The pin holds under every name of the
    // image: an image list that names it as it is served today (registry.k8s.io, or the old
    // k8s.gcr.io) is checked the same way.
    let reg = Registry::start();
    seed(&reg, &[fixture(PAUSE)]);
    airlock::fixtures::push_raw(&reg.url(), "pause-amd64", "3.0", &fixture(PAUSE).artifact)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    for name in [
        PAUSE,
        PAUSE_TODAY,
        "k8s.gcr.io/pause-amd64:3.0",
        "gcr.io/google-containers/pause-amd64:3.0",
    ] {
        let list = dir.path().join("images.txt");
        std::fs::write(&list, format!("{name}\n")).unwrap();
        let out = dir.path().join("b.tar.zst");
        let o = airlock_with(
            &[
                "pack",
                "--images",
                list.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--cache",
                dir.path().join("cache").to_str().unwrap(),
                "--relocate",
                "gcr.io/google-containers=gcr.io/google_containers",
                "--mirror",
                &format!("gcr.io={}", reg.url()),
                "--mirror",
                &format!("registry.k8s.io={}", reg.url()),
                "--mirror",
                &format!("k8s.gcr.io={}", reg.url()),
            ],
            None,
            &[],
        );
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&fixture(PAUSE).artifact.digest().to_string())
                && e.contains(
                    "sha256:163ac025575b775d1c0f9bf0bdd0f086883171eb475b5068e7defa4ca9e76516"
                )
                && e.contains("pin table"),
            "{name}: {e}"
        );
        assert!(e.contains("--pins"), "{e}");
        assert!(!out.exists());
    }
}

#[test]
fn r12_an_oci_manifest_becomes_docker_schema2_over_the_same_blobs() {
    let docker = Registry::start();
    let f = fixture(KUBE_AUTH);
    seed(&docker, &[f]);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let mirror = format!("docker.io={}", docker.url());
    let o = pack_images(&[KUBE_AUTH], &out, &["--no-cache", "--mirror", &mirror]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("converted"), "{}", stderr(&o));
    let b = manifest_of(&out);
    let r = &b.images[0];
    assert_eq!(r.media_type, media_type::DOCKER_MANIFEST);
    let u = r.upstream.as_ref().unwrap();
    assert_eq!(&u.digest, f.artifact.digest());
    assert_eq!(u.media_type, media_type::OCI_MANIFEST);
    let c = u.conversion.as_ref().unwrap();
    assert_eq!(c.manifests[0].from, *f.artifact.digest());
    assert_eq!(c.manifests[0].to, r.digest);
    let target = Registry::start();
    let o = unpack(&out, &target);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let (_, repo, tag) = airlock::fixtures::upstream_path(KUBE_AUTH);
    let pulled = docker_17_03_pull(&target.url(), &repo, &tag).unwrap();
    let img = f.artifact.images()[0];
    let want: Vec<String> = img.layers.iter().map(|l| l.digest.to_string()).collect();
    assert_eq!(pulled.layers, want, "the same layers");
    // The same config bytes, now Docker-typed.
    let raw = manifest_request(
        "GET",
        &target.url(),
        &repo,
        &tag,
        media_type::DOCKER_MANIFEST,
    );
    let v: serde_json::Value = serde_json::from_slice(&raw.body).unwrap();
    assert_eq!(v["config"]["digest"], img.config.digest.to_string());
    assert_eq!(v["config"]["mediaType"], media_type::DOCKER_CONFIG);
}

#[test]
fn r12_a_token_server_refusing_a_deleted_project_moves_on_to_the_next_place() {
    // gcr.io's token server refuses anonymous pulls of the deleted kubernetes-helm project
    // (403 DENIED): that is gcr.io saying "not here", so tiller comes from ghcr.io.
    let t = today(1000);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.tar.zst");
    let o = pack_list(&t, &[TILLER], &out, &["--no-cache"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        t.gcr
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/v2/token")),
        "gcr.io's token server was asked"
    );
    let b = manifest_of(&out);
    assert_eq!(
        b.images[0].upstream.as_ref().unwrap().fetched_from,
        "ghcr.io/helm/tiller:v2.6.1"
    );
    // gcr.io's answer is reported, not dropped, with the token server's own words.
    let e = stderr(&o);
    assert!(
        e.contains("not at gcr.io/kubernetes-helm/tiller:v2.6.1"),
        "{e}"
    );
    assert!(
        e.contains("(it said: DENIED: Project kubernetes-helm has been deleted.)"),
        "{e}"
    );
}

#[test]
fn r12_a_failing_place_is_reported_and_the_next_one_tried() {
    // The operator's proxy cache (`--relocate`, asked first) is down: 503 to everything. The
    // image is still at its own place; the pack takes it from there and says what the proxy
    // answered. When no place has it, every place's answer is listed.
    use crate::harness::fake::{FakeServer, Reply};
    let proxy = FakeServer::start(|r| {
        if r.path == "/v2/" {
            return Reply::new(200);
        }
        Reply::new(503)
            .header("Content-Type", "application/json")
            .body(r#"{"errors":[{"code":"UNAVAILABLE","message":"proxy cache down"}]}"#)
    });
    let docker = Registry::start();
    seed(&docker, &[fixture(KUBE_AUTH)]);
    let dir = tempfile::tempdir().unwrap();
    let mirrors = [
        format!("proxy.local={}", proxy.url()),
        format!("docker.io={}", docker.url()),
    ];
    let pack = |image: &str, out: &Path| {
        pack_images(
            &[image],
            out,
            &[
                "--no-cache",
                "--relocate",
                "docker.io=proxy.local/hub",
                "--mirror",
                &mirrors[0],
                "--mirror",
                &mirrors[1],
            ],
        )
    };
    let out = dir.path().join("b.tar.zst");
    let o = pack(KUBE_AUTH, &out);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        proxy
            .requests()
            .iter()
            .any(|r| r.path.contains("kubernetes-auth")),
        "the proxy was asked first"
    );
    let b = manifest_of(&out);
    assert_eq!(
        b.images[0].upstream.as_ref().unwrap().fetched_from,
        KUBE_AUTH
    );
    assert!(
        e.contains("not at proxy.local/hub/rancher/kubernetes-auth:v0.0.8") && e.contains("503"),
        "{e}"
    );
    // An image at no place names both places and what each said.
    let o = pack(&format!("{KUBE_AUTH}-gone"), &dir.path().join("c.tar.zst"));
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("is at none of its places")
            && e.contains("proxy.local/hub/rancher/kubernetes-auth:v0.0.8-gone")
            && e.contains("HTTP 503")
            && e.contains("docker.io/rancher/kubernetes-auth:v0.0.8-gone")
            && e.contains("MANIFEST_UNKNOWN"),
        "{e}"
    );
}

#[test]
fn r12_the_allowance_counts_every_platform_an_index_will_pull() {
    // busybox is an OCI index of two platform images and their two attestations. With
    // --all-platforms the pack GETs the index and both images (3 pulls), never the
    // attestations. The count must be exact before any platform manifest or blob is
    // downloaded: the index (not cached) is fetched to count its entries, nothing more.
    let t = today(2);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let cache = dir.path().join("cache");
    let all = ["--cache", cache.to_str().unwrap(), "--all-platforms"];
    let o = pack_list(&t, &[BUSYBOX], &out, &all);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("docker.io allows 2 more manifest pulls") && e.contains("needs 3"),
        "{e}"
    );
    let (_, gets, blobs) = t.docker_requests();
    assert_eq!((gets, blobs), (1, 0), "only the index was fetched");
    assert!(!out.exists());

    // One platform packed first: its manifest is cached with the index. --all-platforms then
    // needs one pull (arm64), not one per entry (attestations are never fetched).
    t.set_docker_allowance(100);
    let o = pack_list(&t, &[BUSYBOX], &out, &["--cache", cache.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    t.set_docker_allowance(1);
    let o = pack_list(&t, &[BUSYBOX], &out, &all);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(t.docker_pulls(), 1);
}
