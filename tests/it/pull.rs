//! The registry client against the real distribution registry: every transport and auth
//! variant, by tag and by digest, and the hostile answers it must refuse.

use airlock::digest::Digest;
use airlock::media_type;
use airlock::reference::Reference;
use airlock::registry::{Client, Credentials, Endpoint, RegistryError};

use crate::harness::fake::{FakeServer, Reply};
use crate::harness::{Registry, RegistryBuilder, TokenPolicy};
use crate::support::*;

fn three() -> Vec<&'static airlock::fixtures::Fixture> {
    vec![fixture(PAUSE), fixture(KUBE_AUTH), fixture(BUSYBOX)]
}

/// Pulls the Docker schema2, OCI and multi-arch fixtures by tag and by digest and checks
/// every digest.
fn pull_all_kinds(client: &Client, host: &str) {
    for f in three() {
        let by_tag = in_registry(host, f);
        let (d, blobs) = pull_everything(client, &by_tag);
        assert_eq!(&d, f.artifact.digest(), "{}", f.name);
        assert_eq!(blobs, f.artifact.all_blobs().len(), "{}", f.name);
        let by_digest = Reference::parse(&format!(
            "{}/{}@{}",
            host,
            by_tag.repository(),
            f.artifact.digest()
        ))
        .unwrap();
        let m = client.get_manifest(&by_digest).unwrap();
        assert_eq!(m.raw, f.artifact.manifest(), "{}: raw bytes kept", f.name);
        assert_eq!(m.media_type, f.artifact.media_type());
        let (d, _) = pull_everything(client, &by_digest);
        assert_eq!(&d, f.artifact.digest());
    }
    // The three kinds really are three kinds.
    let kinds: Vec<&str> = three().iter().map(|f| f.artifact.media_type()).collect();
    assert_eq!(
        kinds,
        [
            media_type::DOCKER_MANIFEST,
            media_type::OCI_MANIFEST,
            media_type::DOCKER_LIST
        ]
    );
}

#[test]
fn pulls_over_plain_http() {
    let reg = Registry::start();
    seed(&reg, &three());
    let mut o = fast_options();
    o.endpoints
        .push((reg.host(), Endpoint::parse(&reg.url()).unwrap()));
    let client = Client::new(o).unwrap();
    client.ping(&reg.host()).unwrap();
    pull_all_kinds(&client, &reg.host());
}

#[test]
fn insecure_falls_back_to_plain_http() {
    let reg = Registry::start();
    seed(&reg, &[fixture(PAUSE)]);
    let mut o = fast_options();
    o.insecure = true;
    let client = Client::new(o).unwrap();
    let (d, _) = pull_everything(&client, &in_registry(&reg.host(), fixture(PAUSE)));
    assert_eq!(&d, fixture(PAUSE).artifact.digest());
    // Without --insecure the same registry is only tried over https, and that fails, saying
    // that it answers plain http.
    let strict = Client::new(fast_options()).unwrap();
    let e = strict.ping(&reg.host()).unwrap_err();
    assert!(matches!(e, RegistryError::PlainHttp { .. }), "{e:?}");
}

#[test]
fn pulls_over_tls_with_ca_file() {
    let reg = Registry::with_tls();
    let ca = std::fs::read_to_string(reg.ca_file().unwrap()).unwrap();
    seed_with(&reg, &three(), None, Some(&ca));
    let mut o = fast_options();
    o.ca_file = reg.ca_file();
    let client = Client::new(o).unwrap();
    pull_all_kinds(&client, &reg.host());
    // Without the CA the certificate is refused, with an error that says so.
    let e = Client::new(fast_options())
        .unwrap()
        .ping(&reg.host())
        .unwrap_err();
    assert!(matches!(e, RegistryError::Tls { .. }), "{e}");
    // --insecure skips verification.
    let mut o = fast_options();
    o.insecure = true;
    Client::new(o).unwrap().ping(&reg.host()).unwrap();
}

#[test]
fn pulls_with_basic_auth() {
    let reg = Registry::with_htpasswd("alice", "s3cret-basic");
    let auth = crate::harness::http::basic("alice", "s3cret-basic");
    seed_with(&reg, &three(), Some(&auth), None);
    let mut o = fast_options();
    o.endpoints
        .push((reg.host(), Endpoint::parse(&reg.url()).unwrap()));
    o.credentials
        .insert(&reg.host(), Credentials::new("alice", "s3cret-basic"));
    let client = Client::new(o.clone()).unwrap();
    pull_all_kinds(&client, &reg.host());

    // Anonymous and wrong passwords are refused with an authentication error.
    o.credentials = Default::default();
    let e = Client::new(o.clone())
        .unwrap()
        .ping(&reg.host())
        .unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("--username"), "{e}");
    o.credentials
        .insert(&reg.host(), Credentials::new("alice", "wrong"));
    let e = Client::new(o).unwrap().ping(&reg.host()).unwrap_err();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(
        !e.to_string().contains("wrong"),
        "no password in errors: {e}"
    );
}

#[test]
fn pulls_with_bearer_tokens() {
    let reg = RegistryBuilder::new()
        .token_auth(TokenPolicy::new("bob", "s3cret-token"))
        .start();
    let ts = reg.token_server().unwrap();
    let seed_token = ts.issue(
        "bob",
        &three()
            .iter()
            .map(|f| airlock::fixtures::upstream_path(&f.name).1)
            .collect::<Vec<_>>()
            .iter()
            .map(|r| (r.as_str(), &["pull", "push"][..]))
            .collect::<Vec<_>>(),
    );
    seed_with(
        &reg,
        &three(),
        Some(&crate::harness::http::bearer(&seed_token)),
        None,
    );
    let before = ts.requests();
    let mut o = fast_options();
    o.endpoints
        .push((reg.host(), Endpoint::parse(&reg.url()).unwrap()));
    o.credentials
        .insert(&reg.host(), Credentials::new("bob", "s3cret-token"));
    let client = Client::new(o.clone()).unwrap();
    pull_all_kinds(&client, &reg.host());
    // One token per repository, cached: not one per request.
    let fetched = ts.requests() - before;
    assert!((3..=4).contains(&fetched), "token requests: {fetched}");
    assert!(
        client
            .stats()
            .requests
            .load(std::sync::atomic::Ordering::Relaxed)
            > 10
    );

    // Wrong credentials: the token server refuses, and the error says so.
    o.credentials
        .insert(&reg.host(), Credentials::new("bob", "wrong"));
    let e = Client::new(o)
        .unwrap()
        .get_manifest(&in_registry(&reg.host(), fixture(PAUSE)))
        .unwrap_err();
    assert!(matches!(e, RegistryError::Token { .. }), "{e}");
}

#[test]
fn mirror_serves_docker_io_and_gcr_io_names() {
    let docker = Registry::start();
    let gcr = Registry::start();
    seed(&docker, &[fixture(BUSYBOX), fixture(KUBE_AUTH)]);
    seed(&gcr, &[fixture(PAUSE)]);
    let mut o = fast_options();
    o.endpoints
        .push(("docker.io".into(), Endpoint::parse(&docker.url()).unwrap()));
    o.endpoints
        .push(("gcr.io".into(), Endpoint::parse(&gcr.url()).unwrap()));
    let client = Client::new(o).unwrap();
    // The images keep their upstream names; `busybox` keeps its library/ prefix on the mirror.
    for name in ["busybox", KUBE_AUTH, PAUSE] {
        let r = Reference::parse(name).unwrap();
        let f = fixture(&r.to_string());
        let (d, _) = pull_everything(&client, &r);
        assert_eq!(&d, f.artifact.digest(), "{name}");
    }
}

#[test]
fn detects_a_corrupted_blob_in_the_registry() {
    let reg = Registry::start();
    let f = fixture(PAUSE);
    seed(&reg, &[f]);
    // Flip a byte of the layer in the registry's own storage; distribution serves it as is.
    let layer = f.artifact.images()[0].layers[0].digest.clone();
    let hex = layer.hex();
    let data = reg.storage_dir().join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = std::fs::read(&data).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&data, bytes).unwrap();
    let mut o = fast_options();
    o.endpoints
        .push((reg.host(), Endpoint::parse(&reg.url()).unwrap()));
    let client = Client::new(o).unwrap();
    let r = in_registry(&reg.host(), f);
    let s = client
        .get_blob(r.registry(), r.repository(), &layer)
        .unwrap();
    let size = f.artifact.images()[0].layers[0].data.len() as u64;
    let mut v = airlock::digest::VerifyingReader::new(s.reader, layer.clone(), size);
    let e = std::io::copy(&mut v, &mut std::io::sink()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("corrupt") && msg.contains(&layer.to_string()),
        "{msg}"
    );
}

fn manifest_server(body: Vec<u8>, header_digest: String) -> FakeServer {
    FakeServer::start(move |req| {
        if req.path == "/v2/" {
            return Reply::new(200);
        }
        Reply::new(200)
            .header("Content-Type", media_type::DOCKER_MANIFEST)
            .header("Docker-Content-Digest", &header_digest)
            .body(body.clone())
    })
}

#[test]
fn refuses_a_wrong_docker_content_digest() {
    let f = fixture(PAUSE);
    let wrong = Digest::of(b"something else");
    let srv = manifest_server(f.artifact.manifest().to_vec(), wrong.to_string());
    let mut o = fast_options();
    o.endpoints
        .push((srv.host(), Endpoint::parse(&srv.url()).unwrap()));
    let client = Client::new(o).unwrap();
    let r = Reference::parse(&format!("{}/google_containers/pause-amd64:3.0", srv.host())).unwrap();
    let e = client.get_manifest(&r).unwrap_err();
    assert!(matches!(e, RegistryError::ManifestDigest { .. }), "{e}");
    assert!(e.to_string().contains(&wrong.to_string()), "{e}");
    // Pulling by digest checks the bytes against the reference too, even if the header agrees.
    let body = f.artifact.manifest().to_vec();
    let srv = manifest_server(body.clone(), Digest::of(&body).to_string());
    let mut o = fast_options();
    o.endpoints
        .push((srv.host(), Endpoint::parse(&srv.url()).unwrap()));
    let client = Client::new(o).unwrap();
    let r = Reference::parse(&format!("{}/x@{}", srv.host(), wrong)).unwrap();
    let e = client.get_manifest(&r).unwrap_err();
    assert!(e.to_string().contains("the image reference"), "{e}");
}

/// Schema 1 is read since issue 12 (pause is schema 1); one whose signatures do not give a
/// payload is still refused, naming the image.
#[test]
fn refuses_a_broken_schema1_with_the_image_name() {
    let body = br#"{"schemaVersion":1,"name":"library/old","tag":"1","fsLayers":[],"history":[],"signatures":[]}"#.to_vec();
    let srv = FakeServer::start(move |_| {
        Reply::new(200)
            .header("Content-Type", media_type::DOCKER_SCHEMA1_SIGNED)
            .body(body.clone())
    });
    let mut o = fast_options();
    o.endpoints
        .push((srv.host(), Endpoint::parse(&srv.url()).unwrap()));
    let r = Reference::parse(&format!("{}/library/old:1", srv.host())).unwrap();
    let e = Client::new(o).unwrap().get_manifest(&r).unwrap_err();
    assert!(
        e.to_string().contains("library/old:1") && e.to_string().contains("signatures"),
        "{e}"
    );
}

#[test]
fn redirect_to_another_host_carries_no_credentials() {
    let data = b"blob behind a redirect".to_vec();
    let digest = Digest::of(&data);
    let cdn = {
        let data = data.clone();
        FakeServer::start(move |_| Reply::new(200).body(data.clone()))
    };
    let cdn_url = cdn.url();
    let d = digest.clone();
    let registry = FakeServer::start(move |req| {
        if req.header("authorization").is_none() {
            return Reply::new(401).header("WWW-Authenticate", "Basic realm=\"fake\"");
        }
        if req.path.contains("/blobs/") {
            return Reply::new(307).header(
                "Location",
                &format!("{cdn_url}/storage/{}?X-Signature=abc", d.hex()),
            );
        }
        Reply::new(200)
    });
    let mut o = fast_options();
    o.endpoints
        .push((registry.host(), Endpoint::parse(&registry.url()).unwrap()));
    o.credentials.insert(
        &registry.host(),
        Credentials::new("carol", "canary-redirect-pw"),
    );
    let client = Client::new(o).unwrap();
    let s = client.get_blob(&registry.host(), "x/y", &digest).unwrap();
    let got = read_all(airlock::digest::VerifyingReader::new(
        s.reader,
        digest.clone(),
        data.len() as u64,
    ));
    assert_eq!(got, data);
    // The registry saw the credentials; the redirect target never did.
    assert!(registry
        .requests()
        .iter()
        .any(|r| r.header("authorization").is_some()));
    let cdn_reqs = cdn.requests();
    assert_eq!(cdn_reqs.len(), 1);
    assert!(
        cdn_reqs[0].header("authorization").is_none(),
        "{:?}",
        cdn_reqs[0].headers
    );
}

#[test]
fn retries_5xx_and_429_but_not_404() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let srv = FakeServer::start(move |req| {
        if req.path.starts_with("/v2/missing") {
            return Reply::new(404)
                .body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#);
        }
        match c.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::new(503),
            1 => Reply::new(429).header("Retry-After", "0"),
            _ => Reply::new(200),
        }
    });
    let mut o = fast_options();
    o.endpoints
        .push((srv.host(), Endpoint::parse(&srv.url()).unwrap()));
    let client = Client::new(o).unwrap();
    client.ping(&srv.host()).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(client.stats().retries.load(Ordering::SeqCst), 2);
    let before = srv.requests().len();
    let r = Reference::parse(&format!("{}/missing/x:1", srv.host())).unwrap();
    let e = client.get_manifest(&r).unwrap_err();
    assert_eq!(srv.requests().len(), before + 1, "a 404 is not retried");
    assert!(e.to_string().contains("MANIFEST_UNKNOWN"), "{e}");
    assert!(e.to_string().contains("GET http://"), "{e}");
}
