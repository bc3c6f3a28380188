//! The `beian` binary: parse the command line, set up tracing, call the library, map the
//! result to an exit code (0 clean, 1 findings, 2 usage or runtime error).

mod cli;

fn main() {
    std::process::exit(cli::main());
}
