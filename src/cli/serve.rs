//! `beian serve`: the HTTP API on one address and `/metrics` on another, until SIGTERM or
//! ctrl-c (in-flight requests finish). Settings: flags > environment > config file > defaults.

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
    let registry = Arc::new(global.open()?);
    // Other commands name this process when they find the registry held.
    let pid_file = registry.dir().join(beian::registry::store::SERVE_PID_FILE);
    beian::fsutil::write_atomic(
        &pid_file,
        format!("{}\n", std::process::id()).as_bytes(),
        None,
    )
    .with_context(|| format!("{}", pid_file.display()))?;
    let rt = common::runtime()?;
    let outcome = rt.block_on(async move {
        let shutdown = beian::api::shutdown_signal();
        let api = tokio::net::TcpListener::bind(&config.serve.listen)
            .await
            .with_context(|| format!("listen on {}", config.serve.listen))?;
        let metrics = tokio::net::TcpListener::bind(&config.serve.metrics_listen)
            .await
            .with_context(|| format!("listen on {}", config.serve.metrics_listen))?;
        // Ready (state built, serve snapshot written) before saying where it listens.
        let state = beian::api::AppState::new(registry, config)?;
        eprintln!(
            "beian serve: API on http://{}, metrics on http://{}/metrics",
            api.local_addr()?,
            metrics.local_addr()?
        );
        beian::api::serve(state, api, metrics, shutdown).await?;
        eprintln!("beian serve: stopped");
        anyhow::Ok(())
    });
    // Every acknowledged write is already durable; do not wait for a read-only refresh.
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    let _ = std::fs::remove_file(&pid_file);
    outcome?;
    Ok(0)
}
