//! `request()`.

use tower_service::Service;

use crate::error::Error;
use crate::router::Routed;
use crate::{Request, Response};

/// Sends `request` through `service`: at once when the service is ready
/// already, as undici's `request()` starts when it is called; otherwise
/// once the returned future has waited for it.
///
/// A dispatcher of this crate is nearly always ready (its readiness is a
/// permit from an atomic count), and calling it now hands the request
/// straight to `call`: a future that waits first keeps the request in its
/// state and moves it in and out of it (two copies of a few hundred
/// bytes, and every move of the future carries the request's room).
pub(super) fn request<S>(service: S, request: Request) -> Routed<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    match super::refuse_connect(&request, "request") {
        Ok(()) => Routed::new(service, request),
        Err(error) => Routed::failed(error),
    }
}
