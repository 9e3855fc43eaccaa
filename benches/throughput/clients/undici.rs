//! This project: `request()` and `dispatch()` on a Pool, on an Agent,
//! and on an Agent composed with every interceptor.
//!
//! Options are the ones a user would set for this load and nothing more:
//! `connections` = requests in flight (one connection for h2c, which
//! carries the 64 streams), h2c by prior knowledge, and the server's CA.

use bytes::Bytes;
use http::{HeaderMap, Uri};
use tower::ServiceBuilder;
use undici_dispatcher::connectors::ConnectOptions;
use undici_dispatcher::{
    Agent, Body, Controller, Dispatcher, DispatcherExt, Error, Handler, Pool, Request,
};
use undici_interceptors::decompress::DecompressLayer;
use undici_interceptors::dump::DumpLayer;
use undici_interceptors::redirect::RedirectLayer;
use undici_interceptors::response_error::ResponseErrorLayer;
use undici_interceptors::retry::RetryLayer;

use super::{check_len, drain, run_workers, BoxError};
use crate::closed_loop::{Window, Worker};
use crate::scenario::{Protocol, Scenario};
use crate::server::Target;
use crate::stats::Sample;

/// What the requests go through.
#[derive(Clone, Copy, Debug)]
pub enum Front {
    Pool,
    Agent,
    /// An Agent composed with responseError, decompress, redirect, retry
    /// and dump (outermost first, as undici's
    /// `compose(dump, retry, redirect, decompress, responseError)`).
    AgentWithInterceptors,
}

/// Which of undici's APIs sends them.
#[derive(Clone, Copy, Debug)]
pub enum Api {
    Request,
    Dispatch,
}

pub async fn run(
    front: Front,
    api: Api,
    scenario: &Scenario,
    target: &Target,
    window: Window,
) -> Result<Sample, String> {
    let origin = scenario.origin(target);
    let fail = |err: Error| format!("could not build the {front:?}: {err}");
    match front {
        Front::Pool => {
            let pool = pool(scenario, target, &origin).map_err(fail)?;
            // A Pool takes origin-relative paths, as undici's.
            let uri = parse(&scenario.path())?;
            drive(pool, api, uri, scenario, scenario.body_len, window).await
        }
        Front::Agent => {
            let agent = agent(scenario, target);
            let uri = parse(&scenario.url(target))?;
            drive(agent, api, uri, scenario, scenario.body_len, window).await
        }
        Front::AgentWithInterceptors => {
            let stack = ServiceBuilder::new()
                .layer(ResponseErrorLayer::new())
                .layer(DecompressLayer::new())
                .layer(RedirectLayer::new())
                .layer(RetryLayer::new())
                .layer(DumpLayer::new());
            let agent = agent(scenario, target).compose(stack);
            let uri = parse(&scenario.url(target))?;
            // dump reads the body and hands over an empty one.
            drive(agent, api, uri, scenario, 0, window).await
        }
    }
}

fn parse(uri: &str) -> Result<Uri, String> {
    uri.parse().map_err(|err| format!("bad URI {uri}: {err}"))
}

fn pool(scenario: &Scenario, target: &Target, origin: &str) -> Result<Pool, Error> {
    let builder = Pool::builder().connections(connections(scenario));
    match scenario.protocol {
        Protocol::Http1 => builder.build(origin),
        Protocol::H2c => builder.h2c(true).build(origin),
        Protocol::Tls => builder.connect(connect_options(target)).build(origin),
    }
}

fn agent(scenario: &Scenario, target: &Target) -> Agent {
    let builder = Agent::builder().connections(connections(scenario));
    match scenario.protocol {
        Protocol::Http1 => builder.build(),
        Protocol::H2c => builder.h2c(true).build(),
        Protocol::Tls => builder.connect(connect_options(target)).build(),
    }
}

fn connections(scenario: &Scenario) -> usize {
    match scenario.protocol {
        Protocol::H2c => 1,
        Protocol::Http1 | Protocol::Tls => scenario.in_flight,
    }
}

fn connect_options(target: &Target) -> ConnectOptions {
    ConnectOptions::new().ca(&target.ca_pem)
}

async fn drive<D: Dispatcher>(
    dispatcher: D,
    api: Api,
    uri: Uri,
    scenario: &Scenario,
    expected: usize,
    window: Window,
) -> Result<Sample, String> {
    let n = scenario.in_flight;
    let sample = match api {
        Api::Request => {
            let make = || RequestWorker {
                dispatcher: dispatcher.clone(),
                uri: uri.clone(),
                expected,
            };
            run_workers(n, make, window).await
        }
        Api::Dispatch => {
            let make = || DispatchWorker {
                dispatcher: dispatcher.clone(),
                uri: uri.clone(),
                expected,
            };
            run_workers(n, make, window).await
        }
    };
    dispatcher.destroy(None).await;
    sample
}

fn get(uri: &Uri) -> Result<Request, BoxError> {
    Ok(http::Request::get(uri.clone()).body(Body::empty())?)
}

/// `request()`, then the body read frame by frame.
struct RequestWorker<D> {
    dispatcher: D,
    uri: Uri,
    expected: usize,
}

impl<D: Dispatcher> Worker for RequestWorker<D> {
    async fn send(&mut self) -> Result<(), BoxError> {
        let response = self.dispatcher.request(get(&self.uri)?).await?;
        drain(response.into_body(), self.expected).await
    }
}

/// `dispatch()` with a handler that counts the body's bytes.
struct DispatchWorker<D> {
    dispatcher: D,
    uri: Uri,
    expected: usize,
}

impl<D: Dispatcher> Worker for DispatchWorker<D> {
    async fn send(&mut self) -> Result<(), BoxError> {
        let handler = self
            .dispatcher
            .dispatch(get(&self.uri)?, Counter::default())
            .await;
        if let Some(err) = handler.error {
            return Err(err.into());
        }
        if !handler.ended {
            return Err("the response did not end".into());
        }
        check_len(handler.len, self.expected)
    }
}

#[derive(Default)]
struct Counter {
    len: usize,
    ended: bool,
    error: Option<Error>,
}

impl Handler for Counter {
    fn on_response_data(&mut self, _: &Controller, chunk: Bytes) {
        self.len += chunk.len();
    }

    fn on_response_end(&mut self, _: &Controller, _: &HeaderMap) {
        self.ended = true;
    }

    fn on_response_error(&mut self, _: &Controller, error: Error) {
        self.error = Some(error);
    }
}
