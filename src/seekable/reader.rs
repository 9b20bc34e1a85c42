//! [`SeekableReader`]: decompresses single frames, decompressed ranges, and runs of frames in
//! parallel, checking each frame against the seek table.
//!
//! Every frame is decompressed in one shot into a buffer of the size the table declares, so a
//! frame that expands further fails instead of allocating, and a frame that declares a window
//! above [`WINDOW_LOG_MAX`] is refused before decompression (the `zstd` CLI refuses it too).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;

use rayon::prelude::*;
use zstd::zstd_safe::{self, zstd_sys, DCtx, DParameter};

use super::{
    read_exact_at, FrameInfo, ReadAt, SeekTable, SeekableError, WINDOW_LOG_MAX, ZSTD_MAGIC,
};

/// Decompresses the frames of one seekable source described by a validated [`SeekTable`].
#[derive(Clone, Copy)]
pub struct SeekableReader<'a> {
    src: &'a dyn ReadAt,
    table: &'a SeekTable,
}

impl<'a> SeekableReader<'a> {
    /// A reader over `src`, whose table `table` was read from it.
    pub fn new(src: &'a dyn ReadAt, table: &'a SeekTable) -> Self {
        SeekableReader { src, table }
    }

    /// The seek table this reader uses.
    pub fn table(&self) -> &'a SeekTable {
        self.table
    }

    /// Streams decompressed bytes `[offset, offset + len)`, decompressing only the frames the
    /// range overlaps, one frame in memory at a time. A range past the end fails on first read.
    pub fn range(&self, offset: u64, len: u64) -> RangeReader<'a> {
        RangeOf::new(*self, offset, len)
    }

    /// Decompresses frame `i` into `out` (replacing its contents), checked against the table.
    pub fn decompress_frame(&self, i: usize, out: &mut Vec<u8>) -> Result<(), SeekableError> {
        let frame = self.frame(i)?;
        FrameDecoder::new().decode(self.src, frame, out)
    }

    /// Decompresses `frames` in parallel, a window of twice the thread count at a time, and
    /// yields them in order. At most one window of frames is in memory. After an error the
    /// iterator ends. The consumer's work on a window does not overlap decompression of the
    /// next; see [`ParFrames::with_window`] to trade memory for longer parallel runs.
    pub fn decompress_frames_par(&self, frames: Range<usize>) -> ParFrames<'a> {
        let mut ready = VecDeque::new();
        let mut end = frames.end;
        if frames.end > self.table.frames() && frames.start < frames.end {
            ready.push_back(Err(SeekableError::FrameOutOfRange {
                index: frames.end - 1,
                frames: self.table.frames(),
            }));
            end = frames.start;
        }
        ParFrames {
            reader: *self,
            next: frames.start,
            end,
            window: (rayon::current_num_threads() * 2).max(2),
            ready,
            done: false,
        }
    }

    fn frame(&self, i: usize) -> Result<FrameInfo, SeekableError> {
        self.table.get(i).ok_or(SeekableError::FrameOutOfRange {
            index: i,
            frames: self.table.frames(),
        })
    }
}

/// Where a range reader gets its compressed source and seek table: borrowed
/// ([`SeekableReader`]) or shared ([`Shared`]).
pub trait Frames {
    /// The compressed bytes.
    fn src(&self) -> &dyn ReadAt;
    /// Their validated seek table.
    fn table(&self) -> &SeekTable;
}

impl Frames for SeekableReader<'_> {
    fn src(&self) -> &dyn ReadAt {
        self.src
    }
    fn table(&self) -> &SeekTable {
        self.table
    }
}

/// A source and its seek table held by reference count, for a range reader that must be
/// `'static` (an HTTP request body handed to `ureq`).
#[derive(Clone)]
pub struct Shared {
    pub src: Arc<dyn ReadAt>,
    pub table: Arc<SeekTable>,
}

impl Frames for Shared {
    fn src(&self) -> &dyn ReadAt {
        self.src.as_ref()
    }
    fn table(&self) -> &SeekTable {
        &self.table
    }
}

/// `impl Read` over a decompressed range; see [`SeekableReader::range`].
pub struct RangeOf<F: Frames> {
    frames: F,
    /// Next decompressed offset to return.
    pos: u64,
    end: u64,
    /// The frame decompressed into `buf`.
    frame: Option<FrameInfo>,
    buf: Vec<u8>,
    decoder: FrameDecoder,
    error: Option<SeekableError>,
    failed: bool,
}

/// A range over a borrowed source.
pub type RangeReader<'a> = RangeOf<SeekableReader<'a>>;
/// A range that owns (shares) its source: `'static`.
pub type OwnedRange = RangeOf<Shared>;

impl<F: Frames> RangeOf<F> {
    /// Streams decompressed bytes `[offset, offset + len)` of `frames`, one frame in memory at
    /// a time. A range past the end fails on first read.
    pub fn new(frames: F, offset: u64, len: u64) -> Self {
        let total = frames.table().decompressed_len();
        let error = match offset.checked_add(len) {
            Some(end) if end <= total => None,
            _ => Some(SeekableError::RangeOutOfBounds {
                offset,
                len,
                decompressed_len: total,
            }),
        };
        RangeOf {
            frames,
            pos: offset,
            end: offset.saturating_add(len),
            frame: None,
            buf: Vec::new(),
            decoder: FrameDecoder::new(),
            error,
            failed: false,
        }
    }
}

impl<F: Frames> Read for RangeOf<F> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.error.take() {
            self.failed = true;
            return Err(e.into());
        }
        if self.failed {
            return Err(io::Error::other(format!(
                "decompressed range at offset {}: an earlier read failed",
                self.pos
            )));
        }
        if out.is_empty() || self.pos >= self.end {
            return Ok(0);
        }
        let in_frame =
            |f: &FrameInfo, pos: u64| pos >= f.d_offset && pos - f.d_offset < u64::from(f.d_size);
        let frame = match self.frame {
            Some(f) if in_frame(&f, self.pos) => f,
            _ => {
                let table = self.frames.table();
                // pos < end <= decompressed_len, so some frame holds it.
                let Some(f) = table.frame_at(self.pos).and_then(|i| table.get(i)) else {
                    self.failed = true;
                    return Err(io::Error::other(format!(
                        "no frame holds decompressed offset {}",
                        self.pos
                    )));
                };
                self.frame = None;
                if let Err(e) = self.decoder.decode(self.frames.src(), f, &mut self.buf) {
                    self.failed = true;
                    return Err(e.into());
                }
                self.frame = Some(f);
                f
            }
        };
        let at = (self.pos - frame.d_offset) as usize;
        let n = (self.buf.len() - at)
            .min(out.len())
            .min(usize::try_from(self.end - self.pos).unwrap_or(usize::MAX));
        out[..n].copy_from_slice(&self.buf[at..at + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// Frames decompressed in parallel, yielded in order; see [`SeekableReader::decompress_frames_par`].
pub struct ParFrames<'a> {
    reader: SeekableReader<'a>,
    next: usize,
    end: usize,
    window: usize,
    ready: VecDeque<Result<(usize, Vec<u8>), SeekableError>>,
    done: bool,
}

impl ParFrames<'_> {
    /// Decompresses `window` frames (at least 1) per parallel run instead of twice the thread
    /// count. Memory is about `window` decompressed frames.
    pub fn with_window(mut self, window: usize) -> Self {
        self.window = window.max(1);
        self
    }
}

impl Iterator for ParFrames<'_> {
    type Item = Result<(usize, Vec<u8>), SeekableError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ready.is_empty() && !self.done && self.next < self.end {
            let run = self.next..self.end.min(self.next.saturating_add(self.window));
            self.next = run.end;
            let reader = self.reader;
            let results: Vec<_> = run
                .into_par_iter()
                .map_init(FrameDecoder::new, |decoder, i| {
                    let frame = reader.frame(i)?;
                    let mut out = Vec::new();
                    decoder.decode(reader.src, frame, &mut out)?;
                    Ok((i, out))
                })
                .collect();
            self.ready.extend(results);
        }
        let item = self.ready.pop_front()?;
        if item.is_err() {
            self.done = true;
            self.ready.clear();
        }
        Some(item)
    }
}

/// A zstd decompression context plus a buffer for compressed bytes, reused across frames.
struct FrameDecoder {
    dctx: DCtx<'static>,
    compressed: Vec<u8>,
}

impl FrameDecoder {
    fn new() -> FrameDecoder {
        let mut dctx = DCtx::create();
        // One-shot decompression writes straight into the output buffer and needs no window
        // buffer, but zstd still refuses frames whose window exceeds this limit (default 2^27).
        // Set it explicitly so the limit does not drift with zstd; `decode` checks it first
        // itself to name the window in the error.
        let _ = dctx.set_parameter(DParameter::WindowLogMax(WINDOW_LOG_MAX));
        FrameDecoder {
            dctx,
            compressed: Vec::new(),
        }
    }

    /// Decompresses `f` from `src` into `out`, which ends up exactly `f.d_size` bytes long.
    fn decode(
        &mut self,
        src: &dyn ReadAt,
        f: FrameInfo,
        out: &mut Vec<u8>,
    ) -> Result<(), SeekableError> {
        let (index, c_offset, d_size) = (f.index, f.c_offset, f.d_size);
        self.compressed.clear();
        self.compressed.resize(f.c_size as usize, 0);
        read_exact_at(src, &mut self.compressed, c_offset).map_err(|source| {
            SeekableError::FrameRead {
                index,
                c_offset,
                c_size: f.c_size,
                source,
            }
        })?;
        let bad = |problem| SeekableError::BadFrameHeader {
            index,
            c_offset,
            problem,
        };
        let header = parse_header(&self.compressed).map_err(bad)?;
        // The entry must be exactly one frame: zstd would happily decode a second frame (or
        // skip a skippable one) hidden after the first.
        match zstd_safe::find_frame_compressed_size(&self.compressed) {
            Ok(n) if n == self.compressed.len() => {}
            Ok(actual) => {
                return Err(SeekableError::FrameLength {
                    index,
                    c_offset,
                    c_size: f.c_size,
                    actual,
                })
            }
            Err(code) => return Err(zstd_error(index, c_offset, code)),
        }
        if header.window > 1u64 << WINDOW_LOG_MAX {
            return Err(SeekableError::WindowTooLarge {
                index,
                c_offset,
                window: header.window,
            });
        }
        if let Some(size) = header.content_size {
            if size != u64::from(d_size) {
                return Err(SeekableError::ContentSizeMismatch {
                    index,
                    c_offset,
                    header: size,
                    table: d_size,
                });
            }
        }
        // Decompress into exactly `d_size` bytes of capacity (the Vec's spare capacity is
        // only reserved, not touched, so a lying size costs address space, not memory).
        out.clear();
        if out.capacity() < d_size as usize {
            *out = Vec::with_capacity(d_size as usize);
        }
        match self.dctx.decompress(out, &self.compressed) {
            // A reused buffer may be larger than d_size, so "more" can also show up as success.
            Ok(n) if n > d_size as usize => Err(SeekableError::Expands {
                index,
                c_offset,
                d_size,
            }),
            Ok(n) if n < d_size as usize => Err(SeekableError::Short {
                index,
                c_offset,
                actual: n,
                d_size,
            }),
            Ok(_) => Ok(()),
            Err(code) if code == too_small() => Err(SeekableError::Expands {
                index,
                c_offset,
                d_size,
            }),
            Err(code) => Err(zstd_error(index, c_offset, code)),
        }
    }
}

fn too_small() -> usize {
    // zstd returns errors as the negated error enum.
    (zstd_sys::ZSTD_ErrorCode::ZSTD_error_dstSize_tooSmall as usize).wrapping_neg()
}

fn zstd_error(index: usize, c_offset: u64, code: usize) -> SeekableError {
    SeekableError::Decompress {
        index,
        c_offset,
        source: io::Error::new(io::ErrorKind::InvalidData, zstd_safe::get_error_name(code)),
    }
}

/// What the frame header says about memory (the window size and the declared content size),
/// and about where the blocks start.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct FrameHeader {
    pub(super) window: u64,
    pub(super) content_size: Option<u64>,
    /// Bytes of the header, magic included: the first block starts here.
    pub(super) len: usize,
    /// A 4-byte content checksum follows the last block.
    pub(super) checksum: bool,
}

/// Parses a zstd frame header (RFC 8878 section 3.1.1.1).
pub(super) fn parse_header(b: &[u8]) -> Result<FrameHeader, &'static str> {
    const SHORT: &str = "truncated zstd frame header";
    if b.len() < 5 {
        return Err(SHORT);
    }
    if u32::from_le_bytes([b[0], b[1], b[2], b[3]]) != ZSTD_MAGIC {
        return Err("not a zstd frame (bad magic number)");
    }
    let fhd = b[4];
    if fhd & 0x08 != 0 {
        return Err("zstd frame header has its reserved bit set");
    }
    let fcs_flag = fhd >> 6;
    let single_segment = fhd & 0x20 != 0;
    let dict_len = [0usize, 1, 2, 4][usize::from(fhd & 3)];
    let fcs_len = match (fcs_flag, single_segment) {
        (0, false) => 0,
        (0, true) => 1,
        (1, _) => 2,
        (2, _) => 4,
        _ => 8,
    };
    let mut at = 5;
    let window_desc = if single_segment {
        None
    } else {
        let d = *b.get(at).ok_or(SHORT)?;
        at += 1;
        Some(d)
    };
    if dict_len != 0 {
        return Err("zstd frame needs a dictionary");
    }
    let fcs = b.get(at..at + fcs_len).ok_or(SHORT)?;
    let mut v = [0u8; 8];
    v[..fcs_len].copy_from_slice(fcs);
    let raw = u64::from_le_bytes(v);
    let content_size = match fcs_len {
        0 => None,
        2 => Some(raw + 256),
        _ => Some(raw),
    };
    let window = match window_desc {
        Some(d) => {
            let log = 10 + u32::from(d >> 3);
            let base = 1u64 << log;
            base + (base / 8) * u64::from(d & 7)
        }
        // Single segment: the window is the whole content.
        None => content_size.unwrap_or(0),
    };
    Ok(FrameHeader {
        window,
        content_size,
        len: at + fcs_len,
        checksum: fhd & 0x04 != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::table::encode;
    use crate::seekable::test_util::{patch_entry, seekable, Prng};
    use crate::seekable::{streaming_decoder, SeekableWriter};
    use std::io::Write;

    const MAX: usize = 64 << 10;

    fn table(file: &[u8]) -> SeekTable {
        SeekTable::read(&file).expect("valid").expect("table")
    }

    fn read_range(r: &SeekableReader<'_>, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        r.range(offset, len).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Error text from decompressing frame `i` of `file`.
    fn frame_err(file: &[u8], i: usize) -> String {
        let t = table(file);
        let r = SeekableReader::new(&file, &t);
        match r.decompress_frame(i, &mut Vec::new()) {
            Err(e) => e.to_string(),
            Ok(()) => panic!("frame {i} accepted"),
        }
    }

    #[test]
    fn round_trip_sizes() {
        let mut p = Prng::new(10);
        for len in [0, 1, MAX, MAX * 7 / 2] {
            let data = p.bytes(len);
            let file = seekable(&data, MAX, true);
            let t = table(&file);
            assert_eq!(t.frames(), len.div_ceil(MAX), "len {len}");
            assert_eq!(t.decompressed_len(), len as u64);
            let r = SeekableReader::new(&file, &t);
            assert!(
                read_range(&r, 0, len as u64).expect("range") == data,
                "len {len}"
            );
            let mut joined = Vec::new();
            for f in r.decompress_frames_par(0..t.frames()) {
                joined.extend(f.expect("frame").1);
            }
            assert!(joined == data, "par len {len}");
            let mut streamed = Vec::new();
            streaming_decoder(&file[..])
                .expect("decoder")
                .read_to_end(&mut streamed)
                .expect("stream");
            assert!(streamed == data, "stream len {len}");
        }
    }

    #[test]
    fn random_ranges_match_slices() {
        let mut p = Prng::new(11);
        let data = [p.text(150_000), p.bytes(100_000)].concat();
        let file = seekable(&data, 10_000, true);
        let t = table(&file);
        let r = SeekableReader::new(&file, &t);
        for _ in 0..300 {
            let off = p.below(data.len() as u64 + 1);
            let len = p.below((data.len() as u64 - off).min(40_000) + 1);
            let got = read_range(&r, off, len).expect("range");
            assert!(
                got == data[off as usize..(off + len) as usize],
                "range {off}+{len}"
            );
        }
        // Byte-at-a-time reads across a frame boundary.
        let mut rr = r.range(9_990, 20);
        let mut one = [0u8; 1];
        let mut got = Vec::new();
        while rr.read(&mut one).expect("read") == 1 {
            got.push(one[0]);
        }
        assert_eq!(got, &data[9_990..10_010]);
        let e = read_range(&r, data.len() as u64 - 5, 6).expect_err("past end");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        let e = read_range(&r, u64::MAX, 2).expect_err("far past end");
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("is past the end"), "{e}");
        assert!(read_range(&r, data.len() as u64, 0)
            .expect("empty")
            .is_empty());
    }

    #[test]
    fn par_frames_in_order_with_small_window() {
        let mut p = Prng::new(12);
        let data = p.text(50 * 1000 + 17);
        let file = seekable(&data, 1000, true);
        let t = table(&file);
        let r = SeekableReader::new(&file, &t);
        for window in [1, 3, 8, 100] {
            let got: Vec<_> = r
                .decompress_frames_par(5..40)
                .with_window(window)
                .map(|f| f.expect("frame"))
                .collect();
            assert_eq!(got.len(), 35);
            for (k, (i, bytes)) in got.iter().enumerate() {
                assert_eq!(*i, 5 + k, "window {window}");
                assert!(bytes[..] == data[i * 1000..(i + 1) * 1000]);
            }
        }
        assert_eq!(r.decompress_frames_par(7..7).count(), 0);
        let mut past = r.decompress_frames_par(49..52);
        let e = past.next().expect("item").expect_err("out of range");
        assert!(
            e.to_string().contains("frame index 51 is out of range"),
            "{e}"
        );
        assert!(past.next().is_none());
    }

    #[test]
    fn par_frames_stop_after_error_in_order() {
        let data = Prng::new(13).text(20 * 1000);
        let mut file = seekable(&data, 1000, true);
        let t = table(&file);
        let f7 = t.frame(7);
        file[(f7.c_offset + 2) as usize] ^= 0xFF; // break the magic of frame 7
        let r = SeekableReader::new(&file, &t);
        let items: Vec<_> = r.decompress_frames_par(0..20).with_window(4).collect();
        assert_eq!(items.len(), 8);
        for (k, item) in items[..7].iter().enumerate() {
            assert_eq!(item.as_ref().expect("ok").0, k);
        }
        let e = items[7].as_ref().expect_err("frame 7");
        assert!(
            e.to_string().starts_with("frame 7 at compressed offset"),
            "{e}"
        );
    }

    #[test]
    fn declared_size_smaller_than_content() {
        let data = Prng::new(14).text(3 * 1000);
        // With the content size in the frame header, the header gives the lie away.
        let mut file = seekable(&data, 1000, true);
        patch_entry(&mut file, 1, None, Some(999));
        let e = frame_err(&file, 1);
        assert!(
            e.contains("frame 1 at compressed offset") && e.contains("header declares 1000"),
            "{e}"
        );
        // Without it, decompression stops at the declared size.
        let mut file = seekable(&data, 1000, false);
        let c1 = table(&file).frame(1).c_offset;
        patch_entry(&mut file, 1, None, Some(999));
        assert_eq!(
            frame_err(&file, 1),
            format!("frame 1 at compressed offset {c1}: decompressed to more than the 999 bytes the seek table declares")
        );
        // The range reader reports it too, as InvalidData.
        let t = table(&file);
        let e = read_range(&SeekableReader::new(&file, &t), 0, 2999).expect_err("lying");
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(e.to_string().contains("frame 1"), "{e}");
    }

    #[test]
    fn declared_size_larger_than_content() {
        let data = Prng::new(15).text(3 * 1000);
        let mut file = seekable(&data, 1000, false);
        patch_entry(&mut file, 2, None, Some(1001));
        let e = frame_err(&file, 2);
        assert!(
            e.contains("frame 2 at")
                && e.contains("decompressed to 1000 bytes, the seek table declares 1001"),
            "{e}"
        );
        // A frame claiming 64 MiB of a few hundred compressed bytes fails without filling 64 MiB.
        let mut file = seekable(&data, 1000, false);
        patch_entry(&mut file, 0, None, Some(64 << 20));
        assert!(frame_err(&file, 0).contains("declares 67108864"));
    }

    #[test]
    fn corrupt_byte_names_the_frame() {
        let mut p = Prng::new(16);
        for data in [p.text(4 * 1000), p.bytes(4 * 1000)] {
            let mut file = seekable(&data, 1000, true);
            let f = table(&file).frame(1);
            file[(f.c_offset + u64::from(f.c_size) / 2) as usize] ^= 0x55;
            let e = frame_err(&file, 1);
            assert!(
                e.starts_with(&format!("frame 1 at compressed offset {}:", f.c_offset)),
                "{e}"
            );
        }
    }

    #[test]
    fn entry_must_be_exactly_one_frame() {
        let a = zstd::bulk::compress(b"first", 3).expect("a");
        let b = zstd::bulk::compress(b"second", 3).expect("b");
        let mut file = [a.clone(), b.clone()].concat();
        file.extend(encode(&[((a.len() + b.len()) as u32, 11)]));
        let e = frame_err(&file, 0);
        assert!(
            e.contains(&format!(
                "the zstd frame is {} bytes, the seek table declares {}",
                a.len(),
                a.len() + b.len()
            )),
            "{e}"
        );
        // An entry that is not a zstd frame at all.
        let mut file = vec![0u8; 16];
        file.extend(encode(&[(16, 4)]));
        assert!(frame_err(&file, 0).contains("bad magic"));
    }

    /// A valid frame of `content` whose header declares a 2^31-byte window and no content size.
    fn huge_window_frame(content: &[u8]) -> Vec<u8> {
        let mut c = zstd::bulk::Compressor::new(3).expect("compressor");
        c.set_parameter(zstd_safe::CParameter::ChecksumFlag(true))
            .expect("param");
        let mut f = c.compress(content).expect("compress");
        // Small frames are single-segment with a 1-byte content size: FHD 0x24, FCS.
        assert_eq!(f[4], 0x24, "unexpected frame header");
        // Same length: FHD without single-segment, then Window_Descriptor exponent 21 (2^31).
        f[4] = 0x04;
        f[5] = 21 << 3;
        f
    }

    #[test]
    fn huge_window_refused() {
        let content = b"small content, huge window claimed";
        let frame = huge_window_frame(content);
        assert_eq!(
            parse_header(&frame),
            Ok(FrameHeader {
                window: 1 << 31,
                content_size: None,
                len: 6,
                checksum: true,
            })
        );
        // The crafted frame is valid: allowed a 2^31 window, one-shot decoding reproduces it.
        let mut plain = Vec::with_capacity(content.len());
        let mut dctx = DCtx::create();
        dctx.set_parameter(DParameter::WindowLogMax(31))
            .expect("param");
        dctx.decompress(&mut plain, &frame)
            .expect("crafted frame is valid");
        assert_eq!(plain, content);

        let mut file = frame.clone();
        file.extend(encode(&[(frame.len() as u32, content.len() as u32)]));
        let e = frame_err(&file, 0);
        assert!(
            e.contains("frame 0 at compressed offset 0: window of 2147483648 bytes"),
            "{e}"
        );
        // The streaming fallback refuses it too, instead of allocating 2 GiB.
        let mut out = Vec::new();
        let e = streaming_decoder(&file[..])
            .expect("decoder")
            .read_to_end(&mut out)
            .expect_err("window");
        assert!(e.to_string().contains("too much memory"), "{e}");
        assert!(out.is_empty());
    }

    #[test]
    fn header_parsing() {
        assert_eq!(
            parse_header(b"\x28\xb5\x2f"),
            Err("truncated zstd frame header")
        );
        assert_eq!(
            parse_header(b"\x28\xb5\x2f\xfd\x00"),
            Err("truncated zstd frame header"),
            "window descriptor missing"
        );
        assert_eq!(
            parse_header(b"\x28\xb5\x2f\xfd\x00\x00"),
            Ok(FrameHeader {
                window: 1024,
                content_size: None,
                len: 6,
                checksum: false,
            })
        );
        // 2-byte FCS is offset by 256.
        assert_eq!(
            parse_header(b"\x28\xb5\x2f\xfd\x60\x01\x00"),
            Ok(FrameHeader {
                window: 257,
                content_size: Some(257),
                len: 7,
                checksum: false,
            })
        );
        assert_eq!(
            parse_header(b"\x28\xb5\x2f\xfd\x08\x00"),
            Err("zstd frame header has its reserved bit set")
        );
        assert_eq!(
            parse_header(b"\x28\xb5\x2f\xfd\x21\x00"),
            Err("zstd frame needs a dictionary")
        );
        // Mantissa: 2^20 + 3 * 2^17.
        assert_eq!(
            parse_header(b"\x28\xb5\x2f\xfd\x00\x53").map(|h| h.window),
            Ok((1 << 20) + 3 * (1 << 17))
        );
    }

    #[test]
    fn reads_from_a_file() {
        let data = Prng::new(17).text(100_000);
        let mut f = tempfile::tempfile().expect("tempfile");
        let mut w = SeekableWriter::new(&mut f, 3, 16 << 10);
        w.write_all(&data).expect("write");
        w.finish().expect("finish");
        let t = SeekTable::read(&f).expect("valid").expect("table");
        let r = SeekableReader::new(&f, &t);
        assert!(read_range(&r, 40_000, 30_000).expect("range") == data[40_000..70_000]);
    }

    #[test]
    fn a_shared_range_reads_like_a_borrowed_one() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = crate::seekable::SeekableWriter::new(Vec::new(), 1, 64 << 10);
        std::io::Write::write_all(&mut w, &data).unwrap();
        let file = w.finish().unwrap();
        let table = SeekTable::read(&file).unwrap().unwrap();
        let src: Arc<dyn ReadAt> = Arc::new(file);
        let table = Arc::new(table);
        for (off, len) in [(0u64, 10u64), (65_530, 100), (1, 299_999), (299_999, 1)] {
            let mut got = Vec::new();
            OwnedRange::new(
                Shared {
                    src: src.clone(),
                    table: table.clone(),
                },
                off,
                len,
            )
            .read_to_end(&mut got)
            .unwrap();
            assert_eq!(got, &data[off as usize..(off + len) as usize]);
        }
        let mut r = OwnedRange::new(Shared { src, table }, 299_999, 2);
        let e = r.read_to_end(&mut Vec::new()).unwrap_err();
        assert!(
            e.to_string()
                .contains("decompressed range at 299999 of 2 bytes is past the end"),
            "{e}"
        );
    }
}
