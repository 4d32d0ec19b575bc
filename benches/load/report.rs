//! The harness's report: JSON, an SVG chart of latency percentiles per mode
//! and concurrency, and a markdown summary for `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

use crate::data::Scale;
use crate::workload::{self, Workload};

/// One mode at one concurrency.
#[derive(Debug, Clone, Serialize)]
pub struct RunResult {
    pub mode: String,
    pub concurrency: usize,
    pub queries: usize,
    pub errors: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub qps: f64,
    /// Flightdeck's CPU seconds during the run (Flightdeck modes only).
    pub flightdeck_cpu_s: Option<f64>,
    pub flightdeck_rss_mib: Option<f64>,
    pub flightdeck_peak_rss_mib: Option<f64>,
    /// Queries and response bytes that reached Trino during the run.
    pub trino_queries: u64,
    pub trino_bytes: u64,
    /// Local queries that reused the plan kept for statements differing
    /// only in their time range.
    pub plans_reused: u64,
    /// Whole slices read by local queries whose partial aggregates were
    /// kept, and those that were not.
    pub partials_kept: (u64, u64),
    /// Of these queries, those the local engine answered, and their latency.
    pub local_queries: usize,
    pub local_p50_ms: f64,
    pub local_p95_ms: f64,
    /// The local engine's latency per query template (its queries sorted).
    pub local_by_template: Vec<TemplateLatency>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TemplateLatency {
    pub template: String,
    pub queries: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub max_ms: f64,
}

impl TemplateLatency {
    /// The summary of one template's latencies.
    pub fn of(template: &str, mut latencies: Vec<std::time::Duration>) -> Self {
        latencies.sort();
        TemplateLatency {
            template: template.to_string(),
            queries: latencies.len(),
            p50_ms: crate::pct(&latencies, 0.50),
            p95_ms: crate::pct(&latencies, 0.95),
            max_ms: latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1e3),
        }
    }
}

impl RunResult {
    pub fn line(&self) -> String {
        let opt = |v: Option<f64>, unit: &str| v.map_or("-".to_string(), |v| format!("{v:.1}{unit}"));
        format!(
            "{:<12} c={:<3} n={:<5} err={:<3} p50={:>9.2}ms p95={:>9.2}ms p99={:>9.2}ms qps={:>8.1} fd_cpu={} fd_rss={} trino_q={} trino_MiB={:.1} local={} (p50={:.2}ms p95={:.2}ms) reused={} partials={}/{}",
            self.mode,
            self.concurrency,
            self.queries,
            self.errors,
            self.p50_ms,
            self.p95_ms,
            self.p99_ms,
            self.qps,
            opt(self.flightdeck_cpu_s, "s"),
            opt(self.flightdeck_rss_mib, "MiB"),
            self.trino_queries,
            self.trino_bytes as f64 / (1 << 20) as f64,
            self.local_queries,
            self.local_p50_ms,
            self.local_p95_ms,
            self.plans_reused,
            self.partials_kept.0,
            self.partials_kept.0 + self.partials_kept.1
        )
    }
}

/// A whole run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub commit: String,
    pub scale: String,
    pub seed: u64,
    /// Which templates ran (`all`, `energy`, `tpch`).
    pub workload: String,
    pub templates: usize,
    /// The command line that produced it.
    pub command: String,
    pub results: Vec<RunResult>,
}

/// This run's command line, as typed to cargo.
pub fn command() -> String {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    if args.is_empty() { "scripts/bench.sh".into() } else { format!("cargo bench --bench load -- {}", args.join(" ")) }
}

fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn today() -> String {
    std::process::Command::new("date")
        .arg("-u")
        .arg("+%Y-%m-%d %H:%M UTC")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

const COLORS: &[(&str, &str)] =
    &[("trino", "#d62728"), ("passthrough", "#1f77b4"), ("cache", "#2ca02c"), ("local", "#9467bd")];

impl Report {
    /// `skipped`: how many of the workload's templates were left out.
    pub fn new(scale: Scale, seed: u64, workload: Workload, skipped: usize, results: Vec<RunResult>) -> Self {
        Report {
            date: today(),
            commit: git_commit(),
            scale: format!("{scale:?}").to_lowercase(),
            seed,
            workload: workload.name().into(),
            templates: workload::template_count(workload) - skipped,
            command: command(),
            results,
        }
    }

    /// Latency percentiles per mode against concurrency, log scale.
    pub fn svg(&self) -> String {
        let (w, h, left, right, top, bottom) = (760.0, 440.0, 70.0, 170.0, 40.0, 50.0);
        let mut conc: Vec<usize> = self.results.iter().map(|r| r.concurrency).collect();
        conc.sort();
        conc.dedup();
        let values = self.results.iter().flat_map(|r| [r.p50_ms, r.p95_ms, r.p99_ms]).filter(|v| *v > 0.0);
        let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v), b.max(v)));
        let (lo, hi) = (10f64.powf(lo.log10().floor()), 10f64.powf(hi.log10().ceil()));
        let x = |i: usize| left + (w - left - right) * (i as f64 + 0.5) / conc.len() as f64;
        let y = |v: f64| top + (h - top - bottom) * (1.0 - (v.log10() - lo.log10()) / (hi.log10() - lo.log10()));
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
        let _ = write!(
            s,
            r#"<text x="{}" y="22" font-size="14" text-anchor="middle">Dashboard workload latency ({} scale, {} queries per run, {})</text>"#,
            (w - right + left) / 2.0,
            self.scale,
            self.results.first().map_or(0, |r| r.queries),
            self.date
        );
        let mut decade = lo;
        while decade <= hi * 1.0001 {
            let yy = y(decade);
            let _ = write!(s, r##"<line x1="{left}" x2="{}" y1="{yy}" y2="{yy}" stroke="#ddd"/>"##, w - right);
            let _ = write!(s, r#"<text x="{}" y="{}" text-anchor="end">{} ms</text>"#, left - 6.0, yy + 4.0, decade);
            decade *= 10.0;
        }
        for (i, c) in conc.iter().enumerate() {
            let _ = write!(s, r#"<text x="{}" y="{}" text-anchor="middle">{c}</text>"#, x(i), h - bottom + 18.0);
        }
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">concurrent clients</text>"#,
            (w - right + left) / 2.0,
            h - 10.0
        );
        for (k, (mode, color)) in COLORS.iter().enumerate() {
            for (metric, dash, pick) in [("p50", "", 0), ("p95", "6,4", 1), ("p99", "2,3", 2)] {
                let pts: Vec<(f64, f64)> = conc
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| {
                        let r = self.results.iter().find(|r| r.mode == *mode && r.concurrency == *c)?;
                        let v = [r.p50_ms, r.p95_ms, r.p99_ms][pick];
                        (v > 0.0).then(|| (x(i), y(v)))
                    })
                    .collect();
                let path: Vec<String> = pts.iter().map(|(a, b)| format!("{a:.1},{b:.1}")).collect();
                let _ = write!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/>"#,
                    path.join(" ")
                );
                for (a, b) in &pts {
                    let _ = write!(s, r#"<circle cx="{a:.1}" cy="{b:.1}" r="3" fill="{color}"/>"#);
                }
                let ly = top + 10.0 + (k * 3 + pick) as f64 * 18.0;
                let _ = write!(
                    s,
                    r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2" stroke-dasharray="{dash}"/><text x="{}" y="{}">{mode} {metric}</text>"#,
                    w - right + 15.0,
                    w - right + 45.0,
                    w - right + 50.0,
                    ly + 4.0
                );
            }
        }
        s.push_str("</svg>\n");
        s
    }

    pub fn markdown(&self) -> String {
        let mut s = format!(
            "\n## Dashboard workload, {} scale, {} templates ({})\n\n    {}\n\n\
             {} queries per run drawn from {} templates (seed {}), the same queries for every mode; \
             `cache` ran after every query was warmed into the cache once. Commit `{}`.\n\n\
             ![latency](bench/load-latency.svg)\n\n\
             `local` ran with the cache off and every table accelerated; the last columns give how many of its \
             queries the local engine answered and their latency (the rest went to Trino).\n\n\
             | mode | clients | p50 ms | p95 ms | p99 ms | queries/s | errors | Flightdeck CPU s | Flightdeck RSS MiB (peak) | queries to Trino | MiB from Trino | answered locally | local p50 ms | local p95 ms |\n\
             |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            self.scale,
            self.workload,
            self.date,
            self.command,
            self.results.first().map_or(0, |r| r.queries),
            self.templates,
            self.seed,
            self.commit
        );
        for r in &self.results {
            let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            let _ = writeln!(
                s,
                "| {} | {} | {:.2} | {:.2} | {:.2} | {:.1} | {} | {} | {} ({}) | {} | {:.1} | {} | {:.2} | {:.2} |",
                r.mode,
                r.concurrency,
                r.p50_ms,
                r.p95_ms,
                r.p99_ms,
                r.qps,
                r.errors,
                opt(r.flightdeck_cpu_s),
                opt(r.flightdeck_rss_mib),
                opt(r.flightdeck_peak_rss_mib),
                r.trino_queries,
                r.trino_bytes as f64 / (1 << 20) as f64,
                r.local_queries,
                r.local_p50_ms,
                r.local_p95_ms
            );
        }
        for r in self.results.iter().filter(|r| !r.local_by_template.is_empty()) {
            let _ = write!(
                s,
                "\nLocal answers by template, {} at {} clients:\n\n\
                 | template | queries | p50 ms | p95 ms | max ms |\n|---|---|---|---|---|\n",
                r.mode, r.concurrency
            );
            for t in &r.local_by_template {
                let _ = writeln!(
                    s,
                    "| {} | {} | {:.2} | {:.2} | {:.2} |",
                    t.template, t.queries, t.p50_ms, t.p95_ms, t.max_ms
                );
            }
        }
        s
    }

    /// Writes JSON and SVG under the target folder; with `docs`, also into
    /// `docs/bench/` with the summary appended to `docs/benchmarks.md`.
    pub fn write(&self, docs: bool) {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
            .join("bench");
        let mut dirs = vec![target];
        if docs {
            dirs.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/bench"));
        }
        for dir in &dirs {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("load.json"), serde_json::to_string_pretty(self).unwrap()).unwrap();
            std::fs::write(dir.join("load-latency.svg"), self.svg()).unwrap();
            eprintln!("wrote {}/load.json and load-latency.svg", dir.display());
        }
        if docs {
            let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/benchmarks.md");
            let mut md = std::fs::read_to_string(&path).unwrap_or_default();
            md.push_str(&self.markdown());
            std::fs::write(&path, md).unwrap();
            eprintln!("appended the summary to {}", path.display());
        }
    }
}
