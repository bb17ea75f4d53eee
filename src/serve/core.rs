//! The one guarded core both protocols go through: authenticate, resolve the role, build the
//! role's catalog over the pinned workspace version, plan read-only, enforce limits, audit.
//! Protocol code gets record-batch streams from here and never touches a table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::Stream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::audit::{AuditLog, AuditLogTable, AuditRecord, logged_sql};
use super::config::{Credential, ServeConfig};
use crate::catalog::policy::{Policy, RoleCatalog, TableGroup};
use crate::sql::{SqlError, TableInfo};
use crate::workspace::Workspace;

/// Why the server refused or failed a request. Each protocol maps the kind to its own code.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Wrong user, password or token (the message never says which).
    #[error("authentication failed for user '{0}'")]
    BadLogin(String),
    /// Too many failed logins from this address.
    #[error("too many failed logins for user '{0}' from this address; try again in {1} s")]
    LockedOut(String, u64),
    /// The statement would write, define or set something.
    #[error("{0} is not allowed: the registry is read-only; use SELECT")]
    ReadOnly(String),
    /// The statement names a table the caller's role does not have (or no table at all).
    #[error("{0}")]
    UnknownTable(String),
    /// The statement may not run (bad SQL, a bad parameter).
    #[error("{0}")]
    Refused(String),
    /// The server is at its limit of concurrent statements.
    #[error("the server is running {0} statements, its limit; try again shortly")]
    Busy(usize),
    /// The statement ran past its time limit.
    #[error("the statement was stopped after {0} s (the server's time limit)")]
    Timeout(u64),
    /// The workspace cannot be read.
    #[error("{0}")]
    Unavailable(String),
}

impl From<SqlError> for ServeError {
    fn from(e: SqlError) -> Self {
        match e {
            SqlError::Store(_) | SqlError::NothingStaged(_) => {
                ServeError::Unavailable(e.to_string())
            }
            SqlError::ReadOnly(kind) => ServeError::ReadOnly(kind),
            SqlError::Query(DataFusionError::Plan(message)) if message.contains("not found") => {
                ServeError::UnknownTable(format!(
                    "{}; this login's tables are listed by \\dt or information_schema.tables",
                    crate::redact::mask_identifiers(&message)
                ))
            }
            other => ServeError::Refused(crate::redact::mask_identifiers(&other.to_string())),
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Login name.
    pub user: String,
    /// What they may see.
    pub policy: Policy,
}

/// One request's caller: identity, protocol and address, for the audit log.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated identity.
    pub identity: Arc<Identity>,
    /// `postgres` or `flight`.
    pub protocol: &'static str,
    /// Client address.
    pub client: String,
}

#[derive(Default)]
struct Failures {
    count: u32,
    locked_until: Option<Instant>,
}

/// Role catalogs of one workspace version, built on first use.
struct VersionCatalogs {
    snapshot: crate::store::Snapshot,
    roles: tokio::sync::Mutex<HashMap<Policy, Arc<RoleCatalog>>>,
}

/// The server's state shared by every connection.
pub struct Core {
    workspace: Workspace,
    config: ServeConfig,
    audit: Arc<AuditLog>,
    insecure_local: bool,
    failures: Mutex<HashMap<(String, IpAddr), Failures>>,
    tokens: Mutex<HashMap<String, (Arc<Identity>, Instant)>>,
    /// The latest version's catalogs and the log stamp they were read at.
    latest: tokio::sync::Mutex<Option<(Option<SystemTime>, Arc<VersionCatalogs>)>>,
    /// Older versions still asked for by tickets and pinned connections.
    older: tokio::sync::Mutex<HashMap<u64, Arc<VersionCatalogs>>>,
    statements: Arc<Semaphore>,
}

impl Core {
    /// A core over `workspace`. With `insecure_local`, every login is accepted as a masked
    /// `planner` (the listeners bind to loopback only).
    pub fn new(workspace: Workspace, config: ServeConfig, insecure_local: bool) -> Core {
        let audit_path = config
            .audit_log
            .clone()
            .unwrap_or_else(|| workspace.root().join("runs").join("audit.jsonl"));
        let statements = Arc::new(Semaphore::new(config.max_concurrent_statements));
        Core {
            workspace,
            audit: Arc::new(AuditLog::new(audit_path)),
            config,
            insecure_local,
            failures: Mutex::default(),
            tokens: Mutex::default(),
            latest: tokio::sync::Mutex::new(None),
            older: tokio::sync::Mutex::default(),
            statements,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ServeConfig {
        &self.config
    }

    /// The statement log.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Checks `user`'s password (or token, for clients that send one as the password).
    /// Failures are counted per user and address; past the limit the pair is locked out.
    pub fn login(
        &self,
        user: &str,
        secret: &str,
        client: std::net::SocketAddr,
        protocol: &'static str,
    ) -> Result<Arc<Identity>, ServeError> {
        if self.insecure_local {
            let mut policy = super::config::builtin_role("planner").expect("built in");
            policy.role = "planner".into();
            return Ok(Arc::new(Identity {
                user: user.to_string(),
                policy,
            }));
        }
        let key = (user.to_string(), client.ip());
        {
            let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(until) = failures.get(&key).and_then(|f| f.locked_until)
                && until > Instant::now()
            {
                let wait = (until - Instant::now()).as_secs() + 1;
                self.audit_login(user, client, protocol, "locked out");
                return Err(ServeError::LockedOut(
                    crate::redact::escape_controls(user),
                    wait,
                ));
            }
        }
        let verified = self.config.users.get(user).and_then(|u| {
            u.credentials
                .iter()
                .any(|c| verify(c, secret))
                .then(|| u.policy.clone())
        });
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match verified {
            Some(policy) => {
                failures.remove(&key);
                Ok(Arc::new(Identity {
                    user: user.to_string(),
                    policy,
                }))
            }
            None => {
                let entry = failures.entry(key).or_default();
                entry.count += 1;
                if entry.count >= self.config.max_login_failures {
                    entry.locked_until = Some(Instant::now() + self.config.lockout);
                    entry.count = 0;
                    tracing::warn!(user = %crate::redact::escape_controls(user), client = %client.ip(), "Login locked out after repeated failures.");
                }
                drop(failures);
                self.audit_login(user, client, protocol, "wrong password or token");
                Err(ServeError::BadLogin(crate::redact::escape_controls(user)))
            }
        }
    }

    /// A bearer token for `identity` (Flight SQL handshakes), valid for the configured TTL.
    pub fn mint_token(&self, identity: Arc<Identity>) -> String {
        let token = format!("{}{}", uuid_like(), uuid_like());
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        tokens.retain(|_, (_, expires)| *expires > now);
        tokens.insert(token.clone(), (identity, now + self.config.token_ttl));
        token
    }

    /// The identity of a bearer token: one minted here, or a configured user's token.
    pub fn bearer(
        &self,
        token: &str,
        client: std::net::SocketAddr,
        protocol: &'static str,
    ) -> Result<Arc<Identity>, ServeError> {
        {
            let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((identity, expires)) = tokens.get(token)
                && *expires > Instant::now()
            {
                return Ok(identity.clone());
            }
        }
        if self.insecure_local {
            return self.login("local", "", client, protocol);
        }
        let hash = super::config::hash_token(token);
        for user in self.config.users.values() {
            if user
                .credentials
                .iter()
                .any(|c| matches!(c, Credential::Token(h) if constant_time_eq(h.as_bytes(), hash.as_bytes())))
            {
                return Ok(Arc::new(Identity {
                    user: user.name.clone(),
                    policy: user.policy.clone(),
                }));
            }
        }
        self.audit_login("(token)", client, protocol, "unknown or expired token");
        Err(ServeError::BadLogin("(token)".into()))
    }

    fn audit_login(&self, user: &str, client: std::net::SocketAddr, protocol: &str, why: &str) {
        self.audit.write(AuditRecord {
            user: crate::redact::escape_controls(user),
            protocol: protocol.to_string(),
            client: client.to_string(),
            outcome: "login_failed".into(),
            message: Some(why.into()),
            ..AuditRecord::default()
        });
    }

    /// `identity`'s catalog over `version`, or over the latest version.
    pub async fn catalog(
        &self,
        identity: &Identity,
        version: Option<u64>,
    ) -> Result<Arc<RoleCatalog>, ServeError> {
        let catalogs = match version {
            None => self.latest_catalogs().await?,
            Some(v) => self.version_catalogs(v).await?,
        };
        let mut roles = catalogs.roles.lock().await;
        if let Some(catalog) = roles.get(&identity.policy) {
            return Ok(catalog.clone());
        }
        let extra: Vec<(TableInfo, Arc<dyn datafusion::catalog::TableProvider>)> = vec![(
            TableInfo {
                name: "audit_log".into(),
                description: "the server's statement log".into(),
            },
            AuditLogTable::new(self.audit.path().to_path_buf()),
        )];
        let extra = if identity.policy.groups.contains(&TableGroup::Audit) {
            extra
        } else {
            Vec::new()
        };
        let catalog =
            Arc::new(RoleCatalog::build(&catalogs.snapshot, &identity.policy, extra).await?);
        super::postgres::register_pg_catalog(&catalog).await?;
        roles.insert(identity.policy.clone(), catalog.clone());
        Ok(catalog)
    }

    async fn latest_catalogs(&self) -> Result<Arc<VersionCatalogs>, ServeError> {
        let stamp = std::fs::metadata(
            self.workspace
                .store()
                .table_dir("_versions")
                .join("_delta_log"),
        )
        .and_then(|m| m.modified())
        .ok();
        let mut latest = self.latest.lock().await;
        if let Some((seen, catalogs)) = latest.as_ref()
            && *seen == stamp
            && stamp.is_some()
        {
            return Ok(catalogs.clone());
        }
        let snapshot = crate::sql::pin(&self.workspace, None).await?;
        if let Some((_, previous)) = latest.as_ref()
            && previous.snapshot.version() == snapshot.version()
        {
            let catalogs = previous.clone();
            *latest = Some((stamp, catalogs.clone()));
            return Ok(catalogs);
        }
        let catalogs = Arc::new(VersionCatalogs {
            snapshot,
            roles: tokio::sync::Mutex::default(),
        });
        if let Some((_, previous)) = latest.take() {
            let mut older = self.older.lock().await;
            older.insert(previous.snapshot.version(), previous);
            // A few versions stay cached for tickets and connections pinned to them.
            while older.len() > 3 {
                let oldest = *older.keys().min().expect("not empty");
                older.remove(&oldest);
            }
        }
        tracing::info!(
            version = catalogs.snapshot.version(),
            "Serving workspace version."
        );
        *latest = Some((stamp, catalogs.clone()));
        Ok(catalogs)
    }

    async fn version_catalogs(&self, version: u64) -> Result<Arc<VersionCatalogs>, ServeError> {
        let latest = self.latest_catalogs().await?;
        if latest.snapshot.version() == version {
            return Ok(latest);
        }
        let mut older = self.older.lock().await;
        if let Some(c) = older.get(&version) {
            return Ok(c.clone());
        }
        let snapshot = crate::sql::pin(&self.workspace, Some(&version.to_string())).await?;
        let catalogs = Arc::new(VersionCatalogs {
            snapshot,
            roles: tokio::sync::Mutex::default(),
        });
        older.insert(version, catalogs.clone());
        Ok(catalogs)
    }

    /// Plans `planned_sql` read-only in `catalog` and returns the result schema and the
    /// parameters' types (`$1`, `$2`...). Refusals are audited under `sent_sql`.
    pub async fn describe(
        &self,
        caller: &Caller,
        catalog: &RoleCatalog,
        sent_sql: &str,
        planned_sql: &str,
    ) -> Result<(SchemaRef, Vec<Option<DataType>>), ServeError> {
        let started = Instant::now();
        let plan = match self.plan(catalog, planned_sql).await {
            Ok(planned) => planned.plan,
            Err(e) => {
                self.audit_statement(caller, catalog, sent_sql, started, 0, &Err(&e));
                return Err(e);
            }
        };
        let schema = Arc::new(plan.schema().as_arrow().clone());
        Ok((schema, parameter_types(&plan)))
    }

    async fn plan(&self, catalog: &RoleCatalog, sql: &str) -> Result<LogicalPlanIn, ServeError> {
        let ctx = crate::catalog::statement_context(catalog.context(), self.config.limits)?;
        let plan = crate::catalog::plan_read_only(&ctx, sql).await?;
        Ok(LogicalPlanIn { ctx, plan })
    }

    /// Runs `planned_sql` (what `sent_sql` became after protocol rewrites) with `params` in
    /// `catalog`: read-only, within the memory and time limits, counted against the
    /// concurrency limit, and audited when the stream ends, fails or is dropped.
    pub async fn run(
        &self,
        caller: &Caller,
        catalog: &RoleCatalog,
        sent_sql: &str,
        planned_sql: &str,
        params: Vec<Param>,
    ) -> Result<AuditedStream, ServeError> {
        let started = Instant::now();
        let result = self.start(catalog, planned_sql, params).await;
        match result {
            Ok((schema, stream, permit)) => Ok(AuditedStream {
                inner: stream,
                schema,
                rows: 0,
                started,
                deadline: Box::pin(tokio::time::sleep(self.config.limits.timeout)),
                timeout: self.config.limits.timeout,
                finished: false,
                record: Some(self.record(caller, catalog, sent_sql)),
                audit: self.audit_handle(),
                _permit: permit,
            }),
            Err(e) => {
                self.audit_statement(caller, catalog, sent_sql, started, 0, &Err(&e));
                Err(e)
            }
        }
    }

    async fn start(
        &self,
        catalog: &RoleCatalog,
        sql: &str,
        params: Vec<Param>,
    ) -> Result<(SchemaRef, SendableRecordBatchStream, OwnedSemaphorePermit), ServeError> {
        let permit = match tokio::time::timeout(
            Duration::from_secs(10),
            self.statements.clone().acquire_owned(),
        )
        .await
        {
            Ok(Ok(permit)) => permit,
            _ => return Err(ServeError::Busy(self.config.max_concurrent_statements)),
        };
        let LogicalPlanIn { ctx, plan } = self.plan(catalog, sql).await?;
        let plan = if params.is_empty() {
            plan
        } else {
            let types = parameter_types(&plan);
            let values = params
                .into_iter()
                .enumerate()
                .map(|(i, p)| p.into_scalar(types.get(i).cloned().flatten()))
                .collect::<Result<Vec<_>, _>>()?;
            plan.with_param_values(values)
                .map_err(|e| ServeError::Refused(e.to_string()))?
        };
        let schema = Arc::new(plan.schema().as_arrow().clone());
        let frame = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| ServeError::from(SqlError::Query(e)))?;
        let stream = frame
            .execute_stream()
            .await
            .map_err(|e| ServeError::from(SqlError::Query(e)))?;
        Ok((schema, stream, permit))
    }

    fn record(&self, caller: &Caller, catalog: &RoleCatalog, sql: &str) -> AuditRecord {
        let (sql, sql_sha256) = logged_sql(sql);
        let policy = &caller.identity.policy;
        AuditRecord {
            user: caller.identity.user.clone(),
            role: policy.role.clone(),
            scope: policy.scope.as_ref().map(|s| s.code().to_string()),
            protocol: caller.protocol.to_string(),
            client: caller.client.clone(),
            sql,
            sql_sha256,
            version: Some(catalog.version()),
            unmasked: policy.unmasked,
            ..AuditRecord::default()
        }
    }

    fn audit_statement(
        &self,
        caller: &Caller,
        catalog: &RoleCatalog,
        sql: &str,
        started: Instant,
        rows: u64,
        outcome: &Result<(), &ServeError>,
    ) {
        let mut record = self.record(caller, catalog, sql);
        record.rows = rows;
        record.duration_ms = started.elapsed().as_millis() as u64;
        match outcome {
            Ok(()) => record.outcome = "ok".into(),
            Err(e) => {
                record.outcome = match e {
                    ServeError::Timeout(_) => "timeout",
                    ServeError::Busy(_) | ServeError::Unavailable(_) => "error",
                    _ => "refused",
                }
                .into();
                record.message = Some(e.to_string());
            }
        }
        self.audit.write(record);
    }

    fn audit_handle(&self) -> Arc<AuditLog> {
        self.audit.clone()
    }
}

/// A plan and the statement context it runs in.
struct LogicalPlanIn {
    ctx: datafusion::prelude::SessionContext,
    plan: LogicalPlan,
}

/// The types DataFusion inferred for `$1`, `$2`... in order.
fn parameter_types(plan: &LogicalPlan) -> Vec<Option<DataType>> {
    let types = plan.get_parameter_types().unwrap_or_default();
    let mut numbered: Vec<(usize, Option<DataType>)> = types
        .into_iter()
        .filter_map(|(name, t)| {
            name.trim_start_matches('$')
                .parse::<usize>()
                .ok()
                .map(|n| (n, t))
        })
        .collect();
    numbered.sort_by_key(|(n, _)| *n);
    let count = numbered.last().map(|(n, _)| *n).unwrap_or(0);
    (1..=count)
        .map(|n| {
            numbered
                .iter()
                .find(|(m, _)| *m == n)
                .and_then(|(_, t)| t.clone())
        })
        .collect()
}

/// A statement parameter as a client sent it.
#[derive(Debug, Clone)]
pub enum Param {
    /// SQL NULL.
    Null,
    /// Text, cast to the type the plan expects.
    Text(String),
    /// An already typed value (Flight SQL parameter batches, binary PostgreSQL parameters).
    Value(ScalarValue),
}

impl Param {
    fn into_scalar(self, expected: Option<DataType>) -> Result<ScalarValue, ServeError> {
        let bad = |e: DataFusionError| ServeError::Refused(format!("bad parameter: {e}"));
        match (self, expected) {
            (Param::Null, Some(t)) => ScalarValue::try_from(&t).map_err(bad),
            (Param::Null, None) => Ok(ScalarValue::Utf8(None)),
            (Param::Text(text), Some(t)) => ScalarValue::try_from_string(text, &t).map_err(bad),
            (Param::Text(text), None) => Ok(ScalarValue::Utf8(Some(text))),
            (Param::Value(v), Some(t)) if v.data_type() != t => v.cast_to(&t).map_err(bad),
            (Param::Value(v), _) => Ok(v),
        }
    }
}

/// A statement's result stream: stops at the time limit, holds its concurrency slot, and
/// writes the audit line (rows, duration, outcome) when it ends, fails or is dropped (the
/// client went away: `cancelled`).
pub struct AuditedStream {
    inner: SendableRecordBatchStream,
    schema: SchemaRef,
    rows: u64,
    started: Instant,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
    finished: bool,
    record: Option<AuditRecord>,
    audit: Arc<AuditLog>,
    _permit: OwnedSemaphorePermit,
}

impl AuditedStream {
    /// The result schema (the logical plan's, as announced before the first batch).
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn finish(&mut self, outcome: &str, message: Option<String>) {
        if let Some(mut record) = self.record.take() {
            record.rows = self.rows;
            record.duration_ms = self.started.elapsed().as_millis() as u64;
            record.outcome = outcome.into();
            record.message = message.map(|m| crate::redact::mask_identifiers(&m));
            self.audit.write(record);
        }
        self.finished = true;
    }
}

impl Stream for AuditedStream {
    type Item = Result<RecordBatch, ServeError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            let seconds = self.timeout.as_secs();
            self.finish("timeout", Some(format!("stopped after {seconds} s")));
            return Poll::Ready(Some(Err(ServeError::Timeout(seconds))));
        }
        match self.inner.as_mut().poll_next(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                self.finish("ok", None);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(batch))) => {
                self.rows += batch.num_rows() as u64;
                Poll::Ready(Some(Ok(batch)))
            }
            Poll::Ready(Some(Err(e))) => {
                let error = ServeError::from(SqlError::Query(e));
                self.finish("error", Some(error.to_string()));
                Poll::Ready(Some(Err(error)))
            }
        }
    }
}

impl Drop for AuditedStream {
    fn drop(&mut self) {
        if self.record.is_some() {
            self.finish("cancelled", Some("the client stopped reading".into()));
        }
    }
}

fn verify(credential: &Credential, secret: &str) -> bool {
    match credential {
        Credential::Password(hash) => {
            use argon2::PasswordVerifier;
            argon2::Argon2::default()
                .verify_password(secret.as_bytes(), hash.as_str())
                .is_ok()
        }
        Credential::Token(hash) => constant_time_eq(
            hash.as_bytes(),
            super::config::hash_token(secret).as_bytes(),
        ),
    }
}

/// Compares without an early exit, so timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 32 random hex digits (from the OS's random source).
fn uuid_like() -> String {
    let mut bytes = [0u8; 16];
    getrandom_fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn getrandom_fill(bytes: &mut [u8]) {
    use std::io::Read;
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(bytes))
        .is_err()
    {
        // No /dev/urandom: fall back to hashing time and address (tokens still expire).
        let seed = format!("{:?}{:p}", SystemTime::now(), bytes);
        let hash = super::config::hash_token(&seed);
        for (b, h) in bytes.iter_mut().zip(hash.as_bytes()) {
            *b = *h;
        }
    }
}
