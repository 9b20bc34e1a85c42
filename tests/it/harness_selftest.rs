//! Checks that the harness servers behave like the real thing: each test drives a server with
//! raw HTTP, skopeo or ctr, never with airlock's own client.

use std::process::Command;

use crate::harness::http::{self, Challenge};
use crate::harness::{Containerd, Registry, RegistryBuilder, TokenPolicy, TokenServer};

const SKOPEO: &str = "/usr/bin/skopeo";

#[test]
fn plain_registry_answers_and_round_trips_a_blob() {
    let registry = Registry::start();
    let base = http::get(&format!("{}/v2/", registry.url()), &[]);
    assert_eq!(base.status, 200, "{}", base.text());
    assert_eq!(
        base.header("Docker-Distribution-Api-Version"),
        Some("registry/2.0")
    );

    let data = b"airlock harness blob";
    let digest = http::push_blob(&registry.url(), "test", data, None);
    let fetched = http::get_blob(&registry.url(), "test", &digest, None);
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    assert_eq!(fetched.body, data);
    assert!(registry
        .storage_dir()
        .join("docker/registry/v2/repositories/test/_layers/sha256")
        .join(digest.trim_start_matches("sha256:"))
        .is_dir());
}

#[test]
fn htpasswd_registry_requires_credentials() {
    let registry = Registry::with_htpasswd("alice", "s3cret");
    let url = format!("{}/v2/", registry.url());

    let anonymous = http::get(&url, &[]);
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("WWW-Authenticate"),
        Some(r#"Basic realm="airlock-test""#)
    );
    let wrong = http::get(&url, &[("Authorization", &http::basic("alice", "nope"))]);
    assert_eq!(wrong.status, 401);
    let right = http::get(&url, &[("Authorization", &http::basic("alice", "s3cret"))]);
    assert_eq!(right.status, 200, "{}", right.text());
}

/// Runs `skopeo inspect` against `image` and returns its stderr; panics if it succeeds.
fn skopeo_inspect_error(image: &str, cert_dir: Option<&std::path::Path>) -> String {
    crate::harness::require_tool(SKOPEO, "skopeo");
    let mut command = Command::new(SKOPEO);
    command.arg("inspect");
    if let Some(dir) = cert_dir {
        command.arg("--cert-dir").arg(dir);
    }
    let out = command.arg(image).output().expect("running skopeo inspect");
    assert!(!out.status.success(), "skopeo inspect {image} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn tls_registry_speaks_tls_to_skopeo() {
    let registry = Registry::with_tls();
    assert!(registry.url().starts_with("https://127.0.0.1:"));
    assert!(registry.ca_file().is_some_and(|f| f.is_file()));
    let image = format!("docker://{}/none:x", registry.host());

    // Trusting the CA, the handshake succeeds and the registry itself says "not found".
    let trusted = skopeo_inspect_error(&image, registry.cert_dir().as_deref());
    let lower = trusted.to_lowercase();
    assert!(
        lower.contains("manifest unknown") || lower.contains("not found"),
        "expected a registry error, got: {trusted}"
    );
    assert!(
        !lower.contains("x509") && !lower.contains("certificate"),
        "{trusted}"
    );

    // Without the CA, the same request fails verification: the port really speaks TLS.
    let untrusted = skopeo_inspect_error(&image, None);
    assert!(
        untrusted.contains("x509") || untrusted.contains("certificate"),
        "expected a certificate error, got: {untrusted}"
    );
}

/// Follows a registry's Bearer challenge: returns the token for `scope`.
fn fetch_token(challenge: &Challenge, scope: &str, auth: Option<&str>) -> http::Response {
    let url = format!(
        "{}?service={}&scope={}",
        challenge.param("realm").expect("realm"),
        challenge.param("service").expect("service"),
        scope
            .replace(':', "%3A")
            .replace(',', "%2C")
            .replace('/', "%2F"),
    );
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    http::get(&url, &headers)
}

fn token_of(response: &http::Response) -> String {
    assert_eq!(response.status, 200, "{}", response.text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).expect("token JSON");
    assert_eq!(json["token"], json["access_token"]);
    assert!(json["expires_in"].as_u64().is_some_and(|s| s > 0), "{json}");
    assert!(
        json["issued_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{json}"
    );
    json["token"].as_str().expect("token string").to_string()
}

#[test]
fn token_registry_accepts_issued_tokens() {
    let registry = Registry::with_token_auth("bob", "hunter2");
    let server: &TokenServer = registry.token_server().expect("token server");
    let url = format!("{}/v2/", registry.url());

    let anonymous = http::get(&url, &[]);
    assert_eq!(anonymous.status, 401);
    let header = anonymous.header("WWW-Authenticate").expect("challenge");
    let challenge = Challenge::parse(header).expect("parsable challenge");
    assert_eq!(challenge.scheme, "Bearer");
    assert_eq!(challenge.param("realm"), Some(server.realm().as_str()));
    assert_eq!(challenge.param("service"), Some("airlock-test"));

    let basic = http::basic("bob", "hunter2");
    let scope = "repository:team/app:pull,push";
    let token = token_of(&fetch_token(&challenge, scope, Some(&basic)));
    let bearer = http::bearer(&token);
    let base = http::get(&url, &[("Authorization", &bearer)]);
    assert_eq!(base.status, 200, "{}", base.text());

    // A push+pull round trip proves the registry accepts the JWT's signature and access claim.
    let data = b"token-protected blob";
    let digest = http::push_blob(&registry.url(), "team/app", data, Some(&bearer));
    let fetched = http::get_blob(&registry.url(), "team/app", &digest, Some(&bearer));
    assert_eq!(fetched.body, data);

    // The token is scoped: another repository is refused with an insufficient-scope challenge.
    let other = http::get_blob(&registry.url(), "team/other", &digest, Some(&bearer));
    assert_eq!(other.status, 401, "{}", other.text());
    let other_challenge = Challenge::parse(other.header("WWW-Authenticate").unwrap()).unwrap();
    assert_eq!(
        other_challenge.param("scope"),
        Some("repository:team/other:pull")
    );

    // Without anonymous pull, a token fetched with no credentials grants nothing.
    let anonymous_token = token_of(&fetch_token(&challenge, "repository:team/app:pull", None));
    let denied = http::get_blob(
        &registry.url(),
        "team/app",
        &digest,
        Some(&http::bearer(&anonymous_token)),
    );
    assert_eq!(denied.status, 401);

    let wrong = fetch_token(&challenge, scope, Some(&http::basic("bob", "wrong")));
    assert_eq!(wrong.status, 401, "{}", wrong.text());

    assert_eq!(server.requests(), 3);
    assert_eq!(
        server.authorizations(),
        [Some(basic), None, Some(http::basic("bob", "wrong"))]
    );
}

#[test]
fn token_registry_with_anonymous_pull_grants_pull_only() {
    let policy = TokenPolicy {
        anonymous_pull: true,
        ..TokenPolicy::new("carol", "pw")
    };
    let registry = RegistryBuilder::new().token_auth(policy).start();
    let server = registry.token_server().expect("token server");
    let pusher = http::bearer(&server.issue("carol", &[("lib/x", &["pull", "push"])]));
    let digest = http::push_blob(&registry.url(), "lib/x", b"public", Some(&pusher));

    let challenge = Challenge::parse(&format!(
        r#"Bearer realm="{}",service="airlock-test""#,
        server.realm()
    ))
    .unwrap();
    let anonymous = http::bearer(&token_of(&fetch_token(
        &challenge,
        "repository:lib/x:pull,push",
        None,
    )));
    let pulled = http::get_blob(&registry.url(), "lib/x", &digest, Some(&anonymous));
    assert_eq!(pulled.status, 200, "{}", pulled.text());
    let push = http::send(
        "POST",
        &format!("{}/v2/lib/x/blobs/uploads/", registry.url()),
        &[("Authorization", &anonymous)],
        &[],
    );
    assert_eq!(
        push.status,
        401,
        "anonymous push must be refused: {}",
        push.text()
    );
}

#[test]
fn containerd_starts_with_no_images() {
    let containerd = Containerd::start();
    let version = containerd.ctr(&["version"]);
    assert!(version.status.success(), "{version:?}");
    assert!(String::from_utf8_lossy(&version.stdout).contains("Server:"));
    let images = containerd.ctr(&["images", "ls", "-q"]);
    assert!(images.status.success(), "{images:?}");
    assert_eq!(String::from_utf8_lossy(&images.stdout).trim(), "");
}

#[test]
fn registry_restart_keeps_port_and_storage() {
    let mut registry = Registry::start();
    let host = registry.host();
    let digest = http::push_blob(&registry.url(), "keep", b"survives a restart", None);

    registry.stop();
    let e = http::request("GET", &format!("{}/v2/", registry.url()), &[], &[])
        .expect_err("a stopped registry must refuse connections");
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    registry.restart();
    assert_eq!(registry.host(), host);
    let fetched = http::get_blob(&registry.url(), "keep", &digest, None);
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    assert_eq!(fetched.body, b"survives a restart");
}

#[test]
fn missing_tool_names_the_package() {
    let err = std::panic::catch_unwind(|| {
        crate::harness::require_tool("/nonexistent/docker-registry", "docker-registry")
    })
    .expect_err("a missing tool must panic");
    let message = err
        .downcast_ref::<String>()
        .expect("formatted panic message");
    assert!(
        message.contains("apt-get install docker-registry"),
        "{message}"
    );
}
