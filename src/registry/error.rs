//! Typed registry errors: what was asked (method, redacted URL), what the registry said.
//!
//! Registries answer failures with `{"errors":[{"code":..,"message":..}]}`
//! (distribution-spec, "Error Codes"); that body becomes [`RegistryError::Api`], which prints the
//! method, URL and codes and knows whether retrying can help (ggcr `transport.Error`).

use std::fmt;

use crate::digest::Digest;

/// One entry of a registry error body.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub struct ErrorEntry {
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub message: String,
}

#[derive(serde::Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

/// Parses a registry error body; anything else gives an empty list.
pub fn parse_error_body(body: &[u8]) -> Vec<ErrorEntry> {
    serde_json::from_slice::<ErrorBody>(body)
        .map(|b| b.errors)
        .unwrap_or_default()
}

/// At most this many characters of what a server said are kept in an error.
const EXCERPT_CHARS: usize = 200;

/// `text` cut to `max` characters (an ellipsis marks the cut), with control characters escaped
/// (`\n`, `\u{1b}`): what a server says reaches the operator's terminal, and must neither run
/// on nor drive it.
pub fn excerpt(text: &str, max: usize) -> String {
    let cut: String = text.chars().take(max).collect();
    let mut out = crate::escape::escape(&cut).into_owned();
    if text.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// What a token server said in its error body, for the operator to read: the distribution
/// `{"errors":[{"code","message"}]}` entries (gcr.io: `DENIED: Project kubernetes-helm has
/// been deleted.`), Docker Hub's `{"details": ..}` or OAuth2's `error_description`. Bounded and
/// escaped ([`excerpt`]); `None` when the body says nothing readable.
pub fn token_error_text(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Said {
        #[serde(default)]
        errors: Vec<ErrorEntry>,
        details: Option<String>,
        error: Option<String>,
        error_description: Option<String>,
    }
    let said: Said = serde_json::from_slice(body).ok()?;
    let mut parts: Vec<String> = said
        .errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .filter(|p| !p.is_empty())
        .collect();
    parts.extend(said.details);
    parts.extend(said.error_description.or(said.error));
    let text = parts.join("; ");
    (!text.trim().is_empty()).then(|| excerpt(text.trim(), EXCERPT_CHARS))
}

/// The codes of an API error, joined for display: `MANIFEST_UNKNOWN: manifest unknown`.
pub struct Codes<'a>(pub &'a [ErrorEntry]);

impl fmt::Display for Codes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        for (i, e) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(
                f,
                "{} ({})",
                excerpt(&e.code, EXCERPT_CHARS),
                excerpt(&e.message, EXCERPT_CHARS)
            )?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error status.
    #[error("{method} {url_e}: HTTP {status}{codes}", codes = Codes(.errors), url_e = crate::escape::Escaped(.url))]
    Api {
        method: String,
        url: String,
        status: u16,
        errors: Vec<ErrorEntry>,
        /// Seconds from a `Retry-After` header, for 429 and 503.
        retry_after: Option<u64>,
    },
    /// The request never got an answer (connection refused, reset, timeout).
    /// `reason` says what the underlying error says (or a friendlier version of it), so that
    /// error is kept as `cause`, not chained: a chain would say it twice. (`Arc`: a failed
    /// scheme discovery is kept and given to every later request for that registry.)
    #[error("{method} {url_e}: {reason_e}", url_e = crate::escape::Escaped(.url), reason_e = crate::escape::Escaped(.reason))]
    Transport {
        method: String,
        url: String,
        reason: String,
        cause: std::sync::Arc<ureq::Error>,
    },
    /// An https request was answered in plain http: the registry does not speak TLS.
    #[error("{host_e} answers plain http, not https: give --insecure-registry {host_e} to use plain http for it (--insecure for every registry), or name it with http:// (--registry http://{host_e}; for pack, --mirror {host_e}=http://{host_e})", host_e = crate::escape::Escaped(.host))]
    PlainHttp { host: String },
    /// The TLS handshake failed for a reason retrying cannot fix (certificate, protocol).
    /// `fix` says which flag or file helps.
    #[error("TLS with {host_e} failed: {problem_e}; {fix_e}", host_e = crate::escape::Escaped(.host), problem_e = crate::escape::Escaped(.problem), fix_e = crate::escape::Escaped(.fix))]
    Tls {
        host: String,
        problem: String,
        fix: String,
    },
    /// airlock refused to go where an answer pointed it: a redirect, a token realm or an
    /// upload location that downgrades https to http, or leads to a link-local or cloud
    /// metadata address.
    #[error("{request_e}: refused {refused_e}: {reason_e}", reason_e = crate::escape::Escaped(.reason), request_e = crate::escape::Escaped(.request), refused_e = crate::escape::Escaped(.refused))]
    Forbidden {
        /// `GET https://reg/v2/...` (redacted).
        request: String,
        /// `the redirect to http://...`, `the token realm ...`, `the upload location ...`.
        refused: String,
        reason: String,
    },
    /// Docker Hub's pull limit: waiting minutes and retrying does not help.
    #[error("{request_e}: HTTP 429: the pull rate limit of {host_e} is reached{window}; retrying now cannot help: log in for a higher limit (`docker login`, which airlock reads, or --login with --username), or wait for the window to pass", window = PullWindow(*.limit, *.window_secs), request_e = crate::escape::Escaped(.request), host_e = crate::escape::Escaped(.host))]
    PullLimit {
        /// `GET https://reg/v2/...` (redacted).
        request: String,
        host: String,
        /// Pulls allowed per window (`ratelimit-limit: 100;w=21600`).
        limit: Option<u32>,
        window_secs: Option<u32>,
    },
    /// A blob answer whose length disagrees with its descriptor: retrying cannot fix it.
    #[error(
        "blob {digest}: the registry announces {announced} bytes, the manifest says {expected}"
    )]
    BlobSize {
        digest: Digest,
        announced: u64,
        expected: u64,
    },
    /// Reading a response body failed part way.
    #[error("{method} {url_e}: reading the response failed", url_e = crate::escape::Escaped(.url))]
    Body {
        method: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// Credentials were refused, or the registry wants credentials we do not have.
    #[error("{method} {url_e}: authentication failed (HTTP {status}){detail_e}", url_e = crate::escape::Escaped(.url), detail_e = crate::escape::Escaped(.detail))]
    Unauthorized {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// The token server's answer could not be used.
    #[error("token request to {realm_e} failed: {reason_e}", reason_e = crate::escape::Escaped(.reason), realm_e = crate::escape::Escaped(.realm))]
    Token { realm: String, reason: String },
    /// A Docker schema 1 manifest: its digest covers a signature, so it cannot be carried intact.
    #[error("{image_e}: the registry serves a Docker schema 1 manifest ({media_type_e}); airlock carries only schema 2 and OCI images — rebuild or re-push the image with a current client", image_e = crate::escape::Escaped(.image), media_type_e = crate::escape::Escaped(.media_type))]
    Schema1 { image: String, media_type: String },
    /// A manifest of a type airlock cannot carry.
    #[error("{image_e}: unsupported manifest media type {media_type:?}", image_e = crate::escape::Escaped(.image))]
    UnsupportedMediaType { image: String, media_type: String },
    /// The manifest bytes do not hash to what the registry or the reference says.
    #[error("{image_e}: manifest digest mismatch: {expected_from} says {expected}, the bytes hash to {actual}", image_e = crate::escape::Escaped(.image))]
    ManifestDigest {
        image: String,
        expected: Digest,
        expected_from: &'static str,
        actual: Digest,
    },
    /// A response was larger than airlock accepts for its kind.
    #[error("{method} {url_e}: response larger than the {limit} bytes accepted for {what}", url_e = crate::escape::Escaped(.url))]
    TooLarge {
        method: String,
        url: String,
        limit: u64,
        what: &'static str,
    },
    /// A header or redirect that does not make sense.
    #[error("{method} {url_e}: {reason_e}", url_e = crate::escape::Escaped(.url), reason_e = crate::escape::Escaped(.reason))]
    Protocol {
        method: String,
        url: String,
        reason: String,
    },
    /// Bad configuration (CA file, mirror spec, credentials file).
    #[error("{}", crate::escape::Escaped(.0))]
    Config(String),
}

/// ` (100 pulls per 6 h)`, from Docker Hub's `ratelimit-limit` header.
struct PullWindow(Option<u32>, Option<u32>);

impl fmt::Display for PullWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (Some(n), Some(w)) if w % 3600 == 0 => write!(f, " ({n} pulls per {} h)", w / 3600),
            (Some(n), Some(w)) => write!(f, " ({n} pulls per {w} s)"),
            (Some(n), None) => write!(f, " ({n} pulls)"),
            _ => Ok(()),
        }
    }
}

impl RegistryError {
    /// True when trying again may succeed: connection problems, 429, 5xx.
    pub fn is_temporary(&self) -> bool {
        match self {
            RegistryError::Api { status, .. } => *status == 429 || *status >= 500,
            RegistryError::Transport { .. } | RegistryError::Body { .. } => true,
            _ => false,
        }
    }

    /// A copy of an error that can be given again to a later request (a failed scheme
    /// discovery); `None` for errors that hold a stream's state.
    pub(crate) fn try_clone(&self) -> Option<RegistryError> {
        Some(match self {
            RegistryError::Transport {
                method,
                url,
                reason,
                cause,
            } => RegistryError::Transport {
                method: method.clone(),
                url: url.clone(),
                reason: reason.clone(),
                cause: cause.clone(),
            },
            RegistryError::PlainHttp { host } => RegistryError::PlainHttp { host: host.clone() },
            RegistryError::Tls { host, problem, fix } => RegistryError::Tls {
                host: host.clone(),
                problem: problem.clone(),
                fix: fix.clone(),
            },
            RegistryError::Forbidden {
                request,
                refused,
                reason,
            } => RegistryError::Forbidden {
                request: request.clone(),
                refused: refused.clone(),
                reason: reason.clone(),
            },
            RegistryError::Api {
                method,
                url,
                status,
                errors,
                retry_after,
            } => RegistryError::Api {
                method: method.clone(),
                url: url.clone(),
                status: *status,
                errors: errors.clone(),
                retry_after: *retry_after,
            },
            _ => return None,
        })
    }

    /// The HTTP status, where there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Api { status, .. } | RegistryError::Unauthorized { status, .. } => {
                Some(*status)
            }
            _ => None,
        }
    }

    /// True for 404-style answers (unknown manifest, blob or repository).
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

/// Removes query values (upload `_state` tokens, signed redirect parameters) and any userinfo
/// from a URL before it is shown.
pub fn redact_url(url: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // Drop `user:pass@` from the authority.
    let base = match base.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority.rsplit('@').next().unwrap_or(authority);
            format!("{scheme}://{host}{path}")
        }
        None => base.to_string(),
    };
    match query {
        None => base,
        Some(q) => {
            let keys: Vec<String> = q
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _))
                        if k == "digest"
                            || k == "mount"
                            || k == "from"
                            || k == "scope"
                            || k == "service"
                            || k == "n"
                            || k == "last" =>
                    {
                        kv.to_string()
                    }
                    Some((k, _)) => format!("{k}=<redacted>"),
                    None => kv.to_string(),
                })
                .collect();
            format!("{base}?{}", keys.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_error_bodies() {
        let e = parse_error_body(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
        );
        assert_eq!(e[0].code, "MANIFEST_UNKNOWN");
        assert!(parse_error_body(b"<html>").is_empty());
        let err = RegistryError::Api {
            method: "GET".into(),
            url: "http://r/v2/x/manifests/y".into(),
            status: 404,
            errors: e,
            retry_after: None,
        };
        assert_eq!(
            err.to_string(),
            "GET http://r/v2/x/manifests/y: HTTP 404: MANIFEST_UNKNOWN (manifest unknown)"
        );
        assert!(!err.is_temporary());
        assert!(err.is_not_found());
    }

    #[test]
    fn token_errors_keep_what_the_server_said_bounded_and_escaped() {
        assert_eq!(
            token_error_text(
                br#"{"errors":[{"code":"DENIED","message":"Project kubernetes-helm has been deleted."}]}"#
            )
            .as_deref(),
            Some("DENIED: Project kubernetes-helm has been deleted.")
        );
        assert_eq!(
            token_error_text(br#"{"details":"incorrect username or password"}"#).as_deref(),
            Some("incorrect username or password")
        );
        assert_eq!(
            token_error_text(br#"{"error":"invalid_grant","error_description":"expired"}"#)
                .as_deref(),
            Some("expired")
        );
        for nothing in [&b"<html>denied</html>"[..], b"{}", br#"{"errors":[]}"#, b""] {
            assert_eq!(token_error_text(nothing), None);
        }
        // A hostile body can neither drive the terminal nor flood it.
        let long = format!(r#"{{"details":"\u001b[2Jgone\n{}"}}"#, "x".repeat(10_000));
        let t = token_error_text(long.as_bytes()).unwrap();
        assert!(t.starts_with("\\u{1b}[2Jgone\\nxxx"), "{t}");
        assert!(!t.chars().any(char::is_control), "{t}");
        // 200 characters kept, two of them escaped (`\u{1b}`, `\n`), and the ellipsis.
        assert_eq!(t.chars().count(), EXCERPT_CHARS + 5 + 1 + 1);
        assert!(t.ends_with('…'));
    }

    #[test]
    fn redacts_urls() {
        assert_eq!(
            redact_url("http://u:p@h:5000/v2/x/blobs/uploads/abc?_state=SECRET&digest=sha256:1"),
            "http://h:5000/v2/x/blobs/uploads/abc?_state=<redacted>&digest=sha256:1"
        );
        assert_eq!(redact_url("https://h/v2/"), "https://h/v2/");
        assert_eq!(
            redact_url("https://cdn/x?X-Amz-Signature=abc"),
            "https://cdn/x?X-Amz-Signature=<redacted>"
        );
    }
}
