//! hyper-util's legacy `Client`, one shared by the workers: over its
//! `HttpConnector` (nodelay on, as ours and reqwest's), or hyper-rustls's
//! `HttpsConnector` with a ring config for TLS.

use bytes::Bytes;
use http::Uri;
use http_body_util::Empty;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::{drain, run_workers, BoxError};
use crate::closed_loop::{Window, Worker};
use crate::scenario::{Protocol, Scenario};
use crate::server::Target;
use crate::stats::Sample;
use crate::tls;

pub async fn run(scenario: &Scenario, target: &Target, window: Window) -> Result<Sample, String> {
    let uri: Uri = scenario.url(target).parse().map_err(|e| format!("{e}"))?;
    let builder = builder(scenario);
    match scenario.protocol {
        Protocol::Http1 | Protocol::H2c => {
            let client = builder.build(http_connector());
            drive(client, uri, scenario, window).await
        }
        Protocol::Tls => {
            let connector = https_connector(target).map_err(|e| format!("no TLS: {e}"))?;
            drive(builder.build(connector), uri, scenario, window).await
        }
    }
}

pub fn builder(scenario: &Scenario) -> hyper_util::client::legacy::Builder {
    let mut builder = Client::builder(TokioExecutor::new());
    if scenario.protocol == Protocol::H2c {
        builder.http2_only(true);
    }
    builder
}

pub fn http_connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http
}

fn https_connector(
    target: &Target,
) -> Result<hyper_rustls::HttpsConnector<HttpConnector>, BoxError> {
    let mut http = http_connector();
    http.enforce_http(false);
    // hyper-rustls sets ALPN itself (`enable_http1`) and refuses a config
    // that already has some.
    let config = tls::client_config(&target.ca_pem, &[])?;
    Ok(hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(http))
}

async fn drive<C>(
    client: Client<C, Empty<Bytes>>,
    uri: Uri,
    scenario: &Scenario,
    window: Window,
) -> Result<Sample, String>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    let make = || LegacyWorker {
        client: client.clone(),
        uri: uri.clone(),
        expected: scenario.body_len,
    };
    run_workers(scenario.in_flight, make, window).await
}

struct LegacyWorker<C> {
    client: Client<C, Empty<Bytes>>,
    uri: Uri,
    expected: usize,
}

impl<C> Worker for LegacyWorker<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    async fn send(&mut self) -> Result<(), BoxError> {
        let request = http::Request::get(self.uri.clone()).body(Empty::new())?;
        let response = self.client.request(request).await?;
        drain(response.into_body(), self.expected).await
    }
}
