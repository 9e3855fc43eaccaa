//! `Client`: one origin, one connection (HTTP/1.1 keep-alive, or HTTP/2
//! multiplexed).

mod handle;
pub(crate) mod options;

use std::fmt;

pub(crate) use handle::Handle;
pub use handle::ResponseFuture;
pub(crate) use options::forward_client_options;
pub use options::ClientOptions;

use crate::connection::{PoolConfig, Selection, Shared};
use crate::error::Error;
use crate::origin::{IntoOrigin, Origin};

/// undici's `Client`: requests to one origin over one connection.
///
/// HTTP/1.1 runs one request at a time on a keep-alive connection (hyper
/// never pipelines); HTTP/2, chosen by ALPN (`allow_h2`, on by default)
/// or by prior knowledge ([`h2c`](ClientOptions::h2c)), multiplexes up to
/// `max_concurrent_streams` requests. The connection opens on the first
/// request, or ahead of it with [`preconnect`](Client::preconnect).
///
/// A `tower::Service` and a [`Dispatcher`](crate::Dispatcher); clones share the connection.
///
/// ```
/// use undici_dispatcher::{Client, DispatcherExt, Dispatcher};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), undici_dispatcher::Error> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// # let url = server.url();
/// let client = Client::new(url.as_str())?;
/// let response = client.request(http::Request::get("/").body(().into()).unwrap()).await?;
/// assert_eq!(response.status(), 200);
/// println!("{}", response.into_body().text().await?);
/// client.close().await;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    handle: Handle,
}

impl Client {
    /// A client for `origin` (`"http://localhost:3000"`) with undici's
    /// defaults.
    pub fn new<O>(origin: O) -> Result<Client, Error>
    where
        O: IntoOrigin,
    {
        Client::builder().build(origin)
    }

    /// A builder with undici's defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            options: ClientOptions::new(),
        }
    }

    /// The origin this client sends to.
    pub fn origin(&self) -> &Origin {
        &self.handle.shared.origin
    }

    /// undici's `ClientStats`, as of now.
    pub fn stats(&self) -> ClientStats {
        let counts = self.handle.shared.counts();
        ClientStats {
            connected: counts.connected > 0,
            pending: counts.queued,
            running: counts.running,
            size: counts.queued + counts.running,
        }
    }

    /// Opens the connection now instead of on the first request, and waits
    /// until it is open (undici's `client.connect()`, named so as not to
    /// clash with [`DispatcherExt::connect`](crate::DispatcherExt::connect),
    /// the HTTP CONNECT method). Answers at once when the connection is
    /// open already; fails with the connect error if it cannot be opened,
    /// and with `UND_ERR_CLOSED` or `UND_ERR_DESTROYED` when the client is
    /// (or becomes) closed or destroyed first.
    pub async fn preconnect(&self) -> Result<(), Error> {
        match self.handle.shared.preconnect()? {
            None => Ok(()),
            Some(opened) => opened.await.unwrap_or_else(|_| Err(Error::closed())),
        }
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("origin", self.origin())
            .field("stats", &self.stats())
            .finish()
    }
}

/// Builds a [`Client`]; every setter is a [`ClientOptions`] one.
#[derive(Clone, Debug)]
pub struct ClientBuilder {
    pub(crate) options: ClientOptions,
}

impl ClientBuilder {
    forward_client_options!();

    /// The client for `origin`. Fails on invalid options
    /// (`UND_ERR_INVALID_ARG`, `UND_ERR_NOT_SUPPORTED` for pipelining) or
    /// an origin that is not an absolute `http`/`https` URL.
    pub fn build<O>(self, origin: O) -> Result<Client, Error>
    where
        O: IntoOrigin,
    {
        let origin = origin.into_origin()?;
        let config = PoolConfig {
            limit: Some(1),
            client_ttl: None,
            selection: Selection::Warmest,
            kind: "Client",
            budget: None,
        };
        let shared = Shared::new(origin, self.options, config)?;
        Ok(Client {
            handle: Handle::new(shared),
        })
    }
}

/// undici's `ClientStats`: a snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Whether the connection is open.
    pub connected: bool,
    /// Requests waiting for the connection.
    pub pending: usize,
    /// Requests in flight (sent, response not fully read).
    pub running: usize,
    /// `pending + running`.
    pub size: usize,
}

/// Implements `Service` and `Dispatcher` for a type that wraps a
/// `Handle` in a field named `handle`: Client, Pool, RoundRobinPool.
macro_rules! pooled_dispatcher {
    ($name:ident) => {
        impl tower_service::Service<$crate::Request> for $name {
            type Response = $crate::Response;
            type Error = $crate::Error;
            type Future = $crate::ResponseFuture;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), $crate::Error>> {
                self.handle.poll_ready(cx)
            }

            fn call(&mut self, request: $crate::Request) -> $crate::ResponseFuture {
                self.handle.call(request)
            }
        }

        impl $crate::Dispatcher for $name {
            fn close(&self) -> futures_util::future::BoxFuture<'static, ()> {
                let closed = self.handle.shared.close();
                Box::pin(async move {
                    let _ = closed.await;
                })
            }

            fn destroy(
                &self,
                reason: Option<$crate::Error>,
            ) -> futures_util::future::BoxFuture<'static, ()> {
                self.handle.shared.destroy(reason);
                Box::pin(std::future::ready(()))
            }

            fn events(&self) -> $crate::Events {
                self.handle.shared.events.subscribe()
            }

            fn is_closed(&self) -> bool {
                self.handle.shared.is_closed()
            }

            fn is_destroyed(&self) -> bool {
                self.handle.shared.is_destroyed()
            }

            fn is_idle(&self) -> bool {
                self.handle.shared.is_idle()
            }

            fn is_busy(&self) -> bool {
                self.handle.shared.is_busy()
            }
        }
    };
}

pub(crate) use pooled_dispatcher;

pooled_dispatcher!(Client);
