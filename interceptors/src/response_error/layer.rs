//! `ResponseErrorLayer`: the responseError interceptor's options.

use tower_layer::Layer;

use super::ResponseError;

/// The default bound on an error body read by the responseError
/// interceptor: 1 MiB.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 1024 * 1024;

/// Applies [`ResponseError`]: statuses of 400 and up become
/// `UND_ERR_RESPONSE` errors.
#[derive(Clone, Copy, Debug)]
pub struct ResponseErrorLayer {
    max_body_size: u64,
}

impl ResponseErrorLayer {
    /// undici's behaviour, with error bodies read up to 1 MiB.
    pub const fn new() -> Self {
        ResponseErrorLayer {
            max_body_size: DEFAULT_MAX_BODY_SIZE,
        }
    }

    /// How much of an error body is read into the error; the rest is
    /// dropped (and the connection with it). undici has no such bound.
    /// Default: [`DEFAULT_MAX_BODY_SIZE`] (1 MiB).
    pub const fn max_body_size(mut self, max: u64) -> Self {
        self.max_body_size = max;
        self
    }
}

impl Default for ResponseErrorLayer {
    fn default() -> Self {
        ResponseErrorLayer::new()
    }
}

impl<S> Layer<S> for ResponseErrorLayer {
    type Service = ResponseError<S>;

    fn layer(&self, inner: S) -> ResponseError<S> {
        ResponseError {
            inner,
            max_body_size: self.max_body_size,
        }
    }
}
