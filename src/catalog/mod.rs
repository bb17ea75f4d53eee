//! The read-only query surface that people's SQL goes through (`terpadu sql` and
//! `terpadu serve`): one pinned workspace version, statements that can only read, and limits on
//! memory and time so that a runaway query cannot starve the nightly run on the same machine.
//!
//! A statement is planned, then refused if its plan (or any subquery, or a plan wrapped in
//! `EXPLAIN`/`EXPLAIN ANALYZE`) writes, defines or sets anything: DML (`INSERT`, `DELETE`,
//! `UPDATE`), `COPY`, DDL (`CREATE [EXTERNAL] TABLE`, `CREATE VIEW`, `DROP`), and statements
//! (`SET`, `BEGIN`, `PREPARE`). File paths and URLs in `FROM` are unknown tables: URL tables
//! stay off.
//!
//! [`policy`] builds a role's catalog of masked, region-scoped views for the network server.

pub mod policy;

use std::time::Duration;

use arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};

use crate::sql::{Session, SqlError, TableInfo};
use crate::store::Snapshot;
use crate::workspace::Workspace;

/// Memory and time limits of one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryLimits {
    /// Memory a statement's sorts, joins and aggregations may hold (DataFusion's pool).
    pub memory_bytes: usize,
    /// Wall time after which a statement is stopped.
    pub timeout: Duration,
}

impl Default for QueryLimits {
    /// 4 GiB and 5 minutes: room for a planner's heavy aggregation, and a nightly run at a
    /// province's size (3.4 GiB at 1M persons) still fits beside it on a 24 GiB machine.
    fn default() -> Self {
        QueryLimits {
            memory_bytes: 4 << 30,
            timeout: Duration::from_secs(300),
        }
    }
}

/// A read-only session over one pinned version.
pub struct ReadOnlySession {
    session: Session,
    limits: QueryLimits,
}

impl ReadOnlySession {
    /// Pins `version` (or the latest) of `workspace`.
    pub async fn open(
        workspace: &Workspace,
        version: Option<&str>,
        limits: QueryLimits,
    ) -> Result<ReadOnlySession, SqlError> {
        let snapshot = crate::sql::pin(workspace, version).await?;
        Self::over(&snapshot, limits).await
    }

    /// A read-only session over `snapshot`.
    pub async fn over(
        snapshot: &Snapshot,
        limits: QueryLimits,
    ) -> Result<ReadOnlySession, SqlError> {
        let runtime = limited_runtime(limits)?;
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_default_catalog_and_schema("terpadu", "public");
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        let session = Session::open_in(ctx, snapshot).await?;
        Ok(ReadOnlySession { session, limits })
    }

    /// The tables, for listings.
    pub fn tables(&self) -> &[TableInfo] {
        &self.session.tables
    }

    /// The pinned version's number.
    pub fn version(&self) -> u64 {
        self.session.snapshot.version()
    }

    /// The DataFusion context (read-only use: UDF lookups, schemas).
    pub fn context(&self) -> &SessionContext {
        &self.session.ctx
    }

    /// Plans `sql` and refuses anything that is not a read.
    pub async fn plan(&self, sql: &str) -> Result<LogicalPlan, SqlError> {
        plan_read_only(&self.session.ctx, sql).await
    }

    /// Runs one read-only statement within the limits.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, SqlError> {
        let plan = self.plan(sql).await?;
        let frame = self.session.ctx.execute_logical_plan(plan).await?;
        match tokio::time::timeout(self.limits.timeout, frame.collect()).await {
            Ok(result) => Ok(result?),
            Err(_) => Err(SqlError::Timeout(self.limits.timeout)),
        }
    }
}

/// Plans `sql` in `ctx` and refuses anything that is not a read.
pub async fn plan_read_only(ctx: &SessionContext, sql: &str) -> Result<LogicalPlan, SqlError> {
    let plan = ctx.state().create_logical_plan(sql).await?;
    check_read_only(&plan)?;
    Ok(plan)
}

/// Refuses `plan` if it (or any subquery, or a plan wrapped in `EXPLAIN`) writes, defines
/// or sets anything.
pub fn check_read_only(plan: &LogicalPlan) -> Result<(), SqlError> {
    if let Some(kind) = writing_node(plan) {
        return Err(SqlError::ReadOnly(kind));
    }
    // DataFusion's own check as a second line.
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|_| SqlError::ReadOnly("this statement".into()))
}

/// A runtime whose memory pool is `limits.memory_bytes`, without spilling: a statement's
/// memory is its limit, and a planner's query never fills the disk the nightly run writes to.
fn limited_runtime(
    limits: QueryLimits,
) -> Result<std::sync::Arc<datafusion::execution::runtime_env::RuntimeEnv>, SqlError> {
    Ok(RuntimeEnvBuilder::new()
        .with_memory_limit(limits.memory_bytes, 1.0)
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
        )
        .build_arc()?)
}

/// A context for one statement: `base`'s catalogs and functions with a memory pool of its
/// own, so that each statement gets `limits.memory_bytes` and cannot take another's.
pub fn statement_context(
    base: &SessionContext,
    limits: QueryLimits,
) -> Result<SessionContext, SqlError> {
    use datafusion::execution::SessionStateBuilder;
    let state = SessionStateBuilder::new_from_existing(base.state())
        .with_runtime_env(limited_runtime(limits)?)
        .build();
    Ok(SessionContext::new_with_state(state))
}

/// The kind of the first node of `plan` (subqueries and wrapped plans included) that would
/// write, define or set something.
fn writing_node(plan: &LogicalPlan) -> Option<String> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        let kind = match node {
            LogicalPlan::Dml(dml) => Some(format!("{}", dml.op).to_uppercase()),
            LogicalPlan::Copy(_) => Some("COPY".to_string()),
            LogicalPlan::Ddl(ddl) => Some(ddl_name(ddl.name())),
            LogicalPlan::Statement(statement) => Some(ddl_name(statement.name())),
            _ => None,
        };
        match kind {
            Some(kind) => {
                found = Some(kind);
                Ok(TreeNodeRecursion::Stop)
            }
            None => Ok(TreeNodeRecursion::Continue),
        }
    });
    found
}

/// `CreateExternalTable` -> `CREATE EXTERNAL TABLE`, `SetVariable` -> `SET VARIABLE`.
fn ddl_name(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}
