//! What the dispatchers over dispatchers (Agent, BalancedPool,
//! FactoryPool) share: [`Routed`], a request handed to one of their
//! dispatchers (also how `request()` and `stream()` call any
//! dispatcher), and [`RouterState`], their own closed and destroyed
//! flags with `close` and `destroy` carried to every dispatcher they
//! hold.
//!
//! undici's `dispatch` queues a request at once, so a `close` that comes
//! later lets it finish. To keep that through a router, the request is
//! called on the chosen dispatcher right away when it is ready (it almost
//! always is: a Pool queues internally); only a dispatcher that is not
//! ready keeps the request until its readiness is polled for real.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::task::noop_waker_ref;
use tower_service::Service;

use crate::dispatcher::Dispatcher;
use crate::error::Error;
use crate::{Request, Response};

pin_project_lite::pin_project! {
    /// The dispatcher's readiness (when it was not ready at once), then
    /// its response.
    #[project = RoutedProj]
    pub(crate) enum Routed<D: Service<Request>> {
        // The request boxed: waiting is rare, and the future is moved by
        // every layer above it.
        Waiting { dispatcher: D, request: Option<Box<Request>> },
        Called { #[pin] future: D::Future },
        Failed { error: Option<Error> },
    }
}

impl<D> Routed<D>
where
    D: Service<Request, Response = Response, Error = Error>,
{
    /// Calls `dispatcher` now if it is ready, else waits for it. Inline:
    /// the request then goes from the caller into `call` without a copy
    /// of its own.
    #[inline]
    pub(crate) fn new(mut dispatcher: D, request: Request) -> Self {
        // A first look at readiness; the future polls again with its
        // own waker if this says Pending.
        let mut cx = Context::from_waker(noop_waker_ref());
        match dispatcher.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => Routed::Called {
                future: dispatcher.call(request),
            },
            Poll::Ready(Err(error)) => Routed::failed(error),
            Poll::Pending => Routed::Waiting {
                dispatcher,
                request: Some(Box::new(request)),
            },
        }
    }

    /// A request that failed before reaching a dispatcher.
    pub(crate) fn failed(error: Error) -> Self {
        Routed::Failed { error: Some(error) }
    }
}

impl<D> Future for Routed<D>
where
    D: Service<Request, Response = Response, Error = Error>,
{
    type Output = Result<Response, Error>;

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                RoutedProj::Waiting {
                    dispatcher,
                    request,
                } => {
                    if let Err(error) = std::task::ready!(dispatcher.poll_ready(cx)) {
                        return Poll::Ready(Err(error));
                    }
                    let Some(request) = request.take() else {
                        return Poll::Ready(Err(Error::aborted()));
                    };
                    let future = dispatcher.call(*request);
                    self.set(Routed::Called { future });
                }
                RoutedProj::Called { future } => return future.poll(cx),
                RoutedProj::Failed { error } => {
                    return Poll::Ready(Err(error.take().unwrap_or_else(Error::aborted)))
                }
            }
        }
    }
}

/// A router's own lifecycle: whether it was closed or destroyed.
#[derive(Debug, Default)]
pub(crate) struct RouterState {
    closed: AtomicBool,
    destroyed: AtomicBool,
}

impl RouterState {
    /// Why a new request is refused, if it is.
    pub(crate) fn lifecycle_error(&self) -> Option<Error> {
        if self.is_destroyed() {
            return Some(Error::destroyed());
        }
        self.is_closed().then(Error::closed)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// Refuses new requests from now on.
    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// Marks the router closed; the answer closes its children, taken
    /// after the mark: a child made meanwhile either saw the mark (the
    /// routers check it under the lock they add children with) or is
    /// among them.
    pub(crate) fn close<D: Dispatcher>(
        &self,
        children: impl FnOnce() -> Vec<D>,
    ) -> BoxFuture<'static, ()> {
        self.mark_closed();
        let closing: Vec<_> = children().iter().map(Dispatcher::close).collect();
        Box::pin(async move {
            futures_util::future::join_all(closing).await;
        })
    }

    /// Refuses new requests and marks the router destroyed, as `destroy`
    /// does before it reaches the children.
    fn mark_destroyed(&self) {
        self.mark_closed();
        self.destroyed.store(true, Ordering::Release);
    }

    /// Marks the router destroyed; the answer destroys its children
    /// (taken after the mark, as for `close`), each with its copy of
    /// `reason`.
    pub(crate) fn destroy<D: Dispatcher>(
        &self,
        children: impl FnOnce() -> Vec<D>,
        reason: Option<Arc<Error>>,
    ) -> BoxFuture<'static, ()> {
        self.mark_destroyed();
        let destroying: Vec<_> = children()
            .iter()
            .map(|child| child.destroy(reason.as_deref().cloned()))
            .collect();
        Box::pin(async move {
            futures_util::future::join_all(destroying).await;
        })
    }

    /// Ready unless closed or destroyed, as a router's `poll_ready`.
    pub(crate) fn poll_ready(&self) -> Poll<Result<(), Error>> {
        Poll::Ready(match self.lifecycle_error() {
            Some(err) => Err(err),
            None => Ok(()),
        })
    }
}
