//! `request()`.

use http::Method;
use tower::ServiceExt;
use tower_service::Service;

use crate::error::Error;
use crate::{Request, Response};

pub(super) async fn request<S>(service: S, request: Request) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    if request.method() == Method::CONNECT {
        return Err(Error::invalid_argument(
            "invalid method: CONNECT goes through connect(), not request()",
        ));
    }
    service.oneshot(request).await
}
