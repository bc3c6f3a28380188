//! Read-only replicas (`serve --replica-of`): the change feed applied record for record
//! (library level, a primary on sled and on PostgreSQL), refusals of pages that do not
//! continue the replica's chain, and a primary and its replica killed at random points while
//! 10,000 changes flow, after which the replica's state equals the primary's.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use beian::accounts::Actor;
use beian::registry::store::{AuditRecord, IpFilingScan, RegistryScan, StoreError};
use beian::registry::{Change, Registry, RegistryError};
use serde_json::Value;

use crate::beside::{init, Serve};

const NOW: i64 = 1_750_000_000;

/// Everything a replica keeps, comparable: subjects, filings, IP filings (as JSON), the
/// audit log record for record, and the public keyring.
#[derive(Debug, PartialEq)]
struct PublicState {
    subjects: Vec<Value>,
    filings: Vec<Value>,
    ip_filings: Vec<Value>,
    audit: Vec<AuditRecord>,
    keyring: Value,
    announcements: BTreeMap<String, Vec<u8>>,
}

/// Everything a store scan visits, as JSON.
fn json_of<T: serde::Serialize>(
    scan: impl FnOnce(&mut dyn FnMut(T) -> bool) -> Result<(), StoreError>,
) -> Vec<Value> {
    let mut out = Vec::new();
    scan(&mut |v| {
        out.push(serde_json::to_value(&v).unwrap());
        true
    })
    .unwrap();
    out
}

fn public_state(reg: &Registry) -> PublicState {
    let store = reg.store();
    let mut audit = Vec::new();
    store
        .scan_audit(&mut |_, r| {
            audit.push(r.unwrap());
            true
        })
        .unwrap();
    let mut announcements = BTreeMap::new();
    for kind in beian::registry::PUBLIC_RECORD_KINDS {
        store
            .scan_records(kind, &mut |k, v| {
                announcements.insert(format!("{kind}:{k}"), v.to_vec());
                true
            })
            .unwrap();
    }
    PublicState {
        subjects: json_of(|v| store.scan_subjects(v)),
        filings: json_of(|v| store.scan_filings(v)),
        ip_filings: json_of(|v| store.scan_ip_filings(v)),
        audit,
        keyring: serde_json::to_value(reg.keyring()).unwrap(),
        announcements,
    }
}

/// Follow `primary` into `replica` in pages of `page` records until caught up; returns the
/// pages applied.
fn follow(primary: &Registry, replica: &Registry, page: usize) -> usize {
    let mut pages = 0;
    loop {
        let head = replica.store().audit_head().unwrap().map(|(s, _)| s);
        let feed = primary.change_feed(head, page).unwrap();
        if feed.changes.is_empty() {
            assert_eq!(feed.head, head, "caught up");
            return pages;
        }
        let applied = replica.apply_changes(&feed.changes).unwrap();
        assert_eq!(applied.records as usize, feed.changes.len());
        assert!(
            applied.digest_mismatches.is_empty(),
            "{:?}",
            applied.digest_mismatches
        );
        pages += 1;
    }
}

/// Round 0: the filings fixture imported, verified and approved, two IP blocks filed and one
/// deleted. Round 1: a key rotation marking the key compromised (certificates re-issued).
fn lifecycle(reg: &Registry, round: i64) {
    if round == 0 {
        crate::registry::import(reg, "filings.jsonl");
        crate::registry::approve_all(reg);
        let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
        reg.record_ip_block(&Actor::isp("华北云"), "华北云", net("203.0.113.0/24"), NOW)
            .unwrap();
        let gone = reg
            .record_ip_block(
                &Actor::isp("华东数据"),
                "华东数据",
                net("198.51.100.0/24"),
                NOW,
            )
            .unwrap();
        reg.delete_ip_filing(&Actor::Miit, gone.id, NOW + 20)
            .unwrap();
    } else {
        // A key rotation with a compromised key re-issues certificates (filings change).
        let current = reg.keyring().keys.keys().next().cloned().unwrap();
        reg.rotate_keys(&Actor::Miit, Some(&current), NOW + 100)
            .unwrap();
    }
}

both! {
fn a_replica_applies_the_change_feed_record_for_record(tb) {
    let tmp = tempfile::tempdir().unwrap();
    let (primary, _) = tb.init(&tmp.path().join("primary"), NOW).unwrap();
    let replica_dir = tmp.path().join("replica");
    let replica = Registry::open_or_init_replica(&replica_dir, "test primary").unwrap();

    lifecycle(&primary, 0);
    // Small pages: records of one operation are split across pages.
    assert!(follow(&primary, &replica, 7) > 3);
    assert_eq!(public_state(&replica), public_state(&primary));
    // Lookups use the replica's own indexes.
    {
        use beian::registry::store::RegistryRead;
        let d = beian::domain::Domain::parse("example-bj.com").unwrap();
        assert_eq!(
            replica.store().filing_by_domain(&d).unwrap(),
            primary.store().filing_by_domain(&d).unwrap()
        );
        assert!(replica.store().filing_by_domain(&d).unwrap().is_some());
    }

    lifecycle(&primary, 1);
    follow(&primary, &replica, 1000);
    assert_eq!(public_state(&replica), public_state(&primary));
    assert_eq!(replica.keyring().keys.len(), 2);

    // Applying a page again changes nothing.
    let all = primary.change_feed(None, 5000).unwrap();
    let again = replica.apply_changes(&all.changes).unwrap();
    assert_eq!(again.records, 0);
    assert_eq!(public_state(&replica), public_state(&primary));

    // A reopened replica resumes from its own head, and the directory refuses writers.
    drop(replica);
    let err = Registry::open(&replica_dir).err().unwrap().to_string();
    assert!(err.contains("read-only replica of test primary"), "{err}");
    let replica = Registry::open_or_init_replica(&replica_dir, "test primary").unwrap();
    assert_eq!(public_state(&replica), public_state(&primary));
}
}

fn diverged(e: RegistryError) -> (u64, String) {
    match e {
        RegistryError::Store(StoreError::Diverged { seq, reason }) => (seq, reason),
        other => panic!("not a divergence: {other}"),
    }
}

#[test]
fn pages_that_do_not_continue_the_chain_are_refused_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (primary, _) = Registry::init(&tmp.path().join("p"), NOW).unwrap();
    lifecycle(&primary, 0);
    let replica = Registry::open_or_init_replica(&tmp.path().join("r"), "p").unwrap();
    let feed = primary.change_feed(None, 5000).unwrap();
    let changes = feed.changes;
    assert!(changes.len() > 20);

    // A gap: the first record missing.
    let (seq, why) = diverged(replica.apply_changes(&changes[1..]).unwrap_err());
    assert_eq!(seq, 1);
    assert!(why.contains("next record is 0"), "{why}");
    assert_eq!(
        replica.store().audit_head().unwrap(),
        None,
        "nothing written"
    );

    // A forged record: its content changed, its hash not.
    let mut forged: Vec<Change> = changes[..10].to_vec();
    let i = forged
        .iter()
        .position(|c| c.record.entity.starts_with("filing:"))
        .unwrap();
    forged[i].record.after.as_mut().unwrap()["name"] = Value::from("伪造");
    let (seq, why) = diverged(replica.apply_changes(&forged).unwrap_err());
    assert_eq!(seq, i as u64);
    assert!(why.contains("hash"), "{why}");
    assert_eq!(
        replica.store().audit_head().unwrap(),
        None,
        "nothing written"
    );

    // Another registry's log cannot continue this one.
    replica.apply_changes(&changes[..5]).unwrap();
    let (other, _) = Registry::init(&tmp.path().join("o"), NOW + 1).unwrap();
    lifecycle(&other, 0);
    let theirs = other.change_feed(Some(4), 10).unwrap();
    let (seq, why) = diverged(replica.apply_changes(&theirs.changes).unwrap_err());
    assert_eq!(seq, 5);
    assert!(why.contains("follows"), "{why}");
    assert_eq!(replica.store().audit_head().unwrap().map(|h| h.0), Some(4));
}

// ---- processes: a primary and its replica killed at random points ----

const PROVIDER: &str = "复制接入商";

fn filing_line(i: usize) -> String {
    format!(
        r#"{{"subject":{{"name":"复制公司{i}","nature":"企业","id_type":"统一社会信用代码","id_number":"91110000{i:09}Y","province":"京","address":"北京","contact":{{"name":"某"}}}},"website":{{"name":"站点{i}","homepage":"https://rep{i}.com/","domains":["rep{i}.com"],"ips":[],"providers":["{PROVIDER}"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#
    )
}

/// A tiny deterministic generator (xorshift), so a failure can be replayed by its seed.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Blocking HTTP over the async client (one runtime for the test's thread).
struct Http {
    rt: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl Http {
    fn new() -> Http {
        Http {
            rt: tokio::runtime::Runtime::new().unwrap(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// (status, body), or the transport error (a killed server).
    fn send(
        &self,
        build: impl FnOnce(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<(u16, String), reqwest::Error> {
        let req = build(&self.client);
        self.rt.block_on(async move {
            let r = req.send().await?;
            let status = r.status().as_u16();
            Ok((status, r.text().await.unwrap_or_default()))
        })
    }
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The primary and the replica are SIGKILLed at random points while imports, access
/// verifications and reviews (10,000 audited changes or more) flow into the primary; each
/// is started again at once. The replica follows the primary's directory (its `serve.json`
/// says where the restarted primary listens). At the end the replica's state — filings,
/// subjects, IP filings, the audit log record for record, the keyring — equals the
/// primary's: no change lost, none applied twice.
#[test]
fn a_replica_killed_with_its_primary_at_random_points_ends_identical() {
    const CHANGES: u64 = 10_000;
    let seed = std::env::var("BEIAN_REPLICA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_beef_u64);
    eprintln!("seed {seed:#x} (set BEIAN_REPLICA_SEED to replay)");
    let mut rng = Rng(seed);
    let tmp = tempfile::tempdir().unwrap();
    let (pdir, rdir) = (tmp.path().join("primary"), tmp.path().join("replica"));
    init(&pdir, &[]);
    let replica_args = ["--replica-of", pdir.to_str().unwrap()];
    let mut primary = Serve::start_with(&pdir, &[]);
    let mut replica = Serve::start_with(&rdir, &replica_args);
    let http = Http::new();
    let (mut next, mut kills) = (0usize, (0, 0));
    let mut head = 0u64;
    while head < CHANGES {
        // A batch of 20..60 filings, then half of them verified and the bureau's review.
        let n = 20 + rng.below(40) as usize;
        let body: String = (next..next + n).map(|i| filing_line(i) + "\n").collect();
        next += n;
        let token = Serve::operator_token(&pdir);
        let isp = format!("isp:{PROVIDER}");
        let api = primary.url();
        if let Ok((status, text)) = http.send(|c| {
            c.post(format!("{api}/api/filings/import"))
                .header("x-beian-operator", &token)
                .header("x-beian-as", &isp)
                .header("content-type", "application/x-ndjson")
                .body(body)
        }) {
            assert_eq!(status, 200, "{text}");
            let v: Value = serde_json::from_str(&text).unwrap();
            for pair in v["accepted"].as_array().into_iter().flatten().take(n / 2) {
                let id = pair.get(1).and_then(Value::as_u64).unwrap_or(0);
                let _ = http.send(|c| {
                    c.post(format!("{api}/api/filings/{id}/verify-access"))
                        .header("x-beian-operator", &token)
                        .header("x-beian-as", &isp)
                });
            }
            let _ = http.send(|c| {
                c.post(format!("{api}/api/review/auto"))
                    .header("x-beian-operator", &token)
                    .header("x-beian-as", "bureau:京")
            });
        }
        // Kill at random: the primary about one batch in six, the replica one in four.
        if rng.below(6) == 0 {
            // Sometimes with a request in flight when the process dies.
            let api = primary.url();
            let t = Serve::operator_token(&pdir);
            let inflight = std::thread::spawn(move || {
                let body: String = (1_000_000..1_000_040)
                    .map(|i| filing_line(i) + "\n")
                    .collect();
                let _ = Http::new().send(|c| {
                    c.post(format!("{api}/api/filings/import"))
                        .header("x-beian-operator", t)
                        .header("x-beian-as", format!("isp:{PROVIDER}"))
                        .body(body)
                });
            });
            std::thread::sleep(Duration::from_millis(rng.below(40)));
            primary.kill9();
            let _ = inflight.join();
            kills.0 += 1;
            primary = Serve::start_with(&pdir, &[]);
        }
        if rng.below(4) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            replica.kill9();
            kills.1 += 1;
            replica = Serve::start_with(&rdir, &replica_args);
        }
        let api = primary.url();
        let token = Serve::operator_token(&pdir);
        let (_, text) = http
            .send(|c| {
                c.get(format!("{api}/api/replication/feed?limit=1"))
                    .header("x-beian-operator", &token)
                    .header("x-beian-as", "miit")
            })
            .unwrap();
        let feed: Value = serde_json::from_str(&text).unwrap();
        head = feed["head"].as_u64().unwrap_or(0);
    }
    assert!(kills.0 > 0 && kills.1 > 0, "{kills:?}");
    // The replica catches up: its metrics say no lag, at the primary's head.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let url = replica.metrics_url();
        let (_, text) = http.send(|c| c.get(url)).unwrap();
        let applied = metric(&text, "beian_replica_applied_seq");
        let lag = metric(&text, "beian_replica_lag_records");
        if applied == Some(head as f64) && lag == Some(0.0) {
            assert_eq!(metric(&text, "beian_replica_lag_seconds"), Some(0.0));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "replica stuck: {applied:?} {lag:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The replica answers the public query from its copy, and refuses writes.
    let api = replica.url();
    let (_, text) = http
        .send(|c| c.get(format!("{api}/api/filed?domain=rep0.com")))
        .unwrap();
    let filed: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(filed["filed"], Value::Bool(true), "{filed}");
    let (status, text) = http
        .send(|c| c.post(format!("{api}/api/filings/import")).body("{}"))
        .unwrap();
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("read-only replica"), "{text}");
    primary.stop();
    replica.stop();

    let p = Registry::open(&pdir).unwrap();
    let r = Registry::open_or_init_replica(
        &rdir,
        &std::fs::canonicalize(&pdir).unwrap().display().to_string(),
    )
    .unwrap();
    let (ps, rs) = (public_state(&p), public_state(&r));
    assert!(ps.audit.len() as u64 > CHANGES);
    assert_eq!(rs.audit.len(), ps.audit.len());
    assert_eq!(rs, ps);
    eprintln!(
        "{} changes, {} filings; primary killed {} times, replica {} times",
        ps.audit.len(),
        ps.filings.len(),
        kills.0,
        kills.1
    );
}

/// A replica on another host names its primary by URL and presents the replication token;
/// the feed refuses anonymous callers, a wrong token and roles other than MIIT. Public
/// records (announcements) reach the replica with their content; private ones (sessions,
/// users) do not.
#[test]
fn a_replica_follows_a_url_with_the_replication_token() {
    let tmp = tempfile::tempdir().unwrap();
    let (pdir, rdir) = (tmp.path().join("primary"), tmp.path().join("replica"));
    init(&pdir, &[]);
    let primary = Serve::start_with(&pdir, &["--replication-token", "s3cret-token"]);
    let api = primary.url();
    let http = Http::new();
    let token = Serve::operator_token(&pdir);
    let feed = |headers: &[(&str, &str)]| {
        let (status, _) = http
            .send(|c| {
                let mut r = c.get(format!("{api}/api/replication/feed"));
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r
            })
            .unwrap();
        status
    };
    assert_eq!(feed(&[]), 401);
    assert_eq!(feed(&[("x-beian-replication-token", "wrong")]), 401);
    assert_eq!(
        feed(&[("x-beian-operator", &token), ("x-beian-as", "isp:某接入商")]),
        403
    );
    assert_eq!(feed(&[("x-beian-replication-token", "s3cret-token")]), 200);

    let body: String = (0..30).map(|i| filing_line(i) + "\n").collect();
    let (status, text) = http
        .send(|c| {
            c.post(format!("{api}/api/filings/import"))
                .header("x-beian-operator", &token)
                .header("x-beian-as", format!("isp:{PROVIDER}"))
                .body(body)
        })
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let id = v["accepted"][3][1].as_u64().unwrap();
    let (status, text) = http
        .send(|c| {
            c.post(format!("{api}/api/filings/{id}/verify-access"))
                .header("x-beian-operator", &token)
                .header("x-beian-as", format!("isp:{PROVIDER}"))
        })
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let (status, text) = http
        .send(|c| {
            c.post(format!("{api}/api/review/auto"))
                .header("x-beian-operator", &token)
                .header("x-beian-as", "bureau:京")
        })
        .unwrap();
    assert_eq!(status, 200, "{text}");
    let (status, text) = http
        .send(|c| {
            c.post(format!("{api}/api/announcements"))
                .header("x-beian-operator", &token)
                .header("x-beian-as", "miit")
                .header("content-type", "application/json")
                .body(
                    serde_json::json!({"title": "复制公告", "body": "正文", "category": "law"})
                        .to_string(),
                )
        })
        .unwrap();
    assert_eq!(status, 201, "{text}");

    // Without the token the primary refuses the replica, which keeps trying.
    let replica = Serve::start_with(&rdir, &["--replica-of", &api]);
    std::thread::sleep(Duration::from_millis(1500));
    let url = replica.metrics_url();
    let (_, text) = http.send(|c| c.get(url.clone())).unwrap();
    assert_eq!(
        metric(&text, "beian_replica_applied_seq"),
        Some(-1.0),
        "{text}"
    );
    assert!(metric(&text, "beian_replica_errors_total{kind=\"fetch\"}").unwrap_or(0.0) >= 1.0);
    replica.stop();

    let replica = Serve::start_with(
        &rdir,
        &["--replica-of", &api, "--replication-token", "s3cret-token"],
    );
    let (rapi, url) = (replica.url(), replica.metrics_url());
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, text) = http.send(|c| c.get(url.clone())).unwrap();
        if metric(&text, "beian_replica_lag_records") == Some(0.0)
            && metric(&text, "beian_replica_applied_seq").unwrap_or(-1.0) > 30.0
        {
            break;
        }
        assert!(Instant::now() < deadline, "{text}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, text) = http
        .send(|c| c.get(format!("{rapi}/api/announcements")))
        .unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("复制公告"), "{text}");
    let (_, page) = http
        .send(|c| c.get(format!("{rapi}/announcements")))
        .unwrap();
    assert!(page.contains("复制公告"), "the replica's page lists it");
    let (status, page) = http.send(|c| c.get(format!("{rapi}/?q=rep3.com"))).unwrap();
    assert_eq!(status, 200);
    assert!(
        page.contains("class=\"number\">京ICP备"),
        "the replica shows the filing approved on the primary: {page}"
    );
    // No accounts on a replica: login is not served.
    let (status, _) = http
        .send(|c| {
            c.post(format!("{rapi}/api/login"))
                .header("content-type", "application/json")
                .body("{}")
        })
        .unwrap();
    assert_eq!(status, 404);
    primary.stop();
    replica.stop();

    let p = Registry::open(&pdir).unwrap();
    let r = Registry::open_or_init_replica(&rdir, &api).unwrap();
    assert_eq!(public_state(&r), public_state(&p));
    let mut users = 0;
    r.store()
        .scan_users(&mut |_| {
            users += 1;
            true
        })
        .unwrap();
    assert_eq!(users, 0, "no accounts are replicated");
}
