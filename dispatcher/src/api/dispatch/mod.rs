//! `dispatch()`: undici's handler API driven over the Service: one future
//! that sends the request and turns what comes back into callbacks.

mod controller;
mod handler;

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::task::{Context, Poll};

use http::{HeaderMap, Method, StatusCode};
use http_body::Body as _;
use tower_service::Service;

pub use controller::Controller;
pub use handler::Handler;

use crate::error::Error;
use crate::options::{ForwardInformational, Informational, OnInfo, RequestOptions};
use crate::router::Routed;
use crate::{Body, Request, Response};

use super::upgraded::take_over;

/// Starts the exchange now, as undici's `dispatch()` does: the handler
/// hears `on_request_start` and the request takes its place in line at
/// the call; the future drives the rest.
pub(super) fn dispatch<S, H>(
    service: S,
    mut request: Request,
    mut handler: H,
) -> impl Future<Output = H>
where
    S: Service<Request, Response = Response, Error = Error>,
    H: Handler,
{
    let controller = Controller::new();
    let options = RequestOptions::of(&request);
    let connect = request.method() == Method::CONNECT;
    let takeover = Takeover {
        connect,
        wanted: connect || options.is_some_and(|o| o.upgrade_protocol().is_some()),
    };
    let on_info = options.and_then(|o| o.on_info_callback().cloned());
    forward_informational(&mut request, &controller, on_info);

    handler.on_request_start(&controller, &request);
    let sending = match controller.aborted() {
        Some(reason) => Routed::failed(reason),
        None => Routed::new(service, request),
    };
    drive(controller, handler, sending, takeover)
}

/// The rest of the exchange: the head, then the body or the upgrade.
async fn drive<S, H>(
    controller: Controller,
    mut handler: H,
    sending: Routed<S>,
    takeover: Takeover,
) -> H
where
    S: Service<Request, Response = Response, Error = Error>,
    H: Handler,
{
    // The head's part in a block of its own: what it holds (the sending
    // future, the response) is not kept in the future's state while the
    // body is read, the longest part of an exchange.
    let mut body = {
        // Pinned where it lies and polled through a reference: each move
        // of a future by value is a copy.
        let sending = pin!(sending);
        let response = match head(&controller, &mut handler, sending).await {
            Ok(response) => response,
            Err(error) => return fail(handler, &controller, error),
        };
        // The response is only moved here, never borrowed: a borrowed
        // local stays in the future's state up to the end of its block.
        match start_body(&controller, &mut handler, response, takeover) {
            Ok(body) => body,
            // Boxed, as upgrades are rare: the future of every other
            // exchange stays small, and it is moved whole on its way to
            // the executor.
            Err(upgraded) => return Box::pin(upgrade(handler, &controller, upgraded)).await,
        }
    };
    // Boxed, as trailers are rare: a map kept in place would make the
    // future a `HeaderMap` larger.
    let mut trailers: Option<Box<HeaderMap>> = None;
    let read = poll_fn(|cx| poll_body(&controller, &mut handler, &mut body, &mut trailers, cx));
    match read.await {
        Ok(()) => {
            controller.finish();
            let trailers = trailers.map_or_else(HeaderMap::new, |trailers| *trailers);
            handler.on_response_end(&controller, &trailers);
            handler
        }
        Err(error) => {
            // Unread: dropping it closes the connection before the
            // handler hears about it.
            drop(body);
            fail(handler, &controller, error)
        }
    }
}

/// Which final heads take the connection over, for a request that asked
/// for an upgrade or is a `CONNECT`.
#[derive(Clone, Copy)]
struct Takeover {
    wanted: bool,
    connect: bool,
}

impl Takeover {
    fn by(self, status: StatusCode) -> bool {
        self.wanted
            && (status == StatusCode::SWITCHING_PROTOCOLS || (self.connect && status.is_success()))
    }
}

/// Hands the final head to the handler, and gives the body to read; or
/// the response back when it is an upgrade (a 101, or a 2xx to a
/// `CONNECT`), whose connection is taken over instead.
fn start_body<H: Handler>(
    controller: &Controller,
    handler: &mut H,
    response: Response,
    takeover: Takeover,
) -> Result<Body, Response> {
    if takeover.by(response.status()) {
        return Err(response);
    }
    let (parts, body) = response.into_parts();
    handler.on_response_start(
        controller,
        parts.status,
        &parts.headers,
        status_text(parts.status, &parts.extensions),
    );
    Ok(body)
}

fn fail<H: Handler>(mut handler: H, controller: &Controller, error: Error) -> H {
    controller.finish();
    handler.on_response_error(controller, error);
    handler
}

/// Has the connection pass each 1xx response of `request` to the
/// controller, whose driver hands them to `on_response_start`: as a
/// `ForwardInformational` when the request has no `on_info` of its own
/// (no options to make for it), else after that callback.
fn forward_informational(request: &mut Request, controller: &Controller, on_info: Option<OnInfo>) {
    let Some(previous) = on_info else {
        let forward = ForwardInformational(controller.informational_sink());
        request.extensions_mut().insert(forward);
        return;
    };
    let sink = controller.informational_sink();
    let options = RequestOptions::of_mut(request);
    *options = std::mem::take(options).on_info(move |info| {
        previous.call(info);
        sink.call(info);
    });
}

/// Waits for the final response head, handing 1xx heads to the handler
/// as they come and giving up on an abort.
async fn head<S, H>(
    controller: &Controller,
    handler: &mut H,
    mut sending: Pin<&mut Routed<S>>,
) -> Result<Response, Error>
where
    S: Service<Request, Response = Response, Error = Error>,
    H: Handler,
{
    let result = poll_fn(|cx| {
        controller.register(cx.waker());
        while let Some(info) = controller.take_informational() {
            deliver_informational(controller, handler, &info);
        }
        if let Some(reason) = controller.aborted() {
            return Poll::Ready(Err(reason));
        }
        sending.as_mut().poll(cx)
    })
    .await;
    let response = result?;
    // The connection queued every 1xx before it answered the final head.
    while let Some(info) = controller.take_informational() {
        deliver_informational(controller, handler, &info);
    }
    if let Some(reason) = controller.aborted() {
        return Err(reason);
    }
    Ok(response)
}

fn deliver_informational<H: Handler>(
    controller: &Controller,
    handler: &mut H,
    info: &Informational,
) {
    if controller.is_aborted() {
        return;
    }
    let text = info.status.canonical_reason().unwrap_or("");
    handler.on_response_start(controller, info.status, &info.headers, text);
}

async fn upgrade<H: Handler>(mut handler: H, controller: &Controller, mut response: Response) -> H {
    match take_over(&mut response).await {
        Ok(socket) => {
            controller.finish();
            let (parts, _) = response.into_parts();
            handler.on_request_upgrade(controller, parts.status, &parts.headers, socket);
            handler
        }
        Err(error) => fail(handler, controller, error),
    }
}

/// Reads the body into `on_response_data` while not paused, keeping the
/// trailers; ready at the end, or with the error or abort reason.
fn poll_body<H: Handler>(
    controller: &Controller,
    handler: &mut H,
    body: &mut Body,
    trailers: &mut Option<Box<HeaderMap>>,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Error>> {
    controller.register(cx.waker());
    loop {
        if let Some(reason) = controller.aborted() {
            return Poll::Ready(Err(reason));
        }
        // Paused: the body is not polled, so the connection is not read
        // and the server's writes back up. `resume` wakes us.
        if controller.is_paused() {
            return Poll::Pending;
        }
        let frame = match std::pin::Pin::new(&mut *body).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => return Poll::Ready(Ok(())),
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Err(error)),
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        match frame.into_data() {
            Ok(chunk) if !chunk.is_empty() => handler.on_response_data(controller, chunk),
            Ok(_) => {}
            Err(frame) => {
                if let Ok(received) = frame.into_trailers() {
                    *trailers = Some(Box::new(received));
                }
            }
        }
    }
}

/// The reason phrase the server sent (hyper keeps it when it is not the
/// canonical one), else the canonical one.
fn status_text(status: StatusCode, extensions: &http::Extensions) -> &str {
    extensions
        .get::<hyper::ext::ReasonPhrase>()
        .and_then(|reason| std::str::from_utf8(reason.as_bytes()).ok())
        .or(status.canonical_reason())
        .unwrap_or("")
}
