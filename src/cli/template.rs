//! `beian template`: write an upload template (`.xlsx`) for website filings or IP filings.

use std::path::PathBuf;

use anyhow::Context;
use beian::tabular::{template, TableKind};

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum Kind {
    /// Website filings (`beian filing import`).
    Filing,
    /// IP filings (`beian ip-filing import`).
    Ip,
}

#[derive(clap::Args, Debug)]
pub struct TemplateArgs {
    #[arg(long, value_enum, default_value_t = Kind::Filing)]
    kind: Kind,
    /// Where to write the `.xlsx`.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(a: TemplateArgs) -> anyhow::Result<i32> {
    let kind = match a.kind {
        Kind::Filing => TableKind::Filing,
        Kind::Ip => TableKind::Ip,
    };
    let bytes = template::write(kind)?;
    beian::fsutil::write_atomic(&a.out, &bytes, None)
        .with_context(|| format!("{}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} columns on sheet {}, code tables and instructions)",
        a.out.display(),
        kind.columns().len(),
        kind.sheet_name()
    );
    Ok(0)
}
