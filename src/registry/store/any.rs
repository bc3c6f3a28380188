//! [`AnyStore`]: the store a registry was opened on — sled or PostgreSQL — implementing the
//! store traits by delegation, so `Registry<AnyStore>` (the default) serves both and no code
//! above the store is written twice. [`Backend`] says where a registry's store lives.

use std::net::IpAddr;

use super::postgres::{PgStore, PgTxn};
use super::sled::{SledStore, SledTxn};
use super::*;
use crate::registry::model::{IpFiling, IpFilingId};

/// Where a registry's store lives.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// The embedded store in the registry directory (`DIR/store`).
    Sled,
    /// A PostgreSQL database, by URL (`postgres://user:password@host:port/db`).
    Postgres { url: String },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Sled => write!(f, "Sled"),
            // Never the password.
            Backend::Postgres { url } => write!(f, "Postgres({})", super::postgres::redacted(url)),
        }
    }
}

impl Backend {
    /// `sled` or `postgres`.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Postgres { .. } => "postgres",
        }
    }
}

/// A sled or a PostgreSQL store.
pub enum AnyStore {
    Sled(SledStore),
    Postgres(PgStore),
}

/// A transaction of an [`AnyStore`].
pub enum AnyTxn<'a> {
    Sled(SledTxn<'a>),
    Postgres(PgTxn<'a>),
}

macro_rules! each {
    ($v:expr, $s:ident => $e:expr) => {
        match $v {
            AnyStore::Sled($s) => $e,
            AnyStore::Postgres($s) => $e,
        }
    };
}

macro_rules! each_txn {
    ($v:expr, $s:ident => $e:expr) => {
        match $v {
            AnyTxn::Sled($s) => $e,
            AnyTxn::Postgres($s) => $e,
        }
    };
}

impl AnyStore {
    pub fn backend_name(&self) -> &'static str {
        match self {
            AnyStore::Sled(_) => "sled",
            AnyStore::Postgres(_) => "postgres",
        }
    }

    /// See [`SledStore::warm_lookups`]; nothing to do on PostgreSQL.
    pub fn warm_lookups(&self) -> Result<u64, StoreError> {
        each!(self, s => s.warm_lookups())
    }

    /// Raw access for tamper tests (see [`SledStore::overwrite_record_for_tests`]).
    #[doc(hidden)]
    pub fn overwrite_record_for_tests(
        &self,
        key: &[u8],
        bytes: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        each!(self, s => s.overwrite_record_for_tests(key, bytes))
    }

    /// Raw access for tamper tests: overwrite the stored bytes of audit record `seq`.
    #[doc(hidden)]
    pub fn overwrite_audit_record_for_tests(
        &self,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        each!(self, s => s.overwrite_audit_record_for_tests(seq, bytes))
    }

    /// Raw access for tamper tests: the stored bytes of audit record `seq`.
    #[doc(hidden)]
    pub fn audit_record_bytes_for_tests(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, s => s.audit_record_bytes_for_tests(seq))
    }
}

impl RegistryRead for AnyStore {
    fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError> {
        each!(self, s => s.subject(id))
    }
    fn subject_by_id_number(&self, n: &str) -> Result<Option<SubjectId>, StoreError> {
        each!(self, s => s.subject_by_id_number(n))
    }
    fn subject_by_number(&self, n: &FilingNumber) -> Result<Option<SubjectId>, StoreError> {
        each!(self, s => s.subject_by_number(n))
    }
    fn filing(&self, id: FilingId) -> Result<Option<Filing>, StoreError> {
        each!(self, s => s.filing(id))
    }
    fn filing_by_domain(&self, d: &Domain) -> Result<Option<FilingId>, StoreError> {
        each!(self, s => s.filing_by_domain(d))
    }
    fn filing_by_number(&self, n: &FilingNumber) -> Result<Option<FilingId>, StoreError> {
        each!(self, s => s.filing_by_number(n))
    }
    fn filings_by_ip(&self, ip: IpAddr) -> Result<Vec<FilingId>, StoreError> {
        each!(self, s => s.filings_by_ip(ip))
    }
    fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        each!(self, s => s.user(username))
    }
}

impl RegistryScan for AnyStore {
    fn scan_filings(&self, visit: &mut dyn FnMut(Filing) -> bool) -> Result<(), StoreError> {
        each!(self, s => s.scan_filings(visit))
    }
    fn scan_subjects(&self, visit: &mut dyn FnMut(Subject) -> bool) -> Result<(), StoreError> {
        each!(self, s => s.scan_subjects(visit))
    }
    fn scan_audit_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, Result<AuditRecord, String>) -> bool,
    ) -> Result<(), StoreError> {
        each!(self, s => s.scan_audit_from(from, visit))
    }
    fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        each!(self, s => s.audit_head())
    }
    fn record(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        each!(self, s => s.record(kind, key))
    }
    fn scan_records(
        &self,
        kind: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        each!(self, s => s.scan_records(kind, visit))
    }
    fn scan_users(&self, visit: &mut dyn FnMut(UserRecord) -> bool) -> Result<(), StoreError> {
        each!(self, s => s.scan_users(visit))
    }
    fn filings_under_subject_number(
        &self,
        subject_number: &FilingNumber,
    ) -> Result<Vec<FilingId>, StoreError> {
        each!(self, s => s.filings_under_subject_number(subject_number))
    }
    fn subjects_by_name(
        &self,
        fragment: &str,
        visit: &mut dyn FnMut(Subject) -> bool,
    ) -> Result<(), StoreError> {
        each!(self, s => s.subjects_by_name(fragment, visit))
    }
    fn scan_state(&self, visit: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), StoreError> {
        each!(self, s => s.scan_state(visit))
    }
}

impl IpFilingRead for AnyStore {
    fn ip_filing(&self, id: IpFilingId) -> Result<Option<IpFiling>, StoreError> {
        each!(self, s => s.ip_filing(id))
    }
    fn ip_filings_by_network(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        each!(self, s => s.ip_filings_by_network(net))
    }
    fn ip_filings_overlapping(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        each!(self, s => s.ip_filings_overlapping(net))
    }
}

impl IpFilingScan for AnyStore {
    fn scan_ip_filings(&self, visit: &mut dyn FnMut(IpFiling) -> bool) -> Result<(), StoreError> {
        each!(self, s => s.scan_ip_filings(visit))
    }
}

impl RegistryStore for AnyStore {
    type Txn<'a> = AnyTxn<'a>;
    fn begin(&self) -> Result<AnyTxn<'_>, StoreError> {
        Ok(match self {
            AnyStore::Sled(s) => AnyTxn::Sled(s.begin()?),
            AnyStore::Postgres(s) => AnyTxn::Postgres(s.begin()?),
        })
    }
}

impl RegistryRead for AnyTxn<'_> {
    fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError> {
        each_txn!(self, t => t.subject(id))
    }
    fn subject_by_id_number(&self, n: &str) -> Result<Option<SubjectId>, StoreError> {
        each_txn!(self, t => t.subject_by_id_number(n))
    }
    fn subject_by_number(&self, n: &FilingNumber) -> Result<Option<SubjectId>, StoreError> {
        each_txn!(self, t => t.subject_by_number(n))
    }
    fn filing(&self, id: FilingId) -> Result<Option<Filing>, StoreError> {
        each_txn!(self, t => t.filing(id))
    }
    fn filing_by_domain(&self, d: &Domain) -> Result<Option<FilingId>, StoreError> {
        each_txn!(self, t => t.filing_by_domain(d))
    }
    fn filing_by_number(&self, n: &FilingNumber) -> Result<Option<FilingId>, StoreError> {
        each_txn!(self, t => t.filing_by_number(n))
    }
    fn filings_by_ip(&self, ip: IpAddr) -> Result<Vec<FilingId>, StoreError> {
        each_txn!(self, t => t.filings_by_ip(ip))
    }
    fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        each_txn!(self, t => t.user(username))
    }
}

impl RegistryTxn for AnyTxn<'_> {
    fn next_id(&mut self, seq: Sequence) -> Result<u64, StoreError> {
        each_txn!(self, t => t.next_id(seq))
    }
    fn put_subject(&mut self, meta: &AuditMeta, subject: &Subject) -> Result<(), StoreError> {
        each_txn!(self, t => t.put_subject(meta, subject))
    }
    fn put_filing(&mut self, meta: &AuditMeta, filing: &Filing) -> Result<(), StoreError> {
        each_txn!(self, t => t.put_filing(meta, filing))
    }
    fn put_user(&mut self, meta: &AuditMeta, user: &UserRecord) -> Result<(), StoreError> {
        each_txn!(self, t => t.put_user(meta, user))
    }
    fn audit(
        &mut self,
        meta: &AuditMeta,
        entity: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        each_txn!(self, t => t.audit(meta, entity, before, after))
    }
    fn commit(self) -> Result<u64, StoreError> {
        each_txn!(self, t => t.commit())
    }
    fn replay_next(&mut self, record: AuditRecord) {
        each_txn!(self, t => t.replay_next(record))
    }
    fn replay_pending(&self) -> bool {
        each_txn!(self, t => t.replay_pending())
    }
    fn put_record(
        &mut self,
        meta: &AuditMeta,
        kind: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        each_txn!(self, t => t.put_record(meta, kind, key, value))
    }
}

impl IpFilingRead for AnyTxn<'_> {
    fn ip_filing(&self, id: IpFilingId) -> Result<Option<IpFiling>, StoreError> {
        each_txn!(self, t => t.ip_filing(id))
    }
    fn ip_filings_by_network(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        each_txn!(self, t => t.ip_filings_by_network(net))
    }
    fn ip_filings_overlapping(&self, net: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError> {
        each_txn!(self, t => t.ip_filings_overlapping(net))
    }
}

impl IpFilingWrite for AnyTxn<'_> {
    fn put_ip_filing(&mut self, meta: &AuditMeta, filing: &IpFiling) -> Result<(), StoreError> {
        each_txn!(self, t => t.put_ip_filing(meta, filing))
    }
    fn delete_ip_filing(&mut self, meta: &AuditMeta, id: IpFilingId) -> Result<(), StoreError> {
        each_txn!(self, t => t.delete_ip_filing(meta, id))
    }
}
