//! undici's "Custom TLS on Agent": a connector built with its own CA and
//! session cache, given to an Agent, and that Agent made the global
//! dispatcher; then a top-level `undici::request` over TLS.
//!
//! ```js
//! const connector = buildConnector({ rejectUnauthorized: true, ca, maxCachedSessions: 50 })
//! setGlobalDispatcher(new Agent({ connect: connector }))
//! ```
//!
//! Run with `cargo run --example agent_custom_tls`. The server, its CA
//! and its certificate are made at run time.

use undici::connectors::{build_connector, ConnectOptions};
use undici::prelude::*;
use undici::Agent;
use undici_test_support::{handlers, TestPki, TestServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A local HTTPS server for `localhost`, signed by a CA of our own.
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::tls(
        handlers::echo,
        pki.server_config(&cert, &[b"h2", b"http/1.1"]),
    )
    .await;

    let connector = build_connector(
        ConnectOptions::new()
            .reject_unauthorized(true)
            .ca(pki.ca_pem())
            .max_cached_sessions(50),
    )?;
    undici::set_global_dispatcher(Agent::builder().connector(connector).build());

    let url = format!("{}/hello", server.url_with_host("localhost"));
    let response = undici::request(url.as_str()).await?;
    println!(
        "GET {url} -> {} over {:?}",
        response.status(),
        response.version()
    );
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), http::Version::HTTP_2);
    response
        .into_body()
        .dump(undici::DEFAULT_DUMP_LIMIT)
        .await?;

    // The same global dispatcher refuses a server its CA did not sign.
    let stranger = TestPki::new();
    let cert = stranger.server_cert(&["localhost"]);
    let untrusted = TestServer::tls(
        handlers::echo,
        stranger.server_config(&cert, &[b"http/1.1"]),
    )
    .await;
    let err = undici::request(format!("{}/", untrusted.url_with_host("localhost")).as_str())
        .await
        .expect_err("a certificate from an unknown CA is refused");
    println!("a server signed by another CA: {} ({err})", err.code());
    assert!(err.is_connect());

    undici::global_dispatcher().close().await;
    Ok(())
}
