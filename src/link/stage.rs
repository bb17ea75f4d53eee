//! The link stage (first version): staged Parquet -> candidate pairs -> levels -> model ->
//! clusters -> `<workspace>/link/record_link.parquet`.
//!
//! 1. Every staged record becomes a row of one `records` table (the columns the comparisons
//!    read, plus source and role), numbered `rid`.
//! 2. Blocking rules are counted and capped, then their pairs generated once ([`blocking`]).
//! 3. The kernel turns each pair into level indices ([`gamma`]).
//! 4. u comes from random record pairs, m from strong labels, lambda from EM over the
//!    blocked pairs ([`model`]); the fitted model is written beside the links as JSON.
//! 5. Pairs at or above the probability threshold are merged, strongest first, into clusters,
//!    with a guard: two civil-registry records with different NIKs are never merged.
//!
//! Not yet here (next steps of the linkage issue): stable person ids across runs, families,
//! term-frequency adjustment, the published registry tables and `explain`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array, UInt64Array};
use arrow::compute::{concat_batches, take};
use arrow::datatypes::{DataType, Field, Schema, UInt32Type, UInt64Type};
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use serde::Serialize;

use super::blocking::{self, BlockingError, BlockingRule, RuleCount};
use super::gamma::{self, COMPARISONS};
use super::model::{
    EmReport, Gammas, Model, estimate_em, estimate_m_from_matches, estimate_u_from_random_pairs,
};
use crate::config::Pipeline;
use crate::sql::{Session, SqlError};
use crate::workspace::{LockError, Workspace, WorkspaceLock, write_atomic};

/// Link-stage errors.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Opening the staged data failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// Another run holds the workspace.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// A blocking rule failed or exploded.
    #[error(transparent)]
    Blocking(#[from] BlockingError),
    /// A query failed.
    #[error("linking: {0}")]
    Query(#[from] DataFusionError),
    /// Arrow failed (a bug in terpadu).
    #[error("internal error while linking: {0}; please report it")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing the outputs failed.
    #[error("cannot write {path}: {message} (check free space and permissions)")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
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
}

impl Default for LinkOptions {
    fn default() -> Self {
        LinkOptions {
            threshold: 0.95,
            max_pairs_per_rule: 50_000_000,
            random_pairs: 200_000,
            seed: 7,
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
    /// Seconds per step.
    pub seconds: Vec<(String, f64)>,
    /// The links file.
    pub record_link: String,
    /// The fitted model.
    pub model: String,
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

const RECORD_COLUMNS: &[&str] = &[
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

/// Runs the link stage over the pipeline's staged data.
pub async fn link(pipeline: &Pipeline, options: &LinkOptions) -> Result<LinkSummary, LinkError> {
    let workspace = Workspace::new(&pipeline.workspace);
    let _lock = WorkspaceLock::acquire(&workspace, "link")?;
    let session = Session::open(&workspace).await?;
    let ctx = &session.ctx;
    let manifest = &session.manifest;
    let mut seconds = Vec::new();
    let mut clock = Instant::now();
    let mut lap = |name: &str, clock: &mut Instant| {
        seconds.push((name.to_string(), clock.elapsed().as_secs_f64()));
        *clock = Instant::now();
    };

    // 1. One records table.
    let selects: Vec<String> = manifest
        .sources
        .iter()
        .map(|s| {
            format!(
                "SELECT '{name}' AS source, '{role}' AS role, source_row, {columns} FROM {name}",
                name = s.name,
                role = s.role,
                columns = RECORD_COLUMNS.join(", ")
            )
        })
        .collect();
    let union = ctx
        .sql(&format!(
            "SELECT * FROM ({}) ORDER BY source, source_row",
            selects.join(" UNION ALL ")
        ))
        .await?
        .collect()
        .await?;
    let schema = union
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| SqlError::NothingStaged(workspace.root().display().to_string()))?;
    let records = concat_batches(&schema, &union)?;
    let n = records.num_rows();
    let rid: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..n as u32));
    let mut fields: Vec<Field> = vec![Field::new("rid", DataType::UInt32, false)];
    fields.extend(schema.fields().iter().map(|f| f.as_ref().clone()));
    let mut columns = vec![rid];
    columns.extend(records.columns().iter().cloned());
    let records = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
    let table = MemTable::try_new(records.schema(), vec![vec![records.clone()]])?;
    ctx.register_table("records", Arc::new(table))?;
    lap("records", &mut clock);

    // 2. Blocking.
    let rules = default_rules();
    let counts: Vec<RuleCount> = blocking::count_pairs(ctx, "records", &rules, 3).await?;
    for count in &counts {
        tracing::info!(rule = %count.rule, pairs = count.pairs, blocks = count.blocks, largest = ?count.largest.first(), "Blocking rule.");
    }
    blocking::check_caps(&counts, options.max_pairs_per_rule)?;
    let mut pairs = blocking::candidate_pairs(ctx, "records", "rid", &rules)
        .await?
        .execute_stream()
        .await?;

    // 3. Levels of every candidate pair, batch by batch as pairs stream out of blocking: the
    //    two records of each pair are gathered from memory by record number (`rid` is the row
    //    index), and only the six level bytes and the two record numbers are kept.
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

    // 4. Model: u from random pairs, m and lambda by EM.
    let mut model = Model::new(
        COMPARISONS
            .iter()
            .map(|c| {
                let codes: Vec<String> = (c.levels)().into_iter().map(String::from).collect();
                let null = codes.iter().position(|l| l == "missing");
                (c.name.to_string(), codes, null)
            })
            .collect(),
    );
    let random = random_pair_gammas(&records, options.random_pairs, options.seed)?;
    estimate_u_from_random_pairs(
        &mut model,
        &Gammas {
            values: &random,
            width,
        },
    );
    // m from strong labels rather than free EM, which at scale drifts to a "same name" class
    // and learns NIKs differing only in the serial as matches (the DOMAIN trap):
    // - pairs with the same 16-digit NIK give m of every other comparison;
    // - pairs with the same name, birth date and village give m of the NIK comparison.
    // EM then only fits lambda, with m and u fixed.
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
        for comparison in &mut model.comparisons {
            comparison.fixed_m = true;
            comparison.fixed_u = true;
        }
    }
    let em: EmReport = estimate_em(
        &mut model,
        &Gammas {
            values: &gammas,
            width,
        },
        100,
        1e-6,
        false,
    );
    lap("model", &mut clock);

    // 5. Clusters. Pairs with a probability of at least MIN_KEPT_PROBABILITY are kept (and
    //    written), so `evaluate` can re-cluster at other thresholds.
    let registry_nik = registry_niks(&records);
    let scored: Vec<ScoredPair> = order
        .iter()
        .filter_map(|&i| {
            let row = &gammas[i * width..(i + 1) * width];
            let probability = model.probability(row);
            (probability >= MIN_KEPT_PROBABILITY).then(|| ScoredPair {
                weight: model.match_weight(row),
                probability,
                left: ends[i].0,
                right: ends[i].1,
            })
        })
        .collect();
    let clustering = cluster_pairs(registry_nik.clone(), &scored, options.threshold);
    let cluster_count = clustering.cluster_count();
    let (cluster_ids, refused) = (clustering.cluster_ids, clustering.refused);
    lap("clusters", &mut clock);

    // Outputs: written beside each other, each atomically.
    let dir = workspace.root().join("link");
    std::fs::create_dir_all(&dir).map_err(|e| write_error(&dir, e))?;
    let link_path = dir.join("record_link.parquet");
    write_record_link(&records, &cluster_ids, &registry_nik, &link_path)?;
    write_pairs(&scored, &dir.join("pairs.parquet"))?;
    let model_path = dir.join("model.json");
    let model_json = serde_json::to_vec_pretty(&model).map_err(|e| write_error(&model_path, e))?;
    write_atomic(&model_path, &model_json).map_err(|e| write_error(&model_path, e))?;
    lap("write", &mut clock);

    Ok(LinkSummary {
        records: n,
        rules: counts.iter().map(|c| (c.rule.clone(), c.pairs)).collect(),
        candidate_pairs: ends.len(),
        linked_pairs: clustering.linked,
        refused_merges: refused,
        clusters: cluster_count,
        em_iterations: em.iterations,
        em_converged: em.converged,
        lambda: model.lambda,
        seconds,
        record_link: link_path.display().to_string(),
        model: model_path.display().to_string(),
    })
}

fn write_error(path: &std::path::Path, e: impl std::fmt::Display) -> LinkError {
    LinkError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
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

fn write_parquet(batch: &RecordBatch, path: &std::path::Path) -> Result<(), LinkError> {
    let tmp: PathBuf = path.with_extension(format!("tmp-{}", std::process::id()));
    let file = std::fs::File::create(&tmp).map_err(|e| write_error(&tmp, e))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        file,
        batch.schema(),
        Some(crate::ingest::sink::writer_properties()),
    )
    .map_err(|e| write_error(&tmp, e))?;
    writer.write(batch).map_err(|e| write_error(&tmp, e))?;
    writer.close().map_err(|e| write_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| write_error(path, e))
}

fn write_record_link(
    records: &RecordBatch,
    clusters: &[u64],
    registry_nik: &[Option<String>],
    path: &std::path::Path,
) -> Result<(), LinkError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("source_row", DataType::UInt64, false),
        Field::new("rid", DataType::UInt32, false),
        Field::new("cluster_id", DataType::UInt64, false),
        Field::new("registry_nik", DataType::Utf8, true),
    ]));
    let column = |name: &str, data_type: &DataType| -> Result<ArrayRef, LinkError> {
        let c = records
            .column_by_name(name)
            .ok_or_else(|| arrow::error::ArrowError::SchemaError(format!("no column {name}")))?;
        Ok(arrow::compute::cast(c, data_type)?)
    };
    let batch = RecordBatch::try_new(
        schema,
        vec![
            column("source", &DataType::Utf8)?,
            column("source_row", &DataType::UInt64)?,
            column("rid", &DataType::UInt32)?,
            Arc::new(UInt64Array::from(clusters.to_vec())),
            Arc::new(StringArray::from(registry_nik.to_vec())),
        ],
    )?;
    write_parquet(&batch, path)
}

fn write_pairs(pairs: &[ScoredPair], path: &std::path::Path) -> Result<(), LinkError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("left_rid", DataType::UInt32, false),
        Field::new("right_rid", DataType::UInt32, false),
        Field::new("match_weight", DataType::Float64, false),
        Field::new("probability", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt32Array::from_iter_values(pairs.iter().map(|p| p.left))),
            Arc::new(UInt32Array::from_iter_values(pairs.iter().map(|p| p.right))),
            Arc::new(arrow::array::Float64Array::from_iter_values(
                pairs.iter().map(|p| p.weight),
            )),
            Arc::new(arrow::array::Float64Array::from_iter_values(
                pairs.iter().map(|p| p.probability),
            )),
        ],
    )?;
    write_parquet(&batch, path)
}

/// One record of `record_link.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedRecord {
    /// Source name.
    pub source: String,
    /// Row in the source file.
    pub source_row: u64,
    /// Record number within the link run.
    pub rid: u32,
    /// Cluster at the run's threshold.
    pub cluster_id: u64,
    /// Civil-registry NIK, for the guard.
    pub registry_nik: Option<String>,
}

fn read_batches(path: &std::path::Path) -> Result<Vec<RecordBatch>, LinkError> {
    let file = std::fs::File::open(path).map_err(|e| write_error(path, e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| write_error(path, e))?
        .build()
        .map_err(|e| write_error(path, e))?;
    Ok(reader.collect::<Result<Vec<_>, _>>()?)
}

/// Reads a link run's `record_link.parquet` (sorted by record number) and `pairs.parquet`.
pub fn read_link_run(
    dir: &std::path::Path,
) -> Result<(Vec<LinkedRecord>, Vec<ScoredPair>), LinkError> {
    let mut records = Vec::new();
    for batch in read_batches(&dir.join("record_link.parquet"))? {
        let source = batch.column(0).as_string::<i32>();
        let row = batch.column(1).as_primitive::<UInt64Type>();
        let rid = batch.column(2).as_primitive::<UInt32Type>();
        let cluster = batch.column(3).as_primitive::<UInt64Type>();
        let nik = batch.column(4).as_string::<i32>();
        for i in 0..batch.num_rows() {
            records.push(LinkedRecord {
                source: source.value(i).to_string(),
                source_row: row.value(i),
                rid: rid.value(i),
                cluster_id: cluster.value(i),
                registry_nik: (!nik.is_null(i)).then(|| nik.value(i).to_string()),
            });
        }
    }
    records.sort_by_key(|r| r.rid);
    let mut pairs = Vec::new();
    for batch in read_batches(&dir.join("pairs.parquet"))? {
        let left = batch.column(0).as_primitive::<UInt32Type>();
        let right = batch.column(1).as_primitive::<UInt32Type>();
        let weight = batch
            .column(2)
            .as_primitive::<arrow::datatypes::Float64Type>();
        let probability = batch
            .column(3)
            .as_primitive::<arrow::datatypes::Float64Type>();
        for i in 0..batch.num_rows() {
            pairs.push(ScoredPair {
                weight: weight.value(i),
                probability: probability.value(i),
                left: left.value(i),
                right: right.value(i),
            });
        }
    }
    Ok((records, pairs))
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
