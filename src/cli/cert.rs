//! `beian cert`: export a filing's current certificate, inspect a certificate file, and
//! verify one against the registry for a domain.

use std::path::PathBuf;

use anyhow::Context;

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum CertCmd {
    /// Write the current certificate of the filing covering DOMAIN (to stdout or --out).
    Export {
        #[arg(long)]
        domain: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Show what a certificate file says (no registry needed).
    Inspect { file: PathBuf },
    /// Verify a certificate file for DOMAIN against the registry's keyring and filing state.
    /// Exit 0 when valid, 1 otherwise.
    Verify {
        file: PathBuf,
        #[arg(long)]
        domain: String,
    },
}

pub fn run(cmd: CertCmd, g: &Globals) -> anyhow::Result<i32> {
    match cmd {
        CertCmd::Export { domain, out } => {
            let reg = g.open()?;
            let c = reg.certificate_for(&domain)?;
            match out {
                Some(p) => {
                    std::fs::write(&p, c.text.as_bytes())
                        .with_context(|| format!("{}", p.display()))?;
                    println!("certificate serial {} written: {}", c.serial, p.display());
                }
                None => print!("{}", c.text),
            }
            Ok(0)
        }
        CertCmd::Inspect { file } => {
            let bytes = beian::fsutil::read_bounded(&file, beian::fsutil::MAX_CERT_FILE)
                .with_context(|| format!("{}", file.display()))?;
            println!(
                "{}",
                inspect(&bytes).with_context(|| format!("{}", file.display()))?
            );
            Ok(0)
        }
        CertCmd::Verify { file, domain } => {
            let bytes = beian::fsutil::read_bounded(&file, beian::fsutil::MAX_CERT_FILE)
                .with_context(|| format!("{}", file.display()))?;
            let reg = g.open()?;
            let host = beian::domain::normalise_host(&domain).context("--domain")?;
            let verdict = verify(&bytes, &reg, &host)?;
            println!("{}", serde_json::to_string(&verdict)?);
            Ok(
                if matches!(verdict, beian::cert::CertVerdict::Valid { .. }) {
                    0
                } else {
                    1
                },
            )
        }
    }
}

fn inspect(bytes: &[u8]) -> anyhow::Result<String> {
    let cert = beian::cert::parse(bytes)?;
    Ok(beian::cert::inspect(&cert))
}

fn verify(
    bytes: &[u8],
    reg: &beian::registry::Registry,
    host: &str,
) -> anyhow::Result<beian::cert::CertVerdict> {
    let keyring = reg.keyring();
    Ok(beian::cert::verify(
        bytes,
        &keyring,
        host,
        &reg.lookup(),
        super::now(),
    ))
}
