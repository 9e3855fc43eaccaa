//! `request()`.

use std::future::poll_fn;

use tower_service::Service;

use crate::error::Error;
use crate::{Request, Response};

pub(super) async fn request<S>(mut service: S, request: Request) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    super::refuse_connect(&request, "request")?;
    // `ready_call` by hand: one future less around the request.
    poll_fn(|cx| service.poll_ready(cx)).await?;
    service.call(request).await
}
