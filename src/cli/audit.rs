//! `beian audit verify`: walk the hash-chained audit log.

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum AuditCmd {
    /// Check every link of the audit chain; exit 1 and name the first broken record if any.
    Verify,
}

pub fn run(cmd: AuditCmd, g: &Globals) -> anyhow::Result<i32> {
    let reg = g.open()?;
    match cmd {
        AuditCmd::Verify => {
            let r = reg.verify_audit()?;
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
