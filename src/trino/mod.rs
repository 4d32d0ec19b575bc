//! Trino: the REST client protocol and the mapping of Trino's types to Arrow.

mod client;
pub mod decode;
mod describe;
mod error;
pub mod types;

pub(crate) use client::urlenc;
pub use client::{ClientStats, Query, Session, SessionUpdate, TrinoAuth, TrinoClient, TrinoConfig};
pub use error::{Error, ErrorLocation, Origin, QueryError, Result};
pub use types::{Column, TrinoType, schema_for};
