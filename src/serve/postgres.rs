//! The PostgreSQL wire protocol (pgwire) over the core: psql, DBeaver, Metabase, Superset,
//! Excel or Power BI through ODBC, and every Postgres driver connect unchanged.
//!
//! - Login: the server asks for a cleartext password (over TLS when TLS is configured; it
//!   is then required) and checks it against the argon2 hash, or a token, in `serve.toml`.
//! - Each connection pins the workspace version current at login and reads it until it
//!   closes; a new connection sees a newer version.
//! - `BEGIN`, `COMMIT` and `ROLLBACK` are accepted and do nothing (every statement only
//!   reads); `SET`, DDL, DML and `COPY` are refused.
//! - A `pg_catalog` schema built from the role's own views (`pg_namespace`, `pg_class`,
//!   `pg_attribute`, `pg_type`, `pg_database`, ...) lets tools list tables and columns; psql's
//!   qualified function names and `OPERATOR(pg_catalog.~)` are rewritten to DataFusion's.

use std::fmt::Debug;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::datasource::MemTable;
use datafusion::sql::sqlparser;
use futures::{Sink, SinkExt, StreamExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::api::results::{
    DataRowEncoder, DescribePortalResponse, DescribeStatementResponse, FieldFormat, FieldInfo,
    QueryResponse, Response, Tag,
};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::{
    ClientInfo, ClientPortalStore, METADATA_USER, PgWireConnectionState, PgWireServerHandlers, Type,
};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};

use super::core::{Caller, Core, Param, ServeError};
use crate::catalog::policy::RoleCatalog;

/// What a connection holds after login.
struct Connection {
    caller: Caller,
    catalog: Arc<RoleCatalog>,
}

/// The pgwire handlers of one server.
pub struct Handlers {
    core: Arc<Core>,
    tls_required: bool,
    parameters: Arc<DefaultServerParameterProvider>,
}

impl Handlers {
    /// Handlers over `core`; with `tls_required`, a password is only accepted over TLS.
    pub fn new(core: Arc<Core>, tls_required: bool) -> Arc<Handlers> {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = format!("16.0 (terpadu {})", env!("CARGO_PKG_VERSION"));
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        Arc::new(Handlers {
            core,
            tls_required,
            parameters: Arc::new(parameters),
        })
    }
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::new(Queries {
            core: self.core.clone(),
        })
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::new(Queries {
            core: self.core.clone(),
        })
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::new(Startup {
            core: self.core.clone(),
            tls_required: self.tls_required,
            parameters: self.parameters.clone(),
        })
    }
}

struct Startup {
    core: Arc<Core>,
    tls_required: bool,
    parameters: Arc<DefaultServerParameterProvider>,
}

fn error(severity: &str, code: &str, message: impl Into<String>) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        severity.to_string(),
        code.to_string(),
        message.into(),
    )))
}

/// The SQLSTATE for a core error.
fn pg_error(e: &ServeError) -> PgWireError {
    let code = match e {
        ServeError::BadLogin(_) => "28P01",
        ServeError::LockedOut(_, _) => "28000",
        ServeError::ReadOnly(_) => "25006",
        ServeError::UnknownTable(_) => "42P01",
        ServeError::Refused(_) => "42000",
        ServeError::Busy(_) => "53300",
        ServeError::Timeout(_) => "57014",
        ServeError::Unavailable(_) => "58000",
    };
    let severity = match e {
        ServeError::BadLogin(_) | ServeError::LockedOut(_, _) => "FATAL",
        _ => "ERROR",
    };
    error(severity, code, e.to_string())
}

#[async_trait]
impl StartupHandler for Startup {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                if self.tls_required && !client.is_secure() {
                    return Err(error(
                        "FATAL",
                        "28000",
                        "this server requires TLS: connect with sslmode=require",
                    ));
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let password = message.into_password()?;
                let user = client
                    .metadata()
                    .get(METADATA_USER)
                    .cloned()
                    .unwrap_or_default();
                let address = client.socket_addr();
                let identity = self
                    .core
                    .login(&user, &password.password, address, "postgres")
                    .map_err(|e| pg_error(&e))?;
                let catalog = self
                    .core
                    .catalog(&identity, None)
                    .await
                    .map_err(|e| pg_error(&e))?;
                tracing::info!(user = %identity.user, role = %identity.policy.role, client = %address, version = catalog.version(), "PostgreSQL login.");
                client.session_extensions().insert(Connection {
                    caller: Caller {
                        identity,
                        protocol: "postgres",
                        client: address.to_string(),
                    },
                    catalog,
                });
                finish_authentication(client, self.parameters.as_ref()).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

struct Queries {
    core: Arc<Core>,
}

/// One statement of a query string, classified.
#[derive(Debug, Clone)]
pub enum PgStatement {
    /// `BEGIN`/`START TRANSACTION`: accepted, nothing to do.
    Begin,
    /// `COMMIT`/`ROLLBACK`/`END`: accepted, nothing to do.
    End(&'static str),
    /// `SET` of a client setting that drivers send on connect (JDBC's `extra_float_digits`,
    /// `application_name`...): accepted, nothing to do. Any other `SET` is refused.
    ClientSetting,
    /// A query: the text as sent and as DataFusion will plan it.
    Query {
        /// As the client sent it (for the audit log).
        sent: String,
        /// After the PostgreSQL rewrites.
        planned: String,
        /// Result columns and parameter types, from planning.
        schema: SchemaRef,
        /// Parameter types.
        parameters: Vec<Option<DataType>>,
    },
}

/// Splits `sql` into statements and rewrites PostgreSQL catalog idioms.
fn split(sql: &str) -> Result<Vec<(String, Option<PgStatement>)>, ServeError> {
    use datafusion::sql::parser::{DFParser, Statement as DfStatement};
    use sqlparser::ast::Statement;
    let dialect = sqlparser::dialect::PostgreSqlDialect {};
    let statements = DFParser::parse_sql_with_dialect(sql, &dialect)
        .map_err(|e| ServeError::Refused(crate::redact::mask_identifiers(&e.to_string())))?;
    let many = statements.len() > 1;
    Ok(statements
        .into_iter()
        .map(|statement| {
            let sent = if many {
                statement.to_string()
            } else {
                sql.trim().trim_end_matches(';').to_string()
            };
            let (planned, kind) = match statement {
                DfStatement::Statement(s) => match *s {
                    Statement::StartTransaction { .. } => (sent.clone(), Some(PgStatement::Begin)),
                    Statement::Commit { .. } => (sent.clone(), Some(PgStatement::End("COMMIT"))),
                    Statement::Rollback { .. } => {
                        (sent.clone(), Some(PgStatement::End("ROLLBACK")))
                    }
                    Statement::Set(sqlparser::ast::Set::SingleAssignment {
                        ref variable, ..
                    }) if CLIENT_SETTINGS
                        .contains(&variable.to_string().to_ascii_lowercase().as_str()) =>
                    {
                        (sent.clone(), Some(PgStatement::ClientSetting))
                    }
                    mut other => {
                        rewrite(&mut other);
                        (other.to_string(), None)
                    }
                },
                other => (other.to_string(), None),
            };
            // Sent and planned text travel together, split by a NUL no SQL text holds.
            (format!("{sent}\u{0}{planned}"), kind)
        })
        .collect())
}

/// Settings drivers and BI tools send when they connect; they change nothing here.
const CLIENT_SETTINGS: &[&str] = &[
    "application_name",
    "bytea_output",
    "client_encoding",
    "client_min_messages",
    "datestyle",
    "extra_float_digits",
    "intervalstyle",
    "search_path",
    "statement_timeout",
    "timezone",
];

/// psql and JDBC idioms DataFusion does not know: `pg_catalog.f(..)` qualifiers,
/// `OPERATOR(pg_catalog.~)`, `COLLATE pg_catalog.default`, unqualified `pg_class`.
fn rewrite(statement: &mut sqlparser::ast::Statement) {
    use sqlparser::ast::{
        BinaryOperator, Expr, Ident, ObjectNamePart, visit_expressions_mut, visit_relations_mut,
    };
    use std::ops::ControlFlow;
    let _ = visit_expressions_mut(statement, |expr| {
        match expr {
            Expr::Function(f)
                if f.name.0.len() == 2
                    && matches!(&f.name.0[0], ObjectNamePart::Identifier(i) if i.value.eq_ignore_ascii_case("pg_catalog")) =>
            {
                f.name.0.remove(0);
            }
            Expr::BinaryOp { op, .. } => {
                if let BinaryOperator::PGCustomBinaryOperator(parts) = op
                    && let Some(last) = parts.last()
                {
                    let replaced = match last.as_str() {
                        "~" => Some(BinaryOperator::PGRegexMatch),
                        "~*" => Some(BinaryOperator::PGRegexIMatch),
                        "!~" => Some(BinaryOperator::PGRegexNotMatch),
                        "!~*" => Some(BinaryOperator::PGRegexNotIMatch),
                        "=" => Some(BinaryOperator::Eq),
                        _ => None,
                    };
                    if let Some(r) = replaced {
                        *op = r;
                    }
                }
            }
            Expr::Collate { expr: inner, .. } => {
                *expr = (**inner).clone();
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    let _ = visit_relations_mut(statement, |name| {
        if name.0.len() == 1
            && let ObjectNamePart::Identifier(i) = &name.0[0]
            && i.value.starts_with("pg_")
            && PG_TABLES.contains(&i.value.as_str())
        {
            name.0
                .insert(0, ObjectNamePart::Identifier(Ident::new("pg_catalog")));
        }
        ControlFlow::<()>::Continue(())
    });
}

fn parts(joined: &str) -> (&str, &str) {
    joined.split_once('\u{0}').unwrap_or((joined, joined))
}

impl Queries {
    fn connection<C: ClientInfo>(client: &C) -> PgWireResult<Arc<Connection>> {
        client
            .session_extensions()
            .get::<Connection>()
            .ok_or_else(|| error("FATAL", "28000", "not logged in"))
    }

    async fn describe(
        &self,
        connection: &Connection,
        joined: &str,
    ) -> Result<PgStatement, ServeError> {
        let (sent, planned) = parts(joined);
        let (schema, parameters) = self
            .core
            .describe(&connection.caller, &connection.catalog, sent, planned)
            .await?;
        Ok(PgStatement::Query {
            sent: sent.to_string(),
            planned: planned.to_string(),
            schema,
            parameters,
        })
    }

    async fn execute(
        &self,
        connection: &Connection,
        sent: &str,
        planned: &str,
        params: Vec<Param>,
        format: &Format,
    ) -> Result<Response, ServeError> {
        let stream = self
            .core
            .run(
                &connection.caller,
                &connection.catalog,
                sent,
                planned,
                params,
            )
            .await?;
        let fields = Arc::new(field_infos(&stream.schema(), format));
        let encoder_fields = fields.clone();
        let rows = stream
            .map(move |batch| match batch {
                Ok(batch) => encode(&batch, &encoder_fields),
                Err(e) => vec![Err(pg_error(&e))],
            })
            .flat_map(futures::stream::iter);
        Ok(Response::Query(QueryResponse::new(fields, rows)))
    }
}

#[async_trait]
impl SimpleQueryHandler for Queries {
    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = Self::connection(client)?;
        let statements = split(query).map_err(|e| pg_error(&e))?;
        let mut responses = Vec::new();
        for (joined, kind) in statements {
            match kind {
                Some(PgStatement::Begin) => {
                    responses.push(Response::TransactionStart(Tag::new("BEGIN")))
                }
                Some(PgStatement::ClientSetting) => {
                    responses.push(Response::Execution(Tag::new("SET")))
                }
                Some(PgStatement::End(tag)) => {
                    responses.push(Response::TransactionEnd(Tag::new(tag)))
                }
                _ => {
                    let (sent, planned) = parts(&joined);
                    match self
                        .execute(&connection, sent, planned, Vec::new(), &Format::UnifiedText)
                        .await
                    {
                        Ok(response) => responses.push(response),
                        Err(e) => {
                            // Later statements of the string do not run, as in PostgreSQL.
                            responses.push(Response::Error(Box::new(match pg_error(&e) {
                                PgWireError::UserError(info) => *info,
                                other => ErrorInfo::from(other),
                            })));
                            break;
                        }
                    }
                }
            }
        }
        Ok(responses)
    }
}

/// The extended protocol's statements are planned at `Parse` (under the caller's role) and
/// planned again at `Execute`.
struct Parser {
    core: Arc<Core>,
}

#[async_trait]
impl QueryParser for Parser {
    type Statement = PgStatement;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<PgStatement>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let connection = Queries::connection(client)?;
        let mut statements = split(sql).map_err(|e| pg_error(&e))?;
        if statements.len() != 1 {
            return Err(error(
                "ERROR",
                "42601",
                "a prepared statement holds exactly one statement",
            ));
        }
        let (joined, kind) = statements.remove(0);
        if let Some(kind) = kind {
            return Ok(Some(kind));
        }
        let queries = Queries {
            core: self.core.clone(),
        };
        queries
            .describe(&connection, &joined)
            .await
            .map(Some)
            .map_err(|e| pg_error(&e))
    }

    fn get_parameter_types(&self, statement: &PgStatement) -> PgWireResult<Vec<Type>> {
        Ok(match statement {
            PgStatement::Query { parameters, .. } => parameters
                .iter()
                .map(|t| t.as_ref().map(pg_type).unwrap_or(Type::TEXT))
                .collect(),
            _ => Vec::new(),
        })
    }

    fn get_result_schema(
        &self,
        statement: &PgStatement,
        format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        Ok(match statement {
            PgStatement::Query { schema, .. } => {
                field_infos(schema, format.unwrap_or(&Format::UnifiedText))
            }
            _ => Vec::new(),
        })
    }
}

#[async_trait]
impl ExtendedQueryHandler for Queries {
    type Statement = PgStatement;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        Arc::new(Parser {
            core: self.core.clone(),
        })
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<PgStatement>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let connection = Self::connection(client)?;
        match &portal.statement.statement {
            PgStatement::Begin => Ok(Response::TransactionStart(Tag::new("BEGIN"))),
            PgStatement::End(tag) => Ok(Response::TransactionEnd(Tag::new(tag))),
            PgStatement::ClientSetting => Ok(Response::Execution(Tag::new("SET"))),
            PgStatement::Query {
                sent,
                planned,
                parameters,
                ..
            } => {
                let params = portal_params(portal, parameters)?;
                self.execute(
                    &connection,
                    sent,
                    planned,
                    params,
                    &portal.result_column_format,
                )
                .await
                .map_err(|e| pg_error(&e))
            }
        }
    }

    async fn do_describe_statement<C>(
        &self,
        _client: &mut C,
        statement: &StoredStatement<PgStatement>,
    ) -> PgWireResult<DescribeStatementResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let parser = self.query_parser();
        let types = parser.get_parameter_types(&statement.statement)?;
        let fields =
            parser.get_result_schema(&statement.statement, Some(&Format::UnifiedBinary))?;
        Ok(DescribeStatementResponse::new(types, fields))
    }

    async fn do_describe_portal<C>(
        &self,
        _client: &mut C,
        portal: &Portal<PgStatement>,
    ) -> PgWireResult<DescribePortalResponse>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: pgwire::api::store::PortalStore<Statement = Self::Statement>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let fields = self.query_parser().get_result_schema(
            &portal.statement.statement,
            Some(&portal.result_column_format),
        )?;
        Ok(DescribePortalResponse::new(fields))
    }
}

/// A portal's parameters: text ones are cast by the core to the planned type, binary ones
/// decoded by their PostgreSQL type.
fn portal_params(
    portal: &Portal<PgStatement>,
    planned: &[Option<DataType>],
) -> PgWireResult<Vec<Param>> {
    use datafusion::common::ScalarValue;
    let mut out = Vec::with_capacity(portal.parameter_len());
    for i in 0..portal.parameter_len() {
        let Some(bytes) = portal.parameters.get(i).cloned().flatten() else {
            out.push(Param::Null);
            continue;
        };
        if portal.parameter_format.format_for(i) == FieldFormat::Text {
            out.push(Param::Text(String::from_utf8_lossy(&bytes).into_owned()));
            continue;
        }
        let declared = portal
            .statement
            .parameter_types
            .get(i)
            .cloned()
            .flatten()
            .unwrap_or_else(|| {
                planned
                    .get(i)
                    .cloned()
                    .flatten()
                    .map(|t| pg_type(&t))
                    .unwrap_or(Type::TEXT)
            });
        let value = match declared {
            Type::INT2 => portal
                .parameter::<i16>(i, &declared)?
                .map(|v| ScalarValue::Int16(Some(v))),
            Type::INT4 => portal
                .parameter::<i32>(i, &declared)?
                .map(|v| ScalarValue::Int32(Some(v))),
            Type::INT8 => portal
                .parameter::<i64>(i, &declared)?
                .map(|v| ScalarValue::Int64(Some(v))),
            Type::FLOAT4 => portal
                .parameter::<f32>(i, &declared)?
                .map(|v| ScalarValue::Float32(Some(v))),
            Type::FLOAT8 => portal
                .parameter::<f64>(i, &declared)?
                .map(|v| ScalarValue::Float64(Some(v))),
            Type::BOOL => portal
                .parameter::<bool>(i, &declared)?
                .map(|v| ScalarValue::Boolean(Some(v))),
            _ => portal
                .parameter::<String>(i, &Type::TEXT)?
                .map(|v| ScalarValue::Utf8(Some(v))),
        };
        out.push(value.map(Param::Value).unwrap_or(Param::Null));
    }
    Ok(out)
}

/// The PostgreSQL type a column is sent as.
fn pg_type(data_type: &DataType) -> Type {
    match data_type {
        DataType::Boolean => Type::BOOL,
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => Type::INT2,
        DataType::Int32 | DataType::UInt16 => Type::INT4,
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => Type::INT8,
        DataType::Float16 | DataType::Float32 => Type::FLOAT4,
        DataType::Float64 => Type::FLOAT8,
        DataType::Date32 | DataType::Date64 => Type::DATE,
        DataType::Timestamp(_, None) => Type::TIMESTAMP,
        DataType::Timestamp(_, Some(_)) => Type::TIMESTAMPTZ,
        DataType::List(f) | DataType::LargeList(f) => match pg_type(f.data_type()) {
            Type::INT2 | Type::INT4 | Type::INT8 => Type::INT8_ARRAY,
            Type::FLOAT4 | Type::FLOAT8 => Type::FLOAT8_ARRAY,
            Type::BOOL => Type::BOOL_ARRAY,
            _ => Type::TEXT_ARRAY,
        },
        DataType::Dictionary(_, value) => pg_type(value),
        _ => Type::TEXT,
    }
}

fn field_infos(schema: &Schema, format: &Format) -> Vec<FieldInfo> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            FieldInfo::new(
                f.name().clone(),
                None,
                None,
                pg_type(f.data_type()),
                format.format_for(i),
            )
        })
        .collect()
}

/// Casts a column to the Arrow type its PostgreSQL type is encoded from.
fn canonical(array: &ArrayRef, pg: &Type) -> Result<ArrayRef, arrow::error::ArrowError> {
    use arrow::compute::cast;
    use arrow::datatypes::TimeUnit;
    let target = match *pg {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::INT8_ARRAY => DataType::new_list(DataType::Int64, true),
        Type::FLOAT8_ARRAY => DataType::new_list(DataType::Float64, true),
        Type::BOOL_ARRAY => DataType::new_list(DataType::Boolean, true),
        Type::TEXT_ARRAY => DataType::new_list(DataType::Utf8, true),
        _ => DataType::Utf8,
    };
    if array.data_type() == &target {
        Ok(array.clone())
    } else {
        cast(array, &target)
    }
}

fn encode(
    batch: &RecordBatch,
    fields: &Arc<Vec<FieldInfo>>,
) -> Vec<PgWireResult<pgwire::messages::data::DataRow>> {
    use arrow::datatypes::{
        Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type,
        TimestampMicrosecondType,
    };
    let columns: Result<Vec<ArrayRef>, _> = batch
        .columns()
        .iter()
        .zip(fields.iter())
        .map(|(c, f)| canonical(c, f.datatype()))
        .collect();
    let columns = match columns {
        Ok(c) => c,
        Err(e) => return vec![Err(error("ERROR", "22000", e.to_string()))],
    };
    let mut encoder = DataRowEncoder::new(fields.clone());
    let mut rows = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let mut result = Ok(());
        for (column, field) in columns.iter().zip(fields.iter()) {
            let null = column.is_null(row);
            result = match *field.datatype() {
                Type::BOOL => {
                    encoder.encode_field(&(!null).then(|| column.as_boolean().value(row)))
                }
                Type::INT2 => encoder
                    .encode_field(&(!null).then(|| column.as_primitive::<Int16Type>().value(row))),
                Type::INT4 => encoder
                    .encode_field(&(!null).then(|| column.as_primitive::<Int32Type>().value(row))),
                Type::INT8 => encoder
                    .encode_field(&(!null).then(|| column.as_primitive::<Int64Type>().value(row))),
                Type::FLOAT4 => encoder.encode_field(
                    &(!null).then(|| column.as_primitive::<Float32Type>().value(row)),
                ),
                Type::FLOAT8 => encoder.encode_field(
                    &(!null).then(|| column.as_primitive::<Float64Type>().value(row)),
                ),
                Type::DATE => encoder.encode_field(
                    &(!null)
                        .then(|| column.as_primitive::<Date32Type>().value_as_date(row))
                        .flatten(),
                ),
                Type::TIMESTAMP => encoder.encode_field(
                    &(!null)
                        .then(|| {
                            column
                                .as_primitive::<TimestampMicrosecondType>()
                                .value_as_datetime(row)
                        })
                        .flatten(),
                ),
                Type::TIMESTAMPTZ => encoder.encode_field(
                    &(!null)
                        .then(|| {
                            column
                                .as_primitive::<TimestampMicrosecondType>()
                                .value_as_datetime(row)
                                .map(|d| d.and_utc())
                        })
                        .flatten(),
                ),
                Type::INT8_ARRAY => encoder.encode_field(&(!null).then(|| {
                    column
                        .as_list::<i32>()
                        .value(row)
                        .as_primitive::<Int64Type>()
                        .iter()
                        .collect::<Vec<_>>()
                })),
                Type::FLOAT8_ARRAY => encoder.encode_field(&(!null).then(|| {
                    column
                        .as_list::<i32>()
                        .value(row)
                        .as_primitive::<Float64Type>()
                        .iter()
                        .collect::<Vec<_>>()
                })),
                Type::BOOL_ARRAY => encoder.encode_field(&(!null).then(|| {
                    column
                        .as_list::<i32>()
                        .value(row)
                        .as_boolean()
                        .iter()
                        .collect::<Vec<_>>()
                })),
                Type::TEXT_ARRAY => encoder.encode_field(&(!null).then(|| {
                    column
                        .as_list::<i32>()
                        .value(row)
                        .as_string::<i32>()
                        .iter()
                        .map(|v| v.map(str::to_string))
                        .collect::<Vec<_>>()
                })),
                _ => encoder.encode_field(&(!null).then(|| column.as_string::<i32>().value(row))),
            };
            if result.is_err() {
                break;
            }
        }
        match result {
            Ok(()) => rows.push(Ok(encoder.take_row())),
            Err(e) => {
                rows.push(Err(e));
                break;
            }
        }
    }
    rows
}

/// The `pg_catalog` tables this server provides.
const PG_TABLES: &[&str] = &[
    "pg_namespace",
    "pg_class",
    "pg_attribute",
    "pg_type",
    "pg_database",
    "pg_am",
    "pg_description",
    "pg_index",
    "pg_inherits",
    "pg_constraint",
    "pg_proc",
    "pg_tables",
    "pg_roles",
    "pg_settings",
];

const NAMESPACE_PUBLIC: i32 = 2200;
const NAMESPACE_CATALOG: i32 = 11;
const FIRST_TABLE_OID: i32 = 16384;

/// Adds `pg_catalog` (built from the role's own views, so it lists nothing the role cannot
/// query) and the catalog functions psql uses.
pub async fn register_pg_catalog(catalog: &RoleCatalog) -> Result<(), ServeError> {
    use arrow::array::{BooleanArray, Int16Array, Int32Array, StringArray};
    use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
    let fail =
        |e: &dyn std::fmt::Display| ServeError::Unavailable(format!("building pg_catalog: {e}"));
    let ctx = catalog.context();
    let schema = Arc::new(MemorySchemaProvider::new());
    let table = |fields: Vec<Field>, columns: Vec<ArrayRef>| -> Result<Arc<MemTable>, ServeError> {
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| fail(&e))?;
        Ok(Arc::new(
            MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| fail(&e))?,
        ))
    };
    let text = |n: &str| Field::new(n, DataType::Utf8, true);
    let int = |n: &str| Field::new(n, DataType::Int32, true);
    let strings = |v: Vec<String>| -> ArrayRef { Arc::new(StringArray::from(v)) };
    let ints = |v: Vec<i32>| -> ArrayRef { Arc::new(Int32Array::from(v)) };

    let mut tables: Vec<(String, SchemaRef)> = Vec::new();
    for info in catalog.tables() {
        let schema = ctx
            .table_provider(info.name.as_str())
            .await
            .map_err(|e| fail(&e))?
            .schema();
        tables.push((info.name.clone(), schema));
    }
    let n = tables.len();
    let oids: Vec<i32> = (0..n as i32).map(|i| FIRST_TABLE_OID + i).collect();
    let register = |name: &str, t: Arc<MemTable>| -> Result<(), ServeError> {
        schema
            .register_table(name.to_string(), t)
            .map_err(|e| fail(&e))?;
        Ok(())
    };
    register(
        "pg_namespace",
        table(
            vec![int("oid"), text("nspname"), int("nspowner")],
            vec![
                ints(vec![NAMESPACE_CATALOG, NAMESPACE_PUBLIC, 13000]),
                strings(vec![
                    "pg_catalog".into(),
                    "public".into(),
                    "information_schema".into(),
                ]),
                ints(vec![10, 10, 10]),
            ],
        )?,
    )?;
    let bools = |v: bool| -> ArrayRef { Arc::new(BooleanArray::from(vec![v; n])) };
    register(
        "pg_class",
        table(
            vec![
                int("oid"),
                text("relname"),
                int("relnamespace"),
                text("relkind"),
                int("relowner"),
                int("relam"),
                Field::new("relhasindex", DataType::Boolean, true),
                Field::new("relispartition", DataType::Boolean, true),
                text("relpersistence"),
                Field::new("reltuples", DataType::Float32, true),
                int("reltoastrelid"),
            ],
            vec![
                ints(oids.clone()),
                strings(tables.iter().map(|(t, _)| t.clone()).collect()),
                ints(vec![NAMESPACE_PUBLIC; n]),
                // Shown as tables: a planner's tool should not care that they are views.
                strings(vec!["r".into(); n]),
                ints(vec![10; n]),
                ints(vec![0; n]),
                bools(false),
                bools(false),
                strings(vec!["p".into(); n]),
                Arc::new(arrow::array::Float32Array::from(vec![-1.0; n])),
                ints(vec![0; n]),
            ],
        )?,
    )?;
    let mut attrelid = Vec::new();
    let mut attname = Vec::new();
    let mut atttypid = Vec::new();
    let mut attnum = Vec::new();
    let mut attnotnull = Vec::new();
    for ((_, schema), oid) in tables.iter().zip(&oids) {
        for (i, f) in schema.fields().iter().enumerate() {
            attrelid.push(*oid);
            attname.push(f.name().clone());
            atttypid.push(pg_type(f.data_type()).oid() as i32);
            attnum.push(i as i16 + 1);
            attnotnull.push(!f.is_nullable());
        }
    }
    let columns = attrelid.len();
    register(
        "pg_attribute",
        table(
            vec![
                int("attrelid"),
                text("attname"),
                int("atttypid"),
                Field::new("attnum", DataType::Int16, true),
                Field::new("attnotnull", DataType::Boolean, true),
                Field::new("attisdropped", DataType::Boolean, true),
                int("atttypmod"),
                Field::new("atthasdef", DataType::Boolean, true),
                text("attidentity"),
                text("attgenerated"),
                int("attcollation"),
            ],
            vec![
                ints(attrelid),
                strings(attname),
                ints(atttypid),
                Arc::new(Int16Array::from(attnum)),
                Arc::new(BooleanArray::from(attnotnull)),
                Arc::new(BooleanArray::from(vec![false; columns])),
                ints(vec![-1; columns]),
                Arc::new(BooleanArray::from(vec![false; columns])),
                strings(vec![String::new(); columns]),
                strings(vec![String::new(); columns]),
                ints(vec![0; columns]),
            ],
        )?,
    )?;
    let types = [
        Type::BOOL,
        Type::INT2,
        Type::INT4,
        Type::INT8,
        Type::FLOAT4,
        Type::FLOAT8,
        Type::TEXT,
        Type::VARCHAR,
        Type::DATE,
        Type::TIMESTAMP,
        Type::TIMESTAMPTZ,
        Type::TEXT_ARRAY,
        Type::INT8_ARRAY,
        Type::FLOAT8_ARRAY,
        Type::BOOL_ARRAY,
        Type::OID,
        Type::NAME,
        Type::CHAR,
    ];
    register(
        "pg_type",
        table(
            vec![
                int("oid"),
                text("typname"),
                int("typnamespace"),
                text("typtype"),
                int("typelem"),
                Field::new("typlen", DataType::Int16, true),
            ],
            vec![
                ints(types.iter().map(|t| t.oid() as i32).collect()),
                strings(types.iter().map(|t| t.name().to_string()).collect()),
                ints(vec![NAMESPACE_CATALOG; types.len()]),
                strings(vec!["b".into(); types.len()]),
                ints(vec![0; types.len()]),
                Arc::new(Int16Array::from(vec![-1; types.len()])),
            ],
        )?,
    )?;
    register(
        "pg_database",
        table(
            vec![
                int("oid"),
                text("datname"),
                int("datdba"),
                int("encoding"),
                text("datcollate"),
            ],
            vec![
                ints(vec![1]),
                strings(vec!["terpadu".into()]),
                ints(vec![10]),
                ints(vec![6]),
                strings(vec!["C".into()]),
            ],
        )?,
    )?;
    register(
        "pg_tables",
        table(
            vec![text("schemaname"), text("tablename"), text("tableowner")],
            vec![
                strings(vec!["public".into(); n]),
                strings(tables.iter().map(|(t, _)| t.clone()).collect()),
                strings(vec!["terpadu".into(); n]),
            ],
        )?,
    )?;
    register(
        "pg_roles",
        table(
            vec![
                int("oid"),
                text("rolname"),
                Field::new("rolsuper", DataType::Boolean, true),
            ],
            vec![
                ints(vec![10]),
                strings(vec!["terpadu".into()]),
                Arc::new(BooleanArray::from(vec![false])),
            ],
        )?,
    )?;
    register(
        "pg_settings",
        table(
            vec![text("name"), text("setting")],
            vec![
                strings(vec![
                    "server_version".into(),
                    "default_transaction_read_only".into(),
                ]),
                strings(vec!["16.0".into(), "on".into()]),
            ],
        )?,
    )?;
    for (name, fields) in [
        ("pg_am", vec![int("oid"), text("amname")]),
        (
            "pg_description",
            vec![
                int("objoid"),
                int("classoid"),
                int("objsubid"),
                text("description"),
            ],
        ),
        (
            "pg_index",
            vec![
                int("indexrelid"),
                int("indrelid"),
                Field::new("indisprimary", DataType::Boolean, true),
            ],
        ),
        ("pg_inherits", vec![int("inhrelid"), int("inhparent")]),
        (
            "pg_constraint",
            vec![
                int("oid"),
                text("conname"),
                int("conrelid"),
                text("contype"),
            ],
        ),
        (
            "pg_proc",
            vec![int("oid"), text("proname"), int("pronamespace")],
        ),
    ] {
        let schema = Arc::new(Schema::new(fields));
        register(
            name,
            Arc::new(MemTable::try_new(schema, vec![vec![]]).map_err(|e| fail(&e))?),
        )?;
    }
    let terpadu = ctx
        .catalog("terpadu")
        .ok_or_else(|| ServeError::Unavailable("no terpadu catalog".into()))?;
    terpadu
        .register_schema("pg_catalog", schema)
        .map_err(|e| fail(&e))?;
    for udf in catalog_functions() {
        ctx.register_udf(udf);
    }
    Ok(())
}

/// psql's catalog functions, answered for this server: one owner, every table visible.
fn catalog_functions() -> Vec<datafusion::logical_expr::ScalarUDF> {
    use datafusion::common::ScalarValue;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    let constant = |name: &str, args: Vec<DataType>, value: ScalarValue| {
        let out = value.data_type();
        create_udf(
            name,
            args,
            out,
            Volatility::Immutable,
            Arc::new(move |_args: &[ColumnarValue]| Ok(ColumnarValue::Scalar(value.clone()))),
        )
    };
    vec![
        constant(
            "pg_get_userbyid",
            vec![DataType::Int32],
            ScalarValue::Utf8(Some("terpadu".into())),
        ),
        constant(
            "pg_table_is_visible",
            vec![DataType::Int32],
            ScalarValue::Boolean(Some(true)),
        ),
        constant(
            "current_database",
            vec![],
            ScalarValue::Utf8(Some("terpadu".into())),
        ),
        constant(
            "current_schema",
            vec![],
            ScalarValue::Utf8(Some("public".into())),
        ),
        constant(
            "obj_description",
            vec![DataType::Int32, DataType::Utf8],
            ScalarValue::Utf8(None),
        ),
        constant(
            "col_description",
            vec![DataType::Int32, DataType::Int32],
            ScalarValue::Utf8(None),
        ),
        constant(
            "pg_encoding_to_char",
            vec![DataType::Int32],
            ScalarValue::Utf8(Some("UTF8".into())),
        ),
        constant(
            "has_table_privilege",
            vec![DataType::Utf8, DataType::Utf8],
            ScalarValue::Boolean(Some(true)),
        ),
    ]
}

/// Accepts connections on `listener` until `shutdown` resolves.
pub async fn serve(
    core: Arc<Core>,
    listener: tokio::net::TcpListener,
    tls: Option<Arc<pgwire::tokio::tokio_rustls::rustls::ServerConfig>>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let acceptor = tls.map(pgwire::tokio::tokio_rustls::TlsAcceptor::from);
    let handlers = Handlers::new(core, acceptor.is_some());
    let connection_stop = shutdown.clone();
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, _)) = accepted else { continue };
                let handlers = handlers.clone();
                let acceptor = acceptor.clone();
                let mut stop = connection_stop.clone();
                connections.spawn(async move {
                    tokio::select! {
                        result = pgwire::tokio::process_socket(socket, acceptor, handlers) => {
                            if let Err(e) = result {
                                tracing::debug!(error = %e, "PostgreSQL connection ended with an error.");
                            }
                        }
                        // Draining: open connections get a grace period to finish, then close.
                        _ = async {
                            let _ = stop.wait_for(|s| *s).await;
                            tokio::time::sleep(SHUTDOWN_GRACE).await
                        } => {}
                    }
                });
            }
            // Finished connections are reaped as they end, so the set stays small.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.wait_for(|s| *s) => break,
        }
    }
    drop(listener);
    if !connections.is_empty() {
        tracing::info!(
            connections = connections.len(),
            "Waiting for open PostgreSQL connections (at most {} s).",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    while connections.join_next().await.is_some() {}
}

/// How long open connections may go on after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psql_idioms_are_rewritten() {
        let statements = split(
            "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(person)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid)",
        )
        .unwrap();
        let (joined, kind) = &statements[0];
        assert!(kind.is_none());
        let (_, planned) = parts(joined);
        assert!(planned.contains("c.relname ~ '^(person)$'"), "{planned}");
        assert!(planned.contains(" pg_table_is_visible(c.oid)"), "{planned}");
        assert!(!planned.contains("COLLATE"), "{planned}");
    }

    #[test]
    fn transactions_are_accepted_and_statements_split() {
        let statements = split("BEGIN; SELECT 1; COMMIT").unwrap();
        assert!(matches!(statements[0].1, Some(PgStatement::Begin)));
        assert!(statements[1].1.is_none());
        assert!(matches!(statements[2].1, Some(PgStatement::End("COMMIT"))));
        let unqualified = split("SELECT * FROM pg_class").unwrap();
        assert!(parts(&unqualified[0].0).1.contains("pg_catalog.pg_class"));
    }
}
