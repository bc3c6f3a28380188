//! `beian user set-contact USER --email … --mobile …`: where a user's login codes go, set by
//! the machine's operator on the registry directly (default role: miit).

use beian::accounts::service::Accounts;
use beian::accounts::Actor;

use super::Globals;

#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Set a user's email address and/or mobile number (login codes go there: email over
    /// SMTP when [mail] is configured, SMS through [sms] webhook_url). A value not given is
    /// kept. Default role: miit; a bureau may set the users it created.
    SetContact {
        /// The username (e.g. `miit`).
        user: String,
        /// An email address.
        #[arg(long)]
        email: Option<String>,
        /// A mainland mobile number (11 digits starting with 1).
        #[arg(long)]
        mobile: Option<String>,
    },
}

pub fn run(cmd: UserCmd, g: &Globals) -> anyhow::Result<i32> {
    match cmd {
        UserCmd::SetContact {
            user,
            email,
            mobile,
        } => {
            let reg = g.open()?;
            let actor = g.act_as.clone().unwrap_or(Actor::Miit);
            let c = Accounts::set_contact(
                reg.store(),
                &actor,
                &user,
                email.as_deref(),
                mobile.as_deref(),
                super::now(),
            )?;
            println!(
                "contact of {user}: email {}, mobile {}",
                c.email.as_deref().unwrap_or("-"),
                c.mobile.as_deref().unwrap_or("-")
            );
            Ok(0)
        }
    }
}
