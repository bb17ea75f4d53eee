//! The one workspace lock: a kernel file lock on `<workspace>/.lock`, held by every writer.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

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
    /// Takes the lock of the workspace at `root` for `command`. Every writer (ingest, link,
    /// report, run, rollback, vacuum, the scheduler) takes this one lock.
    pub fn acquire(root: &Path, command: &str) -> Result<WorkspaceLock, LockError> {
        Self::acquire_file(root, ".lock", command)
    }

    fn acquire_file(root: &Path, name: &str, command: &str) -> Result<WorkspaceLock, LockError> {
        use std::io::{Read, Seek};
        let path = root.join(name);
        let shown = path.display().to_string();
        let io = |source| LockError::Io {
            path: shown.clone(),
            source,
        };
        std::fs::create_dir_all(root).map_err(io)?;
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
        let lock = WorkspaceLock::acquire(dir.path(), "ingest").expect("first lock");
        let err = WorkspaceLock::acquire(dir.path(), "ingest").expect_err("held");
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(lock);
        let again = WorkspaceLock::acquire(dir.path(), "ingest").expect("released on drop");
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
        let lock = WorkspaceLock::acquire(dir.path(), "ingest").expect("stale lock taken over");
        drop(lock);
    }
}
