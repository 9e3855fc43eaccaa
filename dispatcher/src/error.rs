//! `Error`: one error type for every dispatcher and interceptor, with
//! undici's code strings.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use undici_connectors::ConnectError;

/// A boxed error, as tower and hyper pass them around.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a request failed.
///
/// Cheap to clone (the cause is shared). Opaque like hyper's and tokio's errors: branch on [`Error::kind`], the
/// predicates (`is_timeout()`, `is_connect()`, ...) or undici's
/// [`Error::code`]. The cause stays reachable through
/// [`std::error::Error::source`]: a [`ConnectError`], a `hyper::Error`, an
/// `io::Error`, or the reason given to `destroy`.
#[derive(Clone)]
pub struct Error {
    inner: Box<Inner>,
}

#[derive(Clone)]
struct Inner {
    kind: ErrorKind,
    code: &'static str,
    message: Cow<'static, str>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
    socket: Option<SocketInfo>,
    response: Option<ResponseInfo>,
}

/// The status, headers and body of the response an error is about
/// (`UND_ERR_RESPONSE`, `UND_ERR_REQ_RETRY`).
#[derive(Clone, Debug, Default)]
struct ResponseInfo {
    status: Option<StatusCode>,
    headers: Option<HeaderMap>,
    body: Option<ErrorBody>,
    retry_count: Option<u32>,
}

/// The addresses of the socket a `UND_ERR_SOCKET` error happened on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketInfo {
    /// Our end of the connection.
    pub local: Option<SocketAddr>,
    /// The server's end.
    pub remote: Option<SocketAddr>,
}

/// The body an error carries, as the responseError interceptor read it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum ErrorBody {
    /// Parsed JSON (`content-type: application/json`).
    #[cfg(feature = "json")]
    Json(serde_json::Value),
    /// UTF-8 text (`text/plain`, or JSON that did not parse).
    Text(String),
    /// The raw bytes of any other content type.
    Bytes(Bytes),
}

/// The kinds of failure, one per undici error class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Connecting failed; the code is the connector's
    /// (`UND_ERR_CONNECT_TIMEOUT`, `ECONNREFUSED`, a TLS code...).
    Connect,
    /// The response headers did not arrive within `headers_timeout`.
    HeadersTimeout,
    /// The body stalled longer than `body_timeout` between chunks.
    BodyTimeout,
    /// The connection failed or the server closed it mid-request.
    Socket,
    /// The request was aborted (future or body dropped, controller abort).
    Aborted,
    /// The dispatcher is closed and takes no new requests.
    Closed,
    /// The dispatcher was destroyed.
    Destroyed,
    /// An option or argument is invalid.
    InvalidArgument,
    /// A `stream` factory or `pipeline` handler returned something unusable.
    InvalidReturnValue,
    /// The response headers exceed `max_header_size`.
    HeadersOverflow,
    /// The response body exceeds `max_response_size`.
    ResponseExceededMaxSize,
    /// The request body does not match its `content-length`.
    RequestContentLengthMismatch,
    /// The response body does not match its `content-length`.
    ResponseContentLengthMismatch,
    /// The response is not valid HTTP; the code is llhttp's `HPE_*` name.
    Parser,
    /// Something undici (or hyper underneath) does not support.
    NotSupported,
    /// A retry failed or was impossible (`UND_ERR_REQ_RETRY`).
    RequestRetry,
    /// An error status, from the responseError interceptor
    /// (`UND_ERR_RESPONSE`).
    Response,
    /// Informational: an HTTP/2 GOAWAY, no DNS entries (`UND_ERR_INFO`).
    Informational,
    /// A BalancedPool with no upstreams.
    MissingUpstream,
    /// An Agent at its `max_origins`.
    MaxOriginsReached,
    /// A body that was already read, read again.
    BodyUnusable,
    /// The CONNECT tunnel through a proxy could not be set up.
    ProxyConnection,
    /// TLS to the proxy failed.
    SecureProxyConnection,
    /// No mock matched and real connections are disabled.
    MockNotMatched,
}

impl ErrorKind {
    /// undici's code for this kind, where it has one fixed code.
    fn default_code(self) -> &'static str {
        match self {
            ErrorKind::Connect => "UND_ERR_SOCKET",
            ErrorKind::HeadersTimeout => "UND_ERR_HEADERS_TIMEOUT",
            ErrorKind::BodyTimeout => "UND_ERR_BODY_TIMEOUT",
            ErrorKind::Socket => "UND_ERR_SOCKET",
            ErrorKind::Aborted => "UND_ERR_ABORTED",
            ErrorKind::Closed => "UND_ERR_CLOSED",
            ErrorKind::Destroyed => "UND_ERR_DESTROYED",
            ErrorKind::InvalidArgument => "UND_ERR_INVALID_ARG",
            ErrorKind::InvalidReturnValue => "UND_ERR_INVALID_RETURN_VALUE",
            ErrorKind::HeadersOverflow => "UND_ERR_HEADERS_OVERFLOW",
            ErrorKind::ResponseExceededMaxSize => "UND_ERR_RES_EXCEEDED_MAX_SIZE",
            ErrorKind::RequestContentLengthMismatch => "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
            ErrorKind::ResponseContentLengthMismatch => "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
            ErrorKind::Parser => "HPE_INVALID_CONSTANT",
            ErrorKind::NotSupported => "UND_ERR_NOT_SUPPORTED",
            ErrorKind::RequestRetry => "UND_ERR_REQ_RETRY",
            ErrorKind::Response => "UND_ERR_RESPONSE",
            ErrorKind::Informational => "UND_ERR_INFO",
            ErrorKind::MissingUpstream => "UND_ERR_BPL_MISSING_UPSTREAM",
            ErrorKind::MaxOriginsReached => "UND_ERR_MAX_ORIGINS_REACHED",
            ErrorKind::BodyUnusable => "UND_ERR_BODY_UNUSABLE",
            ErrorKind::ProxyConnection => "UND_ERR_PRX_CONN",
            ErrorKind::SecureProxyConnection => "UND_ERR_PRX_TLS",
            ErrorKind::MockNotMatched => "UND_MOCK_ERR_MOCK_NOT_MATCHED",
        }
    }
}

impl Error {
    /// An error of `kind` with undici's code for it and this message.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Error {
            inner: Box::new(Inner {
                kind,
                code: kind.default_code(),
                message: message.into(),
                source: None,
                socket: None,
                response: None,
            }),
        }
    }

    /// Keeps `source` as the cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(Arc::from(source.into()));
        self
    }

    /// Overrides the code, for kinds whose code depends on the cause
    /// (`HPE_*` parser codes, errno names).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.inner.code = code;
        self
    }

    /// Records the addresses of the socket the error happened on.
    pub fn with_socket(mut self, socket: SocketInfo) -> Self {
        self.inner.socket = Some(socket);
        self
    }

    /// Records the status of the response the error is about.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.response_mut().status = Some(status);
        self
    }

    /// Records the headers of the response the error is about.
    pub fn with_headers(mut self, headers: HeaderMap) -> Self {
        self.response_mut().headers = Some(headers);
        self
    }

    /// Records the body of the response the error is about.
    pub fn with_body(mut self, body: ErrorBody) -> Self {
        self.response_mut().body = Some(body);
        self
    }

    /// Records how many retries were made (`UND_ERR_REQ_RETRY`'s
    /// `data.count`).
    pub fn with_retry_count(mut self, count: u32) -> Self {
        self.response_mut().retry_count = Some(count);
        self
    }

    fn response_mut(&mut self) -> &mut ResponseInfo {
        self.inner.response.get_or_insert_with(Default::default)
    }

    /// `UND_ERR_ABORTED`: the request was aborted.
    pub fn aborted() -> Self {
        Error::new(ErrorKind::Aborted, "Request aborted")
    }

    /// `UND_ERR_CLOSED`: the dispatcher no longer takes requests.
    pub fn closed() -> Self {
        Error::new(ErrorKind::Closed, "The client is closed")
    }

    /// `UND_ERR_DESTROYED`: the dispatcher was destroyed.
    pub fn destroyed() -> Self {
        Error::new(ErrorKind::Destroyed, "The client is destroyed")
    }

    /// `UND_ERR_INVALID_ARG` with this message.
    pub fn invalid_argument(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// `UND_ERR_NOT_SUPPORTED` with this message.
    pub fn not_supported(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::NotSupported, message)
    }

    /// `UND_ERR_SOCKET` with this message.
    pub fn socket(message: impl Into<Cow<'static, str>>) -> Self {
        Error::new(ErrorKind::Socket, message)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// undici's code: `UND_ERR_HEADERS_TIMEOUT`, `UND_ERR_SOCKET`,
    /// `ECONNREFUSED`, `HPE_INVALID_CHUNK_SIZE`, ...
    pub fn code(&self) -> &'static str {
        self.inner.code
    }

    /// The message, without the code.
    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The socket's addresses, for socket errors.
    pub fn socket_info(&self) -> Option<SocketInfo> {
        self.inner.socket
    }

    /// The status of the response this error is about.
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.response.as_ref()?.status
    }

    /// The headers of the response this error is about.
    pub fn headers(&self) -> Option<&HeaderMap> {
        self.inner.response.as_ref()?.headers.as_ref()
    }

    /// The body of the response this error is about.
    pub fn body(&self) -> Option<&ErrorBody> {
        self.inner.response.as_ref()?.body.as_ref()
    }

    /// How many retries were made, for `UND_ERR_REQ_RETRY`.
    pub fn retry_count(&self) -> Option<u32> {
        self.inner.response.as_ref()?.retry_count
    }

    /// The connector's error, when connecting failed.
    pub fn connect_error(&self) -> Option<&ConnectError> {
        self.inner.source.as_ref()?.downcast_ref()
    }

    /// True for the connect, headers and body timeouts.
    pub fn is_timeout(&self) -> bool {
        match self.inner.kind {
            ErrorKind::HeadersTimeout | ErrorKind::BodyTimeout => true,
            ErrorKind::Connect => self.connect_error().is_some_and(ConnectError::is_timeout),
            _ => false,
        }
    }

    /// True when connecting failed.
    pub fn is_connect(&self) -> bool {
        self.inner.kind == ErrorKind::Connect
    }

    /// True for socket-level failures after connecting.
    pub fn is_socket(&self) -> bool {
        self.inner.kind == ErrorKind::Socket
    }

    /// True when the request was aborted.
    pub fn is_aborted(&self) -> bool {
        self.inner.kind == ErrorKind::Aborted
    }

    /// True when the dispatcher was closed.
    pub fn is_closed(&self) -> bool {
        self.inner.kind == ErrorKind::Closed
    }

    /// True when the dispatcher was destroyed.
    pub fn is_destroyed(&self) -> bool {
        self.inner.kind == ErrorKind::Destroyed
    }

    /// True when the response was not valid HTTP.
    pub fn is_parse(&self) -> bool {
        self.inner.kind == ErrorKind::Parser
    }

    /// Finds an error of type `E` in the source chain (a connect failure's
    /// [`ConnectError`] included, which `source()` steps over).
    pub fn find_source<E: StdError + 'static>(&self) -> Option<&E> {
        let mut next = self.stored_source();
        while let Some(err) = next {
            if let Some(found) = err.downcast_ref::<E>() {
                return Some(found);
            }
            next = err.source();
        }
        None
    }
}

impl From<ConnectError> for Error {
    fn from(err: ConnectError) -> Self {
        let code = err.code();
        // The addresses go in `socket`, which Display prints once.
        let message = err.message();
        let socket = SocketInfo {
            local: err.local_addr(),
            remote: err.remote_addr(),
        };
        let mut error = Error::new(ErrorKind::Connect, message)
            .with_code(code)
            .with_source(err);
        if socket.local.is_some() || socket.remote.is_some() {
            error = error.with_socket(socket);
        }
        error
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("kind", &self.inner.kind)
            .field("code", &self.inner.code)
            .field("message", &self.inner.message);
        if let Some(socket) = &self.inner.socket {
            d.field("socket", socket);
        }
        if let Some(response) = &self.inner.response {
            d.field("response", response);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.inner.message, self.inner.code)?;
        if let Some(SocketInfo { local, remote }) = self.inner.socket {
            match (local, remote) {
                (Some(local), Some(remote)) => write!(f, " local {local}, remote {remote}")?,
                (Some(local), None) => write!(f, " local {local}")?,
                (None, Some(remote)) => write!(f, " remote {remote}")?,
                (None, None) => {}
            }
        }
        Ok(())
    }
}

impl Error {
    fn stored_source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|source| &**source as &(dyn StdError + 'static))
    }
}

impl StdError for Error {
    /// The cause. A connect failure's message, code and addresses are the
    /// [`ConnectError`]'s, so the chain goes on with that error's own
    /// cause: a chain printer (anyhow's "Caused by") would otherwise show
    /// the same line twice. [`Error::connect_error`] and
    /// [`Error::find_source`] still reach it.
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        let source = self.stored_source()?;
        match source.downcast_ref::<ConnectError>() {
            Some(connect) => connect.source(),
            None => Some(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connect_error_is_one_line_of_the_chain() {
        let cause = std::io::Error::other("the pin did not match");
        let err = Error::from(ConnectError::rejected(cause));
        let mut chain = vec![err.to_string()];
        let mut next = err.source();
        while let Some(cause) = next {
            chain.push(cause.to_string());
            next = cause.source();
        }
        assert_eq!(chain.len(), 2, "{chain:?}");
        assert!(chain[0].starts_with("the pin did not match ("), "{chain:?}");
        assert_eq!(chain[1], "the pin did not match");
        assert!(err.find_source::<ConnectError>().is_some());
        assert!(err.find_source::<std::io::Error>().is_some());
    }

    #[test]
    fn codes_follow_undici() {
        assert_eq!(Error::closed().code(), "UND_ERR_CLOSED");
        assert_eq!(Error::destroyed().code(), "UND_ERR_DESTROYED");
        let parse = Error::new(ErrorKind::Parser, "bad chunk").with_code("HPE_INVALID_CHUNK_SIZE");
        assert_eq!(parse.code(), "HPE_INVALID_CHUNK_SIZE");
        assert!(parse.is_parse());
    }

    #[test]
    fn display_names_the_code_and_the_socket() {
        let err = Error::socket("other side closed").with_socket(SocketInfo {
            local: Some("127.0.0.1:5000".parse().unwrap()),
            remote: Some("127.0.0.1:80".parse().unwrap()),
        });
        assert_eq!(
            err.to_string(),
            "other side closed (UND_ERR_SOCKET) local 127.0.0.1:5000, remote 127.0.0.1:80"
        );
    }

    #[test]
    fn response_errors_carry_status_headers_and_body() {
        let err = Error::new(ErrorKind::Response, "Response Error")
            .with_status(StatusCode::NOT_FOUND)
            .with_body(ErrorBody::Text("missing".into()));
        assert_eq!(err.code(), "UND_ERR_RESPONSE");
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
        assert_eq!(err.body(), Some(&ErrorBody::Text("missing".into())));
    }
}
