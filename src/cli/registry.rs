//! `beian registry init DIR [--postgres URL]`: create a registry (store, first signing key,
//! MIIT user), its store in DIR (sled) or in a PostgreSQL database.
//! `beian registry check DIR`: report what in a registry's store is damaged.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Subcommand, Debug)]
pub enum RegistryCmd {
    /// Create a registry in DIR: the store, an ed25519 signing key (DIR/keys/, mode 0600) and
    /// the initial MIIT user, whose generated password is printed once.
    Init {
        /// Directory to create the registry in.
        dir: PathBuf,
        /// The MIIT user's email address (login codes go there over SMTP when [mail] is set).
        #[arg(long, value_name = "ADDRESS")]
        miit_email: Option<String>,
        /// The MIIT user's mobile number (login codes go there through [sms] webhook_url).
        #[arg(long, value_name = "NUMBER")]
        miit_mobile: Option<String>,
        /// Keep the store in this PostgreSQL database (`postgres://USER:PASSWORD@HOST:PORT/DB`;
        /// default: --database / BEIAN_DATABASE_URL, else sled in DIR/store). Its schema is
        /// created; DIR keeps the keys and the URL (DIR/database.url, mode 0600). Several
        /// `serve` processes may share the database (each with a copy of DIR).
        #[arg(long, value_name = "URL")]
        postgres: Option<String>,
    },
    /// Check a registry's store for damage: records that do not decode, index entries that
    /// lead elsewhere, a broken audit chain. Exit 0 when sound, 1 when damaged, 2 when it
    /// cannot be opened.
    Check {
        /// The registry directory.
        dir: PathBuf,
    },
}

pub fn run(cmd: RegistryCmd, g: &super::Globals) -> anyhow::Result<i32> {
    match cmd {
        RegistryCmd::Init {
            dir,
            miit_email,
            miit_mobile,
            postgres,
        } => {
            use beian::accounts::service::{validate_email, validate_mobile, Accounts};
            // Checked before anything is created.
            if let Some(e) = &miit_email {
                validate_email(e).context("--miit-email")?;
            }
            if let Some(m) = &miit_mobile {
                validate_mobile(m).context("--miit-mobile")?;
            }
            let now = super::now();
            let backend = match postgres.or_else(|| g.database_url.clone()) {
                Some(url) => beian::registry::Backend::Postgres { url },
                None => beian::registry::Backend::Sled,
            };
            let (reg, report) = beian::registry::Registry::init_on(&dir, &backend, now)
                .with_context(|| format!("registry init {}", dir.display()))?;
            if miit_email.is_some() || miit_mobile.is_some() {
                Accounts::set_contact(
                    reg.store(),
                    &beian::accounts::Actor::Miit,
                    &report.miit_username,
                    miit_email.as_deref(),
                    miit_mobile.as_deref(),
                    now,
                )?;
            }
            println!("registry created: {}", dir.display());
            if let beian::registry::Backend::Postgres { url } = &backend {
                println!(
                    "store: PostgreSQL {}",
                    beian::registry::store::postgres::redacted(url)
                );
            }
            println!("signing key: {}", report.key_id);
            println!("MIIT user: {}", report.miit_username);
            if miit_email.is_some() || miit_mobile.is_some() {
                println!(
                    "MIIT contact: email {}, mobile {}",
                    miit_email.as_deref().unwrap_or("-"),
                    miit_mobile.as_deref().unwrap_or("-")
                );
            }
            println!("MIIT password (shown once): {}", report.miit_password);
            Ok(0)
        }
        RegistryCmd::Check { dir } => {
            let reg = beian::registry::Registry::open_on(&dir, g.database_url.as_deref())
                .with_context(|| format!("registry check {}", dir.display()))?;
            let mut report = reg.check()?;
            // Generic records of every kind: the registry core does not know them all.
            let store = reg.store();
            report
                .problems
                .extend(beian::accounts::service::Accounts::damaged_records(store)?);
            report
                .problems
                .extend(beian::api::announcements::damaged_records(store)?);
            println!(
                "{} subjects, {} filings, {} audit records",
                report.subjects, report.filings, report.audit_records
            );
            for p in &report.problems {
                println!("damaged: {p}");
            }
            if report.problems.is_empty() {
                println!("ok: no damage found");
                Ok(0)
            } else {
                println!("{} problems", report.problems.len());
                Ok(1)
            }
        }
    }
}
