//! The scanner end to end on loopback: the demo fleet (every finding code, planted and found),
//! a GBK homepage, and `beian scan --resume` after the process is killed mid-scan.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use beian::crawl::ScanConfig;
use beian::fleet::{Fleet, LabResponse, LabSite};
use beian::registry::snapshot::Snapshot;
use beian::scan::ScanContext;
use beian::verdict::PolicySet;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An empty registry view, signed with a throwaway key (the snapshot carries its keyring).
fn save_empty_snapshot(path: &std::path::Path) {
    let key = ed25519_dalek::SigningKey::from_bytes(&[3u8; 32]);
    let vk = key.verifying_key();
    let id = beian::cert::key_id_for(&vk);
    let mut ring = beian::cert::Keyring::default();
    ring.insert(beian::cert::PublicKeyEntry::new(id.clone(), &vk, 1))
        .unwrap();
    let now = chrono::Utc::now().timestamp();
    Snapshot::new(now, ring, vec![], vec![])
        .save_signed(path, &id, &key)
        .unwrap();
}

fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind(SocketAddr::new(LOOPBACK, 0)).unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn the_demo_finds_exactly_what_it_planted_for_every_finding_code() {
    let dir = tempfile::tempdir().unwrap();
    let now = chrono::Utc::now().timestamp();
    let outcome = rt().block_on(beian::demo::run(dir.path(), now)).unwrap();
    for s in &outcome.sites {
        assert!(
            s.agrees(),
            "{}: planted {:?} {:?}, found {:?} {:?}",
            s.host,
            s.planted_verdict,
            s.planted,
            s.found_verdict,
            s.found
        );
    }
    // Every finding code is planted somewhere (and so found).
    let planted: std::collections::BTreeSet<&str> = outcome
        .sites
        .iter()
        .flat_map(|s| s.planted.iter().map(String::as_str))
        .collect();
    let missing: Vec<&str> = beian::verdict::FindingCode::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|c| !planted.contains(c))
        .collect();
    assert!(
        missing.is_empty(),
        "finding codes without a demo site: {missing:?}"
    );
    assert!(
        outcome
            .sites
            .iter()
            .filter(|s| s.found_verdict == "compliant" && s.found.is_empty())
            .count()
            >= 3
    );
    // Sites that could not be checked are unknown, never unfiled.
    for host in ["waf.test", "broken.test", "guarded.test", "spa.test"] {
        let s = outcome.sites.iter().find(|s| s.host == host).unwrap();
        assert!(
            s.found_verdict.starts_with("unknown ("),
            "{host}: {}",
            s.found_verdict
        );
    }
    the_records_are_the_golden_ones(&outcome.records_jsonl);
}

/// What a scan checked and concluded for each demo site — verdicts, findings, the numbers
/// read (linked, in the footer, how), certificate status, fetch statuses and sizes, charsets
/// — equals `tests/data/fleet/demo-records.jsonl`. Timings, times, addresses and ports (which
/// vary from run to run) are left out. A change of the scanner that changes what is checked
/// shows here as a diff; `BEIAN_UPDATE_GOLDEN=1` rewrites the file for a deliberate change.
fn the_records_are_the_golden_ones(records_jsonl: &str) {
    let mut records: Vec<String> = records_jsonl
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            stable(&mut v);
            serde_json::to_string(&v).unwrap()
        })
        .collect();
    records.sort();
    let got = records.join("\n") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fleet/demo-records.jsonl");
    if std::env::var_os("BEIAN_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap();
    let want: Vec<&str> = want.lines().collect();
    let got: Vec<&str> = got.lines().collect();
    for (w, g) in want.iter().zip(&got) {
        assert_eq!(
            g, w,
            "a demo record changed (BEIAN_UPDATE_GOLDEN=1 rewrites the file)"
        );
    }
    assert_eq!(got.len(), want.len(), "number of demo records");
}

/// `ed25519:<hex id>` → `ed25519:KEY`.
fn key_ids_out(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("ed25519:") {
        out.push_str(&rest[..i + 8]);
        rest = &rest[i + 8..];
        let hex = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        if hex > 0 {
            out.push_str("KEY");
            rest = &rest[hex..];
        }
    }
    out.push_str(rest);
    out
}

/// Drop what varies between runs of the same scan: timings, times, addresses, ports.
fn stable(v: &mut serde_json::Value) {
    const VARYING: [&str; 7] = [
        "elapsed_ms",
        "scanned_at",
        "snapshot_age_s",
        "started_at",
        "address",
        "answers",
        "used",
    ];
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|k, _| !VARYING.contains(&k.as_str()));
            for x in map.values_mut() {
                stable(x);
            }
        }
        serde_json::Value::Array(xs) => xs.iter_mut().for_each(stable),
        serde_json::Value::String(s) => {
            // `host:PORT` of the loopback fleet; Unix times (ten digits) in messages; the ids
            // of the demo's fresh keys.
            let mut out = String::with_capacity(s.len());
            let keyless = key_ids_out(s);
            let mut rest = keyless.as_str();
            let mut after_colon = false;
            while let Some(c) = rest.chars().next() {
                let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                if after_colon && (4..=5).contains(&digits) {
                    out.push_str("PORT");
                    rest = &rest[digits..];
                } else if digits == 10 {
                    out.push_str("TIME");
                    rest = &rest[digits..];
                } else if digits > 0 {
                    out.push_str(&rest[..digits]);
                    rest = &rest[digits..];
                } else {
                    out.push(c);
                    rest = &rest[c.len_utf8()..];
                }
                after_colon = c == ':' && digits == 0;
            }
            *s = out;
        }
        _ => {}
    }
}

#[test]
fn a_gbk_homepage_is_decoded_and_its_number_found() {
    let rt = rt();
    rt.block_on(async {
        let (body, _, _) = encoding_rs::GBK.encode(
            "<html><head><meta charset=\"gbk\"><title>测试</title></head><body><div class=\"footer\">\
             <a href=\"https://beian.miit.gov.cn/\">粤ICP备12345678号-1</a></div></body></html>",
        );
        let site = LabSite::new("gbk.test").route(
            "/",
            LabResponse {
                status: 200,
                content_type: "text/html; charset=gbk".into(),
                headers: vec![],
                body: body.into_owned(),
            },
        );
        let fleet = Fleet::start(SocketAddr::new(LOOPBACK, 0), vec![site]).await.unwrap();
        let mut config = ScanConfig::default();
        config.overrides.insert("gbk.test".into(), vec![LOOPBACK]);
        config.allow_nets = vec!["127.0.0.1/32".parse().unwrap()];
        config.http_port = fleet.addr.port();
        config.https_port = closed_port();
        let ctx = ScanContext::new(
            config,
            Arc::new(Snapshot::default()),
            Arc::new(PolicySet::embedded().unwrap()),
        )
        .unwrap();
        let r = ctx.check("gbk.test").await;
        assert_eq!(r.observation.charset.as_deref(), Some("gbk"));
        let page = r.observation.page.as_ref().expect("extracted");
        assert_eq!(page.icp[0].number.to_string(), "粤ICP备12345678号-1");
        assert!(page.icp[0].linked && page.icp[0].in_footer);
        // Not in the (empty) registry: unfiled, and the shown number cannot match.
        assert_eq!(r.assessment.verdict.as_str(), "unfiled");
        // https was tried first and failed; http was used.
        assert_eq!(r.observation.homepage.len(), 2);
        assert!(r.observation.homepage[0].url.starts_with("https://"));
    });
}

fn count_lines(path: &std::path::Path) -> usize {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

#[test]
fn resume_after_kill_scans_every_target_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.bin");
    save_empty_snapshot(&snap);
    let rt = rt();
    let fleet = rt
        .block_on(Fleet::start(
            SocketAddr::new(LOOPBACK, 0),
            vec![LabSite::new("127.0.0.1").route("/", LabResponse::html("<p>hi</p>"))],
        ))
        .unwrap();
    let n = 3000;
    let targets = dir.path().join("targets.txt");
    let lines: Vec<String> = (0..n)
        .map(|i| format!("http://127.0.0.1:{}/?site={i}", fleet.addr.port()))
        .collect();
    std::fs::write(&targets, lines.join("\n") + "\n").unwrap();
    let out = dir.path().join("scan.jsonl");
    let registry = dir.path().join("reg");
    let scan = |resume: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_beian"));
        c.arg("--registry")
            .arg(&registry)
            .args(["scan", "--snapshot"])
            .arg(&snap)
            .arg("--targets")
            .arg(&targets)
            .arg("--out")
            .arg(&out)
            .args([
                "--allow-net",
                "127.0.0.1/32",
                "--concurrency",
                "2",
                "--host-rate",
                "0",
                "--no-progress",
            ])
            .env_remove("BEIAN_REGISTRY")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if resume {
            c.arg("--resume");
        }
        c
    };
    let mut child = scan(false).spawn().unwrap();
    let start = Instant::now();
    while count_lines(&out) < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "scan made no progress"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("scan ended before it could be killed: {status}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = count_lines(&out);
    assert!(before < n, "the scan finished before the kill");
    let status = scan(true).status().unwrap();
    assert!(
        status.code() == Some(1) || status.code() == Some(0),
        "{status}"
    );
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in std::io::BufReader::new(std::fs::File::open(&out).unwrap()).lines() {
        let line = line.unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&line).expect("every line is a whole record");
        *seen
            .entry(v["target"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(seen.len(), n, "every target scanned");
    assert!(seen.values().all(|&c| c == 1), "no target scanned twice");
    // The history holds one finished scan with every target, not only the resumed ones.
    let history = beian::report::ScanHistory::open(registry.join("scans")).unwrap();
    let scans = history.list().unwrap();
    assert_eq!(scans.len(), 1, "{scans:?}");
    assert!(scans[0].ended_at.is_some());
    assert_eq!(scans[0].targets, n as u64);
    assert_eq!(scans[0].summary.targets, n as u64);
    assert_eq!(
        count_lines(&history.records_path(&scans[0].id).unwrap()),
        n,
        "every record in the history entry"
    );
    drop(fleet);
}

#[test]
fn scan_writes_csv_markdown_and_a_metrics_textfile_with_exit_code_1_on_findings() {
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.bin");
    save_empty_snapshot(&snap);
    let rt = rt();
    let fleet = rt
        .block_on(Fleet::start(
            SocketAddr::new(LOOPBACK, 0),
            vec![LabSite::new("127.0.0.1")
                .route("/", LabResponse::html("<footer>京ICP备12345678号</footer>"))],
        ))
        .unwrap();
    let target = format!("http://127.0.0.1:{}/", fleet.addr.port());
    // A registry directory only for the scan history (the snapshot is given separately).
    let registry = dir.path().join("reg");
    let run = |format: &str, extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_beian"))
            .arg("--registry")
            .arg(&registry)
            .args(["scan", "--snapshot"])
            .arg(&snap)
            .args([
                "--allow-net",
                "127.0.0.1/32",
                "--no-progress",
                "--format",
                format,
            ])
            .args(extra)
            .arg(&target)
            .env_remove("BEIAN_REGISTRY")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let textfile = dir.path().join("beian.prom");
    let (code, csv, stderr) = run("csv", &["--metrics-textfile", textfile.to_str().unwrap()]);
    assert_eq!(code, Some(1), "unfiled is a finding: {stderr}");
    assert!(stderr.contains("address guard is relaxed"), "{stderr}");
    let mut lines = csv.lines();
    assert!(lines.next().unwrap().starts_with("target,"));
    let row = lines.next().unwrap();
    assert!(row.contains("unfiled") && row.contains(&target), "{row}");
    // The national policy asks for two confirmations of `unfiled`: after one scan it is
    // pending, and pending findings do not count in the metrics (so they cannot alert).
    assert!(row.contains("pending 1/2"), "{row}");
    let prom = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        prom.contains("beian_scan_targets_total{verdict=\"unfiled\"} 1"),
        "{prom}"
    );
    assert!(
        !prom.contains("beian_scan_findings_total{code=\"unfiled\""),
        "{prom}"
    );
    // The second scan confirms it: now it counts, and it is new against the first scan.
    let (code, md, _) = run("md", &["--metrics-textfile", textfile.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(md.contains("| unfiled | 1 |"), "{md}");
    assert!(md.contains("| `unfiled` | 1 | 100.0% | 0 |"), "{md}");
    assert!(md.contains("| 127.0.0.1 | unfiled |"), "{md}");
    let prom = std::fs::read_to_string(&textfile).unwrap();
    assert!(
        prom.contains("beian_scan_findings_total{code=\"unfiled\",province=\"none\",severity="),
        "{prom}"
    );
    assert!(
        prom.contains("beian_scan_last_new_findings{code=\"unfiled\"} 1"),
        "{prom}"
    );
    let (code, jsonl, _) = run("jsonl", &[]);
    assert_eq!(code, Some(1));
    let v: serde_json::Value = serde_json::from_str(jsonl.lines().next().unwrap()).unwrap();
    assert_eq!(v["verdict"], "unfiled");
    assert_eq!(v["numbers"]["icp"][0]["number"], "京ICP备12345678号");
    assert_eq!(v["findings"][0]["code"], "unfiled");
    assert_eq!(v["findings"][0]["confirmation"], "confirmed");
    assert_eq!(v["findings"][0]["seen"], 3);
    assert_eq!(v["findings"][0]["severity"], "critical");
    assert_eq!(v["findings"][0]["legal_basis"], "292 Art.19; 33 Art.22");
    // The guard was relaxed with --allow-net, and the record says so.
    assert_eq!(v["allow_private"], true);
    assert!(v["policy_sha256"].as_str().unwrap().len() == 64);
    drop(fleet);
}

#[test]
fn bad_usage_exits_2_with_one_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_beian"))
        .args(["scan", "example.com"])
        .env_remove("BEIAN_REGISTRY")
        .env_remove("BEIAN_SNAPSHOT")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("--registry"), "{err}");
}
