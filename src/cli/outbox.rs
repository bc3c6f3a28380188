//! `beian outbox`: the messages (registration and login codes, reset tokens) that were not
//! delivered by SMTP or the SMS webhook, for an operator to read. While `serve` holds the
//! registry, read through its API (as miit).

use beian::accounts::service::{Accounts, Message};

use super::Globals;

#[derive(clap::Args, Debug)]
pub struct OutboxArgs {
    /// Only messages to this address, mobile number or `user:<username>`.
    #[arg(long)]
    pub to: Option<String>,
    /// Print JSON Lines instead of text.
    #[arg(long, value_enum, default_value_t = super::Format::Text)]
    pub format: super::Format,
}

pub fn run(g: &Globals, args: OutboxArgs) -> anyhow::Result<i32> {
    let msgs = match super::beside::open_for_read(g)? {
        super::beside::Access::Direct(reg) => Accounts::outbox(reg.store())?,
        super::beside::Access::Service(s) => s.get_json::<Vec<Message>>("/api/outbox")?,
    };
    for m in msgs
        .iter()
        .filter(|m| args.to.as_ref().is_none_or(|t| *t == m.to))
    {
        match args.format {
            super::Format::Json => println!("{}", serde_json::to_string(m)?),
            super::Format::Text => {
                println!(
                    "{}  {:?} to {}: {}\n{}\n",
                    super::fmt_time(m.created_at),
                    m.channel,
                    m.to,
                    m.subject,
                    m.body
                );
            }
        }
    }
    Ok(0)
}
