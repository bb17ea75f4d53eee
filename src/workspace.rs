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
//! ```
//! Readers go through the manifest, so they never see a half-written generation; generations
//! no manifest references are removed after each successful run.

use std::io::Write;
use std::path::{Path, PathBuf};

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

fn to_json<T: serde::Serialize>(value: &T) -> std::io::Result<Vec<u8>> {
    serde_json::to_vec_pretty(value).map_err(std::io::Error::other)
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
