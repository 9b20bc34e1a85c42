//! Registry authentication: `WWW-Authenticate` challenges, the answer to them, and bearer
//! tokens.
//!
//! The flow is the distribution "token authentication" specification
//! (<https://distribution.github.io/distribution/spec/auth/token/>): a 401 carries a challenge,
//! `Bearer` sends us to a token server with `service` and `scope`, `Basic` wants the credentials
//! on every request. An identity token (OAuth2 refresh token) is exchanged with a `POST` of
//! `grant_type=refresh_token` (<https://distribution.github.io/distribution/spec/auth/oauth/>).
//!
//! All auth state is keyed by the **origin** answered (scheme, host, port): the host that
//! challenges is answered with its own credentials (credentials.rs) or anonymously, and a
//! token or Basic header is only ever sent back to the origin it was obtained for. A realm
//! that downgrades https to http, or points at a metadata address, is refused (guard.rs).
//! Secrets never reach `Debug`, `Display` or an error message.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use ureq::http::{self, Response};
use ureq::Body;

use super::credentials::{Credentials, Lookup};
use super::error::{redact_url, token_error_text, RegistryError};
use super::guard::{check_hop, Hop};
use super::transport::{
    encode_query, error_body, Call, Client, Endpoint, Kind, Req, ReqBody, Retryable,
};

impl Client {
    /// The `Authorization` for a request to `origin`: its own fresh token, or its own Basic
    /// credentials once it asked for them. Never another origin's.
    pub(super) fn authorization(&self, origin: &Endpoint, req: &Req<'_>) -> Option<String> {
        let key = token_key(origin, req);
        if let Some(t) = self.tokens.lock().unwrap().get(&key) {
            if t.is_fresh() {
                return Some(t.header());
            }
        }
        if self.basic.lock().unwrap().contains(&origin.base()) {
            return self
                .credentials_for(origin)
                .credentials
                .filter(|c| !c.is_identity_token())
                .map(|c| c.basic_header());
        }
        None
    }

    /// The credentials configured for `origin`'s host; a helper that failed on the way is
    /// reported once as a warning.
    fn credentials_for(&self, origin: &Endpoint) -> Lookup {
        let l = self.lookup(origin);
        if let Some(p) = &l.problem {
            self.warn_once(&format!(
                "{p}; continuing without credentials for {}",
                origin.host
            ));
        }
        l
    }

    /// The credentials configured for `origin`'s host, if they may go there. Credentials are
    /// keyed by host and port only (as Docker keys `config.json`), so over plain http they go
    /// only to an origin the operator chose plain http for (an `http://` rule,
    /// `--insecure-registry` naming it, or `--insecure`): a redirect from a plain-http registry to `http://ghcr.io` (which anyone
    /// on that link can inject) must not carry ghcr.io's credentials in the clear, nor hand
    /// them to a token realm that host picks.
    fn lookup(&self, origin: &Endpoint) -> Lookup {
        let chosen = self.opts.insecure_for(&origin.host)
            || self.opts.endpoints.iter().any(|(_, e)| e == origin);
        if origin.scheme == "http" && !chosen {
            return Lookup {
                problem: Some(format!(
                    "airlock sends no credentials over plain http to {}, where a registry's answer pointed it (name it with http:// in --mirror, or give --insecure-registry {} or --insecure, to allow it)",
                    origin.host, origin.host
                )),
                ..Lookup::default()
            };
        }
        self.opts.credentials.lookup(&origin.host)
    }

    /// Checks the credentials given for `registry` as `docker login` does: `GET /v2/`, answering
    /// its challenge (a token fetched from its realm with them, or Basic), then `GET /v2/`
    /// again with what they earned. A refusal is the error ([`RegistryError::Token`] or
    /// [`RegistryError::Unauthorized`]); a registry that asks for no credentials cannot
    /// check them ([`LoginCheck::NotAsked`]).
    pub fn check_login(&self, registry: &str) -> Result<LoginCheck, RegistryError> {
        let tokens = self.stats.token_fetches.load(Ordering::Relaxed);
        self.ping(registry)?;
        let asked = self.stats.token_fetches.load(Ordering::Relaxed) > tokens
            || !self.basic.lock().unwrap().is_empty();
        Ok(match asked {
            true => LoginCheck::Accepted,
            false => LoginCheck::NotAsked,
        })
    }

    /// Where the credentials for `origin` come from, for `-v` ("credentials for X from
    /// credential helper docker-credential-Y"); `None` when it has none. Never the value.
    pub fn credential_source(&self, origin: &Endpoint) -> Option<String> {
        self.opts
            .credentials
            .lookup(&origin.host)
            .source
            .map(|s| s.to_string())
    }

    /// Handles a 401 from `origin` (`own`: the registry's endpoint itself, not a redirect
    /// target): fetch a token (Bearer) or switch to Basic credentials.
    pub(super) fn answer_challenge(
        &self,
        req: &Req<'_>,
        url: &str,
        origin: &Endpoint,
        own: bool,
        resp: Response<Body>,
        had_auth: bool,
    ) -> Result<(), RegistryError> {
        let challenges = parse_challenges(
            resp.headers()
                .get_all(http::header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        );
        let lookup = self.credentials_for(origin);
        let creds = lookup.credentials.as_ref();
        let bearer = challenges.iter().find_map(|c| match c {
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => Some((realm, service, scope)),
            _ => None,
        });
        if let Some((realm, service, challenge_scope)) = bearer {
            check_hop(url, realm, self.opts.insecure_for_url(realm)).map_err(|reason| {
                RegistryError::Forbidden {
                    request: format!("{} {}", req.method, redact_url(url)),
                    refused: format!("{} {}", Hop::Realm.what(), redact_url(realm)),
                    reason,
                }
            })?;
            if let Some(to) = Endpoint::of_url(realm) {
                self.trust.adopt(&to.host, &origin.host);
            }
            // Whatever token we sent (if any) was not good enough: expired during a long push,
            // or scoped too narrowly. Fetch a new one; a second refusal ends in an error.
            let key = token_key(origin, req);
            self.tokens.lock().unwrap().remove(&key);
            // Ask for our own scope and whatever else the registry says it needs (a mount also
            // needs pull on the repository it mounts from). A redirect target names its own
            // repository (registry.k8s.io's backends do): only its scope is asked for then.
            let challenged: Vec<String> = challenge_scope
                .iter()
                .flat_map(|s| s.split(' '))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            let mut scopes: Vec<String> = req
                .repository
                .filter(|_| own || challenged.is_empty())
                .map(|r| format!("repository:{r}:{}", req.action.scope_actions()))
                .into_iter()
                .collect();
            for s in challenged {
                if !scopes.contains(&s) {
                    scopes.push(s);
                }
            }
            let token = self
                .fetch_token(realm, service.as_deref(), &scopes, creds)
                .map_err(|e| with_problem(e, &lookup))?;
            self.tokens.lock().unwrap().insert(key, token);
            return Ok(());
        }
        if challenges
            .iter()
            .any(|c| matches!(c, Challenge::Basic { .. }))
        {
            let base = origin.base();
            let already = self.basic.lock().unwrap().contains(&base);
            let usable = creds.filter(|c| !c.is_identity_token());
            if usable.is_some() && !(already && had_auth) {
                self.basic.lock().unwrap().insert(base);
                return Ok(());
            }
            let detail = if usable.is_none() {
                format!("; the registry wants a user name and password: give --username with --password-stdin, or log in so that ~/.docker/config.json has credentials for {}", origin.host)
            } else {
                "; the registry refused the user name and password".to_string()
            };
            return Err(self.unauthorized(req, url, origin, resp, &detail));
        }
        Err(self.unauthorized(
            req,
            url,
            origin,
            resp,
            "; the registry sent no challenge airlock understands",
        ))
    }

    /// A 401 as [`RegistryError::Unauthorized`], saying why there were no credentials when a
    /// credential helper failed.
    pub(super) fn unauthorized(
        &self,
        req: &Req<'_>,
        url: &str,
        origin: &Endpoint,
        resp: Response<Body>,
        detail: &str,
    ) -> RegistryError {
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
        let problem = self
            .lookup(origin)
            .problem
            .map(|p| format!("; {p}"))
            .unwrap_or_default();
        RegistryError::Unauthorized {
            method: req.method.to_string(),
            url: redact_url(url),
            status,
            detail: format!("{codes}{detail}{problem}"),
        }
    }

    /// Asks the token server at `realm` for a token: `GET` with Basic credentials (or none),
    /// or, for an identity token, the OAuth2 `POST` (falling back to `GET` with the token as
    /// the password when the server has no OAuth2 endpoint).
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        creds: Option<&Credentials>,
    ) -> Result<Token, RegistryError> {
        self.stats.token_fetches.fetch_add(1, Ordering::Relaxed);
        let terr = |reason: String| RegistryError::Token {
            realm: redact_url(realm),
            reason,
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(terr("the realm is not an http(s) URL".into()));
        }
        if let Some(c) = creds.filter(|c| c.is_identity_token()) {
            let mut form = vec![
                "grant_type=refresh_token".to_string(),
                "client_id=airlock".to_string(),
                format!("refresh_token={}", encode_query(c.password())),
            ];
            if let Some(s) = service {
                form.push(format!("service={}", encode_query(s)));
            }
            if !scopes.is_empty() {
                form.push(format!("scope={}", encode_query(&scopes.join(" "))));
            }
            let body = form.join("&").into_bytes();
            let headers = [(
                "content-type",
                "application/x-www-form-urlencoded".to_string(),
            )];
            let call = Call {
                method: http::Method::POST,
                url: realm,
                headers: &headers,
                authorization: None,
                body: &ReqBody::Bytes(&body),
                kind: Kind::Small,
            };
            let resp = self.token_call(&call, &terr)?;
            if !matches!(resp.status().as_u16(), 404 | 405) {
                return self.read_token(realm, resp, true);
            }
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
        let basic = creds.map(|c| match c.is_identity_token() && c.username.is_empty() {
            true => Credentials::new("<token>", c.password()).basic_header(),
            false => c.basic_header(),
        });
        let call = Call {
            authorization: basic.as_deref(),
            ..Call::get(&url, Kind::Small)
        };
        let resp = self.token_call(&call, &terr)?;
        self.read_token(realm, resp, creds.is_some())
    }

    fn token_call(
        &self,
        call: &Call<'_>,
        terr: &dyn Fn(String) -> RegistryError,
    ) -> Result<Response<Body>, RegistryError> {
        let mut budget = self.opts.retry.budget();
        self.call_with_retry(call, &mut budget, Retryable::Normally)
            .map_err(|e| match e {
                e @ (RegistryError::Tls { .. }
                | RegistryError::PlainHttp { .. }
                | RegistryError::Forbidden { .. }) => e,
                e => terr(e.to_string()),
            })
    }

    fn read_token(
        &self,
        realm: &str,
        mut resp: Response<Body>,
        with_creds: bool,
    ) -> Result<Token, RegistryError> {
        let terr = |reason: String| RegistryError::Token {
            realm: redact_url(realm),
            reason,
        };
        let status = resp.status().as_u16();
        if status != 200 {
            // Why, in the server's words (gcr.io: "Project kubernetes-helm has been deleted."):
            // a bounded read, and a bounded, escaped excerpt of it.
            let body = error_body(&mut resp);
            let said = token_error_text(&body)
                .map(|t| format!(" (it said: {t})"))
                .unwrap_or_default();
            return Err(terr(match status {
                401 | 403 => format!(
                    "HTTP {status}: the token server refused {}{said}",
                    if with_creds {
                        "the credentials"
                    } else {
                        "anonymous access; give credentials"
                    }
                ),
                _ => format!("HTTP {status}{said}"),
            }));
        }
        let body = resp
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| terr(format!("reading the answer: {e}")))?;
        Token::from_response(&redact_url(realm), &body)
    }
}

/// What [`Client::check_login`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginCheck {
    /// The registry asked for credentials and accepted them.
    Accepted,
    /// The registry answered without asking for any: they could not be checked.
    NotAsked,
}

/// Adds why there were no credentials (a failed helper) to a token error.
fn with_problem(e: RegistryError, lookup: &Lookup) -> RegistryError {
    match (e, &lookup.problem) {
        (RegistryError::Token { realm, reason }, Some(p)) if lookup.credentials.is_none() => {
            RegistryError::Token {
                realm,
                reason: format!("{reason} ({p})"),
            }
        }
        (e, _) => e,
    }
}

fn token_key(origin: &Endpoint, req: &Req<'_>) -> (String, String, super::transport::Action) {
    (
        origin.base(),
        req.repository.unwrap_or("").to_string(),
        req.action,
    )
}

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic {
        realm: Option<String>,
    },
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Parses the challenges of one or more `WWW-Authenticate` header values (RFC 7235 auth-params,
/// quoted strings with escapes). Unknown schemes are skipped.
pub fn parse_challenges<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<Challenge> {
    let mut out = Vec::new();
    for value in values {
        let mut rest = value.trim();
        while !rest.is_empty() {
            let scheme_end = rest
                .find(|c: char| c.is_whitespace() || c == ',')
                .unwrap_or(rest.len());
            let scheme = rest[..scheme_end].to_ascii_lowercase();
            rest = rest[scheme_end..].trim_start_matches([' ', '\t', ',']);
            let (params, after) = parse_params(rest);
            rest = after;
            match scheme.as_str() {
                "bearer" => {
                    if let Some(realm) = params.get("realm") {
                        out.push(Challenge::Bearer {
                            realm: realm.clone(),
                            service: params.get("service").cloned(),
                            scope: params.get("scope").cloned(),
                        });
                    }
                }
                "basic" => out.push(Challenge::Basic {
                    realm: params.get("realm").cloned(),
                }),
                _ => {}
            }
        }
    }
    out
}

/// Parses `k=v, k="v"` pairs until something that is not a pair (the next scheme).
fn parse_params(mut s: &str) -> (HashMap<String, String>, &str) {
    let mut params = HashMap::new();
    loop {
        s = s.trim_start_matches([' ', '\t', ',']);
        let Some(eq) = s.find('=') else { break };
        let key = &s[..eq];
        if key.is_empty() || key.contains([' ', '\t', ',', '"']) {
            break;
        }
        let mut v = &s[eq + 1..];
        let value;
        if let Some(q) = v.strip_prefix('"') {
            let mut buf = String::new();
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            buf.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => buf.push(c),
                }
            }
            value = buf;
            v = &q[end.min(q.len())..];
        } else {
            let end = v.find([',', ' ', '\t']).unwrap_or(v.len());
            value = v[..end].to_string();
            v = &v[end..];
        }
        params.insert(key.to_ascii_lowercase(), value);
        s = v;
    }
    (params, s)
}

/// A bearer token and when it stops being usable.
#[derive(Clone)]
pub struct Token {
    value: String,
    expires: Instant,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Token {
    /// Parses a token server answer (`token` or `access_token`, `expires_in`).
    pub fn from_response(realm: &str, body: &[u8]) -> Result<Token, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Answer {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let a: Answer = serde_json::from_slice(body).map_err(|e| RegistryError::Token {
            realm: realm.to_string(),
            reason: format!("the answer is not token JSON: {e}"),
        })?;
        let value = a
            .token
            .filter(|t| !t.is_empty())
            .or(a.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RegistryError::Token {
                realm: realm.to_string(),
                reason: "the answer carries no token".into(),
            })?;
        if value.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(RegistryError::Token {
                realm: realm.to_string(),
                reason: "the token contains characters not allowed in a header".into(),
            });
        }
        // The spec's default lifetime is 60 s; refresh a little early so a long upload does not
        // start with a token about to expire.
        let lifetime = a.expires_in.unwrap_or(60).clamp(1, 86_400);
        let margin = (lifetime / 10).min(10);
        Ok(Token {
            value,
            expires: Instant::now() + Duration::from_secs(lifetime - margin),
        })
    }

    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.expires
    }

    /// The value of an `Authorization: Bearer` header.
    pub fn header(&self) -> String {
        format!("Bearer {}", self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenges([
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        ]);
        assert_eq!(
            c,
            vec![Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }]
        );
        let c = parse_challenges([r#"Basic realm="airlock \"test\"""#]);
        assert_eq!(
            c,
            vec![Challenge::Basic {
                realm: Some("airlock \"test\"".into())
            }]
        );
        let c = parse_challenges([r#"Negotiate, Basic realm=x, Bearer realm="http://t/token""#]);
        assert_eq!(c.len(), 2);
        assert!(parse_challenges(["Bearer service=x"]).is_empty());
    }

    #[test]
    fn tokens_stay_out_of_debug() {
        let t = Token::from_response("r", br#"{"token":"canary-token"}"#).unwrap();
        assert!(!format!("{t:?}").contains("canary"));
        assert_eq!(t.header(), "Bearer canary-token");
    }

    #[test]
    fn refuses_useless_tokens() {
        for (answer, why) in [
            (&b"{}"[..], "the answer carries no token"),
            (b"not json", "the answer is not token JSON"),
            (
                br#"{"token":"a\r\nX-Evil: 1"}"#,
                "the token contains characters not allowed in a header",
            ),
        ] {
            let e = Token::from_response("r", answer).unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("token request to r failed: {why}")),
                "{e}"
            );
        }
        assert!(
            Token::from_response("r", br#"{"access_token":"abc","expires_in":300}"#)
                .unwrap()
                .is_fresh()
        );
    }
}
