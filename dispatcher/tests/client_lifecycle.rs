//! Client lifecycle: keep-alive, close, destroy, events, readiness, stats.

mod common;

use std::future::poll_fn;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::{get, get_text, within, PATIENCE};
use http_body_util::BodyExt;
use tower::Service;
use undici_dispatcher::{
    Body, Client, Dispatcher, DispatcherExt, Error, ErrorKind, EventKind, RequestOptions,
};
use undici_test_support::{body, handlers, Gate, RawServer, TestServer};

#[tokio::test]
async fn keep_alive_reuses_one_connection() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    for _ in 0..5 {
        assert_eq!(get_text(&client, "/").await.unwrap(), "hello world");
    }
    assert_eq!(server.connections_accepted(), 1);
    assert!(client.stats().connected);
}

#[tokio::test]
async fn the_servers_keep_alive_hint_is_honoured() {
    // `timeout=3` minus a 2.9 s threshold: the connection may idle 100 ms.
    let server = TestServer::http1(|_req| async {
        http::Response::builder()
            .header("keep-alive", "timeout=3")
            .body(body::full("ok"))
            .unwrap()
    })
    .await;
    // Our own keep-alive is a minute: only the hint can close it in time.
    let client = Client::builder()
        .keep_alive_timeout(Duration::from_secs(60))
        .keep_alive_timeout_threshold(Duration::from_millis(2900))
        .build(server.url())
        .unwrap();
    get_text(&client, "/").await.unwrap();
    // The client closes the idle connection itself once the hint is spent.
    within(PATIENCE, server.wait_for_open_connections(0)).await;
    get_text(&client, "/").await.unwrap();
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn a_hint_under_the_threshold_means_no_reuse() {
    let server = TestServer::http1(|_req| async {
        http::Response::builder()
            .header("keep-alive", "timeout=1")
            .body(body::full("ok"))
            .unwrap()
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    get_text(&client, "/").await.unwrap();
    get_text(&client, "/").await.unwrap();
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn an_idle_connection_closed_by_the_server_is_retried_transparently() {
    // Every connection answers one request without `connection: close`,
    // then the server closes it: the keep-alive race.
    let server =
        RawServer::respond_then_close(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
    let client = Client::new(server.url()).unwrap();
    for _ in 0..5 {
        let text = within(PATIENCE, get_text(&client, "/")).await.unwrap();
        assert_eq!(text, "ok");
    }
    assert_eq!(server.connections_accepted(), 5);
}

#[tokio::test]
async fn reset_closes_the_connection_after_the_request() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::get("/")
        .extension(RequestOptions::new().reset(true))
        .body(Body::empty())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.headers()["x-req-connection"], "close");
    response.into_body().dump(1024).await.unwrap();
    get_text(&client, "/").await.unwrap();
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn max_requests_per_client_replaces_the_connection() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::builder()
        .max_requests_per_client(2)
        .build(server.url())
        .unwrap();
    for _ in 0..4 {
        get_text(&client, "/").await.unwrap();
    }
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn pipelining_over_one_is_not_supported() {
    let err = Client::builder()
        .pipelining(10)
        .build("http://127.0.0.1:1")
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_NOT_SUPPORTED");
}

#[tokio::test]
async fn requests_for_another_origin_are_refused() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    let err = client
        .request(get("http://example.invalid/"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    let own = format!("{}/", server.url());
    assert_eq!(get_text(&client, &own).await.unwrap(), "hello world");
}

/// Resolves once `n` requests wait for the client's connection.
async fn pending_reaches(client: &Client, n: usize) {
    while client.stats().pending < n {
        tokio::task::yield_now().await;
    }
}

/// A server whose handler waits until the test releases it.
async fn gated_server() -> (TestServer, Gate, Arc<AtomicUsize>) {
    let release = Gate::new();
    let started = Arc::new(AtomicUsize::new(0));
    let (gate, count) = (release.clone(), started.clone());
    let server = TestServer::http1(move |_req| {
        let gate = gate.clone();
        count.fetch_add(1, Ordering::SeqCst);
        async move {
            gate.pass().await;
            http::Response::new(body::full("released"))
        }
    })
    .await;
    (server, release, started)
}

#[tokio::test]
async fn close_refuses_new_requests_and_waits_for_running_ones() {
    let (server, release, _) = gated_server().await;
    let client = Client::new(server.url()).unwrap();
    let running = tokio::spawn({
        let client = client.clone();
        async move { get_text(&client, "/").await }
    });
    server.wait_for_requests_received(1).await;
    let closing = tokio::spawn(client.close());
    // Closed at once for new requests...
    let err = client.request(get("/")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_CLOSED");
    assert!(client.is_closed());
    // ...but the running one finishes, and only then close resolves.
    tokio::task::yield_now().await;
    assert!(
        !closing.is_finished(),
        "close resolved with a request running"
    );
    release.open_one();
    assert_eq!(
        within(PATIENCE, running).await.unwrap().unwrap(),
        "released"
    );
    within(PATIENCE, closing).await.unwrap();
    within(PATIENCE, server.wait_for_open_connections(0)).await;
}

#[tokio::test]
async fn destroy_aborts_running_and_queued_requests() {
    let (server, _release, _) = gated_server().await;
    let client = Client::new(server.url()).unwrap();
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.request(get("/")).await }
    });
    server.wait_for_requests_received(1).await;
    let queued = tokio::spawn({
        let client = client.clone();
        async move { client.request(get("/")).await }
    });
    within(PATIENCE, pending_reaches(&client, 1)).await;
    client.destroy(None).await;
    let err = within(PATIENCE, running).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "UND_ERR_DESTROYED", "{err:?}");
    let err = within(PATIENCE, queued).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "UND_ERR_DESTROYED", "{err:?}");
    assert!(client.is_destroyed());
    let err = client.request(get("/")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_DESTROYED");
}

#[tokio::test]
async fn destroy_with_a_reason_hands_that_reason_out() {
    let (server, _release, _) = gated_server().await;
    let client = Client::new(server.url()).unwrap();
    let running = tokio::spawn({
        let client = client.clone();
        async move { client.request(get("/")).await }
    });
    server.wait_for_requests_received(1).await;
    client
        .destroy(Some(Error::new(ErrorKind::Aborted, "shutting down")))
        .await;
    let err = within(PATIENCE, running).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "UND_ERR_ABORTED");
    assert_eq!(err.message(), "shutting down");
}

#[tokio::test]
async fn dropping_a_response_future_aborts_that_request_alone() {
    let (server, release, _) = gated_server().await;
    let client = Client::builder().build(server.url()).unwrap();
    let mut first = Box::pin(client.request(get("/")));
    // Drive it until the server has it, then drop it.
    tokio::select! {
        _ = &mut first => panic!("the server should still be holding it"),
        () = server.wait_for_requests_received(1) => {}
    }
    drop(first);
    within(PATIENCE, server.wait_for_open_connections(0)).await;
    // Whether or not the server still runs the dropped handler, let it go.
    release.open_one();
    let next = tokio::spawn({
        let client = client.clone();
        async move { get_text(&client, "/").await }
    });
    server.wait_for_requests_received(2).await;
    release.open_one();
    assert_eq!(within(PATIENCE, next).await.unwrap().unwrap(), "released");
}

#[tokio::test]
async fn events_report_connect_disconnect_and_connection_errors() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    let mut events = client.events();
    get_text(&client, "/").await.unwrap();
    let connect = within(PATIENCE, events.next_of(EventKind::Connect))
        .await
        .unwrap();
    assert_eq!(connect.origin, *client.origin());
    assert_eq!(connect.targets.len(), 1);
    assert_eq!(connect.targets[0].kind(), "Client");
    server.close_connections().await;
    let disconnect = within(PATIENCE, events.next_of(EventKind::Disconnect))
        .await
        .unwrap();
    assert_eq!(disconnect.origin, *client.origin());

    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let refused = Client::new(dead).unwrap();
    let mut events = refused.events();
    assert!(refused.request(get("/")).await.is_err());
    let error = within(PATIENCE, events.next_of(EventKind::ConnectionError))
        .await
        .unwrap();
    assert_eq!(error.error.unwrap().code(), "ECONNREFUSED");
}

#[tokio::test]
async fn poll_ready_is_pending_while_busy_and_wakes_on_drain() {
    let (server, release, _) = gated_server().await;
    let client = Client::new(server.url()).unwrap();
    let mut events = client.events();
    let mut first = client.clone();
    poll_fn(|cx| first.poll_ready(cx)).await.unwrap();
    let running = tokio::spawn(first.call(get("/")));
    server.wait_for_requests_received(1).await;

    // A second handle is not ready while the one connection is busy.
    let mut second = client.clone();
    let ready_now = poll_fn(|cx| Poll::Ready(second.poll_ready(cx))).await;
    assert!(ready_now.is_pending(), "ready while busy");
    let waiting =
        tokio::spawn(async move { poll_fn(|cx| second.poll_ready(cx)).await.map(|()| second) });
    release.open_one();
    let response = within(PATIENCE, running).await.unwrap().unwrap();
    response.into_body().text().await.unwrap();
    // Reading the body to the end frees the connection: ready again, and
    // a drain event.
    let mut second = within(PATIENCE, waiting).await.unwrap().unwrap();
    within(PATIENCE, events.next_of(EventKind::Drain))
        .await
        .unwrap();
    let call = tokio::spawn(second.call(get("/")));
    server.wait_for_requests_received(2).await;
    release.open_one();
    within(PATIENCE, call).await.unwrap().unwrap();
}

#[tokio::test]
async fn stats_add_up() {
    let (server, release, _) = gated_server().await;
    let client = Client::new(server.url()).unwrap();
    assert_eq!(client.stats(), Default::default());
    let running: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { get_text(&client, "/").await })
        })
        .collect();
    server.wait_for_requests_received(1).await;
    within(PATIENCE, pending_reaches(&client, 2)).await;
    let stats = client.stats();
    assert!(stats.connected);
    assert_eq!((stats.running, stats.pending, stats.size), (1, 2, 3));
    for _ in 0..3 {
        release.open_one();
        server
            .wait_for_requests_served(server.requests_served() + 1)
            .await;
    }
    for task in running {
        within(PATIENCE, task).await.unwrap().unwrap();
    }
    let stats = client.stats();
    assert_eq!((stats.running, stats.pending, stats.size), (0, 0, 0));
}

#[tokio::test]
async fn preconnect_opens_the_connection_ahead_of_time() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    client.preconnect().await.unwrap();
    assert_eq!(server.connections_accepted(), 1);
    assert!(client.stats().connected);
    get_text(&client, "/").await.unwrap();
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn on_info_sees_informational_responses() {
    let server = RawServer::respond_then_close(
        b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    )
    .await;
    let client = Client::new(server.url()).unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let request = http::Request::get("/")
        .extension(RequestOptions::new().on_info(move |info| {
            log.lock()
                .unwrap()
                .push((info.status.as_u16(), info.headers["link"].clone()));
        }))
        .body(Body::empty())
        .unwrap();
    let response = within(PATIENCE, client.request(request)).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[(103, "</style.css>".parse().unwrap())]
    );
}

#[tokio::test]
async fn opaque_comes_back_with_the_response() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::get("/")
        .extension(RequestOptions::new().opaque(42u32))
        .body(Body::empty())
        .unwrap();
    let response = client.request(request).await.unwrap();
    let opaque = response
        .extensions()
        .get::<undici_dispatcher::Opaque>()
        .unwrap();
    assert_eq!(opaque.downcast_ref::<u32>(), Some(&42));
}

#[tokio::test]
async fn request_content_length_must_match_the_body() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::post("/")
        .header("content-length", "10")
        .body(Body::from("short"))
        .unwrap();
    let err = client.request(request).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH");
}

#[tokio::test]
async fn post_bodies_and_trailers_round_trip() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::post("/upload")
        .body(Body::from("payload"))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.headers()["x-method"], "POST");
    assert_eq!(response.into_body().text().await.unwrap(), "payload");

    let (mut sender, body) = Body::channel();
    let request = http::Request::post("/stream").body(body).unwrap();
    let sending = tokio::spawn(async move {
        sender.send_data("chunk one, ").await.unwrap();
        sender.send_data("chunk two").await.unwrap();
    });
    let response = client.request(request).await.unwrap();
    sending.await.unwrap();
    assert_eq!(
        response.into_body().text().await.unwrap(),
        "chunk one, chunk two"
    );
}

#[tokio::test]
async fn a_streamed_body_shorter_than_its_content_length_is_a_mismatch() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let (mut sender, body) = Body::channel();
    let request = http::Request::post("/")
        .header("content-length", "10")
        .body(body)
        .unwrap();
    let sending = tokio::spawn(async move {
        sender.send_data("short").await.unwrap();
    });
    let err = within(PATIENCE, client.request(request)).await.unwrap_err();
    sending.await.unwrap();
    assert_eq!(err.code(), "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH", "{err}");
}

#[tokio::test]
async fn a_streamed_body_longer_than_its_content_length_is_a_mismatch() {
    let server = TestServer::http1(handlers::echo).await;
    let client = Client::new(server.url()).unwrap();
    let (mut sender, body) = Body::channel();
    let request = http::Request::post("/")
        .header("content-length", "3")
        .body(body)
        .unwrap();
    let sending = tokio::spawn(async move {
        let _ = sender.send_data("far too long").await;
    });
    let err = within(PATIENCE, client.request(request)).await.unwrap_err();
    sending.await.unwrap();
    assert_eq!(err.code(), "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH", "{err}");
}

#[tokio::test]
async fn dumping_a_body_under_the_limit_keeps_the_connection() {
    let server =
        TestServer::http1(|_req| async { http::Response::new(body::full(vec![b'x'; 4096])) }).await;
    let client = Client::new(server.url()).unwrap();
    for _ in 0..3 {
        let response = client.request(get("/")).await.unwrap();
        response
            .into_body()
            .dump(undici_dispatcher::DEFAULT_DUMP_LIMIT)
            .await
            .unwrap();
    }
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn dumping_a_body_over_the_limit_aborts_it_and_closes_the_connection() {
    let server =
        TestServer::http1(|_req| async { http::Response::new(body::full(vec![b'x'; 4096])) }).await;
    let client = Client::new(server.url()).unwrap();
    let response = client.request(get("/")).await.unwrap();
    let err = response.into_body().dump(1024).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_ABORTED", "{err}");
    within(PATIENCE, server.wait_for_open_connections(0)).await;
    assert_eq!(get_text(&client, "/").await.unwrap().len(), 4096);
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn an_idempotent_request_the_server_dropped_after_reading_goes_again_on_a_fresh_connection() {
    // Each connection answers its first request; a second request on it is
    // read, then the connection closes without an answer: the server
    // went away while we reused the connection.
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_err() {
            return;
        }
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            .await;
        let _ = conn.read_request().await;
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    assert_eq!(get_text(&client, "/").await.unwrap(), "ok");
    assert_eq!(
        within(PATIENCE, get_text(&client, "/")).await.unwrap(),
        "ok"
    );
    assert_eq!(server.connections_accepted(), 2);

    // A POST the server may have acted on is not sent twice.
    let post = http::Request::post("/").body(Body::from("once")).unwrap();
    let err = within(PATIENCE, client.request(post)).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_SOCKET", "{err}");
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn an_upgrade_request_answered_without_101_keeps_its_body() {
    let server =
        TestServer::http1(|_req| async { http::Response::new(body::full("no upgrade here")) })
            .await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::get("/")
        .extension(RequestOptions::new().upgrade("websocket"))
        .body(Body::empty())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().text().await.unwrap(),
        "no upgrade here"
    );
}

#[tokio::test]
async fn body_timeout_counts_the_servers_silence_not_the_readers_pauses() {
    let (tx, next) = tokio::sync::mpsc::channel::<()>(1);
    let next = Arc::new(tokio::sync::Mutex::new(next));
    let server = TestServer::http1(move |_req| {
        let next = next.clone();
        async move {
            let (sender, body) = body::channel(1);
            tokio::spawn(async move {
                sender.send_data("first ").await.unwrap();
                next.lock().await.recv().await;
                sender.send_data("second").await.unwrap();
            });
            http::Response::new(body)
        }
    })
    .await;
    let client = Client::builder()
        .body_timeout(Duration::from_millis(500))
        .build(server.url())
        .unwrap();
    let mut body = client.request(get("/")).await.unwrap().into_body();
    let first = within(PATIENCE, body.frame()).await.unwrap().unwrap();
    assert_eq!(first.into_data().unwrap(), "first ");
    // The reader is away longer than the body timeout (this sleep is the
    // behaviour under test); the server sends the rest as soon as asked.
    tokio::time::sleep(Duration::from_secs(1)).await;
    tx.send(()).await.unwrap();
    let second = within(PATIENCE, body.frame()).await.unwrap().unwrap();
    assert_eq!(second.into_data().unwrap(), "second");
    assert!(within(PATIENCE, body.frame()).await.is_none());

    // A server silent longer than the timeout while the reader waits.
    let mut body = client.request(get("/")).await.unwrap().into_body();
    within(PATIENCE, body.frame()).await.unwrap().unwrap();
    let err = within(PATIENCE, body.frame()).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "UND_ERR_BODY_TIMEOUT");
}
