//! The JSON Lines import format (one website filing per line) and its validation into a
//! subject and a [`Submission`]. Pure: errors name the line's field and the reason.
//!
//! ```json
//! {"subject":{"name":"北京示例科技有限公司","nature":"企业","id_type":"统一社会信用代码",
//!   "id_number":"91110108MA01ABCD2X","province":"京","address":"北京市海淀区…",
//!   "contact":{"name":"张三","mobile":"13800000000","email":"a@example.com"},
//!   "username":"optional ICP username (defaults to id_number)"},
//!  "website":{"name":"示例网","homepage":"https://example.com/","domains":["example.com"],
//!   "ips":["203.0.113.7"],"providers":["示例接入商"],"access_method":"虚拟主机",
//!   "server_placement":"北京","categories":["新闻", {"category":"新闻","document":"…"}],
//!   "operating_licence":null}}
//! ```
//! A leading `www.` on a domain is stripped (with a note); other subdomains are refused.

use serde::Deserialize;

use crate::domain::Domain;
use crate::number::{LicenceNumber, ServiceKind};

use super::model::{CategoryEntry, Contact};
use super::workflow::Submission;

#[derive(Debug, Deserialize)]
pub struct ImportLine {
    pub subject: ImportSubject,
    /// The service: a website, or an APP / mini-program (`kind`, `app_id`). `service` is
    /// accepted as the key too.
    #[serde(alias = "service")]
    pub website: ImportWebsite,
}

#[derive(Debug, Deserialize)]
pub struct ImportSubject {
    pub name: String,
    pub nature: String,
    pub id_type: String,
    pub id_number: String,
    pub province: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub contact: Contact,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CategoryInput {
    Name(String),
    Full {
        category: String,
        #[serde(default)]
        document: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
pub struct ImportWebsite {
    pub name: String,
    #[serde(default)]
    pub homepage: String,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub providers: Vec<String>,
    #[serde(default)]
    pub access_method: String,
    #[serde(default)]
    pub server_placement: Option<String>,
    #[serde(default)]
    pub categories: Vec<CategoryInput>,
    #[serde(default)]
    pub operating_licence: Option<String>,
    /// `website` (default), `app` or `mini_program` (or 网站, APP, 小程序).
    #[serde(default)]
    pub kind: Option<String>,
    /// An APP's package name or a mini-program's app id.
    #[serde(default)]
    pub app_id: Option<String>,
    /// It offers bulletin-board (电子公告) services: the special filing.
    #[serde(default)]
    pub bulletin_board: bool,
}

/// A field of one line (or spreadsheet row) that is wrong. For a spreadsheet or CSV upload,
/// `line` is the row number as the spreadsheet shows it, `sheet` the sheet's name (none for
/// CSV) and `column` the column letter with its header, e.g. `M (网站域名)`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LineError {
    pub line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sheet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<String>,
    pub field: String,
    pub reason: String,
    /// The workflow rule that refused the line, when one did (kept typed for the API's
    /// status codes; the reason says it in words).
    #[serde(skip)]
    pub rule: Option<super::workflow::Rule>,
}

impl LineError {
    /// An error of line `line` (no spreadsheet position).
    pub fn new(line: usize, field: impl Into<String>, reason: impl Into<String>) -> Self {
        LineError {
            line,
            sheet: None,
            column: None,
            field: field.into(),
            reason: reason.into(),
            rule: None,
        }
    }

    /// The same error, refused by workflow rule `rule`.
    pub fn by_rule(mut self, rule: super::workflow::Rule) -> Self {
        self.rule = Some(rule);
        self
    }
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(sheet) = &self.sheet {
            write!(f, "sheet {sheet}, ")?;
        }
        if self.sheet.is_some() || self.column.is_some() {
            write!(f, "row {}", self.line)?;
        } else {
            write!(f, "line {}", self.line)?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column}")?;
        }
        write!(f, ": {}: {}", self.field, self.reason)
    }
}

impl std::error::Error for LineError {}

/// A validated line: the subject's data and the website submission, plus notes (warnings).
#[derive(Debug, Clone)]
pub struct ValidLine {
    pub subject: SubjectData,
    pub submission: Submission,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SubjectData {
    pub name: String,
    pub nature: String,
    pub id_type: String,
    pub id_number: String,
    pub province: char,
    pub address: String,
    pub contact: Contact,
    pub owner: String,
}

/// Parse and validate one line. `line` is 1-based.
pub fn parse_line(line: usize, text: &str) -> Result<ValidLine, LineError> {
    let err = |field: &str, reason: String| LineError::new(line, field, reason);
    let raw: ImportLine = serde_json::from_str(text).map_err(|e| err("json", e.to_string()))?;
    let mut notes = Vec::new();
    let s = raw.subject;
    let w = raw.website;
    if s.name.trim().is_empty() {
        return Err(err("subject.name", "empty".into()));
    }
    if s.id_number.trim().is_empty() {
        return Err(err("subject.id_number", "empty".into()));
    }
    let mut pc = s.province.trim().chars();
    let province = match (pc.next(), pc.next()) {
        (Some(c), None) => crate::number::primary_province(c),
        _ => None,
    }
    .ok_or_else(|| {
        err(
            "subject.province",
            format!(
                "{:?} is not a province abbreviation (京, 沪, 粤, …)",
                s.province
            ),
        )
    })?;
    codes::check_subject(&s.nature, &s.id_type, s.id_number.trim())
        .map_err(|(field, reason)| err(field, reason))?
        .into_iter()
        .for_each(|n| notes.push(n));
    let owner = match s.username {
        Some(u) => {
            crate::accounts::validate_username(&u)
                .map_err(|e| err("subject.username", e.to_string()))?;
            u
        }
        None => s.id_number.trim().to_string(),
    };
    if w.name.trim().is_empty() {
        return Err(err("website.name", "empty".into()));
    }
    let mut domains = Vec::new();
    for (i, d) in w.domains.iter().enumerate() {
        let field = format!("website.domains[{i}]");
        let host =
            crate::domain::normalise_host(d).map_err(|e| err(&field, e.reason.to_string()))?;
        let host = match host.strip_prefix("www.") {
            Some(rest) if Domain::parse(rest).is_ok() => {
                notes.push(format!("{field}: stripped `www.` from {d}"));
                rest.to_string()
            }
            _ => host,
        };
        domains.push(Domain::parse(&host).map_err(|e| err(&field, e.reason.to_string()))?);
    }
    let mut ips = Vec::new();
    for (i, ip) in w.ips.iter().enumerate() {
        ips.push(ip.trim().parse().map_err(|_| {
            err(
                &format!("website.ips[{i}]"),
                format!("{ip:?} is not an IP address"),
            )
        })?);
    }
    let providers: Vec<String> = w.providers.iter().map(|p| p.trim().to_string()).collect();
    if providers.is_empty() || providers.iter().any(String::is_empty) {
        return Err(err(
            "website.providers",
            "at least one access provider, none empty".into(),
        ));
    }
    let kind = match w.kind.as_deref().map(str::trim) {
        None | Some("") => ServiceKind::Website,
        Some(k) => match crate::codes::CodeTables::embedded()
            .service_type(k)
            .map(|t| t.id.as_str())
        {
            Some("website") => ServiceKind::Website,
            Some("app") => ServiceKind::App,
            Some("mini_program") => ServiceKind::MiniProgram,
            Some(other) => {
                return Err(err(
                    "website.kind",
                    format!("{other} services are not filed here (websites, APPs, mini-programs)"),
                ))
            }
            None => {
                return Err(err(
                    "website.kind",
                    format!("{k:?} is not a service type (网站, APP, 小程序)"),
                ))
            }
        },
    };
    let app_id = w.app_id.as_deref().map(str::trim).filter(|a| !a.is_empty());
    match kind {
        ServiceKind::Website if domains.is_empty() && ips.is_empty() => {
            return Err(err(
                "website.domains",
                "a website lists its domains (or its IPs)".into(),
            ));
        }
        ServiceKind::Website if app_id.is_some() => {
            return Err(err(
                "website.app_id",
                "a website has no app id (file the APP as its own service)".into(),
            ));
        }
        ServiceKind::App | ServiceKind::MiniProgram if app_id.is_none() => {
            return Err(err(
                "website.app_id",
                "an APP names its package name, a mini-program its app id".into(),
            ));
        }
        ServiceKind::App | ServiceKind::MiniProgram if !domains.is_empty() => {
            return Err(err(
                "website.domains",
                "an APP or mini-program is filed by its app id, not by domains".into(),
            ));
        }
        _ => {}
    }
    if !w.access_method.is_empty() && !codes::is_access_method(&w.access_method) {
        notes.push(format!(
            "website.access_method: {:?} is not in the access-method table (kept)",
            w.access_method
        ));
    }
    let mut categories = Vec::new();
    for (i, c) in w.categories.into_iter().enumerate() {
        let (category, document) = match c {
            CategoryInput::Name(n) => (n, None),
            CategoryInput::Full { category, document } => (category, document),
        };
        let pre_approval = codes::category_pre_approval(&category).ok_or_else(|| {
            err(
                &format!("website.categories[{i}]"),
                format!("{category:?} is not a content category"),
            )
        })?;
        categories.push(CategoryEntry {
            category,
            pre_approval,
            document,
            check: None,
        });
    }
    let operating_licence = match w.operating_licence.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(l) => Some(
            LicenceNumber::parse(l).map_err(|e| err("website.operating_licence", e.to_string()))?,
        ),
    };
    Ok(ValidLine {
        subject: SubjectData {
            name: s.name.trim().to_string(),
            nature: s.nature,
            id_type: s.id_type,
            id_number: s.id_number.trim().to_string(),
            province,
            address: s.address,
            contact: s.contact,
            owner,
        },
        submission: Submission {
            kind,
            app_id: app_id.map(str::to_string),
            bulletin_board: w.bulletin_board,
            name: w.name.trim().to_string(),
            homepage: w.homepage,
            domains,
            ips,
            providers,
            access_method: w.access_method,
            server_placement: w.server_placement,
            categories,
            operating_licence,
        },
        notes,
    })
}

/// The code-table checks (natures, certificate types, categories, access methods, identity
/// numbers), against `crate::codes` (`seeds/codes/*.csv`).
mod codes {
    use crate::codes::{check_resident_id, check_uscc, CodeTables, IdChecker, UsccCheck};

    /// Check nature, certificate type and number. Returns notes (warnings): a USCC whose
    /// check character differs (early pilot codes are legal), a certificate type unusual for
    /// the nature.
    pub fn check_subject(
        nature: &str,
        id_type: &str,
        id_number: &str,
    ) -> Result<Vec<String>, (&'static str, String)> {
        let t = CodeTables::embedded();
        let mut notes = Vec::new();
        if !t.is_nature(nature) {
            return Err(("subject.nature", format!("{nature:?} is not a unit nature")));
        }
        let Some(ty) = t.id_type(id_type) else {
            return Err((
                "subject.id_type",
                format!("{id_type:?} is not a certificate type"),
            ));
        };
        if !ty.applies_to(nature) {
            notes.push(format!(
                "subject.id_type: {id_type} is not usual for a {nature} subject"
            ));
        }
        match ty.checker {
            IdChecker::Uscc => match check_uscc(id_number) {
                UsccCheck::Valid => {}
                UsccCheck::BadCheckDigit { expected, found } => notes.push(format!(
                    "subject.id_number: USCC check character is {found}, expected {expected} (kept: early codes are legal)"
                )),
                UsccCheck::Malformed { reason } => {
                    return Err(("subject.id_number", format!("not a USCC: {reason}")))
                }
            },
            IdChecker::ResidentId => check_resident_id(id_number)
                .map_err(|e| ("subject.id_number", format!("not a resident ID number: {e}")))?,
            IdChecker::None => {}
        }
        Ok(notes)
    }

    /// Whether the category needs pre-approval; `None` if it is not a category.
    pub fn category_pre_approval(category: &str) -> Option<bool> {
        CodeTables::embedded()
            .category(category)
            .map(|c| c.pre_approval)
    }

    pub fn is_access_method(method: &str) -> bool {
        CodeTables::embedded().is_access_method(method)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"subject":{"name":"北京示例科技有限公司","nature":"企业","id_type":"统一社会信用代码","id_number":"91110108MA01ABCD2X","province":"京","address":"北京市海淀区","contact":{"name":"张三","mobile":"13800000000","email":"a@example.com"}},"website":{"name":"示例网","homepage":"https://example.com/","domains":["example.com","www.example.net"],"ips":["203.0.113.7"],"providers":["示例接入商"],"access_method":"虚拟主机","categories":[],"operating_licence":null}}"#;

    #[test]
    fn good_line_and_www_is_stripped() {
        let v = parse_line(1, GOOD).unwrap();
        assert_eq!(v.subject.province, '京');
        assert_eq!(v.submission.domains.len(), 2);
        assert_eq!(v.submission.domains[1].as_str(), "example.net");
        assert!(v.notes.iter().any(|n| n.contains("www.")));
        assert_eq!(v.subject.owner, "91110108MA01ABCD2X");
    }

    #[test]
    fn bad_fields_are_named() {
        let bad = GOOD.replace("\"example.com\",", "\"shop.example.com\",");
        let e = parse_line(3, &bad).unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "website.domains[0]"));
        let bad = GOOD.replace("\"京\"", "\"X\"");
        assert_eq!(parse_line(1, &bad).unwrap_err().field, "subject.province");
        let bad = GOOD.replace("203.0.113.7", "300.1.1.1");
        assert_eq!(parse_line(1, &bad).unwrap_err().field, "website.ips[0]");
        let bad = GOOD.replace("[\"示例接入商\"]", "[]");
        assert_eq!(parse_line(1, &bad).unwrap_err().field, "website.providers");
        assert_eq!(parse_line(1, "{not json").unwrap_err().field, "json");
        let bad = GOOD.replace("null}}", "\"浙D3-20210002\"}}");
        assert_eq!(
            parse_line(1, &bad).unwrap_err().field,
            "website.operating_licence"
        );
    }
}
