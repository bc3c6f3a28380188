//! The reviewers' side of the workflow: access providers' verification, the bureaus' review
//! queue (manual and automatic review, approval and rejection), the pre-approval and
//! special-content users' checks and queues, and the annual-review and empty-shell lists.

use super::*;

impl<S: RegistryStore> Registry<S> {
    /// The provinces with filings in the bureaus' review queue (the CLI's automatic review
    /// without `--as` acts as each of these bureaus in turn).
    pub fn review_provinces(&self) -> Result<Vec<char>, RegistryError> {
        let mut out = std::collections::BTreeSet::new();
        for f in self.review_queue(None)? {
            out.insert(subject_of(&self.store, &f)?.province);
        }
        Ok(out.into_iter().collect())
    }

    /// Access provider `provider` verifies its access: on one filing, or on every filing
    /// where its verification is pending. Returns the filings verified.
    pub fn verify_access(
        &self,
        actor: &Actor,
        provider: &str,
        only: Option<&FilingKey>,
        now: i64,
    ) -> Result<Vec<FilingId>, RegistryError> {
        let ids: Vec<FilingId> = match only {
            Some(k) => vec![find_filing(&self.store, k)?.id],
            None => {
                let mut ids = Vec::new();
                self.store.scan_filings(&mut |f| {
                    if f.providers
                        .iter()
                        .any(|p| p.name == provider && !p.verified)
                        && matches!(
                            f.status,
                            Status::AwaitingAccessVerification | Status::Active
                        )
                    {
                        ids.push(f.id);
                    }
                    true
                })?;
                ids
            }
        };
        let mut txn = self.store.begin()?;
        let mut done = Vec::new();
        for id in ids {
            let f = find_filing(&txn, &FilingKey::Id(id))?;
            self.transition(
                &mut txn,
                f,
                &Event::VerifyAccess {
                    provider: provider.to_string(),
                },
                actor,
                now,
            )?;
            done.push(id);
            if done.len() % BATCH == 0 {
                txn.commit()?;
                txn = self.store.begin()?;
            }
        }
        txn.commit()?;
        Ok(done)
    }

    /// The bureau's queue: filings awaiting review (submissions, changes, cancellations),
    /// optionally of one province.
    pub fn review_queue(&self, province: Option<char>) -> Result<Vec<Filing>, RegistryError> {
        let mut subjects: HashMap<SubjectId, char> = HashMap::new();
        let mut out = Vec::new();
        let mut err = None;
        self.store.scan_filings(&mut |f| {
            if !f.in_review_queue() {
                return true;
            }
            if let Some(p) = province {
                let prov = match subjects.get(&f.subject_id) {
                    Some(c) => *c,
                    None => match self.store.subject(f.subject_id) {
                        Ok(Some(s)) => {
                            subjects.insert(s.id, s.province);
                            s.province
                        }
                        Ok(None) => return true,
                        Err(e) => {
                            err = Some(e);
                            return false;
                        }
                    },
                };
                if prov != p {
                    return true;
                }
            }
            out.push(f);
            true
        })?;
        if let Some(e) = err {
            return Err(e.into());
        }
        Ok(out)
    }

    /// Automatic review of everything in the queue (numbers are always generated). With a
    /// bureau actor, only its province; without, each filing by its own province's bureau.
    /// Filings the rules refuse (e.g. missing pre-approval documents) are reported, not fatal.
    pub fn review_auto(&self, actor: &Actor, now: i64) -> Result<ReviewReport, RegistryError> {
        let province = match actor {
            Actor::Bureau { province } => Some(*province),
            _ => None,
        };
        let queue = self.review_queue(province)?;
        let mut report = ReviewReport::default();
        let mut txn = self.store.begin()?;
        for (i, f) in queue.into_iter().enumerate() {
            if i > 0 && i % BATCH == 0 {
                txn.commit()?;
                txn = self.store.begin()?;
            }
            let id = f.id;
            let what = if f.status == Status::AwaitingReview {
                "submission"
            } else if f.cancellation.is_some() {
                "cancellation"
            } else {
                "change"
            };
            match self.transition(
                &mut txn,
                f,
                &Event::Approve {
                    mode: ReviewMode::Automatic,
                },
                actor,
                now,
            ) {
                Ok(f) => {
                    let what = match f.kind {
                        crate::number::ServiceKind::App => {
                            format!("{what} (APP: numbered, no certificate)")
                        }
                        crate::number::ServiceKind::MiniProgram => {
                            format!("{what} (mini-program: numbered, no certificate)")
                        }
                        _ if f.domains.is_empty() && f.certificate.is_none() => {
                            format!("{what} (IP-only filing: no domain, so no certificate)")
                        }
                        _ => what.to_string(),
                    };
                    report.approved.push((
                        id,
                        f.number.map(|n| n.to_string()).unwrap_or_default(),
                        what,
                    ))
                }
                Err(RegistryError::Workflow { refusal, .. }) => {
                    report.refused.push((id, refusal.to_string()))
                }
                // The store itself failing stops the batch; anything else wrong with one
                // filing is reported and the others proceed.
                Err(e @ RegistryError::Store(_)) => return Err(e),
                Err(e) => report.refused.push((id, e.to_string())),
            }
        }
        txn.commit()?;
        Ok(report)
    }

    /// [`Registry::review_auto`] by each province's bureau over its own queue, one report.
    pub fn review_auto_by_each_bureau(&self, now: i64) -> Result<ReviewReport, RegistryError> {
        let mut all = ReviewReport::default();
        for p in self.review_provinces()? {
            let r = self.review_auto(&Actor::bureau(p), now)?;
            all.approved.extend(r.approved);
            all.refused.extend(r.refused);
        }
        Ok(all)
    }

    /// Manual approval of one filing (a typed number, or generated when `None`).
    pub fn review_approve(
        &self,
        actor: &Actor,
        key: &FilingKey,
        number: Option<FilingNumber>,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::Approve {
                mode: ReviewMode::Manual { number },
            },
            actor,
            now,
        )
    }

    pub fn review_reject(
        &self,
        actor: &Actor,
        key: &FilingKey,
        reason: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::Reject {
                reason: reason.to_string(),
            },
            actor,
            now,
        )
    }

    /// A pre-approval user confirms a category's document (`refused: None`) or refuses it
    /// with a reason (CLI default: `pre-approval`).
    pub fn check_pre_approval(
        &self,
        actor: &Actor,
        key: &FilingKey,
        category: &str,
        refused: Option<&str>,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let ev = Event::CheckPreApproval {
            category: category.into(),
            refused: refused.map(str::to_string),
        };
        self.one(key, ev, actor, now)
    }

    /// A special-content user confirms a filing's bulletin-board special filing (`refused:
    /// None`) or refuses it with a reason (CLI default: `special-content`).
    pub fn review_bulletin_board(
        &self,
        actor: &Actor,
        key: &FilingKey,
        refused: Option<&str>,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let ev = Event::ReviewBulletinBoard {
            refused: refused.map(str::to_string),
        };
        self.one(key, ev, actor, now)
    }

    /// The special-content users' queue: bulletin-board special filings not yet reviewed.
    pub fn bulletin_board_queue(&self) -> Result<Vec<Filing>, RegistryError> {
        self.unapproved_where(|f| {
            f.bulletin_board
                .as_ref()
                .is_some_and(|b| b.review.is_none())
        })
    }

    /// The pre-approval users' queue: filings not yet approved with a pre-approval document
    /// attached and not checked, oldest first.
    pub fn pre_approval_queue(&self) -> Result<Vec<Filing>, RegistryError> {
        self.unapproved_where(|f| {
            f.categories
                .iter()
                .any(|c| c.pre_approval && c.document.is_some() && c.check.is_none())
        })
    }

    /// Filings not yet approved that `waiting` selects, oldest first.
    fn unapproved_where(
        &self,
        waiting: impl Fn(&Filing) -> bool,
    ) -> Result<Vec<Filing>, RegistryError> {
        let mut out = Vec::new();
        self.store.scan_filings(&mut |f| {
            if f.status.before_approval() && waiting(&f) {
                out.push(f);
            }
            true
        })?;
        out.sort_by_key(|f| (f.submitted_at, f.id));
        Ok(out)
    }

    /// Active filings whose annual review is due within `within_s` seconds of `now`, or
    /// overdue (in `province`, when given), soonest first.
    pub fn annual_reviews(
        &self,
        province: Option<char>,
        now: i64,
        within_s: i64,
    ) -> Result<Vec<(Filing, Subject)>, RegistryError> {
        let mut due = Vec::new();
        self.store.scan_filings(&mut |f| {
            if f.status == Status::Active && f.expires_at.is_some_and(|e| e <= now + within_s) {
                due.push(f);
            }
            true
        })?;
        let mut out = Vec::new();
        for f in due {
            let s = subject_of(&self.store, &f)?;
            if province.is_none_or(|p| p == s.province) {
                out.push((f, s));
            }
        }
        out.sort_by_key(|(f, _)| f.expires_at);
        Ok(out)
    }

    /// Filings with no access provider left (空壳), for cleanup.
    pub fn empty_shells(&self) -> Result<Vec<Filing>, RegistryError> {
        let mut out = Vec::new();
        self.store.scan_filings(&mut |f| {
            if f.is_empty_shell() {
                out.push(f);
            }
            true
        })?;
        Ok(out)
    }
}
