//! Integration tests: one binary, one module per area.

mod crawl;
mod dashboards;
mod extract;
mod report;
mod verdict;
