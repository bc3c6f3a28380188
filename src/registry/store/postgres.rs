//! The PostgreSQL store — the only file that names PostgreSQL (tokio-postgres, deadpool-postgres).
//! Several processes (`beian serve` on several hosts, CLI commands beside them) share one
//! database and behave as one registry.
//!
//! Schema (embedded, versioned migrations in [`MIGRATIONS`], applied on open under an advisory
//! lock and recorded in `beian_schema`; a database of a newer schema is refused): records as
//! the versioned codec's bytes (`subjects`, `filings`, `users`, `ip_filings`, generic
//! `records` by kind and key) plus one table per lookup the traits offer — `subject_id_numbers`,
//! `subject_numbers`, `subject_name_grams` (the name index: every [`name_grams`] window →
//! subject), `filing_domains`, `service_numbers`, `filing_ips` — and `ip_filings.network`
//! (`cidr`, GiST-indexed: containment answers the overlap query). `audit_log` holds the hash
//! chain and `audit_head` its last link; `counters` the id sequences; `beian_meta` the record
//! format. Text keys are `COLLATE "C"`, so ordered scans and prefix ranges follow bytes, as
//! sled's keys do.
//!
//! Transactions: a [`PgTxn`] is one `SERIALIZABLE` transaction on one pooled connection. The
//! audit chain is a total order (each record hashes the previous one), so writers are
//! serialised: `begin` takes this process's writer mutex, then the database-wide advisory
//! lock [`WRITER_LOCK`] (session-level, taken *before* `BEGIN`, so the transaction's snapshot
//! sees every earlier commit), and `commit` / drop release it. Every read of a transaction
//! (the duplicate-domain rule's lookups included) therefore sees all committed writes of
//! every process, and the audit records are inserted and the head row updated in the same
//! transaction as the change. Should the database still refuse a commit (a serialization
//! failure, a deadlock, a unique violation — e.g. a writer that does not take the lock), the
//! error is [`StoreError::Conflict`]: nothing was written, and the API answers 409.
//!
//! The traits are synchronous; the client is asynchronous. Every call runs on one
//! process-wide tokio runtime owned by this module (two worker threads) and the calling
//! thread waits on a channel for the answer: this works from any thread — a plain thread, a
//! `spawn_blocking` thread, even a tokio worker (which it blocks, like any store call; the API
//! calls the registry through `spawn_blocking`). Statements are prepared once per connection
//! (deadpool's statement cache). Full scans read in key order, 1,000 rows a page.

use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use serde::Serialize;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Row};

use super::super::model::{IpFiling, IpFilingId};
use super::audit::{Appender, AuditRecord};
use super::codec::{self, Persisted};
use super::*;

/// The database-wide advisory lock every writer holds for the length of its transaction.
pub const WRITER_LOCK: i64 = 0x6265_6961_6e00_0001;
/// The advisory lock held while migrations are applied.
const MIGRATION_LOCK: i64 = 0x6265_6961_6e00_0002;
/// Connections per process.
const POOL_SIZE: usize = 16;
/// Rows per page of a full scan.
const PAGE: i64 = 1000;

/// The schema's migrations, in order: (version, SQL). Append only; never edit a released one.
pub const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    r#"
CREATE TABLE beian_meta (key text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE subjects (id bigint PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE subject_id_numbers (id_number text COLLATE "C" PRIMARY KEY, subject_id bigint NOT NULL);
CREATE TABLE subject_numbers (number text COLLATE "C" PRIMARY KEY, subject_id bigint NOT NULL);
CREATE TABLE subject_name_grams (gram text COLLATE "C" NOT NULL, subject_id bigint NOT NULL,
    PRIMARY KEY (gram, subject_id));
CREATE TABLE filings (id bigint PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE filing_domains (domain text COLLATE "C" PRIMARY KEY, filing_id bigint NOT NULL);
CREATE TABLE service_numbers (number text COLLATE "C" PRIMARY KEY, filing_id bigint NOT NULL);
CREATE TABLE filing_ips (ip text COLLATE "C" NOT NULL, filing_id bigint NOT NULL,
    PRIMARY KEY (ip, filing_id));
CREATE TABLE users (username text COLLATE "C" PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE ip_filings (id bigint PRIMARY KEY, network cidr NOT NULL, body bytea NOT NULL);
CREATE INDEX ip_filings_network ON ip_filings USING gist (network inet_ops);
CREATE TABLE records (kind text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL,
    value bytea NOT NULL, PRIMARY KEY (kind, key));
CREATE TABLE audit_log (seq bigint PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE audit_head (one boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq bigint NOT NULL, hash bytea NOT NULL);
CREATE TABLE counters (name text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
"#,
)];

/// The schema version this build writes (the last migration).
pub fn schema_version() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// An owned statement parameter (statements run on the module's runtime, so they own theirs).
type Param = Box<dyn ToSql + Send + Sync>;

macro_rules! params {
    ($($p:expr),* $(,)?) => { vec![$(Box::new($p) as Param),*] };
}

/// The module's runtime (see the module docs), created on first use and never dropped.
fn runtime() -> Result<&'static tokio::runtime::Runtime, StoreError> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("beian-postgres")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| StoreError::Io {
        context: "postgres runtime".into(),
        reason: e.clone(),
    })
}

/// Run `fut` on the module's runtime and wait for its answer, from any thread.
fn run<T: Send + 'static>(
    fut: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    let rt = runtime()?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv().map_err(|_| StoreError::Io {
        context: "postgres".into(),
        reason: "the database call ended without an answer".into(),
    })?
}

/// A database error, sorted: a refused concurrent write is a [`StoreError::Conflict`].
fn db_err(context: &'static str) -> impl Fn(tokio_postgres::Error) -> StoreError {
    move |e| {
        let conflict = [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::UNIQUE_VIOLATION,
        ];
        if e.code().is_some_and(|c| conflict.contains(c)) {
            return StoreError::Conflict {
                context: context.to_string(),
            };
        }
        let reason = match e.as_db_error() {
            Some(d) => format!("{} ({})", d.message(), d.code().code()),
            None => e.to_string(),
        };
        StoreError::Io {
            context: format!("postgres: {context}"),
            reason,
        }
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::Io {
        context: "postgres: connect".into(),
        reason: e.to_string(),
    }
}

/// `url` without its password, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) => "(PostgreSQL connection string)".into(),
    }
}

/// Run one statement (prepared once per connection) with owned parameters.
async fn query_on(
    client: &deadpool_postgres::ClientWrapper,
    sql: &'static str,
    params: &[Param],
) -> Result<Vec<Row>, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(db_err(sql))?;
    let refs: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    client.query(&stmt, &refs).await.map_err(db_err(sql))
}

fn sql_id(id: u64) -> i64 {
    id as i64
}

fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a Row,
    i: usize,
    what: &str,
) -> Result<T, StoreError> {
    row.try_get(i).map_err(|e| StoreError::Corrupt {
        key: what.to_string(),
        reason: e.to_string(),
    })
}

fn row_id(row: &Row, what: &str) -> Result<u64, StoreError> {
    get::<i64>(row, 0, what).map(|v| v as u64)
}

fn decode<T: Persisted>(key: &str, v: &[u8]) -> Result<T, StoreError> {
    codec::decode(v).map_err(|e| StoreError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

fn encode<T: Persisted>(v: &T) -> Result<Vec<u8>, StoreError> {
    codec::encode(v).map_err(|e| StoreError::Io {
        context: "encode".into(),
        reason: e.to_string(),
    })
}

/// A number as the number indexes hold it (the primary province form).
fn number_text(n: &FilingNumber) -> String {
    n.to_primary().to_string()
}

/// The first string after every string starting with `prefix` (its last character + 1).
fn prefix_end(prefix: &str) -> String {
    let mut s: Vec<char> = prefix.chars().collect();
    if let Some(last) = s.pop() {
        s.push(char::from_u32(last as u32 + 1).unwrap_or(char::MAX));
    }
    s.into_iter().collect()
}

/// Something statements run on: the pool (each statement on its own) or a transaction's
/// connection.
trait Query {
    fn query(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Row>, StoreError>;

    fn one_id(&self, sql: &'static str, params: Vec<Param>) -> Result<Option<u64>, StoreError> {
        match self.query(sql, params)?.first() {
            Some(r) => row_id(r, sql).map(Some),
            None => Ok(None),
        }
    }
    fn ids(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<u64>, StoreError> {
        self.query(sql, params)?
            .iter()
            .map(|r| row_id(r, sql))
            .collect()
    }
    fn body(&self, sql: &'static str, params: Vec<Param>) -> Result<Option<Vec<u8>>, StoreError> {
        match self.query(sql, params)?.first() {
            Some(r) => get::<Vec<u8>>(r, 0, sql).map(Some),
            None => Ok(None),
        }
    }
}

/// The PostgreSQL-backed registry store.
pub struct PgStore {
    pool: Pool,
    /// Held by this process's open transaction (the advisory lock is per connection; waiting
    /// here rather than on the lock keeps waiting writers from holding pooled connections).
    writer: Mutex<()>,
    url: String,
}

impl Query for PgStore {
    fn query(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Row>, StoreError> {
        let pool = self.pool.clone();
        run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            query_on(&c, sql, &params).await
        })
    }
}

impl PgStore {
    /// Connect to the database at `url` (`postgres://user:password@host:port/db`) and bring
    /// its schema to this build's version.
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: redacted(url),
            reason,
        };
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| open_err(format!("not a PostgreSQL URL: {e}")))?;
        config.connect_timeout(Duration::from_secs(10));
        config.application_name("beian");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| open_err(e.to_string()))?;
        let store = PgStore {
            pool,
            writer: Mutex::new(()),
            url: url.to_string(),
        };
        store.migrate().map_err(|e| match e {
            StoreError::Io { context, reason } => open_err(format!("{context}: {reason}")),
            e => e,
        })?;
        Ok(store)
    }

    /// The database's URL without its password.
    pub fn display_url(&self) -> String {
        redacted(&self.url)
    }

    /// Apply the missing migrations, each in its own transaction, under [`MIGRATION_LOCK`]
    /// (several processes may start at once); refuse a database of a newer schema or record
    /// format.
    fn migrate(&self) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        let path = redacted(&self.url);
        run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let lock = format!("SELECT pg_advisory_lock({MIGRATION_LOCK})");
            c.batch_execute(&lock)
                .await
                .map_err(db_err("migration lock"))?;
            let applied = apply_migrations(&c, &path).await;
            let unlock = format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})");
            let unlocked = c.batch_execute(&unlock).await;
            if applied.is_ok() && unlocked.is_err() {
                // Closing the connection releases the lock.
                drop(Object::take(c));
            }
            applied
        })
    }

    /// Whether the database already holds a registry (a user or an audit record).
    pub fn holds_registry(&self) -> Result<bool, StoreError> {
        let rows = self.query(
            "SELECT EXISTS (SELECT 1 FROM users) OR EXISTS (SELECT 1 FROM audit_log)",
            params![],
        )?;
        match rows.first() {
            Some(r) => get::<bool>(r, 0, "registry present"),
            None => Ok(false),
        }
    }

    /// Nothing to warm: lookups are index reads in the database. Returns 0.
    pub fn warm_lookups(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Raw access for tamper tests: set (`Some`) or remove (`None`) the stored bytes of a
    /// record named by its sled-style key (`s/`, `f/` + big-endian id, `u/` + username),
    /// without a transaction or the log.
    #[doc(hidden)]
    pub fn overwrite_record_for_tests(
        &self,
        key: &[u8],
        bytes: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let bad = || StoreError::Corrupt {
            key: String::from_utf8_lossy(key).into_owned(),
            reason: "not a subject, filing or user key".into(),
        };
        let id = || -> Result<i64, StoreError> {
            let b: [u8; 8] = key
                .get(2..)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(bad)?;
            Ok(i64::from_be_bytes(b))
        };
        let body = bytes.map(<[u8]>::to_vec);
        match (key.get(..2), body) {
            (Some(b"s/"), Some(v)) => self.query(
                "INSERT INTO subjects (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                params![id()?, v],
            ),
            (Some(b"s/"), None) => self.query("DELETE FROM subjects WHERE id = $1", params![id()?]),
            (Some(b"f/"), Some(v)) => self.query(
                "INSERT INTO filings (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
                params![id()?, v],
            ),
            (Some(b"f/"), None) => self.query("DELETE FROM filings WHERE id = $1", params![id()?]),
            (Some(b"u/"), Some(v)) => self.query(
                "INSERT INTO users (username, body) VALUES ($1, $2) ON CONFLICT (username) DO UPDATE SET body = EXCLUDED.body",
                params![String::from_utf8_lossy(&key[2..]).into_owned(), v],
            ),
            (Some(b"u/"), None) => self.query(
                "DELETE FROM users WHERE username = $1",
                params![String::from_utf8_lossy(&key[2..]).into_owned()],
            ),
            _ => return Err(bad()),
        }
        .map(|_| ())
    }

    /// Raw access for tamper tests: overwrite the stored bytes of audit record `seq`.
    #[doc(hidden)]
    pub fn overwrite_audit_record_for_tests(
        &self,
        seq: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.query(
            "UPDATE audit_log SET body = $2 WHERE seq = $1",
            params![sql_id(seq), bytes.to_vec()],
        )
        .map(|_| ())
    }

    /// Raw access for tamper tests: the stored bytes of audit record `seq`.
    #[doc(hidden)]
    pub fn audit_record_bytes_for_tests(&self, seq: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.body(
            "SELECT body FROM audit_log WHERE seq = $1",
            params![sql_id(seq)],
        )
    }

    /// Visit `(key, body)` pages of a table with a bigint key, in key order.
    fn scan_by_id(
        &self,
        sql: &'static str,
        visit: &mut dyn FnMut(i64, Vec<u8>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.scan_by_id_after(i64::MIN, sql, visit)
    }

    /// As [`PgStore::scan_by_id`], from the first key after `after`.
    fn scan_by_id_after(
        &self,
        mut after: i64,
        sql: &'static str,
        visit: &mut dyn FnMut(i64, Vec<u8>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        loop {
            let rows = self.query(sql, params![after, PAGE])?;
            for r in &rows {
                after = get::<i64>(r, 0, sql)?;
                if !visit(after, get::<Vec<u8>>(r, 1, sql)?)? {
                    return Ok(());
                }
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }

    /// Visit `(key, body)` pages of a table with a text key, in key order.
    fn scan_by_text(
        &self,
        first: &'static str,
        next: &'static str,
        visit: &mut dyn FnMut(&str, Vec<u8>) -> bool,
    ) -> Result<(), StoreError> {
        let mut after: Option<String> = None;
        loop {
            let rows = match &after {
                None => self.query(first, params![PAGE])?,
                Some(a) => self.query(next, params![a.clone(), PAGE])?,
            };
            for r in &rows {
                let k: String = get(r, 0, first)?;
                if !visit(&k, get::<Vec<u8>>(r, 1, first)?) {
                    return Ok(());
                }
                after = Some(k);
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }

    /// Every generic record, `(kind, key, value)` in order.
    fn scan_all_records(
        &self,
        visit: &mut dyn FnMut(&str, &str, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        const FIRST: &str = "SELECT kind, key, value FROM records ORDER BY kind, key LIMIT $1";
        const NEXT: &str = "SELECT kind, key, value FROM records WHERE (kind, key) > ($1, $2) ORDER BY kind, key LIMIT $3";
        let mut after: Option<(String, String)> = None;
        loop {
            let rows = match &after {
                None => self.query(FIRST, params![PAGE])?,
                Some((k, key)) => self.query(NEXT, params![k.clone(), key.clone(), PAGE])?,
            };
            for r in &rows {
                let kind: String = get(r, 0, FIRST)?;
                let key: String = get(r, 1, FIRST)?;
                let v: Vec<u8> = get(r, 2, FIRST)?;
                if !visit(&kind, &key, &v) {
                    return Ok(());
                }
                after = Some((kind, key));
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }
}

async fn apply_migrations(c: &Object, path: &str) -> Result<(), StoreError> {
    c.batch_execute(
        "CREATE TABLE IF NOT EXISTS beian_schema (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await
    .map_err(db_err("schema table"))?;
    let row = c
        .query_one("SELECT max(version) FROM beian_schema", &[])
        .await
        .map_err(db_err("schema version"))?;
    let current: Option<i32> = get(&row, 0, "beian_schema")?;
    let current = current.unwrap_or(0);
    if current > schema_version() {
        return Err(StoreError::Open {
            path: path.to_string(),
            reason: format!(
                "the database's schema is version {current}, newer than this beian's ({}): upgrade beian",
                schema_version()
            ),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        c.batch_execute("BEGIN")
            .await
            .map_err(db_err("migration"))?;
        let applied = async {
            c.batch_execute(sql).await?;
            c.execute("INSERT INTO beian_schema (version) VALUES ($1)", &[version])
                .await?;
            c.batch_execute("COMMIT").await
        }
        .await;
        if let Err(e) = applied {
            let _ = c.batch_execute("ROLLBACK").await;
            return Err(StoreError::Open {
                path: path.to_string(),
                reason: format!(
                    "schema migration {version} failed: {}",
                    db_err("migration")(e)
                ),
            });
        }
        tracing::info!(version, "registry database schema migrated");
    }
    let format = i64::from(codec::FORMAT);
    c.execute(
        "INSERT INTO beian_meta (key, value) VALUES ('record_format', $1) ON CONFLICT (key) DO NOTHING",
        &[&format],
    )
    .await
    .map_err(db_err("record format"))?;
    let row = c
        .query_one(
            "SELECT value FROM beian_meta WHERE key = 'record_format'",
            &[],
        )
        .await
        .map_err(db_err("record format"))?;
    let stored: i64 = get(&row, 0, "record_format")?;
    if stored > format {
        return Err(StoreError::Open {
            path: path.to_string(),
            reason: format!(
                "written by a newer beian (record format {stored}; this one reads up to {format}): upgrade beian"
            ),
        });
    }
    Ok(())
}

// ---- Reads shared by the store and its transactions ----

fn subject<Q: Query + ?Sized>(q: &Q, id: SubjectId) -> Result<Option<Subject>, StoreError> {
    q.body(
        "SELECT body FROM subjects WHERE id = $1",
        params![sql_id(id)],
    )?
    .map(|b| decode(&format!("subject:{id}"), &b))
    .transpose()
}

fn filing<Q: Query + ?Sized>(q: &Q, id: FilingId) -> Result<Option<Filing>, StoreError> {
    q.body(
        "SELECT body FROM filings WHERE id = $1",
        params![sql_id(id)],
    )?
    .map(|b| decode(&format!("filing:{id}"), &b))
    .transpose()
}

fn user<Q: Query + ?Sized>(q: &Q, username: &str) -> Result<Option<UserRecord>, StoreError> {
    q.body(
        "SELECT body FROM users WHERE username = $1",
        params![username.to_string()],
    )?
    .map(|b| decode(&format!("user:{username}"), &b))
    .transpose()
}

fn record<Q: Query + ?Sized>(q: &Q, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
    q.body(
        "SELECT value FROM records WHERE kind = $1 AND key = $2",
        params![kind.to_string(), key.to_string()],
    )
}

fn ip_filing<Q: Query + ?Sized>(q: &Q, id: IpFilingId) -> Result<Option<IpFiling>, StoreError> {
    q.body(
        "SELECT body FROM ip_filings WHERE id = $1",
        params![sql_id(id)],
    )?
    .map(|b| decode(&format!("ip_filing:{id}"), &b))
    .transpose()
}

macro_rules! impl_reads {
    ($t:ty) => {
        impl RegistryRead for $t {
            fn subject(&self, id: SubjectId) -> Result<Option<Subject>, StoreError> {
                subject(self, id)
            }
            fn subject_by_id_number(&self, n: &str) -> Result<Option<SubjectId>, StoreError> {
                self.one_id(
                    "SELECT subject_id FROM subject_id_numbers WHERE id_number = $1",
                    params![n.to_string()],
                )
            }
            fn subject_by_number(&self, n: &FilingNumber) -> Result<Option<SubjectId>, StoreError> {
                self.one_id(
                    "SELECT subject_id FROM subject_numbers WHERE number = $1",
                    params![number_text(&n.subject_number())],
                )
            }
            fn filing(&self, id: FilingId) -> Result<Option<Filing>, StoreError> {
                filing(self, id)
            }
            fn filing_by_domain(&self, d: &Domain) -> Result<Option<FilingId>, StoreError> {
                self.one_id(
                    "SELECT filing_id FROM filing_domains WHERE domain = $1",
                    params![d.as_str().to_string()],
                )
            }
            fn filing_by_number(&self, n: &FilingNumber) -> Result<Option<FilingId>, StoreError> {
                self.one_id(
                    "SELECT filing_id FROM service_numbers WHERE number = $1",
                    params![number_text(n)],
                )
            }
            fn filings_by_ip(&self, ip: IpAddr) -> Result<Vec<FilingId>, StoreError> {
                self.ids(
                    "SELECT filing_id FROM filing_ips WHERE ip = $1 ORDER BY filing_id",
                    params![ip.to_string()],
                )
            }
            fn user(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
                user(self, username)
            }
        }

        impl IpFilingRead for $t {
            fn ip_filing(&self, id: IpFilingId) -> Result<Option<IpFiling>, StoreError> {
                ip_filing(self, id)
            }
            fn ip_filings_by_network(
                &self,
                net: &ipnet::IpNet,
            ) -> Result<Vec<IpFilingId>, StoreError> {
                self.ids(
                    "SELECT id FROM ip_filings WHERE network = $1::text::cidr ORDER BY id",
                    params![net.trunc().to_string()],
                )
            }
            fn ip_filings_overlapping(
                &self,
                net: &ipnet::IpNet,
            ) -> Result<Vec<IpFilingId>, StoreError> {
                self.ids(
                    "SELECT id FROM ip_filings WHERE network >>= $1::text::cidr OR network <<= $1::text::cidr ORDER BY id",
                    params![net.trunc().to_string()],
                )
            }
        }
    };
}

impl_reads!(PgStore);
impl_reads!(PgTxn<'_>);

impl RegistryScan for PgStore {
    fn scan_filings(&self, visit: &mut dyn FnMut(Filing) -> bool) -> Result<(), StoreError> {
        self.scan_by_id(
            "SELECT id, body FROM filings WHERE id > $1 ORDER BY id LIMIT $2",
            &mut |id, b| Ok(visit(decode(&format!("filing:{id}"), &b)?)),
        )
    }
    fn scan_subjects(&self, visit: &mut dyn FnMut(Subject) -> bool) -> Result<(), StoreError> {
        self.scan_by_id(
            "SELECT id, body FROM subjects WHERE id > $1 ORDER BY id LIMIT $2",
            &mut |id, b| Ok(visit(decode(&format!("subject:{id}"), &b)?)),
        )
    }
    fn scan_audit_from(
        &self,
        from: u64,
        visit: &mut dyn FnMut(u64, Result<AuditRecord, String>) -> bool,
    ) -> Result<(), StoreError> {
        self.scan_by_id_after(
            sql_id(from).saturating_sub(1),
            "SELECT seq, body FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
            &mut |seq, b| {
                Ok(visit(
                    seq as u64,
                    serde_json::from_slice(&b).map_err(|e| e.to_string()),
                ))
            },
        )
    }
    fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>, StoreError> {
        read_head(self)
    }

    fn record(&self, kind: &str, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        record(self, kind, key)
    }

    fn scan_records(
        &self,
        kind: &str,
        visit: &mut dyn FnMut(&str, &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        const FIRST: &str = "SELECT key, value FROM records WHERE kind = $1 ORDER BY key LIMIT $2";
        const NEXT: &str =
            "SELECT key, value FROM records WHERE kind = $1 AND key > $2 ORDER BY key LIMIT $3";
        let mut after: Option<String> = None;
        loop {
            let rows = match &after {
                None => self.query(FIRST, params![kind.to_string(), PAGE])?,
                Some(a) => self.query(NEXT, params![kind.to_string(), a.clone(), PAGE])?,
            };
            for r in &rows {
                let k: String = get(r, 0, FIRST)?;
                let v: Vec<u8> = get(r, 1, FIRST)?;
                if !visit(&k, &v) {
                    return Ok(());
                }
                after = Some(k);
            }
            if (rows.len() as i64) < PAGE {
                return Ok(());
            }
        }
    }

    fn scan_users(&self, visit: &mut dyn FnMut(UserRecord) -> bool) -> Result<(), StoreError> {
        let mut failed = None;
        self.scan_by_text(
            "SELECT username, body FROM users ORDER BY username LIMIT $1",
            "SELECT username, body FROM users WHERE username > $1 ORDER BY username LIMIT $2",
            &mut |name, b| match decode(&format!("user:{name}"), &b) {
                Ok(u) => visit(u),
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )?;
        failed.map_or(Ok(()), Err)
    }

    fn filings_under_subject_number(
        &self,
        subject_number: &FilingNumber,
    ) -> Result<Vec<FilingId>, StoreError> {
        let prefix = format!("{}-", number_text(&subject_number.subject_number()));
        self.ids(
            "SELECT filing_id FROM service_numbers WHERE number >= $1 AND number < $2 ORDER BY number",
            params![prefix.clone(), prefix_end(&prefix)],
        )
    }

    fn subjects_by_name(
        &self,
        fragment: &str,
        visit: &mut dyn FnMut(Subject) -> bool,
    ) -> Result<(), StoreError> {
        let wanted = normalise_name(fragment);
        if wanted.chars().count() < MIN_NAME_FRAGMENT {
            return Ok(());
        }
        let grams: Vec<String> = name_grams(fragment).into_iter().collect();
        // Leapfrog over the windows' posting lists (as the sled store does): each step is one
        // index seek.
        let mut candidate = 0u64;
        loop {
            let mut agreed = true;
            for g in &grams {
                let next = self.one_id(
                    "SELECT subject_id FROM subject_name_grams WHERE gram = $1 AND subject_id >= $2 ORDER BY subject_id LIMIT 1",
                    params![g.clone(), sql_id(candidate)],
                )?;
                match next {
                    None => return Ok(()),
                    Some(id) if id > candidate => {
                        candidate = id;
                        agreed = false;
                        break;
                    }
                    Some(_) => {}
                }
            }
            if !agreed {
                continue;
            }
            if let Some(s) = subject(self, candidate)? {
                if normalise_name(&s.name).contains(&wanted) && !visit(s) {
                    return Ok(());
                }
            }
            candidate = match candidate.checked_add(1) {
                Some(c) => c,
                None => return Ok(()),
            };
        }
    }

    fn scan_state(&self, visit: &mut dyn FnMut(&str, &[u8]) -> bool) -> Result<(), StoreError> {
        let mut go = true;
        for (name, sql) in [
            (
                "subject",
                "SELECT id, body FROM subjects WHERE id > $1 ORDER BY id LIMIT $2",
            ),
            (
                "filing",
                "SELECT id, body FROM filings WHERE id > $1 ORDER BY id LIMIT $2",
            ),
        ] {
            self.scan_by_id(sql, &mut |id, b| {
                go = visit(&format!("{name}:{id}"), &b);
                Ok(go)
            })?;
            if !go {
                return Ok(());
            }
        }
        self.scan_by_text(
            "SELECT username, body FROM users ORDER BY username LIMIT $1",
            "SELECT username, body FROM users WHERE username > $1 ORDER BY username LIMIT $2",
            &mut |name, b| {
                go = visit(&format!("user:{name}"), &b);
                go
            },
        )?;
        if !go {
            return Ok(());
        }
        self.scan_by_id(
            "SELECT id, body FROM ip_filings WHERE id > $1 ORDER BY id LIMIT $2",
            &mut |id, b| {
                go = visit(&format!("ip_filing:{id}"), &b);
                Ok(go)
            },
        )?;
        if !go {
            return Ok(());
        }
        self.scan_all_records(&mut |kind, key, v| visit(&format!("{kind}:{key}"), v))
    }
}

impl IpFilingScan for PgStore {
    fn scan_ip_filings(&self, visit: &mut dyn FnMut(IpFiling) -> bool) -> Result<(), StoreError> {
        self.scan_by_id(
            "SELECT id, body FROM ip_filings WHERE id > $1 ORDER BY id LIMIT $2",
            &mut |id, b| Ok(visit(decode(&format!("ip_filing:{id}"), &b)?)),
        )
    }
}

fn read_head<Q: Query + ?Sized>(q: &Q) -> Result<Option<(u64, [u8; 32])>, StoreError> {
    const SQL: &str = "SELECT seq, hash FROM audit_head";
    let rows = q.query(SQL, params![])?;
    let Some(r) = rows.first() else {
        return Ok(None);
    };
    let seq: i64 = get(r, 0, SQL)?;
    let hash: Vec<u8> = get(r, 1, SQL)?;
    let h: [u8; 32] = hash.try_into().map_err(|_| StoreError::Corrupt {
        key: "audit_head".into(),
        reason: "expected a 32-byte hash".into(),
    })?;
    Ok(Some((seq as u64, h)))
}

impl RegistryStore for PgStore {
    type Txn<'a> = PgTxn<'a>;
    fn begin(&self) -> Result<PgTxn<'_>, StoreError> {
        let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let pool = self.pool.clone();
        let conn = run(async move {
            let c = pool.get().await.map_err(pool_err)?;
            let lock = format!("SELECT pg_advisory_lock({WRITER_LOCK})");
            c.batch_execute(&lock)
                .await
                .map_err(db_err("writer lock"))?;
            match c.batch_execute("BEGIN ISOLATION LEVEL SERIALIZABLE").await {
                Ok(()) => Ok(c),
                Err(e) => {
                    // Closing the connection releases the lock.
                    drop(Object::take(c));
                    Err(db_err("begin")(e))
                }
            }
        })?;
        let mut txn = PgTxn {
            _guard: guard,
            conn: Some(Arc::new(conn)),
            chain: Appender::after(None),
            wrote: false,
            pending: std::sync::Mutex::new(Vec::new()),
            counters: Default::default(),
            fresh: Default::default(),
        };
        txn.chain = Appender::after(read_head(&txn)?);
        Ok(txn)
    }
}

/// An open PostgreSQL transaction (see the module docs). Dropped without `commit`, it rolls
/// back.
pub struct PgTxn<'a> {
    _guard: MutexGuard<'a, ()>,
    /// `None` once committed or rolled back.
    conn: Option<Arc<Object>>,
    chain: Appender,
    wrote: bool,
    /// Writes not sent yet: they go to the server together, pipelined in order, before the
    /// next read or the commit (one round trip for many statements).
    pending: std::sync::Mutex<Vec<(&'static str, Vec<Param>)>>,
    /// Id sequences as this transaction counted them (written back at the commit).
    counters: std::collections::HashMap<&'static str, i64>,
    fresh: FreshIds,
}

/// Writes queued before they are sent in one pipeline.
const MAX_PENDING: usize = 512;

/// Run `writes` in order on `conn`, pipelined: every statement is prepared first (cached per
/// connection), then each query is polled once in order — its first poll sends it — so the
/// server receives them in that order on the one connection, and only then are the answers
/// awaited. The first failure is returned (the transaction is then aborted server-side).
async fn pipeline(
    conn: &deadpool_postgres::ClientWrapper,
    writes: &[(&'static str, Vec<Param>)],
) -> Result<(), StoreError> {
    use futures::FutureExt;
    let mut stmts = Vec::with_capacity(writes.len());
    for (sql, _) in writes {
        stmts.push(conn.prepare_cached(sql).await.map_err(db_err(sql))?);
    }
    let mut sent = Vec::with_capacity(writes.len());
    for ((sql, params), stmt) in writes.iter().zip(&stmts) {
        let refs: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect();
        let mut fut = Box::pin(conn.execute_raw(stmt, refs));
        // The first poll encodes the statement and hands it to the connection.
        let early = (&mut fut).now_or_never();
        sent.push((*sql, early, fut));
    }
    let mut first_err = None;
    for (sql, early, fut) in sent {
        let outcome = match early {
            Some(r) => r,
            None => fut.await,
        };
        if let Err(e) = outcome {
            first_err.get_or_insert_with(|| db_err(sql)(e));
        }
    }
    first_err.map_or(Ok(()), Err)
}

impl PgTxn<'_> {
    fn conn(&self) -> Result<Arc<Object>, StoreError> {
        self.conn.clone().ok_or_else(|| StoreError::Io {
            context: "postgres".into(),
            reason: "the transaction has ended".into(),
        })
    }

    fn take_pending(&self) -> Vec<(&'static str, Vec<Param>)> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Send the queued writes now.
    fn flush(&self) -> Result<(), StoreError> {
        let writes = self.take_pending();
        if writes.is_empty() {
            return Ok(());
        }
        let conn = self.conn()?;
        run(async move { pipeline(&conn, &writes).await })
    }
}

impl Query for PgTxn<'_> {
    /// A read: the queued writes go first (in the same round of the runtime), so the read
    /// sees them.
    fn query(&self, sql: &'static str, params: Vec<Param>) -> Result<Vec<Row>, StoreError> {
        let conn = self.conn()?;
        let writes = self.take_pending();
        run(async move {
            if !writes.is_empty() {
                pipeline(&conn, &writes).await?;
            }
            query_on(&conn, sql, &params).await
        })
    }
}

/// End a transaction on `conn` with `sql` (`COMMIT` or `ROLLBACK`) and release the writer
/// lock; a connection left in doubt is closed (which releases the lock too).
fn finish(conn: Arc<Object>, sql: &'static str) -> Result<(), StoreError> {
    run(async move {
        let ended = conn.batch_execute(sql).await.map_err(db_err(sql));
        let unlock = format!("SELECT pg_advisory_unlock({WRITER_LOCK})");
        let unlocked = conn.batch_execute(&unlock).await;
        if ended.is_err() || unlocked.is_err() {
            if let Ok(obj) = Arc::try_unwrap(conn) {
                drop(Object::take(obj));
            }
        }
        ended
    })
}

impl Drop for PgTxn<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if let Err(e) = finish(conn, "ROLLBACK") {
                tracing::warn!(error = %e, "rolling back a registry transaction failed");
            }
        }
    }
}

fn json<T: Serialize>(v: &T) -> Option<serde_json::Value> {
    serde_json::to_value(v).ok()
}

fn record_digest(v: &[u8]) -> serde_json::Value {
    use sha2::Digest;
    serde_json::json!({"bytes": v.len(), "sha256": hex::encode(sha2::Sha256::digest(v))})
}

impl PgTxn<'_> {
    /// Queue a write (see [`PgTxn::pending`]).
    fn exec(&mut self, sql: &'static str, params: Vec<Param>) -> Result<(), StoreError> {
        self.wrote = true;
        let full = {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.push((sql, params));
            p.len() >= MAX_PENDING
        };
        if full {
            self.flush()?;
        }
        Ok(())
    }

    fn append_audit(
        &mut self,
        meta: &AuditMeta,
        entity: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
        stored: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let (seq, bytes) =
            self.chain
                .append(meta, &entity, before.as_ref(), after.as_ref(), stored)?;
        self.exec(
            "INSERT INTO audit_log (seq, body) VALUES ($1, $2)",
            params![sql_id(seq), bytes],
        )?;
        Ok(())
    }
}

impl RegistryTxn for PgTxn<'_> {
    fn next_id(&mut self, seq: Sequence) -> Result<u64, StoreError> {
        let (name, start): (&'static str, i64) = match seq {
            Sequence::Subject => ("subject", 0),
            Sequence::Filing => ("filing", 0),
            Sequence::SubjectNumber => ("subject_number", 20_000_000),
            Sequence::IpFiling => ("ip_filing", 0),
        };
        self.wrote = true;
        // Read once per transaction, counted here, written back at the commit: the writer
        // lock keeps every other transaction out until then.
        let cur = match self.counters.get(name) {
            Some(v) => *v,
            None => self
                .one_id(
                    "SELECT value FROM counters WHERE name = $1",
                    params![name.to_string()],
                )?
                .map(|v| v as i64)
                .unwrap_or(start),
        };
        let next = cur + 1;
        self.counters.insert(name, next);
        let id = next as u64;
        self.fresh.allocated(seq, id);
        Ok(id)
    }

    fn put_subject(&mut self, meta: &AuditMeta, s: &Subject) -> Result<(), StoreError> {
        let before = match self.fresh.take(Sequence::Subject, s.id) {
            true => None,
            false => subject(self, s.id)?,
        };
        let grams = name_grams(&s.name);
        let id = sql_id(s.id);
        if let Some(b) = &before {
            if b.id_number != s.id_number {
                self.exec(
                    "DELETE FROM subject_id_numbers WHERE id_number = $1",
                    params![b.id_number.clone()],
                )?;
            }
            let gone: Vec<String> = name_grams(&b.name).difference(&grams).cloned().collect();
            if !gone.is_empty() {
                self.exec(
                    "DELETE FROM subject_name_grams WHERE subject_id = $1 AND gram = ANY($2)",
                    params![id, gone],
                )?;
            }
        }
        self.exec(
            "INSERT INTO subject_name_grams (gram, subject_id) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
            params![grams.into_iter().collect::<Vec<String>>(), id],
        )?;
        self.exec(
            "INSERT INTO subject_id_numbers (id_number, subject_id) VALUES ($1, $2) ON CONFLICT (id_number) DO UPDATE SET subject_id = EXCLUDED.subject_id",
            params![s.id_number.clone(), id],
        )?;
        if let Some(n) = &s.number {
            self.exec(
                "INSERT INTO subject_numbers (number, subject_id) VALUES ($1, $2) ON CONFLICT (number) DO UPDATE SET subject_id = EXCLUDED.subject_id",
                params![number_text(n), id],
            )?;
        }
        let bytes = encode(s)?;
        self.append_audit(
            meta,
            format!("subject:{}", s.id),
            before.as_ref().and_then(json),
            json(s),
            Some(&bytes),
        )?;
        self.exec(
            "INSERT INTO subjects (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
            params![id, bytes],
        )
    }

    fn put_filing(&mut self, meta: &AuditMeta, f: &Filing) -> Result<(), StoreError> {
        let before = match self.fresh.take(Sequence::Filing, f.id) {
            true => None,
            false => filing(self, f.id)?,
        };
        let id = sql_id(f.id);
        if let Some(b) = &before {
            let gone: Vec<String> = b
                .domains
                .iter()
                .filter(|d| !f.domains.contains(d))
                .map(|d| d.as_str().to_string())
                .collect();
            if !gone.is_empty() {
                // Only entries that still lead to this filing.
                self.exec(
                    "DELETE FROM filing_domains WHERE filing_id = $1 AND domain = ANY($2)",
                    params![id, gone],
                )?;
            }
            let gone: Vec<String> = b
                .ips
                .iter()
                .filter(|ip| !f.ips.contains(ip))
                .map(|ip| ip.to_string())
                .collect();
            if !gone.is_empty() {
                self.exec(
                    "DELETE FROM filing_ips WHERE filing_id = $1 AND ip = ANY($2)",
                    params![id, gone],
                )?;
            }
        }
        let domains: std::collections::BTreeSet<String> =
            f.domains.iter().map(|d| d.as_str().to_string()).collect();
        if !domains.is_empty() {
            self.exec(
                "INSERT INTO filing_domains (domain, filing_id) SELECT unnest($1::text[]), $2 ON CONFLICT (domain) DO UPDATE SET filing_id = EXCLUDED.filing_id",
                params![domains.into_iter().collect::<Vec<String>>(), id],
            )?;
        }
        let ips: std::collections::BTreeSet<String> =
            f.ips.iter().map(|ip| ip.to_string()).collect();
        if !ips.is_empty() {
            self.exec(
                "INSERT INTO filing_ips (ip, filing_id) SELECT unnest($1::text[]), $2 ON CONFLICT DO NOTHING",
                params![ips.into_iter().collect::<Vec<String>>(), id],
            )?;
        }
        if let Some(n) = &f.number {
            self.exec(
                "INSERT INTO service_numbers (number, filing_id) VALUES ($1, $2) ON CONFLICT (number) DO UPDATE SET filing_id = EXCLUDED.filing_id",
                params![number_text(n), id],
            )?;
        }
        let bytes = encode(f)?;
        self.append_audit(
            meta,
            format!("filing:{}", f.id),
            before.as_ref().and_then(json),
            json(f),
            Some(&bytes),
        )?;
        self.exec(
            "INSERT INTO filings (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body",
            params![id, bytes],
        )
    }

    fn put_user(&mut self, meta: &AuditMeta, u: &UserRecord) -> Result<(), StoreError> {
        let before = user(self, &u.username)?;
        let bytes = encode(u)?;
        // The password hash is kept out of the audit log.
        let redact = |u: &UserRecord| {
            serde_json::json!({"username": u.username, "actor": u.actor.to_string(),
                "created_at": u.created_at, "created_by": u.created_by})
        };
        self.append_audit(
            meta,
            format!("user:{}", u.username),
            before.as_ref().map(redact),
            Some(redact(u)),
            Some(&bytes),
        )?;
        self.exec(
            "INSERT INTO users (username, body) VALUES ($1, $2) ON CONFLICT (username) DO UPDATE SET body = EXCLUDED.body",
            params![u.username.clone(), bytes],
        )
    }

    fn audit(
        &mut self,
        meta: &AuditMeta,
        entity: &str,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.append_audit(meta, entity.to_string(), before, after, None)
    }

    fn replay_next(&mut self, record: AuditRecord) {
        self.chain.replay_next(record);
    }

    fn replay_pending(&self) -> bool {
        self.chain.replay_pending()
    }

    fn commit(mut self) -> Result<u64, StoreError> {
        for (name, value) in std::mem::take(&mut self.counters) {
            self.exec(
                "INSERT INTO counters (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
                params![name.to_string(), value],
            )?;
        }
        if let Some((seq, hash)) = self.chain.head().filter(|_| self.wrote) {
            self.exec(
                "INSERT INTO audit_head (one, seq, hash) VALUES (true, $1, $2) ON CONFLICT (one) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash",
                params![sql_id(seq), hash.to_vec()],
            )?;
        }
        // A failed write fails the commit (and the drop rolls the transaction back).
        self.flush()?;
        let Some(conn) = self.conn.take() else {
            return Ok(0);
        };
        if !self.wrote {
            finish(conn, "ROLLBACK")?;
            return Ok(0);
        }
        finish(conn, "COMMIT")?;
        Ok(self.chain.appended())
    }

    fn put_record(
        &mut self,
        meta: &AuditMeta,
        kind: &str,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let before = record(self, kind, key)?.map(|b| record_digest(&b));
        let after = value.map(record_digest);
        self.append_audit(meta, format!("{kind}:{key}"), before, after, value)?;
        match value {
            Some(v) => self.exec(
                "INSERT INTO records (kind, key, value) VALUES ($1, $2, $3) ON CONFLICT (kind, key) DO UPDATE SET value = EXCLUDED.value",
                params![kind.to_string(), key.to_string(), v.to_vec()],
            ),
            None => self.exec(
                "DELETE FROM records WHERE kind = $1 AND key = $2",
                params![kind.to_string(), key.to_string()],
            ),
        }
    }
}

impl IpFilingWrite for PgTxn<'_> {
    fn put_ip_filing(&mut self, meta: &AuditMeta, f: &IpFiling) -> Result<(), StoreError> {
        let before = match self.fresh.take(Sequence::IpFiling, f.id) {
            true => None,
            false => ip_filing(self, f.id)?,
        };
        let bytes = encode(f)?;
        self.append_audit(
            meta,
            format!("ip_filing:{}", f.id),
            before.as_ref().and_then(json),
            json(f),
            Some(&bytes),
        )?;
        self.exec(
            "INSERT INTO ip_filings (id, network, body) VALUES ($1, $2::text::cidr, $3) ON CONFLICT (id) DO UPDATE SET network = EXCLUDED.network, body = EXCLUDED.body",
            params![sql_id(f.id), f.network.trunc().to_string(), bytes],
        )
    }

    fn delete_ip_filing(&mut self, meta: &AuditMeta, id: IpFilingId) -> Result<(), StoreError> {
        let Some(before) = ip_filing(self, id)? else {
            return Ok(());
        };
        self.append_audit(meta, format!("ip_filing:{id}"), json(&before), None, None)?;
        self.exec("DELETE FROM ip_filings WHERE id = $1", params![sql_id(id)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges_and_redaction() {
        assert_eq!(prefix_end("京ICP备12345678号-"), "京ICP备12345678号.");
        assert_eq!(
            redacted("postgres://beian:secret@127.0.0.1:5432/reg"),
            "postgres://beian:***@127.0.0.1:5432/reg"
        );
        assert_eq!(
            redacted("host=x password=y"),
            "(PostgreSQL connection string)"
        );
        assert_eq!(schema_version(), MIGRATIONS.len() as i32);
    }
}
