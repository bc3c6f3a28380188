//! `beian serve` with a `[schedule]` over a loopback fleet of 50 sites, scraped by a real
//! Prometheus (Debian's `prometheus`, started here) with the shipped `prometheus.yml` and alert
//! rules: the target is up, every query of the compliance dashboards returns series, scans are
//! kept in the history, and no alert is pending or firing.

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use beian::accounts::Actor;
use beian::fleet::{Fleet, LabResponse, LabSite};
use beian::registry::{FilingKey, Registry, Submitter};

const SITES: usize = 50;
const PROVINCES: [(&str, &str); 3] = [("京", "110000"), ("沪", "310000"), ("粤", "440000")];

fn host(i: usize) -> String {
    format!("site{i}.test")
}

fn filing_line(i: usize) -> String {
    let (prov, code) = PROVINCES[i % PROVINCES.len()];
    format!(
        r#"{{"subject":{{"name":"监测公司{i}","nature":"企业","id_type":"统一社会信用代码","id_number":"91{code}{i:09}X","province":"{prov}","address":"地址","contact":{{"name":"某"}}}},"website":{{"name":"站点{i}","homepage":"http://{h}/","domains":["{h}"],"ips":[],"providers":["监测接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}}}"#,
        h = host(i)
    )
}

fn page(footer: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>站点</title></head><body><main><h1>欢迎</h1><p>本站提供资讯与服务。</p></main><footer><p>© 2026 版权所有</p>{footer}</footer></body></html>"
    )
}

/// A child process killed (by its pid) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A registry with 50 filings over three provinces: 45 served correctly, 2 without their
/// number in the footer, 1 revoked but still online; plus 2 unfiled sites. Returns the sites.
fn build_registry(dir: &Path, now: i64) -> Vec<LabSite> {
    let (registry, _) = Registry::init(dir, now - 3600).unwrap();
    let filed = SITES - 2;
    let text: Vec<String> = (0..filed).map(filing_line).collect();
    let report = registry
        .import_jsonl(
            text.join("\n").as_bytes(),
            Submitter::RowProvider,
            now - 3600,
            1000,
            &mut |_| {},
        )
        .unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    registry
        .verify_access(&Actor::isp("监测接入商"), "监测接入商", None, now - 3600)
        .unwrap();
    registry.review_auto_by_each_bureau(now - 3600).unwrap();
    let mut sites = Vec::new();
    for i in 0..filed {
        let h = host(i);
        let view = registry.filing_view(&FilingKey::Domain(h.clone())).unwrap();
        let number = view.service_number.expect("numbered");
        let cert = registry.certificate_for(&h).unwrap().text;
        let footer = if (45..47).contains(&i) {
            String::new()
        } else {
            format!("<p><a href=\"https://beian.miit.gov.cn/\">{number}</a></p>")
        };
        sites.push(
            LabSite::new(&h)
                .route("/", LabResponse::html(page(&footer)))
                .route("/cert/bazs.cert", LabResponse::text(cert.into_bytes())),
        );
    }
    registry
        .revoke(
            &Actor::Miit,
            &FilingKey::Domain(host(47)),
            "监测测试：吊销后仍在线",
            now - 1800,
        )
        .unwrap();
    for i in filed..SITES {
        sites.push(LabSite::new(&host(i)).route("/", LabResponse::html(page(""))));
    }
    sites
}

fn write_config(reg: &Path, fleet_port: u16, interval_s: u64) -> PathBuf {
    let mut overrides = String::new();
    for i in 0..SITES {
        overrides.push_str(&format!("\"{}\" = [\"127.0.0.1\"]\n", host(i)));
    }
    let targets = reg.join("targets.txt");
    let list: Vec<String> = (0..SITES).map(host).collect();
    std::fs::write(&targets, list.join("\n") + "\n").unwrap();
    let config = format!(
        "[scan]\nallow_nets = [\"127.0.0.1/32\"]\nhttp_port = {fleet_port}\nhttps_port = {closed}\nmax_retries = 0\ndeadline_ms = 10000\n\n[scan.overrides]\n{overrides}\n[serve]\nlisten = \"127.0.0.1:0\"\nmetrics_listen = \"127.0.0.1:0\"\n\n[schedule]\ninterval_s = {interval_s}\ntargets_file = \"{}\"\nconcurrency = 16\n",
        targets.display(),
        closed = free_port(),
    );
    let path = reg.join("beian.toml");
    std::fs::write(&path, config).unwrap();
    path
}

/// Start `beian serve` on `reg`; returns the process and its API and metrics addresses.
fn start_serve(reg: &Path) -> (Proc, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_beian"))
        .arg("--registry")
        .arg(reg)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let line = lines.next().unwrap().unwrap();
    // Keep draining the log so the service never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    let api = line
        .split("API on ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let metrics = line
        .split("metrics on ")
        .nth(1)
        .unwrap_or_else(|| panic!("{line}"))
        .trim()
        .to_string();
    (Proc(child), api, metrics)
}

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn get_text(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// Every expression of a dashboard, with Grafana's variables filled in.
fn dashboard_exprs(name: &str) -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dashboards")
        .join(name);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in v["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let expr = t["expr"]
                .as_str()
                .unwrap()
                .replace("$province", ".*")
                .replace("$__rate_interval", "1m");
            out.push((p["title"].as_str().unwrap_or("").to_string(), expr));
        }
    }
    out
}

async fn query(client: &reqwest::Client, prom: &str, expr: &str) -> Vec<serde_json::Value> {
    let v: serde_json::Value = client
        .get(format!("{prom}/api/v1/query"))
        .query(&[("query", expr)])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(v["status"], "success", "{expr}: {v}");
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_schedules_scans_and_prometheus_shows_them() {
    assert!(
        Path::new("/usr/bin/prometheus").exists(),
        "this test needs Debian's prometheus (bash .ci/run installs it)"
    );
    let tmp = tempfile::tempdir().unwrap();
    let reg = tmp.path().join("reg");
    let now = chrono::Utc::now().timestamp();
    let sites = build_registry(&reg, now);
    let fleet = Fleet::start(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), sites)
        .await
        .unwrap();
    write_config(&reg, fleet.addr.port(), 3);
    let (_serve, api, metrics_url) = start_serve(&reg);
    let client = reqwest::Client::new();

    // The shipped Prometheus configuration and rules, pointed at this serve and scraping fast.
    let prom_dir = tmp.path().join("prom");
    std::fs::create_dir_all(&prom_dir).unwrap();
    let dashboards = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards");
    let metrics_addr = metrics_url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let shipped = std::fs::read_to_string(dashboards.join("prometheus.yml")).unwrap();
    assert!(shipped.contains("\"127.0.0.1:9464\""));
    let config = shipped
        .replace("\"127.0.0.1:9464\"", &format!("\"{metrics_addr}\""))
        .replace("scrape_interval: 30s", "scrape_interval: 1s")
        .replace("evaluation_interval: 30s", "evaluation_interval: 1s");
    std::fs::write(prom_dir.join("prometheus.yml"), config).unwrap();
    std::fs::copy(dashboards.join("alerts.yml"), prom_dir.join("alerts.yml")).unwrap();
    let prom_port = free_port();
    let _prom = Proc(
        Command::new("/usr/bin/prometheus")
            .arg(format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");

    // Two scheduled scans complete (findings are confirmed on the second).
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut text = String::new();
    while Instant::now() < deadline {
        text = get_text(&client, &metrics_url).await;
        if metric_value(
            &text,
            "beian_scans_total{outcome=\"completed\",trigger=\"schedule\"}",
        )
        .unwrap_or(0.0)
            >= 2.0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        metric_value(
            &text,
            "beian_scans_total{outcome=\"completed\",trigger=\"schedule\"}"
        )
        .unwrap_or(0.0)
            >= 2.0,
        "two scheduled scans did not complete: {text}"
    );
    assert_eq!(
        metric_value(&text, "beian_scan_schedule_interval_seconds"),
        Some(3.0)
    );
    assert!(
        metric_value(&text, "beian_scan_last_completion_timestamp_seconds").unwrap() >= now as f64
    );
    assert_eq!(
        metric_value(&text, "beian_scan_last_targets{verdict=\"compliant\"}"),
        Some(45.0),
        "{text}"
    );
    // Two unfiled sites, and the revoked filing's site (no active filing covers it).
    assert_eq!(
        metric_value(&text, "beian_scan_last_targets{verdict=\"unfiled\"}"),
        Some(3.0)
    );
    let number_missing: f64 = ["京", "沪", "粤"]
        .iter()
        .filter_map(|p| {
            metric_value(
                &text,
                &format!("beian_scan_last_findings{{code=\"number_missing\",province=\"{p}\"}}"),
            )
        })
        .sum();
    assert_eq!(number_missing, 2.0, "{text}");
    assert_eq!(
        metric_value(
            &text,
            "beian_scan_last_findings{code=\"unfiled\",province=\"none\"}"
        ),
        Some(2.0),
        "{text}"
    );

    // The history keeps every scan, listed by the service's own files.
    let scans: Vec<_> = std::fs::read_dir(reg.join("scans"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.ends_with(".meta.json").then_some(name)
        })
        .collect();
    assert!(scans.len() >= 2, "{scans:?}");

    // Prometheus: the target is up, the dashboards' compliance queries return series.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut missing = Vec::new();
    while Instant::now() < deadline {
        missing.clear();
        let up = query(&client, &prom, "up{job=\"beian\"} == 1").await;
        if up.is_empty() {
            missing.push(("up".to_string(), "up{job=\"beian\"} == 1".to_string()));
        }
        for file in ["grafana-overview.json", "grafana-province.json"] {
            for (title, expr) in dashboard_exprs(file) {
                if query(&client, &prom, &expr).await.is_empty() {
                    missing.push((format!("{file}: {title}"), expr));
                }
            }
        }
        if missing.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Revoked filings still online is a real finding here; every panel has data.
    assert!(missing.is_empty(), "queries without series: {missing:#?}");

    // All is well: no alert pending or firing.
    let v: serde_json::Value = client
        .get(format!("{prom}/api/v1/alerts"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let alerts = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
    assert!(alerts.is_empty(), "alerts: {alerts:#?}");
    // And the rules were loaded (so "no alert" means something).
    let rules: serde_json::Value = client
        .get(format!("{prom}/api/v1/rules"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let names = rules.to_string();
    for rule in [
        "BeianNoScanConfigured",
        "BeianScanOverdue",
        "BeianNewUnfiledSites",
    ] {
        assert!(names.contains(rule), "{rule} not loaded: {names}");
    }
    let _ = api;
    drop(fleet);
}
