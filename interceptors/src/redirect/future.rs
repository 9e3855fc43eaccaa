//! `RedirectFuture`, and `Hops`: the request as it is rewritten from one
//! redirect to the next.

use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::header::{AUTHORIZATION, COOKIE, HOST, LOCATION, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use http_body::Body as _;
use pin_project_lite::pin_project;
use tower_service::Service;
use undici_dispatcher::{Body, Error, ErrorKind, Request, RequestOptions, Response};

use super::layer::RedirectOptions;
use super::policy::{Action, Hop, RedirectPolicy};
use super::uri::{is_cross_origin, resolve};
use super::RedirectHistory;

/// The request being redirected: its current head, a copy of its body
/// (`None` for a stream), and where it has been.
pub(crate) struct Hops<S, P> {
    pub(crate) service: S,
    pub(crate) parts: http::request::Parts,
    pub(crate) body: Option<Body>,
    pub(crate) policy: P,
    pub(crate) options: Arc<RedirectOptions>,
    pub(crate) max: usize,
    pub(crate) history: Vec<Uri>,
}

/// What a response means for the request.
enum Decision {
    /// Not a redirect to follow: it goes to the caller.
    Deliver,
    /// The request was rewritten for the next hop.
    Follow,
    /// The redirect is an error.
    Fail(Error),
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 300 | 301 | 302 | 303 | 307 | 308)
}

/// The next request's method, and whether it keeps the body (RFC 9110
/// §15.4, as undici and the fetch standard apply it).
fn rewrite(status: StatusCode, method: &Method) -> (Method, bool) {
    match status.as_u16() {
        301 | 302 if method == Method::POST => (Method::GET, false),
        303 if method != Method::HEAD => (Method::GET, false),
        303 => (Method::HEAD, false),
        _ => (method.clone(), true),
    }
}

fn remove_content_headers(headers: &mut HeaderMap) {
    let names: Vec<HeaderName> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("content-"))
        .cloned()
        .collect();
    for name in names {
        headers.remove(name);
    }
}

impl<S, P> Hops<S, P>
where
    S: Service<Request, Response = Response, Error = Error>,
    P: RedirectPolicy,
{
    fn request_options(&self) -> Option<&RequestOptions> {
        self.parts.extensions.get::<RequestOptions>()
    }

    fn decide(&mut self, response: &Response) -> Decision {
        let status = response.status();
        if !is_redirect(status) {
            return Decision::Deliver;
        }
        let Some(location) = response.headers().get(LOCATION) else {
            return Decision::Deliver;
        };
        if self.history.len() >= self.max {
            let throw = self
                .request_options()
                .and_then(RequestOptions::throw_on_max_redirect_override)
                .unwrap_or(self.options.throw_on_max_redirect);
            if !throw {
                return Decision::Deliver;
            }
            return Decision::Fail(
                Error::invalid_argument("max redirects")
                    .with_status(status)
                    .with_headers(response.headers().clone()),
            );
        }
        // Not every server sends ASCII: decode as browsers do, then
        // percent-encode.
        let location = String::from_utf8_lossy(location.as_bytes());
        let target = match resolve(&self.parts.uri, &location) {
            Ok(target) => target,
            Err(error) => return Decision::Fail(error.with_status(status)),
        };
        let (method, keeps_body) = rewrite(status, &self.parts.method);
        if keeps_body && self.body.is_none() {
            // The body was a stream, already sent: it cannot follow.
            return Decision::Deliver;
        }
        let cross_origin = is_cross_origin(&self.parts.uri, &target);
        let hop = Hop {
            status,
            headers: response.headers(),
            previous: &self.parts.uri,
            location: &target,
            method: &method,
            redirects: self.history.len(),
            cross_origin,
        };
        match self.policy.redirect(&hop) {
            Ok(Action::Follow) => {}
            Ok(Action::Stop) => return Decision::Deliver,
            Err(error) => return Decision::Fail(error),
        }
        if target == self.parts.uri || self.history.contains(&target) {
            return Decision::Fail(Error::invalid_argument(format!(
                "Redirect loop detected. Cannot redirect to {target}. This typically happens \
                 when using a Client or Pool with cross-origin redirects. Use an Agent for \
                 cross-origin redirects."
            )));
        }
        self.follow(status, target, method, keeps_body, cross_origin);
        Decision::Follow
    }

    /// Rewrites the request for the next hop, as undici does.
    fn follow(
        &mut self,
        status: StatusCode,
        target: Uri,
        method: Method,
        keeps_body: bool,
        cross_origin: bool,
    ) {
        let previous = mem::replace(&mut self.parts.uri, target);
        self.history.push(previous);
        self.parts.method = method;
        if !keeps_body {
            self.body = Some(Body::empty());
        }
        let per_request = self.parts.extensions.get::<RequestOptions>();
        let headers = &mut self.parts.headers;
        if !keeps_body || status == StatusCode::SEE_OTHER {
            remove_content_headers(headers);
        }
        // The Host header named the previous target.
        headers.remove(HOST);
        let strip = self.options.strip_headers_on_redirect.iter().chain(
            per_request
                .map(RequestOptions::strip_headers_on_redirect_list)
                .unwrap_or_default(),
        );
        for name in strip {
            headers.remove(name);
        }
        if cross_origin {
            for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
                headers.remove(name);
            }
            let strip = self
                .options
                .strip_headers_on_cross_origin_redirect
                .iter()
                .chain(
                    per_request
                        .map(RequestOptions::strip_headers_on_cross_origin_redirect_list)
                        .unwrap_or_default(),
                );
            for name in strip {
                headers.remove(name);
            }
        }
    }

    fn next_request(&self) -> Request {
        let body = self
            .body
            .as_ref()
            .and_then(Body::try_clone)
            .unwrap_or_default();
        let mut request = Request::from_parts(self.parts.clone(), body);
        self.policy.on_request(&mut request);
        request
    }

    /// The response for the caller, with the history when a redirect was
    /// followed.
    fn finish(&mut self, mut response: Response) -> Response {
        if !self.history.is_empty() {
            let mut urls = mem::take(&mut self.history);
            urls.push(self.parts.uri.clone());
            response.extensions_mut().insert(RedirectHistory::new(urls));
        }
        response
    }
}

/// What to do once a redirect's body is discarded.
enum Next {
    Follow,
    Fail(Error),
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Discarding { body: Body, read: u64, next: Option<Next> },
        Ready,
        Idle,
    }
}

/// Starts discarding `body`, unless it is over the limit already by its
/// size (then it is dropped, closing its connection).
fn discard<F>(body: Body, limit: u64, next: Next) -> State<F> {
    let body = if body.size_hint().lower() > limit {
        Body::empty()
    } else {
        body
    };
    State::Discarding {
        body,
        read: 0,
        next: Some(next),
    }
}

pin_project! {
    /// The response future of [`Redirect`](super::Redirect): the response
    /// at the end of the redirects.
    pub struct RedirectFuture<S, P>
    where
        S: Service<Request>,
    {
        #[pin]
        kind: Kind<S, P>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, P>
    where
        S: Service<Request>,
    {
        // Redirects are not followed for this request.
        Passthrough { #[pin] future: S::Future },
        // Boxed: the state of following is a request head and more, and
        // every layer above moves this future, which most often passes
        // through.
        Following { #[pin] state: State<S::Future>, hops: Box<Hops<S, P>> },
    }
}

impl<S, P> RedirectFuture<S, P>
where
    S: Service<Request>,
{
    pub(crate) fn passthrough(future: S::Future) -> Self {
        RedirectFuture {
            kind: Kind::Passthrough { future },
        }
    }

    pub(crate) fn following(future: S::Future, hops: Hops<S, P>) -> Self {
        RedirectFuture {
            kind: Kind::Following {
                state: State::Calling { future },
                hops: Box::new(hops),
            },
        }
    }
}

impl<S, P> Future for RedirectFuture<S, P>
where
    S: Service<Request, Response = Response, Error = Error>,
    P: RedirectPolicy,
{
    type Output = Result<Response, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let (mut state, hops) = match self.project().kind.project() {
            KindProj::Passthrough { future } => return future.poll(cx),
            KindProj::Following { state, hops } => (state, hops),
        };
        loop {
            match state.as_mut().project() {
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    let limit = hops.options.dump_max_size;
                    match hops.decide(&response) {
                        Decision::Deliver => {
                            state.set(State::Idle);
                            return Poll::Ready(Ok(hops.finish(response)));
                        }
                        Decision::Follow => {
                            state.set(discard(response.into_body(), limit, Next::Follow));
                        }
                        Decision::Fail(error) => {
                            state.set(discard(response.into_body(), limit, Next::Fail(error)));
                        }
                    }
                }
                StateProj::Discarding { body, read, next } => {
                    let limit = hops.options.dump_max_size;
                    if crate::discard::poll_discard_and_drop(body, read, limit, cx).is_pending() {
                        return Poll::Pending;
                    }
                    match next.take() {
                        Some(Next::Follow) => state.set(State::Ready),
                        Some(Next::Fail(error)) => {
                            state.set(State::Idle);
                            return Poll::Ready(Err(error));
                        }
                        None => state.set(State::Idle),
                    }
                }
                StateProj::Ready => {
                    ready!(hops.service.poll_ready(cx))?;
                    let request = hops.next_request();
                    let future = hops.service.call(request);
                    state.set(State::Calling { future });
                }
                StateProj::Idle => {
                    return Poll::Ready(Err(Error::new(
                        ErrorKind::InvalidArgument,
                        "the redirect future was polled after it completed",
                    )))
                }
            }
        }
    }
}

impl<S, P> std::fmt::Debug for RedirectFuture<S, P>
where
    S: Service<Request>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedirectFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(status: u16, method: &str) -> (String, bool) {
        let status = StatusCode::from_u16(status).unwrap();
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (method, keeps_body) = rewrite(status, &method);
        (method.to_string(), keeps_body)
    }

    #[test]
    fn the_method_is_rewritten_as_undici_does() {
        let cases = [
            // 301 and 302: only POST becomes GET (QUERY is safe, kept).
            (301, "POST", "GET", false),
            (302, "POST", "GET", false),
            (301, "PUT", "PUT", true),
            (302, "DELETE", "DELETE", true),
            (301, "GET", "GET", true),
            (302, "QUERY", "QUERY", true),
            // 303: anything but HEAD becomes GET, never with a body.
            (303, "POST", "GET", false),
            (303, "PUT", "GET", false),
            (303, "GET", "GET", false),
            (303, "QUERY", "GET", false),
            (303, "HEAD", "HEAD", false),
            // 300, 307, 308: method and body kept.
            (300, "POST", "POST", true),
            (307, "POST", "POST", true),
            (307, "PATCH", "PATCH", true),
            (308, "PUT", "PUT", true),
            (308, "HEAD", "HEAD", true),
        ];
        for (status, method, expected, keeps_body) in cases {
            assert_eq!(
                rewritten(status, method),
                (expected.to_owned(), keeps_body),
                "{status} {method}"
            );
        }
    }

    #[test]
    fn only_the_six_redirect_statuses_are_redirects() {
        let redirects: Vec<u16> = (100..600)
            .filter(|&code| is_redirect(StatusCode::from_u16(code).unwrap()))
            .collect();
        assert_eq!(redirects, [300, 301, 302, 303, 307, 308]);
    }

    #[test]
    fn content_headers_are_all_removed() {
        let mut headers = HeaderMap::new();
        for name in [
            "content-type",
            "content-length",
            "content-encoding",
            "x-content",
        ] {
            headers.insert(HeaderName::from_static(name), "1".parse().unwrap());
        }
        remove_content_headers(&mut headers);
        let left: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(left, ["x-content"]);
    }
}
