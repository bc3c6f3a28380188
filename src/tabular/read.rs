//! Reading an upload's sheets into rows of cells, with the bounds that keep a hostile workbook
//! from exhausting memory. `.xlsx` cells are streamed (calamine's cell reader, never a dense
//! range the size the file declares); an `.xls` is checked record by record before calamine
//! builds its ranges; CSV is decoded from UTF-8, UTF-16 (with BOM) or GB18030.

use std::io::{Cursor, Read};

use calamine::{Data, DataRef, Reader};

use super::{
    column_letter, detect, TabularError, UploadFormat, MAX_CELLS, MAX_UPLOAD_BYTES,
    MAX_XLSX_UNCOMPRESSED,
};

/// One cell's value as the file stores it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// A date or time, as ISO text or the spreadsheet's serial number.
    Date(String),
    /// A formula error (`#N/A`, `#REF!`, …).
    Error(String),
}

/// One non-empty row: its number as the spreadsheet shows it (1-based) and its non-empty
/// cells by 0-based column, in column order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub number: usize,
    pub cells: Vec<(u32, Cell)>,
}

impl Row {
    /// The cell in column `col`, if not empty.
    pub fn get(&self, col: u32) -> Option<&Cell> {
        self.cells
            .binary_search_by_key(&col, |(c, _)| *c)
            .ok()
            .map(|i| &self.cells[i].1)
    }
}

/// One sheet (a CSV file is one sheet without a name).
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub name: Option<String>,
    pub rows: Vec<Row>,
}

/// Read every sheet of an `.xlsx`, `.xls` or CSV upload. JSON Lines is not tabular: the caller
/// imports it line by line.
pub fn read_sheets(bytes: &[u8]) -> Result<Vec<Sheet>, TabularError> {
    if bytes.len() > MAX_UPLOAD_BYTES {
        return Err(TabularError::TooLarge {
            size: bytes.len(),
            limit: MAX_UPLOAD_BYTES,
        });
    }
    match detect(bytes) {
        UploadFormat::Xlsx => read_xlsx(bytes),
        UploadFormat::Xls => read_xls(bytes),
        UploadFormat::Csv | UploadFormat::JsonLines => read_csv(bytes).map(|s| vec![s]),
    }
}

fn workbook_error(format: &'static str, e: impl std::fmt::Display) -> TabularError {
    TabularError::Workbook {
        format,
        reason: e.to_string(),
    }
}

/// Collects cells into rows, counting them against [`MAX_CELLS`].
struct Collector {
    rows: std::collections::BTreeMap<u32, Vec<(u32, Cell)>>,
    cells: usize,
}

impl Collector {
    fn new() -> Self {
        Collector {
            rows: Default::default(),
            cells: 0,
        }
    }

    fn push(&mut self, place: &str, row: u32, col: u32, cell: Cell) -> Result<(), TabularError> {
        if let Cell::Text(t) = &cell {
            if t.trim().is_empty() {
                return Ok(());
            }
        }
        self.cells += 1;
        if self.cells > MAX_CELLS {
            return Err(TabularError::Bounds {
                place: place.to_string(),
                reason: format!("more than {MAX_CELLS} non-empty cells"),
            });
        }
        self.rows.entry(row).or_default().push((col, cell));
        Ok(())
    }

    fn finish(self, name: Option<String>) -> Sheet {
        Sheet {
            name,
            rows: self
                .rows
                .into_iter()
                .map(|(r, mut cells)| {
                    cells.sort_by_key(|(c, _)| *c);
                    cells.dedup_by_key(|(c, _)| *c);
                    Row {
                        number: r as usize + 1,
                        cells,
                    }
                })
                .collect(),
        }
    }
}

fn cell_of(d: &Data) -> Option<Cell> {
    Some(match d {
        Data::Empty => return None,
        Data::String(s) => Cell::Text(s.clone()),
        Data::Int(i) => Cell::Int(*i),
        Data::Float(f) => Cell::Float(*f),
        Data::Bool(b) => Cell::Bool(*b),
        Data::DateTime(d) => Cell::Date(d.as_f64().to_string()),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Date(s.clone()),
        Data::Error(e) => Cell::Error(e.to_string()),
    })
}

fn cell_of_ref(d: DataRef<'_>) -> Option<Cell> {
    Some(match d {
        DataRef::Empty => return None,
        DataRef::String(s) => Cell::Text(s),
        DataRef::SharedString(s) => Cell::Text(s.to_string()),
        DataRef::Int(i) => Cell::Int(i),
        DataRef::Float(f) => Cell::Float(f),
        DataRef::Bool(b) => Cell::Bool(b),
        DataRef::DateTime(d) => Cell::Date(d.as_f64().to_string()),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => Cell::Date(s),
        DataRef::Error(e) => Cell::Error(e.to_string()),
    })
}

/// Check an `.xlsx`'s real uncompressed size (decompressing each part into nothing) before
/// calamine loads its shared strings and styles.
fn check_xlsx_size(bytes: &[u8]) -> Result<(), TabularError> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| workbook_error("xlsx", e))?;
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut part = zip.by_index(i).map_err(|e| workbook_error("xlsx", e))?;
        let left = MAX_XLSX_UNCOMPRESSED.saturating_sub(total);
        let n = std::io::copy(&mut (&mut part).take(left + 1), &mut std::io::sink())
            .map_err(|e| workbook_error("xlsx", e))?;
        total += n;
        if total > MAX_XLSX_UNCOMPRESSED {
            return Err(TabularError::Bounds {
                place: "xlsx".into(),
                reason: format!("expands to more than {MAX_XLSX_UNCOMPRESSED} bytes"),
            });
        }
    }
    Ok(())
}

fn read_xlsx(bytes: &[u8]) -> Result<Vec<Sheet>, TabularError> {
    check_xlsx_size(bytes)?;
    let mut book =
        calamine::Xlsx::new(Cursor::new(bytes)).map_err(|e| workbook_error("xlsx", e))?;
    let mut out = Vec::new();
    let mut cells_so_far = 0usize;
    for name in book.sheet_names() {
        let mut collector = Collector::new();
        collector.cells = cells_so_far;
        let place = format!("sheet {name}");
        {
            let mut reader = book
                .worksheet_cells_reader(&name)
                .map_err(|e| workbook_error("xlsx", format!("sheet {name}: {e}")))?;
            while let Some(cell) = reader
                .next_cell()
                .map_err(|e| workbook_error("xlsx", format!("sheet {name}: {e}")))?
            {
                let (r, c) = cell.get_position();
                if let Some(v) = cell_of_ref(cell.get_value().clone()) {
                    collector.push(&place, r, c, v)?;
                }
            }
        }
        cells_so_far = collector.cells;
        out.push(collector.finish(Some(name)));
    }
    Ok(out)
}

/// BIFF8 (Excel 97–2003) has 65,536 rows and 256 columns.
const XLS_MAX_COLS: u32 = 256;

/// Walk the BIFF records of an `.xls` workbook stream and check every cell's position and each
/// sheet's declared dimensions, so calamine never sizes a range from a hostile record.
fn check_xls_records(bytes: &[u8]) -> Result<(), TabularError> {
    let mut cfb =
        cfb::CompoundFile::open(Cursor::new(bytes)).map_err(|e| workbook_error("xls", e))?;
    let stream_name = ["/Workbook", "/Book"]
        .into_iter()
        .find(|n| cfb.is_stream(n))
        .ok_or_else(|| workbook_error("xls", "no Workbook stream"))?;
    let mut stream = Vec::new();
    cfb.open_stream(stream_name)
        .and_then(|mut s| {
            (&mut s)
                .take(MAX_UPLOAD_BYTES as u64)
                .read_to_end(&mut stream)
        })
        .map_err(|e| workbook_error("xls", e))?;
    let u16_at = |d: &[u8], i: usize| -> Option<u32> {
        d.get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as u32)
    };
    let u32_at = |d: &[u8], i: usize| -> Option<u64> {
        d.get(i..i + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64)
    };
    let bad = |reason: String| TabularError::Bounds {
        place: "xls".into(),
        reason,
    };
    // The bounding box of the current sheet's cells, and the cells over all sheets.
    let mut bbox: Option<(u32, u32, u32, u32)> = None;
    let mut total_area: u64 = 0;
    let mut pos = 0usize;
    while pos + 4 <= stream.len() {
        let kind = u16::from_le_bytes([stream[pos], stream[pos + 1]]);
        let len = u16::from_le_bytes([stream[pos + 2], stream[pos + 3]]) as usize;
        let data = stream.get(pos + 4..pos + 4 + len).unwrap_or(&[]);
        pos += 4 + len;
        let mut cell = |row: u32, first: u32, last: u32| -> Result<(), TabularError> {
            if last >= XLS_MAX_COLS || first > last {
                return Err(bad(format!(
                    "a cell in column {} is past the last column of an .xls sheet (IV)",
                    column_letter(last.max(first))
                )));
            }
            bbox = Some(match bbox {
                None => (row, row, first, last),
                Some((r0, r1, c0, c1)) => (r0.min(row), r1.max(row), c0.min(first), c1.max(last)),
            });
            Ok(())
        };
        match kind {
            // Cell records: row, column first.
            0x0006 | 0x0201 | 0x0203 | 0x0204 | 0x0205 | 0x027E | 0x00FD | 0x00D6 => {
                if let (Some(r), Some(c)) = (u16_at(data, 0), u16_at(data, 2)) {
                    cell(r, c, c)?;
                }
            }
            // MULRK / MULBLANK: row, first column, …, last column.
            0x00BD | 0x00BE => {
                if let (Some(r), Some(c0), Some(c1)) = (
                    u16_at(data, 0),
                    u16_at(data, 2),
                    data.len().checked_sub(2).and_then(|i| u16_at(data, i)),
                ) {
                    cell(r, c0, c1)?;
                }
            }
            // DIMENSIONS (BIFF8): first row, last row + 1, first column, last column + 1.
            0x0200 if data.len() >= 12 => {
                if let (Some(r0), Some(r1), Some(c0), Some(c1)) = (
                    u32_at(data, 0),
                    u32_at(data, 4),
                    u16_at(data, 8),
                    u16_at(data, 10),
                ) {
                    let area = r1
                        .saturating_sub(r0)
                        .saturating_mul(c1.saturating_sub(c0) as u64);
                    if c1 > XLS_MAX_COLS || area > MAX_CELLS as u64 {
                        return Err(bad(format!(
                            "a sheet declares {} rows × {} columns; at most {MAX_CELLS} cells are read",
                            r1.saturating_sub(r0),
                            c1.saturating_sub(c0)
                        )));
                    }
                }
            }
            // EOF of a substream (a sheet): its cells' span counts.
            0x000A => {
                if let Some((r0, r1, c0, c1)) = bbox.take() {
                    total_area += (r1 - r0 + 1) as u64 * (c1 - c0 + 1) as u64;
                    if total_area > MAX_CELLS as u64 {
                        return Err(bad(format!("the sheets span more than {MAX_CELLS} cells")));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn read_xls(bytes: &[u8]) -> Result<Vec<Sheet>, TabularError> {
    check_xls_records(bytes)?;
    let mut book = calamine::Xls::new(Cursor::new(bytes)).map_err(|e| workbook_error("xls", e))?;
    let mut out = Vec::new();
    let mut cells_so_far = 0usize;
    for (name, range) in book.worksheets() {
        let mut collector = Collector::new();
        collector.cells = cells_so_far;
        let place = format!("sheet {name}");
        let (r0, c0) = range.start().unwrap_or((0, 0));
        for (r, c, d) in range.used_cells() {
            if let Some(v) = cell_of(d) {
                collector.push(&place, r0 + r as u32, c0 + c as u32, v)?;
            }
        }
        cells_so_far = collector.cells;
        out.push(collector.finish(Some(name)));
    }
    Ok(out)
}

/// Decode CSV text: UTF-8 (BOM optional), UTF-16 with a BOM, otherwise GB18030 (what Excel
/// saves as "CSV" on Chinese Windows).
fn decode_text(bytes: &[u8]) -> String {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom..]);
        return text.into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(t) => t.to_string(),
        Err(_) => encoding_rs::GB18030
            .decode_without_bom_handling(bytes)
            .0
            .into_owned(),
    }
}

/// The delimiter the first line uses most: comma, tab or semicolon.
fn sniff_delimiter(text: &str) -> u8 {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    [b',', b'\t', b';']
        .into_iter()
        .max_by_key(|d| (first.matches(*d as char).count(), *d == b','))
        .unwrap_or(b',')
}

fn read_csv(bytes: &[u8]) -> Result<Sheet, TabularError> {
    let text = decode_text(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(sniff_delimiter(&text))
        .from_reader(text.as_bytes());
    let mut collector = Collector::new();
    let mut record = csv::StringRecord::new();
    // Lines are counted here, from each record's byte offset: the csv reader's own line count
    // does not follow CRLF line ends or blank lines the way a spreadsheet numbers rows.
    let bytes = text.as_bytes();
    let (mut cursor, mut line) = (0usize, 1usize);
    loop {
        let more = reader
            .read_record(&mut record)
            .map_err(|e| TabularError::Csv {
                reason: e.to_string(),
            })?;
        if !more {
            break;
        }
        let mut start = record
            .position()
            .map_or(cursor, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX))
            .min(bytes.len());
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > cursor {
            line += memchr::memchr_iter(b'\n', &bytes[cursor..start]).count();
            cursor = start;
        }
        let row = u32::try_from(line - 1).map_err(|_| TabularError::Csv {
            reason: "too many lines".into(),
        })?;
        for (c, field) in record.iter().enumerate() {
            let col = u32::try_from(c).unwrap_or(u32::MAX);
            collector.push("CSV", row, col, Cell::Text(field.to_string()))?;
        }
    }
    Ok(collector.finish(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_in_utf8_gb18030_and_utf16_reads_the_same() {
        let text = "主办单位名称,网站名称\r\n北京示例科技有限公司,\"示例网,\r\n新闻\"\r\n\r\n,只有第二列\r\n";
        let utf8 = read_sheets(text.as_bytes()).unwrap();
        assert_eq!(utf8.len(), 1);
        let rows = &utf8[0].rows;
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert_eq!(rows[1].number, 2);
        assert_eq!(rows[1].get(1), Some(&Cell::Text("示例网,\r\n新闻".into())));
        assert_eq!(
            rows[2].number, 5,
            "blank lines and line breaks in cells count"
        );
        assert_eq!(rows[2].get(0), None);
        let (gbk, _, _) = encoding_rs::GB18030.encode(text);
        assert_eq!(read_sheets(&gbk).unwrap(), utf8);
        let mut utf16 = vec![0xFF, 0xFE];
        for u in text.encode_utf16() {
            utf16.extend_from_slice(&u.to_le_bytes());
        }
        assert_eq!(read_sheets(&utf16).unwrap(), utf8);
        let bom: Vec<u8> = [&b"\xef\xbb\xbf"[..], text.as_bytes()].concat();
        assert_eq!(read_sheets(&bom).unwrap(), utf8);
    }

    #[test]
    fn tab_separated_text_is_read() {
        let s = read_sheets("a\tb,c\td\n1\t2,3\t4\n".as_bytes()).unwrap();
        assert_eq!(s[0].rows[1].get(1), Some(&Cell::Text("2,3".into())));
    }

    #[test]
    fn garbage_workbooks_are_errors_not_panics() {
        for bad in [
            &b"PK\x03\x04garbage"[..],
            &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0, 0][..],
        ] {
            let e = read_sheets(bad).unwrap_err();
            assert!(matches!(e, TabularError::Workbook { .. }), "{e}");
        }
        let big = vec![b'a'; MAX_UPLOAD_BYTES + 1];
        assert!(matches!(
            read_sheets(&big).unwrap_err(),
            TabularError::TooLarge { .. }
        ));
    }

    /// An `.xls` compound file whose workbook stream holds `records` (type, data).
    fn xls_with(records: &[(u16, Vec<u8>)]) -> Vec<u8> {
        use std::io::Write;
        let mut cfb = cfb::CompoundFile::create(Cursor::new(Vec::new())).unwrap();
        {
            let mut s = cfb.create_stream("/Workbook").unwrap();
            for (kind, data) in records {
                s.write_all(&kind.to_le_bytes()).unwrap();
                s.write_all(&(data.len() as u16).to_le_bytes()).unwrap();
                s.write_all(data).unwrap();
            }
        }
        cfb.flush().unwrap();
        cfb.into_inner().into_inner()
    }

    #[test]
    fn hostile_xls_dimensions_and_cells_are_refused_before_calamine() {
        let bof = (0x0809u16, vec![0, 6, 0x10, 0, 0, 0, 0, 0]);
        let eof = (0x000Au16, vec![]);
        // DIMENSIONS declaring 1,000,000 rows × 256 columns.
        let mut dims = Vec::new();
        dims.extend_from_slice(&0u32.to_le_bytes());
        dims.extend_from_slice(&1_000_000u32.to_le_bytes());
        dims.extend_from_slice(&0u16.to_le_bytes());
        dims.extend_from_slice(&256u16.to_le_bytes());
        dims.extend_from_slice(&0u16.to_le_bytes());
        let e = read_sheets(&xls_with(&[bof.clone(), (0x0200, dims), eof.clone()])).unwrap_err();
        assert!(e.to_string().contains("declares"), "{e}");
        // A NUMBER cell in column 60,000.
        let mut cell = Vec::new();
        cell.extend_from_slice(&0u16.to_le_bytes());
        cell.extend_from_slice(&60_000u16.to_le_bytes());
        cell.extend_from_slice(&[0; 10]);
        let e = read_sheets(&xls_with(&[
            bof.clone(),
            (0x0203, cell.clone()),
            eof.clone(),
        ]))
        .unwrap_err();
        assert!(e.to_string().contains("past the last column"), "{e}");
        // Two cells far apart: their span is what a dense range would allocate.
        let mut far = Vec::new();
        far.extend_from_slice(&65_000u16.to_le_bytes());
        far.extend_from_slice(&200u16.to_le_bytes());
        far.extend_from_slice(&[0; 10]);
        let mut near = cell;
        near[2..4].copy_from_slice(&0u16.to_le_bytes());
        let e = read_sheets(&xls_with(&[bof, (0x0203, near), (0x0203, far), eof])).unwrap_err();
        assert!(e.to_string().contains("span"), "{e}");
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(kind in 0u8..3, body in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            let mut bytes = match kind {
                0 => b"PK\x03\x04".to_vec(),
                1 => super::super::CFB_MAGIC.to_vec(),
                _ => Vec::new(),
            };
            bytes.extend_from_slice(&body);
            let _ = read_sheets(&bytes);
        }
    }

    #[test]
    fn xlsx_written_by_the_template_writer_reads_back() {
        let bytes = super::super::template::write(super::super::TableKind::Filing).unwrap();
        let sheets = read_sheets(&bytes).unwrap();
        let data = sheets
            .iter()
            .find(|s| s.name.as_deref() == Some("备案信息"))
            .unwrap();
        assert_eq!(data.rows[0].number, 1);
        assert_eq!(
            data.rows[0].get(0),
            Some(&Cell::Text("主办单位名称*".into()))
        );
    }
}
