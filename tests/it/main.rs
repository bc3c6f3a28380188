//! Integration tests: one binary, one module per area.

mod dashboards;
mod report;
mod verdict;
mod crawl;
mod extract;
