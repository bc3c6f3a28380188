//! `beian serve`: the HTTP API on one address and `/metrics` on another, until SIGTERM or
//! ctrl-c (in-flight requests finish); with `--replica-of`, a read-only replica of another
//! registry (see `beian::replica`). Settings: flags > environment > config file > defaults.
//! While it runs, `DIR/serve.pid` and `DIR/serve.json` (pid, API URL, operator token; mode
//! 0600) let the commands run beside it name it and read through its API.

use std::sync::Arc;

use anyhow::Context;

use super::common::{self, Global};

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// API listen address (default: [serve].listen, else 127.0.0.1:8080).
    #[arg(long, env = "BEIAN_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// `/metrics` listen address (default: [serve].metrics_listen, else 127.0.0.1:9464).
    #[arg(long, env = "BEIAN_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Largest accepted request body, in bytes (default: [serve].body_limit, else 1 MiB).
    #[arg(long, env = "BEIAN_BODY_LIMIT", value_name = "BYTES")]
    pub body_limit: Option<usize>,
    /// Serve a read-only replica of this primary (its URL, or its registry directory on this
    /// machine) from --registry DIR, created empty on first start: the public query and the
    /// self-check, kept current from the primary's change feed.
    #[arg(long, env = "BEIAN_REPLICA_OF", value_name = "URL|DIR")]
    pub replica_of: Option<String>,
    /// The token replicas present to read the change feed: a primary accepts it, a replica
    /// sends it to its primary's URL.
    #[arg(
        long,
        env = "BEIAN_REPLICATION_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub replication_token: Option<String>,
}

pub fn run(global: &Global, args: ServeArgs) -> anyhow::Result<i32> {
    let mut config = common::load_config(global)?;
    if let Some(l) = args.listen {
        config.serve.listen = l;
    }
    if let Some(l) = args.metrics_listen {
        config.serve.metrics_listen = l;
    }
    if let Some(b) = args.body_limit {
        config.serve.body_limit = b;
    }
    let source = args
        .replica_of
        .as_deref()
        .map(|s| beian::replica::Source::parse(s, args.replication_token.clone()));
    let registry = Arc::new(match &source {
        None => global.open()?,
        Some(src) => {
            let dir = global
                .registry
                .as_deref()
                .context("a replica keeps its copy in --registry DIR (or BEIAN_REGISTRY)")?;
            beian::registry::Registry::open_or_init_replica(dir, &src.describe())?
        }
    });
    let dir = registry.dir().to_path_buf();
    // Other commands name this process when they find the registry held.
    let pid_file = registry.dir().join(beian::registry::store::SERVE_PID_FILE);
    beian::fsutil::write_atomic(
        &pid_file,
        format!("{}\n", std::process::id()).as_bytes(),
        None,
    )
    .with_context(|| format!("{}", pid_file.display()))?;
    let rt = common::runtime()?;
    let info_dir = dir.clone();
    let outcome = rt.block_on(async move {
        let shutdown = beian::api::shutdown_signal();
        let api = tokio::net::TcpListener::bind(&config.serve.listen)
            .await
            .with_context(|| format!("listen on {}", config.serve.listen))?;
        let metrics = tokio::net::TcpListener::bind(&config.serve.metrics_listen)
            .await
            .with_context(|| format!("listen on {}", config.serve.metrics_listen))?;
        // Ready (state built, serve snapshot written) before saying where it listens.
        let (state, follower) = match source {
            None => (beian::api::AppState::new(registry, config)?, None),
            Some(src) => {
                let state =
                    beian::api::AppState::new_replica(registry.clone(), config, src.describe())?;
                let follower = beian::replica::Follower::new(registry, src, state.metrics.clone());
                (state, Some(follower))
            }
        };
        if let Some(t) = args
            .replication_token
            .as_deref()
            .filter(|_| follower.is_none())
        {
            state.replication.enable(t.trim());
        }
        // Read-only commands run beside serve reach it through serve.json (mode 0600).
        let info = beian::api::operator::ServeInfo {
            pid: std::process::id(),
            url: format!("http://{}", loopback(api.local_addr()?)),
            token: beian::api::operator::new_token(),
        };
        state.operator.enable(&info.token);
        info.write(&info_dir).with_context(|| {
            format!(
                "{}",
                beian::api::operator::ServeInfo::path(&info_dir).display()
            )
        })?;
        eprintln!(
            "beian serve: API on http://{}, metrics on http://{}/metrics",
            api.local_addr()?,
            metrics.local_addr()?
        );
        match follower {
            None => beian::api::serve(state, api, metrics, shutdown).await?,
            Some(f) => beian::api::serve_replica(state, f, api, metrics, shutdown).await?,
        }
        eprintln!("beian serve: stopped");
        anyhow::Ok(())
    });
    // Every acknowledged write is already durable; do not wait for a read-only refresh.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_file(&pid_file);
    beian::api::operator::ServeInfo::remove(&dir);
    outcome?;
    Ok(0)
}

/// The address a local client reaches a listener on: an unspecified bind address (`0.0.0.0`,
/// `::`) is reached on loopback.
fn loopback(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{Ipv4Addr, Ipv6Addr};
    match addr.ip() {
        std::net::IpAddr::V4(a) if a.is_unspecified() => (Ipv4Addr::LOCALHOST, addr.port()).into(),
        std::net::IpAddr::V6(a) if a.is_unspecified() => (Ipv6Addr::LOCALHOST, addr.port()).into(),
        _ => addr,
    }
}
