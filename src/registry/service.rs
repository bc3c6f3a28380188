//! The registry's operations — what the CLI and the HTTP API call. Each operation gathers the
//! facts the pure workflow needs from the store, applies the transition, issues certificates
//! for approvals, and writes the result (with its audit records and the filer's notices) in one
//! durable transaction. Also the views (`FilingView`, the annual-review and false-information
//! lists), key rotation with re-issue of a compromised key's certificates, snapshots, and the
//! audit verification of the log and of the stored state against it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::accounts::{Actor, UserRecord};
use crate::cert::{FilingFacts, FilingLookup, FilingState, Keyring};
use crate::domain::Domain;
use crate::number::FilingNumber;

use super::import::LineError;
use super::issuance::{IssuanceError, Issuer, Rotation};
use super::model::*;
use super::snapshot::{Snapshot, SnapshotFiling};
use super::store::sled::SledStore;
use super::store::{
    audit, AuditMeta, AuditReport, RegistryRead, RegistryStore, RegistryTxn, Sequence, StoreError,
};
use super::workflow::{self, DomainHolder, Effect, Event, ReviewMode, State, WorkflowError};

mod imports;
mod ip;

pub use ip::{IpImportReport, IpUnit, IpUnitBlock};

/// Batch operations commit (durably) every this many filings.
const BATCH: usize = 1000;

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Issuance(#[from] IssuanceError),
    #[error("{what}: {refusal}")]
    Workflow {
        what: String,
        refusal: WorkflowError,
    },
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{path}: not a registry (run `beian registry init {path}` first)")]
    NotInitialised { path: String },
    #[error("{path}: already a registry")]
    AlreadyInitialised { path: String },
    #[error("{field}: {reason}")]
    Input { field: String, reason: String },
    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
    #[error("upload: {0}")]
    Upload(#[from] crate::tabular::TabularError),
}

fn input(field: &str, reason: impl Into<String>) -> RegistryError {
    RegistryError::Input {
        field: field.into(),
        reason: reason.into(),
    }
}

/// What `registry init` created.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    pub key_id: String,
    pub miit_username: String,
    /// Shown once; only its argon2 hash is stored.
    pub miit_password: String,
}

/// Progress of an import: `accepted` lines are durable once reported.
#[derive(Debug, Clone, Serialize)]
pub struct ImportProgress {
    pub lines_read: usize,
    pub accepted: usize,
    pub rejected: usize,
}

/// The outcome of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// What the upload was read as: `jsonl`, `csv`, `xlsx` or `xls`.
    pub format: String,
    /// (line or row, filing id) of every line that submitted a new filing.
    pub accepted: Vec<(usize, FilingId)>,
    /// (row, filing id) of rows for filings the uploader already handles whose data differs:
    /// each opened a change for the bureau (the old certificate stays valid until then).
    #[serde(default)]
    pub changed: Vec<(usize, FilingId)>,
    /// (row, filing id) of rows identical to a filing the uploader already handles.
    #[serde(default)]
    pub unchanged: Vec<(usize, FilingId)>,
    pub errors: Vec<LineError>,
    pub notes: Vec<String>,
}

/// What `Registry::check` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoreCheck {
    pub subjects: u64,
    pub filings: u64,
    pub audit_records: u64,
    /// One line per damaged record, index entry or chain link.
    pub problems: Vec<String>,
}

/// Longest import line accepted (one filing as JSON).
pub const MAX_IMPORT_LINE: usize = 1024 * 1024;

/// The outcome of a batch review.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReviewReport {
    /// (filing id, service number, what was approved).
    pub approved: Vec<(FilingId, String, String)>,
    /// (filing id, why it was refused).
    pub refused: Vec<(FilingId, String)>,
}

/// One entry of the public list of filings revoked for false information (public fields only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedRevocation {
    pub service_number: Option<String>,
    pub subject_name: String,
    pub province: String,
    pub website_name: String,
    pub domains: Vec<String>,
    pub revoked_at: i64,
}

/// How to find one filing.
#[derive(Debug, Clone)]
pub enum FilingKey {
    Id(FilingId),
    Number(FilingNumber),
    Domain(String),
}

impl std::fmt::Display for FilingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilingKey::Id(i) => write!(f, "filing {i}"),
            FilingKey::Number(n) => write!(f, "filing {n}"),
            FilingKey::Domain(d) => write!(f, "filing for {d}"),
        }
    }
}

/// One filing as shown to users (`filing show --format json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FilingView {
    pub id: FilingId,
    pub subject_number: Option<String>,
    pub service_number: Option<String>,
    pub status: String,
    pub subject_name: String,
    pub subject_id_number: String,
    pub subject_nature: String,
    pub province: String,
    pub name: String,
    pub homepage: String,
    pub domains: Vec<String>,
    pub ips: Vec<String>,
    pub providers: Vec<ProviderAccess>,
    pub access_method: String,
    pub categories: Vec<CategoryEntry>,
    pub operating: bool,
    pub operating_licence: Option<String>,
    pub cert_serial: Option<u64>,
    pub cert_key_id: Option<String>,
    pub approved_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub empty_shell: bool,
    pub pending_change: Option<Vec<String>>,
    pub cancellation: Option<CancellationRequest>,
    pub rejection: Option<String>,
    pub owner: String,
    pub history: Vec<HistoryEntry>,
    /// A pending annual-review (renewal) request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<crate::registry::model::RenewalRequest>,
    /// `website`, `app` or `mini_program`.
    #[serde(default = "website_kind")]
    pub kind: String,
    /// An APP's package name or a mini-program's app id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
}

fn website_kind() -> String {
    "website".into()
}

impl FilingView {
    /// The view at `now`: an active filing past its annual review shows
    /// `annual_review_overdue`.
    pub fn at(f: &Filing, s: &Subject, now: i64) -> Self {
        let mut v = FilingView::new(f, s);
        v.status = f.status_label_at(now).to_string();
        v
    }

    pub fn new(f: &Filing, s: &Subject) -> Self {
        FilingView {
            id: f.id,
            subject_number: f.number.as_ref().map(|n| n.subject_number().to_string()),
            service_number: f.number.as_ref().map(|n| n.to_string()),
            status: f.status_label().to_string(),
            subject_name: s.name.clone(),
            subject_id_number: s.id_number.clone(),
            subject_nature: s.nature.clone(),
            province: s.province.to_string(),
            kind: match f.kind {
                crate::number::ServiceKind::Website => "website",
                crate::number::ServiceKind::App => "app",
                crate::number::ServiceKind::MiniProgram => "mini_program",
            }
            .into(),
            app_id: f.app_id.clone(),
            name: f.name.clone(),
            homepage: f.homepage.clone(),
            domains: f.domains.iter().map(|d| d.to_string()).collect(),
            ips: f.ips.iter().map(|i| i.to_string()).collect(),
            providers: f.providers.clone(),
            access_method: f.access_method.clone(),
            categories: f.categories.clone(),
            operating: f.operating(),
            operating_licence: f.operating_licence.as_ref().map(|l| l.to_string()),
            cert_serial: (f.cert_serial > 0).then_some(f.cert_serial),
            cert_key_id: f.certificate.as_ref().map(|c| c.key_id.clone()),
            approved_at: f.approved_at,
            expires_at: f.expires_at,
            empty_shell: f.is_empty_shell(),
            pending_change: f
                .pending_change
                .as_ref()
                .map(|c| c.domains.iter().map(|d| d.to_string()).collect()),
            cancellation: f.cancellation.clone(),
            rejection: f.rejection.clone(),
            owner: s.owner.clone(),
            renewal: f.renewal.clone(),
            history: f.history.clone(),
        }
    }
}

/// A registry: its store and its key directory.
pub struct Registry<S: RegistryStore = SledStore> {
    dir: PathBuf,
    store: S,
    issuer: Mutex<Issuer>,
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

impl Registry<SledStore> {
    /// Create a registry in `dir`: the store, a first signing key, and the initial MIIT user
    /// (username `miit`, a generated password returned once).
    pub fn init(dir: &Path, now: i64) -> Result<(Self, InitReport), RegistryError> {
        if Issuer::keys_dir(dir).join("keyring.json").exists() || store_dir(dir).exists() {
            return Err(RegistryError::AlreadyInitialised {
                path: dir.display().to_string(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| RegistryError::Io {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let issuer = Issuer::create(dir, now)?;
        let store = SledStore::open(&store_dir(dir))?;
        let password = crate::accounts::generate_password();
        let user = UserRecord::new("miit", &password, Actor::Miit, "registry init", now)
            .map_err(|e| input("miit user", e.to_string()))?;
        let key_id = issuer.current_key_id().to_string();
        let meta = AuditMeta::new(&Actor::Miit, "registry_init", now);
        let mut txn = store.begin()?;
        txn.put_user(&meta, &user)?;
        txn.audit(
            &meta,
            "keyring",
            None,
            serde_json::to_value(issuer.keyring()).ok(),
        )?;
        txn.commit()?;
        let reg = Registry {
            dir: dir.to_path_buf(),
            store,
            issuer: Mutex::new(issuer),
        };
        Ok((
            reg,
            InitReport {
                key_id,
                miit_username: "miit".into(),
                miit_password: password,
            },
        ))
    }

    /// Open an initialised registry.
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        if !store_dir(dir).exists() || !Issuer::keys_dir(dir).exists() {
            return Err(RegistryError::NotInitialised {
                path: dir.display().to_string(),
            });
        }
        let issuer = Issuer::open(dir)?;
        let store = SledStore::open(&store_dir(dir))?;
        Ok(Registry {
            dir: dir.to_path_buf(),
            store,
            issuer: Mutex::new(issuer),
        })
    }
}

fn holders_of<R: RegistryRead + ?Sized>(
    r: &R,
    domains: impl IntoIterator<Item = Domain>,
) -> Result<BTreeMap<Domain, DomainHolder>, StoreError> {
    let mut out = BTreeMap::new();
    for d in domains {
        if let Some(id) = r.filing_by_domain(&d)? {
            if let Some(f) = r.filing(id)? {
                if f.status.holds_domains() && f.domains.contains(&d) {
                    out.insert(
                        d,
                        DomainHolder {
                            filing_id: f.id,
                            subject_id: f.subject_id,
                        },
                    );
                }
            }
        }
    }
    Ok(out)
}

fn find_filing<R: RegistryRead + ?Sized>(r: &R, key: &FilingKey) -> Result<Filing, RegistryError> {
    let id = match key {
        FilingKey::Id(i) => Some(*i),
        FilingKey::Number(n) => r.filing_by_number(n)?,
        FilingKey::Domain(d) => {
            let dom = Domain::of_host(d).map_err(|e| input("--domain", e.to_string()))?;
            r.filing_by_domain(&dom)?
        }
    };
    id.and_then(|i| r.filing(i).transpose())
        .transpose()?
        .ok_or_else(|| RegistryError::NotFound(key.to_string()))
}

fn subject_of<R: RegistryRead + ?Sized>(r: &R, f: &Filing) -> Result<Subject, RegistryError> {
    r.subject(f.subject_id)?.ok_or_else(|| {
        RegistryError::NotFound(format!("subject {} of filing {}", f.subject_id, f.id))
    })
}

fn fresh_subject_number<T: RegistryTxn>(
    txn: &mut T,
    province: char,
) -> Result<FilingNumber, RegistryError> {
    loop {
        let n = txn.next_id(Sequence::SubjectNumber)?;
        let number = FilingNumber::subject(province, &format!("{n:08}"))
            .map_err(|e| input("subject number", e.to_string()))?;
        if txn.subject_by_number(&number)?.is_none() {
            return Ok(number);
        }
    }
}

/// Who acts when the caller does not say (`--as`).
#[derive(Debug, Clone, Copy)]
enum DefaultActor {
    Bureau,
    Owner,
    Miit,
    PreApproval,
    SpecialContent,
    /// The bureau, or MIIT if the bureau made the pending request.
    Withdrawer,
}

fn default_actor(d: DefaultActor, f: &Filing, s: &Subject) -> Actor {
    match d {
        DefaultActor::Bureau => Actor::bureau(s.province),
        DefaultActor::Owner => Actor::icp(&s.owner),
        DefaultActor::Miit => Actor::Miit,
        DefaultActor::PreApproval => Actor::PreApproval,
        DefaultActor::SpecialContent => Actor::SpecialContent,
        DefaultActor::Withdrawer => match &f.cancellation {
            Some(c) if matches!(c.requested_by, Actor::Bureau { .. }) => Actor::Miit,
            _ => Actor::bureau(s.province),
        },
    }
}

impl<S: RegistryStore> Registry<S> {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// Apply one workflow event to a filing inside `txn` and write the result.
    fn transition(
        &self,
        txn: &mut S::Txn<'_>,
        filing: Filing,
        event: &Event,
        actor: &Actor,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let subject = subject_of(txn, &filing)?;
        let mut touched: Vec<Domain> = filing.domains.clone();
        match event {
            Event::RequestChange { add, .. } => touched.extend(add.iter().cloned()),
            _ => {
                if let Some(c) = &filing.pending_change {
                    touched.extend(c.domains.iter().cloned());
                }
            }
        }
        let domain_holders = holders_of(txn, touched)?;
        let mut typed_number_holder = None;
        let mut fresh = None;
        if let Event::Approve { mode } = event {
            if filing.status == Status::AwaitingReview && subject.number.is_none() {
                match mode {
                    ReviewMode::Manual { number: Some(n) } => {
                        typed_number_holder = txn.subject_by_number(n)?;
                    }
                    _ => fresh = Some(fresh_subject_number(txn, subject.province)?),
                }
            }
        }
        let state = State {
            filing,
            subject,
            domain_holders,
            typed_number_holder,
            fresh_subject_number: fresh,
        };
        let what = match &state.filing.number {
            Some(n) => format!("filing {} ({n})", state.filing.id),
            None => format!("filing {}", state.filing.id),
        };
        let t = workflow::apply(&state, event, actor, now).map_err(|source| {
            RegistryError::Workflow {
                what,
                refusal: source,
            }
        })?;
        let meta = AuditMeta::new(actor, event.name(), now);
        let mut filing = t.filing;
        for e in &t.effects {
            if let Effect::IssueCertificate { .. } = e {
                // A certificate names the domains it covers: a website filed only by its IP
                // addresses is numbered like any other but gets none (it has nowhere to serve
                // `/cert/bazs.cert` by name).
                if filing.domains.is_empty() {
                    filing.certificate = None;
                    continue;
                }
                let mut issuer = self.issuer.lock().unwrap_or_else(|p| p.into_inner());
                filing.certificate = Some(issuer.issue(&filing, &t.subject, now)?);
                // The filer is told, in the same transaction (serve delivers it).
                put_notices(
                    txn,
                    &meta,
                    certificate_notices(&t.subject, &filing, false, now),
                )?;
            }
        }
        if t.subject != state.subject {
            txn.put_subject(&meta, &t.subject)?;
        }
        txn.put_filing(&meta, &filing)?;
        Ok(filing)
    }

    fn one(
        &self,
        key: &FilingKey,
        event: Event,
        actor: Option<&Actor>,
        default: DefaultActor,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let mut txn = self.store.begin()?;
        let filing = find_filing(&txn, key)?;
        let actor = match actor {
            Some(a) => a.clone(),
            None => default_actor(default, &filing, &subject_of(&txn, &filing)?),
        };
        let f = self.transition(&mut txn, filing, &event, &actor, now)?;
        txn.commit()?;
        Ok(f)
    }

    /// Access provider `provider` verifies its access: on one filing, or on every filing
    /// where its verification is pending. Returns the filings verified.
    pub fn verify_access(
        &self,
        actor: Option<&Actor>,
        provider: &str,
        only: Option<&FilingKey>,
        now: i64,
    ) -> Result<Vec<FilingId>, RegistryError> {
        let actor = actor.cloned().unwrap_or_else(|| Actor::isp(provider));
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
                &actor,
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
    pub fn review_auto(
        &self,
        actor: Option<&Actor>,
        now: i64,
    ) -> Result<ReviewReport, RegistryError> {
        let province = match actor {
            Some(Actor::Bureau { province }) => Some(*province),
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
            let a = match actor {
                Some(a) => a.clone(),
                None => default_actor(DefaultActor::Bureau, &f, &subject_of(&txn, &f)?),
            };
            match self.transition(
                &mut txn,
                f,
                &Event::Approve {
                    mode: ReviewMode::Automatic,
                },
                &a,
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

    /// Manual approval of one filing (a typed number, or generated when `None`).
    pub fn review_approve(
        &self,
        actor: Option<&Actor>,
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
            // A bureau's own cancellation request is executed by MIIT (rule 6).
            DefaultActor::Withdrawer,
            now,
        )
    }

    pub fn review_reject(
        &self,
        actor: Option<&Actor>,
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
            DefaultActor::Withdrawer,
            now,
        )
    }

    /// Open a change of an approved filing's domains (default actor: its ICP user).
    pub fn change_domains(
        &self,
        actor: Option<&Actor>,
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
        self.one(key, event, actor, DefaultActor::Owner, now)
    }

    /// Request cancellation (default actor: the filing's ICP user).
    pub fn request_cancellation(
        &self,
        actor: Option<&Actor>,
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
            DefaultActor::Owner,
            now,
        )
    }

    /// Change the reason of one's own pending cancellation request (default actor: the
    /// filing's ICP user).
    pub fn modify_cancellation(
        &self,
        actor: Option<&Actor>,
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
            DefaultActor::Owner,
            now,
        )
    }

    /// Delete one's own pending cancellation request (default actor: the filing's ICP user).
    pub fn delete_cancellation(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::DeleteCancellation,
            actor,
            DefaultActor::Owner,
            now,
        )
    }

    /// Withdraw a pending cancellation request (default actor: the bureau, or MIIT for a
    /// bureau's request).
    pub fn withdraw_cancellation(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(
            key,
            Event::WithdrawCancellation,
            actor,
            DefaultActor::Withdrawer,
            now,
        )
    }

    /// Direct revocation (default actor: MIIT).
    pub fn revoke(
        &self,
        actor: Option<&Actor>,
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
            DefaultActor::Miit,
            now,
        )
    }

    /// Revoke a filing whose data was found false: it goes on the public list of such
    /// filings (default actor: MIIT).
    pub fn revoke_for_false_information(
        &self,
        actor: Option<&Actor>,
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
            DefaultActor::Miit,
            now,
        )
    }

    /// The public list of filings revoked for false information, newest first.
    pub fn false_information_list(&self) -> Result<Vec<PublishedRevocation>, RegistryError> {
        let mut found = Vec::new();
        self.store.scan_filings(&mut |f| {
            if f.status == Status::Revoked && f.false_information.is_some() {
                found.push(f);
            }
            true
        })?;
        let mut out = Vec::new();
        for f in found {
            let s = subject_of(&self.store, &f)?;
            out.push(PublishedRevocation {
                service_number: f.number.as_ref().map(|n| n.to_string()),
                subject_name: s.name,
                province: s.province.to_string(),
                website_name: f.name,
                domains: f.domains.iter().map(|d| d.to_string()).collect(),
                revoked_at: f.false_information.unwrap_or_default(),
            });
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.revoked_at));
        Ok(out)
    }

    /// An access provider cancels its access (default actor: that provider).
    pub fn cancel_access(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        provider: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let a = actor.cloned().unwrap_or_else(|| Actor::isp(provider));
        self.one(
            key,
            Event::CancelAccess {
                provider: provider.to_string(),
            },
            Some(&a),
            DefaultActor::Owner,
            now,
        )
    }

    /// Add an access provider (default actor: the filing's ICP user).
    pub fn add_provider(
        &self,
        actor: Option<&Actor>,
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
            DefaultActor::Owner,
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

    /// Attach a pre-approval document (default actor: the filing's ICP user).
    pub fn attach_pre_approval(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        category: &str,
        document: &str,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let ev = Event::AttachPreApproval {
            category: category.into(),
            document: document.into(),
        };
        self.one(key, ev, actor, DefaultActor::Owner, now)
    }

    /// A pre-approval user confirms a category's document (`refused: None`) or refuses it
    /// with a reason (default actor: `pre-approval`).
    pub fn check_pre_approval(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        category: &str,
        refused: Option<&str>,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let ev = Event::CheckPreApproval {
            category: category.into(),
            refused: refused.map(str::to_string),
        };
        self.one(key, ev, actor, DefaultActor::PreApproval, now)
    }

    /// A special-content user confirms a filing's bulletin-board special filing (`refused:
    /// None`) or refuses it with a reason (default actor: `special-content`).
    pub fn review_bulletin_board(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        refused: Option<&str>,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let ev = Event::ReviewBulletinBoard {
            refused: refused.map(str::to_string),
        };
        self.one(key, ev, actor, DefaultActor::SpecialContent, now)
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

    /// Resubmit a rejected filing (default actor: the filing's ICP user).
    pub fn resubmit(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(key, Event::Resubmit, actor, DefaultActor::Owner, now)
    }

    /// A filing and its subject.
    pub fn filing(&self, key: &FilingKey) -> Result<(Filing, Subject), RegistryError> {
        let f = find_filing(&self.store, key)?;
        let s = subject_of(&self.store, &f)?;
        Ok((f, s))
    }

    /// The active filings of the subjects whose name contains `fragment` (the subject-name
    /// index, see [`RegistryScan::subjects_by_name`]), in subject order: at most `limit`, and
    /// whether more exist. Each subject's filings come from the service-number index under
    /// its subject number, so neither all subjects nor all filings are read.
    pub fn active_filings_by_subject_name(
        &self,
        fragment: &str,
        limit: usize,
    ) -> Result<(Vec<(Filing, Subject)>, bool), RegistryError> {
        let mut out = Vec::new();
        let mut failed = None;
        let store = &self.store;
        let mut add = |s: &Subject| -> Result<bool, StoreError> {
            let Some(n) = &s.number else {
                return Ok(true);
            };
            for id in store.filings_under_subject_number(n)? {
                match store.filing(id)? {
                    Some(f) if f.status == Status::Active && f.subject_id == s.id => {
                        if out.len() == limit {
                            return Ok(false);
                        }
                        out.push((f, s.clone()));
                    }
                    _ => {}
                }
            }
            Ok(true)
        };
        let mut more = false;
        self.store
            .subjects_by_name(fragment, &mut |s| match add(&s) {
                Ok(go_on) => {
                    more = !go_on;
                    go_on
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            })?;
        if let Some(e) = failed {
            return Err(e.into());
        }
        Ok((out, more))
    }

    pub fn filing_view(&self, key: &FilingKey) -> Result<FilingView, RegistryError> {
        let (f, s) = self.filing(key)?;
        Ok(FilingView::new(&f, &s))
    }

    /// [`Registry::filing_view`] at `now` (shows an overdue annual review).
    pub fn filing_view_at(&self, key: &FilingKey, now: i64) -> Result<FilingView, RegistryError> {
        let (f, s) = self.filing(key)?;
        Ok(FilingView::at(&f, &s, now))
    }

    /// Ask for the annual review (default actor: the filing's ICP user).
    pub fn request_renewal(
        &self,
        actor: Option<&Actor>,
        key: &FilingKey,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        self.one(key, Event::RequestRenewal, actor, DefaultActor::Owner, now)
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

    /// The current certificate of the filing covering `host`.
    pub fn certificate_for(&self, host: &str) -> Result<IssuedCert, RegistryError> {
        let (f, _) = self.filing(&FilingKey::Domain(host.to_string()))?;
        let why = format!(
            "certificate for {host} (filing {} is {})",
            f.id,
            f.status_label()
        );
        f.certificate.ok_or(RegistryError::NotFound(why))
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

    pub fn keyring(&self) -> Keyring {
        self.issuer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keyring()
            .clone()
    }

    /// Rotate the signing key (default actor: MIIT; only MIIT may). With `compromised`, mark
    /// that key compromised first.
    pub fn rotate_keys(
        &self,
        actor: Option<&Actor>,
        compromised: Option<&str>,
        now: i64,
    ) -> Result<Rotation, RegistryError> {
        let actor = actor.cloned().unwrap_or(Actor::Miit);
        if actor != Actor::Miit {
            return Err(RegistryError::Workflow {
                what: "key rotation".into(),
                refusal: WorkflowError {
                    rule: workflow::Rule::Permission,
                    reason: format!("{actor} may not rotate keys; only MIIT"),
                },
            });
        }
        let mut issuer = self.issuer.lock().unwrap_or_else(|p| p.into_inner());
        let before = serde_json::to_value(issuer.keyring()).ok();
        let mut rotation = issuer.rotate(compromised, now)?;
        let after = serde_json::to_value(issuer.keyring()).ok();
        let mut txn = self.store.begin()?;
        txn.audit(
            &AuditMeta::new(&actor, "rotate_keys", now),
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
            let meta = AuditMeta::new(&actor, "reissue_certificate", now);
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

    /// A read-only lookup of filing facts for certificate verification.
    pub fn lookup(&self) -> StoreLookup<'_, S> {
        StoreLookup(&self.store)
    }
}

/// [`FilingLookup`] straight from the store.
pub struct StoreLookup<'a, S>(&'a S);

impl<S: RegistryRead> FilingLookup for StoreLookup<'_, S> {
    fn filing_facts(&self, service_number: &FilingNumber) -> Option<FilingFacts> {
        let id = self.0.filing_by_number(service_number).ok()??;
        let f = self.0.filing(id).ok()??;
        let state: FilingState = f.cert_state()?;
        Some(FilingFacts {
            state,
            current_serial: (f.cert_serial > 0).then_some(f.cert_serial)?,
            expires_at: f.expires_at?,
        })
    }
}

/// The notices telling a filer that its filing's certificate was issued (on approval) or
/// re-issued (its key was compromised): by SMS and email to the subject's contact, with where
/// to download and serve the certificate; to the owning user's name when no contact is known.
fn certificate_notices(
    subject: &Subject,
    filing: &Filing,
    reissued: bool,
    now: i64,
) -> Vec<crate::accounts::service::Message> {
    use crate::accounts::service::{Channel, Message};
    let number = filing
        .number
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let Some(cert) = &filing.certificate else {
        return Vec::new();
    };
    let domain = filing
        .domains
        .first()
        .map(|d| d.as_str().to_string())
        .unwrap_or_default();
    let (title, what) = if reissued {
        (
            format!("备案证书已重新签发 / certificate re-issued: {number}"),
            "签发密钥已停用，证书已用新密钥重新签发，请替换网站上的证书 / the signing key was withdrawn and the certificate re-issued under a new key: replace the one on your site",
        )
    } else {
        (
            format!("备案已通过 / filing approved: {number}"),
            "备案已通过审核 / the filing was approved",
        )
    };
    let how = format!(
        "请将证书放在 https://{domain}/cert/bazs.cert，并在首页底部展示备案号 {number}（链接 https://beian.miit.gov.cn/）。证书下载：GET /api/filings/{number}/certificate 或 beian cert export --domain {domain}。\nServe the certificate at https://{domain}/cert/bazs.cert and show {number} in the homepage footer, linked to https://beian.miit.gov.cn/. Download: GET /api/filings/{number}/certificate or `beian cert export --domain {domain}`."
    );
    let sms = format!("{title}。{what}。{how}");
    // Linked, not attached: a bulk review writes one notice per contact, so they stay small.
    let email = format!(
        "{} {}\n\n{what}.\n\n{how}\n\n证书 / certificate: serial {}, key {}",
        subject.name, title, cert.serial, cert.key_id
    );
    let mut out = Vec::new();
    let c = &subject.contact;
    if !c.mobile.trim().is_empty() {
        out.push(Message::notice(
            Channel::Sms,
            c.mobile.trim(),
            &title,
            sms,
            now,
        ));
    }
    if !c.email.trim().is_empty() {
        out.push(Message::notice(
            Channel::Email,
            c.email.trim(),
            &title,
            email.clone(),
            now,
        ));
    }
    if out.is_empty() {
        out.push(Message::notice(
            Channel::Email,
            &format!("user:{}", subject.owner),
            &title,
            email,
            now,
        ));
    }
    out
}

fn put_notices<T: RegistryTxn>(
    txn: &mut T,
    meta: &AuditMeta,
    notices: Vec<crate::accounts::service::Message>,
) -> Result<(), RegistryError> {
    for m in notices {
        let bytes = serde_json::to_vec(&m).map_err(|e| StoreError::Io {
            context: "notice".into(),
            reason: e.to_string(),
        })?;
        txn.put_record(
            meta,
            crate::accounts::service::KIND_NOTICE,
            &m.id,
            Some(&bytes),
        )?;
    }
    Ok(())
}
