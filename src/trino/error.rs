//! Errors of the Trino client, split by who is at fault.

use serde::Deserialize;

use super::decode::DecodeError;

/// Where in the statement Trino found a problem.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorLocation {
    pub line_number: u32,
    pub column_number: u32,
}

/// A query failure as Trino reported it (`QueryError`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryError {
    pub message: String,
    #[serde(default)]
    pub error_code: i32,
    #[serde(default)]
    pub error_name: String,
    /// USER_ERROR, INTERNAL_ERROR, INSUFFICIENT_RESOURCES or EXTERNAL.
    #[serde(default)]
    pub error_type: String,
    #[serde(default)]
    pub error_location: Option<ErrorLocation>,
    /// Filled in by the client: Trino's id of the failed query.
    #[serde(skip)]
    pub query_id: Option<String>,
}

/// Errors talking to Trino.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Trino ran the statement and it failed.
    #[error("{}: {}", .0.error_name, .0.message)]
    Query(QueryError),
    /// Trino could not be reached (refused, reset, timed out).
    #[error("Trino at {url} is unavailable: {source}")]
    Unavailable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// Trino refused Flightdeck's credentials.
    #[error("Trino rejected Flightdeck's credentials (HTTP 401): {0}")]
    Unauthorized(String),
    /// Trino answered with an HTTP status the protocol does not expect.
    #[error("Trino answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    /// Trino's answer did not follow the client protocol.
    #[error("unexpected response from Trino: {0}")]
    Protocol(String),
    /// Result data did not match its column types.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A value cannot travel in an HTTP header (user, catalog, schema, ...).
    #[error("value not allowed in an HTTP header: {0:?}")]
    InvalidHeader(String),
    /// The client could not be built from its configuration.
    #[error("invalid Trino client configuration: {0}")]
    Config(String),
}

/// Result alias of the Trino client.
pub type Result<T, E = Error> = std::result::Result<T, E>;
