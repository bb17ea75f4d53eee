//! Where readers put rows: staged rows are batched, mapped by the layout and written to
//! Parquet; unreadable rows go to the quarantine file with a reason. The sink owns the
//! accounting that proves nothing was lost: every row read is staged or quarantined.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{StringArray, StringBuilder, UInt64Array};
use arrow::record_batch::RecordBatch;
use indicatif::ProgressBar;
use parquet::arrow::ArrowWriter;

use super::IngestError;
use super::canonical::quarantine_schema;
use super::mapping::{ColumnPlan, NeededColumn, RawBatch, StageCounts};

/// Rows per staged batch (and Parquet row-group granularity).
pub const BATCH_ROWS: usize = 16 * 1024;

/// Why a row was quarantined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuarantineCode {
    /// The row has more or fewer fields than the header (often a truncated file or a stray
    /// delimiter inside an unquoted value).
    WrongColumnCount,
    /// Bytes that are not valid in the declared encoding.
    InvalidEncoding,
    /// A JSON lines row that is not valid JSON.
    InvalidJson,
    /// A JSON lines row that is valid JSON but not an object.
    NotAnObject,
    /// No NIK, KK or name: nothing to link the row to anyone (totals rows, notes).
    NoIdentity,
    /// The header row repeated inside the data (concatenated exports, multi-page sheets).
    RepeatedHeader,
    /// A record (line) longer than `format.max_record_bytes`: the rest of it was skipped.
    RecordTooLong,
    /// The file ends inside a quoted field: a cut-off extract.
    UnterminatedQuote,
    /// Every identity cell (NIK, KK, name) is a formula with no saved result.
    IdentityOnlyFormulas,
}

impl QuarantineCode {
    /// The snake_case code stored in the quarantine file.
    pub fn code(self) -> &'static str {
        match self {
            QuarantineCode::WrongColumnCount => "wrong_column_count",
            QuarantineCode::InvalidEncoding => "invalid_encoding",
            QuarantineCode::InvalidJson => "invalid_json",
            QuarantineCode::NotAnObject => "not_an_object",
            QuarantineCode::NoIdentity => "no_identity",
            QuarantineCode::RepeatedHeader => "repeated_header",
            QuarantineCode::RecordTooLong => "record_too_long",
            QuarantineCode::UnterminatedQuote => "unterminated_quote",
            QuarantineCode::IdentityOnlyFormulas => "identity_only_formulas",
        }
    }
}

/// Counts of one source.
#[derive(Debug, Clone, Default)]
pub struct SinkCounts {
    /// Rows read from the inputs (not counting headers and blank lines).
    pub rows_read: u64,
    /// Rows written to the staged file.
    pub rows_staged: u64,
    /// Rows written to the quarantine file.
    pub rows_quarantined: u64,
    /// Quarantined rows per reason code.
    pub quarantined_by_reason: std::collections::BTreeMap<&'static str, u64>,
    /// Fully blank spreadsheet rows skipped (not rows of data).
    pub blank_rows_skipped: u64,
    /// Quality-flag and NIK-status counts.
    pub stage: StageCounts,
}

/// Receives rows from a reader.
pub struct Sink<'a> {
    plan: &'a mut ColumnPlan,
    file: Arc<str>,
    rows: Vec<u64>,
    columns: Vec<StringBuilder>,
    numeric: Vec<u64>,
    formulas: Vec<u64>,
    identity_slots: Vec<usize>,
    staged: ArrowWriter<File>,
    staged_schema: arrow::datatypes::SchemaRef,
    staged_path: PathBuf,
    quarantine: QuarantineWriter,
    /// Counts so far.
    pub counts: SinkCounts,
    /// Progress bar advanced by readers (bytes).
    pub progress: ProgressBar,
}

impl<'a> Sink<'a> {
    /// Opens the staged and quarantine files for one source.
    pub fn create(
        plan: &'a mut ColumnPlan,
        staged_path: &Path,
        quarantine_path: &Path,
        progress: ProgressBar,
    ) -> Result<Self, IngestError> {
        let file = File::create(staged_path).map_err(|e| IngestError::write(staged_path, e))?;
        // Delta has no unsigned types: the file is written in the table's own types.
        let staged_schema = crate::store::delta_schema(&plan.schema());
        let staged = ArrowWriter::try_new(
            file,
            staged_schema.clone(),
            Some(crate::store::writer_properties()),
        )
        .map_err(|e| IngestError::write(staged_path, e))?;
        let quarantine = QuarantineWriter::create(quarantine_path, plan.source.clone())?;
        let width = plan.columns.len();
        let identity_slots = plan.identity_slots();
        Ok(Sink {
            plan,
            file: Arc::from(""),
            rows: Vec::with_capacity(BATCH_ROWS),
            columns: (0..width).map(|_| StringBuilder::new()).collect(),
            numeric: Vec::with_capacity(BATCH_ROWS),
            formulas: Vec::with_capacity(BATCH_ROWS),
            identity_slots,
            staged,
            staged_schema,
            staged_path: staged_path.to_path_buf(),
            quarantine,
            counts: SinkCounts::default(),
            progress,
        })
    }

    /// The columns readers must deliver, in order.
    pub fn columns(&self) -> &[NeededColumn] {
        &self.plan.columns
    }

    /// The source name.
    pub fn source_name(&self) -> &str {
        &self.plan.source
    }

    /// Starts rows of another input file.
    pub fn set_file(&mut self, display: &str) -> Result<(), IngestError> {
        self.flush()?;
        self.file = Arc::from(display);
        self.quarantine.file = Arc::from(display);
        Ok(())
    }

    /// One readable row: values in [`Sink::columns`] order, `numeric` bit per value that came
    /// from a numeric cell.
    pub fn row(
        &mut self,
        row: u64,
        values: &[Option<&str>],
        numeric: u64,
    ) -> Result<(), IngestError> {
        self.row_with_formulas(row, values, numeric, 0)
    }

    /// Like [`Sink::row`], with a `formulas` bit per value that is a spreadsheet formula with
    /// no saved result (read as blank, flagged `formula_without_value`).
    pub fn row_with_formulas(
        &mut self,
        row: u64,
        values: &[Option<&str>],
        numeric: u64,
        formulas: u64,
    ) -> Result<(), IngestError> {
        let blank = |v: &Option<&str>| v.is_none_or(|s| s.trim().is_empty());
        if !self.identity_slots.is_empty()
            && self
                .identity_slots
                .iter()
                .all(|i| values.get(*i).is_none_or(blank))
        {
            let raw = values
                .iter()
                .map(|v| v.unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" | ");
            let formula_identity = self
                .identity_slots
                .iter()
                .any(|i| *i < 64 && formulas & (1 << i) != 0);
            if formula_identity {
                return self.quarantine(
                    row,
                    QuarantineCode::IdentityOnlyFormulas,
                    "the NIK, KK and name cells are formulas with no saved result; open and save the workbook in Excel (or export values) and deliver it again".to_string(),
                    Some(raw),
                );
            }
            return self.quarantine(
                row,
                QuarantineCode::NoIdentity,
                "no NIK, KK number or name on this row".to_string(),
                Some(raw),
            );
        }
        self.counts.rows_read += 1;
        self.rows.push(row);
        self.numeric.push(numeric);
        self.formulas.push(formulas);
        for (builder, value) in self.columns.iter_mut().zip(values) {
            match value {
                Some(v) if !v.trim().is_empty() => builder.append_value(v),
                _ => builder.append_null(),
            }
        }
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    /// A fully blank row (spreadsheets): skipped and counted, not data.
    pub fn blank_row(&mut self) {
        self.counts.blank_rows_skipped += 1;
    }

    /// A row that cannot be read: kept in the quarantine file with the reason.
    pub fn quarantine(
        &mut self,
        row: u64,
        code: QuarantineCode,
        reason: String,
        raw: Option<String>,
    ) -> Result<(), IngestError> {
        self.counts.rows_read += 1;
        self.counts.rows_quarantined += 1;
        *self
            .counts
            .quarantined_by_reason
            .entry(code.code())
            .or_default() += 1;
        self.quarantine.push(row, code, &reason, raw.as_deref())
    }

    /// Maps and writes the buffered rows.
    pub fn flush(&mut self) -> Result<(), IngestError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let raw = RawBatch {
            file: self.file.clone(),
            rows: UInt64Array::from(std::mem::take(&mut self.rows)),
            columns: self
                .columns
                .iter_mut()
                .map(|b| b.finish())
                .collect::<Vec<StringArray>>(),
            numeric: std::mem::take(&mut self.numeric),
            formulas: std::mem::take(&mut self.formulas),
        };
        let (batch, counts) = self
            .plan
            .stage(&raw)
            .map_err(|e| IngestError::Internal(format!("building staged batch: {e}")))?;
        self.counts.rows_staged += batch.num_rows() as u64;
        self.counts.stage.merge(&counts);
        let batch = crate::store::to_delta(&batch, &self.staged_schema)
            .map_err(|e| IngestError::Internal(format!("building staged batch: {e}")))?;
        self.staged
            .write(&batch)
            .map_err(|e| IngestError::write(&self.staged_path, e))?;
        self.rows.reserve(BATCH_ROWS);
        self.numeric.reserve(BATCH_ROWS);
        self.formulas.reserve(BATCH_ROWS);
        Ok(())
    }

    /// Flushes and closes both files, returning the counts.
    pub fn finish(mut self) -> Result<SinkCounts, IngestError> {
        self.flush()?;
        self.staged
            .close()
            .map_err(|e| IngestError::write(&self.staged_path, e))?;
        self.quarantine.finish()?;
        Ok(self.counts)
    }
}

/// Writes quarantine rows.
struct QuarantineWriter {
    source: String,
    file: Arc<str>,
    path: PathBuf,
    writer: ArrowWriter<File>,
    schema: arrow::datatypes::SchemaRef,
    rows: Vec<u64>,
    codes: StringBuilder,
    reasons: StringBuilder,
    raws: StringBuilder,
    files: StringBuilder,
}

impl QuarantineWriter {
    fn create(path: &Path, source: String) -> Result<Self, IngestError> {
        let file = File::create(path).map_err(|e| IngestError::write(path, e))?;
        let schema = crate::store::delta_schema(&quarantine_schema());
        let writer = ArrowWriter::try_new(
            file,
            schema.clone(),
            Some(crate::store::writer_properties()),
        )
        .map_err(|e| IngestError::write(path, e))?;
        Ok(QuarantineWriter {
            source,
            file: Arc::from(""),
            path: path.to_path_buf(),
            writer,
            schema,
            rows: Vec::new(),
            codes: StringBuilder::new(),
            reasons: StringBuilder::new(),
            raws: StringBuilder::new(),
            files: StringBuilder::new(),
        })
    }

    fn push(
        &mut self,
        row: u64,
        code: QuarantineCode,
        reason: &str,
        raw: Option<&str>,
    ) -> Result<(), IngestError> {
        self.rows.push(row);
        self.codes.append_value(code.code());
        self.reasons.append_value(reason);
        self.raws.append_option(raw);
        self.files.append_value(&*self.file);
        if self.rows.len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), IngestError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let n = self.rows.len();
        let sources = StringArray::from(vec![self.source.as_str(); n]);
        let batch = RecordBatch::try_new(
            quarantine_schema(),
            vec![
                Arc::new(sources),
                Arc::new(self.files.finish()),
                Arc::new(UInt64Array::from(std::mem::take(&mut self.rows))),
                Arc::new(self.codes.finish()),
                Arc::new(self.reasons.finish()),
                Arc::new(self.raws.finish()),
            ],
        )
        .and_then(|b| crate::store::to_delta(&b, &self.schema))
        .map_err(|e| IngestError::Internal(format!("building quarantine batch: {e}")))?;
        self.writer
            .write(&batch)
            .map_err(|e| IngestError::write(&self.path, e))
    }

    fn finish(mut self) -> Result<(), IngestError> {
        self.flush()?;
        self.writer
            .close()
            .map_err(|e| IngestError::write(&self.path, e))?;
        Ok(())
    }
}
