//! `DispatcherExt::stream`: the response body written into the factory's
//! writer, with backpressure, trailers, opaque, and failures that abort.

mod common;

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use common::{get, within, PATIENCE};
use tokio::io::{AsyncReadExt, AsyncWrite};
use tokio::sync::watch;
use undici_dispatcher::{Body, Client, DispatcherExt, Error, ErrorKind, RequestOptions};
use undici_test_support::{body, RawServer, TestServer};

/// A server whose response is `total` bytes of a known pattern, streamed
/// in 64 KiB chunks; the watch says how many bytes hyper has taken so far.
async fn streaming_server(total: usize) -> (TestServer, watch::Receiver<usize>) {
    let (progress_tx, progress) = watch::channel(0usize);
    let server = TestServer::http1(move |_req| {
        let progress_tx = progress_tx.clone();
        async move {
            let (tx, body) = body::channel(1);
            tokio::spawn(async move {
                let mut sent = 0;
                while sent < total {
                    let len = (total - sent).min(64 * 1024);
                    if tx.send_data(pattern(sent, len)).await.is_err() {
                        return;
                    }
                    sent += len;
                    progress_tx.send_replace(sent);
                }
            });
            http::Response::builder()
                .header("content-length", total.to_string())
                .body(body)
                .unwrap()
        }
    })
    .await;
    (server, progress)
}

/// Bytes `offset..offset + len` of the repeating pattern 0, 1, ..., 250.
fn pattern(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len).map(|i| (i % 251) as u8).collect()
}

#[tokio::test]
async fn the_body_is_written_into_the_factorys_writer() {
    let server = TestServer::http1(|_req| async {
        http::Response::builder()
            .header("x-answer", "42")
            .body(body::full("Hello, World!"))
            .unwrap()
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::get("/")
        .extension(RequestOptions::new().opaque(String::from("bufs")))
        .body(Body::empty())
        .unwrap();
    let mut sink = Vec::new();
    let writer = &mut sink;
    let mut seen = None;
    let data = within(
        PATIENCE,
        client.stream(request, |head| {
            seen = Some((
                head.status,
                head.headers["x-answer"].clone(),
                head.opaque
                    .as_ref()
                    .and_then(|o| o.downcast_ref::<String>())
                    .cloned(),
            ));
            Ok::<_, Error>(writer)
        }),
    )
    .await
    .unwrap();
    assert_eq!(sink, b"Hello, World!");
    let (status, answer, opaque) = seen.unwrap();
    assert_eq!(status, 200);
    assert_eq!(answer, "42");
    assert_eq!(opaque.as_deref(), Some("bufs"));
    let opaque = data.opaque.unwrap();
    assert_eq!(opaque.downcast_ref::<String>().unwrap(), "bufs");
    assert!(data.trailers.is_empty());
}

#[tokio::test]
async fn the_trailers_are_answered_once_the_body_ended() {
    let server = RawServer::respond(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n\
          5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n",
    )
    .await;
    let client = Client::new(server.url()).unwrap();
    let mut sink = Vec::new();
    let writer = &mut sink;
    let data = within(
        PATIENCE,
        client.stream(get("/"), move |_| Ok::<_, Error>(writer)),
    )
    .await
    .unwrap();
    assert_eq!(sink, b"hello");
    assert_eq!(data.trailers["x-sum"], "42");
}

#[tokio::test]
async fn a_writer_that_does_not_keep_up_holds_the_server_back() {
    const TOTAL: usize = 16 * 1024 * 1024;
    let (server, mut progress) = streaming_server(TOTAL).await;
    let client = Client::new(server.url()).unwrap();
    // The writer is one end of a 64 KiB pipe nobody reads yet.
    let (writer, mut reader) = tokio::io::duplex(64 * 1024);
    let streaming = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .stream(get("/"), move |_| Ok::<_, Error>(writer))
                .await
        }
    });
    within(PATIENCE, progress.wait_for(|&sent| sent > 0))
        .await
        .unwrap();
    // With the pipe full, stream() reads no more of the body, the socket
    // buffers fill, and the server cannot finish.
    let finished = tokio::time::timeout(
        Duration::from_millis(500),
        progress.wait_for(|&sent| sent >= TOTAL),
    )
    .await
    .is_ok();
    assert!(
        !finished,
        "the server sent everything to a writer that read nothing"
    );
    let stalled_at = *progress.borrow();
    assert!(stalled_at < TOTAL);

    let mut received = Vec::with_capacity(TOTAL);
    within(PATIENCE, reader.read_to_end(&mut received))
        .await
        .unwrap();
    let data = within(PATIENCE, streaming).await.unwrap().unwrap();
    assert!(data.trailers.is_empty());
    assert_eq!(received.len(), TOTAL);
    assert!(
        received == pattern(0, TOTAL),
        "the bytes differ from what was sent"
    );
}

#[tokio::test]
async fn a_factory_error_aborts_the_request() {
    let (server, _progress) = streaming_server(1024 * 1024).await;
    let client = Client::new(server.url()).unwrap();
    let err = within(
        PATIENCE,
        client.stream(get("/"), |_| {
            Err::<Vec<u8>, _>(io::Error::new(io::ErrorKind::PermissionDenied, "no disk"))
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_ABORTED");
    let source = err.find_source::<io::Error>().unwrap();
    assert_eq!(source.kind(), io::ErrorKind::PermissionDenied);
    // The body was left unread: its connection is closed, not reused.
    within(PATIENCE, server.wait_for_open_connections(0)).await;
}

#[tokio::test]
async fn a_factorys_own_error_is_returned_as_it_is() {
    let server = TestServer::http1(|_req| async { http::Response::new(body::full("x")) }).await;
    let client = Client::new(server.url()).unwrap();
    let err = within(
        PATIENCE,
        client.stream(get("/"), |_| {
            Err::<Vec<u8>, _>(Error::new(
                ErrorKind::InvalidReturnValue,
                "expected Writable",
            ))
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_RETURN_VALUE");
}

/// Fails every write.
struct BrokenWriter;

impl AsyncWrite for BrokenWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::Error::new(io::ErrorKind::StorageFull, "disk full")))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_write_error_aborts_the_request_and_keeps_its_source() {
    let (server, _progress) = streaming_server(4 * 1024 * 1024).await;
    let client = Client::new(server.url()).unwrap();
    let err = within(
        PATIENCE,
        client.stream(get("/"), |_| Ok::<_, Error>(BrokenWriter)),
    )
    .await
    .unwrap_err();
    assert!(err.is_aborted());
    assert_eq!(
        err.find_source::<io::Error>().unwrap().kind(),
        io::ErrorKind::StorageFull
    );
    within(PATIENCE, server.wait_for_open_connections(0)).await;
    // The next request gets a fresh connection.
    let mut sink = Vec::new();
    let writer = &mut sink;
    within(
        PATIENCE,
        client.stream(get("/"), move |_| Ok::<_, Error>(writer)),
    )
    .await
    .unwrap();
    assert_eq!(sink.len(), 4 * 1024 * 1024);
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn connect_is_refused() {
    let server = TestServer::http1(|_req| async { http::Response::new(body::empty()) }).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::connect("example.com:443")
        .body(Body::empty())
        .unwrap();
    let err = client
        .stream(request, |_| Ok::<_, Error>(Vec::new()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    assert_eq!(server.connections_accepted(), 0);
}
