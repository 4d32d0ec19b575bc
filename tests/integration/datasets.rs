use std::time::Duration;

use arrow::array::{AsArray, Int64Array};
use flightdeck::accel::{Access, DatasetConfig, Mode};
use serde_json::Value;

use crate::common::*;

const TOKEN: &str = "admin-token-0123456789";

/// A memory table of `(ts timestamp(3), id bigint, v varchar)` holding `rows`.
async fn table(name: &str, rows: &[(&str, i64, &str)]) -> String {
    let table = format!("memory.default.{}", marker(name));
    let trino = trino_direct();
    trino
        .execute(&session("test"), &format!("CREATE TABLE {table} (ts timestamp(3), id bigint, v varchar)"))
        .await
        .unwrap();
    insert(&table, rows).await;
    table
}

async fn insert(table: &str, rows: &[(&str, i64, &str)]) {
    let values: Vec<String> = rows.iter().map(|(ts, id, v)| format!("(TIMESTAMP '{ts}', {id}, '{v}')")).collect();
    trino_direct()
        .execute(&session("test"), &format!("INSERT INTO {table} VALUES {}", values.join(", ")))
        .await
        .unwrap();
}

fn dataset(table: &str, mode: Mode) -> DatasetConfig {
    DatasetConfig { mode, time_column: (mode == Mode::Append).then(|| "ts".to_string()), ..DatasetConfig::full(table) }
}

/// A configuration with `datasets`, their snapshots in `dir`.
fn config(datasets: Vec<DatasetConfig>, trino_url: &str, dir: &std::path::Path) -> flightdeck::Config {
    let mut config = flightdeck::Config::for_trino(trino_url);
    config.admin.token = Some(TOKEN.into());
    config.accel.datasets = datasets;
    config.accel.dir = Some(dir.to_path_buf());
    config
}

async fn serve(datasets: Vec<DatasetConfig>, trino_url: &str) -> TestServer {
    let dir = tempfile::tempdir().unwrap().keep();
    TestServer::with_config(config(datasets, trino_url, &dir)).await
}

async fn admin(server: &TestServer, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("http://{}{path}", server.admin))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let body = r.text().await.unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// The admin API's entry for `table`.
async fn state(server: &TestServer, table: &str) -> Value {
    let (_, all) = admin(server, reqwest::Method::GET, "/admin/datasets").await;
    all.as_array().unwrap().iter().find(|d| d["table"] == table).cloned().expect("listed")
}

/// `(rows, last_refresh_rows_pulled)` of an admin API entry.
fn rows_and_pulled(s: &Value) -> (Option<u64>, Option<u64>) {
    (s["rows"].as_u64(), s["last_refresh_rows_pulled"].as_u64())
}

/// Waits until `table` reaches a version past `after`, or fails a refresh.
async fn settled(server: &TestServer, table: &str, after: u64) -> Value {
    until(server, table, |s| s["version"].as_u64().unwrap() > after || s["state"] == "failed").await
}

/// The dataset's state once `done` holds of it (30 s at most).
async fn until(server: &TestServer, table: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let s = state(server, table).await;
        if done(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{table} did not settle: {}", state(server, table).await)
}

async fn refresh(server: &TestServer, table: &str) -> Value {
    let before = state(server, table).await["version"].as_u64().unwrap();
    let (status, _) = admin(server, reqwest::Method::POST, &format!("/admin/datasets/{table}/refresh")).await;
    assert_eq!(status, 202);
    settled(server, table, before).await
}

/// `(id, v)` of the dataset's current version, in its order.
fn rows(server: &TestServer, table: &str) -> Vec<(i64, String)> {
    let v = server.datasets.as_ref().unwrap().version(table).expect("loaded");
    v.slices
        .iter()
        .map(|s| &s.batch)
        .flat_map(|b| {
            let ids = b.column_by_name("id").unwrap().as_any().downcast_ref::<Int64Array>().unwrap().clone();
            // Strings are held as views.
            let vs = b.column_by_name("v").unwrap().as_string_view().clone();
            (0..b.num_rows()).map(move |i| (ids.value(i), vs.value(i).to_string())).collect::<Vec<_>>()
        })
        .collect()
}

async fn count(table: &str) -> i64 {
    let (_, b) = trino_direct().execute(&session("test"), &format!("SELECT count(*) FROM {table}")).await.unwrap();
    b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

#[tokio::test]
async fn append_refresh_reads_only_the_new_stretch_and_keeps_rows_at_the_boundary() {
    let t = table(
        "append",
        &[("2024-01-01 10:00:00", 1, "a"), ("2024-01-01 11:00:00", 2, "b"), ("2024-01-01 11:00:00", 3, "c")],
    )
    .await;
    let server = serve(vec![dataset(&t, Mode::Append)], &trino_url()).await;
    let loaded = settled(&server, &t, 0).await;
    assert_eq!((loaded["state"].as_str(), loaded["rows"].as_u64()), (Some("ready"), Some(3)), "{loaded}");
    assert_eq!(loaded["watermark"], "TIMESTAMP '2024-01-01 11:00:00.000'");
    // A row at the watermark's own timestamp, and a later one.
    insert(&t, &[("2024-01-01 11:00:00", 4, "d"), ("2024-01-01 12:00:00", 5, "e")]).await;
    let refreshed = refresh(&server, &t).await;
    assert_eq!(refreshed["state"], "ready", "{refreshed}");
    // Read again from the watermark on: the two old rows there and the two new ones.
    assert_eq!(refreshed["last_refresh_rows_pulled"], 4, "{refreshed}");
    assert_eq!(refreshed["rows"].as_i64(), Some(count(&t).await));
    let mut ids: Vec<i64> = rows(&server, &t).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, [1, 2, 3, 4, 5], "neither lost nor doubled");
    // Nothing new: only the rows at the new watermark are read.
    let again = refresh(&server, &t).await;
    assert_eq!(rows_and_pulled(&again), (Some(5), Some(1)));
}

#[tokio::test]
async fn late_and_corrected_rows_in_the_overlap_replace_their_old_versions_by_key() {
    let t = table("keyed", &[("2024-01-01 10:00:00", 1, "a"), ("2024-01-01 12:00:00", 2, "b")]).await;
    let mut d = dataset(&t, Mode::Append);
    d.overlap = Duration::from_secs(3600);
    d.key = vec!["id".into()];
    let server = serve(vec![d], &trino_url()).await;
    settled(&server, &t, 0).await;
    // A late row inside the overlap, and a correction of row 1 (the memory
    // connector cannot update: the correction is a newer row with its key).
    insert(&t, &[("2024-01-01 11:30:00", 3, "c"), ("2024-01-01 12:30:00", 1, "a2")]).await;
    let refreshed = refresh(&server, &t).await;
    assert_eq!(refreshed["state"], "ready", "{refreshed}");
    let mut got = rows(&server, &t);
    got.sort();
    assert_eq!(got, [(1, "a2".to_string()), (2, "b".to_string()), (3, "c".to_string())]);
}

#[tokio::test]
async fn full_refresh_replaces_the_whole_table_and_marks_cached_answers_stale() {
    let t = table("full", &[("2024-01-01 10:00:00", 1, "a")]).await;
    let server = serve(vec![dataset(&t, Mode::Full)], &trino_url()).await;
    assert_eq!(settled(&server, &t, 0).await["rows"], 1);
    let mut c = server.client().await;
    let sql = format!("SELECT count(*) FROM {t}");
    assert_eq!(c.query_cached(&sql, None).await.unwrap().0, "miss");
    assert_eq!(c.query_cached(&sql, None).await.unwrap().0, "hit");
    insert(&t, &[("2024-01-01 09:00:00", 2, "b")]).await;
    let refreshed = refresh(&server, &t).await;
    assert_eq!((refreshed["rows"].as_u64(), refreshed["version"].as_u64()), (Some(2), Some(2)));
    assert_eq!(refreshed["last_refresh_rows_pulled"], 2);
    // The answer computed before the refresh is no longer fresh.
    assert_eq!(c.query_cached(&sql, None).await.unwrap().0, "stale");
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_previous_version_and_recovers() {
    let t = table("outage", &[("2024-01-01 10:00:00", 1, "a")]).await;
    let target: std::net::SocketAddr = trino_url().trim_start_matches("http://").parse().unwrap();
    let proxy = SwitchProxy::start(target).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(vec![dataset(&t, Mode::Append)], &format!("http://{}", proxy.addr), dir.path());
    config.trino.client.retry_budget = Duration::from_millis(300);
    let server = TestServer::with_config(config).await;
    assert_eq!(settled(&server, &t, 0).await["state"], "ready");
    proxy.switch_off();
    let failed = refresh(&server, &t).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["error"].as_str().is_some_and(|e| !e.is_empty()), "{failed}");
    assert_eq!((failed["rows"].as_u64(), failed["version"].as_u64()), (Some(1), Some(1)), "the old version stays");
    assert_eq!(rows(&server, &t), [(1, "a".to_string())]);
    proxy.switch_on();
    insert(&t, &[("2024-01-01 11:00:00", 2, "b")]).await;
    let recovered = refresh(&server, &t).await;
    assert_eq!((recovered["state"].as_str(), recovered["rows"].as_u64()), (Some("ready"), Some(2)), "{recovered}");
    assert_eq!(recovered["error"], Value::Null);
}

#[tokio::test]
async fn ready_waits_for_every_dataset_and_one_over_its_limit_fails_clearly() {
    let small = table("small", &[("2024-01-01 10:00:00", 1, "a")]).await;
    let big = table("big", &[("2024-01-01 10:00:00", 1, "a"), ("2024-01-01 11:00:00", 2, "b")]).await;
    let mut limited = dataset(&big, Mode::Full);
    limited.max_bytes = Some(16);
    let server = serve(vec![dataset(&small, Mode::Full), limited], &trino_url()).await;
    assert_eq!(settled(&server, &small, 0).await["state"], "ready");
    let failed = settled(&server, &big, 0).await;
    assert_eq!(failed["state"], "failed", "{failed}");
    assert!(failed["error"].as_str().unwrap().contains("max_bytes"), "{failed}");
    let ready = reqwest::get(format!("http://{}/ready", server.admin)).await.unwrap();
    assert_eq!(ready.status(), 503, "ready before every dataset has loaded");
    assert!(ready.text().await.unwrap().contains("datasets"));
    // The server serves on.
    let mut c = server.client().await;
    assert_eq!(c.query("SELECT 1").await.unwrap().2[0].num_rows(), 1);
    // Paused datasets are not refreshed; resumed ones are.
    let (status, _) = admin(&server, reqwest::Method::POST, &format!("/admin/datasets/{small}/pause")).await;
    assert_eq!(status, 200);
    assert_eq!(state(&server, &small).await["state"], "paused");
    let (status, _) = admin(&server, reqwest::Method::POST, "/admin/datasets/memory.default.nope/refresh").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_restart_loads_from_disk_then_reads_only_new_rows_and_a_damaged_snapshot_is_read_again() {
    let t = table(
        "restart",
        &[("2024-01-01 10:00:00", 1, "a"), ("2024-01-01 11:00:00", 2, "b"), ("2024-01-01 11:00:00", 3, "c")],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let first = TestServer::with_config(config(vec![dataset(&t, Mode::Append)], &trino_url(), dir.path())).await;
    assert_eq!(settled(&first, &t, 0).await["last_refresh_rows_pulled"], 3);
    first.stop().await;
    insert(&t, &[("2024-01-01 12:00:00", 4, "d"), ("2024-01-01 13:00:00", 5, "e")]).await;
    // With Trino out of reach, what the dataset holds can only come from disk.
    let target: std::net::SocketAddr = trino_url().trim_start_matches("http://").parse().unwrap();
    let proxy = SwitchProxy::start(target).await;
    proxy.switch_off();
    let mut offline = config(vec![dataset(&t, Mode::Append)], &format!("http://{}", proxy.addr), dir.path());
    offline.trino.client.retry_budget = Duration::from_millis(300);
    let second = TestServer::with_config(offline).await;
    let loaded = settled(&second, &t, 0).await;
    assert_eq!((loaded["rows"].as_u64(), loaded["version"].as_u64()), (Some(3), Some(1)), "{loaded}");
    assert_eq!(rows(&second, &t).len(), 3);
    // Back online: the next retry goes on from the stored watermark (11:00).
    // No refresh is requested, so that exactly one refresh succeeds: one
    // asked for while another runs is run again after it.
    until(&second, &t, |s| s["state"] == "failed").await;
    proxy.switch_on();
    let refreshed = until(&second, &t, |s| s["version"] == 2 && s["state"] == "ready").await;
    assert_eq!(refreshed["rows"].as_u64(), Some(5), "{refreshed}");
    assert_eq!(refreshed["last_refresh_rows_pulled"], 4, "two rows at the watermark and two new ones, not all five");
    second.stop().await;
    // A torn data file is refused, and the table read whole.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "arrow") {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
        }
    }
    let third = TestServer::with_config(config(vec![dataset(&t, Mode::Append)], &trino_url(), dir.path())).await;
    let reloaded = settled(&third, &t, 0).await;
    assert_eq!(rows_and_pulled(&reloaded), (Some(5), Some(5)), "{reloaded}");
}

#[tokio::test]
async fn rows_older_than_the_retention_are_neither_read_again_nor_kept() {
    let at = |ago: chrono::Duration| (chrono::Utc::now() - ago).format("%Y-%m-%d %H:%M:%S").to_string();
    let (old, recent) = (at(chrono::Duration::days(3)), at(chrono::Duration::hours(2)));
    let t = table("retention", &[(&old, 1, "old"), (&recent, 2, "recent")]).await;
    let mut d = dataset(&t, Mode::Append);
    d.retention = Some(Duration::from_secs(86_400));
    let server = serve(vec![d], &trino_url()).await;
    assert_eq!(settled(&server, &t, 0).await["rows"], 1);
    assert_eq!(rows(&server, &t), [(2, "recent".to_string())]);
    // Only Trino holds the old row: a query that may read it goes there,
    // one whose range lies inside the retention is answered locally.
    let mut c = server.client().await;
    let ids = |b: &[arrow::record_batch::RecordBatch]| -> Vec<i64> {
        b.iter().flat_map(|b| b.column(0).as_primitive::<arrow::datatypes::Int64Type>().values().to_vec()).collect()
    };
    let all = format!("SELECT count(*) FROM {t}");
    let (route, _, b) = c.routed(&all).await.unwrap();
    assert_eq!((route.as_str(), ids(&b)), ("trino", vec![2]));
    let since = |ago| format!("SELECT id FROM {t} WHERE ts >= TIMESTAMP '{}' ORDER BY id", at(ago));
    let (route, _, b) = c.routed(&since(chrono::Duration::hours(12))).await.unwrap();
    assert_eq!((route.as_str(), ids(&b)), ("local", vec![2]));
    let (route, _, b) = c.routed(&since(chrono::Duration::days(4))).await.unwrap();
    assert_eq!((route.as_str(), ids(&b)), ("trino", vec![1, 2]));
    let now = at(chrono::Duration::zero());
    insert(&t, &[(&now, 3, "now"), (&at(chrono::Duration::days(5)), 4, "late but too old")]).await;
    let refreshed = refresh(&server, &t).await;
    let mut ids: Vec<i64> = rows(&server, &t).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, [2, 3], "{refreshed}");
}

/// An append dataset on a time column of `ty`: loads, then a refresh reads
/// the rows at the watermark and after it, and the copy equals the table.
async fn refreshes_on_a_time_column_of(ty: &str, first: &[&str], later: &[&str], watermark: &str) {
    let t = format!("memory.default.{}", marker("typed"));
    let trino = trino_direct();
    trino.execute(&session("test"), &format!("CREATE TABLE {t} (ts {ty}, id bigint, v varchar)")).await.unwrap();
    let insert = |values: &[&str], from: usize| {
        let rows: Vec<String> =
            values.iter().enumerate().map(|(i, ts)| format!("({ts}, {}, 'r{}')", from + i, from + i)).collect();
        format!("INSERT INTO {t} VALUES {}", rows.join(", "))
    };
    trino.execute(&session("test"), &insert(first, 0)).await.unwrap();
    let server = serve(vec![dataset(&t, Mode::Append)], &trino_url()).await;
    let loaded = settled(&server, &t, 0).await;
    assert_eq!((loaded["state"].as_str(), loaded["rows"].as_u64()), (Some("ready"), Some(first.len() as u64)));
    assert_eq!(loaded["watermark"], watermark, "{ty}");
    trino.execute(&session("test"), &insert(later, first.len())).await.unwrap();
    let refreshed = refresh(&server, &t).await;
    assert_eq!(refreshed["state"], "ready", "{ty}: {refreshed}");
    // The one old row at the watermark, read again, and the new ones.
    assert_eq!(refreshed["last_refresh_rows_pulled"].as_u64(), Some(1 + later.len() as u64), "{ty}: {refreshed}");
    let mut ids: Vec<i64> = rows(&server, &t).into_iter().map(|(id, _)| id).collect();
    ids.sort();
    assert_eq!(ids, (0..(first.len() + later.len()) as i64).collect::<Vec<_>>(), "{ty}: neither lost nor doubled");
}

#[tokio::test]
async fn date_integer_and_zoned_time_columns_refresh_incrementally() {
    // A later row on the watermark's own day, and one after it.
    refreshes_on_a_time_column_of(
        "date",
        &["DATE '2024-01-01'", "DATE '2024-03-01'"],
        &["DATE '2024-03-01'", "DATE '2024-03-02'"],
        "DATE '2024-03-01'",
    )
    .await;
    refreshes_on_a_time_column_of(
        "bigint",
        &["-5", "1700000000"],
        &["1700000000", "1700000060"],
        "BIGINT '1700000000'",
    )
    .await;
    refreshes_on_a_time_column_of(
        "timestamp(6) with time zone",
        &["TIMESTAMP '2024-01-01 10:00:00.000001 Europe/Paris'", "TIMESTAMP '2024-01-01 12:00:00.123456 UTC'"],
        // The same instant written in another zone is at the watermark.
        &["TIMESTAMP '2024-01-01 13:00:00.123456 +01:00'", "TIMESTAMP '2024-01-02 00:00:00 UTC'"],
        "TIMESTAMP '2024-01-01 12:00:00.123456 UTC'",
    )
    .await;
}

/// A dataset on a tpch table with `access`.
fn tpch(table: &str, access: Access) -> DatasetConfig {
    DatasetConfig { access, ..dataset(&format!("tpch.tiny.{table}"), Mode::Full) }
}

/// Access checks this user sent to Trino.
async fn checks_by(user: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM system.runtime.queries WHERE \"user\" = '{user}' AND query LIKE 'SELECT * FROM % LIMIT 0'"
    );
    let (_, b) = trino_direct().execute(&session("test"), &sql).await.unwrap();
    b[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0)
}

#[tokio::test]
async fn only_users_trino_lets_read_the_whole_table_may_read_its_dataset() {
    let server = serve(
        vec![tpch("customer", Access::Trino), tpch("nation", Access::Trino), tpch("region", Access::All)],
        &trino_url(),
    )
    .await;
    let datasets = server.datasets.clone().unwrap();
    let reader = marker("reader");
    assert!(datasets.may_read(&reader, "tpch.tiny.customer").await);
    assert!(datasets.may_read(&reader, "TPCH.tiny.Customer").await, "table names are case-insensitive");
    // Trino's rules deny `restricted` the table.
    assert!(!datasets.may_read("restricted", "tpch.tiny.customer").await);
    // `filtered` may read nation, but only the rows of one region: the
    // whole copy is not theirs to see.
    assert!(!datasets.may_read("filtered", "tpch.tiny.nation").await);
    assert!(datasets.may_read(&reader, "tpch.tiny.nation").await);
    // `access = "all"`: no question asked.
    assert!(datasets.may_read("restricted", "tpch.tiny.region").await);
    assert!(!datasets.may_read(&reader, "tpch.tiny.orders").await, "not a dataset");
    // Decisions are remembered: the reader was asked about each table once.
    assert!(datasets.may_read(&reader, "tpch.tiny.customer").await);
    assert_eq!(checks_by(&reader).await, 2);
}

#[tokio::test]
async fn an_iceberg_dataset_reads_nothing_without_a_new_snapshot_and_only_the_files_appended() {
    let trino = trino_direct();
    let run = |sql: String| {
        let trino = trino.clone();
        async move { trino.execute(&session("test"), &sql).await.unwrap() }
    };
    let schema = marker("ice");
    run(format!("CREATE SCHEMA iceberg.{schema}")).await;
    let t = format!("iceberg.{schema}.events");
    run(format!("CREATE TABLE {t} (ts timestamp(6), id bigint, v varchar)")).await;
    let values = |rows: &[(&str, i64, &str)]| {
        let v: Vec<String> = rows.iter().map(|(ts, id, v)| format!("(TIMESTAMP '{ts}', {id}, '{v}')")).collect();
        format!("INSERT INTO {t} VALUES {}", v.join(", "))
    };
    run(values(&[("2024-01-01 10:00:00", 1, "a"), ("2024-01-01 11:00:00", 2, "b"), ("2024-01-01 11:00:00", 3, "c")]))
        .await;
    let ds = DatasetConfig { snapshots: true, ..dataset(&t, Mode::Append) };
    let server = serve(vec![ds], &trino_url()).await;
    let first = settled(&server, &t, 0).await;
    assert_eq!(rows_and_pulled(&first), (Some(3), Some(3)), "{first}");
    let ids = |server: &TestServer| {
        let mut ids: Vec<i64> = rows(server, &t).into_iter().map(|(id, _)| id).collect();
        ids.sort();
        ids
    };

    // No new snapshot: the refresh reads nothing and keeps the version.
    let at = first["last_refresh_at"].clone();
    let (status, _) = admin(&server, reqwest::Method::POST, &format!("/admin/datasets/{t}/refresh")).await;
    assert_eq!(status, 202);
    let same = until(&server, &t, |s| s["last_refresh_at"] != at && s["state"] == "ready").await;
    assert_eq!((same["version"].as_u64(), same["last_refresh_rows_pulled"].as_u64()), (Some(1), Some(0)), "{same}");

    // Appended snapshots: only the files they added are read, even rows
    // at the watermark's own time.
    run(values(&[("2024-01-01 11:00:00", 4, "d")])).await;
    run(values(&[("2024-01-01 12:00:00", 5, "e")])).await;
    let appended = refresh(&server, &t).await;
    assert_eq!(rows_and_pulled(&appended), (Some(5), Some(2)), "{appended}");
    assert_eq!(ids(&server), [1, 2, 3, 4, 5]);

    // A row before the watermark cannot go after the sorted rows: read whole.
    run(values(&[("2024-01-01 09:00:00", 0, "z")])).await;
    let late = refresh(&server, &t).await;
    assert_eq!(rows_and_pulled(&late), (Some(6), Some(6)), "{late}");
    assert_eq!(ids(&server), [0, 1, 2, 3, 4, 5]);

    // A delete is not an append: read whole.
    run(format!("DELETE FROM {t} WHERE id = 3")).await;
    let deleted = refresh(&server, &t).await;
    assert_eq!(rows_and_pulled(&deleted), (Some(5), Some(5)), "{deleted}");
    assert_eq!(ids(&server), [0, 1, 2, 4, 5]);
    server.stop().await;
    run(format!("DROP TABLE {t}")).await;
    run(format!("DROP SCHEMA iceberg.{schema}")).await;
}

#[tokio::test]
async fn a_statement_prepared_before_a_refresh_runs_on_the_new_version() {
    let t = table("prepared_refresh", &[("2024-01-01 00:00:00", 1, "a"), ("2024-01-01 01:00:00", 2, "b")]).await;
    let server = serve(vec![DatasetConfig { access: Access::All, ..dataset(&t, Mode::Append) }], &trino_url()).await;
    settled(&server, &t, 0).await;
    let mut c = server.client().await;
    let sql = format!("SELECT count(*) AS n, max(id) AS top FROM {t}");
    let count = |batches: &[arrow::record_batch::RecordBatch]| {
        batches[0].column(0).as_primitive::<arrow::datatypes::Int64Type>().value(0)
    };
    // Prepared and run at once: the plan made to describe it answers.
    let prepared = c.prepare(&sql).await.unwrap();
    let (route, batches) = c.prepared_routed(prepared.prepared_statement_handle).await.unwrap();
    assert_eq!((route.as_str(), count(&batches)), ("local", 2));
    // Described, then the dataset moves on before it runs: the run reads
    // the new version, not the one the description was planned on.
    // (Another statement: the first one's answer is in the result cache.)
    let again = c.prepare(&format!("SELECT count(*) AS n, min(id) AS low FROM {t}")).await.unwrap();
    insert(&t, &[("2024-01-01 02:00:00", 3, "c")]).await;
    refresh(&server, &t).await;
    let (route, batches) = c.prepared_routed(again.prepared_statement_handle).await.unwrap();
    assert_eq!((route.as_str(), count(&batches)), ("local", 3));
}

#[tokio::test]
async fn values_arrow_keeps_only_in_part_leave_the_dataset_to_trino() {
    let t = format!("memory.default.{}", marker("zoned"));
    let run = |sql: String| async move { trino_direct().execute(&session("test"), &sql).await.unwrap() };
    run(format!("CREATE TABLE {t} (ts timestamp(3) with time zone, id bigint)")).await;
    run(format!(
        "INSERT INTO {t} VALUES (TIMESTAMP '2024-01-01 00:00:00 UTC', 1), (TIMESTAMP '2024-01-01 00:30:00 UTC', 2)"
    ))
    .await;
    let config = DatasetConfig { access: Access::All, ..dataset(&t, Mode::Append) };
    let server = serve(vec![config], &trino_url()).await;
    settled(&server, &t, 0).await;
    let mut c = server.client().await;
    let sql = format!("SELECT ts, id FROM {t} ORDER BY id");
    assert_eq!(c.routed(&sql).await.unwrap().0, "local", "UTC values are whole in Arrow");
    // A zone Arrow keeps only as an instant, appended: the column is marked
    // (its layout changes: read whole, once), and Trino answers, with the zone.
    run(format!("INSERT INTO {t} VALUES (TIMESTAMP '2024-01-01 10:00:00 Asia/Tokyo', 3)")).await;
    let refreshed = refresh(&server, &t).await;
    assert_eq!(rows_and_pulled(&refreshed), (Some(3), Some(3)), "{refreshed}");
    let sql = format!("SELECT ts, id FROM {t} WHERE id > 0 ORDER BY id");
    assert_eq!(c.routed(&sql).await.unwrap().0, "trino");
    let explained = c.routed(&format!("EXPLAIN {sql}")).await.unwrap().2;
    let text = explained[0].column(0).as_string::<i32>().value(0).to_string();
    assert!(text.contains(&format!("{t}.ts holds zones or sub-nanosecond digits")), "{text}");
    // The mark stays with the versions that follow, whatever they append,
    // and refreshes are incremental again: the row at the watermark and the new one.
    run(format!("INSERT INTO {t} VALUES (TIMESTAMP '2024-01-01 02:00:00 UTC', 4)")).await;
    let again = refresh(&server, &t).await;
    assert_eq!(rows_and_pulled(&again), (Some(4), Some(2)), "incremental: {again}");
    assert_eq!(c.routed(&format!("SELECT count(*) FROM {t}")).await.unwrap().0, "trino");
    server.stop().await;
    run(format!("DROP TABLE {t}")).await;
}

#[tokio::test]
async fn snapshots_are_written_at_most_once_a_minute_and_the_newest_at_shutdown() {
    let t = table("spacing", &[("2024-01-01 10:00:00", 1, "a")]).await;
    let dir = tempfile::tempdir().unwrap();
    // The version the snapshot on disk holds, from its manifest.
    let on_disk = || -> Option<u64> {
        let manifest = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|e| e == "json"))?;
        let m: serde_json::Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
        m["version"].as_u64()
    };
    let server = TestServer::with_config(config(vec![dataset(&t, Mode::Append)], &trino_url(), dir.path())).await;
    settled(&server, &t, 0).await;
    // The first version is written at once (after the load, before the
    // next refresh can start).
    for _ in 0..100 {
        if on_disk() == Some(1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(on_disk(), Some(1));
    // Appends a second later: served at once, not written again yet.
    insert(&t, &[("2024-01-01 11:00:00", 2, "b")]).await;
    let refreshed = refresh(&server, &t).await;
    assert_eq!(refreshed["version"], 2, "{refreshed}");
    insert(&t, &[("2024-01-01 12:00:00", 3, "c")]).await;
    let refreshed = refresh(&server, &t).await;
    assert_eq!(refreshed["version"], 3, "{refreshed}");
    assert_eq!(on_disk(), Some(1), "a snapshot within the minute");
    // Stopping writes the newest.
    server.stop().await;
    assert_eq!(on_disk(), Some(3));
}
