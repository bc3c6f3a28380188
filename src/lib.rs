//! # beian — ICP filing (备案) registry and compliance scanner
//!
//! Library layout (one line a module; see `ARCHITECTURE.md` for the invariants):
//!
//! - [`advice`]: the self-check wording — what is wrong and how to fix it, in Chinese and English.
//! - [`number`]: filing, licence and public-security numbers — parse, normalise, format (pure).
//! - [`codes`]: code tables loaded from `seeds/codes` (provinces, natures, categories, …) and
//!   identity-number checks (USCC, resident ID).
//! - [`cert`]: the `bazs.cert` certificate: canonical bytes, signing, verification, keyring (pure).
//! - [`registry`]: the embedded filing core — model, workflow (pure), store traits, the sled
//!   store, issuance, audit log, snapshot export for scanners.
//! - [`accounts`]: users, roles, password rules, verification codes, sessions.
//! - [`observation`]: what the scanner saw at one target (facts only, no judgement).
//! - [`demo`]: the built-in demo — sample registry, loopback fleet with planted problems, scan, check.
//! - [`domain`]: host names — IDNA normalisation, registrable domains (public suffix list).
//! - [`config`]: the strict TOML configuration file (`beian.toml`).
//! - [`crawl`]: resolver with address guard, fetcher, rate limits, scheduler.
//! - [`extract`]: charset decoding and detection, footer number and link extraction, page facts
//!   (pure).
//! - [`verdict`]: policy files and `evaluate(observation, registry view, policy) → findings` (pure).
//! - [`report`]: sinks — JSON Lines, CSV, Markdown summary, scan history and diff.
//! - [`fleet`]: a loopback fleet of lab web sites (virtual hosts) for the demo, tests and benches.
//! - [`scan`]: scan orchestration — targets through crawl, certificate verification and evaluation to records.
//! - [`fsutil`]: durable atomic file replacement (temp file, fsync, rename, directory fsync).
//! - [`metrics`]: every Prometheus metric, defined once.
//! - [`api`]: the HTTP API (axum), auth, one error→response mapping.
//! - [`replica`]: a read-only replica's follower of its primary's change feed (`serve --replica-of`).
//! - [`web`]: the HTML pages `serve` renders (public query, self-check, scan reports, workspace).
//!
//! The `beian` binary (`src/main.rs`, `src/cli/`) is a thin layer over this library.

pub mod accounts;
pub mod advice;
pub mod api;
pub mod cert;
pub mod codes;
pub mod config;
pub mod crawl;
pub mod demo;
pub mod domain;
pub mod extract;
pub mod fleet;
pub mod fsutil;
pub mod metrics;
pub mod names;
pub mod number;
pub mod observation;
pub mod registry;
pub mod replica;
pub mod report;
pub mod scan;
pub mod schedule;
pub mod shard;
pub mod tabular;
pub mod verdict;
pub mod web;
