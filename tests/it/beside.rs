//! The real binary beside a running `beian serve`: read-only commands go through its API
//! (serve.json, operator token), write commands say who holds the registry; MIIT logs in with
//! a code from the outbox or from a loopback SMS webhook, with a serve restart between
//! `login` and `verify`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli_registry::{bin, demo, ok, run};

/// `beian registry init DIR [extra…]`; the MIIT password.
pub(crate) fn init(reg: &Path, extra: &[&str]) -> String {
    let o = Command::new(bin())
        .args(["registry", "init"])
        .arg(reg)
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let out = String::from_utf8(o.stdout).unwrap();
    out.lines()
        .find_map(|l| l.strip_prefix("MIIT password (shown once): "))
        .unwrap()
        .trim()
        .to_string()
}

/// A running `beian serve` on free loopback ports.
pub(crate) struct Serve {
    child: Child,
    pub(crate) api: SocketAddr,
    pub(crate) metrics: SocketAddr,
}

impl Serve {
    pub(crate) fn start(reg: &Path) -> Serve {
        Self::start_with(reg, &[])
    }

    /// `beian --registry REG serve` with `extra` arguments (e.g. `--replica-of`).
    pub(crate) fn start_with(reg: &Path, extra: &[&str]) -> Serve {
        let mut child = Command::new(bin())
            .arg("--registry")
            .arg(reg)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // Log lines may come first; the one naming the addresses says serve is ready.
        let started = loop {
            let l = lines.next().unwrap().unwrap();
            if l.contains("API on http://") {
                break l;
            }
        };
        let (_, rest) = started.split_once("API on http://").unwrap();
        let (api, rest) = rest.split_once(", metrics on http://").unwrap();
        let metrics = rest.trim_end_matches("/metrics");
        // Keep draining stderr so serve never blocks or fails writing to it.
        std::thread::spawn(move || for _ in lines.by_ref() {});
        Serve {
            child,
            api: api.parse().unwrap_or_else(|e| panic!("{started}: {e}")),
            metrics: metrics.parse().unwrap_or_else(|e| panic!("{started}: {e}")),
        }
    }

    /// The operator token the running serve wrote to `REG/serve.json`.
    pub(crate) fn operator_token(reg: &Path) -> String {
        let v: Value =
            serde_json::from_slice(&std::fs::read(reg.join("serve.json")).unwrap()).unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// The API's base URL.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.api)
    }

    /// The `/metrics` URL.
    pub(crate) fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics)
    }

    /// SIGKILL (no graceful anything) and wait.
    pub(crate) fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM by pid; wait for the graceful stop.
    pub(crate) fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One HTTP/1.1 request with a JSON body; (status, body).
    fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        bearer: Option<&str>,
    ) -> (u16, String) {
        let mut s = TcpStream::connect(self.api).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = bearer
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
            self.api,
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        let status = resp[9..12].parse().unwrap();
        let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        (status, decode_chunked(body))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A failed test must not leave serve running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A chunked body as one string (bodies here are small JSON documents).
fn decode_chunked(body: &str) -> String {
    let t = body.trim_start();
    if t.starts_with('{') || t.starts_with('[') || t.is_empty() {
        return body.to_string();
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
    out
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

fn login(serve: &Serve, password: &str) -> String {
    let (st, body) = serve.call(
        "POST",
        "/api/login",
        Some(json!({"username": "miit", "password": password})),
        None,
    );
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["challenge_id"].as_str().unwrap().to_string()
}

fn verify(serve: &Serve, challenge: &str, code: &str) -> String {
    let (st, body) = serve.call(
        "POST",
        "/api/login/verify",
        Some(json!({"challenge_id": challenge, "code": code})),
        None,
    );
    assert_eq!(st, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    let token = v["token"].as_str().unwrap().to_string();
    let (st, me) = serve.call("GET", "/api/me", None, Some(&token));
    assert_eq!(st, 200, "{me}");
    assert!(me.contains("\"miit\""), "{me}");
    token
}

#[test]
fn read_only_commands_work_through_a_running_serve_and_writes_say_who_holds_it() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    init(&reg, &[]);
    ok(&reg, &["filing", "import", demo().to_str().unwrap()]);
    for p in ["示例接入商", "华北云", "华东数据", "华南互联"] {
        ok(&reg, &["filing", "verify-access", "--provider", p, "--all"]);
    }
    ok(&reg, &["review", "--auto"]);
    let number = {
        let v: Value = serde_json::from_str(&ok(
            &reg,
            &[
                "filing",
                "show",
                "--domain",
                "example-bj.com",
                "--format",
                "json",
            ],
        ))
        .unwrap();
        v["service_number"].as_str().unwrap().to_string()
    };

    let serve = Serve::start(&reg);
    let info: Value =
        serde_json::from_slice(&std::fs::read(reg.join("serve.json")).unwrap()).unwrap();
    assert_eq!(info["pid"], serve.pid());
    assert_eq!(info["url"], format!("http://{}", serve.api));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(reg.join("serve.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // filing show, by domain and by number (Chinese characters in the path).
    for (by, what) in [
        ("--domain", "example-bj.com"),
        ("--number", number.as_str()),
    ] {
        let o = run(&reg, &["filing", "show", by, what, "--format", "json"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("through its API"), "{err}");
        let v: Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["status"], "active");
        assert_eq!(v["service_number"], number.as_str());
    }
    let text = ok(&reg, &["filing", "show", "--domain", "example-bj.com"]);
    assert!(text.contains("status: active"), "{text}");
    // A filing that does not exist: one line, not a raw error.
    let o = run(&reg, &["filing", "show", "--domain", "nowhere.cn"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not found"), "{err}");

    ok(&reg, &["outbox"]);
    let audit = ok(&reg, &["audit", "verify"]);
    assert!(audit.starts_with("audit chain ok"), "{audit}");
    let out = tmp.path().join("snap.bin");
    let s = ok(
        &reg,
        &["snapshot", "export", "--out", out.to_str().unwrap()],
    );
    assert!(s.contains("snapshot written"), "{s}");
    let keyring = beian::registry::issuance::Issuer::open(&reg)
        .unwrap()
        .keyring()
        .clone();
    let snap = beian::registry::snapshot::Snapshot::load(&out, Some(&keyring)).unwrap();
    assert!(snap.lookup_host("example-bj.com").is_some());
    // A role the service refuses the outbox to.
    let o = run(&reg, &["--as", "bureau:京", "outbox"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("403"));

    // Commands that write: one clear line.
    let expected = format!(
        "error: serve (pid {}) holds the registry at {}; use the API at http://{}, or stop serve first",
        serve.pid(),
        reg.display(),
        serve.api
    );
    for args in [
        vec!["filing", "import", demo().to_str().unwrap()],
        vec!["review", "--auto"],
        vec!["user", "set-contact", "miit", "--mobile", "13800000001"],
        vec!["keys", "rotate"],
    ] {
        let o = run(&reg, &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(o.stderr).unwrap();
        assert_eq!(err.trim_end(), expected, "{args:?}");
    }
    serve.stop();
    assert!(!reg.join("serve.json").exists());
    assert!(!reg.join("serve.pid").exists());
    // Stopped: the same commands work on the store again.
    ok(
        &reg,
        &["user", "set-contact", "miit", "--mobile", "13800000001"],
    );
}

#[test]
fn a_login_code_from_the_outbox_survives_a_serve_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let password = init(&reg, &[]);
    let serve = Serve::start(&reg);
    let challenge = login(&serve, &password);
    // The operator reads the code through the running service.
    let out = ok(&reg, &["outbox", "--to", "user:miit", "--format", "json"]);
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let code = six_digits(last["body"].as_str().unwrap());
    serve.stop();
    let serve = Serve::start(&reg);
    verify(&serve, &challenge, &code);
    // Used once.
    let (st, _) = serve.call(
        "POST",
        "/api/login/verify",
        Some(json!({"challenge_id": challenge, "code": code})),
        None,
    );
    assert_eq!(st, 401);
    serve.stop();
}

/// A loopback SMS gateway: answers 200 and passes every request body on.
fn sms_webhook() -> (SocketAddr, std::sync::mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = c.read(&mut chunk) else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_string());
                    }
                }
            };
            let _ =
                c.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if let Some(b) = body {
                let _ = tx.send(b);
            }
        }
    });
    (addr, rx)
}

#[test]
fn miit_with_a_mobile_number_gets_its_login_code_by_sms_across_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let password = init(&reg, &["--miit-mobile", "13800000001"]);
    let (hook, received) = sms_webhook();
    std::fs::write(
        reg.join("beian.toml"),
        format!("[sms]\nwebhook_url = \"http://{hook}/sms\"\n"),
    )
    .unwrap();
    let serve = Serve::start(&reg);
    let challenge = login(&serve, &password);
    let body = received.recv_timeout(Duration::from_secs(20)).unwrap();
    let sms: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sms["to"], "13800000001");
    let code = six_digits(sms["text"].as_str().unwrap());
    serve.stop();
    // Delivered: nothing was left in the outbox.
    let out = ok(&reg, &["outbox", "--format", "json"]);
    assert!(!out.contains(&code), "{out}");
    let serve = Serve::start(&reg);
    verify(&serve, &challenge, &code);
    serve.stop();

    // The operator changes the contact later; codes follow it.
    ok(
        &reg,
        &["user", "set-contact", "miit", "--mobile", "13900000009"],
    );
    let serve = Serve::start(&reg);
    login(&serve, &password);
    let sms: Value =
        serde_json::from_str(&received.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap();
    assert_eq!(sms["to"], "13900000009");
    serve.stop();
}

#[test]
fn registry_init_checks_the_miit_contact_before_creating_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let o = Command::new(bin())
        .args(["registry", "init"])
        .arg(&reg)
        .args(["--miit-email", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--miit-email"));
    assert!(!reg.exists());
    let out = Command::new(bin())
        .args(["registry", "init"])
        .arg(&reg)
        .args([
            "--miit-email",
            "miit@example.gov.cn",
            "--miit-mobile",
            "13800000001",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("MIIT contact: email miit@example.gov.cn, mobile 13800000001"),
        "{text}"
    );
}
