//! Sharded scans: a fleet scanned as 4 shards (`beian scan --shard I/4`) and merged (`beian scan
//! merge`) equals the same fleet scanned by one process, record for record apart from timings,
//! over two rounds (the second confirms the first's findings from the history); and the merge
//! refuses missing, duplicate, foreign and truncated shards.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use beian::accounts::Actor;
use beian::fleet::{Fleet, LabResponse, LabSite};
use beian::registry::{FilingKey, Registry, Submitter};
use serde_json::Value;

const FILED: usize = 12;

fn host(i: usize) -> String {
    format!("shard{i}.test")
}

fn line(i: usize) -> String {
    format!(
        r#"{{"subject":{{"name":"分片公司{i}","nature":"企业","id_type":"统一社会信用代码","id_number":"91110000{i:09}X","province":"京","address":"北京","contact":{{"name":"某"}}}},"website":{{"name":"站{i}","homepage":"http://{h}/","domains":["{h}"],"ips":[],"providers":["分片接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#,
        h = host(i)
    )
}

fn page(footer: &str) -> String {
    format!("<html><head><meta charset=\"utf-8\"></head><body><main>欢迎访问本站，这里有很多内容。</main><footer>{footer}</footer></body></html>")
}

/// A registry with 12 filings and its signed snapshot; the fleet: 9 compliant sites, 3 without
/// their number, 4 unfiled sites, and 2 hosts the fleet does not serve (unknown).
fn lab(dir: &Path) -> (PathBuf, Vec<LabSite>, Vec<String>) {
    let now = chrono::Utc::now().timestamp();
    let (registry, _) = Registry::init(&dir.join("reg"), now).unwrap();
    let text: Vec<String> = (0..FILED).map(line).collect();
    let report = registry
        .import_jsonl(
            text.join("\n").as_bytes(),
            Submitter::RowProvider,
            now,
            100,
            &mut |_| {},
        )
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    registry
        .verify_access(&Actor::isp("分片接入商"), "分片接入商", None, now)
        .unwrap();
    registry.review_auto_by_each_bureau(now).unwrap();
    let mut sites = Vec::new();
    for i in 0..FILED {
        let h = host(i);
        let number = registry
            .filing_view(&FilingKey::Domain(h.clone()))
            .unwrap()
            .service_number
            .unwrap();
        let footer = if i % 4 == 3 {
            String::new()
        } else {
            format!("<a href=\"https://beian.miit.gov.cn/\">{number}</a>")
        };
        sites.push(
            LabSite::new(&h)
                .route("/", LabResponse::html(page(&footer)))
                .route(
                    "/cert/bazs.cert",
                    LabResponse::text(registry.certificate_for(&h).unwrap().text.into_bytes()),
                ),
        );
    }
    for i in FILED..FILED + 4 {
        sites.push(LabSite::new(&host(i)).route("/", LabResponse::html(page(""))));
    }
    let snapshot = dir.join("snapshot.bin");
    let snap = registry.snapshot(now).unwrap();
    registry.save_snapshot(&snap, &snapshot).unwrap();
    let targets: Vec<String> = (0..FILED + 6).map(host).collect();
    (snapshot, sites, targets)
}

fn beian(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_beian"))
        .args(args)
        .output()
        .unwrap()
}

fn ran(o: &Output, what: &str) {
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(1),
        "{what}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A record without what depends on timing: times, durations, snapshot age.
fn timeless(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in [
                    "elapsed_ms",
                    "scanned_at",
                    "snapshot_age_s",
                    "started_at",
                    "ttl_s",
                ] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

fn records(path: &Path) -> Vec<Value> {
    let mut out: Vec<Value> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| timeless(serde_json::from_str(l).unwrap()))
        .collect();
    out.sort_by(|a, b| a["target"].as_str().cmp(&b["target"].as_str()));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_merged_equal_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (snapshot, sites, targets) = lab(tmp.path());
    let fleet = Fleet::start(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), sites)
        .await
        .unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut lab_args: Vec<String> = vec![
        "--snapshot".into(),
        snapshot.display().to_string(),
        "--allow-net".into(),
        "127.0.0.1/32".into(),
        "--http-port".into(),
        fleet.addr.port().to_string(),
        "--https-port".into(),
        closed.to_string(),
        "--no-progress".into(),
    ];
    for t in &targets {
        lab_args.push("--resolve".into());
        lab_args.push(format!("{t}:127.0.0.1"));
    }
    let targets_file = tmp.path().join("targets.txt");
    std::fs::write(&targets_file, targets.join("\n") + "\n").unwrap();
    lab_args.push("--targets".into());
    lab_args.push(targets_file.display().to_string());
    let single_hist = tmp.path().join("single");
    let shard_hist = tmp.path().join("sharded");

    let mut first_confirmed = 0;
    for round in 1..=2 {
        let (one, merged, lab_args) = (
            tmp.path().join(format!("one-{round}.jsonl")),
            tmp.path().join(format!("merged-{round}.jsonl")),
            lab_args.clone(),
        );
        let (single_hist, shard_hist, dir) = (
            single_hist.clone(),
            shard_hist.clone(),
            tmp.path().to_path_buf(),
        );
        let textfile = tmp.path().join(format!("merged-{round}.prom"));
        let tf = textfile.clone();
        let (one_c, merged_c) = (one.clone(), merged.clone());
        tokio::task::spawn_blocking(move || {
            let mut a = vec!["--registry".to_string(), single_hist.display().to_string()];
            a.push("scan".into());
            a.extend(lab_args.clone());
            a.extend(["--out".into(), one_c.display().to_string()]);
            ran(&beian(&a), "one process");
            let mut outs = Vec::new();
            for i in 0..4 {
                let out = dir.join(format!("shard-{round}-{i}.jsonl"));
                let mut a = vec!["scan".to_string()];
                a.extend(lab_args.clone());
                a.extend([
                    "--shard".into(),
                    format!("{i}/4"),
                    "--out".into(),
                    out.display().to_string(),
                ]);
                ran(&beian(&a), "shard");
                outs.push(out.display().to_string());
            }
            let mut a = vec![
                "--registry".to_string(),
                shard_hist.display().to_string(),
                "scan".into(),
                "merge".into(),
                "--out".into(),
                merged_c.display().to_string(),
                "--metrics-textfile".into(),
                tf.display().to_string(),
            ];
            a.extend(outs);
            ran(&beian(&a), "merge");
        })
        .await
        .unwrap();
        let (a, b) = (records(&one), records(&merged));
        assert_eq!(a.len(), targets.len());
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x, y, "round {round}");
        }
        let verdicts: Vec<&str> = a.iter().map(|r| r["verdict"].as_str().unwrap()).collect();
        for v in ["compliant", "noncompliant", "unfiled", "unknown"] {
            assert!(
                verdicts.contains(&v),
                "round {round}: no {v} in {verdicts:?}"
            );
        }
        // Round 2 confirms round 1's findings, in both.
        let confirmed = b
            .iter()
            .flat_map(|r| r["findings"].as_array().unwrap().iter())
            .filter(|f| f["confirmation"] == "confirmed")
            .count();
        if round == 2 {
            assert!(
                confirmed > first_confirmed,
                "{confirmed} vs {first_confirmed}"
            );
        }
        first_confirmed = confirmed;
        let prom = std::fs::read_to_string(&textfile).unwrap();
        assert!(
            prom.contains("beian_scan_last_targets{verdict=\"unfiled\"} 4"),
            "{prom}"
        );
    }
    // Both histories hold the same two scans' verdict counts.
    let list = |dir: &Path| -> Vec<Value> {
        let mut metas: Vec<Value> = std::fs::read_dir(dir.join("scans"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect();
        metas.sort_by_key(|m| m["started_at"].as_i64());
        metas
            .into_iter()
            .map(|m| m["summary"]["by_verdict"].clone())
            .collect()
    };
    assert_eq!(list(&single_hist), list(&shard_hist));
    drop(fleet);
}

fn merge_err(dir: &Path, shards: &[PathBuf]) -> String {
    let mut a = vec![
        "scan".to_string(),
        "merge".into(),
        "--no-history".into(),
        "--out".into(),
        dir.join("m.jsonl").display().to_string(),
    ];
    a.extend(shards.iter().map(|p| p.display().to_string()));
    let o = beian(&a);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stderr).unwrap()
}

#[test]
fn the_merge_refuses_incomplete_or_foreign_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // Two shards of an empty target list, scanned against one snapshot (nothing to fetch).
    let now = chrono::Utc::now().timestamp();
    let (registry, _) = Registry::init(&dir.join("reg"), now).unwrap();
    let snap_path = dir.join("snap.bin");
    registry
        .save_snapshot(&registry.snapshot(now).unwrap(), &snap_path)
        .unwrap();
    drop(registry);
    std::fs::write(dir.join("t.txt"), "# nothing\n").unwrap();
    let mut outs = Vec::new();
    for i in 0..2 {
        let out = dir.join(format!("s{i}.jsonl"));
        let o = beian(&[
            "scan".into(),
            "--snapshot".into(),
            snap_path.display().to_string(),
            "--targets".into(),
            dir.join("t.txt").display().to_string(),
            "--shard".into(),
            format!("{i}/2"),
            "--out".into(),
            out.display().to_string(),
            "--no-progress".into(),
        ]);
        ran(&o, "empty shard");
        outs.push(out);
    }
    let e = merge_err(dir, &outs[..1]);
    assert!(e.contains("shard 1 of 2 is missing"), "{e}");
    let e = merge_err(dir, &[outs[0].clone(), outs[0].clone(), outs[1].clone()]);
    assert!(e.contains("given twice"), "{e}");
    // A shard whose snapshot differs.
    let m1 = dir.join("s1.jsonl.shard.json");
    let original = std::fs::read_to_string(&m1).unwrap();
    let mut v: Value = serde_json::from_str(&original).unwrap();
    v["snapshot_sha256"] = "00".into();
    std::fs::write(&m1, v.to_string()).unwrap();
    let e = merge_err(dir, &outs);
    assert!(e.contains("registry snapshot"), "{e}");
    // A shard that claims more records than its file holds (truncated).
    let mut v: Value = serde_json::from_str(&original).unwrap();
    v["targets"] = 3.into();
    std::fs::write(&m1, v.to_string()).unwrap();
    let e = merge_err(dir, &outs);
    assert!(e.contains("incomplete"), "{e}");
    // A shard that never finished, and a garbage manifest.
    let mut v: Value = serde_json::from_str(&original).unwrap();
    v["ended_at"] = Value::Null;
    std::fs::write(&m1, v.to_string()).unwrap();
    assert!(merge_err(dir, &outs).contains("did not finish"));
    std::fs::write(&m1, b"\x00garbage").unwrap();
    assert!(merge_err(dir, &outs).contains("not a shard manifest"));
    std::fs::write(&m1, &original).unwrap();
    // Put back, the two shards merge.
    let mut a = vec!["scan".to_string(), "merge".into(), "--no-history".into()];
    a.extend(outs.iter().map(|p| p.display().to_string()));
    let o = beian(&a);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // --shard without --out, and a bad spec, are refused.
    let o = beian(&[
        "scan".into(),
        "--shard".into(),
        "0/2".into(),
        "x.test".into(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let o = beian(&[
        "scan".into(),
        "--shard".into(),
        "2/2".into(),
        "x.test".into(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}
