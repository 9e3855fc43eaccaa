//! Unix domain sockets (`socket_path`), plain and with TLS on top.
#![cfg(unix)]

mod common;

use std::time::Duration;

use undici_connectors::{build_connector, ConnectOptions, Destination, Scheme};
use undici_test_support::certs::TestPki;
use undici_test_support::{handlers, TestServer};

#[tokio::test]
async fn a_request_goes_over_the_unix_socket() {
    let server = TestServer::unix(handlers::echo).await;
    let path = server.socket_path().unwrap().to_owned();
    let connector = build_connector(ConnectOptions::new().socket_path(&path)).unwrap();

    // The host only names the server (the Host header); the socket path is
    // where the bytes go.
    let mut connection = connector
        .connect(Destination::new(Scheme::Http, "localhost", 80))
        .await
        .unwrap();

    let info = connection.info();
    assert_eq!(info.socket_path(), Some(path.as_path()));
    assert_eq!(info.remote_addr(), None);
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.status, 200);
    assert!(
        response.head.contains("x-req-host: localhost"),
        "{}",
        response.head
    );
    assert_eq!(server.requests_served(), 1);
}

#[tokio::test]
async fn a_missing_socket_is_enoent() {
    let dir = std::env::temp_dir().join(format!("undici-connectors-{}", std::process::id()));
    let path = dir.join("missing.sock");
    let connector = build_connector(ConnectOptions::new().socket_path(&path)).unwrap();

    let err = connector
        .connect(Destination::new(Scheme::Http, "localhost", 80))
        .await
        .unwrap_err();

    assert_eq!(err.code(), "ENOENT");
    assert!(err.to_string().contains("missing.sock"), "{err}");
}

#[tokio::test]
async fn tls_runs_over_a_unix_socket() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::builder()
        .http1_only()
        .unix()
        .tls(pki.server_config(&cert, &[b"http/1.1"]))
        .serve(handlers::hello)
        .await;
    let options = ConnectOptions::new()
        .socket_path(server.socket_path().unwrap())
        .ca(pki.ca_pem())
        .timeout(Duration::from_secs(5));
    let connector = build_connector(options).unwrap();

    let mut connection = connector
        .connect(Destination::new(Scheme::Https, "localhost", 443))
        .await
        .unwrap();

    assert_eq!(connection.info().tls().unwrap().server_name(), "localhost");
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.body, "hello world");
    assert_eq!(server.sni_names(), vec![Some("localhost".to_owned())]);
}
