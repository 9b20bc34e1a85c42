//! TLS for registries: which certificates are trusted for which host, and a handshake whose
//! failure says what it means.
//!
//! Trust, per host, is the system roots plus `--ca-file` plus the `*.crt` files of
//! `certs.d/HOST[:PORT]/` (default `/etc/docker/certs.d`, where Docker reads a registry's CA:
//! <https://docs.docker.com/engine/security/certificates/>). Verification is [`Verifier`]'s.
//!
//! airlock runs its own ureq connector for this (ureq's offers no custom verifier): TCP
//! comes from ureq, the handshake from rustls with our config. The connector also notices a
//! server that answers the ClientHello in plain HTTP (`HTTP/1.x 400`), so "this registry
//! does not speak TLS" is an answer, not a corrupt-message error retried as a network fault.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
    TransportAdapter,
};

use super::cert::{explain, NoVerify, Verifier};
use super::error::RegistryError;

/// Where Docker keeps per-registry CA certificates.
pub const DEFAULT_CERTS_D: &str = "/etc/docker/certs.d";

/// A handshake that failed in a way retrying cannot fix.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TlsFailure {
    /// The server answered our ClientHello in plain HTTP.
    #[error("{authority} answers plain http, not https")]
    PlainHttp { authority: String },
    /// The certificate or the handshake was refused; `fix` says which flag or file helps.
    #[error("TLS with {authority} failed: {problem}")]
    Refused {
        authority: String,
        problem: String,
        fix: String,
    },
}

impl TlsFailure {
    pub(crate) fn into_registry_error(self) -> RegistryError {
        match self {
            TlsFailure::PlainHttp { authority } => RegistryError::PlainHttp { host: authority },
            TlsFailure::Refused {
                authority,
                problem,
                fix,
            } => RegistryError::Tls {
                host: authority,
                problem,
                fix,
            },
        }
    }
}

/// Whether `authority` (`host[:port]`) is one of `entries` (`--insecure-registry`): an entry
/// with a port names that port only, one without names the host on every port.
pub(crate) fn insecure_host(entries: &[String], authority: &str) -> bool {
    let authority = authority.to_ascii_lowercase();
    let host = match authority.rsplit_once(':') {
        Some((h, p))
            if p.bytes().all(|b| b.is_ascii_digit())
                && (!h.starts_with('[') || h.ends_with(']')) =>
        {
            h
        }
        _ => authority.as_str(),
    };
    entries.iter().any(|e| *e == authority || *e == host)
}

/// A host's own config (from its `certs.d` directory), none, or why it cannot be built.
type HostConfig = Result<Option<Arc<ClientConfig>>, String>;

/// The trust settings, and the rustls configs built from them (once per host with a
/// `certs.d` directory, once for every other host).
#[derive(Debug)]
pub(crate) struct Trust {
    insecure: bool,
    /// `--insecure-registry`: the registries verified by no one.
    insecure_hosts: Vec<String>,
    provider: Arc<CryptoProvider>,
    ca_file: Vec<CertificateDer<'static>>,
    certs_d: PathBuf,
    default: OnceLock<Result<Arc<ClientConfig>, String>>,
    per_host: Mutex<HashMap<String, HostConfig>>,
    /// For a host a registry sent airlock to (its token realm, a redirect), the `certs.d`
    /// directories of the registries that did: their CAs are trusted for it too.
    adopted: Mutex<HashMap<String, Vec<PathBuf>>>,
}

impl Trust {
    /// Reads `ca_file` now (a bad file is an error before any request); `certs.d` is read per
    /// host when it is first contacted.
    pub(crate) fn new(
        insecure: bool,
        insecure_hosts: Vec<String>,
        ca_file: Option<&Path>,
        certs_d: PathBuf,
    ) -> Result<Trust, RegistryError> {
        let ca_file = match ca_file {
            Some(p) => read_certs(p).map_err(RegistryError::Config)?,
            None => Vec::new(),
        };
        Ok(Trust {
            insecure,
            insecure_hosts,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            ca_file,
            certs_d,
            default: OnceLock::new(),
            per_host: Mutex::new(HashMap::new()),
            adopted: Mutex::new(HashMap::new()),
        })
    }

    /// The `certs.d` directory for `authority` (`host[:port]`).
    pub(crate) fn ca_dir(&self, authority: &str) -> PathBuf {
        self.certs_d.join(authority)
    }

    /// `registry` (`host[:port]`) sends airlock to `hop` (its token realm, a redirect): the
    /// CAs of the registry's `certs.d` directory, and of those it adopted, are trusted for
    /// `hop` too, as Docker trusts a registry's CA for the hosts that registry delegates to.
    pub(crate) fn adopt(&self, hop: &str, registry: &str) {
        if hop == registry {
            return;
        }
        let mut dirs = vec![self.ca_dir(registry)];
        dirs.extend(
            self.adopted
                .lock()
                .unwrap()
                .get(registry)
                .cloned()
                .unwrap_or_default(),
        );
        dirs.retain(|d| has_certs(d));
        let mut adopted = self.adopted.lock().unwrap();
        let known = adopted.entry(hop.to_string()).or_default();
        let before = known.len();
        for d in dirs {
            if !known.contains(&d) {
                known.push(d);
            }
        }
        if known.len() != before {
            // Built again, with the new CAs, at the next connection.
            self.per_host.lock().unwrap().remove(hop);
        }
    }

    fn config_for(&self, authority: &str) -> Result<Arc<ClientConfig>, TlsFailure> {
        let setup = |problem: String, fix: String| TlsFailure::Refused {
            authority: authority.to_string(),
            problem,
            fix,
        };
        if self.insecure || insecure_host(&self.insecure_hosts, authority) {
            let c = self
                .default
                .get_or_init(|| Ok(self.build(Arc::new(NoVerify(self.provider.clone())))));
            return c.clone().map_err(|e| setup(e, String::new()));
        }
        let dir = self.ca_dir(authority);
        let own = {
            let mut dirs = vec![dir.clone()];
            dirs.extend(
                self.adopted
                    .lock()
                    .unwrap()
                    .get(authority)
                    .cloned()
                    .unwrap_or_default(),
            );
            let mut per_host = self.per_host.lock().unwrap();
            per_host
                .entry(authority.to_string())
                .or_insert_with(|| self.host_config(&dirs))
                .clone()
        };
        match own {
            Ok(Some(c)) => return Ok(c),
            Ok(None) => {}
            Err(e) => {
                return Err(setup(
                    e,
                    format!("fix or remove the certificates in {}", dir.display()),
                ))
            }
        }
        let c = self.default.get_or_init(|| {
            Verifier::new(self.ca_file.clone(), self.provider.clone())
                .map(|v| self.build(Arc::new(v)))
                .map_err(|e| format!("no trusted certificates: {e}"))
        });
        c.clone().map_err(|e| {
            setup(
                e,
                "install the system CA certificates (Debian: ca-certificates), or give --ca-file"
                    .into(),
            )
        })
    }

    /// A config for a host with `certs.d` directories (its own first, then those it adopted);
    /// `None` when none of them holds a certificate.
    fn host_config(&self, dirs: &[PathBuf]) -> HostConfig {
        let mut certs = self.ca_file.clone();
        let mut any = false;
        for dir in dirs {
            for p in crt_files(dir)? {
                certs.extend(read_certs(&p)?);
                any = true;
            }
        }
        if !any {
            return Ok(None);
        }
        let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let v = Verifier::new(certs, self.provider.clone())
            .map_err(|e| format!("the certificates in {} are unusable: {e}", shown.join(", ")))?;
        Ok(Some(self.build(Arc::new(v))))
    }

    fn build(
        &self,
        verifier: Arc<dyn rustls::client::danger::ServerCertVerifier>,
    ) -> Arc<ClientConfig> {
        let config = ClientConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .expect("ring supports every TLS version rustls has")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Arc::new(config)
    }
}

/// The `*.crt` files of a `certs.d` directory, sorted; none when it does not exist.
fn crt_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", dir.display())),
    };
    let mut names: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    names.sort();
    Ok(names)
}

/// Whether a `certs.d` directory holds a certificate file.
fn has_certs(dir: &Path) -> bool {
    crt_files(dir).is_ok_and(|f| !f.is_empty())
}

/// The certificates of a PEM file; an error names the file.
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem =
        std::fs::read(path).map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
    let mut certs = Vec::new();
    for c in CertificateDer::pem_slice_iter(&pem) {
        certs.push(c.map_err(|e| format!("CA file {} is not valid PEM: {e}", path.display()))?);
    }
    if certs.is_empty() {
        return Err(format!("CA file {} holds no certificate", path.display()));
    }
    Ok(certs)
}

/// Wraps https connections in TLS with the [`Trust`] for their host.
#[derive(Debug)]
pub(crate) struct TlsConnector(pub(crate) Arc<Trust>);

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let authority = details
            .uri
            .authority()
            .map(|a| a.as_str().to_ascii_lowercase())
            .unwrap_or_default();
        let host = details
            .uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']']);
        let failure = |f: TlsFailure| ureq::Error::Other(Box::new(f));
        let config = self.0.config_for(&authority).map_err(failure)?;
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::BadUri(format!("{host} is not a valid TLS server name")))?;
        let mut conn = ClientConnection::new(config, name)?;
        let mut sock = Sniff {
            inner: TransportAdapter::new(transport.boxed(), details.current_time.clone()),
            first: Vec::new(),
            gather: Vec::new(),
        };
        sock.inner.set_timeout(details.timeout);
        if let Err(e) = conn.complete_io(&mut sock) {
            if sock.first.starts_with(b"HTTP/") {
                return Err(failure(TlsFailure::PlainHttp { authority }));
            }
            if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                let dir = self.0.ca_dir(&authority);
                let (problem, fix) = explain(t, host, &dir.display().to_string());
                return Err(failure(TlsFailure::Refused {
                    authority,
                    problem,
                    fix,
                }));
            }
            return Err(ureq::Error::from(e));
        }
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// The transport under TLS, remembering the first bytes the server sent (to tell a plain
/// HTTP answer from a broken handshake).
struct Sniff {
    inner: TransportAdapter,
    first: Vec<u8>,
    /// Where the TLS records rustls hands over at once are gathered, so that they go to the
    /// socket in one write instead of one write per 16 KiB record.
    gather: Vec<u8>,
}

/// The most bytes [`Sniff`] gathers into one socket write: ureq's default output buffer.
const GATHER_MAX: usize = 128 * 1024;

impl Read for Sniff {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.first.len() < 5 {
            let take = (5 - self.first.len()).min(n);
            self.first.extend_from_slice(&buf[..take]);
        }
        Ok(n)
    }
}

impl Write for Sniff {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }

    /// rustls writes its pending records as one vectored write; `TransportAdapter` has none,
    /// and the default would send only the first record: one socket write per 16 KiB record.
    /// Gathered, an unpack over https took 1.09x its time over http in scripts/bench.sh,
    /// where it took 1.17x.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut bufs = bufs.iter().filter(|b| !b.is_empty());
        let Some(first) = bufs.next() else {
            return Ok(0);
        };
        self.gather.clear();
        self.gather.extend_from_slice(first);
        for b in bufs {
            if self.gather.len() + b.len() > GATHER_MAX {
                break;
            }
            self.gather.extend_from_slice(b);
        }
        let gathered = std::mem::take(&mut self.gather);
        let sent = self.inner.write_all(&gathered).map(|()| gathered.len());
        self.gather = gathered;
        sent
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// An established TLS connection (as ureq's own rustls transport).
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, Sniff>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().inner.set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().inner.set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().inner.get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_a_registry_sends_airlock_to_adopt_its_certs_d_cas() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let pem = params.self_signed(&key).unwrap().pem();
        std::fs::create_dir_all(dir.path().join("reg:5000")).unwrap();
        std::fs::write(dir.path().join("reg:5000/ca.crt"), pem).unwrap();
        let t = Trust::new(false, vec![], None, dir.path().to_path_buf()).unwrap();
        let default = t.config_for("realm:443").unwrap();
        let registry = t.config_for("reg:5000").unwrap();
        assert!(!Arc::ptr_eq(&default, &registry));
        // The realm, then a redirect the realm sends airlock to: both get the registry's CA.
        t.adopt("realm:443", "reg:5000");
        t.adopt("blobs:443", "realm:443");
        for hop in ["realm:443", "blobs:443"] {
            assert!(!Arc::ptr_eq(&t.config_for(hop).unwrap(), &default), "{hop}");
        }
        // A registry without a certs.d directory passes nothing on.
        t.adopt("elsewhere:443", "plain:5000");
        assert!(Arc::ptr_eq(
            &t.config_for("elsewhere:443").unwrap(),
            &default
        ));
    }

    #[test]
    fn an_insecure_registry_names_a_port_or_every_port() {
        let e = vec![
            "reg.local:5000".to_string(),
            "[::1]".into(),
            "10.0.0.1".into(),
        ];
        assert!(insecure_host(&e, "reg.local:5000"));
        assert!(insecure_host(&e, "REG.local:5000"));
        assert!(!insecure_host(&e, "reg.local:5001"));
        assert!(!insecure_host(&e, "reg.local"));
        assert!(insecure_host(&e, "[::1]:5000"));
        assert!(insecure_host(&e, "10.0.0.1:443"));
        assert!(insecure_host(&e, "10.0.0.1"));
        assert!(!insecure_host(&e, "10.0.0.11"));
        assert!(!insecure_host(&[], "reg.local:5000"));
    }
}
