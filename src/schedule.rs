//! Scans run by `beian serve`: the `[schedule]` (which targets, how often, with what
//! concurrency and render mode) and scans regulators start through the API, run one at a time
//! by [`ScanService::run`], kept in the registry's scan history, and exported on serve's own
//! `/metrics` (progress, last completion, verdicts and confirmed findings by province and code,
//! new confirmed findings, the schedule and when the next scan is due).
//!
//! Jobs: every scan is a job (`job-N`), queued, then running, then completed, failed or
//! interrupted (serve stopped). A job's scan gets a history id when it starts. Confirmations and
//! "new findings" count from the last completed scan of the same scope (`filed`,
//! `province:京`, …), so a province's scan never resets the national streaks. The "last scan"
//! metrics follow the schedule's scope (or every filed domain when there is no schedule).

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde::Serialize;

use crate::config::{ScheduleConfig, ScheduleTargets};
use crate::crawl::Scanner;
use crate::metrics::Metrics;
use crate::registry::snapshot::Snapshot;
use crate::report::{ReportError, ScanHistory, ScanMeta};
use crate::scan::ScanContext;
use crate::verdict::PolicySet;

/// Finished jobs kept for status queries (the history keeps every scan).
pub const KEPT_JOBS: usize = 200;
/// Jobs waiting at once; beyond it a new request is refused.
pub const MAX_QUEUED_JOBS: usize = 32;
/// Targets a request may list.
pub const MAX_REQUEST_TARGETS: usize = 100_000;

/// Which targets a scan covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScanScope {
    /// Every domain of every filing in the registry.
    Filed,
    /// The domains of one province's filings.
    Province { province: char },
    /// Targets given in the request or `targets_list`.
    List { targets: Vec<String> },
    /// The lines of a file, read when the scan starts.
    File { path: PathBuf },
}

impl ScanScope {
    /// The scope key kept in the scan's history entry.
    pub fn key(&self) -> String {
        match self {
            ScanScope::Filed => "filed".into(),
            ScanScope::Province { province } => format!("province:{province}"),
            ScanScope::List { targets } => {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                for t in targets {
                    h.update(t.as_bytes());
                    h.update([0]);
                }
                format!("list:{}", &hex::encode(h.finalize())[..16])
            }
            ScanScope::File { path } => format!("file:{}", path.display()),
        }
    }

    fn from_schedule(t: ScheduleTargets) -> ScanScope {
        match t {
            ScheduleTargets::Filed => ScanScope::Filed,
            ScheduleTargets::File(path) => ScanScope::File { path },
            ScheduleTargets::List(targets) => ScanScope::List { targets },
        }
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Completed,
    Failed,
    /// `serve` stopped while it ran; its history entry stays unfinished.
    Interrupted,
}

/// One scan job, as the API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    pub id: String,
    /// `schedule`, or `api:<actor>`.
    pub origin: String,
    pub scope: ScanScope,
    pub state: JobState,
    pub requested_at: i64,
    pub started_at: Option<i64>,
    pub ended_at: Option<i64>,
    /// The history id of its scan, once started.
    pub scan_id: Option<String>,
    /// Targets to scan, once known.
    pub planned: Option<u64>,
    /// Targets finished so far.
    pub done: u64,
    pub error: Option<String>,
}

impl Job {
    /// The province a bureau must hold to see this job (`None`: national).
    pub fn province(&self) -> Option<char> {
        match self.scope {
            ScanScope::Province { province } => Some(province),
            _ => None,
        }
    }
}

/// Why a scan request was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("{queued} scans are already waiting; try again when one has finished")]
    QueueFull { queued: usize },
    #[error("no targets given")]
    NoTargets,
    #[error("at most {max} targets per request")]
    TooManyTargets { max: usize },
}

/// Reads the registry view a scan judges against (a fresh snapshot).
pub type SnapshotSource = Arc<dyn Fn() -> Result<Arc<Snapshot>, String> + Send + Sync + 'static>;

struct Jobs {
    next: u64,
    queue: VecDeque<u64>,
    all: BTreeMap<u64, Job>,
}

struct Inner {
    history: ScanHistory,
    metrics: Metrics,
    scanner: Arc<Scanner>,
    policies: Arc<PolicySet>,
    concurrency: usize,
    schedule: Option<(u64, ScanScope)>,
    /// Completed scheduled scans to keep (0: all).
    keep_scans: usize,
    /// The scope whose scans feed the "last scan" metrics.
    metrics_scope: String,
    jobs: Mutex<Jobs>,
    wake: tokio::sync::Notify,
    /// Targets done by the running job (read by status queries).
    progress: AtomicU64,
}

/// The scans of one `serve` process. Cheap to clone.
#[derive(Clone)]
pub struct ScanService {
    inner: Arc<Inner>,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl ScanService {
    /// Build the service (inside a tokio runtime: the scanner needs one). `scanner` is built
    /// from `[scan]` with the schedule's overrides ([`ScheduleConfig::scan_config`]).
    pub fn new(
        history: ScanHistory,
        metrics: Metrics,
        scanner: Arc<Scanner>,
        policies: Arc<PolicySet>,
        concurrency: usize,
        schedule: Option<&ScheduleConfig>,
    ) -> Result<ScanService, String> {
        let keep_scans = schedule.map(|s| s.keep_scans);
        let schedule = match schedule {
            Some(s) => Some((s.interval_s, ScanScope::from_schedule(s.target_source()?))),
            None => None,
        };
        let metrics_scope = schedule
            .as_ref()
            .map(|(_, scope)| scope.key())
            .unwrap_or_else(|| ScanScope::Filed.key());
        let service = ScanService {
            inner: Arc::new(Inner {
                history,
                metrics,
                scanner,
                policies,
                concurrency: concurrency.max(1),
                schedule,
                keep_scans: keep_scans.unwrap_or(0),
                metrics_scope,
                jobs: Mutex::new(Jobs {
                    next: 1,
                    queue: VecDeque::new(),
                    all: BTreeMap::new(),
                }),
                wake: tokio::sync::Notify::new(),
                progress: AtomicU64::new(0),
            }),
        };
        // After a restart, the last scan's metrics are exported again from the history.
        if let Ok(Some(meta)) = service
            .inner
            .history
            .last_completed_in(Some(&service.inner.metrics_scope))
        {
            crate::scan::publish_completed(&service.inner.metrics, &meta);
        }
        Ok(service)
    }

    pub fn history(&self) -> &ScanHistory {
        &self.inner.history
    }

    /// The schedule's interval, when there is one.
    pub fn interval_s(&self) -> Option<u64> {
        self.inner.schedule.as_ref().map(|(i, _)| *i)
    }

    fn jobs(&self) -> std::sync::MutexGuard<'_, Jobs> {
        self.inner.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queue a scan; it runs after those already waiting.
    pub fn request(&self, origin: String, scope: ScanScope) -> Result<Job, ScheduleError> {
        if let ScanScope::List { targets } = &scope {
            if targets.is_empty() {
                return Err(ScheduleError::NoTargets);
            }
            if targets.len() > MAX_REQUEST_TARGETS {
                return Err(ScheduleError::TooManyTargets {
                    max: MAX_REQUEST_TARGETS,
                });
            }
        }
        let job = {
            let mut jobs = self.jobs();
            if jobs.queue.len() >= MAX_QUEUED_JOBS {
                return Err(ScheduleError::QueueFull {
                    queued: jobs.queue.len(),
                });
            }
            let n = jobs.next;
            jobs.next += 1;
            let job = Job {
                id: format!("job-{n}"),
                origin,
                scope,
                state: JobState::Queued,
                requested_at: now(),
                started_at: None,
                ended_at: None,
                scan_id: None,
                planned: None,
                done: 0,
                error: None,
            };
            jobs.all.insert(n, job.clone());
            jobs.queue.push_back(n);
            job
        };
        self.inner.wake.notify_one();
        Ok(job)
    }

    /// Every job still known (newest first), with the running one's progress.
    pub fn list_jobs(&self) -> Vec<Job> {
        let done = self.inner.progress.load(Ordering::Relaxed);
        self.jobs()
            .all
            .values()
            .rev()
            .cloned()
            .map(|mut j| {
                if j.state == JobState::Running {
                    j.done = done;
                }
                j
            })
            .collect()
    }

    /// One job by id (`job-N`) or by its scan's history id.
    pub fn job(&self, id: &str) -> Option<Job> {
        self.list_jobs()
            .into_iter()
            .find(|j| j.id == id || j.scan_id.as_deref() == Some(id))
    }

    fn update(&self, n: u64, f: impl FnOnce(&mut Job)) {
        let mut jobs = self.jobs();
        if let Some(j) = jobs.all.get_mut(&n) {
            f(j);
        }
        // Keep the finished jobs bounded.
        while jobs.all.len() > KEPT_JOBS {
            let oldest_finished = jobs
                .all
                .iter()
                .find(|(_, j)| !matches!(j.state, JobState::Queued | JobState::Running))
                .map(|(k, _)| *k);
            match oldest_finished {
                Some(k) => {
                    jobs.all.remove(&k);
                }
                None => break,
            }
        }
    }

    /// When the next scheduled scan is due: one interval after the start of the last
    /// completed scheduled scan, or now when there is none.
    fn first_due(&self, interval: u64, scope: &ScanScope) -> i64 {
        match self.inner.history.last_completed_in(Some(&scope.key())) {
            Ok(Some(m)) if m.origin.as_deref() == Some("schedule") => {
                m.started_at.saturating_add(interval as i64)
            }
            Ok(_) => now(),
            Err(e) => {
                tracing::warn!(error = %e, "scan history unreadable; scheduling a scan now");
                now()
            }
        }
    }

    /// Run scans until `stop` turns true: queued jobs in order, and the schedule's scans when
    /// they are due. The running scan stops at shutdown (its history entry stays unfinished).
    pub async fn run(
        self,
        snapshots: SnapshotSource,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let schedule = self.inner.schedule.clone();
        let mut due = schedule
            .as_ref()
            .map(|(interval, scope)| self.first_due(*interval, scope));
        // The due time of the oldest scheduled scan not yet completed: what "overdue" is
        // measured from (a failed scan leaves it in place).
        let mut pending: Option<i64> = None;
        loop {
            if *stop.borrow() {
                return;
            }
            if let (Some((interval, scope)), Some(d)) = (&schedule, due) {
                if now() >= d {
                    let queued = self
                        .list_jobs()
                        .iter()
                        .any(|j| j.origin == "schedule" && j.state == JobState::Queued);
                    if !queued {
                        if let Ok(job) = self.request("schedule".into(), scope.clone()) {
                            // The schedule's scan goes first: it is what the alerts watch.
                            let n = job_number(&job.id);
                            let mut jobs = self.jobs();
                            jobs.queue.retain(|q| *q != n);
                            jobs.queue.push_front(n);
                        }
                    }
                    pending.get_or_insert(d);
                    // Fixed rate from the due time; a scan longer than the interval makes
                    // the next one start as soon as it ends.
                    let mut next = d.saturating_add(*interval as i64);
                    while next <= now() {
                        next = next.saturating_add(*interval as i64);
                    }
                    due = Some(next);
                }
                self.inner
                    .metrics
                    .set_schedule(*interval, pending.or(due).unwrap_or(d));
            }
            let next = self.jobs().queue.pop_front();
            if let Some(n) = next {
                if self.run_job(n, &snapshots, &stop).await {
                    pending = None;
                }
                continue;
            }
            let sleep = match due {
                Some(d) => std::time::Duration::from_secs((d - now()).clamp(0, 3600) as u64),
                None => std::time::Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(sleep) => {}
                _ = self.inner.wake.notified() => {}
                _ = stop.wait_for(|v| *v) => return,
            }
        }
    }

    /// Run one queued job; true when it was a scheduled scan that completed.
    async fn run_job(
        &self,
        n: u64,
        snapshots: &SnapshotSource,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        let Some(job) = self.jobs().all.get(&n).cloned() else {
            return false;
        };
        let trigger = if job.origin == "schedule" {
            "schedule"
        } else {
            "api"
        };
        let outcome = self.execute(n, &job, snapshots, stop).await;
        let ended = now();
        let outcome_label = match &outcome {
            Ok(true) => "completed",
            Ok(false) => "interrupted",
            Err(_) => "failed",
        };
        self.inner
            .metrics
            .scans
            .with_label_values(&[trigger, outcome_label])
            .inc();
        self.inner.metrics.scan_running.set(0);
        let done = self.inner.progress.load(Ordering::Relaxed);
        let scheduled_done = trigger == "schedule" && matches!(outcome, Ok(true));
        self.update(n, |j| {
            j.ended_at = Some(ended);
            j.done = done;
            match outcome {
                Ok(true) => j.state = JobState::Completed,
                Ok(false) => j.state = JobState::Interrupted,
                Err(e) => {
                    tracing::warn!(job = %j.id, error = %e, "scan failed");
                    j.state = JobState::Failed;
                    j.error = Some(e);
                }
            }
        });
        scheduled_done
    }

    /// Run one job's scan; `Ok(false)` when stopped before the end.
    async fn execute(
        &self,
        n: u64,
        job: &Job,
        snapshots: &SnapshotSource,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<bool, String> {
        let inner = &self.inner;
        let started = now();
        self.update(n, |j| {
            j.state = JobState::Running;
            j.started_at = Some(started);
        });
        inner.progress.store(0, Ordering::Relaxed);
        let snapshot = {
            let s = snapshots.clone();
            tokio::task::spawn_blocking(move || s())
                .await
                .map_err(|e| format!("registry snapshot: {e}"))??
        };
        let scope = job.scope.clone();
        let targets = {
            let snapshot = snapshot.clone();
            let scope = scope.clone();
            tokio::task::spawn_blocking(move || targets_of(&scope, &snapshot))
                .await
                .map_err(|e| format!("targets: {e}"))??
        };
        let planned = targets.len() as u64;
        self.update(n, |j| j.planned = Some(planned));
        let scope_key = scope.key();
        let history = inner.history.clone();
        let origin = job.origin.clone();
        let policy_sha = inner.policies.national.sha256.clone();
        let key = scope_key.clone();
        let (prior, mut writer) = tokio::task::spawn_blocking(move || {
            let prior = history.prior_findings_in(Some(&key))?;
            let mut writer = history.start(started, &policy_sha)?;
            writer.describe(origin, Some(key))?;
            Ok::<_, ReportError>((prior, writer))
        })
        .await
        .map_err(|e| format!("history: {e}"))?
        .map_err(|e| e.to_string())?;
        let scan_id = writer.id().to_string();
        self.update(n, |j| j.scan_id = Some(scan_id.clone()));

        let m = &inner.metrics;
        m.scan_running.set(1);
        m.scan_planned.set(planned as i64);
        m.scan_done.set(0);
        let ctx = ScanContext {
            scanner: inner.scanner.clone(),
            snapshot,
            policies: inner.policies.clone(),
            prior: Some(Arc::new(prior)),
        };
        let mut stream = Box::pin(ctx.run(futures::stream::iter(targets), inner.concurrency));
        let mut stop = stop.clone();
        loop {
            let next = tokio::select! {
                r = stream.next() => r,
                _ = stop.wait_for(|v| *v) => return Ok(false),
            };
            let Some(result) = next else { break };
            crate::scan::record_metrics(m, &result);
            writer.write(&result.record).map_err(|e| e.to_string())?;
            inner.progress.fetch_add(1, Ordering::Relaxed);
        }
        let history = inner.history.clone();
        let meta: ScanMeta = tokio::task::spawn_blocking(move || history.seal(writer, now()))
            .await
            .map_err(|e| format!("history: {e}"))?
            .map_err(|e| e.to_string())?;
        if scope_key == inner.metrics_scope {
            crate::scan::publish_completed(m, &meta);
        }
        if job.origin == "schedule" && inner.keep_scans > 0 {
            let history = inner.history.clone();
            let keep = inner.keep_scans;
            let key = scope_key.clone();
            match tokio::task::spawn_blocking(move || history.prune(&key, keep)).await {
                Ok(Ok(removed)) if !removed.is_empty() => {
                    tracing::info!(removed = removed.len(), "old scans removed (keep_scans)")
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "could not remove old scans"),
                _ => {}
            }
        }
        tracing::info!(scan = %meta.id, targets = meta.targets, "scan completed");
        Ok(true)
    }
}

fn job_number(id: &str) -> u64 {
    id.strip_prefix("job-")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The targets of a scope, each once, in order.
pub fn targets_of(scope: &ScanScope, snapshot: &Snapshot) -> Result<Vec<String>, String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut push = |t: &str| {
        let t = t.trim();
        if !t.is_empty() && !t.starts_with('#') && seen.insert(t.to_string()) {
            out.push(t.to_string());
        }
    };
    match scope {
        ScanScope::Filed => {
            for f in &snapshot.filings {
                f.domains.iter().for_each(|d| push(d));
            }
        }
        ScanScope::Province { province } => {
            for f in snapshot.filings.iter().filter(|f| f.province == *province) {
                f.domains.iter().for_each(|d| push(d));
            }
        }
        ScanScope::List { targets } => targets.iter().for_each(|t| push(t)),
        ScanScope::File { path } => {
            let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let lines = crate::fsutil::BoundedLines::new(
                std::io::BufReader::new(file),
                crate::fsutil::MAX_TARGET_LINE,
            );
            for line in lines {
                let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
                push(&line);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_keys_are_stable_and_distinct() {
        assert_eq!(ScanScope::Filed.key(), "filed");
        assert_eq!(ScanScope::Province { province: '京' }.key(), "province:京");
        let a = ScanScope::List {
            targets: vec!["a.cn".into(), "b.cn".into()],
        };
        let b = ScanScope::List {
            targets: vec!["ab.cn".into()],
        };
        assert_ne!(a.key(), b.key());
        assert_eq!(a.key(), a.clone().key());
    }

    #[test]
    fn job_numbers_parse() {
        assert_eq!(job_number("job-12"), 12);
        assert_eq!(job_number("x"), 0);
    }
}
