//! A store written by the release before the versioned record codec (`tests/data/registry-v0`,
//! see its README) opens with the current code: its records are migrated in place, and the same
//! filings, IP filings, users and audit chain come back, through the real binary.

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
    copy_dir(&fixture().join("reg"), &reg);
    // Git does not keep modes or empty directories: restore what the registry expects.
    std::fs::create_dir_all(reg.join("store/blobs")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for e in std::fs::read_dir(reg.join("keys")).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "key") {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
        }
    }
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
