//! The scenarios of issue 6, each with the clients it compares.

use std::net::SocketAddr;

use crate::clients::ClientId::{self, *};
use crate::server::{Target, LARGE_LEN, SMALL};

/// How the bytes travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 over TCP, one request per connection at a time.
    Http1,
    /// HTTP/2 over TCP with prior knowledge, every request a stream of
    /// one connection.
    H2c,
    /// HTTP/1.1 over TLS 1.3.
    Tls,
}

/// What a scenario's ratios compare.
#[derive(Clone, Copy, Debug)]
pub enum Compare {
    /// Ours against hyper-raw, reqwest, hyper-util-legacy and node-undici.
    Peers,
    /// One of ours against another of ours (the interceptor stack against
    /// the bare Agent).
    Baseline { ours: ClientId, base: ClientId },
}

/// One row group of the report.
#[derive(Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub title: &'static str,
    pub protocol: Protocol,
    pub body_len: usize,
    /// Requests in flight: the closed loop's workers.
    pub in_flight: usize,
    pub clients: &'static [ClientId],
    pub compare: Compare,
}

/// Every client that speaks HTTP/1.1, in the order they take turns.
const HTTP1_CLIENTS: &[ClientId] = &[
    UndiciRequest,
    UndiciDispatch,
    UndiciRequestAgent,
    UndiciDispatchAgent,
    Reqwest,
    HyperUtilLegacy,
    HyperRaw,
    Wrk,
    NodeUndici,
];

/// Every client that speaks h2c; h2load replaces wrk, which has no HTTP/2.
const H2C_CLIENTS: &[ClientId] = &[
    UndiciRequest,
    UndiciDispatch,
    UndiciRequestAgent,
    UndiciDispatchAgent,
    Reqwest,
    HyperUtilLegacy,
    HyperRaw,
    H2load,
    NodeUndici,
];

const INTERCEPTOR_CLIENTS: &[ClientId] = &[UndiciRequestAgent, UndiciRequestAgentInterceptors];

const SMALL_LEN: usize = SMALL.len();

pub fn all() -> &'static [Scenario] {
    const SCENARIOS: &[Scenario] = &[
        Scenario {
            name: "h1-12b-n1",
            title: "HTTP/1.1, 12 B body, 1 in flight",
            protocol: Protocol::Http1,
            body_len: SMALL_LEN,
            in_flight: 1,
            clients: HTTP1_CLIENTS,
            compare: Compare::Peers,
        },
        Scenario {
            name: "h1-12b-n16",
            title: "HTTP/1.1, 12 B body, 16 in flight",
            protocol: Protocol::Http1,
            body_len: SMALL_LEN,
            in_flight: 16,
            clients: HTTP1_CLIENTS,
            compare: Compare::Peers,
        },
        Scenario {
            name: "h1-12b-n64",
            title: "HTTP/1.1, 12 B body, 64 in flight",
            protocol: Protocol::Http1,
            body_len: SMALL_LEN,
            in_flight: 64,
            clients: HTTP1_CLIENTS,
            compare: Compare::Peers,
        },
        Scenario {
            name: "h1-64k-n16",
            title: "HTTP/1.1, 64 KiB body, 16 in flight",
            protocol: Protocol::Http1,
            body_len: LARGE_LEN,
            in_flight: 16,
            clients: HTTP1_CLIENTS,
            compare: Compare::Peers,
        },
        Scenario {
            name: "h2c-12b-s64",
            title: "h2c, 12 B body, 64 streams over one connection",
            protocol: Protocol::H2c,
            body_len: SMALL_LEN,
            in_flight: 64,
            clients: H2C_CLIENTS,
            compare: Compare::Peers,
        },
        Scenario {
            name: "tls-h1-12b-n16",
            title: "HTTP/1.1 over TLS, 12 B body, 16 in flight",
            protocol: Protocol::Tls,
            body_len: SMALL_LEN,
            in_flight: 16,
            clients: HTTP1_CLIENTS,
            compare: Compare::Peers,
        },
        Scenario {
            name: "interceptors-h1-12b-n16",
            title: "Agent with retry, redirect, decompress, dump, responseError (nothing to do) vs the bare Agent; HTTP/1.1, 12 B, 16 in flight",
            protocol: Protocol::Http1,
            body_len: SMALL_LEN,
            in_flight: 16,
            clients: INTERCEPTOR_CLIENTS,
            compare: Compare::Baseline {
                ours: UndiciRequestAgentInterceptors,
                base: UndiciRequestAgent,
            },
        },
    ];
    SCENARIOS
}

impl Scenario {
    pub fn addr(&self, target: &Target) -> SocketAddr {
        match self.protocol {
            Protocol::Http1 => target.h1,
            Protocol::H2c => target.h2c,
            Protocol::Tls => target.tls,
        }
    }

    /// `http://127.0.0.1:port` or `https://...`.
    pub fn origin(&self, target: &Target) -> String {
        let scheme = match self.protocol {
            Protocol::Tls => "https",
            Protocol::Http1 | Protocol::H2c => "http",
        };
        format!("{scheme}://{}", self.addr(target))
    }

    /// `/12` or `/65536`: the path names the body's size.
    pub fn path(&self) -> String {
        format!("/{}", self.body_len)
    }

    pub fn url(&self, target: &Target) -> String {
        format!("{}{}", self.origin(target), self.path())
    }
}
