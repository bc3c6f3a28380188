//! The hardened HTTP/1.1 listener the API and `/metrics` are served on. `axum::serve` has no
//! timeouts and no connection cap, so a client that opens connections and sends nothing (or
//! sends headers a byte at a time) could hold them forever and exhaust the process's file
//! handles. Here:
//!
//! - a connection must deliver a complete request head within [`Limits::header_timeout`],
//!   both for its first request and, idle between keep-alive requests, for every next one
//!   (hyper's header-read timer, started again after each response);
//! - a request (its body read and its handler) must finish within [`Limits::request_timeout`];
//! - at most [`Limits::max_connections`] connections are open at once, a bound kept below the
//!   process's open-files limit: beyond it a connection gets a short `503` with
//!   `Retry-After` and is closed at once, so the process never runs out of handles;
//! - accept errors (e.g. `EMFILE`) back off briefly instead of spinning.
//!
//! Shutdown: when the watch channel turns `true`, the listener stops accepting and every open
//! connection finishes its in-flight request and closes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// Time for a connection to send a complete request head (also the keep-alive idle limit).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for one request: reading its body and running its handler.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// Open-file handles kept free for everything that is not a client connection (the store,
/// logs, outgoing scans, refused connections in flight).
pub const RESERVED_FILES: u64 = 1_024;
/// Connections allowed when the open-files limit cannot be read.
pub const FALLBACK_MAX_CONNECTIONS: usize = 4_096;
/// Longest request head accepted (bytes).
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The listener's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub request_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: default_max_connections(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }
}

/// The open-files limit of this process, if it can be read.
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
        if rc == 0 && lim.rlim_cur != libc::RLIM_INFINITY {
            return Some(lim.rlim_cur);
        }
        None
    }
    #[cfg(not(unix))]
    None
}

/// Connections allowed at once: the open-files limit, less [`RESERVED_FILES`] and less one
/// quarter for the two listeners' refusals and everything else (at least 64).
pub fn default_max_connections() -> usize {
    match open_files_limit() {
        Some(n) => {
            let usable = n.saturating_sub(RESERVED_FILES) * 3 / 4;
            usize::try_from(usable.max(64)).unwrap_or(FALLBACK_MAX_CONNECTIONS)
        }
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// Serve `router` on `listener` with `limits` until `shutdown` turns `true`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stopping = async {
            let _ = shutdown.wait_for(|v| *v).await;
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stopping => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE/ENFILE and friends: back off, do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            connections.spawn(refuse(stream));
            continue;
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stop = shutdown.clone();
        let header_timeout = limits.header_timeout;
        connections.spawn(async move {
            let _permit = permit;
            let service = router.map_request(move |mut req: axum::extract::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
            let service = TowerToHyperService::new(service);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEADER_BYTES.max(8192))
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|v| *v).await;
            };
            tokio::select! {
                r = conn.as_mut() => log_conn(r, peer),
                _ = stopping => {
                    conn.as_mut().graceful_shutdown();
                    log_conn(conn.await, peer);
                }
            }
        });
    }
    // Stop accepting; let open connections finish their requests.
    drop(listener);
    while connections.join_next().await.is_some() {}
    Ok(())
}

fn log_conn(r: Result<(), hyper::Error>, peer: SocketAddr) {
    if let Err(e) = r {
        // Timeouts and clients going away are routine; anything else is worth a line.
        if !(e.is_timeout() || e.is_incomplete_message() || e.is_closed() || e.is_canceled()) {
            tracing::debug!(%peer, error = %e, "connection ended with an error");
        }
    }
}

/// The body of the refusal beyond the cap, in the API's error shape.
pub const BUSY_BODY: &str =
    "{\"error\":{\"code\":\"busy\",\"message\":\"too many connections; retry in a second\"}}";

/// Refuse a connection beyond the cap: a short 503 (at most one second spent on it), then
/// close.
async fn refuse(mut stream: tokio::net::TcpStream) {
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BUSY_BODY}",
        BUSY_BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_files_limit() {
        let max = default_max_connections() as u64;
        if let Some(n) = open_files_limit() {
            assert!(max < n, "{max} < {n}");
        }
        assert!(max >= 64);
    }

    #[test]
    fn the_refusal_body_is_the_api_error_shape() {
        let v: serde_json::Value = serde_json::from_str(BUSY_BODY).unwrap();
        assert_eq!(v["error"]["code"], "busy");
        assert!(v["error"]["message"].is_string());
    }
}
