//! `beian scan`: stream targets through the scanner, write one record per target (JSON Lines,
//! CSV or a Markdown summary), confirm findings against the last completed scan, keep the scan
//! in history (a resumed scan's entry holds every target), `beian scan diff A B`, `scan list`,
//! sharded scans (`--shard I/N` writes the records and a manifest) and `scan merge`, which joins
//! the shards into one scan as if one process had scanned.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, IsTerminal, Seek, SeekFrom, Write};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use futures::StreamExt;

use beian::crawl::config::RenderMode;
use beian::crawl::ScanConfig;
use beian::metrics::Metrics;
use beian::report::{CsvWriter, JsonlWriter, ScanHistory, Summary};
use beian::scan::{record_metrics, ScanContext};

use super::common::{self, Global};

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ScanArgs {
    #[command(subcommand)]
    pub action: Option<ScanAction>,
    #[command(flatten)]
    pub run: ScanRunArgs,
}

#[derive(clap::Subcommand, Debug)]
pub enum ScanAction {
    /// Show what changed between two scans (scan ids from the registry's history, or JSONL files).
    Diff {
        /// Older scan: an id (see `beian scan list`) or a JSON Lines file.
        a: String,
        /// Newer scan: an id or a JSON Lines file.
        b: String,
    },
    /// List the scans kept in the registry's history.
    List,
    /// Join the outputs of a sharded scan (`--shard I/N --out FILE`, each with its
    /// FILE.shard.json) into one scan: confirmations against the registry's history, the
    /// history entry, diff and metrics as if one process had scanned. Refuses missing or
    /// duplicate shards, unfinished ones, and shards of different snapshots, policies or
    /// target lists.
    Merge(Box<MergeArgs>),
}

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The shards' records files (JSON Lines), one per shard.
    #[arg(required = true)]
    pub shards: Vec<PathBuf>,
    /// Write the merged records here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the final metrics here for node_exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics_textfile: Option<PathBuf>,
    /// Do not keep the merged scan in the registry's history.
    #[arg(long)]
    pub no_history: bool,
}

/// Output formats of `beian scan`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
    Md,
    // One self-contained HTML report: charts and a filterable table of every site.
    Html,
}

#[derive(clap::Args, Debug)]
pub struct ScanRunArgs {
    /// Targets: domains (`example.com`) or URLs (`https://example.com/`).
    pub targets: Vec<String>,
    /// Read targets from a file, one per line (`-` for standard input); `#` starts a comment.
    #[arg(long = "targets", value_name = "FILE")]
    pub targets_file: Option<PathBuf>,
    /// Scan every domain of every filing in the registry (or snapshot).
    #[arg(long)]
    pub from_registry: bool,
    /// Use a snapshot file (from `beian snapshot export`) instead of `--registry`.
    #[arg(long, value_name = "FILE", env = "BEIAN_SNAPSHOT")]
    pub snapshot: Option<PathBuf>,
    /// Verify the snapshot against this public keyring (from `beian keys export`).
    #[arg(long, value_name = "FILE", env = "BEIAN_KEYRING")]
    pub keyring: Option<PathBuf>,
    /// Write records here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Output format (`html`: one self-contained report with charts and a filterable table;
    /// up to 200,000 sites, about 8 MB per 100,000).
    #[arg(long, value_enum, default_value = "jsonl")]
    pub format: Format,
    /// Targets scanned at once.
    #[arg(long, env = "BEIAN_CONCURRENCY")]
    pub concurrency: Option<usize>,
    /// Overall request rate limit, per second.
    #[arg(long, env = "BEIAN_RATE")]
    pub rate: Option<NonZeroU32>,
    /// Requests per second to one host (0: unlimited).
    #[arg(long, env = "BEIAN_HOST_RATE")]
    pub host_rate: Option<u32>,
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Continue an interrupted scan: skip targets already in --out (JSON Lines) and append.
    #[arg(long)]
    pub resume: bool,
    /// Read policies from DIR (`national.toml`, `provinces/<abbr>.toml`) instead of the built-in ones.
    #[arg(long, value_name = "DIR", env = "BEIAN_POLICY_DIR")]
    pub policy_dir: Option<PathBuf>,
    /// Write the final metrics here for node_exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics_textfile: Option<PathBuf>,
    /// Do not keep this scan in the registry's history.
    #[arg(long)]
    pub no_history: bool,
    /// Scan only shard I of N (0-based): the targets whose stable hash falls in it. Needs
    /// --out; writes OUT.shard.json for `beian scan merge`. In a Kubernetes Indexed Job,
    /// JOB_COMPLETION_INDEX with BEIAN_SHARD_COUNT gives the same.
    #[arg(long, value_name = "I/N", env = "BEIAN_SHARD")]
    pub shard: Option<String>,
    /// Never show a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

impl ScanRunArgs {
    /// Apply flags (and their environment variables) over the configuration file's values.
    pub fn apply(&self, config: &mut ScanConfig) -> anyhow::Result<()> {
        if let Some(c) = self.concurrency {
            config.concurrency = c;
        }
        if let Some(r) = self.rate {
            config.rate = Some(r);
        }
        if let Some(r) = self.host_rate {
            config.host_rate = NonZeroU32::new(r);
        }
        self.network.apply(config)
    }
}

/// How targets are reached: DNS, overrides, the address guard's lab exceptions and lab ports.
/// Shared by `scan` and `check`.
#[derive(clap::Args, Debug)]
pub struct NetworkArgs {
    /// DNS server to use, `ADDR:PORT` (default: the system's).
    #[arg(long, value_name = "ADDR:PORT", env = "BEIAN_DNS")]
    pub dns: Option<SocketAddr>,
    /// Resolve HOST to IP without DNS (repeatable), like curl's --resolve.
    #[arg(long, value_name = "HOST:IP")]
    pub resolve: Vec<String>,
    /// Allow private and other special-purpose addresses (labs only; recorded in the output).
    #[arg(long)]
    pub allow_private: bool,
    /// Allow one network despite the address guard (repeatable), e.g. `127.0.0.2/32`.
    #[arg(long, value_name = "CIDR")]
    pub allow_net: Vec<ipnet::IpNet>,
    /// Port for http:// when a target is a bare domain (labs).
    #[arg(long, value_name = "PORT")]
    pub http_port: Option<u16>,
    /// Port for https:// when a target is a bare domain (labs).
    #[arg(long, value_name = "PORT")]
    pub https_port: Option<u16>,
    /// Render homepages whose footer only JavaScript writes in headless Chromium (`auto`), or
    /// never (`off`, the default).
    #[arg(long, value_name = "off|auto", env = "BEIAN_RENDER")]
    pub render: Option<RenderMode>,
}

impl NetworkArgs {
    /// Apply these flags (and their environment variables) over the configuration.
    pub fn apply(&self, config: &mut ScanConfig) -> anyhow::Result<()> {
        if let Some(d) = self.dns {
            config.dns = Some(d);
        }
        for r in &self.resolve {
            let (host, ip) = parse_resolve(r)?;
            config.overrides.entry(host).or_default().push(ip);
        }
        config.allow_private |= self.allow_private;
        config.allow_nets.extend(self.allow_net.iter().copied());
        if let Some(p) = self.http_port {
            config.http_port = p;
        }
        if let Some(p) = self.https_port {
            config.https_port = p;
        }
        if let Some(mode) = self.render {
            config.render = mode;
        }
        Ok(())
    }
}

/// Parse `HOST:IP` (IPv6 addresses may be bracketed: `host:[::1]`).
pub fn parse_resolve(s: &str) -> anyhow::Result<(String, IpAddr)> {
    let (host, ip) = s
        .split_once(':')
        .with_context(|| format!("--resolve {s:?}: expected HOST:IP"))?;
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = ip
        .parse()
        .with_context(|| format!("--resolve {s:?}: {ip:?} is not an IP address"))?;
    let host = beian::domain::normalise_host(host)
        .with_context(|| format!("--resolve {s:?}: bad host"))?;
    Ok((host, ip))
}

pub fn run(global: &Global, args: ScanArgs) -> anyhow::Result<i32> {
    match args.action {
        Some(ScanAction::Diff { a, b }) => diff(global, &a, &b),
        Some(ScanAction::List) => list(global),
        Some(ScanAction::Merge(args)) => merge(global, *args),
        None => {
            let rt = common::runtime()?;
            rt.block_on(scan(global, args.run))
        }
    }
}

fn history(global: &Global) -> anyhow::Result<ScanHistory> {
    let dir = global
        .registry
        .as_ref()
        .context("scan history lives in a registry: pass --registry DIR (or BEIAN_REGISTRY)")?;
    Ok(ScanHistory::open(dir.join(beian::api::SCAN_HISTORY_DIR))?)
}

fn diff(global: &Global, a: &str, b: &str) -> anyhow::Result<i32> {
    let d = if Path::new(a).is_file() && Path::new(b).is_file() {
        beian::report::diff(Path::new(a), Path::new(b))?
    } else {
        history(global)?.diff(a, b)?
    };
    print!("{}", d.render_text());
    Ok(if d.is_empty() { 0 } else { 1 })
}

fn list(global: &Global) -> anyhow::Result<i32> {
    for m in history(global)?.list()? {
        println!(
            "{}\t{} targets\tpolicy {}",
            m.id,
            m.targets,
            &m.policy_sha256[..m.policy_sha256.len().min(12)]
        );
    }
    Ok(0)
}

/// Targets already written to a JSON Lines output (for --resume). A torn last line (the
/// process was killed mid-write) is cut off so appending continues cleanly. Each kept record
/// is also copied into `history` (the resumed scan's history entry is the whole scan).
fn finished_targets(
    path: &Path,
    mut history: Option<&mut beian::report::ScanWriter>,
) -> anyhow::Result<HashSet<String>> {
    let mut done = HashSet::new();
    let mut f = match OpenOptions::new().read(true).write(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(done),
        Err(e) => return Err(e).with_context(|| format!("{}", path.display())),
    };
    let mut good_len = 0u64;
    {
        let mut reader = BufReader::new(&mut f);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 || line.last() != Some(&b'\n') {
                break;
            }
            match serde_json::from_slice::<beian::report::ScanRecord>(&line) {
                Ok(record) => {
                    if let Some(h) = history.as_deref_mut() {
                        h.write(&record)?;
                    }
                    done.insert(record.target);
                    good_len += n as u64;
                }
                Err(_) => break,
            }
        }
    }
    f.set_len(good_len)?;
    f.seek(SeekFrom::End(0))?;
    Ok(done)
}

enum Sink {
    Jsonl(JsonlWriter<Box<dyn Write + Send>>),
    Csv(Box<CsvWriter<Box<dyn Write + Send>>>),
    Md(Box<dyn Write + Send>),
    Html(Box<dyn Write + Send>, Box<beian::report::HtmlReport>),
}

async fn scan(global: &Global, args: ScanRunArgs) -> anyhow::Result<i32> {
    let started = super::now();
    let mut config = common::load_config(global)?.scan;
    args.apply(&mut config)?;
    config.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    let snapshot = Arc::new(common::load_snapshot(
        global,
        args.snapshot.as_deref(),
        args.keyring.as_deref(),
        started,
    )?);
    warn_if_old(&snapshot, config.snapshot_max_age_s, started);
    let policies = Arc::new(common::load_policies(args.policy_dir.as_deref())?);
    let national_sha = policies.national.sha256.clone();

    // Targets: arguments, then the file, then the registry.
    let mut targets: Vec<String> = args.targets.clone();
    if args.from_registry {
        for f in &snapshot.filings {
            targets.extend(f.domains.iter().cloned());
        }
    }
    let file_targets: Box<dyn Iterator<Item = String> + Send> = match &args.targets_file {
        None => Box::new(std::iter::empty()),
        Some(p) if p.as_os_str() == "-" => Box::new(target_lines(
            BufReader::new(std::io::stdin()),
            "<stdin>".into(),
        )),
        Some(p) => {
            let f = File::open(p).with_context(|| format!("{}", p.display()))?;
            Box::new(target_lines(BufReader::new(f), p.display().to_string()))
        }
    };
    let known_len = match &args.targets_file {
        None => Some(targets.len() as u64),
        Some(p) if p.as_os_str() != "-" => count_lines(p).ok().map(|n| n + targets.len() as u64),
        _ => None,
    };
    if targets.is_empty() && args.targets_file.is_none() {
        bail!("no targets: give domains or URLs, --targets FILE, or --from-registry");
    }

    let shard = shard_spec(args.shard.as_deref())?;
    if shard.is_some() {
        if args.out.is_none() || args.format != Format::Jsonl {
            bail!("--shard needs --out FILE (JSON Lines): the merge reads it with FILE.shard.json");
        }
        if args.resume {
            bail!("--shard and --resume do not go together: run the shard again");
        }
    }
    if args.resume {
        if args.out.is_none() {
            bail!("--resume needs --out FILE (JSON Lines) to continue");
        }
        if args.format != Format::Jsonl {
            bail!("--resume works with --format jsonl");
        }
    }
    // Confirmations count from the last completed scan in the registry's history (a shard
    // is confirmed when the shards are merged).
    let prior = match (&global.registry, shard) {
        (Some(_), None) => Some(Arc::new(history(global)?.prior_findings()?)),
        _ => None,
    };
    // A resumed scan keeps the interrupted scan's start time and history entry, rebuilt
    // from the records already written, so that its history holds every target.
    let mut history_writer = match (&global.registry, args.no_history || shard.is_some()) {
        (Some(_), false) => {
            let hist = history(global)?;
            if args.resume {
                Some(hist.resume(started, &national_sha)?)
            } else {
                Some(hist.start(started, &national_sha)?)
            }
        }
        _ => None,
    };
    let skip = match (&args.out, args.resume) {
        (Some(out), true) => finished_targets(out, history_writer.as_mut())?,
        _ => HashSet::new(),
    };
    let skipped = skip.len() as u64;
    // Every target before the shard filter feeds the target-list digest the merge compares.
    let list_digest = Arc::new(std::sync::Mutex::new(<sha2::Sha256 as sha2::Digest>::new()));
    let digest_in = list_digest.clone();
    let target_iter = targets
        .into_iter()
        .chain(file_targets)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty() && !t.starts_with('#'))
        .filter(move |t| !skip.contains(t))
        .filter(move |t| match shard {
            None => true,
            Some(sh) => {
                if let Ok(mut d) = digest_in.lock() {
                    sha2::Digest::update(&mut *d, t.as_bytes());
                    sha2::Digest::update(&mut *d, [b'\n']);
                }
                sh.contains(t)
            }
        });
    let manifest_path = args.out.as_ref().map(|o| shard_manifest_path(o));
    let mut manifest = match shard {
        Some(sh) => {
            let m = beian::shard::ShardManifest {
                format: beian::shard::SHARD_MANIFEST_FORMAT,
                shard: sh,
                snapshot_sha256: snapshot.digest()?,
                snapshot_generated_at: snapshot.generated_at,
                policy_sha256: national_sha.clone(),
                targets_sha256: String::new(),
                started_at: started,
                ended_at: None,
                targets: 0,
            };
            if let Some(p) = &manifest_path {
                write_manifest(p, &m)?;
            }
            Some(m)
        }
        None => None,
    };

    let out: Box<dyn Write + Send> = match &args.out {
        Some(p) => {
            let f = OpenOptions::new()
                .create(true)
                .write(true)
                .append(args.resume)
                .truncate(!args.resume)
                .open(p)
                .with_context(|| format!("{}", p.display()))?;
            Box::new(std::io::BufWriter::new(f))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let label = args
        .out
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<stdout>".into());
    let mut sink = match args.format {
        Format::Jsonl => Sink::Jsonl(JsonlWriter::new(out, label.clone())),
        Format::Csv => Sink::Csv(Box::new(CsvWriter::new(out, label.clone()))),
        Format::Md => Sink::Md(out),
        Format::Html => Sink::Html(out, Box::new(beian::report::HtmlReport::new())),
    };
    // The HTML report compares with the last completed scan of the registry's history.
    let previous = match (&global.registry, args.format) {
        (Some(_), Format::Html) => history(global)?
            .last_completed()?
            .map(|m| beian::report::verdict_counts(&m.summary)),
        _ => None,
    };

    let metrics = Metrics::new();
    metrics.scan_running.set(1);
    if let Some(n) = known_len {
        metrics.scan_planned.set(n.saturating_sub(skipped) as i64);
    }
    let progress = if !args.no_progress && std::io::stderr().is_terminal() {
        let pb = match known_len {
            Some(n) => indicatif::ProgressBar::new(n.saturating_sub(skipped)),
            None => indicatif::ProgressBar::new_spinner(),
        };
        pb.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} targets, {per_sec}, ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        Some(pb)
    } else {
        None
    };
    if config.allow_private || !config.allow_nets.is_empty() {
        eprintln!(
            "note: the address guard is relaxed (--allow-private / --allow-net): private and special-purpose addresses may be scanned"
        );
    }

    let mut ctx = ScanContext::new(config.clone(), snapshot, policies)?;
    if let Some(prior) = prior {
        ctx = ctx.with_prior(prior);
    }
    let mut summary = Summary::new();
    let mut stream = Box::pin(ctx.run(futures::stream::iter(target_iter), config.concurrency));
    let mut all_compliant = true;
    while let Some(result) = stream.next().await {
        record_metrics(&metrics, &result);
        if result.assessment.verdict != beian::verdict::Verdict::Compliant {
            all_compliant = false;
        }
        summary.add(&result.record);
        match &mut sink {
            Sink::Jsonl(w) => w.write(&result.record)?,
            Sink::Csv(w) => w.write(&result.record)?,
            Sink::Md(_) => {}
            Sink::Html(_, r) => r.add(&result.record),
        }
        if let Some(h) = history_writer.as_mut() {
            h.write(&result.record)?;
        }
        if let Some(pb) = &progress {
            pb.inc(1);
        }
    }
    if let Some(pb) = &progress {
        pb.finish_and_clear();
    }
    match sink {
        Sink::Jsonl(w) => w.into_inner().flush()?,
        Sink::Csv(w) => w.into_inner()?.flush()?,
        Sink::Md(mut out) => {
            out.write_all(summary.to_markdown("beian scan").as_bytes())?;
            out.flush()?;
        }
        Sink::Html(mut out, report) => {
            let html = report.render("beian scan", super::now(), previous.as_ref())?;
            out.write_all(html.as_bytes())?;
            out.flush()?;
        }
    }
    let ended = super::now();
    metrics.scan_running.set(0);
    if let (Some(m), Some(p)) = (manifest.as_mut(), &manifest_path) {
        m.ended_at = Some(ended);
        m.targets = summary.targets;
        m.targets_sha256 = list_digest
            .lock()
            .map(|d| hex::encode(sha2::Digest::finalize(d.clone())))
            .unwrap_or_default();
        write_manifest(p, m)?;
        eprintln!(
            "shard {} written: {} targets; merge all {} with `beian scan merge`",
            m.shard, m.targets, m.shard.count
        );
    }
    complete(
        global,
        history_writer,
        (started, ended),
        &national_sha,
        &summary,
        &metrics,
        args.metrics_textfile.as_deref(),
        "scan",
    )?;
    if args.format != Format::Md {
        eprint!("{}", summary.to_markdown("beian scan"));
    }
    Ok(if all_compliant { 0 } else { 1 })
}

/// Finish a scan: seal it in the history (recording the confirmed findings new since the
/// previous scan) when kept, export its last-scan metrics, and write the textfile if asked.
#[allow(clippy::too_many_arguments)]
fn complete(
    global: &Global,
    writer: Option<beian::report::ScanWriter>,
    (started, ended): (i64, i64),
    policy_sha256: &str,
    summary: &Summary,
    metrics: &Metrics,
    textfile: Option<&Path>,
    what: &str,
) -> anyhow::Result<()> {
    let meta = match writer {
        Some(w) => {
            let meta = history(global)?.seal(w, ended)?;
            eprintln!("{what} kept in history as {}", meta.id);
            meta
        }
        None => beian::report::ScanMeta::unkept(started, ended, policy_sha256, summary.clone()),
    };
    beian::scan::publish_completed(metrics, &meta);
    if let Some(p) = textfile {
        beian::fsutil::write_atomic(p, metrics.encode().as_bytes(), None)
            .with_context(|| format!("{}", p.display()))?;
    }
    Ok(())
}

/// The lines of a targets file, each bounded; a line too long ends the list with a warning
/// (the rest of the file is not read).
fn target_lines<R: BufRead + Send + 'static>(
    reader: R,
    label: String,
) -> impl Iterator<Item = String> + Send {
    beian::fsutil::BoundedLines::new(reader, beian::fsutil::MAX_TARGET_LINE).map_while(
        move |line| match line {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("warning: {label}: {e}; no further targets are read from it");
                None
            }
        },
    )
}

/// Say so when the registry view is older than the configured bound (records carry the age).
pub fn warn_if_old(snapshot: &beian::registry::snapshot::Snapshot, max_age_s: u64, now: i64) {
    let age = snapshot.age(now);
    if max_age_s > 0 && age as u64 > max_age_s {
        eprintln!(
            "warning: the registry snapshot is {age} s old (more than [scan] snapshot_max_age_s = {max_age_s}); filings changed since then are judged by their old state"
        );
    }
}

fn count_lines(p: &Path) -> std::io::Result<u64> {
    let f = File::open(p)?;
    let mut n = 0;
    for line in beian::fsutil::BoundedLines::new(BufReader::new(f), beian::fsutil::MAX_TARGET_LINE)
    {
        let line = line?;
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            n += 1;
        }
    }
    Ok(n)
}

/// The shard to scan: `--shard I/N` (or BEIAN_SHARD), else a Kubernetes Indexed Job's
/// `JOB_COMPLETION_INDEX` with `BEIAN_SHARD_COUNT`.
fn shard_spec(flag: Option<&str>) -> anyhow::Result<Option<beian::shard::Shard>> {
    if let Some(s) = flag {
        return Ok(Some(beian::shard::Shard::parse(s)?));
    }
    let index = std::env::var("JOB_COMPLETION_INDEX").ok();
    let count = std::env::var("BEIAN_SHARD_COUNT").ok();
    match (index, count) {
        (Some(i), Some(n)) => Ok(Some(beian::shard::Shard::parse(&format!("{i}/{n}"))?)),
        (None, Some(_)) => {
            bail!(
                "BEIAN_SHARD_COUNT is set but JOB_COMPLETION_INDEX is not (an Indexed Job sets it)"
            )
        }
        _ => Ok(None),
    }
}

/// `<records>.shard.json`.
fn shard_manifest_path(records: &Path) -> PathBuf {
    let mut name = records.as_os_str().to_owned();
    name.push(beian::shard::MANIFEST_SUFFIX);
    PathBuf::from(name)
}

fn write_manifest(path: &Path, m: &beian::shard::ShardManifest) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(m)?;
    beian::fsutil::write_atomic(path, &bytes, None).with_context(|| format!("{}", path.display()))
}

fn merge(global: &Global, args: MergeArgs) -> anyhow::Result<i32> {
    use beian::shard::{check_complete, ShardManifest};
    let mut manifests = Vec::new();
    for p in &args.shards {
        let mp = shard_manifest_path(p);
        let bytes = beian::fsutil::read_bounded(&mp, beian::fsutil::MAX_TEXT_FILE)
            .with_context(|| format!("{}: the shard's manifest", mp.display()))?;
        manifests.push((
            p.display().to_string(),
            ShardManifest::parse(&mp.display().to_string(), &bytes)?,
        ));
    }
    let shards = check_complete(manifests)?;
    let first = shards[0].1.clone();
    for (path, m) in &shards {
        if m.targets_sha256 != first.targets_sha256 {
            bail!(
                "{path}: the target list differs from {}'s: the shards were not made for one scan",
                shards[0].0
            );
        }
    }
    let started = shards.iter().map(|(_, m)| m.started_at).min().unwrap_or(0);
    let ended = shards
        .iter()
        .filter_map(|(_, m)| m.ended_at)
        .max()
        .unwrap_or(started);
    let use_history = global.registry.is_some() && !args.no_history;
    let prior = match &global.registry {
        Some(_) => Some(history(global)?.prior_findings()?),
        None => None,
    };
    let mut writer = if use_history {
        let mut w = history(global)?.start(started, &first.policy_sha256)?;
        w.describe(format!("merge of {} shards", first.shard.count), None)?;
        Some(w)
    } else {
        None
    };
    let out: Box<dyn Write + Send> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            File::create(p).with_context(|| format!("{}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let label = args
        .out
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<stdout>".into());
    let mut sink = JsonlWriter::new(out, label);
    let metrics = Metrics::new();
    let mut summary = Summary::new();
    let mut all_compliant = true;
    let mut seen_targets = HashSet::new();
    for (path, m) in &shards {
        let f = File::open(path).with_context(|| path.clone())?;
        let mut n = 0u64;
        for (i, line) in
            beian::fsutil::BoundedLines::new(BufReader::new(f), beian::report::MAX_RECORD_LINE)
                .enumerate()
        {
            let line = line.with_context(|| format!("{path}:{}", i + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            let mut record: beian::report::ScanRecord = serde_json::from_str(&line)
                .with_context(|| format!("{path}:{}: not a scan record", i + 1))?;
            if !m.shard.contains(&record.target) {
                bail!(
                    "{path}:{}: {} does not belong to shard {}",
                    i + 1,
                    record.target,
                    m.shard
                );
            }
            if !seen_targets.insert(record.target.clone()) {
                bail!("{path}:{}: {} is given twice", i + 1, record.target);
            }
            record.confirm_with(prior.as_ref().and_then(|p| p.get(&record.target)));
            let confirmed: Vec<(&str, &str)> = record
                .findings
                .iter()
                .filter(|f| f.is_confirmed())
                .map(|f| (f.code.as_str(), f.severity.as_str()))
                .collect();
            let province = record.province.as_deref().and_then(|p| p.chars().next());
            metrics.record_target(&record.verdict, &confirmed, province);
            if record.verdict != "compliant" {
                all_compliant = false;
            }
            summary.add(&record);
            sink.write(&record)?;
            if let Some(w) = writer.as_mut() {
                w.write(&record)?;
            }
            n += 1;
        }
        if n != m.targets {
            bail!(
                "{path}: {n} records, but its manifest says {}: the file is incomplete",
                m.targets
            );
        }
    }
    sink.into_inner().flush()?;
    complete(
        global,
        writer,
        (started, ended),
        &first.policy_sha256,
        &summary,
        &metrics,
        args.metrics_textfile.as_deref(),
        "merged scan",
    )?;
    eprint!("{}", summary.to_markdown("beian scan (merged)"));
    Ok(if all_compliant { 0 } else { 1 })
}
