//! `beian audit verify`: walk the hash-chained audit log and check the stored state against it
//! (through the running `serve` while it holds the registry).

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum AuditCmd {
    /// Check every link of the audit chain and that every stored record is what the log last
    /// wrote; exit 1 and name the first broken link or the records edited, added or removed
    /// outside the log.
    Verify,
}

pub fn run(cmd: AuditCmd, g: &Globals) -> anyhow::Result<i32> {
    match cmd {
        AuditCmd::Verify => {
            let r: beian::registry::store::AuditReport = match super::beside::open_for_read(g)? {
                super::beside::Access::Direct(reg) => reg.verify_audit()?,
                super::beside::Access::Service(s) => s.get_json("/api/audit/verify")?,
            };
            match &r.first_broken {
                None if r.state_problems > 0 => {
                    println!(
                        "audit chain ok: {} records, but {} of {} stored records are not what the log wrote:",
                        r.records, r.state_problems, r.state_records
                    );
                    for p in &r.state {
                        println!("  {p}");
                    }
                    if r.state_problems as usize > r.state.len() {
                        println!("  … and {} more", r.state_problems as usize - r.state.len());
                    }
                    Ok(1)
                }
                None => {
                    println!(
                        "audit chain ok: {} records; {} stored records match it",
                        r.records, r.state_records
                    );
                    Ok(0)
                }
                Some((seq, why)) => {
                    println!(
                        "audit chain broken at record {seq}: {why} ({} records verified before it)",
                        r.records
                    );
                    Ok(1)
                }
            }
        }
    }
}
