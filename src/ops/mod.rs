//! Nightly operations: one run of a pipeline end to end, recorded in the run ledger.
//!
//! [`run_pipeline`] opens the next workspace version (a [`Draft`], which takes the workspace
//! lock), marks runs that died as interrupted, checks that every source has arrived
//! ([`arrival`]), skips sources whose inputs are byte-identical to the last successful run
//! (and the whole run when nothing changed), then ingests, links and reports into the draft,
//! commits it as one version and vacuums what no kept version needs. A failure at any point
//! leaves the previous version current. Every outcome is a line in the ledger ([`ledger`]).

pub mod arrival;
pub mod ledger;

use std::time::Instant;

use sha2::{Digest, Sha256};

use ledger::{InputRecord, RunRecord, RunStatus, StageRecord};

use crate::config::Pipeline;
use crate::ingest::{self, IngestManifest, IngestOptions};
use crate::registry::{self, RegistryMeta, RegistryOptions};
use crate::report::{self, ReportOptions};
use crate::store::Draft;
use crate::workspace::Workspace;

/// Why a run did not start its work.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Required sources are missing, stale or still being written.
    #[error("not ready: {}", .0.join("; "))]
    NotReady(Vec<String>),
    /// Reading the inputs to fingerprint them failed.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Rerun every stage even when no input changed.
    pub force: bool,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// Reports with unmasked identifiers.
    pub unmasked: bool,
    /// Draw progress bars.
    pub progress: bool,
    /// Registry options (from the pipeline and the command line).
    pub registry: RegistryOptions,
}

/// Runs the pipeline; the returned record is also the ledger's last line for the run.
/// `exit_code` maps a failure to the documented exit codes for the ledger.
pub fn run_pipeline(
    pipeline: &Pipeline,
    options: &RunOptions,
    exit_code: fn(&anyhow::Error) -> u8,
) -> anyhow::Result<RunRecord> {
    let workspace = Workspace::new(&pipeline.workspace);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut record = RunRecord::new(&pipeline.name, &options.trigger, RunStatus::Running);
    let draft = runtime.block_on(workspace.store().begin("run", &record.run_id))?;
    for run in ledger::mark_interrupted(&workspace)? {
        tracing::warn!(run_id = %run, "An earlier run was interrupted; marked so in the ledger.");
    }
    ledger::append(&workspace, &record)?;
    let result = stages(pipeline, options, &runtime, draft, &mut record);
    record.ended_at = Some(chrono::Utc::now().to_rfc3339());
    match result {
        Ok(status) => {
            record.status = status;
            record.exit_code = Some(0);
            ledger::append(&workspace, &record)?;
            Ok(record)
        }
        Err(error) => {
            record.status = RunStatus::Failed;
            // Errors can quote input (a block key, a value): identifiers are masked.
            record.error = Some(crate::redact::mask_identifiers(&format!("{error:#}")));
            record.exit_code = Some(exit_code(&error));
            if let Err(e) = ledger::append(&workspace, &record) {
                tracing::error!(error = %e, "Could not record the failed run in the ledger.");
            }
            Err(error)
        }
    }
}

/// SHA-256 of what decides the results besides the inputs: the pipeline file, its layouts and
/// terpadu's version.
fn config_fingerprint(pipeline: &Pipeline) -> String {
    let mut hasher = Sha256::new();
    hasher.update(env!("CARGO_PKG_VERSION").as_bytes());
    hasher.update(std::fs::read(&pipeline.file).unwrap_or_default());
    let layouts: std::collections::BTreeMap<&str, &std::path::PathBuf> = pipeline
        .sources
        .iter()
        .map(|s| (s.layout.name.as_str(), &s.layout.file))
        .collect();
    for file in layouts.values() {
        hasher.update(std::fs::read(file).unwrap_or_default());
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn stage(name: &str, clock: Instant, rows_in: u64, rows_out: u64) -> StageRecord {
    StageRecord {
        stage: name.to_string(),
        seconds: clock.elapsed().as_secs_f64(),
        rows_in,
        rows_out,
        peak_rss_mib: crate::metrics::peak_rss_bytes().map(|b| b >> 20),
    }
}

fn stages(
    pipeline: &Pipeline,
    options: &RunOptions,
    runtime: &tokio::runtime::Runtime,
    mut draft: Draft,
    record: &mut RunRecord,
) -> anyhow::Result<RunStatus> {
    let workspace = Workspace::new(&pipeline.workspace);
    // Arrival.
    let mut not_ready = Vec::new();
    let mut ready = Vec::new();
    let mut wait_budget = arrival::MAX_TOTAL_WAIT;
    for source in &pipeline.sources {
        let readiness = arrival::check(source, &mut wait_budget);
        match (&readiness.not_ready, source.arrival.required) {
            (None, _) => ready.push(readiness),
            (Some(reason), true) => not_ready.push(reason.to_string()),
            (Some(reason), false) => {
                let note = format!("{reason}; optional, so its previous staged version is kept");
                tracing::warn!(source = %source.name, "{note}");
                record.notes.push(note);
            }
        }
    }
    if !not_ready.is_empty() {
        return Err(RunError::NotReady(not_ready).into());
    }

    // Change detection against what the latest version stages: a source is re-staged unless
    // its table exists and came from byte-identical inputs. A changed pipeline, layout or
    // terpadu version re-stages everything; sources removed from the pipeline force a rebuild.
    record.config_sha256 = Some(config_fingerprint(pipeline));
    let config_changed = ledger::last_succeeded(&workspace)
        .is_none_or(|run| run.config_sha256 != record.config_sha256);
    let base = draft.snapshot();
    let staged: Option<IngestManifest> = base.document("staged");
    let mut changed = Vec::new();
    for readiness in &ready {
        let inputs = arrival::fingerprint(&readiness.source, &readiness.files).map_err(|e| {
            RunError::Read {
                path: readiness.source.clone(),
                message: e.to_string(),
            }
        })?;
        let entry = staged
            .as_ref()
            .and_then(|m| m.sources.iter().find(|s| s.name == readiness.source));
        let same = entry.is_some_and(|entry| {
            let mut before: Vec<(u64, &str)> = entry
                .inputs
                .iter()
                .map(|i| (i.bytes, i.sha256.as_str()))
                .collect();
            let mut now: Vec<(u64, &str)> = inputs
                .iter()
                .map(|i| (i.bytes, i.sha256.as_str()))
                .collect();
            before.sort_unstable();
            now.sort_unstable();
            before == now && base.has_table(&entry.staged_table)
        });
        if options.force || config_changed || !same {
            changed.push(readiness.source.clone());
        }
        record.inputs.extend(inputs);
    }
    // Optional sources that did not arrive keep their staged inputs in the record.
    if let Some(manifest) = &staged {
        for entry in &manifest.sources {
            let in_pipeline = pipeline.sources.iter().any(|s| s.name == entry.name);
            if in_pipeline && !ready.iter().any(|r| r.source == entry.name) {
                record
                    .inputs
                    .extend(entry.inputs.iter().map(|i| InputRecord {
                        source: entry.name.clone(),
                        path: i.path.clone(),
                        bytes: i.bytes,
                        sha256: i.sha256.clone(),
                    }));
            }
        }
    }
    let removed: Vec<String> = staged
        .as_ref()
        .map(|m| {
            m.sources
                .iter()
                .filter(|e| !pipeline.sources.iter().any(|s| s.name == e.name))
                .map(|e| e.name.clone())
                .collect()
        })
        .unwrap_or_default();
    if !removed.is_empty() {
        ingest::forget_sources(&mut draft, &removed);
        record.notes.push(format!(
            "no longer in the pipeline, removed from the staged data: {}",
            removed.join(", ")
        ));
    }
    let registry_exists = base.document::<RegistryMeta>("registry").is_some();
    let reports_current =
        report::of_version(&base).is_some_and(|(m, _)| m.masked != options.unmasked);
    if changed.is_empty() && removed.is_empty() && registry_exists {
        if reports_current {
            tracing::info!("No input changed since the last successful run; nothing to do.");
            record.registry_version = Some(base.version().to_string());
            return Ok(RunStatus::SkippedUnchanged);
        }
        // Only the reports are missing (or masked differently): write them.
        record
            .stages
            .push(report_stage(runtime, &mut draft, pipeline, options, 0)?);
        publish(runtime, draft, pipeline, record)?;
        return Ok(RunStatus::Succeeded);
    }

    // Ingest what changed.
    if !changed.is_empty() {
        let clock = Instant::now();
        let manifest = runtime.block_on(ingest::stage(
            &mut draft,
            pipeline,
            &IngestOptions {
                only: changed.clone(),
                today: crate::config::today(pipeline),
                progress: options.progress,
                threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            },
        ))?;
        let (read, staged, _, _) = manifest.totals();
        record.stages.push(stage("ingest", clock, read, staged));
        let unchanged: Vec<&str> = ready
            .iter()
            .map(|r| r.source.as_str())
            .filter(|s| !changed.iter().any(|c| c == s))
            .collect();
        if !unchanged.is_empty() {
            record.notes.push(format!(
                "unchanged since the last successful run, not re-staged: {}",
                unchanged.join(", ")
            ));
        }
    }

    // Link and build the registry.
    let clock = Instant::now();
    let built = runtime.block_on(registry::build_in(&mut draft, &options.registry))?;
    record.stages.push(stage(
        "link",
        clock,
        built.link.records as u64,
        built.meta.rows.get("person").copied().unwrap_or(0) as u64,
    ));

    record.stages.push(report_stage(
        runtime,
        &mut draft,
        pipeline,
        options,
        built.link.records as u64,
    )?);
    publish(runtime, draft, pipeline, record)?;
    Ok(RunStatus::Succeeded)
}

/// Commits the run's version, then vacuums what no kept version needs (a vacuum that fails
/// is noted, not fatal: the version is published).
fn publish(
    runtime: &tokio::runtime::Runtime,
    draft: Draft,
    pipeline: &Pipeline,
    record: &mut RunRecord,
) -> anyhow::Result<()> {
    let store = draft.store().clone();
    let published = runtime.block_on(draft.commit())?;
    record.registry_version = Some(published.record.version.to_string());
    match runtime.block_on(crate::store::vacuum(
        &store,
        pipeline.retention,
        &published.lock,
    )) {
        Ok(summary) => tracing::info!(
            files_deleted = summary.files_deleted,
            versions_kept = summary.versions_kept.len(),
            "Vacuumed."
        ),
        Err(e) => {
            tracing::warn!(error = %e, "Vacuum failed; the run's version is published.");
            record.notes.push(format!("vacuum failed: {e}"));
        }
    }
    Ok(())
}

/// Writes the reports; `rows_in` is what the stage read (the linked records).
fn report_stage(
    runtime: &tokio::runtime::Runtime,
    draft: &mut Draft,
    pipeline: &Pipeline,
    options: &RunOptions,
    rows_in: u64,
) -> anyhow::Result<StageRecord> {
    let clock = Instant::now();
    let (reports, dir) = runtime.block_on(report::build_in(
        draft,
        pipeline,
        &ReportOptions {
            unmasked: options.unmasked,
        },
    ))?;
    let rows: u64 = reports.reports.iter().map(|r| r.rows as u64).sum();
    if options.unmasked {
        ledger::record_unmasked(&Workspace::new(&pipeline.workspace), "run --unmasked", &dir);
    }
    Ok(stage("report", clock, rows_in, rows))
}
