//! The text a reader sees on a parsed page, as [`ScanText`] characters, with the context of
//! every character: the link it sits in, whether it is inside a footer-like element, and
//! whether it is inside a header, navigation or main-content element.
//!
//! Not visible: comments, `<head>`, `<script>`, `<style>`, `<noscript>` (and other raw-text
//! containers), elements with the `hidden` attribute or an inline `display:none` /
//! `visibility:hidden` (with their children), the content of elements whose text a template
//! engine replaces at render time (`th:text`, `v-text`, `v-html`, `x-text`, `ng-bind`, …; see
//! [`engine_replaces_content`]), and attribute values. Inline elements and `<br>` join text;
//! every other element is a block boundary that no number spans.
//!
//! `<template>` content (html5ever keeps it in a document fragment under the element) is what
//! frameworks render: it is walked like page text with the same rules, and its characters are
//! marked [`Context::template`]. It is not counted in [`VisibleText::text_chars`], and scripts
//! inside it are not counted in [`VisibleText::scripts`] (they run only once mounted).
//!
//! One [`Walker`] turns elements and text, in document order, into that text. Two readers
//! feed it: [`visible_text`] walks html5ever's tree (`dom.rs`), iteratively (no recursion,
//! so deeply nested markup cannot overflow the stack); `stream.rs` feeds it in one pass for
//! pages that need no tree. [`recycle`] gives a page's character buffer back for the thread's
//! next page.

use super::dom::{Dom, Node, NodeId};

/// What the walk reads of an element: its name and attributes (names in lower case, as the
/// HTML parser stores them). Implemented by the arena's [`Element`](super::dom::Element) and
/// by the streaming reader's tags, so that both feed one [`Walker`].
pub trait ElementView {
    /// The element's local name.
    fn name(&self) -> &str;
    /// Attribute names and values, in source order.
    fn attrs(&self) -> impl Iterator<Item = (&str, &str)>;
    /// The value of attribute `name` in no namespace (ordinary HTML attributes).
    fn attr(&self, name: &str) -> Option<&str>;
    /// The value of the first attribute called `name` in any namespace.
    fn attr_in_any_namespace(&self, name: &str) -> Option<&str> {
        self.attrs().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
    /// The element's classes: its `class` attributes split at white space.
    fn classes(&self) -> impl Iterator<Item = &str> {
        self.attrs()
            .filter(|(n, _)| *n == "class")
            .flat_map(|(_, v)| v.split_whitespace())
    }
}

use super::link::miit_host;
use crate::number::ScanText;

/// Elements whose content is never rendered as page text. (A `match`, not a list searched
/// per element: every element of a page asks.)
fn not_rendered(name: &str) -> bool {
    matches!(
        name,
        "head"
            | "title"
            | "script"
            | "style"
            | "noscript"
            | "iframe"
            | "noembed"
            | "noframes"
            | "xmp"
            | "plaintext"
            // Vue single-file components: the translation block is data, not markup.
            | "i18n"
    )
}

/// Elements that flow inline with their neighbours: their text joins the surrounding text.
fn is_inline(name: &str) -> bool {
    matches!(
        name,
        "a" | "abbr"
            | "acronym"
            | "b"
            | "bdi"
            | "bdo"
            | "big"
            | "cite"
            | "code"
            | "data"
            | "del"
            | "dfn"
            | "em"
            | "font"
            | "i"
            | "ins"
            | "kbd"
            | "label"
            | "mark"
            | "nobr"
            | "q"
            | "rp"
            | "rt"
            | "ruby"
            | "s"
            | "samp"
            | "small"
            | "span"
            | "strike"
            | "strong"
            | "sub"
            | "sup"
            | "time"
            | "tt"
            | "u"
            | "var"
            | "output"
    )
}

/// Tags that mark a header, navigation or main content region.
fn is_content_tag(name: &str) -> bool {
    matches!(name, "header" | "nav" | "article" | "main" | "aside")
}

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
    /// Inside `<template>` content.
    pub template: bool,
}

/// The visible text of a page with per-character context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
    /// Scripts a browser would run (see [`is_executable_script`]), outside `<template>`
    /// content.
    pub scripts: u32,
    /// Visible characters (whitespace excluded) outside `<template>` content.
    pub text_chars: usize,
    /// Visible characters (whitespace excluded) inside `<template>` content.
    pub template_chars: usize,
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

thread_local! {
    /// The character buffer of the last page this thread read, reused by the next: a page's
    /// text is tens of thousands of characters, and growing a new buffer for each page (with
    /// its copies and fresh pages from the kernel) was a tenth of reading one.
    static CHARS: std::cell::Cell<Vec<crate::number::ScanChar>> =
        const { std::cell::Cell::new(Vec::new()) };
}

/// Buffers above this many characters are not kept for the next page.
const KEEP_CHARS: usize = 1 << 20;

/// Give a page's character buffer back for the next page this thread reads.
pub fn recycle(text: ScanText) {
    let buffer = text.into_buffer();
    if buffer.capacity() <= KEEP_CHARS {
        CHARS.set(buffer);
    }
}

struct Frame {
    ctx: u32,
    block: bool,
    /// Whether text was shown before this element was entered (restored on leaving it).
    shown_before: bool,
    /// [`Walker::head_only`] before this element was entered.
    head_only_before: bool,
    /// This element is a `<template>`.
    template: bool,
}

pub(super) struct Walker {
    out: VisibleText,
    frames: Vec<Frame>,
    /// Whether text at the current position is shown. Hidden subtrees (`<head>`, hidden
    /// elements, engine-replaced content) are still walked, to count the scripts in them.
    shown: bool,
    /// Text is hidden only because it is inside `<head>`: a `<template>` there is still
    /// rendered by frameworks (html5ever puts a leading `<template>` — a Vue single-file
    /// component — into `<head>`).
    head_only: bool,
    /// Open `<template>` elements.
    template_depth: usize,
}

/// Collect the visible text of a parsed document.
pub fn visible_text(dom: &Dom) -> VisibleText {
    let mut w = Walker::new();
    let root = dom.root();
    let mut node: NodeId = root;
    'walk: loop {
        let entered = match dom.node(node) {
            Node::Element(e) => {
                let has_code = e.name().eq_ignore_ascii_case("script")
                    && dom.children(node).any(|c| match dom.node(c) {
                        Node::Text(t) => !t.trim().is_empty(),
                        _ => false,
                    });
                w.element(e, has_code)
            }
            Node::Text(t) => {
                w.push_text(t);
                false
            }
            // The document, and the content of a `<template>` element.
            Node::Document | Node::Fragment => true,
            // Comments, doctypes, processing instructions: not shown.
            Node::Other => false,
        };
        if entered {
            if let Some(child) = dom.first_child(node) {
                node = child;
                continue;
            }
            w.leave(dom.node(node));
        }
        loop {
            if node == root {
                break 'walk;
            }
            if let Some(next) = dom.next_sibling(node) {
                node = next;
                break;
            }
            match dom.parent(node) {
                Some(parent) => {
                    node = parent;
                    w.leave(dom.node(node));
                }
                None => break 'walk,
            }
        }
    }
    w.finish()
}

impl Walker {
    pub(super) fn new() -> Walker {
        Walker {
            out: VisibleText {
                text: ScanText::with_buffer(CHARS.take()),
                contexts: vec![Context::default()],
                ..VisibleText::default()
            },
            frames: Vec::new(),
            shown: true,
            head_only: false,
            template_depth: 0,
        }
    }

    pub(super) fn finish(self) -> VisibleText {
        self.out
    }

    fn current_ctx(&self) -> u32 {
        self.frames.last().map_or(0, |f| f.ctx)
    }

    /// An element on the way down (`has_code`: it is a `<script>` with code in it); `true`
    /// means "walk its content, then call [`Walker::leave_element`]".
    pub(super) fn element<E: ElementView>(&mut self, e: &E, has_code: bool) -> bool {
        if self.template_depth == 0
            && e.name().eq_ignore_ascii_case("script")
            && is_executable_script(e, has_code)
        {
            self.out.scripts = self.out.scripts.saturating_add(1);
        }
        self.enter_element(e)
    }

    fn leave(&mut self, node: &Node) {
        if let Node::Element(_) = node {
            self.leave_element();
        }
    }

    /// Leave an element [`Walker::element`] entered.
    pub(super) fn leave_element(&mut self) {
        if let Some(frame) = self.frames.pop() {
            self.shown = frame.shown_before;
            self.head_only = frame.head_only_before;
            if frame.block && self.shown {
                self.out.text.push_break();
            }
            if frame.template {
                self.template_depth = self.template_depth.saturating_sub(1);
            }
        }
    }

    pub(super) fn push_text(&mut self, text: &str) {
        if !self.shown {
            return;
        }
        let ctx = self.current_ctx();
        let before = self.out.text.len();
        if self.out.runs.last().map(|r| r.1) != Some(ctx) {
            self.out.runs.push((before, ctx));
        }
        self.out.text.push_str(text);
        let added = self.out.text.len() - before;
        if self.template_depth > 0 {
            self.out.template_chars += added;
        } else {
            self.out.text_chars += added;
        }
    }

    fn enter_element<E: ElementView>(&mut self, e: &E) -> bool {
        let name = e.name();
        let name_lower;
        let name = if name.bytes().any(|b| b.is_ascii_uppercase()) {
            name_lower = name.to_ascii_lowercase();
            name_lower.as_str()
        } else {
            name
        };
        if not_rendered(name) && name != "head" {
            return false;
        }
        let template = name == "template";
        let hidden = is_hidden(e);
        let reveal = template && !self.shown && self.head_only && !hidden;
        if !reveal && (!self.shown || name == "head" || hidden) {
            // Not shown: walked only for the scripts inside.
            self.frames.push(Frame {
                ctx: self.current_ctx(),
                block: false,
                shown_before: self.shown,
                head_only_before: self.head_only,
                template,
            });
            if hidden {
                self.head_only = false;
            } else if name == "head" {
                self.head_only = self.shown || self.head_only;
            }
            self.shown = false;
            if template {
                self.template_depth += 1;
            }
            return true;
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
        let block = !is_inline(name);
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
        if template {
            ctx.template = true;
        }
        if is_footer_like(name, e) {
            ctx.footer = true;
            // A template is rendered wherever it is mounted: it does not place page text.
            if self.template_depth == 0 {
                self.out.last_footer_start = Some(self.out.text.len());
            }
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
        self.frames.push(Frame {
            ctx: ctx_id,
            block,
            shown_before: self.shown,
            head_only_before: self.head_only,
            template,
        });
        if reveal {
            self.shown = true;
            self.head_only = false;
        }
        if template {
            self.template_depth += 1;
        }
        if engine_replaces_content(e) {
            // The element is shown, but with text the engine puts there; what it holds in the
            // source (a preview or default) is not.
            if !block {
                self.out.text.push_space();
            }
            self.shown = false;
        }
        true
    }
}

/// Attributes with which a template engine replaces an element's content at render time:
/// Thymeleaf (`th:text`, `th:utext`, `th:replace`, `th:insert`, `data-th-*`), Vue (`v-text`,
/// `v-html`, a bound `innerHTML` / `textContent`), Alpine (`x-text`, `x-html`), AngularJS
/// (`ng-bind`, `ng-bind-html`, `ng-bind-template`, `ng-include`, `data-ng-*`), Angular (`[innerHTML]`,
/// `[textContent]`), and Knockout (`data-bind` with a `text` or `html` binding); also Thymeleaf's
/// `th:remove` of the element or its body. Names are
/// compared in lower case, as the parser stores them.
const REPLACING_ATTRIBUTES: &[&str] = &[
    "th:text",
    "th:utext",
    "th:replace",
    "th:insert",
    "th:include",
    "data-th-text",
    "data-th-utext",
    "data-th-replace",
    "data-th-insert",
    "v-text",
    "v-html",
    "v-bind:innerhtml",
    "v-bind:textcontent",
    ":innerhtml",
    ":textcontent",
    "v-bind:inner-html",
    ":inner-html",
    "v-bind:text-content",
    ":text-content",
    "x-text",
    "x-html",
    "ng-bind",
    "ng-bind-html",
    "ng-bind-template",
    "data-ng-bind",
    "data-ng-bind-html",
    "ng:bind",
    "ng-include",
    "data-ng-include",
    "[innerhtml]",
    "[textcontent]",
    "[inner-html]",
    "[innertext]",
    ":innertext",
    "v-bind:innertext",
];

/// Whether a template engine replaces the element's content at render time (see
/// [`REPLACING_ATTRIBUTES`]).
pub fn engine_replaces_content<E: ElementView + ?Sized>(e: &E) -> bool {
    // The HTML parser stores attribute names in lower case.
    e.attrs().any(|(name, value)| {
        // Vue modifiers: `:inner-html.prop`, `v-bind:innerHTML.camel`.
        let base = name.split('.').next().unwrap_or("");
        if REPLACING_ATTRIBUTES.contains(&base) || REPLACING_ATTRIBUTES.contains(&name) {
            return true;
        }
        if name == "th:remove" || name == "data-th-remove" {
            // Thymeleaf removes the element (or its body) at render time; `tag` keeps the body.
            let v = value.trim().to_ascii_lowercase();
            return v == "all" || v == "body" || v == "all-but-first";
        }
        (name == "data-bind" || name == "data-sly-text") && knockout_replaces(name, value)
    })
}

/// A Knockout `data-bind` with a `text:` or `html:` binding (HTL `data-sly-text` always).
fn knockout_replaces(name: &str, value: &str) -> bool {
    if name == "data-sly-text" {
        return true;
    }
    value.split(',').any(|binding| {
        let key = binding.split(':').next().unwrap_or("").trim();
        key == "text" || key == "html"
    })
}

/// Whether a `<script>` element runs in a browser: it has a `src` or inline code, and its
/// `type` is a JavaScript MIME type or `module` (absent or empty means JavaScript). Data
/// blocks (`application/json`, `application/ld+json`, `text/template`, …) do not run.
pub fn is_executable_script<E: ElementView + ?Sized>(e: &E, has_code: bool) -> bool {
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

/// Whether `hay` contains the ASCII lower-case `needle`, ignoring ASCII case.
fn contains_ignore_case(hay: &str, needle: &str) -> bool {
    hay.as_bytes()
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// Whether `hay` starts with the ASCII lower-case `prefix`, ignoring ASCII case.
fn starts_with_ignore_case(hay: &str, prefix: &str) -> bool {
    hay.as_bytes()
        .get(..prefix.len())
        .is_some_and(|h| h.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// The `hidden` attribute, or an inline style with `display:none` / `visibility:hidden`.
fn is_hidden<E: ElementView + ?Sized>(e: &E) -> bool {
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

fn is_footer_like<E: ElementView + ?Sized>(name: &str, e: &E) -> bool {
    if name == "footer" {
        return true;
    }
    if let Some(id) = e.attr_in_any_namespace("id") {
        if FOOTER_WORDS.iter().any(|w| contains_ignore_case(id, w)) {
            return true;
        }
    }
    e.classes().any(|class| {
        FOOTER_WORDS.iter().any(|w| contains_ignore_case(class, w))
            && !BOTTOM_UTILITIES
                .iter()
                .any(|u| starts_with_ignore_case(class, u))
    })
}

fn is_content_like<E: ElementView + ?Sized>(name: &str, e: &E) -> bool {
    if is_content_tag(name) {
        return true;
    }
    let mentions = |v: &str| CONTENT_WORDS.iter().any(|w| contains_ignore_case(v, w));
    e.attr_in_any_namespace("id").is_some_and(mentions) || e.classes().any(mentions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_of(html: &str) -> String {
        let v = visible_text(&super::super::dom::parse(html));
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
            <!-- C1 --><script>S1</script><style>.x{}</style>
            <noscript>N1</noscript><div hidden>H1</div>
            <p style="DISPLAY : None !important">D1</p><span style="visibility:hidden">V1</span>
            <img alt="A1"><input placeholder="P1">ok</body></html>"#;
        assert_eq!(text_of(html).trim(), "ok");
    }

    #[test]
    fn template_content_is_walked_and_marked() {
        let v = visible_text(&super::super::dom::parse(
            "<body><p>ab</p><template><div class=footer>cd<script>x()</script>\
             <span hidden>ef</span></div></template><script src=a.js></script></body>",
        ));
        let text: String = v.text.chars().iter().map(|c| c.c).collect();
        assert_eq!(text, "abcd");
        assert!(!v.context_at(0).template && v.context_at(2).template);
        assert!(v.context_at(2).footer);
        assert_eq!((v.text_chars, v.template_chars, v.scripts), (2, 2, 1));
        assert_eq!(v.last_footer_start, None);
    }

    #[test]
    fn a_template_in_head_is_shown() {
        // A Vue single-file component: html5ever puts the leading template into <head>.
        let v = visible_text(&super::super::dom::parse(
            "<template><div class=footer>ab<p hidden>x</p></div></template>\
             <script>export default {}</script><style scoped>.a{}</style>",
        ));
        let text: String = v.text.chars().iter().map(|c| c.c).collect();
        assert_eq!(text, "ab");
        assert!(v.context_at(0).template && v.context_at(0).footer);
        let v = visible_text(&super::super::dom::parse(
            "<head><title>t</title><template>cd</template><meta charset=utf-8></head><body>e</body>",
        ));
        let text: String = v.text.chars().iter().map(|c| c.c).collect();
        assert_eq!(text, "cde");
    }

    #[test]
    fn scripts_in_head_and_hidden_elements_count() {
        let v = visible_text(&super::super::dom::parse(
            "<html><head><script src=a.js></script><script type=application/json>{}</script>\
             </head><body><div hidden><script>run()</script></div>x</body></html>",
        ));
        assert_eq!(v.scripts, 2);
        assert_eq!(v.text_chars, 1);
    }

    #[test]
    fn engine_replaced_content_is_not_text() {
        let html = r#"<body><p>A<span th:text="${icp}">B</span>C</p>
            <p v-text="icp">D</p><p v-html="x">E</p><p x-text="x">F</p><p ng-bind="x">G</p>
            <p data-th-utext="x">H</p><p :innerHTML="x">I</p><p v-bind:inner-html.prop="x">J</p>
            <p data-bind="visible: a, text: b">K</p><p data-bind="visible: a">L</p>
            <p [innerHTML]="x">M</p><p th:remove="all">O</p><p th:remove="tag">P</p>
            <p title="{{ x }}">{{ site }} N</p></body>"#;
        assert_eq!(text_of(html).trim(), "A C|L|P|{{ site }} N");
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
