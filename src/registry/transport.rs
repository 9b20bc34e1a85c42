//! Sending one request: endpoint choice, authentication, retries and redirects.
//!
//! Every request goes through [`Client::send`], which
//! - picks the endpoint (a `--mirror`, an explicit `http://` registry, or `https://host`),
//! - attaches a cached bearer token or Basic credentials,
//! - answers a 401 challenge once (fetching a token scoped to the repository and action),
//! - retries connection failures, 429 (honouring `Retry-After`) and 5xx with jittered backoff,
//!   never 4xx,
//! - follows redirects itself so that `Authorization` is only ever sent to the registry's own
//!   host (a blob redirect to a CDN or object store gets no credentials).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::http::{self, Response};
use ureq::{Body, SendBody};

use super::auth::{parse_challenges, Challenge, CredentialStore, Token};
use super::error::{parse_error_body, redact_url, RegistryError};

/// Retry policy for one request.
#[derive(Debug, Clone)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base: Duration,
    /// Upper bound for one delay (also caps `Retry-After`).
    pub max: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            base: Duration::from_millis(500),
            max: Duration::from_secs(10),
        }
    }
}

impl Retry {
    /// The delay before retry number `n` (1-based), with up to 50 % random jitter so parallel
    /// workers do not retry in lock step.
    pub fn delay(&self, n: u32, retry_after: Option<u64>) -> Duration {
        if let Some(s) = retry_after {
            return Duration::from_secs(s).min(self.max);
        }
        let exp = self
            .base
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(16));
        let d = exp.min(self.max);
        let jitter = (jitter_seed() % 1000) as u32; // 0..999 per mille
        d + d.mul_f64(f64::from(jitter) / 2000.0)
    }
}

fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.finish()
}

/// How the client reaches registries.
#[derive(Debug, Clone)]
pub struct Options {
    /// Allow plain http, and https without certificate verification.
    pub insecure: bool,
    /// A PEM file of extra CA certificates to trust (a private registry's CA).
    pub ca_file: Option<PathBuf>,
    /// `registry -> base URL` rules: `--mirror docker.io=http://127.0.0.1:5001`, and a target
    /// given with an explicit scheme (`--registry http://127.0.0.1:5000`).
    pub endpoints: Vec<(String, Endpoint)>,
    pub credentials: CredentialStore,
    pub retry: Retry,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Longest wait for any single read or write on a connection (catches stalls).
    pub io_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            insecure: false,
            ca_file: None,
            endpoints: Vec::new(),
            credentials: CredentialStore::new(),
            retry: Retry::default(),
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
        }
    }
}

/// A registry's base URL: scheme and authority only.
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

    /// `scheme://host`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }
}

/// What a request needs permission for; it selects the token scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Pull,
    Push,
}

impl Action {
    fn scope_actions(self) -> &'static str {
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

/// A blocking registry client. Cheap to share across threads (`&Client` is `Sync`).
pub struct Client {
    agent: ureq::Agent,
    /// For `--insecure`: TLS without verification.
    agent_noverify: Option<ureq::Agent>,
    opts: Options,
    tokens: Mutex<HashMap<(String, String, Action), Token>>,
    /// Registries that answered a Basic challenge: credentials go with every request.
    basic: Mutex<HashSet<String>>,
    /// `--insecure` registries found to speak plain http.
    plain_http: Mutex<HashSet<String>>,
    stats: Arc<Stats>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("opts", &self.opts).finish()
    }
}

impl Client {
    /// Builds the client and its agents.
    pub fn new(opts: Options) -> Result<Client, RegistryError> {
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(path) = &opts.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                RegistryError::Config(format!("cannot read CA file {}: {e}", path.display()))
            })?;
            let mut certs = Vec::new();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(RegistryError::Config(format!(
                            "CA file {} is not valid PEM: {e}",
                            path.display()
                        )))
                    }
                }
            }
            if certs.is_empty() {
                return Err(RegistryError::Config(format!(
                    "CA file {} holds no certificate",
                    path.display()
                )));
            }
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&certs));
        } else {
            tls = tls.root_certs(ureq::tls::RootCerts::PlatformVerifier);
        }
        let agent = build_agent(&opts, tls.build());
        let agent_noverify = opts.insecure.then(|| {
            build_agent(
                &opts,
                ureq::tls::TlsConfig::builder()
                    .disable_verification(true)
                    .build(),
            )
        });
        Ok(Client {
            agent,
            agent_noverify,
            opts,
            tokens: Mutex::new(HashMap::new()),
            basic: Mutex::new(HashSet::new()),
            plain_http: Mutex::new(HashSet::new()),
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

    /// Where requests for `registry` go.
    pub fn endpoint(&self, registry: &str) -> Endpoint {
        if let Some((_, e)) = self.opts.endpoints.iter().find(|(r, _)| r == registry) {
            return e.clone();
        }
        if registry == "docker.io" {
            return Endpoint {
                scheme: "https",
                host: "registry-1.docker.io".into(),
            };
        }
        let plain = self.plain_http.lock().unwrap().contains(registry);
        Endpoint {
            scheme: if plain { "http" } else { "https" },
            host: registry.to_string(),
        }
    }

    /// Sends a request, authenticating and retrying as needed. The response status is any
    /// status but 401 (turned into [`RegistryError::Unauthorized`]) and redirects (followed).
    pub(crate) fn send(&self, req: &Req<'_>) -> Result<Response<Body>, RegistryError> {
        let endpoint = self.endpoint(req.registry);
        let mut url = if req.path.starts_with("http://") || req.path.starts_with("https://") {
            let other = Endpoint::parse(&origin_of(&req.path)).ok();
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
            req.path.clone()
        } else {
            format!("{}{}", endpoint.base(), req.path)
        };
        let mut auth_rounds = 0;
        let mut redirects = 0;
        // Authorization goes only to the endpoint's own host.
        let mut on_registry_host = true;
        loop {
            let authorization = if on_registry_host {
                self.authorization(req, &endpoint)
            } else {
                None
            };
            let resp = match self.send_with_retry(req, &url, authorization.as_deref()) {
                Err(e @ RegistryError::Transport { .. })
                    if self.opts.insecure
                        && url.starts_with("https://")
                        && on_registry_host
                        && !self.opts.endpoints.iter().any(|(r, _)| r == req.registry) =>
                {
                    // `--insecure`: a registry that does not speak TLS at all is tried over
                    // plain http, once, and remembered.
                    let http_url = format!("http://{}", &url["https://".len()..]);
                    match self.send_once(req, &http_url, authorization.as_deref()) {
                        Ok(r) => {
                            self.plain_http
                                .lock()
                                .unwrap()
                                .insert(req.registry.to_string());
                            url = http_url;
                            r
                        }
                        Err(_) => return Err(e),
                    }
                }
                r => r?,
            };
            let status = resp.status().as_u16();
            if status == 401 && on_registry_host {
                auth_rounds += 1;
                if auth_rounds > 2 {
                    return Err(unauthorized(req, &url, resp, ""));
                }
                let challenges = parse_challenges(
                    resp.headers()
                        .get_all(http::header::WWW_AUTHENTICATE)
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                );
                self.answer_challenge(req, &url, resp, &challenges, authorization.is_some())?;
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
                url = resolve_location(&url, &location).ok_or_else(|| RegistryError::Protocol {
                    method: req.method.to_string(),
                    url: redact_url(&url),
                    reason: format!(
                        "redirect to an unusable location {:?}",
                        redact_url(&location)
                    ),
                })?;
                on_registry_host = origin_of(&url) == endpoint.base();
                continue;
            }
            return Ok(resp);
        }
    }

    fn authorization(&self, req: &Req<'_>, endpoint: &Endpoint) -> Option<String> {
        let key = token_key(req);
        if let Some(t) = self.tokens.lock().unwrap().get(&key) {
            if t.is_fresh() {
                return Some(t.header());
            }
        }
        if self.basic.lock().unwrap().contains(&endpoint.host) {
            return self
                .opts
                .credentials
                .get(req.registry)
                .map(|c| c.basic_header());
        }
        None
    }

    /// Handles a 401: fetch a token (Bearer) or switch to Basic credentials.
    fn answer_challenge(
        &self,
        req: &Req<'_>,
        url: &str,
        resp: Response<Body>,
        challenges: &[Challenge],
        had_auth: bool,
    ) -> Result<(), RegistryError> {
        let creds = self.opts.credentials.get(req.registry);
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            _ => None,
        });
        if let Some((realm, service, challenge_scope)) = bearer {
            // Whatever token we sent (if any) was not good enough: expired during a long push,
            // or scoped too narrowly. Fetch a new one; a second refusal ends in an error.
            let key = token_key(req);
            self.tokens.lock().unwrap().remove(&key);
            // Ask for our own scope and whatever else the registry says it needs (a mount also
            // needs pull on the repository it mounts from).
            let mut scopes: Vec<String> = req
                .repository
                .map(|r| format!("repository:{r}:{}", req.action.scope_actions()))
                .into_iter()
                .collect();
            for s in challenge_scope.iter().flat_map(|s| s.split(' ')) {
                if !s.is_empty() && !scopes.iter().any(|have| have == s) {
                    scopes.push(s.to_string());
                }
            }
            let token = self.fetch_token(
                realm,
                service.as_deref(),
                &scopes,
                creds.map(|c| c.basic_header()),
            )?;
            self.tokens.lock().unwrap().insert(key, token);
            return Ok(());
        }
        if challenges
            .iter()
            .any(|c| matches!(c, Challenge::Basic { .. }))
        {
            let host = self.endpoint(req.registry).host;
            let already = self.basic.lock().unwrap().contains(&host);
            if creds.is_some() && !(already && had_auth) {
                self.basic.lock().unwrap().insert(host);
                return Ok(());
            }
            let detail = if creds.is_none() {
                format!("; the registry wants a user name and password: give --username with --password-stdin, or log in so that ~/.docker/config.json has credentials for {}", req.registry)
            } else {
                "; the registry refused the user name and password".to_string()
            };
            return Err(unauthorized(req, url, resp, &detail));
        }
        Err(unauthorized(
            req,
            url,
            resp,
            "; the registry sent no challenge airlock understands",
        ))
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        basic: Option<String>,
    ) -> Result<Token, RegistryError> {
        self.stats.token_fetches.fetch_add(1, Ordering::Relaxed);
        let terr = |reason: String| RegistryError::Token {
            realm: redact_url(realm),
            reason,
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(terr("the realm is not an http(s) URL".into()));
        }
        let mut query = Vec::new();
        if let Some(s) = service {
            query.push(format!("service={}", encode_query(s)));
        }
        for s in scopes {
            query.push(format!("scope={}", encode_query(s)));
        }
        let url = if query.is_empty() {
            realm.to_string()
        } else {
            let sep = if realm.contains('?') { '&' } else { '?' };
            format!("{realm}{sep}{}", query.join("&"))
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut b = http::Request::get(&url);
            if let Some(h) = &basic {
                b = b.header(http::header::AUTHORIZATION, h);
            }
            let request = b.body(SendBody::none()).map_err(|e| terr(e.to_string()))?;
            self.stats.requests.fetch_add(1, Ordering::Relaxed);
            let agent = self.agent_for(&url);
            match agent.run(request) {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if (status == 429 || status >= 500) && attempt < self.opts.retry.attempts {
                        self.stats.retries.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(self.opts.retry.delay(attempt, retry_after(&resp)));
                        continue;
                    }
                    if status == 401 || status == 403 {
                        return Err(terr(format!(
                            "HTTP {status}: the token server refused {}",
                            if basic.is_some() {
                                "the user name and password"
                            } else {
                                "anonymous access; give credentials"
                            }
                        )));
                    }
                    if status != 200 {
                        return Err(terr(format!("HTTP {status}")));
                    }
                    let body = resp
                        .body_mut()
                        .with_config()
                        .limit(1 << 20)
                        .read_to_vec()
                        .map_err(|e| terr(format!("reading the answer: {e}")))?;
                    return Token::from_response(&redact_url(realm), &body);
                }
                Err(e) if attempt < self.opts.retry.attempts && is_transient(&e) => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(self.opts.retry.delay(attempt, None));
                }
                Err(e) => return Err(terr(e.to_string())),
            }
        }
    }

    fn agent_for(&self, url: &str) -> &ureq::Agent {
        match &self.agent_noverify {
            Some(a) if url.starts_with("https://") => a,
            _ => &self.agent,
        }
    }

    fn send_with_retry(
        &self,
        req: &Req<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, RegistryError> {
        // A streamed body is retried by its caller, which knows whether the bytes were bad.
        let attempts = match req.body {
            ReqBody::Stream { .. } => 1,
            _ => self.opts.retry.attempts,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self.send_once(req, url, authorization);
            let retry_after_secs = match &result {
                Ok(resp) => {
                    let s = resp.status().as_u16();
                    if s == 429 || s >= 500 {
                        Some(retry_after(resp))
                    } else {
                        None
                    }
                }
                Err(e) if e.is_temporary() => Some(None),
                Err(_) => None,
            };
            match retry_after_secs {
                Some(after) if attempt < attempts && crate::interrupt::received().is_none() => {
                    self.stats.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(self.opts.retry.delay(attempt, after));
                }
                _ => return result,
            }
        }
    }

    fn send_once(
        &self,
        req: &Req<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<Response<Body>, RegistryError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let mut b = http::Request::builder().method(req.method.clone()).uri(url);
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        if let Some(a) = authorization {
            b = b.header(http::header::AUTHORIZATION, a);
        }
        let body = match &req.body {
            ReqBody::Empty => {
                if req.method == http::Method::PUT
                    || req.method == http::Method::POST
                    || req.method == http::Method::PATCH
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
                    method: req.method.to_string(),
                    url: redact_url(url),
                    source: e,
                })?;
                SendBody::from_owned_reader(r)
            }
        };
        let request = b.body(body).map_err(|e| RegistryError::Protocol {
            method: req.method.to_string(),
            url: redact_url(url),
            reason: format!("cannot build the request: {e}"),
        })?;
        self.agent_for(url)
            .run(request)
            .map_err(|e| RegistryError::Transport {
                method: req.method.to_string(),
                url: redact_url(url),
                reason: describe(&e),
                cause: Box::new(e),
            })
    }

    /// Reads an error answer into a typed error.
    pub(crate) fn api_error(
        req_method: &http::Method,
        url: &str,
        mut resp: Response<Body>,
    ) -> RegistryError {
        let status = resp.status().as_u16();
        let retry_after = retry_after(&resp);
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .unwrap_or_default();
        RegistryError::Api {
            method: req_method.to_string(),
            url: redact_url(url),
            status,
            errors: parse_error_body(&body),
            retry_after,
        }
    }
}

fn build_agent(opts: &Options, tls: ureq::tls::TlsConfig) -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("airlock/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(opts.connect_timeout))
        .timeout_per_read(Some(opts.io_timeout))
        .timeout_per_write(Some(opts.io_timeout))
        .max_idle_connections_per_host(16)
        .tls_config(tls)
        .build();
    ureq::Agent::new_with_config(config)
}

fn token_key(req: &Req<'_>) -> (String, String, Action) {
    (
        req.registry.to_string(),
        req.repository.unwrap_or("").to_string(),
        req.action,
    )
}

fn unauthorized(req: &Req<'_>, url: &str, resp: Response<Body>, detail: &str) -> RegistryError {
    let status = resp.status().as_u16();
    let api = Client::api_error(&req.method, url, resp);
    let codes = match &api {
        RegistryError::Api { errors, .. } if !errors.is_empty() => {
            format!(
                " [{}]",
                errors
                    .iter()
                    .map(|e| e.code.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        _ => String::new(),
    };
    RegistryError::Unauthorized {
        method: req.method.to_string(),
        url: redact_url(url),
        status,
        detail: format!("{codes}{detail}"),
    }
}

fn retry_after(resp: &Response<Body>) -> Option<u64> {
    resp.headers()
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
}

fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
    )
}

/// A short human reason for a transport failure.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is the registry running, and is the host:port right?)".into()
        }
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        ureq::Error::HostNotFound => "host not found".into(),
        other => other.to_string(),
    }
}

/// `scheme://authority` of an absolute URL.
pub(crate) fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return String::new();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}", rest[..end].to_ascii_lowercase())
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
        let why = Endpoint::parse("127.0.0.1:5001").unwrap_err().to_string();
        assert!(why.ends_with("expected http:// or https://"), "{why}");
        let why = Endpoint::parse("http://a/b").unwrap_err().to_string();
        assert!(
            why.ends_with("expected only a host and an optional port"),
            "{why}"
        );
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
    fn backoff_grows_and_caps() {
        let r = Retry {
            attempts: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(300),
        };
        assert!(r.delay(1, None) >= Duration::from_millis(100));
        assert!(r.delay(1, None) <= Duration::from_millis(150));
        assert!(r.delay(5, None) <= Duration::from_millis(450));
        assert_eq!(r.delay(1, Some(100)), Duration::from_millis(300));
        assert_eq!(
            encode_query("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
    }
}
