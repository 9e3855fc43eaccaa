//! `BalancedPool`: one service, several upstreams.

mod ewma;
mod weighted;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use http::uri::{PathAndQuery, Uri};
use tokio::time::Instant;
use tower_service::Service;

use crate::client::forward_client_options;
use crate::dispatcher::Dispatcher;
use crate::error::{Error, ErrorKind};
use crate::events::{EventBus, EventKind, Events};
use crate::origin::{IntoOrigin, Origin};
use crate::pool::{Pool, PoolBuilder, PoolStats};
use crate::router::{Routed, RouterState};
use crate::sync::{self, lock};
use crate::{Request, Response};

use ewma::Load;
use weighted::{Candidate, RoundRobin};

/// With `Balance::PeakEwma`, one request in this many goes to a random
/// upstream.
const EXPLORE_ONE_IN: u32 = 50;

type Factory<D> = dyn Fn(&Origin, PoolBuilder<Pool>) -> Result<D, Error> + Send + Sync;

/// How a [`BalancedPool`] chooses an upstream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Balance {
    /// undici's interleaved weighted round robin: every upstream starts at
    /// `max_weight_per_server`; a new connection adds `error_penalty`, a
    /// connection error takes it away (down to 1).
    #[default]
    WeightedRoundRobin,
    /// Beyond undici: power of two choices over peak EWMA latency, as
    /// tower's `balance`, with the same weights scaling each upstream's
    /// cost. A request that fails on a connection error counts as a
    /// one-second answer, so a failing upstream never looks cheap: it
    /// gets only what exploration sends it (one request in fifty goes to
    /// a random upstream) until its fast answers wear that peak down (the
    /// estimate forgets over about ten seconds).
    PeakEwma,
}

/// undici's `BalancedPool`: requests for one service spread over several
/// upstreams, a [`Pool`] each (made by the factory).
///
/// Requests carry a path (`/users`); an absolute URL's origin is replaced
/// by the chosen upstream's. Weights follow undici: every upstream starts
/// at `max_weight_per_server` (100); a `connect` adds `error_penalty` (15)
/// up to the maximum; a `connectionError`, or a `disconnect` with a
/// socket error, takes it away, down to 1. Beyond undici, a request that
/// fails on a connection error also takes the penalty, and a response
/// earns what a connect does, so load moves away from an upstream that
/// resets connections and comes back as it recovers (undici's weights only
/// move with connections, which keep-alive makes rare).
///
/// ```
/// use undici_dispatcher::{BalancedPool, Body, DispatcherExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), undici_dispatcher::Error> {
/// # let a = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// # let b = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// let pool = BalancedPool::new([a.url(), b.url()])?;
/// let response = pool.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(())
/// # }
/// ```
pub struct BalancedPool<D = Pool> {
    inner: Arc<Inner<D>>,
}

impl<D> Clone for BalancedPool<D> {
    fn clone(&self) -> Self {
        BalancedPool {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<D> {
    upstreams: RwLock<Vec<Arc<Upstream<D>>>>,
    round_robin: Mutex<RoundRobin>,
    factory: Box<Factory<D>>,
    pool: PoolBuilder<Pool>,
    max_weight: i64,
    error_penalty: i64,
    balance: Balance,
    events: EventBus,
    lifecycle: RouterState,
}

struct Upstream<D> {
    origin: Origin,
    dispatcher: D,
    weight: AtomicI64,
    load: Load,
}

impl<D> Upstream<D> {
    fn weight(&self) -> i64 {
        self.weight.load(Ordering::Relaxed)
    }

    fn adjust(&self, by: i64, max: i64) {
        let _ = self
            .weight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |w| {
                Some((w + by).clamp(1, max))
            });
    }
}

/// Builds a [`BalancedPool`]: every Pool option (forwarded to each
/// upstream's Pool) and the balancing ones.
pub struct BalancedPoolBuilder<D = Pool> {
    options: crate::ClientOptions,
    connections: Option<usize>,
    client_ttl: Option<std::time::Duration>,
    max_weight: i64,
    error_penalty: i64,
    balance: Balance,
    factory: Box<Factory<D>>,
}

impl BalancedPool<Pool> {
    /// A balanced pool over `upstreams` with undici's defaults.
    pub fn new<U, O>(upstreams: U) -> Result<Self, Error>
    where
        U: IntoIterator<Item = O>,
        O: IntoOrigin,
    {
        BalancedPool::builder().build(upstreams)
    }

    /// A builder with undici's defaults.
    pub fn builder() -> BalancedPoolBuilder<Pool> {
        BalancedPoolBuilder {
            options: crate::ClientOptions::new(),
            connections: None,
            client_ttl: None,
            max_weight: 100,
            error_penalty: 15,
            balance: Balance::default(),
            factory: Box::new(|origin, builder| builder.build(origin.clone())),
        }
    }

    /// undici's `PoolStats`, summed over the upstreams.
    pub fn stats(&self) -> PoolStats {
        self.inner
            .all()
            .iter()
            .map(|upstream| upstream.dispatcher.stats())
            .fold(PoolStats::default(), |sum, s| PoolStats {
                connected: sum.connected + s.connected,
                free: sum.free + s.free,
                pending: sum.pending + s.pending,
                queued: sum.queued + s.queued,
                running: sum.running + s.running,
                size: sum.size + s.size,
            })
    }
}

impl<D> BalancedPoolBuilder<D> {
    forward_client_options!();

    /// Connections per upstream; 0 means unlimited (the default).
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = (connections > 0).then_some(connections);
        self
    }

    /// A connection's lifetime (see [`PoolBuilder::client_ttl`]).
    pub fn client_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.client_ttl = Some(ttl);
        self
    }

    /// The weight every upstream starts at and cannot exceed. Default 100.
    pub fn max_weight_per_server(mut self, max: u32) -> Self {
        self.max_weight = i64::from(max.max(1));
        self
    }

    /// What a connection error costs an upstream (and a connect gives
    /// back). Default 15.
    pub fn error_penalty(mut self, penalty: u32) -> Self {
        self.error_penalty = i64::from(penalty);
        self
    }

    /// How upstreams are chosen. Default [`Balance::WeightedRoundRobin`].
    pub fn balance(mut self, balance: Balance) -> Self {
        self.balance = balance;
        self
    }

    /// How each upstream's dispatcher is made (undici's `factory`).
    pub fn factory<E, F>(self, factory: F) -> BalancedPoolBuilder<E>
    where
        F: Fn(&Origin, PoolBuilder<Pool>) -> Result<E, Error> + Send + Sync + 'static,
    {
        BalancedPoolBuilder {
            options: self.options,
            connections: self.connections,
            client_ttl: self.client_ttl,
            max_weight: self.max_weight,
            error_penalty: self.error_penalty,
            balance: self.balance,
            factory: Box::new(factory),
        }
    }
}

impl<D: Dispatcher> BalancedPoolBuilder<D> {
    /// The pool over `upstreams` (there may be none yet: requests then fail
    /// with `UND_ERR_BPL_MISSING_UPSTREAM` until one is added).
    pub fn build<U, O>(self, upstreams: U) -> Result<BalancedPool<D>, Error>
    where
        U: IntoIterator<Item = O>,
        O: IntoOrigin,
    {
        let mut pool = PoolBuilder::new().options(self.options);
        pool.connections = self.connections;
        pool.client_ttl = self.client_ttl;
        let balanced = BalancedPool {
            inner: Arc::new(Inner {
                upstreams: RwLock::new(Vec::new()),
                round_robin: Mutex::new(RoundRobin::new(self.max_weight)),
                factory: self.factory,
                pool,
                max_weight: self.max_weight,
                error_penalty: self.error_penalty,
                balance: self.balance,
                events: EventBus::new("BalancedPool"),
                lifecycle: RouterState::default(),
            }),
        };
        for upstream in upstreams {
            balanced.add_upstream(upstream)?;
        }
        Ok(balanced)
    }
}

impl<D> fmt::Debug for BalancedPoolBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancedPoolBuilder")
            .field("options", &self.options)
            .field("connections", &self.connections)
            .field("max_weight_per_server", &self.max_weight)
            .field("error_penalty", &self.error_penalty)
            .field("balance", &self.balance)
            .finish_non_exhaustive()
    }
}

impl<D: Dispatcher> BalancedPool<D> {
    /// Adds an upstream (nothing happens if it is already there); every
    /// weight starts over, as in undici.
    pub fn add_upstream(&self, upstream: impl IntoOrigin) -> Result<(), Error> {
        let origin = upstream.into_origin()?;
        let mut upstreams = self.inner.write();
        if upstreams.iter().any(|u| u.origin == origin) {
            return Ok(());
        }
        let dispatcher = (self.inner.factory)(&origin, self.inner.pool.clone())?;
        let upstream = Arc::new(Upstream {
            origin,
            dispatcher,
            weight: AtomicI64::new(self.inner.max_weight),
            load: Load::new(),
        });
        self.inner.watch(&upstream);
        upstreams.push(upstream);
        for upstream in upstreams.iter() {
            upstream
                .weight
                .store(self.inner.max_weight, Ordering::Relaxed);
        }
        lock(&self.inner.round_robin).reset(self.inner.max_weight);
        Ok(())
    }

    /// Removes an upstream; requests already on it finish, and it is
    /// closed.
    pub fn remove_upstream(&self, upstream: impl IntoOrigin) -> Result<(), Error> {
        let origin = upstream.into_origin()?;
        let removed = {
            let mut upstreams = self.inner.write();
            let index = upstreams.iter().position(|u| u.origin == origin);
            index.map(|index| upstreams.remove(index))
        };
        if let Some(upstream) = removed {
            let closing = upstream.dispatcher.close();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(closing);
            }
        }
        Ok(())
    }

    /// The upstreams' origins (undici's `upstreams` getter).
    pub fn upstreams(&self) -> Vec<Origin> {
        self.inner.all().iter().map(|u| u.origin.clone()).collect()
    }

    /// An upstream's dispatcher (undici's `getUpstream`).
    pub fn get_upstream(&self, upstream: impl IntoOrigin) -> Option<D> {
        let origin = upstream.into_origin().ok()?;
        self.inner
            .all()
            .iter()
            .find(|u| u.origin == origin)
            .map(|u| u.dispatcher.clone())
    }

    /// An upstream's current weight.
    pub fn weight(&self, upstream: impl IntoOrigin) -> Option<u32> {
        let origin = upstream.into_origin().ok()?;
        self.inner
            .all()
            .iter()
            .find(|u| u.origin == origin)
            .map(|u| u.weight() as u32)
    }
}

impl<D> Inner<D> {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Arc<Upstream<D>>>> {
        sync::write(&self.upstreams)
    }

    fn all(&self) -> Vec<Arc<Upstream<D>>> {
        sync::read(&self.upstreams).clone()
    }

    fn dispatchers(&self) -> Vec<D>
    where
        D: Clone,
    {
        self.all().iter().map(|u| u.dispatcher.clone()).collect()
    }
}

impl<D: Dispatcher> Inner<D> {
    /// Follows an upstream's events: re-emits them with the pool in front
    /// and adjusts the upstream's weight.
    fn watch(self: &Arc<Self>, upstream: &Arc<Upstream<D>>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut events: Events = upstream.dispatcher.events();
        events.relay_to(&self.events);
        let pool: Weak<Self> = Arc::downgrade(self);
        let upstream: Weak<Upstream<D>> = Arc::downgrade(upstream);
        runtime.spawn(async move {
            while let Some(event) = events.next().await {
                let (Some(pool), Some(upstream)) = (pool.upgrade(), upstream.upgrade()) else {
                    return;
                };
                let socket_error = event
                    .error
                    .as_ref()
                    .is_some_and(|err| is_connection_error(err));
                match event.kind {
                    EventKind::Connect => upstream.adjust(pool.error_penalty, pool.max_weight),
                    EventKind::ConnectionError => {
                        upstream.adjust(-pool.error_penalty, pool.max_weight)
                    }
                    EventKind::Disconnect if socket_error => {
                        upstream.adjust(-pool.error_penalty, pool.max_weight)
                    }
                    _ => {}
                }
                pool.events.forward(event);
            }
        });
    }

    /// The upstream for the next request.
    fn choose(&self) -> Result<Arc<Upstream<D>>, Error> {
        let upstreams = sync::read(&self.upstreams);
        if upstreams.is_empty() {
            return Err(Error::new(
                ErrorKind::MissingUpstream,
                "No upstream has been added to the BalancedPool",
            ));
        }
        let index = match self.balance {
            Balance::WeightedRoundRobin => self.round_robin(&upstreams),
            Balance::PeakEwma => self.least_loaded(&upstreams),
        };
        Ok(upstreams[index].clone())
    }

    fn round_robin(&self, upstreams: &[Arc<Upstream<D>>]) -> usize {
        let candidates = |skip_busy: bool| -> Vec<Candidate> {
            upstreams
                .iter()
                .map(|u| Candidate {
                    weight: u.weight(),
                    unavailable: (skip_busy && u.dispatcher.is_busy())
                        || u.dispatcher.is_closed()
                        || u.dispatcher.is_destroyed(),
                })
                .collect()
        };
        let max_weight = self.max_weight;
        let mut round_robin = lock(&self.round_robin);
        round_robin
            .pick(&candidates(true), max_weight)
            // Everyone is busy: keep the weighted order over the open
            // upstreams, so that their queues grow evenly rather than all
            // on one (a cold burst finds every pool still connecting).
            .or_else(|| round_robin.pick(&candidates(false), max_weight))
            .unwrap_or(0)
    }

    fn least_loaded(&self, upstreams: &[Arc<Upstream<D>>]) -> usize {
        // Now and then a random upstream, so that one that looked bad gets
        // the requests that show it recovered.
        if fastrand::u32(..EXPLORE_ONE_IN) == 0 {
            return fastrand::usize(..upstreams.len());
        }
        let (a, b) = ewma::two_choices(upstreams.len());
        let cost = |u: &Upstream<D>| u.load.cost() * self.max_weight as f64 / u.weight() as f64;
        if cost(&upstreams[b]) < cost(&upstreams[a]) {
            b
        } else {
            a
        }
    }
}

/// Whether an error means the connection (not the request) failed: the
/// errors that cost an upstream its weight.
fn is_connection_error(err: &Error) -> bool {
    err.is_connect() || err.is_socket()
}

impl<D: Dispatcher> Service<Request> for BalancedPool<D> {
    type Response = Response;
    type Error = Error;
    type Future = BalancedFuture<D>;

    /// Ready unless closed or destroyed; each request waits for its
    /// upstream's readiness in its future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.lifecycle.poll_ready()
    }

    fn call(&mut self, mut request: Request) -> BalancedFuture<D> {
        let upstream = match self.inner.choose() {
            Ok(upstream) => upstream,
            Err(err) => return BalancedFuture::failed(err),
        };
        // The upstream's pool sends to its own origin.
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *request.uri_mut() = Uri::from(path);
        BalancedFuture {
            tracking: Some(InFlight::start(
                upstream.clone(),
                self.inner.error_penalty,
                self.inner.max_weight,
            )),
            inner: Routed::new(upstream.dispatcher.clone(), request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a request through a [`BalancedPool`]: the chosen
    /// upstream's readiness and response, timed for the latency estimate.
    pub struct BalancedFuture<D: Service<Request>> {
        #[pin]
        inner: Routed<D>,
        tracking: Option<InFlight<D>>,
    }
}

impl<D> BalancedFuture<D>
where
    D: Service<Request, Response = Response, Error = Error>,
{
    fn failed(error: Error) -> Self {
        BalancedFuture {
            inner: Routed::failed(error),
            tracking: None,
        }
    }
}

/// One request counted in flight on an upstream, until it ends or is
/// dropped (a cancelled request must not leave the upstream looking
/// loaded).
struct InFlight<D> {
    upstream: Arc<Upstream<D>>,
    started: Instant,
    penalty: i64,
    max_weight: i64,
    ended: bool,
}

impl<D> InFlight<D> {
    fn start(upstream: Arc<Upstream<D>>, penalty: i64, max_weight: i64) -> Self {
        upstream.load.start();
        InFlight {
            upstream,
            started: Instant::now(),
            penalty,
            max_weight,
            ended: false,
        }
    }

    /// The request ended with `result`: its latency and weight count.
    fn end(mut self, result: &Result<Response, Error>) {
        self.ended = true;
        let upstream = &self.upstream;
        match result {
            Ok(_) => {
                upstream.load.end(Some(self.started.elapsed()));
                upstream.adjust(self.penalty, self.max_weight);
            }
            Err(err) if is_connection_error(err) => {
                upstream.load.fail();
                upstream.adjust(-self.penalty, self.max_weight);
            }
            Err(_) => upstream.load.end(None),
        }
    }
}

impl<D> Drop for InFlight<D> {
    fn drop(&mut self) {
        if !self.ended {
            self.upstream.load.end(None);
        }
    }
}

impl<D> Future for BalancedFuture<D>
where
    D: Service<Request, Response = Response, Error = Error>,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        if let Some(tracking) = this.tracking.take() {
            tracking.end(&result);
        }
        Poll::Ready(result)
    }
}

impl<D: Service<Request>> fmt::Debug for BalancedFuture<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalancedFuture").finish_non_exhaustive()
    }
}

impl<D: Dispatcher> Dispatcher for BalancedPool<D> {
    fn close(&self) -> BoxFuture<'static, ()> {
        self.inner.lifecycle.close(|| self.inner.dispatchers())
    }

    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()> {
        self.inner
            .lifecycle
            .destroy(|| self.inner.dispatchers(), reason.map(Arc::new))
    }

    fn events(&self) -> Events {
        self.inner.events.subscribe()
    }

    fn is_closed(&self) -> bool {
        self.inner.lifecycle.is_closed()
    }

    fn is_destroyed(&self) -> bool {
        self.inner.lifecycle.is_destroyed()
    }

    fn is_idle(&self) -> bool {
        self.inner.all().iter().all(|u| u.dispatcher.is_idle())
    }

    fn is_busy(&self) -> bool {
        self.inner.all().iter().all(|u| u.dispatcher.is_busy())
    }
}

impl<D> fmt::Debug for BalancedPool<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let upstreams: Vec<String> = self
            .inner
            .all()
            .iter()
            .map(|u| format!("{} (weight {})", u.origin, u.weight()))
            .collect();
        f.debug_struct("BalancedPool")
            .field("upstreams", &upstreams)
            .finish()
    }
}
