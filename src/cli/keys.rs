//! `beian keys`: rotate the signing key (MIIT) and export the public keyring.

use std::path::PathBuf;

use anyhow::Context;

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum KeysCmd {
    /// Create a new signing key for new certificates; old keys keep verifying. With
    /// --compromised KEY_ID, that key is marked compromised first (default role: miit).
    Rotate {
        #[arg(long, value_name = "KEY_ID")]
        compromised: Option<String>,
    },
    /// Write the public keyring (JSON) for offline verifiers.
    Export {
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: KeysCmd, g: &Globals) -> anyhow::Result<i32> {
    let reg = g.open()?;
    match cmd {
        KeysCmd::Rotate { compromised } => {
            let r = reg.rotate_keys(
                g.act_as.as_ref().unwrap_or(&beian::accounts::Actor::Miit),
                compromised.as_deref(),
                super::now(),
            )?;
            if let Some(k) = &r.compromised {
                println!("marked compromised: {k}");
                println!(
                    "certificates re-issued under the new key: {} (their filers are notified)",
                    r.reissued.len()
                );
            }
            println!("current signing key: {}", r.current);
            Ok(0)
        }
        KeysCmd::Export { out } => {
            let json = reg.keyring().to_json();
            std::fs::write(&out, json).with_context(|| format!("{}", out.display()))?;
            println!("keyring written: {}", out.display());
            Ok(0)
        }
    }
}
