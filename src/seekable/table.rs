//! The seek table: parsing and validating it from the end of a file, and encoding it.
//!
//! Layout (spec "Seek Table Format"): a skippable frame `[0x184D2A5E][Frame_Size]` whose payload
//! is `Number_Of_Frames` entries of `Compressed_Size u32, Decompressed_Size u32[, Checksum u32]`
//! followed by the 9-byte footer `Number_Of_Frames u32, Descriptor u8, 0x8F92EAB1`.

use super::{
    read_exact_at, ReadAt, SeekableError, FOOTER_LEN, MAX_FRAMES, MAX_FRAME_DECOMPRESSED,
    SEEKABLE_MAGIC, SKIPPABLE_HEADER_LEN, SKIPPABLE_MAGIC,
};

/// Descriptor bit 7: every entry carries a 4-byte checksum.
const CHECKSUM_FLAG: u8 = 0x80;
/// Descriptor bits 2-6 are reserved and must be zero; bits 0-1 are "unused" and ignored.
const RESERVED_BITS: u8 = 0x7C;

/// Where one frame lives, compressed and decompressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// Position of the frame in the table.
    pub index: usize,
    /// Offset of the frame's first byte in the file.
    pub c_offset: u64,
    /// Compressed bytes of the frame.
    pub c_size: u32,
    /// Offset of the frame's first byte in the decompressed stream.
    pub d_offset: u64,
    /// Decompressed bytes of the frame, as declared by the table (checked when decompressing).
    pub d_size: u32,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    c_offset: u64,
    d_offset: u64,
    c_size: u32,
    d_size: u32,
}

/// A validated seek table: frames tile the file before the table exactly, each no larger than
/// [`MAX_FRAME_DECOMPRESSED`] when decompressed.
#[derive(Debug, Clone)]
pub struct SeekTable {
    entries: Vec<Entry>,
    compressed_len: u64,
    decompressed_len: u64,
}

impl SeekTable {
    /// Reads the seek table from the end of `src`.
    ///
    /// `Ok(None)` when the file does not end in the seekable magic (a plain zstd file, or one
    /// shorter than the footer); `Err` when the magic is there but the table is corrupt or lies.
    /// Per-frame checksums in the table (descriptor bit 7) are accepted but not verified: the
    /// frames' own zstd checksums and exact decompressed sizes are what airlock checks.
    pub fn read(src: &dyn ReadAt) -> Result<Option<SeekTable>, SeekableError> {
        let file_len = src.len();
        if file_len < FOOTER_LEN {
            return Ok(None);
        }
        let mut footer = [0u8; FOOTER_LEN as usize];
        read_table(src, &mut footer, file_len - FOOTER_LEN)?;
        if le32(&footer[5..9]) != SEEKABLE_MAGIC {
            return Ok(None);
        }
        let frames = u64::from(le32(&footer[0..4]));
        let descriptor = footer[4];
        if descriptor & RESERVED_BITS != 0 {
            return Err(SeekableError::ReservedBits { descriptor });
        }
        if frames > MAX_FRAMES {
            return Err(SeekableError::TooManyFrames {
                frames,
                max: MAX_FRAMES,
            });
        }
        let entry_len: u64 = if descriptor & CHECKSUM_FLAG != 0 {
            12
        } else {
            8
        };
        // No overflow: frames <= 2^26.
        let payload_len = frames * entry_len + FOOTER_LEN;
        let table_len = SKIPPABLE_HEADER_LEN + payload_len;
        if table_len > file_len {
            return Err(SeekableError::TableLargerThanFile {
                frames,
                table_len,
                file_len,
            });
        }
        let table_start = file_len - table_len;
        // Only now, with the table known to fit in the file, allocate for it.
        let mut raw = vec![0u8; (table_len - FOOTER_LEN) as usize];
        read_table(src, &mut raw, table_start)?;
        let found = le32(&raw[0..4]);
        if found != SKIPPABLE_MAGIC {
            return Err(SeekableError::SkippableMagic {
                offset: table_start,
                found,
            });
        }
        let declared = le32(&raw[4..8]);
        if u64::from(declared) != payload_len {
            return Err(SeekableError::FrameSizeMismatch {
                offset: table_start,
                frames,
                declared,
                expected: payload_len,
            });
        }
        let mut entries = Vec::with_capacity(frames as usize);
        let (mut c_offset, mut d_offset) = (0u64, 0u64);
        for (index, e) in raw[8..].chunks_exact(entry_len as usize).enumerate() {
            let (c_size, d_size) = (le32(&e[0..4]), le32(&e[4..8]));
            if d_size as usize > MAX_FRAME_DECOMPRESSED {
                return Err(SeekableError::FrameTooLarge { index, d_size });
            }
            if c_size == 0 {
                return Err(SeekableError::EmptyFrame { index, c_offset });
            }
            entries.push(Entry {
                c_offset,
                d_offset,
                c_size,
                d_size,
            });
            // No overflow: at most 2^26 frames of at most 2^32 bytes each.
            c_offset += u64::from(c_size);
            d_offset += u64::from(d_size);
        }
        if c_offset != table_start {
            return Err(SeekableError::CompressedSizesMismatch {
                sum: c_offset,
                expected: table_start,
            });
        }
        Ok(Some(SeekTable {
            entries,
            compressed_len: c_offset,
            decompressed_len: d_offset,
        }))
    }

    /// Number of frames.
    pub fn frames(&self) -> usize {
        self.entries.len()
    }

    /// Total decompressed bytes (the content of the file).
    pub fn decompressed_len(&self) -> u64 {
        self.decompressed_len
    }

    /// Total compressed bytes of the frames, excluding the seek table.
    pub fn compressed_len(&self) -> u64 {
        self.compressed_len
    }

    /// Frame `i`. Panics if `i >= self.frames()`, like slice indexing; see [`SeekTable::get`].
    pub fn frame(&self, i: usize) -> FrameInfo {
        match self.get(i) {
            Some(f) => f,
            None => panic!("frame index {i} out of range ({} frames)", self.frames()),
        }
    }

    /// Frame `i`, or `None` if out of range.
    pub fn get(&self, i: usize) -> Option<FrameInfo> {
        self.entries.get(i).map(|e| FrameInfo {
            index: i,
            c_offset: e.c_offset,
            c_size: e.c_size,
            d_offset: e.d_offset,
            d_size: e.d_size,
        })
    }

    /// The frame holding decompressed byte `offset`, or `None` past the end. Empty frames hold
    /// no byte and are never returned.
    pub fn frame_at(&self, offset: u64) -> Option<usize> {
        // First frame that ends after `offset`; frames are contiguous, so it starts at or before.
        let i = self
            .entries
            .partition_point(|e| e.d_offset + u64::from(e.d_size) <= offset);
        (i < self.entries.len()).then_some(i)
    }
}

/// Encodes the seek-table skippable frame for `(compressed, decompressed)` frame sizes, without
/// per-frame checksums.
pub(crate) fn encode(sizes: &[(u32, u32)]) -> Vec<u8> {
    let payload_len = sizes.len() * 8 + FOOTER_LEN as usize;
    let mut out = Vec::with_capacity(SKIPPABLE_HEADER_LEN as usize + payload_len);
    out.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
    // Callers keep sizes.len() <= MAX_FRAMES, so this fits.
    out.extend_from_slice(&(payload_len as u32).to_le_bytes());
    for &(c, d) in sizes {
        out.extend_from_slice(&c.to_le_bytes());
        out.extend_from_slice(&d.to_le_bytes());
    }
    out.extend_from_slice(&(sizes.len() as u32).to_le_bytes());
    out.push(0);
    out.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
    out
}

fn read_table(src: &dyn ReadAt, buf: &mut [u8], offset: u64) -> Result<(), SeekableError> {
    read_exact_at(src, buf, offset).map_err(|source| SeekableError::TableRead {
        offset,
        len: buf.len() as u64,
        source,
    })
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake seekable file: `data` bytes of "frames" then a table for `sizes`.
    fn file(data_len: usize, sizes: &[(u32, u32)]) -> Vec<u8> {
        let mut v = vec![0xAAu8; data_len];
        v.extend_from_slice(&encode(sizes));
        v
    }

    fn err(src: &[u8]) -> String {
        match SeekTable::read(&src.to_vec()) {
            Err(e) => e.to_string(),
            Ok(t) => panic!("accepted: {t:?}"),
        }
    }

    #[test]
    fn parses_offsets_and_frame_at() {
        let f = file(30, &[(10, 100), (5, 0), (15, 50)]);
        let t = SeekTable::read(&f).expect("valid").expect("has table");
        assert_eq!(t.frames(), 3);
        assert_eq!(t.compressed_len(), 30);
        assert_eq!(t.decompressed_len(), 150);
        assert_eq!(
            t.frame(2),
            FrameInfo {
                index: 2,
                c_offset: 15,
                c_size: 15,
                d_offset: 100,
                d_size: 50
            }
        );
        assert_eq!(t.frame_at(0), Some(0));
        assert_eq!(t.frame_at(99), Some(0));
        // The empty frame 1 is skipped.
        assert_eq!(t.frame_at(100), Some(2));
        assert_eq!(t.frame_at(149), Some(2));
        assert_eq!(t.frame_at(150), None);
        assert_eq!(t.get(3), None);
    }

    #[test]
    fn empty_table_is_valid() {
        let t = SeekTable::read(&encode(&[]))
            .expect("valid")
            .expect("table");
        assert_eq!(
            (t.frames(), t.decompressed_len(), t.frame_at(0)),
            (0, 0, None)
        );
    }

    #[test]
    fn no_footer_is_none() {
        assert!(SeekTable::read(&Vec::new()).expect("empty").is_none());
        assert!(SeekTable::read(&vec![0u8; 8]).expect("short").is_none());
        let plain = zstd::bulk::compress(b"hello", 3).expect("compress");
        assert!(SeekTable::read(&plain).expect("plain zstd").is_none());
    }

    #[test]
    fn reserved_bits_refused() {
        let mut f = file(10, &[(10, 10)]);
        let n = f.len();
        f[n - 5] = 0x04;
        assert!(err(&f).contains("reserved bits"), "{}", err(&f));
        // The two "unused" bits are ignored, per the spec.
        f[n - 5] = 0x03;
        assert!(SeekTable::read(&f).expect("unused bits").is_some());
    }

    #[test]
    fn lying_frame_count_refused_without_allocating() {
        let mut f = file(10, &[(10, 10)]);
        let n = f.len();
        f[n - 9..n - 5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(err(&f).contains("more than the 67108864"), "{}", err(&f));
        f[n - 9..n - 5].copy_from_slice(&1000u32.to_le_bytes());
        let e = err(&f);
        assert!(
            e.contains("claims 1000 frames") && e.contains("needs 8017 bytes"),
            "{e}"
        );
    }

    #[test]
    fn frame_size_mismatch_refused() {
        let mut f = file(10, &[(10, 10)]);
        f[14..18].copy_from_slice(&18u32.to_le_bytes());
        let e = err(&f);
        assert!(e.contains("declares 18 bytes, but 1 frames need 17"), "{e}");
    }

    #[test]
    fn skippable_magic_checked() {
        let mut f = file(10, &[(10, 10)]);
        f[10] ^= 1;
        assert!(err(&f).contains("at offset 10 has magic"), "{}", err(&f));
    }

    #[test]
    fn compressed_sizes_must_tile_the_file() {
        // Garbage between the frames and the table.
        let e = err(&file(13, &[(10, 10)]));
        assert!(e.contains("add up to 10 compressed bytes, but 13"), "{e}");
        let e = err(&file(9, &[(10, 10)]));
        assert!(e.contains("add up to 10 compressed bytes, but 9"), "{e}");
    }

    #[test]
    fn oversized_and_empty_frames_refused() {
        let e = err(&file(20, &[(10, 10), (10, (64 << 20) + 1)]));
        assert!(e.contains("frame 1 declares 67108865"), "{e}");
        let e = err(&file(10, &[(10, 10), (0, 10)]));
        assert!(
            e.contains("frame 1 at compressed offset 10 has a compressed size of 0"),
            "{e}"
        );
    }

    #[test]
    fn checksummed_entries_parse() {
        // Hand-built table with descriptor bit 7: entries are 12 bytes.
        let mut f = vec![0u8; 7];
        f.extend_from_slice(&SKIPPABLE_MAGIC.to_le_bytes());
        f.extend_from_slice(&(12u32 + 9).to_le_bytes());
        for v in [7u32, 70, 0xDEAD] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&1u32.to_le_bytes());
        f.push(0x80);
        f.extend_from_slice(&SEEKABLE_MAGIC.to_le_bytes());
        let t = SeekTable::read(&f).expect("valid").expect("table");
        assert_eq!((t.frames(), t.decompressed_len()), (1, 70));
    }
}
