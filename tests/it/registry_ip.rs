//! IP filings: persistence across reopen, audit records, the snapshot's `provider_of`, who may
//! report, conflicts, the JSON Lines import (good lines kept), and the CLI.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::process::Command;

use beian::accounts::Actor;
use beian::registry::ipfiling::IpFilingInput;
use beian::registry::model::IpBlockStatus;
use beian::registry::store::RegistryScan;
use beian::registry::{Registry, RegistryError, Submitter};

const NOW: i64 = 1_750_000_000;

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

fn input(provider: &str, network: &str, status: &str) -> IpFilingInput {
    IpFilingInput {
        provider: provider.into(),
        network: network.into(),
        source: Some("CNNIC".into()),
        status: Some(status.into()),
        allocated_to: None,
        province: None,
        city: None,
    }
}

fn seed() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("seeds/demo/ip_filings.jsonl")
}

both! {
fn ip_filings_persist_and_are_audited(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let f = reg
        .record_ip_block(&Actor::isp("华北云"), "华北云", net("203.0.113.0/24"), NOW)
        .unwrap();
    assert_eq!(f.status, IpBlockStatus::Allocated);
    assert_eq!(f.reported_by, Actor::isp("华北云"));
    // Re-reporting the same block by the same provider updates it (same id).
    let mut again = input("华北云", "203.0.113.0/24", "router_port");
    again.source = Some("APNIC".into());
    let g = reg
        .file_ip_block(&Actor::isp(&again.provider), &again, NOW + 1)
        .unwrap();
    assert_eq!(g.id, f.id);
    drop(reg);

    let reg = Registry::open(dir.path()).unwrap();
    let all = reg.ip_filings().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, IpBlockStatus::RouterPort);
    assert_eq!(all[0].source.as_deref(), Some("APNIC"));
    let mut entities = Vec::new();
    reg.store()
        .scan_audit(&mut |_, r| {
            let r = r.unwrap();
            entities.push((r.entity, r.action, r.before.is_some()));
            true
        })
        .unwrap();
    let ip: Vec<_> = entities
        .iter()
        .filter(|(e, _, _)| e == &format!("ip_filing:{}", f.id))
        .collect();
    assert_eq!(ip.len(), 2, "{entities:?}");
    assert_eq!(ip[0].1, "file_ip_block");
    assert!(
        !ip[0].2 && ip[1].2,
        "second record carries the before state"
    );
    assert!(reg.verify_audit().unwrap().ok());
}}

both! {
fn snapshot_attributes_blocks_to_the_hosting_provider(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    reg.record_ip_block(&Actor::isp("华北云"), "华北云", net("203.0.113.0/24"), NOW)
        .unwrap();
    // A more specific block refines the /24: re-allocated to another ISP.
    let mut r = input("华北云", "203.0.113.128/25", "reallocated");
    r.allocated_to = Some("华东数据".into());
    reg.file_ip_block(&Actor::isp(&r.provider), &r, NOW)
        .unwrap();
    // The other side of the re-allocation may file the identical block.
    let mut c = input("华东数据", "203.0.113.128/25", "customer");
    c.allocated_to = Some("上海某公司".into());
    c.province = Some("沪".into());
    reg.file_ip_block(&Actor::isp(&c.provider), &c, NOW)
        .unwrap();
    reg.file_ip_block(
        &Actor::isp("华南互联"),
        &input("华南互联", "192.0.2.0/24", "unallocated"),
        NOW,
    )
    .unwrap();
    let snap = reg.snapshot(NOW).unwrap();
    let ip = |s: &str| s.parse().unwrap();
    assert_eq!(snap.provider_of(ip("203.0.113.9")), Some("华北云"));
    assert_eq!(snap.provider_of(ip("203.0.113.200")), Some("华东数据"));
    assert_eq!(snap.provider_of(ip("192.0.2.7")), None, "unallocated");
    assert_eq!(snap.provider_of(ip("198.51.100.1")), None);
    // The identical /25 from both sides of the re-allocation is one block.
    assert_eq!(snap.ip_blocks.len(), 2);
}}

both! {
fn only_isps_for_themselves_reporters_bureaus_and_miit_may_report(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let n = net("198.51.100.0/24");
    let refused = |r: Result<_, RegistryError>| match r {
        Err(RegistryError::Workflow { refusal, .. }) => refusal.to_string(),
        other => panic!("expected a permission refusal, got {other:?}"),
    };
    let e = refused(reg.record_ip_block(&Actor::icp("someone"), "华北云", n, NOW));
    assert!(e.contains("may not report"), "{e}");
    refused(reg.record_ip_block(&Actor::isp("华东数据"), "华北云", n, NOW));
    assert!(reg.ip_filings().unwrap().is_empty());
    let reporter = Actor::IpReporter {
        name: "报告员".into(),
    };
    let f = reg.record_ip_block(&reporter, "华北云", n, NOW).unwrap();
    assert_eq!(f.reported_by, reporter);
    reg.record_ip_block(&Actor::bureau('京'), "华北云", net("10.0.0.0/8"), NOW)
        .unwrap();
    reg.record_ip_block(&Actor::Miit, "华北云", net("10.1.0.0/16"), NOW)
        .unwrap();
    // The identical block for another provider is a conflict.
    match reg.record_ip_block(&Actor::isp("华南互联"), "华南互联", n, NOW) {
        Err(RegistryError::Input { field, reason }) => {
            assert_eq!(field, "network");
            assert!(reason.contains("华北云"), "{reason}");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(reg.ip_filings().unwrap().len(), 3);
}}

both! {
fn import_keeps_good_lines_and_reports_bad_ones(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let mut text = std::fs::read_to_string(seed()).unwrap();
    text.push_str("not json\n");
    text.push_str(r#"{"provider":"华北云","network":"203.0.113.7/24"}"#);
    text.push('\n');
    text.push_str(r#"{"provider":"华北云","network":"100.64.0.0/10","status":"customer","allocated_to":"某公司"}"#);
    text.push('\n');
    text.push_str(r#"{"provider":"华南互联","network":"203.0.113.0/24","status":"router_port"}"#);
    text.push('\n');
    text.push_str(r#"{"provider":"华北云","network":"100.64.0.0/10","status":"router_port"}"#);
    text.push('\n');
    let r = reg
        .import_ip_jsonl(Cursor::new(text), Submitter::RowProvider, NOW)
        .unwrap();
    let lines: Vec<usize> = r.accepted.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![1, 2, 3, 4, 9]);
    let errs: Vec<(usize, &str)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        errs,
        vec![(5, "json"), (6, "network"), (7, "province"), (8, "network")]
    );
    assert_eq!(reg.ip_filings().unwrap().len(), 5);
    // An ICP user importing is refused line by line.
    let r = reg
        .import_ip_jsonl(
            Cursor::new(r#"{"provider":"x","network":"192.0.2.0/30","status":"router_port"}"#),
            Submitter::Actor(&Actor::icp("someone")),
            NOW,
        )
        .unwrap();
    assert!(r.accepted.is_empty());
    assert_eq!(r.errors[0].field, "provider");
}}

fn beian(reg: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_beian"))
        .arg("--registry")
        .arg(reg)
        .args(args)
        .output()
        .unwrap()
}

both! {
fn cli_add_import_list(tb) {
    let dir = tempfile::tempdir().unwrap();
    let reg = dir.path().join("reg");
    let mut init = vec!["registry".to_string(), "init".into(), reg.display().to_string()];
    init.extend(tb.init_args());
    let init: Vec<&str> = init.iter().map(String::as_str).collect();
    assert!(beian(&reg, &init).status.success());
    let seed = seed();
    let o = beian(&reg, &["ip-filing", "import", seed.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("accepted: 4"));
    let o = beian(
        &reg,
        &[
            "ip-filing",
            "add",
            "--provider",
            "示例接入商",
            "--network",
            "2001:db8::/32",
        ],
    );
    assert!(o.status.success(), "{o:?}");
    let o = beian(
        &reg,
        &[
            "--as",
            "icp:someone",
            "ip-filing",
            "add",
            "--provider",
            "示例接入商",
            "--network",
            "2001:db9::/32",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    let o = beian(&reg, &["ip-filing", "list", "--format", "json"]);
    assert!(o.status.success());
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4]["network"], "2001:db8::/32");
    assert_eq!(rows[4]["status"], "allocated");
}}
