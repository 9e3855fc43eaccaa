//! Small helpers shared by the dispatcher's tests (servers come from
//! undici-test-support).
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use undici_dispatcher::{Body, DispatcherExt, Error, Request, Response};

/// A GET for `path` (origin-form or absolute).
pub fn get(path: &str) -> Request {
    http::Request::get(path).body(Body::empty()).unwrap()
}

/// Sends a GET and reads the body as text.
pub async fn get_text<D: DispatcherExt>(dispatcher: &D, path: &str) -> Result<String, Error> {
    read_text(dispatcher.request(get(path))).await
}

/// Waits for the response of a request already made, and reads its body
/// as text.
pub async fn read_text(
    sending: impl Future<Output = Result<Response, Error>>,
) -> Result<String, Error> {
    sending.await?.into_body().text().await
}

/// Sends a GET and answers the response head.
pub async fn get_response<D: DispatcherExt>(dispatcher: &D, path: &str) -> Result<Response, Error> {
    dispatcher.request(get(path)).await
}

/// Fails the test if `future` takes longer than `limit`: no test may hang.
pub async fn within<F: Future>(limit: Duration, future: F) -> F::Output {
    match tokio::time::timeout(limit, future).await {
        Ok(output) => output,
        Err(_) => panic!("did not finish within {limit:?}"),
    }
}

/// Five seconds: far more than any loopback exchange here needs.
pub const PATIENCE: Duration = Duration::from_secs(5);
