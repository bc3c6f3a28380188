//! The HTML scan report: one self-contained file (no external asset) a regulator can forward.
//! A summary with charts drawn as inline SVG laid out here and in `templates/report.html`
//! (verdicts, confirmed findings by code, compliance by province, change since the previous
//! scan), and a table of every site with its findings, legal basis and action.
//!
//! Size: the rows are embedded once as compact JSON (findings dictionary-encoded: each
//! distinct code/severity/basis/action appears once), about 60–90 bytes a site, so 100,000
//! sites make a file of about 8 MB. A small inline script sorts, filters and pages through
//! them (100 rows a page). Without script, the first [`SERVER_ROWS`] rows (problems first) are
//! in the page itself, with the counts. At most [`MAX_REPORT_ROWS`] sites are embedded (about
//! 16 MB); beyond that the report says how many were left out (the JSON Lines records hold
//! every one).

use std::collections::HashMap;

use askama::Template;
use serde::Serialize;

use super::{ProvinceCounts, ReportError, ScanRecord, Summary, NO_PROVINCE};

/// Sites embedded in one report at most.
pub const MAX_REPORT_ROWS: usize = 200_000;
/// Rows rendered in the page itself (seen without script).
pub const SERVER_ROWS: usize = 200;

/// The report's script and stylesheet (inline; the service pins them by hash in its CSP).
pub const REPORT_JS: &str = include_str!("../../templates/report.js");
pub const REPORT_CSS: &str = include_str!("../../templates/report.css");

const VERDICTS: [&str; 4] = ["compliant", "noncompliant", "unfiled", "unknown"];

fn verdict_index(v: &str) -> u8 {
    VERDICTS.iter().position(|x| *x == v).unwrap_or(3) as u8
}

/// One distinct finding as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
struct FindingKey {
    code: String,
    severity: String,
    legal_basis: String,
    action: String,
    confirmation: String,
    /// The policy's Chinese text (empty: none; the English is shown alone).
    legal_basis_zh: String,
    action_zh: String,
}

/// One site: `[host, verdict index, province, filing, reason, [finding indexes]]`.
#[derive(Debug, Clone, Serialize)]
struct Row(String, u8, String, String, String, Vec<u32>);

/// Builds a report from records as they come (memory grows with the sites embedded).
#[derive(Debug, Default)]
pub struct HtmlReport {
    summary: Summary,
    findings: Vec<FindingKey>,
    finding_index: HashMap<FindingKey, u32>,
    rows: Vec<Row>,
    left_out: u64,
}

/// A horizontal bar of a chart.
pub struct Bar {
    pub label: String,
    pub value: u64,
    pub text: String,
    pub y: u32,
    pub width: f64,
    pub class: &'static str,
}

/// A 100 % stacked bar: one province.
pub struct Stack {
    pub label: String,
    pub y: u32,
    pub total: u64,
    /// (x, width, class, count)
    pub parts: Vec<(f64, f64, &'static str, u64)>,
    pub compliant_pct: String,
}

/// A verdict before and after.
pub struct Change {
    pub verdict: &'static str,
    pub before: u64,
    pub after: u64,
    pub delta: String,
    pub y: u32,
    pub before_width: f64,
    pub after_width: f64,
}

/// A row rendered in the page (no script needed).
pub struct ServerRow {
    pub host: String,
    pub verdict: &'static str,
    pub province: String,
    pub filing: String,
    /// (code, legal basis, action).
    pub findings: Vec<(String, Bilingual, Bilingual)>,
}

/// A text in Chinese (when the policy gave it) and English.
pub struct Bilingual {
    /// Empty: none.
    pub zh: String,
    pub en: String,
}

impl Bilingual {
    fn of(zh: &str, en: &str) -> Bilingual {
        Bilingual {
            zh: zh.to_string(),
            en: en.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    title: &'a str,
    generated: String,
    targets: u64,
    verdicts: Vec<Bar>,
    findings: Vec<Bar>,
    findings_height: u32,
    provinces: Vec<Stack>,
    provinces_height: u32,
    change: Option<Vec<Change>>,
    server_rows: Vec<ServerRow>,
    embedded: usize,
    left_out: u64,
    data: String,
    css: &'static str,
    js: &'static str,
}

/// Chart widths, in SVG units.
const BAR_MAX: f64 = 420.0;
const ROW_H: u32 = 26;

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "0.0%".into()
    } else {
        format!("{:.1}%", n as f64 * 100.0 / of as f64)
    }
}

fn verdict_class(v: &str) -> &'static str {
    match v {
        "compliant" => "v-ok",
        "noncompliant" => "v-bad",
        "unfiled" => "v-unfiled",
        _ => "v-unknown",
    }
}

/// The verdict counts of a summary.
pub fn verdict_counts(s: &Summary) -> ProvinceCounts {
    let g = |v: &str| s.by_verdict.get(v).copied().unwrap_or(0);
    ProvinceCounts {
        targets: s.targets,
        compliant: g("compliant"),
        noncompliant: g("noncompliant"),
        unfiled: g("unfiled"),
        unknown: g("unknown"),
    }
}

fn count_of(c: &ProvinceCounts, v: &str) -> u64 {
    match v {
        "compliant" => c.compliant,
        "noncompliant" => c.noncompliant,
        "unfiled" => c.unfiled,
        _ => c.unknown,
    }
}

impl HtmlReport {
    pub fn new() -> HtmlReport {
        HtmlReport::default()
    }

    /// Count and keep one record.
    pub fn add(&mut self, r: &ScanRecord) {
        self.summary.add(r);
        if self.rows.len() >= MAX_REPORT_ROWS {
            self.left_out += 1;
            return;
        }
        let mut idx = Vec::with_capacity(r.findings.len());
        for f in &r.findings {
            let key = FindingKey {
                code: f.code.clone(),
                severity: f.severity.clone(),
                legal_basis: f.legal_basis.clone(),
                action: f.action.clone(),
                confirmation: f.confirmation.clone(),
                legal_basis_zh: f.legal_basis_zh.clone(),
                action_zh: f.action_zh.clone(),
            };
            let i = match self.finding_index.get(&key) {
                Some(i) => *i,
                None => {
                    let i = self.findings.len() as u32;
                    self.findings.push(key.clone());
                    self.finding_index.insert(key, i);
                    i
                }
            };
            idx.push(i);
        }
        self.rows.push(Row(
            r.host.clone(),
            verdict_index(&r.verdict),
            r.province.clone().unwrap_or_default(),
            r.filing.clone().unwrap_or_default(),
            r.reason.clone().unwrap_or_default(),
            idx,
        ));
    }

    /// A report of the scan records in `path` (JSON Lines), only those of `province` when
    /// given (a bureau's view).
    pub fn from_jsonl_path(
        path: &std::path::Path,
        province: Option<&str>,
    ) -> Result<HtmlReport, ReportError> {
        let f = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
        let mut report = HtmlReport::new();
        super::for_each_line(
            std::io::BufReader::new(f),
            &path.display().to_string(),
            |_, r: ScanRecord| {
                if province.is_none() || r.province.as_deref() == province {
                    report.add(&r);
                }
                Ok(())
            },
        )?;
        Ok(report)
    }

    /// The counts so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Render the report. `previous`: the verdict counts of the previous scan of the same
    /// scope (for the change chart); `generated_at`: unix seconds.
    pub fn render(
        &self,
        title: &str,
        generated_at: i64,
        previous: Option<&ProvinceCounts>,
    ) -> Result<String, ReportError> {
        let s = &self.summary;
        let now = verdict_counts(s);
        let verdicts = VERDICTS
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let n = count_of(&now, v);
                Bar {
                    label: v.to_string(),
                    value: n,
                    text: format!("{n} ({})", pct(n, s.targets)),
                    y: i as u32 * ROW_H,
                    width: if s.targets == 0 {
                        0.0
                    } else {
                        BAR_MAX * n as f64 / s.targets as f64
                    },
                    class: verdict_class(v),
                }
            })
            .collect();
        let mut codes: Vec<(&String, &u64)> = s.by_finding.iter().collect();
        codes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top = codes.first().map(|c| *c.1).unwrap_or(0).max(1);
        let findings: Vec<Bar> = codes
            .iter()
            .enumerate()
            .map(|(i, (c, n))| Bar {
                label: c.to_string(),
                value: **n,
                text: n.to_string(),
                y: i as u32 * ROW_H,
                width: BAR_MAX * **n as f64 / top as f64,
                class: if c.as_str() == "unfiled" {
                    "v-unfiled"
                } else {
                    "v-bad"
                },
            })
            .collect();
        let provinces: Vec<Stack> = s
            .by_province
            .iter()
            .enumerate()
            .map(|(i, (p, c))| {
                let mut x = 0.0;
                let parts = VERDICTS
                    .iter()
                    .map(|v| {
                        let n = count_of(c, v);
                        let w = if c.targets == 0 {
                            0.0
                        } else {
                            BAR_MAX * n as f64 / c.targets as f64
                        };
                        let part = (x, w, verdict_class(v), n);
                        x += w;
                        part
                    })
                    .collect();
                Stack {
                    label: if p == NO_PROVINCE {
                        "—".into()
                    } else {
                        p.clone()
                    },
                    y: i as u32 * ROW_H,
                    total: c.targets,
                    parts,
                    compliant_pct: pct(c.compliant, c.targets),
                }
            })
            .collect();
        let change = previous.map(|prev| {
            let top = VERDICTS
                .iter()
                .map(|v| count_of(prev, v).max(count_of(&now, v)))
                .max()
                .unwrap_or(0)
                .max(1);
            VERDICTS
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let (b, a) = (count_of(prev, v), count_of(&now, v));
                    Change {
                        verdict: v,
                        before: b,
                        after: a,
                        delta: match a as i64 - b as i64 {
                            0 => "±0".into(),
                            d if d > 0 => format!("+{d}"),
                            d => d.to_string(),
                        },
                        y: i as u32 * 40,
                        before_width: BAR_MAX * b as f64 / top as f64,
                        after_width: BAR_MAX * a as f64 / top as f64,
                    }
                })
                .collect()
        });
        // Rows in the page itself: problems first.
        let mut order: Vec<&Row> = self.rows.iter().collect();
        order.sort_by_key(|r| match r.1 {
            1 => 0,
            2 => 1,
            3 => 2,
            _ => 3,
        });
        let server_rows = order
            .into_iter()
            .take(SERVER_ROWS)
            .map(|r| ServerRow {
                host: r.0.clone(),
                verdict: VERDICTS[usize::from(r.1.min(3))],
                province: r.2.clone(),
                filing: r.3.clone(),
                findings: r
                    .5
                    .iter()
                    .filter_map(|i| self.findings.get(*i as usize))
                    .map(|f| {
                        (
                            f.code.clone(),
                            Bilingual::of(&f.legal_basis_zh, &f.legal_basis),
                            Bilingual::of(&f.action_zh, &f.action),
                        )
                    })
                    .collect(),
            })
            .collect();
        #[derive(Serialize)]
        struct Data<'a> {
            /// `[code, severity, basis, action, confirmation, basis_zh, action_zh]`.
            f: Vec<[&'a str; 7]>,
            r: &'a [Row],
        }
        let data = Data {
            f: self
                .findings
                .iter()
                .map(|f| {
                    [
                        f.code.as_str(),
                        f.severity.as_str(),
                        f.legal_basis.as_str(),
                        f.action.as_str(),
                        f.confirmation.as_str(),
                        f.legal_basis_zh.as_str(),
                        f.action_zh.as_str(),
                    ]
                })
                .collect(),
            r: &self.rows,
        };
        let json =
            serde_json::to_string(&data).map_err(|e| ReportError::Template(e.to_string()))?;
        let page = Page {
            title,
            generated: super::record::rfc3339(generated_at),
            targets: s.targets,
            verdicts,
            findings_height: (findings.len() as u32).max(1) * ROW_H,
            findings,
            provinces_height: (provinces.len() as u32).max(1) * ROW_H,
            provinces,
            change,
            server_rows,
            embedded: self.rows.len(),
            left_out: self.left_out,
            data: script_safe(&json),
            css: REPORT_CSS,
            js: REPORT_JS,
        };
        page.render()
            .map_err(|e| ReportError::Template(e.to_string()))
    }
}

/// JSON safe inside `<script type="application/json">`: no `<`, `>` or `&` (escaped as
/// `\u003c` …, which JSON.parse reads back), so no `</script>` can end the element early.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The CSP the service sends with a report: only its own inline script and style, by hash.
pub fn report_csp() -> String {
    use base64::Engine;
    use sha2::Digest;
    let h = |s: &str| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s));
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        h(REPORT_JS),
        h(REPORT_CSS)
    )
}

/// Verdict counts by province key, for a bureau's "previous" from a national scan.
pub fn province_counts(s: &Summary, province: &str) -> ProvinceCounts {
    s.by_province.get(province).cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_json_cannot_close_the_script() {
        let s = script_safe(r#"["</script><b>&"]"#);
        assert!(!s.contains('<') && !s.contains('>') && !s.contains('&'));
        let back: Vec<String> = serde_json::from_str(&s).unwrap();
        assert_eq!(back, vec!["</script><b>&".to_string()]);
    }
}
