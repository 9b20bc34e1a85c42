//! A fault-injecting TCP proxy between airlock and a real registry, on 127.0.0.1.
//!
//! It forwards bytes both ways and, per the [`Faults`] it is given, cuts connections once a
//! number of request bytes went through (a reset in the middle of a blob), or refuses new
//! connections altogether (a registry that went away). Faults can be changed while it runs.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What the proxy does to traffic.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Cut every connection after it forwarded this many request bytes.
    pub cut_after_bytes: Option<u64>,
    /// Only cut this many connections; after that, pass everything.
    pub cuts_left: Option<usize>,
    /// Refuse (close at once) every new connection.
    pub refuse: bool,
    /// Hold every response this long before forwarding it (a stalled registry).
    pub stall: Option<Duration>,
    /// Go down for good once this many request bytes went through in all: cut every open
    /// connection and refuse new ones (a registry killed mid-push), until [`Proxy::go_up`].
    pub down_after_bytes: Option<u64>,
    /// Stop forwarding answers once this many response bytes went through in all: every
    /// connection hangs (a stalled registry), until the proxy is dropped.
    pub hang_after_response_bytes: Option<u64>,
    /// Once a connection forwarded this many request bytes, stop reading its requests (an
    /// upload the registry no longer accepts), until the proxy is dropped.
    pub hang_after_request_bytes: Option<u64>,
}

pub struct Proxy {
    port: u16,
    stop: Arc<AtomicBool>,
    faults: Arc<Mutex<Faults>>,
    connections: Arc<AtomicUsize>,
    cuts: Arc<AtomicUsize>,
    up_bytes: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    hellos: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

/// Shared state of one proxy's connections.
#[derive(Clone)]
struct Shared {
    down_bytes: Arc<AtomicU64>,
    hang_after: Option<u64>,
    stop: Arc<AtomicBool>,
    cuts: Arc<AtomicUsize>,
    up_bytes: Arc<AtomicU64>,
    dead: Arc<AtomicBool>,
    down_after: Option<u64>,
    hellos: Arc<AtomicUsize>,
}

impl Proxy {
    /// Proxies 127.0.0.1:<new port> to `target` (`127.0.0.1:PORT`).
    pub fn start(target: &str, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Mutex::new(faults));
        let connections = Arc::new(AtomicUsize::new(0));
        let cuts = Arc::new(AtomicUsize::new(0));
        let up_bytes = Arc::new(AtomicU64::new(0));
        let dead = Arc::new(AtomicBool::new(false));
        let db = Arc::new(AtomicU64::new(0));
        let hellos = Arc::new(AtomicUsize::new(0));
        let hl = hellos.clone();
        let target = target.to_string();
        let (s, f, c, k, u, dd) = (
            stop.clone(),
            faults.clone(),
            connections.clone(),
            cuts.clone(),
            up_bytes.clone(),
            dead.clone(),
        );
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let fl = f.lock().unwrap().clone();
                if fl.refuse || dd.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let cut_at = match (fl.cut_after_bytes, fl.cuts_left) {
                    (Some(n), None) => Some(n),
                    (Some(n), Some(left)) if k.load(Ordering::SeqCst) < left => Some(n),
                    _ => None,
                };
                let shared = Shared {
                    down_bytes: db.clone(),
                    hang_after: fl.hang_after_response_bytes,
                    stop: s.clone(),
                    cuts: k.clone(),
                    up_bytes: u.clone(),
                    dead: dd.clone(),
                    down_after: fl.down_after_bytes,
                    hellos: hl.clone(),
                };
                let hang_up = fl.hang_after_request_bytes;
                std::thread::spawn(move || {
                    pump(client, server, cut_at, fl.stall, hang_up, &shared)
                });
            }
        });
        Proxy {
            port,
            stop,
            faults,
            connections,
            cuts,
            up_bytes,
            dead,
            hellos,
            thread: Some(thread),
        }
    }

    /// True once `down_after_bytes` took the proxy down.
    pub fn is_down(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Brings the proxy back after it went down, with no faults.
    pub fn go_up(&self) {
        self.set_faults(Faults::default());
        self.dead.store(false, Ordering::SeqCst);
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_faults(&self, f: Faults) {
        *self.faults.lock().unwrap() = f;
    }

    /// Connections cut on purpose so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Connections that opened with a TLS ClientHello (first byte 0x16): https attempts.
    pub fn tls_hellos(&self) -> usize {
        self.hellos.load(Ordering::SeqCst)
    }

    /// Request bytes forwarded to the registry.
    pub fn up_bytes(&self) -> u64 {
        self.up_bytes.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn pump(
    client: TcpStream,
    server: TcpStream,
    cut_at: Option<u64>,
    stall: Option<Duration>,
    hang_up: Option<u64>,
    shared: &Shared,
) {
    let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (mut s_read, mut c_write) = (server, client);
    let dead = shared.dead.clone();
    let (down_bytes, hang_after, stop) = (
        shared.down_bytes.clone(),
        shared.hang_after,
        shared.stop.clone(),
    );
    let down = std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        let mut first = true;
        loop {
            let n = match s_read.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if first {
                if let Some(d) = stall {
                    std::thread::sleep(d);
                }
                first = false;
            }
            let total = down_bytes.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
            if hang_after.is_some_and(|h| total > h) {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                break;
            }
            if dead.load(Ordering::SeqCst) || c_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c_write.shutdown(Shutdown::Both);
        let _ = s_read.shutdown(Shutdown::Both);
    });
    let mut sent = 0u64;
    let mut buf = [0u8; 16 << 10];
    loop {
        if hang_up.is_some_and(|h| sent >= h) {
            while !shared.stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            break;
        }
        // Never read past the hang point, so that the bytes after it stay with the client.
        let want = hang_up.map_or(buf.len(), |h| (h - sent).min(buf.len() as u64) as usize);
        let n = match c_read.read(&mut buf[..want]) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if sent == 0 && buf[0] == 0x16 {
            shared.hellos.fetch_add(1, Ordering::SeqCst);
        }
        let total = shared.up_bytes.load(Ordering::SeqCst);
        if shared
            .down_after
            .is_some_and(|limit| total + n as u64 > limit)
        {
            shared.dead.store(true, Ordering::SeqCst);
        }
        let over = cut_at.is_some_and(|limit| sent + n as u64 > limit);
        if over || shared.dead.load(Ordering::SeqCst) {
            // Forward up to the limit, then reset both sides: a connection dropped mid-body.
            let part = cut_at
                .map_or(0, |limit| limit.saturating_sub(sent))
                .min(n as u64) as usize;
            let _ = s_write.write_all(&buf[..part]);
            shared.up_bytes.fetch_add(part as u64, Ordering::SeqCst);
            shared.cuts.fetch_add(1, Ordering::SeqCst);
            let _ = c_read.shutdown(Shutdown::Both);
            let _ = s_write.shutdown(Shutdown::Both);
            break;
        }
        if s_write.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        shared.up_bytes.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = s_write.shutdown(Shutdown::Write);
    let _ = down.join();
}
