//! TCP: socket options and happy eyeballs (RFC 8305).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{sleep, sleep_until, Instant};

use crate::error::ConnectError;
use crate::options::ConnectOptions;

/// What every socket of a connector is set up with.
#[derive(Clone, Debug)]
pub(crate) struct SocketOptions {
    pub(crate) keep_alive: Option<Duration>,
    pub(crate) no_delay: bool,
    pub(crate) type_of_service: Option<u8>,
    /// Head start of each attempt; `None` tries one address after the other.
    pub(crate) attempt_delay: Option<Duration>,
}

impl SocketOptions {
    pub(crate) fn new(options: &ConnectOptions) -> Self {
        SocketOptions {
            keep_alive: options
                .keep_alive
                .then_some(options.keep_alive_initial_delay),
            no_delay: options.no_delay,
            type_of_service: options.type_of_service,
            attempt_delay: options
                .auto_select_family
                .then_some(options.auto_select_family_attempt_timeout),
        }
    }
}

/// Connects to the first address that answers: families interleaved, each
/// attempt given `attempt_delay` before the next starts (RFC 8305 §5), the
/// next also starting as soon as one fails. `deadline` bounds the whole.
pub(crate) async fn connect(
    addrs: &[SocketAddr],
    local_address: Option<IpAddr>,
    options: &SocketOptions,
    deadline: Option<(Instant, Duration)>,
) -> Result<TcpStream, ConnectError> {
    let candidates = interleave_families(addrs, local_address)?;
    let mut next = candidates.iter().copied();
    let mut tried: Vec<SocketAddr> = Vec::new();
    let mut attempts: FuturesUnordered<Attempt<'_>> = FuturesUnordered::new();
    let mut last_error: Option<ConnectError> = None;

    if let Some(addr) = next.next() {
        tried.push(addr);
        attempts.push(Box::pin(connect_one(addr, local_address, options)));
    }
    let expire = async {
        match deadline {
            Some((at, _)) => sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expire);
    loop {
        if attempts.is_empty() {
            return Err(
                last_error.unwrap_or_else(|| ConnectError::invalid("no address to connect to"))
            );
        }
        let more = tried.len() < candidates.len();
        let head_start = async {
            match options.attempt_delay {
                Some(delay) if more => sleep(delay).await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            result = attempts.next() => match result {
                Some(Ok(stream)) => return Ok(stream),
                Some(Err(err)) => {
                    last_error = Some(err);
                    if let Some(addr) = next.next() {
                        tried.push(addr);
                        attempts.push(Box::pin(connect_one(addr, local_address, options)));
                    }
                }
                None => {}
            },
            () = head_start => {
                if let Some(addr) = next.next() {
                    tried.push(addr);
                    attempts.push(Box::pin(connect_one(addr, local_address, options)));
                }
            }
            () = &mut expire => {
                let timeout = deadline.map(|(_, t)| t).unwrap_or_default();
                let tried = tried.iter().map(SocketAddr::to_string).collect::<Vec<_>>();
                return Err(ConnectError::timeout(&tried.join(", "), timeout));
            }
        }
    }
}

type Attempt<'a> = Pin<Box<dyn Future<Output = Result<TcpStream, ConnectError>> + Send + 'a>>;

/// Orders addresses as RFC 8305 §4 asks: the first address's family first,
/// then alternating families. With a local address only its family is
/// usable.
fn interleave_families(
    addrs: &[SocketAddr],
    local_address: Option<IpAddr>,
) -> Result<Vec<SocketAddr>, ConnectError> {
    let usable: Vec<SocketAddr> = match local_address {
        Some(local) => addrs
            .iter()
            .copied()
            .filter(|addr| addr.is_ipv4() == local.is_ipv4())
            .collect(),
        None => addrs.to_vec(),
    };
    if usable.is_empty() {
        return Err(match local_address {
            Some(local) if !addrs.is_empty() => ConnectError::invalid(format!(
                "local address {local} has no address family in common with {addrs:?}"
            )),
            _ => ConnectError::invalid("no address to connect to"),
        });
    }
    let first_is_v6 = usable[0].is_ipv6();
    let (mut preferred, mut other): (Vec<_>, Vec<_>) = usable
        .into_iter()
        .partition(|addr| addr.is_ipv6() == first_is_v6);
    let mut ordered = Vec::with_capacity(preferred.len() + other.len());
    preferred.reverse();
    other.reverse();
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => break,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
    Ok(ordered)
}

async fn connect_one(
    addr: SocketAddr,
    local_address: Option<IpAddr>,
    options: &SocketOptions,
) -> Result<TcpStream, ConnectError> {
    let before_connect = |err| ConnectError::io(err).with_addrs(None, Some(addr));
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(before_connect)?;
    if let Some(local) = local_address {
        socket
            .bind(SocketAddr::new(local, 0))
            .map_err(before_connect)?;
    }
    // `TcpSocket::connect` consumes the socket, also when it fails; a
    // second handle on the same socket still answers its local address
    // afterwards, so that a failed connect can say where it came from
    // (undici's `SocketError` carries both addresses).
    let witness = {
        let sock = SockRef::from(&socket);
        if let Some(delay) = options.keep_alive {
            sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(delay))
                .map_err(before_connect)?;
        }
        if let Some(tos) = options.type_of_service {
            let tos = u32::from(tos);
            if addr.is_ipv4() {
                sock.set_tos_v4(tos).map_err(before_connect)?;
            } else {
                sock.set_tclass_v6(tos).map_err(before_connect)?;
            }
        }
        sock.try_clone().map_err(before_connect)?
    };
    let stream = match socket.connect(addr).await {
        Ok(stream) => stream,
        Err(err) => {
            let local = witness
                .local_addr()
                .ok()
                .and_then(|local| local.as_socket())
                .filter(|local| local.port() != 0);
            return Err(ConnectError::io(err).with_addrs(local, Some(addr)));
        }
    };
    drop(witness);
    if let Err(err) = stream.set_nodelay(options.no_delay) {
        return Err(ConnectError::io(err).with_addrs(stream.local_addr().ok(), Some(addr)));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    /// Connects to a loopback listener with the socket set up from
    /// `options`, and answers the client's side of the connection.
    async fn connected_with(options: &ConnectOptions) -> TcpStream {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let socket = SocketOptions::new(options);
        connect(&[addr], None, &socket, None).await.unwrap()
    }

    #[tokio::test]
    async fn the_client_socket_has_the_default_options() {
        let stream = connected_with(&ConnectOptions::new()).await;
        let sock = SockRef::from(&stream);

        assert!(sock.tcp_nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn the_client_socket_has_the_options_that_were_set() {
        let options = ConnectOptions::new()
            .keep_alive_initial_delay(Duration::from_secs(7))
            .type_of_service(0x28);
        let stream = connected_with(&options).await;
        let sock = SockRef::from(&stream);

        #[cfg(any(target_os = "linux", target_os = "android", target_vendor = "apple"))]
        assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(7));
        assert_eq!(sock.tos_v4().unwrap(), 0x28);
    }

    #[tokio::test]
    async fn options_turned_off_are_off_on_the_client_socket() {
        let options = ConnectOptions::new().no_delay(false).keep_alive(false);
        let stream = connected_with(&options).await;
        let sock = SockRef::from(&stream);

        assert!(!sock.tcp_nodelay().unwrap());
        assert!(!sock.keepalive().unwrap());
        // Without type_of_service the system's default (0) stays.
        assert_eq!(sock.tos_v4().unwrap(), 0);
    }

    #[test]
    fn families_alternate_starting_with_the_first() {
        let ordered = interleave_families(
            &addrs(&[
                "[::1]:1",
                "[::2]:1",
                "10.0.0.1:1",
                "10.0.0.2:1",
                "10.0.0.3:1",
            ]),
            None,
        )
        .unwrap();
        assert_eq!(
            ordered,
            addrs(&[
                "[::1]:1",
                "10.0.0.1:1",
                "[::2]:1",
                "10.0.0.2:1",
                "10.0.0.3:1"
            ])
        );
    }

    #[test]
    fn a_local_address_keeps_only_its_family() {
        let local = Some("127.0.0.1".parse().unwrap());
        let ordered = interleave_families(&addrs(&["[::1]:1", "10.0.0.1:1"]), local).unwrap();
        assert_eq!(ordered, addrs(&["10.0.0.1:1"]));
        let err = interleave_families(&addrs(&["[::1]:1"]), local).unwrap_err();
        assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    }
}
