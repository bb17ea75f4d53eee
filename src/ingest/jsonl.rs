//! JSON lines extracts (survey and complaint apps): one object per line, nested objects read
//! through dotted paths (`alamat.desa`). A line that is not a JSON object is quarantined.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::mapping::NeededColumn;
use super::sink::{QuarantineCode, Sink};
use super::{HashingReader, IngestError, InputFile, missing_columns_error};
use crate::config::layout::header_key;

/// Follows a dotted path into a JSON object; keys match exactly, else ignoring case and
/// punctuation like headers do (`NIK` for `nik`).
fn lookup_path<'v>(object: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.').try_fold(object, |value, key| {
        let map = value.as_object()?;
        map.get(key).or_else(|| {
            let wanted = header_key(key);
            map.iter()
                .find(|(name, _)| header_key(name) == wanted)
                .map(|(_, v)| v)
        })
    })
}

/// The value of a needed column: its path, else one of its aliases.
fn lookup<'v>(object: &'v Value, column: &NeededColumn) -> Option<&'v Value> {
    std::iter::once(&column.column)
        .chain(&column.aliases)
        .find_map(|path| lookup_path(object, path))
}

/// Renders a JSON value as cell text; floats are flagged numeric (digits may be lost).
fn value_text(value: &Value) -> Option<(String, bool)> {
    match value {
        Value::Null => None,
        Value::String(s) => Some((s.clone(), false)),
        Value::Bool(b) => Some((b.to_string(), false)),
        // Integers parse exactly (u64/i64); only floats may have lost digits. Whole floats are
        // written without `.0`, as spreadsheets show them.
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() && f.fract() == 0.0 && f.abs() < 1e17 => {
                Some((format!("{f:.0}"), true))
            }
            _ => Some((n.to_string(), n.is_f64())),
        },
        other => Some((other.to_string(), false)),
    }
}

/// The dotted paths found in the first `limit` objects of a file (for `terpadu check`).
pub fn sample_paths(path: &Path, limit: usize) -> Result<Vec<String>, IngestError> {
    let file = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut paths = std::collections::BTreeSet::new();
    for line in BufReader::new(file).lines().take(limit) {
        let Ok(line) = line else { continue };
        if let Ok(value) = serde_json::from_str::<Value>(&line) {
            collect_paths(&value, String::new(), &mut paths);
        }
    }
    Ok(paths.into_iter().collect())
}

fn collect_paths(value: &Value, prefix: String, out: &mut std::collections::BTreeSet<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let path = if prefix.is_empty() {
                key.clone()
            } else {
                format!("{prefix}.{key}")
            };
            collect_paths(child, path.clone(), out);
            out.insert(path);
        }
    }
}

/// Streams one JSON lines file into the sink.
pub fn read_file(path: &Path, sink: &mut Sink<'_>) -> Result<InputFile, IngestError> {
    let file = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let mut reader = BufReader::with_capacity(
        1 << 20,
        HashingReader::new(file, Some(sink.progress.clone())),
    );
    let columns = sink.columns().to_vec();
    let mut seen = vec![false; columns.len()];
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut rows_read = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| IngestError::Read {
                path: path.to_path_buf(),
                row: Some(line_number + 1),
                message: e.to_string(),
            })?;
        if n == 0 {
            break;
        }
        line_number += 1;
        let text = match std::str::from_utf8(&line) {
            Ok(text) => text.trim_start_matches('\u{feff}').trim(),
            Err(e) => {
                rows_read += 1;
                sink.quarantine(
                    line_number,
                    QuarantineCode::InvalidEncoding,
                    format!("not valid UTF-8: {e}"),
                    Some(String::from_utf8_lossy(&line).trim_end().to_string()),
                )?;
                continue;
            }
        };
        if text.is_empty() {
            continue;
        }
        rows_read += 1;
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                sink.quarantine(
                    line_number,
                    QuarantineCode::InvalidJson,
                    format!("not valid JSON: {e}"),
                    Some(text.to_string()),
                )?;
                continue;
            }
        };
        if !value.is_object() {
            sink.quarantine(
                line_number,
                QuarantineCode::NotAnObject,
                "a JSON value that is not an object".into(),
                Some(text.to_string()),
            )?;
            continue;
        }
        let mut numeric = 0u64;
        let cells: Vec<Option<(String, bool)>> = columns
            .iter()
            .zip(seen.iter_mut())
            .map(|(column, seen)| {
                let found = lookup(&value, column);
                *seen |= found.is_some();
                found.and_then(value_text)
            })
            .collect();
        for (slot, cell) in cells.iter().enumerate() {
            if matches!(cell, Some((_, true))) && slot < 64 {
                numeric |= 1 << slot;
            }
        }
        let values: Vec<Option<&str>> = cells
            .iter()
            .map(|c| c.as_ref().map(|(t, _)| t.as_str()))
            .collect();
        sink.row(line_number, &values, numeric)?;
    }
    // A path that no object has is a layout mistake, not missing data.
    let missing: Vec<String> = columns
        .iter()
        .zip(&seen)
        .filter(|(_, seen)| !**seen)
        .map(|(c, _)| c.describe())
        .collect();
    if rows_read > 0 && !missing.is_empty() {
        return Err(missing_columns_error(
            sink.source_name(),
            path,
            missing,
            &sample_paths(path, 200)?,
            Some(
                "JSON lines columns are dotted paths such as alamat.desa; no line has these".into(),
            ),
        ));
    }
    let hashing = reader.into_inner();
    Ok(hashing.finish(path, rows_read))
}
