//! Spreadsheet templates both ways, with files made by LibreOffice (`soffice`, from Debian's
//! `libreoffice-calc-nogui`, installed by `.ci/run`): the same rows as .xlsx, .xls and CSV
//! import with the same result as JSON Lines; bad rows are reported by sheet, row and column
//! and the good rows kept; a re-uploaded template opens changes; IP templates; the API.

use std::path::{Path, PathBuf};
use std::process::Command;

use beian::accounts::Actor;
use beian::registry::{DefaultRole, FilingKey, Registry, Submitter};

const NOW: i64 = 1_750_000_000;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/templates")
        .join(name)
}

/// Convert `csv` with LibreOffice into `target` (`xlsx` or `xls:MS Excel 97`) in `dir`. With
/// `text_columns`, the CSV import types the first `text_columns` columns as text (as a
/// provider does who formats the template's columns as text); otherwise LibreOffice guesses,
/// and long digit strings become numbers.
fn soffice(dir: &Path, csv: &Path, target: &str, text_columns: usize) -> PathBuf {
    let profile = dir.join("lo-profile");
    let mut filter = "CSV:44,34,76,1".to_string();
    if text_columns > 0 {
        let cols: Vec<String> = (1..=text_columns).map(|c| format!("{c}/2")).collect();
        filter = format!("{filter},{}", cols.join("/"));
    }
    let out = Command::new("soffice")
        .arg(format!(
            "-env:UserInstallation=file://{}",
            profile.display()
        ))
        .args(["--headless", "--norestore"])
        .arg(format!("--infilter={filter}"))
        .args(["--convert-to", target, "--outdir"])
        .arg(dir)
        .arg(csv)
        .output()
        .unwrap_or_else(|e| {
            panic!("soffice (Debian's libreoffice-calc-nogui, installed by .ci/run) is needed: {e}")
        });
    let ext = target.split(':').next().unwrap_or(target);
    let made = dir.join(csv.file_stem().unwrap()).with_extension(ext);
    assert!(
        made.exists(),
        "soffice made no {}: {}{}",
        made.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    made
}

fn fresh(dir: &Path, name: &str) -> Registry {
    Registry::init(&dir.join(name), NOW).unwrap().0
}

fn upload(reg: &Registry, file: &Path) -> beian::registry::ImportReport {
    let bytes = std::fs::read(file).unwrap();
    reg.import_upload(&bytes, Submitter::RowProvider, NOW, 4, &mut |_| {})
        .unwrap()
}

/// Every filing of a registry as JSON, by id: what an import produced.
fn state(reg: &Registry) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for id in 1.. {
        match reg.filing_view(&FilingKey::Id(id)) {
            Ok(v) => out.push(serde_json::to_value(v).unwrap()),
            Err(_) => break,
        }
    }
    out
}

#[test]
fn faq_batch_import_xlsx_xls_and_csv_from_libreoffice_match_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = fresh(tmp.path(), "jsonl");
    let r = upload(&jsonl, &data("filings.jsonl"));
    assert_eq!(
        (r.format.as_str(), r.accepted.len(), r.errors.len()),
        ("jsonl", 10, 0)
    );
    let want = state(&jsonl);
    assert_eq!(want.len(), 10);

    let csv = data("filings.csv");
    let xlsx = soffice(tmp.path(), &csv, "xlsx", 19);
    let xls = soffice(tmp.path(), &csv, "xls:MS Excel 97", 19);
    for (file, format) in [(&csv, "csv"), (&xlsx, "xlsx"), (&xls, "xls")] {
        let reg = fresh(tmp.path(), format);
        let r = upload(&reg, file);
        assert_eq!(r.format, format);
        assert!(r.errors.is_empty(), "{format}: {:?}", r.errors);
        assert_eq!(r.accepted.len(), 10, "{format}");
        // The rows are numbered as the spreadsheet shows them (header = row 1).
        assert_eq!(r.accepted[0].0, 2, "{format}");
        assert_eq!(state(&reg), want, "{format} differs from JSON Lines");
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("row 6") && n.contains("www.")),
            "{format}: {:?}",
            r.notes
        );
    }
}

#[test]
fn bad_template_rows_name_sheet_row_and_column_and_good_rows_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let xlsx = soffice(tmp.path(), &data("bad_filings.csv"), "xlsx", 19);
    let reg = fresh(tmp.path(), "reg");
    let r = upload(&reg, &xlsx);
    let accepted: Vec<usize> = r.accepted.iter().map(|(row, _)| *row).collect();
    assert_eq!(accepted, [2, 4, 7]);
    let errors: Vec<(usize, Option<&str>, Option<&str>)> = r
        .errors
        .iter()
        .map(|e| (e.line, e.sheet.as_deref(), e.column.as_deref()))
        .collect();
    assert_eq!(
        errors,
        [
            (3, Some("bad_filings"), Some("M (网站域名)")),
            (5, Some("bad_filings"), Some("E (主办单位所在省份)")),
            (6, Some("bad_filings"), Some("K (网站名称)")),
        ]
    );
    let shown = r.errors[1].to_string();
    assert!(
        shown.starts_with(
            "sheet bad_filings, row 5, column E (主办单位所在省份): subject.province:"
        ),
        "{shown}"
    );

    // Typed by LibreOffice's guess, mobiles become numbers: whole numbers are read back as
    // their digits, and the result is the same as with text columns.
    let guessed = soffice(tmp.path(), &data("filings.csv"), "xlsx", 0);
    let reg = fresh(tmp.path(), "guessed");
    let r = upload(&reg, &guessed);
    assert_eq!(
        (r.accepted.len(), r.errors.len()),
        (10, 0),
        "{:?}",
        r.errors
    );
    let text = fresh(tmp.path(), "text");
    upload(
        &text,
        &soffice(tmp.path(), &data("filings.csv"), "xls:MS Excel 97", 19),
    );
    assert_eq!(state(&reg), state(&text));
}

#[test]
fn an_identity_number_stored_as_a_number_is_refused_at_its_cell() {
    // Excel keeps 15 significant digits of a number: an 18-digit resident ID typed into a
    // general-format cell loses its last digits. The template's text columns prevent it;
    // a file that has it gets the row refused at that cell, with how to fix it.
    use rust_xlsxwriter::Workbook;
    let tmp = tempfile::tempdir().unwrap();
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Sheet1").unwrap();
    for (c, spec) in beian::tabular::TableKind::Filing
        .columns()
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, spec.header).unwrap();
    }
    let row = [
        "陈六",
        "个人",
        "居民身份证",
        "",
        "浙江省",
        "杭州市",
        "陈六",
        "",
        "",
        "",
        "陈六的网站",
        "",
        "chenliu-numbers.cn",
        "",
        "示例接入商",
    ];
    for (c, v) in row.iter().enumerate() {
        if !v.is_empty() {
            sheet.write_string(1, c as u16, *v).unwrap();
        }
    }
    sheet.write_number(1, 3, 330106199001011234.0).unwrap();
    sheet.write_number(1, 7, 13800000000.0).unwrap();
    let file = tmp.path().join("numbers.xlsx");
    book.save(&file).unwrap();
    let reg = fresh(tmp.path(), "reg");
    let r = upload(&reg, &file);
    assert!(r.accepted.is_empty());
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    let e = &r.errors[0];
    assert_eq!(
        (e.line, e.column.as_deref()),
        (2, Some("D (主办单位证件号码)"))
    );
    assert!(e.reason.contains("format the column as text"), "{e}");
}

#[test]
fn garbage_uploads_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = fresh(tmp.path(), "reg");
    let e = reg
        .import_upload(
            b"PK\x03\x04not a zip",
            Submitter::RowProvider,
            NOW,
            10,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.to_string().contains("not a readable xlsx"), "{e}");
    let e = reg
        .import_upload(
            "名称,地址\n甲,乙\n".as_bytes(),
            Submitter::RowProvider,
            NOW,
            10,
            &mut |_| {},
        )
        .unwrap_err();
    assert!(e.to_string().contains("header row"), "{e}");
    // The template itself, empty, is a valid upload with nothing in it.
    let empty = beian::tabular::template::write(beian::tabular::TableKind::Filing).unwrap();
    let r = reg
        .import_upload(&empty, Submitter::RowProvider, NOW, 10, &mut |_| {})
        .unwrap();
    assert_eq!((r.accepted.len(), r.errors.len()), (0, 0));
}

#[test]
fn faq_a_reuploaded_template_opens_changes_not_duplicate_domain_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let xlsx = soffice(tmp.path(), &data("filings.csv"), "xlsx", 19);
    let reg = fresh(tmp.path(), "reg");
    assert_eq!(upload(&reg, &xlsx).accepted.len(), 10);
    for p in ["示例接入商", "华北云", "华东数据", "华南互联"] {
        reg.verify_access(&Actor::isp(p), p, None, NOW).unwrap();
    }
    // The news site's approval document is confirmed by a pre-approval user first.
    reg.check_pre_approval(
        &reg.acting_as(
            &FilingKey::Domain("yunduan-news.cn".into()),
            DefaultRole::PreApproval,
        )
        .unwrap(),
        &FilingKey::Domain("yunduan-news.cn".into()),
        "新闻",
        None,
        NOW,
    )
    .unwrap();
    let approved = reg.review_auto_by_each_bureau(NOW).unwrap();
    assert_eq!(approved.approved.len(), 10, "{:?}", approved.refused);

    // The same template again: every row is a filing its provider handles, unchanged.
    let r = upload(&reg, &xlsx);
    assert_eq!(
        (
            r.accepted.len(),
            r.changed.len(),
            r.unchanged.len(),
            r.errors.len()
        ),
        (0, 0, 10, 0),
        "{:?}",
        r.errors
    );

    // Edited: one row adds a domain and renames the site; another is a new website.
    let text = std::fs::read_to_string(data("filings.csv")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[1] = lines[1]
        .replace(
            "example-bj.com；example-bj.net",
            "example-bj.com；example-bj.net；example-bj.org",
        )
        .replace(",示例网,", ",示例网（新版）,");
    let mut new_row = lines[2].replace("shop-bj.cn", "new-site-bj.cn");
    new_row = new_row.replace(",示例商城,", ",新站,");
    lines.push(new_row);
    let edited = tmp.path().join("edited.csv");
    std::fs::write(&edited, lines.join("\n") + "\n").unwrap();
    let edited = soffice(tmp.path(), &edited, "xls:MS Excel 97", 19);
    let r = upload(&reg, &edited);
    assert_eq!(r.changed.iter().map(|c| c.0).collect::<Vec<_>>(), [2]);
    assert_eq!(r.accepted.iter().map(|c| c.0).collect::<Vec<_>>(), [12]);
    assert_eq!(r.unchanged.len(), 9);
    let v = reg.filing_view(&FilingKey::Id(1)).unwrap();
    assert_eq!(v.status, "change_under_review");
    assert_eq!(v.domains.len(), 2, "the change waits for the bureau");
    // The bureau approves: domains and name change, a new certificate is issued.
    let r = reg.review_auto_by_each_bureau(NOW + 60).unwrap();
    assert!(r.approved.iter().any(|(id, _, _)| *id == 1), "{r:?}");
    let v = reg.filing_view(&FilingKey::Id(1)).unwrap();
    assert_eq!(v.domains.len(), 3);
    assert_eq!(v.name, "示例网（新版）");

    // A row naming a filing of another provider is still a duplicate-domain error.
    let other = lines[3].replace("华东数据", "华北云");
    let f = tmp.path().join("other.csv");
    std::fs::write(&f, format!("{}\n{other}\n", lines[0])).unwrap();
    let r = upload(&reg, &f);
    assert_eq!(r.errors.len(), 1, "{r:?}");
    assert!(r.errors[0].reason.contains("rule 8"), "{:?}", r.errors);
}

#[test]
fn faq_ip_template_from_libreoffice_matches_json_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let jsonl = fresh(tmp.path(), "jsonl");
    let text = std::fs::read(data("ip_filings.jsonl")).unwrap();
    let r = jsonl
        .import_ip_upload(&text, Submitter::RowProvider, NOW)
        .unwrap();
    assert_eq!((r.accepted.len(), r.errors.len()), (4, 0));
    let want = jsonl.ip_filings().unwrap();
    for target in ["xlsx", "xls:MS Excel 97"] {
        let file = soffice(tmp.path(), &data("ip_filings.csv"), target, 7);
        let reg = fresh(tmp.path(), target.split(':').next().unwrap());
        let r = reg
            .import_ip_upload(&std::fs::read(&file).unwrap(), Submitter::RowProvider, NOW)
            .unwrap();
        assert!(r.errors.is_empty(), "{target}: {:?}", r.errors);
        assert_eq!(reg.ip_filings().unwrap(), want, "{target}");
    }
    // The unit-information table: the units using addresses, not the unallocated block.
    let units = jsonl.ip_units().unwrap();
    let names: Vec<&str> = units.iter().map(|u| u.unit.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains(&"深圳示例科技有限公司"));
}
