//! The global dispatcher and the top-level functions over it.
//!
//! One test, because the global dispatcher is one per process: tests in
//! the same binary run at once and would race for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use undici::prelude::*;
use undici::{Agent, Handler, RequestOptions};
use undici_test_support::{handlers, RawServer, TestServer};

/// A server that answers a CONNECT with 200 or an upgrade with 101, then
/// echoes what it reads.
async fn tunnel_server() -> RawServer {
    RawServer::new(|mut conn| async move {
        let Ok(request) = conn.read_request().await else {
            return;
        };
        let answer: &[u8] = if request.method == "CONNECT" {
            b"HTTP/1.1 200 Connection Established\r\n\r\n"
        } else {
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n"
        };
        if conn.write_all(answer).await.is_err() {
            return;
        }
        let data = conn.read_to_end().await.unwrap_or_default();
        let _ = conn.write_all(&data).await;
        let _ = conn.shutdown().await;
    })
    .await
}

/// Counts the callbacks it sees.
#[derive(Default)]
struct Counting {
    data: usize,
    ended: bool,
}

impl Handler for Counting {
    fn on_response_data(&mut self, _controller: &undici::Controller, chunk: bytes::Bytes) {
        self.data += chunk.len();
    }

    fn on_response_end(&mut self, _controller: &undici::Controller, _trailers: &http::HeaderMap) {
        self.ended = true;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_top_level_functions_use_the_global_dispatcher() {
    let server = TestServer::http1(handlers::echo).await;
    let url = format!("{}/global", server.url());

    // By default the global dispatcher is an Agent.
    let response = undici::request(url.as_str()).await.unwrap();
    assert_eq!(response.headers()["x-path"], "/global");
    response
        .into_body()
        .dump(undici::DEFAULT_DUMP_LIMIT)
        .await
        .unwrap();

    // Another one set in its place serves every top-level call: here an
    // Agent that counts requests and tags them.
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let tagging = tower::util::MapRequestLayer::new(move |mut request: Request| {
        counter.fetch_add(1, Ordering::SeqCst);
        request
            .headers_mut()
            .insert("x-via", HeaderValue::from_static("global"));
        request
    });
    let previous = undici::set_global_dispatcher(Agent::new().compose(tagging));
    assert!(previous.is_some());

    let options = RequestOptions::new().headers_timeout(Duration::from_secs(5));
    let response = undici::request((url.as_str(), options)).await.unwrap();
    assert_eq!(response.headers()["x-req-x-via"], "global");
    response
        .into_body()
        .dump(undici::DEFAULT_DUMP_LIMIT)
        .await
        .unwrap();

    let mut sink = Vec::new();
    let post = http::Request::post(url.as_str())
        .body(Body::from("streamed"))
        .unwrap();
    let data = undici::stream(post, |head| {
        assert_eq!(head.status, 200);
        Ok::<_, std::io::Error>(&mut sink)
    })
    .await
    .unwrap();
    assert!(data.trailers.is_empty());
    assert_eq!(sink, b"streamed");

    let head = http::Request::post(url.as_str()).body(()).unwrap();
    let mut pipeline = undici::pipeline(head, |response| Ok(response.into_body()));
    pipeline.write_all(b"piped").await.unwrap();
    pipeline.shutdown().await.unwrap();
    let mut piped = String::new();
    pipeline.read_to_string(&mut piped).await.unwrap();
    assert_eq!(piped, "piped");

    let counting = undici::dispatch(url.as_str(), Counting::default())
        .await
        .unwrap();
    assert!(counting.ended);
    assert_eq!(counting.data, 0);

    let tunnels = tunnel_server().await;
    let tunnel = undici::connect(format!("{}/", tunnels.url()))
        .await
        .unwrap();
    let mut socket = tunnel.socket;
    socket.write_all(b"through the tunnel").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut echoed = String::new();
    socket.read_to_string(&mut echoed).await.unwrap();
    assert_eq!(echoed, "through the tunnel");

    let upgraded = undici::upgrade(format!("{}/chat", tunnels.url()), Some("echo"))
        .await
        .unwrap();
    assert_eq!(upgraded.headers["upgrade"], "echo");
    let mut socket = upgraded.socket;
    socket.write_all(b"upgraded").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut echoed = String::new();
    socket.read_to_string(&mut echoed).await.unwrap();
    assert_eq!(echoed, "upgraded");

    // request, stream, pipeline, dispatch, connect and upgrade: six.
    assert_eq!(seen.load(Ordering::SeqCst), 6);
    undici::global_dispatcher().close().await;
}
