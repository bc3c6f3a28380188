//! Liveness and readiness for orchestrators: `/healthz` answers while the process serves
//! requests; `/readyz` also checks that the registry store answers a read and that the service
//! is not shutting down (Kubernetes stops routing to it then).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::{blocking, ApiError, Shared};
use crate::registry::store::RegistryScan;

#[utoipa::path(get, path = "/healthz", tag = "public",
    responses((status = 200, description = "the process serves requests")))]
pub async fn healthz() -> Response {
    (StatusCode::OK, "ok\n").into_response()
}

#[utoipa::path(get, path = "/readyz", tag = "public",
    responses((status = 200, description = "ready: the registry answers"), (status = 503, description = "shutting down, or the registry does not answer")))]
pub async fn readyz(State(state): State<Shared>) -> Result<Response, ApiError> {
    if state.is_stopping() {
        return Err(ApiError::Unavailable {
            message: "shutting down".into(),
        });
    }
    let reg = state.registry.clone();
    blocking(move || {
        reg.store().audit_head().map_err(|e| {
            tracing::warn!(error = %e, "readiness: the registry store does not answer");
            ApiError::Unavailable {
                message: "the registry does not answer".into(),
            }
        })
    })
    .await?;
    Ok((StatusCode::OK, "ready\n").into_response())
}
