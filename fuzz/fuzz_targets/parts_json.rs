//! The `parts.json` parser on arbitrary bytes: never panics, and a layout it accepts has at
//! most `MAX_PARTS` parts, none empty, named in order, every one but the last of the split size.
#![no_main]

use std::path::Path;

use airlock::bundle::limits::MAX_PARTS;
use airlock::parts;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = Path::new("b.tar.zst");
    if let Ok(m) = parts::parse_manifest(&parts::manifest_path(base), base, data) {
        assert!(!m.parts.is_empty() && m.parts.len() <= MAX_PARTS);
        let last = m.parts.len() - 1;
        for (i, p) in m.parts.iter().enumerate() {
            assert!(p.size > 0 && p.size <= m.split_size);
            assert!(i == last || p.size == m.split_size);
            assert_eq!(p.name, format!("b.tar.zst.{i:03}"));
        }
    }
});
