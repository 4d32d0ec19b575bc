//! Builds the servers from a [`Config`] and runs them until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::server::TcpIncoming;

use crate::accel::Datasets;
use crate::admin::{self, AdminState};
use crate::cache::ResultCache;
use crate::config::Config;
use crate::flight::{AuthGate, Authenticator, CallMetrics, FlightdeckService, ServiceState, Signer};
use crate::router::{Parts, Registry, Router, TrinoEngine};
use crate::trino::TrinoClient;
use crate::trino_protocol::TrinoProtocol;

/// Largest message accepted or sent over gRPC (DoPut parameters, actions).
const MAX_GRPC_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A built Flightdeck: listeners bound, ready to serve.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    plain_listener: Option<TcpListener>,
    tls: Option<crate::config::TlsFiles>,
    admin_listener: TcpListener,
    /// Trino's client protocol, when on.
    trino_protocol: Option<(TcpListener, Arc<TrinoProtocol>)>,
    trino_protocol_addr: Option<SocketAddr>,
    flight_addr: SocketAddr,
    admin_addr: SocketAddr,
    state: Arc<ServiceState>,
    router: Router,
    admin: AdminState,
    trino: TrinoClient,
    shutdown_grace: std::time::Duration,
    /// Cancelled when shutdown begins: listeners stop accepting, parked
    /// statements are dropped, `/ready` turns 503, background work ends.
    shutdown: CancellationToken,
    /// Cancelled when the grace period is over: open streams stop.
    stop_streams: CancellationToken,
    /// Every background task: stream pumps, cache refreshes, the janitor,
    /// dataset refreshes.
    tasks: TaskTracker,
    datasets: Option<Datasets>,
}

/// Errors building the application.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Trino(#[from] crate::trino::Error),
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listener = TcpListener::bind(addr).await.map_err(|source| StartError::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| StartError::Bind { addr, source })?;
    Ok((listener, local))
}

impl Application {
    /// Binds the Flight SQL and admin listeners (port 0 picks a free port)
    /// and builds the services.
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let (listener, flight_addr) = bind(config.flight.listen).await?;
        let plain_listener = match config.flight.plain_listen {
            Some(a) => Some(bind(a).await?.0),
            None => None,
        };
        let (admin_listener, admin_addr) = bind(config.admin.listen).await?;
        let trino_protocol_listener = match config.trino_protocol.listen {
            Some(a) => Some(bind(a).await?),
            None => None,
        };
        if config.flight.ticket_secret.is_none() {
            tracing::warn!(
                "no ticket secret configured: using a random one, so tickets and tokens are valid on this process only"
            );
        }
        if matches!(config.auth.mode, crate::config::AuthMode::None) && !flight_addr.ip().is_loopback() {
            tracing::warn!(
                addr = %flight_addr,
                "AUTHENTICATION IS OFF on a non-loopback address: anyone who can reach this port runs queries as \
                 any Trino user they name; use --auth password, or listen on loopback"
            );
        }
        if config.auth.allow_insecure_password && config.flight.tls.is_none() && !flight_addr.ip().is_loopback() {
            tracing::warn!(addr = %flight_addr, "passwords and tokens cross the network in clear text (--allow-insecure-password)");
        }
        // Install the recorder before anything records.
        let _ = admin::prometheus();
        let signer = Signer::new(config.flight.ticket_secret.as_ref().map(|s| s.expose().as_bytes().to_vec()));
        let auth = Authenticator::new(
            config.auth.mode.clone(),
            config.auth.default_user.clone(),
            config.auth.token_ttl.as_secs() as i64,
            signer.clone(),
        );
        let (shutdown, stop_streams, tasks) = (CancellationToken::new(), CancellationToken::new(), TaskTracker::new());
        let trino = TrinoClient::new(&config.trino.client)?;
        let cache = config
            .cache
            .enabled
            .then(|| ResultCache::new(config.cache.clone()).with_lifecycle(shutdown.clone(), tasks.clone()));
        let datasets = (!config.accel.datasets.is_empty()).then(|| {
            // Refreshes run as the user Flightdeck authenticates to Trino as.
            let user = match &config.trino.client.auth {
                crate::trino::TrinoAuth::Basic { user, .. } => user.clone(),
                _ => "flightdeck".to_string(),
            };
            Datasets::new(&config.accel, trino.clone(), user, cache.clone())
        });
        let local =
            match (&datasets, &config.accel.local) {
                (Some(d), Some(limits)) => Some(Arc::new(crate::local::LocalEngine::new(d.clone(), limits.clone()))
                    as Arc<dyn crate::router::Local>),
                _ => None,
            };
        let router = Router::new(Parts {
            engine: Arc::new(TrinoEngine::new(trino.clone())),
            local,
            cache: cache.clone(),
            registry: Registry::new(
                config.flight.pending_queries,
                config.flight.pending_queries_per_user,
                config.flight.pending_query_ttl,
            ),
            memory: crate::memory::MemoryBudget::new(config.flight.memory_budget),
            session_properties: config.trino.client.session_properties.clone(),
            time_zone: config.trino.client.time_zone.clone(),
            stop_streams: stop_streams.clone(),
            tasks: tasks.clone(),
        });
        let trino_protocol_addr = trino_protocol_listener.as_ref().map(|(_, a)| *a);
        let trino_protocol = trino_protocol_listener.map(|(l, _)| {
            let service = TrinoProtocol::new(
                router.clone(),
                auth.clone(),
                (config.trino.catalog.clone(), config.trino.schema.clone()),
                trino.clone(),
                config.flight.tls.is_some(),
            );
            (l, Arc::new(service))
        });
        let state = Arc::new(ServiceState::new(
            router.clone(),
            auth,
            signer,
            (config.trino.catalog.clone(), config.trino.schema.clone()),
            config.auth.session_ttl,
        ));
        let admin = AdminState {
            cache,
            datasets: datasets.clone(),
            trino: trino.clone(),
            token: config.admin.token.as_ref().map(|t| t.expose().to_string()),
            shutdown: shutdown.clone(),
        };
        Ok(Application {
            listener,
            plain_listener,
            tls: config.flight.tls.clone(),
            admin_listener,
            trino_protocol,
            trino_protocol_addr,
            flight_addr,
            admin_addr,
            state,
            router,
            admin,
            trino,
            shutdown_grace: config.flight.shutdown_grace,
            shutdown,
            stop_streams,
            tasks,
            datasets,
        })
    }

    /// The address the Flight SQL server listens on.
    pub fn flight_addr(&self) -> SocketAddr {
        self.flight_addr
    }

    /// Whether the Flight SQL port serves TLS.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The plain-gRPC loopback listener's address, when TLS is on and one was asked for.
    pub fn plain_addr(&self) -> Option<SocketAddr> {
        self.plain_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The address Trino's client protocol is served on, when it is on.
    pub fn trino_protocol_addr(&self) -> Option<SocketAddr> {
        self.trino_protocol_addr
    }

    /// The address the admin HTTP server listens on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// The router, for tests and embedding.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// The accelerated datasets, when any are configured.
    pub fn datasets(&self) -> Option<Datasets> {
        self.datasets.clone()
    }

    /// The Trino client, for tests and embedding.
    pub fn trino(&self) -> TrinoClient {
        self.trino.clone()
    }

    /// Serves until `shutdown` completes, then drains: `/ready` turns 503,
    /// listeners stop accepting, parked statements are cancelled, open
    /// streams get the grace period and are then stopped, and every
    /// background task is waited for.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let token = self.shutdown.clone();
        let trigger = token.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });
        let service = CallMetrics::new(AuthGate::new(
            FlightServiceServer::new(FlightdeckService::new(Arc::clone(&self.state)))
                .max_decoding_message_size(MAX_GRPC_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_GRPC_MESSAGE_BYTES),
            self.state.auth().clone(),
        ));
        tracing::info!(addr = %self.flight_addr, "Flight SQL listening");
        tracing::info!(addr = %self.admin_addr, "admin HTTP listening");
        self.tasks.spawn(self.router.registry().clone().janitor(token.clone()));
        if let Some(d) = &self.datasets {
            d.start(&token, &self.tasks);
        }
        self.tasks.spawn(admin::probe_trino(self.trino.clone(), std::time::Duration::from_secs(10), token.clone()));
        // The admin server outlives the drain, answering /ready with 503.
        let stop_admin = CancellationToken::new();
        let (admin_listener, admin_router) = (self.admin_listener, admin::router(self.admin));
        let admin = tokio::spawn({
            let stop = stop_admin.clone().cancelled_owned();
            async move { axum::serve(admin_listener, admin_router).with_graceful_shutdown(stop).await }
        });
        let trino_protocol = self.trino_protocol.map(|(listener, service)| {
            tracing::info!(addr = ?self.trino_protocol_addr, tls = self.tls.is_some(), "Trino protocol listening");
            tokio::spawn(service.serve(listener, self.tls.clone(), token.clone()))
        });
        let plain = self.plain_listener.map(|l| {
            let (service, stop) = (service.clone(), token.clone().cancelled_owned());
            tokio::spawn(async move {
                tonic::transport::Server::builder()
                    .add_service(service)
                    .serve_with_incoming_shutdown(TcpIncoming::from(l).with_nodelay(Some(true)), stop)
                    .await
            })
        });
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &self.tls {
            let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
            builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
        }
        let serve = builder
            .add_service(service)
            .serve_with_incoming_shutdown(TcpIncoming::from(self.listener).with_nodelay(Some(true)), token.cancelled());
        let registry = self.router.registry().clone();
        let grace = self.shutdown_grace;
        let deadline = async {
            token.cancelled().await;
            let parked = registry.clear();
            tracing::info!(parked, ?grace, "shutting down: parked queries cancelled, draining open streams");
            tokio::time::sleep(grace).await;
        };
        let served = tokio::select! {
            served = serve => served,
            _ = deadline => {
                tracing::warn!("open streams outlived the shutdown grace period: stopping them");
                Ok(())
            }
        };
        // Streams still open stop here, each cancelling its query.
        self.stop_streams.cancel();
        if let Some(p) = plain
            && tokio::time::timeout(grace, &mut Box::pin(p)).await.is_err()
        {
            tracing::warn!("plain-gRPC streams outlived the shutdown grace period: dropping them");
        }
        token.cancel();
        if let Some(t) = trino_protocol
            && let Ok(Ok(Err(e))) = tokio::time::timeout(grace, t).await
        {
            tracing::warn!(error = %e, "Trino protocol server failed");
        }
        registry.clear();
        self.tasks.close();
        if tokio::time::timeout(std::time::Duration::from_secs(5), self.tasks.wait()).await.is_err() {
            tracing::warn!(left = self.tasks.len(), "background tasks did not stop in time");
        }
        self.trino.cancels_settled(std::time::Duration::from_secs(3)).await;
        stop_admin.cancel();
        if let Ok(Err(e)) = admin.await {
            tracing::warn!(error = %e, "admin server failed");
        }
        served
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("shutting down");
}
