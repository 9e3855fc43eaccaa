//! Plain TCP: timeouts, refusals, local addresses, socket options and name
//! resolution, against real loopback sockets.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use undici_connectors::{build_connector, ConnectOptions, Destination, Name, Resolver, Scheme};
use undici_test_support::{handlers, unresponsive_listener, TestServer};

fn http(addr: SocketAddr) -> Destination {
    Destination::new(Scheme::Http, addr.ip().to_string(), addr.port())
}

/// A loopback port where nothing listens: bound, then released.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    drop(listener);
    addr
}

#[tokio::test]
async fn connects_and_exchanges_bytes_over_plain_tcp() {
    let server = TestServer::http1(handlers::hello).await;
    let connector = build_connector(ConnectOptions::new()).unwrap();

    let mut connection = connector.connect(http(server.addr())).await.unwrap();

    let info = connection.info().clone();
    assert_eq!(info.remote_addr(), Some(server.addr()));
    assert!(info.tls().is_none());
    assert_eq!(info.alpn(), None);
    let response = common::get(&mut connection, "127.0.0.1").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "hello world");
    assert_eq!(server.peer_addrs(), vec![info.local_addr().unwrap()]);
}

#[tokio::test]
async fn connect_timeout_lists_the_address_tried() {
    let (dead, _guard) = unresponsive_listener();
    let connector =
        build_connector(ConnectOptions::new().timeout(Duration::from_millis(200))).unwrap();

    let started = Instant::now();
    let err = connector.connect(http(dead)).await.unwrap_err();
    let elapsed = started.elapsed();

    assert_eq!(err.code(), "UND_ERR_CONNECT_TIMEOUT");
    assert!(err.is_timeout());
    let message = err.to_string();
    assert!(message.contains(&dead.to_string()), "{message}");
    assert!(message.contains("200ms"), "{message}");
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_closed_port_is_refused() {
    let addr = closed_port();
    let connector = build_connector(ConnectOptions::new()).unwrap();

    let err = connector.connect(http(addr)).await.unwrap_err();

    assert_eq!(err.code(), "ECONNREFUSED");
    assert!(err.is_refused());
    assert_eq!(err.remote_addr(), Some(addr));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    assert_eq!(
        err.io_error().map(std::io::Error::kind),
        Some(std::io::ErrorKind::ConnectionRefused)
    );
}

#[tokio::test]
async fn a_refused_connect_carries_the_local_and_remote_address() {
    let addr = closed_port();
    let local = second_loopback();
    let connector = build_connector(ConnectOptions::new().local_address(local)).unwrap();

    let err = connector.connect(http(addr)).await.unwrap_err();

    assert_eq!(err.code(), "ECONNREFUSED");
    assert_eq!(err.remote_addr(), Some(addr));
    // The socket was bound before connecting, so it has a local address
    // with a port of its own.
    let local_addr = err
        .local_addr()
        .expect("a bound socket has a local address");
    assert_eq!(local_addr.ip(), local);
    assert_ne!(local_addr.port(), 0);
    assert!(
        err.to_string()
            .ends_with(&format!(" (local {local_addr}, remote {addr})")),
        "{err}"
    );
}

/// Linux routes all of 127.0.0.0/8 to the loopback interface, so binding
/// 127.0.0.2 shows that the local address was used (127.0.0.1 would be
/// chosen anyway). Elsewhere only 127.0.0.1 is sure to exist.
fn second_loopback() -> IpAddr {
    if cfg!(target_os = "linux") {
        IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

#[tokio::test]
async fn binds_the_local_address() {
    let server = TestServer::http1(handlers::hello).await;
    let local = second_loopback();
    let connector = build_connector(ConnectOptions::new().local_address(local)).unwrap();

    let connection = connector.connect(http(server.addr())).await.unwrap();
    server.wait_for_connections(1).await;

    let local_addr = connection.info().local_addr().unwrap();
    assert_eq!(local_addr.ip(), local);
    assert_eq!(server.peer_addrs(), vec![local_addr]);
}

#[tokio::test]
async fn the_destination_local_address_overrides_the_connector() {
    let server = TestServer::http1(handlers::hello).await;
    let local = second_loopback();
    let connector =
        build_connector(ConnectOptions::new().local_address(IpAddr::V6(Ipv6Addr::LOCALHOST)))
            .unwrap();

    let connection = connector
        .connect(http(server.addr()).local_address(local))
        .await
        .unwrap();

    assert_eq!(connection.info().local_addr().unwrap().ip(), local);
}

#[tokio::test]
async fn a_local_address_of_the_other_family_is_an_invalid_argument() {
    let server = TestServer::http1(handlers::hello).await;
    let connector =
        build_connector(ConnectOptions::new().local_address(IpAddr::V6(Ipv6Addr::LOCALHOST)))
            .unwrap();

    let err = connector.connect(http(server.addr())).await.unwrap_err();

    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    assert!(err.to_string().contains("::1"), "{err}");
    assert_eq!(server.connections_accepted(), 0);
}

#[tokio::test]
async fn socket_options_do_not_prevent_connecting() {
    let server = TestServer::http1(handlers::hello).await;
    // The options as the client socket has them are read back in the unit
    // tests of `tcp.rs`; this shows that a connection with them works.
    let options = ConnectOptions::new()
        .type_of_service(0x10)
        .no_delay(false)
        .keep_alive(true)
        .keep_alive_initial_delay(Duration::from_secs(5));
    let connector = build_connector(options).unwrap();

    let mut connection = connector.connect(http(server.addr())).await.unwrap();

    let response = common::get(&mut connection, "127.0.0.1").await.unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn keep_alive_delays_sockets_cannot_take_are_rejected_by_build_connector() {
    // Linux refuses a zero TCP_KEEPIDLE, so this would fail every connect.
    for delay in [Duration::ZERO, Duration::from_millis(500)] {
        let err =
            build_connector(ConnectOptions::new().keep_alive_initial_delay(delay)).unwrap_err();
        assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
        assert!(
            err.to_string().contains("keep_alive_initial_delay"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn keep_alive_delays_at_both_ends_of_the_range_connect() {
    let server = TestServer::http1(handlers::hello).await;
    for delay in [Duration::from_secs(1), Duration::from_secs(32767)] {
        let options = ConnectOptions::new().keep_alive_initial_delay(delay);
        let connector = build_connector(options).unwrap();
        connector.connect(http(server.addr())).await.unwrap();
    }
    let off = ConnectOptions::new()
        .keep_alive(false)
        .keep_alive_initial_delay(Duration::ZERO);
    let connector = build_connector(off).unwrap();
    connector.connect(http(server.addr())).await.unwrap();
}

#[tokio::test]
async fn a_timeout_of_duration_max_is_no_deadline() {
    let server = TestServer::http1(handlers::hello).await;
    let connector = build_connector(ConnectOptions::new().timeout(Duration::MAX)).unwrap();

    let mut connection = connector.connect(http(server.addr())).await.unwrap();

    let response = common::get(&mut connection, "127.0.0.1").await.unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_custom_resolver_is_asked_for_the_host() {
    let server = TestServer::http1(handlers::hello).await;
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = asked.clone();
    let resolver = Resolver::new(tower::service_fn(move |name: Name| {
        seen.lock().unwrap().push(name.to_string());
        async move {
            match name.as_str() {
                "test.invalid" => Ok(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]),
                other => Err(std::io::Error::other(format!("{other} is not known here"))),
            }
        }
    }));
    let connector = build_connector(ConnectOptions::new().resolver(resolver)).unwrap();

    let mut connection = connector
        .connect(Destination::new(
            Scheme::Http,
            "test.invalid",
            server.addr().port(),
        ))
        .await
        .unwrap();
    let response = common::get(&mut connection, "test.invalid").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(connection.info().remote_addr(), Some(server.addr()));

    let err = connector
        .connect(Destination::new(Scheme::Http, "other.invalid", 80))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ENOTFOUND");
    assert!(err.is_dns());
    assert!(err.to_string().contains("other.invalid"), "{err}");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("other.invalid is not known here"));
    assert_eq!(*asked.lock().unwrap(), ["test.invalid", "other.invalid"]);
}

#[tokio::test]
async fn a_resolver_that_finds_nothing_is_enotfound() {
    let resolver = Resolver::new(tower::service_fn(|_name: Name| async {
        Ok::<_, std::io::Error>(Vec::<IpAddr>::new())
    }));
    let connector = build_connector(ConnectOptions::new().resolver(resolver)).unwrap();

    let err = connector
        .connect(Destination::new(Scheme::Http, "empty.invalid", 80))
        .await
        .unwrap_err();

    assert_eq!(err.code(), "ENOTFOUND");
}

#[tokio::test]
async fn a_name_the_resolver_cannot_find_is_enotfound() {
    // A resolver that knows no name, as getaddrinfo answers EAI_NONAME:
    // no test asks the system resolver, which may reach a DNS server.
    let resolver = Resolver::new(tower::service_fn(|name: Name| async move {
        Err::<Vec<IpAddr>, _>(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{name}: name not found"),
        ))
    }));
    let connector = build_connector(ConnectOptions::new().resolver(resolver)).unwrap();

    let err = connector
        .connect(Destination::new(Scheme::Http, "nowhere.test", 80))
        .await
        .unwrap_err();

    assert_eq!(err.code(), "ENOTFOUND");
    assert!(err.is_dns());
    assert_eq!(err.to_string(), "getaddrinfo ENOTFOUND nowhere.test");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(cause.as_deref(), Some("nowhere.test: name not found"));
    assert_eq!(err.remote_addr(), None);
}

#[tokio::test]
async fn ip_literals_are_not_resolved() {
    let server = TestServer::http1(handlers::hello).await;
    let resolver = Resolver::new(tower::service_fn(|name: Name| async move {
        Err::<Vec<IpAddr>, _>(std::io::Error::other(format!("asked to resolve {name}")))
    }));
    let connector = build_connector(ConnectOptions::new().resolver(resolver)).unwrap();

    let connection = connector.connect(http(server.addr())).await.unwrap();

    assert_eq!(connection.info().remote_addr(), Some(server.addr()));
}
