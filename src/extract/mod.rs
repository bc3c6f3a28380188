//! Footer extraction: decode a page's bytes (BOM, header charset, `<meta>`, else a guess from
//! the bytes), then find every ICP filing number, operating licence and public-security number
//! a reader would see, with link and placement facts for each ICP number, and facts about the
//! page as a whole ([`PageFacts`]). Pure: data in, data out.
//!
//! What counts as seen: ordinary page text and `<template>` content (which frameworks render;
//! its ICP numbers are marked [`Via::Template`] unless also shown in ordinary text). On a page
//! whose ordinary text already shows an ICP number, a number found only in `<template>`
//! content is not reported: there the template is alternative or leftover markup (an unused
//! `tpl-footer-legacy`), and the page's own footer is what a reader sees. Not seen:
//! comments, scripts, styles, hidden elements, attribute values, server-side code left in the
//! source ([`serverside`]) and content a template engine replaces at render time
//! ([`visible::engine_replaces_content`]).
//!
//! - [`decode`]: charset detection and decoding;
//! - [`visible`]: the visible text of the DOM with per-character context;
//! - [`link`]: which `href`s point at the MIIT filing system;
//! - [`serverside`]: removes server-side code (`<?php … ?>`, `<% … %>`, `${ … }`, …) that a
//!   server would have run, before parsing;
//! - [`guard`]: bounds element nesting so the parser stays fast on hostile pages;
//! - [`challenge`]: recognises WAF / bot-challenge pages that answer 200.
//!
//! Numbers are found by [`crate::number::scan_numbers`] in the visible text. Placement: a
//! number is in the footer when it is inside `<footer>` or an element whose id or class
//! mentions foot/copyright/bottom; otherwise when it sits in the last lines of the page (see
//! [`TAIL_MAX_BLOCKS_AFTER`], [`TAIL_MAX_CHARS_AFTER`]) with no footer-like element after it,
//! outside any header, navigation or main-content region.

pub mod challenge;
pub mod decode;
pub mod dom;
pub mod guard;
pub mod link;
pub mod serverside;
pub mod stream;
pub mod visible;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::number::{
    scan_numbers, FilingNumber, FoundNumber, LicenceClass, LicenceNumber, PsbNumber,
};

use visible::{visible_text, VisibleText};

/// How a number reached the reader.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
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
pub enum Via {
    /// Ordinary page text of the static page.
    #[default]
    Text,
    /// Content of a `<template>` element, which a framework renders (Vue single-file
    /// components, in-DOM templates, web components).
    Template,
    /// The DOM after rendering the page in headless Chromium.
    Rendered,
}

impl Via {
    pub fn is_text(&self) -> bool {
        *self == Via::Text
    }

    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// One visible ICP filing number on a page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IcpMention {
    pub number: FilingNumber,
    /// Inside (or directly wrapped by) a link to the MIIT filing system.
    pub linked: bool,
    /// The MIIT host linked to (lower case), when linked.
    pub link_host: Option<String>,
    pub in_footer: bool,
    /// Where the first copy was read: page text (omitted), `template` or `rendered`.
    #[serde(default, skip_serializing_if = "Via::is_text")]
    pub via: Via,
}

/// Facts about the page as a whole that decide whether its static text can be judged: a
/// near-empty page built by scripts, or a WAF / bot-challenge page, says nothing about the
/// site's footer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageFacts {
    /// Visible non-whitespace characters outside `<template>` content.
    #[serde(default)]
    pub text_chars: u32,
    /// Scripts a browser would run: `<script>` elements with a `src` or with code, of an
    /// executable type (not JSON, templates or other data blocks).
    #[serde(default)]
    pub scripts: u32,
    /// Whether the page has `<template>` content with visible text.
    #[serde(default)]
    pub template_text: bool,
    /// The known WAF / bot-challenge marker the page carries (a closed set of names, e.g.
    /// `cloudflare`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}

/// Everything extracted from one page, in document order, each number once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extraction {
    pub icp: Vec<IcpMention>,
    pub licences: Vec<LicenceNumber>,
    pub psb: Vec<PsbNumber>,
    /// Facts about the page (see [`PageFacts`]).
    #[serde(default)]
    pub facts: PageFacts,
}

impl Extraction {
    /// Whether the static page cannot decide the footer on its own: it shows no ICP number
    /// in its ordinary text, and it either runs scripts (which may write the footer) or
    /// shows its numbers only through `<template>` content. Such pages are rendered when a
    /// renderer is available; otherwise they are not judged for `number_missing`.
    pub fn needs_render(&self) -> bool {
        let text_number = self.icp.iter().any(|m| m.via == Via::Text);
        !text_number && (self.facts.scripts > 0 || self.facts.template_text)
    }

    /// Mark every ICP number as read from the rendered DOM.
    pub fn mark_rendered(mut self) -> Extraction {
        for m in &mut self.icp {
            m.via = Via::Rendered;
        }
        self
    }
}

/// A decoded and extracted page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    /// The charset the bytes were decoded with (WHATWG label, e.g. `gbk`, `utf-8`).
    pub charset: String,
    pub extraction: Extraction,
}

/// Outside any footer-like element, a number counts as footer text when at most this many
/// block boundaries follow it (it is in the last few lines of the page)…
pub const TAIL_MAX_BLOCKS_AFTER: usize = 4;
/// …and at most this many visible characters follow it.
pub const TAIL_MAX_CHARS_AFTER: usize = 400;

/// Decode `bytes` (BOM, then the charset of `content_type`, then `<meta>`, then a guess from
/// the bytes; see [`decode::detect`]) and extract everything a reader sees.
pub fn extract_document(bytes: &[u8], content_type: Option<&str>) -> Document {
    let (text, encoding) = decode::decode(bytes, content_type);
    Document {
        charset: encoding.name().to_ascii_lowercase(),
        extraction: extract_html(&text),
    }
}

/// Extract everything a reader sees from an already decoded HTML page.
pub fn extract_html(html: &str) -> Extraction {
    let stripped = serverside::strip_server_code(html);
    let limited = guard::limit_nesting(&stripped, guard::MAX_DEPTH);
    let page =
        stream::visible_text(&limited).unwrap_or_else(|| visible_text(&dom::parse(&limited)));
    let mut out = extract_visible(&page);
    let VisibleText {
        text,
        scripts,
        text_chars,
        template_chars,
        ..
    } = page;
    visible::recycle(text);
    if out.icp.iter().any(|m| m.via == Via::Text) {
        out.icp.retain(|m| m.via == Via::Text);
    }
    out.facts.scripts = scripts;
    out.facts.text_chars = u32::try_from(text_chars).unwrap_or(u32::MAX);
    out.facts.template_text = template_chars > 0;
    let shows_number = out.icp.iter().any(|m| m.via == Via::Text);
    out.facts.challenge =
        challenge::detect(html, out.facts.text_chars, shows_number).map(str::to_string);
    out
}

fn extract_visible(page: &VisibleText) -> Extraction {
    let chars = page.text.chars();
    let total_breaks = chars.iter().filter(|c| c.break_before).count();
    let mut breaks_seen = 0usize; // breaks before index `swept`
    let mut swept = 0usize;

    let mut out = Extraction::default();
    let mut icp_index: HashMap<FilingNumber, usize> = HashMap::new();
    let mut seen_licences: HashMap<LicenceNumber, ()> = HashMap::new();
    let mut seen_psb: HashMap<PsbNumber, ()> = HashMap::new();

    for m in scan_numbers(chars) {
        match m.number {
            FoundNumber::Filing(number) => {
                let first = page.context_at(m.digits.start);
                let last = page.context_at(m.digits.end.saturating_sub(1));
                let link_host = if first.anchor == last.anchor {
                    page.anchor_host(first.anchor).map(str::to_string)
                } else {
                    None
                };
                let start_ctx = page.context_at(m.start);
                let via = if first.template {
                    Via::Template
                } else {
                    Via::Text
                };
                let in_footer = if first.footer || start_ctx.footer {
                    true
                } else if start_ctx.content || first.content {
                    false
                } else {
                    // Count block boundaries after the number (the sweep only moves forward:
                    // matches come in order, so the whole pass stays linear).
                    while swept < m.end.min(chars.len()) {
                        if chars[swept].break_before {
                            breaks_seen += 1;
                        }
                        swept += 1;
                    }
                    let breaks_after = total_breaks - breaks_seen;
                    let chars_after = chars.len().saturating_sub(m.end);
                    let footer_follows = page.last_footer_start.is_some_and(|s| s > m.start);
                    !footer_follows
                        && breaks_after <= TAIL_MAX_BLOCKS_AFTER
                        && chars_after <= TAIL_MAX_CHARS_AFTER
                };
                match icp_index.get(&number) {
                    Some(&i) => {
                        let mention = &mut out.icp[i];
                        if !mention.linked && link_host.is_some() {
                            mention.linked = true;
                            mention.link_host = link_host;
                        }
                        mention.in_footer |= in_footer;
                        // Shown in ordinary text anywhere: ordinary text.
                        if via == Via::Text {
                            mention.via = Via::Text;
                        }
                    }
                    None => {
                        icp_index.insert(number.clone(), out.icp.len());
                        out.icp.push(IcpMention {
                            number,
                            linked: link_host.is_some(),
                            link_host,
                            in_footer,
                            via,
                        });
                    }
                }
            }
            FoundNumber::Licence(l) => {
                if seen_licences.insert(l.clone(), ()).is_none() {
                    out.licences.push(l);
                }
            }
            FoundNumber::Psb(p) => {
                if seen_psb.insert(p.clone(), ()).is_none() {
                    out.psb.push(p);
                }
            }
        }
    }
    drop_unprefixed_repeats(&mut out.licences);
    out
}

/// A B1/B2 licence shown both with its prefix (`京B2-20090317`) and without (`B2-20090317`)
/// is one licence: keep the prefixed form.
fn drop_unprefixed_repeats(licences: &mut Vec<LicenceNumber>) {
    let prefixed: Vec<(LicenceClass, &str, Option<u32>)> = licences
        .iter()
        .filter_map(|l| match l {
            LicenceNumber::ValueAdded {
                class,
                digits,
                suffix,
                ..
            } => Some((*class, digits.as_str(), *suffix)),
            _ => None,
        })
        .collect();
    if prefixed.is_empty() {
        return;
    }
    let repeats: Vec<bool> = licences
        .iter()
        .map(|l| match l {
            LicenceNumber::Unprefixed {
                class,
                digits,
                suffix,
            } => prefixed.contains(&(*class, digits.as_str(), *suffix)),
            _ => false,
        })
        .collect();
    let mut i = 0;
    licences.retain(|_| {
        i += 1;
        !repeats[i - 1]
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn icp(html: &str) -> Vec<(String, bool, Option<String>, bool)> {
        extract_html(html)
            .icp
            .into_iter()
            .map(|m| (m.number.to_string(), m.linked, m.link_host, m.in_footer))
            .collect()
    }

    #[test]
    fn linked_footer_number() {
        let got = icp(
            r#"<body><p>text</p><footer><a href="https://beian.miit.gov.cn/">京ICP备12345678号-1</a></footer></body>"#,
        );
        assert_eq!(
            got,
            vec![(
                "京ICP备12345678号-1".to_string(),
                true,
                Some("beian.miit.gov.cn".to_string()),
                true
            )]
        );
    }

    #[test]
    fn header_number_is_not_footer() {
        let got = icp(
            r#"<body><header>京ICP备12345678号</header><p>lots of text</p><div class="footer">©</div></body>"#,
        );
        assert!(!got[0].3);
    }

    #[test]
    fn repeats_merge() {
        let got = icp(
            r#"<body><p>京ICP备12345678号</p><div class="copyright"><a href="http://www.miibeian.gov.cn">京ICP备12345678号</a></div></body>"#,
        );
        assert_eq!(got.len(), 1);
        assert!(got[0].1 && got[0].3);
        assert_eq!(got[0].2.as_deref(), Some("www.miibeian.gov.cn"));
    }

    #[test]
    fn blocks_do_not_glue_numbers() {
        let got = icp("<body><div>京ICP备</div><div>12345678号</div></body>");
        assert!(got.is_empty());
        let got = icp("<body><p>京ICP备1234<span>5678</span>号</p></body>");
        assert_eq!(got[0].0, "京ICP备12345678号");
    }

    #[test]
    fn via_and_licence_repeats() {
        let e = extract_html(
            "<body><template><p>京ICP备12345678号</p><p>京ICP备12345679号</p></template>\
             <div class=footer>京ICP备12345678号 经营许可证：B2-20090317 京B2-20090317 \
             许可证 B1-20100001</div></body>",
        );
        let via: Vec<(String, Via)> = e
            .icp
            .iter()
            .map(|m| (m.number.to_string(), m.via))
            .collect();
        // Ordinary text shows a number: a template-only number beside it is not reported.
        assert_eq!(via, [("京ICP备12345678号".to_string(), Via::Text)]);
        let only = extract_html(
            "<body><template><p>京ICP备12345678号</p><p>京ICP备12345679号</p></template></body>",
        );
        let via: Vec<Via> = only.icp.iter().map(|m| m.via).collect();
        assert_eq!(via, [Via::Template, Via::Template]);
        let licences: Vec<String> = e.licences.iter().map(|l| l.to_string()).collect();
        assert_eq!(licences, ["京B2-20090317", "B1-20100001"]);
        assert!(e.facts.template_text);
        let json = serde_json::to_string(&only.icp).unwrap_or_default();
        assert_eq!(json.matches("\"via\":\"template\"").count(), 2, "{json}");
        let json = serde_json::to_string(&e.icp).unwrap_or_default();
        assert!(
            !json.contains("\"via\""),
            "ordinary text says nothing: {json}"
        );
    }

    #[test]
    fn charset_reported() {
        let (bytes, _, _) =
            encoding_rs::GBK.encode("<meta charset=gb2312><footer>沪ICP备09007032号</footer>");
        let doc = extract_document(&bytes, None);
        assert_eq!(doc.charset, "gbk");
        assert_eq!(
            doc.extraction.icp[0].number.to_string(),
            "沪ICP备09007032号"
        );
    }
}
