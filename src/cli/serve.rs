//! `beian serve`: the HTTP API on one address and `/metrics` on another, until SIGTERM or
//! ctrl-c (in-flight requests finish). Settings: flags > environment > config file > defaults.
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
        let state = beian::api::AppState::new(registry, config)?;
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
        beian::api::serve(state, api, metrics, shutdown).await?;
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
