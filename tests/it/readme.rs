//! The README's usage section is the `--help` of every subcommand, generated from the binary.
//! If this test fails after a CLI change, regenerate it with
//! `BEIAN_UPDATE_README=1 cargo test --test it readme` and review the diff.

use std::path::Path;
use std::process::Command;

const START: &str = "<!-- usage:start (generated from --help; see tests/it/readme.rs) -->";
const END: &str = "<!-- usage:end -->";

fn help(path: &[String]) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_beian"));
    cmd.args(path).arg("--help").env("COLUMNS", "100");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("BEIAN_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run beian --help");
    assert!(out.status.success(), "beian {path:?} --help failed");
    String::from_utf8(out.stdout).expect("help is UTF-8")
}

/// Subcommand names listed under `Commands:` (without `help`).
fn subcommands(help: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.starts_with("Commands:") {
            in_commands = true;
            continue;
        }
        if in_commands {
            if line.trim().is_empty() || !line.starts_with("  ") {
                break;
            }
            if line.starts_with("   ") {
                continue; // continuation of a wrapped description
            }
            if let Some(name) = line.split_whitespace().next() {
                if name != "help" {
                    names.push(name.to_string());
                }
            }
        }
    }
    names
}

fn render(path: &mut Vec<String>, out: &mut String) {
    let text = help(path);
    let title = if path.is_empty() {
        "beian".to_string()
    } else {
        format!("beian {}", path.join(" "))
    };
    out.push_str(&format!(
        "### `{title}`\n\n```text\n{}\n```\n\n",
        text.trim_end()
    ));
    for sub in subcommands(&text) {
        path.push(sub);
        render(path, out);
        path.pop();
    }
}

fn generated() -> String {
    let mut out = String::new();
    render(&mut Vec::new(), &mut out);
    out
}

#[test]
fn readme_usage_matches_help() {
    let readme_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let want = generated();
    let (Some(s), Some(e)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md has no usage markers ({START} … {END})");
    };
    let current = &readme[s + START.len()..e];
    let expected = format!("\n\n{want}");
    if current != expected {
        if std::env::var_os("BEIAN_UPDATE_README").is_some() {
            let updated = format!("{}{START}{expected}{}", &readme[..s], &readme[e..]);
            std::fs::write(&readme_path, updated).expect("write README.md");
            return;
        }
        panic!(
            "README usage is out of sync with --help; run BEIAN_UPDATE_README=1 cargo test --test it readme"
        );
    }
}

#[test]
fn every_subcommand_is_listed() {
    let top = help(&[]);
    let subs = subcommands(&top);
    for want in [
        "demo", "scan", "check", "extract", "registry", "filing", "review", "cert", "keys",
        "snapshot", "audit",
    ] {
        assert!(
            subs.iter().any(|s| s == want),
            "`beian {want}` missing from --help: {subs:?}"
        );
    }
}
