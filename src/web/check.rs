//! The filer's self-check page (`/check`): the same check as `beian check` and
//! `GET /api/check` ([`crate::scan::ScanContext::check`] on the service's guarded scanner, the
//! same per-client self-check limit), run as a job so that a slow site shows progress instead
//! of a blank page. `POST /check` starts the job and answers 303 to `/check/{id}`; that page
//! refreshes itself (`<meta http-equiv=refresh>`, no script) until the result is there: the
//! verdict, each problem in plain words with the exact fix (the footer snippet with the number
//! and link, the certificate path and where to get the certificate) and the legal basis.
//!
//! Jobs live in memory for [`KEEP`], at most [`MAX_JOBS`] at once; their ids are random (a
//! result is seen by whoever started it, or was given its link).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use serde::Deserialize;

use super::{Chrome, Lang, WebError, WebForm, WebState};
use crate::advice::{self, MIIT_URL};
use crate::api::ApiError;
use crate::verdict::Verdict;

/// Results are kept this long after they were started.
pub const KEEP: Duration = Duration::from_secs(15 * 60);
/// Jobs kept at once; beyond, a new check is refused (503) until old ones expire.
pub const MAX_JOBS: usize = 2_000;
/// How often the waiting page reloads itself.
pub const REFRESH_SECS: u32 = 2;

/// The running and finished self-checks.
#[derive(Default)]
pub struct CheckJobs {
    jobs: Mutex<HashMap<String, Job>>,
}

struct Job {
    target: String,
    started: Instant,
    outcome: Option<Arc<CheckOutcome>>,
}

impl CheckJobs {
    /// Register a job for `target`; its id.
    fn add(&self, target: &str) -> Result<String, ApiError> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.retain(|_, j| j.started.elapsed() < KEEP);
        if jobs.len() >= MAX_JOBS {
            return Err(ApiError::Unavailable {
                message: "too many self-checks are running; try again in a few minutes".into(),
            });
        }
        let id = super::random_token()[..32].to_string();
        jobs.insert(
            id.clone(),
            Job {
                target: target.to_string(),
                started: Instant::now(),
                outcome: None,
            },
        );
        Ok(id)
    }

    fn finish(&self, id: &str, outcome: CheckOutcome) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(j) = jobs.get_mut(id) {
            j.outcome = Some(Arc::new(outcome));
        }
    }

    /// The job's target, seconds running, and outcome once finished.
    fn get(&self, id: &str) -> Option<(String, u64, Option<Arc<CheckOutcome>>)> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(id)
            .filter(|j| j.started.elapsed() < KEEP)
            .map(|j| {
                (
                    j.target.clone(),
                    j.started.elapsed().as_secs(),
                    j.outcome.clone(),
                )
            })
    }
}

/// The policy's Chinese text, or the English when it gives none.
fn or_english(zh: &str, en: &str) -> String {
    if zh.is_empty() { en } else { zh }.to_string()
}

/// One problem as the page shows it.
pub struct Problem {
    pub code: String,
    pub severity: String,
    pub what_zh: String,
    pub what_en: String,
    pub fix_zh: String,
    pub fix_en: String,
    pub legal_basis: String,
    pub action: String,
    /// The same in Chinese (the English when the policy gives no Chinese text); the page
    /// shows the one of its language.
    pub legal_basis_zh: String,
    pub action_zh: String,
    /// The footer HTML to paste (number problems).
    pub snippet: Option<String>,
    /// A certificate problem: say where it goes and how to get it.
    pub cert: bool,
}

/// A finished self-check.
pub struct CheckOutcome {
    pub target: String,
    pub host: String,
    /// `compliant`, `noncompliant`, `unfiled`, `unknown`.
    pub verdict: &'static str,
    pub unknown_zh: Option<&'static str>,
    pub unknown_en: Option<&'static str>,
    pub filing: Option<String>,
    pub subject_name: Option<String>,
    pub shown_numbers: Vec<String>,
    pub cert_status: String,
    pub problems: Vec<Problem>,
}

impl CheckOutcome {
    fn new(result: &crate::scan::TargetResult, state: &crate::api::AppState) -> CheckOutcome {
        let snapshot = state.snapshot();
        let a = &result.assessment;
        let required = state
            .policies
            .for_province(a.province)
            .required_number
            .as_str();
        let ctx = advice::context(result, &snapshot, required);
        let filing = snapshot.lookup_host(&result.observation.host);
        let problems = result
            .record
            .findings
            .iter()
            .map(|f| {
                let adv = advice::advice(&f.code, &ctx);
                Problem {
                    code: f.code.clone(),
                    severity: f.severity.clone(),
                    what_zh: adv.zh,
                    what_en: adv.en,
                    fix_zh: adv.fix_zh,
                    fix_en: adv.fix_en,
                    legal_basis: f.legal_basis.clone(),
                    action: f.action.clone(),
                    legal_basis_zh: or_english(&f.legal_basis_zh, &f.legal_basis),
                    action_zh: or_english(&f.action_zh, &f.action),
                    snippet: f
                        .code
                        .starts_with("number_")
                        .then(|| advice::footer_snippet(&ctx)),
                    cert: f.code.starts_with("cert_"),
                }
            })
            .collect();
        let (verdict, unknown) = match a.verdict {
            Verdict::Compliant => ("compliant", None),
            Verdict::Noncompliant => ("noncompliant", None),
            Verdict::Unfiled => ("unfiled", None),
            Verdict::Unknown(r) => ("unknown", Some(advice::unknown_reason(r))),
        };
        CheckOutcome {
            target: result.observation.target.clone(),
            host: result.observation.host.clone(),
            verdict,
            unknown_zh: unknown.map(|u| u.0),
            unknown_en: unknown.map(|u| u.1),
            filing: filing.map(|f| f.service_number.to_string()),
            subject_name: filing.map(|f| f.subject_name.clone()),
            shown_numbers: ctx.shown_numbers.clone(),
            cert_status: a.cert_status.to_string(),
            problems,
        }
    }

    /// The verdict in words and its badge class.
    pub fn verdict_text(&self, lang: &Lang) -> (&'static str, &'static str) {
        match self.verdict {
            "compliant" => (lang.t("合规", "Compliant"), "ok"),
            "noncompliant" => (lang.t("不合规", "Not compliant"), "bad"),
            "unfiled" => (lang.t("未备案", "Not filed"), "bad"),
            _ => (lang.t("无法判断", "Could not check"), "warn"),
        }
    }
}

#[derive(Template)]
#[template(path = "check.html")]
struct FormPage<'a> {
    c: &'a Chrome,
    target: String,
}

pub async fn form(chrome: Chrome) -> Response {
    let c = chrome.at("check");
    c.page(
        FormPage {
            c: &c,
            target: String::new(),
        }
        .render(),
    )
}

#[derive(Debug, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    pub csrf: Option<String>,
    #[serde(default)]
    pub target: String,
}

pub async fn start(
    State(state): State<WebState>,
    chrome: Chrome,
    ext: axum::http::Extensions,
    WebForm(f): WebForm<StartForm>,
) -> Result<Response, WebError> {
    let c = chrome.at("check");
    c.require_csrf(f.csrf.as_deref())?;
    let err = |e| WebError::new(c.lang, e);
    let target = crate::api::public::valid_target(&f.target).map_err(err)?;
    state
        .api
        .check_rate(crate::api::client_ip(&ext))
        .map_err(err)?;
    let id = state.checks.add(&target).map_err(err)?;
    let api = state.api.clone();
    let jobs = state.checks.clone();
    let job = id.clone();
    tokio::spawn(async move {
        let ctx = crate::scan::ScanContext {
            prior: None,
            scanner: api.scanner.clone(),
            snapshot: api.snapshot(),
            policies: api.policies.clone(),
        };
        let result = ctx.check(&target).await;
        jobs.finish(&job, CheckOutcome::new(&result, &api));
    });
    Ok(c.see_other(&format!("/check/{id}")))
}

#[derive(Template)]
#[template(path = "check_result.html")]
struct ResultPage<'a> {
    c: &'a Chrome,
    target: String,
    elapsed: u64,
    refresh: u32,
    outcome: Option<Arc<CheckOutcome>>,
    miit_url: &'static str,
}

pub async fn result(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let c = chrome.at("check");
    let (target, elapsed, outcome) = state.checks.get(&id).ok_or_else(|| {
        WebError::new(
            c.lang,
            ApiError::NotFound {
                what: "self-check (results are kept 15 minutes)".into(),
            },
        )
    })?;
    Ok(c.page(
        ResultPage {
            c: &c,
            target,
            elapsed,
            refresh: REFRESH_SECS,
            outcome,
            miit_url: MIIT_URL,
        }
        .render(),
    ))
}
