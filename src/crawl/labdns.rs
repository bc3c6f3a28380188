//! A loopback DNS server for tests and benches: answers every A question with one address
//! and a fixed TTL, every other question with no records, and counts what it was asked (A,
//! AAAA, and from how many source ports, i.e. client sockets) and the CPU time its own thread
//! spent (so a bench can take it out of the process's). Binds 127.0.0.1 only.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

/// What the server was asked so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabDnsStats {
    /// Questions answered (every type).
    pub queries: u64,
    pub a: u64,
    pub aaaa: u64,
    /// Distinct client source ports seen: one per client socket.
    pub sockets: u64,
}

#[derive(Default)]
struct Counts {
    queries: u64,
    a: u64,
    aaaa: u64,
    ports: HashSet<u16>,
}

/// The running server; stopped when dropped.
pub struct LabDns {
    addr: SocketAddr,
    counts: Arc<Mutex<Counts>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// `/proc/self/task/<tid>/schedstat` of the serving thread, where there is one.
    schedstat: Option<String>,
}

impl LabDns {
    /// Serve on `127.0.0.1` (a free port): A questions get `address` with `ttl` seconds.
    pub fn start(address: Ipv4Addr, ttl: u32) -> std::io::Result<Self> {
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        grow_receive_buffer(&socket);
        let addr = socket.local_addr()?;
        let counts = Arc::new(Mutex::new(Counts::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = {
            let (counts, stop) = (counts.clone(), stop.clone());
            std::thread::Builder::new()
                .name("lab-dns".into())
                .spawn(move || {
                    // `/proc/thread-self` links to `<pid>/task/<tid>`.
                    let own = std::fs::read_link("/proc/thread-self").ok().and_then(|p| {
                        p.file_name()
                            .and_then(|t| t.to_str())
                            .map(|t| format!("/proc/self/task/{t}/schedstat"))
                    });
                    let _ = tid_tx.send(own);
                    serve(&socket, address, ttl, &counts, &stop)
                })?
        };
        let schedstat = tid_rx.recv().ok().flatten();
        Ok(Self {
            addr,
            counts,
            stop,
            thread: Some(thread),
            schedstat,
        })
    }

    /// CPU time the serving thread has used, where the system tells it (Linux).
    pub fn cpu_time(&self) -> Option<Duration> {
        let text = std::fs::read_to_string(self.schedstat.as_ref()?).ok()?;
        let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
        Some(Duration::from_nanos(ns))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> LabDnsStats {
        let c = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        LabDnsStats {
            queries: c.queries,
            a: c.a,
            aaaa: c.aaaa,
            sockets: c.ports.len() as u64,
        }
    }
}

impl Drop for LabDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Ask for a 4 MiB receive buffer (the kernel caps it at `net.core.rmem_max`): a thousand
/// queries arriving at once overflow the default one, and a dropped query costs the client
/// its whole timeout. Best effort: a smaller buffer only makes drops likelier.
fn grow_receive_buffer(socket: &UdpSocket) {
    let _ = socket2::SockRef::from(socket).set_recv_buffer_size(4 << 20);
}

fn serve(
    socket: &UdpSocket,
    address: Ipv4Addr,
    ttl: u32,
    counts: &Mutex<Counts>,
    stop: &AtomicBool,
) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, peer)) = socket.recv_from(&mut buf) else {
            continue; // a read timeout: look at the stop flag again
        };
        let Some((qtype, reply)) = answer(&buf[..n], address, ttl) else {
            continue;
        };
        {
            let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
            c.queries += 1;
            match qtype {
                TYPE_A => c.a += 1,
                TYPE_AAAA => c.aaaa += 1,
                _ => {}
            }
            c.ports.insert(peer.port());
        }
        let _ = socket.send_to(&reply, peer);
    }
}

/// The reply to one query message: its question type and the response bytes, or `None` for
/// anything that is not a single-question query.
pub fn answer(query: &[u8], address: Ipv4Addr, ttl: u32) -> Option<(u16, Vec<u8>)> {
    let header = query.get(..12)?;
    let flags = u16::from_be_bytes([header[2], header[3]]);
    let qdcount = u16::from_be_bytes([header[4], header[5]]);
    if flags & 0x8000 != 0 || qdcount != 1 {
        return None;
    }
    // The question: labels up to the root label, then type and class.
    let mut at = 12;
    loop {
        let len = usize::from(*query.get(at)?);
        if len == 0 {
            at += 1;
            break;
        }
        if len > 63 {
            return None;
        }
        at += 1 + len;
    }
    let question = query.get(12..at + 4)?;
    let qtype = u16::from_be_bytes([query[at], query[at + 1]]);
    let qclass = u16::from_be_bytes([query[at + 2], query[at + 3]]);
    let answers: u16 = u16::from(qtype == TYPE_A && qclass == CLASS_IN);

    let mut reply = Vec::with_capacity(question.len() + 28);
    reply.extend_from_slice(&header[..2]); // id
    let rd = flags & 0x0100;
    reply.extend_from_slice(&(0x8080 | rd).to_be_bytes()); // QR, RA, RD as asked, NOERROR
    reply.extend_from_slice(&1u16.to_be_bytes());
    reply.extend_from_slice(&answers.to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]); // no authority, no additional
    reply.extend_from_slice(question);
    if answers == 1 {
        reply.extend_from_slice(&[0xc0, 0x0c]); // the question's name
        reply.extend_from_slice(&TYPE_A.to_be_bytes());
        reply.extend_from_slice(&CLASS_IN.to_be_bytes());
        reply.extend_from_slice(&ttl.to_be_bytes());
        reply.extend_from_slice(&4u16.to_be_bytes());
        reply.extend_from_slice(&address.octets());
    }
    Some((qtype, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut q = Vec::new();
        q.extend_from_slice(&id.to_be_bytes());
        q.extend_from_slice(&0x0100u16.to_be_bytes());
        q.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&CLASS_IN.to_be_bytes());
        q
    }

    #[test]
    fn answers_a_with_the_address_and_aaaa_with_nothing() {
        let q = query(0x1234, "a.bench.test", TYPE_A);
        let (t, r) = answer(&q, Ipv4Addr::new(127, 0, 0, 9), 300).unwrap();
        assert_eq!(t, TYPE_A);
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(u16::from_be_bytes([r[2], r[3]]), 0x8180);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1); // one answer
        assert_eq!(&r[r.len() - 10..r.len() - 6], &300u32.to_be_bytes());
        assert_eq!(&r[r.len() - 4..], &[127, 0, 0, 9]);

        let (t, r) = answer(&query(7, "a.bench.test", TYPE_AAAA), Ipv4Addr::LOCALHOST, 0).unwrap();
        assert_eq!(t, TYPE_AAAA);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 0);
        assert_eq!(r.len(), q.len());
    }

    #[test]
    fn ignores_what_is_not_a_query() {
        let mut q = query(1, "x.test", TYPE_A);
        assert!(answer(&q[..11], Ipv4Addr::LOCALHOST, 0).is_none());
        assert!(answer(&q[..q.len() - 1], Ipv4Addr::LOCALHOST, 0).is_none());
        q[2] |= 0x80; // a response
        assert!(answer(&q, Ipv4Addr::LOCALHOST, 0).is_none());
    }
}
