//! Opening a connection and driving it: one task per connection, never one
//! per request.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;
use undici_connectors::Connection;

use crate::error::{Error, SocketInfo};
use crate::Body;

use super::errors::{self, Phase};
use super::h2_frames::H2Signals;
use super::h2_io::{H2Io, KillSwitch};
use super::lease::Sender;
use super::orders::{Order, Orders};
use super::pool::{IdleCheck, Shared};

/// Starts opening a connection for the pool, on the current tokio runtime.
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
            drive(shared, Sender::H1(sender), conn, socket, None).await
        }
        Err(err) => shared.connect_failed(errors::from_hyper(err, Phase::Connection, socket)),
    }
}

async fn handshake_h2(shared: Arc<Shared>, connection: Connection, socket: SocketInfo) {
    let options = &shared.options;
    let mut builder = http2::Builder::new(TokioExecutor::new());
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
    let control = H2Control::default();
    let io = H2Io::new(connection, control.switch.clone(), control.signals.clone());
    match builder.handshake::<_, Body>(TokioIo::new(io)).await {
        Ok((sender, conn)) => drive(shared, Sender::H2(sender), conn, socket, Some(control)).await,
        Err(err) => shared.connect_failed(errors::from_hyper(err, Phase::Connection, socket)),
    }
}

/// Registers the connection with the pool, then drives it until it ends,
/// the pool closes it, or it has been idle for its keep-alive time.
///
/// The task holds the pool weakly: once every handle and every request is
/// gone, the pool is dropped and its connections close with it. An
/// HTTP/2 connection comes with its [`H2Control`].
async fn drive<C>(
    shared: Arc<Shared>,
    sender: Sender,
    conn: C,
    socket: SocketInfo,
    h2: Option<H2Control>,
) where
    C: Future<Output = hyper::Result<()>>,
{
    let orders = Arc::new(Orders::default());
    let Some((key, id)) = shared.connected(sender, socket, orders.clone()) else {
        return;
    };
    let first_check = Instant::now() + shared.options.keep_alive_timeout;
    let pool: Weak<Shared> = Arc::downgrade(&shared);
    drop(shared);

    // Boxed so that it can be dropped (closing the socket) before the
    // disconnect event goes out.
    let mut conn = Box::pin(conn);
    let mut idle = IdleTimer::new(first_check);
    let mut pooled = true;
    let ended: Option<hyper::Error> = loop {
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
            if let Some(h2) = &h2 {
                if h2.signals.poll_changed(cx).is_ready() {
                    return Poll::Ready(Event::FramesChanged);
                }
            }
            idle.poll(cx).map(|()| Event::IdleCheck)
        })
        .await;
        match event {
            Event::Ended(error) => break error,
            Event::Order(Order::Close) => {
                if let Some(h2) = &h2 {
                    h2.switch.kill();
                }
                break None;
            }
            // The pool let the connection go: an upgrade took it over and
            // this task now just carries the tunnel to its end.
            Event::Order(Order::Detach) if pool.strong_count() == 0 => break None,
            Event::Order(Order::Detach) => pooled = false,
            Event::Order(Order::Recheck) => idle.reset(Instant::now()),
            Event::FramesChanged => {
                let (Some(shared), Some(h2)) = (pool.upgrade(), &h2) else {
                    break None;
                };
                shared.h2_frames_seen(key, id, h2.signals.max_streams(), h2.signals.goaway());
            }
            Event::IdleCheck => {
                let Some(shared) = pool.upgrade() else {
                    break None;
                };
                match shared.check_idle(key, id) {
                    IdleCheck::Close => break None,
                    IdleCheck::Recheck(at) => idle.reset(at),
                }
            }
        }
    };
    // Closing: dropping hyper's connection closes the socket.
    drop(conn);
    if let Some(shared) = pool.upgrade() {
        let error = match ended {
            Some(err) => Some(errors::from_hyper(err, Phase::Connection, socket)),
            // A graceful end after a GOAWAY is still the server's doing.
            None => h2
                .filter(|h2| h2.signals.goaway())
                .map(|_| errors::goaway().with_socket(socket)),
        };
        shared.disconnected(key, id, error);
    }
}

/// Why the connection's task woke up, besides hyper's own work.
enum Event {
    Ended(Option<hyper::Error>),
    Order(Order),
    FramesChanged,
    IdleCheck,
}

/// The keep-alive timer of a connection's task.
///
/// A `Sleep` wakes the task that last polled it, so once polled after a
/// reset it is polled again only when it says it has fired: the task
/// wakes twice per request for hyper, and a timer due in seconds has
/// nothing to say on those wake-ups.
struct IdleTimer {
    sleep: Pin<Box<Sleep>>,
    registered: bool,
}

impl IdleTimer {
    fn new(at: Instant) -> Self {
        IdleTimer {
            sleep: Box::pin(tokio::time::sleep_until(at)),
            registered: false,
        }
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
#[derive(Default)]
struct H2Control {
    switch: Arc<KillSwitch>,
    signals: Arc<H2Signals>,
}
