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
//! - `model.json` (the fitted model, reusable with `--model`) and `registry.json` (counts).
//!
//! Publication is atomic: the version is written under `registry/.tmp-<version>/`, renamed,
//! and only then made current by replacing `registry/_current.json`. A run that fails or is
//! killed leaves the previous version current; its scratch directory is removed by the next
//! run.

pub mod aggregate;
pub mod ids;
pub mod tables;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::array::RecordBatch;
use datafusion::error::DataFusionError;
use serde::{Deserialize, Serialize};

use crate::config::Pipeline;
use crate::link::stage::{LinkError, LinkOptions, LinkSummary, link_records, load_records};
use crate::sql::{Session, SqlError};
use crate::workspace::{
    LockError, RegistryPointer, Workspace, WorkspaceLock, new_run_id, write_atomic,
};

/// Registry errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// Opening the staged data failed.
    #[error(transparent)]
    Sql(#[from] SqlError),
    /// Another run holds the workspace.
    #[error(transparent)]
    Locked(#[from] LockError),
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
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// Linkage options.
    pub link: LinkOptions,
    /// Published versions kept (the current one included).
    pub keep_versions: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            link: LinkOptions::default(),
            keep_versions: 5,
        }
    }
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
    /// The published version.
    pub meta: RegistryMeta,
    /// Its directory.
    pub dir: PathBuf,
}

/// Links the pipeline's staged records and publishes a new registry version.
pub async fn build(
    pipeline: &Pipeline,
    options: &RegistryOptions,
) -> Result<RegistrySummary, RegistryError> {
    let workspace = Workspace::new(&pipeline.workspace);
    let _lock = WorkspaceLock::acquire(&workspace, "link")?;
    remove_scratch(&workspace);
    let session = Session::open(&workspace).await?;
    let ctx = &session.ctx;
    let mut clock = Instant::now();
    let mut seconds = Vec::new();

    // A previous version that cannot be read stops the run: numbering from scratch would
    // hand retired ids to new people.
    let previous_meta = match read_meta(&workspace) {
        Ok(meta) => Some(meta),
        Err(RegistryError::NoRegistry(_)) => None,
        Err(e) => return Err(e),
    };
    if previous_meta.is_some() && !ctx.table_exist("record_link")? {
        return Err(RegistryError::Read {
            path: current_dir(&workspace)?.display().to_string(),
            message: "the current registry version has no record_link table; restore it or \
                      point registry/_current.json at a complete version"
                .into(),
        });
    }
    let previous = tables::previous_ids(
        ctx,
        previous_meta.as_ref().map_or(0, |m| m.next_person),
        previous_meta.as_ref().map_or(0, |m| m.next_family),
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

    let version = new_run_id(chrono::Utc::now());
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
        version: version.clone(),
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
    let tmp = workspace.registry_tmp(&version);
    std::fs::create_dir_all(&tmp).map_err(|e| write_error(&tmp, e))?;
    for (name, batch) in &batches {
        let path = tmp.join(format!("{name}.parquet"));
        crate::workspace::write_parquet(batch, &path).map_err(|e| write_error(&path, e))?;
    }
    let model_path = tmp.join("model.json");
    let model_json =
        serde_json::to_vec_pretty(&run.model).map_err(|e| write_error(&model_path, e))?;
    write_atomic(&model_path, &model_json).map_err(|e| write_error(&model_path, e))?;
    seconds.push(("write".to_string(), clock.elapsed().as_secs_f64()));
    meta.seconds = seconds;
    let meta_path = tmp.join("registry.json");
    let meta_json = serde_json::to_vec_pretty(&meta).map_err(|e| write_error(&meta_path, e))?;
    write_atomic(&meta_path, &meta_json).map_err(|e| write_error(&meta_path, e))?;
    let dir = publish(&workspace, &version, &tmp, options.keep_versions)?;
    Ok(RegistrySummary {
        link: run.summary,
        meta,
        dir,
    })
}

/// Renames the finished scratch directory into place, makes it current, prunes old versions.
fn publish(
    workspace: &Workspace,
    version: &str,
    tmp: &Path,
    keep: usize,
) -> Result<PathBuf, RegistryError> {
    let dir = workspace.registry_version_dir(version);
    sync_dir(tmp);
    std::fs::rename(tmp, &dir).map_err(|e| write_error(&dir, e))?;
    sync_dir(&workspace.registry_dir());
    let pointer = RegistryPointer {
        version: version.to_string(),
        published_at: chrono::Utc::now().to_rfc3339(),
    };
    let path = workspace.registry_pointer_path();
    let json = serde_json::to_vec_pretty(&pointer).map_err(|e| write_error(&path, e))?;
    write_atomic(&path, &json).map_err(|e| write_error(&path, e))?;
    sync_dir(&workspace.registry_dir());
    // Versions sort by time; the current one is the newest (newer leftovers were removed
    // when the run started).
    let versions: Vec<String> = workspace
        .registry_versions()
        .into_iter()
        .filter(|v| v.as_str() <= version)
        .collect();
    let excess = versions.len().saturating_sub(keep.max(1));
    for old in versions.iter().take(excess) {
        if old != version
            && let Err(e) = std::fs::remove_dir_all(workspace.registry_version_dir(old))
        {
            tracing::warn!(version = %old, error = %e, "Could not remove an old registry version.");
        }
    }
    Ok(dir)
}

/// Flushes a directory's entries (renames) to disk; best effort.
fn sync_dir(dir: &Path) {
    if let Ok(file) = std::fs::File::open(dir) {
        let _ = file.sync_all();
    }
}

/// Removes what runs that died left behind (the caller holds the workspace lock, so no live
/// run owns any of it): scratch directories, half-written pointer files, and versions renamed
/// into place but never made current (killed between the rename and the pointer switch).
fn remove_scratch(workspace: &Workspace) {
    let Ok(entries) = std::fs::read_dir(workspace.registry_dir()) else {
        return;
    };
    let current = workspace.read_registry_pointer().map(|p| p.version);
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let never_current = !name.starts_with('.')
            && !name.starts_with('_')
            && current.as_deref().is_none_or(|c| name.as_str() > c);
        if name.starts_with(".tmp-") || never_current {
            tracing::warn!(dir = %entry.path().display(), "Removing what an interrupted run left.");
            let _ = std::fs::remove_dir_all(entry.path());
        } else if name.starts_with("_current.tmp-") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn write_error(path: &Path, e: impl std::fmt::Display) -> RegistryError {
    RegistryError::Write {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The directory of the current version.
pub fn current_dir(workspace: &Workspace) -> Result<PathBuf, RegistryError> {
    let pointer = workspace
        .read_registry_pointer()
        .ok_or_else(|| RegistryError::NoRegistry(workspace.root().display().to_string()))?;
    Ok(workspace.registry_version_dir(&pointer.version))
}

/// `registry.json` of the current version.
pub fn read_meta(workspace: &Workspace) -> Result<RegistryMeta, RegistryError> {
    let path = current_dir(workspace)?.join("registry.json");
    let text = std::fs::read_to_string(&path).map_err(|e| RegistryError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| RegistryError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Reads a whole Parquet file of a version.
pub fn read_table(dir: &Path, table: &str) -> Result<Vec<RecordBatch>, RegistryError> {
    let path = dir.join(format!("{table}.parquet"));
    let read_error = |e: &dyn std::fmt::Display| RegistryError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    let file = std::fs::File::open(&path).map_err(|e| read_error(&e))?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| read_error(&e))?
        .build()
        .map_err(|e| read_error(&e))?;
    reader
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| read_error(&e))
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
pub fn read_linked(
    workspace: &Workspace,
) -> Result<(Vec<LinkedRecord>, Vec<crate::link::stage::ScoredPair>), RegistryError> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Float32Type, Float64Type, UInt32Type, UInt64Type};
    let dir = current_dir(workspace)?;
    let mut records = Vec::new();
    let mut person_numbers: std::collections::HashMap<String, u64> = Default::default();
    for batch in read_table(&dir, "record_link")? {
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .cloned()
                .ok_or_else(|| RegistryError::Read {
                    path: dir.join("record_link.parquet").display().to_string(),
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
        let (source, row, rid, person, role, nik, status) = (
            source.as_string::<i32>(),
            row.as_primitive::<UInt64Type>(),
            rid.as_primitive::<UInt32Type>(),
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
    for batch in read_table(&dir, "match_pairs")? {
        let left = batch.column(0).as_primitive::<UInt32Type>();
        let right = batch.column(1).as_primitive::<UInt32Type>();
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
