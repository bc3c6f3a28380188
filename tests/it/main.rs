//! Integration tests: one binary, one module per area.

#[macro_use]
mod pg;

mod api;
mod beside;
mod cli_registry;
mod crawl;
mod dashboards;
mod deploy;
mod extract;
mod hostile;
mod lab;
mod listener;
mod monitoring;
mod pg_serve;
mod readme;
mod registry;
mod registry_ip;
mod registry_upgrade;
mod render;
mod replica;
mod report;
mod scan;
mod shard;
mod templates;
mod verdict;
mod web;
