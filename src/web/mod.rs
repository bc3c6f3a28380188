//! The HTML pages `beian serve` renders (askama templates in `templates/`, checked at compile
//! time): the public query, code tables and announcements ([`public`]), the filer's self-check
//! ([`check`]), scan reports ([`scans`]) and the filing workspace ([`app`]). Every page works
//! without JavaScript; Chinese first with an English switch (`?lang=en`, remembered in a
//! cookie); no asset from outside the binary (`/assets/app.css`).
//!
//! This module owns the browser's side of HTTP: the language and CSRF cookies, the session
//! cookie, form extraction and HTML error pages. What a page may show and do is decided by the
//! same library calls and API handlers the JSON API uses (the pages call them with the
//! session's [`Caller`]); errors keep the API's one mapping ([`ApiError::public_parts`]).
//!
//! Cookies (all `HttpOnly; SameSite=Strict; Path=/`, `Secure` when the request came through
//! an https front end, i.e. with `X-Forwarded-Proto: https`):
//! - `beian_session`: the account session token (the same sessions as the API's bearer token);
//! - `beian_csrf`: a random token for anonymous forms (double submit);
//! - `beian_lang`: `zh` or `en`.
//!
//! CSRF: every state-changing form carries a `csrf` field. With a session it must equal
//! `sha256("beian-csrf-v1\0" ‖ session token)` (bound to the session, so nothing is stored);
//! without one, the `beian_csrf` cookie's value. A POST without the right token gets 403.

pub mod app;
pub mod check;
pub mod public;
pub mod scans;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use sha2::Digest;

use crate::accounts::service::Accounts;
use crate::accounts::{Actor, UserRecord};
use crate::api::{blocking, ApiError, Caller, Shared};

/// The session cookie.
pub const SESSION_COOKIE: &str = "beian_session";
/// The anonymous forms' CSRF cookie.
pub const CSRF_COOKIE: &str = "beian_csrf";
/// The language cookie.
pub const LANG_COOKIE: &str = "beian_lang";
/// The form field every state-changing form carries.
pub const CSRF_FIELD: &str = "csrf";

/// The stylesheet of every page (embedded in the binary).
pub const APP_CSS: &str = include_str!("../../templates/app.css");

/// What the pages share: the API's state and the self-check jobs.
#[derive(Clone)]
pub struct WebState {
    pub api: Shared,
    pub checks: Arc<check::CheckJobs>,
}

/// The page language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Zh,
    En,
}

impl Lang {
    /// The text in this language.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }

    /// The `lang` attribute.
    pub fn code(&self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn is_en(&self) -> bool {
        *self == Lang::En
    }

    fn param(&self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        match s {
            "zh" | "zh-CN" | "cn" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }
}

/// The signed-in user as the page chrome shows it.
#[derive(Debug, Clone)]
pub struct SessionUser {
    pub user: UserRecord,
    pub token: String,
}

impl SessionUser {
    pub fn caller(&self) -> Caller {
        Caller {
            user: self.user.clone(),
            token: self.token.clone(),
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.user.actor
    }
}

/// Everything a page needs about the request: language, CSRF token, the session's user, the
/// link that switches language, and the cookies to set.
pub struct Chrome {
    pub lang: Lang,
    /// The token this page's forms carry.
    pub csrf: String,
    pub user: Option<SessionUser>,
    /// The current page in the other language.
    pub switch_href: String,
    /// Which navigation entry is current (`query`, `check`, `codes`, `announcements`, `app`).
    pub nav: &'static str,
    secure: bool,
    set_cookies: Vec<String>,
    /// The anonymous CSRF cookie's value, when the request had one.
    anon_csrf: Option<String>,
}

impl Chrome {
    /// The text in the page's language.
    pub fn t<'a>(&self, zh: &'a str, en: &'a str) -> &'a str {
        self.lang.t(zh, en)
    }

    /// Mark the navigation entry of this page.
    pub fn at(mut self, nav: &'static str) -> Self {
        self.nav = nav;
        self
    }

    /// The signed-in user's role, as shown in the header.
    pub fn user_label(&self) -> String {
        self.user
            .as_ref()
            .map(|u| format!("{} ({})", u.user.username, u.user.actor))
            .unwrap_or_default()
    }

    /// Refuse a state-changing request whose form token is wrong (403).
    pub fn require_csrf(&self, token: Option<&str>) -> Result<(), WebError> {
        let expected = match &self.user {
            Some(u) => Some(session_csrf(&u.token)),
            None => self.anon_csrf.clone(),
        };
        let ok = match (expected, token) {
            (Some(e), Some(t)) => constant_eq(e.as_bytes(), t.as_bytes()),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(WebError::new(
                self.lang,
                ApiError::Forbidden {
                    message: "the form's security token is missing or wrong; reload the page and submit again".into(),
                },
            ))
        }
    }

    /// A cookie with this page's attributes.
    fn cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
        if let Some(a) = max_age {
            c.push_str(&format!("; Max-Age={a}"));
        }
        if self.secure {
            c.push_str("; Secure");
        }
        c
    }

    /// Set the session cookie (after login).
    pub fn set_session(&mut self, token: &str, max_age: i64) {
        let c = self.cookie(SESSION_COOKIE, token, Some(max_age.max(0)));
        self.set_cookies.push(c);
    }

    /// Clear the session cookie (logout, or an expired session).
    pub fn clear_session(&mut self) {
        let c = self.cookie(SESSION_COOKIE, "", Some(0));
        self.set_cookies.push(c);
    }

    /// Add the cookies this request sets to a response.
    pub fn finish(&self, mut resp: Response) -> Response {
        for c in &self.set_cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                resp.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        resp
    }

    /// A rendered page (200) with the security headers and this request's cookies.
    pub fn page(&self, html: Result<String, askama::Error>) -> Response {
        self.page_with(StatusCode::OK, html)
    }

    pub fn page_with(&self, status: StatusCode, html: Result<String, askama::Error>) -> Response {
        match html {
            Ok(body) => self.finish(html_response(status, body, PAGE_CSP)),
            Err(e) => WebError::new(self.lang, ApiError::internal(e)).into_response(),
        }
    }

    /// A 303 to `to` (after a form), with this request's cookies.
    pub fn see_other(&self, to: &str) -> Response {
        self.finish(Redirect::to(to).into_response())
    }
}

/// The CSP of the pages: only our own stylesheet, no script, forms to ourselves.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML response with the security headers.
pub fn html_response(status: StatusCode, body: String, csp: &str) -> Response {
    let mut resp = (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(csp) {
        resp.headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// The CSRF token of a session.
pub fn session_csrf(session_token: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(b"beian-csrf-v1\0");
    h.update(session_token.as_bytes());
    hex::encode(h.finalize())
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// The value of cookie `name`, if the request has it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty() && v.len() <= 200)
}

/// The query string's `lang`, and the path and query without it.
fn split_lang(uri: &axum::http::Uri) -> (Option<Lang>, String) {
    let mut lang = None;
    let mut keep = Vec::new();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.strip_prefix("lang=") {
            Some(v) => lang = Lang::parse(v),
            None => keep.push(pair),
        }
    }
    let mut here = uri.path().to_string();
    if !keep.is_empty() {
        here.push('?');
        here.push_str(&keep.join("&"));
    }
    (lang, here)
}

#[axum::async_trait]
impl FromRequestParts<WebState> for Chrome {
    type Rejection = WebError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let headers = &parts.headers;
        let secure = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
        let (asked, here) = split_lang(&parts.uri);
        let remembered = cookie(headers, LANG_COOKIE).and_then(Lang::parse);
        let lang = asked.or(remembered).unwrap_or(Lang::Zh);
        let other = match lang {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        };
        let sep = if here.contains('?') { '&' } else { '?' };
        let switch_href = format!("{here}{sep}lang={}", other.param());
        let anon_csrf = cookie(headers, CSRF_COOKIE)
            .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_string);
        let mut chrome = Chrome {
            lang,
            csrf: String::new(),
            user: None,
            switch_href,
            nav: "",
            secure,
            set_cookies: Vec::new(),
            anon_csrf,
        };
        if let Some(l) = asked {
            if remembered != Some(l) {
                let c = chrome.cookie(LANG_COOKIE, l.param(), Some(365 * 86_400));
                chrome.set_cookies.push(c);
            }
        }
        if let Some(token) = cookie(headers, SESSION_COOKIE).map(str::to_string) {
            let reg = state.api.registry.clone();
            let t = token.clone();
            let found = blocking(move || {
                Ok(Accounts::authenticate(reg.store(), &t, crate::api::unix_now()).ok())
            })
            .await
            .map_err(|e| WebError::new(lang, e))?;
            match found {
                Some(user) => chrome.user = Some(SessionUser { user, token }),
                None => chrome.clear_session(),
            }
        }
        chrome.csrf = match (&chrome.user, &chrome.anon_csrf) {
            (Some(u), _) => session_csrf(&u.token),
            (None, Some(c)) => c.clone(),
            (None, None) => {
                let t = random_token();
                let c = chrome.cookie(CSRF_COOKIE, &t, None);
                chrome.set_cookies.push(c);
                t
            }
        };
        Ok(chrome)
    }
}

/// An error shown as an HTML page, with the API's status and public message.
#[derive(Debug)]
pub struct WebError {
    pub lang: Lang,
    pub error: ApiError,
}

impl WebError {
    pub fn new(lang: Lang, error: ApiError) -> Self {
        WebError { lang, error }
    }
}

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    lang: Lang,
    status: u16,
    title: &'a str,
    message: String,
    code: &'a str,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        use askama::Template;
        let status = self.error.status();
        let (code, message, _) = self.error.public_parts();
        let l = self.lang;
        let title = match status.as_u16() {
            400 => l.t("输入有误", "Invalid input"),
            401 => l.t("请先登录", "Please sign in"),
            403 => l.t("无权操作", "Not allowed"),
            404 => l.t("未找到", "Not found"),
            409 => l.t("操作被拒绝", "Refused"),
            429 => l.t("请求过于频繁", "Too many requests"),
            _ => l.t("服务暂时出错", "Something went wrong"),
        };
        let page = ErrorPage {
            lang: l,
            status: status.as_u16(),
            title,
            message,
            code,
        };
        let body = page
            .render()
            .unwrap_or_else(|_| "internal error".to_string());
        let mut resp = html_response(status, body, PAGE_CSP);
        if let ApiError::RateLimited { retry_after_secs } = self.error {
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        resp
    }
}

/// A form body (`application/x-www-form-urlencoded`) whose rejection is an HTML 400.
pub struct WebForm<T>(pub T);

#[axum::async_trait]
impl<T> axum::extract::FromRequest<WebState> for WebForm<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = WebError;
    async fn from_request(
        req: axum::extract::Request,
        state: &WebState,
    ) -> Result<Self, Self::Rejection> {
        let lang = cookie(req.headers(), LANG_COOKIE)
            .and_then(Lang::parse)
            .unwrap_or(Lang::Zh);
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(t)) => Ok(WebForm(t)),
            Err(r) => Err(WebError::new(
                lang,
                ApiError::bad_request("invalid_form", r.body_text()),
            )),
        }
    }
}

async fn app_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        APP_CSS,
    )
        .into_response()
}

/// Every page: (method, path, anonymous, handler). Anonymous routes count against the
/// per-client quotas of [`crate::api::limits::classify`] (the self-check POST against the
/// self-check limiter, as `/api/check`); the others need a session.
pub fn routes() -> Vec<(&'static str, &'static str, bool, MethodRouter<WebState>)> {
    vec![
        ("get", "/", true, get(public::index)),
        ("get", "/codes", true, get(public::codes)),
        ("get", "/announcements", true, get(public::announcements)),
        ("get", "/announcements/:id", true, get(public::announcement)),
        ("get", "/assets/app.css", true, get(app_css)),
        ("get", "/check", true, get(check::form)),
        ("post", "/check", true, post(check::start)),
        ("get", "/check/:id", true, get(check::result)),
        ("get", "/login", true, get(app::login_form)),
        ("post", "/login", true, post(app::login)),
        ("post", "/login/verify", true, post(app::login_verify)),
        ("post", "/logout", false, post(app::logout)),
        ("get", "/app", false, get(app::home)),
        (
            "get",
            "/app/filings/:id/certificate",
            false,
            get(app::certificate),
        ),
        ("post", "/app/filings/:id/:action", false, post(app::act)),
        ("post", "/app/users", false, post(app::create_user)),
        (
            "post",
            "/app/import",
            false,
            post(app::import_upload).layer(axum::extract::DefaultBodyLimit::max(
                crate::api::UPLOAD_LIMIT,
            )),
        ),
        ("post", "/app/keys/rotate", false, post(app::rotate_keys)),
        ("get", "/scans/:id", false, get(scans::report)),
    ]
}

/// The pages' router, to merge into the API router (its layers — quotas, metrics, body
/// limit — apply to the pages too).
/// On a read-only replica (`replica`), only the pages [`crate::api::replica_serves`] names.
pub fn router(api: Shared, replica: bool) -> Router<Shared> {
    let state = WebState {
        api,
        checks: Arc::new(check::CheckJobs::default()),
    };
    let mut router: Router<WebState> = Router::new();
    for (method, path, _, handler) in routes() {
        if !replica || crate::api::replica_serves(method, path) {
            router = router.route(path, handler);
        }
    }
    router.with_state(state)
}

/// Format unix seconds as a date (UTC+8, the registry's civil time) for the pages.
pub fn date(unix: Option<i64>) -> String {
    unix.and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0))
        .map(|d| {
            (d + chrono::Duration::hours(8))
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|| "—".to_string())
}

/// Format unix seconds as date and time (UTC+8).
pub fn datetime(unix: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(unix, 0)
        .map(|d| {
            (d + chrono::Duration::hours(8))
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_else(|| "—".to_string())
}

/// A filing status in words.
pub fn status_text(lang: Lang, status: &str) -> String {
    let (zh, en) = match status {
        "awaiting_access_verification" => ("待接入商核验", "awaiting access verification"),
        "awaiting_review" => ("待管局审核", "awaiting review"),
        "rejected" => ("已退回", "returned"),
        "active" => ("已备案（有效）", "filed (active)"),
        "cancelled" => ("已注销", "cancelled"),
        "revoked" => ("已撤销", "revoked"),
        "cancellation_requested" => ("注销申请中", "cancellation requested"),
        "change_under_review" => ("变更审核中", "change under review"),
        "renewal_under_review" => ("年度核验审核中", "annual review under way"),
        "annual_review_overdue" => ("年度核验逾期", "annual review overdue"),
        other => (other, other),
    };
    lang.t(zh, en).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    #[test]
    fn anonymous_pages_are_classified_and_session_pages_are_not() {
        for (method, path, anonymous, _) in routes() {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let classed = crate::api::limits::classify(&m, path).is_some();
            // The self-check POST has its own limiter (as /api/check).
            let expected = anonymous && !(method == "post" && path == "/check");
            assert_eq!(classed, expected, "{method} {path}");
        }
    }

    #[test]
    fn the_language_switch_keeps_the_query() {
        let uri: axum::http::Uri = "/?q=example.com&lang=en".parse().unwrap();
        let (lang, here) = split_lang(&uri);
        assert_eq!(lang, Some(Lang::En));
        assert_eq!(here, "/?q=example.com");
    }

    #[test]
    fn cookies_and_tokens() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; beian_lang=en; beian_session=tok"),
        );
        assert_eq!(cookie(&h, LANG_COOKIE), Some("en"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(cookie(&h, CSRF_COOKIE), None);
        assert_ne!(session_csrf("a"), session_csrf("b"));
        assert_eq!(session_csrf("a").len(), 64);
        assert!(constant_eq(b"abc", b"abc"));
        assert!(!constant_eq(b"abc", b"abd"));
        assert!(!constant_eq(b"abc", b"ab"));
    }

    #[test]
    fn dates_are_civil_time() {
        assert_eq!(date(Some(1_700_000_000)), "2023-11-15");
        assert_eq!(date(None), "—");
    }
}
