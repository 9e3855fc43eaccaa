//! `ClientOptions`: undici's Client options, shared by Client, Pool and
//! Agent.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tower::util::BoxCloneSyncService;
use tower::ServiceExt;
use tower_service::Service;
use undici_connectors::{build_connector, ConnectError, ConnectOptions, Connection, Destination};

use crate::error::{BoxError, Error};

/// A type-erased connector: any `Service<Destination>` that answers
/// connections.
pub(crate) type BoxConnector = BoxCloneSyncService<Destination, Connection, ConnectError>;

/// undici's Client options with undici's defaults. Pool and Agent take the
/// same options (their builders forward every setter), so an option reads
/// the same wherever it is set.
#[derive(Clone)]
pub struct ClientOptions {
    pub(crate) headers_timeout: Option<Duration>,
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) keep_alive_max_timeout: Duration,
    pub(crate) keep_alive_timeout_threshold: Duration,
    pub(crate) max_header_size: usize,
    pub(crate) max_response_size: Option<u64>,
    pub(crate) max_requests_per_client: Option<u32>,
    pub(crate) strict_content_length: bool,
    pub(crate) pipelining: usize,
    pub(crate) allow_h2: bool,
    pub(crate) h2c: bool,
    pub(crate) max_concurrent_streams: u32,
    pub(crate) initial_window_size: u32,
    pub(crate) connection_window_size: u32,
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) connect: ConnectOptions,
    pub(crate) connector: Option<BoxConnector>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            headers_timeout: Some(Duration::from_secs(300)),
            body_timeout: Some(Duration::from_secs(300)),
            keep_alive_timeout: Duration::from_secs(4),
            keep_alive_max_timeout: Duration::from_secs(600),
            keep_alive_timeout_threshold: Duration::from_secs(2),
            max_header_size: 16 * 1024,
            max_response_size: None,
            max_requests_per_client: None,
            strict_content_length: true,
            pipelining: 1,
            allow_h2: true,
            h2c: false,
            max_concurrent_streams: 100,
            initial_window_size: 256 * 1024,
            connection_window_size: 512 * 1024,
            ping_interval: Some(Duration::from_secs(60)),
            connect: ConnectOptions::new(),
            connector: None,
        }
    }
}

fn off_if_zero(timeout: Duration) -> Option<Duration> {
    (!timeout.is_zero()).then_some(timeout)
}

impl ClientOptions {
    /// undici's defaults.
    pub fn new() -> Self {
        ClientOptions::default()
    }

    /// Time to receive the complete response headers. Default 300 s;
    /// `Duration::ZERO` turns it off.
    pub fn headers_timeout(mut self, timeout: Duration) -> Self {
        self.headers_timeout = off_if_zero(timeout);
        self
    }

    /// Longest silence between two body chunks. Default 300 s;
    /// `Duration::ZERO` turns it off.
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body_timeout = off_if_zero(timeout);
        self
    }

    /// How long an idle connection is kept for the next request when the
    /// server gives no `Keep-Alive: timeout=` hint. Default 4 s.
    pub fn keep_alive_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_timeout = timeout;
        self
    }

    /// Cap on the server's keep-alive hint. Default 600 s.
    pub fn keep_alive_max_timeout(mut self, timeout: Duration) -> Self {
        self.keep_alive_max_timeout = timeout;
        self
    }

    /// Subtracted from the server's keep-alive hint, so that we stop using
    /// a connection before the server closes it. Default 2 s.
    pub fn keep_alive_timeout_threshold(mut self, threshold: Duration) -> Self {
        self.keep_alive_timeout_threshold = threshold;
        self
    }

    /// Largest response head (status line and headers) in bytes. Default
    /// 16 KiB; larger heads fail with `UND_ERR_HEADERS_OVERFLOW`.
    pub fn max_header_size(mut self, bytes: usize) -> Self {
        self.max_header_size = bytes;
        self
    }

    /// Largest response body in bytes; larger bodies fail with
    /// `UND_ERR_RES_EXCEEDED_MAX_SIZE` and the connection is closed.
    /// Default: no limit.
    pub fn max_response_size(mut self, bytes: u64) -> Self {
        self.max_response_size = Some(bytes);
        self
    }

    /// Requests per connection before it is closed and replaced; 0 means no
    /// limit. Default: no limit.
    pub fn max_requests_per_client(mut self, requests: u32) -> Self {
        self.max_requests_per_client = (requests > 0).then_some(requests);
        self
    }

    /// Fail a request whose body does not match its `content-length`
    /// (`UND_ERR_REQ_CONTENT_LENGTH_MISMATCH`). Default on; turning it off
    /// opens the door to request smuggling.
    pub fn strict_content_length(mut self, strict: bool) -> Self {
        self.strict_content_length = strict;
        self
    }

    /// HTTP/1.1 requests in flight per connection. Default 1. `0` turns
    /// keep-alive off. More than 1 is `UND_ERR_NOT_SUPPORTED`: hyper never
    /// pipelines HTTP/1.1, so there is no honest way to offer it.
    pub fn pipelining(mut self, depth: usize) -> Self {
        self.pipelining = depth;
        self
    }

    /// Offer HTTP/2 in ALPN for `https` origins. Default `true`, as undici 8.
    pub fn allow_h2(mut self, allow: bool) -> Self {
        self.allow_h2 = allow;
        self
    }

    /// Speak HTTP/2 over plain TCP without negotiation (h2c, "prior
    /// knowledge"), as undici's `H2CClient`. Default `false`.
    pub fn h2c(mut self, h2c: bool) -> Self {
        self.h2c = h2c;
        self
    }

    /// HTTP/2 streams in flight per connection. Default 100; the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` lowers it further.
    pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
        self.max_concurrent_streams = streams;
        self
    }

    /// HTTP/2 stream flow-control window. Default 256 KiB.
    pub fn initial_window_size(mut self, bytes: u32) -> Self {
        self.initial_window_size = bytes;
        self
    }

    /// HTTP/2 connection flow-control window. Default 512 KiB.
    pub fn connection_window_size(mut self, bytes: u32) -> Self {
        self.connection_window_size = bytes;
        self
    }

    /// HTTP/2 PING interval that keeps a session alive and detects a dead
    /// one. Default 60 s; `Duration::ZERO` turns it off.
    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = off_if_zero(interval);
        self
    }

    /// Connect timeout (TCP and TLS). Default 10 s; `Duration::ZERO` turns
    /// it off.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect = self.connect.timeout(timeout);
        self
    }

    /// Bind outgoing sockets to this local address.
    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.connect = self.connect.local_address(address);
        self
    }

    /// Connect to this Unix domain socket instead of the origin's host.
    pub fn socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.connect = self.connect.socket_path(path);
        self
    }

    /// TLS sessions cached for resumption; 0 turns resumption off.
    /// Default 100.
    pub fn max_cached_sessions(mut self, sessions: usize) -> Self {
        self.connect = self.connect.max_cached_sessions(sessions);
        self
    }

    /// Happy eyeballs over the resolved addresses. Default on.
    pub fn auto_select_family(mut self, enabled: bool) -> Self {
        self.connect = self.connect.auto_select_family(enabled);
        self
    }

    /// Every connector option at once (TLS roots, CA, client certificate,
    /// servername, ...), as undici's `connect` object. Options set one by
    /// one before this call are replaced.
    pub fn connect(mut self, options: ConnectOptions) -> Self {
        self.connect = options;
        self
    }

    /// A connector of your own (undici's `connect` function): any
    /// `tower::Service<Destination>` answering a [`Connection`], usually
    /// one that wraps [`build_connector`]'s. Its errors become connect
    /// errors; a [`ConnectError`] keeps its code.
    pub fn connector<S>(mut self, connector: S) -> Self
    where
        S: Service<Destination, Response = Connection> + Clone + Send + Sync + 'static,
        S::Future: Future<Output = Result<Connection, S::Error>> + Send + 'static,
        S::Error: Into<BoxError>,
    {
        let connector = connector.map_err(|err| {
            let err: BoxError = err.into();
            match err.downcast::<ConnectError>() {
                Ok(err) => *err,
                Err(err) => ConnectError::rejected(err),
            }
        });
        self.connector = Some(BoxCloneSyncService::new(connector));
        self
    }

    /// Checks the options and builds the connector all connections share.
    pub(crate) fn build_connector(&self) -> Result<BoxConnector, Error> {
        if self.pipelining > 1 {
            return Err(Error::not_supported(
                "pipelining > 1 is not supported: hyper never pipelines HTTP/1.1 requests",
            ));
        }
        if self.max_concurrent_streams == 0 {
            return Err(Error::invalid_argument(
                "max_concurrent_streams must be at least 1",
            ));
        }
        if self.max_header_size == 0 {
            return Err(Error::invalid_argument(
                "max_header_size must be at least 1",
            ));
        }
        if let Some(connector) = &self.connector {
            return Ok(connector.clone());
        }
        let connector = build_connector(self.connect.clone().allow_h2(self.allow_h2))?;
        Ok(BoxCloneSyncService::new(connector))
    }
}

impl fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientOptions")
            .field("headers_timeout", &self.headers_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field("keep_alive_max_timeout", &self.keep_alive_max_timeout)
            .field(
                "keep_alive_timeout_threshold",
                &self.keep_alive_timeout_threshold,
            )
            .field("max_header_size", &self.max_header_size)
            .field("max_response_size", &self.max_response_size)
            .field("max_requests_per_client", &self.max_requests_per_client)
            .field("strict_content_length", &self.strict_content_length)
            .field("pipelining", &self.pipelining)
            .field("allow_h2", &self.allow_h2)
            .field("h2c", &self.h2c)
            .field("max_concurrent_streams", &self.max_concurrent_streams)
            .field("ping_interval", &self.ping_interval)
            .field("connect", &self.connect)
            .field("connector", &self.connector.is_some())
            .finish()
    }
}

/// Forwards every [`ClientOptions`] setter to a builder's `options` field,
/// so Pool and Agent builders read like Client's.
macro_rules! forward_client_options {
    () => {
        /// See [`ClientOptions::headers_timeout`](crate::ClientOptions::headers_timeout).
        pub fn headers_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options = self.options.headers_timeout(timeout);
            self
        }
        /// See [`ClientOptions::body_timeout`](crate::ClientOptions::body_timeout).
        pub fn body_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options = self.options.body_timeout(timeout);
            self
        }
        /// See [`ClientOptions::keep_alive_timeout`](crate::ClientOptions::keep_alive_timeout).
        pub fn keep_alive_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options = self.options.keep_alive_timeout(timeout);
            self
        }
        /// See [`ClientOptions::keep_alive_max_timeout`](crate::ClientOptions::keep_alive_max_timeout).
        pub fn keep_alive_max_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options = self.options.keep_alive_max_timeout(timeout);
            self
        }
        /// See [`ClientOptions::keep_alive_timeout_threshold`](crate::ClientOptions::keep_alive_timeout_threshold).
        pub fn keep_alive_timeout_threshold(mut self, threshold: std::time::Duration) -> Self {
            self.options = self.options.keep_alive_timeout_threshold(threshold);
            self
        }
        /// See [`ClientOptions::max_header_size`](crate::ClientOptions::max_header_size).
        pub fn max_header_size(mut self, bytes: usize) -> Self {
            self.options = self.options.max_header_size(bytes);
            self
        }
        /// See [`ClientOptions::max_response_size`](crate::ClientOptions::max_response_size).
        pub fn max_response_size(mut self, bytes: u64) -> Self {
            self.options = self.options.max_response_size(bytes);
            self
        }
        /// See [`ClientOptions::max_requests_per_client`](crate::ClientOptions::max_requests_per_client).
        pub fn max_requests_per_client(mut self, requests: u32) -> Self {
            self.options = self.options.max_requests_per_client(requests);
            self
        }
        /// See [`ClientOptions::strict_content_length`](crate::ClientOptions::strict_content_length).
        pub fn strict_content_length(mut self, strict: bool) -> Self {
            self.options = self.options.strict_content_length(strict);
            self
        }
        /// See [`ClientOptions::pipelining`](crate::ClientOptions::pipelining).
        pub fn pipelining(mut self, depth: usize) -> Self {
            self.options = self.options.pipelining(depth);
            self
        }
        /// See [`ClientOptions::allow_h2`](crate::ClientOptions::allow_h2).
        pub fn allow_h2(mut self, allow: bool) -> Self {
            self.options = self.options.allow_h2(allow);
            self
        }
        /// See [`ClientOptions::h2c`](crate::ClientOptions::h2c).
        pub fn h2c(mut self, h2c: bool) -> Self {
            self.options = self.options.h2c(h2c);
            self
        }
        /// See [`ClientOptions::max_concurrent_streams`](crate::ClientOptions::max_concurrent_streams).
        pub fn max_concurrent_streams(mut self, streams: u32) -> Self {
            self.options = self.options.max_concurrent_streams(streams);
            self
        }
        /// See [`ClientOptions::initial_window_size`](crate::ClientOptions::initial_window_size).
        pub fn initial_window_size(mut self, bytes: u32) -> Self {
            self.options = self.options.initial_window_size(bytes);
            self
        }
        /// See [`ClientOptions::connection_window_size`](crate::ClientOptions::connection_window_size).
        pub fn connection_window_size(mut self, bytes: u32) -> Self {
            self.options = self.options.connection_window_size(bytes);
            self
        }
        /// See [`ClientOptions::ping_interval`](crate::ClientOptions::ping_interval).
        pub fn ping_interval(mut self, interval: std::time::Duration) -> Self {
            self.options = self.options.ping_interval(interval);
            self
        }
        /// See [`ClientOptions::connect_timeout`](crate::ClientOptions::connect_timeout).
        pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
            self.options = self.options.connect_timeout(timeout);
            self
        }
        /// See [`ClientOptions::local_address`](crate::ClientOptions::local_address).
        pub fn local_address(mut self, address: std::net::IpAddr) -> Self {
            self.options = self.options.local_address(address);
            self
        }
        /// See [`ClientOptions::socket_path`](crate::ClientOptions::socket_path).
        pub fn socket_path(mut self, path: impl Into<std::path::PathBuf>) -> Self {
            self.options = self.options.socket_path(path);
            self
        }
        /// See [`ClientOptions::max_cached_sessions`](crate::ClientOptions::max_cached_sessions).
        pub fn max_cached_sessions(mut self, sessions: usize) -> Self {
            self.options = self.options.max_cached_sessions(sessions);
            self
        }
        /// See [`ClientOptions::auto_select_family`](crate::ClientOptions::auto_select_family).
        pub fn auto_select_family(mut self, enabled: bool) -> Self {
            self.options = self.options.auto_select_family(enabled);
            self
        }
        /// See [`ClientOptions::connect`](crate::ClientOptions::connect).
        pub fn connect(mut self, options: undici_connectors::ConnectOptions) -> Self {
            self.options = self.options.connect(options);
            self
        }
        /// See [`ClientOptions::connector`](crate::ClientOptions::connector).
        pub fn connector<S>(mut self, connector: S) -> Self
        where
            S: tower_service::Service<
                    undici_connectors::Destination,
                    Response = undici_connectors::Connection,
                > + Clone
                + Send
                + Sync
                + 'static,
            S::Future: std::future::Future<Output = Result<undici_connectors::Connection, S::Error>>
                + Send
                + 'static,
            S::Error: Into<crate::BoxError>,
        {
            self.options = self.options.connector(connector);
            self
        }
        /// All connection options at once.
        pub fn options(mut self, options: crate::ClientOptions) -> Self {
            self.options = options;
            self
        }
    };
}

pub(crate) use forward_client_options;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_beyond_one_is_not_supported() {
        let err = ClientOptions::new().pipelining(10).build_connector().err();
        assert_eq!(err.map(|e| e.code()), Some("UND_ERR_NOT_SUPPORTED"));
    }

    #[test]
    fn zero_timeouts_turn_them_off() {
        let options = ClientOptions::new()
            .headers_timeout(Duration::ZERO)
            .body_timeout(Duration::from_secs(1));
        assert_eq!(options.headers_timeout, None);
        assert_eq!(options.body_timeout, Some(Duration::from_secs(1)));
    }
}
