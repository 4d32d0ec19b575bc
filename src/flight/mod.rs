//! Arrow Flight SQL: the protocol side only. Commands are authenticated and
//! decoded here, answered by the [`router`](crate::router), and encoded
//! back; nothing here knows which engine or cache produced an answer.

mod auth;
mod calls;
mod encode;
mod error;
mod metadata;
mod prepared;
mod service;
mod session;
mod signing;
mod ticket;

/// Messages of `proto/flightdeck.proto`: tickets, handles, tokens.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/flightdeck.v1.rs"));
}

pub(crate) use auth::basic_user_password;
pub use auth::{AuthGate, Authenticator};
pub use calls::CallMetrics;
pub use error::Error;
pub use service::{FlightdeckService, ServiceState};
pub use signing::Signer;
