//! Output plumbing for the sample: streaming CSV files with line numbers, the `truth.csv`
//! answer key, `generator.json`, date formatting, and mapping write errors to
//! [`SampleError`] with the path that failed.

use std::fmt;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::calendar::{REF_DATE_ISO, Ymd};
use super::noise::Tags;
use super::{GeneratedFile, SampleConfig, SampleError};

/// An I/O error on `path`.
pub(crate) fn io_error(path: &Path, source: std::io::Error) -> SampleError {
    SampleError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Any other error (CSV, JSON) while writing `path`, reported as an I/O error.
pub(crate) fn other_error<E>(path: &Path, error: E) -> SampleError
where
    E: std::error::Error + Send + Sync + 'static,
{
    io_error(path, std::io::Error::other(error))
}

/// Creates `dir/rel` (and its parent folders) behind a large write buffer.
pub(crate) fn create_file(
    dir: &Path,
    rel: &str,
) -> Result<(PathBuf, BufWriter<File>), SampleError> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(|e| io_error(parent, e))?;
    }
    let file = File::create(&path).map_err(|e| io_error(&path, e))?;
    Ok((path, BufWriter::with_capacity(1 << 20, file)))
}

/// A date as `DD<sep>MM<sep>YYYY`.
pub(crate) struct Dmy(pub Ymd, pub char);

impl fmt::Display for Dmy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Dmy(Ymd { y, m, d }, sep) = *self;
        write!(f, "{d:02}{sep}{m:02}{sep}{y:04}")
    }
}

/// A date as `YYYY-MM-DD`.
pub(crate) struct Iso(pub Ymd);

impl fmt::Display for Iso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ymd { y, m, d } = self.0;
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// A delimited text file written field by field, counting physical lines (no field contains
/// a newline, so record `n` is line `n + 1`).
pub(crate) struct CsvOut {
    writer: csv::Writer<BufWriter<File>>,
    path: PathBuf,
    source: &'static str,
    rows: u64,
    scratch: String,
}

impl CsvOut {
    /// Creates `dir/rel` and writes the header line.
    pub(crate) fn create(
        dir: &Path,
        rel: &str,
        source: &'static str,
        delimiter: u8,
        header: &[&str],
    ) -> Result<CsvOut, SampleError> {
        let (path, file) = create_file(dir, rel)?;
        let mut writer = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .from_writer(file);
        writer
            .write_record(header)
            .map_err(|e| other_error(&path, e))?;
        Ok(CsvOut {
            writer,
            path,
            source,
            rows: 0,
            scratch: String::with_capacity(64),
        })
    }

    /// Writes one field of the current record.
    pub(crate) fn field(&mut self, value: &str) -> Result<(), SampleError> {
        self.writer
            .write_field(value)
            .map_err(|e| other_error(&self.path, e))
    }

    /// Writes one formatted field without allocating.
    pub(crate) fn fmt(&mut self, args: fmt::Arguments<'_>) -> Result<(), SampleError> {
        self.scratch.clear();
        let _ = self.scratch.write_fmt(args);
        self.writer
            .write_field(self.scratch.as_bytes())
            .map_err(|e| other_error(&self.path, e))
    }

    /// Ends the current record; returns its line number (the first data row is line 2).
    pub(crate) fn end(&mut self) -> Result<u64, SampleError> {
        self.writer
            .write_record(None::<&[u8]>)
            .map_err(|e| other_error(&self.path, e))?;
        self.rows += 1;
        Ok(self.rows + 1)
    }

    /// Flushes the file and describes it.
    pub(crate) fn finish(mut self) -> Result<GeneratedFile, SampleError> {
        self.writer.flush().map_err(|e| io_error(&self.path, e))?;
        Ok(GeneratedFile {
            source: self.source.to_string(),
            path: self.path,
            rows: self.rows,
        })
    }
}

/// `truth.csv`: which person and family every generated record is, and its noise tags.
pub(crate) struct Truth {
    out: BufWriter<File>,
    path: PathBuf,
    line: String,
}

impl Truth {
    /// Creates `dir/truth.csv` with its header.
    pub(crate) fn create(dir: &Path) -> Result<Truth, SampleError> {
        let (path, mut out) = create_file(dir, "truth.csv")?;
        out.write_all(b"source,source_row,person_id,family_id,noise\n")
            .map_err(|e| io_error(&path, e))?;
        Ok(Truth {
            out,
            path,
            line: String::with_capacity(96),
        })
    }

    /// Records that row `row` of `source` is person index `person` of family index `family`.
    pub(crate) fn record(
        &mut self,
        source: &str,
        row: u64,
        person: usize,
        family: usize,
        tags: Tags,
    ) -> Result<(), SampleError> {
        self.line.clear();
        let _ = write!(
            self.line,
            "{source},{row},P{:07},F{:06},",
            person + 1,
            family + 1
        );
        tags.write_to(&mut self.line);
        self.line.push('\n');
        self.out
            .write_all(self.line.as_bytes())
            .map_err(|e| io_error(&self.path, e))
    }

    /// Flushes the file.
    pub(crate) fn finish(mut self) -> Result<(), SampleError> {
        self.out.flush().map_err(|e| io_error(&self.path, e))
    }
}

#[derive(Serialize)]
struct Manifest<'a> {
    persons: usize,
    seed: u64,
    reference_date: &'a str,
    families: usize,
    files: Vec<ManifestFile>,
}

#[derive(Serialize)]
struct ManifestFile {
    source: String,
    path: String,
    rows: u64,
}

/// Writes `generator.json`: settings, reference date and the files with their row counts
/// (paths relative to the output folder, `/`-separated).
pub(crate) fn write_manifest(
    cfg: &SampleConfig,
    families: usize,
    files: &[GeneratedFile],
) -> Result<(), SampleError> {
    let manifest = Manifest {
        persons: cfg.persons,
        seed: cfg.seed,
        reference_date: REF_DATE_ISO,
        families,
        files: files
            .iter()
            .map(|f| ManifestFile {
                source: f.source.clone(),
                path: f
                    .path
                    .strip_prefix(&cfg.out)
                    .unwrap_or(&f.path)
                    .to_string_lossy()
                    .replace('\\', "/"),
                rows: f.rows,
            })
            .collect(),
    };
    let (path, mut out) = create_file(&cfg.out, "generator.json")?;
    serde_json::to_writer_pretty(&mut out, &manifest).map_err(|e| other_error(&path, e))?;
    out.write_all(b"\n").map_err(|e| io_error(&path, e))?;
    out.flush().map_err(|e| io_error(&path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_format_with_padding() {
        let d = Ymd {
            y: 1950,
            m: 3,
            d: 7,
        };
        assert_eq!(Dmy(d, '-').to_string(), "07-03-1950");
        assert_eq!(Dmy(d, '/').to_string(), "07/03/1950");
        assert_eq!(Iso(d).to_string(), "1950-03-07");
    }
}
