//! The API listener under abuse: thousands of idle and slow-header connections do not keep a
//! normal client waiting, connections that send nothing are closed after the header timeout
//! (also between keep-alive requests), and beyond the connection cap a client gets a short
//! 503 instead of the process running out of file handles.

use std::sync::Arc;
use std::time::{Duration, Instant};

use beian::api::AppState;
use beian::config::Config;
use beian::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Running {
    addr: std::net::SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(edit: impl FnOnce(&mut Config)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = Registry::init(dir.path(), chrono::Utc::now().timestamp()).unwrap();
    let mut config = Config::default();
    edit(&mut config);
    let state = AppState::new(Arc::new(reg), config).unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let met = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = api.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(beian::api::serve(state, api, met, async move {
        let _ = rx.await;
    }));
    Running {
        addr,
        stop,
        task,
        _dir: dir,
    }
}

/// A request on a fresh connection, timed.
async fn normal_request(addr: std::net::SocketAddr) -> (u16, Duration) {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let r = client
        .get(format!("http://{addr}/api/filed?domain=example.com"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), started.elapsed())
}

/// Whether the server closed the connection within `wait`.
async fn closed_by_server(s: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A response (e.g. 408) before the close: keep reading.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn open_many(addr: std::net::SocketAddr, n: usize, partial: &'static [u8]) -> Vec<TcpStream> {
    let mut out = Vec::with_capacity(n);
    for chunk in 0..n.div_ceil(200) {
        let tasks: Vec<_> = (0..200.min(n - chunk * 200))
            .map(|_| {
                tokio::spawn(async move {
                    let mut s = TcpStream::connect(addr).await.unwrap();
                    if !partial.is_empty() {
                        s.write_all(partial).await.unwrap();
                    }
                    s
                })
            })
            .collect();
        for t in tasks {
            out.push(t.await.unwrap());
        }
    }
    out
}

#[test]
fn idle_and_slow_connections_do_not_starve_a_normal_client() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = start(|c| c.serve.header_timeout_ms = 3_000).await;
        let addr = server.addr;
        let idle = open_many(addr, 2_000, b"").await;
        let mut slow = open_many(
            addr,
            2_000,
            b"GET /api/filed?domain=a.com HTTP/1.1\r\nHost: x\r\n",
        )
        .await;
        // One more header byte now and then, never the blank line.
        for s in slow.iter_mut().take(50) {
            let _ = s.write_all(b"X").await;
        }
        let (status, took) = normal_request(addr).await;
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_secs(1),
            "a normal request took {took:?}"
        );
        // After the header timeout the server has closed them.
        let mut idle = idle;
        for s in idle.iter_mut().take(20).chain(slow.iter_mut().take(20)) {
            assert!(
                closed_by_server(s, Duration::from_secs(8)).await,
                "a connection that sent no complete request head stays open"
            );
        }
        // A keep-alive connection that goes idle after one request is closed too.
        let mut ka = TcpStream::connect(addr).await.unwrap();
        ka.write_all(b"GET /api/filed?domain=example.com HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = vec![0u8; 1024];
        let n = ka.read(&mut first).await.unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).starts_with("HTTP/1.1 200"));
        let started = Instant::now();
        assert!(closed_by_server(&mut ka, Duration::from_secs(8)).await);
        assert!(
            started.elapsed() >= Duration::from_secs(2),
            "closed too early"
        );
        drop(idle);
        drop(slow);
        let _ = server.stop.send(());
        server.task.await.unwrap().unwrap();
    });
}

#[test]
fn beyond_the_connection_cap_a_client_gets_a_short_503() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let server = start(|c| {
            c.serve.max_connections = Some(100);
            c.serve.header_timeout_ms = 2_000;
        })
        .await;
        let addr = server.addr;
        let held = open_many(addr, 100, b"").await;
        // Give the server a moment to accept them all.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut extra = TcpStream::connect(addr).await.unwrap();
        extra
            .write_all(b"GET /api/filed?domain=example.com HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut text = String::new();
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(3), extra.read_to_string(&mut text))
            .await
            .expect("the refusal is prompt")
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(text.contains("Retry-After: 1"), "{text}");
        assert!(text.contains("\"code\":\"busy\""), "{text}");
        // Once the idle ones time out, normal service resumes.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (status, _) = normal_request(addr).await;
        assert_eq!(status, 200);
        drop(held);
        let _ = server.stop.send(());
        server.task.await.unwrap().unwrap();
    });
}
