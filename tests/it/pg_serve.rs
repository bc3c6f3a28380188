//! Several `beian serve` processes on one PostgreSQL database behave as one registry: two
//! servers take 1,000 concurrent submissions that conflict (ten different subjects file each
//! of 100 domains, the requests spread over both servers), and exactly one filing per domain
//! results; every other request is refused with a 409, none fails with a 500 or is lost, and
//! the audit chain the two processes wrote together verifies.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use beian::registry::store::{RegistryRead, RegistryScan};
use beian::registry::Registry;
use serde_json::Value;

use crate::beside::Serve;

const DOMAINS: usize = 100;
const REQUESTS: usize = 1000;
const PROVIDER: &str = "并发接入商";

fn filing(i: usize) -> String {
    let d = i % DOMAINS;
    format!(
        r#"{{"subject":{{"name":"并发公司{i}","nature":"企业","id_type":"统一社会信用代码","id_number":"91110000{i:09}Y","province":"京","address":"北京","contact":{{"name":"某"}}}},"website":{{"name":"站点{i}","homepage":"https://race{d}.com/","domains":["race{d}.com"],"ips":[],"providers":["{PROVIDER}"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#
    )
}

/// A copy of a registry directory's keys and database URL (what a second host gets).
fn copy_registry(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.join("keys")).unwrap();
    for e in std::fs::read_dir(from.join("keys")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("keys").join(e.file_name())).unwrap();
    }
    std::fs::copy(
        from.join(beian::registry::DATABASE_URL_FILE),
        to.join(beian::registry::DATABASE_URL_FILE),
    )
    .unwrap();
}

/// Two hosts' registry directories, `a` and `b`, on one fresh database: `a` initialised on
/// it, `b` a copy of `a` (what a second host gets).
fn two_hosts(tmp: &Path) -> (PathBuf, PathBuf) {
    let url = crate::pg::fresh_database();
    let (a, b) = (tmp.join("a"), tmp.join("b"));
    crate::beside::init(&a, &["--postgres", &url]);
    copy_registry(&a, &b);
    (a, b)
}

#[test]
fn two_serve_processes_on_one_database_take_concurrent_conflicting_imports() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_hosts(tmp.path());
    let servers = [Serve::start(&a), Serve::start(&b)];
    let targets: Vec<(String, String)> = servers
        .iter()
        .zip([&a, &b])
        .map(|(s, dir)| (format!("http://{}", s.api), Serve::operator_token(dir)))
        .collect();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes: Vec<(usize, u16, String)> = rt.block_on(async {
        let client = reqwest::Client::new();
        // All requests at once, at most 200 in flight (below the servers' connection caps).
        let gate = Arc::new(tokio::sync::Semaphore::new(200));
        let mut tasks = Vec::new();
        for i in 0..REQUESTS {
            let (base, token) = targets[i % 2].clone();
            let client = client.clone();
            let gate = gate.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.unwrap();
                let r = client
                    .post(format!("{base}/api/filings"))
                    .header("x-beian-operator", token)
                    .header("x-beian-as", format!("isp:{PROVIDER}"))
                    .header("content-type", "application/json")
                    .body(filing(i))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (i, status, r.text().await.unwrap_or_default())
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    for s in servers {
        s.stop();
    }

    let mut created: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
    let mut refused = 0;
    for (i, status, body) in &outcomes {
        match status {
            201 => {
                let v: Value = serde_json::from_str(body).unwrap();
                created
                    .entry(i % DOMAINS)
                    .or_default()
                    .push(v["id"].as_u64().unwrap());
            }
            409 => {
                let v: Value = serde_json::from_str(body).unwrap();
                let code = v["error"]["code"].as_str().unwrap();
                assert!(
                    ["duplicate_domain", "write_conflict"].contains(&code),
                    "{body}"
                );
                assert!(!body.contains("postgres"), "no internal detail: {body}");
                refused += 1;
            }
            other => panic!("request {i}: {other} {body}"),
        }
    }
    assert_eq!(outcomes.len(), REQUESTS);
    assert_eq!(created.len(), DOMAINS, "every domain was filed once");
    assert!(created.values().all(|ids| ids.len() == 1), "{created:?}");
    assert_eq!(refused, REQUESTS - DOMAINS);

    // The database holds exactly those filings, one per domain, and a sound audit chain.
    let reg = Registry::open(&a).unwrap();
    let mut filings = Vec::new();
    reg.store()
        .scan_filings(&mut |f| {
            filings.push(f);
            true
        })
        .unwrap();
    assert_eq!(filings.len(), DOMAINS);
    let ids: BTreeSet<u64> = created.values().flatten().copied().collect();
    assert_eq!(ids, filings.iter().map(|f| f.id).collect());
    for d in 0..DOMAINS {
        let dom = beian::domain::Domain::parse(&format!("race{d}.com")).unwrap();
        let id = reg.store().filing_by_domain(&dom).unwrap().unwrap();
        assert_eq!(Some(&vec![id]), created.get(&d));
    }
    let check = reg.check().unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
}

/// The schema is migrated on open and versioned: a second open applies nothing, and a
/// database whose schema is newer than this build's is refused with a message saying so.
#[test]
fn a_database_of_a_newer_schema_is_refused() {
    use beian::registry::store::postgres::{schema_version, PgStore};
    let url = crate::pg::fresh_database();
    let tmp = tempfile::tempdir().unwrap();
    let backend = beian::registry::Backend::Postgres { url: url.clone() };
    drop(Registry::init_on(&tmp.path().join("reg"), &backend, 1_750_000_000).unwrap());
    drop(PgStore::open(&url).unwrap());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        let versions: Vec<i32> = client
            .query("SELECT version FROM beian_schema ORDER BY version", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, (1..=schema_version()).collect::<Vec<_>>());
        client
            .execute(
                "INSERT INTO beian_schema (version) VALUES ($1)",
                &[&(schema_version() + 1)],
            )
            .await
            .unwrap();
    });
    let err = match PgStore::open(&url) {
        Ok(_) => panic!("a newer schema was accepted"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("newer than this beian"), "{err}");
}

/// Two servers on one database, each with its copy of the key directory: after one rotates
/// the keys marking the current key compromised, the other refuses to sign with its stale
/// copy (saying what to do) instead of issuing certificates under the compromised key; with
/// the rotated directory copied over, it signs under the new key.
#[test]
fn a_server_with_a_stale_key_directory_refuses_to_sign() {
    use beian::accounts::Actor;
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = two_hosts(tmp.path());
    let now = 1_750_000_000;
    let ra = Registry::open(&a).unwrap();
    let rb = Registry::open(&b).unwrap();
    let text: String = (0..3).map(|i| filing(i) + "\n").collect();
    ra.import_jsonl(
        std::io::Cursor::new(text),
        beian::registry::Submitter::RowProvider,
        now,
        10,
        &mut |_| {},
    )
    .unwrap();
    ra.verify_access(&Actor::isp(PROVIDER), PROVIDER, None, now)
        .unwrap();
    let old = ra.keyring().keys.keys().next().cloned().unwrap();
    let rotation = ra.rotate_keys(&Actor::Miit, Some(&old), now).unwrap();
    // B still holds only the compromised key.
    let r = rb.review_auto_by_each_bureau(now).unwrap();
    assert!(r.approved.is_empty(), "{r:?}");
    assert_eq!(r.refused.len(), 3, "{r:?}");
    for (_, why) in &r.refused {
        assert!(why.contains("rotated by another server"), "{why}");
    }
    let mut signed_by_old = 0;
    rb.store()
        .scan_filings(&mut |f| {
            signed_by_old += f.certificate.as_ref().is_some_and(|c| c.key_id == old) as usize;
            true
        })
        .unwrap();
    assert_eq!(signed_by_old, 0, "nothing signed with the compromised key");
    assert!(rb.rotate_keys(&Actor::Miit, None, now).is_err(), "no fork");
    drop(rb);
    copy_registry(&a, &b);
    let rb = Registry::open(&b).unwrap();
    let r = rb.review_auto_by_each_bureau(now).unwrap();
    assert_eq!(r.approved.len(), 3);
    rb.store()
        .scan_filings(&mut |f| {
            assert_eq!(
                f.certificate.as_ref().map(|c| c.key_id.clone()),
                Some(rotation.current.clone())
            );
            true
        })
        .unwrap();
}
