//! `beian snapshot export`: the read-only registry view for scanners.

use std::path::PathBuf;

use anyhow::Context;

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum SnapshotCmd {
    /// Write every filing ever approved (numbers, status, domains, serials, expiry,
    /// providers) and the public keyring to FILE.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: SnapshotCmd, g: &Globals) -> anyhow::Result<i32> {
    let reg = g.open()?;
    match cmd {
        SnapshotCmd::Export { out } => {
            let s = reg.snapshot(super::now())?;
            reg.save_snapshot(&s, &out)
                .with_context(|| format!("snapshot export {}", out.display()))?;
            println!(
                "snapshot written: {} ({} filings)",
                out.display(),
                s.filings.len()
            );
            Ok(0)
        }
    }
}
