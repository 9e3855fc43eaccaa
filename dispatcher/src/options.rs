//! Per-request options: undici's dispatch options object, carried as a
//! typed value in the request's extensions.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName, Method, StatusCode};

use crate::Request;

/// undici's per-request options (`headersTimeout`, `bodyTimeout`,
/// `idempotent`, `reset`, `upgrade`, `opaque`, `onInfo`, and what the
/// interceptors read: `maxRedirections`, `retryOptions`, `dumpMaxSize`...).
///
/// They travel in the request's extensions; a dispatcher or an interceptor
/// reads them there and falls back to its own options for what is unset.
///
/// ```
/// use std::time::Duration;
/// use undici_dispatcher::{Body, RequestOptions};
///
/// let request = http::Request::get("http://localhost:3000/slow")
///     .extension(
///         RequestOptions::new()
///             .headers_timeout(Duration::from_secs(2))
///             .body_timeout(Duration::from_secs(10))
///             .max_redirections(3),
///     )
///     .body(Body::empty())
///     .unwrap();
/// # let _ = request;
/// ```
#[derive(Clone, Default)]
pub struct RequestOptions {
    headers_timeout: Option<Duration>,
    body_timeout: Option<Duration>,
    idempotent: Option<bool>,
    blocking: Option<bool>,
    reset: bool,
    upgrade: Option<String>,
    expect_continue: bool,
    opaque: Option<Opaque>,
    on_info: Option<OnInfo>,
    allow_h2: Option<bool>,
    max_redirections: Option<usize>,
    throw_on_max_redirect: Option<bool>,
    strip_headers_on_redirect: Vec<HeaderName>,
    strip_headers_on_cross_origin_redirect: Vec<HeaderName>,
    retry: Option<RetryOverrides>,
    dump_max_size: Option<u64>,
}

impl RequestOptions {
    /// No overrides: the dispatcher's and interceptors' options apply.
    pub fn new() -> Self {
        RequestOptions::default()
    }

    /// The options of `request`, or none. Inline: every layer asks, and a
    /// request without extensions answers in a test of one pointer.
    #[inline]
    pub fn of(request: &Request) -> Option<&RequestOptions> {
        request.extensions().get::<RequestOptions>()
    }

    /// The options of `request`, inserted empty if it had none.
    pub fn of_mut(request: &mut Request) -> &mut RequestOptions {
        request
            .extensions_mut()
            .get_or_insert_with(RequestOptions::default)
    }

    /// Time to wait for the complete response headers; `Duration::ZERO`
    /// turns the timeout off. Default: the dispatcher's (300 s).
    pub fn headers_timeout(mut self, timeout: Duration) -> Self {
        self.headers_timeout = Some(timeout);
        self
    }

    /// Longest silence between two body chunks; `Duration::ZERO` turns the
    /// timeout off. Default: the dispatcher's (300 s).
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = Some(timeout);
        self
    }

    /// Whether the request may be sent again after a failure that might
    /// have reached the server. Default: true for GET, HEAD, OPTIONS,
    /// TRACE, PUT, DELETE and QUERY... see [`is_idempotent`](Self::is_idempotent).
    pub fn idempotent(mut self, idempotent: bool) -> Self {
        self.idempotent = Some(idempotent);
        self
    }

    /// undici's `blocking`: whether the response blocks the pipeline.
    /// Kept for compatibility; hyper never pipelines HTTP/1.1, so every
    /// request blocks its connection until its response has been read.
    pub fn blocking(mut self, blocking: bool) -> Self {
        self.blocking = Some(blocking);
        self
    }

    /// Do not reuse the connection after this request (`connection: close`).
    pub fn reset(mut self, reset: bool) -> Self {
        self.reset = reset;
        self
    }

    /// Upgrade the connection to this protocol (`upgrade` header and a 101
    /// answer), as [`DispatcherExt::upgrade`](crate::DispatcherExt::upgrade) does.
    pub fn upgrade(mut self, protocol: impl Into<String>) -> Self {
        self.upgrade = Some(protocol.into());
        self
    }

    /// Send `expect: 100-continue` and hold the body until the server says
    /// 100 (undici supports this for HTTP/2 only).
    pub fn expect_continue(mut self, expect: bool) -> Self {
        self.expect_continue = expect;
        self
    }

    /// A value handed back with the response, in its extensions as
    /// [`Opaque`].
    pub fn opaque<T: Any + Send + Sync>(mut self, value: T) -> Self {
        self.opaque = Some(Opaque(Arc::new(value)));
        self
    }

    /// Called for each informational (1xx) response (undici's `onInfo`).
    /// HTTP/1.1 only: hyper's HTTP/2 client does not hand 1xx heads on.
    pub fn on_info(mut self, callback: impl Fn(&Informational) + Send + Sync + 'static) -> Self {
        self.on_info = Some(OnInfo::new(callback));
        self
    }

    /// Offer HTTP/2 for this request's origin or not (an Agent keeps a
    /// separate HTTP/1-only pool for requests that say no).
    pub fn allow_h2(mut self, allow: bool) -> Self {
        self.allow_h2 = Some(allow);
        self
    }

    /// Redirects to follow (read by the redirect interceptor).
    pub fn max_redirections(mut self, max: usize) -> Self {
        self.max_redirections = Some(max);
        self
    }

    /// Fail when `max_redirections` is reached instead of handing back the
    /// last 3xx (read by the redirect interceptor).
    pub fn throw_on_max_redirect(mut self, throw: bool) -> Self {
        self.throw_on_max_redirect = Some(throw);
        self
    }

    /// Headers removed on every redirect hop (read by the redirect
    /// interceptor).
    pub fn strip_headers_on_redirect(
        mut self,
        names: impl IntoIterator<Item = HeaderName>,
    ) -> Self {
        self.strip_headers_on_redirect = names.into_iter().collect();
        self
    }

    /// Headers removed on cross-origin redirect hops, besides
    /// `authorization`, `cookie` and `proxy-authorization` (read by the
    /// redirect interceptor).
    pub fn strip_headers_on_cross_origin_redirect(
        mut self,
        names: impl IntoIterator<Item = HeaderName>,
    ) -> Self {
        self.strip_headers_on_cross_origin_redirect = names.into_iter().collect();
        self
    }

    /// Retry overrides for this request (undici's `retryOptions`, read by
    /// the retry interceptor).
    pub fn retry(mut self, overrides: RetryOverrides) -> Self {
        self.retry = Some(overrides);
        self
    }

    /// Largest body the dump interceptor discards for this request.
    pub fn dump_max_size(mut self, max: u64) -> Self {
        self.dump_max_size = Some(max);
        self
    }

    /// The headers timeout override.
    pub fn headers_timeout_override(&self) -> Option<Duration> {
        self.headers_timeout
    }

    /// The body timeout override.
    pub fn body_timeout_override(&self) -> Option<Duration> {
        self.body_timeout
    }

    /// Whether a request with `method` and these options may be sent
    /// again: the `idempotent` option, else undici's default (true for
    /// GET, HEAD, QUERY and the other idempotent methods of RFC 9110).
    pub fn is_idempotent(&self, method: &Method) -> bool {
        self.idempotent
            .unwrap_or_else(|| is_idempotent_method(method))
    }

    /// The `blocking` option.
    pub fn blocking_override(&self) -> Option<bool> {
        self.blocking
    }

    /// Whether the connection is dropped after this request.
    pub fn is_reset(&self) -> bool {
        self.reset
    }

    /// The upgrade protocol, if any.
    pub fn upgrade_protocol(&self) -> Option<&str> {
        self.upgrade.as_deref()
    }

    /// Whether `expect: 100-continue` was asked for.
    pub fn is_expect_continue(&self) -> bool {
        self.expect_continue
    }

    /// The opaque value.
    pub fn opaque_value(&self) -> Option<&Opaque> {
        self.opaque.as_ref()
    }

    /// The 1xx callback.
    pub fn on_info_callback(&self) -> Option<&OnInfo> {
        self.on_info.as_ref()
    }

    /// The `allow_h2` override.
    pub fn allow_h2_override(&self) -> Option<bool> {
        self.allow_h2
    }

    /// The `max_redirections` override.
    pub fn max_redirections_override(&self) -> Option<usize> {
        self.max_redirections
    }

    /// The `throw_on_max_redirect` override.
    pub fn throw_on_max_redirect_override(&self) -> Option<bool> {
        self.throw_on_max_redirect
    }

    /// Headers stripped on every redirect.
    pub fn strip_headers_on_redirect_list(&self) -> &[HeaderName] {
        &self.strip_headers_on_redirect
    }

    /// Headers stripped on cross-origin redirects.
    pub fn strip_headers_on_cross_origin_redirect_list(&self) -> &[HeaderName] {
        &self.strip_headers_on_cross_origin_redirect
    }

    /// The retry overrides.
    pub fn retry_overrides(&self) -> Option<&RetryOverrides> {
        self.retry.as_ref()
    }

    /// The `dump_max_size` override.
    pub fn dump_max_size_override(&self) -> Option<u64> {
        self.dump_max_size
    }
}

/// The methods idempotent by default: RFC 9110 §9.2.2's (GET, HEAD,
/// OPTIONS, TRACE, PUT, DELETE) and QUERY. undici's default is narrower
/// (GET, HEAD, QUERY); this one is what HTTP promises, and it only decides
/// whether a request that a reused connection lost is sent again.
pub fn is_idempotent_method(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || method.as_str() == "QUERY"
}

impl fmt::Debug for RequestOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestOptions")
            .field("headers_timeout", &self.headers_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("idempotent", &self.idempotent)
            .field("blocking", &self.blocking)
            .field("reset", &self.reset)
            .field("upgrade", &self.upgrade)
            .field("expect_continue", &self.expect_continue)
            .field("opaque", &self.opaque.is_some())
            .field("on_info", &self.on_info.is_some())
            .field("allow_h2", &self.allow_h2)
            .field("max_redirections", &self.max_redirections)
            .field("throw_on_max_redirect", &self.throw_on_max_redirect)
            .field("retry", &self.retry)
            .field("dump_max_size", &self.dump_max_size)
            .finish()
    }
}

/// The opaque value of a request, handed back in the response's
/// extensions.
#[derive(Clone)]
pub struct Opaque(Arc<dyn Any + Send + Sync>);

impl Opaque {
    /// The value, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref()
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opaque").finish_non_exhaustive()
    }
}

/// An informational (1xx) response, as `on_info` sees it.
#[derive(Clone, Debug)]
pub struct Informational {
    /// The 1xx status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
}

/// The `on_info` callback of a request.
#[derive(Clone)]
pub struct OnInfo(Arc<dyn InformationalSink>);

/// Where a request's 1xx heads go: a callback, or `dispatch()`'s
/// controller, which is shared already and so needs no allocation of
/// its own for each request.
pub(crate) trait InformationalSink: Send + Sync {
    fn informational(&self, info: &Informational);
}

impl<F: Fn(&Informational) + Send + Sync> InformationalSink for F {
    fn informational(&self, info: &Informational) {
        self(info)
    }
}

/// A request's 1xx heads for `dispatch()`'s driver, when the request has
/// no `on_info` of its own: an extension of its own, so that `dispatch`
/// makes no `RequestOptions` for it. The connection reads it with the
/// options and hooks it to hyper the same way.
#[derive(Clone)]
pub(crate) struct ForwardInformational(pub(crate) OnInfo);

impl OnInfo {
    pub(crate) fn new(callback: impl Fn(&Informational) + Send + Sync + 'static) -> Self {
        OnInfo(Arc::new(callback))
    }

    pub(crate) fn from_sink(sink: Arc<dyn InformationalSink>) -> Self {
        OnInfo(sink)
    }
}

impl OnInfo {
    /// Calls the callback.
    pub fn call(&self, info: &Informational) {
        self.0.informational(info)
    }
}

impl fmt::Debug for OnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnInfo").finish_non_exhaustive()
    }
}

/// undici's per-request `retryOptions`: each field set here overrides the
/// retry interceptor's own option for this request.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RetryOverrides {
    /// Retries before giving up.
    pub max_retries: Option<u32>,
    /// First backoff delay.
    pub min_timeout: Option<Duration>,
    /// Longest backoff delay, and cap on `Retry-After`.
    pub max_timeout: Option<Duration>,
    /// Backoff growth factor.
    pub timeout_factor: Option<f64>,
    /// Whether `Retry-After` is honoured.
    pub retry_after: Option<bool>,
    /// Methods that may be retried.
    pub methods: Option<Vec<Method>>,
    /// Statuses that are retried.
    pub status_codes: Option<Vec<StatusCode>>,
    /// Error codes that are retried (`ECONNRESET`, `UND_ERR_SOCKET`, ...).
    pub error_codes: Option<Vec<String>>,
    /// The backoff's jitter ratio, 0 to 1 (beyond undici).
    pub jitter: Option<f64>,
}

impl RetryOverrides {
    /// No overrides.
    pub fn new() -> Self {
        RetryOverrides::default()
    }

    /// Overrides `max_retries`.
    pub fn max_retries(mut self, max: u32) -> Self {
        self.max_retries = Some(max);
        self
    }

    /// Overrides `min_timeout`.
    pub fn min_timeout(mut self, timeout: Duration) -> Self {
        self.min_timeout = Some(timeout);
        self
    }

    /// Overrides `max_timeout`.
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.max_timeout = Some(timeout);
        self
    }

    /// Overrides `timeout_factor`.
    pub fn timeout_factor(mut self, factor: f64) -> Self {
        self.timeout_factor = Some(factor);
        self
    }

    /// Overrides `retry_after`.
    pub fn retry_after(mut self, honour: bool) -> Self {
        self.retry_after = Some(honour);
        self
    }

    /// Overrides `methods`.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = Some(methods.into_iter().collect());
        self
    }

    /// Overrides `status_codes`.
    pub fn status_codes(mut self, codes: impl IntoIterator<Item = StatusCode>) -> Self {
        self.status_codes = Some(codes.into_iter().collect());
        self
    }

    /// Overrides `error_codes`.
    pub fn error_codes<S: Into<String>>(mut self, codes: impl IntoIterator<Item = S>) -> Self {
        self.error_codes = Some(codes.into_iter().map(Into::into).collect());
        self
    }

    /// Overrides `jitter` (clamped to 0..=1 when applied).
    pub fn jitter(mut self, ratio: f64) -> Self {
        self.jitter = Some(ratio);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotence_follows_undici_defaults() {
        let options = RequestOptions::new();
        assert!(options.is_idempotent(&Method::GET));
        assert!(options.is_idempotent(&Method::from_bytes(b"QUERY").unwrap()));
        assert!(!options.is_idempotent(&Method::POST));
        assert!(RequestOptions::new()
            .idempotent(true)
            .is_idempotent(&Method::POST));
    }

    #[test]
    fn options_travel_in_the_extensions() {
        let mut request = http::Request::new(crate::Body::empty());
        assert!(RequestOptions::of(&request).is_none());
        RequestOptions::of_mut(&mut request).reset = true;
        assert!(RequestOptions::of(&request).unwrap().is_reset());
    }
}
