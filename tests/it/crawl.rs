//! The scanner's network half against real HTTP servers on loopback. Servers bind to
//! 127.0.0.2 (allowed with `allow_nets`), host names map there with overrides; 127.0.0.1 stays
//! refused, and listeners there prove no connection was made.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use beian::crawl::{scan_stream, ScanConfig, Scanner};
use beian::observation::{FetchErrorKind, Observation};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LAB_IP: &str = "127.0.0.2";
const MIB: usize = 1024 * 1024;

#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: HashMap<String, String>,
}

struct Server {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Server {
    fn port(&self) -> u16 {
        self.addr.port()
    }
    fn paths(&self) -> Vec<String> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }
    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// A one-request-per-connection HTTP/1.1 server. A TLS ClientHello gets a plain-HTTP 400, as
/// from a server that does not speak TLS on that port.
async fn serve<F, Fut>(ip: &str, handler: F) -> Server
where
    F: Fn(Request, TcpStream) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let (reqs, conns) = (requests.clone(), connections.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            conns.fetch_add(1, Ordering::SeqCst);
            let (handler, reqs) = (handler.clone(), reqs.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if buf[0] == 0x16 {
                        let _ = stream
                            .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                            .await;
                        return;
                    }
                    if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 65536 {
                        break;
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let mut lines = head.split("\r\n");
                let path = lines
                    .next()
                    .and_then(|l| l.split(' ').nth(1))
                    .unwrap_or("")
                    .to_string();
                let headers = lines
                    .take_while(|l| !l.is_empty())
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let request = Request { path, headers };
                reqs.lock().unwrap().push(request.clone());
                (*handler)(request, stream).await;
            });
        }
    });
    Server {
        addr,
        requests,
        connections,
        task,
    }
}

async fn respond(stream: &mut TcpStream, status: u16, headers: &[(&str, &str)], body: &[u8]) {
    let mut head = format!(
        "HTTP/1.1 {status} Status\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body).await;
    let _ = stream.shutdown().await;
}

/// A port on the lab address with nothing listening.
async fn closed_port() -> u16 {
    let l = TcpListener::bind((LAB_IP, 0)).await.unwrap();
    l.local_addr().unwrap().port()
}

fn lab_config(hosts: &[&str]) -> ScanConfig {
    ScanConfig {
        extract: false,
        deadline_ms: 30_000,
        request_timeout_ms: 20_000,
        connect_timeout_ms: 10_000,
        ..super::lab::lab_config(LAB_IP, hosts)
    }
}

async fn observe(config: ScanConfig, target: &str) -> Observation {
    let scanner = Scanner::new(config).unwrap();
    tokio::time::timeout(Duration::from_secs(120), scanner.observe(target))
        .await
        .expect("observe must finish")
}

fn kind(record: &beian::observation::FetchRecord) -> Option<FetchErrorKind> {
    record.error.as_ref().map(|e| e.kind)
}

/// A site: `/` is a small page, the certificate is served at `/cert/bazs.cert`.
async fn plain_site() -> Server {
    serve(LAB_IP, |req, mut s| async move {
        match req.path.as_str() {
            "/" => {
                respond(
                    &mut s,
                    200,
                    &[("Content-Type", "text/html; charset=utf-8")],
                    b"<html><body>home</body></html>",
                )
                .await
            }
            "/cert/bazs.cert" => respond(&mut s, 200, &[], b"CERT").await,
            _ => respond(&mut s, 404, &[], b"no").await,
        }
    })
    .await
}

#[tokio::test]
async fn https_falls_back_to_http_when_the_https_port_speaks_plain_http() {
    let site = plain_site().await;
    let mut config = lab_config(&["fallback.test"]);
    config.https_port = site.port();
    config.http_port = site.port();
    let obs = observe(config, "Fallback.Test").await;

    assert_eq!(obs.host, "fallback.test");
    assert_eq!(obs.dns.answers, vec![LAB_IP.parse::<IpAddr>().unwrap()]);
    assert_eq!(obs.dns.used, Some(LAB_IP.parse().unwrap()));
    assert_eq!(obs.homepage.len(), 2, "{obs:#?}");
    assert!(obs.homepage[0].url.starts_with("https://fallback.test:"));
    assert_eq!(
        kind(&obs.homepage[0]),
        Some(FetchErrorKind::Tls),
        "{obs:#?}"
    );
    assert!(obs.homepage[1].url.starts_with("http://fallback.test:"));
    assert_eq!(obs.homepage[1].status, Some(200));
    assert_eq!(obs.homepage[1].bytes, 30);
    assert!(!obs.homepage[1].truncated);
    assert_eq!(
        obs.homepage[1].content_type.as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(obs.homepage_used, Some(1));
    assert!(obs.allow_private);

    // The certificate comes from the origin that answered: http on the same host and port.
    let cert = obs.cert.as_ref().expect("cert fetched");
    assert_eq!(
        cert.fetch.url,
        format!("http://fallback.test:{}/cert/bazs.cert", site.port())
    );
    assert_eq!(cert.body.as_deref(), Some(&b"CERT"[..]));
    assert!(obs.cert_misplaced.is_none());
    assert!(!site.paths().contains(&"/cert/bazx.cert".to_string()));

    // Every request carries the scanner's User-Agent.
    let requests = site.requests.lock().unwrap().clone();
    assert!(requests.iter().all(|r| r
        .headers
        .get("user-agent")
        .is_some_and(|ua| ua.starts_with("beian/"))));
}

#[tokio::test]
async fn https_falls_back_to_http_when_the_https_port_is_closed() {
    let site = plain_site().await;
    let mut config = lab_config(&["closed.test"]);
    config.https_port = closed_port().await;
    config.http_port = site.port();
    let obs = observe(config, "closed.test").await;
    assert_eq!(obs.homepage.len(), 2);
    assert_eq!(
        kind(&obs.homepage[0]),
        Some(FetchErrorKind::Connect),
        "{obs:#?}"
    );
    assert_eq!(obs.homepage[0].status, None);
    assert_eq!(obs.homepage[1].status, Some(200));
    assert_eq!(obs.homepage_used, Some(1));
}

#[tokio::test]
async fn redirects_are_followed_and_every_hop_recorded() {
    let site = serve(LAB_IP, |req, mut s| async move {
        let port = s.local_addr().unwrap().port();
        match req.path.as_str() {
            "/start" => respond(&mut s, 302, &[("Location", "/a")], b"").await,
            "/a" => {
                let next = format!("http://other.test:{port}/b");
                respond(&mut s, 301, &[("Location", next.as_str())], b"").await
            }
            "/b" => respond(&mut s, 200, &[], b"final").await,
            "/cert/bazs.cert" => respond(&mut s, 410, &[], b"").await,
            _ => respond(&mut s, 404, &[], b"").await,
        }
    })
    .await;
    let target = format!("http://start.test:{}/start", site.port());
    let obs = observe(lab_config(&["start.test", "other.test"]), &target).await;
    let home = &obs.homepage[0];
    assert_eq!(obs.homepage.len(), 1);
    assert_eq!(home.error, None);
    let statuses: Vec<_> = home.hops.iter().map(|h| h.status).collect();
    assert_eq!(statuses, vec![Some(302), Some(301), Some(200)]);
    assert_eq!(
        home.hops[1].url,
        format!("http://start.test:{}/a", site.port())
    );
    assert_eq!(
        home.hops[2].url,
        format!("http://other.test:{}/b", site.port())
    );
    assert!(home.hops.iter().all(|h| h.address == Some(site.addr)));
    assert_eq!(home.status, Some(200));
    assert_eq!(home.bytes, 5);
    // The certificate is looked for on the target's origin, not where the redirects ended.
    let cert = obs.cert.as_ref().unwrap();
    assert_eq!(
        cert.fetch.url,
        format!("http://start.test:{}/cert/bazs.cert", site.port())
    );
    assert_eq!(cert.fetch.status, Some(410));
    assert!(obs.cert_misplaced.is_some());
}

#[tokio::test]
async fn redirects_into_special_ranges_are_refused_without_connecting() {
    let loopback = serve("127.0.0.1", |_req, mut s| async move {
        respond(&mut s, 200, &[], b"internal").await
    })
    .await;
    let lo_port = loopback.port();
    let site = serve(LAB_IP, move |req, mut s| async move {
        let location = match req.path.as_str() {
            "/to-loopback" => format!("http://127.0.0.1:{lo_port}/"),
            "/to-metadata" => "http://169.254.169.254/latest/meta-data/".to_string(),
            "/to-mapped" => format!("http://[::ffff:127.0.0.1]:{lo_port}/"),
            "/to-decimal" => format!("http://2130706433:{lo_port}/"),
            "/to-name" => format!("http://sneaky.test:{lo_port}/"),
            "/to-file" => "file:///etc/passwd".to_string(),
            _ => return respond(&mut s, 404, &[], b"").await,
        };
        respond(&mut s, 302, &[("Location", location.as_str())], b"").await
    })
    .await;
    let mut config = lab_config(&["site.test"]);
    config
        .overrides
        .insert("sneaky.test".into(), vec!["127.0.0.1".parse().unwrap()]);
    let scanner = Scanner::new(config).unwrap();
    for path in [
        "/to-loopback",
        "/to-metadata",
        "/to-mapped",
        "/to-decimal",
        "/to-name",
    ] {
        let target = format!("http://site.test:{}{path}", site.port());
        let obs = scanner.observe(&target).await;
        let home = &obs.homepage[0];
        assert_eq!(
            kind(home),
            Some(FetchErrorKind::BlockedAddress),
            "{path}: {home:#?}"
        );
        // Only the redirect itself was requested.
        assert_eq!(home.hops.len(), 1, "{path}");
        assert_eq!(home.hops[0].status, Some(302));
        assert_eq!(obs.homepage.len(), 1);
    }
    let obs = scanner
        .observe(&format!("http://site.test:{}/to-file", site.port()))
        .await;
    assert_eq!(kind(&obs.homepage[0]), Some(FetchErrorKind::BadRedirect));
    assert_eq!(loopback.connections(), 0, "nothing may reach 127.0.0.1");
}

#[tokio::test]
async fn hosts_and_literals_in_special_ranges_are_refused() {
    let loopback = serve("127.0.0.1", |_req, mut s| async move {
        respond(&mut s, 200, &[], b"internal").await
    })
    .await;
    let mut config = lab_config(&[]);
    config
        .overrides
        .insert("private.test".into(), vec!["127.0.0.1".parse().unwrap()]);
    config.http_port = loopback.port();
    config.https_port = loopback.port();
    let scanner = Scanner::new(config).unwrap();

    let obs = scanner.observe("private.test").await;
    assert_eq!(
        obs.dns.blocked,
        vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
    );
    assert_eq!(
        obs.homepage.len(),
        1,
        "a refusal does not fall back: {obs:#?}"
    );
    assert_eq!(kind(&obs.homepage[0]), Some(FetchErrorKind::BlockedAddress));
    assert!(obs.homepage[0].hops.is_empty());
    assert!(obs.cert.is_none());

    let obs = scanner
        .observe(&format!("http://127.0.0.1:{}/", loopback.port()))
        .await;
    assert_eq!(kind(&obs.homepage[0]), Some(FetchErrorKind::BlockedAddress));
    let obs = scanner.observe("169.254.169.254").await;
    assert_eq!(obs.homepage.len(), 1);
    assert_eq!(kind(&obs.homepage[0]), Some(FetchErrorKind::BlockedAddress));

    assert_eq!(loopback.connections(), 0);
}

#[tokio::test]
async fn an_endless_redirect_loop_stops_after_ten() {
    let site = serve(LAB_IP, |req, mut s| async move {
        let n: u64 = req
            .path
            .strip_prefix("/loop/")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let next = format!("/loop/{}", n + 1);
        respond(&mut s, 302, &[("Location", next.as_str())], b"").await
    })
    .await;
    let obs = observe(
        lab_config(&["loop.test"]),
        &format!("http://loop.test:{}/loop/0", site.port()),
    )
    .await;
    let home = &obs.homepage[0];
    assert_eq!(kind(home), Some(FetchErrorKind::TooManyRedirects));
    assert_eq!(home.hops.len(), 11, "the first request and ten redirects");
    // The certificate path redirects into the loop too.
    let cert = obs.cert.as_ref().unwrap();
    assert_eq!(kind(&cert.fetch), Some(FetchErrorKind::TooManyRedirects));
    assert!(obs.cert_misplaced.is_none());
}

#[tokio::test]
async fn a_slowloris_server_hits_the_deadline() {
    let site = serve(LAB_IP, |_req, mut s| async move {
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n")
            .await;
        for _ in 0..1000 {
            if s.write_all(b"x").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let mut config = lab_config(&["slow.test"]);
    config.deadline_ms = 2_000;
    config.request_timeout_ms = 120_000;
    let obs = observe(config, &format!("http://slow.test:{}/", site.port())).await;
    let home = &obs.homepage[0];
    assert_eq!(kind(home), Some(FetchErrorKind::Deadline), "{home:#?}");
    assert_eq!(home.status, Some(200));
    assert!(home.bytes < 1000);
    // Nothing more is fetched once the deadline passed.
    let cert = obs.cert.as_ref().unwrap();
    assert_eq!(kind(&cert.fetch), Some(FetchErrorKind::Deadline));
    assert!(cert.fetch.hops.is_empty());
}

fn deflate(c: &mut flate2::Compress, input: &[u8], flush: flate2::FlushCompress) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 << 16);
    let start = c.total_in();
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(1 << 16);
        }
        let consumed = (c.total_in() - start) as usize;
        let status = c.compress_vec(&input[consumed..], &mut out, flush).unwrap();
        let consumed = (c.total_in() - start) as usize;
        if status == flate2::Status::StreamEnd
            || (consumed == input.len() && out.capacity() > out.len())
        {
            return out;
        }
    }
}

#[tokio::test]
async fn a_gzip_bomb_stops_at_the_homepage_cap() {
    // 1 GiB of zeros as a gzip stream, produced lazily: each MiB is a fully flushed deflate
    // segment (identical bytes every time), so the server never materialises the GiB.
    let mut c = flate2::Compress::new(flate2::Compression::best(), false);
    let zeros = vec![0u8; MIB];
    let segment = deflate(&mut c, &zeros, flate2::FlushCompress::Full);
    let again = deflate(&mut c, &zeros, flate2::FlushCompress::Full);
    assert_eq!(segment, again, "full-flush segments repeat");
    assert!(segment.len() < 16 * 1024);
    let finish = deflate(&mut c, &[], flate2::FlushCompress::Finish);
    let segment = Arc::new(segment);
    let sent_mib = Arc::new(AtomicU64::new(0));
    let sent = sent_mib.clone();
    let site = serve(LAB_IP, move |_req, mut s| {
        let (segment, finish, sent) = (segment.clone(), finish.clone(), sent.clone());
        async move {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nConnection: close\r\n\r\n";
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let gzip_header = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
            if s.write_all(&gzip_header).await.is_err() {
                return;
            }
            for _ in 0..1024 {
                if s.write_all(&segment).await.is_err() {
                    return;
                }
                sent.fetch_add(1, Ordering::SeqCst);
            }
            // Reached only if the client read the whole GiB: finish the stream properly.
            let mut crc = flate2::Crc::new();
            let zeros = vec![0u8; MIB];
            for _ in 0..1024 {
                crc.update(&zeros);
            }
            let mut trailer = finish.clone();
            trailer.extend_from_slice(&crc.sum().to_le_bytes());
            trailer.extend_from_slice(&0u32.to_le_bytes());
            let _ = s.write_all(&trailer).await;
        }
    })
    .await;
    let obs = observe(
        lab_config(&["bomb.test"]),
        &format!("http://bomb.test:{}/", site.port()),
    )
    .await;
    let home = &obs.homepage[0];
    assert_eq!(home.error, None, "{home:#?}");
    assert_eq!(home.status, Some(200));
    assert_eq!(home.bytes, 2 * MIB as u64);
    assert!(home.truncated);
    assert_eq!(obs.homepage_used, Some(0));
}

#[tokio::test]
async fn a_hundred_megabyte_body_is_capped() {
    let written = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (w, d) = (written.clone(), done.clone());
    let site = serve(LAB_IP, move |req, mut s| {
        let (w, d) = (w.clone(), d.clone());
        async move {
            if req.path != "/" {
                return respond(&mut s, 404, &[], b"").await;
            }
            let total: u64 = 100_000_000;
            let head =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n");
            let chunk = vec![b'a'; 64 * 1024];
            if s.write_all(head.as_bytes()).await.is_ok() {
                while w.load(Ordering::SeqCst) < total {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                    w.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
            }
            d.store(true, Ordering::SeqCst);
        }
    })
    .await;
    let obs = observe(
        lab_config(&["big.test"]),
        &format!("http://big.test:{}/", site.port()),
    )
    .await;
    let home = &obs.homepage[0];
    assert_eq!(home.error, None);
    assert_eq!(home.bytes, 2 * MIB as u64);
    assert!(home.truncated);
    for _ in 0..600 {
        if done.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        done.load(Ordering::SeqCst),
        "the server saw the client go away"
    );
    assert!(
        written.load(Ordering::SeqCst) < 100_000_000,
        "the client stopped reading early"
    );
}

#[tokio::test]
async fn an_oversized_certificate_is_an_error_and_a_small_one_is_kept() {
    let site = serve(LAB_IP, |req, mut s| async move {
        match req.path.as_str() {
            "/" => respond(&mut s, 200, &[], b"home").await,
            "/cert/bazs.cert" => respond(&mut s, 200, &[], &vec![b'c'; 100 * 1024]).await,
            _ => respond(&mut s, 404, &[], b"").await,
        }
    })
    .await;
    let obs = observe(
        lab_config(&["bigcert.test"]),
        &format!("http://bigcert.test:{}/", site.port()),
    )
    .await;
    let cert = obs.cert.as_ref().unwrap();
    assert_eq!(kind(&cert.fetch), Some(FetchErrorKind::BodyTooLarge));
    assert_eq!(cert.body, None);
    assert_eq!(cert.fetch.status, Some(200));
    assert!(
        obs.cert_misplaced.is_none(),
        "an oversized cert is not a missing one"
    );
    assert!(!site.paths().contains(&"/cert/bazx.cert".to_string()));
}

#[tokio::test]
async fn the_misspelt_path_is_probed_only_when_the_certificate_is_missing() {
    let site = serve(LAB_IP, |req, mut s| async move {
        let host = req.headers.get("host").cloned().unwrap_or_default();
        let has_cert = host.starts_with("good.test");
        match req.path.as_str() {
            "/" => respond(&mut s, 200, &[], b"home").await,
            "/cert/bazs.cert" if has_cert => respond(&mut s, 200, &[], b"GOOD").await,
            "/cert/bazx.cert" => respond(&mut s, 200, &[], b"TYPO").await,
            _ => respond(&mut s, 404, &[], b"").await,
        }
    })
    .await;
    let scanner = Scanner::new(lab_config(&["good.test", "typo.test"])).unwrap();

    let typo = scanner
        .observe(&format!("http://typo.test:{}/", site.port()))
        .await;
    let cert = typo.cert.as_ref().unwrap();
    assert_eq!(cert.fetch.status, Some(404));
    assert_eq!(cert.body, None);
    let misplaced = typo.cert_misplaced.as_ref().expect("bazx probed");
    assert_eq!(misplaced.path, "/cert/bazx.cert");
    assert_eq!(misplaced.body.as_deref(), Some(&b"TYPO"[..]));

    let before = site.paths().len();
    let good = scanner
        .observe(&format!("http://good.test:{}/", site.port()))
        .await;
    assert_eq!(
        good.cert.as_ref().unwrap().body.as_deref(),
        Some(&b"GOOD"[..])
    );
    assert!(good.cert_misplaced.is_none());
    let later: Vec<String> = site.paths()[before..].to_vec();
    assert_eq!(later, vec!["/".to_string(), "/cert/bazs.cert".to_string()]);
    // The certificate is a site's last request: it asks for its connection to be closed, so
    // no idle connection is pooled per scanned host; the homepage leaves that to the server.
    let requests = site.requests.lock().unwrap().clone();
    let connection = |path: &str| {
        requests
            .iter()
            .rfind(|r| r.path == path)
            .and_then(|r| r.headers.get("connection").cloned())
    };
    assert_eq!(connection("/cert/bazs.cert").as_deref(), Some("close"));
    assert_eq!(connection("/cert/bazx.cert").as_deref(), Some("close"));
    assert_eq!(connection("/"), None);
}

#[tokio::test]
async fn a_forbidden_page_is_recorded_with_its_status() {
    let site = serve(LAB_IP, |req, mut s| async move {
        match req.path.as_str() {
            "/" => respond(&mut s, 403, &[], b"waf says no").await,
            _ => respond(&mut s, 403, &[], b"").await,
        }
    })
    .await;
    let obs = observe(
        lab_config(&["waf.test"]),
        &format!("http://waf.test:{}/", site.port()),
    )
    .await;
    assert_eq!(obs.homepage.len(), 1);
    assert_eq!(obs.homepage[0].status, Some(403));
    assert_eq!(obs.homepage[0].error, None);
    assert_eq!(obs.homepage_used, None, "no 2xx body to use");
    assert_eq!(obs.cert.as_ref().unwrap().fetch.status, Some(403));
}

#[tokio::test]
async fn too_many_requests_with_retry_after_is_retried() {
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let site = serve(LAB_IP, move |req, mut s| {
        let h = h.clone();
        async move {
            match req.path.as_str() {
                "/" if h.fetch_add(1, Ordering::SeqCst) == 0 => {
                    respond(&mut s, 429, &[("Retry-After", "1")], b"slow down").await
                }
                "/" => respond(&mut s, 200, &[], b"home").await,
                "/always" => respond(&mut s, 503, &[("Retry-After", "1")], b"").await,
                _ => respond(&mut s, 404, &[], b"").await,
            }
        }
    })
    .await;
    let scanner = Scanner::new(lab_config(&["busy.test"])).unwrap();
    let obs = scanner
        .observe(&format!("http://busy.test:{}/", site.port()))
        .await;
    let home = &obs.homepage[0];
    let statuses: Vec<_> = home.hops.iter().map(|h| h.status).collect();
    assert_eq!(statuses, vec![Some(429), Some(200)]);
    assert_eq!(home.status, Some(200));
    assert_eq!(home.retry_after, None);
    assert_eq!(obs.homepage_used, Some(0));

    let obs = scanner
        .observe(&format!("http://busy.test:{}/always", site.port()))
        .await;
    let home = &obs.homepage[0];
    assert_eq!(home.hops.len(), 3, "two retries, then give up: {home:#?}");
    assert_eq!(home.status, Some(503));
    assert_eq!(home.retry_after, Some(1));
}

#[tokio::test]
async fn an_unanswering_dns_server_is_a_dns_failure() {
    let silent = tokio::net::UdpSocket::bind((LAB_IP, 0)).await.unwrap();
    let mut config = lab_config(&[]);
    config.dns = Some(silent.local_addr().unwrap());
    config.dns_timeout_ms = 300;
    let obs = observe(config, "nowhere.test").await;
    assert!(obs.dns.error.is_some(), "{obs:#?}");
    assert!(obs.dns.answers.is_empty());
    assert!(obs.homepage.is_empty());
    assert!(obs.cert.is_none());
}

#[tokio::test]
async fn unusable_targets_are_observations_not_errors() {
    let scanner = Scanner::new(lab_config(&[])).unwrap();
    for target in ["", "ftp://example.com/", "not a host", "http://"] {
        let obs = scanner.observe(target).await;
        assert!(
            obs.dns
                .error
                .as_deref()
                .is_some_and(|e| e.contains("invalid target")),
            "{target:?}: {obs:#?}"
        );
        assert!(obs.homepage.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scan_stream_visits_each_of_2000_targets_once_with_bounded_memory() {
    let site = plain_site().await;
    let mut config = lab_config(&[]);
    config.http_port = site.port();
    config.https_port = closed_port().await;
    let n = 2_000;
    let targets: Vec<String> = (0..n).map(|i| format!("t{i}.test")).collect();
    for t in &targets {
        config
            .overrides
            .insert(t.clone(), vec![LAB_IP.parse().unwrap()]);
    }
    let scanner = Arc::new(Scanner::new(config).unwrap());
    let concurrency = 50;
    let pulled = Arc::new(AtomicUsize::new(0));
    let p = pulled.clone();
    let source = futures::stream::iter(targets.clone()).inspect(move |_| {
        p.fetch_add(1, Ordering::SeqCst);
    });
    let mut stream = Box::pin(scan_stream(scanner, source, concurrency));
    let mut seen = HashSet::new();
    let mut done = 0usize;
    let mut max_ahead = 0usize;
    let all = async {
        while let Some(obs) = stream.next().await {
            done += 1;
            max_ahead = max_ahead.max(pulled.load(Ordering::SeqCst) - done);
            assert_eq!(obs.homepage_used, Some(1), "{obs:#?}");
            assert!(seen.insert(obs.target.clone()), "{} twice", obs.target);
        }
    };
    tokio::time::timeout(Duration::from_secs(600), all)
        .await
        .expect("the scan finishes");
    assert_eq!(seen.len(), n);
    assert_eq!(seen, targets.into_iter().collect::<HashSet<_>>());
    assert!(
        max_ahead <= concurrency,
        "targets are pulled lazily ({max_ahead} ahead)"
    );
}

#[tokio::test]
async fn waiting_for_the_host_rate_limit_does_not_use_up_the_deadline() {
    let site = serve(LAB_IP, |req, mut s| async move {
        match req.path.as_str() {
            "/" => respond(&mut s, 200, &[], b"home").await,
            _ => respond(&mut s, 404, &[], b"").await,
        }
    })
    .await;
    let mut config = lab_config(&["polite.test"]);
    config.host_rate = std::num::NonZeroU32::new(1);
    config.deadline_ms = 1_500;
    let obs = observe(config, &format!("http://polite.test:{}/", site.port())).await;
    // Three requests at one a second take about two seconds, more than the deadline.
    assert_eq!(obs.homepage[0].status, Some(200));
    assert_eq!(
        obs.cert.as_ref().unwrap().fetch.status,
        Some(404),
        "{obs:#?}"
    );
    let misplaced = obs.cert_misplaced.as_ref().unwrap();
    assert_eq!(misplaced.fetch.status, Some(404), "{obs:#?}");
    assert_eq!(site.paths().len(), 3);
}

#[tokio::test]
async fn a_redirect_back_to_a_visited_url_is_a_loop() {
    let site = serve(LAB_IP, |req, mut s| async move {
        let next = if req.path == "/a" { "/b" } else { "/a" };
        respond(&mut s, 302, &[("Location", next)], b"").await
    })
    .await;
    let obs = observe(
        lab_config(&["circle.test"]),
        &format!("http://circle.test:{}/a", site.port()),
    )
    .await;
    let home = &obs.homepage[0];
    assert_eq!(kind(home), Some(FetchErrorKind::RedirectLoop), "{home:#?}");
    assert_eq!(home.hops.len(), 2, "/a, /b, then back to /a is refused");
}

/// A keep-alive HTTP/1.1 server: every request gets a `Content-Length` response on the same
/// connection until the client closes it or asks to. Records (connection number, path,
/// whether the request said `Connection: close`).
async fn keep_alive_site() -> (SocketAddr, Arc<Mutex<Vec<(usize, String, bool)>>>) {
    let listener = TcpListener::bind((LAB_IP, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    // A homepage of the size of a real one (about 20 KB), whose extraction takes time.
    let mut page = String::from("<html><body><main>");
    for i in 0..300 {
        page.push_str(&format!("<p>段落 {i}：这是一个测试页面的内容。</p>"));
    }
    page.push_str("<footer>京ICP备12345678号</footer></main></body></html>");
    let page: Arc<[u8]> = page.into_bytes().into();
    tokio::spawn(async move {
        for conn in 0usize.. {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let (log, page) = (log.clone(), page.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    buf.drain(..end + 4);
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    let close = head.contains("\r\nconnection: close");
                    log.lock().unwrap().push((conn, path.clone(), close));
                    let body: &[u8] = if path == "/" { &page } else { b"CERT" };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n",
                        body.len(),
                        if close { "Connection: close\r\n" } else { "" }
                    );
                    if stream.write_all(head.as_bytes()).await.is_err()
                        || stream.write_all(body).await.is_err()
                        || close
                    {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

/// A site's certificate is asked for on the connection that brought its homepage, and that
/// connection is then closed: one connection per site, none left idle, with many sites in
/// flight (where the connection's return to the pool races the next request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_comes_over_the_homepage_connection() {
    const SITES: usize = 2000;
    let (addr, seen) = keep_alive_site().await;
    let hosts: Vec<String> = (0..SITES).map(|i| format!("site{i}.test")).collect();
    let names: Vec<&str> = hosts.iter().map(String::as_str).collect();
    let config = ScanConfig {
        extract: true,
        ..lab_config(&names)
    };
    let scanner = Arc::new(Scanner::new(config).unwrap());
    let targets: Vec<String> = hosts
        .iter()
        .map(|h| format!("http://{h}:{}/", addr.port()))
        .collect();
    let observations: Vec<Observation> = tokio::time::timeout(
        Duration::from_secs(120),
        scan_stream(scanner, futures::stream::iter(targets), 1000).collect(),
    )
    .await
    .expect("the scan must finish");
    assert_eq!(observations.len(), SITES);
    assert!(observations
        .iter()
        .all(|o| o.cert.as_ref().and_then(|c| c.body.as_deref()) == Some(&b"CERT"[..])));

    let seen = seen.lock().unwrap().clone();
    let homepage_conn: HashMap<usize, usize> = seen
        .iter()
        .enumerate()
        .filter(|(_, (_, path, _))| path == "/")
        .map(|(i, (conn, _, _))| (*conn, i))
        .collect();
    let certs: Vec<&(usize, String, bool)> = seen.iter().filter(|(_, p, _)| p != "/").collect();
    assert_eq!(certs.len(), SITES);
    assert!(
        certs.iter().all(|(_, _, close)| *close),
        "the last request closes"
    );
    let reused = certs
        .iter()
        .filter(|(conn, _, _)| homepage_conn.contains_key(conn))
        .count();
    let connections = seen
        .iter()
        .map(|(c, _, _)| *c)
        .collect::<HashSet<_>>()
        .len();
    eprintln!("certificates on their homepage's connection: {reused} of {SITES}; connections: {connections}");
    assert!(
        reused * 10 >= SITES * 9 && connections * 10 <= SITES * 11,
        "certificates on their homepage's connection: {reused} of {SITES}; connections: {connections}"
    );
}
