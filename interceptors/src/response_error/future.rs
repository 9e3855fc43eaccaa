//! The responseError interceptor's response future, and how an error body
//! is read.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::future::BoxFuture;
use http::header::CONTENT_TYPE;
use http::HeaderMap;
use http_body::Body as _;
use pin_project_lite::pin_project;
use undici_dispatcher::{Body, Error, ErrorBody, ErrorKind, Response};

pin_project! {
    /// The response future of [`ResponseError`](super::ResponseError):
    /// a response under 400 as it is, an `UND_ERR_RESPONSE` error for the
    /// others.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Waiting { #[pin] inner: F, max_body_size: u64 },
        // Boxed: only error responses get here.
        Reading { error: BoxFuture<'static, Error> },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, max_body_size: u64) -> Self {
        ResponseFuture {
            state: State::Waiting {
                inner,
                max_body_size,
            },
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Waiting {
                    inner,
                    max_body_size,
                } => {
                    let response = ready!(inner.poll(cx))?;
                    if response.status().as_u16() < 400 {
                        return Poll::Ready(Ok(response));
                    }
                    State::Reading {
                        error: Box::pin(response_error(response, *max_body_size)),
                    }
                }
                StateProj::Reading { error } => return error.as_mut().poll(cx).map(Err),
            };
            this.state.set(next);
        }
    }
}

/// undici's `ResponseError('Response Error', status, { body, headers })`,
/// or the error that broke the body while it was read.
async fn response_error(response: Response, max_body_size: u64) -> Error {
    let (head, body) = response.into_parts();
    let bytes = match read_bounded(body, max_body_size).await {
        Ok(bytes) => bytes,
        Err(err) => return err,
    };
    let body = match BodyType::of(&head.headers) {
        BodyType::Json => parse_json(bytes).await,
        BodyType::Text => ErrorBody::Text(text(&bytes)),
        BodyType::Other => ErrorBody::Bytes(bytes),
    };
    Error::new(ErrorKind::Response, "Response Error")
        .with_status(head.status)
        .with_headers(head.headers)
        .with_body(body)
}

/// Reads `body` to its end, or up to `max` bytes: the rest is dropped.
async fn read_bounded(mut body: Body, max: u64) -> Result<Bytes, Error> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let mut buf = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let room = max - buf.len();
        if data.len() > room {
            buf.extend_from_slice(&data[..room]);
            break;
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// JSON as undici parses it; a body that does not parse stays text.
async fn parse_json(bytes: Bytes) -> ErrorBody {
    match Body::full(bytes.clone()).json().await {
        Ok(value) => ErrorBody::Json(value),
        Err(_) => ErrorBody::Text(text(&bytes)),
    }
}

/// UTF-8 text as undici's `TextDecoder` reads it: invalid sequences become
/// U+FFFD.
fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// How an error body is kept, by its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyType {
    Json,
    Text,
    Other,
}

impl BodyType {
    fn of(headers: &HeaderMap) -> BodyType {
        let Some(value) = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
        else {
            return BodyType::Other;
        };
        let essence = value.split(';').next().unwrap_or_default().trim();
        let is = |media_type: &str| essence.eq_ignore_ascii_case(media_type);
        let ends_with_json = essence.len() > 5
            && essence.is_char_boundary(essence.len() - 5)
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json");
        if is("application/json") || ends_with_json {
            BodyType::Json
        } else if is("text/plain") {
            BodyType::Text
        } else {
            BodyType::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_type(content_type: &str) -> BodyType {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, content_type.parse().unwrap());
        BodyType::of(&headers)
    }

    #[test]
    fn media_types_are_matched_without_parameters_or_case() {
        assert_eq!(body_type("application/json"), BodyType::Json);
        assert_eq!(body_type("Application/JSON; charset=utf-8"), BodyType::Json);
        assert_eq!(body_type("application/problem+json"), BodyType::Json);
        assert_eq!(body_type("text/plain;charset=latin1"), BodyType::Text);
        assert_eq!(body_type("text/html"), BodyType::Other);
        assert_eq!(body_type("application/jsonx"), BodyType::Other);
        assert_eq!(body_type("+json"), BodyType::Other);
        assert_eq!(BodyType::of(&HeaderMap::new()), BodyType::Other);
    }

    #[tokio::test]
    async fn bodies_are_read_up_to_the_bound() {
        let body = Body::from_stream(futures_util::stream::iter(vec![
            Ok::<_, std::io::Error>("abc"),
            Ok("def"),
            Ok("ghi"),
        ]));
        assert_eq!(read_bounded(body, 5).await.unwrap(), "abcde");
        let whole = Body::from("abcdef");
        assert_eq!(read_bounded(whole, 6).await.unwrap(), "abcdef");
    }
}
