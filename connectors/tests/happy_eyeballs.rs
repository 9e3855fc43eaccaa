//! Happy eyeballs (RFC 8305) over pre-resolved addresses: a hanging first
//! address, a refused one, and attempts one after the other.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use undici_connectors::{build_connector, ConnectOptions, Destination, Scheme};
use undici_test_support::{handlers, unresponsive_listener, TestServer};

fn to(addresses: Vec<SocketAddr>) -> Destination {
    Destination::new(Scheme::Http, "localhost", addresses[0].port()).addresses(addresses)
}

/// `n` distinct loopback ports where nothing listens: bound together (so
/// they differ), then released.
fn closed_ports(n: usize) -> Vec<SocketAddr> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("a bound listener has an address"))
        .collect()
}

fn closed_port() -> SocketAddr {
    closed_ports(1)[0]
}

#[tokio::test]
async fn a_hanging_address_falls_back_to_the_next_after_the_attempt_delay() {
    let (dead, _guard) = unresponsive_listener();
    let live = TestServer::http1(handlers::hello).await;
    let connector = build_connector(ConnectOptions::new().timeout(Duration::from_secs(5))).unwrap();

    let started = Instant::now();
    let connection = connector
        .connect(to(vec![dead, live.addr()]))
        .await
        .unwrap();
    let elapsed = started.elapsed();

    assert_eq!(connection.info().remote_addr(), Some(live.addr()));
    // The second attempt starts once the first had its 250 ms head start,
    // long before the 5 s connect timeout.
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn the_attempt_delay_is_configurable() {
    let (dead, _guard) = unresponsive_listener();
    let live = TestServer::http1(handlers::hello).await;
    let options = ConnectOptions::new()
        .timeout(Duration::from_secs(5))
        .auto_select_family_attempt_timeout(Duration::from_millis(600));
    let connector = build_connector(options).unwrap();

    let started = Instant::now();
    let connection = connector
        .connect(to(vec![dead, live.addr()]))
        .await
        .unwrap();
    let elapsed = started.elapsed();

    assert_eq!(connection.info().remote_addr(), Some(live.addr()));
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
}

#[tokio::test]
async fn without_auto_select_family_a_hanging_address_times_out() {
    let (dead, _guard) = unresponsive_listener();
    let live = TestServer::http1(handlers::hello).await;
    let options = ConnectOptions::new()
        .timeout(Duration::from_millis(400))
        .auto_select_family(false);
    let connector = build_connector(options).unwrap();

    let err = connector
        .connect(to(vec![dead, live.addr()]))
        .await
        .unwrap_err();

    assert_eq!(err.code(), "UND_ERR_CONNECT_TIMEOUT");
    let message = err.to_string();
    assert!(message.contains(&dead.to_string()), "{message}");
    assert!(!message.contains(&live.addr().to_string()), "{message}");
    assert_eq!(live.connections_accepted(), 0);
}

#[tokio::test]
async fn a_refused_address_falls_through_at_once() {
    let refused = closed_port();
    let live = TestServer::http1(handlers::hello).await;
    // An attempt delay far beyond the test's bound: only the failure of the
    // first attempt can start the second one in time.
    let options = ConnectOptions::new()
        .timeout(Duration::from_secs(30))
        .auto_select_family_attempt_timeout(Duration::from_secs(20));
    let connector = build_connector(options).unwrap();

    let started = Instant::now();
    let connection = connector
        .connect(to(vec![refused, live.addr()]))
        .await
        .unwrap();

    assert_eq!(connection.info().remote_addr(), Some(live.addr()));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn one_after_the_other_a_refused_address_falls_through() {
    let refused = closed_port();
    let live = TestServer::http1(handlers::hello).await;
    let options = ConnectOptions::new()
        .timeout(Duration::from_secs(5))
        .auto_select_family(false);
    let connector = build_connector(options).unwrap();

    let connection = connector
        .connect(to(vec![refused, live.addr()]))
        .await
        .unwrap();

    assert_eq!(connection.info().remote_addr(), Some(live.addr()));
}

#[tokio::test]
async fn every_address_refused_is_the_last_refusal() {
    let ports = closed_ports(2);
    let (first, second) = (ports[0], ports[1]);
    let connector = build_connector(ConnectOptions::new()).unwrap();

    let err = connector
        .connect(to(vec![first, second]))
        .await
        .unwrap_err();

    assert_eq!(err.code(), "ECONNREFUSED");
    assert_eq!(err.remote_addr(), Some(second));
}

#[tokio::test]
async fn a_timeout_lists_every_address_tried() {
    let (first, _first_guard) = unresponsive_listener();
    let (second, _second_guard) = unresponsive_listener();
    let options = ConnectOptions::new()
        .timeout(Duration::from_millis(500))
        .auto_select_family_attempt_timeout(Duration::from_millis(100));
    let connector = build_connector(options).unwrap();

    let err = connector
        .connect(to(vec![first, second]))
        .await
        .unwrap_err();

    assert_eq!(err.code(), "UND_ERR_CONNECT_TIMEOUT");
    let message = err.to_string();
    assert!(message.contains(&format!("{first}, {second}")), "{message}");
}
