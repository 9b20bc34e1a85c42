//! `Reference::parse` on arbitrary text: never panics, and what it accepts prints back to a
//! reference that parses to the same thing.
#![no_main]

use airlock::reference::Reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = Reference::parse(s) {
        let printed = r.to_string();
        let again = Reference::parse(&printed)
            .unwrap_or_else(|e| panic!("{s:?} parsed, its printed form {printed:?} did not: {e}"));
        assert_eq!(again, r, "{s:?} -> {printed:?}");
        let _ = r.manifest_ref();
        let _ = r.name();
    }
});
