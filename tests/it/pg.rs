//! The registry's backends for the parameterised suite: [`both!`] runs one test body on sled
//! and on PostgreSQL (`<test>::sled`, `<test>::postgres`).
//!
//! PostgreSQL: the server named by `BEIAN_TEST_DATABASE_URL` (`.ci/run` may start one), or
//! else a throwaway cluster this test process starts itself on first use — `initdb` and
//! `pg_ctl` from `/usr/lib/postgresql/*/bin` (or `BEIAN_PG_BIN`), as the `postgres` user when
//! run as root, in a temporary directory, on 127.0.0.1 and a free port. Every test gets a
//! fresh database. The cluster is stopped when the test process exits (an `atexit` hook) and,
//! should the process be killed, by a watchdog that waits for its pid to disappear; the
//! directory is removed with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use beian::registry::{Backend, InitReport, Registry, RegistryError};

/// Where a test's registry keeps its store.
pub enum TestBackend {
    Sled,
    Postgres { url: String },
}

impl TestBackend {
    /// A fresh database on the test cluster.
    pub fn postgres() -> TestBackend {
        TestBackend::Postgres {
            url: fresh_database(),
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            TestBackend::Sled => Backend::Sled,
            TestBackend::Postgres { url } => Backend::Postgres { url: url.clone() },
        }
    }

    /// `registry init` in `dir` on this backend.
    pub fn init(&self, dir: &Path, now: i64) -> Result<(Registry, InitReport), RegistryError> {
        Registry::init_on(dir, &self.backend(), now)
    }

    /// The extra arguments of `beian registry init` for this backend.
    pub fn init_args(&self) -> Vec<String> {
        match self {
            TestBackend::Sled => Vec::new(),
            TestBackend::Postgres { url } => vec!["--postgres".into(), url.clone()],
        }
    }
}

/// Run a test body on both backends: `both! { fn name(tb) { … } }` makes `name::sled` and
/// `name::postgres`, each calling the body with its [`TestBackend`].
#[macro_export]
macro_rules! both {
    ($(#[$m:meta])* fn $name:ident($tb:ident) $body:block) => {
        $(#[$m])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn body($tb: $crate::pg::TestBackend) $body
            #[test]
            fn sled() {
                body($crate::pg::TestBackend::Sled)
            }
            #[test]
            fn postgres() {
                body($crate::pg::TestBackend::postgres())
            }
        }
    };
}

struct Cluster {
    /// The server's URL without a database (`postgres://postgres@127.0.0.1:PORT`), or the
    /// given one.
    base: url::Url,
    bin: PathBuf,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
/// (pg_ctl, data directory, run as `postgres`) of the cluster this process started.
static STARTED: OnceLock<(PathBuf, PathBuf, bool)> = OnceLock::new();

fn bin_dir() -> Result<PathBuf, String> {
    if let Ok(d) = std::env::var("BEIAN_PG_BIN") {
        return Ok(PathBuf::from(d));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|e| format!("/usr/lib/postgresql: {e} (install Debian's postgresql)"))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    found.sort();
    found
        .pop()
        .map(|(_, b)| b)
        .ok_or_else(|| "no /usr/lib/postgresql/*/bin/initdb (install postgresql)".into())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args…`, as the `postgres` user when `as_postgres`.
fn command(program: &Path, as_postgres: bool) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn check(what: &str, c: &mut Command) -> Result<(), String> {
    let o = c
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ))
    }
}

extern "C" fn stop_cluster() {
    if let Some((pg_ctl, data, as_postgres)) = STARTED.get() {
        let _ = command(pg_ctl, *as_postgres)
            .arg("-D")
            .arg(data)
            .args(["-m", "immediate", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn start() -> Result<Cluster, String> {
    let bin = bin_dir()?;
    if let Ok(u) = std::env::var("BEIAN_TEST_DATABASE_URL") {
        let base = url::Url::parse(&u).map_err(|e| format!("BEIAN_TEST_DATABASE_URL: {e}"))?;
        return Ok(Cluster { base, bin });
    }
    let as_postgres = is_root();
    let dir = tempfile::Builder::new()
        .prefix("beian-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    if as_postgres {
        check("chown", Command::new("chown").arg("postgres:").arg(&dir))?;
    }
    check(
        "initdb",
        command(&bin.join("initdb"), as_postgres)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ]),
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let pg_ctl = bin.join("pg_ctl");
    let _ = STARTED.set((pg_ctl.clone(), data.clone(), as_postgres));
    // SAFETY: registering a plain extern "C" function with no captured state.
    unsafe {
        libc::atexit(stop_cluster);
    }
    // A watchdog: when this process is gone (even killed), stop the cluster and remove it.
    let stop = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {runuser}'{pg_ctl}' -D '{data}' -m immediate stop; rm -rf '{dir}'",
        pid = std::process::id(),
        runuser = if as_postgres { "runuser -u postgres -- " } else { "" },
        pg_ctl = pg_ctl.display(),
        data = data.display(),
        dir = dir.display(),
    );
    Command::new("setsid")
        .args(["sh", "-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("watchdog: {e}"))?;
    check(
        "pg_ctl start",
        command(&pg_ctl, as_postgres)
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("server.log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -c listen_addresses=127.0.0.1 -k '{}' -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                dir.display()
            ))
            .args(["-w", "start"]),
    )?;
    let base = url::Url::parse(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .map_err(|e| e.to_string())?;
    Ok(Cluster { base, bin })
}

fn cluster() -> &'static Cluster {
    match CLUSTER.get_or_init(start) {
        Ok(c) => c,
        Err(e) => panic!("PostgreSQL for the tests: {e}"),
    }
}

/// Create a new, empty database on the test server; its URL.
pub fn fresh_database() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let c = cluster();
    let name = format!(
        "beian_t{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    );
    check(
        "create database",
        Command::new(c.bin.join("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(c.base.as_str())
            .arg("-c")
            .arg(format!("CREATE DATABASE {name}")),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut u = c.base.clone();
    u.set_path(&format!("/{name}"));
    u.to_string()
}
