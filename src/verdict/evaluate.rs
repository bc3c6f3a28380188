//! `evaluate`: observation + certificate result + snapshot + policy → assessment.
//!
//! Order of judgement:
//! 1. Was the homepage fetched (a 2xx final response with no error)? If not, the verdict is
//!    `unknown` with a reason taken from DNS, the address guard, or the most informative
//!    homepage fetch — never `unfiled`.
//! 2. Which filing covers the host (`Snapshot::lookup_host`; IP-literal hosts are matched
//!    against the filings' IPs)? None → `unfiled`. Cancelled/revoked → verdict `unfiled` with
//!    the finding `filing_revoked`.
//!    The 2xx page must be the site: a WAF / bot-challenge page or a page with no text is
//!    `unknown (challenge)`.
//! 3. For an active filing: certificate, footer numbers, licence, access provider. Any finding
//!    above `info` makes the site `noncompliant`.
//! 4. No silent pass: `compliant` and `unfiled` need every check made. A certificate path
//!    that answered neither 200 nor 404/410 (403, 5xx, reset, timeout, broken response) makes
//!    the site `unknown (cert_unreachable)`, and a page built by scripts that could not be
//!    rendered makes it `unknown (needs_render)` — unless other findings already make it
//!    `noncompliant`. An `unknown` assessment carries no findings.

use std::net::IpAddr;

use crate::cert::{CertPayload, CertVerdict, FilingLookup, FilingState, Keyring};
use crate::extract::{Extraction, IcpMention};
use crate::number::{primary_province, FilingNumber, LicenceNumber};
use crate::observation::{CertFetch, FetchErrorKind, FetchRecord, Observation, RenderStatus};
use crate::registry::snapshot::{Snapshot, SnapshotFiling};

use super::{
    Assessment, CertStatus, Finding, FindingCode, Policy, PolicySet, RequiredNumber, Severity,
    UnknownReason, Verdict,
};

/// The host the filing system lives at now.
pub const CURRENT_LINK_HOST: &str = "beian.miit.gov.cn";
/// Older hosts of the same system, still common on real pages.
pub const LEGACY_LINK_HOSTS: &[&str] = &[
    "www.beian.miit.gov.cn",
    "www.miibeian.gov.cn",
    "www.miitbeian.gov.cn",
    "miibeian.gov.cn",
    "miitbeian.gov.cn",
];

/// Judge one target. `cert` is the verification result of the `/cert/bazs.cert` body (`None`
/// when no body was fetched). `now` is unix seconds.
pub fn evaluate(
    obs: &Observation,
    cert: Option<&CertVerdict>,
    snapshot: &Snapshot,
    policies: &PolicySet,
    now: i64,
) -> Assessment {
    let filing = find_filing(snapshot, &obs.host);
    let province = filing.map(|f| primary_province(f.province).unwrap_or(f.province));
    let policy = policies.for_province(province);
    let cert_outcome = judge_cert(obs, cert, filing);

    let mut a = Assessment {
        target: obs.target.clone(),
        host: obs.host.clone(),
        verdict: Verdict::Unknown(UnknownReason::Other),
        findings: Vec::new(),
        filing: filing.map(|f| f.service_number.clone()),
        province,
        cert_status: cert_outcome.status,
        cert_number: cert_outcome.payload.map(|p| p.service_number.clone()),
        cert_serial: cert_outcome.payload.map(|p| p.serial),
        policy_province: policy.province,
        policy_sha256: policy.sha256.clone(),
        assessed_at: now,
    };

    if let Err(reason) = homepage_fetched(obs) {
        a.verdict = Verdict::Unknown(reason);
        return a;
    }

    // The homepage answered 2xx; was it the site, and could its footer be read?
    let Some(page) = obs.page.as_ref() else {
        // Extraction was not run (or failed): the footer checks were not made.
        a.verdict = Verdict::Unknown(UnknownReason::Other);
        return a;
    };
    if page.facts.challenge.is_some() {
        a.verdict = Verdict::Unknown(UnknownReason::Challenge);
        return a;
    }
    let footer = footer_state(obs, page);
    if footer == FooterState::Blank {
        a.verdict = Verdict::Unknown(UnknownReason::Challenge);
        return a;
    }
    let cert_checked = cert_outcome.checked;
    let mut found: Vec<(FindingCode, String)> = Vec::new();

    match filing {
        None => {
            a.verdict = Verdict::Unfiled;
            found.push((
                FindingCode::Unfiled,
                format!("no filing covers {}", obs.host),
            ));
            if !page.icp.is_empty() {
                found.push((
                    FindingCode::NumberMismatch,
                    format!(
                        "the homepage shows {} but no filing covers {}",
                        list_numbers(&page.icp),
                        obs.host
                    ),
                ));
            }
            push_cert_finding_unfiled(&mut found, cert_outcome.finding);
        }
        Some(f) if f.state != FilingState::Active => {
            a.verdict = Verdict::Unfiled;
            found.push((
                FindingCode::FilingRevoked,
                format!(
                    "filing {} covering {} is {}, yet the site is up",
                    f.service_number,
                    obs.host,
                    state_word(f.state)
                ),
            ));
            if page.icp.iter().any(|m| !names_filing(&m.number, f)) {
                found.push((
                    FindingCode::NumberMismatch,
                    format!(
                        "the homepage shows {}; the host's filing {} is {}",
                        list_numbers(&page.icp),
                        f.service_number,
                        state_word(f.state)
                    ),
                ));
            }
            push_cert_finding_unfiled(&mut found, cert_outcome.finding);
        }
        Some(f) => {
            if let Some(cf) = cert_outcome.finding {
                found.push(cf);
            }
            if footer == FooterState::Read {
                judge_numbers(&mut found, page, f, policy);
                judge_licence(&mut found, page, f);
            }
            judge_provider(&mut found, obs, snapshot, f);
        }
    }

    found.sort_by_key(|(c, _)| *c);
    found.dedup_by_key(|(c, _)| *c);
    a.findings = found
        .into_iter()
        .map(|(code, message)| make_finding(policy, code, message))
        .collect();
    let noncompliant = a.findings.iter().any(|f| f.severity > Severity::Info);
    a.verdict = if a.verdict == Verdict::Unfiled {
        // `unfiled` is a judgement about a site that was seen in full: a certificate path
        // that could not be read may hold what says otherwise.
        if cert_checked {
            Verdict::Unfiled
        } else {
            Verdict::Unknown(UnknownReason::CertUnreachable)
        }
    } else if noncompliant {
        Verdict::Noncompliant
    } else if !cert_checked {
        Verdict::Unknown(UnknownReason::CertUnreachable)
    } else if footer == FooterState::NeedsRender {
        Verdict::Unknown(UnknownReason::NeedsRender)
    } else {
        Verdict::Compliant
    };
    if matches!(a.verdict, Verdict::Unknown(_)) {
        // No judgement: findings of a partial check are not reported.
        a.findings.clear();
    }
    a
}

/// Whether the homepage's footer could be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FooterState {
    /// The (static or rendered) page was read: its numbers decide.
    Read,
    /// The static page is built by scripts (or shows its text only through `<template>`)
    /// and shows no ICP number, and it was not rendered: number and licence checks are not
    /// made.
    NeedsRender,
    /// The page shows no text at all (an empty body or a blank challenge page).
    Blank,
}

fn footer_state(obs: &Observation, page: &Extraction) -> FooterState {
    let rendered = obs
        .render
        .as_ref()
        .is_some_and(|r| r.status == RenderStatus::Rendered);
    if !rendered && page.needs_render() && page.icp.is_empty() {
        return FooterState::NeedsRender;
    }
    let shows_something = page.facts.text_chars > 0
        || !page.icp.is_empty()
        || !page.licences.is_empty()
        || !page.psb.is_empty();
    if shows_something {
        FooterState::Read
    } else if rendered || page.facts.scripts == 0 {
        FooterState::Blank
    } else {
        FooterState::NeedsRender
    }
}

/// Verify the certificate body (if one was fetched) with `verify` — plug in `cert::verify` —
/// against the snapshot's keyring, then [`evaluate`].
pub fn assess<F>(
    obs: &Observation,
    snapshot: &Snapshot,
    policies: &PolicySet,
    now: i64,
    verify: F,
) -> Assessment
where
    F: Fn(&[u8], &Keyring, &str, &dyn FilingLookup, i64) -> CertVerdict,
{
    let verdict = obs
        .cert
        .as_ref()
        .filter(|c| c.fetch.error.is_none() && is_2xx(c.fetch.status))
        .and_then(|c| c.body.as_deref())
        .map(|body| verify(body, &snapshot.keyring, &obs.host, snapshot, now));
    evaluate(obs, verdict.as_ref(), snapshot, policies, now)
}

fn make_finding(policy: &Policy, code: FindingCode, message: String) -> Finding {
    let rule = policy.rule(code);
    Finding {
        code,
        severity: rule.severity,
        legal_basis: rule.legal_basis.clone(),
        action: rule.action.clone(),
        legal_basis_zh: rule.legal_basis_zh.clone().unwrap_or_default(),
        action_zh: rule.action_zh.clone().unwrap_or_default(),
        fine: rule.fine.clone(),
        confirmations: rule.confirmations,
        seen: 1,
        message,
    }
}

fn state_word(s: FilingState) -> &'static str {
    match s {
        FilingState::Active => "active",
        FilingState::Cancelled => "cancelled",
        FilingState::Revoked => "revoked",
    }
}

fn is_2xx(status: Option<u16>) -> bool {
    matches!(status, Some(200..=299))
}

fn reason_of_error(kind: FetchErrorKind) -> UnknownReason {
    match kind {
        FetchErrorKind::Dns => UnknownReason::Dns,
        FetchErrorKind::BlockedAddress => UnknownReason::BlockedAddress,
        FetchErrorKind::Connect => UnknownReason::Connect,
        FetchErrorKind::Tls => UnknownReason::Tls,
        FetchErrorKind::Timeout => UnknownReason::Timeout,
        FetchErrorKind::Deadline => UnknownReason::Deadline,
        FetchErrorKind::TooManyRedirects => UnknownReason::TooManyRedirects,
        FetchErrorKind::RedirectLoop => UnknownReason::RedirectLoop,
        FetchErrorKind::BadRedirect => UnknownReason::BadRedirect,
        FetchErrorKind::Reset => UnknownReason::Reset,
        FetchErrorKind::HeaderTooLarge => UnknownReason::HeaderTooLarge,
        FetchErrorKind::BodyTooLarge | FetchErrorKind::Protocol => UnknownReason::Other,
    }
}

fn reason_of_record(r: &FetchRecord) -> UnknownReason {
    if let Some(e) = &r.error {
        return reason_of_error(e.kind);
    }
    match r.status {
        Some(401) | Some(403) => UnknownReason::Http403,
        Some(404) | Some(410) => UnknownReason::Http404,
        Some(429) => UnknownReason::RateLimited,
        Some(503) if r.retry_after.is_some() => UnknownReason::RateLimited,
        Some(500..=599) => UnknownReason::Http5xx,
        Some(400..=499) => UnknownReason::Http4xx,
        _ => UnknownReason::Other,
    }
}

/// `Ok` when a homepage fetch ended in 2xx without error; otherwise why not.
fn homepage_fetched(obs: &Observation) -> Result<(), UnknownReason> {
    let ok = |r: &FetchRecord| r.error.is_none() && is_2xx(r.status);
    if obs
        .homepage_used
        .and_then(|i| obs.homepage.get(i))
        .is_some_and(ok)
        || obs.homepage.iter().any(ok)
    {
        return Ok(());
    }
    // A response (even an error page) says more than a failed connection; the last one is
    // the fallback the scan ended with.
    if let Some(r) = obs.homepage.iter().rev().find(|r| r.status.is_some()) {
        return Err(reason_of_record(r));
    }
    if obs.dns.error.is_some() && obs.dns.answers.is_empty() {
        return Err(UnknownReason::Dns);
    }
    if obs.dns.used.is_none() && !obs.dns.blocked.is_empty() {
        return Err(UnknownReason::BlockedAddress);
    }
    match obs.homepage.last() {
        Some(r) => Err(reason_of_record(r)),
        None if obs.dns.answers.is_empty() => Err(UnknownReason::Dns),
        None => Err(UnknownReason::Other),
    }
}

/// The filing covering `host`: by registrable domain, or for an IP literal by filed IP (an
/// active filing wins). The IP case scans every filing.
fn find_filing<'a>(snapshot: &'a Snapshot, host: &str) -> Option<&'a SnapshotFiling> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        let mut found = None;
        for f in snapshot.filings.iter().filter(|f| f.ips.contains(&ip)) {
            if f.state == FilingState::Active {
                return Some(f);
            }
            found.get_or_insert(f);
        }
        return found;
    }
    snapshot.lookup_host(host)
}

struct CertOutcome<'a> {
    status: CertStatus,
    payload: Option<&'a CertPayload>,
    finding: Option<(FindingCode, String)>,
    /// Whether the certificate check was made: the path answered 200 (whatever the body,
    /// read in full) or an honest 404/410. A 403, 5xx, reset, timeout or broken response
    /// decides nothing, and neither does a body too large to read.
    checked: bool,
}

fn judge_cert<'a>(
    obs: &Observation,
    verdict: Option<&'a CertVerdict>,
    filing: Option<&SnapshotFiling>,
) -> CertOutcome<'a> {
    let out = |status, finding: Option<(FindingCode, String)>| CertOutcome {
        status,
        payload: None,
        finding,
        checked: !matches!(
            status,
            CertStatus::NotProbed | CertStatus::Unreachable | CertStatus::NotVerified
        ),
    };
    let Some(c) = &obs.cert else {
        return out(CertStatus::NotProbed, None);
    };
    let f = &c.fetch;
    if let Some(e) = &f.error {
        if e.kind == FetchErrorKind::BodyTooLarge {
            // A malformed certificate (a finding on a filed host), but not read in full: it
            // cannot settle that a host is unfiled.
            return CertOutcome {
                checked: false,
                ..out(
                    CertStatus::Malformed,
                    Some((
                        FindingCode::CertMalformed,
                        format!("{} is larger than the certificate size cap", c.path),
                    )),
                )
            };
        }
        return out(CertStatus::Unreachable, None);
    }
    if is_2xx(f.status) {
        if c.body.is_none() {
            return out(
                CertStatus::Malformed,
                Some((
                    FindingCode::CertMalformed,
                    format!(
                        "{} answered {} but no body within the cap",
                        c.path,
                        status_text(f)
                    ),
                )),
            );
        }
        return match verdict {
            Some(v) => judge_cert_verdict(v, &obs.host, filing),
            None => out(CertStatus::NotVerified, None),
        };
    }
    if matches!(f.status, Some(404) | Some(410)) {
        if let Some(m) = obs.cert_misplaced.as_ref().filter(|m| cert_present(m)) {
            return out(
                CertStatus::Misplaced,
                Some((
                    FindingCode::CertMisplaced,
                    format!(
                        "{} answered {}; a certificate was found at {}",
                        c.path,
                        status_text(f),
                        m.path
                    ),
                )),
            );
        }
        return out(
            CertStatus::Missing,
            Some((
                FindingCode::CertMissing,
                format!("{} answered {}", c.path, status_text(f)),
            )),
        );
    }
    out(CertStatus::Unreachable, None)
}

fn cert_present(c: &CertFetch) -> bool {
    c.fetch.error.is_none() && is_2xx(c.fetch.status)
}

fn status_text(f: &FetchRecord) -> String {
    f.status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "no status".into())
}

fn judge_cert_verdict<'a>(
    v: &'a CertVerdict,
    host: &str,
    filing: Option<&SnapshotFiling>,
) -> CertOutcome<'a> {
    let with = |status, payload: Option<&'a CertPayload>, code, msg: String| CertOutcome {
        status,
        payload,
        finding: Some((code, msg)),
        checked: true,
    };
    match v {
        CertVerdict::Valid { payload } => CertOutcome {
            status: CertStatus::Valid,
            payload: Some(payload),
            finding: None,
            checked: true,
        },
        CertVerdict::Malformed { reason } => with(
            CertStatus::Malformed,
            None,
            FindingCode::CertMalformed,
            format!("the certificate is malformed: {reason}"),
        ),
        CertVerdict::BadSignature { key_id } => with(
            CertStatus::BadSignature,
            None,
            FindingCode::CertBadSignature,
            format!("the signature does not verify under key {key_id}"),
        ),
        CertVerdict::UnknownKey { key_id } => with(
            CertStatus::UnknownKey,
            None,
            FindingCode::CertBadSignature,
            format!("signed by key {key_id}, which the registry keyring does not hold"),
        ),
        CertVerdict::CompromisedKey { key_id } => with(
            CertStatus::CompromisedKey,
            None,
            FindingCode::CertBadSignature,
            format!("signed by key {key_id}, which is marked compromised"),
        ),
        CertVerdict::DomainNotCovered { payload } => with(
            CertStatus::DomainNotCovered,
            Some(payload),
            FindingCode::CertDomainMismatch,
            format!(
                "the certificate of {} covers {}, not {host}",
                payload.service_number,
                payload.domains.join(", ")
            ),
        ),
        CertVerdict::Superseded {
            payload,
            current_serial,
        } => with(
            CertStatus::Superseded,
            Some(payload),
            FindingCode::CertSuperseded,
            format!(
                "certificate serial {} of {}; the current serial is {current_serial}",
                payload.serial, payload.service_number
            ),
        ),
        CertVerdict::FilingUnknown { payload } => with(
            CertStatus::FilingUnknown,
            Some(payload),
            FindingCode::CertSuperseded,
            format!(
                "the registry has no current certificate for {}",
                payload.service_number
            ),
        ),
        CertVerdict::Expired { payload } => with(
            CertStatus::Expired,
            Some(payload),
            FindingCode::CertExpired,
            format!(
                "the certificate of {} expired at {} (annual review overdue)",
                payload.service_number, payload.expires_at
            ),
        ),
        CertVerdict::FilingRevoked { payload, state } => {
            // A certificate of an earlier, revoked filing on a host that now has another
            // active filing is an old certificate, not a revoked site.
            let host_filing_active_and_other = filing.is_some_and(|f| {
                f.state == FilingState::Active && !f.service_number.same_as(&payload.service_number)
            });
            if host_filing_active_and_other {
                with(
                    CertStatus::FilingRevoked,
                    Some(payload),
                    FindingCode::CertSuperseded,
                    format!(
                        "the certificate is of {}, which is {}; the host is now filed as {}",
                        payload.service_number,
                        state_word(*state),
                        filing
                            .map(|f| f.service_number.to_string())
                            .unwrap_or_default()
                    ),
                )
            } else {
                with(
                    CertStatus::FilingRevoked,
                    Some(payload),
                    FindingCode::FilingRevoked,
                    format!(
                        "the certificate's filing {} is {}",
                        payload.service_number,
                        state_word(*state)
                    ),
                )
            }
        }
    }
}

/// On an unfiled host a missing certificate says nothing new; anything else found is kept.
fn push_cert_finding_unfiled(
    found: &mut Vec<(FindingCode, String)>,
    finding: Option<(FindingCode, String)>,
) {
    if let Some((code, msg)) = finding {
        if !matches!(code, FindingCode::CertMissing | FindingCode::CertMisplaced) {
            found.push((code, msg));
        }
    }
}

fn list_numbers(icp: &[IcpMention]) -> String {
    icp.iter()
        .map(|m| m.number.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `shown` names this filing (subject or service number).
fn names_filing(shown: &FilingNumber, f: &SnapshotFiling) -> bool {
    shown.same_as(&f.service_number) || shown.same_as(&f.subject_number)
}

/// Whether `shown` is a number the policy accepts for this filing.
fn accepts(required: RequiredNumber, shown: &FilingNumber, f: &SnapshotFiling) -> bool {
    match required {
        RequiredNumber::Service => !shown.is_subject() && shown.same_as(&f.service_number),
        RequiredNumber::Subject => shown.is_subject() && shown.same_as(&f.subject_number),
        RequiredNumber::Either => names_filing(shown, f),
    }
}

fn link_accepted(m: &IcpMention, policy: &Policy) -> bool {
    if !m.linked {
        return false;
    }
    match m.link_host.as_deref() {
        // Linked, host not recorded: extraction only marks MIIT links as linked.
        None => true,
        Some(h) => {
            let h = h.trim_end_matches('.').to_ascii_lowercase();
            h == CURRENT_LINK_HOST
                || (policy.accept_legacy_link_hosts && LEGACY_LINK_HOSTS.contains(&h.as_str()))
        }
    }
}

fn judge_numbers(
    found: &mut Vec<(FindingCode, String)>,
    page: &Extraction,
    f: &SnapshotFiling,
    policy: &Policy,
) {
    let wanted = match policy.required_number {
        RequiredNumber::Service => f.service_number.to_string(),
        RequiredNumber::Subject => f.subject_number.to_string(),
        RequiredNumber::Either => format!("{} or {}", f.service_number, f.subject_number),
    };
    if page.icp.is_empty() {
        found.push((
            FindingCode::NumberMissing,
            format!("no ICP filing number visible on the homepage (expected {wanted})"),
        ));
        return;
    }
    let matching: Vec<&IcpMention> = page
        .icp
        .iter()
        .filter(|m| accepts(policy.required_number, &m.number, f))
        .collect();
    if matching.is_empty() {
        let own_but_wrong_form = page.icp.iter().any(|m| names_filing(&m.number, f));
        let why = if own_but_wrong_form {
            format!(
                " (this filing's number, but the policy requires the {} number)",
                policy.required_number.as_str()
            )
        } else {
            String::new()
        };
        found.push((
            FindingCode::NumberMismatch,
            format!(
                "the homepage shows {}{why}; expected {wanted}",
                list_numbers(&page.icp)
            ),
        ));
        return;
    }
    if !matching.iter().any(|m| link_accepted(m, policy)) {
        let legacy: Vec<&str> = matching
            .iter()
            .filter(|m| m.linked)
            .filter_map(|m| m.link_host.as_deref())
            .collect();
        let msg = if legacy.is_empty() {
            format!(
                "{} is not linked to https://{CURRENT_LINK_HOST}/",
                matching[0].number
            )
        } else {
            format!(
                "{} links to {}, which this policy does not accept (link to https://{CURRENT_LINK_HOST}/)",
                matching[0].number,
                legacy.join(", ")
            )
        };
        found.push((FindingCode::NumberUnlinked, msg));
    }
    if !matching.iter().any(|m| m.in_footer) {
        found.push((
            FindingCode::NumberMisplaced,
            format!("{} is not in the footer region", matching[0].number),
        ));
    }
}

fn same_licence(a: &LicenceNumber, b: &LicenceNumber) -> bool {
    fn primary(l: &LicenceNumber) -> LicenceNumber {
        let p = |c: char| primary_province(c).unwrap_or(c);
        match l.clone() {
            LicenceNumber::Icp {
                province,
                digits,
                suffix,
            } => LicenceNumber::Icp {
                province: p(province),
                digits,
                suffix,
            },
            LicenceNumber::ValueAdded {
                province,
                class,
                digits,
                suffix,
            } => LicenceNumber::ValueAdded {
                province: province.map(p),
                class,
                digits,
                suffix,
            },
            unprefixed @ LicenceNumber::Unprefixed { .. } => unprefixed,
        }
    }
    /// A B1/B2 licence shown without its prefix names the same licence as the prefixed one.
    fn unprefixed(l: &LicenceNumber) -> Option<LicenceNumber> {
        match l.clone() {
            LicenceNumber::ValueAdded {
                class,
                digits,
                suffix,
                ..
            }
            | LicenceNumber::Unprefixed {
                class,
                digits,
                suffix,
            } => Some(LicenceNumber::Unprefixed {
                class,
                digits,
                suffix,
            }),
            LicenceNumber::Icp { .. } => None,
        }
    }
    if matches!(a, LicenceNumber::Unprefixed { .. })
        || matches!(b, LicenceNumber::Unprefixed { .. })
    {
        return unprefixed(a).is_some() && unprefixed(a) == unprefixed(b);
    }
    primary(a) == primary(b)
}

fn judge_licence(found: &mut Vec<(FindingCode, String)>, page: &Extraction, f: &SnapshotFiling) {
    if !f.operating {
        return;
    }
    let filed = f
        .licence
        .as_ref()
        .map(|l| format!(" (filed licence {l})"))
        .unwrap_or_default();
    if page.licences.is_empty() {
        found.push((
            FindingCode::LicenceMissing,
            format!("an operating service with no licence number on the homepage{filed}"),
        ));
        return;
    }
    if let Some(l) = &f.licence {
        if !page.licences.iter().any(|s| same_licence(s, l)) {
            let shown = page
                .licences
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ");
            found.push((
                FindingCode::LicenceMissing,
                format!("the homepage shows {shown}, not the filed licence {l}"),
            ));
        }
    }
}

fn judge_provider(
    found: &mut Vec<(FindingCode, String)>,
    obs: &Observation,
    snapshot: &Snapshot,
    f: &SnapshotFiling,
) {
    let Some(ip) = obs.dns.used else { return };
    let Some(provider) = snapshot.provider_of(ip) else {
        return;
    };
    if !f.providers.iter().any(|p| p == provider) {
        found.push((
            FindingCode::AccessProviderMismatch,
            format!(
                "{ip} is in a block of {provider}; filing {} names {}",
                f.service_number,
                if f.providers.is_empty() {
                    "no access provider".to_string()
                } else {
                    f.providers.join(", ")
                }
            ),
        ));
    }
}

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
