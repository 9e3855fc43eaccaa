//! The TLS session cache behind `max_cached_sessions`: sessions kept per
//! host, at most so many hosts, the least recently used forgotten first.
//!
//! undici's `maxCachedSessions` counts hosts (its cache maps a server name
//! to its session). rustls's `ClientSessionMemoryCache::new(n)` counts
//! tickets instead (`n / 8` servers) and allocates for all of them up
//! front, so `usize::MAX` would abort; this store grows with the hosts it
//! sees.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rustls::client::{ClientSessionStore, Tls12ClientSessionValue, Tls13ClientSessionValue};
use rustls::NamedGroup;
use rustls_pki_types::ServerName;

/// TLS 1.3 tickets kept per host, as rustls's own cache keeps: a ticket is
/// used once, so each connection opened at the same time needs its own,
/// while servers send a handful after every handshake.
const TLS13_TICKETS_PER_HOST: usize = 8;

/// A `ClientSessionStore` that remembers at most `max_hosts` hosts.
pub(crate) struct SessionCache {
    hosts: Mutex<Hosts>,
}

struct Hosts {
    max_hosts: usize,
    /// Ticks on every store or take; orders hosts by their last use.
    clock: u64,
    by_name: HashMap<ServerName<'static>, Host>,
    by_last_use: BTreeMap<u64, ServerName<'static>>,
}

#[derive(Default)]
struct Host {
    last_use: u64,
    kx_hint: Option<NamedGroup>,
    tls12: Option<Tls12ClientSessionValue>,
    /// Oldest first.
    tls13: VecDeque<Tls13ClientSessionValue>,
}

impl SessionCache {
    /// A cache for up to `max_hosts` hosts; `max_hosts` is at least 1 (0
    /// turns resumption off before a store is made).
    pub(crate) fn new(max_hosts: usize) -> Self {
        SessionCache {
            hosts: Mutex::new(Hosts {
                max_hosts: max_hosts.max(1),
                clock: 0,
                by_name: HashMap::new(),
                by_last_use: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Hosts> {
        // A panic while the lock was held leaves at worst a stale session,
        // which the server refuses and a full handshake replaces.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Hosts {
    /// The entry of `name`, made the most recently used, created (evicting
    /// the least recently used host when full) if it is new.
    fn touch(&mut self, name: ServerName<'static>) -> &mut Host {
        self.clock += 1;
        let now = self.clock;
        match self.by_name.get(&name).map(|host| host.last_use) {
            Some(last_use) => {
                self.by_last_use.remove(&last_use);
            }
            None => {
                if self.by_name.len() >= self.max_hosts {
                    if let Some((_, oldest)) = self.by_last_use.pop_first() {
                        self.by_name.remove(&oldest);
                    }
                }
            }
        }
        self.by_last_use.insert(now, name.clone());
        let host = self.by_name.entry(name).or_default();
        host.last_use = now;
        host
    }
}

impl ClientSessionStore for SessionCache {
    fn set_kx_hint(&self, server_name: ServerName<'static>, group: NamedGroup) {
        self.lock().touch(server_name).kx_hint = Some(group);
    }

    fn kx_hint(&self, server_name: &ServerName<'_>) -> Option<NamedGroup> {
        self.lock().by_name.get(server_name)?.kx_hint
    }

    fn set_tls12_session(&self, server_name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.lock().touch(server_name).tls12 = Some(value);
    }

    fn tls12_session(&self, server_name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.lock().by_name.get(server_name)?.tls12.clone()
    }

    fn remove_tls12_session(&self, server_name: &ServerName<'static>) {
        if let Some(host) = self.lock().by_name.get_mut(server_name) {
            host.tls12 = None;
        }
    }

    fn insert_tls13_ticket(
        &self,
        server_name: ServerName<'static>,
        value: Tls13ClientSessionValue,
    ) {
        let mut hosts = self.lock();
        let tickets = &mut hosts.touch(server_name).tls13;
        if tickets.len() >= TLS13_TICKETS_PER_HOST {
            tickets.pop_front();
        }
        tickets.push_back(value);
    }

    fn take_tls13_ticket(
        &self,
        server_name: &ServerName<'static>,
    ) -> Option<Tls13ClientSessionValue> {
        let mut hosts = self.lock();
        hosts.by_name.get(server_name)?;
        // The newest ticket is the likeliest to be still valid.
        hosts.touch(server_name.clone()).tls13.pop_back()
    }
}

impl fmt::Debug for SessionCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hosts = self.lock();
        f.debug_struct("SessionCache")
            .field("max_hosts", &hosts.max_hosts)
            .field("hosts", &hosts.by_name.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(host: &str) -> ServerName<'static> {
        ServerName::try_from(host.to_owned()).unwrap()
    }

    fn remembered(cache: &SessionCache, host: &str) -> bool {
        cache.kx_hint(&name(host)).is_some()
    }

    #[test]
    fn past_the_limit_the_least_recently_used_host_is_forgotten() {
        let cache = SessionCache::new(2);
        cache.set_kx_hint(name("a.test"), NamedGroup::X25519);
        cache.set_kx_hint(name("b.test"), NamedGroup::X25519);
        // Using a.test again makes b.test the least recently used.
        cache.set_kx_hint(name("a.test"), NamedGroup::secp256r1);
        cache.set_kx_hint(name("c.test"), NamedGroup::X25519);

        assert!(remembered(&cache, "a.test"));
        assert!(!remembered(&cache, "b.test"));
        assert!(remembered(&cache, "c.test"));
        assert_eq!(cache.lock().by_name.len(), 2);
        assert_eq!(cache.lock().by_last_use.len(), 2);
    }

    #[test]
    fn the_limit_counts_hosts_not_sessions() {
        let cache = SessionCache::new(1);
        cache.set_kx_hint(name("a.test"), NamedGroup::X25519);
        cache.set_kx_hint(name("a.test"), NamedGroup::X25519);
        assert!(remembered(&cache, "a.test"));
        cache.set_kx_hint(name("b.test"), NamedGroup::X25519);
        assert!(!remembered(&cache, "a.test"));
        assert!(remembered(&cache, "b.test"));
    }

    #[test]
    fn a_huge_limit_allocates_nothing_up_front() {
        let cache = SessionCache::new(usize::MAX);
        cache.set_kx_hint(name("a.test"), NamedGroup::X25519);
        assert!(remembered(&cache, "a.test"));
        assert!(cache.lock().by_name.capacity() < 1024);
    }

    #[test]
    fn taking_a_ticket_of_an_unknown_host_remembers_nothing() {
        let cache = SessionCache::new(1);
        cache.set_kx_hint(name("a.test"), NamedGroup::X25519);
        assert!(cache.take_tls13_ticket(&name("b.test")).is_none());
        assert!(remembered(&cache, "a.test"));
    }
}
