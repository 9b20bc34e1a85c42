//! Building altered bundles for tests: copy a real bundle entry by entry through an edit
//! function, written with airlock's own bundle writer (so only the edited part is wrong).

#![allow(dead_code)]

use std::io::Read;
use std::path::Path;

use airlock::bundle::reader::BundleReader;
use airlock::bundle::writer::{BundleWriter, WriteOptions};

/// What to do with one entry.
pub enum Edit {
    Keep,
    Replace(Vec<u8>),
    Drop,
}

/// Copies `src` to `dst`, letting `edit` change or drop entries (by name, with their bytes).
pub fn rewrite(src: &Path, dst: &Path, edit: impl Fn(&str, &[u8]) -> Edit) {
    let r = BundleReader::open(src).unwrap();
    let out = std::fs::File::create(dst).unwrap();
    let mut w = BundleWriter::new(out, &WriteOptions::default());
    for e in r.entries() {
        let mut data = Vec::new();
        r.open_entry(e).read_to_end(&mut data).unwrap();
        match edit(&e.name, &data) {
            Edit::Keep => w.add_bytes(&e.name, &data).unwrap(),
            Edit::Replace(d) => w.add_bytes(&e.name, &d).unwrap(),
            Edit::Drop => {}
        }
    }
    w.finish().unwrap();
}

/// Flips one byte in the middle of `data`.
pub fn flip(data: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    let i = d.len() / 2;
    d[i] ^= 0x55;
    d
}
