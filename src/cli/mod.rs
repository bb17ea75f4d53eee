//! The command line: clap definitions (the doc comments are the help), logging set-up, and the
//! mapping of errors to exit codes. Each subcommand lives in its own file and calls the library.

mod bench;
mod check;
mod explain;
mod ingest;
mod link;
mod report;
mod run;
mod sample;
mod serve;
mod sql;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::config::ConfigError;
use crate::ingest::IngestError;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the run failed (I/O, workspace, query).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: bad configuration or usage; nothing was run.
pub const EXIT_CONFIG: u8 = 2;
/// Exit code: a required input is missing; nothing was run.
pub const EXIT_MISSING_INPUT: u8 = 3;
/// Exit code: the data was rejected by a sanity threshold; nothing was published.
pub const EXIT_REJECTED: u8 = 4;
/// Exit code: an internal error (a bug in terpadu).
pub const EXIT_INTERNAL: u8 = 70;

const AFTER_HELP: &str = "\
Exit codes: 0 success (also: nothing changed, nothing to do), 1 run failed, 2 bad
configuration or usage, 3 a required input is missing, stale or still being written, 4 data
rejected by a sanity threshold (nothing published), 70 internal error (please report it).

Quick start:
  terpadu check pipelines/sample.toml      validate pipeline, layouts and input headers
  terpadu ingest pipelines/sample.toml     stage every source into workspace/sample/
  terpadu sql pipelines/sample.toml \"SELECT source, nik_status, count(*) FROM pkh GROUP BY 1, 2\"";

/// terpadu: unify Indonesia's social-assistance databases.
///
/// Loads civil-registry, welfare-registry and program extracts declared in a pipeline file,
/// cleans and validates every NIK and name, and keeps every row accounted for.
#[derive(Debug, Parser)]
#[command(name = "terpadu", version, after_help = AFTER_HELP, max_term_width = 100)]
pub struct Cli {
    /// Log format: `human` (readable lines) or `json` (one object per line, for cron
    /// and log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// More log detail (-v debug, -vv trace). `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines on standard error.
    Human,
    /// JSON lines on standard error.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a pipeline, its layouts and its input headers without loading data.
    #[command(long_about = check::LONG_ABOUT)]
    Check(check::Args),
    /// Run a pipeline end to end (the nightly job): arrival checks, ingest, link, report.
    #[command(long_about = run::LONG_ABOUT)]
    Run(run::Args),
    /// Run pipelines at their scheduled times until SIGTERM (a daemon).
    #[command(long_about = run::SCHEDULE_ABOUT)]
    Schedule(run::ScheduleArgs),
    /// List recent runs from the run ledger.
    Runs(run::LedgerArgs),
    /// Say what is current: workspace version, its inputs, and how the last run ended.
    Status(run::LedgerArgs),
    /// Publish an earlier version's contents again as a new version (nothing is deleted).
    Rollback(run::RollbackArgs),
    /// Delete files that no kept version needs (retention and keep_versions).
    #[command(long_about = run::VACUUM_ABOUT)]
    Vacuum(run::VacuumArgs),
    /// Load every source of a pipeline into typed Parquet in the workspace.
    #[command(long_about = ingest::LONG_ABOUT)]
    Ingest(ingest::Args),
    /// Link staged records into persons and families and publish the unified registry.
    #[command(long_about = link::LINK_ABOUT)]
    Link(link::LinkArgs),
    /// Explain why records were linked into a person, or not, level by level.
    #[command(long_about = explain::LONG_ABOUT)]
    Explain(explain::Args),
    /// Write the duplicate, overlap, exclusivity, inclusion/exclusion-error and quality reports.
    #[command(long_about = report::LONG_ABOUT)]
    Report(report::Args),
    /// Measure the last link run against ground truth.
    #[command(long_about = link::EVALUATE_ABOUT)]
    Evaluate(link::EvaluateArgs),
    /// Query the workspace with SQL (interactive without a query).
    #[command(long_about = sql::LONG_ABOUT)]
    Sql(sql::Args),
    /// Generate a synthetic province with ground truth (deterministic).
    #[command(long_about = sample::LONG_ABOUT)]
    Sample(sample::Args),
    /// Serve the registry over the PostgreSQL wire protocol and Arrow Flight SQL.
    #[command(long_about = serve::LONG_ABOUT)]
    Serve(serve::Args),
    /// Make a password hash or a bearer token for the server config.
    #[command(long_about = serve::HASH_ABOUT)]
    HashPassword(serve::HashArgs),
    /// Measure throughput and memory on generated data.
    #[command(long_about = bench::LONG_ABOUT)]
    Bench(bench::Args),
}

/// A pipeline file argument, checked to exist.
pub(crate) fn pipeline_path(text: &str) -> Result<PathBuf, String> {
    let path = PathBuf::from(text);
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no pipeline file at '{text}' (pipelines live in pipelines/*.toml)"
        ))
    }
}

/// The pipeline (with `--workspace` applied) and its workspace.
pub(crate) fn pipeline_and_workspace(
    pipeline: &std::path::Path,
    workspace: Option<PathBuf>,
) -> anyhow::Result<(crate::config::Pipeline, crate::workspace::Workspace)> {
    let overrides = crate::config::Overrides { workspace };
    let pipeline = crate::config::load_pipeline(pipeline, &overrides)?;
    let workspace = crate::workspace::Workspace::new(&pipeline.workspace);
    Ok((pipeline, workspace))
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let level = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("terpadu={level},deltalake_core=error,warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Human => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .compact()
            .init(),
    }
}

/// The async runtime for commands that run DataFusion queries.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")
}

/// Whether progress bars should be drawn.
pub(crate) fn show_progress(cli_format: LogFormat, quiet: bool) -> bool {
    cli_format == LogFormat::Human && !quiet && std::io::stderr().is_terminal()
}

/// Parses the command line, runs it, and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let progress = show_progress(cli.log_format, cli.quiet);
    let result = match cli.command {
        Command::Check(args) => check::run(args),
        Command::Ingest(args) => ingest::run(args, progress),
        Command::Run(args) => run::run(args, progress, "manual"),
        Command::Schedule(args) => run::schedule(args),
        Command::Runs(args) => run::runs(args),
        Command::Status(args) => run::status(args),
        Command::Rollback(args) => run::rollback(args),
        Command::Vacuum(args) => run::vacuum(args),
        Command::Link(args) => link::run_link(args),
        Command::Evaluate(args) => link::run_evaluate(args),
        Command::Explain(args) => explain::run(args),
        Command::Report(args) => report::run(args),
        Command::Sql(args) => sql::run(args),
        Command::Sample(args) => sample::run(args, progress),
        Command::Serve(args) => serve::run(args),
        Command::HashPassword(args) => serve::hash(args),
        Command::Bench(args) => bench::run(args, progress),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            if is_broken_pipe(&error) {
                return ExitCode::from(EXIT_OK);
            }
            // Messages can quote input (headers, values): control characters are escaped.
            eprintln!(
                "terpadu: {}",
                crate::redact::escape_controls(&format!("{error:#}"))
            );
            ExitCode::from(exit_code(&error))
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Maps an error to the documented exit code.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if cause.downcast_ref::<ConfigError>().is_some() {
            return EXIT_CONFIG;
        }
        if let Some(e) = cause.downcast_ref::<crate::serve::StartError>() {
            use crate::serve::StartError;
            return match e {
                StartError::Bind(..) | StartError::Flight(_) => EXIT_FAILED,
                StartError::NoUsers
                | StartError::NotLoopback(_)
                | StartError::Tls(_)
                | StartError::NothingToServe => EXIT_CONFIG,
            };
        }
        if cause
            .downcast_ref::<crate::ops::RunError>()
            .is_some_and(|e| matches!(e, crate::ops::RunError::NotReady(_)))
        {
            return EXIT_MISSING_INPUT;
        }
        if let Some(e) = cause.downcast_ref::<IngestError>() {
            return match e {
                IngestError::NoInput { .. } => EXIT_MISSING_INPUT,
                IngestError::Rejected { .. } => EXIT_REJECTED,
                IngestError::Open { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    EXIT_MISSING_INPUT
                }
                IngestError::MissingColumns { .. } | IngestError::BadPattern { .. } => EXIT_CONFIG,
                IngestError::Accounting { .. } | IngestError::Internal(_) => EXIT_INTERNAL,
                _ => EXIT_FAILED,
            };
        }
    }
    EXIT_FAILED
}
