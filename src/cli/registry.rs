//! `beian registry init DIR`: create a registry (store, first signing key, MIIT user).
//! `beian registry check DIR`: report what in a registry's store is damaged.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum RegistryCmd {
    /// Create a registry in DIR: the store, an ed25519 signing key (DIR/keys/, mode 0600) and
    /// the initial MIIT user, whose generated password is printed once.
    Init {
        /// Directory to create the registry in.
        dir: PathBuf,
    },
    /// Check a registry's store for damage: records that do not decode, index entries that
    /// lead elsewhere, a broken audit chain. Exit 0 when sound, 1 when damaged, 2 when it
    /// cannot be opened.
    Check {
        /// The registry directory.
        dir: PathBuf,
    },
}

pub fn run(cmd: RegistryCmd) -> anyhow::Result<i32> {
    match cmd {
        RegistryCmd::Init { dir } => {
            let (_reg, report) = beian::registry::Registry::init(&dir, super::now())
                .with_context(|| format!("registry init {}", dir.display()))?;
            println!("registry created: {}", dir.display());
            println!("signing key: {}", report.key_id);
            println!("MIIT user: {}", report.miit_username);
            println!("MIIT password (shown once): {}", report.miit_password);
            Ok(0)
        }
        RegistryCmd::Check { dir } => {
            let reg = beian::registry::Registry::open(&dir)
                .with_context(|| format!("registry check {}", dir.display()))?;
            let report = reg.check()?;
            println!(
                "{} subjects, {} filings, {} audit records",
                report.subjects, report.filings, report.audit_records
            );
            for p in &report.problems {
                println!("damaged: {p}");
            }
            if report.problems.is_empty() {
                println!("ok: no damage found");
                Ok(0)
            } else {
                println!("{} problems", report.problems.len());
                Ok(1)
            }
        }
    }
}
