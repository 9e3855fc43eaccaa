//! The global dispatcher, and the top-level functions that use it.

use std::sync::{PoisonError, RwLock};

use std::future::Future;

use tokio::io::AsyncWrite;
use undici_dispatcher::{
    Agent, Body, BoxDispatcher, BoxError, ConnectData, Dispatcher, DispatcherExt, Error, Handler,
    Pipeline, Request, RequestOptions, Response, StreamData, StreamFactoryData, UpgradeData,
};

static GLOBAL: RwLock<Option<BoxDispatcher>> = RwLock::new(None);

/// Makes `dispatcher` the one the top-level functions ([`request`], ...)
/// use, as undici's `setGlobalDispatcher`. The previous one is returned
/// (it keeps working for whoever holds it).
pub fn set_global_dispatcher<D: Dispatcher>(dispatcher: D) -> Option<BoxDispatcher> {
    let boxed = BoxDispatcher::new(dispatcher);
    GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .replace(boxed)
}

/// The global dispatcher, as undici's `getGlobalDispatcher`: the one set
/// last, or an [`Agent`] with undici's defaults, made on first use.
pub fn global_dispatcher() -> BoxDispatcher {
    if let Some(dispatcher) = GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return dispatcher.clone();
    }
    GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(|| BoxDispatcher::new(Agent::new()))
        .clone()
}

/// What the top-level functions accept: a full request, or a URL to GET.
pub trait IntoRequest {
    /// The request.
    fn into_request(self) -> Result<Request, Error>;
}

impl IntoRequest for Request {
    fn into_request(self) -> Result<Request, Error> {
        Ok(self)
    }
}

impl IntoRequest for &str {
    fn into_request(self) -> Result<Request, Error> {
        http::Request::get(self)
            .body(Body::empty())
            .map_err(|err| Error::invalid_argument(format!("invalid URL {self:?}: {err}")))
    }
}

impl IntoRequest for String {
    fn into_request(self) -> Result<Request, Error> {
        self.as_str().into_request()
    }
}

/// A URL to GET with undici's per-request options, as undici's
/// `request(url, options)`.
impl<U: IntoRequest> IntoRequest for (U, RequestOptions) {
    fn into_request(self) -> Result<Request, Error> {
        let (target, options) = self;
        let mut request = target.into_request()?;
        *RequestOptions::of_mut(&mut request) = options;
        Ok(request)
    }
}

impl IntoRequest for http::Uri {
    fn into_request(self) -> Result<Request, Error> {
        let mut request = Request::new(Body::empty());
        *request.uri_mut() = self;
        Ok(request)
    }
}

/// undici's top-level `request()`: sends `request` (a URL to GET, or a
/// full request with an absolute URL) through the global dispatcher.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), undici::Error> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// # let url = format!("{}/", server.url());
/// let response = undici::request(url.as_str()).await?;
/// assert_eq!(response.status(), 200);
/// println!("{}", response.into_body().text().await?);
/// # Ok(())
/// # }
/// ```
pub async fn request(request: impl IntoRequest) -> Result<Response, Error> {
    let request = request.into_request()?;
    global_dispatcher().request(request).await
}

/// undici's top-level `stream()` on the global dispatcher: see
/// [`DispatcherExt::stream`].
pub fn stream<F, W, E>(
    request: impl IntoRequest,
    factory: F,
) -> impl Future<Output = Result<StreamData, Error>> + Send
where
    F: FnOnce(&StreamFactoryData) -> Result<W, E> + Send,
    W: AsyncWrite + Unpin + Send,
    E: Into<BoxError>,
{
    let request = request.into_request();
    async move { global_dispatcher().stream(request?, factory).await }
}

/// undici's top-level `pipeline()` on the global dispatcher: see
/// [`DispatcherExt::pipeline`]. `request` is the head; what is written
/// into the pipeline is its body.
pub fn pipeline<H>(request: http::Request<()>, handler: H) -> Pipeline
where
    H: FnOnce(Response) -> Result<Body, Error> + Send + 'static,
{
    global_dispatcher().pipeline(request, handler)
}

/// undici's top-level `connect()` on the global dispatcher: an HTTP
/// CONNECT to the request's origin (see [`DispatcherExt::connect`]).
pub fn connect(
    request: impl IntoRequest,
) -> impl Future<Output = Result<ConnectData, Error>> + Send {
    let request = request.into_request();
    async move { global_dispatcher().connect(request?).await }
}

/// undici's top-level `upgrade()` on the global dispatcher (see
/// [`DispatcherExt::upgrade`]); `protocol` defaults to undici's
/// `"Websocket"`.
pub fn upgrade(
    request: impl IntoRequest,
    protocol: Option<&str>,
) -> impl Future<Output = Result<UpgradeData, Error>> + Send + '_ {
    let request = request.into_request();
    async move { global_dispatcher().upgrade(request?, protocol).await }
}

/// undici's `dispatch()` on the global dispatcher, with a v2 [`Handler`]
/// (see [`DispatcherExt::dispatch`]).
pub fn dispatch<H>(
    request: impl IntoRequest,
    handler: H,
) -> impl Future<Output = Result<H, Error>> + Send
where
    H: Handler + Send,
{
    let request = request.into_request();
    async move { Ok(global_dispatcher().dispatch(request?, handler).await) }
}
