//! IP filings (address-block reports by access providers): filing one block, importing them,
//! listing them, and the provider blocks a snapshot carries.

use std::io::BufRead;

use serde::Serialize;

use crate::accounts::Actor;

use super::super::import::LineError;
use super::super::ipfiling::{self, IpFilingInput};
use super::super::model::*;
use super::super::snapshot::ProviderBlock;
use super::super::store::{
    AuditMeta, IpFilingRead, IpFilingWrite, RegistryStore, RegistryTxn, Sequence,
};
use super::super::workflow::{self, WorkflowError};
use super::{Registry, RegistryError, Submitter, BATCH};

/// The outcome of an IP filing import: good lines are kept.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IpImportReport {
    /// What the upload was read as: `jsonl`, `csv`, `xlsx` or `xls`.
    pub format: String,
    /// (line or row, IP filing id) of every accepted line.
    pub accepted: Vec<(usize, IpFilingId)>,
    pub errors: Vec<LineError>,
    pub notes: Vec<String>,
}

/// One unit of the IP unit-information table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IpUnit {
    /// The unit using the addresses.
    pub unit: String,
    /// The ISP that reported them.
    pub provider: String,
    pub province: Option<char>,
    pub city: Option<String>,
    pub blocks: Vec<IpUnitBlock>,
}

/// One block of a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct IpUnitBlock {
    pub id: IpFilingId,
    pub network: ipnet::IpNet,
    pub status: IpBlockStatus,
}

/// Why one IP filing was refused (before it reaches the store).
enum IpRefusal {
    Permission(String),
    Field(&'static str, String),
}

impl IpRefusal {
    /// The refusal as the error of line (or row) `line`.
    fn at(self, line: usize) -> LineError {
        match self {
            IpRefusal::Permission(r) => {
                LineError::new(line, "provider", r).by_rule(workflow::Rule::Permission)
            }
            IpRefusal::Field(field, r) => LineError::new(line, field, r),
        }
    }
}

impl<S: RegistryStore> Registry<S> {
    /// A simple report: `provider` uses `network` itself (status allocated, allocated to the
    /// provider).
    pub fn record_ip_block(
        &self,
        actor: &Actor,
        provider: &str,
        network: ipnet::IpNet,
        now: i64,
    ) -> Result<IpFiling, RegistryError> {
        let input = IpFilingInput {
            provider: provider.to_string(),
            network: network.to_string(),
            source: None,
            status: Some(IpBlockStatus::Allocated.as_str().to_string()),
            allocated_to: Some(provider.to_string()),
            province: None,
            city: None,
        };
        self.file_ip_block(actor, &input, now)
    }

    /// File (or re-report) one address block. ISPs report
    /// their own blocks; IP reporters, bureaus and MIIT any; others are refused. A block
    /// identical to another provider's is a conflict (unless one re-allocated it to the
    /// other); more specific blocks refine less specific ones.
    pub fn file_ip_block(
        &self,
        actor: &Actor,
        input: &IpFilingInput,
        now: i64,
    ) -> Result<IpFiling, RegistryError> {
        let mut txn = self.store.begin()?;
        let f = match Self::file_ip_in(&mut txn, Submitter::Actor(actor), input, now)? {
            Ok(f) => f,
            Err(IpRefusal::Permission(reason)) => {
                return Err(RegistryError::Workflow {
                    what: format!("IP filing {}", input.network.trim()),
                    refusal: WorkflowError {
                        rule: workflow::Rule::Permission,
                        reason,
                    },
                })
            }
            Err(IpRefusal::Field(field, reason)) => {
                return Err(RegistryError::Input {
                    field: field.into(),
                    reason,
                })
            }
        };
        txn.commit()?;
        Ok(f)
    }

    fn file_ip_in(
        txn: &mut S::Txn<'_>,
        submitter: Submitter<'_>,
        input: &IpFilingInput,
        now: i64,
    ) -> Result<Result<IpFiling, IpRefusal>, RegistryError> {
        let actor = submitter.for_row(&input.provider);
        if let Err(reason) = ipfiling::may_report(&actor, input.provider.trim()) {
            return Ok(Err(IpRefusal::Permission(reason)));
        }
        // Validate with a placeholder id first: a refused line consumes no id.
        let mut filing = match ipfiling::validate(0, input, &actor, now) {
            Ok(f) => f,
            Err(e) => return Ok(Err(IpRefusal::Field(e.field, e.reason))),
        };
        let mut reuse = None;
        let mut overlapping = Vec::new();
        for id in txn.ip_filings_overlapping(&filing.network)? {
            let Some(existing) = txn.ip_filing(id)? else {
                continue;
            };
            if existing.provider == filing.provider && existing.network == filing.network {
                reuse = Some(id);
            } else {
                overlapping.push(existing);
            }
        }
        if let Some(reason) = ipfiling::conflict_among(&overlapping, &filing) {
            return Ok(Err(IpRefusal::Field("network", reason)));
        }
        filing.id = match reuse {
            Some(id) => id,
            None => txn.next_id(Sequence::IpFiling)?,
        };
        let meta = AuditMeta::new(&actor, "file_ip_block", now);
        txn.put_ip_filing(&meta, &filing)?;
        Ok(Ok(filing))
    }

    /// Import IP filings from JSON Lines (format: [`super::ipfiling`]). Each line is reported
    /// as `submitter` says. Good lines are kept; bad ones are reported with
    /// line, field and reason (a line that is not UTF-8 or too long too). Commits durably
    /// every 1000 lines.
    pub fn import_ip_jsonl(
        &self,
        mut reader: impl BufRead,
        submitter: Submitter<'_>,
        now: i64,
    ) -> Result<IpImportReport, RegistryError> {
        let mut report = IpImportReport {
            format: crate::tabular::UploadFormat::JsonLines.as_str().into(),
            ..IpImportReport::default()
        };
        let mut txn = self.store.begin()?;
        let mut in_txn = 0usize;
        let mut buf = Vec::new();
        for lineno in 1usize.. {
            let input = match super::imports::next_line(&mut reader, &mut buf, lineno)? {
                None => break,
                Some(Ok(t)) if t.trim().is_empty() => continue,
                Some(Ok(t)) => ipfiling::parse_line(lineno, t),
                Some(Err(e)) => Err(e),
            };
            match input {
                Ok(input) => match Self::file_ip_in(&mut txn, submitter, &input, now)? {
                    Ok(f) => report.accepted.push((lineno, f.id)),
                    Err(r) => report.errors.push(r.at(lineno)),
                },
                Err(e) => report.errors.push(e),
            }
            in_txn += 1;
            if in_txn >= BATCH {
                txn.commit()?;
                txn = self.store.begin()?;
                in_txn = 0;
            }
        }
        txn.commit()?;
        Ok(report)
    }

    /// Import IP filings from an upload of any format, told by its content: JSON Lines, CSV,
    /// `.xlsx` or `.xls` in the IP template's columns (`beian template --kind ip`). Errors of
    /// spreadsheet rows name sheet, row and column.
    pub fn import_ip_upload(
        &self,
        bytes: &[u8],
        submitter: Submitter<'_>,
        now: i64,
    ) -> Result<IpImportReport, RegistryError> {
        use crate::tabular::{self, TableKind, UploadFormat};
        let format = tabular::detect(bytes);
        if format == UploadFormat::JsonLines {
            return self.import_ip_jsonl(bytes, submitter, now);
        }
        let sheets = tabular::read_sheets(bytes)?;
        let table = tabular::columns::table(TableKind::Ip, &sheets)?;
        let mut report = IpImportReport {
            format: format.as_str().into(),
            errors: table.errors,
            notes: table.notes,
            ..IpImportReport::default()
        };
        let mut txn = self.store.begin()?;
        let mut in_txn = 0usize;
        for row in &table.rows {
            let input: IpFilingInput = match serde_json::from_str(&row.json) {
                Ok(i) => i,
                Err(e) => {
                    report
                        .errors
                        .push(row.locate(LineError::new(row.row, "(row)", e.to_string())));
                    continue;
                }
            };
            match Self::file_ip_in(&mut txn, submitter, &input, now)? {
                Ok(f) => report.accepted.push((row.row, f.id)),
                Err(r) => report.errors.push(row.locate(r.at(row.row))),
            }
            in_txn += 1;
            if in_txn >= BATCH {
                txn.commit()?;
                txn = self.store.begin()?;
                in_txn = 0;
            }
        }
        txn.commit()?;
        Ok(report)
    }

    /// One IP filing.
    pub fn ip_filing(&self, id: IpFilingId) -> Result<IpFiling, RegistryError> {
        self.store
            .ip_filing(id)?
            .ok_or_else(|| RegistryError::NotFound(format!("IP filing {id}")))
    }

    /// Replace the data of IP filing `id`. Its provider and network identify the block: an
    /// input naming others is refused (file a new block and delete this one).
    pub fn update_ip_filing(
        &self,
        actor: &Actor,
        id: IpFilingId,
        input: &IpFilingInput,
        now: i64,
    ) -> Result<IpFiling, RegistryError> {
        let f = self.ip_filing(id)?;
        let network =
            ipfiling::parse_network(&input.network).map_err(|e| RegistryError::Input {
                field: e.field.into(),
                reason: e.reason,
            })?;
        if network != f.network || input.provider.trim() != f.provider {
            return Err(RegistryError::Input {
                field: "network".into(),
                reason: format!(
                    "IP filing {id} is {} held by {}; provider and network stay the same (file a new block and delete this one)",
                    f.network, f.provider
                ),
            });
        }
        self.file_ip_block(actor, input, now)
    }

    /// Delete IP filing `id` (audited). Who may report the provider's blocks may delete them.
    pub fn delete_ip_filing(
        &self,
        actor: &Actor,
        id: IpFilingId,
        now: i64,
    ) -> Result<(), RegistryError> {
        let mut txn = self.store.begin()?;
        let f = txn
            .ip_filing(id)?
            .ok_or_else(|| RegistryError::NotFound(format!("IP filing {id}")))?;
        if let Err(reason) = ipfiling::may_report(actor, &f.provider) {
            return Err(RegistryError::Workflow {
                what: format!("IP filing {id}"),
                refusal: WorkflowError {
                    rule: workflow::Rule::Permission,
                    reason,
                },
            });
        }
        txn.delete_ip_filing(&AuditMeta::new(actor, "delete_ip_block", now), id)?;
        txn.commit()?;
        Ok(())
    }

    /// The IP unit-information table: one entry per unit using addresses (the user a block is
    /// allocated to, the ISP it is re-allocated to, a customer with its own addresses, the
    /// provider for its own use and router ports), with its blocks, in unit order.
    pub fn ip_units(&self) -> Result<Vec<IpUnit>, RegistryError> {
        let mut units: std::collections::BTreeMap<(String, String), IpUnit> = Default::default();
        self.store.scan_ip_filings(&mut |f| {
            let unit = match f.status {
                IpBlockStatus::Unallocated => return true,
                IpBlockStatus::RouterPort => f.provider.clone(),
                _ => f.allocated_to.clone().unwrap_or_else(|| f.provider.clone()),
            };
            let e = units
                .entry((unit.clone(), f.provider.clone()))
                .or_insert_with(|| IpUnit {
                    unit,
                    provider: f.provider.clone(),
                    province: f.province,
                    city: f.city.clone(),
                    blocks: Vec::new(),
                });
            e.blocks.push(IpUnitBlock {
                id: f.id,
                network: f.network,
                status: f.status,
            });
            true
        })?;
        Ok(units.into_values().collect())
    }

    /// Every IP filing, in id order.
    pub fn ip_filings(&self) -> Result<Vec<IpFiling>, RegistryError> {
        let mut out = Vec::new();
        self.store.scan_ip_filings(&mut |f| {
            out.push(f);
            true
        })?;
        Ok(out)
    }

    /// The blocks scanners match addresses against: each block with the provider actually
    /// hosting on it (see [`IpFiling::hosting_provider`]); unallocated blocks are left out.
    pub(super) fn snapshot_ip_blocks(&self) -> Result<Vec<ProviderBlock>, RegistryError> {
        let mut seen = std::collections::BTreeSet::new();
        let mut out = Vec::new();
        self.store.scan_ip_filings(&mut |f| {
            if let Some(p) = f.hosting_provider() {
                if seen.insert((f.network, p.to_string())) {
                    out.push(ProviderBlock {
                        provider: p.to_string(),
                        network: f.network,
                    });
                }
            }
            true
        })?;
        Ok(out)
    }
}
