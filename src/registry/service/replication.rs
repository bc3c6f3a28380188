//! Replication: the registry's ordered change feed (the audit log read from a sequence
//! number, [`Registry::change_feed`]) and its application to a read-only replica
//! ([`Registry::apply_changes`]), record for record and exactly once.
//!
//! What a replica keeps: subjects, filings and IP filings (rebuilt from the record's `after`
//! state, with their indexes), the public keyring (the `keyring` records' `after`), and the
//! generic records of [`PUBLIC_RECORD_KINDS`] (announcements and their attachments, whose
//! values the feed carries while they are current). Users, sessions, codes and the outbox
//! stay on the primary: their records enter the replica's log (so its chain is the
//! primary's) without their state. Every applied record must continue the replica's chain
//! ([`RegistryTxn::replay_next`]), and a page is applied in one transaction together with its
//! records, so a replica resumes after a crash from its own log's head: no change is lost
//! or applied twice.

use base64::Engine;

use super::*;
use crate::cert::Keyring;
use crate::registry::store::codec::{self, Persisted};
use crate::registry::store::{AuditRecord, IpFilingWrite};

/// The generic record kinds whose values are public and replicated.
pub const PUBLIC_RECORD_KINDS: &[&str] = &["announcement", "attachment"];

/// The file in a replica's directory naming what it follows (its presence makes the
/// directory a replica: write commands refuse it).
pub const REPLICA_FILE: &str = "replica.json";

/// Largest page of changes the feed returns.
pub const MAX_FEED_PAGE: usize = 5000;
/// Values carried by one page stop being added past this many bytes (the records
/// themselves are always sent).
pub const MAX_FEED_VALUE_BYTES: usize = 8 * 1024 * 1024;

/// One change of the feed: an audit record and, for a record of [`PUBLIC_RECORD_KINDS`] whose
/// stored value is still the one the record wrote, that value (base64).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub record: AuditRecord,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedPage {
    /// The primary's last audit record when the page was read (`None`: an empty log).
    pub head: Option<u64>,
    /// Records after the requested one, in order, without gaps.
    pub changes: Vec<Change>,
}

/// What one application did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Records appended (those at or before the replica's head are skipped).
    pub records: u64,
    /// The replica's head after the page.
    pub head: Option<u64>,
    /// Unix time of the last record applied.
    pub last_at: Option<i64>,
    /// Records whose rebuilt state does not hash to the primary's stored bytes (written by
    /// an older record format there; the content is the same): their entities.
    pub digest_mismatches: Vec<String>,
    /// Whether the public keyring changed.
    pub keyring_changed: bool,
}

/// What a replica directory records about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplicaInfo {
    /// The primary's URL or registry directory, as given to `serve --replica-of`.
    pub source: String,
}

impl ReplicaInfo {
    /// The replica description in `dir`, if `dir` is a replica.
    pub fn read(dir: &Path) -> Result<Option<ReplicaInfo>, RegistryError> {
        let path = dir.join(REPLICA_FILE);
        if !path.exists() {
            return Ok(None);
        }
        let io = |reason: String| RegistryError::Io {
            path: path.display().to_string(),
            reason,
        };
        let text =
            crate::fsutil::read_bounded_string(&path, 64 * 1024).map_err(|e| io(e.to_string()))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| io(format!("not a replica description: {e}")))
    }
}

fn corrupt(seq: u64, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        key: format!("audit record {seq}"),
        reason: reason.into(),
    }
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(b))
}

/// The state a record carries, decoded from its `after`; a state that does not encode to
/// the bytes the primary stored (by their digest) is noted in `out`.
fn rebuilt<T: Persisted>(r: &AuditRecord, out: &mut Applied) -> Result<Option<T>, StoreError> {
    let Some(after) = r.after.clone() else {
        return Ok(None);
    };
    let v: T = serde_json::from_value(after).map_err(|e| corrupt(r.seq, e.to_string()))?;
    let same = match (&r.record_sha256, codec::encode(&v)) {
        (Some(want), Ok(bytes)) => *want == sha256_hex(bytes.as_slice()),
        (None, _) => true,
        (Some(_), Err(_)) => false,
    };
    if !same {
        out.digest_mismatches.push(r.entity.clone());
    }
    Ok(Some(v))
}

impl Registry<AnyStore> {
    /// Create an empty replica in `dir` (an embedded store, no signing key) following
    /// `source`; an existing replica is opened instead. A directory holding a registry of its
    /// own is refused.
    pub fn open_or_init_replica(dir: &Path, source: &str) -> Result<Self, RegistryError> {
        if let Some(info) = ReplicaInfo::read(dir)? {
            if info.source != source {
                tracing::info!(was = %info.source, now = %source, "the replica follows a new source");
            }
        } else {
            if store_dir(dir).exists() || dir.join(DATABASE_URL_FILE).exists() {
                return Err(RegistryError::AlreadyInitialised {
                    path: dir.display().to_string(),
                });
            }
            std::fs::create_dir_all(dir).map_err(|e| RegistryError::Io {
                path: dir.display().to_string(),
                reason: e.to_string(),
            })?;
        }
        let info = ReplicaInfo {
            source: source.to_string(),
        };
        let path = dir.join(REPLICA_FILE);
        let bytes =
            serde_json::to_vec_pretty(&info).map_err(|e| input("replica", e.to_string()))?;
        crate::fsutil::write_atomic(&path, &bytes, None).map_err(|e| RegistryError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let issuer = Issuer::open_public(dir)?;
        let store = AnyStore::Sled(crate::registry::store::sled::SledStore::open(&store_dir(
            dir,
        ))?);
        Ok(Registry {
            dir: dir.to_path_buf(),
            store,
            issuer: Mutex::new(issuer),
        })
    }
}

impl<S: RegistryStore> Registry<S> {
    /// The change feed: up to `limit` (at most [`MAX_FEED_PAGE`]) audit records after
    /// `after` (from the first when `None`), in order, with the current values of public
    /// generic records the records wrote (see [`Change::value`]).
    pub fn change_feed(&self, after: Option<u64>, limit: usize) -> Result<FeedPage, RegistryError> {
        let store = &self.store;
        // The head first: records read after it may go past it, never stop short of it.
        let head = store.audit_head()?.map(|(s, _)| s);
        let from = after.map(|a| a.saturating_add(1)).unwrap_or(0);
        let limit = limit.clamp(1, MAX_FEED_PAGE);
        let mut records = Vec::new();
        let mut bad = None;
        store.scan_audit_from(from, &mut |seq, r| {
            match r {
                Ok(r) => records.push(r),
                Err(e) => {
                    bad = Some(corrupt(seq, e));
                    return false;
                }
            }
            records.len() < limit
        })?;
        if let Some(e) = bad {
            return Err(e.into());
        }
        let mut value_bytes = 0usize;
        let mut changes = Vec::with_capacity(records.len());
        for (i, record) in records.into_iter().enumerate() {
            let expected = from + i as u64;
            if record.seq != expected {
                return Err(corrupt(expected, format!("the log holds {} here", record.seq)).into());
            }
            let mut value = None;
            if let (Some((kind, key)), Some(want)) =
                (record.entity.split_once(':'), &record.record_sha256)
            {
                if PUBLIC_RECORD_KINDS.contains(&kind) && value_bytes < MAX_FEED_VALUE_BYTES {
                    if let Some(v) = store.record(kind, key)? {
                        if sha256_hex(&v) == *want {
                            value_bytes += v.len();
                            value = Some(base64::engine::general_purpose::STANDARD.encode(&v));
                        }
                    }
                }
            }
            changes.push(Change { record, value });
        }
        Ok(FeedPage { head, changes })
    }

    /// Apply a page of a primary's change feed to this replica, in one transaction: records
    /// at or before the replica's head are skipped, the others must continue its chain
    /// (else [`StoreError::Diverged`], and nothing of the page is written).
    pub fn apply_changes(&self, changes: &[Change]) -> Result<Applied, RegistryError> {
        let head = self.store.audit_head()?.map(|(s, _)| s);
        let mut out = Applied {
            head,
            ..Applied::default()
        };
        let fresh: Vec<&Change> = changes
            .iter()
            .filter(|c| head.is_none_or(|h| c.record.seq > h))
            .collect();
        if fresh.is_empty() {
            return Ok(out);
        }
        let mut keyring: Option<Keyring> = None;
        let mut txn = self.store.begin()?;
        for c in fresh {
            let r = &c.record;
            // Ignored while replaying: the record itself is appended.
            let meta = AuditMeta::new(&Actor::Miit, r.action.clone(), r.at);
            let (kind, key) = r.entity.split_once(':').unwrap_or((r.entity.as_str(), ""));
            txn.replay_next(r.clone());
            match kind {
                "subject" => match rebuilt::<Subject>(r, &mut out)? {
                    Some(s) => txn.put_subject(&meta, &s)?,
                    None => txn.audit(&meta, &r.entity, None, None)?,
                },
                "filing" => match rebuilt::<Filing>(r, &mut out)? {
                    Some(f) => txn.put_filing(&meta, &f)?,
                    None => txn.audit(&meta, &r.entity, None, None)?,
                },
                "ip_filing" => match rebuilt::<IpFiling>(r, &mut out)? {
                    Some(f) => txn.put_ip_filing(&meta, &f)?,
                    None => {
                        let id = key
                            .parse()
                            .map_err(|_| corrupt(r.seq, "bad IP filing id"))?;
                        txn.delete_ip_filing(&meta, id)?
                    }
                },
                "keyring" => {
                    if let Some(after) = &r.after {
                        // The record holds the keyring's own form; the export's reading
                        // validates every key.
                        let ring = serde_json::from_value::<Keyring>(after.clone())
                            .map_err(|e| e.to_string())
                            .and_then(|k| {
                                Keyring::from_json(&k.to_json()).map_err(|e| e.to_string())
                            })
                            .map_err(|e| corrupt(r.seq, format!("keyring: {e}")))?;
                        keyring = Some(ring);
                    }
                    txn.audit(&meta, &r.entity, None, None)?
                }
                k if PUBLIC_RECORD_KINDS.contains(&k) => match (&r.after, &c.value) {
                    (None, _) => txn.put_record(&meta, k, key, None)?,
                    (Some(_), Some(v)) => {
                        let bytes = base64::engine::general_purpose::STANDARD
                            .decode(v)
                            .map_err(|e| corrupt(r.seq, format!("value: {e}")))?;
                        if r.record_sha256.as_deref() != Some(sha256_hex(&bytes).as_str()) {
                            return Err(corrupt(r.seq, "the value is not the one recorded").into());
                        }
                        txn.put_record(&meta, k, key, Some(&bytes))?
                    }
                    // Changed again since: a later record carries the value.
                    (Some(_), None) => txn.audit(&meta, &r.entity, None, None)?,
                },
                _ => txn.audit(&meta, &r.entity, None, None)?,
            }
            if txn.replay_pending() {
                return Err(StoreError::Diverged {
                    seq: r.seq,
                    reason: format!("{} is not in this replica", r.entity),
                }
                .into());
            }
            out.records += 1;
            out.head = Some(r.seq);
            out.last_at = Some(r.at);
        }
        // The keyring file goes first: a crash before the commit leaves it at most one page
        // ahead of the store, and the page is applied again on restart.
        if let Some(ring) = keyring {
            self.issuer
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .set_public_keyring(ring)?;
            out.keyring_changed = true;
        }
        txn.commit()?;
        Ok(out)
    }
}
