//! The sequential reader (a bundle without its seek table, or standard input) over arbitrary
//! bytes: never panics, never allocates from a hostile size. The first byte chooses:
//! - 0: the rest is a tar stream. It is compressed as the plain zstd tool does and read as a
//!   file (in as many passes as its order needs), and the same tar is wrapped in a seekable
//!   container (every 512 bytes a frame, as `airlock pack` starts every header on its own)
//!   and read through the seek table. Both must reach the same verdict: both refuse the
//!   bundle, or both list the same problems (the one contract, two drivers).
//! - anything else: the rest is the compressed stream itself, read once as standard input.
#![no_main]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use airlock::bundle::reader::BundleReader;
use airlock::bundle::sequential::Sequential;
use airlock::progress::Silent;
use airlock::seekable::{ReadAt, SeekableWriter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode != 0 {
        let stdin = Box::new(std::io::Cursor::new(rest.to_vec()));
        let _ = airlock::verify::verify(&mut Sequential::stdin(Path::new("-"), stdin), 1, &Silent);
        return;
    }
    let plain = zstd::stream::encode_all(rest, 1).expect("compressing in memory");
    let src: Arc<dyn ReadAt> = Arc::new(plain);
    let mut file = Sequential::file(Path::new("plain.tar.zst"), src, "no seek table".into());
    let in_order = airlock::verify::verify(&mut file, 1, &Silent);
    let mut w = SeekableWriter::new(Vec::new(), 1, 512);
    if w.write_all(rest).is_err() {
        return;
    }
    let Ok(seekable) = w.finish() else { return };
    let Ok(mut r) = BundleReader::from_source(Path::new("fuzz.tar.zst"), Arc::new(seekable)) else {
        return;
    };
    let through_table = airlock::verify::verify(&mut r, 1, &Silent);
    match (in_order, through_table) {
        (Ok(a), Ok(b)) => {
            let text = |r: &airlock::verify::VerifyReport| -> Vec<String> {
                r.problems.iter().map(|p| p.to_string()).collect()
            };
            assert_eq!(text(&a), text(&b), "the two readers disagree");
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!(
            "one reader refused the bundle, the other did not: in order {:?}, through the table {:?}",
            a.map(|r| r.problems.len()),
            b.map(|r| r.problems.len())
        ),
    }
});
