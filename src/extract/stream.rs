//! The visible text of ordinary pages in one pass, without building a tree.
//!
//! Most pages are markup the HTML standard's tree construction handles in a few plain steps:
//! elements opened and closed in order, `<p>` and `<li>` left open for the next one to close,
//! raw text in `<script>` and `<style>`, a missing `<head>` or `<body>` implied. For those,
//! this module reads the page with a tokenizer of its own (the standard's tokenizer states,
//! as html5ever implements them), keeps only the stack of open elements, and feeds the same
//! [`Walker`] the tree walk feeds, element by element and text node by text node, in the
//! order the tree walk visits them.
//!
//! Tables of rows and cells are read too (implied `<tbody>` and `<tr>`, cells closed by the
//! next cell, row or table end, nested tables).
//!
//! Where a page needs more than those steps — `<select>`, `<template>`, SVG or MathML,
//! formatting elements closed out of order (the adoption agency), nested `<a>` or buttons,
//! text out of place in a table (foster parenting), captions and column groups,
//! `<textarea>`, `<plaintext>`, NUL characters, head elements after `</head>`, escaped script
//! blocks that open another `<script>`, an end of file inside a tag — [`visible_text`] gives
//! up with `None` and the caller builds the tree. Property tests hold that whenever it
//! answers, its answer is the tree walk's.

use std::borrow::Cow;

use html5ever::data::{C1_REPLACEMENTS, NAMED_ENTITIES};

use super::visible::{ElementView, VisibleText, Walker};

/// The visible text of `html` as the tree walk over html5ever's tree would give it, or `None`
/// when the page needs tree construction this reader does not do.
pub fn visible_text(html: &str) -> Option<VisibleText> {
    if memchr::memchr(0, html.as_bytes()).is_some() {
        return None;
    }
    let mut lexer = Lexer {
        s: html,
        b: html.as_bytes(),
        pos: 0,
        char_ref: false,
    };
    let mut builder = Builder::new();
    loop {
        let token = lexer.next()?;
        if matches!(token, Token::Eof) {
            builder.eof(&mut lexer)?;
            break;
        }
        builder.token(token, &mut lexer)?;
    }
    Some(builder.walker.finish())
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// A start tag: name and attributes in lower case, duplicates dropped, values decoded.
#[derive(Debug)]
struct Tag<'a> {
    name: Cow<'a, str>,
    attrs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl ElementView for Tag<'_> {
    fn name(&self) -> &str {
        &self.name
    }
    fn attrs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.attrs.iter().map(|(n, v)| (&**n, &**v))
    }
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &**v)
    }
}

#[derive(Debug)]
enum Token<'a> {
    Text(Cow<'a, str>),
    Start(Tag<'a>),
    End(Cow<'a, str>),
    Comment,
    Doctype,
    /// Markup that produces no token (`</>`).
    Nothing,
    Eof,
}

/// The standard's whitespace inside tags (`\r` is a newline before tokenizing).
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ')
}

struct Lexer<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    /// The last token was a character reference.
    char_ref: bool,
}

impl<'a> Lexer<'a> {
    /// The next token; `None` when the markup is outside what this reader handles.
    fn next(&mut self) -> Option<Token<'a>> {
        let b = self.b;
        let Some(&c) = b.get(self.pos) else {
            return Some(Token::Eof);
        };
        self.char_ref = c == b'&';
        match c {
            b'<' => self.markup(),
            b'&' => {
                let (len, decoded) = char_ref(self.s, self.pos, false)?;
                self.pos += len;
                Some(Token::Text(decoded))
            }
            b'\r' => {
                self.pos += 1;
                if b.get(self.pos) == Some(&b'\n') {
                    self.pos += 1;
                }
                Some(Token::Text(Cow::Borrowed("\n")))
            }
            _ => {
                let end = memchr::memchr3(b'<', b'&', b'\r', &b[self.pos..])
                    .map_or(b.len(), |i| self.pos + i);
                let text = self.s.get(self.pos..end)?;
                self.pos = end;
                Some(Token::Text(Cow::Borrowed(text)))
            }
        }
    }

    /// At `<`.
    fn markup(&mut self) -> Option<Token<'a>> {
        let b = self.b;
        let at = self.pos;
        match b.get(at + 1) {
            Some(c) if c.is_ascii_alphabetic() => {
                self.pos = at + 1;
                let (name, attrs) = self.tag()?;
                Some(Token::Start(Tag { name, attrs }))
            }
            Some(b'/') => match b.get(at + 2) {
                Some(c) if c.is_ascii_alphabetic() => {
                    self.pos = at + 2;
                    let (name, _) = self.tag()?;
                    Some(Token::End(name))
                }
                Some(b'>') => {
                    self.pos = at + 3;
                    Some(Token::Nothing)
                }
                Some(_) => self.bogus_comment(at + 2),
                None => None,
            },
            Some(b'!') => {
                let rest = &b[at + 2..];
                if rest.starts_with(b"--") {
                    self.comment(at + 4)
                } else if rest.len() >= 7 && rest[..7].eq_ignore_ascii_case(b"doctype") {
                    let end = memchr::memchr(b'>', &b[at..])?;
                    self.pos = at + end + 1;
                    Some(Token::Doctype)
                } else {
                    self.bogus_comment(at + 2)
                }
            }
            Some(b'?') => self.bogus_comment(at + 1),
            _ => {
                self.pos = at + 1;
                Some(Token::Text(Cow::Borrowed("<")))
            }
        }
    }

    /// A bogus comment runs to the next `>`.
    fn bogus_comment(&mut self, from: usize) -> Option<Token<'a>> {
        let end = memchr::memchr(b'>', self.b.get(from..)?)?;
        self.pos = from + end + 1;
        Some(Token::Comment)
    }

    /// After `<!--`: the comment ends at `>` or `->` right away, else at the first `-->` or
    /// `--!>`.
    fn comment(&mut self, from: usize) -> Option<Token<'a>> {
        let rest = self.b.get(from..)?;
        if rest.starts_with(b">") {
            self.pos = from + 1;
            return Some(Token::Comment);
        }
        if rest.starts_with(b"->") {
            self.pos = from + 2;
            return Some(Token::Comment);
        }
        // `--!>` is looked for only before the first `-->` (searching the rest of the page for
        // it at every comment would be quadratic on a page of comments).
        let close = memchr::memmem::find(rest, b"-->").map(|i| i + 3);
        let before_close = close.map_or(rest, |c| &rest[..c]);
        let bang = memchr::memmem::find(before_close, b"--!>").map(|i| i + 4);
        let end = match (close, bang) {
            (Some(c), Some(b)) => c.min(b),
            (Some(c), None) => c,
            (None, Some(b)) => b,
            (None, None) => return None,
        };
        self.pos = from + end;
        Some(Token::Comment)
    }

    /// A tag from its name (at `self.pos`) to its `>`: the name and the attributes.
    #[allow(clippy::type_complexity)]
    fn tag(&mut self) -> Option<(Cow<'a, str>, Vec<(Cow<'a, str>, Cow<'a, str>)>)> {
        let b = self.b;
        let start = self.pos;
        let mut i = start;
        while i < b.len() && !is_space(b[i]) && b[i] != b'/' && b[i] != b'>' {
            i += 1;
        }
        let name = lower(self.s.get(start..i)?);
        let mut attrs: Vec<(Cow<'a, str>, Cow<'a, str>)> = Vec::new();
        loop {
            // Before an attribute name.
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            match *b.get(i)? {
                b'>' => {
                    self.pos = i + 1;
                    return Some((name, attrs));
                }
                b'/' => {
                    // `/>` or a stray slash (which starts nothing).
                    i += 1;
                    continue;
                }
                b'=' | b'"' | b'\'' | b'<' => return None,
                _ => {}
            }
            let name_start = i;
            while i < b.len() && !is_space(b[i]) && !matches!(b[i], b'/' | b'>' | b'=') {
                if matches!(b[i], b'"' | b'\'' | b'<') {
                    return None;
                }
                i += 1;
            }
            let attr_name = lower(self.s.get(name_start..i)?);
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            let value: Cow<'a, str> = if b.get(i) == Some(&b'=') {
                i += 1;
                while i < b.len() && is_space(b[i]) {
                    i += 1;
                }
                match *b.get(i)? {
                    q @ (b'"' | b'\'') => {
                        let len = memchr::memchr(q, b.get(i + 1..)?)?;
                        let raw = self.s.get(i + 1..i + 1 + len)?;
                        i += len + 2;
                        attr_value(raw)?
                    }
                    b'>' => Cow::Borrowed(""),
                    _ => {
                        let v = i;
                        while i < b.len() && !is_space(b[i]) && b[i] != b'>' {
                            i += 1;
                        }
                        attr_value(self.s.get(v..i)?)?
                    }
                }
            } else {
                Cow::Borrowed("")
            };
            if !attrs.iter().any(|(n, _)| *n == attr_name) {
                attrs.push((attr_name, value));
            }
        }
    }

    /// The raw text of a `<script>`, `<style>`, `<title>`… up to its end tag, which is read
    /// too. `script`: escaped blocks (`<!--`) that open another `<script>` are not handled.
    fn raw_text(&mut self, name: &str) -> Option<&'a str> {
        let b = self.b;
        let start = self.pos;
        let mut from = start;
        loop {
            let lt = memchr::memmem::find(b.get(from..)?, b"</")? + from;
            let after = lt + 2 + name.len();
            let candidate = b.get(lt + 2..after);
            if candidate.is_some_and(|c| c.eq_ignore_ascii_case(name.as_bytes()))
                && b.get(after)
                    .is_some_and(|&c| is_space(c) || c == b'/' || c == b'>')
            {
                let text = self.s.get(start..lt)?;
                if name == "script" && script_escape_matters(text) {
                    return None;
                }
                self.pos = lt + 2;
                self.tag()?;
                return Some(text);
            }
            from = lt + 2;
        }
    }
}

/// Whether a script's text has an escaped block (`<!--`) that opens a `<script>`: the
/// standard's double-escaped state, where `</script>` does not end the script.
fn script_escape_matters(text: &str) -> bool {
    let b = text.as_bytes();
    let Some(open) = memchr::memmem::find(b, b"<!--") else {
        return false;
    };
    b[open..]
        .windows(7)
        .any(|w| w.eq_ignore_ascii_case(b"<script"))
}

/// ASCII upper case lowered, without copying when there is none.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// An attribute value with its character references decoded.
fn attr_value(raw: &str) -> Option<Cow<'_, str>> {
    if memchr::memchr2(b'&', b'\r', raw.as_bytes()).is_none() {
        return Some(Cow::Borrowed(raw));
    }
    if raw.contains('\r') {
        return None;
    }
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while let Some(amp) = memchr::memchr(b'&', raw.as_bytes().get(i..)?) {
        out.push_str(raw.get(i..i + amp)?);
        let (len, decoded) = char_ref(raw, i + amp, true)?;
        out.push_str(&decoded);
        i += amp + len;
    }
    out.push_str(raw.get(i..)?);
    Some(Cow::Owned(out))
}

/// The character reference at `s[at]` (an `&`): how many bytes it takes and what it stands
/// for (the `&` itself when it is not a reference). `in_attr`: the attribute rule for named
/// references without `;` followed by `=` or a letter or digit (left as written).
fn char_ref(s: &str, at: usize, in_attr: bool) -> Option<(usize, Cow<'static, str>)> {
    let b = s.as_bytes();
    let literal = Some((1, Cow::Borrowed("&")));
    match b.get(at + 1) {
        Some(b'#') => {
            let mut i = at + 2;
            let hex = matches!(b.get(i), Some(b'x' | b'X'));
            if hex {
                i += 1;
            }
            let digits_start = i;
            let mut n: u32 = 0;
            let mut too_big = false;
            while let Some(d) = b
                .get(i)
                .and_then(|&c| (c as char).to_digit(if hex { 16 } else { 10 }))
            {
                n = n
                    .saturating_mul(if hex { 16 } else { 10 })
                    .saturating_add(d);
                if n > 0x10FFFF {
                    too_big = true;
                }
                i += 1;
            }
            if i == digits_start {
                return literal;
            }
            if b.get(i) == Some(&b';') {
                i += 1;
            }
            let c = match n {
                _ if too_big => '\u{fffd}',
                0 | 0xD800..=0xDFFF => '\u{fffd}',
                0x80..=0x9F => match C1_REPLACEMENTS.get((n - 0x80) as usize).copied().flatten() {
                    Some(c) => c,
                    None => char::from_u32(n)?,
                },
                _ => char::from_u32(n)?,
            };
            Some((i - at, Cow::Owned(c.to_string())))
        }
        Some(c) if c.is_ascii_alphanumeric() => {
            // The longest name in the table that the text starts with.
            let mut best: Option<(usize, (u32, u32))> = None;
            let mut k = 1;
            while let Some(key) = s.get(at + 1..at + 1 + k) {
                match NAMED_ENTITIES.get(key) {
                    Some(&m) => {
                        if m.0 != 0 {
                            best = Some((k, m));
                        }
                    }
                    None => break,
                }
                k += 1;
            }
            let Some((k, (c1, c2))) = best else {
                return literal;
            };
            let ends_with_semicolon = b.get(at + k) == Some(&b';');
            let next = b.get(at + 1 + k).copied();
            if in_attr
                && !ends_with_semicolon
                && next.is_some_and(|c| c == b'=' || c.is_ascii_alphanumeric())
            {
                return literal;
            }
            let mut out = String::new();
            out.push(char::from_u32(c1)?);
            if c2 != 0 {
                out.push(char::from_u32(c2)?);
            }
            Some((1 + k, Cow::Owned(out)))
        }
        _ => literal,
    }
}

// ---------------------------------------------------------------------------------------------
// Tree construction, as far as it goes
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Initial,
    BeforeHtml,
    BeforeHead,
    InHead,
    AfterHead,
    InBody,
    /// After `</body>` or `</html>`: like "in body", except that comments go elsewhere.
    AfterBody,
    InTable,
    InTableBody,
    InRow,
    InCell,
}

struct Open<'a> {
    name: Cow<'a, str>,
    /// The walker entered it (its content is walked).
    entered: bool,
}

struct Builder<'a> {
    walker: Walker,
    stack: Vec<Open<'a>>,
    mode: Mode,
    /// Text of the text node being built (in the current node), not yet given to the walker.
    pending: String,
    /// Index in `stack` of the outermost element the walker did not enter.
    skip_from: Option<usize>,
    /// The form element pointer is set…
    form_pointer: bool,
    /// …and the form is at this index of the stack.
    form_at: Option<usize>,
    /// A newline right after `<pre>` / `<listing>` is dropped.
    ignore_lf: bool,
}

fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

fn is_formatting(name: &str) -> bool {
    matches!(
        name,
        "a" | "b"
            | "big"
            | "code"
            | "em"
            | "font"
            | "i"
            | "nobr"
            | "s"
            | "small"
            | "strike"
            | "strong"
            | "tt"
            | "u"
    )
}

/// html5ever's `special_tag` set.
fn is_special(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "applet"
            | "area"
            | "article"
            | "aside"
            | "base"
            | "basefont"
            | "bgsound"
            | "blockquote"
            | "body"
            | "br"
            | "button"
            | "caption"
            | "center"
            | "col"
            | "colgroup"
            | "dd"
            | "details"
            | "dir"
            | "div"
            | "dl"
            | "dt"
            | "embed"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "form"
            | "frame"
            | "frameset"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "head"
            | "header"
            | "hgroup"
            | "hr"
            | "html"
            | "iframe"
            | "img"
            | "input"
            | "isindex"
            | "li"
            | "link"
            | "listing"
            | "main"
            | "marquee"
            | "menu"
            | "meta"
            | "nav"
            | "noembed"
            | "noframes"
            | "noscript"
            | "object"
            | "ol"
            | "p"
            | "param"
            | "plaintext"
            | "pre"
            | "script"
            | "section"
            | "select"
            | "source"
            | "style"
            | "summary"
            | "table"
            | "tbody"
            | "td"
            | "template"
            | "textarea"
            | "tfoot"
            | "th"
            | "thead"
            | "title"
            | "tr"
            | "track"
            | "ul"
            | "wbr"
            | "xmp"
    )
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

/// html5ever's `cursory_implied_end` set.
fn is_implied_end(name: &str) -> bool {
    matches!(
        name,
        "dd" | "dt" | "li" | "option" | "optgroup" | "p" | "rb" | "rp" | "rt" | "rtc"
    )
}

/// Start tags that close an open `<p>` (in button scope) before they open.
fn closes_p(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "main"
            | "nav"
            | "ol"
            | "p"
            | "search"
            | "section"
            | "summary"
            | "ul"
            | "menu"
    )
}

/// End tags closed by "generate implied end tags, then pop until the element" when one is in
/// scope (and ignored when none is).
fn is_block_end(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "button"
            | "center"
            | "details"
            | "dialog"
            | "dir"
            | "div"
            | "dl"
            | "fieldset"
            | "figcaption"
            | "figure"
            | "footer"
            | "header"
            | "hgroup"
            | "listing"
            | "main"
            | "menu"
            | "nav"
            | "ol"
            | "pre"
            | "search"
            | "section"
            | "summary"
            | "ul"
    )
}

/// Start tags this reader leaves to the tree builder (in body).
fn needs_tree(name: &str) -> bool {
    matches!(
        name,
        "html"
            | "body"
            | "frameset"
            | "template"
            | "select"
            | "option"
            | "optgroup"
            | "textarea"
            | "plaintext"
            | "applet"
            | "marquee"
            | "object"
            | "math"
            | "svg"
            | "rb"
            | "rp"
            | "rt"
            | "rtc"
            | "frame"
    )
}

impl<'a> Builder<'a> {
    fn new() -> Builder<'a> {
        Builder {
            walker: Walker::new(),
            stack: Vec::new(),
            mode: Mode::Initial,
            pending: String::new(),
            skip_from: None,
            form_pointer: false,
            form_at: None,
            ignore_lf: false,
        }
    }

    fn current(&self) -> Option<&str> {
        self.stack.last().map(|o| &*o.name)
    }

    /// Give the text node being built to the walker.
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            if self.skip_from.is_none() {
                self.walker.push_text(&self.pending);
            }
            self.pending.clear();
        }
    }

    /// Insert an element at the current node and make it the current node. `has_code`: a
    /// script with code.
    fn open(&mut self, tag: Tag<'a>, has_code: bool) {
        self.flush();
        let entered = self.skip_from.is_none() && self.walker.element(&tag, has_code);
        if !entered && self.skip_from.is_none() {
            self.skip_from = Some(self.stack.len());
        }
        if tag.name == "form" {
            self.form_at = Some(self.stack.len());
        }
        self.stack.push(Open {
            name: tag.name,
            entered,
        });
    }

    /// An element with no content (`<br>`, `<img>`, `<meta>`, …): opened and closed.
    fn void(&mut self, tag: Tag<'a>) {
        self.open(tag, false);
        self.pop();
    }

    fn pop(&mut self) {
        self.flush();
        if let Some(o) = self.stack.pop() {
            let at = self.stack.len();
            if o.entered {
                self.walker.leave_element();
            }
            if self.skip_from == Some(at) {
                self.skip_from = None;
            }
            if self.form_at == Some(at) {
                self.form_at = None;
            }
        }
    }

    /// Pop elements until the one at `index` is popped. Popping a formatting element that is
    /// not the target leaves it in the list of active formatting elements, to be reopened:
    /// that is the tree builder's work.
    fn pop_to(&mut self, index: usize) -> Option<()> {
        while self.stack.len() > index {
            if self.stack.len() - 1 != index && is_formatting(self.current()?) {
                return None;
            }
            self.pop();
        }
        Some(())
    }

    /// Pop elements of the implied-end set other than `except`.
    fn implied_end(&mut self, except: Option<&str>) {
        while let Some(cur) = self.current() {
            if is_implied_end(cur) && Some(cur) != except {
                self.pop();
            } else {
                break;
            }
        }
    }

    /// The topmost element named `name` in scope: the search stops at `html`, `table`, `td`
    /// and `th` (the default-scope boundaries this reader lets open) and at the extra
    /// `boundaries`.
    fn in_scope(&self, name: &str, boundaries: &[&str]) -> Option<usize> {
        self.scope_search(|n| n == name, boundaries)
    }

    /// The topmost element `is` holds for, in scope (see [`Builder::in_scope`]).
    fn scope_search(&self, is: impl Fn(&str) -> bool, boundaries: &[&str]) -> Option<usize> {
        for (i, o) in self.stack.iter().enumerate().rev() {
            if is(&o.name) {
                return Some(i);
            }
            if matches!(&*o.name, "html" | "table" | "td" | "th") || boundaries.contains(&&*o.name)
            {
                return None;
            }
        }
        None
    }

    /// The topmost element named `name` in table scope (the search stops at `html` and
    /// `table`).
    fn in_table_scope(&self, name: &str) -> Option<usize> {
        for (i, o) in self.stack.iter().enumerate().rev() {
            if o.name == name {
                return Some(i);
            }
            if matches!(&*o.name, "html" | "table") {
                return None;
            }
        }
        None
    }

    /// After `</table>`: the mode the stack says ("reset the insertion mode appropriately").
    fn reset_mode(&mut self) {
        self.mode = Mode::InBody;
        for o in self.stack.iter().rev() {
            self.mode = match &*o.name {
                "td" | "th" => Mode::InCell,
                "tr" => Mode::InRow,
                "tbody" | "thead" | "tfoot" => Mode::InTableBody,
                "table" => Mode::InTable,
                "body" | "html" => Mode::InBody,
                _ => continue,
            };
            return;
        }
    }

    /// Pop to the cell (`td` or `th`) in table scope, with what it holds: formatting elements
    /// in it go with it (their entries end at the cell's marker).
    fn close_cell(&mut self) -> Option<()> {
        let at = self
            .stack
            .iter()
            .rposition(|o| matches!(&*o.name, "td" | "th"))?;
        self.close_cell_at(at);
        Some(())
    }

    /// Close the cell at `at` of the stack (see [`Builder::close_cell`]).
    fn close_cell_at(&mut self, at: usize) {
        self.implied_end(None);
        while self.stack.len() > at {
            self.pop();
        }
        self.mode = Mode::InRow;
    }

    /// "Close a p element" when one is in button scope.
    fn close_p_in_button_scope(&mut self) -> Option<()> {
        if self.in_scope("p", &["button"]).is_some() {
            self.close_p()?;
        }
        Some(())
    }

    fn close_p(&mut self) -> Option<()> {
        self.implied_end(Some("p"));
        let at = self.in_scope("p", &["button"])?;
        self.pop_to(at)
    }

    /// Characters for the current node: they join its last text node.
    fn text(&mut self, text: &str) {
        if self.skip_from.is_none() {
            self.pending.push_str(text);
        }
    }

    fn token(&mut self, token: Token<'a>, lexer: &mut Lexer<'a>) -> Option<()> {
        // html5ever clears the flag on any token, parse errors included: `</>` is one, and a
        // character reference may be one (whether it is, is left to the tree builder).
        if self.ignore_lf && lexer.char_ref {
            return None;
        }
        let token = if std::mem::take(&mut self.ignore_lf) {
            match token {
                Token::Text(t) if t.starts_with('\n') => match t {
                    Cow::Borrowed(s) => Token::Text(Cow::Borrowed(&s[1..])),
                    Cow::Owned(s) => Token::Text(Cow::Owned(s[1..].to_string())),
                },
                other => other,
            }
        } else {
            token
        };
        let mut token = token;
        loop {
            match self.step(token, lexer)? {
                Step::Done => return Some(()),
                Step::Reprocess(t) => token = t,
            }
        }
    }

    fn eof(&mut self, lexer: &mut Lexer<'a>) -> Option<()> {
        while matches!(
            self.mode,
            Mode::Initial | Mode::BeforeHtml | Mode::BeforeHead | Mode::InHead | Mode::AfterHead
        ) {
            self.step(Token::Eof, lexer)?;
        }
        while !self.stack.is_empty() {
            self.pop();
        }
        Some(())
    }

    fn implied(&mut self, name: &'static str) {
        self.open(
            Tag {
                name: Cow::Borrowed(name),
                attrs: Vec::new(),
            },
            false,
        );
    }

    fn step(&mut self, token: Token<'a>, lexer: &mut Lexer<'a>) -> Option<Step<'a>> {
        match self.mode {
            Mode::Initial | Mode::BeforeHtml => match token {
                Token::Text(t) => {
                    let rest = t.trim_start_matches(is_ws);
                    if rest.is_empty() {
                        return Some(Step::Done);
                    }
                    self.implied("html");
                    self.mode = Mode::BeforeHead;
                    Some(Step::Reprocess(Token::Text(Cow::Owned(rest.to_string()))))
                }
                Token::Comment | Token::Nothing => Some(Step::Done),
                Token::Doctype => {
                    self.mode = Mode::BeforeHtml;
                    Some(Step::Done)
                }
                Token::Start(tag) if tag.name == "html" => {
                    self.open(tag, false);
                    self.mode = Mode::BeforeHead;
                    Some(Step::Done)
                }
                Token::End(ref n)
                    if self.mode == Mode::BeforeHtml
                        && !matches!(&**n, "head" | "body" | "html" | "br") =>
                {
                    Some(Step::Done)
                }
                Token::End(ref n) if !matches!(&**n, "head" | "body" | "html" | "br") => {
                    // Initial mode: anything goes to "before html", which ignores it.
                    self.mode = Mode::BeforeHtml;
                    Some(Step::Done)
                }
                other => {
                    self.implied("html");
                    self.mode = Mode::BeforeHead;
                    Some(Step::Reprocess(other))
                }
            },
            Mode::BeforeHead => match token {
                Token::Text(t) => {
                    let rest = t.trim_start_matches(is_ws);
                    if rest.is_empty() {
                        return Some(Step::Done);
                    }
                    self.implied("head");
                    self.mode = Mode::InHead;
                    Some(Step::Reprocess(Token::Text(Cow::Owned(rest.to_string()))))
                }
                Token::Comment => {
                    self.flush();
                    Some(Step::Done)
                }
                Token::Doctype | Token::Nothing => Some(Step::Done),
                Token::Start(tag) if tag.name == "html" => None,
                Token::Start(tag) if tag.name == "head" => {
                    self.open(tag, false);
                    self.mode = Mode::InHead;
                    Some(Step::Done)
                }
                Token::End(ref n) if !matches!(&**n, "head" | "body" | "html" | "br") => {
                    Some(Step::Done)
                }
                other => {
                    self.implied("head");
                    self.mode = Mode::InHead;
                    Some(Step::Reprocess(other))
                }
            },
            Mode::InHead => match token {
                Token::Text(t) => {
                    let ws = t.len() - t.trim_start_matches(is_ws).len();
                    if ws == t.len() {
                        self.text(&t);
                        return Some(Step::Done);
                    }
                    self.text(&t[..ws]);
                    self.pop();
                    self.mode = Mode::AfterHead;
                    Some(Step::Reprocess(Token::Text(Cow::Owned(
                        t[ws..].to_string(),
                    ))))
                }
                Token::Comment => {
                    self.flush();
                    Some(Step::Done)
                }
                Token::Doctype | Token::Nothing => Some(Step::Done),
                Token::Start(tag) => match &*tag.name {
                    "html" | "template" => None,
                    "base" | "basefont" | "bgsound" | "link" | "meta" => {
                        self.void(tag);
                        Some(Step::Done)
                    }
                    "title" | "noframes" | "style" | "noscript" | "script" => {
                        self.raw_element(tag, lexer)?;
                        Some(Step::Done)
                    }
                    "head" => Some(Step::Done),
                    _ => {
                        self.pop();
                        self.mode = Mode::AfterHead;
                        Some(Step::Reprocess(Token::Start(tag)))
                    }
                },
                Token::End(n) => match &*n {
                    "head" => {
                        self.pop();
                        self.mode = Mode::AfterHead;
                        Some(Step::Done)
                    }
                    "body" | "html" | "br" => {
                        self.pop();
                        self.mode = Mode::AfterHead;
                        Some(Step::Reprocess(Token::End(n)))
                    }
                    "template" => None,
                    _ => Some(Step::Done),
                },
                Token::Eof => {
                    self.pop();
                    self.mode = Mode::AfterHead;
                    Some(Step::Reprocess(Token::Eof))
                }
            },
            Mode::AfterHead => match token {
                Token::Text(t) => {
                    let ws = t.len() - t.trim_start_matches(is_ws).len();
                    if ws == t.len() {
                        self.text(&t);
                        return Some(Step::Done);
                    }
                    self.text(&t[..ws]);
                    self.implied("body");
                    self.mode = Mode::InBody;
                    Some(Step::Reprocess(Token::Text(Cow::Owned(
                        t[ws..].to_string(),
                    ))))
                }
                Token::Comment => {
                    self.flush();
                    Some(Step::Done)
                }
                Token::Doctype | Token::Nothing => Some(Step::Done),
                Token::Start(tag) => match &*tag.name {
                    "body" => {
                        self.open(tag, false);
                        self.mode = Mode::InBody;
                        Some(Step::Done)
                    }
                    "html" | "frameset" | "base" | "basefont" | "bgsound" | "link" | "meta"
                    | "noframes" | "script" | "style" | "template" | "title" => None,
                    "head" => Some(Step::Done),
                    _ => {
                        self.implied("body");
                        self.mode = Mode::InBody;
                        Some(Step::Reprocess(Token::Start(tag)))
                    }
                },
                Token::End(n) => match &*n {
                    "body" | "html" | "br" => {
                        self.implied("body");
                        self.mode = Mode::InBody;
                        Some(Step::Reprocess(Token::End(n)))
                    }
                    "template" => None,
                    _ => Some(Step::Done),
                },
                Token::Eof => {
                    self.implied("body");
                    self.mode = Mode::InBody;
                    Some(Step::Done)
                }
            },
            Mode::InBody | Mode::AfterBody => self.in_body(token, lexer),
            Mode::InTable | Mode::InTableBody | Mode::InRow => self.in_table(token, lexer),
            Mode::InCell => self.in_cell(token, lexer),
        }
    }

    /// An element whose content is raw text (`script`, `style`, `title`, …), read to its end.
    fn raw_element(&mut self, tag: Tag<'a>, lexer: &mut Lexer<'a>) -> Option<()> {
        let content = lexer.raw_text(&tag.name)?;
        let has_code = tag.name == "script" && !content.trim().is_empty();
        // Never walked (raw-text elements are not rendered): the content is not given.
        self.open(tag, has_code);
        self.pop();
        Some(())
    }

    /// "In table", "in table body" and "in row", for tables made of rows and cells: text
    /// other than white space (foster parenting), captions, column groups, forms and inputs
    /// in them, and anything else out of place send the page to the tree.
    fn in_table(&mut self, token: Token<'a>, lexer: &mut Lexer<'a>) -> Option<Step<'a>> {
        let mode = self.mode;
        match token {
            Token::Text(t) => {
                if !t.chars().all(is_ws) {
                    return None;
                }
                self.text(&t);
            }
            Token::Comment => self.flush(),
            Token::Doctype | Token::Nothing | Token::Eof => {}
            Token::Start(tag) => match (&*tag.name, mode) {
                ("style" | "script", _) => self.raw_element(tag, lexer)?,
                ("tbody" | "thead" | "tfoot", Mode::InTable) => {
                    self.expect_current(&["table"])?;
                    self.open(tag, false);
                    self.mode = Mode::InTableBody;
                }
                ("tr" | "td" | "th", Mode::InTable) => {
                    self.expect_current(&["table"])?;
                    self.implied("tbody");
                    self.mode = Mode::InTableBody;
                    return Some(Step::Reprocess(Token::Start(tag)));
                }
                ("tr", Mode::InTableBody) => {
                    self.expect_current(&["tbody", "thead", "tfoot"])?;
                    self.open(tag, false);
                    self.mode = Mode::InRow;
                }
                ("td" | "th", Mode::InTableBody) => {
                    self.expect_current(&["tbody", "thead", "tfoot"])?;
                    self.implied("tr");
                    self.mode = Mode::InRow;
                    return Some(Step::Reprocess(Token::Start(tag)));
                }
                ("tbody" | "thead" | "tfoot", Mode::InTableBody) => {
                    self.expect_current(&["tbody", "thead", "tfoot"])?;
                    self.pop();
                    self.mode = Mode::InTable;
                    return Some(Step::Reprocess(Token::Start(tag)));
                }
                ("td" | "th", Mode::InRow) => {
                    self.expect_current(&["tr"])?;
                    self.open(tag, false);
                    self.mode = Mode::InCell;
                }
                ("tr" | "tbody" | "thead" | "tfoot", Mode::InRow) => {
                    self.expect_current(&["tr"])?;
                    self.pop();
                    self.mode = Mode::InTableBody;
                    return Some(Step::Reprocess(Token::Start(tag)));
                }
                _ => return None,
            },
            Token::End(name) => match (&*name, mode) {
                ("body" | "caption" | "col" | "colgroup" | "html" | "td" | "th", _) => {}
                ("tr", Mode::InTableBody | Mode::InTable) => {}
                ("table", Mode::InTable) => {
                    let at = self.in_table_scope("table")?;
                    self.pop_to(at)?;
                    self.reset_mode();
                }
                ("tbody" | "thead" | "tfoot", Mode::InTable) => {}
                ("tbody" | "thead" | "tfoot", Mode::InTableBody) => {
                    if self.in_table_scope(&name).is_some() {
                        self.expect_current(&[&name])?;
                        self.pop();
                        self.mode = Mode::InTable;
                    }
                }
                ("table", Mode::InTableBody) => {
                    self.expect_current(&["tbody", "thead", "tfoot"])?;
                    self.pop();
                    self.mode = Mode::InTable;
                    return Some(Step::Reprocess(Token::End(name)));
                }
                ("tr", Mode::InRow) => {
                    self.expect_current(&["tr"])?;
                    self.pop();
                    self.mode = Mode::InTableBody;
                }
                ("table", Mode::InRow) => {
                    self.expect_current(&["tr"])?;
                    self.pop();
                    self.mode = Mode::InTableBody;
                    return Some(Step::Reprocess(Token::End(name)));
                }
                ("tbody" | "thead" | "tfoot", Mode::InRow) => {
                    if self.in_table_scope(&name).is_some() {
                        self.expect_current(&["tr"])?;
                        self.pop();
                        self.mode = Mode::InTableBody;
                        return Some(Step::Reprocess(Token::End(name)));
                    }
                }
                _ => return None,
            },
        }
        Some(Step::Done)
    }

    /// "In cell": the body's rules, except what closes the cell.
    fn in_cell(&mut self, token: Token<'a>, lexer: &mut Lexer<'a>) -> Option<Step<'a>> {
        match token {
            Token::Start(tag)
                if matches!(
                    &*tag.name,
                    "caption"
                        | "col"
                        | "colgroup"
                        | "tbody"
                        | "td"
                        | "tfoot"
                        | "th"
                        | "thead"
                        | "tr"
                ) =>
            {
                self.close_cell()?;
                Some(Step::Reprocess(Token::Start(tag)))
            }
            Token::End(name) => match &*name {
                "td" | "th" => {
                    if let Some(at) = self.in_table_scope(&name) {
                        self.close_cell_at(at);
                    }
                    Some(Step::Done)
                }
                "body" | "caption" | "col" | "colgroup" | "html" => Some(Step::Done),
                "table" | "tbody" | "tfoot" | "thead" | "tr" => {
                    if self.in_table_scope(&name).is_some() {
                        self.close_cell()?;
                        return Some(Step::Reprocess(Token::End(name)));
                    }
                    Some(Step::Done)
                }
                _ => self.in_body(Token::End(name), lexer),
            },
            other => self.in_body(other, lexer),
        }
    }

    /// The current node is one of `names` (clearing the stack back to a table context would
    /// pop nothing).
    fn expect_current(&self, names: &[&str]) -> Option<()> {
        names.contains(&self.current()?).then_some(())
    }

    fn in_body(&mut self, token: Token<'a>, lexer: &mut Lexer<'a>) -> Option<Step<'a>> {
        match token {
            Token::Text(t) => {
                if self.mode == Mode::AfterBody && !t.chars().all(is_ws) {
                    self.mode = Mode::InBody;
                }
                self.text(&t);
            }
            Token::Comment => {
                // After `</body>` a comment goes to the `<html>` element or the document, not
                // the current node: the text around it stays one node.
                if self.mode != Mode::AfterBody {
                    self.flush();
                }
            }
            Token::Doctype | Token::Nothing | Token::Eof => {}
            Token::Start(mut tag) => {
                if self.mode == Mode::AfterBody {
                    self.mode = Mode::InBody;
                }
                let name: &str = &tag.name;
                if needs_tree(name) {
                    return None;
                }
                match name {
                    "head" | "caption" | "col" | "colgroup" | "tbody" | "td" | "tfoot" | "th"
                    | "thead" | "tr" => {}
                    "base" | "basefont" | "bgsound" | "link" | "meta" | "area" | "br" | "embed"
                    | "img" | "keygen" | "wbr" | "input" | "param" | "source" | "track" => {
                        self.void(tag);
                    }
                    "image" => {
                        tag.name = Cow::Borrowed("img");
                        self.void(tag);
                    }
                    "hr" => {
                        self.close_p_in_button_scope()?;
                        self.void(tag);
                    }
                    "title" | "noframes" | "style" | "script" | "noscript" | "iframe"
                    | "noembed" => self.raw_element(tag, lexer)?,
                    "xmp" => {
                        self.close_p_in_button_scope()?;
                        self.raw_element(tag, lexer)?;
                    }
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        self.close_p_in_button_scope()?;
                        if self.current().is_some_and(is_heading) {
                            self.pop();
                        }
                        self.open(tag, false);
                    }
                    "pre" | "listing" => {
                        self.close_p_in_button_scope()?;
                        self.open(tag, false);
                        self.ignore_lf = true;
                    }
                    "form" => {
                        if !self.form_pointer {
                            self.close_p_in_button_scope()?;
                            self.open(tag, false);
                            self.form_pointer = true;
                        }
                    }
                    "li" | "dd" | "dt" => {
                        let list = name == "li";
                        let mut to_close = None;
                        for (i, o) in self.stack.iter().enumerate().rev() {
                            let n: &str = &o.name;
                            if (list && n == "li") || (!list && (n == "dd" || n == "dt")) {
                                to_close = Some(i);
                                break;
                            }
                            if is_special(n) && !matches!(n, "address" | "div" | "p") {
                                break;
                            }
                        }
                        if let Some(i) = to_close {
                            let except = self.stack[i].name.clone();
                            self.implied_end(Some(&except));
                            self.pop_to(i)?;
                        }
                        self.close_p_in_button_scope()?;
                        self.open(tag, false);
                    }
                    "table" => {
                        // Whether `<table>` closes an open `<p>` depends on the quirks mode,
                        // which this reader does not work out from the doctype.
                        if self.in_scope("p", &["button"]).is_some() {
                            return None;
                        }
                        self.open(tag, false);
                        self.mode = Mode::InTable;
                    }
                    "button" => {
                        if self.in_scope("button", &[]).is_some() {
                            return None;
                        }
                        self.open(tag, false);
                    }
                    "a" | "nobr" => {
                        if self.stack.iter().any(|o| o.name == *name) {
                            return None;
                        }
                        self.open(tag, false);
                    }
                    _ => {
                        if closes_p(name) {
                            self.close_p_in_button_scope()?;
                        }
                        self.open(tag, false);
                    }
                }
            }
            Token::End(name) => {
                let name: &str = &name;
                if !matches!(name, "body" | "html") && self.mode == Mode::AfterBody {
                    self.mode = Mode::InBody;
                }
                match name {
                    "body" | "html" => self.mode = Mode::AfterBody,
                    "template" | "br" => return None,
                    "form" => {
                        self.form_pointer = false;
                        if let Some(at) = self.form_at {
                            self.implied_end(None);
                            if self.stack.len() != at + 1 {
                                return None;
                            }
                            self.pop();
                        }
                    }
                    "p" => {
                        if self.in_scope("p", &["button"]).is_none() {
                            self.implied("p");
                        }
                        self.close_p()?;
                    }
                    "li" | "dd" | "dt" => {
                        let boundaries: &[&str] = if name == "li" { &["ol", "ul"] } else { &[] };
                        if let Some(at) = self.in_scope(name, boundaries) {
                            self.implied_end(Some(name));
                            self.pop_to(at)?;
                        }
                    }
                    "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                        let at = self.scope_search(is_heading, &[]);
                        if let Some(at) = at {
                            self.implied_end(None);
                            self.pop_to(at)?;
                        }
                    }
                    "applet" | "marquee" | "object" => {}
                    _ if is_formatting(name) => {
                        // The adoption agency, where it is simple: the element is the
                        // current node, or only ordinary elements are above it.
                        if let Some(at) = self.stack.iter().rposition(|o| o.name == name) {
                            if self.stack[at + 1..]
                                .iter()
                                .any(|o| is_special(&o.name) || is_formatting(&o.name))
                            {
                                return None;
                            }
                            self.pop_to(at)?;
                        }
                    }
                    _ if is_block_end(name) => {
                        if let Some(at) = self.in_scope(name, &[]) {
                            self.implied_end(None);
                            self.pop_to(at)?;
                        }
                    }
                    _ => {
                        for i in (0..self.stack.len()).rev() {
                            let n: &str = &self.stack[i].name;
                            if n == name {
                                self.implied_end(Some(name));
                                self.pop_to(i)?;
                                break;
                            }
                            if is_special(n) {
                                break;
                            }
                        }
                    }
                }
            }
        }
        Some(Step::Done)
    }
}

enum Step<'a> {
    Done,
    Reprocess(Token<'a>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{dom, visible};

    /// What the tree walk gives for `html`.
    fn by_tree(html: &str) -> VisibleText {
        visible::visible_text(&dom::parse(html))
    }

    fn assert_same(html: &str) {
        let fast = visible_text(html);
        assert!(fast.is_some(), "the stream gave up on {html:?}");
        assert_eq!(fast, Some(by_tree(html)), "{html:?}");
    }

    /// Where the stream answers, its answer is the tree walk's.
    fn agrees(html: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        if let Some(fast) = visible_text(html) {
            proptest::prop_assert_eq!(fast, by_tree(html), "{:?}", html);
        }
        Ok(())
    }

    fn text(v: &VisibleText) -> String {
        v.text.chars().iter().map(|c| c.c).collect()
    }

    #[test]
    fn ordinary_pages_are_read_in_one_pass_as_the_tree_reads_them() {
        for html in [
            "",
            "x",
            "<!doctype html><html><head><meta charset=utf-8><title>t</title></head><body><p>a</p></body></html>",
            "<!DOCTYPE html>\r\n<html lang=\"zh-CN\">\r\n<head>\r\n<script src=a.js></script>\r\n</head>\r\n<body>\r\n<div id=footer>© 2026 <a href=\"https://beian.miit.gov.cn/\" target=_blank>京ICP备12345678号-1</a></div>\r\n</body>\r\n</html>\r\n",
            "<p>one<p>two<div>three</div></p>",
            "<ul><li>a<li>b<li><p>c<li>d</ul>",
            "<dl><dt>a<dd>b<dt>c</dl>",
            "<h1>a<h2>b</h1>c",
            "<pre>\nkeep\n</pre><listing>\r\nx</listing>",
            "<pre></>\nkept</pre>",
            "<div style='display:none'>hidden</div><span hidden>h</span>shown",
            "<b>bold <i>both</i></b> <a href=/x>link</a>",
            "<form><p>a<form>b</form>c",
            "a &amp; b &copy;2026 &notit; &#x4eac;&#20140; &#128; &#0; &nbsp;x&bogus; &",
            "<a href='?a=1&b=2&amp;c&copy=3&lang;'>q</a>",
            "<!-- c --><!--> <!---> x<!-- a -- b --!> y<? pi ?>z</ x>w",
            "<script>var a = '</scr' + 'ipt>'; if (a < b) {}</script><style>p{}</style>t",
            "<script><!-- document.write('x') //--></script>after",
            "<noscript><p>no js</p></noscript><iframe><b>x</b></iframe>",
            "<div><span>a</div>b",
            "text</body> after<!-- c --> more</html>\n<p>late",
            "<td>x</td><tr>y</tr>",
            "<title>a &amp; b</title><meta name=x><p>x",
            "<head></head>\n<body class=b>x</body>",
            "<html><p>x",
            "<DIV CLASS=Footer ID=Copy>X<BR>Y</DIV>",
            "<p>a</p></p><br/>",
            "<img src=x alt=\"a>b\"><input value=\"<p>\">t",
            "<div/>a<span/>b",
            "<button>a</button><nobr>n</nobr>",
            "<footer>a<header>b</header>c</footer>",
            "<p>a<hr>b<xmp><p></xmp>c",
            "<image src=x>i",
            "<p th:text=\"${x}\">preview</p><div v-html=x>y</div>z",
            "<table><tr><td>x</td></tr></table>",
            "<table>\n<tbody>\n<tr>\n<td class=foot>a<td>b<b>c</td><th>d</table>e",
            "<div><table><tr><td><table><tr><td>in</td></tr></table>out</td></tr></table></div>",
            "<table><thead><tr><th>h</thead><tbody><tr><td>1<tr><td>2</tbody><tfoot><tr><td>f</table>",
            "<table><script>s()</script><!-- c --><tr><td>x</td></tr></table><p>after",
            "<td>x</td></tr><table><tr><td>a</table>",
        ] {
            assert_same(html);
        }
    }

    #[test]
    fn markup_the_stream_leaves_to_the_tree() {
        for html in [
            "<b><i>x</b></i>",
            "<table>text</table>",
            "<p>a<table><tr><td>x</table>",
            "<table><caption>c</caption></table>",
            "<table><tr><td>x</td><span>y</span></tr></table>",
            "<a href=1><a href=2>x</a></a>",
            "<template>x</template>",
            "<svg><text>x</text></svg>",
            "<select><option>a</select>",
            "<p>\u{0}</p>",
            "<div title=\"x",
            "<textarea>t</textarea>",
            "<script><!--<script>x</script>y</script>z",
            "</head><script>x</script>",
            "<pre>&#10;x</pre>",
        ] {
            assert!(visible_text(html).is_none(), "{html:?}");
        }
    }

    /// The extraction fixtures and the shared corpus of real footers (when it is beside the
    /// repository): wherever the stream answers, the tree walk agrees; and it answers for
    /// most of them.
    #[test]
    fn real_pages_read_the_same_either_way() {
        let dirs = [
            concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/extract"),
            concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/footers"),
        ];
        let (mut pages, mut fast) = (0, 0);
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().and_then(|e| e.to_str()) != Some("html") {
                    continue;
                }
                let Ok(bytes) = std::fs::read(&path) else {
                    continue;
                };
                let (html, _) = crate::extract::decode::decode(&bytes, None);
                let html = crate::extract::serverside::strip_server_code(&html);
                let html =
                    crate::extract::guard::limit_nesting(&html, crate::extract::guard::MAX_DEPTH);
                pages += 1;
                if let Some(v) = visible_text(&html) {
                    fast += 1;
                    assert_eq!(v, by_tree(&html), "{}", path.display());
                }
            }
        }
        eprintln!("{fast} of {pages} pages read in one pass");
        assert!(pages >= 30 && fast * 2 >= pages, "{fast} of {pages}");
    }

    #[test]
    fn the_fleet_homepage_is_read_in_one_pass() {
        let filler: String = (0..300)
            .map(|i| format!("<p>段落 {i}：这是一个用于基准测试的页面内容。</p>\n"))
            .collect();
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>基准</title></head>\n\
             <body><header><nav>首页</nav></header><main>{filler}</main>\n\
             <footer><p>© 2026 基准 <a href=\"https://beian.miit.gov.cn/\">京ICP备12345678号-1</a></p></footer></body></html>"
        );
        assert_same(&page);
        assert!(visible_text(&page).is_some_and(|v| text(&v).ends_with("京ICP备12345678号-1")));
    }

    /// What the stream's tests add to the arena's tag soup (`dom.rs`): what pages hold and
    /// the stream reads itself (footer and engine attributes, references, comments, CR).
    const MORE_PIECES: &[&str] = &[
        "<a href='https://beian.miit.gov.cn/'>",
        "<div id=nav>",
        "<span style='display:none'>",
        "<span>",
        "<ol>",
        "</li>",
        "<dl>",
        "<dt>",
        "<dd>",
        "</dd>",
        "<h2>",
        "</h2>",
        "<br/>",
        "<img src=a>",
        "<hr>",
        "<pre>",
        "</pre>",
        "\n",
        "\r\n",
        "\r",
        "<noscript>x</noscript>",
        "<script>a()</script>",
        "<script type=application/json>{}</script>",
        "<script src=b.js></script>",
        "<style>p{}</style>",
        "<title>t</title>",
        "</head>",
        "<meta charset=utf-8>",
        "<link rel=x>",
        "<?pi?>",
        "<!-->",
        "\t",
        "ＩＣＰ",
        "&copy;",
        "&copy",
        "&nbsp;",
        "&#20140;",
        "&#x41;",
        "&#150;",
        "&notin;",
        "&noti",
        "&",
        "</>",
        "<x-y>",
        "</x-y>",
        "<footer>",
        "</footer>",
        "<header>",
        "</header>",
        "<main>",
        "</main>",
        "<section>",
        "</section>",
        "</nobr>",
        "<em>",
        "</em>",
        "<small>",
        "</small>",
        "<p th:text=x>",
        "<xmp>",
        "</xmp>",
        "<iframe>",
        "</iframe>",
        "<image>",
        "<address>",
        "</address>",
        "<center>",
        "</center>",
        "<label>",
        "</label>",
        "<input>",
        "é",
        "\u{301}",
        "<DIV>",
        "</DIV>",
        "<P CLASS=Foot>",
        "<a href=\"?a=1&b=2\">",
        "<a href='x&copy=1'>",
        "</br>",
        "<!-- a --!> b -->",
        "--!>",
        "<!---->",
        "<a title='x\r\ny'>",
        "&#x110000;",
        "&#0;",
        "&#xD800;",
        "&#99999999999;",
        "&amp",
        "&AMP;",
        "</P >",
        "<br/ >",
        "<div\tclass=a>",
        "<div class=a/>",
        "<script>a</script >",
        "<style><!--</style>",
        "<a href=x title=\"&quot;\">",
        "<span id=foot>",
        "<p class='a b copyright'>",
        "<div class=border-bottom>",
        "<span style=\"display : none\">",
        "<div v-text=x>",
        "<i18n>",
        "</i18n>",
        "<noembed>x</noembed>",
        "<listing>",
        "</listing>",
    ];

    /// The tag soup: the arena's pieces and [`MORE_PIECES`].
    fn soup() -> Vec<&'static str> {
        dom::tests::PIECES
            .iter()
            .chain(MORE_PIECES)
            .copied()
            .collect()
    }

    fn ordinary_pieces() -> Vec<&'static str> {
        soup()
            .into_iter()
            .filter(|p| {
                ![
                    "<td",
                    "<tr",
                    "<table",
                    "<textarea",
                    "<template",
                    "<svg",
                    "</br",
                    "<a ",
                ]
                .iter()
                .any(|b| p.starts_with(b))
            })
            .collect()
    }

    const TABLES: &[&str] = &[
        "<table>",
        "</table>",
        "<tbody>",
        "</tbody>",
        "<thead>",
        "</thead>",
        "<tfoot>",
        "<tr>",
        "</tr>",
        "<td>",
        "</td>",
        "<th>",
        "</th>",
        "<td class=footer>",
        " ",
        "\n",
        "x",
        "e",
        "\u{301}",
        "<b>",
        "</b>",
        "<p>",
        "</p>",
        "<div>",
        "</div>",
        "<span>",
        "</span>",
        "<!--c-->",
        "<script>s()</script>",
        "<style>a{}</style>",
        "<a href=x>",
        "</a>",
        "<br>",
        "<li>",
        "<form>",
        "</form>",
        "</body>",
        "</html>",
        "<h1>",
        "</h1>",
        "<caption>",
        "<col>",
        "<input>",
        "<table class=bottom>",
        "<td hidden>",
        "<tr style=display:none>",
    ];

    const BOUNDARIES: &[&str] = &[
        "e",
        "\u{301}",
        "<!--c-->",
        "</body>",
        "</html>",
        "<p>",
        "</p>",
        "<td>",
        "</x>",
        "<br>",
        " ",
        "<head>",
        "</head>",
        "<b>",
        "</b>",
        "<!doctype html>",
        "</>",
        "<form>",
        "</form>",
        "<li>",
        "<title>t</title>",
        "&#x301;",
        "<span>",
        "</span>",
        "<pre>",
        "\n",
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        /// Whenever the stream answers, it answers what the tree walk over html5ever's tree
        /// answers.
        #[test]
        fn the_stream_answers_what_the_tree_walk_answers(
            picks in proptest::collection::vec(proptest::sample::select(soup()), 0..50)
        ) {
            agrees(&picks.concat())?;
        }

        /// The same on markup without what always sends a page to the tree (tables, templates,
        /// SVG, `<textarea>`): longer pages that the stream answers more often.
        #[test]
        fn longer_ordinary_markup_reads_the_same(
            picks in proptest::collection::vec(proptest::sample::select(ordinary_pieces()), 0..120)
        ) {
            agrees(&picks.concat())?;
        }

        /// Tables: rows and cells opened and closed explicitly or implied, nested tables,
        /// white space between them, and what is out of place in them.
        #[test]
        fn tables_read_the_same(
            picks in proptest::collection::vec(proptest::sample::select(TABLES.to_vec()), 0..60)
        ) {
            agrees(&picks.concat())?;
        }

        /// Text node boundaries (where the walker gets one piece of text or two: NFKC
        /// composes across one and not the other), on a small vocabulary that meets them often.
        #[test]
        fn text_nodes_split_where_the_tree_splits_them(
            picks in proptest::collection::vec(proptest::sample::select(BOUNDARIES.to_vec()), 0..30)
        ) {
            agrees(&picks.concat())?;
        }

        /// Anything at all: the stream never panics, and agrees when it answers.
        #[test]
        fn any_text_is_read_safely(html in "\\PC{0,200}") {
            agrees(&html)?;
        }
    }
}
