//! The scan summary: counts by verdict, unknown reason, confirmed and pending finding code and
//! province, and the noncompliant and unfiled sites by name, built incrementally (memory grows
//! with the number of categories and at most [`MAX_LISTED_SITES`] listed sites, not with the
//! number of targets) and rendered as Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::BufRead;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{for_each_line, ReportError, ScanRecord};

/// Verdict counts of one province.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvinceCounts {
    pub targets: u64,
    pub compliant: u64,
    pub noncompliant: u64,
    pub unfiled: u64,
    pub unknown: u64,
}

/// Noncompliant and unfiled sites listed by name in a summary; beyond this many, the
/// summary only counts them (the records hold every one).
pub const MAX_LISTED_SITES: usize = 5_000;

/// One noncompliant or unfiled site, as the summary lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedSite {
    pub host: String,
    pub verdict: String,
    /// Finding codes, each followed by ` (pending k/N)` when not yet confirmed.
    pub codes: Vec<String>,
}

/// Counts over a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub targets: u64,
    pub by_verdict: BTreeMap<String, u64>,
    /// Unknown verdicts by reason.
    pub by_reason: BTreeMap<String, u64>,
    /// Targets with each confirmed finding code.
    pub by_finding: BTreeMap<String, u64>,
    /// Targets with each finding code still pending confirmation.
    #[serde(default)]
    pub by_pending_finding: BTreeMap<String, u64>,
    /// By the filing's province; targets with no known filing under `(none)`.
    pub by_province: BTreeMap<String, ProvinceCounts>,
    /// Targets with each confirmed finding code, by the filing's province (as `by_province`).
    #[serde(default)]
    pub by_province_finding: BTreeMap<String, BTreeMap<String, u64>>,
    /// The noncompliant and unfiled sites, in scan order, up to [`MAX_LISTED_SITES`].
    #[serde(default)]
    pub sites: Vec<ListedSite>,
    /// Noncompliant and unfiled sites beyond [`MAX_LISTED_SITES`].
    #[serde(default)]
    pub sites_not_listed: u64,
}

/// The part of a record a summary or diff needs (other fields are skipped when reading).
#[derive(Debug, Deserialize)]
pub(crate) struct RecordHead {
    pub target: String,
    #[serde(default)]
    pub host: String,
    pub verdict: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub findings: Vec<CodeOnly>,
    #[serde(default)]
    pub province: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct CodeOnly {
    pub code: String,
    /// Absent in records written before confirmations: such findings count as confirmed.
    #[serde(default = "super::one")]
    pub seen: u32,
    #[serde(default = "super::one")]
    pub confirmations: u32,
}

impl CodeOnly {
    pub(crate) fn is_confirmed(&self) -> bool {
        self.seen >= self.confirmations
    }
}

/// A finding as the summary sees it: code, consecutive scans seen, scans needed.
type Seen<'a> = (&'a str, u32, u32);

/// The province key for targets with no known filing.
pub const NO_PROVINCE: &str = "(none)";

impl Summary {
    pub fn new() -> Summary {
        Summary::default()
    }

    /// Count one record.
    pub fn add(&mut self, r: &ScanRecord) {
        self.count(
            &r.host,
            &r.verdict,
            r.reason.as_deref(),
            r.findings
                .iter()
                .map(|f| (f.code.as_str(), f.seen, f.confirmations)),
            r.province.as_deref(),
        );
    }

    pub(crate) fn add_head(&mut self, h: &RecordHead) {
        let host = if h.host.is_empty() {
            &h.target
        } else {
            &h.host
        };
        self.count(
            host,
            &h.verdict,
            h.reason.as_deref(),
            h.findings
                .iter()
                .map(|f| (f.code.as_str(), f.seen, f.confirmations)),
            h.province.as_deref(),
        );
    }

    fn count<'a>(
        &mut self,
        host: &str,
        verdict: &str,
        reason: Option<&str>,
        findings: impl Iterator<Item = Seen<'a>>,
        province: Option<&str>,
    ) {
        self.targets += 1;
        bump(&mut self.by_verdict, verdict);
        if verdict == "unknown" {
            bump(&mut self.by_reason, reason.unwrap_or("other"));
        }
        let mut seen: Vec<Seen<'a>> = findings.collect();
        seen.sort_unstable_by(|a, b| a.0.cmp(b.0));
        seen.dedup_by(|a, b| a.0 == b.0);
        let province_key = province.unwrap_or(NO_PROVINCE);
        for (c, k, n) in &seen {
            if k >= n {
                bump(&mut self.by_finding, c);
                match self.by_province_finding.get_mut(province_key) {
                    Some(codes) => bump(codes, c),
                    None => {
                        let mut codes = BTreeMap::new();
                        bump(&mut codes, c);
                        self.by_province_finding
                            .insert(province_key.to_string(), codes);
                    }
                }
            } else {
                bump(&mut self.by_pending_finding, c);
            }
        }
        if verdict == "noncompliant" || verdict == "unfiled" {
            if self.sites.len() < MAX_LISTED_SITES {
                self.sites.push(ListedSite {
                    host: host.to_string(),
                    verdict: verdict.to_string(),
                    codes: seen
                        .iter()
                        .map(|&(c, k, n)| {
                            if k >= n {
                                c.to_string()
                            } else {
                                format!("{c} ({})", crate::verdict::confirmation_label(k, n))
                            }
                        })
                        .collect(),
                });
            } else {
                self.sites_not_listed += 1;
            }
        }
        let p = self
            .by_province
            .entry(province_key.to_string())
            .or_default();
        p.targets += 1;
        match verdict {
            "compliant" => p.compliant += 1,
            "noncompliant" => p.noncompliant += 1,
            "unfiled" => p.unfiled += 1,
            _ => p.unknown += 1,
        }
    }

    /// Build a summary by streaming a JSON Lines scan file (`label` names it in errors).
    pub fn from_jsonl<R: BufRead>(reader: R, label: &str) -> Result<Summary, ReportError> {
        let mut s = Summary::new();
        for_each_line(reader, label, |_, h: RecordHead| {
            s.add_head(&h);
            Ok(())
        })?;
        Ok(s)
    }

    pub fn from_jsonl_path(path: &Path) -> Result<Summary, ReportError> {
        let f = std::fs::File::open(path).map_err(|e| ReportError::io(path, e))?;
        Summary::from_jsonl(std::io::BufReader::new(f), &path.display().to_string())
    }

    /// Render as Markdown under `title`.
    pub fn to_markdown(&self, title: &str) -> String {
        let mut out = String::new();
        let pct = |n: u64| {
            if self.targets == 0 {
                0.0
            } else {
                n as f64 * 100.0 / self.targets as f64
            }
        };
        let _ = writeln!(out, "# {}\n", md_escape(title));
        let _ = writeln!(out, "Targets scanned: **{}**\n", self.targets);
        let _ = writeln!(out, "## By verdict\n");
        let _ = writeln!(out, "| verdict | targets | share |\n|---|---:|---:|");
        for v in ["compliant", "noncompliant", "unfiled", "unknown"] {
            let n = self.by_verdict.get(v).copied().unwrap_or(0);
            let _ = writeln!(out, "| {v} | {n} | {:.1}% |", pct(n));
        }
        for (v, n) in &self.by_verdict {
            if !["compliant", "noncompliant", "unfiled", "unknown"].contains(&v.as_str()) {
                let _ = writeln!(out, "| {} | {n} | {:.1}% |", md_escape(v), pct(*n));
            }
        }
        if !self.by_reason.is_empty() {
            let _ = writeln!(out, "\n## Unknown, by reason\n");
            let _ = writeln!(out, "| reason | targets |\n|---|---:|");
            for (r, n) in &self.by_reason {
                let _ = writeln!(out, "| {} | {n} |", md_escape(r));
            }
        }
        let _ = writeln!(out, "\n## By finding\n");
        if self.by_finding.is_empty() && self.by_pending_finding.is_empty() {
            let _ = writeln!(out, "No findings.");
        } else {
            let _ = writeln!(
                out,
                "| finding | confirmed | share | pending |\n|---|---:|---:|---:|"
            );
            let mut codes: Vec<&String> = self
                .by_finding
                .keys()
                .chain(self.by_pending_finding.keys())
                .collect();
            codes.sort();
            codes.dedup();
            let get = |m: &BTreeMap<String, u64>, c: &str| m.get(c).copied().unwrap_or(0);
            codes.sort_by(|a, b| {
                get(&self.by_finding, b)
                    .cmp(&get(&self.by_finding, a))
                    .then(a.cmp(b))
            });
            for c in codes {
                let n = get(&self.by_finding, c);
                let p = get(&self.by_pending_finding, c);
                let _ = writeln!(out, "| `{}` | {n} | {:.1}% | {p} |", md_escape(c), pct(n));
            }
            if !self.by_pending_finding.is_empty() {
                let _ = writeln!(
                    out,
                    "\nPending findings have not yet been seen in as many consecutive scans as their policy asks for; they do not alert."
                );
            }
        }
        let _ = writeln!(out, "\n## Noncompliant and unfiled sites\n");
        if self.sites.is_empty() {
            let _ = writeln!(out, "None.");
        } else {
            let _ = writeln!(out, "| host | verdict | findings |\n|---|---|---|");
            for site in &self.sites {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} |",
                    md_escape(&site.host),
                    md_escape(&site.verdict),
                    md_escape(&site.codes.join(", "))
                );
            }
            if self.sites_not_listed > 0 {
                let _ = writeln!(
                    out,
                    "\n…and {} more (the scan records list every site).",
                    self.sites_not_listed
                );
            }
        }
        let _ = writeln!(out, "\n## By province\n");
        let _ = writeln!(
            out,
            "| province | targets | compliant | noncompliant | unfiled | unknown |\n|---|---:|---:|---:|---:|---:|"
        );
        for (p, c) in &self.by_province {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                md_escape(p),
                c.targets,
                c.compliant,
                c.noncompliant,
                c.unfiled,
                c.unknown
            );
        }
        out
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

/// Keep table cells intact: escape `|`, drop line breaks and backticks.
fn md_escape(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '`')
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect::<String>()
        .replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn reading_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Summary::from_jsonl(&bytes[..], "fuzz");
        }

        #[test]
        fn markdown_cells_stay_in_one_row(p in "(.|\n|\r|[|]){0,20}") {
            let mut s = Summary::new();
            s.count(&p, "compliant", None, std::iter::empty(), Some(&p));
            s.count(&p, "unfiled", None, [("unfiled", 1, 2)].into_iter(), Some(&p));
            let md = s.to_markdown("t");
            let rows = md.lines().filter(|l| l.starts_with("| ") && l.ends_with(" |")).count();
            // The verdict header and 4 rows; the finding header and one row; the site
            // header and one row; the province header and one province row.
            prop_assert_eq!(rows, 5 + 2 + 2 + 2, "{}", md);
        }
    }
}
