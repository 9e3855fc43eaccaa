//! `H2Io`: the IO under an HTTP/2 connection, with a switch that fails it
//! and a watch on the frames the server sends.
//!
//! hyper drives an HTTP/2 connection in a task of its own, which keeps
//! running while any stream is open even once our handle on the
//! connection is dropped. To destroy a connection with streams in flight
//! the pool therefore fails its IO: every read and write after
//! [`KillSwitch::kill`] is an error, the connection task ends, and each
//! open stream fails with it.
//!
//! hyper does not say what the server's SETTINGS allow or when a GOAWAY
//! came either; the [`FrameWatch`] on the read side does.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h2_frames::{FrameWatch, H2Signals};

/// Fails the IO it was given to, waking a read or write waiting on it.
#[derive(Debug, Default)]
pub(crate) struct KillSwitch {
    killed: AtomicBool,
    reader: AtomicWaker,
    writer: AtomicWaker,
}

impl KillSwitch {
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.reader.wake();
        self.writer.wake();
    }

    /// Registers `waker` first, so a kill racing with the check still
    /// wakes it.
    fn check(&self, waker: &AtomicWaker, cx: &Context<'_>) -> io::Result<()> {
        waker.register(cx.waker());
        if self.killed.load(Ordering::Acquire) {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "the connection was closed by its pool",
            ));
        }
        Ok(())
    }
}

pin_project_lite::pin_project! {
    /// An HTTP/2 connection's IO, its kill switch and its frame watch.
    pub(crate) struct H2Io<T> {
        #[pin]
        inner: T,
        switch: Arc<KillSwitch>,
        watch: FrameWatch,
        signals: Arc<H2Signals>,
    }
}

impl<T> H2Io<T> {
    pub(crate) fn new(inner: T, switch: Arc<KillSwitch>, signals: Arc<H2Signals>) -> Self {
        H2Io {
            inner,
            switch,
            watch: FrameWatch::default(),
            signals,
        }
    }
}

impl<T: AsyncRead> AsyncRead for H2Io<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        this.switch.check(&this.switch.reader, cx)?;
        let before = buf.filled().len();
        let read = this.inner.poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = read {
            this.watch.observe(&buf.filled()[before..], this.signals);
        }
        read
    }
}

impl<T: AsyncWrite> AsyncWrite for H2Io<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        this.switch.check(&this.switch.writer, cx)?;
        this.inner.poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        this.switch.check(&this.switch.writer, cx)?;
        this.inner.poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        this.switch.check(&this.switch.writer, cx)?;
        this.inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_killed_io_fails_a_pending_read_and_later_writes() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let switch = Arc::new(KillSwitch::default());
        let mut io = H2Io::new(
            ours,
            switch.clone(),
            Arc::new(H2Signals::new(Arc::default())),
        );
        theirs.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        let reading = tokio::spawn(async move {
            let mut buf = [0u8; 4];
            let read = io.read(&mut buf).await;
            (read.map_err(|e| e.kind()), io)
        });
        tokio::task::yield_now().await;
        switch.kill();
        let (read, mut io) = reading.await.unwrap();
        assert_eq!(read.unwrap_err(), io::ErrorKind::ConnectionAborted);
        let write = io.write_all(b"late").await.unwrap_err();
        assert_eq!(write.kind(), io::ErrorKind::ConnectionAborted);
    }
}
