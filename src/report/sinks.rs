//! Record writers: JSON Lines (one record a line, flushed) and CSV (flattened, one row per
//! finding).

use std::io::Write;

use serde::Serialize;

use super::{ReportError, ScanRecord};

/// Writes one JSON object per line and flushes after each, so a crashed scan leaves whole
/// records behind.
pub struct JsonlWriter<W: Write> {
    out: W,
    label: String,
    written: u64,
}

impl<W: Write> JsonlWriter<W> {
    /// `label` names the sink in errors (usually its path).
    pub fn new(out: W, label: impl Into<String>) -> Self {
        JsonlWriter {
            out,
            label: label.into(),
            written: 0,
        }
    }

    pub fn write(&mut self, record: &ScanRecord) -> Result<(), ReportError> {
        let mut line = serde_json::to_vec(record).map_err(|e| ReportError::Io {
            path: self.label.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|_| self.out.flush())
            .map_err(|source| ReportError::Io {
                path: self.label.clone(),
                source,
            })?;
        self.written += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// The CSV header, in order. One row per finding (the `finding` … `message` columns), so that
/// each carries its own severity, legal basis, action, fine and confirmation; a target
/// without findings has one row with those columns empty. The site columns repeat on every
/// row of a target.
pub const CSV_COLUMNS: &[&str] = &[
    "target",
    "host",
    "verdict",
    "reason",
    "finding",
    "severity",
    "confirmation",
    "legal_basis",
    "action",
    "fine",
    "message",
    "findings",
    "max_severity",
    "filing",
    "province",
    "icp_numbers",
    "number_linked",
    "number_in_footer",
    "licences",
    "cert_status",
    "cert_number",
    "cert_serial",
    "address",
    "http_status",
    "allow_private",
    "elapsed_ms",
    "policy_sha256",
    "scanned_at",
];

#[derive(Serialize)]
struct CsvRow<'a> {
    target: &'a str,
    host: &'a str,
    verdict: &'a str,
    reason: &'a str,
    finding: &'a str,
    severity: &'a str,
    confirmation: &'a str,
    legal_basis: &'a str,
    action: &'a str,
    /// The fine as text (`¥5000–50000; …`).
    fine: String,
    message: &'a str,
    /// All of the target's codes joined by `;`.
    findings: String,
    max_severity: &'a str,
    filing: &'a str,
    province: &'a str,
    /// Shown ICP numbers joined by `;`.
    icp_numbers: String,
    /// Whether any shown ICP number is linked (empty when none is shown).
    number_linked: Option<bool>,
    number_in_footer: Option<bool>,
    licences: String,
    cert_status: &'a str,
    cert_number: &'a str,
    cert_serial: Option<u64>,
    address: Option<String>,
    http_status: Option<u16>,
    allow_private: bool,
    elapsed_ms: u64,
    policy_sha256: &'a str,
    scanned_at: &'a str,
}

fn severity_rank(s: &str) -> u8 {
    match s {
        "info" => 1,
        "low" => 2,
        "medium" => 3,
        "high" => 4,
        "critical" => 5,
        _ => 0,
    }
}

/// Writes the records flattened to CSV (header first; columns [`CSV_COLUMNS`]), flushing
/// after each record.
pub struct CsvWriter<W: Write> {
    out: csv::Writer<W>,
    label: String,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W, label: impl Into<String>) -> Self {
        CsvWriter {
            out: csv::WriterBuilder::new().has_headers(true).from_writer(out),
            label: label.into(),
        }
    }

    pub fn write(&mut self, r: &ScanRecord) -> Result<(), ReportError> {
        let used = r
            .evidence
            .homepage_used
            .and_then(|i| r.evidence.homepage.get(i))
            .or(r.evidence.homepage.last());
        let mut row = CsvRow {
            target: &r.target,
            host: &r.host,
            verdict: &r.verdict,
            reason: r.reason.as_deref().unwrap_or(""),
            finding: "",
            severity: "",
            confirmation: "",
            legal_basis: "",
            action: "",
            fine: String::new(),
            message: "",
            findings: r.codes().collect::<Vec<_>>().join(";"),
            max_severity: r
                .findings
                .iter()
                .map(|f| f.severity.as_str())
                .max_by_key(|s| severity_rank(s))
                .unwrap_or(""),
            filing: r.filing.as_deref().unwrap_or(""),
            province: r.province.as_deref().unwrap_or(""),
            icp_numbers: r
                .numbers
                .icp
                .iter()
                .map(|m| m.number.as_str())
                .collect::<Vec<_>>()
                .join(";"),
            number_linked: (!r.numbers.icp.is_empty())
                .then(|| r.numbers.icp.iter().any(|m| m.linked)),
            number_in_footer: (!r.numbers.icp.is_empty())
                .then(|| r.numbers.icp.iter().any(|m| m.in_footer)),
            licences: r.numbers.licences.join(";"),
            cert_status: &r.cert.status,
            cert_number: r.cert.number.as_deref().unwrap_or(""),
            cert_serial: r.cert.serial,
            address: r.evidence.address.map(|a| a.to_string()),
            http_status: used.and_then(|h| h.status),
            allow_private: r.allow_private,
            elapsed_ms: r.evidence.elapsed_ms,
            policy_sha256: &r.policy_sha256,
            scanned_at: &r.scanned_at,
        };
        let label = &self.label;
        let csv_err = |source| ReportError::Csv {
            path: label.clone(),
            source,
        };
        if r.findings.is_empty() {
            self.out.serialize(&row).map_err(csv_err)?;
        }
        for f in &r.findings {
            row.finding = &f.code;
            row.severity = &f.severity;
            row.confirmation = &f.confirmation;
            row.legal_basis = &f.legal_basis;
            row.action = &f.action;
            row.fine = f.fine.as_ref().map(|f| f.to_string()).unwrap_or_default();
            row.message = &f.message;
            self.out.serialize(&row).map_err(csv_err)?;
        }
        self.out.flush().map_err(|source| ReportError::Io {
            path: self.label.clone(),
            source,
        })
    }

    /// Flush and return the inner writer.
    pub fn into_inner(self) -> Result<W, ReportError> {
        let label = self.label;
        self.out.into_inner().map_err(|e| ReportError::Io {
            path: label,
            source: std::io::Error::other(e.to_string()),
        })
    }
}
