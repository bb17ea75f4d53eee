//! The workspace directory of a pipeline: the contract between stages.
//!
//! ```text
//! <workspace>/
//!   staged/_manifest.json                  the current staged data: which generation holds
//!                                          each source (the single switch, replaced atomically)
//!   staged/<run>/<source>.parquet          typed canonical records of one run
//!   staged/<run>/quarantine/<source>.parquet  rows that could not be read, with reasons
//!   staged/.tmp-<run>/                     a run in progress (never read by queries)
//!   runs/<run>/ingest.json                 every run's manifest, kept
//!   registry/_current.json                 which registry version is current (the switch)
//!   registry/<version>/*.parquet           one published registry version (person, family,
//!                                          record_link, program_membership, ...)
//!   registry/.tmp-<version>/               a version being written (never read by queries)
//! ```
//! Readers go through the manifest and the registry pointer, so they never see a half-written
//! generation or version; generations no manifest references are removed after each
//! successful run, and registry versions beyond the newest few are pruned.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::ingest::IngestManifest;

/// Paths inside one workspace.
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

/// A new run id: UTC time to the millisecond plus the process id, sortable.
pub fn new_run_id(now: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}-{}", now.format("%Y%m%dT%H%M%S%3fZ"), std::process::id())
}

impl Workspace {
    /// A workspace rooted at `root` (created on first write).
    pub fn new(root: &Path) -> Self {
        Workspace {
            root: root.to_path_buf(),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `staged/`.
    pub fn staged_dir(&self) -> PathBuf {
        self.root.join("staged")
    }

    /// The directory of one run's staged files.
    pub fn generation_dir(&self, run_id: &str) -> PathBuf {
        self.staged_dir().join(run_id)
    }

    /// Removes generation directories that the current manifest does not reference (older
    /// runs). Directories of runs in progress (`.tmp-*`) are left alone.
    pub fn remove_unreferenced_generations(&self) -> std::io::Result<()> {
        let Some(manifest) = self.read_manifest() else {
            return Ok(());
        };
        let referenced: Vec<&str> = manifest
            .sources
            .iter()
            .filter_map(|s| s.staged_file.split('/').nth(1))
            .collect();
        for entry in std::fs::read_dir(self.staged_dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_dir()
                && !name.starts_with('.')
                && !referenced.contains(&name.as_str())
            {
                std::fs::remove_dir_all(entry.path())?;
            }
        }
        Ok(())
    }

    /// Scratch directory of a run in progress.
    pub fn staging_tmp(&self, run_id: &str) -> PathBuf {
        self.staged_dir().join(format!(".tmp-{run_id}"))
    }

    /// `staged/_manifest.json`.
    pub fn manifest_path(&self) -> PathBuf {
        self.staged_dir().join("_manifest.json")
    }

    /// Reads the current staged manifest, if any.
    pub fn read_manifest(&self) -> Option<IngestManifest> {
        let text = std::fs::read_to_string(self.manifest_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Writes a run's manifest under `runs/<run>/ingest.json` and makes it the current staged
    /// manifest, merging in entries of sources this run did not touch.
    pub fn write_manifest(&self, manifest: &IngestManifest) -> std::io::Result<()> {
        let run_dir = self.root.join("runs").join(&manifest.run_id);
        std::fs::create_dir_all(&run_dir)?;
        write_atomic(&run_dir.join("ingest.json"), &to_json(manifest)?)?;
        let mut current = manifest.clone();
        if let Some(previous) = self.read_manifest() {
            for old in previous.sources {
                if !current.sources.iter().any(|s| s.name == old.name) {
                    current.sources.push(old);
                }
            }
        }
        write_atomic(&self.manifest_path(), &to_json(&current)?)
    }
}

impl Workspace {
    /// Drops `sources` from the current staged manifest (sources removed from the pipeline).
    pub fn forget_sources(&self, sources: &[String]) -> std::io::Result<()> {
        let Some(mut manifest) = self.read_manifest() else {
            return Ok(());
        };
        manifest.sources.retain(|s| !sources.contains(&s.name));
        write_atomic(&self.manifest_path(), &to_json(&manifest)?)
    }
}

/// The registry pointer: `registry/_current.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryPointer {
    /// The current version (a directory under `registry/`).
    pub version: String,
    /// When it was made current (RFC 3339).
    pub published_at: String,
}

impl Workspace {
    /// `registry/`.
    pub fn registry_dir(&self) -> PathBuf {
        self.root.join("registry")
    }

    /// The directory of one registry version.
    pub fn registry_version_dir(&self, version: &str) -> PathBuf {
        self.registry_dir().join(version)
    }

    /// Scratch directory of a version being written.
    pub fn registry_tmp(&self, version: &str) -> PathBuf {
        self.registry_dir().join(format!(".tmp-{version}"))
    }

    /// `registry/_current.json`.
    pub fn registry_pointer_path(&self) -> PathBuf {
        self.registry_dir().join("_current.json")
    }

    /// The current registry version, if one was published.
    pub fn read_registry_pointer(&self) -> Option<RegistryPointer> {
        let text = std::fs::read_to_string(self.registry_pointer_path()).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Published versions, oldest first (version ids sort by time).
    pub fn registry_versions(&self) -> Vec<String> {
        let mut versions: Vec<String> = std::fs::read_dir(self.registry_dir())
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|name| !name.starts_with('.'))
            .collect();
        versions.sort();
        versions
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(std::io::Error::other)
}

/// The tables of a registry version (`registry/<version>/<table>.parquet`) and what they
/// hold: written by the registry stage, registered by SQL sessions, reserved as names.
pub const REGISTRY_TABLES: &[(&str, &str)] = &[
    (
        "person",
        "one row per person: stable person_id, best NIK, name, birth date, region, family, sources, programs",
    ),
    (
        "family",
        "one row per family card (KK): head, members, KK numbers seen, programs",
    ),
    (
        "record_link",
        "every staged record -> person_id, with its strongest link and the level of each comparison",
    ),
    (
        "program_membership",
        "person/family x program x period, one row per program record",
    ),
    (
        "registry_changes",
        "person and family ids created, split, merged or retired since the previous version",
    ),
    (
        "match_pairs",
        "scored candidate record pairs (probability >= 0.01) by rid, with levels",
    ),
];

/// Writes `batch` as one Parquet file (row groups of 64k rows, the staged files' settings)
/// and syncs it. Callers write into a scratch directory they publish by renaming.
pub fn write_parquet(batch: &arrow::array::RecordBatch, path: &Path) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(
        file,
        batch.schema(),
        Some(crate::ingest::sink::writer_properties()),
    )
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
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Who holds a workspace lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockOwner {
    /// Process id.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// When the lock was taken (RFC 3339).
    pub since: String,
    /// What the holder is doing (`ingest`).
    pub command: String,
}

/// Lock errors.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error(
        "workspace {path} is in use by {command} (pid {pid} on {host}, since {since}); wait for it to finish or stop it"
    )]
    Held {
        /// The lock file.
        path: String,
        /// Holder's pid.
        pid: u32,
        /// Holder's host.
        host: String,
        /// Since when.
        since: String,
        /// Holder's command.
        command: String,
    },
    /// The lock file could not be written.
    #[error("cannot lock workspace {path}: {source} (check permissions and free space)")]
    Io {
        /// The lock file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// An exclusive lock on a workspace, released when dropped. It stops two runs (cron and a
/// manual one) from publishing into one workspace at once. It is a kernel file lock
/// (`flock`), so the kernel releases it when the holder dies, whatever host or container it
/// ran in; the file's content (pid, host, since, command) only names the holder in messages.
/// A lock file still naming a holder when we take it was left by a process that died, and is
/// taken over with a warning.
#[derive(Debug)]
pub struct WorkspaceLock {
    file: std::fs::File,
}

/// This machine's host name.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".to_string())
}

impl WorkspaceLock {
    /// Takes the lock of `workspace` for `command`.
    pub fn acquire(workspace: &Workspace, command: &str) -> Result<WorkspaceLock, LockError> {
        Self::acquire_file(workspace, ".lock", command)
    }

    /// The lock of a whole pipeline run (`.run-lock`), held across its stages, so that two
    /// runs (the daemon and a manual one) never interleave their stages.
    pub fn acquire_run(workspace: &Workspace, command: &str) -> Result<WorkspaceLock, LockError> {
        Self::acquire_file(workspace, ".run-lock", command)
    }

    fn acquire_file(
        workspace: &Workspace,
        name: &str,
        command: &str,
    ) -> Result<WorkspaceLock, LockError> {
        use std::io::{Read, Seek};
        let path = workspace.root().join(name);
        let shown = path.display().to_string();
        let io = |source| LockError::Io {
            path: shown.clone(),
            source,
        };
        std::fs::create_dir_all(workspace.root()).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        let mut previous = String::new();
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let _ = file.read_to_string(&mut previous);
                let holder: Option<LockOwner> = serde_json::from_str(&previous).ok();
                let holder = holder.unwrap_or(LockOwner {
                    pid: 0,
                    host: "unknown".into(),
                    since: "unknown".into(),
                    command: "unknown".into(),
                });
                return Err(LockError::Held {
                    path: shown,
                    pid: holder.pid,
                    host: holder.host,
                    since: holder.since,
                    command: holder.command,
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        let _ = file.read_to_string(&mut previous);
        if let Ok(stale) = serde_json::from_str::<LockOwner>(&previous) {
            tracing::warn!(
                lock = %shown,
                stale_pid = stale.pid,
                stale_host = %stale.host,
                "Taking over a lock left by a process that is gone."
            );
        }
        let me = LockOwner {
            pid: std::process::id(),
            host: host_name(),
            since: chrono::Utc::now().to_rfc3339(),
            command: command.to_string(),
        };
        let body = serde_json::to_vec(&me).map_err(|e| io(std::io::Error::other(e)))?;
        file.set_len(0).map_err(io)?;
        file.rewind().map_err(io)?;
        file.write_all(&body).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(WorkspaceLock { file })
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        // Empty means released cleanly; the kernel lock goes with the file handle. The file
        // stays: removing it would let a waiting process lock an unlinked inode.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_names_its_holder_and_a_stale_one_is_taken_over() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::new(dir.path());
        let lock = WorkspaceLock::acquire(&workspace, "ingest").expect("first lock");
        let err = WorkspaceLock::acquire(&workspace, "ingest").expect_err("held");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(lock);
        let again = WorkspaceLock::acquire(&workspace, "ingest").expect("released on drop");
        drop(again);

        // A lock file naming a process that died (its kernel lock went with it).
        let stale = LockOwner {
            pid: u32::MAX - 1,
            host: "another-container".into(),
            since: "2026-01-01T00:00:00Z".into(),
            command: "ingest".into(),
        };
        std::fs::write(
            dir.path().join(".lock"),
            serde_json::to_vec(&stale).expect("json"),
        )
        .expect("write stale lock");
        let lock = WorkspaceLock::acquire(&workspace, "ingest").expect("stale lock taken over");
        drop(lock);
    }
}
