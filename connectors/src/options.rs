//! `ConnectOptions`: undici's `buildConnector` options, with its defaults.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use rustls_pki_types::ServerName;

use crate::error::ConnectError;
use crate::resolve::Resolver;

/// Where the connector's trusted root certificates come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Roots {
    /// Mozilla's roots compiled in (the `webpki-roots` feature, on by default).
    #[default]
    WebPki,
    /// The operating system's trust store (the `native-roots` feature).
    Native,
    /// No roots: only certificates given with [`ConnectOptions::ca`] or
    /// [`ConnectOptions::extra_ca`] are trusted.
    Empty,
}

/// The options of [`build_connector`](crate::build_connector), named and
/// defaulted as undici's `buildConnector` (Node's `tls.connect` options
/// included).
///
/// Options are set with by-value chained setters:
///
/// ```
/// use std::time::Duration;
/// use undici_connectors::ConnectOptions;
///
/// let options = ConnectOptions::new()
///     .timeout(Duration::from_secs(5))
///     .max_cached_sessions(50)
///     .allow_h2(false);
/// # let _ = options;
/// ```
#[derive(Clone)]
pub struct ConnectOptions {
    pub(crate) timeout: Option<Duration>,
    pub(crate) socket_path: Option<PathBuf>,
    pub(crate) max_cached_sessions: usize,
    pub(crate) servername: Option<String>,
    pub(crate) reject_unauthorized: bool,
    pub(crate) roots: Roots,
    pub(crate) ca: Vec<Vec<u8>>,
    pub(crate) extra_ca: Vec<Vec<u8>>,
    pub(crate) cert: Option<Vec<u8>>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) allow_h2: bool,
    pub(crate) prefer_h2: bool,
    pub(crate) local_address: Option<IpAddr>,
    pub(crate) keep_alive: bool,
    pub(crate) keep_alive_initial_delay: Duration,
    pub(crate) no_delay: bool,
    pub(crate) auto_select_family: bool,
    pub(crate) auto_select_family_attempt_timeout: Duration,
    pub(crate) type_of_service: Option<u8>,
    pub(crate) crypto_provider: Option<Arc<CryptoProvider>>,
    pub(crate) tls_config: Option<Arc<rustls::ClientConfig>>,
    pub(crate) resolver: Option<Resolver>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: Some(Duration::from_secs(10)),
            socket_path: None,
            max_cached_sessions: 100,
            servername: None,
            reject_unauthorized: true,
            roots: Roots::default(),
            ca: Vec::new(),
            extra_ca: Vec::new(),
            cert: None,
            key: None,
            allow_h2: true,
            prefer_h2: false,
            local_address: None,
            keep_alive: true,
            keep_alive_initial_delay: Duration::from_secs(60),
            no_delay: true,
            auto_select_family: true,
            auto_select_family_attempt_timeout: Duration::from_millis(250),
            type_of_service: None,
            crypto_provider: None,
            tls_config: None,
            resolver: None,
        }
    }
}

impl ConnectOptions {
    /// The defaults: undici's `buildConnector` ones.
    pub fn new() -> Self {
        ConnectOptions::default()
    }

    /// Connect timeout, covering resolution, the TCP connect and the TLS
    /// handshake. Default 10 s; `Duration::ZERO` turns it off (as undici's
    /// `timeout: 0`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = (!timeout.is_zero()).then_some(timeout);
        self
    }

    /// Connect to this Unix domain socket instead of resolving the host
    /// (undici's `socketPath`). The destination's host still names the
    /// server for TLS and the `Host` header.
    pub fn socket_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.socket_path = Some(path.into());
        self
    }

    /// How many hosts to keep TLS sessions for, for resumption, shared by
    /// every connection this connector makes. Default 100; 0 turns
    /// resumption off.
    ///
    /// As in undici the limit counts hosts (TLS server names), not
    /// sessions: past it, the host used least recently is forgotten. Each
    /// host keeps one TLS 1.2 session and up to 8 TLS 1.3 tickets (tickets
    /// are single-use, so connections opened together each need one).
    /// Memory grows with the hosts actually seen, so a huge limit costs
    /// nothing up front.
    pub fn max_cached_sessions(mut self, sessions: usize) -> Self {
        self.max_cached_sessions = sessions;
        self
    }

    /// The TLS server name (SNI and certificate check) for every connection,
    /// unless the destination names one. Default: the destination's host.
    pub fn servername(mut self, name: impl Into<String>) -> Self {
        self.servername = Some(name.into());
        self
    }

    /// `false` accepts any server certificate: the connection is encrypted
    /// but the server is not authenticated, so anyone on the path can read
    /// and change the traffic. For development against self-signed
    /// certificates only. Default `true`.
    pub fn reject_unauthorized(mut self, reject: bool) -> Self {
        self.reject_unauthorized = reject;
        self
    }

    /// The trust store to start from. Default [`Roots::WebPki`].
    pub fn roots(mut self, roots: Roots) -> Self {
        self.roots = roots;
        self
    }

    /// Trust these CA certificates (PEM, one or more) *instead of* the
    /// default roots, as Node's `ca` option does. May be called repeatedly.
    pub fn ca(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.ca.push(pem.as_ref().to_vec());
        self
    }

    /// Trust these CA certificates (PEM) *in addition to* the roots.
    pub fn extra_ca(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.extra_ca.push(pem.as_ref().to_vec());
        self
    }

    /// Client certificate chain (PEM, leaf first) for mutual TLS; needs
    /// [`key`](Self::key).
    pub fn cert(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.cert = Some(pem.as_ref().to_vec());
        self
    }

    /// The client certificate's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub fn key(mut self, pem: impl AsRef<[u8]>) -> Self {
        self.key = Some(pem.as_ref().to_vec());
        self
    }

    /// Offer `h2` in ALPN besides `http/1.1`. Default `true`, as undici 8.
    pub fn allow_h2(mut self, allow: bool) -> Self {
        self.allow_h2 = allow;
        self
    }

    /// Offer `h2` before `http/1.1`, for servers that honour the client's
    /// preference. Default `false`.
    pub fn prefer_h2(mut self, prefer: bool) -> Self {
        self.prefer_h2 = prefer;
        self
    }

    /// Bind outgoing sockets to this local address.
    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    /// TCP keep-alive probes on the socket. Default on.
    pub fn keep_alive(mut self, enabled: bool) -> Self {
        self.keep_alive = enabled;
        self
    }

    /// Idle time before the first TCP keep-alive probe. Default 60 s.
    ///
    /// TCP counts it in whole seconds (a fraction is dropped) and Linux
    /// takes 1 to 32767 of them, so [`build_connector`](crate::build_connector)
    /// rejects a delay outside 1 s ..= 32767 s with `UND_ERR_INVALID_ARG`
    /// while keep-alive is on. (Node reads undici's `0` as "leave the
    /// system's delay"; here, turn keep-alive off with
    /// [`keep_alive`](Self::keep_alive) or give a delay.)
    pub fn keep_alive_initial_delay(mut self, delay: Duration) -> Self {
        self.keep_alive_initial_delay = delay;
        self
    }

    /// `TCP_NODELAY`. Default on.
    pub fn no_delay(mut self, enabled: bool) -> Self {
        self.no_delay = enabled;
        self
    }

    /// Happy eyeballs (RFC 8305): try the resolved addresses with the
    /// families interleaved, starting the next attempt while the previous
    /// one is still pending. Default on; off tries one address after the
    /// other.
    pub fn auto_select_family(mut self, enabled: bool) -> Self {
        self.auto_select_family = enabled;
        self
    }

    /// Head start of each happy-eyeballs attempt before the next one starts.
    /// Default 250 ms.
    pub fn auto_select_family_attempt_timeout(mut self, delay: Duration) -> Self {
        self.auto_select_family_attempt_timeout = delay;
        self
    }

    /// IP type of service (`IP_TOS`, or the traffic class for IPv6).
    pub fn type_of_service(mut self, tos: u8) -> Self {
        self.type_of_service = Some(tos);
        self
    }

    /// The rustls crypto provider. Default: ring, or aws-lc-rs when only the
    /// `aws-lc-rs` feature is enabled.
    pub fn crypto_provider(mut self, provider: Arc<CryptoProvider>) -> Self {
        self.crypto_provider = Some(provider);
        self
    }

    /// Use this rustls configuration as it is, instead of one built from the
    /// TLS options above. ALPN is still set by the connector.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls_config = Some(config);
        self
    }

    /// Resolve host names with this resolver instead of the system's
    /// `getaddrinfo`.
    pub fn resolver(mut self, resolver: Resolver) -> Self {
        self.resolver = Some(resolver);
        self
    }
}

/// The range of TCP keep-alive idle times that sockets take: whole seconds
/// (`TCP_KEEPIDLE`, `TCP_KEEPALIVE`), at most Linux's `MAX_TCP_KEEPIDLE`.
/// Outside it `setsockopt` fails with `EINVAL`, which would fail every
/// connect instead of the one call that set the option.
const KEEP_ALIVE_DELAY_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(32767);

impl ConnectOptions {
    /// Rejects options that no socket or TLS session can be made with, so
    /// that `build_connector` fails instead of every connect.
    pub(crate) fn validate(&self) -> Result<(), ConnectError> {
        if self.keep_alive && !KEEP_ALIVE_DELAY_RANGE.contains(&self.keep_alive_initial_delay) {
            return Err(ConnectError::invalid(format!(
                "keep_alive_initial_delay must be between 1 s and 32767 s \
                 (whole seconds) while keep-alive is on, got {:?}; \
                 use keep_alive(false) to turn keep-alive off",
                self.keep_alive_initial_delay
            )));
        }
        if let Some(name) = &self.servername {
            if ServerName::try_from(name.as_str()).is_err() {
                return Err(ConnectError::invalid(format!(
                    "servername {name:?} is not a valid TLS server name"
                )));
            }
        }
        Ok(())
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("timeout", &self.timeout)
            .field("socket_path", &self.socket_path)
            .field("max_cached_sessions", &self.max_cached_sessions)
            .field("servername", &self.servername)
            .field("reject_unauthorized", &self.reject_unauthorized)
            .field("roots", &self.roots)
            .field("ca", &self.ca.len())
            .field("extra_ca", &self.extra_ca.len())
            .field("cert", &self.cert.is_some())
            .field("allow_h2", &self.allow_h2)
            .field("prefer_h2", &self.prefer_h2)
            .field("local_address", &self.local_address)
            .field("keep_alive", &self.keep_alive)
            .field("keep_alive_initial_delay", &self.keep_alive_initial_delay)
            .field("no_delay", &self.no_delay)
            .field("auto_select_family", &self.auto_select_family)
            .field(
                "auto_select_family_attempt_timeout",
                &self.auto_select_family_attempt_timeout,
            )
            .field("type_of_service", &self.type_of_service)
            .field("tls_config", &self.tls_config.is_some())
            .field("resolver", &self.resolver.is_some())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults of undici's `buildConnector` (undici 8 for `allowH2`).
    fn assert_undici_defaults(options: &ConnectOptions) {
        assert_eq!(options.timeout, Some(Duration::from_secs(10)));
        assert_eq!(options.max_cached_sessions, 100);
        assert!(options.keep_alive);
        assert_eq!(options.keep_alive_initial_delay, Duration::from_secs(60));
        assert!(options.no_delay);
        assert!(options.auto_select_family);
        assert_eq!(
            options.auto_select_family_attempt_timeout,
            Duration::from_millis(250)
        );
        assert!(options.reject_unauthorized);
        assert!(options.allow_h2);
        assert!(!options.prefer_h2);
        assert_eq!(options.roots, Roots::WebPki);
        assert_eq!(options.type_of_service, None);
        assert_eq!(options.socket_path, None);
        assert_eq!(options.local_address, None);
        assert_eq!(options.servername, None);
        assert!(options.ca.is_empty() && options.extra_ca.is_empty());
        assert!(options.cert.is_none() && options.key.is_none());
    }

    #[test]
    fn new_and_default_have_undicis_defaults() {
        assert_undici_defaults(&ConnectOptions::new());
        assert_undici_defaults(&ConnectOptions::default());
    }

    #[test]
    fn the_defaults_are_valid() {
        assert!(ConnectOptions::new().validate().is_ok());
    }

    #[test]
    fn keep_alive_delays_outside_what_sockets_take_are_invalid() {
        for delay in [
            Duration::ZERO,
            Duration::from_millis(999),
            Duration::from_secs(32768),
            Duration::MAX,
        ] {
            let err = ConnectOptions::new()
                .keep_alive_initial_delay(delay)
                .validate()
                .unwrap_err();
            assert_eq!(err.code(), "UND_ERR_INVALID_ARG", "{delay:?}");
            assert!(
                err.to_string().contains("keep_alive_initial_delay"),
                "{err}"
            );
        }
        for delay in [Duration::from_secs(1), Duration::from_secs(32767)] {
            let options = ConnectOptions::new().keep_alive_initial_delay(delay);
            assert!(options.validate().is_ok(), "{delay:?}");
        }
    }

    #[test]
    fn the_keep_alive_delay_is_not_checked_while_keep_alive_is_off() {
        let options = ConnectOptions::new()
            .keep_alive(false)
            .keep_alive_initial_delay(Duration::ZERO);
        assert!(options.validate().is_ok());
    }
}
