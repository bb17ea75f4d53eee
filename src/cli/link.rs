//! `terpadu link` and `terpadu evaluate`: record linkage into the published registry, and its
//! measurement (links and report cases) against ground truth.

use std::collections::HashMap;
use std::path::PathBuf;

use anyhow::{Context, Result};

use super::EXIT_OK;
use crate::config::{self, Overrides};
use crate::link::evaluate::{EvalRecord, PairCounts, evaluate, pair_counts, read_truth};
use crate::link::stage::{LinkOptions, cluster_pairs};
use crate::registry::{self, RegistryOptions};
use crate::workspace::Workspace;

pub(super) const LINK_ABOUT: &str = "\
Link staged records into persons and families, and publish the unified registry.

Blocks candidate pairs (by default: same NIK; same NIK region+date; same district and birth
date; same village and name; same KK and first name; same NIK district, name and birth year;
same name and birth date; or the pipeline's [[linkage.blocking]] rules), counts each rule's
pairs first and refuses one above --max-pairs-per-rule, compares every pair (NIK, name, birth
date, sex, KK, region levels), estimates u from random pairs, m from strong labels and the prior
by EM (or scores with --model FILE), weighs common names and dates down, and merges pairs at or
above --threshold into persons, never merging two civil-registry records with different NIKs.

Publishes a new workspace version whose registry tables (Delta tables under
<workspace>/store/registry/) are person, family, record_link, program_membership,
registry_changes and match_pairs (queried with `terpadu sql`), plus files/v<N>/model.json.
Nothing is visible until the version is committed. Person and family ids carry over from the
previous version, and numbers never issued before go to new people; what split, merged or was
retired is in registry_changes.

Examples:
  terpadu link pipelines/sample.toml
  terpadu explain pipelines/sample.toml pkh:12
  terpadu evaluate pipelines/sample.toml --truth sample_data/truth.csv";

pub(super) const EVALUATE_ABOUT: &str = "\
Measure the last link run against ground truth (the generator's truth.csv).

Prints pairwise precision, recall and F1 (a pair is two records placed in one cluster), the
share of persons whose records form exactly one cluster, the same figures per source and per
noise kind, and a threshold table: the run's scored pairs re-clustered at probabilities from
0.5 to 0.99999, so you can choose --threshold for `terpadu link`.

Example:
  terpadu evaluate pipelines/sample.toml --truth sample_data/truth.csv";

/// Arguments of `terpadu link`.
#[derive(Debug, clap::Args)]
pub struct LinkArgs {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// Link pairs whose match probability is at least this [default: the pipeline's
    /// linkage.threshold, else 0.95].
    #[arg(long, value_parser = probability)]
    threshold: Option<f64>,

    /// Refuse a blocking rule that would produce more pairs than this [default: the
    /// pipeline's linkage.max_pairs_per_rule, else 50000000].
    #[arg(long)]
    max_pairs_per_rule: Option<u64>,

    /// Score with this saved model (files/v<N>/model.json of a version) instead of fitting one.
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,

    /// Do not weigh agreement on common names and birth dates down by their frequency.
    #[arg(long)]
    no_term_frequency: bool,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

/// Arguments of `terpadu evaluate`.
#[derive(Debug, clap::Args)]
pub struct EvaluateArgs {
    /// The pipeline file (pipelines/*.toml).
    #[arg(value_name = "PIPELINE", value_parser = super::pipeline_path)]
    pipeline: PathBuf,

    /// The ground-truth file written by `terpadu sample`.
    #[arg(long, value_name = "FILE")]
    truth: PathBuf,

    /// Workspace directory (default: the pipeline's).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
}

fn probability(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!("'{text}' is not a probability between 0 and 1")),
    }
}

/// Registry options: command-line values first, then the pipeline's `[linkage]`, then the
/// defaults.
pub(super) fn registry_options(
    pipeline: &crate::config::Pipeline,
    threshold: Option<f64>,
    max_pairs_per_rule: Option<u64>,
    model: Option<(String, crate::link::model::Model)>,
    no_term_frequency: bool,
) -> RegistryOptions {
    let defaults = RegistryOptions::default();
    let linkage = &pipeline.linkage;
    RegistryOptions {
        link: LinkOptions {
            threshold: threshold
                .or(linkage.threshold)
                .unwrap_or(defaults.link.threshold),
            max_pairs_per_rule: max_pairs_per_rule
                .or(linkage.max_pairs_per_rule)
                .unwrap_or(defaults.link.max_pairs_per_rule),
            model,
            term_frequency: !no_term_frequency && linkage.term_frequency.unwrap_or(true),
            rules: linkage.blocking.clone(),
            comparisons: linkage.comparisons.clone(),
            ..defaults.link
        },
    }
}

pub(super) fn run_link(args: LinkArgs) -> Result<u8> {
    let pipeline = config::load_pipeline(
        &args.pipeline,
        &Overrides {
            workspace: args.workspace,
        },
    )?;
    let model = match &args.model {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the model {}", path.display()))?;
            let model = serde_json::from_str(&text).with_context(|| {
                format!(
                    "{} is not a terpadu model (files/v<N>/model.json of a workspace version)",
                    path.display()
                )
            })?;
            Some((path.display().to_string(), model))
        }
        None => None,
    };
    let options = registry_options(
        &pipeline,
        args.threshold,
        args.max_pairs_per_rule,
        model,
        args.no_term_frequency,
    );
    let threshold = options.link.threshold;
    let runtime = super::runtime()?;
    let built = runtime
        .block_on(registry::build(&pipeline, &options))
        .with_context(|| format!("linking pipeline '{}'", pipeline.name))?;
    let summary = &built.link;
    println!("records            {}", summary.records);
    for (rule, pairs) in &summary.rules {
        println!("  rule {rule:<22} {pairs} pairs");
    }
    println!("candidate pairs    {}", summary.candidate_pairs);
    if summary.model_source == "fitted" {
        println!(
            "model              fitted; EM {} iterations, converged: {}, lambda {:.4}",
            summary.em_iterations, summary.em_converged, summary.lambda
        );
    } else {
        println!("model              {}", summary.model_source);
    }
    println!(
        "linked pairs       {} (threshold {})",
        summary.linked_pairs, threshold
    );
    println!("refused merges     {}", summary.refused_merges);
    let rows = |table: &str| built.meta.rows.get(table).copied().unwrap_or(0);
    println!("persons            {}", rows("person"));
    println!("families           {}", rows("family"));
    println!("program records    {}", rows("program_membership"));
    if built.meta.changes.is_empty() {
        println!("id changes         none");
    } else {
        let changes: Vec<String> = built
            .meta
            .changes
            .iter()
            .map(|(kind, n)| format!("{n} {kind}"))
            .collect();
        println!("id changes         {}", changes.join(", "));
    }
    let steps: Vec<String> = built
        .meta
        .seconds
        .iter()
        .map(|(step, s)| format!("{step} {s:.2}s"))
        .collect();
    println!("time               {}", steps.join(", "));
    let compare_seconds = summary
        .seconds
        .iter()
        .find(|(step, _)| step.contains("comparisons"))
        .map_or(0.0, |(_, s)| *s);
    println!(
        "pairs per second   {:.0} (blocking and comparisons)",
        summary.candidate_pairs as f64 / compare_seconds.max(1e-9)
    );
    if let Some(peak) = crate::metrics::peak_rss_bytes() {
        println!("peak memory        {} MiB", peak >> 20);
    }
    println!(
        "published          workspace version {} (model: {})",
        built.meta.version,
        pipeline
            .workspace
            .join(format!("files/v{}/model.json", built.meta.version))
            .display()
    );
    Ok(EXIT_OK)
}

pub(super) fn run_evaluate(args: EvaluateArgs) -> Result<u8> {
    let pipeline = config::load_pipeline(
        &args.pipeline,
        &Overrides {
            workspace: args.workspace,
        },
    )?;
    let runtime = super::runtime()?;
    let (linked, pairs) = runtime.block_on(async {
        let snapshot = registry::pin_registry(&Workspace::new(&pipeline.workspace)).await?;
        registry::read_linked(&snapshot).await
    })?;
    let truth = read_truth(&args.truth)?;
    // Records the truth file knows, with a number per true person.
    let mut person_ids: HashMap<&str, u64> = HashMap::new();
    let mut truth_of: Vec<Option<(u64, &[String])>> = Vec::with_capacity(linked.len());
    for record in &linked {
        let entry = truth.get(&(record.source.clone(), record.source_row));
        truth_of.push(entry.map(|(person, _family, noise)| {
            let next = person_ids.len() as u64;
            (
                *person_ids.entry(person.as_str()).or_insert(next),
                noise.as_slice(),
            )
        }));
    }
    let unknown = truth_of.iter().filter(|t| t.is_none()).count();
    let records_at = |clusters: &[u64]| -> Vec<EvalRecord> {
        linked
            .iter()
            .zip(&truth_of)
            .filter_map(|(record, truth)| {
                let (person, noise) = (*truth)?;
                Some(EvalRecord {
                    predicted: clusters
                        .get(record.rid as usize)
                        .copied()
                        .unwrap_or(record.person),
                    truth: person,
                    source: record.source.clone(),
                    noise: noise.to_vec(),
                    nik_status: record
                        .nik_status
                        .clone()
                        .unwrap_or_else(|| "missing".into()),
                })
            })
            .collect()
    };
    let current: Vec<u64> = linked.iter().map(|r| r.person).collect();
    let e = evaluate(&records_at(&current));
    let line = |name: &str, c: &PairCounts| {
        println!(
            "{name:<24} {:>9.4} {:>9.4} {:>9.4} {:>10} {:>10}",
            c.precision(),
            c.recall(),
            c.f1(),
            c.predicted,
            c.actual
        );
    };
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "pairs", "precision", "recall", "f1", "predicted", "true"
    );
    line("overall", &e.overall);
    for (source, c) in &e.by_source {
        line(&format!("source {source}"), c);
    }
    for (status, c) in &e.by_nik_status {
        line(&format!("NIK {status}"), c);
    }
    for (kind, c) in &e.by_noise {
        line(&format!("noise {kind}"), c);
    }
    println!(
        "persons found exactly    {} of {} ({:.2}%)",
        e.persons_exact,
        e.persons,
        100.0 * e.persons_exact as f64 / e.persons.max(1) as f64
    );
    if unknown > 0 {
        println!("records without truth    {unknown}");
    }
    // The same links re-clustered at other thresholds, so users can choose.
    println!();
    println!(
        "{:<24} {:>9} {:>9} {:>9} {:>10}",
        "threshold (probability)", "precision", "recall", "f1", "clusters"
    );
    let registry: Vec<Option<String>> = linked.iter().map(|r| r.registry_nik.clone()).collect();
    for threshold in [0.5, 0.9, 0.95, 0.99, 0.999, 0.9999, 0.99999] {
        let clustering = cluster_pairs(registry.clone(), &pairs, threshold);
        let counts = pair_counts(&records_at(&clustering.cluster_ids));
        println!(
            "{:<24} {:>9.4} {:>9.4} {:>9.4} {:>10}",
            threshold,
            counts.precision(),
            counts.recall(),
            counts.f1(),
            clustering.cluster_count()
        );
    }
    // Report cases against truth, when the current version has reports.
    let runtime = super::runtime()?;
    let measured = runtime.block_on(async {
        let session = crate::sql::Session::open(&Workspace::new(&pipeline.workspace)).await?;
        crate::report::evaluate::evaluate_reports(&session, &pipeline, &truth).await
    })?;
    if !measured.is_empty() {
        println!();
        println!(
            "{:<30} {:>9} {:>9} {:>10} {:>10}",
            "report cases", "precision", "recall", "listed", "true"
        );
        for (report, c) in &measured {
            println!(
                "{report:<30} {:>9.4} {:>9.4} {:>10} {:>10}",
                c.precision(),
                c.recall(),
                c.predicted,
                c.actual
            );
        }
    }
    Ok(EXIT_OK)
}
