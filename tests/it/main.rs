//! Integration tests: one binary, one module per area.

mod cli_registry;
mod dashboards;
mod registry;
mod report;
mod verdict;
