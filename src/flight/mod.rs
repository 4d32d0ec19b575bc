//! Arrow Flight SQL: the protocol side only. Commands are decoded and
//! authenticated here and handed to the [`router`](crate::router).

mod auth;
mod error;
mod metadata;
mod params;
mod registry;
mod service;
mod session;
mod signing;
mod statement;

/// Messages of `proto/flightdeck.proto`: tickets, handles, tokens.
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/flightdeck.v1.rs"));
}

pub use auth::{AuthGate, Authenticator};
pub use registry::Registry;
pub use service::{FlightdeckService, MAX_FLIGHT_DATA_BYTES, ServiceState};
pub use signing::Signer;

impl From<&proto::SessionContext> for crate::trino::Session {
    fn from(ctx: &proto::SessionContext) -> Self {
        crate::trino::Session {
            user: ctx.user.clone(),
            catalog: ctx.catalog.clone(),
            schema: ctx.schema.clone(),
            prepared: Vec::new(),
            properties: ctx.properties.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        }
    }
}
