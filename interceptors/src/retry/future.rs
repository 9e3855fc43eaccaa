//! `RetryFuture`, and `Attempts`: sending a request again until the policy
//! gives up, shared with the resumable body.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use http::header::{IF_MATCH, RANGE};
use http::{HeaderValue, Method};
use http_body::Body as _;
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower_service::Service;
use undici_dispatcher::{try_clone_request, Body, Error, ErrorKind, Request, Response};

use super::body;
use super::policy::{Attempt, Outcome, RetryOptions, RetryPolicy};

/// What is kept of a request to send it again: a copy of it, with its
/// (replayable) body.
pub(crate) struct Template {
    /// Boxed: every layer above moves the future that holds it, and a
    /// request is half of it.
    request: Box<Request>,
}

impl Template {
    /// A copy of `request`; `None` when its body is a stream.
    pub(crate) fn keep(request: &Request) -> Option<Template> {
        try_clone_request(request).map(|request| Template {
            request: Box::new(request),
        })
    }

    fn build(&self, resume: Option<&Resume>) -> Request {
        let mut request = try_clone_request(&self.request).unwrap_or_default();
        if let Some(resume) = resume {
            let headers = request.headers_mut();
            headers.insert(RANGE, resume.range.clone());
            headers.insert(IF_MATCH, resume.if_match.clone());
        }
        request
    }
}

/// The headers that ask for the rest of an interrupted body.
pub(crate) struct Resume {
    pub(crate) range: HeaderValue,
    pub(crate) if_match: HeaderValue,
}

/// What to do once a discarded body is gone.
enum Next {
    Retry(Duration),
    Fail(Error),
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Calling { #[pin] future: F },
        Discarding { body: Body, read: u64, next: Option<Next> },
        // Boxed, as retries are rare: the future stays the size of the
        // inner one.
        Sleeping { sleep: Pin<Box<Sleep>> },
        Ready,
        Idle,
    }
}

pin_project! {
    /// Attempts of one request: sends it, asks the policy about failures,
    /// discards retried responses' bodies, waits, sends it again.
    pub(crate) struct Attempts<S, P>
    where
        S: Service<Request>,
    {
        service: S,
        template: Option<Template>,
        policy: P,
        options: Arc<RetryOptions>,
        retries: u32,
        dump_max_size: u64,
        // Boxed: rare, and every layer above moves this future.
        resume: Option<Box<Resume>>,
        #[pin]
        state: State<S::Future>,
    }
}

/// Asks the policy about a failed attempt; never for a request without a
/// copy to send again.
fn decide<P: RetryPolicy>(
    policy: &P,
    template: Option<&Template>,
    options: &RetryOptions,
    retries: u32,
    outcome: Outcome<'_>,
) -> Option<Duration> {
    let template = template?;
    let counter = retries.saturating_add(1);
    let attempt = Attempt::new(
        template.request.method(),
        template.request.uri(),
        counter,
        outcome,
        options,
    );
    policy.retry(&attempt)
}

fn wait<F>(delay: Duration) -> State<F> {
    if delay.is_zero() {
        State::Ready
    } else {
        State::Sleeping {
            sleep: Box::pin(tokio::time::sleep(delay)),
        }
    }
}

impl<S, P> Attempts<S, P>
where
    S: Service<Request, Response = Response, Error = Error> + Clone,
    P: RetryPolicy,
{
    pub(crate) fn new(
        service: S,
        template: Option<Template>,
        policy: P,
        options: Arc<RetryOptions>,
        dump_max_size: u64,
        future: S::Future,
    ) -> Self {
        Attempts {
            service,
            template,
            policy,
            options,
            retries: 0,
            dump_max_size,
            resume: None,
            state: State::Calling { future },
        }
    }

    /// Retries made so far.
    pub(crate) fn retries(&self) -> u32 {
        self.retries
    }

    pub(crate) fn options(&self) -> &RetryOptions {
        &self.options
    }

    /// The method of a request that may be sent again.
    pub(crate) fn retryable_method(&self) -> Option<&Method> {
        self.template
            .as_ref()
            .map(|template| template.request.method())
    }

    /// Moves the request's copy, the service and the count into new
    /// attempts, for the body that resumes the download.
    pub(crate) fn detach(self: Pin<&mut Self>) -> Attempts<S, P> {
        let this = self.project();
        Attempts {
            service: this.service.clone(),
            template: this.template.take(),
            policy: this.policy.clone(),
            options: this.options.clone(),
            retries: *this.retries,
            dump_max_size: *this.dump_max_size,
            resume: None,
            state: State::Idle,
        }
    }

    /// Reads and discards `body` (up to the dump limit), then fails with
    /// `error`: the connection survives an error the caller asked for.
    pub(crate) fn fail_after_discard(self: Pin<&mut Self>, body: Body, error: Error) {
        let mut this = self.project();
        let state = discard(body, *this.dump_max_size, Next::Fail(error));
        this.state.set(state);
    }

    /// After the body broke off with `error`: asks the policy, and if it
    /// says so, sends the request again with `resume`'s headers after the
    /// delay. False when the policy gives up.
    pub(crate) fn retry_body(self: Pin<&mut Self>, error: &Error, resume: Resume) -> bool {
        let mut this = self.project();
        let outcome = Outcome::Error(error);
        let options = &**this.options;
        let Some(delay) = decide(
            this.policy,
            this.template.as_ref(),
            options,
            *this.retries,
            outcome,
        ) else {
            return false;
        };
        *this.retries += 1;
        *this.resume = Some(Box::new(resume));
        this.state.set(wait(delay));
        true
    }

    /// Drives the attempts to a response the policy does not retry (which
    /// may be a failing status) or an error it does not retry.
    pub(crate) fn poll_response(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Response, Error>> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    let options = &**this.options;
                    let template = this.template.as_ref();
                    let decision = match &result {
                        Ok(response) if response.status().as_u16() < 300 => None,
                        Ok(response) => {
                            let outcome = Outcome::Status {
                                status: response.status(),
                                headers: response.headers(),
                            };
                            decide(this.policy, template, options, *this.retries, outcome)
                        }
                        Err(error) => decide(
                            this.policy,
                            template,
                            options,
                            *this.retries,
                            Outcome::Error(error),
                        ),
                    };
                    let Some(delay) = decision else {
                        this.state.set(State::Idle);
                        return Poll::Ready(result);
                    };
                    *this.retries += 1;
                    let next = match result {
                        Ok(response) => discard(
                            response.into_body(),
                            *this.dump_max_size,
                            Next::Retry(delay),
                        ),
                        Err(_) => wait(delay),
                    };
                    this.state.set(next);
                }
                StateProj::Discarding { body, read, next } => {
                    if !crate::discard::poll_discard_and_drop(body, read, *this.dump_max_size, cx)
                        .is_ready()
                    {
                        return Poll::Pending;
                    }
                    match next.take() {
                        Some(Next::Retry(delay)) => this.state.set(wait(delay)),
                        Some(Next::Fail(error)) => {
                            this.state.set(State::Idle);
                            return Poll::Ready(Err(error));
                        }
                        None => this.state.set(State::Idle),
                    }
                }
                StateProj::Sleeping { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    this.state.set(State::Ready);
                }
                StateProj::Ready => {
                    if let Err(error) = ready!(this.service.poll_ready(cx)) {
                        let options = &**this.options;
                        let template = this.template.as_ref();
                        let outcome = Outcome::Error(&error);
                        match decide(this.policy, template, options, *this.retries, outcome) {
                            Some(delay) => {
                                *this.retries += 1;
                                this.state.set(wait(delay));
                                continue;
                            }
                            None => {
                                this.state.set(State::Idle);
                                return Poll::Ready(Err(error));
                            }
                        }
                    }
                    let Some(template) = this.template.as_ref() else {
                        this.state.set(State::Idle);
                        return Poll::Ready(Err(not_replayable()));
                    };
                    let request = template.build(this.resume.as_deref());
                    let future = this.service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Idle => {
                    return Poll::Ready(Err(Error::new(
                        ErrorKind::RequestRetry,
                        "the retry attempts were already driven to their end",
                    )))
                }
            }
        }
    }
}

fn not_replayable() -> Error {
    Error::new(
        ErrorKind::RequestRetry,
        "the request cannot be sent again: its body is a stream",
    )
}

/// Starts discarding `body`, unless it is over the limit already by its
/// size (then it is dropped, closing its connection).
fn discard<F>(body: Body, limit: u64, next: Next) -> State<F> {
    if body.size_hint().lower() > limit {
        return match next {
            Next::Retry(delay) => wait(delay),
            Next::Fail(error) => State::Discarding {
                body: Body::empty(),
                read: 0,
                next: Some(Next::Fail(error)),
            },
        };
    }
    State::Discarding {
        body,
        read: 0,
        next: Some(next),
    }
}

pin_project! {
    /// The response future of [`Retry`](super::Retry): the response of the
    /// last attempt, once the policy no longer retries.
    pub struct RetryFuture<S, P>
    where
        S: Service<Request>,
    {
        #[pin]
        kind: Kind<S, P>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<S, P>
    where
        S: Service<Request>,
    {
        // Nothing to do for this request: the inner future as it is.
        Passthrough { #[pin] future: S::Future },
        Retrying { #[pin] attempts: Attempts<S, P>, throw_on_error: bool },
    }
}

impl<S, P> RetryFuture<S, P>
where
    S: Service<Request>,
{
    pub(crate) fn passthrough(future: S::Future) -> Self {
        RetryFuture {
            kind: Kind::Passthrough { future },
        }
    }

    pub(crate) fn retrying(attempts: Attempts<S, P>, throw_on_error: bool) -> Self {
        RetryFuture {
            kind: Kind::Retrying {
                attempts,
                throw_on_error,
            },
        }
    }
}

impl<S, P> Future for RetryFuture<S, P>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: RetryPolicy,
{
    type Output = Result<Response, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Passthrough { future } => future.poll(cx),
            KindProj::Retrying {
                mut attempts,
                throw_on_error,
            } => loop {
                let mut response = ready!(attempts.as_mut().poll_response(cx))?;
                let status = response.status();
                if status.as_u16() < 300 {
                    body::resume_on_break(&mut response, attempts.as_mut());
                    return Poll::Ready(Ok(response));
                }
                if !*throw_on_error || !attempts.options().is_retryable_status(status) {
                    return Poll::Ready(Ok(response));
                }
                let (parts, body) = response.into_parts();
                let error = Error::new(ErrorKind::RequestRetry, "Request failed")
                    .with_status(status)
                    .with_headers(parts.headers)
                    .with_retry_count(attempts.retries());
                attempts.as_mut().fail_after_discard(body, error);
            },
        }
    }
}

impl<S, P> std::fmt::Debug for RetryFuture<S, P>
where
    S: Service<Request>,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryFuture").finish_non_exhaustive()
    }
}
