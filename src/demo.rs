//! `beian demo`: a sample registry built from `seeds/demo/`, a loopback fleet of sites with one
//! planted problem each (and several compliant ones), a scan of the fleet, and a check that the
//! scan found exactly what was planted. No setup, no network beyond loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;

use crate::accounts::Actor;
use crate::crawl::ScanConfig;
use crate::fleet::{Fleet, LabResponse, LabSite};
use crate::registry::{DefaultRole, FilingKey, Registry, RegistryError, Submitter};
use crate::report::Summary;
use crate::scan::{ScanContext, TargetResult};
use crate::verdict::PolicySet;

/// The demo's filings: one website filing per line, in the import format.
pub const DEMO_FILINGS: &str = include_str!("../seeds/demo/fleet.jsonl");

/// Seconds in a day.
const DAY: i64 = 86_400;

/// Why the demo could not run (a planted/found mismatch is not an error: see [`DemoOutcome`]).
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("demo: {0}")]
    Io(#[from] std::io::Error),
    #[error("demo: {0}")]
    Other(String),
}

/// One site of the fleet and what was planted on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteOutcome {
    pub host: String,
    pub planted_verdict: String,
    pub planted: BTreeSet<String>,
    pub found_verdict: String,
    pub found: BTreeSet<String>,
}

impl SiteOutcome {
    pub fn agrees(&self) -> bool {
        self.planted == self.found && self.planted_verdict == self.found_verdict
    }
}

/// What the demo did.
#[derive(Debug, Clone)]
pub struct DemoOutcome {
    pub sites: Vec<SiteOutcome>,
    pub summary_markdown: String,
    pub records_jsonl: String,
}

impl DemoOutcome {
    pub fn all_agree(&self) -> bool {
        self.sites.iter().all(SiteOutcome::agrees)
    }

    /// A table of planted vs found, one row per site.
    pub fn render_table(&self) -> String {
        let mut s = String::from("| site | planted | found | |\n|---|---|---|---|\n");
        for o in &self.sites {
            let fmt = |v: &str, c: &BTreeSet<String>| {
                if c.is_empty() {
                    v.to_string()
                } else {
                    format!("{v}: {}", c.iter().cloned().collect::<Vec<_>>().join(", "))
                }
            };
            s.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                o.host,
                fmt(&o.planted_verdict, &o.planted),
                fmt(&o.found_verdict, &o.found),
                if o.agrees() { "ok" } else { "DIFFERS" }
            ));
        }
        s
    }
}

struct Plan {
    host: &'static str,
    verdict: &'static str,
    codes: &'static [&'static str],
}

/// Every site, the verdict and the finding codes planted on it.
const PLANS: &[Plan] = &[
    Plan {
        host: "ok-news.test",
        verdict: "compliant",
        codes: &[],
    },
    Plan {
        host: "ok-shop.test",
        verdict: "compliant",
        codes: &[],
    },
    Plan {
        host: "ok-blog.test",
        verdict: "compliant",
        codes: &[],
    },
    Plan {
        host: "www.ok-multi.test",
        verdict: "compliant",
        codes: &[],
    },
    Plan {
        host: "unfiled.test",
        verdict: "unfiled",
        codes: &["unfiled"],
    },
    Plan {
        host: "revoked.test",
        verdict: "unfiled",
        codes: &["filing_revoked"],
    },
    Plan {
        host: "nocert.test",
        verdict: "noncompliant",
        codes: &["cert_missing"],
    },
    Plan {
        host: "typo-path.test",
        verdict: "compliant",
        codes: &["cert_misplaced"],
    },
    Plan {
        host: "garbled.test",
        verdict: "noncompliant",
        codes: &["cert_malformed"],
    },
    Plan {
        host: "forged.test",
        verdict: "noncompliant",
        codes: &["cert_bad_signature"],
    },
    Plan {
        host: "copycat.test",
        verdict: "noncompliant",
        codes: &["cert_domain_mismatch"],
    },
    Plan {
        host: "changed.test",
        verdict: "noncompliant",
        codes: &["cert_superseded"],
    },
    Plan {
        host: "overdue.test",
        verdict: "noncompliant",
        codes: &["cert_expired"],
    },
    Plan {
        host: "nonumber.test",
        verdict: "noncompliant",
        codes: &["number_missing"],
    },
    Plan {
        host: "wrongnumber.test",
        verdict: "noncompliant",
        codes: &["number_mismatch"],
    },
    Plan {
        host: "unlinked.test",
        verdict: "noncompliant",
        codes: &["number_unlinked"],
    },
    Plan {
        host: "topbar.test",
        verdict: "noncompliant",
        codes: &["number_misplaced"],
    },
    Plan {
        host: "nolicence.test",
        verdict: "noncompliant",
        codes: &["licence_missing"],
    },
    Plan {
        host: "moved.test",
        verdict: "noncompliant",
        codes: &["access_provider_mismatch"],
    },
    Plan {
        host: "waf.test",
        verdict: "unknown (http_403)",
        codes: &[],
    },
    Plan {
        host: "broken.test",
        verdict: "unknown (http_5xx)",
        codes: &[],
    },
    // A clean footer, but the certificate path answers 403: the certificate check was not
    // made, so the site is not passed (`unknown`, cert_unreachable).
    Plan {
        host: "guarded.test",
        verdict: "unknown (cert_unreachable)",
        codes: &[],
    },
    // The footer is written by a script: without rendering it is not accused of a missing
    // number (`unknown`, needs_render).
    Plan {
        host: "spa.test",
        verdict: "unknown (needs_render)",
        codes: &[],
    },
];

fn page(title: &str, header: &str, footer: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n<body>\n<header class=\"top\"><nav><a href=\"/\">首页</a> <a href=\"/about\">关于我们</a></nav>{header}</header>\n<main><h1>{title}</h1><p>欢迎访问{title}。本站提供资讯与服务。</p></main>\n<footer class=\"site-footer\"><p>© 2026 {title} 版权所有</p>{footer}</footer>\n</body></html>\n"
    )
}

fn linked(number: &str) -> String {
    format!("<p><a href=\"https://beian.miit.gov.cn/\" target=\"_blank\">{number}</a></p>")
}

/// Run the demo: registry, fleet, scan, comparison. `work_dir` holds the temporary registry.
pub async fn run(work_dir: &Path, now: i64) -> Result<DemoOutcome, DemoError> {
    let reg_dir = work_dir.join("registry");
    let (registry, _init) = Registry::init(&reg_dir, now - 400 * DAY)?;

    // The overdue site was approved 400 days ago; everything else now.
    let (old, new): (Vec<&str>, Vec<&str>) = DEMO_FILINGS
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.contains("\"overdue.test\""));
    let past = now - 400 * DAY;
    for (lines, at) in [(old, past), (new, now)] {
        let text = lines.join("\n");
        let report = registry.import_jsonl(
            text.as_bytes(),
            Submitter::RowProvider,
            at,
            1000,
            &mut |_| {},
        )?;
        if let Some(e) = report.errors.first() {
            return Err(DemoError::Other(format!("seed filing rejected: {e}")));
        }
        let mut providers = BTreeSet::new();
        for line in &lines {
            let v: serde_json::Value = serde_json::from_str(line)
                .map_err(|e| DemoError::Other(format!("seed line: {e}")))?;
            for p in v["website"]["providers"].as_array().into_iter().flatten() {
                if let Some(p) = p.as_str() {
                    providers.insert(p.to_string());
                }
            }
        }
        for p in &providers {
            registry.verify_access(&Actor::isp(p), p, None, at)?;
        }
        registry.review_auto_by_each_bureau(at)?;
    }

    let cert =
        |host: &str| -> Result<String, DemoError> { Ok(registry.certificate_for(host)?.text) };
    let number = |host: &str| -> Result<String, DemoError> {
        registry
            .filing_view(&FilingKey::Domain(host.to_string()))?
            .service_number
            .ok_or_else(|| DemoError::Other(format!("{host} has no number")))
    };

    // Certificates captured before the registry moves on.
    let changed_old_cert = cert("changed.test")?;
    let revoked_cert = cert("revoked.test")?;
    let changed = FilingKey::Domain("changed.test".into());
    registry.change_domains(
        &registry.acting_as(&changed, DefaultRole::Owner)?,
        &changed,
        &["changed-mirror.test".to_string()],
        &[],
        now,
    )?;
    registry.review_auto_by_each_bureau(now)?;
    registry.revoke(
        &Actor::Miit,
        &FilingKey::Domain("revoked.test".into()),
        "演示：内容违规 / demo: content violation",
        now,
    )?;
    // The demo cloud reports the loopback block it serves the fleet from; moved.test's filing
    // names another provider, so its serving address belongs to a provider it does not name.
    registry.record_ip_block(
        &Actor::isp("演示云"),
        "演示云",
        "127.0.0.0/8"
            .parse()
            .map_err(|_| DemoError::Other("bad network".into()))?,
        now,
    )?;

    let mut sites = Vec::new();
    let mut add = |host: &str, home: String, cert_body: Option<(&str, Vec<u8>)>| {
        let mut s = LabSite::new(host).route("/", LabResponse::html(home));
        if let Some((path, body)) = cert_body {
            s = s.route(path, LabResponse::text(body));
        }
        sites.push(s);
    };
    for host in [
        "ok-news.test",
        "ok-shop.test",
        "ok-blog.test",
        "www.ok-multi.test",
    ] {
        let n = number(host)?;
        let lic = registry
            .filing_view(&FilingKey::Domain(host.into()))?
            .operating_licence
            .map(|l| format!("<p>增值电信业务经营许可证：{l}</p>"))
            .unwrap_or_default();
        add(
            host,
            page(host, "", &format!("{}{lic}", linked(&n))),
            Some(("/cert/bazs.cert", cert(host)?.into_bytes())),
        );
    }
    add("unfiled.test", page("未备案站点", "", ""), None);
    let rn = number("revoked.test")?;
    add(
        "revoked.test",
        page("已撤销站点", "", &linked(&rn)),
        Some(("/cert/bazs.cert", revoked_cert.into_bytes())),
    );
    for (host, path, body) in [
        ("nocert.test", None, Vec::new()),
        (
            "typo-path.test",
            Some("/cert/bazx.cert"),
            cert("typo-path.test")?.into_bytes(),
        ),
        (
            "garbled.test",
            Some("/cert/bazs.cert"),
            b"<html>404 not here</html>".to_vec(),
        ),
        ("forged.test", Some("/cert/bazs.cert"), {
            let mut b = cert("forged.test")?.into_bytes();
            // Change the subject name: the signature no longer matches.
            if let Some(p) = b.windows(6).position(|w| w == "有限".as_bytes()) {
                b[p..p + 6].copy_from_slice("无限".as_bytes());
            }
            b
        }),
        (
            "copycat.test",
            Some("/cert/bazs.cert"),
            cert("ok-news.test")?.into_bytes(),
        ),
        (
            "changed.test",
            Some("/cert/bazs.cert"),
            changed_old_cert.clone().into_bytes(),
        ),
        (
            "overdue.test",
            Some("/cert/bazs.cert"),
            cert("overdue.test")?.into_bytes(),
        ),
    ] {
        let n = number(host)?;
        add(host, page(host, "", &linked(&n)), path.map(|p| (p, body)));
    }
    let c = |h: &str| -> Result<Option<(&'static str, Vec<u8>)>, DemoError> {
        Ok(Some(("/cert/bazs.cert", cert(h)?.into_bytes())))
    };
    add(
        "nonumber.test",
        page("nonumber", "", ""),
        c("nonumber.test")?,
    );
    let other = number("ok-blog.test")?;
    add(
        "wrongnumber.test",
        page("wrongnumber", "", &linked(&other)),
        c("wrongnumber.test")?,
    );
    let n = number("unlinked.test")?;
    add(
        "unlinked.test",
        page("unlinked", "", &format!("<p>{n}</p>")),
        c("unlinked.test")?,
    );
    let n = number("topbar.test")?;
    add(
        "topbar.test",
        page("topbar", &linked(&n), ""),
        c("topbar.test")?,
    );
    let n = number("nolicence.test")?;
    add(
        "nolicence.test",
        page("nolicence", "", &linked(&n)),
        c("nolicence.test")?,
    );
    let n = number("moved.test")?;
    add(
        "moved.test",
        page("moved", "", &linked(&n)),
        c("moved.test")?,
    );
    let n = number("spa.test")?;
    add(
        "spa.test",
        format!(
            "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>spa</title></head>\n<body><div id=\"app\"></div>\n<script>document.getElementById('app').innerHTML = '<main><h1>spa</h1></main><footer><a href=\"https://beian.miit.gov.cn/\">' + {:?} + '</a></footer>';</script>\n</body></html>\n",
            n
        ),
        c("spa.test")?,
    );
    let n = number("guarded.test")?;
    sites.push(
        LabSite::new("guarded.test")
            .route("/", LabResponse::html(page("guarded", "", &linked(&n))))
            .route(
                "/cert/bazs.cert",
                LabResponse::status(403, "<html><body>Forbidden</body></html>"),
            ),
    );
    sites.push(LabSite::new("waf.test").route(
        "/",
        LabResponse::status(403, "<html><body>Access denied by WAF</body></html>"),
    ));
    sites.push(LabSite::new("broken.test").route(
        "/",
        LabResponse::status(503, "<html><body>Service Unavailable</body></html>"),
    ));

    let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let fleet = Fleet::start(SocketAddr::new(loopback, 0), sites).await?;
    // A port with nothing listening: https attempts fail fast and fall back to http.
    let closed = {
        let l = std::net::TcpListener::bind(SocketAddr::new(loopback, 0))?;
        l.local_addr()?.port()
    };
    let mut config = ScanConfig::default();
    for p in PLANS {
        config.overrides.insert(p.host.to_string(), vec![loopback]);
    }
    config.allow_nets = vec!["127.0.0.1/32"
        .parse()
        .map_err(|_| DemoError::Other("bad network".into()))?];
    config.http_port = fleet.addr.port();
    config.https_port = closed;
    config.deadline_ms = 10_000;
    config.host_rate = None;
    config.max_retries = 0;

    let snapshot = Arc::new(registry.snapshot(now)?);
    let policies = Arc::new(PolicySet::embedded().map_err(|e| DemoError::Other(e.to_string()))?);
    let ctx = ScanContext::new(config, snapshot, policies)
        .map_err(|e| DemoError::Other(e.to_string()))?;
    let targets: Vec<String> = PLANS.iter().map(|p| p.host.to_string()).collect();
    let results: Vec<TargetResult> = ctx.run(futures::stream::iter(targets), 8).collect().await;
    drop(fleet);

    let mut by_host: BTreeMap<String, TargetResult> = results
        .into_iter()
        .map(|r| (r.observation.target.clone(), r))
        .collect();
    let mut summary = Summary::new();
    let mut jsonl = String::new();
    let mut sites_out = Vec::new();
    for p in PLANS {
        let r = by_host
            .remove(p.host)
            .ok_or_else(|| DemoError::Other(format!("{} was not scanned", p.host)))?;
        summary.add(&r.record);
        jsonl.push_str(&serde_json::to_string(&r.record).unwrap_or_default());
        jsonl.push('\n');
        sites_out.push(SiteOutcome {
            host: p.host.to_string(),
            planted_verdict: p.verdict.to_string(),
            planted: p.codes.iter().map(|c| c.to_string()).collect(),
            found_verdict: r.assessment.verdict.to_string(),
            found: r
                .assessment
                .findings
                .iter()
                .map(|f| f.code.as_str().to_string())
                .collect(),
        });
    }
    Ok(DemoOutcome {
        sites: sites_out,
        summary_markdown: summary.to_markdown("beian demo scan"),
        records_jsonl: jsonl,
    })
}

/// A fresh, unique working directory under the system's temporary directory.
pub fn work_dir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let d = base.join(format!("beian-demo-{}-{i}", std::process::id()));
        match std::fs::create_dir(&d) {
            Ok(()) => return Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}
