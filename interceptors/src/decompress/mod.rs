//! The decompress interceptor: decodes `content-encoding`d response bodies
//! as they are read (undici's `interceptors.decompress`).
//!
//! ```
//! use tower::ServiceBuilder;
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt};
//! use undici_interceptors::decompress::DecompressLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # use tokio::io::AsyncReadExt;
//! # let mut gzip = Vec::new();
//! # async_compression::tokio::bufread::GzipEncoder::new(&b"hello world"[..])
//! #     .read_to_end(&mut gzip)
//! #     .await
//! #     .unwrap();
//! # let server = undici_test_support::TestServer::http1(move |_req| {
//! #     let gzip = gzip.clone();
//! #     async move {
//! #         http::Response::builder()
//! #             .header("content-encoding", "gzip")
//! #             .body(undici_test_support::body::full(gzip))
//! #             .unwrap()
//! #     }
//! # })
//! # .await;
//! # let origin = server.url();
//! let client = Client::new(origin.as_str())?;
//!
//! // As a tower layer in a ServiceBuilder stack.
//! let service = ServiceBuilder::new()
//!     .layer(DecompressLayer::new())
//!     .service(client.clone());
//! let response = service.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
//! assert!(response.headers().get("content-encoding").is_none());
//! assert_eq!(response.into_body().text().await?, "hello world");
//!
//! // Composed onto the client: close, destroy and events still reach it.
//! let dispatcher = client.compose(
//!     DecompressLayer::new()
//!         .max_decoded_size(512 * 1024 * 1024)
//!         .accept_encoding(true),
//! );
//! let response = dispatcher.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
//! assert_eq!(response.into_body().text().await?, "hello world");
//! dispatcher.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # What is decoded
//!
//! As undici does:
//!
//! - `gzip` and `x-gzip` (every member of a multi-member body);
//! - `deflate`, and also `compress` and `x-compress`, as zlib-wrapped
//!   deflate (RFC 9110 §8.4.1.2). `compress` is really LZW, which is not
//!   supported: undici maps it to inflate anyway, and so does this
//!   interceptor, so such a body fails to decode instead of passing
//!   through. Raw deflate without the zlib wrapper fails to decode too;
//! - `br` with the `decompress-br` feature, `zstd` with `decompress-zstd`
//!   (without them, those codings are unknown and pass through).
//!
//! A list (`content-encoding: gzip, br`, or several fields) is undone in
//! reverse, the last coding applied first. More than 5 codings is an
//! `UND_ERR_NOT_SUPPORTED` error ("too many content-encodings"), whether
//! or not they are known. A coding that is not known anywhere in the list
//! leaves the response untouched, undecoded, as in undici.
//!
//! Responses are passed through undecoded for `HEAD` requests, statuses
//! under 200, the [`skip_status_codes`](DecompressLayer::skip_status_codes)
//! (`204` and `304`), error statuses (400 and up) while
//! [`skip_error_responses`](DecompressLayer::skip_error_responses) is on,
//! and responses without `content-encoding`. A decoded response loses its
//! `content-encoding` and `content-length` headers; an empty body decodes
//! to an empty body, and trailers come after the decoded data.
//!
//! As undici, it does not add `accept-encoding`; turn on
//! [`accept_encoding`](DecompressLayer::accept_encoding) to offer the codings
//! compiled in.
//!
//! # Streaming and bounds
//!
//! The body is decoded as the caller reads it, one frame (at most 32 KiB)
//! per read: the server is held back while the caller does not read, and
//! nothing buffers the whole body. Beyond undici, which bounds only the
//! encoded size (`max_response_size`), the decoded body is bounded: past
//! [`max_decoded_size`](DecompressLayer::max_decoded_size) (64 MiB), or
//! past [`max_ratio`](DecompressLayer::max_ratio) (100) decoded bytes per
//! encoded byte once [`ratio_threshold`](DecompressLayer::ratio_threshold)
//! (1 MiB) has been decoded, the body ends with an
//! `UND_ERR_RES_EXCEEDED_MAX_SIZE` error that names the bound. A gzip bomb
//! (1 GiB of zeros in 1 MiB) is stopped after about 1 MiB.
//!
//! # Errors
//!
//! Data that does not decode (a corrupt or truncated stream, data after
//! its end) ends the body with an error of kind
//! [`Parser`](undici_dispatcher::ErrorKind::Parser) and Node's zlib code
//! `Z_DATA_ERROR`, whatever the coding, with the decoder's error as its
//! source. An error of the body underneath (a socket error, the body
//! timeout) comes through as it is. Either way the encoded body is dropped
//! at once, which closes its HTTP/1 connection.
//!
//! # Cost
//!
//! A response that is not decoded is handed back untouched: no allocation.
//! A decoded body is boxed into [`Body`], with one
//! heap-allocated buffer per stacked coding.

mod body;
mod coding;
mod future;
mod layer;

use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH};
use http::Method;
use tower_service::Service;
use undici_dispatcher::{Body, Error, Request, Response};

use body::DecompressBody;
use coding::{Codings, Parsed, MAX_CODINGS};
use layer::Config;

pub use future::ResponseFuture;
pub use layer::{
    DecompressLayer, DEFAULT_MAX_DECODED_SIZE, DEFAULT_MAX_RATIO, DEFAULT_RATIO_THRESHOLD,
};

/// The decompress service: decodes the bodies of responses with a
/// `content-encoding`. Built by [`DecompressLayer`].
#[derive(Clone, Debug)]
pub struct Decompress<S> {
    inner: S,
    config: Arc<Config>,
}

impl<S> Decompress<S> {
    /// The service underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The service underneath, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service underneath.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<Request> for Decompress<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, mut request: Request) -> Self::Future {
        if self.config.accept_encoding && !request.headers().contains_key(ACCEPT_ENCODING) {
            request.headers_mut().insert(
                ACCEPT_ENCODING,
                HeaderValue::from_static(coding::ACCEPT_ENCODING),
            );
        }
        // A response to HEAD has no body, whatever its headers say.
        let config = (request.method() != Method::HEAD).then(|| self.config.clone());
        ResponseFuture::new(self.inner.call(request), config)
    }
}

impl Config {
    /// undici's rules for which responses are decoded.
    fn skips(&self, response: &Response) -> bool {
        let status = response.status();
        status.as_u16() < 200
            || self.skip_status_codes.contains(&status)
            || (self.skip_error_responses && status.as_u16() >= 400)
    }

    /// The response with its body decoded as it is read, or as it is when
    /// there is nothing to decode.
    fn decode(&self, response: Response) -> Result<Response, Error> {
        // Most responses are not encoded: a look along their few header
        // names costs less than a hashed lookup and a parse of nothing.
        let encoded = response
            .headers()
            .keys()
            .any(|name| name == CONTENT_ENCODING);
        if !encoded || self.skips(&response) {
            return Ok(response);
        }
        let codings = match Codings::parse(response.headers()) {
            Parsed::Identity | Parsed::Unknown => return Ok(response),
            Parsed::TooMany(count) => {
                return Err(Error::not_supported(format!(
                    "too many content-encodings in response: {count}, maximum allowed is \
                     {MAX_CODINGS}"
                )))
            }
            Parsed::Decode(codings) => codings,
        };
        let (mut head, body) = response.into_parts();
        head.headers.remove(CONTENT_ENCODING);
        head.headers.remove(CONTENT_LENGTH);
        let decoded = DecompressBody::new(codings.decoder(body), codings, self.limits);
        Ok(Response::from_parts(head, Body::wrap(decoded)))
    }
}
