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
        // Two repositories: the same one at both would go to one target, which pack refuses
        // before it sends anything (issue 17.12).
        &[format!("{}/x/a:1", a.host()), format!("{}/x/b:1", b.host())],
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
    // Without --login, pack does not guess which registry the password is for (and says so
    // before reading standard input): a usage error (issue 15).
    let o = airlock_with(&refs, None, &[]);
    assert_exit(&o, 2);
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
        // The backend speaks plain http here: its credentials go there only because the
        // operator chose plain http for it (registry.k8s.io's backends are https).
        o.endpoints
            .push((backend.host(), Endpoint::parse(&backend.url()).unwrap()));
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
    let e = airlock::error_chain(&e);
    assert!(e.contains("refused the upload location http://"), "{e}");
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

/// A plain-http registry (chosen by the operator) redirects a blob to another plain-http host
/// the operator never named (what an on-path attacker can inject on that link). That host
/// asks for credentials: it must get none, neither as Basic nor through a token realm it
/// picks, even when the operator has credentials for its name (given for https).
#[test]
fn r17_a_plain_http_redirect_target_gets_no_credentials_the_operator_did_not_give_for_http() {
    const CANARY: &str = "canary-ghcr-secret";
    let digest = Digest::of(b"a blob");
    let basic_target = FakeServer::start(basic_gate(None));
    let bearer_target = FakeServer::start(|r| {
        if r.path.starts_with("/token") {
            return Reply::new(200).body(r#"{"token":"t"}"#);
        }
        match r.header("authorization") {
            Some(_) => Reply::new(404),
            None => Reply::new(401).header(
                "WWW-Authenticate",
                &format!(
                    "Bearer realm=\"http://{}/token\",service=\"s\"",
                    r.header("host").unwrap_or_default()
                ),
            ),
        }
    });
    let (to_basic, to_bearer) = (basic_target.url(), bearer_target.url());
    let front = FakeServer::start(move |r| {
        let to = if r.path.starts_with("/v2/basic/") {
            &to_basic
        } else {
            &to_bearer
        };
        Reply::new(307).header("Location", &format!("{to}/v2/x/blobs/sha256:1"))
    });
    let make = |tweak: &dyn Fn(&mut airlock::registry::Options)| {
        client_for(&[(&front.host(), &front.url())], |o| {
            for t in [&basic_target, &bearer_target] {
                o.credentials
                    .insert(&t.host(), Credentials::new("ghcr-user", CANARY));
            }
            tweak(o);
        })
    };
    let client = make(&|_| {});
    let e = client
        .get_blob(&front.host(), "basic/x", &digest)
        .err()
        .unwrap();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
    assert!(e.to_string().contains("plain http"), "{e}");
    assert!(!basic_target.requests().is_empty());
    assert!(
        authorizations(&basic_target).is_empty(),
        "{:?}",
        authorizations(&basic_target)
    );
    let _ = client.get_blob(&front.host(), "bearer/x", &digest);
    assert!(bearer_target
        .requests()
        .iter()
        .any(|r| r.path.starts_with("/token")));
    assert!(
        authorizations(&bearer_target)
            .iter()
            .all(|a| !a.starts_with("Basic")),
        "{:?}",
        authorizations(&bearer_target)
    );
    assert!(!front
        .requests()
        .iter()
        .any(|r| r.header("authorization").is_some()));
    // A host the operator chose plain http for (as a --mirror) gets its own credentials.
    let basic_host = basic_target.host();
    let basic_url = basic_target.url();
    let client = make(&|o| {
        o.endpoints
            .push((basic_host.clone(), Endpoint::parse(&basic_url).unwrap()))
    });
    let _ = client.get_blob(&front.host(), "basic/x", &digest);
    assert!(
        authorizations(&basic_target).contains(&basic("ghcr-user", CANARY)),
        "{:?}",
        authorizations(&basic_target)
    );
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

// ---- Issue 13: plain-http and private-CA registries ----

fn timed(args: &[&str], env: &[(&str, &str)]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let o = airlock_with(args, None, env);
    (o, started.elapsed())
}

#[test]
fn r13_insecure_host_port_on_plain_http_is_found_once_and_never_retried() {
    use crate::harness::proxy::{Faults, Proxy};
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let target = crate::harness::Registry::start();
    let proxy = Proxy::start(&target.host(), Faults::default());
    let host = proxy.host();
    // Backoff that would show: a retried probe would take seconds.
    let slow = [("AIRLOCK_RETRY_BASE_MS", "1500")];
    let (o, took) = timed(
        &[
            "unpack",
            bundle.to_str().unwrap(),
            "--registry",
            &host,
            "--insecure",
        ],
        &slow,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(proxy.tls_hellos(), 1, "one https probe, no retry");
    assert!(took < Duration::from_secs(3), "{took:?}");
    // Every other command finds it the same way.
    let (o, _) = timed(&["inventory", "--registry", &host, "--insecure"], &slow);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("google_containers/pause-amd64"),
        "{}",
        stdout(&o)
    );
    assert_eq!(proxy.tls_hellos(), 2);
    let list = image_list(
        dir.path(),
        &[format!("{host}/google_containers/pause-amd64:3.0")],
    );
    let out = dir.path().join("again.tar.zst");
    let (o, _) = timed(
        &[
            "pack",
            "--images",
            &list,
            "-o",
            out.to_str().unwrap(),
            "--no-cache",
            "--insecure",
        ],
        &slow,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(proxy.tls_hellos(), 3);

    // Without --insecure: the cause and the two ways out, at once, asked once.
    let out = out.to_str().unwrap();
    for args in [
        vec!["inventory", "--registry", &host],
        vec!["unpack", bundle.to_str().unwrap(), "--registry", &host],
        vec!["pack", "--images", &list, "-o", out, "--no-cache"],
    ] {
        let before = proxy.tls_hellos();
        let (o, took) = timed(&args, &slow);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.contains(&format!("{host} answers plain http, not https")),
            "{e}"
        );
        assert!(
            e.contains("--insecure") && e.contains(&format!("http://{host}")),
            "{e}"
        );
        assert!(took < Duration::from_secs(2), "{args:?} took {took:?}");
        assert_eq!(proxy.tls_hellos() - before, 1, "{args:?}");
    }
}

#[test]
fn r13_a_self_signed_ca_true_certificate_is_trusted_via_ca_file_and_certs_d() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let reg = RegistryBuilder::new().tls_self_signed().start();
    let cert = reg.ca_file().unwrap();
    // Not trusted: refused at once, with the cause and the fix.
    let (o, took) = timed(&["inventory", "--registry", &reg.host()], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&reg.host()) && e.contains("CA:TRUE"), "{e}");
    assert!(e.contains("--ca-file"), "{e}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // --ca-file with the certificate itself, as curl and skopeo take it.
    let o = airlock(&[
        "unpack",
        bundle.to_str().unwrap(),
        "--registry",
        &reg.host(),
        "--ca-file",
        cert.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // certs.d/HOST:PORT/ca.crt, as Docker reads it.
    let certs_d = dir.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(reg.host())).unwrap();
    std::fs::copy(&cert, certs_d.join(reg.host()).join("ca.crt")).unwrap();
    let o = airlock_with(
        &["inventory", "--registry", &reg.host()],
        None,
        &[("AIRLOCK_CERTS_D", certs_d.to_str().unwrap())],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("google_containers/pause-amd64"),
        "{}",
        stdout(&o)
    );
    // The directory is per host: another port's directory does not count.
    let other = dir.path().join("other.d");
    std::fs::create_dir_all(other.join("127.0.0.1:1")).unwrap();
    std::fs::copy(&cert, other.join("127.0.0.1:1").join("ca.crt")).unwrap();
    let o = airlock_with(
        &["inventory", "--registry", &reg.host()],
        None,
        &[("AIRLOCK_CERTS_D", other.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // And --help says where it looks.
    let help = stdout(&airlock(&["unpack", "--help"]));
    assert!(
        help.contains("/etc/docker/certs.d") && help.contains("AIRLOCK_CERTS_D"),
        "{help}"
    );
}

#[test]
fn r13_tls_errors_fail_at_once_with_the_cause_and_the_fix() {
    let ca_dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(ca_dir.path());
    let ca_file = ca.ca_file();
    let ok = |_: &Recorded| Reply::new(200);
    let unknown = crate::harness::Registry::with_tls();
    let wrong_name =
        FakeServer::start_with_cert(&ca.issue("other-name", &["registry.example"], None), ok);
    let expired =
        FakeServer::start_with_cert(&ca.issue("expired", &["127.0.0.1"], Some((2000, 2001))), ok);
    let cases: Vec<(String, Vec<&str>, Vec<String>)> = vec![
        (
            unknown.host(),
            vec![],
            vec![
                "does not trust".into(),
                "--ca-file".into(),
                format!("/etc/docker/certs.d/{}/ca.crt", unknown.host()),
            ],
        ),
        (
            wrong_name.host(),
            vec!["--ca-file", ca_file.to_str().unwrap()],
            vec!["is for registry.example and not for 127.0.0.1".into()],
        ),
        (
            expired.host(),
            vec!["--ca-file", ca_file.to_str().unwrap()],
            vec!["expired on 2001-01-01".into(), "renew".into()],
        ),
    ];
    for (host, extra, wanted) in cases {
        let mut args = vec!["inventory", "--registry", &host];
        args.extend(extra);
        let (o, took) = timed(&args, &[("AIRLOCK_RETRY_BASE_MS", "1500")]);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let e = stderr(&o);
        assert!(e.contains(&format!("TLS with {host} failed")), "{e}");
        for w in wanted {
            assert!(e.contains(&w), "{host}: no {w:?} in {e}");
        }
        assert!(took < Duration::from_secs(2), "{host}: {took:?}");
    }
    assert_eq!(
        wrong_name.connections(),
        1,
        "a refused certificate is not retried"
    );
    assert_eq!(expired.connections(), 1);
    assert!(wrong_name.requests().is_empty() && expired.requests().is_empty());
}

#[test]
fn r13_silent_and_closed_ports_fail_fast_within_the_documented_timeouts() {
    // Accepts connections and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = Arc::new(std::sync::Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for c in silent.incoming().flatten() {
            h.lock().unwrap().push(c);
        }
    });
    let env = [
        ("AIRLOCK_CONNECT_TIMEOUT_SECS", "1"),
        ("AIRLOCK_REQUEST_TIMEOUT_SECS", "1"),
        ("AIRLOCK_RETRY_BASE_MS", "1500"),
    ];
    let plain = format!("http://127.0.0.1:{port}");
    let bare = format!("127.0.0.1:{port}");
    for args in [
        vec!["inventory", "--registry", plain.as_str()],
        vec!["inventory", "--registry", bare.as_str(), "--insecure"],
        vec!["inventory", "--registry", bare.as_str()],
    ] {
        let (o, took) = timed(&args, &env);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
        assert!(took < Duration::from_secs(3), "{args:?} took {took:?}");
    }
    // A closed port: refused at once, with what to check, and no backoff.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for r in [
        format!("http://127.0.0.1:{closed}"),
        format!("127.0.0.1:{closed}"),
    ] {
        let (o, took) = timed(&["inventory", "--registry", &r, "--insecure"], &env);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
        assert!(took < Duration::from_secs(1), "{r} took {took:?}");
    }
    // The bounds are documented where an operator looks.
    let help = stdout(&airlock(&["pack", "--help"]));
    for flag in [
        "--connect-timeout",
        "AIRLOCK_CONNECT_TIMEOUT_SECS",
        "--read-timeout",
        "AIRLOCK_IO_TIMEOUT_SECS",
        "--request-timeout",
        "--retries",
        "AIRLOCK_RETRY_ATTEMPTS",
        "--min-rate",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
}

/// A time flag too large for a deadline (now + it overflows the clock) is a usage error, not
/// a panic in the middle of the first request.
#[test]
fn r13_time_flags_too_large_for_the_clock_are_usage_errors() {
    for flag in ["--connect-timeout", "--read-timeout", "--request-timeout"] {
        let o = airlock(&[
            "inventory",
            "--registry",
            "http://127.0.0.1:9",
            flag,
            "18446744073709551615",
        ]);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(flag), "{flag}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{flag}: {}", stderr(&o));
    }
}

/// Records what a [`airlock::progress::Reporter`] is told.
#[derive(Default)]
struct Recording {
    waits: std::sync::Mutex<Vec<Option<String>>>,
    warnings: std::sync::Mutex<Vec<String>>,
    advanced: std::sync::atomic::AtomicU64,
    phase: std::sync::Mutex<String>,
    download: std::sync::atomic::AtomicU64,
}

impl airlock::progress::Reporter for Recording {
    fn phase(&self, phase: airlock::progress::Phase, _: u64) {
        *self.phase.lock().unwrap() = phase.name().to_string();
    }
    fn advance(&self, phase: airlock::progress::Phase, n: u64) {
        self.advanced.fetch_add(n, Ordering::SeqCst);
        if phase == airlock::progress::Phase::Download {
            self.download.fetch_add(n, Ordering::SeqCst);
        }
    }
    fn item(&self, _: &str) {}
    fn warn(&self, w: &str) {
        self.warnings.lock().unwrap().push(w.to_string());
    }
    fn finish_phase(&self, _: airlock::progress::Phase) {}
    fn waiting(&self, what: Option<&str>) {
        self.waits.lock().unwrap().push(what.map(str::to_string));
    }
}

#[test]
fn r13_the_progress_line_says_what_a_request_waits_for() {
    let srv = FakeServer::start(|_| Reply::new(200).delay(Duration::from_millis(600)));
    let client = client_for(&[(&srv.host(), &srv.url())], |o| {
        o.wait_notice = Duration::from_millis(100);
    });
    let rec = Recording::default();
    client.observe(&rec, || client.ping(&srv.host())).unwrap();
    let waits = rec.waits.lock().unwrap().clone();
    let first = waits[0].clone().expect("a wait was reported");
    assert!(
        first.contains(&format!("GET {}/v2/", srv.url())) && first.starts_with("waiting "),
        "{waits:?}"
    );
    assert_eq!(
        waits.last().unwrap(),
        &None,
        "cleared once answered: {waits:?}"
    );
    // A quick answer is never mentioned.
    let quick = FakeServer::start(|_| Reply::new(200));
    let client = client_for(&[(&quick.host(), &quick.url())], |o| {
        o.wait_notice = Duration::from_millis(300);
    });
    let rec = Recording::default();
    client.observe(&rec, || client.ping(&quick.host())).unwrap();
    assert!(rec.waits.lock().unwrap().is_empty());
}

// ---- Issue 17 point 4: credentials kept the way Docker keeps them ----

/// Writes `docker-credential-test` into a new `dir/bin` and returns that directory: the
/// helper logs each server URL it is asked for to `bin/asked`, and answers `(URL, user,
/// secret)` as Docker's helpers do, else "credentials not found".
fn credential_helper(
    dir: &std::path::Path,
    answers: &[(String, &str, &str)],
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = dir.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let mut cases = String::new();
    for (url, user, secret) in answers {
        let json = format!(r#"{{"ServerURL":"{url}","Username":"{user}","Secret":"{secret}"}}"#);
        cases.push_str(&format!("  '{url}') printf '%s' '{json}' ;;\n"));
    }
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread url\necho \"$url\" >> '{}'\ncase \"$url\" in\n{cases}  *) echo 'credentials not found in native keychain'; exit 1 ;;\nesac\n",
        dir.join("asked").display()
    );
    let p = dir.join("docker-credential-test");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn path_with(dir: &std::path::Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// `airlock pack --images LIST -o OUT --no-cache --keep-going`, each `(host, url)` a
/// `--mirror`, then `extra`.
fn pack_keep_going(
    list: &str,
    out: &std::path::Path,
    mirrors: &[(String, String)],
    extra: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args: Vec<String> = ["pack", "--images", list, "-o", out.to_str().unwrap()]
        .into_iter()
        .chain(["--no-cache", "--keep-going"])
        .map(str::to_string)
        .collect();
    for (host, url) in mirrors {
        args.extend(["--mirror".to_string(), format!("{host}={url}")]);
    }
    args.extend(extra.iter().map(|a| a.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    airlock_with(&args, None, env)
}

#[test]
fn r17_credential_helpers_are_run_as_docker_runs_them_and_answer_for_their_host_only() {
    const CANARY: &str = "canary-helper-pw";
    let dir = tempfile::tempdir().unwrap();
    let reg = crate::harness::Registry::with_htpasswd("ops", CANARY);
    seed_with(&reg, &[fixture(PAUSE)], Some(&basic("ops", CANARY)), None);
    let other = FakeServer::start(basic_gate(None));
    let bin = credential_helper(dir.path(), &[(reg.host(), "ops", CANARY)]);
    let path = path_with(&bin);
    let list = image_list(
        dir.path(),
        &[
            format!("{}/google_containers/pause-amd64:3.0", reg.host()),
            format!("{}/x/y:1", other.host()),
        ],
    );
    let out = dir.path().join("b.tar.zst");
    for (name, cfg) in [
        ("store", r#"{"credsStore":"test"}"#.to_string()),
        (
            "helpers",
            format!(
                r#"{{"credHelpers":{{"{}":"test","{}":"test"}}}}"#,
                reg.host(),
                other.host()
            ),
        ),
    ] {
        let _ = std::fs::remove_file(bin.join("asked"));
        let cfg = docker_config(&dir.path().join(name), &cfg);
        let o = pack_keep_going(
            &list,
            &out,
            &[(reg.host(), reg.url()), (other.host(), other.url())],
            &[],
            &[("DOCKER_CONFIG", &cfg), ("PATH", &path)],
        );
        // The registry the helper knows is packed; the other one is refused: a partial
        // success with --keep-going (issue 15).
        assert_eq!(o.status.code(), Some(3), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("{}/x/y:1", other.host())),
            "{}",
            stderr(&o)
        );
        assert!(
            !stderr(&o).contains("google_containers/pause-amd64:3.0:"),
            "{}",
            stderr(&o)
        );
        // The helper was asked with each server URL on standard input, once per host.
        let asked = std::fs::read_to_string(bin.join("asked")).unwrap();
        let mut lines: Vec<&str> = asked.lines().collect();
        lines.sort();
        let mut want = vec![reg.host(), other.host()];
        want.sort();
        assert_eq!(lines, want, "{name}");
        assert!(
            authorizations(&other).is_empty(),
            "{name}: {:?}",
            authorizations(&other)
        );
        assert!(!stderr(&o).contains(CANARY));
    }
}

/// Images of one registry resolved in parallel all meet its 401 at once: the helper still
/// runs once for that host (a `pass` helper would otherwise ask for the GPG passphrase once
/// per image).
#[test]
fn r17_a_credential_helper_runs_once_per_host_when_requests_ask_at_once() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let reg = FakeServer::start(basic_gate(Some(basic("ops", "canary-once"))));
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = bin.join("asked");
    let helper = bin.join("docker-credential-slow");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\nread url\necho \"$url\" >> '{}'\nsleep 1\nprintf '{{\"Username\":\"ops\",\"Secret\":\"canary-once\"}}'\n",
            asked.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let images: Vec<String> = (0..4).map(|i| format!("{}/x/i{i}:1", reg.host())).collect();
    let list = image_list(dir.path(), &images);
    let cfg = docker_config(dir.path(), r#"{"credsStore":"slow"}"#);
    let out = dir.path().join("b.tar.zst");
    let o = pack_keep_going(
        &list,
        &out,
        &[(reg.host(), reg.url())],
        &["--jobs", "4"],
        &[("DOCKER_CONFIG", &cfg), ("PATH", &path_with(&bin))],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    // Every image met the registry with the helper's credentials.
    let sent = authorizations(&reg);
    assert!(
        sent.iter()
            .filter(|a| **a == basic("ops", "canary-once"))
            .count()
            >= 4,
        "{sent:?}"
    );
    let asked = std::fs::read_to_string(&asked).unwrap();
    assert_eq!(asked.lines().collect::<Vec<_>>(), vec![reg.host()]);
}

#[test]
fn r17_a_missing_helper_is_named_and_pull_goes_on_anonymously() {
    let dir = tempfile::tempdir().unwrap();
    // Anonymous pull works here (a public image on a token registry).
    let public = RegistryBuilder::new()
        .token_auth(TokenPolicy {
            anonymous_pull: true,
            ..TokenPolicy::new("ops", "pw")
        })
        .start();
    let repo = airlock::fixtures::upstream_path(PAUSE).1;
    let token = public
        .token_server()
        .unwrap()
        .issue("ops", &[(repo.as_str(), &["pull", "push"][..])]);
    seed_with(
        &public,
        &[fixture(PAUSE)],
        Some(&crate::harness::http::bearer(&token)),
        None,
    );
    let private = crate::harness::Registry::with_htpasswd("ops", "pw");
    let cfg = docker_config(dir.path(), r#"{"credsStore":"airlock-test-missing"}"#);
    let pack = |host: &str, url: &str| {
        let list = image_list(dir.path(), &[format!("{host}/{repo}:3.0")]);
        airlock_with(
            &[
                "pack",
                "--images",
                &list,
                "-o",
                dir.path().join("b.tar.zst").to_str().unwrap(),
                "--no-cache",
                "--mirror",
                &format!("{host}={url}"),
            ],
            None,
            &[("DOCKER_CONFIG", &cfg)],
        )
    };
    let o = pack(&public.host(), &public.url());
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("warning:") && e.contains("docker-credential-airlock-test-missing"),
        "{e}"
    );
    assert!(
        e.contains("not installed") && e.contains(&public.host()),
        "{e}"
    );
    assert_eq!(
        e.matches("docker-credential-airlock-test-missing").count(),
        1,
        "once: {e}"
    );
    // Where the registry then refuses, the error says why there were no credentials.
    let o = pack(&private.host(), &private.url());
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(e.contains("authentication failed"), "{e}");
    assert!(
        e.contains("docker-credential-airlock-test-missing, which is not installed"),
        "{e}"
    );
}

#[test]
fn r17_identity_tokens_are_exchanged_as_oauth2_refresh_tokens() {
    const REFRESH: &str = "canary-refresh-token";
    let dir = tempfile::tempdir().unwrap();
    let reg = RegistryBuilder::new()
        .token_auth(TokenPolicy {
            refresh_token: Some(REFRESH.into()),
            ..TokenPolicy::new("azure-user", "unused-pw")
        })
        .start();
    let ts = reg.token_server().unwrap();
    let repo = airlock::fixtures::upstream_path(PAUSE).1;
    let token = ts.issue("azure-user", &[(repo.as_str(), &["pull", "push"][..])]);
    seed_with(
        &reg,
        &[fixture(PAUSE)],
        Some(&crate::harness::http::bearer(&token)),
        None,
    );
    let bin = credential_helper(dir.path(), &[(reg.host(), "<token>", REFRESH)]);
    let from_file = docker_config(
        &dir.path().join("file"),
        &format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"{REFRESH}"}}}}}}"#,
            reg.host()
        ),
    );
    let from_helper = docker_config(
        &dir.path().join("helper"),
        &format!(r#"{{"credHelpers":{{"{}":"test"}}}}"#, reg.host()),
    );
    for cfg in [from_file, from_helper] {
        let before = ts.posts().len();
        let o = airlock_with(
            &["inventory", "--registry", &reg.url()],
            None,
            &[("DOCKER_CONFIG", &cfg), ("PATH", &path_with(&bin))],
        );
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stdout(&o).contains(&repo), "{}", stdout(&o));
        let posts = ts.posts()[before..].to_vec();
        assert!(!posts.is_empty());
        for p in &posts {
            assert!(p.contains("grant_type=refresh_token"), "{p}");
            assert!(p.contains(&format!("refresh_token={REFRESH}")), "{p}");
        }
        // Never sent as a password.
        assert!(ts
            .authorizations()
            .iter()
            .flatten()
            .all(|a| !a.starts_with("Basic")));
    }
}

// ---- Issue 17 points 6 and 14: deadlines, retries that cannot help ----

#[test]
fn r17_a_trickling_server_hits_the_request_deadline_or_the_minimum_rate() {
    let f = fixture(PAUSE);
    let manifest = f.artifact.manifest().to_vec();
    let layer = f.artifact.images()[0].layers[0].clone();
    let data = layer.data.clone();
    let srv = FakeServer::start(move |r| {
        let every = Duration::from_millis(50);
        if r.path.contains("/manifests/") {
            // Headers and body at 20 bytes a second: never a 1 s pause, never done.
            return Reply::new(200)
                .header("Content-Type", media_type_of_pause())
                .body(manifest.clone())
                .trickle(every);
        }
        // The blob's headers come at once, its body trickles.
        Reply::new(200)
            .body(data.clone())
            .trickle(Duration::from_millis(20))
            .delay(Duration::ZERO)
    });
    let client = client_for(&[(&srv.host(), &srv.url())], |o| {
        o.request_timeout = Duration::from_secs(1);
        o.io_timeout = Duration::from_secs(5);
        o.retry.attempts = 1;
        o.min_rate = airlock::registry::MinRate {
            bytes: 4096,
            window: Duration::from_millis(500),
        };
    });
    let image =
        Reference::parse(&format!("{}/google_containers/pause-amd64:3.0", srv.host())).unwrap();
    let started = Instant::now();
    let e = client.get_manifest(&image).unwrap_err();
    let took = started.elapsed();
    assert!(e.to_string().contains("request timeout"), "{e}");
    assert!(took < Duration::from_secs(3), "{took:?}");
    let started = Instant::now();
    let e = client.head_manifest(&image).unwrap_err();
    assert!(e.to_string().contains("timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(3));
    // A blob body trickling below the minimum rate is cut.
    let started = Instant::now();
    let s = client
        .get_blob(&srv.host(), "google_containers/pause-amd64", &layer.digest)
        .unwrap();
    let e = std::io::copy(&mut { s.reader }, &mut std::io::sink()).unwrap_err();
    assert!(e.to_string().contains("moved only"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

fn media_type_of_pause() -> &'static str {
    fixture(PAUSE).artifact.media_type()
}

#[test]
fn r17_docker_hub_pull_limit_is_reported_at_once_with_its_window() {
    let srv = FakeServer::start(|_| {
        Reply::new(429)
            .header("ratelimit-limit", "100;w=21600")
            .header("ratelimit-remaining", "0;w=21600")
            .header("Retry-After", "3600")
            .body(r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#)
    });
    let dir = tempfile::tempdir().unwrap();
    let list = image_list(dir.path(), &["docker.io/library/busybox:latest".into()]);
    let (o, took) = timed(
        &[
            "pack",
            "--images",
            &list,
            "-o",
            dir.path().join("b.tar.zst").to_str().unwrap(),
            "--no-cache",
            "--mirror",
            &format!("docker.io={}", srv.url()),
        ],
        &[("AIRLOCK_RETRY_BASE_MS", "1500")],
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(
        e.contains("pull rate limit") && e.contains("100 pulls per 6 h"),
        "{e}"
    );
    assert!(e.contains("docker login"), "{e}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert_eq!(srv.requests().len(), 1, "not retried");
}

#[test]
fn r17_progress_counts_a_retried_download_once() {
    use airlock::pack::{pack, CacheMode, PackOptions, PlannedImage, Platforms};
    let served = Arc::new(AtomicUsize::new(0));
    let s = served.clone();
    let (srv, _) = serve_pause(move |l| {
        let reply = Reply::new(200).body(l.data.clone());
        // The first answer breaks off after most of the layer.
        if s.fetch_add(1, Ordering::SeqCst) == 0 {
            reply.cut_body_at(l.data.len() * 3 / 4)
        } else {
            reply
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let client = client_for(&[("docker.io", &srv.url())], |_| {});
    let planned = vec![PlannedImage {
        reference: Reference::parse("docker.io/google_containers/pause-amd64:3.0").unwrap(),
        target: "google_containers/pause-amd64:3.0".into(),
        alt_targets: vec![],
        group: "list".into(),
        places: vec![],
        pin: None,
    }];
    let opts = PackOptions {
        output: dir.path().join("b.tar.zst"),
        cache: CacheMode::Keep(dir.path().join("cache")),
        jobs: 1,
        platforms: Platforms::One(airlock::manifest::Platform::linux_amd64()),
        // Downloads before writing (not overlapped), so the download phase is theirs alone.
        keep_going: true,
        write: Default::default(),
        created: None,
        split: None,
        base: None,
        keep_digests: false,
    };
    let rec = Recording::default();
    pack(&client, &planned, Default::default(), &opts, &rec).unwrap();
    assert_eq!(
        served.load(Ordering::SeqCst),
        2,
        "the cut layer was fetched again"
    );
    let img = &fixture(PAUSE).artifact.images()[0];
    let total = img.config.data.len() + img.layers.iter().map(|l| l.data.len()).sum::<usize>();
    assert_eq!(rec.download.load(Ordering::SeqCst), total as u64);
}
