//! Opening a connection and driving it: one task per connection, never one
//! per request.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use undici_connectors::Connection;

use crate::error::{Error, SocketInfo};
use crate::Body;

use super::errors::{self, Phase};
use super::executor::BoxingExecutor;
use super::h2_frames::H2Signals;
use super::h2_io::{H2Io, KillSwitch};
use super::head_deadline::{Due, HeadDeadline};
use super::lease::Sender;
use super::orders::{Order, Orders};
use super::pool::{IdleCheck, Shared};
use super::stream_deadlines::{StreamDeadlines, TICK};

/// Starts opening a connection for the pool, on the current tokio runtime.
///
/// Two tasks in turn: one connects and handshakes, then hands the
/// connection to a task of its own that drives it for its lifetime, so
/// what a connection keeps is sized for driving it, not for the connect
/// and handshake futures (a task is as big as its largest state).
pub(crate) fn spawn(shared: Arc<Shared>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(open(shared));
        }
        Err(_) => shared.connect_failed(Error::invalid_argument(
            "no tokio runtime: undici's dispatchers open connections on the current tokio runtime",
        )),
    }
}

async fn open(shared: Arc<Shared>) {
    let destination = shared.origin.destination();
    let connection = match shared.connector.clone().oneshot(destination).await {
        Ok(connection) => connection,
        Err(err) => return shared.connect_failed(err.into()),
    };
    let info = connection.info();
    let socket = SocketInfo {
        local: info.local_addr(),
        remote: info.remote_addr(),
    };
    let h2 = if shared.origin.is_https() {
        info.is_negotiated_h2()
    } else {
        shared.options.h2c
    };
    if h2 {
        handshake_h2(shared, connection, socket).await
    } else {
        handshake_h1(shared, connection, socket).await
    }
}

async fn handshake_h1(shared: Arc<Shared>, connection: Connection, socket: SocketInfo) {
    let mut builder = http1::Builder::new();
    builder.max_header_size(shared.options.max_header_size);
    match builder.handshake::<_, Body>(TokioIo::new(connection)).await {
        Ok((sender, conn)) => {
            let conn = conn.with_upgrades();
            let head = Arc::new(HeadDeadline::new());
            let sender = Sender::H1(sender, head.clone());
            let conn = Box::pin(conn);
            let orders = Arc::default();
            tokio::spawn(drive(
                shared,
                sender,
                conn,
                socket,
                orders,
                Watch::Http1(head),
            ));
        }
        Err(err) => shared.connect_failed(errors::from_hyper(err, Phase::Connection, socket)),
    }
}

async fn handshake_h2(shared: Arc<Shared>, connection: Connection, socket: SocketInfo) {
    let options = &shared.options;
    let mut builder = http2::Builder::new(BoxingExecutor);
    // One stream until the server's SETTINGS say how many it takes, as
    // undici holds a new session busy until then: streams opened beyond
    // the server's limit would be refused.
    builder
        .timer(TokioTimer::new())
        .initial_max_send_streams(1)
        .initial_stream_window_size(options.initial_window_size)
        .initial_connection_window_size(options.connection_window_size)
        .max_header_list_size(u32::try_from(options.max_header_size).unwrap_or(u32::MAX))
        .keep_alive_interval(options.ping_interval)
        .keep_alive_while_idle(true);
    let orders = Arc::new(Orders::default());
    let control = H2Control::new(orders.clone());
    let io = H2Io::new(connection, control.switch.clone(), control.signals.clone());
    match builder.handshake::<_, Body>(TokioIo::new(io)).await {
        Ok((sender, conn)) => {
            let conn = Box::pin(conn);
            tokio::spawn(drive(
                shared,
                Sender::H2(sender, control.deadlines.clone()),
                conn,
                socket,
                orders,
                Watch::Http2(control),
            ));
        }
        Err(err) => shared.connect_failed(errors::from_hyper(err, Phase::Connection, socket)),
    }
}

/// Registers the connection with the pool, then drives it until it ends,
/// the pool closes it, it has been idle for its keep-alive time, or the
/// head of its HTTP/1 request is late.
///
/// The task holds the pool weakly: once every handle and every request is
/// gone, the pool is dropped and its connections close with it.
///
/// `conn` comes boxed so that it can be dropped (closing the socket)
/// before the disconnect event goes out.
async fn drive<C>(
    shared: Arc<Shared>,
    sender: Sender,
    mut conn: Pin<Box<C>>,
    socket: SocketInfo,
    orders: Arc<Orders>,
    watch: Watch,
) where
    C: Future<Output = hyper::Result<()>>,
{
    let Some((key, id)) = shared.connected(sender, socket, orders.clone()) else {
        return;
    };
    let first_check = Instant::now() + shared.options.keep_alive_timeout;
    let pool: Weak<Shared> = Arc::downgrade(&shared);
    drop(shared);

    let mut timer = ConnectionTimer::new(first_check);
    let mut pooled = true;
    let ended = loop {
        let event = poll_fn(|cx| {
            // hyper's connection first: it is what wakes the task nearly
            // every time, and the rest is looked at only while pooled.
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                return Poll::Ready(Event::Ended(result.err()));
            }
            if !pooled {
                return Poll::Pending;
            }
            if let Poll::Ready(order) = orders.poll(cx) {
                return Poll::Ready(Event::Order(order));
            }
            // A request hands itself to hyper after writing its deadline,
            // so the wake-up that brings it shows it here.
            if let Watch::Http1(head) = &watch {
                timer.watch_head(head.due());
            }
            timer.poll(cx).map(|()| Event::Timer)
        })
        .await;
        match event {
            Event::Ended(error) => break Ended::Connection(error),
            Event::Order(Order::Close) => {
                if let Watch::Http2(h2) = &watch {
                    h2.switch.kill();
                }
                break Ended::Closed;
            }
            // The pool let the connection go: an upgrade took it over and
            // this task now just carries the tunnel to its end.
            Event::Order(Order::Detach) if pool.strong_count() == 0 => break Ended::Closed,
            Event::Order(Order::Detach) => pooled = false,
            Event::Order(Order::Recheck) => {
                timer.set_idle_check(Instant::now());
                timer.rearm();
            }
            Event::Order(Order::Sweep) => {
                timer.start_sweeps(Instant::now() + TICK);
                timer.rearm();
            }
            Event::Order(Order::FramesSeen) => {
                let (Some(shared), Watch::Http2(h2)) = (pool.upgrade(), &watch) else {
                    break Ended::Closed;
                };
                shared.h2_frames_seen(key, id, h2.signals.max_streams(), h2.signals.goaway());
            }
            Event::Timer => {
                let now = Instant::now();
                match &watch {
                    Watch::Http1(head) => {
                        let late = head.due().filter(|due| due.at <= now);
                        if late.is_some_and(|due| head.expire(due)) {
                            break Ended::HeadersTimeout;
                        }
                        timer.watch_head(head.due());
                    }
                    Watch::Http2(h2) if timer.sweep_due(now) => {
                        let again = h2.deadlines.sweep(now).then(|| now + TICK);
                        timer.set_sweep(again);
                    }
                    Watch::Http2(_) => {}
                }
                if timer.idle_check_due(now) {
                    let Some(shared) = pool.upgrade() else {
                        break Ended::Closed;
                    };
                    match shared.check_idle(key, id) {
                        IdleCheck::Close => break Ended::Closed,
                        IdleCheck::Recheck(at) => timer.set_idle_check(at),
                    }
                }
                timer.rearm();
            }
        }
    };
    // Closing: dropping hyper's connection closes the socket (and fails
    // the request in flight, if any).
    drop(conn);
    if let Some(shared) = pool.upgrade() {
        let error = match ended {
            Ended::Connection(Some(err)) => {
                Some(errors::from_hyper(err, Phase::Connection, socket))
            }
            Ended::HeadersTimeout => Some(errors::headers_timeout().with_socket(socket)),
            // A graceful end after a GOAWAY is still the server's doing.
            Ended::Connection(None) | Ended::Closed => match &watch {
                Watch::Http2(h2) if h2.signals.goaway() => {
                    Some(errors::goaway().with_socket(socket))
                }
                _ => None,
            },
        };
        shared.disconnected(key, id, error);
    }
}

/// What a connection's task watches besides hyper and the pool's orders.
enum Watch {
    /// The deadline of the head of the request in flight.
    Http1(Arc<HeadDeadline>),
    /// What the server's frames say.
    Http2(H2Control),
}

/// Why the connection's task woke up, besides hyper's own work.
enum Event {
    Ended(Option<hyper::Error>),
    Order(Order),
    Timer,
}

/// Why the connection's task ended.
enum Ended {
    /// hyper's connection ended, with its error if it failed.
    Connection(Option<hyper::Error>),
    /// The pool closed it, or let it go and is gone.
    Closed,
    /// The head of the request in flight did not come in time.
    HeadersTimeout,
}

/// The one timer of a connection's task, at the earliest of its
/// keep-alive check, (HTTP/1) the deadline of the head in flight and
/// (HTTP/2) the next sweep of its streams' deadlines.
///
/// A `Sleep` wakes the task that last polled it, so once polled after a
/// reset it is polled again only when it says it has fired: the task
/// wakes twice per request for hyper, and a timer due in seconds has
/// nothing to say on those wake-ups.
struct ConnectionTimer {
    sleep: Pin<Box<Sleep>>,
    registered: bool,
    idle_check: Instant,
    head: Option<Due>,
    sweep: Option<Instant>,
}

impl ConnectionTimer {
    fn new(idle_check: Instant) -> Self {
        ConnectionTimer {
            sleep: Box::pin(tokio::time::sleep_until(idle_check)),
            registered: false,
            idle_check,
            head: None,
            sweep: None,
        }
    }

    /// Follows the deadline of the head in flight; the timer moves only
    /// when that is earlier than where it is set (firing early just means
    /// looking again).
    fn watch_head(&mut self, due: Option<Due>) {
        if due == self.head {
            return;
        }
        self.head = due;
        if let Some(due) = due {
            if due.at < self.sleep.deadline() {
                self.reset(due.at);
            }
        }
    }

    fn set_idle_check(&mut self, at: Instant) {
        self.idle_check = at;
    }

    fn idle_check_due(&self, now: Instant) -> bool {
        now >= self.idle_check
    }

    /// The first sweep, unless one is set already.
    fn start_sweeps(&mut self, at: Instant) {
        self.sweep.get_or_insert(at);
    }

    fn set_sweep(&mut self, at: Option<Instant>) {
        self.sweep = at;
    }

    fn sweep_due(&self, now: Instant) -> bool {
        self.sweep.is_some_and(|at| now >= at)
    }

    /// Sets the timer at the earlier deadline.
    fn rearm(&mut self) {
        let at = [self.head.map(|due| due.at), self.sweep]
            .into_iter()
            .flatten()
            .fold(self.idle_check, Instant::min);
        self.reset(at);
    }

    fn reset(&mut self, at: Instant) {
        self.sleep.as_mut().reset(at);
        self.registered = false;
    }

    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.registered && !self.sleep.is_elapsed() {
            return Poll::Pending;
        }
        let fired = self.sleep.as_mut().poll(cx);
        // Fired, it stays elapsed until the next reset, and is polled each
        // time until then.
        self.registered = fired.is_pending();
        fired
    }
}

/// What the pool holds of an HTTP/2 connection besides hyper's handle:
/// the switch that fails its IO (hyper's HTTP/2 task outlives `conn`
/// while streams are open, so dropping `conn` alone would not end them),
/// and what the server's frames said.
struct H2Control {
    switch: Arc<KillSwitch>,
    signals: Arc<H2Signals>,
    deadlines: Arc<StreamDeadlines>,
}

impl H2Control {
    /// What the frames said and the streams' deadlines tell the task
    /// through its `orders`.
    fn new(orders: Arc<Orders>) -> Self {
        H2Control {
            switch: Arc::default(),
            signals: Arc::new(H2Signals::new(orders.clone())),
            deadlines: Arc::new(StreamDeadlines::new(orders)),
        }
    }
}
