//! `DispatcherExt::connect`: HTTP CONNECT tunnels.

mod common;

use common::{get_text, within, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use undici_dispatcher::{Body, Client, DispatcherExt, RequestOptions};
use undici_test_support::{RawConn, RawServer};

/// Copies what the client sends back to it until the client's FIN, then
/// sends a FIN too (node's `socket.on('end', () => socket.end(data))`).
async fn echo_until_eof(conn: &mut RawConn) {
    let data = conn.read_to_end().await.unwrap_or_default();
    let _ = conn.write_all(&data).await;
    let _ = conn.shutdown().await;
}

/// A server that accepts every CONNECT and echoes through the tunnel,
/// answers other requests with `ok`, and reports each request target.
async fn tunnel_server(greeting: &'static [u8]) -> (RawServer, mpsc::UnboundedReceiver<String>) {
    let (targets_tx, targets) = mpsc::unbounded_channel();
    let server = RawServer::new(move |mut conn| {
        let targets_tx = targets_tx.clone();
        async move {
            while let Ok(request) = conn.read_request().await {
                let _ = targets_tx.send(format!("{} {}", request.method, request.target));
                if request.method != "CONNECT" {
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if conn.write_all(ok).await.is_err() {
                        return;
                    }
                    continue;
                }
                if conn.write_all(greeting).await.is_err() {
                    return;
                }
                echo_until_eof(&mut conn).await;
                return;
            }
        }
    })
    .await;
    (server, targets)
}

const ESTABLISHED: &[u8] = b"HTTP/1.1 200 Connection established\r\nx-tunnel: yes\r\n\r\n";

#[tokio::test]
async fn a_tunnel_carries_bytes_both_ways() {
    let (server, mut targets) = tunnel_server(ESTABLISHED).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::connect("example.com:443")
        .extension(RequestOptions::new().opaque(7u8))
        .body(Body::empty())
        .unwrap();
    let data = within(PATIENCE, client.connect(request)).await.unwrap();
    assert_eq!(targets.recv().await.unwrap(), "CONNECT example.com:443");
    assert_eq!(data.status, 200);
    assert_eq!(data.headers["x-tunnel"], "yes");
    assert_eq!(data.opaque.unwrap().downcast_ref::<u8>(), Some(&7));
    let mut socket = data.socket;
    socket.write_all(b"Body").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut echoed = String::new();
    within(PATIENCE, socket.read_to_string(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, "Body");
}

#[tokio::test]
async fn a_path_target_connects_to_the_dispatchers_origin() {
    // undici's `client.connect({ path: '/' })`: the authority-form target
    // is the origin.
    let (server, mut targets) = tunnel_server(ESTABLISHED).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::get("/").body(Body::empty()).unwrap();
    let data = within(PATIENCE, client.connect(request)).await.unwrap();
    assert_eq!(
        targets.recv().await.unwrap(),
        format!("CONNECT {}", server.addr())
    );
    drop(data);
}

#[tokio::test]
async fn bytes_sent_with_the_answer_are_read_first() {
    let (server, _targets) =
        tunnel_server(b"HTTP/1.1 200 Connection established\r\n\r\nearly ").await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::connect("example.com:443")
        .body(Body::empty())
        .unwrap();
    let mut socket = within(PATIENCE, client.connect(request))
        .await
        .unwrap()
        .socket;
    socket.write_all(b"late").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut received = String::new();
    within(PATIENCE, socket.read_to_string(&mut received))
        .await
        .unwrap();
    assert_eq!(received, "early late");
}

#[tokio::test]
async fn a_refused_connect_is_a_socket_error_with_the_answer() {
    let server = RawServer::respond(
        b"HTTP/1.1 407 Proxy Authentication Required\r\n\
          proxy-authenticate: Basic realm=\"x\"\r\ncontent-length: 5\r\n\r\nnope!",
    )
    .await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::connect("example.com:443")
        .body(Body::empty())
        .unwrap();
    let err = within(PATIENCE, client.connect(request)).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_SOCKET");
    assert!(err.message().starts_with("bad connect"), "{err}");
    assert_eq!(
        err.status(),
        Some(http::StatusCode::PROXY_AUTHENTICATION_REQUIRED)
    );
    assert_eq!(
        err.headers().unwrap()["proxy-authenticate"],
        "Basic realm=\"x\""
    );
    // The refusal's body is not read: its connection is closed.
    within(PATIENCE, server.wait_for_open_connections(0)).await;
}

#[tokio::test]
async fn the_tunnel_leaves_the_pool() {
    let (server, _targets) = tunnel_server(ESTABLISHED).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::connect("example.com:443")
        .body(Body::empty())
        .unwrap();
    let mut socket = within(PATIENCE, client.connect(request))
        .await
        .unwrap()
        .socket;
    // A request while the tunnel is open gets a connection of its own.
    assert_eq!(
        within(PATIENCE, get_text(&client, "/")).await.unwrap(),
        "ok"
    );
    assert_eq!(server.connections_accepted(), 2);
    socket.write_all(b"still here").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut echoed = String::new();
    within(PATIENCE, socket.read_to_string(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, "still here");
}
