//! Operator access to a running service: what lets the read-only CLI commands work while
//! `beian serve` holds the registry store.
//!
//! At start `serve` writes `DIR/serve.json` ([`ServeInfo`], mode 0600): its pid, the API's
//! base URL on loopback, and a fresh random operator token; it removes the file at exit.
//! Whoever can read the registry directory owns the machine, exactly like `--as ROLE` on
//! direct store access, so a request carrying that token ([`OPERATOR_HEADER`]) acts as the
//! role it names ([`AS_HEADER`], e.g. `miit`) and the usual permission checks apply to that
//! actor. The token is accepted only from a loopback peer, compared in constant time (as
//! SHA-256 digests), and never logged.
//!
//! The client half ([`ServiceClient`]) is what the CLI uses; the endpoints that exist only for
//! it (`GET /api/outbox`, `GET /api/audit/verify`, `GET /api/snapshot`) are here too.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::{blocking, unix_now, ApiError, ApiJson, Caller, Shared};
use crate::accounts::service::{Accounts, Message};
use crate::accounts::{Actor, UserRecord};
use crate::registry::store::AuditReport;

/// The file in a registry directory describing the running `serve` (removed at exit).
pub const SERVE_INFO_FILE: &str = "serve.json";
/// The request header carrying the operator token.
pub const OPERATOR_HEADER: &str = "x-beian-operator";
/// The request header naming the role an operator request acts as (`miit`, `bureau:京`, …).
pub const AS_HEADER: &str = "x-beian-as";

/// What `serve` tells the commands run beside it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServeInfo {
    pub pid: u32,
    /// The API's base URL on loopback, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The operator token (base64url, 256 random bits).
    pub token: String,
}

impl std::fmt::Debug for ServeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeInfo")
            .field("pid", &self.pid)
            .field("url", &self.url)
            .field("token", &"…")
            .finish()
    }
}

/// Why the running service could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("{path}: {reason}")]
    Info { path: String, reason: String },
    #[error("serve (pid {pid}) at {url}: {reason}")]
    Unreachable {
        pid: u32,
        url: String,
        reason: String,
    },
    #[error("serve (pid {pid}) answered {status}: {message}")]
    Refused {
        pid: u32,
        status: u16,
        message: String,
    },
}

impl ServeInfo {
    pub fn path(dir: &Path) -> PathBuf {
        dir.join(SERVE_INFO_FILE)
    }

    /// Write `DIR/serve.json`, atomically and readable by the owner only.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(&Self::path(dir), &bytes, Some(0o600))
    }

    /// `DIR/serve.json`, when a running `serve` wrote one.
    pub fn read(dir: &Path) -> Result<Option<ServeInfo>, OperatorError> {
        let path = Self::path(dir);
        let err = |reason: String| OperatorError::Info {
            path: path.display().to_string(),
            reason,
        };
        let bytes = match crate::fsutil::read_bounded(&path, 16 * 1024) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(err(e.to_string())),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| err(format!("not a serve description: {e}")))
    }

    /// Remove `DIR/serve.json` (at exit).
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(Self::path(dir));
    }
}

/// A fresh operator token: 256 random bits, base64url.
pub fn new_token() -> String {
    use base64::Engine;
    use rand::Rng;
    let mut b = [0u8; 32];
    rand::thread_rng().fill(&mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// The service's operator token, kept as its SHA-256 digest; unset (every operator request
/// refused) until [`OperatorKey::enable`].
#[derive(Default)]
pub struct OperatorKey(OnceLock<[u8; 32]>);

impl OperatorKey {
    /// Accept `token` from now on (once; later calls keep the first token). Returns whether
    /// this call set it.
    pub fn enable(&self, token: &str) -> bool {
        self.0
            .set(sha2::Sha256::digest(token.as_bytes()).into())
            .is_ok()
    }

    /// Whether `token` is the operator token (constant time over the digests).
    pub fn accepts(&self, token: &str) -> bool {
        let Some(want) = self.0.get() else {
            return false;
        };
        let got: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
        want.iter()
            .zip(got.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// The caller of an operator request, or `None` when the request carries no operator token.
/// A token from a peer that is not loopback, a wrong token, or a missing or unparsable role
/// is refused.
pub fn operator_caller(
    headers: &HeaderMap,
    extensions: &axum::http::Extensions,
    state: &Shared,
) -> Result<Option<Caller>, ApiError> {
    let Some(token) = headers.get(OPERATOR_HEADER) else {
        return Ok(None);
    };
    if !super::client_ip(extensions).is_loopback() {
        return Err(ApiError::Forbidden {
            message: "operator access is only accepted on loopback".into(),
        });
    }
    let ok = token
        .to_str()
        .map(|t| state.operator.accepts(t.trim()))
        .unwrap_or(false);
    if !ok {
        return Err(ApiError::Unauthorized);
    }
    let actor: Actor = headers
        .get(AS_HEADER)
        // UTF-8, not only ASCII: bureau roles name their province (`bureau:京`).
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .ok_or_else(|| ApiError::invalid_field(AS_HEADER, "name the role to act as"))?
        .parse()
        .map_err(|e: crate::accounts::ActorParseError| {
            ApiError::invalid_field(AS_HEADER, e.to_string())
        })?;
    Ok(Some(Caller {
        user: UserRecord {
            username: "operator".into(),
            actor,
            password_hash: String::new(),
            created_at: 0,
            created_by: "operator".into(),
        },
        token: String::new(),
    }))
}

fn only_miit(caller: &Caller, what: &str) -> Result<(), ApiError> {
    match caller.actor() {
        Actor::Miit => Ok(()),
        a => Err(ApiError::Forbidden {
            message: format!("{a} may not {what}; only miit"),
        }),
    }
}

#[utoipa::path(get, path = "/api/outbox", tag = "operator",
    responses((status = 200, description = "every undelivered message, oldest first (miit)"), (status = 401), (status = 403)))]
pub async fn outbox(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<Vec<Message>>, ApiError> {
    only_miit(&caller, "read the outbox")?;
    blocking(move || Ok(ApiJson(Accounts::outbox(state.registry.store())?))).await
}

#[utoipa::path(get, path = "/api/audit/verify", tag = "operator",
    responses((status = 200, description = "the audit chain walked: records and the first broken link (miit)"), (status = 401), (status = 403)))]
pub async fn audit_verify(
    State(state): State<Shared>,
    caller: Caller,
) -> Result<ApiJson<AuditReport>, ApiError> {
    only_miit(&caller, "verify the audit chain")?;
    blocking(move || {
        let r = state.registry.verify_audit().map_err(ApiError::from)?;
        Ok(ApiJson(r))
    })
    .await
}

#[utoipa::path(get, path = "/api/snapshot", tag = "operator",
    responses((status = 200, description = "a fresh signed snapshot file, as `beian snapshot export` writes it (miit or a bureau)", content_type = "application/octet-stream"), (status = 401), (status = 403)))]
pub async fn snapshot(State(state): State<Shared>, caller: Caller) -> Result<Response, ApiError> {
    if !matches!(caller.actor(), Actor::Miit | Actor::Bureau { .. }) {
        return Err(ApiError::Forbidden {
            message: format!("{} may not export snapshots", caller.actor()),
        });
    }
    let bytes = blocking(move || {
        let snap = state
            .registry
            .snapshot(unix_now())
            .map_err(ApiError::from)?;
        state
            .registry
            .signed_snapshot(&snap)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// An error and its causes, on one line.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cur = c.source();
    }
    text
}

/// The CLI's client of a running service, acting as one role.
pub struct ServiceClient {
    info: ServeInfo,
    actor: Actor,
    http: reqwest::Client,
}

impl ServiceClient {
    /// A client for the service `info` describes. Only loopback URLs are used: the token
    /// never leaves the machine.
    pub fn new(info: ServeInfo, actor: Actor) -> Result<Self, OperatorError> {
        let unreachable = |reason: String| OperatorError::Unreachable {
            pid: info.pid,
            url: info.url.clone(),
            reason,
        };
        let host_is_loopback = url::Url::parse(&info.url)
            .ok()
            .and_then(|u| match u.host() {
                Some(url::Host::Ipv4(a)) => Some(a.is_loopback()),
                Some(url::Host::Ipv6(a)) => Some(a.is_loopback()),
                _ => None,
            })
            .unwrap_or(false);
        if !host_is_loopback {
            return Err(unreachable("not a loopback address".into()));
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(ServiceClient { info, actor, http })
    }

    pub fn info(&self) -> &ServeInfo {
        &self.info
    }

    /// `GET path` (e.g. `/api/outbox`) as the operator; the body of a 2xx answer.
    pub async fn get(&self, path: &str) -> Result<Vec<u8>, OperatorError> {
        let url = format!("{}{}", self.info.url.trim_end_matches('/'), path);
        let unreachable = |reason: String| OperatorError::Unreachable {
            pid: self.info.pid,
            url: self.info.url.clone(),
            reason,
        };
        let resp = self
            .http
            .get(&url)
            .header(OPERATOR_HEADER, &self.info.token)
            .header(AS_HEADER, self.actor.to_string())
            .send()
            .await
            .map_err(|e| unreachable(describe(&e)))?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(|e| unreachable(describe(&e)))?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
        Err(OperatorError::Refused {
            pid: self.info.pid,
            status: status.as_u16(),
            message,
        })
    }

    /// `GET path`, decoded from JSON.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, OperatorError> {
        let body = self.get(path).await?;
        serde_json::from_slice(&body).map_err(|e| OperatorError::Refused {
            pid: self.info.pid,
            status: 200,
            message: format!("unexpected answer: {e}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operator_key_accepts_only_its_token() {
        let k = OperatorKey::default();
        let t = new_token();
        assert!(!k.accepts(&t), "nothing is accepted before it is enabled");
        assert!(k.enable(&t));
        assert!(k.accepts(&t));
        assert!(!k.accepts(""));
        assert!(!k.accepts(&new_token()));
        assert!(!k.enable(&new_token()), "the first token stays");
        assert!(k.accepts(&t));
    }

    #[test]
    fn serve_info_round_trips_private_and_never_debug_prints_the_token() {
        let dir = tempfile::tempdir().unwrap();
        assert!(ServeInfo::read(dir.path()).unwrap().is_none());
        let info = ServeInfo {
            pid: 42,
            url: "http://127.0.0.1:8080".into(),
            token: new_token(),
        };
        info.write(dir.path()).unwrap();
        assert_eq!(ServeInfo::read(dir.path()).unwrap(), Some(info.clone()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ServeInfo::path(dir.path()))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(!format!("{info:?}").contains(&info.token));
        ServeInfo::remove(dir.path());
        assert!(ServeInfo::read(dir.path()).unwrap().is_none());
    }

    #[test]
    fn the_client_only_talks_to_loopback() {
        let mk = |url: &str| ServeInfo {
            pid: 1,
            url: url.into(),
            token: "t".into(),
        };
        assert!(ServiceClient::new(mk("http://127.0.0.1:1"), Actor::Miit).is_ok());
        assert!(ServiceClient::new(mk("http://[::1]:1"), Actor::Miit).is_ok());
        assert!(ServiceClient::new(mk("http://192.0.2.1:1"), Actor::Miit).is_err());
        assert!(ServiceClient::new(mk("http://example.com:1"), Actor::Miit).is_err());
    }
}
