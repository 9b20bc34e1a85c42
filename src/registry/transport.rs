//! Sending one request: endpoint choice, authentication, retries, redirects and time bounds.
//!
//! Every request goes through [`Client::send`], which
//! - picks the endpoint: a `--mirror`, an explicit `http://` registry, `https://host`, or,
//!   with `--insecure` (or `--insecure-registry` naming it), the scheme found once per
//!   registry by [`Client::discover`];
//! - attaches the cached bearer token or Basic credentials **of the origin it goes to**
//!   (scheme, host and port): a redirect to another host is a stranger until that host asks
//!   for credentials, and then it gets its own (auth.rs), never the first host's;
//! - refuses redirects and upload locations that downgrade https to http without
//!   `--insecure` (or `--insecure-registry` naming their host), or that lead to link-local and cloud metadata addresses (guard.rs);
//! - retries connection failures, 429 (honouring `Retry-After`) and 5xx with jittered backoff,
//!   within one budget for the whole request (redirect hops included), never 4xx, never a
//!   TLS or plain-http answer, and never a refused connection to a host not yet reached;
//! - bounds time: a connect timeout, a deadline for small documents, a minimum rate for blob
//!   bodies (deadline.rs).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use ureq::http::{self, Response};
use ureq::unversioned::transport::{ConnectProxyConnector, Connector as _, TcpConnector};
use ureq::{Body, SendBody};

use super::auth::Token;
use super::credentials::CredentialStore;
use super::deadline::{MinRate, RateGuard, Waits};
use super::error::{parse_error_body, redact_url, RegistryError};
use super::guard::{check_hop, ForbiddenAddress, GuardedResolver, Hop};
use super::tls::{insecure_host, TlsConnector, TlsFailure, Trust, DEFAULT_CERTS_D};
use crate::progress::Reporter;
pub use crate::retry::Retry;
use crate::retry::{Again, Budget};

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Allow plain http (found by discovery), and https without certificate verification.
    pub insecure: bool,
    /// The same for these registries only (`--insecure-registry`): `host[:port]`, lower case;
    /// an entry without a port stands for the host on every port.
    pub insecure_registries: Vec<String>,
    /// A PEM file of extra CA certificates to trust (a private registry's CA, or its
    /// self-signed certificate), on top of the system roots.
    pub ca_file: Option<PathBuf>,
    /// Docker's per-registry CA directory: `<certs_d>/HOST[:PORT]/*.crt`.
    pub certs_d: PathBuf,
    /// `registry -> base URL` rules: `--mirror docker.io=http://127.0.0.1:5001`, and a target
    /// given with an explicit scheme (`--registry http://127.0.0.1:5000`).
    pub endpoints: Vec<(String, Endpoint)>,
    pub credentials: CredentialStore,
    pub retry: Retry,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Longest wait for any single read or write on a connection (catches stalls).
    pub io_timeout: Duration,
    /// Whole-request deadline for small documents (manifests, tokens, `/v2/`, HEADs, error
    /// bodies) and for the response headers of blob requests.
    pub request_timeout: Duration,
    /// The slowest accepted blob transfer, up or down.
    pub min_rate: MinRate,
    /// How long a request waits before [`Client::observe`] names it on the progress line.
    pub wait_notice: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure: false,
            insecure_registries: Vec::new(),
            ca_file: None,
            certs_d: PathBuf::from(DEFAULT_CERTS_D),
            endpoints: Vec::new(),
            credentials: CredentialStore::new(),
            retry: Retry::default(),
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            min_rate: MinRate::default(),
            wait_notice: Duration::from_secs(5),
        }
    }
}

impl Options {
    /// Whether plain http and unverified TLS are allowed for `authority` (`host[:port]`):
    /// `--insecure`, or `--insecure-registry` naming it.
    pub fn insecure_for(&self, authority: &str) -> bool {
        self.insecure || insecure_host(&self.insecure_registries, authority)
    }

    /// [`Options::insecure_for`] the host of an absolute URL.
    pub(crate) fn insecure_for_url(&self, url: &str) -> bool {
        self.insecure || Endpoint::of_url(url).is_some_and(|e| self.insecure_for(&e.host))
    }
}

/// An origin: scheme and authority (`host[:port]`), as a registry's base URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub scheme: &'static str,
    pub host: String,
}

impl Endpoint {
    /// Parses `http://host[:port]` or `https://host[:port]` (a trailing `/` or `/v2` is allowed).
    pub fn parse(url: &str) -> Result<Endpoint, RegistryError> {
        let bad = |why: &str| RegistryError::Config(format!("invalid registry URL {url:?}: {why}"));
        let (scheme, rest) = if let Some(r) = url.strip_prefix("http://") {
            ("http", r)
        } else if let Some(r) = url.strip_prefix("https://") {
            ("https", r)
        } else {
            return Err(bad("expected http:// or https://"));
        };
        let rest = rest.trim_end_matches('/');
        let rest = rest.strip_suffix("/v2").unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad("expected only a host and an optional port"));
        }
        Ok(Endpoint {
            scheme,
            host: rest.to_ascii_lowercase(),
        })
    }

    /// The origin of an absolute http(s) URL.
    pub fn of_url(url: &str) -> Option<Endpoint> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => "http",
            "https" => "https",
            _ => return None,
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host = rest[..end].to_ascii_lowercase();
        (!host.is_empty() && !host.contains('@')).then_some(Endpoint { scheme, host })
    }

    /// `scheme://host`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// The host without port (and an IPv6 address without brackets).
    pub fn hostname(&self) -> &str {
        let h = &self.host;
        if let Some(rest) = h.strip_prefix('[') {
            return rest.split(']').next().unwrap_or(rest);
        }
        h.rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map_or(h, |(n, _)| n)
    }
}

/// What a request needs permission for; it selects the token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Pull,
    Push,
}

impl Action {
    pub(super) fn scope_actions(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "pull,push",
        }
    }
}

/// Counters for reports and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub token_fetches: AtomicU64,
}

/// The body of a request.
pub(crate) enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream that is opened again for each attempt; the length is sent as Content-Length.
    Stream {
        len: u64,
        open: &'a (dyn Fn() -> std::io::Result<Box<dyn Read + Send + 'static>> + Sync),
    },
}

/// One request, before endpoint and credentials are applied.
pub(crate) struct Req<'a> {
    pub method: http::Method,
    /// The registry as named in the image reference (`docker.io`, `127.0.0.1:5000`).
    pub registry: &'a str,
    /// The repository the request is about (token scope); `None` for `/v2/`.
    pub repository: Option<&'a str>,
    pub action: Action,
    /// A path such as `/v2/x/manifests/y`, or an absolute URL the registry gave us (upload
    /// locations), which must still be on the registry's host.
    pub path: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: ReqBody<'a>,
    /// Follow redirects (GET/HEAD of blobs and manifests).
    pub follow_redirects: bool,
}

/// Which time bounds a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    /// Everything small: one deadline for the whole exchange.
    Small,
    /// A blob download: a deadline for the headers, a minimum rate for the body.
    BlobGet,
    /// A blob upload: a minimum rate for the body; the registry may take a while to answer
    /// once it has the bytes (it moves them into place), so its answer gets five deadlines.
    Upload,
}

impl Kind {
    fn of(req: &Req<'_>) -> Kind {
        match req.body {
            ReqBody::Stream { .. } => Kind::Upload,
            // `/v2/<name>/blobs/<digest>`: judged by the last two segments, as a repository
            // may itself be named `blobs`.
            _ if req.method == http::Method::GET
                && req.path.rsplit('/').nth(1) == Some("blobs") =>
            {
                Kind::BlobGet
            }
            _ => Kind::Small,
        }
    }
}

/// A discovered (or failed) scheme for one registry, found once.
type Discovery = Arc<OnceLock<Result<Endpoint, RegistryError>>>;

/// A blocking registry client. Cheap to share across threads (`&Client` is `Sync`).
pub struct Client {
    agent: ureq::Agent,
    pub(super) opts: Options,
    pub(super) tokens: Mutex<HashMap<(String, String, Action), Token>>,
    /// Origins that answered a Basic challenge: their own credentials go with every request.
    pub(super) basic: Mutex<HashSet<String>>,
    discovery: Mutex<HashMap<String, Discovery>>,
    /// Discovered endpoints, for the per-request lookup (a read lock, no allocation).
    discovered: RwLock<HashMap<String, Endpoint>>,
    /// Origins that answered at least once (a refused connection there is worth a retry).
    contacted: RwLock<HashSet<String>>,
    /// Host names the operator named; only they may resolve to link-local addresses.
    trusted_hosts: Arc<RwLock<HashSet<String>>>,
    /// The TLS trust the connector uses: a registry's `certs.d` CAs are adopted by the hosts
    /// it sends airlock to.
    pub(super) trust: Arc<Trust>,
    waits: Waits,
    /// Things the operator should know (a missing credential helper), for [`Client::observe`].
    warnings: Mutex<(Vec<String>, HashSet<String>)>,
    pub(super) stats: Arc<Stats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("opts", &self.opts).finish()
    }
}

impl Client {
    /// Builds the client and its agent. A bad `--ca-file` is reported here.
    pub fn new(opts: Options) -> Result<Client, RegistryError> {
        let trust = Arc::new(Trust::new(
            opts.insecure,
            opts.insecure_registries.clone(),
            opts.ca_file.as_deref(),
            opts.certs_d.clone(),
        )?);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_per_read(Some(opts.io_timeout))
            .timeout_per_write(Some(opts.io_timeout))
            .max_idle_connections_per_host(16)
            .build();
        // ureq's default chain with our TLS: CONNECT proxies (HTTPS_PROXY), TCP, then TLS.
        let connector =
            ().chain(ConnectProxyConnector::default())
                .chain(TcpConnector::default())
                .chain(TlsConnector(trust.clone()));
        let (resolver, trusted_hosts) = GuardedResolver::new();
        Ok(Client {
            agent: ureq::Agent::with_parts(config, connector, resolver),
            opts,
            tokens: Mutex::new(HashMap::new()),
            basic: Mutex::new(HashSet::new()),
            discovery: Mutex::new(HashMap::new()),
            discovered: RwLock::new(HashMap::new()),
            contacted: RwLock::new(HashSet::new()),
            trusted_hosts,
            trust,
            waits: Waits::default(),
            warnings: Mutex::new((Vec::new(), HashSet::new())),
            stats: Arc::new(Stats::default()),
        })
    }

    /// Request counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The options this client was built with.
    pub fn options(&self) -> &Options {
        &self.opts
    }

    /// Where requests for `registry` go (as far as known: before discovery, `https`).
    pub fn endpoint(&self, registry: &str) -> Endpoint {
        if let Some(e) = self.fixed_endpoint(registry) {
            return e;
        }
        match self.discovered.read().unwrap().get(registry) {
            Some(e) => e.clone(),
            None => https(registry),
        }
    }

    /// An endpoint known without asking the network: a rule, or Docker Hub's API host.
    fn fixed_endpoint(&self, registry: &str) -> Option<Endpoint> {
        if let Some((_, e)) = self.opts.endpoints.iter().find(|(r, _)| r == registry) {
            return Some(e.clone());
        }
        (registry == "docker.io").then(|| Endpoint {
            scheme: "https",
            host: "registry-1.docker.io".into(),
        })
    }

    /// Where requests for `registry` go, discovering the scheme first where `--insecure`
    /// leaves it open (once per registry; every caller waits for the one probe).
    fn resolve_endpoint(&self, registry: &str) -> Result<Endpoint, RegistryError> {
        if let Some(e) = self.fixed_endpoint(registry) {
            return Ok(e);
        }
        if !self.opts.insecure_for(registry) {
            return Ok(https(registry));
        }
        if let Some(e) = self.discovered.read().unwrap().get(registry) {
            return Ok(e.clone());
        }
        let cell = self
            .discovery
            .lock()
            .unwrap()
            .entry(registry.to_string())
            .or_default()
            .clone();
        match cell.get_or_init(|| self.discover(registry)) {
            Ok(e) => {
                self.discovered
                    .write()
                    .unwrap()
                    .insert(registry.to_string(), e.clone());
                Ok(e.clone())
            }
            Err(e) => Err(e.try_clone().unwrap_or_else(|| RegistryError::Protocol {
                method: "GET".into(),
                url: format!("https://{registry}/v2/"),
                reason: e.to_string(),
            })),
        }
    }

    /// `--insecure` scheme discovery: one `GET https://HOST/v2/`. A TLS answer (any status)
    /// means https; a plain-http answer means http at once, never retried as a fault; a
    /// refused https port gets one try over http (a registry on port 80).
    fn discover(&self, registry: &str) -> Result<Endpoint, RegistryError> {
        let tls = https(registry);
        self.trust_host(&tls);
        let probe = |e: &Endpoint| {
            let url = format!("{}/v2/", e.base());
            let mut budget = self.opts.retry.budget();
            self.call_with_retry(
                &Call::get(&url, Kind::Small),
                &mut budget,
                // Only resets are retried: a refused or silent port says so at once.
                Retryable::ResetsOnly,
            )
            .map(drop)
        };
        match probe(&tls) {
            Ok(()) => Ok(tls),
            Err(RegistryError::PlainHttp { .. }) => Ok(Endpoint {
                scheme: "http",
                host: registry.to_string(),
            }),
            Err(e) if is_refused(&e) => {
                let plain = Endpoint {
                    scheme: "http",
                    host: registry.to_string(),
                };
                probe(&plain).map(|_| plain).map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    /// Lets the resolver guard accept `endpoint`'s host, which the operator named.
    fn trust_host(&self, endpoint: &Endpoint) {
        let name = endpoint.hostname();
        if !self.trusted_hosts.read().unwrap().contains(name) {
            self.trusted_hosts.write().unwrap().insert(name.to_string());
        }
    }

    /// Sends a request, authenticating and retrying as needed. The response status is any
    /// status but 401 (turned into [`RegistryError::Unauthorized`]) and redirects (followed).
    pub(crate) fn send(&self, req: &Req<'_>) -> Result<Response<Body>, RegistryError> {
        let endpoint = self.resolve_endpoint(req.registry)?;
        self.trust_host(&endpoint);
        let mut url = if req.path.starts_with("http://") || req.path.starts_with("https://") {
            let other = Endpoint::of_url(&req.path);
            if other.as_ref().map(|o| &o.host) != Some(&endpoint.host) {
                return Err(RegistryError::Protocol {
                    method: req.method.to_string(),
                    url: redact_url(&req.path),
                    reason: format!(
                        "the registry sent us to another host than {}",
                        endpoint.host
                    ),
                });
            }
            let insecure = self.opts.insecure_for_url(&req.path);
            check_hop(&endpoint.base(), &req.path, insecure).map_err(|reason| {
                RegistryError::Forbidden {
                    request: format!(
                        "{} {}/v2/{}",
                        req.method,
                        endpoint.base(),
                        req.repository.unwrap_or("")
                    ),
                    refused: format!("{} {}", Hop::UploadLocation.what(), redact_url(&req.path)),
                    reason,
                }
            })?;
            req.path.clone()
        } else {
            format!("{}{}", endpoint.base(), req.path)
        };
        let kind = Kind::of(req);
        // A streamed body is retried by its caller, which knows whether the bytes were bad.
        let mut budget = Budget::new(match kind {
            Kind::Upload => 1,
            _ => self.opts.retry.attempts,
        });
        let mut auth_rounds = 0;
        let mut redirects = 0;
        loop {
            let origin = Endpoint::of_url(&url).ok_or_else(|| RegistryError::Protocol {
                method: req.method.to_string(),
                url: redact_url(&url),
                reason: "not an http(s) URL".into(),
            })?;
            let own = origin == endpoint;
            let authorization = self.authorization(&origin, req);
            let call = Call {
                method: req.method.clone(),
                url: &url,
                headers: &req.headers,
                authorization: authorization.as_deref(),
                body: &req.body,
                kind,
            };
            let retryable = if own {
                Retryable::Normally
            } else {
                // A redirect target: a refused connection is an answer.
                Retryable::NotRefused
            };
            // Every body of a blob answer is rate-guarded, a 401's included.
            let resp = self.guard_body(&call, self.call_with_retry(&call, &mut budget, retryable)?);
            let status = resp.status().as_u16();
            if status == 401 {
                auth_rounds += 1;
                if auth_rounds > 2 {
                    return Err(self.unauthorized(req, &url, &origin, resp, ""));
                }
                self.answer_challenge(req, &url, &origin, own, resp, authorization.is_some())?;
                continue;
            }
            if req.follow_redirects && matches!(status, 301 | 302 | 303 | 307 | 308) {
                redirects += 1;
                let location = resp
                    .headers()
                    .get(http::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string);
                let Some(location) = location.filter(|_| redirects <= 5) else {
                    return Err(RegistryError::Protocol {
                        method: req.method.to_string(),
                        url: redact_url(&url),
                        reason: format!("redirect (HTTP {status}) without a usable Location"),
                    });
                };
                let next =
                    resolve_location(&url, &location).ok_or_else(|| RegistryError::Protocol {
                        method: req.method.to_string(),
                        url: redact_url(&url),
                        reason: format!(
                            "redirect to an unusable location {:?}",
                            redact_url(&location)
                        ),
                    })?;
                check_hop(&url, &next, self.opts.insecure_for_url(&next)).map_err(|reason| {
                    RegistryError::Forbidden {
                        request: format!("{} {}", req.method, redact_url(&url)),
                        refused: format!("{} {}", Hop::Redirect.what(), redact_url(&next)),
                        reason,
                    }
                })?;
                if let Some(to) = Endpoint::of_url(&next) {
                    self.trust.adopt(&to.host, &origin.host);
                }
                url = next;
                continue;
            }
            return Ok(resp);
        }
    }

    /// Blob bodies must keep up the minimum rate (whatever their status: an error body
    /// trickled at 1 B/s is as stuck as a layer).
    fn guard_body(&self, call: &Call<'_>, resp: Response<Body>) -> Response<Body> {
        if call.kind != Kind::BlobGet || call.method == http::Method::HEAD {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let what = format!("{} {}", call.method, redact_url(call.url));
        let reader = RateGuard::new(body.into_reader(), self.opts.min_rate, what);
        Response::from_parts(parts, Body::builder().reader(SyncRead(Mutex::new(reader))))
    }

    /// Sends one call, retrying transient failures while `budget` lasts. Docker Hub's pull
    /// limit is never retried.
    pub(super) fn call_with_retry(
        &self,
        call: &Call<'_>,
        budget: &mut Budget,
        retryable: Retryable,
    ) -> Result<Response<Body>, RegistryError> {
        budget.run(
            &self.opts.retry,
            || match self.call_once(call) {
                Ok(resp) if resp.status().as_u16() == 429 => self.check_pull_limit(call, resp),
                r => r,
            },
            |result| match result {
                Ok(resp) if resp.status().as_u16() == 429 || resp.status().as_u16() >= 500 => {
                    retry_after(resp).map_or(Again::Yes, Again::After)
                }
                Ok(_) => Again::No,
                Err(e) if self.may_retry(e, call.url, retryable) => Again::Yes,
                Err(_) => Again::No,
            },
            |result| {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                match result {
                    Ok(resp) => format!(
                        "{} {} answered HTTP {}",
                        call.method,
                        redact_url(call.url),
                        resp.status().as_u16()
                    ),
                    Err(e) => e.to_string(),
                }
            },
        )
    }

    /// Whether a failed call may be tried again.
    fn may_retry(&self, e: &RegistryError, url: &str, retryable: Retryable) -> bool {
        let RegistryError::Transport { cause, .. } = e else {
            return false;
        };
        let refused = is_refused(e);
        let timed_out = matches!(**cause, ureq::Error::Timeout(_));
        match retryable {
            Retryable::ResetsOnly => !refused && !timed_out,
            Retryable::NotRefused => !refused,
            // A host never reached that refuses the connection, or stays silent, is not
            // there (or not at that port): say so now rather than after minutes of backoff.
            // One that answered before may be restarting or briefly stalled.
            Retryable::Normally => {
                !(refused || timed_out)
                    || Endpoint::of_url(url)
                        .is_some_and(|o| self.contacted.read().unwrap().contains(&o.base()))
            }
        }
    }

    /// A 429: Docker Hub's pull limit becomes [`RegistryError::PullLimit`]; any other 429
    /// goes back to the retry loop (its body kept for the error report).
    fn check_pull_limit(
        &self,
        call: &Call<'_>,
        resp: Response<Body>,
    ) -> Result<Response<Body>, RegistryError> {
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (limit, window) = parse_ratelimit(header("ratelimit-limit").as_deref());
        let exhausted = parse_ratelimit(header("ratelimit-remaining").as_deref()).0 == Some(0);
        let (parts, body) = resp.into_parts();
        // Bounded in size and rate, whatever the kind of request.
        let what = format!("{} {}", call.method, redact_url(call.url));
        let mut text = Vec::new();
        let _ = RateGuard::new(body.into_reader(), self.opts.min_rate, what)
            .take(ERROR_BODY_MAX)
            .read_to_end(&mut text);
        let said = String::from_utf8_lossy(&text).to_ascii_lowercase();
        if exhausted || said.contains("pull rate limit") {
            return Err(RegistryError::PullLimit {
                request: format!("{} {}", call.method, redact_url(call.url)),
                host: Endpoint::of_url(call.url)
                    .map(|o| o.host)
                    .unwrap_or_default(),
                limit,
                window_secs: window,
            });
        }
        Ok(Response::from_parts(parts, Body::builder().data(text)))
    }

    /// One attempt.
    pub(super) fn call_once(&self, call: &Call<'_>) -> Result<Response<Body>, RegistryError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut b = http::Request::builder()
            .method(call.method.clone())
            .uri(call.url);
        for (k, v) in call.headers {
            b = b.header(*k, v);
        }
        if let Some(a) = call.authorization {
            b = b.header(http::header::AUTHORIZATION, a);
        }
        let body = match call.body {
            ReqBody::Empty => {
                if call.method == http::Method::PUT
                    || call.method == http::Method::POST
                    || call.method == http::Method::PATCH
                {
                    b = b.header(http::header::CONTENT_LENGTH, "0");
                }
                SendBody::none()
            }
            ReqBody::Bytes(bytes) => {
                b = b.header(http::header::CONTENT_LENGTH, bytes.len().to_string());
                SendBody::from_owned_reader(std::io::Cursor::new(bytes.to_vec()))
            }
            ReqBody::Stream { len, open } => {
                b = b.header(http::header::CONTENT_LENGTH, len.to_string());
                let r = open().map_err(|e| RegistryError::Body {
                    method: call.method.to_string(),
                    url: redact_url(call.url),
                    source: e,
                })?;
                let what = format!("{} {}", call.method, redact_url(call.url));
                SendBody::from_owned_reader(RateGuard::new(r, self.opts.min_rate, what))
            }
        };
        let request = b.body(body).map_err(|e| RegistryError::Protocol {
            method: call.method.to_string(),
            url: redact_url(call.url),
            reason: format!("cannot build the request: {e}"),
        })?;
        let deadline = self.opts.request_timeout;
        let scoped = self.agent.configure_request(request);
        let request = match call.kind {
            Kind::Small => scoped.timeout_global(Some(deadline)),
            Kind::BlobGet => scoped.timeout_recv_response(Some(deadline)),
            // A write blocked for a whole rate window moved nothing in it: below the minimum
            // rate, which the body's RateGuard only sees between writes.
            Kind::Upload => scoped
                .timeout_per_write(Some(self.opts.io_timeout.min(self.opts.min_rate.window)))
                .timeout_recv_response(Some(deadline.saturating_mul(5)))
                .timeout_recv_body(Some(deadline)),
        }
        .build();
        let _waiting = self
            .waits
            .begin(format!("{} {}", call.method, redact_url(call.url)));
        let started = Instant::now();
        let result = self.agent.run(request);
        log_call(call, &result, started.elapsed());
        match result {
            Ok(resp) => {
                if let Some(o) = Endpoint::of_url(call.url) {
                    let base = o.base();
                    if !self.contacted.read().unwrap().contains(&base) {
                        self.contacted.write().unwrap().insert(base);
                    }
                }
                Ok(resp)
            }
            Err(e) => Err(self.failure(call, e)),
        }
    }

    /// Turns a failed call into a typed error.
    fn failure(&self, call: &Call<'_>, e: ureq::Error) -> RegistryError {
        if let ureq::Error::Other(inner) = &e {
            if let Some(t) = inner.downcast_ref::<TlsFailure>() {
                return t.clone().into_registry_error();
            }
            if let Some(f) = inner.downcast_ref::<ForbiddenAddress>() {
                return RegistryError::Forbidden {
                    request: format!("{} {}", call.method, redact_url(call.url)),
                    refused: format!("the connection to {}", f.host),
                    reason: format!("it resolves to {}, {}", f.ip, f.why),
                };
            }
        }
        RegistryError::Transport {
            method: call.method.to_string(),
            url: redact_url(call.url),
            reason: self.describe(&e, call.kind),
            cause: Arc::new(e),
        }
    }

    /// A short human reason for a transport failure.
    fn describe(&self, e: &ureq::Error, kind: Kind) -> String {
        match e {
            ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is the registry running, and is the host:port right?)".into()
            }
            ureq::Error::Timeout(t) => {
                let o = &self.opts;
                match t {
                    ureq::Timeout::Connect | ureq::Timeout::Resolve => format!(
                        "timed out: no connection within {} s (AIRLOCK_CONNECT_TIMEOUT_SECS)",
                        o.connect_timeout.as_secs()
                    ),
                    ureq::Timeout::PerWrite if kind == Kind::Upload => format!(
                        "the upload stalled: the registry took no bytes for {} s, less than the \
                         minimum rate of {} bytes in every {} s (--min-rate, --rate-window)",
                        o.io_timeout.min(o.min_rate.window).as_secs(),
                        o.min_rate.bytes,
                        o.min_rate.window.as_secs()
                    ),
                    ureq::Timeout::Global | ureq::Timeout::RecvResponse if kind != Kind::Upload => {
                        format!(
                            "timed out: no complete answer within the {} s request timeout \
                             (--request-timeout)",
                            o.request_timeout.as_secs()
                        )
                    }
                    _ => format!(
                        "timed out: the connection stalled ({t}; --read-timeout is {} s)",
                        o.io_timeout.as_secs()
                    ),
                }
            }
            ureq::Error::HostNotFound => "host not found".into(),
            other => other.to_string(),
        }
    }

    /// Runs `f`, telling `reporter` what the client waits for whenever a request has gone
    /// unanswered for more than 5 s, and the warnings it gathered (a missing credential
    /// helper). The reports come from a helper thread that ends with `f`.
    pub fn observe<T>(&self, reporter: &dyn Reporter, f: impl FnOnce() -> T) -> T {
        let done = (Mutex::new(false), Condvar::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut said: Option<(String, Instant)> = None;
                let mut stopped = done.0.lock().unwrap();
                while !*stopped {
                    stopped = done
                        .1
                        .wait_timeout(stopped, Duration::from_millis(250))
                        .unwrap()
                        .0;
                    self.drain_warnings(reporter);
                    let notice = self.opts.wait_notice;
                    match self.waits.longest(notice) {
                        Some((waited, what)) => {
                            let fresh = said
                                .as_ref()
                                .is_none_or(|(w, at)| *w != what || at.elapsed() >= notice);
                            if fresh {
                                reporter.waiting(Some(&format!(
                                    "waiting {} s for {what}",
                                    waited.as_secs()
                                )));
                                said = Some((what, Instant::now()));
                            }
                        }
                        None if said.is_some() => {
                            reporter.waiting(None);
                            said = None;
                        }
                        None => {}
                    }
                }
            });
            // Stops the helper thread however `f` ends: the scope waits for it, so a panic in
            // `f` would otherwise hang the process instead of reaching `main`.
            let _stop = Stop(&done);
            f()
        })
    }

    fn drain_warnings(&self, reporter: &dyn Reporter) {
        let pending = std::mem::take(&mut self.warnings.lock().unwrap().0);
        for w in pending {
            reporter.warn(&w);
        }
    }

    /// Queues a warning for [`Client::observe`], once per text.
    pub(super) fn warn_once(&self, what: &str) {
        let mut w = self.warnings.lock().unwrap();
        if w.1.insert(what.to_string()) {
            w.0.push(what.to_string());
        }
    }

    /// Reads an error answer into a typed error.
    pub(crate) fn api_error(
        req_method: &http::Method,
        url: &str,
        mut resp: Response<Body>,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let retry_after = retry_after(&resp);
        let body = error_body(&mut resp);
        RegistryError::Api {
            method: req_method.to_string(),
            url: redact_url(url),
            status,
            errors: parse_error_body(&body),
            retry_after,
        }
    }
}

/// The most of an error answer's body airlock reads (its reasons are short).
pub(super) const ERROR_BODY_MAX: u64 = 64 * 1024;

/// An error answer's body, at most [`ERROR_BODY_MAX`] bytes of it; empty if it cannot be read.
pub(super) fn error_body(resp: &mut Response<Body>) -> Vec<u8> {
    resp.body_mut()
        .with_config()
        .limit(ERROR_BODY_MAX)
        .read_to_vec()
        .unwrap_or_default()
}

/// Which failures a call may retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Retryable {
    /// Connection failures, timeouts, 429, 5xx; a refused connection only where the host
    /// answered before.
    Normally,
    /// As `Normally`, but a refused connection is final (a redirect target).
    NotRefused,
    /// Only resets and the like: not refused, not timed out (the discovery probe).
    ResetsOnly,
}

/// One HTTP exchange, with everything decided.
pub(super) struct Call<'a> {
    pub(super) method: http::Method,
    pub(super) url: &'a str,
    pub(super) headers: &'a [(&'static str, String)],
    pub(super) authorization: Option<&'a str>,
    pub(super) body: &'a ReqBody<'a>,
    pub(super) kind: Kind,
}

impl<'a> Call<'a> {
    /// A GET with no headers.
    pub(super) fn get(url: &'a str, kind: Kind) -> Call<'a> {
        Call {
            method: http::Method::GET,
            url,
            headers: &[],
            authorization: None,
            body: &ReqBody::Empty,
            kind,
        }
    }
}

/// Tells [`Client::observe`]'s helper thread to end, when dropped.
struct Stop<'a>(&'a (Mutex<bool>, Condvar));

impl Drop for Stop<'_> {
    fn drop(&mut self) {
        *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.0 .1.notify_all();
    }
}

/// A reader made `Sync` for ureq's `Body` (only one thread reads it at a time).
struct SyncRead<R>(Mutex<R>);

impl<R: Read> Read for SyncRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.get_mut().unwrap().read(buf)
    }
}

/// `-vv`: one line per request, with what went each way. The URL is redacted (no user
/// information, no query values but digests and scopes: an upload location's signed state and
/// a token request's account stay out), and no header is logged, so no credential is either.
fn log_call(call: &Call<'_>, result: &Result<Response<Body>, ureq::Error>, took: Duration) {
    if !log::log_enabled!(log::Level::Debug) {
        return;
    }
    let sent = match call.body {
        ReqBody::Empty => String::new(),
        ReqBody::Bytes(b) => format!(", sent {} B", b.len()),
        ReqBody::Stream { len, .. } => format!(", sending {len} B"),
    };
    let answer = match result {
        Ok(resp) => {
            let length = resp
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .map_or("length not given".to_string(), |n| format!("{n} B"));
            format!("HTTP {}, answer {length}", resp.status().as_u16())
        }
        Err(e) => format!("failed: {e}"),
    };
    log::debug!(
        "{} {} -> {answer}{sent}, {} ms",
        call.method,
        redact_url(call.url),
        took.as_millis()
    );
}

fn https(registry: &str) -> Endpoint {
    Endpoint {
        scheme: "https",
        host: registry.to_string(),
    }
}

fn is_refused(e: &RegistryError) -> bool {
    matches!(e, RegistryError::Transport { cause, .. }
        if matches!(&**cause, ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused))
}

/// `100;w=21600` -> (100, 21600).
fn parse_ratelimit(v: Option<&str>) -> (Option<u32>, Option<u32>) {
    let Some(v) = v else { return (None, None) };
    let mut parts = v.split(';');
    let n = parts.next().and_then(|n| n.trim().parse().ok());
    let w = parts
        .filter_map(|p| p.trim().strip_prefix("w="))
        .find_map(|w| w.trim().parse().ok());
    (n, w)
}

pub(super) fn retry_after(resp: &Response<Body>) -> Option<u64> {
    resp.headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
}

/// `scheme://authority` of an absolute URL.
pub(crate) fn origin_of(url: &str) -> String {
    Endpoint::of_url(url).map(|e| e.base()).unwrap_or_default()
}

/// Resolves a `Location` header against the request URL (absolute, or absolute-path).
pub(crate) fn resolve_location(base: &str, location: &str) -> Option<String> {
    if location.starts_with("http://") || location.starts_with("https://") {
        return Some(location.to_string());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        let origin = origin_of(base);
        return (!origin.is_empty()).then(|| format!("{origin}{location}"));
    }
    None
}

/// Percent-encodes a query value.
pub(crate) fn encode_query(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let e = Endpoint::parse("http://127.0.0.1:5001/").unwrap();
        assert_eq!(e.base(), "http://127.0.0.1:5001");
        assert_eq!(e.hostname(), "127.0.0.1");
        let why = Endpoint::parse("127.0.0.1:5001").unwrap_err().to_string();
        assert!(why.ends_with("expected http:// or https://"), "{why}");
        let why = Endpoint::parse("http://a/b").unwrap_err().to_string();
        assert!(
            why.ends_with("expected only a host and an optional port"),
            "{why}"
        );
        assert_eq!(
            Endpoint::of_url("https://[::1]:5000/v2/x")
                .unwrap()
                .hostname(),
            "::1"
        );
        assert_eq!(
            Endpoint::of_url("https://Reg.Local/v2/")
                .unwrap()
                .hostname(),
            "reg.local"
        );
        assert!(Endpoint::of_url("ftp://x/y").is_none());
        let c = Client::new(Options {
            endpoints: vec![("docker.io".into(), e.clone())],
            ..Options::default()
        })
        .unwrap();
        assert_eq!(c.endpoint("docker.io"), e);
        assert_eq!(c.endpoint("gcr.io").base(), "https://gcr.io");
        let c = Client::new(Options::default()).unwrap();
        assert_eq!(
            c.endpoint("docker.io").base(),
            "https://registry-1.docker.io"
        );
    }

    #[test]
    fn locations() {
        assert_eq!(
            resolve_location("http://a:1/v2/x/blobs/y", "/v2/z").unwrap(),
            "http://a:1/v2/z"
        );
        assert_eq!(
            resolve_location("http://a:1/v2/x", "https://cdn/x?sig=1").unwrap(),
            "https://cdn/x?sig=1"
        );
        assert!(resolve_location("http://a/v2", "relative").is_none());
        assert!(resolve_location("http://a/v2", "//evil/x").is_none());
        assert_eq!(origin_of("http://A:1/x?y"), "http://a:1");
    }

    #[test]
    fn encodes_query_values() {
        assert_eq!(
            encode_query("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }

    #[test]
    fn a_panic_inside_observe_unwinds_instead_of_hanging() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let c = Client::new(Options::default()).unwrap();
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                c.observe(&crate::progress::Silent, || panic!("a bug"))
            }));
            let _ = tx.send(r.is_err());
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(true));
    }

    #[test]
    fn reads_docker_hub_ratelimit_headers() {
        assert_eq!(
            parse_ratelimit(Some("100;w=21600")),
            (Some(100), Some(21600))
        );
        assert_eq!(parse_ratelimit(Some("0;w=21600")).0, Some(0));
        assert_eq!(parse_ratelimit(Some("x")), (None, None));
        assert_eq!(parse_ratelimit(None), (None, None));
    }

    #[test]
    fn kinds_pick_the_time_bounds() {
        let req = |m: http::Method, path: &str| Req {
            method: m,
            registry: "r",
            repository: Some("x"),
            action: Action::Pull,
            path: path.into(),
            headers: vec![],
            body: ReqBody::Empty,
            follow_redirects: true,
        };
        assert_eq!(
            Kind::of(&req(http::Method::GET, "/v2/x/blobs/sha256:1")),
            Kind::BlobGet
        );
        assert_eq!(
            Kind::of(&req(http::Method::HEAD, "/v2/x/blobs/sha256:1")),
            Kind::Small
        );
        assert_eq!(
            Kind::of(&req(http::Method::GET, "/v2/x/manifests/1")),
            Kind::Small
        );
        assert_eq!(
            Kind::of(&req(http::Method::GET, "/v2/x/blobs/uploads/u")),
            Kind::Small
        );
        // A repository may be named `blobs`: its manifests are still small documents.
        assert_eq!(
            Kind::of(&req(http::Method::GET, "/v2/library/blobs/manifests/1")),
            Kind::Small
        );
        assert_eq!(
            Kind::of(&req(http::Method::GET, "/v2/blobs/blobs/sha256:1")),
            Kind::BlobGet
        );
    }
}
