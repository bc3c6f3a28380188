//! A store written by the release before the versioned record codec (`tests/data/registry-v0`,
//! see its README) opens with the current code: its records are migrated in place, and the same
//! filings, IP filings, users and audit chain come back, through the real binary. A registry
//! whose generic records were written before typed records (`tests/data/registry-records-v0`:
//! bare JSON, raw attachments) still logs users in with its sessions, challenges and contacts,
//! lists its outbox and notices, completes its pending registrations, contact changes and
//! resets, and serves its announcements and attachments.

use std::path::{Path, PathBuf};
use std::process::Command;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/registry-v0")
}

/// Copy a fixture registry from `from` to `to`. Git does not keep modes or empty
/// directories: restore what the registry expects (the blob directory, keys readable by the
/// owner only).
fn restore_registry(from: &Path, to: &Path) {
    copy_dir(from, to);
    std::fs::create_dir_all(to.join("store/blobs")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(to.join("keys")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "key") {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
}

fn beian(reg: &Path, args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_beian"))
        .arg("--registry")
        .arg(reg)
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn a_store_of_the_previous_release_opens_and_reads_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    restore_registry(&fixture().join("reg"), &reg);
    let expected: Vec<serde_json::Value> = std::fs::read_to_string(fixture().join("filings.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(expected.len(), 10);
    for round in 0..2 {
        // The first open migrates; the second reads the migrated store.
        for want in &expected {
            let domain = want["domains"][0].as_str().unwrap();
            let mut got: serde_json::Value = serde_json::from_str(&beian(
                &reg,
                &["filing", "show", "--domain", domain, "--format", "json"],
            ))
            .unwrap();
            // The fixture's filings fall due a year after it was made: that is time, not
            // the upgrade.
            if got["status"] == "annual_review_overdue" && want["status"] == "active" {
                got["status"] = "active".into();
            }
            // Fields the view gained since (the fixture's filings are all websites).
            assert_eq!(got["kind"], "website", "round {round}: {domain}");
            if let Some(o) = got.as_object_mut() {
                o.remove("kind");
            }
            assert_eq!(&got, want, "round {round}: {domain}");
        }
        let ips: serde_json::Value =
            serde_json::from_str(&beian(&reg, &["ip-filing", "list", "--format", "json"])).unwrap();
        let want: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture().join("ip-filings.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(ips, want, "round {round}");
        let audit = beian(&reg, &["audit", "verify"]);
        // The log written before state was audited still accounts for every record.
        assert!(
            audit.contains("audit chain ok: 52 records; 17 stored records match it"),
            "{audit}"
        );
        let check = beian(&reg, &["registry", "check", reg.to_str().unwrap()]);
        assert!(!check.contains("damaged"), "{check}");
    }
    // Every record was rewritten in the current format.
    {
        let store = beian::registry::store::sled::SledStore::open(&reg.join("store")).unwrap();
        let formats = store.record_formats().unwrap();
        assert_eq!(
            formats.keys().copied().collect::<Vec<_>>(),
            [beian::registry::store::codec::FORMAT],
            "{formats:?}"
        );
        assert!(formats.values().sum::<u64>() >= 13, "{formats:?}");
        // The subject-name index was built on the first open (the old store had none).
        use beian::registry::store::RegistryScan;
        let mut names = Vec::new();
        store
            .subjects_by_name("云端信息", &mut |s| {
                names.push(s.name);
                true
            })
            .unwrap();
        assert_eq!(names, ["上海云端信息技术有限公司"]);
        // The index built on open holds a key per window and subject (the layout before
        // posting blocks); new subjects go into blocks beside those keys.
        use beian::registry::store::{AuditMeta, RegistryStore, RegistryTxn, Sequence};
        let mut txn = store.begin().unwrap();
        let mut newer = first_subject(&store);
        let meta = AuditMeta::new(&beian::accounts::Actor::Miit, "test", 1_800_000_000);
        for (n, name) in ["云端信息二号有限公司", "北京云端信息"]
            .into_iter()
            .enumerate()
        {
            newer.id = txn.next_id(Sequence::Subject).unwrap();
            newer.name = name.into();
            newer.id_number = format!("91310000TEST{n:06}");
            newer.number = None;
            txn.put_subject(&meta, &newer).unwrap();
        }
        txn.commit().unwrap();
        let mut names = Vec::new();
        store
            .subjects_by_name("云端信息", &mut |s| {
                names.push(s.name);
                true
            })
            .unwrap();
        assert_eq!(
            names,
            [
                "上海云端信息技术有限公司",
                "云端信息二号有限公司",
                "北京云端信息"
            ]
        );
    }
    // The migrated store takes new writes (the MIIT user's contact survived too).
    let out = beian(
        &reg,
        &["user", "set-contact", "miit", "--mobile", "13900000000"],
    );
    assert!(out.contains("miit@example.gov.cn"), "{out}");
    let out = beian(
        &reg,
        &[
            "filing",
            "cancel",
            "--domain",
            "xihu-photo.cn",
            "--reason",
            "停止运营",
        ],
    );
    assert!(out.contains("cancellation requested"), "{out}");
}

/// The store's first subject.
fn first_subject(
    store: &beian::registry::store::sled::SledStore,
) -> beian::registry::model::Subject {
    use beian::registry::store::RegistryScan;
    let mut first = None;
    store
        .scan_subjects(&mut |s| {
            first = Some(s);
            false
        })
        .unwrap();
    first.unwrap()
}

/// The registry of `tests/data/registry-records-v0`, made by the release before typed generic
/// records (their bare JSON; attachments raw), copied to `to`; and its `fixture.json`.
fn records_fixture(to: &Path) -> serde_json::Value {
    let from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/registry-records-v0");
    restore_registry(&from.join("reg"), to);
    serde_json::from_str(&std::fs::read_to_string(from.join("fixture.json")).unwrap()).unwrap()
}

fn records_fixture_file(name: &str) -> Vec<u8> {
    std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/registry-records-v0")
            .join(name),
    )
    .unwrap()
}

/// The six-digit code of the last message to `to` whose subject contains `about`.
fn code_to(outbox: &[beian::accounts::service::Message], to: &str, about: &str) -> String {
    let m = outbox
        .iter()
        .rev()
        .find(|m| m.to == to && m.subject.contains(about))
        .unwrap_or_else(|| panic!("no message to {to} about {about}"));
    let i = m.body.find(|c: char| c.is_ascii_digit()).unwrap();
    m.body[i..i + 6].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generic_records_of_the_release_before_typed_records_still_serve() {
    use beian::accounts::service::{Accounts, Message};
    use beian::accounts::Actor;
    use beian::registry::store::records::TypedRecords;
    use beian::registry::store::{RegistryRead, RegistryScan};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("reg");
    let fx = records_fixture(&dir);
    let made_at = fx["made_at"].as_i64().unwrap();
    let now = made_at + 60;
    let outbox_then: Vec<Message> = String::from_utf8(records_fixture_file("outbox.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reg = beian::registry::Registry::open(&dir).unwrap();
    let store = reg.store();

    // The outbox and the notices read as the release that wrote them listed them.
    assert_eq!(Accounts::outbox(store).unwrap(), outbox_then);
    let notices = Accounts::notices(store).unwrap();
    assert!(
        !notices.is_empty(),
        "the approvals' notices wait for delivery"
    );
    for n in &notices {
        assert!(n.subject.contains("备案已通过"), "{n:?}");
        assert!(outbox_then.contains(n), "{n:?}");
    }

    // The session written then is still one (with the time it was made).
    let token = fx["session_token"].as_str().unwrap();
    assert_eq!(
        Accounts::authenticate(store, token, now).unwrap().username,
        "miit"
    );
    // The import authorisation (the old flag `1`) still holds.
    let isp = store.user("isp_one").unwrap().unwrap();
    assert!(matches!(
        Accounts::effective(store, isp).unwrap().actor,
        Actor::Isp {
            import_authorised: true,
            ..
        }
    ));
    let accounts = Accounts::new();
    // The login challenge left pending logs in with the code the outbox holds.
    let code = code_to(&outbox_then, "miit@example.gov.cn", "login code");
    let (new_token, _) = accounts
        .login_verify(store, fx["challenge_id"].as_str().unwrap(), &code, "c", now)
        .unwrap();
    assert_eq!(
        Accounts::authenticate(store, &new_token, now)
            .unwrap()
            .username,
        "miit"
    );
    // A new login sends its code to the contact written then.
    let (_, msgs) = accounts
        .login_start(
            store,
            "miit",
            fx["miit_password"].as_str().unwrap(),
            "c",
            now,
        )
        .unwrap();
    assert_eq!(msgs[0].to, "miit@example.gov.cn");
    // The pending self-registration activates with its two codes.
    let sms = code_to(&outbox_then, "13700000009", "registration");
    let mail = code_to(&outbox_then, "ww@example.com", "registration");
    accounts
        .activate(store, "wang_wu", &sms, &mail, now)
        .unwrap();
    assert_eq!(
        Accounts::contact(store, "wang_wu")
            .unwrap()
            .email
            .as_deref(),
        Some("ww@example.com")
    );
    // The pending contact change confirms with the code sent to the new mobile.
    let sms = code_to(&outbox_then, "13800000077", "contact change");
    let c = accounts
        .contact_change_confirm(store, "miit", None, Some(&sms), now)
        .unwrap();
    assert_eq!(
        (c.email.as_deref(), c.mobile.as_deref()),
        (Some("miit@example.gov.cn"), Some("13800000077"))
    );
    // The reset token sent then resets the password, and revokes the old sessions.
    let reset = outbox_then
        .iter()
        .find(|m| m.subject.contains("password reset"))
        .unwrap();
    let reset_token = reset.body.split("): ").nth(1).unwrap();
    let reset_token = reset_token.split('\n').next().unwrap();
    accounts
        .reset_confirm(store, reset_token, "new-secret-9", now)
        .unwrap();
    assert!(Accounts::authenticate(store, token, now).is_err());
    // Records written now are in the envelope; the ones of the old release still read.
    let stored = store.record("contact", "miit").unwrap().unwrap();
    assert!(stored.starts_with(&beian::registry::store::codec::MAGIC));
    assert!(store
        .load_record::<beian::accounts::service::Contacts>("jing_bureau")
        .unwrap()
        .is_some());
    // Expired records of both forms are purged.
    assert!(Accounts::purge_expired(store, made_at + 30 * 24 * 3600).unwrap() > 0);
    // The log accounts for every record, old and new.
    let audit = reg.verify_audit().unwrap();
    assert!(audit.ok(), "{audit:?}");
    let check = reg.check().unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    assert_eq!(
        Accounts::damaged_records(store).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        beian::api::announcements::damaged_records(store).unwrap(),
        Vec::<String>::new()
    );

    // The announcement and its attachment, through the API.
    let registry = std::sync::Arc::new(reg);
    let state =
        beian::api::AppState::new(registry.clone(), beian::config::Config::default()).unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let met = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", api.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(beian::api::serve(state, api, met, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let list: serde_json::Value = serde_json::from_str(
        &client
            .get(format!("{base}/api/announcements"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let id = fx["announcement"].as_str().unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["title"], "备案系统升级通知");
    let att = list[0]["attachments"][0]["id"].as_str().unwrap();
    let r = client
        .get(format!("{base}/api/announcements/{id}/attachments/{att}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let bytes = r.bytes().await.unwrap();
    assert_eq!(&bytes[..], &records_fixture_file("attachment.bin")[..]);
    let page = client
        .get(format!("{base}/announcements"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("备案系统升级通知"), "{page}");
    let _ = tx.send(());
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}
