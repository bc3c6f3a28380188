//! Scan history: each scan's JSON Lines under a directory (`<dir>/<scan-id>.jsonl`) with a
//! small `<scan-id>.meta.json` (start/end time, target count, policy hash, summary), and the
//! diff between two scans (confirmed findings only). The diff holds one scan's (target →
//! verdict, reason, finding codes) map in memory and streams the other. Also the finding
//! streaks of the last completed scan ([`PriorFindings`]) and `--resume`'s rebuilding of an
//! interrupted scan's entry ([`ScanHistory::resume`]). Scans run by `serve` carry an origin and
//! a scope: confirmations and the "new findings" a scan is sealed with ([`ScanHistory::seal`])
//! count from the last scan of the same scope, and [`ScanHistory::prune`] keeps the newest.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::summary::RecordHead;
use super::{for_each_line, JsonlWriter, ReportError, ScanRecord, Summary};
use crate::verdict::{FindingCode, Streaks};

/// What is kept about one finished (or running) scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanMeta {
    pub id: String,
    /// Unix seconds.
    pub started_at: i64,
    /// Unix seconds; `None` while running (or if the scan died).
    pub ended_at: Option<i64>,
    pub targets: u64,
    pub policy_sha256: String,
    pub summary: Summary,
    /// What started the scan (`schedule`, `api:<actor>`, `cli`); absent in older scans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// Which targets it covered (`filed`, `province:京`, `list:…`, `file:…`), for scans run by
    /// `serve`: confirmations and "new findings" count from the last scan of the same scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Targets with each confirmed finding the previous completed scan did not have, by code
    /// (set when the scan is sealed with [`ScanHistory::seal`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_findings: Option<std::collections::BTreeMap<String, u64>>,
}

impl ScanMeta {
    /// The meta of a finished scan that is not kept in a history (no id, no diff).
    pub fn unkept(started_at: i64, ended_at: i64, policy_sha256: &str, summary: Summary) -> Self {
        ScanMeta {
            id: String::new(),
            started_at,
            ended_at: Some(ended_at),
            targets: summary.targets,
            policy_sha256: policy_sha256.to_string(),
            summary,
            origin: None,
            scope: None,
            new_findings: None,
        }
    }
}

/// A directory of scans, e.g. `<registry>/scans`.
#[derive(Debug, Clone)]
pub struct ScanHistory {
    dir: PathBuf,
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    crate::fsutil::write_atomic(path, bytes, None).map_err(|e| ReportError::io(path, e))
}

impl ScanHistory {
    /// Open (creating if needed) a history directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<ScanHistory, ReportError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| ReportError::io(&dir, e))?;
        Ok(ScanHistory { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The records file of a scan.
    pub fn records_path(&self, id: &str) -> Result<PathBuf, ReportError> {
        if !valid_id(id) {
            return Err(ReportError::BadScanId { id: id.to_string() });
        }
        Ok(self.dir.join(format!("{id}.jsonl")))
    }

    fn meta_path(&self, id: &str) -> Result<PathBuf, ReportError> {
        if !valid_id(id) {
            return Err(ReportError::BadScanId { id: id.to_string() });
        }
        Ok(self.dir.join(format!("{id}.meta.json")))
    }

    /// Start recording a scan. Its id is the UTC start time (`20240501T120000Z`), with `-2`,
    /// `-3`, … appended if that id is taken.
    pub fn start(&self, started_at: i64, policy_sha256: &str) -> Result<ScanWriter, ReportError> {
        let base = chrono::DateTime::<chrono::Utc>::from_timestamp(started_at, 0)
            .unwrap_or_default()
            .format("%Y%m%dT%H%M%SZ")
            .to_string();
        for n in 1..=1000u32 {
            let id = if n == 1 {
                base.clone()
            } else {
                format!("{base}-{n}")
            };
            let path = self.records_path(&id)?;
            let file = match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(ReportError::io(&path, e)),
            };
            let meta = ScanMeta {
                id: id.clone(),
                started_at,
                ended_at: None,
                targets: 0,
                policy_sha256: policy_sha256.to_string(),
                summary: Summary::new(),
                origin: None,
                scope: None,
                new_findings: None,
            };
            let meta_path = self.meta_path(&id)?;
            write_meta(&meta_path, &meta)?;
            return Ok(ScanWriter {
                jsonl: JsonlWriter::new(BufWriter::new(file), path.display().to_string()),
                meta,
                meta_path,
                records_path: path,
            });
        }
        Err(ReportError::BadScanId {
            id: format!("{base}-…"),
        })
    }

    /// Every scan with a readable meta file, oldest first.
    pub fn list(&self) -> Result<Vec<ScanMeta>, ReportError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| ReportError::io(&self.dir, e))?;
        let mut out = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| ReportError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".meta.json")) else {
                continue;
            };
            if valid_id(id) {
                out.push(self.meta(id)?);
            }
        }
        out.sort_by(|a, b| a.started_at.cmp(&b.started_at).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    /// The meta of one scan.
    pub fn meta(&self, id: &str) -> Result<ScanMeta, ReportError> {
        let path = self.meta_path(id)?;
        let bytes =
            crate::fsutil::read_bounded(&path, crate::fsutil::MAX_TEXT_FILE).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    ReportError::NoSuchScan {
                        path: path.display().to_string(),
                    }
                } else {
                    ReportError::io(&path, e)
                }
            })?;
        serde_json::from_slice(&bytes).map_err(|e| ReportError::Parse {
            path: path.display().to_string(),
            line: e.line() as u64,
            message: e.to_string(),
        })
    }

    /// The most recent finished scan, if any.
    pub fn last_completed(&self) -> Result<Option<ScanMeta>, ReportError> {
        self.last_completed_in(None)
    }

    /// The most recent finished scan of `scope` (any scope when `None`).
    pub fn last_completed_in(&self, scope: Option<&str>) -> Result<Option<ScanMeta>, ReportError> {
        Ok(self
            .list()?
            .into_iter()
            .rfind(|m| m.ended_at.is_some() && scope.is_none_or(|s| m.scope.as_deref() == Some(s))))
    }

    /// The finding streaks left by the most recent finished scan (empty when there is
    /// none): what confirmations count from.
    pub fn prior_findings(&self) -> Result<PriorFindings, ReportError> {
        self.prior_findings_in(None)
    }

    /// The finding streaks left by the most recent finished scan of `scope`.
    pub fn prior_findings_in(&self, scope: Option<&str>) -> Result<PriorFindings, ReportError> {
        match self.last_completed_in(scope)? {
            Some(meta) => PriorFindings::from_scan(&self.records_path(&meta.id)?),
            None => Ok(PriorFindings::default()),
        }
    }

    /// Keep the `keep` most recent completed scans of `scope` and remove older ones (with
    /// any unfinished scan of that scope older than the oldest kept); returns the removed ids.
    pub fn prune(&self, scope: &str, keep: usize) -> Result<Vec<String>, ReportError> {
        let of_scope: Vec<ScanMeta> = self
            .list()?
            .into_iter()
            .filter(|m| m.scope.as_deref() == Some(scope))
            .collect();
        let completed: Vec<&ScanMeta> = of_scope.iter().filter(|m| m.ended_at.is_some()).collect();
        if keep == 0 || completed.len() <= keep {
            return Ok(Vec::new());
        }
        let oldest_kept = completed[completed.len() - keep].started_at;
        let mut removed = Vec::new();
        for m in of_scope.iter().filter(|m| m.started_at < oldest_kept) {
            self.remove(&m.id)?;
            removed.push(m.id.clone());
        }
        Ok(removed)
    }

    /// Remove a scan (its records and meta), e.g. an interrupted one that a resumed scan
    /// replaces.
    fn remove(&self, id: &str) -> Result<(), ReportError> {
        for path in [self.records_path(id)?, self.meta_path(id)?] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(ReportError::io(&path, e)),
            }
        }
        Ok(())
    }

    /// Continue the most recent unfinished (interrupted) scan for `--resume`: its entry is
    /// replaced by a fresh one with the same start time (and so the same id), which the caller
    /// fills with the records already written, then the rest. Without one, a new scan
    /// starting at `started_at`.
    pub fn resume(&self, started_at: i64, policy_sha256: &str) -> Result<ScanWriter, ReportError> {
        let started_at = match self.list()?.into_iter().rfind(|m| m.ended_at.is_none()) {
            Some(interrupted) => {
                self.remove(&interrupted.id)?;
                interrupted.started_at
            }
            None => started_at,
        };
        self.start(started_at, policy_sha256)
    }

    /// The two most recent finished scans (older, newer), if there are two.
    pub fn latest_two(&self) -> Result<Option<(ScanMeta, ScanMeta)>, ReportError> {
        let mut done: Vec<ScanMeta> = self
            .list()?
            .into_iter()
            .filter(|m| m.ended_at.is_some())
            .collect();
        let newer = done.pop();
        let older = done.pop();
        Ok(older.zip(newer))
    }

    /// Finish a scan and record, in its meta, the confirmed findings it has that the previous
    /// completed scan (of the same scope, when it has one) did not, by code: what the "new
    /// findings" metric and alert report.
    pub fn seal(&self, writer: ScanWriter, ended_at: i64) -> Result<ScanMeta, ReportError> {
        let previous = self.last_completed_in(writer.meta.scope.as_deref())?;
        let mut meta = writer.finish(ended_at)?;
        let mut counts = std::collections::BTreeMap::new();
        if let Some(prev) = previous {
            let d = self.diff(&prev.id, &meta.id)?;
            for c in &d.changes {
                for code in &c.new_findings {
                    *counts.entry(code.to_string()).or_insert(0u64) += 1;
                }
            }
        }
        meta.new_findings = Some(counts);
        write_meta(&self.meta_path(&meta.id)?, &meta)?;
        Ok(meta)
    }

    /// Diff two scans of this history by id.
    pub fn diff(&self, older: &str, newer: &str) -> Result<ScanDiff, ReportError> {
        diff(&self.records_path(older)?, &self.records_path(newer)?)
    }
}

fn write_meta(path: &Path, meta: &ScanMeta) -> Result<(), ReportError> {
    let bytes = serde_json::to_vec_pretty(meta).map_err(|e| ReportError::Io {
        path: path.display().to_string(),
        source: std::io::Error::other(e),
    })?;
    write_atomic(path, &bytes)
}

/// Appends records to one scan of a [`ScanHistory`]; [`ScanWriter::finish`] seals the meta.
pub struct ScanWriter {
    jsonl: JsonlWriter<BufWriter<File>>,
    meta: ScanMeta,
    meta_path: PathBuf,
    records_path: PathBuf,
}

impl ScanWriter {
    pub fn id(&self) -> &str {
        &self.meta.id
    }

    /// Say what started this scan and which targets it covers (kept in its meta).
    pub fn describe(
        &mut self,
        origin: impl Into<String>,
        scope: Option<String>,
    ) -> Result<(), ReportError> {
        self.meta.origin = Some(origin.into());
        self.meta.scope = scope;
        write_meta(&self.meta_path, &self.meta)
    }

    /// Targets written so far.
    pub fn written(&self) -> u64 {
        self.meta.targets
    }

    pub fn records_path(&self) -> &Path {
        &self.records_path
    }

    /// Append (and flush) one record.
    pub fn write(&mut self, record: &ScanRecord) -> Result<(), ReportError> {
        self.jsonl.write(record)?;
        self.meta.targets += 1;
        self.meta.summary.add(record);
        Ok(())
    }

    /// Sync the records and write the final meta.
    pub fn finish(self, ended_at: i64) -> Result<ScanMeta, ReportError> {
        let mut meta = self.meta;
        meta.ended_at = Some(ended_at);
        let file = self
            .jsonl
            .into_inner()
            .into_inner()
            .map_err(|e| ReportError::io(&self.records_path, e.into_error()))?;
        file.sync_all()
            .map_err(|e| ReportError::io(&self.records_path, e))?;
        write_meta(&self.meta_path, &meta)?;
        Ok(meta)
    }
}

/// The finding streaks of every target of one scan (target → code → consecutive scans),
/// read back to confirm the next scan's findings. Memory follows the number of targets with
/// findings, not the number of targets.
#[derive(Debug, Clone, Default)]
pub struct PriorFindings {
    by_target: HashMap<String, Streaks>,
}

#[derive(Deserialize)]
struct StreakHead {
    target: String,
    verdict: String,
    #[serde(default)]
    findings: Vec<StreakFinding>,
    #[serde(default)]
    streaks: std::collections::BTreeMap<String, u32>,
}

#[derive(Deserialize)]
struct StreakFinding {
    code: String,
    #[serde(default = "super::one")]
    seen: u32,
}

impl PriorFindings {
    /// Read the streaks of one scan's JSON Lines records (codes this version does not
    /// know are skipped).
    pub fn from_scan(path: &Path) -> Result<PriorFindings, ReportError> {
        let file = File::open(path).map_err(|e| ReportError::io(path, e))?;
        let mut p = PriorFindings::default();
        let label = path.display().to_string();
        for_each_line(BufReader::new(file), &label, |_, h: StreakHead| {
            let streaks: Streaks = if h.verdict == "unknown" {
                h.streaks
                    .iter()
                    .filter_map(|(c, k)| FindingCode::parse(c).map(|c| (c, *k)))
                    .collect()
            } else {
                h.findings
                    .iter()
                    .filter_map(|f| FindingCode::parse(&f.code).map(|c| (c, f.seen.max(1))))
                    .collect()
            };
            if streaks.is_empty() {
                p.by_target.remove(&h.target);
            } else {
                p.by_target.insert(h.target, streaks);
            }
            Ok(())
        })?;
        Ok(p)
    }

    /// The streaks of one target (`None`: it had no finding).
    pub fn get(&self, target: &str) -> Option<&Streaks> {
        self.by_target.get(target)
    }
}

/// One target's state in a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetState {
    pub verdict: String,
    pub reason: Option<String>,
    pub findings: BTreeSet<String>,
}

impl TargetState {
    fn from_head(h: RecordHead) -> (String, TargetState) {
        (
            h.target,
            TargetState {
                verdict: h.verdict,
                reason: h.reason,
                // Only confirmed findings are "new" or "resolved": a pending one does not
                // alert yet.
                findings: h
                    .findings
                    .into_iter()
                    .filter(|f| f.is_confirmed())
                    .map(|f| f.code)
                    .collect(),
            },
        )
    }

    fn judged(&self) -> bool {
        self.verdict != "unknown"
    }

    fn describe(&self) -> String {
        match &self.reason {
            Some(r) => format!("{} ({r})", self.verdict),
            None => self.verdict.clone(),
        }
    }
}

/// A target whose verdict or findings changed between two scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetChange {
    pub target: String,
    /// `None`: not in the older scan.
    pub before: Option<TargetState>,
    /// `None`: not in the newer scan.
    pub after: Option<TargetState>,
    /// Codes in the newer scan and not the older (only when both were judged, or the target
    /// is new).
    pub new_findings: Vec<String>,
    /// Codes in the older scan and not the newer (only when both were judged: an `unknown`
    /// result resolves nothing).
    pub resolved_findings: Vec<String>,
}

/// The differences between two scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScanDiff {
    pub older: String,
    pub newer: String,
    pub older_targets: u64,
    pub newer_targets: u64,
    pub unchanged: u64,
    /// Changed and new targets in the newer scan's order, then targets gone from it (sorted).
    pub changes: Vec<TargetChange>,
}

/// Diff two scan files (JSON Lines).
pub fn diff(older: &Path, newer: &Path) -> Result<ScanDiff, ReportError> {
    let open = |p: &Path| -> Result<BufReader<File>, ReportError> {
        File::open(p)
            .map(BufReader::new)
            .map_err(|e| ReportError::io(p, e))
    };
    diff_readers(
        open(older)?,
        &older.display().to_string(),
        open(newer)?,
        &newer.display().to_string(),
    )
}

/// Diff two JSON Lines streams; the older one is held as a map, the newer one streamed.
/// When a target appears twice in one scan, its last record counts.
pub fn diff_readers<A: BufRead, B: BufRead>(
    older: A,
    older_label: &str,
    newer: B,
    newer_label: &str,
) -> Result<ScanDiff, ReportError> {
    let mut before: HashMap<String, (TargetState, bool)> = HashMap::new();
    let mut older_targets = 0;
    for_each_line(older, older_label, |_, h: RecordHead| {
        older_targets += 1;
        let (t, s) = TargetState::from_head(h);
        before.insert(t, (s, false));
        Ok(())
    })?;
    let mut d = ScanDiff {
        older: older_label.to_string(),
        newer: newer_label.to_string(),
        older_targets,
        newer_targets: 0,
        unchanged: 0,
        changes: Vec::new(),
    };
    for_each_line(newer, newer_label, |_, h: RecordHead| {
        d.newer_targets += 1;
        let (target, after) = TargetState::from_head(h);
        match before.get_mut(&target) {
            Some((b, seen)) => {
                *seen = true;
                if *b == after {
                    d.unchanged += 1;
                    return Ok(());
                }
                let (new_findings, resolved_findings) = if b.judged() && after.judged() {
                    (
                        after.findings.difference(&b.findings).cloned().collect(),
                        b.findings.difference(&after.findings).cloned().collect(),
                    )
                } else {
                    (Vec::new(), Vec::new())
                };
                if b.verdict == after.verdict
                    && b.reason == after.reason
                    && new_findings.is_empty()
                    && resolved_findings.is_empty()
                {
                    d.unchanged += 1;
                    return Ok(());
                }
                d.changes.push(TargetChange {
                    target,
                    before: Some(b.clone()),
                    after: Some(after),
                    new_findings,
                    resolved_findings,
                });
            }
            None => d.changes.push(TargetChange {
                target,
                before: None,
                new_findings: after.findings.iter().cloned().collect(),
                after: Some(after),
                resolved_findings: Vec::new(),
            }),
        }
        Ok(())
    })?;
    let mut gone: Vec<(String, TargetState)> = before
        .into_iter()
        .filter(|(_, (_, seen))| !seen)
        .map(|(t, (s, _))| (t, s))
        .collect();
    gone.sort_by(|a, b| a.0.cmp(&b.0));
    for (target, s) in gone {
        d.changes.push(TargetChange {
            target,
            before: Some(s),
            after: None,
            new_findings: Vec::new(),
            resolved_findings: Vec::new(),
        });
    }
    Ok(d)
}

impl ScanDiff {
    /// No target changed, appeared or disappeared.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Render as plain text: a header, then one line per change (`~` changed, `+` new in the
    /// newer scan, `-` gone from it).
    pub fn render_text(&self) -> String {
        let mut out = format!(
            "scan diff: {} -> {}\n{} -> {} targets; {} changed, {} unchanged\n",
            self.older,
            self.newer,
            self.older_targets,
            self.newer_targets,
            self.changes.len(),
            self.unchanged
        );
        for c in &self.changes {
            let (mark, from, to) = match (&c.before, &c.after) {
                (Some(b), Some(a)) => ('~', b.describe(), a.describe()),
                (None, Some(a)) => ('+', "(absent)".into(), a.describe()),
                (Some(b), None) => ('-', b.describe(), "(absent)".into()),
                (None, None) => continue,
            };
            // Targets come from the scan list; keep one change per line regardless.
            let target: String = c.target.chars().filter(|ch| !ch.is_control()).collect();
            out.push_str(&format!("{mark} {target}: {from} -> {to}"));
            if !c.new_findings.is_empty() {
                out.push_str(&format!("; new: {}", c.new_findings.join(", ")));
            }
            if !c.resolved_findings.is_empty() {
                out.push_str(&format!("; resolved: {}", c.resolved_findings.join(", ")));
            }
            out.push('\n');
        }
        out
    }
}
