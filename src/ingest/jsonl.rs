//! JSON lines extracts (survey and complaint apps): one object per line, nested objects read
//! through dotted paths (`alamat.desa`). A line that is not a JSON object is quarantined.

use std::io::{BufRead, BufReader};
use std::path::Path;

use serde_json::Value;

use super::mapping::NeededColumn;
use super::sink::{QuarantineCode, Sink};
use super::{IngestError, InputFile, missing_columns_error};
use crate::config::layout::header_key;
use crate::config::pipeline::DEFAULT_MAX_RECORD_BYTES;

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

/// The dotted paths found in the first `limit` lines of a file (for `terpadu check`).
pub fn sample_paths(path: &Path, limit: usize) -> Result<Vec<String>, IngestError> {
    let input = super::input::open_text(path, encoding_rs::UTF_8, "JSON lines", None)?;
    let mut reader = BufReader::with_capacity(1 << 16, input.reader);
    let mut paths = std::collections::BTreeSet::new();
    let (mut lines, mut objects, mut first) = (0usize, 0usize, None);
    let mut line = Vec::new();
    while lines < limit {
        let (n, _) =
            read_bounded_line(&mut reader, &mut line, DEFAULT_MAX_RECORD_BYTES).map_err(|e| {
                IngestError::Read {
                    path: path.to_path_buf(),
                    row: Some(lines as u64 + 1),
                    message: e.to_string(),
                }
            })?;
        if n == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() {
            continue;
        }
        lines += 1;
        first.get_or_insert_with(|| text.to_string());
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            objects += usize::from(value.is_object());
            collect_paths(&value, String::new(), &mut paths);
        }
    }
    if lines > 0 && objects == 0 {
        return Err(no_objects(
            path,
            lines as u64,
            first.as_deref().unwrap_or(""),
        ));
    }
    Ok(paths.into_iter().collect())
}

/// The error for a file none of whose lines is a JSON object, showing the shape of line 1:
/// its punctuation as written, letters as `a` and digits as `9`, so no name or NIK is shown.
fn no_objects(path: &Path, lines: u64, first: &str) -> IngestError {
    let shape: String = first
        .chars()
        .take(80)
        .map(|c| match c {
            c if c.is_alphabetic() => 'a',
            c if c.is_numeric() => '9',
            c => c,
        })
        .collect();
    let shown = crate::redact::escape_controls(&shape);
    let hint = if first.starts_with('[') {
        "it looks like one JSON array: write one object per line (jq -c '.[]' FILE)"
    } else if first.contains([',', ';', '|', '\t']) && !first.starts_with('{') {
        "it looks like CSV: set format = { type = \"csv\", ... } for this source"
    } else {
        "a JSON lines file holds one {...} object per line"
    };
    IngestError::Read {
        path: path.to_path_buf(),
        row: Some(1),
        message: format!(
            "none of the {lines} line(s) read is a JSON object; line 1 has the shape `{shown}`: {hint}"
        ),
    }
}

/// Reads up to the next line break into `line`, keeping at most `max` bytes; returns the bytes
/// consumed (0 at the end) and whether the line was longer than `max`. Memory stays bounded on
/// a file without line breaks.
fn read_bounded_line(
    reader: &mut impl BufRead,
    line: &mut Vec<u8>,
    max: u64,
) -> std::io::Result<(u64, bool)> {
    line.clear();
    let (mut consumed, mut too_long) = (0u64, false);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok((consumed, too_long));
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..=i], true),
            None => (buf, false),
        };
        let room = (max as usize).saturating_sub(line.len());
        if chunk.len() > room {
            too_long = true;
        }
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let n = chunk.len();
        reader.consume(n);
        consumed += n as u64;
        if done {
            return Ok((consumed, too_long));
        }
    }
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
pub fn read_file(
    path: &Path,
    max_record_bytes: u64,
    sink: &mut Sink<'_>,
) -> Result<InputFile, IngestError> {
    let input = super::input::open_text(
        path,
        encoding_rs::UTF_8,
        "JSON lines",
        Some(sink.progress.clone()),
    )?;
    let fingerprint = input.fingerprint.clone();
    let mut reader = BufReader::with_capacity(1 << 20, input.reader);
    let columns = sink.columns().to_vec();
    let mut seen = vec![false; columns.len()];
    let mut line = Vec::new();
    let mut line_number = 0u64;
    let mut rows_read = 0u64;
    let (mut objects, mut first) = (0u64, None::<String>);
    loop {
        let (n, too_long) =
            read_bounded_line(&mut reader, &mut line, max_record_bytes).map_err(|e| {
                IngestError::Read {
                    path: path.to_path_buf(),
                    row: Some(line_number + 1),
                    message: e.to_string(),
                }
            })?;
        if n == 0 {
            break;
        }
        line_number += 1;
        if too_long {
            rows_read += 1;
            sink.quarantine(
                line_number,
                QuarantineCode::RecordTooLong,
                format!(
                    "line {line_number} is {n} bytes, longer than format.max_record_bytes ({max_record_bytes}); the rest of the file was read"
                ),
                Some(String::from_utf8_lossy(&line).chars().take(200).collect()),
            )?;
            continue;
        }
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
        first.get_or_insert_with(|| text.to_string());
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
        objects += 1;
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
    if rows_read > 0 && objects == 0 {
        return Err(no_objects(path, rows_read, first.as_deref().unwrap_or("")));
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
    drop(reader);
    Ok(fingerprint.finish(path, rows_read))
}
