//! TLS through rustls against servers with certificates generated at run
//! time: verification failures, SNI, ALPN, resumption, client
//! certificates, and TLS over a stream of the caller's.

mod common;

use std::error::Error as StdError;
use std::time::{Duration, Instant};

use rustls::{AlertDescription, CertificateError};
use tokio::io::AsyncReadExt;
use undici_connectors::{
    build_connector, fingerprint256, ConnectError, ConnectOptions, Connection, Connector,
    Destination, Scheme, TlsFailure,
};
use undici_test_support::certs::{CertifiedKey, TestPki};
use undici_test_support::{handlers, RawServer, TestServer};

use common::trusting;

/// `https://localhost:PORT`, pinned to the server's address so that no
/// resolver is involved; "localhost" still names the server for TLS.
fn https(server: &TestServer) -> Destination {
    Destination::new(Scheme::Https, "localhost", server.addr().port())
        .addresses(vec![server.addr()])
}

/// A TLS server (HTTP/1.1 only) presenting `cert`, which `pki` issued.
async fn tls_server(pki: &TestPki, cert: &CertifiedKey) -> TestServer {
    TestServer::tls(handlers::hello, pki.server_config(cert, &[b"http/1.1"])).await
}

/// A TLS server offering `h2` and `http/1.1` (in that order of preference).
async fn h2_server(pki: &TestPki) -> TestServer {
    let cert = pki.server_cert(&["localhost"]);
    TestServer::builder()
        .tls(pki.server_config(&cert, &[b"h2", b"http/1.1"]))
        .serve(handlers::hello)
        .await
}

/// The rustls error somewhere in an error's `source()` chain.
fn rustls_error<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

/// Node's `fingerprint256` form: 32 upper-case hex bytes joined by colons.
fn is_node_fingerprint(text: &str) -> bool {
    let bytes: Vec<&str> = text.split(':').collect();
    bytes.len() == 32
        && bytes
            .iter()
            .all(|byte| byte.len() == 2 && byte.chars().all(|c| matches!(c, '0'..='9' | 'A'..='F')))
}

async fn connect_err(options: ConnectOptions, destination: Destination) -> ConnectError {
    let connector = build_connector(options).unwrap();
    connector.connect(destination).await.unwrap_err()
}

#[tokio::test]
async fn handshake_with_a_private_ca_reports_version_chain_and_fingerprint() {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = tls_server(&pki, &cert).await;
    let connector = build_connector(trusting(&pki)).unwrap();

    let mut connection = connector.connect(https(&server)).await.unwrap();

    let info = connection.info().clone();
    assert_eq!(info.remote_addr(), Some(server.addr()));
    let tls = info.tls().unwrap();
    assert_eq!(tls.version(), Some("TLSv1.3"));
    assert_eq!(tls.server_name(), "localhost");
    assert!(!tls.is_resumed());
    assert_eq!(tls.peer_certificates(), &cert.chain[..]);
    assert_eq!(tls.issuer_certificate(), Some(&pki.ca_der()));
    let fingerprint = tls.peer_fingerprint256().unwrap();
    assert_eq!(fingerprint, fingerprint256(&cert.leaf()));
    assert!(is_node_fingerprint(&fingerprint), "{fingerprint}");

    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, "hello world");
}

#[tokio::test]
async fn an_ip_literal_host_is_checked_against_the_ip_san() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["127.0.0.1"])).await;
    let connector = build_connector(trusting(&pki)).unwrap();
    let destination = Destination::new(Scheme::Https, "127.0.0.1", server.addr().port());

    let connection = connector.connect(destination).await.unwrap();
    server.wait_for_tls_handshakes(1).await;

    assert_eq!(connection.info().tls().unwrap().server_name(), "127.0.0.1");
    // No SNI for IP addresses (RFC 6066 §3).
    assert_eq!(server.sni_names(), vec![None]);
}

#[tokio::test]
async fn a_certificate_for_another_name_is_err_tls_cert_altname_invalid() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;

    let err = connect_err(trusting(&pki).servername("other.example"), https(&server)).await;

    assert!(err.is_tls());
    assert_eq!(err.tls_failure(), Some(TlsFailure::WrongName));
    assert_eq!(err.code(), "ERR_TLS_CERT_ALTNAME_INVALID");
    assert!(err.to_string().contains("other.example"), "{err}");
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "{err:?}"
    );
    assert_eq!(TlsFailure::find_in(&err), Some(TlsFailure::WrongName));
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_rejected() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let server = tls_server(&other, &other.server_cert(&["localhost"])).await;

    let err = connect_err(trusting(&pki), https(&server)).await;

    assert_eq!(err.tls_failure(), Some(TlsFailure::UnknownIssuer));
    assert_eq!(err.code(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
    assert_eq!(
        rustls_error(&err),
        Some(&rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    );
}

// That the default store is Mozilla's (not empty) and that `extra_ca` adds
// to it while `ca` replaces it is checked on the built store, in the unit
// tests of `tls.rs`: no server here can present a chain to a public root.

#[tokio::test]
async fn the_default_roots_do_not_trust_a_private_ca() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;

    let err = connect_err(ConnectOptions::new(), https(&server)).await;

    assert_eq!(err.tls_failure(), Some(TlsFailure::UnknownIssuer));
    assert_eq!(err.code(), "UNABLE_TO_GET_ISSUER_CERT_LOCALLY");
    assert_eq!(
        rustls_error(&err),
        Some(&rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    );
}

#[tokio::test]
async fn extra_ca_is_trusted_besides_the_default_roots() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;
    let connector = build_connector(ConnectOptions::new().extra_ca(pki.ca_pem())).unwrap();

    let mut connection = connector.connect(https(&server)).await.unwrap();

    assert_eq!(
        connection.info().tls().unwrap().issuer_certificate(),
        Some(&pki.ca_der())
    );
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn an_expired_certificate_is_cert_has_expired() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.expired_server_cert(&["localhost"])).await;

    let err = connect_err(trusting(&pki), https(&server)).await;

    assert_eq!(err.tls_failure(), Some(TlsFailure::Expired));
    assert_eq!(err.code(), "CERT_HAS_EXPIRED");
    assert!(
        matches!(
            rustls_error(&err),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::Expired | CertificateError::ExpiredContext { .. }
            ))
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn reject_unauthorized_false_accepts_an_unknown_issuer() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let cert = other.server_cert(&["localhost"]);
    let server = tls_server(&other, &cert).await;
    let options = trusting(&pki).reject_unauthorized(false);
    let connector = build_connector(options).unwrap();

    let mut connection = connector.connect(https(&server)).await.unwrap();

    let tls = connection.info().tls().unwrap().clone();
    assert_eq!(
        tls.peer_fingerprint256(),
        Some(fingerprint256(&cert.leaf()))
    );
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn reject_unauthorized_false_accepts_an_expired_certificate_for_another_name() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.expired_server_cert(&["localhost"])).await;
    let options = ConnectOptions::new()
        .reject_unauthorized(false)
        .servername("other.example");
    let connector = build_connector(options).unwrap();

    let connection = connector.connect(https(&server)).await.unwrap();

    assert_eq!(
        connection.info().tls().unwrap().server_name(),
        "other.example"
    );
}

#[tokio::test]
async fn the_server_sees_the_servername_of_the_destination_or_the_options() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost", "api.test"])).await;
    let by_options = build_connector(trusting(&pki).servername("api.test")).unwrap();
    let by_host = build_connector(trusting(&pki)).unwrap();
    let ip_host = Destination::new(Scheme::Https, "127.0.0.1", server.addr().port());

    // The connector's servername replaces the host.
    by_options.connect(https(&server)).await.unwrap();
    // The destination's servername replaces the connector's.
    by_options
        .connect(https(&server).servername("localhost"))
        .await
        .unwrap();
    // An IP host with a servername sends that name.
    by_host
        .connect(ip_host.servername("api.test"))
        .await
        .unwrap();
    // Without either, the host is the name.
    by_host.connect(https(&server)).await.unwrap();
    server.wait_for_tls_handshakes(4).await;

    let sni: Vec<Option<String>> = server.sni_names();
    let expected = ["api.test", "localhost", "api.test", "localhost"];
    assert_eq!(sni, expected.map(|name| Some(name.to_owned())));
}

#[tokio::test]
async fn a_second_connection_resumes_the_session_of_the_first() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;
    let connector = build_connector(trusting(&pki)).unwrap();

    let mut first = connector.connect(https(&server)).await.unwrap();
    // TLS 1.3 session tickets arrive after the handshake: reading the
    // response is what stores them in the connector's cache.
    let response = common::get(&mut first, "localhost").await.unwrap();
    assert_eq!(response.status, 200);
    // A clone shares the session cache.
    let second = connector.clone().connect(https(&server)).await.unwrap();
    server.wait_for_tls_handshakes(2).await;

    assert!(!first.info().tls().unwrap().is_resumed());
    assert!(second.info().tls().unwrap().is_resumed());
    assert_eq!(server.resumed_sessions(), vec![false, true]);
}

/// Connects to `host` (a name on `server`'s certificate) and reads the
/// response, which is what stores the server's TLS 1.3 tickets; answers
/// whether the handshake resumed a session.
async fn resumed(connector: &Connector, server: &TestServer, host: &str) -> bool {
    let destination =
        Destination::new(Scheme::Https, host, server.addr().port()).addresses(vec![server.addr()]);
    let mut connection = connector.connect(destination).await.unwrap();
    let response = common::get(&mut connection, host).await.unwrap();
    assert_eq!(response.status, 200);
    connection.info().tls().unwrap().is_resumed()
}

async fn two_host_server(pki: &TestPki) -> TestServer {
    tls_server(pki, &pki.server_cert(&["a.test", "b.test"])).await
}

#[tokio::test]
async fn max_cached_sessions_counts_hosts_not_tickets() {
    let pki = TestPki::new();
    let server = two_host_server(&pki).await;
    // Room for two hosts: rustls's own cache would make that one server
    // (it counts 8 tickets per server) and forget a.test for b.test.
    let connector = build_connector(trusting(&pki).max_cached_sessions(2)).unwrap();

    let first_a = resumed(&connector, &server, "a.test").await;
    let first_b = resumed(&connector, &server, "b.test").await;
    let again_a = resumed(&connector, &server, "a.test").await;

    assert_eq!((first_a, first_b, again_a), (false, false, true));
    server.wait_for_tls_handshakes(3).await;
    assert_eq!(server.resumed_sessions(), vec![false, false, true]);
}

#[tokio::test]
async fn a_host_pushed_out_of_the_session_cache_does_a_full_handshake() {
    let pki = TestPki::new();
    let server = two_host_server(&pki).await;
    let connector = build_connector(trusting(&pki).max_cached_sessions(1)).unwrap();

    let first_a = resumed(&connector, &server, "a.test").await;
    // b.test takes the only place: a.test's sessions are forgotten.
    let first_b = resumed(&connector, &server, "b.test").await;
    let again_a = resumed(&connector, &server, "a.test").await;
    // ... and a.test, now the cached host, resumes.
    let third_a = resumed(&connector, &server, "a.test").await;

    assert_eq!(
        (first_a, first_b, again_a, third_a),
        (false, false, false, true)
    );
    server.wait_for_tls_handshakes(4).await;
    assert_eq!(server.resumed_sessions(), vec![false, false, false, true]);
}

#[tokio::test]
async fn a_huge_max_cached_sessions_resumes_without_allocating_for_it() {
    let pki = TestPki::new();
    let server = two_host_server(&pki).await;
    let connector = build_connector(trusting(&pki).max_cached_sessions(usize::MAX)).unwrap();

    assert!(!resumed(&connector, &server, "a.test").await);
    assert!(resumed(&connector, &server, "a.test").await);
}

#[tokio::test]
async fn max_cached_sessions_zero_turns_resumption_off() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;
    let connector = build_connector(trusting(&pki).max_cached_sessions(0)).unwrap();

    let mut first = connector.connect(https(&server)).await.unwrap();
    common::get(&mut first, "localhost").await.unwrap();
    let second = connector.connect(https(&server)).await.unwrap();
    server.wait_for_tls_handshakes(2).await;

    assert!(!second.info().tls().unwrap().is_resumed());
    assert_eq!(server.resumed_sessions(), vec![false, false]);
}

async fn mtls_server(pki: &TestPki) -> TestServer {
    let cert = pki.server_cert(&["localhost"]);
    let config = pki.server_config_with_client_auth(&cert, &[b"http/1.1"], true);
    TestServer::tls(handlers::hello, config).await
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_a_server_that_requires_one() {
    let pki = TestPki::new();
    let server = mtls_server(&pki).await;
    let client = pki.client_cert("alice");
    let options = trusting(&pki).cert(&client.cert_pem).key(&client.key_pem);
    let connector = build_connector(options).unwrap();

    let mut connection = connector.connect(https(&server)).await.unwrap();
    let response = common::get(&mut connection, "localhost").await.unwrap();

    assert_eq!(response.status, 200);
    assert_eq!(server.client_cert_presented(), vec![true]);
}

#[tokio::test]
async fn a_missing_client_certificate_is_rejected_on_the_first_read() {
    let pki = TestPki::new();
    let server = mtls_server(&pki).await;
    let connector = build_connector(trusting(&pki)).unwrap();

    // TLS 1.3: the client's handshake is over before the server has judged
    // its (empty) certificate, so connecting succeeds...
    let mut connection: Connection = connector.connect(https(&server)).await.unwrap();
    assert_eq!(connection.info().tls().unwrap().version(), Some("TLSv1.3"));
    // ... and the server's alert arrives on the first read.
    let mut buf = [0u8; 64];
    let err = connection.read(&mut buf).await.unwrap_err();

    assert_eq!(
        TlsFailure::find_in(&err),
        Some(TlsFailure::ClientCertificateRejected)
    );
    let alert = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    assert_eq!(
        alert,
        Some(&rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
        ))
    );
    server.wait_for_tls_handshakes(1).await;
    assert_eq!(server.tls_errors().len(), 1);
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_is_rejected() {
    let pki = TestPki::new();
    let server = mtls_server(&pki).await;
    let stranger = TestPki::new().client_cert("mallory");
    let options = trusting(&pki)
        .cert(&stranger.cert_pem)
        .key(&stranger.key_pem);
    let connector = build_connector(options).unwrap();

    let mut connection = connector.connect(https(&server)).await.unwrap();
    let mut buf = [0u8; 64];
    let err = connection.read(&mut buf).await.unwrap_err();

    assert_eq!(
        TlsFailure::find_in(&err),
        Some(TlsFailure::ClientCertificateRejected),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_client_certificate_needs_its_own_key() {
    let pki = TestPki::new();
    let alice = pki.client_cert("alice");
    let bob = pki.client_cert("bob");

    let err = build_connector(
        ConnectOptions::new()
            .cert(&alice.cert_pem)
            .key(&bob.key_pem),
    )
    .unwrap_err();

    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    let err = build_connector(ConnectOptions::new().key(&alice.key_pem)).unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
}

#[tokio::test]
async fn alpn_negotiates_h2_when_allowed() {
    let pki = TestPki::new();
    let server = h2_server(&pki).await;
    let connector = build_connector(trusting(&pki).allow_h2(true)).unwrap();

    let connection = connector.connect(https(&server)).await.unwrap();
    server.wait_for_tls_handshakes(1).await;

    assert!(connection.info().is_negotiated_h2());
    assert_eq!(connection.info().alpn(), Some(&b"h2"[..]));
    assert_eq!(server.alpn_protocols(), vec![Some(b"h2".to_vec())]);
}

#[tokio::test]
async fn alpn_stays_on_http1_when_h2_is_not_allowed() {
    let pki = TestPki::new();
    let server = h2_server(&pki).await;
    let connector = build_connector(trusting(&pki).allow_h2(false)).unwrap();

    let mut connection = connector.connect(https(&server)).await.unwrap();

    assert!(!connection.info().is_negotiated_h2());
    assert_eq!(connection.info().alpn(), Some(&b"http/1.1"[..]));
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn the_destination_allow_h2_overrides_the_connector() {
    let pki = TestPki::new();
    let server = h2_server(&pki).await;
    let allowing = build_connector(trusting(&pki).allow_h2(true)).unwrap();
    let refusing = build_connector(trusting(&pki).allow_h2(false)).unwrap();

    let http1 = allowing
        .connect(https(&server).allow_h2(false))
        .await
        .unwrap();
    let h2 = refusing
        .connect(https(&server).allow_h2(true))
        .await
        .unwrap();

    assert_eq!(http1.info().alpn(), Some(&b"http/1.1"[..]));
    assert!(h2.info().is_negotiated_h2());
}

#[tokio::test]
async fn a_server_without_h2_negotiates_http1() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;
    let connector = build_connector(trusting(&pki).allow_h2(true)).unwrap();

    let connection = connector.connect(https(&server)).await.unwrap();

    assert_eq!(connection.info().alpn(), Some(&b"http/1.1"[..]));
}

#[tokio::test]
async fn tls_runs_over_a_stream_handed_in() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;
    let connector = build_connector(trusting(&pki)).unwrap();
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let local = stream.local_addr().unwrap();
    let destination =
        Destination::new(Scheme::Https, "localhost", server.addr().port()).http_socket(stream);
    assert!(destination.has_http_socket());

    let mut connection = connector.connect(destination).await.unwrap();

    assert_eq!(connection.info().local_addr(), Some(local));
    assert_eq!(connection.info().remote_addr(), Some(server.addr()));
    let tls = connection.info().tls().unwrap();
    assert_eq!(tls.version(), Some("TLSv1.3"));
    assert_eq!(tls.server_name(), "localhost");
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.body, "hello world");
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn tls_over_a_connection_handed_in_keeps_its_addresses() {
    // A plain connection of ours, as a proxy tunnel would be, carries the
    // TLS to the server.
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;
    let connector = build_connector(trusting(&pki)).unwrap();
    let tunnel = connector
        .connect(Destination::new(
            Scheme::Http,
            "127.0.0.1",
            server.addr().port(),
        ))
        .await
        .unwrap();
    let tunnel_info = tunnel.info().clone();
    let destination =
        Destination::new(Scheme::Https, "localhost", server.addr().port()).http_socket(tunnel);

    let mut connection = connector.connect(destination).await.unwrap();

    let info = connection.info();
    assert_eq!(info.local_addr(), tunnel_info.local_addr());
    assert_eq!(info.remote_addr(), Some(server.addr()));
    assert_eq!(info.tls().unwrap().server_name(), "localhost");
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.body, "hello world");
}

#[tokio::test]
async fn a_stream_that_cannot_tell_its_addresses_has_none() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;
    let connector = build_connector(trusting(&pki)).unwrap();
    let (read, write) = tokio::net::TcpStream::connect(server.addr())
        .await
        .unwrap()
        .into_split();
    let stream = tokio::io::join(read, write);
    let destination =
        Destination::new(Scheme::Https, "localhost", server.addr().port()).http_socket(stream);

    let mut connection = connector.connect(destination).await.unwrap();

    assert_eq!(connection.info().local_addr(), None);
    assert_eq!(connection.info().remote_addr(), None);
    let response = common::get(&mut connection, "localhost").await.unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_stream_handed_in_for_plain_http_is_an_invalid_argument() {
    let server = TestServer::http1(handlers::hello).await;
    let connector = build_connector(ConnectOptions::new()).unwrap();
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let destination =
        Destination::new(Scheme::Http, "127.0.0.1", server.addr().port()).http_socket(stream);

    let err = connector.connect(destination).await.unwrap_err();

    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
}

#[tokio::test]
async fn a_server_that_never_answers_the_hello_times_out() {
    let server = RawServer::new(|conn| conn.stall()).await;
    let options = ConnectOptions::new().timeout(Duration::from_millis(300));
    let connector = build_connector(options).unwrap();
    let destination = Destination::new(Scheme::Https, "localhost", server.addr().port())
        .addresses(vec![server.addr()]);

    let started = Instant::now();
    let err = connector.connect(destination).await.unwrap_err();
    let elapsed = started.elapsed();

    assert_eq!(err.code(), "UND_ERR_CONNECT_TIMEOUT");
    assert!(
        err.to_string().contains(&server.addr().to_string()),
        "{err}"
    );
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
}

#[tokio::test]
async fn a_server_that_does_not_speak_tls_is_a_tls_error() {
    // Answers the ClientHello with an HTTP response, as a plain HTTP
    // server on the wrong port would.
    let server = RawServer::new(|mut conn| async move {
        let response = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        if conn.write_all(response).await.is_ok() {
            let _ = conn.read_to_end().await;
        }
    })
    .await;
    let destination = Destination::new(Scheme::Https, "localhost", server.addr().port())
        .addresses(vec![server.addr()]);

    let err = connect_err(ConnectOptions::new(), destination).await;

    assert!(err.is_tls(), "{err:?}");
    assert_eq!(err.tls_failure(), Some(TlsFailure::Other));
    assert!(rustls_error(&err).is_some(), "{err:?}");
}

#[tokio::test]
async fn a_reset_during_the_handshake_is_a_socket_error_with_both_addresses() {
    // Reads the ClientHello, then closes with a RST instead of answering.
    let server = RawServer::new(|mut conn| async move {
        if conn.read_some().await.is_ok() {
            let _ = conn.reset();
        }
    })
    .await;
    let destination = Destination::new(Scheme::Https, "localhost", server.addr().port())
        .addresses(vec![server.addr()]);

    let err = connect_err(ConnectOptions::new(), destination).await;

    assert_eq!(err.code(), "ECONNRESET", "{err:?}");
    assert!(!err.is_tls(), "{err:?}");
    assert_eq!(err.remote_addr(), Some(server.addr()));
    let local = err
        .local_addr()
        .expect("a connected socket has a local address");
    assert_eq!(server.peer_addrs(), vec![local]);
    let message = err.to_string();
    assert!(
        message.starts_with("TLS handshake with \"localhost\" failed"),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(" (local {local}, remote {})", server.addr())),
        "{message}"
    );
}

#[tokio::test]
async fn a_tls_failure_carries_the_addresses_of_the_socket() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;

    let err = connect_err(ConnectOptions::new(), https(&server)).await;

    assert_eq!(err.tls_failure(), Some(TlsFailure::UnknownIssuer));
    assert_eq!(err.remote_addr(), Some(server.addr()));
    let local = err
        .local_addr()
        .expect("a connected socket has a local address");
    assert_eq!(server.peer_addrs(), vec![local]);
}

#[tokio::test]
async fn an_invalid_servername_option_is_rejected_by_build_connector() {
    let err = build_connector(ConnectOptions::new().servername("not a name!")).unwrap_err();

    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    assert!(err.to_string().contains("not a name!"), "{err}");
}

#[tokio::test]
async fn an_invalid_server_name_is_an_invalid_argument() {
    let pki = TestPki::new();
    let server = tls_server(&pki, &pki.server_cert(&["localhost"])).await;

    let err = connect_err(trusting(&pki), https(&server).servername("not a name!")).await;

    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
}
