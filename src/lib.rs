//! Flightdeck: a query-acceleration proxy that speaks Arrow Flight SQL to
//! clients and runs their queries on Trino.
//!
//! # Layout
//!
//! - [`sql`]: statement text read as Trino's lexer reads it: canonical
//!   text, kind, write target, parameter markers.
//! - [`config`]: the TOML file, `FLIGHTDECK_*` variables and flags, checked
//!   all at once.
//! - [`trino`]: Trino's REST client protocol, and decoding its JSON pages
//!   straight into Arrow.
//! - [`flight`]: the Flight SQL service: protocol, authentication, signed
//!   tickets and handles. It delegates execution to the router.
//! - [`cache`]: results kept as Arrow and as encoded Flight messages,
//!   bounded in bytes, single-flight, isolated per user.
//! - [`memory`]: one budget for results buffered outside the cache.
//! - [`router`]: where a statement runs (Trino today).
//! - [`admin`]: Prometheus metrics, health and readiness, and the admin API.
//! - [`app`]: binds the listeners and runs the servers until shutdown.

#![warn(missing_debug_implementations, clippy::clone_on_ref_ptr, rustdoc::broken_intra_doc_links)]

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
/// The memory budget of buffered results.
pub mod memory;
/// Where statements run.
pub mod router;
/// Reading statement text as Trino does.
pub mod sql;
/// The Trino client.
pub mod trino;

pub use app::Application;

/// Largest Flight message sent; clients default to 4-16 MiB limits. Cached
/// results are encoded ahead with it, streams as they go.
pub const MAX_FLIGHT_DATA_BYTES: usize = 2 * 1024 * 1024;
pub use config::Config;
