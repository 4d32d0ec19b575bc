//! The seam between the router and whatever runs statements: Trino today,
//! a local engine beside it later, and a test double in the router's tests.

use std::pin::Pin;

use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use futures::Stream;

use arrow::array::AsArray;

use super::error::{Error, Result};
use super::params::Bound;
use super::session::{Change, Session};
use crate::sql::Reads;
use crate::sql::Statement;

/// Record batches as an engine produces them. Dropping the stream before
/// its end cancels the work behind it.
pub type BatchStream = Pin<Box<dyn Stream<Item = Result<RecordBatch>> + Send + 'static>>;

/// Runs statements.
#[async_trait::async_trait]
pub trait Engine: Send + Sync + std::fmt::Debug + 'static {
    /// Starts `stmt` as `session`'s user; returns once the result's
    /// schema is known (no fields for statements without a result set).
    async fn start(&self, session: &Session, stmt: &Bound) -> Result<Box<dyn Execution>>;

    /// Runs text Flightdeck wrote itself (metadata listings, checks) to its
    /// end: for small results.
    async fn execute(&self, session: &Session, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let mut run = self.start(session, &Bound::verbatim(sql)).await?;
        let mut batches = Vec::new();
        while let Some(b) = run.next_batch().await? {
            batches.push(b);
        }
        Ok((run.schema(), batches))
    }

    /// What a finished execution read, when the engine can tell: decides
    /// which writes drop a cached answer and whether users may share it.
    async fn reads(&self, session: &Session, execution_id: &str) -> Result<Option<Reads>>;

    /// The result schema of a statement that has one, without running it.
    async fn describe_output(&self, session: &Session, stmt: &Statement) -> Result<SchemaRef>;

    /// The schema of a statement's `?` parameters, in order.
    async fn describe_input(&self, session: &Session, stmt: &Statement) -> Result<Schema>;

    /// The Arrow field of a column of the engine's type `type_name` (as its
    /// metadata tables spell it), as result schemas give it.
    fn field(&self, type_name: &str, column: &str) -> arrow::datatypes::Field;

    /// The schemas of `catalog` that `session`'s user may see; fails if the
    /// catalog does not exist or is hidden from them.
    async fn schemas(&self, session: &Session, catalog: &str) -> Result<Vec<String>> {
        let sql = format!("SHOW SCHEMAS FROM {}", crate::sql::quote_ident(catalog));
        let (_, batches) = self.execute(session, &sql).await?;
        let mut out = Vec::new();
        for b in &batches {
            let names =
                b.column(0).as_string_opt::<i32>().ok_or_else(|| Error::internal("schema names are not text"))?;
            out.extend(names.iter().flatten().map(str::to_string));
        }
        Ok(out)
    }

    /// Checks that `session`'s properties are accepted.
    async fn check_properties(&self, session: &Session) -> Result<()> {
        self.execute(&session.without_namespace(), "SELECT 1").await.map(drop)
    }
}

/// Why the local engine does not answer a statement: Trino does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// A short, fixed category (`relation`, `function`, `access`, `busy`,
    /// ...), for metrics.
    pub kind: &'static str,
    /// What exactly, for logs and `EXPLAIN`.
    pub detail: String,
}

impl Refusal {
    pub fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        Refusal { kind, detail: detail.into() }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// An engine that answers some statements, beside the one that answers all.
#[async_trait::async_trait]
pub trait Local: Send + Sync + std::fmt::Debug + 'static {
    /// Starts `stmt` (parameters bound) for `session`, or says why not.
    async fn start(&self, session: &Session, stmt: &Statement) -> std::result::Result<Box<dyn Execution>, Refusal>;

    /// The plan `stmt` would run with here, as text, or why it would not.
    async fn explain(&self, session: &Session, stmt: &Statement) -> std::result::Result<String, Refusal>;

    /// The schema of `stmt`'s answer from here, without running it, or why
    /// it would not be answered here.
    async fn describe(&self, session: &Session, stmt: &Statement) -> std::result::Result<SchemaRef, Refusal>;
}

/// A started statement. Dropping it before its end cancels it.
#[async_trait::async_trait]
pub trait Execution: Send + std::fmt::Debug {
    /// The result schema.
    fn schema(&self) -> SchemaRef;
    /// The engine's id of this execution (Trino's query id).
    fn id(&self) -> &str;
    /// The next batch, or `None` at the end.
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>>;
    /// Session changes the statement asked for so far.
    fn changes(&self) -> Vec<Change>;
    /// Rows written, for DML, once known.
    fn update_count(&self) -> Option<i64>;
    /// What kind of statement without a result set ran (`INSERT`,
    /// `CREATE TABLE`, `SET SESSION`, ...), once known.
    fn update_type(&self) -> Option<String> {
        None
    }
}

/// The rest of an execution's batches as a stream; dropping the stream
/// drops (and so cancels) the execution.
pub fn into_stream(run: Box<dyn Execution>) -> BatchStream {
    Box::pin(futures::stream::try_unfold(run, |mut run| async move { Ok(run.next_batch().await?.map(|b| (b, run))) }))
}
