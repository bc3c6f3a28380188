//! Per-client rate limits on the anonymous endpoints, keyed by the TCP peer's address: a
//! generous quota for the public queries (filing lookups, code tables, the keyring, the
//! OpenAPI document, announcements) and a strict one for the account endpoints an attacker
//! would hammer (registration, activation, login, login verification, password reset).
//! `/api/check` and `/probe` keep their own limiters in [`super::AppState`]. Over quota the
//! answer is [`ApiError::RateLimited`] (429 with `Retry-After`).
//!
//! The keyed limiters remember every client they saw; [`ClientLimits::retain_recent`] (called
//! by the service's housekeeping) forgets the ones whose quota has fully recovered.

use std::net::IpAddr;
use std::num::NonZeroU32;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::{ApiError, Shared};

/// Public queries allowed per client IP per minute (`[serve] public_per_minute`), as a burst
/// that refills evenly over the minute.
pub const PUBLIC_PER_MINUTE: u32 = 300;
/// Account requests (register, activate, login, login verify, password reset) allowed per
/// client IP per minute (`[serve] account_per_minute`).
pub const ACCOUNT_PER_MINUTE: u32 = 10;

/// Which quota a route counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteClass {
    /// Anonymous reads.
    Public,
    /// Anonymous account operations.
    Account,
}

/// The quota class of a route (its axum path), if it has one.
pub fn classify(method: &Method, path: &str) -> Option<RouteClass> {
    match (method.as_str(), path) {
        (
            "GET",
            "/api/openapi.json"
            | "/api/filed"
            | "/api/public/filings/:key"
            | "/api/public/subjects"
            | "/api/public/false-information"
            | "/api/codes"
            | "/api/codes/regions"
            | "/api/templates/:kind"
            | "/api/keyring"
            | "/api/announcements"
            | "/api/announcements/:id"
            | "/api/announcements/:id/attachments/:attachment"
            // The HTML pages (crate::web) anyone may open.
            | "/"
            | "/codes"
            | "/announcements"
            | "/announcements/:id"
            | "/assets/app.css"
            | "/check"
            | "/check/:id"
            | "/login",
        ) => Some(RouteClass::Public),
        (
            "POST",
            "/api/register"
            | "/api/register/activate"
            | "/api/register/resend"
            | "/api/login"
            | "/api/login/verify"
            | "/api/password/reset-request"
            | "/api/password/reset"
            | "/login"
            | "/login/verify",
        ) => Some(RouteClass::Account),
        _ => None,
    }
}

/// The two keyed limiters.
pub struct ClientLimits {
    public: DefaultKeyedRateLimiter<IpAddr>,
    account: DefaultKeyedRateLimiter<IpAddr>,
}

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl ClientLimits {
    /// Limiters allowing `public` and `account` requests per client per minute.
    pub fn new(public: u32, account: u32) -> Self {
        ClientLimits {
            public: RateLimiter::keyed(per_minute(public)),
            account: RateLimiter::keyed(per_minute(account)),
        }
    }

    /// Count one request of `class` from `ip`.
    pub fn check(&self, class: RouteClass, ip: IpAddr) -> Result<(), ApiError> {
        match class {
            RouteClass::Public => super::limit(&self.public, ip),
            RouteClass::Account => super::limit(&self.account, ip),
        }
    }

    /// Forget clients whose quota has recovered (bounds the limiters' memory).
    pub fn retain_recent(&self) {
        self.public.retain_recent();
        self.account.retain_recent();
    }

    /// Clients currently remembered (for tests and diagnostics).
    pub fn len(&self) -> usize {
        self.public.len() + self.account.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Middleware: count anonymous requests against their client's quota.
pub async fn limit_anonymous(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let class = req
        .extensions()
        .get::<MatchedPath>()
        .and_then(|p| classify(req.method(), p.as_str()));
    if let Some(class) = class {
        let ip = super::client_ip(req.extensions());
        if let Err(e) = state.limits.check(class, ip) {
            return e.into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_anonymous_route_has_a_class_and_no_other_does() {
        let anonymous = [
            "/api/openapi.json",
            "/api/filed",
            "/api/public/filings/:key",
            "/api/public/subjects",
            "/api/public/false-information",
            "/api/codes",
            "/api/codes/regions",
            "/api/templates/:kind",
            "/api/keyring",
            "/api/register",
            "/api/register/activate",
            "/api/register/resend",
            "/api/login",
            "/api/login/verify",
            "/api/password/reset-request",
            "/api/password/reset",
            "/api/announcements",
            "/api/announcements/:id",
            "/api/announcements/:id/attachments/:attachment",
        ];
        for (method, path, _) in super::super::routes() {
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let classed = classify(&m, path).is_some();
            let expected = anonymous.contains(&path) && method != "delete" && {
                // Creating announcements and uploading attachments need a session.
                !(method == "post" && path.starts_with("/api/announcements"))
            };
            assert_eq!(classed, expected, "{method} {path}");
        }
    }

    #[test]
    fn the_quota_plus_one_is_refused() {
        let l = ClientLimits::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            assert!(l.check(RouteClass::Account, a).is_ok());
        }
        assert!(matches!(
            l.check(RouteClass::Account, a),
            Err(ApiError::RateLimited { retry_after_secs }) if retry_after_secs >= 1
        ));
        // Another client, and the other quota, are unaffected.
        assert!(l.check(RouteClass::Account, b).is_ok());
        for _ in 0..3 {
            assert!(l.check(RouteClass::Public, a).is_ok());
        }
        assert!(l.check(RouteClass::Public, a).is_err());
        assert!(!l.is_empty());
    }
}
