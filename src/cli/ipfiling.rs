//! `beian ip-filing …`: report address blocks (add), import them (JSON Lines or the IP
//! template), delete them, list them and the unit-information table.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;
use beian::registry::ipfiling::IpFilingInput;
use beian::registry::Submitter;

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum IpFilingCmd {
    /// Report one address block (default role: isp:PROVIDER; ISPs report their own blocks,
    /// ip-reporter, bureau and miit any). Re-reporting the same block updates it.
    Add {
        /// The ISP holding the block.
        #[arg(long)]
        provider: String,
        /// The block, CIDR with host bits zero (e.g. 203.0.113.0/24).
        #[arg(long)]
        network: String,
        /// unallocated | allocated | reallocated | customer | router_port.
        #[arg(long, default_value = "allocated")]
        status: String,
        /// Whom it is allocated to (default for `allocated`: the provider itself); for
        /// `reallocated`, the other ISP; for `customer`, the customer.
        #[arg(long)]
        allocated_to: Option<String>,
        /// Where it came from: APNIC, CNNIC, another ISP's name.
        #[arg(long)]
        source: Option<String>,
        /// Province abbreviation where it is used (京, 沪, …).
        #[arg(long)]
        province: Option<String>,
        #[arg(long)]
        city: Option<String>,
    },
    /// Import IP filings from JSON Lines, or from the IP template (`beian template --kind
    /// ip`) as .xlsx, .xls or CSV (told by content); keeps good rows, prints per-row errors.
    ///
    /// One object per line. Fields: `provider` (required, the ISP holding the block),
    /// `network` (required, CIDR, host bits zero), `source` (APNIC, CNNIC, another ISP),
    /// `status` (unallocated | allocated | reallocated | customer | router_port; default
    /// allocated), `allocated_to` (the user; the other ISP for reallocated; the customer),
    /// `province` (abbreviation, needed for customer blocks and blocks allocated to others),
    /// `city`. An unallocated block takes nothing else. Example: seeds/demo/ip_filings.jsonl.
    /// Each line is reported by --as, or by isp:<provider>.
    Import {
        file: PathBuf,
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
    /// Delete one IP filing (default role: isp:<its provider>).
    Delete {
        #[arg(long)]
        id: u64,
    },
    /// The IP unit-information table: each unit using addresses, with its provider, place and
    /// blocks.
    Units {
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
    /// List IP filings.
    List {
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
}

pub fn run(cmd: IpFilingCmd, g: &Globals) -> anyhow::Result<i32> {
    let reg = g.open()?;
    // Without `--as`, each block is reported by its own provider.
    let submitter = match &g.act_as {
        Some(a) => Submitter::Actor(a),
        None => Submitter::RowProvider,
    };
    let now = super::now();
    match cmd {
        IpFilingCmd::Add {
            provider,
            network,
            status,
            allocated_to,
            source,
            province,
            city,
        } => {
            let allocated_to = match (status.trim(), allocated_to) {
                ("allocated", None) => Some(provider.clone()),
                (_, a) => a,
            };
            let input = IpFilingInput {
                provider,
                network,
                source,
                status: Some(status),
                allocated_to,
                province,
                city,
            };
            let f = reg.file_ip_block(&submitter.for_row(&input.provider), &input, now)?;
            println!(
                "IP filing {}: {} held by {} ({})",
                f.id,
                f.network,
                f.provider,
                f.status.as_str()
            );
            Ok(0)
        }
        IpFilingCmd::Import { file, format } => {
            let report = if super::common::is_json_lines(&file)? {
                let f =
                    std::fs::File::open(&file).with_context(|| format!("{}", file.display()))?;
                reg.import_ip_jsonl(BufReader::new(f), submitter, now)
            } else {
                let bytes = super::common::read_upload(&file)?;
                reg.import_ip_upload(&bytes, submitter, now)
            }
            .with_context(|| format!("{}", file.display()))?;
            match format {
                super::Format::Json => println!("{}", serde_json::to_string(&report)?),
                super::Format::Text => {
                    println!("format: {}", report.format);
                    let unit = if report.format == "jsonl" {
                        "line"
                    } else {
                        "row"
                    };
                    println!("accepted: {}", report.accepted.len());
                    println!("rejected: {}", report.errors.len());
                    for e in &report.errors {
                        println!("{}: {e}", file.display());
                    }
                    for n in &report.notes {
                        println!("note: {n}");
                    }
                    for (line, id) in &report.accepted {
                        println!("{unit} {line}: IP filing {id}");
                    }
                }
            }
            Ok(0)
        }
        IpFilingCmd::Delete { id } => {
            let provider = reg.ip_filing(id)?.provider;
            reg.delete_ip_filing(&submitter.for_row(&provider), id, now)?;
            println!("IP filing {id} deleted");
            Ok(0)
        }
        IpFilingCmd::Units { format } => {
            for u in reg.ip_units()? {
                match format {
                    super::Format::Json => println!("{}", serde_json::to_string(&u)?),
                    super::Format::Text => println!(
                        "{}\t{}\t{}\t{}\t{}",
                        u.unit,
                        u.provider,
                        u.province.map(String::from).unwrap_or_else(|| "-".into()),
                        u.city.as_deref().unwrap_or("-"),
                        u.blocks
                            .iter()
                            .map(|b| format!("{} ({})", b.network, b.status.label_zh()))
                            .collect::<Vec<_>>()
                            .join(", "),
                    ),
                }
            }
            Ok(0)
        }
        IpFilingCmd::List { format } => {
            let all = reg.ip_filings()?;
            for f in &all {
                match format {
                    super::Format::Json => println!("{}", serde_json::to_string(f)?),
                    super::Format::Text => println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        f.id,
                        f.network,
                        f.provider,
                        f.status.as_str(),
                        f.allocated_to.as_deref().unwrap_or("-"),
                        f.province.map(String::from).unwrap_or_else(|| "-".into()),
                    ),
                }
            }
            Ok(0)
        }
    }
}
