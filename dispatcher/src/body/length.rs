//! `strict_content_length` for streamed request bodies: a body whose
//! size is only known once it has been sent is counted as it goes.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;

use crate::error::{Error, ErrorKind};

/// A streamed body that must be exactly `declared` bytes long: more, or
/// fewer by its end, is undici's `UND_ERR_REQ_CONTENT_LENGTH_MISMATCH`
/// (hyper would cut a longer body short, or fail a shorter one as a
/// write error).
pub(super) struct LengthChecked {
    pub(super) inner: UnsyncBoxBody<Bytes, Error>,
    pub(super) declared: u64,
    pub(super) sent: u64,
}

pub(crate) fn mismatch() -> Error {
    Error::new(
        ErrorKind::RequestContentLengthMismatch,
        "Request body length does not match content-length header",
    )
}

impl http_body::Body for LengthChecked {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    this.sent += data.len() as u64;
                    if this.sent > this.declared {
                        return Poll::Ready(Some(Err(mismatch())));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            None if this.sent != this.declared => Poll::Ready(Some(Err(mismatch()))),
            other => Poll::Ready(other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.declared.saturating_sub(self.sent))
    }
}
