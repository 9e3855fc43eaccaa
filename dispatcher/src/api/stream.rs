//! `stream()`: the response body written into a writer the factory
//! returns, chunk by chunk, with backpressure.

use std::future::Future;

use http::{HeaderMap, StatusCode};
use http_body_util::BodyExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tower_service::Service;

use crate::error::{BoxError, Error, ErrorKind};
use crate::options::Opaque;
use crate::router::Routed;
use crate::{Request, Response};

/// What a [`stream`](crate::DispatcherExt::stream) factory sees: the
/// response head (undici's `{ statusCode, headers, opaque }`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StreamFactoryData {
    /// The response status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The request's [`RequestOptions::opaque`](crate::RequestOptions::opaque) value.
    pub opaque: Option<Opaque>,
}

/// What [`stream`](crate::DispatcherExt::stream) answers once the body
/// has been written (undici's `{ opaque, trailers }`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct StreamData {
    /// The request's opaque value.
    pub opaque: Option<Opaque>,
    /// The response trailers; empty when the server sent none.
    pub trailers: HeaderMap,
}

pub(super) fn stream<S, F, W, E>(
    service: S,
    request: Request,
    factory: F,
) -> impl Future<Output = Result<StreamData, Error>>
where
    S: Service<Request, Response = Response, Error = Error>,
    F: FnOnce(&StreamFactoryData) -> Result<W, E>,
    W: AsyncWrite + Unpin,
    E: Into<BoxError>,
{
    let sent_opaque = super::opaque_of(&request);
    write_into(
        super::start(service, request, "stream"),
        sent_opaque,
        factory,
    )
}

async fn write_into<S, F, W, E>(
    sending: Routed<S>,
    sent_opaque: Option<Opaque>,
    factory: F,
) -> Result<StreamData, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
    F: FnOnce(&StreamFactoryData) -> Result<W, E>,
    W: AsyncWrite + Unpin,
    E: Into<BoxError>,
{
    let response = sending.await?;
    let opaque = super::response_opaque(&response, sent_opaque);
    let (parts, mut body) = response.into_parts();
    let head = StreamFactoryData {
        status: parts.status,
        headers: parts.headers,
        opaque,
    };
    // On every early return below the body is dropped unread, which
    // aborts the request and closes its connection.
    let mut writer = factory(&head).map_err(factory_failed)?;
    let mut trailers = HeaderMap::new();
    while let Some(frame) = body.frame().await {
        match frame?.into_data() {
            // One chunk at a time: the next is not read until this one is
            // written, so a slow writer holds the connection back.
            Ok(chunk) => writer.write_all(&chunk).await.map_err(write_failed)?,
            Err(frame) => {
                if let Ok(received) = frame.into_trailers() {
                    trailers = received;
                }
            }
        }
    }
    writer.flush().await.map_err(write_failed)?;
    writer.shutdown().await.map_err(write_failed)?;
    Ok(StreamData {
        opaque: head.opaque,
        trailers,
    })
}

/// The factory's error: an [`Error`] as it is (undici rethrows what the
/// factory throws); anything else aborts the request and stays the source.
fn factory_failed(err: impl Into<BoxError>) -> Error {
    match err.into().downcast::<Error>() {
        Ok(err) => *err,
        Err(err) => Error::new(ErrorKind::Aborted, "the stream factory failed").with_source(err),
    }
}

fn write_failed(err: std::io::Error) -> Error {
    Error::new(
        ErrorKind::Aborted,
        "writing the response into the stream's writer failed",
    )
    .with_source(err)
}
