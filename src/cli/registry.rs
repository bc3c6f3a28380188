//! `beian registry init DIR`: create a registry (store, first signing key, MIIT user).

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
    }
}
