//! `terpadu check`: validate a pipeline before anything runs.

use std::path::PathBuf;

use anyhow::Result;

use super::{EXIT_CONFIG, EXIT_MISSING_INPUT, EXIT_OK};
use crate::config::{self, ConfigError, Overrides};
use crate::ingest::{self, IngestError};

pub(super) const LONG_ABOUT: &str = "\
Validate a pipeline without loading any data.

Checks the pipeline file and every layout it names (unknown keys, unknown fields, bad date
patterns, code mappings to impossible values, duplicate source names), then reads only the
header of each input file and reports layout columns it lacks. Every problem is printed with
its file and key; nothing stops at the first one.

With --serve-config, also checks the server config of `terpadu serve` (listeners, TLS files,
limits, roles, users' hashes and region scopes).

Exit code 0 when everything is in order, 2 for configuration problems, 3 when an input is
missing.

Examples:
  terpadu check pipelines/sample.toml
  terpadu check pipelines/sample.toml --serve-config /etc/terpadu/serve.toml";

/// Arguments of `terpadu check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Check configuration only; do not look at input files.
    #[arg(long)]
    no_inputs: bool,

    /// Also check this `terpadu serve` config.
    #[arg(long, value_name = "FILE")]
    serve_config: Option<PathBuf>,
}

pub(super) fn run(args: Args) -> Result<u8> {
    let pipeline = match config::load_pipeline(&args.pipeline, &Overrides::default()) {
        Ok(p) => p,
        Err(ConfigError::Invalid(problems)) => {
            for problem in &problems {
                println!("{problem}");
            }
            println!("{} problem(s) found; nothing was run.", problems.len());
            return Ok(EXIT_CONFIG);
        }
    };
    println!(
        "{}: pipeline '{}' with {} source(s), workspace {}",
        args.pipeline.display(),
        pipeline.name,
        pipeline.sources.len(),
        pipeline.workspace.display()
    );
    let mut code = EXIT_OK;
    for source in &pipeline.sources {
        let layout = &source.layout;
        let status = if args.no_inputs {
            "inputs not checked".to_string()
        } else {
            match ingest::check_inputs(source, pipeline.province.clone()) {
                Ok(files) => format!("{} file(s), headers match", files.len()),
                Err(e) => {
                    code = code.max(match e {
                        IngestError::NoInput { .. } => EXIT_MISSING_INPUT,
                        _ => EXIT_CONFIG,
                    });
                    format!(
                        "PROBLEM: {}",
                        crate::redact::escape_controls(&e.to_string())
                    )
                }
            }
        };
        println!(
            "  {:<14} {:<17} layout {:<20} {}",
            source.name,
            source.role.as_str(),
            layout.name,
            status
        );
    }
    // Rules are SQL: plan each against the current registry's views when there is one.
    let rules = crate::report::rule_predicates(&pipeline);
    if !rules.is_empty() {
        let workspace = crate::workspace::Workspace::new(&pipeline.workspace);
        let runtime = super::runtime()?;
        let published = runtime
            .block_on(crate::registry::pin_registry(&workspace))
            .is_ok();
        if !published {
            println!(
                "  {} rule(s): SQL checked against the registry once `terpadu link` has published one",
                rules.len()
            );
        } else {
            let problems = runtime.block_on(crate::report::check_rules(&pipeline))?;
            for (key, message) in &problems {
                println!("{}: {key}: {message}", args.pipeline.display());
            }
            if problems.is_empty() {
                println!("  {} rule(s): SQL plans against the registry", rules.len());
            } else {
                code = code.max(EXIT_CONFIG);
            }
        }
    }
    if let Some(path) = &args.serve_config {
        match crate::serve::config::ServeConfig::load(path) {
            Ok(serve) => {
                let listener = |a: Option<std::net::SocketAddr>| {
                    a.map_or("off".to_string(), |a| a.to_string())
                };
                println!(
                    "{}: server config with {} users, postgres {}, flight {}, TLS {}",
                    path.display(),
                    serve.users.len(),
                    listener(serve.postgres),
                    listener(serve.flight),
                    if serve.tls.is_some() { "on" } else { "off" }
                );
            }
            Err(ConfigError::Invalid(problems)) => {
                for problem in &problems {
                    println!("{problem}");
                }
                println!(
                    "{} problem(s) in the server config {}.",
                    problems.len(),
                    path.display()
                );
                code = code.max(EXIT_CONFIG);
            }
        }
    }
    if code == EXIT_OK {
        println!("All checks passed.");
    }
    Ok(code)
}
