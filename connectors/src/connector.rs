//! `Connector`: undici's `buildConnector` as a tower service.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{timeout_at, Instant};
use tower_service::Service;

use crate::connection::{Connection, ConnectionInfo, Transport};
use crate::destination::{Destination, Scheme};
use crate::error::{ConnectError, ConnectErrorKind};
use crate::options::ConnectOptions;
use crate::resolve::{Name, Resolver};
use crate::tcp::{self, SocketOptions};
use crate::tls::TlsConnectors;

/// Builds a connector from undici's `buildConnector` options.
///
/// Fails with `UND_ERR_INVALID_ARG` when an option cannot be used: a PEM
/// that holds no certificate, a client certificate without its key, a trust
/// store whose feature is off, a `servername` that is no valid TLS name, a
/// keep-alive delay outside 1 s ..= 32767 s.
pub fn build_connector(options: ConnectOptions) -> Result<Connector, ConnectError> {
    options.validate()?;
    let tls = TlsConnectors::new(&options)?;
    let resolver = options.resolver.clone().unwrap_or_else(Resolver::system);
    Ok(Connector {
        inner: Arc::new(Inner {
            socket: SocketOptions::new(&options),
            options,
            tls,
            resolver,
        }),
    })
}

/// Opens connections: TCP (with happy eyeballs) or a Unix socket, then TLS
/// for `https` destinations.
///
/// A `tower::Service<Destination, Response = Connection>`; clones share one
/// configuration and one TLS session cache. A connector of the user's own
/// is any service of that shape, usually one that wraps this one to check
/// the connection before handing it on (see the crate docs).
#[derive(Clone)]
pub struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    options: ConnectOptions,
    socket: SocketOptions,
    tls: TlsConnectors,
    resolver: Resolver,
}

impl Connector {
    /// The options this connector was built from.
    pub fn options(&self) -> &ConnectOptions {
        &self.inner.options
    }

    /// Connects to `destination`, as `call` does, without the `Service`
    /// ceremony.
    pub fn connect(
        &self,
        destination: Destination,
    ) -> impl Future<Output = Result<Connection, ConnectError>> + Send + 'static {
        let inner = self.inner.clone();
        async move { inner.connect(destination).await }
    }
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("options", &self.inner.options)
            .finish()
    }
}

impl Service<Destination> for Connector {
    type Response = Connection;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Connection, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, destination: Destination) -> Self::Future {
        Box::pin(self.connect(destination))
    }
}

impl Inner {
    async fn connect(&self, mut destination: Destination) -> Result<Connection, ConnectError> {
        // A timeout too large to be an instant (`Duration::MAX`) is no
        // deadline at all rather than a panic.
        let deadline = self
            .options
            .timeout
            .and_then(|t| Some((Instant::now().checked_add(t)?, t)));
        let (transport, mut info, attempted) = match destination.take_http_socket() {
            Some((stream, info)) => {
                if destination.scheme() != Scheme::Https {
                    return Err(ConnectError::invalid(
                        "an existing socket (http_socket) can only be upgraded to TLS (https)",
                    ));
                }
                let attempted = destination.to_string();
                (Transport::Custom(stream), info, attempted)
            }
            None => {
                let target = Target {
                    host: destination.host(),
                    port: destination.port(),
                    local_address: destination.local_address_override(),
                    addresses: destination.resolved_addresses(),
                };
                self.open_socket(target, deadline).await?
            }
        };
        if destination.scheme() == Scheme::Http {
            return Ok(Connection::from_transport(transport, info));
        }
        let server_name = destination
            .servername_override()
            .or(self.options.servername.as_deref())
            .unwrap_or(destination.host());
        let allow_h2 = destination
            .allow_h2_override()
            .unwrap_or(self.options.allow_h2);
        let handshake = self.tls.handshake(transport, server_name, allow_h2, &info);
        let (transport, tls) = within(deadline, &attempted, handshake).await?;
        info.set_tls(tls);
        Ok(Connection::from_transport(transport, info))
    }

    /// Opens the plain socket: the Unix socket, or TCP to the resolved
    /// addresses. Answers what was attempted, for a later timeout message.
    async fn open_socket(
        &self,
        target: Target<'_>,
        deadline: Option<(Instant, Duration)>,
    ) -> Result<(Transport, ConnectionInfo, String), ConnectError> {
        if let Some(path) = &self.options.socket_path {
            let attempted = path.display().to_string();
            let stream = within(deadline, &attempted, connect_unix(path)).await?;
            return Ok((stream, ConnectionInfo::unix(path), attempted));
        }
        let local_address = target.local_address.or(self.options.local_address);
        let addrs = match target.addresses {
            Some(addrs) => addrs.to_vec(),
            None => {
                let resolving = self.resolve(target.host, target.port);
                within(deadline, target.host, resolving).await?
            }
        };
        let stream = tcp::connect(&addrs, local_address, &self.socket, deadline).await?;
        let local = stream.local_addr().ok();
        let remote = stream.peer_addr().ok();
        let attempted = remote.map(|r| r.to_string()).unwrap_or_default();
        Ok((
            Transport::Tcp(stream),
            ConnectionInfo::tcp(local, remote),
            attempted,
        ))
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let ips = self
            .resolver
            .resolve(Name::new(host))
            .await
            .map_err(|err| {
                ConnectError::new(
                    ConnectErrorKind::Dns,
                    format!("getaddrinfo ENOTFOUND {host}"),
                )
                .with_source(err)
            })?;
        if ips.is_empty() {
            return Err(ConnectError::new(
                ConnectErrorKind::Dns,
                format!("getaddrinfo ENOTFOUND {host}: no addresses"),
            ));
        }
        Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect())
    }
}

/// The parts of a destination that opening a socket needs (borrowed
/// apart from the destination, whose stream is not `Sync`).
struct Target<'a> {
    host: &'a str,
    port: u16,
    local_address: Option<IpAddr>,
    addresses: Option<&'a [SocketAddr]>,
}

/// Runs one step of connecting under the connector's deadline.
async fn within<T>(
    deadline: Option<(Instant, Duration)>,
    attempted: &str,
    step: impl Future<Output = Result<T, ConnectError>>,
) -> Result<T, ConnectError> {
    match deadline {
        None => step.await,
        Some((at, timeout)) => timeout_at(at, step)
            .await
            .unwrap_or_else(|_| Err(ConnectError::timeout(attempted, timeout))),
    }
}

#[cfg(unix)]
async fn connect_unix(path: &std::path::Path) -> Result<Transport, ConnectError> {
    tokio::net::UnixStream::connect(path)
        .await
        .map(Transport::Unix)
        .map_err(|err| ConnectError::io_to(err, &path.display().to_string()))
}

#[cfg(not(unix))]
async fn connect_unix(_path: &std::path::Path) -> Result<Transport, ConnectError> {
    Err(ConnectError::invalid(
        "socket_path (Unix domain sockets) is not supported on this platform",
    ))
}
