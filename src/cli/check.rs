//! `beian check URL|DOMAIN`: the filer's self-check — scan one site and explain, in Chinese
//! with English, what is wrong and exactly how to fix it.

use std::path::PathBuf;
use std::sync::Arc;

use beian::scan::ScanContext;

use super::common::{self, Global};
use super::scan::NetworkArgs;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The site to check: a domain (`www.example.com`) or a URL.
    pub target: String,
    /// Use a snapshot file (from `beian snapshot export`) instead of `--registry`.
    #[arg(long, value_name = "FILE", env = "BEIAN_SNAPSHOT")]
    pub snapshot: Option<PathBuf>,
    /// Verify the snapshot against this public keyring (from `beian keys export`).
    #[arg(long, value_name = "FILE", env = "BEIAN_KEYRING")]
    pub keyring: Option<PathBuf>,
    /// Print the JSON record instead of the report.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub network: NetworkArgs,
}

pub fn run(global: &Global, args: CheckArgs) -> anyhow::Result<i32> {
    let now = super::now();
    let mut config = common::load_config(global)?.scan;
    args.network.apply(&mut config)?;
    let snapshot = Arc::new(common::load_snapshot(
        global,
        args.snapshot.as_deref(),
        args.keyring.as_deref(),
        now,
    )?);
    super::scan::warn_if_old(&snapshot, config.snapshot_max_age_s, now);
    let policies = Arc::new(common::load_policies(None)?);
    let rt = common::runtime()?;
    let result = rt.block_on(async {
        let ctx = ScanContext::new(config, snapshot.clone(), policies.clone())?;
        anyhow::Ok(ctx.check(&args.target).await)
    })?;
    if args.json {
        println!("{}", serde_json::to_string(&result.record)?);
    } else {
        let required = policies
            .for_province(result.assessment.province)
            .required_number
            .as_str();
        print!(
            "{}",
            beian::advice::render_report(&result, &snapshot, required)
        );
    }
    Ok(
        if result.assessment.verdict == beian::verdict::Verdict::Compliant {
            0
        } else {
            1
        },
    )
}
