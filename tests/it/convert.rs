//! Issue 12, conversions against real registries: upstream shapes the rehearsal's fixtures do
//! not have, packed from a real registry, unpacked into a default one, and pulled the way
//! Docker 17.03 pulls.

use std::path::Path;

use airlock::bundle::format::BundleManifest;
use airlock::bundle::reader::BundleReader;
use airlock::digest::Digest;
use airlock::fixtures::{self, Artifact, Schema1Image};
use airlock::media_type;

use crate::harness::upstreams::docker_17_03_pull;
use crate::harness::{Registry, RegistryBuilder};
use crate::support::*;

fn manifest_of(bundle: &Path) -> BundleManifest {
    BundleReader::open(bundle)
        .unwrap()
        .bundle_manifest()
        .unwrap()
}

/// `airlock pack` of `image` (a gcr.io name) from the registry at `gcr` (`--mirror`), with the
/// cache `cache` (`None`: `--no-cache`).
fn pack_from_gcr(gcr: &str, image: &str, out: &Path, cache: Option<&Path>) -> std::process::Output {
    let mirror = format!("gcr.io={gcr}");
    let cache_arg = cache.map(|c| c.display().to_string());
    let mut args = vec!["--mirror", &mirror];
    match &cache_arg {
        Some(c) => args.extend(["--cache", c]),
        None => args.push("--no-cache"),
    }
    pack_images(&[image], out, &args)
}

/// A v1Compatibility entry as Docker 1.9 pushed them: no `throwaway`, every instruction a
/// layer of its own.
fn v1(id: &str, parent: Option<&str>, cmd: &str, entrypoint: bool) -> String {
    let mut v = serde_json::json!({
        "id": id,
        "created": "2016-05-04T06:26:41.522308365Z",
        "container_config": {"Cmd": ["/bin/sh", "-c", cmd]},
        "architecture": "amd64",
        "os": "linux",
        "docker_version": "1.9.1",
    });
    if let Some(p) = parent {
        v["parent"] = p.into();
    }
    if entrypoint {
        v["config"] = serde_json::json!({"Entrypoint": ["/pause"], "Env": null});
    }
    serde_json::to_string(&v).unwrap()
}

/// The shape of the real `pause-amd64:3.0` (Docker rmi lists three layers under its image ID
/// 99e59f49…, the bottom one 5f70bf18…, the empty tar): the empty gzip layer at the bottom
/// (`ARG`) and at the top (`ENTRYPOINT`), the binary between, none of them `throwaway`. The
/// same blobSum twice, both applied.
fn pause_as_docker_1_9_pushed_it(layer: fixtures::Blob) -> Schema1Image {
    let empty = fixtures::empty_layer();
    let (top, mid, base) = ("3".repeat(64), "2".repeat(64), "1".repeat(64));
    let payload = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 1,
        "name": "google_containers/pause-amd64",
        "tag": "3.0",
        "architecture": "amd64",
        "fsLayers": [
            {"blobSum": empty.digest.to_string()},
            {"blobSum": layer.digest.to_string()},
            {"blobSum": empty.digest.to_string()},
        ],
        "history": [
            {"v1Compatibility": v1(&top, Some(&mid), "#(nop) ENTRYPOINT &{[\"/pause\"]}", true)},
            {"v1Compatibility": v1(&mid, Some(&base), "#(nop) ADD file:b7eb in /pause", false)},
            {"v1Compatibility": v1(&base, None, "#(nop) ARG ARCH", false)},
        ],
    }))
    .unwrap();
    // serde_json indents with two spaces; Docker with three. Either signs the same way.
    let manifest = fixtures::jws::sign(&payload);
    Schema1Image {
        digest: Digest::of(&payload),
        manifest,
        layers: vec![empty.clone(), layer.clone()],
        applied: vec![empty.clone(), layer, empty],
    }
}

/// A registry that stores schema 1, holding [`pause_as_docker_1_9_pushed_it`] over a layer of
/// `size` bytes at `google_containers/pause-amd64:3.0-layout`.
fn schema1_upstream(label: &str, size: usize) -> (Registry, Schema1Image) {
    let upstream = RegistryBuilder::new().schema1().start();
    let img = pause_as_docker_1_9_pushed_it(fixtures::layer(label, SEED, size));
    fixtures::push_raw(
        &upstream.url(),
        "google_containers/pause-amd64",
        "3.0-layout",
        &Artifact::Schema1(img.clone()),
    )
    .unwrap();
    (upstream, img)
}

#[test]
fn r12_a_schema1_image_applying_the_same_empty_layer_twice_pulls_as_docker_17_03_builds_it() {
    let name = "gcr.io/google_containers/pause-amd64:3.0-layout";
    let (upstream, img) = schema1_upstream("pause-bin", 3000);
    let dir = tempfile::tempdir().unwrap();
    let target = Registry::start();
    for cache in [None, Some(dir.path().join("cache"))] {
        let out = dir.path().join(format!("b{}.tar.zst", cache.is_some()));
        let o = pack_from_gcr(&upstream.url(), name, &out, cache.as_deref());
        assert!(o.status.success(), "{}", stderr(&o));
        let b = manifest_of(&out);
        assert_eq!(b.images[0].media_type, media_type::DOCKER_MANIFEST);
        let o = airlock(&[
            "unpack",
            out.to_str().unwrap(),
            "--registry",
            &target.host(),
            "--insecure",
        ]);
        assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
        let pulled =
            docker_17_03_pull(&target.url(), "google_containers/pause-amd64", "3.0-layout")
                .unwrap_or_else(|e| panic!("Docker 17.03 cannot pull it: {e}"));
        // Three layers applied, bottom first, each with the diff ID of its decompressed bytes.
        let want_layers: Vec<String> = img.applied.iter().map(|b| b.digest.to_string()).collect();
        assert_eq!(pulled.layers, want_layers);
        let diff_ids: Vec<String> = img
            .applied
            .iter()
            .map(|b| b.diff_id.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(
            pulled.config["rootfs"]["diff_ids"],
            serde_json::json!(diff_ids)
        );
        assert_eq!(
            diff_ids[0],
            "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
        );
        let history = pulled.config["history"].as_array().unwrap();
        assert_eq!(history.len(), 3);
        assert!(history.iter().all(|h| h.get("empty_layer").is_none()));
        assert_eq!(pulled.config["config"]["Entrypoint"][0], "/pause");
    }
}

#[test]
fn r12_a_schema1_layer_corrupted_in_transit_is_reported_as_corrupt_not_as_not_gzip() {
    // A proxy garbles the layer's bytes: its deflate stream breaks before the digest can be
    // checked. The operator must hear that the download was corrupt (retry, check the
    // network), not that the layer is not gzip (use --keep-digests).
    use crate::harness::fake::FakeServer;
    use crate::harness::upstreams::forward;
    // Bigger than one read of the download loop, so the deflate error comes before the end.
    let (upstream, img) = schema1_upstream("pause-bin-big", 600_000);
    let layer = img.layers[1].digest.hex().to_string();
    let backend = upstream.url();
    let proxy = FakeServer::start(move |r| {
        let reply = forward(&backend, r);
        if r.method == "GET" && r.path.ends_with(&layer) {
            let mut body = reply.body.clone();
            let n = body.len();
            for b in &mut body[20..n - 20] {
                *b = !*b;
            }
            return reply.body(body);
        }
        reply
    });
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    for cache in [None, Some(cache_dir.as_path())] {
        let o = pack_from_gcr(
            &proxy.url(),
            "gcr.io/google_containers/pause-amd64:3.0-layout",
            &dir.path().join("b.tar.zst"),
            cache,
        );
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{cache:?}: {e}");
        assert!(
            e.contains(&format!("blob {} is corrupt", img.layers[1].digest)),
            "{cache:?}: {e}"
        );
        assert!(!e.contains("cannot be decompressed"), "{cache:?}: {e}");
    }
}

#[test]
fn r12_an_index_of_attestations_only_is_refused_not_packed_as_an_empty_list() {
    // With --all-platforms the image entries become a Docker manifest list; an index whose
    // every entry is left out (attestations only) would give a list no engine can pull
    // ("no supported platform found in manifest list"): refused at pack time, saying why.
    use airlock::fixtures::{attested_index, image, index, Format, Platform};
    let img = image(
        Format::Oci,
        Platform::linux("amd64", None),
        vec![fixtures::layer("att-only", SEED, 2000)],
        "att-only",
    );
    let attested = attested_index(vec![img], "att-only");
    let only_attestations = index(Format::Oci, attested.children[1..].to_vec());
    assert!(!only_attestations.children.is_empty());
    let upstream = Registry::start();
    fixtures::push_raw(
        &upstream.url(),
        "library/att-only",
        "latest",
        &Artifact::Index(only_attestations),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    let mirror = format!("docker.io={}", upstream.url());
    let o = pack_images(
        &["docker.io/library/att-only:latest"],
        &out,
        &["--no-cache", "--all-platforms", "--mirror", &mirror],
    );
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(
        e.contains("docker.io/library/att-only:latest")
            && e.contains("no image")
            && e.contains("attestation-manifest"),
        "{e}"
    );
    assert!(!out.exists());
}

#[test]
fn r12_a_tampered_diff_id_in_the_cache_does_not_change_the_converted_config() {
    // The diff IDs of a schema 1 image's layers are cached (computing one means decompressing
    // the layer). An entry that was damaged, forged, copied from another layer or written by
    // an older airlock is not believed: it is computed again, and the bundle is the same.
    let name = "gcr.io/google_containers/pause-amd64:3.0-layout";
    let (upstream, img) = schema1_upstream("pause-bin", 3000);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("b.tar.zst");
    let o = pack_from_gcr(&upstream.url(), name, &out, Some(&cache));
    assert!(o.status.success(), "{}", stderr(&o));
    let want = std::fs::read(&out).unwrap();
    // The converted config names the real diff IDs.
    let b = manifest_of(&out);
    let conversion = b.images[0].upstream.as_ref().unwrap().conversion.as_ref();
    let config_digest = &conversion.unwrap().generated[0];
    let raw = BundleReader::open(&out)
        .unwrap()
        .read_small(&airlock::bundle::format::blob_entry(config_digest), 1 << 20)
        .unwrap();
    let config: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let diff_ids: Vec<String> = img
        .applied
        .iter()
        .map(|b| b.diff_id.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(config["rootfs"]["diff_ids"], serde_json::json!(diff_ids));
    let entries = cache.join("diffids/sha256");
    let entry = |b: &fixtures::Blob| entries.join(b.digest.hex());
    let (empty, bin) = (&img.layers[0], &img.layers[1]);
    assert!(entry(empty).exists() && entry(bin).exists());
    let forged = Digest::of(b"not the layer's tar").to_string();
    let good = std::fs::read_to_string(entry(bin)).unwrap();
    let diff = bin.diff_id.as_ref().unwrap().to_string();
    let tamperings = [
        (
            "an older airlock's bare diff ID, forged",
            format!("{forged}\n"),
        ),
        (
            "the diff ID changed, its checksum not",
            good.replace(&diff, &forged),
        ),
        (
            "another layer's entry copied over",
            std::fs::read_to_string(entry(empty)).unwrap(),
        ),
    ];
    for (what, tampered) in tamperings {
        std::fs::write(entry(bin), tampered).unwrap();
        std::fs::remove_file(&out).unwrap();
        let o = pack_from_gcr(&upstream.url(), name, &out, Some(&cache));
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        assert!(
            std::fs::read(&out).unwrap() == want,
            "{what}: the bundle changed"
        );
        assert_eq!(
            std::fs::read_to_string(entry(bin)).unwrap(),
            good,
            "{what}: the entry is written again"
        );
    }
}

#[test]
fn r12_a_schema1_image_of_another_architecture_is_refused_naming_both() {
    // A schema 1 manifest holds one platform, and no index says which: an arm64 one packed
    // for amd64 hosts would land where the kubelet pulls pause. Converted or kept, it is
    // refused, naming both platforms; asked for, it is packed.
    let upstream = RegistryBuilder::new().schema1().start();
    let img = fixtures::schema1_image_for(
        "arm64",
        "google_containers/pause-arm64",
        "3.0",
        fixtures::layer("pause-arm64", SEED, 2000),
        "pause-arm64",
    );
    fixtures::push_raw(
        &upstream.url(),
        "google_containers/pause-amd64",
        "3.0-arm",
        &Artifact::Schema1(img),
    )
    .unwrap();
    let name = "gcr.io/google_containers/pause-amd64:3.0-arm";
    let mirror = format!("gcr.io={}", upstream.url());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    for extra in [
        &[][..],
        &["--keep-digests"],
        &["--platform", "linux/amd64", "--platform", "linux/arm/v7"],
    ] {
        let mut args = vec!["--mirror", &mirror, "--no-cache"];
        args.extend_from_slice(extra);
        let o = pack_images(&[name], &out, &args);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(name) && e.contains("is a linux/arm64 image") && e.contains("linux/amd64"),
            "{extra:?}: {e}"
        );
        assert!(!out.exists());
    }
    for extra in [&["--platform", "linux/arm64"][..], &["--all-platforms"]] {
        let mut args = vec!["--mirror", &mirror, "--no-cache"];
        args.extend_from_slice(extra);
        let o = pack_images(&[name], &out, &args);
        assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
        std::fs::remove_file(&out).unwrap();
    }
}

/// Variants of a signed schema 1 document: `(what, document, valid)`.
fn signature_cases(payload: &[u8]) -> Vec<(String, Vec<u8>, bool)> {
    use airlock::fixtures::jws::{sign_with, Curve, SigningKey};
    let mut cases = Vec::new();
    for (name, key) in [
        ("RS256", SigningKey::test_rsa()),
        ("ES256", SigningKey::generate_ec(Curve::P256)),
        ("ES384", SigningKey::generate_ec(Curve::P384)),
    ] {
        for kid in [false, true] {
            cases.push((
                format!("{name}, kid {kid}"),
                sign_with(payload, &key, kid),
                true,
            ));
        }
        let doc = String::from_utf8(sign_with(payload, &key, true)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
        let h = &v["signatures"][0];
        let s = h["signature"].as_str().unwrap();
        let mid = s.len() / 2;
        let c = if &s[mid..mid + 1] == "A" { "B" } else { "A" };
        let flipped = format!("{}{c}{}", &s[..mid], &s[mid + 1..]);
        cases.push((
            format!("{name}, a signature changed"),
            doc.replace(s, &flipped).into_bytes(),
            false,
        ));
        let kid = h["header"]["jwk"]["kid"].as_str().unwrap();
        let other_kid = format!(
            "{}{}",
            if kid.starts_with('A') { "B" } else { "A" },
            &kid[1..]
        );
        cases.push((
            format!("{name}, another key's kid"),
            doc.replace(kid, &other_kid).into_bytes(),
            false,
        ));
        let other_alg = if name == "RS256" { "RS512" } else { "ES512" };
        cases.push((
            format!("{name}, the header names {other_alg}"),
            doc.replace(&format!("\"{name}\""), &format!("\"{other_alg}\""))
                .into_bytes(),
            false,
        ));
    }
    cases.push(("unsigned".into(), payload.to_vec(), false));
    cases
}

#[test]
fn r12_schema1_signatures_are_judged_as_a_schema1_registry_judges_them() {
    // What `pack --keep-digests` refuses is what distribution (schema 1 enabled) refuses to
    // store: every variant is PUT there, and both verdicts must agree.
    let reg = RegistryBuilder::new().schema1().start();
    let img = fixtures::schema1_image("sig/x", "good", fixtures::layer("sig", SEED, 1500), "sig");
    fixtures::push_raw(&reg.url(), "sig/x", "good", &Artifact::Schema1(img.clone())).unwrap();
    let (payload, _) = airlock::convert::schema1::payload("x", &img.manifest).unwrap();
    let cases = signature_cases(&payload);
    assert!(cases.len() >= 16);
    for (i, (what, doc, valid)) in cases.iter().enumerate() {
        let ours = airlock::convert::jws::verify(doc);
        assert_eq!(ours.is_ok(), *valid, "{what}: {ours:?}");
        let url = format!("{}/v2/sig/x/manifests/case-{i}", reg.url());
        let r = crate::harness::http::request(
            "PUT",
            &url,
            &[("Content-Type", media_type::DOCKER_SCHEMA1_SIGNED)],
            doc,
        )
        .unwrap();
        assert_eq!(
            r.status == 201,
            *valid,
            "{what}: the registry answered {} {}",
            r.status,
            r.text()
        );
    }
    // An unsigned document under its own media type is refused too.
    let r = crate::harness::http::request(
        "PUT",
        &format!("{}/v2/sig/x/manifests/unsigned", reg.url()),
        &[("Content-Type", media_type::DOCKER_SCHEMA1)],
        &payload,
    )
    .unwrap();
    assert_ne!(r.status, 201, "{}", r.text());
}

#[test]
fn r12_keep_digests_refuses_a_schema1_manifest_a_registry_would_not_store() {
    // The upstream serves pause with a broken signature, or unsigned (the payload, and so the
    // digest, unchanged): kept as served, unpack would push its layers and then be refused
    // the manifest. pack refuses it, naming the image; converted, it packs.
    use crate::harness::fake::FakeServer;
    use crate::harness::upstreams::forward;
    let (upstream, img) = schema1_upstream("pause-bin", 3000);
    let (payload, _) = airlock::convert::schema1::payload("x", &img.manifest).unwrap();
    let text = String::from_utf8(img.manifest.clone()).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = v["signatures"][0]["signature"].as_str().unwrap();
    let broken = text.replace(s, &s.chars().rev().collect::<String>());
    let name = "gcr.io/google_containers/pause-amd64:3.0-layout";
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b.tar.zst");
    for (what, served, says) in [
        ("a broken signature", broken.into_bytes(), "does not verify"),
        ("unsigned", payload.clone(), "not signed"),
    ] {
        let backend = upstream.url();
        let body = served.clone();
        let front = FakeServer::start(move |r| {
            let reply = forward(&backend, r);
            if r.method == "GET" && r.path.contains("/manifests/") {
                return reply.body(body.clone());
            }
            reply
        });
        let mirror = format!("gcr.io={}", front.url());
        let o = pack_images(
            &[name],
            &out,
            &["--mirror", &mirror, "--no-cache", "--keep-digests"],
        );
        assert_eq!(o.status.code(), Some(1), "{what}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(name) && e.contains(says) && e.contains("without --keep-digests"),
            "{what}: {e}"
        );
        assert!(!out.exists());
        let o = pack_images(&[name], &out, &["--mirror", &mirror, "--no-cache"]);
        assert!(o.status.success(), "{what}: {}", stderr(&o));
        std::fs::remove_file(&out).unwrap();
    }
}
