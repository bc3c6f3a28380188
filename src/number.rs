//! Filing (ICP备), operating-licence (ICP证 / B1 / B2) and public-security (公网安备) numbers:
//! parse real-world text, normalise, and format canonically. Pure: no I/O.
//!
//! Canonical forms (see `shared/corpus/README.md`):
//! - filing: `京ICP备12345678号`, with an optional service suffix `-1`, `-2A` (APP), `-1X`
//!   (mini-program) after `号`;
//! - licence: `京ICP证030173号[-n]`, `京B2-20040019`, `合字B1.B2-20130004`;
//! - public security: `京公网安备11010502030143号`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use unicode_normalization::UnicodeNormalization;

/// Province abbreviations used in numbers: (abbreviation, GB/T 2260 province code).
pub const PROVINCES: &[(char, &str)] = &[
    ('京', "11"),
    ('津', "12"),
    ('冀', "13"),
    ('晋', "14"),
    ('蒙', "15"),
    ('辽', "21"),
    ('吉', "22"),
    ('黑', "23"),
    ('沪', "31"),
    ('苏', "32"),
    ('浙', "33"),
    ('皖', "34"),
    ('闽', "35"),
    ('赣', "36"),
    ('鲁', "37"),
    ('豫', "41"),
    ('鄂', "42"),
    ('湘', "43"),
    ('粤', "44"),
    ('桂', "45"),
    ('琼', "46"),
    ('渝', "50"),
    ('川', "51"),
    ('贵', "52"),
    ('云', "53"),
    ('藏', "54"),
    ('陕', "61"),
    ('甘', "62"),
    ('青', "63"),
    ('宁', "64"),
    ('新', "65"),
];

/// Alternative abbreviations seen in real numbers: (alternative, primary).
pub const ALT_PROVINCES: &[(char, char)] =
    &[('陇', '甘'), ('黔', '贵'), ('滇', '云'), ('蜀', '川')];

/// The primary abbreviation for a province character, if it is one (alternatives map to
/// their primary form: `陇` → `甘`).
pub fn primary_province(c: char) -> Option<char> {
    if PROVINCES.iter().any(|(p, _)| *p == c) {
        return Some(c);
    }
    ALT_PROVINCES
        .iter()
        .find(|(alt, _)| *alt == c)
        .map(|(_, primary)| *primary)
}

/// Whether `c` is a province abbreviation (primary or alternative).
pub fn is_province(c: char) -> bool {
    primary_province(c).is_some()
}

/// Why a text is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NumberError {
    #[error("empty number")]
    Empty,
    #[error("{text:?}: {reason}")]
    Invalid { text: String, reason: &'static str },
}

fn invalid(text: &str, reason: &'static str) -> NumberError {
    NumberError::Invalid {
        text: text.to_string(),
        reason,
    }
}

/// NFKC-normalise (full-width digits and dashes become ASCII) and drop every kind of
/// whitespace, including `&nbsp;` (U+00A0) and the ideographic space (U+3000). Dash-like
/// characters become `-`.
pub fn normalise_text(text: &str) -> String {
    text.nfkc()
        .filter(|c| !c.is_whitespace() && *c != '\u{200b}' && *c != '\u{feff}')
        .map(|c| match c {
            '‐' | '‑' | '‒' | '–' | '—' | '−' | '－' => '-',
            other => other,
        })
        .collect()
}

/// What a service suffix names: a website (`-1`), an APP (`-1A`) or a mini-program (`-1X`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    Website,
    App,
    MiniProgram,
}

impl ServiceKind {
    fn letter(self) -> Option<char> {
        match self {
            ServiceKind::Website => None,
            ServiceKind::App => Some('A'),
            ServiceKind::MiniProgram => Some('X'),
        }
    }
}

/// The `-<n>[A|X]` part of a service number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceSuffix {
    pub index: u32,
    pub kind: ServiceKind,
}

impl fmt::Display for ServiceSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "-{}", self.index)?;
        if let Some(l) = self.kind.letter() {
            write!(f, "{l}")?;
        }
        Ok(())
    }
}

/// An ICP filing number: a subject number (`京ICP备12345678号`) or a service number
/// (`京ICP备12345678号-1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FilingNumber {
    /// The province character as written (`陇` stays `陇`).
    pub province: char,
    /// 6–10 ASCII digits.
    pub digits: String,
    pub suffix: Option<ServiceSuffix>,
}

impl FilingNumber {
    /// A subject number from its parts. `digits` must be 6–10 ASCII digits.
    pub fn subject(province: char, digits: &str) -> Result<Self, NumberError> {
        let n = FilingNumber {
            province,
            digits: digits.to_string(),
            suffix: None,
        };
        n.validate()?;
        Ok(n)
    }

    fn validate(&self) -> Result<(), NumberError> {
        let text = self.to_string();
        if !is_province(self.province) {
            return Err(invalid(&text, "unknown province abbreviation"));
        }
        if !(6..=10).contains(&self.digits.len())
            || !self.digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(invalid(&text, "a filing number has 6–10 digits"));
        }
        if let Some(s) = self.suffix {
            if s.index == 0 {
                return Err(invalid(&text, "a service suffix starts at 1"));
            }
        }
        Ok(())
    }

    /// Parse one number (the whole text), accepting real-world variety: full-width
    /// characters, spaces, `备案` for `备`, a missing `号`, and the suffix written before `号`.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let norm = normalise_text(text);
        if norm.is_empty() {
            return Err(NumberError::Empty);
        }
        let mut chars = norm.chars();
        let province = chars.next().ok_or(NumberError::Empty)?;
        if !is_province(province) {
            return Err(invalid(text, "does not start with a province abbreviation"));
        }
        let rest = chars.as_str();
        let rest = strip_prefix_ci(rest, "ICP").ok_or_else(|| invalid(text, "missing `ICP`"))?;
        let rest = rest
            .strip_prefix("备案")
            .or_else(|| rest.strip_prefix('备'))
            .ok_or_else(|| invalid(text, "missing `备` (is it a licence?)"))?;
        let rest = rest.strip_prefix('号').unwrap_or(rest); // 备案号 / 备号 label fragments
        let digit_len = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        let (digits, mut rest) = rest.split_at(digit_len);
        let mut suffix = None;
        if rest.starts_with('-') {
            let (s, r) = parse_suffix(rest).ok_or_else(|| invalid(text, "bad service suffix"))?;
            suffix = Some(s);
            rest = r;
        }
        rest = rest.strip_prefix('号').unwrap_or(rest);
        if rest.starts_with('-') {
            if suffix.is_some() {
                return Err(invalid(text, "two service suffixes"));
            }
            let (s, r) = parse_suffix(rest).ok_or_else(|| invalid(text, "bad service suffix"))?;
            suffix = Some(s);
            rest = r;
        }
        if !rest.is_empty() {
            return Err(invalid(text, "unexpected text after the number"));
        }
        let n = FilingNumber {
            province,
            digits: digits.to_string(),
            suffix,
        };
        n.validate().map_err(|_| {
            invalid(
                text,
                if digits.is_empty() {
                    "no digits"
                } else {
                    "a filing number has 6–10 digits"
                },
            )
        })?;
        Ok(n)
    }

    /// Is this a subject number (no service suffix)?
    pub fn is_subject(&self) -> bool {
        self.suffix.is_none()
    }

    /// The subject number this number belongs to.
    pub fn subject_number(&self) -> FilingNumber {
        FilingNumber {
            province: self.province,
            digits: self.digits.clone(),
            suffix: None,
        }
    }

    /// The service number `-index[A|X]` under this subject.
    pub fn with_service(&self, index: u32, kind: ServiceKind) -> FilingNumber {
        FilingNumber {
            province: self.province,
            digits: self.digits.clone(),
            suffix: Some(ServiceSuffix { index, kind }),
        }
    }

    /// The primary province abbreviation (`陇` → `甘`).
    pub fn primary_province(&self) -> char {
        primary_province(self.province).unwrap_or(self.province)
    }

    /// The same number with the primary province abbreviation — use it to compare numbers.
    pub fn to_primary(&self) -> FilingNumber {
        FilingNumber {
            province: self.primary_province(),
            ..self.clone()
        }
    }

    /// Whether two numbers name the same filing, allowing alternative province forms.
    pub fn same_as(&self, other: &FilingNumber) -> bool {
        self.to_primary() == other.to_primary()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    if s.len() >= prefix.len()
        && s.is_char_boundary(prefix.len())
        && s[..prefix.len()].eq_ignore_ascii_case(prefix)
    {
        Some(&s[prefix.len()..])
    } else {
        None
    }
}

/// Parse `-<n>[A|X]` at the start of `s`.
fn parse_suffix(s: &str) -> Option<(ServiceSuffix, &str)> {
    let s = s.strip_prefix('-')?;
    let n = s.bytes().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 || n > 4 {
        return None;
    }
    let index: u32 = s[..n].parse().ok()?;
    let mut rest = &s[n..];
    let kind = match rest.chars().next() {
        Some('A') | Some('a') => {
            rest = &rest[1..];
            ServiceKind::App
        }
        Some('X') | Some('x') => {
            rest = &rest[1..];
            ServiceKind::MiniProgram
        }
        _ => ServiceKind::Website,
    };
    Some((ServiceSuffix { index, kind }, rest))
}

impl fmt::Display for FilingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}ICP备{}号", self.province, self.digits)?;
        if let Some(s) = self.suffix {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

impl FromStr for FilingNumber {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FilingNumber::parse(s)
    }
}

macro_rules! serde_as_string {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                <$t>::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_string!(FilingNumber);
serde_as_string!(LicenceNumber);
serde_as_string!(PsbNumber);

/// The kind of value-added telecom licence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LicenceClass {
    B1,
    B2,
    B1B2,
}

/// An operating licence: `京ICP证030173号`, `京B2-20040019`, `合字B1.B2-20130004`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LicenceNumber {
    /// `<prov>ICP证<digits>号[-n]`
    Icp {
        province: char,
        digits: String,
        suffix: Option<u32>,
    },
    /// `<prov|合字>B1|B2|B1.B2-<8 digits>[-n]`; `province` is `None` for 合字 (foreign-invested).
    ValueAdded {
        province: Option<char>,
        class: LicenceClass,
        digits: String,
        suffix: Option<u32>,
    },
}

impl LicenceNumber {
    /// Parse one licence number (the whole text). Registrar licences such as `浙D3-…` and
    /// filing numbers (`…ICP备…`) are refused.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let norm = normalise_text(text);
        if norm.is_empty() {
            return Err(NumberError::Empty);
        }
        let (province, rest) = if let Some(r) = norm.strip_prefix("合字") {
            (None, r)
        } else {
            let mut cs = norm.chars();
            let p = cs.next().ok_or(NumberError::Empty)?;
            if !is_province(p) {
                return Err(invalid(
                    text,
                    "does not start with a province abbreviation or 合字",
                ));
            }
            (Some(p), cs.as_str())
        };
        if let Some(r) = strip_prefix_ci(rest, "ICP") {
            let province = province.ok_or_else(|| invalid(text, "合字 is not used with ICP证"))?;
            let r = r
                .strip_prefix('证')
                .ok_or_else(|| invalid(text, "missing `证` (is it a filing number?)"))?;
            let n = r.bytes().take_while(|b| b.is_ascii_digit()).count();
            if !(6..=8).contains(&n) {
                return Err(invalid(text, "an ICP licence has 6 digits"));
            }
            let digits = r[..n].to_string();
            let r = &r[n..];
            let r = r.strip_prefix('号').unwrap_or(r);
            let suffix = parse_plain_suffix(text, r)?;
            return Ok(LicenceNumber::Icp {
                province,
                digits,
                suffix,
            });
        }
        let (class, r) = if let Some(r) = strip_prefix_ci(rest, "B1.B2") {
            (LicenceClass::B1B2, r)
        } else if let Some(r) = strip_prefix_ci(rest, "B1B2") {
            (LicenceClass::B1B2, r)
        } else if let Some(r) = strip_prefix_ci(rest, "B1") {
            (LicenceClass::B1, r)
        } else if let Some(r) = strip_prefix_ci(rest, "B2") {
            (LicenceClass::B2, r)
        } else {
            return Err(invalid(text, "not an ICP证, B1 or B2 licence"));
        };
        let r = r
            .strip_prefix('-')
            .ok_or_else(|| invalid(text, "missing `-` after the licence class"))?;
        let n = r.bytes().take_while(|b| b.is_ascii_digit()).count();
        if n != 8 {
            return Err(invalid(text, "a B1/B2 licence has 8 digits"));
        }
        let digits = r[..n].to_string();
        let suffix = parse_plain_suffix(text, &r[n..])?;
        Ok(LicenceNumber::ValueAdded {
            province,
            class,
            digits,
            suffix,
        })
    }
}

fn parse_plain_suffix(text: &str, r: &str) -> Result<Option<u32>, NumberError> {
    if r.is_empty() {
        return Ok(None);
    }
    let s = r
        .strip_prefix('-')
        .ok_or_else(|| invalid(text, "unexpected text after the number"))?;
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(text, "bad suffix"));
    }
    s.parse().map(Some).map_err(|_| invalid(text, "bad suffix"))
}

impl fmt::Display for LicenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LicenceNumber::Icp {
                province,
                digits,
                suffix,
            } => {
                write!(f, "{province}ICP证{digits}号")?;
                if let Some(s) = suffix {
                    write!(f, "-{s}")?;
                }
            }
            LicenceNumber::ValueAdded {
                province,
                class,
                digits,
                suffix,
            } => {
                match province {
                    Some(p) => write!(f, "{p}")?,
                    None => write!(f, "合字")?,
                }
                let c = match class {
                    LicenceClass::B1 => "B1",
                    LicenceClass::B2 => "B2",
                    LicenceClass::B1B2 => "B1.B2",
                };
                write!(f, "{c}-{digits}")?;
                if let Some(s) = suffix {
                    write!(f, "-{s}")?;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for LicenceNumber {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LicenceNumber::parse(s)
    }
}

/// A public-security (公安) filing number: `京公网安备11010502030143号`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PsbNumber {
    pub province: char,
    pub digits: String,
}

impl PsbNumber {
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let norm = normalise_text(text);
        let mut cs = norm.chars();
        let province = cs.next().ok_or(NumberError::Empty)?;
        if !is_province(province) {
            return Err(invalid(text, "does not start with a province abbreviation"));
        }
        let r = cs
            .as_str()
            .strip_prefix("公网安备")
            .ok_or_else(|| invalid(text, "missing `公网安备`"))?;
        let n = r.bytes().take_while(|b| b.is_ascii_digit()).count();
        if !(10..=16).contains(&n) {
            return Err(invalid(text, "a public-security number has 14 digits"));
        }
        let digits = r[..n].to_string();
        let r = &r[n..];
        let r = r.strip_prefix('号').unwrap_or(r);
        if !r.is_empty() {
            return Err(invalid(text, "unexpected text after the number"));
        }
        Ok(PsbNumber { province, digits })
    }
}

impl fmt::Display for PsbNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}公网安备{}号", self.province, self.digits)
    }
}

impl FromStr for PsbNumber {
    type Err = NumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PsbNumber::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_filing_numbers_round_trip() {
        for s in [
            "京ICP备12345678号",
            "京ICP备12345678号-1",
            "粤ICP备2019045678号-2A",
            "陇ICP备123456号-1X",
        ] {
            assert_eq!(FilingNumber::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn real_world_variety_is_repaired() {
        let cases = [
            ("京ICP备 1234 5678 号-１", "京ICP备12345678号-1"),
            ("粤ICP备案15047721号", "粤ICP备15047721号"),
            ("京ICP备10287415", "京ICP备10287415号"),
            ("滇ICP备09018326-5号", "滇ICP备09018326号-5"),
            ("京ＩＣＰ备１２３４５６７８号", "京ICP备12345678号"),
        ];
        for (input, want) in cases {
            assert_eq!(
                FilingNumber::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
        }
    }

    #[test]
    fn non_numbers_are_refused() {
        for s in [
            "",
            "ICP备88888888号",
            "萌ICP备12345678号",
            "京ICP备XXXXXXXX号",
            "京ICP备12345号",
            "京ICP备12345678901号",
            "浙D3-20210002",
            "京ICP证030173号",
            "京ICP备12345678号-0",
        ] {
            assert!(FilingNumber::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn licences() {
        for (input, want) in [
            ("京ICP证030173号", "京ICP证030173号"),
            ("京B2-20040019", "京B2-20040019"),
            ("合字B1.B2-20130004", "合字B1.B2-20130004"),
            ("浙 B2－20090317", "浙B2-20090317"),
        ] {
            assert_eq!(LicenceNumber::parse(input).unwrap().to_string(), want);
        }
        assert!(LicenceNumber::parse("浙D3-20210002").is_err());
        assert!(LicenceNumber::parse("京ICP备12345678号").is_err());
    }

    #[test]
    fn psb() {
        assert_eq!(
            PsbNumber::parse("京公网安备 11010502030143号")
                .unwrap()
                .to_string(),
            "京公网安备11010502030143号"
        );
        assert!(PsbNumber::parse("京公网安备1101********号").is_err());
    }

    #[test]
    fn subject_and_service() {
        let n = FilingNumber::parse("陇ICP备123456号-2").unwrap();
        assert!(!n.is_subject());
        assert_eq!(n.subject_number().to_string(), "陇ICP备123456号");
        assert!(n.same_as(&FilingNumber::parse("甘ICP备123456号-2").unwrap()));
    }
}
