//! Scans through the API: regulators start a scan (MIIT over every filed domain, a province or
//! a list of targets; a bureau over its own province's filings), follow its status, and read
//! its results. A bureau sees only its province: its jobs, its province's counts of national
//! scans, and its province's records.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{ApiPath, ApiQuery};
use super::{ApiError, ApiJson, Caller, Shared};
use crate::accounts::Actor;
use crate::report::{ProvinceCounts, ScanMeta, Summary};
use crate::schedule::{Job, ScanScope, ScheduleError};

/// `POST /api/scans` body.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// Scan these targets (MIIT only).
    #[serde(default)]
    pub targets: Option<Vec<String>>,
    /// Scan this province's filings (a bureau: its own, the default).
    #[serde(default)]
    pub province: Option<String>,
}

/// Who may see scans: MIIT everything (`None`), a bureau its province. The scan report page
/// ([`crate::web::scans`]) asks the same.
pub fn viewer(actor: &Actor) -> Result<Option<char>, ApiError> {
    match actor {
        Actor::Miit => Ok(None),
        Actor::Bureau { province } => Ok(Some(*province)),
        other => Err(ApiError::Forbidden {
            message: format!("{other} may not run or read scans: only MIIT and the bureaus"),
        }),
    }
}

fn province_arg(p: &str) -> Result<char, ApiError> {
    let mut chars = p.trim().chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => crate::number::primary_province(c).ok_or_else(|| {
            ApiError::invalid_field("province", format!("{p:?} is not a province abbreviation"))
        }),
        _ => Err(ApiError::invalid_field(
            "province",
            format!("{p:?} is not a province abbreviation (one character, e.g. 京)"),
        )),
    }
}

impl From<ScheduleError> for ApiError {
    fn from(e: ScheduleError) -> Self {
        match e {
            ScheduleError::QueueFull { .. } => ApiError::Unavailable {
                message: e.to_string(),
            },
            ScheduleError::NoTargets | ScheduleError::TooManyTargets { .. } => {
                ApiError::invalid_field("targets", e.to_string())
            }
        }
    }
}

/// A bureau sees national jobs and its own province's, not other provinces' jobs.
fn may_see_job(view: Option<char>, job: &Job) -> bool {
    view.is_none() || job.province().is_none() || job.province() == view
}

#[utoipa::path(post, path = "/api/scans", tag = "scans",
    request_body(content = String, description = "{targets?: [domain or URL], province?: \"京\"}; empty: every filed domain (MIIT) or the bureau's province", content_type = "application/json"),
    responses((status = 202, description = "queued: the job, with its id"), (status = 400), (status = 403), (status = 503, description = "too many scans waiting")))]
pub async fn start(
    State(state): State<Shared>,
    caller: Caller,
    super::error::ApiBytes(body): super::error::ApiBytes,
) -> Result<Response, ApiError> {
    let req: ScanRequest = if body.iter().all(|b| b.is_ascii_whitespace()) {
        ScanRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_body", format!("scan request: {e}")))?
    };
    let actor = caller.actor().clone();
    let view = viewer(&actor)?;
    let province = req.province.as_deref().map(province_arg).transpose()?;
    let scope = match (view, req.targets, province) {
        (Some(_), Some(_), _) => {
            return Err(ApiError::Forbidden {
                message: "a bureau scans its province's filings; listing targets is for MIIT"
                    .into(),
            })
        }
        (Some(own), None, Some(p)) if p != own => {
            return Err(ApiError::Forbidden {
                message: format!("{actor} may scan only its own province ({own})"),
            })
        }
        (Some(own), None, _) => ScanScope::Province { province: own },
        (None, Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give targets or a province, not both",
            ))
        }
        (None, Some(targets), None) => ScanScope::List { targets },
        (None, None, Some(p)) => ScanScope::Province { province: p },
        (None, None, None) => ScanScope::Filed,
    };
    let job = state.scans.request(format!("api:{actor}"), scope)?;
    let location = format!("/api/scans/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        ApiJson(job),
    )
        .into_response())
}

/// A scan of the history as a caller may see it.
#[derive(Debug, Serialize)]
pub struct ScanView {
    pub id: String,
    pub started_at: i64,
    pub ended_at: Option<i64>,
    pub origin: Option<String>,
    pub scope: Option<String>,
    pub targets: u64,
    /// MIIT: the whole summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// A bureau: its province's counts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub province: Option<ProvinceCounts>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_findings: Option<std::collections::BTreeMap<String, u64>>,
}

fn scan_view(meta: ScanMeta, view: Option<char>) -> ScanView {
    let (summary, province, new_findings) = match view {
        None => (Some(meta.summary), None, meta.new_findings),
        Some(p) => (
            None,
            Some(
                meta.summary
                    .by_province
                    .get(&p.to_string())
                    .cloned()
                    .unwrap_or_default(),
            ),
            None,
        ),
    };
    ScanView {
        id: meta.id,
        started_at: meta.started_at,
        ended_at: meta.ended_at,
        origin: meta.origin,
        scope: meta.scope,
        targets: meta.targets,
        summary,
        province,
        new_findings,
    }
}

/// A bureau sees national scans and its own province's, not other provinces' scans.
fn may_see_scan(view: Option<char>, meta: &ScanMeta) -> bool {
    match (view, meta.scope.as_deref()) {
        (None, _) => true,
        (Some(p), Some(scope)) => match scope.strip_prefix("province:") {
            Some(q) => q == p.to_string(),
            None => true,
        },
        (Some(_), None) => true,
    }
}

/// `GET /api/scans`: jobs and the history.
#[derive(Debug, Serialize)]
pub struct ScanList {
    /// Scans started through the API or by the schedule since `serve` started, newest first.
    pub jobs: Vec<Job>,
    /// The history, newest first.
    pub scans: Vec<ScanView>,
    /// Seconds between scheduled scans (absent: no schedule).
    pub schedule_interval_s: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// At most this many history entries (default 50).
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/scans", tag = "scans",
    params(("limit" = Option<usize>, Query, description = "history entries, newest first (default 50)")),
    responses((status = 200, description = "jobs, the scan history and the schedule"), (status = 403)))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<ApiJson<ScanList>, ApiError> {
    let view = viewer(caller.actor())?;
    let jobs = state
        .scans
        .list_jobs()
        .into_iter()
        .filter(|j| may_see_job(view, j))
        .collect();
    let history = state.scans.history().clone();
    let limit = q.limit.unwrap_or(50).min(1000);
    let scans = super::blocking(move || {
        let mut all = history.list().map_err(ApiError::internal)?;
        all.reverse();
        Ok(all
            .into_iter()
            .filter(|m| may_see_scan(view, m))
            .take(limit)
            .map(|m| scan_view(m, view))
            .collect())
    })
    .await?;
    Ok(ApiJson(ScanList {
        jobs,
        scans,
        schedule_interval_s: state.scans.interval_s(),
    }))
}

/// `GET /api/scans/{id}`: a job (with its scan, once it has one) or a scan of the history.
#[derive(Debug, Serialize)]
pub struct ScanStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job: Option<Job>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanView>,
}

#[utoipa::path(get, path = "/api/scans/{id}", tag = "scans",
    params(("id" = String, Path, description = "a job id (job-N) or a scan id")),
    responses((status = 200, description = "the job's state and progress, and its scan"), (status = 403), (status = 404)))]
pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<ScanStatus>, ApiError> {
    let view = viewer(caller.actor())?;
    let not_found = || ApiError::NotFound {
        what: format!("scan {id}"),
    };
    let job = state.scans.job(&id).filter(|j| may_see_job(view, j));
    let scan_id = job
        .as_ref()
        .map(|j| j.scan_id.clone())
        .unwrap_or_else(|| Some(id.clone()));
    let history = state.scans.history().clone();
    let scan = match scan_id {
        Some(sid) => {
            super::blocking(move || match history.meta(&sid) {
                Ok(m) => Ok(Some(m)),
                Err(_) => Ok(None),
            })
            .await?
        }
        None => None,
    };
    let scan = scan
        .filter(|m| may_see_scan(view, m))
        .map(|m| scan_view(m, view));
    if job.is_none() && scan.is_none() {
        return Err(not_found());
    }
    Ok(ApiJson(ScanStatus { job, scan }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordsQuery {
    /// Only records with this verdict.
    pub verdict: Option<String>,
}

#[utoipa::path(get, path = "/api/scans/{id}/records", tag = "scans",
    params(("id" = String, Path, description = "a job id (job-N) or a scan id"),
           ("verdict" = Option<String>, Query, description = "only this verdict")),
    responses((status = 200, description = "the scan's records, JSON Lines (a bureau: its province's)", content_type = "application/x-ndjson"), (status = 403), (status = 404)))]
pub async fn records(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<RecordsQuery>,
) -> Result<Response, ApiError> {
    let view = viewer(caller.actor())?;
    let not_found = || ApiError::NotFound {
        what: format!("scan {id}"),
    };
    let scan_id = match state.scans.job(&id) {
        Some(j) if may_see_job(view, &j) => j.scan_id.ok_or_else(not_found)?,
        Some(_) => return Err(not_found()),
        None => id.clone(),
    };
    let history = state.scans.history().clone();
    let sid = scan_id.clone();
    let path = super::blocking(move || {
        let meta = history.meta(&sid).map_err(|_| ApiError::NotFound {
            what: format!("scan {sid}"),
        })?;
        if !may_see_scan(view, &meta) {
            return Err(ApiError::NotFound {
                what: format!("scan {sid}"),
            });
        }
        history.records_path(&sid).map_err(ApiError::internal)
    })
    .await?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|_| not_found())?;
    let province = view.map(|p| p.to_string());
    let verdict = q.verdict;
    // Stream the file line by line; a bureau gets its province's records only.
    let lines = tokio_stream_lines(file);
    let filtered = futures::StreamExt::filter_map(lines, move |line| {
        let keep = match line {
            Ok(l) => {
                let ok = keeps(&l, province.as_deref(), verdict.as_deref());
                ok.then(|| Ok::<_, std::io::Error>(axum::body::Bytes::from(l + "\n")))
            }
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(keep)
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(filtered),
    )
        .into_response())
}

/// Whether a record line passes the province and verdict filters.
fn keeps(line: &str, province: Option<&str>, verdict: Option<&str>) -> bool {
    if province.is_none() && verdict.is_none() {
        return true;
    }
    #[derive(Deserialize)]
    struct Head {
        #[serde(default)]
        province: Option<String>,
        #[serde(default)]
        verdict: String,
    }
    let Ok(h) = serde_json::from_str::<Head>(line) else {
        return false;
    };
    province.is_none_or(|p| h.province.as_deref() == Some(p))
        && verdict.is_none_or(|v| h.verdict == v)
}

fn tokio_stream_lines(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<String>> + Send {
    use tokio::io::AsyncBufReadExt;
    let lines = tokio::io::BufReader::new(file).lines();
    futures::stream::unfold(lines, |mut lines| async move {
        match lines.next_line().await {
            Ok(Some(l)) => Some((Ok(l), lines)),
            Ok(None) => None,
            Err(e) => Some((Err(e), lines)),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_filters() {
        let l = r#"{"target":"a.cn","verdict":"unfiled","province":"京"}"#;
        assert!(keeps(l, None, None));
        assert!(keeps(l, Some("京"), None));
        assert!(!keeps(l, Some("沪"), None));
        assert!(keeps(l, Some("京"), Some("unfiled")));
        assert!(!keeps(l, None, Some("compliant")));
        assert!(!keeps("garbage", Some("京"), None));
    }

    #[test]
    fn bureaus_see_national_scans_and_their_own() {
        let mut m = ScanMeta {
            id: "x".into(),
            started_at: 0,
            ended_at: None,
            targets: 0,
            policy_sha256: String::new(),
            summary: Summary::new(),
            origin: None,
            scope: Some("province:沪".into()),
            new_findings: None,
        };
        assert!(!may_see_scan(Some('京'), &m));
        assert!(may_see_scan(Some('沪'), &m));
        assert!(may_see_scan(None, &m));
        m.scope = Some("filed".into());
        assert!(may_see_scan(Some('京'), &m));
    }
}
