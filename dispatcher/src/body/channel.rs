//! A body fed through a channel: the request half of `pipeline`, or any
//! request body produced while it is being sent.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures_channel::mpsc;
use futures_util::{SinkExt, Stream};
use http::HeaderMap;
use http_body::Frame;
use tokio::io::AsyncWrite;

use crate::error::{Error, ErrorKind};

type AbortSlot = Arc<Mutex<Option<Error>>>;

/// The sending half of [`Body::channel`](crate::Body::channel).
///
/// Writing waits while the receiving side has not taken the previous chunk,
/// so a slow connection holds the writer back. Dropping the sender (or
/// `shutdown` through `AsyncWrite`) ends the body; [`abort`](Self::abort)
/// fails it instead.
#[derive(Debug)]
pub struct BodySender {
    tx: mpsc::Sender<Frame<Bytes>>,
    abort: AbortSlot,
}

pub(super) struct ChannelBody {
    rx: mpsc::Receiver<Frame<Bytes>>,
    abort: AbortSlot,
}

pub(super) fn pair() -> (BodySender, ChannelBody) {
    let (tx, rx) = mpsc::channel(1);
    let abort = AbortSlot::default();
    (
        BodySender {
            tx,
            abort: abort.clone(),
        },
        ChannelBody { rx, abort },
    )
}

fn receiver_gone() -> Error {
    Error::new(
        ErrorKind::Aborted,
        "the request body is no longer being sent",
    )
}

impl BodySender {
    /// Sends a chunk; waits while the previous one has not been taken.
    pub async fn send_data(&mut self, chunk: impl Into<Bytes>) -> Result<(), Error> {
        self.tx
            .send(Frame::data(chunk.into()))
            .await
            .map_err(|_| receiver_gone())
    }

    /// Sends the trailers, which end the body.
    pub async fn send_trailers(mut self, trailers: HeaderMap) -> Result<(), Error> {
        self.tx
            .send(Frame::trailers(trailers))
            .await
            .map_err(|_| receiver_gone())
    }

    /// Fails the body with `error`: the request is aborted.
    pub fn abort(self, error: Error) {
        if let Ok(mut slot) = self.abort.lock() {
            *slot = Some(error);
        }
    }

    /// True when the receiving side is gone (the request ended).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

impl AsyncWrite for BodySender {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let broken = |_| io::Error::new(io::ErrorKind::BrokenPipe, receiver_gone());
        ready!(self.tx.poll_ready(cx)).map_err(broken)?;
        self.tx
            .start_send(Frame::data(Bytes::copy_from_slice(buf)))
            .map_err(broken)?;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.tx.close_channel();
        Poll::Ready(Ok(()))
    }
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match ready!(Pin::new(&mut self.rx).poll_next(cx)) {
            Some(frame) => Poll::Ready(Some(Ok(frame))),
            None => {
                let aborted = self.abort.lock().ok().and_then(|mut slot| slot.take());
                Poll::Ready(aborted.map(Err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Body;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn chunks_and_trailers_arrive_in_order() {
        let (mut tx, body) = Body::channel();
        let sending = tokio::spawn(async move {
            tx.send_data("a").await.unwrap();
            tx.write_all(b"b").await.unwrap();
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-done", "1".parse().unwrap());
            tx.send_trailers(trailers).await.unwrap();
        });
        let collected = body.collect().await.unwrap();
        sending.await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-done"], "1");
        assert_eq!(collected.to_bytes(), "ab");
    }

    #[tokio::test]
    async fn abort_fails_the_body() {
        let (tx, body) = Body::channel();
        tx.abort(crate::Error::aborted());
        assert!(body.bytes().await.unwrap_err().is_aborted());
    }
}
