//! The link stage: staged records -> candidate pairs -> levels -> model -> scored pairs ->
//! guarded clusters, all in memory as Arrow batches. The registry stage ([`crate::registry`])
//! turns the result into published tables.
//!
//! 1. Every staged record becomes a row of one `records` table (the columns the comparisons
//!    read, the columns the registry needs, source and role), numbered `rid`, with a
//!    fingerprint (`record_key`) that survives re-sorting of the extract.
//! 2. Blocking rules are counted and capped, then their pairs generated once ([`blocking`]).
//! 3. The kernel turns each pair into level indices ([`gamma`]).
//! 4. u comes from random pairs, m from strong labels, lambda from EM over the blocked pairs
//!    ([`model`]), unless a saved model is given. Agreeing on a common name or birth date is
//!    then weighed down by its term frequency ([`TermFrequency`]).
//! 5. Pairs at or above the probability threshold are merged, strongest first, into clusters,
//!    with a guard: two civil-registry records with different NIKs are never merged.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use arrow::compute::take;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, UInt32Type};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;
use futures::StreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::blocking::{self, BlockingError, BlockingRule, RuleCount};
use super::gamma::{self, COMPARISONS};
use super::model::{
    EmReport, Gammas, Model, estimate_em, estimate_m_from_matches, estimate_u_from_random_pairs,
};
use crate::config::linkage::ComparisonSpec;
use crate::ingest::IngestManifest;
use crate::sql::SqlError;

/// Link-stage errors.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Opening the staged data failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// A blocking rule failed or exploded.
    #[error(transparent)]
    Blocking(#[from] BlockingError),
    /// A query failed.
    #[error("linking: {0}")]
    Query(#[from] DataFusionError),
    /// Arrow failed (a bug in terpadu).
    #[error("internal error while linking: {0}; please report it")]
    Arrow(#[from] arrow::error::ArrowError),
    /// A saved model does not fit this version of terpadu.
    #[error(
        "the model in {path} does not fit: {message}; fit a new one by running without --model"
    )]
    Model {
        /// The model file.
        path: String,
        /// What does not fit.
        message: String,
    },
}

/// Options of the link stage.
#[derive(Debug, Clone)]
pub struct LinkOptions {
    /// Pairs with a match probability at or above this are linked.
    pub threshold: f64,
    /// A blocking rule producing more pairs than this is refused.
    pub max_pairs_per_rule: u64,
    /// Random record pairs drawn to estimate u.
    pub random_pairs: usize,
    /// Seed of the random pairs.
    pub seed: u64,
    /// A saved model to score with instead of fitting one (`--model FILE`).
    pub model: Option<(String, Model)>,
    /// Weigh agreement on common names and birth dates down by their frequency.
    pub term_frequency: bool,
    /// Blocking rules; empty means [`default_rules`].
    pub rules: Vec<BlockingRule>,
    /// Comparisons switched off or with fixed m/u (the pipeline's `[linkage.comparisons]`).
    pub comparisons: std::collections::BTreeMap<String, ComparisonSpec>,
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            threshold: 0.95,
            max_pairs_per_rule: 50_000_000,
            random_pairs: 200_000,
            seed: 7,
            model: None,
            term_frequency: true,
            rules: Vec::new(),
            comparisons: Default::default(),
        }
    }
}

/// What the link stage did.
#[derive(Debug, Clone, Serialize)]
pub struct LinkSummary {
    /// Records linked.
    pub records: usize,
    /// Pairs per blocking rule (before the union).
    pub rules: Vec<(String, u64)>,
    /// Distinct candidate pairs scored.
    pub candidate_pairs: usize,
    /// Pairs at or above the threshold.
    pub linked_pairs: usize,
    /// Merges refused by the guard (different civil-registry NIKs).
    pub refused_merges: usize,
    /// Clusters (persons) found.
    pub clusters: usize,
    /// EM iterations and fitted prior.
    pub em_iterations: usize,
    /// Whether EM converged.
    pub em_converged: bool,
    /// Fitted prior match probability among candidate pairs.
    pub lambda: f64,
    /// Where the model came from: `fitted` or the file given.
    pub model_source: String,
    /// Seconds per step.
    pub seconds: Vec<(String, f64)>,
}

/// The in-memory result of linking, handed to the registry stage.
#[derive(Debug)]
pub struct LinkRun {
    /// One row per staged record, `rid` = row index (see [`RECORD_COLUMNS`] and
    /// [`CARRIED_COLUMNS`]), plus `record_key`.
    pub records: RecordBatch,
    /// The model the pairs were scored with.
    pub model: Model,
    /// Scored pairs with a probability of at least [`MIN_KEPT_PROBABILITY`], sorted by record
    /// numbers.
    pub pairs: Vec<ScoredPair>,
    /// The level indices of each kept pair, `COMPARISONS.len()` per pair.
    pub pair_gammas: Vec<u8>,
    /// Clusters at the threshold.
    pub clustering: Clustering,
    /// For each record, the index (into `pairs`) of its strongest link inside its cluster.
    pub best_pair: Vec<Option<u32>>,
    /// What happened.
    pub summary: LinkSummary,
}

/// The default blocking rules (see the module doc of [`blocking`]).
pub fn default_rules() -> Vec<BlockingRule> {
    let rule = |name: &str, keys: &[&str]| BlockingRule {
        name: name.into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
    };
    vec![
        rule("same_nik", &["nik"]),
        rule("nik_region_date", &["substr(nik, 1, 12)"]),
        rule("district_birth_date", &["district_code", "birth_date"]),
        rule("village_name", &["village_code", "name"]),
        rule("kk_first_name", &["no_kk", "split_part(name, ' ', 1)"]),
        rule(
            "nik_prefix_name_year",
            &[
                "substr(coalesce(nik, nik_known_prefix), 1, 6)",
                "name",
                "date_part('year', birth_date)",
            ],
        ),
        rule("name_birth_date", &["name", "birth_date"]),
    ]
}

/// Staged columns the comparisons read.
pub const RECORD_COLUMNS: &[&str] = &[
    "nik",
    "nik_known_prefix",
    "name",
    "birth_date",
    "sex",
    "no_kk",
    "province_code",
    "regency_code",
    "district_code",
    "village_code",
];

/// Staged columns carried along for the registry tables.
pub const CARRIED_COLUMNS: &[&str] = &[
    "source_file",
    "nik_status",
    "no_kk_status",
    "full_name",
    "relationship",
    "province_name",
    "regency_name",
    "district_name",
    "village_name",
    "welfare_decile",
    "household_id",
    "life_status",
    "death_date",
    "program",
    "period",
    "program_unit",
    "payee_role",
    "pregnant",
    "disability",
    "in_school",
    "quality_flags",
];

/// Raw fields whose values make a record's fingerprint: what the agency wrote, so the key
/// survives re-sorting and re-exporting the extract, and changes when the row is edited. The
/// program and period are left out: they often come from the pipeline, and a new payment
/// round must not give everyone in a list new records.
const FINGERPRINT_COLUMNS: &[&str] = &[
    "nik_raw",
    "no_kk_raw",
    "full_name",
    "birth_date_raw",
    "sex",
    "relationship",
    "village_code",
    "address",
    "household_id",
    "member_id",
    "payee_role",
];

/// Term-frequency adjustment (Splink's): when two records agree exactly on a value, the
/// level's u (how often random pairs agree) is replaced by the value's own frequency, so
/// agreeing on `SITI` or on 1 January counts less than agreeing on `KOMARUDIN`.
#[derive(Debug, Clone)]
pub struct TermFrequency {
    /// The comparison adjusted.
    pub comparison: usize,
    /// Its exact level (the only level adjusted).
    pub exact_level: u8,
    /// Frequency of each record's value among all records (0 when missing).
    pub frequency: Vec<f32>,
}

impl TermFrequency {
    /// The weight (bits) to add to a pair whose left record is `left`: log2(u_exact / tf),
    /// tf floored at one record in `n`. 0 unless the pair agrees exactly.
    pub fn adjustment(&self, model: &Model, gammas: &[u8], left: u32, n: usize) -> f64 {
        if gammas.get(self.comparison) != Some(&self.exact_level) {
            return 0.0;
        }
        let tf = f64::from(self.frequency[left as usize]).max(1.0 / n.max(1) as f64);
        let comparison = &model.comparisons[self.comparison];
        let level = usize::from(self.exact_level);
        let (m, u) = (comparison.m[level], comparison.u[level]);
        // A comparison switched off (m = u) weighs nothing, its frequency included.
        if u <= 0.0 || m == u {
            return 0.0;
        }
        (u / tf).log2()
    }
}

/// Term frequencies of `name` and `birth_date` over `records`.
pub fn term_frequencies(records: &RecordBatch) -> Result<Vec<TermFrequency>, LinkError> {
    let n = records.num_rows().max(1) as f32;
    let mut out = Vec::new();
    let position = |name: &str| COMPARISONS.iter().position(|c| c.name == name);
    if let (Some(comparison), Some(column)) = (position("name"), records.column_by_name("name")) {
        let column = arrow::compute::cast(column, &DataType::Utf8)?;
        let names = column.as_string::<i32>();
        let mut counts: HashMap<&str, u32> = HashMap::new();
        for name in names.iter().flatten() {
            *counts.entry(name).or_default() += 1;
        }
        let frequency = names
            .iter()
            .map(|v| v.map_or(0.0, |v| counts[v] as f32 / n))
            .collect();
        out.push(TermFrequency {
            comparison,
            exact_level: 0,
            frequency,
        });
    }
    if let (Some(comparison), Some(column)) =
        (position("birth_date"), records.column_by_name("birth_date"))
    {
        let column = arrow::compute::cast(column, &DataType::Int32)?;
        let dates = column.as_primitive::<Int32Type>();
        let mut counts: HashMap<i32, u32> = HashMap::new();
        for date in dates.iter().flatten() {
            *counts.entry(date).or_default() += 1;
        }
        let frequency = dates
            .iter()
            .map(|v| v.map_or(0.0, |v| counts[&v] as f32 / n))
            .collect();
        out.push(TermFrequency {
            comparison,
            exact_level: 0,
            frequency,
        });
    }
    Ok(out)
}

/// Builds the `records` batch from every staged source of `manifest` (registered in `ctx` as
/// tables named after the sources).
pub async fn load_records(
    ctx: &SessionContext,
    manifest: &IngestManifest,
) -> Result<RecordBatch, LinkError> {
    let fingerprint = FINGERPRINT_COLUMNS
        .iter()
        .map(|c| format!("coalesce(CAST({c} AS VARCHAR), '')"))
        .collect::<Vec<_>>()
        .join(", ");
    let selects: Vec<String> = manifest
        .sources
        .iter()
        .map(|s| {
            format!(
                "SELECT '{name}' AS source, '{role}' AS role, \
                 arrow_cast(source_row, 'UInt64') AS source_row, {columns}, \
                 concat_ws(chr(31), source, {fingerprint}) AS record_text FROM \"{name}\"",
                name = s.name,
                role = s.role,
                columns = RECORD_COLUMNS
                    .iter()
                    .chain(CARRIED_COLUMNS)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
        .collect();
    if selects.is_empty() {
        return Err(SqlError::NothingStaged("the workspace".into()).into());
    }
    // Stream the union; replace each batch's raw text by its fingerprint as it arrives, so
    // the text of all records is never held at once.
    let mut stream = ctx
        .sql(&selects.join(" UNION ALL "))
        .await?
        .execute_stream()
        .await?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let mut fields: Vec<Field> = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if field.name() == "record_text" {
                let text = arrow::compute::cast(column, &DataType::Utf8)?;
                let keys: StringArray = text
                    .as_string::<i32>()
                    .iter()
                    .map(|t| Some(record_key(t.unwrap_or(""))))
                    .collect();
                fields.push(Field::new("record_key", DataType::Utf8, false));
                columns.push(Arc::new(keys));
            } else {
                // Parquet strings arrive as views into the decoded pages; compact them so the
                // pages can go (a third of the memory at a million persons).
                let compact = match field.data_type() {
                    DataType::Utf8View => DataType::Utf8,
                    DataType::List(item) if item.data_type() == &DataType::Utf8View => {
                        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
                    }
                    other => other.clone(),
                };
                let column = arrow::compute::cast(column, &compact)?;
                fields.push(Field::new(field.name(), compact, field.is_nullable()));
                columns.push(column);
            }
        }
        batches.push(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?);
    }
    let schema = batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| SqlError::NothingStaged("the workspace".into()))?;
    // Record numbers follow (source, file, row), whatever order the scan produced, so that
    // results do not depend on parallelism. Columns are gathered one at a time.
    let mut keys: Vec<(String, String, u64, usize, usize)> = Vec::new();
    for (b, batch) in batches.iter().enumerate() {
        let source = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let file = arrow::compute::cast(
            batch
                .column_by_name("source_file")
                .ok_or_else(|| arrow::error::ArrowError::SchemaError("no source_file".into()))?,
            &DataType::Utf8,
        )?;
        let row = arrow::compute::cast(
            batch
                .column_by_name("source_row")
                .ok_or_else(|| arrow::error::ArrowError::SchemaError("no source_row".into()))?,
            &DataType::UInt64,
        )?;
        let (source, file, row) = (
            source.as_string::<i32>(),
            file.as_string::<i32>(),
            row.as_primitive::<arrow::datatypes::UInt64Type>(),
        );
        for i in 0..batch.num_rows() {
            keys.push((
                source.value(i).to_string(),
                file.value(i).to_string(),
                row.value(i),
                b,
                i,
            ));
        }
    }
    keys.sort_unstable();
    let positions: Vec<(usize, usize)> = keys.iter().map(|k| (k.3, k.4)).collect();
    drop(keys);
    let n = positions.len();
    let mut fields: Vec<Field> = vec![Field::new("rid", DataType::UInt32, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(UInt32Array::from_iter_values(0..n as u32))];
    // Each source column is released as soon as it has been gathered.
    let mut parts: Vec<Vec<Option<ArrayRef>>> = batches
        .into_iter()
        .map(|b| b.columns().iter().cloned().map(Some).collect())
        .collect();
    for (index, field) in schema.fields().iter().enumerate() {
        let owned: Vec<ArrayRef> = parts.iter_mut().filter_map(|b| b[index].take()).collect();
        let refs: Vec<&dyn Array> = owned.iter().map(|a| a.as_ref()).collect();
        columns.push(arrow::compute::interleave(&refs, &positions)?);
        fields.push(field.as_ref().clone());
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The fingerprint of a record's raw text: 16 hex digits of its SHA-256.
fn record_key(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Links the records registered in `ctx` (see [`load_records`]); registers them as `records`.
pub async fn link_records(
    ctx: &SessionContext,
    records: RecordBatch,
    options: &LinkOptions,
) -> Result<LinkRun, LinkError> {
    let mut seconds = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &str, clock: &mut Instant| {
        seconds.push((name.to_string(), clock.elapsed().as_secs_f64()));
        tracing::debug!(
            step = name,
            seconds = clock.elapsed().as_secs_f64(),
            rss_mib = crate::metrics::current_rss_bytes().map(|b| b >> 20),
            "Link step done."
        );
        *clock = Instant::now();
    };
    let n = records.num_rows();
    let table = MemTable::try_new(records.schema(), vec![vec![records.clone()]])?;
    ctx.register_table("records", Arc::new(table))?;

    // 2. Blocking.
    let rules = if options.rules.is_empty() {
        default_rules()
    } else {
        options.rules.clone()
    };
    let counts: Vec<RuleCount> = blocking::count_pairs(ctx, "records", &rules, 3).await?;
    for count in &counts {
        // The largest block's key is personal data (a NIK, a name with a birth date): only
        // its masked form and size reach the log.
        let largest = count
            .largest
            .first()
            .map(|(key, size)| format!("{} ({size} records)", crate::redact::mask_key(key)));
        tracing::info!(rule = %count.rule, pairs = count.pairs, blocks = count.blocks, largest = largest.as_deref().unwrap_or("-"), "Blocking rule.");
    }
    blocking::check_caps(&counts, options.max_pairs_per_rule)?;
    let mut pairs = blocking::candidate_pairs(ctx, "records", "rid", &rules)
        .await?
        .execute_stream()
        .await?;

    // 3. Levels of every candidate pair, batch by batch as pairs stream out of blocking: the
    //    two records of each pair are gathered from memory by record number (`rid` is the row
    //    index), and only the level bytes and the two record numbers are kept.
    let width = COMPARISONS.len();
    let mut gammas: Vec<u8> = Vec::new();
    let mut ends: Vec<(u32, u32)> = Vec::new();
    while let Some(batch) = pairs.next().await {
        let batch = batch?;
        let left = arrow::compute::cast(batch.column(0), &DataType::UInt32)?;
        let right = arrow::compute::cast(batch.column(1), &DataType::UInt32)?;
        let (left, right) = (
            left.as_primitive::<UInt32Type>(),
            right.as_primitive::<UInt32Type>(),
        );
        let pair_batch = gather_pairs(&records, left, right)?;
        append_rows(&gamma::gamma_batch(&pair_batch)?, &mut gammas);
        ends.extend(
            left.values()
                .iter()
                .copied()
                .zip(right.values().iter().copied()),
        );
    }
    // Sort pairs so results do not depend on join output order.
    let mut order: Vec<usize> = (0..ends.len()).collect();
    order.sort_by_key(|i| ends[*i]);
    lap("blocking and comparisons", &mut clock);

    // 4. Model: a saved one, or u from random pairs, m from strong labels, lambda by EM.
    let (model, em, model_source) = match &options.model {
        Some((path, saved)) => {
            check_saved_model(path, saved)?;
            let mut model = saved.clone();
            apply_specs(&mut model, &options.comparisons);
            (model, EmReport::default(), path.clone())
        }
        None => {
            let random = random_pair_gammas(&records, options.random_pairs, options.seed)?;
            let (model, em) = fit_model(&gammas, &random, n, &options.comparisons);
            (model, em, "fitted".to_string())
        }
    };
    let tf = if options.term_frequency {
        term_frequencies(&records)?
    } else {
        Vec::new()
    };
    lap("model", &mut clock);

    // 5. Scores and clusters. Pairs with a probability of at least MIN_KEPT_PROBABILITY are
    //    kept (and published), so `evaluate` can re-cluster at other thresholds and `explain`
    //    can show near misses.
    let registry_nik = registry_niks(&records);
    let mut scored: Vec<ScoredPair> = Vec::new();
    let mut pair_gammas: Vec<u8> = Vec::new();
    for &i in &order {
        let row = &gammas[i * width..(i + 1) * width];
        let tf_weight: f64 = tf
            .iter()
            .map(|t| t.adjustment(&model, row, ends[i].0, n))
            .sum();
        let weight = model.match_weight(row) + tf_weight;
        let probability = weight_to_probability(weight);
        if probability >= MIN_KEPT_PROBABILITY {
            scored.push(ScoredPair {
                weight,
                probability,
                left: ends[i].0,
                right: ends[i].1,
                tf_weight: tf_weight as f32,
            });
            pair_gammas.extend_from_slice(row);
        }
    }
    let candidate_pairs = ends.len();
    drop(gammas);
    drop(ends);
    let clustering = cluster_pairs(registry_nik, &scored, options.threshold);
    let mut best_pair: Vec<Option<u32>> = vec![None; n];
    for (index, pair) in scored.iter().enumerate() {
        let (l, r) = (pair.left as usize, pair.right as usize);
        if pair.probability < options.threshold
            || clustering.cluster_ids[l] != clustering.cluster_ids[r]
        {
            continue;
        }
        for end in [l, r] {
            if best_pair[end].is_none_or(|b| scored[b as usize].weight < pair.weight) {
                best_pair[end] = Some(index as u32);
            }
        }
    }
    lap("clusters", &mut clock);

    let summary = LinkSummary {
        records: n,
        rules: counts.iter().map(|c| (c.rule.clone(), c.pairs)).collect(),
        candidate_pairs,
        linked_pairs: clustering.linked,
        refused_merges: clustering.refused,
        clusters: clustering.cluster_count(),
        em_iterations: em.iterations,
        em_converged: em.converged,
        lambda: model.lambda,
        model_source,
        seconds,
    };
    Ok(LinkRun {
        records,
        model,
        pairs: scored,
        pair_gammas,
        clustering,
        best_pair,
        summary,
    })
}

/// The default model's shape: one comparison per kernel comparison, default parameters.
pub fn blank_model() -> Model {
    Model::new(
        COMPARISONS
            .iter()
            .map(|c| {
                let codes: Vec<String> = (c.levels)().into_iter().map(String::from).collect();
                let null = codes.iter().position(|l| l == "missing");
                (c.name.to_string(), codes, null)
            })
            .collect(),
    )
}

/// A saved model must have the kernel's comparisons and levels, in order.
fn check_saved_model(path: &str, saved: &Model) -> Result<(), LinkError> {
    let blank = blank_model();
    let shape = |m: &Model| -> Vec<(String, Vec<String>)> {
        m.comparisons
            .iter()
            .map(|c| (c.name.clone(), c.level_codes.clone()))
            .collect()
    };
    if shape(saved) != shape(&blank) {
        let names = |m: &Model| {
            m.comparisons
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(LinkError::Model {
            path: path.to_string(),
            message: format!(
                "its comparisons or levels ({}) differ from this terpadu's ({})",
                names(saved),
                names(&blank)
            ),
        });
    }
    Ok(())
}

/// Fits the model: u from random pairs; m from strong labels rather than free EM, which at
/// scale drifts to a "same name" class and learns NIKs differing only in the serial as
/// matches (the DOMAIN trap):
/// - pairs with the same 16-digit NIK give m of every other comparison;
/// - pairs with the same name, birth date and village give m of the NIK comparison.
///
/// EM then only fits lambda, with m and u fixed. That lambda is the share of *candidate*
/// pairs that match; since u describes *random* pairs, the prior used in the weights must be
/// the chance that two random records match, so it is scaled by candidate pairs / all pairs
/// (Splink's `probability_two_random_records_match`; it assumes blocking misses few matches).
/// Otherwise blocking's evidence counts twice, and a shared KK and village alone would
/// outweigh a different NIK and a different name.
fn fit_model(
    gammas: &[u8],
    random: &[u8],
    records: usize,
    specs: &std::collections::BTreeMap<String, ComparisonSpec>,
) -> (Model, EmReport) {
    let width = COMPARISONS.len();
    let mut model = blank_model();
    estimate_u_from_random_pairs(
        &mut model,
        &Gammas {
            values: random,
            width,
        },
    );
    let position = |name: &str| COMPARISONS.iter().position(|c| c.name == name);
    if let (Some(nik), Some(name), Some(birth), Some(region)) = (
        position("nik"),
        position("name"),
        position("birth_date"),
        position("region"),
    ) {
        let labelled = |keep: &dyn Fn(&[u8]) -> bool| -> Vec<u8> {
            gammas
                .chunks_exact(width)
                .filter(|row| keep(row))
                .flatten()
                .copied()
                .collect()
        };
        let same_nik = labelled(&|row| row[nik] == 0);
        let others: Vec<usize> = (0..width).filter(|k| *k != nik).collect();
        estimate_m_from_matches(
            &mut model,
            &Gammas {
                values: &same_nik,
                width,
            },
            &others,
        );
        let same_person_details =
            labelled(&|row| row[name] == 0 && row[birth] == 0 && row[region] == 0);
        estimate_m_from_matches(
            &mut model,
            &Gammas {
                values: &same_person_details,
                width,
            },
            &[nik],
        );
        // A NIK differing only in its serial agrees on the birth date and district the NIK
        // encodes, and those are compared on their own. Given that agreement, non-matches
        // almost always differ in the serial (twins, people born the same day in one
        // kecamatan), so u of this level, conditional on the shared prefix, is about 1: the
        // level weighs log2(m), against a match, as DOMAIN's trap requires. u from random
        // pairs (where a shared prefix is itself rare) would count the date and place twice.
        let serial = model.comparisons[nik]
            .level_codes
            .iter()
            .position(|c| c == "same_region_date_other_serial");
        if let Some(serial) = serial {
            model.comparisons[nik].u[serial] = 1.0;
        }
        for comparison in &mut model.comparisons {
            comparison.fixed_m = true;
            comparison.fixed_u = true;
        }
    }
    apply_specs(&mut model, specs);
    let em = estimate_em(
        &mut model,
        &Gammas {
            values: gammas,
            width,
        },
        100,
        1e-6,
        false,
    );
    let candidate_pairs = (gammas.len() / width) as f64;
    let all_pairs = (records as f64 * (records as f64 - 1.0) / 2.0).max(1.0);
    model.lambda = (model.lambda * candidate_pairs / all_pairs).min(model.lambda);
    (model, em)
}

/// Applies the pipeline's comparison settings: a disabled comparison weighs nothing at any
/// level (m = u), and fixed m or u values replace the estimates.
pub fn apply_specs(model: &mut Model, specs: &std::collections::BTreeMap<String, ComparisonSpec>) {
    for comparison in &mut model.comparisons {
        let Some(spec) = specs.get(&comparison.name) else {
            continue;
        };
        if !spec.enabled {
            comparison.m.iter_mut().for_each(|m| *m = 1.0);
            comparison.u.iter_mut().for_each(|u| *u = 1.0);
            continue;
        }
        for (level, code) in comparison.level_codes.iter().enumerate() {
            if let Some(m) = spec.m.get(code) {
                comparison.m[level] = *m;
            }
            if let Some(u) = spec.u.get(code) {
                comparison.u[level] = *u;
            }
        }
    }
}

/// 2^w / (1 + 2^w).
pub fn weight_to_probability(w: f64) -> f64 {
    1.0 / (1.0 + (-w).exp2())
}

/// Appends the gamma columns of `batch` row by row to `out`.
fn append_rows(batch: &RecordBatch, out: &mut Vec<u8>) {
    let columns: Vec<&[u8]> = batch
        .columns()
        .iter()
        .map(|c| {
            c.as_primitive::<arrow::datatypes::UInt8Type>()
                .values()
                .as_ref()
        })
        .collect();
    out.reserve(batch.num_rows() * columns.len());
    for row in 0..batch.num_rows() {
        for column in &columns {
            out.push(column[row]);
        }
    }
}

/// Levels of `count` random record pairs (almost all non-matches): the u sample.
fn random_pair_gammas(
    records: &RecordBatch,
    count: usize,
    seed: u64,
) -> Result<Vec<u8>, LinkError> {
    let n = records.num_rows() as u64;
    if n < 2 {
        return Ok(Vec::new());
    }
    let mut state = seed;
    let mut next = move || {
        // splitmix64: small, fast and the same on every platform.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut left = Vec::with_capacity(count);
    let mut right = Vec::with_capacity(count);
    while left.len() < count {
        let (a, b) = ((next() % n) as u32, (next() % n) as u32);
        if a != b {
            left.push(a);
            right.push(b);
        }
    }
    let (left, right) = (UInt32Array::from(left), UInt32Array::from(right));
    let batch = gather_pairs(records, &left, &right)?;
    let mut out = Vec::new();
    append_rows(&gamma::gamma_batch(&batch)?, &mut out);
    Ok(out)
}

/// The `l_`/`r_` columns the kernel reads, gathered from `records` (any batch with the
/// staged columns the comparisons read) by row index.
pub fn gather_pairs(
    records: &RecordBatch,
    left: &UInt32Array,
    right: &UInt32Array,
) -> Result<RecordBatch, LinkError> {
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (prefix, indices) in [("l_", left), ("r_", right)] {
        for name in RECORD_COLUMNS {
            let column = records.column_by_name(name).ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!("no column {name}"))
            })?;
            fields.push(Field::new(
                format!("{prefix}{name}"),
                column.data_type().clone(),
                true,
            ));
            arrays.push(take(column.as_ref(), indices, None)?);
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays)?)
}

/// The civil-registry NIK of each record (None for other sources and missing NIKs).
fn registry_niks(records: &RecordBatch) -> Vec<Option<String>> {
    let role = records
        .column_by_name("role")
        .map(|c| c.as_string::<i32>().clone());
    let nik = records
        .column_by_name("nik")
        .and_then(|c| arrow::compute::cast(c, &DataType::Utf8).ok());
    let (Some(role), Some(nik)) = (role, nik) else {
        return vec![None; records.num_rows()];
    };
    let nik = nik.as_string::<i32>();
    (0..records.num_rows())
        .map(|i| {
            (role.value(i) == "civil_registry" && !nik.is_null(i)).then(|| nik.value(i).to_string())
        })
        .collect()
}

/// Union-find over records with the chaining guard.
struct Clusters {
    parent: Vec<usize>,
    registry_nik: Vec<Option<String>>,
}

impl Clusters {
    fn new(n: usize, registry_nik: Vec<Option<String>>) -> Self {
        Clusters {
            parent: (0..n).collect(),
            registry_nik,
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Merges the clusters of `a` and `b`; false when the guard refuses (both hold a
    /// civil-registry record and their NIKs differ: two people, or a duplicated-NIK case).
    fn union(&mut self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return true;
        }
        if let (Some(x), Some(y)) = (&self.registry_nik[ra], &self.registry_nik[rb])
            && x != y
        {
            return false;
        }
        // The smaller index becomes the root, so cluster ids do not depend on merge order.
        let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
        if self.registry_nik[root].is_none() {
            self.registry_nik[root] = self.registry_nik[child].take();
        }
        self.parent[child] = root;
        true
    }

    fn representative(&mut self, i: usize) -> usize {
        self.find(i)
    }
}

/// Pairs with a lower match probability are not kept at all.
pub const MIN_KEPT_PROBABILITY: f64 = 0.01;

/// A scored candidate pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredPair {
    /// Total match weight (log2 odds).
    pub weight: f64,
    /// Match probability.
    pub probability: f64,
    /// Record number of one side.
    pub left: u32,
    /// Record number of the other side.
    pub right: u32,
    /// Of the weight, the term-frequency adjustment (bits).
    pub tf_weight: f32,
}

/// The outcome of clustering at one threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    /// Cluster id of every record (the smallest record number in its cluster).
    pub cluster_ids: Vec<u64>,
    /// Pairs at or above the threshold.
    pub linked: usize,
    /// Of those, merges the guard refused.
    pub refused: usize,
}

impl Clustering {
    /// Number of distinct clusters.
    pub fn cluster_count(&self) -> usize {
        let mut ids = self.cluster_ids.clone();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

/// Merges pairs at or above `threshold`, strongest first, under the civil-registry guard.
pub fn cluster_pairs(
    registry_nik: Vec<Option<String>>,
    pairs: &[ScoredPair],
    threshold: f64,
) -> Clustering {
    let n = registry_nik.len();
    let mut linked: Vec<&ScoredPair> = pairs
        .iter()
        .filter(|p| p.probability >= threshold)
        .collect();
    linked.sort_by(|a, b| {
        b.weight
            .total_cmp(&a.weight)
            .then(a.left.cmp(&b.left))
            .then(a.right.cmp(&b.right))
    });
    let mut clusters = Clusters::new(n, registry_nik);
    let refused = linked
        .iter()
        .filter(|p| !clusters.union(p.left as usize, p.right as usize))
        .count();
    Clustering {
        cluster_ids: (0..n).map(|i| clusters.representative(i) as u64).collect(),
        linked: linked.len(),
        refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_never_merges_two_registry_niks() {
        let niks = vec![Some("A".to_string()), Some("B".to_string()), None, None];
        let mut c = Clusters::new(4, niks);
        assert!(c.union(0, 2), "registry A with a program record");
        assert!(c.union(1, 3), "registry B with another");
        assert!(!c.union(2, 3), "would chain A and B together");
        assert_ne!(c.representative(0), c.representative(1));
        assert_eq!(c.representative(2), 0);
        assert_eq!(c.representative(3), 1);
    }
}
