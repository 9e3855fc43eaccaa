//! undici's `dispatcher.close()` example: a request, its body streamed as
//! it arrives, then a graceful close that waits for running requests.
//!
//! Run with `cargo run --example dispatcher_close`.

use futures_util::StreamExt;
use undici::prelude::*;
use undici_test_support::{body, TestServer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // `createServer((request, response) => response.end('undici'))`
    let server =
        TestServer::http1(|_req| async { http::Response::new(body::full("undici")) }).await;

    let client = Client::new(server.url())?;
    let request = http::Request::get("/")
        .body(Body::empty())
        .expect("a valid request");
    let response = client.request(request).await?;
    // `body.setEncoding('utf8'); body.on('data', console.log)`
    let mut body = response.into_body();
    while let Some(chunk) = body.next().await {
        println!("{}", String::from_utf8_lossy(&chunk?));
    }

    // Refuses new requests and resolves once running ones have ended.
    client.close().await;
    println!("Client closed");

    // A closed dispatcher refuses new work with UND_ERR_CLOSED.
    let late = http::Request::get("/")
        .body(Body::empty())
        .expect("a valid request");
    let err = client
        .request(late)
        .await
        .expect_err("a closed client refuses new requests");
    println!("after close: {}", err.code());
    assert_eq!(err.code(), "UND_ERR_CLOSED");
    Ok(())
}
