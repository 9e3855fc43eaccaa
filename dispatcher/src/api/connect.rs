//! `connect()`: an HTTP `CONNECT` tunnel.

use std::future::Future;

use http::{HeaderMap, Method, StatusCode};
use tower_service::Service;

use crate::error::{Error, ErrorKind};
use crate::options::Opaque;
use crate::router::Routed;
use crate::{Request, Response};

use super::upgraded::{take_over, UpgradedIo};

/// What [`connect`](crate::DispatcherExt::connect) answers (undici's
/// `{ statusCode, headers, socket, opaque }`).
#[derive(Debug)]
#[non_exhaustive]
pub struct ConnectData {
    /// The 2xx status the server accepted the tunnel with.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The tunnel.
    pub socket: UpgradedIo,
    /// The request's opaque value.
    pub opaque: Option<Opaque>,
}

/// Sent at the call, as `request()` is.
pub(super) fn connect<S>(
    service: S,
    mut request: Request,
) -> impl Future<Output = Result<ConnectData, Error>>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    *request.method_mut() = Method::CONNECT;
    let sent_opaque = super::opaque_of(&request);
    tunnel(Routed::new(service, request), sent_opaque)
}

async fn tunnel<S>(sending: Routed<S>, sent_opaque: Option<Opaque>) -> Result<ConnectData, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    let mut response = sending.await?;
    if !response.status().is_success() {
        // Dropping the response unread closes the connection, as undici's
        // `SocketError('bad connect')` destroys the socket; a refusal
        // without a body has already left the connection clean, and the
        // dispatcher may keep it, as HTTP allows.
        return Err(refused("bad connect", response));
    }
    let opaque = super::response_opaque(&response, sent_opaque);
    let socket = take_over(&mut response).await?;
    let (parts, _) = response.into_parts();
    Ok(ConnectData {
        status: parts.status,
        headers: parts.headers,
        socket,
        opaque,
    })
}

/// undici's `SocketError('bad connect' | 'bad upgrade')`, with the status
/// and headers of the answer that refused.
pub(super) fn refused(what: &'static str, response: Response) -> Error {
    let status = response.status();
    let (parts, _) = response.into_parts();
    Error::new(
        ErrorKind::Socket,
        format!("{what}: the server answered {status}"),
    )
    .with_status(status)
    .with_headers(parts.headers)
}
