//! The bundle reader and the structural check over an arbitrary *tar* stream, wrapped in a
//! valid seekable zstd container (frames of 512 bytes, so every tar header is its own frame,
//! as `airlock pack` writes them). This reaches the tar walk and the checks that the raw
//! `bundle` target rarely gets past the compressed container to. The same file is read
//! sequentially too (as `verify -` reads it), through the same entry rules.
#![no_main]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use airlock::bundle::sequential::Sequential;
use airlock::bundle::{check, reader::BundleReader};
use airlock::progress::Silent;
use airlock::seekable::{ReadAt, SeekableWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut w = SeekableWriter::new(Vec::new(), 1, 512);
    if w.write_all(data).is_err() {
        return;
    }
    let Ok(file) = w.finish() else { return };
    let mut seq = Sequential::stdin(Path::new("-"), Box::new(std::io::Cursor::new(file.clone())));
    let _ = airlock::verify::verify(&mut seq, 1, &Silent);
    let src: Arc<dyn ReadAt> = Arc::new(file);
    let Ok(mut r) = BundleReader::from_source(Path::new("fuzz.tar.zst"), src) else {
        return;
    };
    for e in r.entries() {
        assert!(!e.name.starts_with('/') && !e.name.split('/').any(|p| p == ".."));
        assert!(e.offset + e.size <= data.len() as u64);
    }
    let _ = check::check(&r);
    let _ = airlock::verify::verify(&mut r, 1, &Silent);
});
