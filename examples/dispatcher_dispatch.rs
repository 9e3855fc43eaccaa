//! undici's `dispatcher.dispatch()` example: the low-level handler API,
//! with callbacks for each step of the exchange, and a controller that
//! pauses, resumes and aborts.
//!
//! Run with `cargo run --example dispatcher_dispatch`.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use undici::prelude::*;
use undici::{Controller, Handler};
use undici_test_support::{body, TestServer};

/// The seed's handler object: prints as it goes, collects the data.
#[derive(Default)]
struct Printer {
    data: Vec<u8>,
}

impl Handler for Printer {
    fn on_request_start(&mut self, _controller: &Controller, _request: &Request) {
        println!("Connected!");
    }

    fn on_response_start(
        &mut self,
        _controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        _status_text: &str,
    ) {
        println!("statusCode: {} | headers: {headers:?}", status.as_u16());
    }

    fn on_response_data(&mut self, _controller: &Controller, chunk: Bytes) {
        self.data.extend_from_slice(&chunk);
    }

    fn on_response_end(&mut self, _controller: &Controller, trailers: &HeaderMap) {
        println!("trailers: {trailers:?}");
        println!("Data: {}", String::from_utf8_lossy(&self.data));
    }

    fn on_response_error(&mut self, _controller: &Controller, error: Error) {
        eprintln!("{error}");
    }
}

/// Backpressure with the controller: pause on every chunk, resume from
/// another task.
#[derive(Default)]
struct SlowConsumer {
    chunks: usize,
    bytes: usize,
}

impl Handler for SlowConsumer {
    fn on_response_data(&mut self, controller: &Controller, chunk: Bytes) {
        self.chunks += 1;
        self.bytes += chunk.len();
        // undici 8: `controller.pause()` instead of returning false.
        controller.pause();
        let controller = controller.clone();
        tokio::spawn(async move {
            // ... some slow work, then:
            controller.resume();
        });
    }

    fn on_response_end(&mut self, _controller: &Controller, _trailers: &HeaderMap) {
        println!(
            "slow consumer: {} bytes in {} chunks",
            self.bytes, self.chunks
        );
    }
}

/// Gives up as soon as it sees the status.
struct StatusOnly;

impl Handler for StatusOnly {
    fn on_response_start(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        _headers: &HeaderMap,
        status_text: &str,
    ) {
        println!("status only: {} {status_text}, aborting", status.as_u16());
        controller.abort(Error::aborted());
    }

    fn on_response_error(&mut self, controller: &Controller, error: Error) {
        println!(
            "aborted ({}), reason kept: {}",
            error.code(),
            controller.reason().is_some()
        );
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    // `createServer((request, response) => response.end('Hello, World!'))`
    let server = TestServer::http1(|req: http::Request<hyper::body::Incoming>| async move {
        if req.uri().path() == "/big" {
            return http::Response::new(body::full(vec![b'x'; 256 * 1024]));
        }
        http::Response::new(body::full("Hello, World!"))
    })
    .await;
    let client = Client::new(server.url())?;

    let request = http::Request::get("/")
        .header("x-foo", "bar")
        .body(Body::empty())
        .expect("a valid request");
    // The future drives the request and hands the handler back at the end;
    // dropping it aborts the request.
    let printer = client.dispatch(request, Printer::default()).await;
    assert_eq!(printer.data, b"Hello, World!");

    let big = http::Request::get("/big")
        .body(Body::empty())
        .expect("a valid request");
    client.dispatch(big, SlowConsumer::default()).await;

    let request = http::Request::get("/")
        .body(Body::empty())
        .expect("a valid request");
    client.dispatch(request, StatusOnly).await;

    client.close().await;
    Ok(())
}
