//! HTTP/2: prior knowledge (h2c), ALPN over TLS, multiplexing, the
//! server's stream limit, GOAWAY.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{get, get_text, within, PATIENCE};
use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt, EventKind, Pool, RequestOptions};
use undici_test_support::{body, handlers, Gate, TestPki, TestServer};

#[tokio::test]
async fn h2c_multiplexes_concurrent_requests_on_one_connection() {
    let server = TestServer::h2c(handlers::echo).await;
    let client = Client::builder().h2c(true).build(server.url()).unwrap();
    let requests: Vec<_> = (0..100)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.request(get(&format!("/{i}"))).await })
        })
        .collect();
    for (i, request) in requests.into_iter().enumerate() {
        let response = within(PATIENCE, request).await.unwrap().unwrap();
        assert_eq!(response.version(), http::Version::HTTP_2);
        assert_eq!(response.headers()["x-path"], format!("/{i}").as_str());
        response.into_body().dump(1024).await.unwrap();
    }
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn h2_is_chosen_by_alpn_over_tls() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::tls(
        handlers::echo,
        pki.server_config(&cert, &[b"h2", b"http/1.1"]),
    )
    .await;
    let connect = undici_dispatcher::connectors::ConnectOptions::new().ca(pki.ca_pem());
    let client = Client::builder()
        .connect(connect.clone())
        .build(server.url_with_host("localhost"))
        .unwrap();
    let response = client.request(get("/tls")).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.headers()["x-version"], "HTTP/2.0");

    // allow_h2(false) offers only http/1.1.
    let h1 = Client::builder()
        .connect(connect)
        .allow_h2(false)
        .build(server.url_with_host("localhost"))
        .unwrap();
    let response = h1.request(get("/tls")).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    assert_eq!(
        server.alpn_protocols().last().unwrap().as_deref(),
        Some(&b"http/1.1"[..])
    );
}

/// A server counting requests in flight, holding each until released.
async fn counting_h2c_server(max_streams: u32) -> (TestServer, Arc<AtomicUsize>, Gate) {
    let in_flight = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let release = Gate::new();
    let (now, top, gate) = (in_flight.clone(), peak.clone(), release.clone());
    let server = TestServer::builder()
        .http2_only()
        .h2_max_concurrent_streams(max_streams)
        .serve(move |_req| {
            let (now, top, gate) = (now.clone(), top.clone(), gate.clone());
            async move {
                let current = now.fetch_add(1, Ordering::SeqCst) + 1;
                top.fetch_max(current, Ordering::SeqCst);
                gate.pass().await;
                now.fetch_sub(1, Ordering::SeqCst);
                http::Response::new(body::full("done"))
            }
        })
        .await;
    (server, peak, release)
}

#[tokio::test]
async fn the_servers_stream_limit_lowers_ours_and_the_rest_wait_in_our_queue() {
    let (server, peak, release) = counting_h2c_server(5).await;
    let client = Client::builder().h2c(true).build(server.url()).unwrap();
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { get_text(&client, "/").await })
        })
        .collect();
    // Five streams run at once, exactly the server's limit; the other
    // fifteen wait in the client's queue, where its stats see them.
    within(PATIENCE, server.wait_for_requests_received(5)).await;
    within(PATIENCE, async {
        while client.stats().pending != 15 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let stats = client.stats();
    assert_eq!((stats.running, stats.pending), (5, 15), "{stats:?}");
    assert!(client.is_busy());
    for served in 0..20 {
        within(PATIENCE, server.wait_for_requests_received(served + 1)).await;
        release.open_one();
    }
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "done");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 5);
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn an_unlimited_pool_opens_another_connection_when_the_servers_streams_are_taken() {
    let (server, peak, release) = counting_h2c_server(5).await;
    let pool = Pool::builder().h2c(true).build(server.url()).unwrap();
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get_text(&pool, "/").await })
        })
        .collect();
    within(PATIENCE, server.wait_for_requests_received(12)).await;
    assert_eq!(server.connections_accepted(), 3);
    for _ in 0..12 {
        release.open_one();
    }
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "done");
    }
    assert_eq!(peak.load(Ordering::SeqCst), 12);
}

#[tokio::test]
async fn a_goaway_retires_the_connection_and_its_disconnect_says_und_err_info() {
    let server = TestServer::h2c(handlers::hello).await;
    let client = Client::builder().h2c(true).build(server.url()).unwrap();
    let mut events = client.events();
    assert_eq!(get_text(&client, "/").await.unwrap(), "hello world");
    server.graceful_shutdown_connections();
    let disconnect = within(PATIENCE, events.next_of(EventKind::Disconnect))
        .await
        .unwrap();
    let error = disconnect
        .error
        .expect("a GOAWAY disconnect carries an error");
    assert_eq!(error.code(), "UND_ERR_INFO", "{error}");
    // The next request goes to a new connection.
    assert_eq!(get_text(&client, "/").await.unwrap(), "hello world");
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn a_cold_burst_to_an_h2_origin_opens_one_connection() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::tls(handlers::hello, pki.server_config(&cert, &[b"h2"])).await;
    let pool = Pool::builder()
        .connect(undici_dispatcher::connectors::ConnectOptions::new().ca(pki.ca_pem()))
        .build(server.url_with_host("localhost"))
        .unwrap();
    let burst: Vec<_> = (0..100)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get_text(&pool, "/").await })
        })
        .collect();
    for request in burst {
        assert_eq!(
            within(PATIENCE, request).await.unwrap().unwrap(),
            "hello world"
        );
    }
    assert_eq!(server.connections_accepted(), 1);
    assert_eq!(pool.stats().connected, 1);
}

#[tokio::test]
async fn requests_refused_by_a_goaway_are_replayed_on_a_new_connection() {
    // One stream at a time: the rest wait inside the client's h2 session
    // when the server says GOAWAY, unprocessed, and must go again.
    let (server, _peak, release) = counting_h2c_server(1).await;
    let client = Client::builder().h2c(true).build(server.url()).unwrap();
    let requests: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { get_text(&client, "/").await })
        })
        .collect();
    server.wait_for_requests_received(1).await;
    server.graceful_shutdown_connections();
    release.open_one();
    for served in 1..5 {
        server.wait_for_requests_received(served + 1).await;
        release.open_one();
    }
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "done");
    }
    assert!(server.connections_accepted() >= 2);
}

#[tokio::test]
async fn h2_request_bodies_and_trailers() {
    let server = TestServer::h2c(handlers::echo).await;
    let client = Client::builder().h2c(true).build(server.url()).unwrap();
    let (mut sender, request_body) = Body::channel();
    let request = http::Request::post("/").body(request_body).unwrap();
    let sending = tokio::spawn(async move {
        sender.send_data("streamed ").await.unwrap();
        sender.send_data("body").await.unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        sender.send_trailers(trailers).await.unwrap();
    });
    let response = client.request(request).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    sending.await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    assert_eq!(collected.to_bytes(), "streamed body");
}

/// An h2c server that never answers `/stall` (and `ok` to the rest), and
/// a client to it with this headers timeout.
async fn stalling_h2c(headers_timeout: std::time::Duration) -> (TestServer, Client) {
    let server = TestServer::builder()
        .http2_only()
        .serve(|req| async move {
            if req.uri().path() == "/stall" {
                std::future::pending::<()>().await;
            }
            http::Response::new(body::full("ok"))
        })
        .await;
    let client = Client::builder()
        .h2c(true)
        .headers_timeout(headers_timeout)
        .build(server.url())
        .unwrap();
    (server, client)
}

#[tokio::test]
async fn a_late_head_times_out_its_stream_alone() {
    // A stream's headers timeout ends that stream: the connection, and the
    // streams on it that the server answers, carry on.
    // The short timeout on the stalled stream alone: the others' answers
    // (the first with the h2c handshake) need not beat it on a busy
    // machine.
    let (server, client) = stalling_h2c(std::time::Duration::from_secs(30)).await;
    let stall = http::Request::get("/stall")
        .extension(RequestOptions::new().headers_timeout(std::time::Duration::from_millis(200)))
        .body(Body::empty())
        .unwrap();
    let stalled = {
        let client = client.clone();
        tokio::spawn(async move { client.request(stall).await })
    };
    assert_eq!(get_text(&client, "/").await.unwrap(), "ok");
    let started = std::time::Instant::now();
    let err = within(PATIENCE, stalled).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "UND_ERR_HEADERS_TIMEOUT", "{err:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(get_text(&client, "/").await.unwrap(), "ok");
    assert_eq!(server.connections_accepted(), 1, "the connection survived");
}

#[tokio::test]
async fn a_long_headers_timeout_is_swept_by_the_connection() {
    // Over a second, a stream's headers timeout is kept by its connection's
    // task and swept every 500 ms, as undici's fast timers: the late
    // stream fails within a tick of its deadline, the others carry on.
    let timeout = std::time::Duration::from_millis(1200);
    let (server, client) = stalling_h2c(timeout).await;
    assert_eq!(get_text(&client, "/").await.unwrap(), "ok");
    let started = std::time::Instant::now();
    let stalled = {
        let client = client.clone();
        tokio::spawn(async move { client.request(get("/stall")).await })
    };
    assert_eq!(get_text(&client, "/").await.unwrap(), "ok");
    let err = within(PATIENCE, stalled).await.unwrap().unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), "UND_ERR_HEADERS_TIMEOUT", "{err:?}");
    assert!(waited >= timeout, "{waited:?}");
    assert!(
        waited < timeout * 2 + std::time::Duration::from_millis(500),
        "{waited:?}"
    );
    assert_eq!(get_text(&client, "/").await.unwrap(), "ok");
    assert_eq!(server.connections_accepted(), 1, "the connection survived");
}
