//! The HTTP API end to end: the real server on loopback ports, driven with reqwest.
//! Registration → activation → login with outbox codes; a filing's life by the right roles;
//! the role × endpoint matrix; malformed input; probe and /metrics output as Prometheus text;
//! the OpenAPI document covering every route.

use std::collections::HashMap;
use std::sync::Arc;

use beian::accounts::service::Accounts;
use beian::accounts::Actor;
use beian::api::{AppState, PROBE_METRIC_NAMES};
use beian::config::Config;
use beian::registry::{Registry, Submitter};
use serde_json::{json, Value};

struct Server {
    state: beian::api::Shared,
    base: String,
    metrics: String,
    registry: Arc<Registry>,
    client: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    miit_password: String,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    /// Assert our error shape and return the code.
    fn error_code(&self) -> String {
        let v = self.json();
        let code = v["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not our error shape: {}", self.text));
        assert!(v["error"]["message"].is_string(), "{}", self.text);
        code.to_string()
    }
}

impl Server {
    async fn start(body_limit: usize) -> Server {
        let mut config = Config::default();
        config.serve.body_limit = body_limit;
        Self::start_config(config).await
    }

    /// A server with this configuration (and generous per-client quotas: these tests make
    /// many requests from one address; the quotas have their own test).
    async fn start_config(mut config: Config) -> Server {
        config.serve.account_per_minute = 10_000;
        config.serve.public_per_minute = 10_000;
        let dir = tempfile::tempdir().unwrap();
        let (reg, init) = Registry::init(dir.path(), chrono::Utc::now().timestamp()).unwrap();
        Self::start_with(config, dir, reg, init.miit_password).await
    }

    async fn start_with(
        config: Config,
        dir: tempfile::TempDir,
        reg: Registry,
        miit_password: String,
    ) -> Server {
        let registry = Arc::new(reg);
        let state = AppState::new(registry.clone(), config).unwrap();
        let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let met = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", api.local_addr().unwrap());
        let metrics = format!("http://{}", met.local_addr().unwrap());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(beian::api::serve(state.clone(), api, met, async move {
            let _ = rx.await;
        }));
        Server {
            state,
            base,
            metrics,
            registry,
            client: reqwest::Client::new(),
            stop: Some(tx),
            task: Some(task),
            miit_password,
            _dir: dir,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            tokio::time::timeout(std::time::Duration::from_secs(10), t)
                .await
                .expect("graceful shutdown finishes")
                .unwrap()
                .unwrap();
        }
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<(Vec<u8>, &str)>,
    ) -> Resp {
        let url = format!("{}{}", self.base, path);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut rb = self.client.request(m, url);
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some((b, ct)) = body {
            if !ct.is_empty() {
                rb = rb.header("content-type", ct);
            }
            rb = rb.body(b);
        }
        let r = rb.send().await.unwrap();
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Resp {
            status,
            headers,
            text,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let b = body.map(|v| (serde_json::to_vec(&v).unwrap(), "application/json"));
        self.raw(method, path, token, b).await
    }

    /// The latest outbox message to `to`.
    fn outbox_body(&self, to: &str) -> String {
        Accounts::outbox(self.registry.store())
            .unwrap()
            .into_iter()
            .rev()
            .find(|m| m.to == to)
            .unwrap_or_else(|| panic!("no message to {to}"))
            .body
    }

    async fn login(&self, username: &str, password: &str, to: &str) -> String {
        let r = self
            .call(
                "POST",
                "/api/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let challenge = r.json()["challenge_id"].as_str().unwrap().to_string();
        let code = six_digits(&self.outbox_body(to));
        let r = self
            .call(
                "POST",
                "/api/login/verify",
                None,
                Some(json!({"challenge_id": challenge, "code": code})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["token"].as_str().unwrap().to_string()
    }

    async fn miit(&self) -> String {
        let p = self.miit_password.clone();
        self.login("miit", &p, "user:miit").await
    }

    async fn create_user(&self, token: &str, body: Value) -> Resp {
        self.call("POST", "/api/users", Some(token), Some(body))
            .await
    }
}

/// The first run of exactly six ASCII digits.
fn six_digits(text: &str) -> String {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let j = (i..b.len())
                .find(|&j| !b[j].is_ascii_digit())
                .unwrap_or(b.len());
            if j - i == 6 {
                return text[i..j].to_string();
            }
            i = j;
        } else {
            i += 1;
        }
    }
    panic!("no code in {text:?}")
}

const FILING: &str = r#"{"subject": {"name": "北京示例科技有限公司", "nature": "企业", "id_type": "统一社会信用代码", "id_number": "91110108MA01ABCD2H", "province": "京", "address": "北京市海淀区中关村大街1号", "contact": {"name": "张三", "mobile": "13800000000", "email": "zhangsan@example.com"}}, "website": {"name": "示例网", "homepage": "https://example-bj.com/", "domains": ["example-bj.com", "example-bj.net"], "ips": ["203.0.113.7"], "providers": ["示例接入商"], "access_method": "虚拟主机", "categories": [], "operating_licence": null}}"#;

/// Register and activate an ICP user through the API and the outbox; returns a session.
async fn register_icp(s: &Server, username: &str, mobile: &str, email: &str) -> String {
    let r = s
        .call(
            "POST",
            "/api/register",
            None,
            Some(json!({"username": username, "password": "secret-pw1", "mobile": mobile, "email": email})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let sms = six_digits(&s.outbox_body(mobile));
    let mail = six_digits(&s.outbox_body(email));
    // One code is not enough.
    let r = s
        .call(
            "POST",
            "/api/register/activate",
            None,
            Some(json!({"username": username, "sms_code": sms, "email_code": "000000"})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "invalid_code");
    let r = s
        .call(
            "POST",
            "/api/register/activate",
            None,
            Some(json!({"username": username, "sms_code": sms, "email_code": mail})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["actor"], format!("icp:{username}"));
    s.login(username, "secret-pw1", email).await
}

struct Cast {
    miit: String,
    bureau_jing: String,
    bureau_hu: String,
    isp: String,
    isp_other: String,
    icp: String,
    icp_other: String,
    special_query: String,
}

async fn cast(s: &Server) -> Cast {
    let miit = s.miit().await;
    for (u, p) in [("bureau_jing", "京"), ("bureau_hu", "沪")] {
        let r = s
            .create_user(
                &miit,
                json!({"username": u, "password": "bureau-pw1", "role": "bureau", "province": p}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let bureau_jing = s
        .login("bureau_jing", "bureau-pw1", "user:bureau_jing")
        .await;
    let bureau_hu = s.login("bureau_hu", "bureau-pw1", "user:bureau_hu").await;
    for (u, n) in [("isp_a", "示例接入商"), ("isp_b", "华北云")] {
        let r = s
            .create_user(
                &bureau_jing,
                json!({"username": u, "password": "isp-pw12", "role": "isp", "name": n}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let r = s
        .call(
            "POST",
            "/api/users/isp_a/import-authorisation",
            Some(&bureau_jing),
            Some(json!({"authorised": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["actor"], "isp:示例接入商");
    let r = s
        .create_user(&miit, json!({"username": "sq", "role": "special_query"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let sq_pw = r.json()["password"].as_str().unwrap().to_string();
    Cast {
        isp: s.login("isp_a", "isp-pw12", "user:isp_a").await,
        isp_other: s.login("isp_b", "isp-pw12", "user:isp_b").await,
        special_query: s.login("sq", &sq_pw, "user:sq").await,
        icp: register_icp(s, "zhang_san", "13800000001", "zs@example.com").await,
        icp_other: register_icp(s, "li_si", "13800000002", "ls@example.com").await,
        miit,
        bureau_jing,
        bureau_hu,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filing_life_through_the_api() {
    let s = Server::start(1 << 20).await;
    let c = cast(&s).await;
    let filing: Value = serde_json::from_str(FILING).unwrap();

    // The ICP user submits; the bureau cannot see it yet.
    let r = s
        .call("POST", "/api/filings", Some(&c.icp), Some(filing.clone()))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_u64().unwrap();
    let path = |a: &str| format!("/api/filings/{id}{a}");
    let r = s
        .call("GET", "/api/review/queue", Some(&c.bureau_jing), None)
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 0, "{}", r.text);
    // The same domains cannot be filed again by another subject's user.
    let r = s
        .call(
            "POST",
            "/api/filings",
            Some(&c.icp_other),
            Some(filing.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "another user's subject: {}", r.text);

    // The access provider verifies; now it is in the 京 queue, not in the 沪 queue.
    let r = s
        .call("POST", &path("/verify-access"), Some(&c.isp), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "awaiting_review");
    let r = s
        .call("GET", "/api/review/queue", Some(&c.bureau_jing), None)
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text);
    let r = s
        .call("GET", "/api/review/queue", Some(&c.bureau_hu), None)
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 0, "{}", r.text);
    let r = s
        .call(
            "POST",
            &path("/approve"),
            Some(&c.bureau_hu),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.error_code(), "forbidden");
    // While under review the filer may view but not modify.
    let r = s
        .call(
            "POST",
            &path("/change"),
            Some(&c.icp),
            Some(json!({"add_domains": ["example-bj.org"]})),
        )
        .await;
    assert!(
        r.status == 409 || r.status == 403,
        "{} {}",
        r.status,
        r.text
    );
    let r = s
        .call(
            "POST",
            &path("/approve"),
            Some(&c.bureau_jing),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let number = r.json()["service_number"].as_str().unwrap().to_string();
    assert!(number.starts_with("京ICP备"), "{number}");

    // Public: filed, public fields only.
    let r = s
        .call("GET", "/api/filed?domain=www.example-bj.net", None, None)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["filed"], true);
    assert_eq!(r.json()["service_number"], number.as_str());
    for key in [number.clone(), "example-bj.com".to_string()] {
        let r = s
            .call(
                "GET",
                &format!("/api/public/filings/{}", urlencode(&key)),
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["service_number"], number.as_str());
        for secret in [
            "13800000000",
            "zhangsan@example.com",
            "91110108MA01ABCD2H",
            "zhang_san",
        ] {
            assert!(
                !r.text.contains(secret),
                "public view leaks {secret}: {}",
                r.text
            );
        }
    }
    // Certificate download by the owner.
    let r = s
        .call("GET", &path("/certificate"), Some(&c.icp), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(&number), "{}", r.text);
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("bazs.cert"));
    let r = s
        .call("GET", &path("/certificate"), Some(&c.bureau_hu), None)
        .await;
    assert_eq!(r.status, 403);

    // A change, approved by the bureau.
    let r = s
        .call(
            "POST",
            &path("/change"),
            Some(&c.icp),
            Some(json!({"add_domains": ["example-bj.org"]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "change_under_review");
    let r = s
        .call(
            "POST",
            &path("/approve"),
            Some(&c.bureau_jing),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["domains"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d == "example-bj.org"));

    // Cancellation requested by the ICP user; nobody withdraws their own; the bureau may.
    let r = s
        .call(
            "POST",
            &path("/cancel"),
            Some(&c.icp),
            Some(json!({"reason": "closing"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "cancellation_requested");
    // The requester changes and deletes its own request; nobody else may.
    let r = s
        .call(
            "PUT",
            &path("/cancel"),
            Some(&c.bureau_jing),
            Some(json!({"reason": "x"})),
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    let r = s
        .call(
            "PUT",
            &path("/cancel"),
            Some(&c.icp),
            Some(json!({"reason": "site closed"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.call("DELETE", &path("/cancel"), Some(&c.icp), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "active");
    let r = s
        .call(
            "POST",
            &path("/cancel"),
            Some(&c.icp),
            Some(json!({"reason": "closing"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s.call("POST", &path("/withdraw"), Some(&c.icp), None).await;
    assert!(
        r.status == 403 || r.status == 409,
        "{} {}",
        r.status,
        r.text
    );
    r.error_code();
    let r = s
        .call("POST", &path("/withdraw"), Some(&c.bureau_jing), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "active");

    // Revocation by MIIT; the domain is no longer filed.
    let r = s
        .call(
            "POST",
            &path("/revoke"),
            Some(&c.miit),
            Some(json!({"reason": "inaccurate data"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "revoked");
    let r = s
        .call("GET", "/api/filed?domain=example-bj.com", None, None)
        .await;
    assert_eq!(r.json()["filed"], false);

    // The registry gauges follow on refresh; /metrics is Prometheus text.
    let text = s
        .client
        .get(format!("{}/metrics", s.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let samples = parse_prometheus(&text);
    assert!(
        samples
            .keys()
            .any(|k| k.starts_with("beian_http_requests_total{")),
        "{text}"
    );
    assert!(samples.contains_key("beian_registry_audit_chain_length"));
    assert!(
        text.contains("route=\"/api/filings/:key/approve\""),
        "route templates, not ids"
    );
    assert!(
        !text.contains(&format!("/api/filings/{id}")),
        "no raw paths in labels"
    );
    s.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Parse Prometheus text exposition: `name{labels} value` → value. Panics on a bad line.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix('#') {
            let rest = rest.trim_start();
            assert!(
                rest.starts_with("HELP ") || rest.starts_with("TYPE "),
                "bad comment: {line}"
            );
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("bad line: {line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name in {line}"
        );
        if name_end < series.len() {
            assert!(series.ends_with('}'), "bad labels in {line}");
        }
        let v: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        out.insert(series.to_string(), v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_endpoint_matrix() {
    let s = Server::start(1 << 20).await;
    let c = cast(&s).await;
    // A filing in 京 owned by zhang_san, through access verification.
    let filing: Value = serde_json::from_str(FILING).unwrap();
    let r = s
        .call("POST", "/api/filings", Some(&c.icp), Some(filing))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_u64().unwrap();
    let line = FILING
        .replace("91110108MA01ABCD2H", "91110108MA01ABCD3F")
        .replace("example-bj", "other-bj");

    let roles: Vec<(&str, Option<&str>)> = vec![
        ("anon", None),
        ("miit", Some(&c.miit)),
        ("bureau京", Some(&c.bureau_jing)),
        ("bureau沪", Some(&c.bureau_hu)),
        ("isp", Some(&c.isp)),
        ("isp_other", Some(&c.isp_other)),
        ("icp", Some(&c.icp)),
        ("icp_other", Some(&c.icp_other)),
        ("special_query", Some(&c.special_query)),
    ];
    let show = format!("/api/filings/{id}");
    // (method, path, body, [allowed roles]); every other role must be refused (401 anon,
    // 403 otherwise). "Allowed" means a 2xx.
    let sq = |u: &str| json!({"username": u, "role": "special_query", "password": "x-pass-123"});
    type Cell<'a> = (&'a str, String, Option<Value>, Vec<&'a str>);
    let table: Vec<Cell> = vec![
        (
            "GET",
            "/api/me".into(),
            None,
            vec![
                "miit",
                "bureau京",
                "bureau沪",
                "isp",
                "isp_other",
                "icp",
                "icp_other",
                "special_query",
            ],
        ),
        (
            "GET",
            show.clone(),
            None,
            vec!["miit", "bureau京", "isp", "icp", "special_query"],
        ),
        (
            "GET",
            "/api/review/queue".into(),
            None,
            vec!["miit", "bureau京", "bureau沪"],
        ),
        (
            "GET",
            "/api/empty-shells".into(),
            None,
            vec!["miit", "bureau京", "bureau沪"],
        ),
        (
            "GET",
            "/api/users".into(),
            None,
            vec!["miit", "bureau京", "bureau沪"],
        ),
        (
            "POST",
            "/api/review/auto".into(),
            None,
            vec!["bureau京", "bureau沪"],
        ),
        (
            "POST",
            "/api/users".into(),
            Some(sq("SQ_ROLE")),
            vec!["miit", "bureau京", "bureau沪"],
        ),
        (
            "POST",
            "/api/users".into(),
            Some(
                json!({"username": "B_ROLE", "role": "bureau", "province": "粤", "password": "x-pass-123"}),
            ),
            vec!["miit"],
        ),
        (
            "POST",
            "/api/users".into(),
            Some(
                json!({"username": "I_ROLE", "role": "isp", "name": "N", "password": "x-pass-123"}),
            ),
            vec!["bureau京", "bureau沪"],
        ),
        (
            "POST",
            "/api/users/isp_b/import-authorisation".into(),
            Some(json!({"authorised": false})),
            vec!["bureau京"],
        ),
        (
            "POST",
            "/api/announcements".into(),
            Some(json!({"title": "t", "body": "b"})),
            vec!["miit", "bureau京", "bureau沪"],
        ),
        ("POST", format!("{show}/verify-access"), None, vec!["isp"]),
        (
            "GET",
            "/api/filed?domain=example-bj.com".into(),
            None,
            vec![
                "anon",
                "miit",
                "bureau京",
                "bureau沪",
                "isp",
                "isp_other",
                "icp",
                "icp_other",
                "special_query",
            ],
        ),
        (
            "GET",
            "/api/codes".into(),
            None,
            vec![
                "anon",
                "miit",
                "bureau京",
                "bureau沪",
                "isp",
                "isp_other",
                "icp",
                "icp_other",
                "special_query",
            ],
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, allowed) in &table {
        for (ri, (role, token)) in roles.iter().enumerate() {
            // Per-role unique usernames so creation cells do not collide.
            let body = body.clone().map(|b| {
                let mut b = b;
                if let Some(u) = b.get("username").and_then(|u| u.as_str()) {
                    if u.ends_with("_ROLE") {
                        let uname = format!("{u}_{ri}");
                        b["username"] = Value::String(uname);
                    }
                }
                b
            });
            let r = s.call(method, path, *token, body).await;
            let ok = (200..300).contains(&r.status);
            let expect_ok = allowed.contains(role);
            let refused_right = if token.is_none() {
                r.status == 401
            } else {
                r.status == 403
            };
            if ok != expect_ok || (!expect_ok && !refused_right) {
                wrong.push(format!(
                    "{method} {path} as {role}: {} {}",
                    r.status, r.text
                ));
            }
        }
    }
    // Import: only the import-authorised ISP (isp_b was de-authorised above, never was).
    for (role, token, expect) in [
        ("isp", &c.isp, 200),
        ("isp_other", &c.isp_other, 403),
        ("icp", &c.icp, 403),
        ("bureau京", &c.bureau_jing, 403),
        ("miit", &c.miit, 403),
    ] {
        let r = s
            .raw(
                "POST",
                "/api/filings/import",
                Some(token),
                Some((line.clone().into_bytes(), "application/x-ndjson")),
            )
            .await;
        if r.status != expect {
            wrong.push(format!("import as {role}: {} {}", r.status, r.text));
        }
    }
    assert!(
        wrong.is_empty(),
        "matrix cells wrong:\n{}",
        wrong.join("\n")
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_does_not_reveal_accounts_and_is_rate_limited() {
    let s = Server::start(1 << 20).await;
    let body = |u: &str, p: &str| Some(json!({"username": u, "password": p}));
    let a = s
        .call("POST", "/api/login", None, body("miit", "wrong-pw-1"))
        .await;
    let b = s
        .call(
            "POST",
            "/api/login",
            None,
            body("nobody_here", "wrong-pw-1"),
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(b.status, 200);
    assert_eq!(a.json()["message"], b.json()["message"]);
    // A made-up challenge gets nothing.
    let r = s
        .call(
            "POST",
            "/api/login/verify",
            None,
            Some(json!({"challenge_id": a.json()["challenge_id"], "code": "123456"})),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unauthorized");
    // Per account: after 5 failures even the right password is refused for a while.
    for _ in 0..4 {
        let r = s
            .call("POST", "/api/login", None, body("miit", "wrong-pw-1"))
            .await;
        assert_eq!(r.status, 200);
    }
    let pw = s.miit_password.clone();
    let r = s.call("POST", "/api/login", None, body("miit", &pw)).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error_code(), "rate_limited");
    assert!(r.headers.contains_key("retry-after"));
    // The same for an account that does not exist.
    for _ in 0..5 {
        s.call("POST", "/api/login", None, body("ghost", "wrong-pw-1"))
            .await;
    }
    let r = s
        .call("POST", "/api/login", None, body("ghost", "wrong-pw-1"))
        .await;
    assert_eq!(r.status, 429);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_endpoints_have_per_client_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let (reg, init) = Registry::init(dir.path(), chrono::Utc::now().timestamp()).unwrap();
    let mut config = Config::default();
    config.serve.public_per_minute = 5;
    config.serve.account_per_minute = 3;
    let s = Server::start_with(config, dir, reg, init.miit_password).await;
    // Public queries share the generous quota: the 6th within the minute is refused.
    for path in [
        "/api/codes",
        "/api/keyring",
        "/api/filed?domain=a.cn",
        "/api/announcements",
        "/api/openapi.json",
    ] {
        let r = s.call("GET", path, None, None).await;
        assert_ne!(r.status, 429, "{path}: {}", r.text);
    }
    let r = s.call("GET", "/api/public/filings/1", None, None).await;
    assert_eq!(r.status, 429, "{}", r.text);
    assert_eq!(r.error_code(), "rate_limited");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Account requests share the strict one.
    let login = json!({"username": "miit", "password": "wrong-pw-1"});
    for _ in 0..3 {
        let r = s
            .call("POST", "/api/login", None, Some(login.clone()))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    for (path, body) in [
        ("/api/login", login.clone()),
        (
            "/api/login/verify",
            json!({"challenge_id": "x", "code": "123456"}),
        ),
        (
            "/api/register",
            json!({"username": "a_b", "password": "secret-pw1", "mobile": "13700000005", "email": "a@b.cn"}),
        ),
        (
            "/api/register/activate",
            json!({"username": "a_b", "sms_code": "1", "email_code": "2"}),
        ),
        ("/api/password/reset-request", json!({"username": "miit"})),
        (
            "/api/password/reset",
            json!({"token": "t", "new_password": "secret-pw2"}),
        ),
    ] {
        let r = s.call("POST", path, None, Some(body)).await;
        assert_eq!(r.status, 429, "{path}: {}", r.text);
        assert!(r.headers.contains_key("retry-after"));
    }
    // Endpoints that need a session are not anonymous: no quota, the usual 401.
    let r = s.call("GET", "/api/me", None, None).await;
    assert_eq!(r.status, 401);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_token_acts_as_the_named_role_on_loopback_only() {
    use beian::api::operator::{new_token, operator_caller, AS_HEADER, OPERATOR_HEADER};
    let s = Server::start(1 << 20).await;
    let token = new_token();
    let get = |path: &'static str, token: Option<String>, role: Option<&'static str>| {
        let mut rb = s.client.get(format!("{}{path}", s.base));
        if let Some(t) = token {
            rb = rb.header(OPERATOR_HEADER, t);
        }
        if let Some(r) = role {
            rb = rb.header(AS_HEADER, r);
        }
        async move {
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // Not enabled yet: refused.
    assert_eq!(
        get("/api/outbox", Some(token.clone()), Some("miit"))
            .await
            .0,
        401
    );
    assert!(s.state.operator.enable(&token));
    let (st, body) = get("/api/outbox", Some(token.clone()), Some("miit")).await;
    assert_eq!(st, 200, "{body}");
    assert!(serde_json::from_str::<Vec<Value>>(&body).is_ok(), "{body}");
    let (st, body) = get("/api/audit/verify", Some(token.clone()), Some("miit")).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["first_broken"],
        Value::Null
    );
    let (st, _) = get("/api/snapshot", Some(token.clone()), Some("bureau:京")).await;
    assert_eq!(st, 200);
    // The usual permission checks apply to the named role.
    assert_eq!(
        get("/api/outbox", Some(token.clone()), Some("bureau:京"))
            .await
            .0,
        403
    );
    assert_eq!(
        get("/api/snapshot", Some(token.clone()), Some("icp:x"))
            .await
            .0,
        403
    );
    assert_eq!(
        get("/api/filings/1", Some(token.clone()), Some("miit"))
            .await
            .0,
        404
    );
    // A wrong token, no role, or no credential at all.
    assert_eq!(
        get("/api/outbox", Some(new_token()), Some("miit")).await.0,
        401
    );
    assert_eq!(get("/api/outbox", Some(token.clone()), None).await.0, 400);
    assert_eq!(get("/api/outbox", None, Some("miit")).await.0, 401);
    // From a peer that is not loopback, even the right token is refused.
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(OPERATOR_HEADER, token.parse().unwrap());
    headers.insert(AS_HEADER, "miit".parse().unwrap());
    let mut ext = axum::http::Extensions::new();
    let peer: std::net::SocketAddr = "192.0.2.7:40000".parse().unwrap();
    ext.insert(axum::extract::ConnectInfo(peer));
    let r = operator_caller(&headers, &ext, &s.state);
    assert!(matches!(r, Err(beian::api::ApiError::Forbidden { .. })));
    let loopback: std::net::SocketAddr = "127.0.0.1:40000".parse().unwrap();
    ext.insert(axum::extract::ConnectInfo(loopback));
    assert!(operator_caller(&headers, &ext, &s.state).unwrap().is_some());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_reset_logout_and_sessions() {
    let s = Server::start(1 << 20).await;
    let token = register_icp(&s, "wang_wu", "13900000003", "ww@example.com").await;
    let r = s.call("GET", "/api/me", Some(&token), None).await;
    assert_eq!(r.status, 200);
    let r = s
        .call(
            "POST",
            "/api/password/reset-request",
            None,
            Some(json!({"username": "wang_wu"})),
        )
        .await;
    assert_eq!(r.status, 202);
    let r2 = s
        .call(
            "POST",
            "/api/password/reset-request",
            None,
            Some(json!({"username": "nobody"})),
        )
        .await;
    assert_eq!(r2.status, 202);
    assert_eq!(r.text, r2.text, "the answer does not reveal the account");
    let mail = s.outbox_body("ww@example.com");
    assert!(!mail.contains("secret-pw1"), "never mails a password");
    let reset_token = mail
        .split("): ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .unwrap()
        .to_string();
    let r = s
        .call(
            "POST",
            "/api/password/reset",
            None,
            Some(json!({"token": reset_token, "new_password": "123456"})),
        )
        .await;
    assert_eq!(r.status, 400, "rule 9 applies: {}", r.text);
    assert_eq!(r.json()["error"]["field"], "password");
    let r = s
        .call(
            "POST",
            "/api/password/reset",
            None,
            Some(json!({"token": reset_token, "new_password": "new-secret-2"})),
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // One-time.
    let r = s
        .call(
            "POST",
            "/api/password/reset",
            None,
            Some(json!({"token": reset_token, "new_password": "new-secret-3"})),
        )
        .await;
    assert_eq!(r.status, 400);
    // Old sessions are revoked; the new password works; logout revokes.
    let r = s.call("GET", "/api/me", Some(&token), None).await;
    assert_eq!(r.status, 401);
    let token = s.login("wang_wu", "new-secret-2", "ww@example.com").await;
    let r = s.call("POST", "/api/logout", Some(&token), None).await;
    assert_eq!(r.status, 204);
    let r = s.call("GET", "/api/me", Some(&token), None).await;
    assert_eq!(r.status, 401);
    // Usernames follow rule 9.
    let r = s
        .call("POST", "/api/register", None, Some(json!({"username": "bad-name", "password": "secret-pw1", "mobile": "13900000004", "email": "b@example.com"})))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["field"], "username");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_is_4xx_with_our_error_shape() {
    let s = Server::start(4096).await;
    let miit = s.miit().await;
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        &'a str,
        u16,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/api/login",
            None,
            b"{\"username\": ".to_vec(),
            "application/json",
            400,
            None,
        ),
        (
            "POST",
            "/api/login",
            None,
            b"{\"username\": \"\xff\xfe\", \"password\": \"x\"}".to_vec(),
            "application/json",
            400,
            None,
        ),
        (
            "POST",
            "/api/login",
            None,
            br#"{"username": "a", "password": "b", "extra": 1}"#.to_vec(),
            "application/json",
            400,
            None,
        ),
        (
            "POST",
            "/api/login",
            None,
            br#"{"username": 5, "password": "b"}"#.to_vec(),
            "application/json",
            400,
            Some("username"),
        ),
        (
            "POST",
            "/api/login",
            None,
            br#"{"username": "a", "password": "b"}"#.to_vec(),
            "",
            415,
            None,
        ),
        (
            "POST",
            "/api/login",
            None,
            vec![b'x'; 10_000],
            "application/json",
            413,
            None,
        ),
        (
            "POST",
            "/api/users",
            Some(&miit),
            br#"{"username": "u1", "role": "emperor"}"#.to_vec(),
            "application/json",
            400,
            Some("role"),
        ),
        (
            "POST",
            "/api/filings",
            Some(&miit),
            b"[1,2".to_vec(),
            "application/json",
            400,
            None,
        ),
        ("GET", "/api/filed", None, vec![], "", 400, Some("domain")),
        (
            "GET",
            "/api/filed?domain=%FF%FE",
            None,
            vec![],
            "",
            400,
            None,
        ),
        (
            "GET",
            "/api/filed?domain=not..a..domain",
            None,
            vec![],
            "",
            400,
            Some("domain"),
        ),
        ("GET", "/api/no/such/route", None, vec![], "", 404, None),
        (
            "GET",
            "/api/filings/1",
            Some("not-a-session"),
            vec![],
            "",
            401,
            None,
        ),
        (
            "GET",
            "/api/public/filings/nonexistent.example",
            None,
            vec![],
            "",
            404,
            None,
        ),
        ("GET", "/api/check", None, vec![], "", 400, Some("target")),
    ];
    for (method, path, token, body, ct, status, field) in cases {
        let b = (!body.is_empty() || !ct.is_empty()).then_some((body, ct));
        let r = s.raw(method, path, token, b).await;
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        r.error_code();
        if let Some(f) = field {
            assert_eq!(r.json()["error"]["field"], f, "{method} {path}: {}", r.text);
        }
    }
    // Import with a body that is not UTF-8 (as an authorised ISP would send it).
    let bureau = s
        .create_user(
            &miit,
            json!({"username": "bj", "password": "bureau-pw1", "role": "bureau", "province": "京"}),
        )
        .await;
    assert_eq!(bureau.status, 201);
    let bj = s.login("bj", "bureau-pw1", "user:bj").await;
    s.create_user(
        &bj,
        json!({"username": "ispx", "password": "isp-pw12", "role": "isp", "name": "X"}),
    )
    .await;
    s.call(
        "POST",
        "/api/users/ispx/import-authorisation",
        Some(&bj),
        Some(json!({"authorised": true})),
    )
    .await;
    let isp = s.login("ispx", "isp-pw12", "user:ispx").await;
    let r = s
        .raw(
            "POST",
            "/api/filings/import",
            Some(&isp),
            Some((vec![0xff, 0xfe, b'\n'], "application/x-ndjson")),
        )
        .await;
    // Not JSON Lines, so read as a table (here UTF-16 by its byte-order mark) without the
    // template's header row: a clear 400.
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.error_code(), "bad_upload");
    assert!(r.text.contains("header row"), "{}", r.text);
    // Nothing above was a 5xx in the metrics.
    let text = s
        .client
        .get(format!("{}/metrics", s.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("status=\"5xx\""), "{text}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_is_prometheus_text_and_the_guard_holds() {
    let s = Server::start(1 << 20).await;
    let start = std::time::Instant::now();
    let r = s
        .client
        .get(format!("{}/probe?target=127.0.0.1", s.base))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "within the scrape timeout"
    );
    let m = parse_prometheus(&text);
    // Loopback is a special-purpose address: the guard refuses it, so nothing is judged.
    assert_eq!(m["probe_success"], 0.0, "{text}");
    assert_eq!(m["beian_probe_verdict{verdict=\"unknown\"}"], 1.0);
    assert_eq!(m["beian_probe_verdict{verdict=\"compliant\"}"], 0.0);
    assert_eq!(m["beian_probe_cert_valid"], 0.0);
    assert_eq!(m["beian_probe_footer_number_match"], 0.0);
    for k in m.keys() {
        let name = k.split('{').next().unwrap();
        assert!(PROBE_METRIC_NAMES.contains(&name), "{name} not declared");
    }
    // The self-check refuses internal targets the same way, and is rate-limited per client.
    let mut statuses = Vec::new();
    for _ in 0..(beian::api::CHECKS_PER_MINUTE + 1) {
        let r = s
            .call("GET", "/api/check?target=http://10.0.0.1/", None, None)
            .await;
        statuses.push(r.status);
        if r.status == 200 {
            assert_eq!(r.json()["record"]["verdict"], "unknown", "{}", r.text);
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        beian::api::CHECKS_PER_MINUTE as usize
    );
    assert_eq!(*statuses.last().unwrap(), 429);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_announcements_work() {
    let s = Server::start(1 << 20).await;
    let r = s.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    let paths = doc["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for (method, path, _) in beian::api::routes() {
        let oa: String = path
            .split('/')
            .map(|seg| match seg.strip_prefix(':') {
                Some(p) => format!("{{{p}}}"),
                None => seg.to_string(),
            })
            .collect::<Vec<_>>()
            .join("/");
        if paths.get(&oa).and_then(|p| p.get(method)).is_none() {
            missing.push(format!("{method} {oa}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from OpenAPI: {missing:?}"
    );
    let n_ops: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(
        n_ops,
        beian::api::routes().len(),
        "no documented route without a handler"
    );

    // Announcements: MIIT publishes with attachments; anyone reads; size is limited.
    let miit = s.miit().await;
    let r = s
        .call(
            "POST",
            "/api/announcements",
            Some(&miit),
            Some(json!({"title": "通知", "body": "年审"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let up = |name: &str| {
        format!(
            "/api/announcements/{id}/attachments?filename={}",
            urlencode(name)
        )
    };
    let r = s
        .raw(
            "POST",
            &up("说明.txt"),
            Some(&miit),
            Some((b"hello".to_vec(), "text/plain")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let att = r.json()["id"].as_str().unwrap().to_string();
    let r = s
        .raw(
            "POST",
            &up("b.bin"),
            Some(&miit),
            Some((vec![1, 2, 3], "application/octet-stream")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let big = vec![0u8; beian::api::ATTACHMENT_LIMIT + 1];
    let r = s
        .raw(
            "POST",
            &up("big.bin"),
            Some(&miit),
            Some((big, "application/octet-stream")),
        )
        .await;
    assert_eq!(r.status, 413, "{}", r.text);
    r.error_code();
    let r = s
        .call("GET", &format!("/api/announcements/{id}"), None, None)
        .await;
    assert_eq!(r.json()["attachments"].as_array().unwrap().len(), 2);
    let r = s
        .call(
            "GET",
            &format!("/api/announcements/{id}/attachments/{att}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text, "hello");
    assert!(r.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    let r = s
        .call(
            "DELETE",
            &format!("/api/announcements/{id}/attachments/{att}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = s
        .call(
            "DELETE",
            &format!("/api/announcements/{id}/attachments/{att}"),
            Some(&miit),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s
        .call(
            "GET",
            &format!("/api/announcements/{id}/attachments/{att}"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = s.call("GET", "/api/announcements", None, None).await;
    assert_eq!(r.json()[0]["attachments"].as_array().unwrap().len(), 1);
    let r = s
        .call(
            "DELETE",
            &format!("/api/announcements/{id}"),
            Some(&miit),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = s.call("GET", "/api/announcements", None, None).await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    // The audit chain still verifies after all these record writes.
    assert!(s.registry.verify_audit().unwrap().ok());
    s.stop().await;
}

#[test]
fn outbox_command_lists_undelivered_messages() {
    let dir = tempfile::tempdir().unwrap();
    let reg_dir = dir.path().join("reg");
    {
        let (reg, _) = Registry::init(&reg_dir, 1_700_000_000).unwrap();
        let accounts = Accounts::new();
        let r = beian::accounts::service::Registration {
            username: "zhao_liu".into(),
            password: "secret-pw1".into(),
            mobile: "13700000005".into(),
            email: "zl@example.com".into(),
        };
        let msgs = accounts.register(reg.store(), &r, 1_700_000_000).unwrap();
        Accounts::to_outbox(reg.store(), &msgs).unwrap();
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_beian"))
        .arg("--registry")
        .arg(&reg_dir)
        .args(["outbox", "--format", "json", "--to", "zl@example.com"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert_eq!(lines[0]["channel"], "email");
    six_digits(lines[0]["body"].as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    let s = Server::start(1 << 20).await;
    // Registration hashes a password with argon2: slow enough to be in flight at shutdown.
    let url = format!("{}/api/register", s.base);
    let client = s.client.clone();
    let pending = tokio::spawn(async move {
        client
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"username":"late_user","password":"secret-pw1","mobile":"13600000006","email":"lu@example.com"}"#)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let base = s.base.clone();
    s.stop().await;
    assert_eq!(
        pending.await.unwrap().unwrap(),
        202,
        "the in-flight request completed"
    );
    assert!(
        reqwest::get(format!("{base}/api/codes")).await.is_err(),
        "no new connections after shutdown"
    );
}

/// Wait until a scan job has finished; returns its status.
async fn finished_job(s: &Server, token: &str, id: &str) -> Value {
    for _ in 0..300 {
        let r = s
            .call("GET", &format!("/api/scans/{id}"), Some(token), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let v = r.json();
        let state = v["job"]["state"].as_str().unwrap().to_string();
        if state != "queued" && state != "running" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("scan {id} did not finish");
}

fn ndjson_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_through_the_api_by_role_and_province() {
    use beian::fleet::{Fleet, LabResponse, LabSite};
    // A lab fleet: one filed site in 京 and one in 沪, served correctly, and one unfiled site.
    let hosts = ["jing.test", "hu.test", "nobody.test"];
    let lines: Vec<String> = [("jing.test", "京", "110000"), ("hu.test", "沪", "310000")]
        .iter()
        .enumerate()
        .map(|(i, (h, p, code))| {
            format!(
                r#"{{"subject":{{"name":"扫描公司{i}","nature":"企业","id_type":"统一社会信用代码","id_number":"91{code}00000000{i}X","province":"{p}","address":"地址","contact":{{"name":"某"}}}},"website":{{"name":"站{i}","homepage":"http://{h}/","domains":["{h}"],"ips":[],"providers":["扫描接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#
            )
        })
        .collect();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The fleet's pages need numbers, so the server (and its registry) comes first; the
    // scanner's ports come from the configuration, so the fleet's port is reserved first.
    let fleet_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let fleet_port = fleet_listener.local_addr().unwrap().port();
    drop(fleet_listener);
    let mut config = Config {
        scan: crate::lab::lab_config("127.0.0.1", &hosts),
        ..Default::default()
    };
    config.scan.http_port = fleet_port;
    config.scan.https_port = closed;
    config.scan.max_retries = 0;
    let s = Server::start_config(config).await;
    let now = chrono::Utc::now().timestamp();
    let report = s
        .registry
        .import_jsonl(
            lines.join("\n").as_bytes(),
            Submitter::RowProvider,
            now,
            100,
            &mut |_| {},
        )
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    s.registry
        .verify_access(&Actor::isp("扫描接入商"), "扫描接入商", None, now)
        .unwrap();
    s.registry.review_auto_by_each_bureau(now).unwrap();
    let mut sites = Vec::new();
    for h in &hosts[..2] {
        let number = s
            .registry
            .filing_view(&beian::registry::FilingKey::Domain(h.to_string()))
            .unwrap()
            .service_number
            .unwrap();
        let cert = s.registry.certificate_for(h).unwrap().text;
        sites.push(
            LabSite::new(h)
                .route(
                    "/",
                    LabResponse::html(format!(
                        "<html><body><main>欢迎访问本站的首页内容。</main><footer><a href=\"https://beian.miit.gov.cn/\">{number}</a></footer></body></html>"
                    )),
                )
                .route("/cert/bazs.cert", LabResponse::text(cert.into_bytes())),
        );
    }
    sites.push(LabSite::new("nobody.test").route(
        "/",
        LabResponse::html("<html><body><main>一个没有备案的网站首页。</main></body></html>"),
    ));
    let _fleet = Fleet::start(format!("127.0.0.1:{fleet_port}").parse().unwrap(), sites)
        .await
        .unwrap();
    let c = cast(&s).await;

    // No schedule and no scan yet: the schedule and completion metrics are absent, not 0.
    let m = s
        .client
        .get(format!("{}/metrics", s.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !m.contains("beian_scan_last_completion_timestamp_seconds"),
        "{m}"
    );
    assert!(!m.contains("beian_scan_schedule_interval_seconds"), "{m}");

    // Only regulators run scans.
    for t in [&c.icp, &c.isp, &c.special_query] {
        let r = s.call("POST", "/api/scans", Some(t), None).await;
        assert_eq!(r.status, 403, "{}", r.text);
    }
    let r = s.call("POST", "/api/scans", None, None).await;
    assert_eq!(r.status, 401);

    // MIIT: every filed domain.
    let r = s.call("POST", "/api/scans", Some(&c.miit), None).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = r.json()["id"].as_str().unwrap().to_string();
    assert_eq!(
        r.headers["location"].to_str().unwrap(),
        format!("/api/scans/{job}")
    );
    let v = finished_job(&s, &c.miit, &job).await;
    assert_eq!(v["job"]["state"], "completed", "{v}");
    assert_eq!(v["job"]["planned"], 2, "{v}");
    assert_eq!(v["scan"]["summary"]["by_verdict"]["compliant"], 2, "{v}");
    let national = v["job"]["scan_id"].as_str().unwrap().to_string();
    let m = s
        .client
        .get(format!("{}/metrics", s.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("beian_scan_last_completion_timestamp_seconds"),
        "{m}"
    );
    assert!(
        m.contains("beian_scan_last_targets{verdict=\"compliant\"} 2"),
        "{m}"
    );

    // A bureau: its own province only.
    let r = s
        .call(
            "POST",
            "/api/scans",
            Some(&c.bureau_jing),
            Some(json!({"province": "沪"})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s
        .call(
            "POST",
            "/api/scans",
            Some(&c.bureau_jing),
            Some(json!({"targets": ["nobody.test"]})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s
        .call(
            "POST",
            "/api/scans",
            Some(&c.bureau_jing),
            Some(json!({"nonsense": 1})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s
        .call("POST", "/api/scans", Some(&c.bureau_jing), None)
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let jing_job = r.json()["id"].as_str().unwrap().to_string();
    let v = finished_job(&s, &c.bureau_jing, &jing_job).await;
    assert_eq!(v["job"]["state"], "completed", "{v}");
    assert_eq!(v["job"]["planned"], 1, "{v}");
    assert_eq!(v["job"]["scope"]["province"], "京", "{v}");
    // Another bureau does not see it; and reads only its province's records of national scans.
    let r = s
        .call(
            "GET",
            &format!("/api/scans/{jing_job}"),
            Some(&c.bureau_hu),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = s
        .call(
            "GET",
            &format!("/api/scans/{national}/records"),
            Some(&c.bureau_hu),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let recs = ndjson_lines(&r.text);
    assert_eq!(recs.len(), 1, "{}", r.text);
    assert_eq!(recs[0]["target"], "hu.test");
    let r = s
        .call(
            "GET",
            &format!("/api/scans/{national}/records"),
            Some(&c.miit),
            None,
        )
        .await;
    assert_eq!(ndjson_lines(&r.text).len(), 2, "{}", r.text);
    let r = s
        .call(
            "GET",
            &format!("/api/scans/{national}"),
            Some(&c.bureau_hu),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["scan"]["summary"].is_null(), "{}", r.text);
    assert_eq!(r.json()["scan"]["province"]["compliant"], 1, "{}", r.text);
    let r = s.call("GET", "/api/scans", Some(&c.bureau_hu), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let listed = r.json();
    assert!(
        listed["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["id"] != jing_job.as_str()),
        "{listed}"
    );
    assert!(listed["schedule_interval_s"].is_null());

    // MIIT: a list of targets; the unfiled one is found, and filtering by verdict works.
    let r = s
        .call(
            "POST",
            "/api/scans",
            Some(&c.miit),
            Some(json!({"targets": ["nobody.test", "jing.test"]})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let list_job = r.json()["id"].as_str().unwrap().to_string();
    let v = finished_job(&s, &c.miit, &list_job).await;
    assert_eq!(v["job"]["state"], "completed", "{v}");
    let r = s
        .call(
            "GET",
            &format!("/api/scans/{list_job}/records?verdict=unfiled"),
            Some(&c.miit),
            None,
        )
        .await;
    let recs = ndjson_lines(&r.text);
    assert_eq!(recs.len(), 1, "{}", r.text);
    assert_eq!(recs[0]["target"], "nobody.test");
    let r = s
        .call(
            "POST",
            "/api/scans",
            Some(&c.miit),
            Some(json!({"targets": []})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = s
        .call("GET", "/api/scans/job-999", Some(&c.miit), None)
        .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = s
        .call(
            "GET",
            "/api/scans/..%2F..%2Fetc/records",
            Some(&c.miit),
            None,
        )
        .await;
    assert!(r.status == 404 || r.status == 400, "{}", r.text);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_has_the_exported_shape_and_notices_reach_the_outbox() {
    let s = Server::start(1 << 20).await;
    let r = s.call("GET", "/api/keyring", None, None).await;
    assert_eq!(r.status, 200);
    let ring = beian::cert::Keyring::from_json(&r.text).unwrap();
    assert_eq!(ring, s.registry.keyring());
    // An approval writes notices; serve hands them to a channel or, with none, the outbox.
    let now = chrono::Utc::now().timestamp();
    s.registry
        .import_jsonl(
            FILING.as_bytes(),
            Submitter::RowProvider,
            now,
            10,
            &mut |_| {},
        )
        .unwrap();
    s.registry
        .verify_access(&Actor::isp("示例接入商"), "示例接入商", None, now)
        .unwrap();
    s.registry.review_auto_by_each_bureau(now).unwrap();
    let pending = Accounts::notices(s.registry.store()).unwrap();
    assert_eq!(
        pending.len(),
        2,
        "SMS and email to the subject's contact: {pending:?}"
    );
    assert_eq!(s.state.deliver_notices().await.unwrap(), 0);
    assert!(Accounts::notices(s.registry.store()).unwrap().is_empty());
    assert!(s.outbox_body("13800000000").contains("filing approved"));
    assert!(s
        .outbox_body("zhangsan@example.com")
        .contains("https://example-bj.com/cert/bazs.cert"));
    // The annual-review list: regulators only, nothing due yet, the approved one due within
    // a year and a day.
    let c = cast(&s).await;
    let r = s
        .call("GET", "/api/review/annual", Some(&c.icp), None)
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s
        .call("GET", "/api/review/annual", Some(&c.bureau_jing), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = s
        .call(
            "GET",
            "/api/review/annual?within_days=367",
            Some(&c.miit),
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 1, "{}", r.text);
    let r = s
        .call(
            "GET",
            "/api/review/annual?within_days=367",
            Some(&c.bureau_hu),
            None,
        )
        .await;
    assert_eq!(r.json().as_array().unwrap().len(), 0, "{}", r.text);
    // Revoked for false information: on the public list, for anyone.
    let r = s
        .call(
            "POST",
            "/api/filings/example-bj.com/revoke",
            Some(&c.miit),
            Some(json!({"reason": "主体信息不实", "false_information": true})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .call("GET", "/api/public/false-information", None, None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list = r.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["subject_name"], "北京示例科技有限公司");
    assert!(
        list[0].get("subject_id_number").is_none(),
        "public fields only"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_uploads_and_ip_filings_over_the_api() {
    let s = Server::start(1 << 20).await;
    let c = cast(&s).await;

    // The templates are public downloads.
    let r = s.raw("GET", "/api/templates/filing", None, None).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .contains("spreadsheetml"));
    assert_eq!(
        s.raw("GET", "/api/templates/x", None, None).await.status,
        404
    );

    // A CSV in the filing template: the import-authorised ISP files its customers' rows;
    // rows of other providers' sites, and rows naming a provider that is not on the ISP list
    // (this registry has one ISP user), are refused at the providers column.
    let csv = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/templates/filings.csv"),
    )
    .unwrap();
    let r = s
        .raw(
            "POST",
            "/api/filings/import",
            Some(&c.isp),
            Some((csv.clone(), "text/csv")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["format"], "csv");
    assert_eq!(v["accepted"].as_array().unwrap().len(), 4, "{v}");
    let errors = v["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 6, "{v}");
    assert!(
        errors
            .iter()
            .any(|e| e["line"] == 11 && e["reason"].as_str().unwrap().contains("ISP list")),
        "{v}"
    );
    assert!(
        errors.iter().all(|e| e["column"] == "O (接入服务单位)"),
        "{v}"
    );
    // Not a template: a clear 400.
    let r = s
        .raw(
            "POST",
            "/api/filings/import",
            Some(&c.isp),
            Some((b"PK\x03\x04junk".to_vec(), "application/octet-stream")),
        )
        .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "bad_upload"));

    // IP filings: an ISP files its own blocks; overlaps follow the FAQ.
    let block = |provider: &str, network: &str, status: &str, to: Option<&str>| {
        json!({"provider": provider, "network": network, "status": status,
               "allocated_to": to, "province": "京"})
    };
    let r = s
        .call(
            "POST",
            "/api/ip-filings",
            Some(&c.isp),
            Some(block(
                "示例接入商",
                "203.0.113.0/24",
                "allocated",
                Some("示例接入商"),
            )),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let own_id = r.json()["id"].as_u64().unwrap();
    let inside = block("华北云", "203.0.113.0/25", "allocated", Some("华北云"));
    let r = s
        .call(
            "POST",
            "/api/ip-filings",
            Some(&c.isp_other),
            Some(inside.clone()),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("lies inside"), "{}", r.text);
    let r = s
        .call(
            "POST",
            "/api/ip-filings",
            Some(&c.isp),
            Some(block(
                "华北云",
                "198.51.100.0/24",
                "allocated",
                Some("华北云"),
            )),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    for t in [&c.isp, &c.isp_other] {
        let provider = if t == &c.isp {
            "示例接入商"
        } else {
            "华北云"
        };
        let r = s
            .call(
                "POST",
                "/api/ip-filings",
                Some(t),
                Some(block(provider, "192.0.2.0/30", "router_port", None)),
            )
            .await;
        assert_eq!(r.status, 201, "identical router-port blocks: {}", r.text);
    }
    // Re-allocating the /24 to 华北云 lets it file inside.
    let r = s
        .call(
            "PUT",
            &format!("/api/ip-filings/{own_id}"),
            Some(&c.isp),
            Some(block(
                "示例接入商",
                "203.0.113.0/24",
                "reallocated",
                Some("华北云"),
            )),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .call("POST", "/api/ip-filings", Some(&c.isp_other), Some(inside))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Who sees what.
    let count = |r: Resp| r.json().as_array().unwrap().len();
    assert_eq!(
        count(
            s.call("GET", "/api/ip-filings", Some(&c.isp_other), None)
                .await
        ),
        2
    );
    assert_eq!(
        count(
            s.call("GET", "/api/ip-filings", Some(&c.bureau_jing), None)
                .await
        ),
        4
    );
    assert_eq!(
        s.call("GET", "/api/ip-filings", Some(&c.icp), None)
            .await
            .status,
        403
    );
    let r = s
        .call(
            "GET",
            &format!("/api/ip-filings/{own_id}"),
            Some(&c.isp_other),
            None,
        )
        .await;
    assert_eq!(r.status, 403);
    let units = s.call("GET", "/api/ip-units", Some(&c.miit), None).await;
    assert_eq!(units.status, 200, "{}", units.text);
    assert!(units.text.contains("华北云"), "{}", units.text);
    // Delete: only who may report the provider's blocks.
    let path = format!("/api/ip-filings/{own_id}");
    assert_eq!(
        s.call("DELETE", &path, Some(&c.isp_other), None)
            .await
            .status,
        403
    );
    assert_eq!(
        s.call("DELETE", &path, Some(&c.isp), None).await.status,
        204
    );
    assert_eq!(s.call("GET", &path, Some(&c.isp), None).await.status, 404);
    // The audit chain accounts for the removal.
    assert!(s.registry.verify_audit().unwrap().ok());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faq_pre_approval_with_a_document_attached_late() {
    let s = Server::start(1 << 20).await;
    let c = cast(&s).await;
    // A news site filed without its approval document.
    let mut filing: Value = serde_json::from_str(FILING).unwrap();
    filing["website"]["categories"] = json!(["新闻"]);
    let r = s
        .call("POST", "/api/filings", Some(&c.icp), Some(filing))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_u64().unwrap();
    let path = |a: &str| format!("/api/filings/{id}{a}");
    let r = s
        .call("POST", &path("/verify-access"), Some(&c.isp), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let approve_path = path("/approve");
    let approve = || s.call("POST", &approve_path, Some(&c.bureau_jing), Some(json!({})));
    let r = approve().await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "refused_pre_approval")
    );
    // The filer attaches the document while the filing is under review.
    let doc = json!({"category": "新闻", "document": "京新闻审[2024]7号"});
    let r = s
        .call(
            "POST",
            &path("/pre-approval"),
            Some(&c.icp),
            Some(doc.clone()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "awaiting_review");
    let r = approve().await;
    assert_eq!(r.status, 409, "the document is not checked yet: {}", r.text);
    assert!(r.text.contains("pre-approval user"), "{}", r.text);
    // A pre-approval user (created by MIIT) sees it in its queue and confirms it; the
    // bureau may not check documents itself.
    let r = s
        .create_user(&c.miit, json!({"username": "pa", "role": "pre_approval"}))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pw = r.json()["password"].as_str().unwrap().to_string();
    let pa = s.login("pa", &pw, "user:pa").await;
    let r = s.call("GET", "/api/pre-approvals", Some(&pa), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()[0]["id"], id);
    // Each listed filing names the documents to check.
    assert_eq!(
        r.json()[0]["documents"],
        json!([{"category": "新闻", "document": "京新闻审[2024]7号"}])
    );
    assert_eq!(
        s.call("GET", "/api/pre-approvals", Some(&c.bureau_jing), None)
            .await
            .status,
        403
    );
    let check = json!({"category": "新闻"});
    let r = s
        .call(
            "POST",
            &path("/pre-approval/check"),
            Some(&c.bureau_jing),
            Some(check.clone()),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s
        .call("POST", &path("/pre-approval/check"), Some(&pa), Some(check))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = approve().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "active");
    // After approval, no more documents.
    let r = s
        .call("POST", &path("/pre-approval"), Some(&c.icp), Some(doc))
        .await;
    assert_eq!(r.status, 409, "{}", r.text);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faq_accounts_change_password_edit_contact_and_recover_the_registration_code() {
    let s = Server::start(1 << 20).await;
    // A lost registration code: sent again, the old one no longer works.
    let (mobile, email) = ("13800000009", "ww@example.com");
    let r = s
        .call(
            "POST",
            "/api/register",
            None,
            Some(json!({"username": "wang_wu", "password": "secret-pw1", "mobile": mobile, "email": email})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let old_sms = six_digits(&s.outbox_body(mobile));
    let resend = |u: &str| {
        s.call(
            "POST",
            "/api/register/resend",
            None,
            Some(json!({"username": u})),
        )
    };
    assert_eq!(resend("wang_wu").await.status, 202);
    // Unknown usernames get the same answer.
    assert_eq!(resend("nobody_here").await.status, 202);
    let sms = six_digits(&s.outbox_body(mobile));
    let mail = six_digits(&s.outbox_body(email));
    if sms != old_sms {
        let r = s
            .call(
                "POST",
                "/api/register/activate",
                None,
                Some(json!({"username": "wang_wu", "sms_code": old_sms, "email_code": mail})),
            )
            .await;
        assert_eq!(r.status, 400, "the old code is void: {}", r.text);
    }
    let r = s
        .call(
            "POST",
            "/api/register/activate",
            None,
            Some(json!({"username": "wang_wu", "sms_code": sms, "email_code": mail})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let token = s.login("wang_wu", "secret-pw1", email).await;

    // Edit contact: a fresh code to the new address; the old address is told.
    let new_email = "ww-new@example.com";
    let r = s
        .call(
            "POST",
            "/api/me/contact",
            Some(&token),
            Some(json!({"email": new_email})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let code = six_digits(&s.outbox_body(new_email));
    let wrong = s
        .call(
            "POST",
            "/api/me/contact/verify",
            Some(&token),
            Some(json!({"email_code": "000000"})),
        )
        .await;
    assert_eq!(wrong.status, 400);
    let r = s
        .call(
            "POST",
            "/api/me/contact/verify",
            Some(&token),
            Some(json!({"email_code": code})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["email"], new_email);
    // Nothing new: refused.
    let r = s
        .call(
            "POST",
            "/api/me/contact",
            Some(&token),
            Some(json!({"email": new_email})),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // Change password: the old one is needed; then every session ends.
    let change = |old: &str, new: &str| {
        s.call(
            "POST",
            "/api/password/change",
            Some(&token),
            Some(json!({"old_password": old, "new_password": new})),
        )
    };
    let r = change("wrong-pw-9", "another-pw2").await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = change("secret-pw1", "123456").await;
    assert_eq!(r.status, 400, "rule 9 applies: {}", r.text);
    let r = change("secret-pw1", "another-pw2").await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(
        s.call("GET", "/api/me", Some(&token), None).await.status,
        401
    );
    // Login codes now go to the new address.
    s.login("wang_wu", "another-pw2", new_email).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faq_code_tables_and_announcement_categories() {
    let s = Server::start(1 << 20).await;
    let c = cast(&s).await;
    // All the FAQ's code tables: the embedded ones, industries, the ISP list (from the
    // registry's ISP users), announcement categories; cities and counties on their own.
    let v = s.call("GET", "/api/codes", None, None).await.json();
    for table in [
        "provinces",
        "natures",
        "id_types",
        "access_methods",
        "server_placements",
        "categories",
        "service_types",
        "industries",
        "isps",
        "announcement_categories",
    ] {
        assert!(
            v[table].as_array().is_some_and(|a| !a.is_empty()),
            "{table}: {v}"
        );
    }
    assert_eq!(v["isps"], json!(["华北云", "示例接入商"]));
    assert!(
        v.get("regions").is_none(),
        "regions are served on their own"
    );
    let r = s
        .call("GET", "/api/codes/regions?province=京", None, None)
        .await;
    assert_eq!(r.status, 200);
    let regions = r.json();
    assert!(regions
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["code"] == "110101" && x["name"] == "东城区" && x["level"] == "county"));
    assert!(regions
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["code"].as_str().unwrap().starts_with("11")));
    assert_eq!(
        s.call("GET", "/api/codes/regions?province=火星", None, None)
            .await
            .status,
        400
    );
    // Announcements by category.
    for (title, category) in [
        ("备案管理办法", "law"),
        ("备案模板下载", "download"),
        ("系统维护通知", "notice"),
    ] {
        let r = s
            .call(
                "POST",
                "/api/announcements",
                Some(&c.miit),
                Some(json!({"title": title, "body": "…", "category": category})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let laws = s
        .call("GET", "/api/announcements?category=law", None, None)
        .await
        .json();
    assert_eq!(laws.as_array().unwrap().len(), 1);
    assert_eq!(laws[0]["title"], "备案管理办法");
    let zh = s
        .call("GET", "/api/announcements?category=资料下载", None, None)
        .await
        .json();
    assert_eq!(zh[0]["title"], "备案模板下载");
    assert_eq!(
        s.call("GET", "/api/announcements", None, None)
            .await
            .json()
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        s.call("GET", "/api/announcements?category=x", None, None)
            .await
            .status,
        400
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faq_bulletin_board_services_have_their_special_filing_reviewed_first() {
    let s = Server::start(1 << 20).await;
    let c = cast(&s).await;
    let mut filing: Value = serde_json::from_str(FILING).unwrap();
    filing["website"]["bulletin_board"] = json!(true);
    let r = s
        .call("POST", "/api/filings", Some(&c.icp), Some(filing))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_u64().unwrap();
    let path = |a: &str| format!("/api/filings/{id}{a}");
    let r = s
        .call("POST", &path("/verify-access"), Some(&c.isp), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let approve_path = path("/approve");
    let approve = || s.call("POST", &approve_path, Some(&c.bureau_jing), Some(json!({})));
    let r = approve().await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (409, "refused_bulletin_board")
    );
    // A special-content user (created by MIIT) reviews it; nobody else may.
    let r = s
        .create_user(
            &c.miit,
            json!({"username": "sc", "role": "special_content"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pw = r.json()["password"].as_str().unwrap().to_string();
    let sc = s.login("sc", &pw, "user:sc").await;
    let r = s.call("GET", "/api/bulletin-boards", Some(&sc), None).await;
    assert_eq!(r.json()[0]["id"], id, "{}", r.text);
    let review = path("/bulletin-board/review");
    let r = s
        .call("POST", &review, Some(&c.bureau_jing), Some(json!({})))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = s
        .call(
            "POST",
            &review,
            Some(&sc),
            Some(json!({"refused": "未落实信息安全管理制度"})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = approve().await;
    assert_eq!(r.status, 409);
    assert!(r.text.contains("未落实信息安全管理制度"), "{}", r.text);
    let r = s.call("POST", &review, Some(&sc), Some(json!({}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = approve().await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "active");
    s.stop().await;
}
