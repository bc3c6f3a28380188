//! The registry's operations — what the CLI and the HTTP API call. Each operation gathers the
//! facts the pure workflow needs from the store, applies the transition, issues certificates
//! for approvals, and writes the result (with its audit records and the filer's notices) in one
//! durable transaction. This file holds the errors, the reports, the one transition path and
//! who acts (every operation takes its `Actor`; `DefaultRole` lets the CLI pick one); the
//! operations live by capability in `filings`, `review`, `imports`, `ip`, `views` and
//! `integrity` (keys, snapshots, audit verification).

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
use super::store::any::{AnyStore, Backend};
use super::store::postgres::PgStore;
use super::store::sled::SledStore;
use super::store::{
    audit, AuditMeta, AuditReport, RegistryRead, RegistryStore, RegistryTxn, Sequence, StoreError,
};
use super::workflow::{self, DomainHolder, Effect, Event, ReviewMode, State, WorkflowError};

mod filings;
mod imports;
mod integrity;
mod ip;
mod replication;
mod review;
mod views;

pub use ip::{IpImportReport, IpUnit, IpUnitBlock};
pub use replication::{
    Applied, Change, FeedPage, ReplicaInfo, MAX_FEED_PAGE, PUBLIC_RECORD_KINDS, REPLICA_FILE,
};
pub use views::{FilingView, StoreLookup};

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
    /// The directory is a read-only replica: it follows its primary and takes no writes.
    #[error("{path}: a read-only replica of {primary}; serve it with `beian serve --replica-of {primary}`, and file and review on the primary")]
    Replica { path: String, primary: String },
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

/// A registry: its store and its key directory. The store is sled (in `DIR/store`) or a
/// PostgreSQL database (named by `DIR/database.url`, or by the caller); see [`Backend`].
pub struct Registry<S: RegistryStore = AnyStore> {
    dir: PathBuf,
    store: S,
    issuer: Mutex<Issuer>,
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}

/// The file in a registry directory naming its PostgreSQL database (written by `registry
/// init` on PostgreSQL, mode 0600: the URL may carry a password).
pub const DATABASE_URL_FILE: &str = "database.url";

/// Longest database URL file read.
const MAX_URL_FILE: u64 = 4096;

impl Registry<AnyStore> {
    /// Create a registry in `dir` on the embedded store: see [`Registry::init_on`].
    pub fn init(dir: &Path, now: i64) -> Result<(Self, InitReport), RegistryError> {
        Self::init_on(dir, &Backend::Sled, now)
    }

    /// Create a registry in `dir` with its store on `backend`: the store, a first signing key,
    /// and the initial MIIT user (username `miit`, a generated password returned once). On
    /// PostgreSQL, the database (its schema migrated first) must not hold a registry yet, and
    /// `dir` records its URL in [`DATABASE_URL_FILE`].
    pub fn init_on(
        dir: &Path,
        backend: &Backend,
        now: i64,
    ) -> Result<(Self, InitReport), RegistryError> {
        if Issuer::keys_dir(dir).join("keyring.json").exists()
            || store_dir(dir).exists()
            || dir.join(DATABASE_URL_FILE).exists()
        {
            return Err(RegistryError::AlreadyInitialised {
                path: dir.display().to_string(),
            });
        }
        // The database is checked before anything is created in `dir`.
        let pg = match backend {
            Backend::Sled => None,
            Backend::Postgres { url } => {
                let pg = PgStore::open(url)?;
                if pg.holds_registry()? {
                    return Err(RegistryError::AlreadyInitialised {
                        path: pg.display_url(),
                    });
                }
                Some((pg, url))
            }
        };
        std::fs::create_dir_all(dir).map_err(|e| RegistryError::Io {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let issuer = Issuer::create(dir, now)?;
        let store = match pg {
            None => AnyStore::Sled(SledStore::open(&store_dir(dir))?),
            Some((pg, url)) => {
                let path = dir.join(DATABASE_URL_FILE);
                crate::fsutil::write_atomic(&path, format!("{url}\n").as_bytes(), Some(0o600))
                    .map_err(|e| RegistryError::Io {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                AnyStore::Postgres(pg)
            }
        };
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
        {
            use crate::registry::store::records::TypedRecordsTxn;
            txn.store_record::<integrity::SigningKeysRecord>(
                &meta,
                integrity::SIGNING_KEYS_KEY,
                &integrity::signing_keys_of(&issuer),
            )?;
        }
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

    /// Open an initialised registry on the store `dir` names (see [`Registry::backend_of`]).
    pub fn open(dir: &Path) -> Result<Self, RegistryError> {
        Self::open_on(dir, None)
    }

    /// Where the store of the registry in `dir` lives: the PostgreSQL database `database_url`
    /// when given (the caller's flag or environment), else the one `dir` records in
    /// [`DATABASE_URL_FILE`], else the embedded store in `dir`.
    pub fn backend_of(dir: &Path, database_url: Option<&str>) -> Result<Backend, RegistryError> {
        if let Some(url) = database_url {
            return Ok(Backend::Postgres {
                url: url.to_string(),
            });
        }
        let path = dir.join(DATABASE_URL_FILE);
        if !path.exists() {
            return Ok(Backend::Sled);
        }
        let text = crate::fsutil::read_bounded_string(&path, MAX_URL_FILE).map_err(|e| {
            RegistryError::Io {
                path: path.display().to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(Backend::Postgres {
            url: text.trim().to_string(),
        })
    }

    /// Open an initialised registry; `database_url` as in [`Registry::backend_of`].
    pub fn open_on(dir: &Path, database_url: Option<&str>) -> Result<Self, RegistryError> {
        if let Some(info) = ReplicaInfo::read(dir)? {
            return Err(RegistryError::Replica {
                path: dir.display().to_string(),
                primary: info.source,
            });
        }
        let backend = Self::backend_of(dir, database_url)?;
        let not_initialised = |path: String| RegistryError::NotInitialised { path };
        if !Issuer::keys_dir(dir).exists() || (backend == Backend::Sled && !store_dir(dir).exists())
        {
            return Err(not_initialised(dir.display().to_string()));
        }
        let issuer = Issuer::open(dir)?;
        let store = match &backend {
            Backend::Sled => AnyStore::Sled(SledStore::open(&store_dir(dir))?),
            Backend::Postgres { url } => {
                let pg = PgStore::open(url)?;
                if !pg.holds_registry()? {
                    return Err(not_initialised(pg.display_url()));
                }
                AnyStore::Postgres(pg)
            }
        };
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

/// The role that acts on a filing when a local operator does not say who (`--as`): the CLI
/// resolves it to an [`Actor`] with [`Registry::acting_as`] before calling an operation.
/// Library operations themselves always take the actor explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultRole {
    /// The bureau of the filing's province.
    Bureau,
    /// The filing's ICP user.
    Owner,
    Miit,
    PreApproval,
    SpecialContent,
    /// Who executes or withdraws a pending request: the bureau, or MIIT when the bureau made
    /// the request (nobody executes their own request, rule 6).
    Reviewer,
}

/// Who submits the rows of an import.
#[derive(Debug, Clone, Copy)]
pub enum Submitter<'a> {
    /// This actor submits every row (the workflow's permission rules apply to it).
    Actor(&'a Actor),
    /// Each row is submitted by the first access provider it names, as an import-authorised
    /// ISP: what an operator loading a provider's file on the registry's own host means.
    RowProvider,
}

impl Submitter<'_> {
    /// The actor for a row whose first access provider is `provider`.
    pub fn for_row(&self, provider: &str) -> Actor {
        match self {
            Submitter::Actor(a) => (*a).clone(),
            Submitter::RowProvider => Actor::isp(provider.trim()),
        }
    }
}

fn role_actor(role: DefaultRole, f: &Filing, s: &Subject) -> Actor {
    match role {
        DefaultRole::Bureau => Actor::bureau(s.province),
        DefaultRole::Owner => Actor::icp(&s.owner),
        DefaultRole::Miit => Actor::Miit,
        DefaultRole::PreApproval => Actor::PreApproval,
        DefaultRole::SpecialContent => Actor::SpecialContent,
        DefaultRole::Reviewer => match &f.cancellation {
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

    /// The actor that `role` names for the filing `key` (see [`DefaultRole`]).
    pub fn acting_as(&self, key: &FilingKey, role: DefaultRole) -> Result<Actor, RegistryError> {
        let f = find_filing(&self.store, key)?;
        let s = subject_of(&self.store, &f)?;
        Ok(role_actor(role, &f, &s))
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
                self.check_signing_keys(&issuer)?;
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
        actor: &Actor,
        now: i64,
    ) -> Result<Filing, RegistryError> {
        let mut txn = self.store.begin()?;
        let filing = find_filing(&txn, key)?;
        let f = self.transition(&mut txn, filing, &event, actor, now)?;
        txn.commit()?;
        Ok(f)
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
    use super::store::records::TypedRecordsTxn;
    for m in notices {
        txn.store_record::<crate::accounts::service::Notices>(meta, &m.id, &m)?;
    }
    Ok(())
}
