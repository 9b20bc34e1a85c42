//! The inventory parser (`pack --base-registry-inventory`) on arbitrary bytes: never panics,
//! and the blobs of an inventory it accepts are valid digests.
#![no_main]

use airlock::digest::Digest;
use airlock::inventory::{Inventory, INVENTORY_FORMAT};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(inv) = Inventory::parse(data) {
        assert_eq!(inv.format, INVENTORY_FORMAT);
        for d in inv.blobs().keys() {
            assert_eq!(Digest::parse(&d.to_string()).as_ref(), Ok(d));
        }
    }
});
