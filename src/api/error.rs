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

impl ApiError {
    /// What the client may see: the stable code, the message and the offending field.
    /// Internal details are logged here and replaced by a generic message. The JSON API and
    /// the HTML pages ([`crate::web`]) both answer with these parts.
    pub fn public_parts(&self) -> (&str, String, Option<&str>) {
        match self {
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
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message, field) = self.public_parts();
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

impl From<crate::registry::RegistryError> for ApiError {
    fn from(e: crate::registry::RegistryError) -> Self {
        use crate::registry::workflow::Rule;
        use crate::registry::RegistryError as R;
        match e {
            R::Workflow { what, refusal } => {
                let message = format!("{what}: {refusal}");
                let code = match refusal.rule {
                    Rule::Permission => return ApiError::Forbidden { message },
                    Rule::AccessVerification => "refused_access_verification",
                    Rule::PreApproval => "refused_pre_approval",
                    Rule::BulletinBoard => "refused_bulletin_board",
                    Rule::Review => "refused_review",
                    Rule::UnderReview => "refused_under_review",
                    Rule::Cancellation => "refused_cancellation",
                    Rule::Access => "refused_access",
                    Rule::DuplicateDomain => "duplicate_domain",
                    Rule::State => "refused_state",
                    Rule::Data => {
                        return ApiError::BadRequest {
                            code: "invalid_data",
                            message,
                            field: None,
                        }
                    }
                };
                ApiError::Conflict { code, message }
            }
            R::NotFound(what) => ApiError::NotFound { what },
            R::Input { field, reason } => {
                // CLI-style field names (`--domain`) become plain names.
                let field = field.trim_start_matches('-').to_string();
                ApiError::invalid_field(field, reason)
            }
            R::Upload(e) => ApiError::BadRequest {
                code: "bad_upload",
                message: e.to_string(),
                field: None,
            },
            R::Store(e) => e.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::registry::store::StoreError> for ApiError {
    /// A concurrent write refused by the database is a 409 the client may retry (its details
    /// stay in the log); every other store failure is internal.
    fn from(e: crate::registry::store::StoreError) -> Self {
        match e {
            crate::registry::store::StoreError::Conflict { context } => {
                tracing::info!(%context, "a write conflicted with a concurrent one");
                ApiError::Conflict {
                    code: "write_conflict",
                    message:
                        "a concurrent request changed the same data; nothing was written, retry"
                            .into(),
                }
            }
            e => ApiError::internal(e),
        }
    }
}

impl From<crate::accounts::service::AccountError> for ApiError {
    fn from(e: crate::accounts::service::AccountError) -> Self {
        use crate::accounts::service::AccountError as A;
        match e {
            A::Credential(c) => {
                let field = match c {
                    crate::accounts::CredentialError::UsernameCharacters(_)
                    | crate::accounts::CredentialError::UsernameEmpty => "username",
                    crate::accounts::CredentialError::Hash(h) => {
                        return ApiError::internal(h);
                    }
                    _ => "password",
                };
                ApiError::invalid_field(field, c.to_string())
            }
            A::Input { field, reason } => ApiError::invalid_field(field, reason),
            A::Taken { username } => ApiError::Conflict {
                code: "username_taken",
                message: format!("username {username:?} is taken"),
            },
            A::InvalidCode => ApiError::BadRequest {
                code: "invalid_code",
                message: "the code is wrong or has expired".into(),
                field: None,
            },
            A::Unauthorized => ApiError::Unauthorized,
            A::Forbidden(message) => ApiError::Forbidden { message },
            A::NotFound(what) => ApiError::NotFound { what },
            A::RateLimited { retry_after_secs } => ApiError::RateLimited { retry_after_secs },
            A::Store(s) => s.into(),
        }
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        let text = r.body_text();
        let detail = text
            .strip_prefix("Failed to deserialize query string: ")
            .unwrap_or(&text)
            .to_string();
        // serde names a missing or unknown field in backquotes.
        let field = detail.split('`').nth(1).map(str::to_string);
        ApiError::BadRequest {
            code: "invalid_query",
            message: detail,
            field,
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::BadRequest {
            code: "invalid_path",
            message: r.body_text(),
            field: None,
        }
    }
}

/// A query-string extractor whose rejections go through [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// A path-parameter extractor whose rejections go through [`ApiError`].
#[derive(Debug, Clone, Copy, Default, axum::extract::FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

impl From<axum::extract::rejection::BytesRejection> for ApiError {
    fn from(r: axum::extract::rejection::BytesRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::bad_request("bad_request", "the request body could not be read")
        }
    }
}

/// A raw body extractor (size-limited) whose rejections go through [`ApiError`].
#[derive(Debug, Clone, Default)]
pub struct ApiBytes(pub axum::body::Bytes);

#[axum::async_trait]
impl<S: Send + Sync> axum::extract::FromRequest<S> for ApiBytes {
    type Rejection = ApiError;
    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        axum::body::Bytes::from_request(req, state)
            .await
            .map(ApiBytes)
            .map_err(ApiError::from)
    }
}
