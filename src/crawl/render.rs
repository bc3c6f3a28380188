//! The renderer: Debian's headless Chromium, driven over the Chrome DevTools Protocol
//! (`chromiumoxide`), for homepages whose footer only JavaScript produces. It owns the browser
//! process (launched lazily, relaunched after a crash, killed and its temporary profile removed
//! on drop), a small pool of tabs (a semaphore: at most `render_tabs` pages at once), the
//! per-page limits (a hard deadline, a request cap, a cap on the DOM taken back) and — the
//! invariant that matters — the network of every rendered page.
//!
//! **Chromium itself never opens a network connection.** Every request a page makes is paused
//! by CDP `Fetch` interception (all URLs, request stage) and answered from Rust:
//! - only `http`/`https` are fetched; `data:`/`blob:` (which make no connection) continue;
//!   every other scheme is failed;
//! - requests beyond `render_max_requests` are failed;
//! - IP-literal hosts must pass [`AddressGuard::check`](super::AddressGuard::check); names are
//!   resolved by the scanner's [`Resolver`] (overrides + guard) through [`GuardedResolve`](super::GuardedResolve),
//!   the resolver of the reqwest client that makes the request, so the address connected to is
//!   the address that was checked (one resolution, no second lookup by anyone else);
//! - redirects are not followed in Rust: the 3xx goes back to Chromium as it is, Chromium
//!   follows it, and the next hop is paused and checked again;
//! - the answer is given with `Fetch.fulfillRequest` (status, headers, body capped at the
//!   homepage cap). Refusals are `Fetch.failRequest` (`BlockedByClient`) and counted in
//!   [`RenderRecord::blocked`].
//!
//! Whatever might escape interception fails closed: Chromium runs with a dead proxy
//! (`--proxy-server=127.0.0.1:9`, loopback not bypassed) and `--host-resolver-rules` mapping
//! every name to `~NOTFOUND`, so a socket it opens itself (WebSocket, a worker's request, a
//! preconnect) goes nowhere. WebRTC may not use UDP outside the proxy
//! (`--force-webrtc-ip-handling-policy=disable_non_proxied_udp`), and a script run before any
//! page script removes `RTCPeerConnection`, `WebSocket`, `WebTransport` and
//! `navigator.serviceWorker`; service workers are bypassed (`Network.setBypassServiceWorker`).
//! Site isolation is off so every frame of a page is in the page's target and its requests
//! pause with the page's. Background networking, component updates, sync, pings, domain
//! reliability, safe-browsing updates and DNS prefetch are switched off. Each render uses a
//! fresh browser context (no cookies or storage shared between sites).
//!
//! Time waiting for a free tab or for Chromium to start is not charged to the page or to the
//! target's deadline (as with rate limits); `RenderRecord::elapsed_ms` counts from the moment
//! a tab slot and a running Chromium are there (opening the tab included). Requests a rendered page makes are not rate-limited per host (the
//! request cap bounds them); the page's own document is fetched again by the renderer.
//!
//! Cost, measured with `cargo run --example render_cost` on 2 shared cores: about 1 s of wall
//! time per page per tab (≈0.35 s opening a fresh context and tab, ≈0.1 s to the load event,
//! ≈0.5 s settle) and about 0.5 s of CPU, nearly all Chromium's.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use chromiumoxide::cdp::browser_protocol::fetch::{
    self, ContinueRequestParams, EventRequestPaused, FailRequestParams, FulfillRequestParams,
    HeaderEntry, RequestPattern, RequestStage,
};
use chromiumoxide::cdp::browser_protocol::inspector::EventTargetCrashed;
use chromiumoxide::cdp::browser_protocol::network::{ErrorReason, SetBypassServiceWorkerParams};
use chromiumoxide::cdp::browser_protocol::page::{
    AddScriptToEvaluateOnNewDocumentParams, EventLoadEventFired, NavigateParams,
};
use chromiumoxide::cdp::browser_protocol::target::{
    CreateBrowserContextParams, CreateTargetParams,
};
use chromiumoxide::cdp::js_protocol::runtime::EvaluateParams;
use chromiumoxide::error::CdpError;
use chromiumoxide::{Browser, BrowserConfig, Page};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use url::Url;

use super::config::ScanConfig;
use super::fetch::classify;
use super::resolve::{elapsed_ms, Resolver};
use crate::observation::{FetchErrorKind, RenderRecord, RenderStatus};

/// Where Chromium is looked for when the configuration names no binary: this path, then
/// [`CHROMIUM_NAMES`] on `PATH`.
pub const DEFAULT_CHROMIUM: &str = "/usr/bin/chromium";
/// Binary names looked up on `PATH`.
pub const CHROMIUM_NAMES: &[&str] = &["chromium", "chromium-browser", "google-chrome"];
/// The DOM HTML taken back from a rendered page is cut at this many bytes (the homepage cap).
pub const DOM_CAP: usize = super::config::DEFAULT_HOMEPAGE_CAP;
/// After the load event, the page settles until no request was in flight for this long…
pub const SETTLE_IDLE: Duration = Duration::from_millis(500);
/// …but at most this long.
pub const SETTLE_MAX: Duration = Duration::from_millis(2_000);
/// How long starting Chromium may take.
pub const LAUNCH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a browser suspected dead has to answer `Browser.getVersion`.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Consecutive failed launches after which the renderer stops trying.
pub const MAX_LAUNCH_FAILURES: u32 = 3;

/// The proxy every request Chromium would make on its own is sent to: nothing listens on the
/// discard port, so such a request fails.
const DEAD_PROXY: &str = "127.0.0.1:9";

/// Run in every frame before any page script: removes the APIs that open connections Fetch
/// interception does not see.
const HARDEN_SCRIPT: &str = r#"(() => {
  for (const name of ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCDataChannel',
                      'RTCSessionDescription', 'RTCIceCandidate', 'WebSocket', 'WebTransport']) {
    try { Object.defineProperty(globalThis, name, { value: undefined, writable: false, configurable: false }); } catch (e) {}
  }
  try { Object.defineProperty(Navigator.prototype, 'serviceWorker', { get() { return undefined; }, configurable: false }); } catch (e) {}
})();"#;

/// Why the renderer could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("Chromium not found: {0}")]
    NotFound(String),
    #[error("could not create a temporary Chromium profile: {0}")]
    Profile(#[source] std::io::Error),
    #[error("could not configure Chromium: {0}")]
    Config(String),
    #[error("could not start Chromium ({path}): {source}")]
    Launch {
        path: PathBuf,
        #[source]
        source: CdpError,
    },
    #[error("could not build the renderer's HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("the renderer gave up after {0} failed launches")]
    GaveUp(u32),
}

/// Find the Chromium binary: the configured path (which must exist), else
/// [`DEFAULT_CHROMIUM`], else [`CHROMIUM_NAMES`] on `PATH`.
pub fn find_chromium(configured: Option<&Path>) -> Result<PathBuf, RenderError> {
    if let Some(path) = configured {
        return if path.is_file() {
            Ok(path.to_path_buf())
        } else {
            Err(RenderError::NotFound(format!(
                "the configured binary {} does not exist",
                path.display()
            )))
        };
    }
    let default = Path::new(DEFAULT_CHROMIUM);
    if default.is_file() {
        return Ok(default.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for name in CHROMIUM_NAMES {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(RenderError::NotFound(format!(
        "neither {DEFAULT_CHROMIUM} nor {} on PATH (Debian: apt-get install chromium)",
        CHROMIUM_NAMES.join(", ")
    )))
}

/// The renderer's settings, taken from the scan configuration.
#[derive(Debug, Clone)]
pub struct RenderSettings {
    pub chromium: PathBuf,
    pub tabs: usize,
    pub timeout: Duration,
    pub max_requests: u32,
    /// Cap of each response body handed to Chromium (the homepage cap).
    pub body_cap: usize,
    pub dom_cap: usize,
    user_agent: String,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl RenderSettings {
    /// Settings from `config`; fails when no Chromium binary is found.
    pub fn from_config(config: &ScanConfig) -> Result<Self, RenderError> {
        Ok(Self {
            chromium: find_chromium(config.chromium.as_deref())?,
            tabs: config.render_tabs.max(1),
            timeout: config.render_timeout(),
            max_requests: config.render_max_requests,
            body_cap: config.homepage_cap,
            dom_cap: DOM_CAP,
            user_agent: config.user_agent(),
            connect_timeout: config.connect_timeout(),
            request_timeout: config.request_timeout(),
        })
    }
}

/// A running Chromium: the process, the task driving its CDP connection, and its profile
/// directory (removed after the process is gone).
struct LiveBrowser {
    browser: Browser,
    pid: Option<u32>,
    handler: JoinHandle<()>,
    /// Removed in `drop`, after the process is gone.
    profile: Option<tempfile::TempDir>,
}

impl LiveBrowser {
    fn is_alive(&self) -> bool {
        !self.handler.is_finished()
    }
}

impl Drop for LiveBrowser {
    fn drop(&mut self) {
        tracing::debug!("stopping Chromium");
        self.handler.abort();
        if let Some(child) = self.browser.get_mut_child() {
            let child = child.as_mut_inner();
            if let Ok(None) = child.try_wait() {
                let _ = child.start_kill();
                // Reap it (briefly) so the profile directory is no longer in use.
                for _ in 0..100 {
                    if !matches!(child.try_wait(), Ok(None)) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        // Chromium's helper processes may still write for a moment after the browser process
        // is gone: retry the removal briefly.
        if let Some(profile) = self.profile.take() {
            let path = profile.path().to_path_buf();
            if profile.close().is_err() {
                for _ in 0..20 {
                    std::thread::sleep(Duration::from_millis(25));
                    if std::fs::remove_dir_all(&path).is_ok() || !path.exists() {
                        return;
                    }
                }
                tracing::warn!(profile = %path.display(), "could not remove the Chromium profile");
            }
        }
    }
}

/// Request counters of one page.
#[derive(Debug, Default)]
struct PageNet {
    /// Requests admitted under the cap (fetched or about to be).
    admitted: AtomicU32,
    /// Requests let through (fetched).
    requests: AtomicU32,
    /// Requests refused (guard, scheme, cap).
    blocked: AtomicU32,
    in_flight: AtomicU32,
    last_activity: Mutex<Option<tokio::time::Instant>>,
}

impl PageNet {
    fn touch(&self) {
        if let Ok(mut last) = self.last_activity.lock() {
            *last = Some(tokio::time::Instant::now());
        }
    }
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        match self.last_activity.lock() {
            Ok(last) => last.map_or(Duration::MAX, |t| t.elapsed()),
            Err(_) => Duration::MAX,
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Everything a paused request needs to be answered.
#[derive(Clone)]
struct Net {
    page: Page,
    client: reqwest::Client,
    resolver: Arc<Resolver>,
    counters: Arc<PageNet>,
    max_requests: u32,
    body_cap: usize,
    deadline: tokio::time::Instant,
    user_agent: String,
}

/// Headless Chromium with a pool of tabs; every request it makes passes the address guard.
pub struct Renderer {
    settings: RenderSettings,
    resolver: Arc<Resolver>,
    client: reqwest::Client,
    tabs: Arc<Semaphore>,
    browser: tokio::sync::Mutex<Option<Arc<LiveBrowser>>>,
    launch_failures: AtomicU32,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Renderer {
    /// Find Chromium and start it (inside a tokio runtime). Fails with a clear message when
    /// Chromium is missing or does not start.
    pub async fn launch(config: &ScanConfig, resolver: Arc<Resolver>) -> Result<Self, RenderError> {
        let renderer = Self::new(RenderSettings::from_config(config)?, resolver)?;
        let live = renderer.start().await?;
        *renderer.browser.lock().await = Some(live);
        Ok(renderer)
    }

    /// A renderer that starts Chromium on its first render.
    pub fn new(settings: RenderSettings, resolver: Arc<Resolver>) -> Result<Self, RenderError> {
        let client = super::fetch::guarded_client(
            &resolver,
            settings.connect_timeout,
            settings.request_timeout,
        )
        .pool_max_idle_per_host(1)
        .build()
        .map_err(RenderError::Client)?;
        Ok(Self {
            tabs: Arc::new(Semaphore::new(settings.tabs)),
            settings,
            resolver,
            client,
            browser: tokio::sync::Mutex::new(None),
            launch_failures: AtomicU32::new(0),
        })
    }

    pub fn settings(&self) -> &RenderSettings {
        &self.settings
    }

    async fn start(&self) -> Result<Arc<LiveBrowser>, RenderError> {
        let profile = tempfile::Builder::new()
            .prefix("beian-chromium-")
            .tempdir()
            .map_err(RenderError::Profile)?;
        let args = chromium_args();
        let launch_start = Instant::now();
        let config = BrowserConfig::builder()
            .chrome_executable(&self.settings.chromium)
            .disable_default_args()
            .no_sandbox()
            .user_data_dir(profile.path())
            .launch_timeout(LAUNCH_TIMEOUT)
            .request_timeout(self.settings.timeout.max(Duration::from_secs(5)))
            .enable_request_intercept()
            .args(args.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| *k))
            .args(
                args.iter()
                    .filter_map(|(k, v)| v.as_deref().map(|v| (*k, v))),
            )
            .build()
            .map_err(RenderError::Config)?;
        let (mut browser, mut handler) =
            Browser::launch(config)
                .await
                .map_err(|source| RenderError::Launch {
                    path: self.settings.chromium.clone(),
                    source,
                })?;
        let handler = tokio::spawn(async move {
            while let Some(event) = handler.next().await {
                if let Err(CdpError::Ws(e)) = event {
                    tracing::debug!(error = %e, "the Chromium connection failed");
                    break;
                }
            }
        });
        tracing::debug!(
            chromium = %self.settings.chromium.display(),
            launch_ms = elapsed_ms(launch_start),
            "Chromium started"
        );
        let pid = browser
            .get_mut_child()
            .and_then(|child| child.as_mut_inner().id());
        Ok(Arc::new(LiveBrowser {
            browser,
            pid,
            handler,
            profile: Some(profile),
        }))
    }

    /// The running browser, started (again) when there is none or it died.
    async fn live(&self) -> Result<Arc<LiveBrowser>, RenderError> {
        let mut slot = self.browser.lock().await;
        if let Some(live) = slot.as_ref() {
            if live.is_alive() {
                return Ok(live.clone());
            }
            tracing::warn!("Chromium's connection closed; starting it again");
            *slot = None;
        }
        let failures = self.launch_failures.load(Ordering::SeqCst);
        if failures >= MAX_LAUNCH_FAILURES {
            return Err(RenderError::GaveUp(failures));
        }
        match self.start().await {
            Ok(live) => {
                self.launch_failures.store(0, Ordering::SeqCst);
                *slot = Some(live.clone());
                Ok(live)
            }
            Err(e) => {
                self.launch_failures.fetch_add(1, Ordering::SeqCst);
                Err(e)
            }
        }
    }

    /// After a failure that may be the browser's: if `live` is still the current browser and
    /// its connection is gone or it does not answer within [`HEALTH_TIMEOUT`], forget it (it
    /// is killed once the last render using it ends) so the next render starts a new one.
    async fn discard_if_dead(&self, live: &Arc<LiveBrowser>) {
        let healthy = live.is_alive()
            && matches!(
                tokio::time::timeout(HEALTH_TIMEOUT, live.browser.version()).await,
                Ok(Ok(_))
            );
        if healthy {
            return;
        }
        let mut slot = self.browser.lock().await;
        if slot.as_ref().is_some_and(|cur| Arc::ptr_eq(cur, live)) {
            tracing::warn!("Chromium stopped answering; it will be started again");
            *slot = None;
        }
    }

    /// The process id of the running browser, if any (for tests that crash it).
    #[doc(hidden)]
    pub async fn browser_pid(&self) -> Option<u32> {
        let slot = self.browser.lock().await;
        slot.as_ref().and_then(|live| live.pid)
    }

    /// Render `url` and return its DOM (`document.documentElement.outerHTML` after the load
    /// event and a short settle, cut at [`DOM_CAP`] bytes) with the record of what happened.
    /// The DOM is `None` unless the status is [`RenderStatus::Rendered`]. The work ends by
    /// `deadline` (extended by the time spent waiting for a tab and for Chromium to start) and
    /// by the render timeout, whichever comes first. Never fails: problems are in the record.
    pub async fn render(
        &self,
        url: &Url,
        deadline: tokio::time::Instant,
    ) -> (Option<String>, RenderRecord) {
        let mut record = RenderRecord {
            status: RenderStatus::Failed,
            url: url.to_string(),
            requests: 0,
            blocked: 0,
            elapsed_ms: 0,
            error: None,
        };
        // The semaphore is never closed, so acquiring only waits. Waiting for a tab and for
        // Chromium to start are not charged to the page (nor to the target's deadline).
        let wait = tokio::time::Instant::now();
        let permit = self.tabs.clone().acquire_owned().await.ok();
        let started = tokio::time::timeout(LAUNCH_TIMEOUT, self.live()).await;
        let now = tokio::time::Instant::now();
        let start = Instant::now();
        let deadline = (deadline + (now - wait)).min(now + self.settings.timeout);
        let counters = Arc::new(PageNet::default());

        let live = match started {
            Ok(Ok(live)) => Some(live),
            Ok(Err(e)) => {
                if let RenderError::GaveUp(_) = e {
                    record.status = RenderStatus::Unavailable;
                }
                record.error = Some(clip(&e.to_string()));
                None
            }
            Err(_) => {
                record.error = Some("Chromium did not start in time".into());
                None
            }
        };
        let mut html = None;
        if let Some(live) = live {
            // Opened on its own task, so a tab that opens after the deadline is still closed.
            let mut opening = tokio::spawn({
                let live = live.clone();
                async move { open_tab(&live.browser).await }
            });
            let context = match tokio::time::timeout_at(deadline, &mut opening).await {
                Ok(Ok(opened)) => Ok(opened),
                Ok(Err(join)) => Ok(Err(CdpError::msg(join.to_string()))),
                Err(elapsed) => Err(elapsed),
            };
            match context {
                Err(_) => {
                    record.status = RenderStatus::Timeout;
                    record.error = Some("the render deadline passed while opening a tab".into());
                    let closing = live.clone();
                    tokio::spawn(async move {
                        if let Ok(Ok((context_id, _))) = opening.await {
                            let _ = closing.browser.dispose_browser_context(context_id).await;
                        }
                        drop(permit);
                    });
                }
                Ok(Err(e)) => {
                    record.error = Some(clip(&format!("could not open a tab: {e}")));
                    drop(permit);
                    self.discard_if_dead(&live).await;
                    record.elapsed_ms = elapsed_ms(start);
                    return (None, record);
                }
                Ok(Ok((context_id, page))) => {
                    tracing::debug!(url = %url, tab_ms = elapsed_ms(start), "render tab open");
                    let net = Net {
                        page: page.clone(),
                        client: self.client.clone(),
                        resolver: self.resolver.clone(),
                        counters: counters.clone(),
                        max_requests: self.settings.max_requests,
                        body_cap: self.settings.body_cap,
                        deadline,
                        user_agent: self.settings.user_agent.clone(),
                    };
                    let work = self.render_in(&page, url, net);
                    match tokio::time::timeout_at(deadline, work).await {
                        Ok(Ok(dom)) => {
                            record.status = RenderStatus::Rendered;
                            html = Some(dom);
                        }
                        Ok(Err(message)) => record.error = Some(clip(&message)),
                        Err(_) => {
                            record.status = RenderStatus::Timeout;
                            record.error = Some(format!(
                                "the page did not finish within {} ms",
                                u64::try_from((deadline - now).as_millis()).unwrap_or(u64::MAX)
                            ));
                        }
                    }
                    // Close the tab in the background; the tab slot is free once it is closed.
                    let closing = live.clone();
                    let permit = permit;
                    tokio::spawn(async move {
                        let close = closing.browser.dispose_browser_context(context_id);
                        if tokio::time::timeout(Duration::from_secs(5), close)
                            .await
                            .is_err()
                        {
                            tracing::debug!("closing a render tab timed out");
                        }
                        drop(permit);
                    });
                }
            }
            if matches!(record.status, RenderStatus::Failed | RenderStatus::Timeout) {
                self.discard_if_dead(&live).await;
            }
        }
        tracing::debug!(url = %url, status = record.status.as_str(), elapsed_ms = elapsed_ms(start), "render done");
        record.requests = counters.requests.load(Ordering::SeqCst);
        record.blocked = counters.blocked.load(Ordering::SeqCst);
        record.elapsed_ms = elapsed_ms(start);
        (html, record)
    }

    /// Navigate, wait for the load event and the settle, read the DOM. Runs under the
    /// caller's deadline.
    async fn render_in(&self, page: &Page, url: &Url, net: Net) -> Result<String, String> {
        let cdp = |what: &str, e: CdpError| format!("{what}: {e}");
        let mut paused = page
            .event_listener::<EventRequestPaused>()
            .await
            .map_err(|e| cdp("Fetch listener", e))?;
        let counters = net.counters.clone();
        let _interceptor = AbortOnDrop(tokio::spawn(async move {
            let mut handlers = JoinSet::new();
            loop {
                tokio::select! {
                    event = paused.next() => match event {
                        Some(event) => {
                            let net = net.clone();
                            handlers.spawn(async move { net.answer(&event).await });
                        }
                        None => break,
                    },
                    Some(_) = handlers.join_next(), if !handlers.is_empty() => {}
                }
            }
        }));
        page.execute(
            fetch::EnableParams::builder()
                .pattern(
                    RequestPattern::builder()
                        .url_pattern("*")
                        .request_stage(RequestStage::Request)
                        .build(),
                )
                .handle_auth_requests(false)
                .build(),
        )
        .await
        .map_err(|e| cdp("Fetch.enable", e))?;
        page.execute(SetBypassServiceWorkerParams::new(true))
            .await
            .map_err(|e| cdp("Network.setBypassServiceWorker", e))?;
        page.execute(AddScriptToEvaluateOnNewDocumentParams::new(HARDEN_SCRIPT))
            .await
            .map_err(|e| cdp("Page.addScriptToEvaluateOnNewDocument", e))?;
        let mut loaded = page
            .event_listener::<EventLoadEventFired>()
            .await
            .map_err(|e| cdp("load listener", e))?;
        let mut crashed = page
            .event_listener::<EventTargetCrashed>()
            .await
            .map_err(|e| cdp("crash listener", e))?;

        let navigated = page
            .execute(NavigateParams::new(url.as_str()))
            .await
            .map_err(|e| cdp("Page.navigate", e))?;
        if let Some(error) = navigated.result.error_text.as_deref() {
            return Err(format!("navigation failed: {error}"));
        }
        tokio::select! {
            event = loaded.next() => {
                if event.is_none() {
                    return Err("the tab went away before the load event".into());
                }
            }
            _ = crashed.next() => return Err("the tab crashed".into()),
        }
        tracing::debug!(url = %url, "render load event");
        // Settle: until no request was in flight for SETTLE_IDLE, at most SETTLE_MAX.
        let settle_start = tokio::time::Instant::now();
        while settle_start.elapsed() < SETTLE_MAX && counters.idle_for() < SETTLE_IDLE {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cap = self.settings.dom_cap;
        let expression = format!(
            "(() => {{ const e = document.documentElement; const h = e ? e.outerHTML : ''; \
             return h.length > {cap} ? h.slice(0, {cap}) : h; }})()"
        );
        let evaluated = page
            .execute(
                EvaluateParams::builder()
                    .expression(expression)
                    .return_by_value(true)
                    .build()
                    .map_err(|e| format!("Runtime.evaluate: {e}"))?,
            )
            .await
            .map_err(|e| cdp("Runtime.evaluate", e))?;
        if let Some(exception) = &evaluated.result.exception_details {
            return Err(format!("reading the DOM failed: {}", exception.text));
        }
        let mut html = match evaluated.result.result.value {
            Some(serde_json::Value::String(s)) => s,
            _ => return Err("reading the DOM gave no text".into()),
        };
        truncate_at_char(&mut html, cap);
        Ok(html)
    }
}

/// A fresh browser context (no shared cookies or storage) with one blank tab.
async fn open_tab(
    browser: &Browser,
) -> Result<
    (
        chromiumoxide::cdp::browser_protocol::browser::BrowserContextId,
        Page,
    ),
    CdpError,
> {
    let context = browser
        .create_browser_context(CreateBrowserContextParams::default())
        .await?;
    let params = CreateTargetParams::builder()
        .url("about:blank")
        .browser_context_id(context.clone())
        .build()
        .map_err(CdpError::msg)?;
    match browser.new_page(params).await {
        Ok(page) => Ok((context, page)),
        Err(e) => {
            let _ = browser.dispose_browser_context(context).await;
            Err(e)
        }
    }
}

impl Net {
    /// Answer one paused request: continue (data:/blob:), fail (refused or over the cap), or
    /// fetch it under the guard and fulfil it.
    async fn answer(&self, event: &EventRequestPaused) {
        let id = event.request_id.clone();
        self.counters.touch();
        let outcome = self.decide_and_fetch(event).await;
        let sent = match outcome {
            Outcome::Continue => self
                .page
                .execute(ContinueRequestParams::new(id))
                .await
                .map(|_| ()),
            Outcome::Refuse(reason) => {
                self.counters.blocked.fetch_add(1, Ordering::SeqCst);
                tracing::debug!(url = %clip(&event.request.url), %reason, "render request refused");
                self.fail(id, ErrorReason::BlockedByClient).await
            }
            Outcome::Fail(reason) => self.fail(id, reason).await,
            Outcome::Fulfil(params) => self.page.execute(*params).await.map(|_| ()),
        };
        if let Err(e) = sent {
            tracing::debug!(error = %e, "answering a paused request failed");
        }
    }

    async fn fail(&self, id: fetch::RequestId, reason: ErrorReason) -> Result<(), CdpError> {
        self.page
            .execute(FailRequestParams::new(id, reason))
            .await
            .map(|_| ())
    }

    async fn decide_and_fetch(&self, event: &EventRequestPaused) -> Outcome {
        let url = match Url::parse(&event.request.url) {
            Ok(url) => url,
            Err(_) => return Outcome::Refuse("an unparseable URL".into()),
        };
        match url.scheme() {
            "http" | "https" => {}
            "data" | "blob" => return Outcome::Continue,
            other => return Outcome::Refuse(format!("the {} scheme", clip(other))),
        }
        if self.counters.admitted.fetch_add(1, Ordering::SeqCst) >= self.max_requests {
            return Outcome::Refuse(format!("more than {} requests", self.max_requests));
        }
        let ip: Option<IpAddr> = match url.host() {
            Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
            Some(url::Host::Domain(_)) => None,
            None => return Outcome::Refuse("no host".into()),
        };
        if let Some(ip) = ip {
            if let Err(refusal) = self.resolver.guard().check(ip) {
                return Outcome::Refuse(refusal.to_string());
            }
        }
        self.counters.in_flight.fetch_add(1, Ordering::SeqCst);
        self.counters.touch();
        let outcome = self.fetch(event, url).await;
        self.counters.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.counters.touch();
        outcome
    }

    /// Fetch with the guarded client (names resolve through the scanner's resolver and
    /// guard); redirects are returned as they are.
    async fn fetch(&self, event: &EventRequestPaused, url: Url) -> Outcome {
        let request = &event.request;
        let method = match reqwest::Method::from_bytes(request.method.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Outcome::Refuse("an invalid method".into()),
        };
        let mut builder = self.client.request(method, url);
        if let Some(headers) = request.headers.inner().as_object() {
            for (name, value) in headers {
                let Some(value) = value.as_str() else {
                    continue;
                };
                let lower = name.to_ascii_lowercase();
                if SKIP_REQUEST_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
                    continue;
                }
                if lower == "user-agent" {
                    builder = builder.header(
                        reqwest::header::USER_AGENT,
                        format!("{} {}", value, self.user_agent),
                    );
                    continue;
                }
                builder = builder.header(name.as_str(), value);
            }
        }
        if let Some(entries) = &request.post_data_entries {
            let mut body = Vec::new();
            for entry in entries {
                if let Some(bytes) = &entry.bytes {
                    if let Ok(decoded) =
                        base64::engine::general_purpose::STANDARD
                            .decode(AsRef::<str>::as_ref(bytes))
                    {
                        body.extend_from_slice(&decoded);
                    }
                }
            }
            builder = builder.body(body);
        }
        let response = match tokio::time::timeout_at(self.deadline, builder.send()).await {
            Err(_) => return Outcome::Fail(ErrorReason::TimedOut),
            Ok(Err(e)) => {
                let error = classify(&e);
                return match error.kind {
                    FetchErrorKind::BlockedAddress => Outcome::Refuse(error.message),
                    kind => {
                        self.counters.requests.fetch_add(1, Ordering::SeqCst);
                        Outcome::Fail(error_reason(kind))
                    }
                };
            }
            Ok(Ok(response)) => response,
        };
        self.counters.requests.fetch_add(1, Ordering::SeqCst);
        let status = response.status();
        let mut headers: Vec<HeaderEntry> = Vec::new();
        for (name, value) in response.headers() {
            if SKIP_RESPONSE_HEADERS.contains(&name.as_str()) {
                continue;
            }
            if let Ok(value) = value.to_str() {
                headers.push(HeaderEntry::new(name.as_str(), value));
            }
        }
        let mut body: Vec<u8> = Vec::new();
        let mut response = response;
        loop {
            match tokio::time::timeout_at(self.deadline, response.chunk()).await {
                Err(_) => return Outcome::Fail(ErrorReason::TimedOut),
                Ok(Err(e)) => return Outcome::Fail(error_reason(classify(&e).kind)),
                Ok(Ok(None)) => break,
                Ok(Ok(Some(chunk))) => {
                    let room = self.body_cap.saturating_sub(body.len());
                    if chunk.len() > room {
                        body.extend_from_slice(&chunk[..room]);
                        break;
                    }
                    body.extend_from_slice(&chunk);
                }
            }
        }
        label_default_charset(&mut headers, &body);
        let params = FulfillRequestParams::builder()
            .request_id(event.request_id.clone())
            .response_code(i64::from(status.as_u16()))
            .response_headers(headers)
            .response_phrase(status.canonical_reason().unwrap_or("Unknown"))
            .body(base64::engine::general_purpose::STANDARD.encode(&body))
            .build();
        match params {
            Ok(params) => Outcome::Fulfil(Box::new(params)),
            Err(_) => Outcome::Fail(ErrorReason::Failed),
        }
    }
}

/// An HTML response whose charset neither a BOM, the header nor a `<meta>` gives is labelled
/// UTF-8, so Chromium decodes it as the static extractor does ([`crate::extract::decode`])
/// rather than with its locale's default (windows-1252).
fn label_default_charset(headers: &mut Vec<HeaderEntry>, body: &[u8]) {
    let position = headers
        .iter()
        .position(|h| h.name.eq_ignore_ascii_case("content-type"));
    let content_type = position.map(|i| headers[i].value.clone());
    let is_html = content_type.as_deref().is_some_and(|ct| {
        let essence = ct.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("text/html")
    });
    if !is_html {
        return;
    }
    // Declared (BOM, header, `<meta>`): Chromium reads it too. Otherwise label the page
    // with what the static decoder used (UTF-8, or chardetng's guess such as GBK), so both
    // read the same characters.
    let (encoding, source) = crate::extract::decode::detect(body, content_type.as_deref());
    if !matches!(
        source,
        crate::extract::decode::CharsetSource::Default
            | crate::extract::decode::CharsetSource::Detected
    ) {
        return;
    }
    let essence = content_type
        .as_deref()
        .and_then(|ct| ct.split(';').next())
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .unwrap_or("text/html")
        .to_string();
    let labelled = HeaderEntry::new(
        "content-type",
        format!(
            "{essence}; charset={}",
            encoding.name().to_ascii_lowercase()
        ),
    );
    match position {
        Some(i) => headers[i] = labelled,
        None => headers.push(labelled),
    }
}

/// Request headers Chromium shows at the request stage that the Rust client sets itself or
/// that concern the hop, not the request.
const SKIP_REQUEST_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "accept-encoding",
];

/// Response headers that no longer describe the body handed to Chromium (it is decoded and
/// complete).
const SKIP_RESPONSE_HEADERS: &[&str] = &[
    "content-encoding",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "trailer",
    "upgrade",
];

enum Outcome {
    Continue,
    Refuse(String),
    Fail(ErrorReason),
    Fulfil(Box<FulfillRequestParams>),
}

fn error_reason(kind: FetchErrorKind) -> ErrorReason {
    match kind {
        FetchErrorKind::BlockedAddress => ErrorReason::BlockedByClient,
        FetchErrorKind::Dns => ErrorReason::NameNotResolved,
        FetchErrorKind::Connect => ErrorReason::ConnectionRefused,
        FetchErrorKind::Timeout | FetchErrorKind::Deadline => ErrorReason::TimedOut,
        FetchErrorKind::Reset => ErrorReason::ConnectionReset,
        _ => ErrorReason::Failed,
    }
}

/// The command line (switch, value): headless, no sandbox (root in a container), a dead proxy
/// and no name resolution for anything that escapes interception, no background traffic.
fn chromium_args() -> Vec<(&'static str, Option<String>)> {
    let switches = [
        "headless",
        "no-sandbox",
        "disable-gpu",
        "disable-quic",
        "no-first-run",
        "no-default-browser-check",
        "disable-background-networking",
        "disable-component-update",
        "disable-sync",
        "disable-dev-shm-usage",
        "disable-extensions",
        "disable-default-apps",
        "disable-breakpad",
        "disable-crash-reporter",
        "disable-domain-reliability",
        "disable-client-side-phishing-detection",
        "safebrowsing-disable-auto-update",
        "no-pings",
        "dns-prefetch-disable",
        "metrics-recording-only",
        "mute-audio",
        "hide-scrollbars",
        "use-mock-keychain",
        "disable-site-isolation-trials",
    ];
    let values = [
        ("password-store", "basic".to_string()),
        (
            "disable-features",
            [
                "IsolateOrigins",
                "site-per-process",
                "Translate",
                "OptimizationHints",
                "MediaRouter",
                "DialMediaRouteProvider",
                "NetworkPrediction",
                "Prerender2",
                "SpeculationRulesPrefetchProxy",
                "InterestFeedContentSuggestions",
                "CertificateTransparencyComponentUpdater",
                "AutofillServerCommunication",
                "HttpsUpgrades",
                "HttpsFirstBalancedModeAutoEnable",
            ]
            .join(","),
        ),
        (
            "force-webrtc-ip-handling-policy",
            "disable_non_proxied_udp".to_string(),
        ),
        (
            "webrtc-ip-handling-policy",
            "disable_non_proxied_udp".to_string(),
        ),
        ("host-resolver-rules", "MAP * ~NOTFOUND".to_string()),
        ("proxy-server", format!("http://{DEAD_PROXY}")),
        ("proxy-bypass-list", "<-loopback>".to_string()),
        ("remote-debugging-port", "0".to_string()),
    ];
    switches
        .into_iter()
        .map(|k| (k, None))
        .chain(values.into_iter().map(|(k, v)| (k, Some(v))))
        .collect()
}

fn clip(s: &str) -> String {
    let mut s = s.to_string();
    truncate_at_char(&mut s, 300);
    s
}

fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn missing_configured_binary_is_a_clear_error() {
        let e = find_chromium(Some(Path::new("/nonexistent/chromium"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/chromium"), "{e}");
    }

    #[test]
    fn command_line_fails_closed() {
        let args: HashMap<&str, Option<String>> = chromium_args().into_iter().collect();
        let value = |k: &str| args.get(k).cloned().flatten();
        assert_eq!(args.get("headless"), Some(&None));
        assert_eq!(args.get("no-sandbox"), Some(&None));
        assert_eq!(
            value("host-resolver-rules").as_deref(),
            Some("MAP * ~NOTFOUND")
        );
        assert_eq!(value("proxy-bypass-list").as_deref(), Some("<-loopback>"));
        assert_eq!(value("proxy-server").as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(
            value("force-webrtc-ip-handling-policy").as_deref(),
            Some("disable_non_proxied_udp")
        );
        assert!(args.keys().all(|k| !k.starts_with('-')));
    }

    #[test]
    fn unlabelled_html_is_labelled_utf8() {
        let ct = |headers: &[HeaderEntry]| {
            headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-type"))
                .map(|h| h.value.clone())
        };
        let mut h = vec![HeaderEntry::new("Content-Type", "text/html")];
        label_default_charset(&mut h, "<p>京ICP备</p>".as_bytes());
        assert_eq!(ct(&h).as_deref(), Some("text/html; charset=utf-8"));
        // Undeclared GBK: labelled with the static decoder's guess.
        let (gbk, _, _) = encoding_rs::GBK.encode(
            "<p>北京市朝阳区示例科技有限公司版权所有，京ICP备12345678号。欢迎访问本站。</p>",
        );
        let mut h = vec![HeaderEntry::new("Content-Type", "text/html")];
        label_default_charset(&mut h, &gbk);
        assert_eq!(ct(&h).as_deref(), Some("text/html; charset=gbk"));

        // No Content-Type: Chromium sniffs; nothing is added.
        let mut h = vec![];
        label_default_charset(&mut h, b"<p>x</p>");
        assert_eq!(ct(&h), None);

        for (value, body) in [
            ("text/html; charset=gbk", &b"<p>x</p>"[..]),
            ("text/html", &b"<meta charset=gb2312><p>x</p>"[..]),
            ("application/javascript", &b"var x"[..]),
        ] {
            let mut h = vec![HeaderEntry::new("Content-Type", value)];
            label_default_charset(&mut h, body);
            assert_eq!(ct(&h).as_deref(), Some(value));
        }
    }

    #[test]
    fn truncation_respects_characters() {
        let mut s = "备案号".to_string();
        truncate_at_char(&mut s, 4);
        assert_eq!(s, "备");
    }
}
