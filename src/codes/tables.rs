//! The code tables (`seeds/codes/*.csv`): strict CSV loading and validation, lookups.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;

/// A province-level division: `北京市`, `京`, code `11`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Province {
    pub name: String,
    pub abbreviation: char,
    /// The alternative abbreviation seen in real numbers (`陇` for 甘肃).
    pub alt_abbreviation: Option<char>,
    /// GB/T 2260 two-digit province code.
    pub code: String,
}

/// Which identity check a certificate type's number gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdChecker {
    /// Unified social credit code ([`super::check_uscc`]).
    Uscc,
    /// Resident identity number ([`super::check_resident_id`]).
    ResidentId,
    /// No checksum: any non-empty number.
    None,
}

/// A certificate type a subject identifies itself with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdType {
    pub name: String,
    /// The subject natures it applies to.
    pub natures: Vec<String>,
    pub checker: IdChecker,
}

impl IdType {
    /// Whether a subject of `nature` may use this certificate type.
    pub fn applies_to(&self, nature: &str) -> bool {
        self.natures.iter().any(|n| n == nature)
    }
}

/// A content category of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Category {
    pub name: String,
    /// Whether filing needs the authority's approval document first (前置审批).
    pub pre_approval: bool,
    pub authority: Option<String>,
}

/// A prefecture-level city or a county-level division (GB/T 2260).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Region {
    /// Six digits: `110101`.
    pub code: String,
    pub name: String,
    /// `city` or `county`.
    pub level: String,
    /// The enclosing division's code (a province's `110000` for a city).
    pub parent: String,
}

impl Region {
    /// The two-digit province code the division belongs to.
    pub fn province_code(&self) -> &str {
        self.code.get(..2).unwrap_or("")
    }
}

/// An industry (GB/T 4754 section).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Industry {
    pub code: String,
    pub name: String,
}

/// A kind of filed service: website, APP, mini-program, quick app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceType {
    /// Chinese name, e.g. `小程序`.
    pub name: String,
    /// Stable identifier, e.g. `mini_program`.
    pub id: String,
    /// Letter after the service index in the number (`-1A`); none for websites.
    pub suffix_letter: Option<char>,
}

/// Why the code tables cannot be loaded. `file` is the CSV file name (or path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{file}:{line}: {reason}")]
    Csv {
        file: String,
        line: u64,
        reason: String,
    },
    #[error("{file}:1: header is {found:?}, expected {expected:?}")]
    Header {
        file: String,
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("{file}:{line}: {found} columns, expected {expected}")]
    ColumnCount {
        file: String,
        line: u64,
        expected: usize,
        found: usize,
    },
    #[error("{file}:{line}: column `{column}`: {reason}")]
    BadValue {
        file: String,
        line: u64,
        column: &'static str,
        reason: String,
    },
    #[error("{file}:{line}: {value:?} appears twice")]
    Duplicate {
        file: String,
        line: u64,
        value: String,
    },
    #[error("{file}: no rows")]
    Empty { file: String },
}

/// The CSV texts of every table, by file.
#[derive(Debug, Clone, Copy)]
pub struct CodeSources<'a> {
    pub provinces: &'a str,
    pub natures: &'a str,
    pub id_types: &'a str,
    pub access_methods: &'a str,
    pub server_placements: &'a str,
    pub content_categories: &'a str,
    pub service_types: &'a str,
    pub regions: &'a str,
    pub industries: &'a str,
}

/// The file names under `seeds/codes/`.
pub const CODE_FILES: [&str; 9] = [
    "provinces.csv",
    "natures.csv",
    "id_types.csv",
    "access_methods.csv",
    "server_placements.csv",
    "content_categories.csv",
    "service_types.csv",
    "regions.csv",
    "industries.csv",
];

const EMBEDDED: CodeSources<'static> = CodeSources {
    provinces: include_str!("../../seeds/codes/provinces.csv"),
    natures: include_str!("../../seeds/codes/natures.csv"),
    id_types: include_str!("../../seeds/codes/id_types.csv"),
    access_methods: include_str!("../../seeds/codes/access_methods.csv"),
    server_placements: include_str!("../../seeds/codes/server_placements.csv"),
    content_categories: include_str!("../../seeds/codes/content_categories.csv"),
    service_types: include_str!("../../seeds/codes/service_types.csv"),
    regions: include_str!("../../seeds/codes/regions.csv"),
    industries: include_str!("../../seeds/codes/industries.csv"),
};

/// Every code table, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeTables {
    provinces: Vec<Province>,
    natures: Vec<String>,
    id_types: Vec<IdType>,
    access_methods: Vec<String>,
    server_placements: Vec<String>,
    categories: Vec<Category>,
    service_types: Vec<ServiceType>,
    /// Cities and counties (GB/T 2260), by code (served on their own: `/api/codes/regions`).
    #[serde(skip)]
    regions: Vec<Region>,
    industries: Vec<Industry>,
}

impl CodeTables {
    /// The tables compiled into the binary from `seeds/codes/`. A unit test proves they
    /// parse, so this cannot fail at run time; if it ever did, the tables would be empty.
    pub fn embedded() -> &'static CodeTables {
        static TABLES: OnceLock<CodeTables> = OnceLock::new();
        TABLES.get_or_init(|| {
            CodeTables::from_csv_strs(&EMBEDDED).unwrap_or_else(|_| CodeTables::empty())
        })
    }

    fn empty() -> CodeTables {
        CodeTables {
            provinces: Vec::new(),
            natures: Vec::new(),
            id_types: Vec::new(),
            access_methods: Vec::new(),
            server_placements: Vec::new(),
            categories: Vec::new(),
            service_types: Vec::new(),
            regions: Vec::new(),
            industries: Vec::new(),
        }
    }

    /// Load the tables from a directory holding the [`CODE_FILES`].
    pub fn parse_dir(dir: &Path) -> Result<CodeTables, CodeError> {
        let read = |name: &str| {
            let path = dir.join(name);
            crate::fsutil::read_bounded_string(&path, crate::fsutil::MAX_TEXT_FILE).map_err(|e| {
                CodeError::Io {
                    path,
                    reason: e.to_string(),
                }
            })
        };
        let texts: Vec<String> = CODE_FILES
            .iter()
            .map(|n| read(n))
            .collect::<Result<_, _>>()?;
        CodeTables::from_csv_strs(&CodeSources {
            provinces: &texts[0],
            natures: &texts[1],
            id_types: &texts[2],
            access_methods: &texts[3],
            server_placements: &texts[4],
            content_categories: &texts[5],
            service_types: &texts[6],
            regions: &texts[7],
            industries: &texts[8],
        })
    }

    /// Parse and cross-check every table.
    pub fn from_csv_strs(src: &CodeSources<'_>) -> Result<CodeTables, CodeError> {
        let provinces = parse_provinces(src.provinces)?;
        let natures = parse_names("natures.csv", src.natures)?;
        let id_types = parse_id_types(src.id_types, &natures)?;
        let access_methods = parse_names("access_methods.csv", src.access_methods)?;
        let server_placements = parse_names("server_placements.csv", src.server_placements)?;
        let categories = parse_categories(src.content_categories)?;
        let service_types = parse_service_types(src.service_types)?;
        let regions = parse_regions(src.regions, &provinces)?;
        let industries = parse_industries(src.industries)?;
        Ok(CodeTables {
            regions,
            industries,
            provinces,
            natures,
            id_types,
            access_methods,
            server_placements,
            categories,
            service_types,
        })
    }

    pub fn provinces(&self) -> &[Province] {
        &self.provinces
    }
    /// Cities and counties (GB/T 2260), in code order.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }
    /// One city or county by its six-digit code.
    pub fn region(&self, code: &str) -> Option<&Region> {
        self.regions
            .binary_search_by(|r| r.code.as_str().cmp(code))
            .ok()
            .map(|i| &self.regions[i])
    }
    /// The cities and counties of one province (its two-digit code), in code order.
    pub fn regions_of<'a>(&'a self, province_code: &'a str) -> impl Iterator<Item = &'a Region> {
        self.regions
            .iter()
            .filter(move |r| r.province_code() == province_code)
    }
    pub fn industries(&self) -> &[Industry] {
        &self.industries
    }
    pub fn natures(&self) -> &[String] {
        &self.natures
    }
    pub fn id_types(&self) -> &[IdType] {
        &self.id_types
    }
    pub fn access_methods(&self) -> &[String] {
        &self.access_methods
    }
    pub fn server_placements(&self) -> &[String] {
        &self.server_placements
    }
    pub fn categories(&self) -> &[Category] {
        &self.categories
    }
    pub fn service_types(&self) -> &[ServiceType] {
        &self.service_types
    }

    /// The province for an abbreviation, primary (`甘`) or alternative (`陇`).
    pub fn province_by_abbr(&self, c: char) -> Option<&Province> {
        self.provinces
            .iter()
            .find(|p| p.abbreviation == c || p.alt_abbreviation == Some(c))
    }

    /// The province a person would write: its abbreviation (`京`, or the alternative `陇`),
    /// GB/T 2260 code (`11`), full name (`北京市`) or name without its suffix (`北京`,
    /// `新疆` for 新疆维吾尔自治区).
    pub fn province(&self, text: &str) -> Option<&Province> {
        let s = text.trim();
        let mut chars = s.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return self.province_by_abbr(c);
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return self.province_by_code(s);
        }
        let short = |name: &str| -> String {
            for suffix in [
                "特别行政区",
                "维吾尔自治区",
                "壮族自治区",
                "回族自治区",
                "自治区",
                "省",
                "市",
            ] {
                if let Some(stripped) = name.strip_suffix(suffix) {
                    return stripped.to_string();
                }
            }
            name.to_string()
        };
        self.provinces
            .iter()
            .find(|p| p.name == s || short(&p.name) == s)
    }

    /// The province for a GB/T 2260 code: its two-digit code, or any longer division code
    /// (`110105`) whose first two digits name it.
    pub fn province_by_code(&self, code: &str) -> Option<&Province> {
        let prefix = code.get(..2)?;
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        self.provinces.iter().find(|p| p.code == prefix)
    }

    pub fn is_nature(&self, name: &str) -> bool {
        self.natures.iter().any(|n| n == name)
    }

    pub fn id_type(&self, name: &str) -> Option<&IdType> {
        self.id_types.iter().find(|t| t.name == name)
    }

    pub fn is_access_method(&self, name: &str) -> bool {
        self.access_methods.iter().any(|n| n == name)
    }

    pub fn is_server_placement(&self, name: &str) -> bool {
        self.server_placements.iter().any(|n| n == name)
    }

    pub fn category(&self, name: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.name == name)
    }

    /// A service type by Chinese name (`小程序`) or identifier (`mini_program`).
    pub fn service_type(&self, name_or_id: &str) -> Option<&ServiceType> {
        self.service_types
            .iter()
            .find(|t| t.name == name_or_id || t.id == name_or_id)
    }
}

/// One data row: its line number and cells.
struct Row {
    line: u64,
    cells: Vec<String>,
}

/// Read a CSV with exactly `header` as its first record and the same column count on every
/// row. Cells must not have surrounding whitespace.
fn read_rows(file: &str, text: &str, header: &[&str]) -> Result<Vec<Row>, CodeError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    let mut first = true;
    for rec in reader.records() {
        let rec = rec.map_err(|e| CodeError::Csv {
            file: file.to_string(),
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        })?;
        let line = rec.position().map_or(0, |p| p.line());
        let cells: Vec<String> = rec.iter().map(str::to_string).collect();
        if first {
            first = false;
            if cells.iter().map(String::as_str).ne(header.iter().copied()) {
                return Err(CodeError::Header {
                    file: file.to_string(),
                    expected: header.iter().map(|s| s.to_string()).collect(),
                    found: cells,
                });
            }
            continue;
        }
        if cells.len() != header.len() {
            return Err(CodeError::ColumnCount {
                file: file.to_string(),
                line,
                expected: header.len(),
                found: cells.len(),
            });
        }
        for (cell, column) in cells.iter().zip(header) {
            if cell.trim() != cell || cell.chars().any(char::is_control) {
                return Err(CodeError::BadValue {
                    file: file.to_string(),
                    line,
                    column: static_column(column),
                    reason: "surrounding whitespace or control characters".into(),
                });
            }
        }
        rows.push(Row { line, cells });
    }
    if first {
        return Err(CodeError::Header {
            file: file.to_string(),
            expected: header.iter().map(|s| s.to_string()).collect(),
            found: Vec::new(),
        });
    }
    if rows.is_empty() {
        return Err(CodeError::Empty {
            file: file.to_string(),
        });
    }
    Ok(rows)
}

/// Column names are compile-time constants; map them back to `'static` for errors.
fn static_column(name: &str) -> &'static str {
    const ALL: [&str; 11] = [
        "name",
        "abbreviation",
        "alt_abbreviation",
        "code",
        "natures",
        "checker",
        "pre_approval",
        "authority",
        "id",
        "suffix_letter",
        "?",
    ];
    ALL.iter().copied().find(|c| *c == name).unwrap_or("?")
}

fn bad(file: &str, line: u64, column: &'static str, reason: impl Into<String>) -> CodeError {
    CodeError::BadValue {
        file: file.to_string(),
        line,
        column,
        reason: reason.into(),
    }
}

fn non_empty(file: &str, row: &Row, i: usize, column: &'static str) -> Result<String, CodeError> {
    let v = &row.cells[i];
    if v.is_empty() {
        return Err(bad(file, row.line, column, "empty"));
    }
    Ok(v.clone())
}

/// Tracks uniqueness of a key within a file.
struct Unique<'f> {
    file: &'f str,
    seen: HashSet<String>,
}

impl<'f> Unique<'f> {
    fn new(file: &'f str) -> Self {
        Unique {
            file,
            seen: HashSet::new(),
        }
    }
    fn add(&mut self, line: u64, value: &str) -> Result<(), CodeError> {
        if !self.seen.insert(value.to_string()) {
            return Err(CodeError::Duplicate {
                file: self.file.to_string(),
                line,
                value: value.to_string(),
            });
        }
        Ok(())
    }
}

fn one_char(
    file: &str,
    row: &Row,
    i: usize,
    column: &'static str,
) -> Result<Option<char>, CodeError> {
    let v = &row.cells[i];
    let mut cs = v.chars();
    match (cs.next(), cs.next()) {
        (None, _) => Ok(None),
        (Some(c), None) => Ok(Some(c)),
        _ => Err(bad(file, row.line, column, "exactly one character")),
    }
}

fn parse_regions(text: &str, provinces: &[Province]) -> Result<Vec<Region>, CodeError> {
    let file = "regions.csv";
    let mut codes = Unique::new(file);
    let six = |s: &str| s.len() == 6 && s.bytes().all(|b| b.is_ascii_digit());
    let mut out: Vec<Region> = read_rows(file, text, &["code", "name", "level", "parent"])?
        .iter()
        .map(|row| {
            let code = non_empty(file, row, 0, "code")?;
            let name = non_empty(file, row, 1, "name")?;
            let level = non_empty(file, row, 2, "level")?;
            let parent = non_empty(file, row, 3, "parent")?;
            if !six(&code) || !six(&parent) {
                return Err(bad(
                    file,
                    row.line,
                    "code",
                    "GB/T 2260 codes are six digits",
                ));
            }
            if !provinces.iter().any(|p| code.starts_with(&p.code)) {
                return Err(bad(
                    file,
                    row.line,
                    "code",
                    "not in a province of provinces.csv",
                ));
            }
            if !matches!(level.as_str(), "city" | "county") {
                return Err(bad(file, row.line, "level", "city or county"));
            }
            codes.add(row.line, &code)?;
            Ok(Region {
                code,
                name,
                level,
                parent,
            })
        })
        .collect::<Result<_, _>>()?;
    out.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(out)
}

fn parse_industries(text: &str) -> Result<Vec<Industry>, CodeError> {
    let file = "industries.csv";
    let mut codes = Unique::new(file);
    read_rows(file, text, &["code", "name"])?
        .iter()
        .map(|row| {
            let code = non_empty(file, row, 0, "code")?;
            let name = non_empty(file, row, 1, "name")?;
            codes.add(row.line, &code)?;
            Ok(Industry { code, name })
        })
        .collect()
}

fn parse_names(file: &str, text: &str) -> Result<Vec<String>, CodeError> {
    let mut unique = Unique::new(file);
    read_rows(file, text, &["name"])?
        .iter()
        .map(|row| {
            let name = non_empty(file, row, 0, "name")?;
            unique.add(row.line, &name)?;
            Ok(name)
        })
        .collect()
}

fn parse_provinces(text: &str) -> Result<Vec<Province>, CodeError> {
    let file = "provinces.csv";
    let mut names = Unique::new(file);
    let mut abbrs = Unique::new(file);
    let mut codes = Unique::new(file);
    read_rows(
        file,
        text,
        &["name", "abbreviation", "alt_abbreviation", "code"],
    )?
    .iter()
    .map(|row| {
        let name = non_empty(file, row, 0, "name")?;
        let abbreviation = one_char(file, row, 1, "abbreviation")?
            .ok_or_else(|| bad(file, row.line, "abbreviation", "empty"))?;
        let alt_abbreviation = one_char(file, row, 2, "alt_abbreviation")?;
        let code = row.cells[3].clone();
        if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
            return Err(bad(
                file,
                row.line,
                "code",
                "a GB/T 2260 province code is two digits, 11–99",
            ));
        }
        names.add(row.line, &name)?;
        abbrs.add(row.line, &abbreviation.to_string())?;
        if let Some(a) = alt_abbreviation {
            abbrs.add(row.line, &a.to_string())?;
        }
        codes.add(row.line, &code)?;
        Ok(Province {
            name,
            abbreviation,
            alt_abbreviation,
            code,
        })
    })
    .collect()
}

fn parse_id_types(text: &str, natures: &[String]) -> Result<Vec<IdType>, CodeError> {
    let file = "id_types.csv";
    let mut names = Unique::new(file);
    read_rows(file, text, &["name", "natures", "checker"])?
        .iter()
        .map(|row| {
            let name = non_empty(file, row, 0, "name")?;
            names.add(row.line, &name)?;
            let list = non_empty(file, row, 1, "natures")?;
            let mut seen = Unique::new(file);
            let mut applies = Vec::new();
            for n in list.split('|') {
                if !natures.iter().any(|x| x == n) {
                    return Err(bad(
                        file,
                        row.line,
                        "natures",
                        format!("{n:?} is not in natures.csv"),
                    ));
                }
                seen.add(row.line, n)?;
                applies.push(n.to_string());
            }
            let checker = match row.cells[2].as_str() {
                "uscc" => IdChecker::Uscc,
                "resident_id" => IdChecker::ResidentId,
                "none" => IdChecker::None,
                other => {
                    return Err(bad(
                        file,
                        row.line,
                        "checker",
                        format!("{other:?} is not uscc, resident_id or none"),
                    ))
                }
            };
            Ok(IdType {
                name,
                natures: applies,
                checker,
            })
        })
        .collect()
}

fn parse_categories(text: &str) -> Result<Vec<Category>, CodeError> {
    let file = "content_categories.csv";
    let mut names = Unique::new(file);
    read_rows(file, text, &["name", "pre_approval", "authority"])?
        .iter()
        .map(|row| {
            let name = non_empty(file, row, 0, "name")?;
            names.add(row.line, &name)?;
            let pre_approval = match row.cells[1].as_str() {
                "yes" => true,
                "no" => false,
                other => {
                    return Err(bad(
                        file,
                        row.line,
                        "pre_approval",
                        format!("{other:?} is not yes or no"),
                    ))
                }
            };
            let authority = Some(row.cells[2].clone()).filter(|a| !a.is_empty());
            if pre_approval && authority.is_none() {
                return Err(bad(
                    file,
                    row.line,
                    "authority",
                    "a pre-approval category names its authority",
                ));
            }
            Ok(Category {
                name,
                pre_approval,
                authority,
            })
        })
        .collect()
}

fn parse_service_types(text: &str) -> Result<Vec<ServiceType>, CodeError> {
    let file = "service_types.csv";
    let mut keys = Unique::new(file);
    read_rows(file, text, &["name", "id", "suffix_letter"])?
        .iter()
        .map(|row| {
            let name = non_empty(file, row, 0, "name")?;
            let id = non_empty(file, row, 1, "id")?;
            if !id.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                return Err(bad(
                    file,
                    row.line,
                    "id",
                    "lower-case ASCII letters and `_` only",
                ));
            }
            let suffix_letter = one_char(file, row, 2, "suffix_letter")?;
            if suffix_letter.is_some_and(|c| !c.is_ascii_uppercase()) {
                return Err(bad(
                    file,
                    row.line,
                    "suffix_letter",
                    "one upper-case ASCII letter",
                ));
            }
            keys.add(row.line, &name)?;
            keys.add(row.line, &id)?;
            if let Some(c) = suffix_letter {
                keys.add(row.line, &c.to_string())?;
            }
            Ok(ServiceType {
                name,
                id,
                suffix_letter,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::number::{ALT_PROVINCES, PROVINCES};

    fn sources_with<'a>(file: &str, text: &'a str) -> CodeSources<'a> {
        let mut s = EMBEDDED;
        match file {
            "provinces.csv" => s.provinces = text,
            "natures.csv" => s.natures = text,
            "id_types.csv" => s.id_types = text,
            "access_methods.csv" => s.access_methods = text,
            "server_placements.csv" => s.server_placements = text,
            "content_categories.csv" => s.content_categories = text,
            "service_types.csv" => s.service_types = text,
            _ => unreachable!(),
        }
        s
    }

    #[test]
    fn embedded_tables_parse() {
        let parsed = CodeTables::from_csv_strs(&EMBEDDED).unwrap();
        assert_eq!(CodeTables::embedded(), &parsed);
        assert_eq!(parsed.provinces().len(), 31);
        assert!(parsed.natures().len() >= 18);
    }

    #[test]
    fn provinces_agree_with_number_module() {
        let t = CodeTables::embedded();
        assert_eq!(t.provinces().len(), PROVINCES.len());
        for (abbr, code) in PROVINCES {
            let p = t.province_by_abbr(*abbr).unwrap();
            assert_eq!((p.abbreviation, p.code.as_str()), (*abbr, *code));
            assert_eq!(t.province_by_code(code).unwrap().abbreviation, *abbr);
        }
        for (alt, primary) in ALT_PROVINCES {
            let p = t.province_by_abbr(*alt).unwrap();
            assert_eq!(p.abbreviation, *primary);
            assert_eq!(p.alt_abbreviation, Some(*alt));
        }
        let alts = t
            .provinces()
            .iter()
            .filter(|p| p.alt_abbreviation.is_some())
            .count();
        assert_eq!(alts, ALT_PROVINCES.len());
        assert_eq!(t.province_by_code("110105").unwrap().name, "北京市");
        assert!(t.province_by_code("71").is_none());
        assert!(t.province_by_code("1").is_none());
        assert!(t.province_by_abbr('台').is_none());
    }

    #[test]
    fn lookups() {
        let t = CodeTables::embedded();
        assert!(t.is_nature("企业") && t.is_nature("境外组织") && !t.is_nature("公司"));
        let uscc = t.id_type("统一社会信用代码").unwrap();
        assert_eq!(uscc.checker, IdChecker::Uscc);
        assert!(uscc.applies_to("企业") && !uscc.applies_to("个人"));
        assert_eq!(
            t.id_type("居民身份证").unwrap().checker,
            IdChecker::ResidentId
        );
        assert!(t.id_type("军官证").unwrap().applies_to("个人"));
        assert!(t.id_type("驾驶证").is_none());
        assert!(t.is_access_method("专线") && !t.is_access_method("光纤"));
        assert!(t.is_server_placement("云主机"));
        let news = t.category("新闻").unwrap();
        assert!(news.pre_approval);
        assert_eq!(news.authority.as_deref(), Some("国家网信办/省网信办"));
        for c in ["出版", "药品和医疗器械", "文化", "广播电影电视节目"] {
            assert!(t.category(c).unwrap().pre_approval, "{c}");
        }
        for c in ["教育", "医疗保健", "企业官网", "网上银行"] {
            let cat = t.category(c).unwrap();
            assert!(!cat.pre_approval && cat.authority.is_none(), "{c}");
        }
        assert_eq!(t.service_type("小程序").unwrap().id, "mini_program");
        assert_eq!(t.service_type("app").unwrap().suffix_letter, Some('A'));
        assert_eq!(t.service_type("website").unwrap().suffix_letter, None);
        assert_eq!(t.service_type("quick_app").unwrap().name, "快应用");
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "natures.csv",
                "name,extra\n企业,x\n",
                "natures.csv:1: header",
            ),
            (
                "natures.csv",
                "name\n企业\n个人,多\n",
                "natures.csv:3: 2 columns, expected 1",
            ),
            (
                "natures.csv",
                "name\n企业\n企业\n",
                "natures.csv:3: \"企业\" appears twice",
            ),
            ("natures.csv", "name\n", "natures.csv: no rows"),
            (
                "natures.csv",
                "name\n 企业\n",
                "natures.csv:2: column `name`",
            ),
            (
                "provinces.csv",
                "name,abbreviation,alt_abbreviation,code\n北京市,京京,,11\n",
                "provinces.csv:2: column `abbreviation`",
            ),
            (
                "provinces.csv",
                "name,abbreviation,alt_abbreviation,code\n北京市,京,,1a\n",
                "provinces.csv:2: column `code`",
            ),
            (
                "provinces.csv",
                "name,abbreviation,alt_abbreviation,code\n北京市,京,,11\n天津市,津,京,12\n",
                "provinces.csv:3: \"京\" appears twice",
            ),
            (
                "id_types.csv",
                "name,natures,checker\n护照,个人|外星人,none\n",
                "id_types.csv:2: column `natures`",
            ),
            (
                "id_types.csv",
                "name,natures,checker\n护照,个人,md5\n",
                "id_types.csv:2: column `checker`",
            ),
            (
                "content_categories.csv",
                "name,pre_approval,authority\n新闻,maybe,\n",
                "content_categories.csv:2: column `pre_approval`",
            ),
            (
                "content_categories.csv",
                "name,pre_approval,authority\n新闻,yes,\n",
                "content_categories.csv:2: column `authority`",
            ),
            (
                "service_types.csv",
                "name,id,suffix_letter\n网站,website,\nAPP,App,A\n",
                "service_types.csv:3: column `id`",
            ),
        ];
        for (file, text, expected) in cases {
            let err = CodeTables::from_csv_strs(&sources_with(file, text)).unwrap_err();
            assert!(
                err.to_string().starts_with(expected),
                "{file}: got {err}, expected {expected}"
            );
        }
    }

    #[test]
    fn parse_dir_reads_the_seed_directory() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/codes");
        assert_eq!(
            &CodeTables::parse_dir(&dir).unwrap(),
            CodeTables::embedded()
        );
        let tmp = tempfile::tempdir().unwrap();
        match CodeTables::parse_dir(tmp.path()) {
            Err(CodeError::Io { path, .. }) => assert!(path.ends_with("provinces.csv")),
            other => panic!("{other:?}"),
        }
    }
}
