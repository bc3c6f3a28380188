//! Command-line interface: argument definitions and dispatch, one module per subcommand.
//! Orchestration only; the work happens in the library.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

mod audit;
mod beside;
mod cert;
mod check;
mod common;
mod demo;
mod extract;
mod filing;
mod ipfiling;
mod keys;
mod outbox;
mod registry;
mod review;
mod scan;
mod serve;
mod snapshot;
mod template;
mod user;

/// beian — ICP filing (备案) registry and compliance scanner.
#[derive(Parser, Debug)]
#[command(name = "beian", version, about, long_about = None)]
pub struct Cli {
    /// Registry directory (created by `beian registry init DIR`).
    #[arg(long, global = true, env = "BEIAN_REGISTRY", value_name = "DIR")]
    pub registry: Option<PathBuf>,
    /// Act as ROLE: `miit`, `bureau:<province>` (e.g. `bureau:京`), `isp:<provider>`,
    /// `icp:<username>`, `pre-approval`, `special-content`, `special-query`,
    /// `ip-reporter:<name>`, `domain-reporter:<name>`. Defaults per command: import → the
    /// import-authorised ISP named first in each line's providers; verify-access →
    /// isp:<--provider>; review → the bureau of each filing's province; change/cancel → the
    /// filing's ICP user; withdraw → the bureau (MIIT for a bureau's request); revoke and
    /// keys rotate → miit.
    #[arg(long = "as", global = true, value_name = "ROLE")]
    pub act_as: Option<beian::accounts::Actor>,
    /// Configuration file (strict TOML; default: DIR/beian.toml when it exists).
    #[arg(long, global = true, env = "BEIAN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The registry's PostgreSQL database, `postgres://USER:PASSWORD@HOST:PORT/DB` (default:
    /// DIR/database.url, written by `registry init --postgres`; else sled in DIR/store).
    #[arg(
        long = "database",
        global = true,
        env = "BEIAN_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the whole job on a built-in sample: registry, loopback fleet, scan, report.
    Demo(demo::DemoArgs),
    /// Scan sites against the registry and report findings (`scan diff A B`, `scan list`).
    Scan(scan::ScanArgs),
    /// A filer's self-check of one site, with what to fix (in Chinese and English).
    Check(check::CheckArgs),
    /// Print the numbers and links a reader sees on HTML files (one JSON object per file).
    Extract(extract::ExtractArgs),
    /// Create a registry.
    #[command(subcommand)]
    Registry(registry::RegistryCmd),
    /// Filings: import, verify access, show, change, cancel, withdraw, revoke.
    #[command(subcommand)]
    Filing(filing::FilingCmd),
    /// IP filings: address blocks reported by access providers (add, import, list).
    #[command(subcommand)]
    IpFiling(ipfiling::IpFilingCmd),
    /// Write an upload template (.xlsx) for website filings or IP filings: Chinese headers,
    /// drop-down lists from the code tables, and instructions.
    Template(template::TemplateArgs),
    /// Bureau review: --auto, --approve ID [--number N], --reject ID --reason TEXT, --list.
    Review(review::ReviewArgs),
    /// Certificates: export, inspect, verify.
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// Signing keys: rotate, export the public keyring.
    #[command(subcommand)]
    Keys(keys::KeysCmd),
    /// The scanners' read-only registry snapshot.
    #[command(subcommand)]
    Snapshot(snapshot::SnapshotCmd),
    /// The hash-chained audit log.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Serve the HTTP API and `/metrics` (on its own address) until SIGTERM or ctrl-c.
    Serve(serve::ServeArgs),
    /// Messages (codes, reset tokens) kept in the registry's outbox.
    Outbox(outbox::OutboxArgs),
    /// Users: set a user's contact (where login codes go), on the registry directly.
    #[command(subcommand)]
    User(user::UserCmd),
}

/// Options shared by the registry commands.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    pub registry: Option<PathBuf>,
    pub act_as: Option<beian::accounts::Actor>,
    pub config: Option<PathBuf>,
    /// `--database` or `BEIAN_DATABASE_URL`.
    pub database_url: Option<String>,
}

impl Globals {
    /// Open the registry's store (to write; while `serve` holds it, one line saying so).
    pub fn open(&self) -> anyhow::Result<beian::registry::Registry> {
        beside::open_for_write(self)
    }
}

/// Output format of commands that print records.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// The current time, unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

pub fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.to_rfc3339())
        .unwrap_or_else(|| t.to_string())
}

/// Parse, run, and map the outcome to an exit code.
pub fn main() -> i32 {
    no_transparent_huge_pages();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_tracing();
    if !matches!(cli.command, Command::Serve(_)) {
        quiet_broken_pipe();
        one_line_panics();
    }
    let g = Globals {
        registry: cli.registry,
        act_as: cli.act_as,
        config: cli.config,
        database_url: cli.database_url,
    };
    let result = match cli.command {
        Command::Demo(a) => demo::run(a),
        Command::Scan(a) => scan::run(&g, a),
        Command::Check(a) => check::run(&g, a),
        Command::Extract(a) => extract::run(a),
        Command::Registry(c) => registry::run(c, &g),
        Command::Filing(c) => filing::run(c, &g),
        Command::IpFiling(c) => ipfiling::run(c, &g),
        Command::Template(a) => template::run(a),
        Command::Review(a) => review::run(a, &g),
        Command::Cert(c) => cert::run(c, &g),
        Command::Keys(c) => keys::run(c, &g),
        Command::Snapshot(c) => snapshot::run(c, &g),
        Command::Audit(c) => audit::run(c, &g),
        Command::Serve(a) => serve::run(&g, a),
        Command::Outbox(a) => outbox::run(&g, a),
        Command::User(c) => user::run(c, &g),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
            2
        }
    }
}

/// Let a closed stdout (`beian cert inspect FILE | head -1`) end the process quietly, as it
/// does for other command-line tools, instead of a panic in `println!`. Rust sets SIGPIPE to
/// "ignore" at startup; this restores the default action. Sockets are unaffected: the
/// standard library sends with `MSG_NOSIGNAL`. Not used for `serve`.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: `signal` with `SIG_DFL` only changes this process's disposition of SIGPIPE; it
    // is called once at startup, before any other thread that could race on it is spawned.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Keep the allocator on ordinary 4 KiB pages. mimalloc asks for transparent huge pages on
/// the regions it maps; a scan frees and reuses memory constantly, and each huge page
/// faulted back in is zeroed whole (2 MiB): that zeroing was a fifth of a fleet scan's CPU
/// (perf, `benches/fleet/run.sh`). Memory mapped before this call keeps its pages.
fn no_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` takes integer arguments only and sets a
    // flag of this process; it touches no memory of ours. Failure (an old kernel) is ignored.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// A panic in a one-shot command (a bug, or a storage engine failing on damaged files) ends
/// it with exit code 2 and one line that says what to do, not a backtrace.
/// Panics on other threads (a scan task, a page extraction) are caught and recorded where
/// they happen, so they keep the default report.
fn one_line_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some("main") {
            default(info);
            return;
        }
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal failure ({}{at}); if it names the storage engine, the registry store may be damaged: restore it from a backup",
            what.replace('\n', " ")
        );
        std::process::exit(2);
    }));
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BEIAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
