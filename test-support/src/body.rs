//! Response bodies for test handlers.
//!
//! Every handler returns `Response<TestBody>`. Build bodies with [`full`],
//! [`empty`], [`from_body`], [`stream`] or [`channel`]; the last two let a
//! test send chunks and trailers one by one, stall, or fail mid-body.
//!
//! ```
//! use undici_test_support::body;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let (tx, body) = body::channel(4);
//! tokio::spawn(async move {
//!     tx.send_data("chunk 1").await.ok();
//!     let mut trailers = http::HeaderMap::new();
//!     trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
//!     tx.send_trailers(trailers).await.ok();
//! });
//! let collected = http_body_util::BodyExt::collect(body).await.unwrap();
//! assert!(collected.trailers().is_some());
//! # }
//! ```

use std::fmt;

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use tokio::sync::mpsc;

/// The error type of [`TestBody`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The body type every test handler returns.
pub type TestBody = BoxBody<Bytes, BoxError>;

/// A body with exactly these bytes (sent with a `content-length`).
pub fn full(data: impl Into<Bytes>) -> TestBody {
    Full::new(data.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body (`content-length: 0` where applicable).
pub fn empty() -> TestBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Boxes any body with `Bytes` data, e.g. a request's
/// [`hyper::body::Incoming`] to echo it back.
pub fn from_body<B>(body: B) -> TestBody
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// A body fed by a channel: every received item becomes one frame (data or
/// trailers), an `Err` aborts the body, and the body ends when every sender
/// is dropped. While the channel is empty the body stalls.
///
/// Use [`channel`] for a friendlier sender.
pub fn stream(mut rx: mpsc::Receiver<Result<Frame<Bytes>, BoxError>>) -> TestBody {
    let frames = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    StreamBody::new(frames).boxed()
}

/// Creates a streaming body and the [`BodySender`] that feeds it; `buffer`
/// is the channel capacity (at least 1).
pub fn channel(buffer: usize) -> (BodySender, TestBody) {
    let (tx, rx) = mpsc::channel(buffer.max(1));
    (BodySender { tx }, stream(rx))
}

/// Feeds a body created by [`channel`]. Dropping every sender ends the body
/// normally; [`BodySender::abort`] ends it with an error.
#[derive(Clone, Debug)]
pub struct BodySender {
    tx: mpsc::Sender<Result<Frame<Bytes>, BoxError>>,
}

/// The body's receiving side is gone (the connection or stream closed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BodyClosed;

impl fmt::Display for BodyClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the response body's receiver was dropped")
    }
}

impl std::error::Error for BodyClosed {}

impl BodySender {
    /// Sends one data frame.
    pub async fn send_data(&self, data: impl Into<Bytes>) -> Result<(), BodyClosed> {
        self.send_frame(Frame::data(data.into())).await
    }

    /// Sends the trailers frame (which should be the last frame).
    pub async fn send_trailers(&self, trailers: HeaderMap) -> Result<(), BodyClosed> {
        self.send_frame(Frame::trailers(trailers)).await
    }

    /// Sends any frame.
    pub async fn send_frame(&self, frame: Frame<Bytes>) -> Result<(), BodyClosed> {
        self.tx.send(Ok(frame)).await.map_err(|_| BodyClosed)
    }

    /// Ends the body with an error: hyper then aborts the response
    /// (HTTP/1: the connection is closed mid-body; HTTP/2: the stream is
    /// reset).
    pub async fn abort(self, error: impl Into<BoxError>) {
        // If the receiver is gone the body is already over.
        let _ = self.tx.send(Err(error.into())).await;
    }

    /// Waits until the body's receiver is dropped (the peer went away or
    /// the response was discarded).
    pub async fn closed(&self) {
        self.tx.closed().await;
    }

    /// Whether the body's receiver was dropped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_and_empty() {
        let b = full("abc");
        assert_eq!(b.size_hint().exact(), Some(3));
        assert_eq!(b.collect().await.unwrap().to_bytes(), "abc");
        let e = empty();
        assert!(e.is_end_stream());
    }

    #[tokio::test]
    async fn channel_sends_data_and_trailers() {
        let (tx, body) = channel(1);
        let task = tokio::spawn(async move {
            tx.send_data("a").await.unwrap();
            tx.send_data(Bytes::from_static(b"b")).await.unwrap();
            let mut t = HeaderMap::new();
            t.insert("x-t", "1".parse().unwrap());
            tx.send_trailers(t).await.unwrap();
        });
        let collected = body.collect().await.unwrap();
        task.await.unwrap();
        assert_eq!(collected.trailers().unwrap()["x-t"], "1");
        assert_eq!(collected.to_bytes(), "ab");
    }

    #[tokio::test]
    async fn channel_abort_is_an_error() {
        let (tx, body) = channel(1);
        tokio::spawn(async move { tx.abort("boom").await });
        let err = body.collect().await.unwrap_err();
        assert_eq!(err.to_string(), "boom");
    }

    #[tokio::test]
    async fn sender_sees_dropped_body() {
        let (tx, body) = channel(1);
        drop(body);
        tx.closed().await;
        assert!(tx.is_closed());
        assert_eq!(tx.send_data("x").await, Err(BodyClosed));
    }
}
