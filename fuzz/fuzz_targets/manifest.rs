//! `manifest::parse` with every media type airlock knows (and a few it refuses): never panics,
//! and every digest it returns is a valid sha256 digest.
#![no_main]

use airlock::digest::Digest;
use airlock::manifest::{self, Parsed};
use airlock::media_type;
use libfuzzer_sys::fuzz_target;

const TYPES: &[&str] = &[
    media_type::OCI_INDEX,
    media_type::OCI_MANIFEST,
    media_type::DOCKER_LIST,
    media_type::DOCKER_MANIFEST,
    media_type::DOCKER_SCHEMA1,
    media_type::DOCKER_SCHEMA1_SIGNED,
    "application/vnd.docker.distribution.manifest.v2+json; charset=utf-8",
    "application/json",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, raw)) = data.split_first() else {
        return;
    };
    let mt = TYPES[usize::from(sel) % TYPES.len()];
    if let Ok(p) = manifest::parse("fuzz", mt, raw) {
        let digests: Vec<&Digest> = match &p {
            Parsed::Index(children) => children.iter().map(|c| &c.blob.digest).collect(),
            Parsed::Image { .. } | Parsed::Schema1 { .. } => {
                p.blobs().into_iter().map(|b| &b.digest).collect()
            }
        };
        for d in digests {
            assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(d));
            assert!(!d.hex().contains('/') && d.hex().len() == 64);
        }
    }
    if let Ok(s) = std::str::from_utf8(raw) {
        if let Ok(d) = Digest::parse(s) {
            assert_eq!(d.to_string(), s);
        }
    }
});
