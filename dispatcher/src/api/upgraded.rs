//! `UpgradedIo`: the connection after a `CONNECT` or a 101, as tokio IO.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{Error, ErrorKind};
use crate::Response;

/// The connection a `CONNECT` tunnel or a protocol upgrade took over from
/// the dispatcher (undici's `socket`), as tokio's `AsyncRead` and
/// `AsyncWrite`.
///
/// Bytes the server sent right after its answer are read first. The
/// connection is no longer pooled: it closes when this is dropped, and
/// `shutdown` sends a FIN as `socket.end()` does.
pub struct UpgradedIo {
    io: TokioIo<Upgraded>,
}

impl UpgradedIo {
    /// Wraps hyper's upgraded connection.
    pub fn new(upgraded: Upgraded) -> Self {
        UpgradedIo {
            io: TokioIo::new(upgraded),
        }
    }

    /// hyper's upgraded connection, e.g. to `downcast` it to the
    /// underlying transport.
    pub fn into_inner(self) -> Upgraded {
        self.io.into_inner()
    }
}

impl fmt::Debug for UpgradedIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpgradedIo").finish_non_exhaustive()
    }
}

/// Waits for the dispatcher to hand over the connection of `response`.
pub(super) async fn take_over(response: &mut Response) -> Result<UpgradedIo, Error> {
    match hyper::upgrade::on(response).await {
        Ok(upgraded) => Ok(UpgradedIo::new(upgraded)),
        Err(err) => Err(Error::new(
            ErrorKind::Socket,
            "the connection could not be taken over after the upgrade",
        )
        .with_source(err)),
    }
}

impl AsyncRead for UpgradedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
