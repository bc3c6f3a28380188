//! Anonymous endpoints: is a domain filed, public filing information, code tables (with the
//! ISP list, and cities and counties by province), the public
//! keyring, the filer's self-check (`/api/check`, rate-limited per client, address guard on)
//! and the blackbox-style probe (`/probe`, Prometheus text within the scrape timeout).

use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{ApiPath, ApiQuery};
use super::{ApiError, ApiJson, Shared};
use crate::domain::Domain;
use crate::registry::model::{Filing, Subject};
use crate::registry::FilingKey;
use crate::verdict::{CertStatus, FindingCode, Verdict};

/// Parse a filing reference: an id, a filing number or a domain.
pub fn parse_key(text: &str) -> FilingKey {
    if let Ok(i) = text.trim().parse::<u64>() {
        return FilingKey::Id(i);
    }
    if let Ok(n) = crate::number::FilingNumber::parse(text) {
        return FilingKey::Number(n);
    }
    FilingKey::Domain(text.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainQuery {
    pub domain: String,
}

/// Whether a domain is filed.
#[derive(Debug, Serialize, Deserialize)]
pub struct Filed {
    /// The registrable domain the query resolved to.
    pub domain: String,
    pub filed: bool,
    pub service_number: Option<String>,
    pub subject_number: Option<String>,
}

#[utoipa::path(get, path = "/api/filed", tag = "public",
    params(("domain" = String, Query, description = "a host or domain")),
    responses((status = 200, description = "whether the domain is covered by an active filing")))]
pub async fn filed(
    State(state): State<Shared>,
    ApiQuery(q): ApiQuery<DomainQuery>,
) -> Result<ApiJson<Filed>, ApiError> {
    let dom = Domain::of_host(q.domain.trim())
        .map_err(|e| ApiError::invalid_field("domain", e.to_string()))?;
    let store = state.registry.store();
    use crate::registry::store::RegistryRead;
    let f = match store.filing_by_domain(&dom)? {
        Some(id) => store.filing(id)?,
        None => None,
    };
    let active = f.filter(|f| f.status == crate::registry::model::Status::Active);
    let number = active.as_ref().and_then(|f| f.number.clone());
    Ok(ApiJson(Filed {
        domain: dom.to_string(),
        filed: number.is_some(),
        service_number: number.as_ref().map(|n| n.to_string()),
        subject_number: number.as_ref().map(|n| n.subject_number().to_string()),
    }))
}

/// The public fields of a filing (no contacts, identity numbers or owner).
#[derive(Debug, Serialize, Deserialize)]
pub struct PublicFiling {
    pub service_number: String,
    pub subject_number: String,
    pub subject_name: String,
    pub subject_nature: String,
    pub province: String,
    pub name: String,
    pub homepage: String,
    pub domains: Vec<String>,
    pub status: String,
    pub operating_licence: Option<String>,
    pub approved_at: Option<i64>,
    pub expires_at: Option<i64>,
}

impl PublicFiling {
    /// Only numbered filings are public.
    pub fn new(f: &Filing, s: &Subject) -> Option<Self> {
        let n = f.number.as_ref()?;
        Some(PublicFiling {
            service_number: n.to_string(),
            subject_number: n.subject_number().to_string(),
            subject_name: s.name.clone(),
            subject_nature: s.nature.clone(),
            province: s.province.to_string(),
            name: f.name.clone(),
            homepage: f.homepage.clone(),
            domains: f.domains.iter().map(|d| d.to_string()).collect(),
            status: f.status_label().to_string(),
            operating_licence: f.operating_licence.as_ref().map(|l| l.to_string()),
            approved_at: f.approved_at,
            expires_at: f.expires_at,
        })
    }
}

#[utoipa::path(get, path = "/api/public/false-information", tag = "public",
    responses((status = 200, description = "filings revoked because their data was false, newest first (public fields only)")))]
pub async fn false_information(
    State(state): State<Shared>,
) -> Result<ApiJson<Vec<crate::registry::PublishedRevocation>>, ApiError> {
    super::blocking(move || Ok(ApiJson(state.registry.false_information_list()?))).await
}

#[utoipa::path(get, path = "/api/public/filings/{key}", tag = "public",
    params(("key" = String, Path, description = "a filing number or a domain")),
    responses((status = 200, description = "public fields of the filing"), (status = 404)))]
pub async fn public_filing(
    State(state): State<Shared>,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<PublicFiling>, ApiError> {
    let k = match parse_key(&key) {
        // Internal ids are not a public handle.
        FilingKey::Id(_) => {
            return Err(ApiError::invalid_field(
                "key",
                "expected a filing number or a domain",
            ))
        }
        k => k,
    };
    let (f, s) = state.registry.filing(&k)?;
    PublicFiling::new(&f, &s)
        .map(ApiJson)
        .ok_or_else(|| ApiError::NotFound {
            what: k.to_string(),
        })
}

/// Filings listed by a subject-name search at most.
pub const SUBJECT_SEARCH_LIMIT: usize = 50;
/// The longest subject-name fragment searched for (characters).
pub const SUBJECT_NAME_MAX: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectQuery {
    /// Part of the subject's (主办单位) name.
    pub name: String,
}

/// The active filings of the subjects whose name contains the fragment.
#[derive(Debug, Serialize, Deserialize)]
pub struct SubjectSearch {
    /// The fragment as searched for (trimmed).
    pub name: String,
    /// Public fields only, in subject order, at most `limit`.
    pub filings: Vec<PublicFiling>,
    pub limit: usize,
    /// Whether more filings match than are listed (narrow the name).
    pub more: bool,
}

/// Check a subject-name fragment: trimmed, at least
/// [`crate::registry::store::MIN_NAME_FRAGMENT`] characters, at most [`SUBJECT_NAME_MAX`].
pub fn valid_subject_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let n = crate::registry::store::normalise_name(name).chars().count();
    if n < crate::registry::store::MIN_NAME_FRAGMENT {
        return Err(ApiError::invalid_field(
            "name",
            format!(
                "at least {} characters of the subject's name",
                crate::registry::store::MIN_NAME_FRAGMENT
            ),
        ));
    }
    if name.chars().count() > SUBJECT_NAME_MAX {
        return Err(ApiError::invalid_field(
            "name",
            format!("at most {SUBJECT_NAME_MAX} characters"),
        ));
    }
    Ok(name.to_string())
}

#[utoipa::path(get, path = "/api/public/subjects", tag = "public",
    params(("name" = String, Query, description = "part of the subject's (主办单位) name, at least 2 characters; case and spaces are ignored")),
    responses((status = 200, description = "the active filings of the subjects whose name contains it (public fields only), at most 50, and whether more match"), (status = 400)))]
pub async fn subject_search(
    State(state): State<Shared>,
    ApiQuery(q): ApiQuery<SubjectQuery>,
) -> Result<ApiJson<SubjectSearch>, ApiError> {
    let name = valid_subject_name(&q.name)?;
    super::blocking(move || {
        let (found, more) = state
            .registry
            .active_filings_by_subject_name(&name, SUBJECT_SEARCH_LIMIT)?;
        Ok(ApiJson(SubjectSearch {
            filings: found
                .iter()
                .filter_map(|(f, s)| PublicFiling::new(f, s))
                .collect(),
            name,
            limit: SUBJECT_SEARCH_LIMIT,
            more,
        }))
    })
    .await
}

/// The code tables as served: the embedded tables and the registry's ISP list.
#[derive(Debug, Serialize)]
pub struct CodesView {
    #[serde(flatten)]
    pub tables: &'static crate::codes::CodeTables,
    /// The access providers with an ISP user (`add-provider` accepts only these).
    pub isps: Vec<String>,
    /// The announcement categories (`GET /api/announcements?category=`).
    pub announcement_categories: Vec<&'static str>,
}

#[utoipa::path(get, path = "/api/codes", tag = "public",
    responses((status = 200, description = "the code tables: provinces, natures, id types, access methods, server placements, content categories, service types, industries, the ISP list and announcement categories (cities and counties: /api/codes/regions)")))]
pub async fn codes(State(state): State<Shared>) -> Result<ApiJson<CodesView>, ApiError> {
    let isps = super::blocking(move || Ok(state.registry.isp_list()?)).await?;
    Ok(ApiJson(CodesView {
        tables: crate::codes::CodeTables::embedded(),
        isps,
        announcement_categories: super::announcements::AnnouncementCategory::ALL
            .iter()
            .map(|c| c.as_str())
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionQuery {
    /// A province abbreviation (京) or two-digit code (11).
    #[serde(default)]
    pub province: Option<String>,
}

#[utoipa::path(get, path = "/api/codes/regions", tag = "public",
    params(("province" = Option<String>, Query, description = "abbreviation (京) or code (11)")),
    responses((status = 200, description = "cities and counties (GB/T 2260): code, name, level, parent"), (status = 400)))]
pub async fn regions(
    super::error::ApiQuery(q): super::error::ApiQuery<RegionQuery>,
) -> Result<ApiJson<Vec<crate::codes::Region>>, ApiError> {
    let t = crate::codes::CodeTables::embedded();
    let regions = match q.province.as_deref().map(str::trim) {
        None | Some("") => t.regions().to_vec(),
        Some(p) => {
            let province = t.province(p).ok_or_else(|| {
                ApiError::invalid_field("province", "an abbreviation (京), code (11) or name")
            })?;
            t.regions_of(&province.code).cloned().collect()
        }
    };
    Ok(ApiJson(regions))
}

#[utoipa::path(get, path = "/api/keyring", tag = "public",
    responses((status = 200, description = "the registry's public keyring, in the same format as `beian keys export` writes (what `beian cert verify --keyring` and `scan --keyring` read)")))]
pub async fn keyring(State(state): State<Shared>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        state.registry.keyring().to_json(),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetQuery {
    pub target: String,
}

/// The self-check result: the scan record and the report in Chinese and English.
#[derive(Debug, Serialize)]
pub struct CheckResult {
    pub record: crate::report::ScanRecord,
    pub report: String,
}

pub fn valid_target(t: &str) -> Result<String, ApiError> {
    let t = t.trim();
    if t.is_empty() || t.len() > 2048 || t.chars().any(|c| c.is_control() || c == ' ') {
        return Err(ApiError::invalid_field(
            "target",
            "expected a domain or URL",
        ));
    }
    Ok(t.to_string())
}

#[utoipa::path(get, path = "/api/check", tag = "public",
    params(("target" = String, Query, description = "a domain or URL")),
    responses((status = 200, description = "the self-check record and report"), (status = 429)))]
pub async fn check(
    State(state): State<Shared>,
    ApiQuery(q): ApiQuery<TargetQuery>,
    ext: axum::http::Extensions,
) -> Result<ApiJson<CheckResult>, ApiError> {
    let target = valid_target(&q.target)?;
    state.check_rate(super::client_ip(&ext))?;
    let snapshot = state.snapshot();
    let ctx = crate::scan::ScanContext {
        prior: None,
        scanner: state.scanner.clone(),
        snapshot: snapshot.clone(),
        policies: state.policies.clone(),
    };
    let result = ctx.check(&target).await;
    let required = state
        .policies
        .for_province(result.assessment.province)
        .required_number
        .as_str();
    let report = crate::advice::render_report(&result, &snapshot, required);
    Ok(ApiJson(CheckResult {
        record: result.record,
        report,
    }))
}

/// The probe's figures for one site.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    pub success: bool,
    pub verdict: &'static str,
    pub cert_valid: bool,
    pub cert_expiry: Option<i64>,
    pub footer_match: bool,
    pub duration_seconds: f64,
}

/// The default probe budget when Prometheus sends no timeout header.
pub const PROBE_DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Kept free of the scrape timeout to write the answer.
pub const PROBE_MARGIN: Duration = Duration::from_millis(500);

/// The probe budget from `X-Prometheus-Scrape-Timeout-Seconds` minus a margin.
pub fn probe_budget(headers: &HeaderMap) -> Duration {
    let t = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| Duration::from_secs_f64(v.min(300.0)))
        .unwrap_or(PROBE_DEFAULT_TIMEOUT);
    t.saturating_sub(PROBE_MARGIN)
        .max(Duration::from_millis(100))
}

/// Prometheus text for a probe outcome; the verdict is one gauge per verdict value (1 for the
/// one that applies), from the closed set.
pub fn probe_text(o: &ProbeOutcome) -> String {
    use std::fmt::Write;
    let b = |v: bool| if v { 1 } else { 0 };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# HELP probe_success Whether the site was fetched and judged."
    );
    let _ = writeln!(s, "# TYPE probe_success gauge");
    let _ = writeln!(s, "probe_success {}", b(o.success));
    let _ = writeln!(s, "# HELP probe_duration_seconds How long the probe took.");
    let _ = writeln!(s, "# TYPE probe_duration_seconds gauge");
    let _ = writeln!(s, "probe_duration_seconds {}", o.duration_seconds);
    let _ = writeln!(
        s,
        "# HELP beian_probe_verdict The site's verdict (1 for the one that applies)."
    );
    let _ = writeln!(s, "# TYPE beian_probe_verdict gauge");
    for v in ["compliant", "noncompliant", "unfiled", "unknown"] {
        let _ = writeln!(
            s,
            "beian_probe_verdict{{verdict=\"{v}\"}} {}",
            b(o.verdict == v)
        );
    }
    let _ = writeln!(
        s,
        "# HELP beian_probe_cert_valid Whether /cert/bazs.cert verified for this host."
    );
    let _ = writeln!(s, "# TYPE beian_probe_cert_valid gauge");
    let _ = writeln!(s, "beian_probe_cert_valid {}", b(o.cert_valid));
    if let Some(e) = o.cert_expiry {
        let _ = writeln!(s, "# HELP beian_probe_cert_expiry_timestamp_seconds When the filing's certificate expires (annual review).");
        let _ = writeln!(s, "# TYPE beian_probe_cert_expiry_timestamp_seconds gauge");
        let _ = writeln!(s, "beian_probe_cert_expiry_timestamp_seconds {e}");
    }
    let _ = writeln!(
        s,
        "# HELP beian_probe_footer_number_match Whether the footer shows the filing's number."
    );
    let _ = writeln!(s, "# TYPE beian_probe_footer_number_match gauge");
    let _ = writeln!(s, "beian_probe_footer_number_match {}", b(o.footer_match));
    s
}

/// The metric names `/probe` exports.
pub const PROBE_METRIC_NAMES: &[&str] = &[
    "probe_success",
    "probe_duration_seconds",
    "beian_probe_verdict",
    "beian_probe_cert_valid",
    "beian_probe_cert_expiry_timestamp_seconds",
    "beian_probe_footer_number_match",
];

fn outcome(
    result: &crate::scan::TargetResult,
    snapshot: &crate::registry::snapshot::Snapshot,
    secs: f64,
) -> ProbeOutcome {
    let a = &result.assessment;
    let cert_valid = a.cert_status == CertStatus::Valid;
    let cert_expiry = result
        .observation
        .cert
        .iter()
        .filter_map(|c| c.body.as_deref())
        .find_map(|b| crate::cert::parse(b).ok())
        .map(|c| c.payload.expires_at)
        .or_else(|| {
            a.filing
                .as_ref()
                .and_then(|n| snapshot.lookup_number(n))
                .and_then(|f| f.expires_at)
        });
    ProbeOutcome {
        success: !matches!(a.verdict, Verdict::Unknown(_)),
        verdict: match a.verdict {
            Verdict::Compliant => "compliant",
            Verdict::Noncompliant => "noncompliant",
            Verdict::Unfiled => "unfiled",
            Verdict::Unknown(_) => "unknown",
        },
        cert_valid,
        cert_expiry,
        footer_match: a.filing.is_some()
            && !matches!(a.verdict, Verdict::Unknown(_))
            && !a.has(FindingCode::NumberMissing)
            && !a.has(FindingCode::NumberMismatch),
        duration_seconds: secs,
    }
}

#[utoipa::path(get, path = "/probe", tag = "public",
    params(("target" = String, Query, description = "the domain to probe")),
    responses((status = 200, description = "Prometheus text: probe_success, beian_probe_verdict, beian_probe_cert_valid, beian_probe_cert_expiry_timestamp_seconds, beian_probe_footer_number_match")))]
pub async fn probe(
    State(state): State<Shared>,
    ApiQuery(q): ApiQuery<TargetQuery>,
    headers: HeaderMap,
    ext: axum::http::Extensions,
) -> Result<Response, ApiError> {
    let target = valid_target(&q.target)?;
    state.probe_rate(super::client_ip(&ext))?;
    let budget = probe_budget(&headers);
    let snapshot = state.snapshot();
    let ctx = crate::scan::ScanContext {
        prior: None,
        scanner: state.scanner.clone(),
        snapshot: snapshot.clone(),
        policies: state.policies.clone(),
    };
    let start = std::time::Instant::now();
    let o = match tokio::time::timeout(budget, ctx.check(&target)).await {
        Ok(result) => outcome(&result, &snapshot, start.elapsed().as_secs_f64()),
        Err(_) => ProbeOutcome {
            success: false,
            verdict: "unknown",
            cert_valid: false,
            cert_expiry: None,
            footer_match: false,
            duration_seconds: start.elapsed().as_secs_f64(),
        },
    };
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        probe_text(&o),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_budget_follows_the_scrape_timeout_minus_a_margin() {
        let mut h = HeaderMap::new();
        assert_eq!(probe_budget(&h), PROBE_DEFAULT_TIMEOUT - PROBE_MARGIN);
        h.insert("x-prometheus-scrape-timeout-seconds", "4".parse().unwrap());
        assert_eq!(probe_budget(&h), Duration::from_millis(3500));
        h.insert(
            "x-prometheus-scrape-timeout-seconds",
            "0.2".parse().unwrap(),
        );
        assert_eq!(probe_budget(&h), Duration::from_millis(100));
        for bad in ["NaN", "-3", "abc", "inf"] {
            h.insert("x-prometheus-scrape-timeout-seconds", bad.parse().unwrap());
            assert_eq!(
                probe_budget(&h),
                PROBE_DEFAULT_TIMEOUT - PROBE_MARGIN,
                "{bad}"
            );
        }
    }

    #[test]
    fn probe_text_has_one_verdict_set_and_optional_expiry() {
        let o = ProbeOutcome {
            success: true,
            verdict: "noncompliant",
            cert_valid: true,
            cert_expiry: Some(1_800_000_000),
            footer_match: false,
            duration_seconds: 0.5,
        };
        let t = probe_text(&o);
        assert!(t.contains("beian_probe_verdict{verdict=\"noncompliant\"} 1\n"));
        assert_eq!(t.matches("beian_probe_verdict{").count(), 4);
        assert_eq!(t.matches("} 1\n").count(), 1);
        assert!(t.contains("beian_probe_cert_expiry_timestamp_seconds 1800000000\n"));
        assert!(t.contains("beian_probe_footer_number_match 0\n"));
        let t = probe_text(&ProbeOutcome {
            cert_expiry: None,
            ..o
        });
        assert!(!t.contains("expiry"));
    }

    #[test]
    fn filing_keys() {
        assert!(matches!(parse_key("42"), FilingKey::Id(42)));
        assert!(matches!(
            parse_key("京ICP备12345678号-1"),
            FilingKey::Number(_)
        ));
        assert!(matches!(parse_key("example.com"), FilingKey::Domain(_)));
    }
}
