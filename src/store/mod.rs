//! The store: every table terpadu publishes is a Delta Lake table, and one **workspace
//! version** names a consistent set of them.
//!
//! ```text
//! <workspace>/
//!   .lock                          the one workspace lock (every writer takes it)
//!   store/_versions/               Delta table, one row per workspace version (the log)
//!   store/staged/<source>/         Delta table per staged source
//!   store/quarantine/<source>/     Delta table per source: rows that could not be read
//!   store/registry/<table>/        person, family, record_link, program_membership, ...
//!   store/reports/<report>/        one Delta table per report
//!   files/v<N>/                    files for people (CSV, XLSX, HTML) of version N
//!   runs/ledger.jsonl              the run ledger
//! ```
//!
//! A writer opens a [`Draft`] (which takes the workspace lock), writes table data, commits
//! each table (Delta commits, invisible to readers), and finally [`Draft::commit`]s one row to
//! `_versions`. That append is the only step that makes the work visible. Readers [`pin`] one
//! workspace version and read every table at the Delta version it names, for as long as
//! they live. Nothing a retained version references is deleted: [`vacuum`] keeps every
//! table version that a version within `retain_hours`, or among the newest `keep_versions`,
//! names. A rollback publishes a new version with an older one's tables; id counters only
//! grow.
//!
//! The store knows tables, versions and documents (JSON kept with a version, such as the
//! staged manifest or the registry's counts), not persons or reports.

pub mod failpoint;
pub mod lock;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use deltalake::kernel::engine::arrow_conversion::TryIntoKernel;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add, MetadataExt, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableBuilder};
use serde::{Deserialize, Serialize};

pub use lock::{LockError, LockOwner, WorkspaceLock, host_name};

/// Store errors. Each names the file or table and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the workspace.
    #[error(transparent)]
    Locked(#[from] LockError),
    /// The version log or a table cannot be read: damaged or missing files.
    #[error(
        "the store is damaged: {path}: {message}. Nothing was changed. Restore {path} from a backup, or move the workspace aside and rebuild it with `terpadu run --force`"
    )]
    Damaged {
        /// The file or directory.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A workspace written by terpadu before the Delta store.
    #[error(
        "{path} holds a workspace in the old file-and-pointer layout (staged/_manifest.json, registry/_current.json), which this terpadu does not read. Move it aside (mv {path} {path}.old) and run `terpadu run PIPELINE` to rebuild it from the extracts"
    )]
    OldLayout {
        /// The workspace.
        path: String,
    },
    /// A version that this workspace does not have.
    #[error(
        "workspace {workspace} has no version {version} (it has {known}); see `terpadu status`"
    )]
    NoVersion {
        /// What was asked for.
        version: String,
        /// The workspace.
        workspace: String,
        /// The versions there are.
        known: String,
    },
    /// A version older than what vacuum keeps.
    #[error(
        "version {version} is older than the retention ({retain_hours} h) and beyond keep_versions; its files may have been vacuumed. Choose a newer version (see `terpadu status`)"
    )]
    Expired {
        /// The version.
        version: u64,
        /// The retention.
        retain_hours: u64,
    },
    /// Writing failed.
    #[error("cannot write {path}: {message} (check free space and permissions)")]
    Write {
        /// The file or table.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl StoreError {
    fn damaged(path: &Path, message: impl std::fmt::Display) -> Self {
        StoreError::Damaged {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
    fn write(path: &Path, message: impl std::fmt::Display) -> Self {
        StoreError::Write {
            path: path.display().to_string(),
            message: message.to_string(),
        }
    }
}

/// One workspace version: a row of `store/_versions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionRecord {
    /// 1, 2, 3, ... in commit order.
    pub version: u64,
    /// The run (or command) that published it.
    pub run_id: String,
    /// `run`, `ingest`, `link`, `report`, `rollback`.
    pub command: String,
    /// When it was committed (RFC 3339, UTC).
    pub published_at: String,
    /// The version it was built on.
    pub parent: Option<u64>,
    /// For a rollback: the version whose contents it publishes again.
    pub restored_from: Option<u64>,
    /// Table name (`registry/person`) -> Delta table version.
    pub tables: BTreeMap<String, u64>,
    /// The next person number never issued in any version (only grows).
    pub next_person_id: u64,
    /// The next family number never issued in any version (only grows).
    pub next_family_id: u64,
    /// JSON documents kept with the version (`staged`, `registry`, `model`, `reports`).
    pub documents: BTreeMap<String, serde_json::Value>,
}

/// Retention of published versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Versions published within this many hours are kept whole.
    pub retain_hours: u64,
    /// Beyond that, this many newest versions are kept too.
    pub keep_versions: usize,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            retain_hours: 168,
            keep_versions: 5,
        }
    }
}

impl Retention {
    /// The versions (of `history`, oldest first) that are kept: those published within the
    /// retention period, the newest `keep_versions`, and always the latest.
    pub fn kept<'a>(
        &self,
        history: &'a [VersionRecord],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Vec<&'a VersionRecord> {
        let cutoff = now - chrono::Duration::hours(self.retain_hours as i64);
        let newest = history.len().saturating_sub(self.keep_versions.max(1));
        history
            .iter()
            .enumerate()
            .filter(|(i, v)| {
                *i >= newest
                    || chrono::DateTime::parse_from_rfc3339(&v.published_at)
                        .is_ok_and(|t| t >= cutoff)
            })
            .map(|(_, v)| v)
            .collect()
    }
}

/// The store of one workspace.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

const VERSIONS: &str = "_versions";

impl Store {
    /// The store of the workspace at `root`.
    pub fn new(root: &Path) -> Store {
        Store {
            root: root.to_path_buf(),
        }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of table `name` (`registry/person`).
    pub fn table_dir(&self, name: &str) -> PathBuf {
        self.root.join("store").join(name)
    }

    /// The directory for version `n`'s files for people.
    pub fn files_dir(&self, version: u64) -> PathBuf {
        self.root.join("files").join(format!("v{version}"))
    }

    fn check_layout(&self) -> Result<(), StoreError> {
        let old = self.root.join("staged/_manifest.json").exists()
            || self.root.join("registry/_current.json").exists();
        if old && !self.table_dir(VERSIONS).exists() {
            return Err(StoreError::OldLayout {
                path: self.root.display().to_string(),
            });
        }
        Ok(())
    }

    /// Every published version, oldest first. An empty list only when nothing was ever
    /// published; a damaged or missing log with tables beside it is an error.
    pub async fn history(&self) -> Result<Vec<VersionRecord>, StoreError> {
        self.check_layout()?;
        let dir = self.table_dir(VERSIONS);
        if !dir.join("_delta_log").exists() {
            // The log is created before any table is written ([`Store::begin`]), so committed
            // tables without it mean the log was lost, not that nothing was published.
            let store_dir = self.root.join("store");
            let has_tables = std::fs::read_dir(&store_dir)
                .into_iter()
                .flatten()
                .flatten()
                .flat_map(|group| {
                    std::fs::read_dir(group.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                })
                .any(|table| table.path().join("_delta_log").is_dir());
            if has_tables {
                return Err(StoreError::damaged(
                    &dir.join("_delta_log"),
                    "the version log is missing although tables exist",
                ));
            }
            return Ok(Vec::new());
        }
        let table = open_table(&dir, None).await?;
        let mut records = Vec::new();
        for batch in read_files(&dir, &table_files(&table, &dir)?)? {
            let docs = string_column(&batch, "record", &dir)?;
            for i in 0..batch.num_rows() {
                let record: VersionRecord = serde_json::from_str(docs.value(i))
                    .map_err(|e| StoreError::damaged(&dir, format!("a version row: {e}")))?;
                records.push(record);
            }
        }
        records.sort_by_key(|r| r.version);
        Ok(records)
    }

    /// Pins the latest version (`None` when nothing was published yet).
    pub async fn pin_latest(&self) -> Result<Option<Snapshot>, StoreError> {
        Ok(self.history().await?.pop().map(|record| Snapshot {
            store: self.clone(),
            record,
        }))
    }

    /// Pins version `version` of this workspace. A version the last vacuum no longer kept
    /// is refused with [`StoreError::Expired`].
    pub async fn pin(&self, version: u64) -> Result<Snapshot, StoreError> {
        let history = self.history().await?;
        if let Some(vacuumed) = self.last_vacuum()
            && version <= vacuumed.latest
            && !vacuumed.kept.contains(&version)
        {
            return Err(StoreError::Expired {
                version,
                retain_hours: vacuumed.retain_hours,
            });
        }
        let record = history
            .iter()
            .find(|r| r.version == version)
            .cloned()
            .ok_or_else(|| StoreError::NoVersion {
                version: version.to_string(),
                workspace: self.root.display().to_string(),
                known: known_versions(&history),
            })?;
        Ok(Snapshot {
            store: self.clone(),
            record,
        })
    }

    /// Starts the next version: takes the workspace lock (held until the draft is committed
    /// or dropped) and starts from the latest version's contents.
    pub async fn begin(&self, command: &str, run_id: &str) -> Result<Draft, StoreError> {
        let lock = WorkspaceLock::acquire(&self.root, command)?;
        let history = self.history().await?;
        if !self.table_dir(VERSIONS).join("_delta_log").exists() {
            create_versions_log(self).await?;
        }
        let base = history.last().cloned();
        let version = base.as_ref().map_or(1, |b| b.version + 1);
        // Files of a run that died before committing this version number: nothing refers
        // to them (the number was never committed), and we hold the lock.
        let files = self.files_dir(version);
        if files.exists() {
            tracing::warn!(dir = %files.display(), "Removing the files of an interrupted run.");
            let _ = std::fs::remove_dir_all(&files);
        }
        let next = VersionRecord {
            version,
            run_id: run_id.to_string(),
            command: command.to_string(),
            published_at: String::new(),
            parent: base.as_ref().map(|b| b.version),
            restored_from: None,
            tables: base.as_ref().map(|b| b.tables.clone()).unwrap_or_default(),
            next_person_id: base.as_ref().map_or(0, |b| b.next_person_id),
            next_family_id: base.as_ref().map_or(0, |b| b.next_family_id),
            documents: base
                .as_ref()
                .map(|b| b.documents.clone())
                .unwrap_or_default(),
        };
        Ok(Draft {
            store: self.clone(),
            lock,
            base,
            next,
            written: Vec::new(),
        })
    }
}

/// What the last vacuum kept (`store/_vacuum.json`): versions up to `latest` that are not
/// in `kept` may have lost files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VacuumRecord {
    /// When it ran.
    pub at: String,
    /// The latest version then.
    pub latest: u64,
    /// The versions it kept.
    pub kept: Vec<u64>,
    /// Its retention.
    pub retain_hours: u64,
}

impl Store {
    fn vacuum_record_path(&self) -> PathBuf {
        self.root.join("store").join("_vacuum.json")
    }

    /// The record of the last vacuum, if any.
    pub fn last_vacuum(&self) -> Option<VacuumRecord> {
        serde_json::from_slice(&std::fs::read(self.vacuum_record_path()).ok()?).ok()
    }
}

fn known_versions(history: &[VersionRecord]) -> String {
    if history.is_empty() {
        return "none".into();
    }
    let first = history.first().map_or(0, |r| r.version);
    let last = history.last().map_or(0, |r| r.version);
    format!("{first}..{last}")
}

/// One pinned workspace version: every table read at the Delta version it names.
#[derive(Debug, Clone)]
pub struct Snapshot {
    store: Store,
    record: VersionRecord,
}

impl Snapshot {
    /// The version record.
    pub fn record(&self) -> &VersionRecord {
        &self.record
    }

    /// The version number.
    pub fn version(&self) -> u64 {
        self.record.version
    }

    /// The store it belongs to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the version holds table `name`.
    pub fn has_table(&self, name: &str) -> bool {
        self.record.tables.contains_key(name)
    }

    /// Table names under `prefix/` (`staged`), without the prefix.
    pub fn tables_under(&self, prefix: &str) -> Vec<String> {
        self.record
            .tables
            .keys()
            .filter_map(|k| k.strip_prefix(prefix)?.strip_prefix('/'))
            .map(String::from)
            .collect()
    }

    /// A document kept with the version.
    pub fn document<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        serde_json::from_value(self.record.documents.get(key)?.clone()).ok()
    }

    /// The data files of table `name` at this version, and the table's Arrow schema.
    pub async fn table_files(&self, name: &str) -> Result<TableFiles, StoreError> {
        let dir = self.store.table_dir(name);
        let version = *self.record.tables.get(name).ok_or_else(|| {
            StoreError::damaged(
                &dir,
                format!("version {} has no table {name}", self.record.version),
            )
        })?;
        let table = open_table(&dir, Some(version)).await?;
        let files = table_files(&table, &dir)?;
        for file in &files {
            if !file.exists() {
                return Err(StoreError::damaged(
                    file,
                    format!("a data file of {name} (Delta version {version}) is missing"),
                ));
            }
        }
        // The files' own schema (terpadu writes every file of a table version with one
        // writer); Delta's for a table without files.
        let schema = match files.first() {
            Some(first) => file_schema(first).map_err(|e| StoreError::damaged(first, e))?,
            None => table
                .snapshot()
                .map_err(|e| StoreError::damaged(&dir, e))?
                .snapshot()
                .arrow_schema(),
        };
        Ok(TableFiles { schema, files })
    }

    /// Reads table `name` whole at this version.
    pub async fn read_table(&self, name: &str) -> Result<Vec<RecordBatch>, StoreError> {
        let files = self.table_files(name).await?;
        read_files(&self.store.table_dir(name), &files.files)
    }
}

/// The files of one table at one version.
#[derive(Debug, Clone)]
pub struct TableFiles {
    /// The table's schema (Delta's, as Arrow).
    pub schema: SchemaRef,
    /// Absolute paths of the data files.
    pub files: Vec<PathBuf>,
}

/// A committed draft.
pub struct Published {
    /// The version as committed.
    pub record: VersionRecord,
    /// The workspace lock, released when dropped.
    pub lock: WorkspaceLock,
}

/// The next workspace version being written. Holds the workspace lock.
pub struct Draft {
    store: Store,
    lock: WorkspaceLock,
    base: Option<VersionRecord>,
    next: VersionRecord,
    written: Vec<PathBuf>,
}

impl Draft {
    /// The version number this draft will commit as.
    pub fn version(&self) -> u64 {
        self.next.version
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The workspace lock the draft holds.
    pub fn lock(&self) -> &WorkspaceLock {
        &self.lock
    }

    /// The version it builds on (the latest when it began).
    pub fn base(&self) -> Option<Snapshot> {
        self.base.clone().map(|record| Snapshot {
            store: self.store.clone(),
            record,
        })
    }

    /// What the draft holds so far, as a snapshot (later stages of a run read the tables
    /// that earlier stages wrote into the draft).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            store: self.store.clone(),
            record: self.next.clone(),
        }
    }

    /// Keeps `value` as document `key` of the version.
    pub fn set_document<T: Serialize>(&mut self, key: &str, value: &T) {
        if let Ok(value) = serde_json::to_value(value) {
            self.next.documents.insert(key.to_string(), value);
        }
    }

    /// Raises the id counters (they never go down).
    pub fn raise_counters(&mut self, next_person_id: u64, next_family_id: u64) {
        self.next.next_person_id = self.next.next_person_id.max(next_person_id);
        self.next.next_family_id = self.next.next_family_id.max(next_family_id);
    }

    /// The id counters so far.
    pub fn counters(&self) -> (u64, u64) {
        (self.next.next_person_id, self.next.next_family_id)
    }

    /// Leaves table `name` out of the version (its data stays for older versions).
    pub fn drop_table(&mut self, name: &str) {
        self.next.tables.remove(name);
    }

    /// A fresh data-file path inside table `name`'s directory, for writers that stream
    /// Parquet themselves (ingest). Commit it with [`Draft::commit_files`].
    pub fn new_file(&mut self, name: &str) -> Result<PathBuf, StoreError> {
        let dir = self.store.table_dir(name);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::write(&dir, e))?;
        let path = dir.join(format!(
            "part-v{}-{}-{}.zstd.parquet",
            self.next.version,
            std::process::id(),
            self.written.len()
        ));
        self.written.push(path.clone());
        Ok(path)
    }

    /// Replaces the contents of table `name` with `batches` (written as Parquet, types made
    /// Delta-compatible), committed as one Delta version. Not visible until [`Draft::commit`].
    pub async fn write_table(
        &mut self,
        name: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<u64, StoreError> {
        let path = self.new_file(name)?;
        let delta = delta_schema(schema);
        let converted: Vec<RecordBatch> = batches
            .iter()
            .map(|b| to_delta(b, &delta))
            .collect::<Result<_, _>>()
            .map_err(|e| StoreError::write(&path, e))?;
        let batch = match converted.as_slice() {
            [one] => one.clone(),
            _ => arrow::compute::concat_batches(&delta, &converted)
                .map_err(|e| StoreError::write(&path, e))?,
        };
        write_parquet(&batch, &path).map_err(|e| StoreError::write(&path, e))?;
        self.commit_files(name, &[path]).await
    }

    /// Commits Parquet files already written into table `name`'s directory (one writer, one
    /// schema, at least one file) as the table's whole contents: a Delta overwrite, with the
    /// schema replaced when it changed.
    pub async fn commit_files(&mut self, name: &str, files: &[PathBuf]) -> Result<u64, StoreError> {
        failpoint::hit(&format!("write:{name}"));
        let dir = self.store.table_dir(name);
        let first = files
            .first()
            .ok_or_else(|| StoreError::write(&dir, "no data file to commit"))?;
        let schema = file_schema(first)?;
        let kernel: StructType = schema.as_ref().try_into_kernel().map_err(|e| {
            StoreError::write(&dir, format!("schema not representable in Delta: {e}"))
        })?;
        let mut adds = Vec::new();
        for file in files {
            adds.push(Action::Add(add_action(&dir, file)?));
        }
        let version = if dir.join("_delta_log").exists() {
            let table = open_table(&dir, None).await?;
            let snapshot = table.snapshot().map_err(|e| StoreError::damaged(&dir, e))?;
            let mut actions = Vec::new();
            if snapshot.schema().as_ref() != &kernel {
                let metadata = snapshot
                    .metadata()
                    .clone()
                    .with_schema(&kernel)
                    .map_err(|e| StoreError::write(&dir, e))?;
                actions.push(Action::Metadata(metadata));
            }
            for file in snapshot.log_data().iter() {
                actions.push(Action::Remove(file.remove_action(true)));
            }
            actions.extend(adds);
            let committed = CommitBuilder::default()
                .with_actions(actions)
                .build(
                    Some(snapshot),
                    table.log_store(),
                    DeltaOperation::Write {
                        mode: SaveMode::Overwrite,
                        partition_by: None,
                        predicate: None,
                    },
                )
                .await
                .map_err(|e| StoreError::write(&dir, e))?;
            committed.version()
        } else {
            std::fs::create_dir_all(&dir).map_err(|e| StoreError::write(&dir, e))?;
            let table = deltalake::operations::create::CreateBuilder::new()
                .with_location(table_url(&dir)?.to_string())
                .with_table_name(name.replace('/', "_"))
                .with_columns(kernel.fields().cloned())
                .with_actions(adds)
                .with_save_mode(SaveMode::ErrorIfExists)
                .await
                .map_err(|e| StoreError::write(&dir, e))?;
            table.version().unwrap_or(0)
        };
        failpoint::hit(&format!("commit:{name}"));
        self.next.tables.insert(name.to_string(), version);
        Ok(version)
    }

    /// Publishes the draft: one append to the version log. Returns the committed record
    /// and the lock, still held (for a vacuum right after).
    pub async fn commit(mut self) -> Result<Published, StoreError> {
        self.next.published_at = chrono::Utc::now().to_rfc3339();
        let record = self.next.clone();
        append_version(&self.store, &record).await?;
        Ok(Published {
            record,
            lock: self.lock,
        })
    }

    /// Makes the draft publish `older`'s contents again (a restore). Counters stay as high
    /// as they are.
    pub fn restore(&mut self, older: &Snapshot) {
        let old = older.record();
        self.next.tables = old.tables.clone();
        self.next.documents = old.documents.clone();
        self.next.restored_from = Some(old.version);
    }
}

fn versions_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("version", DataType::Int64, false),
        Field::new("run_id", DataType::Utf8, false),
        Field::new("command", DataType::Utf8, false),
        Field::new("published_at", DataType::Utf8, false),
        Field::new("next_person_id", DataType::Int64, false),
        Field::new("next_family_id", DataType::Int64, false),
        Field::new("tables", DataType::Utf8, false),
        Field::new("record", DataType::Utf8, false),
    ]))
}

/// Creates the empty version log (Delta version 0, no rows).
async fn create_versions_log(store: &Store) -> Result<(), StoreError> {
    let dir = store.table_dir(VERSIONS);
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::write(&dir, e))?;
    let kernel: StructType = versions_schema()
        .as_ref()
        .try_into_kernel()
        .map_err(|e| StoreError::write(&dir, e))?;
    deltalake::operations::create::CreateBuilder::new()
        .with_location(table_url(&dir)?.to_string())
        .with_table_name("terpadu_versions")
        .with_comment("terpadu workspace versions: one row per published version")
        .with_columns(kernel.fields().cloned())
        .with_save_mode(SaveMode::ErrorIfExists)
        .await
        .map_err(|e| StoreError::write(&dir, e))?;
    Ok(())
}

async fn append_version(store: &Store, record: &VersionRecord) -> Result<(), StoreError> {
    let dir = store.table_dir(VERSIONS);
    let schema = versions_schema();
    let json = serde_json::to_string(record).map_err(|e| StoreError::write(&dir, e))?;
    let tables = serde_json::to_string(&record.tables).map_err(|e| StoreError::write(&dir, e))?;
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![record.version as i64])),
            Arc::new(StringArray::from(vec![record.run_id.as_str()])),
            Arc::new(StringArray::from(vec![record.command.as_str()])),
            Arc::new(StringArray::from(vec![record.published_at.as_str()])),
            Arc::new(Int64Array::from(vec![record.next_person_id as i64])),
            Arc::new(Int64Array::from(vec![record.next_family_id as i64])),
            Arc::new(StringArray::from(vec![tables])),
            Arc::new(StringArray::from(vec![json])),
        ],
    )
    .map_err(|e| StoreError::write(&dir, e))?;
    let path = dir.join(format!(
        "part-v{}-{}.zstd.parquet",
        record.version,
        std::process::id()
    ));
    write_parquet(&batch, &path).map_err(|e| StoreError::write(&path, e))?;
    let add = Action::Add(add_action(&dir, &path)?);
    failpoint::hit("version:commit");
    let table = open_table(&dir, None).await?;
    let snapshot = table.snapshot().map_err(|e| StoreError::damaged(&dir, e))?;
    CommitBuilder::default()
        .with_actions(vec![add])
        .build(
            Some(snapshot),
            table.log_store(),
            DeltaOperation::Write {
                mode: SaveMode::Append,
                partition_by: None,
                predicate: None,
            },
        )
        .await
        .map_err(|e| StoreError::write(&dir, e))?;
    failpoint::hit("version:committed");
    Ok(())
}

/// The Arrow schema stored in a Parquet file's footer.
fn file_schema(file: &Path) -> Result<SchemaRef, StoreError> {
    let open = std::fs::File::open(file).map_err(|e| StoreError::write(file, e))?;
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open)
        .map_err(|e| StoreError::write(file, e))?;
    Ok(builder.schema().clone())
}

/// An `add` action for a Parquet file written into the table directory.
fn add_action(dir: &Path, file: &Path) -> Result<Add, StoreError> {
    let meta = std::fs::metadata(file).map_err(|e| StoreError::write(file, e))?;
    let rows = parquet::file::reader::SerializedFileReader::new(
        std::fs::File::open(file).map_err(|e| StoreError::write(file, e))?,
    )
    .map(|r| {
        use parquet::file::reader::FileReader;
        r.metadata().file_metadata().num_rows()
    })
    .map_err(|e| StoreError::write(file, e))?;
    let relative = file
        .strip_prefix(dir)
        .map_err(|_| StoreError::write(file, "not inside its table directory"))?
        .to_string_lossy()
        .into_owned();
    let modified = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    Ok(Add {
        path: relative,
        partition_values: HashMap::new(),
        size: meta.len() as i64,
        modification_time: modified,
        data_change: true,
        stats: Some(format!("{{\"numRecords\":{rows}}}")),
        ..Default::default()
    })
}

fn table_url(dir: &Path) -> Result<url::Url, StoreError> {
    let absolute = std::path::absolute(dir).map_err(|e| StoreError::write(dir, e))?;
    url::Url::from_directory_path(&absolute)
        .map_err(|_| StoreError::write(dir, "not a usable directory path"))
}

async fn open_table(dir: &Path, version: Option<u64>) -> Result<DeltaTable, StoreError> {
    let url = table_url(dir).map_err(|e| StoreError::damaged(dir, e))?;
    let mut builder = DeltaTableBuilder::from_url(url).map_err(|e| StoreError::damaged(dir, e))?;
    if let Some(version) = version {
        builder = builder.with_version(version);
    }
    builder
        .load()
        .await
        .map_err(|e| StoreError::damaged(&dir.join("_delta_log"), e))
}

fn table_files(table: &DeltaTable, dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let snapshot = table.snapshot().map_err(|e| StoreError::damaged(dir, e))?;
    let mut files: Vec<PathBuf> = snapshot
        .log_data()
        .iter()
        .map(|f| {
            // terpadu names its files in plain ASCII, so the log's paths need no decoding.
            dir.join(f.path().as_ref())
        })
        .collect();
    files.sort();
    Ok(files)
}

fn read_files(dir: &Path, files: &[PathBuf]) -> Result<Vec<RecordBatch>, StoreError> {
    let mut batches = Vec::new();
    for file in files {
        let open = std::fs::File::open(file).map_err(|e| StoreError::damaged(file, e))?;
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(open)
            .and_then(|b| b.build())
            .map_err(|e| StoreError::damaged(file, e))?;
        for batch in reader {
            batches.push(batch.map_err(|e| StoreError::damaged(file, e))?);
        }
    }
    let _ = dir;
    Ok(batches)
}

fn string_column<'a>(
    batch: &'a RecordBatch,
    name: &str,
    dir: &Path,
) -> Result<&'a StringArray, StoreError> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| StoreError::damaged(dir, format!("no text column {name}")))
}

/// What vacuum did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VacuumSummary {
    /// Versions kept.
    pub versions_kept: Vec<u64>,
    /// Data files deleted.
    pub files_deleted: usize,
    /// Report-file directories deleted.
    pub dirs_deleted: usize,
}

/// Removes what no kept version references: table files (Delta vacuum, keeping every table
/// version a kept workspace version names, and files older than the retention that no log
/// entry names), and the people's-files directories of versions no longer kept.
/// The caller holds the workspace lock (through a draft or [`WorkspaceLock`]).
pub async fn vacuum(
    store: &Store,
    retention: Retention,
    _lock: &WorkspaceLock,
) -> Result<VacuumSummary, StoreError> {
    let history = store.history().await?;
    if history.is_empty() {
        return Ok(VacuumSummary::default());
    }
    let kept = retention.kept(&history, chrono::Utc::now());
    let mut summary = VacuumSummary {
        versions_kept: kept.iter().map(|v| v.version).collect(),
        ..Default::default()
    };
    // Recorded before anything is deleted, so that a version about to lose files is refused
    // clearly from now on, even if this vacuum is interrupted.
    let record = VacuumRecord {
        at: chrono::Utc::now().to_rfc3339(),
        latest: history.last().map_or(0, |v| v.version),
        kept: summary.versions_kept.clone(),
        retain_hours: retention.retain_hours,
    };
    let path = store.vacuum_record_path();
    write_atomic(
        &path,
        &serde_json::to_vec_pretty(&record).map_err(|e| StoreError::write(&path, e))?,
    )
    .map_err(|e| StoreError::write(&path, e))?;
    let mut keep: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    for version in &kept {
        for (table, v) in &version.tables {
            keep.entry(table).or_default().push(*v);
        }
    }
    for (name, versions) in keep {
        let dir = store.table_dir(name);
        let table = open_table(&dir, None).await?;
        let mut versions = versions;
        versions.sort_unstable();
        versions.dedup();
        // Counted on disk: Delta's metrics also list expired tombstones deleted earlier.
        let before = data_file_count(&dir);
        table
            .vacuum()
            .with_retention_period(chrono::Duration::hours(retention.retain_hours as i64))
            .with_enforce_retention_duration(false)
            .with_keep_versions(&versions)
            .with_mode(deltalake::operations::vacuum::VacuumMode::Full)
            .await
            .map_err(|e| StoreError::write(&dir, e))?;
        summary.files_deleted += before.saturating_sub(data_file_count(&dir));
        failpoint::hit(&format!("vacuum:{name}"));
    }
    // Tables no kept version names (a source removed from the pipeline, a report no longer
    // written) go whole.
    for group in std::fs::read_dir(store.root().join("store"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let group_name = group.file_name().to_string_lossy().into_owned();
        if group_name.starts_with('_') || !group.path().is_dir() {
            continue;
        }
        for table in std::fs::read_dir(group.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = format!("{group_name}/{}", table.file_name().to_string_lossy());
            let named = kept.iter().any(|v| v.tables.contains_key(&name));
            if !named {
                summary.files_deleted += data_file_count(&table.path());
                std::fs::remove_dir_all(table.path())
                    .map_err(|e| StoreError::write(&table.path(), e))?;
                failpoint::hit(&format!("vacuum:{name}"));
            }
        }
    }
    // People's files: keep the directories kept versions name.
    let referenced: Vec<String> = kept
        .iter()
        .filter_map(|v| v.documents.get("files_dir")?.as_str().map(String::from))
        .collect();
    let latest = history.last().map_or(0, |v| v.version);
    if let Ok(entries) = std::fs::read_dir(store.root().join("files")) {
        for entry in entries.flatten() {
            let name = format!("files/{}", entry.file_name().to_string_lossy());
            let number: Option<u64> = entry
                .file_name()
                .to_string_lossy()
                .strip_prefix('v')
                .and_then(|n| n.parse().ok());
            // Directories of versions not yet committed belong to a run in progress; we
            // hold the lock, so only numbers at or below the latest are considered.
            if number.is_some_and(|n| n <= latest)
                && !referenced.contains(&name)
                && std::fs::remove_dir_all(entry.path()).is_ok()
            {
                summary.dirs_deleted += 1;
            }
        }
    }
    Ok(summary)
}

fn data_file_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "parquet"))
        .count()
}

/// The Delta-compatible form of `schema`: Delta has no unsigned integers and no
/// dictionaries, so unsigned types widen to the next signed one and dictionaries become
/// their values.
pub fn delta_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| Arc::new(delta_field(f)))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

fn delta_field(field: &Field) -> Field {
    field.clone().with_data_type(delta_type(field.data_type()))
}

fn delta_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::UInt8 => DataType::Int16,
        DataType::UInt16 => DataType::Int32,
        DataType::UInt32 | DataType::UInt64 => DataType::Int64,
        DataType::Float16 => DataType::Float32,
        DataType::Utf8View | DataType::LargeUtf8 => DataType::Utf8,
        DataType::Dictionary(_, value) => delta_type(value),
        DataType::Timestamp(_, tz) => {
            DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, tz.clone())
        }
        DataType::List(inner) => DataType::List(Arc::new(delta_field(inner))),
        DataType::LargeList(inner) => DataType::List(Arc::new(delta_field(inner))),
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Arc::new(delta_field(f)))
                .collect::<Vec<_>>()
                .into(),
        ),
        other => other.clone(),
    }
}

/// Casts `batch` to `schema` (from [`delta_schema`]).
pub fn to_delta(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().as_ref() == schema.as_ref() {
        return Ok(batch.clone());
    }
    let columns: Vec<ArrayRef> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<Result<_, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// A column of `batch` as `u64`s, whatever integer type the store gave it.
pub fn u64_column(batch: &RecordBatch, name: &str) -> Option<Vec<u64>> {
    let column = batch.column_by_name(name)?;
    let cast = arrow::compute::cast(column, &DataType::Int64).ok()?;
    let values = cast.as_primitive::<Int64Type>();
    Some((0..values.len()).map(|i| values.value(i) as u64).collect())
}

/// Parquet writer settings for every table file: zstd, row groups of up to 128k rows, data
/// pages of up to 4k rows. Small pages let the page index narrow a point lookup (a person by
/// id over `terpadu serve`) to one page instead of decoding 20k rows of every column.
pub fn writer_properties() -> parquet::file::properties::WriterProperties {
    use parquet::basic::{Compression, ZstdLevel};
    parquet::file::properties::WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(128 * 1024))
        .set_data_page_row_count_limit(4096)
        .set_created_by(format!("terpadu {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Writes `batch` as one Parquet file (row groups of 64k rows, the staged files' settings)
/// and syncs it. Callers write into a scratch directory they publish by renaming.
pub fn write_parquet(batch: &arrow::array::RecordBatch, path: &Path) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(writer_properties()))
            .map_err(|e| e.to_string())?;
    for offset in (0..batch.num_rows()).step_by(65_536) {
        let len = 65_536.min(batch.num_rows() - offset);
        writer
            .write(&batch.slice(offset, len))
            .map_err(|e| e.to_string())?;
    }
    let file = writer.into_inner().map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())
}

/// Writes `bytes` to a temporary sibling, syncs it, and renames it over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut file = std::fs::File::create(&tmp)?;
        std::io::Write::write_all(&mut file, bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(n: u64, hours_ago: i64, now: chrono::DateTime<chrono::Utc>) -> VersionRecord {
        VersionRecord {
            version: n,
            run_id: format!("r{n}"),
            command: "run".into(),
            published_at: (now - chrono::Duration::hours(hours_ago)).to_rfc3339(),
            parent: n.checked_sub(1).filter(|p| *p > 0),
            restored_from: None,
            tables: BTreeMap::new(),
            next_person_id: 0,
            next_family_id: 0,
            documents: BTreeMap::new(),
        }
    }

    #[test]
    fn retention_keeps_recent_versions_and_the_newest_few() {
        let now = chrono::Utc::now();
        let history: Vec<VersionRecord> = [(1, 400), (2, 300), (3, 200), (4, 100), (5, 2), (6, 1)]
            .iter()
            .map(|(n, h)| version(*n, *h, now))
            .collect();
        let kept = |retain_hours, keep_versions| -> Vec<u64> {
            Retention {
                retain_hours,
                keep_versions,
            }
            .kept(&history, now)
            .iter()
            .map(|v| v.version)
            .collect()
        };
        assert_eq!(kept(168, 1), vec![4, 5, 6]);
        assert_eq!(kept(168, 4), vec![3, 4, 5, 6]);
        assert_eq!(kept(0, 1), vec![6], "the latest is always kept");
        assert_eq!(kept(1000, 1), vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn delta_types_have_no_unsigned_integers_or_dictionaries() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("rid", DataType::UInt32, false),
            Field::new("row", DataType::UInt64, false),
            Field::new("decile", DataType::UInt8, true),
            Field::new(
                "status",
                DataType::Dictionary(Box::new(DataType::UInt8), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new(
                "flags",
                DataType::List(Arc::new(Field::new("item", DataType::UInt16, true))),
                true,
            ),
        ]));
        let delta = delta_schema(&schema);
        let types: Vec<&DataType> = delta.fields().iter().map(|f| f.data_type()).collect();
        assert_eq!(types[0], &DataType::Int64);
        assert_eq!(types[1], &DataType::Int64);
        assert_eq!(types[2], &DataType::Int16);
        assert_eq!(types[3], &DataType::Utf8);
        assert_eq!(
            types[4],
            &DataType::List(Arc::new(Field::new("item", DataType::Int32, true)))
        );
        let kernel: Result<StructType, _> = delta.as_ref().try_into_kernel();
        assert!(kernel.is_ok(), "{kernel:?}");
    }
}
