//! The filing workflow as a pure transition function: `(state, event, actor, now)` → the new
//! state plus effects, or a [`WorkflowError`] naming the rule (DESIGN.md §1 "Workflow rules")
//! that refused it. No I/O and no clock: the caller gathers the facts the rules need (who
//! holds which domain, a fresh subject number) into [`State`] and passes the time in.

use std::collections::BTreeMap;

use crate::accounts::Actor;
use crate::domain::Domain;
use crate::number::{FilingNumber, ServiceKind};

use super::model::*;

/// The workflow rule that refused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    /// 1: every access provider verifies before the bureau sees a filing.
    AccessVerification,
    /// 2: pre-approval categories need their documents before review.
    PreApproval,
    /// The special filing of bulletin-board (电子公告) services, reviewed by special-content
    /// users before the bureau approves.
    BulletinBoard,
    /// 3: bureau review — manual or automatic; approval numbers, rejection needs a reason.
    Review,
    /// 4: no modification while under review; changes go through review.
    UnderReview,
    /// 6: cancellation requests, withdrawals and revocation.
    Cancellation,
    /// 7: access providers cancel or add access.
    Access,
    /// 8: a domain already filed cannot be filed again.
    DuplicateDomain,
    /// An actor acting outside its role or province.
    Permission,
    /// The event does not apply to the filing's current status.
    State,
    /// Submitted data is incomplete or inconsistent.
    Data,
}

impl Rule {
    pub fn label(self) -> &'static str {
        match self {
            Rule::AccessVerification => "rule 1 (access verification)",
            Rule::PreApproval => "rule 2 (pre-approval)",
            Rule::BulletinBoard => "special filing (bulletin board)",
            Rule::Review => "rule 3 (review)",
            Rule::UnderReview => "rule 4 (no modification under review)",
            Rule::Cancellation => "rule 6 (cancellation)",
            Rule::Access => "rule 7 (access)",
            Rule::DuplicateDomain => "rule 8 (duplicate domain)",
            Rule::Permission => "permission",
            Rule::State => "state",
            Rule::Data => "data",
        }
    }
}

/// A refused event: which rule, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refused by {}: {reason}", rule.label())]
pub struct WorkflowError {
    pub rule: Rule,
    pub reason: String,
}

fn refuse<T>(rule: Rule, reason: impl Into<String>) -> Result<T, WorkflowError> {
    Err(WorkflowError {
        rule,
        reason: reason.into(),
    })
}

/// Who currently holds a domain (a filing whose status holds domains).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DomainHolder {
    pub filing_id: FilingId,
    pub subject_id: SubjectId,
}

/// How the bureau reviews.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewMode {
    /// One at a time; the number may be typed (a subject or service number) or generated.
    Manual { number: Option<FilingNumber> },
    /// A batch; numbers are always generated.
    Automatic,
}

/// Something that happens to a filing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An access provider verifies the access (rule 1).
    VerifyAccess { provider: String },
    /// Add a pre-approval document for a category (rule 2), at any state before approval.
    AttachPreApproval { category: String, document: String },
    /// A pre-approval user confirms a category's document, or refuses it with a reason.
    CheckPreApproval {
        category: String,
        refused: Option<String>,
    },
    /// A special-content user confirms the bulletin-board special filing, or refuses it.
    ReviewBulletinBoard { refused: Option<String> },
    /// A rejected filing is submitted again (providers verify again).
    Resubmit,
    /// Bureau approval of what is in review: a submission, a change or a cancellation.
    Approve { mode: ReviewMode },
    /// Bureau rejection of what is in review, with a reason.
    Reject { reason: String },
    /// Change the domains (and, from a re-uploaded template, other website data) of an
    /// approved filing (rule 4).
    RequestChange {
        add: Vec<Domain>,
        remove: Vec<Domain>,
        details: ChangeDetails,
    },
    /// Ask for cancellation (rule 6).
    RequestCancellation { reason: String },
    /// Withdraw a pending cancellation request (rule 6).
    WithdrawCancellation,
    /// The requester changes the reason of its own pending cancellation request.
    ModifyCancellation { reason: String },
    /// The requester deletes its own pending cancellation request.
    DeleteCancellation,
    /// The filer asks for its annual review (rule 5); the bureau confirms it by approving.
    RequestRenewal,
    /// Direct revocation by a bureau or MIIT (rule 6); `false_information` when the filing
    /// data was found inaccurate (the FAQ's published list).
    Revoke {
        reason: String,
        false_information: bool,
    },
    /// An access provider stops providing access (rule 7).
    CancelAccess { provider: String },
    /// A new access provider is added; it must verify (rule 7).
    AddProvider { provider: String },
}

impl Event {
    /// A short name for audit records and history.
    pub fn name(&self) -> &'static str {
        match self {
            Event::VerifyAccess { .. } => "verify_access",
            Event::AttachPreApproval { .. } => "attach_pre_approval",
            Event::CheckPreApproval { refused: None, .. } => "confirm_pre_approval",
            Event::CheckPreApproval { .. } => "refuse_pre_approval",
            Event::ReviewBulletinBoard { refused: None } => "confirm_bulletin_board",
            Event::ReviewBulletinBoard { .. } => "refuse_bulletin_board",
            Event::Resubmit => "resubmit",
            Event::Approve { .. } => "approve",
            Event::Reject { .. } => "reject",
            Event::RequestChange { .. } => "request_change",
            Event::RequestCancellation { .. } => "request_cancellation",
            Event::WithdrawCancellation => "withdraw_cancellation",
            Event::ModifyCancellation { .. } => "modify_cancellation",
            Event::DeleteCancellation => "delete_cancellation",
            Event::RequestRenewal => "request_renewal",
            Event::Revoke { .. } => "revoke",
            Event::CancelAccess { .. } => "cancel_access",
            Event::AddProvider { .. } => "add_provider",
        }
    }
}

/// Everything the rules need to decide about one filing.
#[derive(Debug, Clone)]
pub struct State {
    pub filing: Filing,
    pub subject: Subject,
    /// Current holders of the domains the event touches (filings whose status holds domains).
    pub domain_holders: BTreeMap<Domain, DomainHolder>,
    /// The subject holding the subject part of a typed review number, if any.
    pub typed_number_holder: Option<SubjectId>,
    /// A fresh, unused subject number in the subject's province, used when the subject has
    /// none yet and the number is generated.
    pub fresh_subject_number: Option<FilingNumber>,
}

/// What the caller must do after a transition besides storing the new state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Sign and store a certificate with this serial for the filing's current content.
    IssueCertificate { serial: u64 },
    /// The subject got its number.
    SubjectNumbered(FilingNumber),
    /// The filing left the bureau's hands without an access provider (an empty shell).
    EmptyShell,
}

/// The outcome of an accepted event.
#[derive(Debug, Clone)]
pub struct Transition {
    pub filing: Filing,
    pub subject: Subject,
    pub effects: Vec<Effect>,
}

/// The data of a new service filing as submitted.
#[derive(Debug, Clone)]
pub struct Submission {
    pub kind: ServiceKind,
    pub name: String,
    pub homepage: String,
    pub domains: Vec<Domain>,
    pub ips: Vec<std::net::IpAddr>,
    pub providers: Vec<String>,
    pub access_method: String,
    pub server_placement: Option<String>,
    pub categories: Vec<CategoryEntry>,
    pub operating_licence: Option<crate::number::LicenceNumber>,
    /// An APP's package name or a mini-program's app id; websites have none.
    pub app_id: Option<String>,
    /// It offers bulletin-board (电子公告) services: the special filing.
    pub bulletin_board: bool,
}

fn is_owner(actor: &Actor, subject: &Subject) -> bool {
    matches!(actor, Actor::Icp { username } if *username == subject.owner)
}

fn is_provider_of(actor: &Actor, filing: &Filing) -> bool {
    matches!(actor, Actor::Isp { name, .. } if filing.providers.iter().any(|p| p.name == *name))
}

fn is_import_isp_of(actor: &Actor, filing: &Filing) -> bool {
    matches!(actor, Actor::Isp { name, import_authorised: true }
        if filing.providers.iter().any(|p| p.name == *name))
}

fn is_bureau_of(actor: &Actor, subject: &Subject) -> bool {
    matches!(actor, Actor::Bureau { province } if *province == subject.province)
}

/// The pending cancellation request of an active filing, if any.
fn pending_cancellation(filing: &Filing) -> Option<&CancellationRequest> {
    match filing.status {
        Status::Active => filing.cancellation.as_ref(),
        _ => None,
    }
}

/// Rule 6: who acts on a cancellation request (executes, declines or withdraws it). Nobody
/// acts on their own request; the bureau of the filing's province acts on its ICP users' and
/// access providers' requests, MIIT on a bureau's.
fn cancellation_authority(
    actor: &Actor,
    req: &CancellationRequest,
    s: &Subject,
    what: &str,
) -> Result<(), WorkflowError> {
    if req.requested_by == *actor {
        return refuse(
            Rule::Cancellation,
            format!("nobody may {what} their own request: {actor} made this cancellation request"),
        );
    }
    let allowed = match req.requested_by.role() {
        crate::accounts::Role::Icp | crate::accounts::Role::Isp => is_bureau_of(actor, s),
        crate::accounts::Role::Bureau | crate::accounts::Role::Miit => *actor == Actor::Miit,
        _ => false,
    };
    if !allowed {
        return refuse(
            Rule::Cancellation,
            format!(
                "{actor} may not {what} a cancellation request by {}: the bureau of {} acts on its ICP users' and access providers' requests, MIIT on a bureau's",
                req.requested_by, s.province
            ),
        );
    }
    Ok(())
}

fn require_bureau(actor: &Actor, subject: &Subject) -> Result<(), WorkflowError> {
    match actor {
        Actor::Bureau { province } if *province == subject.province => Ok(()),
        Actor::Bureau { province } => refuse(
            Rule::Permission,
            format!(
                "bureau {province} acts only in its own province; this filing is in {}",
                subject.province
            ),
        ),
        other => refuse(
            Rule::Permission,
            format!(
                "{other} may not review; only the bureau of {}",
                subject.province
            ),
        ),
    }
}

fn check_domains_free(
    domains: &[Domain],
    own: Option<FilingId>,
    subject: &Subject,
    holders: &BTreeMap<Domain, DomainHolder>,
) -> Result<(), WorkflowError> {
    for d in domains {
        if let Some(h) = holders.get(d) {
            if Some(h.filing_id) == own {
                continue;
            }
            if h.subject_id != subject.id {
                return refuse(
                    Rule::DuplicateDomain,
                    format!(
                        "{d} is already filed by another subject (filing {})",
                        h.filing_id
                    ),
                );
            }
            return refuse(
                Rule::DuplicateDomain,
                format!(
                    "{d} is already in filing {} of this subject; list all domains in one filing",
                    h.filing_id
                ),
            );
        }
    }
    Ok(())
}

/// The bulletin-board special filing, when declared, is confirmed before approval.
fn check_bulletin_board(filing: &Filing) -> Result<(), WorkflowError> {
    let Some(b) = &filing.bulletin_board else {
        return Ok(());
    };
    match &b.review {
        Some(PreApprovalCheck { refused: None, .. }) => Ok(()),
        Some(PreApprovalCheck {
            refused: Some(r), ..
        }) => refuse(
            Rule::BulletinBoard,
            format!("the bulletin-board special filing was refused ({r})"),
        ),
        None => refuse(
            Rule::BulletinBoard,
            "the bulletin-board special filing waits for a special-content user's review",
        ),
    }
}

fn check_pre_approval(filing: &Filing) -> Result<(), WorkflowError> {
    let Some(c) = filing.categories.iter().find(|c| !c.cleared()) else {
        return Ok(());
    };
    let why = match (&c.document, &c.check) {
        (None, _) => "needs its pre-approval document before review".to_string(),
        (
            Some(_),
            Some(PreApprovalCheck {
                refused: Some(r), ..
            }),
        ) => format!("its pre-approval document was refused ({r}); attach another"),
        (Some(_), _) => "waits for a pre-approval user to confirm its document".to_string(),
    };
    refuse(
        Rule::PreApproval,
        format!("category {:?} {why}", c.category),
    )
}

/// A new service filing (status: awaiting access verification). The actor is the subject's
/// ICP user or one of the listed access providers (an import-authorised one for batch import).
pub fn submit(
    id: FilingId,
    submission: Submission,
    subject: &Subject,
    holders: &BTreeMap<Domain, DomainHolder>,
    actor: &Actor,
    now: i64,
) -> Result<Filing, WorkflowError> {
    let Submission {
        kind,
        name,
        homepage,
        mut domains,
        ips,
        providers,
        access_method,
        server_placement,
        categories,
        operating_licence,
        app_id,
        bulletin_board,
    } = submission;
    if providers.is_empty() {
        return refuse(Rule::Data, "a service names at least one access provider");
    }
    let app_id = app_id
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty());
    match kind {
        ServiceKind::Website => {
            if domains.is_empty() && ips.is_empty() {
                return refuse(
                    Rule::Data,
                    "a website lists its domains (or its IPs if it has none)",
                );
            }
            if app_id.is_some() {
                return refuse(
                    Rule::Data,
                    "a website has no app id (file the APP on its own)",
                );
            }
        }
        ServiceKind::App | ServiceKind::MiniProgram => {
            if app_id.is_none() {
                return refuse(
                    Rule::Data,
                    "an APP names its package name, a mini-program its app id",
                );
            }
            if !domains.is_empty() {
                return refuse(
                    Rule::Data,
                    "an APP or mini-program is filed by its app id, not by domains (file the website on its own)",
                );
            }
        }
    }
    let allowed = is_owner(actor, subject)
        || matches!(actor, Actor::Isp { name, .. } if providers.contains(name));
    if !allowed {
        return refuse(
            Rule::Permission,
            format!("{actor} may not file for this subject: only its ICP user or one of its access providers"),
        );
    }
    let before = domains.len();
    domains.sort();
    domains.dedup();
    if domains.len() != before {
        return refuse(Rule::Data, "a domain is listed twice");
    }
    check_domains_free(&domains, None, subject, holders)?;
    let mut seen = Vec::new();
    let providers: Vec<ProviderAccess> = providers
        .into_iter()
        .filter(|p| {
            let new = !seen.contains(p);
            seen.push(p.clone());
            new
        })
        .map(|name| ProviderAccess {
            name,
            verified: false,
        })
        .collect();
    Ok(Filing {
        id,
        subject_id: subject.id,
        kind,
        name,
        homepage,
        domains,
        ips,
        providers,
        access_method,
        server_placement,
        categories,
        operating_licence,
        status: Status::AwaitingAccessVerification,
        number: None,
        submitted_at: now,
        approved_at: None,
        expires_at: None,
        cert_serial: 0,
        certificate: None,
        pending_change: None,
        cancellation: None,
        rejection: None,
        history: vec![HistoryEntry {
            at: now,
            actor: actor.clone(),
            action: "submit".into(),
        }],
        renewal: None,
        false_information: None,
        app_id,
        bulletin_board: bulletin_board.then_some(BulletinBoard {
            declared_at: now,
            review: None,
        }),
    })
}

/// Apply one event. On success the caller stores `filing` and `subject` and performs the
/// effects (certificate issuance).
pub fn apply(
    state: &State,
    event: &Event,
    actor: &Actor,
    now: i64,
) -> Result<Transition, WorkflowError> {
    let mut filing = state.filing.clone();
    let mut subject = state.subject.clone();
    let mut effects = Vec::new();
    let s = &state.subject;
    match event {
        Event::VerifyAccess { provider } => {
            if !matches!(actor, Actor::Isp { name, .. } if name == provider) {
                return refuse(
                    Rule::Permission,
                    format!("only access provider {provider:?} verifies its own access"),
                );
            }
            let Some(p) = filing.providers.iter_mut().find(|p| p.name == *provider) else {
                return refuse(
                    Rule::AccessVerification,
                    format!("{provider:?} is not an access provider of this filing"),
                );
            };
            if p.verified {
                return refuse(
                    Rule::AccessVerification,
                    format!("{provider:?} already verified"),
                );
            }
            if !matches!(
                filing.status,
                Status::AwaitingAccessVerification | Status::Active
            ) {
                return refuse(
                    Rule::State,
                    format!(
                        "a {} filing is not awaiting access verification",
                        filing.status.as_str()
                    ),
                );
            }
            p.verified = true;
            if filing.status == Status::AwaitingAccessVerification
                && filing.providers.iter().all(|p| p.verified)
            {
                filing.status = Status::AwaitingReview;
            }
        }
        Event::AttachPreApproval { category, document } => {
            if !(is_owner(actor, s) || is_provider_of(actor, &filing)) {
                return refuse(Rule::Permission, format!("{actor} is not the filer"));
            }
            // Any state before approval, including under review (the FAQ's late document).
            if !filing.status.before_approval() {
                return refuse(
                    Rule::State,
                    format!(
                        "a pre-approval document is attached before approval; this filing is {}",
                        filing.status.as_str()
                    ),
                );
            }
            if document.trim().is_empty() {
                return refuse(Rule::Data, "the document number is empty");
            }
            let Some(c) = filing
                .categories
                .iter_mut()
                .find(|c| c.category == *category)
            else {
                return refuse(
                    Rule::Data,
                    format!("the filing has no category {category:?}"),
                );
            };
            c.document = Some(document.trim().to_string());
            c.check = None;
        }
        Event::ReviewBulletinBoard { refused } => {
            if !matches!(actor, Actor::SpecialContent | Actor::Miit) {
                return refuse(
                    Rule::Permission,
                    format!(
                        "{actor} may not review bulletin-board filings: special-content users do"
                    ),
                );
            }
            if !filing.status.before_approval() {
                return refuse(
                    Rule::State,
                    "the special filing is reviewed before approval",
                );
            }
            if refused.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return refuse(Rule::BulletinBoard, "a refusal gives its reason");
            }
            let Some(b) = filing.bulletin_board.as_mut() else {
                return refuse(Rule::Data, "the filing declares no bulletin-board service");
            };
            b.review = Some(PreApprovalCheck {
                by: actor.clone(),
                at: now,
                refused: refused.clone(),
            });
        }
        Event::CheckPreApproval { category, refused } => {
            if !matches!(actor, Actor::PreApproval | Actor::Miit) {
                return refuse(
                    Rule::Permission,
                    format!("{actor} may not check pre-approval documents: pre-approval users do"),
                );
            }
            if !filing.status.before_approval() {
                return refuse(Rule::State, "documents are checked before approval");
            }
            let Some(c) = filing
                .categories
                .iter_mut()
                .find(|c| c.category == *category && c.pre_approval)
            else {
                return refuse(
                    Rule::Data,
                    format!("the filing has no pre-approval category {category:?}"),
                );
            };
            if c.document.is_none() {
                return refuse(Rule::PreApproval, "no document is attached yet");
            }
            if refused.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return refuse(Rule::PreApproval, "a refusal gives its reason");
            }
            c.check = Some(PreApprovalCheck {
                by: actor.clone(),
                at: now,
                refused: refused.clone(),
            });
        }
        Event::Resubmit => {
            if !(is_owner(actor, s) || is_provider_of(actor, &filing)) {
                return refuse(Rule::Permission, format!("{actor} is not the filer"));
            }
            if filing.status != Status::Rejected {
                return refuse(Rule::State, "only a rejected filing is resubmitted");
            }
            if filing.providers.is_empty() {
                return refuse(Rule::Access, "the filing needs a new access provider first");
            }
            check_domains_free(&filing.domains, Some(filing.id), s, &state.domain_holders)?;
            for p in &mut filing.providers {
                p.verified = false;
            }
            filing.status = Status::AwaitingAccessVerification;
        }
        Event::Approve { mode } => {
            // Executing a cancellation follows the request's hierarchy (rule 6).
            match pending_cancellation(&filing) {
                Some(req) => cancellation_authority(actor, req, s, "execute")?,
                None => require_bureau(actor, s)?,
            }
            approve(state, mode, &mut filing, &mut subject, &mut effects, now)?;
        }
        Event::Reject { reason } => {
            match pending_cancellation(&filing) {
                Some(req) => cancellation_authority(actor, req, s, "decline")?,
                None => require_bureau(actor, s)?,
            }
            if reason.trim().is_empty() {
                return refuse(Rule::Review, "a rejection needs a reason");
            }
            if filing.status == Status::AwaitingAccessVerification {
                return refuse(
                    Rule::AccessVerification,
                    "not every access provider has verified; the bureau does not see it yet",
                );
            }
            if filing.status == Status::AwaitingReview {
                filing.status = Status::Rejected;
            } else if filing.status == Status::Active && filing.cancellation.is_some() {
                filing.cancellation = None;
            } else if filing.status == Status::Active && filing.pending_change.is_some() {
                filing.pending_change = None;
            } else if filing.status == Status::Active && filing.renewal.is_some() {
                filing.renewal = None;
            } else if filing.is_empty_shell() {
                // Rule 7: an access provider left and none is left; the bureau's review of
                // the empty shell rejects it until the filer has a new provider.
                filing.status = Status::Rejected;
                filing.rejection = Some(reason.clone());
            } else {
                return refuse(Rule::State, "nothing of this filing is awaiting review");
            }
            filing.rejection = Some(reason.clone());
        }
        Event::RequestChange {
            add,
            remove,
            details,
        } => {
            if !(is_owner(actor, s) || is_provider_of(actor, &filing)) {
                return refuse(Rule::Permission, format!("{actor} is not the filer"));
            }
            if filing.in_review_queue() {
                return refuse(Rule::UnderReview, "the filing is under review: view only");
            }
            if filing.status != Status::Active {
                return refuse(
                    Rule::State,
                    format!(
                        "only an approved filing is changed; this one is {}",
                        filing.status.as_str()
                    ),
                );
            }
            let mut domains = filing.domains.clone();
            for r in remove {
                let before = domains.len();
                domains.retain(|d| d != r);
                if domains.len() == before {
                    return refuse(Rule::Data, format!("{r} is not in this filing"));
                }
            }
            for a in add {
                if domains.contains(a) {
                    return refuse(Rule::Data, format!("{a} is already in this filing"));
                }
                domains.push(a.clone());
            }
            let ips = details.ips.as_ref().unwrap_or(&filing.ips);
            if domains.is_empty() && ips.is_empty() {
                return refuse(Rule::Data, "a website keeps at least one domain (or IP)");
            }
            if details.name.as_deref().is_some_and(|n| n.trim().is_empty()) {
                return refuse(Rule::Data, "a website keeps its name");
            }
            let details = ChangeDetails {
                name: details.name.clone().filter(|n| *n != filing.name),
                homepage: details.homepage.clone().filter(|h| *h != filing.homepage),
                ips: details.ips.clone().filter(|i| *i != filing.ips),
            };
            if add.is_empty() && remove.is_empty() && details.is_empty() {
                return refuse(Rule::Data, "a change adds or removes something");
            }
            check_domains_free(add, Some(filing.id), s, &state.domain_holders)?;
            domains.sort();
            filing.pending_change = Some(PendingChange {
                domains,
                requested_by: actor.clone(),
                requested_at: now,
                details,
            });
        }
        Event::RequestCancellation { reason } => {
            let allowed =
                is_owner(actor, s) || is_import_isp_of(actor, &filing) || is_bureau_of(actor, s);
            if !allowed {
                return refuse(
                    Rule::Permission,
                    format!("{actor} may not request cancellation: the ICP user, an import-authorised access provider of the filing, or the bureau of {} may", s.province),
                );
            }
            if reason.trim().is_empty() {
                return refuse(Rule::Cancellation, "a cancellation request needs a reason");
            }
            if filing.status != Status::Active {
                return refuse(
                    Rule::State,
                    format!(
                        "only an approved filing is cancelled; this one is {}",
                        filing.status.as_str()
                    ),
                );
            }
            if filing.cancellation.is_some() {
                return refuse(
                    Rule::Cancellation,
                    "a cancellation request is already pending",
                );
            }
            filing.cancellation = Some(CancellationRequest {
                requested_by: actor.clone(),
                reason: reason.clone(),
                requested_at: now,
            });
        }
        Event::WithdrawCancellation => {
            let Some(req) = &filing.cancellation else {
                return refuse(Rule::Cancellation, "no cancellation request is pending");
            };
            cancellation_authority(actor, req, s, "withdraw")?;
            filing.cancellation = None;
        }
        Event::ModifyCancellation { reason } => {
            let Some(req) = filing.cancellation.as_mut() else {
                return refuse(Rule::Cancellation, "no cancellation request is pending");
            };
            if req.requested_by != *actor {
                return refuse(
                    Rule::Cancellation,
                    format!("only {} changes its own request", req.requested_by),
                );
            }
            if reason.trim().is_empty() {
                return refuse(Rule::Cancellation, "a cancellation request needs a reason");
            }
            req.reason = reason.clone();
            req.requested_at = now;
        }
        Event::DeleteCancellation => {
            let Some(req) = &filing.cancellation else {
                return refuse(Rule::Cancellation, "no cancellation request is pending");
            };
            if req.requested_by != *actor {
                return refuse(
                    Rule::Cancellation,
                    format!("only {} deletes its own request", req.requested_by),
                );
            }
            filing.cancellation = None;
        }
        Event::RequestRenewal => {
            if !(is_owner(actor, s) || is_import_isp_of(actor, &filing)) {
                return refuse(
                    Rule::Permission,
                    format!("{actor} may not ask for the annual review: the filing's ICP user (or its import-authorised provider) does"),
                );
            }
            if filing.status != Status::Active {
                return refuse(Rule::State, "only an approved filing has an annual review");
            }
            if filing.in_review_queue() {
                return refuse(Rule::UnderReview, "the filing is under review: view only");
            }
            let due = filing.expires_at.unwrap_or(now);
            if now < due - RENEWAL_WINDOW_SECS {
                return refuse(
                    Rule::State,
                    format!(
                        "the annual review opens {} days before it is due",
                        RENEWAL_WINDOW_SECS / 86_400
                    ),
                );
            }
            filing.renewal = Some(RenewalRequest {
                requested_by: actor.clone(),
                requested_at: now,
            });
        }
        Event::Revoke {
            reason,
            false_information,
        } => {
            if !(is_bureau_of(actor, s) || *actor == Actor::Miit) {
                return refuse(
                    Rule::Permission,
                    format!(
                        "{actor} may not revoke: the bureau of {} or MIIT may",
                        s.province
                    ),
                );
            }
            if reason.trim().is_empty() {
                return refuse(Rule::Cancellation, "a revocation needs a reason");
            }
            if filing.status != Status::Active {
                return refuse(
                    Rule::State,
                    format!(
                        "only an approved filing is revoked; this one is {}",
                        filing.status.as_str()
                    ),
                );
            }
            filing.status = Status::Revoked;
            filing.cancellation = None;
            filing.pending_change = None;
            filing.renewal = None;
            filing.rejection = Some(reason.clone());
            if *false_information {
                filing.false_information = Some(now);
            }
        }
        Event::CancelAccess { provider } => {
            if !matches!(actor, Actor::Isp { name, .. } if name == provider) {
                return refuse(
                    Rule::Permission,
                    format!("only {provider:?} cancels its own access"),
                );
            }
            let before = filing.providers.len();
            filing.providers.retain(|p| p.name != *provider);
            if filing.providers.len() == before {
                return refuse(
                    Rule::Access,
                    format!("{provider:?} does not provide access to this filing"),
                );
            }
            match filing.status {
                Status::Active if filing.providers.is_empty() => effects.push(Effect::EmptyShell),
                Status::AwaitingAccessVerification | Status::AwaitingReview
                    if filing.providers.is_empty() =>
                {
                    filing.status = Status::Rejected;
                    filing.rejection =
                        Some("no access provider left; a new provider is needed".into());
                }
                Status::AwaitingAccessVerification
                    if filing.providers.iter().all(|p| p.verified) =>
                {
                    filing.status = Status::AwaitingReview;
                }
                _ => {}
            }
        }
        Event::AddProvider { provider } => {
            if !(is_owner(actor, s) || matches!(actor, Actor::Isp { name, .. } if name == provider))
            {
                return refuse(Rule::Permission, format!("{actor} may not add a provider"));
            }
            if filing.in_review_queue() {
                return refuse(Rule::UnderReview, "the filing is under review: view only");
            }
            if matches!(filing.status, Status::Cancelled | Status::Revoked) {
                return refuse(Rule::State, "the filing is closed");
            }
            if filing.providers.iter().any(|p| p.name == *provider) {
                return refuse(
                    Rule::Access,
                    format!("{provider:?} already provides access"),
                );
            }
            filing.providers.push(ProviderAccess {
                name: provider.clone(),
                verified: false,
            });
        }
    }
    filing.history.push(HistoryEntry {
        at: now,
        actor: actor.clone(),
        action: event.name().to_string(),
    });
    Ok(Transition {
        filing,
        subject,
        effects,
    })
}

fn approve(
    state: &State,
    mode: &ReviewMode,
    filing: &mut Filing,
    subject: &mut Subject,
    effects: &mut Vec<Effect>,
    now: i64,
) -> Result<(), WorkflowError> {
    match filing.status {
        Status::AwaitingAccessVerification => {
            return refuse(
                Rule::AccessVerification,
                "not every access provider has verified; the bureau does not see it yet",
            )
        }
        Status::AwaitingReview => {
            check_pre_approval(filing)?;
            check_bulletin_board(filing)?;
            check_domains_free(
                &filing.domains,
                Some(filing.id),
                subject,
                &state.domain_holders,
            )?;
            let number = assign_number(state, mode, subject, filing.kind)?;
            if let Some(n) = subject
                .number
                .clone()
                .filter(|_| state.subject.number.is_none())
            {
                effects.push(Effect::SubjectNumbered(n));
            }
            filing.number = Some(number);
            filing.status = Status::Active;
        }
        Status::Active if filing.cancellation.is_some() => {
            if matches!(mode, ReviewMode::Manual { number: Some(_) }) {
                return refuse(Rule::Review, "a cancellation takes no number");
            }
            filing.status = Status::Cancelled;
            return Ok(());
        }
        Status::Active if filing.pending_change.is_some() => {
            if matches!(mode, ReviewMode::Manual { number: Some(_) }) {
                return refuse(Rule::Review, "a change keeps its number");
            }
            let change = filing.pending_change.take().ok_or_else(|| WorkflowError {
                rule: Rule::State,
                reason: "no change pending".into(),
            })?;
            check_domains_free(
                &change.domains,
                Some(filing.id),
                subject,
                &state.domain_holders,
            )?;
            filing.domains = change.domains;
            if let Some(name) = change.details.name {
                filing.name = name;
            }
            if let Some(homepage) = change.details.homepage {
                filing.homepage = homepage;
            }
            if let Some(ips) = change.details.ips {
                filing.ips = ips;
            }
            check_pre_approval(filing)?;
            // A change keeps the annual review date; its certificate is re-issued.
            filing.approved_at = Some(now);
            filing.rejection = None;
            filing.cert_serial += 1;
            effects.push(Effect::IssueCertificate {
                serial: filing.cert_serial,
            });
            return Ok(());
        }
        Status::Active if filing.renewal.is_some() => {
            if matches!(mode, ReviewMode::Manual { number: Some(_) }) {
                return refuse(Rule::Review, "an annual review keeps its number");
            }
            // Rule 5: confirmed; due again one calendar year from now.
            filing.renewal = None;
        }
        _ => return refuse(Rule::State, "nothing of this filing is awaiting review"),
    }
    filing.approved_at = Some(now);
    filing.expires_at = Some(one_year_after(now));
    filing.rejection = None;
    filing.cert_serial += 1;
    effects.push(Effect::IssueCertificate {
        serial: filing.cert_serial,
    });
    Ok(())
}

/// Rule 3: the service number. Automatic review always generates; manual review takes a
/// typed number or generates.
fn assign_number(
    state: &State,
    mode: &ReviewMode,
    subject: &mut Subject,
    kind: ServiceKind,
) -> Result<FilingNumber, WorkflowError> {
    let typed = match mode {
        ReviewMode::Automatic => None,
        ReviewMode::Manual { number } => number.clone(),
    };
    let subject_number = match (&subject.number, &typed) {
        (Some(existing), Some(t)) if !t.subject_number().same_as(existing) => {
            return refuse(
                Rule::Review,
                format!("the subject already has number {existing}; {t} does not belong to it"),
            )
        }
        (Some(existing), _) => existing.clone(),
        (None, Some(t)) => {
            if t.primary_province() != subject.province {
                return refuse(
                    Rule::Review,
                    format!("{t} is not a number of province {}", subject.province),
                );
            }
            if state.typed_number_holder.is_some_and(|h| h != subject.id) {
                return refuse(
                    Rule::Review,
                    format!("{} belongs to another subject", t.subject_number()),
                );
            }
            t.subject_number().to_primary()
        }
        (None, None) => match &state.fresh_subject_number {
            Some(n) => n.clone(),
            None => return refuse(Rule::Review, "no subject number available to generate"),
        },
    };
    let index = match typed.as_ref().and_then(|t| t.suffix) {
        Some(sfx) => {
            if sfx.kind != kind {
                return refuse(
                    Rule::Review,
                    "the typed number is for another kind of service",
                );
            }
            if sfx.index <= subject.last_website_index {
                return refuse(
                    Rule::Review,
                    format!(
                        "service index -{} is already used by this subject",
                        sfx.index
                    ),
                );
            }
            sfx.index
        }
        None => subject.last_website_index + 1,
    };
    subject.last_website_index = index;
    subject.number = Some(subject_number.clone());
    Ok(subject_number.with_service(index, kind))
}

#[cfg(test)]
mod tests;
