//! A guard against pathological nesting before the HTML parser sees a page. html5ever's tree
//! builder scans the stack of open elements for many tags, so a page that opens thousands of
//! elements without closing them costs time quadratic in its size. Browsers bound the depth
//! (Blink stops nesting at 512); here start tags beyond [`MAX_DEPTH`] open elements (and the end
//! tags that balance them) are dropped, keeping all text. Ordinary pages are returned as they are.
//!
//! A tag with more than [`MAX_ATTRIBUTES`] attributes loses the ones after: the HTML
//! tokenizer checks each attribute against the tag's earlier ones for duplicates, so one tag
//! of a hundred thousand attributes took seconds (quadratic) to read.
//!
//! The scan is a light tokenizer: comments, doctypes and raw-text elements (`<script>`,
//! `<style>`, …) are skipped, quoted attribute values may hold `>`, void elements and elements
//! whose end tag is usually omitted (`<p>`, `<li>`, `<td>`, …) are not counted.

use std::borrow::Cow;

/// Open (counted) elements allowed before further start tags are dropped.
pub const MAX_DEPTH: usize = 256;

/// Attributes a tag keeps (real pages stay far below: framework components carry a few
/// dozen).
pub const MAX_ATTRIBUTES: usize = 128;

const VOID: &[&str] = &[
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
];

const RAW_TEXT: &[&str] = &[
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
];

/// Elements whose end tag is commonly omitted (the parser closes them implicitly).
const AUTO_CLOSED: &[&str] = &[
    "html", "head", "body", "p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "tbody",
    "thead", "tfoot", "colgroup", "caption", "rb", "rt", "rp", "rtc",
];

/// `html` with start tags beyond `max_depth` open elements removed (see the module comment).
pub fn limit_nesting(html: &str, max_depth: usize) -> Cow<'_, str> {
    let b = html.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0; // bytes of `html` already copied to `out`
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(rel) = memchr::memchr(b'<', &b[i..]) {
        let lt = i + rel;
        let rest = &b[lt..];
        if rest.starts_with(b"<!--") {
            i = match find(&b[lt + 2..], b"-->") {
                Some(p) => lt + 2 + p + 3,
                None => break,
            };
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
            i = match memchr::memchr(b'>', &b[lt..]) {
                Some(p) => lt + p + 1,
                None => break,
            };
            continue;
        }
        let end_tag = rest.starts_with(b"</");
        let name_start = lt + if end_tag { 2 } else { 1 };
        if !b.get(name_start).is_some_and(u8::is_ascii_alphabetic) {
            i = lt + 1;
            continue;
        }
        let mut name_end = name_start;
        while name_end < b.len()
            && !b[name_end].is_ascii_whitespace()
            && b[name_end] != b'/'
            && b[name_end] != b'>'
        {
            name_end += 1;
        }
        // Lower-cased on the stack: every name the lists below hold is shorter than the
        // buffer, so a longer name is simply another element ("").
        let mut lower = [0u8; 16];
        let raw = &b[name_start..name_end];
        let name = match lower.get_mut(..raw.len()) {
            Some(buf) => {
                for (d, s) in buf.iter_mut().zip(raw) {
                    *d = s.to_ascii_lowercase();
                }
                std::str::from_utf8(buf).unwrap_or("")
            }
            None => "",
        };
        let (tag_end, self_closing, cut) = match tag_end(b, name_end) {
            Some(t) => t,
            None => break,
        };
        i = tag_end;
        if let Some(cut) = cut {
            // Too many attributes: the tag ends before the first one over the limit.
            let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
            o.push_str(&html[copied..cut]);
            o.push('>');
            copied = tag_end;
        }
        if !counted(name) {
            if !end_tag && RAW_TEXT.contains(&name) {
                i = skip_raw_text(b, tag_end, name.as_bytes());
            } else if !end_tag && name == "plaintext" {
                break;
            }
            continue;
        }
        let drop = if end_tag {
            let over = depth > max_depth;
            depth = depth.saturating_sub(1);
            over
        } else if self_closing {
            false
        } else {
            depth += 1;
            depth > max_depth
        };
        if drop {
            let o = out.get_or_insert_with(|| String::with_capacity(html.len()));
            o.push_str(&html[copied..lt]);
            copied = tag_end;
        }
    }
    match out {
        Some(mut o) => {
            o.push_str(&html[copied..]);
            Cow::Owned(o)
        }
        None => Cow::Borrowed(html),
    }
}

fn counted(name: &str) -> bool {
    !VOID.contains(&name)
        && !RAW_TEXT.contains(&name)
        && !AUTO_CLOSED.contains(&name)
        && name != "plaintext"
}

/// The index after the `>` closing a tag whose attributes start at `from`, whether the tag
/// ends with `/>`, and where the first attribute over [`MAX_ATTRIBUTES`] starts, if there is
/// one. Quoted attribute values may contain `>`.
fn tag_end(b: &[u8], from: usize) -> Option<(usize, bool, Option<usize>)> {
    let mut i = from;
    let mut quote: Option<u8> = None;
    let mut prev = 0u8;
    // After white space or a closing quote: a new attribute may start here.
    let mut boundary = true;
    let mut attributes = 0usize;
    let mut cut = None;
    while i < b.len() {
        let c = b[i];
        let mut closed = false;
        match quote {
            Some(q) if c == q => {
                quote = None;
                closed = true;
            }
            Some(_) => {}
            // Quotes only open a value right after `=` (ignoring spaces).
            None if (c == b'"' || c == b'\'') && prev == b'=' => quote = Some(c),
            None if c == b'>' => return Some((i + 1, prev == b'/', cut)),
            None if boundary
                && !c.is_ascii_whitespace()
                && !matches!(c, b'=' | b'/')
                && prev != b'=' =>
            {
                attributes += 1;
                if attributes > MAX_ATTRIBUTES && cut.is_none() {
                    cut = Some(i);
                }
            }
            None => {}
        }
        if !c.is_ascii_whitespace() {
            prev = c;
        }
        boundary = quote.is_none() && (c.is_ascii_whitespace() || closed);
        i += 1;
    }
    None
}

/// The index of the `<` of `</name` (case-insensitive) at or after `from`, or the end.
fn skip_raw_text(b: &[u8], from: usize, name: &[u8]) -> usize {
    let mut i = from;
    while let Some(rel) = find(&b[i..], b"</") {
        let at = i + rel;
        let n = &b[(at + 2).min(b.len())..];
        if n.len() >= name.len() && n[..name.len()].eq_ignore_ascii_case(name) {
            return at;
        }
        i = at + 2;
    }
    b.len()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if hay.len() < needle.len() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Tag names are matched without regard to case (lower-cased on the stack, longer
        /// names are other elements): a page cut with its tag names upper-cased is the page
        /// cut as it is, upper-cased. Never panics on any text.
        #[test]
        fn case_does_not_change_the_cut(
            tags in proptest::collection::vec(
                "(<div>|</div>|<p>|<br>|<Script>x<div></script>|<textarea><div></TEXTAREA>|<averyveryverylongelementname>|</averyveryverylongelementname>|<!-- <div> -->|text|<)",
                0..40,
            ),
            depth in 0usize..6,
        ) {
            let html: String = tags.concat();
            let upper = html.to_ascii_uppercase();
            let cut = limit_nesting(&html, depth).to_ascii_uppercase();
            proptest::prop_assert_eq!(limit_nesting(&upper, depth).into_owned(), cut);
        }
    }

    #[test]
    fn ordinary_pages_are_untouched() {
        let html = "<html><body><div class=a><p>x<p>y<ul><li>1<li>2</ul><br><img src=a>\
                    <script>if (a<b) { '<div>' }</script><!-- <div> --></div></body></html>";
        assert!(matches!(limit_nesting(html, 2), Cow::Borrowed(_)));
    }

    #[test]
    fn deep_nesting_is_cut_text_kept() {
        let html = format!("{}text{}", "<div>".repeat(10), "</div>".repeat(10));
        let out = limit_nesting(&html, 3);
        assert_eq!(
            out,
            format!("{}text{}", "<div>".repeat(3), "</div>".repeat(3))
        );
    }

    #[test]
    fn quoted_gt_and_self_closing() {
        let html = "<span title='a>b'><svg><path d='M0'/><path/></svg></span>";
        assert!(matches!(limit_nesting(html, 2), Cow::Borrowed(_)));
    }

    #[test]
    fn a_tag_keeps_its_first_attributes() {
        let many: String = (0..MAX_ATTRIBUTES + 50)
            .map(|i| format!(" a{i}='x y>'"))
            .collect();
        let html = format!("<div{many}>text</div><p class=b id=c>d</p>");
        let out = limit_nesting(&html, MAX_DEPTH);
        let kept: String = (0..MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}='x y>'"))
            .collect();
        assert_eq!(out, format!("<div{kept} >text</div><p class=b id=c>d</p>"));
        // At the limit, nothing changes (unquoted values, `a="1"b="2"`, bare names).
        let at: String = (0..MAX_ATTRIBUTES / 2)
            .map(|i| format!(" a{i}=v b{i}=\"w\""))
            .collect();
        let html = format!("<div{at}/>x");
        assert!(matches!(limit_nesting(&html, MAX_DEPTH), Cow::Borrowed(_)));
        let html = format!("<div{}>x", " c=\"1\"d=\"2\"".repeat(MAX_ATTRIBUTES / 2));
        assert!(matches!(limit_nesting(&html, MAX_DEPTH), Cow::Borrowed(_)));
    }

    #[test]
    fn truncated_input() {
        for html in ["<div", "<!--", "<div title='", "<script>", "</", "<", "<!"] {
            let _ = limit_nesting(html, 0);
        }
        assert_eq!(limit_nesting("<b><i>x", 1), "<b>x");
    }
}
