//! Content codings: parsing `content-encoding`, and the chain of decoders
//! that undoes them.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

#[cfg(feature = "decompress-br")]
use async_compression::tokio::bufread::BrotliDecoder;
#[cfg(feature = "decompress-zstd")]
use async_compression::tokio::bufread::ZstdDecoder;
use async_compression::tokio::bufread::{GzipDecoder, ZlibDecoder};
use bytes::{Buf, Bytes};
use http::header::CONTENT_ENCODING;
use http::HeaderMap;
use http_body::Body as _;
use tokio::io::{AsyncBufRead, AsyncRead, BufReader, ReadBuf};
use undici_dispatcher::{Body, Error};

/// The most codings decoded on one body, as undici and the fetch spec.
pub(super) const MAX_CODINGS: usize = 5;

/// The `accept-encoding` offered with the codings compiled in.
#[cfg(all(feature = "decompress-br", feature = "decompress-zstd"))]
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";
#[cfg(all(feature = "decompress-br", not(feature = "decompress-zstd")))]
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate, br";
#[cfg(all(not(feature = "decompress-br"), feature = "decompress-zstd"))]
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate, zstd";
#[cfg(all(not(feature = "decompress-br"), not(feature = "decompress-zstd")))]
pub(super) const ACCEPT_ENCODING: &str = "gzip, deflate";

/// A content coding this build can decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Coding {
    /// `gzip`, `x-gzip`.
    Gzip,
    /// `deflate`, and as undici also `compress` and `x-compress`: zlib
    /// inflate.
    Deflate,
    /// `br`.
    #[cfg(feature = "decompress-br")]
    Brotli,
    /// `zstd`.
    #[cfg(feature = "decompress-zstd")]
    Zstd,
}

impl Coding {
    fn from_token(token: &str) -> Option<Coding> {
        let is = |name: &str| token.eq_ignore_ascii_case(name);
        if is("gzip") || is("x-gzip") {
            Some(Coding::Gzip)
        } else if is("deflate") || is("compress") || is("x-compress") {
            // undici's quirk, kept: `compress` is LZW, not zlib, so such a
            // body fails to decode rather than passing through.
            Some(Coding::Deflate)
        } else {
            Coding::from_optional_token(token)
        }
    }

    #[allow(unused_variables)]
    fn from_optional_token(token: &str) -> Option<Coding> {
        #[cfg(feature = "decompress-br")]
        if token.eq_ignore_ascii_case("br") {
            return Some(Coding::Brotli);
        }
        #[cfg(feature = "decompress-zstd")]
        if token.eq_ignore_ascii_case("zstd") {
            return Some(Coding::Zstd);
        }
        None
    }

    fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            #[cfg(feature = "decompress-br")]
            Coding::Brotli => "br",
            #[cfg(feature = "decompress-zstd")]
            Coding::Zstd => "zstd",
        }
    }
}

/// The codings of a response, in the order they were applied (the order
/// of `content-encoding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Codings {
    list: [Coding; MAX_CODINGS],
    len: usize,
}

/// What `content-encoding` asks of the interceptor.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Parsed {
    /// No coding: nothing to do.
    Identity,
    /// A coding this build cannot decode (or a header that is not text):
    /// the body passes through undecoded, as in undici.
    Unknown,
    /// More than [`MAX_CODINGS`] codings.
    TooMany(usize),
    /// Codings to undo, last applied first.
    Decode(Codings),
}

impl Codings {
    /// Reads every `content-encoding` field, in order, as one list.
    pub(super) fn parse(headers: &HeaderMap) -> Parsed {
        let mut codings = Codings {
            list: [Coding::Gzip; MAX_CODINGS],
            len: 0,
        };
        let mut count = 0;
        let mut unknown = false;
        for value in headers.get_all(CONTENT_ENCODING) {
            let Ok(value) = value.to_str() else {
                return Parsed::Unknown;
            };
            for token in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
                count += 1;
                match Coding::from_token(token) {
                    Some(coding) if count <= MAX_CODINGS => {
                        codings.list[count - 1] = coding;
                        codings.len = count;
                    }
                    Some(_) => {}
                    None => unknown = true,
                }
            }
        }
        if count > MAX_CODINGS {
            Parsed::TooMany(count)
        } else if unknown {
            Parsed::Unknown
        } else if count == 0 {
            Parsed::Identity
        } else {
            Parsed::Decode(codings)
        }
    }

    fn as_slice(&self) -> &[Coding] {
        &self.list[..self.len]
    }

    /// The decoders that undo these codings over `body`: the last coding
    /// applied is undone first, straight from the body.
    pub(super) fn decoder(&self, body: Body) -> Decoder {
        let mut codings = self.as_slice().iter().rev();
        // Never empty: `parse` gives `Decode` for one coding or more.
        let first = codings.next().copied().unwrap_or(Coding::Gzip);
        let mut decoder = Decoder::new(first, Stage::Source(EncodedSource::new(body)));
        for &coding in codings {
            decoder = Decoder::new(coding, Stage::Decoded(Box::new(BufReader::new(decoder))));
        }
        decoder
    }
}

impl fmt::Display for Codings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, coding) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(coding.name())?;
        }
        Ok(())
    }
}

/// One decoder of the chain, reading the stage below it.
pub(super) enum Decoder {
    Gzip(GzipDecoder<Stage>),
    Zlib(ZlibDecoder<Stage>),
    #[cfg(feature = "decompress-br")]
    Brotli(BrotliDecoder<Stage>),
    #[cfg(feature = "decompress-zstd")]
    Zstd(ZstdDecoder<Stage>),
}

impl Decoder {
    fn new(coding: Coding, input: Stage) -> Decoder {
        match coding {
            Coding::Gzip => {
                // RFC 1952 §2.2: a gzip file is a series of members, and
                // Node's gunzip decodes them all.
                let mut decoder = GzipDecoder::new(input);
                decoder.multiple_members(true);
                Decoder::Gzip(decoder)
            }
            Coding::Deflate => Decoder::Zlib(ZlibDecoder::new(input)),
            #[cfg(feature = "decompress-br")]
            Coding::Brotli => Decoder::Brotli(BrotliDecoder::new(input)),
            #[cfg(feature = "decompress-zstd")]
            Coding::Zstd => {
                // RFC 8878 §3.1: concatenated frames decode to the
                // concatenation of their content.
                let mut decoder = ZstdDecoder::new(input);
                decoder.multiple_members(true);
                Decoder::Zstd(decoder)
            }
        }
    }

    /// The stage this decoder reads.
    pub(super) fn input(&mut self) -> &mut Stage {
        match self {
            Decoder::Gzip(decoder) => decoder.get_mut(),
            Decoder::Zlib(decoder) => decoder.get_mut(),
            #[cfg(feature = "decompress-br")]
            Decoder::Brotli(decoder) => decoder.get_mut(),
            #[cfg(feature = "decompress-zstd")]
            Decoder::Zstd(decoder) => decoder.get_mut(),
        }
    }

    /// The encoded body at the bottom of the chain.
    pub(super) fn source(&mut self) -> &mut EncodedSource {
        self.input().source()
    }
}

impl AsyncRead for Decoder {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Decoder::Gzip(decoder) => Pin::new(decoder).poll_read(cx, buf),
            Decoder::Zlib(decoder) => Pin::new(decoder).poll_read(cx, buf),
            #[cfg(feature = "decompress-br")]
            Decoder::Brotli(decoder) => Pin::new(decoder).poll_read(cx, buf),
            #[cfg(feature = "decompress-zstd")]
            Decoder::Zstd(decoder) => Pin::new(decoder).poll_read(cx, buf),
        }
    }
}

/// What a decoder reads: the encoded body, or the output of the decoder
/// below it.
// A chain has one `Source`, inline in its bottom decoder; boxing it would
// cost an allocation per response for nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Stage {
    Source(EncodedSource),
    Decoded(Box<BufReader<Decoder>>),
}

impl Stage {
    fn source(&mut self) -> &mut EncodedSource {
        match self {
            Stage::Source(source) => source,
            Stage::Decoded(reader) => reader.get_mut().source(),
        }
    }

    /// Once the decoder above has ended: checks that nothing follows its
    /// data, here and in every stage below, down to the end of the body.
    /// A decoder stops at the end of its stream, so the body has not
    /// necessarily been read to its end (which gives the connection back).
    pub(super) fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let rest = ready!(Pin::new(&mut *self).poll_fill_buf(cx))?;
        if !rest.is_empty() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "unexpected data after the end of the compressed stream",
            )));
        }
        match self {
            Stage::Source(_) => Poll::Ready(Ok(())),
            Stage::Decoded(reader) => reader.get_mut().input().poll_finish(cx),
        }
    }
}

impl AsyncRead for Stage {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stage::Source(source) => Pin::new(source).poll_read(cx, buf),
            Stage::Decoded(reader) => Pin::new(&mut **reader).poll_read(cx, buf),
        }
    }
}

impl AsyncBufRead for Stage {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        match self.get_mut() {
            Stage::Source(source) => Pin::new(source).poll_fill_buf(cx),
            Stage::Decoded(reader) => Pin::new(&mut **reader).poll_fill_buf(cx),
        }
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        match self.get_mut() {
            Stage::Source(source) => Pin::new(source).consume(amt),
            Stage::Decoded(reader) => Pin::new(&mut **reader).consume(amt),
        }
    }
}

/// The encoded body as an `AsyncBufRead`, counting what the decoder takes
/// and keeping the trailers.
pub(super) struct EncodedSource {
    body: Body,
    chunk: Bytes,
    received: u64,
    consumed: u64,
    ended: bool,
    trailers: Option<HeaderMap>,
}

impl EncodedSource {
    fn new(body: Body) -> Self {
        EncodedSource {
            body,
            chunk: Bytes::new(),
            received: 0,
            consumed: 0,
            ended: false,
            trailers: None,
        }
    }

    /// Encoded bytes the decoder has taken so far. What arrived but waits
    /// in a frame is not counted: a whole bomb fits in one frame.
    pub(super) fn bytes_consumed(&self) -> u64 {
        self.consumed
    }

    /// True when the body ended without a single byte.
    pub(super) fn ended_empty(&self) -> bool {
        self.ended && self.received == 0
    }

    /// The body's trailers, once it has ended.
    pub(super) fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.trailers.take()
    }
}

impl AsyncBufRead for EncodedSource {
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        while this.chunk.is_empty() && !this.ended {
            match ready!(Pin::new(&mut this.body).poll_frame(cx)) {
                None => this.ended = true,
                // The body's own error, carried through the decoders and
                // taken out again by `DecompressBody`.
                Some(Err(err)) => return Poll::Ready(Err(io::Error::other(err))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => {
                        this.received += data.len() as u64;
                        this.chunk = data;
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            this.trailers = Some(trailers);
                        }
                    }
                },
            }
        }
        Poll::Ready(Ok(&this.chunk))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        this.chunk.advance(amt);
        this.consumed += amt as u64;
    }
}

impl AsyncRead for EncodedSource {
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

/// The body's own error, when `err` carries one up through the decoders.
pub(super) fn body_error(err: &io::Error) -> Option<Error> {
    err.get_ref()?.downcast_ref::<Error>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(values: &[&str]) -> Parsed {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(CONTENT_ENCODING, value.parse().unwrap());
        }
        Codings::parse(&headers)
    }

    fn codings(list: &[Coding]) -> Parsed {
        let mut codings = Codings {
            list: [Coding::Gzip; MAX_CODINGS],
            len: list.len(),
        };
        codings.list[..list.len()].copy_from_slice(list);
        Parsed::Decode(codings)
    }

    #[test]
    fn content_encoding_lists_are_read_in_order_across_fields() {
        assert_eq!(parse(&[]), Parsed::Identity);
        assert_eq!(parse(&[" , "]), Parsed::Identity);
        assert_eq!(parse(&["GZIP"]), codings(&[Coding::Gzip]));
        assert_eq!(
            parse(&["x-gzip, deflate", "compress"]),
            codings(&[Coding::Gzip, Coding::Deflate, Coding::Deflate])
        );
        assert_eq!(parse(&["gzip, identity"]), Parsed::Unknown);
        assert_eq!(parse(&["lzma"]), Parsed::Unknown);
    }

    #[test]
    fn more_than_five_codings_are_too_many_even_if_unknown() {
        assert_eq!(
            parse(&["gzip, gzip, gzip, gzip, gzip"]),
            codings(&[Coding::Gzip; 5])
        );
        assert_eq!(
            parse(&["gzip, gzip, gzip, gzip, gzip, gzip"]),
            Parsed::TooMany(6)
        );
        assert_eq!(
            parse(&["gzip, gzip, gzip", "gzip, gzip, lzma"]),
            Parsed::TooMany(6)
        );
    }

    #[test]
    fn codings_display_as_the_header_lists_them() {
        let Parsed::Decode(list) = parse(&["x-gzip,deflate"]) else {
            panic!("expected codings");
        };
        assert_eq!(list.to_string(), "gzip, deflate");
    }
}
