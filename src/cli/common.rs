//! Shared pieces of the subcommands: global options, the tokio runtime, configuration,
//! policy loading, and the registry view a scan judges against (a verified snapshot file, a
//! fresh registry snapshot, or the one a running `serve` keeps).

use std::path::{Path, PathBuf};

use anyhow::Context;

use beian::config::Config;
use beian::registry::snapshot::Snapshot;
use beian::verdict::PolicySet;

pub use super::Globals as Global;

/// A multi-threaded tokio runtime for the async subcommands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")
}

/// The configuration: `--config FILE` (or `BEIAN_CONFIG`), else `<registry>/beian.toml` when it
/// exists, else the defaults.
pub fn load_config(global: &Global) -> anyhow::Result<Config> {
    if let Some(p) = &global.config {
        return Ok(Config::load(p)?);
    }
    if let Some(dir) = &global.registry {
        let p = dir.join("beian.toml");
        if p.is_file() {
            return Ok(Config::load(&p)?);
        }
    }
    Ok(Config::default())
}

/// The public keyring snapshots are verified against: `--keyring FILE` (from `beian keys
/// export`), else the keyring of `--registry DIR`, else none (a snapshot is then checked
/// against the keyring it carries: integrity, not origin).
pub fn pinned_keyring(
    global: &Global,
    file: Option<&Path>,
) -> anyhow::Result<Option<beian::cert::Keyring>> {
    if let Some(p) = file {
        let text = beian::fsutil::read_bounded_string(p, beian::fsutil::MAX_TEXT_FILE)
            .with_context(|| format!("{}", p.display()))?;
        let ring = beian::cert::Keyring::from_json(&text)
            .with_context(|| format!("{}: not a beian keyring", p.display()))?;
        return Ok(Some(ring));
    }
    if let Some(dir) = &global.registry {
        if beian::registry::issuance::Issuer::keys_dir(dir)
            .join("keyring.json")
            .is_file()
        {
            return Ok(Some(registry_keyring(dir)?));
        }
    }
    Ok(None)
}

/// The public keyring of the registry in `dir` (its `keys/`; the store is not opened).
fn registry_keyring(dir: &Path) -> anyhow::Result<beian::cert::Keyring> {
    Ok(beian::registry::issuance::Issuer::open(dir)?
        .keyring()
        .clone())
}

/// A fresh snapshot of the registry in `dir`; while `beian serve` holds its store, the
/// snapshot `serve` keeps fresh there (verified against the registry's keyring).
fn registry_snapshot(dir: &Path, database_url: Option<&str>, now: i64) -> anyhow::Result<Snapshot> {
    use beian::registry::store::StoreError;
    use beian::registry::RegistryError;
    match beian::registry::Registry::open_on(dir, database_url) {
        Ok(reg) => Ok(reg.snapshot(now)?),
        Err(RegistryError::Store(StoreError::Locked { holder, .. })) => {
            let path = dir.join(beian::registry::snapshot::SERVE_SNAPSHOT_FILE);
            let snap = Snapshot::load(&path, Some(&registry_keyring(dir)?)).with_context(|| {
                format!("the registry is in use{holder} and its serve snapshot cannot be read")
            })?;
            eprintln!(
                "note: the registry is in use{holder}; using the snapshot it keeps ({}, {} s old)",
                path.display(),
                snap.age(now)
            );
            Ok(snap)
        }
        Err(e) => Err(e.into()),
    }
}

/// The registry view a scan uses: `--snapshot FILE` (its signature verified against the pinned
/// keyring, see [`pinned_keyring`]), else a fresh snapshot of `--registry DIR`.
pub fn load_snapshot(
    global: &Global,
    file: Option<&Path>,
    keyring: Option<&Path>,
    now: i64,
) -> anyhow::Result<Snapshot> {
    if let Some(p) = file {
        let pinned = pinned_keyring(global, keyring)?;
        return load_snapshot_file(p, pinned.as_ref());
    }
    match &global.registry {
        Some(dir) => registry_snapshot(dir, global.database_url.as_deref(), now),
        None => anyhow::bail!(
            "no registry view: pass --registry DIR (or BEIAN_REGISTRY) or --snapshot FILE"
        ),
    }
}

/// A signed snapshot file, verified against `pinned` (or, saying so, against the keyring it
/// carries).
pub fn load_snapshot_file(
    p: &Path,
    pinned: Option<&beian::cert::Keyring>,
) -> anyhow::Result<Snapshot> {
    if pinned.is_none() {
        eprintln!(
            "note: {} is checked against the keyring it carries; pass --keyring FILE (from `beian keys export`) to pin the registry's keys",
            p.display()
        );
    }
    Ok(Snapshot::load(p, pinned)?)
}

/// Policies from a directory (`national.toml`, `provinces/*.toml`), or the built-in ones.
pub fn load_policies(dir: Option<&Path>) -> anyhow::Result<PolicySet> {
    let Some(dir) = dir else {
        return Ok(PolicySet::embedded()?);
    };
    let nat_path = dir.join("national.toml");
    let nat = beian::fsutil::read_bounded_string(&nat_path, beian::fsutil::MAX_TEXT_FILE)
        .with_context(|| format!("{}", nat_path.display()))?;
    let mut overrides = Vec::new();
    let prov_dir = dir.join("provinces");
    if prov_dir.is_dir() {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&prov_dir)
            .with_context(|| format!("{}", prov_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            let text = beian::fsutil::read_bounded_string(&p, beian::fsutil::MAX_TEXT_FILE)
                .with_context(|| format!("{}", p.display()))?;
            overrides.push((p.display().to_string(), text));
        }
    }
    let refs: Vec<(&str, &str)> = overrides
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    Ok(PolicySet::from_texts(
        &nat_path.display().to_string(),
        &nat,
        &refs,
    )?)
}

/// Whether an import file is JSON Lines (told by its first bytes, as uploads are).
pub fn is_json_lines(path: &Path) -> anyhow::Result<bool> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let n = f
        .read(&mut head)
        .with_context(|| format!("{}", path.display()))?;
    Ok(beian::tabular::detect(&head[..n]) == beian::tabular::UploadFormat::JsonLines)
}

/// Read a spreadsheet or CSV upload, refusing files over the upload limit.
pub fn read_upload(path: &Path) -> anyhow::Result<Vec<u8>> {
    beian::fsutil::read_bounded(path, beian::tabular::MAX_UPLOAD_BYTES as u64)
        .with_context(|| format!("{}", path.display()))
}
