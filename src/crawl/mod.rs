//! The network half of the scanner: resolve a target (hickory, overrides, address guard),
//! fetch its homepage (https, falling back to http) and `/cert/bazs.cert` (and
//! `/cert/bazx.cert` when that is missing) under caps, timeouts, a hard deadline and
//! politeness limits, and record everything as an [`Observation`]. The scheduler streams
//! targets with bounded concurrency. Per-site problems are data in the observation; only
//! building the scanner can fail.
//!
//! Submodules: [`guard`] (special-purpose address ranges, pure), [`resolve`] (hickory and the
//! reqwest resolver), [`fetch`] (the HTTP client and redirect loop), [`polite`] (rate limits
//! and concurrency caps), [`render`] (headless Chromium for pages built by scripts, every
//! request of which passes the guard), [`config`] (settings and defaults).
//!
//! Choices worth knowing:
//! - The certificate is fetched from the origin of the homepage attempt that got an HTTP
//!   response (the target's own scheme, host and port — not wherever its redirects ended),
//!   since the certificate must be served by the scanned host. When neither homepage attempt
//!   got any response, no certificate fetch is made (`cert` is `None`). It is the site's
//!   last request ([`Fetcher::fetch_last`]): over the homepage's connection when the homepage
//!   did not redirect away, which it then closes.
//! - https falls back to http only when the https attempt got no response at all (connect,
//!   TLS, timeout or protocol failure on the first request); DNS refusals, blocked addresses
//!   and the deadline do not fall back.
//! - Time spent waiting on rate limits is not charged to a target's deadline.
//! - With `render = auto`, a homepage whose static text cannot decide the footer
//!   ([`Extraction::needs_render`](crate::extract::Extraction::needs_render)) is rendered
//!   after the certificate fetches (so rendering never starves them), at the URL its redirects
//!   ended at, within what is left of the target's deadline. The rendered extraction replaces
//!   the static one (its numbers marked `rendered`, the static page's challenge marker kept);
//!   a render that times out or fails keeps the static extraction. Chromium is started on the
//!   first page that needs it; a missing Chromium is reported once, when the scanner is built.

pub mod config;
pub mod fetch;
pub mod guard;
pub mod labdns;
pub mod polite;
pub mod render;
pub mod resolve;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use futures::{Stream, StreamExt};
use url::Url;

pub use config::{ConfigError, RenderMode, ScanConfig};
pub use fetch::{BodyCap, Deadline, Fetched, Fetcher, Overflow};
pub use guard::{AddressGuard, Refusal};
pub use render::{RenderError, RenderSettings, Renderer};
pub use resolve::{BlockedAddress, GuardedResolve, Resolution, ResolveFailure, Resolver};

use crate::observation::{
    CertFetch, FetchErrorKind, FetchRecord, Observation, RenderRecord, RenderStatus,
};
use polite::Politeness;
use resolve::elapsed_ms;

/// Path of the certificate a filer serves.
pub const CERT_PATH: &str = "/cert/bazs.cert";

/// Homepages up to this size are extracted on the async worker that fetched them; larger
/// ones go to a blocking thread (one per core at a time).
pub const INLINE_EXTRACT_MAX: usize = 64 * 1024;
/// The misspelt path probed when [`CERT_PATH`] is missing.
pub const MISPLACED_CERT_PATH: &str = "/cert/bazx.cert";

/// Why a scanner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

/// Resolver, fetcher and politeness state shared by all targets of a scan. Build one per
/// scan (inside a tokio runtime) and share it with `Arc`.
#[derive(Debug)]
pub struct Scanner {
    config: ScanConfig,
    resolver: Arc<Resolver>,
    fetcher: Fetcher,
    polite: Arc<Politeness>,
    /// Extraction is CPU-bound: at most one parse per core at a time, so memory (DOM trees)
    /// and blocking threads stay bounded however many targets are in flight.
    extract_slots: Arc<tokio::sync::Semaphore>,
    render: RenderState,
}

/// What the scanner does with pages that need rendering.
#[derive(Debug)]
enum RenderState {
    Off,
    /// `render = auto`, but no renderer could be set up (the message says why).
    Unavailable(String),
    Ready(Arc<Renderer>),
}

enum TargetHost {
    Name(String),
    /// An IP literal: nothing to resolve.
    Ip,
}

struct Target {
    /// Normalised host (name, or the IP address as text).
    host: String,
    kind: TargetHost,
    /// Homepage URLs in the order tried.
    attempts: Vec<Url>,
}

impl Scanner {
    pub fn new(config: ScanConfig) -> Result<Self, ScanError> {
        config.validate()?;
        let resolver = Arc::new(Resolver::new(&config));
        let polite = Arc::new(Politeness::new(
            config.rate,
            config.host_rate,
            config.concurrency,
            config.host_concurrency,
        ));
        let fetcher =
            Fetcher::new(&config, resolver.clone(), polite.clone()).map_err(ScanError::Client)?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let render = match config.render {
            RenderMode::Off => RenderState::Off,
            RenderMode::Auto => match RenderSettings::from_config(&config)
                .and_then(|settings| Renderer::new(settings, resolver.clone()))
            {
                Ok(renderer) => RenderState::Ready(Arc::new(renderer)),
                Err(e) => {
                    tracing::warn!(
                        error = %e,
                        "rendering is unavailable: pages built by scripts will be recorded as not rendered"
                    );
                    RenderState::Unavailable(e.to_string())
                }
            },
        };
        Ok(Self {
            config,
            resolver,
            fetcher,
            polite,
            extract_slots: Arc::new(tokio::sync::Semaphore::new(cores)),
            render,
        })
    }

    pub fn config(&self) -> &ScanConfig {
        &self.config
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// Scan one target (`example.com`, `https://example.com:8443/`, or an IP address).
    /// Waits for a global and a per-host slot first. Never fails: an unusable target is an
    /// observation with `dns.error` set and nothing fetched.
    pub async fn observe(&self, target: &str) -> Observation {
        let start = Instant::now();
        let mut obs = Observation {
            target: target.to_string(),
            host: String::new(),
            started_at: unix_now(),
            dns: Default::default(),
            allow_private: self.resolver.guard().is_relaxed(),
            homepage: Vec::new(),
            homepage_used: None,
            charset: None,
            page: None,
            cert: None,
            cert_misplaced: None,
            render: None,
            elapsed_ms: 0,
        };
        match self.parse_target(target) {
            Ok(parsed) => {
                obs.host = parsed.host.clone();
                let _slots = self.polite.enter(&parsed.host).await;
                self.observe_target(&parsed, &mut obs).await;
            }
            Err(message) => {
                obs.host = target.trim().to_ascii_lowercase();
                obs.dns.error = Some(message);
            }
        }
        obs.elapsed_ms = elapsed_ms(start);
        obs
    }

    async fn observe_target(&self, target: &Target, obs: &mut Observation) {
        let mut deadline = Deadline::after(self.config.deadline());

        if let TargetHost::Name(name) = &target.kind {
            let dns_start = Instant::now();
            let lookup = tokio::time::timeout_at(deadline.at(), self.resolver.observe(name));
            match lookup.await {
                Ok((dns, resolution)) => {
                    obs.dns = dns;
                    if resolution.is_none() {
                        return;
                    }
                }
                Err(_) => {
                    obs.dns.error = Some("the per-target deadline passed while resolving".into());
                    obs.dns.elapsed_ms = elapsed_ms(dns_start);
                    return;
                }
            }
        }

        // Homepage: https, then http when https got no response at all.
        let homepage_cap = BodyCap {
            cap: self.config.homepage_cap,
            overflow: Overflow::Truncate,
        };
        let mut answered: Option<(usize, Option<Vec<u8>>)> = None;
        for (index, url) in target.attempts.iter().enumerate() {
            let fetched = self
                .fetcher
                .fetch(url.clone(), homepage_cap, &mut deadline)
                .await;
            let got_response = fetched
                .record
                .hops
                .first()
                .is_some_and(|h| h.status.is_some());
            let fall_back = !got_response
                && fetched.record.error.as_ref().is_some_and(|e| {
                    matches!(
                        e.kind,
                        FetchErrorKind::Connect
                            | FetchErrorKind::Tls
                            | FetchErrorKind::Timeout
                            | FetchErrorKind::Reset
                            | FetchErrorKind::Protocol
                    )
                });
            obs.homepage.push(fetched.record);
            if got_response {
                answered = Some((index, fetched.body));
                break;
            }
            if !fall_back {
                break;
            }
        }
        obs.dns.used = obs
            .homepage
            .iter()
            .flat_map(|r| r.hops.iter())
            .find_map(|h| h.address.map(|a| a.ip()));

        let Some((index, body)) = answered else {
            return;
        };
        let used = &obs.homepage[index];
        // Where the homepage's redirects ended: the page to render.
        let rendered_url = used
            .hops
            .last()
            .map_or(used.url.as_str(), |h| h.url.as_str())
            .to_string();
        if let (Some(body), Some(status)) = (body, used.status) {
            if (200..300).contains(&status) {
                obs.homepage_used = Some(index);
                if self.config.extract {
                    let content_type = used.content_type.clone();
                    self.extract(body, content_type, obs).await;
                }
            }
        }

        // Certificate, on the origin that answered (over the homepage's connection: see
        // `Fetcher::fetch_last`).
        let origin = &target.attempts[index];
        let cert = self.fetch_cert(origin, CERT_PATH, &mut deadline).await;
        let missing = cert.fetch.error.is_none()
            && cert.fetch.status.is_some_and(|s| !(200..300).contains(&s));
        obs.cert = Some(cert);
        if missing {
            obs.cert_misplaced = Some(
                self.fetch_cert(origin, MISPLACED_CERT_PATH, &mut deadline)
                    .await,
            );
        }

        if obs.page.as_ref().is_some_and(|p| p.needs_render()) {
            self.render(&rendered_url, deadline, obs).await;
        }
    }

    /// Render a homepage whose static text cannot decide the footer, and use the rendered
    /// extraction when the render succeeded.
    async fn render(&self, url: &str, deadline: Deadline, obs: &mut Observation) {
        let record = |status: RenderStatus, error: Option<String>| RenderRecord {
            status,
            url: url.to_string(),
            requests: 0,
            blocked: 0,
            elapsed_ms: 0,
            error,
        };
        let renderer = match &self.render {
            RenderState::Off => {
                obs.render = Some(record(RenderStatus::Off, None));
                return;
            }
            RenderState::Unavailable(message) => {
                obs.render = Some(record(RenderStatus::Unavailable, Some(message.clone())));
                return;
            }
            RenderState::Ready(renderer) => renderer,
        };
        let parsed = match Url::parse(url) {
            Ok(u) => u,
            Err(e) => {
                obs.render = Some(record(RenderStatus::Failed, Some(format!("bad URL: {e}"))));
                return;
            }
        };
        let (html, rendered) = renderer.render(&parsed, deadline.at()).await;
        obs.render = Some(rendered);
        let Some(html) = html else {
            return;
        };
        match self
            .off_thread(move || crate::extract::extract_html(&html))
            .await
        {
            Ok(extraction) => {
                let mut rendered = extraction.mark_rendered();
                let challenge = obs.page.as_mut().and_then(|p| p.facts.challenge.take());
                if challenge.is_some() {
                    rendered.facts.challenge = challenge;
                }
                obs.page = Some(rendered);
            }
            Err(e) => {
                tracing::error!(target = %obs.target, error = %e, "rendered extraction failed");
                if let Some(r) = obs.render.as_mut() {
                    r.status = RenderStatus::Failed;
                    r.error = Some("extracting the rendered page failed".into());
                }
            }
        }
    }

    async fn fetch_cert(&self, origin: &Url, path: &str, deadline: &mut Deadline) -> CertFetch {
        let cap = BodyCap {
            cap: self.config.cert_cap,
            overflow: Overflow::Refuse,
        };
        let mut url = origin.clone();
        url.set_path(path);
        url.set_query(None);
        url.set_fragment(None);
        // The certificate is the site's last request: its connection is not kept.
        let fetched = self.fetcher.fetch_last(url, cap, deadline).await;
        CertFetch {
            path: path.to_string(),
            fetch: fetched.record,
            body: fetched.body,
        }
    }

    /// Decode and extract: a small page on this worker (handing it to a blocking thread would
    /// cost more than parsing it), a large one off the async workers. A panic in extraction
    /// leaves `page` empty.
    async fn extract(&self, body: Vec<u8>, content_type: Option<String>, obs: &mut Observation) {
        let inline = body.len() <= INLINE_EXTRACT_MAX;
        let job = move || crate::extract::extract_document(&body, content_type.as_deref());
        let outcome = if inline {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(job))
                .map_err(|_| "extraction panicked".to_string())
        } else {
            self.off_thread(job).await.map_err(|e| e.to_string())
        };
        match outcome {
            Ok(document) => {
                obs.charset = Some(document.charset);
                obs.page = Some(document.extraction);
            }
            Err(e) => {
                tracing::error!(target = %obs.target, error = %e, "homepage extraction failed")
            }
        }
    }

    /// Run CPU-bound extraction off the async workers, at most one per core at a time; a
    /// panic comes back as the `Err`.
    async fn off_thread<T, F>(&self, job: F) -> Result<T, tokio::task::JoinError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        // The semaphore is never closed, so acquiring only waits.
        let _slot = self.extract_slots.clone().acquire_owned().await.ok();
        tokio::task::spawn_blocking(job).await
    }

    fn parse_target(&self, target: &str) -> Result<Target, String> {
        let text = target.trim();
        if text.is_empty() {
            return Err("invalid target: empty".into());
        }
        if text.contains("://") {
            let mut url = Url::parse(text).map_err(|e| format!("invalid target URL: {e}"))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "invalid target URL: scheme {} is not http or https",
                    url.scheme()
                ));
            }
            url.set_fragment(None);
            let (host, kind) = match url.host() {
                Some(url::Host::Domain(d)) => {
                    let name = crate::domain::normalise_host(d)
                        .map_err(|e| format!("invalid target: {e}"))?;
                    (name.clone(), TargetHost::Name(name))
                }
                Some(url::Host::Ipv4(v4)) => (v4.to_string(), TargetHost::Ip),
                Some(url::Host::Ipv6(v6)) => (v6.to_string(), TargetHost::Ip),
                None => return Err("invalid target URL: no host".into()),
            };
            return Ok(Target {
                host,
                kind,
                attempts: vec![url],
            });
        }
        let bare = text.trim_start_matches('[').trim_end_matches(']');
        let (host, kind, url_host) = match bare.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => (v6.to_string(), TargetHost::Ip, format!("[{v6}]")),
            Ok(ip) => (ip.to_string(), TargetHost::Ip, ip.to_string()),
            Err(_) => {
                let name = crate::domain::normalise_host(text)
                    .map_err(|e| format!("invalid target: {e}"))?;
                (name.clone(), TargetHost::Name(name.clone()), name)
            }
        };
        let url = |scheme: &str, port: u16| {
            Url::parse(&format!("{scheme}://{url_host}:{port}/"))
                .map_err(|e| format!("invalid target: {e}"))
        };
        Ok(Target {
            host,
            kind,
            attempts: vec![
                url("https", self.config.https_port)?,
                url("http", self.config.http_port)?,
            ],
        })
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Aborts the spawned scan when the stream that owns it is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<Observation>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Scan `targets` with at most `concurrency` in flight, yielding observations as they finish
/// (not in input order). Targets are pulled lazily, so memory follows `concurrency`, not the
/// number of targets. Each target runs on its own tokio task (multi-core); must be polled
/// inside a tokio runtime.
pub fn scan_stream<S>(
    scanner: Arc<Scanner>,
    targets: S,
    concurrency: usize,
) -> impl Stream<Item = Observation>
where
    S: Stream<Item = String>,
{
    targets
        .map(move |target| {
            let scanner = scanner.clone();
            async move {
                let task_target = target.clone();
                let mut handle =
                    AbortOnDrop(tokio::spawn(
                        async move { scanner.observe(&task_target).await },
                    ));
                match (&mut handle.0).await {
                    Ok(observation) => observation,
                    Err(e) => failed_observation(target, &e),
                }
            }
        })
        .buffer_unordered(concurrency.max(1))
}

/// A scan task that panicked: record it as an observation rather than losing the target.
fn failed_observation(target: String, error: &tokio::task::JoinError) -> Observation {
    tracing::error!(%target, error = %error, "scan task failed");
    Observation {
        host: target.trim().to_ascii_lowercase(),
        target,
        started_at: unix_now(),
        dns: crate::observation::DnsObservation {
            error: Some("internal error: the scan task failed".into()),
            ..Default::default()
        },
        allow_private: false,
        homepage: Vec::new(),
        homepage_used: None,
        charset: None,
        page: None,
        cert: None,
        cert_misplaced: None,
        render: None,
        elapsed_ms: 0,
    }
}

/// The homepage record whose body was used, if any.
pub fn used_homepage(obs: &Observation) -> Option<&FetchRecord> {
    obs.homepage_used.and_then(|i| obs.homepage.get(i))
}
