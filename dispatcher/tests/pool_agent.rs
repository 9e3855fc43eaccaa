//! Pool, RoundRobinPool, Agent and BalancedPool against socket-counting
//! servers.

mod common;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{get, get_text, read_text, within, PATIENCE};
use futures_util::future::join_all;
use tower::ServiceExt;
use undici_dispatcher::connectors::ConnectOptions;
use undici_dispatcher::{
    Agent, Balance, BalancedPool, Body, Dispatcher, DispatcherExt, EventKind, Pool, RequestOptions,
    RoundRobinPool,
};
use undici_test_support::{body, handlers, Gate, RawServer, TestPki, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connections_limit_holds_under_a_thousand_concurrent_requests() {
    let server = TestServer::http1(handlers::hello).await;
    let pool = Pool::builder().connections(10).build(server.url()).unwrap();
    let requests = (0..1000).map(|_| {
        let pool = pool.clone();
        async move { get_text(&pool, "/").await }
    });
    let results = within(Duration::from_secs(30), join_all(requests)).await;
    assert!(results
        .iter()
        .all(|r| matches!(r.as_deref(), Ok("hello world"))));
    assert!(
        server.max_open_connections() <= 10,
        "{}",
        server.max_open_connections()
    );
    assert_eq!(server.requests_served(), 1000);
    let stats = pool.stats();
    assert_eq!((stats.running, stats.pending, stats.size), (0, 0, 0));
    assert!(
        stats.connected <= 10 && stats.free == stats.connected,
        "{stats:?}"
    );
}

/// A server answering "ok" that logs each request's path as it arrives.
async fn path_logging_server() -> (TestServer, Arc<Mutex<Vec<String>>>) {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let log = arrivals.clone();
    let server = TestServer::http1(move |req| {
        log.lock().unwrap().push(req.uri().path().to_owned());
        async { http::Response::new(body::full("ok")) }
    })
    .await;
    (server, arrivals)
}

#[tokio::test]
async fn the_queue_drains_in_fifo_order() {
    let (server, arrivals) = path_logging_server().await;
    let pool = Pool::builder().connections(1).build(server.url()).unwrap();
    // join_all polls in order: each request takes its place in line in the
    // order it was made.
    let requests = (0..50).map(|i| {
        let pool = pool.clone();
        async move { get_text(&pool, &format!("/{i}")).await }
    });
    for result in within(PATIENCE, join_all(requests)).await {
        result.unwrap();
    }
    let expected: Vec<String> = (0..50).map(|i| format!("/{i}")).collect();
    assert_eq!(*arrivals.lock().unwrap(), expected);
}

/// A pool of one connection to a server that logs the paths it serves.
async fn one_connection_pool() -> (TestServer, Arc<Mutex<Vec<String>>>, Pool) {
    let (server, arrivals) = path_logging_server().await;
    let pool = Pool::builder().connections(1).build(server.url()).unwrap();
    (server, arrivals, pool)
}

/// Polls `second` first: as with undici, `first`, made first, must still
/// be served first. Answers both outcomes.
async fn served_in_call_order<A: Future, B: Future>(
    arrivals: &Mutex<Vec<String>>,
    first: A,
    second: B,
) -> (A::Output, B::Output) {
    let (second, first) = within(PATIENCE, futures_util::future::join(second, first)).await;
    assert_eq!(*arrivals.lock().unwrap(), ["/first", "/second"]);
    (first, second)
}

#[tokio::test]
async fn request_takes_its_place_in_line_when_it_is_made() {
    let (_server, arrivals, pool) = one_connection_pool().await;
    let first = read_text(pool.request(get("/first")));
    let second = read_text(pool.request(get("/second")));
    let (first, second) = served_in_call_order(&arrivals, first, second).await;
    assert_eq!(
        (first.unwrap(), second.unwrap()),
        ("ok".into(), "ok".into())
    );
}

#[tokio::test]
async fn stream_takes_its_place_in_line_when_it_is_made() {
    let (_server, arrivals, pool) = one_connection_pool().await;
    let sink = |_: &_| Ok::<_, std::io::Error>(tokio::io::sink());
    let first = pool.stream(get("/first"), sink);
    let second = pool.stream(get("/second"), sink);
    let (first, second) = served_in_call_order(&arrivals, first, second).await;
    first.unwrap();
    second.unwrap();
}

#[tokio::test]
async fn upgrade_takes_its_place_in_line_when_it_is_made() {
    let (_server, arrivals, pool) = one_connection_pool().await;
    let first = pool.upgrade(get("/first"), Some("echo"));
    let second = pool.upgrade(get("/second"), Some("echo"));
    let (first, second) = served_in_call_order(&arrivals, first, second).await;
    // The server answers 200, not 101: each is refused ("bad upgrade").
    assert_eq!(first.unwrap_err().code(), "UND_ERR_SOCKET");
    assert_eq!(second.unwrap_err().code(), "UND_ERR_SOCKET");
}

/// Keeps whether the exchange ended well.
#[derive(Default)]
struct Outcome {
    ended: bool,
}

impl undici_dispatcher::Handler for Outcome {
    fn on_response_end(&mut self, _: &undici_dispatcher::Controller, _: &http::HeaderMap) {
        self.ended = true;
    }
}

#[tokio::test]
async fn dispatch_takes_its_place_in_line_when_it_is_made() {
    let (_server, arrivals, pool) = one_connection_pool().await;
    let first = pool.dispatch(get("/first"), Outcome::default());
    let second = pool.dispatch(get("/second"), Outcome::default());
    let (first, second) = served_in_call_order(&arrivals, first, second).await;
    assert!(first.ended && second.ended);
}

#[tokio::test]
async fn client_ttl_retires_connections() {
    let server = TestServer::http1(handlers::hello).await;
    let pool = Pool::builder()
        .client_ttl(Duration::from_millis(50))
        .build(server.url())
        .unwrap();
    get_text(&pool, "/").await.unwrap();
    // The connection's lifetime is what is tested: let it pass.
    tokio::time::sleep(Duration::from_millis(80)).await;
    get_text(&pool, "/").await.unwrap();
    assert_eq!(server.connections_accepted(), 2);
    within(PATIENCE, server.wait_for_open_connections(1)).await;
}

#[tokio::test]
async fn round_robin_cycles_over_its_connections() {
    let server = TestServer::http1(handlers::echo).await;
    let pool = RoundRobinPool::builder()
        .connections(3)
        .build(server.url())
        .unwrap();
    // Open three connections with three concurrent requests.
    let warmup = (0..3).map(|_| {
        let pool = pool.clone();
        async move { get_text(&pool, "/").await }
    });
    for result in join_all(warmup).await {
        result.unwrap();
    }
    assert_eq!(server.connections_accepted(), 3);
    // Sequential requests now visit every connection in turn.
    for _ in 0..6 {
        get_text(&pool, "/").await.unwrap();
    }
    let per_connection: Vec<usize> = server.connections().iter().map(|c| c.requests).collect();
    assert_eq!(per_connection, vec![3, 3, 3], "{per_connection:?}");
}

#[tokio::test]
async fn a_pool_reuses_the_warmest_connection() {
    let server = TestServer::http1(handlers::echo).await;
    let pool = Pool::builder().connections(3).build(server.url()).unwrap();
    let warmup = (0..3).map(|_| {
        let pool = pool.clone();
        async move { get_text(&pool, "/").await }
    });
    for result in join_all(warmup).await {
        result.unwrap();
    }
    for _ in 0..6 {
        get_text(&pool, "/").await.unwrap();
    }
    let mut per_connection: Vec<usize> = server.connections().iter().map(|c| c.requests).collect();
    per_connection.sort();
    assert_eq!(per_connection, vec![1, 1, 7], "{per_connection:?}");
}

#[tokio::test]
async fn an_agent_routes_tls_h2c_and_unix_origins() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let tls = TestServer::tls(
        handlers::echo,
        pki.server_config(&cert, &[b"h2", b"http/1.1"]),
    )
    .await;
    let h2c = TestServer::h2c(handlers::echo).await;
    let unix = TestServer::unix(handlers::echo).await;
    let socket = unix.socket_path().unwrap().to_owned();
    let h2c_origin = h2c.url();
    let agent = Agent::builder()
        .connect(ConnectOptions::new().ca(pki.ca_pem()))
        .factory(move |origin, builder| {
            if origin.to_string() == h2c_origin {
                builder.h2c(true).build(origin)
            } else if origin.host() == "unix.local" {
                builder.socket_path(socket.clone()).build(origin)
            } else {
                builder.build(origin)
            }
        })
        .build();
    let response = agent
        .request(get(&format!("{}/secure", tls.url_with_host("localhost"))))
        .await
        .unwrap();
    assert_eq!(response.headers()["x-version"], "HTTP/2.0");
    let response = agent
        .request(get(&format!("{}/plain", h2c.url())))
        .await
        .unwrap();
    assert_eq!(response.headers()["x-version"], "HTTP/2.0");
    let response = agent
        .request(get("http://unix.local/socket"))
        .await
        .unwrap();
    assert_eq!(response.headers()["x-path"], "/socket");
    assert_eq!(agent.origins().len(), 3);
    let stats = agent.stats();
    assert_eq!(stats.len(), 3);
    assert!(stats.values().all(|s| s.connected == 1), "{stats:?}");
}

#[tokio::test]
async fn an_agent_needs_absolute_urls() {
    let agent = Agent::new();
    let err = agent.request(get("/relative")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
}

#[tokio::test]
async fn max_origins_holds() {
    let a = TestServer::http1(handlers::hello).await;
    let b = TestServer::http1(handlers::hello).await;
    let agent = Agent::builder().max_origins(1).build();
    get_text(&agent, &format!("{}/", a.url())).await.unwrap();
    let err = agent
        .request(get(&format!("{}/", b.url())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_MAX_ORIGINS_REACHED");
    get_text(&agent, &format!("{}/", a.url())).await.unwrap();
}

#[tokio::test]
async fn http1_only_requests_get_their_own_pool() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::tls(
        handlers::echo,
        pki.server_config(&cert, &[b"h2", b"http/1.1"]),
    )
    .await;
    let agent = Agent::builder()
        .connect(ConnectOptions::new().ca(pki.ca_pem()))
        .build();
    let url = format!("{}/", server.url_with_host("localhost"));
    let h2 = agent.request(get(&url)).await.unwrap();
    assert_eq!(h2.version(), http::Version::HTTP_2);
    let request = http::Request::get(&url)
        .extension(RequestOptions::new().allow_h2(false))
        .body(Body::empty())
        .unwrap();
    let h1 = agent.request(request).await.unwrap();
    assert_eq!(h1.version(), http::Version::HTTP_11);
    let keys: Vec<String> = agent.stats().into_keys().collect();
    assert!(keys.iter().any(|k| k.ends_with("#http1-only")), "{keys:?}");
}

/// Connections open at once on the client's side: the server sees a
/// close only when it next reads, so its own count can run one ahead
/// while a closed socket's unit already opens another.
#[derive(Default)]
struct Live {
    now: AtomicUsize,
    max: AtomicUsize,
}

/// A connection that counts itself in `Live` until it is dropped.
struct Counted {
    inner: undici_dispatcher::connectors::Connection,
    live: Arc<Live>,
}

impl Counted {
    fn new(inner: undici_dispatcher::connectors::Connection, live: Arc<Live>) -> Self {
        let now = live.now.fetch_add(1, Ordering::SeqCst) + 1;
        live.max.fetch_max(now, Ordering::SeqCst);
        Counted { inner, live }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.live.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_total_connections_holds_across_origins() {
    // Two origins, one server: `127.0.0.1` and `localhost` name it twice.
    let release = Gate::new();
    let gate = release.clone();
    let seen = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hosts = seen.clone();
    let server = TestServer::http1(move |req: http::Request<_>| {
        let (gate, hosts) = (gate.clone(), hosts.clone());
        if let Some(host) = req.headers().get(http::header::HOST) {
            let host = host.to_str().unwrap_or_default().to_owned();
            hosts.lock().unwrap().push(host);
        }
        async move {
            gate.pass().await;
            http::Response::new(body::full("ok"))
        }
    })
    .await;
    let port = server.addr().port();
    let live = Arc::new(Live::default());
    let counting = live.clone();
    let connector = undici_dispatcher::connectors::build_connector(ConnectOptions::new())
        .unwrap()
        .map_response(move |connection| {
            let info = connection.info().clone();
            undici_dispatcher::connectors::Connection::new(
                Counted::new(connection, counting.clone()),
                info,
            )
        });
    let agent = Agent::builder()
        .max_total_connections(2)
        .connector(connector)
        .build();
    let urls = [
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    ];
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let (agent, url) = (agent.clone(), urls[i % 2].clone());
            tokio::spawn(async move { get_text(&agent, &url).await })
        })
        .collect();
    for served in 0..20 {
        within(PATIENCE, server.wait_for_requests_received(served + 1)).await;
        release.open_one();
    }
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "ok");
    }
    let max = live.max.load(Ordering::SeqCst);
    assert!(max <= 2, "{max} connections open at once");
    // Both origins were served, through the same two sockets' worth.
    let hosts = seen.lock().unwrap().clone();
    assert!(
        hosts.iter().any(|h| h.starts_with("127.0.0.1")),
        "{hosts:?}"
    );
    assert!(
        hosts.iter().any(|h| h.starts_with("localhost")),
        "{hosts:?}"
    );
}

#[tokio::test]
async fn an_agent_reemits_events_with_itself_in_front() {
    let server = TestServer::http1(handlers::hello).await;
    let agent = Agent::new();
    let mut events = agent.events();
    get_text(&agent, &format!("{}/", server.url()))
        .await
        .unwrap();
    let connect = within(PATIENCE, events.next_of(EventKind::Connect))
        .await
        .unwrap();
    let kinds: Vec<&str> = connect.targets.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, vec!["Agent", "Pool"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_reemits_the_drain_of_its_pool() {
    let gate = Gate::new();
    let server = gated(&gate).await;
    let agent = Agent::builder().connections(1).build();
    let mut events = agent.events();
    let url = format!("{}/", server.url());
    let requests: Vec<_> = (0..2)
        .map(|_| {
            let agent = agent.clone();
            let url = url.clone();
            tokio::spawn(async move { get_text(&agent, &url).await })
        })
        .collect();
    within(PATIENCE, server.wait_for_requests_received(1)).await;
    gate.open_one();
    gate.open_one();
    let drain = within(PATIENCE, events.next_of(EventKind::Drain))
        .await
        .unwrap();
    let kinds: Vec<&str> = drain.targets.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, vec!["Agent", "Pool"]);
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "ok");
    }
}

#[tokio::test]
async fn close_and_destroy_reach_every_origin() {
    let a = TestServer::http1(handlers::hello).await;
    let b = TestServer::http1(handlers::hello).await;
    let agent = Agent::new();
    get_text(&agent, &format!("{}/", a.url())).await.unwrap();
    get_text(&agent, &format!("{}/", b.url())).await.unwrap();
    within(PATIENCE, agent.close()).await;
    within(PATIENCE, a.wait_for_open_connections(0)).await;
    within(PATIENCE, b.wait_for_open_connections(0)).await;
    let err = agent
        .request(get(&format!("{}/", a.url())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_CLOSED");

    let agent = Agent::new();
    get_text(&agent, &format!("{}/", a.url())).await.unwrap();
    get_text(&agent, &format!("{}/", b.url())).await.unwrap();
    within(PATIENCE, agent.destroy(None)).await;
    within(PATIENCE, a.wait_for_open_connections(0)).await;
    within(PATIENCE, b.wait_for_open_connections(0)).await;
    let err = agent
        .request(get(&format!("{}/", a.url())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_DESTROYED");
}

#[tokio::test]
async fn a_balanced_pool_without_upstreams_fails_clearly() {
    let pool = BalancedPool::new(Vec::<String>::new()).unwrap();
    let err = pool.request(get("/")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_BPL_MISSING_UPSTREAM");
}

#[tokio::test]
async fn a_balanced_pool_spreads_requests_and_manages_upstreams() {
    let a = TestServer::http1(handlers::hello).await;
    let b = TestServer::http1(handlers::hello).await;
    let pool = BalancedPool::new([a.url(), b.url()]).unwrap();
    for _ in 0..20 {
        get_text(&pool, "/").await.unwrap();
    }
    assert_eq!(a.requests_served(), 10);
    assert_eq!(b.requests_served(), 10);
    assert_eq!(pool.upstreams().len(), 2);
    assert!(pool.get_upstream(a.url()).is_some());
    pool.add_upstream(a.url()).unwrap();
    assert_eq!(pool.upstreams().len(), 2);
    pool.remove_upstream(b.url()).unwrap();
    for _ in 0..5 {
        get_text(&pool, "/").await.unwrap();
    }
    assert_eq!(a.requests_served(), 15);
}

/// An upstream that resets every connection while `broken` is set; it
/// counts the requests it reset and the ones it served.
async fn flaky_upstream(
    broken: Arc<AtomicBool>,
    reset: Arc<AtomicUsize>,
    served: Arc<AtomicUsize>,
) -> RawServer {
    RawServer::new(move |mut conn| {
        let (broken, reset, served) = (broken.clone(), reset.clone(), served.clone());
        async move {
            while conn.read_request().await.is_ok() {
                if broken.load(Ordering::SeqCst) {
                    reset.fetch_add(1, Ordering::SeqCst);
                    let _ = conn.reset();
                    return;
                }
                served.fetch_add(1, Ordering::SeqCst);
                if conn
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    })
    .await
}

async fn load_moves_away_and_back(balance: Balance) {
    let healthy = TestServer::http1(handlers::hello).await;
    let broken = Arc::new(AtomicBool::new(true));
    let flaky_reset = Arc::new(AtomicUsize::new(0));
    let flaky_served = Arc::new(AtomicUsize::new(0));
    let flaky = flaky_upstream(broken.clone(), flaky_reset.clone(), flaky_served.clone()).await;
    let pool = BalancedPool::builder()
        .balance(balance)
        .build([healthy.url(), flaky.url()])
        .unwrap();

    let mut failures = 0;
    for _ in 0..200 {
        if get_text(&pool, "/").await.is_err() {
            failures += 1;
        }
    }
    // While it resets connections the flaky upstream gets few requests.
    assert!(
        failures < 30,
        "{failures} of 200 requests hit the broken upstream"
    );
    // With peak EWMA a healthy upstream that answers at once can keep every
    // request of the 200 (only exploration, one in a hundred here, sends
    // one to the other): go on until the broken one has been tried, so
    // that its weight has something to show.
    for _ in 0..2000 {
        if flaky_reset.load(Ordering::SeqCst) > 0 {
            break;
        }
        let _ = get_text(&pool, "/").await;
    }
    assert!(
        flaky_reset.load(Ordering::SeqCst) > 0,
        "the broken upstream was never tried"
    );
    // The connect and disconnect events reach the weight from the pool's
    // event task, after the request's own penalty.
    eventually("the broken upstream's weight falls", || {
        pool.weight(flaky.url()).unwrap() < 100
    })
    .await;

    // Once it recovers, load comes back: rounds of 16 concurrent requests,
    // so that requests in flight weigh on the cost as well, until it has
    // served 150 (exploration alone would send it one in a hundred, 32 of
    // the 3200 allowed). Peak EWMA counted each failure as a one-second
    // answer, which it forgets over ten seconds: two minutes pass first
    // (the pool is idle, so the clock can jump), and the first request
    // exploration sends it shows it fast again.
    broken.store(false, Ordering::SeqCst);
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(120)).await;
    tokio::time::resume();
    let mut rounds = 0;
    while flaky_served.load(Ordering::SeqCst) <= 150 && rounds < 200 {
        let round = (0..16).map(|_| get_text(&pool, "/"));
        for result in futures_util::future::join_all(round).await {
            result.unwrap();
        }
        rounds += 1;
    }
    let recovered = flaky_served.load(Ordering::SeqCst);
    assert!(
        recovered > 150,
        "the recovered upstream served {recovered} of {}",
        rounds * 16
    );
}

#[tokio::test]
async fn weighted_round_robin_moves_load_away_from_a_resetting_upstream_and_back() {
    load_moves_away_and_back(Balance::WeightedRoundRobin).await;
}

#[tokio::test]
async fn peak_ewma_moves_load_away_from_a_resetting_upstream_and_back() {
    load_moves_away_and_back(Balance::PeakEwma).await;
}

#[tokio::test]
async fn peak_ewma_keeps_a_slow_upstream_before_a_resetting_one() {
    // Resets come back at once. Were they not counted as slow, the
    // resetting upstream would keep its first estimate (1 ms, at most
    // 100 ms once its weight scales it) and look cheaper than one that
    // answers in 120 ms.
    let slow = TestServer::http1(|req| async move {
        tokio::time::sleep(Duration::from_millis(120)).await;
        handlers::hello(req).await
    })
    .await;
    let broken = Arc::new(AtomicBool::new(true));
    let (reset, served) = (Arc::default(), Arc::default());
    let flaky = flaky_upstream(broken, reset, served).await;
    let pool = BalancedPool::builder()
        .balance(Balance::PeakEwma)
        .build([slow.url(), flaky.url()])
        .unwrap();
    let mut failures = 0;
    for _ in 0..8 {
        let round = (0..4).map(|_| get_text(&pool, "/"));
        for result in futures_util::future::join_all(round).await {
            failures += usize::from(result.is_err());
        }
    }
    // The first round finds both alike and splits; after it, only
    // exploration (one in a hundred) sends a request to the resets.
    assert!(
        failures <= 8,
        "{failures} of 32 requests went to the resetting upstream"
    );
    assert!(slow.requests_served() >= 24);
}

/// Waits until `check` holds, yielding in between; fails after PATIENCE.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !check() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(waited.is_ok(), "never happened: {what}");
}

/// A server whose answers each wait for one pass of the gate.
async fn gated(gate: &Gate) -> TestServer {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pools_stats_add_up_at_every_step() {
    let gate = Gate::new();
    let server = gated(&gate).await;
    let pool = Pool::builder().connections(3).build(server.url()).unwrap();
    assert_eq!(pool.stats(), Default::default());
    let requests: Vec<_> = (0..10)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get_text(&pool, "/").await })
        })
        .collect();
    within(PATIENCE, server.wait_for_requests_received(3)).await;
    eventually("7 requests queued", || pool.stats().queued == 7).await;
    let stats = pool.stats();
    assert_eq!(
        (
            stats.connected,
            stats.free,
            stats.running,
            stats.pending,
            stats.size
        ),
        (3, 0, 3, 7, 10),
        "{stats:?}"
    );
    for done in 1..=10 {
        gate.open_one();
        within(PATIENCE, server.wait_for_requests_served(done)).await;
        let left = 10 - done;
        eventually("the stats follow each answer", || {
            let s = pool.stats();
            s.size == left && s.running == left.min(3) && s.queued == left.saturating_sub(3)
        })
        .await;
        let s = pool.stats();
        assert_eq!(s.pending, s.queued, "{s:?}");
        assert_eq!(s.size, s.queued + s.running, "{s:?}");
        assert!(s.connected <= 3 && s.free <= s.connected, "{s:?}");
    }
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "ok");
    }
    let stats = pool.stats();
    assert_eq!(
        (stats.connected, stats.free, stats.size),
        (3, 3, 0),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_names_itself_in_its_events_and_drains_once_a_connection_frees() {
    let gate = Gate::new();
    let server = gated(&gate).await;
    let pool = Pool::builder().connections(1).build(server.url()).unwrap();
    let mut events = pool.events();
    let requests: Vec<_> = (0..2)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get_text(&pool, "/").await })
        })
        .collect();
    let connect = within(PATIENCE, events.next_of(EventKind::Connect))
        .await
        .unwrap();
    assert_eq!(connect.origin, *pool.origin());
    let kinds: Vec<&str> = connect.targets.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, vec!["Pool"]);
    within(PATIENCE, server.wait_for_requests_received(1)).await;
    eventually("the pool is busy", || pool.is_busy()).await;
    gate.open_one();
    gate.open_one();
    let drain = within(PATIENCE, events.next_of(EventKind::Drain))
        .await
        .unwrap();
    assert_eq!(drain.origin, *pool.origin());
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "ok");
    }
}

#[tokio::test]
async fn a_connection_that_ends_leaves_the_pool() {
    let server = TestServer::http1(handlers::hello).await;
    let pool = Pool::new(server.url()).unwrap();
    let mut events = pool.events();
    get_text(&pool, "/").await.unwrap();
    assert_eq!(pool.stats().connected, 1);
    server.close_connections().await;
    within(PATIENCE, events.next_of(EventKind::Disconnect))
        .await
        .unwrap();
    assert_eq!(pool.stats().connected, 0);
    get_text(&pool, "/").await.unwrap();
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test]
async fn balanced_weights_fall_by_the_penalty_and_reset_when_an_upstream_is_added() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let pool = BalancedPool::new([dead.as_str()]).unwrap();
    assert_eq!(pool.weight(dead.as_str()), Some(100));
    // Each refused connect costs the penalty twice: undici's
    // connectionError event, and the failed request (beyond undici).
    for expected in [70, 40, 10, 1, 1] {
        let err = pool.request(get("/")).await.unwrap_err();
        assert_eq!(err.code(), "ECONNREFUSED", "{err}");
        eventually("the weight falls", || {
            pool.weight(dead.as_str()) == Some(expected)
        })
        .await;
    }
    let live = TestServer::http1(handlers::hello).await;
    pool.add_upstream(live.url()).unwrap();
    assert_eq!(pool.weight(dead.as_str()), Some(100));
    assert_eq!(pool.weight(live.url()), Some(100));
}

#[tokio::test]
async fn an_agent_forgets_an_origin_once_its_connections_have_ended() {
    let server = TestServer::http1(handlers::hello).await;
    let agent = Agent::new();
    let url = format!("{}/", server.url());
    get_text(&agent, &url).await.unwrap();
    assert_eq!(agent.origins().len(), 1);
    server.close_connections().await;
    eventually("the idle origin is dropped", || agent.origins().is_empty()).await;
    // A request after that makes the origin's dispatcher anew.
    get_text(&agent, &url).await.unwrap();
    assert_eq!(agent.origins().len(), 1);
}

#[tokio::test]
async fn max_origins_of_zero_means_unlimited_as_connections_does() {
    let a = TestServer::http1(handlers::hello).await;
    let b = TestServer::http1(handlers::hello).await;
    let agent = Agent::builder().max_origins(0).build();
    get_text(&agent, &format!("{}/", a.url())).await.unwrap();
    get_text(&agent, &format!("{}/", b.url())).await.unwrap();
    assert_eq!(agent.origins().len(), 2);
}

#[tokio::test]
async fn a_composed_dispatcher_keeps_close_destroy_and_events_of_its_base() {
    let server = TestServer::http1(handlers::echo).await;
    let base = Pool::new(server.url()).unwrap();
    let tag = tower::util::MapRequestLayer::new(|mut request: undici_dispatcher::Request| {
        request
            .headers_mut()
            .insert("x-layer", http::HeaderValue::from_static("yes"));
        request
    });
    let composed = base.clone().compose(tag);
    let mut events = composed.events();
    let response = composed.request(get("/")).await.unwrap();
    assert_eq!(response.headers()["x-req-x-layer"], "yes");
    response.into_body().dump(1024).await.unwrap();
    within(PATIENCE, events.next_of(EventKind::Connect))
        .await
        .unwrap();
    within(PATIENCE, composed.close()).await;
    assert!(base.is_closed() && composed.is_closed());
    within(PATIENCE, server.wait_for_open_connections(0)).await;

    let base = Pool::new(server.url()).unwrap();
    let composed = base.clone().compose(tower::layer::util::Identity::new());
    within(PATIENCE, composed.destroy(None)).await;
    assert!(base.is_destroyed());
    let err = base.request(get("/")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_DESTROYED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_factory_makes_each_connection_and_the_limit_and_queue_hold() {
    let gate = Gate::new();
    let server = gated(&gate).await;
    let made = Arc::new(AtomicUsize::new(0));
    let count = made.clone();
    let pool = Pool::builder()
        .connections(3)
        .factory(move |origin, client| {
            count.fetch_add(1, Ordering::SeqCst);
            // Each connection's Client, composed with a layer of its own.
            let tag =
                tower::util::MapRequestLayer::new(|mut request: undici_dispatcher::Request| {
                    request
                        .headers_mut()
                        .insert("x-member", http::HeaderValue::from_static("made"));
                    request
                });
            Ok(client.build(origin.clone())?.compose(tag))
        })
        .build(server.url())
        .unwrap();
    let mut events = pool.events();
    let requests: Vec<_> = (0..30)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get_text(&pool, "/").await })
        })
        .collect();
    within(PATIENCE, server.wait_for_requests_received(3)).await;
    eventually("27 requests wait for a member", || pool.queued() == 27).await;
    assert_eq!(made.load(Ordering::SeqCst), 3);
    assert_eq!(pool.members().len(), 3);
    let connect = within(PATIENCE, events.next_of(EventKind::Connect))
        .await
        .unwrap();
    let kinds: Vec<&str> = connect.targets.iter().map(|t| t.kind()).collect();
    assert_eq!(kinds, vec!["Pool", "Client"]);
    for served in 0..30 {
        within(PATIENCE, server.wait_for_requests_received(served + 1)).await;
        gate.open_one();
    }
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "ok");
    }
    assert_eq!(made.load(Ordering::SeqCst), 3);
    assert!(server.max_open_connections() <= 3);
    assert_eq!(server.connections_accepted(), 3);
}

#[tokio::test]
async fn factory_members_share_one_tls_session_cache() {
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
        pki.server_config(&cert, &[b"http/1.1"]),
    )
    .await;
    let pool = Pool::builder()
        .connect(ConnectOptions::new().ca(pki.ca_pem()))
        .factory(|origin, client| client.build(origin.clone()))
        .build(server.url_with_host("localhost"))
        .unwrap();
    gate.open_one();
    assert_eq!(get_text(&pool, "/").await.unwrap(), "ok");
    // The first member is held busy, so the next request makes a second
    // one, whose handshake resumes the first one's session.
    let held = tokio::spawn({
        let pool = pool.clone();
        async move { get_text(&pool, "/").await }
    });
    within(PATIENCE, server.wait_for_requests_received(2)).await;
    gate.open_one();
    let second = tokio::spawn({
        let pool = pool.clone();
        async move { get_text(&pool, "/").await }
    });
    gate.open_one();
    assert_eq!(within(PATIENCE, held).await.unwrap().unwrap(), "ok");
    assert_eq!(within(PATIENCE, second).await.unwrap().unwrap(), "ok");
    assert_eq!(server.connections_accepted(), 2);
    assert_eq!(server.resumed_sessions(), vec![false, true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_factory_pool_close_lets_queued_requests_finish_and_destroy_ends_them() {
    let gate = Gate::new();
    let server = gated(&gate).await;
    let pool = Pool::builder()
        .connections(2)
        .factory(|origin, client| client.build(origin.clone()))
        .build(server.url())
        .unwrap();
    let requests: Vec<_> = (0..6)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get_text(&pool, "/").await })
        })
        .collect();
    within(PATIENCE, server.wait_for_requests_received(2)).await;
    // Every request accepted before close (a spawned task not yet run
    // would rightly be refused).
    eventually("four wait for a member", || pool.queued() == 4).await;
    let closing = tokio::spawn(pool.close());
    assert_eq!(
        pool.request(get("/")).await.unwrap_err().code(),
        "UND_ERR_CLOSED"
    );
    for _ in 0..6 {
        gate.open_one();
    }
    for request in requests {
        assert_eq!(within(PATIENCE, request).await.unwrap().unwrap(), "ok");
    }
    within(PATIENCE, closing).await.unwrap();
    within(PATIENCE, server.wait_for_open_connections(0)).await;

    let pool = Pool::builder()
        .connections(1)
        .factory(|origin, client| client.build(origin.clone()))
        .build(server.url())
        .unwrap();
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move { get_text(&pool, "/").await })
        })
        .collect();
    within(PATIENCE, server.wait_for_requests_received(7)).await;
    eventually("two wait for the member", || pool.queued() == 2).await;
    within(PATIENCE, pool.destroy(None)).await;
    for request in requests {
        let err = within(PATIENCE, request).await.unwrap().unwrap_err();
        assert_eq!(err.code(), "UND_ERR_DESTROYED", "{err}");
    }
}

#[tokio::test]
async fn a_factory_pool_retires_members_past_client_ttl() {
    let server = TestServer::http1(handlers::hello).await;
    let made = Arc::new(AtomicUsize::new(0));
    let count = made.clone();
    let pool = Pool::builder()
        .client_ttl(Duration::from_millis(50))
        .factory(move |origin, client| {
            count.fetch_add(1, Ordering::SeqCst);
            client.build(origin.clone())
        })
        .build(server.url())
        .unwrap();
    get_text(&pool, "/").await.unwrap();
    // The member's lifetime is what is tested: let it pass.
    tokio::time::sleep(Duration::from_millis(80)).await;
    get_text(&pool, "/").await.unwrap();
    assert_eq!(made.load(Ordering::SeqCst), 2);
    assert_eq!(pool.members().len(), 1);
    within(PATIENCE, server.wait_for_open_connections(1)).await;
}

#[tokio::test]
async fn an_agent_routes_every_spelling_of_an_origin_to_one_pool() {
    let server = TestServer::http1(handlers::hello).await;
    let agent = Agent::new();
    // The first spelling makes the pool; the others find it without the
    // fast path (they are not the kept spelling) and the last with it.
    for host in ["LocalHost", "LOCALHOST", "localhost"] {
        let url = format!("{}/", server.url_with_host(host));
        let response = agent.request(get(&url)).await.unwrap();
        assert!(response.status().is_success());
        response.into_body().bytes().await.unwrap();
    }
    assert_eq!(agent.stats().len(), 1, "{:?}", agent.stats().keys());
    assert_eq!(server.connections_accepted(), 1);
}
