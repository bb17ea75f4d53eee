//! `terpadu ingest`: stage every source of a pipeline.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::config::{self, Overrides};
use crate::ingest::{self, IngestOptions};

pub(super) const LONG_ABOUT: &str = "\
Load every source of a pipeline into typed Parquet in the workspace.

Each source's files (a path or glob in the pipeline) are read as a stream, mapped onto the
canonical person record by their layout, and written as Parquet. NIKs, KK numbers, names,
dates and regions are cleaned and validated; problems become quality flags on the row, never
silent drops. Rows that cannot be read at all (wrong number of fields, bytes invalid in the
declared encoding, broken JSON, no NIK/KK/name) go to a quarantine file with file, row and
reason.

Nothing becomes visible until every source succeeded: each source becomes a Delta commit of
<workspace>/store/staged/<source>/ (and quarantine/<source>/), and one new workspace version
names them all, so a failed or killed run leaves the previous version current and intact. The
manifest (inputs with size and SHA-256, rows read / staged / quarantined, flag counts, timings)
is kept with the version (`terpadu sql`: table ingest_sources).

Examples:
  terpadu ingest pipelines/sample.toml
  terpadu ingest pipelines/sample.toml --source pkh --source bpnt
  terpadu --log-format json ingest pipelines/nightly.toml     # for cron";

/// Arguments of `terpadu ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Only this source (repeatable). Default: every source.
    #[arg(long = "source", value_name = "NAME")]
    sources: Vec<String>,

    /// Workspace directory. Default: the pipeline's `workspace`, else ../workspace/<name>
    /// next to the pipeline file.
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,

    /// Reference date for "birth date in the future" checks, YYYY-MM-DD. Default: today.
    #[arg(long, value_name = "DATE")]
    today: Option<chrono::NaiveDate>,

    /// Worker threads (sources are staged in parallel). Default: the number of cores.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

pub(super) fn run(args: Args, progress: bool) -> Result<u8> {
    let overrides = Overrides {
        workspace: args.workspace,
    };
    let pipeline = config::load_pipeline(&args.pipeline, &overrides)?;
    for name in &args.sources {
        if !pipeline.sources.iter().any(|s| &s.name == name) {
            let known: Vec<&str> = pipeline.sources.iter().map(|s| s.name.as_str()).collect();
            return Err(config::ConfigError::Invalid(vec![config::Diagnostic::new(
                &args.pipeline,
                "sources",
                format!(
                    "--source {name}: no such source (known: {})",
                    known.join(", ")
                ),
            )])
            .into());
        }
    }
    let options = IngestOptions {
        only: args.sources,
        today: args
            .today
            .unwrap_or_else(|| chrono::Local::now().date_naive()),
        progress,
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
    };
    let manifest = ingest::ingest(&pipeline, &options)
        .with_context(|| format!("ingesting pipeline '{}'", pipeline.name))?;
    let (read, staged, quarantined, bytes) = manifest.totals();
    tracing::info!(
        run_id = %manifest.run_id,
        sources = manifest.sources.len(),
        rows_read = read,
        rows_staged = staged,
        rows_quarantined = quarantined,
        bytes,
        seconds = format!("{:.2}", manifest.seconds),
        peak_rss_mib = manifest.peak_rss_bytes.map(|b| b / (1 << 20)),
        "Ingest finished."
    );
    println!(
        "{:<14} {:>10} {:>10} {:>11} {:>9} {:>9}",
        "source", "read", "staged", "quarantined", "nik ok", "seconds"
    );
    for s in &manifest.sources {
        println!(
            "{:<14} {:>10} {:>10} {:>11} {:>8.1}% {:>9.2}",
            s.name,
            s.rows_read,
            s.rows_staged,
            s.rows_quarantined,
            100.0 * s.nik_status.get("valid").copied().unwrap_or(0) as f64
                / s.rows_staged.max(1) as f64,
            s.seconds
        );
    }
    println!(
        "{:<14} {:>10} {:>10} {:>11}           {:>9.2}",
        "total", read, staged, quarantined, manifest.seconds
    );
    println!(
        "Staged as Delta tables in {}; query them with: terpadu sql {}",
        pipeline.workspace.join("store/staged").display(),
        args.pipeline.display()
    );
    Ok(EXIT_OK)
}
