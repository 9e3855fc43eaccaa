//! `FactoryPool`: undici's Pool over members a factory makes, one
//! connection's dispatcher each (a [`Client`] by default).
//!
//! A plain [`Pool`](super::Pool) drives its connections itself; this one
//! is for when each connection needs a dispatcher of its own making (a
//! Client composed with layers, a stand-in in tests). The rules are
//! undici's: the first member that is not busy takes the request; else a
//! new member is made while under `connections`; else the request waits in
//! a FIFO queue for the first member to drain. A member whose connection
//! failed is dropped, and one older than `client_ttl` is retired (closed
//! once its requests are done). All members share one connector, so one
//! TLS session cache.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use tower_service::Service;

use crate::client::{Client, ClientBuilder, ClientOptions};
use crate::dispatcher::Dispatcher;
use crate::error::Error;
use crate::events::{EventBus, EventKind, Events};
use crate::origin::Origin;
use crate::router::{Routed, RouterState};
use crate::sync::lock;
use crate::{Request, Response};

/// Makes one member of a [`FactoryPool`] from the pool's origin and a
/// [`ClientBuilder`] carrying the pool's options and shared connector.
pub(super) type MemberFactory<D> = dyn Fn(&Origin, ClientBuilder) -> Result<D, Error> + Send + Sync;

/// undici's `Pool` with its `factory`: requests to one origin over up to
/// `connections` members the factory makes, from
/// [`PoolBuilder::factory`](super::PoolBuilder::factory).
///
/// ```
/// use undici_dispatcher::{Body, Client, DispatcherExt, Pool};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), undici_dispatcher::Error> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// // Each connection is a Client the factory made (here with its own
/// // headers timeout; it could be composed with layers).
/// let pool = Pool::builder()
///     .connections(4)
///     .factory(|origin, client| client.headers_timeout(std::time::Duration::from_secs(5)).build(origin.clone()))
///     .build(server.url())?;
/// let response = pool.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
/// assert_eq!(response.status(), 200);
/// # Ok(())
/// # }
/// ```
pub struct FactoryPool<D: Service<Request> = Client> {
    inner: Arc<Inner<D>>,
}

impl<D: Service<Request>> Clone for FactoryPool<D> {
    fn clone(&self) -> Self {
        FactoryPool {
            inner: self.inner.clone(),
        }
    }
}

struct Inner<D: Service<Request>> {
    origin: Origin,
    factory: Box<MemberFactory<D>>,
    /// The options every member starts from, the shared connector in them.
    options: ClientOptions,
    limit: Option<usize>,
    client_ttl: Option<Duration>,
    events: EventBus,
    next_id: AtomicU64,
    lifecycle: RouterState,
    state: Mutex<Members<D>>,
    /// Woken whenever a waiting request is handed a member, for `close`.
    handed_out: Notify,
}

struct Members<D: Service<Request>> {
    members: Vec<Member<D>>,
    /// Requests waiting for a member, first come first served.
    queue: VecDeque<Waiting<D>>,
}

/// A request waiting for a member. The member's call happens as it is
/// handed over, so a `close` that follows lets the request finish.
struct Waiting<D: Service<Request>> {
    request: Request,
    answer: oneshot::Sender<Routed<D>>,
}

struct Member<D> {
    id: u64,
    dispatcher: D,
    created: Instant,
}

impl<D: Dispatcher> FactoryPool<D> {
    pub(super) fn new(
        origin: Origin,
        options: ClientOptions,
        limit: Option<usize>,
        client_ttl: Option<Duration>,
        factory: Box<MemberFactory<D>>,
    ) -> Result<Self, Error> {
        let mut options = options;
        // One connector for every member: one TLS session cache.
        options.connector = Some(options.build_connector()?);
        Ok(FactoryPool {
            inner: Arc::new(Inner {
                origin,
                factory,
                options,
                limit,
                client_ttl,
                events: EventBus::new("Pool"),
                next_id: AtomicU64::new(1),
                lifecycle: RouterState::default(),
                state: Mutex::new(Members {
                    members: Vec::new(),
                    queue: VecDeque::new(),
                }),
                handed_out: Notify::new(),
            }),
        })
    }

    /// The origin this pool sends to.
    pub fn origin(&self) -> &Origin {
        &self.inner.origin
    }

    /// The members the factory made that are still in the pool.
    pub fn members(&self) -> Vec<D> {
        let st = self.inner.lock();
        st.members.iter().map(|m| m.dispatcher.clone()).collect()
    }

    /// Requests waiting for a member (undici's pool-level `queued`).
    pub fn queued(&self) -> usize {
        self.inner.lock().queue.len()
    }
}

impl<D: Dispatcher> Inner<D> {
    fn lock(&self) -> MutexGuard<'_, Members<D>> {
        lock(&self.state)
    }

    fn lifecycle_error(&self) -> Option<Error> {
        self.lifecycle.lifecycle_error()
    }

    /// Hands `request` to a member now, or queues it for the first one
    /// to drain.
    fn dispatch(self: &Arc<Self>, request: Request) -> State<D> {
        let mut st = self.lock();
        // Under the lock: `destroy` marks the pool, then takes its members
        // and queue under it, so no member made here can escape it.
        if let Some(err) = self.lifecycle_error() {
            return State::now(Routed::failed(err));
        }
        self.retire_expired(&mut st);
        let free = st
            .members
            .iter()
            .find(|m| !m.dispatcher.is_busy() && !m.dispatcher.is_closed());
        if let Some(member) = free {
            return State::now(Routed::new(member.dispatcher.clone(), request));
        }
        if self.limit.is_none_or(|limit| st.members.len() < limit) {
            return State::now(match self.add_member(&mut st) {
                Ok(member) => Routed::new(member, request),
                Err(err) => Routed::failed(err),
            });
        }
        let (answer, rx) = oneshot::channel();
        st.queue.push_back(Waiting { request, answer });
        State::Waiting { answer: rx }
    }

    fn add_member(self: &Arc<Self>, st: &mut Members<D>) -> Result<D, Error> {
        let builder = ClientBuilder {
            options: self.options.clone(),
        };
        let dispatcher = (self.factory)(&self.origin, builder)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.watch(id, dispatcher.events());
        st.members.push(Member {
            id,
            dispatcher: dispatcher.clone(),
            created: Instant::now(),
        });
        Ok(dispatcher)
    }

    /// `client_ttl`: a member past its lifetime takes no new request and
    /// is closed, which lets its running requests finish.
    fn retire_expired(&self, st: &mut Members<D>) {
        let Some(ttl) = self.client_ttl else {
            return;
        };
        let now = Instant::now();
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut st.members)
            .into_iter()
            .partition(|m| now >= m.created + ttl);
        st.members = kept;
        for member in expired {
            spawn_detached(member.dispatcher.close());
        }
    }

    /// Re-emits a member's events with the pool in front; hands a member
    /// that drained to the first waiting request, and drops one whose
    /// connection failed.
    fn watch(self: &Arc<Self>, id: u64, mut events: Events) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            while let Some(event) = events.next().await {
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                let kind = event.kind;
                pool.events.forward(event);
                match kind {
                    EventKind::Drain | EventKind::Connect => pool.member_free(id),
                    EventKind::ConnectionError | EventKind::Disconnect => pool.member_ended(id),
                }
            }
        });
    }

    /// Hands member `id`, free again, to the first waiting request (one:
    /// the member is busy again once that request runs, and says so with
    /// its next drain).
    fn member_free(self: &Arc<Self>, id: u64) {
        let mut st = self.lock();
        if self.lifecycle.is_destroyed() {
            return;
        }
        let Some(member) = st.members.iter().find(|m| m.id == id) else {
            return;
        };
        if member.dispatcher.is_busy() {
            return;
        }
        let dispatcher = member.dispatcher.clone();
        // A waiter that went away is skipped; the next one gets it.
        while let Some(waiting) = st.queue.pop_front() {
            if !waiting.answer.is_closed() {
                let routed = Routed::new(dispatcher, waiting.request);
                let _ = waiting.answer.send(routed);
                break;
            }
        }
        drop(st);
        self.handed_out.notify_waiters();
    }

    /// A member's connection ended: an idle member leaves the pool, and
    /// waiting requests get a new one.
    fn member_ended(self: &Arc<Self>, id: u64) {
        let mut st = self.lock();
        // A destroyed pool's members end as it destroys them: its waiting
        // requests get the destroy error, not a new member.
        if self.lifecycle.is_destroyed() {
            return;
        }
        st.members
            .retain(|m| m.id != id || !m.dispatcher.is_idle() || m.dispatcher.is_busy());
        while !st.queue.is_empty() && self.limit.is_none_or(|limit| st.members.len() < limit) {
            let made = self.add_member(&mut st);
            let Some(waiting) = st.queue.pop_front() else {
                break;
            };
            let routed = match made {
                Ok(member) => Routed::new(member, waiting.request),
                Err(err) => Routed::failed(err),
            };
            let _ = waiting.answer.send(routed);
        }
        drop(st);
        self.handed_out.notify_waiters();
    }

    /// True while a request still waits for a member.
    fn has_waiters(&self) -> bool {
        let mut st = self.lock();
        st.queue.retain(|waiting| !waiting.answer.is_closed());
        !st.queue.is_empty()
    }

    fn all(&self) -> Vec<D> {
        self.lock()
            .members
            .iter()
            .map(|m| m.dispatcher.clone())
            .collect()
    }
}

/// Runs a close or destroy future to its end without waiting for it.
fn spawn_detached(future: BoxFuture<'static, ()>) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(future);
    }
}

impl<D: Dispatcher> Service<Request> for FactoryPool<D> {
    type Response = Response;
    type Error = Error;
    type Future = FactoryPoolFuture<D>;

    /// Ready unless closed or destroyed; a request waits for its member
    /// in its future.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.lifecycle.poll_ready()
    }

    fn call(&mut self, request: Request) -> FactoryPoolFuture<D> {
        FactoryPoolFuture {
            state: self.inner.dispatch(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of a request through a [`FactoryPool`]: the wait for a
    /// member, its readiness, then its response.
    pub struct FactoryPoolFuture<D: Service<Request>> {
        #[pin]
        state: State<D>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<D: Service<Request>> {
        Waiting { answer: oneshot::Receiver<Routed<D>> },
        Routed { #[pin] inner: Routed<D> },
    }
}

impl<D: Service<Request>> State<D> {
    fn now(inner: Routed<D>) -> Self {
        State::Routed { inner }
    }
}

impl<D> Future for FactoryPoolFuture<D>
where
    D: Service<Request, Response = Response, Error = Error>,
{
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project().state.project() {
                StateProj::Waiting { answer } => {
                    let inner = match std::task::ready!(Pin::new(answer).poll(cx)) {
                        Ok(routed) => routed,
                        // The pool went away with the request in its queue.
                        Err(_) => Routed::failed(Error::destroyed()),
                    };
                    self.as_mut().project().state.set(State::Routed { inner });
                }
                StateProj::Routed { inner } => return inner.poll(cx),
            }
        }
    }
}

impl<D: Service<Request>> fmt::Debug for FactoryPoolFuture<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactoryPoolFuture").finish_non_exhaustive()
    }
}

impl<D: Dispatcher> Dispatcher for FactoryPool<D> {
    /// Refuses new requests; queued ones still get a member, and the
    /// close resolves once every member has closed.
    fn close(&self) -> BoxFuture<'static, ()> {
        // Closed now; the members are closed once every waiting request
        // has one.
        self.inner.lifecycle.mark_closed();
        let inner = self.inner.clone();
        Box::pin(async move {
            // Each waiting request is handed a member as one drains; the
            // members' own close then waits for what they run.
            loop {
                let handed_out = inner.handed_out.notified();
                tokio::pin!(handed_out);
                handed_out.as_mut().enable();
                if !inner.has_waiters() {
                    break;
                }
                handed_out.await;
            }
            inner.lifecycle.close(|| inner.all()).await;
        })
    }

    fn destroy(&self, reason: Option<Error>) -> BoxFuture<'static, ()> {
        let reason = reason.map(Arc::new);
        // The members are taken after the mark, which `dispatch` and a
        // member's end check under the lock they add members with; the
        // queue only shrinks from then on.
        let destroying = self
            .inner
            .lifecycle
            .destroy(|| self.inner.all(), reason.clone());
        let waiting: Vec<_> = self.inner.lock().queue.drain(..).collect();
        for waiting in waiting {
            let error = reason.as_deref().cloned().unwrap_or_else(Error::destroyed);
            let _ = waiting.answer.send(Routed::failed(error));
        }
        destroying
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
        let st = self.inner.lock();
        st.queue.is_empty() && st.members.iter().all(|m| m.dispatcher.is_idle())
    }

    fn is_busy(&self) -> bool {
        let st = self.inner.lock();
        self.inner
            .limit
            .is_some_and(|limit| st.members.len() >= limit)
            && st.members.iter().all(|m| m.dispatcher.is_busy())
    }
}

impl<D: Dispatcher> fmt::Debug for FactoryPool<D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FactoryPool")
            .field("origin", &self.inner.origin)
            .field("members", &self.inner.lock().members.len())
            .finish()
    }
}
