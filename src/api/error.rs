//! The one place that maps errors to HTTP responses. Every error body has the shape
//! `{"error": {"code": "...", "message": "...", "field": "..."}}` with a stable `code`; internal
//! details are logged, never sent.

use axum::extract::rejection::JsonRejection;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An API failure, as the client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 400: the input is wrong; `field` names the offending field when known.
    BadRequest {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// 401: no or invalid credentials (never says whether an account exists).
    Unauthorized,
    /// 403: authenticated, but this role may not do this.
    Forbidden { message: String },
    /// 404
    NotFound { what: String },
    /// 409: the request conflicts with the registry's state (a workflow rule refused it).
    Conflict { code: &'static str, message: String },
    /// 413
    PayloadTooLarge,
    /// 415
    UnsupportedMediaType,
    /// 429
    RateLimited { retry_after_secs: u64 },
    /// 503
    Unavailable { message: String },
    /// 500: something broke on our side; the detail is logged, not returned.
    Internal { detail: String },
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code: "invalid_field",
            message: message.into(),
            field: Some(field.into()),
        }
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        ApiError::Internal {
            detail: detail.to_string(),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message, field): (&str, String, Option<&str>) = match &self {
            ApiError::BadRequest {
                code,
                message,
                field,
            } => (code, message.clone(), field.as_deref()),
            ApiError::Unauthorized => (
                "unauthorized",
                "missing or invalid credentials".into(),
                None,
            ),
            ApiError::Forbidden { message } => ("forbidden", message.clone(), None),
            ApiError::NotFound { what } => ("not_found", format!("{what} not found"), None),
            ApiError::Conflict { code, message } => (code, message.clone(), None),
            ApiError::PayloadTooLarge => (
                "payload_too_large",
                "request body is too large".into(),
                None,
            ),
            ApiError::UnsupportedMediaType => (
                "unsupported_media_type",
                "expected Content-Type: application/json".into(),
                None,
            ),
            ApiError::RateLimited { .. } => ("rate_limited", "too many requests".into(), None),
            ApiError::Unavailable { message } => ("unavailable", message.clone(), None),
            ApiError::Internal { detail } => {
                tracing::error!(%detail, "internal error in API handler");
                ("internal", "internal error".into(), None)
            }
        };
        let body = Body {
            error: Inner {
                code,
                message: &message,
                field,
            },
        };
        let mut resp = (status, axum::Json(body)).into_response();
        if let ApiError::RateLimited { retry_after_secs } = self {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r {
            JsonRejection::JsonDataError(e) => {
                // The body text names the path of the offending field (serde_path_to_error).
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize the JSON body into the target type: ")
                    .unwrap_or(&text)
                    .to_string();
                let field = detail
                    .split_once(':')
                    .map(|(f, _)| f.trim().to_string())
                    .filter(|f| !f.is_empty() && !f.contains(' '));
                ApiError::BadRequest {
                    code: "invalid_field",
                    message: detail,
                    field,
                }
            }
            JsonRejection::JsonSyntaxError(_) => {
                ApiError::bad_request("malformed_json", "the body is not valid JSON")
            }
            JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
            JsonRejection::BytesRejection(_) => ApiError::PayloadTooLarge,
            _ => ApiError::bad_request("bad_request", "the request body could not be read"),
        }
    }
}

/// A JSON body extractor whose rejections go through [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

impl<T: Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}
