//! Account endpoints: self-registration and activation, login (password → challenge code →
//! session token), logout, password reset by one-time token, and top-down user management.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::ApiPath;
use super::{blocking, unix_now, ApiError, ApiJson, Caller, Shared};
use crate::accounts::service::{Accounts, NewUser, Registration};
use crate::accounts::UserRecord;

/// A user as shown by the API (never the password hash).
#[derive(Debug, Serialize, Deserialize)]
pub struct UserView {
    pub username: String,
    pub actor: String,
    pub created_at: i64,
    pub created_by: String,
}

impl From<&UserRecord> for UserView {
    fn from(u: &UserRecord) -> Self {
        UserView {
            username: u.username.clone(),
            actor: u.actor.to_string(),
            created_at: u.created_at,
            created_by: u.created_by.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub username: String,
    pub password: String,
    pub mobile: String,
    pub email: String,
}

fn accepted(message: &str) -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({ "status": "accepted", "message": message })),
    )
        .into_response()
}

#[utoipa::path(post, path = "/api/register", tag = "accounts",
    request_body(content = String, description = "{username, password, mobile, email}", content_type = "application/json"),
    responses((status = 202, description = "codes sent to the mobile and the email"), (status = 400), (status = 409)))]
pub async fn register(
    State(state): State<Shared>,
    ApiJson(b): ApiJson<RegisterBody>,
) -> Result<Response, ApiError> {
    let r = Registration {
        username: b.username,
        password: b.password,
        mobile: b.mobile,
        email: b.email,
    };
    let st = state.clone();
    let msgs = blocking(move || {
        st.accounts
            .register(st.registry.store(), &r, unix_now())
            .map_err(ApiError::from)
    })
    .await?;
    state.deliver(msgs).await?;
    Ok(accepted(
        "a code was sent to the mobile number and another to the email address; activate with both",
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivateBody {
    pub username: String,
    pub sms_code: String,
    pub email_code: String,
}

#[utoipa::path(post, path = "/api/register/activate", tag = "accounts",
    request_body(content = String, description = "{username, sms_code, email_code}", content_type = "application/json"),
    responses((status = 201, description = "the account is active"), (status = 400)))]
pub async fn activate(
    State(state): State<Shared>,
    ApiJson(b): ApiJson<ActivateBody>,
) -> Result<Response, ApiError> {
    let u = blocking(move || {
        state
            .accounts
            .activate(
                state.registry.store(),
                &b.username,
                &b.sms_code,
                &b.email_code,
                unix_now(),
            )
            .map_err(ApiError::from)
    })
    .await?;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&u))).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub username: String,
    pub password: String,
}

/// Step 1 of login: the same answer whether or not the account exists.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginStarted {
    pub challenge_id: String,
    pub message: String,
}

#[utoipa::path(post, path = "/api/login", tag = "accounts",
    request_body(content = String, description = "{username, password}", content_type = "application/json"),
    responses((status = 200, description = "a challenge id; when the credentials are right, a code was sent"), (status = 429)))]
pub async fn login(
    State(state): State<Shared>,
    req_ext: axum::http::Extensions,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<ApiJson<LoginStarted>, ApiError> {
    let client = super::client_ip(&req_ext).to_string();
    let st = state.clone();
    let (challenge_id, msgs) = blocking(move || {
        st.accounts
            .login_start(
                st.registry.store(),
                &b.username,
                &b.password,
                &client,
                unix_now(),
            )
            .map_err(ApiError::from)
    })
    .await?;
    state.deliver_any(msgs).await?;
    Ok(ApiJson(LoginStarted {
        challenge_id,
        message: "if the username and password are right, a login code was sent (valid 30 minutes)"
            .into(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginVerifyBody {
    pub challenge_id: String,
    pub code: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SessionView {
    pub token: String,
    pub expires_at: i64,
    pub user: UserView,
}

#[utoipa::path(post, path = "/api/login/verify", tag = "accounts",
    request_body(content = String, description = "{challenge_id, code}", content_type = "application/json"),
    responses((status = 200, description = "a session token (Bearer)"), (status = 401), (status = 429)))]
pub async fn login_verify(
    State(state): State<Shared>,
    req_ext: axum::http::Extensions,
    ApiJson(b): ApiJson<LoginVerifyBody>,
) -> Result<ApiJson<SessionView>, ApiError> {
    let client = super::client_ip(&req_ext).to_string();
    blocking(move || {
        let store = state.registry.store();
        let now = unix_now();
        let (token, session) =
            state
                .accounts
                .login_verify(store, &b.challenge_id, &b.code, &client, now)?;
        let user = Accounts::authenticate(store, &token, now)?;
        Ok(ApiJson(SessionView {
            token,
            expires_at: session.expires_at,
            user: UserView::from(&user),
        }))
    })
    .await
}

#[utoipa::path(post, path = "/api/logout", tag = "accounts",
    responses((status = 204, description = "the session is revoked"), (status = 401)))]
pub async fn logout(State(state): State<Shared>, caller: Caller) -> Result<StatusCode, ApiError> {
    blocking(move || {
        Accounts::logout(
            state.registry.store(),
            &caller.token,
            caller.actor(),
            unix_now(),
        )?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[utoipa::path(get, path = "/api/me", tag = "accounts",
    responses((status = 200, description = "the session's user"), (status = 401)))]
pub async fn me(caller: Caller) -> ApiJson<UserView> {
    ApiJson(UserView::from(&caller.user))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetRequestBody {
    pub username: String,
}

#[utoipa::path(post, path = "/api/password/reset-request", tag = "accounts",
    request_body(content = String, description = "{username}", content_type = "application/json"),
    responses((status = 202, description = "if the account has an email address, a one-time token was sent")))]
pub async fn reset_request(
    State(state): State<Shared>,
    ApiJson(b): ApiJson<ResetRequestBody>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let msg = blocking(move || {
        st.accounts
            .reset_request(st.registry.store(), &b.username, unix_now())
            .map_err(ApiError::from)
    })
    .await?;
    state.deliver(msg.into_iter().collect()).await?;
    Ok(accepted(
        "if the account exists and has an email address, a one-time reset token was sent",
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    pub token: String,
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/password/reset", tag = "accounts",
    request_body(content = String, description = "{token, new_password}", content_type = "application/json"),
    responses((status = 204, description = "password changed; every session revoked"), (status = 400)))]
pub async fn reset_confirm(
    State(state): State<Shared>,
    ApiJson(b): ApiJson<ResetBody>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        state.accounts.reset_confirm(
            state.registry.store(),
            &b.token,
            &b.new_password,
            unix_now(),
        )?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResendBody {
    pub username: String,
}

#[utoipa::path(post, path = "/api/register/resend", tag = "accounts",
    request_body(content = String, description = "{username}: a lost registration code; new codes go to the mobile and email of the pending registration (at most 3 times)", content_type = "application/json"),
    responses((status = 202, description = "accepted (the same answer whether or not the username is pending)")))]
pub async fn register_resend(
    State(state): State<Shared>,
    ApiJson(b): ApiJson<ResendBody>,
) -> Result<Response, ApiError> {
    let st = state.clone();
    let msgs = blocking(move || {
        st.accounts
            .registration_resend(st.registry.store(), &b.username, unix_now())
            .map_err(ApiError::from)
    })
    .await?;
    state.deliver(msgs).await?;
    Ok(accepted(
        "if this registration is pending, new codes were sent to its mobile number and email address",
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeBody {
    pub old_password: String,
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/password/change", tag = "accounts",
    request_body(content = String, description = "{old_password, new_password}", content_type = "application/json"),
    responses((status = 204, description = "changed; every session revoked (sign in again)"), (status = 400), (status = 401)))]
pub async fn change_password(
    State(state): State<Shared>,
    caller: Caller,
    ApiJson(b): ApiJson<PasswordChangeBody>,
) -> Result<StatusCode, ApiError> {
    let username = caller.user.username.clone();
    blocking(move || {
        state.accounts.change_password(
            state.registry.store(),
            &username,
            &b.old_password,
            &b.new_password,
            unix_now(),
        )?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactBody {
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub mobile: Option<String>,
}

#[utoipa::path(post, path = "/api/me/contact", tag = "accounts",
    request_body(content = String, description = "{email?, mobile?}: the new contact; a code goes to each new address", content_type = "application/json"),
    responses((status = 202, description = "codes sent; confirm at /api/me/contact/verify"), (status = 400)))]
pub async fn contact_change(
    State(state): State<Shared>,
    caller: Caller,
    ApiJson(b): ApiJson<ContactBody>,
) -> Result<Response, ApiError> {
    let username = caller.user.username.clone();
    let st = state.clone();
    let msgs = blocking(move || {
        st.accounts
            .contact_change_start(
                st.registry.store(),
                &username,
                b.email.as_deref(),
                b.mobile.as_deref(),
                unix_now(),
            )
            .map_err(ApiError::from)
    })
    .await?;
    state.deliver(msgs).await?;
    Ok(accepted(
        "a code was sent to each new address; confirm with them",
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactVerifyBody {
    #[serde(default)]
    pub email_code: Option<String>,
    #[serde(default)]
    pub sms_code: Option<String>,
}

#[utoipa::path(post, path = "/api/me/contact/verify", tag = "accounts",
    request_body(content = String, description = "{email_code?, sms_code?}: the codes sent to the new addresses", content_type = "application/json"),
    responses((status = 200, description = "the contact is changed"), (status = 400)))]
pub async fn contact_verify(
    State(state): State<Shared>,
    caller: Caller,
    ApiJson(b): ApiJson<ContactVerifyBody>,
) -> Result<Response, ApiError> {
    let username = caller.user.username.clone();
    let c = blocking(move || {
        state
            .accounts
            .contact_change_confirm(
                state.registry.store(),
                &username,
                b.email_code.as_deref(),
                b.sms_code.as_deref(),
                unix_now(),
            )
            .map_err(ApiError::from)
    })
    .await?;
    Ok(axum::Json(c).into_response())
}

#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, description = "users the caller manages"), (status = 403)))]
pub async fn list_users(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<Vec<UserView>>, ApiError> {
    blocking(move || {
        let users = Accounts::list_users(state.registry.store(), caller.actor())?;
        Ok(ApiJson(users.iter().map(UserView::from).collect()))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    pub password: Option<String>,
    pub role: crate::accounts::Role,
    pub province: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreatedUser {
    pub user: UserView,
    /// The generated password, shown once (absent when one was given).
    pub password: Option<String>,
}

#[utoipa::path(post, path = "/api/users", tag = "users",
    request_body(content = String, description = "{username, password?, role, province?, name?, email?, mobile?}", content_type = "application/json"),
    responses((status = 201, description = "the user"), (status = 403), (status = 409)))]
pub async fn create_user(
    State(state): State<Shared>,
    caller: Caller,
    ApiJson(b): ApiJson<NewUserBody>,
) -> Result<Response, ApiError> {
    let req = NewUser {
        username: b.username,
        password: b.password,
        role: b.role,
        province: b.province,
        name: b.name,
        email: b.email,
        mobile: b.mobile,
    };
    blocking(move || {
        let (u, password) =
            Accounts::create_user(state.registry.store(), &caller.user, &req, unix_now())?;
        Ok((
            StatusCode::CREATED,
            axum::Json(CreatedUser {
                user: UserView::from(&u),
                password,
            }),
        )
            .into_response())
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthoriseBody {
    pub authorised: bool,
}

#[utoipa::path(post, path = "/api/users/{username}/import-authorisation", tag = "users",
    params(("username" = String, Path, description = "an ISP user")),
    request_body(content = String, description = "{authorised: bool}", content_type = "application/json"),
    responses((status = 200, description = "the ISP user"), (status = 403)))]
pub async fn import_authorisation(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(username): ApiPath<String>,
    ApiJson(b): ApiJson<AuthoriseBody>,
) -> Result<ApiJson<UserView>, ApiError> {
    blocking(move || {
        let u = Accounts::set_import_authorisation(
            state.registry.store(),
            caller.actor(),
            &username,
            b.authorised,
            unix_now(),
        )?;
        Ok(ApiJson(UserView::from(&u)))
    })
    .await
}
