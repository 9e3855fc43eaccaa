//! undici's `dispatcher.request()` examples: a request and its body, an
//! aborted request, and a body that is read or dumped depending on the
//! status.
//!
//! Run with `cargo run --example dispatcher_request`.

use std::time::Duration;

use futures_util::StreamExt;
use undici::prelude::*;
use undici_test_support::{body, TestServer};

#[tokio::main]
async fn main() -> Result<(), Error> {
    // `createServer((request, response) => response.end('Hello, World!'))`,
    // plus a path that never answers and one that is not found.
    let server = TestServer::http1(|req: http::Request<hyper::body::Incoming>| async move {
        match req.uri().path() {
            "/slow" => std::future::pending().await,
            "/missing" => http::Response::builder()
                .status(404)
                .body(body::full("no such thing"))
                .expect("a valid response"),
            _ => http::Response::new(body::full("Hello, World!")),
        }
    })
    .await;
    let client = Client::new(server.url())?;

    // `const { body, headers, statusCode, statusText, trailers } = await client.request(...)`
    let request = http::Request::get("/")
        .body(Body::empty())
        .expect("a valid request");
    let response = client.request(request).await?;
    println!("response received {}", response.status().as_u16());
    println!(
        "statusText {}",
        response.status().canonical_reason().unwrap_or("")
    );
    println!("headers {:?}", response.headers());
    let mut body = response.into_body();
    while let Some(chunk) = body.next().await {
        println!("{}", String::from_utf8_lossy(&chunk?));
    }
    // Filled once the body has ended.
    println!("trailers {:?}", body.trailers());

    // Aborting: Rust drops the future where undici takes an AbortSignal.
    // Here a timeout drops it; the connection is closed, not reused.
    let request = http::Request::get("/slow")
        .body(Body::empty())
        .expect("a valid request");
    let aborted = tokio::time::timeout(Duration::from_millis(100), client.request(request)).await;
    assert!(aborted.is_err(), "the slow answer outlasts the timeout");
    println!("the request was aborted (its future dropped)");
    // A request-level timeout ends in undici's error instead.
    let request = http::Request::get("/slow")
        .extension(RequestOptions::new().headers_timeout(Duration::from_millis(100)))
        .body(Body::empty())
        .expect("a valid request");
    if let Err(err) = client.request(request).await {
        println!("{err}");
    }

    // When the body is read only sometimes, always consume it otherwise.
    for path in ["/", "/missing"] {
        let request = http::Request::get(path)
            .body(Body::empty())
            .expect("a valid request");
        let response = client.request(request).await?;
        if response.status() == 200 {
            let bytes = response.into_body().bytes().await?;
            println!("{path}: {} bytes", bytes.len());
        } else {
            println!("{path}: {}, body dumped", response.status());
            response
                .into_body()
                .dump(undici::DEFAULT_DUMP_LIMIT)
                .await?;
        }
    }

    client.close().await;
    Ok(())
}
