//! Scan output sinks: the JSON Lines [`ScanRecord`] (one object per target, DESIGN.md §5, each
//! finding with what the policy says about it and its confirmation), a CSV of the same records
//! (one row per finding), an incremental Markdown [`Summary`], and the scan [`ScanHistory`]
//! with [`diff`] between two scans and the [`PriorFindings`] confirmations count from, and the
//! self-contained [`HtmlReport`] (charts and a filterable table of every site). Text
//! read from sites appears only inside records, never in metric labels.

mod history;
mod html;
mod record;
mod sinks;
mod summary;

use std::io::BufRead;

pub use history::{
    diff, diff_readers, PriorFindings, ScanDiff, ScanHistory, ScanMeta, ScanWriter, TargetChange,
    TargetState,
};
pub use html::{
    province_counts, report_csp, verdict_counts, HtmlReport, MAX_REPORT_ROWS, SERVER_ROWS,
};
pub use record::{Evidence, RecordCert, RecordFinding, RecordIcp, RecordNumbers, ScanRecord};
pub use sinks::{CsvWriter, JsonlWriter, CSV_COLUMNS};
pub use summary::{ListedSite, ProvinceCounts, Summary, MAX_LISTED_SITES, NO_PROVINCE};

/// Serde default of finding streak counts absent in records written before confirmations:
/// such a finding counts as seen once, needing one scan (confirmed).
pub(crate) fn one() -> u32 {
    1
}

/// Longest JSON Lines record accepted when reading (16 MiB).
pub const MAX_RECORD_LINE: usize = 16 * 1024 * 1024;

/// Why a sink could not be written or a scan file read.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Csv { path: String, source: csv::Error },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: u64,
        message: String,
    },
    #[error("{path}:{line}: record longer than {MAX_RECORD_LINE} bytes")]
    LineTooLong { path: String, line: u64 },
    #[error("scan id {id:?} is not a valid scan id (letters, digits, `-`, `_`; at most 64)")]
    BadScanId { id: String },
    #[error("{path}: no such scan")]
    NoSuchScan { path: String },
    #[error("HTML report: {0}")]
    Template(String),
}

impl ReportError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> ReportError {
        ReportError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Read JSON Lines one record at a time, bounded by [`MAX_RECORD_LINE`]; blank lines are
/// skipped. `f` gets the 1-based line number and the parsed value.
pub(crate) fn for_each_line<R, T, F>(
    mut reader: R,
    label: &str,
    mut f: F,
) -> Result<(), ReportError>
where
    R: BufRead,
    T: serde::de::DeserializeOwned,
    F: FnMut(u64, T) -> Result<(), ReportError>,
{
    use crate::fsutil::{read_line_bounded, LineRead, LongLine};
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        line += 1;
        let read = read_line_bounded(&mut reader, &mut buf, MAX_RECORD_LINE, LongLine::Stop)
            .map_err(|source| ReportError::Io {
                path: label.to_string(),
                source,
            })?;
        match read {
            None => return Ok(()),
            Some(LineRead::TooLong) => {
                return Err(ReportError::LineTooLong {
                    path: label.to_string(),
                    line,
                })
            }
            Some(LineRead::Line) => {}
        }
        if buf.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let v: T = serde_json::from_slice(&buf).map_err(|e| ReportError::Parse {
            path: label.to_string(),
            line,
            message: e.to_string(),
        })?;
        f(line, v)?;
    }
}
