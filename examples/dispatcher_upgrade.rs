//! undici's `dispatcher.upgrade()` example: the server switches protocols
//! (a 101), and the connection becomes a plain socket.
//!
//! Run with `cargo run --example dispatcher_upgrade`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use undici::prelude::*;
use undici_test_support::RawServer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `response.statusCode = 101; response.setHeader('connection', 'upgrade');
    //  response.setHeader('upgrade', request.headers.upgrade); response.end()`
    let server = RawServer::new(|mut conn| async move {
        let Ok(request) = conn.read_request().await else {
            return;
        };
        let protocol = request.header("upgrade").unwrap_or("none").to_owned();
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: {protocol}\r\n\r\n"
        );
        if conn.write_all(answer.as_bytes()).await.is_ok() {
            // Then the socket ends when the client's does.
            let _ = conn.read_to_end().await;
            let _ = conn.shutdown().await;
        }
    })
    .await;
    let client = Client::new(server.url())?;

    // `client.upgrade({ path: '/' })`: GET, protocol 'Websocket'.
    let request = http::Request::get("/").body(Body::empty())?;
    let upgraded = client.upgrade(request, None).await?;
    let mut socket = upgraded.socket;
    // `socket.end()`, then wait for the server's end.
    socket.shutdown().await?;
    let mut rest = Vec::new();
    socket.read_to_end(&mut rest).await?;
    println!("upgrade: {}", upgraded.headers["upgrade"].to_str()?); // upgrade: Websocket

    client.close().await;
    Ok(())
}
