//! The router's decisions, against an engine double: what runs where, how
//! often, and what a ticket gives back.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::Int64Array;
use arrow::datatypes::{DataType, Field};
use futures::StreamExt;

use super::*;
use crate::cache::{CacheConfig, Reads};

/// How the double answers one statement.
#[derive(Debug, Clone)]
struct Script {
    /// Values per batch of the one `x bigint` column.
    batches: Vec<Vec<i64>>,
    changes: Vec<Change>,
    fail: Option<Error>,
    /// The first batch waits for a permit of this (a slow Trino).
    hold: Option<Arc<tokio::sync::Semaphore>>,
}

impl Script {
    fn rows(batches: &[&[i64]]) -> Script {
        Script { batches: batches.iter().map(|b| b.to_vec()).collect(), changes: Vec::new(), fail: None, hold: None }
    }
}

/// An engine that answers from scripts and counts what it was asked.
#[derive(Debug, Default)]
struct Double {
    scripts: Mutex<HashMap<String, Script>>,
    /// Statements started, as sent.
    started: Mutex<Vec<String>>,
    /// Executions dropped before their end.
    cancelled: Arc<AtomicUsize>,
}

impl Double {
    fn script(&self, sql: &str, script: Script) {
        self.scripts.lock().unwrap().insert(sql.to_string(), script);
    }

    fn runs(&self, sql: &str) -> usize {
        self.started.lock().unwrap().iter().filter(|s| *s == sql).count()
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]))
}

#[derive(Debug)]
struct Run {
    batches: VecDeque<RecordBatch>,
    changes: Vec<Change>,
    finished: bool,
    cancelled: Arc<AtomicUsize>,
    hold: Option<Arc<tokio::sync::Semaphore>>,
}

impl Drop for Run {
    fn drop(&mut self) {
        if !self.finished {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[async_trait::async_trait]
impl Execution for Run {
    fn schema(&self) -> SchemaRef {
        schema()
    }

    fn id(&self) -> &str {
        "double"
    }

    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(hold) = self.hold.take() {
            hold.acquire().await.expect("open").forget();
        }
        let next = self.batches.pop_front();
        self.finished = next.is_none();
        Ok(next)
    }

    fn changes(&self) -> Vec<Change> {
        self.changes.clone()
    }

    fn update_count(&self) -> Option<i64> {
        Some(1)
    }
}

#[async_trait::async_trait]
impl Engine for Double {
    async fn start(&self, _session: &Session, stmt: &Bound) -> Result<Box<dyn Execution>> {
        self.started.lock().unwrap().push(stmt.sql.clone());
        let script = self.scripts.lock().unwrap().get(&stmt.sql).cloned().unwrap_or_else(|| Script::rows(&[&[1]]));
        if let Some(e) = script.fail {
            return Err(e);
        }
        let batches = script
            .batches
            .iter()
            .map(|b| RecordBatch::try_new(schema(), vec![Arc::new(Int64Array::from(b.clone()))]).unwrap())
            .collect();
        Ok(Box::new(Run {
            batches,
            changes: script.changes,
            finished: false,
            cancelled: Arc::clone(&self.cancelled),
            hold: script.hold,
        }))
    }

    async fn reads(&self, _session: &Session, _id: &str) -> Result<Option<Reads>> {
        Ok(Some(Reads { tables: vec!["memory.default.t".into()], per_user: false }))
    }

    fn field(&self, _type_name: &str, column: &str) -> Field {
        Field::new(column, DataType::Utf8, true)
    }

    async fn schemas(&self, session: &Session, catalog: &str) -> Result<Vec<String>> {
        assert!(session.catalog.is_none() && session.schema.is_none(), "checked outside the half-set session");
        self.started.lock().unwrap().push(format!("SHOW SCHEMAS FROM {catalog}"));
        match catalog {
            "hidden" => Err(Error::new(Code::NotFound, "CATALOG_NOT_FOUND: Catalog 'hidden' not found")),
            _ => Ok(vec!["tiny".into()]),
        }
    }

    async fn describe_output(&self, _session: &Session, _stmt: &Statement) -> Result<SchemaRef> {
        self.started.lock().unwrap().push("DESCRIBE OUTPUT".into());
        Ok(schema())
    }

    async fn describe_input(&self, _session: &Session, stmt: &Statement) -> Result<Schema> {
        Ok(Schema::new(
            (0..stmt.markers().len())
                .map(|i| Field::new(format!("parameter_{}", i + 1), DataType::Int64, true))
                .collect::<Vec<_>>(),
        ))
    }
}

fn router(engine: &Arc<Double>, cache: Option<CacheConfig>) -> Router {
    Router::new(Parts {
        engine: Arc::clone(engine) as Arc<dyn Engine>,
        local: None,
        cache: cache.map(ResultCache::new),
        registry: Registry::new(16, 16, Duration::from_secs(60)),
        memory: MemoryBudget::new(1 << 30),
        session_properties: Vec::new(),
        time_zone: None,
        stop_streams: CancellationToken::new(),
        tasks: TaskTracker::new(),
    })
}

fn request(sql: &str) -> Request {
    Request {
        session: Session { catalog: Some("memory".into()), schema: Some("default".into()), ..Session::of("alice") },
        sql: sql.into(),
        parameters: Vec::new(),
        directive: Directive::Default,
    }
}

/// The values an answer holds, in order.
async fn values(body: Body) -> Vec<i64> {
    let batches = match body {
        Body::Cached(e) => e.batches.clone(),
        Body::Batches(_, b) => b,
        Body::Stream(_, s) => s.map(|b| b.unwrap()).collect().await,
    };
    batches.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec()).collect()
}

#[tokio::test]
async fn a_repeated_query_is_a_hit_and_runs_once() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    engine.script("SELECT x FROM t", Script::rows(&[&[1, 2], &[3]]));
    let miss = r.plan(request("SELECT x FROM t")).await.unwrap();
    assert_eq!((miss.route, miss.cache, miss.rows), (Route::Trino, Outcome::Miss, Some(3)));
    let hit = r.plan(request("SELECT  x\r\nFROM t -- again")).await.unwrap();
    assert_eq!((hit.route, hit.cache), (Route::Cache, Outcome::Hit));
    assert_eq!(hit.ticket.route, Route::Cache, "the ticket carries the route");
    assert_eq!(engine.runs("SELECT x FROM t"), 1);
    // Redeeming either ticket serves the entry; nothing runs again.
    for ticket in [&miss.ticket, &hit.ticket] {
        let answer = r.redeem(ticket).await.unwrap();
        assert!(matches!(answer.body, Body::Cached(_)));
        assert_eq!(values(answer.body).await, vec![1, 2, 3]);
    }
    assert_eq!(engine.started.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn only_if_cached_never_reaches_the_engine() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    let mut req = request("SELECT 1");
    req.directive = Directive::OnlyIfCached;
    assert_eq!(r.plan(req.clone()).await.unwrap_err().code, Code::FailedPrecondition);
    req.sql = "SELECT now()".into();
    assert_eq!(r.plan(req).await.unwrap_err().code, Code::FailedPrecondition);
    assert!(engine.started.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_bypassed_read_is_parked_then_streamed_and_run_again_when_gone() {
    let engine = Arc::new(Double::default());
    for cache in [Some(CacheConfig::default()), None] {
        let r = router(&engine, cache.clone());
        let sql = "SELECT now() AS x";
        engine.script(sql, Script::rows(&[&[7], &[8]]));
        let before = engine.runs(sql);
        let plan = r.plan(request(sql)).await.unwrap();
        assert_eq!((plan.route, plan.cache), (Route::Trino, Outcome::Bypass), "cache {:?}", cache.is_some());
        assert!(plan.ticket.parked.is_some() && !plan.ticket.run_once);
        assert_eq!(r.registry().len(), 1);
        let answer = r.redeem(&plan.ticket).await.unwrap();
        assert_eq!(values(answer.body).await, vec![7, 8]);
        assert_eq!(engine.runs(sql), before + 1);
        // The parked statement went to the first redemption; a read is
        // harmless to run again.
        let again = r.redeem(&plan.ticket).await.unwrap();
        assert_eq!((again.route, again.cache), (Route::Trino, Outcome::Bypass));
        assert_eq!(values(again.body).await, vec![7, 8]);
        assert_eq!(engine.runs(sql), before + 2);
    }
}

#[tokio::test]
async fn a_write_runs_once_answers_from_its_ticket_and_drops_what_it_changed() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    let read = "SELECT x FROM t";
    r.plan(request(read)).await.unwrap();
    assert_eq!(r.plan(request(read)).await.unwrap().cache, Outcome::Hit);
    let write = "INSERT INTO t VALUES 1";
    engine.script(write, Script::rows(&[&[1]]));
    let plan = r.plan(request(write)).await.unwrap();
    assert_eq!((plan.route, plan.cache), (Route::Trino, Outcome::Bypass));
    assert!(plan.ticket.run_once && !plan.ticket.result.is_empty() && plan.ticket.parked.is_none());
    for _ in 0..3 {
        let answer = r.redeem(&plan.ticket).await.unwrap();
        assert!(matches!(answer.body, Body::Batches(..)));
        assert_eq!(values(answer.body).await, vec![1]);
    }
    assert_eq!(engine.runs(write), 1, "never run twice");
    assert_eq!(r.plan(request(read)).await.unwrap().cache, Outcome::Miss, "the write dropped the entry");
    // A failed write may have committed: it drops entries too.
    engine.script("DELETE FROM t", Script { fail: Some(Error::internal("lost")), ..Script::rows(&[]) });
    assert_eq!(r.plan(request(read)).await.unwrap().cache, Outcome::Hit);
    assert!(r.plan(request("DELETE FROM t")).await.is_err());
    assert_eq!(r.plan(request(read)).await.unwrap().cache, Outcome::Miss);
}

#[tokio::test]
async fn a_large_write_answer_stays_parked_and_is_never_run_again() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, None);
    let big: Vec<i64> = (0..100_000).collect();
    engine.script("EXECUTE big", Script::rows(&[&big, &big]));
    let plan = r.plan(request("EXECUTE big")).await.unwrap();
    assert!(plan.ticket.run_once && plan.ticket.result.is_empty() && plan.ticket.parked.is_some());
    let answer = r.redeem(&plan.ticket).await.unwrap();
    assert_eq!(values(answer.body).await.len(), 200_000);
    let again = r.redeem(&plan.ticket).await.unwrap_err();
    assert_eq!(again.code, Code::FailedPrecondition);
    assert_eq!(engine.runs("EXECUTE big"), 1);
    assert_eq!(r.memory().used(), 0, "the read-ahead is given back");
}

#[tokio::test]
async fn a_session_statement_changes_the_session() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    let changes = vec![Change::Catalog("tpch".into()), Change::Schema("tiny".into())];
    engine.script("USE tpch.tiny", Script { changes, ..Script::rows(&[]) });
    let plan = r.plan(request("USE tpch.tiny")).await.unwrap();
    let session = plan.session.expect("the session changed");
    assert_eq!((session.catalog.as_deref(), session.schema.as_deref()), (Some("tpch"), Some("tiny")));
    assert_eq!(session.user, "alice");
    assert!(plan.ticket.run_once);
    assert!(r.plan(request("SELECT 1")).await.unwrap().session.is_none());
}

#[tokio::test]
async fn a_result_too_large_to_cache_streams_from_the_fill() {
    let engine = Arc::new(Double::default());
    let config = CacheConfig { max_entry_bytes: 1, ..CacheConfig::default() };
    let r = router(&engine, Some(config));
    engine.script("SELECT x FROM big", Script::rows(&[&[1, 2], &[3], &[4]]));
    let plan = r.plan(request("SELECT x FROM big")).await.unwrap();
    assert_eq!((plan.route, plan.cache), (Route::Trino, Outcome::Bypass));
    assert!(plan.ticket.parked.is_some());
    let answer = r.redeem(&plan.ticket).await.unwrap();
    assert_eq!(values(answer.body).await, vec![1, 2, 3, 4], "what the fill read, then the rest");
    assert_eq!(engine.runs("SELECT x FROM big"), 1);
    assert!(r.cache().unwrap().entries().is_empty());
}

#[tokio::test]
async fn a_redeemed_or_foreign_ticket_follows_its_route() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    let plan = r.plan(request("SELECT x FROM t")).await.unwrap();
    // Another replica (an empty cache) redeems it: runs it on its route.
    let other = router(&engine, Some(CacheConfig::default()));
    let answer = other.redeem(&plan.ticket).await.unwrap();
    assert_eq!((answer.route, answer.cache), (Route::Trino, Outcome::Miss));
    assert_eq!(values(answer.body).await, vec![1]);
    // A write's ticket holding neither answer nor parked statement fails.
    let lost = Ticket { run_once: true, parked: Some([0; 16]), result: Vec::new(), ..plan.ticket.clone() };
    assert_eq!(r.redeem(&lost).await.unwrap_err().code, Code::FailedPrecondition);
}

#[tokio::test]
async fn cancel_drops_the_parked_statement() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, None);
    let plan = r.plan(request("SELECT x FROM t")).await.unwrap();
    let key = plan.ticket.parked.unwrap();
    assert!(r.cancel(&key));
    assert!(!r.cancel(&key), "once");
    assert_eq!(engine.cancelled.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn parameters_bind_before_the_decision() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    let mut req = request("SELECT x FROM t WHERE x = ?");
    req.parameters = vec!["BIGINT '7'".into()];
    r.plan(req.clone()).await.unwrap();
    assert_eq!(engine.runs("SELECT x FROM t WHERE x = BIGINT '7'"), 1);
    assert_eq!(r.plan(req.clone()).await.unwrap().cache, Outcome::Hit, "bound values are part of the key");
    req.parameters = vec!["BIGINT '8'".into()];
    assert_eq!(r.plan(req.clone()).await.unwrap().cache, Outcome::Miss);
    req.parameters.clear();
    assert_eq!(r.plan(req).await.unwrap_err().code, Code::InvalidArgument);
}

#[tokio::test]
async fn prepare_answers_a_cached_schema_without_the_engine() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    let session = request("").session;
    let p = r.prepare(&session, "INSERT INTO t VALUES (?)").await.unwrap();
    assert_eq!((p.schema.fields().len(), p.parameters.fields().len()), (0, 1), "no result set: an update");
    r.prepare(&session, "SELECT x FROM t").await.unwrap();
    assert_eq!(engine.runs("DESCRIBE OUTPUT"), 1);
    r.plan(request("SELECT x FROM t")).await.unwrap();
    let p = r.prepare(&session, "SELECT x FROM t").await.unwrap();
    assert_eq!(p.schema, schema());
    assert_eq!(engine.runs("DESCRIBE OUTPUT"), 1, "the cached schema answered");
}

#[tokio::test]
async fn session_options_are_checked_by_the_engine() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, None);
    engine.script(
        "SELECT 1",
        Script { fail: Some(Error::invalid_argument("Session property 'nope' does not exist")), ..Script::rows(&[]) },
    );
    let options = vec![
        ("schema".to_string(), Some("tiny".to_string())),
        ("nope".to_string(), Some("1".to_string())),
        ("catalog".to_string(), Some("tpch".to_string())),
    ];
    let (session, refused) = r.set_options(Session::of("alice"), options).await;
    assert_eq!((session.catalog.as_deref(), session.schema.as_deref()), (Some("tpch"), Some("tiny")));
    assert_eq!(refused, vec![("nope".to_string(), OptionError::InvalidName)]);
    assert_eq!(engine.runs("SHOW SCHEMAS FROM tpch"), 1);
    let (kept, refused) = r.set_options(session.clone(), vec![("catalog".into(), Some("hidden".into()))]).await;
    assert_eq!(kept, session, "a refused catalog leaves the session as it was");
    assert_eq!(refused, vec![("catalog".to_string(), OptionError::InvalidValue)]);
}

#[tokio::test]
async fn no_reader_gets_rows_from_before_a_write_that_finished_first() {
    let engine = Arc::new(Double::default());
    let r = router(&engine, Some(CacheConfig::default()));
    let read = "SELECT x FROM t";
    let slow = Arc::new(tokio::sync::Semaphore::new(0));
    engine.script(read, Script { hold: Some(Arc::clone(&slow)), ..Script::rows(&[&[1]]) });
    // A read starts a fill, which Trino answers slowly, from before the write.
    let first = tokio::spawn({
        let r = r.clone();
        async move { r.plan(request(read)).await }
    });
    while engine.runs(read) == 0 {
        tokio::task::yield_now().await;
    }
    // The write finishes while that fill is still running.
    engine.script("INSERT INTO t VALUES 2", Script::rows(&[&[1]]));
    r.plan(request("INSERT INTO t VALUES 2")).await.unwrap();
    engine.script(read, Script::rows(&[&[1], &[2]]));
    // A read that starts after the write joins the same key.
    let second = tokio::spawn({
        let r = r.clone();
        async move { r.plan(request(read)).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    slow.add_permits(1);
    for reader in [first, second] {
        let plan = reader.await.unwrap().unwrap();
        let answer = r.redeem(&plan.ticket).await.unwrap();
        assert_eq!(values(answer.body).await, vec![1, 2], "rows from before the write were served");
    }
    assert_eq!(r.plan(request(read)).await.unwrap().cache, Outcome::Hit, "the fresh fill is cached");
}
