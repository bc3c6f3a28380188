//! Hostile certificate paths on loopback: a site that refuses, resets, stalls, dribbles,
//! garbles or floods `/cert/bazs.cert` must never pass as `compliant`, and a host whose truth
//! could not be checked is never `unfiled`. One raw-TCP server per behaviour; the homepage
//! itself is a clean, linked footer so that the certificate is the only thing in question.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use beian::cert::{FilingState, Keyring};
use beian::crawl::ScanConfig;
use beian::number::FilingNumber;
use beian::registry::snapshot::{Snapshot, SnapshotFiling};
use beian::scan::ScanContext;
use beian::verdict::PolicySet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LAB: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
const NUMBER: &str = "京ICP备12345678号-1";

const HOMEPAGE: &str = "<!doctype html><html><head><meta charset=utf-8><title>示例</title></head>\
<body><main><h1>示例公司</h1><p>产品与服务介绍。</p></main><footer>© 示例公司 \
<a href=\"https://beian.miit.gov.cn/\">京ICP备12345678号-1</a></footer></body></html>";

/// How the server answers `/cert/bazs.cert`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CertBehaviour {
    Forbidden,
    Unavailable,
    Reset,
    Silence,
    SlowBytes,
    Garbage,
    Oversize,
    HugeHeaders,
}

const ALL: [CertBehaviour; 8] = [
    CertBehaviour::Forbidden,
    CertBehaviour::Unavailable,
    CertBehaviour::Reset,
    CertBehaviour::Silence,
    CertBehaviour::SlowBytes,
    CertBehaviour::Garbage,
    CertBehaviour::Oversize,
    CertBehaviour::HugeHeaders,
];

async fn read_head(s: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 2048];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
        if buf.len() > 65536 {
            return None;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    head.split(' ').nth(1).map(str::to_string)
}

async fn respond(s: &mut TcpStream, status: u16, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.write_all(head.as_bytes()).await;
    let _ = s.write_all(body).await;
    let _ = s.shutdown().await;
}

async fn hostile_cert(mut s: TcpStream, how: CertBehaviour) {
    match how {
        CertBehaviour::Forbidden => respond(&mut s, 403, b"<h1>Forbidden</h1>").await,
        CertBehaviour::Unavailable => respond(&mut s, 503, b"busy").await,
        CertBehaviour::Reset => {
            // SO_LINGER 0: closing sends RST instead of FIN (a zero linger never blocks,
            // which is what the deprecation warns about).
            #[allow(deprecated)]
            let _ = s.set_linger(Some(Duration::ZERO));
            drop(s);
        }
        CertBehaviour::Silence => {
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        CertBehaviour::SlowBytes => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\nConnection: close\r\n\r\n")
                .await;
            for _ in 0..2000 {
                if s.write_all(b"x").await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        CertBehaviour::Garbage => {
            let noise: Vec<u8> = (0..4096u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let _ = s.write_all(&noise).await;
            let _ = s.shutdown().await;
        }
        CertBehaviour::Oversize => {
            let _ = s
                .write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n",
                )
                .await;
            let block = vec![b'A'; 64 * 1024];
            for _ in 0..256 {
                if s.write_all(&block).await.is_err() {
                    return;
                }
            }
        }
        CertBehaviour::HugeHeaders => {
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n").await;
            let line = format!("X-Filler: {}\r\n", "y".repeat(8000));
            for _ in 0..200 {
                if s.write_all(line.as_bytes()).await.is_err() {
                    return;
                }
            }
            let _ = s.write_all(b"Content-Length: 0\r\n\r\n").await;
        }
    }
}

/// A server whose homepage is clean and whose certificate path misbehaves.
async fn serve(how: CertBehaviour) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(SocketAddr::new(LAB, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                match read_head(&mut s).await.as_deref() {
                    Some("/") => respond(&mut s, 200, HOMEPAGE.as_bytes()).await,
                    Some(p) if p.starts_with("/cert/") => hostile_cert(s, how).await,
                    _ => respond(&mut s, 404, b"no").await,
                }
            });
        }
    });
    (port, task)
}

fn snapshot() -> Snapshot {
    let n = FilingNumber::parse(NUMBER).unwrap();
    let now = chrono::Utc::now().timestamp();
    Snapshot::new(
        now,
        Keyring::default(),
        vec![SnapshotFiling {
            subject_number: n.subject_number(),
            service_number: n,
            subject_name: "示例公司".into(),
            province: '京',
            state: FilingState::Active,
            domains: vec!["filed.test".into()],
            ips: vec![],
            providers: vec![],
            cert_serial: Some(1),
            expires_at: Some(now + 86_400),
            operating: false,
            licence: None,
        }],
        vec![],
    )
}

#[test]
fn a_hostile_certificate_path_never_passes_and_never_reads_as_unfiled() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut servers = Vec::new();
        for how in ALL {
            servers.push((how, serve(how).await));
        }
        let closed = std::net::TcpListener::bind(SocketAddr::new(LAB, 0))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut checks = Vec::new();
        for (how, (port, _)) in &servers {
            for host in ["filed.test", "www.filed.test", "unfiled.test"] {
                let config = ScanConfig {
                    http_port: *port,
                    https_port: closed,
                    deadline_ms: 4_000,
                    request_timeout_ms: 3_000,
                    connect_timeout_ms: 2_000,
                    ..super::lab::lab_config(&LAB.to_string(), &[host])
                };
                let ctx = ScanContext::new(
                    config,
                    Arc::new(snapshot()),
                    Arc::new(PolicySet::embedded().unwrap()),
                )
                .unwrap();
                let how = *how;
                checks.push(tokio::spawn(
                    async move { (how, host, ctx.check(host).await) },
                ));
            }
        }
        for check in checks {
            let (how, host, r) = check.await.unwrap();
            let a = &r.assessment;
            let page = r.observation.page.as_ref();
            assert!(
                page.is_some_and(|p| p.icp.len() == 1),
                "{how:?} {host}: the homepage footer must be read: {:?}",
                r.observation.homepage
            );
            assert_ne!(
                a.verdict.as_str(),
                "compliant",
                "{how:?} {host}: {:?}",
                r.observation.cert
            );
            assert_ne!(a.verdict.as_str(), "unfiled", "{how:?} {host}");
            match how {
                // A body too large to be a certificate is a malformed certificate (on a filed
                // host; on an unfiled one it was not read and settles nothing).
                CertBehaviour::Oversize if host != "unfiled.test" => {
                    assert_eq!(a.verdict.as_str(), "noncompliant", "{host}");
                    assert_eq!(a.codes(), vec![beian::verdict::FindingCode::CertMalformed]);
                }
                _ => assert_eq!(
                    a.verdict,
                    beian::verdict::Verdict::Unknown(
                        beian::verdict::UnknownReason::CertUnreachable
                    ),
                    "{how:?} {host}: {:?}",
                    r.observation.cert
                ),
            }
            // The fetch error is named finely enough to act on.
            let cert = r.observation.cert.as_ref().expect("certificate probed");
            let kind = cert.fetch.error.as_ref().map(|e| e.kind.as_str());
            let want = match how {
                CertBehaviour::Forbidden | CertBehaviour::Unavailable => None,
                CertBehaviour::Reset => Some("reset"),
                CertBehaviour::Silence => Some("timeout"),
                CertBehaviour::SlowBytes => Some("deadline"),
                CertBehaviour::Garbage => Some("protocol"),
                CertBehaviour::Oversize => Some("body_too_large"),
                CertBehaviour::HugeHeaders => Some("header_too_large"),
            };
            if how == CertBehaviour::SlowBytes {
                assert!(
                    matches!(kind, Some("deadline") | Some("timeout")),
                    "{how:?}: {kind:?}"
                );
            } else {
                assert_eq!(kind, want, "{how:?} {host}: {:?}", cert.fetch.error);
            }
        }
    });
}
