//! `RetryAgent`: a dispatcher whose requests go through the retry layer.

use std::fmt;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tower_layer::Layer;
use tower_service::Service;
use undici_dispatcher::{Dispatcher, Error, Events, Request, Response};

use super::future::RetryFuture;
use super::layer::RetryLayer;
use super::policy::{DefaultRetryPolicy, RetryPolicy};
use super::Retry;

/// undici's `RetryAgent`: any dispatcher, with every request retried by
/// a [`RetryLayer`]. `close`, `destroy` and `events` go to the wrapped
/// dispatcher. The same as `dispatcher.compose(layer)`, under undici's
/// name.
///
/// ```
/// use std::time::Duration;
/// use undici_dispatcher::{Agent, Body, Dispatcher, DispatcherExt};
/// use undici_interceptors::retry::{RetryAgent, RetryLayer};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), undici_dispatcher::Error> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// # let url = format!("{}/", server.url());
/// let agent = RetryAgent::new(Agent::new(), RetryLayer::new().max_retries(2));
/// let response = agent.request(http::Request::get(url).body(Body::empty()).unwrap()).await?;
/// assert_eq!(response.status(), 200);
/// response.into_body().dump(undici_dispatcher::DEFAULT_DUMP_LIMIT).await?;
/// agent.close().await;
/// # Ok(())
/// # }
/// ```
pub struct RetryAgent<D, P = DefaultRetryPolicy> {
    retry: Retry<D, P>,
}

impl<D, P: Clone> RetryAgent<D, P> {
    /// Wraps `dispatcher` in `layer`.
    pub fn new(dispatcher: D, layer: RetryLayer<P>) -> Self {
        RetryAgent {
            retry: layer.layer(dispatcher),
        }
    }
}

impl<D, P> RetryAgent<D, P> {
    /// The wrapped dispatcher.
    pub fn dispatcher(&self) -> &D {
        self.retry.get_ref()
    }
}

impl<D: Clone, P: Clone> Clone for RetryAgent<D, P> {
    fn clone(&self) -> Self {
        RetryAgent {
            retry: self.retry.clone(),
        }
    }
}

impl<D: fmt::Debug, P: fmt::Debug> fmt::Debug for RetryAgent<D, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryAgent")
            .field("retry", &self.retry)
            .finish()
    }
}

impl<D, P> Service<Request> for RetryAgent<D, P>
where
    D: Dispatcher,
    P: RetryPolicy,
{
    type Response = Response;
    type Error = Error;
    type Future = RetryFuture<D, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.retry.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> RetryFuture<D, P> {
        self.retry.call(request)
    }
}

impl<D, P> Dispatcher for RetryAgent<D, P>
where
    D: Dispatcher,
    P: RetryPolicy,
{
    fn close(&self) -> BoxFuture<'static, ()> {
        self.dispatcher().close()
    }

    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()> {
        self.dispatcher().destroy(reason)
    }

    fn events(&self) -> Events {
        self.dispatcher().events()
    }

    fn is_closed(&self) -> bool {
        self.dispatcher().is_closed()
    }

    fn is_destroyed(&self) -> bool {
        self.dispatcher().is_destroyed()
    }

    fn is_idle(&self) -> bool {
        self.dispatcher().is_idle()
    }

    fn is_busy(&self) -> bool {
        self.dispatcher().is_busy()
    }
}
