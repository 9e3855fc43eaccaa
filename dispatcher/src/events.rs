//! Events: undici's `connect`, `disconnect`, `connectionError` and `drain`.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::Error;
use crate::origin::Origin;
use crate::sync::lock;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A connection to the origin was established.
    Connect,
    /// A connection closed; the event carries the error, if any.
    Disconnect,
    /// Connecting to the origin failed; the event carries the error.
    ConnectionError,
    /// The dispatcher is no longer busy: requests made now proceed.
    Drain,
}

/// A dispatcher an event passed through, innermost last.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Target {
    kind: &'static str,
    id: u64,
}

impl Target {
    pub(crate) fn new(kind: &'static str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Target {
            kind,
            id: NEXT.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The dispatcher type: `"Client"`, `"Pool"`, `"Agent"`...
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// A number unique to this dispatcher within the process.
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.kind, self.id)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.kind, self.id)
    }
}

/// One event, as undici's `(origin, targets[, error])` arguments.
#[derive(Clone, Debug)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The origin it happened for.
    pub origin: Origin,
    /// The dispatchers it passed through: the outermost first (an Agent,
    /// then its Pool), as undici's `[agent, ...targets]`.
    pub targets: Vec<Target>,
    /// The error, for `disconnect` (when there was one) and
    /// `connectionError`.
    pub error: Option<Arc<Error>>,
}

/// A subscription to a dispatcher's events, from `events()`.
///
/// A `Stream` of [`Event`]s. Events are kept in a bounded buffer; a
/// subscriber that falls far behind skips the oldest ones.
pub struct Events {
    stream: BroadcastStream<Event>,
    /// The relays of the bus this came from, and this subscription's
    /// place among them once it is one.
    relays: Weak<Relays>,
    relay: Option<u64>,
    /// The count of its bus's subscriptions, this one among them.
    subscribers: Arc<AtomicUsize>,
}

impl Events {
    /// The next event; `None` once the dispatcher is gone.
    pub async fn recv(&mut self) -> Option<Event> {
        self.next().await
    }

    /// The next event of `kind`.
    pub async fn next_of(&mut self, kind: EventKind) -> Option<Event> {
        loop {
            let event = self.recv().await?;
            if event.kind == kind {
                return Some(event);
            }
        }
    }

    /// An event already waiting, without waiting for one.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.recv().now_or_never().flatten()
    }

    /// Marks this subscription as the one through which `parent` (an Agent,
    /// a BalancedPool) re-emits the events: it then needs `drain` events
    /// only while someone listens to `parent`.
    pub(crate) fn relay_to(&mut self, parent: &EventBus) {
        let Some(relays) = self.relays.upgrade() else {
            return;
        };
        let id = relays.next.fetch_add(1, Ordering::Relaxed);
        lock(&relays.parents).push((id, parent.subscribers.clone()));
        self.relay = Some(id);
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.subscribers.fetch_sub(1, Ordering::AcqRel);
        if let (Some(id), Some(relays)) = (self.relay, self.relays.upgrade()) {
            lock(&relays.parents).retain(|(relay, _)| *relay != id);
        }
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Stream for Events {
    type Item = Event;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Event>> {
        loop {
            match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
                Some(Ok(event)) => return Poll::Ready(Some(event)),
                // A slow subscriber skips what it missed.
                Some(Err(_lagged)) => continue,
                None => return Poll::Ready(None),
            }
        }
    }
}

/// Where a dispatcher sends its events.
#[derive(Clone)]
pub(crate) struct EventBus {
    tx: broadcast::Sender<Event>,
    target: Target,
    relays: Arc<Relays>,
    /// Live subscriptions: what the channel's `receiver_count` says,
    /// without the lock it takes (an event is considered per response).
    subscribers: Arc<AtomicUsize>,
}

/// The subscriptions of a bus that re-emit its events on another
/// dispatcher's bus, with that bus.
///
/// A pool at its connection limit leaves `busy` with nearly every
/// response, so `drain` is its most frequent event; an Agent re-emits
/// its pools' events but needs only their ends itself, so a `drain`
/// that nobody would hear is not sent (and the relay is not woken).
#[derive(Default)]
struct Relays {
    next: AtomicU64,
    /// Each relay's id, and the subscriber count of its parent's bus.
    parents: Mutex<Vec<(u64, Arc<AtomicUsize>)>>,
}

impl EventBus {
    pub(crate) fn new(kind: &'static str) -> Self {
        let (tx, _) = broadcast::channel(256);
        EventBus {
            tx,
            target: Target::new(kind),
            relays: Arc::default(),
            subscribers: Arc::default(),
        }
    }

    pub(crate) fn subscribe(&self) -> Events {
        self.subscribers.fetch_add(1, Ordering::AcqRel);
        Events {
            stream: BroadcastStream::new(self.tx.subscribe()),
            relays: Arc::downgrade(&self.relays),
            relay: None,
            subscribers: self.subscribers.clone(),
        }
    }

    /// Whether a `drain` would reach anyone: a subscriber that is not a
    /// relay, or one on the bus of a relay's dispatcher.
    fn drain_heard(&self, receivers: usize) -> bool {
        let parents = lock(&self.relays.parents);
        receivers > parents.len()
            || parents
                .iter()
                .any(|(_, parent)| parent.load(Ordering::Acquire) > 0)
    }

    /// Emits an event that starts here. Inline, as a pool at its limit
    /// considers a `drain` with nearly every response, which usually
    /// nobody hears: the check costs no call.
    #[inline]
    pub(crate) fn emit(&self, kind: EventKind, origin: &Origin, error: Option<Arc<Error>>) {
        let receivers = self.subscribers.load(Ordering::Acquire);
        if receivers > 0 {
            self.send(kind, origin, error, receivers);
        }
    }

    fn send(&self, kind: EventKind, origin: &Origin, error: Option<Arc<Error>>, receivers: usize) {
        if kind == EventKind::Drain && !self.drain_heard(receivers) {
            return;
        }
        let _ = self.tx.send(Event {
            kind,
            origin: origin.clone(),
            targets: vec![self.target],
            error,
        });
    }

    /// Re-emits an event of an inner dispatcher with this one in front.
    pub(crate) fn forward(&self, mut event: Event) {
        if self.subscribers.load(Ordering::Acquire) == 0 {
            return;
        }
        event.targets.insert(0, self.target);
        let _ = self.tx.send(event);
    }
}

impl fmt::Debug for EventBus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventBus")
            .field("target", &self.target)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(events: &mut Events) -> Option<EventKind> {
        events.try_recv().map(|event| event.kind)
    }

    #[tokio::test]
    async fn a_drain_that_only_a_relay_would_hear_is_not_sent() {
        let pool = EventBus::new("Pool");
        let agent = EventBus::new("Agent");
        let origin: Origin = "http://a.test".parse().unwrap();
        let mut relay = pool.subscribe();
        relay.relay_to(&agent);

        pool.emit(EventKind::Drain, &origin, None);
        pool.emit(EventKind::Connect, &origin, None);
        assert_eq!(kind(&mut relay), Some(EventKind::Connect));
        assert_eq!(kind(&mut relay), None);

        // Someone listens to the agent: its relay gets the drain.
        let listener = agent.subscribe();
        pool.emit(EventKind::Drain, &origin, None);
        assert_eq!(kind(&mut relay), Some(EventKind::Drain));
        drop(listener);

        // A subscriber of the pool itself hears it, relay or not.
        let mut direct = pool.subscribe();
        pool.emit(EventKind::Drain, &origin, None);
        assert_eq!(kind(&mut direct), Some(EventKind::Drain));
        drop(relay);
        pool.emit(EventKind::Drain, &origin, None);
        assert_eq!(kind(&mut direct), Some(EventKind::Drain));
    }
}
