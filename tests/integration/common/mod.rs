//! Shared fixtures: the local Trino, an in-process Flightdeck, a Flight
//! client that keeps gRPC status codes, and a switchable TCP proxy.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{
    ActionCreatePreparedStatementRequest, ActionCreatePreparedStatementResult, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementQuery, CommandStatementUpdate, DoPutUpdateResult, ProstMessageExt,
};
use arrow_flight::{Action, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, Ticket};
use base64::Engine;
use flightdeck::app::Application;
use flightdeck::config::Config;
use flightdeck::router::Router;
use flightdeck::trino::{Session, TrinoClient, TrinoConfig};
use futures::{StreamExt, TryStreamExt};
use prost::Message;
use tokio::net::{TcpSocket, TcpStream};
use tokio::task::JoinSet;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// Starts the project's local Trino once per test binary and returns its URL.
pub fn trino_url() -> String {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let port = std::env::var("TRINO_PORT").unwrap_or_else(|_| "8080".into());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/trino.sh");
        let status = std::process::Command::new(script).arg("start").status().expect("run scripts/trino.sh");
        assert!(status.success(), "scripts/trino.sh start failed");
        format!("http://127.0.0.1:{port}")
    })
    .clone()
}

/// A Trino client straight to Trino, for checks that bypass Flightdeck.
pub fn trino_direct() -> TrinoClient {
    TrinoClient::new(&TrinoConfig::new(trino_url().parse().unwrap())).unwrap()
}

pub fn session(user: &str) -> Session {
    Session { user: user.into(), ..Default::default() }
}

/// The default test configuration with the result cache off.
pub fn uncached_config() -> Config {
    let mut c = Config::for_trino(&trino_url());
    c.cache.enabled = false;
    c
}

/// An in-process Flightdeck on a free loopback port.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// Trino's client protocol.
    pub trino_protocol: Option<SocketAddr>,
    pub router: Router,
    pub trino: TrinoClient,
    pub datasets: Option<flightdeck::accel::Datasets>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::with_config(Config::for_trino(&trino_url())).await
    }

    pub async fn with_config(config: Config) -> TestServer {
        let app = Application::build(config).await.expect("build flightdeck");
        let addr = app.flight_addr();
        let admin = app.admin_addr();
        let trino_protocol = app.trino_protocol_addr();
        let (router, trino, datasets) = (app.router(), app.trino(), app.datasets());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = rx.await;
            })
            .await
            .expect("flight server");
        });
        TestServer { addr, admin, trino_protocol, router, trino, datasets, shutdown: Some(tx), task: Some(task) }
    }

    /// A server with `datasets` accelerated (snapshots in a temporary
    /// folder), once every one has loaded.
    pub async fn with_datasets(datasets: Vec<flightdeck::accel::DatasetConfig>) -> TestServer {
        Self::with_datasets_in(Config::for_trino(&trino_url()), datasets).await
    }

    /// [`TestServer::with_datasets`], with the rest of `config`.
    pub async fn with_datasets_in(mut config: Config, datasets: Vec<flightdeck::accel::DatasetConfig>) -> TestServer {
        config.accel.datasets = datasets;
        config.accel.dir = Some(tempfile::tempdir().unwrap().keep());
        let server = TestServer::with_config(config).await;
        let loaded = server.datasets.clone().expect("datasets");
        for _ in 0..600 {
            if loaded.all_loaded() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(loaded.all_loaded(), "{:?}", loaded.list());
        server
    }

    /// A server with the result cache off: every query goes to Trino.
    pub async fn uncached() -> TestServer {
        Self::with_config(uncached_config()).await
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    pub async fn stop(mut self) {
        let _ = self.shutdown.take().map(|s| s.send(()));
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), t).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// A Flight SQL client that surfaces gRPC statuses unchanged.
#[derive(Clone)]
pub struct Client {
    pub inner: FlightServiceClient<Channel>,
    pub authorization: Option<String>,
    /// Session cookies by name, sent back as a cookie-aware client would.
    pub cookies: std::collections::BTreeMap<String, String>,
}

fn cmd_descriptor(cmd: impl ProstMessageExt) -> FlightDescriptor {
    FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec())
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.expect("connect");
        Client {
            inner: FlightServiceClient::new(channel).max_decoding_message_size(64 << 20),
            authorization: None,
            cookies: Default::default(),
        }
    }

    pub fn request<T>(&self, msg: T) -> Request<T> {
        let mut r = Request::new(msg);
        if let Some(a) = &self.authorization {
            r.metadata_mut().insert("authorization", a.parse().unwrap());
        }
        if !self.cookies.is_empty() {
            let line: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            r.metadata_mut().insert("cookie", line.join("; ").parse().unwrap());
        }
        r
    }

    /// Keeps the cookies a response sets (an empty value deletes one).
    pub fn keep_cookie(&mut self, md: &tonic::metadata::MetadataMap) {
        for v in md.get_all("set-cookie") {
            let pair = v.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    /// Runs an action with a plain protobuf body; returns the result bodies.
    pub async fn action(&mut self, name: &str, body: Vec<u8>) -> Result<Vec<bytes::Bytes>, Status> {
        let action = Action { r#type: name.into(), body: body.into() };
        let resp = self.inner.do_action(self.request(action)).await?;
        self.keep_cookie(resp.metadata());
        let mut s = resp.into_inner();
        let mut out = Vec::new();
        while let Some(r) = s.message().await? {
            out.push(r.body);
        }
        Ok(out)
    }

    /// Handshake with Basic credentials; keeps and returns the bearer token.
    pub async fn handshake(&mut self, user: &str, password: &str) -> Result<String, Status> {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut req = Request::new(futures::stream::iter([HandshakeRequest::default()]));
        req.metadata_mut().insert("authorization", format!("Basic {basic}").parse().unwrap());
        let resp = self.inner.handshake(req).await?;
        let header =
            resp.metadata().get("authorization").expect("authorization response header").to_str().unwrap().to_string();
        let mut stream = resp.into_inner();
        while stream.message().await?.is_some() {}
        self.authorization = Some(header.clone());
        Ok(header.trim_start_matches("Bearer ").to_string())
    }

    pub async fn info(&mut self, sql: &str) -> Result<FlightInfo, Status> {
        Ok(self.info_cached(sql, None).await?.0)
    }

    /// GetFlightInfo with an optional `x-flightdeck-cache` directive;
    /// returns the info and the `x-flightdeck-cache` answer.
    pub async fn info_cached(&mut self, sql: &str, directive: Option<&str>) -> Result<(FlightInfo, String), Status> {
        let d = cmd_descriptor(CommandStatementQuery { query: sql.into(), transaction_id: None });
        let mut req = self.request(d);
        if let Some(v) = directive {
            req.metadata_mut().insert("x-flightdeck-cache", v.parse().unwrap());
        }
        let resp = self.inner.get_flight_info(req).await?;
        self.keep_cookie(resp.metadata());
        let outcome =
            resp.metadata().get("x-flightdeck-cache").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        Ok((resp.into_inner(), outcome))
    }

    /// GetFlightInfo + DoGet, returning DoGet's `x-flightdeck-cache` answer too.
    pub async fn query_cached(
        &mut self,
        sql: &str,
        directive: Option<&str>,
    ) -> Result<(String, Vec<RecordBatch>), Status> {
        let (info, _) = self.info_cached(sql, directive).await?;
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let resp = self.inner.do_get(self.request(ticket)).await?;
        let outcome =
            resp.metadata().get("x-flightdeck-cache").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let s = resp.into_inner();
        let mut stream = FlightRecordBatchStream::new_from_flight_data(s.map_err(|e| FlightError::Tonic(Box::new(e))));
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b.map_err(status_of)?);
        }
        Ok((outcome, batches))
    }

    /// GetFlightInfo + DoGet (read to its end); the `x-flightdeck-route`
    /// and `x-flightdeck-cache` answers of each.
    pub async fn routes(&mut self, sql: &str) -> Result<[(String, String); 2], Status> {
        let answer = |md: &tonic::metadata::MetadataMap| {
            let get = |k: &str| md.get(k).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
            (get("x-flightdeck-route"), get("x-flightdeck-cache"))
        };
        let d = cmd_descriptor(CommandStatementQuery { query: sql.into(), transaction_id: None });
        let resp = self.inner.get_flight_info(self.request(d)).await?;
        let info = answer(resp.metadata());
        let ticket = resp.into_inner().endpoint[0].ticket.clone().expect("ticket");
        let resp = self.inner.do_get(self.request(ticket)).await?;
        let get = answer(resp.metadata());
        let mut s = resp.into_inner();
        while let Some(m) = s.next().await {
            m?;
        }
        Ok([info, get])
    }

    /// GetFlightInfo + DoGet, bypassing the result cache: the
    /// `x-flightdeck-route` of DoGet, the schema and the rows.
    pub async fn routed(&mut self, sql: &str) -> Result<(String, SchemaRef, Vec<RecordBatch>), Status> {
        let (info, _) = self.info_cached(sql, Some("no-cache")).await?;
        self.fetch_routed(info.endpoint[0].ticket.clone().expect("ticket")).await
    }

    /// Executes a prepared statement: the `x-flightdeck-route` of DoGet and
    /// the rows.
    pub async fn prepared_routed(&mut self, handle: bytes::Bytes) -> Result<(String, Vec<RecordBatch>), Status> {
        let info = self.prepared_info(handle).await?;
        let (route, _, batches) = self.fetch_routed(info.endpoint[0].ticket.clone().expect("ticket")).await?;
        Ok((route, batches))
    }

    /// DoGet of `ticket`: its `x-flightdeck-route`, the schema and the rows.
    pub async fn fetch_routed(&mut self, ticket: Ticket) -> Result<(String, SchemaRef, Vec<RecordBatch>), Status> {
        let resp = self.inner.do_get(self.request(ticket)).await?;
        let route =
            resp.metadata().get("x-flightdeck-route").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let s = resp.into_inner();
        let mut stream = FlightRecordBatchStream::new_from_flight_data(s.map_err(|e| FlightError::Tonic(Box::new(e))));
        let mut batches = Vec::new();
        while let Some(b) = stream.next().await {
            batches.push(b.map_err(status_of)?);
        }
        let schema = stream.schema().cloned().expect("stream carried a schema");
        Ok((route, schema, batches))
    }

    /// A client that sends Basic credentials of `user` on every call (auth `none`).
    pub fn as_user(&self, user: &str) -> Client {
        let mut c = self.clone();
        c.authorization =
            Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:"))));
        c
    }

    pub async fn prepared_info(&mut self, handle: bytes::Bytes) -> Result<FlightInfo, Status> {
        let d = cmd_descriptor(CommandPreparedStatementQuery { prepared_statement_handle: handle });
        Ok(self.inner.get_flight_info(self.request(d)).await?.into_inner())
    }

    /// DoGet as a stream of batches; errors carry the server's status.
    pub async fn stream(&mut self, ticket: Ticket) -> Result<FlightRecordBatchStream, Status> {
        let s = self.inner.do_get(self.request(ticket)).await?.into_inner();
        Ok(FlightRecordBatchStream::new_from_flight_data(s.map_err(|e| FlightError::Tonic(Box::new(e)))))
    }

    /// DoGet to the end: the stream's schema and its batches.
    pub async fn fetch(&mut self, ticket: Ticket) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        let mut s = self.stream(ticket).await?;
        let mut batches = Vec::new();
        while let Some(b) = s.next().await {
            batches.push(b.map_err(status_of)?);
        }
        let schema = s.schema().cloned().expect("stream carried a schema");
        Ok((schema, batches))
    }

    /// GetFlightInfo then DoGet of its one endpoint.
    pub async fn query(&mut self, sql: &str) -> Result<(FlightInfo, SchemaRef, Vec<RecordBatch>), Status> {
        let info = self.info(sql).await?;
        assert_eq!(info.endpoint.len(), 1, "exactly one endpoint");
        assert!(info.endpoint[0].location.is_empty(), "endpoint has no location");
        let ticket = info.endpoint[0].ticket.clone().expect("ticket");
        let (schema, batches) = self.fetch(ticket).await?;
        Ok((info, schema, batches))
    }

    pub async fn prepare(&mut self, sql: &str) -> Result<ActionCreatePreparedStatementResult, Status> {
        let body = ActionCreatePreparedStatementRequest { query: sql.into(), transaction_id: None };
        let action = Action { r#type: "CreatePreparedStatement".into(), body: body.as_any().encode_to_vec().into() };
        let mut s = self.inner.do_action(self.request(action)).await?.into_inner();
        let r = s.message().await?.expect("one result");
        let any = arrow_flight::sql::Any::decode(r.body).unwrap();
        Ok(any.unpack().unwrap().expect("ActionCreatePreparedStatementResult"))
    }

    /// Binds one row of parameters to a prepared statement; returns the new handle.
    pub async fn bind(&mut self, handle: bytes::Bytes, batch: RecordBatch) -> Result<bytes::Bytes, Status> {
        use arrow_flight::sql::DoPutPreparedStatementResult;
        let cmd = CommandPreparedStatementQuery { prepared_statement_handle: handle };
        let descriptor = FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
        let data: Vec<FlightData> = arrow_flight::encode::FlightDataEncoderBuilder::new()
            .with_flight_descriptor(Some(descriptor))
            .build(futures::stream::iter([Ok(batch)]))
            .try_collect()
            .await
            .unwrap();
        let mut s = self.inner.do_put(self.request(futures::stream::iter(data))).await?.into_inner();
        let r = s.message().await?.expect("put result");
        let result = DoPutPreparedStatementResult::decode(r.app_metadata).unwrap();
        Ok(result.prepared_statement_handle.unwrap())
    }

    pub async fn close_prepared(&mut self, handle: bytes::Bytes) -> Result<(), Status> {
        let body = arrow_flight::sql::ActionClosePreparedStatementRequest { prepared_statement_handle: handle };
        let action = Action { r#type: "ClosePreparedStatement".into(), body: body.as_any().encode_to_vec().into() };
        let mut s = self.inner.do_action(self.request(action)).await?.into_inner();
        while s.message().await?.is_some() {}
        Ok(())
    }

    async fn put_update(&mut self, descriptor: FlightDescriptor) -> Result<i64, Status> {
        let data = FlightData { flight_descriptor: Some(descriptor), ..Default::default() };
        let mut s = self.inner.do_put(self.request(futures::stream::iter([data]))).await?.into_inner();
        let r = s.message().await?.expect("one put result");
        Ok(DoPutUpdateResult::decode(r.app_metadata).unwrap().record_count)
    }

    pub async fn update(&mut self, sql: &str) -> Result<i64, Status> {
        self.put_update(cmd_descriptor(CommandStatementUpdate { query: sql.into(), transaction_id: None })).await
    }

    pub async fn prepared_update(&mut self, handle: bytes::Bytes) -> Result<i64, Status> {
        self.put_update(cmd_descriptor(CommandPreparedStatementUpdate { prepared_statement_handle: handle })).await
    }
}

pub fn status_of(e: FlightError) -> Status {
    match e {
        FlightError::Tonic(s) => *s,
        other => Status::internal(other.to_string()),
    }
}

/// How many queries Trino has seen whose text contains `marker`.
pub async fn trino_queries_containing(marker: &str) -> usize {
    let sql = format!(
        "SELECT count(*) FROM system.runtime.queries WHERE query LIKE '%{marker}%' AND query NOT LIKE '%system.runtime.queries%'"
    );
    let (_, b) = trino_direct().execute(&session("check"), &sql).await.unwrap();
    b[0].column(0).as_any().downcast_ref::<arrow::array::Int64Array>().unwrap().value(0) as usize
}

/// A marker unique to this test run, to find its queries in Trino.
pub fn marker(name: &str) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("{name}_{n}")
}

pub fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

/// A TCP proxy in front of Trino that can be switched off (connections
/// refused, open ones cut) and on again at the same address.
pub struct SwitchProxy {
    pub addr: SocketAddr,
    target: SocketAddr,
    on: Arc<AtomicBool>,
    tasks: Arc<Mutex<JoinSet<()>>>,
}

impl SwitchProxy {
    pub async fn start(target: SocketAddr) -> SwitchProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let p = SwitchProxy {
            addr,
            target,
            on: Arc::new(AtomicBool::new(false)),
            tasks: Arc::new(Mutex::new(JoinSet::new())),
        };
        p.switch_on();
        p
    }

    pub fn switch_on(&self) {
        if self.on.swap(true, Ordering::SeqCst) {
            return;
        }
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).unwrap();
        let listener = socket.listen(128).unwrap();
        let (target, tasks) = (self.target, Arc::clone(&self.tasks));
        self.tasks.lock().unwrap().spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                tasks.lock().unwrap().spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }

    pub fn switch_off(&self) {
        self.on.store(false, Ordering::SeqCst);
        // Dropping the listener task refuses new connections; aborting the
        // rest cuts pooled ones, as a stopped Trino would.
        self.tasks.lock().unwrap().abort_all();
    }
}

/// A gateway in front of Trino that answers its first `rejects` connections
/// with HTTP 503 (as a load balancer does while Trino restarts), then
/// forwards everything. `rejects = usize::MAX` never recovers.
pub struct FlakyGateway {
    pub addr: SocketAddr,
    pub rejected: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FlakyGateway {
    pub async fn start(target: SocketAddr, rejects: usize) -> FlakyGateway {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let rejected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&rejected);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    if counter.load(Ordering::SeqCst) < rejects {
                        // Read the request head, answer 503 and close.
                        let mut buf = Vec::new();
                        let mut chunk = [0u8; 4096];
                        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                            match inbound.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        counter.fetch_add(1, Ordering::SeqCst);
                        let _ = inbound
                            .write_all(
                                b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                            )
                            .await;
                        return;
                    }
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        FlakyGateway { addr, rejected, task }
    }
}

impl Drop for FlakyGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A gateway that passes the first statement submission (`POST`) it gets on
/// to Trino and then answers the client `status` (as a load balancer does
/// when its upstream connection drops after the request went out); every
/// other request is forwarded. A client that retries that submission
/// submits it twice.
pub struct LosingGateway {
    pub addr: SocketAddr,
    /// Statement submissions seen.
    pub posts: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl LosingGateway {
    pub async fn start(target: SocketAddr, status: &'static str) -> LosingGateway {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let first = Arc::new(AtomicBool::new(true));
        let posts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = Arc::clone(&posts);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                let (first, counter) = (Arc::clone(&first), Arc::clone(&counter));
                tokio::spawn(async move {
                    // One whole request: its head, then its body.
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                        match inbound.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let Ok(mut outbound) = TcpStream::connect(target).await else { return };
                    if head.starts_with("post ") {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    if !(head.starts_with("post ") && first.swap(false, Ordering::SeqCst)) {
                        let _ = outbound.write_all(&buf).await;
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        return;
                    }
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        match inbound.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let _ = outbound.write_all(&buf).await;
                    let _ = outbound.read(&mut chunk).await;
                    let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                    let _ = inbound.write_all(reply.as_bytes()).await;
                });
            }
        });
        LosingGateway { addr, posts, task }
    }
}

impl Drop for LosingGateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A users file of `(user, password)` pairs in `dir`.
pub fn users_file(dir: &std::path::Path, users: &[(&str, &str)]) -> std::path::PathBuf {
    let path = dir.join("users");
    let text: String = users.iter().map(|(u, p)| format!("{u}:{}\n", bcrypt::hash(p, 4).unwrap())).collect();
    std::fs::write(&path, text).unwrap();
    path
}

/// Options of a server on a free loopback port that checks passwords
/// against `users`.
pub fn password_args(users: std::path::PathBuf) -> flightdeck::config::ServeArgs {
    flightdeck::config::ServeArgs {
        flight: flightdeck::config::FlightArgs { listen: Some("127.0.0.1:0".parse().unwrap()), ..Default::default() },
        trino: flightdeck::config::TrinoArgs { url: Some(trino_url().parse().unwrap()), ..Default::default() },
        auth: flightdeck::config::AuthArgs {
            mode: Some(flightdeck::config::ClientAuth::Password),
            users_file: Some(users),
            ..Default::default()
        },
        trino_protocol: flightdeck::config::TrinoProtocolArgs { listen: Some("127.0.0.1:0".into()) },
        ..Default::default()
    }
}
