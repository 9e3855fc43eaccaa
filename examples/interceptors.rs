//! Redirect, retry and decompress on one Agent, stacked twice: with
//! `tower::ServiceBuilder` and with `Dispatcher::compose`.
//!
//! A local server redirects `/start` to `/flaky`, which answers 503
//! twice and then 200 with a gzip body. Each layer's work is printed:
//! the redirect history, the retries, the `content-encoding` the
//! decompress layer took off and the text it decoded. The outcomes are
//! asserted, so a wrong behaviour ends the example with a panic.
//!
//! # Order, against undici's `compose`
//!
//! undici's `agent.compose(retry(), redirect(), decompress())` makes the
//! last interceptor the outermost, the first to see a request:
//! decompress, then redirect, then retry, then the agent. Chained
//! `.compose(retry).compose(redirect).compose(decompress)` reads and
//! runs the same. In a `ServiceBuilder` the first layer is the outermost,
//! so the same stack is written the other way round:
//! `.layer(decompress).layer(redirect).layer(retry)`.
//!
//! Why this order: retry inside redirect retries each hop where it failed
//! (a 503 from `/flaky` is sent again to `/flaky`, not from `/start`), and
//! decompress outside retry lets a resumed download ask for the encoded
//! bytes it missed, which are what `Range` counts.
//!
//! Run with `cargo run --example interceptors`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::CONTENT_ENCODING;
use tokio::io::AsyncReadExt;
use tower::util::MapResponseLayer;
use tower::ServiceBuilder;
use undici::interceptors::decompress::DecompressLayer;
use undici::interceptors::redirect::{RedirectHistory, RedirectLayer};
use undici::interceptors::retry::{Attempt, DefaultRetryPolicy, Outcome, RetryLayer, RetryPolicy};
use undici::prelude::*;
use undici::Agent;
use undici_test_support::{body, handlers, TestServer};

const TEXT: &str = "Hello from /flaky, gzip-encoded on the wire, decoded by the decompress layer.";

/// What the layers did, in order, shared by the retry policy and the
/// wire tap below.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, line: String) {
        println!("  {line}");
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// undici's retry policy, logging each retry it decides.
#[derive(Clone)]
struct LoggedRetries(Log);

impl RetryPolicy for LoggedRetries {
    fn retry(&self, attempt: &Attempt<'_>) -> Option<Duration> {
        let delay = DefaultRetryPolicy.retry(attempt)?;
        let why = match attempt.outcome() {
            Outcome::Status { status, .. } => status.to_string(),
            Outcome::Error(error) => error.code().to_owned(),
            _ => "a failure".to_owned(),
        };
        self.0.push(format!(
            "retry: {why}, retry #{} in {delay:?}",
            attempt.counter()
        ));
        Some(delay)
    }
}

/// Records each response as it comes off the wire, under the layers.
fn wire_tap(log: Log) -> MapResponseLayer<impl Fn(Response) -> Response + Clone> {
    MapResponseLayer::new(move |response: Response| {
        let header = |name: http::HeaderName| {
            response
                .headers()
                .get(&name)
                .and_then(|value| value.to_str().ok())
                .map(|value| format!(", {name}: {value}"))
                .unwrap_or_default()
        };
        log.push(format!(
            "wire: {}{}{}",
            response.status(),
            header(http::header::LOCATION),
            header(CONTENT_ENCODING)
        ));
        response
    })
}

/// The server: `/start` redirects to `/flaky`, which fails twice with a
/// 503 and then answers `TEXT`, gzip-encoded.
async fn flaky_site() -> TestServer {
    let mut gzip = Vec::new();
    async_compression::tokio::bufread::GzipEncoder::new(TEXT.as_bytes())
        .read_to_end(&mut gzip)
        .await
        .expect("gzip into memory");
    let calls = Arc::new(AtomicUsize::new(0));
    TestServer::http1(move |request: http::Request<hyper::body::Incoming>| {
        let response = match request.uri().path() {
            "/start" => handlers::redirect(302, "/flaky"),
            "/flaky" if calls.fetch_add(1, Ordering::SeqCst) < 2 => http::Response::builder()
                .status(503)
                .body(body::full("busy, try again"))
                .expect("a valid response"),
            "/flaky" => http::Response::builder()
                .header(CONTENT_ENCODING, "gzip")
                .body(body::full(gzip.clone()))
                .expect("a valid response"),
            _ => http::Response::builder()
                .status(404)
                .body(body::empty())
                .expect("a valid response"),
        };
        async move { response }
    })
    .await
}

fn retry_layer(log: &Log) -> RetryLayer<LoggedRetries> {
    RetryLayer::new()
        .min_timeout(Duration::from_millis(20))
        .policy(LoggedRetries(log.clone()))
}

/// GETs `/start` through `stack`, prints what each layer did and checks
/// it.
async fn run<D: DispatcherExt>(stack: &D, server: &TestServer, log: &Log) -> Result<(), Error> {
    let start = format!("{}/start", server.url());
    let request = http::Request::get(start.as_str())
        .body(Body::empty())
        .expect("a valid request");
    let response = stack.request(request).await?;

    let history: Vec<String> = response
        .extensions()
        .get::<RedirectHistory>()
        .map(|history| history.urls().iter().map(ToString::to_string).collect())
        .unwrap_or_default();
    println!("  redirect: {}", history.join(" -> "));
    let retries = log
        .lines()
        .iter()
        .filter(|line| line.starts_with("retry:"))
        .count();
    println!("  retry: {retries} retries, then {}", response.status());
    let wire = log.lines();
    let removed = wire
        .last()
        .and_then(|line| line.split("content-encoding: ").nth(1))
        .unwrap_or("nothing")
        .to_owned();
    let left = response.headers().get(CONTENT_ENCODING).cloned();
    let text = response.into_body().text().await?;
    println!("  decompress: removed content-encoding {removed}, decoded {text:?}");

    assert_eq!(history, [start, format!("{}/flaky", server.url())]);
    assert_eq!(retries, 2);
    let statuses: Vec<&str> = wire
        .iter()
        .filter_map(|line| line.strip_prefix("wire: "))
        .filter_map(|line| line.get(..3))
        .collect();
    assert_eq!(statuses, ["302", "503", "503", "200"]);
    assert_eq!(removed, "gzip");
    assert!(left.is_none(), "content-encoding left on the response");
    assert_eq!(text, TEXT);
    // The redirect and the 503s were read to their end: one connection.
    assert_eq!(server.connections_accepted(), 1);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let redirect = RedirectLayer::new().max_redirections(5);
    let decompress = DecompressLayer::new();

    println!("ServiceBuilder: .layer(decompress).layer(redirect).layer(retry)");
    let server = flaky_site().await;
    let log = Log::default();
    let agent = Agent::new();
    let stack = ServiceBuilder::new()
        .layer(decompress.clone())
        .layer(redirect.clone())
        .layer(retry_layer(&log))
        .layer(wire_tap(log.clone()))
        .service(agent.clone());
    run(&stack, &server, &log).await?;
    agent.close().await;

    println!("compose: .compose(retry).compose(redirect).compose(decompress)");
    let server = flaky_site().await;
    let log = Log::default();
    let agent = Agent::new()
        .compose(wire_tap(log.clone()))
        .compose(retry_layer(&log))
        .compose(redirect)
        .compose(decompress);
    run(&agent, &server, &log).await?;
    // Closing the composed agent closes the one underneath.
    agent.close().await;
    assert!(agent.base().is_closed());
    Ok(())
}
