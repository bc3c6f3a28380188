//! Report sinks: JSONL round trip into a summary, CSV columns, scan history and diff.

use std::net::IpAddr;
use std::path::Path;

use beian::cert::{FilingState, Keyring};
use beian::extract::{Extraction, IcpMention};
use beian::number::FilingNumber;
use beian::observation::{
    CertFetch, DnsObservation, FetchError, FetchErrorKind, FetchRecord, Hop, Observation,
};
use beian::registry::snapshot::{Snapshot, SnapshotFiling};
use beian::report::{diff, CsvWriter, JsonlWriter, ScanHistory, ScanRecord, Summary, CSV_COLUMNS};
use beian::verdict::{evaluate, PolicySet};

const NOW: i64 = 1_714_564_800; // 2024-05-01T12:00:00Z

fn snapshot() -> Snapshot {
    let n = FilingNumber::parse("京ICP备12345678号-1").unwrap();
    Snapshot::new(
        NOW,
        Keyring::default(),
        vec![SnapshotFiling {
            subject_number: n.subject_number(),
            service_number: n,
            subject_name: "示例".into(),
            province: '京',
            state: FilingState::Active,
            domains: vec!["example.com".into()],
            ips: vec![],
            providers: vec!["甲".into()],
            cert_serial: Some(1),
            expires_at: Some(NOW + 100),
            operating: false,
            licence: None,
        }],
        vec![],
    )
}

fn fetch(url: &str, status: Option<u16>, error: Option<FetchErrorKind>) -> FetchRecord {
    FetchRecord {
        url: url.into(),
        hops: vec![Hop {
            url: url.into(),
            status,
            address: Some("203.0.113.5:443".parse().unwrap()),
        }],
        status,
        content_type: Some("text/html; charset=utf-8".into()),
        bytes: 1234,
        elapsed_ms: 42,
        error: error.map(|kind| FetchError {
            kind,
            message: format!("{kind:?}"),
        }),
        retry_after: None,
        truncated: false,
    }
}

fn observation(
    host: &str,
    status: Option<u16>,
    error: Option<FetchErrorKind>,
    linked: bool,
) -> Observation {
    let ip: IpAddr = "203.0.113.5".parse().unwrap();
    Observation {
        target: host.into(),
        host: host.into(),
        started_at: NOW,
        dns: DnsObservation {
            answers: vec![ip],
            used: Some(ip),
            error: None,
            blocked: vec![],
            elapsed_ms: 3,
        },
        allow_private: false,
        homepage: vec![fetch(&format!("https://{host}/"), status, error)],
        homepage_used: Some(0),
        charset: Some("utf-8".into()),
        page: Some(Extraction {
            icp: vec![IcpMention {
                number: FilingNumber::parse("京ICP备12345678号-1").unwrap(),
                linked,
                link_host: linked.then(|| "beian.miit.gov.cn".to_string()),
                in_footer: true,
                via: Default::default(),
            }],
            licences: vec![],
            psb: vec![],
            facts: Default::default(),
        }),
        cert: Some(CertFetch {
            path: "/cert/bazs.cert".into(),
            fetch: fetch("/cert/bazs.cert", Some(404), None),
            body: None,
        }),
        cert_misplaced: None,
        render: None,
        elapsed_ms: 99,
    }
}

/// Four targets: noncompliant (cert missing), noncompliant (unlinked + cert missing),
/// unfiled, unknown (tls).
fn records() -> Vec<ScanRecord> {
    let snap = snapshot();
    let policies = PolicySet::embedded().unwrap();
    [
        observation("www.example.com", Some(200), None, true),
        observation("example.com", Some(200), None, false),
        observation("nobody.test", Some(200), None, true),
        observation("down.test", None, Some(FetchErrorKind::Tls), true),
    ]
    .iter()
    .map(|o| ScanRecord::new(o, &evaluate(o, None, &snap, &policies, NOW), None))
    .collect()
}

#[test]
fn record_fields() {
    let r = records();
    let v: serde_json::Value = serde_json::to_value(&r[1]).unwrap();
    assert_eq!(v["target"], "example.com");
    assert_eq!(v["verdict"], "noncompliant");
    assert!(v.get("reason").is_none());
    assert_eq!(v["findings"][0]["code"], "cert_missing");
    assert_eq!(v["findings"][0]["severity"], "low");
    assert_eq!(v["findings"][0]["legal_basis"], "33 Art.13");
    assert_eq!(v["findings"][0]["confirmation"], "confirmed");
    assert!(v["findings"][0]["action"]
        .as_str()
        .unwrap()
        .contains("/cert/bazs.cert"));
    assert!(v["findings"][0]["fine"]["text"].is_string());
    assert_eq!(v["findings"][1]["code"], "number_unlinked");
    assert_eq!(v["findings"][1]["fine"]["min_yuan"], 5000);
    assert_eq!(v["allow_private"], false);
    let unfiled: serde_json::Value = serde_json::to_value(&r[2]).unwrap();
    assert_eq!(unfiled["findings"][0]["code"], "unfiled");
    assert_eq!(unfiled["findings"][0]["confirmation"], "pending 1/2");
    assert_eq!(unfiled["findings"][0]["seen"], 1);
    assert_eq!(unfiled["findings"][0]["confirmations"], 2);
    assert_eq!(v["numbers"]["icp"][0]["number"], "京ICP备12345678号-1");
    assert_eq!(v["numbers"]["icp"][0]["linked"], false);
    assert_eq!(v["numbers"]["icp"][0]["in_footer"], true);
    assert_eq!(v["cert"]["status"], "missing");
    assert_eq!(v["province"], "京");
    assert_eq!(v["evidence"]["address"], "203.0.113.5");
    assert_eq!(v["evidence"]["blocked"], false);
    assert_eq!(v["evidence"]["homepage"][0]["status"], 200);
    assert_eq!(v["evidence"]["homepage"][0]["bytes"], 1234);
    assert_eq!(v["evidence"]["dns"]["answers"][0], "203.0.113.5");
    assert_eq!(v["scanned_at"], "2024-05-01T12:00:00Z");
    assert_eq!(
        v["policy_sha256"],
        PolicySet::embedded()
            .unwrap()
            .for_province(Some('京'))
            .sha256
    );
    let u: serde_json::Value = serde_json::to_value(&r[3]).unwrap();
    assert_eq!(u["verdict"], "unknown");
    assert_eq!(u["reason"], "tls");
    assert_eq!(u["findings"].as_array().unwrap().len(), 0);
}

#[test]
fn jsonl_round_trips_into_the_same_summary() {
    let recs = records();
    let mut w = JsonlWriter::new(Vec::new(), "mem");
    let mut incremental = Summary::new();
    for r in &recs {
        w.write(r).unwrap();
        incremental.add(r);
    }
    assert_eq!(w.written(), 4);
    let bytes = w.into_inner();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(text.lines().count(), 4);
    for (line, r) in text.lines().zip(&recs) {
        assert_eq!(&serde_json::from_str::<ScanRecord>(line).unwrap(), r);
    }
    let read = Summary::from_jsonl(&bytes[..], "mem").unwrap();
    assert_eq!(read, incremental);
    assert_eq!(read.targets, 4);
    assert_eq!(read.by_verdict["noncompliant"], 2);
    assert_eq!(read.by_verdict["unfiled"], 1);
    assert_eq!(read.by_verdict["unknown"], 1);
    assert_eq!(read.by_reason["tls"], 1);
    assert_eq!(read.by_finding["cert_missing"], 2);
    assert_eq!(read.by_finding["number_unlinked"], 1);
    // unfiled asks for two confirmations: pending after one scan.
    assert!(!read.by_finding.contains_key("unfiled"));
    assert_eq!(read.by_pending_finding["unfiled"], 1);
    assert_eq!(read.by_province["京"].noncompliant, 2);
    assert_eq!(read.by_province["(none)"].targets, 2);
    let md = read.to_markdown("Scan 2024-05-01");
    assert!(md.starts_with("# Scan 2024-05-01\n"));
    assert!(md.contains("| noncompliant | 2 | 50.0% |"), "{md}");
    assert!(md.contains("| `cert_missing` | 2 | 50.0% | 0 |"), "{md}");
    assert!(md.contains("| `unfiled` | 0 | 0.0% | 1 |"), "{md}");
    assert!(
        md.contains("| example.com | noncompliant | cert_missing, number_unlinked |"),
        "{md}"
    );
    assert!(
        md.contains("| nobody.test | unfiled | number_mismatch, unfiled (pending 1/2) |"),
        "{md}"
    );
    assert!(!md.contains("| down.test |"), "{md}");
    assert!(md.contains("| tls | 1 |"), "{md}");
    assert!(md.contains("| 京 | 2 | 0 | 2 | 0 | 0 |"), "{md}");
}

#[test]
fn a_broken_line_is_reported_with_its_number() {
    let text = "{\"target\":\"a\",\"verdict\":\"compliant\",\"findings\":[]}\n{not json\n";
    let err = Summary::from_jsonl(text.as_bytes(), "scan.jsonl").unwrap_err();
    assert!(err.to_string().starts_with("scan.jsonl:2: "), "{err}");
}

#[test]
fn csv_has_the_documented_columns() {
    let mut w = CsvWriter::new(Vec::new(), "mem");
    for r in records() {
        w.write(&r).unwrap();
    }
    let bytes = w.into_inner().unwrap();
    let mut rd = csv::Reader::from_reader(&bytes[..]);
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, CSV_COLUMNS);
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    // One row per finding: example.com and nobody.test have two each.
    assert_eq!(rows.len(), 6);
    let col = |row: &csv::StringRecord, name: &str| {
        row[CSV_COLUMNS.iter().position(|c| *c == name).unwrap()].to_string()
    };
    assert_eq!(col(&rows[1], "target"), "example.com");
    assert_eq!(col(&rows[1], "verdict"), "noncompliant");
    assert_eq!(col(&rows[1], "findings"), "cert_missing;number_unlinked");
    assert_eq!(col(&rows[1], "finding"), "cert_missing");
    assert_eq!(col(&rows[2], "finding"), "number_unlinked");
    assert_eq!(col(&rows[2], "target"), "example.com");
    assert_eq!(col(&rows[2], "severity"), "high");
    assert_eq!(col(&rows[2], "confirmation"), "confirmed");
    assert!(col(&rows[2], "legal_basis").contains("33 Art.13"));
    assert!(col(&rows[2], "action").contains("beian.miit.gov.cn"));
    assert!(col(&rows[2], "fine").contains('¥'));
    assert_eq!(col(&rows[0], "finding"), "cert_missing");
    assert_eq!(col(&rows[5], "finding"), "");
    assert_eq!(col(&rows[1], "max_severity"), "high"); // 京: number_unlinked is high
    assert_eq!(col(&rows[1], "icp_numbers"), "京ICP备12345678号-1");
    assert_eq!(col(&rows[1], "number_linked"), "false");
    assert_eq!(col(&rows[1], "cert_status"), "missing");
    assert_eq!(col(&rows[1], "http_status"), "200");
    assert_eq!(col(&rows[1], "address"), "203.0.113.5");
    assert_eq!(col(&rows[3], "finding"), "unfiled");
    assert_eq!(col(&rows[3], "confirmation"), "pending 1/2");
    assert_eq!(col(&rows[5], "verdict"), "unknown");
    assert_eq!(col(&rows[5], "reason"), "tls");
    assert_eq!(col(&rows[5], "http_status"), "");
    assert_eq!(col(&rows[5], "allow_private"), "false");
}

#[test]
fn diff_of_two_small_scans() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report");
    let d = diff(&data.join("scan_a.jsonl"), &data.join("scan_b.jsonl")).unwrap();
    assert_eq!(d.older_targets, 5);
    assert_eq!(d.newer_targets, 5);
    assert_eq!(d.unchanged, 2);
    let targets: Vec<&str> = d.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(
        targets,
        ["a.example", "d.example", "new.example", "gone.example"]
    );
    let a = &d.changes[0];
    assert_eq!(a.new_findings, ["number_unlinked"]);
    assert_eq!(a.resolved_findings, ["number_missing"]);
    // Becoming unknown resolves nothing.
    let dd = &d.changes[1];
    assert_eq!(dd.after.as_ref().unwrap().verdict, "unknown");
    assert!(dd.resolved_findings.is_empty());
    assert!(d.changes[2].before.is_none());
    assert_eq!(d.changes[2].new_findings, ["unfiled"]);
    assert!(d.changes[3].after.is_none());
    let text = d.render_text();
    assert!(
        text.contains("5 -> 5 targets; 4 changed, 2 unchanged"),
        "{text}"
    );
    assert!(
        text.contains("~ a.example: noncompliant -> noncompliant; new: number_unlinked; resolved: number_missing"),
        "{text}"
    );
    assert!(
        text.contains("~ d.example: noncompliant -> unknown (timeout)\n"),
        "{text}"
    );
    assert!(
        text.contains("+ new.example: (absent) -> unfiled; new: unfiled"),
        "{text}"
    );
    assert!(
        text.contains("- gone.example: compliant -> (absent)"),
        "{text}"
    );
    // A scan against itself has no changes.
    let same = diff(&data.join("scan_a.jsonl"), &data.join("scan_a.jsonl")).unwrap();
    assert!(same.is_empty());
    assert_eq!(same.unchanged, 5);
}

#[test]
fn history_records_scans_and_diffs_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = ScanHistory::open(dir.path().join("scans")).unwrap();
    let recs = records();
    let sha = recs[0].policy_sha256.clone();

    let mut w1 = h.start(NOW, &sha).unwrap();
    assert_eq!(w1.id(), "20240501T120000Z");
    for r in &recs[..3] {
        w1.write(r).unwrap();
    }
    let m1 = w1.finish(NOW + 60).unwrap();
    assert_eq!(m1.targets, 3);
    assert_eq!(m1.ended_at, Some(NOW + 60));
    assert_eq!(m1.summary.targets, 3);

    // Same start second: a distinct id.
    let mut w2 = h.start(NOW, &sha).unwrap();
    assert_eq!(w2.id(), "20240501T120000Z-2");
    for r in &recs[1..] {
        w2.write(r).unwrap();
    }
    let m2 = w2.finish(NOW + 120).unwrap();

    let listed = h.list().unwrap();
    assert_eq!(listed, vec![m1.clone(), m2.clone()]);
    let (older, newer) = h.latest_two().unwrap().unwrap();
    assert_eq!(
        (older.id.as_str(), newer.id.as_str()),
        (m1.id.as_str(), m2.id.as_str())
    );
    let d = h.diff(&older.id, &newer.id).unwrap();
    let targets: Vec<&str> = d.changes.iter().map(|c| c.target.as_str()).collect();
    assert_eq!(targets, ["down.test", "www.example.com"]);
    assert_eq!(d.unchanged, 2);
    // The stored file is the same JSONL a summary reads.
    let s = Summary::from_jsonl_path(&h.records_path(&m2.id).unwrap()).unwrap();
    assert_eq!(s, m2.summary);
    // Ids cannot escape the directory.
    assert!(h.records_path("../x").is_err());
    assert!(h.meta("nope").is_err());
}

#[test]
fn scopes_keep_their_own_baselines_and_old_scans_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let h = ScanHistory::open(dir.path().join("scans")).unwrap();
    let recs = records();
    let sha = recs[0].policy_sha256.clone();
    let mut ids = Vec::new();
    for (i, scope) in ["filed", "province:京", "filed", "filed", "filed"]
        .iter()
        .enumerate()
    {
        let t = NOW + i as i64 * 100;
        let mut w = h.start(t, &sha).unwrap();
        w.describe("schedule", Some(scope.to_string())).unwrap();
        for r in &recs {
            w.write(r).unwrap();
        }
        let m = h.seal(w, t + 10).unwrap();
        // Sealing records what is new since the last scan of the same scope: nothing here.
        assert_eq!(m.new_findings, Some(Default::default()), "{scope}");
        ids.push(m.id);
    }
    assert_eq!(
        h.last_completed_in(Some("province:京"))
            .unwrap()
            .unwrap()
            .id,
        ids[1]
    );
    assert_eq!(
        h.last_completed_in(Some("filed")).unwrap().unwrap().id,
        ids[4]
    );
    // Keep two of "filed": the first two filed scans go, the province's scan stays.
    let removed = h.prune("filed", 2).unwrap();
    assert_eq!(removed, vec![ids[0].clone(), ids[2].clone()]);
    let left: Vec<String> = h.list().unwrap().into_iter().map(|m| m.id).collect();
    assert_eq!(left, vec![ids[1].clone(), ids[3].clone(), ids[4].clone()]);
    assert!(h.prune("filed", 0).unwrap().is_empty());
}
