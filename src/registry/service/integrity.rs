//! What keeps the registry trustworthy: the keyring and key rotation (with re-issue of a
//! compromised key's certificates), the signing keys recorded in the store ([`SigningKeys`])
//! that every process on one database checks its key directory against before it signs or
//! rotates, the signed snapshot exported for scanners, and the audit verification of the log
//! and of the stored state.

use super::*;

/// Which key signs, and which keys are compromised, as the last rotation (or `registry init`)
/// recorded it in the store: what every process on one database checks its own key directory
/// against before it signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKeys {
    pub current: String,
    #[serde(default)]
    pub compromised: Vec<String>,
}

/// The record kind of [`SigningKeys`] (one record, key [`SIGNING_KEYS_KEY`]).
pub struct SigningKeysRecord;
impl crate::registry::store::records::JsonKind for SigningKeysRecord {
    const KIND: &'static str = "signing_keys";
    type Value = SigningKeys;
}
pub const SIGNING_KEYS_KEY: &str = "current";

/// What `issuer` holds, as a [`SigningKeys`] record.
pub(super) fn signing_keys_of(issuer: &Issuer) -> SigningKeys {
    SigningKeys {
        current: issuer.current_key_id().to_string(),
        compromised: issuer
            .keyring()
            .keys
            .values()
            .filter(|e| e.compromised)
            .map(|e| e.key_id.clone())
            .collect(),
    }
}

impl<S: RegistryStore> Registry<S> {
    /// Refuse to sign with a key directory another process has rotated past: the store's
    /// [`SigningKeys`] must name a key this directory knows (the current one, or an older one
    /// when this directory rotated and the store did not record it), and must not mark this
    /// directory's current key compromised. (Registries written before the record exists have
    /// none: nothing to compare.)
    pub(super) fn check_signing_keys(&self, issuer: &Issuer) -> Result<(), RegistryError> {
        use crate::registry::store::records::TypedRecords;
        let Some(stored) = self
            .store
            .load_record::<SigningKeysRecord>(SIGNING_KEYS_KEY)?
        else {
            return Ok(());
        };
        let ours = issuer.current_key_id();
        let known = issuer.keyring().keys.contains_key(&stored.current);
        if !known || stored.compromised.iter().any(|k| k == ours) {
            return Err(IssuanceError::Rotated {
                current: stored.current,
            }
            .into());
        }
        Ok(())
    }

    pub fn keyring(&self) -> Keyring {
        self.issuer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keyring()
            .clone()
    }

    /// Rotate the signing key (CLI default: MIIT; only MIIT may). With `compromised`, mark
    /// that key compromised first.
    pub fn rotate_keys(
        &self,
        actor: &Actor,
        compromised: Option<&str>,
        now: i64,
    ) -> Result<Rotation, RegistryError> {
        if *actor != Actor::Miit {
            return Err(RegistryError::Workflow {
                what: "key rotation".into(),
                refusal: WorkflowError {
                    rule: workflow::Rule::Permission,
                    reason: format!("{actor} may not rotate keys; only MIIT"),
                },
            });
        }
        let mut issuer = self.issuer.lock().unwrap_or_else(|p| p.into_inner());
        // A rotation from an out-of-date key directory would fork the keys.
        self.check_signing_keys(&issuer)?;
        let before = serde_json::to_value(issuer.keyring()).ok();
        let mut rotation = issuer.rotate(compromised, now)?;
        let after = serde_json::to_value(issuer.keyring()).ok();
        let mut txn = self.store.begin()?;
        {
            use crate::registry::store::records::TypedRecordsTxn;
            txn.store_record::<SigningKeysRecord>(
                &AuditMeta::new(actor, "rotate_keys", now),
                SIGNING_KEYS_KEY,
                &signing_keys_of(&issuer),
            )?;
        }
        txn.audit(
            &AuditMeta::new(actor, "rotate_keys", now),
            "keyring",
            before,
            after,
        )?;
        // Everything the compromised key signed for a filing still in force is re-issued
        // under the current key, in the same transaction, and its filer told.
        if let Some(bad) = &rotation.compromised {
            let mut affected = Vec::new();
            self.store.scan_filings(&mut |f| {
                if f.status == Status::Active
                    && f.certificate.as_ref().is_some_and(|c| c.key_id == *bad)
                {
                    affected.push(f.id);
                }
                true
            })?;
            let meta = AuditMeta::new(actor, "reissue_certificate", now);
            for id in affected {
                let Some(mut f) = txn.filing(id)? else {
                    continue;
                };
                let subject = subject_of(&txn, &f)?;
                f.cert_serial += 1;
                f.certificate = Some(issuer.issue(&f, &subject, now)?);
                f.history.push(crate::registry::model::HistoryEntry {
                    at: now,
                    actor: actor.clone(),
                    action: format!("certificate re-issued: key {bad} compromised"),
                });
                put_notices(
                    &mut txn,
                    &meta,
                    certificate_notices(&subject, &f, true, now),
                )?;
                txn.put_filing(&meta, &f)?;
                rotation.reissued.push(id);
            }
        }
        txn.commit()?;
        Ok(rotation)
    }

    /// The scanner's snapshot: every filing that was ever approved, and the public keyring.
    pub fn snapshot(&self, now: i64) -> Result<Snapshot, RegistryError> {
        let mut subjects: HashMap<SubjectId, (String, char)> = HashMap::new();
        self.store.scan_subjects(&mut |s| {
            subjects.insert(s.id, (s.name, s.province));
            true
        })?;
        let mut filings = Vec::new();
        self.store.scan_filings(&mut |f| {
            if let (Some(number), Some(state)) = (f.number.clone(), f.cert_state()) {
                let (name, province) = subjects.get(&f.subject_id).cloned().unwrap_or_default();
                filings.push(SnapshotFiling {
                    subject_number: number.subject_number(),
                    service_number: number,
                    subject_name: name,
                    province,
                    state,
                    domains: f.domains.iter().map(|d| d.to_string()).collect(),
                    ips: f.ips.clone(),
                    providers: f.providers.iter().map(|p| p.name.clone()).collect(),
                    cert_serial: (f.cert_serial > 0).then_some(f.cert_serial),
                    expires_at: f.expires_at,
                    operating: f.operating(),
                    licence: f.operating_licence.clone(),
                });
            }
            true
        })?;
        let ip_blocks = self.snapshot_ip_blocks()?;
        Ok(Snapshot::new(now, self.keyring(), filings, ip_blocks))
    }

    /// The bytes of a signed snapshot file (current key), as [`Registry::save_snapshot`]
    /// writes them.
    pub fn signed_snapshot(&self, snapshot: &Snapshot) -> Result<Vec<u8>, RegistryError> {
        Ok(self
            .issuer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .sign_snapshot(snapshot)?)
    }

    /// Write a signed snapshot file (current key) to `path`, atomically and durably.
    pub fn save_snapshot(&self, snapshot: &Snapshot, path: &Path) -> Result<(), RegistryError> {
        let bytes = self.signed_snapshot(snapshot)?;
        crate::fsutil::write_atomic(path, &bytes, None).map_err(|e| RegistryError::Io {
            path: path.display().to_string(),
            reason: e.to_string(),
        })
    }

    /// Walk the audit chain and report the first broken link; when the chain holds, check
    /// the stored state against it: a record edited, added or removed outside the log is
    /// reported (the chain covers the state, not only the log).
    pub fn verify_audit(&self) -> Result<AuditReport, RegistryError> {
        let mut records = Vec::new();
        self.store.scan_audit(&mut |seq, r| {
            records.push((seq, r));
            true
        })?;
        let mut logged = audit::LoggedState::default();
        for (_, r) in &records {
            if let Ok(r) = r {
                logged.add(r);
            }
        }
        let mut report = audit::verify_chain(records, self.store.audit_head()?);
        if report.first_broken.is_some() {
            return Ok(report);
        }
        let mut check = audit::StateCheck::new(&mut report, logged, audit::legacy_matches);
        self.store.scan_state(&mut |entity, bytes| {
            check.check(entity, bytes);
            true
        })?;
        check.finish();
        Ok(report)
    }

    /// Check the store for damage: every subject and filing decodes, every filing's subject
    /// exists, every domain and number index entry leads back to the filing that holds it,
    /// and the audit chain verifies. Each problem is one line naming what is damaged; a store
    /// that cannot be read at all is an `Err`.
    pub fn check(&self) -> Result<StoreCheck, RegistryError> {
        let mut report = StoreCheck::default();
        let mut subjects = std::collections::HashSet::new();
        if let Err(e) = self.store.scan_subjects(&mut |s| {
            subjects.insert(s.id);
            report.subjects += 1;
            true
        }) {
            report.problems.push(format!("subjects: {e}"));
        }
        let mut filings = Vec::new();
        if let Err(e) = self.store.scan_filings(&mut |f| {
            filings.push(f);
            true
        }) {
            report.problems.push(format!("filings: {e}"));
        }
        report.filings = filings.len() as u64;
        for f in &filings {
            if !subjects.contains(&f.subject_id) {
                report.problems.push(format!(
                    "filing {}: its subject {} is missing",
                    f.id, f.subject_id
                ));
            }
            // Each index entry of the filing must lead back to it.
            let mut leads_back =
                |index: &str, key: String, found: Result<Option<FilingId>, StoreError>| match found
                {
                    Ok(Some(id)) if id == f.id => {}
                    Ok(other) => report.problems.push(format!(
                        "filing {}: the {index} index sends {key} to {}",
                        f.id,
                        other.map_or("nothing".to_string(), |i| format!("filing {i}"))
                    )),
                    Err(e) => report
                        .problems
                        .push(format!("filing {}: {index} index for {key}: {e}", f.id)),
                };
            if f.status.holds_domains() {
                for d in &f.domains {
                    leads_back("domain", d.to_string(), self.store.filing_by_domain(d));
                }
            }
            if let Some(n) = &f.number {
                leads_back("number", n.to_string(), self.store.filing_by_number(n));
            }
        }
        match self.verify_audit() {
            Ok(a) => {
                report.audit_records = a.records;
                if let Some((seq, why)) = a.first_broken {
                    report
                        .problems
                        .push(format!("audit chain: record {seq}: {why}"));
                }
            }
            Err(e) => report.problems.push(format!("audit chain: {e}")),
        }
        Ok(report)
    }
}
