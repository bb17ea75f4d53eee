//! Excel workbooks (provincial spreadsheets): title rows above the header, free-form headers,
//! and 16-digit numbers that Excel stored as numbers (flagged, never trusted).
//!
//! A workbook is not a stream: calamine reads the sheet into memory. Spreadsheets top out at
//! 1,048,576 rows, so that bounds memory; extracts larger than that arrive as CSV.

use std::fs::File;
use std::path::Path;

use calamine::{Data, Reader, open_workbook_auto};

use super::sink::{QuarantineCode, Sink};
use super::{HashingReader, IngestError, InputFile, missing_columns_error};
use crate::config::layout::header_key;
use crate::ingest::mapping::{NeededColumn, resolve_columns};

/// How many top rows are searched for the header when the pipeline does not say.
const HEADER_SEARCH_ROWS: usize = 20;

/// A sheet's rows as text, with which cells were numbers.
struct SheetRows {
    /// Excel row number of `rows[0]` (1-based).
    first_row: u64,
    rows: Vec<Vec<(String, bool)>>,
}

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
    let range = workbook
        .worksheet_range(&name)
        .map_err(|e| sheet_error(format!("sheet '{name}': {e}")))?;
    let first_row = range.start().map_or(1, |(row, _)| u64::from(row) + 1);
    let first_col = range.start().map_or(0, |(_, col)| col as usize);
    let rows = range
        .rows()
        .map(|cells| {
            // Pad to absolute column positions so headers and values line up.
            let mut out: Vec<(String, bool)> = vec![(String::new(), false); first_col];
            out.extend(cells.iter().map(cell_text));
            out
        })
        .collect();
    Ok(SheetRows { first_row, rows })
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

fn header_of(row: &[(String, bool)]) -> Vec<String> {
    row.iter().map(|(t, _)| t.clone()).collect()
}

fn find_header(
    sheet: &SheetRows,
    columns: &[NeededColumn],
    header_row: Option<u32>,
) -> Option<usize> {
    if let Some(n) = header_row {
        let index = u64::from(n).checked_sub(sheet.first_row)?;
        return usize::try_from(index)
            .ok()
            .filter(|i| *i < sheet.rows.len());
    }
    sheet.rows.iter().take(HEADER_SEARCH_ROWS).position(|row| {
        let header = header_of(row);
        columns.iter().all(|c| c.position_in(&header).is_some())
    })
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
    sheet
        .rows
        .iter()
        .take(HEADER_SEARCH_ROWS)
        .enumerate()
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
                guess.map_or(0, |i| sheet_rows.first_row + i as u64)
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
    for (offset, row) in sheet_rows.rows.iter().enumerate().skip(header_index + 1) {
        let excel_row = sheet_rows.first_row + offset as u64;
        if row.iter().all(|(t, _)| t.trim().is_empty()) {
            sink.blank_row();
            continue;
        }
        rows_read += 1;
        // A header repeated further down (multi-page exports) is not a person.
        if row.len() >= header_keys.len()
            && row
                .iter()
                .zip(&header_keys)
                .all(|((text, _), key)| header_key(text) == *key)
        {
            let raw = row
                .iter()
                .map(|(t, _)| t.as_str())
                .collect::<Vec<_>>()
                .join(" | ");
            sink.quarantine(
                excel_row,
                QuarantineCode::RepeatedHeader,
                "the header row repeated inside the sheet".into(),
                Some(raw),
            )?;
            continue;
        }
        let mut numeric = 0u64;
        let values: Vec<Option<&str>> = positions
            .iter()
            .enumerate()
            .map(|(slot, pos)| {
                let (text, is_number) = pos.and_then(|p| row.get(p))?;
                if *is_number && slot < 64 {
                    numeric |= 1 << slot;
                }
                Some(text.as_str())
            })
            .collect();
        sink.row(excel_row, &values, numeric)?;
    }
    Ok(hashing.finish(path, rows_read))
}
