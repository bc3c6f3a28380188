//! Judging one target: [`evaluate`] turns an
//! [`Observation`](crate::observation::Observation), the certificate verification result, the
//! registry [`Snapshot`](crate::registry::snapshot::Snapshot) and the [`PolicySet`] into an
//! [`Assessment`] — a [`Verdict`] plus findings with stable codes (DESIGN.md §4), each carrying
//! the policy's severity, legal basis and action — and [`Assessment::confirm`] counts each
//! finding's consecutive scans against its policy's confirmations ([`Streaks`]). Also owns the
//! policy files ([`policy`]). Pure: no network, disk or clock reads; time is passed in.

pub mod policy;

mod evaluate;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::number::FilingNumber;

pub use evaluate::{assess, evaluate};
pub use policy::{
    FindingRule, Fine, Policy, PolicyError, PolicySet, PolicySource, RequiredNumber, Severity,
};

/// Stable finding codes (DESIGN.md §4). The snake_case names are an interface: records,
/// policies and dashboards use them.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum FindingCode {
    Unfiled,
    FilingRevoked,
    CertMissing,
    CertMisplaced,
    CertMalformed,
    CertBadSignature,
    CertDomainMismatch,
    CertSuperseded,
    CertExpired,
    NumberMissing,
    NumberMismatch,
    NumberUnlinked,
    NumberMisplaced,
    LicenceMissing,
    AccessProviderMismatch,
}

impl FindingCode {
    /// Every code, in declaration order (`ALL[c as usize] == c`).
    pub const ALL: &'static [FindingCode] = <FindingCode as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The code named `s`, if any.
    pub fn parse(s: &str) -> Option<FindingCode> {
        FindingCode::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a target could not be judged.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum UnknownReason {
    /// The name did not resolve.
    Dns,
    /// Every address (or a redirect target) was in a special-purpose range.
    BlockedAddress,
    Connect,
    Tls,
    Timeout,
    /// The hard per-target deadline passed.
    Deadline,
    /// The connection was reset or closed before a complete response.
    Reset,
    /// The response head was larger than the client accepts.
    HeaderTooLarge,
    /// 401 or 403: forbidden, typically a WAF page.
    #[serde(rename = "http_403")]
    #[strum(serialize = "http_403")]
    Http403,
    /// 404 or 410 on the homepage.
    #[serde(rename = "http_404")]
    #[strum(serialize = "http_404")]
    Http404,
    /// Another 4xx status.
    #[serde(rename = "http_4xx")]
    #[strum(serialize = "http_4xx")]
    Http4xx,
    /// 429, or a 503 with `Retry-After`: the site asked the scanner to slow down.
    RateLimited,
    /// A 5xx response.
    #[serde(rename = "http_5xx")]
    #[strum(serialize = "http_5xx")]
    Http5xx,
    TooManyRedirects,
    /// A redirect chain came back to a URL it had already visited.
    RedirectLoop,
    /// A redirect to a non-http(s) scheme or an unparseable location.
    BadRedirect,
    /// The homepage answered 200 with a WAF / bot-challenge page or no text at all.
    Challenge,
    /// The homepage is built by scripts (or shows its footer only through `<template>`)
    /// and could not be rendered.
    NeedsRender,
    /// The homepage was judged, but `/cert/bazs.cert` answered neither 200 nor 404 (403,
    /// 5xx, reset, timeout, broken response), so the certificate check was not made.
    CertUnreachable,
    /// Anything else: broken or oversized homepages, other protocol failures.
    Other,
}

impl UnknownReason {
    pub const ALL: &'static [UnknownReason] = <UnknownReason as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for UnknownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A site's overall verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case", tag = "verdict", content = "reason")]
pub enum Verdict {
    /// Fetched, covered by an active filing, and no finding above `info`.
    Compliant,
    /// Fetched, covered by an active filing, with at least one finding above `info`.
    Noncompliant,
    /// Fetched (2xx), and no active filing covers the host.
    Unfiled,
    /// Not fetched: no judgement is possible.
    Unknown(UnknownReason),
}

impl Verdict {
    /// `compliant`, `noncompliant`, `unfiled` or `unknown`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn reason(self) -> Option<UnknownReason> {
        match self {
            Verdict::Unknown(r) => Some(r),
            _ => None,
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Unknown(r) => write!(f, "unknown ({r})"),
            v => f.write_str(v.as_str()),
        }
    }
}

/// One finding, with what the applicable policy says about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub code: FindingCode,
    pub severity: Severity,
    pub legal_basis: String,
    pub action: String,
    /// The policy's Chinese legal basis and action (empty when it gives none).
    pub legal_basis_zh: String,
    pub action_zh: String,
    pub fine: Fine,
    /// Consecutive scans needed before this finding alerts.
    pub confirmations: u32,
    /// Consecutive completed scans of the target that showed this finding, this one
    /// included (1 until [`Assessment::confirm`] applies the history).
    pub seen: u32,
    /// What was seen (may quote numbers read from the site: records only, never labels).
    pub message: String,
}

impl Finding {
    /// Seen in as many consecutive scans as the policy asks for.
    pub fn is_confirmed(&self) -> bool {
        self.seen >= self.confirmations
    }

    /// `confirmed`, or `pending k/N`.
    pub fn confirmation(&self) -> String {
        confirmation_label(self.seen, self.confirmations)
    }
}

/// `confirmed` when `seen >= needed`, else `pending seen/needed`.
pub fn confirmation_label(seen: u32, needed: u32) -> String {
    if seen >= needed {
        "confirmed".to_string()
    } else {
        format!("pending {seen}/{needed}")
    }
}

/// For one target: how many consecutive completed scans showed each finding code, as of the
/// last scan that judged it. An `unknown` result neither confirms nor resets a finding (the
/// site could not be checked), so it carries these counts forward unchanged.
pub type Streaks = std::collections::BTreeMap<FindingCode, u32>;

/// What was found at the certificate paths, in one word.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CertStatus {
    /// No certificate probe in the observation (or the site was not fetched).
    NotProbed,
    /// The probe failed for a reason that says nothing about the file (timeout, 403, 5xx, …).
    Unreachable,
    /// A body was fetched but no verification result was supplied.
    NotVerified,
    Missing,
    Misplaced,
    Malformed,
    BadSignature,
    UnknownKey,
    CompromisedKey,
    DomainNotCovered,
    Superseded,
    Expired,
    FilingRevoked,
    FilingUnknown,
    Valid,
}

impl CertStatus {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The judgement of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    pub target: String,
    pub host: String,
    pub verdict: Verdict,
    /// In [`FindingCode`] order, each code at most once.
    pub findings: Vec<Finding>,
    /// The service number of the filing covering the host (also when cancelled/revoked).
    pub filing: Option<FilingNumber>,
    /// The filing's primary province abbreviation.
    pub province: Option<char>,
    pub cert_status: CertStatus,
    /// The service number a genuine certificate carries (whatever its status).
    pub cert_number: Option<FilingNumber>,
    pub cert_serial: Option<u64>,
    /// The province whose policy override applied (`None`: national).
    pub policy_province: Option<char>,
    /// [`Policy::sha256`] of the policy applied.
    pub policy_sha256: String,
    /// Unix seconds passed to `evaluate`.
    pub assessed_at: i64,
}

impl Assessment {
    /// Apply the history: each finding seen in the previous scan that judged this target
    /// continues its streak; any other starts at 1. A finding absent now is dropped from the
    /// streaks (it resets).
    pub fn confirm(&mut self, prior: Option<&Streaks>) {
        for f in &mut self.findings {
            f.seen = prior
                .and_then(|p| p.get(&f.code))
                .map_or(1, |k| k.saturating_add(1));
        }
    }

    /// The streaks this assessment leaves for the next scan: its own findings when judged;
    /// for an `unknown` verdict, `prior` carried forward unchanged.
    pub fn streaks(&self, prior: Option<&Streaks>) -> Streaks {
        match self.verdict {
            Verdict::Unknown(_) => prior.cloned().unwrap_or_default(),
            _ => self.findings.iter().map(|f| (f.code, f.seen)).collect(),
        }
    }

    /// Whether the assessment has a finding with this code.
    pub fn has(&self, code: FindingCode) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// The codes, in order.
    pub fn codes(&self) -> Vec<FindingCode> {
        self.findings.iter().map(|f| f.code).collect()
    }

    /// The highest severity among the findings.
    pub fn max_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}
