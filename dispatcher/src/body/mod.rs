//! `Body`: one body type for requests and responses, with undici's body
//! mixin (`text`, `json`, `bytes`, `dump`) on responses.

mod channel;
mod length;
mod reader;

use std::fmt;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use http::HeaderMap;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Collected};

pub use channel::BodySender;
pub(crate) use length::mismatch as length_mismatch;
pub use reader::BodyReader;

use crate::connection::ResponseBody;
use crate::error::{BoxError, Error, ErrorKind};

/// undici's default `dump()` limit: 128 KiB.
pub const DEFAULT_DUMP_LIMIT: u64 = 128 * 1024;

/// The body of a request or a response.
///
/// An empty body allocates nothing; a full `Bytes` (from a `String`, a
/// `Vec<u8>`, a `&'static str`) and any other `http_body::Body` are
/// boxed. A response body from a dispatcher reads from the connection as
/// it is polled, so the server is held back while the body is not read.
///
/// Response bodies carry undici's body mixin: [`text`](Body::text),
/// [`json`](Body::json) (`json` feature), [`bytes`](Body::bytes),
/// [`collect`](Body::collect) (with trailers), [`dump`](Body::dump), and
/// streaming through `http_body::Body`, `futures::Stream` or tokio's
/// `AsyncRead` ([`into_reader`](Body::into_reader)). Trailers are
/// available from [`trailers`](Body::trailers) once the body has ended.
///
/// A body is consumed once: the mixin takes it by value, and calling one
/// after the body was partly streamed is an `UND_ERR_BODY_UNUSABLE` error,
/// as undici's "body is unusable".
pub struct Body {
    /// `None` for an empty body. One word: hyper's channel of requests to
    /// an HTTP/1 connection allocates room for 32 requests per
    /// connection, so every word of a request is 256 bytes of every idle
    /// connection; and each request and response moves its body several
    /// times on its way through the stack.
    inner: Option<Box<Inner>>,
}

// The variants differ in size, but they live in the body's one box:
// boxing the streaming state again would allocate twice per response.
#[allow(clippy::large_enum_variant)]
enum Inner {
    /// The bytes of a full body, never empty.
    Full(Bytes),
    /// A full body once read.
    Read,
    Streaming(Streaming),
}

/// A body read as it streams, with what it said so far.
struct Streaming {
    source: Source,
    started: bool,
    trailers: Option<HeaderMap>,
}

// The variants differ in size, but the enum lives in the body's box:
// boxing the response body again would allocate twice.
#[allow(clippy::large_enum_variant)]
enum Source {
    Response(ResponseBody),
    Boxed(UnsyncBoxBody<Bytes, Error>),
}

impl Source {
    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        match self {
            Source::Response(body) => Pin::new(body).poll_frame(cx),
            Source::Boxed(body) => http_body::Body::poll_frame(Pin::new(body), cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Source::Response(body) => body.is_end_stream(),
            Source::Boxed(body) => http_body::Body::is_end_stream(body),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Source::Response(body) => body.size_hint(),
            Source::Boxed(body) => http_body::Body::size_hint(body),
        }
    }
}

impl Body {
    /// An empty body.
    pub const fn empty() -> Self {
        Body { inner: None }
    }

    /// A body of these bytes.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            return Body::empty();
        }
        Body {
            inner: Some(Box::new(Inner::Full(bytes))),
        }
    }

    /// Wraps any `http_body::Body` (a hyper `Incoming` being proxied, a
    /// tower-http body, a `StreamBody`). Its errors become
    /// `UND_ERR_ABORTED` errors that keep them as their source, as a
    /// failing request stream aborts undici's request.
    pub fn wrap<B>(body: B) -> Self
    where
        B: http_body::Body + Send + 'static,
        B::Data: Into<Bytes>,
        B::Error: Into<BoxError>,
    {
        let boxed = body
            .map_frame(|frame| frame.map_data(Into::into))
            .map_err(|err| {
                let err: BoxError = err.into();
                match err.downcast::<Error>() {
                    Ok(err) => *err,
                    Err(err) => Error::new(ErrorKind::Aborted, "request body stream failed")
                        .with_source(err),
                }
            })
            .boxed_unsync();
        Body::streaming(Source::Boxed(boxed))
    }

    /// A body read from a stream of chunks.
    pub fn from_stream<S, T, E>(stream: S) -> Self
    where
        S: Stream<Item = Result<T, E>> + Send + 'static,
        T: Into<Bytes>,
        E: Into<BoxError>,
    {
        use futures_util::TryStreamExt;
        let frames = stream.map_ok(|chunk| Frame::data(chunk.into()));
        Body::wrap(http_body_util::StreamBody::new(frames))
    }

    /// A body fed through a channel: write chunks and trailers into the
    /// [`BodySender`] while the request is being sent.
    pub fn channel() -> (BodySender, Body) {
        let (sender, body) = channel::pair();
        (sender, Body::wrap(body))
    }

    /// This body, held to `declared` bytes when its size is only known
    /// as it streams (`strict_content_length`); an empty or full body is
    /// checked before it is sent, so it is left as it is.
    pub(crate) fn length_checked(mut self, declared: u64) -> Body {
        if let Some(Inner::Streaming(Streaming {
            source: Source::Boxed(body),
            ..
        })) = self.inner.as_deref_mut()
        {
            let inner = std::mem::take(body);
            let checked = length::LengthChecked {
                inner,
                declared,
                sent: 0,
            };
            *body = checked.boxed_unsync();
        }
        self
    }

    pub(crate) fn response(body: ResponseBody) -> Self {
        Body::streaming(Source::Response(body))
    }

    fn streaming(source: Source) -> Self {
        Body {
            inner: Some(Box::new(Inner::Streaming(Streaming {
                source,
                started: false,
                trailers: None,
            }))),
        }
    }

    /// A copy of this body, when it can be sent again (an empty or a full
    /// body); `None` for streams. Retry and redirect replay only these.
    pub fn try_clone(&self) -> Option<Body> {
        match self.inner.as_deref() {
            None | Some(Inner::Read) => Some(Body::empty()),
            Some(Inner::Full(bytes)) => Some(Body::full(bytes.clone())),
            Some(Inner::Streaming(_)) => None,
        }
    }

    /// True when the body can be sent again ([`try_clone`](Body::try_clone)).
    pub fn is_replayable(&self) -> bool {
        !matches!(self.inner.as_deref(), Some(Inner::Streaming(_)))
    }

    /// The bytes of a full body, without consuming it.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self.inner.as_deref() {
            None | Some(Inner::Read) => Some(&[]),
            Some(Inner::Full(bytes)) => Some(bytes),
            Some(Inner::Streaming(_)) => None,
        }
    }

    /// True once any part of the body was read (undici's `bodyUsed`).
    pub fn is_used(&self) -> bool {
        match self.inner.as_deref() {
            None | Some(Inner::Full(_)) => false,
            Some(Inner::Read) => true,
            Some(Inner::Streaming(streaming)) => streaming.started,
        }
    }

    /// The trailers, once the body has ended and if the server sent any.
    pub fn trailers(&self) -> Option<&HeaderMap> {
        match self.inner.as_deref() {
            Some(Inner::Streaming(streaming)) => streaming.trailers.as_ref(),
            _ => None,
        }
    }

    fn check_unused(&self) -> Result<(), Error> {
        if self.is_used() {
            return Err(Error::new(
                ErrorKind::BodyUnusable,
                "Body is unusable: Body has already been read",
            ));
        }
        Ok(())
    }

    /// Reads the whole body, with its trailers.
    pub async fn collect(mut self) -> Result<Collected<Bytes>, Error> {
        self.check_unused()?;
        BodyExt::collect(&mut self).await
    }

    /// Reads the whole body into one `Bytes`.
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        self.check_unused()?;
        match self.inner.as_deref_mut() {
            None | Some(Inner::Read) => return Ok(Bytes::new()),
            Some(Inner::Full(bytes)) => return Ok(std::mem::take(bytes)),
            Some(Inner::Streaming(_)) => {}
        }
        let mut first: Option<Bytes> = None;
        let mut rest = BytesMut::new();
        while let Some(frame) = self.frame().await {
            let Ok(data) = frame?.into_data() else {
                continue;
            };
            match &first {
                None => first = Some(data),
                Some(head) => {
                    if rest.is_empty() {
                        rest.extend_from_slice(head);
                    }
                    rest.extend_from_slice(&data);
                }
            }
        }
        Ok(if rest.is_empty() {
            first.unwrap_or_default()
        } else {
            rest.freeze()
        })
    }

    /// Reads the whole body as UTF-8 text; invalid sequences become U+FFFD,
    /// as `TextDecoder` does in undici.
    pub async fn text(self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        Ok(match String::from_utf8(bytes.into()) {
            Ok(text) => text,
            Err(err) => String::from_utf8_lossy(err.as_bytes()).into_owned(),
        })
    }

    /// Reads the whole body and parses it as JSON. An empty body is an
    /// error, as in undici.
    #[cfg(feature = "json")]
    #[cfg_attr(docsrs, doc(cfg(feature = "json")))]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|err| {
            Error::new(
                ErrorKind::InvalidArgument,
                "response body is not valid JSON",
            )
            .with_code("UND_ERR_JSON")
            .with_source(err)
        })
    }

    /// Reads and discards the body, up to `limit` bytes, so that the
    /// connection can serve the next request (undici's `body.dump()`; its
    /// default limit is [`DEFAULT_DUMP_LIMIT`]).
    ///
    /// When the body is larger (by its `content-length` or by what arrives),
    /// it is dropped instead, which closes the connection, and the result is
    /// an `UND_ERR_ABORTED` error.
    pub async fn dump(mut self, limit: u64) -> Result<(), Error> {
        let too_large = || {
            Error::new(
                ErrorKind::Aborted,
                format!("body is larger than the dump limit of {limit} bytes"),
            )
        };
        if http_body::Body::size_hint(&self).lower() > limit {
            return Err(too_large());
        }
        let mut read: u64 = 0;
        while let Some(frame) = self.frame().await {
            if let Ok(data) = frame?.into_data() {
                read += data.len() as u64;
                if read > limit {
                    return Err(too_large());
                }
            }
        }
        Ok(())
    }

    /// The body as tokio's `AsyncRead` (and `AsyncBufRead`).
    pub fn into_reader(self) -> BodyReader {
        BodyReader::new(self)
    }
}

/// A copy of `request` (head and body) when its body can be sent again
/// ([`Body::try_clone`]); `None` for a stream. What a replay, a retry or a
/// redirect keeps to send the request once more. The request itself is
/// not moved, and empty extensions are not cloned.
pub fn try_clone_request(request: &crate::Request) -> Option<crate::Request> {
    let mut copy = crate::Request::new(request.body().try_clone()?);
    *copy.method_mut() = request.method().clone();
    // `Request::new` put the default URI (`/`, static: nothing to free)
    // in place; forgetting it skips its destructor's three calls.
    std::mem::forget(std::mem::replace(copy.uri_mut(), request.uri().clone()));
    *copy.version_mut() = request.version();
    // An empty map's clone still walks its three vectors.
    if !request.headers().is_empty() {
        *copy.headers_mut() = request.headers().clone();
    }
    if !request.extensions().is_empty() {
        *copy.extensions_mut() = request.extensions().clone();
    }
    Some(copy)
}

impl Default for Body {
    fn default() -> Self {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner.as_deref() {
            None | Some(Inner::Read) => "empty",
            Some(Inner::Full(_)) => "full",
            Some(Inner::Streaming(streaming)) => match streaming.source {
                Source::Response(_) => "response",
                Source::Boxed(_) => "stream",
            },
        };
        f.debug_struct("Body")
            .field("kind", &kind)
            .field("used", &self.is_used())
            .finish()
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let Some(inner) = self.get_mut().inner.as_deref_mut() else {
            return Poll::Ready(None);
        };
        match inner {
            Inner::Read => Poll::Ready(None),
            Inner::Full(bytes) => {
                let bytes = std::mem::take(bytes);
                *inner = Inner::Read;
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Inner::Streaming(streaming) => {
                let frame = ready!(streaming.source.poll_frame(cx));
                streaming.started = true;
                if let Some(Ok(frame)) = &frame {
                    if let Some(trailers) = frame.trailers_ref() {
                        streaming.trailers = Some(trailers.clone());
                    }
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self.inner.as_deref() {
            None | Some(Inner::Read) => true,
            Some(Inner::Full(_)) => false,
            Some(Inner::Streaming(streaming)) => streaming.source.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.inner.as_deref() {
            None | Some(Inner::Read) => SizeHint::with_exact(0),
            Some(Inner::Full(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            Some(Inner::Streaming(streaming)) => streaming.source.size_hint(),
        }
    }
}

/// The data chunks of the body; trailers are kept for
/// [`Body::trailers`].
impl Stream for Body {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match ready!(http_body::Body::poll_frame(self.as_mut(), cx)) {
                None => return Poll::Ready(None),
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                Some(Ok(frame)) => {
                    if let Ok(mut data) = frame.into_data() {
                        if data.has_remaining() {
                            return Poll::Ready(Some(Ok(data.copy_to_bytes(data.remaining()))));
                        }
                    }
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, None)
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::full(bytes)
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::full(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::full(text)
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::full(Bytes::from_static(text.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body::full(Bytes::from_static(bytes))
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Self {
        Body::empty()
    }
}

impl From<hyper::body::Incoming> for Body {
    fn from(body: hyper::body::Incoming) -> Self {
        Body::wrap(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_and_empty_bodies_are_exact_and_replayable() {
        let body = Body::from("hello");
        assert_eq!(http_body::Body::size_hint(&body).exact(), Some(5));
        assert!(body.is_replayable());
        let copy = body.try_clone().unwrap();
        assert_eq!(body.text().await.unwrap(), "hello");
        assert_eq!(copy.bytes().await.unwrap(), "hello");
        assert!(http_body::Body::is_end_stream(&Body::empty()));
    }

    #[test]
    fn a_body_is_one_word() {
        // hyper's channel to an HTTP/1 connection holds room for 32
        // requests: a word of a request is 256 bytes of every connection.
        assert_eq!(std::mem::size_of::<Body>(), std::mem::size_of::<usize>());
        assert!(std::mem::size_of::<crate::Request>() <= 232);
    }

    #[tokio::test]
    async fn a_read_full_body_is_used_and_an_empty_one_is_not() {
        use futures_util::StreamExt;
        let mut body = Body::from("hi");
        assert!(!body.is_used());
        assert_eq!(body.next().await.unwrap().unwrap(), "hi");
        assert!(body.is_used());
        assert!(http_body::Body::is_end_stream(&body));
        assert_eq!(
            body.text().await.unwrap_err().kind(),
            ErrorKind::BodyUnusable
        );
        let mut empty = Body::empty();
        assert!(empty.next().await.is_none());
        assert!(!empty.is_used());
        assert_eq!(empty.text().await.unwrap(), "");
    }

    #[tokio::test]
    async fn a_partly_read_body_is_unusable() {
        use futures_util::StreamExt;
        let mut body = Body::from_stream(futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>("a"),
            Ok("b"),
        ]));
        assert_eq!(body.next().await.unwrap().unwrap(), "a");
        let err = body.text().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BodyUnusable);
    }

    #[tokio::test]
    async fn dump_over_the_limit_aborts() {
        let err = Body::from(vec![0u8; 10]).dump(4).await.unwrap_err();
        assert!(err.is_aborted());
        Body::from(vec![0u8; 10]).dump(10).await.unwrap();
    }

    #[tokio::test]
    async fn stream_errors_abort_with_their_source() {
        let body = Body::from_stream(futures_util::stream::iter(vec![
            Ok("a"),
            Err(std::io::Error::other("disk on fire")),
        ]));
        let err = body.bytes().await.unwrap_err();
        assert!(err.is_aborted());
        assert!(err.find_source::<std::io::Error>().is_some());
    }

    #[cfg(feature = "json")]
    #[tokio::test]
    async fn json_of_an_empty_body_is_an_error() {
        let err = Body::empty().json::<serde_json::Value>().await.unwrap_err();
        assert_eq!(err.code(), "UND_ERR_JSON");
    }
}
