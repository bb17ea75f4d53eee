//! `terpadu sample`: generate a synthetic province.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::sample::{SampleConfig, generate};

pub(super) const LONG_ABOUT: &str = "\
Generate a synthetic Banten province with ground truth, deterministically.

Writes a civil registry (Dukcapil biodata, CSV), a welfare registry (DTKS, CSV), PKH and BPNT
beneficiary lists (KPM, CSV), a PBI health-insurance list (CSV), a provincial Jamsosratu
spreadsheet (XLSX with title rows and region names) and a complaint list (JSON lines), with
realistic noise: typos, name variants and titles, old spellings, missing and spreadsheet-damaged
NIKs, swapped and placeholder dates, dead recipients, within- and cross-program duplicates.
truth.csv maps every generated record to its true person and family, with the noise applied.

The same --persons and --seed always give the same bytes.

Example:
  terpadu sample --persons 5000 --seed 42 --out sample_data";

/// Arguments of `terpadu sample`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Number of persons in the civil registry.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    persons: u64,

    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,

    /// Output directory (created if missing; files in it are overwritten).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub(super) fn run(args: Args, progress: bool) -> Result<u8> {
    let persons =
        usize::try_from(args.persons).context("--persons is too large for this machine")?;
    let bar = if progress {
        indicatif::ProgressBar::new(args.persons)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} persons {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix("generating");
    let clock = std::time::Instant::now();
    let config = SampleConfig {
        persons,
        seed: args.seed,
        out: args.out.clone(),
    };
    let summary = generate(&config, &|done| bar.set_position(done))
        .with_context(|| format!("generating sample data into {}", args.out.display()))?;
    bar.finish_and_clear();
    for file in &summary.files {
        println!(
            "{:<12} {:>10} rows  {}",
            file.source,
            file.rows,
            file.path.display()
        );
    }
    println!(
        "{} persons in {} families generated in {:.1}s into {}",
        summary.persons,
        summary.families,
        clock.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(EXIT_OK)
}
