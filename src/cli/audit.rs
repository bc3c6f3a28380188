//! `beian audit verify`: walk the hash-chained audit log (through the running `serve` while
//! it holds the registry).

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum AuditCmd {
    /// Check every link of the audit chain; exit 1 and name the first broken record if any.
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
                None => {
                    println!("audit chain ok: {} records", r.records);
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
