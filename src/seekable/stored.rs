//! Stored frames: zstd frames made only of raw blocks, for data that does not compress.
//!
//! Container layers are gzip or zstd already; zstd gains nothing on them (a bundle of gzip
//! layers compressed at level 3 is within 0.01% of the input) but spends most of the packing CPU
//! trying. A stored frame is what zstd itself emits for incompressible input (RFC 8878 §3.1.1.2,
//! `Block_Type` 0, `Raw_Block`), written here directly: a frame header, the data in blocks of at
//! most 128 KiB behind 3-byte block headers, and the XXH64 content checksum. Every zstd decoder
//! reads it; writing it costs a copy and a checksum.
//! Spec: <https://www.rfc-editor.org/rfc/rfc8878#section-3.1.1>.

use std::io::{self, Write};

use super::ZSTD_MAGIC;

/// `Block_Maximum_Size`: a block holds at most 128 KiB (RFC 8878 §3.1.1.2.4).
const MAX_BLOCK: usize = 128 << 10;
/// Window log used when the frame header carries no content size: 2^17 = one block.
const WINDOW_LOG: u8 = 17;

/// Bytes `data` takes as a stored frame: the tests' independent check of what [`write`]
/// returns.
#[cfg(test)]
pub(super) fn stored_len(data: &[u8], checksum: bool, content_size: bool) -> usize {
    let blocks = data.len().div_ceil(MAX_BLOCK).max(1);
    4 + header_len(data.len(), content_size)
        + blocks * 3
        + data.len()
        + if checksum { 4 } else { 0 }
}

/// Frame header bytes after the magic: the descriptor plus the window descriptor or the
/// content size field.
#[cfg(test)]
fn header_len(len: usize, content_size: bool) -> usize {
    1 + if content_size { fcs_len(len as u64) } else { 1 }
}

/// `Frame_Content_Size` field size for a single-segment frame of `n` bytes.
fn fcs_len(n: u64) -> usize {
    match n {
        0..=255 => 1,
        256..=65_791 => 2,
        65_792..=0xFFFF_FFFF => 4,
        _ => 8,
    }
}

/// The frame's `Content_Checksum`: the low 32 bits of XXH64(data, seed 0).
pub(super) fn content_checksum(data: &[u8]) -> u32 {
    xxhash_rust::xxh64::xxh64(data, 0) as u32
}

/// Writes `data` to `out` as one stored zstd frame, straight from `data` (no copy into a frame
/// buffer). With `content_size`, the frame is single segment and records its size (window =
/// content); without, it declares a 128 KiB window. A `checksum` (see [`content_checksum`])
/// ends the frame. Returns the frame's length.
pub(super) fn write(
    data: &[u8],
    checksum: Option<u32>,
    content_size: bool,
    out: &mut dyn Write,
) -> io::Result<usize> {
    let mut header = Vec::with_capacity(14);
    header.extend_from_slice(&ZSTD_MAGIC.to_le_bytes());
    let n = data.len() as u64;
    let checksum_flag = if checksum.is_some() { 1 << 2 } else { 0 };
    if content_size {
        // Single_Segment_flag (bit 5) with Frame_Content_Size_flag (bits 6-7): 0 means a
        // 1-byte field when single segment.
        let (fcs_flag, field): (u8, Vec<u8>) = match fcs_len(n) {
            1 => (0, vec![n as u8]),
            2 => (1, ((n - 256) as u16).to_le_bytes().to_vec()),
            4 => (2, (n as u32).to_le_bytes().to_vec()),
            _ => (3, n.to_le_bytes().to_vec()),
        };
        header.push(fcs_flag << 6 | 1 << 5 | checksum_flag);
        header.extend_from_slice(&field);
    } else {
        // No content size, not single segment: a Window_Descriptor of exponent
        // WINDOW_LOG - 10, mantissa 0.
        header.push(checksum_flag);
        header.push((WINDOW_LOG - 10) << 3);
    }
    out.write_all(&header)?;
    let mut len = header.len();
    let mut chunks = data.chunks(MAX_BLOCK).peekable();
    if chunks.peek().is_none() {
        // A frame has at least one block: an empty last raw block.
        out.write_all(&block_header(0, true))?;
        len += 3;
    }
    while let Some(chunk) = chunks.next() {
        out.write_all(&block_header(chunk.len(), chunks.peek().is_none()))?;
        out.write_all(chunk)?;
        len += 3 + chunk.len();
    }
    if let Some(h) = checksum {
        out.write_all(&h.to_le_bytes())?;
        len += 4;
    }
    Ok(len)
}

/// A raw block's 3-byte header: `Last_Block` (bit 0), `Block_Type` 0 (bits 1-2), and
/// `Block_Size` (bits 3-23), little-endian.
fn block_header(size: usize, last: bool) -> [u8; 3] {
    debug_assert!(size <= MAX_BLOCK);
    let v = (size as u32) << 3 | u32::from(last);
    let b = v.to_le_bytes();
    [b[0], b[1], b[2]]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::test_util::Prng;
    use std::io::Read;

    /// `data` as one stored frame in memory.
    fn encode(data: &[u8], checksum: bool, content_size: bool, out: &mut Vec<u8>) {
        let before = out.len();
        let n = write(
            data,
            checksum.then(|| content_checksum(data)),
            content_size,
            out,
        )
        .expect("writing to a Vec does not fail");
        assert_eq!(n, out.len() - before, "write returns the frame's length");
    }

    fn decode(frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(frame)
            .expect("decoder")
            .read_to_end(&mut out)
            .expect("decodes");
        out
    }

    #[test]
    fn every_size_and_flag_decodes_and_has_the_stated_length() {
        let data = Prng::new(9).bytes(3 * MAX_BLOCK + 77);
        let sizes = [
            0,
            1,
            255,
            256,
            65_791,
            65_792,
            MAX_BLOCK - 1,
            MAX_BLOCK,
            MAX_BLOCK + 1,
            2 * MAX_BLOCK,
            data.len(),
        ];
        for n in sizes {
            for (checksum, content_size) in
                [(true, true), (true, false), (false, true), (false, false)]
            {
                let mut f = Vec::new();
                encode(&data[..n], checksum, content_size, &mut f);
                assert_eq!(
                    f.len(),
                    stored_len(&data[..n], checksum, content_size),
                    "{n}"
                );
                assert!(decode(&f) == data[..n], "{n} {checksum} {content_size}");
                if content_size {
                    let declared = zstd::zstd_safe::get_frame_content_size(&f).ok().flatten();
                    assert_eq!(declared, Some(n as u64), "{n}");
                }
            }
        }
    }

    #[test]
    fn a_wrong_checksum_is_caught_by_the_decoder() {
        let data = Prng::new(10).bytes(1000);
        let mut f = Vec::new();
        encode(&data, true, true, &mut f);
        let k = f.len() - 1;
        f[k] ^= 1;
        let mut out = Vec::new();
        let r = zstd::stream::read::Decoder::new(&f[..])
            .expect("decoder")
            .read_to_end(&mut out);
        let e = r.expect_err("corrupt checksum accepted");
        assert!(e.to_string().contains("doesn't match checksum"), "{e}");
    }
}
