//! `terpadu serve` and `terpadu hash-password`.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::serve::config::ServeConfig;

pub(super) const LONG_ABOUT: &str = "\
Serve the unified registry to planners' tools over the network, beside `terpadu schedule`.

Two protocols, one set of rules:
  PostgreSQL wire  psql, DBeaver, Excel/Power BI (ODBC), Metabase, Superset, psycopg
  Arrow Flight SQL ADBC (adbc-driver-flightsql), pyarrow, pandas, Polars

Who may see what is declared in the server config (--config serve.toml): users with
argon2 password hashes (`terpadu hash-password`) or token hashes, and roles:
  planner          registry and reports; NIK and KK masked
  auditor          everything, unmasked, including audit_log
  program_manager  reports only; masked
  [roles.NAME]     roles of your own: tables = [\"registry\", \"reports\", \"staged\",
                   \"operations\", \"audit\"], unmasked, scope
A user or role with `scope = \"3602\"` sees only that province/regency/district/village's
rows, in every table, join and aggregate; tables that say nothing about regions are hidden.

Every statement is recorded in the audit log (<workspace>/runs/audit.jsonl, or
[server] audit_log): user, role, client, SQL (identifiers masked), version, rows, duration,
outcome. A PostgreSQL connection reads the version current at login; a Flight SQL statement
the version current when it is planned. Statements are read-only and limited in memory,
time and number ([server] memory_limit_mb, timeout_seconds, max_concurrent_statements).

Without users the server refuses to start, unless --insecure-local (loopback only, every
login a masked planner). SIGTERM stops accepting and lets running statements finish.

Examples:
  terpadu serve pipelines/sample.toml --config contrib/serve.toml
  psql \"host=127.0.0.1 port=5433 user=planner dbname=terpadu\" -c '\\dt'
  terpadu serve pipelines/sample.toml --insecure-local";

/// Arguments of `terpadu serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml): which workspace to serve.
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// The server config (listeners, TLS, limits, roles, users).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Serve without logins, on loopback only (development, a single analyst's machine).
    #[arg(long)]
    insecure_local: bool,

    /// PostgreSQL listener (overrides the config; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    postgres: Option<SocketAddr>,

    /// Flight SQL listener (overrides the config; port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    flight: Option<SocketAddr>,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> Result<u8> {
    let (_, workspace) = super::pipeline_and_workspace(&args.pipeline, args.workspace.clone())?;
    let mut serve_config = match &args.config {
        Some(path) => ServeConfig::load(path)?,
        None => ServeConfig::parse("", std::path::Path::new("(no --config)"))?,
    };
    if let Some(address) = args.postgres {
        serve_config.postgres = Some(address);
    }
    if let Some(address) = args.flight {
        serve_config.flight = Some(address);
    }
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::info!("Shutting down: no new connections; running statements finish.");
            let _ = stop.send(true);
        });
        crate::serve::run(
            workspace,
            serve_config,
            args.insecure_local,
            shutdown,
            |bound| {
                // One line per listener on stdout, for scripts and tests that pick port 0.
                let mut out = std::io::stdout().lock();
                if let Some(a) = bound.postgres {
                    let _ = writeln!(out, "listening postgres {a}");
                }
                if let Some(a) = bound.flight {
                    let _ = writeln!(out, "listening flight {a}");
                }
                let _ = out.flush();
            },
        )
        .await
    })?;
    Ok(EXIT_OK)
}

pub(super) const HASH_ABOUT: &str = "\
Make a credential for the server config, reading the secret from standard input (so it is
not left in the shell history):

  terpadu hash-password            reads a password, prints password_hash = \"$argon2id$...\"
  terpadu hash-password --token    makes a random token, prints it once (give it to the user)
                                   and its token_sha256 for the config

Example:
  printf '%s\\n' \"$PASSWORD\" | terpadu hash-password";

/// Arguments of `terpadu hash-password`.
#[derive(Debug, clap::Args)]
pub struct HashArgs {
    /// Make a random bearer token instead of hashing a password.
    #[arg(long)]
    token: bool,
}

pub(super) fn hash(args: HashArgs) -> Result<u8> {
    let mut out = std::io::stdout().lock();
    if args.token {
        let mut bytes = [0u8; 24];
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .context("reading /dev/urandom")?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        writeln!(
            out,
            "token = \"{token}\"   # give this to the user; it is not stored"
        )?;
        writeln!(
            out,
            "token_sha256 = \"{}\"",
            crate::serve::config::hash_token(&token)
        )?;
        return Ok(EXIT_OK);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']);
    anyhow::ensure!(
        password.chars().count() >= 8,
        "a password needs at least 8 characters"
    );
    let hash = crate::serve::config::hash_password(password).map_err(anyhow::Error::msg)?;
    writeln!(out, "password_hash = \"{hash}\"")?;
    Ok(EXIT_OK)
}
