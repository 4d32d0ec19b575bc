//! The dashboard workload: query templates with parameter distributions,
//! drawn with a fixed seed so two runs send the same queries.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::data::Scale;

const MARKETS: &[&str] = &["ERCOT", "PJM", "CAISO", "MISO", "NYISO"];
const FUELS: &[&str] = &["gas", "wind", "solar", "coal", "nuclear", "hydro"];
const BUCKETS: &[&str] = &["hour", "day", "week", "month"];
const REGIONS: &[&str] = &["AFRICA", "AMERICA", "ASIA", "EUROPE", "MIDDLE EAST"];

struct Params<'a> {
    rng: &'a mut StdRng,
    scale: Scale,
}

impl Params<'_> {
    /// A time range inside the data: `(start, end)` timestamps, 1 to 90 days
    /// long, skewed towards recent data as dashboards are.
    fn range(&mut self) -> (String, String) {
        let days = self.scale.days() as i64;
        let len = [1, 7, 7, 30, 30, 90][self.rng.random_range(0..6)].min(days);
        let recent: f64 = self.rng.random::<f64>().powf(0.5);
        let start = ((days - len) as f64 * recent) as i64;
        let ts = |d: i64| format!("TIMESTAMP '2022-01-01 00:00:00' + INTERVAL '{d}' DAY");
        (ts(start), ts(start + len))
    }
    /// A node, skewed: a few nodes are looked at far more than the rest.
    fn node(&mut self) -> u32 {
        let u: f64 = self.rng.random();
        1 + (u.powi(3) * self.scale.nodes() as f64) as u32
    }
    fn pick<'s>(&mut self, from: &[&'s str]) -> &'s str {
        // Earlier entries are more popular.
        let u: f64 = self.rng.random();
        from[(u.powi(2) * from.len() as f64) as usize]
    }
    fn top(&mut self) -> u32 {
        [5, 10, 20][self.rng.random_range(0..3)]
    }
    fn year(&mut self) -> i32 {
        self.rng.random_range(1992..=1998)
    }
}

type Template = fn(&mut Params, &str, &str) -> String;

/// The templates: (name, builder taking params, energy table, tpch schema).
const TEMPLATES: &[(&str, Template)] = &[
    ("price_by_bucket", |p, e, _| {
        let ((a, b), m, k) = (p.range(), p.pick(MARKETS), p.pick(BUCKETS));
        format!(
            "SELECT date_trunc('{k}', ts) AS t, avg(price) AS avg_price FROM {e} WHERE market = '{m}' AND ts >= {a} AND ts < {b} GROUP BY 1 ORDER BY 1"
        )
    }),
    ("top_nodes_by_price", |p, e, _| {
        let ((a, b), n) = (p.range(), p.top());
        format!(
            "SELECT node_id, avg(price) AS avg_price FROM {e} WHERE ts >= {a} AND ts < {b} GROUP BY node_id ORDER BY avg_price DESC LIMIT {n}"
        )
    }),
    ("volume_by_fuel", |p, e, _| {
        let (a, b) = p.range();
        format!(
            "SELECT fuel_type, sum(volume_mwh) AS mwh FROM {e} WHERE ts >= {a} AND ts < {b} GROUP BY fuel_type ORDER BY mwh DESC"
        )
    }),
    ("emissions_by_market_month", |p, e, _| {
        let (a, b) = p.range();
        format!(
            "SELECT market, date_trunc('month', ts) AS month, sum(emissions_t) AS t FROM {e} WHERE ts >= {a} AND ts < {b} GROUP BY 1, 2 ORDER BY 1, 2"
        )
    }),
    ("hourly_profile", |p, e, _| {
        let ((a, b), n) = (p.range(), p.node());
        format!(
            "SELECT hour(ts) AS h, avg(price) AS avg_price, max(price) AS max_price FROM {e} WHERE node_id = {n} AND ts >= {a} AND ts < {b} GROUP BY 1 ORDER BY 1"
        )
    }),
    ("price_percentiles", |p, e, _| {
        let (a, b) = p.range();
        format!(
            "SELECT market, approx_percentile(price, 0.5) AS p50, approx_percentile(price, 0.95) AS p95 FROM {e} WHERE ts >= {a} AND ts < {b} GROUP BY market ORDER BY market"
        )
    }),
    ("missing_prices", |p, e, _| {
        let (a, b) = p.range();
        format!(
            "SELECT market, count(*) - count(price) AS missing, count(*) AS total FROM {e} WHERE ts >= {a} AND ts < {b} GROUP BY market ORDER BY market"
        )
    }),
    ("price_spikes", |p, e, _| {
        let ((a, b), n) = (p.range(), p.top());
        format!(
            "SELECT node_id, market, max(price) AS spike FROM {e} WHERE ts >= {a} AND ts < {b} GROUP BY node_id, market ORDER BY spike DESC LIMIT {n}"
        )
    }),
    ("volume_weighted_price", |p, e, _| {
        let ((a, b), m) = (p.range(), p.pick(MARKETS));
        format!(
            "SELECT date_trunc('day', ts) AS d, sum(price * volume_mwh) / nullif(sum(volume_mwh), 0) AS vwap FROM {e} WHERE market = '{m}' AND ts >= {a} AND ts < {b} GROUP BY 1 ORDER BY 1"
        )
    }),
    ("fuel_mix", |p, e, _| {
        let ((a, b), m) = (p.range(), p.pick(MARKETS));
        format!(
            "SELECT fuel_type, sum(volume_mwh) / sum(sum(volume_mwh)) OVER () AS share FROM {e} WHERE market = '{m}' AND ts >= {a} AND ts < {b} GROUP BY fuel_type ORDER BY share DESC"
        )
    }),
    ("latest_hours", |p, e, _| {
        let (n, h) = (p.node(), p.top() * 12);
        format!("SELECT ts, price, volume_mwh FROM {e} WHERE node_id = {n} ORDER BY ts DESC LIMIT {h}")
    }),
    ("weekly_markets", |p, e, _| {
        let ((a, b), m1, m2) = (p.range(), p.pick(MARKETS), p.pick(MARKETS));
        format!(
            "SELECT market, date_trunc('week', ts) AS w, avg(price) AS avg_price FROM {e} WHERE market IN ('{m1}', '{m2}', 'MISO') AND ts >= {a} AND ts < {b} GROUP BY 1, 2 ORDER BY 1, 2"
        )
    }),
    ("emission_intensity", |p, e, _| {
        let (a, b) = p.range();
        format!(
            "SELECT fuel_type, sum(emissions_t) / nullif(sum(volume_mwh), 0) AS t_per_mwh FROM {e} WHERE ts >= {a} AND ts < {b} GROUP BY fuel_type ORDER BY fuel_type"
        )
    }),
    ("expensive_hours", |p, e, _| {
        let ((a, b), m, k) = (p.range(), p.pick(MARKETS), p.rng.random_range(40..70));
        format!(
            "SELECT date_trunc('day', ts) AS d, count(*) AS hours_over FROM {e} WHERE market = '{m}' AND price > {k} AND ts >= {a} AND ts < {b} GROUP BY 1 ORDER BY 1"
        )
    }),
    ("fuel_price_by_bucket", |p, e, _| {
        let ((a, b), f, k) = (p.range(), p.pick(FUELS), p.pick(BUCKETS));
        format!(
            "SELECT date_trunc('{k}', ts) AS t, min(price) AS lo, max(price) AS hi FROM {e} WHERE fuel_type = '{f}' AND ts >= {a} AND ts < {b} GROUP BY 1 ORDER BY 1"
        )
    }),
    ("revenue_by_year", |p, _, t| {
        let r = p.pick(REGIONS);
        format!(
            "SELECT year(o.orderdate) AS y, sum(o.totalprice) AS revenue FROM {t}.orders o JOIN {t}.customer c ON o.custkey = c.custkey JOIN {t}.nation n ON c.nationkey = n.nationkey JOIN {t}.region r ON n.regionkey = r.regionkey WHERE r.name = '{r}' GROUP BY 1 ORDER BY 1"
        )
    }),
    ("top_customers", |p, _, t| {
        let (y, n) = (p.year(), p.top());
        format!(
            "SELECT c.name, sum(o.totalprice) AS spend FROM {t}.orders o JOIN {t}.customer c ON o.custkey = c.custkey WHERE year(o.orderdate) = {y} GROUP BY c.name ORDER BY spend DESC LIMIT {n}"
        )
    }),
    ("pricing_summary", |p, _, t| {
        let days = p.rng.random_range(60..=120);
        format!(
            "SELECT returnflag, linestatus, sum(quantity) AS qty, sum(extendedprice) AS base, avg(discount) AS disc, count(*) AS n FROM {t}.lineitem WHERE shipdate <= DATE '1998-12-01' - INTERVAL '{days}' DAY GROUP BY 1, 2 ORDER BY 1, 2"
        )
    }),
    ("order_priorities", |p, _, t| {
        let (y, q) = (p.year(), p.rng.random_range(0..4) * 3 + 1);
        format!(
            "SELECT orderpriority, count(*) AS n FROM {t}.orders WHERE orderdate >= DATE '{y}-{q:02}-01' AND orderdate < DATE '{y}-{q:02}-01' + INTERVAL '3' MONTH GROUP BY 1 ORDER BY 1"
        )
    }),
    ("suppliers_per_nation", |p, _, t| {
        let r = p.pick(REGIONS);
        format!(
            "SELECT n.name, count(*) AS suppliers FROM {t}.supplier s JOIN {t}.nation n ON s.nationkey = n.nationkey JOIN {t}.region r ON n.regionkey = r.regionkey WHERE r.name = '{r}' GROUP BY 1 ORDER BY 2 DESC"
        )
    }),
    ("part_prices", |p, _, t| {
        let b = p.rng.random_range(1..=5) * 10 + p.rng.random_range(1..=5);
        format!(
            "SELECT type, min(retailprice) AS lo, avg(retailprice) AS mean, max(retailprice) AS hi FROM {t}.part WHERE brand = 'Brand#{b}' GROUP BY type ORDER BY type LIMIT 20"
        )
    }),
    ("monthly_orders", |p, _, t| {
        let y = p.year();
        format!(
            "SELECT date_trunc('month', orderdate) AS m, count(*) AS orders, sum(totalprice) AS value FROM {t}.orders WHERE year(orderdate) = {y} GROUP BY 1 ORDER BY 1"
        )
    }),
];

/// Which tables a run's queries read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// Every template.
    All,
    /// The templates on the energy series only.
    Energy,
    /// The templates on tpch only.
    Tpch,
}

impl Workload {
    pub fn parse(s: &str) -> Option<Workload> {
        match s {
            "all" => Some(Workload::All),
            "energy" => Some(Workload::Energy),
            "tpch" => Some(Workload::Tpch),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Workload::All => "all",
            Workload::Energy => "energy",
            Workload::Tpch => "tpch",
        }
    }

    /// Whether the run reads the table `table` of `scale`.
    pub fn reads(self, scale: Scale, table: &str) -> bool {
        let energy = table == format!("{}.prices", scale.energy());
        match self {
            Workload::All => true,
            Workload::Energy => energy,
            Workload::Tpch => !energy,
        }
    }

    fn templates(self) -> Vec<(&'static str, Template)> {
        TEMPLATES
            .iter()
            .filter(|(_, build)| match self {
                Workload::All => true,
                Workload::Energy => reads_energy(*build),
                Workload::Tpch => !reads_energy(*build),
            })
            .copied()
            .collect()
    }
}

/// Whether `build` writes a query on the energy series (else on tpch).
fn reads_energy(build: Template) -> bool {
    let mut rng = StdRng::seed_from_u64(0);
    let mut p = Params { rng: &mut rng, scale: Scale::Smoke };
    build(&mut p, "energy_table", "tpch_schema").contains("energy_table")
}

/// `n` queries of `workload` drawn with `seed`, leaving out the templates
/// named in `skip`: (template name, SQL).
pub fn queries(scale: Scale, workload: Workload, skip: &[String], n: usize, seed: u64) -> Vec<(&'static str, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let energy = format!("{}.prices", scale.energy());
    let mut templates = workload.templates();
    for name in skip {
        assert!(templates.iter().any(|(t, _)| t == name), "no template {name} in the {} workload", workload.name());
    }
    templates.retain(|(name, _)| !skip.iter().any(|s| s == name));
    (0..n)
        .map(|_| {
            let (name, build) = templates[rng.random_range(0..templates.len())];
            let mut p = Params { rng: &mut rng, scale };
            (name, build(&mut p, &energy, scale.tpch()))
        })
        .collect()
}

pub fn template_count(workload: Workload) -> usize {
    workload.templates().len()
}

/// The charts `names` of one dashboard, with the literals of filter state
/// `state`: the same state gives the same statements.
pub fn charts(scale: Scale, names: &[&'static str], state: u64) -> Vec<(&'static str, String)> {
    let mut rng = StdRng::seed_from_u64(state);
    let energy = format!("{}.prices", scale.energy());
    names
        .iter()
        .map(|name| {
            let (_, build) = TEMPLATES.iter().find(|(n, _)| n == name).expect("a template of the workload");
            let mut p = Params { rng: &mut rng, scale };
            (*name, build(&mut p, &energy, scale.tpch()))
        })
        .collect()
}
