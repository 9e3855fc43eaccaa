//! undici's `dispatcher.connect()` example: an HTTP CONNECT tunnel to a
//! server that echoes what it received once the client has finished.
//!
//! Run with `cargo run --example dispatcher_connect`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use undici::prelude::*;
use undici_test_support::RawServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `server.on('connect', (req, socket, head) => { ... })`: accept the
    // tunnel, collect the data until the client ends, then end with it.
    let server = RawServer::new(|mut conn| async move {
        let Ok(request) = conn.read_request().await else {
            return;
        };
        println!("server: {} {}", request.method, request.target);
        if conn
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let data = conn.read_to_end().await.unwrap_or_default();
        let _ = conn.write_all(&data).await;
        let _ = conn.shutdown().await;
    })
    .await;

    let client = Client::new(server.url())?;
    // `client.connect({ path: '/' })`: the target is the client's origin.
    // For another target: `http::Request::connect("example.com:443")`.
    let request = http::Request::get("/").body(Body::empty())?;
    let tunnel = client.connect(request).await?;
    println!("tunnel open: {}", tunnel.status);

    let mut socket = tunnel.socket;
    let wanted = "Body";
    socket.write_all(wanted.as_bytes()).await?;
    // `socket.end()`
    socket.shutdown().await?;
    let mut data = String::new();
    socket.read_to_string(&mut data).await?;
    println!("Data received: {data} | Data wanted: {wanted}");

    client.close().await;
    Ok(())
}
