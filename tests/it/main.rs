//! Integration tests: one binary, one module per area.

mod api;
mod cli_registry;
mod crawl;
mod dashboards;
mod extract;
mod registry;
mod report;
mod verdict;
