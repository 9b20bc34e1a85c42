//! `SeekTable::read` on arbitrary bytes, then frames and ranges read through it: never panics,
//! and every frame that decompresses has exactly the size its table entry declares.
#![no_main]

use std::io::Read;

use airlock::seekable::{SeekTable, SeekableReader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let src = data.to_vec();
    let Ok(Some(t)) = SeekTable::read(&src) else {
        return;
    };
    assert!(t.compressed_len() < data.len() as u64 || t.frames() == 0);
    let r = SeekableReader::new(&src, &t);
    let mut out = Vec::new();
    for i in 0..t.frames().min(8) {
        if r.decompress_frame(i, &mut out).is_ok() {
            assert_eq!(out.len() as u64, u64::from(t.frame(i).d_size));
        }
    }
    let len = t.decompressed_len();
    for (off, n) in [
        (0, len.min(1 << 20)),
        (len / 2, 4096),
        (len.saturating_sub(1), 2),
    ] {
        let mut buf = Vec::new();
        if r.range(off, n).read_to_end(&mut buf).is_ok() {
            assert_eq!(buf.len() as u64, n);
        }
    }
    for f in r.decompress_frames_par(0..t.frames().min(4)).with_window(2) {
        let _ = f;
    }
});
