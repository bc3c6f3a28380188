//! The columns of the two upload templates (website filings, IP filings), finding a sheet's
//! header row, and turning each data row into the same JSON object a JSON Lines import line
//! holds, so one validator serves every format. Errors name sheet, row and column.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::codes::CodeTables;
use crate::registry::import::LineError;

use super::{column_letter, Cell, Sheet, TabularError};

/// Which template an upload follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// Website filings (one row per website, its subject repeated).
    Filing,
    /// IP filings (one row per address block).
    Ip,
}

impl TableKind {
    /// The data sheet's name in the template.
    pub fn sheet_name(self) -> &'static str {
        match self {
            TableKind::Filing => "备案信息",
            TableKind::Ip => "IP地址备案",
        }
    }

    pub fn columns(self) -> &'static [ColumnSpec] {
        match self {
            TableKind::Filing => FILING_COLUMNS,
            TableKind::Ip => IP_COLUMNS,
        }
    }
}

/// How a column's cells are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// Free text.
    Text,
    /// Digits that must stay text (identity numbers, mobiles): a number cell loses digits.
    Digits,
    /// Several values separated by `;`, `；`, `,`, `，`, `、` or line breaks (and spaces for
    /// domains and addresses).
    List { spaces: bool },
    /// Content categories, each `类别` or `类别：前置审批文号`.
    Categories,
    /// One value from a code table (a drop-down list in the template).
    Code(CodeList),
}

/// The code tables the templates' drop-down lists come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeList {
    Nature,
    IdType,
    Province,
    AccessMethod,
    ServerPlacement,
    IpStatus,
    ServiceType,
    /// 是 / 否 (a true/false column).
    YesNo,
}

impl CodeList {
    /// The heading of its column on the code-table sheet.
    pub fn title(self) -> &'static str {
        match self {
            CodeList::Nature => "主办单位性质",
            CodeList::IdType => "证件类型",
            CodeList::Province => "省份",
            CodeList::AccessMethod => "接入方式",
            CodeList::ServerPlacement => "服务器放置地",
            CodeList::IpStatus => "IP地址使用状态",
            CodeList::ServiceType => "服务类型",
            CodeList::YesNo => "是否",
        }
    }

    /// The values offered, as shown in the template.
    pub fn values(self) -> Vec<String> {
        let t = CodeTables::embedded();
        match self {
            CodeList::Nature => t.natures().to_vec(),
            CodeList::IdType => t.id_types().iter().map(|i| i.name.clone()).collect(),
            CodeList::Province => t.provinces().iter().map(|p| p.name.clone()).collect(),
            CodeList::AccessMethod => t.access_methods().to_vec(),
            CodeList::ServerPlacement => t.server_placements().to_vec(),
            CodeList::YesNo => vec!["否".to_string(), "是".to_string()],
            CodeList::ServiceType => t
                .service_types()
                .iter()
                .filter(|s| s.id != "quick_app")
                .map(|s| s.name.clone())
                .collect(),
            CodeList::IpStatus => crate::registry::model::IpBlockStatus::ALL
                .iter()
                .map(|s| s.label_zh().to_string())
                .collect(),
        }
    }
}

/// One template column.
#[derive(Debug, Clone, Copy)]
pub struct ColumnSpec {
    /// The JSON field it fills (`subject.name`, `website.domains`, `network`).
    pub key: &'static str,
    /// The header, in Chinese (a trailing `*` marks a required column in the template).
    pub header: &'static str,
    pub required: bool,
    pub kind: ColumnKind,
    /// What to type, for the template's instructions sheet.
    pub help: &'static str,
    pub example: &'static str,
}

const fn col(
    key: &'static str,
    header: &'static str,
    required: bool,
    kind: ColumnKind,
    help: &'static str,
    example: &'static str,
) -> ColumnSpec {
    ColumnSpec {
        key,
        header,
        required,
        kind,
        help,
        example,
    }
}

/// The website-filing template: one row per website; the subject's columns are repeated on
/// every row of its websites.
pub const FILING_COLUMNS: &[ColumnSpec] = &[
    col(
        "subject.name",
        "主办单位名称",
        true,
        ColumnKind::Text,
        "与证件上的名称一致",
        "北京示例科技有限公司",
    ),
    col(
        "subject.nature",
        "主办单位性质",
        true,
        ColumnKind::Code(CodeList::Nature),
        "从下拉列表选择",
        "企业",
    ),
    col(
        "subject.id_type",
        "主办单位证件类型",
        true,
        ColumnKind::Code(CodeList::IdType),
        "从下拉列表选择",
        "统一社会信用代码",
    ),
    col(
        "subject.id_number",
        "主办单位证件号码",
        true,
        ColumnKind::Digits,
        "按文本填写，勿存为数字（身份证号存为数字会丢失末几位）",
        "91110108MA01ABCD2X",
    ),
    col(
        "subject.province",
        "主办单位所在省份",
        true,
        ColumnKind::Code(CodeList::Province),
        "从下拉列表选择，也可填简称（京、沪…）",
        "北京市",
    ),
    col(
        "subject.address",
        "主办单位通信地址",
        false,
        ColumnKind::Text,
        "",
        "北京市海淀区中关村大街1号",
    ),
    col(
        "subject.contact.name",
        "负责人姓名",
        false,
        ColumnKind::Text,
        "",
        "张三",
    ),
    col(
        "subject.contact.mobile",
        "负责人手机号码",
        false,
        ColumnKind::Digits,
        "11位手机号码",
        "13800000000",
    ),
    col(
        "subject.contact.email",
        "负责人电子邮箱",
        false,
        ColumnKind::Text,
        "",
        "zhangsan@example.com",
    ),
    col(
        "subject.username",
        "ICP用户名",
        false,
        ColumnKind::Text,
        "主办单位在系统中的用户名；不填则为证件号码",
        "",
    ),
    col(
        "website.name",
        "网站名称",
        true,
        ColumnKind::Text,
        "",
        "示例网",
    ),
    col(
        "website.homepage",
        "网站首页地址",
        false,
        ColumnKind::Text,
        "",
        "https://example.com/",
    ),
    col(
        "website.domains",
        "网站域名",
        true,
        ColumnKind::List { spaces: true },
        "全部域名，多个用分号分隔；填主域名，不带 www.",
        "example.com;example.cn",
    ),
    col(
        "website.ips",
        "网站IP地址",
        false,
        ColumnKind::List { spaces: true },
        "多个用分号分隔；只用IP访问的网站必填",
        "203.0.113.7",
    ),
    col(
        "website.providers",
        "接入服务单位",
        true,
        ColumnKind::List { spaces: false },
        "多个用分号分隔",
        "示例接入商",
    ),
    col(
        "website.access_method",
        "接入方式",
        false,
        ColumnKind::Code(CodeList::AccessMethod),
        "从下拉列表选择",
        "虚拟主机",
    ),
    col(
        "website.server_placement",
        "服务器放置地",
        false,
        ColumnKind::Code(CodeList::ServerPlacement),
        "从下拉列表选择",
        "北京",
    ),
    col(
        "website.categories",
        "网站内容类别及前置审批文号",
        false,
        ColumnKind::Categories,
        "多个用分号分隔；需前置审批的类别写“类别：文号”",
        "新闻：京新审〔2024〕1号;综合",
    ),
    col(
        "website.operating_licence",
        "经营许可证编号",
        false,
        ColumnKind::Text,
        "经营性网站填写",
        "京ICP证030173号",
    ),
    col(
        "website.kind",
        "服务类型",
        false,
        ColumnKind::Code(CodeList::ServiceType),
        "不填为网站；APP、小程序不填域名，填下一列",
        "网站",
    ),
    col(
        "website.bulletin_board",
        "电子公告服务",
        false,
        ColumnKind::Code(CodeList::YesNo),
        "提供论坛、留言板等电子公告服务的填“是”（需专项审核）",
        "否",
    ),
    col(
        "website.app_id",
        "APP包名或小程序AppID",
        false,
        ColumnKind::Text,
        "APP填包名，小程序填AppID",
        "com.example.app",
    ),
];

/// The IP-filing template: one row per address block.
pub const IP_COLUMNS: &[ColumnSpec] = &[
    col(
        "provider",
        "IP地址持有单位",
        true,
        ColumnKind::Text,
        "报备的接入服务单位",
        "华北云",
    ),
    col(
        "network",
        "IP地址段",
        true,
        ColumnKind::Text,
        "CIDR 形式，主机位为 0；单个地址可直接填写",
        "203.0.113.0/24",
    ),
    col(
        "source",
        "地址来源",
        false,
        ColumnKind::Text,
        "APNIC、CNNIC 或分配给本单位的运营商",
        "CNNIC",
    ),
    col(
        "status",
        "使用状态",
        true,
        ColumnKind::Code(CodeList::IpStatus),
        "从下拉列表选择；未分配的地址段不填后续各列",
        "已分配",
    ),
    col(
        "allocated_to",
        "使用单位",
        false,
        ColumnKind::Text,
        "已分配：使用单位；再分配：接受分配的运营商；客户自带：客户名称",
        "某公司",
    ),
    col(
        "province",
        "使用省份",
        false,
        ColumnKind::Code(CodeList::Province),
        "分配给他人使用的地址段必填",
        "北京市",
    ),
    col("city", "使用城市", false, ColumnKind::Text, "", "北京市"),
];

/// Where each template column is on one sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMap {
    pub sheet: Option<String>,
    /// The header row's number.
    pub row: usize,
    /// (column spec index, 0-based column, header as written).
    columns: Vec<(usize, u32, String)>,
    kind: TableKind,
}

impl HeaderMap {
    /// `M (网站域名)` for a field such as `website.domains[2]`, if that column is present.
    pub fn column_of(&self, field: &str) -> Option<String> {
        let key = field.split('[').next().unwrap_or(field);
        let specs = self.kind.columns();
        self.columns
            .iter()
            .find(|(i, _, _)| specs[*i].key == key)
            .map(|(_, c, h)| format!("{} ({h})", column_letter(*c)))
    }
}

/// One data row as an import object, with where it came from.
#[derive(Debug, Clone)]
pub struct TableRow {
    pub row: usize,
    /// The JSON object (the same as a JSON Lines import line).
    pub json: String,
    pub headers: Arc<HeaderMap>,
}

impl TableRow {
    /// Put the row's sheet, row number and column on an error about this row's fields.
    pub fn locate(&self, mut e: LineError) -> LineError {
        e.line = self.row;
        e.sheet = self.headers.sheet.clone();
        e.column = self.headers.column_of(&e.field);
        e
    }

    /// `sheet 备案信息, row 5` (or `row 5` for CSV), for notes.
    pub fn place(&self) -> String {
        match &self.headers.sheet {
            Some(s) => format!("sheet {s}, row {}", self.row),
            None => format!("row {}", self.row),
        }
    }
}

/// The data rows of an upload, the rows that could not be read, and notes.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub rows: Vec<TableRow>,
    pub errors: Vec<LineError>,
    pub notes: Vec<String>,
}

/// A header cell's text without the required marker, spaces and line breaks.
fn normalise_header(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '*' | '＊'))
        .collect()
}

/// Which spec a header names (its Chinese header or its field key), if any.
fn spec_for(kind: TableKind, header: &str) -> Option<usize> {
    let h = normalise_header(header);
    kind.columns()
        .iter()
        .position(|c| h == c.header || h.eq_ignore_ascii_case(c.key))
}

fn cell_text(c: &Cell) -> String {
    match c {
        Cell::Text(s) | Cell::Date(s) | Cell::Error(s) => s.trim().to_string(),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => f.to_string(),
        Cell::Bool(b) => b.to_string(),
    }
}

/// Find the header row (within the first 10 rows) of a sheet for `kind`: the first row that
/// names at least two required columns (a code-table sheet's headings are not enough).
fn find_header(
    kind: TableKind,
    sheet: &Sheet,
) -> Result<Option<(usize, HeaderMap, Vec<String>)>, TabularError> {
    for (idx, row) in sheet.rows.iter().take(10).enumerate() {
        let known = row
            .cells
            .iter()
            .filter_map(|(_, c)| spec_for(kind, &cell_text(c)))
            .filter(|i| kind.columns()[*i].required)
            .count();
        if known < 2 {
            continue;
        }
        let place = |col: u32| match &sheet.name {
            Some(s) => format!(
                "sheet {s}, row {}, column {}",
                row.number,
                column_letter(col)
            ),
            None => format!("row {}, column {}", row.number, column_letter(col)),
        };
        let mut columns: Vec<(usize, u32, String)> = Vec::new();
        let mut notes = Vec::new();
        for (col, c) in &row.cells {
            let text = cell_text(c);
            match spec_for(kind, &text) {
                Some(i) => {
                    if let Some((_, first, _)) = columns.iter().find(|(j, _, _)| *j == i) {
                        return Err(TabularError::Header {
                            place: place(*col),
                            reason: format!(
                                "{text:?} appears twice (also column {})",
                                column_letter(*first)
                            ),
                        });
                    }
                    columns.push((i, *col, kind.columns()[i].header.to_string()));
                }
                None => notes.push(format!(
                    "{}: {text:?} is not a template column; ignored",
                    place(*col)
                )),
            }
        }
        let missing: Vec<&str> = kind
            .columns()
            .iter()
            .enumerate()
            .filter(|(i, c)| c.required && !columns.iter().any(|(j, _, _)| j == i))
            .map(|(_, c)| c.header)
            .collect();
        if !missing.is_empty() {
            return Err(TabularError::Header {
                place: match &sheet.name {
                    Some(s) => format!("sheet {s}, row {}", row.number),
                    None => format!("row {}", row.number),
                },
                reason: format!("required columns missing: {}", missing.join(", ")),
            });
        }
        let map = HeaderMap {
            sheet: sheet.name.clone(),
            row: row.number,
            columns,
            kind,
        };
        return Ok(Some((idx, map, notes)));
    }
    Ok(None)
}

fn split_list(s: &str, spaces: bool) -> Vec<String> {
    s.split(|c: char| {
        matches!(c, ';' | '；' | ',' | '，' | '、' | '\n' | '\r') || (spaces && c.is_whitespace())
    })
    .map(str::trim)
    .filter(|p| !p.is_empty())
    .map(str::to_string)
    .collect()
}

/// A province cell as the validator expects it: `北京市`, `北京` or `京` → `京`; anything
/// else is passed on for the validator to name.
fn province_abbreviation(s: &str) -> String {
    let s = s.trim();
    let mut chars = s.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return c.to_string();
    }
    CodeTables::embedded()
        .province(s)
        .map(|p| p.abbreviation.to_string())
        .unwrap_or_else(|| s.to_string())
}

/// One cell as the JSON value of its column, or the reason it cannot be.
fn cell_value(spec: &ColumnSpec, cell: &Cell) -> Result<Option<Value>, String> {
    let text = match cell {
        Cell::Text(s) => s.trim().to_string(),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else if spec.kind == ColumnKind::Digits {
                return Err(format!(
                    "stored as a number ({f}); a spreadsheet keeps only 15 digits of a number, so the last digits are lost: format the column as text and type it again"
                ));
            } else {
                f.to_string()
            }
        }
        Cell::Bool(b) if spec.kind == ColumnKind::Code(CodeList::YesNo) => {
            return Ok(Some(Value::Bool(*b)))
        }
        Cell::Bool(b) => return Err(format!("a true/false value ({b}); expected text")),
        Cell::Date(d) => return Err(format!("a date ({d}); expected text")),
        Cell::Error(e) => return Err(format!("the cell holds the formula error {e}")),
    };
    if text.is_empty() {
        return Ok(None);
    }
    Ok(Some(match spec.kind {
        ColumnKind::Text | ColumnKind::Digits => Value::String(text),
        ColumnKind::Code(CodeList::Province) => Value::String(province_abbreviation(&text)),
        ColumnKind::Code(CodeList::IpStatus) => Value::String(
            text.parse::<crate::registry::model::IpBlockStatus>()
                .map(|s| s.as_str().to_string())
                .unwrap_or(text),
        ),
        ColumnKind::Code(CodeList::YesNo) => match text.to_lowercase().as_str() {
            "是" | "yes" | "y" | "true" | "1" => Value::Bool(true),
            "否" | "no" | "n" | "false" | "0" => Value::Bool(false),
            _ => return Err(format!("{text:?} is not 是 or 否")),
        },
        ColumnKind::Code(_) => Value::String(text),
        ColumnKind::List { spaces } => Value::Array(
            split_list(&text, spaces)
                .into_iter()
                .map(Value::String)
                .collect(),
        ),
        ColumnKind::Categories => Value::Array(
            split_list(&text, false)
                .into_iter()
                .map(|item| match item.split_once([':', '：']) {
                    Some((cat, doc)) if !doc.trim().is_empty() => serde_json::json!({
                        "category": cat.trim(),
                        "document": doc.trim(),
                    }),
                    Some((cat, _)) => Value::String(cat.trim().to_string()),
                    None => Value::String(item),
                })
                .collect(),
        ),
    }))
}

/// Put `value` at the dotted `key` of `obj`.
fn insert_path(obj: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        None => {
            obj.insert(key.to_string(), value);
        }
        Some((head, rest)) => {
            let child = obj
                .entry(head.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = child {
                insert_path(m, rest, value);
            }
        }
    }
}

/// The data rows of every sheet that has `kind`'s header row. Sheets without one (the
/// template's code tables and instructions) are skipped; if none has it, that is an error.
pub fn table(kind: TableKind, sheets: &[Sheet]) -> Result<Table, TabularError> {
    let mut out = Table::default();
    let mut found = false;
    for sheet in sheets {
        let Some((header_idx, map, notes)) = find_header(kind, sheet)? else {
            continue;
        };
        found = true;
        out.notes.extend(notes);
        let map = Arc::new(map);
        let specs = kind.columns();
        for row in &sheet.rows[header_idx + 1..] {
            let mut obj = Map::new();
            // The filing template's objects always have both parts, so a missing part is
            // reported as its missing fields rather than as malformed JSON.
            if kind == TableKind::Filing {
                obj.insert("subject".into(), Value::Object(Map::new()));
                obj.insert("website".into(), Value::Object(Map::new()));
            }
            let mut any = false;
            let mut bad = None;
            for (i, c, _) in &map.columns {
                let Some(cell) = row.get(*c) else { continue };
                match cell_value(&specs[*i], cell) {
                    Ok(Some(v)) => {
                        any = true;
                        insert_path(&mut obj, specs[*i].key, v);
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        any = true;
                        bad.get_or_insert(LineError {
                            line: row.number,
                            sheet: map.sheet.clone(),
                            column: map.column_of(specs[*i].key),
                            field: specs[*i].key.to_string(),
                            reason,
                            rule: None,
                        });
                    }
                }
            }
            if !any {
                continue;
            }
            if let Some(e) = bad {
                out.errors.push(e);
                continue;
            }
            // Required text fields the validator reads with serde (not `Option`) are filled
            // with "" so the validator names the empty field.
            for spec in specs.iter().filter(|s| s.required) {
                if matches!(
                    spec.kind,
                    ColumnKind::Text | ColumnKind::Digits | ColumnKind::Code(_)
                ) && lookup_path(&obj, spec.key).is_none()
                {
                    insert_path(&mut obj, spec.key, Value::String(String::new()));
                }
            }
            out.rows.push(TableRow {
                row: row.number,
                json: Value::Object(obj).to_string(),
                headers: map.clone(),
            });
        }
    }
    if !found {
        return Err(TabularError::NoHeader {
            expected: kind
                .columns()
                .iter()
                .take(3)
                .map(|c| c.header)
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(out)
}

fn lookup_path<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    match key.split_once('.') {
        None => obj.get(key),
        Some((head, rest)) => match obj.get(head) {
            Some(Value::Object(m)) => lookup_path(m, rest),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::Row;

    fn sheet(name: &str, rows: Vec<(usize, Vec<(u32, Cell)>)>) -> Sheet {
        Sheet {
            name: Some(name.into()),
            rows: rows
                .into_iter()
                .map(|(number, cells)| Row { number, cells })
                .collect(),
        }
    }

    fn t(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn header(kind: TableKind) -> Vec<(u32, Cell)> {
        kind.columns()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    i as u32,
                    t(&format!(
                        "{}{}",
                        c.header,
                        if c.required { "*" } else { "" }
                    )),
                )
            })
            .collect()
    }

    #[test]
    fn rows_become_import_objects_with_lists_provinces_and_categories() {
        let mut h = header(TableKind::Filing);
        h.push((30, t("备注")));
        let s = sheet(
            "备案信息",
            vec![
                (1, h),
                (
                    2,
                    vec![
                        (0, t("北京示例科技有限公司")),
                        (1, t("企业")),
                        (2, t("统一社会信用代码")),
                        (3, t("91110108MA01ABCD2X")),
                        (4, t("北京市")),
                        (7, Cell::Float(13800000000.0)),
                        (10, t("示例网")),
                        (12, t("example.com；example.cn\nexample.net")),
                        (14, t("甲接入商、乙接入商")),
                        (17, t("新闻：京新审〔2024〕1号;综合")),
                    ],
                ),
                (4, vec![(0, t("  "))]),
            ],
        );
        let table = table(TableKind::Filing, &[s]).unwrap();
        assert!(table.errors.is_empty(), "{:?}", table.errors);
        assert_eq!(table.rows.len(), 1);
        assert!(table.notes[0].contains("column AE"), "{:?}", table.notes);
        let v: Value = serde_json::from_str(&table.rows[0].json).unwrap();
        assert_eq!(v["subject"]["province"], "京");
        assert_eq!(v["subject"]["contact"]["mobile"], "13800000000");
        assert_eq!(v["website"]["domains"].as_array().unwrap().len(), 3);
        assert_eq!(v["website"]["providers"][1], "乙接入商");
        assert_eq!(
            v["website"]["categories"][0]["document"],
            "京新审〔2024〕1号"
        );
        assert_eq!(v["website"]["categories"][1], "综合");
        assert_eq!(
            table.rows[0]
                .headers
                .column_of("website.domains[1]")
                .unwrap(),
            "M (网站域名)"
        );
    }

    #[test]
    fn an_identity_number_stored_as_a_number_is_an_error_at_its_cell() {
        let s = sheet(
            "备案信息",
            vec![
                (1, header(TableKind::Filing)),
                (
                    2,
                    vec![(0, t("张三")), (3, Cell::Float(1.1010119900307452e17))],
                ),
            ],
        );
        let table = table(TableKind::Filing, &[s]).unwrap();
        assert!(table.rows.is_empty());
        let e = &table.errors[0];
        assert_eq!((e.line, e.sheet.as_deref()), (2, Some("备案信息")));
        assert_eq!(e.column.as_deref(), Some("D (主办单位证件号码)"));
        assert!(e.reason.contains("15 digits"), "{e}");
    }

    #[test]
    fn headers_are_found_below_a_title_and_missing_ones_are_named() {
        let s = sheet(
            "Sheet1",
            vec![
                (1, vec![(0, t("IP地址备案表"))]),
                (3, header(TableKind::Ip)),
                (
                    4,
                    vec![(0, t("华北云")), (1, t("203.0.113.0/24")), (3, t("未分配"))],
                ),
            ],
        );
        let table = table(TableKind::Ip, &[s]).unwrap();
        let v: Value = serde_json::from_str(&table.rows[0].json).unwrap();
        assert_eq!(v["status"], "unallocated");
        assert_eq!(table.rows[0].row, 4);
        let s = sheet(
            "x",
            vec![(1, vec![(0, t("IP地址段")), (1, t("使用状态*"))])],
        );
        let e = super::table(TableKind::Ip, &[s]).unwrap_err();
        assert!(e.to_string().contains("IP地址持有单位"), "{e}");
        let e = super::table(TableKind::Ip, &[sheet("x", vec![])]).unwrap_err();
        assert!(matches!(e, TabularError::NoHeader { .. }));
    }

    #[test]
    fn province_names_map_to_abbreviations() {
        assert_eq!(province_abbreviation("北京市"), "京");
        assert_eq!(province_abbreviation("广东"), "粤");
        assert_eq!(province_abbreviation("新疆维吾尔自治区"), "新");
        assert_eq!(province_abbreviation("沪"), "沪");
        assert_eq!(province_abbreviation("火星"), "火星");
    }
}
