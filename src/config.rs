//! The configuration file (`beian.toml`): strict TOML, unknown keys rejected with file and line.
//! Defaults are defined once, next to the settings they belong to (`crawl::config` for the
//! scanner). Precedence is flags > environment > file > defaults; the binary applies flags and
//! environment over what this module loads.

use std::path::Path;

use serde::Deserialize;

use crate::crawl::ScanConfig;

/// Default API listen address of `beian serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default `/metrics` listen address of `beian serve`.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9464";
/// Default limit for API request bodies, in bytes.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub scan: ScanConfig,
    pub serve: ServeConfig,
    pub mail: MailConfig,
    pub sms: SmsConfig,
    /// Scans `beian serve` runs by itself; absent: none (scans are started through the API).
    pub schedule: Option<ScheduleConfig>,
}

/// Default interval between scheduled scans: one day.
pub const DEFAULT_SCHEDULE_INTERVAL_S: u64 = 86_400;
/// Shortest accepted interval between scheduled scans.
pub const MIN_SCHEDULE_INTERVAL_S: u64 = 1;

/// `[schedule]`: the scans `beian serve` runs itself. Targets are every filed domain
/// (`targets = "filed"`, the default), the lines of a file (`targets_file`), or a list
/// (`targets_list`); exactly one of them. `concurrency` and `render` override `[scan]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleConfig {
    /// Seconds from the start of one scheduled scan to the start of the next.
    pub interval_s: u64,
    /// `"filed"`: every domain of every filing in the registry.
    pub targets: Option<String>,
    /// A file of targets, one per line (`#` starts a comment), read at each scan.
    pub targets_file: Option<std::path::PathBuf>,
    /// Targets given here.
    pub targets_list: Option<Vec<String>>,
    pub concurrency: Option<usize>,
    pub render: Option<crate::crawl::config::RenderMode>,
    /// Completed scheduled scans kept in the history; older ones are removed after each
    /// scheduled scan (0: keep every scan, the default).
    pub keep_scans: usize,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            interval_s: DEFAULT_SCHEDULE_INTERVAL_S,
            targets: None,
            targets_file: None,
            targets_list: None,
            concurrency: None,
            render: None,
            keep_scans: 0,
        }
    }
}

/// Where a scheduled scan's targets come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleTargets {
    /// Every domain of every filing in the registry snapshot.
    Filed,
    File(std::path::PathBuf),
    List(Vec<String>),
}

impl ScheduleConfig {
    /// The target source, or why the section is inconsistent.
    pub fn target_source(&self) -> Result<ScheduleTargets, String> {
        let given = [
            self.targets.is_some(),
            self.targets_file.is_some(),
            self.targets_list.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given > 1 {
            return Err(
                "give one of targets = \"filed\", targets_file or targets_list, not several".into(),
            );
        }
        match (&self.targets, &self.targets_file, &self.targets_list) {
            (Some(t), _, _) if t == "filed" => Ok(ScheduleTargets::Filed),
            (Some(t), _, _) => Err(format!(
                "targets = {t:?}: the only named source is \"filed\" (use targets_file or targets_list otherwise)"
            )),
            (_, Some(f), _) => Ok(ScheduleTargets::File(f.clone())),
            (_, _, Some(l)) if l.is_empty() => Err("targets_list is empty".into()),
            (_, _, Some(l)) => Ok(ScheduleTargets::List(l.clone())),
            _ => Ok(ScheduleTargets::Filed),
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.target_source()?;
        if self.interval_s < MIN_SCHEDULE_INTERVAL_S {
            return Err(format!(
                "interval_s must be at least {MIN_SCHEDULE_INTERVAL_S}"
            ));
        }
        if self.concurrency == Some(0) {
            return Err("concurrency must be greater than zero".into());
        }
        Ok(())
    }

    /// The scanner settings of scheduled scans: `[scan]` with this section's overrides.
    pub fn scan_config(&self, scan: &ScanConfig) -> ScanConfig {
        let mut c = scan.clone();
        if let Some(n) = self.concurrency {
            c.concurrency = n;
        }
        if let Some(r) = self.render {
            c.render = r;
        }
        c
    }
}

/// `[serve]`: the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    pub listen: String,
    pub metrics_listen: String,
    pub body_limit: usize,
    /// Connections open at once per listener; beyond it a short 503 (default: three
    /// quarters of the open-files limit less a reserve).
    pub max_connections: Option<usize>,
    /// Time for a complete request head, and the keep-alive idle limit.
    pub header_timeout_ms: u64,
    /// Time for one request (its body and its handler).
    pub request_timeout_ms: u64,
    /// Anonymous public queries per client IP per minute (`api::limits::PUBLIC_PER_MINUTE`).
    pub public_per_minute: u32,
    /// Anonymous account requests (register, login, password reset…) per client IP per
    /// minute (`api::limits::ACCOUNT_PER_MINUTE`).
    pub account_per_minute: u32,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: DEFAULT_LISTEN.into(),
            metrics_listen: DEFAULT_METRICS_LISTEN.into(),
            body_limit: DEFAULT_BODY_LIMIT,
            max_connections: None,
            header_timeout_ms: crate::api::listener::DEFAULT_HEADER_TIMEOUT.as_millis() as u64,
            request_timeout_ms: crate::api::listener::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
            public_per_minute: crate::api::limits::PUBLIC_PER_MINUTE,
            account_per_minute: crate::api::limits::ACCOUNT_PER_MINUTE,
        }
    }
}

impl ServeConfig {
    /// The listener limits these settings give.
    pub fn listener_limits(&self) -> crate::api::listener::Limits {
        let auto = crate::api::listener::default_max_connections();
        crate::api::listener::Limits {
            // A configured cap may lower the automatic one, never raise it past the file limit.
            max_connections: self.max_connections.map_or(auto, |m| m.clamp(1, auto)),
            header_timeout: std::time::Duration::from_millis(self.header_timeout_ms.max(100)),
            request_timeout: std::time::Duration::from_millis(self.request_timeout_ms.max(100)),
        }
    }
}

/// `[mail]`: SMTP for account e-mail. Without a server, messages go to the registry's outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub smtp_server: Option<String>,
    pub smtp_port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub from: Option<String>,
}

/// `[sms]`: an HTTP webhook for SMS codes. Without one, messages go to the outbox.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmsConfig {
    pub webhook_url: Option<String>,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

impl Config {
    /// Parse configuration text; `path` names it in errors.
    pub fn parse(path: &str, text: &str) -> Result<Config, ConfigFileError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            ConfigFileError::Parse {
                path: path.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        config
            .scan
            .validate()
            .map_err(|e| ConfigFileError::Invalid {
                path: path.to_string(),
                message: e.to_string(),
            })?;
        if let Some(schedule) = &config.schedule {
            schedule
                .validate()
                .map_err(|message| ConfigFileError::Invalid {
                    path: path.to_string(),
                    message: format!("[schedule]: {message}"),
                })?;
        }
        Ok(config)
    }

    /// Read and parse a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigFileError> {
        let p = path.display().to_string();
        let text = crate::fsutil::read_bounded_string(path, crate::fsutil::MAX_TEXT_FILE).map_err(
            |source| ConfigFileError::Io {
                path: p.clone(),
                source,
            },
        )?;
        Config::parse(&p, &text)
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rfind('\n').map(|i| offset - i).unwrap_or(offset + 1);
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::parse("x.toml", "").unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.serve.listen, DEFAULT_LISTEN);
    }

    #[test]
    fn values_are_read() {
        let c = Config::parse(
            "x.toml",
            "[scan]\nconcurrency = 7\ncontact_url = \"https://example.org/beian\"\n[serve]\nlisten = \"0.0.0.0:1\"\n",
        )
        .unwrap();
        assert_eq!(c.scan.concurrency, 7);
        assert_eq!(c.serve.listen, "0.0.0.0:1");
    }

    #[test]
    fn schedule_sources_are_exclusive() {
        let c = Config::parse("x.toml", "[schedule]\ninterval_s = 600\n").unwrap();
        let s = c.schedule.unwrap();
        assert_eq!(s.interval_s, 600);
        assert_eq!(s.target_source().unwrap(), ScheduleTargets::Filed);
        let c = Config::parse(
            "x.toml",
            "[schedule]\ntargets_list = [\"a.cn\"]\nconcurrency = 3\nrender = \"auto\"\n",
        )
        .unwrap();
        let s = c.schedule.unwrap();
        assert_eq!(
            s.target_source().unwrap(),
            ScheduleTargets::List(vec!["a.cn".into()])
        );
        let scan = s.scan_config(&ScanConfig::default());
        assert_eq!(scan.concurrency, 3);
        assert_eq!(scan.render, crate::crawl::config::RenderMode::Auto);
        for bad in [
            "[schedule]\ntargets = \"filed\"\ntargets_list = [\"a.cn\"]\n",
            "[schedule]\ntargets = \"everything\"\n",
            "[schedule]\ninterval_s = 0\n",
            "[schedule]\ntargets_list = []\n",
            "[schedule]\nintervall_s = 5\n",
        ] {
            let e = Config::parse("s.toml", bad).unwrap_err().to_string();
            assert!(e.starts_with("s.toml"), "{bad}: {e}");
        }
        assert!(Config::parse("x.toml", "").unwrap().schedule.is_none());
    }

    #[test]
    fn unknown_keys_name_file_and_line() {
        let e = Config::parse(
            "conf/beian.toml",
            "[scan]\nconcurrency = 3\nconcurency = 4\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("conf/beian.toml:3:"), "{e}");
        assert!(e.contains("concurency"), "{e}");
        let e = Config::parse("b.toml", "[scna]\n").unwrap_err().to_string();
        assert!(e.starts_with("b.toml:1:"), "{e}");
    }
}
