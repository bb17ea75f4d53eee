//! Delimited text extracts: streaming, with a declared encoding, quarantining rows that cannot
//! be read (wrong number of fields, bytes invalid in the declared encoding).

use std::borrow::Cow;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use encoding_rs::{Encoding, UTF_8};

use super::mapping::resolve_columns;
use super::sink::{QuarantineCode, Sink};
use super::{HashingReader, IngestError, InputFile, missing_columns_error};
use crate::config::layout::header_key;
use crate::config::pipeline::delimiter_byte;

/// How to read one CSV source.
#[derive(Debug, Clone, Copy)]
pub struct CsvOptions {
    /// Field delimiter byte.
    pub delimiter: u8,
    /// Quote byte.
    pub quote: u8,
    /// Declared text encoding.
    pub encoding: &'static Encoding,
}

impl CsvOptions {
    /// Options from the pipeline's format settings (already checked by `config`).
    pub fn from_config(delimiter: &str, quote: &str, encoding: &str) -> Self {
        CsvOptions {
            delimiter: delimiter_byte(delimiter).unwrap_or(b','),
            quote: delimiter_byte(quote).unwrap_or(b'"'),
            encoding: Encoding::for_label(encoding.as_bytes()).unwrap_or(UTF_8),
        }
    }
}

/// Tracks where each non-empty physical line starts, so a record's line number is exact for
/// CRLF files and after blank lines (the csv crate's own positions are not, there).
pub struct LineTracker<R> {
    inner: R,
    offset: u64,
    line: u64,
    at_line_start: bool,
    starts: std::collections::VecDeque<(u64, u64)>,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            offset: 0,
            line: 1,
            at_line_start: true,
            starts: std::collections::VecDeque::new(),
        }
    }

    /// The line number of the record whose first byte is at or after byte `offset`.
    fn line_at(&mut self, offset: u64) -> Option<u64> {
        while self
            .starts
            .front()
            .is_some_and(|(start, _)| *start < offset)
        {
            self.starts.pop_front();
        }
        self.starts.front().map(|(_, line)| *line)
    }

    fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: std::io::Read> std::io::Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for byte in &buf[..n] {
            match byte {
                b'\n' => {
                    self.line += 1;
                    self.at_line_start = true;
                }
                b'\r' => {}
                _ if self.at_line_start => {
                    self.starts.push_back((self.offset, self.line));
                    self.at_line_start = false;
                }
                _ => {}
            }
            self.offset += 1;
        }
        Ok(n)
    }
}

type CsvReader = csv::Reader<LineTracker<HashingReader<BufReader<File>>>>;

fn reader(
    path: &Path,
    options: CsvOptions,
    sink_bytes: Option<&Sink<'_>>,
) -> Result<CsvReader, IngestError> {
    let file = File::open(path).map_err(|source| IngestError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    let progress = sink_bytes.map(|s| s.progress.clone());
    Ok(csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .quote(options.quote)
        .flexible(true)
        .has_headers(false)
        .from_reader(LineTracker::new(HashingReader::new(
            BufReader::with_capacity(1 << 20, file),
            progress,
        ))))
}

fn decode<'a>(bytes: &'a [u8], encoding: &'static Encoding) -> Option<Cow<'a, str>> {
    if encoding == UTF_8 {
        std::str::from_utf8(bytes).ok().map(Cow::Borrowed)
    } else {
        encoding.decode_without_bom_handling_and_without_replacement(bytes)
    }
}

/// Reads the header row only (for `terpadu check` and error hints).
pub fn read_header(path: &Path, options: CsvOptions) -> Result<Vec<String>, IngestError> {
    let mut rdr = reader(path, options, None)?;
    let mut record = csv::ByteRecord::new();
    let has_row = rdr
        .read_byte_record(&mut record)
        .map_err(|e| IngestError::Read {
            path: path.to_path_buf(),
            row: Some(1),
            message: e.to_string(),
        })?;
    if !has_row {
        return Err(IngestError::EmptyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(record
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let field = if i == 0 {
                field.strip_prefix(b"\xef\xbb\xbf").unwrap_or(field)
            } else {
                field
            };
            options
                .encoding
                .decode_without_bom_handling(field)
                .0
                .into_owned()
        })
        .collect())
}

/// Streams one CSV file into the sink.
pub fn read_file(
    path: &Path,
    options: CsvOptions,
    sink: &mut Sink<'_>,
) -> Result<InputFile, IngestError> {
    let header = read_header(path, options)?;
    let positions = resolve(&header, sink, path, options)?;
    let header_keys: Vec<String> = header.iter().map(|h| header_key(h)).collect();
    let mut rdr = reader(path, options, Some(sink))?;
    let mut record = csv::ByteRecord::new();
    // Skip the header record.
    let _ = rdr.read_byte_record(&mut record);
    let expected = header.len();
    let mut rows_read = 0u64;
    loop {
        let more = rdr
            .read_byte_record(&mut record)
            .map_err(|e| IngestError::Read {
                path: path.to_path_buf(),
                row: e.position().map(|p| p.line()),
                message: e.to_string(),
            })?;
        if !more {
            break;
        }
        let position = record.position().cloned();
        let line = position
            .as_ref()
            .and_then(|p| rdr.get_mut().line_at(p.byte()))
            .or(position.as_ref().map(|p| p.line()))
            .unwrap_or(0);
        // A trailing delimiter on data rows (common in DTKS exports) adds empty fields.
        let extra_empty = record.len() > expected
            && record
                .iter()
                .skip(expected)
                .all(|f| f.iter().all(|b| b.is_ascii_whitespace()));
        // An unbalanced quote can also swallow lines into a record that happens to have the
        // right field count: a field holding line breaks and many delimiters is such a case.
        let swallowed = record.iter().any(|f| {
            f.contains(&b'\n')
                && f.iter().filter(|b| **b == options.delimiter).count() >= expected.max(2) / 2
        });
        if (record.len() != expected && !extra_empty) || swallowed {
            let raw = raw_line(&record, options);
            // An unbalanced quote swallows the following lines into one record: account for
            // every physical line it spans, each under its own number.
            let lines: Vec<&str> = raw.split('\n').collect();
            for (k, part) in lines.iter().enumerate() {
                rows_read += 1;
                let reason = if lines.len() > 1 {
                    format!(
                        "an unbalanced quote joined lines {line}-{} into one record of {} fields (the header has {expected})",
                        line + lines.len() as u64 - 1,
                        record.len(),
                    )
                } else {
                    format!(
                        "expected {expected} fields as in the header, found {}",
                        record.len()
                    )
                };
                sink.quarantine(
                    line + k as u64,
                    QuarantineCode::WrongColumnCount,
                    reason,
                    Some(part.trim_end_matches('\r').to_string()),
                )?;
            }
            continue;
        }
        rows_read += 1;
        let decoded_ok =
            options.encoding != UTF_8 || std::str::from_utf8(record.as_slice()).is_ok();
        if !decoded_ok {
            let raw = raw_line(&record, options);
            sink.quarantine(
                line,
                QuarantineCode::InvalidEncoding,
                format!("bytes that are not valid {}", options.encoding.name()),
                Some(raw),
            )?;
            continue;
        }
        let mut values: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(positions.len());
        let mut bad_encoding = false;
        for pos in &positions {
            match pos
                .and_then(|i| record.get(i))
                .map(|f| decode(f, options.encoding))
            {
                Some(Some(text)) => values.push(Some(text)),
                Some(None) => {
                    bad_encoding = true;
                    values.push(None);
                }
                None => values.push(None),
            }
        }
        if bad_encoding {
            let raw = raw_line(&record, options);
            sink.quarantine(
                line,
                QuarantineCode::InvalidEncoding,
                format!("bytes that are not valid {}", options.encoding.name()),
                Some(raw),
            )?;
            continue;
        }
        // A header repeated inside the file (concatenated exports) is not a person.
        if record.len() == expected
            && record
                .iter()
                .zip(&header_keys)
                .all(|(f, h)| header_key(&String::from_utf8_lossy(f)) == *h)
        {
            sink.quarantine(
                line,
                QuarantineCode::RepeatedHeader,
                "the header row repeated inside the file".into(),
                Some(raw_line(&record, options)),
            )?;
            continue;
        }
        let refs: Vec<Option<&str>> = values.iter().map(|v| v.as_deref()).collect();
        sink.row(line, &refs, 0)?;
    }
    let hashing = rdr.into_inner().into_inner();
    Ok(hashing.finish(path, rows_read))
}
fn resolve(
    header: &[String],
    sink: &Sink<'_>,
    path: &Path,
    options: CsvOptions,
) -> Result<Vec<Option<usize>>, IngestError> {
    resolve_columns(sink.columns(), header).map_err(|missing| {
        missing_columns_error(
            sink.source_name(),
            path,
            missing,
            header,
            delimiter_hint(header, options.delimiter),
        )
    })
}

/// When the whole header is one field containing another common delimiter, say so.
pub fn delimiter_hint(header: &[String], delimiter: u8) -> Option<String> {
    if header.len() != 1 {
        return None;
    }
    let only = &header[0];
    [b',', b';', b'|', b'\t']
        .into_iter()
        .filter(|d| *d != delimiter)
        .map(|d| (d, only.matches(d as char).count()))
        .filter(|(_, n)| *n > 0)
        .max_by_key(|(_, n)| *n)
        .map(|(d, _)| {
            let shown = if d == b'\t' { "\\t".to_string() } else { (d as char).to_string() };
            format!(
                "the header is a single field; the file looks '{shown}'-delimited, so set format.delimiter = \"{shown}\""
            )
        })
}

fn raw_line(record: &csv::ByteRecord, options: CsvOptions) -> String {
    let delimiter = options.delimiter as char;
    record
        .iter()
        .map(|f| {
            options
                .encoding
                .decode_without_bom_handling(f)
                .0
                .into_owned()
        })
        .collect::<Vec<_>>()
        .join(&delimiter.to_string())
}
