//! `terpadu report`: the reports program managers act on.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::report::{self, ReportOptions};

pub(super) const LONG_ABOUT: &str = "\
Write the reports program managers act on, from the current registry and the pipeline's
program catalogue ([[programs]], [[exclusivity]], [reports]).

  duplicates            the same person, or family for family programs, listed twice in one
                        program and period (also when the payee differs)
  overlap               recipients of every program pair by regency and welfare decile
  combinations          the sets of programs families hold, largest first
  exclusivity_breaches  units breaking an [[exclusivity]] rule
  inclusion_errors      recipients who should not receive: dead (with living heirs on the
                        family card), NIK invalid, NIK unknown to the civil registry, not in
                        the welfare registry, decile above the program's max_decile
  exclusion_errors      units eligible by a program's eligibility rule that do not receive it
  coverage              per program and village: recipients, eligible, eligible covered
  data_quality          per source: NIK missing / invalid / spreadsheet-damaged, unmatched,
                        duplicated NIKs, placeholder dates, quarantined rows

Publishes a new workspace version with a Delta table per report (query them with `terpadu sql`
as report_<name>) and writes, for people, <workspace>/files/v<N>/: a CSV per report, one
workbook (terpadu-reports.xlsx) and the page (terpadu-report.html). NIK and KK numbers are
masked (3601********0001) unless --unmasked is given, which is recorded in runs/access.jsonl.

Example:
  terpadu report pipelines/sample.toml
  terpadu sql pipelines/sample.toml \"SELECT category, count(*) FROM report_inclusion_errors GROUP BY 1\"";

/// Arguments of `terpadu report`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Write NIK and KK numbers in full (logged).
    #[arg(long)]
    unmasked: bool,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> Result<u8> {
    let (pipeline, _) = super::pipeline_and_workspace(&args.pipeline, args.workspace)?;
    let runtime = super::runtime()?;
    let (manifest, dir) = runtime
        .block_on(report::build(
            &pipeline,
            &ReportOptions {
                unmasked: args.unmasked,
            },
        ))
        .with_context(|| format!("writing the reports of pipeline '{}'", pipeline.name))?;
    if args.unmasked {
        crate::ops::ledger::record_unmasked(
            &crate::workspace::Workspace::new(&pipeline.workspace),
            "report --unmasked",
            &dir,
        );
    }
    for written in &manifest.reports {
        println!(
            "{:<22} {:>9} rows  {}",
            written.name, written.rows, written.title
        );
    }
    println!(
        "reports published as workspace version {} (reference date {}, identifiers {}) in {}",
        manifest.registry_version,
        manifest.reference_date,
        if manifest.masked {
            "masked"
        } else {
            "UNMASKED"
        },
        dir.display()
    );
    if let Some(peak) = crate::metrics::peak_rss_bytes() {
        println!("peak memory {} MiB", peak >> 20);
    }
    Ok(EXIT_OK)
}
