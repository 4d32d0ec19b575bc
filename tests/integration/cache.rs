use std::time::Duration;

use arrow::array::{AsArray, Int64Array};
use arrow::util::pretty::pretty_format_batches;
use tonic::Code;

use crate::common::*;

fn count(batches: &[arrow::record_batch::RecordBatch]) -> i64 {
    batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

#[tokio::test]
async fn repeated_query_is_served_from_the_cache() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let m = marker("repeat");
    let sql = format!("SELECT nationkey, name, '{m}' AS m FROM tpch.tiny.nation ORDER BY nationkey");
    let (first, a) = c.query_cached(&sql, None).await.unwrap();
    assert_eq!(first, "miss");
    // Same statement, other spacing and keyword case: the same entry.
    let (second, b) =
        c.query_cached(&sql.replace("SELECT", "select\n ").replace(" FROM", "  from"), None).await.unwrap();
    assert_eq!(second, "hit");
    assert_eq!(pretty_format_batches(&a).unwrap().to_string(), pretty_format_batches(&b).unwrap().to_string());
    assert_eq!(rows(&b), 25);
    assert_eq!(trino_queries_containing(&m).await, 1, "the hit did not reach Trino");
}

#[tokio::test]
async fn concurrent_identical_misses_run_one_trino_query() {
    let server = TestServer::start().await;
    let m = marker("single_flight");
    let sql = format!("SELECT count(*) AS n, '{m}' AS m FROM tpch.tiny.lineitem");
    let base = server.client().await.as_user("alice");
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (mut c, sql, barrier) = (base.clone(), sql.clone(), std::sync::Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            c.query_cached(&sql, None).await.unwrap()
        }));
    }
    for t in tasks {
        let (_, batches) = t.await.unwrap();
        assert_eq!(count(&batches), 60_175);
    }
    assert_eq!(trino_queries_containing(&m).await, 1, "eight concurrent misses, one Trino query");
}

#[tokio::test]
async fn users_never_share_entries_and_trino_decides_access() {
    let server = TestServer::start().await;
    let base = server.client().await;
    let (mut alice, mut bob, mut restricted) = (base.as_user("alice"), base.as_user("bob"), base.as_user("restricted"));
    let m = marker("isolation");
    let sql = format!("SELECT count(*) AS n, '{m}' AS m FROM tpch.tiny.customer");
    assert_eq!(alice.query_cached(&sql, None).await.unwrap().0, "miss");
    assert_eq!(alice.query_cached(&sql, None).await.unwrap().0, "hit");
    // Bob runs the same statement: his own miss, never Alice's entry.
    let (outcome, batches) = bob.query_cached(&sql, None).await.unwrap();
    assert_eq!(outcome, "miss");
    assert_eq!(count(&batches), 1500);
    assert_eq!(trino_queries_containing(&m).await, 2);
    // A user Trino denies the table gets Trino's denial, not cached rows.
    let e = restricted.query_cached(&sql, None).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    assert!(e.message().contains("Access Denied"), "{e}");
    let e = restricted.query_cached(&sql, Some("only-if-cached")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "nothing cached for this user: {e}");
}

#[tokio::test]
async fn non_deterministic_statements_bypass_the_cache() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let m = marker("nondet");
    for sql in [
        format!("SELECT now() AS t, '{m}' AS m"),
        format!("SELECT random() AS r, '{m}' AS m"),
        format!("SELECT current_user AS u, '{m}' AS m"),
    ] {
        let (first, _) = c.query_cached(&sql, None).await.unwrap();
        let (second, _) = c.query_cached(&sql, None).await.unwrap();
        assert_eq!((first.as_str(), second.as_str()), ("bypass", "bypass"), "{sql}");
    }
    assert_eq!(trino_queries_containing(&m).await, 6);
    let e = c.query_cached(&format!("SELECT now(), '{m}'"), Some("only-if-cached")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn writes_through_flightdeck_invalidate_what_they_change() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let table = format!("memory.default.{}", marker("cache_write"));
    c.update(&format!("CREATE TABLE {table} (id bigint)")).await.unwrap();
    c.update(&format!("INSERT INTO {table} VALUES (1)")).await.unwrap();
    let select = format!("SELECT count(*) FROM {table}");
    assert_eq!(c.query_cached(&select, None).await.unwrap().0, "miss");
    let (outcome, batches) = c.query_cached(&select, None).await.unwrap();
    assert_eq!((outcome.as_str(), count(&batches)), ("hit", 1));
    // DoPut update path.
    assert_eq!(c.update(&format!("INSERT INTO {table} VALUES (2)")).await.unwrap(), 1);
    let (outcome, batches) = c.query_cached(&select, None).await.unwrap();
    assert_eq!((outcome.as_str(), count(&batches)), ("miss", 2), "the insert is visible at once");
    // Query path, as ADBC's execute sends DML.
    let (outcome, _) = c.query_cached(&format!("INSERT INTO {table} VALUES (3)"), None).await.unwrap();
    assert_eq!(outcome, "bypass");
    let (outcome, batches) = c.query_cached(&select, None).await.unwrap();
    assert_eq!((outcome.as_str(), count(&batches)), ("miss", 3));
    c.update(&format!("DROP TABLE {table}")).await.unwrap();
}

#[tokio::test]
async fn request_directives_control_the_cache() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let m = marker("directive");
    let sql = format!("SELECT regionkey, '{m}' AS m FROM tpch.tiny.region");
    let e = c.query_cached(&sql, Some("only-if-cached")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(c.query_cached(&sql, None).await.unwrap().0, "miss");
    assert_eq!(c.query_cached(&sql, Some("only-if-cached")).await.unwrap().0, "hit");
    assert_eq!(c.query_cached(&sql, Some("no-cache")).await.unwrap().0, "miss");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(c.query_cached(&sql, Some("max-age=1")).await.unwrap().0, "miss");
    assert_eq!(c.query_cached(&sql, Some("max-age=60")).await.unwrap().0, "hit");
    assert_eq!(trino_queries_containing(&m).await, 3);
    let e = c.query_cached(&sql, Some("whenever")).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn results_over_the_entry_limit_stream_uncached() {
    let mut config = flightdeck::Config::for_trino(&trino_url());
    config.cache.max_entry_bytes = 64 * 1024;
    let server = TestServer::with_config(config).await;
    let mut c = server.client().await.as_user("alice");
    let sql = "SELECT orderkey, comment FROM tpch.tiny.orders";
    let (first, batches) = c.query_cached(sql, None).await.unwrap();
    assert_eq!((first.as_str(), rows(&batches)), ("bypass", 15_000));
    let (second, batches) = c.query_cached(sql, None).await.unwrap();
    assert_eq!((second.as_str(), rows(&batches)), ("bypass", 15_000));
    assert!(server.router.cache().unwrap().entries().is_empty());
}

#[tokio::test]
async fn admin_api_needs_its_token() {
    let mut config = flightdeck::Config::for_trino(&trino_url());
    config.admin.token = Some("admin-token-0123456789".into());
    let server = TestServer::with_config(config).await;
    let mut c = server.client().await.as_user("alice");
    let sql = "SELECT name FROM tpch.tiny.region ORDER BY name";
    c.query_cached(sql, None).await.unwrap();
    let http = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", server.admin);
    assert_eq!(http.get(url("/health")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url("/ready")).send().await.unwrap().status(), 200);
    assert_eq!(http.get(url("/admin/cache/entries")).send().await.unwrap().status(), 401);
    let wrong = http.get(url("/admin/cache/entries")).bearer_auth("admin-token-wrong").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let body = http
        .get(url("/admin/cache/entries"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let listed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let entries = listed["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{listed}");
    assert_eq!(entries[0]["user"], "alice");
    assert_eq!(entries[0]["tables"][0], "tpch.tiny.region");
    assert_eq!(entries[0]["rows"], 5);
    let deleted = http.delete(url("/admin/cache/tables/tpch.tiny.region")).send().await.unwrap();
    assert_eq!(deleted.status(), 401, "invalidation needs the token too");
    let deleted = http
        .delete(url("/admin/cache/tables/tpch.tiny.region"))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(c.query_cached(sql, None).await.unwrap().0, "miss");
    let id = server.router.cache().unwrap().entries()[0].id.clone();
    let deleted = http
        .delete(url(&format!("/admin/cache/entries/{id}")))
        .bearer_auth("admin-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert!(server.router.cache().unwrap().entries().is_empty());
    let metrics = http.get(url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in [
        "flightdeck_cache_misses_total",
        "flightdeck_cache_fill_seconds",
        "flightdeck_request_seconds",
        "flightdeck_cache_bytes",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    // Without a configured token the admin API is off.
    let off = TestServer::start().await;
    let r = http.get(format!("http://{}/admin/cache/entries", off.admin)).bearer_auth("anything").send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn statement_text_in_results_is_kept() {
    // Literals are part of the key: differing only in a literal is another entry.
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let (_, a) = c.query_cached("SELECT 'Abc' AS s", None).await.unwrap();
    let (outcome, b) = c.query_cached("SELECT 'abc' AS s", None).await.unwrap();
    assert_eq!(outcome, "miss");
    assert_eq!(a[0].column(0).as_string::<i32>().value(0), "Abc");
    assert_eq!(b[0].column(0).as_string::<i32>().value(0), "abc");
}

#[tokio::test]
async fn preparing_a_cached_statement_does_not_ask_trino() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let m = marker("prepare_hit");
    let sql = format!("SELECT name, '{m}' AS m FROM tpch.tiny.region ORDER BY name");
    let (_, batches) = c.query_cached(&sql, None).await.unwrap();
    let stats = server.trino.stats();
    let before = stats.queries_started.load(std::sync::atomic::Ordering::SeqCst);
    let prepared = c.prepare(&sql).await.unwrap();
    let dataset = arrow::ipc::convert::try_schema_from_ipc_buffer(&prepared.dataset_schema).unwrap();
    assert_eq!(&dataset, batches[0].schema().as_ref());
    let info = c.prepared_info(prepared.prepared_statement_handle).await.unwrap();
    let (_, again) = c.fetch(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert_eq!(rows(&again), 5);
    // Neither DESCRIBE OUTPUT nor the query reached Trino again.
    assert_eq!(stats.queries_started.load(std::sync::atomic::Ordering::SeqCst), before);
    assert_eq!(trino_queries_containing(&m).await, 1);
}

#[tokio::test]
async fn every_answer_names_its_route() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let pair = |route: &str, cache: &str| (route.to_string(), cache.to_string());
    let sql = format!("SELECT name, '{}' AS m FROM tpch.tiny.region", marker("route"));
    assert_eq!(c.routes(&sql).await.unwrap(), [pair("trino", "miss"), pair("trino", "miss")]);
    assert_eq!(c.routes(&sql).await.unwrap(), [pair("cache", "hit"), pair("cache", "hit")]);
    assert_eq!(c.routes("SELECT now()").await.unwrap(), [pair("trino", "bypass"), pair("trino", "bypass")]);
    let table = format!("memory.default.{}", marker("route_t"));
    assert_eq!(
        c.routes(&format!("CREATE TABLE {table} AS SELECT 1 AS x")).await.unwrap(),
        [pair("trino", "bypass"), pair("trino", "bypass")]
    );
    c.routes(&format!("DROP TABLE {table}")).await.unwrap();
    let metrics = reqwest::get(format!("http://{}/metrics", server.admin)).await.unwrap().text().await.unwrap();
    for (route, cache) in [("cache", "hit"), ("trino", "miss"), ("trino", "bypass")] {
        let (route, cache) = (format!("route=\"{route}\""), format!("cache=\"{cache}\""));
        assert!(
            metrics
                .lines()
                .any(|l| l.starts_with("flightdeck_routed_total{") && l.contains(&route) && l.contains(&cache)),
            "no flightdeck_routed_total with {route} and {cache}"
        );
    }
}

#[tokio::test]
async fn calls_are_counted_by_method_and_final_status() {
    let server = TestServer::start().await;
    let mut c = server.client().await.as_user("alice");
    let refused = c.info("SELECT no_such_column FROM tpch.tiny.region").await.unwrap_err();
    assert_eq!(refused.code(), Code::NotFound);
    c.routes(&format!("SELECT '{}' AS m", marker("calls"))).await.unwrap();
    // Readiness asks Trino, and says what it found in `flightdeck_trino_up`.
    assert_eq!(reqwest::get(format!("http://{}/ready", server.admin)).await.unwrap().status(), 200);
    let metrics = reqwest::get(format!("http://{}/metrics", server.admin)).await.unwrap().text().await.unwrap();
    let counted = |rpc: &str, code: &str| {
        let (rpc, code) = (format!("rpc=\"{rpc}\""), format!("code=\"{code}\""));
        metrics.lines().any(|l| l.starts_with("flightdeck_requests_total{") && l.contains(&rpc) && l.contains(&code))
    };
    assert!(counted("GetFlightInfo", "NOT_FOUND"), "{metrics}");
    assert!(counted("GetFlightInfo", "OK"));
    assert!(counted("DoGet", "OK"), "a stream counts once it has ended");
    for gauge in ["flightdeck_trino_up", "flightdeck_cache_max_bytes", "flightdeck_memory_budget_bytes"] {
        assert!(metrics.lines().any(|l| l.starts_with(gauge)), "{gauge} missing");
    }
}
