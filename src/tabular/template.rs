//! Writing the upload templates (`beian template`, `GET /api/templates/{kind}`): an `.xlsx`
//! with the data sheet (Chinese headers, required ones marked `*`, every column formatted as
//! text so identity numbers keep their digits, drop-down lists for coded columns), the code
//! tables the lists come from, and an instructions sheet.

use rust_xlsxwriter::{
    Color, DataValidation, Format, FormatAlign, FormatBorder, Formula, Workbook, XlsxError,
};

use super::columns::{ColumnKind, TableKind};

/// Rows of the data sheet that carry the drop-down lists and the text format.
pub const TEMPLATE_ROWS: u32 = 10_000;

/// The code-table sheet's name.
const CODE_SHEET: &str = "代码表";
/// The instructions sheet's name.
const HELP_SHEET: &str = "填写说明";

/// Why a template could not be written (a bug, not bad input).
#[derive(Debug, thiserror::Error)]
#[error("writing the template: {0}")]
pub struct TemplateError(#[from] XlsxError);

/// The `.xlsx` bytes of `kind`'s template.
pub fn write(kind: TableKind) -> Result<Vec<u8>, TemplateError> {
    let mut book = Workbook::new();
    let header = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xD9E2F3))
        .set_border(FormatBorder::Thin)
        .set_text_wrap()
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter);
    let required = header.clone().set_font_color(Color::RGB(0x9C0006));
    let text = Format::new().set_num_format("@");
    let columns = kind.columns();

    // The code lists this template uses, in column order, each once.
    let mut lists = Vec::new();
    for c in columns {
        if let ColumnKind::Code(list) = c.kind {
            if !lists.contains(&list) {
                lists.push(list);
            }
        }
    }

    {
        let data = book.add_worksheet();
        data.set_name(kind.sheet_name())?;
        data.set_row_height(0, 32)?;
        for (i, c) in columns.iter().enumerate() {
            let col = i as u16;
            let title = if c.required {
                format!("{}*", c.header)
            } else {
                c.header.to_string()
            };
            data.write_string_with_format(
                0,
                col,
                &title,
                if c.required { &required } else { &header },
            )?;
            let width = (c.header.chars().count() as f64 * 2.2 + 4.0).max(14.0);
            data.set_column_width(col, width)?;
            data.set_column_format(col, &text)?;
            if let ColumnKind::Code(list) = c.kind {
                let at = lists.iter().position(|l| *l == list).unwrap_or(0);
                let letter = super::column_letter(at as u32);
                let n = list.values().len().max(1) + 1;
                let dv = DataValidation::new()
                    .allow_list_formula(Formula::new(format!(
                        "='{CODE_SHEET}'!${letter}$2:${letter}${n}"
                    )))
                    .set_error_title("不在代码表中")?
                    .set_error_message(format!("请从下拉列表选择{}", list.title()))?;
                data.add_data_validation(1, col, TEMPLATE_ROWS, col, &dv)?;
            }
        }
        data.set_freeze_panes(1, 0)?;
    }

    {
        let codes = book.add_worksheet();
        codes.set_name(CODE_SHEET)?;
        for (i, list) in lists.iter().enumerate() {
            let col = i as u16;
            codes.write_string_with_format(0, col, list.title(), &header)?;
            codes.set_column_width(col, 22)?;
            for (r, v) in list.values().iter().enumerate() {
                codes.write_string(r as u32 + 1, col, v)?;
            }
        }
        codes.set_freeze_panes(1, 0)?;
    }

    {
        let help = book.add_worksheet();
        help.set_name(HELP_SHEET)?;
        for (i, h) in ["列", "表头", "必填", "填写说明", "示例"]
            .iter()
            .enumerate()
        {
            help.write_string_with_format(0, i as u16, *h, &header)?;
        }
        for (w, col) in [(6, 0), (26, 1), (6, 2), (60, 3), (36, 4)] {
            help.set_column_width(col, w)?;
        }
        for (i, c) in columns.iter().enumerate() {
            let r = i as u32 + 1;
            help.write_string(r, 0, super::column_letter(i as u32))?;
            help.write_string(r, 1, c.header)?;
            help.write_string(r, 2, if c.required { "是" } else { "" })?;
            help.write_string(r, 3, c.help)?;
            help.write_string(r, 4, c.example)?;
        }
        let last = columns.len() as u32 + 2;
        help.write_string(
            last,
            0,
            "每行一条；保留第一行表头。再次上传本单位已接入的网站的行，将作为变更提交，而不是重复备案。",
        )?;
    }

    Ok(book.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::{read_sheets, Cell};

    #[test]
    fn both_templates_have_headers_codes_and_help() {
        for kind in [TableKind::Filing, TableKind::Ip] {
            let bytes = write(kind).unwrap();
            let sheets = read_sheets(&bytes).unwrap();
            let names: Vec<_> = sheets.iter().filter_map(|s| s.name.clone()).collect();
            assert_eq!(names, [kind.sheet_name(), CODE_SHEET, HELP_SHEET]);
            let headers = &sheets[0].rows[0];
            assert_eq!(headers.cells.len(), kind.columns().len());
            // An empty template is a valid upload with no rows.
            let t = crate::tabular::columns::table(kind, &sheets).unwrap();
            assert!(t.rows.is_empty() && t.errors.is_empty());
            let codes = &sheets[1];
            assert!(codes.rows.len() > 5, "{kind:?}: code lists");
        }
        let sheets = read_sheets(&write(TableKind::Ip).unwrap()).unwrap();
        assert!(sheets[1]
            .rows
            .iter()
            .any(|r| r.get(1) == Some(&Cell::Text("路由器端口".into()))
                || r.get(0) == Some(&Cell::Text("路由器端口".into()))));
    }
}
