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
    /// Verify a certificate file for DOMAIN. Against the registry (--registry): keys and
    /// filing state. Without a registry: against a public keyring (--keyring, from `beian keys
    /// export` or GET /api/keyring) and, with --snapshot, the filing state of that snapshot;
    /// with the keyring alone the filing's current state is not checked (and says so).
    /// Exit 0 when valid, 1 otherwise.
    Verify {
        file: PathBuf,
        #[arg(long)]
        domain: String,
        /// A public keyring file: verify offline, with no registry.
        #[arg(long, value_name = "FILE", env = "BEIAN_KEYRING")]
        keyring: Option<PathBuf>,
        /// A signed registry snapshot (from `beian snapshot export`): the filing state to
        /// check against, offline.
        #[arg(long, value_name = "FILE", env = "BEIAN_SNAPSHOT")]
        snapshot: Option<PathBuf>,
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
        CertCmd::Verify {
            file,
            domain,
            keyring,
            snapshot,
        } => {
            let bytes = beian::fsutil::read_bounded(&file, beian::fsutil::MAX_CERT_FILE)
                .with_context(|| format!("{}", file.display()))?;
            let host = beian::domain::normalise_host(&domain).context("--domain")?;
            let now = super::now();
            let verdict = match (&keyring, &snapshot) {
                (None, None) => {
                    let reg = g.open()?;
                    verify(&bytes, &reg, &host)?
                }
                (_, Some(snap)) => {
                    let pinned = super::common::pinned_keyring(g, keyring.as_deref())?;
                    let s = super::common::load_snapshot_file(snap, pinned.as_ref())?;
                    let ring = pinned.unwrap_or_else(|| s.keyring.clone());
                    beian::cert::verify(&bytes, &ring, &host, &s, now)
                }
                (Some(k), None) => {
                    let ring = super::common::pinned_keyring(g, Some(k))?
                        .context("--keyring: no keyring read")?;
                    let v = beian::cert::verify_offline(&bytes, &ring, &host, now);
                    println!(
                        "{}",
                        serde_json::to_string(&serde_json::json!({
                            "verdict": v,
                            "filing_state": "not_checked",
                            "note": "signature, key, domain and expiry checked against the keyring; whether the filing is still active and this is its current certificate needs the registry or a snapshot (--snapshot)",
                        }))?
                    );
                    return Ok(if matches!(v, beian::cert::CertVerdict::Valid { .. }) {
                        0
                    } else {
                        1
                    });
                }
            };
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
