//! Tabular uploads: which format a file is (decided by its bytes, never by its name), reading
//! spreadsheets (`.xlsx`, `.xls` via calamine) and CSV (UTF-8, UTF-16 or the GB18030 that
//! Chinese Excel writes) into rows of cells with their positions, the template columns of the
//! filing and IP-filing uploads (`columns`), and writing the templates (`template`).
//!
//! Everything here is pure: bytes in, rows or bytes out. A hostile file meets bounds before it
//! can exhaust memory: the upload size, the uncompressed size of an `.xlsx`, the cells a sheet
//! may hold and the span of an `.xls` sheet.

pub mod columns;
mod read;
pub mod template;

pub use columns::{HeaderMap, Table, TableKind, TableRow};
pub use read::{read_sheets, Cell, Row, Sheet};

/// Largest upload accepted (bytes), for every format.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;
/// Most non-empty cells read from one upload.
pub const MAX_CELLS: usize = 4_000_000;
/// Largest uncompressed size of an `.xlsx` (all its parts together).
pub const MAX_XLSX_UNCOMPRESSED: u64 = 512 * 1024 * 1024;

/// What an upload is, by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "lowercase")]
pub enum UploadFormat {
    /// Office Open XML workbook (a zip archive).
    Xlsx,
    /// Excel 97–2003 workbook (BIFF in a compound file).
    Xls,
    /// JSON Lines: the first non-blank character is `{`.
    #[strum(serialize = "jsonl")]
    JsonLines,
    /// Anything else that is text: comma- (or tab-) separated values.
    Csv,
}

impl UploadFormat {
    pub const ALL: &'static [UploadFormat] = <UploadFormat as strum::VariantArray>::VARIANTS;

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// The compound-file signature of `.xls` (and other OLE2 documents).
const CFB_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

/// Decide the format from the first bytes of a file.
pub fn detect(head: &[u8]) -> UploadFormat {
    if head.starts_with(b"PK\x03\x04") {
        return UploadFormat::Xlsx;
    }
    if head.starts_with(CFB_MAGIC) {
        return UploadFormat::Xls;
    }
    let text = head.strip_prefix(b"\xef\xbb\xbf").unwrap_or(head);
    match text.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => UploadFormat::JsonLines,
        _ => UploadFormat::Csv,
    }
}

/// Why an upload could not be read at all (a bad row is a row error, not this).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TabularError {
    #[error("the file is {size} bytes; uploads are limited to {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("not a readable {format} workbook: {reason}")]
    Workbook {
        format: &'static str,
        reason: String,
    },
    #[error("{place}: {reason}")]
    Bounds { place: String, reason: String },
    #[error("CSV: {reason}")]
    Csv { reason: String },
    #[error("no sheet has the template's header row (it starts with {expected}); download the template with `beian template`")]
    NoHeader { expected: String },
    #[error("{place}: {reason}")]
    Header { place: String, reason: String },
}

/// The spreadsheet name of a 0-based column: 0 → `A`, 25 → `Z`, 26 → `AA`.
pub fn column_letter(index: u32) -> String {
    let mut n = index as u64 + 1;
    let mut out = Vec::new();
    while n > 0 {
        let r = ((n - 1) % 26) as u8;
        out.push(b'A' + r);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_told_by_content() {
        assert_eq!(detect(b"PK\x03\x04rest"), UploadFormat::Xlsx);
        assert_eq!(detect(CFB_MAGIC), UploadFormat::Xls);
        assert_eq!(
            detect(b"\xef\xbb\xbf  {\"subject\":1}"),
            UploadFormat::JsonLines
        );
        assert_eq!(detect(b"\n{"), UploadFormat::JsonLines);
        assert_eq!(
            detect("主办单位名称,网站名称".as_bytes()),
            UploadFormat::Csv
        );
        assert_eq!(detect(b""), UploadFormat::Csv);
    }

    #[test]
    fn column_letters() {
        assert_eq!(column_letter(0), "A");
        assert_eq!(column_letter(25), "Z");
        assert_eq!(column_letter(26), "AA");
        assert_eq!(column_letter(701), "ZZ");
        assert_eq!(column_letter(702), "AAA");
        assert_eq!(column_letter(16383), "XFD");
    }
}
