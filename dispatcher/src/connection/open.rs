//! Opening a connection and driving it: one task per connection, never one
//! per request.

use std::future::{poll_fn, Future};
use std::sync::{Arc, Weak};

use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::sync::oneshot;
use tokio::time::Instant;
use tower::ServiceExt;
use undici_connectors::Connection;

use crate::error::{Error, SocketInfo};
use crate::Body;

use super::errors::{self, Phase};
use super::h2_frames::H2Signals;
use super::h2_io::{H2Io, KillSwitch};
use super::lease::Sender;
use super::pool::{IdleCheck, Recheck, Shared};

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
    let (close_tx, mut close) = oneshot::channel();
    let recheck = Arc::new(Recheck::default());
    let Some((key, id)) = shared.connected(sender, socket, close_tx, recheck.clone()) else {
        return;
    };
    let first_check = Instant::now() + shared.options.keep_alive_timeout;
    let pool: Weak<Shared> = Arc::downgrade(&shared);
    drop(shared);

    // Boxed so that it can be dropped (closing the socket) before the
    // disconnect event goes out.
    let mut conn = Box::pin(conn);
    let idle = tokio::time::sleep_until(first_check);
    tokio::pin!(idle);
    let mut pooled = true;
    let ended: Option<hyper::Error> = loop {
        tokio::select! {
            result = &mut conn => break result.err(),
            signal = &mut close, if pooled => match signal {
                Ok(()) => {
                    if let Some(h2) = &h2 {
                        h2.switch.kill();
                    }
                    break None;
                }
                // The close signal was dropped unsent: either the pool is
                // gone, or an upgrade took the connection over and this
                // task now just carries the tunnel to its end.
                Err(_) if pool.strong_count() == 0 => break None,
                Err(_) => pooled = false,
            },
            () = frames_changed(h2.as_ref()), if pooled => {
                let (Some(shared), Some(h2)) = (pool.upgrade(), &h2) else { break None };
                shared.h2_frames_seen(key, id, h2.signals.max_streams(), h2.signals.goaway());
            }
            () = poll_fn(|cx| recheck.poll(cx)), if pooled => {
                idle.as_mut().reset(Instant::now());
            }
            () = &mut idle, if pooled => {
                let Some(shared) = pool.upgrade() else { break None };
                match shared.check_idle(key, id) {
                    IdleCheck::Close => break None,
                    IdleCheck::Recheck(at) => idle.as_mut().reset(at),
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

/// What the pool holds of an HTTP/2 connection besides hyper's handle:
/// the switch that fails its IO (hyper's HTTP/2 task outlives `conn`
/// while streams are open, so dropping `conn` alone would not end them),
/// and what the server's frames said.
#[derive(Default)]
struct H2Control {
    switch: Arc<KillSwitch>,
    signals: Arc<H2Signals>,
}

/// Resolves when the server's SETTINGS or GOAWAY said something new;
/// never for HTTP/1.
async fn frames_changed(h2: Option<&H2Control>) {
    match h2 {
        Some(h2) => h2.signals.changed().await,
        None => std::future::pending().await,
    }
}
