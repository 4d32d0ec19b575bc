//! The Flight SQL service: authenticates, decodes commands, asks the
//! [`Router`] and encodes its answers.
//!
//! ```text
//! client                 Flightdeck                          engine
//!   | GetFlightInfo(sql)    |  router.plan: cache, or start   |
//!   |---------------------->|-------------------------------->|
//!   |   FlightInfo(schema,  |  (a started statement waits    |
//!   |   signed ticket)      |   in the router's registry)     |
//!   |<----------------------|                                 |
//!   | DoGet(ticket)         |  router.redeem: page by page    |
//!   |---------------------->|-------------------------------->|
//!   |   schema, batches...  |  (pulled as the client reads)   |
//!   |<----------------------|                                 |
//! ```

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionCancelQueryRequest, ActionCancelQueryResult, ActionClosePreparedStatementRequest,
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, Any, CommandGetCatalogs,
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandGetXdbcTypeInfo,
    CommandPreparedStatementQuery, CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
    metadata::{SqlInfoData, XdbcTypeInfoData},
};
use arrow_flight::{
    Action, CancelStatus, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse, Ticket,
};
use futures::StreamExt;
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::auth::Authenticator;
use super::encode::{
    AGE_HEADER, BoxStream, action_result, batch_stream, body_stream, directive, mark, parameter_batches, rows,
    schema_bytes,
};
use super::error::Error;
use super::metadata;
use super::prepared::Handles;
use super::proto;
use super::session;
use super::signing::Signer;
use super::ticket;
use crate::router::{self, Directive, Router, Session};

/// Everything the service needs, shared by all requests.
pub struct ServiceState {
    router: Router,
    auth: Authenticator,
    signer: Signer,
    handles: Handles,
    /// Catalog and schema of a client without a session cookie.
    default_catalog: Option<String>,
    default_schema: Option<String>,
    /// Lifetime of session cookies and prepared-statement handles.
    session_ttl_secs: i64,
    sql_info: SqlInfoData,
    xdbc_types: XdbcTypeInfoData,
}

impl ServiceState {
    pub fn new(
        router: Router,
        auth: Authenticator,
        signer: Signer,
        default_namespace: (Option<String>, Option<String>),
        session_ttl: std::time::Duration,
    ) -> Self {
        ServiceState {
            router,
            auth,
            handles: Handles::new(signer.clone(), session_ttl.as_secs() as i64),
            signer,
            default_catalog: default_namespace.0,
            default_schema: default_namespace.1,
            session_ttl_secs: session_ttl.as_secs() as i64,
            sql_info: metadata::sql_info(),
            xdbc_types: metadata::xdbc_type_info(),
        }
    }

    /// The authenticator, shared with the gate in front of the service.
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }
}

impl std::fmt::Debug for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceState").field("router", &self.router).finish_non_exhaustive()
    }
}

/// The Flight SQL service.
#[derive(Debug, Clone)]
pub struct FlightdeckService {
    state: Arc<ServiceState>,
}

impl FlightdeckService {
    pub fn new(state: Arc<ServiceState>) -> Self {
        FlightdeckService { state }
    }

    /// The caller's session: authenticated user, and the catalog, schema and
    /// properties of their session cookie or the configured defaults.
    fn session(&self, md: &tonic::metadata::MetadataMap) -> Result<Session, Status> {
        let user = self.state.auth.identify(md)?;
        let defaults = Session {
            catalog: self.state.default_catalog.clone(),
            schema: self.state.default_schema.clone(),
            ..Session::of(&user)
        };
        Ok(session::from_cookies(&self.state.signer, md, defaults))
    }

    /// Sets the cookies of the options that changed from `before`.
    fn set_cookies<T>(&self, response: &mut Response<T>, before: &Session, after: &Session) {
        for cookie in session::set_cookies(&self.state.signer, before, after, self.state.session_ttl_secs) {
            response.metadata_mut().append("set-cookie", cookie);
        }
    }

    /// The FlightInfo of a metadata command: its schema and the command
    /// itself as the ticket.
    fn metadata_info(
        &self,
        request: Request<FlightDescriptor>,
        cmd: impl ProstMessageExt,
        schema: SchemaRef,
    ) -> Result<Response<FlightInfo>, Status> {
        self.state.auth.identify(request.metadata())?;
        let endpoint = FlightEndpoint::new().with_ticket(Ticket::new(cmd.as_any().encode_to_vec()));
        let info = FlightInfo::new()
            .try_with_schema(&schema)
            .map_err(|e| Error::Internal(e.to_string()))?
            .with_endpoint(endpoint)
            .with_descriptor(request.into_inner());
        Ok(Response::new(info))
    }

    /// GetFlightInfo for a statement: the router's plan, with the ticket
    /// that gets its rows.
    async fn statement_info(
        &self,
        session: Session,
        sql: String,
        parameters: Vec<String>,
        descriptor: FlightDescriptor,
        directive: Directive,
    ) -> Result<Response<FlightInfo>, Status> {
        let started = std::time::Instant::now();
        let before = session.clone();
        let plan = self.state.router.plan(router::Request { session, sql, parameters, directive }).await?;
        metrics::histogram!(
            "flightdeck_request_seconds",
            "rpc" => "get_flight_info", "route" => plan.route.as_str(), "cache" => plan.cache.as_str()
        )
        .record(started.elapsed().as_secs_f64());
        let info = ticket::flight_info(&self.state.signer, &plan, descriptor)?;
        let mut response = Response::new(info);
        mark(&mut response, plan.route, plan.cache);
        if let Some(age) = plan.age {
            response.metadata_mut().insert(AGE_HEADER, MetadataValue::from(age.as_secs()));
        }
        if let Some(updated) = &plan.session {
            self.set_cookies(&mut response, &before, updated);
        }
        Ok(response)
    }

    /// Cancels the statement behind a FlightInfo this server issued, if it
    /// is still waiting for its DoGet. One already streaming stops when its
    /// client drops the stream.
    fn cancel(&self, user: &str, info: &FlightInfo) -> Result<CancelStatus, Error> {
        let parked = ticket::of_flight_info(&self.state.signer, info, user)?.and_then(|t| t.parked);
        let cancelled = parked.is_some_and(|k| self.state.router.cancel(&k));
        Ok(if cancelled { CancelStatus::Cancelled } else { CancelStatus::NotCancellable })
    }

    /// The one row of parameters a query binds, from a DoPut.
    async fn bound_row(stream: PeekableFlightDataStream) -> Result<Option<Vec<String>>, Error> {
        let mut batches = parameter_batches(stream);
        let mut bound = None;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| Error::malformed("parameters", e))?;
            for row in 0..batch.num_rows() {
                if bound.is_some() {
                    return Err(Error::Malformed("bind one row of parameters to a query".into()));
                }
                bound = Some(router::literals(&batch, row).map_err(Error::Malformed)?);
            }
        }
        Ok(bound)
    }
}

#[tonic::async_trait]
impl FlightSqlService for FlightdeckService {
    type FlightService = FlightdeckService;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<BoxStream<HandshakeResponse>>, Status> {
        let (user, token) = self.state.auth.handshake(request.metadata()).await?;
        tracing::debug!(%user, "handshake");
        let reply = HandshakeResponse { protocol_version: 0, payload: token.clone().into() };
        let mut response: Response<BoxStream<HandshakeResponse>> =
            Response::new(Box::pin(futures::stream::iter([Ok(reply)])));
        let header = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|_| Error::Internal("token is not ASCII".into()))?;
        response.metadata_mut().insert("authorization", header);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(request.metadata())?;
        let directive = directive(request.metadata())?;
        self.statement_info(session, query.query, Vec::new(), request.into_inner(), directive).await
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let p = self.state.handles.verify(&cmd.prepared_statement_handle, &user)?;
        let directive = directive(request.metadata())?;
        self.statement_info(p.session, p.sql, p.parameters, request.into_inner(), directive).await
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let t = ticket::verify(&self.state.signer, &ticket.statement_handle, &user)?;
        let started = std::time::Instant::now();
        let answer = self.state.router.redeem(&t).await?;
        metrics::histogram!(
            "flightdeck_request_seconds",
            "rpc" => "do_get", "route" => answer.route.as_str(), "cache" => answer.cache.as_str()
        )
        .record(started.elapsed().as_secs_f64());
        let mut response = Response::new(body_stream(answer.body));
        mark(&mut response, answer.route, answer.cache);
        Ok(response)
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        Err(Error::Malformed(format!("unknown ticket type `{}`", message.type_url)).into())
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(request.metadata())?;
        let prepared = self.state.router.prepare(&session, &query.query).await?;
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: self.state.handles.issue(&session, query.query).into(),
            dataset_schema: schema_bytes(&prepared.schema)?,
            parameter_schema: schema_bytes(&prepared.parameters)?,
        })
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        // Handles are stateless: nothing to free. Remember the id so this
        // replica refuses the handle (and its bound versions) from now on.
        let user = self.state.auth.identify(request.metadata())?;
        self.state.handles.close(self.state.handles.verify(&query.prepared_statement_handle, &user)?);
        Ok(())
    }

    async fn do_put_statement_update(
        &self,
        cmd: CommandStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let session = self.session(request.metadata())?;
        Ok(self.state.router.update(&session, &cmd.query, &[]).await?)
    }

    async fn do_put_prepared_statement_query(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let p = self.state.handles.verify(&cmd.prepared_statement_handle, &user)?;
        let parameters = Self::bound_row(request.into_inner()).await?.unwrap_or_default();
        // Fail now, not at execution, when the count does not match.
        self.state.router.check_binding(&p.sql, &parameters)?;
        let bound = self.state.handles.rebind(p, parameters);
        Ok(DoPutPreparedStatementResult { prepared_statement_handle: Some(bound.into()) })
    }

    async fn do_put_prepared_statement_update(
        &self,
        cmd: CommandPreparedStatementUpdate,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let p = self.state.handles.verify(&cmd.prepared_statement_handle, &user)?;
        // Parameters may come with the update itself, a row per execution
        // (JDBC executeUpdate, ADBC executemany).
        let mut batches = parameter_batches(request.into_inner());
        let (mut total, mut ran) = (0, false);
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| Error::malformed("parameters", e))?;
            for row in 0..batch.num_rows() {
                let literals = router::literals(&batch, row).map_err(Error::Malformed)?;
                total += self.state.router.update(&p.session, &p.sql, &literals).await?;
                ran = true;
            }
        }
        if !ran {
            total = self.state.router.update(&p.session, &p.sql, &p.parameters).await?;
        }
        Ok(total)
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(&self.state.sql_info).schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        rows(query.into_builder(&self.state.sql_info).build())
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder(&self.state.xdbc_types).schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        rows(query.into_builder(&self.state.xdbc_types).build())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::catalogs(&self.state.router, &session, query).await?)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::db_schemas(&self.state.router, &session, query).await?)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::tables(&self.state.router, &session, query).await?)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        self.metadata_info(request, query, schema)
    }

    async fn do_get_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::table_types(&self.state.router, &session, query).await?)))
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::PRIMARY_KEYS_SCHEMA))
    }

    async fn do_get_primary_keys(
        &self,
        _query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::empty(&metadata::PRIMARY_KEYS_SCHEMA))))
    }

    async fn get_flight_info_exported_keys(
        &self,
        query: CommandGetExportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::FOREIGN_KEYS_SCHEMA))
    }

    async fn do_get_exported_keys(
        &self,
        _query: CommandGetExportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::empty(&metadata::FOREIGN_KEYS_SCHEMA))))
    }

    async fn get_flight_info_imported_keys(
        &self,
        query: CommandGetImportedKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::FOREIGN_KEYS_SCHEMA))
    }

    async fn do_get_imported_keys(
        &self,
        _query: CommandGetImportedKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::empty(&metadata::FOREIGN_KEYS_SCHEMA))))
    }

    async fn get_flight_info_cross_reference(
        &self,
        query: CommandGetCrossReference,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.metadata_info(request, query, Arc::clone(&metadata::FOREIGN_KEYS_SCHEMA))
    }

    async fn do_get_cross_reference(
        &self,
        _query: CommandGetCrossReference,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.state.auth.identify(request.metadata())?;
        Ok(Response::new(batch_stream(metadata::empty(&metadata::FOREIGN_KEYS_SCHEMA))))
    }

    async fn do_action_cancel_query(
        &self,
        query: ActionCancelQueryRequest,
        request: Request<Action>,
    ) -> Result<ActionCancelQueryResult, Status> {
        let user = self.state.auth.identify(request.metadata())?;
        let info = FlightInfo::decode(query.info).map_err(|e| Error::malformed("FlightInfo", e))?;
        // The legacy CancelResult numbers its values as CancelStatus does.
        let status = self.cancel(&user, &info)?;
        Ok(ActionCancelQueryResult { result: status as i32 })
    }

    async fn do_action_fallback(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let session = self.session(request.metadata())?;
        let (metadata, _, action) = request.into_parts();
        match action.r#type.as_str() {
            "CancelFlightInfo" => {
                let req = arrow_flight::CancelFlightInfoRequest::decode(action.body)
                    .map_err(|e| Error::malformed("CancelFlightInfoRequest", e))?;
                let info =
                    req.info.ok_or_else(|| Error::Malformed("CancelFlightInfoRequest has no FlightInfo".into()))?;
                let status = self.cancel(&session.user, &info)?;
                Ok(action_result(arrow_flight::CancelFlightInfoResult { status: status as i32 }.encode_to_vec()))
            }
            "SetSessionOptions" => {
                let req = proto::SetSessionOptionsRequest::decode(action.body)
                    .map_err(|e| Error::malformed("SetSessionOptionsRequest", e))?;
                let (options, mut errors) = session::requested_options(req);
                let (updated, refused) = self.state.router.set_options(session.clone(), options).await;
                errors.extend(refused.into_iter().map(|(name, why)| (name, session::refusal(why))));
                let mut response = action_result(proto::SetSessionOptionsResult { errors }.encode_to_vec());
                self.set_cookies(&mut response, &session, &updated);
                Ok(response)
            }
            "GetSessionOptions" => Ok(action_result(session::current_options(&session).encode_to_vec())),
            "CloseSession" => {
                let closed = proto::close_session_result::Status::Closed as i32;
                let mut response = action_result(proto::CloseSessionResult { status: closed }.encode_to_vec());
                for cookie in session::clear_cookies(&metadata) {
                    response.metadata_mut().append("set-cookie", cookie);
                }
                Ok(response)
            }
            other => Err(Error::Unsupported(format!("action `{other}` is not supported")).into()),
        }
    }

    async fn list_custom_actions(&self) -> Option<Vec<Result<arrow_flight::ActionType, Status>>> {
        let action = |name: &str, description: &str| {
            Ok(arrow_flight::ActionType { r#type: name.into(), description: description.into() })
        };
        Some(vec![
            action(
                "CancelFlightInfo",
                "Cancel the query of a FlightInfo.\nRequest: CancelFlightInfoRequest\nResult: CancelFlightInfoResult",
            ),
            action(
                "SetSessionOptions",
                "Set catalog, schema or Trino session properties.\nRequest: SetSessionOptionsRequest\nResult: SetSessionOptionsResult",
            ),
            action(
                "GetSessionOptions",
                "The session's options.\nRequest: GetSessionOptionsRequest\nResult: GetSessionOptionsResult",
            ),
            action("CloseSession", "End the session.\nRequest: CloseSessionRequest\nResult: CloseSessionResult"),
        ])
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
