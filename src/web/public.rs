//! The anonymous pages: the public query (`/`: a domain or filing number → the filing's public
//! fields, or a plain "not filed"; anything else is part of a subject's (主办单位) name → the
//! active filings of the subjects whose name contains it, at most
//! [`crate::api::public::SUBJECT_SEARCH_LIMIT`], through the subject-name index), the code tables and the announcements with their
//! attachments. Each calls the JSON API's handler for the same data, so the fields shown, the
//! lookups and the quotas are the API's.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::{date, status_text, Chrome, WebError, WebState};
use crate::api::announcements::{self, Announcement};
use crate::api::error::{ApiPath, ApiQuery};
use crate::api::public::PublicFiling;
use crate::api::ApiError;
use crate::codes::CodeTables;

#[derive(Debug, Default, Deserialize)]
pub struct QueryParams {
    #[serde(default)]
    pub q: Option<String>,
}

/// What the query found.
pub enum Outcome {
    /// No query yet.
    Nothing,
    Found(Box<FilingRows>),
    /// No filing covers this domain / has this number.
    NotFiled {
        what: String,
        domain: bool,
    },
    Invalid {
        message: String,
    },
    /// A subject-name search: the active filings found (maybe none), and whether more match.
    Subjects {
        name: String,
        rows: Vec<FilingRows>,
        more: bool,
        limit: usize,
    },
}

/// Whether a query names a subject rather than a domain or filing number: it parses as no
/// filing number and holds no dot (every domain has one; a subject's name has none).
pub fn is_subject_name(q: &str) -> bool {
    crate::number::FilingNumber::parse(q).is_err() && !q.contains(['.', '。', '．'])
}

/// A public filing prepared for display.
pub struct FilingRows {
    pub f: PublicFiling,
    pub status: String,
    pub active: bool,
    pub approved: String,
    pub expires: String,
}

impl FilingRows {
    fn new(c: &Chrome, f: PublicFiling) -> Self {
        FilingRows {
            status: status_text(c.lang, &f.status),
            active: f.status == "active",
            approved: date(f.approved_at),
            expires: date(f.expires_at),
            f,
        }
    }
}

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    c: &'a Chrome,
    q: String,
    outcome: Outcome,
}

/// A query as typed: a URL becomes its host.
fn normalise_query(q: &str) -> String {
    let q = q.trim();
    let rest = q
        .strip_prefix("https://")
        .or_else(|| q.strip_prefix("http://"))
        .unwrap_or(q);
    if rest.len() != q.len() {
        return rest
            .split(['/', '?', '#'])
            .next()
            .unwrap_or(rest)
            .to_string();
    }
    q.to_string()
}

pub async fn index(
    State(state): State<WebState>,
    chrome: Chrome,
    Query(p): Query<QueryParams>,
) -> Response {
    let c = chrome.at("query");
    let q = p.q.unwrap_or_default();
    let key = normalise_query(&q);
    let outcome = if key.is_empty() {
        Outcome::Nothing
    } else if key.chars().count() > 253 {
        Outcome::Invalid {
            message: c.t("输入过长。", "The query is too long.").to_string(),
        }
    } else if is_subject_name(&key) {
        let q = crate::api::public::SubjectQuery { name: key.clone() };
        match crate::api::public::subject_search(State(state.api.clone()), ApiQuery(q)).await {
            Ok(found) => {
                let found = found.0;
                Outcome::Subjects {
                    name: found.name,
                    rows: found
                        .filings
                        .into_iter()
                        .map(|f| FilingRows::new(&c, f))
                        .collect(),
                    more: found.more,
                    limit: found.limit,
                }
            }
            Err(ApiError::BadRequest { .. }) => Outcome::Invalid {
                message: c
                    .t(
                        "请输入主办单位名称中至少两个字。",
                        "Enter at least two characters of the subject's name.",
                    )
                    .to_string(),
            },
            Err(e) => return WebError::new(c.lang, e).into_response_page(),
        }
    } else {
        let is_number = crate::number::FilingNumber::parse(&key).is_ok();
        match crate::api::public::public_filing(State(state.api.clone()), ApiPath(key.clone()))
            .await
        {
            Ok(f) => Outcome::Found(Box::new(FilingRows::new(&c, f.0))),
            Err(ApiError::NotFound { .. }) => Outcome::NotFiled {
                what: key.clone(),
                domain: !is_number,
            },
            Err(ApiError::BadRequest { message, .. }) => Outcome::Invalid { message },
            Err(e) => return WebError::new(c.lang, e).into_response_page(),
        }
    };
    c.page(IndexPage { c: &c, q, outcome }.render())
}

impl WebError {
    fn into_response_page(self) -> Response {
        axum::response::IntoResponse::into_response(self)
    }
}

#[derive(Template)]
#[template(path = "codes.html")]
struct CodesPage<'a> {
    c: &'a Chrome,
    t: &'static CodeTables,
    isps: Vec<String>,
    /// The province whose cities and counties are shown (its two-digit code).
    province: Option<String>,
    regions: Vec<crate::codes::Region>,
}

/// The announcements page's query (the language switch may come along).
#[derive(Debug, Default, Deserialize)]
pub struct AnnouncementsQuery {
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct CodesQuery {
    #[serde(default)]
    pub province: Option<String>,
    #[serde(default)]
    pub lang: Option<String>,
}

pub async fn codes(
    State(state): State<WebState>,
    chrome: Chrome,
    Query(q): Query<CodesQuery>,
) -> Result<Response, WebError> {
    let c = chrome.at("codes");
    let t = CodeTables::embedded();
    let province = q
        .province
        .as_deref()
        .and_then(|p| t.province(p))
        .map(|p| p.code.clone());
    let regions = match &province {
        Some(code) => t.regions_of(code).cloned().collect(),
        None => Vec::new(),
    };
    let api = state.api.clone();
    let isps = crate::api::blocking(move || Ok(api.registry.isp_list()?))
        .await
        .map_err(|e| WebError::new(c.lang, e))?;
    Ok(c.page(
        CodesPage {
            c: &c,
            t,
            isps,
            province,
            regions,
        }
        .render(),
    ))
}

#[derive(Template)]
#[template(path = "announcements.html")]
struct AnnouncementsPage<'a> {
    c: &'a Chrome,
    list: Vec<(Announcement, String)>,
    /// (category name, label, selected) for the filter links.
    categories: Vec<(&'static str, &'static str, bool)>,
    all_selected: bool,
}

impl AnnouncementsPage<'_> {
    fn category_label(&self, a: &Announcement) -> &'static str {
        if self.c.lang.is_en() {
            a.category.label_en()
        } else {
            a.category.label_zh()
        }
    }
}

pub async fn announcements(
    State(state): State<WebState>,
    chrome: Chrome,
    Query(q): Query<AnnouncementsQuery>,
) -> Result<Response, WebError> {
    let c = chrome.at("announcements");
    let q = announcements::ListQuery {
        category: q.category,
    };
    let selected = q
        .category
        .as_deref()
        .and_then(announcements::AnnouncementCategory::parse);
    let categories = announcements::AnnouncementCategory::ALL
        .iter()
        .copied()
        .map(|k| {
            let label = if c.lang.is_en() {
                k.label_en()
            } else {
                k.label_zh()
            };
            (k.as_str(), label, selected == Some(k))
        })
        .collect();
    let list = announcements::list(State(state.api.clone()), crate::api::error::ApiQuery(q))
        .await
        .map_err(|e| WebError::new(c.lang, e))?
        .0
        .into_iter()
        .map(|a| {
            let d = date(Some(a.created_at));
            (a, d)
        })
        .collect();
    Ok(c.page(
        AnnouncementsPage {
            c: &c,
            list,
            categories,
            all_selected: selected.is_none(),
        }
        .render(),
    ))
}

#[derive(Template)]
#[template(path = "announcement.html")]
struct AnnouncementPage<'a> {
    c: &'a Chrome,
    a: Announcement,
    created: String,
    /// The body's paragraphs (blank-line separated).
    paragraphs: Vec<String>,
    /// Each attachment with its size in words and the start of its digest.
    attachments: Vec<(announcements::AttachmentMeta, String, String)>,
}

/// Attachment sizes in words.
pub fn size_text(n: &usize) -> String {
    let n = *n as f64;
    if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / 1024.0 / 1024.0)
    } else if n >= 1024.0 {
        format!("{:.0} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}

pub async fn announcement(
    State(state): State<WebState>,
    chrome: Chrome,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let c = chrome.at("announcements");
    let a = announcements::show(State(state.api.clone()), ApiPath(id))
        .await
        .map_err(|e| WebError::new(c.lang, e))?
        .0;
    let paragraphs = a
        .body
        .split("\n\n")
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect();
    let created = date(Some(a.created_at));
    let attachments = a
        .attachments
        .iter()
        .map(|m| {
            let digest: String = m.sha256.chars().take(12).collect();
            (m.clone(), size_text(&m.size), digest)
        })
        .collect();
    Ok(c.page(
        AnnouncementPage {
            c: &c,
            a,
            created,
            paragraphs,
            attachments,
        }
        .render(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_hosts() {
        assert_eq!(normalise_query(" https://www.a.cn/x?y "), "www.a.cn");
        assert_eq!(normalise_query("a.cn"), "a.cn");
        assert_eq!(
            normalise_query("京ICP备12345678号-1"),
            "京ICP备12345678号-1"
        );
    }

    #[test]
    fn subject_names_are_told_from_domains_and_numbers() {
        assert!(is_subject_name("北京示例科技"));
        assert!(is_subject_name("示例 Tech"));
        assert!(!is_subject_name("example-bj.com"));
        assert!(!is_subject_name("例子.中国"));
        assert!(!is_subject_name("京ICP备12345678号-1"));
        assert!(!is_subject_name("京ICP备12345678号"));
    }

    #[test]
    fn sizes() {
        assert_eq!(size_text(&10), "10 B");
        assert_eq!(size_text(&2048), "2 KiB");
        assert_eq!(size_text(&(3 * 1024 * 1024)), "3.0 MiB");
    }
}
