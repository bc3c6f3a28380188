//! The registry through the real `beian` binary: init → import → verify-access → review →
//! show → change → cert export → cancel/withdraw/revoke → snapshot → keys → audit verify,
//! error lines and exit codes, and the kill -9 durability test.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub(crate) fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_beian")
}

pub(crate) fn run(reg: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .arg("--registry")
        .arg(reg)
        .args(args)
        .output()
        .unwrap()
}

pub(crate) fn ok(reg: &Path, args: &[&str]) -> String {
    let o = run(reg, args);
    assert!(
        o.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Exit code 2 and one line on stderr.
pub(crate) fn fails(reg: &Path, args: &[&str]) -> String {
    let o = run(reg, args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let err = String::from_utf8(o.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    err
}

fn show(reg: &Path, by: &str, what: &str) -> serde_json::Value {
    serde_json::from_str(&ok(reg, &["filing", "show", by, what, "--format", "json"])).unwrap()
}

/// `beian registry init DIR`, which must succeed.
pub(crate) fn init_registry(reg: &Path) {
    init_registry_on(reg, &crate::pg::TestBackend::Sled)
}

/// `beian registry init DIR [--postgres URL]`, which must succeed.
pub(crate) fn init_registry_on(reg: &Path, tb: &crate::pg::TestBackend) {
    let o = Command::new(bin())
        .args(["registry", "init"])
        .arg(reg)
        .args(tb.init_args())
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
}

pub(crate) fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/demo/filings.jsonl")
}

both! {
fn full_registry_workflow_through_the_cli(tb) {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let o = Command::new(bin())
        .args(["registry", "init"])
        .arg(&reg)
        .args(tb.init_args())
        .output()
        .unwrap();
    assert!(o.status.success());
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("MIIT password (shown once): "), "{out}");

    let out = ok(&reg, &["filing", "import", demo().to_str().unwrap()]);
    assert!(out.contains("accepted: 10"), "{out}");

    // One of two providers verifying is not enough: shop-bj.cn needs 示例接入商 and 华北云.
    ok(
        &reg,
        &[
            "filing",
            "verify-access",
            "--provider",
            "示例接入商",
            "--all",
        ],
    );
    ok(&reg, &["review", "--auto"]);
    assert_eq!(
        show(&reg, "--domain", "shop-bj.cn")["status"],
        "awaiting_access_verification"
    );
    for p in ["华北云", "华东数据", "华南互联"] {
        ok(&reg, &["filing", "verify-access", "--provider", p, "--all"]);
    }
    // The news site's approval document waits for a pre-approval user's check.
    let queue = ok(&reg, &["filing", "documents"]);
    assert!(queue.contains("新闻"), "{queue}");
    ok(&reg, &["review", "--auto"]);
    assert_eq!(
        show(&reg, "--domain", "yunduan-news.cn")["status"],
        "awaiting_review"
    );
    ok(
        &reg,
        &[
            "filing",
            "check-document",
            "--domain",
            "yunduan-news.cn",
            "--category",
            "新闻",
        ],
    );
    assert!(!ok(&reg, &["filing", "documents"]).contains("新闻"));
    ok(&reg, &["review", "--auto"]);

    let a = show(&reg, "--domain", "example-bj.com");
    let b = show(&reg, "--domain", "shop-bj.cn");
    assert_eq!(a["status"], "active");
    assert_eq!(a["subject_number"], b["subject_number"]);
    assert_eq!(
        a["service_number"],
        format!("{}-1", a["subject_number"].as_str().unwrap())
    );
    assert_eq!(
        b["service_number"],
        format!("{}-2", b["subject_number"].as_str().unwrap())
    );
    assert_eq!(a["cert_serial"], 1);
    assert_eq!(
        a["domains"],
        serde_json::json!(["example-bj.com", "example-bj.net"])
    );
    let number = a["service_number"].as_str().unwrap().to_string();
    let by_number = show(&reg, "--number", &number);
    assert_eq!(by_number["id"], a["id"]);

    // Export the certificate, change the filing: the old certificate stays current until the
    // change is approved, then serial 2 supersedes it.
    let old_cert = tmp.path().join("old.cert");
    ok(
        &reg,
        &[
            "cert",
            "export",
            "--domain",
            "example-bj.com",
            "--out",
            old_cert.to_str().unwrap(),
        ],
    );
    assert!(std::fs::metadata(&old_cert).unwrap().len() > 0);
    ok(
        &reg,
        &[
            "filing",
            "change",
            "--number",
            &number,
            "--add-domain",
            "example-bj.org",
            "--remove-domain",
            "example-bj.net",
        ],
    );
    fails(
        &reg,
        &[
            "filing",
            "change",
            "--number",
            &number,
            "--add-domain",
            "again.com",
        ],
    );
    assert_eq!(show(&reg, "--number", &number)["cert_serial"], 1);
    ok(&reg, &["review", "--auto"]);
    let changed = show(&reg, "--number", &number);
    assert_eq!(changed["cert_serial"], 2);
    assert_eq!(
        changed["domains"],
        serde_json::json!(["example-bj.com", "example-bj.org"])
    );
    let new_cert = ok(&reg, &["cert", "export", "--domain", "example-bj.org"]);
    assert_ne!(
        new_cert.as_bytes(),
        std::fs::read(&old_cert).unwrap().as_slice()
    );
    let inspected = Command::new(bin())
        .args(["cert", "inspect"])
        .arg(&old_cert)
        .output()
        .unwrap();
    assert!(inspected.status.success());
    assert!(String::from_utf8_lossy(&inspected.stdout).contains(&number));
    // `beian cert inspect FILE | head -1`: the closed pipe ends it quietly, no panic.
    let mut child = Command::new(bin())
        .args(["cert", "inspect"])
        .arg(&old_cert)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
    // A file without end is refused at its bound.
    if Path::new("/dev/zero").exists() {
        let o = Command::new(bin())
            .args(["cert", "inspect", "/dev/zero"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("limit"));
    }
    // Verification against the registry: the new certificate is valid for its domains, the
    // old one is superseded, and a copy on another domain is not covered.
    let new_path = tmp.path().join("new.cert");
    std::fs::write(&new_path, &new_cert).unwrap();
    let verdict = |file: &Path, domain: &str| -> (i32, serde_json::Value) {
        let o = run(
            &reg,
            &["cert", "verify", file.to_str().unwrap(), "--domain", domain],
        );
        let v = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        (o.status.code().unwrap(), v)
    };
    let (code, v) = verdict(&new_path, "www.example-bj.org");
    assert_eq!((code, v["status"].as_str()), (0, Some("valid")), "{v}");
    let (code, v) = verdict(&old_cert, "example-bj.com");
    assert_eq!((code, v["status"].as_str()), (1, Some("superseded")), "{v}");
    let (code, v) = verdict(&new_path, "yunduan-blog.com");
    assert_eq!(
        (code, v["status"].as_str()),
        (1, Some("domain_not_covered")),
        "{v}"
    );

    // Duplicate domain of another subject, at import.
    let dup = tmp.path().join("dup.jsonl");
    let line = std::fs::read_to_string(demo())
        .unwrap()
        .lines()
        .nth(2)
        .unwrap()
        .replace("91310115MA1K3XY107", "91310115MA1K3XY999");
    std::fs::write(&dup, format!("{line}\n")).unwrap();
    let out = ok(&reg, &["filing", "import", dup.to_str().unwrap()]);
    assert!(
        out.contains("accepted: 0") && out.contains("line 1: website.domains"),
        "{out}"
    );

    // Cancellation: the ICP user requests, cannot withdraw its own request; the bureau can.
    let n2 = b["service_number"].as_str().unwrap().to_string();
    let owner = format!("icp:{}", b["owner"].as_str().unwrap());
    ok(
        &reg,
        &["filing", "cancel", "--number", &n2, "--reason", "停止运营"],
    );
    assert_eq!(
        show(&reg, "--number", &n2)["status"],
        "cancellation_requested"
    );
    let err = fails(
        &reg,
        &["--as", &owner, "filing", "withdraw", "--number", &n2],
    );
    assert!(err.contains("own request"), "{err}");
    fails(
        &reg,
        &["--as", "bureau:沪", "filing", "withdraw", "--number", &n2],
    );
    ok(&reg, &["filing", "withdraw", "--number", &n2]);
    assert_eq!(show(&reg, "--number", &n2)["status"], "active");
    ok(
        &reg,
        &["filing", "cancel", "--number", &n2, "--reason", "停止运营"],
    );
    ok(&reg, &["--as", "bureau:京", "review", "--approve", &n2]);
    assert_eq!(show(&reg, "--number", &n2)["status"], "cancelled");

    // Revocation: a bureau of another province may not, MIIT (the default) may.
    let c = show(&reg, "--domain", "chenliu.me");
    let n3 = c["service_number"].as_str().unwrap().to_string();
    fails(
        &reg,
        &[
            "--as",
            "bureau:京",
            "filing",
            "revoke",
            "--number",
            &n3,
            "--reason",
            "x",
        ],
    );
    ok(
        &reg,
        &["filing", "revoke", "--number", &n3, "--reason", "虚假信息"],
    );
    assert_eq!(show(&reg, "--number", &n3)["status"], "revoked");

    // Keys, snapshot, audit.
    let ring = tmp.path().join("ring.json");
    let key_id = show(&reg, "--number", &number)["cert_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    ok(&reg, &["keys", "rotate", "--compromised", &key_id]);
    let (code, v) = verdict(&new_path, "example-bj.org");
    assert_eq!(
        (code, v["status"].as_str()),
        (1, Some("compromised_key")),
        "{v}"
    );
    ok(&reg, &["keys", "export", "--out", ring.to_str().unwrap()]);
    let ring: serde_json::Value = serde_json::from_slice(&std::fs::read(&ring).unwrap()).unwrap();
    assert_eq!(ring["keys"].as_array().unwrap().len(), 2);
    assert_eq!(ring["format"], "beian-keyring");
    let snap = tmp.path().join("snap.bin");
    ok(
        &reg,
        &["snapshot", "export", "--out", snap.to_str().unwrap()],
    );
    let s = beian::registry::snapshot::Snapshot::load(&snap, None).unwrap();
    assert_eq!(s.filings.len(), 10);
    assert!(ok(&reg, &["audit", "verify"]).contains("audit chain ok"));

    // Errors: one line, exit 2.
    fails(&reg, &["filing", "show", "--number", "京ICP备99999999号-1"]);
    fails(&reg, &["review", "--approve", "424242"]);
    let err = fails(&tmp.path().join("nowhere"), &["audit", "verify"]);
    assert!(err.contains("nowhere"), "{err}");
    // BEIAN_REGISTRY works instead of --registry.
    let o = Command::new(bin())
        .env("BEIAN_REGISTRY", &reg)
        .args([
            "filing",
            "show",
            "--domain",
            "example-bj.com",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(o.status.success());
}}

fn generated_line(i: usize) -> String {
    format!(
        r#"{{"subject":{{"name":"批量公司{i}","nature":"企业","id_type":"统一社会信用代码","id_number":"91110000{i:09}X","province":"京","address":"北京","contact":{{"name":"某"}}}},"website":{{"name":"站点{i}","homepage":"https://site{i}.com/","domains":["site{i}.com"],"ips":["10.{}.{}.{}"],"providers":["批量接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

#[test]
fn acknowledged_import_lines_survive_kill_9() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    assert!(Command::new(bin())
        .args(["registry", "init"])
        .arg(&reg)
        .output()
        .unwrap()
        .status
        .success());
    let file = tmp.path().join("big.jsonl");
    let total = 200_000;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        for i in 0..total {
            writeln!(w, "{}", generated_line(i)).unwrap();
        }
    }
    let mut child = Command::new(bin())
        .arg("--registry")
        .arg(&reg)
        .args(["filing", "import", "--chunk", "200"])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut acked = 0usize;
    let mut acks = 0;
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.strip_prefix("acknowledged: ") {
            // "N lines read, A accepted, R rejected (durable)"
            let accepted: usize = rest
                .split(", ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            acked = accepted;
            acks += 1;
            if acks == 5 {
                break;
            }
        }
    }
    // SIGKILL: no destructors, no flush.
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the import finished before it was killed; make the file larger"
    );
    assert!(acked >= 1000, "acknowledged {acked}");
    assert!(acked < total);

    let r = beian::registry::Registry::open(&reg).unwrap();
    for i in 0..acked {
        let v = r
            .filing_view(&beian::registry::FilingKey::Domain(format!("site{i}.com")))
            .unwrap_or_else(|e| panic!("acknowledged line {} lost: {e}", i + 1));
        assert_eq!(v.status, "awaiting_access_verification");
    }
    let audit = r.verify_audit().unwrap();
    assert!(audit.ok(), "{audit:?}");
    assert!(audit.records as usize >= 2 * acked);
}

#[test]
fn a_registry_held_by_serve_is_named_with_its_pid_not_a_raw_lock_error() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    init_registry(&reg);
    let mut serve = Command::new(bin())
        .arg("--registry")
        .arg(&reg)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(serve.stderr.take().unwrap()).lines();
    let started = lines.next().unwrap().unwrap();
    assert!(started.contains("API on"), "{started}");
    let err = fails(&reg, &["filing", "import", demo().to_str().unwrap()]);
    assert!(err.contains("holds the registry"), "{err}");
    assert!(err.contains(&format!("pid {}", serve.id())), "{err}");
    assert!(!err.contains("WouldBlock"), "{err}");
    // Read-only judging works beside it, from the snapshot serve keeps fresh.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let lab = [
        "--resolve",
        "site.test:127.0.0.1",
        "--allow-net",
        "127.0.0.1/32",
        "--http-port",
        closed.as_str(),
        "--https-port",
        closed.as_str(),
    ];
    for cmd in [vec!["check"], vec!["scan", "--no-progress"]] {
        let mut args: Vec<&str> = cmd.clone();
        args.extend(lab);
        args.push("site.test");
        let o = run(&reg, &args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_ne!(o.status.code(), Some(2), "{cmd:?}: {stderr}");
        assert!(
            stderr.contains("using the snapshot it keeps"),
            "{cmd:?}: {stderr}"
        );
    }
    // SIGTERM: graceful stop, and the pid file is gone.
    let _ = Command::new("kill")
        .arg(serve.id().to_string())
        .status()
        .unwrap();
    serve.wait().unwrap();
    assert!(!reg.join("serve.pid").exists());
}

#[test]
fn a_damaged_store_is_reported_never_a_panic() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    init_registry(&reg);
    ok(&reg, &["filing", "import", demo().to_str().unwrap()]);
    let sound = run(tmp.path(), &["registry", "check", reg.to_str().unwrap()]);
    assert_eq!(sound.status.code(), Some(0), "{sound:?}");
    assert!(String::from_utf8_lossy(&sound.stdout).contains("ok: no damage found"));
    let db = reg.join("store/db");
    let good = std::fs::read(&db).unwrap();
    let snap_out = tmp.path().join("snap.bin");
    // Overwrite runs of bytes at several places; every command ends with a message.
    let mut seed = 12345u64;
    for round in 0..12 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let at = (seed >> 33) as usize % good.len().min(40_000);
        let mut bad = good.clone();
        for (k, b) in bad.iter_mut().skip(at).take(64).enumerate() {
            *b = (seed as usize).wrapping_add(k * 7) as u8;
        }
        std::fs::write(&db, &bad).unwrap();
        for args in [
            vec!["registry", "check", reg.to_str().unwrap()],
            vec!["--registry", reg.to_str().unwrap(), "audit", "verify"],
            vec![
                "--registry",
                reg.to_str().unwrap(),
                "snapshot",
                "export",
                "--out",
                snap_out.to_str().unwrap(),
            ],
        ] {
            let o = Command::new(bin()).args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&o.stderr);
            assert_ne!(o.status.code(), Some(101), "round {round} {args:?}: {err}");
            assert!(!err.contains("panicked"), "round {round} {args:?}: {err}");
            if o.status.code() == Some(2) {
                assert!(err.lines().any(|l| l.starts_with("error: ")), "{err}");
            }
        }
    }
}

both! {
fn cert_verify_works_offline_from_an_exported_keyring_or_snapshot(tb) {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    init_registry_on(&reg, &tb);
    ok(&reg, &["filing", "import", demo().to_str().unwrap()]);
    for p in ["示例接入商", "华北云", "华东数据", "华南互联"] {
        ok(&reg, &["filing", "verify-access", "--provider", p, "--all"]);
    }
    ok(&reg, &["review", "--auto"]);
    let path = |n: &str| tmp.path().join(n).display().to_string();
    ok(
        &reg,
        &[
            "cert",
            "export",
            "--domain",
            "example-bj.com",
            "--out",
            &path("old.cert"),
        ],
    );
    ok(&reg, &["keys", "export", "--out", &path("ring1.json")]);
    ok(&reg, &["snapshot", "export", "--out", &path("snap.bin")]);
    // No registry at all: only the files a third party would have.
    let offline = |args: &[&str]| {
        Command::new(bin())
            .args(args)
            .env_remove("BEIAN_REGISTRY")
            .output()
            .unwrap()
    };
    let o = offline(&[
        "cert",
        "verify",
        &path("old.cert"),
        "--domain",
        "www.example-bj.com",
        "--keyring",
        &path("ring1.json"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["verdict"]["status"], "valid", "{v}");
    assert_eq!(v["filing_state"], "not_checked", "{v}");
    let o = offline(&[
        "cert",
        "verify",
        &path("old.cert"),
        "--domain",
        "example-bj.com",
        "--keyring",
        &path("ring1.json"),
        "--snapshot",
        &path("snap.bin"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = offline(&[
        "cert",
        "verify",
        &path("old.cert"),
        "--domain",
        "other.cn",
        "--keyring",
        &path("ring1.json"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    // A keyring that is not one is a one-line error.
    std::fs::write(tmp.path().join("bad.json"), "{\"keys\": 3}").unwrap();
    let o = offline(&[
        "cert",
        "verify",
        &path("old.cert"),
        "--domain",
        "example-bj.com",
        "--keyring",
        &path("bad.json"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a beian keyring"));

    // Compromise the key: the old certificate fails, the re-issued one passes, offline.
    let key_id = v["verdict"]["payload"]["key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = ok(&reg, &["keys", "rotate", "--compromised", &key_id]);
    assert!(
        out.contains("certificates re-issued under the new key: "),
        "{out}"
    );
    ok(&reg, &["keys", "export", "--out", &path("ring2.json")]);
    ok(
        &reg,
        &[
            "cert",
            "export",
            "--domain",
            "example-bj.com",
            "--out",
            &path("new.cert"),
        ],
    );
    let o = offline(&[
        "cert",
        "verify",
        &path("old.cert"),
        "--domain",
        "example-bj.com",
        "--keyring",
        &path("ring2.json"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("compromised_key"));
    let o = offline(&[
        "cert",
        "verify",
        &path("new.cert"),
        "--domain",
        "example-bj.com",
        "--keyring",
        &path("ring2.json"),
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // The filers were told, through the outbox (no channel configured here).
    let outbox = ok(&reg, &["outbox"]);
    assert!(outbox.contains("certificate re-issued"), "{outbox}");
    assert!(outbox.contains("filing approved"), "{outbox}");
}}
