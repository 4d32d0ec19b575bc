//! Trino behind the [`Engine`] seam: sessions and errors translated both ways.

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::engine::{Engine, Execution};
use super::error::{Code, Error, Result};
use super::params::{Bound, any_type_field};
use super::session::{Change, Session};
use crate::sql::Reads;
use crate::sql::{Statement, Target};
use crate::trino::{self, Query, SessionUpdate, TrinoClient, TrinoType};

/// Trino error names that mean "the thing you named does not exist".
const NOT_FOUND: &[&str] = &[
    "NOT_FOUND",
    "CATALOG_NOT_FOUND",
    "SCHEMA_NOT_FOUND",
    "TABLE_NOT_FOUND",
    "COLUMN_NOT_FOUND",
    "FUNCTION_NOT_FOUND",
    "MISSING_TABLE",
];
const ALREADY_EXISTS: &[&str] =
    &["ALREADY_EXISTS", "TABLE_ALREADY_EXISTS", "SCHEMA_ALREADY_EXISTS", "COLUMN_ALREADY_EXISTS"];

impl From<trino::Error> for Error {
    /// Trino's message and error name are kept in the message, and its
    /// error name, type, code, query id and location in the details.
    fn from(e: trino::Error) -> Self {
        match e {
            trino::Error::Query(q) => {
                let code = match q.error_name.as_str() {
                    n if NOT_FOUND.contains(&n) => Code::NotFound,
                    n if ALREADY_EXISTS.contains(&n) => Code::AlreadyExists,
                    "PERMISSION_DENIED" => Code::PermissionDenied,
                    "USER_CANCELED" | "ADMINISTRATIVELY_KILLED" => Code::Cancelled,
                    "EXCEEDED_TIME_LIMIT" => Code::DeadlineExceeded,
                    _ => match q.error_type.as_str() {
                        "USER_ERROR" => Code::InvalidArgument,
                        "INSUFFICIENT_RESOURCES" => Code::ResourceExhausted,
                        _ => Code::Internal,
                    },
                };
                let mut message = format!("{}: {}", q.error_name, q.message);
                if let Some(id) = &q.query_id {
                    message.push_str(&format!(" [Trino query {id}]"));
                }
                let mut details = vec![
                    ("x-trino-error-name", q.error_name.clone()),
                    ("x-trino-error-type", q.error_type.clone()),
                    ("x-trino-error-code", q.error_code.to_string()),
                    ("x-trino-query-id", q.query_id.clone().unwrap_or_default()),
                    ("x-trino-error-message", q.message.clone()),
                ];
                if let Some(loc) = &q.error_location {
                    details.push(("x-trino-error-location", format!("{}:{}", loc.line_number, loc.column_number)));
                }
                Error { code, message, details }
            }
            trino::Error::Unavailable { .. } | trino::Error::Busy(_) => Error::new(Code::Unavailable, e.to_string()),
            trino::Error::Http { status, .. } if status >= 500 => Error::new(Code::Unavailable, e.to_string()),
            // Trino refused the request itself (a malformed header, say).
            trino::Error::Http { status, .. } if status >= 400 && status != 401 => {
                Error::invalid_argument(e.to_string())
            }
            trino::Error::InvalidHeader(_) => Error::invalid_argument(e.to_string()),
            trino::Error::Unauthorized(_)
            | trino::Error::Http { .. }
            | trino::Error::Protocol(_)
            | trino::Error::Decode(_)
            | trino::Error::Config(_) => Error::internal(e.to_string()),
        }
    }
}

impl From<&Session> for trino::Session {
    fn from(s: &Session) -> Self {
        trino::Session {
            user: s.user.clone(),
            catalog: s.catalog.clone(),
            schema: s.schema.clone(),
            prepared: Vec::new(),
            properties: s.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            time_zone: s.time_zone.clone(),
            headers: s.client.clone(),
        }
    }
}

/// Trino as an engine.
#[derive(Debug, Clone)]
pub struct TrinoEngine {
    client: TrinoClient,
}

impl TrinoEngine {
    pub fn new(client: TrinoClient) -> Self {
        TrinoEngine { client }
    }
}

/// A running Trino query and its schema.
#[derive(Debug)]
struct Running {
    query: Query,
    schema: SchemaRef,
}

#[async_trait::async_trait]
impl Execution for Running {
    fn schema(&self) -> SchemaRef {
        SchemaRef::clone(&self.schema)
    }

    fn id(&self) -> &str {
        self.query.id()
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        Ok(self.query.next_batch().await?)
    }

    fn changes(&self) -> Vec<Change> {
        self.query
            .session_updates()
            .iter()
            .map(|u| match u {
                SessionUpdate::Catalog(c) => Change::Catalog(c.clone()),
                SessionUpdate::Schema(s) => Change::Schema(s.clone()),
                SessionUpdate::SetProperty(k, v) => Change::SetProperty(k.clone(), v.clone()),
                SessionUpdate::ClearProperty(k) => Change::ClearProperty(k.clone()),
            })
            .collect()
    }

    fn update_count(&self) -> Option<i64> {
        self.query.update_count()
    }

    fn update_type(&self) -> Option<String> {
        self.query.update_type().map(str::to_string)
    }
}

#[async_trait::async_trait]
impl Engine for TrinoEngine {
    async fn start(&self, session: &Session, stmt: &Bound) -> Result<Box<dyn Execution>> {
        let mut query = self.client.start_from(&session.into(), &stmt.sql, stmt.origin.clone()).await?;
        let schema = query.wait_for_schema().await?;
        Ok(Box::new(Running { query, schema }))
    }

    async fn execute(&self, session: &Session, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        Ok(self.client.execute(&session.into(), sql).await?)
    }

    async fn reads(&self, session: &Session, execution_id: &str) -> Result<Option<Reads>> {
        match self.client.reads(&session.user, execution_id).await {
            Ok(r) => Ok(Some(r)),
            Err(e) => {
                tracing::debug!(error = %e, "no account of what the query read");
                Ok(None)
            }
        }
    }

    fn field(&self, type_name: &str, column: &str) -> arrow::datatypes::Field {
        TrinoType::parse(type_name).unwrap_or_else(|_| TrinoType::Other(type_name.to_string())).field(column)
    }

    async fn describe_output(&self, session: &Session, stmt: &Statement) -> Result<SchemaRef> {
        Ok(self.client.describe_output(&session.into(), stmt.text()).await?)
    }

    async fn describe_input(&self, session: &Session, stmt: &Statement) -> Result<Schema> {
        let session = trino::Session::from(session);
        let mut types = self.client.describe_input(&session, stmt.text()).await?;
        // Trino cannot type the values of INSERT ... VALUES (?): take them
        // from the target table's columns.
        if types.iter().any(|t| t == "unknown")
            && let Some((table, targets)) = stmt.insert_targets()
            && let Ok(columns) = self.client.columns(&session, &table).await
        {
            for (ty, target) in types.iter_mut().zip(&targets) {
                let found = match target {
                    Target::Position(p) => columns.get(*p),
                    Target::Name(n) => columns.iter().find(|(c, _)| c == n),
                };
                if let (true, Some((_, t))) = (ty == "unknown", found) {
                    *ty = t.clone();
                }
            }
        }
        let fields: Vec<_> = types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let name = format!("parameter_{}", i + 1);
                match t.as_str() {
                    "unknown" => any_type_field(&name),
                    t => TrinoType::parse(t).unwrap_or_else(|_| TrinoType::Other(t.to_string())).field(&name),
                }
            })
            .collect();
        Ok(Schema::new(fields))
    }
}
