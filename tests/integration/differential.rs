//! The differential suite: every query of `tests/differential/*.slt` runs
//! through Flightdeck, with `memory.diff.*` accelerated, and directly on
//! Trino; the answers must be the same (rows, order where ORDER BY fixes
//! it, column names, Arrow types and Trino type names; doubles within 1e-9
//! relative). Queries the router sends to Trino are listed with the reason.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use flightdeck::accel::{Access, DatasetConfig, Mode};
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

const TABLES: [&str; 3] = ["memory.diff.readings", "memory.diff.nodes", "memory.diff.empty"];

fn datasets() -> Vec<DatasetConfig> {
    TABLES
        .iter()
        .map(|t| DatasetConfig {
            table: t.to_string(),
            mode: Mode::Full,
            time_column: None,
            overlap: Duration::ZERO,
            key: Vec::new(),
            interval: Duration::from_secs(3600),
            source: None,
            max_bytes: None,
            access: Access::All,
            retention: None,
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
    let mut config = flightdeck::Config::for_trino(&trino_url());
    config.accel.datasets = datasets();
    config.accel.dir = Some(tempfile::tempdir().unwrap().keep());
    let server = TestServer::with_config(config).await;
    let datasets = server.datasets.clone().unwrap();
    for _ in 0..600 {
        if datasets.all_loaded() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(datasets.all_loaded(), "{:?}", datasets.list());
    // The local engine on its own, to say why a query is not answered locally.
    let local = LocalEngine::new(datasets.clone(), Limits::default());
    let trino = trino_direct();
    let mut client = server.client().await;

    let records = records();
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
    assert!(records.len() >= 300, "the suite has {} queries", records.len());
    assert!(failures.is_empty(), "{} of {} differ:\n\n{}", failures.len(), records.len(), failures.join("\n\n"));
}

/// The first rows and the columns of an answer, for a failure message.
fn summary(a: &Answer) -> String {
    let rows: Vec<String> = a.rows.iter().take(5).map(|r| format!("{r:?}")).collect();
    format!("{:?} {} rows: {}", a.columns, a.rows.len(), rows.join(" "))
}
