//! Batch import of website filings: JSON Lines (streamed) and spreadsheet or CSV uploads
//! (rows from [`crate::tabular`]). Good rows are kept, bad ones reported with their position;
//! a row for a filing the uploading access provider already handles becomes a change.

use std::collections::BTreeSet;
use std::io::BufRead;

use crate::accounts::Actor;
use crate::domain::Domain;
use crate::tabular::{self, Table, TableKind, UploadFormat};

use super::super::import::{parse_line, LineError, ValidLine};
use super::super::model::*;
use super::super::store::{AuditMeta, RegistryRead, RegistryStore, RegistryTxn, Sequence};
use super::super::workflow::{self, DomainHolder, Event};
use super::{
    holders_of, ImportProgress, ImportReport, Registry, RegistryError, Submitter, MAX_IMPORT_LINE,
};

/// One line of a JSON Lines import (1-based `lineno`), read bounded: `None` at the end; a
/// line longer than [`MAX_IMPORT_LINE`] or not UTF-8 is that line's error, and the lines
/// around it are kept. A UTF-8 byte-order mark (spreadsheet exports) is accepted on line 1.
pub(super) fn next_line<'b>(
    reader: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    lineno: usize,
) -> Result<Option<Result<&'b str, LineError>>, RegistryError> {
    let read = crate::fsutil::read_line_bounded(
        reader,
        buf,
        MAX_IMPORT_LINE,
        crate::fsutil::LongLine::Skip,
    )
    .map_err(|e| RegistryError::Io {
        path: format!("line {lineno}"),
        reason: e.to_string(),
    })?;
    match read {
        None => Ok(None),
        Some(crate::fsutil::LineRead::TooLong) => Ok(Some(Err(LineError::new(
            lineno,
            "(line)",
            format!("longer than {MAX_IMPORT_LINE} bytes"),
        )))),
        Some(crate::fsutil::LineRead::Line) => {
            let bytes: &[u8] = buf;
            let bytes = if lineno == 1 {
                bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes)
            } else {
                bytes
            };
            Ok(Some(std::str::from_utf8(bytes).map_err(|e| {
                LineError::new(
                    lineno,
                    "(line)",
                    format!(
                        "not valid UTF-8 (byte {} of the line); save the file as UTF-8",
                        e.valid_up_to() + 1
                    ),
                )
            })))
        }
    }
}

/// What one accepted line or row did.
enum Imported {
    /// Submitted a new filing.
    New(FilingId),
    /// Opened a change of a filing the uploader already handles.
    Changed(FilingId),
    /// Matched a filing the uploader already handles, with nothing to change.
    Unchanged(FilingId),
}

impl ImportReport {
    fn record(&mut self, line: usize, what: Imported) {
        match what {
            Imported::New(id) => self.accepted.push((line, id)),
            Imported::Changed(id) => self.changed.push((line, id)),
            Imported::Unchanged(id) => self.unchanged.push((line, id)),
        }
    }

    /// Lines or rows that were accepted in any way.
    pub fn kept(&self) -> usize {
        self.accepted.len() + self.changed.len() + self.unchanged.len()
    }
}

/// The filing a line is about when the uploader already handles it: every domain of the line
/// that is filed belongs to one filing of the same subject, on which `actor` is an access
/// provider.
fn handled_filing<R: RegistryRead + ?Sized>(
    r: &R,
    holders: &std::collections::BTreeMap<Domain, DomainHolder>,
    subject: SubjectId,
    actor: &Actor,
) -> Result<Option<Filing>, RegistryError> {
    let Actor::Isp { name, .. } = actor else {
        return Ok(None);
    };
    let ids: BTreeSet<FilingId> = holders.values().map(|h| h.filing_id).collect();
    let [id] = ids.into_iter().collect::<Vec<_>>()[..] else {
        return Ok(None);
    };
    let Some(f) = r.filing(id)? else {
        return Ok(None);
    };
    let provides = f.providers.iter().any(|p| p.name == *name);
    Ok((f.subject_id == subject && provides).then_some(f))
}

impl<S: RegistryStore> Registry<S> {
    /// Import JSON Lines (one website filing per line). Each line is submitted as `submitter`
    /// says. Good lines are kept; bad lines are reported with line number, field and reason.
    /// Every `chunk` lines are committed durably, then `on_ack` is called.
    pub fn import_jsonl(
        &self,
        mut reader: impl BufRead,
        submitter: Submitter<'_>,
        now: i64,
        chunk: usize,
        on_ack: &mut dyn FnMut(&ImportProgress),
    ) -> Result<ImportReport, RegistryError> {
        let chunk = chunk.max(1);
        let mut report = ImportReport {
            format: UploadFormat::JsonLines.as_str().into(),
            ..ImportReport::default()
        };
        let isps = self.isp_list()?;
        let mut txn = self.store.begin()?;
        let mut in_txn = 0usize;
        let mut lines_read = 0usize;
        let mut buf = Vec::new();
        for lineno in 1usize.. {
            let text = match next_line(&mut reader, &mut buf, lineno)? {
                None => break,
                Some(Ok(text)) => text,
                Some(Err(e)) => {
                    lines_read = lineno;
                    report.errors.push(e);
                    continue;
                }
            };
            lines_read = lineno;
            if text.trim().is_empty() {
                continue;
            }
            match self.import_one(&mut txn, lineno, text, submitter, &isps, now)? {
                Ok((what, notes)) => {
                    report.record(lineno, what);
                    report
                        .notes
                        .extend(notes.into_iter().map(|n| format!("line {lineno}: {n}")));
                }
                Err(e) => report.errors.push(e),
            }
            in_txn += 1;
            if in_txn >= chunk {
                txn.commit()?;
                on_ack(&ImportProgress {
                    lines_read,
                    accepted: report.kept(),
                    rejected: report.errors.len(),
                });
                txn = self.store.begin()?;
                in_txn = 0;
            }
        }
        txn.commit()?;
        on_ack(&ImportProgress {
            lines_read,
            accepted: report.kept(),
            rejected: report.errors.len(),
        });
        Ok(report)
    }

    /// Import an upload of any format, told by its content: JSON Lines, CSV (UTF-8, UTF-16 or
    /// GB18030), `.xlsx` or `.xls` in the filing template's columns (`beian template`).
    /// Spreadsheet errors name sheet, row and column.
    pub fn import_upload(
        &self,
        bytes: &[u8],
        submitter: Submitter<'_>,
        now: i64,
        chunk: usize,
        on_ack: &mut dyn FnMut(&ImportProgress),
    ) -> Result<ImportReport, RegistryError> {
        let format = tabular::detect(bytes);
        if format == UploadFormat::JsonLines {
            return self.import_jsonl(bytes, submitter, now, chunk, on_ack);
        }
        let sheets = tabular::read_sheets(bytes)?;
        let table = tabular::columns::table(TableKind::Filing, &sheets)?;
        let mut report = self.import_table(table, submitter, now, chunk, on_ack)?;
        report.format = format.as_str().into();
        Ok(report)
    }

    /// Import the rows of a filing-template table (see [`Registry::import_upload`]).
    pub fn import_table(
        &self,
        table: Table,
        submitter: Submitter<'_>,
        now: i64,
        chunk: usize,
        on_ack: &mut dyn FnMut(&ImportProgress),
    ) -> Result<ImportReport, RegistryError> {
        let chunk = chunk.max(1);
        let mut report = ImportReport {
            errors: table.errors,
            notes: table.notes,
            ..ImportReport::default()
        };
        let isps = self.isp_list()?;
        let mut txn = self.store.begin()?;
        let mut in_txn = 0usize;
        let mut rows_read = 0usize;
        for row in &table.rows {
            rows_read += 1;
            match self.import_one(&mut txn, row.row, &row.json, submitter, &isps, now)? {
                Ok((what, notes)) => {
                    report.record(row.row, what);
                    let place = row.place();
                    report
                        .notes
                        .extend(notes.into_iter().map(|n| format!("{place}: {n}")));
                }
                Err(e) => report.errors.push(row.locate(e)),
            }
            in_txn += 1;
            if in_txn >= chunk {
                txn.commit()?;
                on_ack(&ImportProgress {
                    lines_read: rows_read,
                    accepted: report.kept(),
                    rejected: report.errors.len(),
                });
                txn = self.store.begin()?;
                in_txn = 0;
            }
        }
        txn.commit()?;
        report
            .errors
            .sort_by(|a, b| (&a.sheet, a.line).cmp(&(&b.sheet, b.line)));
        on_ack(&ImportProgress {
            lines_read: rows_read,
            accepted: report.kept(),
            rejected: report.errors.len(),
        });
        Ok(report)
    }

    /// A line for a filing `actor` already handles: unchanged, or a change of its domains,
    /// name, homepage or IPs for the bureau. Other differences are noted, not applied
    /// (providers change through add-provider and cancel-access).
    #[allow(clippy::type_complexity)]
    fn reupload(
        &self,
        txn: &mut S::Txn<'_>,
        lineno: usize,
        filing: Filing,
        v: ValidLine,
        actor: &Actor,
        now: i64,
    ) -> Result<Result<(Imported, Vec<String>), LineError>, RegistryError> {
        let mut notes = v.notes;
        let w = v.submission;
        let old: BTreeSet<&Domain> = filing.domains.iter().collect();
        let new: BTreeSet<&Domain> = w.domains.iter().collect();
        let add: Vec<Domain> = new.difference(&old).map(|d| (*d).clone()).collect();
        let remove: Vec<Domain> = old.difference(&new).map(|d| (*d).clone()).collect();
        let mut ips = w.ips.clone();
        ips.sort();
        ips.dedup();
        let mut old_ips = filing.ips.clone();
        old_ips.sort();
        let details = ChangeDetails {
            name: (w.name != filing.name).then(|| w.name.clone()),
            homepage: (!w.homepage.trim().is_empty() && w.homepage != filing.homepage)
                .then(|| w.homepage.clone()),
            ips: (!ips.is_empty() && ips != old_ips).then_some(ips),
        };
        let mut providers: Vec<&str> = w.providers.iter().map(String::as_str).collect();
        let mut old_providers: Vec<&str> =
            filing.providers.iter().map(|p| p.name.as_str()).collect();
        providers.sort();
        old_providers.sort();
        if providers != old_providers {
            notes.push(format!(
                "website.providers: differ from filing {} ({}); providers change with add-provider and cancel-access, not by upload",
                filing.id,
                old_providers.join(", ")
            ));
        }
        let categories: BTreeSet<&str> = w.categories.iter().map(|c| c.category.as_str()).collect();
        let old_categories: BTreeSet<&str> = filing
            .categories
            .iter()
            .map(|c| c.category.as_str())
            .collect();
        if categories != old_categories {
            notes.push(format!(
                "website.categories: differ from filing {}; content categories are not changed by upload",
                filing.id
            ));
        }
        let id = filing.id;
        if add.is_empty() && remove.is_empty() && details.is_empty() {
            return Ok(Ok((Imported::Unchanged(id), notes)));
        }
        let event = Event::RequestChange {
            add,
            remove,
            details,
        };
        match self.transition(txn, filing, &event, actor, now) {
            Ok(_) => {
                notes.push(format!("filing {id}: change opened for the bureau"));
                Ok(Ok((Imported::Changed(id), notes)))
            }
            Err(RegistryError::Workflow { refusal, .. }) => Ok(Err(LineError::new(
                lineno,
                "website",
                format!("filing {id} is already filed by this provider; its change is refused: {refusal}"),
            )
            .by_rule(refusal.rule))),
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::type_complexity)]
    fn import_one(
        &self,
        txn: &mut S::Txn<'_>,
        lineno: usize,
        text: &str,
        submitter: Submitter<'_>,
        isps: &[String],
        now: i64,
    ) -> Result<Result<(Imported, Vec<String>), LineError>, RegistryError> {
        let v = match parse_line(lineno, text) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        // Once a bureau has created access providers (ISP users), they are the ISP list and
        // every provider a row names must be on it. A registry with no ISP users yet (a lab,
        // a first bulk load on the registry's host) takes the rows' names as they are.
        if !isps.is_empty() {
            if let Some(p) = v
                .submission
                .providers
                .iter()
                .find(|p| !isps.iter().any(|i| i == p.trim()))
            {
                return Ok(Err(LineError::new(
                    lineno,
                    "website.providers",
                    format!(
                        "{p:?} is not on the ISP list (access providers are ISP users a bureau creates; GET /api/codes lists them)"
                    ),
                )));
            }
        }
        let line_err = |field: &str, reason: String| LineError::new(lineno, field, reason);
        let existing = match txn.subject_by_id_number(&v.subject.id_number)? {
            Some(id) => txn.subject(id)?,
            None => None,
        };
        let (subject, is_new) = match existing {
            Some(s) => {
                if s.province != v.subject.province {
                    return Ok(Err(line_err(
                        "subject.province",
                        format!(
                            "subject {} is filed in {}, not {}",
                            s.id_number, s.province, v.subject.province
                        ),
                    )));
                }
                // One identity number is one subject: a different name is a mistake (or a
                // renamed unit, which is a subject change), never silently the old name.
                if s.name.trim() != v.subject.name.trim() {
                    return Ok(Err(line_err(
                        "subject.name",
                        format!(
                            "subject {} is filed as {:?}, not {:?}; a renamed unit changes its subject data first",
                            s.id_number, s.name, v.subject.name
                        ),
                    )));
                }
                (s, false)
            }
            None => {
                let d = v.subject.clone();
                let id = txn.next_id(Sequence::Subject)?;
                (
                    Subject {
                        id,
                        name: d.name,
                        nature: d.nature,
                        id_type: d.id_type,
                        id_number: d.id_number,
                        province: d.province,
                        address: d.address,
                        contact: d.contact,
                        owner: d.owner,
                        number: None,
                        last_website_index: 0,
                        warnings: v
                            .notes
                            .iter()
                            .filter(|n| n.starts_with("subject"))
                            .cloned()
                            .collect(),
                        created_at: now,
                    },
                    true,
                )
            }
        };
        let actor = submitter.for_row(&v.submission.providers[0]);
        let holders = holders_of(txn, v.submission.domains.iter().cloned())?;
        if !is_new {
            if let Some(filing) = handled_filing(txn, &holders, subject.id, &actor)? {
                return self.reupload(txn, lineno, filing, v, &actor, now);
            }
        }
        let id = txn.next_id(Sequence::Filing)?;
        let filing = match workflow::submit(id, v.submission, &subject, &holders, &actor, now) {
            Ok(f) => f,
            Err(e) => {
                let field = match e.rule {
                    workflow::Rule::DuplicateDomain => "website.domains",
                    workflow::Rule::Permission => "website.providers",
                    _ => "website",
                };
                return Ok(Err(line_err(field, e.to_string()).by_rule(e.rule)));
            }
        };
        let meta = AuditMeta::new(&actor, "import", now);
        if is_new {
            txn.put_subject(&meta, &subject)?;
        }
        txn.put_filing(&meta, &filing)?;
        Ok(Ok((Imported::New(id), v.notes)))
    }
}
