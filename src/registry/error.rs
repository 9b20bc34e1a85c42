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

/// The codes of an API error, joined for display: `MANIFEST_UNKNOWN: manifest unknown`.
pub struct Codes<'a>(pub &'a [ErrorEntry]);

impl fmt::Display for Codes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        for (i, e) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            let msg: String = e.message.chars().take(200).collect();
            write!(f, "{} ({})", e.code, msg)?;
        }
        Ok(())
    }
}

/// Everything that can go wrong talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry answered with an error status.
    #[error("{method} {url}: HTTP {status}{codes}", codes = Codes(.errors))]
    Api {
        method: String,
        url: String,
        status: u16,
        errors: Vec<ErrorEntry>,
        /// Seconds from a `Retry-After` header, for 429 and 503.
        retry_after: Option<u64>,
    },
    /// The request never got an answer (connection refused, reset, TLS, timeout).
    /// `reason` says what the underlying error says (or a friendlier version of it), so that
    /// error is kept as `cause`, not chained: a chain would say it twice.
    #[error("{method} {url}: {reason}")]
    Transport {
        method: String,
        url: String,
        reason: String,
        cause: Box<ureq::Error>,
    },
    /// Reading a response body failed part way.
    #[error("{method} {url}: reading the response failed")]
    Body {
        method: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    /// Credentials were refused, or the registry wants credentials we do not have.
    #[error("{method} {url}: authentication failed (HTTP {status}){detail}")]
    Unauthorized {
        method: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// The token server's answer could not be used.
    #[error("token request to {realm} failed: {reason}")]
    Token { realm: String, reason: String },
    /// A Docker schema 1 manifest: its digest covers a signature, so it cannot be carried intact.
    #[error("{image}: the registry serves a Docker schema 1 manifest ({media_type}); airlock carries only schema 2 and OCI images — rebuild or re-push the image with a current client")]
    Schema1 { image: String, media_type: String },
    /// A manifest of a type airlock cannot carry.
    #[error("{image}: unsupported manifest media type {media_type:?}")]
    UnsupportedMediaType { image: String, media_type: String },
    /// The manifest bytes do not hash to what the registry or the reference says.
    #[error("{image}: manifest digest mismatch: {expected_from} says {expected}, the bytes hash to {actual}")]
    ManifestDigest {
        image: String,
        expected: Digest,
        expected_from: &'static str,
        actual: Digest,
    },
    /// A response was larger than airlock accepts for its kind.
    #[error("{method} {url}: response larger than the {limit} bytes accepted for {what}")]
    TooLarge {
        method: String,
        url: String,
        limit: u64,
        what: &'static str,
    },
    /// A header or redirect that does not make sense.
    #[error("{method} {url}: {reason}")]
    Protocol {
        method: String,
        url: String,
        reason: String,
    },
    /// Bad configuration (CA file, mirror spec, credentials file).
    #[error("{0}")]
    Config(String),
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
                            || k == "service" =>
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
