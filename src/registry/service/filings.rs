//! The filers' and providers' side of the workflow on one filing: changes, cancellation
//! requests (made, modified, deleted, withdrawn), revocation, access cancelled or added (the
//! ISP list), pre-approval documents, resubmission and the annual-review renewal.

use super::*;

impl<S: RegistryStore> Registry<S> {
    /// Open a change of an approved filing's domains (CLI default: its ICP user).
    pub fn change_domains(
        &self,
        actor: &Actor,
        key: &FilingKey,
        add: &[String],
        remove: &[String],
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let parse = |field: &str, v: &[String]| -> Result<Vec<Domain>, RegistryError> {
            v.iter()
                .map(|d| {
                    let h = crate::domain::normalise_host(d)
                        .map_err(|e| input(field, e.to_string()))?;
                    let h = h
                        .strip_prefix("www.")
                        .filter(|r| Domain::parse(r).is_ok())
                        .unwrap_or(&h);
                    Domain::parse(h).map_err(|e| input(field, e.to_string()))
                })
                .collect()
        };
        let event = Event::RequestChange {
            add: parse("--add-domain", add)?,
            remove: parse("--remove-domain", remove)?,
            details: ChangeDetails::default(),
        };
        self.one(key, event, actor, now)
    }

    /// Request cancellation (CLI default: the filing's ICP user).
    pub fn request_cancellation(
        &self,
        actor: &Actor,
        key: &FilingKey,
        reason: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::RequestCancellation {
                reason: reason.to_string(),
            },
            actor,
            now,
        )
    }

    /// Change the reason of one's own pending cancellation request (CLI default: the
    /// filing's ICP user).
    pub fn modify_cancellation(
        &self,
        actor: &Actor,
        key: &FilingKey,
        reason: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::ModifyCancellation {
                reason: reason.to_string(),
            },
            actor,
            now,
        )
    }

    /// Delete one's own pending cancellation request (CLI default: the filing's ICP user).
    pub fn delete_cancellation(
        &self,
        actor: &Actor,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(key, Event::DeleteCancellation, actor, now)
    }

    /// Withdraw a pending cancellation request (CLI default: the bureau, or MIIT for a
    /// bureau's request).
    pub fn withdraw_cancellation(
        &self,
        actor: &Actor,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(key, Event::WithdrawCancellation, actor, now)
    }

    /// Direct revocation (CLI default: MIIT).
    pub fn revoke(
        &self,
        actor: &Actor,
        key: &FilingKey,
        reason: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::Revoke {
                reason: reason.to_string(),
                false_information: false,
            },
            actor,
            now,
        )
    }

    /// Revoke a filing whose data was found false: it goes on the public list of such
    /// filings (CLI default: MIIT).
    pub fn revoke_for_false_information(
        &self,
        actor: &Actor,
        key: &FilingKey,
        reason: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::Revoke {
                reason: reason.to_string(),
                false_information: true,
            },
            actor,
            now,
        )
    }

    /// An access provider cancels its access (CLI default: that provider).
    pub fn cancel_access(
        &self,
        actor: &Actor,
        key: &FilingKey,
        provider: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::CancelAccess {
                provider: provider.to_string(),
            },
            actor,
            now,
        )
    }

    /// Add an access provider (CLI default: the filing's ICP user).
    pub fn add_provider(
        &self,
        actor: &Actor,
        key: &FilingKey,
        provider: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        // The new provider must be on the ISP list: an access provider a bureau created.
        if !self.isp_list()?.iter().any(|p| p == provider.trim()) {
            return Err(input(
                "provider",
                format!(
                    "{provider:?} is not on the ISP list (access providers are ISP users a bureau creates; GET /api/codes lists them)"
                ),
            ));
        }
        self.one(
            key,
            Event::AddProvider {
                provider: provider.to_string(),
            },
            actor,
            now,
        )
    }

    /// The ISP list: the names of the access providers with an ISP user, sorted.
    pub fn isp_list(&self) -> Result<Vec<String>, RegistryError> {
        let mut out = std::collections::BTreeSet::new();
        self.store.scan_users(&mut |u| {
            if let Actor::Isp { name, .. } = &u.actor {
                out.insert(name.clone());
            }
            true
        })?;
        Ok(out.into_iter().collect())
    }

    /// Attach a pre-approval document (CLI default: the filing's ICP user).
    pub fn attach_pre_approval(
        &self,
        actor: &Actor,
        key: &FilingKey,
        category: &str,
        document: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let ev = Event::AttachPreApproval {
            category: category.into(),
            document: document.into(),
        };
        self.one(key, ev, actor, now)
    }

    /// Resubmit a rejected filing (CLI default: the filing's ICP user).
    pub fn resubmit(
        &self,
        actor: &Actor,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(key, Event::Resubmit, actor, now)
    }

    /// Ask for the annual review (CLI default: the filing's ICP user).
    pub fn request_renewal(
        &self,
        actor: &Actor,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(key, Event::RequestRenewal, actor, now)
    }
}
