//! `beian filing …`: import, access verification, show, change, cancellation requests,
//! withdrawal, revocation, and provider changes.

use std::io::BufReader;
use std::path::PathBuf;

use anyhow::Context;
use beian::accounts::Actor;
use beian::registry::{DefaultRole, FilingKey, FilingView, Submitter};

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum FilingCmd {
    /// Import website filings from JSON Lines (format: README, seeds/demo/filings.jsonl), or
    /// from the filing template (`beian template`) as .xlsx, .xls or CSV; the format is told
    /// by the content. Each line is submitted by the first access provider it names, as an
    /// import-authorised ISP (or by --as). A row for a filing that provider already handles
    /// opens a change instead. Prints the counts and per-row errors (sheet, row, column);
    /// keeps the good rows. Progress acknowledgements (durable rows) go to stderr.
    Import {
        file: PathBuf,
        /// Lines per durable commit (each commit is acknowledged on stderr).
        #[arg(long, default_value_t = 1000)]
        chunk: usize,
        /// Print the report as JSON.
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
    /// An access provider verifies its access (default role: isp:NAME).
    VerifyAccess {
        #[arg(long)]
        provider: String,
        /// Every filing where this provider's verification is pending.
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// One filing (id, service number or domain).
        #[arg(long, required_unless_present = "all")]
        id: Option<String>,
    },
    /// Show one filing.
    Show {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
    /// Change an approved filing's domains; the old certificate stays valid until the bureau
    /// approves the change (default role: the filing's ICP user).
    Change {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long = "add-domain")]
        add: Vec<String>,
        #[arg(long = "remove-domain")]
        remove: Vec<String>,
    },
    /// Request cancellation; the bureau executes it in `review` (MIIT when a bureau asked;
    /// nobody executes their own request) (default role: the filing's ICP user). The
    /// requester changes or deletes it with `cancel-modify` / `cancel-delete`; the bureau (or
    /// MIIT) declines it with `filing withdraw`.
    Cancel {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        reason: String,
    },
    /// Ask for the annual review of an approved filing, from 60 days before it is due; the
    /// bureau confirms it in `review` and a new certificate is issued (default role: the
    /// filing's ICP user).
    Renew {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Change the reason of your own pending cancellation request (default role: the
    /// filing's ICP user).
    CancelModify {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        reason: String,
    },
    /// Delete your own pending cancellation request (default role: the filing's ICP user).
    CancelDelete {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Withdraw a pending cancellation request (default role: the bureau of the filing's
    /// province, or MIIT if the bureau made the request). Nobody withdraws their own request.
    Withdraw {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Revoke a filing directly (default role: miit; a bureau may revoke in its province).
    Revoke {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        reason: String,
        /// The filing's data was found false: it goes on the public list of such filings.
        #[arg(long)]
        false_information: bool,
    },
    /// An access provider cancels its access (default role: isp:PROVIDER).
    CancelAccess {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        provider: String,
    },
    /// Add an access provider, which must then verify (default role: the ICP user).
    AddProvider {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        provider: String,
    },
    /// Attach a pre-approval document to a category (default role: the ICP user).
    AttachDocument {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        category: String,
        #[arg(long)]
        document: String,
    },
    /// A pre-approval user confirms a category's approval document, or refuses it with
    /// --refuse REASON; the bureau approves only confirmed documents (default role:
    /// pre-approval).
    CheckDocument {
        #[command(flatten)]
        key: KeyArgs,
        #[arg(long)]
        category: String,
        #[arg(long)]
        refuse: Option<String>,
    },
    /// The pre-approval users' queue: documents attached and not yet checked.
    Documents {
        #[arg(long, value_enum, default_value_t = super::Format::Text)]
        format: super::Format,
    },
    /// Resubmit a rejected filing (default role: the ICP user).
    Resubmit {
        #[command(flatten)]
        key: KeyArgs,
    },
    /// List approved filings with no access provider left (empty shells).
    EmptyShells,
    /// The public list of filings revoked because their data was false.
    FalseInformation,
}

/// How to name one filing.
#[derive(clap::Args, Debug)]
#[group(required = true, multiple = false)]
pub struct KeyArgs {
    /// A filing number (service number, e.g. 京ICP备12345678号-1).
    #[arg(long)]
    pub number: Option<String>,
    /// A domain the filing covers.
    #[arg(long)]
    pub domain: Option<String>,
    /// The internal filing id (printed by import).
    #[arg(long)]
    pub id: Option<u64>,
}

impl KeyArgs {
    pub fn key(&self) -> anyhow::Result<FilingKey> {
        if let Some(n) = &self.number {
            let n =
                beian::number::FilingNumber::parse(n).with_context(|| "--number".to_string())?;
            return Ok(FilingKey::Number(n));
        }
        if let Some(d) = &self.domain {
            return Ok(FilingKey::Domain(d.clone()));
        }
        match self.id {
            Some(i) => Ok(FilingKey::Id(i)),
            None => anyhow::bail!("name a filing with --number, --domain or --id"),
        }
    }
}

impl KeyArgs {
    /// The key as the API's `:key` takes it (an id, a number or a domain).
    pub fn text(&self) -> String {
        match (&self.number, &self.domain, self.id) {
            (Some(n), _, _) => n.clone(),
            (_, Some(d), _) => d.clone(),
            (_, _, Some(i)) => i.to_string(),
            _ => String::new(),
        }
    }
}

/// Parse a free-form filing reference: an id, a filing number or a domain.
pub fn parse_key(text: &str) -> anyhow::Result<FilingKey> {
    if let Ok(i) = text.trim().parse::<u64>() {
        return Ok(FilingKey::Id(i));
    }
    if let Ok(n) = beian::number::FilingNumber::parse(text) {
        return Ok(FilingKey::Number(n));
    }
    Ok(FilingKey::Domain(text.to_string()))
}

pub fn print_view(v: &FilingView, format: super::Format) {
    match format {
        super::Format::Json => println!("{}", serde_json::to_string(v).unwrap_or_default()),
        super::Format::Text => {
            println!("id: {}", v.id);
            println!(
                "service number: {}",
                v.service_number.as_deref().unwrap_or("-")
            );
            println!(
                "subject number: {}",
                v.subject_number.as_deref().unwrap_or("-")
            );
            println!("status: {}", v.status);
            println!(
                "subject: {} ({}, {})",
                v.subject_name, v.subject_nature, v.province
            );
            println!("website: {} {}", v.name, v.homepage);
            println!("domains: {}", v.domains.join(", "));
            if !v.ips.is_empty() {
                println!("ips: {}", v.ips.join(", "));
            }
            let providers: Vec<String> = v
                .providers
                .iter()
                .map(|p| {
                    format!(
                        "{}{}",
                        p.name,
                        if p.verified { "" } else { " (unverified)" }
                    )
                })
                .collect();
            println!("providers: {}", providers.join(", "));
            if let Some(s) = v.cert_serial {
                println!(
                    "certificate serial: {s} (key {})",
                    v.cert_key_id.as_deref().unwrap_or("-")
                );
            }
            if let Some(e) = v.expires_at {
                println!("annual review due: {}", super::fmt_time(e));
            }
            if let Some(c) = &v.pending_change {
                println!("change under review: domains {}", c.join(", "));
            }
            if let Some(c) = &v.cancellation {
                println!("cancellation requested by {}: {}", c.requested_by, c.reason);
            }
            if let Some(r) = &v.rejection {
                println!("reason: {r}");
            }
            if v.empty_shell {
                println!("empty shell: no access provider left");
            }
        }
    }
}

fn done(what: &str, f: &beian::registry::model::Filing) {
    let number = f
        .number
        .as_ref()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "-".into());
    println!(
        "{what}: filing {} ({number}) is now {}",
        f.id,
        f.status_label()
    );
}

/// `filing show`: from the store, or through the running `serve` while it holds it.
fn show(g: &Globals, key: &KeyArgs, format: super::Format) -> anyhow::Result<i32> {
    let v = match super::beside::open_for_read(g)? {
        super::beside::Access::Direct(reg) => reg.filing_view_at(&key.key()?, super::now())?,
        super::beside::Access::Service(s) => {
            key.key()?;
            let path = format!("/api/filings/{}", super::beside::segment(&key.text()));
            s.get_json::<FilingView>(&path)?
        }
    };
    print_view(&v, format);
    Ok(0)
}

pub fn run(cmd: FilingCmd, g: &Globals) -> anyhow::Result<i32> {
    // Showing only reads: it works beside a running `serve` (through its API).
    let cmd = match cmd {
        FilingCmd::Show { key, format } => return show(g, &key, format),
        other => other,
    };
    let reg = g.open()?;
    // Without `--as`, each command acts in the role it names for the filing.
    let act = |key: &FilingKey, role: DefaultRole| -> anyhow::Result<Actor> {
        Ok(match &g.act_as {
            Some(a) => a.clone(),
            None => reg.acting_as(key, role)?,
        })
    };
    // Without `--as`, each row is submitted by the access provider it names.
    let submitter = match &g.act_as {
        Some(a) => Submitter::Actor(a),
        None => Submitter::RowProvider,
    };
    let now = super::now();
    match cmd {
        FilingCmd::Import {
            file,
            chunk,
            format,
        } => {
            let mut ack = |p: &beian::registry::ImportProgress| {
                eprintln!(
                    "acknowledged: {} rows read, {} kept, {} rejected (durable)",
                    p.lines_read, p.accepted, p.rejected
                );
            };
            let report = if super::common::is_json_lines(&file)? {
                // JSON Lines is streamed: files of millions of filings need no memory.
                let f =
                    std::fs::File::open(&file).with_context(|| format!("{}", file.display()))?;
                reg.import_jsonl(BufReader::new(f), submitter, now, chunk, &mut ack)
            } else {
                let bytes = super::common::read_upload(&file)?;
                reg.import_upload(&bytes, submitter, now, chunk, &mut ack)
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
                    println!("changed: {}", report.changed.len());
                    println!("unchanged: {}", report.unchanged.len());
                    println!("rejected: {}", report.errors.len());
                    for e in &report.errors {
                        println!("{}: {e}", file.display());
                    }
                    for n in &report.notes {
                        println!("note: {n}");
                    }
                    for (line, id) in &report.accepted {
                        println!("{unit} {line}: filing {id}");
                    }
                    for (line, id) in &report.changed {
                        println!("{unit} {line}: filing {id} (change opened)");
                    }
                    for (line, id) in &report.unchanged {
                        println!("{unit} {line}: filing {id} (unchanged)");
                    }
                }
            }
            Ok(0)
        }
        FilingCmd::VerifyAccess {
            provider,
            all: _,
            id,
        } => {
            let key = id.as_deref().map(parse_key).transpose()?;
            let done = reg.verify_access(
                &g.act_as.clone().unwrap_or_else(|| Actor::isp(&provider)),
                &provider,
                key.as_ref(),
                now,
            )?;
            println!("verified by {provider}: {} filings", done.len());
            Ok(0)
        }
        FilingCmd::Show { key, format } => show(g, &key, format),
        FilingCmd::Change { key, add, remove } => {
            let f = reg.change_domains(
                &act(&key.key()?, DefaultRole::Owner)?,
                &key.key()?,
                &add,
                &remove,
                now,
            )?;
            done("change submitted for review", &f);
            Ok(0)
        }
        FilingCmd::Cancel { key, reason } => {
            let f = reg.request_cancellation(
                &act(&key.key()?, DefaultRole::Owner)?,
                &key.key()?,
                &reason,
                now,
            )?;
            done("cancellation requested", &f);
            Ok(0)
        }
        FilingCmd::Renew { key } => {
            let f =
                reg.request_renewal(&act(&key.key()?, DefaultRole::Owner)?, &key.key()?, now)?;
            done("annual review requested", &f);
            Ok(0)
        }
        FilingCmd::CancelModify { key, reason } => {
            let f = reg.modify_cancellation(
                &act(&key.key()?, DefaultRole::Owner)?,
                &key.key()?,
                &reason,
                now,
            )?;
            done("cancellation request changed", &f);
            Ok(0)
        }
        FilingCmd::CancelDelete { key } => {
            let f =
                reg.delete_cancellation(&act(&key.key()?, DefaultRole::Owner)?, &key.key()?, now)?;
            done("cancellation request deleted", &f);
            Ok(0)
        }
        FilingCmd::Withdraw { key } => {
            let f = reg.withdraw_cancellation(
                &act(&key.key()?, DefaultRole::Reviewer)?,
                &key.key()?,
                now,
            )?;
            done("cancellation request withdrawn", &f);
            Ok(0)
        }
        FilingCmd::Revoke {
            key,
            reason,
            false_information,
        } => {
            let f = if false_information {
                reg.revoke_for_false_information(
                    &act(&key.key()?, DefaultRole::Miit)?,
                    &key.key()?,
                    &reason,
                    now,
                )?
            } else {
                reg.revoke(
                    &act(&key.key()?, DefaultRole::Miit)?,
                    &key.key()?,
                    &reason,
                    now,
                )?
            };
            done("revoked", &f);
            Ok(0)
        }
        FilingCmd::CancelAccess { key, provider } => {
            let f = reg.cancel_access(
                &g.act_as.clone().unwrap_or_else(|| Actor::isp(&provider)),
                &key.key()?,
                &provider,
                now,
            )?;
            done("access cancelled", &f);
            if f.is_empty_shell() {
                println!("no access provider left: filing {} is an empty shell", f.id);
            }
            Ok(0)
        }
        FilingCmd::AddProvider { key, provider } => {
            let f = reg.add_provider(
                &act(&key.key()?, DefaultRole::Owner)?,
                &key.key()?,
                &provider,
                now,
            )?;
            done("provider added (awaiting its verification)", &f);
            Ok(0)
        }
        FilingCmd::AttachDocument {
            key,
            category,
            document,
        } => {
            let f = reg.attach_pre_approval(
                &act(&key.key()?, DefaultRole::Owner)?,
                &key.key()?,
                &category,
                &document,
                now,
            )?;
            done("document attached", &f);
            Ok(0)
        }
        FilingCmd::CheckDocument {
            key,
            category,
            refuse,
        } => {
            let f = reg.check_pre_approval(
                &act(&key.key()?, DefaultRole::PreApproval)?,
                &key.key()?,
                &category,
                refuse.as_deref(),
                now,
            )?;
            done(
                if refuse.is_some() {
                    "document refused"
                } else {
                    "document confirmed"
                },
                &f,
            );
            Ok(0)
        }
        FilingCmd::Documents { format } => {
            for f in reg.pre_approval_queue()? {
                for c in f
                    .categories
                    .iter()
                    .filter(|c| c.pre_approval && c.document.is_some() && c.check.is_none())
                {
                    match format {
                        super::Format::Json => println!(
                            "{}",
                            serde_json::json!({"filing": f.id, "name": f.name,
                                "domains": f.domains, "category": c.category,
                                "document": c.document})
                        ),
                        super::Format::Text => println!(
                            "filing {}\t{}\t{}\t{}",
                            f.id,
                            f.name,
                            c.category,
                            c.document.as_deref().unwrap_or("")
                        ),
                    }
                }
            }
            Ok(0)
        }
        FilingCmd::Resubmit { key } => {
            let f = reg.resubmit(&act(&key.key()?, DefaultRole::Owner)?, &key.key()?, now)?;
            done("resubmitted", &f);
            Ok(0)
        }
        FilingCmd::FalseInformation => {
            for p in reg.false_information_list()? {
                println!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    super::fmt_time(p.revoked_at),
                    p.service_number.unwrap_or_default(),
                    p.province,
                    p.subject_name,
                    p.website_name,
                    p.domains.join(",")
                );
            }
            Ok(0)
        }
        FilingCmd::EmptyShells => {
            for f in reg.empty_shells()? {
                let number = f.number.as_ref().map(|n| n.to_string()).unwrap_or_default();
                let domains: Vec<String> = f.domains.iter().map(|d| d.to_string()).collect();
                println!("{}\t{number}\t{}", f.id, domains.join(","));
            }
            Ok(0)
        }
    }
}
