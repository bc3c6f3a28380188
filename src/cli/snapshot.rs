//! `beian snapshot export`: the read-only registry view for scanners (from the running
//! `serve` while it holds the registry, checked against the registry's keyring).

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
    match cmd {
        SnapshotCmd::Export { out } => {
            let s = match super::beside::open_for_read(g)? {
                super::beside::Access::Direct(reg) => {
                    let s = reg.snapshot(super::now())?;
                    reg.save_snapshot(&s, &out)
                        .with_context(|| format!("snapshot export {}", out.display()))?;
                    s
                }
                super::beside::Access::Service(svc) => {
                    let bytes = svc.get("/api/snapshot")?;
                    let dir = g.registry.as_deref().unwrap_or(std::path::Path::new("."));
                    let ring = beian::registry::issuance::Issuer::open(dir)?
                        .keyring()
                        .clone();
                    let name = out.display().to_string();
                    let s = beian::registry::snapshot::Snapshot::from_bytes(
                        &name,
                        &bytes,
                        Some(&ring),
                    )?;
                    beian::fsutil::write_atomic(&out, &bytes, None)
                        .with_context(|| format!("snapshot export {name}"))?;
                    s
                }
            };
            println!(
                "snapshot written: {} ({} filings)",
                out.display(),
                s.filings.len()
            );
            Ok(0)
        }
    }
}
