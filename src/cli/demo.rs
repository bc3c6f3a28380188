//! `beian demo`: build a sample registry, start a loopback fleet with one planted problem per
//! site, scan it, print the report, and check the findings against what was planted.

use std::path::PathBuf;

use super::common;

#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Keep the demo's registry and scan records in DIR (default: a temporary directory,
    /// removed afterwards).
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

pub fn run(args: DemoArgs) -> anyhow::Result<i32> {
    let now = super::now();
    let (dir, temporary) = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            (d.clone(), false)
        }
        None => (beian::demo::work_dir()?, true),
    };
    let rt = common::runtime()?;
    let outcome = rt.block_on(beian::demo::run(&dir, now));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if temporary {
                let _ = std::fs::remove_dir_all(&dir);
            }
            return Err(e.into());
        }
    };
    if !temporary {
        std::fs::write(dir.join("scan.jsonl"), &outcome.records_jsonl)?;
    }
    println!("{}", outcome.summary_markdown);
    println!("## Planted vs found\n\n{}", outcome.render_table());
    let agree = outcome.sites.iter().filter(|s| s.agrees()).count();
    println!(
        "{agree}/{} sites: the scan found exactly what was planted.",
        outcome.sites.len()
    );
    if let Some(d) = &args.keep {
        println!("registry and scan records kept in {}", d.display());
    }
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(if outcome.all_agree() { 0 } else { 1 })
}
