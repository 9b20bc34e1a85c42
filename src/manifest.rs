//! Reading manifests and indexes: which blobs and platform manifests a document points at.
//!
//! Documents are parsed with `oci-spec` (Docker schema2 and manifest lists have the same
//! shape as their OCI twins) and every digest is validated again with [`Digest::parse`] before
//! anything uses it as a path or URL. The raw bytes are never re-serialised.

use std::fmt;
use std::str::FromStr;

use oci_spec::image::{Descriptor as OciDescriptor, ImageIndex, ImageManifest};

use crate::digest::Digest;
use crate::media_type::{self, Kind};

/// Manifests and indexes larger than this are refused, from a registry or a bundle
/// (containerd uses the same 4 MiB limit).
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// A pointer to content: digest, size, media type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

/// `os/architecture[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// linux/amd64, what a Rancher 1.6 host runs.
    pub fn linux_amd64() -> Platform {
        Platform {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// True when `self` (what the operator asked for) accepts `candidate`: os and architecture
    /// equal, and the variant equal when one was asked for.
    pub fn matches(&self, candidate: &Platform) -> bool {
        self.os == candidate.os
            && self.architecture == candidate.architecture
            && (self.variant.is_none() || self.variant == candidate.variant)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = ManifestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let ok = |p: &str| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        match parts.as_slice() {
            [os, arch] if ok(os) && ok(arch) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: None,
            }),
            [os, arch, v] if ok(os) && ok(arch) && ok(v) => Ok(Platform {
                os: os.to_string(),
                architecture: arch.to_string(),
                variant: Some(v.to_string()),
            }),
            _ => Err(ManifestError::BadPlatform(s.to_string())),
        }
    }
}

/// A platform manifest listed in an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub blob: BlobRef,
    pub platform: Option<Platform>,
}

/// What a manifest document points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Index(Vec<Child>),
    Image {
        config: BlobRef,
        layers: Vec<BlobRef>,
    },
    /// A schema 1 manifest kept as upstream served it (`--keep-digests`): its layers, each
    /// once. The manifest states no sizes, so [`parse`] never returns this: bundle readers
    /// build it from bundle.json (`ImageRecord::schema1_blobs`).
    Schema1 {
        layers: Vec<BlobRef>,
    },
}

impl Parsed {
    /// The config and layers of an image manifest (empty for an index).
    pub fn blobs(&self) -> Vec<&BlobRef> {
        match self {
            Parsed::Index(_) => vec![],
            Parsed::Image { config, layers } => std::iter::once(config).chain(layers).collect(),
            Parsed::Schema1 { layers } => layers.iter().collect(),
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{what} is not a valid {media_type} document: {reason}")]
    Invalid {
        what: String,
        media_type: String,
        reason: String,
    },
    #[error("{what}: unsupported manifest media type {media_type:?}")]
    Unsupported { what: String, media_type: String },
    #[error("{what}: descriptor has an invalid digest")]
    BadDigest {
        what: String,
        #[source]
        source: crate::digest::DigestError,
    },
    #[error("invalid platform {0:?}: expected os/arch or os/arch/variant, e.g. linux/amd64")]
    BadPlatform(String),
    /// A descriptor's embedded `data` is not the content it describes.
    #[error("{what}: the embedded data of descriptor {digest} {reason}")]
    Embedded {
        what: String,
        digest: Digest,
        reason: String,
    },
}

/// Parses `raw` as the given media type. `what` names the document in errors (an image
/// reference or a blob digest).
pub fn parse(what: &str, media_type: &str, raw: &[u8]) -> Result<Parsed, ManifestError> {
    let invalid = |reason: String| ManifestError::Invalid {
        what: what.to_string(),
        media_type: media_type.to_string(),
        reason,
    };
    // The document's own mediaType, when present, must agree with the descriptor's.
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde::de::IgnoredAny>,
        config: Option<serde::de::IgnoredAny>,
        layers: Option<serde::de::IgnoredAny>,
    }
    let probe: Probe = serde_json::from_slice(raw).map_err(|e| invalid(e.to_string()))?;
    if let Some(m) = probe.media_type {
        if media_type::essence(&m) != media_type::essence(media_type) {
            return Err(invalid(format!(
                "the document says its media type is {m:?}"
            )));
        }
    }
    // A document with both `manifests` and `config`/`layers` reads as an index to one tool and
    // as a manifest to another, so two readers would see different content under one digest
    // (the ambiguity image-spec's "Guidelines for Artifact Usage" and CVE-2021-41190 close).
    if probe.manifests.is_some() && (probe.config.is_some() || probe.layers.is_some()) {
        return Err(invalid(
            "it has both \"manifests\" and \"config\"/\"layers\": ambiguous between an index and a manifest"
                .into(),
        ));
    }
    match media_type::kind(media_type) {
        Kind::Index => {
            // serde_json directly: oci-spec's `from_reader` reports every error as "serde
            // failed", which names neither the field nor the bad digest.
            let idx: ImageIndex =
                serde_json::from_slice(raw).map_err(|e| invalid(e.to_string()))?;
            let mut out = Vec::new();
            for d in idx.manifests() {
                let platform = d.platform().as_ref().map(|p| Platform {
                    os: p.os().to_string(),
                    architecture: p.architecture().to_string(),
                    variant: p.variant().clone().filter(|v| !v.is_empty()),
                });
                out.push(Child {
                    blob: blob_ref(what, d)?,
                    platform,
                });
            }
            Ok(Parsed::Index(out))
        }
        Kind::Manifest => {
            let m: ImageManifest =
                serde_json::from_slice(raw).map_err(|e| invalid(e.to_string()))?;
            let config = blob_ref(what, m.config())?;
            let layers = m
                .layers()
                .iter()
                .map(|d| blob_ref(what, d))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Parsed::Image { config, layers })
        }
        Kind::Schema1 | Kind::Unknown => Err(ManifestError::Unsupported {
            what: what.to_string(),
            media_type: media_type.to_string(),
        }),
    }
}

fn blob_ref(what: &str, d: &OciDescriptor) -> Result<BlobRef, ManifestError> {
    let digest = Digest::parse(d.digest().as_ref()).map_err(|source| ManifestError::BadDigest {
        what: what.to_string(),
        source,
    })?;
    if let Some(data) = d.data() {
        check_embedded(&digest, d.size(), data).map_err(|reason| ManifestError::Embedded {
            what: what.to_string(),
            digest: digest.clone(),
            reason,
        })?;
    }
    Ok(BlobRef {
        digest,
        size: d.size(),
        media_type: d.media_type().to_string(),
    })
}

/// A descriptor's embedded `data` (base64) must be exactly the content it describes: its size
/// and its digest (image-spec `descriptor.md`, "Embedded Content"). Whoever reads `data`
/// instead of the blob would see other content under the same digest.
pub fn check_embedded(digest: &Digest, size: u64, data: &str) -> Result<(), String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|e| format!("is not base64: {e}"))?;
    if bytes.len() as u64 != size {
        return Err(format!(
            "holds {} bytes, the descriptor says {size}",
            bytes.len()
        ));
    }
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(format!(
            "hashes to {actual}, not to the descriptor's digest"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
    const D2: &str = "sha256:2222222222222222222222222222222222222222222222222222222222222222";

    #[test]
    fn parses_docker_manifest() {
        let raw = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","size":7,"digest":"{D1}"}},"layers":[{{"mediaType":"{}","size":9,"digest":"{D2}"}}]}}"#,
            media_type::DOCKER_MANIFEST,
            media_type::DOCKER_CONFIG,
            media_type::DOCKER_LAYER_GZIP
        );
        let p = parse("x", media_type::DOCKER_MANIFEST, raw.as_bytes()).unwrap();
        let blobs = p.blobs();
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs[0].size, 7);
        assert_eq!(blobs[1].digest.to_string(), D2);
        assert_eq!(blobs[1].media_type, media_type::DOCKER_LAYER_GZIP);
    }

    #[test]
    fn parses_index_platforms() {
        let raw = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[{{"mediaType":"{}","size":3,"digest":"{D1}","platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}}]}}"#,
            media_type::DOCKER_LIST,
            media_type::DOCKER_MANIFEST
        );
        let Parsed::Index(children) = parse("x", media_type::DOCKER_LIST, raw.as_bytes()).unwrap()
        else {
            panic!()
        };
        let p = children[0].platform.as_ref().unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert!("linux/arm".parse::<Platform>().unwrap().matches(p));
        assert!(!"linux/arm/v6".parse::<Platform>().unwrap().matches(p));
        assert!(!Platform::linux_amd64().matches(p));
    }

    #[test]
    fn refuses_bad_documents() {
        let bad_digest = r#"{"schemaVersion":2,"config":{"mediaType":"a","size":1,"digest":"sha256:../../etc"},"layers":[]}"#;
        let e = parse("x", media_type::OCI_MANIFEST, bad_digest.as_bytes()).unwrap_err();
        // The error names the digest, not just "serde failed".
        assert!(e.to_string().contains("../../etc"), "{e}");
        let lying = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","manifests":[]}}"#,
            media_type::OCI_INDEX
        );
        let e = parse("img", media_type::OCI_MANIFEST, lying.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("img"), "{e}");
        let e = parse("x", "application/vnd.foo", b"{}").unwrap_err();
        assert_eq!(
            e.to_string(),
            "x: unsupported manifest media type \"application/vnd.foo\""
        );
        let not_valid = format!("x is not a valid {} document", media_type::OCI_MANIFEST);
        let e = parse("x", media_type::OCI_MANIFEST, b"[").unwrap_err();
        assert!(e.to_string().starts_with(&not_valid), "{e}");
        // CVE-2021-41190: one document that is both an index and a manifest.
        let both = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"a","size":1,"digest":"{D1}"}},"layers":[],"manifests":[]}}"#
        );
        for mt in [media_type::OCI_MANIFEST, media_type::OCI_INDEX] {
            let e = parse("img", mt, both.as_bytes()).unwrap_err();
            assert!(e.to_string().contains("ambiguous"), "{e}");
        }
        use base64::Engine as _;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let with_data = |data: &str| {
            format!(
                r#"{{"schemaVersion":2,"config":{{"mediaType":"a","size":2,"digest":"{}","data":"{data}"}},"layers":[]}}"#,
                Digest::of(b"{}")
            )
        };
        assert!(parse(
            "x",
            media_type::OCI_MANIFEST,
            with_data(&b64(b"{}")).as_bytes()
        )
        .is_ok());
        for (bad, why) in [
            (b64(b"[]"), "hashes to"),
            (b64(b"{ }"), "holds 3 bytes"),
            ("!!".to_string(), "is not base64"),
        ] {
            let e = parse("x", media_type::OCI_MANIFEST, with_data(&bad).as_bytes()).unwrap_err();
            assert!(
                e.to_string().contains("the embedded data of descriptor")
                    && e.to_string().contains(why),
                "{e}"
            );
        }
        let deep = "[".repeat(10_000);
        let e = parse("x", media_type::OCI_MANIFEST, deep.as_bytes()).unwrap_err();
        assert!(e.to_string().starts_with(&not_valid), "{e}");
        for p in [
            "linux",
            "Linux/amd64",
            "linux/amd64/v8/x",
            "linux//x",
            "../x/y",
        ] {
            let e = p.parse::<Platform>().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("invalid platform {p:?}: expected os/arch")),
                "{e}"
            );
        }
    }
}
