//! The run ledger: `<workspace>/runs/ledger.jsonl`, one JSON object per line, appended and
//! synced. A run writes a `running` line when it starts and its final line when it ends; a run
//! killed in between keeps its `running` line, and the next run marks it `interrupted`.
//! Readers fold the lines by run id, the last line winning. `terpadu sql` shows the ledger as
//! `runs` and `run_stages`.

use std::io::Write;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::workspace::Workspace;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Still running (or killed: see [`RunStatus::Interrupted`]).
    Running,
    /// Every stage succeeded and the results were published.
    Succeeded,
    /// A stage failed; nothing it would have replaced was touched.
    Failed,
    /// No input changed since the last successful run; nothing was published.
    SkippedUnchanged,
    /// The process died while running (found by a later run).
    Interrupted,
}

impl RunStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::SkippedUnchanged => "skipped_unchanged",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// One stage of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// `ingest`, `link` or `report`.
    pub stage: String,
    /// Seconds it took.
    pub seconds: f64,
    /// Rows in.
    pub rows_in: u64,
    /// Rows out.
    pub rows_out: u64,
    /// Peak memory of the process so far, MiB.
    pub peak_rss_mib: Option<u64>,
}

/// One input file as the run saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    /// Source name.
    pub source: String,
    /// File path.
    pub path: String,
    /// Size.
    pub bytes: u64,
    /// SHA-256, hex.
    pub sha256: String,
}

/// One run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub run_id: String,
    /// Pipeline name.
    pub pipeline: String,
    /// `manual` or `schedule`.
    pub trigger: String,
    /// Process id and host, to tell a dead run from a live one.
    pub pid: u32,
    /// Host name.
    pub host: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339), when ended.
    pub ended_at: Option<String>,
    /// Status.
    pub status: RunStatus,
    /// Stages run.
    #[serde(default)]
    pub stages: Vec<StageRecord>,
    /// Inputs seen.
    #[serde(default)]
    pub inputs: Vec<InputRecord>,
    /// Sources that kept their previous staged version, and why.
    #[serde(default)]
    pub notes: Vec<String>,
    /// The workspace version published (or, when skipped, the one that stayed current).
    pub registry_version: Option<String>,
    /// The error, when failed.
    pub error: Option<String>,
    /// The exit code.
    pub exit_code: Option<u8>,
    /// SHA-256 of the pipeline file, its layouts and terpadu's version.
    #[serde(default)]
    pub config_sha256: Option<String>,
}

impl RunRecord {
    /// A run of `pipeline` starting now in this process, with nothing recorded yet.
    pub fn new(pipeline: &str, trigger: &str, status: RunStatus) -> RunRecord {
        let now = chrono::Utc::now();
        RunRecord {
            run_id: crate::workspace::new_run_id(now),
            pipeline: pipeline.to_string(),
            trigger: trigger.to_string(),
            pid: std::process::id(),
            host: crate::store::host_name(),
            started_at: now.to_rfc3339(),
            ended_at: None,
            status,
            stages: Vec::new(),
            inputs: Vec::new(),
            notes: Vec::new(),
            registry_version: None,
            error: None,
            exit_code: None,
            config_sha256: None,
        }
    }
}

/// The ledger file.
pub fn path(workspace: &Workspace) -> PathBuf {
    workspace.root().join("runs").join("ledger.jsonl")
}

/// Appends one record and syncs it.
pub fn append(workspace: &Workspace, record: &RunRecord) -> std::io::Result<()> {
    let path = path(workspace);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut line = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    line.push(b'\n');
    // A line cut short by a crash must not swallow this one.
    let cut = std::fs::read(&path).is_ok_and(|b| b.last().is_some_and(|&c| c != b'\n'));
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    if cut {
        file.write_all(b"\n")?;
    }
    file.write_all(&line)?;
    file.sync_all()
}

/// Every run, folded by id (last line wins), oldest first. Unreadable lines (a line cut by a
/// crash mid-write) are skipped.
pub fn read(workspace: &Workspace) -> Vec<RunRecord> {
    let Ok(text) = std::fs::read_to_string(path(workspace)) else {
        return Vec::new();
    };
    let mut runs: Vec<RunRecord> = Vec::new();
    for line in text.lines() {
        let Ok(record) = serde_json::from_str::<RunRecord>(line) else {
            continue;
        };
        match runs.iter_mut().find(|r| r.run_id == record.run_id) {
            Some(existing) => *existing = record,
            None => runs.push(record),
        }
    }
    runs
}

/// Marks runs left `running` by processes that are gone as `interrupted`; returns them.
pub fn mark_interrupted(workspace: &Workspace) -> std::io::Result<Vec<String>> {
    let host = crate::store::host_name();
    let mut marked = Vec::new();
    for mut run in read(workspace) {
        let alive =
            run.host == host && std::path::Path::new(&format!("/proc/{}", run.pid)).exists();
        if run.status == RunStatus::Running && !(alive && run.pid != std::process::id()) {
            run.status = RunStatus::Interrupted;
            run.ended_at = Some(chrono::Utc::now().to_rfc3339());
            run.error =
                Some("the process ended before the run finished (killed or crashed)".into());
            append(workspace, &run)?;
            marked.push(run.run_id);
        }
    }
    Ok(marked)
}

/// One deliberate access to unmasked personal data (`--unmasked` reports and explains), a
/// line of `runs/access.jsonl`: who, when, what, and where the output went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRecord {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The command (`report --unmasked`).
    pub command: String,
    /// The operating-system user.
    pub os_user: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// Where the unmasked output went (a directory, a file, or `stdout`).
    pub output: String,
}

/// The access log file.
pub fn access_path(workspace: &Workspace) -> PathBuf {
    workspace.root().join("runs").join("access.jsonl")
}

/// The operating-system user running this process.
pub fn os_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string("/proc/self/status").ok()?;
            let uid = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(format!("uid {}", uid.split_whitespace().nth(1)?))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Records an unmasked access. A failure to record is logged as an error (the output was
/// already written; the operator must know the record is missing).
pub fn record_unmasked(workspace: &Workspace, command: &str, output: &std::path::Path) {
    let record = AccessRecord {
        at: chrono::Utc::now().to_rfc3339(),
        command: command.to_string(),
        os_user: os_user(),
        host: crate::store::host_name(),
        pid: std::process::id(),
        output: output.display().to_string(),
    };
    let path = access_path(workspace);
    let written = (|| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)?;
        file.write_all(&line)?;
        file.sync_all()
    })();
    match written {
        Ok(()) => {
            tracing::warn!(command, user = %record.os_user, output = %record.output, "Unmasked personal data written; recorded in the access log.")
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "Could not record an unmasked access.")
        }
    }
}

/// Every recorded unmasked access, oldest first.
pub fn read_access(workspace: &Workspace) -> Vec<AccessRecord> {
    std::fs::read_to_string(access_path(workspace))
        .map(|text| {
            text.lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The last run that succeeded.
pub fn last_succeeded(workspace: &Workspace) -> Option<RunRecord> {
    read(workspace)
        .into_iter()
        .rev()
        .find(|r| r.status == RunStatus::Succeeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, status: RunStatus, pid: u32) -> RunRecord {
        RunRecord {
            run_id: id.into(),
            pid,
            ..RunRecord::new("p", "manual", status)
        }
    }

    #[test]
    fn the_last_line_wins_and_dead_runs_are_marked_interrupted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let workspace = Workspace::new(dir.path());
        append(&workspace, &record("a", RunStatus::Running, 1)).expect("append");
        append(&workspace, &record("a", RunStatus::Succeeded, 1)).expect("append");
        append(&workspace, &record("b", RunStatus::Running, u32::MAX - 1)).expect("append");
        // A line cut by a crash is skipped.
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(path(&workspace))
            .expect("open");
        file.write_all(b"{\"run_id\": \"c\", \"pipe")
            .expect("write");
        let runs = read(&workspace);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].status, RunStatus::Succeeded);
        assert_eq!(mark_interrupted(&workspace).expect("mark"), vec!["b"]);
        let runs = read(&workspace);
        assert_eq!(runs[1].status, RunStatus::Interrupted);
        assert_eq!(
            last_succeeded(&workspace).map(|r| r.run_id),
            Some("a".into())
        );
    }
}
