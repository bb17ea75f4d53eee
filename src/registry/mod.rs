//! The unified registry: linked records published as versioned Parquet tables that planners
//! query with `terpadu sql`.
//!
//! A version is a directory `registry/<version>/` holding
//! - `person.parquet`: one row per person with a stable `person_id`, the best NIK, canonical
//!   name and the variants seen, birth date, sex, region, current family, life status,
//!   welfare decile, quality flags, and the sources and programs that hold the person;
//! - `family.parquet`: one row per family (KK, family card) with its head, members, every KK
//!   number seen on member records (a KK changes when a family moves or splits) and programs;
//! - `record_link.parquet`: every staged record -> person and family, with the strongest link
//!   that put it there (partner record, match weight, probability, level per comparison);
//! - `program_membership.parquet`: person/family x program x period x unit, one row per
//!   program record;
//! - `registry_changes.parquet`: ids created, split, merged, retired or kept by key since the
//!   previous version ([`ids`]);
//! - `match_pairs.parquet`: scored candidate pairs, for evaluation and `terpadu explain`;
//! - the fitted model (document `model` of the version, reusable with `--model`) and the
//!   counts (document `registry`).
//!
//! Each table is a Delta table `store/registry/<table>`, written into the run's
//! [`Draft`]; the run becomes visible only when the draft commits its workspace version. A
//! run that fails or is killed leaves the previous version current.

pub mod aggregate;
pub mod ids;
pub mod tables;

use std::collections::BTreeMap;
use std::time::Instant;

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use serde::{Deserialize, Serialize};

use crate::config::Pipeline;
use crate::link::stage::{LinkError, LinkOptions, LinkSummary, link_records, load_records};
use crate::sql::{Session, SqlError};
use crate::store::{Draft, Snapshot, StoreError};
use crate::workspace::{Workspace, new_run_id};

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Opening the staged data failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// The store failed (locked, damaged, or cannot be written).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Linking failed.
    #[error(transparent)]
    Link(#[from] LinkError),
    /// A query failed.
    #[error("building the registry: {0}")]
    Query(#[from] DataFusionError),
    /// Arrow failed (a bug in terpadu).
    #[error("internal error while building the registry: {0}; please report it")]
    Arrow(#[from] arrow::error::ArrowError),
    /// Writing failed.
    #[error("cannot write {path}: {message} (check free space and permissions)")]
    Write {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Reading a published version failed.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// Nothing published yet.
    #[error("no registry is published in {0}; run `terpadu link PIPELINE` first")]
    NoRegistry(String),
}

/// Options of the registry stage.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Linkage options.
    pub link: LinkOptions,
}

/// `registry.json`: what a version holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryMeta {
    /// The version id.
    pub version: String,
    /// The staged run it was built from.
    pub staged_run_id: String,
    /// Link threshold.
    pub threshold: f64,
    /// Rows per table.
    pub rows: BTreeMap<String, usize>,
    /// Id changes by entity and kind.
    pub changes: BTreeMap<String, usize>,
    /// Next fresh person number.
    pub next_person: u64,
    /// Next fresh family number.
    pub next_family: u64,
    /// The link summary.
    pub link: serde_json::Value,
    /// Seconds per step.
    pub seconds: Vec<(String, f64)>,
}

/// What a registry run did.
#[derive(Debug, Clone)]
pub struct RegistrySummary {
    /// The link stage.
    pub link: LinkSummary,
    /// What the version holds.
    pub meta: RegistryMeta,
}

/// Links the pipeline's staged records and publishes a new workspace version.
pub async fn build(
    pipeline: &Pipeline,
    options: &RegistryOptions,
) -> Result<RegistrySummary, RegistryError> {
    let workspace = Workspace::new(&pipeline.workspace);
    let run_id = new_run_id(chrono::Utc::now());
    let mut draft = workspace.store().begin("link", &run_id).await?;
    let summary = build_in(&mut draft, options).await?;
    draft.commit().await?;
    Ok(summary)
}

/// Links the staged records of `draft` and writes the registry tables into it.
pub async fn build_in(
    draft: &mut Draft,
    options: &RegistryOptions,
) -> Result<RegistrySummary, RegistryError> {
    let snapshot = draft.snapshot();
    let session =
        Session::open_snapshot(&snapshot, datafusion::prelude::SessionConfig::new()).await?;
    let ctx = &session.ctx;
    let mut clock = Instant::now();
    let mut seconds = Vec::new();

    // A previous version that cannot be read stops the run: numbering from scratch would
    // hand retired ids to new people.
    let previous_meta: Option<RegistryMeta> = snapshot.document("registry");
    if previous_meta.is_some() && !ctx.table_exist("record_link")? {
        return Err(RegistryError::Read {
            path: snapshot
                .store()
                .table_dir("registry/record_link")
                .display()
                .to_string(),
            message: "the current version has no record_link table; roll back to a complete \
                      version (`terpadu rollback`)"
                .into(),
        });
    }
    // Counters only grow: the draft carries the highest numbers any version issued, which
    // after a rollback are above the restored version's own.
    let (next_person, next_family) = draft.counters();
    let previous = tables::previous_ids(
        ctx,
        next_person.max(previous_meta.as_ref().map_or(0, |m| m.next_person)),
        next_family.max(previous_meta.as_ref().map_or(0, |m| m.next_family)),
    )
    .await?;
    let records = load_records(ctx, &session.manifest).await?;
    tracing::debug!(
        rss_mib = crate::metrics::current_rss_bytes().map(|b| b >> 20),
        bytes = records.get_array_memory_size() >> 20,
        "Records loaded."
    );
    seconds.push(("records".to_string(), clock.elapsed().as_secs_f64()));
    let run = link_records(ctx, records, &options.link).await?;
    seconds.extend(run.summary.seconds.iter().cloned());
    clock = Instant::now();
    let built = tables::build(ctx, &run, &previous).await?;
    tracing::debug!(
        rss_mib = crate::metrics::current_rss_bytes().map(|b| b >> 20),
        "Registry tables built."
    );
    seconds.push(("registry tables".to_string(), clock.elapsed().as_secs_f64()));
    clock = Instant::now();

    let mut changes = BTreeMap::new();
    {
        use arrow::array::AsArray;
        let entity = built.changes.column(0).as_string::<i32>();
        let kind = built.changes.column(1).as_string::<i32>();
        for i in 0..built.changes.num_rows() {
            *changes
                .entry(format!("{} {}", entity.value(i), kind.value(i)))
                .or_insert(0) += 1;
        }
    }
    let batches: Vec<(&str, &RecordBatch)> = vec![
        ("person", &built.person),
        ("family", &built.family),
        ("record_link", &built.record_link),
        ("program_membership", &built.program_membership),
        ("registry_changes", &built.changes),
        ("match_pairs", &built.match_pairs),
    ];
    let mut meta = RegistryMeta {
        version: draft.version().to_string(),
        staged_run_id: session.manifest.run_id.clone(),
        threshold: options.link.threshold,
        rows: batches
            .iter()
            .map(|(name, b)| (name.to_string(), b.num_rows()))
            .collect(),
        changes,
        next_person: built.next_person,
        next_family: built.next_family,
        link: serde_json::to_value(&run.summary).unwrap_or_default(),
        seconds: Vec::new(),
    };
    drop(session);
    for (name, batch) in &batches {
        draft
            .write_table(
                &format!("registry/{name}"),
                &batch.schema(),
                std::slice::from_ref(*batch),
            )
            .await?;
    }
    seconds.push(("write".to_string(), clock.elapsed().as_secs_f64()));
    meta.seconds = seconds;
    draft.set_document("model", &run.model);
    // The model as a file too, for `terpadu link --model` on other data.
    let files = draft.store().files_dir(draft.version());
    let model_path = files.join("model.json");
    std::fs::create_dir_all(&files)
        .and_then(|()| {
            crate::workspace::write_atomic(
                &model_path,
                &serde_json::to_vec_pretty(&run.model).map_err(std::io::Error::other)?,
            )
        })
        .map_err(|e| RegistryError::Write {
            path: model_path.display().to_string(),
            message: e.to_string(),
        })?;
    draft.set_document("files_dir", &format!("files/v{}", draft.version()));
    draft.set_document("registry", &meta);
    draft.raise_counters(built.next_person, built.next_family);
    Ok(RegistrySummary {
        link: run.summary,
        meta,
    })
}

/// The registry's counts (document `registry`) of a version.
pub fn read_meta(snapshot: &Snapshot) -> Result<RegistryMeta, RegistryError> {
    snapshot
        .document("registry")
        .ok_or_else(|| RegistryError::NoRegistry(snapshot.store().root().display().to_string()))
}

/// Pins the latest version that holds a registry.
pub async fn pin_registry(workspace: &Workspace) -> Result<Snapshot, RegistryError> {
    let snapshot = workspace
        .store()
        .pin_latest()
        .await?
        .ok_or_else(|| RegistryError::NoRegistry(workspace.root().display().to_string()))?;
    read_meta(&snapshot)?;
    Ok(snapshot)
}

/// One record of a published `record_link`, as evaluation needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedRecord {
    /// Source name.
    pub source: String,
    /// Row in the source file.
    pub source_row: u64,
    /// Record number within the version.
    pub rid: u32,
    /// The person (as a number: the position of its id in sorted order).
    pub person: u64,
    /// Civil-registry NIK, for the chaining guard when re-clustering.
    pub registry_nik: Option<String>,
    /// Whether the record carries a valid 16-digit NIK.
    pub nik_status: Option<String>,
}

/// Reads the current version's records (by record number) and scored pairs.
pub async fn read_linked(
    snapshot: &Snapshot,
) -> Result<(Vec<LinkedRecord>, Vec<crate::link::stage::ScoredPair>), RegistryError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float32Type, Float64Type};
    let dir = snapshot.store().table_dir("registry/record_link");
    let mut records = Vec::new();
    let mut person_numbers: std::collections::HashMap<String, u64> = Default::default();
    for batch in snapshot.read_table("registry/record_link").await? {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| RegistryError::Read {
                    path: dir.display().to_string(),
                    message: format!("no column {name}; was it written by an older terpadu?"),
                })
        };
        let (source, row, rid, person, role, nik, status) = (
            column("source")?,
            column("source_row")?,
            column("rid")?,
            column("person_id")?,
            column("role")?,
            column("nik")?,
            column("nik_status")?,
        );
        let (row, rid) = (
            arrow::compute::cast(&row, &arrow::datatypes::DataType::UInt64)?,
            arrow::compute::cast(&rid, &arrow::datatypes::DataType::UInt32)?,
        );
        let (source, row, rid, person, role, nik, status) = (
            source.as_string::<i32>(),
            row.as_primitive::<arrow::datatypes::UInt64Type>(),
            rid.as_primitive::<arrow::datatypes::UInt32Type>(),
            person.as_string::<i32>(),
            role.as_string::<i32>(),
            nik.as_string::<i32>(),
            status.as_string::<i32>(),
        );
        for i in 0..batch.num_rows() {
            let next = person_numbers.len() as u64;
            let person = *person_numbers
                .entry(person.value(i).to_string())
                .or_insert(next);
            records.push(LinkedRecord {
                source: source.value(i).to_string(),
                source_row: row.value(i),
                rid: rid.value(i),
                person,
                registry_nik: (role.value(i) == "civil_registry" && nik.is_valid(i))
                    .then(|| nik.value(i).to_string()),
                nik_status: status.is_valid(i).then(|| status.value(i).to_string()),
            });
        }
    }
    records.sort_by_key(|r| r.rid);
    let mut pairs = Vec::new();
    for batch in snapshot.read_table("registry/match_pairs").await? {
        let left = arrow::compute::cast(batch.column(0), &arrow::datatypes::DataType::UInt32)?;
        let right = arrow::compute::cast(batch.column(1), &arrow::datatypes::DataType::UInt32)?;
        let left = left.as_primitive::<arrow::datatypes::UInt32Type>();
        let right = right.as_primitive::<arrow::datatypes::UInt32Type>();
        let weight = batch.column(2).as_primitive::<Float64Type>();
        let probability = batch.column(3).as_primitive::<Float64Type>();
        let tf = batch.column(4).as_primitive::<Float32Type>();
        for i in 0..batch.num_rows() {
            pairs.push(crate::link::stage::ScoredPair {
                weight: weight.value(i),
                probability: probability.value(i),
                left: left.value(i),
                right: right.value(i),
                tf_weight: tf.value(i),
            });
        }
    }
    Ok((records, pairs))
}
