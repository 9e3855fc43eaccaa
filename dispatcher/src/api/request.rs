//! `request()`.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use pin_project_lite::pin_project;
use tower_service::Service;

use crate::error::Error;
use crate::{Request, Response};

/// Sends `request` through `service`: at once when the service is ready
/// already, as undici's `request()` starts when it is called; otherwise
/// once the returned future has waited for it.
///
/// A dispatcher of this crate is nearly always ready (its readiness is a
/// permit from an atomic count), and calling it now hands the request
/// straight to `call`: a future that waits first keeps the request in its
/// state and moves it in and out of it (two copies of a few hundred
/// bytes, and every move of the future carries the request's room).
pub(super) fn request<S>(mut service: S, request: Request) -> Sending<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    if let Err(error) = super::refuse_connect(&request, "request") {
        return Sending::failed(error);
    }
    // A service that is not ready is asked again, with the caller's waker,
    // when the future is polled: it keeps only the latest waker.
    let mut cx = Context::from_waker(Waker::noop());
    let state = match service.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => State::Called {
            future: service.call(request),
        },
        Poll::Ready(Err(error)) => return Sending::failed(error),
        Poll::Pending => State::Waiting {
            waiting: Some(Box::new((service, request))),
        },
    };
    Sending { state }
}

pin_project! {
    /// The future of `request()`.
    pub(super) struct Sending<S: Service<Request>> {
        #[pin]
        state: State<S>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S: Service<Request>> {
        // Boxed, as it is rare: the future stays the size of the call's.
        Waiting { waiting: Option<Box<(S, Request)>> },
        Called { #[pin] future: S::Future },
        Failed { error: Option<Error> },
    }
}

impl<S: Service<Request>> Sending<S> {
    fn failed(error: Error) -> Self {
        Sending {
            state: State::Failed { error: Some(error) },
        }
    }
}

impl<S> Future for Sending<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Output = Result<Response, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Called { future } => return future.poll(cx),
                StateProj::Waiting { waiting } => {
                    let Some(pending) = waiting.as_mut() else {
                        panic!("`request()` polled after it answered");
                    };
                    if let Err(error) = ready!(pending.0.poll_ready(cx)) {
                        *waiting = None;
                        return Poll::Ready(Err(error));
                    }
                    let Some(pending) = waiting.take() else {
                        unreachable!("checked above")
                    };
                    let (mut service, request) = *pending;
                    let future = service.call(request);
                    state.set(State::Called { future });
                }
                StateProj::Failed { error } => {
                    let Some(error) = error.take() else {
                        panic!("`request()` polled after it answered");
                    };
                    return Poll::Ready(Err(error));
                }
            }
        }
    }
}
