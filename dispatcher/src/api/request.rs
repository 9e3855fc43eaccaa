//! `request()`.

use tower::ServiceExt;
use tower_service::Service;

use crate::error::Error;
use crate::{Request, Response};

pub(super) async fn request<S>(service: S, request: Request) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    super::refuse_connect(&request, "request")?;
    service.oneshot(request).await
}
