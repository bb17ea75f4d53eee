//! The statement log: one JSON line per statement and per failed login, with user, role,
//! client address, SQL text, pinned version, rows, duration and outcome. Auditors query it
//! as `audit_log`.
//!
//! Identifiers in the SQL text (a NIK in a `WHERE`) are masked like everywhere else in
//! terpadu's logs; `sql_sha256` is the hash of the full text, so an investigator holding a
//! suspect statement can prove it is the one that ran.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

/// One line of the statement log.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct AuditRecord {
    /// When the statement ended (RFC 3339, UTC).
    pub at: String,
    /// Login name.
    pub user: String,
    /// Role name.
    pub role: String,
    /// Region scope, if any.
    pub scope: Option<String>,
    /// `postgres` or `flight`.
    pub protocol: String,
    /// Client address.
    pub client: String,
    /// The SQL text, identifiers masked.
    pub sql: String,
    /// SHA-256 of the full SQL text.
    pub sql_sha256: String,
    /// The workspace version read.
    pub version: Option<u64>,
    /// Rows returned.
    pub rows: u64,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// `ok`, `refused`, `error`, `cancelled`, `timeout` or `login_failed`.
    pub outcome: String,
    /// The message for anything but `ok`.
    pub message: Option<String>,
    /// Whether the role sees unmasked identifiers.
    pub unmasked: bool,
}

/// The append-only statement log.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    file: Mutex<Option<std::fs::File>>,
}

impl AuditLog {
    /// A log at `path` (created on the first line).
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog {
            path,
            file: Mutex::new(None),
        }
    }

    /// Where the log is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` (and syncs: an audit line must survive a crash). A failure is logged
    /// as an error; the statement has already run.
    pub fn write(&self, mut record: AuditRecord) {
        record.at = chrono::Utc::now().to_rfc3339();
        let result = (|| -> std::io::Result<()> {
            let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
            if guard.is_none() {
                if let Some(dir) = self.path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                *guard = Some(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)?,
                );
            }
            let file = guard.as_mut().expect("opened above");
            let mut line = serde_json::to_vec(&record).map_err(std::io::Error::other)?;
            line.push(b'\n');
            file.write_all(&line)?;
            file.sync_data()
        })();
        if let Err(e) = result {
            tracing::error!(path = %self.path.display(), error = %e, "Cannot write the audit log; a statement is not recorded.");
        }
    }

    /// Reads every record (lines that do not parse are skipped).
    pub fn read(path: &Path) -> Vec<AuditRecord> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

/// The SQL text as the log keeps it, and the hash of the full text. Quoted literals may
/// hold a name or a birth date (`WHERE full_name = 'SITI AMINAH'`): each keeps its first
/// character only; digit runs outside quotes are masked like a NIK.
pub fn logged_sql(sql: &str) -> (String, String) {
    let mut masked = String::with_capacity(sql.len());
    let mut in_literal = false;
    let mut first = false;
    for c in sql.chars() {
        match (in_literal, c) {
            (false, '\'') => {
                in_literal = true;
                first = true;
                masked.push(c);
            }
            (true, '\'') => {
                in_literal = false;
                masked.push(c);
            }
            (true, _) if first => {
                first = false;
                masked.push(if c.is_ascii_digit() { '*' } else { c });
            }
            (true, _) => masked.push('*'),
            (false, _) => masked.push(c),
        }
    }
    (
        crate::redact::mask_identifiers(&masked),
        crate::serve::config::hash_token(sql),
    )
}

/// `audit_log` as a table: the file is read when a statement scans it, so auditors see
/// statements up to their own.
#[derive(Debug)]
pub struct AuditLogTable {
    path: PathBuf,
}

impl AuditLogTable {
    /// The table over the log at `path`.
    pub fn new(path: PathBuf) -> Arc<AuditLogTable> {
        Arc::new(AuditLogTable { path })
    }

    fn table_schema() -> SchemaRef {
        let text = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
        Arc::new(Schema::new(vec![
            text("at", false),
            text("user", false),
            text("role", false),
            text("scope", true),
            text("protocol", false),
            text("client", false),
            text("sql", false),
            text("sql_sha256", false),
            Field::new("version", DataType::Int64, true),
            Field::new("rows", DataType::Int64, false),
            Field::new("duration_ms", DataType::Int64, false),
            text("outcome", false),
            text("message", true),
            Field::new("unmasked", DataType::Boolean, false),
        ]))
    }

    fn batch(&self) -> DfResult<arrow::array::RecordBatch> {
        use arrow::array::{ArrayRef, BooleanArray, Int64Array, StringArray};
        let records = AuditLog::read(&self.path);
        let text = |f: &dyn Fn(&AuditRecord) -> Option<String>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<StringArray>())
        };
        let int = |f: &dyn Fn(&AuditRecord) -> Option<i64>| -> ArrayRef {
            Arc::new(records.iter().map(f).collect::<Int64Array>())
        };
        Ok(arrow::array::RecordBatch::try_new(
            Self::table_schema(),
            vec![
                text(&|r| Some(r.at.clone())),
                text(&|r| Some(r.user.clone())),
                text(&|r| Some(r.role.clone())),
                text(&|r| r.scope.clone()),
                text(&|r| Some(r.protocol.clone())),
                text(&|r| Some(r.client.clone())),
                text(&|r| Some(r.sql.clone())),
                text(&|r| Some(r.sql_sha256.clone())),
                int(&|r| r.version.map(|v| v as i64)),
                int(&|r| Some(r.rows as i64)),
                int(&|r| Some(r.duration_ms as i64)),
                text(&|r| Some(r.outcome.clone())),
                text(&|r| r.message.clone()),
                Arc::new(
                    records
                        .iter()
                        .map(|r| Some(r.unmasked))
                        .collect::<BooleanArray>(),
                ),
            ],
        )?)
    }
}

#[async_trait::async_trait]
impl TableProvider for AuditLogTable {
    fn schema(&self) -> SchemaRef {
        Self::table_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let table = MemTable::try_new(Self::table_schema(), vec![vec![self.batch()?]])?;
        table.scan(state, projection, filters, limit).await
    }
}
