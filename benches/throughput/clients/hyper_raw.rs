//! Raw hyper `client::conn`: the lean bound of any hyper-based client.
//!
//! HTTP/1.1: one connection per worker, opened before the run, no pool,
//! no queue. h2c: one connection whose `SendRequest` every worker clones,
//! so its 64 streams share it. No header is added but HTTP/1.1's `host`,
//! which a real request needs and every other client sends (h2 carries
//! `:authority` from the URI instead).

use std::sync::Arc;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Uri};
use http_body_util::Empty;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{drain, BoxError};
use crate::closed_loop::{self, Window, Worker};
use crate::scenario::{Protocol, Scenario};
use crate::server::Target;
use crate::stats::Sample;
use crate::tls;

pub async fn run(scenario: &Scenario, target: &Target, window: Window) -> Result<Sample, String> {
    let workers = workers(scenario, target)
        .await
        .map_err(|err| format!("could not connect: {}", closed_loop::chain(&*err)))?;
    closed_loop::run(workers, window).await
}

async fn workers(scenario: &Scenario, target: &Target) -> Result<Vec<RawWorker>, BoxError> {
    let addr = scenario.addr(target);
    let host = HeaderValue::from_str(&addr.to_string())?;
    let expected = scenario.body_len;
    let mut workers = Vec::with_capacity(scenario.in_flight);
    match scenario.protocol {
        Protocol::H2c => {
            let io = TokioIo::new(tcp(target, scenario).await?);
            let (sender, connection) = http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(connection);
            // h2 requests carry :scheme and :authority from the URI.
            let uri: Uri = scenario.url(target).parse()?;
            for _ in 0..scenario.in_flight {
                workers.push(RawWorker {
                    sender: Sender::H2(sender.clone()),
                    uri: uri.clone(),
                    host: None,
                    expected,
                });
            }
        }
        Protocol::Http1 | Protocol::Tls => {
            let uri: Uri = scenario.path().parse()?;
            let tls = match scenario.protocol {
                Protocol::Tls => Some(TlsConnector::from(Arc::new(tls::client_config(
                    &target.ca_pem,
                    &[b"http/1.1"],
                )?))),
                _ => None,
            };
            for _ in 0..scenario.in_flight {
                let stream = tcp(target, scenario).await?;
                let sender = match &tls {
                    Some(tls) => {
                        let name = ServerName::IpAddress(addr.ip().into());
                        handshake1(tls.connect(name, stream).await?).await?
                    }
                    None => handshake1(stream).await?,
                };
                workers.push(RawWorker {
                    sender: Sender::H1(sender),
                    uri: uri.clone(),
                    host: Some(host.clone()),
                    expected,
                });
            }
        }
    }
    Ok(workers)
}

async fn tcp(target: &Target, scenario: &Scenario) -> Result<TcpStream, BoxError> {
    let stream = TcpStream::connect(scenario.addr(target)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

async fn handshake1<T>(io: T) -> Result<http1::SendRequest<Empty<Bytes>>, BoxError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (sender, connection) = http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

enum Sender {
    H1(http1::SendRequest<Empty<Bytes>>),
    H2(http2::SendRequest<Empty<Bytes>>),
}

struct RawWorker {
    sender: Sender,
    uri: Uri,
    host: Option<HeaderValue>,
    expected: usize,
}

impl Worker for RawWorker {
    async fn send(&mut self) -> Result<(), BoxError> {
        let mut request = http::Request::get(self.uri.clone()).body(Empty::new())?;
        if let Some(host) = &self.host {
            request.headers_mut().insert(HOST, host.clone());
        }
        let response = match &mut self.sender {
            Sender::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        drain(response.into_body(), self.expected).await
    }
}
