//! The differential suite: every query of `tests/differential/*.slt` runs
//! through Flightdeck, with `memory.diff.*` accelerated, and directly on
//! Trino; the answers must be the same (rows, order where ORDER BY fixes
//! it, column names, Arrow types and Trino type names; doubles within 1e-9
//! relative). Queries the router sends to Trino are listed with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use flightdeck::accel::{Access, DatasetConfig};
use flightdeck::local::{Limits, LocalEngine};
use flightdeck::router::Session as RouterSession;
use flightdeck::sql::Statement;

use crate::common::*;

/// How a record's result is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Rows in order.
    Ordered,
    /// Rows as a multiset.
    Unordered,
    /// Trino fails it; so must Flightdeck.
    Error,
}

#[derive(Debug)]
struct Record {
    file: String,
    line: usize,
    expect: Expect,
    sql: String,
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

/// The `query` records of every `.slt` file, in file order.
fn records() -> Vec<Record> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let mut lines = text.lines().enumerate().peekable();
        while let Some((n, line)) = lines.next() {
            let expect = match line.trim_end() {
                "query" => Expect::Ordered,
                "query unordered" => Expect::Unordered,
                "query error" => Expect::Error,
                l if l.is_empty() || l.starts_with('#') => continue,
                other => panic!("{file}:{}: not a record: {other}", n + 1),
            };
            let mut sql = Vec::new();
            while let Some((_, l)) = lines.next_if(|(_, l)| !l.trim().is_empty()) {
                sql.push(l);
            }
            out.push(Record { file: file.clone(), line: n + 1, expect, sql: sql.join("\n") });
        }
    }
    out
}

/// Dashboard-style queries made of random combinations of the constructs
/// the local engine takes, over `memory.diff.readings`, from a fixed seed.
/// Every one is ordered totally (by all its grouping columns).
fn generated(n: usize, seed: u64) -> Vec<Record> {
    use rand::prelude::*;
    let mut rng = StdRng::seed_from_u64(seed);
    let markets = ["ERCOT", "PJM", "CAISO", "MISO", "NYISO", "nowhere"];
    let groups = [
        "market",
        "fuel",
        "node_id",
        "flag",
        "day",
        "date_trunc('day', ts)",
        "date_trunc('hour', ts)",
        "date_trunc('week', ts)",
        "date_trunc('month', ts)",
        "year(ts)",
        "hour(ts)",
        "day_of_week(ts)",
        "month(day)",
    ];
    let aggregates = [
        "count(*)",
        "count(price)",
        "count(DISTINCT fuel)",
        "sum(qty)",
        "sum(volume)",
        "avg(price)",
        "avg(qty)",
        "min(ts)",
        "max(qty)",
        "max(label)",
        "min(day)",
        "sum(price * volume)",
        "count(*) FILTER (WHERE price > 50)",
    ];
    let mut out = Vec::new();
    for i in 0..n {
        let (a, b) = (rng.random_range(1..=28), rng.random_range(1..=28));
        let mut filters = vec![
            format!("ts >= TIMESTAMP '2024-01-{a:02} 00:00:00' AND ts < TIMESTAMP '2024-03-{b:02} 12:00:00'"),
            format!("market = '{}'", markets.choose(&mut rng).unwrap()),
            format!("market IN ('{}', '{}')", markets.choose(&mut rng).unwrap(), markets.choose(&mut rng).unwrap()),
            format!("node_id {} {}", ["<", ">=", "=", "<>"].choose(&mut rng).unwrap(), rng.random_range(0..12)),
            format!(
                "price {} {}",
                ["<", ">", "<=", ">=", "=", "<>"].choose(&mut rng).unwrap(),
                rng.random_range(-10..120)
            ),
            format!("volume BETWEEN {} AND {}", rng.random_range(0..50), rng.random_range(50..200)),
            "flag".into(),
            "NOT flag".into(),
            "label IS NULL".into(),
            "price IS NOT NULL".into(),
            format!("day >= DATE '2024-02-{a:02}'"),
            // Time ranges as dashboards write them: a literal and an interval.
            format!(
                "ts >= TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '{a}' DAY AND ts < TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '{}' DAY",
                a + b
            ),
            format!("day < DATE '2024-01-31' + INTERVAL '{}' MONTH", rng.random_range(0..3)),
            format!("ts >= TIMESTAMP '2024-03-31 12:00:00.500' - INTERVAL '{b}' HOUR"),
            format!("label LIKE '{}%'", ["a", "c", "S", "%", "_"].choose(&mut rng).unwrap()),
        ];
        filters.shuffle(&mut rng);
        let wanted = rng.random_range(0..=2);
        let joiner = if rng.random_bool(0.7) { " AND " } else { " OR " };
        let filter = filters[..wanted].join(joiner);
        let (nkeys, naggs) = (rng.random_range(0..=2), rng.random_range(1..=3));
        let keys: Vec<&str> = groups.choose_multiple(&mut rng, nkeys).copied().collect();
        let aggs: Vec<&str> = aggregates.choose_multiple(&mut rng, naggs).copied().collect();
        let mut select: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        select.extend(aggs.iter().enumerate().map(|(j, a)| format!("{a} AS a{j}")));
        let mut sql = format!("SELECT {} FROM memory.diff.readings", select.join(", "));
        if !filter.is_empty() {
            sql.push_str(&format!(" WHERE {filter}"));
        }
        if !keys.is_empty() {
            let positions: Vec<String> = (1..=keys.len()).map(|p| p.to_string()).collect();
            sql.push_str(&format!(" GROUP BY {}", positions.join(", ")));
            // Top-N by the first aggregate, ties broken by the keys; or by the keys.
            let order = if rng.random_bool(0.4) {
                format!("a0 {}, {}", ["DESC", "ASC"].choose(&mut rng).unwrap(), positions.join(", "))
            } else {
                positions.join(", ")
            };
            sql.push_str(&format!(" ORDER BY {order}"));
            if rng.random_bool(0.5) {
                sql.push_str(&format!(" LIMIT {}", rng.random_range(1..20)));
            }
        }
        out.push(Record { file: "generated".into(), line: i, expect: Expect::Ordered, sql });
    }
    out
}

/// Creates the suite's tables on Trino (`setup.sql`, blocks split by `----`).
async fn setup() {
    let text = std::fs::read_to_string(dir().join("setup.sql")).unwrap();
    let trino = trino_direct();
    for block in text.split("\n----") {
        let sql: String = block.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n");
        let sql = sql.trim().trim_end_matches(';');
        if sql.is_empty() {
            continue;
        }
        trino.execute(&session("test"), sql).await.unwrap_or_else(|e| panic!("setup: {sql}: {e}"));
    }
}

const TABLES: [&str; 4] = ["memory.diff.readings", "memory.diff.nodes", "memory.diff.empty", "memory.diff.wide"];

/// `readings` and `empty` are held as dashboards' time series are, sorted by
/// `ts`, so that ranges on it are met by trimming slices (NULL, 1900 and
/// 2200 times included).
fn datasets() -> Vec<DatasetConfig> {
    TABLES
        .iter()
        .map(|t| DatasetConfig {
            access: Access::All,
            time_column: (t.ends_with(".readings") || t.ends_with(".empty")).then(|| "ts".to_string()),
            ..DatasetConfig::full(t)
        })
        .collect()
}

/// A result as comparable text: column names, Arrow types, Trino type
/// names, and rows of cells; doubles kept as numbers.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    columns: Vec<(String, DataType, Option<String>)>,
    rows: Vec<Vec<Cell>>,
}

#[derive(Debug, Clone)]
enum Cell {
    Text(String),
    Float(f64),
}

impl PartialEq for Cell {
    fn eq(&self, other: &Cell) -> bool {
        match (self, other) {
            (Cell::Text(a), Cell::Text(b)) => a == b,
            (Cell::Float(a), Cell::Float(b)) => {
                (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
            }
            _ => false,
        }
    }
}

impl Cell {
    fn key(&self) -> String {
        match self {
            Cell::Text(t) => t.clone(),
            // Unordered rows are sorted by a rounded rendering.
            Cell::Float(f) => format!("{f:.6e}"),
        }
    }
}

fn answer(schema: &SchemaRef, batches: &[RecordBatch]) -> Answer {
    let columns = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone(), f.metadata().get("ARROW:FLIGHT:SQL:TYPE_NAME").cloned()))
        .collect();
    let mut rows = Vec::new();
    for b in batches {
        let cells: Vec<Box<dyn Fn(usize) -> Cell>> = b
            .columns()
            .iter()
            .map(|c| -> Box<dyn Fn(usize) -> Cell> {
                let c: ArrayRef = Arc::clone(c);
                match c.data_type() {
                    DataType::Float64 => Box::new(move |i| match c.is_null(i) {
                        true => Cell::Text("NULL".into()),
                        false => Cell::Float(c.as_primitive::<Float64Type>().value(i)),
                    }),
                    DataType::Float32 => Box::new(move |i| match c.is_null(i) {
                        true => Cell::Text("NULL".into()),
                        false => Cell::Float(c.as_primitive::<Float32Type>().value(i) as f64),
                    }),
                    _ => {
                        let c = Arc::clone(&c);
                        Box::new(move |i| {
                            let options = FormatOptions::default().with_null("NULL");
                            let f = ArrayFormatter::try_new(c.as_ref(), &options).unwrap();
                            Cell::Text(f.value(i).to_string())
                        })
                    }
                }
            })
            .collect();
        for i in 0..b.num_rows() {
            rows.push(cells.iter().map(|cell| cell(i)).collect());
        }
    }
    Answer { columns, rows }
}

fn sorted(mut a: Answer) -> Answer {
    a.rows.sort_by_key(|r| r.iter().map(Cell::key).collect::<Vec<_>>());
    a
}

#[tokio::test]
async fn flightdeck_answers_every_query_of_the_suite_as_trino_does() {
    setup().await;
    let server = TestServer::with_datasets(datasets()).await;
    let datasets = server.datasets.clone().unwrap();
    // The local engine on its own, to say why a query is not answered locally.
    let local = LocalEngine::new(datasets.clone(), Limits::default());
    let trino = trino_direct();
    let mut client = server.client().await;

    let mut records = records();
    records.extend(generated(150, 20261127));
    let (mut local_count, mut failures) = (0, Vec::new());
    let mut refusals: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &records {
        let at = format!("{}:{}", r.file, r.line);
        let direct = trino.execute(&session("test"), &r.sql).await;
        let routed = client.routed(&r.sql).await;
        match (&direct, &routed, r.expect) {
            (Err(_), Err(_), Expect::Error) => {}
            (Err(e), _, Expect::Error) if routed.is_ok() => {
                failures.push(format!("{at}: Trino fails ({e}) but Flightdeck answered\n{}", r.sql))
            }
            (_, _, Expect::Error) => failures.push(format!("{at}: expected an error from Trino\n{}", r.sql)),
            (Ok((schema, batches)), Ok((route, got_schema, got)), expect) => {
                let (mut want, mut have) = (answer(schema, batches), answer(got_schema, got));
                if expect == Expect::Unordered {
                    (want, have) = (sorted(want), sorted(have));
                }
                if want != have {
                    failures.push(format!(
                        "{at} [{route}]: answers differ\n{}\n  Trino:      {:?}\n  Flightdeck: {:?}",
                        r.sql,
                        summary(&want),
                        summary(&have)
                    ));
                }
                if route == "local" {
                    local_count += 1;
                }
            }
            (Err(e), _, _) => failures.push(format!("{at}: Trino fails: {e}\n{}", r.sql)),
            (Ok(_), Err(e), _) => failures.push(format!("{at}: Flightdeck fails: {e}\n{}", r.sql)),
        }
        if let Ok((route, ..)) = &routed
            && route != "local"
        {
            let stmt = Statement::parse(&r.sql, None, None);
            let why = match local.plan(&RouterSession::of("test"), &stmt).await {
                Ok(_) => "(planned locally now)".to_string(),
                Err(refusal) => refusal.to_string(),
            };
            refusals.entry(why.chars().take(120).collect()).or_default().push(at.clone());
        }
    }
    println!("{} queries: {local_count} answered locally, {} by Trino", records.len(), records.len() - local_count);
    for (why, at) in &refusals {
        println!("  Trino ({}): {why}  [{}]", at.len(), at.join(", "));
    }
    // Constructs DataFusion answers differently from Trino: refused with
    // their reason, and answered by Trino.
    for (sql, why) in EXCLUDED {
        let stmt = Statement::parse(sql, None, None);
        let refusal = local.plan(&RouterSession::of("test"), &stmt).await.expect_err(sql);
        assert!(refusal.to_string().contains(why), "{sql}: refused for {refusal}, expected {why}");
        match client.routed(sql).await {
            Ok((route, ..)) => assert_eq!(route, "trino", "{sql}"),
            // Trino refuses it too (as it should: DataFusion would not).
            Err(e) => assert!(trino.execute(&session("test"), sql).await.is_err(), "{sql}: {e}"),
        }
    }
    assert!(records.len() >= 300, "the suite has {} queries", records.len());
    assert!(failures.is_empty(), "{} of {} differ:\n\n{}", failures.len(), records.len(), failures.join("\n\n"));
}

/// Statements the local engine must leave to Trino, and a word of why.
const EXCLUDED: &[(&str, &str)] = &[
    // Trino maps case per code point: upper('ß') is 'ß'.
    ("SELECT upper(label) AS u FROM memory.diff.readings WHERE label IS NOT NULL", "upper"),
    // Trino's max skips NaN; rewritten in aggregates, not in windows.
    ("SELECT max(price) OVER (PARTITION BY node_id) FROM memory.diff.readings", "max(Float64) OVER"),
    ("SELECT price, count(*) FROM memory.diff.readings GROUP BY price", "grouping on a double"),
    ("SELECT DISTINCT price FROM memory.diff.readings", "DISTINCT on a double"),
    ("SELECT count(*) FROM memory.diff.readings WHERE node_id NOT IN (1, 2, NULL)", "NULL in an IN list"),
    ("SELECT count(*) FROM memory.diff.readings WHERE price IN (1.0E0, 2.0E0)", "IN on doubles"),
    // DataFusion wraps where Trino fails; rewritten for + - *, not for decimals.
    ("SELECT capacity * 2 FROM memory.diff.nodes", "operator"),
    ("SELECT sum(qty) OVER (PARTITION BY node_id) FROM memory.diff.readings", "sum(Int64) OVER"),
    // DataFusion's concat skips NULLs; its substr counts negative starts differently.
    ("SELECT concat(label, 'x') FROM memory.diff.readings", "concat"),
    ("SELECT substr(label, -2) FROM memory.diff.readings", "substr"),
    ("SELECT row_number() OVER (ORDER BY price, ts) FROM memory.diff.readings", "ordered by a double"),
    // Arrow reads `\` in a LIKE pattern as an escape.
    ("SELECT count(*) FROM memory.diff.readings WHERE label LIKE 'a\\%'", "LIKE"),
    ("SELECT approx_distinct(node_id) FROM memory.diff.readings", "approx_distinct"),
    // Trino refuses these; DataFusion would answer them.
    ("SELECT market AS m, count(*) FROM memory.diff.readings GROUP BY m", "alias"),
    // In HAVING, DataFusion reads `ts` as the alias; Trino as the column,
    // which is not grouped, and fails.
    (
        "SELECT date_trunc('day', ts) AS ts, count(*) AS n FROM memory.diff.readings \
         GROUP BY date_trunc('day', ts) HAVING ts > TIMESTAMP '2024-02-01 00:00:00'",
        "alias",
    ),
    ("SELECT count(*) FROM memory.diff.readings WHERE ts >= '2024-02-01'", "comparison of Timestamp"),
    // Read by the local parser, refused by Trino's grammar or literal rules.
    ("SELECT market, count(*) FROM memory.diff.readings GROUP BY ALL", "GROUP BY ALL"),
    ("SELECT * EXCLUDE (price) FROM memory.diff.readings", "EXCLUDE"),
    (
        "SELECT count(*) FROM memory.diff.readings WHERE ts >= TIMESTAMP '2024-01-01 00:00:00' + INTERVAL '1 day'",
        "an interval without a unit",
    ),
    ("SELECT count(*) FROM memory.diff.readings WHERE ts >= TIMESTAMP '2024-01-02T00:00:00'", "spelled other than"),
    ("SELECT market FROM memory.diff.readings ORDER BY ts, node_id LIMIT 2, 3", "not read by the local parser"),
    ("SELECT `market` FROM memory.diff.readings", "not read by the local parser"),
    ("SELECT market, FROM memory.diff.readings", "not read by the local parser"),
    ("SELECT count(*) FROM memory.diff.readings;", "not read by the local parser"),
    ("SELECT count(*) AS \"\" FROM memory.diff.readings", "not read by the local parser"),
    ("SELECT ts FROM memory.diff.readings ORDER BY ts LIMIT 9223372036854775807", "LIMIT past"),
    // Decimal(38) sums over windows would wrap where Trino fails.
    ("SELECT id, sum(d) OVER (ORDER BY id) FROM memory.diff.wide", "sum(Decimal128(38, 18)) OVER"),
    // Trino pads char(n) and compares it without the trailing spaces.
    ("SELECT count(*) FROM memory.diff.readings WHERE market = CAST('PJM  ' AS char(5))", "char(n)"),
    ("SELECT count(*) FROM memory.diff.readings WHERE market = CHAR 'PJM'", "char(n)"),
    ("SELECT CAST(market AS char(8)) AS m FROM memory.diff.readings", "char(n)"),
    // Trino compares at the literal's precision; no millisecond equals it.
    ("SELECT count(*) FROM memory.diff.readings WHERE ts = TIMESTAMP '2024-01-01 00:45:00.5004'", "finer than it"),
    ("SELECT count(*) FROM memory.diff.readings WHERE ts IN (TIMESTAMP '2024-01-01 00:45:00.5004')", "finer than it"),
    // Trino counts 0.0 and -0.0 as one value.
    ("SELECT count(DISTINCT price) FROM memory.diff.readings", "DISTINCT doubles"),
    // The aggregate has one column for the two, so its types are not by position.
    ("SELECT market, count(*) FROM memory.diff.readings GROUP BY market, market", "could not type"),
    // Arrow reads dates Trino refuses, or makes them NULL; Trino trims spaces.
    ("SELECT count(*) FROM memory.diff.readings WHERE day = DATE '2024-02-30'", "date literal"),
    ("SELECT count(*) FROM memory.diff.readings WHERE day = DATE '2024-02-29 12:34:56'", "date literal"),
    ("SELECT count(*) FROM memory.diff.readings WHERE day = DATE ' 2024-02-29'", "date literal"),
    ("SELECT count(*) FROM memory.diff.readings WHERE day = CAST('20240229' AS date)", "date literal"),
    // Trino's intervals: whole numbers of its units.
    ("SELECT ts - INTERVAL '1.5' DAY FROM memory.diff.readings", "interval"),
    ("SELECT ts - INTERVAL '1' WEEK FROM memory.diff.readings", "interval"),
    ("SELECT ts - INTERVAL '2' DAYS FROM memory.diff.readings", "interval"),
    // `*` over a join with a subquery: names not worked out here.
    (
        "SELECT * FROM memory.diff.nodes n JOIN (SELECT node_id, count(*) FROM memory.diff.readings GROUP BY node_id) c ON n.node_id = c.node_id",
        "`*` over a join",
    ),
    // Trino's `=` on doubles (-0.0 is 0), and its type rules, in a CASE.
    ("SELECT CASE 0 WHEN price THEN 'zero' END FROM memory.diff.readings", "CASE WHEN of Float64"),
    ("SELECT CASE WHEN node_id THEN 'one' END FROM memory.diff.nodes", "CASE WHEN of Int32"),
    // Trino fails on a negative offset and types the answer by the default.
    ("SELECT lag(node_id, -1) OVER (ORDER BY node_id) FROM memory.diff.nodes", "lag("),
    ("SELECT lag(node_id, 1, 0.5) OVER (ORDER BY node_id) FROM memory.diff.nodes", "lag("),
    ("SELECT lag(node_id, 1, 3000000000) OVER (ORDER BY node_id) FROM memory.diff.nodes", "lag("),
    ("SELECT count(*) FROM memory.diff.readings WHERE ts < TIMESTAMP '2024-01-01 23:59:60'", "spelled other than"),
    ("SELECT * FROM memory.diff.nodes JOIN memory.diff.nodes AS m USING (node_id)", "USING"),
    ("SELECT count(*) FROM memory.diff.nodes NATURAL JOIN memory.diff.nodes AS m", "NATURAL"),
    ("SELECT count(*) FROM memory.diff.readings WHERE qty < 99999999999999999999", "invalid numeric literal"),
    ("SELECT CAST(ts AS timestamp(3) with time zone) FROM memory.diff.readings", "WITH TIME ZONE"),
    // Not a dataset.
    ("SELECT count(*) FROM tpch.tiny.nation", "not a loaded dataset"),
];

/// The first rows and the columns of an answer, for a failure message.
fn summary(a: &Answer) -> String {
    let rows: Vec<String> = a.rows.iter().take(5).map(|r| format!("{r:?}")).collect();
    format!("{:?} {} rows: {}", a.columns, a.rows.len(), rows.join(" "))
}
