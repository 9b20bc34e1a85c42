//! Trust scoped per registry (issue 15's transport follow-ups), against the real registry the
//! harness starts: `--insecure-registry HOST[:PORT]` allows plain http and unverified TLS for
//! that registry only.

use crate::harness::Registry;
use crate::support::*;

/// `airlock inventory --registry HOST` and `extra`.
fn inventory(host: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["inventory", "--registry", host];
    args.extend_from_slice(extra);
    airlock(&args)
}

#[test]
fn insecure_registry_allows_plain_http_and_unverified_tls_for_that_registry_only() {
    let plain = Registry::start();
    seed(&plain, &[fixture(PAUSE)]);
    let tls = Registry::with_tls();
    let ca_pem = std::fs::read_to_string(tls.ca_file().unwrap()).unwrap();
    seed_with(&tls, &[fixture(KUBE_AUTH)], None, Some(&ca_pem));
    let (p, t) = (plain.host(), tls.host());

    // Named: plain http is found and used, an unknown CA is not asked about.
    let o = inventory(&p, &["--insecure-registry", &p]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("google_containers/pause-amd64"),
        "{}",
        stdout(&o)
    );
    let o = inventory(&t, &["--insecure-registry", &t]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("rancher/kubernetes-auth"),
        "{}",
        stdout(&o)
    );
    // A host without a port stands for every port of it.
    let o = inventory(&p, &["--insecure-registry", "127.0.0.1"]);
    assert!(o.status.success(), "{}", stderr(&o));

    // Not named: refused as without any flag, the message naming the flag to give.
    let o = inventory(&p, &["--insecure-registry", &t]);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("{p} answers plain http, not https"))
            && e.contains(&format!("--insecure-registry {p}")),
        "{e}"
    );
    let o = inventory(&t, &["--insecure-registry", &p]);
    assert_ne!(o.status.code(), Some(0));
    let e = stderr(&o);
    assert!(
        e.contains(&format!("TLS with {t} failed")) && e.contains("--insecure-registry"),
        "{e}"
    );
    // A scheme or a path is a usage error.
    let o = inventory(&p, &["--insecure-registry", &format!("http://{p}")]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("give HOST or HOST:PORT"),
        "{}",
        stderr(&o)
    );
    // --insecure keeps meaning every registry.
    let o = inventory(&t, &["--insecure"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// A registry whose CA is in `certs.d/HOST:PORT/ca.crt` (as Docker reads it) and whose token
/// realm is another https host with a certificate from the same CA: that CA is trusted for
/// the realm too, as for the registry; a CA for another registry is not.
#[test]
fn a_registrys_certs_d_ca_is_trusted_for_its_token_realm() {
    use crate::harness::{RegistryBuilder, TokenPolicy};
    let dir = tempfile::tempdir().unwrap();
    let bundle = pause_bundle(dir.path());
    let reg = RegistryBuilder::new()
        .tls()
        .token_auth(TokenPolicy::new("ops", "realm-pw"))
        .realm_tls()
        .start();
    let realm = reg.realm_front().unwrap();
    assert_ne!(realm.host(), reg.host());
    let ca = std::fs::read(reg.ca_file().unwrap()).unwrap();
    let unpack = |certs_d: &std::path::Path| {
        airlock_with(
            &[
                "unpack",
                bundle.to_str().unwrap(),
                "--registry",
                &reg.host(),
                "--username",
                "ops",
                "--password-stdin",
            ],
            Some(b"realm-pw\n"),
            &[("AIRLOCK_CERTS_D", certs_d.to_str().unwrap())],
        )
    };
    // The CA under another registry's name: neither the registry nor its realm is trusted.
    let other = dir.path().join("other.d");
    std::fs::create_dir_all(other.join("127.0.0.1:1")).unwrap();
    std::fs::write(other.join("127.0.0.1:1/ca.crt"), &ca).unwrap();
    let o = unpack(&other);
    assert_ne!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("TLS with {} failed", reg.host())),
        "{}",
        stderr(&o)
    );
    // Under the registry's own name only: the realm is reached over TLS with it too.
    let certs_d = dir.path().join("certs.d");
    std::fs::create_dir_all(certs_d.join(reg.host())).unwrap();
    std::fs::write(certs_d.join(reg.host()).join("ca.crt"), &ca).unwrap();
    let o = unpack(&certs_d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        realm
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/token")),
        "the realm front was never asked: {:?}",
        realm.requests()
    );
}
