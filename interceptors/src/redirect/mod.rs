//! The redirect interceptor: undici's `interceptors.redirect()`.
//!
//! [`RedirectLayer`] follows `300`, `301`, `302`, `303`, `307` and `308`
//! responses that carry a `Location`, up to
//! [`max_redirections`](RedirectLayer::max_redirections), which is unset
//! by default: as in undici, nothing is followed until it is set on the
//! layer or on the request
//! ([`RequestOptions::max_redirections`](undici_dispatcher::RequestOptions::max_redirections)).
//! A [`RedirectPolicy`] may refuse some redirects; the default follows
//! all of them.
//!
//! ```
//! use tower::ServiceBuilder;
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt};
//! use undici_interceptors::redirect::{RedirectHistory, RedirectLayer};
//! # use undici_test_support::{body, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # let server = TestServer::http1(|request: http::Request<_>| async move {
//! #     match request.uri().path() {
//! #         "/old" => http::Response::builder()
//! #             .status(301)
//! #             .header("location", "/new")
//! #             .body(body::full("moved"))
//! #             .unwrap(),
//! #         _ => http::Response::new(body::full("here")),
//! #     }
//! # })
//! # .await;
//! // This server answers /old with `301 Location: /new`.
//! let client = Client::new(server.url().as_str())?;
//! let redirect = RedirectLayer::new().max_redirections(5);
//!
//! // In a tower stack...
//! let service = ServiceBuilder::new()
//!     .layer(redirect.clone())
//!     .service(client.clone());
//! let response = service.request(http::Request::get("/old").body(Body::empty()).unwrap()).await?;
//! assert_eq!(response.status(), 200);
//! let history = response.extensions().get::<RedirectHistory>().unwrap();
//! assert_eq!(history.urls(), ["/old", "/new"]);
//! assert_eq!(response.into_body().text().await?, "here");
//!
//! // ...or composed onto the dispatcher, which keeps close and destroy.
//! let client = client.compose(redirect);
//! let response = client.request(http::Request::get("/old").body(Body::empty()).unwrap()).await?;
//! assert_eq!(response.into_body().text().await?, "here");
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What a redirect does to the request
//!
//! As in undici:
//!
//! - `301` or `302` answering a `POST`, and `303` answering anything but
//!   `HEAD`, become a `GET` without body and without `content-*` headers.
//!   `307` and `308` (and the rest) keep the method and the body, which
//!   must be replayable (empty or full): after a streamed body, the
//!   redirect response is handed back.
//! - `host` is removed on every hop, with
//!   [`strip_headers_on_redirect`](RedirectLayer::strip_headers_on_redirect);
//!   `authorization`, `cookie`, `proxy-authorization` and
//!   [`strip_headers_on_cross_origin_redirect`](RedirectLayer::strip_headers_on_cross_origin_redirect)
//!   on a hop to another origin. Once removed, they stay removed.
//! - A relative `Location` is resolved against the URI that answered
//!   (RFC 3986 §5.2). Requests sent in origin-form (`/path`, as to a
//!   Client) stay in origin-form until a `Location` names an origin; as
//!   their origin is not known here, such a hop counts as cross-origin
//!   and drops credentials. Send absolute URIs to keep them on
//!   same-origin hops.
//! - A redirect to another origin needs a dispatcher that serves it (an
//!   [`Agent`](undici_dispatcher::Agent)); a Client refuses it with
//!   `UND_ERR_INVALID_ARG`.
//! - A redirect back to a URI already visited fails with
//!   `UND_ERR_INVALID_ARG`, "Redirect loop detected".
//! - At the limit, the last redirect response is handed back, or, with
//!   [`throw_on_max_redirect`](RedirectLayer::throw_on_max_redirect), the
//!   request fails ("max redirects").
//! - Redirect responses' bodies are read and discarded (up to
//!   [`dump_max_size`](RedirectLayer::dump_max_size), 64 KiB) so that the
//!   connection serves the next hop.
//! - The final response carries a [`RedirectHistory`] in its extensions
//!   when a redirect was followed.
//!
//! # Cost
//!
//! A request for which redirects are off goes straight through. One that
//! may be redirected keeps a copy of its head and of its (replayable)
//! body, a reference count; a response that is not a redirect is handed
//! back as it came.
//!
//! # Differences from undici
//!
//! - With `throw_on_max_redirect`, undici fails even a final non-redirect
//!   response once the limit is reached; here only a redirect past the
//!   limit fails.
//! - The request's `strip_headers_*` lists add to the layer's instead of
//!   replacing them.

mod future;
mod layer;
mod policy;
mod uri;

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use tower_service::Service;
use undici_dispatcher::{Error, Request, RequestOptions, Response};

pub use future::RedirectFuture;
pub use layer::{RedirectLayer, DEFAULT_DUMP_MAX_SIZE};
pub use policy::{Action, DefaultRedirectPolicy, Hop, RedirectPolicy, SameOrigin};

use future::Hops;
use layer::RedirectOptions;

/// The URIs a redirected request went through, the first one the
/// original, the last one the URI of the response it is attached to.
/// Found in the final response's extensions when at least one redirect
/// was followed (undici's `context.history`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedirectHistory {
    urls: Vec<Uri>,
}

impl RedirectHistory {
    pub(crate) fn new(urls: Vec<Uri>) -> Self {
        RedirectHistory { urls }
    }

    /// Every URI requested, in order.
    pub fn urls(&self) -> &[Uri] {
        &self.urls
    }

    /// How many redirects were followed.
    pub fn redirects(&self) -> usize {
        self.urls.len().saturating_sub(1)
    }

    /// The URI first requested.
    pub fn original(&self) -> Option<&Uri> {
        self.urls.first()
    }

    /// The URI that gave the response.
    pub fn last(&self) -> Option<&Uri> {
        self.urls.last()
    }
}

/// The redirect service: `S` with [`RedirectLayer`]'s behaviour. Built
/// by the layer.
#[derive(Clone, Debug)]
pub struct Redirect<S, P = DefaultRedirectPolicy> {
    inner: S,
    options: Arc<RedirectOptions>,
    policy: P,
}

impl<S, P> Redirect<S, P> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, P> Service<Request> for Redirect<S, P>
where
    S: Service<Request, Response = Response, Error = Error> + Clone,
    P: RedirectPolicy,
{
    type Response = Response;
    type Error = Error;
    type Future = RedirectFuture<S, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request) -> RedirectFuture<S, P> {
        let max = RequestOptions::of(&request)
            .and_then(RequestOptions::max_redirections_override)
            .or(self.options.max_redirections)
            .unwrap_or(0);
        if max == 0 {
            return RedirectFuture::passthrough(self.inner.call(request));
        }
        // The ready service sends this request; a clone sends the next.
        let clone = self.inner.clone();
        let mut service = mem::replace(&mut self.inner, clone);
        let (parts, body) = request.into_parts();
        let copy = body.try_clone();
        let head = parts.clone();
        let future = service.call(Request::from_parts(parts, body));
        let hops = Hops {
            service,
            parts: head,
            body: copy,
            policy: self.policy.clone(),
            options: self.options.clone(),
            max,
            history: Vec::new(),
        };
        RedirectFuture::following(future, hops)
    }
}
