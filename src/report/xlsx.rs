//! One XLSX workbook per report run, for program managers who live in Excel: a sheet per
//! report, bold frozen header, column widths from the content, identifiers as text (so Excel
//! never turns a NIK into `3.60101E+15`), numbers as numbers.

use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use rust_xlsxwriter::{Format, Workbook, XlsxError};

/// Excel's row limit; longer reports are cut with a note (the Parquet and CSV are complete).
const MAX_ROWS: usize = 1_048_574;

/// The text of a cell: lists joined with `; `, nulls empty.
pub fn cell_text(column: &ArrayRef, row: usize) -> String {
    if column.is_null(row) {
        return String::new();
    }
    match column.data_type() {
        DataType::List(_) => {
            let list = column.as_list::<i32>().value(row);
            (0..list.len())
                .filter(|&i| list.is_valid(i))
                .map(|i| arrow::util::display::array_value_to_string(&list, i).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("; ")
        }
        _ => arrow::util::display::array_value_to_string(column, row).unwrap_or_default(),
    }
}

fn numeric(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
    )
}

/// Writes `sheets` (title, rows) into one workbook at `path`.
pub fn write_workbook(path: &Path, sheets: &[(&str, &RecordBatch)]) -> Result<(), XlsxError> {
    let mut workbook = Workbook::new();
    let header = Format::new().set_bold().set_background_color("#DDE7F0");
    for (title, batch) in sheets {
        let sheet = workbook.add_worksheet_with_constant_memory()?;
        // Sheet names: at most 31 characters, no []:*?/\.
        let name: String = title
            .chars()
            .filter(|c| !"[]:*?/\\".contains(*c))
            .take(31)
            .collect();
        sheet.set_name(&name)?;
        let schema = batch.schema();
        let mut widths: Vec<usize> = schema.fields().iter().map(|f| f.name().len()).collect();
        let rows = batch.num_rows().min(MAX_ROWS);
        for (c, field) in schema.fields().iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, field.name(), &header)?;
        }
        for row in 0..rows {
            for (c, column) in batch.columns().iter().enumerate() {
                if column.is_null(row) {
                    continue;
                }
                let r = (row + 1) as u32;
                let number = numeric(column.data_type())
                    .then(|| cell_text(column, row).parse::<f64>().ok())
                    .flatten();
                if let Some(value) = number {
                    sheet.write_number(r, c as u16, value)?;
                    widths[c] = widths[c].max(8);
                } else {
                    let text = excel_text(cell_text(column, row));
                    widths[c] = widths[c].max(text.chars().count().min(60));
                    sheet.write_string(r, c as u16, &text)?;
                }
            }
        }
        if batch.num_rows() > MAX_ROWS {
            sheet.write_string(
                (MAX_ROWS + 1) as u32,
                0,
                "(cut at Excel's row limit; the Parquet and CSV files hold every row)",
            )?;
        }
        for (c, width) in widths.iter().enumerate() {
            sheet.set_column_width(c as u16, (*width as f64 + 2.0).min(62.0))?;
        }
        sheet.set_freeze_panes(1, 0)?;
    }
    workbook.save(path)
}

/// The most characters written to one cell: Excel refuses more than 32,767.
const MAX_CELL_CHARS: usize = 32_000;

/// `text`, cut with a marker when longer than Excel allows, so one odd value never stops the
/// workbook (the Parquet and CSV files keep it whole).
fn excel_text(text: String) -> String {
    let chars = text.chars().count();
    if chars <= MAX_CELL_CHARS {
        return text;
    }
    let mut out: String = text.chars().take(MAX_CELL_CHARS).collect();
    out.push_str(&format!(
        " [... cut: {chars} characters in all; the Parquet and CSV files hold the whole value]"
    ));
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::StringArray;
    use calamine::{Reader, open_workbook_auto};

    use super::*;

    #[test]
    fn a_value_longer_than_excel_allows_is_cut_with_a_marker_not_a_failure() {
        let long = "A".repeat(40_000);
        let batch = RecordBatch::try_from_iter([(
            "full_name",
            Arc::new(StringArray::from(vec![long.as_str(), "SITI"])) as ArrayRef,
        )])
        .expect("batch");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.xlsx");
        write_workbook(&path, &[("duplicates", &batch)]).expect("a workbook despite the value");
        let mut workbook = open_workbook_auto(&path).expect("open");
        let range = workbook.worksheet_range("duplicates").expect("sheet");
        let cell = range.get_value((1, 0)).expect("cell").to_string();
        assert!(
            cell.starts_with(&"A".repeat(MAX_CELL_CHARS)),
            "{}",
            cell.len()
        );
        assert!(cell.ends_with("the Parquet and CSV files hold the whole value]"));
        assert!(cell.contains("40000 characters in all"));
        assert_eq!(range.get_value((2, 0)).expect("cell").to_string(), "SITI");
    }
}
