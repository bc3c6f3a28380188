//! The follower of a read-only replica (`beian serve --replica-of URL|DIR`): it reads its
//! primary's change feed (`GET /api/replication/feed`) from the replica's own last applied
//! record and applies each page in one transaction
//! ([`crate::registry::Registry::apply_changes`]), so after any crash it resumes where its
//! store says, with no change lost or applied twice. It exports its progress and lag as the
//! `beian_replica_*` metrics.
//!
//! The primary is named by URL (with the replication token `serve` there was given), or by
//! its registry directory on this machine, whose `serve.json` gives the running server's
//! address and operator token, read again after every failure so a restarted primary on a
//! new port is found.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::api::operator::{ServeInfo, AS_HEADER, OPERATOR_HEADER};
use crate::api::replication::REPLICATION_HEADER;
use crate::metrics::Metrics;
use crate::registry::{Applied, FeedPage, Registry, RegistryError};

/// Records asked for per page.
pub const PAGE: usize = 1000;
/// Pause between polls once caught up.
pub const POLL: Duration = Duration::from_millis(500);
/// Longest pause after repeated failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Largest feed page body read.
pub const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;

/// Request headers: (name, value).
type Headers = Vec<(&'static str, String)>;

/// Where the primary is.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// Its base URL (`https://registry.example`), and the replication token.
    Url { base: String, token: Option<String> },
    /// Its registry directory on this machine (a running `serve` there).
    Dir(PathBuf),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Url { base, token } => f
                .debug_struct("Url")
                .field("base", base)
                .field("token", &token.as_ref().map(|_| "…"))
                .finish(),
            Source::Dir(d) => f.debug_tuple("Dir").field(d).finish(),
        }
    }
}

impl Source {
    /// `http://…` or `https://…` is a URL; anything else a registry directory.
    pub fn parse(text: &str, token: Option<String>) -> Source {
        let t = text.trim();
        if t.starts_with("http://") || t.starts_with("https://") {
            Source::Url {
                base: t.trim_end_matches('/').to_string(),
                token,
            }
        } else {
            Source::Dir(PathBuf::from(t))
        }
    }

    /// What the replica records it follows (never the token).
    pub fn describe(&self) -> String {
        match self {
            Source::Url { base, .. } => base.clone(),
            Source::Dir(d) => std::fs::canonicalize(d)
                .unwrap_or_else(|_| d.clone())
                .display()
                .to_string(),
        }
    }
}

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("fetching the change feed: {0}")]
    Fetch(String),
    #[error("applying the change feed: {0}")]
    Apply(#[from] RegistryError),
}

/// Reads the primary's change feed and applies it.
pub struct Follower {
    registry: Arc<Registry>,
    source: Source,
    http: reqwest::Client,
    metrics: Metrics,
}

impl Follower {
    pub fn new(registry: Arc<Registry>, source: Source, metrics: Metrics) -> Follower {
        metrics.enable_replica();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        Follower {
            registry,
            source,
            http,
            metrics,
        }
    }

    /// The feed URL and the headers that authorise reading it.
    fn endpoint(&self) -> Result<(String, Headers), String> {
        const PATH: &str = "/api/replication/feed";
        match &self.source {
            Source::Url { base, token } => Ok((
                format!("{base}{PATH}"),
                token
                    .iter()
                    .map(|t| (REPLICATION_HEADER, t.clone()))
                    .collect(),
            )),
            Source::Dir(dir) => match ServeInfo::read(dir).map_err(|e| e.to_string())? {
                Some(info) => Ok((
                    format!("{}{PATH}", info.url),
                    vec![(OPERATOR_HEADER, info.token), (AS_HEADER, "miit".into())],
                )),
                None => Err(format!(
                    "{}: no beian serve runs there (no serve.json)",
                    dir.display()
                )),
            },
        }
    }

    /// One page of the feed after `after`.
    pub async fn fetch(&self, after: Option<u64>) -> Result<FeedPage, FollowError> {
        let (url, headers) = self.endpoint().map_err(FollowError::Fetch)?;
        let mut query = vec![("limit", PAGE.to_string())];
        if let Some(a) = after {
            query.push(("after", a.to_string()));
        }
        let mut req = self.http.get(&url).query(&query);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let fail = |e: String| FollowError::Fetch(format!("{url}: {e}"));
        let mut resp = req.send().await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| fail(e.to_string()))? {
            if body.len() + chunk.len() > MAX_PAGE_BYTES {
                return Err(fail(format!("a page over {MAX_PAGE_BYTES} bytes")));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            return Err(fail(format!("{status}: {text}")));
        }
        serde_json::from_slice(&body).map_err(|e| fail(format!("not a change feed page: {e}")))
    }

    /// Fetch one page after the replica's head and apply it. Returns whether the primary
    /// holds more.
    pub async fn step(&self) -> Result<bool, FollowError> {
        let reg = self.registry.clone();
        let head = crate::api::blocking(move || {
            use crate::registry::store::RegistryScan;
            Ok(reg.store().audit_head()?.map(|(s, _)| s))
        })
        .await
        .map_err(|e| FollowError::Fetch(format!("reading the replica's head: {e:?}")))?;
        let page = self.fetch(head).await?;
        let primary = page.head;
        let reg = self.registry.clone();
        let changes = page.changes;
        let applied: Applied = tokio::task::spawn_blocking(move || reg.apply_changes(&changes))
            .await
            .map_err(|e| FollowError::Fetch(format!("apply task: {e}")))??;
        if !applied.digest_mismatches.is_empty() {
            tracing::warn!(entities = ?applied.digest_mismatches, "replicated records rebuilt to other bytes than the primary's (older record format there)");
            self.metrics
                .replica_digest_mismatches
                .inc_by(applied.digest_mismatches.len() as u64);
        }
        if applied.keyring_changed {
            tracing::info!("the replica's keyring changed");
        }
        let applied_seq = applied.head.map(|s| s as i64).unwrap_or(-1);
        let primary_seq = primary.map(|s| s as i64).unwrap_or(-1);
        let behind = (primary_seq - applied_seq).max(0);
        let m = &self.metrics;
        m.replica_applied.set(applied_seq);
        m.replica_primary.set(primary_seq);
        m.replica_lag_records.set(behind);
        let lag_s = match (behind, applied.last_at) {
            (0, _) => 0.0,
            (_, Some(at)) => (crate::api::unix_now() - at).max(0) as f64,
            (_, None) => m.replica_lag_seconds.get(),
        };
        m.replica_lag_seconds.set(lag_s);
        if applied.records > 0 {
            tracing::debug!(records = applied.records, head = applied_seq, "applied");
        }
        Ok(behind > 0)
    }

    /// Follow until `stop` turns true: page after page while behind, then a poll every
    /// [`POLL`]; failures back off up to [`MAX_BACKOFF`] and are counted by kind.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut pause = POLL;
        loop {
            if *stop.borrow() {
                return;
            }
            match self.step().await {
                Ok(true) => {
                    pause = POLL;
                    continue;
                }
                Ok(false) => pause = POLL,
                Err(e) => {
                    let kind = match &e {
                        FollowError::Fetch(_) => "fetch",
                        FollowError::Apply(RegistryError::Store(
                            crate::registry::store::StoreError::Diverged { .. },
                        )) => "diverged",
                        FollowError::Apply(_) => "apply",
                    };
                    self.metrics.replica_errors.with_label_values(&[kind]).inc();
                    tracing::warn!(error = %e, "replication step failed");
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_urls_or_directories() {
        assert_eq!(
            Source::parse("https://reg.example/ ", Some("t".into())),
            Source::Url {
                base: "https://reg.example".into(),
                token: Some("t".into())
            }
        );
        assert_eq!(
            Source::parse("/srv/beian", None),
            Source::Dir(PathBuf::from("/srv/beian"))
        );
        let dbg = format!("{:?}", Source::parse("http://x", Some("secret".into())));
        assert!(!dbg.contains("secret"), "{dbg}");
        assert_eq!(
            Source::parse("http://x", Some("s".into())).describe(),
            "http://x"
        );
    }
}
