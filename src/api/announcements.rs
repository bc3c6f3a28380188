//! Announcements with attachments: anyone lists, reads and downloads; MIIT and bureaus publish;
//! the author (or MIIT) deletes and manages attachments. Attachments are size-limited
//! ([`super::ATTACHMENT_LIMIT`]) and stored as audited records (the audit log keeps only their
//! size and SHA-256). Both are typed store records ([`Announcements`], [`Attachments`]).

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use super::error::{ApiBytes, ApiPath, ApiQuery};
use super::{blocking, unix_now, ApiError, ApiJson, Caller, Shared, ATTACHMENT_LIMIT};
use crate::accounts::Actor;
use crate::registry::store::records::{JsonKind, RecordKind, TypedRecords, TypedRecordsTxn};
use crate::registry::store::{AuditMeta, RegistryScan, RegistryStore, RegistryTxn, StoreError};

const KIND_ANNOUNCEMENT: &str = "announcement";
const KIND_ATTACHMENT: &str = "attachment";

/// Announcements, under their id.
pub struct Announcements;
impl JsonKind for Announcements {
    const KIND: &'static str = KIND_ANNOUNCEMENT;
    type Value = Announcement;
}

/// Attachments' bytes, under `<announcement id>/<attachment id>`. The payload is the file
/// itself, in every format (format 0: the bare bytes earlier releases stored).
pub struct Attachments;
impl RecordKind for Attachments {
    const KIND: &'static str = KIND_ATTACHMENT;
    type Value = Vec<u8>;
    fn to_payload(value: &Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(value.clone())
    }
    fn from_payload(_format: u16, payload: &[u8]) -> Result<Vec<u8>, String> {
        Ok(payload.to_vec())
    }
}

fn attachment_key(a: &Announcement, m: &AttachmentMeta) -> String {
    format!("{}/{}", a.id, m.id)
}

/// An attachment's bytes, checked against its metadata's SHA-256 (which also tells a bare
/// attachment of an earlier release that happens to begin like the record envelope).
fn attachment_bytes<S: RegistryScan>(
    store: &S,
    a: &Announcement,
    m: &AttachmentMeta,
) -> Result<Option<Vec<u8>>, StoreError> {
    store.load_record_checked::<Attachments>(&attachment_key(a, m), &|b| {
        hex::encode(sha2::Sha256::digest(b)) == m.sha256
    })
}

/// Every announcement that does not decode and every attachment that is not what its
/// announcement says (missing, or other bytes), as `kind:key: why`, for `registry check`.
pub fn damaged_records<S: RegistryScan>(store: &S) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    crate::registry::store::records::find_damaged::<Announcements, _>(store, &mut out)?;
    let mut announcements = Vec::new();
    store.scan_kind_each::<Announcements>(&mut |_, a| {
        if let Ok(a) = a {
            announcements.push(a);
        }
        true
    })?;
    for a in &announcements {
        for m in &a.attachments {
            match attachment_bytes(store, a, m) {
                Ok(Some(_)) => {}
                Ok(None) => out.push(format!(
                    "{KIND_ATTACHMENT}:{}: announcement {} lists it, but it is not stored",
                    attachment_key(a, m),
                    a.id
                )),
                Err(e) => out.push(e.to_string()),
            }
        }
    }
    Ok(out)
}

/// An attachment's metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AttachmentMeta {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: usize,
    pub sha256: String,
}

/// The FAQ's announcement categories.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementCategory {
    /// 通知公告
    #[default]
    Notice,
    /// 法律法规
    Law,
    /// 资料下载 (forms, templates, manuals)
    Download,
    /// 政务公开
    Government,
}

impl AnnouncementCategory {
    pub const ALL: &'static [AnnouncementCategory] =
        <AnnouncementCategory as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn label_zh(self) -> &'static str {
        match self {
            AnnouncementCategory::Notice => "通知公告",
            AnnouncementCategory::Law => "法律法规",
            AnnouncementCategory::Download => "资料下载",
            AnnouncementCategory::Government => "政务公开",
        }
    }

    pub fn label_en(self) -> &'static str {
        match self {
            AnnouncementCategory::Notice => "Notices",
            AnnouncementCategory::Law => "Laws and regulations",
            AnnouncementCategory::Download => "Downloads",
            AnnouncementCategory::Government => "Government information",
        }
    }

    /// By its name (`law`) or Chinese label (`法律法规`).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == s.trim() || c.label_zh() == s.trim())
    }
}

/// An announcement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Announcement {
    pub id: String,
    /// Earlier announcements have none stored: notices.
    #[serde(default)]
    pub category: AnnouncementCategory,
    pub title: String,
    pub body: String,
    pub author: String,
    pub created_at: i64,
    pub attachments: Vec<AttachmentMeta>,
}

fn new_id(now: i64) -> String {
    use rand::Rng;
    format!("{:012}{:08x}", now.max(0), rand::thread_rng().gen::<u32>())
}

fn valid_id(id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > 40 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ApiError::NotFound {
            what: format!("announcement {id:?}"),
        });
    }
    Ok(())
}

fn load(state: &Shared, id: &str) -> Result<Announcement, ApiError> {
    valid_id(id)?;
    state
        .registry
        .store()
        .load_record::<Announcements>(id)?
        .ok_or_else(|| ApiError::NotFound {
            what: format!("announcement {id}"),
        })
}

fn save(
    state: &Shared,
    actor: &Actor,
    action: &str,
    a: &Announcement,
    now: i64,
) -> Result<(), ApiError> {
    let store = state.registry.store();
    let mut txn = store.begin()?;
    txn.store_record::<Announcements>(&AuditMeta::new(actor, action, now), &a.id, a)?;
    txn.commit()?;
    Ok(())
}

fn may_publish(actor: &Actor) -> Result<(), ApiError> {
    match actor {
        Actor::Miit | Actor::Bureau { .. } => Ok(()),
        other => Err(ApiError::Forbidden {
            message: format!("{other} may not publish announcements; MIIT and bureaus may"),
        }),
    }
}

fn may_edit(actor: &Actor, a: &Announcement) -> Result<(), ApiError> {
    if *actor == Actor::Miit || actor.to_string() == a.author {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            message: format!("{actor} may not edit announcement {} by {}", a.id, a.author),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only this category: notice, law, download, government (or its Chinese label).
    #[serde(default)]
    pub category: Option<String>,
}

#[utoipa::path(get, path = "/api/announcements", tag = "announcements",
    params(("category" = Option<String>, Query, description = "notice | law | download | government")),
    responses((status = 200, description = "the announcements (of a category), newest first"), (status = 400)))]
pub async fn list(
    State(state): State<Shared>,
    super::error::ApiQuery(q): super::error::ApiQuery<ListQuery>,
) -> Result<ApiJson<Vec<Announcement>>, ApiError> {
    let only = match q.category.as_deref() {
        None | Some("") => None,
        Some(c) => Some(AnnouncementCategory::parse(c).ok_or_else(|| {
            ApiError::invalid_field("category", "notice, law, download or government")
        })?),
    };
    blocking(move || {
        let mut out = Vec::new();
        state
            .registry
            .store()
            .scan_kind::<Announcements>(&mut |_, a| {
                out.push(a);
                true
            })?;
        out.reverse();
        out.retain(|a: &Announcement| only.is_none_or(|c| a.category == c));
        Ok(ApiJson(out))
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAnnouncement {
    pub title: String,
    pub body: String,
    /// notice (default), law, download or government.
    #[serde(default)]
    pub category: AnnouncementCategory,
}

#[utoipa::path(post, path = "/api/announcements", tag = "announcements",
    request_body(content = String, description = "{title, body, category?}: category is notice (default), law, download or government", content_type = "application/json"),
    responses((status = 201, description = "the announcement"), (status = 403)))]
pub async fn create(
    State(state): State<Shared>,
    caller: Caller,
    ApiJson(b): ApiJson<NewAnnouncement>,
) -> Result<Response, ApiError> {
    may_publish(caller.actor())?;
    let title = b.title.trim().to_string();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::invalid_field("title", "1–200 characters"));
    }
    if b.body.chars().count() > 100_000 {
        return Err(ApiError::invalid_field("body", "at most 100000 characters"));
    }
    blocking(move || {
        let now = unix_now();
        let a = Announcement {
            id: new_id(now),
            category: b.category,
            title,
            body: b.body,
            author: caller.actor().to_string(),
            created_at: now,
            attachments: Vec::new(),
        };
        save(&state, caller.actor(), "announce", &a, now)?;
        Ok((StatusCode::CREATED, axum::Json(a)).into_response())
    })
    .await
}

#[utoipa::path(get, path = "/api/announcements/{id}", tag = "announcements",
    params(("id" = String, Path, description = "announcement id")),
    responses((status = 200, description = "the announcement"), (status = 404)))]
pub async fn show(
    State(state): State<Shared>,
    ApiPath(id): ApiPath<String>,
) -> Result<ApiJson<Announcement>, ApiError> {
    blocking(move || Ok(ApiJson(load(&state, &id)?))).await
}

#[utoipa::path(delete, path = "/api/announcements/{id}", tag = "announcements",
    params(("id" = String, Path, description = "announcement id")),
    responses((status = 204, description = "deleted with its attachments"), (status = 403), (status = 404)))]
pub async fn remove(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let a = load(&state, &id)?;
        may_edit(caller.actor(), &a)?;
        let now = unix_now();
        let store = state.registry.store();
        let mut txn = store.begin()?;
        let meta = AuditMeta::new(caller.actor(), "delete announcement", now);
        for att in &a.attachments {
            txn.delete_record::<Attachments>(&meta, &attachment_key(&a, att))?;
        }
        txn.delete_record::<Announcements>(&meta, &a.id)?;
        txn.commit()?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadQuery {
    pub filename: String,
}

fn valid_filename(f: &str) -> Result<String, ApiError> {
    let f = f.trim();
    if f.is_empty()
        || f.chars().count() > 200
        || f.chars()
            .any(|c| c.is_control() || matches!(c, '/' | '\\' | '"'))
        || f == "."
        || f == ".."
    {
        return Err(ApiError::invalid_field(
            "filename",
            "1–200 characters, no control characters, slashes or quotes",
        ));
    }
    Ok(f.to_string())
}

fn content_type(h: &HeaderMap) -> String {
    h.get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 100
                && v.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
                && v.contains('/')
        })
        .unwrap_or("application/octet-stream")
        .to_string()
}

#[utoipa::path(post, path = "/api/announcements/{id}/attachments", tag = "announcements",
    params(("id" = String, Path, description = "announcement id"),
           ("filename" = String, Query, description = "the attachment's file name")),
    request_body(content = String, description = "the file's bytes (at most 2 MiB)", content_type = "application/octet-stream"),
    responses((status = 201, description = "the attachment's metadata"), (status = 403), (status = 413)))]
pub async fn upload(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> Result<Response, ApiError> {
    if body.len() > ATTACHMENT_LIMIT {
        return Err(ApiError::PayloadTooLarge);
    }
    let filename = valid_filename(&q.filename)?;
    let ctype = content_type(&headers);
    blocking(move || {
        let mut a = load(&state, &id)?;
        may_edit(caller.actor(), &a)?;
        if a.attachments.len() >= 20 {
            return Err(ApiError::Conflict {
                code: "too_many_attachments",
                message: "an announcement has at most 20 attachments".into(),
            });
        }
        let now = unix_now();
        let meta = AttachmentMeta {
            id: new_id(now),
            filename,
            content_type: ctype,
            size: body.len(),
            sha256: hex::encode(sha2::Sha256::digest(&body)),
        };
        a.attachments.push(meta.clone());
        let store = state.registry.store();
        let mut txn = store.begin()?;
        let am = AuditMeta::new(caller.actor(), "attach", now);
        txn.store_record::<Attachments>(&am, &attachment_key(&a, &meta), &body.to_vec())?;
        txn.store_record::<Announcements>(&am, &a.id, &a)?;
        txn.commit()?;
        Ok((StatusCode::CREATED, axum::Json(meta)).into_response())
    })
    .await
}

fn find_attachment(a: &Announcement, att: &str) -> Result<AttachmentMeta, ApiError> {
    a.attachments
        .iter()
        .find(|m| m.id == att)
        .cloned()
        .ok_or_else(|| ApiError::NotFound {
            what: format!("attachment {att}"),
        })
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[utoipa::path(get, path = "/api/announcements/{id}/attachments/{attachment}", tag = "announcements",
    params(("id" = String, Path, description = "announcement id"), ("attachment" = String, Path, description = "attachment id")),
    responses((status = 200, description = "the file"), (status = 404)))]
pub async fn download(
    State(state): State<Shared>,
    ApiPath((id, att)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    blocking(move || {
        let a = load(&state, &id)?;
        let m = find_attachment(&a, &att)?;
        let bytes = attachment_bytes(state.registry.store(), &a, &m)?.ok_or_else(|| {
            ApiError::NotFound {
                what: format!("attachment {att}"),
            }
        })?;
        let mut resp = bytes.into_response();
        let h = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&m.content_type) {
            h.insert(header::CONTENT_TYPE, v);
        }
        if let Ok(v) = HeaderValue::from_str(&format!(
            "attachment; filename*=UTF-8''{}",
            percent_encode(&m.filename)
        )) {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
        h.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Ok(resp)
    })
    .await
}

#[utoipa::path(delete, path = "/api/announcements/{id}/attachments/{attachment}", tag = "announcements",
    params(("id" = String, Path, description = "announcement id"), ("attachment" = String, Path, description = "attachment id")),
    responses((status = 204, description = "deleted"), (status = 403), (status = 404)))]
pub async fn remove_attachment(
    State(state): State<Shared>,
    caller: Caller,
    ApiPath((id, att)): ApiPath<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(move || {
        let mut a = load(&state, &id)?;
        may_edit(caller.actor(), &a)?;
        let m = find_attachment(&a, &att)?;
        a.attachments.retain(|x| x.id != m.id);
        let now = unix_now();
        let store = state.registry.store();
        let mut txn = store.begin()?;
        let am = AuditMeta::new(caller.actor(), "detach", now);
        txn.delete_record::<Attachments>(&am, &attachment_key(&a, &m))?;
        txn.store_record::<Announcements>(&am, &a.id, &a)?;
        txn.commit()?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_and_attachments_are_replicated() {
        for kind in [KIND_ANNOUNCEMENT, KIND_ATTACHMENT] {
            assert!(
                crate::registry::PUBLIC_RECORD_KINDS.contains(&kind),
                "{kind}"
            );
        }
    }
}
