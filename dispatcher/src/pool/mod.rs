//! `Pool` and `RoundRobinPool`: one origin, many connections; and
//! `FactoryPool`, a Pool whose connections are dispatchers a factory made.

mod factory;

pub use factory::{FactoryPool, FactoryPoolFuture};

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use crate::client::{forward_client_options, ClientBuilder, ClientOptions, Handle};
use crate::connection::{ConnectionBudget, PoolConfig, Selection, Shared};
use crate::dispatcher::Dispatcher;
use crate::error::Error;
use crate::origin::{IntoOrigin, Origin};

/// undici's `Pool`: requests to one origin over up to `connections`
/// connections, all made by one connector (one TLS session cache).
///
/// A request takes a free connection (the most recently used one), else a
/// new connection while under `connections`, else waits in a FIFO queue.
/// Over HTTP/2 one connection carries up to `max_concurrent_streams`
/// requests, and while the first connection is still negotiating ALPN,
/// concurrent requests wait for it instead of each opening a socket
/// (undici issue 4143): a cold burst of 100 requests to an h2 origin
/// opens one connection.
///
/// undici's Pool is made of Clients, and its `factory` makes them; this
/// Pool drives its connections itself, which is leaner. To make each
/// connection's dispatcher yourself (a Client composed with layers, a
/// stand-in), give [`PoolBuilder::factory`] and get a [`FactoryPool`].
///
/// ```
/// use undici_dispatcher::{Body, DispatcherExt, Pool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), undici_dispatcher::Error> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// # let origin = server.url();
/// let pool = Pool::builder().connections(8).build(origin.as_str())?;
/// let response = pool.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Pool {
    pub(crate) handle: Handle,
}

/// undici's `RoundRobinPool`: a [`Pool`] that cycles over its connections
/// instead of reusing the warmest one, to spread requests over backends
/// that an L4 balancer pinned the connections to.
#[derive(Clone)]
pub struct RoundRobinPool {
    pub(crate) handle: Handle,
}

/// undici's `PoolStats`: a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Open connections.
    pub connected: usize,
    /// Open connections that can take a request now.
    pub free: usize,
    /// Requests waiting for a connection.
    pub pending: usize,
    /// Requests in the pool's queue (the same as `pending` here: a pool
    /// has one queue).
    pub queued: usize,
    /// Requests in flight (sent, response not fully read).
    pub running: usize,
    /// `queued + running`.
    pub size: usize,
}

impl PoolStats {
    pub(crate) fn of(shared: &Shared) -> Self {
        let counts = shared.counts();
        PoolStats {
            connected: counts.connected,
            free: counts.free,
            pending: counts.queued,
            queued: counts.queued,
            running: counts.running,
            size: counts.queued + counts.running,
        }
    }
}

/// Builds a [`Pool`] or a [`RoundRobinPool`]; every [`ClientOptions`]
/// setter is here too.
pub struct PoolBuilder<P = Pool> {
    pub(crate) options: ClientOptions,
    pub(crate) connections: Option<usize>,
    pub(crate) client_ttl: Option<Duration>,
    /// The cap shared with the other origins of an Agent.
    pub(crate) budget: Option<Arc<ConnectionBudget>>,
    kind: PhantomData<fn() -> P>,
}

impl<P> Clone for PoolBuilder<P> {
    fn clone(&self) -> Self {
        PoolBuilder {
            options: self.options.clone(),
            connections: self.connections,
            client_ttl: self.client_ttl,
            budget: self.budget.clone(),
            kind: PhantomData,
        }
    }
}

impl<P> fmt::Debug for PoolBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolBuilder")
            .field("options", &self.options)
            .field("connections", &self.connections)
            .field("client_ttl", &self.client_ttl)
            .finish()
    }
}

impl<P> PoolBuilder<P> {
    pub(crate) fn new() -> Self {
        PoolBuilder {
            options: ClientOptions::new(),
            connections: None,
            client_ttl: None,
            budget: None,
            kind: PhantomData,
        }
    }

    forward_client_options!();

    /// The most connections to the origin; 0 means unlimited, as undici's
    /// default `null`. Default: unlimited.
    pub fn connections(mut self, connections: usize) -> Self {
        self.connections = (connections > 0).then_some(connections);
        self
    }

    /// How long a connection lives before it is retired (closed once its
    /// request is done), for blue/green deploys and DNS changes. Default:
    /// forever.
    pub fn client_ttl(mut self, ttl: Duration) -> Self {
        self.client_ttl = Some(ttl);
        self
    }

    /// undici's Pool `factory`: every connection is a dispatcher that
    /// `factory` makes from the origin and a [`ClientBuilder`] that
    /// carries this builder's options and the pool's one connector
    /// (`builder.build(origin.clone())` makes the default, a Client).
    pub fn factory<D, F>(self, factory: F) -> FactoryPoolBuilder<D>
    where
        D: Dispatcher,
        F: Fn(&Origin, ClientBuilder) -> Result<D, Error> + Send + Sync + 'static,
    {
        FactoryPoolBuilder {
            options: self.options,
            connections: self.connections,
            client_ttl: self.client_ttl,
            factory: Box::new(factory),
        }
    }

    fn shared(
        self,
        origin: Origin,
        selection: Selection,
        kind: &'static str,
    ) -> Result<Arc<Shared>, Error> {
        let config = PoolConfig {
            limit: self.connections,
            client_ttl: self.client_ttl,
            selection,
            kind,
            budget: self.budget,
        };
        Shared::new(origin, self.options, config)
    }
}

impl PoolBuilder<Pool> {
    /// The pool for `origin`.
    pub fn build<O>(self, origin: O) -> Result<Pool, Error>
    where
        O: IntoOrigin,
    {
        let shared = self.shared(origin.into_origin()?, Selection::Warmest, "Pool")?;
        Ok(Pool {
            handle: Handle::new(shared),
        })
    }
}

impl PoolBuilder<RoundRobinPool> {
    /// The round-robin pool for `origin`.
    pub fn build<O>(self, origin: O) -> Result<RoundRobinPool, Error>
    where
        O: IntoOrigin,
    {
        let shared = self.shared(
            origin.into_origin()?,
            Selection::RoundRobin,
            "RoundRobinPool",
        )?;
        Ok(RoundRobinPool {
            handle: Handle::new(shared),
        })
    }
}

/// Builds a [`FactoryPool`]: a [`PoolBuilder`] given a factory.
pub struct FactoryPoolBuilder<D> {
    options: ClientOptions,
    connections: Option<usize>,
    client_ttl: Option<Duration>,
    factory: Box<factory::MemberFactory<D>>,
}

impl<D: Dispatcher> FactoryPoolBuilder<D> {
    /// The pool for `origin`.
    pub fn build<O>(self, origin: O) -> Result<FactoryPool<D>, Error>
    where
        O: IntoOrigin,
    {
        FactoryPool::new(
            origin.into_origin()?,
            self.options,
            self.connections,
            self.client_ttl,
            self.factory,
        )
    }
}

impl<D> fmt::Debug for FactoryPoolBuilder<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactoryPoolBuilder")
            .field("options", &self.options)
            .field("connections", &self.connections)
            .field("client_ttl", &self.client_ttl)
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool for `origin` with undici's defaults (unlimited connections).
    pub fn new<O>(origin: O) -> Result<Pool, Error>
    where
        O: IntoOrigin,
    {
        Pool::builder().build(origin)
    }

    /// A builder with undici's defaults.
    pub fn builder() -> PoolBuilder<Pool> {
        PoolBuilder::new()
    }

    /// The origin this pool sends to.
    pub fn origin(&self) -> &Origin {
        &self.handle.shared.origin
    }

    /// undici's `PoolStats`, as of now.
    pub fn stats(&self) -> PoolStats {
        PoolStats::of(&self.handle.shared)
    }
}

impl RoundRobinPool {
    /// A round-robin pool for `origin` with undici's defaults.
    pub fn new<O>(origin: O) -> Result<RoundRobinPool, Error>
    where
        O: IntoOrigin,
    {
        RoundRobinPool::builder().build(origin)
    }

    /// A builder with undici's defaults.
    pub fn builder() -> PoolBuilder<RoundRobinPool> {
        PoolBuilder::new()
    }

    /// The origin this pool sends to.
    pub fn origin(&self) -> &Origin {
        &self.handle.shared.origin
    }

    /// undici's `PoolStats`, as of now.
    pub fn stats(&self) -> PoolStats {
        PoolStats::of(&self.handle.shared)
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("origin", self.origin())
            .field("stats", &self.stats())
            .finish()
    }
}

impl fmt::Debug for RoundRobinPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RoundRobinPool")
            .field("origin", self.origin())
            .field("stats", &self.stats())
            .finish()
    }
}

crate::client::pooled_dispatcher!(Pool);
crate::client::pooled_dispatcher!(RoundRobinPool);
