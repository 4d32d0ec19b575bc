//! The one place errors become gRPC statuses.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::signing::SignError;
use crate::router;

/// Why a Flight request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The router (or the engine behind it) refused or failed the statement.
    #[error(transparent)]
    Router(#[from] router::Error),
    /// A ticket, handle or token that does not verify.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// A message or field that does not decode, or is missing.
    #[error("{0}")]
    Malformed(String),
    /// A ticket or handle issued to another user.
    #[error("{0} was issued to another user")]
    NotYours(&'static str),
    /// A ticket past its lifetime.
    #[error("ticket has expired: call GetFlightInfo again")]
    TicketExpired,
    /// A prepared statement that was closed or outlived its handle.
    #[error("prepared statement {0}: prepare it again")]
    HandleGone(&'static str),
    /// An action or command this server does not offer.
    #[error("{0}")]
    Unsupported(String),
    /// Encoding an answer failed.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn malformed(what: &str, e: impl std::fmt::Display) -> Self {
        Error::Malformed(format!("malformed {what}: {e}"))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let status = match e {
            Error::Router(e) => return e.into(),
            Error::Sign(e) => return e.into(),
            Error::Malformed(_) | Error::TicketExpired => Status::invalid_argument(e.to_string()),
            Error::NotYours(_) => Status::permission_denied(e.to_string()),
            Error::HandleGone(_) => Status::not_found(e.to_string()),
            Error::Unsupported(_) => Status::unimplemented(e.to_string()),
            Error::Internal(_) => Status::internal(e.to_string()),
        };
        log(&status);
        status
    }
}

/// The engine's details (Trino's error name, type, code, query id and
/// location) travel as `x-trino-*` response metadata.
impl From<router::Error> for Status {
    fn from(e: router::Error) -> Self {
        let code = match e.code {
            router::Code::InvalidArgument => Code::InvalidArgument,
            router::Code::NotFound => Code::NotFound,
            router::Code::AlreadyExists => Code::AlreadyExists,
            router::Code::PermissionDenied => Code::PermissionDenied,
            router::Code::Cancelled => Code::Cancelled,
            router::Code::DeadlineExceeded => Code::DeadlineExceeded,
            router::Code::ResourceExhausted => Code::ResourceExhausted,
            router::Code::FailedPrecondition => Code::FailedPrecondition,
            router::Code::Unavailable => Code::Unavailable,
            router::Code::Internal => Code::Internal,
        };
        let mut status = Status::new(code, e.message);
        // Trino's bare message is in the status message already.
        for (k, v) in e.details.into_iter().filter(|(k, _)| *k != "x-trino-error-message") {
            if let Ok(v) = MetadataValue::try_from(v.as_str()) {
                status.metadata_mut().insert(k, v);
            }
        }
        log(&status);
        status
    }
}

impl From<SignError> for Status {
    fn from(e: SignError) -> Self {
        let status = match e {
            SignError::Malformed(_) => Status::invalid_argument(e.to_string()),
            SignError::BadSignature(_) => Status::permission_denied(e.to_string()),
        };
        log(&status);
        status
    }
}

/// Client faults are logged at info, server faults at warn.
fn log(s: &Status) {
    match s.code() {
        Code::Internal | Code::Unavailable | Code::Unknown | Code::DataLoss => {
            tracing::warn!(code = ?s.code(), message = s.message(), "request failed")
        }
        _ => tracing::info!(code = ?s.code(), message = s.message(), "request rejected"),
    }
}
