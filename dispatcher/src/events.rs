//! Events: undici's `connect`, `disconnect`, `connectionError` and `drain`.

use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use futures_util::{FutureExt, Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;

use crate::error::Error;
use crate::origin::Origin;

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
}

impl EventBus {
    pub(crate) fn new(kind: &'static str) -> Self {
        let (tx, _) = broadcast::channel(256);
        EventBus {
            tx,
            target: Target::new(kind),
        }
    }

    pub(crate) fn subscribe(&self) -> Events {
        Events {
            stream: BroadcastStream::new(self.tx.subscribe()),
        }
    }

    /// Emits an event that starts here.
    pub(crate) fn emit(&self, kind: EventKind, origin: &Origin, error: Option<Arc<Error>>) {
        if self.tx.receiver_count() == 0 {
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
        if self.tx.receiver_count() == 0 {
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
