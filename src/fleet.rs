//! A loopback fleet of lab web sites: one HTTP listener that serves many virtual hosts,
//! dispatching on the `Host` header. `beian demo`, the integration tests and the benchmarks
//! scan it. Each site is a table of paths to canned responses; unknown paths are 404.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One canned response.
#[derive(Debug, Clone)]
pub struct LabResponse {
    pub status: u16,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl LabResponse {
    /// `200 OK` with an HTML body (UTF-8 unless `content_type` says otherwise).
    pub fn html(body: impl Into<Vec<u8>>) -> Self {
        LabResponse {
            status: 200,
            content_type: "text/html; charset=utf-8".into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// `200 OK` with a plain-text body (how a certificate is served).
    pub fn text(body: impl Into<Vec<u8>>) -> Self {
        LabResponse {
            status: 200,
            content_type: "text/plain; charset=utf-8".into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// Any status with a short HTML body.
    pub fn status(status: u16, body: impl Into<Vec<u8>>) -> Self {
        LabResponse {
            status,
            content_type: "text/html; charset=utf-8".into(),
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A redirect to `location`.
    pub fn redirect(status: u16, location: &str) -> Self {
        LabResponse {
            status,
            content_type: "text/html".into(),
            headers: vec![("location".into(), location.into())],
            body: Vec::new(),
        }
    }
}

/// A virtual host and its pages.
#[derive(Debug, Clone, Default)]
pub struct LabSite {
    pub host: String,
    pub routes: HashMap<String, LabResponse>,
}

impl LabSite {
    pub fn new(host: &str) -> Self {
        LabSite {
            host: host.to_ascii_lowercase(),
            routes: HashMap::new(),
        }
    }

    pub fn route(mut self, path: &str, response: LabResponse) -> Self {
        self.routes.insert(path.to_string(), response);
        self
    }
}

/// A running fleet. Dropping it stops the server.
pub struct Fleet {
    pub addr: SocketAddr,
    pub hosts: Vec<String>,
    stop: Option<oneshot::Sender<()>>,
}

impl Fleet {
    /// Serve `sites` on `bind` (use port 0 for any free port). Must be called inside a tokio
    /// runtime.
    pub async fn start(bind: SocketAddr, sites: Vec<LabSite>) -> std::io::Result<Fleet> {
        let hosts = sites.iter().map(|s| s.host.clone()).collect();
        let table: Arc<HashMap<String, LabSite>> =
            Arc::new(sites.into_iter().map(|s| (s.host.clone(), s)).collect());
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new().fallback(serve).with_state(table);
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Fleet {
            addr,
            hosts,
            stop: Some(tx),
        })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

fn host_of(headers: &HeaderMap) -> String {
    let raw = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let host = match raw.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => raw,
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

async fn serve(
    State(table): State<Arc<HashMap<String, LabSite>>>,
    req: Request<Body>,
) -> Response<Body> {
    let host = host_of(req.headers());
    let path = req.uri().path().to_string();
    let found = table.get(&host).and_then(|s| s.routes.get(&path));
    let r = match found {
        Some(r) => r.clone(),
        None => LabResponse::status(404, "<html><body><h1>404 Not Found</h1></body></html>"),
    };
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() =
        StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(&r.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    for (k, v) in r.headers {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}
