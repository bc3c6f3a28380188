//! Registry benchmark (a plain bench binary; run with `cargo bench --bench registry`):
//!
//! 1. import N filings (default 100k) through `Registry::import_jsonl` — the same library
//!    path `beian filing import` uses — then `verify_access --all` and `review_auto`; reports
//!    filings/s against the goal of ≥ 20k filings/s;
//! 2. p50/p99 of a lookup by domain (index + record decode) on a store of M filings
//!    (default 1M), against the goal of p99 < 50 µs; the same lookups through the sled
//!    domain tree (the path before the in-memory domain index), alternating in the same run.
//!
//! Sizes: `BEIAN_BENCH_IMPORT` and `BEIAN_BENCH_LOOKUP` (filings).
//!
//! Backend: `BEIAN_BENCH_BACKEND=postgres` with `BEIAN_BENCH_DATABASE_URL` naming a server's
//! maintenance database (`postgres://postgres@127.0.0.1:5432/postgres`): the bench (re)creates
//! the databases `beian_bench_import` and `beian_bench_lookup` there. Default: sled.

use std::io::Cursor;
use std::time::Instant;

use beian::accounts::Actor;
use beian::domain::Domain;
use beian::registry::store::any::AnyStore;
use beian::registry::store::RegistryRead;
use beian::registry::{Backend, Registry, Submitter};

/// The allocator `beian` itself runs on (see `src/main.rs`), so the figures are the CLI's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NOW: i64 = 1_750_000_000;

fn line(i: usize) -> String {
    format!(
        r#"{{"subject":{{"name":"基准公司{i}","nature":"企业","id_type":"统一社会信用代码","id_number":"91110000{i:09}Y","province":"京","address":"北京","contact":{{"name":"某"}}}},"website":{{"name":"站点{i}","homepage":"https://bench{i}.com/","domains":["bench{i}.com"],"ips":["10.{}.{}.{}"],"providers":["基准接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#,
        (i >> 16) & 255,
        (i >> 8) & 255,
        i & 255
    )
}

fn jsonl(from: usize, to: usize) -> String {
    let mut s = String::with_capacity((to - from) * 420);
    for i in from..to {
        s.push_str(&line(i));
        s.push('\n');
    }
    s
}

/// CPU seconds this process has used (all threads, user + system).
fn cpu_seconds() -> f64 {
    // SAFETY: `getrusage` writes into the zeroed struct we pass and reads nothing of ours.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Where the bench's registry `name` keeps its store (see the module docs).
fn backend(name: &str) -> Backend {
    if std::env::var("BEIAN_BENCH_BACKEND").as_deref() != Ok("postgres") {
        return Backend::Sled;
    }
    let base = std::env::var("BEIAN_BENCH_DATABASE_URL").expect("BEIAN_BENCH_DATABASE_URL");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect");
        tokio::spawn(conn);
        let db = format!("beian_bench_{name}");
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
            .await
            .expect("drop");
        client
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .expect("create");
        let mut url = url::Url::parse(&base).expect("url");
        url.set_path(&format!("/{db}"));
        Backend::Postgres {
            url: url.to_string(),
        }
    })
}

fn main() {
    // `cargo bench` passes `--bench`; ignore arguments.
    // As `beian` does first (see `cli::no_transparent_huge_pages`).
    // SAFETY: integer arguments only; sets a flag of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    let n_import = env_usize("BEIAN_BENCH_IMPORT", 100_000);
    let n_lookup = env_usize("BEIAN_BENCH_LOOKUP", 1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");

    println!(
        "backend: {}",
        std::env::var("BEIAN_BENCH_BACKEND").unwrap_or_else(|_| "sled".into())
    );
    let (reg, _) =
        Registry::init_on(&dir.path().join("reg"), &backend("import"), NOW).expect("init");
    let text = jsonl(0, n_import);
    let cpu = cpu_seconds();
    let t = Instant::now();
    let report = reg
        .import_jsonl(
            Cursor::new(text),
            Submitter::RowProvider,
            NOW,
            1000,
            &mut |_| {},
        )
        .expect("import");
    let t_import = t.elapsed();
    let cpu_import = cpu_seconds() - cpu;
    assert_eq!(report.accepted.len(), n_import);
    let t2 = Instant::now();
    let verified = reg
        .verify_access(&Actor::isp("基准接入商"), "基准接入商", None, NOW)
        .expect("verify");
    let t_verify = t2.elapsed();
    let t3 = Instant::now();
    let review = reg.review_auto_by_each_bureau(NOW).expect("review");
    let t_review = t3.elapsed();
    assert_eq!(verified.len(), n_import);
    assert_eq!(review.approved.len(), n_import);
    let total = t_import + t_verify + t_review;
    let rate = n_import as f64 / total.as_secs_f64();
    println!(
        "import {n_import} filings: import {:.2}s, verify-access {:.2}s, review --auto {:.2}s (incl. signing) → {:.0} filings/s end to end (goal ≥ 20000: {})",
        t_import.as_secs_f64(),
        t_verify.as_secs_f64(),
        t_review.as_secs_f64(),
        rate,
        if rate >= 20_000.0 { "met" } else { "not met" }
    );
    println!(
        "import alone: {:.0} filings/s; CPU {:.1} µs per filing (all threads)",
        n_import as f64 / t_import.as_secs_f64(),
        cpu_import * 1e6 / n_import as f64
    );
    drop(reg);

    // Lookup store: import up to n_lookup filings (submissions only: lookups need the index).
    let (reg, _) =
        Registry::init_on(&dir.path().join("big"), &backend("lookup"), NOW).expect("init");
    let t = Instant::now();
    let step = 100_000;
    let mut from = 0;
    while from < n_lookup {
        let to = (from + step).min(n_lookup);
        reg.import_jsonl(
            Cursor::new(jsonl(from, to)),
            Submitter::RowProvider,
            NOW,
            5000,
            &mut |_| {},
        )
        .expect("import");
        from = to;
    }
    println!(
        "built a {n_lookup}-filing store in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    let store = reg.store();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let samples = 100_000;
    let domains: Vec<Domain> = (0..samples)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Domain::parse(&format!("bench{}.com", x as usize % n_lookup)).expect("domain")
        })
        .collect();
    // This path (in-memory domain index, then the record) and the earlier one (the domain
    // read from the sled tree, then the record), alternating lookup by lookup over the same
    // domains, so that neither gets the cold or the warm pages.
    let mut lat = Vec::with_capacity(samples);
    let mut lat_tree = Vec::with_capacity(samples);
    let mut lat_index = Vec::with_capacity(samples);
    let t = Instant::now();
    store.warm_lookups().expect("warm");
    println!(
        "warm_lookups (builds the in-memory domain index, reads the filings once): {:.2}s",
        t.elapsed().as_secs_f64()
    );
    for (i, d) in domains.iter().enumerate() {
        let tree_first = i % 2 == 0;
        for tree in [tree_first, !tree_first] {
            let t = Instant::now();
            let id = match store {
                AnyStore::Sled(s) if tree => s.filing_by_domain_from_tree(d),
                _ => store.filing_by_domain(d),
            }
            .expect("lookup")
            .expect("present");
            let t_id = t.elapsed();
            let f = store.filing(id).expect("read").expect("present");
            let total = t.elapsed().as_nanos() as u64;
            if tree {
                lat_tree.push(total);
            } else {
                lat.push(total);
                lat_index.push(t_id.as_nanos() as u64);
            }
            std::hint::black_box(f);
        }
    }
    let pct = |lat: &mut Vec<u64>, q: f64| {
        lat.sort_unstable();
        lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0
    };
    let (p50, p99) = (pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    let (t50, t99) = (pct(&mut lat_tree, 0.5), pct(&mut lat_tree, 0.99));
    let (i50, i99) = (pct(&mut lat_index, 0.5), pct(&mut lat_index, 0.99));
    println!(
        "lookup by domain on {n_lookup} filings ({samples} random lookups, index + decode): p50 {p50:.1} µs, p99 {p99:.1} µs (goal p99 < 50 µs: {})",
        if p99 < 50.0 { "met" } else { "not met" }
    );
    println!("  of which the domain → id step: p50 {i50:.2} µs, p99 {i99:.2} µs");
    if !matches!(store, AnyStore::Sled(_)) {
        return;
    }
    println!(
        "same lookups through the sled domain tree (the earlier path): p50 {t50:.1} µs, p99 {t99:.1} µs; ratios this/earlier p50 {:.2}, p99 {:.2}",
        p50 / t50,
        p99 / t99
    );
}
