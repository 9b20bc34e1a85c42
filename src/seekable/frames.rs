//! Walking the frames of a zstd file without decompressing anything: frame headers, block
//! headers and skippable frames only (RFC 8878 sections 3.1.1 and 3.1.2), so a file of any
//! size costs one small read per 128 KiB block. It tells where a stream ends: cleanly after
//! its last frame, inside a frame (the file was cut short), or at bytes that are no frame
//! (something was appended), which is what a file without a seek table is diagnosed by.

use super::reader::parse_header;
use super::{read_exact_at, ReadAt, ZSTD_MAGIC};

/// Where the frames of a file end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Every byte belongs to a complete frame.
    Clean,
    /// The file ends inside the frame that starts at `frame_start`.
    Cut { frame_start: u64 },
    /// The bytes at `at` begin no frame (nothing that follows is zstd).
    NotAFrame { at: u64 },
}

/// What a walk over a file's frames found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Walk {
    /// Complete zstd (not skippable) frames.
    pub frames: u64,
    /// Complete skippable frames (a seek table is one).
    pub skippable: u64,
    /// Where the last complete zstd frame starts.
    pub last_frame: Option<u64>,
    pub end: End,
}

/// Walks the frames of `src` from its first byte.
pub fn walk(src: &dyn ReadAt) -> Walk {
    let len = src.len();
    let mut w = Walk {
        frames: 0,
        skippable: 0,
        last_frame: None,
        end: End::Clean,
    };
    let mut at = 0u64;
    while at < len {
        match frame_end(src, at, len) {
            Step::Frame(next) => {
                w.frames += 1;
                w.last_frame = Some(at);
                at = next;
            }
            Step::Skippable(next) => {
                w.skippable += 1;
                at = next;
            }
            Step::Cut => {
                w.end = End::Cut { frame_start: at };
                return w;
            }
            Step::NotAFrame => {
                w.end = End::NotAFrame { at };
                return w;
            }
        }
    }
    w
}

enum Step {
    /// A complete zstd frame, ending here.
    Frame(u64),
    /// A complete skippable frame, ending here.
    Skippable(u64),
    /// The file ends inside the frame.
    Cut,
    NotAFrame,
}

/// Magic numbers of skippable frames: 0x184D2A50 to 0x184D2A5F.
fn is_skippable(magic: u32) -> bool {
    magic & 0xFFFF_FFF0 == 0x184D_2A50
}

/// The frame that starts at `at`.
fn frame_end(src: &dyn ReadAt, at: u64, len: u64) -> Step {
    // The longest frame header: magic, descriptor, window, dictionary ID (4) and size (8).
    let mut head = [0u8; 18];
    let n = (len - at).min(head.len() as u64) as usize;
    if read_exact_at(src, &mut head[..n], at).is_err() || n < 4 {
        return Step::Cut;
    }
    let magic = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    if is_skippable(magic) {
        if n < 8 {
            return Step::Cut;
        }
        let size = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let end = at + 8 + u64::from(size);
        return if end <= len {
            Step::Skippable(end)
        } else {
            Step::Cut
        };
    }
    if magic != ZSTD_MAGIC {
        return Step::NotAFrame;
    }
    // A dictionary is no obstacle to walking: its ID only lengthens the header.
    let header = match header_len(&head[..n]) {
        Some(h) => h,
        None => return Step::Cut,
    };
    let mut pos = at + header.0 as u64;
    loop {
        let mut b = [0u8; 3];
        if pos + 3 > len || read_exact_at(src, &mut b, pos).is_err() {
            return Step::Cut;
        }
        let h = u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16;
        let last = h & 1 == 1;
        let size = u64::from(h >> 3);
        pos += 3 + match (h >> 1) & 3 {
            // RLE: one byte repeated `size` times.
            1 => 1,
            3 => return Step::NotAFrame,
            _ => size,
        };
        if pos > len {
            return Step::Cut;
        }
        if last {
            let end = pos + if header.1 { 4 } else { 0 };
            return if end <= len {
                Step::Frame(end)
            } else {
                Step::Cut
            };
        }
    }
}

/// The length of the frame header in `b` and whether a checksum ends the frame; `None` when
/// `b` holds less than the whole header.
fn header_len(b: &[u8]) -> Option<(usize, bool)> {
    match parse_header(b) {
        Ok(h) => Some((h.len, h.checksum)),
        Err(_) if b.len() >= 5 && b[4] & 3 != 0 => {
            // A dictionary frame: parse_header refuses it, the walk only needs its length.
            let mut plain = b.to_vec();
            let dict_len = [0usize, 1, 2, 4][usize::from(b[4] & 3)];
            plain[4] &= !3;
            let single = b[4] & 0x20 != 0;
            let at = 5 + usize::from(!single);
            plain.drain(at..(at + dict_len).min(plain.len()));
            parse_header(&plain)
                .ok()
                .map(|h| (h.len + dict_len, h.checksum))
        }
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::test_util::{seekable, Prng};

    #[test]
    fn walks_to_the_end_or_says_where_it_stops() {
        let data = Prng::new(7).text(300_000);
        let file = seekable(&data, 64 << 10, true);
        let w = walk(&file);
        assert_eq!(w.end, End::Clean);
        assert_eq!(w.frames, 5);
        assert_eq!(w.skippable, 1, "the seek table");
        // Cut anywhere inside a frame: the walk says which frame.
        let cut = file[..file.len() / 2].to_vec();
        let w = walk(&cut);
        assert!(
            matches!(w.end, End::Cut { frame_start } if frame_start > 0 && frame_start < cut.len() as u64),
            "{w:?}"
        );
        // Cut inside the seek table.
        let cut = file[..file.len() - 3].to_vec();
        assert!(matches!(walk(&cut).end, End::Cut { .. }));
        // Bytes appended: where they start.
        let mut more = file.clone();
        more.extend_from_slice(b"appended garbage");
        assert_eq!(
            walk(&more).end,
            End::NotAFrame {
                at: file.len() as u64
            }
        );
        // Plain zstd, one frame with a checksum, as the zstd tool writes it.
        let mut plain = Vec::new();
        let mut e = zstd::stream::write::Encoder::new(&mut plain, 3).unwrap();
        e.include_checksum(true).unwrap();
        std::io::Write::write_all(&mut e, &data).unwrap();
        e.finish().unwrap();
        let w = walk(&plain);
        assert_eq!((w.frames, w.skippable, w.end), (1, 0, End::Clean));
        let w = walk(&plain[..plain.len() - 2].to_vec());
        assert_eq!(w.end, End::Cut { frame_start: 0 });
        // Not zstd at all.
        assert_eq!(
            walk(&b"\x1f\x8b\x08\x00".to_vec()).end,
            End::NotAFrame { at: 0 }
        );
    }
}
