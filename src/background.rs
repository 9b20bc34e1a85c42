//! A writer that does its writing on another thread.
//!
//! Pack produces the bundle on one thread: it reads blobs, encodes frames, then hashes the
//! output for the checksum file and copies it into the page cache. The last two are serial and
//! cost as much as the rest; [`Background`] moves them to a thread of their own, behind a
//! bounded queue, so they overlap with producing the next frames. Memory stays bounded: at most
//! `DEPTH` chunks of `CHUNK` bytes are in flight, and their buffers are recycled.

use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Bytes gathered before a chunk is handed to the writing thread.
const CHUNK: usize = 1 << 20;
/// Chunks queued for the writing thread before `write` waits.
const DEPTH: usize = 8;

/// Writes to `W` on a thread of its own. Errors of the inner writer come back from the next
/// `write` or `flush`, or from [`finish`](Background::finish).
pub struct Background<W: Write + Send + 'static> {
    tx: Option<SyncSender<Vec<u8>>>,
    /// Emptied buffers coming back from the thread.
    back: Receiver<Vec<u8>>,
    thread: Option<JoinHandle<(W, io::Result<()>)>>,
    buf: Vec<u8>,
}

impl<W: Write + Send + 'static> Background<W> {
    /// Starts the writing thread.
    pub fn new(inner: W) -> Self {
        let (tx, rx) = mpsc::sync_channel::<Vec<u8>>(DEPTH);
        let (back_tx, back) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("airlock-write".into())
            .spawn(move || {
                let mut inner = inner;
                for mut chunk in rx {
                    if let Err(e) = inner.write_all(&chunk) {
                        return (inner, Err(e));
                    }
                    chunk.clear();
                    // The producer may be gone already; the buffer is then simply dropped.
                    let _ = back_tx.send(chunk);
                }
                let flushed = inner.flush();
                (inner, flushed)
            })
            .expect("spawning the bundle writing thread");
        Background {
            tx: Some(tx),
            back,
            thread: Some(thread),
            buf: Vec::with_capacity(CHUNK),
        }
    }

    /// Writes what is buffered, waits for the thread to write it and flush the inner writer,
    /// and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let sent = self.send();
        let (inner, result) = match self.join() {
            Some(Ok(done)) => done,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            // `send` found the thread stopped and joined it: its error is in `sent`.
            None => return sent.and(Err(stopped())),
        };
        result?;
        sent?;
        Ok(inner)
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let next = self
            .back
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let chunk = std::mem::replace(&mut self.buf, next);
        let sent = match &self.tx {
            Some(tx) => tx.send(chunk).is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped on an error: report it.
        match self.join() {
            Some(Ok((_, Err(e)))) => Err(e),
            Some(Err(panic)) => std::panic::resume_unwind(panic),
            _ => Err(stopped()),
        }
    }

    /// Closes the queue and waits for the thread; `None` when it was joined already.
    fn join(&mut self) -> Option<std::thread::Result<(W, io::Result<()>)>> {
        drop(self.tx.take());
        self.thread.take().map(JoinHandle::join)
    }
}

fn stopped() -> io::Error {
    io::Error::other("the bundle writing thread stopped")
}

impl<W: Write + Send + 'static> Write for Background<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Hands what is buffered to the thread; it does not wait for it to be written, nor
    /// flush the inner writer: [`finish`](Background::finish) does both.
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl<W: Write + Send + 'static> Drop for Background<W> {
    /// Waits for the thread, so nothing is written after the writer is gone; a panic there
    /// is not raised again during a drop.
    fn drop(&mut self) {
        let _ = self.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fails once it has taken `limit` bytes.
    #[derive(Debug)]
    struct Full {
        taken: Vec<u8>,
        limit: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.taken.len() >= self.limit {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.limit - self.taken.len());
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn writes_everything_in_order() {
        let data: Vec<u8> = (0..5 * CHUNK + 123).map(|i| (i * 7 % 251) as u8).collect();
        let mut w = Background::new(Vec::new());
        for piece in data.chunks(333_333) {
            w.write_all(piece).expect("write");
        }
        w.flush().expect("flush");
        w.write_all(b"tail").expect("write");
        let out = w.finish().expect("finish");
        assert!(out[..data.len()] == data[..]);
        assert_eq!(&out[data.len()..], b"tail");
    }

    #[test]
    fn an_error_of_the_inner_writer_comes_back() {
        let mut w = Background::new(Full {
            taken: Vec::new(),
            limit: 3 * CHUNK,
        });
        let chunk = vec![1u8; CHUNK];
        let mut failed = None;
        for _ in 0..DEPTH + 10 {
            if let Err(e) = w.write_all(&chunk) {
                failed = Some(e);
                break;
            }
        }
        let e = match failed {
            Some(e) => e,
            None => w.finish().expect_err("finish reports the error"),
        };
        assert!(e.to_string().contains("disk full"), "{e}");
    }

    #[test]
    fn finish_after_the_thread_stopped_reports_its_error() {
        let mut w = Background::new(Full {
            taken: Vec::new(),
            limit: 0,
        });
        w.write_all(&vec![1u8; CHUNK]).expect("handed over");
        // Give the thread time to fail on the chunk, then leave bytes in the buffer.
        std::thread::sleep(std::time::Duration::from_millis(50));
        let _ = w.write_all(b"tail");
        let e = w.finish().expect_err("the write failed on the thread");
        assert!(e.to_string().contains("disk full"), "{e}");
    }

    #[test]
    fn finish_flushes_the_inner_writer() {
        #[derive(Debug, Default)]
        struct Flushed(bool);
        impl Write for Flushed {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0 = true;
                Ok(())
            }
        }
        let mut w = Background::new(Flushed::default());
        w.write_all(b"x").expect("write");
        assert!(w.finish().expect("finish").0, "inner writer not flushed");
    }

    #[test]
    fn finish_reports_an_error_of_the_last_chunk() {
        let mut w = Background::new(Full {
            taken: Vec::new(),
            limit: 10,
        });
        w.write_all(b"more than ten bytes").expect("buffered");
        let e = w.finish().expect_err("the write fails on the thread");
        assert!(e.to_string().contains("disk full"), "{e}");
    }
}
