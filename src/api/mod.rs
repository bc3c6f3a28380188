//! The HTTP API (axum): anonymous queries, the authenticated filing workflow, the self-check and
//! probe endpoints, and `/metrics` on its own listener. Only this module knows HTTP request and
//! response shapes and status codes; errors map to responses in one place ([`error`]).
//!
//! Entry points: [`AppState::new`] builds the shared state over an open registry,
//! [`api_router`] / [`metrics_router`] build the two routers, and [`serve`] runs both on
//! given listeners (through the hardened [`listener`]) until a shutdown future resolves,
//! finishing in-flight requests; it keeps the registry's serve snapshot fresh for commands run
//! beside it, runs the scans of [`crate::schedule`] (and those started through [`scans`]), and
//! delivers the filers' notices the registry writes ([`AppState::deliver_notices`]). It serves
//! the change feed replicas follow ([`replication`]); a read-only replica
//! ([`AppState::new_replica`], [`serve_replica`]) serves only the routes [`replica_serves`]
//! names and writes nothing of its own.

pub mod announcements;
pub mod auth;
pub mod error;
pub mod health;
pub mod ipfilings;
pub mod limits;
pub mod listener;
pub mod openapi;
pub mod operator;
pub mod public;
pub mod replication;
pub mod scans;
pub mod workflow;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, MethodRouter};
use axum::Router;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::accounts::service::Accounts;
use crate::accounts::{Actor, UserRecord};
use crate::config::Config;
use crate::crawl::{ScanError, Scanner};
use crate::metrics::Metrics;
use crate::registry::snapshot::Snapshot;
use crate::registry::store::{RegistryScan, StoreError};
use crate::registry::Registry;
use crate::verdict::PolicySet;

pub use error::{ApiError, ApiJson};
pub use public::PROBE_METRIC_NAMES;

/// Attachments of announcements may be at most this many bytes.
pub const ATTACHMENT_LIMIT: usize = 2 * 1024 * 1024;
/// Largest import upload (JSON Lines, CSV or a spreadsheet) the API accepts.
pub const UPLOAD_LIMIT: usize = 32 * 1024 * 1024;
/// Self-checks allowed per client IP per minute.
pub const CHECKS_PER_MINUTE: u32 = 6;
/// Probes allowed per client IP per minute (a Prometheus server probes many sites).
pub const PROBES_PER_MINUTE: u32 = 600;
/// The scan history's directory inside the registry directory.
pub const SCAN_HISTORY_DIR: &str = "scans";
/// How often the registry gauges and the self-check snapshot are refreshed.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// What the handlers share.
pub struct AppState {
    pub registry: Arc<Registry>,
    pub accounts: Accounts,
    pub metrics: Metrics,
    pub config: Config,
    /// The scanner for `/api/check` and `/probe`: the address guard is always on.
    pub scanner: Arc<Scanner>,
    pub policies: Arc<PolicySet>,
    snapshot: RwLock<Arc<Snapshot>>,
    check_limiter: DefaultKeyedRateLimiter<IpAddr>,
    probe_limiter: DefaultKeyedRateLimiter<IpAddr>,
    sms: Option<String>,
    http: reqwest::Client,
    /// Set at shutdown: long registry scans stop early.
    stopping: std::sync::atomic::AtomicBool,
    /// SMTP for email, when `[mail] smtp_server` is set.
    mailer: Option<Mailer>,
    /// Scheduled scans and scans started through the API.
    pub scans: crate::schedule::ScanService,
    /// Per-client quotas of the anonymous endpoints.
    pub limits: limits::ClientLimits,
    /// The operator token of `serve.json`, once enabled.
    pub operator: operator::OperatorKey,
    /// The replication token replicas present, when `serve` was given one.
    pub replication: operator::OperatorKey,
    /// What this server follows, when it is a read-only replica (`serve --replica-of`).
    pub replica_of: Option<String>,
}

/// An SMTP transport and the sender address.
pub struct Mailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

/// The SMTP transport of `[mail]`: implicit TLS on port 465 (the default), STARTTLS on any
/// other port; credentials when both username and password are set.
fn smtp_mailer(mail: &crate::config::MailConfig) -> Result<Option<Mailer>, ServeError> {
    use lettre::transport::smtp::authentication::Credentials;
    let Some(server) = &mail.smtp_server else {
        return Ok(None);
    };
    let bad = |m: String| ServeError::Config(format!("[mail]: {m}"));
    let from: lettre::message::Mailbox = mail
        .from
        .as_deref()
        .ok_or_else(|| bad("`from` is required with smtp_server".into()))?
        .parse()
        .map_err(|e| bad(format!("from: {e}")))?;
    let port = mail.smtp_port.unwrap_or(465);
    let builder = if port == 465 {
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::relay(server)
    } else {
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::starttls_relay(server)
    }
    .map_err(|e| bad(format!("smtp_server {server}: {e}")))?
    .port(port)
    .timeout(Some(Duration::from_secs(10)));
    let builder = match (&mail.username, &mail.password) {
        (Some(u), Some(p)) => builder.credentials(Credentials::new(u.clone(), p.clone())),
        _ => builder,
    };
    Ok(Some(Mailer {
        transport: builder.build(),
        from,
    }))
}

async fn send_mail(m: &Mailer, msg: &crate::accounts::service::Message) -> Result<(), String> {
    use lettre::AsyncTransport;
    let to: lettre::message::Mailbox = msg.to.parse().map_err(|e| format!("{e}"))?;
    let email = lettre::Message::builder()
        .from(m.from.clone())
        .to(to)
        .subject(msg.subject.clone())
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(msg.body.clone())
        .map_err(|e| e.to_string())?;
    m.transport
        .send(email)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("scanner: {0}")]
    Scanner(#[from] ScanError),
    #[error("policies: {0}")]
    Policies(String),
    #[error("{0}")]
    Config(String),
    #[error("scan history: {0}")]
    History(#[from] crate::report::ReportError),
    #[error("{addr}: {source}")]
    Io {
        addr: String,
        source: std::io::Error,
    },
}

pub type Shared = Arc<AppState>;

pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl AppState {
    /// Build the state (inside a tokio runtime: the scanner needs one).
    pub fn new(registry: Arc<Registry>, config: Config) -> Result<Shared, ServeError> {
        Self::build(registry, config, None)
    }

    /// The state of a read-only replica following `source` (see [`crate::replica`]): no
    /// scheduled scans, no notices, no serve snapshot (it holds no signing key).
    pub fn new_replica(
        registry: Arc<Registry>,
        config: Config,
        source: String,
    ) -> Result<Shared, ServeError> {
        Self::build(registry, config, Some(source))
    }

    fn build(
        registry: Arc<Registry>,
        config: Config,
        replica_of: Option<String>,
    ) -> Result<Shared, ServeError> {
        let mailer = smtp_mailer(&config.mail)?;
        let mut scan = config.scan.clone();
        // Never from a request, never from configuration: the API scanner keeps the guard.
        scan.allow_private = false;
        let scanner = Arc::new(Scanner::new(scan)?);
        let policies =
            Arc::new(PolicySet::embedded().map_err(|e| ServeError::Policies(e.to_string()))?);
        let metrics = Metrics::new();
        // Scans run by the service itself use the operator's [scan] settings (with the
        // schedule's overrides), never anything from a request.
        let scan_config = match &config.schedule {
            Some(s) => s.scan_config(&config.scan),
            None => config.scan.clone(),
        };
        let scans = crate::schedule::ScanService::new(
            crate::report::ScanHistory::open(registry.dir().join(SCAN_HISTORY_DIR))?,
            metrics.clone(),
            Arc::new(Scanner::new(scan_config.clone())?),
            policies.clone(),
            scan_config.concurrency,
            // A replica runs no scheduled scans: its primary does.
            config.schedule.as_ref().filter(|_| replica_of.is_none()),
        )
        .map_err(|e| ServeError::Config(format!("[schedule]: {e}")))?;
        // A long-running server answers lookups from memory: the domain index is built (and
        // the filing records read once) before the first request, not on it.
        let started = Instant::now();
        match registry.store().warm_lookups() {
            Ok(n) => tracing::info!(
                entries = n,
                ms = started.elapsed().as_millis() as u64,
                "lookups warmed"
            ),
            Err(e) => tracing::warn!(error = %e, "warming the lookups failed; reading the store"),
        }
        let snapshot = registry.snapshot(unix_now())?;
        if replica_of.is_none() {
            save_serve_snapshot(&registry, &snapshot);
        }
        let quota =
            Quota::per_minute(NonZeroU32::new(CHECKS_PER_MINUTE).unwrap_or(NonZeroU32::MIN));
        let config_limits = (
            config.serve.public_per_minute,
            config.serve.account_per_minute,
        );
        let state = AppState {
            registry,
            accounts: Accounts::new(),
            metrics,
            sms: config.sms.webhook_url.clone(),
            config,
            scanner,
            policies,
            snapshot: RwLock::new(Arc::new(snapshot)),
            check_limiter: RateLimiter::keyed(quota),
            probe_limiter: RateLimiter::keyed(Quota::per_minute(
                NonZeroU32::new(PROBES_PER_MINUTE).unwrap_or(NonZeroU32::MIN),
            )),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            mailer,
            scans,
            limits: limits::ClientLimits::new(config_limits.0, config_limits.1),
            operator: operator::OperatorKey::default(),
            replication: operator::OperatorKey::default(),
            replica_of,
        };
        state.refresh_gauges()?;
        Ok(Arc::new(state))
    }

    /// The current registry snapshot the self-check judges against.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Recompute the registry gauges (filings by status and province, certificates issued,
    /// audit chain length).
    pub fn refresh_gauges(&self) -> Result<(), StoreError> {
        use std::collections::HashMap;
        let store = self.registry.store();
        let mut province_of: HashMap<u64, char> = HashMap::new();
        let go = || !self.stopping.load(std::sync::atomic::Ordering::Relaxed);
        store.scan_subjects(&mut |s| {
            province_of.insert(s.id, s.province);
            go()
        })?;
        let mut counts: HashMap<(&'static str, String), i64> = HashMap::new();
        let mut certs: i64 = 0;
        store.scan_filings(&mut |f| {
            let prov = crate::metrics::province_label(province_of.get(&f.subject_id).copied());
            *counts.entry((f.status_label(), prov)).or_default() += 1;
            certs += f.cert_serial as i64;
            go()
        })?;
        if !go() {
            return Ok(());
        }
        let m = &self.metrics;
        m.registry_filings.reset();
        for ((status, prov), n) in counts {
            m.registry_filings
                .with_label_values(&[status, &prov])
                .set(n);
        }
        m.registry_certificates.set(certs);
        let len = store.audit_head()?.map(|(s, _)| s as i64 + 1).unwrap_or(0);
        m.registry_audit_length.set(len);
        Ok(())
    }

    /// Refresh the gauges and the snapshot.
    pub fn refresh(&self) -> Result<(), crate::registry::RegistryError> {
        self.refresh_gauges()?;
        if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let snap = self.registry.snapshot(unix_now())?;
        if self.replica_of.is_none() {
            save_serve_snapshot(&self.registry, &snap);
        }
        *self.snapshot.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(snap);
        Ok(())
    }

    /// Deliver messages, each one: SMS through the webhook and email over SMTP when
    /// configured; everything else (and any failed delivery) goes to the outbox.
    pub async fn deliver(
        &self,
        messages: Vec<crate::accounts::service::Message>,
    ) -> Result<(), ApiError> {
        let mut outbox = Vec::new();
        for m in messages {
            if !self.send(&m).await {
                outbox.push(m);
            }
        }
        self.keep_in_outbox(outbox).await
    }

    /// Deliver one of `alternatives` (the same login code to each of an account's
    /// contacts): the first that a configured channel accepts; when none is, all of them go
    /// to the outbox.
    pub async fn deliver_any(
        &self,
        alternatives: Vec<crate::accounts::service::Message>,
    ) -> Result<(), ApiError> {
        for m in &alternatives {
            if self.send(m).await {
                return Ok(());
            }
        }
        self.keep_in_outbox(alternatives).await
    }

    /// Send one message over its configured channel; `false` when there is none or it
    /// failed (logged without the message's content).
    async fn send(&self, m: &crate::accounts::service::Message) -> bool {
        use crate::accounts::service::Channel;
        match (&self.sms, m.channel) {
            (Some(url), Channel::Sms) => {
                let body = serde_json::json!({"to": m.to, "text": m.body});
                let sent = self
                    .http
                    .post(url)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body.to_string())
                    .send()
                    .await;
                match sent.map(|r| r.error_for_status()) {
                    Ok(Ok(_)) => true,
                    Ok(Err(e)) | Err(e) => {
                        tracing::warn!(error = %e, "SMS webhook failed; message kept in the outbox");
                        false
                    }
                }
            }
            (_, Channel::Email) if m.to.contains('@') => {
                let Some(mailer) = &self.mailer else {
                    return false;
                };
                match send_mail(mailer, m).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "SMTP delivery failed; message kept in the outbox");
                        false
                    }
                }
            }
            _ => false,
        }
    }

    async fn keep_in_outbox(
        &self,
        outbox: Vec<crate::accounts::service::Message>,
    ) -> Result<(), ApiError> {
        let reg = self.registry.clone();
        blocking(move || {
            Accounts::to_outbox(reg.store(), &outbox)?;
            Ok(())
        })
        .await
    }

    /// Deliver the notices the registry wrote for filers (approvals, re-issued certificates)
    /// over the configured channels; what no channel takes moves to the outbox.
    /// Notices are settled in batches of this many (a stop loses at most one batch's
    /// progress, and a delivered notice is not sent twice beyond it).
    pub const NOTICE_BATCH: usize = 200;

    pub async fn deliver_notices(&self) -> Result<usize, ApiError> {
        let reg = self.registry.clone();
        let pending =
            blocking(move || Accounts::notices(reg.store()).map_err(ApiError::from)).await?;
        let mut delivered = 0;
        for batch in pending.chunks(Self::NOTICE_BATCH) {
            if self.is_stopping() {
                break;
            }
            let (mut sent, mut kept) = (Vec::new(), Vec::new());
            for m in batch {
                if self.send(m).await {
                    sent.push(m.clone());
                } else {
                    kept.push(m.clone());
                }
            }
            delivered += sent.len();
            let reg = self.registry.clone();
            blocking(move || {
                Accounts::settle_notices(reg.store(), &sent, &kept, unix_now())?;
                Ok(())
            })
            .await?;
        }
        Ok(delivered)
    }

    /// True once shutdown has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Periodic housekeeping: purge expired sessions, challenges, pending registrations and
    /// reset tokens, and let the per-client limiters forget recovered clients.
    pub fn housekeeping(&self, now: i64) -> Result<(), crate::accounts::service::AccountError> {
        self.limits.retain_recent();
        self.check_limiter.retain_recent();
        self.probe_limiter.retain_recent();
        Accounts::purge_expired(self.registry.store(), now)?;
        Ok(())
    }

    /// Count a self-check from `ip` against the per-client limit.
    pub fn check_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        limit(&self.check_limiter, ip)
    }

    /// Count a probe from `ip` against the per-client limit.
    pub fn probe_rate(&self, ip: IpAddr) -> Result<(), ApiError> {
        limit(&self.probe_limiter, ip)
    }
}

fn limit(l: &DefaultKeyedRateLimiter<IpAddr>, ip: IpAddr) -> Result<(), ApiError> {
    {
        l.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            ApiError::RateLimited {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }
}

/// Run a blocking registry call off the async workers.
pub async fn blocking<T, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// The authenticated caller: the session's user.
pub struct Caller {
    pub user: UserRecord,
    pub token: String,
}

impl Caller {
    pub fn actor(&self) -> &Actor {
        &self.user.actor
    }
}

#[axum::async_trait]
impl axum::extract::FromRequestParts<Shared> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        if let Some(c) = operator::operator_caller(&parts.headers, &parts.extensions, state)? {
            return Ok(c);
        }
        let token = bearer(&parts.headers).ok_or(ApiError::Unauthorized)?;
        let reg = state.registry.clone();
        let t = token.clone();
        let user = blocking(move || {
            Accounts::authenticate(reg.store(), &t, unix_now()).map_err(ApiError::from)
        })
        .await?;
        Ok(Caller { user, token })
    }
}

fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let t = v.strip_prefix("Bearer ")?.trim();
    (!t.is_empty() && t.len() <= 200).then(|| t.to_string())
}

/// The client address (the TCP peer; no proxy headers are trusted).
pub fn client_ip(req_ext: &axum::http::Extensions) -> IpAddr {
    req_ext
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::from([0, 0, 0, 0]))
}

/// Every API route: (method, axum path, handler). The router and the OpenAPI test both use
/// this list.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<Shared>)> {
    use axum::routing::{delete, post, put};
    vec![
        ("get", "/api/openapi.json", get(openapi::document)),
        ("get", "/healthz", get(health::healthz)),
        ("get", "/readyz", get(health::readyz)),
        ("get", "/api/filed", get(public::filed)),
        (
            "get",
            "/api/public/filings/:key",
            get(public::public_filing),
        ),
        ("get", "/api/public/subjects", get(public::subject_search)),
        (
            "get",
            "/api/public/false-information",
            get(public::false_information),
        ),
        ("get", "/api/codes", get(public::codes)),
        ("get", "/api/codes/regions", get(public::regions)),
        ("get", "/api/keyring", get(public::keyring)),
        ("get", "/api/check", get(public::check)),
        ("get", "/probe", get(public::probe)),
        ("get", "/api/scans", get(scans::list)),
        ("post", "/api/scans", post(scans::start)),
        ("get", "/api/scans/:id", get(scans::show)),
        ("get", "/api/scans/:id/records", get(scans::records)),
        ("post", "/api/register", post(auth::register)),
        ("post", "/api/register/activate", post(auth::activate)),
        ("post", "/api/register/resend", post(auth::register_resend)),
        ("post", "/api/password/change", post(auth::change_password)),
        ("post", "/api/me/contact", post(auth::contact_change)),
        ("post", "/api/me/contact/verify", post(auth::contact_verify)),
        ("post", "/api/login", post(auth::login)),
        ("post", "/api/login/verify", post(auth::login_verify)),
        ("post", "/api/logout", post(auth::logout)),
        ("get", "/api/me", get(auth::me)),
        (
            "post",
            "/api/password/reset-request",
            post(auth::reset_request),
        ),
        ("post", "/api/password/reset", post(auth::reset_confirm)),
        ("get", "/api/users", get(auth::list_users)),
        ("post", "/api/users", post(auth::create_user)),
        (
            "post",
            "/api/users/:username/import-authorisation",
            post(auth::import_authorisation),
        ),
        ("post", "/api/filings", post(workflow::submit)),
        (
            "post",
            "/api/filings/import",
            post(workflow::import).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        ),
        ("get", "/api/ip-filings", get(ipfilings::list)),
        ("post", "/api/ip-filings", post(ipfilings::create)),
        (
            "post",
            "/api/ip-filings/import",
            post(ipfilings::import).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        ),
        ("get", "/api/ip-filings/:id", get(ipfilings::show)),
        ("put", "/api/ip-filings/:id", put(ipfilings::update)),
        ("delete", "/api/ip-filings/:id", delete(ipfilings::remove)),
        ("get", "/api/ip-units", get(ipfilings::units)),
        (
            "get",
            "/api/templates/:kind",
            get(ipfilings::template_download),
        ),
        ("get", "/api/filings/:key", get(workflow::show)),
        (
            "post",
            "/api/filings/:key/verify-access",
            post(workflow::verify_access),
        ),
        ("post", "/api/filings/:key/approve", post(workflow::approve)),
        ("post", "/api/filings/:key/reject", post(workflow::reject)),
        ("post", "/api/filings/:key/change", post(workflow::change)),
        (
            "post",
            "/api/filings/:key/pre-approval",
            post(workflow::attach_document),
        ),
        (
            "post",
            "/api/filings/:key/pre-approval/check",
            post(workflow::check_document),
        ),
        ("get", "/api/pre-approvals", get(workflow::pre_approvals)),
        (
            "post",
            "/api/filings/:key/bulletin-board/review",
            post(workflow::review_bulletin_board),
        ),
        (
            "get",
            "/api/bulletin-boards",
            get(workflow::bulletin_boards),
        ),
        ("post", "/api/filings/:key/cancel", post(workflow::cancel)),
        (
            "put",
            "/api/filings/:key/cancel",
            put(workflow::cancel_modify),
        ),
        (
            "delete",
            "/api/filings/:key/cancel",
            delete(workflow::cancel_delete),
        ),
        (
            "post",
            "/api/filings/:key/withdraw",
            post(workflow::withdraw),
        ),
        ("post", "/api/filings/:key/revoke", post(workflow::revoke)),
        (
            "post",
            "/api/filings/:key/cancel-access",
            post(workflow::cancel_access),
        ),
        (
            "post",
            "/api/filings/:key/providers",
            post(workflow::add_provider),
        ),
        (
            "get",
            "/api/filings/:key/certificate",
            get(workflow::certificate),
        ),
        ("get", "/api/review/queue", get(workflow::review_queue)),
        ("get", "/api/review/annual", get(workflow::annual)),
        ("post", "/api/filings/:key/renew", post(workflow::renew)),
        ("post", "/api/review/auto", post(workflow::review_auto)),
        ("get", "/api/empty-shells", get(workflow::empty_shells)),
        ("get", "/api/announcements", get(announcements::list)),
        ("post", "/api/announcements", post(announcements::create)),
        ("get", "/api/announcements/:id", get(announcements::show)),
        (
            "delete",
            "/api/announcements/:id",
            delete(announcements::remove),
        ),
        (
            "post",
            "/api/announcements/:id/attachments",
            post(announcements::upload).layer(DefaultBodyLimit::max(ATTACHMENT_LIMIT + 1024)),
        ),
        (
            "get",
            "/api/announcements/:id/attachments/:attachment",
            get(announcements::download),
        ),
        (
            "delete",
            "/api/announcements/:id/attachments/:attachment",
            delete(announcements::remove_attachment),
        ),
        ("get", "/api/outbox", get(operator::outbox)),
        ("get", "/api/audit/verify", get(operator::audit_verify)),
        ("get", "/api/snapshot", get(operator::snapshot)),
        ("get", "/api/replication/feed", get(replication::feed)),
    ]
}

/// Whether a read-only replica serves a route: the anonymous public queries and pages, the
/// self-check and probe, and the health checks; nothing that writes or needs an account.
pub fn replica_serves(method: &str, path: &str) -> bool {
    let m = axum::http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .unwrap_or(axum::http::Method::GET);
    (limits::classify(&m, path) == Some(limits::RouteClass::Public) && path != "/login")
        || matches!(
            (method, path),
            ("get", "/healthz" | "/readyz" | "/api/check" | "/probe") | ("post", "/check")
        )
}

/// The API router (everything but `/metrics`); a replica's has only the routes
/// [`replica_serves`] names.
pub fn api_router(state: Shared) -> Router {
    let replica = state.replica_of.is_some();
    let mut router: Router<Shared> = Router::new();
    for (method, path, handler) in routes() {
        if !replica || replica_serves(method, path) {
            router = router.route(path, handler);
        }
    }
    let limit = state.config.serve.body_limit;
    let what = if replica {
        "route on this read-only replica (it serves the public query and the self-check; file and review on the primary)"
    } else {
        "route"
    };
    router
        .merge(crate::web::router(state.clone(), replica))
        .fallback(move || async move { ApiError::NotFound { what: what.into() } })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::limit_anonymous,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            track_http,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

async fn track_http(State(state): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    let class = match resp.status().as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    state
        .metrics
        .http_requests
        .with_label_values(&[&route, class])
        .inc();
    state
        .metrics
        .http_duration
        .with_label_values(&[&route])
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// The `/metrics` router (its own listener).
pub fn metrics_router(state: Shared) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .with_state(state)
}

async fn metrics_handler(State(state): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Serve the API on `api` and `/metrics` on `metrics` until `shutdown` resolves; then stop
/// accepting and finish in-flight requests. A background task refreshes the registry gauges
/// and the self-check snapshot every [`REFRESH_INTERVAL`].
pub async fn serve(
    state: Shared,
    api: tokio::net::TcpListener,
    metrics: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_inner(state, None, api, metrics, shutdown).await
}

/// Serve a read-only replica (state from [`AppState::new_replica`]) as [`serve`] does, with
/// `follower` applying the primary's changes until shutdown.
pub async fn serve_replica(
    state: Shared,
    follower: crate::replica::Follower,
    api: tokio::net::TcpListener,
    metrics: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_inner(state, Some(follower), api, metrics, shutdown).await
}

async fn serve_inner(
    state: Shared,
    follower: Option<crate::replica::Follower>,
    api: tokio::net::TcpListener,
    metrics: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let following = follower.map(|f| tokio::spawn(f.run(rx.clone())));
    let refresher = {
        let state = state.clone();
        let mut rx = rx.clone();
        tokio::spawn(async move {
            // On large registries a refresh takes a while: wait at least four times as long
            // as the last one took, so refreshing never dominates the machine.
            let mut pause = REFRESH_INTERVAL;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = rx.wait_for(|v| *v) => break,
                }
                let s = state.clone();
                let started = Instant::now();
                let outcome = tokio::task::spawn_blocking(move || {
                    // A replica writes nothing but its primary's changes.
                    if s.replica_of.is_none() {
                        if let Err(e) = s.housekeeping(unix_now()) {
                            tracing::warn!(error = %e, "housekeeping failed");
                        }
                    }
                    s.refresh()
                })
                .await;
                pause = REFRESH_INTERVAL.max(started.elapsed() * 4);
                if state.replica_of.is_none() {
                    if let Err(e) = state.deliver_notices().await {
                        tracing::warn!(error = ?e, "notice delivery failed");
                    }
                }
                match outcome {
                    Ok(Err(e)) => tracing::warn!(error = %e, "registry refresh failed"),
                    Err(e) => tracing::warn!(error = %e, "registry refresh panicked"),
                    Ok(Ok(())) => {}
                }
            }
        })
    };
    let scanner_task = {
        let registry = state.registry.clone();
        let source: crate::schedule::SnapshotSource = Arc::new(move || {
            registry
                .snapshot(unix_now())
                .map(Arc::new)
                .map_err(|e| format!("registry snapshot: {e}"))
        });
        tokio::spawn(state.scans.clone().run(source, rx.clone()))
    };
    let limits = state.config.serve.listener_limits();
    let api_app = api_router(state.clone());
    let state_for_stop = state.clone();
    let metrics_app = metrics_router(state);
    let api_srv = listener::serve(api, api_app, limits, rx.clone());
    let met_srv = listener::serve(metrics, metrics_app, limits, rx.clone());
    let stopping = state_for_stop;
    tokio::spawn(async move {
        shutdown.await;
        stopping
            .stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = tx.send(true);
    });
    let (a, b) = tokio::join!(api_srv, met_srv);
    refresher.abort();
    if let Some(f) = following {
        // A page being applied commits or not as a whole; waiting is only politeness.
        let _ = tokio::time::timeout(Duration::from_secs(5), f).await;
    }
    // The running scan has seen the stop signal; its history entry stays unfinished.
    let _ = tokio::time::timeout(Duration::from_secs(5), scanner_task).await;
    a?;
    b?;
    Ok(())
}

/// Keep the registry directory's serve snapshot fresh (read-only commands use it while
/// `serve` holds the store). A failure is logged: the service itself does not depend on it.
fn save_serve_snapshot(registry: &Registry, snap: &Snapshot) {
    let path = registry
        .dir()
        .join(crate::registry::snapshot::SERVE_SNAPSHOT_FILE);
    if let Err(e) = registry.save_snapshot(snap, &path) {
        tracing::warn!(error = %e, "could not write the serve snapshot");
    }
}

/// Resolves on SIGTERM or ctrl-c.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    // The handlers are installed now, not on first poll: a SIGTERM that arrives while the
    // service is still starting must stop it gracefully too.
    #[cfg(unix)]
    let (mut term, mut int) = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let term = async {
                match term.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let int = async {
                match int.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = term => {}
                _ = int => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MailConfig;

    #[test]
    fn smtp_settings_are_checked_at_start() {
        assert!(smtp_mailer(&MailConfig::default()).unwrap().is_none());
        let mut m = MailConfig {
            smtp_server: Some("smtp.example.com".into()),
            ..Default::default()
        };
        let e = smtp_mailer(&m).err().unwrap().to_string();
        assert!(e.contains("from"), "{e}");
        m.from = Some("not an address".into());
        assert!(smtp_mailer(&m).is_err());
        m.from = Some("备案 <noreply@example.com>".into());
        m.username = Some("u".into());
        m.password = Some("p".into());
        assert!(smtp_mailer(&m).unwrap().is_some());
        m.smtp_port = Some(587);
        assert!(smtp_mailer(&m).unwrap().is_some());
    }
}
