//! `DispatcherExt::pipeline`: a duplex, request body in, handled response
//! body out, driven without a task of its own.

mod common;

use std::io;

use common::{within, PATIENCE};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use undici_dispatcher::{Body, Client, DispatcherExt, Error, ErrorKind, Pipeline};
use undici_test_support::{body, handlers, RawServer, TestServer};

fn put(path: &str) -> http::Request<()> {
    http::Request::put(path).body(()).unwrap()
}

/// Writes `data` then shuts the write side down while reading everything
/// back, concurrently, as node's `stream.pipeline` does.
async fn round_trip(pipeline: Pipeline, data: &[u8]) -> (io::Result<()>, io::Result<Vec<u8>>) {
    let (mut reader, mut writer) = tokio::io::split(pipeline);
    let send = async {
        for chunk in data.chunks(64 * 1024) {
            writer.write_all(chunk).await?;
        }
        writer.shutdown().await
    };
    let receive = async {
        let mut received = Vec::new();
        reader.read_to_end(&mut received).await.map(|_| received)
    };
    tokio::join!(send, receive)
}

/// The dispatcher error inside an `io::Error` from the pipeline.
fn inner(err: &io::Error) -> &Error {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
        .expect("an undici error inside the io::Error")
}

#[tokio::test]
async fn what_is_written_comes_back_from_an_echo_server() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let (status_tx, mut status_rx) = mpsc::unbounded_channel();
    let pipeline = client.pipeline(put("/"), move |response| {
        let _ = status_tx.send((response.status(), response.headers()["x-method"].clone()));
        Ok(response.into_body())
    });
    let (sent, received) = within(PATIENCE, round_trip(pipeline, b"undici")).await;
    sent.unwrap();
    assert_eq!(received.unwrap(), b"undici");
    let (status, method) = status_rx.recv().await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(method, "PUT");
}

#[tokio::test]
async fn four_mib_echo_through_the_pipeline() {
    const TOTAL: usize = 4 * 1024 * 1024;
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 251) as u8).collect();
    let pipeline = client.pipeline(put("/big"), |response| Ok(response.into_body()));
    let (sent, received) = within(PATIENCE * 4, round_trip(pipeline, &data)).await;
    sent.unwrap();
    let received = received.unwrap();
    assert_eq!(received.len(), TOTAL);
    assert!(received == data, "the echoed bytes differ");
}

#[tokio::test]
async fn echo_over_http2() {
    const TOTAL: usize = 1024 * 1024;
    let server = TestServer::h2c(handlers::echo).await;
    let client = Client::builder().h2c(true).build(server.url()).unwrap();
    let data: Vec<u8> = (0..TOTAL).map(|i| (i % 13) as u8).collect();
    let pipeline = client.pipeline(put("/"), |response| {
        assert_eq!(response.version(), http::Version::HTTP_2);
        Ok(response.into_body())
    });
    let (sent, received) = within(PATIENCE, round_trip(pipeline, &data)).await;
    sent.unwrap();
    assert!(received.unwrap() == data, "the echoed bytes differ");
}

#[tokio::test]
async fn writing_everything_before_reading_works_when_the_server_reads_first() {
    // The server reads the whole request body before it answers: the
    // writes alone must get the request onto the connection.
    let server = TestServer::http1(|req: http::Request<hyper::body::Incoming>| async move {
        let length = match req.into_body().collect().await {
            Ok(body) => body.to_bytes().len().to_string(),
            Err(err) => format!("error: {err}"),
        };
        http::Response::new(body::full(length))
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    let mut pipeline = client.pipeline(put("/"), |response| Ok(response.into_body()));
    let chunk = vec![7u8; 64 * 1024];
    within(PATIENCE, async {
        for _ in 0..16 {
            pipeline.write_all(&chunk).await.unwrap();
        }
        pipeline.shutdown().await.unwrap();
    })
    .await;
    let mut answer = String::new();
    within(PATIENCE, pipeline.read_to_string(&mut answer))
        .await
        .unwrap();
    assert_eq!(answer, (16 * 64 * 1024).to_string());
}

#[tokio::test]
async fn the_handler_may_transform_the_body() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let pipeline = client.pipeline(put("/"), |response| {
        let upper = response
            .into_body()
            .map(|chunk| chunk.map(|bytes| bytes.to_ascii_uppercase()));
        Ok(Body::from_stream(upper))
    });
    let (sent, received) = within(PATIENCE, round_trip(pipeline, b"undici")).await;
    sent.unwrap();
    assert_eq!(received.unwrap(), b"UNDICI");
}

#[tokio::test]
async fn a_handler_error_comes_out_of_reads() {
    let server = TestServer::http1(handlers::status(500)).await;
    let client = Client::new(server.url()).unwrap();
    let mut pipeline = client.pipeline(put("/"), |response| {
        Err(Error::new(
            ErrorKind::Response,
            format!("unexpected status {}", response.status()),
        ))
    });
    pipeline.shutdown().await.unwrap();
    let mut sink = Vec::new();
    let err = within(PATIENCE, pipeline.read_to_end(&mut sink))
        .await
        .unwrap_err();
    assert_eq!(inner(&err).code(), "UND_ERR_RESPONSE");
}

#[tokio::test]
async fn a_request_error_comes_out_of_reads_and_writes() {
    // A port nobody listens on.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(format!("http://{addr}")).unwrap();
    let mut pipeline = client.pipeline(put("/"), |response| Ok(response.into_body()));
    let mut sink = Vec::new();
    let err = within(PATIENCE, pipeline.read_to_end(&mut sink))
        .await
        .unwrap_err();
    assert!(inner(&err).is_connect(), "{err:?}");
    let err = pipeline.write_all(b"late").await.unwrap_err();
    assert!(inner(&err).is_connect(), "{err:?}");
}

#[tokio::test]
async fn dropping_the_pipeline_mid_body_does_not_end_the_body_cleanly() {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let server = RawServer::new(move |mut conn| {
        let events_tx = events_tx.clone();
        async move {
            if conn.read_request_head().await.is_err() {
                return;
            }
            let mut body = Vec::new();
            while !String::from_utf8_lossy(&body).contains("partial") {
                match conn.read_some().await {
                    Ok(bytes) if !bytes.is_empty() => body.extend_from_slice(&bytes),
                    _ => return,
                }
            }
            let _ = events_tx.send(None);
            // What follows, up to the connection's end.
            body.extend(conn.read_to_end().await.unwrap_or_default());
            let _ = events_tx.send(Some(body));
        }
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    let mut pipeline = client.pipeline(put("/"), |response| Ok(response.into_body()));
    within(PATIENCE, pipeline.write_all(b"partial"))
        .await
        .unwrap();
    // Reading drives the request until the server has the chunk.
    let mut buf = [0u8; 16];
    within(PATIENCE, async {
        tokio::select! {
            read = pipeline.read(&mut buf) => panic!("the server never answers: {read:?}"),
            event = events.recv() => assert_eq!(event, Some(None)),
        }
    })
    .await;
    drop(pipeline);
    let body = within(PATIENCE, events.recv()).await.unwrap().unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("partial"));
    assert!(
        !body.ends_with("0\r\n\r\n"),
        "the server saw the body end cleanly: {body:?}"
    );
}

#[tokio::test]
async fn connect_is_refused() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let head = http::Request::connect("example.com:443").body(()).unwrap();
    let mut pipeline = client.pipeline(head, |response| Ok(response.into_body()));
    let mut sink = Vec::new();
    let err = pipeline.read_to_end(&mut sink).await.unwrap_err();
    assert_eq!(inner(&err).code(), "UND_ERR_INVALID_ARG");
    assert_eq!(server.connections_accepted(), 0);
}

/// `Pipeline` is tokio IO, so it composes with tokio's helpers.
#[test]
fn pipeline_is_tokio_io() {
    fn assert_io<T: AsyncRead + AsyncWrite + Send + Unpin>() {}
    assert_io::<Pipeline>();
}
