use std::time::Duration;

use arrow_flight::Ticket;
use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use futures::StreamExt;
use prost::Message;
use tonic::Code;

use crate::common::*;

#[tokio::test]
async fn syntax_error_is_invalid_argument_with_trinos_message() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let e = c.info("SELEC 1").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(e.message().contains("SYNTAX_ERROR"), "{e}");
    assert!(e.message().contains("mismatched input 'SELEC'"), "{e}");
    assert_eq!(e.metadata().get("x-trino-error-name").unwrap(), "SYNTAX_ERROR");
    assert_eq!(e.metadata().get("x-trino-error-type").unwrap(), "USER_ERROR");
    assert_eq!(e.metadata().get("x-trino-error-location").unwrap(), "1:1");
    // Prepare reports the same error.
    assert_eq!(c.prepare("SELEC 1").await.unwrap_err().code(), Code::InvalidArgument);
}

#[tokio::test]
async fn user_name_that_cannot_reach_trino_is_invalid_argument() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "bad\nuser:");
    c.authorization = Some(format!("Basic {basic}"));
    let e = c.info("SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
}

#[tokio::test]
async fn unknown_table_is_not_found() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let e = c.info("SELECT * FROM tpch.tiny.no_such_table").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    assert!(e.message().contains("TABLE_NOT_FOUND"), "{e}");
    assert!(e.message().contains("no_such_table"), "{e}");
}

#[tokio::test]
async fn cancelled_stream_cancels_the_trino_query() {
    let server = TestServer::uncached().await;
    let mut c = server.client().await;
    let marker = format!("cancel_marker_{}", rand_suffix());
    let sql = format!("SELECT l.*, '{marker}' AS m FROM tpch.sf1.lineitem l");
    let info = c.info(&sql).await.unwrap();
    let mut stream = c.stream(info.endpoint[0].ticket.clone().unwrap()).await.unwrap();
    assert!(stream.next().await.unwrap().unwrap().num_rows() > 0);
    drop(stream);
    let check = format!(
        "SELECT state, error_code FROM system.runtime.queries WHERE query LIKE '%{marker}%' AND query NOT LIKE '%system.runtime.queries%'"
    );
    let trino = trino_direct();
    let mut last = String::new();
    for _ in 0..50 {
        let (_, batches) = trino.execute(&session("check"), &check).await.unwrap();
        last = arrow::util::pretty::pretty_format_batches(&batches).unwrap().to_string();
        if last.contains("FAILED") && last.contains("USER_CANCELED") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("query was not cancelled in Trino:\n{last}");
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[tokio::test]
async fn trino_down_is_unavailable_and_recovers() {
    let target: std::net::SocketAddr = trino_url().trim_start_matches("http://").parse().unwrap();
    let proxy = SwitchProxy::start(target).await;
    let mut config = flightdeck::Config::for_trino(&format!("http://{}", proxy.addr));
    config.cache.enabled = false;
    let server = TestServer::with_config(config).await;
    let mut c = server.client().await;
    assert_eq!(rows(&c.query("SELECT 1").await.unwrap().2), 1);
    proxy.switch_off();
    let e = c.info("SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert!(e.message().contains("unavailable"), "{e}");
    assert!(e.message().contains(&proxy.addr.to_string()), "names the Trino address: {e}");
    proxy.switch_on();
    // Same client, same server: it works again once Trino is back.
    assert_eq!(rows(&c.query("SELECT 1").await.unwrap().2), 1);
}

fn password_config(dir: &std::path::Path) -> flightdeck::Config {
    flightdeck::Config::resolve(&password_args(users_file(dir, &[("alice", "s3cret")]))).unwrap()
}

#[tokio::test]
async fn credentials_are_checked_on_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::with_config(password_config(dir.path())).await;
    let mut c = server.client().await;
    assert_eq!(c.handshake("alice", "wrong").await.unwrap_err().code(), Code::Unauthenticated);
    assert_eq!(c.handshake("mallory", "s3cret").await.unwrap_err().code(), Code::Unauthenticated);
    // No token: refused.
    assert_eq!(c.info("SELECT 1").await.unwrap_err().code(), Code::Unauthenticated);
    let token = c.handshake("alice", "s3cret").await.unwrap();
    let info = c.info("SELECT current_user").await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    // DoGet checks the token too.
    let mut anonymous = server.client().await;
    assert_eq!(anonymous.fetch(ticket.clone()).await.unwrap_err().code(), Code::Unauthenticated);
    anonymous.authorization = Some("Bearer not-a-token".into());
    assert_eq!(anonymous.fetch(ticket.clone()).await.unwrap_err().code(), Code::Unauthenticated);
    let (_, batches) = c.fetch(ticket).await.unwrap();
    assert_eq!(
        arrow::array::AsArray::as_string::<i32>(batches[0].column(0)).value(0),
        "alice",
        "runs as the client's user"
    );
    // Handshake also accepts the bearer token (the JDBC driver does this).
    let mut again = server.client().await;
    again.authorization = Some(format!("Bearer {token}"));
    let mut req = tonic::Request::new(futures::stream::iter([arrow_flight::HandshakeRequest::default()]));
    req.metadata_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    assert!(again.inner.handshake(req).await.is_ok());
}

#[tokio::test]
async fn forged_and_foreign_tickets_are_rejected() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let info = c.info("SELECT 1").await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let any = arrow_flight::sql::Any::decode(ticket.ticket.clone()).unwrap();
    let tq: TicketStatementQuery = any.unpack().unwrap().unwrap();
    // Alter the SQL inside the signed envelope.
    let mut env = flightdeck::flight::proto::Signed::decode(tq.statement_handle.clone()).unwrap();
    let mut inner = flightdeck::flight::proto::StatementTicket::decode(env.payload.as_slice()).unwrap();
    inner.sql = "SELECT * FROM tpch.tiny.customer".into();
    env.payload = inner.encode_to_vec();
    let forged = TicketStatementQuery { statement_handle: env.encode_to_vec().into() };
    let e = c.fetch(Ticket::new(forged.as_any().encode_to_vec())).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e}");
    // Garbage in the handle.
    let junk = TicketStatementQuery { statement_handle: b"junk".to_vec().into() };
    assert_eq!(c.fetch(Ticket::new(junk.as_any().encode_to_vec())).await.unwrap_err().code(), Code::InvalidArgument);
    // Not even an Any.
    assert_ne!(c.fetch(Ticket::new(b"\xff\xff".to_vec())).await.unwrap_err().code(), Code::Ok);
    // Another user's ticket.
    let mut bob = server.client().await;
    bob.authorization =
        Some(format!("Basic {}", base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "bob:")));
    assert_eq!(bob.fetch(ticket.clone()).await.unwrap_err().code(), Code::PermissionDenied);
    // The genuine ticket still works.
    assert_eq!(rows(&c.fetch(ticket).await.unwrap().1), 1);
}

#[tokio::test]
async fn closed_prepared_statement_is_refused() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let prepared = c.prepare("SELECT 1").await.unwrap();
    c.prepared_info(prepared.prepared_statement_handle.clone()).await.unwrap();
    c.close_prepared(prepared.prepared_statement_handle.clone()).await.unwrap();
    let e = c.prepared_info(prepared.prepared_statement_handle.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e}");
    assert!(e.message().contains("closed"), "{e}");
}

#[tokio::test]
async fn forged_prepared_handle_is_rejected() {
    let server = TestServer::start().await;
    let mut c = server.client().await;
    let e = c.prepared_info(b"not a handle".to_vec().into()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = c.close_prepared(b"not a handle".to_vec().into()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
}

#[tokio::test]
async fn busy_gateway_answers_are_retried() {
    let target: std::net::SocketAddr = trino_url().trim_start_matches("http://").parse().unwrap();
    let gateway = FlakyGateway::start(target, 3).await;
    let server = TestServer::with_config(flightdeck::Config::for_trino(&format!("http://{}", gateway.addr))).await;
    let mut c = server.client().await;
    let (_, _, batches) = c.query("SELECT 42").await.unwrap();
    assert_eq!(rows(&batches), 1);
    assert_eq!(gateway.rejected.load(std::sync::atomic::Ordering::SeqCst), 3, "three 503s were retried");
}

#[tokio::test]
async fn gateway_that_stays_busy_gives_up_as_unavailable() {
    let target: std::net::SocketAddr = trino_url().trim_start_matches("http://").parse().unwrap();
    let gateway = FlakyGateway::start(target, usize::MAX).await;
    let mut config = flightdeck::Config::for_trino(&format!("http://{}", gateway.addr));
    config.trino.client.retry_budget = Duration::from_millis(500);
    let server = TestServer::with_config(config).await;
    let e = server.client().await.info("SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    assert!(e.message().contains("503"), "{e}");
    assert!(gateway.rejected.load(std::sync::atomic::Ordering::SeqCst) > 1, "it retried before giving up");
}
