//! A small scriptable HTTP/1.1 server on 127.0.0.1 for hostile answers a real registry never
//! gives (wrong digests, redirects to another host), over plain http or, with
//! [`FakeServer::start_tls`], https with a certificate from a [`TestCa`]. Each request is
//! recorded, headers and all, so tests can check what airlock sent where.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::tls::ServerCert;
use super::TestCa;

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Lower-case header names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What the handler answers.
#[derive(Debug, Clone, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Option<std::time::Duration>,
    /// Send the whole answer, head included, one byte per this interval (a trickle).
    pub trickle: Option<std::time::Duration>,
    /// Send only this many body bytes, then close the connection (a body cut short; the
    /// announced Content-Length stays the full one).
    pub cut_body_at: Option<usize>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }
    pub fn header(mut self, k: &str, v: &str) -> Reply {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn body(mut self, b: impl Into<Vec<u8>>) -> Reply {
        self.body = b.into();
        self
    }
    pub fn delay(mut self, d: std::time::Duration) -> Reply {
        self.delay = Some(d);
        self
    }
    pub fn trickle(mut self, every: std::time::Duration) -> Reply {
        self.trickle = Some(every);
        self
    }
    pub fn cut_body_at(mut self, n: usize) -> Reply {
        self.cut_body_at = Some(n);
        self
    }
}

type Handler = dyn Fn(&Recorded) -> Reply + Send + Sync;

/// The server; stops on drop.
pub struct FakeServer {
    port: u16,
    tls: bool,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<Recorded>>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    pub fn start(handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> FakeServer {
        FakeServer::serve_with(None, handler)
    }

    /// Serves https with a certificate for 127.0.0.1 issued by `ca`.
    pub fn start_tls(
        ca: &TestCa,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("fake-{}", N.fetch_add(1, Ordering::SeqCst));
        FakeServer::start_with_cert(&ca.issue_server_cert(&name), handler)
    }

    /// Serves https with the certificate (and key) in `cert`.
    pub fn start_with_cert(
        cert: &ServerCert,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert_file)
            .expect("reading the fake server's certificate")
            .map(|c| c.expect("a PEM certificate"))
            .collect();
        let key = PrivateKeyDer::from_pem_file(&cert.key_file).expect("the fake server's key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a usable certificate and key");
        FakeServer::serve_with(Some(Arc::new(config)), handler)
    }

    fn serve_with(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Recorded) -> Reply + Send + Sync + 'static,
    ) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let (s, r) = (stop.clone(), requests.clone());
        let is_tls = tls.is_some();
        let accepted = Arc::new(AtomicUsize::new(0));
        let acc = accepted.clone();
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                acc.fetch_add(1, Ordering::SeqCst);
                let (h, r) = (handler.clone(), r.clone());
                match &tls {
                    None => std::thread::spawn(move || serve(conn, &*h, &r)),
                    Some(config) => {
                        let config = config.clone();
                        std::thread::spawn(move || {
                            let Ok(session) = rustls::ServerConnection::new(config) else {
                                return;
                            };
                            serve(rustls::StreamOwned::new(session, conn), &*h, &r)
                        })
                    }
                };
            }
        });
        FakeServer {
            port,
            tls: is_tls,
            accepted,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`, or `https://` for a TLS server.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// TCP connections accepted so far (a TLS handshake that failed leaves no request).
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(conn: impl Read + Write, handler: &Handler, log: &Mutex<Vec<Recorded>>) {
    let mut reader = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(path)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, path) = (method.to_string(), path.to_string());
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let rec = Recorded {
            method,
            path,
            headers,
            body,
        };
        log.lock().unwrap().push(rec.clone());
        let reply = handler(&rec);
        let mut out = format!("HTTP/1.1 {} X\r\n", reply.status);
        let mut has_len = false;
        for (k, v) in &reply.headers {
            has_len |= k.eq_ignore_ascii_case("content-length");
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_len {
            out.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
        }
        out.push_str("\r\n");
        if let Some(d) = reply.delay {
            std::thread::sleep(d);
        }
        let mut bytes = out.into_bytes();
        if rec.method != "HEAD" {
            let n = reply.cut_body_at.unwrap_or(reply.body.len());
            bytes.extend_from_slice(&reply.body[..n.min(reply.body.len())]);
        }
        let conn = reader.get_mut();
        match reply.trickle {
            None => {
                let _ = conn.write_all(&bytes);
            }
            Some(every) => {
                for b in bytes {
                    if conn.write_all(&[b]).and_then(|()| conn.flush()).is_err() {
                        return;
                    }
                    std::thread::sleep(every);
                }
            }
        }
        let _ = conn.flush();
        if reply.cut_body_at.is_some() {
            return;
        }
    }
}
