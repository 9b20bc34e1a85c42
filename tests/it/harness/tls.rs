//! A throwaway certificate authority for TLS test servers.
//!
//! [`TestCa`] makes a self-signed CA with rcgen and issues server certificates for
//! `127.0.0.1` and `localhost`, written as PEM files that distribution, containerd or any other
//! server can load. Clients trust it through [`TestCa::ca_file`] or, for skopeo's and
//! containerd's `--cert-dir`/`certs.d` layout, [`TestCa::cert_dir`].

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

/// A CA whose files live in a directory owned by the caller (usually a server's temp dir).
pub struct TestCa {
    cert: Certificate,
    key: KeyPair,
    dir: PathBuf,
}

/// PEM files of one issued server certificate.
#[derive(Debug, Clone)]
pub struct ServerCert {
    /// The certificate, PEM.
    pub cert_file: PathBuf,
    /// Its private key, PKCS#8 PEM.
    pub key_file: PathBuf,
}

impl TestCa {
    /// Generates a CA and writes `ca.pem` into `dir`.
    pub fn new(dir: &Path) -> TestCa {
        let key = KeyPair::generate().expect("generating the test CA key");
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "airlock test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-signing the test CA");
        let ca = TestCa {
            cert,
            key,
            dir: dir.to_path_buf(),
        };
        write(&ca.ca_file(), &ca.ca_pem());
        ca
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> String {
        self.cert.pem()
    }

    /// Path of the CA certificate (`ca.pem`).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A directory holding only `ca.crt`, the layout `skopeo --cert-dir` and containerd's
    /// `certs.d/<host>/` expect (`*.crt` files are read as CAs there).
    pub fn cert_dir(&self) -> PathBuf {
        let dir = self.dir.join("cert-dir");
        if !dir.join("ca.crt").exists() {
            fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
            write(&dir.join("ca.crt"), &self.ca_pem());
        }
        dir
    }

    /// Issues a server certificate for IP 127.0.0.1 and DNS `localhost`, written as
    /// `<name>.pem` and `<name>.key` beside the CA.
    pub fn issue_server_cert(&self, name: &str) -> ServerCert {
        self.issue(name, &["127.0.0.1", "localhost"], None)
    }

    /// Issues a server certificate for `names`, valid from January 1st of one year to
    /// January 1st of another when `years` is given (else rcgen's default, 1975 to 4096).
    pub fn issue(&self, name: &str, names: &[&str], years: Option<(i32, i32)>) -> ServerCert {
        let key = KeyPair::generate().expect("generating a server key");
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("server certificate names");
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("x"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // webpki (the product's rustls stack) checks the EKU; Go accepts it too.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if let Some((from, to)) = years {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("signing a server certificate");
        let issued = ServerCert {
            cert_file: self.dir.join(format!("{name}.pem")),
            key_file: self.dir.join(format!("{name}.key")),
        };
        write(&issued.cert_file, &cert.pem());
        write(&issued.key_file, &key.serialize_pem());
        issued
    }
}

/// A self-signed server certificate for 127.0.0.1 with `basicConstraints CA:TRUE`, as
/// `openssl req -x509 -newkey rsa:4096 -nodes -subj /CN=.. -addext subjectAltName=IP:..`
/// makes it (Docker's "deploy a registry" docs), written as `<name>.pem` and `<name>.key` in
/// `dir`. The certificate file is also what a client is told to trust.
pub fn self_signed_ca_true(dir: &Path, name: &str) -> ServerCert {
    let key = KeyPair::generate().expect("generating a server key");
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server certificate names");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params
        .self_signed(&key)
        .expect("self-signing a server certificate");
    let issued = ServerCert {
        cert_file: dir.join(format!("{name}.pem")),
        key_file: dir.join(format!("{name}.key")),
    };
    write(&issued.cert_file, &cert.pem());
    write(&issued.key_file, &key.serialize_pem());
    issued
}

fn write(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
