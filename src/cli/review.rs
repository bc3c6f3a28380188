//! `beian review`: the bureau's manual or automatic review (default role: the bureau of each
//! filing's province).

use beian::accounts::Actor;
use beian::registry::{DefaultRole, FilingKey};

use super::Globals;

#[derive(clap::Args, Debug)]
pub struct ReviewArgs {
    /// Approve everything awaiting review (submissions, changes, cancellation requests);
    /// numbers are always generated.
    #[arg(long, conflicts_with_all = ["approve", "reject", "list"])]
    pub auto: bool,
    /// Approve one filing (id, service number or domain).
    #[arg(long, value_name = "ID", conflicts_with_all = ["reject", "list"])]
    pub approve: Option<String>,
    /// With --approve: the number to assign (a subject or service number); generated if absent.
    #[arg(long, requires = "approve")]
    pub number: Option<String>,
    /// Reject one filing, returning it with --reason.
    #[arg(long, value_name = "ID", requires = "reason", conflicts_with = "list")]
    pub reject: Option<String>,
    #[arg(long)]
    pub reason: Option<String>,
    /// List the review queue (the default when no other mode is given).
    #[arg(long)]
    pub list: bool,
    /// List the annual reviews that are overdue, or due within --due-within days (rule 5);
    /// `--as bureau:<province>` lists one province.
    #[arg(long, conflicts_with_all = ["auto", "approve", "reject", "list"])]
    pub annual: bool,
    /// With --annual: also those due within this many days (default 0: overdue only).
    #[arg(long, value_name = "DAYS", requires = "annual", default_value_t = 0)]
    pub due_within: u32,
}

pub fn run(a: ReviewArgs, g: &Globals) -> anyhow::Result<i32> {
    let reg = g.open()?;
    let actor = g.act_as.as_ref();
    let now = super::now();
    // Without `--as`, the bureau of each filing's province acts.
    let reviewer = |key: &FilingKey| -> anyhow::Result<Actor> {
        Ok(match actor {
            Some(a) => a.clone(),
            None => reg.acting_as(key, DefaultRole::Reviewer)?,
        })
    };
    if a.auto {
        let r = match actor {
            Some(a) => reg.review_auto(a, now)?,
            None => reg.review_auto_by_each_bureau(now)?,
        };
        println!("approved: {}", r.approved.len());
        for (id, number, what) in &r.approved {
            println!("filing {id}: {what} approved: {number}");
        }
        for (id, why) in &r.refused {
            println!("filing {id}: not approved: {why}");
        }
        return Ok(0);
    }
    if let Some(id) = &a.approve {
        let number = match &a.number {
            Some(n) => Some(
                beian::number::FilingNumber::parse(n)
                    .map_err(|e| anyhow::anyhow!("--number: {e}"))?,
            ),
            None => None,
        };
        let key = super::filing::parse_key(id)?;
        let f = reg.review_approve(&reviewer(&key)?, &key, number, now)?;
        let n = f.number.as_ref().map(|n| n.to_string()).unwrap_or_default();
        println!(
            "approved: filing {} {n} is now {} (certificate serial {})",
            f.id,
            f.status_label(),
            f.cert_serial
        );
        return Ok(0);
    }
    if a.annual {
        let province = match actor {
            Some(Actor::Bureau { province }) => Some(*province),
            _ => None,
        };
        let within = i64::from(a.due_within) * 86_400;
        for (f, s) in reg.annual_reviews(province, now, within)? {
            let due = f.expires_at.unwrap_or(now);
            let number = f.number.as_ref().map(|n| n.to_string()).unwrap_or_default();
            println!(
                "{}	{number}	{}	{}	due {}	{}",
                f.id,
                s.province,
                f.status_label_at(now),
                super::fmt_time(due),
                s.name
            );
        }
        return Ok(0);
    }
    if let Some(id) = &a.reject {
        let reason = a.reason.clone().unwrap_or_default();
        let key = super::filing::parse_key(id)?;
        let f = reg.review_reject(&reviewer(&key)?, &key, &reason, now)?;
        println!(
            "rejected: filing {} is now {}: {reason}",
            f.id,
            f.status_label()
        );
        return Ok(0);
    }
    let province = match actor {
        Some(Actor::Bureau { province }) => Some(*province),
        _ => None,
    };
    for f in reg.review_queue(province)? {
        let domains: Vec<String> = f.domains.iter().map(|d| d.to_string()).collect();
        println!(
            "{}\t{}\t{}\t{}",
            f.id,
            f.status_label(),
            f.name,
            domains.join(",")
        );
    }
    Ok(0)
}
