//! The router's error: what failed and whose fault it is, with the engine's
//! own details, for whichever protocol answers the client.

/// What kind of failure, in the terms clients act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// The statement or a value in the request is wrong.
    InvalidArgument,
    NotFound,
    AlreadyExists,
    PermissionDenied,
    Cancelled,
    DeadlineExceeded,
    /// A limit was reached: memory, parked queries, engine resources.
    ResourceExhausted,
    /// The request cannot be served in this state (`only-if-cached` with
    /// nothing cached, a result no longer held).
    FailedPrecondition,
    /// The engine cannot be reached, or Flightdeck is shutting down: retry.
    Unavailable,
    Internal,
}

/// A failed request.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    pub code: Code,
    pub message: String,
    /// The engine's own account (Trino's error name, type, code, query id
    /// and location), as `x-trino-*` names and values.
    pub details: Vec<(&'static str, String)>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into(), details: Vec::new() }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(Code::InvalidArgument, message)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Error::new(Code::FailedPrecondition, message)
    }

    pub fn resource_exhausted(message: impl Into<String>) -> Self {
        Error::new(Code::ResourceExhausted, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(Code::Internal, message)
    }

    /// The engine's error name (`TABLE_NOT_FOUND`, ...), when it gave one.
    pub fn name(&self) -> Option<&str> {
        self.details.iter().find(|(k, _)| *k == "x-trino-error-name").map(|(_, v)| v.as_str())
    }
}

impl From<crate::memory::Exhausted> for Error {
    fn from(e: crate::memory::Exhausted) -> Self {
        Error::resource_exhausted(e.to_string())
    }
}

impl From<arrow::error::ArrowError> for Error {
    fn from(e: arrow::error::ArrowError) -> Self {
        Error::internal(format!("cannot encode result: {e}"))
    }
}
