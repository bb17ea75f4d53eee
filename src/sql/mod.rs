//! SQL over a pipeline's workspace: a DataFusion `SessionContext` with every staged source as a
//! table (named after the source), the quarantine as `quarantine`, the ingest manifest as
//! `ingest_sources`, and terpadu's functions (`nik_clean`, `normalize_name`, `mask_id`...).
//!
//! The registry tables and the reports of the same workspace version are registered too, so
//! planners query one place. Every table is read at the Delta version that the pinned
//! workspace version names.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::store::{Snapshot, StoreError};
use crate::workspace::Workspace;

/// How query results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned text table.
    Table,
    /// CSV with a header row.
    Csv,
    /// JSON lines, one object per row.
    Json,
}

/// SQL errors: the query or the workspace is wrong.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The store cannot be read (damaged, old layout, unknown version).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Nothing has been staged yet.
    #[error("the workspace {0} has no staged data yet; run `terpadu ingest PIPELINE` first")]
    NothingStaged(String),
    /// `--version` is not a version number.
    #[error("'{0}' is not a version number; versions are 1, 2, 3... (see `terpadu status`)")]
    BadVersion(String),
    /// The statement would write, define or set something.
    #[error(
        "{0} is not allowed: the registry is read-only here. Use SELECT (and --format csv > FILE to export)"
    )]
    ReadOnly(String),
    /// The statement ran past its time limit.
    #[error(
        "the statement was stopped after {} s (the time limit; raise it with --timeout-seconds)",
        .0.as_secs()
    )]
    Timeout(std::time::Duration),
    /// The query failed to plan or run.
    #[error("{0}")]
    Query(#[from] DataFusionError),
    /// Writing the output failed.
    #[error("cannot write results: {0}")]
    Output(String),
}

/// A table registered in the session, for `\d` listings.
#[derive(Debug, Clone)]
pub struct TableInfo {
    /// SQL name.
    pub name: String,
    /// What it holds.
    pub description: String,
}

/// A session over one pinned workspace version: every table it lists is read at that
/// version for as long as the session lives, whatever runs publish meanwhile.
pub struct Session {
    /// The DataFusion context.
    pub ctx: SessionContext,
    /// Registered tables.
    pub tables: Vec<TableInfo>,
    /// The staged manifest the tables were registered from.
    pub manifest: crate::ingest::IngestManifest,
    /// The pinned version.
    pub snapshot: Snapshot,
}

impl Session {
    /// Pins the latest workspace version and registers everything it holds.
    pub async fn open(workspace: &Workspace) -> Result<Session, SqlError> {
        Self::open_version(workspace, None).await
    }

    /// Like [`Session::open`], pinned to an older `version` (a number from `terpadu status`).
    pub async fn open_version(
        workspace: &Workspace,
        version: Option<&str>,
    ) -> Result<Session, SqlError> {
        let snapshot = pin(workspace, version).await?;
        Self::open_snapshot(&snapshot, SessionConfig::new()).await
    }

    /// A session over `snapshot` (a published version or a draft's contents).
    pub async fn open_snapshot(
        snapshot: &Snapshot,
        config: SessionConfig,
    ) -> Result<Session, SqlError> {
        let config = config
            .with_information_schema(true)
            .with_default_catalog_and_schema("terpadu", "public");
        let ctx = SessionContext::new_with_config(config);
        Self::open_in(ctx, snapshot).await
    }

    /// Registers `snapshot`'s tables in `ctx`.
    pub async fn open_in(ctx: SessionContext, snapshot: &Snapshot) -> Result<Session, SqlError> {
        for udf in crate::normalize::udf::all() {
            ctx.register_udf(udf);
        }
        let root = snapshot.store().root().to_path_buf();
        let mut tables = Vec::new();
        let Some(manifest) = snapshot.document::<crate::ingest::IngestManifest>("staged") else {
            return Err(SqlError::NothingStaged(root.display().to_string()));
        };
        let version = snapshot.version();
        let mut sources = manifest.sources.clone();
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        for source in &sources {
            if !snapshot.has_table(&source.staged_table) {
                continue;
            }
            register_delta(&ctx, snapshot, &source.staged_table, &source.name).await?;
            tables.push(TableInfo {
                name: source.name.clone(),
                description: format!(
                    "{} ({}), {} staged rows",
                    source.role, source.layout, source.rows_staged
                ),
            });
        }
        // One quarantine table per source, and `quarantine` as their union.
        let mut quarantine_tables = Vec::new();
        for source in &sources {
            if !snapshot.has_table(&source.quarantine_table) {
                continue;
            }
            let name = format!("quarantine_{}", source.name);
            register_delta(&ctx, snapshot, &source.quarantine_table, &name).await?;
            quarantine_tables.push(name);
        }
        if !quarantine_tables.is_empty() {
            let union = quarantine_tables
                .iter()
                .map(|t| format!("SELECT * FROM {t}"))
                .collect::<Vec<_>>()
                .join(" UNION ALL ");
            ctx.sql(&format!("CREATE VIEW quarantine AS {union}"))
                .await?;
            tables.push(TableInfo {
                name: "quarantine".into(),
                description: "rows that could not be read, with file, row and reason (also quarantine_<source>)".into(),
            });
        }
        ctx.register_table("ingest_sources", Arc::new(manifest_table(&manifest)?))?;
        tables.push(TableInfo {
            name: "ingest_sources".into(),
            description: format!("per-source counts of ingest run {}", manifest.run_id),
        });
        for (table, description) in crate::workspace::REGISTRY_TABLES {
            let name = format!("registry/{table}");
            if !snapshot.has_table(&name) {
                continue;
            }
            register_delta(&ctx, snapshot, &name, table).await?;
            tables.push(TableInfo {
                name: table.to_string(),
                description: format!("{description} (workspace version {version})"),
            });
        }
        let workspace = Workspace::new(&root);
        let runs = crate::ops::ledger::read(&workspace);
        if !runs.is_empty() {
            let (run_table, stage_table) = ledger_tables(&runs)?;
            ctx.register_table("runs", Arc::new(run_table))?;
            ctx.register_table("run_stages", Arc::new(stage_table))?;
            tables.push(TableInfo {
                name: "runs".into(),
                description: format!(
                    "the run ledger: {} runs, status, workspace version, error",
                    runs.len()
                ),
            });
            tables.push(TableInfo {
                name: "run_stages".into(),
                description: "per run and stage: seconds, rows in and out, peak memory".into(),
            });
        }
        if let Some(reports) = snapshot.document::<crate::report::ReportManifest>("reports") {
            for report in reports.reports {
                let table = format!("reports/{}", report.name);
                if !snapshot.has_table(&table) {
                    continue;
                }
                let name = format!("report_{}", report.name);
                register_delta(&ctx, snapshot, &table, &name).await?;
                tables.push(TableInfo {
                    name,
                    description: format!("{}, {} rows", report.title, report.rows),
                });
            }
        }
        Ok(Session {
            ctx,
            tables,
            manifest,
            snapshot: snapshot.clone(),
        })
    }

    /// Runs one statement and collects its result (no guards: for terpadu's own queries;
    /// people's queries go through [`crate::catalog`]).
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, SqlError> {
        let frame = self.ctx.sql(sql).await?;
        Ok(frame.collect().await?)
    }
}

/// Pins `version` (a number from `terpadu status`, `v` prefix allowed) or the latest version
/// of `workspace`.
pub async fn pin(workspace: &Workspace, version: Option<&str>) -> Result<Snapshot, SqlError> {
    let store = workspace.store();
    let snapshot = match version {
        Some(v) => {
            let number: u64 = v
                .trim_start_matches('v')
                .parse()
                .map_err(|_| SqlError::BadVersion(crate::redact::escape_controls(v)))?;
            Some(store.pin(number).await?)
        }
        None => store.pin_latest().await?,
    };
    snapshot.ok_or_else(|| SqlError::NothingStaged(workspace.root().display().to_string()))
}

/// Registers Delta table `table` of `snapshot` as `name`: a listing of exactly the data files
/// of the pinned table version.
async fn register_delta(
    ctx: &SessionContext,
    snapshot: &Snapshot,
    table: &str,
    name: &str,
) -> Result<(), SqlError> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    let files = snapshot.table_files(table).await?;
    if files.files.is_empty() {
        let empty = MemTable::try_new(files.schema, vec![vec![]])?;
        ctx.register_table(name, Arc::new(empty))?;
        return Ok(());
    }
    let urls = files
        .files
        .iter()
        .map(|f| ListingTableUrl::parse(f.to_string_lossy()))
        .collect::<Result<Vec<_>, _>>()?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(files.schema);
    ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    Ok(())
}

/// The run ledger as two tables.
fn ledger_tables(runs: &[crate::ops::ledger::RunRecord]) -> Result<(MemTable, MemTable), SqlError> {
    use arrow::array::Float64Array;
    let text = |f: &dyn Fn(&crate::ops::ledger::RunRecord) -> Option<String>| -> ArrayRef {
        Arc::new(runs.iter().map(f).collect::<StringArray>())
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("pipeline", DataType::Utf8, true),
        Field::new("trigger", DataType::Utf8, true),
        Field::new("started_at", DataType::Utf8, true),
        Field::new("ended_at", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, true),
        Field::new("registry_version", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("exit_code", DataType::UInt64, true),
        Field::new("input_files", DataType::UInt64, true),
        Field::new("input_bytes", DataType::UInt64, true),
        Field::new("notes", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            text(&|r| Some(r.run_id.clone())),
            text(&|r| Some(r.pipeline.clone())),
            text(&|r| Some(r.trigger.clone())),
            text(&|r| Some(r.started_at.clone())),
            text(&|r| r.ended_at.clone()),
            text(&|r| Some(r.status.as_str().to_string())),
            text(&|r| r.registry_version.clone()),
            text(&|r| r.error.clone()),
            Arc::new(
                runs.iter()
                    .map(|r| r.exit_code.map(u64::from))
                    .collect::<UInt64Array>(),
            ),
            Arc::new(UInt64Array::from_iter_values(
                runs.iter().map(|r| r.inputs.len() as u64),
            )),
            Arc::new(UInt64Array::from_iter_values(
                runs.iter()
                    .map(|r| r.inputs.iter().map(|i| i.bytes).sum::<u64>()),
            )),
            text(&|r| (!r.notes.is_empty()).then(|| r.notes.join("; "))),
        ],
    )
    .map_err(DataFusionError::from)?;
    let run_table = MemTable::try_new(schema, vec![vec![batch]])?;
    let stages: Vec<(&str, &crate::ops::ledger::StageRecord)> = runs
        .iter()
        .flat_map(|r| r.stages.iter().map(move |s| (r.run_id.as_str(), s)))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("run_id", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("seconds", DataType::Float64, false),
        Field::new("rows_in", DataType::UInt64, false),
        Field::new("rows_out", DataType::UInt64, false),
        Field::new("peak_rss_mib", DataType::UInt64, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(stages.iter().map(|s| s.0))),
            Arc::new(StringArray::from_iter_values(
                stages.iter().map(|s| s.1.stage.as_str()),
            )),
            Arc::new(Float64Array::from_iter_values(
                stages.iter().map(|s| s.1.seconds),
            )),
            Arc::new(UInt64Array::from_iter_values(
                stages.iter().map(|s| s.1.rows_in),
            )),
            Arc::new(UInt64Array::from_iter_values(
                stages.iter().map(|s| s.1.rows_out),
            )),
            Arc::new(
                stages
                    .iter()
                    .map(|s| s.1.peak_rss_mib)
                    .collect::<UInt64Array>(),
            ),
        ],
    )
    .map_err(DataFusionError::from)?;
    Ok((run_table, MemTable::try_new(schema, vec![vec![batch]])?))
}

fn manifest_table(manifest: &crate::ingest::IngestManifest) -> Result<MemTable, SqlError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("role", DataType::Utf8, false),
        Field::new("layout", DataType::Utf8, false),
        Field::new("files", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("rows_read", DataType::UInt64, false),
        Field::new("rows_staged", DataType::UInt64, false),
        Field::new("rows_quarantined", DataType::UInt64, false),
        Field::new("nik_valid", DataType::UInt64, false),
        Field::new("nik_missing", DataType::UInt64, false),
        Field::new("nik_damaged", DataType::UInt64, false),
        Field::new("nik_invalid", DataType::UInt64, false),
    ]));
    let s = &manifest.sources;
    let col_u64 = |f: &dyn Fn(&crate::ingest::SourceManifest) -> u64| {
        Arc::new(UInt64Array::from(s.iter().map(f).collect::<Vec<_>>()))
    };
    let status = |name: &'static str| {
        move |m: &crate::ingest::SourceManifest| m.nik_status.get(name).copied().unwrap_or(0)
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(
                s.iter().map(|m| m.name.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                s.iter().map(|m| m.role.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                s.iter().map(|m| m.layout.as_str()),
            )),
            col_u64(&|m| m.inputs.len() as u64),
            col_u64(&|m| m.inputs.iter().map(|i| i.bytes).sum()),
            col_u64(&|m| m.rows_read),
            col_u64(&|m| m.rows_staged),
            col_u64(&|m| m.rows_quarantined),
            col_u64(&status("valid")),
            col_u64(&status("missing")),
            col_u64(&status("damaged")),
            col_u64(&status("invalid")),
        ],
    )
    .map_err(DataFusionError::from)?;
    Ok(MemTable::try_new(schema, vec![vec![batch]])?)
}

/// Prints batches in the chosen format.
pub fn print_batches(
    out: &mut dyn Write,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<(), SqlError> {
    let err = |e: &dyn std::fmt::Display| SqlError::Output(e.to_string());
    match format {
        OutputFormat::Table => {
            let table = arrow::util::pretty::pretty_format_batches(batches).map_err(|e| err(&e))?;
            writeln!(out, "{table}").map_err(|e| err(&e))?;
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            for batch in batches {
                writer.write(batch).map_err(|e| err(&e))?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            let refs: Vec<&RecordBatch> = batches.iter().collect();
            writer.write_batches(&refs).map_err(|e| err(&e))?;
            writer.finish().map_err(|e| err(&e))?;
        }
    }
    Ok(())
}
