//! `beian extract FILE...`: decode each file as a fetched page would be, and print what a
//! reader sees (ICP numbers with link and placement facts, licences, PSB numbers) as JSON Lines.
//! An ICP number read from `<template>` content carries `"via":"template"`; page facts follow
//! (`text_chars`, `scripts`, and `template_text` / `challenge` when set).

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
                let mut item = serde_json::json!({
                    "number": m.number.to_string(),
                    "linked": m.linked,
                    "link_host": m.link_host,
                    "in_footer": m.in_footer,
                });
                // Ordinary text says nothing; `<template>` content says `"via":"template"`.
                if !m.via.is_text() {
                    item["via"] = m.via.as_str().into();
                }
                item
            })
            .collect();
        let facts = &page.extraction.facts;
        let mut line = serde_json::json!({
            "file": path.display().to_string(),
            "charset": page.charset,
            "icp": icp,
            "licences": page.extraction.licences.iter().map(|l| l.to_string()).collect::<Vec<_>>(),
            "psb": page.extraction.psb.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "text_chars": facts.text_chars,
            "scripts": facts.scripts,
        });
        if facts.template_text {
            line["template_text"] = true.into();
        }
        if let Some(name) = &facts.challenge {
            line["challenge"] = name.as_str().into();
        }
        writeln!(out, "{line}")?;
    }
    Ok(0)
}
