//! The dump interceptor against real servers.
#![cfg(feature = "dump")]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt, RequestOptions};
use undici_interceptors::dump::{DumpLayer, DEFAULT_MAX_SIZE};
use undici_test_support::{body, Gate, TestBody, TestServer};

/// A body of `len` bytes with a `content-length`.
fn sized(len: usize) -> TestBody {
    body::full(vec![b'x'; len])
}

/// A body of `chunks` chunks of `size` bytes, chunked (no length).
fn chunked(chunks: usize, size: usize) -> TestBody {
    let frames =
        (0..chunks).map(move |_| Ok::<_, Infallible>(Frame::data(Bytes::from(vec![b'y'; size]))));
    body::from_body(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )))
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

#[tokio::test]
async fn bodies_are_dumped_and_the_connection_is_reused() {
    let server = TestServer::http1(|_req| async { Response::new(sized(100 * 1024)) }).await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new());

    for _ in 0..3 {
        let response = client.request(get("/")).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-length"], "102400");
        assert!(response.into_body().bytes().await.unwrap().is_empty());
    }
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(server.requests_served(), 3);
    client.close().await;
}

#[tokio::test]
async fn chunked_bodies_under_the_limit_are_dumped_and_the_connection_is_reused() {
    let server = TestServer::http1(|_req| async { Response::new(chunked(16, 4096)) }).await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new());

    for _ in 0..3 {
        let response = client.request(get("/")).await.unwrap();
        assert!(response.into_body().bytes().await.unwrap().is_empty());
    }
    assert_eq!(server.connections_accepted(), 1);
    client.close().await;
}

#[tokio::test]
async fn a_content_length_over_max_size_aborts_and_closes_the_connection() {
    let server = TestServer::http1(|req: Request<_>| async move {
        let len = if req.uri().path() == "/big" { 4096 } else { 10 };
        Response::new(sized(len))
    })
    .await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new().max_size(1024));

    let err = client.request(get("/big")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_ABORTED");
    assert!(err.is_aborted());
    assert_eq!(
        err.message(),
        "Response size (4096) larger than maxSize (1024)"
    );

    // The oversized body was not read: its connection is gone, and the
    // next request gets a fresh one.
    let response = client.request(get("/small")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.connections_accepted(), 2);
    client.close().await;
}

/// How the body of a [`held_back`] server ended: `None` while it is being
/// sent, `Some(true)` once all of it was taken, `Some(false)` when its
/// receiver went away first (the connection closed).
type Sent = tokio::sync::watch::Receiver<Option<bool>>;

/// A server whose `/held` answers with `before` chunks of 512 bytes, then
/// waits for `gate` before sending `after` more and ending; `/small`
/// answers 10 bytes.
async fn held_back(before: usize, after: usize, gate: Gate) -> (TestServer, Sent) {
    let (sent, watched) = tokio::sync::watch::channel(None);
    let sent = Arc::new(sent);
    let server = TestServer::http1(move |req: Request<_>| {
        let (gate, sent) = (gate.clone(), sent.clone());
        async move {
            if req.uri().path() == "/small" {
                return Response::new(sized(10));
            }
            let (tx, body) = body::channel(1);
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![b'z'; 512]);
                for index in 0..before + after {
                    if index == before {
                        gate.pass().await;
                    }
                    if tx.send_data(chunk.clone()).await.is_err() {
                        sent.send_replace(Some(false));
                        return;
                    }
                }
                drop(tx);
                sent.send_replace(Some(true));
            });
            Response::new(body)
        }
    })
    .await;
    (server, watched)
}

/// Waits until the [`held_back`] body ended one way or the other.
async fn ending(mut sent: Sent) -> bool {
    let ended = tokio::time::timeout(Duration::from_secs(10), sent.wait_for(Option::is_some));
    match ended.await {
        Ok(Ok(ended)) => ended.unwrap_or_default(),
        _ => panic!("the held body never ended"),
    }
}

#[tokio::test]
async fn a_chunked_body_over_max_size_ends_there_and_the_rest_is_discarded_for_reuse() {
    let gate = Gate::new();
    let (server, sent) = held_back(4, 4, gate.clone()).await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new().max_size(1000));

    // 2048 bytes arrive, the rest is held back: the response is the
    // caller's already, as undici ends it at maxSize.
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(get("/held")))
        .await
        .expect("the response ends at max_size, not at the end of the body")
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.into_body().bytes().await.unwrap().is_empty());

    // The rest is read in the background; the next request waits for the
    // connection and gets it back.
    gate.open_one();
    let response = client.request(get("/small")).await.unwrap();
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    assert_eq!(server.connections_accepted(), 1);
    assert!(ending(sent).await, "the body was not read to its end");
    client.close().await;
}

#[tokio::test]
async fn a_chunked_body_past_the_discard_limit_closes_the_connection() {
    let gate = Gate::new();
    let (server, _sent) = held_back(4, 8, gate.clone()).await;
    // 1000 for the caller, then at most 2000 more: 6144 bytes is too much.
    let layer = DumpLayer::new().max_size(1000).discard_limit(2000);
    let client = Client::new(server.url().as_str()).unwrap().compose(layer);

    let response = client.request(get("/held")).await.unwrap();
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    gate.open_one();
    let response = client.request(get("/small")).await.unwrap();
    assert_eq!(response.status(), 200);
    // The first connection was closed, not reused.
    assert_eq!(server.connections_accepted(), 2);
    client.close().await;
}

#[tokio::test]
async fn a_discard_limit_of_zero_closes_the_connection_at_max_size() {
    let gate = Gate::new();
    let (server, _sent) = held_back(4, 1, gate.clone()).await;
    let layer = DumpLayer::new().max_size(1000).discard_limit(0);
    let client = Client::new(server.url().as_str()).unwrap().compose(layer);

    let response = client.request(get("/held")).await.unwrap();
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    gate.open_one();
    client.request(get("/small")).await.unwrap();
    // The first connection was closed, not reused.
    assert_eq!(server.connections_accepted(), 2);
    client.close().await;
}

#[tokio::test]
async fn the_default_max_size_is_one_mebibyte() {
    assert_eq!(DEFAULT_MAX_SIZE, 1024 * 1024);
    let server = TestServer::http1(|req: Request<_>| async move {
        let extra = usize::from(req.uri().path() == "/over");
        Response::new(sized(1024 * 1024 + extra))
    })
    .await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new());

    client.request(get("/exact")).await.unwrap();
    let err = client.request(get("/over")).await.unwrap_err();
    assert_eq!(
        err.message(),
        "Response size (1048577) larger than maxSize (1048576)"
    );
    client.close().await;
}

#[tokio::test]
async fn the_request_option_dump_max_size_overrides_the_layer() {
    let server = TestServer::http1(|_req| async { Response::new(sized(100)) }).await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new());

    let request = Request::get("/")
        .extension(RequestOptions::new().dump_max_size(50))
        .body(Body::empty())
        .unwrap();
    let err = client.request(request).await.unwrap_err();
    assert_eq!(
        err.message(),
        "Response size (100) larger than maxSize (50)"
    );

    let strict = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new().max_size(10));
    let request = Request::get("/")
        .extension(RequestOptions::new().dump_max_size(100))
        .body(Body::empty())
        .unwrap();
    assert!(strict.request(request).await.is_ok());
    client.close().await;
    strict.close().await;
}

#[tokio::test]
async fn a_head_response_is_not_measured_by_its_content_length() {
    let server = TestServer::http1(|_req| async { Response::new(sized(10 * 1024 * 1024)) }).await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(DumpLayer::new());

    let head = Request::head("/").body(Body::empty()).unwrap();
    let response = client.request(head).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-length"], "10485760");
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    assert_eq!(server.connections_accepted(), 1);
    client.close().await;
}

#[tokio::test]
async fn dump_works_in_a_service_builder_stack_over_any_service() {
    use tower::{service_fn, ServiceBuilder, ServiceExt};

    // A plain tower service, not a dispatcher.
    let service = ServiceBuilder::new()
        .layer(DumpLayer::new().max_size(8))
        .service(service_fn(|req: Request<Body>| async move {
            let body = if req.uri().path() == "/big" {
                "0123456789"
            } else {
                "0123"
            };
            Ok::<_, undici_dispatcher::Error>(Response::new(Body::from(body)))
        }));

    let response = service.clone().oneshot(get("/small")).await.unwrap();
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    let err = service.oneshot(get("/big")).await.unwrap_err();
    assert_eq!(err.message(), "Response size (10) larger than maxSize (8)");
}
