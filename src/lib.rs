//! Flightdeck: a query-acceleration proxy that speaks Arrow Flight SQL to
//! clients and runs their queries on Trino.
//!
//! # Layout
//!
//! From the bottom up; each module uses only those above it in this list.
//!
//! - [`sql`]: statement text read once, as Trino's lexer reads it: canonical
//!   text, kind, tables read and written, parameter markers, quoting.
//! - [`memory`]: one budget for results buffered outside the cache.
//! - [`trino`]: Trino's REST client protocol, decoding its JSON pages into
//!   Arrow, describing statements, and a bound on concurrent queries.
//! - [`cache`]: results kept as Arrow and as encoded Flight messages,
//!   bounded in bytes, single-flight, isolated per user; invalidated by
//!   writes, marked stale by refreshes.
//! - [`router`]: the one decision of where a statement is answered (the
//!   cache or an engine, Trino behind the `Engine` trait), for every
//!   protocol; parks started statements and streams them at the client's pace.
//! - [`flight`]: the Flight SQL protocol only: authentication, commands,
//!   signed tickets, handles and session cookies, answers encoded.
//! - [`admin`]: Prometheus metrics, health and readiness, and the admin API.
//! - [`config`]: the TOML file, `FLIGHTDECK_*` variables and flags, one
//!   section per module.
//! - [`app`]: builds the parts, runs the servers and background tasks, and
//!   drains them at shutdown.
//!
//! `docs/architecture.md` draws the path of a query.

#![warn(missing_debug_implementations, clippy::clone_on_ref_ptr, rustdoc::broken_intra_doc_links)]

/// Accelerated datasets: local copies of Trino tables, kept fresh.
pub mod accel;
/// The admin HTTP server: metrics, health, cache administration.
pub mod admin;
/// Building and running the servers.
pub mod app;
/// The columnar result cache.
pub mod cache;
/// Configuration.
pub mod config;
/// The Flight SQL service.
pub mod flight;
/// The local engine: DataFusion on accelerated datasets, Trino's answers.
pub mod local;
/// The memory budget of buffered results.
pub mod memory;
/// Where statements run.
pub mod router;
/// Reading statement text as Trino does.
pub mod sql;
/// The Trino client.
pub mod trino;
/// Trino's client protocol in front of the router.
pub mod trino_protocol;

pub use app::Application;

/// Largest Flight message sent; clients default to 4-16 MiB limits. Cached
/// results are encoded ahead with it, streams as they go.
pub const MAX_FLIGHT_DATA_BYTES: usize = 2 * 1024 * 1024;
pub use config::Config;
