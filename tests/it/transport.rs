//! The transport's promises (issues 12, 13 and 17): credentials go only to the host they were
//! given for, redirects and realms cannot downgrade or reach metadata addresses, plain-http
//! and private-CA registries are found and reported at once, and no server can stretch time.

use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::digest::Digest;
use airlock::reference::Reference;
use airlock::registry::{Client, Credentials, Endpoint, RegistryError};

use crate::harness::fake::{FakeServer, Recorded, Reply};
use crate::harness::http::basic;
use crate::harness::{RegistryBuilder, TestCa, TokenPolicy};
use crate::support::*;

/// A client with fast retries that reaches `hosts` over their own URLs.
fn client_for(
    servers: &[(&str, &str)],
    tweak: impl FnOnce(&mut airlock::registry::Options),
) -> Client {
    let mut o = fast_options();
    for (host, url) in servers {
        o.endpoints
            .push((host.to_string(), Endpoint::parse(url).unwrap()));
    }
    tweak(&mut o);
    Client::new(o).unwrap()
}

/// Writes a Docker config.json into a new directory (for `DOCKER_CONFIG`).
fn docker_config(dir: &std::path::Path, json: &str) -> String {
    let cfg = dir.join("docker");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(cfg.join("config.json"), json).unwrap();
    cfg.to_str().unwrap().to_string()
}

fn auth_entry(user: &str, pw: &str) -> String {
    use base64::Engine as _;
    let a = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    format!(r#"{{"auth":"{a}"}}"#)
}

/// Answers 401 Basic unless the request carries `want`, then 404 MANIFEST_UNKNOWN.
fn basic_gate(want: Option<String>) -> impl Fn(&Recorded) -> Reply + Send + Sync {
    move |r| match (&want, r.header("authorization")) {
        (Some(w), Some(got)) if got == w => Reply::new(404)
            .body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#),
        _ => Reply::new(401).header("WWW-Authenticate", "Basic realm=\"gate\""),
    }
}

fn authorizations(s: &FakeServer) -> Vec<String> {
    s.requests()
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect()
}

fn image_list(dir: &std::path::Path, refs: &[String]) -> String {
    let p = dir.join("images.txt");
    std::fs::write(&p, refs.join("\n")).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn r17_a_mirror_gets_only_its_own_config_json_credentials() {
    const CANARY: &str = "canary-hub-secret";
    let dir = tempfile::tempdir().unwrap();
    let mirror = FakeServer::start(basic_gate(Some(basic("mirror-user", "mirror-pw"))));
    let list = image_list(dir.path(), &["docker.io/library/busybox:latest".into()]);
    let out = dir.path().join("b.tar.zst");
    let pack = |cfg: &str| {
        airlock_with(
            &[
                "pack",
                "--images",
                &list,
                "-o",
                out.to_str().unwrap(),
                "--mirror",
                &format!("docker.io={}", mirror.url()),
                "--cache",
                dir.path().join("cache").to_str().unwrap(),
            ],
            None,
            &[("DOCKER_CONFIG", cfg)],
        )
    };
    // Docker Hub's credentials (from `docker login`) never go to the mirror.
    let hub_only = docker_config(
        &dir.path().join("a"),
        &format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{}}}}}"#,
            auth_entry("hubuser", CANARY)
        ),
    );
    let o = pack(&hub_only);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(!mirror.requests().is_empty());
    assert!(
        authorizations(&mirror).is_empty(),
        "{:?}",
        authorizations(&mirror)
    );
    assert!(
        stderr(&o).contains("authentication failed"),
        "{}",
        stderr(&o)
    );
    // With an entry for the mirror's own host:port, the mirror gets that one, and only that.
    let both = docker_config(
        &dir.path().join("b"),
        &format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{},"{}":{}}}}}"#,
            auth_entry("hubuser", CANARY),
            mirror.host(),
            auth_entry("mirror-user", "mirror-pw")
        ),
    );
    let before = mirror.requests().len();
    let o = pack(&both);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let sent: Vec<String> = mirror.requests()[before..]
        .iter()
        .filter_map(|r| r.header("authorization").map(str::to_string))
        .collect();
    assert!(!sent.is_empty());
    assert!(
        sent.iter().all(|a| *a == basic("mirror-user", "mirror-pw")),
        "{sent:?}"
    );
    assert!(stderr(&o).contains("MANIFEST_UNKNOWN"), "{}", stderr(&o));
}

#[test]
fn r17_pack_username_needs_login_and_goes_only_to_that_registry() {
    let dir = tempfile::tempdir().unwrap();
    let wanted = basic("ops", "canary-login-pw");
    let a = FakeServer::start(basic_gate(Some(wanted.clone())));
    let b = FakeServer::start(basic_gate(None));
    let list = image_list(
        dir.path(),
        &[format!("{}/x/y:1", a.host()), format!("{}/x/y:1", b.host())],
    );
    let out = dir.path().join("b.tar.zst");
    let mut args: Vec<String> = vec![
        "pack".into(),
        "--images".into(),
        list,
        "-o".into(),
        out.to_str().unwrap().into(),
        "--cache".into(),
        dir.path().join("cache").to_str().unwrap().into(),
        "--username".into(),
        "ops".into(),
        "--password-stdin".into(),
    ];
    for s in [&a, &b] {
        args.extend(["--mirror".into(), format!("{}={}", s.host(), s.url())]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // Without --login, pack does not guess which registry the password is for.
    let o = airlock_with(&refs, Some(b"canary-login-pw"), &[]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("--login"), "{}", stderr(&o));
    assert!(a.requests().is_empty() && b.requests().is_empty());
    let mut with_login = refs.clone();
    let host = a.host();
    with_login.extend(["--login", &host]);
    let o = airlock_with(&with_login, Some(b"canary-login-pw"), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(authorizations(&a).contains(&wanted), "{:?}", a.requests());
    assert!(!b.requests().is_empty());
    assert!(authorizations(&b).is_empty(), "{:?}", authorizations(&b));
    assert!(!stderr(&o).contains("canary"), "{}", stderr(&o));
}

/// registry.k8s.io as it is: a front that answers `/v2/` itself and redirects manifests and
/// blobs to another host, which wants an (anonymous) token of its own.
#[test]
fn r12_a_redirect_target_answers_its_own_bearer_challenge_with_its_own_credentials() {
    let f = fixture(PAUSE);
    let backend = RegistryBuilder::new()
        .token_auth(TokenPolicy {
            anonymous_pull: true,
            ..TokenPolicy::new("k8s", "backend-pw")
        })
        .start();
    let ts = backend.token_server().unwrap();
    const REPO2: &str = "k8s-artifacts-prod/images/pause-amd64";
    let token = ts.issue("k8s", &[(REPO2, &["pull", "push"][..])]);
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build(),
    );
    airlock::fixtures::push_raw_with(
        &agent,
        &backend.url(),
        Some(&crate::harness::http::bearer(&token)),
        REPO2,
        "3.0",
        &f.artifact,
    )
    .unwrap();
    let backend_url = backend.url();
    let front_auth = basic("front-user", "canary-front-pw");
    let want = front_auth.clone();
    let front = FakeServer::start(move |r| {
        if r.path == "/v2/" {
            return match r.header("authorization") {
                Some(a) if a == want => Reply::new(200),
                _ => Reply::new(401).header("WWW-Authenticate", "Basic realm=\"front\""),
            };
        }
        let rest = r
            .path
            .strip_prefix("/v2/google_containers/pause-amd64/")
            .unwrap_or("x");
        Reply::new(307).header("Location", &format!("{backend_url}/v2/{REPO2}/{rest}"))
    });
    let image = Reference::parse(&format!(
        "{}/google_containers/pause-amd64:3.0",
        front.host()
    ))
    .unwrap();
    // Anonymous at the backend, although the front has credentials.
    let client = client_for(&[(&front.host(), &front.url())], |o| {
        o.credentials.insert(
            &front.host(),
            Credentials::new("front-user", "canary-front-pw"),
        );
    });
    client.ping(&front.host()).unwrap();
    let (d, blobs) = pull_everything(&client, &image);
    assert_eq!(&d, f.artifact.digest());
    assert_eq!(blobs, f.artifact.all_blobs().len());
    assert!(authorizations(&front).iter().all(|a| *a == front_auth));
    assert!(!ts.authorizations().is_empty());
    assert!(
        ts.authorizations().iter().all(Option::is_none),
        "the backend's token server got {:?}",
        ts.authorizations()
    );
    // With credentials of its own (config.json names the backend), the backend gets those.
    let before = ts.authorizations().len();
    let client = client_for(&[(&front.host(), &front.url())], |o| {
        o.credentials.insert(
            &front.host(),
            Credentials::new("front-user", "canary-front-pw"),
        );
        o.credentials
            .insert(&backend.host(), Credentials::new("k8s", "backend-pw"));
    });
    let (d, _) = pull_everything(&client, &image);
    assert_eq!(&d, f.artifact.digest());
    let sent = &ts.authorizations()[before..];
    assert!(!sent.is_empty());
    assert!(
        sent.iter()
            .all(|a| a.as_deref() == Some(basic("k8s", "backend-pw").as_str())),
        "{sent:?}"
    );
}

#[test]
fn r17_https_to_http_downgrades_are_refused_without_insecure() {
    let data = b"a blob".to_vec();
    let digest = Digest::of(&data);
    let plain = {
        let data = data.clone();
        FakeServer::start(move |r| {
            if r.path.starts_with("/token") {
                return Reply::new(200).body(r#"{"token":"t"}"#);
            }
            Reply::new(200).body(data.clone())
        })
    };
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(ca_dir.path());
    let plain_url = plain.url();
    let tls_port = Arc::new(AtomicUsize::new(0));
    let port = tls_port.clone();
    let front = FakeServer::start_tls(&ca, move |r| {
        if r.path.starts_with("/v2/redirect/") {
            return Reply::new(307).header("Location", &format!("{plain_url}/bucket/x?sig=1"));
        }
        if r.path.starts_with("/v2/realm/") && r.header("authorization").is_none() {
            return Reply::new(401).header(
                "WWW-Authenticate",
                &format!("Bearer realm=\"{plain_url}/token\",service=\"s\""),
            );
        }
        if r.method == "POST" && r.path.starts_with("/v2/upload/") {
            let p = port.load(Ordering::SeqCst);
            return Reply::new(202).header(
                "Location",
                &format!("http://127.0.0.1:{p}/v2/upload/blobs/uploads/1"),
            );
        }
        Reply::new(404)
    });
    tls_port.store(
        front.host().rsplit(':').next().unwrap().parse().unwrap(),
        Ordering::SeqCst,
    );
    let make = |insecure: bool| {
        client_for(&[], |o| {
            o.ca_file = Some(ca.ca_file());
            o.insecure = insecure;
            o.credentials
                .insert(&front.host(), Credentials::new("u", "canary-downgrade-pw"));
        })
    };
    let client = make(false);
    let started = Instant::now();
    let e = client
        .get_blob(&front.host(), "redirect/x", &digest)
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Forbidden { .. }), "{msg}");
    assert!(
        msg.contains(&front.url()) && msg.contains(&plain.url()),
        "{msg}"
    );
    assert!(msg.contains("downgrades https"), "{msg}");
    let e = client
        .get_manifest(&Reference::parse(&format!("{}/realm/x:1", front.host())).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("refused the token realm"), "{e}");
    assert!(
        e.to_string().contains(&format!("{}/token", plain.url())),
        "{e}"
    );
    let open = || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::Cursor::new(b"abc".to_vec())))
    };
    let e = client
        .push_blob(
            &front.host(),
            "upload/x",
            &Digest::of(b"abc"),
            3,
            None,
            &open,
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("refused the upload location http://"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // The plain-http host was never contacted.
    assert!(plain.requests().is_empty(), "{:?}", plain.requests());
    // --insecure allows it, and the plain host still gets no credentials.
    let s = make(true)
        .get_blob(&front.host(), "redirect/x", &digest)
        .unwrap();
    assert_eq!(read_all(s.reader), data);
    assert_eq!(plain.requests().len(), 1);
    assert!(authorizations(&plain).is_empty());
}

#[test]
fn r17_redirects_to_metadata_and_link_local_addresses_are_refused_without_connecting() {
    for target in [
        "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://169.254.10.1:8080/x",
        "http://[fe80::1]/x",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        let t = target.to_string();
        let srv = FakeServer::start(move |_| Reply::new(307).header("Location", &t));
        let client = client_for(&[(&srv.host(), &srv.url())], |_| {});
        let started = Instant::now();
        let e = client
            .get_blob(&srv.host(), "x/y", &Digest::of(b"x"))
            .err()
            .unwrap();
        assert!(
            matches!(e, RegistryError::Forbidden { .. }),
            "{target}: {e}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("metadata") || msg.contains("link-local"),
            "{target}: {msg}"
        );
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{target}: {:?}",
            started.elapsed()
        );
        assert_eq!(
            srv.requests().len(),
            1,
            "{target}: asked once, never retried"
        );
    }
}

/// A fake upstream serving the pause fixture, its layer answered by `layer`.
fn serve_pause(
    layer: impl Fn(&airlock::fixtures::Blob) -> Reply + Send + Sync + 'static,
) -> (FakeServer, Digest) {
    let f = fixture(PAUSE);
    let img = f.artifact.images()[0].clone();
    let digest = img.layers[0].digest.clone();
    let manifest = f.artifact.manifest().to_vec();
    let mt = f.artifact.media_type().to_string();
    let top = f.artifact.digest().to_string();
    let srv = FakeServer::start(move |r| {
        if r.path == "/v2/" {
            return Reply::new(200);
        }
        if r.path.contains("/manifests/") {
            return Reply::new(200)
                .header("Content-Type", &mt)
                .header("Docker-Content-Digest", &top)
                .body(manifest.clone());
        }
        if r.path.ends_with(img.config.digest.hex()) {
            return Reply::new(200).body(img.config.data.clone());
        }
        if r.path.ends_with(img.layers[0].digest.hex()) {
            return layer(&img.layers[0]);
        }
        Reply::new(404)
    });
    (srv, digest)
}

/// [`serve_pause`] with the layer redirected to `to`.
fn image_with_redirected_layer(to: String) -> (FakeServer, Digest) {
    serve_pause(move |_| Reply::new(307).header("Location", &to))
}

fn pack_one_from(
    srv: &FakeServer,
    dir: &std::path::Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    let list = image_list(dir, &["docker.io/google_containers/pause-amd64:3.0".into()]);
    airlock_with(
        &[
            "pack",
            "--images",
            &list,
            "-o",
            dir.join("b.tar.zst").to_str().unwrap(),
            "--cache",
            dir.join("cache").to_str().unwrap(),
            "--mirror",
            &format!("docker.io={}", srv.url()),
        ],
        None,
        env,
    )
}

#[test]
fn r17_a_redirect_that_fails_is_not_retried_over_and_over() {
    // A closed port: refused at once, asked once.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (srv, layer) =
        image_with_redirected_layer(format!("http://127.0.0.1:{closed}/latest/meta-data/"));
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let o = pack_one_from(&srv, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
    let asked = srv
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(layer.hex()))
        .count();
    assert_eq!(asked, 1, "the layer was asked for {asked} times");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A target that accepts and hangs up: retried, but within one budget for the request.
    let resetting = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = resetting.local_addr().unwrap().port();
    let accepted = Arc::new(AtomicUsize::new(0));
    let a = accepted.clone();
    std::thread::spawn(move || {
        for c in resetting.incoming() {
            a.fetch_add(1, Ordering::SeqCst);
            drop(c);
        }
    });
    let (srv, layer) = image_with_redirected_layer(format!("http://127.0.0.1:{port}/bucket/x"));
    let dir = tempfile::tempdir().unwrap();
    let o = pack_one_from(&srv, dir.path(), &[("AIRLOCK_RETRY_ATTEMPTS", "3")]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let asked = srv
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(layer.hex()))
        .count();
    assert_eq!(
        asked, 1,
        "the layer was asked for {asked} times at the registry"
    );
    let tries = accepted.load(Ordering::SeqCst);
    assert!(
        (1..=3).contains(&tries),
        "the redirect target was tried {tries} times"
    );
}

#[test]
fn r17_a_blob_whose_length_disagrees_is_not_retried() {
    let (srv, layer) = serve_pause(|l| {
        let mut longer = l.data.clone();
        longer.extend_from_slice(b"extra bytes");
        Reply::new(200).body(longer)
    });
    let dir = tempfile::tempdir().unwrap();
    let o = pack_one_from(&srv, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    let size = fixture(PAUSE).artifact.images()[0].layers[0].data.len();
    assert!(err.contains(&layer.to_string()), "{err}");
    assert!(
        err.contains(&format!("announces {} bytes", size + 11)),
        "{err}"
    );
    assert!(err.contains(&format!("says {size}")), "{err}");
    let asked = srv
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(layer.hex()))
        .count();
    assert_eq!(asked, 1, "asked {asked} times");
}
