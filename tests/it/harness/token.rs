//! A bearer-token server, the flow docker.io and gcr.io use, for distribution's `auth: token`.
//!
//! The registry answers 401 with `WWW-Authenticate: Bearer realm=..,service=..,scope=..`; the
//! client calls `GET <realm>?service=..&scope=repository:NAME:pull,push` (with Basic credentials
//! or none) and retries with `Authorization: Bearer <jwt>`. Spec:
//! <https://distribution.github.io/distribution/spec/auth/token/> and `.../spec/auth/jwt/>`.
//!
//! The JWT is ES256 with an `x5c` header carrying the DER of the signing certificate; that
//! certificate is also the registry's `rootcertbundle`, so distribution 2.8 accepts the chain
//! (a `kid` would have to be the libtrust key id instead). The server is one thread on a std
//! `TcpListener` that handles a request per connection; it records what it saw so tests can
//! assert on the client's behaviour.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::json;

/// The `service` (JWT `aud`) the registry is configured with.
pub const SERVICE: &str = "airlock-test";
/// The JWT `iss` the registry is configured to trust.
pub const ISSUER: &str = "airlock-test-issuer";

/// Who may get which token.
#[derive(Debug, Clone)]
pub struct TokenPolicy {
    /// The one user that may authenticate.
    pub user: String,
    /// That user's password.
    pub password: String,
    /// Whether requests without credentials get `pull` (as on Docker Hub for public images).
    /// When false they still get a token, but with no access, so the registry answers 401.
    pub anonymous_pull: bool,
    /// Lifetime of issued tokens (`exp - iat`, and `expires_in`). Note that distribution
    /// allows 60 s of clock skew past `exp`.
    pub token_ttl: Duration,
    /// An OAuth2 refresh token (Docker's `identitytoken`) that `POST /token` with
    /// `grant_type=refresh_token` exchanges for a token of `user`.
    pub refresh_token: Option<String>,
    /// Grant no `registry:catalog:*` access, to anyone (a registry that keeps its list of
    /// repositories to itself).
    pub deny_catalog: bool,
}

impl TokenPolicy {
    /// One user, no anonymous pull, five-minute tokens.
    pub fn new(user: &str, password: &str) -> TokenPolicy {
        TokenPolicy {
            user: user.to_string(),
            password: password.to_string(),
            anonymous_pull: false,
            refresh_token: None,
            token_ttl: Duration::from_secs(300),
            deny_catalog: false,
        }
    }
}

/// A running token server; stops when dropped.
pub struct TokenServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    cert_file: PathBuf,
}

struct Shared {
    policy: TokenPolicy,
    signer: Signer,
    stop: AtomicBool,
    requests: AtomicUsize,
    authorizations: Mutex<Vec<Option<String>>>,
    posts: Mutex<Vec<String>>,
}

struct Signer {
    key: EcdsaKeyPair,
    cert_der_b64: String,
    rng: SystemRandom,
}

impl TokenServer {
    /// Generates a P-256 signing key and certificate (written to `dir/token-signer.pem`) and
    /// starts serving on a free port of 127.0.0.1.
    pub fn start(policy: TokenPolicy, dir: &Path) -> TokenServer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .expect("generating the token signing key");
        let mut params = rcgen::CertificateParams::default();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "airlock test token signer");
        let cert = params
            .self_signed(&key)
            .expect("self-signing the token certificate");
        let cert_file = dir.join("token-signer.pem");
        std::fs::write(&cert_file, cert.pem())
            .unwrap_or_else(|e| panic!("writing {}: {e}", cert_file.display()));

        let rng = SystemRandom::new();
        // ring's FIXED signing gives the raw r||s that JWS ES256 wants (not ASN.1 DER).
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
                .expect("loading the token signing key into ring");
        let signer = Signer {
            key,
            cert_der_b64: STANDARD.encode(cert.der()),
            rng,
        };

        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the token server");
        let addr = listener.local_addr().expect("token server address");
        let shared = Arc::new(Shared {
            policy,
            signer,
            stop: AtomicBool::new(false),
            requests: AtomicUsize::new(0),
            authorizations: Mutex::new(Vec::new()),
            posts: Mutex::new(Vec::new()),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("token-server-{}", addr.port()))
            .spawn(move || serve(listener, &thread_shared))
            .expect("spawning the token server thread");
        TokenServer {
            addr,
            shared,
            thread: Some(thread),
            cert_file,
        }
    }

    /// The token endpoint, `http://127.0.0.1:PORT/token` (the registry's `realm`).
    pub fn realm(&self) -> String {
        format!("http://{}/token", self.addr)
    }

    /// The signing certificate, PEM file (the registry's `rootcertbundle`).
    pub fn root_cert_file(&self) -> &Path {
        &self.cert_file
    }

    /// How many HTTP requests the server has received.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The `Authorization` header of each request, in order (`None` when absent).
    pub fn authorizations(&self) -> Vec<Option<String>> {
        lock(&self.shared.authorizations).clone()
    }

    /// The form bodies of `POST /token` requests (OAuth2 refresh-token grants), in order.
    pub fn posts(&self) -> Vec<String> {
        lock(&self.shared.posts).clone()
    }

    /// Mints a token directly, bypassing HTTP: `access` is `(repository, actions)` pairs.
    pub fn issue(&self, subject: &str, access: &[(&str, &[&str])]) -> String {
        let access: Vec<Access> = access
            .iter()
            .map(|(name, actions)| Access {
                kind: "repository".to_string(),
                name: name.to_string(),
                actions: actions.iter().map(|a| a.to_string()).collect(),
            })
            .collect();
        self.shared.jwt(subject, &access, now())
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // accept() blocks; a connection of our own wakes it to see the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking test thread must not poison the record for the Drop that follows.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

fn serve(listener: TcpListener, shared: &Shared) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        if let Ok(stream) = stream {
            // One bad client must not take the server down for the rest of the test.
            let _ = handle(stream, shared);
        }
    }
}

#[derive(Debug, Clone)]
struct Access {
    kind: String,
    name: String,
    actions: Vec<String>,
}

struct Reply {
    status: u16,
    body: String,
    www_authenticate: bool,
}

fn handle(mut stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let (head, mut body) = read_head(&mut stream)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut authorization = None;
    let mut length = 0usize;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
            if k.trim().eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0).min(64 * 1024);
            }
        }
    }
    while body.len() < length {
        let mut more = [0u8; 1024];
        let n = stream.read(&mut more)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&more[..n]);
    }
    shared.requests.fetch_add(1, Ordering::SeqCst);
    lock(&shared.authorizations).push(authorization.clone());
    let form = String::from_utf8_lossy(&body).into_owned();
    if request_line.starts_with("POST ") {
        lock(&shared.posts).push(form.clone());
    }

    let reply = shared.answer(&request_line, authorization.as_deref(), &form);
    let reason = match reply.status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Method Not Allowed",
    };
    let mut out = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    if reply.www_authenticate {
        out.push_str("WWW-Authenticate: Basic realm=\"airlock-test\"\r\n");
    }
    out.push_str("\r\n");
    out.push_str(&reply.body);
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

/// Reads up to the blank line ending the request head; returns the head and the body bytes
/// read with it.
fn read_head(stream: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut byte)?;
        if n == 0 || buf.len() > 64 * 1024 {
            break;
        }
        buf.extend_from_slice(&byte[..n]);
    }
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |i| i + 4);
    let body = buf.split_off(end);
    Ok((String::from_utf8_lossy(&buf).into_owned(), body))
}

fn error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        body: json!({"errors": [{"code": code, "message": message}]}).to_string(),
        www_authenticate: status == 401,
    }
}

impl Shared {
    fn answer(&self, request_line: &str, authorization: Option<&str>, form: &str) -> Reply {
        let mut parts = request_line.split(' ');
        let (method, target) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        if path != "/token" {
            return error(404, "NOT_FOUND", "only /token is served");
        }
        let decode = |q: &str| -> Vec<(String, String)> {
            q.split('&')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (percent_decode(k), percent_decode(v)))
                .collect()
        };
        let mut params = match method {
            "GET" => decode(query),
            "POST" => decode(form),
            _ => return error(405, "UNSUPPORTED", "only GET and POST /token are served"),
        };
        if let Some((_, service)) = params.iter().find(|(k, _)| k == "service") {
            if service != SERVICE {
                return error(
                    400,
                    "INVALID_REQUEST",
                    &format!("unknown service {service:?}"),
                );
            }
        }

        let subject = if method == "POST" {
            // OAuth2 (distribution's spec/auth/oauth): a refresh-token grant; the scopes are
            // one space-separated parameter.
            let value = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            let (grant, token) = (value("grant_type"), value("refresh_token"));
            if grant.as_deref() != Some("refresh_token")
                || token.is_none()
                || token != self.policy.refresh_token
            {
                return error(401, "UNAUTHORIZED", "invalid refresh token");
            }
            let scopes: Vec<(String, String)> = value("scope")
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(|s| ("scope".to_string(), s.to_string()))
                .collect();
            params.retain(|(k, _)| k != "scope");
            params.extend(scopes);
            Some(self.policy.user.clone())
        } else {
            match authorization {
                None => None,
                Some(value) => match basic_credentials(value) {
                    Some((user, password))
                        if user == self.policy.user && password == self.policy.password =>
                    {
                        Some(user)
                    }
                    _ => return error(401, "UNAUTHORIZED", "invalid credentials"),
                },
            }
        };

        let access: Vec<Access> = params
            .iter()
            .filter(|(k, _)| k == "scope")
            .filter_map(|(_, scope)| parse_scope(scope))
            .map(|mut access| {
                if self.policy.deny_catalog && access.kind == "registry" {
                    access.actions.clear();
                }
                if subject.is_none() {
                    // Anonymous: at most pull, and only when the policy allows it.
                    access.actions.retain(|a| {
                        self.policy.anonymous_pull && access.kind == "repository" && a == "pull"
                    });
                }
                access
            })
            .collect();

        let issued_at = now();
        let token = self.jwt(subject.as_deref().unwrap_or(""), &access, issued_at);
        Reply {
            status: 200,
            body: json!({
                "token": token,
                "access_token": token,
                "expires_in": self.policy.token_ttl.as_secs(),
                "issued_at": rfc3339(issued_at),
            })
            .to_string(),
            www_authenticate: false,
        }
    }

    /// Builds and signs the JWT distribution verifies (`registry/auth/token/token.go`): issuer,
    /// audience, `nbf`/`exp` (with 60 s leeway), then the ES256 signature with the key of the
    /// `x5c` leaf, which must chain to `rootcertbundle`.
    fn jwt(&self, subject: &str, access: &[Access], issued_at: u64) -> String {
        let header = json!({"typ": "JWT", "alg": "ES256", "x5c": [self.signer.cert_der_b64]});
        let mut jti = [0u8; 16];
        self.signer.rng.fill(&mut jti).expect("random jti");
        let claims = json!({
            "iss": ISSUER,
            "sub": subject,
            "aud": SERVICE,
            "exp": issued_at + self.policy.token_ttl.as_secs(),
            "nbf": issued_at.saturating_sub(1),
            "iat": issued_at,
            "jti": airlock::digest::hex_lower(&jti),
            "access": access
                .iter()
                .map(|a| json!({"type": a.kind, "name": a.name, "actions": a.actions}))
                .collect::<Vec<_>>(),
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .signer
            .key
            .sign(&self.signer.rng, signing_input.as_bytes())
            .expect("signing a token");
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }
}

/// `repository:NAME:pull,push` -> Access; the name may itself hold no `:` but the type and
/// actions are split at the first and last colon as distribution does.
fn parse_scope(scope: &str) -> Option<Access> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(Access {
        kind: kind.to_string(),
        name: name.to_string(),
        actions: actions
            .split(',')
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

fn basic_credentials(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

fn percent_decode(s: &str) -> String {
    let hex = |b: u8| (b as char).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i..i + 3) {
            Some([b'%', hi, lo]) => hex(*hi).zip(hex(*lo)).map(|(h, l)| (h * 16 + l) as u8),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(b), _) => {
                out.push(b);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, b) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Seconds since the epoch as RFC 3339 UTC (`issued_at`), via Howard Hinnant's civil-from-days.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn parses_scopes_and_escapes() {
        let a = parse_scope(&percent_decode("repository%3Arancher%2Fk8s%3Apull%2Cpush")).unwrap();
        assert_eq!(
            (a.kind.as_str(), a.name.as_str()),
            ("repository", "rancher/k8s")
        );
        assert_eq!(a.actions, ["pull", "push"]);
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
