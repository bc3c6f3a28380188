//! Footer extraction against labelled pages: every label of the shared synthetic corpus
//! (`../shared/corpus/footers/labels.tsv`) and the hand-written regression pages in
//! `tests/data/extract/` (`expected.tsv`), plus robustness properties (no panics on arbitrary
//! input, a 2 MiB page, deep nesting).

use std::fs;
use std::path::{Path, PathBuf};

use beian::extract::{extract_document, extract_html, Document, IcpMention, Via};
use proptest::prelude::*;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus/footers");
const REGRESSION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/extract");

/// What a label row expects for one page.
#[derive(Debug, PartialEq, Eq)]
struct Expected {
    icp: Vec<String>,
    licences: Vec<String>,
    psb: Vec<String>,
    linked: Vec<bool>,
    link_host: Vec<Option<String>>,
    in_footer: Vec<bool>,
}

fn list(cell: &str) -> Vec<String> {
    if cell.is_empty() {
        Vec::new()
    } else {
        cell.split('|').map(str::to_string).collect()
    }
}

/// Per-ICP columns: one value per ICP number, so `""` with one number means one empty value.
fn per_icp(cell: &str, n: usize) -> Vec<String> {
    if n == 0 {
        assert!(
            cell.is_empty(),
            "values {cell:?} for a page without ICP numbers"
        );
        return Vec::new();
    }
    cell.split('|').map(str::to_string).collect()
}

fn yes_no(v: &str) -> bool {
    match v {
        "yes" => true,
        "no" => false,
        other => panic!("not yes/no: {other:?}"),
    }
}

fn expected(
    icp: &str,
    licences: &str,
    psb: &str,
    linked: &str,
    host: &str,
    foot: &str,
) -> Expected {
    let icp = list(icp);
    let n = icp.len();
    Expected {
        licences: list(licences),
        psb: list(psb),
        linked: per_icp(linked, n).iter().map(|v| yes_no(v)).collect(),
        link_host: per_icp(host, n)
            .into_iter()
            .map(|h| (!h.is_empty()).then_some(h))
            .collect(),
        in_footer: per_icp(foot, n).iter().map(|v| yes_no(v)).collect(),
        icp,
    }
}

fn got(doc: &Document) -> Expected {
    got_where(doc, |_| true)
}

/// What was extracted, keeping only the ICP numbers for which `keep` holds.
fn got_where(doc: &Document, keep: impl Fn(&IcpMention) -> bool) -> Expected {
    let e = &doc.extraction;
    let icp: Vec<&IcpMention> = e.icp.iter().filter(|m| keep(m)).collect();
    Expected {
        icp: icp.iter().map(|m| m.number.to_string()).collect(),
        licences: e.licences.iter().map(|l| l.to_string()).collect(),
        psb: e.psb.iter().map(|p| p.to_string()).collect(),
        linked: icp.iter().map(|m| m.linked).collect(),
        link_host: icp.iter().map(|m| m.link_host.clone()).collect(),
        in_footer: icp.iter().map(|m| m.in_footer).collect(),
    }
}

/// The charset name a page's `encoding` label decodes as.
fn charset_for_label(label: &str) -> &str {
    match label {
        "utf-8" | "utf-8-bom" => "utf-8",
        "gbk" | "gb2312" => "gbk",
        other => other,
    }
}

fn read_rows(path: &Path) -> Vec<Vec<String>> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let width = header.split('\t').count();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cells: Vec<String> = l.split('\t').map(str::to_string).collect();
            assert_eq!(cells.len(), width, "{}: bad row {l:?}", path.display());
            cells
        })
        .collect()
}

#[test]
fn agrees_with_every_corpus_label() {
    // `BEIAN_FOOTER_CORPUS` points elsewhere (e.g. from a git worktree); by default the
    // corpus sits next to the repository.
    let dir = std::env::var_os("BEIAN_FOOTER_CORPUS")
        .map_or_else(|| PathBuf::from(CORPUS), PathBuf::from);
    assert!(
        dir.join("labels.tsv").is_file(),
        "the footer corpus is missing: expected {}/labels.tsv (the shared corpus lives next to \
         the repository, in ../shared/corpus/footers)",
        dir.display()
    );
    let rows = read_rows(&dir.join("labels.tsv"));
    assert!(rows.len() >= 80, "only {} labelled pages", rows.len());
    let mut failures = Vec::new();
    for r in &rows {
        // id file encoding icp licences psb icp_linked link_host in_footer notes
        let bytes = fs::read(dir.join(&r[1])).unwrap_or_else(|e| panic!("{}: {e}", r[1]));
        let doc = extract_document(&bytes, None);
        let want = expected(&r[3], &r[4], &r[5], &r[6], &r[7], &r[8]);
        // Every number the extractor reports. The corpus's `<template>` pages (tagged
        // `hid-template`) hold an unused legacy template beside a footer shown in ordinary
        // text: template-only numbers are not reported on such pages.
        let have = got_where(&doc, |_| true);
        if have != want {
            failures.push(format!(
                "{} ({}):\n  want {want:?}\n  got  {have:?}",
                r[1], r[9]
            ));
        }
        let tagged = r[9].split([' ', ';']).any(|t| t == "hid-template");
        for m in &doc.extraction.icp {
            if m.via != Via::Text && !tagged {
                failures.push(format!("{}: {} via {:?}", r[1], m.number, m.via));
            }
        }
        if doc.extraction.facts.challenge.is_some() {
            failures.push(format!(
                "{}: an ordinary page taken for a challenge ({:?})",
                r[1], doc.extraction.facts.challenge
            ));
        }
        if doc.charset != charset_for_label(&r[2]) {
            failures.push(format!("{}: charset {} for {}", r[1], doc.charset, r[2]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn regression_pages() {
    let dir = PathBuf::from(REGRESSION);
    let rows = read_rows(&dir.join("expected.tsv"));
    assert!(rows.len() >= 20);
    let mut failures = Vec::new();
    for r in &rows {
        // file content_type charset icp licences psb icp_linked link_host in_footer notes via
        // challenge. `via`: one value per ICP number (`text` or `template`); an empty cell means
        // all `text`. `challenge`: the challenge marker's name, empty for an ordinary page.
        let bytes = fs::read(dir.join(&r[0])).unwrap_or_else(|e| panic!("{}: {e}", r[0]));
        let content_type = (!r[1].is_empty()).then_some(r[1].as_str());
        let doc = extract_document(&bytes, content_type);
        let want = expected(&r[3], &r[4], &r[5], &r[6], &r[7], &r[8]);
        let have = got(&doc);
        if have != want {
            failures.push(format!(
                "{} ({}):\n  want {want:?}\n  got  {have:?}",
                r[0], r[9]
            ));
        }
        let want_via: Vec<String> = if r[10].is_empty() {
            vec!["text".to_string(); doc.extraction.icp.len()]
        } else {
            r[10].split('|').map(str::to_string).collect()
        };
        let have_via: Vec<String> = doc
            .extraction
            .icp
            .iter()
            .map(|m| m.via.as_str().to_string())
            .collect();
        if have_via != want_via {
            failures.push(format!("{}: via {have_via:?} want {want_via:?}", r[0]));
        }
        let want_challenge = (!r[11].is_empty()).then(|| r[11].clone());
        if doc.extraction.facts.challenge != want_challenge {
            failures.push(format!(
                "{}: challenge {:?} want {want_challenge:?}",
                r[0], doc.extraction.facts.challenge
            ));
        }
        if doc.charset != r[2] {
            failures.push(format!("{}: charset {} want {}", r[0], doc.charset, r[2]));
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_regression_page_is_listed() {
    let rows = read_rows(&Path::new(REGRESSION).join("expected.tsv"));
    let listed: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    for entry in fs::read_dir(REGRESSION).expect("regression dir") {
        let name = entry
            .expect("dir entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if name.ends_with(".html") {
            assert!(
                listed.contains(&name.as_str()),
                "{name} has no row in expected.tsv"
            );
        }
    }
}

#[test]
fn undeclared_charset_is_detected_but_a_declared_one_wins() {
    let bytes = fs::read(Path::new(REGRESSION).join("header-gbk.html")).expect("fixture");
    // No header, no meta: the bytes are recognised as GBK.
    let detected = extract_document(&bytes, None);
    assert_eq!(detected.charset, "gbk");
    assert_eq!(
        detected.extraction.icp[0].number.to_string(),
        "新ICP备2021008156号-1"
    );
    // A declared charset is obeyed, even when wrong (as browsers do).
    let declared = extract_document(&bytes, Some("text/html; charset=utf-8"));
    assert_eq!(declared.charset, "utf-8");
    assert!(
        declared.extraction.icp.is_empty(),
        "GBK bytes read as UTF-8 hold no number"
    );
}

/// Page facts: scripts in `<head>` count, scripts inside `<template>` do not; template text
/// is flagged but not counted in `text_chars`.
#[test]
fn page_facts() {
    let read = |name: &str| {
        let bytes = fs::read(Path::new(REGRESSION).join(name)).expect("fixture");
        extract_document(&bytes, None).extraction
    };
    let vue = read("template-vue.html");
    assert_eq!(vue.facts.scripts, 1);
    assert!(vue.facts.template_text);
    assert!(vue.facts.text_chars < 60, "{}", vue.facts.text_chars);
    assert!(
        vue.needs_render(),
        "numbers only in templates, and a script"
    );
    let legacy = read("template-legacy.html");
    assert!(!legacy.needs_render(), "a number in ordinary text");
    let component = read("template-component.html");
    assert_eq!(component.facts.scripts, 0);
    assert!(component.facts.template_text);
    assert!(component.needs_render(), "numbers only in templates");
    let plain = read("plain.html");
    assert!(!plain.facts.template_text);
    assert!(plain.facts.challenge.is_none());
}

/// A 2 MiB page of filler with the number at the end: extraction is correct (and, being
/// linear, quick; the time is not asserted).
#[test]
fn large_page() {
    let mut html = String::from("<!DOCTYPE html><html><head><meta charset=utf-8></head><body>");
    let para =
        "<div class=\"item\"><p>京ICP备 正文 <span>内容</span> 12345 -1 号 公网安备 </p></div>\n";
    while html.len() < 2 * 1024 * 1024 {
        html.push_str(para);
    }
    html.push_str(
        "<footer><a href=\"https://beian.miit.gov.cn/\">京ICP备12345678号-1</a></footer></body></html>",
    );
    let e = extract_html(&html);
    assert_eq!(e.icp.len(), 1);
    assert_eq!(e.icp[0].number.to_string(), "京ICP备12345678号-1");
    assert!(e.icp[0].linked && e.icp[0].in_footer);

    // Many numbers: each found once, repeats merged.
    let mut html = String::from("<body>");
    for i in 0..20_000 {
        html.push_str(&format!("<p>京ICP备{:08}号</p>", i % 5000 + 10_000_000));
    }
    html.push_str("</body>");
    assert_eq!(extract_html(&html).icp.len(), 5000);
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 200_000;
    let mut html = "<div>".repeat(depth);
    html.push_str("<footer>京ICP备12345678号</footer>");
    html.push_str(&"</div>".repeat(depth));
    let e = extract_html(&html);
    assert_eq!(e.icp.len(), 1);
    let mut html = "<span><b>".repeat(depth);
    html.push_str("京ICP备12345678号");
    let e = extract_html(&html);
    assert_eq!(e.icp.len(), 1);
    // Stray end tags and unclosed blocks, about 2 MiB each.
    let mut html = "</div>".repeat(350_000);
    html.push_str("<footer>京ICP备12345678号</footer>");
    assert_eq!(extract_html(&html).icp.len(), 1);
    // Server-side openers that never close, about 2 MiB: the pre-pass stays linear.
    let mut html = "<% ${ {% <# {{-- ".repeat(80_000);
    html.push_str("<footer>京ICP备12345678号</footer>");
    assert_eq!(extract_html(&html).icp.len(), 1);
    let mut html = "<section><div class=x>".repeat(100_000);
    html.push_str("<div class=footer>京ICP备12345678号</div>");
    let e = extract_html(&html);
    assert_eq!(e.icp.len(), 1);
    // The footer div is beyond the nesting limit and dropped; the number is still the last
    // text of the page.
    assert!(e.icp[0].in_footer);
}

fn htmlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("<div class=footer>".to_string()),
        Just("</div>".to_string()),
        Just("<a href=\"https://beian.miit.gov.cn/\">".to_string()),
        Just("<a href=//www.miibeian.gov.cn>".to_string()),
        Just("</a>".to_string()),
        Just("<br>".to_string()),
        Just("<span style='display:none'>".to_string()),
        Just("</span>".to_string()),
        Just("<!--".to_string()),
        Just("-->".to_string()),
        Just("<script>".to_string()),
        Just("<template>".to_string()),
        Just("</template>".to_string()),
        Just("<p th:text=\"${x}\">".to_string()),
        Just("<?php ".to_string()),
        Just("?>".to_string()),
        Just("<%".to_string()),
        Just("%>".to_string()),
        Just("${".to_string()),
        Just("}".to_string()),
        Just("{{".to_string()),
        Just("公安备案号".to_string()),
        Just("增值电信业务经营许可证B2-".to_string()),
        Just("<meta charset=gbk>".to_string()),
        Just("京ICP备".to_string()),
        Just("ICP证".to_string()),
        Just("公网安备".to_string()),
        Just("合字B1.B2-".to_string()),
        Just("号".to_string()),
        Just("-".to_string()),
        Just("&nbsp;".to_string()),
        Just("\u{3000}".to_string()),
        "[0-9０-９ ]{0,12}",
        "[A-Xa-x]{0,3}",
        "\\PC{0,8}",
    ];
    prop::collection::vec(token, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048),
                                   ct in prop::option::of("[ -~]{0,40}")) {
        let doc = extract_document(&bytes, ct.as_deref());
        prop_assert!(!doc.charset.is_empty());
    }

    #[test]
    fn html_like_input_never_panics(html in htmlish()) {
        let e = extract_html(&html);
        // Every reported number is canonical and listed once.
        let mut seen = std::collections::HashSet::new();
        for m in &e.icp {
            let s = m.number.to_string();
            prop_assert_eq!(beian::number::FilingNumber::parse(&s).map(|n| n.to_string()), Ok(s.clone()));
            prop_assert!(seen.insert(s));
            prop_assert_eq!(m.linked, m.link_host.is_some());
        }
    }

    #[test]
    fn a_footer_number_is_always_found(digits in "[1-9][0-9]{5,9}", suffix in prop::option::of(1u32..100),
                                       filler in "[a-z 。，]{0,200}") {
        let number = match suffix {
            Some(s) => format!("粤ICP备{digits}号-{s}"),
            None => format!("粤ICP备{digits}号"),
        };
        let html = format!("<body><p>{filler}</p><div class=copyright>© <a href=https://beian.miit.gov.cn>{number}</a></div></body>");
        let e = extract_html(&html);
        prop_assert_eq!(e.icp.len(), 1);
        prop_assert_eq!(e.icp[0].number.to_string(), number);
        prop_assert!(e.icp[0].linked && e.icp[0].in_footer);
    }
}
