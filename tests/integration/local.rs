//! The local route end to end: which statements it answers, for whom, with
//! the result cache in front of it.

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use flightdeck::accel::{Access, DatasetConfig};
use tonic::Code;

use crate::common::*;

fn dataset(table: &str, access: Access) -> DatasetConfig {
    DatasetConfig { access, ..DatasetConfig::full(table) }
}

fn pair(route: &str, cache: &str) -> (String, String) {
    (route.to_string(), cache.to_string())
}

/// The text of a one-cell answer, such as an `EXPLAIN`'s.
fn text(batches: &[arrow::record_batch::RecordBatch]) -> String {
    batches[0].column(0).as_string::<i32>().value(0).to_string()
}

fn pretty(batches: &[arrow::record_batch::RecordBatch]) -> String {
    arrow::util::pretty::pretty_format_batches(batches).unwrap().to_string()
}

/// Asserts that `sql` is answered locally, with Trino's answer.
async fn local_as_trino(c: &mut Client, sql: &str) {
    let (route, _, got) = c.routed(sql).await.unwrap();
    assert_eq!(route, "local", "{sql}");
    let (_, want) = trino_direct().execute(&session("test"), sql).await.unwrap();
    assert_eq!(pretty(&got), pretty(&want), "{sql}");
}

/// The access checks Flightdeck made as `user`, from Trino's list of
/// queries: when each was created and when it ended (NULL while it runs),
/// in milliseconds since the epoch.
async fn access_checks(user: &str) -> Vec<(i64, Option<i64>)> {
    let sql = format!(
        "SELECT CAST(to_unixtime(created) * 1000 AS bigint), CAST(to_unixtime(\"end\") * 1000 AS bigint) \
         FROM system.runtime.queries WHERE \"user\" = '{user}' AND query LIKE '%LIMIT 0'"
    );
    let (_, batches) = trino_direct().execute(&session("check"), &sql).await.unwrap();
    let mut checks = Vec::new();
    for b in &batches {
        let (created, ended) = (b.column(0).as_primitive::<Int64Type>(), b.column(1).as_primitive::<Int64Type>());
        checks.extend((0..b.num_rows()).map(|i| (created.value(i), ended.is_valid(i).then(|| ended.value(i)))));
    }
    checks
}

/// A server holding `tpch.tiny.orders` sorted by `orderdate`.
async fn orders_by_date() -> TestServer {
    let orders = DatasetConfig { time_column: Some("orderdate".into()), ..dataset("tpch.tiny.orders", Access::All) };
    TestServer::with_datasets(vec![orders]).await
}

#[tokio::test]
async fn a_loaded_dataset_answers_locally_behind_the_cache_and_other_tables_go_to_trino() {
    let server = TestServer::with_datasets(vec![dataset("tpch.tiny.nation", Access::All)]).await;
    let mut c = server.client().await;
    let sql = "SELECT regionkey, count(*) AS n FROM tpch.tiny.nation GROUP BY regionkey ORDER BY regionkey";
    assert_eq!(c.routes(sql).await.unwrap(), [pair("local", "miss"), pair("local", "miss")]);
    // A repeat is a cache hit.
    assert_eq!(c.routes(sql).await.unwrap(), [pair("cache", "hit"), pair("cache", "hit")]);
    // `no-cache` skips the cache, not the local route.
    let (route, schema, batches) = c.routed(sql).await.unwrap();
    assert_eq!(route, "local");
    assert_eq!(schema.field(1).metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"], "bigint");
    assert_eq!(rows(&batches), 5);
    // Relative names resolve in the session's catalog and schema.
    let mut ns = server.client().await;
    ns.info("USE tpch.tiny").await.unwrap();
    assert_eq!(ns.routed("SELECT count(*) FROM nation").await.unwrap().0, "local");
    // Superset's spelling: a column aliased to its own name, grouped by it.
    let superset = "SELECT regionkey AS regionkey, count(*) AS count FROM tpch.tiny.nation GROUP BY regionkey";
    assert_eq!(c.routed(superset).await.unwrap().0, "local");
    // A `;`, or LIMIT before OFFSET, is Trino's syntax error, dataset or not.
    for (sql, token) in [
        ("SELECT count(*) FROM tpch.tiny.nation;", "';'"),
        ("SELECT count(*) FROM tpch.tiny.nation ;\r\n", "';'"),
        ("SELECT name FROM tpch.tiny.nation ORDER BY name LIMIT 5 OFFSET 2", "'OFFSET'"),
    ] {
        let e = c.query(sql).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{sql:?}: {e:?}");
        assert!(e.message().contains("SYNTAX_ERROR") && e.message().contains(token), "{sql:?}: {e:?}");
    }
    let (route, _, b) = c.routed("SELECT name FROM tpch.tiny.nation ORDER BY name OFFSET 2 LIMIT 5").await.unwrap();
    assert_eq!((route.as_str(), rows(&b)), ("local", 5));
    // A table that is no dataset, and a construct off the allowlist.
    assert_eq!(c.routed("SELECT count(*) FROM tpch.tiny.region").await.unwrap().0, "trino");
    assert_eq!(c.routed("SELECT max(upper(name)) FROM tpch.tiny.nation").await.unwrap().0, "trino");
    let metrics = reqwest::get(format!("http://{}/metrics", server.admin)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("flightdeck_local_refusals_total{reason=\"relation\"}"), "{metrics}");
    assert!(metrics.contains("flightdeck_local_refusals_total{reason=\"function\"}"), "{metrics}");
}

#[tokio::test]
async fn a_user_trino_denies_is_answered_by_trino_never_from_the_dataset() {
    let server = TestServer::with_datasets(vec![dataset("tpch.tiny.customer", Access::Trino)]).await;
    let sql = "SELECT count(*) AS n FROM tpch.tiny.customer";
    let mut reader = server.client().await.as_user(&marker("reader"));
    assert_eq!(reader.routed(sql).await.unwrap().0, "local");
    // Trino's rules deny `restricted` the table: Trino's own error, no rows.
    let mut restricted = server.client().await.as_user("restricted");
    let denied = restricted.routed(sql).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert!(denied.message().contains("Access Denied"), "{denied:?}");
    // Not from the cache either: the reader's answer is the reader's.
    let denied = restricted.query_cached(sql, None).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
}

#[tokio::test]
async fn explain_tells_the_route_and_why_not_local() {
    let server = TestServer::with_datasets(vec![dataset("tpch.tiny.nation", Access::All)]).await;
    let mut c = server.client().await;
    let (_, schema, b) = c.query("EXPLAIN SELECT regionkey, count(*) FROM tpch.tiny.nation GROUP BY 1").await.unwrap();
    assert_eq!(schema.field(0).name(), "Query Plan");
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: local"), "{plan}");
    assert!(plan.contains("AggregateExec"), "DataFusion's plan follows: {plan}");
    let (_, _, b) = c.query("EXPLAIN SELECT max(upper(name)) FROM tpch.tiny.nation").await.unwrap();
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: trino, because function: upper"), "{plan}");
    assert!(plan.contains("Output["), "Trino's plan follows: {plan}");
    // EXPLAIN ANALYZE runs on Trino as it is.
    let (_, _, b) = c.query("EXPLAIN ANALYZE SELECT count(*) FROM tpch.tiny.nation").await.unwrap();
    assert!(!text(&b).contains("Flightdeck route"));
}

#[tokio::test]
async fn a_range_on_the_time_column_is_met_by_the_scan_with_trinos_answer() {
    let server = orders_by_date().await;
    let mut c = server.client().await;
    let range = "orderdate >= DATE '1995-01-01' AND orderdate < DATE '1995-02-01'";
    let (_, _, b) = c.query(&format!("EXPLAIN SELECT count(*) FROM tpch.tiny.orders WHERE {range}")).await.unwrap();
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: local"), "{plan}");
    assert!(!plan.contains("FilterExec"), "the range needs no filter: {plan}");
    let (_, _, b) = c
        .query(&format!("EXPLAIN SELECT count(*) FROM tpch.tiny.orders WHERE {range} AND orderstatus = 'F'"))
        .await
        .unwrap();
    let plan = text(&b);
    assert!(plan.contains("FilterExec: orderstatus"), "other filters still run: {plan}");
    assert!(!plan.contains("orderdate@"), "but not the range: {plan}");
    // Answers equal Trino's, at the edges of the data and past them.
    for filter in [
        range.to_string(),
        format!("{range} AND orderstatus = 'F'"),
        "orderdate = DATE '1992-01-01'".into(),
        "orderdate BETWEEN DATE '1998-08-01' AND DATE '1998-08-02'".into(),
        "orderdate > DATE '1998-08-02'".into(),
        "orderdate <= DATE '1992-01-01'".into(),
        "orderdate < DATE '1992-01-01'".into(),
        "DATE '1996-06-30' < orderdate AND orderdate <= DATE '1996-07-31' OR orderkey = 1".into(),
        "orderdate >= DATE '1994-01-01' AND orderdate < DATE '1993-01-01'".into(),
    ] {
        let sql = format!(
            "SELECT count(*) AS n, min(orderkey) AS lo, max(orderkey) AS hi FROM tpch.tiny.orders WHERE {filter}"
        );
        local_as_trino(&mut c, &sql).await;
    }
}

#[tokio::test]
async fn groups_by_a_time_bucket_and_a_column_of_a_dataset_in_time_order_are_hashed_with_trinos_answer() {
    let server = orders_by_date().await;
    let mut c = server.client().await;
    // Sums of doubles depend on the order of the rows: counts, extremes.
    let by_month = "SELECT orderstatus, date_trunc('month', orderdate) AS m, count(*) AS n, max(totalprice) AS top, min(orderkey) AS first \
                    FROM tpch.tiny.orders WHERE orderdate >= DATE '1995-01-01' AND orderdate < DATE '1995-07-01' \
                    GROUP BY 1, 2 ORDER BY 1, 2";
    let (_, _, b) = c.query(&format!("EXPLAIN {by_month}")).await.unwrap();
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: local"), "{plan}");
    assert!(plan.contains("Unordered"), "{plan}");
    assert!(!plan.contains("ordering_mode="), "{plan}");
    local_as_trino(&mut c, by_month).await;
    // The time bucket first: hashed as well, and sorted after.
    let by_week = "SELECT date_trunc('week', orderdate) AS w, orderpriority, max(totalprice) AS top \
                   FROM tpch.tiny.orders WHERE orderdate < DATE '1992-06-01' GROUP BY 1, 2 ORDER BY 1, 2";
    local_as_trino(&mut c, by_week).await;
    // One grouping column keeps the streaming groups, in time order.
    let (_, _, b) = c
        .query("EXPLAIN SELECT date_trunc('month', orderdate) AS m, count(*) AS n FROM tpch.tiny.orders GROUP BY 1 ORDER BY 1")
        .await
        .unwrap();
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: local"), "{plan}");
    assert!(!plan.contains("Unordered") && plan.contains("ordering_mode="), "{plan}");
}

#[tokio::test]
async fn preparing_a_statement_answered_locally_does_not_ask_trino() {
    let server = TestServer::with_datasets(vec![dataset("tpch.tiny.nation", Access::All)]).await;
    let mut c = server.client().await;
    let stats = server.trino.stats();
    let started = || stats.queries_started.load(std::sync::atomic::Ordering::SeqCst);
    let m = marker("prepare_local");
    let sql = format!(
        "SELECT regionkey, count(*) AS n_{m}, max(name) AS last FROM tpch.tiny.nation GROUP BY regionkey ORDER BY regionkey"
    );
    let before = started();
    let prepared = c.prepare(&sql).await.unwrap();
    let dataset = arrow::ipc::convert::try_schema_from_ipc_buffer(&prepared.dataset_schema).unwrap();
    let info = c.prepared_info(prepared.prepared_statement_handle).await.unwrap();
    let (schema, batches) = c.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert_eq!(rows(&batches), 5);
    // The schema prepared is the one the answer comes in, Trino's names and
    // type names included, and neither reached Trino.
    assert_eq!(&dataset, schema.as_ref());
    assert_eq!(dataset.field(1).metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"], "bigint");
    assert_eq!(started(), before);
    assert_eq!(trino_queries_containing(&m).await, 0);
    // A statement the local engine does not answer is described by Trino.
    let prepared = c.prepare(&format!("SELECT upper(name) AS u_{m} FROM tpch.tiny.nation")).await.unwrap();
    let dataset = arrow::ipc::convert::try_schema_from_ipc_buffer(&prepared.dataset_schema).unwrap();
    assert_eq!(dataset.field(0).metadata()["ARROW:FLIGHT:SQL:TYPE_NAME"], "varchar(25)");
    assert_eq!(started(), before + 1);
}

#[tokio::test]
async fn the_newest_rows_are_read_newest_first_without_a_sort() {
    let server = orders_by_date().await;
    let mut c = server.client().await;
    let latest = "SELECT orderkey, orderdate, totalprice FROM tpch.tiny.orders WHERE custkey = 370 ORDER BY orderdate DESC LIMIT 5";
    let (_, _, b) = c.query(&format!("EXPLAIN {latest}")).await.unwrap();
    let plan = text(&b);
    assert!(plan.contains("NewestFirst") && !plan.contains("SortExec"), "{plan}");
    // NULLS FIRST is not the order held: sorted as usual.
    let (_, _, b) = c
        .query("EXPLAIN SELECT orderdate FROM tpch.tiny.orders ORDER BY orderdate DESC NULLS FIRST LIMIT 5")
        .await
        .unwrap();
    assert!(text(&b).contains("SortExec"), "{}", text(&b));
    for sql in [
        latest.to_string(),
        "SELECT orderdate FROM tpch.tiny.orders ORDER BY orderdate DESC LIMIT 10".into(),
        "SELECT orderdate AS d FROM tpch.tiny.orders WHERE orderdate < DATE '1995-03-01' AND custkey < 20 ORDER BY orderdate DESC".into(),
        "SELECT o.orderdate FROM tpch.tiny.orders AS o WHERE o.orderdate >= DATE '1998-08-01' ORDER BY o.orderdate DESC LIMIT 7".into(),
    ] {
        local_as_trino(&mut c, &sql).await;
    }
}

#[tokio::test]
async fn a_local_ticket_is_answered_by_another_replica_locally_or_by_trino() {
    let mut config = uncached_config();
    config.flight.ticket_secret = Some("replicas-of-the-local-route-0123456789".into());
    let nation = || vec![dataset("tpch.tiny.nation", Access::All)];
    let a = TestServer::with_datasets_in(config.clone(), nation()).await;
    let b = TestServer::with_datasets_in(config.clone(), nation()).await;
    // A replica that holds no dataset (still loading it, or configured
    // without it) answers the same ticket through Trino.
    let plain = TestServer::with_config(config).await;
    let sql = "SELECT regionkey, count(*) AS n FROM tpch.tiny.nation GROUP BY regionkey ORDER BY regionkey";
    let info = a.client().await.info(sql).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let (route, _, here) = a.client().await.fetch_routed(ticket.clone()).await.unwrap();
    let (other_route, _, there) = b.client().await.fetch_routed(ticket.clone()).await.unwrap();
    let (plain_route, _, trino) = plain.client().await.fetch_routed(ticket).await.unwrap();
    assert_eq!((route.as_str(), other_route.as_str(), plain_route.as_str()), ("local", "local", "trino"));
    assert_eq!(pretty(&here), pretty(&there));
    assert_eq!(pretty(&here), pretty(&trino));
    assert_eq!(rows(&here), 5);
}

#[tokio::test]
async fn admitted_local_queries_run_a_few_at_a_time_in_the_order_they_came() {
    use flightdeck::local::{Limits, LocalEngine};
    use flightdeck::router::Session as RouterSession;
    use flightdeck::sql::Statement;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    let server = orders_by_date().await;
    let datasets = server.datasets.clone().unwrap();
    // One at a time: a light query that comes second ends after the heavy
    // one before it, where sharing the cores would have let it end first.
    let engine = Arc::new(LocalEngine::new(datasets.clone(), Limits { running: 1, ..Limits::default() }));
    let heavy = "SELECT count(*) FROM tpch.tiny.orders a JOIN tpch.tiny.orders b ON a.custkey = b.custkey \
                 JOIN tpch.tiny.orders c ON b.custkey = c.custkey";
    let light = "SELECT count(*) FROM tpch.tiny.orders WHERE orderdate = DATE '1995-01-01'";
    let run = |engine: Arc<LocalEngine>, sql: &'static str| async move {
        let answer = engine.run(&RouterSession::of("test"), &Statement::parse(sql, None, None)).await;
        (answer.map(|_| ()).map_err(|r| r.to_string()), Instant::now())
    };
    let first = tokio::spawn(run(Arc::clone(&engine), heavy));
    // The heavy query takes its place as it starts, before it plans.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = tokio::spawn(run(Arc::clone(&engine), light));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!((&first.0, &second.0), (&Ok(()), &Ok(())));
    assert!(second.1 >= first.1, "the second query ended before the first");

    // The same two with room for both: the light one ends first, so the
    // order above is the engine's doing.
    let engine = Arc::new(LocalEngine::new(datasets, Limits { running: 2, ..Limits::default() }));
    let first = tokio::spawn(run(Arc::clone(&engine), heavy));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let second = tokio::spawn(run(Arc::clone(&engine), light));
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    assert_eq!((&first.0, &second.0), (&Ok(()), &Ok(())));
    assert!(second.1 < first.1, "the light query waited for the heavy one");
}

#[tokio::test]
async fn dates_are_truncated_locally_to_dates_as_trino_does() {
    let server = orders_by_date().await;
    let mut c = server.client().await;
    for unit in ["day", "week", "month", "quarter", "year"] {
        local_as_trino(
            &mut c,
            &format!(
                "SELECT date_trunc('{unit}', orderdate) AS m, count(*) AS orders, max(totalprice) AS top \
                 FROM tpch.tiny.orders WHERE year(orderdate) = 1995 GROUP BY 1 ORDER BY 1"
            ),
        )
        .await;
    }
    // A date has no hours: Trino says so, where DataFusion would answer.
    let e = c.query("SELECT date_trunc('hour', orderdate) FROM tpch.tiny.orders").await.unwrap_err();
    assert!(e.message().contains("not a valid DATE field"), "{e:?}");
}

#[tokio::test]
async fn a_year_compared_with_an_integer_is_met_as_a_range_of_the_time_column() {
    let server = orders_by_date().await;
    let mut c = server.client().await;
    let sql = "SELECT count(*) FROM tpch.tiny.orders WHERE year(orderdate) = 1995";
    let (_, _, b) = c.query(&format!("EXPLAIN {sql}")).await.unwrap();
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: local"), "{plan}");
    assert!(!plan.contains("FilterExec"), "the year is a range the scan meets: {plan}");
    for filter in [
        "year(orderdate) = 1995",
        "1992 = year(orderdate)",
        "year(orderdate) <> 1995",
        "year(orderdate) >= 1998",
        "year(orderdate) > 1997",
        "year(orderdate) < 1993",
        "year(orderdate) <= 1992",
        "year(orderdate) = 2000",
        "year(orderdate) = 10000 OR year(orderdate) = -1",
        "year(orderdate) = 1996 AND orderstatus = 'F'",
    ] {
        let sql = format!(
            "SELECT count(*) AS n, min(orderkey) AS lo, max(orderkey) AS hi FROM tpch.tiny.orders WHERE {filter}"
        );
        local_as_trino(&mut c, &sql).await;
    }
}

#[tokio::test]
async fn a_chain_of_joins_starts_from_its_most_selective_relation() {
    let tables = ["tpch.tiny.orders", "tpch.tiny.customer", "tpch.tiny.nation", "tpch.tiny.region"];
    let server = TestServer::with_datasets(tables.iter().map(|t| dataset(t, Access::All)).collect()).await;
    let mut c = server.client().await;
    // Written from the largest table to the filtered region.
    // Sums of doubles depend on the order of the rows: counts and maxima.
    let sql = "SELECT year(o.orderdate) AS y, max(o.totalprice) AS top, count(*) AS n \
               FROM tpch.tiny.orders o JOIN tpch.tiny.customer c ON o.custkey = c.custkey \
               JOIN tpch.tiny.nation n ON c.nationkey = n.nationkey \
               JOIN tpch.tiny.region r ON n.regionkey = r.regionkey \
               WHERE r.name = 'ASIA' GROUP BY 1 ORDER BY 1";
    let (_, _, b) = c.query(&format!("EXPLAIN {sql}")).await.unwrap();
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: local"), "{plan}");
    // The innermost join is the region's with its nations; the orders are
    // joined last, once.
    let joins: Vec<&str> = plan.lines().filter(|l| l.contains("HashJoinExec")).collect();
    assert_eq!(joins.len(), 3, "{plan}");
    assert!(joins[2].contains("regionkey"), "{plan}");
    assert!(joins[0].contains("custkey"), "{plan}");
    local_as_trino(&mut c, sql).await;
    // Written in any order, the same answer.
    for from in [
        "tpch.tiny.region r JOIN tpch.tiny.nation n ON n.regionkey = r.regionkey \
         JOIN tpch.tiny.customer c ON c.nationkey = n.nationkey JOIN tpch.tiny.orders o ON o.custkey = c.custkey",
        "tpch.tiny.customer c JOIN tpch.tiny.orders o ON o.custkey = c.custkey \
         JOIN tpch.tiny.region r ON r.name = 'ASIA' JOIN tpch.tiny.nation n ON n.regionkey = r.regionkey AND c.nationkey = n.nationkey",
        "tpch.tiny.orders o, tpch.tiny.customer c, tpch.tiny.nation n, tpch.tiny.region r \
         WHERE o.custkey = c.custkey AND c.nationkey = n.nationkey AND n.regionkey = r.regionkey AND r.name = 'ASIA'",
    ] {
        let sql = format!(
            "SELECT n.name AS nation, count(*) AS orders, min(o.totalprice) AS low FROM {from} GROUP BY 1 ORDER BY 1"
        );
        local_as_trino(&mut c, &sql).await;
    }
}

#[tokio::test]
async fn aggregates_of_one_side_of_a_join_are_taken_before_the_join() {
    let tables = ["tpch.tiny.orders", "tpch.tiny.customer"];
    let server = TestServer::with_datasets(tables.iter().map(|t| dataset(t, Access::All)).collect()).await;
    let mut c = server.client().await;
    // Below a plan's first join, whether an aggregation groups by `key`.
    let aggregated_before_join = |plan: &str, key: &str| {
        let lines: Vec<&str> = plan.lines().collect();
        let join = lines.iter().position(|l| l.contains("HashJoinExec")).unwrap_or_else(|| panic!("no join: {plan}"));
        lines[join + 1..].iter().any(|l| l.contains("AggregateExec") && l.contains(&format!("gby=[{key}")))
    };
    // The dashboard's top customers. Sums of doubles depend on the order
    // of the rows: maxima of the prices, a sum of integers.
    let sql = "SELECT c.name, max(o.totalprice) AS top, count(*) AS n, sum(o.shippriority) AS s, \
               max(o.orderdate) AS last, min(o.orderpriority) AS priority \
               FROM tpch.tiny.orders o JOIN tpch.tiny.customer c ON o.custkey = c.custkey \
               WHERE year(o.orderdate) = 1995 GROUP BY c.name ORDER BY top DESC, c.name LIMIT 10";
    let (_, _, b) = c.query(&format!("EXPLAIN {sql}")).await.unwrap();
    let plan = text(&b);
    assert!(plan.starts_with("Flightdeck route: local"), "{plan}");
    assert!(aggregated_before_join(&plan, "custkey"), "{plan}");
    local_as_trino(&mut c, sql).await;
    // The orders on the right, grouped by columns of both sides; only
    // counts: counted on the larger side.
    for sql in [
        "SELECT c.mktsegment, o.orderstatus, count(o.clerk) AS n, sum(o.shippriority) AS s \
         FROM tpch.tiny.customer c JOIN tpch.tiny.orders o ON c.custkey = o.custkey GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT c.nationkey, count(*) AS n FROM tpch.tiny.orders o JOIN tpch.tiny.customer c \
         ON o.custkey = c.custkey GROUP BY 1 ORDER BY 1",
        // A sum of decimals: its partial sums are wider, its answer is not.
        "SELECT c.mktsegment, sum(0.25) AS quarters, sum(99999999999999999.99) AS big, max(o.totalprice) AS top \
         FROM tpch.tiny.orders o JOIN tpch.tiny.customer c ON o.custkey = c.custkey GROUP BY 1 ORDER BY 1",
    ] {
        let (_, _, b) = c.query(&format!("EXPLAIN {sql}")).await.unwrap();
        let plan = text(&b);
        assert!(aggregated_before_join(&plan, "custkey"), "{plan}");
        local_as_trino(&mut c, sql).await;
    }
    // An aggregate of both sides' columns is taken after the join.
    let sql = "SELECT c.mktsegment, sum(o.shippriority + c.nationkey) AS s FROM tpch.tiny.orders o \
               JOIN tpch.tiny.customer c ON o.custkey = c.custkey GROUP BY 1 ORDER BY 1";
    let (_, _, b) = c.query(&format!("EXPLAIN {sql}")).await.unwrap();
    let plan = text(&b);
    assert!(!aggregated_before_join(&plan, "custkey"), "{plan}");
    local_as_trino(&mut c, sql).await;
}

#[tokio::test]
async fn a_first_query_on_several_datasets_asks_trino_about_them_all_at_once() {
    let tables = ["tpch.tiny.orders", "tpch.tiny.customer", "tpch.tiny.nation", "tpch.tiny.region"];
    let server = TestServer::with_datasets(tables.iter().map(|t| dataset(t, Access::Trino)).collect()).await;
    let user = marker("asker");
    let mut c = server.client().await.as_user(&user);
    let sql = "SELECT count(*) AS n FROM tpch.tiny.orders o JOIN tpch.tiny.customer c ON o.custkey = c.custkey \
               JOIN tpch.tiny.nation n ON c.nationkey = n.nationkey JOIN tpch.tiny.region r ON n.regionkey = r.regionkey";
    assert_eq!(c.routed(sql).await.unwrap().0, "local");
    // Each check began before any ended. One after the other, the user's
    // first query waited for four.
    let checks = access_checks(&user).await;
    assert_eq!(checks.len(), tables.len(), "{checks:?}");
    let last_begun = checks.iter().map(|(created, _)| *created).max().unwrap();
    let first_ended = checks.iter().map(|(_, ended)| ended.expect("the checks ended")).min().unwrap();
    assert!(last_begun < first_ended, "{checks:?}");
}

#[tokio::test]
async fn a_user_who_keeps_querying_never_waits_for_trino_to_say_again_they_may_read() {
    let mut config = uncached_config();
    config.accel.access_ttl = std::time::Duration::from_secs(6);
    let server = TestServer::with_datasets_in(config, vec![dataset("tpch.tiny.nation", Access::Trino)]).await;
    let user = marker("regular");
    let mut c = server.client().await.as_user(&user);
    let sql = "SELECT count(*) AS n FROM tpch.tiny.nation";
    let checks = || async { access_checks(&user).await.len() };
    assert_eq!(c.routed(sql).await.unwrap().0, "local");
    // The first decision was made before this instant: it expires before
    // 6 s from here.
    let first = std::time::Instant::now();
    assert_eq!(checks().await, 1);
    // Past half the time: answered with the decision, and Trino is asked
    // again beside it.
    tokio::time::sleep(std::time::Duration::from_millis(4000).saturating_sub(first.elapsed())).await;
    assert_eq!(c.routed(sql).await.unwrap().0, "local");
    for _ in 0..100 {
        if checks().await == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(checks().await, 2, "asked again in the background");
    // Without the renewal, the second query is answered from the first
    // decision and no second check is made until one waits for it after
    // the decision's time. (After that time, whether a third check is made
    // in the background depends on how late the queries run, so it is not
    // asserted.)
}

#[tokio::test]
async fn statements_that_differ_only_in_their_range_reuse_one_plan_with_trinos_answers() {
    let server = orders_by_date().await;
    let t = "tpch.tiny.orders";
    let skeletons = [
        format!(
            "SELECT orderstatus, count(*) AS n, max(totalprice) AS top, min(orderkey) AS lo FROM {t} WHERE {{r}} GROUP BY 1 ORDER BY 1"
        ),
        format!(
            "SELECT date_trunc('month', orderdate) AS m, count(*) AS n FROM {t} WHERE orderpriority = '1-URGENT' AND {{r}} GROUP BY 1 ORDER BY 1"
        ),
        format!("SELECT orderkey, orderdate FROM {t} WHERE {{r}} ORDER BY orderdate DESC, orderkey LIMIT 7"),
        format!("SELECT count(*) AS n FROM {t} WHERE {{r}}"),
        format!(
            "SELECT orderstatus, count(*) AS n, max(count(*)) OVER () AS most FROM {t} WHERE {{r}} AND orderkey % 3 = 0 GROUP BY 1 ORDER BY 1"
        ),
    ];
    let ranges = [
        "orderdate >= DATE '1995-01-01' AND orderdate < DATE '1995-02-01'",
        "orderdate BETWEEN DATE '1998-08-01' AND DATE '1998-08-02'",
        "orderdate > DATE '1998-08-02'",
        "orderdate < DATE '1992-01-01'",
        "DATE '1996-06-30' < orderdate AND orderdate <= DATE '1996-07-31'",
        "orderdate >= DATE '1994-01-01' AND orderdate < DATE '1993-01-01'",
        "orderdate >= DATE '1993-03-01' + INTERVAL '10' DAY AND orderdate < DATE '1993-04-01'",
        "orderdate >= DATE '1992-01-01'",
    ];
    let mut c = server.client().await;
    let mut answers = Vec::new();
    for r in ranges {
        for s in &skeletons {
            let sql = s.replace("{r}", r);
            local_as_trino(&mut c, &sql).await;
            answers.push(sql);
        }
    }
    let metrics = reqwest::get(format!("http://{}/metrics", server.admin)).await.unwrap().text().await.unwrap();
    let count = |outcome: &str| {
        let prefix = format!("flightdeck_local_plan_reuse_total{{outcome=\"{outcome}\"}} ");
        metrics.lines().find_map(|l| l.strip_prefix(prefix.as_str())).map(|v| v.trim().parse::<f64>().unwrap())
    };
    // A plan kept per skeleton, reused by every other range (the counts are
    // the process's: other tests add theirs).
    assert!(count("kept") >= Some(skeletons.len() as f64), "{metrics}");
    assert!(count("reused") >= Some((skeletons.len() * (ranges.len() - 1)) as f64), "{metrics}");
    // A skeleton whose plan cannot take a range (read newest first) is
    // planned as written each time, with the same answers.
    for r in &ranges[..3] {
        local_as_trino(&mut c, &format!("SELECT orderdate FROM {t} WHERE {r} ORDER BY orderdate DESC LIMIT 3")).await;
    }
    let metrics = reqwest::get(format!("http://{}/metrics", server.admin)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("flightdeck_local_plan_reuse_total{outcome=\"not kept\"}"), "{metrics}");
    // A kept skeleton does not carry a statement past what its bounds
    // would have refused: a date compared with a timestamp goes to Trino.
    let refused = format!("SELECT count(*) AS n FROM {t} WHERE orderdate >= TIMESTAMP '1995-01-01 00:00:00'");
    assert_eq!(c.routed(&refused).await.unwrap().0, "trino");

    // At once, each statement on its own: a kept plan runs for many.
    local_as_trino_at_once(&server, &answers, 8).await;
}

/// Asserts that `statements`, sent by `clients` connections at once (each
/// starting at another statement), are each answered locally with Trino's
/// answer.
async fn local_as_trino_at_once(server: &TestServer, statements: &[String], clients: usize) {
    let mut wanted = Vec::new();
    for sql in statements {
        let (_, want) = trino_direct().execute(&session("test"), sql).await.unwrap();
        wanted.push((sql.clone(), pretty(&want)));
    }
    let wanted = std::sync::Arc::new(wanted);
    let tasks: Vec<_> = (0..clients)
        .map(|k| {
            let (wanted, addr) = (std::sync::Arc::clone(&wanted), server.addr);
            tokio::spawn(async move {
                let mut c = Client::connect(addr).await;
                for (sql, want) in wanted.iter().skip(k).chain(wanted.iter().take(k)) {
                    let (route, _, got) = c.routed(sql).await.unwrap();
                    assert_eq!((route.as_str(), pretty(&got)), ("local", want.clone()), "{sql}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn statements_that_differ_in_their_filter_values_share_one_kept_plan_with_trinos_answers() {
    use flightdeck::local::{Limits, LocalEngine};
    use flightdeck::router::Session as RouterSession;
    use flightdeck::sql::Statement;

    let server = orders_by_date().await;
    // An engine of its own over the same datasets, to count its skeletons.
    let engine = LocalEngine::new(server.datasets.clone().unwrap(), Limits::default());
    let t = "tpch.tiny.orders";
    let skeleton = format!(
        "SELECT orderstatus, count(*) AS n, max(totalprice) AS top, min(orderkey) AS lo FROM {t} WHERE {{f}} AND {{r}} GROUP BY 1 ORDER BY 1"
    );
    let ranges = [
        "orderdate >= DATE '1995-01-01' AND orderdate < DATE '1995-04-01'",
        "orderdate BETWEEN DATE '1992-01-01' AND DATE '1998-12-31'",
        "orderdate > DATE '1998-07-01'",
    ];
    let filters = [
        "orderpriority = '1-URGENT'",
        "'5-LOW' = orderpriority",
        "orderpriority IN ('3-MEDIUM', '4-NOT SPECIFIED')",
        "orderpriority NOT IN ('1-URGENT', '2-HIGH') AND custkey < 500",
        "orderpriority <> '1-URGENT'",
        "orderpriority = 'none'",
        "orderpriority = NULL",
        "totalprice > 250000.5",
        "totalprice <= 1000",
        "custkey = 370",
        "custkey IN (370, 781, 9999999999)",
        "shippriority <> 0",
        "orderkey > 3000000000",
        "clerk >= 'Clerk#000000990'",
        // Spelled as people and tools send them: other case, comments in
        // odd places, CRLF and CR line ends.
        "ORDERPRIORITY = '2-HIGH' -- a comment\r\n",
        "/* odd */ custkey /* place */ <= 100\r",
        "orderpriority = '3-MEDIUM' -- a comment ended by CR alone\r",
        "\r\n\tShipPriority\r\n= 0",
    ];
    let mut c = server.client().await;
    let mut statements = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let sql = skeleton.replace("{f}", f).replace("{r}", ranges[i % ranges.len()]);
        local_as_trino(&mut c, &sql).await;
        engine.run(&RouterSession::of("test"), &Statement::parse(&sql, None, None)).await.unwrap();
        statements.push(sql);
    }
    assert_eq!(engine.skeletons(), 1, "one skeleton for every filter value and range");
    // A filter that is not a column compared with constants stays in the
    // skeleton: another plan.
    let other = skeleton.replace("{f}", "orderpriority LIKE '1-%'").replace("{r}", ranges[0]);
    local_as_trino(&mut c, &other).await;
    engine.run(&RouterSession::of("test"), &Statement::parse(&other, None, None)).await.unwrap();
    assert_eq!(engine.skeletons(), 2);

    // At once, each with its own values through the one kept plan.
    local_as_trino_at_once(&server, &statements, 6).await;
}

#[tokio::test]
async fn partial_aggregates_of_whole_slices_are_kept_per_filter_and_answer_as_trino() {
    use flightdeck::local::{Limits, LocalEngine};
    use flightdeck::router::Session as RouterSession;
    use flightdeck::sql::Statement;

    let server = orders_by_date().await;
    // An engine of its own over the same datasets, to count what it keeps.
    let engine = LocalEngine::new(server.datasets.clone().unwrap(), Limits::default());
    let run = |sql: String| {
        let engine = &engine;
        async move { engine.run(&RouterSession::of("test"), &Statement::parse(&sql, None, None)).await.unwrap() }
    };
    let t = "tpch.tiny.orders";
    let skeleton = format!(
        "SELECT orderstatus, count(*) AS n, sum(custkey) AS total, avg(shippriority) AS a, \
         min(orderdate) AS first, max(clerk) AS clerk, count(DISTINCT custkey) AS customers \
         FROM {t} WHERE {{f}} AND {{r}} GROUP BY 1 ORDER BY 1"
    );
    // The dataset's rows lie in 1992 to 1998: these ranges read its slices whole.
    let whole = ["orderdate >= DATE '1990-01-01'", "orderdate BETWEEN DATE '1992-01-01' AND DATE '1998-12-31'"];
    let filters = ["orderpriority = '1-URGENT'", "orderpriority = '5-LOW'", "custkey < 500", "totalprice > 100000.5"];
    let mut c = server.client().await;
    for (i, f) in filters.iter().enumerate() {
        for r in whole {
            let sql = skeleton.replace("{f}", f).replace("{r}", r);
            // The first reads the rows and keeps the states; the second
            // reads the states: both Trino's answer.
            local_as_trino(&mut c, &sql).await;
            local_as_trino(&mut c, &sql).await;
            run(sql).await;
        }
        assert_eq!(engine.partials_kept(), i as u64 + 1, "one kept per filter, whatever the range's spelling");
    }
    // A range that cuts the slices keeps nothing, and answers as Trino.
    let cut = skeleton.replace("{f}", filters[0]).replace("{r}", "orderdate < DATE '1995-06-17'");
    local_as_trino(&mut c, &cut).await;
    run(cut).await;
    assert_eq!(engine.partials_kept(), filters.len() as u64);
    // Filter values that differ only inside a string literal are other filters.
    let quoted = skeleton.replace("{f}", "orderpriority = '1-URGENT'' '").replace("{r}", whole[0]);
    local_as_trino(&mut c, &quoted).await;
    run(quoted).await;
    assert_eq!(engine.partials_kept(), filters.len() as u64 + 1);
    // Statements without a partial aggregation keep nothing.
    run(format!("SELECT orderkey FROM {t} WHERE {} ORDER BY orderkey LIMIT 3", whole[0])).await;
    assert_eq!(engine.partials_kept(), filters.len() as u64 + 1);
    // Kept off, the same answers.
    let off = LocalEngine::new(server.datasets.clone().unwrap(), Limits { partials_memory: 0, ..Limits::default() });
    let sql = skeleton.replace("{f}", filters[2]).replace("{r}", whole[0]);
    off.run(&RouterSession::of("test"), &Statement::parse(&sql, None, None)).await.unwrap();
    assert_eq!(off.partials_kept(), 0);

    // At once, each reading states kept or keeping them.
    let skeleton = &skeleton;
    let statements: Vec<String> = filters
        .iter()
        .flat_map(|f| whole.iter().map(move |r| skeleton.replace("{f}", f).replace("{r}", r)))
        .chain([skeleton.replace("{f}", "custkey > 1400").replace("{r}", whole[1])])
        .collect();
    local_as_trino_at_once(&server, &statements, 6).await;
}

#[tokio::test]
async fn short_strings_are_grouped_by_as_integer_keys_with_trinos_answers() {
    let server = orders_by_date().await;
    let mut c = server.client().await;
    let t = "tpch.tiny.orders";
    // `orderstatus` holds one-letter strings and is grouped by its key;
    // `orderpriority` holds `4-NOT SPECIFIED` (15 bytes), grouped as a string.
    let short = format!("SELECT orderstatus, count(*) AS n FROM {t} GROUP BY orderstatus ORDER BY 1");
    let (_, _, b) = c.query(&format!("EXPLAIN {short}")).await.unwrap();
    assert!(
        text(&b).contains("flightdeck_inline_key(") && text(&b).contains("flightdeck_inline_string("),
        "{}",
        text(&b)
    );
    let long = format!("SELECT orderpriority, count(*) AS n FROM {t} GROUP BY orderpriority ORDER BY 1");
    let (_, _, b) = c.query(&format!("EXPLAIN {long}")).await.unwrap();
    assert!(!text(&b).contains("flightdeck_inline_key("), "{}", text(&b));
    for sql in [
        short,
        long,
        // With other groups, filters, an alias, HAVING, an order by the
        // key, the key unselected, and a NULL group.
        format!(
            "SELECT o.orderstatus, year(o.orderdate) AS y, count(*) AS n, max(o.totalprice) AS top FROM {t} AS o \
             WHERE o.custkey < 400 AND o.orderdate >= DATE '1995-01-01' GROUP BY 1, 2 HAVING count(*) > 3 ORDER BY 1, 2"
        ),
        format!("SELECT count(*) AS n FROM {t} GROUP BY orderstatus, shippriority ORDER BY 1"),
        format!(
            "SELECT nullif(orderstatus, 'F') AS s, count(*) AS n FROM {t} GROUP BY nullif(orderstatus, 'F') ORDER BY 1"
        ),
        format!(
            "SELECT s, count(*) AS n FROM (SELECT CASE WHEN orderkey % 7 = 0 THEN NULL ELSE orderstatus END AS s \
             FROM {t}) GROUP BY s ORDER BY 1 NULLS FIRST"
        ),
        format!("SELECT DISTINCT orderstatus FROM {t} ORDER BY 1"),
    ] {
        local_as_trino(&mut c, &sql).await;
    }
}
