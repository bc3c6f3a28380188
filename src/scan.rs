//! Scan orchestration shared by `beian scan`, `beian check`, `beian demo`, the API's self-check
//! and the probe: targets → crawl (observation) → certificate verification and evaluation
//! against a registry snapshot → records, metrics. The network lives in `crawl`; judging is pure
//! (`verdict`), with the time of each target's observation passed in.

use std::sync::Arc;

use futures::{Stream, StreamExt};

use crate::crawl::{ScanConfig, ScanError, Scanner};
use crate::metrics::Metrics;
use crate::observation::Observation;
use crate::registry::snapshot::Snapshot;
use crate::report::{PriorFindings, ScanRecord};
use crate::verdict::{Assessment, PolicySet};

/// Everything one scan needs: the network scanner, a read-only registry snapshot, and the
/// policies. Cheap to clone.
#[derive(Clone)]
pub struct ScanContext {
    pub scanner: Arc<Scanner>,
    pub snapshot: Arc<Snapshot>,
    pub policies: Arc<PolicySet>,
    /// The finding streaks of the last completed scan, for confirmations (`None`: no
    /// history; every finding is seen for the first time).
    pub prior: Option<Arc<PriorFindings>>,
}

/// One finished target.
#[derive(Debug, Clone)]
pub struct TargetResult {
    pub observation: Observation,
    pub assessment: Assessment,
    pub record: ScanRecord,
}

impl ScanContext {
    /// Build the scanner (inside a tokio runtime).
    pub fn new(
        config: ScanConfig,
        snapshot: Arc<Snapshot>,
        policies: Arc<PolicySet>,
    ) -> Result<Self, ScanError> {
        Ok(ScanContext {
            scanner: Arc::new(Scanner::new(config)?),
            snapshot,
            policies,
            prior: None,
        })
    }

    /// Confirm findings against these streaks (from [`crate::report::ScanHistory::prior_findings`]).
    pub fn with_prior(mut self, prior: Arc<PriorFindings>) -> Self {
        self.prior = Some(prior);
        self
    }

    /// Judge one observation (pure), confirming its findings against the prior streaks.
    pub fn judge(&self, observation: Observation) -> TargetResult {
        let now = observation.started_at;
        let mut assessment = crate::verdict::assess(
            &observation,
            &self.snapshot,
            &self.policies,
            now,
            crate::cert::verify,
        );
        let prior = self
            .prior
            .as_deref()
            .and_then(|p| p.get(&observation.target));
        assessment.confirm(prior);
        let mut record = ScanRecord::new(&observation, &assessment, prior);
        record.snapshot_age_s = Some(self.snapshot.age(now));
        TargetResult {
            observation,
            assessment,
            record,
        }
    }

    /// Scan one target.
    pub async fn check(&self, target: &str) -> TargetResult {
        let obs = self.scanner.observe(target).await;
        self.judge(obs)
    }

    /// Scan a stream of targets with bounded concurrency; results come as they finish.
    pub fn run<S>(&self, targets: S, concurrency: usize) -> impl Stream<Item = TargetResult>
    where
        S: Stream<Item = String>,
    {
        let me = self.clone();
        crate::crawl::scan_stream(self.scanner.clone(), targets, concurrency)
            .map(move |obs| me.judge(obs))
    }
}

/// Count one result in the metrics: verdict, confirmed findings (by code, severity, filing
/// province; a finding pending confirmation does not count, so it cannot alert) and each
/// fetch's duration and error kind.
pub fn record_metrics(metrics: &Metrics, result: &TargetResult) {
    let a = &result.assessment;
    let findings: Vec<(&str, &str)> = a
        .findings
        .iter()
        .filter(|f| f.is_confirmed())
        .map(|f| (f.code.as_str(), f.severity.as_str()))
        .collect();
    metrics.record_target(a.verdict.as_str(), &findings, a.province);
    let obs = &result.observation;
    if obs.dns.error.is_some() && obs.dns.answers.is_empty() && obs.dns.blocked.is_empty() {
        metrics.record_fetch("dns", obs.dns.elapsed_ms as f64 / 1000.0, Some("dns"));
    }
    for f in &obs.homepage {
        let err = f.error.as_ref().map(|e| e.kind.as_str());
        metrics.record_fetch("homepage", f.elapsed_ms as f64 / 1000.0, err);
    }
    for c in obs.cert.iter().chain(obs.cert_misplaced.iter()) {
        let err = c.fetch.error.as_ref().map(|e| e.kind.as_str());
        metrics.record_fetch("cert", c.fetch.elapsed_ms as f64 / 1000.0, err);
    }
}

/// The verdict label values, each exported (0 when absent) so dashboards always have series.
pub const VERDICT_LABELS: [&str; 4] = ["compliant", "noncompliant", "unfiled", "unknown"];

/// The province label of a summary's province key (`京`, or `(none)` for unfiled targets).
fn summary_province_label(key: &str) -> String {
    let mut chars = key.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => crate::metrics::province_label(Some(c)),
        _ => crate::metrics::province_label(None),
    }
}

/// Export a completed scan as the "last scan" metrics: completion time and duration, targets
/// by verdict and by province, confirmed findings by code and province, and the confirmed
/// findings new since the previous scan of the same scope. A scan still running (no end) is
/// ignored.
pub fn publish_completed(metrics: &Metrics, meta: &crate::report::ScanMeta) {
    let Some(ended) = meta.ended_at else {
        return;
    };
    let s = &meta.summary;
    metrics.set_last_completion(ended, (ended - meta.started_at).max(0) as f64);
    metrics.scan_last_targets.reset();
    for v in VERDICT_LABELS {
        let n = s.by_verdict.get(v).copied().unwrap_or(0);
        metrics
            .scan_last_targets
            .with_label_values(&[v])
            .set(n as i64);
    }
    metrics.scan_last_province_targets.reset();
    for (key, c) in &s.by_province {
        let prov = summary_province_label(key);
        for (v, n) in [
            ("compliant", c.compliant),
            ("noncompliant", c.noncompliant),
            ("unfiled", c.unfiled),
            ("unknown", c.unknown),
        ] {
            metrics
                .scan_last_province_targets
                .with_label_values(&[&prov, v])
                .add(n as i64);
        }
    }
    metrics.scan_last_findings.reset();
    for (key, codes) in &s.by_province_finding {
        let prov = summary_province_label(key);
        for (code, n) in codes {
            metrics
                .scan_last_findings
                .with_label_values(&[crate::metrics::closed_label(code), &prov])
                .add(*n as i64);
        }
    }
    metrics.scan_last_new_findings.reset();
    if let Some(new) = &meta.new_findings {
        // "No new unfiled site" is a value (0), not a missing series.
        metrics
            .scan_last_new_findings
            .with_label_values(&["unfiled"])
            .set(0);
        for (code, n) in new {
            metrics
                .scan_last_new_findings
                .with_label_values(&[crate::metrics::closed_label(code)])
                .add(*n as i64);
        }
    }
}
