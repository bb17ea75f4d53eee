//! Is tonight's extract there, complete and new? Checked per source before any work:
//! present (a required source that is missing fails the run), fresh (`max_age_hours`),
//! finished (a marker file such as `_SUCCESS`, or size and modification time unchanged for
//! `stable_seconds`), and changed (SHA-256 against the last successful run).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::ledger::InputRecord;
use crate::config::Source;
use crate::ingest::expand_inputs;

/// Why a source cannot be read tonight.
#[derive(Debug, Clone, PartialEq)]
pub enum NotReady {
    /// No file matches.
    Missing(String),
    /// The newest file is older than allowed.
    Stale(String),
    /// The marker file is not there yet.
    NoMarker(String),
    /// A file is still changing.
    Changing(String),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Missing(m)
            | NotReady::Stale(m)
            | NotReady::NoMarker(m)
            | NotReady::Changing(m) => f.write_str(m),
        }
    }
}

/// A source's state before the run.
#[derive(Debug, Clone)]
pub struct Readiness {
    /// Source name.
    pub source: String,
    /// Its files, when ready.
    pub files: Vec<PathBuf>,
    /// Why not, when not.
    pub not_ready: Option<NotReady>,
}

fn age_hours(path: &Path) -> Option<f64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    let age = SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    Some(age.as_secs_f64() / 3600.0)
}

fn size_and_mtime(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// The most a run waits in all for files to settle (`stable_seconds`, summed over sources).
pub const MAX_TOTAL_WAIT: Duration = Duration::from_secs(3600);

/// Checks one source's arrival rules. When a file changed within `stable_seconds`, waits out
/// the rest of that window (taken from `budget`, the run's remaining wait) to see whether it
/// is still growing.
pub fn check(source: &Source, budget: &mut Duration) -> Readiness {
    let rules = &source.arrival;
    let not_ready = |reason: NotReady| Readiness {
        source: source.name.clone(),
        files: Vec::new(),
        not_ready: Some(reason),
    };
    let files = match expand_inputs(source) {
        Ok(files) => files,
        Err(_) => {
            return not_ready(NotReady::Missing(format!(
                "source '{}': no file matches {}",
                source.name, source.path
            )));
        }
    };
    if let Some(marker) = &rules.marker {
        let dir = files
            .first()
            .and_then(|f| f.parent())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let pattern = dir.join(marker).to_string_lossy().into_owned();
        // The marker must be newer than the data: yesterday's `_SUCCESS` does not vouch for
        // tonight's copy still in progress.
        let newest_data = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok()?.modified().ok())
            .max();
        let found = glob::glob(&pattern).is_ok_and(|matches| {
            matches.flatten().any(|m| {
                let marked = std::fs::metadata(&m)
                    .ok()
                    .and_then(|meta| meta.modified().ok());
                match (marked, newest_data) {
                    (Some(marked), Some(data)) => marked >= data,
                    _ => true,
                }
            })
        });
        if !found {
            return not_ready(NotReady::NoMarker(format!(
                "source '{}': the marker {} is not there yet, or older than the data (the extract may still be copying)",
                source.name, pattern
            )));
        }
    }
    if let Some(max) = rules.max_age_hours {
        let newest = files
            .iter()
            .filter_map(|f| age_hours(f))
            .fold(f64::INFINITY, f64::min);
        if newest > max {
            return not_ready(NotReady::Stale(format!(
                "source '{}': the newest file under {} is {:.1} hours old, older than max_age_hours {max}",
                source.name, source.path, newest
            )));
        }
    }
    if rules.stable_seconds > 0 {
        // Only a file modified within the window needs watching: the rest have been still
        // for long enough already. The wait comes out of the run's budget.
        let window = Duration::from_secs(rules.stable_seconds);
        let quiet_for = files
            .iter()
            .filter_map(|f| size_and_mtime(f))
            .map(|(_, mtime)| SystemTime::now().duration_since(mtime).unwrap_or_default())
            .min()
            .unwrap_or(window);
        let wait = window.saturating_sub(quiet_for);
        if !wait.is_zero() {
            if wait > *budget {
                return not_ready(NotReady::Changing(format!(
                    "source '{}': a file under {} changed {} s ago; waiting {} s more for it to settle would pass the run's total wait of {} s",
                    source.name,
                    source.path,
                    quiet_for.as_secs(),
                    wait.as_secs(),
                    MAX_TOTAL_WAIT.as_secs()
                )));
            }
            tracing::info!(
                source = %source.name,
                "waiting {} s for {} to stop changing (arrival.stable_seconds = {})",
                wait.as_secs(),
                source.path,
                rules.stable_seconds
            );
            *budget -= wait;
            let before: Vec<_> = files.iter().map(|f| size_and_mtime(f)).collect();
            std::thread::sleep(wait);
            let after: Vec<_> = files.iter().map(|f| size_and_mtime(f)).collect();
            if let Some((file, _)) = files
                .iter()
                .zip(before.iter().zip(&after))
                .find(|(_, (b, a))| b != a)
            {
                return not_ready(NotReady::Changing(format!(
                    "source '{}': {} changed during the last {} s (still being written)",
                    source.name,
                    file.display(),
                    wait.as_secs()
                )));
            }
        }
    }
    Readiness {
        source: source.name.clone(),
        files,
        not_ready: None,
    }
}

/// Size and SHA-256 of each file.
pub fn fingerprint(source: &str, files: &[PathBuf]) -> std::io::Result<Vec<InputRecord>> {
    files
        .iter()
        .map(|path| {
            use std::io::Read as _;
            let mut file = std::fs::File::open(path)?;
            let mut hasher = Sha256::new();
            let mut buffer = vec![0u8; 1 << 16];
            let mut bytes = 0u64;
            loop {
                let n = file.read(&mut buffer)?;
                if n == 0 {
                    break;
                }
                hasher.update(&buffer[..n]);
                bytes += n as u64;
            }
            Ok(InputRecord {
                source: source.to_string(),
                path: path.display().to_string(),
                bytes,
                sha256: hasher
                    .finalize()
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect(),
            })
        })
        .collect()
}
