//! The bundle reader over arbitrary bytes, then the structural check and `verify`: never
//! panics, never allocates from a hostile size.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use airlock::bundle::{check, reader::BundleReader};
use airlock::progress::Silent;
use airlock::seekable::ReadAt;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src: Arc<dyn ReadAt> = Arc::new(data.to_vec());
    let Ok(mut r) = BundleReader::from_source(Path::new("fuzz.tar.zst"), src) else {
        return;
    };
    for e in r.entries() {
        assert!(!e.name.starts_with('/') && !e.name.split('/').any(|p| p == ".."));
    }
    let _ = check::check(&r);
    let _ = airlock::verify::verify(&mut r, 1, &Silent);
});
