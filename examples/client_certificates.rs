//! Mutual TLS: the server requires a client certificate from its CA; the
//! client trusts the server's CA (`ca`) and presents its own certificate
//! and key (`cert`, `key`), all PEM, as Node's `tls.connect` options.
//!
//! ```text
//! cargo run --example client_certificates
//! ```

use undici::connectors::ConnectOptions;
use undici::prelude::*;
use undici_test_support::certs::TestPki;
use undici_test_support::{handlers, TestServer};

async fn get(options: ConnectOptions, origin: &str) -> Result<String, undici::Error> {
    let client = Client::builder().connect(options).build(origin)?;
    let request = http::Request::get("/")
        .body(Body::empty())
        .map_err(|err| undici::Error::invalid_argument(err.to_string()))?;
    let result = match client.request(request).await {
        Ok(response) => response.into_body().text().await,
        Err(err) => Err(err),
    };
    client.close().await;
    result
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One CA issues the server's certificate and the client's.
    let pki = TestPki::new();
    let server_cert = pki.server_cert(&["localhost"]);
    let client_cert = pki.client_cert("alice");
    let require_client_cert = true;
    let config =
        pki.server_config_with_client_auth(&server_cert, &[b"http/1.1"], require_client_cert);
    let server = TestServer::tls(handlers::hello, config).await;
    let origin = server.url_with_host("localhost");

    let with_cert = ConnectOptions::new()
        .ca(pki.ca_pem())
        .cert(&client_cert.cert_pem)
        .key(&client_cert.key_pem);
    let body = get(with_cert, &origin).await?;
    println!("with a client certificate (CN=alice): {body:?}");
    println!(
        "  the server saw a client certificate: {:?}",
        server.client_cert_presented()
    );

    // Without one the server refuses. Under TLS 1.3 it says so after the
    // client's handshake, so the error comes with the first response.
    let without_cert = ConnectOptions::new().ca(pki.ca_pem());
    match get(without_cert, &origin).await {
        Err(err) => println!("without a client certificate: rejected: {err}"),
        Ok(body) => {
            return Err(
                format!("the server accepted a client without a certificate: {body:?}").into(),
            )
        }
    }
    Ok(())
}
