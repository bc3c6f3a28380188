//! `beian extract FILE...`: decode each file as a fetched page would be, and print what a
//! reader sees (ICP numbers with link and placement facts, licences, PSB numbers) as JSON Lines.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct ExtractArgs {
    /// HTML files to read.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: ExtractArgs) -> anyhow::Result<i32> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for path in &args.files {
        let bytes = beian::fsutil::read_bounded(path, beian::fsutil::MAX_PAGE_FILE)
            .with_context(|| format!("{}", path.display()))?;
        let page = beian::extract::extract_document(&bytes, None);
        let icp: Vec<_> = page
            .extraction
            .icp
            .iter()
            .map(|m| {
                serde_json::json!({
                    "number": m.number.to_string(),
                    "linked": m.linked,
                    "link_host": m.link_host,
                    "in_footer": m.in_footer,
                })
            })
            .collect();
        let line = serde_json::json!({
            "file": path.display().to_string(),
            "charset": page.charset,
            "icp": icp,
            "licences": page.extraction.licences.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
            "psb": page.extraction.psb.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        });
        writeln!(out, "{line}")?;
    }
    Ok(0)
}
