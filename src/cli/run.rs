//! `terpadu run`: the whole night in one command: ingest -> link -> report.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::config::{self, Overrides};
use crate::ingest::{self, IngestOptions};
use crate::registry;
use crate::report::{self, ReportOptions};

pub(super) const LONG_ABOUT: &str = "\
Run a pipeline end to end: ingest every source, link the records and publish a new registry
version, then write the reports from it. Each stage publishes atomically; if one fails, what
it would have replaced stays current and the command exits non-zero (see the exit codes in
`terpadu --help`).

Stages can also be run alone: `terpadu ingest`, `terpadu link`, `terpadu report`.

Example:
  terpadu run pipelines/sample.toml";

/// Arguments of `terpadu run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Write NIK and KK numbers in full in the reports (logged).
    #[arg(long)]
    unmasked: bool,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

pub(super) fn run(args: Args, progress: bool) -> Result<u8> {
    let pipeline = config::load_pipeline(
        &args.pipeline,
        &Overrides {
            workspace: args.workspace,
        },
    )?;
    let manifest = ingest::ingest(
        &pipeline,
        &IngestOptions {
            only: Vec::new(),
            today: chrono::Local::now().date_naive(),
            progress,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
        },
    )
    .with_context(|| format!("ingesting pipeline '{}'", pipeline.name))?;
    let (read, staged, quarantined, _) = manifest.totals();
    println!(
        "ingest   {read} rows read: {staged} staged, {quarantined} quarantined ({:.1} s)",
        manifest.seconds
    );
    let runtime = super::runtime()?;
    let options = super::link::registry_options(&pipeline, None, None, None, false, None);
    let built = runtime
        .block_on(registry::build(&pipeline, &options))
        .with_context(|| format!("linking pipeline '{}'", pipeline.name))?;
    let rows = |table: &str| built.meta.rows.get(table).copied().unwrap_or(0);
    println!(
        "link     {} records: {} persons, {} families, {} program records (registry version {})",
        built.link.records,
        rows("person"),
        rows("family"),
        rows("program_membership"),
        built.meta.version
    );
    let (reports, dir) = runtime
        .block_on(report::build(
            &pipeline,
            &ReportOptions {
                unmasked: args.unmasked,
            },
        ))
        .with_context(|| format!("writing the reports of pipeline '{}'", pipeline.name))?;
    let summary: Vec<String> = reports
        .reports
        .iter()
        .map(|r| format!("{} {}", r.name, r.rows))
        .collect();
    println!("report   {}", summary.join(", "));
    println!("         in {}", dir.display());
    Ok(EXIT_OK)
}
