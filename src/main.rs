//! The `beian` binary: parse the command line, set up tracing, call the library, map the
//! result to an exit code (0 clean, 1 findings, 2 usage or runtime error).

mod cli;

/// mimalloc serves the scanner's many small, short-lived allocations (pages, records, DNS
/// answers) with less CPU than glibc's malloc; see the README's performance section.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
