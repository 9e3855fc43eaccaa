//! `DispatcherExt`: undici's `request`, `stream`, `pipeline`, `connect`,
//! `upgrade` and `dispatch`, on any service of the contract's shape.

mod request;

use std::future::Future;

use tower_service::Service;

use crate::error::Error;
use crate::{Request, Response};

/// undici's request APIs, for every `Service<Request, Response = Response,
/// Error = Error>` that can be cloned: the dispatchers of this crate,
/// composed ones, and any tower stack over them.
///
/// Each call clones the service (clones share one pool), waits for it to
/// be ready, and calls it, so `&self` is enough, as with undici.
pub trait DispatcherExt:
    Service<Request, Response = Response, Error = Error, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
    /// undici's `request()`: sends the request and answers the response,
    /// whose body is still to be read (or dumped). A `CONNECT` request is
    /// refused (`UND_ERR_INVALID_ARG`): use `connect`.
    fn request(&self, request: Request) -> impl Future<Output = Result<Response, Error>> + Send {
        request::request(self.clone(), request)
    }
}

impl<S> DispatcherExt for S where
    S: Service<Request, Response = Response, Error = Error, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}
