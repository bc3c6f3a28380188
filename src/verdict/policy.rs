//! Policy files: what each finding code means in law and practice (severity, legal basis,
//! action, fine, confirmations), and the per-province switches (which number must be shown,
//! whether the old MIIT hosts count as linked). Pure: parses text handed in; reading the files
//! from disk is the caller's job. `policies/national.toml` and `policies/provinces/*.toml` are
//! also embedded so the scanner runs with no files.
//!
//! Hash scheme (`Policy::sha256`): for the national policy alone, the SHA-256 of the file
//! bytes (what `sha256sum national.toml` prints). For a merged national + province policy,
//! the SHA-256 of `national bytes ‖ 0x00 ‖ override bytes` (TOML text cannot contain NUL, so
//! the split is unambiguous): `cat national.toml <(printf '\0') provinces/粤.toml | sha256sum`.
//! `Policy::sources` keeps each file's own hash.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::FindingCode;

/// How serious a finding is.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: &'static [Severity] = <Severity as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which filing number a site must show in its footer.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum RequiredNumber {
    /// The service number (`京ICP备12345678号-1`).
    Service,
    /// The subject number (`京ICP备12345678号`).
    Subject,
    /// Either of the two.
    Either,
}

impl RequiredNumber {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The fine a finding may attract, as a range in yuan and/or a text (e.g. "3–5× illegal
/// income").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fine {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_yuan: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_yuan: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl fmt::Display for Fine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min_yuan, self.max_yuan) {
            (Some(a), Some(b)) if a == b => write!(f, "¥{a}")?,
            (Some(a), Some(b)) => write!(f, "¥{a}–{b}")?,
            (Some(a), None) => write!(f, "from ¥{a}")?,
            (None, Some(b)) => write!(f, "up to ¥{b}")?,
            (None, None) => {}
        }
        if let Some(t) = &self.text {
            if self.min_yuan.is_some() || self.max_yuan.is_some() {
                f.write_str("; ")?;
            }
            f.write_str(t)?;
        }
        Ok(())
    }
}

/// What the policy says about one finding code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingRule {
    pub severity: Severity,
    /// E.g. `292 Art.19; 33 Art.22` (292 = State Council Order 292, 33 = MII Order 33).
    pub legal_basis: String,
    pub action: String,
    /// The legal basis and action in Chinese (`legal_basis_zh`, `action_zh`), for pages and
    /// reports read in Chinese; `None`: only the English text exists (a province override
    /// that changed `action` without giving `action_zh` drops the national Chinese text, so
    /// the two never disagree).
    pub legal_basis_zh: Option<String>,
    pub action_zh: Option<String>,
    pub fine: Fine,
    /// Consecutive scans showing the finding before it alerts (at least 1).
    pub confirmations: u32,
}

impl FindingRule {
    /// The legal basis in `zh` (Chinese when given) or English.
    pub fn legal_basis_in(&self, zh: bool) -> &str {
        match &self.legal_basis_zh {
            Some(t) if zh => t,
            _ => &self.legal_basis,
        }
    }

    /// The action in `zh` (Chinese when given) or English.
    pub fn action_in(&self, zh: bool) -> &str {
        match &self.action_zh {
            Some(t) if zh => t,
            _ => &self.action,
        }
    }
}

/// One policy file that went into a [`Policy`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySource {
    /// The path or label the text came from (e.g. `policies/national.toml`, `embedded:粤`).
    pub label: String,
    pub sha256: String,
}

/// A complete policy: national rules, possibly with one province's overrides applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The province whose overrides are applied (`None`: national only).
    pub province: Option<char>,
    pub required_number: RequiredNumber,
    /// Whether links to `www.beian.miit.gov.cn`, `www.miibeian.gov.cn`, `www.miitbeian.gov.cn`
    /// (and the bare `miibeian.gov.cn`, `miitbeian.gov.cn`) count as linked.
    pub accept_legacy_link_hosts: bool,
    /// Indexed by `FindingCode as usize`; complete by construction.
    rules: Vec<FindingRule>,
    /// See the module documentation for the scheme.
    pub sha256: String,
    pub sources: Vec<PolicySource>,
}

/// Why a policy could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error(
        "{path}: no entry for finding code `{code}` (every code needs one in the national policy)"
    )]
    MissingCode { path: String, code: &'static str },
    #[error("{path}: finding `{code}` has no `{field}`")]
    MissingField {
        path: String,
        code: &'static str,
        field: &'static str,
    },
    #[error("{path}: finding `{code}`: {reason}")]
    BadValue {
        path: String,
        code: &'static str,
        reason: String,
    },
    #[error("{path}: {reason}")]
    BadProvince { path: String, reason: String },
}

// ---- raw file shapes (strict) ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    policy: RawHeader,
    #[serde(default)]
    findings: RawFindings,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeader {
    /// Free text naming the policy.
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    /// Province abbreviation; required in (and only allowed in) province overrides.
    #[serde(default)]
    province: Option<String>,
    #[serde(default)]
    required_number: Option<RequiredNumber>,
    #[serde(default)]
    accept_legacy_link_hosts: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    severity: Option<Severity>,
    legal_basis: Option<String>,
    action: Option<String>,
    #[serde(default)]
    legal_basis_zh: Option<String>,
    #[serde(default)]
    action_zh: Option<String>,
    fine: Option<Fine>,
    confirmations: Option<u32>,
}

macro_rules! raw_findings {
    ($($field:ident => $code:ident),* $(,)?) => {
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RawFindings {
            $(#[serde(default)] $field: Option<RawRule>,)*
        }
        impl RawFindings {
            fn get(&self, code: FindingCode) -> Option<&RawRule> {
                match code {
                    $(FindingCode::$code => self.$field.as_ref(),)*
                }
            }
        }
    };
}

raw_findings! {
    unfiled => Unfiled,
    filing_revoked => FilingRevoked,
    cert_missing => CertMissing,
    cert_misplaced => CertMisplaced,
    cert_malformed => CertMalformed,
    cert_bad_signature => CertBadSignature,
    cert_domain_mismatch => CertDomainMismatch,
    cert_superseded => CertSuperseded,
    cert_expired => CertExpired,
    number_missing => NumberMissing,
    number_mismatch => NumberMismatch,
    number_unlinked => NumberUnlinked,
    number_misplaced => NumberMisplaced,
    licence_missing => LicenceMissing,
    access_provider_mismatch => AccessProviderMismatch,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut line = 1;
    let mut col = 1;
    for (i, c) in text.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

fn parse_raw(path: &str, text: &str) -> Result<RawFile, PolicyError> {
    toml::from_str::<RawFile>(text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
        PolicyError::Parse {
            path: path.to_string(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}

fn check_rule(path: &str, code: FindingCode, rule: &RawRule) -> Result<(), PolicyError> {
    if let Some(0) = rule.confirmations {
        return Err(PolicyError::BadValue {
            path: path.to_string(),
            code: code.as_str(),
            reason: "confirmations must be at least 1".into(),
        });
    }
    if let Some(fine) = &rule.fine {
        if let (Some(a), Some(b)) = (fine.min_yuan, fine.max_yuan) {
            if a > b {
                return Err(PolicyError::BadValue {
                    path: path.to_string(),
                    code: code.as_str(),
                    reason: format!("fine min_yuan {a} exceeds max_yuan {b}"),
                });
            }
        }
        if fine.min_yuan.is_none() && fine.max_yuan.is_none() && fine.text.is_none() {
            return Err(PolicyError::BadValue {
                path: path.to_string(),
                code: code.as_str(),
                reason: "an empty fine table (give min_yuan/max_yuan or text)".into(),
            });
        }
    }
    Ok(())
}

fn parse_province(path: &str, text: &str) -> Result<char, PolicyError> {
    let mut cs = text.chars();
    match (cs.next(), cs.next()) {
        (Some(c), None) => {
            crate::number::primary_province(c).ok_or_else(|| PolicyError::BadProvince {
                path: path.to_string(),
                reason: format!("`{text}` is not a province abbreviation"),
            })
        }
        _ => Err(PolicyError::BadProvince {
            path: path.to_string(),
            reason: format!("`{text}` is not a single province abbreviation"),
        }),
    }
}

const NATIONAL_TEXT: &str = include_str!("../../policies/national.toml");
/// Embedded province overrides: (abbreviation, file text).
const PROVINCE_TEXTS: &[(char, &str)] = &[
    ('京', include_str!("../../policies/provinces/京.toml")),
    ('粤', include_str!("../../policies/provinces/粤.toml")),
    ('沪', include_str!("../../policies/provinces/沪.toml")),
];

impl Policy {
    /// Parse the national policy. Every finding code needs an entry with `severity`,
    /// `legal_basis`, `action` and `fine` (`confirmations` defaults to 1). `path` names the
    /// source in errors.
    pub fn national(path: &str, text: &str) -> Result<Policy, PolicyError> {
        let raw = parse_raw(path, text)?;
        if let Some(p) = &raw.policy.province {
            return Err(PolicyError::BadProvince {
                path: path.to_string(),
                reason: format!(
                    "the national policy names province `{p}`; put province rules in policies/provinces/"
                ),
            });
        }
        let mut rules = Vec::with_capacity(FindingCode::ALL.len());
        for &code in FindingCode::ALL {
            let r = raw.findings.get(code).ok_or(PolicyError::MissingCode {
                path: path.to_string(),
                code: code.as_str(),
            })?;
            check_rule(path, code, r)?;
            let missing = |field| PolicyError::MissingField {
                path: path.to_string(),
                code: code.as_str(),
                field,
            };
            rules.push(FindingRule {
                severity: r.severity.ok_or_else(|| missing("severity"))?,
                legal_basis: r
                    .legal_basis
                    .clone()
                    .ok_or_else(|| missing("legal_basis"))?,
                action: r.action.clone().ok_or_else(|| missing("action"))?,
                legal_basis_zh: r.legal_basis_zh.clone(),
                action_zh: r.action_zh.clone(),
                fine: r.fine.clone().ok_or_else(|| missing("fine"))?,
                confirmations: r.confirmations.unwrap_or(1),
            });
        }
        let sha = sha256_hex(text.as_bytes());
        Ok(Policy {
            province: None,
            required_number: raw.policy.required_number.unwrap_or(RequiredNumber::Either),
            accept_legacy_link_hosts: raw.policy.accept_legacy_link_hosts.unwrap_or(true),
            rules,
            sha256: sha.clone(),
            sources: vec![PolicySource {
                label: path.to_string(),
                sha256: sha,
            }],
        })
    }

    /// The national policy (`national_text`) with one province override applied. The override
    /// must name its province (`[policy] province = "粤"`) and may set any subset of fields.
    pub fn merged(
        national_path: &str,
        national_text: &str,
        override_path: &str,
        override_text: &str,
    ) -> Result<Policy, PolicyError> {
        let mut p = Policy::national(national_path, national_text)?;
        let raw = parse_raw(override_path, override_text)?;
        let prov = match &raw.policy.province {
            Some(s) => parse_province(override_path, s)?,
            None => {
                return Err(PolicyError::BadProvince {
                    path: override_path.to_string(),
                    reason: "a province override needs `[policy] province = \"<abbr>\"`".into(),
                })
            }
        };
        p.province = Some(prov);
        if let Some(r) = raw.policy.required_number {
            p.required_number = r;
        }
        if let Some(b) = raw.policy.accept_legacy_link_hosts {
            p.accept_legacy_link_hosts = b;
        }
        for &code in FindingCode::ALL {
            let Some(o) = raw.findings.get(code) else {
                continue;
            };
            check_rule(override_path, code, o)?;
            let rule = &mut p.rules[code as usize];
            if let Some(s) = o.severity {
                rule.severity = s;
            }
            if let Some(s) = &o.legal_basis {
                rule.legal_basis = s.clone();
                rule.legal_basis_zh = None;
            }
            if let Some(s) = &o.action {
                rule.action = s.clone();
                rule.action_zh = None;
            }
            if let Some(s) = &o.legal_basis_zh {
                rule.legal_basis_zh = Some(s.clone());
            }
            if let Some(s) = &o.action_zh {
                rule.action_zh = Some(s.clone());
            }
            if let Some(f) = &o.fine {
                rule.fine = f.clone();
            }
            if let Some(c) = o.confirmations {
                rule.confirmations = c;
            }
        }
        let mut joined = Vec::with_capacity(national_text.len() + override_text.len() + 1);
        joined.extend_from_slice(national_text.as_bytes());
        joined.push(0);
        joined.extend_from_slice(override_text.as_bytes());
        p.sha256 = sha256_hex(&joined);
        p.sources.push(PolicySource {
            label: override_path.to_string(),
            sha256: sha256_hex(override_text.as_bytes()),
        });
        Ok(p)
    }

    /// The embedded copy of `policies/national.toml`.
    pub fn embedded_national() -> Result<Policy, PolicyError> {
        Policy::national("embedded:policies/national.toml", NATIONAL_TEXT)
    }

    /// The embedded national policy with the embedded override for `province` (alternative
    /// abbreviations map to their primary form); national only when there is no override.
    pub fn embedded_for_province(province: char) -> Result<Policy, PolicyError> {
        let prov = crate::number::primary_province(province).unwrap_or(province);
        match PROVINCE_TEXTS.iter().find(|(c, _)| *c == prov) {
            Some((c, text)) => Policy::merged(
                "embedded:policies/national.toml",
                NATIONAL_TEXT,
                &format!("embedded:policies/provinces/{c}.toml"),
                text,
            ),
            None => Policy::embedded_national(),
        }
    }

    /// The provinces that have an embedded override.
    pub fn embedded_provinces() -> Vec<char> {
        PROVINCE_TEXTS.iter().map(|(c, _)| *c).collect()
    }

    /// The rule for one finding code.
    pub fn rule(&self, code: FindingCode) -> &FindingRule {
        &self.rules[code as usize]
    }
}

/// The national policy plus every province override: `evaluate` picks the province of the
/// filing that covers the host (national for unfiled hosts).
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub national: Policy,
    pub provinces: BTreeMap<char, Policy>,
}

impl PolicySet {
    /// A set with no province overrides.
    pub fn national_only(national: Policy) -> PolicySet {
        PolicySet {
            national,
            provinces: BTreeMap::new(),
        }
    }

    /// Parse the national text and each `(path, text)` province override.
    pub fn from_texts(
        national_path: &str,
        national_text: &str,
        overrides: &[(&str, &str)],
    ) -> Result<PolicySet, PolicyError> {
        let national = Policy::national(national_path, national_text)?;
        let mut provinces = BTreeMap::new();
        for (path, text) in overrides {
            let p = Policy::merged(national_path, national_text, path, text)?;
            if let Some(c) = p.province {
                if provinces.insert(c, p).is_some() {
                    return Err(PolicyError::BadProvince {
                        path: path.to_string(),
                        reason: format!("a second override for province {c}"),
                    });
                }
            }
        }
        Ok(PolicySet {
            national,
            provinces,
        })
    }

    /// The embedded policies.
    pub fn embedded() -> Result<PolicySet, PolicyError> {
        let national = Policy::embedded_national()?;
        let mut provinces = BTreeMap::new();
        for (c, _) in PROVINCE_TEXTS {
            provinces.insert(*c, Policy::embedded_for_province(*c)?);
        }
        Ok(PolicySet {
            national,
            provinces,
        })
    }

    /// The policy for a province (alternative abbreviations map to their primary form).
    pub fn for_province(&self, province: Option<char>) -> &Policy {
        province
            .map(|c| crate::number::primary_province(c).unwrap_or(c))
            .and_then(|c| self.provinces.get(&c))
            .unwrap_or(&self.national)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_rule_has_its_chinese_text_and_an_english_override_drops_it() {
        let set = PolicySet::embedded().unwrap();
        for p in std::iter::once(set.for_province(None)).chain(
            ['京', '沪', '粤']
                .iter()
                .map(|c| set.for_province(Some(*c))),
        ) {
            for &code in FindingCode::ALL {
                let r = p.rule(code);
                let (b, a) = (r.legal_basis_in(true), r.action_in(true));
                assert!(
                    b.contains('《') || b.contains('；') || b.contains('条'),
                    "{:?} {code:?}: {b}",
                    p.province
                );
                assert!(
                    a.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) && a != r.action,
                    "{:?} {code:?}: {a}",
                    p.province
                );
                assert_eq!(r.action_in(false), r.action);
            }
        }
        let gd = set
            .for_province(Some('粤'))
            .rule(FindingCode::NumberMismatch);
        assert!(gd.action_in(true).starts_with("广东要求"));
        // An override changing the English action alone falls back to English in Chinese.
        let over =
            "[policy]\nprovince = \"沪\"\n[findings.number_missing]\naction = \"Show it.\"\n";
        let p = Policy::merged("n", NATIONAL_TEXT, "o", over).unwrap();
        assert_eq!(
            p.rule(FindingCode::NumberMissing).action_in(true),
            "Show it."
        );
        assert!(p
            .rule(FindingCode::NumberMissing)
            .legal_basis_in(true)
            .contains("第十二条"));
    }

    #[test]
    fn embedded_policies_load_and_cover_every_code() {
        let n = Policy::embedded_national().unwrap();
        assert_eq!(n.province, None);
        assert_eq!(n.required_number, RequiredNumber::Either);
        assert!(n.accept_legacy_link_hosts);
        assert_eq!(n.sha256, sha256_hex(NATIONAL_TEXT.as_bytes()));
        for &code in FindingCode::ALL {
            let r = n.rule(code);
            assert!(
                !r.legal_basis.is_empty() && !r.action.is_empty(),
                "{code:?}"
            );
            assert!(r.confirmations >= 1);
        }
        assert_eq!(
            n.rule(FindingCode::NumberMissing).legal_basis,
            "292 Art.12; 292 Art.22"
        );
        let set = PolicySet::embedded().unwrap();
        assert!(set.provinces.len() >= 3);
    }

    #[test]
    fn province_override_changes_only_what_it_names() {
        let n = Policy::embedded_national().unwrap();
        let gd = Policy::embedded_for_province('粤').unwrap();
        assert_eq!(gd.province, Some('粤'));
        assert_eq!(gd.required_number, RequiredNumber::Service);
        assert_ne!(gd.sha256, n.sha256);
        assert_eq!(gd.sources.len(), 2);
        assert_eq!(gd.rule(FindingCode::Unfiled), n.rule(FindingCode::Unfiled));
        let bj = Policy::embedded_for_province('京').unwrap();
        assert!(!bj.accept_legacy_link_hosts);
        assert!(
            bj.rule(FindingCode::NumberUnlinked).severity
                > n.rule(FindingCode::NumberUnlinked).severity
        );
        // No override: national.
        assert_eq!(Policy::embedded_for_province('藏').unwrap(), n);
        // Merged hash = sha256(national ‖ NUL ‖ override).
        let text = PROVINCE_TEXTS.iter().find(|(c, _)| *c == '粤').unwrap().1;
        let mut joined = NATIONAL_TEXT.as_bytes().to_vec();
        joined.push(0);
        joined.extend_from_slice(text.as_bytes());
        assert_eq!(gd.sha256, sha256_hex(&joined));
    }

    #[test]
    fn unknown_key_is_an_error_naming_file_line_and_column() {
        let text = NATIONAL_TEXT.replacen(
            "[findings.cert_missing]\n",
            "[findings.cert_missing]\nseverty = \"low\"\n",
            1,
        );
        let line = text.lines().position(|l| l.starts_with("severty")).unwrap() + 1;
        let err = Policy::national("policies/national.toml", &text).unwrap_err();
        match &err {
            PolicyError::Parse {
                path,
                line: l,
                column,
                message,
            } => {
                assert_eq!(path, "policies/national.toml");
                assert_eq!(*l, line);
                assert_eq!(*column, 1);
                assert!(message.contains("severty"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(err
            .to_string()
            .starts_with(&format!("policies/national.toml:{line}:1: ")));
    }

    #[test]
    fn unknown_finding_code_is_refused() {
        let text = format!("{NATIONAL_TEXT}\n[findings.not_a_code]\nseverity = \"low\"\n");
        let err = Policy::national("n.toml", &text).unwrap_err();
        assert!(matches!(err, PolicyError::Parse { .. }), "{err}");
        assert!(err.to_string().contains("not_a_code"), "{err}");
    }

    #[test]
    fn missing_code_is_an_error_naming_the_code() {
        let start = NATIONAL_TEXT.find("[findings.licence_missing]").unwrap();
        let end = NATIONAL_TEXT[start + 1..]
            .find("[findings.")
            .map(|e| e + start + 1)
            .unwrap_or(NATIONAL_TEXT.len());
        let text = format!("{}{}", &NATIONAL_TEXT[..start], &NATIONAL_TEXT[end..]);
        let err = Policy::national("n.toml", &text).unwrap_err();
        assert_eq!(
            err,
            PolicyError::MissingCode {
                path: "n.toml".into(),
                code: "licence_missing"
            }
        );
        assert!(err.to_string().contains("licence_missing"));
    }

    #[test]
    fn bad_values_are_refused() {
        let o = "[policy]\nprovince = \"粤\"\n[findings.unfiled]\nconfirmations = 0\n";
        let err = Policy::merged("n", NATIONAL_TEXT, "o.toml", o).unwrap_err();
        assert!(
            matches!(
                err,
                PolicyError::BadValue {
                    code: "unfiled",
                    ..
                }
            ),
            "{err}"
        );
        let o = "[policy]\nprovince = \"粤\"\n[findings.unfiled]\nseverity = \"severe\"\n";
        let err = Policy::merged("n", NATIONAL_TEXT, "o.toml", o).unwrap_err();
        assert!(matches!(err, PolicyError::Parse { line: 4, .. }), "{err}");
        let o = "[policy]\nprovince = \"X\"\n";
        assert!(matches!(
            Policy::merged("n", NATIONAL_TEXT, "o.toml", o),
            Err(PolicyError::BadProvince { .. })
        ));
        let o = "[findings.unfiled]\nseverity = \"low\"\n";
        assert!(matches!(
            Policy::merged("n", NATIONAL_TEXT, "o.toml", o),
            Err(PolicyError::BadProvince { .. })
        ));
        let o = "[policy]\nprovince = \"滇\"\n[findings.unfiled]\nfine = { min_yuan = 9, max_yuan = 1 }\n";
        assert!(matches!(
            Policy::merged("n", NATIONAL_TEXT, "o.toml", o),
            Err(PolicyError::BadValue { .. })
        ));
        let o = "[policy]\nprovince = \"滇\"\nrequired_number = \"subject\"\n";
        let p = Policy::merged("n", NATIONAL_TEXT, "o.toml", o).unwrap();
        assert_eq!(p.province, Some('云'));
        assert_eq!(p.required_number, RequiredNumber::Subject);
    }

    #[test]
    fn set_picks_the_province_policy() {
        let set = PolicySet::embedded().unwrap();
        assert_eq!(set.for_province(Some('粤')).province, Some('粤'));
        assert_eq!(set.for_province(Some('藏')).province, None);
        assert_eq!(set.for_province(None).province, None);
    }
}
