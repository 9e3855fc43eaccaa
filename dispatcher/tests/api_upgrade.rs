//! `DispatcherExt::upgrade`: a 101 hands the connection over.

mod common;

use common::{get, within, PATIENCE};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use undici_dispatcher::{Body, Client, DispatcherExt, RequestOptions};
use undici_test_support::{body, RawRequest, RawServer, TestServer};

/// Answers the first request with a 101 for the protocol it asked for,
/// then echoes until the client's FIN. Reports each request.
async fn switching_server() -> (RawServer, mpsc::UnboundedReceiver<RawRequest>) {
    let (requests_tx, requests) = mpsc::unbounded_channel();
    let server = RawServer::new(move |mut conn| {
        let requests_tx = requests_tx.clone();
        async move {
            let Ok(request) = conn.read_request().await else {
                return;
            };
            let protocol = request.header("upgrade").unwrap_or("none").to_owned();
            let _ = requests_tx.send(request);
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: {protocol}\r\n\r\n"
            );
            if conn.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            let data = conn.read_to_end().await.unwrap_or_default();
            let _ = conn.write_all(&data).await;
            let _ = conn.shutdown().await;
        }
    })
    .await;
    (server, requests)
}

#[tokio::test]
async fn a_101_hands_over_the_connection() {
    let (server, mut requests) = switching_server().await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::get("/chat")
        .extension(RequestOptions::new().opaque("ws"))
        .body(Body::empty())
        .unwrap();
    let data = within(PATIENCE, client.upgrade(request, None))
        .await
        .unwrap();
    let seen = requests.recv().await.unwrap();
    assert_eq!(seen.method, "GET");
    assert_eq!(seen.target, "/chat");
    assert_eq!(seen.header("connection"), Some("upgrade"));
    assert_eq!(seen.header("upgrade"), Some("Websocket"));
    assert_eq!(data.headers["upgrade"], "Websocket");
    assert_eq!(data.opaque.unwrap().downcast_ref::<&str>(), Some(&"ws"));

    let mut socket = data.socket;
    socket.write_all(b"ping").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut echoed = String::new();
    within(PATIENCE, socket.read_to_string(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, "ping");
}

#[tokio::test]
async fn the_protocol_comes_from_the_argument_or_the_options() {
    let (server, mut requests) = switching_server().await;
    let client = Client::new(server.url()).unwrap();
    let data = within(PATIENCE, client.upgrade(get("/"), Some("echo/1")))
        .await
        .unwrap();
    assert_eq!(
        requests.recv().await.unwrap().header("upgrade"),
        Some("echo/1")
    );
    assert_eq!(data.headers["upgrade"], "echo/1");

    let request = http::Request::get("/")
        .extension(RequestOptions::new().upgrade("h2c"))
        .body(Body::empty())
        .unwrap();
    within(PATIENCE, client.upgrade(request, None))
        .await
        .unwrap();
    assert_eq!(
        requests.recv().await.unwrap().header("upgrade"),
        Some("h2c")
    );
}

#[tokio::test]
async fn anything_but_101_is_a_bad_upgrade() {
    let server = RawServer::respond_to_each_request(
        b"HTTP/1.1 426 Upgrade Required\r\nupgrade: TLS/1.3\r\ncontent-length: 4\r\n\r\nnope",
    )
    .await;
    let client = Client::new(server.url()).unwrap();
    let err = within(PATIENCE, client.upgrade(get("/"), None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_SOCKET");
    assert!(err.message().starts_with("bad upgrade"), "{err}");
    assert_eq!(err.status(), Some(http::StatusCode::UPGRADE_REQUIRED));
    assert_eq!(err.headers().unwrap()["upgrade"], "TLS/1.3");
}

#[tokio::test]
async fn upgrades_with_a_hyper_server() {
    let server = TestServer::http1(|mut req: http::Request<hyper::body::Incoming>| async move {
        let protocol = req.headers()["upgrade"].clone();
        tokio::spawn(async move {
            if let Ok(upgraded) = hyper::upgrade::on(&mut req).await {
                let mut io = TokioIo::new(upgraded);
                let mut data = Vec::new();
                if io.read_to_end(&mut data).await.is_ok() {
                    data.reverse();
                    let _ = io.write_all(&data).await;
                    let _ = io.shutdown().await;
                }
            }
        });
        http::Response::builder()
            .status(101)
            .header("connection", "upgrade")
            .header("upgrade", protocol)
            .body(body::empty())
            .unwrap()
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    let data = within(PATIENCE, client.upgrade(get("/"), Some("reverse")))
        .await
        .unwrap();
    assert_eq!(data.headers["upgrade"], "reverse");
    let mut socket = data.socket;
    socket.write_all(b"abc").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut reply = String::new();
    within(PATIENCE, socket.read_to_string(&mut reply))
        .await
        .unwrap();
    assert_eq!(reply, "cba");
}

#[tokio::test]
async fn connect_is_refused() {
    let (server, _requests) = switching_server().await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::connect("example.com:443")
        .body(Body::empty())
        .unwrap();
    let err = client.upgrade(request, None).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
}
