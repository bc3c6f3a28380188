//! Storage behind traits: [`RegistryRead`] (lookups by id, domain, number, IP), [`RegistryScan`]
//! (full scans for snapshots and audit verification), and [`RegistryStore`] / [`RegistryTxn`]
//! for writes. Every write goes through a transaction whose `put_*` methods append an audit
//! record (who, what, when, before/after) to the hash-chained log; `commit` returns only once
//! the writes are durable (fsync), so an acknowledged write survives `kill -9`. A replica
//! replays its primary's records instead ([`RegistryTxn::replay_next`]: the store appends the
//! given record after [`audit::Appender::append`] checks it continues the chain), and reads
//! the primary's log from a sequence number ([`RegistryScan::scan_audit_from`]).
//!
//! The traits name no backend: `sled` (the embedded default, one process) lives in [`sled`],
//! PostgreSQL (several processes on one database) in [`postgres`], with one `SERIALIZABLE`
//! SQL transaction per [`RegistryTxn`]; [`any::AnyStore`] is either, chosen when a registry is
//! opened, so the rest of the program is written once. Both backends' transactions carry the
//! same chain state ([`audit::Appender`]) and allocated-id set ([`FreshIds`]). Generic records
//! (sessions, the outbox, announcements, …) are read and written typed, through [`records`].

pub mod any;
pub mod audit;
pub mod codec;
pub mod postgres;
pub mod postings;
pub mod records;
pub mod sled;

use std::net::IpAddr;

use crate::accounts::{Actor, UserRecord};
use crate::domain::Domain;
use crate::number::FilingNumber;

use super::model::{Filing, FilingId, Subject, SubjectId};
pub use audit::{AuditRecord, AuditReport};

/// A storage failure (I/O, corruption), with what was being accessed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the registry store: {reason}")]
    Open { path: String, reason: String },
    /// Another process holds the store (sled allows one process at a time).
    #[error("{path}: the registry is in use by another process{holder}; stop it, or read through the running service or a snapshot (`beian snapshot export` while it is stopped)")]
    Locked {
        path: String,
        /// ` (beian serve, pid N)` when a running `serve` recorded its pid, else empty.
        holder: String,
    },
    /// The store's files are damaged (a failed checksum, unreadable pages, a crash inside
    /// the storage engine).
    #[error("{path}: the registry store is damaged ({detail}); restore the registry directory from a backup, or re-import the filings into a new registry")]
    Damaged { path: String, detail: String },
    #[error("registry store I/O ({context}): {reason}")]
    Io { context: String, reason: String },
    #[error("registry store record {key} is corrupt: {reason}")]
    Corrupt { key: String, reason: String },
    /// A concurrent writer changed the same data (the database refused the transaction:
    /// serialization failure, deadlock, unique violation). Nothing was written; retrying the
    /// operation sees the other writer's result.
    #[error("registry store conflict ({context}): a concurrent write changed the same data; nothing was written")]
    Conflict { context: String },
    /// A replayed audit record (a replica following its primary) does not continue this
    /// store's chain: a gap, a repeat, another registry's log, or a record whose hash is
    /// wrong. Nothing was written.
    #[error("replayed audit record {seq} does not continue this store's chain: {reason}")]
    Diverged { seq: u64, reason: String },
}

/// The file in a registry directory where a running `beian serve` records its pid, so that
/// other commands can say who holds the store.
pub const SERVE_PID_FILE: &str = "serve.pid";

/// Id sequences handed out by the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sequence {
    Subject,
    Filing,
    /// Digits of generated subject numbers (8 digits, unique across provinces).
    SubjectNumber,
    /// IP filing ids.
    IpFiling,
}

/// Record ids (subjects, filings, IP filings) a transaction allocated and has not stored yet:
/// nothing was ever stored under them, so their first write reads no earlier version. Every
/// backend's transaction keeps one.
#[derive(Debug, Default)]
pub struct FreshIds(std::collections::HashSet<(Sequence, u64)>);

impl FreshIds {
    /// `id` was just allocated from `seq` (subject numbers are not record ids: ignored).
    pub fn allocated(&mut self, seq: Sequence, id: u64) {
        if seq != Sequence::SubjectNumber {
            self.0.insert((seq, id));
        }
    }

    /// Whether `id` of `seq` is fresh; it is not any more after this (its record is being
    /// written).
    pub fn take(&mut self, seq: Sequence, id: u64) -> bool {
        self.0.remove(&(seq, id))
    }
}

/// Who did what, when: the context every audited write carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditMeta {
    pub actor: Actor,
    pub action: String,
    pub at: i64,
}

impl AuditMeta {
    pub fn new(actor: &Actor, action: impl Into<String>, at: i64) -> Self {
        AuditMeta {
            actor: actor.clone(),
            action: action.into(),
            at,
        }
    }
}

/// Point lookups. Implemented by stores and by open transactions (which see their own writes).
pub trait RegistryRead {
    fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError>;
    fn subject_by_id_number(&self, id_number: &str) -> Result<Option<SubjectId>, StoreError>;
    /// The subject holding a subject number (alternative province forms match).
    fn subject_by_number(&self, number: &FilingNumber) -> Result<Option<SubjectId>, StoreError>;
    fn filing(&self, id: FilingId) -> Result<Option<Filing>, StoreError>;
    /// The latest filing that listed this registrable domain (check its status to see whether
    /// it still holds it).
    fn filing_by_domain(&self, domain: &Domain) -> Result<Option<FilingId>, StoreError>;
    /// The filing with this service number (alternative province forms match).
    fn filing_by_number(&self, number: &FilingNumber) -> Result<Option<FilingId>, StoreError>;
    fn filings_by_ip(&self, ip: IpAddr) -> Result<Vec<FilingId>, StoreError>;
    fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
}

/// Full scans, in id order. The visitor returns `false` to stop.
pub trait RegistryScan {
    fn scan_filings(&self, visit: &mut dyn FnMut(Filing) -> bool) -> Result<(), StoreError>;
    fn scan_subjects(&self, visit: &mut dyn FnMut(Subject) -> bool) -> Result<(), StoreError>;
    /// Audit records in chain order, raw: a record that does not decode is passed as `Err`.
    fn scan_audit(
        &self,
        visit: &mut dyn FnMut(u64, Result<AuditRecord, String>) -> bool,
    ) -> Result<(), StoreError> {
        self.scan_audit_from(0, visit)
    }
    /// Audit records from sequence number `from` on, in chain order (what a replica's
    /// change feed reads).
    fn scan_audit_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, Result<AuditRecord, String>) -> bool,
    ) -> Result<(), StoreError>;
    /// The sequence number and hash of the last audit record, as recorded by commits.
    fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError>;

    // --- Generic records: the backends' primitive. The program reads and writes them typed,
    // through [`records::TypedRecords`]; the raw bytes are for replication only. ---

    /// One generic record of `kind` (e.g. `session`, `outbox`) under `key`, as stored.
    fn record(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every record of `kind`, in key order, as (key, value). The visitor returns `false` to
    /// stop.
    fn scan_records(
        &self,
        kind: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> bool,
    ) -> Result<(), StoreError>;
    /// Every user, in username order.
    fn scan_users(&self, visit: &mut dyn FnMut(UserRecord) -> bool) -> Result<(), StoreError>;

    /// The filings numbered under a subject number (`京ICP备12345678号-1`, `-2A`, …; the
    /// service-number index read by prefix), in index key order.
    fn filings_under_subject_number(
        &self,
        subject_number: &FilingNumber,
    ) -> Result<Vec<FilingId>, StoreError>;

    /// The subjects whose name contains `fragment` (compared as [`normalise_name`] writes
    /// both), in id order, found through the subject-name index (every [`name_grams`] window
    /// of each name → the subject): only subjects holding every window of the fragment are
    /// read, not every subject. A fragment shorter than [`MIN_NAME_FRAGMENT`] finds nothing.
    /// The visitor returns `false` to stop.
    fn subjects_by_name(
        &self,
        fragment: &str,
        visit: &mut dyn FnMut(Subject) -> bool,
    ) -> Result<(), StoreError>;

    /// Every stored state record — subjects, filings, users, IP filings and generic records —
    /// as the audit entity it belongs to (`filing:12`, `session:<key>`, …) and its stored
    /// bytes, for checking the state against the audit log.
    fn scan_state(&self, visit: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), StoreError>;
}

/// The fewest characters (after [`normalise_name`]) a subject-name search takes: one
/// character would match most of the registry.
pub const MIN_NAME_FRAGMENT: usize = 2;

/// A subject name as the name index compares it: lower case, without white space or control
/// characters (`北京 示例 Tech` → `北京示例tech`).
pub fn normalise_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The windows the subject-name index holds for a name: every two consecutive characters of
/// its normalised form (a one-character name: that character; an empty one: none).
pub fn name_grams(name: &str) -> std::collections::BTreeSet<String> {
    let chars: Vec<char> = normalise_name(name).chars().collect();
    if chars.len() == 1 {
        return chars.iter().map(|c| c.to_string()).collect();
    }
    chars.windows(2).map(|w| w.iter().collect()).collect()
}

/// A read-write store: opens transactions.
pub trait RegistryStore: RegistryRead + RegistryScan + IpFilingRead + IpFilingScan {
    type Txn<'a>: RegistryTxn + IpFilingWrite
    where
        Self: 'a;
    /// Start a transaction. Transactions are serialised: a second `begin` waits.
    fn begin(&self) -> Result<Self::Txn<'_>, StoreError>;
}

/// An open write transaction. Reads see its own writes. Nothing is visible to others or
/// durable before [`RegistryTxn::commit`] returns.
pub trait RegistryTxn: RegistryRead {
    fn next_id(&mut self, seq: Sequence) -> Result<u64, StoreError>;
    /// Store a subject (indexes: id number, subject number) and audit the change.
    fn put_subject(&mut self, meta: &AuditMeta, subject: &Subject) -> Result<(), StoreError>;
    /// Store a filing (indexes: domain, service number, IP) and audit the change.
    fn put_filing(&mut self, meta: &AuditMeta, filing: &Filing) -> Result<(), StoreError>;
    fn put_user(&mut self, meta: &AuditMeta, user: &UserRecord) -> Result<(), StoreError>;
    /// Audit a change kept outside the store (e.g. the keyring), with its before/after state.
    fn audit(
        &mut self,
        meta: &AuditMeta,
        entity: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// Make every write durable (fsync) and visible; returns the number of audit records
    /// written.
    fn commit(self) -> Result<u64, StoreError>;

    /// Replication: the next audited write of this transaction appends `record` itself
    /// instead of a record of its own. The record must continue the chain (its `seq` is the
    /// next one, its `prev_hash` the current head's, its own hash right, its entity the
    /// write's), else that write fails with [`StoreError::Diverged`]. A replica calls this
    /// before each write it replays, so its log is the primary's, record for record.
    fn replay_next(&mut self, record: AuditRecord);
    /// Whether a record given to [`RegistryTxn::replay_next`] still waits for its write.
    fn replay_pending(&self) -> bool;

    // --- Generic records: the backends' primitive under [`records::TypedRecordsTxn`]. ---

    /// Store (`Some`) or delete (`None`) a generic record's bytes and audit it. The audit record
    /// carries only the size and SHA-256 of the value, never its content (sessions, codes).
    fn put_record(
        &mut self,
        meta: &AuditMeta,
        kind: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError>;
}

// ---- IP filings (kept apart from the filing traits above) ----

use super::model::{IpFiling, IpFilingId};

/// Point lookups of IP filings. Implemented by stores and open transactions.
pub trait IpFilingRead {
    fn ip_filing(&self, id: IpFilingId) -> Result<Option<IpFiling>, StoreError>;
    /// Every IP filing of exactly this network (several only across a re-allocation).
    fn ip_filings_by_network(&self, network: &ipnet::IpNet) -> Result<Vec<IpFilingId>, StoreError>;
    /// Every IP filing whose network contains, equals or lies inside `network`.
    fn ip_filings_overlapping(&self, network: &ipnet::IpNet)
        -> Result<Vec<IpFilingId>, StoreError>;
}

/// Full scan of IP filings, in id order. The visitor returns `false` to stop.
pub trait IpFilingScan {
    fn scan_ip_filings(&self, visit: &mut dyn FnMut(IpFiling) -> bool) -> Result<(), StoreError>;
}

/// Writing IP filings inside a transaction.
pub trait IpFilingWrite: IpFilingRead {
    /// Store an IP filing (index: network) and audit the change.
    fn put_ip_filing(&mut self, meta: &AuditMeta, filing: &IpFiling) -> Result<(), StoreError>;
    /// Remove an IP filing (and its index entry) and audit the removal. Removing one that does
    /// not exist is a no-op.
    fn delete_ip_filing(&mut self, meta: &AuditMeta, id: IpFilingId) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_indexed_by_two_character_windows_of_their_normalised_form() {
        assert_eq!(normalise_name(" 北京 示例\tTech "), "北京示例tech");
        let g: Vec<String> = name_grams("示例 AB").into_iter().collect();
        let mut want = vec!["示例", "例a", "ab"];
        want.sort();
        assert_eq!(g, want);
        assert_eq!(name_grams("京").into_iter().collect::<Vec<_>>(), ["京"]);
        assert!(name_grams(" ").is_empty());
        // A repeated window is one entry.
        assert_eq!(name_grams("哈哈哈").len(), 1);
    }
}
