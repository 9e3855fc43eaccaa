//! HTTPS through the Client: custom CA, certificate errors, Unix sockets.

mod common;

use common::{get, get_text, within, PATIENCE};
use undici_dispatcher::connectors::ConnectOptions;
use undici_dispatcher::{Client, DispatcherExt};
use undici_test_support::{handlers, TestPki, TestServer};

#[tokio::test]
async fn https_with_a_custom_ca() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::tls(handlers::hello, pki.server_config(&cert, &[b"http/1.1"])).await;
    let client = Client::builder()
        .connect(ConnectOptions::new().ca(pki.ca_pem()))
        .build(server.url_with_host("localhost"))
        .unwrap();
    assert_eq!(get_text(&client, "/").await.unwrap(), "hello world");
    assert_eq!(server.sni_names(), vec![Some("localhost".to_owned())]);
}

#[tokio::test]
async fn an_unknown_issuer_fails_to_connect_with_a_tls_code() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::tls(handlers::hello, pki.server_config(&cert, &[b"http/1.1"])).await;
    let client = Client::builder()
        .connect(ConnectOptions::new().ca(TestPki::new().ca_pem()))
        .build(server.url_with_host("localhost"))
        .unwrap();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    assert!(err.is_connect());
    assert_eq!(err.code(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "{err:?}");
}

#[tokio::test]
async fn a_unix_socket_origin() {
    let server = TestServer::unix(handlers::echo).await;
    let client = Client::builder()
        .socket_path(server.socket_path().unwrap())
        .build("http://localhost")
        .unwrap();
    let response = client.request(get("/health")).await.unwrap();
    assert_eq!(response.headers()["x-path"], "/health");
    assert_eq!(response.headers()["x-req-host"], "localhost");
}
