//! `upgrade()`: switching the connection to another protocol (a 101).

use std::future::Future;

use http::{HeaderMap, StatusCode};
use tower_service::Service;

use crate::error::Error;
use crate::options::{Opaque, RequestOptions};
use crate::router::Routed;
use crate::{Request, Response};

use super::connect::refused;
use super::upgraded::{take_over, UpgradedIo};

/// undici's default upgrade protocol.
const DEFAULT_PROTOCOL: &str = "Websocket";

/// What [`upgrade`](crate::DispatcherExt::upgrade) answers (undici's
/// `{ headers, socket, opaque }`).
#[derive(Debug)]
#[non_exhaustive]
pub struct UpgradeData {
    /// The headers of the 101 answer (`upgrade` says which protocol).
    pub headers: HeaderMap,
    /// The upgraded connection.
    pub socket: UpgradedIo,
    /// The request's opaque value.
    pub opaque: Option<Opaque>,
}

/// Sent at the call, as `request()` is.
pub(super) fn upgrade<S>(
    service: S,
    mut request: Request,
    protocol: Option<&str>,
) -> impl Future<Output = Result<UpgradeData, Error>>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    let options = std::mem::take(RequestOptions::of_mut(&mut request));
    let protocol = protocol
        .or(options.upgrade_protocol())
        .unwrap_or(DEFAULT_PROTOCOL)
        .to_owned();
    // The dispatcher adds `connection: upgrade` and `upgrade: <protocol>`
    // and lets go of the connection on a 101.
    *RequestOptions::of_mut(&mut request) = options.upgrade(protocol);
    let sent_opaque = super::opaque_of(&request);
    switch(super::start(service, request, "upgrade"), sent_opaque)
}

async fn switch<S>(sending: Routed<S>, sent_opaque: Option<Opaque>) -> Result<UpgradeData, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    let mut response = sending.await?;
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Err(refused("bad upgrade", response));
    }
    let opaque = super::response_opaque(&response, sent_opaque);
    let socket = take_over(&mut response).await?;
    let (parts, _) = response.into_parts();
    Ok(UpgradeData {
        headers: parts.headers,
        socket,
        opaque,
    })
}
