//! Delimited text extracts: streaming, with a declared encoding, quarantining rows that cannot
//! be read (wrong number of fields, bytes invalid in the declared encoding).

use std::borrow::Cow;
use std::path::Path;

use encoding_rs::{Encoding, UTF_8};

use super::mapping::resolve_columns;
use super::sink::{QuarantineCode, Sink};
use super::{IngestError, InputFile, missing_columns_error};
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
    /// Longest physical line in bytes; the rest of a longer one is skipped.
    pub max_record_bytes: u64,
}

impl CsvOptions {
    /// Options from the pipeline's format settings (already checked by `config`).
    pub fn from_config(
        delimiter: &str,
        quote: &str,
        encoding: &str,
        max_record_bytes: u64,
    ) -> Self {
        CsvOptions {
            delimiter: delimiter_byte(delimiter).unwrap_or(b','),
            quote: delimiter_byte(quote).unwrap_or(b'"'),
            encoding: Encoding::for_label(encoding.as_bytes()).unwrap_or(UTF_8),
            max_record_bytes,
        }
    }
}

/// Where the parser is within a record, mirrored from the bytes it is given (RFC 4180 as the
/// csv crate reads it: a quote opens a field only at its start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: it closes the field, or is the first of `""`.
    QuoteInQuoted,
}

/// Sits between the file and the csv parser. It notes where each non-empty physical line
/// starts, so a record's line number is exact for CRLF files and after blank lines (the csv
/// crate's own positions are not, there). It bounds physical lines: the rest of a line over
/// `max_line_bytes` is dropped (so a file without line breaks never fills memory) and the line
/// is remembered as too long. It mirrors the quoting state, so a quote still open at the end of
/// the file (a cut-off extract) is known.
pub struct LineTracker<R> {
    inner: R,
    offset: u64,
    line: u64,
    at_line_start: bool,
    starts: std::collections::VecDeque<(u64, u64)>,
    delimiter: u8,
    quote: u8,
    quoting: Quoting,
    open_quote_at: (u64, u64),
    line_bytes: u64,
    max_line_bytes: u64,
    skipping: bool,
    too_long: std::collections::BTreeMap<u64, u64>,
    eof: bool,
}

impl<R> LineTracker<R> {
    fn new(inner: R, options: &CsvOptions) -> Self {
        LineTracker {
            inner,
            offset: 0,
            line: 1,
            at_line_start: true,
            starts: std::collections::VecDeque::new(),
            delimiter: options.delimiter,
            quote: options.quote,
            quoting: Quoting::FieldStart,
            open_quote_at: (0, 0),
            line_bytes: 0,
            max_line_bytes: options.max_record_bytes,
            skipping: false,
            too_long: std::collections::BTreeMap::new(),
            eof: false,
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

    /// The first over-long line among `lines`, with its length in bytes, forgotten once asked.
    fn take_too_long(&mut self, lines: std::ops::RangeInclusive<u64>) -> Option<(u64, u64)> {
        let found = self.too_long.range(lines).next().map(|(l, n)| (*l, *n))?;
        self.too_long.remove(&found.0);
        Some(found)
    }

    /// At the end of the file: the byte offset and line of a quote that was never closed.
    fn unterminated_quote(&self) -> Option<(u64, u64)> {
        (self.eof && self.quoting == Quoting::Quoted).then_some(self.open_quote_at)
    }

    /// Follows one byte the parser will see.
    fn follow(&mut self, byte: u8) {
        self.quoting = match (self.quoting, byte) {
            (Quoting::Quoted, b) if b == self.quote => Quoting::QuoteInQuoted,
            (Quoting::Quoted, _) => Quoting::Quoted,
            (_, b'\n' | b'\r') => Quoting::FieldStart,
            (Quoting::QuoteInQuoted, b) if b == self.quote => Quoting::Quoted,
            (_, b) if b == self.delimiter => Quoting::FieldStart,
            (Quoting::FieldStart, b) if b == self.quote => {
                self.open_quote_at = (self.offset, self.line);
                Quoting::Quoted
            }
            _ => Quoting::Unquoted,
        };
    }
}

impl<R: std::io::Read> std::io::Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                self.eof = true;
                if self.skipping {
                    self.skipping = false;
                    self.too_long.insert(self.line, self.line_bytes);
                }
                return Ok(0);
            }
            // Bytes are compacted in place: `kept <= i` always, as a byte is only ever dropped
            // or replaced, never added.
            let mut kept = 0;
            for i in 0..n {
                let byte = buf[i];
                self.line_bytes += 1;
                if self.skipping {
                    if byte != b'\n' {
                        continue;
                    }
                    self.skipping = false;
                    self.too_long.insert(self.line, self.line_bytes - 1);
                } else if self.line_bytes > self.max_line_bytes && byte != b'\n' {
                    self.skipping = true;
                    // Close an open quote so the parser ends the record at the line break.
                    if self.quoting == Quoting::Quoted {
                        buf[kept] = self.quote;
                        kept += 1;
                        self.follow(self.quote);
                        self.offset += 1;
                    }
                    continue;
                }
                match byte {
                    b'\n' => {
                        self.line += 1;
                        self.line_bytes = 0;
                        self.at_line_start = true;
                    }
                    b'\r' => {}
                    _ if self.at_line_start => {
                        self.starts.push_back((self.offset, self.line));
                        self.at_line_start = false;
                    }
                    _ => {}
                }
                self.follow(byte);
                buf[kept] = byte;
                kept += 1;
                self.offset += 1;
            }
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

type CsvReader = csv::Reader<LineTracker<Box<dyn std::io::Read + Send>>>;

/// Opens `path` (gzip, UTF-16 and foreign files handled by `input`) for the csv parser; the
/// options returned say the encoding of the bytes it will see.
fn reader(
    path: &Path,
    options: CsvOptions,
    sink_bytes: Option<&Sink<'_>>,
) -> Result<(CsvReader, CsvOptions, super::Fingerprint), IngestError> {
    let progress = sink_bytes.map(|s| s.progress.clone());
    let input = super::input::open_text(path, options.encoding, "CSV", progress)?;
    if !input.conversions.is_empty() && sink_bytes.is_some() {
        tracing::info!(file = %path.display(), conversions = ?input.conversions, "read with conversions");
    }
    let options = CsvOptions {
        encoding: input.encoding,
        ..options
    };
    let reader = csv::ReaderBuilder::new()
        .delimiter(options.delimiter)
        .quote(options.quote)
        .flexible(true)
        .has_headers(false)
        .from_reader(LineTracker::new(input.reader, &options));
    Ok((reader, options, input.fingerprint))
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
    let (mut rdr, options, _) = reader(path, options, None)?;
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
    if let Some((_, bytes)) = rdr.get_mut().take_too_long(1..=1) {
        return Err(IngestError::Read {
            path: path.to_path_buf(),
            row: Some(1),
            message: format!(
                "the header line is {bytes} bytes, longer than format.max_record_bytes ({}); is this a CSV file with line breaks?",
                options.max_record_bytes
            ),
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
    let (mut rdr, options, fingerprint) = reader(path, options, Some(sink))?;
    let mut record = csv::ByteRecord::new();
    // Skip the header record.
    let _ = rdr.read_byte_record(&mut record);
    let expected = header.len();
    let mut rows_read = 0u64;
    let mut mojibake = Mojibake::default();
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
        let breaks = record
            .iter()
            .map(|f| f.iter().filter(|b| **b == b'\n').count() as u64)
            .sum::<u64>();
        if let Some((long_line, bytes)) = rdr.get_mut().take_too_long(line..=line + breaks) {
            rows_read += 1;
            let raw = raw_line(&record, options);
            sink.quarantine(
                long_line,
                QuarantineCode::RecordTooLong,
                format!(
                    "line {long_line} is {bytes} bytes, longer than format.max_record_bytes ({}); the rest of the line was skipped, the rest of the file read",
                    options.max_record_bytes
                ),
                Some(raw.chars().take(200).collect()),
            )?;
            continue;
        }
        // A quote still open at the end of the file: the extract was cut inside a field.
        let start = position.as_ref().map_or(0, |p| p.byte());
        let end = rdr.position().byte();
        let unterminated = rdr
            .get_ref()
            .unterminated_quote()
            .filter(|(at, _)| (start..end).contains(at));
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
        if (record.len() != expected && !extra_empty) || swallowed || unterminated.is_some() {
            let raw = raw_line(&record, options);
            // An unbalanced quote swallows the following lines into one record: account for
            // every physical line it spans, each under its own number.
            let lines: Vec<&str> = raw.split('\n').collect();
            for (k, part) in lines.iter().enumerate() {
                rows_read += 1;
                let (code, reason) = if let Some((_, quote_line)) = unterminated {
                    (
                        QuarantineCode::UnterminatedQuote,
                        format!(
                            "the quote opened on line {quote_line} is never closed: the file ends inside a quoted field (cut off in transfer? ask for the extract again)"
                        ),
                    )
                } else if lines.len() > 1 {
                    (
                        QuarantineCode::WrongColumnCount,
                        format!(
                            "an unbalanced quote joined lines {line}-{} into one record of {} fields (the header has {expected})",
                            line + lines.len() as u64 - 1,
                            record.len(),
                        ),
                    )
                } else {
                    (
                        QuarantineCode::WrongColumnCount,
                        format!(
                            "expected {expected} fields as in the header, found {}",
                            record.len()
                        ),
                    )
                };
                sink.quarantine(
                    line + k as u64,
                    code,
                    reason,
                    Some(part.trim_end_matches('\r').to_string()),
                )?;
            }
            continue;
        }
        rows_read += 1;
        mojibake.observe(record.as_slice(), options.encoding, line);
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
    mojibake.warn(sink.source_name(), path, options.encoding);
    drop(rdr);
    Ok(fingerprint.finish(path, rows_read))
}

/// Rows of a source declared in a single-byte encoding (windows-1252...) whose non-ASCII bytes
/// are all valid multi-byte UTF-8: a strong sign the declaration is wrong and names are
/// turning into mojibake (`SITI NURâ€™AINI`).
#[derive(Default)]
struct Mojibake {
    utf8_rows: u64,
    other_rows: u64,
    first_line: Option<u64>,
}

impl Mojibake {
    fn observe(&mut self, bytes: &[u8], encoding: &'static Encoding, line: u64) {
        if encoding == UTF_8 || bytes.is_ascii() {
            return;
        }
        if std::str::from_utf8(bytes).is_ok() {
            self.utf8_rows += 1;
            self.first_line.get_or_insert(line);
        } else {
            self.other_rows += 1;
        }
    }

    fn warn(&self, source: &str, path: &Path, encoding: &'static Encoding) {
        if self.utf8_rows > 0 && self.utf8_rows >= self.other_rows {
            tracing::warn!(
                source,
                file = %path.display(),
                rows = self.utf8_rows,
                first_line = self.first_line.unwrap_or(0),
                "the source is declared {} but {} row(s) with accented letters are valid UTF-8 (first on line {}); if names look garbled, set format.encoding = \"utf-8\"",
                encoding.name(),
                self.utf8_rows,
                self.first_line.unwrap_or(0),
            );
        }
    }
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
