//! The retry interceptor against real servers: statuses, Retry-After,
//! network errors, bodies that cannot be replayed, and resumed downloads.
//!
//! Backoffs run on tokio's paused clock, which auto-advances to the next
//! timer only when the runtime has nothing else to do. The clients here
//! have no headers or body timeout and a long keep-alive, so while a
//! request is on the wire no timer is pending that the clock could jump
//! to: the only timers are the retry's own sleeps, and the time that
//! passes is exactly what they asked for, to the millisecond the timer
//! wheel rounds up to. The waits are asserted that way, as the whole
//! request's elapsed time and as the gap between two requests reaching
//! the server.
#![cfg(feature = "retry")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Method, Request as HttpRequest, Response as HttpResponse, StatusCode};
use tokio::time::Instant;
use undici_dispatcher::{
    Body, Client, Dispatcher, DispatcherExt, ErrorKind, Request, RequestOptions, RetryOverrides,
};
use undici_interceptors::retry::{
    Attempt, DefaultRetryPolicy, RetryAgent, RetryLayer, RetryPolicy,
};
use undici_test_support::{body, RawRequest, RawServer, TestBody, TestServer};

/// A Client with no timer that could fire on the paused clock while the
/// runtime waits for the server: no headers or body timeout, and an idle
/// check far beyond any test's backoffs.
fn unhurried_client(url: &str) -> Client {
    Client::builder()
        .headers_timeout(Duration::ZERO)
        .body_timeout(Duration::ZERO)
        .keep_alive_timeout(Duration::from_secs(3600))
        .build(url)
        .unwrap()
}

/// Asserts that `elapsed`, measured on the paused clock, is `expected`:
/// not less, and not more than the millisecond tokio's timer wheel rounds
/// each of `sleeps` sleeps up to.
#[track_caller]
fn assert_waited(elapsed: Duration, expected: Duration, sleeps: u32) {
    let slack = Duration::from_millis(sleeps.into());
    assert!(
        elapsed >= expected && elapsed <= expected + slack,
        "waited {elapsed:?}, expected {expected:?}"
    );
}

/// When each request reached the server, on the (paused) tokio clock.
#[derive(Clone, Default)]
struct Arrivals(Arc<Mutex<Vec<Instant>>>);

impl Arrivals {
    fn record(&self) {
        self.0.lock().unwrap().push(Instant::now());
    }

    /// The time between each request's arrival and the next one's.
    fn gaps(&self) -> Vec<Duration> {
        let arrivals = self.0.lock().unwrap();
        arrivals.windows(2).map(|pair| pair[1] - pair[0]).collect()
    }
}

fn get(path: &str) -> Request {
    HttpRequest::get(path).body(Body::empty()).unwrap()
}

fn status(code: u16, text: &'static str) -> HttpResponse<TestBody> {
    HttpResponse::builder()
        .status(code)
        .body(body::full(text))
        .unwrap()
}

/// Answers with the statuses in `script`, in turn; the last one repeats.
async fn scripted(script: &'static [u16]) -> TestServer {
    let calls = Arc::new(AtomicUsize::new(0));
    TestServer::http1(move |_request| {
        let call = calls.fetch_add(1, Ordering::SeqCst);
        let code = script[call.min(script.len() - 1)];
        async move { status(code, if code == 200 { "ok" } else { "busy" }) }
    })
    .await
}

/// undici's policy, recording the delays it decides.
#[derive(Clone, Default)]
struct Recording(Arc<Mutex<Vec<Duration>>>);

impl Recording {
    fn delays(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

impl RetryPolicy for Recording {
    fn retry(&self, attempt: &Attempt<'_>) -> Option<Duration> {
        let delay = DefaultRetryPolicy.retry(attempt)?;
        self.0.lock().unwrap().push(delay);
        Some(delay)
    }
}

#[tokio::test(start_paused = true)]
async fn retries_503_twice_then_succeeds_with_exponential_backoff() {
    let server = scripted(&[503, 503, 200]).await;
    let policy = Recording::default();
    let client = unhurried_client(&server.url()).compose(RetryLayer::new().policy(policy.clone()));
    let started = Instant::now();
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_waited(started.elapsed(), Duration::from_millis(1500), 2);
    assert_eq!(response.into_body().text().await.unwrap(), "ok");
    assert_eq!(
        policy.delays(),
        [Duration::from_millis(500), Duration::from_secs(1)]
    );
    assert_eq!(server.requests_received(), 3);
    // The 503s' bodies were read, so their connection served the retries.
    assert_eq!(server.connections_accepted(), 1);
}

/// Answers 503 with these headers first, then 200, recording when each
/// request arrived.
async fn busy_once(headers: Vec<(&'static str, String)>, arrivals: Arrivals) -> TestServer {
    let calls = Arc::new(AtomicUsize::new(0));
    TestServer::http1(move |_request| {
        arrivals.record();
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        let mut busy = HttpResponse::builder().status(503);
        for (name, value) in &headers {
            busy = busy.header(*name, value.as_str());
        }
        async move {
            if first {
                busy.body(body::full("later")).unwrap()
            } else {
                status(200, "ok")
            }
        }
    })
    .await
}

#[tokio::test(start_paused = true)]
async fn retries_503_with_retry_after_then_succeeds() {
    let arrivals = Arrivals::default();
    let server = busy_once(vec![("retry-after", "3".to_owned())], arrivals.clone()).await;
    let policy = Recording::default();
    let client = unhurried_client(&server.url()).compose(RetryLayer::new().policy(policy.clone()));
    let started = Instant::now();
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Exactly the 3 s asked for: not the 500 ms backoff, not more.
    assert_waited(started.elapsed(), Duration::from_secs(3), 1);
    let gaps = arrivals.gaps();
    assert_eq!(gaps.len(), 1);
    assert_waited(gaps[0], Duration::from_secs(3), 1);
    assert_eq!(policy.delays(), [Duration::from_secs(3)]);
    assert_eq!(server.requests_received(), 2);
}

fn http_date(offset: i64) -> String {
    let now = std::time::SystemTime::now();
    let magnitude = Duration::from_secs(offset.unsigned_abs());
    let date = if offset >= 0 {
        now + magnitude
    } else {
        now - magnitude
    };
    httpdate::fmt_http_date(date)
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_date_in_the_past_retries_at_once() {
    let arrivals = Arrivals::default();
    let date = http_date(-3600);
    let server = busy_once(vec![("retry-after", date)], arrivals.clone()).await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new());
    let started = Instant::now();
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(started.elapsed(), Duration::ZERO);
    assert_eq!(server.requests_received(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_date_beyond_max_timeout_waits_max_timeout() {
    let arrivals = Arrivals::default();
    let date = http_date(3600);
    let server = busy_once(vec![("retry-after", date)], arrivals.clone()).await;
    let layer = RetryLayer::new().max_timeout(Duration::from_secs(7));
    let client = unhurried_client(&server.url()).compose(layer);
    let started = Instant::now();
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_waited(started.elapsed(), Duration::from_secs(7), 1);
    assert_waited(arrivals.gaps()[0], Duration::from_secs(7), 1);
}

/// A date within `max_timeout` is counted from the wall clock
/// (`SystemTime`), which the paused tokio clock does not hold still, and
/// an HTTP date has whole seconds: the wait is the date less the real
/// time already gone, within a second of what the server meant (the
/// bound leaves a busy machine a second more).
#[tokio::test(start_paused = true)]
async fn a_retry_after_date_waits_until_that_date() {
    let arrivals = Arrivals::default();
    let date = http_date(10);
    let server = busy_once(vec![("retry-after", date)], arrivals.clone()).await;
    let policy = Recording::default();
    let client = unhurried_client(&server.url()).compose(RetryLayer::new().policy(policy.clone()));
    let started = Instant::now();
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let elapsed = started.elapsed();
    assert!(
        elapsed > Duration::from_secs(7) && elapsed <= Duration::from_millis(10_001),
        "waited {elapsed:?} for a date 10 s ahead"
    );
    // The paused clock waited exactly what the policy worked out.
    let delays = policy.delays();
    assert_eq!(delays.len(), 1);
    assert_waited(elapsed, delays[0], 1);
}

#[tokio::test(start_paused = true)]
async fn exhausted_retries_hand_back_the_503_and_keep_the_connection() {
    let server = scripted(&[503]).await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new().max_retries(2));
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.into_body().text().await.unwrap(), "busy");
    assert_eq!(server.requests_received(), 3);
    // The same connection serves the next request.
    let per_request = RequestOptions::new().retry(RetryOverrides::new().max_retries(0));
    let mut request = get("/");
    request.extensions_mut().insert(per_request);
    let response = client.request(request).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "busy");
    assert_eq!(server.requests_received(), 4);
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test(start_paused = true)]
async fn throw_on_error_fails_with_req_retry_and_the_count() {
    let server = scripted(&[503]).await;
    let layer = RetryLayer::new().max_retries(2).throw_on_error(true);
    let client = unhurried_client(&server.url()).compose(layer);
    let err = client.request(get("/")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RequestRetry);
    assert_eq!(err.code(), "UND_ERR_REQ_RETRY");
    assert_eq!(err.message(), "Request failed");
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(err.retry_count(), Some(2));
    assert!(err.headers().unwrap().contains_key("content-length"));
    // A status the policy never retries is not an error.
    let server_404 = scripted(&[404]).await;
    let layer = RetryLayer::new().throw_on_error(true);
    let client_404 = unhurried_client(&server_404.url()).compose(layer);
    let response = client_404.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // The thrown 503's body was discarded: the connection is still there.
    let err = client.request(get("/")).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test(start_paused = true)]
async fn post_is_not_retried() {
    let server = scripted(&[503, 200]).await;
    let base = unhurried_client(&server.url());
    let client = base.clone().compose(RetryLayer::new());
    let request = HttpRequest::post("/").body(Body::from("data")).unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.into_body().text().await.unwrap(), "busy");
    assert_eq!(server.requests_received(), 1);
    // Unless the methods say so.
    let client = base.compose(RetryLayer::new().methods([Method::POST]));
    let request = HttpRequest::post("/").body(Body::from("data")).unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn a_reset_connection_is_retried() {
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_err() {
            return;
        }
        if conn.id() == 0 {
            let _ = conn.reset();
            return;
        }
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await;
        let _ = conn.read_to_end().await;
    })
    .await;
    let policy = Recording::default();
    let client = unhurried_client(&server.url()).compose(RetryLayer::new().policy(policy.clone()));
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "ok");
    assert_eq!(policy.delays(), [Duration::from_millis(500)]);
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_network_error_past_max_retries_reaches_the_caller() {
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_ok() {
            let _ = conn.reset();
        }
    })
    .await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new().max_retries(1));
    let err = client.request(get("/")).await.unwrap_err();
    assert!(err.is_socket(), "{err:?}");
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_streamed_body_is_not_retried() {
    let server = scripted(&[503, 200]).await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new());
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>("data")]);
    let request = HttpRequest::put("/")
        .body(Body::from_stream(stream))
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.into_body().text().await.unwrap(), "busy");
    assert_eq!(server.requests_received(), 1);
    // The same PUT with a full body is.
    let request = HttpRequest::put("/").body(Body::from("data")).unwrap();
    assert_eq!(client.request(request).await.unwrap().status(), 200);
}

#[tokio::test(start_paused = true)]
async fn retry_agent_retries_and_forwards_close() {
    let server = scripted(&[500, 200]).await;
    let agent = RetryAgent::new(unhurried_client(&server.url()), RetryLayer::new());
    let response = agent.request(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.into_body().text().await.unwrap(), "ok");
    agent.close().await;
    assert!(agent.is_closed());
    assert!(agent.dispatcher().is_closed());
    let err = agent.request(get("/")).await.unwrap_err();
    assert!(err.is_closed());
}

/// A download server: the first connection sends the head (length 10,
/// ETag "v1"), half the body, and closes; later ones answer with what
/// `second` returns. Every request is recorded.
async fn download(
    second: fn(&RawRequest) -> &'static [u8],
) -> (RawServer, Arc<Mutex<Vec<RawRequest>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RawServer::new(move |mut conn| {
        let record = record.clone();
        async move {
            let Ok(request) = conn.read_request().await else {
                return;
            };
            record.lock().unwrap().push(request.clone());
            if conn.id() == 0 {
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: \"v1\"\r\n\r\n01234",
                    )
                    .await;
                return;
            }
            let _ = conn.write_all(second(&request)).await;
            let _ = conn.read_to_end().await;
        }
    })
    .await;
    (server, seen)
}

#[tokio::test(start_paused = true)]
async fn an_interrupted_download_resumes_with_range_and_if_match() {
    let (server, seen) = download(|_| {
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n56789"
    })
    .await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new());
    let response = client.request(get("/file")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().bytes().await.unwrap();
    assert_eq!(body, "0123456789");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].header("range"), None);
    assert_eq!(seen[1].header("range"), Some("bytes=5-9"));
    assert_eq!(seen[1].header("if-match"), Some("\"v1\""));
}

async fn resume_error(second: fn(&RawRequest) -> &'static [u8]) -> undici_dispatcher::Error {
    let (server, _seen) = download(second).await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new());
    let response = client.request(get("/file")).await.unwrap();
    let err = response.into_body().bytes().await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_REQ_RETRY", "{err:?}");
    assert_eq!(server.connections_accepted(), 2);
    err
}

#[tokio::test(start_paused = true)]
async fn a_server_ignoring_range_fails_the_resumed_body() {
    let err = resume_error(|_| {
        b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n0123456789"
    })
    .await;
    assert_eq!(
        err.message(),
        "server does not support the range header and the payload was partially consumed"
    );
    assert_eq!(err.status(), Some(StatusCode::OK));
}

#[tokio::test(start_paused = true)]
async fn an_etag_mismatch_fails_the_resumed_body() {
    let err = resume_error(|_| {
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nETag: \"v2\"\r\nContent-Length: 5\r\n\r\n56789"
    })
    .await;
    assert_eq!(err.message(), "ETag mismatch");
    assert_eq!(err.retry_count(), Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_content_range_mismatch_fails_the_resumed_body() {
    let err = resume_error(|_| {
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\nETag: \"v1\"\r\nContent-Length: 10\r\n\r\n0123456789"
    })
    .await;
    assert_eq!(err.message(), "Content-Range mismatch");
}

#[tokio::test(start_paused = true)]
async fn a_content_length_mismatch_fails_the_resumed_body() {
    let err = resume_error(|_| {
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nETag: \"v1\"\r\nContent-Length: 4\r\n\r\n5678"
    })
    .await;
    assert_eq!(err.message(), "Content-Length mismatch");
}

#[tokio::test(start_paused = true)]
async fn a_resumed_206_without_content_length_fails_the_resumed_body() {
    // undici checks Content-Length == end - start + 1; a chunked 206
    // gives it nothing to check, and fails as a mismatch.
    let err = resume_error(|_| {
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nETag: \"v1\"\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n56789\r\n0\r\n\r\n"
    })
    .await;
    assert_eq!(err.message(), "Content-Length mismatch");
    assert_eq!(err.status(), Some(StatusCode::PARTIAL_CONTENT));
}

#[tokio::test(start_paused = true)]
async fn without_a_strong_etag_the_broken_body_fails_as_it_is() {
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_ok() {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nETag: W/\"v1\"\r\n\r\n01234")
                .await;
        }
    })
    .await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new());
    let response = client.request(get("/file")).await.unwrap();
    let err = response.into_body().bytes().await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_RES_CONTENT_LENGTH_MISMATCH", "{err:?}");
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test(start_paused = true)]
async fn per_request_overrides_win() {
    let server = scripted(&[503, 503, 200]).await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new().max_retries(0));
    let mut request = get("/");
    request.extensions_mut().insert(
        RequestOptions::new().retry(
            RetryOverrides::new()
                .max_retries(5)
                .min_timeout(Duration::from_millis(1)),
        ),
    );
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.requests_received(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_chunked_download_resumes_from_the_bytes_received() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let server = RawServer::new(move |mut conn| {
        let record = record.clone();
        async move {
            let Ok(request) = conn.read_request().await else {
                return;
            };
            record.lock().unwrap().push(request);
            let answer: &[u8] = if conn.id() == 0 {
                // Five bytes, then the connection closes mid-body.
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"v1\"\r\n\r\n5\r\n01234\r\n"
            } else {
                b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 5-9/10\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\n56789"
            };
            let _ = conn.write_all(answer).await;
            if conn.id() > 0 {
                let _ = conn.read_to_end().await;
            }
        }
    })
    .await;
    let client = unhurried_client(&server.url()).compose(RetryLayer::new());
    let response = client.request(get("/file")).await.unwrap();
    let body = response.into_body().bytes().await.unwrap();
    assert_eq!(body, "0123456789");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].header("range"), Some("bytes=5-"));
    assert_eq!(seen[1].header("if-match"), Some("\"v1\""));
}

#[tokio::test(start_paused = true)]
async fn a_retried_body_over_the_dump_limit_is_dropped() {
    let calls = Arc::new(AtomicUsize::new(0));
    let server = TestServer::http1(move |_request| {
        let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
        async move {
            if first {
                HttpResponse::builder()
                    .status(503)
                    .body(body::full(vec![b'x'; 4096]))
                    .unwrap()
            } else {
                status(200, "ok")
            }
        }
    })
    .await;
    let layer = RetryLayer::new().dump_max_size(1024);
    let client = unhurried_client(&server.url()).compose(layer);
    let response = client.request(get("/")).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "ok");
    // Too large to read through: its connection was closed instead.
    assert_eq!(server.connections_accepted(), 2);
}

#[tokio::test(start_paused = true)]
async fn retry_works_over_a_plain_service_fn() {
    use tower::{service_fn, ServiceBuilder, ServiceExt};
    use undici_dispatcher::{Error, Response};

    // A socket error, a 503, then a 200.
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let service = ServiceBuilder::new()
        .layer(RetryLayer::new())
        .service(service_fn(move |_request: Request| {
            let call = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match call {
                    0 => Err(Error::socket("other side closed")),
                    1 => Ok(HttpResponse::builder()
                        .status(503)
                        .body(Body::from("busy"))
                        .unwrap()),
                    _ => Ok::<Response, Error>(HttpResponse::new(Body::from("ok"))),
                }
            }
        }));
    let started = Instant::now();
    let response = service.oneshot(get("/")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_waited(started.elapsed(), Duration::from_millis(1500), 2);
    assert_eq!(response.into_body().text().await.unwrap(), "ok");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
