//! The filing workspace (`/app`) and sign-in. Login is the API's two steps (password, then
//! the code sent to the account's contact) through the same handlers; the session token goes
//! into the `HttpOnly; SameSite=Strict` session cookie. What each role sees and may do is
//! what the JSON API lets it: every list and action calls the API handler with the session's
//! caller, so permissions and provinces are checked in one place.
//!
//! - ICP user: its filings and their state (a returned filing with the bureau's reason), the
//!   certificate download, a change of domains (add / remove), a cancellation request, and
//!   once requested its new reason or its deletion.
//! - Access provider: the filings waiting for its access verification, the template upload.
//! - Bureau: the review queue of its province (approve, with a typed or generated number, or
//!   reject with a reason), empty shells and overdue annual reviews, its scan reports.
//! - Pre-approval user: the documents waiting for a check (confirm, or refuse with a reason).
//! - Special-content user: the bulletin-board (电子公告) special filings waiting for review
//!   (approve, or refuse with a reason).
//! - MIIT: users (create), key rotation, scan reports.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{date, status_text, Chrome, WebError, WebForm, WebState};
use crate::accounts::Actor;
use crate::api::auth::{self, LoginBody, LoginVerifyBody, NewUserBody, UserView};
use crate::api::error::{ApiBytes, ApiPath, ApiQuery};
use crate::api::scans::ScanView;
use crate::api::workflow::{
    self, AnnualQuery, ApproveBody, BulletinReviewBody, ChangeBody, DocumentCheckBody,
    FilingSummary, ReasonBody,
};
use crate::api::{blocking, ApiError, ApiJson};
use crate::registry::store::RegistryScan;
use crate::registry::FilingView;

/// Filings listed for an ICP user or an access provider at most.
pub const LIST_LIMIT: usize = 500;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    c: &'a Chrome,
    username: String,
    /// Step 2: the challenge to answer.
    challenge: Option<String>,
}

pub async fn login_form(chrome: Chrome) -> Response {
    if chrome.user.is_some() {
        return chrome.see_other("/app");
    }
    let c = chrome.at("app");
    c.page(
        LoginPage {
            c: &c,
            username: String::new(),
            challenge: None,
        }
        .render(),
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub csrf: Option<String>,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
}

pub async fn login(
    State(state): State<WebState>,
    chrome: Chrome,
    ext: axum::http::Extensions,
    WebForm(f): WebForm<LoginForm>,
) -> Result<Response, WebError> {
    let c = chrome.at("app");
    c.require_csrf(f.csrf.as_deref())?;
    let started = auth::login(
        State(state.api.clone()),
        ext,
        ApiJson(LoginBody {
            username: f.username.clone(),
            password: f.password,
        }),
    )
    .await
    .map_err(|e| WebError::new(c.lang, e))?
    .0;
    Ok(c.page(
        LoginPage {
            c: &c,
            username: f.username,
            challenge: Some(started.challenge_id),
        }
        .render(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    #[serde(default)]
    pub csrf: Option<String>,
    #[serde(default)]
    pub challenge_id: String,
    #[serde(default)]
    pub code: String,
}

pub async fn login_verify(
    State(state): State<WebState>,
    chrome: Chrome,
    ext: axum::http::Extensions,
    WebForm(f): WebForm<VerifyForm>,
) -> Result<Response, WebError> {
    let mut c = chrome.at("app");
    c.require_csrf(f.csrf.as_deref())?;
    let session = auth::login_verify(
        State(state.api.clone()),
        ext,
        ApiJson(LoginVerifyBody {
            challenge_id: f.challenge_id,
            code: f.code.trim().to_string(),
        }),
    )
    .await
    .map_err(|e| WebError::new(c.lang, e))?
    .0;
    c.set_session(&session.token, session.expires_at - crate::api::unix_now());
    Ok(c.see_other("/app"))
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: Option<String>,
}

pub async fn logout(
    State(state): State<WebState>,
    chrome: Chrome,
    WebForm(f): WebForm<CsrfForm>,
) -> Result<Response, WebError> {
    let mut c = chrome;
    c.require_csrf(f.csrf.as_deref())?;
    if let Some(u) = c.user.take() {
        let _ = auth::logout(State(state.api.clone()), u.caller()).await;
    }
    c.clear_session();
    Ok(c.see_other("/"))
}

/// One filing row of the workspace.
pub struct Row {
    pub id: u64,
    pub number: String,
    pub name: String,
    pub domains: String,
    pub province: String,
    pub status: String,
    pub active: bool,
    pub note: String,
    /// A cancellation request is pending (its requester may change its reason or delete it).
    pub cancelling: bool,
}

/// One pre-approval document waiting for its check.
pub struct DocumentRow {
    pub id: u64,
    pub name: String,
    pub domains: String,
    pub province: String,
    pub category: String,
    pub document: String,
}

impl Row {
    fn of_view(v: &FilingView, c: &Chrome) -> Row {
        let note = match (&v.rejection, &v.cancellation) {
            (Some(r), _) if v.status == "rejected" => {
                format!("{}: {r}", c.t("退回原因", "Returned"))
            }
            (_, Some(k)) => format!("{}: {}", c.t("注销原因", "Cancellation reason"), k.reason),
            _ => match &v.pending_change {
                Some(d) => format!(
                    "{}: {}",
                    c.t("变更后域名", "Domains after the change"),
                    d.join(", ")
                ),
                None => String::new(),
            },
        };
        Row {
            id: v.id,
            number: v.service_number.clone().unwrap_or_else(|| "—".into()),
            name: v.name.clone(),
            domains: v.domains.join(", "),
            province: v.province.clone(),
            status: status_text(c.lang, &v.status),
            active: v.service_number.is_some()
                && matches!(
                    v.status.as_str(),
                    "active"
                        | "cancellation_requested"
                        | "change_under_review"
                        | "renewal_under_review"
                        | "annual_review_overdue"
                ),
            note,
            cancelling: v.cancellation.is_some(),
        }
    }

    fn of_summary(f: &FilingSummary, c: &Chrome) -> Row {
        Row {
            id: f.id,
            number: f.service_number.clone().unwrap_or_else(|| "—".into()),
            name: f.name.clone(),
            domains: f.domains.join(", "),
            province: f.province.clone(),
            status: status_text(c.lang, &f.status),
            active: f.status == "active",
            note: String::new(),
            cancelling: f.status == "cancellation_requested",
        }
    }
}

/// One user row.
pub struct UserRow {
    pub username: String,
    pub actor: String,
    pub created: String,
    pub created_by: String,
}

impl From<&UserView> for UserRow {
    fn from(u: &UserView) -> Self {
        UserRow {
            username: u.username.clone(),
            actor: u.actor.clone(),
            created: date(Some(u.created_at)),
            created_by: u.created_by.clone(),
        }
    }
}

/// One scan of the history, as a link to its report.
pub struct ScanRow {
    pub id: String,
    pub started: String,
    pub scope: String,
    pub targets: u64,
    pub done: bool,
}

impl From<&ScanView> for ScanRow {
    fn from(s: &ScanView) -> Self {
        ScanRow {
            id: s.id.clone(),
            started: super::datetime(s.started_at),
            scope: s.scope.clone().unwrap_or_default(),
            targets: s.targets,
            done: s.ended_at.is_some(),
        }
    }
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage<'a> {
    c: &'a Chrome,
    role: &'static str,
    who: String,
    done: Option<String>,
    mine: Vec<Row>,
    verify: Vec<Row>,
    queue: Vec<Row>,
    shells: Vec<Row>,
    annual: Vec<Row>,
    documents: Vec<DocumentRow>,
    boards: Vec<Row>,
    users: Vec<UserRow>,
    scans: Vec<ScanRow>,
    keyring: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    #[serde(default)]
    pub done: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

/// Filings an ICP user or access provider is shown (the API's visibility rule).
fn own_filings(
    state: &WebState,
    actor: &Actor,
    keep: impl Fn(&crate::registry::model::Filing) -> bool,
) -> Result<Vec<FilingView>, ApiError> {
    let store = state.api.registry.store();
    let mut found = Vec::new();
    store.scan_filings(&mut |f| {
        if keep(&f) {
            found.push(f);
        }
        found.len() < LIST_LIMIT * 4
    })?;
    let now = crate::api::unix_now();
    let mut out = Vec::new();
    for f in found {
        let Some(s) = crate::registry::store::RegistryRead::subject(store, f.subject_id)? else {
            continue;
        };
        if workflow::may_view(actor, &f, &s) {
            out.push(FilingView::at(&f, &s, now));
        }
        if out.len() >= LIST_LIMIT {
            break;
        }
    }
    Ok(out)
}

pub async fn home(
    State(state): State<WebState>,
    chrome: Chrome,
    Query(q): Query<HomeQuery>,
) -> Result<Response, WebError> {
    let Some(user) = chrome.user.clone() else {
        return Ok(chrome.see_other("/login"));
    };
    let c = chrome.at("app");
    let err = |e| WebError::new(c.lang, e);
    let api = state.api.clone();
    let actor = user.actor().clone();
    let mut page = AppPage {
        c: &c,
        role: "",
        who: user.user.actor.to_string(),
        done: q.done.filter(|d| d.len() <= 40),
        mine: Vec::new(),
        verify: Vec::new(),
        queue: Vec::new(),
        shells: Vec::new(),
        annual: Vec::new(),
        documents: Vec::new(),
        boards: Vec::new(),
        users: Vec::new(),
        scans: Vec::new(),
        keyring: String::new(),
    };
    match &actor {
        Actor::Icp { username } => {
            page.role = "icp";
            let st = state.clone();
            let (a, who) = (actor.clone(), username.clone());
            let views = blocking(move || {
                let store = st.api.registry.store();
                let mut owned = std::collections::HashSet::new();
                store.scan_subjects(&mut |s| {
                    if s.owner == who {
                        owned.insert(s.id);
                    }
                    true
                })?;
                own_filings(&st, &a, |f| owned.contains(&f.subject_id))
            })
            .await
            .map_err(err)?;
            page.mine = views.iter().map(|v| Row::of_view(v, &c)).collect();
        }
        Actor::Isp { name, .. } => {
            page.role = "isp";
            let st = state.clone();
            let (a, name) = (actor.clone(), name.clone());
            let views = blocking(move || {
                own_filings(&st, &a, |f| {
                    f.status == crate::registry::model::Status::AwaitingAccessVerification
                        && f.providers.iter().any(|p| p.name == name && !p.verified)
                })
            })
            .await
            .map_err(err)?;
            page.verify = views.iter().map(|v| Row::of_view(v, &c)).collect();
        }
        Actor::Bureau { .. } | Actor::Miit => {
            page.role = if actor == Actor::Miit {
                "miit"
            } else {
                "bureau"
            };
            let caller = user.caller();
            if actor != Actor::Miit {
                let q = workflow::review_queue(State(api.clone()), user.caller())
                    .await
                    .map_err(err)?
                    .0;
                page.queue = q.iter().map(|f| Row::of_summary(f, &c)).collect();
                let s = workflow::empty_shells(State(api.clone()), user.caller())
                    .await
                    .map_err(err)?
                    .0;
                page.shells = s.iter().map(|f| Row::of_summary(f, &c)).collect();
                let a = workflow::annual(
                    State(api.clone()),
                    user.caller(),
                    ApiQuery(AnnualQuery { within_days: None }),
                )
                .await
                .map_err(err)?
                .0;
                page.annual = a.iter().map(|v| Row::of_view(v, &c)).collect();
            } else {
                let users = auth::list_users(State(api.clone()), user.caller())
                    .await
                    .map_err(err)?
                    .0;
                page.users = users.iter().map(UserRow::from).collect();
                page.keyring = api.registry.keyring().to_json();
            }
            let scans = crate::api::scans::list(
                State(api.clone()),
                caller,
                ApiQuery(crate::api::scans::ListQuery { limit: Some(20) }),
            )
            .await
            .map_err(err)?
            .0;
            page.scans = scans.scans.iter().map(ScanRow::from).collect();
        }
        Actor::PreApproval => {
            page.role = "pre_approval";
            let q = workflow::pre_approvals(State(api.clone()), user.caller())
                .await
                .map_err(err)?
                .0;
            page.documents = q
                .iter()
                .flat_map(|f| {
                    f.documents.iter().map(|d| DocumentRow {
                        id: f.id,
                        name: f.name.clone(),
                        domains: f.domains.join(", "),
                        province: f.province.clone(),
                        category: d.category.clone(),
                        document: d.document.clone(),
                    })
                })
                .collect();
        }
        Actor::SpecialContent => {
            page.role = "special_content";
            let q = workflow::bulletin_boards(State(api.clone()), user.caller())
                .await
                .map_err(err)?
                .0;
            page.boards = q.iter().map(|f| Row::of_summary(f, &c)).collect();
        }
        _ => page.role = "other",
    }
    Ok(c.page(page.render()))
}

pub async fn certificate(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let Some(user) = chrome.user.as_ref() else {
        return Ok(chrome.see_other("/login"));
    };
    workflow::certificate(State(state.api.clone()), user.caller(), ApiPath(id))
        .await
        .map_err(|e| WebError::new(chrome.lang, e))
}

#[derive(Debug, Deserialize)]
pub struct ActForm {
    #[serde(default)]
    pub csrf: Option<String>,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub add_domains: Option<String>,
    #[serde(default)]
    pub remove_domains: Option<String>,
    /// The content category whose pre-approval document is checked.
    #[serde(default)]
    pub category: Option<String>,
    /// `confirm` or `refuse` (a pre-approval document, a bulletin-board filing).
    #[serde(default)]
    pub decision: Option<String>,
}

/// A check's outcome from the form: `None` confirmed, `Some(reason)` refused (a reason is
/// needed).
fn decision(f: &ActForm) -> Result<Option<String>, ApiError> {
    match f.decision.as_deref() {
        Some("confirm") => Ok(None),
        Some("refuse") => {
            let why = f.reason.as_deref().unwrap_or("").trim();
            if why.is_empty() {
                return Err(ApiError::invalid_field(
                    "reason",
                    "a refusal needs a reason (退回须填写原因)",
                ));
            }
            Ok(Some(why.to_string()))
        }
        _ => Err(ApiError::invalid_field("decision", "confirm or refuse")),
    }
}

fn domains(s: Option<&str>) -> Vec<String> {
    s.unwrap_or("")
        .split([',', '，', ' ', '\n', '\r', '\t', '、'])
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn act(
    State(state): State<WebState>,
    chrome: Chrome,
    Path((id, action)): Path<(String, String)>,
    WebForm(f): WebForm<ActForm>,
) -> Result<Response, WebError> {
    let Some(user) = chrome.user.clone() else {
        return Err(WebError::new(chrome.lang, ApiError::Unauthorized));
    };
    chrome.require_csrf(f.csrf.as_deref())?;
    let err = |e| WebError::new(chrome.lang, e);
    let api = State(state.api.clone());
    let key = ApiPath(id.clone());
    let reason = || ReasonBody {
        reason: f.reason.clone().unwrap_or_default(),
    };
    match action.as_str() {
        "verify-access" => workflow::verify_access(api, user.caller(), key).await,
        "approve" => {
            let number = f.number.clone().filter(|n| !n.trim().is_empty());
            workflow::approve(api, user.caller(), key, ApiJson(ApproveBody { number })).await
        }
        "reject" => workflow::reject(api, user.caller(), key, ApiJson(reason())).await,
        "cancel" => workflow::cancel(api, user.caller(), key, ApiJson(reason())).await,
        "cancel-modify" => {
            workflow::cancel_modify(api, user.caller(), key, ApiJson(reason())).await
        }
        "cancel-delete" => workflow::cancel_delete(api, user.caller(), key).await,
        "check-document" => match decision(&f) {
            Ok(refused) => {
                let body = DocumentCheckBody {
                    category: f.category.clone().unwrap_or_default(),
                    refused,
                };
                workflow::check_document(api, user.caller(), key, ApiJson(body)).await
            }
            Err(e) => Err(e),
        },
        "bulletin-review" => match decision(&f) {
            Ok(refused) => {
                let body = BulletinReviewBody { refused };
                workflow::review_bulletin_board(api, user.caller(), key, ApiJson(body)).await
            }
            Err(e) => Err(e),
        },
        "renew" => workflow::renew(api, user.caller(), key).await,
        "change" => {
            let body = ChangeBody {
                add_domains: domains(f.add_domains.as_deref()),
                remove_domains: domains(f.remove_domains.as_deref()),
            };
            workflow::change(api, user.caller(), key, ApiJson(body)).await
        }
        _ => Err(ApiError::NotFound {
            what: format!("action {action:?}"),
        }),
    }
    .map_err(err)?;
    Ok(chrome.see_other(&format!("/app?done={action}")))
}

#[derive(Template)]
#[template(path = "import_result.html")]
struct ImportPage<'a> {
    c: &'a Chrome,
    file: String,
    format: String,
    accepted: Vec<(usize, u64)>,
    changed: Vec<(usize, u64)>,
    unchanged: Vec<(usize, u64)>,
    errors: Vec<ImportErrorRow>,
    notes: Vec<String>,
}

struct ImportErrorRow {
    sheet: String,
    row: usize,
    column: String,
    field: String,
    reason: String,
}

/// An access provider uploads the filing template (or CSV, JSON Lines): the same import as
/// `POST /api/filings/import`, with the per-row results on a page.
pub async fn import_upload(
    State(state): State<WebState>,
    chrome: Chrome,
    mut form: axum::extract::Multipart,
) -> Result<Response, WebError> {
    let Some(user) = chrome.user.clone() else {
        return Err(WebError::new(chrome.lang, ApiError::Unauthorized));
    };
    let bad = |m: String| WebError::new(chrome.lang, ApiError::bad_request("invalid_form", m));
    let (mut csrf, mut file, mut name) = (None, None, String::new());
    while let Some(field) = form.next_field().await.map_err(|e| bad(e.body_text()))? {
        match field.name() {
            Some("csrf") => csrf = Some(field.text().await.map_err(|e| bad(e.body_text()))?),
            Some("file") => {
                name = field.file_name().unwrap_or("").to_string();
                file = Some(field.bytes().await.map_err(|e| bad(e.body_text()))?);
            }
            _ => {}
        }
    }
    chrome.require_csrf(csrf.as_deref())?;
    let Some(bytes) = file.filter(|b| !b.is_empty()) else {
        return Err(bad(chrome
            .t("请选择要上传的文件", "choose a file to upload")
            .into()));
    };
    let ApiJson(r) = workflow::import(State(state.api.clone()), user.caller(), ApiBytes(bytes))
        .await
        .map_err(|e| WebError::new(chrome.lang, e))?;
    let page = ImportPage {
        c: &chrome,
        file: name,
        format: r.format,
        accepted: r.accepted,
        changed: r.changed,
        unchanged: r.unchanged,
        errors: r
            .errors
            .into_iter()
            .map(|e| ImportErrorRow {
                sheet: e.sheet.unwrap_or_default(),
                row: e.line,
                column: e.column.unwrap_or_default(),
                field: e.field,
                reason: e.reason,
            })
            .collect(),
        notes: r.notes,
    };
    Ok(chrome.page(page.render()))
}

#[derive(Debug, Deserialize)]
pub struct NewUserForm {
    #[serde(default)]
    pub csrf: Option<String>,
    pub username: String,
    pub role: String,
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Template)]
#[template(path = "created.html")]
struct CreatedPage<'a> {
    c: &'a Chrome,
    username: String,
    actor: String,
    password: Option<String>,
}

pub async fn create_user(
    State(state): State<WebState>,
    chrome: Chrome,
    WebForm(f): WebForm<NewUserForm>,
) -> Result<Response, WebError> {
    let Some(user) = chrome.user.clone() else {
        return Err(WebError::new(chrome.lang, ApiError::Unauthorized));
    };
    chrome.require_csrf(f.csrf.as_deref())?;
    let c = chrome.at("app");
    let err = |e| WebError::new(c.lang, e);
    let role: crate::accounts::Role = serde_json::from_value(serde_json::Value::String(f.role))
        .map_err(|e| err(ApiError::invalid_field("role", e.to_string())))?;
    let nonempty = |s: Option<String>| s.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let resp = auth::create_user(
        State(state.api.clone()),
        user.caller(),
        ApiJson(NewUserBody {
            username: f.username,
            password: None,
            role,
            province: nonempty(f.province),
            name: nonempty(f.name),
            email: None,
            mobile: None,
        }),
    )
    .await
    .map_err(err)?;
    let body = axum::body::to_bytes(resp.into_response().into_body(), 64 * 1024)
        .await
        .map_err(|e| err(ApiError::internal(e)))?;
    let created: auth::CreatedUser =
        serde_json::from_slice(&body).map_err(|e| err(ApiError::internal(e)))?;
    Ok(c.page(
        CreatedPage {
            c: &c,
            username: created.user.username,
            actor: created.user.actor,
            password: created.password,
        }
        .render(),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    pub csrf: Option<String>,
    #[serde(default)]
    pub compromised: Option<String>,
}

pub async fn rotate_keys(
    State(state): State<WebState>,
    chrome: Chrome,
    WebForm(f): WebForm<RotateForm>,
) -> Result<Response, WebError> {
    let Some(user) = chrome.user.clone() else {
        return Err(WebError::new(chrome.lang, ApiError::Unauthorized));
    };
    chrome.require_csrf(f.csrf.as_deref())?;
    let compromised = f
        .compromised
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty());
    let api = state.api.clone();
    let actor = user.actor().clone();
    blocking(move || {
        api.registry
            .rotate_keys(&actor, compromised.as_deref(), crate::api::unix_now())?;
        api.refresh().map_err(ApiError::from)?;
        Ok(())
    })
    .await
    .map_err(|e| WebError::new(chrome.lang, e))?;
    Ok(chrome.see_other("/app?done=rotate"))
}
