//! Authenticated filing workflow endpoints: submit, import (JSON Lines, CSV, .xlsx, .xls),
//! show, verify access, pre-approval documents and their check, the bulletin-board special
//! review, review (manual and automatic), change, cancel, withdraw, revoke, access changes,
//! certificate download, empty shells, and the national work queues of pre-approval and
//! special-content users. The registry's workflow decides who may do what (roles and
//! provinces); this module adds who may *see* what: the filing's ICP user and access
//! providers, the bureau of its province, MIIT and special-query users.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{ApiBytes, ApiPath};
use super::public::parse_key;
use super::{blocking, unix_now, ApiError, ApiJson, Caller, Shared};
use crate::accounts::Actor;
use crate::registry::model::{Filing, Subject};
use crate::registry::store::RegistryRead;
use crate::registry::{FilingKey, FilingView, ImportReport};

/// Whether `actor` may see a filing's full record.
pub fn may_view(actor: &Actor, f: &Filing, s: &Subject) -> bool {
    match actor {
        Actor::Miit | Actor::SpecialQuery => true,
        Actor::Bureau { province } => *province == s.province,
        Actor::Icp { username } => *username == s.owner,
        Actor::Isp { name, .. } => f.providers.iter().any(|p| p.name == *name),
        _ => false,
    }
}

fn forbidden(msg: impl Into<String>) -> ApiError {
    ApiError::Forbidden {
        message: msg.into(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Submitted {
    pub id: u64,
    pub notes: Vec<String>,
}

fn line_error(e: &crate::registry::import::LineError) -> ApiError {
    use crate::registry::workflow::Rule;
    let message = format!("{}: {}", e.field, e.reason);
    match e.rule {
        Some(Rule::DuplicateDomain) => {
            return ApiError::Conflict {
                code: "duplicate_domain",
                message,
            }
        }
        Some(Rule::Permission) => return forbidden(message),
        _ => {}
    }
    ApiError::BadRequest {
        code: "invalid_field",
        message,
        field: Some(e.field.clone()),
    }
}

#[utoipa::path(post, path = "/api/filings", tag = "filings",
    request_body(content = String, description = "one website filing, the same object as an import line", content_type = "application/json"),
    responses((status = 201, description = "submitted; awaiting access verification"), (status = 400), (status = 403), (status = 409)))]
pub async fn submit(
    State(state): State<Shared>,
    caller: Caller,
    ApiJson(mut body): ApiJson<serde_json::Value>,
) -> Result<Response, ApiError> {
    let actor = caller.actor().clone();
    match &actor {
        Actor::Icp { username } => {
            // An ICP user files for itself: the subject's owner is the caller.
            let subject = body
                .get_mut("subject")
                .and_then(|s| s.as_object_mut())
                .ok_or_else(|| ApiError::invalid_field("subject", "missing subject object"))?;
            subject.insert(
                "username".into(),
                serde_json::Value::String(username.clone()),
            );
        }
        Actor::Isp { .. } => {}
        other => return Err(forbidden(format!("{other} may not submit filings"))),
    }
    if !body.is_object() {
        return Err(ApiError::invalid_field("body", "expected a JSON object"));
    }
    let line = serde_json::to_string(&body).map_err(ApiError::internal)?;
    blocking(move || {
        let report = state.registry.import_jsonl(
            line.as_bytes(),
            crate::registry::Submitter::Actor(&actor),
            unix_now(),
            1,
            &mut |_| {},
        )?;
        if let Some(e) = report.errors.first() {
            return Err(line_error(e));
        }
        let Some((_, id)) = report.accepted.first() else {
            return Err(ApiError::invalid_field("body", "empty filing"));
        };
        Ok((
            StatusCode::CREATED,
            axum::Json(Submitted {
                id: *id,
                notes: report.notes,
            }),
        )
            .into_response())
    })
    .await
}

#[utoipa::path(post, path = "/api/filings/import", tag = "filings",
    request_body(content = String, description = "JSON Lines (one website filing per line), or the filing template (GET /api/templates/filing) as .xlsx, .xls or CSV; the format is told by the content. Rows for filings the provider already handles open changes.", content_type = "application/octet-stream"),
    responses((status = 200, description = "accepted, changed and unchanged rows, per-row errors (sheet, row, column)"), (status = 400, description = "not a readable upload (no template header, damaged workbook, too large)"), (status = 403)))]
pub async fn import(
    State(state): State<Shared>,
    caller: Caller,
    ApiBytes(body): ApiBytes,
) -> Result<ApiJson<ImportReport>, ApiError> {
    let actor = caller.actor().clone();
    if !matches!(
        actor,
        Actor::Isp {
            import_authorised: true,
            ..
        }
    ) {
        return Err(forbidden(format!(
            "{actor} may not import: only an access provider authorised for import by its bureau"
        )));
    }
    blocking(move || {
        let r = state.registry.import_upload(
            &body,
            crate::registry::Submitter::Actor(&actor),
            unix_now(),
            1000,
            &mut |_| {},
        )?;
        Ok(ApiJson(r))
    })
    .await
}

fn load_visible(
    state: &Shared,
    actor: &Actor,
    key: &FilingKey,
) -> Result<(Filing, Subject), ApiError> {
    let (f, s) = state.registry.filing(key)?;
    if !may_view(actor, &f, &s) {
        return Err(forbidden(format!("{actor} may not see {key}")));
    }
    Ok((f, s))
}

#[utoipa::path(get, path = "/api/filings/{key}", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    responses((status = 200, description = "the full filing"), (status = 403), (status = 404)))]
pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<FilingView>, ApiError> {
    blocking(move || {
        let (f, s) = load_visible(&state, caller.actor(), &parse_key(&key))?;
        Ok(ApiJson(FilingView::at(&f, &s, unix_now())))
    })
    .await
}

/// Run one workflow operation on a filing and answer with its new view.
async fn act<F>(state: Shared, key: String, op: F) -> Result<ApiJson<FilingView>, ApiError>
where
    F: FnOnce(&crate::registry::Registry, &FilingKey, i64) -> Result<Filing, ApiError>
        + Send
        + 'static,
{
    blocking(move || {
        let k = parse_key(&key);
        let f = op(&state.registry, &k, unix_now())?;
        let s = state
            .registry
            .store()
            .subject(f.subject_id)?
            .ok_or_else(|| ApiError::internal(format!("subject of filing {} missing", f.id)))?;
        Ok(ApiJson(FilingView::at(&f, &s, unix_now())))
    })
    .await
}

#[utoipa::path(post, path = "/api/filings/{key}/verify-access", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    responses((status = 200, description = "the filing after verification"), (status = 403), (status = 409)))]
pub async fn verify_access(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    let Actor::Isp { name, .. } = &actor else {
        return Err(forbidden(format!(
            "{actor} may not verify access; only an access provider of the filing"
        )));
    };
    let name = name.clone();
    act(state, key, move |r, k, now| {
        let (f, _) = r.filing(k)?;
        if !f.providers.iter().any(|p| p.name == name) {
            return Err(forbidden(format!(
                "{actor} is not an access provider of {k}"
            )));
        }
        let ids = r.verify_access(&actor, &name, Some(k), now)?;
        let id = ids.first().copied().ok_or_else(|| ApiError::NotFound {
            what: k.to_string(),
        })?;
        Ok(r.filing(&FilingKey::Id(id))?.0)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// A typed subject or service number (manual review); generated when absent.
    pub number: Option<String>,
}

#[utoipa::path(post, path = "/api/filings/{key}/approve", tag = "review",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{number?}", content_type = "application/json"),
    responses((status = 200, description = "approved: numbered, certificate issued"), (status = 403), (status = 409)))]
pub async fn approve(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<ApproveBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let number = match b.number.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        Some(n) => Some(
            crate::number::FilingNumber::parse(n)
                .map_err(|e| ApiError::invalid_field("number", e.to_string()))?,
        ),
        None => None,
    };
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.review_approve(&actor, k, number, now)?)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: String,
}

fn reason(b: &ReasonBody) -> Result<String, ApiError> {
    let r = b.reason.trim();
    if r.is_empty() || r.chars().count() > 1000 {
        return Err(ApiError::invalid_field("reason", "1–1000 characters"));
    }
    Ok(r.to_string())
}

#[utoipa::path(post, path = "/api/filings/{key}/reject", tag = "review",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{reason}", content_type = "application/json"),
    responses((status = 200, description = "returned to the filer"), (status = 403), (status = 409)))]
pub async fn reject(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let why = reason(&b)?;
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.review_reject(&actor, k, &why, now)?)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentBody {
    pub category: String,
    pub document: String,
}

#[utoipa::path(post, path = "/api/filings/{key}/pre-approval", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{category, document}: the approval document's number, attached at any state before approval (also under review)", content_type = "application/json"),
    responses((status = 200, description = "attached; a pre-approval user checks it"), (status = 403), (status = 409)))]
pub async fn attach_document(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<DocumentBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    if b.document.trim().is_empty() || b.document.chars().count() > 200 {
        return Err(ApiError::invalid_field("document", "1–200 characters"));
    }
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.attach_pre_approval(&actor, k, &b.category, &b.document, now)?)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentCheckBody {
    pub category: String,
    /// Absent: confirmed; a reason: refused.
    #[serde(default)]
    pub refused: Option<String>,
}

#[utoipa::path(post, path = "/api/filings/{key}/pre-approval/check", tag = "review",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{category, refused?}: a pre-approval user confirms the document, or refuses it with a reason", content_type = "application/json"),
    responses((status = 200, description = "checked"), (status = 403), (status = 409)))]
pub async fn check_document(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<DocumentCheckBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.check_pre_approval(&actor, k, &b.category, b.refused.as_deref(), now)?)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulletinReviewBody {
    /// Absent: confirmed; a reason: refused.
    #[serde(default)]
    pub refused: Option<String>,
}

#[utoipa::path(post, path = "/api/filings/{key}/bulletin-board/review", tag = "review",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{refused?}: a special-content user confirms the bulletin-board special filing, or refuses it with a reason", content_type = "application/json"),
    responses((status = 200, description = "reviewed"), (status = 403), (status = 409)))]
pub async fn review_bulletin_board(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<BulletinReviewBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.review_bulletin_board(&actor, k, b.refused.as_deref(), now)?)
    })
    .await
}

#[utoipa::path(get, path = "/api/bulletin-boards", tag = "review",
    responses((status = 200, description = "bulletin-board special filings waiting for review"), (status = 403)))]
pub async fn bulletin_boards(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<Vec<FilingSummary>>, ApiError> {
    if !matches!(caller.actor(), Actor::SpecialContent | Actor::Miit) {
        return Err(forbidden(format!(
            "{} may not list bulletin-board filings: special-content users do",
            caller.actor()
        )));
    }
    national_queue(state, |r| r.bulletin_board_queue()).await
}

/// A national work queue (pre-approval documents, bulletin-board filings) as summaries.
async fn national_queue(
    state: Shared,
    list: impl FnOnce(&crate::registry::Registry) -> Result<Vec<Filing>, crate::registry::RegistryError>
        + Send
        + 'static,
) -> Result<ApiJson<Vec<FilingSummary>>, ApiError> {
    blocking(move || {
        let q = list(&state.registry)?;
        Ok(ApiJson(summaries(&state, q, None)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/pre-approvals", tag = "review",
    responses((status = 200, description = "filings with a pre-approval document waiting for its check"), (status = 403)))]
pub async fn pre_approvals(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<Vec<FilingSummary>>, ApiError> {
    if !matches!(caller.actor(), Actor::PreApproval | Actor::Miit) {
        return Err(forbidden(format!(
            "{} may not list pre-approval documents: pre-approval users do",
            caller.actor()
        )));
    }
    national_queue(state, |r| r.pre_approval_queue()).await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeBody {
    #[serde(default)]
    pub add_domains: Vec<String>,
    #[serde(default)]
    pub remove_domains: Vec<String>,
}

#[utoipa::path(post, path = "/api/filings/{key}/change", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{add_domains, remove_domains}", content_type = "application/json"),
    responses((status = 200, description = "change under review"), (status = 403), (status = 409)))]
pub async fn change(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<ChangeBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.change_domains(&actor, k, &b.add_domains, &b.remove_domains, now)?)
    })
    .await
}

#[utoipa::path(post, path = "/api/filings/{key}/cancel", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{reason}", content_type = "application/json"),
    responses((status = 200, description = "cancellation requested"), (status = 403), (status = 409)))]
pub async fn cancel(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let why = reason(&b)?;
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.request_cancellation(&actor, k, &why, now)?)
    })
    .await
}

#[utoipa::path(post, path = "/api/filings/{key}/renew", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    responses((status = 200, description = "annual review requested; the bureau confirms it"), (status = 403), (status = 409)))]
pub async fn renew(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.request_renewal(&actor, k, now)?)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnualQuery {
    /// Also list those due within this many days (default 0: overdue only).
    pub within_days: Option<u32>,
}

#[utoipa::path(get, path = "/api/review/annual", tag = "review",
    params(("within_days" = Option<u32>, Query, description = "also those due within this many days")),
    responses((status = 200, description = "active filings whose annual review is overdue or due soon (a bureau sees its province)"), (status = 403)))]
pub async fn annual(
    State(state): State<Shared>,
    caller: Caller,
    super::error::ApiQuery(q): super::error::ApiQuery<AnnualQuery>,
) -> Result<ApiJson<Vec<FilingView>>, ApiError> {
    let province = oversight_province(caller.actor(), "list annual reviews")?;
    let within = i64::from(q.within_days.unwrap_or(0)) * 86_400;
    blocking(move || {
        let now = unix_now();
        Ok(ApiJson(
            state
                .registry
                .annual_reviews(province, now, within)?
                .iter()
                .map(|(f, s)| FilingView::at(f, s, now))
                .collect(),
        ))
    })
    .await
}

#[utoipa::path(put, path = "/api/filings/{key}/cancel", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{reason}", content_type = "application/json"),
    responses((status = 200, description = "the requester's pending cancellation request has the new reason"), (status = 403), (status = 409)))]
pub async fn cancel_modify(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<ReasonBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let why = reason(&b)?;
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.modify_cancellation(&actor, k, &why, now)?)
    })
    .await
}

#[utoipa::path(delete, path = "/api/filings/{key}/cancel", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    responses((status = 200, description = "the requester's pending cancellation request is deleted"), (status = 403), (status = 409)))]
pub async fn cancel_delete(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.delete_cancellation(&actor, k, now)?)
    })
    .await
}

#[utoipa::path(post, path = "/api/filings/{key}/withdraw", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    responses((status = 200, description = "cancellation request withdrawn"), (status = 403), (status = 409)))]
pub async fn withdraw(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.withdraw_cancellation(&actor, k, now)?)
    })
    .await
}

#[utoipa::path(post, path = "/api/filings/{key}/revoke", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{reason, false_information?}", content_type = "application/json"),
    responses((status = 200, description = "revoked (with false_information: on the public list)"), (status = 403), (status = 409)))]
pub async fn revoke(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<RevokeBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let why = reason(&ReasonBody { reason: b.reason })?;
    let actor = caller.actor().clone();
    let false_information = b.false_information;
    act(state, key, move |r, k, now| {
        Ok(if false_information {
            r.revoke_for_false_information(&actor, k, &why, now)?
        } else {
            r.revoke(&actor, k, &why, now)?
        })
    })
    .await
}

/// `POST /api/filings/{key}/revoke` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    pub reason: String,
    /// The filing's data was false: it goes on the public list.
    #[serde(default)]
    pub false_information: bool,
}

#[utoipa::path(post, path = "/api/filings/{key}/cancel-access", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    responses((status = 200, description = "the caller's access is cancelled"), (status = 403), (status = 409)))]
pub async fn cancel_access(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let actor = caller.actor().clone();
    let Actor::Isp { name, .. } = &actor else {
        return Err(forbidden(format!(
            "{actor} may not cancel access; only an access provider of the filing"
        )));
    };
    let name = name.clone();
    act(state, key, move |r, k, now| {
        Ok(r.cancel_access(&actor, k, &name, now)?)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderBody {
    pub provider: String,
}

#[utoipa::path(post, path = "/api/filings/{key}/providers", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    request_body(content = String, description = "{provider}", content_type = "application/json"),
    responses((status = 200, description = "the provider is added (awaiting its verification)"), (status = 403), (status = 409)))]
pub async fn add_provider(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
    ApiJson(b): ApiJson<ProviderBody>,
) -> Result<ApiJson<FilingView>, ApiError> {
    let p = b.provider.trim().to_string();
    if p.is_empty() || p.chars().count() > 100 {
        return Err(ApiError::invalid_field("provider", "1–100 characters"));
    }
    let actor = caller.actor().clone();
    act(state, key, move |r, k, now| {
        Ok(r.add_provider(&actor, k, &p, now)?)
    })
    .await
}

#[utoipa::path(get, path = "/api/filings/{key}/certificate", tag = "filings",
    params(("key" = String, Path, description = "filing id, number or domain")),
    responses((status = 200, description = "bazs.cert", content_type = "text/plain"), (status = 403), (status = 404)))]
pub async fn certificate(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(key): ApiPath<String>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let k = parse_key(&key);
        let (f, _) = load_visible(&state, caller.actor(), &k)?;
        let c = f.certificate.ok_or_else(|| ApiError::NotFound {
            what: format!("certificate of {k}"),
        })?;
        Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (
                    header::CONTENT_DISPOSITION,
                    "attachment; filename=\"bazs.cert\"",
                ),
            ],
            c.text,
        )
            .into_response())
    })
    .await
}

/// One filing in a list.
#[derive(Debug, Serialize, Deserialize)]
pub struct FilingSummary {
    pub id: u64,
    pub status: String,
    pub service_number: Option<String>,
    pub name: String,
    pub domains: Vec<String>,
    pub province: String,
    /// Pre-approval documents attached and not yet checked (what `/api/pre-approvals` lists
    /// them for: the category to name in `pre-approval/check`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentToCheck>,
}

/// A pre-approval document waiting for a pre-approval user's check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentToCheck {
    pub category: String,
    pub document: String,
}

fn summaries(
    state: &Shared,
    filings: Vec<Filing>,
    province: Option<char>,
) -> Result<Vec<FilingSummary>, ApiError> {
    let store = state.registry.store();
    let mut out = Vec::new();
    for f in filings {
        let Some(s) = store.subject(f.subject_id)? else {
            continue;
        };
        if province.is_some_and(|p| p != s.province) {
            continue;
        }
        out.push(FilingSummary {
            id: f.id,
            status: f.status_label().to_string(),
            service_number: f.number.as_ref().map(|n| n.to_string()),
            name: f.name.clone(),
            domains: f.domains.iter().map(|d| d.to_string()).collect(),
            province: s.province.to_string(),
            documents: f
                .categories
                .iter()
                .filter(|c| c.pre_approval && c.check.is_none())
                .filter_map(|c| {
                    Some(DocumentToCheck {
                        category: c.category.clone(),
                        document: c.document.clone()?,
                    })
                })
                .collect(),
        });
    }
    Ok(out)
}

fn oversight_province(actor: &Actor, what: &str) -> Result<Option<char>, ApiError> {
    match actor {
        Actor::Miit => Ok(None),
        Actor::Bureau { province } => Ok(Some(*province)),
        other => Err(forbidden(format!("{other} may not {what}"))),
    }
}

#[utoipa::path(get, path = "/api/review/queue", tag = "review",
    responses((status = 200, description = "filings awaiting review (a bureau sees its province)"), (status = 403)))]
pub async fn review_queue(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<Vec<FilingSummary>>, ApiError> {
    let province = oversight_province(caller.actor(), "see the review queue")?;
    blocking(move || {
        let q = state.registry.review_queue(province)?;
        Ok(ApiJson(summaries(&state, q, province)?))
    })
    .await
}

#[utoipa::path(post, path = "/api/review/auto", tag = "review",
    responses((status = 200, description = "approved and refused filings of the bureau's queue"), (status = 403)))]
pub async fn review_auto(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<crate::registry::ReviewReport>, ApiError> {
    let actor = caller.actor().clone();
    if !matches!(actor, Actor::Bureau { .. }) {
        return Err(forbidden(format!(
            "{actor} may not review; only a bureau, in its province"
        )));
    }
    blocking(move || Ok(ApiJson(state.registry.review_auto(&actor, unix_now())?))).await
}

#[utoipa::path(get, path = "/api/empty-shells", tag = "review",
    responses((status = 200, description = "approved filings with no access provider left"), (status = 403)))]
pub async fn empty_shells(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<Vec<FilingSummary>>, ApiError> {
    let province = oversight_province(caller.actor(), "list empty shells")?;
    blocking(move || {
        let q = state.registry.empty_shells()?;
        Ok(ApiJson(summaries(&state, q, province)?))
    })
    .await
}
