//! The scanner's DNS cost per target, against a loopback DNS server
//! (`beian::crawl::labdns`): every target is looked up three times in a row, as a scan does
//! (the DNS observation, the homepage, the certificate), with many targets in flight. The
//! scanner's resolver options are measured against a baseline in the same run: the options
//! before (answers kept only as long as their TTL, a 1,024-entry cache), the rest of the
//! configuration equal. Reported per target: queries, AAAA queries, distinct client source
//! ports the server saw (hickory opens one UDP socket per query, on a random port in
//! 49152–65535, so this is the sockets less the ports that happened to repeat) and the
//! scanner's CPU time (the process's, less the lab server thread's); and the ratio tuned /
//! baseline.
//!
//! The server answers once with TTL 0 (what `dnsmasq --address` answers by default, as in
//! `benches/fleet`) and once with TTL 300.
//!
//! Between a target's lookups it waits as long as a fetch takes (20 ms by default, about a
//! loopback fleet's homepage), so other targets' lookups come in between, as in a scan.
//!
//! Run: `cargo bench --bench dns` (`DNS_BENCH_TARGETS`, `DNS_BENCH_CONCURRENCY`,
//! `DNS_BENCH_FETCH_MS` change the 4,000 targets, 1,000 in flight and 20 ms).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use beian::crawl::labdns::LabDns;
use beian::crawl::resolve::Resolver;
use beian::crawl::ScanConfig;
use futures::stream::{self, StreamExt};

/// Lookups per target, as a scan makes them.
const LOOKUPS: usize = 3;

struct Run {
    queries: f64,
    aaaa: f64,
    sockets: f64,
    cpu_us: f64,
    wall: Duration,
}

fn process_cpu() -> Duration {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage for the call to fill.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    assert_eq!(rc, 0, "getrusage");
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(us(ru.ru_utime) + us(ru.ru_stime))
}

fn run(
    rt: &tokio::runtime::Runtime,
    config: &ScanConfig,
    ttl: u32,
    targets: usize,
    fetch: Duration,
) -> Run {
    let dns = LabDns::start(Ipv4Addr::new(127, 0, 0, 2), ttl).expect("loopback DNS server");
    let mut config = config.clone();
    config.dns = Some(dns.addr());
    let concurrency = config.concurrency;
    let resolver = Resolver::new(&config);
    let server_before = dns.cpu_time().unwrap_or_default();
    let cpu_before = process_cpu();
    let start = Instant::now();
    let failures = rt.block_on(async {
        stream::iter(0..targets)
            .map(|i| {
                let resolver = &resolver;
                async move {
                    let host = format!("s{i}.bench.test");
                    let mut failed = 0usize;
                    for i in 0..LOOKUPS {
                        if i > 0 {
                            tokio::time::sleep(fetch).await;
                        }
                        failed += usize::from(resolver.lookup(&host).await.is_err());
                    }
                    failed
                }
            })
            .buffer_unordered(concurrency)
            .fold(0, |a, b| async move { a + b })
            .await
    });
    let wall = start.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    let server = dns
        .cpu_time()
        .unwrap_or_default()
        .saturating_sub(server_before);
    assert_eq!(failures, 0, "lookups failed");
    let s = dns.stats();
    let n = targets as f64;
    Run {
        queries: s.queries as f64 / n,
        aaaa: s.aaaa as f64 / n,
        sockets: s.sockets as f64 / n,
        cpu_us: cpu.saturating_sub(server).as_secs_f64() * 1e6 / n,
        wall,
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let targets = env_or("DNS_BENCH_TARGETS", 4_000);
    let concurrency = env_or("DNS_BENCH_CONCURRENCY", 1_000);
    let fetch = Duration::from_millis(env_or("DNS_BENCH_FETCH_MS", 20) as u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tuned = ScanConfig {
        concurrency,
        allow_private: true,
        ..ScanConfig::default()
    };
    let baseline = ScanConfig {
        dns_min_ttl_s: 0,
        dns_cache_size: 1_024,
        ..tuned.clone()
    };
    println!(
        "{targets} targets, {concurrency} in flight, {LOOKUPS} lookups per target {} ms apart; \
         tuned: min TTL {} s, cache {}; baseline: min TTL 0, cache 1024",
        fetch.as_millis(),
        tuned.dns_min_ttl_s,
        tuned.dns_cache_size
    );
    // Warm up the runtime and the code paths.
    run(&rt, &tuned, 300, 200, fetch);
    for ttl in [0u32, 300] {
        let b = run(&rt, &baseline, ttl, targets, fetch);
        let t = run(&rt, &tuned, ttl, targets, fetch);
        println!("server TTL {ttl}:");
        for (name, r) in [("baseline", &b), ("tuned", &t)] {
            println!(
                "  {name:<9} queries/target {:>5.2}  AAAA/target {:>4.2}  ports/target {:>5.2}  \
                 scanner CPU/target {:>6.1} µs  wall {:>6.0} ms",
                r.queries,
                r.aaaa,
                r.sockets,
                r.cpu_us,
                r.wall.as_secs_f64() * 1e3
            );
        }
        println!(
            "  tuned / baseline: queries {:.3}, ports {:.3}, CPU {:.3}",
            t.queries / b.queries,
            t.sockets / b.sockets,
            t.cpu_us / b.cpu_us
        );
    }
}
