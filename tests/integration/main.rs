//! Integration tests against a real Trino, started by `scripts/trino.sh`.
//! One binary so everything links once.

/// The result cache end to end: single flight, isolation, freshness, admin.
mod cache;
mod common;
/// Accelerated datasets: loading, append and full refresh, failures, limits.
mod datasets;
/// The local engine against Trino, query by query.
mod differential;
/// Failure handling: errors, unavailability, authentication, tickets.
mod errors;
/// Writes run once, exact parameters and type names, and the other defects
/// of the hardening pass.
mod hardening;
/// The local route: what it answers, for whom, behind the cache.
mod local;
/// Flight SQL metadata, SqlInfo and cancellation.
mod metadata;
/// The statement and prepared-statement paths end to end.
mod queries;
/// Client sessions: SetSessionOptions, USE, SET SESSION, CloseSession.
mod sessions;
/// TLS on the Flight SQL port.
mod tls;
/// Trino's client protocol: Trino's JSON from every route.
mod trino_protocol;
