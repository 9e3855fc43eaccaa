//! The connections to one origin and the requests waiting for them.
//!
//! This is the state behind Client (one connection), Pool and
//! RoundRobinPool (many): our own rather than hyper-util's pool pieces,
//! because undici's semantics need a per-origin cap, a FIFO queue, stats,
//! events, keep-alive hints and connection lifetimes, none of which
//! `hyper_util::client::pool::{cache, singleton}` carry.
//!
//! Rules:
//! - A request takes the first available connection: an HTTP/2 connection
//!   with a free stream, else the most recently idle HTTP/1 connection
//!   (LIFO, so the least warm ones expire); otherwise it waits in a FIFO
//!   queue, and a connection is opened if the cap allows.
//! - While the first connection of an origin that may speak HTTP/2 is
//!   still negotiating ALPN, no more are opened: one HTTP/2 connection
//!   serves a cold burst (undici issue 4143). Once ALPN says HTTP/1.1, the
//!   queue fans out up to the cap.
//! - A connection leaves the pool by removing its entry; the entry holds
//!   the signal that tells the connection's task to close it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use http::HeaderValue;
use slab::Slab;
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::client::options::{BoxConnector, ClientOptions};
use crate::error::{Error, ErrorKind, SocketInfo};
use crate::events::{EventBus, EventKind};
use crate::origin::Origin;
use crate::sync::lock;

use super::budget::ConnectionBudget;
use super::errors;
use super::gate::Gate;
use super::lease::{Lease, Sender};
use super::open;
use super::orders::Orders;

/// A waiting request: it is handed a lease, or the error that ends it.
type Waiter = oneshot::Sender<Result<Lease, Error>>;

/// What ALPN (or the options) told us the origin speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// Which idle HTTP/1 connection serves the next request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Selection {
    /// The most recently used: the others expire (Pool, Client).
    Warmest,
    /// The one idle longest: requests cycle over every connection
    /// (RoundRobinPool, for backends behind an L4 balancer).
    RoundRobin,
}

/// How a pool is shaped.
#[derive(Clone, Debug)]
pub(crate) struct PoolConfig {
    /// The cap on connections; `None` is unlimited.
    pub(crate) limit: Option<usize>,
    /// A connection's lifetime.
    pub(crate) client_ttl: Option<Duration>,
    pub(crate) selection: Selection,
    /// The dispatcher type, for event targets.
    pub(crate) kind: &'static str,
    /// A cap on connections shared with other pools.
    pub(crate) budget: Option<Arc<ConnectionBudget>>,
}

/// The pool's counters, as undici's `PoolStats` (and `ClientStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) connected: usize,
    pub(crate) free: usize,
    pub(crate) queued: usize,
    pub(crate) running: usize,
}

pub(crate) struct Shared {
    pub(crate) origin: Origin,
    pub(crate) host_header: HeaderValue,
    pub(crate) options: ClientOptions,
    pub(crate) connector: BoxConnector,
    pub(crate) events: EventBus,
    /// The readiness gate of a pool with a cap: one permit per request it
    /// can serve without queueing. `None` when connections are unlimited.
    pub(crate) gate: Option<Arc<Gate>>,
    limit: Option<usize>,
    client_ttl: Option<Duration>,
    selection: Selection,
    budget: Option<Arc<ConnectionBudget>>,
    closed: AtomicBool,
    destroyed: AtomicBool,
    next_id: AtomicU64,
    /// Requests waiting at the gate, which count as queued.
    gate_waiters: AtomicUsize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    conns: Slab<Conn>,
    /// HTTP/1 connections ready for a request, most recently idle last.
    idle: Vec<usize>,
    /// HTTP/2 connections.
    h2: Vec<usize>,
    connecting: usize,
    queue: VecDeque<Waiter>,
    running: usize,
    protocol: Option<Protocol>,
    busy: bool,
    closed: bool,
    /// `close` has completed: nothing may start any more.
    finished: bool,
    destroyed: Option<Arc<Error>>,
    close_waiters: Vec<oneshot::Sender<()>>,
    /// `preconnect` callers waiting for the connection being opened.
    connect_waiters: Vec<oneshot::Sender<Result<(), Error>>>,
    /// Why connections that a failed request took down were removed, kept
    /// until their task ends and reports the disconnect.
    failures: Vec<(u64, Error)>,
    /// Connections taken out of the pool whose sockets their tasks are
    /// still closing, with a budget: each gives its unit back when its
    /// task says the socket is gone, so `max_total_connections` counts
    /// sockets, not pool entries.
    closing: Vec<u64>,
}

struct Conn {
    id: u64,
    sender: Option<Sender>,
    h2: bool,
    streams: usize,
    /// For HTTP/2, one stream until the server's first SETTINGS says how
    /// many it takes (undici holds a new session busy until then), then
    /// the lower of its limit and ours.
    max_streams: usize,
    /// HTTP/2: the server's first SETTINGS has been read.
    settled: bool,
    served: u32,
    idle_since: Instant,
    keep_alive: Duration,
    created: Instant,
    /// Shared with the leases, which keep it for their errors: a lease
    /// moves a few times per request, and a pointer moves cheaper than
    /// two socket addresses.
    socket: Arc<SocketInfo>,
    /// Tells the connection's task to close the connection, or, when the
    /// entry is dropped without that (after an upgrade), to let it go.
    orders: Arc<Orders>,
}

impl Conn {
    fn close(&mut self) {
        self.orders.close();
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // A close given before stays the task's first order.
        self.orders.detach();
    }
}

/// Work to do once the state's lock is released.
#[derive(Default)]
#[must_use]
struct AfterUnlock {
    open: usize,
    drain: bool,
    close_done: Vec<oneshot::Sender<()>>,
    /// Permits to add to the readiness gate: the extra streams of HTTP/2.
    extra_permits: usize,
    close_gate: bool,
    /// Budget units to give back: connections gone, or never made.
    released: usize,
    /// The budget refused a connection this pool needs.
    starved: bool,
}

/// What the connection's task should do about its idle timer.
pub(crate) enum IdleCheck {
    Close,
    Recheck(Instant),
}

/// What a finished lease says about its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The exchange ended cleanly: the connection may serve another, for
    /// this long when the server gave a keep-alive hint.
    Reuse(Option<Duration>),
    /// The connection cannot be reused.
    Discard,
    /// The connection is going away (an HTTP/2 GOAWAY or refused stream):
    /// no new request may start on it; those on it finish.
    Retire,
    /// The connection was taken over by an upgrade or a CONNECT tunnel.
    Detach,
}

impl Shared {
    pub(crate) fn new(
        origin: Origin,
        options: ClientOptions,
        config: PoolConfig,
    ) -> Result<Arc<Self>, Error> {
        let connector = options.build_connector()?;
        let host_header = HeaderValue::from_str(origin.authority().as_str())
            .map_err(|_| Error::invalid_argument(format!("invalid host in {origin}")))?;
        // Beyond the gate's maximum (2^61) a cap is no cap.
        let limit = config
            .limit
            .filter(|&l| l > 0)
            .map(|l| l.min(Gate::MAX_PERMITS));
        let shared = Arc::new(Shared {
            gate: limit.map(|l| Arc::new(Gate::new(l))),
            origin,
            host_header,
            options,
            connector,
            events: EventBus::new(config.kind),
            limit,
            client_ttl: config.client_ttl,
            selection: config.selection,
            budget: config.budget,
            closed: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            gate_waiters: AtomicUsize::new(0),
            state: Mutex::new(State::default()),
        });
        if let Some(budget) = &shared.budget {
            budget.join(&shared);
        }
        Ok(shared)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// The reason the pool was destroyed, as an error for one request.
    pub(crate) fn destroyed_error(&self) -> Option<Error> {
        if !self.is_destroyed() {
            return None;
        }
        self.lock().destroyed.as_ref().map(destroyed_error)
    }

    /// A lease on a connection now, or a place in the queue.
    ///
    /// `admitted` says the request was accepted before `close`: it went
    /// through the readiness gate, or it is a retry of one already
    /// running. undici's `close` lets such requests finish; only new ones
    /// are refused.
    pub(crate) fn checkout(self: &Arc<Self>, admitted: bool) -> Result<Checkout, Error> {
        let mut after = AfterUnlock::default();
        let checkout = {
            let mut st = self.lock();
            if let Some(reason) = &st.destroyed {
                return Err(destroyed_error(reason));
            }
            if st.closed && (!admitted || st.finished) {
                return Err(Error::closed());
            }
            let now = Instant::now();
            if let Some(lease) = self.take_available(&mut st, now) {
                st.running += 1;
                // Taking the last free connection makes the pool busy.
                self.update_busy(&mut st, &mut after);
                drop(st);
                self.after_unlock(after);
                return Ok(Checkout::Ready(lease));
            }
            let (tx, rx) = oneshot::channel();
            st.queue.push_back(tx);
            self.reserve_connects(&mut st, &mut after);
            self.update_busy(&mut st, &mut after);
            Checkout::Wait(rx)
        };
        self.after_unlock(after);
        Ok(checkout)
    }

    /// The best connection available now, leased.
    fn take_available(self: &Arc<Self>, st: &mut State, now: Instant) -> Option<Lease> {
        for i in 0..st.h2.len() {
            let key = st.h2[i];
            let conn = &mut st.conns[key];
            let too_old = self.client_ttl.is_some_and(|ttl| now >= conn.created + ttl);
            if conn.streams >= conn.max_streams || too_old {
                continue;
            }
            let Some(sender) = conn.sender.as_ref().and_then(Sender::clone_h2) else {
                continue;
            };
            conn.streams += 1;
            let reused = conn.served > 0;
            conn.served = conn.served.saturating_add(1);
            return Some(Lease::new(
                self.clone(),
                key,
                conn.id,
                sender,
                reused,
                now,
                conn.socket.clone(),
            ));
        }
        while let Some(key) = self.next_idle(st) {
            let conn = &mut st.conns[key];
            let expired = now >= conn.idle_since + conn.keep_alive
                || self.client_ttl.is_some_and(|ttl| now >= conn.created + ttl);
            let sender = conn.sender.take();
            match sender {
                Some(sender) if !expired && !sender.is_closed() => {
                    let reused = conn.served > 0;
                    conn.served = conn.served.saturating_add(1);
                    return Some(Lease::new(
                        self.clone(),
                        key,
                        conn.id,
                        sender,
                        reused,
                        now,
                        conn.socket.clone(),
                    ));
                }
                _ => self.remove(st, key),
            }
        }
        None
    }

    fn next_idle(&self, st: &mut State) -> Option<usize> {
        match self.selection {
            Selection::Warmest => st.idle.pop(),
            Selection::RoundRobin if st.idle.is_empty() => None,
            Selection::RoundRobin => Some(st.idle.remove(0)),
        }
    }

    /// True when every connection is busy and no more may be opened.
    pub(crate) fn is_busy(&self) -> bool {
        self.lock().busy
    }

    /// True when the pool holds no connection and no request.
    pub(crate) fn is_idle(&self) -> bool {
        let st = self.lock();
        st.conns.is_empty()
            && st.connecting == 0
            && st.running == 0
            && st.queue.is_empty()
            && self.gate_waiters.load(Ordering::Acquire) == 0
    }

    /// Decides how many connections to open for the queue, counts them as
    /// connecting, and leaves them for `after_unlock` to start.
    fn reserve_connects(self: &Arc<Self>, st: &mut State, after: &mut AfterUnlock) {
        // A closing pool still opens connections for the requests it
        // accepted before `close`: they are in the queue.
        if st.queue.is_empty() || st.destroyed.is_some() {
            return;
        }
        let total = st.conns.len() + st.connecting;
        let room = self.limit.map_or(usize::MAX, |l| l.saturating_sub(total));
        let wanted = match st.protocol {
            // One new HTTP/2 connection serves a whole queue, and none is
            // opened while one still waits for the server's SETTINGS: it
            // may take them all.
            Some(Protocol::Http2) => {
                usize::from(st.connecting == 0 && st.h2.iter().all(|&key| st.conns[key].settled))
            }
            // The first connection is still finding out: wait for it.
            None if self.may_speak_h2() && total > 0 => 0,
            None if self.may_speak_h2() => 1,
            _ => st.queue.len().saturating_sub(st.connecting),
        };
        let mut open = wanted.min(room);
        if let Some(budget) = &self.budget {
            let granted = budget.take(open, self);
            after.starved |= granted < open;
            open = granted;
        }
        st.connecting += open;
        after.open += open;
    }

    fn may_speak_h2(&self) -> bool {
        self.options.h2c || (self.origin.is_https() && self.options.allow_h2)
    }

    /// Hands available connections to the queue, oldest waiter first.
    fn serve_queue(self: &Arc<Self>, st: &mut State) {
        if st.queue.is_empty() {
            // The usual case when a request ends: no clock to read.
            return;
        }
        let now = Instant::now();
        while let Some(waiter) = st.queue.pop_front() {
            if waiter.is_closed() {
                continue;
            }
            let Some(lease) = self.take_available(st, now) else {
                st.queue.push_front(waiter);
                break;
            };
            st.running += 1;
            if let Err(Ok(lease)) = waiter.send(Ok(lease)) {
                // The waiter went away between the check and the send.
                st.running -= 1;
                let (key, id, sender) = lease.disarm();
                self.give_back(st, key, id, sender, now);
            }
        }
    }

    /// Puts an unused lease's connection back, without counting a request.
    fn give_back(&self, st: &mut State, key: usize, id: u64, sender: Option<Sender>, now: Instant) {
        let Some(conn) = st.conns.get_mut(key).filter(|c| c.id == id) else {
            return;
        };
        conn.served = conn.served.saturating_sub(1);
        if conn.h2 {
            conn.streams = conn.streams.saturating_sub(1);
        } else if let Some(sender) = sender {
            conn.sender = Some(sender);
            conn.idle_since = now;
            st.idle.push(key);
        }
    }

    /// A lease ended: the connection goes back, or away.
    pub(crate) fn release(
        self: &Arc<Self>,
        key: usize,
        id: u64,
        sender: Option<Sender>,
        outcome: Outcome,
        failure: Option<Error>,
    ) {
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock();
            st.running = st.running.saturating_sub(1);
            if let Some(failure) = failure {
                if st.conns.get(key).is_some_and(|c| c.id == id && !c.h2) {
                    st.failures.push((id, failure));
                }
            }
            self.return_connection(&mut st, key, id, sender, outcome, &mut after);
            self.serve_queue(&mut st);
            self.reserve_connects(&mut st, &mut after);
            self.finish_close_if_done(&mut st, &mut after);
            self.update_busy(&mut st, &mut after);
        }
        self.after_unlock(after);
    }

    fn return_connection(
        self: &Arc<Self>,
        st: &mut State,
        key: usize,
        id: u64,
        sender: Option<Sender>,
        outcome: Outcome,
        after: &mut AfterUnlock,
    ) {
        let now = Instant::now();
        let Some(conn) = st.conns.get_mut(key).filter(|c| c.id == id) else {
            return;
        };
        if conn.h2 {
            conn.streams = conn.streams.saturating_sub(1);
            if conn.streams == 0 {
                conn.idle_since = now;
            }
            let idle = conn.streams == 0;
            if outcome == Outcome::Retire {
                retire_h2(st, key);
            }
            if idle && !st.h2.contains(&key) {
                self.remove(st, key);
            }
            return;
        }
        let spent = self
            .options
            .max_requests_per_client
            .is_some_and(|max| conn.served >= max)
            || self.client_ttl.is_some_and(|ttl| now >= conn.created + ttl);
        // Another pool of the budget waits for a unit and ours has no
        // request for this connection: close it rather than keep it idle.
        let wanted_elsewhere = st.queue.is_empty()
            && self
                .budget
                .as_ref()
                .is_some_and(|budget| budget.is_wanted_elsewhere(self));
        match (outcome, sender) {
            (Outcome::Reuse(hint), Some(sender))
                if !sender.is_closed() && !spent && !wanted_elsewhere =>
            {
                if let Some(keep_alive) = hint {
                    if keep_alive < conn.keep_alive {
                        conn.orders.recheck();
                    }
                    conn.keep_alive = keep_alive;
                }
                conn.sender = Some(sender);
                conn.idle_since = now;
                st.idle.push(key);
            }
            (Outcome::Detach, _) => {
                // The connection's task keeps driving the upgraded IO,
                // outside the pool and its budget.
                drop(st.conns.remove(key));
                after.released += 1;
            }
            _ => self.remove(st, key),
        }
    }

    /// Takes a connection out of the pool and tells its task to close it;
    /// its budget unit (if any) comes back once the socket is closed.
    fn remove(&self, st: &mut State, key: usize) {
        let id = take_out(st, key);
        if self.budget.is_some() {
            st.closing.push(id);
        }
    }

    /// A new connection is ready; answers its key and id, or `None` when
    /// the pool no longer wants it.
    pub(crate) fn connected(
        self: &Arc<Self>,
        sender: Sender,
        socket: SocketInfo,
        orders: Arc<Orders>,
    ) -> Option<(usize, u64)> {
        let mut after = AfterUnlock::default();
        let registered = {
            let mut st = self.lock();
            st.connecting = st.connecting.saturating_sub(1);
            if st.destroyed.is_some() || (st.closed && st.running == 0 && st.queue.is_empty()) {
                let error = st
                    .destroyed
                    .as_ref()
                    .map_or_else(Error::closed, destroyed_error);
                answer_connect_waiters(&mut st, &Err(error));
                after.released += 1;
                self.finish_close_if_done(&mut st, &mut after);
                drop(st);
                self.after_unlock(after);
                return None;
            }
            let h2 = sender.is_h2();
            let now = Instant::now();
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let key = st.conns.insert(Conn {
                id,
                sender: Some(sender),
                h2,
                streams: 0,
                max_streams: 1,
                settled: !h2,
                served: 0,
                idle_since: now,
                keep_alive: self.keep_alive_default(),
                created: now,
                socket: Arc::new(socket),
                orders,
            });
            let learned = if h2 { Protocol::Http2 } else { Protocol::Http1 };
            if st.protocol != Some(learned) {
                if let (Protocol::Http2, Some(limit)) = (learned, self.limit) {
                    // The gate was sized for one request per connection.
                    let streams = self.options.max_concurrent_streams as usize;
                    after.extra_permits = limit
                        .saturating_mul(streams.saturating_sub(1))
                        .min(Gate::MAX_PERMITS - limit);
                }
                st.protocol = Some(learned);
            }
            if h2 {
                st.h2.push(key);
            } else {
                st.idle.push(key);
            }
            answer_connect_waiters(&mut st, &Ok(()));
            self.serve_queue(&mut st);
            self.reserve_connects(&mut st, &mut after);
            self.update_busy(&mut st, &mut after);
            (key, id)
        };
        self.after_unlock(after);
        self.events.emit(EventKind::Connect, &self.origin, None);
        Some(registered)
    }

    fn keep_alive_default(&self) -> Duration {
        if self.options.pipelining == 0 {
            Duration::ZERO
        } else {
            self.options.keep_alive_timeout
        }
    }

    /// Opening a connection failed.
    pub(crate) fn connect_failed(self: &Arc<Self>, error: Error) {
        let error = Arc::new(error);
        let mut after = AfterUnlock::default();
        let failed: Vec<Waiter> = {
            let mut st = self.lock();
            st.connecting = st.connecting.saturating_sub(1);
            after.released += 1;
            answer_connect_waiters(&mut st, &Err(shared_error(&error)));
            let nothing_else = st.conns.is_empty() && st.connecting == 0;
            let failed = if nothing_else {
                st.queue.drain(..).collect()
            } else {
                st.queue.pop_front().into_iter().collect()
            };
            self.finish_close_if_done(&mut st, &mut after);
            self.update_busy(&mut st, &mut after);
            failed
        };
        for waiter in failed {
            let _ = waiter.send(Err(shared_error(&error)));
        }
        self.after_unlock(after);
        self.events
            .emit(EventKind::ConnectionError, &self.origin, Some(error));
    }

    /// A connection's task ended.
    pub(crate) fn disconnected(self: &Arc<Self>, key: usize, id: u64, error: Option<Error>) {
        let mut after = AfterUnlock::default();
        let error = {
            let mut st = self.lock();
            let recorded = st
                .failures
                .iter()
                .position(|(failed, _)| *failed == id)
                .map(|i| st.failures.swap_remove(i).1);
            // Ending under a request is the other side closing on us, as
            // undici reports it, even when hyper handed the error to the
            // request rather than to the connection.
            let in_use = st.conns.get(key).filter(|c| c.id == id).is_some_and(|c| {
                if c.h2 {
                    c.streams > 0
                } else {
                    c.sender.is_none()
                }
            });
            let recorded = recorded.or_else(|| in_use.then(|| Error::socket("other side closed")));
            // The socket is closed now: its budget unit is free.
            if st.conns.get(key).is_some_and(|c| c.id == id) {
                take_out(&mut st, key);
                after.released += 1;
            } else if let Some(at) = st.closing.iter().position(|&closing| closing == id) {
                st.closing.swap_remove(at);
                after.released += 1;
            }
            self.reserve_connects(&mut st, &mut after);
            self.update_busy(&mut st, &mut after);
            error.or(recorded)
        };
        self.after_unlock(after);
        self.events
            .emit(EventKind::Disconnect, &self.origin, error.map(Arc::new));
    }

    /// The idle timer of a connection fired: close it if it has been idle
    /// for its keep-alive time (or outlived `client_ttl`), else say when to
    /// look again.
    pub(crate) fn check_idle(&self, key: usize, id: u64) -> IdleCheck {
        let mut st = self.lock();
        let now = Instant::now();
        let Some(conn) = st.conns.get(key).filter(|c| c.id == id) else {
            return IdleCheck::Close;
        };
        let idle = if conn.h2 {
            conn.streams == 0
        } else {
            conn.sender.is_some()
        };
        let expires = conn.idle_since + conn.keep_alive;
        let ttl_over = self.client_ttl.is_some_and(|ttl| now >= conn.created + ttl);
        if idle && (now >= expires || ttl_over) {
            self.remove(&mut st, key);
            return IdleCheck::Close;
        }
        let next = if idle {
            expires
        } else {
            now + conn.keep_alive.max(Duration::from_millis(100))
        };
        IdleCheck::Recheck(next)
    }

    /// The server's frames on an HTTP/2 connection said something: its
    /// stream limit (`max_streams`, once its first SETTINGS came), or that
    /// it is going away (no new stream starts on it; its disconnect will
    /// say `UND_ERR_INFO`, as undici's does on a GOAWAY).
    pub(crate) fn h2_frames_seen(
        self: &Arc<Self>,
        key: usize,
        id: u64,
        max_streams: Option<u32>,
        goaway: bool,
    ) {
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock();
            let ours = self.options.max_concurrent_streams as usize;
            let Some(conn) = st.conns.get_mut(key).filter(|c| c.id == id) else {
                return;
            };
            if let Some(max) = max_streams {
                conn.max_streams = usize::try_from(max).unwrap_or(usize::MAX).min(ours);
                conn.settled = true;
            }
            let idle = conn.streams == 0;
            let conn_socket = *conn.socket;
            if goaway && st.h2.contains(&key) {
                retire_h2(&mut st, key);
                st.failures
                    .push((id, errors::goaway().with_socket(conn_socket)));
                if idle {
                    self.remove(&mut st, key);
                }
            }
            self.serve_queue(&mut st);
            self.reserve_connects(&mut st, &mut after);
            self.update_busy(&mut st, &mut after);
        }
        self.after_unlock(after);
    }

    /// Counts a request waiting at the readiness gate (or holding the
    /// permit it waited for, until it is called). `close` waits for them
    /// as for the queue.
    pub(crate) fn count_gate_waiter(self: &Arc<Self>, waiting: bool) {
        if waiting {
            self.gate_waiters.fetch_add(1, Ordering::AcqRel);
            return;
        }
        self.gate_waiters.fetch_sub(1, Ordering::AcqRel);
        if self.is_closed() {
            let mut after = AfterUnlock::default();
            self.finish_close_if_done(&mut self.lock(), &mut after);
            self.after_unlock(after);
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        let st = self.lock();
        let free_h2 = st
            .h2
            .iter()
            .filter(|&&key| st.conns[key].streams < st.conns[key].max_streams)
            .count();
        Counts {
            connected: st.conns.len(),
            free: st.idle.len() + free_h2,
            queued: st.queue.len() + self.gate_waiters.load(Ordering::Relaxed),
            running: st.running,
        }
    }

    /// Refuses new requests; the answer resolves once the queue and the
    /// running requests are done and the connections closed.
    pub(crate) fn close(self: &Arc<Self>) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock();
            st.closed = true;
            self.closed.store(true, Ordering::Release);
            st.close_waiters.push(tx);
            self.finish_close_if_done(&mut st, &mut after);
        }
        self.after_unlock(after);
        rx
    }

    fn finish_close_if_done(&self, st: &mut State, after: &mut AfterUnlock) {
        if !st.closed
            || st.running > 0
            || !st.queue.is_empty()
            || st.connecting > 0
            || self.gate_waiters.load(Ordering::Acquire) > 0
        {
            return;
        }
        st.finished = true;
        let keys: Vec<usize> = st.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.remove(st, key);
        }
        after.close_done.append(&mut st.close_waiters);
    }

    /// Aborts everything with `reason`.
    pub(crate) fn destroy(self: &Arc<Self>, reason: Option<Error>) {
        let reason = Arc::new(reason.unwrap_or_else(Error::destroyed));
        let mut after = AfterUnlock::default();
        let failed: Vec<Waiter> = {
            let mut st = self.lock();
            if st.destroyed.is_some() {
                return;
            }
            st.destroyed = Some(reason.clone());
            st.closed = true;
            self.destroyed.store(true, Ordering::Release);
            self.closed.store(true, Ordering::Release);
            let keys: Vec<usize> = st.conns.iter().map(|(key, _)| key).collect();
            for key in keys {
                self.remove(&mut st, key);
            }
            after.close_done.append(&mut st.close_waiters);
            answer_connect_waiters(&mut st, &Err(destroyed_error(&reason)));
            st.queue.drain(..).collect()
        };
        for waiter in failed {
            let _ = waiter.send(Err(destroyed_error(&reason)));
        }
        after.close_gate = true;
        self.after_unlock(after);
    }

    /// Tracks undici's busy flag: busy when no request could start now
    /// and no connection may be opened. Leaving busy is a `drain`.
    fn update_busy(&self, st: &mut State, after: &mut AfterUnlock) {
        let total = st.conns.len() + st.connecting;
        let room = self.limit.is_none_or(|l| total < l);
        let free_h2 = st
            .h2
            .iter()
            .any(|&key| st.conns[key].streams < st.conns[key].max_streams);
        let busy = !st.queue.is_empty() || !(room || !st.idle.is_empty() || free_h2);
        if st.busy && !busy {
            after.drain = true;
        }
        st.busy = busy;
    }

    fn after_unlock(self: &Arc<Self>, after: AfterUnlock) {
        // Twice per request, nearly always with nothing but a drain.
        if !after.close_done.is_empty() {
            for done in after.close_done {
                let _ = done.send(());
            }
        }
        if after.drain {
            self.events.emit(EventKind::Drain, &self.origin, None);
        }
        if let Some(gate) = &self.gate {
            if after.extra_permits > 0 {
                gate.add_permits(after.extra_permits);
            }
            if after.close_gate {
                gate.close();
            }
        }
        for _ in 0..after.open {
            open::spawn(self.clone());
        }
        if let Some(budget) = &self.budget {
            if after.released > 0 {
                for pool in budget.give_back(after.released) {
                    pool.budget_freed();
                }
            }
            if after.starved {
                // Another pool's idle connection is worth less than our
                // waiting request: ask for one.
                for other in budget.others(self) {
                    if other.close_one_idle() {
                        break;
                    }
                }
            }
        }
    }

    /// The budget has room again: open what the queue still needs.
    fn budget_freed(self: &Arc<Self>) {
        let mut after = AfterUnlock::default();
        {
            let mut st = self.lock();
            self.reserve_connects(&mut st, &mut after);
            self.update_busy(&mut st, &mut after);
        }
        self.after_unlock(after);
    }

    /// Closes the connection idle the longest, if there is one, to give its
    /// budget unit to another pool.
    fn close_one_idle(&self) -> bool {
        let mut st = self.lock();
        match st.idle.first().copied() {
            Some(key) => {
                self.remove(&mut st, key);
                true
            }
            None => false,
        }
    }
}

/// Takes connection `key` out of the pool's lists and tells its task to
/// close it; answers its id.
fn take_out(st: &mut State, key: usize) -> u64 {
    st.idle.retain(|&k| k != key);
    st.h2.retain(|&k| k != key);
    let mut conn = st.conns.remove(key);
    conn.close();
    conn.id
}

impl Drop for Shared {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (_, conn) in st.conns.iter_mut() {
            conn.close();
        }
        if let Some(budget) = &self.budget {
            // Tasks still closing sockets cannot report to a pool that is
            // gone: their units come back with the rest.
            for pool in budget.give_back(st.conns.len() + st.closing.len()) {
                pool.budget_freed();
            }
        }
    }
}

/// A lease now, or a place in the queue.
pub(crate) enum Checkout {
    Ready(Lease),
    Wait(oneshot::Receiver<Result<Lease, Error>>),
}

/// One request's copy of the error a pool was destroyed with.
fn destroyed_error(reason: &Arc<Error>) -> Error {
    shared_error(reason)
}

/// One waiter's copy of an error many share.
pub(crate) fn shared_error(error: &Arc<Error>) -> Error {
    Error::clone(error)
}

impl Shared {
    /// Opens a connection ahead of the first request, unless one is open.
    /// The answer is `None` when one is open already, else a receiver that
    /// says when the connection (this one, or one already opening) is
    /// open or why it could not be.
    pub(crate) fn preconnect(
        self: &Arc<Self>,
    ) -> Result<Option<oneshot::Receiver<Result<(), Error>>>, Error> {
        {
            let mut st = self.lock();
            if let Some(reason) = &st.destroyed {
                return Err(destroyed_error(reason));
            }
            if st.closed {
                return Err(Error::closed());
            }
            if !st.conns.is_empty() {
                return Ok(None);
            }
            let (tx, rx) = oneshot::channel();
            st.connect_waiters.push(tx);
            if st.connecting > 0 {
                return Ok(Some(rx));
            }
            if let Some(budget) = &self.budget {
                if budget.take(1, self) == 0 {
                    st.connect_waiters.clear();
                    return Err(Error::new(
                        ErrorKind::Connect,
                        "max_total_connections reached: no connection may be opened now",
                    ));
                }
            }
            st.connecting += 1;
            drop(st);
            open::spawn(self.clone());
            Ok(Some(rx))
        }
    }
}

/// Takes an HTTP/2 connection out of the ones new requests may use; it
/// stays in the pool until its streams end.
fn retire_h2(st: &mut State, key: usize) {
    st.h2.retain(|&k| k != key);
}

/// Tells the `preconnect` callers how opening went.
fn answer_connect_waiters(st: &mut State, result: &Result<(), Error>) {
    for waiter in st.connect_waiters.drain(..) {
        let _ = waiter.send(result.clone());
    }
}
