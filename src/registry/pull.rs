//! The pull side of the distribution API: `/v2/`, manifests and blobs.

use std::io::Read;

use ureq::http::{self, header};

use super::error::{redact_url, RegistryError};
use super::transport::{encode_query, Action, Client, Req, ReqBody};
use crate::digest::Digest;
use crate::manifest::MAX_MANIFEST_BYTES;
use crate::media_type::{self, Kind};
use crate::reference::Reference;

/// A manifest or index exactly as the registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The raw bytes: never re-serialised, so the digest stays the registry's.
    pub raw: Vec<u8>,
    pub media_type: String,
    /// The digest the registry gives it: the sha256 of the bytes, or for a signed schema 1
    /// manifest the sha256 of its JWS payload ([`crate::convert::schema1`]).
    pub digest: Digest,
}

/// What a `HEAD` of a manifest tells, without a pull being counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// Docker Hub's pull allowance, when the registry sends its headers.
    pub rate_limit: Option<RateLimit>,
}

/// Docker Hub's `ratelimit-limit` and `ratelimit-remaining` headers (`100;w=21600`): manifest
/// `GET`s allowed in the window and how many remain. A `HEAD` does not count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub limit: Option<u64>,
    pub remaining: u64,
    /// The window in seconds (`w=`), if given.
    pub window: Option<u64>,
}

impl RateLimit {
    /// Reads the headers of a response; `None` when it carries no `ratelimit-remaining`.
    fn from_headers(h: &http::HeaderMap) -> Option<RateLimit> {
        let parse = |name: &str| -> Option<(u64, Option<u64>)> {
            let v = h.get(name)?.to_str().ok()?;
            let mut parts = v.split(';');
            let n = parts.next()?.trim().parse().ok()?;
            let w = parts
                .find_map(|p| p.trim().strip_prefix("w="))
                .and_then(|w| w.trim().parse().ok());
            Some((n, w))
        };
        let (remaining, window) = parse("ratelimit-remaining")?;
        Some(RateLimit {
            limit: parse("ratelimit-limit").map(|(n, _)| n),
            remaining,
            window,
        })
    }
}

impl Manifest {
    pub fn kind(&self) -> Kind {
        media_type::kind(&self.media_type)
    }
}

/// A blob body being streamed from the registry.
pub struct BlobStream {
    pub reader: Box<dyn Read + Send + 'static>,
    /// The Content-Length the registry announced, if any.
    pub content_length: Option<u64>,
}

impl Client {
    /// `GET /v2/`: checks that the registry answers and that our credentials (if any) work.
    pub fn ping(&self, registry: &str) -> Result<(), RegistryError> {
        let req = Req {
            method: http::Method::GET,
            registry,
            repository: None,
            action: Action::Pull,
            path: "/v2/".into(),
            headers: vec![],
            body: ReqBody::Empty,
            follow_redirects: true,
        };
        let resp = self.send(&req)?;
        if resp.status().as_u16() != 200 {
            let url = format!("{}/v2/", self.endpoint(registry).base());
            return Err(Client::api_error(&req.method, &url, resp));
        }
        Ok(())
    }

    /// `GET /v2/<name>/manifests/<ref>` with every type airlock reads in `Accept`.
    ///
    /// The digest (of the bytes, or of a signed schema 1 manifest's JWS payload) is checked
    /// against `Docker-Content-Digest` and, when pulling by digest, against the reference.
    /// Unknown types are refused.
    pub fn get_manifest(&self, image: &Reference) -> Result<Manifest, RegistryError> {
        let path = format!(
            "/v2/{}/manifests/{}",
            image.repository(),
            image.manifest_ref()
        );
        let req = manifest_req(image, http::Method::GET, path);
        let mut resp = self.send(&req)?;
        let url = format!("{}{}", self.endpoint(image.registry()).base(), req.path);
        if resp.status().as_u16() != 200 {
            return Err(Client::api_error(&req.method, &url, resp));
        }
        if let Some(len) = content_length(&resp) {
            if len > MAX_MANIFEST_BYTES {
                return Err(too_large(&req.method, &url));
            }
        }
        let content_type = header_str(&resp, header::CONTENT_TYPE);
        let header_digest = header_str(&resp, "docker-content-digest");
        let raw = resp
            .body_mut()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => too_large(&req.method, &url),
                e => RegistryError::Body {
                    method: req.method.to_string(),
                    url: redact_url(&url),
                    source: std::io::Error::other(e),
                },
            })?;
        let image_s = image.to_string();
        let media_type = detect_media_type(&image_s, content_type.as_deref(), &raw)?;
        let digest = if media_type::kind(&media_type) == Kind::Schema1 {
            crate::convert::schema1::parse(&image_s, &raw)
                .map_err(|e| RegistryError::Protocol {
                    method: req.method.to_string(),
                    url: redact_url(&url),
                    reason: e.to_string(),
                })?
                .digest
        } else {
            Digest::of(&raw)
        };
        if let Some(h) = header_digest {
            let expected = Digest::parse(h.trim()).map_err(|e| RegistryError::Protocol {
                method: req.method.to_string(),
                url: redact_url(&url),
                reason: format!("bad Docker-Content-Digest header: {e}"),
            })?;
            if expected != digest {
                return Err(RegistryError::ManifestDigest {
                    image: image_s,
                    expected,
                    expected_from: "the registry's Docker-Content-Digest header",
                    actual: digest,
                });
            }
        }
        if let Some(expected) = image.digest() {
            if *expected != digest {
                return Err(RegistryError::ManifestDigest {
                    image: image_s,
                    expected: expected.clone(),
                    expected_from: "the image reference",
                    actual: digest,
                });
            }
        }
        Ok(Manifest {
            raw,
            media_type,
            digest,
        })
    }

    /// `HEAD /v2/<name>/manifests/<ref>`: the digest, media type and size, or `None` if unknown.
    pub fn head_manifest(
        &self,
        image: &Reference,
    ) -> Result<Option<(Digest, String, u64)>, RegistryError> {
        Ok(self.head(image)?.map(|h| (h.digest, h.media_type, h.size)))
    }

    /// `HEAD /v2/<name>/manifests/<ref>` with Docker Hub's pull allowance: resolves a tag
    /// without a pull being counted. `None` if the registry does not know it (404).
    pub fn head(&self, image: &Reference) -> Result<Option<Head>, RegistryError> {
        let path = format!(
            "/v2/{}/manifests/{}",
            image.repository(),
            image.manifest_ref()
        );
        let req = manifest_req(image, http::Method::HEAD, path);
        let resp = self.send(&req)?;
        let url = format!("{}{}", self.endpoint(image.registry()).base(), req.path);
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => return Err(Client::api_error(&req.method, &url, resp)),
        }
        let digest = header_str(&resp, "docker-content-digest")
            .ok_or_else(|| RegistryError::Protocol {
                method: "HEAD".into(),
                url: redact_url(&url),
                reason: "no Docker-Content-Digest header".into(),
            })
            .and_then(|h| {
                Digest::parse(h.trim()).map_err(|e| RegistryError::Protocol {
                    method: "HEAD".into(),
                    url: redact_url(&url),
                    reason: format!("bad Docker-Content-Digest header: {e}"),
                })
            })?;
        let mt = header_str(&resp, header::CONTENT_TYPE).unwrap_or_default();
        Ok(Some(Head {
            digest,
            media_type: media_type::essence(&mt).to_string(),
            size: content_length(&resp).unwrap_or(0),
            rate_limit: RateLimit::from_headers(resp.headers()),
        }))
    }

    /// `GET /v2/<name>/blobs/<digest>`, following redirects, as a stream. The caller verifies
    /// the bytes (wrap the reader in a [`crate::digest::VerifyingReader`]).
    pub fn get_blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<BlobStream, RegistryError> {
        let req = blob_req(registry, repository, digest, http::Method::GET);
        let resp = self.send(&req)?;
        if resp.status().as_u16() != 200 {
            let url = format!("{}{}", self.endpoint(registry).base(), req.path);
            return Err(Client::api_error(&req.method, &url, resp));
        }
        let content_length = content_length(&resp);
        Ok(BlobStream {
            reader: Box::new(resp.into_body().into_reader()),
            content_length,
        })
    }

    /// `HEAD /v2/<name>/blobs/<digest>`: the size if the registry has the blob.
    pub fn blob_exists(
        &self,
        registry: &str,
        repository: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let req = blob_req(registry, repository, digest, http::Method::HEAD);
        let resp = self.send(&req)?;
        match resp.status().as_u16() {
            200 => Ok(Some(content_length(&resp).unwrap_or(0))),
            404 => Ok(None),
            _ => {
                let url = format!("{}{}", self.endpoint(registry).base(), req.path);
                Err(Client::api_error(&req.method, &url, resp))
            }
        }
    }
}

fn manifest_req(image: &Reference, method: http::Method, path: String) -> Req<'_> {
    Req {
        method,
        registry: image.registry(),
        repository: Some(image.repository()),
        action: Action::Pull,
        path,
        headers: vec![("accept", media_type::MANIFEST_ACCEPT.to_string())],
        body: ReqBody::Empty,
        follow_redirects: true,
    }
}

fn blob_req<'a>(
    registry: &'a str,
    repository: &'a str,
    digest: &Digest,
    method: http::Method,
) -> Req<'a> {
    Req {
        method,
        registry,
        repository: Some(repository),
        action: Action::Pull,
        // The digest is validated, so it cannot change the path.
        path: format!(
            "/v2/{repository}/blobs/{}",
            encode_query(&digest.to_string())
        ),
        headers: vec![],
        body: ReqBody::Empty,
        follow_redirects: true,
    }
}

fn header_str<K: header::AsHeaderName>(
    resp: &http::Response<ureq::Body>,
    name: K,
) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn content_length(resp: &http::Response<ureq::Body>) -> Option<u64> {
    header_str(resp, header::CONTENT_LENGTH).and_then(|s| s.trim().parse().ok())
}

fn too_large(method: &http::Method, url: &str) -> RegistryError {
    RegistryError::TooLarge {
        method: method.to_string(),
        url: redact_url(url),
        limit: MAX_MANIFEST_BYTES,
        what: "a manifest",
    }
}

/// The manifest's media type: the `Content-Type`, cross-checked with the document's own
/// `mediaType` field, or sniffed from the document when the registry sent a generic type.
pub fn detect_media_type(
    image: &str,
    content_type: Option<&str>,
    raw: &[u8],
) -> Result<String, RegistryError> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u64>,
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        layers: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
        #[serde(rename = "fsLayers")]
        fs_layers: Option<serde::de::IgnoredAny>,
        signatures: Option<serde::de::IgnoredAny>,
    }
    let header = content_type.map(media_type::essence).unwrap_or("");
    let probe: Probe =
        serde_json::from_slice(raw).map_err(|e| RegistryError::UnsupportedMediaType {
            image: image.into(),
            media_type: format!("{header} (not valid JSON: {e})"),
        })?;
    if media_type::kind(header) == Kind::Schema1
        || probe.schema_version == Some(1)
        || probe.fs_layers.is_some()
    {
        // Signed or not is what the document says, whatever the header claims.
        return if probe.schema_version == Some(1) && probe.fs_layers.is_some() {
            Ok(if probe.signatures.is_some() {
                media_type::DOCKER_SCHEMA1_SIGNED.to_string()
            } else {
                media_type::DOCKER_SCHEMA1.to_string()
            })
        } else {
            Err(RegistryError::UnsupportedMediaType {
                image: image.into(),
                media_type: format!(
                    "{} without the fields of a schema 1 manifest",
                    if header.is_empty() {
                        "schemaVersion 1"
                    } else {
                        header
                    }
                ),
            })
        };
    }
    if probe.manifests.is_some() && (probe.layers.is_some() || probe.config.is_some()) {
        return Err(RegistryError::UnsupportedMediaType {
            image: image.into(),
            media_type:
                "a document that is both an index (manifests) and a manifest (config/layers)".into(),
        });
    }
    let body_type = probe.media_type.as_deref().map(media_type::essence);
    let chosen = match (media_type::kind(header), body_type) {
        (Kind::Index | Kind::Manifest, Some(b)) if b != header => {
            return Err(RegistryError::UnsupportedMediaType {
                image: image.into(),
                media_type: format!("Content-Type {header} but the document says {b}"),
            })
        }
        (Kind::Index | Kind::Manifest, _) => header.to_string(),
        (_, Some(b)) => b.to_string(),
        // An OCI document may omit mediaType; tell index and manifest apart by their fields.
        (_, None) if probe.manifests.is_some() => media_type::OCI_INDEX.to_string(),
        (_, None) if probe.config.is_some() => media_type::OCI_MANIFEST.to_string(),
        (_, None) => header.to_string(),
    };
    match media_type::kind(&chosen) {
        Kind::Index | Kind::Manifest => {}
        Kind::Schema1 | Kind::Unknown => {
            return Err(RegistryError::UnsupportedMediaType {
                image: image.into(),
                media_type: chosen,
            })
        }
    }
    // The fields must fit the type, or the document is ambiguous.
    let is_index = media_type::kind(&chosen) == Kind::Index;
    if (is_index && probe.manifests.is_none()) || (!is_index && probe.config.is_none()) {
        return Err(RegistryError::UnsupportedMediaType {
            image: image.into(),
            media_type: format!("{chosen} without the fields that type requires"),
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media_type::*;

    #[test]
    fn detects_media_types() {
        let m = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{},"layers":[]}"#;
        assert_eq!(
            detect_media_type("x", Some(DOCKER_MANIFEST), m).unwrap(),
            DOCKER_MANIFEST
        );
        assert_eq!(
            detect_media_type("x", Some("application/json"), m).unwrap(),
            DOCKER_MANIFEST
        );
        let oci = br#"{"schemaVersion":2,"config":{},"layers":[]}"#;
        assert_eq!(
            detect_media_type("x", Some(OCI_MANIFEST), oci).unwrap(),
            OCI_MANIFEST
        );
        assert_eq!(detect_media_type("x", None, oci).unwrap(), OCI_MANIFEST);
        let idx = br#"{"schemaVersion":2,"manifests":[]}"#;
        assert_eq!(
            detect_media_type("x", Some("text/plain"), idx).unwrap(),
            OCI_INDEX
        );
    }

    #[test]
    fn reads_schema1_refuses_ambiguous_and_unknown() {
        let s1 = br#"{"schemaVersion":1,"name":"x","fsLayers":[]}"#;
        assert_eq!(
            detect_media_type("docker.io/library/x:1", Some(DOCKER_SCHEMA1_SIGNED), s1).unwrap(),
            DOCKER_SCHEMA1,
            "unsigned, whatever the header says"
        );
        let signed = br#"{"schemaVersion":1,"name":"x","fsLayers":[],"signatures":[]}"#;
        assert_eq!(
            detect_media_type("x", Some("application/json"), signed).unwrap(),
            DOCKER_SCHEMA1_SIGNED
        );
        let e = detect_media_type("docker.io/library/x:1", Some(DOCKER_SCHEMA1_SIGNED), b"{}")
            .unwrap_err();
        assert!(e.to_string().contains("docker.io/library/x:1"), "{e}");
        assert!(matches!(e, RegistryError::UnsupportedMediaType { .. }));
        // Each is refused as an unsupported type, saying why.
        let unsupported = |content_type: &str, raw: &[u8], why: &str| {
            let e = detect_media_type("x", Some(content_type), raw).unwrap_err();
            assert!(
                matches!(e, RegistryError::UnsupportedMediaType { .. }),
                "{e:?}"
            );
            let text = e.to_string();
            assert!(
                text.starts_with(&format!("x: unsupported manifest media type \"{why}")),
                "{text}"
            );
        };
        let both = br#"{"schemaVersion":2,"manifests":[],"config":{},"layers":[]}"#;
        unsupported(
            OCI_INDEX,
            both,
            "a document that is both an index (manifests) and a manifest (config/layers)",
        );
        let lie = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","config":{},"layers":[]}"#;
        unsupported(
            OCI_MANIFEST,
            lie,
            "Content-Type application/vnd.oci.image.manifest.v1+json but the document says application/vnd.oci.image.index.v1+json",
        );
        unsupported(
            OCI_INDEX,
            br#"{"schemaVersion":2,"config":{}}"#,
            "application/vnd.oci.image.index.v1+json without the fields that type requires",
        );
        unsupported("text/html", b"<html>", "text/html (not valid JSON");
        unsupported(
            "application/vnd.foo",
            br#"{"mediaType":"application/vnd.foo"}"#,
            "application/vnd.foo",
        );
    }
}
