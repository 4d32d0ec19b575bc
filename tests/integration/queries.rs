use std::sync::atomic::Ordering;
use std::time::Duration;

use arrow::array::{AsArray, Int64Array};
use arrow::datatypes::{DataType, Schema, TimeUnit};
use arrow::ipc::convert::try_schema_from_ipc_buffer;
use arrow::util::pretty::pretty_format_batches;
use futures::StreamExt;

use crate::common::*;

/// Literal casts covering every mapped Trino type, plus a tpch table.
const TYPE_CORPUS: &[&str] = &[
    "SELECT true AS b, TINYINT '1' AS ti, SMALLINT '2' AS si, 3 AS i, BIGINT '4' AS bi, REAL '1.5' AS r, DOUBLE '2.5' AS d",
    "SELECT CAST('12.345' AS decimal(10,3)) AS d1, CAST('-99999999999999999999999999999999999999' AS decimal(38,0)) AS d38",
    "SELECT CAST('abc' AS varchar(10)) AS v, CAST('ab' AS char(4)) AS c, X'0aff' AS vb, JSON '[1,{\"a\":null}]' AS j",
    "SELECT DATE '2024-02-29' AS dt, TIME '12:34:56.789' AS t3, TIME '01:02:03.123456789012' AS t12",
    "SELECT TIMESTAMP '2024-01-31 12:34:56.123456' AS ts6, TIMESTAMP '2024-07-01 00:00:00.123 America/New_York' AS tz3, TIMESTAMP '2001-02-03 04:05:06.123456789012 +05:30' AS tz12",
    "SELECT INTERVAL '2' DAY AS ids, INTERVAL '13' MONTH AS iym, UUID '12151fd2-7586-11e9-8f9e-2a86e4085a59' AS u, IPADDRESS '192.168.0.1' AS ip",
    "SELECT ARRAY[1, NULL] AS a, MAP(ARRAY['k'], ARRAY[ARRAY[1.5E0]]) AS m, CAST(ROW(1, 'x') AS ROW(a bigint, \"b c\" varchar)) AS r, ROW(1, 2) AS anon",
    "SELECT CAST(NULL AS row(a array(map(varchar, integer)))) AS nested_null, approx_set(1) AS hll",
    "SELECT * FROM tpch.tiny.nation",
];

#[tokio::test]
async fn schemas_agree_across_flight_info_stream_and_prepare() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    for sql in TYPE_CORPUS {
        let (info, stream_schema, batches) = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        let info_schema: Schema = info.clone().try_decode_schema().unwrap();
        assert_eq!(&info_schema, stream_schema.as_ref(), "{sql}: FlightInfo schema equals the stream's");
        for f in info_schema.fields() {
            assert!(f.is_nullable(), "{sql}: {} nullable", f.name());
            assert!(f.metadata().contains_key("ARROW:FLIGHT:SQL:TYPE_NAME"), "{sql}: {} has a type name", f.name());
            assert!(!matches!(f.data_type(), DataType::Utf8View | DataType::BinaryView | DataType::ListView(_)));
        }
        assert!(rows(&batches) > 0, "{sql}");
        let prepared = c.prepare(sql).await.unwrap();
        let dataset = try_schema_from_ipc_buffer(&prepared.dataset_schema).unwrap();
        assert_eq!(dataset, info_schema, "{sql}: prepared dataset_schema equals the result schema");
        let pinfo = c.prepared_info(prepared.prepared_statement_handle.clone()).await.unwrap();
        let (pschema, pbatches) = c.fetch(pinfo.endpoint[0].ticket.clone().unwrap()).await.unwrap();
        assert_eq!(pschema.as_ref(), &dataset);
        assert_eq!(
            pretty_format_batches(&pbatches).unwrap().to_string(),
            pretty_format_batches(&batches).unwrap().to_string()
        );
        c.close_prepared(prepared.prepared_statement_handle).await.unwrap();
    }
}

#[tokio::test]
async fn values_come_back_as_trino_computed_them() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let (_, schema, batches) = c.query(TYPE_CORPUS[4]).await.unwrap();
    assert_eq!(schema.field(0).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
    assert_eq!(schema.field(2).data_type(), &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())));
    let b = &batches[0];
    // 2024-07-01 00:00:00.123 EDT is 04:00:00.123 UTC.
    assert_eq!(b.column(1).as_primitive::<arrow::datatypes::TimestampMillisecondType>().value(0), 1_719_806_400_123);
    // 04:05:06.123456789 at +05:30 is 22:35:06.123456789 UTC the day before.
    assert_eq!(
        b.column(2).as_primitive::<arrow::datatypes::TimestampNanosecondType>().value(0),
        981_153_306_123_456_789
    );
    let (_, _, batches) = c.query("SELECT sum(totalprice) AS s, count(*) AS n FROM tpch.tiny.orders").await.unwrap();
    let direct = trino_direct().execute(&session("check"), "SELECT count(*) FROM tpch.tiny.orders").await.unwrap().1;
    assert_eq!(
        batches[0].column(1).as_any().downcast_ref::<Int64Array>().unwrap().value(0),
        direct[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
    );
}

#[tokio::test]
async fn empty_result_has_an_endpoint_and_a_schema() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let (info, schema, batches) = c.query("SELECT * FROM tpch.tiny.nation WHERE nationkey < 0").await.unwrap();
    assert_eq!(info.endpoint.len(), 1);
    assert_eq!(schema.fields().len(), 4);
    assert_eq!(schema.field(1).name(), "name");
    assert_eq!(rows(&batches), 0);
}

#[tokio::test]
async fn updates_ddl_and_dml_return_counts() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let table = format!("memory.default.upd_{}", std::process::id());
    assert_eq!(c.update(&format!("CREATE TABLE {table} (id bigint, name varchar)")).await.unwrap(), 0);
    assert_eq!(c.update(&format!("INSERT INTO {table} VALUES (1, 'a'), (2, 'b')")).await.unwrap(), 2);
    // The prepared path, as the JDBC driver uses it: no dataset schema for DML.
    let prepared = c.prepare(&format!("INSERT INTO {table} VALUES (3, 'c')")).await.unwrap();
    assert!(try_schema_from_ipc_buffer(&prepared.dataset_schema).unwrap().fields().is_empty());
    assert_eq!(c.prepared_update(prepared.prepared_statement_handle).await.unwrap(), 1);
    let (_, _, batches) = c.query(&format!("SELECT count(*) FROM {table}")).await.unwrap();
    assert_eq!(batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0), 3);
    // DDL through the query path (what ADBC's execute does) yields an empty result.
    let (_, schema, batches) = c.query(&format!("DROP TABLE {table}")).await.unwrap();
    assert!(schema.fields().is_empty());
    assert_eq!(rows(&batches), 0);
}

#[tokio::test]
async fn million_rows_stream_with_backpressure() {
    let server = TestServer::uncached().await;
    let stats = server.trino.stats();
    let mut c = server.client().await;
    let info = c.info("SELECT orderkey, custkey FROM tpch.sf1.orders").await.unwrap();
    let mut stream = c.stream(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    let mut total = first.num_rows();
    // With the client not reading, Flightdeck must stop pulling pages from
    // Trino once its small prefetch and the transport windows are full.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let fetched_while_paused = stats.pages_fetched.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        stats.pages_fetched.load(Ordering::Relaxed),
        fetched_while_paused,
        "no pages pulled while the client waits"
    );
    let mut max_batch = first.get_array_memory_size();
    while let Some(b) = stream.next().await {
        let b = b.unwrap();
        max_batch = max_batch.max(b.get_array_memory_size());
        total += b.num_rows();
    }
    assert_eq!(total, 1_500_000);
    let pages = stats.pages_fetched.load(Ordering::Relaxed);
    assert!(
        pages > fetched_while_paused + 10,
        "the rest arrived after the pause ({fetched_while_paused} then {pages} pages)"
    );
    assert!(max_batch < 16 << 20, "batches stay page-sized, largest {max_batch} bytes");
}

#[tokio::test]
async fn ticket_is_served_by_another_replica_sharing_the_secret() {
    let mut config = uncached_config();
    config.flight.ticket_secret = Some("replica-shared-secret-0123456789abcdef".into());
    let a = TestServer::with_config(config.clone()).await;
    let b = TestServer::with_config(config).await;
    let info = a.client().await.info("SELECT name FROM tpch.tiny.region ORDER BY name").await.unwrap();
    let (_, batches) = b.client().await.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert_eq!(rows(&batches), 5);
    assert_eq!(batches[0].column(0).as_string::<i32>().value(0), "AFRICA");
    // The query started on `a` is still pending there and is cancelled when
    // its registry entry goes; `b` ran the statement again.
    assert_eq!(a.router.registry().len(), 1);
}

#[tokio::test]
async fn unclaimed_query_is_cancelled_and_its_ticket_runs_again() {
    let mut config = uncached_config();
    config.flight.pending_query_ttl = Duration::from_secs(1);
    let server = TestServer::with_config(config).await;
    let mut c = server.client().await;
    let marker = format!("unclaimed_{}", std::process::id());
    let info = c
        .info(&format!("SELECT orderkey, '{marker}' AS m FROM tpch.sf1.lineitem ORDER BY orderkey, linenumber LIMIT 3"))
        .await
        .unwrap();
    assert_eq!(server.router.registry().len(), 1);
    // Nobody calls DoGet: the entry expires and its Trino query is cancelled.
    let check = format!(
        "SELECT state, error_code FROM system.runtime.queries WHERE query LIKE '%{marker}%' AND query NOT LIKE '%system.runtime%'"
    );
    let mut seen = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (_, b) = trino_direct().execute(&session("check"), &check).await.unwrap();
        seen = pretty_format_batches(&b).unwrap().to_string();
        if seen.contains("USER_CANCELED") {
            break;
        }
    }
    assert!(seen.contains("USER_CANCELED"), "pending query was not cancelled:\n{seen}");
    assert_eq!(server.router.registry().len(), 0);
    // The ticket is still good: the statement runs again.
    let (_, batches) = c.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert_eq!(rows(&batches), 3);
}

#[tokio::test]
async fn bound_parameters_are_carried_by_the_handle() {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::Field;
    use std::sync::Arc;
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let sql = "SELECT name FROM tpch.tiny.nation WHERE nationkey = ? AND name <> ? ORDER BY name";
    let prepared = c.prepare(sql).await.unwrap();
    let params = try_schema_from_ipc_buffer(&prepared.parameter_schema).unwrap();
    assert_eq!(params.fields().len(), 2);
    assert_eq!(params.field(0).data_type(), &DataType::Int64);
    let schema =
        Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)]));
    let row = |k: i64, s: &str| {
        arrow::record_batch::RecordBatch::try_new(
            Arc::clone(&schema),
            vec![Arc::new(Int64Array::from(vec![k])), Arc::new(StringArray::from(vec![s]))],
        )
        .unwrap()
    };
    // Two bindings of one statement, used in turn: each keeps its own values.
    let canada = c.bind(prepared.prepared_statement_handle.clone(), row(3, "x")).await.unwrap();
    let egypt = c.bind(prepared.prepared_statement_handle.clone(), row(4, "it's")).await.unwrap();
    for (handle, want) in [(&canada, "CANADA"), (&egypt, "EGYPT"), (&canada, "CANADA")] {
        let info = c.prepared_info(handle.clone()).await.unwrap();
        let (_, batches) = c.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
        assert_eq!(batches[0].column(0).as_string::<i32>().value(0), want);
    }
    // Malformed bindings are refused.
    let two_rows = arrow::compute::concat_batches(&schema, &[row(1, "a"), row(2, "b")]).unwrap();
    let e = c.bind(prepared.prepared_statement_handle.clone(), two_rows).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    let one = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
    let short = arrow::record_batch::RecordBatch::try_new(one, vec![Arc::new(Int64Array::from(vec![1]))]).unwrap();
    let e = c.bind(prepared.prepared_statement_handle.clone(), short).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    assert!(e.message().contains("2 parameters"), "{e}");
}

#[tokio::test]
async fn trino_queries_wait_for_one_of_a_bounded_number_of_slots() {
    use flightdeck::trino::{Error, Session, TrinoClient, TrinoConfig};
    let mut config = TrinoConfig::new(trino_url().parse().unwrap());
    config.max_concurrent_queries = 1;
    // A query waits at most this long for a slot.
    config.request_timeout = Duration::from_secs(2);
    let client = TrinoClient::new(&config).unwrap();
    let session = Session { user: "slots".into(), ..Default::default() };
    let first = client.start(&session, "SELECT * FROM tpch.sf1.lineitem").await.unwrap();
    assert_eq!(client.running(), 1);
    let refused = client.start(&session, "SELECT 1").await.unwrap_err();
    assert!(matches!(refused, Error::Busy(_)), "{refused}");
    let (waiter, s) = (client.clone(), session.clone());
    let waiting = tokio::spawn(async move { waiter.execute(&s, "SELECT 1").await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "ran beside the first query");
    // Dropping the first (which cancels it) hands its slot on.
    drop(first);
    waiting.await.unwrap().unwrap();
    assert_eq!(client.running(), 0, "a finished query gives its slot back");
}
