//! Schemas without running the statement: `DESCRIBE OUTPUT` and
//! `DESCRIBE INPUT` of the statement prepared under a fixed name.

use std::sync::Arc;

use arrow::array::{AsArray, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::client::{Session, TrinoClient};
use super::error::{Error, Origin, Result};
use super::types::{Column, TrinoType, schema_for};

/// Name under which a statement is prepared to be described.
const DESCRIBE_NAME: &str = "flightdeck_describe";

/// The named text column of a `DESCRIBE` answer.
fn text<'a>(b: &'a RecordBatch, name: &str) -> Result<&'a StringArray> {
    b.column_by_name(name)
        .map(|c| c.as_string::<i32>())
        .ok_or_else(|| Error::Protocol(format!("DESCRIBE has no `{name}` column")))
}

impl TrinoClient {
    /// Runs `sql` with `stmt` prepared as [`DESCRIBE_NAME`].
    async fn with_prepared(&self, session: &Session, stmt: &str, sql: &str) -> Result<Vec<RecordBatch>> {
        let mut session = session.clone();
        session.prepared.push((DESCRIBE_NAME.to_string(), stmt.to_string()));
        Ok(self.execute(&session, sql).await?.1)
    }

    /// The result schema of `sql` (`DESCRIBE OUTPUT`), for a statement
    /// with a result set.
    pub async fn describe_output(&self, session: &Session, sql: &str) -> Result<SchemaRef> {
        let batches = match self.with_prepared(session, sql, &format!("DESCRIBE OUTPUT {DESCRIBE_NAME}")).await {
            Ok(batches) => batches,
            Err(e @ Error::Http { status: 400, .. }) => {
                // Trino refuses a statement that does not parse at the HTTP
                // level when it comes in a header; PREPARE reports the same
                // problem as a proper query error (name, location).
                let prefix = format!("PREPARE {DESCRIBE_NAME} FROM ");
                let origin = Arc::new(Origin::prefixed(&prefix, sql));
                return Err(match self.start_from(session, &format!("{prefix}{sql}"), Some(origin)).await {
                    Ok(mut q) => q.drain().await.err().unwrap_or(e),
                    Err(e) => e,
                });
            }
            Err(e) => return Err(e),
        };
        let mut columns = Vec::new();
        for b in &batches {
            let (names, types) = (text(b, "Column Name")?, text(b, "Type")?);
            for i in 0..b.num_rows() {
                let ty = TrinoType::parse(types.value(i)).map_err(Error::Protocol)?;
                columns.push(Column { name: names.value(i).to_string(), ty });
            }
        }
        if columns.iter().any(|c| c.ty.has_unknown_inside()) {
            // Ambiguous type text: ask for the real columns of an empty run.
            let probe = format!("SELECT * FROM (\n{sql}\n) LIMIT 0");
            if let Ok(mut q) = self.start(session, &probe).await
                && let Ok(schema) = q.wait_for_schema().await
            {
                return Ok(schema);
            }
        }
        Ok(Arc::new(schema_for(&columns)))
    }

    /// The types of `sql`'s parameters (`DESCRIBE INPUT`), in order;
    /// `unknown` where Trino cannot tell.
    pub async fn describe_input(&self, session: &Session, sql: &str) -> Result<Vec<String>> {
        let batches = self.with_prepared(session, sql, &format!("DESCRIBE INPUT {DESCRIBE_NAME}")).await?;
        let mut types = Vec::new();
        for b in &batches {
            types.extend(text(b, "Type")?.iter().map(|t| t.unwrap_or("unknown").to_string()));
        }
        Ok(types)
    }

    /// A table's columns and their types (`DESCRIBE table`).
    pub async fn columns(&self, session: &Session, table: &str) -> Result<Vec<(String, String)>> {
        let (_, batches) = self.execute(session, &format!("DESCRIBE {table}")).await?;
        Ok(batches
            .iter()
            .flat_map(|b| {
                let (n, t) = (b.column(0).as_string::<i32>(), b.column(1).as_string::<i32>());
                (0..b.num_rows()).map(|i| (n.value(i).to_string(), t.value(i).to_string())).collect::<Vec<_>>()
            })
            .collect())
    }
}
