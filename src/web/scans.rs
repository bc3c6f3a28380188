//! `/scans/{id}`: a scan of the history as the HTML report ([`crate::report::HtmlReport`]),
//! for MIIT (every site) and the bureaus (their province's sites of national scans and of
//! their own province's scans), the same scoping as `GET /api/scans/{id}` (whose handler
//! decides who may see which scan). Without a session the page sends the browser to sign in.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{html_response, Chrome, WebError, WebState};
use crate::api::error::ApiPath;
use crate::api::{blocking, ApiError};
use crate::report::{province_counts, report_csp, verdict_counts, HtmlReport};

pub async fn report(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let lang = chrome.lang;
    let err = |e| WebError::new(lang, e);
    let Some(user) = chrome.user.as_ref() else {
        return Ok(chrome.see_other("/login"));
    };
    let view = crate::api::scans::viewer(user.actor()).map_err(err)?;
    let status =
        crate::api::scans::show(State(state.api.clone()), user.caller(), ApiPath(id.clone()))
            .await
            .map_err(err)?
            .0;
    let Some(scan) = status.scan else {
        // A job that has not started its scan yet.
        return Err(err(ApiError::NotFound {
            what: format!("the report of {id} (the scan has not started)"),
        }));
    };
    let history = state.api.scans.history().clone();
    let html = blocking(move || {
        let path = history.records_path(&scan.id).map_err(ApiError::internal)?;
        let province = view.map(|p| p.to_string());
        let report =
            HtmlReport::from_jsonl_path(&path, province.as_deref()).map_err(ApiError::internal)?;
        // The previous completed scan of the same scope.
        let previous = history
            .list()
            .map_err(ApiError::internal)?
            .into_iter()
            .filter(|m| {
                m.ended_at.is_some() && m.scope == scan.scope && m.started_at < scan.started_at
            })
            .max_by_key(|m| m.started_at)
            .map(|m| match &province {
                None => verdict_counts(&m.summary),
                Some(p) => province_counts(&m.summary, p),
            });
        let title = match &province {
            None => format!("扫描 {}", scan.id),
            Some(p) => format!("扫描 {} · {p}", scan.id),
        };
        report
            .render(
                &title,
                scan.ended_at.unwrap_or(scan.started_at),
                previous.as_ref(),
            )
            .map_err(ApiError::internal)
    })
    .await
    .map_err(err)?;
    Ok(chrome.finish(html_response(StatusCode::OK, html, &report_csp())))
}
