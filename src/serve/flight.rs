//! Arrow Flight SQL over the core, for Arrow-native clients: Python ADBC
//! (`adbc-driver-flightsql`), pyarrow, pandas and Polars.
//!
//! - Authentication: `Basic` (padded or not, as arrow-go's driver sends it) in the handshake
//!   or on any call, answered with a bearer token; or `Bearer` with a minted or configured
//!   token.
//! - Each statement pins the version current when it is planned. Tickets are protobuf `Any`
//!   messages whose handle carries the SQL text, the version and any parameters; `DoGet`
//!   plans again under the caller's own role, so a handle made by another role gains nothing.
//!   The same (logical plan) schema is sent in `GetFlightInfo` and `DoGet`.
//! - Prepared statements are stateless: parameters bound with `DoPut` come back in a new
//!   handle and are re-planned on every call.
//! - Catalog calls (`GetCatalogs`, `GetDbSchemas`, `GetTables`, `GetTableTypes`,
//!   `GetSqlInfo`) list only the role's views. Updates are refused.

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, SqlSupportedTransaction,
    TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use base64::Engine;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use serde::{Deserialize, Serialize};
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::core::{Caller, Core, Identity, Param, ServeError};

/// What a statement or prepared-statement handle carries (JSON inside the protobuf).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Handle {
    sql: String,
    /// The version planned at `GetFlightInfo`; `None` in a prepared handle (latest).
    version: Option<u64>,
    /// Bound parameters, as text (cast again to the planned types).
    #[serde(default)]
    params: Vec<Option<String>>,
}

impl Handle {
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn decode(bytes: &[u8]) -> Result<Handle, Status> {
        serde_json::from_slice(bytes)
            .map_err(|_| Status::invalid_argument("not a statement handle of this server"))
    }

    fn params(&self) -> Vec<Param> {
        self.params
            .iter()
            .map(|p| match p {
                Some(text) => Param::Text(text.clone()),
                None => Param::Null,
            })
            .collect()
    }
}

/// The Flight SQL service.
#[derive(Clone)]
pub struct Service {
    core: Arc<Core>,
    info: Arc<SqlInfoData>,
}

impl Service {
    /// A service over `core`, as a tonic server.
    pub fn server(core: Arc<Core>) -> FlightServiceServer<Service> {
        let mut builder = SqlInfoDataBuilder::new();
        builder.append(SqlInfo::FlightSqlServerName, "terpadu");
        builder.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        builder.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        builder.append(SqlInfo::FlightSqlServerReadOnly, true);
        builder.append(SqlInfo::FlightSqlServerSql, true);
        builder.append(SqlInfo::FlightSqlServerSubstrait, false);
        builder.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        builder.append(SqlInfo::FlightSqlServerCancel, false);
        let info = Arc::new(builder.build().expect("static SqlInfo is valid"));
        FlightServiceServer::new(Service { core, info }).max_decoding_message_size(16 << 20)
    }

    fn status(e: &ServeError) -> Status {
        match e {
            ServeError::BadLogin(_) | ServeError::LockedOut(_, _) => {
                Status::unauthenticated(e.to_string())
            }
            ServeError::ReadOnly(_) => Status::permission_denied(e.to_string()),
            ServeError::UnknownTable(_) => Status::not_found(e.to_string()),
            ServeError::Refused(_) => Status::invalid_argument(e.to_string()),
            ServeError::Busy(_) => Status::resource_exhausted(e.to_string()),
            ServeError::Timeout(_) => Status::deadline_exceeded(e.to_string()),
            ServeError::Unavailable(_) => Status::unavailable(e.to_string()),
        }
    }

    /// The caller of `request`, from its `authorization` header.
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let address = request
            .remote_addr()
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
        let identity = self.authenticate(request.metadata(), address)?;
        Ok(Caller {
            identity,
            protocol: "flight",
            client: address.to_string(),
        })
    }

    fn authenticate(
        &self,
        metadata: &tonic::metadata::MetadataMap,
        address: std::net::SocketAddr,
    ) -> Result<Arc<Identity>, Status> {
        let header = metadata
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                Status::unauthenticated(
                    "no credentials: log in with a user and password (Basic) or a bearer token",
                )
            })?;
        if let Some(token) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
        {
            return self
                .core
                .bearer(token.trim(), address, "flight")
                .map_err(|e| Self::status(&e));
        }
        if let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        {
            // arrow-go (the ADBC driver) sends unpadded base64; arrow-rs and others pad.
            let engine = base64::engine::general_purpose::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::general_purpose::GeneralPurposeConfig::new()
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let decoded = engine
                .decode(encoded.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| Status::unauthenticated("the Basic credentials are not base64"))?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| Status::unauthenticated("Basic credentials are user:password"))?;
            return self
                .core
                .login(user, password, address, "flight")
                .map_err(|e| Self::status(&e));
        }
        Err(Status::unauthenticated(
            "the authorization header must be Basic or Bearer",
        ))
    }

    fn info_for(
        &self,
        schema: &Schema,
        ticket: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(ticket));
        Ok(FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(e.to_string()))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor)
            .with_ordered(true))
    }

    /// The `FlightInfo` of a catalog command: its schema, and the command itself as the
    /// ticket (an `Any`, routed back to the matching `do_get_*`).
    fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        schema: &Schema,
        command: Vec<u8>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.caller(&request)?;
        let info = self.info_for(schema, command, request.into_inner())?;
        Ok(Response::new(info))
    }

    /// Plans `handle` for `GetFlightInfo`, pinning the latest version into the ticket.
    async fn flight_info(
        &self,
        caller: &Caller,
        mut handle: Handle,
        descriptor: FlightDescriptor,
    ) -> Result<Response<FlightInfo>, Status> {
        let catalog = self
            .core
            .catalog(&caller.identity, handle.version)
            .await
            .map_err(|e| Self::status(&e))?;
        let (schema, _) = self
            .core
            .describe(caller, &catalog, &handle.sql, &handle.sql)
            .await
            .map_err(|e| Self::status(&e))?;
        handle.version = Some(catalog.version());
        let ticket = TicketStatementQuery {
            statement_handle: handle.encode().into(),
        }
        .as_any()
        .encode_to_vec();
        Ok(Response::new(self.info_for(&schema, ticket, descriptor)?))
    }

    async fn stream(
        &self,
        caller: &Caller,
        handle: Handle,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let catalog = self
            .core
            .catalog(&caller.identity, handle.version)
            .await
            .map_err(|e| Self::status(&e))?;
        let stream = self
            .core
            .run(caller, &catalog, &handle.sql, &handle.sql, handle.params())
            .await
            .map_err(|e| Self::status(&e))?;
        let schema = stream.schema();
        let batches = stream.map_err(|e| FlightError::Tonic(Box::new(Self::status(&e))));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from);
        Ok(Response::new(Box::pin(encoded)))
    }

    fn once(
        schema: arrow::datatypes::SchemaRef,
        batch: Result<arrow::array::RecordBatch, FlightError>,
    ) -> Response<<Self as FlightService>::DoGetStream> {
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { batch }))
            .map_err(Status::from);
        Response::new(Box::pin(stream))
    }
}

type HandshakeStream = Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl FlightSqlService for Service {
    type FlightService = Service;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<HandshakeStream>, Status> {
        let caller = self.caller(&request)?;
        let token = self.core.mint_token(caller.identity.clone());
        let reply = HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        };
        let mut response: Response<HandshakeStream> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Status::internal("token is not a header value"))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let handle = Handle {
            sql: query.query,
            version: None,
            params: Vec::new(),
        };
        self.flight_info(&caller, handle, request.into_inner())
            .await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let caller = self.caller(&request)?;
        let handle = Handle::decode(&query.prepared_statement_handle)?;
        self.flight_info(&caller, handle, request.into_inner())
            .await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let handle = Handle::decode(&ticket.statement_handle)?;
        self.stream(&caller, handle).await
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let handle = Handle::decode(&query.prepared_statement_handle)?;
        self.stream(&caller, handle).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let caller = self.caller(&request)?;
        let catalog = self
            .core
            .catalog(&caller.identity, None)
            .await
            .map_err(|e| Self::status(&e))?;
        let (schema, parameters) = self
            .core
            .describe(&caller, &catalog, &query.query, &query.query)
            .await
            .map_err(|e| Self::status(&e))?;
        let options = arrow::ipc::writer::IpcWriteOptions::default();
        let IpcMessage(dataset_schema) = SchemaAsIpc::new(&schema, &options)
            .try_into()
            .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
        let parameter_schema = if parameters.is_empty() {
            Default::default()
        } else {
            let fields: Vec<arrow::datatypes::Field> = parameters
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    arrow::datatypes::Field::new(
                        format!("${}", i + 1),
                        t.clone().unwrap_or(arrow::datatypes::DataType::Utf8),
                        true,
                    )
                })
                .collect();
            let IpcMessage(bytes) = SchemaAsIpc::new(&Schema::new(fields), &options)
                .try_into()
                .map_err(|e: arrow::error::ArrowError| Status::internal(e.to_string()))?;
            bytes
        };
        let handle = Handle {
            sql: query.query,
            version: None,
            params: Vec::new(),
        };
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.encode().into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        self.caller(&request)?;
        let mut handle = Handle::decode(&query.prepared_statement_handle)?;
        // The stream itself, not its `into_inner()`: that drops the peeked first message (the schema).
        let flight_data = request.into_inner().map_err(FlightError::from);
        let mut batches =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight_data);
        let mut params = Vec::new();
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| Status::invalid_argument(e.to_string()))?;
            if batch.num_rows() == 0 {
                continue;
            }
            params = batch
                .columns()
                .iter()
                .map(|column| {
                    datafusion::common::ScalarValue::try_from_array(column, 0)
                        .map(|v| (!v.is_null()).then(|| v.to_string()))
                        .map_err(|e| Status::invalid_argument(e.to_string()))
                })
                .collect::<Result<_, _>>()?;
        }
        handle.params = params;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle.encode().into()),
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        _query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles are stateless: nothing to free.
        self.caller(&request)?;
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        _query: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.caller(&request)?;
        Err(Status::permission_denied(
            "updates are not allowed: the registry is read-only",
        ))
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        self.caller(&request)?;
        Err(Status::permission_denied(
            "updates are not allowed: the registry is read-only",
        ))
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let mut builder = query.into_builder();
        builder.append("terpadu");
        Ok(Self::once(builder.schema(), builder.build()))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let mut builder = query.into_builder();
        builder.append("terpadu", "public");
        Ok(Self::once(builder.schema(), builder.build()))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let caller = self.caller(&request)?;
        let catalog = self
            .core
            .catalog(&caller.identity, None)
            .await
            .map_err(|e| Self::status(&e))?;
        let mut builder = query.into_builder();
        for info in catalog.tables() {
            let provider = catalog
                .context()
                .table_provider(info.name.as_str())
                .await
                .map_err(|e| Status::internal(e.to_string()))?;
            builder
                .append("terpadu", "public", &info.name, "TABLE", &provider.schema())
                .map_err(Status::from)?;
        }
        Ok(Self::once(builder.schema(), builder.build()))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let mut builder = query.into_builder();
        builder.append("TABLE");
        Ok(Self::once(builder.schema(), builder.build()))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.info).schema();
        self.metadata_info(request, &schema, query.as_any().encode_to_vec())
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        let builder = query.into_builder(&self.info);
        Ok(Self::once(builder.schema(), builder.build()))
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.caller(&request)?;
        Err(Status::unimplemented(format!(
            "this server does not answer {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
