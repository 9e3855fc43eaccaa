//! Name resolution: a `tower::Service<Name>` inside the connector.
//!
//! The default asks the system (`getaddrinfo`, on tokio's blocking pool).
//! The dns interceptor resolves before the connector instead and hands the
//! addresses down in [`Destination::addresses`](crate::Destination::addresses),
//! so the connector skips this step.

use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceExt};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A host name to resolve.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Name(String);

impl Name {
    /// A name to resolve.
    pub fn new(name: impl Into<String>) -> Self {
        Name(name.into())
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A type-erased resolver: any `Service<Name>` that answers IP addresses.
#[derive(Clone)]
pub struct Resolver {
    inner: BoxCloneSyncService<Name, Vec<IpAddr>, BoxError>,
}

impl Resolver {
    /// Wraps a service that resolves names to addresses.
    ///
    /// ```
    /// use std::net::{IpAddr, Ipv4Addr};
    /// use undici_connectors::{Name, Resolver};
    ///
    /// // Every name resolves to 127.0.0.1, as an /etc/hosts override would.
    /// let resolver = Resolver::new(tower::service_fn(|_name: Name| async {
    ///     Ok::<_, std::io::Error>(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])
    /// }));
    /// # let _ = resolver;
    /// ```
    pub fn new<S, I>(service: S) -> Self
    where
        S: Service<Name, Response = I> + Clone + Send + Sync + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        I: IntoIterator<Item = IpAddr>,
    {
        let service = service
            .map_response(|addrs| addrs.into_iter().collect::<Vec<_>>())
            .map_err(Into::into);
        Resolver {
            inner: BoxCloneSyncService::new(service),
        }
    }

    /// The system resolver (`getaddrinfo` on tokio's blocking pool).
    pub fn system() -> Self {
        Resolver::new(GaiResolver)
    }

    pub(crate) async fn resolve(&self, name: Name) -> Result<Vec<IpAddr>, BoxError> {
        self.inner.clone().oneshot(name).await
    }
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

/// Resolves with the operating system's `getaddrinfo`.
#[derive(Clone, Copy, Debug, Default)]
pub struct GaiResolver;

impl Service<Name> for GaiResolver {
    type Response = Vec<IpAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
            let mut ips: Vec<IpAddr> = Vec::new();
            for addr in addrs {
                if !ips.contains(&addr.ip()) {
                    ips.push(addr.ip());
                }
            }
            Ok(ips)
        })
    }
}
