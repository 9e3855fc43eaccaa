//! A body as tokio's `AsyncRead`.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes};
use futures_util::Stream;
use tokio::io::{AsyncBufRead, AsyncRead, ReadBuf};

use super::Body;

/// A [`Body`] read through tokio's `AsyncRead` and `AsyncBufRead`; body
/// errors become `io::Error`s that keep the dispatcher's error inside.
#[derive(Debug)]
pub struct BodyReader {
    body: Body,
    chunk: Bytes,
}

impl BodyReader {
    pub(super) fn new(body: Body) -> Self {
        BodyReader {
            body,
            chunk: Bytes::new(),
        }
    }

    /// The body being read, e.g. for its trailers once it has ended.
    pub fn body(&self) -> &Body {
        &self.body
    }

    /// The body back; bytes already buffered but not read are lost.
    pub fn into_body(self) -> Body {
        self.body
    }
}

impl AsyncBufRead for BodyReader {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.chunk.is_empty() {
            match ready!(Pin::new(&mut this.body).poll_next(cx)) {
                Some(Ok(chunk)) => this.chunk = chunk,
                Some(Err(err)) => return Poll::Ready(Err(io::Error::other(err))),
                None => break,
            }
        }
        Poll::Ready(Ok(&this.chunk))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        self.get_mut().chunk.advance(amt);
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let available = ready!(self.as_mut().poll_fill_buf(cx))?;
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.consume(n);
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use crate::Body;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn reads_across_chunks() {
        let body = Body::from_stream(futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>("hel"),
            Ok("lo"),
        ]));
        let mut text = String::new();
        body.into_reader().read_to_string(&mut text).await.unwrap();
        assert_eq!(text, "hello");
    }
}
