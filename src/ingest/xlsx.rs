//! Excel workbooks (provincial spreadsheets): title rows above the header, free-form headers,
//! and 16-digit numbers that Excel stored as numbers (flagged, never trusted).
//!
//! A workbook is not a stream: the sheet's cells are held in memory, sparsely (only cells with
//! content), so a stray cell far out costs nothing. Spreadsheets top out at 1,048,576 rows,
//! which bounds memory; extracts larger than that arrive as CSV. Vertical merges (a Kecamatan
//! merged over its block of rows) are filled down; formulas without a saved result are
//! flagged, never read as blank.

use std::fs::File;
use std::path::Path;

use std::collections::BTreeMap;

use calamine::{Data, Dimensions, Reader, Sheets, open_workbook_auto};

use super::sink::{QuarantineCode, Sink};
use super::{HashingReader, IngestError, InputFile, missing_columns_error};
use crate::config::layout::header_key;
use crate::ingest::mapping::{NeededColumn, resolve_columns};

/// How many top rows are searched for the header when the pipeline does not say.
const HEADER_SEARCH_ROWS: usize = 20;

/// One non-empty cell: its text, and whether it was a number or a formula with no saved result.
#[derive(Debug, Clone)]
struct SheetCell {
    col: u32,
    text: String,
    numeric: bool,
    formula_without_value: bool,
}

/// One sheet row that has cells, sorted by column.
#[derive(Debug, Clone)]
struct SheetRow {
    /// Excel row number (1-based).
    number: u64,
    cells: Vec<SheetCell>,
}

impl SheetRow {
    fn get(&self, col: usize) -> Option<&SheetCell> {
        let col = u32::try_from(col).ok()?;
        self.cells
            .binary_search_by_key(&col, |c| c.col)
            .ok()
            .map(|i| &self.cells[i])
    }

    fn is_blank(&self) -> bool {
        self.cells
            .iter()
            .all(|c| c.text.trim().is_empty() && !c.formula_without_value)
    }
}

/// A sheet's rows as text, sparse: only rows and cells that hold something. A stray cell at
/// `XFD1048576` costs one cell, not a dense 17-billion-cell grid (calamine's `Range`).
struct SheetRows {
    rows: Vec<SheetRow>,
    /// Cells filled down from the top-left cell of a vertical merge.
    merged_filled: u64,
}

/// The widest merge filled down (rows); larger merges are left as they are and reported.
const MAX_MERGE_ROWS: u32 = 1 << 20;

fn load_sheet(path: &Path, sheet: Option<&str>) -> Result<SheetRows, IngestError> {
    let sheet_error = |message: String| IngestError::Sheet {
        path: path.to_path_buf(),
        message,
    };
    let mut workbook = open_workbook_auto(path).map_err(|e| sheet_error(e.to_string()))?;
    let names = workbook.sheet_names();
    let name = match sheet {
        Some(name) => {
            if !names.iter().any(|n| n == name) {
                return Err(sheet_error(format!(
                    "no sheet named '{name}' (sheets: {})",
                    names.join(", ")
                )));
            }
            name.to_string()
        }
        None => names
            .first()
            .cloned()
            .ok_or_else(|| sheet_error("the workbook has no sheets".into()))?,
    };
    let in_sheet = |e: &dyn std::fmt::Display| sheet_error(format!("sheet '{name}': {e}"));
    let mut cells: BTreeMap<u32, Vec<SheetCell>> = BTreeMap::new();
    let mut push = |(row, col): (u32, u32), value: Data, formula: bool| {
        let (text, numeric) = cell_text(&value);
        let formula_without_value = formula && matches!(value, Data::Empty);
        if text.is_empty() && !formula_without_value {
            return;
        }
        cells.entry(row).or_default().push(SheetCell {
            col,
            text,
            numeric,
            formula_without_value,
        });
    };
    let merges = match &mut workbook {
        Sheets::Xlsx(xlsx) => {
            let merges = xlsx
                .merge_cells_by_sheet_name(&name)
                .map_err(|e| in_sheet(&e))?;
            let mut reader = xlsx
                .worksheet_cells_reader(&name)
                .map_err(|e| in_sheet(&e))?;
            while let Some(cell) = reader
                .next_cell_with_formula_metadata()
                .map_err(|e| in_sheet(&e))?
            {
                push(cell.pos, Data::from(cell.value), cell.formula.is_some());
            }
            merges
        }
        Sheets::Xlsb(xlsb) => {
            let mut reader = xlsb
                .worksheet_cells_reader(&name)
                .map_err(|e| in_sheet(&e))?;
            while let Some(cell) = reader.next_cell().map_err(|e| in_sheet(&e))? {
                let pos = cell.get_position();
                push(pos, Data::from(cell.get_value().clone()), false);
            }
            Vec::new()
        }
        // XLS sheets are at most 65,536 x 256 cells and ODS is a dense format: the range is
        // bounded by what the file itself spells out.
        other => {
            let merges = match other {
                Sheets::Xls(xls) => xls
                    .merge_cells_by_sheet_name(&name)
                    .map_err(|e| in_sheet(&e))?,
                _ => Vec::new(),
            };
            let range = other.worksheet_range(&name).map_err(|e| in_sheet(&e))?;
            for (row, col, value) in range.used_cells() {
                let start = range.start().unwrap_or((0, 0));
                push(
                    (start.0 + row as u32, start.1 + col as u32),
                    value.clone(),
                    false,
                );
            }
            merges
        }
    };
    for row in cells.values_mut() {
        row.sort_by_key(|c| c.col);
        row.dedup_by_key(|c| c.col);
    }
    let merged_filled = fill_merges_down(&mut cells, &merges, path);
    let rows = cells
        .into_iter()
        .map(|(row, cells)| SheetRow {
            number: u64::from(row) + 1,
            cells,
        })
        .collect();
    Ok(SheetRows {
        rows,
        merged_filled,
    })
}

/// Copies the top-left value of each vertical merge (Kabupaten or Kecamatan merged over a
/// block of rows) into the empty cells of its first column below it. Horizontal merges are
/// left alone: copying a name across would put it into the NIK column.
fn fill_merges_down(
    cells: &mut BTreeMap<u32, Vec<SheetCell>>,
    merges: &[Dimensions],
    path: &Path,
) -> u64 {
    let mut filled = 0u64;
    for merge in merges {
        let ((top, col), (bottom, _)) = (merge.start, merge.end);
        if bottom <= top {
            continue;
        }
        if bottom - top > MAX_MERGE_ROWS {
            tracing::warn!(
                file = %path.display(),
                "a merged range of {} rows is not filled down (more than {MAX_MERGE_ROWS})",
                bottom - top + 1
            );
            continue;
        }
        let Some(source) = cells.get(&top).and_then(|row| {
            row.binary_search_by_key(&col, |c| c.col)
                .ok()
                .map(|i| row[i].clone())
        }) else {
            continue;
        };
        for row in top + 1..=bottom {
            let row_cells = cells.entry(row).or_default();
            match row_cells.binary_search_by_key(&col, |c| c.col) {
                Ok(i) if !row_cells[i].text.trim().is_empty() => {}
                Ok(i) => row_cells[i] = source.clone(),
                Err(i) => row_cells.insert(i, source.clone()),
            }
            filled += 1;
        }
    }
    filled
}

/// Renders a cell as text; numbers as Excel holds them (integers without `.0`).
fn cell_text(cell: &Data) -> (String, bool) {
    match cell {
        Data::Empty => (String::new(), false),
        Data::String(s) => (s.clone(), false),
        Data::Int(i) => (i.to_string(), true),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e17 {
                (format!("{f:.0}"), true)
            } else {
                (f.to_string(), true)
            }
        }
        Data::Bool(b) => (b.to_string(), false),
        Data::DateTime(dt) => match dt.as_datetime() {
            Some(t) => (t.date().format("%Y-%m-%d").to_string(), false),
            None => (dt.as_f64().to_string(), true),
        },
        Data::DateTimeIso(s) | Data::DurationIso(s) => (s.clone(), false),
        Data::Error(e) => (format!("#{e:?}"), false),
    }
}

/// A row's texts at their column positions (up to its last cell; Excel caps it at 16,384).
fn header_of(row: &SheetRow) -> Vec<String> {
    let width = row.cells.last().map_or(0, |c| c.col as usize + 1);
    let mut out = vec![String::new(); width];
    for cell in &row.cells {
        out[cell.col as usize] = cell.text.clone();
    }
    out
}

/// The rows the header is searched among: the top [`HEADER_SEARCH_ROWS`] rows of the sheet,
/// counted from its first row with content.
fn header_candidates(sheet: &SheetRows) -> impl Iterator<Item = (usize, &SheetRow)> {
    let first = sheet.rows.first().map_or(1, |r| r.number);
    sheet
        .rows
        .iter()
        .enumerate()
        .take_while(move |(_, r)| r.number < first + HEADER_SEARCH_ROWS as u64)
}

fn find_header(
    sheet: &SheetRows,
    columns: &[NeededColumn],
    header_row: Option<u32>,
) -> Option<usize> {
    if let Some(n) = header_row {
        return sheet.rows.iter().position(|r| r.number == u64::from(n));
    }
    header_candidates(sheet)
        .find(|(_, row)| {
            let header = header_of(row);
            columns.iter().all(|c| c.position_in(&header).is_some())
        })
        .map(|(i, _)| i)
}

/// Reads the header row (for `terpadu check`).
pub fn read_header(
    path: &Path,
    sheet: Option<&str>,
    header_row: Option<u32>,
    columns: &[NeededColumn],
) -> Result<Vec<String>, IngestError> {
    let rows = load_sheet(path, sheet)?;
    let index = find_header(&rows, columns, header_row)
        .or_else(|| best_header_guess(&rows, columns))
        .ok_or_else(|| IngestError::EmptyFile {
            path: path.to_path_buf(),
        })?;
    Ok(header_of(&rows.rows[index]))
}

/// The top row matching most needed columns, to name the missing ones in an error.
fn best_header_guess(sheet: &SheetRows, columns: &[NeededColumn]) -> Option<usize> {
    header_candidates(sheet)
        .max_by_key(|(i, row)| {
            let header = header_of(row);
            let hits = columns
                .iter()
                .filter(|c| c.position_in(&header).is_some())
                .count();
            (hits, std::cmp::Reverse(*i))
        })
        .map(|(i, _)| i)
}

/// Reads one workbook into the sink.
pub fn read_file(
    path: &Path,
    sheet: Option<&str>,
    header_row: Option<u32>,
    sink: &mut Sink<'_>,
) -> Result<InputFile, IngestError> {
    // Fingerprint the bytes first (calamine reads the zip itself).
    let file = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hashing = HashingReader::new(file, Some(sink.progress.clone()));
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let sheet_rows = load_sheet(path, sheet)?;
    let columns = sink.columns().to_vec();
    let Some(header_index) = find_header(&sheet_rows, &columns, header_row) else {
        let guess = best_header_guess(&sheet_rows, &columns);
        let header = guess
            .map(|i| header_of(&sheet_rows.rows[i]))
            .unwrap_or_default();
        let missing = resolve_columns(&columns, &header).err().unwrap_or_default();
        let hint = Some(match header_row {
            Some(n) => format!("row {n} was declared as the header (format.header_row)"),
            None => format!(
                "no row among the top {HEADER_SEARCH_ROWS} has every column; the closest is row {}",
                guess.map_or(0, |i| sheet_rows.rows[i].number)
            ),
        });
        return Err(missing_columns_error(
            sink.source_name(),
            path,
            missing,
            &header,
            hint,
        ));
    };
    let header = header_of(&sheet_rows.rows[header_index]);
    // A declared header row is taken as declared: check it has every column.
    let positions = resolve_columns(&columns, &header).map_err(|missing| {
        let hint = header_row.map(|n| {
            format!("row {n} was declared as the header (format.header_row); is it the right row?")
        });
        missing_columns_error(sink.source_name(), path, missing, &header, hint)
    })?;
    let header_keys: Vec<String> = header.iter().map(|h| header_key(h)).collect();
    let mut rows_read = 0u64;
    let mut formula_cells = 0u64;
    let mut previous = sheet_rows.rows[header_index].number;
    for row in &sheet_rows.rows[header_index + 1..] {
        // Rows absent from the sheet between two rows with content are blank rows.
        for _ in previous + 1..row.number {
            sink.blank_row();
        }
        previous = row.number;
        let excel_row = row.number;
        if row.is_blank() {
            sink.blank_row();
            continue;
        }
        rows_read += 1;
        // A header repeated further down (multi-page exports) is not a person.
        // Compared cell by cell, stopping at the first difference: no copy of the row.
        let repeats_header = header_keys
            .iter()
            .enumerate()
            .all(|(i, key)| header_key(row.get(i).map_or("", |c| c.text.as_str())) == *key);
        if repeats_header {
            sink.quarantine(
                excel_row,
                QuarantineCode::RepeatedHeader,
                "the header row repeated inside the sheet".into(),
                Some(header_of(row).join(" | ")),
            )?;
            continue;
        }
        let mut numeric = 0u64;
        let mut formulas = 0u64;
        let values: Vec<Option<&str>> = positions
            .iter()
            .enumerate()
            .map(|(slot, pos)| {
                let cell = pos.and_then(|p| row.get(p))?;
                if cell.numeric && slot < 64 {
                    numeric |= 1 << slot;
                }
                if cell.formula_without_value && slot < 64 {
                    formulas |= 1 << slot;
                    formula_cells += 1;
                }
                Some(cell.text.as_str())
            })
            .collect();
        sink.row_with_formulas(excel_row, &values, numeric, formulas)?;
    }
    if formula_cells > 0 {
        tracing::warn!(
            source = sink.source_name(),
            file = %path.display(),
            cells = formula_cells,
            "{formula_cells} cell(s) hold formulas with no saved result (the workbook was written by a script and never recalculated); their rows are flagged formula_without_value. Open and save the workbook in Excel, or export values, to read them"
        );
    }
    if sheet_rows.merged_filled > 0 {
        tracing::info!(
            source = sink.source_name(),
            file = %path.display(),
            cells = sheet_rows.merged_filled,
            "filled {} cell(s) down from merged ranges",
            sheet_rows.merged_filled
        );
    }
    Ok(hashing.finish(path, rows_read))
}
