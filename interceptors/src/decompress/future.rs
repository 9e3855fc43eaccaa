//! The decompress interceptor's response future.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;
use undici_dispatcher::{Error, Response};

use super::layer::Config;

pin_project! {
    /// The response future of [`Decompress`](super::Decompress): the
    /// response, with its body decoded as it is read when it has a
    /// `content-encoding` to undo.
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        // `None` for requests whose responses are never decoded (HEAD).
        config: Option<Arc<Config>>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, config: Option<Arc<Config>>) -> Self {
        ResponseFuture { inner, config }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        Poll::Ready(match this.config.take() {
            Some(config) => config.decode(response),
            None => Ok(response),
        })
    }
}
