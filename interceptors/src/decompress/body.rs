//! `DecompressBody`: the decoded body, decoded as the caller reads it.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use undici_dispatcher::{Error, ErrorKind};

use super::coding::{body_error, Codings, Decoder};
use super::layer::Limits;

/// Decoded bytes asked of the decoders per frame: the most a frame holds,
/// and so the most buffered at once on top of the decoders' own windows.
const CHUNK: usize = 32 * 1024;

/// A response body being decoded: each poll decodes at most one frame's
/// worth from what the server has sent, so the server is held back while
/// the caller does not read, and memory stays flat whatever the body
/// decodes to.
pub(super) struct DecompressBody {
    /// `None` once the body failed: the encoded body, and its connection,
    /// are let go at once.
    decoder: Option<Decoder>,
    codings: Codings,
    limits: Limits,
    buf: BytesMut,
    decoded: u64,
    state: State,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Decoding,
    /// The decoders have ended: the encoded body is checked for trailing
    /// data and read to its end.
    Finishing,
    Trailers,
    Done,
}

impl DecompressBody {
    pub(super) fn new(decoder: Decoder, codings: Codings, limits: Limits) -> Self {
        DecompressBody {
            decoder: Some(decoder),
            codings,
            limits,
            buf: BytesMut::new(),
            decoded: 0,
            state: State::Decoding,
        }
    }

    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.state = State::Done;
        self.decoder = None;
        Poll::Ready(Some(Err(error)))
    }

    /// A decoder's error: the body's own error carried up, or the data
    /// failing to decode.
    fn decode_error(&self, err: io::Error) -> Error {
        if let Some(err) = body_error(&err) {
            return err;
        }
        Error::new(
            ErrorKind::Parser,
            format!(
                "Decompression failed (content-encoding: {}): {err}",
                self.codings
            ),
        )
        .with_code("Z_DATA_ERROR")
        .with_source(err)
    }

    /// Checks the bounds on what has been decoded so far.
    fn check_limits(&self, encoded: u64) -> Result<(), Error> {
        let Limits {
            max_decoded_size,
            max_ratio,
            ratio_threshold,
        } = self.limits;
        if self.decoded > max_decoded_size {
            return Err(Error::new(
                ErrorKind::ResponseExceededMaxSize,
                format!(
                    "Decompressed response body exceeded max_decoded_size of \
                     {max_decoded_size} bytes (content-encoding: {})",
                    self.codings
                ),
            ));
        }
        if self.decoded > ratio_threshold && self.decoded > encoded.saturating_mul(max_ratio) {
            return Err(Error::new(
                ErrorKind::ResponseExceededMaxSize,
                format!(
                    "Decompressed response body exceeded max_ratio of {max_ratio}: {} bytes \
                     decoded from {encoded} bytes (content-encoding: {}), a likely \
                     decompression bomb",
                    self.decoded, self.codings
                ),
            ));
        }
        Ok(())
    }

    /// Decodes the next frame; `None` when the state moved on instead.
    fn poll_decode(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let Some(decoder) = self.decoder.as_mut() else {
            self.state = State::Done;
            return Poll::Ready(None);
        };
        self.buf.reserve(CHUNK);
        match ready!(tokio_util::io::poll_read_buf(
            Pin::new(&mut *decoder),
            cx,
            &mut self.buf
        )) {
            Ok(0) => {
                self.state = State::Finishing;
                Poll::Ready(None)
            }
            Ok(n) => {
                self.decoded += n as u64;
                let encoded = decoder.source().bytes_consumed();
                if let Err(err) = self.check_limits(encoded) {
                    return self.fail(err);
                }
                Poll::Ready(Some(Ok(Frame::data(self.buf.split().freeze()))))
            }
            // Node's zlib decodes an empty body to an empty body.
            Err(_) if decoder.source().ended_empty() => {
                self.state = State::Trailers;
                Poll::Ready(None)
            }
            Err(err) => {
                let err = self.decode_error(err);
                self.fail(err)
            }
        }
    }
}

impl http_body::Body for DecompressBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Decoding => {
                    if let Some(frame) = ready!(this.poll_decode(cx)) {
                        return Poll::Ready(Some(frame));
                    }
                }
                State::Finishing => {
                    let Some(decoder) = this.decoder.as_mut() else {
                        this.state = State::Done;
                        continue;
                    };
                    if let Err(err) = ready!(decoder.input().poll_finish(cx)) {
                        let err = this.decode_error(err);
                        return this.fail(err);
                    }
                    this.state = State::Trailers;
                }
                State::Trailers => {
                    this.state = State::Done;
                    let trailers = this
                        .decoder
                        .take()
                        .and_then(|mut decoder| decoder.source().take_trailers());
                    if let Some(trailers) = trailers {
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                    }
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.state == State::Done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
