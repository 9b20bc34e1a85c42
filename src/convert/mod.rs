//! Converting upstream manifests into what Rancher 1.6's Docker engines (1.12–17.03) can pull:
//! Docker schema 2 manifests and manifest lists with Docker config and layer media types.
//!
//! These are pure functions over manifest bytes: `pack` gathers the documents (and, for a
//! schema 1 image, the diff IDs of its layers) and calls them; the same input always gives the
//! same bytes. What each does:
//! - a Docker schema 2 manifest or manifest list whose descriptors are all Docker-typed is not
//!   touched ([`needs_conversion`] says so): the common case, digest unchanged;
//! - an OCI manifest (or a Docker one with OCI-typed descriptors) becomes a Docker schema 2
//!   manifest: config and layer media types rewritten, blobs unchanged ([`oci`]);
//! - an OCI index becomes a Docker manifest list of converted platform manifests, attestation
//!   and other non-image entries left out ([`oci::index_entries`], [`docker_list`]);
//! - a schema 1 manifest becomes a schema 2 image with the config Docker builds ([`schema1`]).
//!
//! Docker's engine refuses an OCI config type under a schema 2 manifest ("target is unknown",
//! moby v17.03 `distribution/pull_v2.go`) and does not know OCI manifests before 18.06
//! (moby/moby#37359), hence the rewrite.

pub mod gojson;
pub mod jws;
pub mod oci;
pub mod schema1;

use crate::digest::Digest;
use crate::manifest::{BlobRef, Platform};
use crate::media_type;

/// A manifest written by a conversion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The bytes, as pushed.
    pub raw: Vec<u8>,
    /// Their sha256.
    pub digest: Digest,
    /// [`media_type::DOCKER_MANIFEST`] or [`media_type::DOCKER_LIST`].
    pub media_type: &'static str,
}

impl Converted {
    fn new(raw: String, media_type: &'static str) -> Converted {
        let raw = raw.into_bytes();
        Converted {
            digest: Digest::of(&raw),
            raw,
            media_type,
        }
    }

    /// A descriptor of this manifest.
    pub fn blob(&self) -> BlobRef {
        BlobRef {
            digest: self.digest.clone(),
            size: self.raw.len() as u64,
            media_type: self.media_type.to_string(),
        }
    }
}

/// Why a manifest cannot be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error("{what}: not a valid schema 1 manifest: {reason}")]
    Schema1 { what: String, reason: String },
    #[error("{what}: not a valid {media_type} document: {reason}")]
    Invalid {
        what: String,
        media_type: String,
        reason: String,
    },
    #[error("{what} cannot be converted for Docker 1.12–17.03: {reason}; use --keep-digests to carry it unchanged")]
    Unsupported { what: String, reason: String },
}

/// The Docker layer type for an OCI or Docker layer type, or `None` when Docker 17.03 cannot
/// apply such a layer.
pub fn docker_layer_type(mt: &str) -> Option<&'static str> {
    match media_type::essence(mt) {
        media_type::OCI_LAYER_GZIP | media_type::DOCKER_LAYER_GZIP => {
            Some(media_type::DOCKER_LAYER_GZIP)
        }
        media_type::OCI_LAYER | media_type::DOCKER_LAYER => Some(media_type::DOCKER_LAYER),
        media_type::OCI_LAYER_FOREIGN_GZIP | media_type::DOCKER_LAYER_FOREIGN_GZIP => {
            Some(media_type::DOCKER_LAYER_FOREIGN_GZIP)
        }
        _ => None,
    }
}

/// True unless `mt` and all the descriptors of an image manifest are Docker-typed, so that
/// Docker 17.03 pulls it as it is.
pub fn needs_conversion(mt: &str, config: &BlobRef, layers: &[BlobRef]) -> bool {
    media_type::essence(mt) != media_type::DOCKER_MANIFEST
        || media_type::essence(&config.media_type) != media_type::DOCKER_CONFIG
        || layers
            .iter()
            .any(|l| docker_layer_type(&l.media_type) != Some(media_type::essence(&l.media_type)))
}

/// A Docker schema 2 manifest as Docker's registry client writes one (`json.MarshalIndent`
/// with three spaces, no trailing newline), with `urls` kept for foreign layers.
pub(crate) fn docker_manifest(
    config: &BlobRef,
    layers: &[BlobRef],
    urls: &[Vec<String>],
) -> Converted {
    let mut s = String::new();
    s.push_str("{\n   \"schemaVersion\": 2,\n");
    s.push_str(&format!(
        "   \"mediaType\": {},\n",
        gojson::string(media_type::DOCKER_MANIFEST)
    ));
    s.push_str("   \"config\": ");
    descriptor(&mut s, config, &[], None, "   ");
    s.push_str(",\n   \"layers\": [");
    for (i, l) in layers.iter().enumerate() {
        s.push_str(if i == 0 { "\n      " } else { ",\n      " });
        let u = urls.get(i).map(Vec::as_slice).unwrap_or(&[]);
        descriptor(&mut s, l, u, None, "      ");
    }
    if !layers.is_empty() {
        s.push_str("\n   ");
    }
    s.push_str("]\n}");
    Converted::new(s, media_type::DOCKER_MANIFEST)
}

/// A Docker manifest list over `children` (each a Docker schema 2 manifest and its platform).
pub fn docker_list(children: &[(BlobRef, Platform)]) -> Converted {
    let mut s = String::new();
    s.push_str("{\n   \"schemaVersion\": 2,\n");
    s.push_str(&format!(
        "   \"mediaType\": {},\n   \"manifests\": [",
        gojson::string(media_type::DOCKER_LIST)
    ));
    for (i, (b, p)) in children.iter().enumerate() {
        s.push_str(if i == 0 { "\n      " } else { ",\n      " });
        descriptor(&mut s, b, &[], Some(p), "      ");
    }
    if !children.is_empty() {
        s.push_str("\n   ");
    }
    s.push_str("]\n}");
    Converted::new(s, media_type::DOCKER_LIST)
}

fn descriptor(
    s: &mut String,
    b: &BlobRef,
    urls: &[String],
    platform: Option<&Platform>,
    indent: &str,
) {
    let inner = format!("{indent}   ");
    s.push_str("{\n");
    s.push_str(&format!(
        "{inner}\"mediaType\": {},\n{inner}\"size\": {},\n{inner}\"digest\": {}",
        gojson::string(&b.media_type),
        b.size,
        gojson::string(&b.digest.to_string())
    ));
    if !urls.is_empty() {
        s.push_str(&format!(",\n{inner}\"urls\": ["));
        for (i, u) in urls.iter().enumerate() {
            s.push_str(if i == 0 { "\n" } else { ",\n" });
            s.push_str(&format!("{inner}   {}", gojson::string(u)));
        }
        s.push_str(&format!("\n{inner}]"));
    }
    if let Some(p) = platform {
        let deep = format!("{inner}   ");
        s.push_str(&format!(
            ",\n{inner}\"platform\": {{\n{deep}\"architecture\": {},\n{deep}\"os\": {}",
            gojson::string(&p.architecture),
            gojson::string(&p.os)
        ));
        if let Some(v) = &p.variant {
            s.push_str(&format!(",\n{deep}\"variant\": {}", gojson::string(v)));
        }
        s.push_str(&format!("\n{inner}}}"));
    }
    s.push_str(&format!("\n{indent}}}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(n: u8, mt: &str) -> BlobRef {
        BlobRef {
            digest: Digest::of(&[n]),
            size: u64::from(n) + 10,
            media_type: mt.into(),
        }
    }

    #[test]
    fn docker_typed_manifests_need_no_conversion() {
        let c = blob(1, media_type::DOCKER_CONFIG);
        let l = blob(2, media_type::DOCKER_LAYER_GZIP);
        assert!(!needs_conversion(
            media_type::DOCKER_MANIFEST,
            &c,
            std::slice::from_ref(&l)
        ));
        assert!(needs_conversion(
            media_type::OCI_MANIFEST,
            &c,
            std::slice::from_ref(&l)
        ));
        let oc = blob(1, media_type::OCI_CONFIG);
        assert!(needs_conversion(
            media_type::DOCKER_MANIFEST,
            &oc,
            std::slice::from_ref(&l)
        ));
        let ol = blob(2, media_type::OCI_LAYER_GZIP);
        assert!(needs_conversion(media_type::DOCKER_MANIFEST, &c, &[ol]));
    }

    #[test]
    fn lists_are_written_like_docker_writes_them() {
        let a = blob(1, media_type::DOCKER_MANIFEST);
        let b = blob(2, media_type::DOCKER_MANIFEST);
        let l = docker_list(&[
            (a.clone(), "linux/amd64".parse().unwrap()),
            (b.clone(), "linux/arm64/v8".parse().unwrap()),
        ]);
        let v: serde_json::Value = serde_json::from_slice(&l.raw).unwrap();
        assert_eq!(v["mediaType"], media_type::DOCKER_LIST);
        assert_eq!(v["manifests"][0]["digest"], a.digest.to_string());
        assert_eq!(v["manifests"][0]["platform"]["architecture"], "amd64");
        assert_eq!(v["manifests"][1]["platform"]["variant"], "v8");
        assert_eq!(v["manifests"][1]["size"], b.size);
        assert_eq!(l.digest, Digest::of(&l.raw));
        // The parser reads it back as an index.
        let p = crate::manifest::parse("l", media_type::DOCKER_LIST, &l.raw).unwrap();
        assert!(matches!(p, crate::manifest::Parsed::Index(c) if c.len() == 2));
    }
}
