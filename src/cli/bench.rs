//! `terpadu bench`: throughput and memory on generated data, printed as figures.
//!
//! Speed targets live here, not in timed tests: the numbers depend on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

use super::EXIT_OK;
use crate::config::{self, Overrides};
use crate::sample::{SampleConfig, generate};
use crate::workspace::Workspace;

pub(super) const LONG_ABOUT: &str = "\
Measure ingest throughput and peak memory on generated data.

Generates --persons synthetic persons (all sources) into a scratch directory, mirrors the
pipeline and its layouts there, runs `terpadu ingest` on it as a child process, and prints
generation time, rows/s, MB/s and the ingest process's peak resident memory. Then measures
the pairwise comparison kernel (NIK, name, birth date, sex, KK, region levels) on the staged
civil registry (pairs compared per second on one core), runs `terpadu link` (pairs per blocking
rule, time per step, pairs per second, peak memory) and `terpadu evaluate` against the
generated truth.

The pipeline must read its inputs from ../sample_data/ like pipelines/sample.toml does.

Example:
  terpadu bench --persons 1000000 pipelines/sample.toml";

/// Arguments of `terpadu bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pipeline shaped like pipelines/sample.toml.
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Persons to generate.
    #[arg(long, default_value_t = 1_000_000)]
    persons: usize,

    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,

    /// Scratch directory (default: a temporary one, removed afterwards).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub(super) fn run(args: Args, _progress: bool) -> Result<u8> {
    let pipeline = config::load_pipeline(&args.pipeline, &Overrides::default())?;
    let scratch;
    let root: PathBuf = match &args.dir {
        Some(dir) => dir.clone(),
        None => {
            scratch = tempfile::Builder::new()
                .prefix("terpadu-bench-")
                .tempdir()
                .context("creating a scratch directory")?;
            scratch.path().to_path_buf()
        }
    };
    let pipelines = root.join("pipelines");
    let schemas = root.join("schemas");
    for dir in [&pipelines, &schemas] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file_name = args
        .pipeline
        .file_name()
        .context("pipeline path has no file name")?;
    let bench_pipeline = pipelines.join(file_name);
    copy(&args.pipeline, &bench_pipeline)?;
    for source in &pipeline.sources {
        let layout = &source.layout.file;
        copy(
            layout,
            &schemas.join(layout.file_name().context("layout has no file name")?),
        )?;
    }

    println!("machine: {} cores, {}", cores(), memory_total());
    let clock = Instant::now();
    let summary = generate(
        &SampleConfig {
            persons: args.persons,
            seed: args.seed,
            out: root.join("sample_data"),
        },
        &|_| {},
    )
    .context("generating benchmark data")?;
    let generate_seconds = clock.elapsed().as_secs_f64();
    let records: u64 = summary.files.iter().map(|f| f.rows).sum();
    println!(
        "generate: {} persons, {} records in {:.1}s ({:.0} records/s)",
        summary.persons,
        records,
        generate_seconds,
        records as f64 / generate_seconds
    );

    let exe = std::env::current_exe().context("locating the terpadu binary")?;
    let clock = Instant::now();
    let status = Command::new(&exe)
        .args(["--quiet", "ingest"])
        .arg(&bench_pipeline)
        .stdout(std::process::Stdio::null())
        .status()
        .context("running terpadu ingest")?;
    let wall = clock.elapsed().as_secs_f64();
    if !status.success() {
        bail!("terpadu ingest failed with {status}");
    }
    let bench = config::load_pipeline(&bench_pipeline, &Overrides::default())?;
    let runtime = super::runtime()?;
    let snapshot = runtime
        .block_on(Workspace::new(&bench.workspace).store().pin_latest())?
        .context("ingest published no version")?;
    let manifest: crate::ingest::IngestManifest = snapshot
        .document("staged")
        .context("reading the ingest manifest")?;
    let (read, staged, quarantined, bytes) = manifest.totals();
    println!(
        "ingest:   {read} rows ({staged} staged, {quarantined} quarantined), {:.1} MB in {wall:.1}s",
        bytes as f64 / 1e6
    );
    println!(
        "          {:.0} rows/s, {:.1} MB/s, peak memory {} MiB",
        read as f64 / wall,
        bytes as f64 / 1e6 / wall,
        manifest
            .peak_rss_bytes
            .map_or("?".to_string(), |b| (b >> 20).to_string())
    );
    for s in &manifest.sources {
        let mb = s.inputs.iter().map(|i| i.bytes).sum::<u64>() as f64 / 1e6;
        println!(
            "  {:<12} {:>9} rows {:>8.1} MB {:>7.2}s {:>9.0} rows/s",
            s.name,
            s.rows_read,
            mb,
            s.seconds,
            s.rows_read as f64 / s.seconds.max(1e-9)
        );
    }
    kernel(&runtime, &snapshot, &manifest)?;

    // Linkage end to end, in its own process so its peak memory is its own.
    let clock = Instant::now();
    let output = Command::new(&exe)
        .args(["--quiet", "link"])
        .arg(&bench_pipeline)
        .output()
        .context("running terpadu link")?;
    if !output.status.success() {
        bail!(
            "terpadu link failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("link:     {:.1}s wall", clock.elapsed().as_secs_f64());
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("          {line}");
    }
    // Reports, in their own process too (it prints its peak memory).
    let clock = Instant::now();
    let output = Command::new(&exe)
        .args(["--quiet", "report"])
        .arg(&bench_pipeline)
        .output()
        .context("running terpadu report")?;
    if !output.status.success() {
        bail!(
            "terpadu report failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("report:   {:.1}s wall", clock.elapsed().as_secs_f64());
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("          {line}");
    }
    // Vacuum after the versions of this benchmark (ingest, link, report), keeping only the
    // latest: the most it ever has to delete.
    let clock = Instant::now();
    let output = Command::new(&exe)
        .args(["--quiet", "vacuum"])
        .arg(&bench_pipeline)
        .args(["--retain-hours", "0", "--keep-versions", "1"])
        .output()
        .context("running terpadu vacuum")?;
    if !output.status.success() {
        bail!(
            "terpadu vacuum failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    println!("vacuum:   {:.2}s wall", clock.elapsed().as_secs_f64());
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        println!("          {line}");
    }
    let output = Command::new(&exe)
        .args(["--quiet", "evaluate"])
        .arg(&bench_pipeline)
        .arg("--truth")
        .arg(root.join("sample_data/truth.csv"))
        .output()
        .context("running terpadu evaluate")?;
    for line in String::from_utf8_lossy(&output.stdout).lines().filter(|l| {
        [
            "pairs",
            "overall",
            "persons",
            "report cases",
            "breaches",
            "dead",
            "duplicates",
            "exclusion",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    }) {
        println!("evaluate: {line}");
    }
    Ok(EXIT_OK)
}

/// Throughput of the pairwise comparison kernel on real staged records: each civil-registry
/// record against its neighbour in file order (same village, often the same family), which
/// exercises every level.
fn kernel(
    runtime: &tokio::runtime::Runtime,
    snapshot: &crate::store::Snapshot,
    manifest: &crate::ingest::IngestManifest,
) -> Result<()> {
    let Some(registry) = manifest.sources.iter().find(|s| s.role == "civil_registry") else {
        return Ok(());
    };
    let files = runtime.block_on(snapshot.table_files(&registry.staged_table))?;
    let path = files
        .files
        .first()
        .context("the staged table has no file")?;
    let file =
        std::fs::File::open(path).with_context(|| format!("opening staged {}", registry.name))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)?
        .with_batch_size(64 * 1024)
        .build()?;
    let mut pairs = 0u64;
    let mut seconds = 0f64;
    for batch in reader {
        let batch = batch?;
        let n = batch.num_rows();
        if n < 2 {
            continue;
        }
        // Each record against its neighbour in file order.
        let n = u32::try_from(n).context("batch too large")?;
        let left = arrow::array::UInt32Array::from_iter_values(0..n - 1);
        let right = arrow::array::UInt32Array::from_iter_values(1..n);
        let pair_batch = crate::link::stage::gather_pairs(&batch, &left, &right)?;
        let clock = Instant::now();
        let gammas = crate::link::gamma::gamma_batch(&pair_batch)?;
        seconds += clock.elapsed().as_secs_f64();
        pairs += gammas.num_rows() as u64;
    }
    println!(
        "kernel:   {pairs} pairs compared (6 comparisons each) in {seconds:.2}s: {:.0} pairs/s on one core",
        pairs as f64 / seconds.max(1e-9)
    );
    Ok(())
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn memory_total() -> String {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            let kib: u64 = m.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
            Some(format!("{:.1} GiB RAM", kib as f64 / (1u64 << 20) as f64))
        })
        .unwrap_or_else(|| "unknown RAM".into())
}
