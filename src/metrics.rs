//! Every Prometheus metric beian exports, defined once. Label values come only from closed
//! sets (verdicts, finding codes, severities, province abbreviations from the code table,
//! error kinds, route templates) — never from scanned content.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Histogram buckets for fetch durations, in seconds.
pub const FETCH_BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
/// Histogram buckets for HTTP API request durations, in seconds.
pub const HTTP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0,
];

/// Every metric name, for the dashboard/rule consistency test.
pub const METRIC_NAMES: &[&str] = &[
    "beian_scan_targets_total",
    "beian_scan_findings_total",
    "beian_fetch_duration_seconds",
    "beian_fetch_errors_total",
    "beian_blocked_addresses_total",
    "beian_scan_targets_planned",
    "beian_scan_targets_done",
    "beian_scan_running",
    "beian_scan_duration_seconds",
    "beian_scan_last_completion_timestamp_seconds",
    "beian_scan_last_targets",
    "beian_scan_last_new_findings",
    "beian_scan_last_province_targets",
    "beian_scan_last_findings",
    "beian_scan_schedule_interval_seconds",
    "beian_scan_next_due_timestamp_seconds",
    "beian_scans_total",
    "beian_registry_filings",
    "beian_registry_certificates_issued",
    "beian_registry_audit_chain_length",
    "beian_http_requests_total",
    "beian_http_request_duration_seconds",
    "beian_replica_applied_seq",
    "beian_replica_primary_seq",
    "beian_replica_lag_records",
    "beian_replica_lag_seconds",
    "beian_replica_errors_total",
    "beian_replica_digest_mismatches_total",
];

/// Map a province character to a label value: the primary abbreviation, or `none`.
pub fn province_label(p: Option<char>) -> String {
    p.and_then(crate::number::primary_province)
        .map(|c| c.to_string())
        .unwrap_or_else(|| "none".to_string())
}

/// Sanitise a label drawn from a closed set of ASCII identifiers (verdicts, codes, kinds):
/// anything else becomes `other`.
pub fn closed_label(s: &str) -> &str {
    if !s.is_empty()
        && s.len() <= 40
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        s
    } else {
        "other"
    }
}

/// All of beian's metrics and the registry they are registered in.
#[derive(Clone)]
pub struct Metrics {
    pub registry: Registry,
    pub scan_targets: IntCounterVec,
    pub scan_findings: IntCounterVec,
    pub fetch_duration: HistogramVec,
    pub fetch_errors: IntCounterVec,
    pub blocked_addresses: IntCounter,
    pub scan_planned: IntGauge,
    pub scan_done: IntGauge,
    pub scan_running: IntGauge,
    pub scan_duration: Gauge,
    pub scan_last_completion: Gauge,
    pub scan_last_targets: IntGaugeVec,
    pub scan_last_new_findings: IntGaugeVec,
    pub scan_last_province_targets: IntGaugeVec,
    pub scan_last_findings: IntGaugeVec,
    /// Exported only when `serve` has a schedule (see [`Metrics::set_schedule`]).
    pub scan_schedule_interval: Gauge,
    pub scan_next_due: Gauge,
    pub scans: IntCounterVec,
    pub registry_filings: IntGaugeVec,
    pub registry_certificates: IntGauge,
    pub registry_audit_length: IntGauge,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    /// Exported only by a replica (see [`Metrics::enable_replica`]).
    pub replica_applied: IntGauge,
    pub replica_primary: IntGauge,
    pub replica_lag_records: IntGauge,
    pub replica_lag_seconds: Gauge,
    pub replica_errors: IntCounterVec,
    pub replica_digest_mismatches: IntCounter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! reg {
    ($r:expr, $m:expr) => {{
        let m = $m;
        // Names are distinct constants; registration cannot collide.
        let _ = $r.register(Box::new(m.clone()));
        m
    }};
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::new(name, help).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn gauge(name: &str, help: &str) -> Gauge {
    Gauge::new(name, help).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn histogram_vec(name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

impl Metrics {
    /// A fresh set of metrics in its own registry. (The constructors only fail on invalid
    /// constant names, which the unit test below rules out.)
    pub fn new() -> Self {
        let r = Registry::new();
        Metrics {
            scan_targets: reg!(r, counter_vec("beian_scan_targets_total", "Targets scanned, by verdict.", &["verdict"])),
            scan_findings: reg!(r, counter_vec("beian_scan_findings_total", "Findings reported, by code, severity and province of the filing (none when unfiled).", &["code", "severity", "province"])),
            fetch_duration: reg!(r, histogram_vec("beian_fetch_duration_seconds", "Duration of one fetch (with redirects), by kind.", &["kind"], FETCH_BUCKETS)),
            fetch_errors: reg!(r, counter_vec("beian_fetch_errors_total", "Fetch failures by kind (dns, connect, tls, timeout, deadline, …).", &["kind"])),
            blocked_addresses: reg!(r, IntCounter::new("beian_blocked_addresses_total", "Connections refused by the address guard (special-purpose ranges).").unwrap_or_else(|e| panic!("{e}"))),
            scan_planned: reg!(r, int_gauge("beian_scan_targets_planned", "Targets in the running scan, when known.")),
            scan_done: reg!(r, int_gauge("beian_scan_targets_done", "Targets finished in the running scan.")),
            scan_running: reg!(r, int_gauge("beian_scan_running", "1 while a scan runs.")),
            // Absent until a scan completes (not 0: "never" is not "in 1970").
            scan_duration: gauge("beian_scan_duration_seconds", "Wall-clock duration of the last completed scan."),
            scan_last_completion: gauge("beian_scan_last_completion_timestamp_seconds", "Unix time the last scan completed."),
            scan_last_targets: reg!(r, gauge_vec("beian_scan_last_targets", "Targets of the last completed scan, by verdict.", &["verdict"])),
            scan_last_new_findings: reg!(r, gauge_vec("beian_scan_last_new_findings", "Findings in the last completed scan that the previous scan did not have, by code.", &["code"])),
            scan_last_province_targets: reg!(r, gauge_vec("beian_scan_last_province_targets", "Targets of the last completed scan, by province of the filing (none when unfiled) and verdict.", &["province", "verdict"])),
            scan_last_findings: reg!(r, gauge_vec("beian_scan_last_findings", "Targets with each confirmed finding in the last completed scan, by code and province of the filing (none when unfiled).", &["code", "province"])),
            // Absent without a schedule (the alert rules tell "none configured" from "overdue").
            scan_schedule_interval: gauge("beian_scan_schedule_interval_seconds", "Configured seconds between scheduled scans of beian serve."),
            scan_next_due: gauge("beian_scan_next_due_timestamp_seconds", "Unix time the pending scheduled scan was due to start (it is overdue once a whole interval passes without its completion)."),
            scans: reg!(r, counter_vec("beian_scans_total", "Scans run by beian serve, by trigger (schedule, api) and outcome (completed, failed).", &["trigger", "outcome"])),
            registry_filings: reg!(r, gauge_vec("beian_registry_filings", "Filings in the registry, by status and province.", &["status", "province"])),
            registry_certificates: reg!(r, int_gauge("beian_registry_certificates_issued", "Certificates issued by the registry (all serials).")),
            registry_audit_length: reg!(r, int_gauge("beian_registry_audit_chain_length", "Records in the hash-chained audit log.")),
            http_requests: reg!(r, counter_vec("beian_http_requests_total", "HTTP API requests, by route template and status class.", &["route", "status"])),
            http_duration: reg!(r, histogram_vec("beian_http_request_duration_seconds", "HTTP API request duration, by route template.", &["route"], HTTP_BUCKETS)),
            replica_applied: int_gauge("beian_replica_applied_seq", "Sequence number of the last audit record this replica applied (-1: none)."),
            replica_primary: int_gauge("beian_replica_primary_seq", "The primary's last audit record, as of this replica's last fetch (-1: none)."),
            replica_lag_records: int_gauge("beian_replica_lag_records", "Changes the primary holds that this replica has not applied yet, as of its last fetch."),
            replica_lag_seconds: gauge("beian_replica_lag_seconds", "Age of this replica's view: seconds since the last change it applied was made, while the primary holds newer ones (0 when caught up)."),
            replica_errors: counter_vec("beian_replica_errors_total", "Replication failures, by kind (fetch, apply, diverged).", &["kind"]),
            replica_digest_mismatches: IntCounter::new("beian_replica_digest_mismatches_total", "Replicated records whose rebuilt state does not hash to the primary's stored bytes (records of an older format there).").unwrap_or_else(|e| panic!("{e}")),
            registry: r,
        }
    }

    /// Register the replica's metrics (a primary does not export them).
    pub fn enable_replica(&self) {
        self.replica_applied.set(-1);
        self.replica_primary.set(-1);
        for kind in ["fetch", "apply", "diverged"] {
            self.replica_errors.with_label_values(&[kind]);
        }
        let r = &self.registry;
        let _ = r.register(Box::new(self.replica_applied.clone()));
        let _ = r.register(Box::new(self.replica_primary.clone()));
        let _ = r.register(Box::new(self.replica_lag_records.clone()));
        let _ = r.register(Box::new(self.replica_lag_seconds.clone()));
        let _ = r.register(Box::new(self.replica_errors.clone()));
        let _ = r.register(Box::new(self.replica_digest_mismatches.clone()));
    }

    /// Count one finished target.
    pub fn record_target(&self, verdict: &str, findings: &[(&str, &str)], province: Option<char>) {
        self.scan_targets
            .with_label_values(&[closed_label(verdict)])
            .inc();
        let prov = province_label(province);
        for (code, severity) in findings {
            self.scan_findings
                .with_label_values(&[closed_label(code), closed_label(severity), &prov])
                .inc();
        }
        self.scan_done.inc();
    }

    /// Export the completion time and duration of the last completed scan (registering the
    /// two gauges on first use: before any completion they are absent, not 0).
    pub fn set_last_completion(&self, ended_at: i64, duration_s: f64) {
        self.scan_last_completion.set(ended_at as f64);
        self.scan_duration.set(duration_s);
        let _ = self
            .registry
            .register(Box::new(self.scan_last_completion.clone()));
        let _ = self.registry.register(Box::new(self.scan_duration.clone()));
    }

    /// Export the schedule: its interval and when the next scheduled scan is due.
    pub fn set_schedule(&self, interval_s: u64, next_due: i64) {
        self.scan_schedule_interval.set(interval_s as f64);
        self.scan_next_due.set(next_due as f64);
        let _ = self
            .registry
            .register(Box::new(self.scan_schedule_interval.clone()));
        let _ = self.registry.register(Box::new(self.scan_next_due.clone()));
    }

    /// Count one fetch and its error kind, if any.
    pub fn record_fetch(&self, kind: &str, seconds: f64, error: Option<&str>) {
        self.fetch_duration
            .with_label_values(&[closed_label(kind)])
            .observe(seconds);
        if let Some(e) = error {
            if e == "blocked_address" {
                self.blocked_addresses.inc();
            }
            self.fetch_errors
                .with_label_values(&[closed_label(e)])
                .inc();
        }
    }

    /// Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut buf = Vec::new();
        let enc = TextEncoder::new();
        // Encoding in-memory metrics into a Vec does not fail.
        let _ = enc.encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_metrics_register_and_encode() {
        let m = Metrics::new();
        m.record_target("unfiled", &[("unfiled", "high")], None);
        m.record_target("noncompliant", &[("number_missing", "medium")], Some('陇'));
        m.record_fetch("homepage", 0.2, Some("blocked_address"));
        m.registry_filings
            .with_label_values(&["active", "京"])
            .set(3);
        m.http_requests
            .with_label_values(&["/api/filed", "2xx"])
            .inc();
        m.scan_last_targets.with_label_values(&["compliant"]).set(2);
        m.scan_last_new_findings
            .with_label_values(&["unfiled"])
            .set(1);
        m.http_duration
            .with_label_values(&["/api/filed"])
            .observe(0.001);
        m.scan_last_province_targets
            .with_label_values(&["京", "compliant"])
            .set(1);
        m.scan_last_findings
            .with_label_values(&["unfiled", "none"])
            .set(1);
        m.scans.with_label_values(&["schedule", "completed"]).inc();
        let before = m.encode();
        assert!(!before.contains("beian_scan_last_completion_timestamp_seconds"));
        assert!(!before.contains("beian_scan_schedule_interval_seconds"));
        m.set_last_completion(1_700_000_000, 3.0);
        m.set_last_completion(1_700_000_100, 4.0);
        m.set_schedule(3600, 1_700_003_600);
        assert!(!m.encode().contains("beian_replica_"));
        m.enable_replica();
        let text = m.encode();
        assert!(text.contains("beian_scan_last_completion_timestamp_seconds 1700000100"));
        for name in METRIC_NAMES {
            assert!(text.contains(name), "{name} missing from exposition");
        }
        assert!(text.contains("province=\"甘\""));
        assert!(text.contains("beian_blocked_addresses_total 1"));
    }

    #[test]
    fn labels_from_outside_closed_sets_are_replaced() {
        assert_eq!(closed_label("unfiled"), "unfiled");
        assert_eq!(closed_label("<script>"), "other");
        assert_eq!(closed_label(""), "other");
        assert_eq!(province_label(Some('萌')), "none");
    }
}
