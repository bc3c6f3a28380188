//! The change feed replicas follow (`GET /api/replication/feed`): the registry's audit log
//! from a sequence number, with the public records' values (see
//! [`crate::registry::Registry::change_feed`]). It carries personal data (subjects' identity
//! numbers), so it is never anonymous: a replica presents the replication token `serve` was
//! started with ([`REPLICATION_HEADER`], compared in constant time as digests), or the
//! caller is MIIT (a session, or the operator token on loopback).

use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;

use super::error::ApiQuery;
use super::{blocking, ApiError, ApiJson, Caller, Shared};
use crate::accounts::Actor;
use crate::registry::FeedPage;

/// The request header carrying the replication token.
pub const REPLICATION_HEADER: &str = "x-beian-replication-token";
/// Records per page when the request does not say.
pub const DEFAULT_FEED_PAGE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedQuery {
    /// The last record the replica holds (absent: from the first).
    pub after: Option<u64>,
    /// Records wanted (at most [`crate::registry::MAX_FEED_PAGE`]).
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/replication/feed", tag = "operator",
    params(("after" = Option<u64>, Query, description = "the last audit record the replica holds; absent: from the first"),
           ("limit" = Option<usize>, Query, description = "records wanted (default 1000, at most 5000)")),
    responses((status = 200, description = "the audit records after `after`, in order, with the primary's head and the current values of public records (replication token, or miit)"), (status = 401), (status = 403)))]
pub async fn feed(
    State(state): State<Shared>,
    headers: HeaderMap,
    caller: Result<Caller, ApiError>,
    ApiQuery(q): ApiQuery<FeedQuery>,
) -> Result<ApiJson<FeedPage>, ApiError> {
    match headers.get(REPLICATION_HEADER) {
        Some(t) => {
            let ok = t
                .to_str()
                .map(|t| state.replication.accepts(t.trim()))
                .unwrap_or(false);
            if !ok {
                return Err(ApiError::Unauthorized);
            }
        }
        None => {
            let caller = caller?;
            if *caller.actor() != Actor::Miit {
                return Err(ApiError::Forbidden {
                    message: format!("{} may not read the change feed; only miit", caller.actor()),
                });
            }
        }
    }
    let limit = q.limit.unwrap_or(DEFAULT_FEED_PAGE);
    blocking(move || {
        state
            .registry
            .change_feed(q.after, limit)
            .map(ApiJson)
            .map_err(ApiError::from)
    })
    .await
}
