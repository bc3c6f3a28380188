//! The filing model: subjects (主体), their services (websites first), domains, IPs, access
//! providers, content categories with pre-approval documents, operating licences, status and
//! history. Plain data; the rules live in [`super::workflow`].

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::accounts::Actor;
use crate::domain::Domain;
use crate::number::{FilingNumber, LicenceNumber, ServiceKind};

/// Internal id of a subject (stable, never reused).
pub type SubjectId = u64;
/// Internal id of a service filing (stable, never reused; what `review --approve ID` takes).
pub type FilingId = u64;

/// The filer may ask for its annual review this long before it is due (rule 5).
pub const RENEWAL_WINDOW_SECS: i64 = 60 * 24 * 3600;

/// When the annual review is due after an approval at `t` (rule 5): the same moment one
/// calendar year later, in UTC (an approval on 29 February is due on 28 February).
pub fn one_year_after(t: i64) -> i64 {
    chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0)
        .and_then(|d| d.checked_add_months(chrono::Months::new(12)))
        .map(|d| d.timestamp())
        .unwrap_or(t.saturating_add(365 * 24 * 3600))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub name: String,
    #[serde(default)]
    pub mobile: String,
    #[serde(default)]
    pub email: String,
}

/// A filing subject (主办单位): one per identity number, one subject number in its province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub id: SubjectId,
    pub name: String,
    /// Unit nature: 企业, 个人, 事业单位, …
    pub nature: String,
    /// Certificate type: 统一社会信用代码, 居民身份证, …
    pub id_type: String,
    pub id_number: String,
    /// Primary province abbreviation.
    pub province: char,
    pub address: String,
    pub contact: Contact,
    /// The ICP user owning this subject.
    pub owner: String,
    /// Assigned at the first approval.
    pub number: Option<FilingNumber>,
    /// The highest website index handed out (`-1`, `-2`, …).
    pub last_website_index: u32,
    /// Non-fatal findings on the subject data (e.g. a USCC check-digit mismatch).
    pub warnings: Vec<String>,
    pub created_at: i64,
}

/// One access provider of a service and whether it verified the access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderAccess {
    pub name: String,
    pub verified: bool,
}

/// A content category and, for pre-approval categories, the approval document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CategoryEntry {
    pub category: String,
    pub pre_approval: bool,
    pub document: Option<String>,
    /// A pre-approval user's check of the document (rule 2): confirmed, or refused with a
    /// reason. Attaching a new document clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<PreApprovalCheck>,
}

/// A pre-approval user's check of a category's approval document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreApprovalCheck {
    pub by: Actor,
    pub at: i64,
    /// `None`: confirmed; `Some(reason)`: refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
}

impl CategoryEntry {
    /// Whether the category is ready for review: no pre-approval needed, or its document
    /// confirmed by a pre-approval user.
    pub fn cleared(&self) -> bool {
        !self.pre_approval
            || (self
                .document
                .as_deref()
                .is_some_and(|d| !d.trim().is_empty())
                && self.check.as_ref().is_some_and(|c| c.refused.is_none()))
    }
}

/// Where a service filing is in its life.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Submitted; at least one access provider has not verified yet (bureau cannot see it).
    AwaitingAccessVerification,
    /// Every provider verified; in the bureau's queue.
    AwaitingReview,
    /// Returned to the filer with a reason.
    Rejected,
    /// Approved: numbered, certificate issued.
    Active,
    Cancelled,
    Revoked,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the filing has not been approved yet (submitted, in review, or returned): when
    /// pre-approval documents and the bulletin-board special filing are attached and checked.
    pub fn before_approval(self) -> bool {
        matches!(
            self,
            Status::AwaitingAccessVerification | Status::AwaitingReview | Status::Rejected
        )
    }

    /// Whether a filing in this status holds its domains (others may not file them).
    pub fn holds_domains(self) -> bool {
        !matches!(self, Status::Cancelled | Status::Revoked | Status::Rejected)
    }
}

/// A change of an approved filing, awaiting bureau review. The old certificate stays valid
/// until it is approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingChange {
    /// The domains the filing will have.
    pub domains: Vec<Domain>,
    pub requested_by: Actor,
    pub requested_at: i64,
    /// Other website data the change replaces (a re-uploaded template row).
    #[serde(default, skip_serializing_if = "ChangeDetails::is_empty")]
    pub details: ChangeDetails,
}

/// Website data besides the domains that a change replaces; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub homepage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ips: Option<Vec<IpAddr>>,
}

impl ChangeDetails {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.homepage.is_none() && self.ips.is_none()
    }
}

/// A cancellation request awaiting the bureau (rule 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRequest {
    pub requested_by: Actor,
    pub reason: String,
    pub requested_at: i64,
}

/// The certificate currently issued for a filing.
/// The filer's request for its annual review (renewal), awaiting the bureau.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalRequest {
    pub requested_by: Actor,
    pub requested_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCert {
    pub serial: u64,
    pub key_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    /// The exact file bytes (`bazs.cert`), UTF-8 text.
    pub text: String,
}

/// One line of a filing's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub at: i64,
    pub actor: Actor,
    pub action: String,
}

/// A service filing (websites first; APP and mini-program kinds share the number format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    pub id: FilingId,
    pub subject_id: SubjectId,
    pub kind: ServiceKind,
    pub name: String,
    pub homepage: String,
    /// Registrable domains; several domains → one filing.
    pub domains: Vec<Domain>,
    pub ips: Vec<IpAddr>,
    pub providers: Vec<ProviderAccess>,
    pub access_method: String,
    pub server_placement: Option<String>,
    pub categories: Vec<CategoryEntry>,
    pub operating_licence: Option<LicenceNumber>,
    pub status: Status,
    /// Service number, assigned at approval.
    pub number: Option<FilingNumber>,
    pub submitted_at: i64,
    pub approved_at: Option<i64>,
    /// Annual-review deadline: one year after the last approval.
    pub expires_at: Option<i64>,
    /// Serial of the last certificate issued (0: none). Grows with every re-issue.
    pub cert_serial: u64,
    pub certificate: Option<IssuedCert>,
    pub pending_change: Option<PendingChange>,
    pub cancellation: Option<CancellationRequest>,
    /// The last rejection reason.
    pub rejection: Option<String>,
    pub history: Vec<HistoryEntry>,
    /// A pending annual-review (renewal) request.
    #[serde(default)]
    pub renewal: Option<RenewalRequest>,
    /// When it was revoked because its data was false (published on the public list).
    #[serde(default)]
    pub false_information: Option<i64>,
    /// An APP's package name or a mini-program's app id (in place of domains).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    /// The service offers interactive bulletin services (电子公告): the special filing, reviewed
    /// by a special-content user before the bureau approves. `None`: not declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulletin_board: Option<BulletinBoard>,
}

/// The special filing for bulletin-board (电子公告) services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulletinBoard {
    pub declared_at: i64,
    /// The special-content user's review: confirmed, or refused with a reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<PreApprovalCheck>,
}

impl Filing {
    /// Operating (经营性) services hold a licence.
    pub fn operating(&self) -> bool {
        self.operating_licence.is_some()
    }

    /// An approved filing with no access provider left (空壳), listed for cleanup (rule 7).
    pub fn is_empty_shell(&self) -> bool {
        self.status == Status::Active && self.providers.is_empty()
    }

    /// Whether the bureau has something to review on this filing: a new submission, a change,
    /// or a cancellation request.
    pub fn in_review_queue(&self) -> bool {
        self.status == Status::AwaitingReview
            || (self.status == Status::Active
                && (self.pending_change.is_some()
                    || self.cancellation.is_some()
                    || self.renewal.is_some()))
    }

    /// Whether the annual review is due at `now` (rule 5).
    pub fn annual_review_due(&self, now: i64) -> bool {
        self.status == Status::Active && self.expires_at.is_some_and(|e| now >= e)
    }

    /// The status word shown to users, including a pending request.
    pub fn status_label(&self) -> &'static str {
        if self.status == Status::Active {
            if self.cancellation.is_some() {
                return "cancellation_requested";
            }
            if self.pending_change.is_some() {
                return "change_under_review";
            }
            if self.renewal.is_some() {
                return "renewal_under_review";
            }
        }
        self.status.as_str()
    }

    /// [`Filing::status_label`] at `now`: an active filing past its annual review, with
    /// nothing pending, is `annual_review_overdue`.
    pub fn status_label_at(&self, now: i64) -> &'static str {
        match self.status_label() {
            "active" if self.annual_review_due(now) => "annual_review_overdue",
            other => other,
        }
    }

    /// The filing state a certificate verifier sees, for filings that were ever approved.
    pub fn cert_state(&self) -> Option<crate::cert::FilingState> {
        use crate::cert::FilingState;
        match self.status {
            _ if self.number.is_none() => None,
            Status::Active => Some(FilingState::Active),
            Status::Cancelled => Some(FilingState::Cancelled),
            Status::Revoked => Some(FilingState::Revoked),
            _ => None,
        }
    }
}

// ---- IP filings (address blocks reported by access providers) ----

/// Internal id of an IP filing (stable, never reused).
pub type IpFilingId = u64;

/// What a reported address block is used for.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum IpBlockStatus {
    /// Held by the provider, not in use: needs no further fields.
    Unallocated,
    /// Allocated and in use (by the provider itself or one of its users).
    Allocated,
    /// Re-allocated to another ISP (named in `allocated_to`), which hosts on it.
    Reallocated,
    /// A customer's own addresses, accessed through the provider.
    Customer,
    /// Router port (interconnect) addresses of the provider.
    RouterPort,
}

impl IpBlockStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Every status, in the order the templates list them.
    pub const ALL: &'static [IpBlockStatus] = <IpBlockStatus as strum::VariantArray>::VARIANTS;

    /// The label the IP-filing template uses.
    pub fn label_zh(self) -> &'static str {
        match self {
            IpBlockStatus::Unallocated => "未分配",
            IpBlockStatus::Allocated => "已分配",
            IpBlockStatus::Reallocated => "再分配",
            IpBlockStatus::Customer => "客户自带",
            IpBlockStatus::RouterPort => "路由器端口",
        }
    }
}

impl std::str::FromStr for IpBlockStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        crate::names::by_name(&s.replace('-', "_"))
            .or_else(|| Self::ALL.iter().copied().find(|v| v.label_zh() == s))
            .ok_or_else(|| {
                let zh: Vec<&str> = Self::ALL.iter().map(|v| v.label_zh()).collect();
                format!(
                    "{s:?} is not a block status ({}; or {})",
                    crate::names::listed::<Self>(),
                    zh.join(", ")
                )
            })
    }
}

/// One reported address block (IP 地址备案).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpFiling {
    pub id: IpFilingId,
    /// The block, host bits zero.
    pub network: ipnet::IpNet,
    /// The ISP holding (and, unless re-allocated, using) the block.
    pub provider: String,
    /// Where the provider got it: `APNIC`, `CNNIC`, another ISP's name, …
    pub source: Option<String>,
    pub status: IpBlockStatus,
    /// To whom it is allocated: a user, a customer, or (re-allocated) the other ISP.
    pub allocated_to: Option<String>,
    /// Where it is used: province abbreviation and city.
    pub province: Option<char>,
    pub city: Option<String>,
    pub reported_by: Actor,
    pub reported_at: i64,
}

impl IpFiling {
    /// The access provider actually hosting on the block: the ISP it was re-allocated to for
    /// re-allocated blocks, the reporting ISP otherwise; `None` for an unallocated block.
    pub fn hosting_provider(&self) -> Option<&str> {
        match self.status {
            IpBlockStatus::Unallocated => None,
            IpBlockStatus::Reallocated => self.allocated_to.as_deref(),
            _ => Some(self.provider.as_str()),
        }
    }
}
