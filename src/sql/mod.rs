//! SQL over a pipeline's workspace: a DataFusion `SessionContext` with every staged source as a
//! table (named after the source), the quarantine as `quarantine`, the ingest manifest as
//! `ingest_sources`, and terpadu's functions (`nik_clean`, `normalize_name`, `mask_id`...).
//!
//! Later stages (registry, reports) register their Parquet here too, so planners query one
//! place.

use std::io::Write;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

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
    /// `--version` names a version that is not kept.
    #[error("no registry version '{version}' (kept: {kept})")]
    NoVersion {
        /// The version asked for.
        version: String,
        /// The versions on disk.
        kept: String,
    },
    /// Nothing has been staged yet.
    #[error("the workspace {0} has no staged data yet; run `terpadu ingest PIPELINE` first")]
    NothingStaged(String),
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

/// A session over one workspace.
pub struct Session {
    /// The DataFusion context.
    pub ctx: SessionContext,
    /// Registered tables.
    pub tables: Vec<TableInfo>,
    /// The staged manifest the tables were registered from.
    pub manifest: crate::ingest::IngestManifest,
}

impl Session {
    /// Registers everything the workspace holds.
    pub async fn open(workspace: &Workspace) -> Result<Session, SqlError> {
        Self::open_version(workspace, None).await
    }

    /// Like [`Session::open`], with the registry tables (and reports) of an older `version`
    /// instead of the current one.
    pub async fn open_version(
        workspace: &Workspace,
        version: Option<&str>,
    ) -> Result<Session, SqlError> {
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("terpadu", "public");
        let ctx = SessionContext::new_with_config(config);
        for udf in crate::normalize::udf::all() {
            ctx.register_udf(udf);
        }
        let mut tables = Vec::new();
        let manifest = workspace.read_manifest();
        let Some(manifest) = manifest else {
            return Err(SqlError::NothingStaged(
                workspace.root().display().to_string(),
            ));
        };
        let mut sources = manifest.sources.clone();
        sources.sort_by(|a, b| a.name.cmp(&b.name));
        for source in &sources {
            let path = workspace.root().join(&source.staged_file);
            if !path.exists() {
                continue;
            }
            ctx.register_parquet(
                &source.name,
                path.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await?;
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
            let path = workspace.root().join(&source.quarantine_file);
            if !path.exists() {
                continue;
            }
            let name = format!("quarantine_{}", source.name);
            ctx.register_parquet(
                &name,
                path.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await?;
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
        let chosen = match version {
            Some(v) => {
                if v.starts_with('.')
                    || !workspace
                        .registry_version_dir(v)
                        .join("registry.json")
                        .exists()
                {
                    return Err(SqlError::NoVersion {
                        version: v.to_string(),
                        kept: workspace.registry_versions().join(", "),
                    });
                }
                Some(v.to_string())
            }
            None => workspace.read_registry_pointer().map(|p| p.version),
        };
        if let Some(chosen) = &chosen {
            let pointer = crate::workspace::RegistryPointer {
                version: chosen.clone(),
                published_at: String::new(),
            };
            let dir = workspace.registry_version_dir(&pointer.version);
            for (table, description) in crate::workspace::REGISTRY_TABLES {
                let path = dir.join(format!("{table}.parquet"));
                if !path.exists() {
                    continue;
                }
                ctx.register_parquet(
                    *table,
                    path.to_string_lossy().as_ref(),
                    ParquetReadOptions::default(),
                )
                .await?;
                tables.push(TableInfo {
                    name: table.to_string(),
                    description: format!("{description} (registry version {})", pointer.version),
                });
            }
        }
        let runs = crate::ops::ledger::read(workspace);
        if !runs.is_empty() {
            let (run_table, stage_table) = ledger_tables(&runs)?;
            ctx.register_table("runs", Arc::new(run_table))?;
            ctx.register_table("run_stages", Arc::new(stage_table))?;
            tables.push(TableInfo {
                name: "runs".into(),
                description: format!(
                    "the run ledger: {} runs, status, registry version, error",
                    runs.len()
                ),
            });
            tables.push(TableInfo {
                name: "run_stages".into(),
                description: "per run and stage: seconds, rows in and out, peak memory".into(),
            });
        }
        let reports_dir = chosen
            .as_ref()
            .map(|v| workspace.root().join("reports").join(v))
            .filter(|d| d.join("reports.json").exists());
        if let Some(dir) = reports_dir
            && let Ok(text) = std::fs::read_to_string(dir.join("reports.json"))
            && let Ok(reports) = serde_json::from_str::<crate::report::ReportManifest>(&text)
        {
            for report in reports.reports {
                let path = dir.join(format!("{}.parquet", report.name));
                let name = format!("report_{}", report.name);
                ctx.register_parquet(
                    &name,
                    path.to_string_lossy().as_ref(),
                    ParquetReadOptions::default(),
                )
                .await?;
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
        })
    }

    /// Runs one statement and collects its result.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, SqlError> {
        let frame = self.ctx.sql(sql).await?;
        Ok(frame.collect().await?)
    }
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
