//! The per-target JSON Lines record: what was judged and the evidence it rests on.

use std::net::IpAddr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use crate::extract::Via;
use crate::observation::{DnsObservation, FetchRecord, Observation, RenderRecord};
use crate::verdict::{Assessment, CertStatus, Fine, Streaks};

/// One finding in a record, with what the policy in force says about it: enough for a
/// regulator to act on the record alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFinding {
    pub code: String,
    pub severity: String,
    /// E.g. `292 Art.12; 292 Art.22`.
    #[serde(default)]
    pub legal_basis: String,
    #[serde(default)]
    pub action: String,
    /// The legal basis and action in Chinese, when the policy gives them (records written
    /// before they existed have none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub legal_basis_zh: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub action_zh: String,
    /// The fine range and/or text, when the policy gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fine: Option<Fine>,
    /// `confirmed`, or `pending k/N` until the finding has been seen in the N consecutive
    /// scans its policy asks for. Records written before confirmations existed read as
    /// `confirmed`.
    #[serde(default = "confirmed")]
    pub confirmation: String,
    /// Consecutive completed scans that showed this finding, this one included.
    #[serde(default = "super::one")]
    pub seen: u32,
    /// Consecutive scans the policy asks for before the finding is confirmed.
    #[serde(default = "super::one")]
    pub confirmations: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn confirmed() -> String {
    "confirmed".to_string()
}

impl RecordFinding {
    pub fn is_confirmed(&self) -> bool {
        self.seen >= self.confirmations
    }
}

/// One ICP number as the footer showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordIcp {
    pub number: String,
    pub linked: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_host: Option<String>,
    pub in_footer: bool,
    /// `template` (read from `<template>` content) or `rendered` (read from the DOM after
    /// rendering); omitted for ordinary page text.
    #[serde(default, skip_serializing_if = "Via::is_text")]
    pub via: Via,
}

/// What the homepage showed (canonical forms).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordNumbers {
    pub icp: Vec<RecordIcp>,
    pub licences: Vec<String>,
    pub psb: Vec<String>,
}

/// The certificate outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordCert {
    /// A [`CertStatus`] name (`valid`, `missing`, `superseded`, …).
    pub status: String,
    /// The service number the certificate carries, when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The serial of a genuine certificate (whatever its status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<u64>,
}

/// The facts behind the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// DNS answers, the address used, blocked answers, error, timing.
    pub dns: DnsObservation,
    /// The address used for the first connection.
    #[serde(default)]
    pub address: Option<IpAddr>,
    /// Whether any answer (or redirect target) was refused by the address guard.
    pub blocked: bool,
    /// Homepage fetches (https, then http): hops, status, bytes, timings, errors.
    pub homepage: Vec<FetchRecord>,
    #[serde(default)]
    pub homepage_used: Option<usize>,
    #[serde(default)]
    pub charset: Option<String>,
    /// The `/cert/bazs.cert` fetch (without the body).
    #[serde(default)]
    pub cert: Option<FetchRecord>,
    /// The `/cert/bazx.cert` probe, when made.
    #[serde(default)]
    pub cert_misplaced: Option<FetchRecord>,
    /// Rendering in headless Chromium, when the static page could not decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<RenderRecord>,
    pub elapsed_ms: u64,
}

/// One JSON Lines record: one target's verdict, findings, numbers, certificate and evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanRecord {
    pub target: String,
    pub host: String,
    /// `compliant`, `noncompliant`, `unfiled` or `unknown`.
    pub verdict: String,
    /// Why the verdict is `unknown` (`dns`, `tls`, `http_403`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub findings: Vec<RecordFinding>,
    /// For an `unknown` verdict: the finding streaks (code → consecutive scans) carried
    /// over from the last scan that judged the target, so that a scan which could not check
    /// the site neither confirms nor resets them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub streaks: BTreeMap<String, u32>,
    /// The address guard was relaxed for this scan (`--allow-private` / `--allow-net`):
    /// private and special-purpose addresses may have been visited.
    #[serde(default)]
    pub allow_private: bool,
    /// The service number of the filing covering the host, when known.
    #[serde(default)]
    pub filing: Option<String>,
    /// The filing's province abbreviation, when known.
    #[serde(default)]
    pub province: Option<String>,
    pub numbers: RecordNumbers,
    pub cert: RecordCert,
    pub evidence: Evidence,
    pub policy_sha256: String,
    /// Seconds between the registry snapshot judged against and the target's scan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_age_s: Option<i64>,
    /// RFC 3339 (UTC) time the target's scan started.
    pub scanned_at: String,
}

/// RFC 3339 UTC with seconds; out-of-range times fall back to the epoch.
pub(crate) fn rfc3339(unix: i64) -> String {
    DateTime::<Utc>::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl ScanRecord {
    /// Build the record of one target from what was seen and how it was judged (with
    /// [`Assessment::confirm`] already applied). `prior` is the target's streaks from the
    /// last scan that judged it; an `unknown` record carries them forward.
    pub fn new(obs: &Observation, a: &Assessment, prior: Option<&Streaks>) -> ScanRecord {
        let page = obs.page.as_ref();
        let numbers = RecordNumbers {
            icp: page
                .map(|p| {
                    p.icp
                        .iter()
                        .map(|m| RecordIcp {
                            number: m.number.to_string(),
                            linked: m.linked,
                            link_host: m.link_host.clone(),
                            in_footer: m.in_footer,
                            via: m.via,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            licences: page
                .map(|p| p.licences.iter().map(|l| l.to_string()).collect())
                .unwrap_or_default(),
            psb: page
                .map(|p| p.psb.iter().map(|n| n.to_string()).collect())
                .unwrap_or_default(),
        };
        let cert = RecordCert {
            status: a.cert_status.as_str().to_string(),
            number: if a.cert_status == CertStatus::Valid {
                a.cert_number.as_ref().map(|n| n.to_string())
            } else {
                None
            },
            serial: a.cert_serial,
        };
        let blocked = !obs.dns.blocked.is_empty()
            || obs
                .homepage
                .iter()
                .chain(obs.cert.iter().map(|c| &c.fetch))
                .chain(obs.cert_misplaced.iter().map(|c| &c.fetch))
                .any(|r| {
                    r.error.as_ref().is_some_and(|e| {
                        e.kind == crate::observation::FetchErrorKind::BlockedAddress
                    })
                });
        ScanRecord {
            target: a.target.clone(),
            host: a.host.clone(),
            verdict: a.verdict.as_str().to_string(),
            reason: a.verdict.reason().map(|r| r.as_str().to_string()),
            findings: a
                .findings
                .iter()
                .map(|f| RecordFinding {
                    code: f.code.as_str().to_string(),
                    severity: f.severity.as_str().to_string(),
                    legal_basis: f.legal_basis.clone(),
                    action: f.action.clone(),
                    legal_basis_zh: f.legal_basis_zh.clone(),
                    action_zh: f.action_zh.clone(),
                    fine: (f.fine != Fine::default()).then(|| f.fine.clone()),
                    confirmation: f.confirmation(),
                    seen: f.seen,
                    confirmations: f.confirmations,
                    message: f.message.clone(),
                })
                .collect(),
            streaks: match a.verdict {
                crate::verdict::Verdict::Unknown(_) => a
                    .streaks(prior)
                    .into_iter()
                    .map(|(c, k)| (c.as_str().to_string(), k))
                    .collect(),
                _ => BTreeMap::new(),
            },
            allow_private: obs.allow_private,
            filing: a.filing.as_ref().map(|n| n.to_string()),
            province: a.province.map(|c| c.to_string()),
            numbers,
            cert,
            evidence: Evidence {
                dns: obs.dns.clone(),
                address: obs.dns.used,
                blocked,
                homepage: obs.homepage.clone(),
                homepage_used: obs.homepage_used,
                charset: obs.charset.clone(),
                cert: obs.cert.as_ref().map(|c| c.fetch.clone()),
                cert_misplaced: obs.cert_misplaced.as_ref().map(|c| c.fetch.clone()),
                render: obs.render.clone(),
                elapsed_ms: obs.elapsed_ms,
            },
            policy_sha256: a.policy_sha256.clone(),
            snapshot_age_s: None,
            scanned_at: rfc3339(obs.started_at),
        }
    }

    /// Confirm this record's findings against `prior` (the target's streaks from the last
    /// completed scan), as [`crate::verdict::Assessment::confirm`] does for an assessment:
    /// each finding's consecutive count is the prior count plus one; an `unknown` record
    /// carries the prior streaks forward. Used when records judged without history (sharded
    /// scans) are joined into one scan.
    pub fn confirm_with(&mut self, prior: Option<&Streaks>) {
        if self.verdict == "unknown" {
            self.streaks = prior
                .map(|p| {
                    p.iter()
                        .map(|(c, k)| (c.as_str().to_string(), *k))
                        .collect()
                })
                .unwrap_or_default();
            return;
        }
        for f in &mut self.findings {
            let before = crate::verdict::FindingCode::parse(&f.code)
                .and_then(|c| prior.and_then(|p| p.get(&c)).copied());
            f.seen = before.map_or(1, |k| k.saturating_add(1));
            f.confirmation = crate::verdict::confirmation_label(f.seen, f.confirmations);
        }
    }

    /// The finding codes, in record order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.findings.iter().map(|f| f.code.as_str())
    }
}
