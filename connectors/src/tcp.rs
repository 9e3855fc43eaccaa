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
    let fail = |err| ConnectError::io(err, Some(addr));
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(fail)?;
    if let Some(local) = local_address {
        socket.bind(SocketAddr::new(local, 0)).map_err(fail)?;
    }
    {
        let sock = SockRef::from(&socket);
        if let Some(delay) = options.keep_alive {
            sock.set_tcp_keepalive(&TcpKeepalive::new().with_time(delay))
                .map_err(fail)?;
        }
        if let Some(tos) = options.type_of_service {
            let tos = u32::from(tos);
            if addr.is_ipv4() {
                sock.set_tos_v4(tos).map_err(fail)?;
            } else {
                sock.set_tclass_v6(tos).map_err(fail)?;
            }
        }
    }
    let stream = socket.connect(addr).await.map_err(fail)?;
    stream.set_nodelay(options.no_delay).map_err(fail)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
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
