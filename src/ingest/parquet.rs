//! Parquet extracts: columns are cast to text and go through the same layout as any other
//! source, so a Parquet delivery is cleaned and validated like a CSV one. Row numbers are the
//! 1-based position in the file.

use std::fs::File;
use std::path::Path;

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::mapping::resolve_columns;
use super::sink::{QuarantineCode, Sink};
use super::{HashingReader, IngestError, InputFile, missing_columns_error};

fn open(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>, IngestError> {
    let file = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| IngestError::Read {
        path: path.to_path_buf(),
        row: None,
        message: e.to_string(),
    })
}

/// Column names of a Parquet file (for `terpadu check`).
pub fn read_header(path: &Path) -> Result<Vec<String>, IngestError> {
    Ok(open(path)?
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect())
}

/// Reads one Parquet file into the sink.
pub fn read_file(path: &Path, sink: &mut Sink<'_>) -> Result<InputFile, IngestError> {
    // Fingerprint the bytes (the Parquet reader seeks, so hash separately).
    let file = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut hashing = HashingReader::new(file, Some(sink.progress.clone()));
    std::io::copy(&mut hashing, &mut std::io::sink()).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let builder = open(path)?;
    let header: Vec<String> = builder
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let columns = sink.columns().to_vec();
    let positions = resolve_columns(&columns, &header).map_err(|missing| {
        missing_columns_error(sink.source_name(), path, missing, &header, None)
    })?;
    let read_error = |message: String| IngestError::Read {
        path: path.to_path_buf(),
        row: None,
        message,
    };
    let reader = builder.build().map_err(|e| read_error(e.to_string()))?;
    let mut row_number = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| read_error(e.to_string()))?;
        let mut text_columns = Vec::with_capacity(positions.len());
        let mut is_float = Vec::with_capacity(positions.len());
        // Byte columns (text written without the String annotation) whose bytes are not
        // UTF-8: the cast turns them into nulls, which would pass for blank names.
        let mut undecodable: Vec<(usize, arrow::array::ArrayRef)> = Vec::new();
        for pos in positions.iter().flatten() {
            let column = batch.column(*pos);
            is_float.push(matches!(
                column.data_type(),
                DataType::Float16 | DataType::Float32 | DataType::Float64
            ));
            let text = cast(column, &DataType::Utf8).map_err(|e| read_error(e.to_string()))?;
            if matches!(
                column.data_type(),
                DataType::Binary | DataType::LargeBinary | DataType::BinaryView
            ) && text.null_count() > column.null_count()
            {
                undecodable.push((*pos, column.clone()));
            }
            text_columns.push(text);
        }
        for row in 0..batch.num_rows() {
            row_number += 1;
            if let Some((pos, _)) = undecodable
                .iter()
                .find(|(_, column)| column.is_valid(row) && !utf8_at(column, row))
            {
                sink.quarantine(
                    row_number,
                    QuarantineCode::InvalidEncoding,
                    format!(
                        "column {} holds bytes that are not UTF-8 text (the file's writer stored text without an encoding); re-export it as UTF-8",
                        header[*pos]
                    ),
                    None,
                )?;
                continue;
            }
            let mut numeric = 0u64;
            let values: Vec<Option<&str>> = text_columns
                .iter()
                .enumerate()
                .map(|(slot, array)| {
                    let strings = array.as_string::<i32>();
                    if strings.is_null(row) {
                        return None;
                    }
                    if is_float[slot] && slot < 64 {
                        numeric |= 1 << slot;
                    }
                    Some(strings.value(row))
                })
                .collect();
            sink.row(row_number, &values, numeric)?;
        }
    }
    Ok(hashing.finish(path, row_number))
}

/// Whether the value at `row` of a byte column is UTF-8 text.
fn utf8_at(column: &arrow::array::ArrayRef, row: usize) -> bool {
    let bytes = match column.data_type() {
        DataType::Binary => column.as_binary::<i32>().value(row),
        DataType::LargeBinary => column.as_binary::<i64>().value(row),
        DataType::BinaryView => column.as_binary_view().value(row),
        _ => return true,
    };
    std::str::from_utf8(bytes).is_ok()
}
