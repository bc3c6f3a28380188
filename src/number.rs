//! Filing (ICP备), operating-licence (ICP证 / B1 / B2) and public-security (公网安备) numbers:
//! parse real-world text, normalise, and format canonically. Pure: no I/O.
//!
//! Canonical forms (see `shared/corpus/README.md`):
//! - filing: `京ICP备12345678号`, with an optional service suffix `-1`, `-2A` (APP), `-1X`
//!   (mini-program) after `号`;
//! - licence: `京ICP证030173号[-n]`, `京B2-20040019`, `合字B1.B2-20130004`;
//! - public security: `京公网安备11010502030143号` (the abbreviation is the one of the
//!   province whose GB/T 2260 code starts the 14 digits);
//! - a `B1`/`B2` licence shown with no prefix keeps none: `B2-20090317`.

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

/// Every abbreviation (primary and alternative) with its primary form, sorted once.
static SORTED_PROVINCES: std::sync::LazyLock<Vec<(char, char)>> = std::sync::LazyLock::new(|| {
    let mut all: Vec<(char, char)> = PROVINCES
        .iter()
        .map(|(p, _)| (*p, *p))
        .chain(ALT_PROVINCES.iter().copied())
        .collect();
    all.sort_unstable();
    all
});

/// The abbreviations, one bit each (most characters are not one).
static MAYBE_PROVINCE: std::sync::LazyLock<BmpSet> = std::sync::LazyLock::new(|| {
    BmpSet::from_fn(|c| {
        SORTED_PROVINCES
            .binary_search_by_key(&c, |(k, _)| *k)
            .is_ok()
    })
});

/// A set of BMP characters, one bit each: a per-character question that every character of
/// a page asks, answered once for all of them.
struct BmpSet(Box<[u64; 1024]>);

impl BmpSet {
    /// The BMP characters `member` holds for.
    fn from_fn(member: impl Fn(char) -> bool) -> BmpSet {
        let mut bits = Box::new([0u64; 1024]);
        for u in 0..0x1_0000u32 {
            if char::from_u32(u).is_some_and(&member) {
                bits[(u >> 6) as usize] |= 1 << (u & 63);
            }
        }
        BmpSet(bits)
    }

    #[inline]
    fn contains(&self, c: char) -> bool {
        let n = c as usize;
        n < 0x1_0000 && self.0[n >> 6] & (1 << (n & 63)) != 0
    }
}

/// The primary abbreviation for a province character, if it is one (alternatives map to
/// their primary form: `陇` → `甘`). Called for every character of a page's text: the bitmap
/// answers most of them inline, a binary search the rest.
#[inline]
pub fn primary_province(c: char) -> Option<char> {
    let n = c as usize;
    // Every abbreviation is a CJK unified ideograph.
    if !(0x4E00..=0x9FFF).contains(&n) || !MAYBE_PROVINCE.contains(c) {
        return None;
    }
    SORTED_PROVINCES
        .binary_search_by_key(&c, |(k, _)| *k)
        .ok()
        .map(|i| SORTED_PROVINCES[i].1)
}

/// Whether `c` is a province abbreviation (primary or alternative).
#[inline]
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

    /// Read a number only if `text` is exactly its canonical form (`京ICP备12345678号`,
    /// `京ICP备12345678号-2A`), without normalising: `Some(n)` exactly when
    /// [`FilingNumber::parse`] accepts `text` as `n` and `n` displays as `text` (a property
    /// test holds the two equal). For readers of canonical text (certificates, stored
    /// records); anything else, `None`, goes through [`FilingNumber::parse`].
    pub fn parse_canonical(text: &str) -> Option<Self> {
        let mut chars = text.chars();
        let province = chars.next().filter(|c| is_province(*c))?;
        let rest = chars.as_str().strip_prefix("ICP备")?;
        let digit_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(6..=10).contains(&digit_len) {
            return None;
        }
        let (digits, rest) = rest.split_at(digit_len);
        let rest = rest.strip_prefix('号')?;
        let suffix = if rest.is_empty() {
            None
        } else {
            let s = rest.strip_prefix('-')?;
            let n = s.bytes().take_while(u8::is_ascii_digit).count();
            // 1–4 digits, no leading zero (so never 0), as `parse` reads and `Display` writes.
            if n == 0 || n > 4 || s.starts_with('0') {
                return None;
            }
            let index: u32 = s[..n].parse().ok()?;
            let kind = match &s[n..] {
                "" => ServiceKind::Website,
                "A" => ServiceKind::App,
                "X" => ServiceKind::MiniProgram,
                _ => return None,
            };
            Some(ServiceSuffix { index, kind })
        };
        Some(FilingNumber {
            province,
            digits: digits.to_string(),
            suffix,
        })
    }

    /// Whether this is a service number under `subject` (a subject number).
    pub fn is_service_of(&self, subject: &FilingNumber) -> bool {
        self.suffix.is_some()
            && subject.suffix.is_none()
            && self.province == subject.province
            && self.digits == subject.digits
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

impl Serialize for PsbNumber {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PsbNumber {
    /// Canonical text as [`PsbNumber::parse`] reads it; records written before the 14-digit
    /// rule (`<province>公网安备<10–16 digits>号`) are still read as they were written.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PsbNumber::parse(&s)
            .or_else(|e| PsbNumber::legacy(&s).ok_or(e))
            .map_err(serde::de::Error::custom)
    }
}

/// The kind of value-added telecom licence.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
pub enum LicenceClass {
    B1,
    B2,
    #[strum(serialize = "B1.B2")]
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
    /// `B1|B2|B1.B2-<8 digits>[-n]` shown with neither a province nor 合字: the canonical form
    /// keeps no prefix (`B2-20090317`), since none was shown.
    Unprefixed {
        class: LicenceClass,
        digits: String,
        suffix: Option<u32>,
    },
}

impl LicenceClass {
    /// `B1`, `B2` or `B1.B2`.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// Split `B1|B2|B1.B2-<8 digits>[-n]` (after any prefix) into its parts.
fn parse_value_added_rest(
    text: &str,
    rest: &str,
) -> Result<(LicenceClass, String, Option<u32>), NumberError> {
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
    Ok((class, digits, suffix))
}

impl LicenceNumber {
    /// Parse one licence number (the whole text). Registrar licences such as `浙D3-…` and
    /// filing numbers (`…ICP备…`) are refused.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let norm = normalise_text(text);
        if norm.is_empty() {
            return Err(NumberError::Empty);
        }
        if norm.starts_with(['B', 'b']) {
            let (class, digits, suffix) = parse_value_added_rest(text, &norm)?;
            return Ok(LicenceNumber::Unprefixed {
                class,
                digits,
                suffix,
            });
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
        let (class, digits, suffix) = parse_value_added_rest(text, rest)?;
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
                write!(f, "{}-{digits}", class.as_str())?;
                if let Some(s) = suffix {
                    write!(f, "-{s}")?;
                }
            }
            LicenceNumber::Unprefixed {
                class,
                digits,
                suffix,
            } => {
                write!(f, "{}-{digits}", class.as_str())?;
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
///
/// The 14-digit code starts with the GB/T 2260 code of the province that issued it; the
/// canonical form's abbreviation is the one of that province, whatever label the page shows
/// (`河南公网安备 41010502000123号`, `郑州公网安备…`, `公安备案号：41010502000123` all give
/// `豫公网安备41010502000123号`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PsbNumber {
    pub province: char,
    pub digits: String,
}

/// Digits in a public-security number.
pub const PSB_DIGITS: usize = 14;

/// Words that introduce a public-security number, longest first where one starts another.
/// Real pages drop or change characters of `公网安备`; `公安备案号` and `公安机关备案号` are
/// seen with no province label at all.
pub const PSB_KEYWORDS: &[&str] = &[
    "公安机关备案号",
    "公安机关备案",
    "公安备案号",
    "公安备案",
    "公安网备",
    "公安备",
    "公网安备",
    "公网安",
    "公网备",
    "网安备",
];

/// The primary abbreviation of the province whose GB/T 2260 code starts `digits`.
pub fn province_of_code(digits: &str) -> Option<char> {
    let code = digits.get(..2)?;
    PROVINCES.iter().find(|(_, c)| *c == code).map(|(p, _)| *p)
}

impl PsbNumber {
    /// `<province>公网安备<10–16 digits>号` exactly, as earlier versions stored it.
    fn legacy(text: &str) -> Option<Self> {
        let mut cs = text.chars();
        let province = cs.next().filter(|c| is_province(*c))?;
        let digits = cs.as_str().strip_prefix("公网安备")?.strip_suffix('号')?;
        ((10..=16).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then(
            || PsbNumber {
                province,
                digits: digits.to_string(),
            },
        )
    }

    /// A number from its 14 digits; the province comes from the first two.
    pub fn from_digits(digits: &str) -> Result<Self, NumberError> {
        if digits.len() != PSB_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(digits, "a public-security number has 14 digits"));
        }
        let province = province_of_code(digits)
            .ok_or_else(|| invalid(digits, "the code does not start with a province code"))?;
        Ok(PsbNumber {
            province,
            digits: digits.to_string(),
        })
    }

    /// Parse one number (the whole text): an optional label of CJK characters (a province
    /// abbreviation, a province or city name), one of [`PSB_KEYWORDS`] (optionally followed
    /// by `案`, `号` and a colon), 14 digits (spaces anywhere), an optional `号`.
    pub fn parse(text: &str) -> Result<Self, NumberError> {
        let norm = normalise_text(text);
        if norm.is_empty() {
            return Err(NumberError::Empty);
        }
        let (at, keyword) = PSB_KEYWORDS
            .iter()
            .filter_map(|k| norm.find(k).map(|i| (i, *k)))
            .min_by_key(|(i, k)| (*i, usize::MAX - k.len()))
            .ok_or_else(|| invalid(text, "missing `公网安备`"))?;
        let label = &norm[..at];
        if label.chars().count() > 12 || label.chars().any(|c| c.is_ascii() || !c.is_alphabetic()) {
            return Err(invalid(text, "unexpected text before `公网安备`"));
        }
        let mut r = &norm[at + keyword.len()..];
        r = r.strip_prefix('案').unwrap_or(r);
        r = r.strip_prefix('号').unwrap_or(r);
        r = r.strip_prefix(':').unwrap_or(r);
        if let Some(c) = r.chars().next().filter(|c| is_province(*c)) {
            r = &r[c.len_utf8()..];
        }
        let n = r.bytes().take_while(|b| b.is_ascii_digit()).count();
        if n != PSB_DIGITS {
            return Err(invalid(text, "a public-security number has 14 digits"));
        }
        let number = PsbNumber::from_digits(&r[..n])
            .map_err(|_| invalid(text, "the code does not start with a province code"))?;
        let r = &r[n..];
        let r = r.strip_prefix('号').unwrap_or(r);
        if !r.is_empty() {
            return Err(invalid(text, "unexpected text after the number"));
        }
        Ok(number)
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

// ---------------------------------------------------------------------------------------------
// Scanning running text for numbers
// ---------------------------------------------------------------------------------------------

/// One character of text prepared for scanning: NFKC-normalised with dashes folded to `-`.
/// Whitespace is not a character here: it is recorded on the next character as `space_before`,
/// so that whitespace inside a number is ignored while still ending digit groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanChar {
    pub c: char,
    /// Whitespace (space, tab, newline, `&nbsp;`, U+3000, a `<br>`) came before this character.
    pub space_before: bool,
    /// A block boundary came before this character: no number spans it.
    pub break_before: bool,
}

/// Text prepared for [`scan_numbers`], built piece by piece (text, spaces, block breaks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanText {
    chars: Vec<ScanChar>,
    pending_space: bool,
    pending_break: bool,
}

impl ScanText {
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty text that fills `buffer` (cleared) instead of growing a new one.
    pub fn with_buffer(mut buffer: Vec<ScanChar>) -> Self {
        buffer.clear();
        ScanText {
            chars: buffer,
            pending_space: false,
            pending_break: false,
        }
    }

    /// The characters' buffer, for [`ScanText::with_buffer`].
    pub fn into_buffer(self) -> Vec<ScanChar> {
        self.chars
    }

    /// Text prepared from one plain string (no block breaks).
    pub fn from_text(text: &str) -> Self {
        let mut t = Self::new();
        t.push_str(text);
        t
    }

    /// Append text: NFKC-normalised, dashes folded, whitespace turned into flags, invisible
    /// format characters (zero-width space, BOM, soft hyphen) dropped.
    ///
    /// Normalisation goes segment by segment: a segment starts at a character before which
    /// NFKC has a boundary (nothing before it composes with it or is reordered across it;
    /// see `nfkc_head`) and runs to the next such character. Most segments are that one
    /// character, which NFKC leaves as it is (ASCII, CJK ideographs, most punctuation) or maps
    /// to one ASCII character (full-width forms, the ideographic space); only the others go
    /// through the normaliser. Normalising segment by segment gives what normalising the whole
    /// text gives (a property test and an exhaustive test over the BMP hold it).
    pub fn push_str(&mut self, text: &str) {
        if text.is_ascii() {
            for b in text.bytes() {
                self.push_char(char::from(b));
            }
            return;
        }
        // The current segment: its start (byte offset), and its head when the segment is so
        // far exactly one boundary character (`None`: it needs the normaliser); `plain`: that
        // head is a plain character (see [`PLAIN`]).
        let plain_set: &BmpSet = &PLAIN;
        let mut start = 0usize;
        let mut head: Option<char> = None;
        let mut plain = false;
        for (i, c) in text.char_indices() {
            if plain_set.contains(c) {
                match head {
                    // The segment before is that one plain character.
                    Some(p) if plain => self.push_plain(p),
                    _ => self.flush_segment(&text[start..i], head, false),
                }
                start = i;
                head = Some(c);
                plain = true;
                continue;
            }
            match nfkc_head(c) {
                Some(mapped) => {
                    self.flush_segment(&text[start..i], head, plain);
                    start = i;
                    head = Some(mapped);
                }
                None => head = None,
            }
            plain = false;
        }
        self.flush_segment(&text[start..], head, plain);
    }

    /// Push one segment of [`ScanText::push_str`]: its head as mapped when the segment is one
    /// boundary character, else the segment normalised.
    fn flush_segment(&mut self, segment: &str, head: Option<char>, plain: bool) {
        if segment.is_empty() {
            return;
        }
        match head {
            Some(c) if plain => self.push_plain(c),
            Some(c) => self.push_char(c),
            None => {
                for c in segment.nfkc() {
                    self.push_char(c);
                }
            }
        }
    }

    /// Push a character of [`PLAIN`] (or one [`ScanText::push_char`] has checked): nothing to
    /// fold, drop or turn into a flag.
    fn push_plain(&mut self, c: char) {
        self.chars.push(ScanChar {
            c,
            space_before: self.pending_space || self.pending_break,
            break_before: self.pending_break,
        });
        self.pending_space = false;
        self.pending_break = false;
    }

    fn push_char(&mut self, c: char) {
        {
            if c.is_whitespace() {
                self.pending_space = true;
                return;
            }
            if is_dropped(c) {
                return;
            }
            self.push_plain(fold_dash(c));
        }
    }

    /// Whitespace (or a `<br>`) before the next character.
    pub fn push_space(&mut self) {
        self.pending_space = true;
    }

    /// A block boundary before the next character (ignored at the very start).
    pub fn push_break(&mut self) {
        if !self.chars.is_empty() {
            self.pending_break = true;
        }
    }

    /// Number of characters so far (the index the next character will get).
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    pub fn chars(&self) -> &[ScanChar] {
        &self.chars
    }
}

/// The plain characters: BMP characters that NFKC leaves as they are with a boundary before
/// them (see [`nfkc_head`]), that are not whitespace, not dropped and not dashes to fold —
/// pushed as they are.
static PLAIN: std::sync::LazyLock<BmpSet> = std::sync::LazyLock::new(|| {
    BmpSet::from_fn(|c| {
        nfkc_head(c) == Some(c) && !c.is_whitespace() && !is_dropped(c) && fold_dash(c) == c
    })
});

/// Invisible format characters the text drops (zero-width space and joiners, word joiner,
/// BOM, soft hyphen).
fn is_dropped(c: char) -> bool {
    matches!(
        c,
        '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{ad}'
    )
}

/// What NFKC makes of `c` when NFKC has a boundary before `c` and maps `c` alone to one
/// character: `Some(that character)`; `None` when `c` needs the normaliser (it may compose
/// with or reorder around what precedes it, or it decomposes to several characters).
///
/// A boundary before `c` holds when `c` is a starter (canonical combining class 0) that NFKC
/// leaves as it is (quick check `Yes`: not `Maybe`, so it never composes with a preceding
/// character), and for the full-width ASCII forms (U+FF01–U+FF5E) and the ideographic space,
/// which NFKC maps to one ASCII character, and ASCII never composes with what precedes it.
fn nfkc_head(c: char) -> Option<char> {
    let u = u32::from(c);
    if u < 0x80 || (0x4E00..=0x9FFF).contains(&u) {
        // ASCII; CJK Unified Ideographs (all NFKC-stable starters).
        return Some(c);
    }
    if (0xFF01..=0xFF5E).contains(&u) {
        return char::from_u32(u - 0xFEE0);
    }
    if c == '\u{3000}' {
        return Some(' ');
    }
    let stable = unicode_normalization::char::canonical_combining_class(c) == 0
        && unicode_normalization::is_nfkc_quick(std::iter::once(c))
            == unicode_normalization::IsNormalized::Yes;
    stable.then_some(c)
}

fn fold_dash(c: char) -> char {
    match c {
        '‐' | '‑' | '‒' | '–' | '—' | '―' | '−' | '－' | '﹣' | '⁃' => '-',
        other => other,
    }
}

/// A number found in text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FoundNumber {
    Filing(FilingNumber),
    Licence(LicenceNumber),
    Psb(PsbNumber),
}

impl fmt::Display for FoundNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FoundNumber::Filing(n) => n.fmt(f),
            FoundNumber::Licence(n) => n.fmt(f),
            FoundNumber::Psb(n) => n.fmt(f),
        }
    }
}

/// Where a number sits in the scanned characters (indices into [`ScanText::chars`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberMatch {
    pub number: FoundNumber,
    /// Index of the first character (the province, or `合` of `合字`).
    pub start: usize,
    /// One past the last character of the number.
    pub end: usize,
    /// The main digit run (without any suffix).
    pub digits: std::ops::Range<usize>,
}

/// Every filing, licence and public-security number in `chars`, in order, not overlapping.
/// Linear in the input: each attempt looks at a bounded number of characters.
///
/// Rules: a filing or licence number starts with a province character (or `合字`, or — for a
/// licence near licence wording — `B1`/`B2` itself); a public-security number starts at its
/// keyword (see [`PSB_KEYWORDS`]). No number spans a block break; whitespace between its parts is ignored, but digit groups separated by
/// whitespace are joined only while the total stays within the number's length (so a following
/// year or phone number is not glued on); a service suffix (`-1`, `-2A`) must directly follow
/// `号` or the digits. Placeholders (`XXXXXXXX`), masked digits and characters that are not
/// provinces give no number.
pub fn scan_numbers(chars: &[ScanChar]) -> Vec<NumberMatch> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].c;
        let m = if is_province(c) {
            match_filing(chars, i)
                .or_else(|| match_icp_licence(chars, i))
                .or_else(|| match_value_added(chars, i))
        } else if c == '合' {
            match_value_added(chars, i)
        } else if c == '公' || c == '网' {
            match_psb(chars, i)
        } else if c == 'B' {
            match_unprefixed_licence(chars, i)
        } else {
            None
        };
        match m {
            Some(m) => {
                i = m.end.max(i + 1);
                found.push(m);
            }
            None => i += 1,
        }
    }
    found
}

/// Every number in a plain string, in order (see [`scan_numbers`]).
pub fn find_numbers(text: &str) -> Vec<FoundNumber> {
    scan_numbers(ScanText::from_text(text).chars())
        .into_iter()
        .map(|m| m.number)
        .collect()
}

/// A cursor over the characters of one candidate number, stopping at block breaks.
struct Cursor<'a> {
    chars: &'a [ScanChar],
    start: usize,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(chars: &'a [ScanChar], start: usize) -> Self {
        Cursor {
            chars,
            start,
            pos: start,
        }
    }

    fn peek_at(&self, pos: usize) -> Option<ScanChar> {
        let sc = *self.chars.get(pos)?;
        if pos > self.start && sc.break_before {
            return None;
        }
        Some(sc)
    }

    fn peek(&self) -> Option<ScanChar> {
        self.peek_at(self.pos)
    }

    fn eat(&mut self, want: char) -> bool {
        match self.peek() {
            Some(sc) if sc.c == want => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    fn eat_ci(&mut self, want: &str) -> bool {
        let save = self.pos;
        for w in want.chars() {
            match self.peek() {
                Some(sc) if sc.c.eq_ignore_ascii_case(&w) => self.pos += 1,
                _ => {
                    self.pos = save;
                    return false;
                }
            }
        }
        true
    }

    /// Eat `want` only if it directly follows the previous character (no whitespace).
    fn eat_adjacent(&mut self, want: char) -> bool {
        match self.peek() {
            Some(sc) if sc.c == want && !sc.space_before => {
                self.pos += 1;
                true
            }
            _ => false,
        }
    }

    /// Digit groups (whitespace between groups allowed) with at most `max` digits in total.
    /// A contiguous run longer than `max` is not a number: `None`. Returns the digits and
    /// their range.
    fn digit_groups(&mut self, max: usize) -> Option<(String, std::ops::Range<usize>)> {
        let begin = self.pos;
        let mut digits = String::new();
        let mut end = self.pos;
        loop {
            // One contiguous group.
            let group_start = self.pos;
            let mut group = String::new();
            while let Some(sc) = self.peek() {
                if !sc.c.is_ascii_digit() || (self.pos > group_start && sc.space_before) {
                    break;
                }
                group.push(sc.c);
                self.pos += 1;
                if group.len() > max {
                    return None;
                }
            }
            if group.is_empty() {
                self.pos = group_start;
                break;
            }
            if digits.len() + group.len() > max {
                if digits.is_empty() {
                    return None;
                }
                self.pos = group_start;
                break;
            }
            digits.push_str(&group);
            end = self.pos;
            match self.peek() {
                Some(sc) if sc.c.is_ascii_digit() && sc.space_before => continue,
                _ => break,
            }
        }
        self.pos = end;
        if digits.is_empty() {
            None
        } else {
            Some((digits, begin..end))
        }
    }

    /// `-<1–4 digits>` directly attached; with `letters`, an optional `A`/`X` after it that
    /// is not the start of a word (`-1All rights` has no letter suffix). Returns the suffix text (`-2A`).
    fn suffix(&mut self, letters: bool) -> Option<String> {
        let save = self.pos;
        if !self.eat_adjacent('-') {
            return None;
        }
        let mut s = String::from("-");
        let mut n = 0;
        while let Some(sc) = self.peek() {
            if !sc.c.is_ascii_digit() || sc.space_before {
                break;
            }
            s.push(sc.c);
            n += 1;
            self.pos += 1;
        }
        if n == 0 || n > 4 {
            self.pos = save;
            return None;
        }
        if letters {
            // Only capital letters: a lower-case letter after the digits is ordinary text.
            if let Some(sc) = self.peek() {
                let letter = sc.c;
                let next_is_word = self
                    .peek_at(self.pos + 1)
                    .is_some_and(|nx| !nx.space_before && nx.c.is_ascii_alphanumeric());
                if !sc.space_before && (letter == 'A' || letter == 'X') && !next_is_word {
                    s.push(letter);
                    self.pos += 1;
                }
            }
        }
        Some(s)
    }

    /// Optional label punctuation between a keyword and the digits (`：`).
    fn skip_colon(&mut self) {
        let _ = self.eat(':');
    }
}

fn match_filing(chars: &[ScanChar], start: usize) -> Option<NumberMatch> {
    let province = chars.get(start)?.c;
    let mut cur = Cursor::new(chars, start + 1);
    cur.start = start;
    if !cur.eat_ci("ICP") || !cur.eat('备') {
        return None;
    }
    let _ = cur.eat('案');
    let _ = cur.eat('号');
    cur.skip_colon();
    let (digits, range) = cur.digit_groups(10)?;
    if digits.len() < 6 {
        return None;
    }
    let mut suffix = cur.suffix(true);
    let after_digits = cur.pos;
    if cur.eat('号') {
        if suffix.is_none() {
            suffix = cur.suffix(true);
        }
    } else {
        cur.pos = after_digits;
    }
    let text = format!("{province}ICP备{digits}号{}", suffix.unwrap_or_default());
    let number = FilingNumber::parse(&text).ok()?;
    Some(NumberMatch {
        number: FoundNumber::Filing(number),
        start,
        end: cur.pos,
        digits: range,
    })
}

fn match_icp_licence(chars: &[ScanChar], start: usize) -> Option<NumberMatch> {
    let province = chars.get(start)?.c;
    let mut cur = Cursor::new(chars, start + 1);
    cur.start = start;
    if !cur.eat_ci("ICP") || !cur.eat('证') {
        return None;
    }
    cur.skip_colon();
    let (digits, range) = cur.digit_groups(8)?;
    let _ = cur.eat('号');
    let suffix = cur.suffix(false).unwrap_or_default();
    let text = format!("{province}ICP证{digits}号{suffix}");
    let number = LicenceNumber::parse(&text).ok()?;
    Some(NumberMatch {
        number: FoundNumber::Licence(number),
        start,
        end: cur.pos,
        digits: range,
    })
}

/// A value-added licence class (`B1`, `B2`, or both in any of their written forms) and the
/// dash after it.
fn eat_value_added_class(cur: &mut Cursor<'_>) -> Option<&'static str> {
    let class =
        if cur.eat_ci("B1.B2") || cur.eat_ci("B1B2") || cur.eat_ci("B1、B2") || cur.eat_ci("B1/B2")
        {
            "B1.B2"
        } else if cur.eat_ci("B1") {
            "B1"
        } else if cur.eat_ci("B2") {
            "B2"
        } else {
            return None;
        };
    cur.eat('-').then_some(class)
}

fn match_value_added(chars: &[ScanChar], start: usize) -> Option<NumberMatch> {
    let first = chars.get(start)?.c;
    let mut cur = Cursor::new(chars, start + 1);
    cur.start = start;
    let prefix = if first == '合' {
        if !cur.eat('字') {
            return None;
        }
        "合字".to_string()
    } else {
        first.to_string()
    };
    let class = eat_value_added_class(&mut cur)?;
    let (digits, range) = cur.digit_groups(8)?;
    if digits.len() != 8 {
        return None;
    }
    let suffix = cur.suffix(false).unwrap_or_default();
    let text = format!("{prefix}{class}-{digits}{suffix}");
    let number = LicenceNumber::parse(&text).ok()?;
    Some(NumberMatch {
        number: FoundNumber::Licence(number),
        start,
        end: cur.pos,
        digits: range,
    })
}

/// How far before a bare `B1`/`B2` licence (in characters of the same block) licence wording
/// must appear.
pub const LICENCE_WORDING_WINDOW: usize = 40;

/// Wording that introduces an operating licence (compared in upper case).
const LICENCE_WORDING: &[&str] = &["许可", "增值电信", "电信业务", "ICP证", "经营性"];

/// A `B1|B2|B1.B2-<8 digits>` licence shown with no prefix. To keep part numbers and codes out,
/// it must start a token (no letter, digit or `-_./` directly before it), its digits must begin
/// with a year (`19`/`20`), nothing alphanumeric may follow, and licence wording
/// ([`LICENCE_WORDING`]) must appear shortly before it in the same block.
fn match_unprefixed_licence(chars: &[ScanChar], start: usize) -> Option<NumberMatch> {
    let here = chars.get(start)?;
    if start > 0 && !here.space_before {
        let prev = chars[start - 1].c;
        if prev.is_ascii_alphanumeric() || matches!(prev, '-' | '_' | '.' | '/') {
            return None;
        }
    }
    let mut cur = Cursor::new(chars, start);
    let class = eat_value_added_class(&mut cur)?;
    let (digits, range) = cur.digit_groups(8)?;
    if digits.len() != 8 || !(digits.starts_with("19") || digits.starts_with("20")) {
        return None;
    }
    let suffix = cur.suffix(false).unwrap_or_default();
    if cur
        .peek()
        .is_some_and(|sc| !sc.space_before && sc.c.is_ascii_alphanumeric())
    {
        return None;
    }
    if !licence_wording_before(chars, start) {
        return None;
    }
    let text = format!("{class}-{digits}{suffix}");
    let number = LicenceNumber::parse(&text).ok()?;
    Some(NumberMatch {
        number: FoundNumber::Licence(number),
        start,
        end: cur.pos,
        digits: range,
    })
}

/// Whether licence wording appears in the [`LICENCE_WORDING_WINDOW`] characters before
/// `start`, in the same block or the one before it (a label cell or `<dt>` next to the
/// number).
fn licence_wording_before(chars: &[ScanChar], start: usize) -> bool {
    let mut from = start.min(chars.len());
    let mut crossed = 0;
    while from > 0 && start - from < LICENCE_WORDING_WINDOW {
        // A break before `from` lies between `from - 1` and `from`.
        if chars.get(from).is_some_and(|c| c.break_before) {
            if crossed == 1 {
                break;
            }
            crossed += 1;
        }
        from -= 1;
    }
    let window: String = chars
        .get(from..start)
        .unwrap_or_default()
        .iter()
        .map(|sc| sc.c.to_ascii_uppercase())
        .collect();
    LICENCE_WORDING.iter().any(|w| window.contains(w))
}

/// A public-security number, starting at one of [`PSB_KEYWORDS`] (whatever label precedes
/// it: `京`, `河南`, `杭州市`, nothing): the keyword, optional `案`/`号`/colon, exactly 14
/// digits (spaces between groups allowed) whose first two are a province code, not followed
/// by a mask character, an optional `号`.
fn match_psb(chars: &[ScanChar], start: usize) -> Option<NumberMatch> {
    let mut cur = Cursor::new(chars, start);
    let mut matched = false;
    for k in PSB_KEYWORDS {
        cur.pos = start;
        if k.chars().all(|want| cur.eat(want)) {
            matched = true;
            break;
        }
    }
    if !matched {
        return None;
    }
    let _ = cur.eat('案');
    let _ = cur.eat('号');
    cur.skip_colon();
    // `公网安备 京11010802012345号`: the province written after the keyword.
    if cur.peek().is_some_and(|sc| is_province(sc.c)) {
        cur.pos += 1;
    }
    let (digits, range) = cur.digit_groups(PSB_DIGITS)?;
    // Masked numbers (`1101********号`) end in a mask character: not a number.
    if cur
        .peek()
        .is_some_and(|sc| matches!(sc.c, '*' | 'x' | 'X' | '×'))
    {
        return None;
    }
    let number = PsbNumber::from_digits(&digits).ok()?;
    let _ = cur.eat('号');
    Some(NumberMatch {
        number: FoundNumber::Psb(number),
        start,
        end: cur.pos,
        digits: range,
    })
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

    fn found(text: &str) -> Vec<String> {
        find_numbers(text).iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn psb_variants() {
        for (input, want) in [
            (
                "河南公网安备 41010502000123号",
                "豫公网安备41010502000123号",
            ),
            (
                "河南省公网安备41010502000123号",
                "豫公网安备41010502000123号",
            ),
            ("郑州公网安备41010502000123号", "豫公网安备41010502000123号"),
            (
                "杭州市公网安备 33010602011234号",
                "浙公网安备33010602011234号",
            ),
            ("公安备案号 11010502000123", "京公网安备11010502000123号"),
            (
                "公安机关备案号：44030502001234",
                "粤公网安备44030502001234号",
            ),
            ("京公网备11010802012345号", "京公网安备11010802012345号"),
            ("京公网安11010802012345号", "京公网安备11010802012345号"),
            ("京网安备11010802012345号", "京公网安备11010802012345号"),
            (
                "京公网安备 1101 0802 0123 45号",
                "京公网安备11010802012345号",
            ),
            ("京公网安备号：11010802012345", "京公网安备11010802012345号"),
            ("京公安网备11010802012345号", "京公网安备11010802012345号"),
            ("公安备11010802012345号", "京公网安备11010802012345号"),
            ("公网安备 京11010802012345号", "京公网安备11010802012345号"),
            ("黔公网安备52010302001122号", "贵公网安备52010302001122号"),
        ] {
            assert_eq!(
                PsbNumber::parse(input).unwrap().to_string(),
                want,
                "{input}"
            );
            assert_eq!(found(input), [want], "{input}");
        }
        for bad in [
            "京公网安备1101********号",
            "京公网安备99010802012345号",
            "京公网安备00010802012345号",
            "京公网安备1101080201234号",
            "京公网安备110108020123456号",
            "公网安备",
            "abc公网安备11010802012345号",
        ] {
            assert!(PsbNumber::parse(bad).is_err(), "{bad}");
        }
        for bad in [
            "京公网安备 1101********号",
            "京公网安备 99010802012345号",
            "京公网安备 110108020123456号",
            "公安备案号 11010802012345678",
        ] {
            assert!(found(bad).is_empty(), "{bad}");
        }
        // A year after the number is not glued on.
        assert_eq!(
            found("京公网安备 11010802012345号 2024"),
            ["京公网安备11010802012345号"]
        );
    }

    #[test]
    fn psb_records_of_earlier_versions_still_load() {
        let old: PsbNumber = serde_json::from_str("\"京公网安备1101050203014号\"").unwrap();
        assert_eq!(old.to_string(), "京公网安备1101050203014号");
        let new: PsbNumber = serde_json::from_str("\"郑州公网安备41010502000123号\"").unwrap();
        assert_eq!(new.to_string(), "豫公网安备41010502000123号");
        assert!(serde_json::from_str::<PsbNumber>("\"公网安备1101********号\"").is_err());
    }

    #[test]
    fn unprefixed_and_unterminated_licences() {
        for (input, want) in [
            ("增值电信业务经营许可证：B1-20060139", "B1-20060139"),
            ("经营许可证 B2-20090317", "B2-20090317"),
            ("ICP证：B1.B2-20130004", "B1.B2-20130004"),
            ("增值电信业务经营许可证B2-20090317-1", "B2-20090317-1"),
            ("京ICP证040286", "京ICP证040286号"),
            ("京ICP证：040286 版权所有", "京ICP证040286号"),
        ] {
            assert_eq!(found(input), [want], "{input}");
            assert_eq!(
                LicenceNumber::parse(want).unwrap().to_string(),
                want,
                "{want}"
            );
        }
        assert_eq!(
            LicenceNumber::parse("B2-20090317").unwrap(),
            LicenceNumber::Unprefixed {
                class: LicenceClass::B2,
                digits: "20090317".into(),
                suffix: None
            }
        );
        for bad in [
            "B1-20060139",
            "型号 B2-20090317",
            "许可证 AB1-20060139",
            "许可证 B1-20060139x",
            "许可证 B2-2009031",
            "许可证 B2-200903171",
            "许可证 B2-12345678",
            "许可证 X-B2-20090317",
            "许可证 浙D3-20210002",
            "许可证 B3-20090317",
        ] {
            assert!(found(bad).is_empty(), "{bad}: {:?}", found(bad));
        }
        // Licence wording in the block before counts (a label cell), not further away.
        let mut t = ScanText::new();
        t.push_str("增值电信业务经营许可证");
        t.push_break();
        t.push_str("B2-20090317");
        assert_eq!(scan_numbers(t.chars()).len(), 1);
        let mut t = ScanText::new();
        t.push_str("增值电信业务经营许可证");
        t.push_break();
        t.push_str("其他");
        t.push_break();
        t.push_str("B2-20090317");
        assert!(scan_numbers(t.chars()).is_empty());
        assert!(LicenceNumber::parse("B2-2009031").is_err());
        assert!(LicenceNumber::parse("D3-20090317").is_err());
    }

    #[test]
    fn scan_finds_numbers_in_running_text() {
        assert_eq!(
            found("主体备案号：京ICP备11036572号　网站：京ICP备11036572号-1 App：京ICP备11036572号-2A"),
            ["京ICP备11036572号", "京ICP备11036572号-1", "京ICP备11036572号-2A"]
        );
        assert_eq!(
            found("增值电信业务经营许可证：浙B2-20090317 京ICP证040286号 合字B1.B2-20130027 浙D3-20210417"),
            ["浙B2-20090317", "京ICP证040286号", "合字B1.B2-20130027"]
        );
        assert_eq!(
            found("渝ICP备17003456号-1　渝公网安备 50010302001234号"),
            ["渝ICP备17003456号-1", "渝公网安备50010302001234号"]
        );
        assert_eq!(found("ICP证：皖ICP备12034567号-1"), ["皖ICP备12034567号-1"]);
        assert_eq!(found("北京ICP备12345678号"), ["京ICP备12345678号"]);
    }

    #[test]
    fn scan_repairs_and_spacing() {
        assert_eq!(found("冀 ICP 备 19023716 号"), ["冀ICP备19023716号"]);
        assert_eq!(found("粤ICP备案15047721号"), ["粤ICP备15047721号"]);
        assert_eq!(found("滇ICP备09018326-5号"), ["滇ICP备09018326号-5"]);
        assert_eq!(found("云ICP备2021018843-1"), ["云ICP备2021018843号-1"]);
        assert_eq!(found("京ICP备10287415 |京公网安备"), ["京ICP备10287415号"]);
        assert_eq!(
            found("浙ICP备１４０２２９８１号－５"),
            ["浙ICP备14022981号-5"]
        );
        assert_eq!(
            found("蒙ICP备\u{3000}16002345号-1"),
            ["蒙ICP备16002345号-1"]
        );
    }

    #[test]
    fn scan_does_not_glue_neighbours() {
        // A year after the number is not part of it, nor a word after a letter suffix.
        assert_eq!(found("京ICP备12345678号-1 2024"), ["京ICP备12345678号-1"]);
        assert_eq!(
            found("京ICP备12345678 2024 版权所有"),
            ["京ICP备12345678号"]
        );
        assert_eq!(
            found("京ICP备12345678号-1All Rights Reserved"),
            ["京ICP备12345678号-1"]
        );
        assert_eq!(found("京ICP备12345678号-2A"), ["京ICP备12345678号-2A"]);
        // A block break ends a number.
        let mut t = ScanText::new();
        t.push_str("京ICP备");
        t.push_break();
        t.push_str("12345678号");
        assert!(scan_numbers(t.chars()).is_empty());
        let mut t = ScanText::new();
        t.push_str("京ICP备12345678号");
        t.push_break();
        t.push_str("-1");
        let m = scan_numbers(t.chars());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].number.to_string(), "京ICP备12345678号");
        assert_eq!((m[0].start, m[0].digits.clone(), m[0].end), (0, 5..13, 14));
    }

    #[test]
    fn scan_refuses_non_numbers() {
        for text in [
            "ICP备88888888号",
            "萌ICP备20240001号",
            "京ICP备XXXXXXXX号",
            "京公网安备 1101********号",
            "京公网安备 11010502****34号",
            "浙D3-20210417",
            "京网文[2021]3344-567号",
            "统一社会信用代码：91110105MA01B2C3D4",
            "京ICP备123456789012号",
        ] {
            assert!(found(text).is_empty(), "{text}");
        }
    }

    /// The general reading of canonical text: `parse`, kept only if it displays as the text.
    fn canonical_by_parse(text: &str) -> Option<FilingNumber> {
        FilingNumber::parse(text)
            .ok()
            .filter(|n| n.to_string() == text)
    }

    #[test]
    fn parse_canonical_reads_only_canonical_text() {
        for (text, ok) in [
            ("京ICP备12345678号", true),
            ("陇ICP备123456号-12X", true),
            ("粤ICP备1234567890号-9999A", true),
            ("京ICP备12345678号-0", false),
            ("京ICP备12345678号-01", false),
            ("京ICP备12345678号-12345", false),
            ("京ICP备12345678号-1a", false),
            ("京ICP备12345678", false),
            ("京ICP备案12345678号", false),
            ("京icp备12345678号", false),
            ("京ICP备１２345678号", false),
            ("京ICP备12345号", false),
            ("京ICP备12345678号 ", false),
            ("X京ICP备12345678号", false),
        ] {
            assert_eq!(FilingNumber::parse_canonical(text).is_some(), ok, "{text}");
            assert_eq!(
                FilingNumber::parse_canonical(text),
                canonical_by_parse(text)
            );
        }
    }

    #[test]
    fn primary_province_knows_every_abbreviation_and_nothing_else() {
        for (p, _) in PROVINCES {
            assert_eq!(primary_province(*p), Some(*p));
        }
        for (alt, p) in ALT_PROVINCES {
            assert_eq!(primary_province(*alt), Some(*p));
        }
        let known: Vec<char> = PROVINCES
            .iter()
            .map(|(p, _)| *p)
            .chain(ALT_PROVINCES.iter().map(|(a, _)| *a))
            .collect();
        for u in 0u32..=0xFFFF {
            if let Some(c) = char::from_u32(u) {
                assert_eq!(
                    primary_province(c).is_some(),
                    known.contains(&c),
                    "U+{u:04X}"
                );
            }
        }
    }

    /// Every BMP character `nfkc_head` maps is what NFKC makes of it alone, and NFKC has a
    /// boundary before it: after characters that compose or reorder with what follows
    /// (starters of compositions, Hangul jamo and syllables, a combining mark), normalising
    /// the pair gives the first normalised followed by the mapped character.
    #[test]
    fn nfkc_head_is_exact_over_the_bmp() {
        let before = [
            "e", "A", "\u{1100}", "\u{AC00}", "\u{0B47}", "\u{0DD9}", "ｶ", "\u{0F71}", "\u{0300}",
            "\u{3099}", "\u{304B}",
        ];
        let mut mapped = 0usize;
        for u in 0u32..=0xFFFF {
            let Some(c) = char::from_u32(u) else { continue };
            let Some(m) = nfkc_head(c) else { continue };
            mapped += 1;
            let alone: String = c.to_string().nfkc().collect();
            assert_eq!(alone, m.to_string(), "U+{u:04X} alone");
            for p in before {
                let pair: String = format!("{p}{c}").nfkc().collect();
                let split: String = p.nfkc().chain(std::iter::once(m)).collect();
                assert_eq!(pair, split, "U+{u:04X} after {p:?}");
            }
        }
        // Most of the BMP takes the fast path.
        assert!(mapped > 50_000, "{mapped}");
    }

    proptest::proptest! {
        /// `parse_canonical` is `parse` restricted to text that displays as itself, on text
        /// near the canonical form (full-width forms, `备案`, spaces, case, suffix shapes).
        #[test]
        fn parse_canonical_equals_parse_then_display(
            text in "[京陇沪a甘ＩＣ]?(ICP|icp|ＩＣＰ| ICP)?(备|备案|证)?[0-9０-９ ]{0,12}(号|號)?(-|－|—)?[0-9１]{0,6}[AXaxＡ]?(号)?[ \u{3000}]?"
        ) {
            proptest::prop_assert_eq!(FilingNumber::parse_canonical(&text), canonical_by_parse(&text));
        }

        /// Every province abbreviation (primary or alternative) and suffix shape round-trips.
        #[test]
        fn parse_canonical_reads_every_displayed_number(
            province in proptest::sample::select(
                PROVINCES.iter().map(|(c, _)| *c)
                    .chain(ALT_PROVINCES.iter().map(|(c, _)| *c))
                    .collect::<Vec<char>>()
            ),
            digits in "[0-9]{6,10}",
            suffix in proptest::option::of((1u32..10_000, 0usize..3)),
        ) {
            let n = FilingNumber {
                province,
                digits,
                suffix: suffix.map(|(index, k)| ServiceSuffix {
                    index,
                    kind: [ServiceKind::Website, ServiceKind::App, ServiceKind::MiniProgram][k],
                }),
            };
            let text = n.to_string();
            proptest::prop_assert_eq!(FilingNumber::parse_canonical(&text), Some(n));
            proptest::prop_assert_eq!(FilingNumber::parse_canonical(&text), canonical_by_parse(&text));
        }

        /// The quick-check fast path of `ScanText::push_str` gives exactly what normalising
        /// every character gives (mixed scripts, full-width forms, combining marks).
        #[test]
        fn scan_text_fast_path_equals_full_nfkc(
            text in "(\\PC|[０-９－—ＩＣＰ备案号：，（）\u{3000}ｶﾞﾟ\u{0301}\u{0323}\u{3099}\u{fb01}\u{2460}\u{1100}\u{1161}\u{11a8}\u{0b47}\u{0b3e}\u{0f73}])*"
        ) {
            let mut slow = ScanText::new();
            for c in text.nfkc() {
                slow.push_char(c);
            }
            let fast = ScanText::from_text(&text);
            proptest::prop_assert_eq!(fast.chars(), slow.chars());
        }

        #[test]
        fn scan_never_panics_and_finds_only_canonical(text in "\\PC{0,64}") {
            for n in find_numbers(&text) {
                let s = n.to_string();
                // A bare licence is only found after licence wording.
                let again = find_numbers(&format!("许可证 {s}"));
                proptest::prop_assert_eq!(again.len(), 1);
                proptest::prop_assert_eq!(again[0].to_string(), s);
            }
        }

        #[test]
        fn psb_and_licence_parsers_never_panic(text in "\\PC{0,48}") {
            let _ = PsbNumber::parse(&text);
            let _ = LicenceNumber::parse(&text);
            let _ = FilingNumber::parse(&text);
        }

        #[test]
        fn psb_variants_round_trip(
            label in proptest::sample::select(vec!["", "京", "河南", "杭州市", "北京市", "内蒙古"]),
            keyword in proptest::sample::select(PSB_KEYWORDS.to_vec()),
            province in proptest::sample::select(PROVINCES.to_vec()),
            rest in "[0-9]{12}",
            spaced in proptest::bool::ANY,
            hao in proptest::bool::ANY,
        ) {
            let digits = format!("{}{rest}", province.1);
            let shown = if spaced {
                format!("{} {} {}", &digits[..4], &digits[4..8], &digits[8..])
            } else {
                digits.clone()
            };
            let text = format!("{label}{keyword} {shown}{}", if hao { "号" } else { "" });
            let want = format!("{}公网安备{digits}号", province.0);
            let parsed = PsbNumber::parse(&text).map(|p| p.to_string());
            proptest::prop_assert_eq!(parsed, Ok(want.clone()));
            proptest::prop_assert_eq!(found(&format!("页脚 {text} 版权所有")), vec![want.clone()]);
            let again = PsbNumber::parse(&want).map(|p| p.to_string());
            proptest::prop_assert_eq!(again, Ok(want));
        }

        #[test]
        fn unprefixed_licences_round_trip(
            class in proptest::sample::select(vec!["B1", "B2", "B1.B2"]),
            year in 1995u32..2040,
            serial in 0u32..10000,
            suffix in proptest::option::of(1u32..100),
        ) {
            let mut number = format!("{class}-{year}{serial:04}");
            if let Some(s) = suffix {
                number.push_str(&format!("-{s}"));
            }
            proptest::prop_assert_eq!(
                LicenceNumber::parse(&number).map(|l| l.to_string()),
                Ok(number.clone())
            );
            let text = format!("增值电信业务经营许可证：{number}");
            proptest::prop_assert_eq!(found(&text), vec![number]);
        }

        #[test]
        fn embedded_filing_numbers_are_found(
            prefix in "[a-z，。 ]{0,20}",
            digits in "[0-9]{6,10}",
            suffix in proptest::option::of(1u32..1000),
            after in "[，。 ]{0,3}[a-z]{0,5}",
        ) {
            let number = match suffix {
                Some(s) => format!("沪ICP备{digits}号-{s}"),
                None => format!("沪ICP备{digits}号"),
            };
            let text = format!("{prefix}{number}{after}");
            proptest::prop_assert_eq!(found(&text), vec![number]);
        }
    }
}
