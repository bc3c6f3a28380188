//! Server-side code left in a page's source never reaches the reader: a light pre-pass removes
//! it before the HTML parser sees the page. html5ever reads `<?php … ?>` as a bogus comment
//! that ends at the first `>` (so the rest of the code leaks out as text) and `<% … %>` as
//! text, so these spans are cut from the source first.
//!
//! Removed spans:
//! - PHP and other processing-instruction-like code: `<?php … ?>`, `<?= … ?>`, `<? … ?>`
//!   (an unclosed `<?php` runs to the end of the file, as in PHP);
//! - ASP / JSP / EJS / ERB: `<% … %>`, `<%= … %>`, `<%@ … %>`, `<%-- … --%>`;
//! - expression language (JSP EL, FreeMarker, Thymeleaf inlining): `${ … }` and `#{ … }`,
//!   with nested braces and quoted strings, on one line, at most [`MAX_EXPRESSION`] bytes;
//! - Jinja / Django / Liquid / Twig statements and comments: `{% … %}`, `{# … #}`;
//! - template comments: Blade `{{-- … --}}`, Handlebars / Mustache `{{!-- … --}}`, `{{! … }}`,
//!   Go `{{/* … */}}`;
//! - FreeMarker directives and macros: `<#…>`, `</#…>`, `<@…>`, `</@…>`, `<#-- … -->`;
//! - Velocity assignments: `#set( … )`.
//!
//! - interpolations: `{{ … }}` (Vue, Angular, Handlebars, Jinja output), on one line, at most
//!   [`MAX_EXPRESSION`] bytes: the engine replaces them with a value at render time, so a
//!   literal inside (`{{ icp || '京ICP备…' }}`) is a fallback in code, not page text. The text
//!   around them is page text.
//!
//! A span whose end is missing is left to the parser (it is not code a server ran).
//!
//! The pass is linear: it moves forward only, and each terminator search resumes where the
//! previous one for the same terminator stopped.

use std::borrow::Cow;

/// The longest `${ … }` / `#{ … }` / `#set( … )` expression removed, in bytes.
pub const MAX_EXPRESSION: usize = 4096;

/// Terminators searched for, each with its last search (start, result), so a page full of
/// unclosed openers still costs about one scan per terminator.
struct Finder<'a> {
    b: &'a [u8],
    cache: Vec<(&'static [u8], usize, Option<usize>)>,
}

impl<'a> Finder<'a> {
    fn new(b: &'a [u8]) -> Self {
        Finder {
            b,
            cache: Vec::new(),
        }
    }

    /// The first occurrence of `needle` at or after `from`. Queries for one needle come with
    /// non-decreasing `from`; a hit at or after `from` found by an earlier search is still the
    /// first one, and an earlier miss is still a miss.
    fn find(&mut self, needle: &'static [u8], from: usize) -> Option<usize> {
        let slot = self.cache.iter().position(|(n, _, _)| *n == needle);
        if let Some(i) = slot {
            let (_, searched_from, result) = self.cache[i];
            if searched_from <= from {
                match result {
                    None => return None,
                    Some(at) if at >= from => return Some(at),
                    Some(_) => {}
                }
            }
        }
        let hit = self
            .b
            .get(from..)
            .and_then(|hay| find(hay, needle))
            .map(|p| from + p);
        match slot {
            Some(i) => self.cache[i] = (needle, from, hit),
            None => self.cache.push((needle, from, hit)),
        }
        hit
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `html` without the server-side code spans listed in the module comment.
pub fn strip_server_code(html: &str) -> Cow<'_, str> {
    let b = html.as_bytes();
    let mut finder = Finder::new(b);
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    // The next `#` at or after `i` (cached: `#` is rare in pages but has two openers).
    let mut next_hash: Option<usize> = memchr::memchr(b'#', b);
    while i < b.len() {
        // Jump to the next byte that can open a span (vectorised search).
        let next3 = memchr::memchr3(b'<', b'$', b'{', &b[i..]).map(|p| i + p);
        if next_hash.is_some_and(|h| h < i) {
            next_hash = memchr::memchr(b'#', &b[i..]).map(|p| i + p);
        }
        i = match (next3, next_hash) {
            (Some(a), Some(h)) => a.min(h),
            (Some(a), None) => a,
            (None, Some(h)) => h,
            (None, None) => break,
        };
        let c = b[i];
        // Most `<` open ordinary tags: only `<?`, `<%`, `<#`, `<@` and `</` can open a span.
        if c == b'<' && !matches!(b.get(i + 1), Some(b'?' | b'%' | b'#' | b'@' | b'/')) {
            i += 1;
            continue;
        }
        if c == b'{' && !matches!(b.get(i + 1), Some(b'{' | b'%' | b'#')) {
            i += 1;
            continue;
        }
        let rest = &b[i..];
        let end = if rest.starts_with(b"<?") {
            // PHP stays in code mode to the end of the file when `?>` is missing (style
            // guides ask for that in pure-PHP files); other `<?…` is left to the parser.
            finder.find(b"?>", i + 2).map(|p| p + 2).or_else(|| {
                let php = rest.len() >= 5 && rest[2..5].eq_ignore_ascii_case(b"php")
                    || rest
                        .get(2)
                        .is_some_and(|&c| c == b'=' || c.is_ascii_whitespace());
                php.then_some(b.len())
            })
        } else if rest.starts_with(b"<%--") {
            finder.find(b"--%>", i + 4).map(|p| p + 4)
        } else if rest.starts_with(b"<%") {
            finder.find(b"%>", i + 2).map(|p| p + 2)
        } else if rest.starts_with(b"<#--") {
            finder.find(b"-->", i + 4).map(|p| p + 3)
        } else if rest.starts_with(b"<#")
            || rest.starts_with(b"</#")
            || rest.starts_with(b"<@")
            || rest.starts_with(b"</@")
        {
            directive_end(b, i)
        } else if rest.starts_with(b"{{--") || rest.starts_with(b"{{!--") {
            finder.find(b"--}}", i + 4).map(|p| p + 4)
        } else if rest.starts_with(b"{{!") {
            finder.find(b"}}", i + 3).map(|p| p + 2)
        } else if rest.starts_with(b"{{/*") {
            finder.find(b"*/}}", i + 4).map(|p| p + 4)
        } else if rest.starts_with(b"{{") {
            match interpolation_end(b, i + 2) {
                Ok(end) => Some(end),
                Err(stop) => {
                    i = stop.max(i + 1);
                    continue;
                }
            }
        } else if rest.starts_with(b"{%") {
            finder.find(b"%}", i + 2).map(|p| p + 2)
        } else if rest.starts_with(b"{#") {
            finder.find(b"#}", i + 2).map(|p| p + 2)
        } else if rest.starts_with(b"${") || rest.starts_with(b"#{") {
            match bracketed_end(b, i + 1, b'{', b'}') {
                Ok(end) => Some(end),
                Err(stop) => {
                    // Unclosed: not an expression; nothing inside it is one either.
                    i = stop.max(i + 1);
                    continue;
                }
            }
        } else if rest.starts_with(b"#set(") || rest.starts_with(b"#set (") {
            let open = if rest.starts_with(b"#set(") {
                i + 4
            } else {
                i + 5
            };
            match bracketed_end(b, open, b'(', b')') {
                Ok(end) => Some(end),
                Err(stop) => {
                    i = stop.max(i + 1);
                    continue;
                }
            }
        } else {
            None
        };
        match end {
            Some(end) if end > i && end <= b.len() => {
                let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
                // Spans start and end at ASCII bytes, so these are char boundaries.
                o.push_str(html.get(copied..i).unwrap_or(""));
                copied = end;
                i = end;
            }
            _ => i += 1,
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(html.get(copied..).unwrap_or(""));
            Cow::Owned(o)
        }
        None => Cow::Borrowed(html),
    }
}

/// The end (after `}}`) of an interpolation whose body starts at `from`; `Err(stop)` when no
/// `}}` closes it on the same line within [`MAX_EXPRESSION`] bytes, or a tag starts first.
fn interpolation_end(b: &[u8], from: usize) -> Result<usize, usize> {
    let limit = b.len().min(from.saturating_add(MAX_EXPRESSION));
    let mut quote: Option<u8> = None;
    let mut j = from;
    while j < limit {
        let x = b[j];
        if x == b'\n' || x == b'\r' {
            return Err(j);
        }
        match quote {
            Some(q) if x == q => quote = None,
            Some(_) => {}
            None if x == b'"' || x == b'\'' || x == b'`' => quote = Some(x),
            None if x == b'<' => return Err(j),
            None if x == b'}' && b.get(j + 1) == Some(&b'}') => return Ok(j + 2),
            None => {}
        }
        j += 1;
    }
    Err(j)
}

/// The end (after `>`) of a FreeMarker directive starting at `start`; quoted values may hold
/// `>`. Bounded by [`MAX_EXPRESSION`].
fn directive_end(b: &[u8], start: usize) -> Option<usize> {
    let mut quote: Option<u8> = None;
    let limit = b.len().min(start.saturating_add(MAX_EXPRESSION));
    for (j, &c) in b.iter().enumerate().take(limit).skip(start + 2) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'>' => return Some(j + 1),
            None if c == b'<' => return None,
            None => {}
        }
    }
    None
}

/// The end (after the closing bracket) of a bracketed expression whose opening bracket is at
/// `open`, with nesting and quoted strings; `Err(stop)` when it is not closed on the same
/// line within [`MAX_EXPRESSION`] bytes (`stop` = where the search gave up).
fn bracketed_end(b: &[u8], open: usize, o: u8, c: u8) -> Result<usize, usize> {
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut escaped = false;
    let limit = b.len().min(open.saturating_add(MAX_EXPRESSION));
    let mut j = open;
    while j < limit {
        let x = b[j];
        if x == b'\n' || x == b'\r' {
            return Err(j);
        }
        match quote {
            Some(_) if escaped => escaped = false,
            Some(_) if x == b'\\' => escaped = true,
            Some(q) if x == q => quote = None,
            Some(_) => {}
            None if x == b'"' || x == b'\'' => quote = Some(x),
            None if x == b'<' => return Err(j),
            None if x == o => depth += 1,
            None if x == c => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(j + 1);
                }
            }
            None => {}
        }
        j += 1;
    }
    Err(j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &str) -> String {
        strip_server_code(s).into_owned()
    }

    #[test]
    fn server_code_is_removed() {
        for (input, want) in [
            ("a<?php echo '京ICP备1号'; ?>b", "ab"),
            ("a<?= $icp ?>b<? x ?>c", "abc"),
            ("a<% out.print(\"京ICP备\") %>b<%= x %>c", "abc"),
            (
                "a<%@ page contentType=\"text/html\" %>b<%-- x %> y --%>c",
                "abc",
            ),
            ("a${'京ICP备12345678号'}b", "ab"),
            ("a${config.icp ?: '京ICP备{1}号'}b", "ab"),
            ("a#{footer.icp}b", "ab"),
            ("a{% set icp = '京ICP备' %}b{# note #}c", "abc"),
            (
                "a<#assign icp = \"京>ICP\">b</#if><@footer/>c<#-- x -->d",
                "abcd",
            ),
            ("a#set($icp = \"京ICP(备)\")b", "ab"),
            ("a<?php return ['icp' => '京ICP备1号'];\n", "a"),
            ("a<?= $icp;", "a"),
            (
                "a{{-- 京ICP备1号 --}}b{{!-- x --}}c{{! y }}d{{/* z */}}e",
                "abcde",
            ),
        ] {
            assert_eq!(strip(input), want, "{input}");
        }
    }

    #[test]
    fn ordinary_text_is_kept() {
        assert_eq!(
            strip("<p>{{ siteName }} 京ICP备12345678号</p>"),
            "<p> 京ICP备12345678号</p>",
            "the text around an interpolation stays"
        );
        assert_eq!(
            strip("<span>{{ beian || '京ICP备99999999号' }}</span>"),
            "<span></span>"
        );
        for input in [
            "<p>price $5 {a} #1 50% <b>x</b></p>",
            "a{{ unclosed\n京ICP备12345678号",
            "a${unclosed\n京ICP备12345678号",
            "a<%unclosed 京ICP备12345678号",
            "a<?unclosed 京ICP备12345678号",
            "a<?xml version='1.0' 京ICP备12345678号",
            "a${ x <b>京ICP备12345678号</b> }",
            "",
        ] {
            assert_eq!(strip(input), input, "{input}");
        }
        assert!(matches!(
            strip_server_code("<p>plain</p>"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn many_unclosed_openers_stay_fast() {
        let page = "<% ${ {% <? #{ <# {{ ".repeat(100_000);
        let out = strip_server_code(&page);
        assert!(!out.is_empty());
        let page = format!("{}%>", "<%".repeat(200_000));
        assert_eq!(strip_server_code(&page), "");
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_grows(s in "(\\PC|[<>?%${}#@]){0,80}") {
            let out = strip_server_code(&s);
            proptest::prop_assert!(out.len() <= s.len());
        }
    }
}
