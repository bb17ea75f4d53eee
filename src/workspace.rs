//! The workspace directory of a pipeline: its root, run ids, and small-file helpers.
//! Tables and versions live in [`crate::store`]; this module only names places.

use std::path::{Path, PathBuf};

use crate::store::Store;

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

    /// The workspace's store (tables and versions).
    pub fn store(&self) -> Store {
        Store::new(&self.root)
    }
}

/// The tables of a registry version (Delta tables `store/registry/<table>`) and what they
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

pub use crate::store::write_atomic;
