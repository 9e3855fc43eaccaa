//! Requests over a Unix domain socket (undici's `socketPath`): the origin
//! names the server (the `Host` header), the socket path is where the
//! bytes go.
//!
//! ```text
//! cargo run --example unix_socket
//! ```

use undici::prelude::*;
use undici_test_support::{handlers, TestServer};

#[cfg(unix)]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An HTTP/1.1 server on a socket in a fresh temporary directory; it
    // echoes the request line and headers back as `x-*` headers.
    let server = TestServer::unix(handlers::echo).await;
    let path = server
        .socket_path()
        .ok_or("the server has no socket path")?;

    let client = Client::builder()
        .socket_path(path)
        .build("http://localhost")?;
    let response = client
        .request(http::Request::get("/over/the/socket").body(Body::empty())?)
        .await?;

    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("-")
            .to_owned()
    };
    println!("socket {}", path.display());
    println!(
        "  {} {} (server saw path {}, host {})",
        response.status(),
        header("x-method"),
        header("x-path"),
        header("x-req-host"),
    );
    response.into_body().dump(1024).await?;
    client.close().await;
    Ok(())
}

#[cfg(not(unix))]
fn main() {
    println!("Unix domain sockets are not available on this platform");
}
