//! undici's `dispatcher.compose()` examples: interceptors are tower
//! layers, composed onto a dispatcher with `.compose(layer)` or stacked
//! with `tower::ServiceBuilder`.
//!
//! Order, once for all: undici's `compose([a, b, c])` calls `c` first and
//! `a` last, right before the dispatcher. In a `ServiceBuilder` the first
//! layer is the outermost, the first called, so the same stack is
//! `ServiceBuilder::new().layer(c).layer(b).layer(a)`. Chained
//! `.compose(a).compose(b)` calls `b` first in both.
//!
//! Run with `cargo run --example dispatcher_compose`.

use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use http::HeaderValue;
use tower::{Layer, Service, ServiceBuilder};
use undici::interceptors::redirect::RedirectLayer;
use undici::interceptors::retry::RetryLayer;
use undici::prelude::*;
use undici_test_support::{body, handlers, TestServer};

/// A small interceptor: logs each request and its answer, and appends
/// its name to an `x-via` header on the way in.
#[derive(Clone, Copy)]
struct TagLayer(&'static str);

impl<S> Layer<S> for TagLayer {
    type Service = Tag<S>;

    fn layer(&self, inner: S) -> Tag<S> {
        Tag {
            inner,
            name: self.0,
        }
    }
}

#[derive(Clone)]
struct Tag<S> {
    inner: S,
    name: &'static str,
}

impl<S> Service<Request> for Tag<S>
where
    S: Service<Request, Response = Response, Error = Error>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Response, Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let name = self.name;
        println!("  {name}: {} {}", request.method(), request.uri());
        request
            .headers_mut()
            .append("x-via", HeaderValue::from_static(name));
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            println!("  {name}: <- {}", response.status());
            Ok(response)
        })
    }
}

/// Sends a GET and prints the `x-via` headers the (echo) server saw.
async fn show<D: DispatcherExt>(title: &str, dispatcher: &D) -> Result<(), Error> {
    println!("{title}");
    let request = http::Request::get("/")
        .body(Body::empty())
        .expect("a valid request");
    let response = dispatcher.request(request).await?;
    let via: Vec<_> = response
        .headers()
        .get_all("x-req-x-via")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    println!("  the server saw x-via: {via:?}");
    response.into_body().dump(undici::DEFAULT_DUMP_LIMIT).await
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let echo = TestServer::http1(handlers::echo).await;
    let client = Client::new(echo.url())?;

    // `client.compose(tag)`: close, destroy and events still reach the client.
    let tagged = client.clone().compose(TagLayer("tag"));
    show("client.compose(tag)", &tagged).await?;

    // undici's `compose([a, b, c])`, as a ServiceBuilder: c first.
    let stack = ServiceBuilder::new()
        .layer(TagLayer("c"))
        .layer(TagLayer("b"))
        .layer(TagLayer("a"));
    show(
        "compose([a, b, c]) = ServiceBuilder c, b, a",
        &client.clone().compose(stack),
    )
    .await?;

    // Chained: `.compose(a).compose(b)` calls b first.
    let chained = client.clone().compose(TagLayer("a")).compose(TagLayer("b"));
    show(".compose(a).compose(b)", &chained).await?;

    // A plain tower stack over the client works with the same APIs.
    let service = ServiceBuilder::new()
        .layer(TagLayer("plain"))
        .service(client.clone());
    show("ServiceBuilder::service(client)", &service).await?;

    // The seed's redirect interceptor: follows redirects when the request
    // (or the layer) sets max_redirections; then a retry layer on top.
    let site = TestServer::http1(|req: http::Request<hyper::body::Incoming>| async move {
        match req.uri().path() {
            "/old" => http::Response::builder()
                .status(302)
                .header("location", "/new")
                .body(body::empty())
                .expect("a valid response"),
            _ => http::Response::new(body::full("moved here")),
        }
    })
    .await;
    let client = Client::new(site.url())?
        .compose(RedirectLayer::new())
        .compose(RetryLayer::new());
    let request = http::Request::get("/old")
        .extension(RequestOptions::new().max_redirections(3))
        .body(Body::empty())
        .expect("a valid request");
    let text = client.request(request).await?.into_body().text().await?;
    println!("redirect + retry: GET /old -> {text:?}");

    // Closing the composed dispatcher closes the client underneath.
    client.close().await;
    println!("closed: {}", client.is_closed());
    tagged.close().await;
    Ok(())
}
