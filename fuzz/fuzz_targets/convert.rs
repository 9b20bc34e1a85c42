//! The conversions of issue 12 on any input: a schema 1 document (its JWS payload, layers and
//! the config Docker would build), an OCI manifest to Docker schema 2, and an index's entries
//! to a Docker manifest list. Never panics; whatever a conversion writes is deterministic and
//! reads back as the Docker document it claims to be.
#![no_main]

use airlock::convert::{self, oci, schema1};
use airlock::digest::Digest;
use airlock::manifest::{self, BlobRef, Parsed};
use airlock::media_type;
use libfuzzer_sys::fuzz_target;

const TYPES: &[&str] = &[
    media_type::OCI_MANIFEST,
    media_type::DOCKER_MANIFEST,
    media_type::OCI_INDEX,
    media_type::DOCKER_LIST,
    media_type::DOCKER_SCHEMA1_SIGNED,
];

/// A converted document reads back as `media_type`.
fn reads_back(c: &convert::Converted) {
    assert_eq!(c.digest, Digest::of(&c.raw));
    manifest::parse("converted", c.media_type, &c.raw).expect("a converted document parses");
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, raw)) = data.split_first() else {
        return;
    };
    let mt = TYPES[usize::from(sel) % TYPES.len()];

    if let Ok(s) = schema1::parse("fuzz", raw) {
        if let Ok(layers) = s.layers("fuzz") {
            let applied: Vec<BlobRef> = layers
                .iter()
                .filter(|l| !l.throwaway)
                .map(|l| BlobRef {
                    digest: l.blob.clone(),
                    size: 1,
                    media_type: media_type::DOCKER_LAYER_GZIP.into(),
                })
                .collect();
            let ids: Vec<Digest> = (0..applied.len()).map(|i| Digest::of(&[i as u8])).collect();
            if let Ok(config) = s.config("fuzz", &layers, &ids) {
                serde_json::from_slice::<serde_json::Value>(&config).expect("a config is JSON");
                assert_eq!(s.config("fuzz", &layers, &ids).ok(), Some(config.clone()));
                reads_back(&schema1::manifest(&config, &applied));
            }
        }
    }

    if let Ok(c) = oci::to_docker("fuzz", mt, raw) {
        reads_back(&c);
        if let Ok(Parsed::Image { config, layers }) = manifest::parse("c", c.media_type, &c.raw) {
            assert!(!convert::needs_conversion(c.media_type, &config, &layers));
        }
    }

    if let Ok(entries) = oci::index_entries("fuzz", mt, raw) {
        let list: Vec<_> = entries
            .into_iter()
            .filter(|e| e.kind == oci::EntryKind::Image)
            .filter_map(|e| Some((e.blob, e.platform?)))
            .collect();
        reads_back(&convert::docker_list(&list));
    }
});
