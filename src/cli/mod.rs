//! Command-line interface: argument definitions and dispatch, one module per subcommand.
//! Orchestration only; the work happens in the library.

use clap::{Parser, Subcommand};

mod extract;

/// beian — ICP filing (备案) registry and compliance scanner.
#[derive(Parser, Debug)]
#[command(name = "beian", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the numbers and links a reader sees on HTML files (one JSON object per file).
    Extract(extract::ExtractArgs),
}

/// Parse, run, and map the outcome to an exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_tracing();
    let result = match cli.command {
        Command::Extract(a) => extract::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BEIAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
