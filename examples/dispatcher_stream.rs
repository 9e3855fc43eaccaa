//! undici's `dispatcher.stream()` example: the response body is written
//! straight into a writer the factory returns, with the request's
//! `opaque` value handed to the factory and back.
//!
//! Run with `cargo run --example dispatcher_stream`.

use undici::prelude::*;
use undici_test_support::{body, TestServer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // `createServer((request, response) => response.end('Hello, World!'))`
    let server =
        TestServer::http1(|_req| async { http::Response::new(body::full("Hello, World!")) }).await;
    let client = Client::new(server.url())?;

    // `opaque` spares the factory a closure over per-request state.
    let request = http::Request::get("/")
        .extension(RequestOptions::new().opaque("request #1"))
        .body(Body::empty())
        .expect("a valid request");
    // `bufs`: any tokio AsyncWrite works (a file, a socket, a Vec).
    let mut bufs: Vec<u8> = Vec::new();
    let writer = &mut bufs;
    let data = client
        .stream(request, move |head| {
            println!("response received {}", head.status.as_u16());
            println!("headers {:?}", head.headers);
            let label = head.opaque.as_ref().and_then(|o| o.downcast_ref::<&str>());
            println!("opaque {label:?}");
            Ok::<_, Error>(writer)
        })
        .await?;
    println!("{}", String::from_utf8_lossy(&bufs));
    println!(
        "resolved with opaque {:?} and trailers {:?}",
        data.opaque.as_ref().and_then(|o| o.downcast_ref::<&str>()),
        data.trailers
    );

    client.close().await;
    Ok(())
}
