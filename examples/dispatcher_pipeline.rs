//! undici's `dispatcher.pipeline()` example: a duplex whose writes are
//! the request body and whose reads are the response body, here through a
//! server that pipes the request back.
//!
//! Run with `cargo run --example dispatcher_pipeline`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use undici::prelude::*;
use undici_test_support::{body, TestServer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `createServer((request, response) => request.pipe(response))`
    let server = TestServer::http1(|req: http::Request<hyper::body::Incoming>| async move {
        http::Response::new(body::from_body(req.into_body()))
    })
    .await;
    let client = Client::new(server.url())?;

    // `client.pipeline({ path: '/', method: 'GET' }, handler)`, as a POST:
    // hyper sends no body with a GET whose length is unknown (undici sends
    // it chunked), so a streamed request body needs another method, or a
    // `content-length` set on the head.
    let head = http::Request::post("/").body(())?;
    let pipeline = client.pipeline(head, |response| {
        println!("response received {}", response.status().as_u16());
        println!("headers {:?}", response.headers());
        // The handler may transform the body; here it passes it through.
        Ok(response.into_body())
    });

    // node's `stream.pipeline(readable, duplex, writable)`: write the
    // source in and read the result out at the same time.
    let (mut from_server, mut to_server) = tokio::io::split(pipeline);
    let source = async {
        to_server.write_all(b"undici").await?;
        // `this.push(null)`: the end of the request body.
        to_server.shutdown().await
    };
    let mut res = String::new();
    let sink = from_server.read_to_string(&mut res);
    let (written, read) = tokio::join!(source, sink);
    written?;
    read?;
    println!("Response pipelined to writable: {res}");

    client.close().await;
    Ok(())
}
