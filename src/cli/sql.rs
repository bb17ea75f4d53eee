//! `terpadu sql`: query the workspace, one statement or an interactive prompt.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::catalog::{QueryLimits, ReadOnlySession};
use crate::sql::{OutputFormat, print_batches};
use crate::workspace::Workspace;

pub(super) const LONG_ABOUT: &str = "\
Query a pipeline's workspace with SQL (DataFusion dialect, close to PostgreSQL).

Tables: one per staged source (named after the source: dukcapil, dtks, pkh...), `quarantine`
(unreadable rows with reasons), `ingest_sources` (counts of the last ingest), the registry
(person, family, record_link, program_membership, registry_changes, match_pairs), the reports
(report_<name>) and the run ledger (runs, run_stages). Functions: nik_clean, nik_status,
nik_birth_date, nik_sex, nik_district, normalize_name, mask_id, region_name. Use `SHOW
TABLES` and `DESCRIBE pkh` to explore.

The session pins one workspace version when it starts (the latest, or --version N) and
answers from it for as long as it lives, whatever runs publish meanwhile. It is read-only:
INSERT, DELETE, UPDATE, COPY, CREATE, DROP and SET are refused, and so are file paths in FROM.
A statement may use --memory-limit-mb of memory (default 4096) and run --timeout-seconds
(default 300).

Without a query, opens an interactive prompt with history: end statements with ';',
\\d lists tables, \\d NAME describes one, \\f csv|json|table switches the output, \\q quits.

Examples:
  terpadu sql pipelines/sample.toml \"SELECT nik_status, count(*) FROM pkh GROUP BY 1\"
  terpadu sql pipelines/sample.toml --format csv \"SELECT * FROM quarantine\" > quarantine.csv
  terpadu sql pipelines/sample.toml";

/// Arguments of `terpadu sql`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// The statement to run. Without it: an interactive prompt.
    #[arg(value_name = "QUERY")]
    query: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,

    /// Query this workspace version instead of the latest (a number; see `terpadu status`).
    #[arg(long, value_name = "VERSION")]
    version: Option<String>,

    /// Memory one statement may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 4096)]
    memory_limit_mb: usize,

    /// Seconds after which a statement is stopped.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    timeout_seconds: u64,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> Result<u8> {
    let (_, workspace) = super::pipeline_and_workspace(&args.pipeline, args.workspace.clone())?;
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let limits = QueryLimits {
            memory_bytes: args.memory_limit_mb << 20,
            timeout: std::time::Duration::from_secs(args.timeout_seconds),
        };
        let session = ReadOnlySession::open(&workspace, args.version.as_deref(), limits).await?;
        match &args.query {
            Some(query) => {
                let batches = session.query(query).await?;
                let mut out = std::io::stdout().lock();
                print_batches(&mut out, &batches, args.format)?;
                out.flush()?;
                Ok(EXIT_OK)
            }
            None => repl(&session, &workspace, args.format).await,
        }
    })
}

async fn repl(
    session: &ReadOnlySession,
    workspace: &Workspace,
    mut format: OutputFormat,
) -> Result<u8> {
    let interactive = std::io::stdin().is_terminal();
    let mut editor = rustyline::DefaultEditor::new().context("opening the prompt")?;
    let history = workspace.root().join(".sql_history");
    let _ = editor.load_history(&history);
    if interactive {
        println!(
            "terpadu sql on {}, version {} ({} tables, read-only). End statements with ';'. \\d lists tables, \\q quits.",
            workspace.root().display(),
            session.version(),
            session.tables().len()
        );
    }
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "terpadu> "
        } else {
            "     ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(rustyline::error::ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(rustyline::error::ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("reading the prompt"),
        };
        let trimmed = line.trim();
        if buffer.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            let mut words = trimmed.split_whitespace();
            match (words.next(), words.next()) {
                (Some("\\q"), _) => break,
                (Some("\\d"), None) => {
                    for table in session.tables() {
                        println!("  {:<16} {}", table.name, table.description);
                    }
                }
                (Some("\\d"), Some(name)) => {
                    run_statement(session, &format!("DESCRIBE {name}"), format).await
                }
                (Some("\\f"), Some(name)) => match name {
                    "csv" => format = OutputFormat::Csv,
                    "json" => format = OutputFormat::Json,
                    "table" => format = OutputFormat::Table,
                    other => println!("unknown format '{other}' (csv, json, table)"),
                },
                _ => println!("commands: \\d [TABLE], \\f csv|json|table, \\q"),
            }
            continue;
        }
        if matches!(trimmed, "quit" | "exit") && buffer.is_empty() {
            break;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if trimmed.ends_with(';') {
            let statement = std::mem::take(&mut buffer);
            let _ = editor.add_history_entry(statement.trim());
            run_statement(session, statement.trim().trim_end_matches(';'), format).await;
        }
    }
    if !buffer.trim().is_empty() {
        run_statement(session, buffer.trim(), format).await;
    }
    let _ = editor.save_history(&history);
    Ok(EXIT_OK)
}

async fn run_statement(session: &ReadOnlySession, sql: &str, format: OutputFormat) {
    let clock = std::time::Instant::now();
    match session.query(sql).await {
        Ok(batches) => {
            let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
            let mut out = std::io::stdout().lock();
            if let Err(e) = print_batches(&mut out, &batches, format) {
                eprintln!("error: {e}");
            }
            let _ = out.flush();
            eprintln!("{rows} row(s) in {:.3}s", clock.elapsed().as_secs_f64());
        }
        Err(e) => eprintln!("error: {e}"),
    }
}
