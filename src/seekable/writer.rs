//! [`SeekableWriter`]: cuts a byte stream into independent zstd frames, compresses them in
//! parallel, and appends the seek table on [`SeekableWriter::finish`].
//!
//! Frame boundaries depend only on the bytes written, `max_frame` and the calls to
//! [`SeekableWriter::cut`], never on thread count or batch size, and each frame is compressed
//! single-threaded, so the output is byte-for-byte reproducible.

use std::io::{self, Read, Write};

use rayon::prelude::*;
use zstd::zstd_safe::CParameter;

use super::{table, MAX_FRAMES, MAX_FRAME_DECOMPRESSED};

/// Pending small frames (from `cut` between small tar entries) are flushed at this many per
/// worker, so a run of tiny entries still compresses in parallel batches of useful size.
const SMALL_FRAMES_PER_THREAD: usize = 64;

/// A frame longer than `PROBE` bytes is probed first: `PROBES` samples of `PROBE / PROBES`
/// bytes, spread evenly over it, are compressed, and if none of them saves 1% the whole frame
/// is stored (see [`super::stored`]). Gzip layers never compress; a tar layer that starts with
/// a compressed member but holds text further on is still compressed. The probes cost 1/32 of
/// compressing a 4 MiB frame, and the decision depends only on the bytes, so output stays
/// reproducible.
const PROBE: usize = 128 << 10;
const PROBES: usize = 4;

/// Writes a seekable zstd stream to `W`.
///
/// Bytes written with [`Write`] go into the current frame; a frame ends when it reaches
/// `max_frame` bytes or when [`cut`](SeekableWriter::cut) is called. Ended frames are queued
/// and compressed in parallel (rayon) in batches of twice the thread count, so memory stays
/// around `2 * batch * max_frame` for the frames plus `batch` output buffers of up to
/// `max_frame` and a little, kept for reuse. Dropping the writer without [`finish`](SeekableWriter::finish)
/// loses the queued frames and the seek table.
pub struct SeekableWriter<W: Write> {
    out: W,
    level: i32,
    max_frame: usize,
    checksum: bool,
    content_size: bool,
    /// Frames compressed per parallel batch.
    batch: usize,
    /// The frame being filled; capacity `max_frame` once used.
    current: Vec<u8>,
    /// Ended frames waiting to be compressed, in order.
    pending: Vec<Vec<u8>>,
    pending_bytes: usize,
    /// Full-size buffers kept for reuse, at most `batch` of them.
    spare: Vec<Vec<u8>>,
    /// Output buffers of the last batch, reused so compression does not fault in fresh pages.
    encoded: Vec<Vec<u8>>,
    /// (compressed, decompressed) size of every frame written to `out`.
    sizes: Vec<(u32, u32)>,
    compressed_len: u64,
    /// Bytes accepted so far, including those still buffered.
    decompressed_len: u64,
}

impl<W: Write> SeekableWriter<W> {
    /// A writer at zstd `level` cutting frames of at most `max_frame` bytes (clamped to
    /// `1..=MAX_FRAME_DECOMPRESSED`, so every frame fits the seek table and our own reader).
    /// Frames carry their content size and a zstd (XXH64) checksum; see
    /// [`with_checksum`](Self::with_checksum) and [`with_content_size`](Self::with_content_size).
    pub fn new(out: W, level: i32, max_frame: usize) -> Self {
        SeekableWriter {
            out,
            level,
            max_frame: max_frame.clamp(1, MAX_FRAME_DECOMPRESSED),
            checksum: true,
            content_size: true,
            batch: (rayon::current_num_threads() * 2).max(2),
            current: Vec::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            spare: Vec::new(),
            encoded: Vec::new(),
            sizes: Vec::new(),
            compressed_len: 0,
            decompressed_len: 0,
        }
    }

    /// Whether each frame ends in a zstd content checksum (default on).
    pub fn with_checksum(mut self, on: bool) -> Self {
        self.checksum = on;
        self
    }

    /// Whether each frame header records its decompressed size (default on).
    pub fn with_content_size(mut self, on: bool) -> Self {
        self.content_size = on;
        self
    }

    /// Ends the current frame, so the next byte written starts a new one. A no-op when the
    /// current frame is empty: `cut` never produces empty frames.
    pub fn cut(&mut self) -> io::Result<()> {
        if self.current.is_empty() {
            return Ok(());
        }
        let frame = if self.current.len() == self.max_frame {
            let next = self.take_spare();
            std::mem::replace(&mut self.current, next)
        } else {
            // Copy a short frame out, so the queue holds its bytes, not a max_frame buffer.
            let f = self.current.clone();
            self.current.clear();
            f
        };
        self.pending_bytes += frame.len();
        self.pending.push(frame);
        if self.sizes.len() + self.pending.len() > MAX_FRAMES as usize {
            return Err(io::Error::other(format!(
                "seekable stream would exceed {MAX_FRAMES} frames"
            )));
        }
        if self.pending_bytes >= self.batch * self.max_frame
            || self.pending.len() >= self.batch * SMALL_FRAMES_PER_THREAD
        {
            self.compress_pending()?;
        }
        Ok(())
    }

    /// Compresses each chunk as its own frame, in parallel, after ending the current frame.
    /// Every chunk must be at most `max_frame` bytes; an empty chunk makes an empty frame.
    pub fn write_frames(&mut self, chunks: &[&[u8]]) -> io::Result<()> {
        if let Some((i, c)) = chunks
            .iter()
            .enumerate()
            .find(|(_, c)| c.len() > self.max_frame)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "chunk {i} is {} bytes, more than the {}-byte frame size",
                    c.len(),
                    self.max_frame
                ),
            ));
        }
        if self.sizes.len() + chunks.len() > MAX_FRAMES as usize {
            return Err(io::Error::other(format!(
                "seekable stream would exceed {MAX_FRAMES} frames"
            )));
        }
        self.cut()?;
        self.compress_pending()?;
        for group in chunks.chunks(self.batch) {
            self.decompressed_len += group.iter().map(|c| c.len() as u64).sum::<u64>();
            self.compress_and_write(group)?;
        }
        Ok(())
    }

    /// Writes everything `r` yields as one entry: it starts a new frame and is followed by a
    /// cut. Reads straight into frame buffers, so memory stays bounded however long `r` is.
    /// Returns the number of bytes read.
    pub fn write_entry(&mut self, r: &mut dyn Read) -> io::Result<u64> {
        self.cut()?;
        let mut total = 0u64;
        loop {
            // After a cut the current frame is empty; give it a full-size buffer.
            if self.current.capacity() < self.max_frame {
                self.current = self.take_spare();
            }
            let start = self.current.len();
            let mut filled = start;
            // Resize once per frame, not per read: small reads must not re-zero the buffer.
            self.current.resize(self.max_frame, 0);
            let mut outcome = Ok(false);
            while filled < self.max_frame {
                match r.read(&mut self.current[filled..]) {
                    Ok(0) => {
                        outcome = Ok(true);
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        outcome = Err(e);
                        break;
                    }
                }
            }
            self.current.truncate(filled);
            let n = (filled - start) as u64;
            total += n;
            self.decompressed_len += n;
            if outcome? {
                break;
            }
            // The frame is full.
            self.cut()?;
        }
        self.cut()?;
        Ok(total)
    }

    /// Writes `b` as one entry: it starts a new frame and is followed by a cut.
    pub fn write_entry_bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.cut()?;
        self.write_all(b)?;
        self.cut()
    }

    /// Bytes accepted so far (the decompressed offset of the next byte), buffered ones included.
    pub fn decompressed_len(&self) -> u64 {
        self.decompressed_len
    }

    /// Compressed bytes written to the inner writer so far (frames only, not the table).
    pub fn compressed_len(&self) -> u64 {
        self.compressed_len
    }

    /// Frames ended so far, including those queued for compression; not the current one.
    pub fn frames(&self) -> usize {
        self.sizes.len() + self.pending.len()
    }

    /// Ends the current frame, compresses everything queued, writes the seek table and flushes.
    /// Returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.cut()?;
        self.compress_pending()?;
        self.out.write_all(&table::encode(&self.sizes))?;
        self.out.flush()?;
        Ok(self.out)
    }

    fn take_spare(&mut self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.max_frame))
    }

    fn compress_pending(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let refs: Vec<&[u8]> = pending.iter().map(|f| f.as_slice()).collect();
        let result = self.compress_and_write(&refs);
        for mut f in pending {
            if f.capacity() == self.max_frame && self.spare.len() < self.batch {
                f.clear();
                self.spare.push(f);
            }
        }
        result
    }

    /// Compresses `frames` in parallel and writes them in order.
    fn compress_and_write(&mut self, frames: &[&[u8]]) -> io::Result<()> {
        let (level, checksum, content_size) = (self.level, self.checksum, self.content_size);
        if self.encoded.len() < frames.len() {
            self.encoded.resize_with(frames.len(), Vec::new);
        }
        let results: Vec<io::Result<Encoded>> = frames
            .par_iter()
            .zip(self.encoded.par_iter_mut())
            .map_init(
                || compressor(level, checksum, content_size),
                |c, (frame, out)| match c {
                    Ok(c) => encode_frame(c, frame, out, checksum),
                    Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
                },
            )
            .collect();
        for ((frame, r), c) in frames.iter().zip(results).zip(&self.encoded) {
            let index = self.sizes.len();
            let encoded = r.map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("compressing frame {index} ({} bytes): {e}", frame.len()),
                )
            })?;
            let len = match encoded {
                Encoded::Compressed => {
                    self.out.write_all(c)?;
                    c.len()
                }
                Encoded::Stored(sum) => {
                    // Written from the frame itself: no copy into an output buffer.
                    super::stored::write(frame, sum, content_size, &mut self.out)?
                }
            };
            let c_size = u32::try_from(len).map_err(|_| {
                io::Error::other(format!("frame {index} compressed to {len} bytes"))
            })?;
            // frame.len() <= max_frame <= MAX_FRAME_DECOMPRESSED fits in u32.
            self.sizes.push((c_size, frame.len() as u32));
            self.compressed_len += u64::from(c_size);
        }
        // Keep as many buffers as a batch of full frames needs; a burst of small frames
        // leaves no lasting allocation behind.
        self.encoded.truncate(self.batch);
        Ok(())
    }
}

/// How [`encode_frame`] encoded a frame.
enum Encoded {
    /// Compressed into the output buffer.
    Compressed,
    /// To be written as a stored frame straight from the frame's bytes, with this content
    /// checksum (computed here, in parallel).
    Stored(Option<u32>),
}

/// Encodes `frame`: stored when no probe of it compresses, else compressed by `c` into `out`
/// (whose earlier bytes are dropped).
fn encode_frame(
    c: &mut zstd::bulk::Compressor<'static>,
    frame: &[u8],
    out: &mut Vec<u8>,
    checksum: bool,
) -> io::Result<Encoded> {
    if frame.len() > PROBE && incompressible(c, frame, out)? {
        let sum = checksum.then(|| super::stored::content_checksum(frame));
        return Ok(Encoded::Stored(sum));
    }
    out.clear();
    out.reserve_exact(zstd::zstd_safe::compress_bound(frame.len()));
    c.compress_to_buffer(frame, out)?;
    Ok(Encoded::Compressed)
}

/// Whether none of `PROBES` evenly spread samples of `frame` shrinks by 1% when compressed;
/// `scratch` is used as the output buffer.
fn incompressible(
    c: &mut zstd::bulk::Compressor<'static>,
    frame: &[u8],
    scratch: &mut Vec<u8>,
) -> io::Result<bool> {
    let n = PROBE / PROBES;
    let step = (frame.len() - n) / (PROBES - 1);
    scratch.reserve_exact(zstd::zstd_safe::compress_bound(n));
    for i in 0..PROBES {
        let sample = &frame[i * step..i * step + n];
        scratch.clear();
        let got = c.compress_to_buffer(sample, scratch)?;
        if got * 100 < n * 99 {
            return Ok(false);
        }
    }
    Ok(true)
}

impl<W: Write> Write for SeekableWriter<W> {
    /// Appends to the current frame, ending it when it reaches `max_frame` bytes.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.current.capacity() < self.max_frame {
            let mut spare = self.take_spare();
            spare.extend_from_slice(&self.current);
            self.current = spare;
        }
        let n = buf.len().min(self.max_frame - self.current.len());
        self.current.extend_from_slice(&buf[..n]);
        self.decompressed_len += n as u64;
        if self.current.len() == self.max_frame {
            self.cut()?;
        }
        Ok(n)
    }

    /// Compresses and writes the frames already ended, then flushes the inner writer. The
    /// current frame stays open: flushing must not move frame boundaries.
    fn flush(&mut self) -> io::Result<()> {
        self.compress_pending()?;
        self.out.flush()
    }
}

fn compressor(
    level: i32,
    checksum: bool,
    content_size: bool,
) -> io::Result<zstd::bulk::Compressor<'static>> {
    let mut c = zstd::bulk::Compressor::new(level)?;
    c.set_parameter(CParameter::ChecksumFlag(checksum))?;
    c.set_parameter(CParameter::ContentSizeFlag(content_size))?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seekable::test_util::{seekable, Prng};
    use crate::seekable::{streaming_decoder, SeekTable};

    fn d_sizes(file: &[u8]) -> Vec<u32> {
        let t = SeekTable::read(&file).expect("valid").expect("table");
        (0..t.frames()).map(|i| t.frame(i).d_size).collect()
    }

    /// Hands out at most `step` bytes per read, like a pipe.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn cut_makes_boundaries_exactly_where_called() {
        let mut p = Prng::new(1);
        let data = p.bytes(1000);
        let mut w = SeekableWriter::new(Vec::new(), 3, 128);
        w.cut().expect("cut on empty");
        w.write_all(&data[..10]).expect("write");
        w.cut().expect("cut");
        w.cut().expect("second cut is a no-op");
        w.write_all(&data[10..15]).expect("write");
        w.write_entry_bytes(&data[15..315]).expect("entry");
        assert_eq!(w.decompressed_len(), 315);
        let n = w
            .write_entry(&mut Trickle(&data[315..615], 7))
            .expect("entry");
        assert_eq!(n, 300);
        w.write_all(&data[615..700]).expect("write");
        w.write_frames(&[&data[700..800], &data[800..800], &data[800..928]])
            .expect("frames");
        w.write_all(&data[928..]).expect("write");
        assert_eq!(w.frames(), 12);
        let file = w.finish().expect("finish");
        assert_eq!(
            d_sizes(&file),
            [10, 5, 128, 128, 44, 128, 128, 44, 85, 100, 0, 128, 72]
        );
        let mut out = Vec::new();
        streaming_decoder(&file[..])
            .expect("decoder")
            .read_to_end(&mut out)
            .expect("decode");
        assert_eq!(out, data);
    }

    #[test]
    fn write_frames_refuses_oversized_chunk() {
        let mut w = SeekableWriter::new(Vec::new(), 3, 16);
        let e = w
            .write_frames(&[&[0u8; 16], &[0u8; 17]])
            .expect_err("too big");
        assert!(e.to_string().contains("chunk 1 is 17 bytes"), "{e}");
    }

    #[test]
    fn counters_track_output() {
        let data = Prng::new(2).bytes(5000);
        let mut w = SeekableWriter::new(Vec::new(), 1, 1024);
        w.write_all(&data).expect("write");
        w.flush().expect("flush");
        assert_eq!((w.decompressed_len(), w.frames()), (5000, 4));
        let c = w.compressed_len();
        let file = w.finish().expect("finish");
        let t = SeekTable::read(&file).expect("valid").expect("table");
        assert!(t.compressed_len() > c, "last frame written at finish");
        assert_eq!(t.compressed_len() + 8 + 5 * 8 + 9, file.len() as u64);
    }

    #[test]
    fn zstd_cli_decompresses_output() {
        let mut p = Prng::new(3);
        let mut data = p.text(300_000);
        data.extend(p.bytes(600_000));
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bundle.tar.zst");
        // 256 KiB frames: the first is compressed text, the last ones stored random bytes.
        let file = seekable(&data, 256 << 10, true);
        assert!(file.len() < data.len(), "text compressed");
        std::fs::write(&path, file).expect("write file");
        let out = match std::process::Command::new("zstd")
            .arg("-dc")
            .arg(&path)
            .output()
        {
            Ok(o) => o,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                panic!("zstd CLI not found: install the Debian package zstd")
            }
            Err(e) => panic!("running zstd -dc: {e}"),
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == data, "zstd -dc output differs");
    }

    #[test]
    fn incompressible_frames_are_stored_and_the_rest_compressed() {
        let mut p = Prng::new(5);
        let random = p.bytes(300_000);
        let text = p.text(300_000);
        // A short random frame is compressed by zstd (which falls back to raw blocks itself);
        // only frames over the probe size are stored by us.
        let short = p.bytes(PROBE);
        // Random bytes first (a .gz member in a plain tar layer), text after: compressed.
        let mixed = [p.bytes(PROBE), p.text(300_000)].concat();
        for (checksum, content_size) in [(true, true), (false, false)] {
            let mut w = SeekableWriter::new(Vec::new(), 3, 1 << 20)
                .with_checksum(checksum)
                .with_content_size(content_size);
            w.write_entry_bytes(&random).expect("random");
            w.write_entry_bytes(&text).expect("text");
            w.write_entry_bytes(&short).expect("short");
            w.write_entry_bytes(&mixed).expect("mixed");
            let file = w.finish().expect("finish");
            let t = SeekTable::read(&file).expect("valid").expect("table");
            assert_eq!(t.frames(), 4);
            let stored = super::super::stored::stored_len(&random, checksum, content_size);
            assert_eq!(t.frame(0).c_size as usize, stored, "random frame is stored");
            assert!(
                (t.frame(1).c_size as usize) < text.len() / 2,
                "text frame is compressed: {}",
                t.frame(1).c_size
            );
            let mut out = Vec::new();
            streaming_decoder(&file[..])
                .expect("decoder")
                .read_to_end(&mut out)
                .expect("decode");
            assert!(
                (t.frame(3).c_size as usize) < PROBE + 300_000 / 2,
                "mixed frame is compressed: {}",
                t.frame(3).c_size
            );
            assert!(out == [&random[..], &text[..], &short[..], &mixed[..]].concat());
        }
    }

    /// Runs `f` in a rayon pool of `threads` threads.
    fn on_threads<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("pool")
            .install(f)
    }

    #[test]
    fn output_is_identical_for_any_thread_count() {
        let mut p = Prng::new(4);
        let data = [p.text(100_000), p.bytes(50_000), p.text(70_000)].concat();
        let build = |threads: usize| {
            on_threads(threads, || {
                let mut w = SeekableWriter::new(Vec::new(), 3, 8192);
                w.write_all(&data[..30_000]).expect("write");
                w.cut().expect("cut");
                w.write_entry(&mut Trickle(&data[30_000..150_000], 1000))
                    .expect("entry");
                w.write_frames(&[&data[150_000..151_000]]).expect("frames");
                w.write_all(&data[151_000..]).expect("write");
                w.finish().expect("finish")
            })
        };
        let one = build(1);
        assert!(one == build(4), "4 threads differ from 1");
        assert!(one == build(3), "3 threads differ from 1");

        // Frames over the probe size, stored and compressed ones alternating.
        let big = [p.bytes(700_000), p.text(500_000), p.bytes(300_000)].concat();
        let build_big = |threads: usize| {
            on_threads(threads, || {
                let mut w = SeekableWriter::new(Vec::new(), 3, 256 << 10);
                w.write_all(&big).expect("write");
                w.finish().expect("finish")
            })
        };
        let one = build_big(1);
        assert!(one.len() < big.len(), "text frames compressed");
        assert!(one == build_big(2), "2 threads differ from 1");
        assert!(one == build_big(5), "5 threads differ from 1");
    }
}
