//! Decides where a statement runs. Today everything goes to Trino; the
//! result cache and accelerated datasets plug in here.

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::flight::proto::SessionContext;
use crate::trino::{Query, Result, Session, TrinoClient};

/// Routes statements to their engine.
#[derive(Debug, Clone)]
pub struct Router {
    trino: TrinoClient,
}

impl Router {
    pub fn new(trino: TrinoClient) -> Self {
        Router { trino }
    }

    /// The Trino client behind the router.
    pub fn trino(&self) -> &TrinoClient {
        &self.trino
    }

    /// Starts `sql` in the client's session.
    pub async fn start(&self, ctx: &SessionContext, sql: &str) -> Result<Query> {
        self.trino.start(&Session::from(ctx), sql).await
    }

    /// Starts text derived from the client's (`origin` maps error
    /// positions back into what the client wrote).
    pub async fn start_from(
        &self,
        ctx: &SessionContext,
        sql: &str,
        origin: Option<std::sync::Arc<crate::trino::Origin>>,
    ) -> Result<Query> {
        self.trino.start_from(&Session::from(ctx), sql, origin).await
    }

    /// Runs `sql` to completion in the client's session (small results).
    pub async fn execute(&self, ctx: &SessionContext, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        self.trino.execute(&Session::from(ctx), sql).await
    }

    /// Runs `sql` to completion with `stmt` prepared as `name` (for
    /// `DESCRIBE OUTPUT name` and friends).
    pub async fn execute_prepared(
        &self,
        ctx: &SessionContext,
        name: &str,
        stmt: &str,
        sql: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let mut session = Session::from(ctx);
        session.prepared.push((name.to_string(), stmt.to_string()));
        self.trino.execute(&session, sql).await
    }
}
