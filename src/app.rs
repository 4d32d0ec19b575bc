//! Builds the servers from a [`Config`] and runs them until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;

use crate::config::Config;
use crate::flight::{Authenticator, FlightdeckService, Registry, ServiceState, Signer};
use crate::router::Router;
use crate::trino::TrinoClient;

/// Largest message accepted or sent over gRPC (DoPut parameters, actions).
const MAX_GRPC_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A built Flightdeck: listeners bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    flight_addr: SocketAddr,
    state: Arc<ServiceState>,
}

/// Errors building the application.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Trino(#[from] crate::trino::Error),
}

impl Application {
    /// Binds the Flight SQL listener (port 0 picks a free port) and builds
    /// the service.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(config.listen).await.map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let flight_addr = listener.local_addr().map_err(|source| StartError::Bind { addr: config.listen, source })?;
        if config.ticket_secret.is_none() {
            tracing::warn!("no ticket secret configured: using a random one, so tickets and tokens are valid on this process only");
        }
        let signer = Signer::new(config.ticket_secret.clone());
        let auth = Authenticator::new(
            config.auth.clone(),
            config.default_user.clone(),
            config.token_ttl.as_secs() as i64,
            signer.clone(),
        );
        let router = Router::new(TrinoClient::new(&config.trino)?);
        let registry = Registry::new(config.pending_queries, config.pending_query_ttl);
        let state = Arc::new(ServiceState::new(
            router,
            auth,
            signer,
            registry,
            config.default_catalog.clone(),
            config.default_schema.clone(),
        ));
        Ok(Application { listener, flight_addr, state })
    }

    /// The address the Flight SQL server listens on.
    pub fn flight_addr(&self) -> SocketAddr {
        self.flight_addr
    }

    /// Shared state, for tests and the admin side.
    pub fn state(&self) -> Arc<ServiceState> {
        Arc::clone(&self.state)
    }

    /// Serves until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), tonic::transport::Error> {
        let service = FlightServiceServer::new(FlightdeckService::new(Arc::clone(&self.state)))
            .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES);
        tracing::info!(addr = %self.flight_addr, "Flight SQL listening");
        let janitor = tokio::spawn(self.state.registry.clone().janitor());
        let served = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpIncoming::from(self.listener).with_nodelay(Some(true)), shutdown)
            .await;
        janitor.abort();
        served
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
