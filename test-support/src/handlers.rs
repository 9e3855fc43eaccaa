//! Ready-made handlers for [`TestServer`](crate::TestServer).

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use hyper::body::Incoming;

use crate::body::{self, TestBody};

/// 200 with the body `hello world`.
pub async fn hello(_req: Request<Incoming>) -> Response<TestBody> {
    Response::new(body::full("hello world"))
}

/// Echoes the request:
///
/// - `x-method`: the request method;
/// - `x-path`: the path and query as received (`/a?b=1`), or the whole
///   target when it has no path (e.g. `CONNECT host:443`);
/// - `x-version`: `HTTP/1.1`, `HTTP/2.0`, …;
/// - `x-req-<name>`: one header per request header (`x-req-host`,
///   `x-req-content-type`, …), repeated headers repeated;
/// - the body: the request body, streamed back as it arrives, trailers
///   included (with the request's length, if it had one).
pub async fn echo(req: Request<Incoming>) -> Response<TestBody> {
    let (parts, incoming) = req.into_parts();
    let mut builder = Response::builder()
        .header("x-method", parts.method.as_str())
        .header("x-version", format!("{:?}", parts.version));
    let path = match parts.uri.path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => parts.uri.to_string(),
    };
    if let Ok(path) = HeaderValue::from_str(&path) {
        builder = builder.header("x-path", path);
    }
    for (name, value) in &parts.headers {
        if let Ok(echoed) = HeaderName::from_bytes(format!("x-req-{name}").as_bytes()) {
            builder = builder.header(echoed, value.clone());
        }
    }
    builder
        .body(body::from_body(incoming))
        .unwrap_or_else(|_| Response::new(body::empty()))
}

/// Answers every request with `status` and an empty body.
pub fn status(
    status: u16,
) -> impl Fn(Request<Incoming>) -> std::future::Ready<Response<TestBody>> + Send + Sync + Clone + 'static
{
    move |_req| {
        let mut response = Response::new(body::empty());
        *response.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
        std::future::ready(response)
    }
}

/// A redirect response: `status` (301, 302, 303, 307, 308...) with this
/// `location` and a short body, for handlers that route by path.
///
/// ```
/// use undici_test_support::{handlers, TestServer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = TestServer::http1(|req: http::Request<_>| async move {
///     match req.uri().path() {
///         "/old" => handlers::redirect(301, "/new"),
///         _ => handlers::echo(req).await,
///     }
/// })
/// .await;
/// # drop(server);
/// # }
/// ```
pub fn redirect(status: u16, location: &str) -> Response<TestBody> {
    let mut response = Response::new(body::full(format!("redirecting to {location}")));
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::FOUND);
    if let Ok(location) = HeaderValue::from_str(location) {
        response
            .headers_mut()
            .insert(http::header::LOCATION, location);
    }
    response
}
