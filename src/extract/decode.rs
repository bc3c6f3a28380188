//! Charset detection and decoding of fetched page bytes, as a browser does it: a byte-order
//! mark wins, then the `charset` parameter of the Content-Type header, then a `<meta charset>` /
//! `<meta http-equiv="Content-Type">` found by a prescan of the first bytes. A page that
//! declares nothing is guessed from its bytes with `chardetng` (Firefox's detector), UTF-8
//! allowed: GBK / GB18030 pages without a declaration are common. Plain ASCII is UTF-8.

use std::borrow::Cow;

use chardetng::{EncodingDetector, Iso2022JpDetection, Utf8Detection};
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// How many leading bytes the `<meta>` prescan looks at.
pub const PRESCAN_BYTES: usize = 4096;

/// How many bytes (at least, once non-ASCII bytes have been seen) the detector reads.
pub const DETECT_BYTES: usize = 64 * 1024;

/// Where the charset came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharsetSource {
    Bom,
    Header,
    Meta,
    /// Guessed from the bytes (no BOM, header or `<meta>` charset).
    Detected,
    /// Nothing declared and nothing to guess from (ASCII only): UTF-8.
    Default,
}

/// The encoding to decode `bytes` with, and where it came from.
pub fn detect(bytes: &[u8], content_type: Option<&str>) -> (&'static Encoding, CharsetSource) {
    if let Some((enc, _)) = Encoding::for_bom(bytes) {
        return (enc, CharsetSource::Bom);
    }
    if let Some(enc) = content_type.and_then(header_charset) {
        return (enc, CharsetSource::Header);
    }
    if let Some(enc) = prescan_meta(&bytes[..bytes.len().min(PRESCAN_BYTES)]) {
        return (enc, CharsetSource::Meta);
    }
    match guess(bytes) {
        Some(enc) => (enc, CharsetSource::Detected),
        None => (UTF_8, CharsetSource::Default),
    }
}

/// The encoding of undeclared `bytes`: `None` for ASCII only; UTF-8 when the bytes are UTF-8
/// (a sequence cut off at the very end — a body cut at the size cap — is allowed, and so are
/// a few stray bytes in a page whose non-ASCII text is overwhelmingly valid UTF-8, see
/// [`mostly_utf8`]); otherwise chardetng's guess (no TLD hint, UTF-8 allowed) from the
/// first [`DETECT_BYTES`], read on until non-ASCII bytes appear.
pub fn guess(bytes: &[u8]) -> Option<&'static Encoding> {
    let first_non_ascii = bytes.iter().position(|b| !b.is_ascii())?;
    match std::str::from_utf8(bytes) {
        Ok(_) => return Some(UTF_8),
        Err(e) if e.error_len().is_none() => return Some(UTF_8),
        Err(_) => {}
    }
    if mostly_utf8(bytes) {
        return Some(UTF_8);
    }
    let mut detector = EncodingDetector::new(Iso2022JpDetection::Deny);
    // Skip the ASCII head (scripts, styles) except a little context, then read a bounded
    // window; `last` only when the window reaches the end of the page.
    let from = first_non_ascii.saturating_sub(1024);
    let to = bytes.len().min(from.saturating_add(DETECT_BYTES));
    let _ = detector.feed(&bytes[from..to], to == bytes.len());
    Some(detector.guess(None, Utf8Detection::Allow))
}

/// Whether non-ASCII text in `bytes` is overwhelmingly valid UTF-8: at least 16 valid
/// multi-byte characters for every invalid sequence (legacy Chinese encodings produce an
/// invalid sequence every few characters when read as UTF-8).
pub fn mostly_utf8(bytes: &[u8]) -> bool {
    let mut valid = 0usize;
    let mut invalid = 0usize;
    let mut rest = bytes;
    loop {
        let (good, next) = match std::str::from_utf8(rest) {
            Ok(s) => (s, None),
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                let skip = e.error_len().unwrap_or(bad.len()).max(1);
                (
                    std::str::from_utf8(good).unwrap_or_default(),
                    Some(&bad[skip.min(bad.len())..]),
                )
            }
        };
        valid += good.chars().filter(|c| !c.is_ascii()).count();
        match next {
            Some(r) => {
                invalid += 1;
                rest = r;
            }
            None => break,
        }
    }
    valid >= 16 * invalid.max(1)
}

/// Decode `bytes` (see [`detect`]); malformed sequences become U+FFFD. A BOM is removed.
pub fn decode<'a>(
    bytes: &'a [u8],
    content_type: Option<&str>,
) -> (Cow<'a, str>, &'static Encoding) {
    let (enc, source) = detect(bytes, content_type);
    let body = match (source, Encoding::for_bom(bytes)) {
        (CharsetSource::Bom, Some((_, bom_len))) => &bytes[bom_len..],
        _ => bytes,
    };
    let (text, _had_errors) = enc.decode_without_bom_handling(body);
    (text, enc)
}

/// The encoding named by the `charset` parameter of a Content-Type header value.
pub fn header_charset(content_type: &str) -> Option<&'static Encoding> {
    let label = charset_param(content_type.as_bytes())?;
    Encoding::for_label(label)
}

/// The value of a `charset=` parameter (quotes removed) in a Content-Type-like value.
fn charset_param(value: &[u8]) -> Option<&[u8]> {
    let lower: Vec<u8> = value.iter().map(u8::to_ascii_lowercase).collect();
    let mut from = 0;
    while let Some(rel) = find(&lower[from..], b"charset") {
        let mut i = from + rel + b"charset".len();
        while i < value.len() && value[i].is_ascii_whitespace() {
            i += 1;
        }
        if value.get(i) != Some(&b'=') {
            from = i;
            continue;
        }
        i += 1;
        while i < value.len() && value[i].is_ascii_whitespace() {
            i += 1;
        }
        let (start, end) = match value.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                let start = i + 1;
                let end = value[start..]
                    .iter()
                    .position(|&b| b == q)
                    .map_or(value.len(), |p| start + p);
                (start, end)
            }
            _ => {
                let end = value[i..]
                    .iter()
                    .position(|&b| b == b';' || b.is_ascii_whitespace() || b == b'"' || b == b'\'')
                    .map_or(value.len(), |p| i + p);
                (i, end)
            }
        };
        if start < end {
            return Some(&value[start..end]);
        }
        from = i;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn starts_with_ci(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// The WHATWG "prescan a byte stream to determine its encoding", simplified: comments are
/// skipped, `<meta>` attributes are parsed (quoted or not), other tags are skipped whole.
/// UTF-16 labels mean UTF-8 here, and `x-user-defined` means windows-1252, as in browsers.
pub fn prescan_meta(head: &[u8]) -> Option<&'static Encoding> {
    let mut i = 0;
    while i < head.len() {
        let rest = &head[i..];
        if rest.starts_with(b"<!--") {
            i = match find(&rest[4..], b"-->") {
                Some(p) => i + 4 + p + 3,
                None => return None,
            };
            continue;
        }
        if starts_with_ci(rest, b"<meta")
            && rest
                .get(5)
                .is_some_and(|&b| b.is_ascii_whitespace() || b == b'/')
        {
            let (attrs, next) = parse_attributes(head, i + 5);
            i = next;
            if let Some(enc) = meta_encoding(&attrs) {
                return Some(enc);
            }
            continue;
        }
        if rest.first() == Some(&b'<')
            && (rest.get(1).is_some_and(u8::is_ascii_alphabetic)
                || (rest.get(1) == Some(&b'/') && rest.get(2).is_some_and(u8::is_ascii_alphabetic)))
        {
            // Skip the tag name, then its attributes (quoted values may hold `>`).
            let mut j = i + 1;
            while j < head.len() && !head[j].is_ascii_whitespace() && head[j] != b'>' {
                j += 1;
            }
            let (_, next) = parse_attributes(head, j);
            i = next;
            continue;
        }
        if rest.starts_with(b"<!") || rest.starts_with(b"</") || rest.starts_with(b"<?") {
            i = match rest.iter().position(|&b| b == b'>') {
                Some(p) => i + p + 1,
                None => return None,
            };
            continue;
        }
        i += 1;
    }
    None
}

/// Parse attributes from `start` up to the closing `>`; returns (name, value) pairs with
/// lowercase names, and the index after the tag.
/// One parsed attribute: lowercase name and raw value.
type Attribute = (Vec<u8>, Vec<u8>);

fn parse_attributes(b: &[u8], start: usize) -> (Vec<Attribute>, usize) {
    let mut attrs = Vec::new();
    let mut i = start;
    loop {
        while i < b.len() && (b[i].is_ascii_whitespace() || b[i] == b'/') {
            i += 1;
        }
        if i >= b.len() {
            return (attrs, i);
        }
        if b[i] == b'>' {
            return (attrs, i + 1);
        }
        let name_start = i;
        while i < b.len()
            && !b[i].is_ascii_whitespace()
            && b[i] != b'='
            && b[i] != b'>'
            && (b[i] != b'/' || i == name_start)
        {
            i += 1;
        }
        let name = b[name_start..i].to_ascii_lowercase();
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        if i < b.len() && b[i] == b'=' {
            i += 1;
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            match b.get(i) {
                Some(&q @ (b'"' | b'\'')) => {
                    i += 1;
                    let vs = i;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                    value = b[vs..i].to_vec();
                    i = (i + 1).min(b.len());
                }
                _ => {
                    let vs = i;
                    while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'>' {
                        i += 1;
                    }
                    value = b[vs..i].to_vec();
                }
            }
        }
        if name.is_empty() && value.is_empty() && i == name_start {
            // Guarantee progress on unexpected bytes.
            i += 1;
        }
        attrs.push((name, value));
    }
}

fn meta_encoding(attrs: &[Attribute]) -> Option<&'static Encoding> {
    let get = |n: &[u8]| {
        attrs
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.as_slice())
    };
    let label = if let Some(cs) = get(b"charset") {
        Some(cs)
    } else if get(b"http-equiv")
        .is_some_and(|v| v.trim_ascii().eq_ignore_ascii_case(b"content-type"))
    {
        get(b"content").and_then(charset_param)
    } else {
        None
    }?;
    let enc = Encoding::for_label(label.trim_ascii())?;
    if enc == encoding_rs::UTF_16BE || enc == encoding_rs::UTF_16LE {
        return Some(UTF_8);
    }
    if enc == encoding_rs::X_USER_DEFINED {
        return Some(WINDOWS_1252);
    }
    Some(enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bom_then_header_then_meta_then_default() {
        let gbk_meta = b"<html><head><meta charset=\"gbk\"></head>";
        assert_eq!(detect(gbk_meta, None).0, encoding_rs::GBK);
        assert_eq!(detect(gbk_meta, None).1, CharsetSource::Meta);
        assert_eq!(
            detect(gbk_meta, Some("text/html; charset=Big5")).0,
            encoding_rs::BIG5
        );
        let bom: Vec<u8> = [&[0xEF, 0xBB, 0xBF][..], gbk_meta].concat();
        assert_eq!(detect(&bom, Some("text/html; charset=gbk")).0, UTF_8);
        assert_eq!(detect(b"<p>hi</p>", None), (UTF_8, CharsetSource::Default));
    }

    #[test]
    fn undeclared_pages_are_detected() {
        let text = "<html><body><p>欢迎访问本公司网站，我们提供专业的技术服务与产品支持。</p>\
                    <footer>粤ICP备12345678号 版权所有</footer></body></html>";
        let (gbk, _, _) = encoding_rs::GBK.encode(text);
        assert_eq!(
            detect(&gbk, None),
            (encoding_rs::GBK, CharsetSource::Detected)
        );
        let (gb18030, _, _) = encoding_rs::GB18030.encode(text);
        let (decoded, _) = decode(&gb18030, None);
        assert!(decoded.contains("粤ICP备12345678号"));
        assert_eq!(
            detect(text.as_bytes(), None),
            (UTF_8, CharsetSource::Detected)
        );
        // Cut in the middle of a character (a capped body): still UTF-8.
        let cut = &text.as_bytes()[..text.len() - 1 - "</body></html>".len()];
        assert_eq!(detect(cut, None).0, UTF_8);
        // A stray byte in a UTF-8 page does not turn it into something else.
        let mut stray = text.as_bytes().to_vec();
        stray.extend_from_slice(&[0xFF]);
        stray.extend_from_slice(text.as_bytes());
        assert_eq!(detect(&stray, None).0, UTF_8);
        // A long ASCII head before the text.
        let mut long = b"<script>".to_vec();
        long.extend(std::iter::repeat_n(b'x', 200_000));
        long.extend_from_slice(b"</script>");
        long.extend_from_slice(&gbk);
        assert_eq!(detect(&long, None).0, encoding_rs::GBK);
    }

    #[test]
    fn http_equiv_and_labels() {
        let page = b"<!-- <meta charset=big5> --><META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=gb2312'>";
        assert_eq!(detect(page, None).0, encoding_rs::GBK);
        let page = b"<meta content=\"text/html;charset=GB18030\" http-equiv=\"content-type\" />";
        assert_eq!(detect(page, None).0, encoding_rs::GB18030);
        assert_eq!(detect(b"<meta charset=utf-16>", None).0, UTF_8);
        assert_eq!(detect(b"<meta charset=nonsense>", None).0, UTF_8);
        assert_eq!(
            detect(b"<div title='<meta charset=gbk>'>", None).0,
            UTF_8,
            "a meta inside an attribute value is not a meta"
        );
    }

    #[test]
    fn header_charset_parsing() {
        assert_eq!(
            header_charset("text/html;charset=\"gbk\""),
            Some(encoding_rs::GBK)
        );
        assert_eq!(header_charset("text/html; Charset = utf-8"), Some(UTF_8));
        assert_eq!(header_charset("text/html"), None);
        assert_eq!(header_charset("text/html; charset="), None);
    }

    #[test]
    fn decodes_gbk_and_strips_bom() {
        let (gbk, _, _) = encoding_rs::GBK.encode("<meta charset=gbk><p>京ICP备</p>");
        let (text, enc) = decode(&gbk, None);
        assert_eq!(enc, encoding_rs::GBK);
        assert!(text.contains("京ICP备"));
        let (text, _) = decode("\u{feff}<p>x</p>".as_bytes(), None);
        assert_eq!(text, "<p>x</p>");
    }
}
