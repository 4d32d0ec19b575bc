//! The defects of "nothing run twice, nothing wrong, nothing leaked", each
//! against the real Trino, varied over the inputs that hid them.

use std::time::Duration;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Field, Schema};
use arrow::record_batch::RecordBatch;
use flightdeck::config::Config;
use tonic::Code;

use crate::common::*;

/// The rows of `table`, counted on Trino directly.
async fn count_rows(table: &str) -> i64 {
    let (_, b) = trino_direct().execute(&session("check"), &format!("SELECT count(*) FROM {table}")).await.unwrap();
    b[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0)
}

/// Two replicas sharing a secret, each with a one-entry registry whose
/// entries expire after a second.
async fn replicas() -> (TestServer, TestServer) {
    let mut config = Config::for_trino(&trino_url());
    config.flight.ticket_secret = Some("a secret shared by both replicas of this test".into());
    config.flight.pending_queries = 1;
    config.flight.pending_query_ttl = Duration::from_secs(1);
    (TestServer::with_config(config.clone()).await, TestServer::with_config(config).await)
}

#[tokio::test]
async fn a_write_runs_once_whatever_happens_to_its_ticket() {
    let (a, b) = replicas().await;
    let (mut ca, mut cb) = (a.client().await, b.client().await);
    for (i, write) in [
        "INSERT INTO {t} VALUES 1",
        "insert into {t} select 1",
        "/* a comment first */ INSERT INTO {t} VALUES (1)",
        "-- a line comment\r\nINSERT INTO {t} VALUES 1",
        "EXECUTE IMMEDIATE 'INSERT INTO {t} VALUES 1'",
    ]
    .iter()
    .enumerate()
    {
        let table = format!("memory.default.{}", marker(&format!("once{i}")));
        ca.update(&format!("CREATE TABLE {table} (x integer)")).await.unwrap();
        let write = write.replace("{t}", &table);
        let info = ca.info(&write).await.unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let expect = |batches: &[RecordBatch]| {
            assert_eq!(rows(batches), 1, "{write}: one row, the count");
            assert_eq!(batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 1, "{write}");
        };
        // A client retrying DoGet, on this replica and the other one.
        for _ in 0..3 {
            expect(&ca.fetch(ticket.clone()).await.unwrap().1);
        }
        expect(&cb.fetch(ticket.clone()).await.unwrap().1);
        // The registry full, then past its time to live.
        for _ in 0..3 {
            ca.info("SELECT 1").await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        expect(&ca.fetch(ticket.clone()).await.unwrap().1);
        assert_eq!(count_rows(&table).await, 1, "{write} ran exactly once");
        ca.update(&format!("DROP TABLE {table}")).await.unwrap();
    }
}

#[tokio::test]
async fn a_large_answer_of_a_statement_that_may_write_is_streamed_once_never_rerun() {
    let (a, b) = replicas().await;
    let (mut ca, mut cb) = (a.client().await, b.client().await);
    let m = marker("exec_immediate");
    // EXECUTE IMMEDIATE may hide a write; its answer is too large for a ticket.
    let sql = format!("EXECUTE IMMEDIATE 'SELECT orderkey, comment, ''{m}'' FROM tpch.tiny.orders'");
    let info = ca.info(&sql).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let other = cb.fetch(ticket.clone()).await.unwrap_err();
    assert_eq!(other.code(), Code::FailedPrecondition, "{other}");
    assert_eq!(rows(&ca.fetch(ticket.clone()).await.unwrap().1), 15_000);
    let again = ca.fetch(ticket).await.unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again}");
    assert_eq!(trino_queries_containing(&m).await, 1, "submitted once");
}

#[tokio::test]
async fn bound_temporal_parameters_keep_their_exact_value_or_are_refused() {
    use arrow::array::{Date32Array, Time64MicrosecondArray, TimestampMicrosecondArray, TimestampNanosecondArray};
    use std::sync::Arc;
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let cases: Vec<(Arc<dyn Array>, &str)> = vec![
        // 9999-12-31 23:59:59.999999: once bound as 1816-03-30.
        (Arc::new(TimestampMicrosecondArray::from(vec![253_402_300_799_999_999])), "9999-12-31 23:59:59.999999"),
        (Arc::new(TimestampMicrosecondArray::from(vec![-62_135_596_800_000_000])), "0001-01-01 00:00:00.000000"),
        (Arc::new(TimestampMicrosecondArray::from(vec![-1])), "1969-12-31 23:59:59.999999"),
        (Arc::new(TimestampNanosecondArray::from(vec![i64::MAX])), "2262-04-11 23:47:16.854775807"),
        (Arc::new(TimestampNanosecondArray::from(vec![i64::MIN])), "1677-09-21 00:12:43.145224192"),
        (Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")), "1970-01-01 00:00:00.000000 UTC"),
        (Arc::new(Date32Array::from(vec![2_932_896])), "9999-12-31"),
        (Arc::new(Date32Array::from(vec![-719_162])), "0001-01-01"),
        // Trino writes the literal `+10000-01-01` and casts it to this.
        (Arc::new(Date32Array::from(vec![2_932_897])), "10000-01-01"),
        (Arc::new(Time64MicrosecondArray::from(vec![86_399_999_999])), "23:59:59.999999"),
    ];
    let prepared = c.prepare("SELECT CAST(? AS varchar)").await.unwrap();
    for (array, want) in cases {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("p", array.data_type().clone(), true)])),
            vec![array],
        )
        .unwrap();
        let handle = c.bind(prepared.prepared_statement_handle.clone(), batch).await.unwrap();
        let info = c.prepared_info(handle).await.unwrap();
        let (_, b) = c.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
        assert_eq!(b[0].column(0).as_string::<i32>().value(0), want);
    }
    // Values no Trino literal can hold are refused, not bound as others.
    for array in [
        Arc::new(arrow::array::TimestampSecondArray::from(vec![i64::MAX])) as Arc<dyn Array>,
        Arc::new(Date32Array::from(vec![i32::MAX])),
        Arc::new(Time64MicrosecondArray::from(vec![86_400_000_000])),
    ] {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("p", array.data_type().clone(), true)])),
            vec![array],
        )
        .unwrap();
        let e = c.bind(prepared.prepared_statement_handle.clone(), batch).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    }
}

#[tokio::test]
async fn type_names_are_trinos_own_type_strings() {
    let server = TestServer::uncached().await;
    let mut c = server.client().await;
    let sql = "SELECT CAST(NULL AS ROW(id bigint, \"select\" integer, \"a.b\" integer, \"ID2\" integer, \"1a\" integer, \
               a_b integer, \"a$b\" integer, \"a\"\"q\" integer, \"x y\" integer, \"année\" integer, \"_x\" integer, \
               \"from\" varchar, nested ROW(\"Weird Name\" integer, ok double))) AS r, \
               CAST(NULL AS MAP(varchar, ROW(\"table\" integer))) AS m, ARRAY[ROW(1, 'x')] AS a, \
               CAST(NULL AS TIMESTAMP(6) WITH TIME ZONE) AS ts, CAST(NULL AS decimal(12,3)) AS d";
    // Trino's own `type` strings, as its clients see them.
    let trino_types = trino_column_types(sql).await;
    let (info, schema, _) = c.query(sql).await.unwrap();
    let prepared = c.prepare(sql).await.unwrap();
    let prepared_schema = arrow::ipc::convert::try_schema_from_ipc_buffer(&prepared.dataset_schema).unwrap();
    let info_schema: Schema = info.try_decode_schema().unwrap();
    for s in [schema.as_ref(), &info_schema, &prepared_schema] {
        let names: Vec<String> =
            s.fields().iter().map(|f| f.metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"].clone()).collect();
        assert_eq!(names, trino_types);
    }
}

/// The `columns[].type` strings Trino's REST protocol reports for `sql`.
async fn trino_column_types(sql: &str) -> Vec<String> {
    let http = reqwest::Client::new();
    let json = |b: bytes::Bytes| serde_json::from_slice::<serde_json::Value>(&b).unwrap();
    let mut page = json(
        http.post(format!("{}/v1/statement", trino_url()))
            .header("X-Trino-User", "check")
            // As Flightdeck and Trino's own clients ask, for `timestamp(6)`.
            .header("X-Trino-Client-Capabilities", "PARAMETRIC_DATETIME")
            .body(sql.to_string())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    );
    loop {
        if let Some(cols) = page.get("columns") {
            return cols.as_array().unwrap().iter().map(|c| c["type"].as_str().unwrap().to_string()).collect();
        }
        let next = page["nextUri"].as_str().expect("columns before the end").to_string();
        page = json(http.get(next).send().await.unwrap().bytes().await.unwrap());
    }
}

/// Pairs of statements Trino reads differently: the second must never be
/// answered with the first one's cached result.
const READ_DIFFERENTLY: &[(&str, &str)] = &[
    ("SELECT name FROM tpch.tiny.nation ORDER BY name", "SELECT name FROM tpch.tiny.nation ORDER BY name --x\rLIMIT 2"),
    (
        "SELECT name FROM tpch.tiny.nation ORDER BY name /* /* */ LIMIT 3 -- */",
        "SELECT name FROM tpch.tiny.nation ORDER BY name /* /* */ LIMIT 3 -- */\nLIMIT 1",
    ),
    ("SELECT 1 AS foo", "SELECT 1 AS Foo"),
    ("SELECT '--' AS a", "SELECT '--\r' AS a"),
    ("SELECT 'a' AS \"x--y\"", "SELECT 'a' AS \"x\"--y\"\n"),
    ("SELECT U&'\\0041' AS a", "SELECT '\\0041' AS a"),
    ("SELECT X'41' AS a", "SELECT '41' AS a"),
    ("SELECT 'a\r\nb' AS a", "SELECT 'a\nb' AS a"),
    ("SELECT 1 AS a", "SELECT 1 AS a;"),
];

#[tokio::test]
async fn statements_trino_reads_differently_never_share_a_cache_entry() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let direct = trino_direct();
    for (first, second) in READ_DIFFERENTLY {
        let _ = c.query(first).await;
        let through = c.query(second).await;
        let trino = direct.execute(&session("check"), second).await;
        match (through, trino) {
            (Ok((_, schema, got)), Ok((want_schema, want))) => {
                let names = |s: &Schema| s.fields().iter().map(|f| f.name().clone()).collect::<Vec<_>>();
                assert_eq!(names(&schema), names(&want_schema), "{second:?}: column names");
                assert_eq!(
                    arrow::util::pretty::pretty_format_batches(&got).unwrap().to_string(),
                    arrow::util::pretty::pretty_format_batches(&want).unwrap().to_string(),
                    "{second:?}"
                );
            }
            (Err(_), Err(_)) => {}
            (got, want) => panic!("{second:?}: Flightdeck {:?}, Trino {:?}", got.map(|r| r.2), want.map(|r| r.1)),
        }
    }
}

/// The `x-trino-error-location` of a failed call, and its message.
fn located(e: &tonic::Status) -> (String, String) {
    let loc = e.metadata().get("x-trino-error-location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (loc, e.message().to_string())
}

/// Trino's own position for `sql`, as `line:column`.
async fn trino_location(sql: &str) -> String {
    match trino_direct().execute(&session("check"), sql).await {
        Err(flightdeck::trino::Error::Query(q)) => {
            let l = q.error_location.expect("Trino gives a position");
            format!("{}:{}", l.line_number, l.column_number)
        }
        other => panic!("{sql}: expected a query error, got {:?}", other.map(|r| r.1)),
    }
}

#[tokio::test]
async fn error_positions_point_into_the_clients_text() {
    use std::sync::Arc;
    let server = TestServer::uncached().await;
    let mut c = server.client().await;
    for sql in ["SELEC 1", "SELECT 1 FRO t", "SELECT 'é', x\r\nFRO t", "  \tSELECT 1 +", "SELECT 1 --c\rFRO t"] {
        let want = trino_location(sql).await;
        for e in [c.prepare(sql).await.unwrap_err(), c.info(sql).await.unwrap_err()] {
            let (loc, message) = located(&e);
            assert_eq!(loc, want, "{sql:?}: {message}");
            assert!(message.contains(&format!("line {want}: ")), "{sql:?}: {message}");
        }
    }
    // Bound parameters are longer than their `?`: positions after them
    // still point into the statement as the client wrote it.
    let sql = "SELECT ?, 'é' AS x\r\n FROM (VALUES 1) t(v) WHERE 'a' = ?";
    let want = trino_location(&sql.replace('?', "1")).await;
    let prepared = c.prepare(sql).await.unwrap();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("a", arrow::datatypes::DataType::Int64, true),
            Field::new("b", arrow::datatypes::DataType::Int64, true),
        ])),
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![1234567])),
            Arc::new(arrow::array::Int64Array::from(vec![5])),
        ],
    )
    .unwrap();
    let handle = c.bind(prepared.prepared_statement_handle, batch).await.unwrap();
    let e = c.prepared_info(handle).await.unwrap_err();
    let (loc, message) = located(&e);
    assert_eq!(loc, want, "{message}");
    assert!(message.contains(&format!("line {want}: ")), "{message}");
}

/// The first column of every row, as text.
fn texts(batches: &[RecordBatch]) -> Vec<String> {
    let mut out = Vec::new();
    for b in batches {
        let col = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        out.extend(col.as_string::<i32>().iter().map(|v| v.unwrap_or("NULL").to_string()));
    }
    out
}

#[tokio::test]
async fn writes_drop_every_entry_that_read_what_they_changed() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let m = marker("inval");
    let (base, view) = (format!("memory.default.{m}_base"), format!("memory.default.{m}_view"));
    c.update(&format!("CREATE TABLE {base} AS SELECT 1 AS x")).await.unwrap();
    c.update(&format!("CREATE VIEW {view} SECURITY INVOKER AS SELECT count(*) AS n FROM {base}")).await.unwrap();
    let reads = [
        format!("SELECT n FROM {view}"),
        format!("SELECT count(*) FROM (TABLE {base})"),
        format!("SELECT count(*) FROM {base} -- a comment\r"),
    ];
    for sql in &reads {
        assert_eq!(texts(&c.query_cached(sql, None).await.unwrap().1), ["1"], "{sql}");
        assert_eq!(c.query_cached(sql, None).await.unwrap().0, "hit", "{sql}: cached");
    }
    // A write to the base table reaches entries that read it through a view.
    c.update(&format!("INSERT INTO {base} VALUES 2")).await.unwrap();
    for sql in &reads {
        assert_eq!(texts(&c.query_cached(sql, None).await.unwrap().1), ["2"], "{sql} after the insert");
    }
    // Replacing the view reaches entries that read it.
    c.update(&format!("CREATE OR REPLACE VIEW {view} AS SELECT BIGINT '42' AS n")).await.unwrap();
    assert_eq!(texts(&c.query_cached(&reads[0], None).await.unwrap().1), ["42"]);
    // A write through GetFlightInfo, with a comment Trino ends at `\r`.
    let (info, _) = c.info_cached(&format!("-- c\rINSERT INTO {base} VALUES 3"), None).await.unwrap();
    c.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert_eq!(texts(&c.query_cached(&reads[2], None).await.unwrap().1), ["3"]);
    c.update(&format!("DROP VIEW {view}")).await.unwrap();
    c.update(&format!("DROP TABLE {base}")).await.unwrap();
}

#[tokio::test]
async fn shared_namespaces_share_only_what_trino_proves_is_the_same_for_everyone() {
    let m = marker("sh");
    let schema = format!("memory.{m}");
    let mut config = Config::for_trino(&trino_url());
    config.cache.shared_namespaces = vec!["tpch".into(), schema.clone()];
    let server = TestServer::with_config(config).await;
    let base = server.client().await;
    let (mut alice, mut bob, mut restricted) = (base.as_user("alice"), base.as_user("bob"), base.as_user("restricted"));
    alice.update(&format!("CREATE SCHEMA {schema}")).await.unwrap();
    alice.update(&format!("CREATE TABLE {schema}.t AS SELECT * FROM (VALUES 'alice', 'bob') v(owner)")).await.unwrap();
    alice
        .update(&format!(
            "CREATE VIEW {schema}.mine SECURITY INVOKER AS SELECT owner FROM {schema}.t WHERE owner = current_user"
        ))
        .await
        .unwrap();
    // A plain shared table is shared.
    let plain = format!("SELECT owner FROM {schema}.t ORDER BY 1");
    assert_eq!(alice.query_cached(&plain, None).await.unwrap().0, "miss");
    assert_eq!(bob.query_cached(&plain, None).await.unwrap().0, "hit", "shared between users");
    // A view that filters on the user is not, although it lies in the namespace.
    let mine = format!("SELECT owner FROM {schema}.mine");
    assert_eq!(texts(&alice.query_cached(&mine, None).await.unwrap().1), ["alice"]);
    assert_eq!(texts(&bob.query_cached(&mine, None).await.unwrap().1), ["bob"]);
    assert_eq!(texts(&alice.query_cached(&mine, None).await.unwrap().1), ["alice"]);
    // information_schema answers per user (Trino filters it by access):
    // each user's listing comes from Trino as that user, never another's.
    let listing = "SELECT table_name FROM tpch.information_schema.tables WHERE table_schema = 'tiny' ORDER BY 1";
    assert_eq!(alice.query_cached(listing, None).await.unwrap().0, "miss");
    let (outcome, seen) = restricted.query_cached(listing, None).await.unwrap();
    assert_eq!(outcome, "miss", "not shared");
    let (_, own) = trino_direct().execute(&session("restricted"), listing).await.unwrap();
    assert_eq!(texts(&seen), texts(&own));
    // `TABLE t` and table functions are checked by Trino's account too.
    let table = format!("SELECT * FROM (TABLE {schema}.t) ORDER BY 1");
    let _ = alice.query_cached(&table, None).await.unwrap();
    assert_eq!(texts(&bob.query_cached(&table, None).await.unwrap().1), ["alice", "bob"]);
    for sql in [format!("DROP VIEW {schema}.mine"), format!("DROP TABLE {schema}.t"), format!("DROP SCHEMA {schema}")] {
        alice.update(&sql).await.unwrap();
    }
}

#[tokio::test]
async fn credentials_expire_and_are_checked_again() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), &[("alice", "s3cret"), ("bob", "b0b:=x")]);
    let mut args = password_args(users.clone());
    args.auth.token_ttl_secs = Some(Duration::from_secs(3));
    args.auth.session_ttl_secs = Some(Duration::from_secs(3));
    let server = TestServer::with_config(Config::resolve(&args).unwrap()).await;
    let mut alice = server.client().await;
    let token = alice.handshake("alice", "s3cret").await.unwrap();
    let prepared = alice.prepare("SELECT 1").await.unwrap();
    // Renewing through Handshake with the token never extends it.
    let mut renewed = server.client().await;
    renewed.authorization = Some(format!("Bearer {token}"));
    let mut req = tonic::Request::new(futures::stream::iter([arrow_flight::HandshakeRequest::default()]));
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let resp = renewed.inner.handshake(req).await.unwrap();
    let renewed_token = resp.metadata().get("authorization").unwrap().to_str().unwrap().to_string();
    renewed.authorization = Some(renewed_token);
    renewed.info("SELECT 1").await.unwrap();
    // A user removed from the users file is refused at once, token or not.
    let mut bob = server.client().await;
    bob.handshake("bob", "b0b:=x").await.unwrap();
    bob.info("SELECT 1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    users_file(dir.path(), &[("alice", "s3cret")]);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let e = bob.info("SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    assert_eq!(bob.handshake("bob", "b0b:=x").await.unwrap_err().code(), Code::Unauthenticated);
    // Past the lifetimes: the renewed token, and the handle, are refused.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in [&mut alice, &mut renewed] {
        let e = c.info("SELECT 1").await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{e}");
    }
    alice.handshake("alice", "s3cret").await.unwrap();
    let e = alice.prepared_info(prepared.prepared_statement_handle).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    assert!(e.message().contains("expired"), "{e}");
}

#[tokio::test]
async fn strangers_are_refused_before_their_message_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), &[("alice", "s3cret")]);
    let server = TestServer::with_config(Config::resolve(&password_args(users)).unwrap()).await;
    let mut c = server.client().await;
    c.inner = c.inner.max_encoding_message_size(200 << 20);
    // Larger than any message the server decodes: had it been read first,
    // the answer would be "message too large", not "who are you".
    let huge = format!("SELECT '{}'", "x".repeat(100 << 20));
    for auth in [None, Some("Bearer forged".to_string()), Some("Basic YWxpY2U6czNjcmV0".to_string())] {
        c.authorization = auth.clone();
        let e = c.info(&huge).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{auth:?}: {e}");
    }
}

#[test]
fn password_auth_is_refused_on_plain_grpc_off_loopback_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), &[("alice", "s3cret")]);
    let mut args = password_args(users);
    args.flight.listen = Some("0.0.0.0:0".parse().unwrap());
    let errors = Config::resolve(&args).unwrap_err();
    assert!(errors.iter().any(|e| e.contains("clear text")), "{errors:?}");
    args.auth.allow_insecure_password = Some(true);
    assert!(Config::resolve(&args).is_ok());
    args.auth.allow_insecure_password = None;
    args.flight.listen = Some("127.0.0.1:0".parse().unwrap());
    assert!(Config::resolve(&args).is_ok(), "loopback is fine");
}

#[tokio::test]
async fn user_names_reach_trino_as_written_or_are_refused() {
    let server = TestServer::uncached().await;
    let c = server.client().await;
    let (_, b) = c.as_user("josé").query_cached("SELECT current_user", None).await.unwrap();
    assert_eq!(texts(&b), ["josé"]);
    let e = c.as_user("用户").query_cached("SELECT current_user", None).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
}

#[tokio::test]
async fn one_user_cannot_fill_the_registry_or_push_out_others() {
    let mut config = Config::for_trino(&trino_url());
    config.cache.enabled = false;
    config.flight.pending_queries = 4;
    config.flight.pending_queries_per_user = 3;
    let server = TestServer::with_config(config).await;
    let base = server.client().await;
    let (mut alice, mut bob) = (base.as_user("alice"), base.as_user("bob"));
    let m = marker("registry");
    let bob_sql = format!("SELECT '{m}' AS bob");
    let bob_info = bob.info(&bob_sql).await.unwrap();
    for i in 0..3 {
        alice.info(&format!("SELECT {i} AS alice")).await.unwrap();
    }
    // Alice is at her limit: refused, nobody else's query is touched.
    let e = alice.info("SELECT 'one too many'").await.unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted, "{e}");
    // The registry is full: Bob's next query pushes out Alice's oldest, not his own.
    bob.info("SELECT 'bob again'").await.unwrap();
    assert_eq!(server.router.registry().len(), 4);
    let (_, b) = bob.fetch(bob_info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert_eq!(texts(&b), std::slice::from_ref(&m));
    assert_eq!(trino_queries_containing(&m).await, 1, "Bob's parked query was streamed, not run again");
}

#[tokio::test]
async fn buffered_results_stay_within_the_memory_budget() {
    let mut config = Config::for_trino(&trino_url());
    config.flight.memory_budget = 1 << 20;
    let server = TestServer::with_config(config).await;
    let mut c = server.client().await;
    // A cache fill, and the answer of a statement that may write, both
    // larger than the budget: refused clearly, and nothing stays reserved.
    for sql in [
        "SELECT orderkey, comment FROM tpch.tiny.orders",
        "EXECUTE IMMEDIATE 'SELECT orderkey, comment FROM tpch.tiny.orders'",
    ] {
        let e = c.query(sql).await.unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{sql}: {e}");
        assert!(e.message().contains("memory budget"), "{e}");
        assert_eq!(server.router.memory().used(), 0, "{sql}: reservations given back");
    }
    // Small answers still work.
    assert_eq!(rows(&c.query("SELECT * FROM tpch.tiny.nation").await.unwrap().2), 25);
    assert_eq!(server.router.memory().used(), 0);
}

/// GetFlightInfo's `x-flightdeck-cache` and `x-flightdeck-age`.
async fn cache_answer(
    c: &mut Client,
    sql: &str,
    directive: Option<&str>,
) -> Result<(String, Option<u64>), tonic::Status> {
    use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
    use prost::Message;
    let d = arrow_flight::FlightDescriptor::new_cmd(
        CommandStatementQuery { query: sql.into(), transaction_id: None }.as_any().encode_to_vec(),
    );
    let mut req = c.request(d);
    if let Some(v) = directive {
        req.metadata_mut().insert("x-flightdeck-cache", v.parse().unwrap());
    }
    let resp = c.inner.get_flight_info(req).await?;
    let md = resp.metadata();
    let outcome = md.get("x-flightdeck-cache").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let age = md.get("x-flightdeck-age").map(|v| v.to_str().unwrap().parse().unwrap());
    Ok((outcome, age))
}

#[tokio::test]
async fn stale_answers_when_trino_is_down_if_allowed() {
    let target: std::net::SocketAddr = trino_url().trim_start_matches("http://").parse().unwrap();
    let proxy = SwitchProxy::start(target).await;
    let mut config = Config::for_trino(&format!("http://{}", proxy.addr));
    config.cache.ttl = Duration::from_secs(1);
    config.cache.stale_while_revalidate = Duration::ZERO;
    config.cache.stale_if_error = Duration::from_secs(30);
    let server = TestServer::with_config(config).await;
    let mut c = server.client().await;
    let sql = format!("SELECT '{}' AS m", marker("stale_if_error"));
    assert_eq!(cache_answer(&mut c, &sql, None).await.unwrap(), ("miss".into(), Some(0)));
    tokio::time::sleep(Duration::from_millis(2100)).await;
    proxy.switch_off();
    // Past its freshness, Trino gone: served marked stale, with its age.
    let (outcome, age) = cache_answer(&mut c, &sql, None).await.unwrap();
    assert_eq!(outcome, "stale");
    assert!(age.unwrap() >= 2, "{age:?}");
    // A request may ask for less than the operator allows.
    let e = cache_answer(&mut c, &sql, Some("max-stale=0")).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    // A statement never cached still fails clearly.
    let e = cache_answer(&mut c, "SELECT 'never seen'", None).await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    proxy.switch_on();
    assert_eq!(cache_answer(&mut c, &sql, None).await.unwrap().0, "miss", "refreshed once Trino is back");
}

#[tokio::test]
async fn a_statement_trino_may_have_accepted_is_never_submitted_again() {
    let target: std::net::SocketAddr = trino_url().trim_start_matches("http://").parse().unwrap();
    for status in ["502 Bad Gateway", "504 Gateway Timeout"] {
        let gateway = LosingGateway::start(target, status).await;
        let mut config = Config::for_trino(&format!("http://{}", gateway.addr));
        config.cache.enabled = false;
        let server = TestServer::with_config(config).await;
        let e = server.client().await.info("SELECT 1").await.unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "{status}: {e}");
        // Trino got the submission; sending it again could run it twice
        // behind a gateway that dispatches on submission.
        assert_eq!(gateway.posts.load(std::sync::atomic::Ordering::SeqCst), 1, "{status}: submitted once");
    }
}

#[tokio::test]
async fn a_trino_that_never_answers_times_out() {
    // Accepts connections and never answers, like a hung coordinator.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let mut config = Config::for_trino(&format!("http://{addr}"));
    config.trino.client.request_timeout = Duration::from_secs(1);
    let server = TestServer::with_config(config).await;
    let e = tokio::time::timeout(Duration::from_secs(20), server.client().await.info("SELECT 1"))
        .await
        .expect("an answer, not a hang")
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    held.abort();
}
