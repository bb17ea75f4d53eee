//! `terpadu schedule`: a long-running daemon that runs each pipeline at the times its
//! `schedule` (cron) names, in its time zone.
//!
//! One task per pipeline: sleep until the next time, run the pipeline ([`crate::ops`]) on a
//! thread of its own, retry a failed run with exponential backoff, repeat. Runs of one pipeline
//! never overlap (the task waits for its run; the run lock also keeps manual runs out). SIGTERM
//! or SIGINT stops the daemon: waiting tasks end at once, a run in progress is finished first,
//! so nothing is ever left half-published.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use crate::config::Pipeline;
use crate::ops::{self, RunOptions};

/// The next `count` times of a pipeline's schedule, in its time zone.
pub fn upcoming(pipeline: &Pipeline, count: usize) -> Vec<String> {
    let Some(spec) = &pipeline.schedule else {
        return Vec::new();
    };
    spec.cron
        .upcoming(spec.timezone)
        .take(count)
        .map(|t| t.to_rfc3339())
        .collect()
}

/// Runs the daemon until SIGTERM or SIGINT. `options` builds the run options of a pipeline.
pub async fn daemon(
    pipelines: Vec<Pipeline>,
    options: fn(&Pipeline) -> RunOptions,
    exit_code: fn(&anyhow::Error) -> u8,
) -> anyhow::Result<()> {
    let (stop, stopped) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "Shutting down: no new runs; a run in progress is finished first."),
            _ = int.recv() => tracing::info!(signal = "SIGINT", "Shutting down: no new runs; a run in progress is finished first."),
        }
        let _ = stop.send(true);
    });
    let mut tasks = Vec::new();
    for pipeline in pipelines {
        tasks.push(tokio::spawn(pipeline_loop(
            pipeline,
            stopped.clone(),
            options,
            exit_code,
        )));
    }
    for task in tasks {
        task.await?;
    }
    tracing::info!("Scheduler stopped.");
    Ok(())
}

/// Sleeps `duration` unless a stop arrives first; true when stopped.
async fn sleep_or_stop(duration: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    if *stopped.borrow() {
        return true;
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

async fn pipeline_loop(
    pipeline: Pipeline,
    mut stopped: watch::Receiver<bool>,
    options: fn(&Pipeline) -> RunOptions,
    exit_code: fn(&anyhow::Error) -> u8,
) {
    let Some(spec) = pipeline.schedule.clone() else {
        return;
    };
    loop {
        let Some(next) = spec.cron.upcoming(spec.timezone).next() else {
            tracing::warn!(pipeline = %pipeline.name, "The schedule has no future times; this pipeline will not run again.");
            return;
        };
        let wait = (next.with_timezone(&Utc) - Utc::now())
            .to_std()
            .unwrap_or_default();
        tracing::info!(pipeline = %pipeline.name, next = %next.to_rfc3339(), "Next run scheduled.");
        if sleep_or_stop(wait, &mut stopped).await {
            return;
        }
        for attempt in 0..=spec.retries {
            let (done, result) = tokio::sync::oneshot::channel();
            let run_pipeline = pipeline.clone();
            let run_options = options(&pipeline);
            // A thread of its own: the run builds its own query runtime.
            std::thread::spawn(move || {
                let _ = done.send(ops::run_pipeline(&run_pipeline, &run_options, exit_code));
            });
            match result.await {
                Ok(Ok(record)) => {
                    tracing::info!(pipeline = %pipeline.name, run_id = %record.run_id, status = record.status.as_str(), "Scheduled run finished.");
                    break;
                }
                Ok(Err(error)) => {
                    let retry = attempt < spec.retries;
                    tracing::error!(pipeline = %pipeline.name, attempt = attempt + 1, exit_code = exit_code(&error), error = %format!("{error:#}"), retry, "Scheduled run failed.");
                    if !retry {
                        break;
                    }
                    let backoff = Duration::from_secs(
                        spec.backoff_seconds.saturating_mul(1 << attempt.min(10)),
                    );
                    if sleep_or_stop(backoff, &mut stopped).await {
                        return;
                    }
                }
                Err(_) => {
                    tracing::error!(pipeline = %pipeline.name, "A scheduled run ended without a result (it panicked); see the ledger.");
                    break;
                }
            }
        }
        if *stopped.borrow() {
            return;
        }
    }
}
