//! reqwest 0.13, one `Client` shared by the workers.
//!
//! Built without a crypto provider feature (`rustls-no-provider`) and
//! handed a rustls config built with ring, so aws-lc-rs stays out of the
//! build. HTTP/1 only for the HTTP/1 scenarios, prior knowledge for h2c.

use super::{check_len, run_workers, BoxError};
use crate::closed_loop::{Window, Worker};
use crate::scenario::{Protocol, Scenario};
use crate::server::Target;
use crate::stats::Sample;
use crate::tls;

pub async fn run(scenario: &Scenario, target: &Target, window: Window) -> Result<Sample, String> {
    let client = client(scenario, target).map_err(|err| format!("no reqwest client: {err}"))?;
    let url = reqwest::Url::parse(&scenario.url(target)).map_err(|err| err.to_string())?;
    let make = || ReqwestWorker {
        client: client.clone(),
        url: url.clone(),
        expected: scenario.body_len,
    };
    run_workers(scenario.in_flight, make, window).await
}

/// A client as a user would build it for this server.
pub fn client(scenario: &Scenario, target: &Target) -> Result<reqwest::Client, BoxError> {
    let builder = reqwest::Client::builder()
        .no_proxy()
        .tls_backend_preconfigured(tls::client_config(&target.ca_pem, &[b"http/1.1"])?);
    let builder = match scenario.protocol {
        Protocol::H2c => builder.http2_prior_knowledge(),
        Protocol::Http1 | Protocol::Tls => builder.http1_only(),
    };
    Ok(builder.build()?)
}

struct ReqwestWorker {
    client: reqwest::Client,
    url: reqwest::Url,
    expected: usize,
}

impl Worker for ReqwestWorker {
    async fn send(&mut self) -> Result<(), BoxError> {
        let mut response = self.client.get(self.url.clone()).send().await?;
        let mut len = 0;
        while let Some(chunk) = response.chunk().await? {
            len += chunk.len();
        }
        check_len(len, self.expected)
    }
}
