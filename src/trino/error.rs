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

/// Where the text sent to Trino came from, when Flightdeck changed it (bound
/// parameters, a `PREPARE ... FROM` around it): positions Trino reports in
/// the text it ran are moved back into the text the client wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    client: String,
    sent: String,
    /// Runs copied verbatim: (offset in `sent`, offset in `client`, length).
    /// Between them, text Flightdeck put in place of one client character
    /// (a `?` marker).
    copied: Vec<(usize, usize, usize)>,
}

impl Origin {
    /// `sent` was made of runs of `client` (see [`Origin::copied`]).
    pub fn new(client: &str, sent: &str, copied: Vec<(usize, usize, usize)>) -> Origin {
        Origin { client: client.to_string(), sent: sent.to_string(), copied }
    }

    /// `sent` is `prefix` followed by the whole of `client`.
    pub fn prefixed(prefix: &str, client: &str) -> Origin {
        Origin::new(client, &format!("{prefix}{client}"), vec![(prefix.len(), 0, client.len())])
    }

    /// The client's position for a position in the sent text.
    fn map(&self, line: u32, column: u32) -> Option<(u32, u32)> {
        use crate::sql::lexer::{line_col, offset_of};
        let at = offset_of(&self.sent, line, column)?;
        let mut before = None;
        for &(sent, client, len) in &self.copied {
            if (sent..=sent + len).contains(&at) {
                return Some(line_col(&self.client, client + (at - sent)));
            }
            if at > sent + len {
                // Inside what replaced the character after this run.
                before = Some(client + len);
            }
        }
        before.map(|c| line_col(&self.client, c))
    }

    /// Moves `e`'s position, and the `line L:C: ` its message starts with,
    /// into the client's text.
    pub fn relocate(&self, e: &mut QueryError) {
        let Some(loc) = e.error_location.as_mut() else { return };
        let Some((line, column)) = self.map(loc.line_number, loc.column_number) else { return };
        let old = format!("line {}:{}: ", loc.line_number, loc.column_number);
        if let Some(rest) = e.message.strip_prefix(&old) {
            e.message = format!("line {line}:{column}: {rest}");
        }
        *loc = ErrorLocation { line_number: line, column_number: column };
    }
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
    /// Every slot for queries on Trino stayed taken (see
    /// `max_concurrent_queries`).
    #[error("Trino is busy: Flightdeck's limit of concurrent queries stayed full for {0:?}; retry later")]
    Busy(std::time::Duration),
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

impl Error {
    /// The error with its position moved into the client's text.
    pub fn relocated(mut self, origin: Option<&Origin>) -> Error {
        if let (Error::Query(q), Some(o)) = (&mut self, origin) {
            o.relocate(q);
        }
        self
    }
}

/// Result alias of the Trino client.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: u32, column: u32) -> QueryError {
        QueryError {
            message: format!("line {line}:{column}: mismatched input 'x'"),
            error_code: 1,
            error_name: "SYNTAX_ERROR".into(),
            error_type: "USER_ERROR".into(),
            error_location: Some(ErrorLocation { line_number: line, column_number: column }),
            query_id: None,
        }
    }

    #[test]
    fn positions_move_back_into_the_clients_text() {
        let o = Origin::prefixed("PREPARE p FROM ", "SELEC 1");
        let mut e = error(1, 16);
        o.relocate(&mut e);
        assert_eq!(e.error_location, Some(ErrorLocation { line_number: 1, column_number: 1 }));
        assert_eq!(e.message, "line 1:1: mismatched input 'x'");
        // A bound literal longer than its marker, then a second line.
        let client = "SELECT ?, 'é'\r\nFRO t";
        let sent = "SELECT BIGINT '7', 'é'\r\nFRO t";
        let o = Origin::new(client, sent, vec![(0, 0, 7), (17, 8, client.len() - 8)]);
        let mut e = error(2, 1);
        o.relocate(&mut e);
        assert_eq!(e.error_location, Some(ErrorLocation { line_number: 2, column_number: 1 }));
        let mut e = error(1, 21);
        o.relocate(&mut e);
        assert_eq!(e.error_location, Some(ErrorLocation { line_number: 1, column_number: 12 }), "after the literal");
        let mut e = error(1, 12);
        o.relocate(&mut e);
        assert_eq!(e.error_location, Some(ErrorLocation { line_number: 1, column_number: 8 }), "inside: the marker");
    }
}
