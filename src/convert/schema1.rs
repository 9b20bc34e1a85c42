//! Docker image manifest schema 1 (`application/vnd.docker.distribution.manifest.v1+prettyjws`
//! and its unsigned `v1+json` twin): reading it, its digest, and the schema 2 image Docker
//! itself makes of it when it pulls one.
//!
//! - **Digest.** A signed manifest is a JWS in libtrust's "pretty" form: the manifest JSON with a
//!   `"signatures"` member spliced in before its closing brace. Its digest (what registries
//!   answer in `Docker-Content-Digest`, and what a pin or `@sha256:` names) is the sha256 of the
//!   JWS *payload*: the bytes up to `formatLength` followed by the base64url-decoded
//!   `formatTail`, both from each signature's protected header (distribution
//!   `manifest/schema1/sign.go`, libtrust `jsonsign.go` `PrettySignature`). A conversion does not
//!   need the signatures: anyone can sign with a key of their own, so they prove nothing about
//!   the content; the digest does. A manifest kept as served (`--keep-digests`) must carry
//!   signatures a registry accepts ([`super::jws`]).
//! - **Layers.** `fsLayers[0]` is the top layer and `history[i].v1Compatibility` describes
//!   `fsLayers[i]`. Before using them Docker removes repeated layers and checks the parent chain
//!   (moby 17.03 `distribution/pull_v2.go` `fixManifestLayers`), and skips layers whose
//!   v1Compatibility says `"throwaway": true`.
//! - **Config.** Docker builds the image config from the top v1Compatibility: `id`, `parent`,
//!   `Size`, `parent_id`, `layer_id` and `throwaway` are dropped; `rootfs` (`type: layers`,
//!   `diff_ids` of the non-throwaway layers, bottom first) and `history` (one entry per layer,
//!   bottom first: `created`, `author`, `created_by` = the container command joined by spaces,
//!   `comment`, `empty_layer` for throwaway layers) are added; the keys are sorted (moby
//!   `image/v1/imagev1.go` `MakeConfigFromV1Config`, `HistoryFromConfig`). airlock writes the same
//!   bytes ([`super::gojson`]), so the converted image has the image ID a Docker 17.03 pull of
//!   the schema 1 manifest gives. (Docker releases before 1.8.3 wrote v1Compatibility that Docker
//!   re-serialises through its own struct; airlock keeps those fields as they are, so only for
//!   such images the ID differs from Docker's. The config is equivalent.)

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::{gojson, ConvertError, Converted};
use crate::digest::Digest;
use crate::manifest::{BlobRef, Platform};
use crate::media_type;

/// A parsed schema 1 manifest whose digest has been computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schema1 {
    /// What registries call it: the sha256 of the JWS payload (of the whole document when it
    /// is not signed).
    pub digest: Digest,
    /// True when the document carries `signatures` (prettyjws).
    pub signed: bool,
    /// `name`, `tag` and `architecture` as the manifest states them.
    pub name: String,
    pub tag: String,
    pub architecture: String,
    /// `fsLayers[].blobSum`, top layer first, as listed.
    pub fs_layers: Vec<Digest>,
    /// `history[].v1Compatibility`, top first, as listed.
    pub history: Vec<String>,
}

/// One layer Docker pulls for a schema 1 image, bottom first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Layer {
    /// The gzip blob (`blobSum`).
    pub blob: Digest,
    /// `"throwaway": true`: Docker neither downloads nor applies it; its history entry says
    /// `empty_layer`.
    pub throwaway: bool,
    /// Its v1Compatibility JSON.
    pub v1: String,
}

#[derive(Deserialize)]
struct Signed {
    signatures: Option<Vec<Signature>>,
}

#[derive(Deserialize)]
struct Signature {
    protected: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Protected {
    format_length: usize,
    format_tail: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Payload {
    schema_version: u32,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tag: String,
    #[serde(default)]
    architecture: String,
    fs_layers: Vec<FsLayer>,
    history: Vec<HistoryEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsLayer {
    blob_sum: String,
}

#[derive(Deserialize)]
struct HistoryEntry {
    #[serde(rename = "v1Compatibility")]
    v1_compatibility: String,
}

/// base64url as JOSE writes it (no padding); padded input and non-zero trailing bits are
/// accepted too, as Go's decoder accepts them.
pub(crate) fn b64url(s: &str) -> Result<Vec<u8>, String> {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(s).map_err(|e| e.to_string())
}

/// The JWS payload of a schema 1 document, and whether it was signed. For an unsigned
/// document the payload is the document itself.
pub fn payload(what: &str, raw: &[u8]) -> Result<(Vec<u8>, bool), ConvertError> {
    let bad = |reason: String| ConvertError::Schema1 {
        what: what.to_string(),
        reason,
    };
    let signed: Signed =
        serde_json::from_slice(raw).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Some(signatures) = signed.signatures else {
        return Ok((raw.to_vec(), false));
    };
    if signatures.is_empty() {
        return Err(bad("\"signatures\" is empty".into()));
    }
    let mut payload: Option<Vec<u8>> = None;
    for (i, s) in signatures.iter().enumerate() {
        let protected = s
            .protected
            .as_deref()
            .ok_or_else(|| bad(format!("signature {i} has no protected header")))?;
        let header = b64url(protected).map_err(|e| {
            bad(format!(
                "signature {i}: protected header is not base64url: {e}"
            ))
        })?;
        let header: Protected = serde_json::from_slice(&header).map_err(|e| {
            bad(format!(
                "signature {i}: protected header lacks formatLength/formatTail: {e}"
            ))
        })?;
        if header.format_length > raw.len() {
            return Err(bad(format!(
                "signature {i}: formatLength {} is past the end of the {}-byte document",
                header.format_length,
                raw.len()
            )));
        }
        let tail = b64url(&header.format_tail)
            .map_err(|e| bad(format!("signature {i}: formatTail is not base64url: {e}")))?;
        let mut p = raw[..header.format_length].to_vec();
        p.extend_from_slice(&tail);
        match &payload {
            None => payload = Some(p),
            Some(first) if *first != p => {
                return Err(bad(format!(
                    "signature {i} signs another payload than signature 0"
                )))
            }
            Some(_) => {}
        }
    }
    let p = payload.expect("at least one signature");
    Ok((p, true))
}

/// The digest a registry gives the manifest document `raw`: for a signed schema 1 manifest the
/// sha256 of its JWS payload, for anything else the sha256 of the bytes. `None` for a signed
/// schema 1 document whose payload cannot be found.
pub fn registry_digest(raw: &[u8]) -> Option<Digest> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u64>,
        signatures: Option<serde::de::IgnoredAny>,
    }
    match serde_json::from_slice::<Probe>(raw) {
        Ok(p) if p.schema_version == Some(1) && p.signatures.is_some() => {
            payload("manifest", raw).ok().map(|(p, _)| Digest::of(&p))
        }
        _ => Some(Digest::of(raw)),
    }
}

/// Parses a schema 1 document: its payload, digest, layers and history.
pub fn parse(what: &str, raw: &[u8]) -> Result<Schema1, ConvertError> {
    let bad = |reason: String| ConvertError::Schema1 {
        what: what.to_string(),
        reason,
    };
    let (payload, signed) = payload(what, raw)?;
    let p: Payload = serde_json::from_slice(&payload).map_err(|e| {
        bad(format!(
            "the signed payload is not a schema 1 manifest: {e}"
        ))
    })?;
    if p.schema_version != 1 {
        return Err(bad(format!("schemaVersion is {}, not 1", p.schema_version)));
    }
    if p.fs_layers.is_empty() {
        return Err(bad("it lists no layers".into()));
    }
    if p.fs_layers.len() != p.history.len() {
        return Err(bad(format!(
            "{} fsLayers but {} history entries",
            p.fs_layers.len(),
            p.history.len()
        )));
    }
    let fs_layers = p
        .fs_layers
        .iter()
        .map(|l| {
            Digest::parse(&l.blob_sum).map_err(|e| bad(format!("blobSum {:?}: {e}", l.blob_sum)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Schema1 {
        digest: Digest::of(&payload),
        signed,
        name: p.name,
        tag: p.tag,
        architecture: p.architecture,
        fs_layers,
        history: p.history.into_iter().map(|h| h.v1_compatibility).collect(),
    })
}

/// The fields of a v1Compatibility document Docker reads for layers and history
/// (moby `image.V1Image`).
#[derive(Deserialize, Default)]
struct V1Image {
    #[serde(default)]
    id: String,
    #[serde(default)]
    parent: String,
    #[serde(default)]
    created: Option<String>,
    #[serde(default)]
    author: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    container_config: Option<ContainerConfig>,
    #[serde(default)]
    throwaway: bool,
}

#[derive(Deserialize, Default)]
struct ContainerConfig {
    #[serde(rename = "Cmd", default)]
    cmd: Option<StrSlice>,
}

/// Docker's `strslice.StrSlice`: a string or a list of strings.
#[derive(Deserialize)]
#[serde(untagged)]
enum StrSlice {
    One(String),
    Many(Vec<String>),
}

impl StrSlice {
    fn joined(&self) -> String {
        match self {
            StrSlice::One(s) => s.clone(),
            StrSlice::Many(v) => v.join(" "),
        }
    }
}

/// The platform fields of a v1Compatibility document.
#[derive(Deserialize, Default)]
struct V1Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: String,
}

fn v1_image(what: &str, json: &str) -> Result<V1Image, ConvertError> {
    serde_json::from_str(json).map_err(|e| ConvertError::Schema1 {
        what: what.to_string(),
        reason: format!("a v1Compatibility entry is not valid: {e}"),
    })
}

fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Schema1 {
    /// The platform the image is for: the manifest's `architecture` (else the top
    /// v1Compatibility's), with the top v1Compatibility's `os` (Linux when it does not say)
    /// and `variant`. `None` when neither names an architecture.
    pub fn platform(&self) -> Option<Platform> {
        let top: V1Platform = self
            .history
            .first()
            .and_then(|h| serde_json::from_str(h).ok())
            .unwrap_or_default();
        let architecture = [&self.architecture, &top.architecture]
            .into_iter()
            .find(|a| !a.is_empty())?
            .clone();
        Some(Platform {
            os: if top.os.is_empty() {
                "linux".into()
            } else {
                top.os
            },
            architecture,
            variant: (!top.variant.is_empty()).then_some(top.variant),
        })
    }

    /// The layers Docker pulls, bottom first, after moby's `fixManifestLayers`: every entry
    /// needs a valid v1 ID, the bottom one no parent, each other one its lower neighbour as
    /// parent; an ID repeated right after itself is one layer, an ID repeated elsewhere is an
    /// error.
    pub fn layers(&self, what: &str) -> Result<Vec<V1Layer>, ConvertError> {
        let bad = |reason: String| ConvertError::Schema1 {
            what: what.to_string(),
            reason,
        };
        let imgs: Vec<V1Image> = self
            .history
            .iter()
            .map(|h| v1_image(what, h))
            .collect::<Result<_, _>>()?;
        for img in &imgs {
            if !valid_id(&img.id) {
                return Err(bad(format!("v1 image ID {:?} is invalid", img.id)));
            }
        }
        if !imgs[imgs.len() - 1].parent.is_empty() {
            return Err(bad("the base layer names a parent".into()));
        }
        let mut seen = std::collections::HashSet::new();
        let mut last = "";
        for img in &imgs {
            if img.id != last && !seen.insert(img.id.as_str()) {
                return Err(bad(format!("v1 image ID {} appears twice", img.id)));
            }
            last = &img.id;
        }
        let mut keep: Vec<usize> = (0..imgs.len()).collect();
        for i in (0..imgs.len() - 1).rev() {
            if imgs[i].id == imgs[i + 1].id {
                keep.remove(i);
            } else if imgs[i].parent != imgs[i + 1].id {
                return Err(bad(format!(
                    "broken parent chain: expected {}, got {:?}",
                    imgs[i + 1].id,
                    imgs[i].parent
                )));
            }
        }
        Ok(keep
            .into_iter()
            .rev()
            .map(|i| V1Layer {
                blob: self.fs_layers[i].clone(),
                throwaway: imgs[i].throwaway,
                v1: self.history[i].clone(),
            })
            .collect())
    }

    /// The image config Docker 17.03 builds for this image: `layers` from [`Schema1::layers`]
    /// and the `diff_ids` of its non-throwaway layers, bottom first.
    pub fn config(
        &self,
        what: &str,
        layers: &[V1Layer],
        diff_ids: &[Digest],
    ) -> Result<Vec<u8>, ConvertError> {
        let bad = |reason: String| ConvertError::Schema1 {
            what: what.to_string(),
            reason,
        };
        let real = layers.iter().filter(|l| !l.throwaway).count();
        if real != diff_ids.len() {
            return Err(bad(format!(
                "{real} layers to apply but {} diff_ids",
                diff_ids.len()
            )));
        }
        let Some(top) = layers.last() else {
            return Err(bad("it lists no layers".into()));
        };
        let mut history = String::from("[");
        for (i, l) in layers.iter().enumerate() {
            let img = v1_image(what, &l.v1)?;
            if i > 0 {
                history.push(',');
            }
            let created = gojson::time(img.created.as_deref())
                .map_err(|e| bad(format!("layer {}: {e}", l.blob)))?;
            history.push_str(&format!("{{\"created\":{}", gojson::string(&created)));
            if !img.author.is_empty() {
                history.push_str(&format!(",\"author\":{}", gojson::string(&img.author)));
            }
            let created_by = img
                .container_config
                .and_then(|c| c.cmd)
                .map(|c| c.joined())
                .unwrap_or_default();
            if !created_by.is_empty() {
                history.push_str(&format!(",\"created_by\":{}", gojson::string(&created_by)));
            }
            if !img.comment.is_empty() {
                history.push_str(&format!(",\"comment\":{}", gojson::string(&img.comment)));
            }
            if l.throwaway {
                history.push_str(",\"empty_layer\":true");
            }
            history.push('}');
        }
        history.push(']');
        let mut rootfs = String::from("{\"type\":\"layers\"");
        if !diff_ids.is_empty() {
            let ids: Vec<String> = diff_ids
                .iter()
                .map(|d| gojson::string(&d.to_string()))
                .collect();
            rootfs.push_str(&format!(",\"diff_ids\":[{}]", ids.join(",")));
        }
        rootfs.push('}');

        let mut fields: BTreeMap<String, Box<RawValue>> = serde_json::from_str(&top.v1)
            .map_err(|e| bad(format!("the top v1Compatibility is not a JSON object: {e}")))?;
        for drop in ["id", "parent", "Size", "parent_id", "layer_id", "throwaway"] {
            fields.remove(drop);
        }
        let mut out = String::from("{");
        let mut first = true;
        let mut put = |out: &mut String, k: &str, v: &str| {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&gojson::string(k));
            out.push(':');
            out.push_str(v);
        };
        let mut pending = vec![("history", history), ("rootfs", rootfs)];
        for (k, v) in &fields {
            // `history` and `rootfs` replace any fields of the same name, in key order.
            while let Some((pk, _)) = pending.first() {
                if *pk < k.as_str() {
                    let (pk, pv) = pending.remove(0);
                    put(&mut out, pk, &pv);
                } else {
                    break;
                }
            }
            if k == "history" || k == "rootfs" {
                continue;
            }
            let compacted = gojson::compact(v.get())
                .map_err(|e| bad(format!("top v1Compatibility field {k:?}: {e}")))?;
            put(&mut out, k, &compacted);
        }
        for (pk, pv) in pending {
            put(&mut out, pk, &pv);
        }
        out.push('}');
        Ok(out.into_bytes())
    }
}

/// The Docker schema 2 manifest of a converted schema 1 image: the generated config and the
/// non-throwaway layers, bottom first, as Docker gzip layers with their upstream digests.
pub fn manifest(config: &[u8], layers: &[BlobRef]) -> Converted {
    let config = BlobRef {
        digest: Digest::of(config),
        size: config.len() as u64,
        media_type: media_type::DOCKER_CONFIG.into(),
    };
    let layers: Vec<BlobRef> = layers
        .iter()
        .map(|l| BlobRef {
            media_type: media_type::DOCKER_LAYER_GZIP.into(),
            ..l.clone()
        })
        .collect();
    super::docker_manifest(&config, &layers, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signed schema 1 manifest in libtrust's pretty form (signature bytes are not checked).
    fn signed(body: &str, tail: &str) -> Vec<u8> {
        // body is the payload without its tail; the tail is "\n}".
        let protected = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(
            r##"{{"formatLength":{},"formatTail":"{}","time":"2016-05-04T20:41:46Z"}}"##,
            body.len(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tail)
        ));
        format!(
            "{body},\n   \"signatures\": [\n      {{\n         \"header\": {{\"alg\": \"ES256\"}},\n         \"signature\": \"xx\",\n         \"protected\": \"{protected}\"\n      }}\n   ]\n}}"
        )
        .into_bytes()
    }

    const ID_TOP: &str = "2222222222222222222222222222222222222222222222222222222222222222";
    const ID_BASE: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const EMPTY: &str = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";
    const LAYER: &str = "sha256:f112334343777b75be77ec1f835e3bbbe7d7bd46e27b6a2ae35c6b3cfea0987c";

    fn pause_like_body() -> String {
        let top = format!(
            r##"{{"id":"{ID_TOP}","parent":"{ID_BASE}","created":"2016-05-04T06:26:41.522308365Z","container_config":{{"Cmd":["/bin/sh","-c","#(nop) ENTRYPOINT \u0026{{[\"/pause\"]}}"]}},"config":{{"Entrypoint":["/pause"],"Env":null}},"architecture":"amd64","docker_version":"1.9.1","os":"linux","throwaway":true,"Size":0}}"##
        );
        let base = format!(
            r##"{{"id":"{ID_BASE}","created":"2016-05-04T06:26:40.1Z","container_config":{{"Cmd":["/bin/sh -c #(nop) ADD file:b7eb6a in /pause"]}},"author":"someone <a@b>"}}"##
        );
        format!(
            "{{\n   \"schemaVersion\": 1,\n   \"name\": \"google_containers/pause-amd64\",\n   \"tag\": \"3.0\",\n   \"architecture\": \"amd64\",\n   \"fsLayers\": [\n      {{\"blobSum\": \"{EMPTY}\"}},\n      {{\"blobSum\": \"{LAYER}\"}}\n   ],\n   \"history\": [\n      {{\"v1Compatibility\": {}}},\n      {{\"v1Compatibility\": {}}}\n   ]",
            serde_json::to_string(&top).unwrap(),
            serde_json::to_string(&base).unwrap()
        )
    }

    #[test]
    fn the_digest_covers_the_jws_payload_only() {
        let body = pause_like_body();
        let raw = signed(&body, "\n}");
        let s = parse("x", &raw).unwrap();
        assert!(s.signed);
        let payload = format!("{body}\n}}");
        assert_eq!(s.digest, Digest::of(payload.as_bytes()));
        assert_ne!(s.digest, Digest::of(&raw));
        assert_eq!(s.name, "google_containers/pause-amd64");
        assert_eq!(s.fs_layers[0].to_string(), EMPTY);
        // Unsigned: the document itself.
        let u = parse("x", payload.as_bytes()).unwrap();
        assert!(!u.signed);
        assert_eq!(u.digest, s.digest);
        assert_eq!(registry_digest(&raw), Some(s.digest.clone()));
        assert_eq!(registry_digest(payload.as_bytes()), Some(s.digest.clone()));
        // Only schema 1 documents have a payload digest.
        let other = br#"{"schemaVersion":2,"signatures":[]}"#;
        assert_eq!(registry_digest(other), Some(Digest::of(other)));
    }

    #[test]
    fn refuses_bad_signature_headers() {
        let body = pause_like_body();
        let raw = signed(&body, "\n}");
        // A formatLength one byte short: a different payload, not valid JSON.
        let text = String::from_utf8(raw.clone()).unwrap();
        let (p_start, _) = text.rsplit_once("\"protected\": \"").unwrap();
        let header = format!(
            r##"{{"formatLength":{},"formatTail":"{}"}}"##,
            body.len() + 10_000,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("\n}")
        );
        let bad = format!(
            "{p_start}\"protected\": \"{}\"\n      }}\n   ]\n}}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(header)
        );
        let e = parse("img", bad.as_bytes()).unwrap_err().to_string();
        assert!(e.contains("img") && e.contains("past the end"), "{e}");
        let e = parse("img", br##"{"signatures":[]}"##)
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty"), "{e}");
        let e = parse("img", br##"{"signatures":[{"protected":"!!"}]}"##)
            .unwrap_err()
            .to_string();
        assert!(e.contains("base64url"), "{e}");
    }

    #[test]
    fn the_platform_comes_from_the_manifest_and_the_top_history_entry() {
        let body = pause_like_body();
        let s = parse("x", &signed(&body, "\n}")).unwrap();
        assert_eq!(s.platform().unwrap().to_string(), "linux/amd64");
        let arm = parse(
            "x",
            &signed(
                &body.replace("\"architecture\": \"amd64\"", "\"architecture\": \"arm64\""),
                "\n}",
            ),
        )
        .unwrap();
        assert_eq!(arm.platform().unwrap().to_string(), "linux/arm64");
        // No architecture in the manifest: the top entry's.
        let mut s2 = s.clone();
        s2.architecture.clear();
        assert_eq!(s2.platform().unwrap().to_string(), "linux/amd64");
        s2.history[0] = r#"{"os":"windows","architecture":"arm","variant":"v7"}"#.into();
        assert_eq!(s2.platform().unwrap().to_string(), "windows/arm/v7");
        s2.history[0] = "{}".into();
        assert_eq!(s2.platform(), None);
    }

    #[test]
    fn layers_follow_moby_fix_manifest_layers() {
        let body = pause_like_body();
        let s = parse("x", &signed(&body, "\n}")).unwrap();
        let layers = s.layers("x").unwrap();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].blob.to_string(), LAYER, "bottom first");
        assert!(!layers[0].throwaway);
        assert!(layers[1].throwaway);
        // A broken parent chain is refused.
        let broken = body.replace(
            &format!("\\\"parent\\\":\\\"{ID_BASE}\\\""),
            "\\\"parent\\\":\\\"\\\"",
        );
        let s = parse("x", &signed(&broken, "\n}")).unwrap();
        let e = s.layers("x").unwrap_err().to_string();
        assert!(e.contains("parent chain"), "{e}");
    }

    #[test]
    fn config_is_what_docker_builds() {
        let body = pause_like_body();
        let s = parse("x", &signed(&body, "\n}")).unwrap();
        let layers = s.layers("x").unwrap();
        let diff = Digest::of(b"diff");
        let config = s.config("x", &layers, std::slice::from_ref(&diff)).unwrap();
        let text = String::from_utf8(config.clone()).unwrap();
        let want = format!(
            concat!(
                r##"{{"architecture":"amd64","config":{{"Entrypoint":["/pause"],"Env":null}},"##,
                r##""container_config":{{"Cmd":["/bin/sh","-c","#(nop) ENTRYPOINT \u0026{{[\"/pause\"]}}"]}},"##,
                r##""created":"2016-05-04T06:26:41.522308365Z","docker_version":"1.9.1","##,
                r##""history":[{{"created":"2016-05-04T06:26:40.1Z","author":"someone \u003ca@b\u003e","created_by":"/bin/sh -c #(nop) ADD file:b7eb6a in /pause"}},"##,
                r##"{{"created":"2016-05-04T06:26:41.522308365Z","created_by":"/bin/sh -c #(nop) ENTRYPOINT \u0026{{[\"/pause\"]}}","empty_layer":true}}],"##,
                r##""os":"linux","rootfs":{{"type":"layers","diff_ids":["{}"]}}}}"##
            ),
            diff
        );
        assert_eq!(text, want);
        // Deterministic, and a valid image config.
        assert_eq!(
            config,
            s.config("x", &layers, std::slice::from_ref(&diff)).unwrap()
        );
        let v: serde_json::Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(v["rootfs"]["diff_ids"][0], diff.to_string());
        // The number of diff_ids must match the layers applied.
        assert!(s.config("x", &layers, &[]).is_err());
    }

    #[test]
    fn manifest_lists_the_layers_as_docker_gzip() {
        let config = b"{}";
        let layer = BlobRef {
            digest: Digest::parse(LAYER).unwrap(),
            size: 42,
            media_type: String::new(),
        };
        let m = manifest(config, &[layer]);
        let text = String::from_utf8(m.raw.clone()).unwrap();
        assert_eq!(
            text,
            format!(
                "{{\n   \"schemaVersion\": 2,\n   \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\",\n   \"config\": {{\n      \"mediaType\": \"application/vnd.docker.container.image.v1+json\",\n      \"size\": 2,\n      \"digest\": \"{}\"\n   }},\n   \"layers\": [\n      {{\n         \"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\",\n         \"size\": 42,\n         \"digest\": \"{LAYER}\"\n      }}\n   ]\n}}",
                Digest::of(config)
            )
        );
        assert_eq!(m.digest, Digest::of(&m.raw));
    }
}
