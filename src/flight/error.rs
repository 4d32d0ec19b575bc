//! The one place errors become gRPC statuses.

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::signing::SignError;
use crate::trino;

/// Trino error names that mean "the thing you named does not exist".
const NOT_FOUND: &[&str] = &[
    "NOT_FOUND",
    "CATALOG_NOT_FOUND",
    "SCHEMA_NOT_FOUND",
    "TABLE_NOT_FOUND",
    "COLUMN_NOT_FOUND",
    "FUNCTION_NOT_FOUND",
    "MISSING_TABLE",
];
const ALREADY_EXISTS: &[&str] =
    &["ALREADY_EXISTS", "TABLE_ALREADY_EXISTS", "SCHEMA_ALREADY_EXISTS", "COLUMN_ALREADY_EXISTS"];

/// The gRPC status for a Trino client error. Trino's message and error name
/// are kept in the message, and the error name, type, code and query id in
/// `x-trino-*` response metadata.
pub fn trino_status(e: &trino::Error) -> Status {
    let status = match e {
        trino::Error::Query(q) => {
            let code = match q.error_name.as_str() {
                n if NOT_FOUND.contains(&n) => Code::NotFound,
                n if ALREADY_EXISTS.contains(&n) => Code::AlreadyExists,
                "PERMISSION_DENIED" => Code::PermissionDenied,
                "USER_CANCELED" | "ADMINISTRATIVELY_KILLED" => Code::Cancelled,
                "EXCEEDED_TIME_LIMIT" => Code::DeadlineExceeded,
                _ => match q.error_type.as_str() {
                    "USER_ERROR" => Code::InvalidArgument,
                    "INSUFFICIENT_RESOURCES" => Code::ResourceExhausted,
                    _ => Code::Internal,
                },
            };
            let mut msg = format!("{}: {}", q.error_name, q.message);
            if let Some(id) = &q.query_id {
                msg.push_str(&format!(" [Trino query {id}]"));
            }
            let mut s = Status::new(code, msg);
            let md = s.metadata_mut();
            for (k, v) in [
                ("x-trino-error-name", q.error_name.clone()),
                ("x-trino-error-type", q.error_type.clone()),
                ("x-trino-error-code", q.error_code.to_string()),
                ("x-trino-query-id", q.query_id.clone().unwrap_or_default()),
            ] {
                if let Ok(v) = MetadataValue::try_from(v.as_str()) {
                    md.insert(k, v);
                }
            }
            if let Some(loc) = &q.error_location {
                if let Ok(v) = MetadataValue::try_from(format!("{}:{}", loc.line_number, loc.column_number)) {
                    md.insert("x-trino-error-location", v);
                }
            }
            s
        }
        trino::Error::Unavailable { .. } => Status::unavailable(e.to_string()),
        trino::Error::Http { status, .. } if *status >= 500 => Status::unavailable(e.to_string()),
        // Trino refused the request itself (a malformed header, say).
        trino::Error::Http { status, .. } if *status >= 400 && *status != 401 => {
            Status::invalid_argument(e.to_string())
        }
        trino::Error::InvalidHeader(_) => Status::invalid_argument(e.to_string()),
        trino::Error::Unauthorized(_)
        | trino::Error::Http { .. }
        | trino::Error::Protocol(_)
        | trino::Error::Decode(_)
        | trino::Error::Config(_) => Status::internal(e.to_string()),
    };
    log(&status);
    status
}

/// The status for a ticket, handle or token that does not verify.
pub fn sign_status(e: &SignError) -> Status {
    let status = match e {
        SignError::Malformed(_) => Status::invalid_argument(e.to_string()),
        SignError::BadSignature(_) => Status::permission_denied(e.to_string()),
        SignError::Expired(_) => Status::invalid_argument(e.to_string()),
    };
    log(&status);
    status
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
