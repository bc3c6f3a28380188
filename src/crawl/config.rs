//! Scanner configuration (`[scan]` in the TOML file): every default defined once, as a
//! constant, and strict deserialisation (unknown keys rejected).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Targets in flight at once (global concurrency).
pub const DEFAULT_CONCURRENCY: usize = 64;
/// Targets of the same host in flight at once.
pub const DEFAULT_HOST_CONCURRENCY: usize = 2;
/// Requests per second to one host (also the burst size).
pub const DEFAULT_HOST_RATE: u32 = 4;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 15_000;
/// Hard deadline for everything done for one target (DNS, homepage, certificate).
pub const DEFAULT_DEADLINE_MS: u64 = 30_000;
pub const DEFAULT_DNS_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_MAX_REDIRECTS: usize = 10;
/// Homepage body cap (decompressed bytes); longer bodies are truncated.
pub const DEFAULT_HOMEPAGE_CAP: usize = 2 * 1024 * 1024;
/// Certificate body cap (decompressed bytes); longer bodies are an error.
pub const DEFAULT_CERT_CAP: usize = 64 * 1024;
/// Retries after a 429/503 carrying `Retry-After`.
pub const DEFAULT_MAX_RETRIES: u32 = 2;
/// Total time one fetch may spend waiting for `Retry-After`.
pub const DEFAULT_MAX_RETRY_WAIT_MS: u64 = 10_000;
pub const DEFAULT_HTTP_PORT: u16 = 80;
pub const DEFAULT_HTTPS_PORT: u16 = 443;
/// Idle connections kept per host (each host is visited only a few times in a row).
pub const DEFAULT_POOL_IDLE_PER_HOST: usize = 1;
/// How long an idle connection is kept. A site's requests follow each other at once (the
/// homepage, its redirects, the certificate on the homepage's connection), so a connection
/// idle longer than this is one the scan will not use again; each holds its read buffer, and
/// at a thousand sites in flight a longer wait kept thousands of them (2 s: 9,000 open
/// connections and 3× the memory in the fleet bench).
pub const DEFAULT_POOL_IDLE_TIMEOUT_MS: u64 = 250;
/// Entries in the DNS cache (each name's answer is one entry; a target needs its entry from
/// its first lookup to its last fetch, so this holds several per target in flight).
pub const DEFAULT_DNS_CACHE_SIZE: usize = 8_192;
/// A positive DNS answer is reused for at least this many seconds, whatever its TTL: one
/// target's lookups (the DNS observation, the homepage, redirect hops, the certificate) then
/// ask once, also when a server answers with TTL 0.
pub const DEFAULT_DNS_MIN_TTL_S: u64 = 30;
/// Upper bound for `dns_min_ttl_s`.
pub const MAX_DNS_MIN_TTL_S: u64 = 3_600;
/// A registry snapshot older than this (seconds) gets a warning (0: never).
pub const DEFAULT_SNAPSHOT_MAX_AGE_S: u64 = 86_400;
/// Whether homepages the static text cannot decide are rendered in headless Chromium.
pub const DEFAULT_RENDER: RenderMode = RenderMode::Off;
/// Browser tabs rendering at once (renders beyond wait for a free tab).
pub const DEFAULT_RENDER_TABS: usize = 2;
/// Hard deadline for rendering one page (never past the target's own deadline).
pub const DEFAULT_RENDER_TIMEOUT_MS: u64 = 10_000;
/// Requests one rendered page may make (the document included); the rest are failed.
pub const DEFAULT_RENDER_MAX_REQUESTS: u32 = 50;
/// Upper bound for `render_tabs` (each tab is a renderer process's worth of memory).
pub const MAX_RENDER_TABS: usize = 64;

/// When to render a homepage in headless Chromium.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RenderMode {
    /// Never; pages that need rendering are recorded as such (`render.status = off`).
    #[default]
    Off,
    /// Render the homepages whose static text cannot decide the footer
    /// ([`crate::extract::Extraction::needs_render`]).
    Auto,
}

impl RenderMode {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl std::str::FromStr for RenderMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        crate::names::by_name(s).ok_or_else(|| {
            format!(
                "unknown render mode {:?} (expected one of: {})",
                s.trim(),
                crate::names::listed::<Self>()
            )
        })
    }
}

/// Everything the scanner's network half can be told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// Targets in flight at once across the scanner.
    pub concurrency: usize,
    /// Targets of one host in flight at once.
    pub host_concurrency: usize,
    /// Overall requests per second (`None`: unlimited).
    pub rate: Option<NonZeroU32>,
    /// Requests per second per host (`None`: unlimited).
    pub host_rate: Option<NonZeroU32>,
    pub connect_timeout_ms: u64,
    /// Timeout for one request, from sending to the end of the body.
    pub request_timeout_ms: u64,
    /// Hard deadline per target; time spent waiting for rate limits is not counted.
    pub deadline_ms: u64,
    pub max_redirects: usize,
    pub homepage_cap: usize,
    pub cert_cap: usize,
    pub max_retries: u32,
    pub max_retry_wait_ms: u64,
    /// DNS server to use (UDP and TCP); `None`: the system configuration.
    pub dns: Option<SocketAddr>,
    pub dns_timeout_ms: u64,
    pub dns_cache_size: usize,
    /// Reuse a positive DNS answer for at least this long (0: as long as its TTL says).
    pub dns_min_ttl_s: u64,
    /// Fixed answers per host name, like curl's `--resolve` (still subject to the guard).
    pub overrides: HashMap<String, Vec<IpAddr>>,
    /// Lift the address guard entirely (labs only).
    pub allow_private: bool,
    /// Networks allowed despite the guard (labs and tests, e.g. `127.0.0.2/32`).
    pub allow_nets: Vec<IpNet>,
    /// Port for `http://host/` when the target is a bare domain.
    pub http_port: u16,
    /// Port for `https://host/` when the target is a bare domain.
    pub https_port: u16,
    /// Contact URL in the User-Agent: `beian/<version> (+<contact_url>)`.
    pub contact_url: Option<String>,
    /// Run `extract::extract_document` on 2xx homepages.
    pub extract: bool,
    pub pool_idle_per_host: usize,
    pub pool_idle_timeout_ms: u64,
    /// Warn when the registry snapshot is older than this many seconds (0: never).
    pub snapshot_max_age_s: u64,
    /// Render homepages that need it in headless Chromium (`off` or `auto`).
    pub render: RenderMode,
    /// Browser tabs rendering at once.
    pub render_tabs: usize,
    /// Hard deadline for rendering one page.
    pub render_timeout_ms: u64,
    /// Requests one rendered page may make; the rest are failed and counted as blocked.
    pub render_max_requests: u32,
    /// The Chromium binary; `None`: `/usr/bin/chromium`, else `chromium`, `chromium-browser`
    /// or `google-chrome` on `PATH`.
    pub chromium: Option<PathBuf>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        Self {
            concurrency: DEFAULT_CONCURRENCY,
            host_concurrency: DEFAULT_HOST_CONCURRENCY,
            rate: None,
            host_rate: NonZeroU32::new(DEFAULT_HOST_RATE),
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            deadline_ms: DEFAULT_DEADLINE_MS,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            homepage_cap: DEFAULT_HOMEPAGE_CAP,
            cert_cap: DEFAULT_CERT_CAP,
            max_retries: DEFAULT_MAX_RETRIES,
            max_retry_wait_ms: DEFAULT_MAX_RETRY_WAIT_MS,
            dns: None,
            dns_timeout_ms: DEFAULT_DNS_TIMEOUT_MS,
            dns_cache_size: DEFAULT_DNS_CACHE_SIZE,
            dns_min_ttl_s: DEFAULT_DNS_MIN_TTL_S,
            overrides: HashMap::new(),
            allow_private: false,
            allow_nets: Vec::new(),
            http_port: DEFAULT_HTTP_PORT,
            https_port: DEFAULT_HTTPS_PORT,
            contact_url: None,
            extract: true,
            pool_idle_per_host: DEFAULT_POOL_IDLE_PER_HOST,
            pool_idle_timeout_ms: DEFAULT_POOL_IDLE_TIMEOUT_MS,
            snapshot_max_age_s: DEFAULT_SNAPSHOT_MAX_AGE_S,
            render: DEFAULT_RENDER,
            render_tabs: DEFAULT_RENDER_TABS,
            render_timeout_ms: DEFAULT_RENDER_TIMEOUT_MS,
            render_max_requests: DEFAULT_RENDER_MAX_REQUESTS,
            chromium: None,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scan configuration `{field}`: {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

impl ScanConfig {
    /// Reject values the scanner cannot run with (zero concurrency, zero timeouts, bad
    /// override names).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |field: &'static str, v: u64| {
            if v == 0 {
                Err(ConfigError {
                    field,
                    reason: "must be greater than zero".into(),
                })
            } else {
                Ok(())
            }
        };
        positive("concurrency", self.concurrency as u64)?;
        positive("host_concurrency", self.host_concurrency as u64)?;
        positive("connect_timeout_ms", self.connect_timeout_ms)?;
        positive("request_timeout_ms", self.request_timeout_ms)?;
        positive("deadline_ms", self.deadline_ms)?;
        positive("dns_timeout_ms", self.dns_timeout_ms)?;
        positive("homepage_cap", self.homepage_cap as u64)?;
        positive("cert_cap", self.cert_cap as u64)?;
        positive("http_port", u64::from(self.http_port))?;
        positive("https_port", u64::from(self.https_port))?;
        positive("render_tabs", self.render_tabs as u64)?;
        positive("render_timeout_ms", self.render_timeout_ms)?;
        positive("render_max_requests", u64::from(self.render_max_requests))?;
        if self.dns_min_ttl_s > MAX_DNS_MIN_TTL_S {
            return Err(ConfigError {
                field: "dns_min_ttl_s",
                reason: format!("at most {MAX_DNS_MIN_TTL_S}"),
            });
        }
        if self.render_tabs > MAX_RENDER_TABS {
            return Err(ConfigError {
                field: "render_tabs",
                reason: format!("at most {MAX_RENDER_TABS}"),
            });
        }
        if let Some(path) = &self.chromium {
            if path.as_os_str().is_empty() {
                return Err(ConfigError {
                    field: "chromium",
                    reason: "an empty path".into(),
                });
            }
        }
        for host in self.overrides.keys() {
            crate::domain::normalise_host(host).map_err(|e| ConfigError {
                field: "overrides",
                reason: e.to_string(),
            })?;
        }
        if let Some(url) = &self.contact_url {
            if url.chars().any(|c| c.is_control()) {
                return Err(ConfigError {
                    field: "contact_url",
                    reason: "contains control characters".into(),
                });
            }
        }
        Ok(())
    }

    /// The User-Agent sent with every request.
    pub fn user_agent(&self) -> String {
        let version = env!("CARGO_PKG_VERSION");
        match &self.contact_url {
            Some(url) => format!("beian/{version} (+{url})"),
            None => format!("beian/{version}"),
        }
    }

    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
    pub fn dns_timeout(&self) -> Duration {
        Duration::from_millis(self.dns_timeout_ms)
    }
    pub fn dns_min_ttl(&self) -> Duration {
        Duration::from_secs(self.dns_min_ttl_s)
    }
    pub fn max_retry_wait(&self) -> Duration {
        Duration::from_millis(self.max_retry_wait_ms)
    }
    pub fn render_timeout(&self) -> Duration {
        Duration::from_millis(self.render_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_min_ttl_is_bounded() {
        let mut c = ScanConfig {
            dns_min_ttl_s: 0,
            ..ScanConfig::default()
        };
        assert!(c.validate().is_ok());
        c.dns_min_ttl_s = MAX_DNS_MIN_TTL_S;
        assert!(c.validate().is_ok());
        c.dns_min_ttl_s = MAX_DNS_MIN_TTL_S + 1;
        assert_eq!(c.validate().unwrap_err().field, "dns_min_ttl_s");
        let c: ScanConfig = toml::from_str("dns_min_ttl_s = 5").unwrap();
        assert_eq!(c.dns_min_ttl(), Duration::from_secs(5));
    }

    #[test]
    fn empty_toml_gives_defaults() {
        let c: ScanConfig = toml::from_str("").unwrap();
        assert_eq!(c, ScanConfig::default());
        assert_eq!(c.homepage_cap, 2 * 1024 * 1024);
        assert_eq!(c.cert_cap, 64 * 1024);
        assert_eq!(c.max_redirects, 10);
        assert!(c.extract);
        assert_eq!(c.render, RenderMode::Off);
        assert_eq!(c.render_tabs, 2);
        assert_eq!(c.render_timeout_ms, 10_000);
        assert_eq!(c.render_max_requests, 50);
        assert_eq!(c.chromium, None);
        c.validate().unwrap();
    }

    #[test]
    fn render_settings() {
        let c: ScanConfig = toml::from_str(
            r#"
            render = "auto"
            render_tabs = 4
            render_timeout_ms = 5000
            render_max_requests = 20
            chromium = "/opt/chromium/chrome"
            "#,
        )
        .unwrap();
        assert_eq!(c.render, RenderMode::Auto);
        assert_eq!(c.render_tabs, 4);
        assert_eq!(c.chromium, Some(PathBuf::from("/opt/chromium/chrome")));
        c.validate().unwrap();
        assert!(toml::from_str::<ScanConfig>(r#"render = "always""#).is_err());
        for bad in [
            "render_tabs = 0",
            "render_tabs = 65",
            "render_timeout_ms = 0",
            "render_max_requests = 0",
            r#"chromium = """#,
        ] {
            let c: ScanConfig = toml::from_str(bad).unwrap();
            assert!(
                c.validate()
                    .unwrap_err()
                    .field
                    .starts_with(bad.split(' ').next().unwrap()),
                "{bad}"
            );
        }
        assert_eq!("AUTO".parse::<RenderMode>(), Ok(RenderMode::Auto));
        assert!("on".parse::<RenderMode>().is_err());
    }

    #[test]
    fn parses_lab_settings() {
        let c: ScanConfig = toml::from_str(
            r#"
            allow_nets = ["127.0.0.2/32"]
            dns = "127.0.0.53:53"
            http_port = 8080
            rate = 50
            contact_url = "https://scanner.example/about"
            [overrides]
            "www.example.com" = ["127.0.0.2", "::1"]
            "#,
        )
        .unwrap();
        assert_eq!(c.allow_nets, vec!["127.0.0.2/32".parse::<IpNet>().unwrap()]);
        assert_eq!(c.dns, Some("127.0.0.53:53".parse().unwrap()));
        assert_eq!(c.http_port, 8080);
        assert_eq!(c.rate, NonZeroU32::new(50));
        assert_eq!(c.overrides["www.example.com"].len(), 2);
        assert_eq!(
            c.user_agent(),
            format!(
                "beian/{} (+https://scanner.example/about)",
                env!("CARGO_PKG_VERSION")
            )
        );
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_rejected() {
        assert!(toml::from_str::<ScanConfig>("concurrancy = 3").is_err());
    }

    #[test]
    fn zero_values_rejected() {
        let c: ScanConfig = toml::from_str("concurrency = 0").unwrap();
        assert_eq!(c.validate().unwrap_err().field, "concurrency");
        assert!(toml::from_str::<ScanConfig>("rate = 0").is_err());
        let c: ScanConfig = toml::from_str(r#"overrides = { "bad host" = ["1.2.3.4"] }"#).unwrap();
        assert_eq!(c.validate().unwrap_err().field, "overrides");
    }
}
