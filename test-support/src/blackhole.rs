//! [`unresponsive_listener`]: a loopback address where TCP connects hang,
//! for connect-timeout tests, without touching the network.
//!
//! How: a listening socket with a backlog of 0 that never accepts. Linux
//! queues one completed connection for it (the accept queue holds
//! `backlog + 1`), and once that queue is full it silently drops further
//! SYNs, so a new `connect` neither succeeds nor fails: the client's own
//! timeout fires. The queue is filled when the listener is created by
//! connecting to it until a connect attempt times out (that attempt costs
//! [`PROBE_TIMEOUT`]).
//!
//! This relies on Linux accept-queue semantics (verified by this module's
//! tests). Other systems may answer with a RST instead, which makes the
//! connect fail fast rather than hang.
//!
//! ```
//! use std::time::Duration;
//! use undici_test_support::unresponsive_listener;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (addr, _guard) = unresponsive_listener();
//! let attempt = tokio::net::TcpStream::connect(addr);
//! assert!(tokio::time::timeout(Duration::from_millis(100), attempt).await.is_err());
//! # }
//! ```

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// How long a connect attempt may take before the accept queue is deemed
/// full while filling it.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(150);

/// Most connections queued while filling (a safety bound; Linux needs 1).
const MAX_FILL: usize = 16;

/// Keeps an [`unresponsive_listener`] alive: the listening socket and the
/// connections filling its accept queue. Dropping it closes all of them
/// (connects then get refused instead of hanging).
pub struct Blackhole {
    addr: SocketAddr,
    _listener: Socket,
    fillers: Vec<TcpStream>,
}

impl fmt::Debug for Blackhole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Blackhole")
            .field("addr", &self.addr)
            .field("fillers", &self.fillers.len())
            .finish()
    }
}

impl Blackhole {
    /// The address where connects hang.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// Returns a loopback address where TCP connects hang until the client
/// gives up, and the guard that keeps it so. Blocks for about
/// [`PROBE_TIMEOUT`] while filling the accept queue.
///
/// # Panics
///
/// If the socket cannot be created, or the accept queue does not fill up
/// (not Linux-like behaviour); see [`try_unresponsive_listener`].
pub fn unresponsive_listener() -> (SocketAddr, Blackhole) {
    match try_unresponsive_listener() {
        Ok(blackhole) => (blackhole.addr, blackhole),
        Err(e) => panic!("failed to create an unresponsive listener: {e}"),
    }
}

/// Like [`unresponsive_listener`], returning errors instead of panicking.
pub fn try_unresponsive_listener() -> io::Result<Blackhole> {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    listener.bind(&SockAddr::from(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))?;
    listener.listen(0)?;
    let addr = listener
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("listener has no inet address"))?;
    let mut fillers = Vec::new();
    loop {
        match TcpStream::connect_timeout(&addr, PROBE_TIMEOUT) {
            Ok(stream) if fillers.len() < MAX_FILL => fillers.push(stream),
            Ok(_) => {
                return Err(io::Error::other(format!(
                    "accept queue still not full after {MAX_FILL} connections"
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => break,
            Err(e) => return Err(e),
        }
    }
    Ok(Blackhole {
        addr,
        _listener: listener,
        fillers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_hang_until_timeout() {
        let (addr, guard) = unresponsive_listener();
        assert_eq!(guard.addr(), addr);
        assert!(addr.ip().is_loopback());
        for _ in 0..3 {
            let attempt = tokio::net::TcpStream::connect(addr);
            let res = tokio::time::timeout(Duration::from_millis(200), attempt).await;
            assert!(res.is_err(), "connect should hang, got {res:?}");
        }
    }

    #[tokio::test]
    async fn several_blackholes_coexist() {
        let (a, _ga) = unresponsive_listener();
        let (b, _gb) = unresponsive_listener();
        assert_ne!(a, b);
        let (ra, rb) = tokio::join!(
            tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(a)
            ),
            tokio::time::timeout(
                Duration::from_millis(200),
                tokio::net::TcpStream::connect(b)
            ),
        );
        assert!(ra.is_err() && rb.is_err());
    }

    #[tokio::test]
    async fn dropping_the_guard_refuses_connects() {
        let (addr, guard) = unresponsive_listener();
        drop(guard);
        let res =
            tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(addr))
                .await
                .expect("a closed port refuses at once");
        assert_eq!(
            res.unwrap_err().kind(),
            std::io::ErrorKind::ConnectionRefused
        );
    }
}
