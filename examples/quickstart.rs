//! Quickstart: a Client for one origin, a request, its body, and the
//! top-level `undici::request` over the global Agent.
//!
//! Run with `cargo run --example quickstart`.

use undici::prelude::*;
use undici_test_support::{handlers, TestServer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // A local server, so the example runs on its own.
    let server = TestServer::http1(handlers::echo).await;
    let origin = server.url();

    // undici's `new Client(origin)`: one origin, one keep-alive connection.
    let client = Client::new(origin.as_str())?;

    // `client.request({ path: '/', method: 'GET' })`
    let request = http::Request::get("/hello?lang=rust")
        .header("x-foo", "bar")
        .body(Body::empty())
        .expect("a valid request");
    let response = client.request(request).await?;
    println!(
        "GET {} -> {}",
        response.headers()["x-path"].to_str().unwrap_or("?"),
        response.status()
    );
    println!(
        "the server saw x-foo: {:?}",
        response.headers()["x-req-x-foo"]
    );
    // Always read (or dump) the body: it gives the connection back.
    response
        .into_body()
        .dump(undici::DEFAULT_DUMP_LIMIT)
        .await?;

    // A POST with a body, read back as text.
    let request = http::Request::post("/echo")
        .body(Body::from("Hello, undici!"))
        .expect("a valid request");
    let text = client.request(request).await?.into_body().text().await?;
    println!("POST echoed: {text}");

    // Per-request options travel in the extensions.
    let request = http::Request::get("/slow")
        .extension(RequestOptions::new().headers_timeout(std::time::Duration::from_secs(5)))
        .body(Body::empty())
        .expect("a valid request");
    let status = client.request(request).await?.status();
    println!("with a 5 s headers timeout: {status}");

    // The top-level function goes through the global dispatcher (an Agent).
    let response = undici::request(format!("{origin}/global")).await?;
    println!("undici::request -> {}", response.status());
    response
        .into_body()
        .dump(undici::DEFAULT_DUMP_LIMIT)
        .await?;

    client.close().await;
    println!("client closed: {}", client.is_closed());
    Ok(())
}
