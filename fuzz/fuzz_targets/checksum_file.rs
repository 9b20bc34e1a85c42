//! The `.sha256` checksum file parser on arbitrary bytes: never panics, and what it accepts is
//! at most `MAX_PARTS` lines of a valid digest and a plain file name beside the file.
#![no_main]

use airlock::bundle::limits::MAX_PARTS;
use airlock::digest::Digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(lines) = airlock::sidecar::parse(data) {
        assert!(!lines.is_empty() && lines.len() <= MAX_PARTS);
        for (d, name) in &lines {
            assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(d));
            assert!(!name.is_empty() && !name.contains('/'), "{name:?}");
        }
    }
});
