//! The text a reader sees on a parsed page, as [`ScanText`] characters, with the context of
//! every character: the link it sits in, whether it is inside a footer-like element, and
//! whether it is inside a header, navigation or main-content element.
//!
//! Not visible: comments, `<head>`, `<script>`, `<style>`, `<template>`, `<noscript>` (and other
//! raw-text containers), elements with the `hidden` attribute or an inline `display:none` /
//! `visibility:hidden` (with their children), and attribute values. Inline elements and `<br>`
//! join text; every other element is a block boundary that no number spans.
//!
//! The walk is iterative (no recursion), so deeply nested markup cannot overflow the stack.

use scraper::node::Element;
use scraper::{Html, Node};

use super::link::miit_host;
use crate::number::ScanText;

/// Elements whose content is never rendered as page text.
const NOT_RENDERED: &[&str] = &[
    "head",
    "title",
    "script",
    "style",
    "template",
    "noscript",
    "iframe",
    "noembed",
    "noframes",
    "xmp",
    "plaintext",
];

/// Elements that flow inline with their neighbours: their text joins the surrounding text.
const INLINE: &[&str] = &[
    "a", "abbr", "acronym", "b", "bdi", "bdo", "big", "cite", "code", "data", "del", "dfn", "em",
    "font", "i", "ins", "kbd", "label", "mark", "nobr", "q", "rp", "rt", "ruby", "s", "samp",
    "small", "span", "strike", "strong", "sub", "sup", "time", "tt", "u", "var", "output",
];

/// Tags that mark a header, navigation or main content region.
const CONTENT_TAGS: &[&str] = &["header", "nav", "article", "main", "aside"];

/// Class/id words that mark a header or navigation region.
const CONTENT_WORDS: &[&str] = &["header", "nav", "menu", "topbar", "top-bar"];

/// Class/id words that mark a footer region.
const FOOTER_WORDS: &[&str] = &["foot", "copyright", "bottom"];

/// Utility classes (CSS frameworks) that contain `bottom` but say nothing about placement.
const BOTTOM_UTILITIES: &[&str] = &[
    "border-bottom",
    "margin-bottom",
    "padding-bottom",
    "rounded-bottom",
    "align-bottom",
    "align-text-bottom",
    "valign-bottom",
];

/// Where a character sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Context {
    /// Index into [`VisibleText::anchors`] of the innermost `<a>` around the character.
    pub anchor: Option<u32>,
    /// Inside `<footer>` or an element whose id or class mentions foot/copyright/bottom.
    pub footer: bool,
    /// Inside a header, navigation or main-content region.
    pub content: bool,
}

/// The visible text of a page with per-character context.
#[derive(Debug, Clone, Default)]
pub struct VisibleText {
    pub text: ScanText,
    /// Distinct contexts; `runs` refer to them by index.
    pub contexts: Vec<Context>,
    /// (index of the first character, context index), in character order.
    runs: Vec<(usize, u32)>,
    /// For every `<a>`: the MIIT host its `href` links to, if any.
    pub anchors: Vec<Option<String>>,
    /// The character index at which the last visible footer-like element began.
    pub last_footer_start: Option<usize>,
    /// Scripts a browser would run (see [`is_executable_script`]).
    pub scripts: u32,
}

impl VisibleText {
    /// The context of character `index`.
    pub fn context_at(&self, index: usize) -> Context {
        let n = self.runs.partition_point(|(start, _)| *start <= index);
        if n == 0 {
            return Context::default();
        }
        self.contexts
            .get(self.runs[n - 1].1 as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The MIIT host of an anchor, if it links to one.
    pub fn anchor_host(&self, anchor: Option<u32>) -> Option<&str> {
        self.anchors.get(anchor? as usize)?.as_deref()
    }
}

struct Frame {
    ctx: u32,
    block: bool,
}

struct Walker {
    out: VisibleText,
    frames: Vec<Frame>,
}

/// Collect the visible text of a parsed document.
pub fn visible_text(html: &Html) -> VisibleText {
    let mut w = Walker {
        out: VisibleText {
            contexts: vec![Context::default()],
            ..VisibleText::default()
        },
        frames: Vec::new(),
    };
    let root = html.tree.root();
    let mut node = root;
    'walk: loop {
        if let Node::Element(e) = node.value() {
            if e.name().eq_ignore_ascii_case("script") {
                let has_code = node.children().any(|c| match c.value() {
                    Node::Text(t) => !t.text.trim().is_empty(),
                    _ => false,
                });
                if is_executable_script(e, has_code) {
                    w.out.scripts = w.out.scripts.saturating_add(1);
                }
            }
        }
        if w.enter(node.value()) {
            if let Some(child) = node.first_child() {
                node = child;
                continue;
            }
            w.leave(node.value());
        }
        loop {
            if node.id() == root.id() {
                break 'walk;
            }
            if let Some(next) = node.next_sibling() {
                node = next;
                break;
            }
            match node.parent() {
                Some(parent) => {
                    node = parent;
                    w.leave(node.value());
                }
                None => break 'walk,
            }
        }
    }
    w.out
}

impl Walker {
    fn current_ctx(&self) -> u32 {
        self.frames.last().map_or(0, |f| f.ctx)
    }

    /// Handle a node on the way down; `true` means "visit its children, then call `leave`".
    fn enter(&mut self, node: &Node) -> bool {
        match node {
            Node::Document => true,
            Node::Text(t) => {
                self.push_text(&t.text);
                false
            }
            Node::Element(e) => self.enter_element(e),
            // Comments, doctypes, processing instructions, template fragments: not shown.
            _ => false,
        }
    }

    fn leave(&mut self, node: &Node) {
        if let Node::Element(_) = node {
            if let Some(frame) = self.frames.pop() {
                if frame.block {
                    self.out.text.push_break();
                }
            }
        }
    }

    fn push_text(&mut self, text: &str) {
        let ctx = self.current_ctx();
        if self.out.runs.last().map(|r| r.1) != Some(ctx) {
            self.out.runs.push((self.out.text.len(), ctx));
        }
        self.out.text.push_str(text);
    }

    fn enter_element(&mut self, e: &Element) -> bool {
        let name = e.name();
        let name_lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name_lower = name.to_ascii_lowercase();
            name_lower.as_str()
        } else {
            name
        };
        if NOT_RENDERED.contains(&name) || is_hidden(e) {
            return false;
        }
        match name {
            "br" | "img" => {
                self.out.text.push_space();
                return false;
            }
            "wbr" => return false,
            "hr" => {
                self.out.text.push_break();
                return false;
            }
            _ => {}
        }
        let block = !INLINE.contains(&name);
        if block {
            self.out.text.push_break();
        }
        let parent = self.current_ctx();
        let mut ctx = self
            .out
            .contexts
            .get(parent as usize)
            .copied()
            .unwrap_or_default();
        if name == "a" {
            let host = e.attr("href").and_then(miit_host);
            ctx.anchor = u32::try_from(self.out.anchors.len()).ok();
            self.out.anchors.push(host);
        }
        if is_footer_like(name, e) {
            ctx.footer = true;
            self.out.last_footer_start = Some(self.out.text.len());
        }
        if is_content_like(name, e) {
            ctx.content = true;
        }
        let ctx_id = if self.out.contexts.get(parent as usize) == Some(&ctx) {
            parent
        } else {
            match u32::try_from(self.out.contexts.len()) {
                Ok(id) => {
                    self.out.contexts.push(ctx);
                    id
                }
                Err(_) => parent,
            }
        };
        self.frames.push(Frame { ctx: ctx_id, block });
        true
    }
}

/// Whether a `<script>` element runs in a browser: it has a `src` or inline code, and its
/// `type` is a JavaScript MIME type or `module` (absent or empty means JavaScript). Data
/// blocks (`application/json`, `application/ld+json`, `text/template`, …) do not run.
pub fn is_executable_script(e: &Element, has_code: bool) -> bool {
    if !has_code && e.attr("src").is_none_or(|s| s.trim().is_empty()) {
        return false;
    }
    let ty = e.attr("type").unwrap_or("").trim().to_ascii_lowercase();
    let ty = ty.split(';').next().unwrap_or("").trim();
    matches!(
        ty,
        "" | "module"
            | "text/javascript"
            | "application/javascript"
            | "application/x-javascript"
            | "text/ecmascript"
            | "application/ecmascript"
            | "text/jscript"
            | "text/livescript"
            | "text/x-javascript"
            | "text/x-ecmascript"
            | "text/babel"
    )
}

/// The `hidden` attribute, or an inline style with `display:none` / `visibility:hidden`.
fn is_hidden(e: &Element) -> bool {
    if e.attr("hidden").is_some() {
        return true;
    }
    e.attr("style").is_some_and(style_hides)
}

/// Whether an inline style declares `display:none` or `visibility:hidden` (any spacing, any
/// case, with or without `!important`).
pub fn style_hides(style: &str) -> bool {
    style.split(';').any(|decl| {
        let Some((prop, value)) = decl.split_once(':') else {
            return false;
        };
        let prop = prop.trim().to_ascii_lowercase();
        let value: String = value
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase();
        let value = value.trim_end_matches("!important");
        (prop == "display" && value == "none") || (prop == "visibility" && value == "hidden")
    })
}

fn is_footer_like(name: &str, e: &Element) -> bool {
    if name == "footer" {
        return true;
    }
    if let Some(id) = e.id() {
        let id = id.to_ascii_lowercase();
        if FOOTER_WORDS.iter().any(|w| id.contains(w)) {
            return true;
        }
    }
    e.classes().any(|class| {
        let class = class.to_ascii_lowercase();
        FOOTER_WORDS.iter().any(|w| class.contains(w))
            && !BOTTOM_UTILITIES.iter().any(|u| class.starts_with(u))
    })
}

fn is_content_like(name: &str, e: &Element) -> bool {
    if CONTENT_TAGS.contains(&name) {
        return true;
    }
    let mentions = |v: &str| {
        let v = v.to_ascii_lowercase();
        CONTENT_WORDS.iter().any(|w| v.contains(w))
    };
    e.id().is_some_and(mentions) || e.classes().any(mentions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(html: &str) -> String {
        let v = visible_text(&Html::parse_document(html));
        v.text
            .chars()
            .iter()
            .map(|c| {
                let mut s = String::new();
                if c.break_before {
                    s.push('|');
                } else if c.space_before {
                    s.push(' ');
                }
                s.push(c.c);
                s
            })
            .collect()
    }

    #[test]
    fn hidden_things_are_not_text() {
        let html = r#"<html><head><title>T1</title></head><body>
            <!-- C1 --><script>S1</script><style>.x{}</style><template>T2</template>
            <noscript>N1</noscript><div hidden>H1</div>
            <p style="DISPLAY : None !important">D1</p><span style="visibility:hidden">V1</span>
            <img alt="A1"><input placeholder="P1">ok</body></html>"#;
        assert_eq!(text_of(html).trim(), "ok");
    }

    #[test]
    fn inline_joins_and_blocks_break() {
        assert_eq!(text_of("<p>a<b>b</b><i>c</i><br>d</p><p>e</p>"), "abc d|e");
        assert_eq!(
            text_of("<table><tr><td>1</td><td>2</td></tr></table>"),
            "1|2"
        );
    }

    #[test]
    fn style_parsing() {
        assert!(style_hides("display:none"));
        assert!(style_hides("color:red; display :\tNONE"));
        assert!(style_hides("visibility: hidden;"));
        assert!(!style_hides("display:block"));
        assert!(!style_hides("visibility:visible"));
        assert!(!style_hides("content:'display:none'x"));
    }
}
