//! What is retried and how long to wait: [`RetryOptions`], the
//! [`RetryPolicy`] trait and undici's policy, [`DefaultRetryPolicy`].

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use http::header::RETRY_AFTER;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use undici_dispatcher::{Error, ErrorKind, Request, RetryOverrides};

/// The retry options, with undici's defaults; set them on
/// [`RetryLayer`](super::RetryLayer), override them per request with
/// [`RequestOptions::retry`](undici_dispatcher::RequestOptions::retry).
/// A [`RetryPolicy`] reads them from [`Attempt::options`].
///
/// | option | default |
/// |---|---|
/// | `max_retries` | 5 |
/// | `min_timeout` | 500 ms |
/// | `max_timeout` | 30 s |
/// | `timeout_factor` | 2 |
/// | `retry_after` | true |
/// | `methods` | GET, HEAD, OPTIONS, PUT, DELETE, TRACE, QUERY |
/// | `status_codes` | 500, 502, 503, 504, 429 |
/// | `error_codes` | ECONNRESET, ECONNREFUSED, ENOTFOUND, ENETDOWN, ENETUNREACH, EHOSTDOWN, EHOSTUNREACH, EPIPE, UND_ERR_SOCKET |
/// | `jitter` | 0 (off) |
#[derive(Clone)]
pub struct RetryOptions {
    pub(crate) max_retries: u32,
    pub(crate) min_timeout: Duration,
    pub(crate) max_timeout: Duration,
    pub(crate) timeout_factor: f64,
    pub(crate) retry_after: bool,
    pub(crate) methods: Vec<Method>,
    pub(crate) status_codes: Vec<StatusCode>,
    pub(crate) error_codes: Vec<Cow<'static, str>>,
    pub(crate) jitter: f64,
}

/// undici's default `errorCodes`. Timeouts are not among them, as in
/// undici.
const DEFAULT_ERROR_CODES: [&str; 9] = [
    "ECONNRESET",
    "ECONNREFUSED",
    "ENOTFOUND",
    "ENETDOWN",
    "ENETUNREACH",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "EPIPE",
    "UND_ERR_SOCKET",
];

impl Default for RetryOptions {
    fn default() -> Self {
        RetryOptions {
            max_retries: 5,
            min_timeout: Duration::from_millis(500),
            max_timeout: Duration::from_secs(30),
            timeout_factor: 2.0,
            retry_after: true,
            methods: vec![
                Method::GET,
                Method::HEAD,
                Method::OPTIONS,
                Method::PUT,
                Method::DELETE,
                Method::TRACE,
                Method::from_bytes(b"QUERY").unwrap_or(Method::GET),
            ],
            status_codes: [500, 502, 503, 504, 429]
                .into_iter()
                .filter_map(|code| StatusCode::from_u16(code).ok())
                .collect(),
            error_codes: DEFAULT_ERROR_CODES.into_iter().map(Cow::Borrowed).collect(),
            jitter: 0.0,
        }
    }
}

impl RetryOptions {
    /// Retries before giving up (the request is sent at most
    /// `max_retries + 1` times).
    pub fn max_retries(&self) -> u32 {
        self.max_retries
    }

    /// The first backoff delay.
    pub fn min_timeout(&self) -> Duration {
        self.min_timeout
    }

    /// The longest backoff delay, and the cap on `Retry-After`.
    pub fn max_timeout(&self) -> Duration {
        self.max_timeout
    }

    /// How much each backoff delay grows over the previous one.
    pub fn timeout_factor(&self) -> f64 {
        self.timeout_factor
    }

    /// Whether a `Retry-After` header sets the delay.
    pub fn retry_after(&self) -> bool {
        self.retry_after
    }

    /// The methods that may be retried.
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The statuses that are retried.
    pub fn status_codes(&self) -> &[StatusCode] {
        &self.status_codes
    }

    /// The error codes ([`Error::code`]) that are retried.
    pub fn error_codes(&self) -> impl Iterator<Item = &str> + '_ {
        self.error_codes.iter().map(|code| code.as_ref())
    }

    /// The jitter ratio, 0 to 1: each backoff delay is scaled by a random
    /// factor between `1 - jitter` and 1.
    pub fn jitter(&self) -> f64 {
        self.jitter
    }

    /// True when `method` is one of [`methods`](Self::methods). Inline:
    /// every request asks, from the layer's generic `call`.
    #[inline]
    pub fn is_retryable_method(&self, method: &Method) -> bool {
        self.methods.contains(method)
    }

    /// True when `status` is one of [`status_codes`](Self::status_codes).
    pub fn is_retryable_status(&self, status: StatusCode) -> bool {
        self.status_codes.contains(&status)
    }

    /// True when `code` is one of [`error_codes`](Self::error_codes).
    pub fn is_retryable_code(&self, code: &str) -> bool {
        self.error_codes.iter().any(|known| known == code)
    }

    /// These options with a request's overrides applied.
    pub(crate) fn merged(&self, overrides: &RetryOverrides) -> RetryOptions {
        let mut options = self.clone();
        if let Some(max) = overrides.max_retries {
            options.max_retries = max;
        }
        if let Some(timeout) = overrides.min_timeout {
            options.min_timeout = timeout;
        }
        if let Some(timeout) = overrides.max_timeout {
            options.max_timeout = timeout;
        }
        if let Some(factor) = overrides.timeout_factor {
            options.timeout_factor = factor;
        }
        if let Some(honour) = overrides.retry_after {
            options.retry_after = honour;
        }
        if let Some(methods) = &overrides.methods {
            options.methods = methods.clone();
        }
        if let Some(codes) = &overrides.status_codes {
            options.status_codes = codes.clone();
        }
        if let Some(codes) = &overrides.error_codes {
            options.error_codes = codes.iter().cloned().map(Cow::Owned).collect();
        }
        if let Some(ratio) = overrides.jitter {
            options.jitter = jitter_ratio(ratio);
        }
        options
    }
}

impl fmt::Debug for RetryOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryOptions")
            .field("max_retries", &self.max_retries)
            .field("min_timeout", &self.min_timeout)
            .field("max_timeout", &self.max_timeout)
            .field("timeout_factor", &self.timeout_factor)
            .field("retry_after", &self.retry_after)
            .field("methods", &self.methods)
            .field("status_codes", &self.status_codes)
            .field("error_codes", &self.error_codes)
            .field("jitter", &self.jitter)
            .finish()
    }
}

/// How an attempt failed.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Outcome<'a> {
    /// The server answered with a status of 300 or more.
    Status {
        /// The status.
        status: StatusCode,
        /// The response headers (`Retry-After` is among them).
        headers: &'a HeaderMap,
    },
    /// The request failed (connecting, the socket, a timeout), or the
    /// response body broke off while being read.
    Error(&'a Error),
}

/// A failed attempt, as a [`RetryPolicy`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct Attempt<'a> {
    counter: u32,
    method: &'a Method,
    uri: &'a Uri,
    outcome: Outcome<'a>,
    options: &'a RetryOptions,
}

impl<'a> Attempt<'a> {
    /// An attempt of a `method` request to `uri` that ended in `outcome`;
    /// `counter` is the number the retry would have (1 for the first).
    /// The layer builds these; this constructor lets a policy be tested
    /// on its own.
    pub fn new(
        method: &'a Method,
        uri: &'a Uri,
        counter: u32,
        outcome: Outcome<'a>,
        options: &'a RetryOptions,
    ) -> Self {
        Attempt {
            counter,
            method,
            uri,
            outcome,
            options,
        }
    }

    /// undici's `state.counter`: 1 when deciding the first retry, 2 for
    /// the second...
    pub fn counter(&self) -> u32 {
        self.counter
    }

    /// The request's method.
    pub fn method(&self) -> &Method {
        self.method
    }

    /// The request's URI.
    pub fn uri(&self) -> &Uri {
        self.uri
    }

    /// How the attempt failed.
    pub fn outcome(&self) -> Outcome<'a> {
        self.outcome
    }

    /// The options for this request (the layer's, with the request's
    /// overrides).
    pub fn options(&self) -> &RetryOptions {
        self.options
    }

    /// The error's undici code, or `None` for a status.
    ///
    /// A body cut short by the server closing the connection reads
    /// `UND_ERR_SOCKET` here: the Client reports it as
    /// `UND_ERR_RES_CONTENT_LENGTH_MISMATCH` when the body had a
    /// `content-length`, where undici reports a `SocketError` ("other side
    /// closed"), and undici's `errorCodes` name the latter.
    pub fn error_code(&self) -> Option<&'static str> {
        match self.outcome {
            Outcome::Error(error) if error.kind() == ErrorKind::ResponseContentLengthMismatch => {
                Some("UND_ERR_SOCKET")
            }
            Outcome::Error(error) => Some(error.code()),
            Outcome::Status { .. } => None,
        }
    }
}

/// Decides what is retried and how long to wait first: the retry layer
/// asks it after every failed attempt.
///
/// The default, [`DefaultRetryPolicy`], is undici's. A policy of your own
/// can reuse its parts ([`DefaultRetryPolicy::backoff`],
/// [`DefaultRetryPolicy::retry_after_delay`]):
///
/// ```
/// use std::time::Duration;
/// use undici_interceptors::retry::{Attempt, DefaultRetryPolicy, Outcome, RetryLayer, RetryPolicy};
///
/// /// undici's policy, plus: never retry a 503 that says `x-no-retry`.
/// #[derive(Clone)]
/// struct UnlessAsked;
///
/// impl RetryPolicy for UnlessAsked {
///     fn retry(&self, attempt: &Attempt<'_>) -> Option<Duration> {
///         if let Outcome::Status { headers, .. } = attempt.outcome() {
///             if headers.contains_key("x-no-retry") {
///                 return None;
///             }
///         }
///         DefaultRetryPolicy.retry(attempt)
///     }
/// }
///
/// let layer = RetryLayer::new().policy(UnlessAsked);
/// # let _ = layer;
/// ```
pub trait RetryPolicy: Clone + Send + Sync + 'static {
    /// Whether `request` may be sent again at all; asked once, before it
    /// is first sent. A request refused here goes through untouched: no
    /// copy of it is kept. Requests whose body cannot be replayed (a
    /// stream) are never retried, whatever this says.
    ///
    /// Default: its method is one of [`RetryOptions::methods`].
    fn is_retryable(&self, request: &Request, options: &RetryOptions) -> bool {
        options.is_retryable_method(request.method())
    }

    /// After a failed attempt: `Some(delay)` to send the request again
    /// after `delay`, `None` to give up (the failing response, or the
    /// error, goes to the caller).
    fn retry(&self, attempt: &Attempt<'_>) -> Option<Duration>;
}

/// undici's retry policy (`RetryHandler`'s default `retry` function):
///
/// 1. an error whose code is not in `error_codes` stops;
/// 2. a method not in `methods` stops;
/// 3. a status not in `status_codes` stops;
/// 4. past `max_retries` it stops;
/// 5. otherwise it waits what `Retry-After` says (seconds or an HTTP
///    date; `0` or a date in the past means now), capped at
///    `max_timeout`, when `retry_after` is on and the header is there;
///    else `min_timeout * timeout_factor^(counter - 1)`, capped at
///    `max_timeout`, less a random part of up to `jitter` of it.
///
/// Unlike undici, `Retry-After: 0` retries at once (undici falls back to
/// the backoff) and `retry_after(false)` is honoured.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultRetryPolicy;

impl DefaultRetryPolicy {
    /// The exponential backoff before retry number `counter` (1 for the
    /// first): `min_timeout * timeout_factor^(counter - 1)`, at most
    /// `max_timeout`, without jitter.
    pub fn backoff(counter: u32, options: &RetryOptions) -> Duration {
        let exponent = i32::try_from(counter.saturating_sub(1)).unwrap_or(i32::MAX);
        let seconds = options.min_timeout.as_secs_f64() * options.timeout_factor.powi(exponent);
        match Duration::try_from_secs_f64(seconds.max(0.0)) {
            Ok(delay) => delay.min(options.max_timeout),
            // Infinite or NaN: as long as allowed.
            Err(_) => options.max_timeout,
        }
    }

    /// The delay a `Retry-After` value asks for, as of `now`: a number of
    /// seconds, or an HTTP date (a date in the past is zero). `None` when
    /// the value is neither.
    pub fn retry_after_delay(value: &HeaderValue, now: SystemTime) -> Option<Duration> {
        let text = value.to_str().ok()?.trim();
        if text.is_empty() {
            return None;
        }
        if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            let seconds: f64 = text.parse().ok()?;
            // More seconds than a Duration holds: as long as allowed.
            return Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX));
        }
        let date = httpdate::parse_http_date(text).ok()?;
        Some(date.duration_since(now).unwrap_or(Duration::ZERO))
    }

    /// Scales `delay` by a random factor between `1 - jitter` and 1.
    fn jittered(delay: Duration, jitter: f64) -> Duration {
        if jitter <= 0.0 || jitter.is_nan() {
            return delay;
        }
        delay.mul_f64(1.0 - jitter.min(1.0) * fastrand::f64())
    }
}

impl RetryPolicy for DefaultRetryPolicy {
    fn retry(&self, attempt: &Attempt<'_>) -> Option<Duration> {
        let options = attempt.options();
        let mut headers = None;
        match attempt.outcome() {
            Outcome::Error(_) => {
                let code = attempt.error_code().unwrap_or_default();
                if code != "UND_ERR_REQ_RETRY" && !options.is_retryable_code(code) {
                    return None;
                }
            }
            Outcome::Status {
                status,
                headers: response,
            } => {
                if !options.is_retryable_status(status) {
                    return None;
                }
                headers = Some(response);
            }
        }
        if !options.is_retryable_method(attempt.method()) || attempt.counter() > options.max_retries
        {
            return None;
        }
        let asked = headers
            .filter(|_| options.retry_after)
            .and_then(|headers| headers.get(RETRY_AFTER))
            .and_then(|value| Self::retry_after_delay(value, SystemTime::now()));
        Some(match asked {
            Some(delay) => delay.min(options.max_timeout),
            None => Self::jittered(Self::backoff(attempt.counter(), options), options.jitter),
        })
    }
}

/// A jitter ratio as the options keep it: 0..=1, and 0 for NaN.
pub(crate) fn jitter_ratio(ratio: f64) -> f64 {
    if ratio.is_nan() {
        0.0
    } else {
        ratio.clamp(0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_attempt<'a>(
        counter: u32,
        status: u16,
        headers: &'a HeaderMap,
        options: &'a RetryOptions,
    ) -> Option<Duration> {
        let uri = Uri::from_static("/");
        let outcome = Outcome::Status {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
        };
        DefaultRetryPolicy.retry(&Attempt::new(&Method::GET, &uri, counter, outcome, options))
    }

    #[test]
    fn backoff_grows_by_the_factor_up_to_max_timeout() {
        let options = RetryOptions::default();
        let delays: Vec<u64> = (1..=8)
            .map(|n| DefaultRetryPolicy::backoff(n, &options).as_millis() as u64)
            .collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
        let options = RetryOptions {
            timeout_factor: f64::INFINITY,
            ..RetryOptions::default()
        };
        assert_eq!(
            DefaultRetryPolicy::backoff(3, &options),
            options.max_timeout
        );
        assert_eq!(
            DefaultRetryPolicy::backoff(u32::MAX, &RetryOptions::default()),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn the_default_policy_stops_after_max_retries() {
        let options = RetryOptions::default();
        let headers = HeaderMap::new();
        assert_eq!(
            status_attempt(1, 503, &headers, &options),
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            status_attempt(5, 503, &headers, &options),
            Some(Duration::from_secs(8))
        );
        assert_eq!(status_attempt(6, 503, &headers, &options), None);
    }

    #[test]
    fn statuses_and_methods_outside_the_lists_are_not_retried() {
        let options = RetryOptions::default();
        let headers = HeaderMap::new();
        assert_eq!(status_attempt(1, 404, &headers, &options), None);
        assert!(status_attempt(1, 429, &headers, &options).is_some());
        let outcome = Outcome::Status {
            status: StatusCode::SERVICE_UNAVAILABLE,
            headers: &headers,
        };
        let uri = Uri::from_static("/");
        let post = Attempt::new(&Method::POST, &uri, 1, outcome, &options);
        assert_eq!(DefaultRetryPolicy.retry(&post), None);
    }

    #[test]
    fn error_codes_decide_for_errors() {
        let options = RetryOptions::default();
        let uri = Uri::from_static("/");
        let decide = |error: &Error| {
            DefaultRetryPolicy.retry(&Attempt::new(
                &Method::GET,
                &uri,
                2,
                Outcome::Error(error),
                &options,
            ))
        };
        let reset = Error::socket("read ECONNRESET").with_code("ECONNRESET");
        assert_eq!(decide(&reset), Some(Duration::from_secs(1)));
        let cut_short = Error::new(ErrorKind::ResponseContentLengthMismatch, "short");
        assert!(decide(&cut_short).is_some());
        let timeout = Error::new(ErrorKind::HeadersTimeout, "Headers Timeout Error");
        assert_eq!(decide(&timeout), None);
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date_is_capped_by_max_timeout() {
        let options = RetryOptions::default();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            status_attempt(1, 503, &headers, &options),
            Some(Duration::from_secs(3))
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("0"));
        assert_eq!(
            status_attempt(4, 503, &headers, &options),
            Some(Duration::ZERO)
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3600"));
        assert_eq!(
            status_attempt(1, 503, &headers, &options),
            Some(Duration::from_secs(30))
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(
            status_attempt(2, 503, &headers, &options),
            Some(Duration::from_secs(1))
        );
        let ignoring = RetryOptions {
            retry_after: false,
            ..RetryOptions::default()
        };
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(
            status_attempt(1, 503, &headers, &ignoring),
            Some(Duration::from_millis(500))
        );
    }

    #[test]
    fn retry_after_dates_count_from_now() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let later = HeaderValue::from_static("Wed, 21 Oct 2015 07:28:07 GMT");
        assert_eq!(
            DefaultRetryPolicy::retry_after_delay(&later, now),
            Some(Duration::from_secs(7))
        );
        let earlier = HeaderValue::from_static("Wed, 21 Oct 2015 07:27:00 GMT");
        assert_eq!(
            DefaultRetryPolicy::retry_after_delay(&earlier, now),
            Some(Duration::ZERO)
        );
        let fraction = HeaderValue::from_static("1.5");
        assert_eq!(
            DefaultRetryPolicy::retry_after_delay(&fraction, now),
            Some(Duration::from_millis(1500))
        );
        for bad in ["-1", "inf", "NaN", "", "1e9999"] {
            let value = HeaderValue::from_str(bad).unwrap();
            assert_eq!(
                DefaultRetryPolicy::retry_after_delay(&value, now),
                None,
                "{bad}"
            );
        }
    }

    #[test]
    fn jitter_only_shortens_the_backoff() {
        let options = RetryOptions {
            jitter: 0.5,
            ..RetryOptions::default()
        };
        let headers = HeaderMap::new();
        for _ in 0..100 {
            let delay = status_attempt(2, 503, &headers, &options).unwrap();
            assert!(delay <= Duration::from_secs(1) && delay >= Duration::from_millis(500));
        }
    }

    #[test]
    fn overrides_replace_the_layer_options() {
        let overrides = RetryOverrides::new()
            .max_retries(1)
            .methods([Method::POST])
            .error_codes(["UND_ERR_HEADERS_TIMEOUT"])
            .jitter(2.0);
        let options = RetryOptions::default().merged(&overrides);
        assert_eq!(options.max_retries(), 1);
        assert_eq!(options.jitter(), 1.0);
        assert_eq!(options.methods(), [Method::POST]);
        assert!(options.is_retryable_code("UND_ERR_HEADERS_TIMEOUT"));
        assert!(!options.is_retryable_code("ECONNRESET"));
        assert_eq!(options.min_timeout(), Duration::from_millis(500));
    }
}
