//! Registry library: import, indexes, numbering, batch conflicts, audit-chain tamper
//! detection, snapshots, key rotation, persistence across reopen, typed generic records.

use std::io::Cursor;
use std::path::PathBuf;

use beian::accounts::Actor;
use beian::cert::{FilingLookup, FilingState};
use beian::domain::Domain;
use beian::registry::store::{RegistryRead, RegistryScan, RegistryStore};
use beian::registry::{DefaultRole, FilingKey, Registry, Submitter};

const NOW: i64 = 1_750_000_000;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/registry")
        .join(name)
}

pub(crate) fn import(reg: &Registry, file: &str) -> beian::registry::ImportReport {
    let text = std::fs::read_to_string(data(file)).unwrap();
    reg.import_jsonl(
        Cursor::new(text),
        Submitter::RowProvider,
        NOW,
        3,
        &mut |_| {},
    )
    .unwrap()
}

pub(crate) fn approve_all(reg: &Registry) {
    for p in [
        "接入甲",
        "接入乙",
        "接入丙",
        "示例接入商",
        "华北云",
        "华东数据",
        "华南互联",
    ] {
        reg.verify_access(&Actor::isp(p), p, None, NOW).unwrap();
    }
    // Pre-approval documents are confirmed by a pre-approval user first.
    for f in reg.pre_approval_queue().unwrap() {
        for c in f.categories.iter().filter(|c| c.pre_approval) {
            reg.check_pre_approval(
                &reg.acting_as(&FilingKey::Id(f.id), DefaultRole::PreApproval)
                    .unwrap(),
                &FilingKey::Id(f.id),
                &c.category,
                None,
                NOW,
            )
            .unwrap();
        }
    }
    reg.review_auto_by_each_bureau(NOW).unwrap();
}

both! {
fn batch_import_keeps_good_rows_and_reports_conflicts(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let r = import(&reg, "conflicts.jsonl");
    let lines: Vec<usize> = r.accepted.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, vec![1, 4]);
    let errs: Vec<(usize, &str)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        errs,
        vec![
            (2, "website.domains"),
            (3, "json"),
            (5, "website.domains[0]")
        ]
    );
    assert!(
        r.errors[0].reason.contains("another subject"),
        "{}",
        r.errors[0].reason
    );
    // Same subject → one subject number, websites -1 and -2.
    approve_all(&reg);
    let a = reg
        .filing_view(&FilingKey::Domain("jia.com".into()))
        .unwrap();
    let b = reg
        .filing_view(&FilingKey::Domain("www.jia2.com".into()))
        .unwrap();
    assert_eq!(a.subject_number, b.subject_number);
    assert!(a.service_number.as_deref().unwrap().ends_with("号-1"));
    assert!(b.service_number.as_deref().unwrap().ends_with("号-2"));
    assert!(reg
        .filing_view(&FilingKey::Domain("yi.com".into()))
        .is_err());
}}

both! {
fn indexes_find_filings_by_domain_number_and_ip(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let r = import(&reg, "filings.jsonl");
    assert_eq!(r.accepted.len(), 10);
    approve_all(&reg);
    let store = reg.store();
    let id = store
        .filing_by_domain(&Domain::parse("example-bj.net").unwrap())
        .unwrap()
        .unwrap();
    let f = store.filing(id).unwrap().unwrap();
    let n = f.number.clone().unwrap();
    assert_eq!(store.filing_by_number(&n).unwrap(), Some(id));
    assert_eq!(
        store.filings_by_ip("203.0.113.7".parse().unwrap()).unwrap(),
        vec![id]
    );
    assert!(store
        .filings_by_ip("203.0.113.99".parse().unwrap())
        .unwrap()
        .is_empty());
    assert_eq!(
        store.subject_by_number(&n.subject_number()).unwrap(),
        Some(f.subject_id)
    );
    // A change moves the domain index with it once approved.
    reg.change_domains(
        &reg.acting_as(&FilingKey::Id(id), DefaultRole::Owner)
            .unwrap(),
        &FilingKey::Id(id),
        &["moved.com".into()],
        &["example-bj.net".into()],
        NOW,
    )
    .unwrap();
    reg.review_auto_by_each_bureau(NOW).unwrap();
    assert_eq!(
        store
            .filing_by_domain(&Domain::parse("moved.com").unwrap())
            .unwrap(),
        Some(id)
    );
    assert_eq!(
        store
            .filing_by_domain(&Domain::parse("example-bj.net").unwrap())
            .unwrap(),
        None
    );
    // The www. line was stripped to its registrable domain.
    assert!(reg
        .filing_view(&FilingKey::Domain("nanshan-demo.cn".into()))
        .is_ok());
}}

both! {
fn audit_chain_detects_tampering_and_names_the_record(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    approve_all(&reg);
    let ok = reg.verify_audit().unwrap();
    assert!(ok.ok(), "{ok:?}");
    assert!(ok.records > 20);
    let store = reg.store();
    let raw = store.audit_record_bytes_for_tests(7).unwrap().unwrap();
    let text = String::from_utf8(raw.clone()).unwrap();
    assert!(text.contains("\"at\":1750000000"));
    let forged = text.replace("\"at\":1750000000", "\"at\":1750000001");
    store
        .overwrite_audit_record_for_tests(7, forged.as_bytes())
        .unwrap();
    let bad = reg.verify_audit().unwrap();
    assert_eq!(bad.first_broken.as_ref().map(|b| b.0), Some(7), "{bad:?}");
    // Restoring the record restores the chain.
    store.overwrite_audit_record_for_tests(7, &raw).unwrap();
    assert!(reg.verify_audit().unwrap().ok());
}}

both! {
fn records_edited_added_or_removed_outside_the_log_are_reported(tb) {
    use beian::registry::store::codec;
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    approve_all(&reg);
    let ok = reg.verify_audit().unwrap();
    assert!(ok.ok(), "{ok:?}");
    assert!(ok.state_records > 10, "{ok:?}");
    let store = reg.store();
    let key = |p: &str, id: u64| [p.as_bytes(), &id.to_be_bytes()[..]].concat();

    // A forged domain on filing 1, written straight into the store.
    let mut f = store.filing(1).unwrap().unwrap();
    let original = codec::encode(&f).unwrap();
    f.domains = vec![beian::domain::Domain::parse("forged-domain.cn").unwrap()];
    store
        .overwrite_record_for_tests(&key("f/", 1), Some(&codec::encode(&f).unwrap()))
        .unwrap();
    let bad = reg.verify_audit().unwrap();
    assert!(!bad.ok());
    assert!(
        bad.first_broken.is_none(),
        "the chain itself is intact: {bad:?}"
    );
    assert_eq!(bad.state_problems, 1, "{bad:?}");
    assert!(
        bad.state[0].starts_with("filing:1: ") && bad.state[0].contains("edited"),
        "{bad:?}"
    );
    store
        .overwrite_record_for_tests(&key("f/", 1), Some(&original))
        .unwrap();
    assert!(reg.verify_audit().unwrap().ok());

    // A filing added, and a subject removed, outside the log.
    let mut extra = store.filing(2).unwrap().unwrap();
    extra.id = 999;
    store
        .overwrite_record_for_tests(&key("f/", 999), Some(&codec::encode(&extra).unwrap()))
        .unwrap();
    let subject = store.subject(1).unwrap().unwrap();
    store
        .overwrite_record_for_tests(&key("s/", 1), None)
        .unwrap();
    let bad = reg.verify_audit().unwrap();
    assert_eq!(bad.state_problems, 2, "{bad:?}");
    let all = bad.state.join("\n");
    assert!(
        all.contains("filing:999: ") && all.contains("added"),
        "{all}"
    );
    assert!(
        all.contains("subject:1: ") && all.contains("removed"),
        "{all}"
    );
    store
        .overwrite_record_for_tests(&key("f/", 999), None)
        .unwrap();
    store
        .overwrite_record_for_tests(&key("s/", 1), Some(&codec::encode(&subject).unwrap()))
        .unwrap();
    assert!(reg.verify_audit().unwrap().ok());

    // Any flipped byte of any filing's stored record is caught.
    let mut ids = Vec::new();
    store
        .scan_filings(&mut |f| {
            ids.push(f.id);
            true
        })
        .unwrap();
    for id in ids {
        let f = store.filing(id).unwrap().unwrap();
        let good = codec::encode(&f).unwrap();
        let mut flipped = good.clone();
        let i = good.len() / 2;
        flipped[i] ^= 0x01;
        store
            .overwrite_record_for_tests(&key("f/", id), Some(&flipped))
            .unwrap();
        let r = reg.verify_audit().unwrap();
        assert_eq!(r.state_problems, 1, "filing {id}: {r:?}");
        store
            .overwrite_record_for_tests(&key("f/", id), Some(&good))
            .unwrap();
    }
    assert!(reg.verify_audit().unwrap().ok());
}}

both! {
fn every_mutation_is_audited_with_before_and_after(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "conflicts.jsonl");
    let before = reg.verify_audit().unwrap().records;
    reg.verify_access(&Actor::isp("接入甲"), "接入甲", None, NOW)
        .unwrap();
    let after = reg.verify_audit().unwrap().records;
    assert_eq!(after, before + 2, "two filings verified → two records");
    let mut last = None;
    reg.store()
        .scan_audit(&mut |_, r| {
            last = Some(r.unwrap());
            true
        })
        .unwrap();
    let last = last.unwrap();
    assert_eq!(last.actor, "isp:接入甲");
    assert_eq!(last.action, "verify_access");
    assert!(last.before.is_some() && last.after.is_some());
    assert_ne!(last.before, last.after);
}}

both! {
fn snapshot_holds_approved_filings_and_verifies_lookup(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    // Only 示例接入商 verifies: filings that also need another provider stay unapproved.
    reg.verify_access(&Actor::isp("示例接入商"), "示例接入商", None, NOW)
        .unwrap();
    reg.review_auto_by_each_bureau(NOW).unwrap();
    let f = reg
        .filing_view(&FilingKey::Domain("chenliu.me".into()))
        .unwrap();
    let number = beian::number::FilingNumber::parse(f.service_number.as_deref().unwrap()).unwrap();
    reg.revoke(
        &reg.acting_as(&FilingKey::Number(number.clone()), DefaultRole::Miit)
            .unwrap(),
        &FilingKey::Number(number.clone()),
        "虚假信息",
        NOW,
    )
    .unwrap();
    let snap = reg.snapshot(NOW).unwrap();
    // 3 approved (example-bj, chenliu, xihu); shop-bj and nanshan-bbs wait for a second provider.
    assert_eq!(snap.filings.len(), 3, "{:?}", snap.filings);
    let path = dir.path().join("snap.bin");
    reg.save_snapshot(&snap, &path).unwrap();
    let ring = reg.keyring();
    let back = beian::registry::snapshot::Snapshot::load(&path, Some(&ring)).unwrap();
    // One flipped bit anywhere, or a truncation, and the snapshot is refused.
    let good = std::fs::read(&path).unwrap();
    for i in [0, 12, 20, good.len() / 2, good.len() - 1] {
        let mut b = good.clone();
        b[i] ^= 0x10;
        std::fs::write(&path, &b).unwrap();
        let e = beian::registry::snapshot::Snapshot::load(&path, Some(&ring)).unwrap_err();
        assert!(!e.to_string().is_empty());
    }
    std::fs::write(&path, &good[..good.len() - 3]).unwrap();
    assert!(beian::registry::snapshot::Snapshot::load(&path, Some(&ring)).is_err());
    assert_eq!(
        back.filing_facts(&number).unwrap().state,
        FilingState::Revoked
    );
    let live = back.lookup_host("www.example-bj.com").unwrap();
    assert_eq!(live.state, FilingState::Active);
    assert_eq!(live.cert_serial, Some(1));
    assert!(back.lookup_host("shop-bj.cn").is_none());
    assert_eq!(back.keyring, reg.keyring());
    assert!(reg.lookup().filing_facts(&live.service_number).is_some());
}}

both! {
fn rotation_signs_new_certificates_with_the_new_key_and_survives_reopen(tb) {
    let dir = tempfile::tempdir().unwrap();
    let first_key;
    {
        let (reg, init) = tb.init(dir.path(), NOW).unwrap();
        first_key = init.key_id.clone();
        import(&reg, "conflicts.jsonl");
        approve_all(&reg);
        let c = reg.certificate_for("jia.com").unwrap();
        assert_eq!(c.key_id, first_key);
        let r = reg
            .rotate_keys(&Actor::Miit, Some(&first_key), NOW)
            .unwrap();
        assert_ne!(r.current, first_key);
        assert!(reg.keyring().keys[&first_key].compromised);
        let e = reg
            .rotate_keys(&Actor::bureau('京'), None, NOW)
            .unwrap_err();
        assert!(e.to_string().contains("only MIIT"), "{e}");
    }
    let reg = Registry::open(dir.path()).unwrap();
    assert_eq!(reg.keyring().keys.len(), 2);
    reg.change_domains(
        &reg.acting_as(&FilingKey::Domain("jia.com".into()), DefaultRole::Owner)
            .unwrap(),
        &FilingKey::Domain("jia.com".into()),
        &["jia3.com".into()],
        &[],
        NOW,
    )
    .unwrap();
    reg.review_auto_by_each_bureau(NOW).unwrap();
    let c = reg.certificate_for("jia3.com").unwrap();
    // Serial 2 was the re-issue when its key was compromised; 3 is the change.
    assert_eq!(c.serial, 3);
    assert_ne!(c.key_id, first_key);
    assert!(reg.verify_audit().unwrap().ok());
    // The secret key file is private.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let key = dir
            .path()
            .join("keys")
            .join(beian::registry::issuance::key_file_name(&first_key));
        assert_eq!(
            std::fs::metadata(key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // A second init of the same directory is refused.
    assert!(tb.init(dir.path(), NOW).is_err());
    // Store transactions see their own writes before commit.
    let txn = reg.store().begin().unwrap();
    drop(txn);
}}

both! {
fn an_import_line_that_is_not_utf8_is_that_lines_error_and_a_bom_is_accepted(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let text = std::fs::read_to_string(data("filings.jsonl")).unwrap();
    let good: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(good.len() >= 2);
    let mut bytes = b"\xef\xbb\xbf".to_vec();
    bytes.extend_from_slice(good[0].as_bytes());
    bytes.extend_from_slice(b"\r\n");
    // A GBK-encoded line, as a spreadsheet export in the wrong encoding gives.
    let (gbk, _, _) = encoding_rs::GBK.encode(good[1]);
    bytes.extend_from_slice(&gbk);
    bytes.push(b'\n');
    bytes.extend_from_slice(&vec![b'x'; beian::registry::MAX_IMPORT_LINE + 10]);
    bytes.push(b'\n');
    for line in &good[1..] {
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
    }
    let r = reg
        .import_jsonl(
            Cursor::new(bytes),
            Submitter::RowProvider,
            NOW,
            2,
            &mut |_| {},
        )
        .unwrap();
    let errs: Vec<(usize, &str)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(errs, vec![(2, "(line)"), (3, "(line)")], "{:?}", r.errors);
    assert!(
        r.errors[0].reason.contains("UTF-8"),
        "{}",
        r.errors[0].reason
    );
    assert!(r.errors[1].reason.contains("longer than"));
    let accepted: Vec<usize> = r.accepted.iter().map(|(l, _)| *l).collect();
    assert_eq!(accepted[0], 1, "the BOM line is accepted");
    assert_eq!(accepted.len(), good.len(), "every good line is kept");
}}

both! {
fn an_ip_only_filing_is_numbered_without_a_certificate_and_never_stops_a_batch(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let text = std::fs::read_to_string(data("filings.jsonl")).unwrap();
    let first = text.lines().next().unwrap();
    let mut v: serde_json::Value = serde_json::from_str(first).unwrap();
    let provider = v["website"]["providers"][0].as_str().unwrap().to_string();
    v["website"]["domains"] = serde_json::json!([]);
    v["website"]["ips"] = serde_json::json!(["203.0.113.77"]);
    v["website"]["homepage"] = serde_json::json!("http://203.0.113.77/");
    let lines = format!(
        "{}\n{}\n",
        serde_json::to_string(&v).unwrap(),
        text.lines().nth(1).unwrap()
    );
    let r = reg
        .import_jsonl(
            Cursor::new(lines),
            Submitter::RowProvider,
            NOW,
            10,
            &mut |_| {},
        )
        .unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let second = serde_json::from_str::<serde_json::Value>(text.lines().nth(1).unwrap()).unwrap();
    let mut providers = vec![provider];
    for p in second["website"]["providers"].as_array().unwrap() {
        providers.push(p.as_str().unwrap().to_string());
    }
    providers.sort();
    providers.dedup();
    for p in providers {
        reg.verify_access(&Actor::isp(&p), &p, None, NOW).unwrap();
    }
    let report = reg.review_auto_by_each_bureau(NOW).unwrap();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    assert_eq!(report.approved.len(), 2);
    let ip_only = report
        .approved
        .iter()
        .find(|(_, _, what)| what.contains("IP-only"))
        .expect("the IP-only filing says it has no certificate");
    assert!(ip_only.1.contains("ICP备"), "numbered: {:?}", ip_only);
    let view = reg.filing_view(&FilingKey::Id(ip_only.0)).unwrap();
    assert_eq!(view.status, "active", "{view:?}");
    assert!(view.domains.is_empty());
    assert!(view.cert_key_id.is_none(), "no certificate: {view:?}");
    assert_eq!(view.service_number.as_deref(), Some(ip_only.1.as_str()));
}}

both! {
fn faq_apps_and_mini_programs_are_numbered_a_and_x_under_their_subject_without_certificates(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let text = std::fs::read_to_string(data("filings.jsonl")).unwrap();
    let website: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    let service = |kind: &str, name: &str, app_id: Option<&str>, domains: &[&str]| {
        let mut v = website.clone();
        let w = v["website"].take();
        v.as_object_mut().unwrap().remove("website");
        let mut w = w;
        w["kind"] = serde_json::json!(kind);
        w["name"] = serde_json::json!(name);
        w["app_id"] = serde_json::json!(app_id);
        w["domains"] = serde_json::json!(domains);
        w["ips"] = serde_json::json!([]);
        v["service"] = w;
        serde_json::to_string(&v).unwrap()
    };
    let lines = [
        serde_json::to_string(&website).unwrap(),
        service("APP", "示例APP", Some("com.example.app"), &[]),
        service(
            "mini_program",
            "示例小程序",
            Some("wx1234567890abcdef"),
            &[],
        ),
        // Refused: an APP without its package name, an APP listing domains, a website with
        // an app id, an unknown kind.
        service("app", "无包名", None, &[]),
        service(
            "app",
            "带域名",
            Some("com.example.other"),
            &["app-domain.com"],
        ),
        service(
            "网站",
            "网站带包名",
            Some("com.example.web"),
            &["web-with-app.com"],
        ),
        service("电视", "未知", Some("x"), &[]),
    ]
    .join("\n");
    let r = reg
        .import_jsonl(
            Cursor::new(lines),
            Submitter::RowProvider,
            NOW,
            10,
            &mut |_| {},
        )
        .unwrap();
    let fields: Vec<(usize, &str)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.field.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            (4, "website.app_id"),
            (5, "website.domains"),
            (6, "website.app_id"),
            (7, "website.kind")
        ],
        "{:?}",
        r.errors
    );
    assert_eq!(r.accepted.len(), 3);
    approve_all(&reg);
    let views: Vec<_> = r
        .accepted
        .iter()
        .map(|(_, id)| reg.filing_view(&FilingKey::Id(*id)).unwrap())
        .collect();
    let numbers: Vec<String> = views
        .iter()
        .map(|v| v.service_number.clone().unwrap())
        .collect();
    // One subject number; services numbered in order, with the kind's letter.
    let subject = views[0].subject_number.clone().unwrap();
    let stem = subject.trim_end_matches('号');
    for (n, suffix) in numbers.iter().zip(["号-1", "号-2A", "号-3X"]) {
        assert_eq!(*n, format!("{stem}{suffix}"));
    }
    assert_eq!(views[1].kind, "app");
    assert_eq!(views[1].app_id.as_deref(), Some("com.example.app"));
    assert_eq!(views[2].kind, "mini_program");
    // Only the website has a certificate, and only it is in the scanners' snapshot.
    assert!(views[0].cert_key_id.is_some());
    assert!(views[1].cert_key_id.is_none() && views[2].cert_key_id.is_none());
    let snap = reg.snapshot(NOW).unwrap();
    let json = serde_json::to_string(&snap).unwrap();
    assert!(!json.contains("com.example.app"));
    assert!(r
        .accepted
        .iter()
        .all(|(_, id)| reg.filing_view(&FilingKey::Id(*id)).unwrap().status == "active"));
}}

both! {
fn certificates_verify_offline_and_a_compromised_key_gets_them_reissued(tb) {
    use beian::accounts::service::Accounts;
    use beian::cert::{verify, verify_offline, CertVerdict, Keyring};
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    approve_all(&reg);
    let mut active = Vec::new();
    reg.store()
        .scan_filings(&mut |f| {
            if f.certificate.is_some() {
                active.push(f.domains[0].as_str().to_string());
            }
            true
        })
        .unwrap();
    assert!(active.len() >= 5, "{active:?}");
    // Every approval told its filer where to get and serve the certificate.
    let notices = Accounts::notices(reg.store()).unwrap();
    assert!(notices.len() >= active.len(), "{}", notices.len());
    assert!(
        notices
            .iter()
            .any(|m| m.body.contains("/cert/bazs.cert") && m.body.contains("/certificate")),
        "{notices:?}"
    );

    // A third party with only the exported keyring (the one JSON shape).
    let ring = Keyring::from_json(&reg.keyring().to_json()).unwrap();
    let host = &active[0];
    let old = reg.certificate_for(host).unwrap();
    assert!(matches!(
        verify_offline(old.text.as_bytes(), &ring, host, NOW + 60),
        CertVerdict::Valid { .. }
    ));
    assert!(matches!(
        verify_offline(old.text.as_bytes(), &ring, "elsewhere.cn", NOW + 60),
        CertVerdict::DomainNotCovered { .. }
    ));
    let snap = reg.snapshot(NOW + 60).unwrap();
    assert!(matches!(
        verify(old.text.as_bytes(), &ring, host, &snap, NOW + 60),
        CertVerdict::Valid { .. }
    ));

    // The key is compromised: everything it signed is re-issued under the new key.
    let rot = reg
        .rotate_keys(&Actor::Miit, Some(&old.key_id), NOW + 100)
        .unwrap();
    assert_eq!(rot.reissued.len(), active.len());
    let ring = Keyring::from_json(&reg.keyring().to_json()).unwrap();
    for host in &active {
        let new = reg.certificate_for(host).unwrap();
        assert_ne!(new.key_id, old.key_id);
        assert!(matches!(
            verify_offline(new.text.as_bytes(), &ring, host, NOW + 200),
            CertVerdict::Valid { .. }
        ));
        let snap = reg.snapshot(NOW + 200).unwrap();
        assert!(matches!(
            verify(new.text.as_bytes(), &ring, host, &snap, NOW + 200),
            CertVerdict::Valid { .. }
        ));
    }
    assert!(matches!(
        verify_offline(old.text.as_bytes(), &ring, host, NOW + 200),
        CertVerdict::CompromisedKey { .. }
    ));
    let after = Accounts::notices(reg.store()).unwrap();
    assert!(
        after
            .iter()
            .filter(|m| m.subject.contains("re-issued"))
            .count()
            >= active.len(),
        "{after:?}"
    );
    assert!(reg.verify_audit().unwrap().ok());
}}

both! {
/// FAQ: "Who may cancel a filing, and who acts on the request?" Every path: the ICP user
/// requests, changes and deletes its own request; the bureau executes or declines it; a
/// bureau's own request is executed only by MIIT; nobody acts on their own request.
fn faq_who_acts_on_a_cancellation_request(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    approve_all(&reg);
    let bj = FilingKey::Domain("example-bj.com".into());
    let shop = FilingKey::Domain("shop-bj.cn".into());
    let jing = Actor::bureau('京');
    let hu = Actor::bureau('沪');
    let status = |k: &FilingKey| reg.filing_view(k).unwrap().status;

    // The ICP user requests, changes the reason, deletes it, and requests again.
    reg.request_cancellation(
        &reg.acting_as(&bj, DefaultRole::Owner).unwrap(),
        &bj,
        "不再运营",
        NOW,
    )
    .unwrap();
    assert_eq!(status(&bj), "cancellation_requested");
    reg.modify_cancellation(
        &reg.acting_as(&bj, DefaultRole::Owner).unwrap(),
        &bj,
        "网站关闭",
        NOW,
    )
    .unwrap();
    let e = reg
        .modify_cancellation(&jing, &bj, "x", NOW)
        .unwrap_err()
        .to_string();
    assert!(e.contains("changes its own request"), "{e}");
    assert!(reg.delete_cancellation(&jing, &bj, NOW).is_err());
    reg.delete_cancellation(&reg.acting_as(&bj, DefaultRole::Owner).unwrap(), &bj, NOW)
        .unwrap();
    assert_eq!(status(&bj), "active");
    assert!(
        reg.delete_cancellation(&reg.acting_as(&bj, DefaultRole::Owner).unwrap(), &bj, NOW)
            .is_err(),
        "nothing pending"
    );
    reg.request_cancellation(
        &reg.acting_as(&bj, DefaultRole::Owner).unwrap(),
        &bj,
        "网站关闭",
        NOW,
    )
    .unwrap();
    // Another province's bureau may not act; MIIT does not execute an ICP user's request;
    // the bureau of 京 does.
    assert!(reg.review_approve(&hu, &bj, None, NOW).is_err());
    let e = reg
        .review_approve(&Actor::Miit, &bj, None, NOW)
        .unwrap_err()
        .to_string();
    assert!(e.contains("the bureau of 京 acts"), "{e}");
    reg.review_approve(&jing, &bj, None, NOW).unwrap();
    assert_eq!(status(&bj), "cancelled");

    // A bureau's own request: it may neither execute nor decline it; MIIT executes it.
    reg.request_cancellation(&jing, &shop, "核查注销", NOW)
        .unwrap();
    let e = reg
        .review_approve(&jing, &shop, None, NOW)
        .unwrap_err()
        .to_string();
    assert!(e.contains("nobody may execute their own"), "{e}");
    assert!(reg.review_reject(&jing, &shop, "不同意", NOW).is_err());
    assert!(reg.withdraw_cancellation(&jing, &shop, NOW).is_err());
    // The default role for executing a bureau's request is MIIT.
    reg.review_approve(
        &reg.acting_as(&shop, DefaultRole::Reviewer).unwrap(),
        &shop,
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(status(&shop), "cancelled");
    assert!(reg.verify_audit().unwrap().ok());
}}

both! {
/// FAQ: "What happens when the access provider cancels access?" The filing goes to the
/// bureau as an empty shell; the bureau may reject it; with a new provider it comes back.
fn faq_access_cancelled_goes_to_the_bureau_which_may_reject_it(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    approve_all(&reg);
    let bj = FilingKey::Domain("example-bj.com".into());
    let f = reg
        .cancel_access(&Actor::isp("示例接入商"), &bj, "示例接入商", NOW)
        .unwrap();
    assert!(f.is_empty_shell());
    let shells = reg.empty_shells().unwrap();
    assert!(shells.iter().any(|s| s.id == f.id), "{shells:?}");
    reg.review_reject(
        &reg.acting_as(&bj, DefaultRole::Reviewer).unwrap(),
        &bj,
        "空壳网站：无接入服务商",
        NOW,
    )
    .unwrap();
    let v = reg.filing_view(&bj).unwrap();
    assert_eq!(v.status, "rejected");
    // No valid certificate while rejected.
    let snap = reg.snapshot(NOW).unwrap();
    let cert = reg.filing(&bj).unwrap().0.certificate.unwrap();
    let verdict = beian::cert::verify(
        cert.text.as_bytes(),
        &reg.keyring(),
        "example-bj.com",
        &snap,
        NOW,
    );
    assert!(
        !matches!(verdict, beian::cert::CertVerdict::Valid { .. }),
        "{verdict:?}"
    );
    // A new provider must be on the ISP list (an ISP user a bureau created).
    let e = reg
        .add_provider(
            &reg.acting_as(&bj, DefaultRole::Owner).unwrap(),
            &bj,
            "华北云",
            NOW,
        )
        .unwrap_err();
    assert!(e.to_string().contains("ISP list"), "{e}");
    {
        use beian::registry::store::{AuditMeta, RegistryTxn};
        let isp = Actor::isp("华北云");
        let user =
            beian::accounts::UserRecord::new("isp_hb", "isp-pw12", isp.clone(), "bureau:京", NOW)
                .unwrap();
        let mut txn = reg.store().begin().unwrap();
        txn.put_user(
            &AuditMeta::new(&Actor::bureau('京'), "create user", NOW),
            &user,
        )
        .unwrap();
        txn.commit().unwrap();
    }
    assert_eq!(reg.isp_list().unwrap(), ["华北云"]);
    // A new provider, verified, reviewed: active again with a fresh certificate.
    reg.add_provider(
        &reg.acting_as(&bj, DefaultRole::Owner).unwrap(),
        &bj,
        "华北云",
        NOW,
    )
    .unwrap();
    reg.resubmit(&reg.acting_as(&bj, DefaultRole::Owner).unwrap(), &bj, NOW)
        .unwrap();
    reg.verify_access(&Actor::isp("华北云"), "华北云", None, NOW)
        .unwrap();
    reg.review_auto_by_each_bureau(NOW).unwrap();
    let v = reg.filing_view(&bj).unwrap();
    assert_eq!(v.status, "active");
    assert!(reg.certificate_for("example-bj.com").unwrap().serial > cert.serial);
    // Once the registry has ISP users, an imported row may only name providers on the list.
    let row = |domain: &str, provider: &str| {
        format!(
            r#"{{"subject":{{"name":"北京示例科技有限公司","nature":"企业","id_type":"统一社会信用代码","id_number":"91110108MA01ABCD2H","province":"京","address":"北京","contact":{{"name":"张三"}}}},"website":{{"name":"站","homepage":"https://{domain}/","domains":["{domain}"],"ips":[],"providers":["{provider}"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#
        )
    };
    let text = [row("listed-isp.cn", "华北云"), row("unlisted-isp.cn", "无名接入商")].join("\n");
    let r = reg
        .import_jsonl(Cursor::new(text), Submitter::RowProvider, NOW, 10, &mut |_| {})
        .unwrap();
    assert_eq!(r.accepted.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, 2);
    assert_eq!(r.errors[0].field, "website.providers");
    assert!(r.errors[0].reason.contains("ISP list"), "{}", r.errors[0].reason);
}}

both! {
fn an_identity_number_under_another_name_is_that_lines_error(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let line = |name: &str, domain: &str| {
        format!(
            r#"{{"subject":{{"name":"{name}","nature":"企业","id_type":"统一社会信用代码","id_number":"91110108MA01ABCD2H","province":"京","address":"北京","contact":{{"name":"张三"}}}},"website":{{"name":"站","homepage":"https://{domain}/","domains":["{domain}"],"ips":[],"providers":["示例接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#
        )
    };
    let text = [
        line("北京示例科技有限公司", "one-site.cn"),
        line("北京示例科技有限公司", "two-site.cn"),
        line("另一家公司", "three-site.cn"),
    ]
    .join("\n");
    let r = reg
        .import_jsonl(
            Cursor::new(text),
            Submitter::RowProvider,
            NOW,
            10,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(r.accepted.len(), 2, "{r:?}");
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert_eq!(r.errors[0].line, 3);
    assert_eq!(r.errors[0].field, "subject.name");
    assert!(r.errors[0].reason.contains("另一家公司"), "{r:?}");
}}

both! {
/// FAQ: "When is the annual review, and what if it is missed?" Due one calendar year after
/// approval; listed as due, then overdue (and the certificate no longer verifies); the filer
/// asks, the bureau confirms, a new certificate is issued and the next review is a year on.
fn faq_the_annual_review_cycle(tb) {
    use beian::registry::model::one_year_after;
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    approve_all(&reg);
    let bj = FilingKey::Domain("example-bj.com".into());
    let due = one_year_after(NOW);
    assert_eq!(reg.filing_view(&bj).unwrap().expires_at, Some(due));
    assert!(reg.annual_reviews(None, NOW, 0).unwrap().is_empty());
    let soon = reg
        .annual_reviews(Some('京'), due - 10 * 86_400, 30 * 86_400)
        .unwrap();
    assert!(soon
        .iter()
        .any(|(f, _)| f.domains[0].as_str() == "example-bj.com"));
    assert!(soon.iter().all(|(_, s)| s.province == '京'));
    // Overdue: visible, listed, and the certificate says expired.
    let late = due + 86_400;
    assert_eq!(
        reg.filing_view_at(&bj, late).unwrap().status,
        "annual_review_overdue"
    );
    assert!(!reg.annual_reviews(None, late, 0).unwrap().is_empty());
    let old = reg.certificate_for("example-bj.com").unwrap();
    let snap = reg.snapshot(late).unwrap();
    let verdict = beian::cert::verify(
        old.text.as_bytes(),
        &reg.keyring(),
        "example-bj.com",
        &snap,
        late,
    );
    assert!(
        matches!(verdict, beian::cert::CertVerdict::Expired { .. }),
        "{verdict:?}"
    );
    // Renewed: asked by the filer, confirmed by the bureau's review.
    reg.request_renewal(&reg.acting_as(&bj, DefaultRole::Owner).unwrap(), &bj, late)
        .unwrap();
    assert_eq!(reg.filing_view(&bj).unwrap().status, "renewal_under_review");
    let r = reg.review_auto_by_each_bureau(late).unwrap();
    assert!(r.refused.is_empty(), "{r:?}");
    let v = reg.filing_view_at(&bj, late).unwrap();
    assert_eq!(v.status, "active");
    assert_eq!(v.expires_at, Some(one_year_after(late)));
    let new = reg.certificate_for("example-bj.com").unwrap();
    assert!(new.serial > old.serial);
    let snap = reg.snapshot(late).unwrap();
    let verdict = beian::cert::verify(
        new.text.as_bytes(),
        &reg.keyring(),
        "example-bj.com",
        &snap,
        late,
    );
    assert!(
        matches!(verdict, beian::cert::CertVerdict::Valid { .. }),
        "{verdict:?}"
    );
    // The filer was told the new certificate.
    let notices = beian::accounts::service::Accounts::notices(reg.store()).unwrap();
    assert!(notices
        .iter()
        .any(|m| m.body.contains(&format!("serial {}", new.serial))));
    assert!(reg.verify_audit().unwrap().ok());
}}

both! {
/// FAQ: "What happens to a filing whose data is false?" It is revoked and published on the
/// public list; an ordinary revocation is not.
fn faq_filings_revoked_for_false_information_are_published(tb) {
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    import(&reg, "filings.jsonl");
    approve_all(&reg);
    let bj = FilingKey::Domain("example-bj.com".into());
    let shop = FilingKey::Domain("shop-bj.cn".into());
    assert!(reg.false_information_list().unwrap().is_empty());
    reg.revoke(
        &reg.acting_as(&shop, DefaultRole::Miit).unwrap(),
        &shop,
        "违规内容",
        NOW + 10,
    )
    .unwrap();
    // A bureau of another province may not; MIIT (the default) may.
    assert!(reg
        .revoke_for_false_information(&Actor::bureau('沪'), &bj, "信息不实", NOW + 20)
        .is_err());
    reg.revoke_for_false_information(
        &reg.acting_as(&bj, DefaultRole::Miit).unwrap(),
        &bj,
        "主体信息不实",
        NOW + 20,
    )
    .unwrap();
    let list = reg.false_information_list().unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].domains, vec!["example-bj.com", "example-bj.net"]);
    assert_eq!(list[0].province, "京");
    assert_eq!(list[0].revoked_at, NOW + 20);
    assert!(list[0]
        .service_number
        .as_deref()
        .unwrap()
        .starts_with("京ICP备"));
    assert_eq!(reg.filing_view(&bj).unwrap().status, "revoked");
}}

both! {
fn the_in_memory_domain_index_follows_transactions_reopen_and_concurrent_readers(tb) {
    use beian::registry::store::{AuditMeta, RegistryTxn};
    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let d = |s: &str| Domain::parse(s).unwrap();
    // Before the index is built lookups read the tree; built (empty) before any filing,
    // later commits keep it current.
    assert_eq!(
        reg.store().filing_by_domain(&d("example-bj.net")).unwrap(),
        None
    );
    reg.store().warm_lookups().unwrap();
    import(&reg, "filings.jsonl");
    let store = reg.store();
    let id = store
        .filing_by_domain(&d("example-bj.net"))
        .unwrap()
        .unwrap();
    let filing = store.filing(id).unwrap().unwrap();
    let meta = AuditMeta::new(&Actor::Miit, "test", NOW);

    // A transaction dropped without commit changes nothing; a committed one is seen whole.
    let mut moved = filing.clone();
    moved.domains = vec![d("moved-once.com")];
    {
        let mut txn = store.begin().unwrap();
        txn.put_filing(&meta, &moved).unwrap();
        // Inside the transaction its own writes are seen (through the overlay).
        assert_eq!(
            txn.filing_by_domain(&d("moved-once.com")).unwrap(),
            Some(id)
        );
        assert_eq!(store.filing_by_domain(&d("moved-once.com")).unwrap(), None);
    }
    assert_eq!(store.filing_by_domain(&d("moved-once.com")).unwrap(), None);
    assert_eq!(
        store.filing_by_domain(&d("example-bj.net")).unwrap(),
        Some(id)
    );

    // Concurrent readers while a writer moves the filing between two domains: a domain the
    // writer never touches is always found, and the moving filing is found under exactly one
    // of its two domains once the writer is done.
    let stable = store
        .filing_by_domain(&d("nanshan-demo.cn"))
        .unwrap()
        .unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let readers: Vec<_> = (0..2)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        assert_eq!(
                            store.filing_by_domain(&d("nanshan-demo.cn")).unwrap(),
                            Some(stable)
                        );
                        for name in ["example-bj.net", "moved-once.com"] {
                            let got = store.filing_by_domain(&d(name)).unwrap();
                            assert!(got.is_none() || got == Some(id), "{name}: {got:?}");
                        }
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        for round in 0..20 {
            let f = if round % 2 == 0 { &moved } else { &filing };
            let mut txn = store.begin().unwrap();
            txn.put_filing(&meta, f).unwrap();
            txn.commit().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    });
    // 20 rounds: back on the original domain.
    assert_eq!(
        store.filing_by_domain(&d("example-bj.net")).unwrap(),
        Some(id)
    );
    assert_eq!(store.filing_by_domain(&d("moved-once.com")).unwrap(), None);
    let mut txn = store.begin().unwrap();
    txn.put_filing(&meta, &moved).unwrap();
    txn.commit().unwrap();
    assert_eq!(
        store.filing_by_domain(&d("moved-once.com")).unwrap(),
        Some(id)
    );
    assert_eq!(store.filing_by_domain(&d("example-bj.net")).unwrap(), None);

    // Reopened, the index is rebuilt from the tree: every filing's domains lead to it.
    let mut expected = Vec::new();
    store
        .scan_filings(&mut |f| {
            for dom in &f.domains {
                expected.push((dom.clone(), f.id));
            }
            true
        })
        .unwrap();
    drop(reg);
    let reg = Registry::open(dir.path()).unwrap();
    assert_eq!(
        reg.store().filing_by_domain(&d("moved-once.com")).unwrap(),
        Some(id)
    );
    reg.store().warm_lookups().unwrap();
    assert_eq!(
        reg.store().filing_by_domain(&d("example-bj.net")).unwrap(),
        None
    );
    assert!(expected.len() >= 10);
    for (dom, fid) in expected {
        assert_eq!(
            reg.store().filing_by_domain(&dom).unwrap(),
            Some(fid),
            "{dom:?}"
        );
    }
}}

both! {
/// The public query by subject name: any two consecutive characters of the name (case and
/// spaces ignored) find the subject's active filings through the name index, bounded, and the
/// index survives a reopen.
fn subjects_are_found_by_part_of_their_name_through_the_name_index(tb) {
    let dir = tempfile::tempdir().unwrap();
    {
        let (reg, _) = tb.init(dir.path(), NOW).unwrap();
        import(&reg, "filings.jsonl");
        approve_all(&reg);
    }
    let reg = Registry::open(dir.path()).unwrap();
    let names = |fragment: &str| {
        let mut out = Vec::new();
        reg.store()
            .subjects_by_name(fragment, &mut |s| {
                out.push(s.name);
                true
            })
            .unwrap();
        out
    };
    assert_eq!(names("云端信息"), ["上海云端信息技术有限公司"]);
    assert_eq!(names("南山 示范"), ["深圳市南山示范网络有限公司"]);
    // Every window present, but not in this order: not a match.
    assert!(names("示范南山").is_empty());
    assert!(names("不存在的公司").is_empty());
    // One character is too little to search for.
    assert!(names("云").is_empty());
    // Two subjects share 有限公司.
    assert!(names("有限公司").len() >= 3, "{:?}", names("有限公司"));

    let (found, more) = reg.active_filings_by_subject_name("云端信息", 50).unwrap();
    assert!(!more);
    let mut sites: Vec<String> = found.iter().map(|(f, _)| f.name.clone()).collect();
    sites.sort();
    let want_active = {
        let mut v = Vec::new();
        reg.store()
            .scan_filings(&mut |f| {
                if f.status == beian::registry::model::Status::Active
                    && reg.store().subject(f.subject_id).unwrap().unwrap().name
                        == "上海云端信息技术有限公司"
                {
                    v.push(f.name);
                }
                true
            })
            .unwrap();
        v.sort();
        v
    };
    assert!(!want_active.is_empty());
    assert_eq!(sites, want_active);
    assert!(found.iter().all(|(f, _)| f.number.is_some()));
    // Bounded: one result, and it says more match.
    let (found, more) = reg.active_filings_by_subject_name("有限公司", 1).unwrap();
    assert_eq!(found.len(), 1);
    assert!(more);
}}

both! {
fn generic_records_are_typed_enveloped_and_read_their_bare_form(tb) {
    use beian::accounts::service::{
        Accounts, Channel, Message, OutboxMessages, Session, Sessions, KIND_OUTBOX,
        KIND_SESSION,
    };
    use beian::registry::store::codec::MAGIC;
    use beian::registry::store::records::{TypedRecords, TypedRecordsTxn};
    use beian::registry::store::{AuditMeta, RegistryTxn, StoreError};

    let dir = tempfile::tempdir().unwrap();
    let (reg, _) = tb.init(dir.path(), NOW).unwrap();
    let store = reg.store();
    let meta = AuditMeta::new(&Actor::Miit, "test", NOW);
    let session = Session {
        username: "miit".into(),
        created_at: NOW,
        expires_at: NOW + 60,
    };
    let message = Message::notice(Channel::Email, "a@example.cn", "主题", "正文".into(), NOW);
    let mut txn = store.begin().unwrap();
    txn.store_record::<Sessions>(&meta, "new", &session).unwrap();
    // As the release before typed records wrote them: bare JSON.
    let bare = serde_json::to_vec(&session).unwrap();
    txn.put_record(&meta, KIND_SESSION, "old", Some(&bare)).unwrap();
    let bare = serde_json::to_vec(&message).unwrap();
    txn.put_record(&meta, KIND_OUTBOX, &message.id, Some(&bare))
        .unwrap();
    txn.commit().unwrap();
    assert!(store
        .record(KIND_SESSION, "new")
        .unwrap()
        .unwrap()
        .starts_with(&MAGIC));
    for key in ["new", "old"] {
        assert_eq!(store.load_record::<Sessions>(key).unwrap(), Some(session.clone()));
    }
    assert_eq!(
        store.load_record::<OutboxMessages>(&message.id).unwrap(),
        Some(message.clone())
    );
    assert_eq!(Accounts::outbox(store).unwrap(), std::slice::from_ref(&message));
    // A record that does not decode names its kind and key.
    let mut txn = store.begin().unwrap();
    txn.put_record(&meta, KIND_OUTBOX, "zz", Some(b"{not json"))
        .unwrap();
    txn.put_record(&meta, KIND_SESSION, "zz", Some(b"\xff\x00"))
        .unwrap();
    txn.commit().unwrap();
    match Accounts::outbox(store) {
        Err(beian::accounts::service::AccountError::Store(StoreError::Corrupt { key, .. })) => {
            assert_eq!(key, "outbox:zz")
        }
        other => panic!("{other:?}"),
    }
    // Expiry purges pass over it and purge the rest, bare or enveloped.
    assert_eq!(Accounts::purge_expired(store, NOW + 60).unwrap(), 2);
    assert!(!store.has_record::<Sessions>("old").unwrap());
    assert!(store.has_record::<Sessions>("zz").unwrap(), "left for the operator");
    // `registry check` lists both damaged records.
    let damaged = Accounts::damaged_records(store).unwrap();
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    assert!(damaged[0].starts_with("session:zz: session record (format 0)"), "{damaged:?}");
    assert!(damaged[1].starts_with("outbox:zz: outbox record (format 0)"), "{damaged:?}");
    // An announcement whose attachment is missing, or is other bytes.
    use beian::api::announcements::{Announcement, Announcements, AttachmentMeta, Attachments};
    let a = Announcement {
        id: "a1".into(),
        category: Default::default(),
        title: "t".into(),
        body: "b".into(),
        author: "miit".into(),
        created_at: NOW,
        attachments: ["x1", "x2"]
            .map(|id| AttachmentMeta {
                id: id.into(),
                filename: "f".into(),
                content_type: "text/plain".into(),
                size: 3,
                sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"abc")),
            })
            .to_vec(),
    };
    let mut txn = store.begin().unwrap();
    txn.store_record::<Announcements>(&meta, "a1", &a).unwrap();
    txn.store_record::<Attachments>(&meta, "a1/x1", &b"abd".to_vec())
        .unwrap();
    txn.commit().unwrap();
    let damaged = beian::api::announcements::damaged_records(store).unwrap();
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    assert!(damaged[0].contains("attachment:a1/x1"), "{damaged:?}");
    assert!(damaged[1].starts_with("attachment:a1/x2: announcement a1 lists it"), "{damaged:?}");
    assert!(reg.verify_audit().unwrap().ok());
}
}

/// A JSON line of the bench's shape: subject `name`, website `n`.
fn bulk_line(n: usize, name: &str) -> String {
    serde_json::json!({
        "subject": {"name": name, "nature": "企业", "id_type": "统一社会信用代码",
            "id_number": format!("91110000{n:09}Y"), "province": "京", "address": "北京",
            "contact": {"name": "某"}},
        "website": {"name": format!("站点{n}"), "homepage": format!("https://bulk{n}.com/"),
            "domains": [format!("bulk{n}.com")], "ips": [], "providers": ["基准接入商"],
            "access_method": "虚拟主机", "categories": [], "operating_licence": null}
    })
    .to_string()
}

both! {
/// The name index over many subjects written in many transactions (posting lists longer than
/// one block, windows shared by most names, windows of one name): every fragment finds
/// exactly the subjects whose name contains it, in id order, before and after a reopen.
fn the_name_index_finds_what_a_full_scan_finds_across_many_imports(tb) {
    let dir = tempfile::tempdir().unwrap();
    let mut names: Vec<String> = (0..700)
        .map(|n| match n % 7 {
            0 => format!("北京云端{n}科技有限公司"),
            1 => format!("上海海云{}信息有限公司", n % 13),
            2 => format!("深圳端云{n}"),
            3 => format!("杭州{n}网络科技有限公司"),
            4 => "云端".to_string() + &"数据".repeat(n % 4),
            5 => format!("Cloud Duan {n} Ltd"),
            _ => format!("广州云{}端有限公司", n % 3),
        })
        .collect();
    let fragments = [
        "云端", "有限公司", "科技有限", "云端1", "端云", "海云7", "数据数据", "cloudduan",
        "duan 12", "广州云2端", "不存在", "12", "0科", "云", "改名", "云端改名", "别的名字",
        "限公",
    ];
    let check = |reg: &Registry, names: &[String], round: &str| {
        let mut subjects = Vec::new();
        reg.store()
            .scan_subjects(&mut |s| {
                subjects.push(s);
                true
            })
            .unwrap();
        assert_eq!(subjects.len(), names.len(), "{round}");
        subjects.sort_by_key(|s| s.id);
        for f in fragments {
            let wanted = beian::registry::store::normalise_name(f);
            let want: Vec<u64> = subjects
                .iter()
                .filter(|s| {
                    wanted.chars().count() >= 2
                        && beian::registry::store::normalise_name(&s.name).contains(&wanted)
                })
                .map(|s| s.id)
                .collect();
            let mut got = Vec::new();
            reg.store()
                .subjects_by_name(f, &mut |s| {
                    got.push(s.id);
                    true
                })
                .unwrap();
            assert_eq!(got, want, "{round}: {f:?}");
        }
    };
    {
        let (reg, _) = tb.init(dir.path(), NOW).unwrap();
        // Transactions of different sizes: one line, a few, many.
        let mut from = 0;
        for chunk in [1, 3, 50, 200, 446] {
            let text: String = (from..from + chunk)
                .map(|n| bulk_line(n, &names[n]) + "\n")
                .collect();
            let report = reg
                .import_jsonl(Cursor::new(text), Submitter::RowProvider, NOW, 97, &mut |_| {})
                .unwrap();
            assert_eq!(report.accepted.len(), chunk, "{:?}", report.errors);
            from += chunk;
        }
        assert_eq!(from, names.len());
        check(&reg, &names, "written");
        // Updates of the subjects (numbers at approval) keep the index as it is.
        reg.verify_access(&Actor::isp("基准接入商"), "基准接入商", None, NOW)
            .unwrap();
        reg.review_auto_by_each_bureau(NOW).unwrap();
        check(&reg, &names, "approved");
    }
    let reg = Registry::open(dir.path()).unwrap();
    check(&reg, &names, "reopened");
    // Renamed subjects (as a replica replays a primary's change): their old windows go and
    // new ones come, at ids inside every posting list, not at its end.
    {
        use beian::registry::store::{AuditMeta, RegistryTxn};
        let mut subjects = Vec::new();
        reg.store()
            .scan_subjects(&mut |s| {
                subjects.push(s);
                true
            })
            .unwrap();
        subjects.sort_by_key(|s| s.id);
        let meta = AuditMeta::new(&Actor::bureau('京'), "rename", NOW);
        let mut txn = reg.store().begin().unwrap();
        for (n, s) in subjects.iter_mut().enumerate().filter(|(n, _)| n % 5 == 2) {
            s.name = match n % 3 {
                0 => format!("云端改名{n}"),
                1 => format!("改名{n}有限公司"),
                _ => "别的名字".to_string(),
            };
            txn.put_subject(&meta, s).unwrap();
        }
        txn.commit().unwrap();
        names = subjects.into_iter().map(|s| s.name).collect();
    }
    check(&reg, &names, "renamed");
    drop(reg);
    let reg = Registry::open(dir.path()).unwrap();
    check(&reg, &names, "renamed, reopened");
}}
