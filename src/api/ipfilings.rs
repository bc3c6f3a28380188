//! IP filings over the API: the provider roles report, update, list and delete address blocks
//! (one at a time or as an upload of the IP template), and read the unit-information table.
//! The registry decides who may report which provider's blocks and which overlaps are
//! allowed; this module adds who may *see* them: an ISP its own blocks; IP reporters, bureaus
//! and MIIT all. Also the template downloads (`GET /api/templates/{kind}`, public).

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::error::{ApiBytes, ApiPath};
use super::{blocking, unix_now, ApiError, ApiJson, Caller, Shared};
use crate::accounts::Actor;
use crate::registry::ipfiling::IpFilingInput;
use crate::registry::model::{IpFiling, IpFilingId};
use crate::registry::{IpImportReport, IpUnit};
use crate::tabular::{template, TableKind};

/// Which providers' blocks `actor` may see: `Some(name)` for an ISP (its own), `None` for all.
fn visible_provider(actor: &Actor) -> Result<Option<String>, ApiError> {
    match actor {
        Actor::Isp { name, .. } => Ok(Some(name.clone())),
        Actor::IpReporter { .. } | Actor::Bureau { .. } | Actor::Miit => Ok(None),
        other => Err(ApiError::Forbidden {
            message: format!("{other} may not see IP filings"),
        }),
    }
}

fn may_see(actor: &Actor, f: &IpFiling) -> Result<(), ApiError> {
    match visible_provider(actor)? {
        Some(name) if name != f.provider => Err(ApiError::Forbidden {
            message: format!("{actor} may not see {}'s blocks", f.provider),
        }),
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this provider's blocks.
    #[serde(default)]
    pub provider: Option<String>,
}

#[utoipa::path(get, path = "/api/ip-filings", tag = "ip-filings",
    params(("provider" = Option<String>, Query, description = "only this provider's blocks")),
    responses((status = 200, description = "IP filings (an ISP sees its own)"), (status = 403)))]
pub async fn list(
    State(state): State<Shared>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<ApiJson<Vec<IpFiling>>, ApiError> {
    let own = visible_provider(caller.actor())?;
    blocking(move || {
        let all = state.registry.ip_filings()?;
        Ok(ApiJson(
            all.into_iter()
                .filter(|f| own.as_ref().is_none_or(|p| *p == f.provider))
                .filter(|f| q.provider.as_ref().is_none_or(|p| *p == f.provider))
                .collect(),
        ))
    })
    .await
}

#[utoipa::path(post, path = "/api/ip-filings", tag = "ip-filings",
    request_body(content = String, description = "one block: provider, network, source, status, allocated_to, province, city (as an import line)", content_type = "application/json"),
    responses((status = 201, description = "filed (or the same provider's identical block updated)"), (status = 400), (status = 403)))]
pub async fn create(
    State(state): State<Shared>,
    caller: Caller,
    ApiJson(input): ApiJson<IpFilingInput>,
) -> Result<Response, ApiError> {
    let actor = caller.actor().clone();
    blocking(move || {
        let f = state.registry.file_ip_block(&actor, &input, unix_now())?;
        Ok((StatusCode::CREATED, axum::Json(f)).into_response())
    })
    .await
}

#[utoipa::path(post, path = "/api/ip-filings/import", tag = "ip-filings",
    request_body(content = String, description = "JSON Lines, or the IP template (GET /api/templates/ip) as .xlsx, .xls or CSV; told by content", content_type = "application/octet-stream"),
    responses((status = 200, description = "accepted rows and per-row errors (sheet, row, column)"), (status = 400), (status = 403)))]
pub async fn import(
    State(state): State<Shared>,
    caller: Caller,
    ApiBytes(body): ApiBytes,
) -> Result<ApiJson<IpImportReport>, ApiError> {
    let actor = caller.actor().clone();
    visible_provider(&actor)?;
    blocking(move || {
        let r = state.registry.import_ip_upload(
            &body,
            crate::registry::Submitter::Actor(&actor),
            unix_now(),
        )?;
        Ok(ApiJson(r))
    })
    .await
}

#[utoipa::path(get, path = "/api/ip-filings/{id}", tag = "ip-filings",
    params(("id" = u64, Path, description = "IP filing id")),
    responses((status = 200, description = "one IP filing"), (status = 403), (status = 404)))]
pub async fn show(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(id): ApiPath<IpFilingId>,
) -> Result<ApiJson<IpFiling>, ApiError> {
    let actor = caller.actor().clone();
    blocking(move || {
        let f = state.registry.ip_filing(id)?;
        may_see(&actor, &f)?;
        Ok(ApiJson(f))
    })
    .await
}

#[utoipa::path(put, path = "/api/ip-filings/{id}", tag = "ip-filings",
    params(("id" = u64, Path, description = "IP filing id")),
    request_body(content = String, description = "the block's new data; provider and network identify the block and stay the same", content_type = "application/json"),
    responses((status = 200, description = "updated"), (status = 400), (status = 403), (status = 404)))]
pub async fn update(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(id): ApiPath<IpFilingId>,
    ApiJson(input): ApiJson<IpFilingInput>,
) -> Result<ApiJson<IpFiling>, ApiError> {
    let actor = caller.actor().clone();
    blocking(move || {
        let f = state
            .registry
            .update_ip_filing(&actor, id, &input, unix_now())?;
        Ok(ApiJson(f))
    })
    .await
}

#[utoipa::path(delete, path = "/api/ip-filings/{id}", tag = "ip-filings",
    params(("id" = u64, Path, description = "IP filing id")),
    responses((status = 204, description = "deleted"), (status = 403), (status = 404)))]
pub async fn remove(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(id): ApiPath<IpFilingId>,
) -> Result<StatusCode, ApiError> {
    let actor = caller.actor().clone();
    blocking(move || {
        state.registry.delete_ip_filing(&actor, id, unix_now())?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[utoipa::path(get, path = "/api/ip-units", tag = "ip-filings",
    responses((status = 200, description = "the IP unit-information table: each unit using addresses, with its blocks, provider and place"), (status = 403)))]
pub async fn units(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<Vec<IpUnit>>, ApiError> {
    let own = visible_provider(caller.actor())?;
    blocking(move || {
        let units = state.registry.ip_units()?;
        Ok(ApiJson(
            units
                .into_iter()
                .filter(|u| own.as_ref().is_none_or(|p| *p == u.provider))
                .collect(),
        ))
    })
    .await
}

#[utoipa::path(get, path = "/api/templates/{kind}", tag = "public",
    params(("kind" = String, Path, description = "`filing` or `ip`")),
    responses((status = 200, description = "the upload template (.xlsx): Chinese headers, drop-down lists from the code tables, instructions"), (status = 404)))]
pub async fn template_download(ApiPath(kind): ApiPath<String>) -> Result<Response, ApiError> {
    let (kind, name) = match kind.as_str() {
        "filing" => (TableKind::Filing, "beian-filing-template.xlsx"),
        "ip" => (TableKind::Ip, "beian-ip-template.xlsx"),
        other => {
            return Err(ApiError::NotFound {
                what: format!("template {other:?} (filing or ip)"),
            })
        }
    };
    let bytes = blocking(move || template::write(kind).map_err(ApiError::internal)).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
