//! OCI image manifests and indexes into Docker schema 2 manifests and manifest lists.
//!
//! The blobs stay as they are; only media types change, as `skopeo copy --format v2s2` and
//! regclient's `--to-docker` do it (containers/image `internal/image/oci.go`): the OCI config
//! type becomes Docker's, gzip layers become Docker gzip layers, uncompressed ones Docker
//! uncompressed layers, non-distributable ones Docker foreign layers (their `urls` kept).
//! Manifest and descriptor annotations have no place in schema 2 and are dropped. zstd layers
//! are refused: Docker 17.03 cannot decompress them.
//!
//! In an index, entries that are not runnable images are left out and reported: BuildKit's
//! attestation manifests (`vnd.docker.reference.type: attestation-manifest`, platform
//! `unknown/unknown`), entries without a platform and nested indexes (docker-library/meta-scripts
//! `helpers/oci-sbom.sh`; image-spec `image-index.md`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{docker_layer_type, ConvertError, Converted};
use crate::digest::Digest;
use crate::manifest::{BlobRef, Platform};
use crate::media_type::{self, Kind};

/// The annotation BuildKit puts on attestation entries of an index.
pub const REFERENCE_TYPE: &str = "vnd.docker.reference.type";

#[derive(Deserialize)]
struct Desc {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    urls: Vec<String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    platform: Option<Plat>,
}

#[derive(Deserialize)]
struct Plat {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
    #[serde(default)]
    variant: Option<String>,
}

#[derive(Deserialize)]
struct ImageDoc {
    config: Desc,
    #[serde(default)]
    layers: Vec<Desc>,
}

#[derive(Deserialize)]
struct IndexDoc {
    manifests: Vec<Desc>,
}

fn blob(what: &str, d: &Desc) -> Result<BlobRef, ConvertError> {
    let digest = Digest::parse(&d.digest).map_err(|e| ConvertError::Invalid {
        what: what.to_string(),
        media_type: "manifest".into(),
        reason: format!("descriptor digest {:?}: {e}", d.digest),
    })?;
    Ok(BlobRef {
        digest,
        size: d.size,
        media_type: d.media_type.clone(),
    })
}

/// An image manifest (OCI, or Docker with OCI-typed descriptors) as a Docker schema 2
/// manifest over the same blobs.
pub fn to_docker(what: &str, mt: &str, raw: &[u8]) -> Result<Converted, ConvertError> {
    let doc: ImageDoc = serde_json::from_slice(raw).map_err(|e| ConvertError::Invalid {
        what: what.to_string(),
        media_type: mt.to_string(),
        reason: e.to_string(),
    })?;
    let config_type = media_type::essence(&doc.config.media_type);
    if config_type != media_type::OCI_CONFIG && config_type != media_type::DOCKER_CONFIG {
        return Err(ConvertError::Unsupported {
            what: what.to_string(),
            reason: format!("its config is {config_type:?}, not an image config"),
        });
    }
    let config = BlobRef {
        media_type: media_type::DOCKER_CONFIG.into(),
        ..blob(what, &doc.config)?
    };
    let mut layers = Vec::new();
    let mut urls = Vec::new();
    for l in &doc.layers {
        let t = docker_layer_type(&l.media_type).ok_or_else(|| ConvertError::Unsupported {
            what: what.to_string(),
            reason: format!(
                "layer {} is {:?}, which Docker 17.03 cannot apply",
                l.digest, l.media_type
            ),
        })?;
        layers.push(BlobRef {
            media_type: t.into(),
            ..blob(what, l)?
        });
        urls.push(if t == media_type::DOCKER_LAYER_FOREIGN_GZIP {
            l.urls.clone()
        } else {
            Vec::new()
        });
    }
    Ok(super::docker_manifest(&config, &layers, &urls))
}

/// What an index entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A runnable image for its platform.
    Image,
    /// Left out of a conversion, with the reason (`attestation-manifest`, `platform
    /// unknown/unknown`, `no platform`, `a nested index`, ...).
    Skipped(String),
}

/// One entry of an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub blob: BlobRef,
    pub platform: Option<Platform>,
    pub kind: EntryKind,
}

/// The entries of an index (OCI or Docker), each classified.
pub fn index_entries(what: &str, mt: &str, raw: &[u8]) -> Result<Vec<IndexEntry>, ConvertError> {
    let doc: IndexDoc = serde_json::from_slice(raw).map_err(|e| ConvertError::Invalid {
        what: what.to_string(),
        media_type: mt.to_string(),
        reason: e.to_string(),
    })?;
    doc.manifests
        .iter()
        .map(|d| {
            let platform = d.platform.as_ref().map(|p| Platform {
                os: p.os.clone(),
                architecture: p.architecture.clone(),
                variant: p.variant.clone().filter(|v| !v.is_empty()),
            });
            let kind = if let Some(t) = d.annotations.get(REFERENCE_TYPE) {
                EntryKind::Skipped(t.clone())
            } else if media_type::kind(&d.media_type) != Kind::Manifest {
                EntryKind::Skipped(format!("not an image manifest ({})", d.media_type))
            } else {
                match &platform {
                    None => EntryKind::Skipped("no platform".into()),
                    Some(p) if p.os == "unknown" || p.architecture == "unknown" => {
                        EntryKind::Skipped(format!("platform {p}"))
                    }
                    Some(_) => EntryKind::Image,
                }
            };
            Ok(IndexEntry {
                blob: blob(what, d)?,
                platform,
                kind,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        Digest::of(&[n])
    }

    #[test]
    fn oci_manifests_become_docker_with_the_same_blobs() {
        let raw = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":7}},"layers":[{{"mediaType":"{}","digest":"{}","size":9,"annotations":{{"a":"b"}}}},{{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{}","size":3,"urls":["https://x/y?a=1&b=2"]}}],"annotations":{{"org.opencontainers.image.created":"now"}}}}"#,
            media_type::OCI_MANIFEST,
            media_type::OCI_CONFIG,
            d(1),
            media_type::OCI_LAYER_GZIP,
            d(2),
            d(3)
        );
        let c = to_docker("img", media_type::OCI_MANIFEST, raw.as_bytes()).unwrap();
        assert_eq!(c.media_type, media_type::DOCKER_MANIFEST);
        let p = crate::manifest::parse("c", c.media_type, &c.raw).unwrap();
        let blobs: Vec<(String, u64, String)> = p
            .blobs()
            .iter()
            .map(|b| (b.digest.to_string(), b.size, b.media_type.clone()))
            .collect();
        assert_eq!(
            blobs,
            [
                (d(1).to_string(), 7, media_type::DOCKER_CONFIG.to_string()),
                (
                    d(2).to_string(),
                    9,
                    media_type::DOCKER_LAYER_GZIP.to_string()
                ),
                (
                    d(3).to_string(),
                    3,
                    media_type::DOCKER_LAYER_FOREIGN_GZIP.to_string()
                ),
            ]
        );
        let v: serde_json::Value = serde_json::from_slice(&c.raw).unwrap();
        assert_eq!(v["layers"][1]["urls"][0], "https://x/y?a=1&b=2");
        assert!(v.get("annotations").is_none());
        // The same input gives the same bytes.
        assert_eq!(
            c,
            to_docker("img", media_type::OCI_MANIFEST, raw.as_bytes()).unwrap()
        );
    }

    #[test]
    fn zstd_layers_and_artifacts_are_refused() {
        let zstd = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"{}","digest":"{}","size":7}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{}","size":9}}]}}"#,
            media_type::OCI_CONFIG,
            d(1),
            d(2)
        );
        let e = to_docker("img", media_type::OCI_MANIFEST, zstd.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("img") && e.contains("zstd") && e.contains("--keep-digests"),
            "{e}"
        );
        let artifact = format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":7}},"layers":[]}}"#,
            d(1)
        );
        assert!(to_docker("img", media_type::OCI_MANIFEST, artifact.as_bytes()).is_err());
    }

    #[test]
    fn index_entries_are_classified() {
        let raw = format!(
            r#"{{"schemaVersion":2,"mediaType":"{idx}","manifests":[
              {{"mediaType":"{m}","digest":"{}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}},
              {{"mediaType":"{m}","digest":"{}","size":2,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},
              {{"mediaType":"{m}","digest":"{}","size":3,"platform":{{"os":"unknown","architecture":"unknown"}},"annotations":{{"vnd.docker.reference.type":"attestation-manifest","vnd.docker.reference.digest":"{}"}}}},
              {{"mediaType":"{m}","digest":"{}","size":4,"platform":{{"os":"unknown","architecture":"unknown"}}}},
              {{"mediaType":"{idx}","digest":"{}","size":5,"platform":{{"os":"linux","architecture":"s390x"}}}}
            ]}}"#,
            d(1),
            d(2),
            d(3),
            d(1),
            d(4),
            d(5),
            idx = media_type::OCI_INDEX,
            m = media_type::OCI_MANIFEST,
        );
        let e = index_entries("bb", media_type::OCI_INDEX, raw.as_bytes()).unwrap();
        let kinds: Vec<&EntryKind> = e.iter().map(|e| &e.kind).collect();
        assert_eq!(
            kinds,
            [
                &EntryKind::Image,
                &EntryKind::Image,
                &EntryKind::Skipped("attestation-manifest".into()),
                &EntryKind::Skipped("platform unknown/unknown".into()),
                &EntryKind::Skipped(format!("not an image manifest ({})", media_type::OCI_INDEX)),
            ]
        );
        assert_eq!(
            e[1].platform.as_ref().unwrap().to_string(),
            "linux/arm64/v8"
        );
    }
}
