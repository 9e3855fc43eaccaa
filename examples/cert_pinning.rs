//! Certificate pinning: a connector that accepts a TLS server only when
//! the certificate that issued its leaf has the expected SHA-256
//! fingerprint (Node's `fingerprint256`, `AA:BB:...`).
//!
//! Both servers here present a certificate from a trusted CA; only the
//! pin tells the right issuer from the wrong one.
//!
//! ```text
//! cargo run --example cert_pinning
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use undici::connectors::{
    build_connector, fingerprint256, ConnectError, ConnectOptions, Connection, Connector,
    Destination,
};
use undici::prelude::*;
use undici_test_support::certs::TestPki;
use undici_test_support::{handlers, TestServer};

/// Hands on only TLS connections whose issuer certificate matches `pin`.
#[derive(Clone)]
struct PinnedIssuer {
    inner: Connector,
    pin: String,
}

impl tower::Service<Destination> for PinnedIssuer {
    type Response = Connection;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Connection, ConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, destination: Destination) -> Self::Future {
        let connecting = tower::Service::call(&mut self.inner, destination);
        let pin = self.pin.clone();
        Box::pin(async move {
            let connection = connecting.await?;
            let issuer = connection
                .info()
                .tls()
                .and_then(|tls| tls.issuer_certificate())
                .map(|cert| fingerprint256(cert));
            match issuer {
                Some(seen) if seen == pin => Ok(connection),
                Some(seen) => Err(ConnectError::rejected(format!(
                    "issuer certificate fingerprint {seen} does not match the pin {pin}"
                ))),
                None => Err(ConnectError::rejected(
                    "the server sent no issuer certificate to check against the pin",
                )),
            }
        })
    }
}

async fn get(connector: PinnedIssuer, origin: &str) -> Result<String, undici::Error> {
    let client = Client::builder().connector(connector).build(origin)?;
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
    // Our CA, and the server it certified.
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost"]);
    let server = TestServer::tls(handlers::hello, pki.server_config(&cert, &[b"http/1.1"])).await;
    let origin = server.url_with_host("localhost");

    // Trust the CA, and pin it: `fingerprint256` of its DER certificate.
    let options = ConnectOptions::new().ca(pki.ca_pem());
    let right_pin = fingerprint256(&pki.ca_der());
    let pinned = PinnedIssuer {
        inner: build_connector(options.clone())?,
        pin: right_pin.clone(),
    };
    let body = get(pinned, &origin).await?;
    println!("pin {right_pin}\n  {origin}: connected, body {body:?}");

    // The same server against another CA's fingerprint: the handshake
    // succeeds (the chain is trusted), the pin check rejects it.
    let wrong_pin = fingerprint256(&TestPki::new().ca_der());
    let pinned = PinnedIssuer {
        inner: build_connector(options)?,
        pin: wrong_pin.clone(),
    };
    match get(pinned, &origin).await {
        Err(err) => println!("pin {wrong_pin}\n  {origin}: rejected: {err}"),
        Ok(body) => return Err(format!("the wrong pin was accepted: {body:?}").into()),
    }
    Ok(())
}
