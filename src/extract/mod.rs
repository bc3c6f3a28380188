//! Footer extraction: decode a page's bytes (header charset, BOM, `<meta>`), then find every
//! ICP filing number, operating licence and public-security number a reader would see, with
//! link and placement facts for each ICP number. Pure: data in, data out.
//!
//! (Interface fixed by the lead; the implementation is being filled in.)

use serde::{Deserialize, Serialize};

use crate::number::{FilingNumber, LicenceNumber, PsbNumber};

/// One visible ICP filing number on a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcpMention {
    pub number: FilingNumber,
    /// Inside (or directly wrapped by) a link to the MIIT filing system.
    pub linked: bool,
    /// The MIIT host linked to (lower case), when linked.
    pub link_host: Option<String>,
    pub in_footer: bool,
}

/// Everything extracted from one page, in document order, each number once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extraction {
    pub icp: Vec<IcpMention>,
    pub licences: Vec<LicenceNumber>,
    pub psb: Vec<PsbNumber>,
}

/// A decoded and extracted page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The charset the bytes were decoded with (WHATWG label, e.g. `gbk`, `utf-8`).
    pub charset: String,
    pub extraction: Extraction,
}

/// Decode `bytes` (charset from `content_type`, then the BOM, then `<meta>`, defaulting to
/// UTF-8) and extract everything a reader sees.
pub fn extract_document(bytes: &[u8], content_type: Option<&str>) -> Document {
    let _ = (bytes, content_type);
    todo!("extraction is being implemented")
}
