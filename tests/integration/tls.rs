use arrow_flight::flight_service_client::FlightServiceClient;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::common::*;

#[tokio::test]
async fn flight_over_tls_and_plain_on_loopback() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_pem, key_pem) = (cert.cert.pem(), cert.signing_key.serialize_pem());
    let mut config = flightdeck::Config::for_trino(&trino_url());
    config.flight.tls =
        Some(flightdeck::config::TlsFiles { cert_pem: cert_pem.clone().into_bytes(), key_pem: key_pem.into_bytes() });
    config.flight.plain_listen = Some("127.0.0.1:0".parse().unwrap());
    let app = flightdeck::Application::build(config).await.unwrap();
    let (addr, plain) = (app.flight_addr(), app.plain_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));

    let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&cert_pem)).domain_name("localhost");
    let channel =
        Channel::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap().connect().await.unwrap();
    let mut c = Client { inner: FlightServiceClient::new(channel), authorization: None, cookies: Default::default() };
    assert_eq!(rows(&c.query("SELECT 1").await.unwrap().2), 1);

    // Plain gRPC to the TLS port fails; the loopback plain listener works.
    let mut plain_to_tls = Client::connect(addr).await;
    assert!(plain_to_tls.info("SELECT 1").await.is_err());
    let mut local = Client::connect(plain).await;
    assert_eq!(rows(&local.query("SELECT 2").await.unwrap().2), 1);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}

#[test]
fn tls_needs_both_files_and_plain_needs_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    std::fs::write(&cert, "x").unwrap();
    let args = flightdeck::config::ServeArgs {
        flight: flightdeck::config::FlightArgs {
            tls_cert: Some(cert),
            plain_listen: Some("0.0.0.0:5000".parse().unwrap()),
            ..Default::default()
        },
        ..Default::default()
    };
    let errors = flightdeck::Config::resolve(&args).unwrap_err().join("\n");
    assert!(errors.contains("both a certificate and a key"), "{errors}");
    assert!(errors.contains("not a loopback address"), "{errors}");
}
