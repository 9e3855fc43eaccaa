//! `Agent`: many origins, one dispatcher per origin.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::pin::Pin;
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tower_service::Service;

use crate::client::forward_client_options;
use crate::connection::ConnectionBudget;
use crate::dispatcher::Dispatcher;
use crate::error::{Error, ErrorKind};
use crate::events::{EventBus, EventKind, Events};
use crate::options::RequestOptions;
use crate::origin::Origin;
use crate::pool::{Pool, PoolBuilder, PoolStats};
use crate::router::{Routed, RouterState};
use crate::sync;
use crate::{Request, Response};

type Factory<D> = dyn Fn(&Origin, PoolBuilder<Pool>) -> Result<D, Error> + Send + Sync;

/// undici's `Agent`: routes each request, by the origin of its absolute
/// URI, to a dispatcher of that origin, made on first use by the factory
/// (a [`Pool`] by default).
///
/// Requests that say [`RequestOptions::allow_h2`]`(false)` go to a
/// separate HTTP/1-only dispatcher of their origin, as undici keys them
/// `origin#http1-only`. A dispatcher is dropped once it has no connection
/// and no request (after a `disconnect` or `connectionError`); requests
/// still holding it finish normally.
///
/// ```
/// use undici_dispatcher::{Agent, Body, DispatcherExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), undici_dispatcher::Error> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// # let url = format!("{}/", server.url());
/// let agent = Agent::builder().connections(16).build();
/// let response = agent.request(http::Request::get(url).body(Body::empty()).unwrap()).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(())
/// # }
/// ```
pub struct Agent<D = Pool> {
    inner: Arc<Inner<D>>,
}

impl<D> Clone for Agent<D> {
    fn clone(&self) -> Self {
        Agent {
            inner: self.inner.clone(),
        }
    }
}

/// The dispatchers by origin. Every request hashes its key: foldhash
/// (seeded per map) costs a fraction of std's SipHash on these few bytes.
/// hashbrown's map, for its lookup by an [`Equivalent`](hashbrown::Equivalent)
/// key: a request is looked up by a [`Spelled`] key, borrowed from its URL.
type Dispatchers<D> = hashbrown::HashMap<Key, D, foldhash::fast::RandomState>;

struct Inner<D> {
    dispatchers: RwLock<Dispatchers<D>>,
    factory: Box<Factory<D>>,
    pool: PoolBuilder<Pool>,
    max_origins: Option<usize>,
    events: EventBus,
    lifecycle: RouterState,
}

/// An origin, and whether its requests refused HTTP/2.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    origin: Origin,
    http1_only: bool,
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_key(self.origin.authority().as_str(), state);
    }
}

/// What a [`Key`] and a [`Spelled`] one hash: the authority alone, which
/// tells origins apart but for their scheme and `http1_only`, rarely
/// different for one authority (such keys share a bucket, and equality
/// still tells them apart). Equal keys, equal hashes.
fn hash_key<H: Hasher>(authority: &str, state: &mut H) {
    state.write(authority.as_bytes());
}

/// The key of a request as its URL spells it, unchecked and borrowed: it
/// finds a dispatcher only when that spelling is the normalized one
/// (every key in the map is: [`Origin::is_spelled_in`] says which), which
/// spares the usual request the work, and the lookup copies nothing out
/// of the URL (no reference count).
struct Spelled<'a> {
    uri: &'a http::Uri,
    http1_only: bool,
}

impl<'a> Spelled<'a> {
    /// `None` unless the scheme is `http` or `https` and there is an
    /// authority.
    fn of(request: &'a Request, http1_only: bool) -> Option<Spelled<'a>> {
        let uri = request.uri();
        crate::origin::https_scheme(uri.scheme_str()?)?;
        uri.authority()?;
        Some(Spelled { uri, http1_only })
    }
}

impl Hash for Spelled<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let authority = self
            .uri
            .authority()
            .map_or("", http::uri::Authority::as_str);
        hash_key(authority, state);
    }
}

impl hashbrown::Equivalent<Key> for Spelled<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        key.http1_only == self.http1_only && key.origin.is_spelled_in(self.uri)
    }
}

impl Key {
    /// The key of `request`: its origin, normalized and checked.
    fn of(request: &Request, http1_only: bool) -> Result<Key, Error> {
        let origin = Origin::from_uri(request.uri()).map_err(|err| {
            Error::invalid_argument(format!(
                "an Agent needs an absolute URL to route by: {}",
                err.message()
            ))
        })?;
        Ok(Key { origin, http1_only })
    }
}

/// Builds an [`Agent`]: every [`ClientOptions`](crate::ClientOptions)
/// setter, the Pool's `connections` and `client_ttl`, and the Agent's own.
pub struct AgentBuilder<D = Pool> {
    options: crate::ClientOptions,
    connections: Option<usize>,
    client_ttl: Option<std::time::Duration>,
    max_origins: Option<usize>,
    max_total_connections: Option<usize>,
    factory: Box<Factory<D>>,
}

impl Agent<Pool> {
    /// An agent with undici's defaults: a Pool per origin, unlimited
    /// connections and origins.
    pub fn new() -> Self {
        Agent::builder().build()
    }

    /// A builder with undici's defaults.
    pub fn builder() -> AgentBuilder<Pool> {
        AgentBuilder {
            options: crate::ClientOptions::new(),
            connections: None,
            client_ttl: None,
            max_origins: None,
            max_total_connections: None,
            factory: Box::new(|origin, builder| builder.build(origin.clone())),
        }
    }

    /// undici's Agent `stats`: each origin's [`PoolStats`], keyed by the
    /// origin (`#http1-only` appended for HTTP/1-only pools).
    pub fn stats(&self) -> HashMap<String, PoolStats> {
        self.inner
            .read()
            .iter()
            .map(|(key, pool)| (key.to_string(), pool.stats()))
            .collect()
    }
}

impl Default for Agent<Pool> {
    fn default() -> Self {
        Agent::new()
    }
}

impl<D: Dispatcher> Agent<D> {
    /// The origins the agent holds a dispatcher for.
    pub fn origins(&self) -> Vec<Origin> {
        self.inner
            .read()
            .keys()
            .map(|key| key.origin.clone())
            .collect()
    }

    /// The dispatcher of `origin`, if the agent holds one.
    pub fn dispatcher(&self, origin: &Origin) -> Option<D> {
        let key = Key {
            origin: origin.clone(),
            http1_only: false,
        };
        self.inner.read().get(&key).cloned()
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.http1_only {
            write!(f, "{}#http1-only", self.origin)
        } else {
            write!(f, "{}", self.origin)
        }
    }
}

impl<D> AgentBuilder<D> {
    forward_client_options!();

    /// Connections per origin; 0 means unlimited (the default).
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = (connections > 0).then_some(connections);
        self
    }

    /// A connection's lifetime (see [`PoolBuilder::client_ttl`]).
    pub fn client_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.client_ttl = Some(ttl);
        self
    }

    /// The most origins at once; a request to one more fails with
    /// `UND_ERR_MAX_ORIGINS_REACHED`. Default: unlimited; 0 also means
    /// unlimited, as for `connections` (undici refuses 0).
    pub fn max_origins(mut self, max: usize) -> Self {
        self.max_origins = (max > 0).then_some(max);
        self
    }

    /// One cap on open connections across all origins (beyond undici:
    /// its issue 3268, Node's `maxTotalSockets`). A request that needs a
    /// connection beyond it waits in its origin's queue; an idle connection
    /// of another origin is closed to make room. Default: unlimited.
    pub fn max_total_connections(mut self, max: usize) -> Self {
        self.max_total_connections = (max > 0).then_some(max);
        self
    }

    /// How each origin's dispatcher is made (undici's `factory`): it gets
    /// the origin and a [`PoolBuilder`] holding the agent's options, and
    /// answers any dispatcher: a Pool, a Client, a composed stack.
    pub fn factory<E, F>(self, factory: F) -> AgentBuilder<E>
    where
        F: Fn(&Origin, PoolBuilder<Pool>) -> Result<E, Error> + Send + Sync + 'static,
    {
        AgentBuilder {
            options: self.options,
            connections: self.connections,
            client_ttl: self.client_ttl,
            max_origins: self.max_origins,
            max_total_connections: self.max_total_connections,
            factory: Box::new(factory),
        }
    }

    /// The agent.
    pub fn build(self) -> Agent<D> {
        let mut pool = PoolBuilder::new().options(self.options);
        pool.connections = self.connections;
        pool.client_ttl = self.client_ttl;
        pool.budget = self.max_total_connections.map(ConnectionBudget::new);
        Agent {
            inner: Arc::new(Inner {
                dispatchers: RwLock::new(Dispatchers::default()),
                factory: self.factory,
                pool,
                max_origins: self.max_origins,
                events: EventBus::new("Agent"),
                lifecycle: RouterState::default(),
            }),
        }
    }
}

impl<D> fmt::Debug for AgentBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentBuilder")
            .field("options", &self.options)
            .field("connections", &self.connections)
            .field("client_ttl", &self.client_ttl)
            .field("max_origins", &self.max_origins)
            .field("max_total_connections", &self.max_total_connections)
            .finish_non_exhaustive()
    }
}

impl<D> Inner<D> {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Dispatchers<D>> {
        sync::read(&self.dispatchers)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Dispatchers<D>> {
        sync::write(&self.dispatchers)
    }
}

impl<D: Dispatcher> Inner<D> {
    fn lifecycle_error(&self) -> Option<Error> {
        self.lifecycle.lifecycle_error()
    }

    /// Hands `request` to the dispatcher for `key`, made if it does not
    /// exist yet. The request reaches the dispatcher while the map is
    /// locked, so the reaper cannot drop a dispatcher that a request is
    /// about to use (it would run on an orphan `close` never reaches).
    fn route(self: &Arc<Self>, request: Request) -> Routed<D> {
        let http1_only =
            RequestOptions::of(&request).and_then(RequestOptions::allow_h2_override) == Some(false);
        if let Some(key) = Spelled::of(&request, http1_only) {
            if let Some(dispatcher) = self.read().get(&key) {
                return Routed::new(dispatcher.clone(), request);
            }
        }
        let key = match Key::of(&request, http1_only) {
            Ok(key) => key,
            Err(err) => return Routed::failed(err),
        };
        if let Some(dispatcher) = self.read().get(&key) {
            return Routed::new(dispatcher.clone(), request);
        }
        let mut dispatchers = self.write();
        if let Some(dispatcher) = dispatchers.get(&key) {
            return Routed::new(dispatcher.clone(), request);
        }
        match self.make(&dispatchers, &key) {
            Ok(dispatcher) => {
                dispatchers.insert(key, dispatcher.clone());
                Routed::new(dispatcher, request)
            }
            Err(err) => Routed::failed(err),
        }
    }

    /// A new dispatcher for `key`, within `max_origins`.
    fn make(self: &Arc<Self>, dispatchers: &Dispatchers<D>, key: &Key) -> Result<D, Error> {
        if let Some(err) = self.lifecycle_error() {
            return Err(err);
        }
        if self.max_origins.is_some_and(|max| dispatchers.len() >= max) {
            return Err(Error::new(
                ErrorKind::MaxOriginsReached,
                format!(
                    "Maximum allowed origins reached ({})",
                    self.max_origins.unwrap_or_default()
                ),
            ));
        }
        let mut builder = self.pool.clone();
        if key.http1_only {
            builder = builder.allow_h2(false);
        }
        let dispatcher = (self.factory)(&key.origin, builder)?;
        let mut events = dispatcher.events();
        events.relay_to(&self.events);
        self.watch(key, events);
        Ok(dispatcher)
    }

    /// Re-emits a dispatcher's events with the agent in front, and drops
    /// the dispatcher once it is idle after a connection ended.
    fn watch(self: &Arc<Self>, key: &Key, mut events: Events) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let agent: Weak<Self> = Arc::downgrade(self);
        let key = key.clone();
        runtime.spawn(async move {
            while let Some(event) = events.next().await {
                let Some(agent) = agent.upgrade() else {
                    return;
                };
                let ended = matches!(
                    event.kind,
                    EventKind::Disconnect | EventKind::ConnectionError
                );
                agent.events.forward(event);
                if ended {
                    agent.reap(&key);
                }
            }
        });
    }

    /// Drops an idle dispatcher. Requests that already hold a clone of it
    /// keep working; it is not closed, just forgotten.
    fn reap(&self, key: &Key) {
        let mut dispatchers = self.write();
        if dispatchers.get(key).is_some_and(Dispatcher::is_idle) {
            dispatchers.remove(key);
        }
    }

    fn all(&self) -> Vec<D> {
        self.read().values().cloned().collect()
    }
}

impl<D: Dispatcher> Service<Request> for Agent<D> {
    type Response = Response;
    type Error = Error;
    type Future = AgentFuture<D>;

    /// Ready unless closed or destroyed: which origin's readiness matters
    /// is only known from the request, so each request waits for its own
    /// dispatcher's readiness in its future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.lifecycle.poll_ready()
    }

    fn call(&mut self, request: Request) -> AgentFuture<D> {
        AgentFuture {
            inner: self.inner.route(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a request through an [`Agent`]: the origin's
    /// dispatcher's readiness, then its response.
    pub struct AgentFuture<D: Service<Request>> {
        #[pin]
        inner: Routed<D>,
    }
}

impl<D> Future for AgentFuture<D>
where
    D: Service<Request, Response = Response, Error = Error>,
{
    type Output = Result<Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<D: Service<Request>> fmt::Debug for AgentFuture<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentFuture").finish_non_exhaustive()
    }
}

impl<D: Dispatcher> Dispatcher for Agent<D> {
    fn close(&self) -> BoxFuture<'static, ()> {
        self.inner.lifecycle.close(|| self.inner.all())
    }

    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()> {
        self.inner
            .lifecycle
            .destroy(|| self.inner.all(), reason.map(Arc::new))
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
        self.inner.all().iter().all(Dispatcher::is_idle)
    }
}

impl<D> fmt::Debug for Agent<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins: Vec<String> = self.inner.read().keys().map(Key::to_string).collect();
        f.debug_struct("Agent").field("origins", &origins).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use hashbrown::Equivalent;

    use super::*;

    fn request(url: &str) -> Request {
        http::Request::get(url).body(crate::Body::empty()).unwrap()
    }

    #[test]
    fn a_spelled_key_hashes_and_compares_as_the_key_it_names() {
        let hasher = foldhash::fast::RandomState::default();
        let kept = request("https://example.com:8443/a");
        let key = Key::of(&kept, false).unwrap();
        let spelled = Spelled::of(&kept, false).unwrap();
        assert_eq!(hasher.hash_one(&spelled), hasher.hash_one(&key));
        assert!(spelled.equivalent(&key));
        // The same authority under another scheme, or HTTP/1 only, is
        // another key.
        let http = request("http://example.com:8443/a");
        assert!(!Spelled::of(&http, false).unwrap().equivalent(&key));
        assert!(!Spelled::of(&kept, true).unwrap().equivalent(&key));
        // A spelling that is not the kept one misses, and is normalized.
        let upper = request("https://EXAMPLE.com:8443/a");
        assert!(!Spelled::of(&upper, false).unwrap().equivalent(&key));
        assert_eq!(Key::of(&upper, false).unwrap(), key);
        assert!(Spelled::of(&request("ftp://example.com/"), false).is_none());
    }
}
