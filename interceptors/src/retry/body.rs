//! The resumable body: a download that breaks off is continued with a
//! `Range` request, in the same body the caller is reading.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use http_body::{Body as _, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower_service::Service;
use undici_dispatcher::{Body, Error, ErrorKind, Request, Response};

use super::future::{Attempts, Resume};
use super::policy::RetryPolicy;

/// Where a download stands: the next byte expected, the last byte of the
/// representation, and its strong validator.
#[derive(Debug)]
struct Checkpoint {
    position: u64,
    end: Option<u64>,
    etag: HeaderValue,
}

impl Checkpoint {
    /// undici records `start`, `end` and the ETag on the first 200 or
    /// 206. This layer resumes only with a strong ETag: without one the
    /// rest could come from another version of the resource (undici then
    /// sends `Range` without `If-Match`).
    fn of(response: &Response, method: &Method) -> Option<Checkpoint> {
        if method == Method::HEAD || response.body().is_end_stream() {
            return None;
        }
        let etag = strong_etag(response.headers())?;
        let (position, end) = match response.status() {
            // Without a length (chunked) the range asks for the rest.
            StatusCode::OK => (
                0,
                content_length(response.headers()).and_then(|length| length.checked_sub(1)),
            ),
            StatusCode::PARTIAL_CONTENT => {
                let range = ContentRange::of(response.headers())?;
                (range.start, Some(range.end))
            }
            _ => return None,
        };
        Some(Checkpoint {
            position,
            end,
            etag,
        })
    }

    /// True when every byte up to the end (if known) was received.
    fn is_complete(&self) -> bool {
        self.end
            .is_none_or(|end| self.position == end.saturating_add(1))
    }

    /// `Range: bytes=<received>-<end>` and `If-Match: <etag>`.
    fn resume(&self) -> Option<Resume> {
        let range = match self.end {
            Some(end) => format!("bytes={}-{end}", self.position),
            None => format!("bytes={}-", self.position),
        };
        Some(Resume {
            range: HeaderValue::from_str(&range).ok()?,
            if_match: self.etag.clone(),
        })
    }
}

fn strong_etag(headers: &HeaderMap) -> Option<HeaderValue> {
    let etag = headers.get(ETAG)?;
    (!etag.as_bytes().starts_with(b"W/")).then(|| etag.clone())
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `Content-Range: bytes <start>-<end>/<size or *>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct ContentRange {
    start: u64,
    end: u64,
}

impl ContentRange {
    fn of(headers: &HeaderMap) -> Option<ContentRange> {
        let value = headers.get(CONTENT_RANGE)?.to_str().ok()?.trim();
        let range = value.strip_prefix("bytes ")?.trim_start();
        let (span, size) = range.split_once('/')?;
        let (start, end) = span.split_once('-')?;
        let start: u64 = start.trim().parse().ok()?;
        let end: u64 = end.trim().parse().ok()?;
        let size = size.trim();
        if start > end || (size != "*" && size.parse::<u64>().ok()? <= end) {
            return None;
        }
        Some(ContentRange { start, end })
    }
}

/// Wraps the body of a successful response so that it resumes when it
/// breaks off; a response that cannot be resumed (no strong ETag, a HEAD,
/// an empty body, a request that may not be sent again) is left as it
/// is, at no cost (it is not even moved).
pub(crate) fn resume_on_break<S, P>(response: &mut Response, attempts: Pin<&mut Attempts<S, P>>)
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: RetryPolicy,
{
    let Some(method) = attempts.retryable_method() else {
        return;
    };
    let Some(checkpoint) = Checkpoint::of(response, method) else {
        return;
    };
    let attempts = attempts.detach();
    let body = std::mem::take(response.body_mut());
    *response.body_mut() = Body::wrap(ResumableBody {
        body: Some(body),
        checkpoint,
        resuming: false,
        attempts,
    });
}

pin_project! {
    /// The body of a download that resumes: bytes from the first response,
    /// then from each `206 Partial Content` that continues it.
    struct ResumableBody<S, P>
    where
        S: Service<Request>,
    {
        body: Option<Body>,
        checkpoint: Checkpoint,
        resuming: bool,
        #[pin]
        attempts: Attempts<S, P>,
    }
}

impl<S, P> http_body::Body for ResumableBody<S, P>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: RetryPolicy,
{
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let mut this = self.project();
        loop {
            if let Some(body) = this.body.as_mut() {
                match ready!(Pin::new(body).poll_frame(cx)) {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            this.checkpoint.position += data.len() as u64;
                        }
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    None => {
                        *this.body = None;
                        return Poll::Ready(check_complete(this.checkpoint).map(Err));
                    }
                    Some(Err(error)) => {
                        *this.body = None;
                        let Some(resume) = this.checkpoint.resume() else {
                            return Poll::Ready(Some(Err(error)));
                        };
                        if !this.attempts.as_mut().retry_body(&error, resume) {
                            return Poll::Ready(Some(Err(error)));
                        }
                        *this.resuming = true;
                    }
                }
            } else if *this.resuming {
                let result = ready!(this.attempts.as_mut().poll_response(cx));
                *this.resuming = false;
                let retries = this.attempts.retries();
                match result.and_then(|response| continuation(response, this.checkpoint, retries)) {
                    Ok(body) => *this.body = Some(body),
                    Err(error) => return Poll::Ready(Some(Err(error))),
                }
            } else {
                return Poll::Ready(None);
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.body {
            Some(body) => body.is_end_stream() && self.checkpoint.is_complete(),
            None => !self.resuming,
        }
    }

    fn size_hint(&self) -> SizeHint {
        if self.body.is_none() && !self.resuming {
            return SizeHint::with_exact(0);
        }
        match (self.checkpoint.end, &self.body) {
            (Some(end), _) => {
                SizeHint::with_exact((end + 1).saturating_sub(self.checkpoint.position))
            }
            (None, Some(body)) => body.size_hint(),
            (None, None) => SizeHint::default(),
        }
    }
}

/// At the end, the bytes received must reach the representation's end.
fn check_complete(checkpoint: &Checkpoint) -> Option<Error> {
    let end = checkpoint.end?;
    (!checkpoint.is_complete()).then(|| {
        Error::new(
            ErrorKind::RequestRetry,
            format!(
                "Content-Length mismatch: the body ended after {} bytes, {} were expected",
                checkpoint.position,
                end.saturating_add(1)
            ),
        )
    })
}

/// Checks that `response` continues the download where it broke off, as
/// undici does: a 206 whose `Content-Range` starts at the bytes received,
/// with the same ETag and a `Content-Length` that covers the rest.
fn continuation(
    response: Response,
    checkpoint: &mut Checkpoint,
    retries: u32,
) -> Result<Body, Error> {
    let (parts, body) = response.into_parts();
    let status = parts.status;
    let fail = |message: &'static str| {
        Error::new(ErrorKind::RequestRetry, message)
            .with_status(status)
            .with_headers(parts.headers.clone())
            .with_retry_count(retries)
    };
    if status.as_u16() >= 300 {
        return Err(fail("Request failed"));
    }
    let same_etag = parts.headers.get(ETAG) == Some(&checkpoint.etag);
    let length = content_length(&parts.headers);
    if status == StatusCode::OK && checkpoint.position == 0 {
        // Nothing was passed on yet: the whole representation again is as
        // good, if it is the same one.
        if !same_etag {
            return Err(fail("ETag mismatch"));
        }
        if checkpoint.end.is_some_and(|end| length != Some(end + 1)) {
            return Err(fail("Content-Length mismatch"));
        }
        return Ok(body);
    }
    if status != StatusCode::PARTIAL_CONTENT {
        return Err(fail(
            "server does not support the range header and the payload was partially consumed",
        ));
    }
    let Some(range) = ContentRange::of(&parts.headers) else {
        return Err(fail("Content-Range mismatch"));
    };
    if range.start != checkpoint.position || checkpoint.end.is_some_and(|end| end != range.end) {
        return Err(fail("Content-Range mismatch"));
    }
    if !same_etag {
        return Err(fail("ETag mismatch"));
    }
    // undici compares Content-Length with the range; a 206 without one
    // (chunked) cannot be checked, and fails as a mismatch.
    if length != Some(range.end - range.start + 1) {
        return Err(fail("Content-Length mismatch"));
    }
    checkpoint.end = Some(range.end);
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| {
                (
                    http::HeaderName::from_static(name),
                    HeaderValue::from_static(value),
                )
            })
            .collect()
    }

    #[test]
    fn content_range_is_parsed_and_checked() {
        let range = |value| ContentRange::of(&headers(&[("content-range", value)]));
        assert_eq!(
            range("bytes 5-9/10"),
            Some(ContentRange { start: 5, end: 9 })
        );
        assert_eq!(
            range("bytes 5-9/*"),
            Some(ContentRange { start: 5, end: 9 })
        );
        assert_eq!(range("bytes 9-5/10"), None);
        assert_eq!(range("bytes 5-10/10"), None);
        assert_eq!(range("bytes */10"), None);
        assert_eq!(range("items 0-1/2"), None);
        assert_eq!(range("bytes 0-99999999999999999999/*"), None);
    }

    #[test]
    fn weak_etags_are_not_validators() {
        assert!(strong_etag(&headers(&[("etag", "W/\"a\"")])).is_none());
        assert!(strong_etag(&headers(&[("etag", "\"a\"")])).is_some());
    }

    fn checkpoint(position: u64, end: Option<u64>) -> Checkpoint {
        Checkpoint {
            position,
            end,
            etag: HeaderValue::from_static("\"v1\""),
        }
    }

    fn answer(status: u16, pairs: &[(&'static str, &'static str)]) -> Response {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        *response.headers_mut() = headers(pairs);
        response
    }

    #[test]
    fn continuations_must_match_the_checkpoint() {
        let message = |response, checkpoint: &mut Checkpoint| {
            continuation(response, checkpoint, 1)
                .err()
                .map(|err| err.message().to_owned())
        };
        let good = [
            ("content-range", "bytes 5-9/10"),
            ("etag", "\"v1\""),
            ("content-length", "5"),
        ];
        assert_eq!(
            message(answer(206, &good), &mut checkpoint(5, Some(9))),
            None
        );
        assert_eq!(
            message(
                answer(200, &[("etag", "\"v1\"")]),
                &mut checkpoint(5, Some(9))
            )
            .as_deref(),
            Some("server does not support the range header and the payload was partially consumed")
        );
        let moved = [("content-range", "bytes 4-9/10"), ("etag", "\"v1\"")];
        assert_eq!(
            message(answer(206, &moved), &mut checkpoint(5, Some(9))).as_deref(),
            Some("Content-Range mismatch")
        );
        let changed = [("content-range", "bytes 5-9/10"), ("etag", "\"v2\"")];
        assert_eq!(
            message(answer(206, &changed), &mut checkpoint(5, Some(9))).as_deref(),
            Some("ETag mismatch")
        );
        let long = [
            ("content-range", "bytes 5-9/10"),
            ("etag", "\"v1\""),
            ("content-length", "6"),
        ];
        assert_eq!(
            message(answer(206, &long), &mut checkpoint(5, Some(9))).as_deref(),
            Some("Content-Length mismatch")
        );
        let chunked = [("content-range", "bytes 5-9/10"), ("etag", "\"v1\"")];
        assert_eq!(
            message(answer(206, &chunked), &mut checkpoint(5, Some(9))).as_deref(),
            Some("Content-Length mismatch")
        );
        let err = continuation(answer(412, &[]), &mut checkpoint(5, Some(9)), 2).unwrap_err();
        assert_eq!(err.code(), "UND_ERR_REQ_RETRY");
        assert_eq!(err.status(), Some(StatusCode::PRECONDITION_FAILED));
        assert_eq!(err.retry_count(), Some(2));
    }

    #[test]
    fn an_unknown_end_is_learnt_from_the_continuation() {
        let mut unknown = checkpoint(5, None);
        let good = [
            ("content-range", "bytes 5-9/10"),
            ("etag", "\"v1\""),
            ("content-length", "5"),
        ];
        continuation(answer(206, &good), &mut unknown, 1).unwrap();
        assert_eq!(unknown.end, Some(9));
        assert_eq!(unknown.resume().unwrap().range, "bytes=5-9");
        assert_eq!(checkpoint(3, None).resume().unwrap().range, "bytes=3-");
    }
}
