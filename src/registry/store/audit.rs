//! The hash-chained audit log: record shape, canonical bytes, chain hashing and verification,
//! and the check of the stored state against the log ([`LoggedState`], [`StateCheck`],
//! [`legacy_matches`] for entries written before they carried the stored bytes' hash), and
//! the end of the chain an open transaction appends to ([`Appender`]). Backend-agnostic;
//! stores persist the bytes the appender makes and call [`verify_chain`].

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS: [u8; 32] = [0; 32];

/// One audited mutation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 0, 1, 2, … without gaps.
    pub seq: u64,
    /// Unix seconds.
    pub at: i64,
    /// `miit`, `bureau:京`, `isp:NAME`, …
    pub actor: String,
    pub action: String,
    /// `filing:12`, `subject:3`, `user:miit`, `keyring`.
    pub entity: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    /// Hex sha256 of the record's stored bytes after this change (absent for a deletion, for
    /// changes kept outside the store, and in entries written before state was audited):
    /// what `audit verify` compares the stored record with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_sha256: Option<String>,
    /// Hex sha256 of the previous record (zeros for the first).
    pub prev_hash: String,
    /// Hex sha256(prev hash bytes ‖ canonical bytes of this record).
    pub hash: String,
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    at: i64,
    actor: &'a str,
    action: &'a str,
    entity: &'a str,
    before: &'a Option<serde_json::Value>,
    after: &'a Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_sha256: &'a Option<String>,
}

impl AuditRecord {
    /// The bytes hashed into the chain: compact JSON of the fields in a fixed order (object
    /// keys inside before/after are sorted by `serde_json`).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&Canonical {
            seq: self.seq,
            at: self.at,
            actor: &self.actor,
            action: &self.action,
            entity: &self.entity,
            before: &self.before,
            after: &self.after,
            record_sha256: &self.record_sha256,
        })
        .unwrap_or_default()
    }

    pub fn compute_hash(&self, prev: &[u8; 32]) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(prev);
        h.update(self.canonical_bytes());
        h.finalize().into()
    }

    /// Build a record chained after `prev` and fill in its hashes.
    #[allow(clippy::too_many_arguments)]
    pub fn chained(
        seq: u64,
        at: i64,
        actor: String,
        action: String,
        entity: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
        prev: &[u8; 32],
    ) -> (AuditRecord, [u8; 32]) {
        let mut r = AuditRecord {
            seq,
            at,
            actor,
            action,
            entity,
            before,
            after,
            record_sha256: None,
            prev_hash: hex::encode(prev),
            hash: String::new(),
        };
        let h = r.compute_hash(prev);
        r.hash = hex::encode(h);
        (r, h)
    }
}

/// Check a replayed record (a replica following its primary) against this store's chain:
/// it must be record `next_seq`, follow `prev`, name `entity` and carry its own right hash.
/// Returns the bytes to store and the new head hash.
pub fn replayed_bytes(
    record: &AuditRecord,
    next_seq: u64,
    prev: &[u8; 32],
    entity: &str,
) -> Result<(Vec<u8>, [u8; 32]), super::StoreError> {
    let diverged = |reason: String| super::StoreError::Diverged {
        seq: record.seq,
        reason,
    };
    if record.seq != next_seq {
        return Err(diverged(format!("this store's next record is {next_seq}")));
    }
    if record.prev_hash != hex::encode(prev) {
        return Err(diverged(format!(
            "it follows {}, this store's head is {}",
            record.prev_hash,
            hex::encode(prev)
        )));
    }
    if record.entity != entity {
        return Err(diverged(format!(
            "it names {}, the replayed write is of {entity}",
            record.entity
        )));
    }
    let h = record.compute_hash(prev);
    if record.hash != hex::encode(h) {
        return Err(diverged("its hash does not match its content".into()));
    }
    let bytes = serde_json::to_vec(record).map_err(|e| diverged(e.to_string()))?;
    Ok((bytes, h))
}

/// The end of the chain an open transaction appends to: the next sequence number, the hash
/// of the record before it, how many records this transaction appended, and a replayed
/// record waiting for its write ([`crate::registry::store::RegistryTxn::replay_next`]). Every
/// backend's transaction holds one; the backend only stores the bytes [`Appender::append`]
/// returns under the sequence number it returns, and the new head ([`Appender::head`]) at
/// its commit.
#[derive(Debug)]
pub struct Appender {
    next_seq: u64,
    prev_hash: [u8; 32],
    appended: u64,
    replay: Option<AuditRecord>,
}

impl Appender {
    /// Continue the chain whose last record is `head` (`None`: an empty log).
    pub fn after(head: Option<(u64, [u8; 32])>) -> Self {
        Appender {
            next_seq: head.map_or(0, |(s, _)| s + 1),
            prev_hash: head.map_or(GENESIS, |(_, h)| h),
            appended: 0,
            replay: None,
        }
    }

    /// The next record's sequence number and stored bytes, and the chain advanced past it:
    /// the replayed record when a replica handed one ([`replayed_bytes`] checks it continues
    /// the chain), else a new record of this write (`stored`: the bytes the write keeps,
    /// whose SHA-256 the record carries).
    pub fn append(
        &mut self,
        meta: &super::AuditMeta,
        entity: &str,
        before: Option<&serde_json::Value>,
        after: Option<&serde_json::Value>,
        stored: Option<&[u8]>,
    ) -> Result<(u64, Vec<u8>), super::StoreError> {
        let seq = self.next_seq;
        let (bytes, h) = match self.replay.take() {
            Some(r) => replayed_bytes(&r, seq, &self.prev_hash, entity)?,
            None => {
                let record_sha256 = stored.map(|b| hex::encode(Sha256::digest(b)));
                chained_bytes(
                    seq,
                    meta.at,
                    &meta.actor.to_string(),
                    &meta.action,
                    entity,
                    before,
                    after,
                    record_sha256.as_deref(),
                    &self.prev_hash,
                )
            }
        };
        self.prev_hash = h;
        self.next_seq += 1;
        self.appended += 1;
        Ok((seq, bytes))
    }

    /// Hand the record the next write must append instead of its own.
    pub fn replay_next(&mut self, record: AuditRecord) {
        self.replay = Some(record);
    }

    /// Whether a replayed record is still waiting for its write.
    pub fn replay_pending(&self) -> bool {
        self.replay.is_some()
    }

    /// Records this transaction appended.
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// The new head (sequence number and hash of the last record) when this transaction
    /// appended any.
    pub fn head(&self) -> Option<(u64, [u8; 32])> {
        (self.appended > 0).then(|| (self.next_seq - 1, self.prev_hash))
    }
}

#[derive(Serialize)]
struct CanonicalRef<'a> {
    seq: u64,
    at: i64,
    actor: &'a str,
    action: &'a str,
    entity: &'a str,
    before: Option<&'a serde_json::Value>,
    after: Option<&'a serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    record_sha256: Option<&'a str>,
}

/// A record chained after `prev`, as the bytes a store keeps (the JSON of the
/// [`AuditRecord`], which decodes back to it) and its hash. The canonical bytes are serialised
/// once: the stored form is them with `prev_hash` and `hash` appended, so writers do not
/// serialise before/after twice.
#[allow(clippy::too_many_arguments)]
pub fn chained_bytes(
    seq: u64,
    at: i64,
    actor: &str,
    action: &str,
    entity: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
    record_sha256: Option<&str>,
    prev: &[u8; 32],
) -> (Vec<u8>, [u8; 32]) {
    let mut bytes = serde_json::to_vec(&CanonicalRef {
        seq,
        at,
        actor,
        action,
        entity,
        before,
        after,
        record_sha256,
    })
    .unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&bytes);
    let hash: [u8; 32] = h.finalize().into();
    // Replace the closing brace: `…,"prev_hash":"<hex>","hash":"<hex>"}`.
    bytes.pop();
    bytes.extend_from_slice(b",\"prev_hash\":\"");
    bytes.extend_from_slice(hex::encode(prev).as_bytes());
    bytes.extend_from_slice(b"\",\"hash\":\"");
    bytes.extend_from_slice(hex::encode(hash).as_bytes());
    bytes.extend_from_slice(b"\"}");
    (bytes, hash)
}

/// The result of walking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub records: u64,
    /// The first broken link: its sequence number and what is wrong.
    pub first_broken: Option<(u64, String)>,
    /// Stored records that the log does not account for (edited, added or removed outside
    /// it), up to [`MAX_STATE_PROBLEMS`] of them.
    #[serde(default)]
    pub state: Vec<String>,
    /// How many there are in all.
    #[serde(default)]
    pub state_problems: u64,
    /// Stored records checked against the log.
    #[serde(default)]
    pub state_records: u64,
}

/// State problems listed by name in an [`AuditReport`] (all are counted).
pub const MAX_STATE_PROBLEMS: usize = 100;

impl AuditReport {
    pub fn ok(&self) -> bool {
        self.first_broken.is_none() && self.state_problems == 0
    }

    fn broken(records: u64, at: u64, why: String) -> AuditReport {
        AuditReport {
            records,
            first_broken: Some((at, why)),
            state: Vec::new(),
            state_problems: 0,
            state_records: 0,
        }
    }

    fn problem(&mut self, p: String) {
        self.state_problems += 1;
        if self.state.len() < MAX_STATE_PROBLEMS {
            self.state.push(p);
        }
    }
}

/// What the log says a stored record must be, from the last entry for its entity.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// Deleted (or never stored).
    Absent,
    /// Present with exactly these bytes (their sha256).
    Bytes([u8; 32]),
    /// Present, from an entry written before state was audited: its `after` JSON.
    Legacy(serde_json::Value),
}

/// The state the log accounts for: entity → what its stored record must be. Built from the
/// entries whose entity names a stored record (`subject:`, `filing:`, `user:`, `ip_filing:`,
/// and generic records, whose entries carry a `{bytes, sha256}` digest).
#[derive(Debug, Default)]
pub struct LoggedState {
    pub by_entity: std::collections::HashMap<String, Expected>,
}

fn stored_entity(entity: &str) -> bool {
    ["subject:", "filing:", "user:", "ip_filing:"]
        .iter()
        .any(|p| entity.starts_with(p))
}

impl LoggedState {
    /// Account for one (verified) entry.
    pub fn add(&mut self, r: &AuditRecord) {
        let digest = r
            .after
            .as_ref()
            .and_then(|a| a.get("sha256"))
            .and_then(|h| h.as_str());
        let generic_digest = r.after.as_ref().is_some_and(|a| {
            a.as_object().is_some_and(|o| {
                o.len() == 2 && o.contains_key("bytes") && o.contains_key("sha256")
            })
        });
        let expected = if let Some(h) = &r.record_sha256 {
            match decode_hash(h) {
                Some(h) => Expected::Bytes(h),
                None => return,
            }
        } else if !stored_entity(&r.entity) && !generic_digest && r.after.is_some() {
            // A change kept outside the store (keyring, keys): nothing stored to compare.
            return;
        } else {
            match &r.after {
                None if stored_entity(&r.entity) || r.before.is_some() => Expected::Absent,
                None => return,
                Some(_) if generic_digest && !stored_entity(&r.entity) => {
                    match digest.and_then(decode_hash) {
                        Some(h) => Expected::Bytes(h),
                        None => return,
                    }
                }
                Some(a) => Expected::Legacy(a.clone()),
            }
        };
        self.by_entity.insert(r.entity.clone(), expected);
    }
}

fn decode_hash(h: &str) -> Option<[u8; 32]> {
    hex::decode(h).ok()?.try_into().ok()
}

/// Checks stored records against the logged state, one at a time (the store streams them):
/// each stored record (entity, bytes) must be what the last entry for it says (`legacy`
/// compares an entry written before state was audited with the decoded record); every
/// record the log says exists must be stored ([`StateCheck::finish`]).
pub struct StateCheck<'r, F> {
    report: &'r mut AuditReport,
    logged: LoggedState,
    legacy: F,
}

impl<'r, F: Fn(&str, &[u8], &serde_json::Value) -> bool> StateCheck<'r, F> {
    pub fn new(report: &'r mut AuditReport, logged: LoggedState, legacy: F) -> Self {
        StateCheck {
            report,
            logged,
            legacy,
        }
    }

    /// Check one stored record.
    pub fn check(&mut self, entity: &str, bytes: &[u8]) {
        self.report.state_records += 1;
        match self.logged.by_entity.remove(entity) {
            None | Some(Expected::Absent) => self.report.problem(format!(
                "{entity}: stored, but the audit log has no entry that wrote it (added outside the log)"
            )),
            Some(Expected::Bytes(h)) => {
                if Sha256::digest(bytes).as_slice() != h {
                    self.report.problem(format!("{entity}: stored bytes differ from what its last audit entry wrote (edited outside the log)"));
                }
            }
            Some(Expected::Legacy(after)) => {
                if !(self.legacy)(entity, bytes, &after) {
                    self.report.problem(format!("{entity}: stored record differs from its last audit entry (edited outside the log)"));
                }
            }
        }
    }

    /// Report the records the log says exist but that were not stored.
    pub fn finish(self) {
        let mut missing: Vec<String> = self
            .logged
            .by_entity
            .into_iter()
            .filter(|(_, e)| *e != Expected::Absent)
            .map(|(k, _)| k)
            .collect();
        missing.sort();
        for entity in missing {
            self.report.problem(format!(
                "{entity}: the audit log says it exists, but it is not stored (removed outside the log)"
            ));
        }
    }
}

/// Walk records in order, checking sequence, the previous-hash link and each record's hash,
/// and finally that the chain ends at the recorded head.
pub fn verify_chain(
    records: impl IntoIterator<Item = (u64, Result<AuditRecord, String>)>,
    head: Option<(u64, [u8; 32])>,
) -> AuditReport {
    let mut prev = GENESIS;
    let mut expected = 0u64;
    let mut count = 0u64;
    for (key_seq, rec) in records {
        let broken = |why: String| AuditReport::broken(count, key_seq, why);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => return broken(format!("record does not decode: {e}")),
        };
        if key_seq != expected || rec.seq != expected {
            return broken(format!("expected record {expected}, found {}", rec.seq));
        }
        if rec.prev_hash != hex::encode(prev) {
            return broken("previous-hash link does not match the previous record".into());
        }
        let h = rec.compute_hash(&prev);
        if rec.hash != hex::encode(h) {
            return broken("record content does not match its hash".into());
        }
        prev = h;
        expected += 1;
        count += 1;
    }
    match head {
        Some((seq, hash)) if seq + 1 != expected || hash != prev => AuditReport::broken(
            count,
            expected,
            format!(
                "chain ends at record {} but the recorded head is record {seq}",
                expected.wrapping_sub(1)
            ),
        ),
        None if count > 0 => {
            AuditReport::broken(count, 0, "records exist but no head is recorded".into())
        }
        _ => AuditReport {
            records: count,
            first_broken: None,
            state: Vec::new(),
            state_problems: 0,
            state_records: 0,
        },
    }
}

/// Whether a stored record matches an audit entry written before entries carried the stored
/// bytes' hash: the decoded record's JSON equals the entry's `after` (for users, the fields
/// the entry kept: the password hash was never logged).
pub fn legacy_matches(entity: &str, bytes: &[u8], after: &serde_json::Value) -> bool {
    use super::codec;
    let json = |v: Result<serde_json::Value, serde_json::Error>| v.ok();
    let decoded = match entity.split_once(':').map(|(k, _)| k) {
        Some("subject") => codec::decode::<crate::registry::model::Subject>(bytes)
            .ok()
            .and_then(|r| json(serde_json::to_value(r))),
        Some("filing") => codec::decode::<crate::registry::model::Filing>(bytes)
            .ok()
            .and_then(|r| json(serde_json::to_value(r))),
        Some("ip_filing") => codec::decode::<crate::registry::model::IpFiling>(bytes)
            .ok()
            .and_then(|r| json(serde_json::to_value(r))),
        Some("user") => codec::decode::<crate::accounts::UserRecord>(bytes)
            .ok()
            .map(|u| {
                serde_json::json!({"username": u.username, "actor": u.actor.to_string(),
                    "created_at": u.created_at, "created_by": u.created_by})
            }),
        _ => None,
    };
    match decoded {
        Some(d) => without_added_defaults(d, after) == *after,
        None => false,
    }
}

/// `decoded` without the fields that `logged` lacks and that hold a default (null, empty):
/// fields added to a record type after the entry was written, which the stored record now
/// carries with their default value. Applied through nested objects.
fn without_added_defaults(
    decoded: serde_json::Value,
    logged: &serde_json::Value,
) -> serde_json::Value {
    use serde_json::Value;
    match (decoded, logged) {
        (Value::Object(d), Value::Object(l)) => Value::Object(
            d.into_iter()
                .filter_map(|(k, v)| match l.get(&k) {
                    Some(lv) => Some((k, without_added_defaults(v, lv))),
                    None => {
                        let default = v.is_null()
                            || v.as_array().is_some_and(|a| a.is_empty())
                            || v.as_object().is_some_and(|o| o.is_empty());
                        (!default).then_some((k, v))
                    }
                })
                .collect(),
        ),
        (Value::Array(d), Value::Array(l)) if d.len() == l.len() => Value::Array(
            d.into_iter()
                .zip(l)
                .map(|(v, lv)| without_added_defaults(v, lv))
                .collect(),
        ),
        (d, _) => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Chain = (
        Vec<(u64, Result<AuditRecord, String>)>,
        Option<(u64, [u8; 32])>,
    );

    fn chain(n: u64) -> Chain {
        let mut prev = GENESIS;
        let mut out = Vec::new();
        for i in 0..n {
            let (r, h) = AuditRecord::chained(
                i,
                100 + i as i64,
                "miit".into(),
                "revoke".into(),
                format!("filing:{i}"),
                Some(serde_json::json!({"status": "active"})),
                Some(serde_json::json!({"status": "revoked"})),
                &prev,
            );
            prev = h;
            out.push((i, Ok(r)));
        }
        (out, Some((n - 1, prev)))
    }

    #[test]
    fn chained_bytes_decode_to_the_chained_record() {
        let before = serde_json::json!({"status": "active", "b": [1, 2]});
        let after = serde_json::json!({"status": "revoked", "note": "引号\"与换行\n"});
        let prev = [7u8; 32];
        let (bytes, h) = chained_bytes(
            3,
            99,
            "bureau:京",
            "revoke",
            "filing:1",
            Some(&before),
            Some(&after),
            None,
            &prev,
        );
        let (rec, h2) = AuditRecord::chained(
            3,
            99,
            "bureau:京".into(),
            "revoke".into(),
            "filing:1".into(),
            Some(before),
            Some(after),
            &prev,
        );
        assert_eq!(h, h2);
        assert_eq!(bytes, serde_json::to_vec(&rec).unwrap());
        let back: AuditRecord = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back, rec);
        let (none, _) = chained_bytes(0, 1, "miit", "x", "keyring", None, None, None, &GENESIS);
        let back: AuditRecord = serde_json::from_slice(&none).unwrap();
        assert_eq!(
            back.compute_hash(&GENESIS),
            *<&[u8; 32]>::try_from(&hex::decode(&back.hash).unwrap()[..]).unwrap()
        );
        // The stored record's hash is part of what the chain hashes.
        let digest = "ab".repeat(32);
        let (with, h) = chained_bytes(
            0,
            1,
            "miit",
            "x",
            "filing:1",
            None,
            Some(&serde_json::json!({"a": 1})),
            Some(&digest),
            &GENESIS,
        );
        let back: AuditRecord = serde_json::from_slice(&with).unwrap();
        assert_eq!(back.record_sha256.as_deref(), Some(digest.as_str()));
        assert_eq!(back.compute_hash(&GENESIS), h);
        let mut forged = back.clone();
        forged.record_sha256 = Some("cd".repeat(32));
        assert_ne!(forged.compute_hash(&GENESIS), h);
    }

    #[test]
    fn intact_chain_verifies() {
        let (c, head) = chain(5);
        let r = verify_chain(c, head);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.records, 5);
    }

    #[test]
    fn edited_record_is_the_first_broken_link() {
        let (mut c, head) = chain(5);
        if let Ok(r) = &mut c[2].1 {
            r.after = Some(serde_json::json!({"status": "active"}));
        }
        assert_eq!(verify_chain(c, head).first_broken.map(|b| b.0), Some(2));
    }

    #[test]
    fn rehashed_record_breaks_the_next_link() {
        let (mut c, head) = chain(5);
        let prev = match &c[1].1 {
            Ok(r) => hex::decode(&r.hash).unwrap().try_into().unwrap(),
            Err(_) => unreachable!(),
        };
        if let Ok(r) = &mut c[2].1 {
            r.actor = "bureau:京".into();
            r.hash = hex::encode(r.compute_hash(&prev));
        }
        assert_eq!(verify_chain(c, head).first_broken.map(|b| b.0), Some(3));
    }

    #[test]
    fn removed_and_truncated_records_are_detected() {
        let (mut c, head) = chain(5);
        let _ = c.remove(1);
        assert_eq!(verify_chain(c, head).first_broken.map(|b| b.0), Some(2));
        let (mut c, head) = chain(5);
        let _ = c.pop();
        assert!(!verify_chain(c, head).ok(), "truncation must not pass");
        let (c, _) = chain(3);
        assert!(!verify_chain(c, None).ok(), "records without a head");
    }
}
