//! `RetryLayer`: the retry options, with undici's defaults.

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use tower_layer::Layer;

use super::policy::{DefaultRetryPolicy, RetryOptions, RetryPolicy};
use super::Retry;

/// How much of a retried response's body is read and discarded so that
/// its connection can serve the retry: 64 KiB. Larger bodies are dropped,
/// which closes their connection.
pub const DEFAULT_DUMP_MAX_SIZE: u64 = 64 * 1024;

/// Retries failed requests: undici's `interceptors.retry()`.
///
/// Every option has undici's default (see [`RetryOptions`]); requests
/// override them with
/// [`RequestOptions::retry`](undici_dispatcher::RequestOptions::retry).
/// What is retried is decided by a [`RetryPolicy`], undici's by default.
///
/// ```
/// use std::time::Duration;
/// use undici_interceptors::retry::RetryLayer;
///
/// let layer = RetryLayer::new()
///     .max_retries(3)
///     .min_timeout(Duration::from_millis(100))
///     .status_codes([http::StatusCode::SERVICE_UNAVAILABLE]);
/// assert_eq!(layer.options().max_retries(), 3);
/// ```
#[derive(Clone, Debug)]
pub struct RetryLayer<P = DefaultRetryPolicy> {
    pub(crate) options: Arc<RetryOptions>,
    pub(crate) policy: P,
    pub(crate) throw_on_error: bool,
    pub(crate) dump_max_size: u64,
}

impl RetryLayer {
    /// undici's defaults: 5 retries, backoff from 500 ms doubling up to
    /// 30 s, `Retry-After` honoured, idempotent methods, statuses 500,
    /// 502, 503, 504 and 429, undici's network error codes.
    pub fn new() -> Self {
        RetryLayer {
            options: Arc::new(RetryOptions::default()),
            policy: DefaultRetryPolicy,
            throw_on_error: false,
            dump_max_size: DEFAULT_DUMP_MAX_SIZE,
        }
    }
}

impl Default for RetryLayer {
    fn default() -> Self {
        RetryLayer::new()
    }
}

impl<P> RetryLayer<P> {
    fn options_mut(&mut self) -> &mut RetryOptions {
        Arc::make_mut(&mut self.options)
    }

    /// The options as set so far.
    pub fn options(&self) -> &RetryOptions {
        &self.options
    }

    /// Retries before giving up. Default 5: the request is sent at most
    /// 6 times.
    pub fn max_retries(mut self, max: u32) -> Self {
        self.options_mut().max_retries = max;
        self
    }

    /// The delay before the first retry. Default 500 ms.
    pub fn min_timeout(mut self, timeout: Duration) -> Self {
        self.options_mut().min_timeout = timeout;
        self
    }

    /// The longest delay between two attempts, also the cap on what
    /// `Retry-After` may ask for. Default 30 s.
    pub fn max_timeout(mut self, timeout: Duration) -> Self {
        self.options_mut().max_timeout = timeout;
        self
    }

    /// How much each delay grows over the previous one. Default 2.
    pub fn timeout_factor(mut self, factor: f64) -> Self {
        self.options_mut().timeout_factor = factor;
        self
    }

    /// Whether a `Retry-After` header (seconds or an HTTP date) sets the
    /// delay instead of the backoff. Default true.
    pub fn retry_after(mut self, honour: bool) -> Self {
        self.options_mut().retry_after = honour;
        self
    }

    /// The methods that may be retried. Default GET, HEAD, OPTIONS, PUT,
    /// DELETE, TRACE and QUERY.
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.options_mut().methods = methods.into_iter().collect();
        self
    }

    /// The statuses that are retried. Default 500, 502, 503, 504 and 429.
    pub fn status_codes(mut self, codes: impl IntoIterator<Item = StatusCode>) -> Self {
        self.options_mut().status_codes = codes.into_iter().collect();
        self
    }

    /// The error codes ([`Error::code`](undici_dispatcher::Error::code))
    /// that are retried. Default ECONNRESET, ECONNREFUSED, ENOTFOUND,
    /// ENETDOWN, ENETUNREACH, EHOSTDOWN, EHOSTUNREACH, EPIPE and
    /// UND_ERR_SOCKET; timeouts are not retried unless named here.
    pub fn error_codes<S: Into<String>>(mut self, codes: impl IntoIterator<Item = S>) -> Self {
        self.options_mut().error_codes = codes
            .into_iter()
            .map(|code| std::borrow::Cow::Owned(code.into()))
            .collect();
        self
    }

    /// Randomizes the backoff (not `Retry-After`): each delay is scaled by
    /// a random factor between `1 - ratio` and 1, so that many clients
    /// failing together do not retry together. `ratio` is clamped to
    /// 0..=1. Default 0, no jitter, as undici.
    pub fn jitter(mut self, ratio: f64) -> Self {
        self.options_mut().jitter = super::policy::jitter_ratio(ratio);
        self
    }

    /// What happens when the retries are exhausted on a status (or the
    /// policy gives up on one in `status_codes`):
    ///
    /// - `false` (the default): the caller gets that response, its body
    ///   readable, and the connection is kept. This is better than undici
    ///   (its issue 4222), which loses the body and the socket.
    /// - `true`: the caller gets undici's `UND_ERR_REQ_RETRY` error
    ///   ("Request failed") carrying the status, the headers and the
    ///   retry count ([`Error::retry_count`](undici_dispatcher::Error::retry_count)),
    ///   as undici's `throwOnError: true`. The body is read and discarded
    ///   (up to [`dump_max_size`](Self::dump_max_size)) first, so the
    ///   connection survives.
    pub fn throw_on_error(mut self, throw: bool) -> Self {
        self.throw_on_error = throw;
        self
    }

    /// How much of a retried (or thrown) response's body is read and
    /// discarded so that its connection survives; a larger body is
    /// dropped, closing the connection. Default
    /// [`DEFAULT_DUMP_MAX_SIZE`] (64 KiB).
    pub fn dump_max_size(mut self, bytes: u64) -> Self {
        self.dump_max_size = bytes;
        self
    }

    /// Decides what is retried with `policy` instead.
    pub fn policy<Q: RetryPolicy>(self, policy: Q) -> RetryLayer<Q> {
        RetryLayer {
            options: self.options,
            policy,
            throw_on_error: self.throw_on_error,
            dump_max_size: self.dump_max_size,
        }
    }
}

impl<S, P: Clone> Layer<S> for RetryLayer<P> {
    type Service = Retry<S, P>;

    fn layer(&self, inner: S) -> Retry<S, P> {
        Retry {
            inner,
            options: self.options.clone(),
            policy: self.policy.clone(),
            throw_on_error: self.throw_on_error,
            dump_max_size: self.dump_max_size,
        }
    }
}
