//! `close` lets every request accepted before it finish (running, queued
//! in the pool, or waiting at the readiness gate); `destroy` ends them all.
//! For Client, Pool, Agent and BalancedPool, over HTTP/1.1 and HTTP/2.

mod common;

use std::future::Future;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use common::{get, get_text, within, PATIENCE};
use futures_util::future::join_all;
use tokio::sync::Semaphore;
use undici_dispatcher::connectors::ConnectOptions;
use undici_dispatcher::{
    Agent, BalancedPool, Client, Dispatcher, DispatcherExt, Error, Pool, PoolStats,
};
use undici_test_support::{body, Gate, TestPki, TestServer};

/// A server whose every answer waits for the test to open the gate.
async fn gated_server(gate: &Gate) -> TestServer {
    let gate = gate.clone();
    TestServer::http1(move |_req| {
        let gate = gate.clone();
        async move {
            gate.pass().await;
            http::Response::new(body::full("ok"))
        }
    })
    .await
}

/// Spawns `n` GETs of `url` on `dispatcher`, and answers once every one
/// was polled: from then on each is accepted (running, queued, or waiting
/// at the readiness gate), so a `close` that follows must let it finish.
/// A task the runtime had not run yet would be refused instead.
async fn spawn_gets<D: Dispatcher>(
    dispatcher: &D,
    url: &str,
    n: usize,
) -> Vec<tokio::task::JoinHandle<Result<String, Error>>> {
    let started = Arc::new(Semaphore::new(0));
    let requests = (0..n)
        .map(|_| {
            let (dispatcher, url) = (dispatcher.clone(), url.to_owned());
            let started = started.clone();
            tokio::spawn(async move {
                let mut request = std::pin::pin!(get_text(&dispatcher, &url));
                let first = std::future::poll_fn(|cx| Poll::Ready(request.as_mut().poll(cx))).await;
                started.add_permits(1);
                match first {
                    Poll::Ready(answer) => answer,
                    Poll::Pending => request.await,
                }
            })
        })
        .collect();
    let all = u32::try_from(n).expect("a test's handful of requests");
    within(PATIENCE, started.acquire_many(all))
        .await
        .expect("the semaphore is never closed")
        .forget();
    requests
}

async fn all_ok(requests: Vec<tokio::task::JoinHandle<Result<String, Error>>>) {
    for result in within(PATIENCE, join_all(requests)).await {
        assert_eq!(result.unwrap().unwrap(), "ok");
    }
}

/// Waits until the pool's stats say `want`.
async fn stats_reach(pool: &Pool, want: impl Fn(&PoolStats) -> bool) -> PoolStats {
    within(PATIENCE, async {
        loop {
            let stats = pool.stats();
            if want(&stats) {
                return stats;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_lets_a_pools_running_and_queued_requests_finish() {
    let gate = Gate::new();
    let server = gated_server(&gate).await;
    let pool = Pool::builder().connections(4).build(server.url()).unwrap();
    let requests = spawn_gets(&pool, "/", 40).await;
    within(PATIENCE, server.wait_for_requests_received(4)).await;
    let stats = stats_reach(&pool, |s| s.pending == 36).await;
    assert_eq!(
        (stats.connected, stats.running, stats.size),
        (4, 4, 40),
        "{stats:?}"
    );

    let closing = tokio::spawn(pool.close());
    // New requests are refused at once; the accepted ones still wait.
    let refused = pool.request(get("/")).await.unwrap_err();
    assert_eq!(refused.code(), "UND_ERR_CLOSED");
    assert!(pool.is_closed());

    for served in 0..40 {
        within(PATIENCE, server.wait_for_requests_received(served + 1)).await;
        gate.open_one();
    }
    all_ok(requests).await;
    within(PATIENCE, closing).await.unwrap();
    assert_eq!(server.requests_served(), 40);
    within(PATIENCE, server.wait_for_open_connections(0)).await;
    let stats = pool.stats();
    assert_eq!((stats.connected, stats.size), (0, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_lets_requests_queued_behind_a_clients_one_connection_finish() {
    let gate = Gate::new();
    let server = gated_server(&gate).await;
    let client = Client::new(server.url()).unwrap();
    let requests = spawn_gets(&client, "/", 5).await;
    within(PATIENCE, server.wait_for_requests_received(1)).await;
    let closing = tokio::spawn(client.close());
    for served in 0..5 {
        within(PATIENCE, server.wait_for_requests_received(served + 1)).await;
        gate.open_one();
    }
    all_ok(requests).await;
    within(PATIENCE, closing).await.unwrap();
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn a_request_called_before_close_finishes_even_if_polled_after() {
    let server = TestServer::http1(undici_test_support::handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    let mut service = client.clone();
    // `call` starts the request; the future is only polled after `close`.
    let pending = tower::Service::call(&mut service, get("/"));
    let closing = client.close();
    let response = within(PATIENCE, pending).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "hello world");
    within(PATIENCE, closing).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_close_lets_queued_requests_of_every_origin_finish() {
    let gate = Gate::new();
    let a = gated_server(&gate).await;
    let b = gated_server(&gate).await;
    let agent = Agent::builder().connections(2).build();
    let mut requests = spawn_gets(&agent, &format!("{}/", a.url()), 10).await;
    requests.extend(spawn_gets(&agent, &format!("{}/", b.url()), 10).await);
    within(PATIENCE, a.wait_for_requests_received(2)).await;
    within(PATIENCE, b.wait_for_requests_received(2)).await;
    let closing = tokio::spawn(agent.close());
    for _ in 0..20 {
        gate.open_one();
    }
    all_ok(requests).await;
    within(PATIENCE, closing).await.unwrap();
    within(PATIENCE, a.wait_for_open_connections(0)).await;
    within(PATIENCE, b.wait_for_open_connections(0)).await;
    assert_eq!(a.requests_served() + b.requests_served(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_ends_running_and_queued_requests_on_every_connection() {
    let gate = Gate::new();
    let a = gated_server(&gate).await;
    let b = gated_server(&gate).await;
    let agent = Agent::builder().connections(3).build();
    let mut requests = spawn_gets(&agent, &format!("{}/", a.url()), 10).await;
    requests.extend(spawn_gets(&agent, &format!("{}/", b.url()), 10).await);
    within(PATIENCE, a.wait_for_requests_received(3)).await;
    within(PATIENCE, b.wait_for_requests_received(3)).await;
    within(PATIENCE, agent.destroy(None)).await;
    for result in within(PATIENCE, join_all(requests)).await {
        let err = result.unwrap().unwrap_err();
        assert_eq!(err.code(), "UND_ERR_DESTROYED", "{err}");
    }
    within(PATIENCE, a.wait_for_open_connections(0)).await;
    within(PATIENCE, b.wait_for_open_connections(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_and_destroy_reach_http2_streams_in_flight() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let gate = Gate::new();
    let passes = gate.clone();
    let server = TestServer::tls(
        move |_req| {
            let gate = passes.clone();
            async move {
                gate.pass().await;
                http::Response::new(body::full("ok"))
            }
        },
        pki.server_config(&cert, &[b"h2"]),
    )
    .await;
    let url = format!("{}/", server.url_with_host("localhost"));
    let connect = ConnectOptions::new().ca(pki.ca_pem());

    let pool = Pool::builder()
        .connect(connect.clone())
        .build(url.as_str())
        .unwrap();
    let requests = spawn_gets(&pool, &url, 8).await;
    within(PATIENCE, server.wait_for_requests_received(8)).await;
    let closing = tokio::spawn(pool.close());
    for _ in 0..8 {
        gate.open_one();
    }
    all_ok(requests).await;
    within(PATIENCE, closing).await.unwrap();
    within(PATIENCE, server.wait_for_open_connections(0)).await;
    assert_eq!(server.connections_accepted(), 1);

    let pool = Pool::builder()
        .connect(connect)
        .build(url.as_str())
        .unwrap();
    let requests = spawn_gets(&pool, &url, 8).await;
    within(PATIENCE, server.wait_for_requests_received(16)).await;
    within(PATIENCE, pool.destroy(None)).await;
    for result in within(PATIENCE, join_all(requests)).await {
        assert_eq!(result.unwrap().unwrap_err().code(), "UND_ERR_DESTROYED");
    }
    within(PATIENCE, server.wait_for_open_connections(0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_balanced_pool_close_and_destroy_reach_every_upstream() {
    let gate = Gate::new();
    let a = gated_server(&gate).await;
    let b = gated_server(&gate).await;
    let pool = BalancedPool::builder()
        .connections(2)
        .build([a.url(), b.url()])
        .unwrap();
    let requests = spawn_gets(&pool, "/", 8).await;
    within(PATIENCE, a.wait_for_requests_received(2)).await;
    within(PATIENCE, b.wait_for_requests_received(2)).await;
    let closing = tokio::spawn(pool.close());
    for _ in 0..8 {
        gate.open_one();
    }
    all_ok(requests).await;
    within(PATIENCE, closing).await.unwrap();
    within(PATIENCE, a.wait_for_open_connections(0)).await;
    within(PATIENCE, b.wait_for_open_connections(0)).await;
    assert_eq!(
        pool.request(get("/")).await.unwrap_err().code(),
        "UND_ERR_CLOSED"
    );

    let pool = BalancedPool::new([a.url(), b.url()]).unwrap();
    let requests = spawn_gets(&pool, "/", 4).await;
    within(PATIENCE, a.wait_for_requests_received(6)).await;
    within(PATIENCE, b.wait_for_requests_received(6)).await;
    within(PATIENCE, pool.destroy(None)).await;
    for result in within(PATIENCE, join_all(requests)).await {
        assert_eq!(result.unwrap().unwrap_err().code(), "UND_ERR_DESTROYED");
    }
    within(PATIENCE, a.wait_for_open_connections(0)).await;
    within(PATIENCE, b.wait_for_open_connections(0)).await;
}

#[tokio::test]
async fn preconnect_opens_the_connection_and_answers_once_it_is_open() {
    let server = TestServer::http1(undici_test_support::handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    // Two callers at once share the one connection being opened.
    let (first, second) = tokio::join!(client.preconnect(), client.preconnect());
    first.unwrap();
    second.unwrap();
    assert!(client.stats().connected);
    assert_eq!(server.connections_accepted(), 1);
    client.preconnect().await.unwrap();
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn preconnect_fails_on_a_closed_client() {
    let server = TestServer::http1(undici_test_support::handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    client.close().await;
    let err = client.preconnect().await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_CLOSED");
}

#[tokio::test]
async fn preconnect_ends_when_the_client_is_destroyed_while_connecting() {
    let (addr, _blackhole) = undici_test_support::unresponsive_listener();
    let client = Client::builder()
        .connect_timeout(Duration::from_secs(60))
        .build(format!("http://{addr}"))
        .unwrap();
    let connecting = tokio::spawn({
        let client = client.clone();
        async move { client.preconnect().await }
    });
    tokio::task::yield_now().await;
    client.destroy(None).await;
    let err = within(PATIENCE, connecting).await.unwrap().unwrap_err();
    assert_eq!(err.code(), "UND_ERR_DESTROYED");
}

#[tokio::test]
async fn preconnect_reports_the_connect_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(format!("http://{addr}")).unwrap();
    let err = within(PATIENCE, client.preconnect()).await.unwrap_err();
    assert_eq!(err.code(), "ECONNREFUSED", "{err}");
}
