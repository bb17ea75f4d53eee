//! Ingestion: agency extracts (CSV, XLSX, JSON lines, Parquet) -> typed, validated Parquet in
//! the workspace, with every input row accounted for.
//!
//! For each source: expand the path glob, read each file as a stream, apply the layout
//! ([`mapping`]) and stream the rows into a Parquet file of the Delta table `staged/<source>`;
//! rows that cannot be read go to `quarantine/<source>` with file, row and reason. The tables
//! are committed into the run's [`Draft`] only when every source succeeded, and become visible
//! with the draft's workspace version, so a failed or killed run leaves the previous version
//! current and intact. A run manifest (the version's `staged` document) records per
//! source the inputs (size, SHA-256), rows read / staged / quarantined, flag counts and timings;
//! `rows_read == rows_staged + rows_quarantined` is checked before anything is published.

pub mod canonical;
pub mod csv;
pub mod input;
pub mod jsonl;
pub mod mapping;
pub mod parquet;
pub mod sink;
pub mod xlsx;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::NaiveDate;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{Pipeline, Source, SourceFormat};
use crate::normalize::QualityFlag;
use crate::store::{Draft, StoreError};
use crate::workspace::Workspace;
use mapping::ColumnPlan;
use sink::Sink;

/// Ingestion errors. Each names the source, file and, where it applies, the row.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A sanity threshold stopped publication.
    #[error(
        "source '{source_name}': {message}; nothing was published, the previous data stays current (check tonight's extract, or relax checks in the pipeline)"
    )]
    Rejected {
        /// Source name.
        source_name: String,
        /// Which threshold, with the figures.
        message: String,
    },
    /// The source's path matched no file.
    #[error(
        "source '{source_name}': no file matches {pattern} (paths are relative to the pipeline file; check the path and that tonight's extract arrived)"
    )]
    NoInput {
        /// Source name.
        source_name: String,
        /// The pattern as resolved.
        pattern: String,
    },
    /// The path pattern is not a valid glob.
    #[error("source '{source_name}': invalid path pattern {pattern}: {message}")]
    BadPattern {
        /// Source name.
        source_name: String,
        /// The pattern.
        pattern: String,
        /// What is wrong.
        message: String,
    },
    /// A file could not be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file could not be read past some point.
    #[error("cannot read {}{}: {message}", path.display(), row.map(|r| format!(", row {r}")).unwrap_or_default())]
    Read {
        /// The file.
        path: PathBuf,
        /// The row, when known.
        row: Option<u64>,
        /// What went wrong.
        message: String,
    },
    /// A file has no header row.
    #[error("{} is empty: no header row", path.display())]
    EmptyFile {
        /// The file.
        path: PathBuf,
    },
    /// A text source's file is something else (an archive, a binary file, UTF-32).
    #[error("{} is {kind}, not {expected}: {fix}", path.display())]
    NotText {
        /// The file.
        path: PathBuf,
        /// What the source expects ("CSV", "JSON lines").
        expected: String,
        /// What the file is.
        kind: String,
        /// What to do.
        fix: String,
    },
    /// A spreadsheet problem (no such sheet, unreadable workbook).
    #[error("cannot read workbook {}: {message}", path.display())]
    Sheet {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The layout names columns the file does not have.
    #[error(
        "source '{source_name}': {} lacks column(s) {} required by the layout\n  header: {}{}",
        path.display(),
        missing.join(", "),
        header,
        hint.as_ref().map(|h| format!("\n  hint: {h}")).unwrap_or_default()
    )]
    MissingColumns {
        /// Source name.
        source_name: String,
        /// The file.
        path: PathBuf,
        /// Missing columns with the layout keys that need them.
        missing: Vec<String>,
        /// The header found, abbreviated.
        header: String,
        /// A likely cause.
        hint: Option<String>,
    },
    /// Writing the workspace failed (disk full, permissions).
    #[error("cannot write {}: {message} (check free space and permissions of the workspace)", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Rows were lost: a bug in terpadu.
    #[error(
        "internal error: source '{source_name}' read {read} rows but staged {staged} and quarantined {quarantined}; this is a bug in terpadu, please report it"
    )]
    Accounting {
        /// Source name.
        source_name: String,
        /// Rows read.
        read: u64,
        /// Rows staged.
        staged: u64,
        /// Rows quarantined.
        quarantined: u64,
    },
    /// The store failed (locked, damaged, or cannot be written).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A bug in terpadu.
    #[error("internal error: {0}; this is a bug in terpadu, please report it")]
    Internal(String),
}

impl IngestError {
    /// A write error on `path`.
    pub fn write(path: &Path, error: impl std::fmt::Display) -> Self {
        IngestError::Write {
            path: path.to_path_buf(),
            message: error.to_string(),
        }
    }
}

/// Builds the missing-columns error with an abbreviated header.
pub fn missing_columns_error(
    source: &str,
    path: &Path,
    missing: Vec<String>,
    header: &[String],
    hint: Option<String>,
) -> IngestError {
    let shown: Vec<String> = header.iter().take(30).map(|h| format!("'{h}'")).collect();
    let more = header.len().saturating_sub(30);
    let mut header_text = shown.join(", ");
    if more > 0 {
        header_text.push_str(&format!(" and {more} more"));
    }
    IngestError::MissingColumns {
        source_name: source.to_string(),
        path: path.to_path_buf(),
        missing,
        header: header_text,
        hint,
    }
}

/// Wraps a reader to fingerprint (SHA-256) and count bytes while they stream past.
pub struct HashingReader<R> {
    inner: R,
    state: Fingerprint,
    progress: Option<ProgressBar>,
}

/// The running fingerprint of a [`HashingReader`], shared so it can be read after the reader
/// was wrapped by decoders and handed to a parser.
#[derive(Clone, Default)]
pub struct Fingerprint(std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>);

impl Fingerprint {
    /// The SHA-256 so far and the bytes hashed.
    pub fn snapshot(&self) -> (Sha256, u64) {
        self.0.lock().expect("fingerprint lock").clone()
    }

    /// The fingerprint of everything read.
    pub fn finish(&self, path: &Path, rows_read: u64) -> InputFile {
        let (hasher, bytes) = self.snapshot();
        InputFile {
            path: path.display().to_string(),
            bytes,
            sha256: hex(&hasher.finalize()),
            rows_read,
        }
    }
}

impl<R> HashingReader<R> {
    /// Wraps `inner`; `progress` advances by bytes read.
    pub fn new(inner: R, progress: Option<ProgressBar>) -> Self {
        HashingReader {
            inner,
            state: Fingerprint::default(),
            progress,
        }
    }

    /// A handle on the running fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.state.clone()
    }

    /// The fingerprint of everything read.
    pub fn finish(self, path: &Path, rows_read: u64) -> InputFile {
        self.state.finish(path, rows_read)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        {
            let mut state = self.state.0.lock().expect("fingerprint lock");
            state.0.update(&buf[..n]);
            state.1 += n as u64;
        }
        if let Some(p) = &self.progress {
            p.inc(n as u64);
        }
        Ok(n)
    }
}

/// One input file as read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct InputFile {
    /// Path as resolved.
    pub path: String,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Data rows read from this file.
    pub rows_read: u64,
}

/// What ingestion did with one source.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SourceManifest {
    /// Source name (the SQL table).
    pub name: String,
    /// Role.
    pub role: String,
    /// Layout name.
    pub layout: String,
    /// Program code, for program sources.
    pub program: Option<String>,
    /// Input files.
    pub inputs: Vec<InputFile>,
    /// Rows read (excluding headers and blank lines).
    pub rows_read: u64,
    /// Rows staged.
    pub rows_staged: u64,
    /// Rows quarantined.
    pub rows_quarantined: u64,
    /// Quarantined rows by reason.
    pub quarantined_by_reason: BTreeMap<String, u64>,
    /// Blank spreadsheet rows skipped.
    pub blank_rows_skipped: u64,
    /// Staged rows per quality flag (only flags that occurred).
    pub quality_flags: BTreeMap<String, u64>,
    /// Staged rows per NIK status.
    pub nik_status: BTreeMap<String, u64>,
    /// The staged Delta table (`staged/<source>`, under `store/`).
    pub staged_table: String,
    /// The quarantine Delta table (`quarantine/<source>`).
    pub quarantine_table: String,
    /// Wall time in seconds.
    pub seconds: f64,
}

/// The manifest of one ingest run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestManifest {
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// Pipeline file.
    pub pipeline_file: String,
    /// terpadu version.
    pub terpadu_version: String,
    /// Start (UTC, RFC 3339).
    pub started_at: String,
    /// End (UTC, RFC 3339).
    pub finished_at: String,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Reference date for future-date checks.
    pub reference_date: String,
    /// Peak resident memory of the ingest process, bytes.
    pub peak_rss_bytes: Option<u64>,
    /// One entry per source ingested.
    pub sources: Vec<SourceManifest>,
}

impl IngestManifest {
    /// Totals over sources: (rows read, staged, quarantined, input bytes).
    pub fn totals(&self) -> (u64, u64, u64, u64) {
        self.sources.iter().fold((0, 0, 0, 0), |t, s| {
            (
                t.0 + s.rows_read,
                t.1 + s.rows_staged,
                t.2 + s.rows_quarantined,
                t.3 + s.inputs.iter().map(|i| i.bytes).sum::<u64>(),
            )
        })
    }
}

/// Options of an ingest run.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Only these sources (empty: all).
    pub only: Vec<String>,
    /// Reference date for "birth date in the future" checks (normally today).
    pub today: NaiveDate,
    /// Draw progress bars (on a terminal).
    pub progress: bool,
    /// Worker threads (sources are staged in parallel).
    pub threads: usize,
}

/// The pipeline's sanity thresholds against what was just staged and the previous version.
fn sanity_checks(
    pipeline: &Pipeline,
    previous: Option<&IngestManifest>,
    staged: &[SourceManifest],
) -> Result<(), IngestError> {
    for entry in staged {
        let Some(source) = pipeline.sources.iter().find(|s| s.name == entry.name) else {
            continue;
        };
        let checks = &source.checks;
        if entry.rows_staged == 0 && !checks.allow_empty {
            return Err(IngestError::Rejected {
                source_name: entry.name.clone(),
                message: format!(
                    "0 rows staged ({} read, {} quarantined): an empty or header-only extract (set checks = {{ allow_empty = true }} if this source may be empty)",
                    entry.rows_read, entry.rows_quarantined
                ),
            });
        }
        if let Some(max) = checks.max_quarantined_share {
            let share = entry.rows_quarantined as f64 / entry.rows_read.max(1) as f64;
            if share > max {
                return Err(IngestError::Rejected {
                    source_name: entry.name.clone(),
                    message: format!(
                        "{:.1}% of rows quarantined ({} of {}), above max_quarantined_share {:.1}%",
                        100.0 * share,
                        entry.rows_quarantined,
                        entry.rows_read,
                        100.0 * max
                    ),
                });
            }
        }
        let before = previous.and_then(|m| m.sources.iter().find(|s| s.name == entry.name));
        let max = checks.row_drop_limit();
        if let Some(before) = before
            && before.rows_read > 0
        {
            let drop = 1.0 - entry.rows_read as f64 / before.rows_read as f64;
            if drop > max {
                return Err(IngestError::Rejected {
                    source_name: entry.name.clone(),
                    message: format!(
                        "{} rows read, {:.1}% fewer than the {} of the current version (max_row_drop {:.1}%{}): a truncated extract? If the drop is real, run once with a higher max_row_drop",
                        entry.rows_read,
                        100.0 * drop,
                        before.rows_read,
                        100.0 * max,
                        if checks.max_row_drop.is_none() {
                            ", the default"
                        } else {
                            ""
                        }
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Expands a source's path pattern into a sorted list of files.
pub fn expand_inputs(source: &Source) -> Result<Vec<PathBuf>, IngestError> {
    let bad = |message: String| IngestError::BadPattern {
        source_name: source.name.clone(),
        pattern: source.path.clone(),
        message,
    };
    // A path without wildcards is taken literally (agency file names contain brackets).
    let has_wildcards = source.path.contains(['*', '?']);
    let pattern = if has_wildcards {
        source.path.clone()
    } else {
        glob::Pattern::escape(&source.path)
    };
    // The directory the pattern is anchored at: nothing above it is examined for symlinks.
    let base: PathBuf = Path::new(&source.path)
        .components()
        .take_while(|c| !c.as_os_str().to_string_lossy().contains(['*', '?', '[']))
        .collect();
    let depth = base.components().count();
    let mut files = Vec::new();
    let mut through_symlink: Vec<PathBuf> = Vec::new();
    for entry in glob::glob(&pattern).map_err(|e| bad(e.to_string()))? {
        let path = match entry {
            Ok(path) => path,
            // A loop of directory links ends in ELOOP deep down: that is a skipped link too.
            Err(e) if has_wildcards && via_directory_symlink(e.path(), depth) => {
                through_symlink.push(e.path().to_path_buf());
                continue;
            }
            Err(e) => {
                return Err(IngestError::Open {
                    path: e.path().to_path_buf(),
                    source: std::io::Error::new(e.error().kind(), e.error().to_string()),
                });
            }
        };
        // Directory symlinks under the pattern's base are not followed: they lead out of the
        // tree, or back into it (a loop reads one file dozens of times).
        if has_wildcards && via_directory_symlink(&path, depth) {
            through_symlink.push(path);
            continue;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Arrival markers, partial downloads, hidden files and Excel lock files are not data.
        let not_data = name.ends_with(".done")
            || name == "_SUCCESS"
            || name.ends_with(".part")
            || name.starts_with('.')
            || name.starts_with("~$");
        if path.is_file() && !not_data {
            files.push(path);
        }
    }
    files.sort();
    // One file is read once, whatever names reach it (file symlinks, hard-linked copies
    // are different files and stay).
    let mut seen = std::collections::HashSet::new();
    let mut duplicates = Vec::new();
    files.retain(|path| {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let first = seen.insert(canonical);
        if !first {
            duplicates.push(path.clone());
        }
        first
    });
    if !through_symlink.is_empty() {
        tracing::warn!(
            source = %source.name,
            first = %through_symlink[0].display(),
            "skipped {} path(s) reached through a directory symlink under {} (links are not followed; point the pattern at the real directory)",
            through_symlink.len(),
            base.display()
        );
    }
    if !duplicates.is_empty() {
        tracing::warn!(
            source = %source.name,
            first = %duplicates[0].display(),
            "skipped {} path(s) naming a file already read under another name",
            duplicates.len()
        );
    }
    if files.is_empty() {
        return Err(IngestError::NoInput {
            source_name: source.name.clone(),
            pattern: source.path.clone(),
        });
    }
    Ok(files)
}

/// True when a directory between the first `depth` components of `path` and its file name is
/// a symbolic link.
fn via_directory_symlink(path: &Path, depth: usize) -> bool {
    let components: Vec<_> = path.components().collect();
    let mut prefix = PathBuf::new();
    for (i, component) in components.iter().enumerate() {
        prefix.push(component);
        if i < depth || i + 1 == components.len() {
            continue;
        }
        if std::fs::symlink_metadata(&prefix).is_ok_and(|m| m.file_type().is_symlink()) {
            return true;
        }
    }
    false
}

/// Reads the header of each input of a source and reports the layout columns it lacks
/// (used by `terpadu check`; reads no data rows).
pub fn check_inputs(
    source: &Source,
    default_province: Option<String>,
) -> Result<Vec<PathBuf>, IngestError> {
    let files = expand_inputs(source)?;
    let plan = ColumnPlan::new(
        &source.name,
        &source.layout,
        source.program.clone(),
        default_province,
        chrono::Local::now().date_naive(),
    );
    for file in &files {
        let header = match &source.format {
            SourceFormat::Csv {
                delimiter,
                quote,
                encoding,
                max_record_bytes,
            } => csv::read_header(
                file,
                csv::CsvOptions::from_config(delimiter, quote, encoding, *max_record_bytes),
            )?,
            SourceFormat::Xlsx { sheet, header_row } => {
                xlsx::read_header(file, sheet.as_deref(), *header_row, &plan.columns)?
            }
            SourceFormat::Jsonl { .. } => jsonl::sample_paths(file, 200)?,
            SourceFormat::Parquet => parquet::read_header(file)?,
        };
        let missing = mapping::resolve_columns(&plan.columns, &header)
            .err()
            .unwrap_or_default();
        if !missing.is_empty() {
            let hint = match &source.format {
                SourceFormat::Csv { delimiter, .. } => {
                    csv::delimiter_hint(&header, config_delimiter(delimiter))
                }
                SourceFormat::Jsonl { .. } => Some("JSON lines columns are dotted paths such as alamat.desa; checked against the first 200 lines".into()),
                _ => None,
            };
            return Err(missing_columns_error(
                &source.name,
                file,
                missing,
                &header,
                hint,
            ));
        }
    }
    Ok(files)
}

fn config_delimiter(delimiter: &str) -> u8 {
    crate::config::pipeline::delimiter_byte(delimiter).unwrap_or(b',')
}

/// Ingests the pipeline's sources and publishes them as one workspace version.
pub fn ingest(pipeline: &Pipeline, options: &IngestOptions) -> Result<IngestManifest, IngestError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| IngestError::Internal(format!("starting the runtime: {e}")))?;
    runtime.block_on(async {
        let workspace = Workspace::new(&pipeline.workspace);
        let run_id = crate::workspace::new_run_id(chrono::Utc::now());
        let mut draft = workspace.store().begin("ingest", &run_id).await?;
        let manifest = stage(&mut draft, pipeline, options).await?;
        draft.commit().await?;
        Ok(manifest)
    })
}

/// Stages the pipeline's sources into `draft`: each source's rows and quarantine become
/// Delta commits of `staged/<source>` and `quarantine/<source>`, and the staged manifest
/// (merged with the sources this run did not touch) the draft's `staged` document. Nothing
/// is visible until the draft is committed.
pub async fn stage(
    draft: &mut Draft,
    pipeline: &Pipeline,
    options: &IngestOptions,
) -> Result<IngestManifest, IngestError> {
    let started = chrono::Utc::now();
    let clock = Instant::now();
    let run_id = draft.snapshot().record().run_id.clone();
    let previous: Option<IngestManifest> = draft.snapshot().document("staged");
    let mut paths = BTreeMap::new();
    for source in pipeline
        .sources
        .iter()
        .filter(|s| options.only.is_empty() || options.only.contains(&s.name))
    {
        let staged = draft.new_file(&format!("staged/{}", source.name))?;
        let quarantine = draft.new_file(&format!("quarantine/{}", source.name))?;
        paths.insert(source.name.clone(), (staged, quarantine));
    }
    let remove_files = |paths: &BTreeMap<String, (PathBuf, PathBuf)>| {
        // Best effort: no version refers to them; vacuum removes what is left.
        for (staged, quarantine) in paths.values() {
            let _ = std::fs::remove_file(staged);
            let _ = std::fs::remove_file(quarantine);
        }
    };
    let sources = match ingest_into(pipeline, options, &paths)
        .and_then(|sources| sanity_checks(pipeline, previous.as_ref(), &sources).map(|()| sources))
    {
        Ok(sources) => sources,
        Err(e) => {
            remove_files(&paths);
            return Err(e);
        }
    };
    for entry in &sources {
        let Some((staged, quarantine)) = paths.get(&entry.name) else {
            continue;
        };
        draft
            .commit_files(&entry.staged_table, std::slice::from_ref(staged))
            .await?;
        draft
            .commit_files(&entry.quarantine_table, std::slice::from_ref(quarantine))
            .await?;
    }
    let mut manifest = IngestManifest {
        run_id,
        pipeline: pipeline.name.clone(),
        pipeline_file: pipeline.file.display().to_string(),
        terpadu_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started.to_rfc3339(),
        finished_at: chrono::Utc::now().to_rfc3339(),
        seconds: clock.elapsed().as_secs_f64(),
        reference_date: options.today.to_string(),
        peak_rss_bytes: crate::metrics::peak_rss_bytes(),
        sources,
    };
    let this_run = manifest.clone();
    if let Some(previous) = previous {
        for old in previous.sources {
            if !manifest.sources.iter().any(|s| s.name == old.name) {
                manifest.sources.push(old);
            }
        }
    }
    draft.set_document("staged", &manifest);
    Ok(this_run)
}

/// Drops `sources` (removed from the pipeline) from the draft: their tables leave the
/// version and the staged manifest forgets them.
pub fn forget_sources(draft: &mut Draft, sources: &[String]) {
    let Some(mut manifest) = draft.snapshot().document::<IngestManifest>("staged") else {
        return;
    };
    manifest.sources.retain(|s| !sources.contains(&s.name));
    for source in sources {
        draft.drop_table(&format!("staged/{source}"));
        draft.drop_table(&format!("quarantine/{source}"));
    }
    draft.set_document("staged", &manifest);
}

fn ingest_into(
    pipeline: &Pipeline,
    options: &IngestOptions,
    paths: &BTreeMap<String, (PathBuf, PathBuf)>,
) -> Result<Vec<SourceManifest>, IngestError> {
    let selected: Vec<&Source> = pipeline
        .sources
        .iter()
        .filter(|s| options.only.is_empty() || options.only.contains(&s.name))
        .collect();
    // Resolve every input first: a missing extract fails the run before any work.
    let mut jobs = Vec::new();
    for source in &selected {
        jobs.push((*source, expand_inputs(source)?));
    }
    let bars = MultiProgress::with_draw_target(if options.progress {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let style = ProgressStyle::with_template(
        "{prefix:>12} [{bar:30}] {bytes:>10}/{total_bytes:<10} {bytes_per_sec:>12} {eta:>4} {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<(usize, Result<SourceManifest, IngestError>)>> =
        std::sync::Mutex::new(Vec::new());
    let threads = options.threads.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some((source, files)) = jobs.get(i) else {
                        break;
                    };
                    let total: u64 = files
                        .iter()
                        .filter_map(|f| std::fs::metadata(f).ok())
                        .map(|m| m.len())
                        .sum();
                    let bar = bars.add(ProgressBar::new(total));
                    bar.set_style(style.clone());
                    bar.set_prefix(source.name.clone());
                    let result = match paths.get(&source.name) {
                        Some((staged, quarantine)) => ingest_source(
                            pipeline,
                            source,
                            files,
                            options,
                            (staged, quarantine),
                            bar.clone(),
                        ),
                        None => Err(IngestError::Internal(format!(
                            "no table files for source {}",
                            source.name
                        ))),
                    };
                    bar.finish_with_message(match &result {
                        Ok(m) => {
                            format!("{} rows, {} quarantined", m.rows_staged, m.rows_quarantined)
                        }
                        Err(_) => "failed".to_string(),
                    });
                    if let Ok(mut r) = results.lock() {
                        r.push((i, result));
                    }
                }
            });
        }
    });
    let mut results = results
        .into_inner()
        .map_err(|_| IngestError::Internal("a staging thread panicked".into()))?;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn ingest_source(
    pipeline: &Pipeline,
    source: &Source,
    files: &[PathBuf],
    options: &IngestOptions,
    (staged_path, quarantine_path): (&Path, &Path),
    bar: ProgressBar,
) -> Result<SourceManifest, IngestError> {
    let clock = Instant::now();
    tracing::debug!(source = %source.name, files = files.len(), "Staging source.");
    let mut plan = ColumnPlan::new(
        &source.name,
        &source.layout,
        source.program.clone(),
        pipeline.province.clone(),
        options.today,
    );
    let mut sink = Sink::create(&mut plan, staged_path, quarantine_path, bar)?;
    let mut inputs = Vec::new();
    for file in files {
        sink.set_file(&file.display().to_string())?;
        let input = match &source.format {
            SourceFormat::Csv {
                delimiter,
                quote,
                encoding,
                max_record_bytes,
            } => csv::read_file(
                file,
                csv::CsvOptions::from_config(delimiter, quote, encoding, *max_record_bytes),
                &mut sink,
            )?,
            SourceFormat::Xlsx { sheet, header_row } => {
                xlsx::read_file(file, sheet.as_deref(), *header_row, &mut sink)?
            }
            SourceFormat::Jsonl { max_record_bytes } => {
                jsonl::read_file(file, *max_record_bytes, &mut sink)?
            }
            SourceFormat::Parquet => parquet::read_file(file, &mut sink)?,
        };
        inputs.push(input);
    }
    let counts = sink.finish()?;
    if counts.rows_read != counts.rows_staged + counts.rows_quarantined {
        return Err(IngestError::Accounting {
            source_name: source.name.clone(),
            read: counts.rows_read,
            staged: counts.rows_staged,
            quarantined: counts.rows_quarantined,
        });
    }
    let quality_flags = QualityFlag::ALL
        .iter()
        .filter(|f| counts.stage.flags[**f as usize] > 0)
        .map(|f| (f.code().to_string(), counts.stage.flags[*f as usize]))
        .collect();
    let manifest = SourceManifest {
        name: source.name.clone(),
        role: source.role.as_str().to_string(),
        layout: source.layout.name.clone(),
        program: source.program.as_ref().map(|p| p.code.clone()),
        inputs,
        rows_read: counts.rows_read,
        rows_staged: counts.rows_staged,
        rows_quarantined: counts.rows_quarantined,
        quarantined_by_reason: counts
            .quarantined_by_reason
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        blank_rows_skipped: counts.blank_rows_skipped,
        quality_flags,
        nik_status: counts
            .stage
            .nik_status
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
        staged_table: format!("staged/{}", source.name),
        quarantine_table: format!("quarantine/{}", source.name),
        seconds: clock.elapsed().as_secs_f64(),
    };
    // On a terminal the progress bars say this; log lines would tear them.
    if options.progress {
        tracing::debug!(source = %source.name, rows_read = manifest.rows_read, "Staged source.");
    } else {
        tracing::info!(
            source = %source.name,
            rows_read = manifest.rows_read,
            rows_staged = manifest.rows_staged,
            rows_quarantined = manifest.rows_quarantined,
            seconds = format!("{:.2}", manifest.seconds),
            "Staged source."
        );
    }
    Ok(manifest)
}
