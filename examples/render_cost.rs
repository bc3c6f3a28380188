//! Rough cost of rendering: scans a loopback fleet of pages whose footer only JavaScript
//! writes (half `document.write`, half a template mounted from same-origin JSON), first with
//! rendering off (the static baseline), then with `render = auto`, and prints wall time and
//! CPU time (this process plus every Chromium process it started) per page.
//!
//! ```sh
//! cargo run --example render_cost -- [PAGES=20] [TABS=2]
//! ```
//!
//! Needs Debian's `chromium`. Traffic stays on 127.0.0.2.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use beian::crawl::{scan_stream, RenderMode, ScanConfig, Scanner};
use beian::fleet::{Fleet, LabResponse, LabSite};
use beian::observation::{Observation, RenderStatus};
use futures::StreamExt;

const LAB_IP: &str = "127.0.0.2";

/// utime + stime (clock ticks) of `root` and all its descendants, from `/proc`.
fn cpu_ticks_tree(root: u32) -> u64 {
    let mut parent: HashMap<u32, u32> = HashMap::new();
    let mut ticks: HashMap<u32, u64> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    for entry in entries.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses and may contain spaces).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
        let num = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
        if let (Some(ppid), Some(utime), Some(stime)) = (num(4), num(14), num(15)) {
            parent.insert(pid, ppid as u32);
            ticks.insert(pid, utime + stime);
        }
    }
    let descends = |mut pid: u32| {
        for _ in 0..64 {
            if pid == root {
                return true;
            }
            match parent.get(&pid) {
                Some(&p) if p != 0 => pid = p,
                _ => return false,
            }
        }
        false
    };
    ticks
        .iter()
        .filter(|(pid, _)| descends(**pid))
        .map(|(_, t)| *t)
        .sum()
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn site(host: &str, index: usize) -> LabSite {
    let number = format!("京ICP备{:08}号", 10_000_000 + index);
    let chrome = "<header><h1>欢迎</h1><nav>首页 产品 关于</nav></header><main><p>内容</p></main>";
    if index.is_multiple_of(2) {
        let html = format!(
            "<!doctype html><html><head><meta charset=utf-8></head><body>{chrome}\
             <script>document.write('<footer><a href=\"https://beian.miit.gov.cn/\">{number}</a></footer>')</script>\
             </body></html>"
        );
        LabSite::new(host).route("/", LabResponse::html(html))
    } else {
        let html = format!(
            r#"<!doctype html><html><head><meta charset=utf-8></head><body>{chrome}<div id="app"></div>
            <template id="t"><footer><a href="https://beian.miit.gov.cn/"></a></footer></template>
            <script>fetch('/site.json').then(r => r.json()).then(s => {{
              const t = document.getElementById('t').content.cloneNode(true);
              t.querySelector('a').textContent = s.icp;
              document.getElementById('app').appendChild(t);
            }});</script></body></html>"#
        );
        LabSite::new(host)
            .route("/", LabResponse::html(html))
            .route(
                "/site.json",
                LabResponse {
                    status: 200,
                    content_type: "application/json".into(),
                    headers: Vec::new(),
                    body: format!(r#"{{"icp":"{number}"}}"#).into_bytes(),
                },
            )
    }
}

async fn scan(scanner: Arc<Scanner>, targets: Vec<String>) -> Vec<Observation> {
    scan_stream(scanner, futures::stream::iter(targets), 8)
        .collect()
        .await
}

#[tokio::main]
async fn main() {
    // RUST_LOG=beian::crawl::render=debug shows each render's steps.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let pages: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let tabs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2);
    let hz = clock_ticks_per_second();
    let me = std::process::id();

    let mut sites: Vec<LabSite> = (0..pages).map(|i| site(&format!("js{i}.lab"), i)).collect();
    sites.push(site("warm.lab", 0));
    let fleet = Fleet::start(format!("{LAB_IP}:0").parse().unwrap(), sites)
        .await
        .expect("start the lab fleet");
    let port = fleet.addr.port();
    let mut config = ScanConfig {
        allow_nets: vec![format!("{LAB_IP}/32").parse().unwrap()],
        rate: None,
        host_rate: None,
        render_tabs: tabs,
        ..ScanConfig::default()
    };
    for host in &fleet.hosts {
        config
            .overrides
            .insert(host.clone(), vec![LAB_IP.parse().unwrap()]);
    }
    let targets: Vec<String> = (0..pages)
        .map(|i| format!("http://js{i}.lab:{port}/"))
        .collect();

    // Static baseline.
    config.render = RenderMode::Off;
    let scanner = Arc::new(Scanner::new(config.clone()).expect("scanner"));
    let _ = scan(scanner.clone(), targets.clone()).await; // warm the fleet and the code paths
    let (cpu0, wall0) = (cpu_ticks_tree(me), Instant::now());
    let off = scan(scanner, targets.clone()).await;
    let (off_cpu, off_wall) = ((cpu_ticks_tree(me) - cpu0) as f64 / hz, wall0.elapsed());
    assert!(off
        .iter()
        .all(|o| o.render.as_ref().map(|r| r.status) == Some(RenderStatus::Off)));

    // Rendering: one warm-up page starts Chromium (reported separately).
    config.render = RenderMode::Auto;
    let scanner = Arc::new(Scanner::new(config).expect("scanner"));
    let (cpu0, wall0) = (cpu_ticks_tree(me), Instant::now());
    let warm = scan(scanner.clone(), vec![format!("http://warm.lab:{port}/")]).await;
    let (warm_cpu, warm_wall) = ((cpu_ticks_tree(me) - cpu0) as f64 / hz, wall0.elapsed());
    let warm_status = warm[0].render.as_ref().map(|r| r.status);
    tokio::time::sleep(Duration::from_millis(500)).await;

    let (cpu0, wall0) = (cpu_ticks_tree(me), Instant::now());
    let on = scan(scanner.clone(), targets).await;
    let on_wall = wall0.elapsed();
    let on_cpu = (cpu_ticks_tree(me) - cpu0) as f64 / hz;

    let records: Vec<_> = on.iter().filter_map(|o| o.render.as_ref()).collect();
    let rendered = records
        .iter()
        .filter(|r| r.status == RenderStatus::Rendered)
        .count();
    let found = on
        .iter()
        .filter(|o| o.page.as_ref().is_some_and(|p| !p.icp.is_empty()))
        .count();
    let mut ms: Vec<u64> = records.iter().map(|r| r.elapsed_ms).collect();
    ms.sort_unstable();
    let pct = |p: f64| {
        ms.get(((ms.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0)
    };
    let n = pages as f64;

    println!(
        "pages: {pages}, tabs: {tabs}, cores: {}",
        std::thread::available_parallelism().map_or(0, |c| c.get())
    );
    println!(
        "static baseline (render off): wall {:.0} ms, CPU {:.2} s ({:.0} ms/page)",
        off_wall.as_secs_f64() * 1e3,
        off_cpu,
        off_cpu * 1e3 / n
    );
    println!(
        "Chromium start + first page: wall {:.0} ms, CPU {warm_cpu:.2} s, status {warm_status:?}",
        warm_wall.as_secs_f64() * 1e3
    );
    println!("render auto: {rendered}/{pages} rendered, {found} with a number; wall {:.0} ms ({:.0} ms/page at {tabs} tabs)", on_wall.as_secs_f64() * 1e3, on_wall.as_secs_f64() * 1e3 / n);
    println!(
        "  per render (tab open -> DOM read): mean {:.0} ms, p50 {} ms, p90 {} ms, max {} ms",
        ms.iter().sum::<u64>() as f64 / n,
        pct(0.5),
        pct(0.9),
        pct(1.0)
    );
    println!(
        "  CPU (scanner + Chromium): {on_cpu:.2} s, {:.0} ms/page; minus static: {:.0} ms/page",
        on_cpu * 1e3 / n,
        (on_cpu - off_cpu) * 1e3 / n
    );
}
