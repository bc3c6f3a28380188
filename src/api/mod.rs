//! The HTTP API (axum): anonymous queries, the authenticated filing workflow, the self-check and
//! probe endpoints, and `/metrics` on its own listener. Only this module knows HTTP request and
//! response shapes and status codes; errors map to responses in one place ([`error`]).

pub mod error;

pub use error::{ApiError, ApiJson};
