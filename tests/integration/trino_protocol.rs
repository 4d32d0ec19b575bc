//! Trino's client protocol on Flightdeck's second port, compared with Trino
//! itself answering the same requests: the same columns, type signatures,
//! values and errors, whichever route answered.

use std::net::SocketAddr;

use base64::Engine as _;
use flightdeck::accel::{Access, DatasetConfig};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::common::*;

trait BodyJson {
    async fn body_json(self) -> Value;
}

impl BodyJson for reqwest::Response {
    async fn body_json(self) -> Value {
        serde_json::from_slice(&self.bytes().await.unwrap()).unwrap()
    }
}

/// What a client sees of one statement: every page followed to the end.
#[derive(Debug, Default)]
struct Run {
    columns: Value,
    data: Vec<Value>,
    error: Option<Value>,
    update_type: Option<String>,
    update_count: Option<i64>,
    /// Response headers of every page.
    headers: Vec<HeaderMap>,
    pages: usize,
}

impl Run {
    fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .flat_map(|h| h.get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect::<Vec<_>>())
            .collect()
    }

    /// The error as a client acts on it (Trino's stack traces aside).
    fn error_essentials(&self) -> Option<Value> {
        let e = self.error.as_ref()?;
        Some(serde_json::json!({
            "message": e["message"], "errorCode": e["errorCode"], "errorName": e["errorName"],
            "errorType": e["errorType"], "errorLocation": e["errorLocation"],
        }))
    }
}

/// A Trino-protocol client with fixed request headers.
#[derive(Clone)]
struct Http {
    base: String,
    http: reqwest::Client,
    headers: Vec<(String, String)>,
}

impl Http {
    fn new(base: String) -> Http {
        Http {
            base,
            http: reqwest::Client::new(),
            headers: vec![
                ("X-Trino-User".into(), "test".into()),
                ("X-Trino-Client-Capabilities".into(), "PARAMETRIC_DATETIME".into()),
            ],
        }
    }

    fn to(addr: SocketAddr) -> Http {
        Http::new(format!("http://{addr}"))
    }

    fn trino() -> Http {
        Http::new(trino_url())
    }

    fn with(mut self, name: &str, value: &str) -> Http {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
        self
    }

    fn without(mut self, name: &str) -> Http {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    async fn post(&self, sql: &str) -> reqwest::Response {
        let mut r = self.http.post(format!("{}/v1/statement", self.base)).body(sql.to_string());
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        r.send().await.unwrap()
    }

    async fn get(&self, uri: &str) -> reqwest::Response {
        let mut r = self.http.get(uri);
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        r.send().await.unwrap()
    }

    /// Submits `sql` and follows `nextUri` to the end.
    async fn run(&self, sql: &str) -> Run {
        let mut run = Run::default();
        let mut response = self.post(sql).await;
        loop {
            assert_eq!(response.status(), 200, "{sql}");
            run.headers.push(response.headers().clone());
            let page: Value = response.body_json().await;
            run.pages += 1;
            assert!(page["id"].is_string() && page["infoUri"].is_string() && page["stats"]["state"].is_string());
            if !page["columns"].is_null() {
                run.columns = page["columns"].clone();
            }
            if let Some(rows) = page["data"].as_array() {
                run.data.extend(rows.iter().cloned());
            }
            if !page["error"].is_null() {
                run.error = Some(page["error"].clone());
            }
            if let Some(t) = page["updateType"].as_str() {
                run.update_type = Some(t.to_string());
            }
            if let Some(n) = page["updateCount"].as_i64() {
                run.update_count = Some(n);
            }
            match page["nextUri"].as_str() {
                Some(next) => response = self.get(next).await,
                None => return run,
            }
        }
    }
}

/// Asserts that Flightdeck's answer to `sql` is Trino's, and returns the route.
async fn same_as_trino(fd: &Http, trino: &Http, sql: &str) -> String {
    let (got, want) = (fd.run(sql).await, trino.run(sql).await);
    assert_eq!(got.error_essentials(), want.error_essentials(), "{sql}");
    // A failed statement's columns, if any, are not read by clients.
    if want.error.is_none() {
        assert_eq!(got.columns, want.columns, "{sql}");
    }
    assert!(
        close(&Value::Array(got.data.clone()), &Value::Array(want.data.clone())),
        "{sql}\n{:?}\n{:?}",
        got.data,
        want.data
    );
    got.header("x-flightdeck-route").pop().expect("a route header")
}

/// Equal JSON, with floating-point numbers within 1e-9 relative (sums in
/// another order).
fn close(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            x == y || (x - y).abs() <= 1e-9 * x.abs().max(y.abs())
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| close(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
        }
        _ => a == b,
    }
}

/// Values of every type the protocol carries, at their edges.
const TYPES: &[&str] = &[
    "SELECT true AS b, TINYINT '-128' AS ti, SMALLINT '32767' AS si, -2147483648 AS i, BIGINT '-9223372036854775808' AS bi",
    "SELECT REAL '1.5' AS r, REAL '0.1' AS r1, DOUBLE '0.1' AS d, 1e10 AS big, 1e-7 AS small, nan() AS n, infinity() AS inf, -infinity() AS ninf, -0e0 AS nz",
    "SELECT CAST('12.345' AS decimal(10,3)) AS d1, CAST('99999999999999999999999999999999999999' AS decimal(38,0)) AS d38, \
     CAST('-0.00000000000000000000000000000000000001' AS decimal(38,38)) AS d38s, CAST(0 AS decimal(5,2)) AS z, 1.50 AS lit",
    "SELECT 'héllo \"q\" \\ \u{1F600}' AS v, CAST('ab' AS char(4)) AS c, X'00ff10' AS vb, X'' AS empty, JSON '{\"a\":[1,null]}' AS j, \
     'line\r\nbreak\ttab' AS ctl, CAST('x' AS varchar(5)) AS v5",
    "SELECT DATE '2024-02-29' AS d, DATE '1900-01-01' AS old, DATE '-0001-01-01' AS bc, DATE '9999-12-31' AS last",
    // The first and last dates Trino holds, and years past those chrono does.
    "SELECT DATE '5881580-07-11' AS maxd, DATE '-5877641-06-23' AS mind, DATE '+300000-02-29' AS far, \
     DATE '-300000-03-01' AS far_bc, DATE '10000-01-01' AS tenk, DATE '0000-01-01' AS zero, DATE '-0001-12-31' AS before_zero",
    "SELECT TIME '12:34:56.123456' AS t6, TIME '00:00:01' AS t0, TIME '23:59:59.999999999' AS t9, TIME '01:02:03.5' AS t1",
    "SELECT TIMESTAMP '2024-01-31 12:34:56.123456' AS ts6, TIMESTAMP '1969-07-20 20:17:40' AS ts0, \
     TIMESTAMP '1969-12-31 23:59:59.999999999' AS ts9, TIMESTAMP '2024-01-01 10:00:00.001 UTC' AS tz3",
    // Zones: several in one column, a DST gap, historic offsets.
    "SELECT ts FROM (VALUES TIMESTAMP '2024-07-01 00:00:00.123 America/New_York', TIMESTAMP '2024-01-01 00:00:00.5 +05:30', \
     TIMESTAMP '2024-03-10 02:30:00 America/New_York', TIMESTAMP '1900-01-01 00:00:00 Europe/Amsterdam', \
     TIMESTAMP '2024-01-01 00:00:00 UTC', NULL, TIMESTAMP '2024-06-01 12:00:00.000001 -03:30') AS t(ts)",
    // Digits below the nanosecond.
    "SELECT TIMESTAMP '2024-01-31 12:34:56.123456789012' AS ts12, TIMESTAMP '1969-12-31 23:59:59.999999999999 Asia/Kolkata' AS tz12, \
     TIME '23:59:59.999999999999' AS t12, TIME '01:02:03.000000000001' AS t12b, TIMESTAMP '2024-01-01 00:00:00.0000000001' AS ts10",
    // Zones computed by the query: an hour that DST repeats, an offset of half an hour.
    "SELECT TIMESTAMP '2024-11-03 06:30:00 UTC' AT TIME ZONE 'America/New_York' AS repeated, \
     with_timezone(TIMESTAMP '2024-06-01 12:00:00', 'Australia/Lord_Howe') AS lord_howe, \
     from_iso8601_timestamp('2024-02-29T23:59:59.999+14:00') AS kiritimati",
    // The same inside arrays, maps and rows.
    "SELECT a, m, r, plain FROM (VALUES (ARRAY[TIMESTAMP '2024-01-01 00:00:00.123456 Asia/Tokyo', NULL, TIMESTAMP '2024-01-01 00:00:00 UTC'], \
     MAP(ARRAY['k', 'l'], ARRAY[TIMESTAMP '2024-01-01 00:00:00.5 +05:30', NULL]), CAST(ROW(TIME '01:02:03.000000000001', 1) AS ROW(t time(12), n integer)), \
     ARRAY[TIMESTAMP '2024-01-01 00:00:00 UTC']), (NULL, NULL, NULL, NULL), \
     (ARRAY[], MAP(ARRAY['z'], ARRAY[TIMESTAMP '1999-12-31 23:59:59.9996 UTC']), CAST(ROW(TIME '23:59:59.999999999999', 2) AS ROW(t time(12), n integer)), \
     ARRAY[TIMESTAMP '2024-01-01 00:00:00.123456 Europe/Paris'])) AS t(a, m, r, plain)",
    "SELECT INTERVAL '2' DAY AS ids, INTERVAL '-3' SECOND AS neg, INTERVAL '1 02:03:04.005' DAY TO SECOND AS whole, \
     INTERVAL '14' MONTH AS ym, INTERVAL '-3' MONTH AS nym",
    "SELECT UUID '12151fd2-7586-11e9-8f9e-2a86e4085a59' AS u, IPADDRESS '2001:db8::1' AS ip6, IPADDRESS '10.0.0.1' AS ip4, \
     TIME '01:02:03.123 +05:00' AS ttz",
    "SELECT ARRAY[1, NULL, 3] AS a, ARRAY[ARRAY['x'], NULL] AS aa, MAP(ARRAY['k1', 'k2'], ARRAY[1.5E0, NULL]) AS m, \
     MAP(ARRAY[1, 2], ARRAY[true, false]) AS mi, MAP(ARRAY[DATE '2024-01-01'], ARRAY[1]) AS md, \
     CAST(ROW(1, 'x', ARRAY[DATE '2024-01-01']) AS ROW(a bigint, \"b c\" varchar, c array(date))) AS r, ROW(1, 2.5) AS anon",
    "SELECT CAST(NULL AS integer) AS ni, CAST(NULL AS varchar) AS nv, CAST(NULL AS array(integer)) AS na, \
     CAST(NULL AS row(a integer)) AS nr, CAST(NULL AS map(varchar, integer)) AS nm, NULL AS unknown",
    "SELECT * FROM tpch.tiny.nation ORDER BY nationkey",
    "SELECT orderkey, orderdate, totalprice, orderpriority FROM tpch.tiny.orders ORDER BY orderkey LIMIT 3000",
    "SELECT * FROM tpch.tiny.customer WHERE custkey < 0",
];

#[tokio::test]
async fn every_type_reads_as_trino_writes_it() {
    let server = TestServer::uncached().await;
    let (fd, trino) = (Http::to(server.trino_protocol.unwrap()), Http::trino());
    for sql in TYPES {
        assert_eq!(same_as_trino(&fd, &trino, sql).await, "trino", "{sql}");
    }
    // A client without parametric datetimes gets milliseconds, rounded,
    // and types without a precision, as from Trino.
    let (old_fd, old_trino) =
        (fd.clone().without("X-Trino-Client-Capabilities"), trino.clone().without("X-Trino-Client-Capabilities"));
    for sql in &TYPES[5..11] {
        same_as_trino(&old_fd, &old_trino, sql).await;
    }
}

#[tokio::test]
async fn cached_and_local_answers_are_trinos_json() {
    let nation = DatasetConfig { access: Access::All, ..DatasetConfig::full("tpch.tiny.nation") };
    let orders = DatasetConfig {
        access: Access::All,
        time_column: Some("orderdate".into()),
        ..DatasetConfig::full("tpch.tiny.orders")
    };
    let server = TestServer::with_datasets(vec![nation, orders]).await;
    let (fd, trino) = (Http::to(server.trino_protocol.unwrap()), Http::trino());
    let queries = [
        "SELECT regionkey, count(*) AS n, max(name) AS last FROM tpch.tiny.nation GROUP BY regionkey ORDER BY regionkey",
        "SELECT orderpriority, sum(totalprice) AS total, avg(totalprice) AS mean, min(orderdate) AS first \
         FROM tpch.tiny.orders WHERE orderdate >= DATE '1995-01-01' GROUP BY orderpriority ORDER BY orderpriority",
        "SELECT orderkey, orderdate, totalprice FROM tpch.tiny.orders WHERE orderdate < DATE '1995-06-01' \
         ORDER BY orderdate DESC, orderkey LIMIT 20",
    ];
    for sql in queries {
        let first = fd.run(sql).await;
        assert_eq!(
            (first.header("x-flightdeck-route"), first.header("x-flightdeck-cache")),
            (vec!["local".into()], vec!["miss".into()]),
            "{sql}"
        );
        assert_eq!(same_as_trino(&fd, &trino, sql).await, "cache", "{sql}");
        // `no-cache` skips the cache, not the local route.
        assert_eq!(same_as_trino(&fd.clone().with("X-Flightdeck-Cache", "no-cache"), &trino, sql).await, "local");
    }
    // A session in another time zone is not answered locally.
    let sql = "SELECT count(*) AS n FROM tpch.tiny.nation";
    let elsewhere = fd.clone().with("X-Trino-Time-Zone", "Asia/Kathmandu").with("X-Flightdeck-Cache", "no-cache");
    assert_eq!(elsewhere.run(sql).await.header("x-flightdeck-route"), vec!["trino"]);
    let utc = fd.clone().with("X-Trino-Time-Zone", "Etc/UTC").with("X-Flightdeck-Cache", "no-cache");
    assert_eq!(utc.run(sql).await.header("x-flightdeck-route"), vec!["local"]);
    // `SET TIME ZONE` is a session property to Trino, and counts the same.
    let set = fd.run("SET TIME ZONE 'Asia/Kathmandu'").await;
    assert_eq!(set.header("x-trino-set-session"), vec!["time_zone_id=Asia%2FKathmandu"]);
    let zoned = utc.clone().with("X-Trino-Session", "time_zone_id=Asia%2FKathmandu");
    assert_eq!(zoned.run(sql).await.header("x-flightdeck-route"), vec!["trino"]);
    // The time zone is part of the cache key: the answers differ. Zones
    // and sub-nanosecond digits come out of the cache as Trino wrote them.
    let sql = "SELECT CAST(TIMESTAMP '2024-01-01 00:00:00' AS timestamp with time zone) AS t";
    let picos = "SELECT * FROM (VALUES (TIMESTAMP '2024-07-01 00:00:00.123456789012 America/New_York', \
                 TIME '12:00:00.000000000009'), (TIMESTAMP '2024-07-01 00:00:00 UTC', NULL)) AS t(ts, tm)";
    for zone in ["UTC", "Asia/Kathmandu"] {
        let (fd, trino) = (fd.clone().with("X-Trino-Time-Zone", zone), trino.clone().with("X-Trino-Time-Zone", zone));
        let mut routes = Vec::new();
        for _ in 0..2 {
            routes.push(same_as_trino(&fd, &trino, sql).await);
            routes.push(same_as_trino(&fd, &trino, picos).await);
        }
        assert_eq!(routes, ["trino", "trino", "cache", "cache"], "{zone}");
    }
    let kathmandu = fd.clone().with("X-Trino-Time-Zone", "Asia/Kathmandu").run(sql).await;
    assert_eq!(kathmandu.data, vec![serde_json::json!(["2024-01-01 00:00:00.000 Asia/Kathmandu"])]);
}

#[tokio::test]
async fn pages_are_retried_safely_and_end_where_trinos_do() {
    let server = TestServer::uncached().await;
    let fd = Http::to(server.trino_protocol.unwrap());
    let sql = "SELECT l.* FROM tpch.tiny.lineitem l";
    let run = fd.run(sql).await;
    assert_eq!(run.data.len(), 60_175);
    assert!(run.pages > 3, "about 1 MB a page: {} pages", run.pages);

    // The page just served, asked for again, is the same page; a page
    // skipped, another slug or an unknown query is not found.
    let first: Value = fd.post(sql).await.body_json().await;
    let next = first["nextUri"].as_str().unwrap().to_string();
    let a = fd.get(&next).await.text().await.unwrap();
    let b = fd.get(&next).await.text().await.unwrap();
    assert_eq!(a, b);
    let after: Value = serde_json::from_str(&a).unwrap();
    let later = after["nextUri"].as_str().unwrap();
    let skipped = format!("{}{}", &later[..later.rfind('/').unwrap() + 1], 99);
    assert_eq!(fd.get(&skipped).await.status(), 404);
    let parts: Vec<&str> = later.rsplitn(3, '/').collect();
    let forged = later.replace(parts[1], "0000");
    assert_eq!(fd.get(&forged).await.status(), 404);
    assert_eq!(fd.get(&later.replace(&first["id"].as_str().unwrap()[..8], "19990101")).await.status(), 404);

    // The final page, asked for again, is the same page too; the answer
    // itself is gone.
    let mut uri = later.to_string();
    let last = loop {
        let page = fd.get(&uri).await.text().await.unwrap();
        match serde_json::from_str::<Value>(&page).unwrap()["nextUri"].as_str() {
            Some(next) => uri = next.to_string(),
            None => break page,
        }
    };
    assert_eq!(fd.get(&uri).await.text().await.unwrap(), last);
    assert_eq!(fd.http.delete(&uri).header("X-Trino-User", "test").send().await.unwrap().status(), 404);

    // DELETE drops the answer: the Trino query behind it is cancelled.
    let marker = marker("cancelled");
    let slow = format!("SELECT count(*) FROM tpch.sf100.lineitem WHERE comment <> '{marker}'");
    let fd_slow = fd.clone();
    let first = tokio::spawn(async move { fd_slow.post(&slow).await.body_json().await });
    let first = first.await.unwrap();
    let next = first["nextUri"].as_str().expect("still running").to_string();
    let deleted = fd.http.delete(&next).header("X-Trino-User", "test").send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    assert_eq!(fd.get(&next).await.status(), 404);
    let state = format!(
        "SELECT state, error_code FROM system.runtime.queries WHERE query LIKE '%{marker}%' AND query NOT LIKE '%system.runtime%'"
    );
    let mut seen = Vec::new();
    for _ in 0..100 {
        seen = Http::trino().run(&state).await.data;
        if seen.iter().all(|r| r[0] == "FAILED") && !seen.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, vec![serde_json::json!(["FAILED", "USER_CANCELED"])]);

    // Superset's Stop button kills by the id it was given: Flightdeck's.
    let slow = format!("SELECT count(*) FROM tpch.sf100.lineitem WHERE comment <> '{marker}_killed'");
    let first = fd.post(&slow).await.body_json().await;
    let (id, next) = (first["id"].as_str().unwrap(), first["nextUri"].as_str().expect("still running"));
    let kill = format!("CALL system.runtime.kill_query(query_id => '{id}', message => 'Query cancelled by Superset')");
    let other = fd.clone().with("X-Trino-User", "mallory").run(&kill).await;
    assert_eq!(other.error.unwrap()["errorName"], "PERMISSION_DENIED");
    let killed = fd.run(&kill).await;
    assert_eq!((killed.update_type.as_deref(), killed.error), (Some("CALL"), None));
    let after = fd.get(next).await.body_json().await;
    assert_eq!(after["error"]["errorName"], "ADMINISTRATIVELY_KILLED");
    assert_eq!(after["error"]["message"], "Query killed. Message: Query cancelled by Superset");
    assert!(after["nextUri"].is_null());
    // An id that is not Flightdeck's goes to Trino, which answers for it.
    let unknown = fd.run("CALL system.runtime.kill_query(query_id => '20200101_000000_00000_aaaaa')").await;
    assert_eq!(unknown.error.unwrap()["errorName"], "NOT_FOUND");
}

#[tokio::test]
async fn prepared_statements_and_session_changes_travel_in_headers() {
    let server = TestServer::start().await;
    let (fd, trino) = (Http::to(server.trino_protocol.unwrap()), Http::trino());

    // PREPARE hands the statement back to the client to keep.
    let text = "SELECT name, ? AS x FROM tpch.tiny.nation WHERE nationkey = ?";
    let prepared = fd.run(&format!("PREPARE q1 FROM\r\n{text}")).await;
    assert_eq!(prepared.update_type.as_deref(), Some("PREPARE"));
    let added = prepared.header("x-trino-added-prepare");
    assert_eq!(added.len(), 1);
    let (name, sql) = added[0].split_once('=').unwrap();
    assert_eq!(name, "q1");
    assert_eq!(percent_encoding::percent_decode_str(sql).decode_utf8().unwrap(), text);
    // EXECUTE finds it in the request's headers, as the clients send them:
    // URL-encoded with `+` for spaces, one per line or joined by commas.
    let form = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let with = fd.clone().with("X-Trino-Prepared-Statement", &format!("other={},q1={}", form("SELECT 1"), form(text)));
    let direct = trino.clone().with("X-Trino-Prepared-Statement", &format!("q1={}", form(text)));
    for execute in ["EXECUTE q1 USING 'a,b', 7", "EXECUTE q1 USING DATE '2024-01-01', 3 - 1"] {
        let (got, want) = (with.run(execute).await, direct.run(execute).await);
        assert_eq!((&got.columns, &got.data), (&want.columns, &want.data), "{execute}");
        assert!(got.error.is_none());
    }
    let immediate = "EXECUTE IMMEDIATE 'SELECT ? || ''x'', ?' USING 'a', 1.5";
    assert_eq!(fd.run(immediate).await.data, trino.run(immediate).await.data);
    // Unknown names fail as on Trino.
    let missing = fd.run("EXECUTE nope").await;
    assert_eq!(missing.error.as_ref().unwrap()["errorName"], "NOT_FOUND");
    let gone = with.run("DEALLOCATE PREPARE q1").await;
    assert_eq!(
        (gone.update_type.as_deref(), gone.header("x-trino-deallocated-prepare")),
        (Some("DEALLOCATE"), vec!["q1".to_string()])
    );

    // Session changes come back as Trino's headers.
    let set = fd.run("SET SESSION query_max_run_time = '1h'").await;
    assert_eq!(
        (set.update_type.as_deref(), set.header("x-trino-set-session")),
        (Some("SET SESSION"), vec!["query_max_run_time=1h".to_string()])
    );
    let with_property = fd.clone().with("X-Trino-Session", "query_max_run_time=1h");
    let reset = with_property.run("RESET SESSION query_max_run_time").await;
    assert_eq!(reset.header("x-trino-clear-session"), vec!["query_max_run_time"]);
    let used = fd.run("USE tpch.tiny").await;
    assert_eq!(
        (used.header("x-trino-set-catalog"), used.header("x-trino-set-schema")),
        (vec!["tpch".to_string()], vec!["tiny".to_string()])
    );
    // The catalog and schema a client sends name its tables.
    let inside = fd.clone().with("X-Trino-Catalog", "tpch").with("X-Trino-Schema", "tiny");
    assert_eq!(inside.run("SELECT count(*) FROM region").await.data, vec![serde_json::json!([5])]);
    // A session property reaches Trino: a bad value fails there.
    let bad = fd.clone().with("X-Trino-Session", "query_max_run_time=banana").run("SELECT 1").await;
    assert!(bad.error.is_some());
}

#[tokio::test]
async fn errors_are_trinos_own() {
    let server = TestServer::start().await;
    let (fd, trino) = (Http::to(server.trino_protocol.unwrap()), Http::trino());
    for sql in [
        "SELECT x FROM tpch.tiny.nosuch",
        "SELECT nosuch FROM tpch.tiny.nation",
        "SELECT 1 FROM\r\n  tpch.tiny.nation WHERE\r\n  nosuch = 1",
        "SELECT 1 FROM\rtpch.tiny.nation WHERE nosuch = 1",
        "SELEC 1",
        "SELECT 1 / 0",
        "-- a comment first\nSELECT CAST('x' AS integer)",
        "CREATE TABLE tpch.tiny.t (a int)",
    ] {
        let route = same_as_trino(&fd, &trino, sql).await;
        assert_eq!(route, "trino", "{sql}");
    }
    // Without authentication, credentials are not read (a JWT-configured
    // client still gets in as the user it names).
    let bearer = fd.clone().with("Authorization", "Bearer abc.def").run("SELECT current_user").await;
    assert_eq!(bearer.data, vec![serde_json::json!(["test"])]);
    // Malformed requests are refused before they run.
    assert_eq!(fd.post("   ").await.status(), 400);
    let bad_header = fd.clone().with("X-Trino-Session", "no_equals_sign").post("SELECT 1").await;
    assert_eq!(bad_header.status(), 400);
    // A host header with a quote stays inside the URIs' JSON strings.
    let odd_host = fd.clone().with("Host", "x\"y:1").post("SELECT 1").await.body_json().await;
    assert_eq!(odd_host["infoUri"].as_str().unwrap().split('/').nth(2), Some("x\"y:1"));
}

#[tokio::test]
async fn passwords_are_checked_and_pages_stay_with_their_user() {
    let dir = tempfile::tempdir().unwrap();
    let users = users_file(dir.path(), &[("alice", "s3cret"), ("bob", "p:ss wörd")]);
    let mut args = password_args(users);
    args.admin.listen = Some("127.0.0.1:0".parse().unwrap());
    let server = TestServer::with_config(flightdeck::Config::resolve(&args).unwrap()).await;
    let addr = server.trino_protocol.unwrap();
    let http = reqwest::Client::new();
    let post = |user: Option<(&str, &str)>, named: Option<&str>| {
        let mut r = http.post(format!("http://{addr}/v1/statement")).body("SELECT 1");
        if let Some((u, p)) = user {
            r = r.basic_auth(u, Some(p));
        }
        if let Some(n) = named {
            r = r.header("X-Trino-User", n);
        }
        r.send()
    };
    assert_eq!(post(None, Some("alice")).await.unwrap().status(), 401);
    assert_eq!(post(Some(("alice", "wrong")), None).await.unwrap().status(), 401);
    assert_eq!(post(Some(("alice", "")), None).await.unwrap().status(), 401);
    assert_eq!(post(Some(("alice", "s3cret")), Some("bob")).await.unwrap().status(), 403);
    for (user, password) in [("alice", "s3cret"), ("bob", "p:ss wörd")] {
        // Every page, the first or later ones (a busy Trino's rows come
        // after the submit's wait), with the user's password.
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let run = Http::to(addr).with("X-Trino-User", user).with("Authorization", &format!("Basic {basic}"));
        assert_eq!(run.run("SELECT 1").await.data, vec![serde_json::json!([1])], "{user}");
    }
    // Another user cannot read a page of alice's answer.
    let sql = "SELECT * FROM tpch.tiny.lineitem";
    let first: Value = http
        .post(format!("http://{addr}/v1/statement"))
        .basic_auth("alice", Some("s3cret"))
        .body(sql)
        .send()
        .await
        .unwrap()
        .body_json()
        .await;
    let next = first["nextUri"].as_str().unwrap();
    let as_bob = http.get(next).basic_auth("bob", Some("p:ss wörd")).send().await.unwrap();
    assert_eq!(as_bob.status(), 404);
    let as_alice = http.get(next).basic_auth("alice", Some("s3cret")).send().await.unwrap();
    assert_eq!(as_alice.status(), 200);
}

#[tokio::test]
async fn https_with_the_flight_ports_certificate() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let mut config = flightdeck::Config::for_trino(&trino_url());
    config.flight.tls =
        Some(flightdeck::config::TlsFiles { cert_pem: cert_pem.clone().into_bytes(), key_pem: key_pem.into_bytes() });
    let server = TestServer::with_config(config).await;
    let port = server.trino_protocol.unwrap().port();
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let fd = Http { http, ..Http::new(format!("https://localhost:{port}")) };
    let run = fd.run("SELECT * FROM tpch.tiny.region ORDER BY regionkey").await;
    assert_eq!(run.data.len(), 5);
    // Plain HTTP to the TLS port is refused.
    assert!(reqwest::get(format!("http://localhost:{port}/v1/info")).await.is_err());
    // `/v1/info` is Trino's.
    let info: Value = fd.get(&format!("https://localhost:{port}/v1/info")).await.body_json().await;
    assert_eq!(info["nodeVersion"]["version"], "476");
}
