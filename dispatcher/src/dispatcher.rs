//! The `Dispatcher` trait: a tower `Service` of the contract's shape plus
//! undici's lifecycle (`close`, `destroy`, events), and `compose`.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use tower::util::BoxCloneSyncService;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::Error;
use crate::events::Events;
use crate::{Request, Response};

/// undici's Dispatcher: a `tower::Service<Request>` answering `Response`s
/// or [`Error`]s, cheap to clone (clones share one pool), with undici's
/// lifecycle on top.
///
/// - `poll_ready` is undici's busy/drain: a dispatcher with a connection
///   limit is `Pending` while every connection it may open is busy, and
///   wakes callers in order as capacity frees. A request made without
///   waiting for readiness is queued in order (`call` never needs
///   `poll_ready` for this crate's dispatchers; a composed layer may).
/// - [`close`](Dispatcher::close) refuses new requests with
///   `UND_ERR_CLOSED` and resolves once queued and running requests end.
/// - [`destroy`](Dispatcher::destroy) aborts every queued and running
///   request with `UND_ERR_DESTROYED`, or with the reason given.
/// - [`events`](Dispatcher::events) subscribes to `connect`, `disconnect`,
///   `connectionError` and `drain`.
/// - Dropping a response future or a response body aborts that request
///   alone: Rust's drop plays the part of undici's `AbortSignal`.
pub trait Dispatcher:
    Service<Request, Response = Response, Error = Error, Future: Send + 'static>
    + Clone
    + Send
    + Sync
    + 'static
{
    /// Refuses new requests; resolves once queued and running requests
    /// have finished and the connections are closed.
    fn close(&self) -> BoxFuture<'static, ()>;

    /// Aborts every queued and running request with `reason` (or
    /// `UND_ERR_DESTROYED`) and closes the connections.
    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()>;

    /// Subscribes to this dispatcher's events.
    fn events(&self) -> Events;

    /// True once `close` (or `destroy`) was called.
    fn is_closed(&self) -> bool;

    /// True once `destroy` was called.
    fn is_destroyed(&self) -> bool;

    /// True when the dispatcher holds no connection and no request; an
    /// Agent drops the dispatchers of idle origins. Default `false`.
    fn is_idle(&self) -> bool {
        false
    }

    /// True while a new request would have to wait (undici's `needDrain`);
    /// a BalancedPool skips busy upstreams. Default `false`.
    fn is_busy(&self) -> bool {
        false
    }

    /// Wraps this dispatcher in a tower `Layer` (an interceptor, a
    /// `ServiceBuilder` stack, any tower middleware); `close`, `destroy`
    /// and `events` still reach this dispatcher.
    ///
    /// Order: in a `ServiceBuilder` the first layer is the outermost, the
    /// first to see a request. undici's `compose([a, b, c])` calls `c`
    /// first, so it is `ServiceBuilder::new().layer(c).layer(b).layer(a)`;
    /// chained `.compose(a).compose(b)` calls `b` first in both.
    fn compose<L>(self, layer: L) -> Composed<L::Service, Self>
    where
        L: Layer<Self>,
        L::Service: Service<Request, Response = Response, Error = Error, Future: Send + 'static>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        Composed {
            service: layer.layer(self.clone()),
            base: self,
        }
    }
}

/// A dispatcher wrapped in a layer, from [`Dispatcher::compose`]: requests
/// go through the layer, the lifecycle goes to the dispatcher.
#[derive(Clone)]
pub struct Composed<S, D> {
    service: S,
    base: D,
}

impl<S, D> Composed<S, D> {
    /// The dispatcher underneath.
    pub fn base(&self) -> &D {
        &self.base
    }

    /// The layered service requests go through.
    pub fn service(&self) -> &S {
        &self.service
    }
}

impl<S: fmt::Debug, D: fmt::Debug> fmt::Debug for Composed<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Composed")
            .field("service", &self.service)
            .field("base", &self.base)
            .finish()
    }
}

impl<S, D> Service<Request> for Composed<S, D>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = S::Future;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.service.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        self.service.call(request)
    }
}

impl<S, D> Dispatcher for Composed<S, D>
where
    S: Service<Request, Response = Response, Error = Error, Future: Send + 'static>
        + Clone
        + Send
        + Sync
        + 'static,
    D: Dispatcher,
{
    fn close(&self) -> BoxFuture<'static, ()> {
        self.base.close()
    }

    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()> {
        self.base.destroy(reason)
    }

    fn events(&self) -> Events {
        self.base.events()
    }

    fn is_closed(&self) -> bool {
        self.base.is_closed()
    }

    fn is_destroyed(&self) -> bool {
        self.base.is_destroyed()
    }

    fn is_idle(&self) -> bool {
        self.base.is_idle()
    }

    fn is_busy(&self) -> bool {
        self.base.is_busy()
    }
}

/// The lifecycle half of a dispatcher, object-safe, for [`BoxDispatcher`].
trait Lifecycle: Send + Sync {
    fn close(&self) -> BoxFuture<'static, ()>;
    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()>;
    fn events(&self) -> Events;
    fn is_closed(&self) -> bool;
    fn is_destroyed(&self) -> bool;
    fn is_idle(&self) -> bool;
    fn is_busy(&self) -> bool;
}

impl<D: Dispatcher> Lifecycle for D {
    fn close(&self) -> BoxFuture<'static, ()> {
        Dispatcher::close(self)
    }

    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()> {
        Dispatcher::destroy(self, reason)
    }

    fn events(&self) -> Events {
        Dispatcher::events(self)
    }

    fn is_closed(&self) -> bool {
        Dispatcher::is_closed(self)
    }

    fn is_destroyed(&self) -> bool {
        Dispatcher::is_destroyed(self)
    }

    fn is_idle(&self) -> bool {
        Dispatcher::is_idle(self)
    }

    fn is_busy(&self) -> bool {
        Dispatcher::is_busy(self)
    }
}

/// Any dispatcher behind one type (the global dispatcher is one): a boxed
/// service plus its lifecycle. Each call goes through one dynamic
/// dispatch and one boxed future.
#[derive(Clone)]
pub struct BoxDispatcher {
    service: BoxCloneSyncService<Request, Response, Error>,
    lifecycle: Arc<dyn Lifecycle>,
}

impl BoxDispatcher {
    /// Boxes `dispatcher`.
    pub fn new<D: Dispatcher>(dispatcher: D) -> Self {
        BoxDispatcher {
            service: BoxCloneSyncService::new(dispatcher.clone()),
            lifecycle: Arc::new(dispatcher),
        }
    }
}

impl fmt::Debug for BoxDispatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoxDispatcher").finish_non_exhaustive()
    }
}

impl Service<Request> for BoxDispatcher {
    type Response = Response;
    type Error = Error;
    type Future = BoxFuture<'static, Result<Response, Error>>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.service.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        self.service.call(request)
    }
}

impl Dispatcher for BoxDispatcher {
    fn close(&self) -> BoxFuture<'static, ()> {
        self.lifecycle.close()
    }

    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()> {
        self.lifecycle.destroy(reason)
    }

    fn events(&self) -> Events {
        self.lifecycle.events()
    }

    fn is_closed(&self) -> bool {
        self.lifecycle.is_closed()
    }

    fn is_destroyed(&self) -> bool {
        self.lifecycle.is_destroyed()
    }

    fn is_idle(&self) -> bool {
        self.lifecycle.is_idle()
    }

    fn is_busy(&self) -> bool {
        self.lifecycle.is_busy()
    }
}
