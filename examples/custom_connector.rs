//! A connector of your own (undici's `connect` function option): the built
//! connector, wrapped in a tower service that checks every socket before
//! the client uses it. Here the check is an allow-list of remote ports; a
//! socket that fails it is closed and the request fails with the reason.
//!
//! ```text
//! cargo run --example custom_connector
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use undici::connectors::{
    build_connector, ConnectError, ConnectOptions, Connection, Connector, Destination,
};
use undici::prelude::*;
use undici_test_support::{handlers, TestServer};

/// Hands on only connections whose remote port is allowed.
#[derive(Clone)]
struct AllowedPorts {
    inner: Connector,
    ports: Arc<[u16]>,
}

impl tower::Service<Destination> for AllowedPorts {
    type Response = Connection;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Connection, ConnectError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        tower::Service::poll_ready(&mut self.inner, cx)
    }

    fn call(&mut self, destination: Destination) -> Self::Future {
        let connecting = tower::Service::call(&mut self.inner, destination);
        let ports = self.ports.clone();
        Box::pin(async move {
            let connection = connecting.await?;
            let remote = connection.info().remote_addr();
            match remote {
                Some(addr) if ports.contains(&addr.port()) => Ok(connection),
                // Dropping the connection closes the socket.
                _ => Err(ConnectError::rejected(format!(
                    "remote address {remote:?} is not on an allowed port {ports:?}"
                ))),
            }
        })
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let allowed = TestServer::http1(handlers::hello).await;
    let other = TestServer::http1(handlers::hello).await;

    let connector = AllowedPorts {
        inner: build_connector(ConnectOptions::new().timeout(Duration::from_secs(5)))?,
        ports: Arc::from([allowed.addr().port()]),
    };

    // Allowed port: the request goes through.
    let client = Client::builder()
        .connector(connector.clone())
        .build(allowed.url().as_str())?;
    let response = client
        .request(http::Request::get("/").body(Body::empty())?)
        .await?;
    let status = response.status();
    let body = response.into_body().text().await?;
    println!("{}: {status} {body:?}", allowed.url());
    client.close().await;

    // Any other port: the check closes the socket, the request fails.
    let client = Client::builder()
        .connector(connector)
        .build(other.url().as_str())?;
    let result = client
        .request(http::Request::get("/").body(Body::empty())?)
        .await;
    client.close().await;
    match result {
        Err(err) => println!("{}: rejected: {err}", other.url()),
        Ok(response) => {
            return Err(format!("{} was not rejected: {}", other.url(), response.status()).into())
        }
    }
    Ok(())
}
