//! `terpadu run`, `terpadu runs`, `terpadu status` and `terpadu rollback`: nightly operations.

use std::path::PathBuf;

use anyhow::Result;

use super::EXIT_OK;
use crate::config::{self, Overrides};
use crate::ops::{self, RunOptions, ledger};

pub(super) const LONG_ABOUT: &str = "\
Run a pipeline end to end, as the nightly job: check that every source has arrived, skip what
did not change, then ingest, link and report, published together as one workspace version.

Before any work, each source's [sources.arrival] rules are checked: a required source that is
missing, older than max_age_hours, without its marker file (_SUCCESS, *.done) or still
growing (stable_seconds) fails the run with exit code 3, naming the source and path; an
optional one keeps its previous staged version, noted in the ledger. Sources whose files are
byte-identical (SHA-256) to the last successful run are not re-staged; when nothing changed the
run is recorded as skipped_unchanged and publishes nothing (exit 0). --force reruns everything.
A [sources.checks] threshold (max_row_drop, max_quarantined_share) that is breached stops the
run before publication with exit code 4; the previous version stays current.

A run publishes one workspace version (staged sources, registry and reports together, as
Delta tables under <workspace>/store/); until that last commit nothing of the run is visible,
so a run that fails or is killed leaves the previous version current. Afterwards it vacuums
files that no kept version needs ([store] retain_hours = 168, keep_versions = 5).

Every run is a line in <workspace>/runs/ledger.jsonl: `terpadu runs`, `terpadu status`, and
`terpadu sql` (tables runs and run_stages). One lock (<workspace>/.lock, pid and host) keeps
every writer apart; a run killed midway is marked interrupted by the next one.

Example:
  terpadu run pipelines/sample.toml
  terpadu runs pipelines/sample.toml";

/// Arguments of `terpadu run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Rerun every stage even when no input changed.
    #[arg(long)]
    force: bool,

    /// Write NIK and KK numbers in full in the reports (logged).
    #[arg(long)]
    unmasked: bool,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

/// Arguments of `terpadu runs` and `terpadu status`.
#[derive(Debug, clap::Args)]
pub struct LedgerArgs {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Runs listed, newest first.
    #[arg(long, default_value_t = 20, value_name = "N")]
    limit: usize,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

/// Arguments of `terpadu rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// The workspace version whose contents to publish again (a number from `terpadu status`).
    #[arg(value_name = "VERSION")]
    version: String,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

pub(super) fn run(args: Args, progress: bool, trigger: &str) -> Result<u8> {
    let pipeline = config::load_pipeline(
        &args.pipeline,
        &Overrides {
            workspace: args.workspace,
        },
    )?;
    let options = RunOptions {
        force: args.force,
        trigger: trigger.to_string(),
        unmasked: args.unmasked,
        progress,
        registry: super::link::registry_options(&pipeline, None, None, None, false),
    };
    let record = ops::run_pipeline(&pipeline, &options, super::exit_code)?;
    println!("run      {} {}", record.run_id, record.status.as_str());
    for stage in &record.stages {
        println!(
            "  {:<7} {:>10} rows in {:>10} rows out {:>8.2} s",
            stage.stage, stage.rows_in, stage.rows_out, stage.seconds
        );
    }
    for note in &record.notes {
        println!("  note: {note}");
    }
    if let Some(version) = &record.registry_version {
        println!("workspace version {version}");
    }
    Ok(EXIT_OK)
}

pub(super) fn runs(args: LedgerArgs) -> Result<u8> {
    let (_, workspace) = super::pipeline_and_workspace(&args.pipeline, args.workspace)?;
    let runs = ledger::read(&workspace);
    println!(
        "{:<32} {:<9} {:<26} {:>8} {:<18} {:<32} error",
        "run", "trigger", "started", "seconds", "status", "version"
    );
    for run in runs.iter().rev().take(args.limit) {
        let seconds = run
            .ended_at
            .as_deref()
            .and_then(|end| {
                let end = chrono::DateTime::parse_from_rfc3339(end).ok()?;
                let start = chrono::DateTime::parse_from_rfc3339(&run.started_at).ok()?;
                Some((end - start).num_milliseconds() as f64 / 1000.0)
            })
            .map_or("-".to_string(), |s| format!("{s:.1}"));
        println!(
            "{:<32} {:<9} {:<26} {:>8} {:<18} {:<32} {}",
            run.run_id,
            run.trigger,
            &run.started_at[..run.started_at.len().min(25)],
            seconds,
            run.status.as_str(),
            run.registry_version.as_deref().unwrap_or("-"),
            run.error
                .as_deref()
                .map(|e| e.lines().next().unwrap_or_default())
                .unwrap_or("")
        );
    }
    if runs.is_empty() {
        println!("(no runs yet: terpadu run {})", args.pipeline.display());
    }
    Ok(EXIT_OK)
}

pub(super) fn status(args: LedgerArgs) -> Result<u8> {
    let (pipeline, workspace) = super::pipeline_and_workspace(&args.pipeline, args.workspace)?;
    let runtime = super::runtime()?;
    let history = runtime.block_on(workspace.store().history())?;
    match history.last() {
        Some(latest) => {
            println!(
                "current version   {} ({} {}, published {})",
                latest.version, latest.command, latest.run_id, latest.published_at
            );
            if let Some(from) = latest.restored_from {
                println!("restored from     version {from}");
            }
            if let Some(meta) = latest.documents.get("registry").and_then(|m| {
                serde_json::from_value::<crate::registry::RegistryMeta>(m.clone()).ok()
            }) {
                println!(
                    "registry          {} persons, {} families (staged run {})",
                    meta.rows.get("person").copied().unwrap_or(0),
                    meta.rows.get("family").copied().unwrap_or(0),
                    meta.staged_run_id,
                );
            }
            println!(
                "id counters       next person P{:09}, next family F{:09}",
                latest.next_person_id + 1,
                latest.next_family_id + 1
            );
        }
        None => println!("current version   none published yet"),
    }
    let kept: Vec<u64> = pipeline
        .retention
        .kept(&history, chrono::Utc::now())
        .iter()
        .map(|v| v.version)
        .collect();
    println!(
        "versions kept     {} (retain_hours {}, keep_versions {})",
        kept.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        pipeline.retention.retain_hours,
        pipeline.retention.keep_versions
    );
    let runs = ledger::read(&workspace);
    let inputs = ledger::last_succeeded(&workspace)
        .map(|r| r.inputs)
        .unwrap_or_default();
    for input in &inputs {
        println!(
            "input             {:<12} {} ({} bytes, sha256 {}…)",
            input.source,
            input.path,
            input.bytes,
            &input.sha256[..12.min(input.sha256.len())]
        );
    }
    match runs.last() {
        Some(last) => {
            println!(
                "last run          {} {} ({})",
                last.run_id,
                last.status.as_str(),
                last.trigger
            );
            if let Some(error) = &last.error {
                println!("last error        {error}");
            }
        }
        None => println!("last run          none"),
    }
    Ok(EXIT_OK)
}

pub(super) fn rollback(args: RollbackArgs) -> Result<u8> {
    let (pipeline, workspace) = super::pipeline_and_workspace(&args.pipeline, args.workspace)?;
    let store = workspace.store();
    let runtime = super::runtime()?;
    let mut record =
        ledger::RunRecord::new(&pipeline.name, "rollback", ledger::RunStatus::Succeeded);
    let version = runtime.block_on(async {
        let mut draft = store.begin("rollback", &record.run_id).await?;
        let number: u64 = args.version.trim_start_matches('v').parse().map_err(|_| {
            crate::store::StoreError::NoVersion {
                version: crate::redact::escape_controls(&args.version),
                workspace: workspace.root().display().to_string(),
                known: draft
                    .base()
                    .map_or("none".into(), |b| format!("1..{}", b.version())),
            }
        })?;
        let older = store.pin(number).await?;
        let history = store.history().await?;
        if !pipeline
            .retention
            .kept(&history, chrono::Utc::now())
            .iter()
            .any(|v| v.version == number)
        {
            return Err(crate::store::StoreError::Expired {
                version: number,
                retain_hours: pipeline.retention.retain_hours,
            });
        }
        // The restored version must read back whole before it is published again.
        for table in older.record().tables.keys() {
            older.table_files(table).await?;
        }
        let previous = draft.base().map(|b| b.version());
        draft.restore(&older);
        let published = draft.commit().await?;
        Ok::<_, crate::store::StoreError>((previous, published.record.version))
    })?;
    let (previous, published) = version;
    record.ended_at = Some(chrono::Utc::now().to_rfc3339());
    if let Some(last) = ledger::last_succeeded(&workspace) {
        record.inputs = last.inputs;
        record.config_sha256 = last.config_sha256;
    }
    record.notes = vec![format!(
        "rollback: version {published} publishes the contents of version {} again (the current one was {})",
        args.version.trim_start_matches('v'),
        previous.map_or("none".to_string(), |p| p.to_string())
    )];
    record.registry_version = Some(published.to_string());
    record.exit_code = Some(0);
    ledger::append(&workspace, &record)?;
    println!(
        "version {published} publishes the contents of version {} (was {}); nothing was deleted",
        args.version.trim_start_matches('v'),
        previous.map_or("none".to_string(), |p| p.to_string())
    );
    Ok(EXIT_OK)
}

/// Arguments of `terpadu vacuum`.
#[derive(Debug, clap::Args)]
pub struct VacuumArgs {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Keep versions published within this many hours [default: the pipeline's
    /// store.retain_hours, else 168].
    #[arg(long, value_name = "HOURS")]
    retain_hours: Option<u64>,

    /// Also keep this many newest versions [default: store.keep_versions, else 5].
    #[arg(long, value_name = "N")]
    keep_versions: Option<usize>,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

pub(super) const VACUUM_ABOUT: &str = "\
Delete the files that no kept version needs. A version is kept while it is younger than
retain_hours (default 168, one week, like Delta Lake's) and when it is among the newest
keep_versions (default 5); every table file any kept version reads stays, so a `terpadu sql`
session pinned to a kept version keeps its answers. `terpadu run` vacuums after it publishes.

Example:
  terpadu vacuum pipelines/sample.toml
  terpadu vacuum pipelines/sample.toml --retain-hours 24 --keep-versions 3";

pub(super) fn vacuum(args: VacuumArgs) -> Result<u8> {
    let (pipeline, _) = super::pipeline_and_workspace(&args.pipeline, args.workspace)?;
    let retention = crate::store::Retention {
        retain_hours: args.retain_hours.unwrap_or(pipeline.retention.retain_hours),
        keep_versions: args
            .keep_versions
            .unwrap_or(pipeline.retention.keep_versions)
            .max(1),
    };
    let root = pipeline.workspace.clone();
    let runtime = super::runtime()?;
    let clock = std::time::Instant::now();
    let summary = runtime.block_on(async {
        let lock = crate::store::WorkspaceLock::acquire(&root, "vacuum")?;
        crate::store::vacuum(&crate::store::Store::new(&root), retention, &lock).await
    })?;
    println!(
        "kept versions {}; deleted {} table files and {} report directories in {:.2} s",
        summary
            .versions_kept
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        summary.files_deleted,
        summary.dirs_deleted,
        clock.elapsed().as_secs_f64()
    );
    Ok(EXIT_OK)
}

pub(super) const SCHEDULE_ABOUT: &str = "\
Run pipelines at the times their `schedule` names, until stopped: a long-running daemon for a
data centre that does not use cron or systemd timers.

Each pipeline declares `schedule = \"0 2 * * *\"` (minute hour day month weekday; six fields
with seconds first also work; weekdays best as names, Mon-Fri) and optionally
`timezone = \"Asia/Jakarta\"` (the default), `retries = 2` and `retry_backoff_seconds = 300`
(doubled for each further retry). A pipeline never runs twice at once. Logs are JSON lines with
--log-format json. SIGTERM or SIGINT stops the daemon: no new runs start, a run in progress is
finished first, and nothing is left half-published.

Examples:
  terpadu --log-format json schedule pipelines/sample.toml
  terpadu schedule pipelines/sample.toml --next 5     # print the next 5 times and exit";

/// Arguments of `terpadu schedule`.
#[derive(Debug, clap::Args)]
pub struct ScheduleArgs {
    /// Pipeline files with a `schedule`.
    #[arg(value_name = "PIPELINE", required = true, value_parser = super::pipeline_path)]
    pipelines: Vec<PathBuf>,

    /// Print each pipeline's next N run times and exit.
    #[arg(long, value_name = "N")]
    next: Option<usize>,
}

fn scheduled_options(pipeline: &crate::config::Pipeline) -> RunOptions {
    RunOptions {
        force: false,
        trigger: "schedule".into(),
        unmasked: false,
        progress: false,
        registry: super::link::registry_options(pipeline, None, None, None, false),
    }
}

pub(super) fn schedule(args: ScheduleArgs) -> Result<u8> {
    let mut pipelines = Vec::new();
    for path in &args.pipelines {
        let pipeline = config::load_pipeline(path, &Overrides::default())?;
        if pipeline.schedule.is_none() {
            return Err(config::ConfigError::Invalid(vec![config::Diagnostic::new(
                path,
                "schedule",
                "the pipeline has no schedule; add e.g. schedule = \"0 2 * * *\" (02:00 daily)",
            )])
            .into());
        }
        pipelines.push(pipeline);
    }
    if let Some(count) = args.next {
        for pipeline in &pipelines {
            for time in crate::schedule::upcoming(pipeline, count) {
                println!("{:<16} {time}", pipeline.name);
            }
        }
        return Ok(EXIT_OK);
    }
    let runtime = super::runtime()?;
    runtime.block_on(crate::schedule::daemon(
        pipelines,
        scheduled_options,
        super::exit_code,
    ))?;
    Ok(EXIT_OK)
}
