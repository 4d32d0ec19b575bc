//! The benchmark data, made inside Trino by SQL so any machine can rebuild
//! it: tpch copied into the `memory` catalog, and a generated hourly
//! energy-market series (prices, volumes, emissions per node, market and
//! fuel type, with skew, price spikes and NULLs).

use flightdeck::trino::{Session, TrinoClient};

/// How much data a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// tpch tiny and 20 nodes x 60 days: seconds to build, for CI.
    Smoke,
    /// tpch sf1 and 200 nodes x 1 250 days (6 000 000 rows).
    Full,
}

impl Scale {
    pub fn tpch_source(self) -> &'static str {
        match self {
            Scale::Smoke => "tpch.tiny",
            Scale::Full => "tpch.sf1",
        }
    }
    pub fn tpch(self) -> &'static str {
        match self {
            Scale::Smoke => "memory.bench_tpch_tiny",
            Scale::Full => "memory.bench_tpch_sf1",
        }
    }
    pub fn energy(self) -> &'static str {
        match self {
            Scale::Smoke => "memory.bench_energy_smoke",
            Scale::Full => "memory.bench_energy",
        }
    }
    pub fn nodes(self) -> u32 {
        match self {
            Scale::Smoke => 20,
            Scale::Full => 200,
        }
    }
    pub fn days(self) -> u32 {
        match self {
            Scale::Smoke => 60,
            Scale::Full => 1250,
        }
    }
}

const TPCH_TABLES: &[&str] = &["nation", "region", "customer", "orders", "lineitem", "part", "supplier", "partsupp"];

async fn exists(trino: &TrinoClient, session: &Session, schema: &str, table: &str) -> bool {
    let (catalog, schema) = schema.split_once('.').unwrap();
    let sql = format!(
        "SELECT count(*) FROM {catalog}.information_schema.tables WHERE table_schema = '{schema}' AND table_name = '{table}'"
    );
    let (_, b) = trino.execute(session, &sql).await.expect("information_schema");
    b[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0) > 0
}

/// Builds whatever of the data is missing. Idempotent.
pub async fn ensure(trino: &TrinoClient, scale: Scale) {
    let session = Session { user: "bench".into(), ..Default::default() };
    let run = |sql: String| {
        let session = session.clone();
        async move {
            let mut q = trino.start(&session, &sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
            q.drain().await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    };
    for schema in [scale.tpch(), scale.energy()] {
        run(format!("CREATE SCHEMA IF NOT EXISTS {schema}")).await;
    }
    for t in TPCH_TABLES {
        if !exists(trino, &session, scale.tpch(), t).await {
            eprintln!("building {}.{t}", scale.tpch());
            run(format!("CREATE TABLE {}.{t} AS SELECT * FROM {}.{t}", scale.tpch(), scale.tpch_source())).await;
        }
    }
    if !exists(trino, &session, scale.energy(), "prices").await {
        eprintln!("building {}.prices ({} rows)", scale.energy(), scale.nodes() as u64 * scale.days() as u64 * 24);
        run(energy_sql(scale)).await;
    }
}

fn energy_sql(scale: Scale) -> String {
    format!(
        "CREATE TABLE {table} AS
WITH nodes AS (
  SELECT n AS node_id,
    CASE WHEN n % 20 < 8 THEN 'ERCOT' WHEN n % 20 < 13 THEN 'PJM' WHEN n % 20 < 16 THEN 'CAISO'
         WHEN n % 20 < 18 THEN 'MISO' ELSE 'NYISO' END AS market,
    CASE WHEN n % 9 < 3 THEN 'gas' WHEN n % 9 < 5 THEN 'wind' WHEN n % 9 < 6 THEN 'solar'
         WHEN n % 9 < 7 THEN 'coal' WHEN n % 9 < 8 THEN 'nuclear' ELSE 'hydro' END AS fuel_type
  FROM UNNEST(sequence(1, {nodes})) AS t(n)),
hours AS (
  SELECT date_add('hour', h, date_add('day', d, TIMESTAMP '2022-01-01 00:00:00')) AS ts,
         d * 24 + h AS hour_index, h AS hour_of_day
  FROM UNNEST(sequence(0, {last_day})) AS a(d) CROSS JOIN UNNEST(sequence(0, 23)) AS b(h))
SELECT ts, node_id, market, fuel_type,
  CASE WHEN (hour_index * 31 + node_id * 17) % 211 = 0 THEN NULL
       ELSE round(35 + 15 * sin(hour_of_day * pi() / 12 - 1.5) + 8 * cos(hour_index * 2 * pi() / 8760)
                  + (node_id % 13) * 0.9
                  + CASE WHEN (hour_index * 7919 + node_id * 104729) % 997 = 0 THEN 400 ELSE 0 END, 2) END AS price,
  round(CASE fuel_type WHEN 'solar' THEN greatest(0, 60 * sin((hour_of_day - 6) * pi() / 12))
                       WHEN 'wind' THEN 30 + 25 * sin(hour_index * 0.37 + node_id)
                       ELSE 80 + (node_id % 7) * 10 END, 3) AS volume_mwh,
  CASE WHEN fuel_type IN ('wind', 'solar', 'nuclear', 'hydro') THEN 0
       WHEN (hour_index + node_id) % 97 = 0 THEN NULL
       ELSE round(CASE fuel_type WHEN 'coal' THEN 0.95 ELSE 0.41 END * (80 + (node_id % 7) * 10), 3) END AS emissions_t
FROM nodes CROSS JOIN hours",
        table = format!("{}.prices", scale.energy()),
        nodes = scale.nodes(),
        last_day = scale.days() - 1,
    )
}

/// Every table the workload reads, as the local mode accelerates them.
pub fn tables(scale: Scale) -> Vec<String> {
    let mut out: Vec<String> = TPCH_TABLES.iter().map(|t| format!("{}.{t}", scale.tpch())).collect();
    out.push(format!("{}.prices", scale.energy()));
    out
}
