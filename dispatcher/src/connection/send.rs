//! One request on a pooled connection: undici's request checks, the wait
//! for a connection, the headers timeout, and the transparent retries a
//! request may get when the server never saw it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, StatusCode, Uri, Version};
use hyper::body::Incoming;
use hyper::client::conn::TrySendError;
use pin_project_lite::pin_project;
use tokio::sync::oneshot;

use crate::error::Error;
use crate::options::{ForwardInformational, Informational, OnInfo, Opaque, RequestOptions};
use crate::origin::Origin;
use crate::{Body, Request, Response};

use super::body::{exceeded_max_size, ResponseBody};
use super::errors::{self, Phase};
use super::gate::Permit;
use super::lease::{Lease, Sender};
use super::pool::{Checkout, Outcome, Shared};
use super::stream_deadlines::{DueStream, Late, PRECISE_UP_TO};

/// Tries of one request: a connection that died before the request was
/// written (or, for a replayable request, just after) gets the request
/// again on another connection, a bounded number of times.
const MAX_ATTEMPTS: u32 = 3;

/// What the connection needs to know about one request, read once.
struct Exchange {
    headers_timeout: Option<Duration>,
    body_timeout: Option<Duration>,
    idempotent: bool,
    reset: bool,
    /// An upgrade or a CONNECT: never replayed.
    upgrade: bool,
    /// A CONNECT, whose 2xx hands the connection over (an upgrade needs a
    /// 101: any other answer is an ordinary response with its body).
    connect: bool,
    opaque: Option<Opaque>,
    /// Handed to hyper with each attempt, after the replay copy is taken
    /// (the copy then has one extension less to clone).
    on_info: Option<OnInfo>,
}

/// Sends `request` on a connection of the pool; the future answers the
/// head of the response.
///
/// The checks and the first checkout happen now, before the future is
/// polled: the request holds a connection or its place in the queue from
/// the call on, as an undici `dispatch` does. A request that went through
/// the readiness gate (it holds a permit) was accepted before any `close`.
pub(crate) fn send(
    shared: Arc<Shared>,
    mut request: Request,
    permit: Option<Permit>,
) -> Result<Box<Call>, Error> {
    let admitted = permit.is_some();
    let exchange = Exchange::prepare(&shared, &mut request)?;
    let checkout = shared.checkout(admitted)?;
    let mut call = Box::new(Call {
        head: None,
        lease: None,
        waiting: None,
        request: Some(request),
        permit,
        exchange,
        shared,
        attempt: 1,
    });
    call.checked_out(checkout);
    Ok(call)
}

/// One request through the pool, from the checkout to the response head:
/// the future inside a Client's or Pool's `ResponseFuture`.
///
/// Written by hand rather than as an `async fn`: the state of an `async
/// fn` keeps its arguments besides its locals and moves the request (a
/// few hundred bytes) between them, and its size (two kilobytes) took a
/// slow path of the allocator on every request. Here the request stays
/// in place until hyper takes it, and only hyper's future is boxed.
///
/// Where it is: waiting in the queue (`waiting`), holding a connection
/// that has to become ready (`lease`), or sent and waiting for the head
/// (`head`).
pub(crate) struct Call {
    // Dropped in this order: hyper's future (an HTTP/1 request in flight
    // closes its connection), then the lease, then the readiness permit.
    head: Option<BoxFuture<'static, Head>>,
    lease: Option<Lease>,
    waiting: Option<oneshot::Receiver<Result<Lease, Error>>>,
    /// The request, until it is handed to hyper (or back from it); while
    /// hyper has it, the copy to send again if the connection fails under
    /// it. One place for both keeps the call a request smaller.
    request: Option<Request>,
    permit: Option<Permit>,
    exchange: Exchange,
    shared: Arc<Shared>,
    attempt: u32,
}

/// hyper's answer to one attempt: the response head, or why there is
/// none.
type Head = Result<http::Response<Incoming>, Unanswered>;

/// Why an attempt has no response head.
enum Unanswered {
    /// hyper gave up on it (and may hand the request back). Boxed, as it
    /// is rare: the answer then moves in the size of a response instead
    /// of a request's.
    Failed(Box<TrySendError<Request>>),
    /// The head came too late for an HTTP/2 stream's own timer.
    Late,
}

impl Late for Head {
    fn late() -> Self {
        Err(Unanswered::Late)
    }
}

pin_project! {
    /// hyper's answer to one attempt as a [`Head`]. A future of its own
    /// rather than `FutureExt::map` with a closure: through the closure
    /// the response was copied four times more.
    struct Answer<F> {
        #[pin]
        sending: F,
    }
}

impl<F> Answer<F> {
    fn new(sending: F) -> Self {
        Answer { sending }
    }
}

impl<F> Future for Answer<F>
where
    F: Future<Output = Result<http::Response<Incoming>, TrySendError<Request>>>,
{
    type Output = Head;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Head> {
        let answer = ready!(self.project().sending.poll(cx));
        Poll::Ready(answer.map_err(|err| Unanswered::Failed(Box::new(err))))
    }
}

/// What an attempt that did not answer leaves to do.
enum Next {
    /// Try again with this request, accepted already (`close` lets it in).
    /// Boxed, as retries are rare: the common answer, a response, then
    /// comes back in half the room.
    Retry(Box<Request>),
    Fail(Error),
}

impl Future for Call {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        loop {
            if let Some(head) = &mut this.head {
                let answer = ready!(head.as_mut().poll(cx));
                this.head = None;
                match this.answered(answer) {
                    Ok(response) => return Poll::Ready(Ok(response)),
                    Err(next) => this.then(next)?,
                }
                continue;
            }
            if let Some(lease) = &mut this.lease {
                let ready = match lease.sender() {
                    Some(sender) => ready!(sender.poll_ready(cx)),
                    None => {
                        // Not a connection any more: take another.
                        this.lease = None;
                        this.retry()?;
                        continue;
                    }
                };
                match ready {
                    Ok(()) => this.start(),
                    Err(err) => {
                        let next = this.unready(err);
                        this.then(next)?;
                    }
                }
                continue;
            }
            let Some(waiting) = &mut this.waiting else {
                panic!("`Call` polled after it answered");
            };
            let leased = ready!(Pin::new(waiting).poll(cx));
            this.waiting = None;
            let leased = leased.unwrap_or_else(|_| {
                Err(this.shared.destroyed_error().unwrap_or_else(Error::closed))
            });
            this.lease = Some(leased?);
        }
    }
}

impl Call {
    fn checked_out(&mut self, checkout: Checkout) {
        match checkout {
            Checkout::Ready(lease) => self.lease = Some(lease),
            Checkout::Wait(waiting) => self.waiting = Some(waiting),
        }
    }

    fn then(&mut self, next: Next) -> Result<(), Error> {
        match next {
            Next::Retry(request) => {
                self.request = Some(*request);
                self.retry()
            }
            Next::Fail(error) => Err(error),
        }
    }

    /// Another attempt: a new checkout, a place in the queue.
    #[cold]
    #[inline(never)]
    fn retry(&mut self) -> Result<(), Error> {
        self.attempt += 1;
        // Later attempts are the same request, accepted already.
        let checkout = self.shared.checkout(true)?;
        self.checked_out(checkout);
        Ok(())
    }

    /// The connection died before our request was written: safe to try
    /// another.
    #[cold]
    #[inline(never)]
    fn unready(&mut self, err: hyper::Error) -> Next {
        let Some(mut lease) = self.lease.take() else {
            unreachable!("unready without a lease")
        };
        lease.set_outcome(Outcome::Discard);
        let request = self.request.take();
        if let Some(request) = request.filter(|_| self.attempt < MAX_ATTEMPTS) {
            return Next::Retry(Box::new(request));
        }
        let error = errors::from_hyper(err, Phase::Head, lease.socket());
        lease.fail(&error);
        Next::Fail(error)
    }

    /// Hands the request to hyper on the leased connection.
    fn start(&mut self) {
        let (Some(lease), Some(mut request)) = (&mut self.lease, self.request.take()) else {
            unreachable!("started without a lease and a request")
        };
        let exchange = &self.exchange;
        // The copy takes the request's place while hyper has it, made in
        // that place (a copy made aside would be moved in). It is made
        // before `set_target` adds the `Host` header: a request without
        // headers of its own then copies without allocating, and a replay
        // goes through `set_target` again anyway. (Sending the copy
        // instead would move a request once less, but the 1xx hook would
        // then allocate the copy's extension map, where the request's,
        // allocated by `dispatch()`, is reused.)
        if self.attempt < MAX_ATTEMPTS && may_replay(exchange, &request, lease) {
            self.request = crate::try_clone_request(&request);
        }
        set_target(&mut request, &self.shared, lease.is_h2());
        // hyper's HTTP/2 client never hands over a 1xx head: no hook
        // (two allocations) for a stream.
        if let Some(on_info) = exchange.on_info.as_ref().filter(|_| !lease.is_h2()) {
            hook_informational(&mut request, on_info.clone());
        }
        // In flight: if this future is dropped now, the connection goes.
        lease.set_outcome(Outcome::Discard);
        let timeout = exchange.headers_timeout;
        let taken = lease.taken_at();
        self.head = Some(match lease.sender() {
            Some(Sender::H1(tx, deadline)) => {
                if let Some(timeout) = timeout {
                    // The connection's task keeps the deadline (see
                    // `HeadDeadline`); it is written before hyper gets
                    // the request, whose wake-up of the task carries it.
                    // It counts from the handover of the connection, a
                    // moment ago (HTTP/1 is ready at once when reused).
                    deadline.arm(taken + timeout);
                }
                Box::pin(Answer::new(tx.try_send_request(request)))
            }
            Some(Sender::H2(tx, deadlines)) => {
                let sending = Answer::new(tx.try_send_request(request));
                match timeout {
                    // A long timeout is swept by the connection's task, as
                    // undici's fast timers do (see `StreamDeadlines`).
                    Some(timeout) if timeout > PRECISE_UP_TO => {
                        Box::pin(DueStream::new(sending, deadlines.clone(), taken + timeout))
                    }
                    // Streams share the connection: each has its own
                    // timer, from the handover's clock read.
                    Some(timeout) => Box::pin(async move {
                        let due = taken + timeout;
                        let answer = tokio::time::timeout_at(due, sending).await;
                        answer.unwrap_or_else(|_| Head::late())
                    }),
                    None => Box::pin(sending),
                }
            }
            None => unreachable!("a ready connection has its sender"),
        });
    }

    /// What hyper answered: the response, or the next thing to do.
    fn answered(&mut self, answer: Head) -> Result<Response, Next> {
        let Some(mut lease) = self.lease.take() else {
            unreachable!("answered without a lease")
        };
        // HTTP/1: the task ended the connection under a late head.
        let late = match lease.sender() {
            Some(Sender::H1(_, deadline)) => {
                self.exchange.headers_timeout.is_some() && !deadline.disarm()
            }
            _ => false,
        };
        if late {
            return Err(Next::Fail(late_head(lease)));
        }
        match answer {
            Ok(response) => {
                // The replay copy is dropped where it lies: moving it out
                // first would copy a request's worth of bytes.
                self.request = None;
                let permit = self.permit.take();
                self.exchange
                    .finish(response, lease, permit)
                    .map_err(Next::Fail)
            }
            Err(Unanswered::Failed(err)) => Err(self.failed(*err, lease)),
            Err(Unanswered::Late) => Err(Next::Fail(late_head(lease))),
        }
    }

    /// hyper gave up on the attempt: another one, or the error. Out of
    /// line, as it is rare: the common path of a call stays dense in the
    /// instruction cache.
    #[cold]
    #[inline(never)]
    fn failed(&mut self, mut err: TrySendError<Request>, mut lease: Lease) -> Next {
        let replay = self.request.take();
        if let Some(unsent) = err.take_message() {
            if self.attempt < MAX_ATTEMPTS {
                return Next::Retry(Box::new(unsent));
            }
        }
        let err = err.into_error();
        if lease.is_h2() && errors::is_unprocessed(&err) {
            lease.set_outcome(Outcome::Retire);
        }
        if let Some(copy) = replay.filter(|_| may_retry_after(&err, &lease)) {
            return Next::Retry(Box::new(copy));
        }
        if let Some(destroyed) = self.shared.destroyed_error() {
            return Next::Fail(destroyed);
        }
        let error = errors::from_hyper(err, Phase::Head, lease.socket());
        lease.fail(&error);
        Next::Fail(error)
    }
}

/// The head came after the headers timeout: the connection goes.
#[cold]
#[inline(never)]
fn late_head(mut lease: Lease) -> Error {
    let error = errors::headers_timeout().with_socket(lease.socket());
    lease.fail(&error);
    error
}

/// Whether to keep a copy of the request to send again if the connection
/// fails under it: an HTTP/2 stream the server may refuse unprocessed
/// (GOAWAY, `REFUSED_STREAM`), or an idempotent request on a reused
/// HTTP/1 connection the server may have closed as we reused it.
fn may_replay(exchange: &Exchange, request: &Request, lease: &Lease) -> bool {
    if exchange.upgrade || !request.body().is_replayable() {
        return false;
    }
    lease.is_h2() || (lease.is_reused() && exchange.idempotent)
}

fn may_retry_after(err: &hyper::Error, lease: &Lease) -> bool {
    if lease.is_h2() {
        errors::is_unprocessed(err)
    } else {
        errors::is_unprocessed(err) || errors::is_closed_under_request(err)
    }
}

/// Has hyper hand each 1xx response of `request` to `on_info`.
fn hook_informational(request: &mut Request, on_info: OnInfo) {
    hyper::ext::on_informational(request, move |info| {
        on_info.call(&Informational {
            status: info.status(),
            headers: info.headers().clone(),
        });
    });
}

/// Points the request at the connection: origin-form and a `Host`
/// header for HTTP/1, absolute-form (the `:scheme` and `:authority`
/// pseudo-headers) for HTTP/2.
fn set_target(request: &mut Request, shared: &Shared, h2: bool) {
    let origin = &shared.origin;
    let connect = request.method() == Method::CONNECT;
    if !h2 && !connect {
        let uri = request.uri();
        let origin_form =
            uri.scheme().is_none() && uri.authority().is_none() && uri.path_and_query().is_some();
        if !origin_form {
            // An absolute URL (an Agent's request): its path, without
            // `Uri::from_parts` checking again what was checked. A Pool's
            // usual request is origin-form already and stays whole.
            let path = std::mem::take(request.uri_mut())
                .into_parts()
                .path_and_query;
            *request.uri_mut() = Uri::from(path.unwrap_or_else(|| PathAndQuery::from_static("/")));
        }
        set_http1_head(request, shared);
        return;
    }
    let mut parts = std::mem::take(request.uri_mut()).into_parts();
    if connect {
        parts.scheme = None;
        parts.path_and_query = None;
        if parts.authority.is_none() {
            parts.authority = Some(origin.authority().clone());
        }
    } else {
        parts.scheme = Some(origin.scheme().clone());
        parts.authority = Some(origin.authority().clone());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(PathAndQuery::from_static("/"));
        }
    }
    *request.uri_mut() = Uri::from_parts(parts).unwrap_or_else(|_| Uri::from_static("/"));
    if h2 {
        *request.version_mut() = Version::HTTP_2;
    } else {
        set_http1_head(request, shared);
    }
}

fn set_http1_head(request: &mut Request, shared: &Shared) {
    *request.version_mut() = Version::HTTP_11;
    if !request.headers().contains_key(header::HOST) {
        request
            .headers_mut()
            .insert(header::HOST, shared.host_header.clone());
    }
}

impl Exchange {
    /// undici's request checks (`lib/core/request.js`), and the headers
    /// they add.
    fn prepare(shared: &Shared, request: &mut Request) -> Result<Exchange, Error> {
        check_origin(&shared.origin, request.uri())?;
        let names = HeaderNames::of(request.headers());
        check_headers(request.headers(), &names)?;
        let defaults = &shared.options;
        if defaults.strict_content_length && names.content_length {
            check_content_length(request)?;
        }
        let headers = request.headers();
        let options = RequestOptions::of(request);
        let upgrade_protocol = options.and_then(|o| o.upgrade_protocol().map(str::to_owned));
        let is_connect = request.method() == Method::CONNECT;
        let closes = names.connection && has_token(headers.get(header::CONNECTION), "close");
        if options.is_some_and(RequestOptions::is_expect_continue) {
            return Err(Error::not_supported(
                "expect: 100-continue is not supported over HTTP/1.1 (as in undici)",
            ));
        }
        let mut exchange = Exchange {
            headers_timeout: options
                .and_then(RequestOptions::headers_timeout_override)
                .map_or(defaults.headers_timeout, |t| (!t.is_zero()).then_some(t)),
            body_timeout: options
                .and_then(RequestOptions::body_timeout_override)
                .map_or(defaults.body_timeout, |t| (!t.is_zero()).then_some(t)),
            idempotent: options.map_or_else(
                || crate::options::is_idempotent_method(request.method()),
                |o| o.is_idempotent(request.method()),
            ),
            reset: closes
                || defaults.pipelining == 0
                || options.is_some_and(RequestOptions::is_reset),
            upgrade: upgrade_protocol.is_some() || is_connect,
            connect: is_connect,
            opaque: options.and_then(|o| o.opaque_value().cloned()),
            on_info: options.and_then(|o| o.on_info_callback().cloned()),
        };
        // Read once, here; nothing past this point reads them, so the
        // replay copy need not clone them.
        let had_options = options.is_some();
        let extensions = request.extensions_mut();
        if had_options {
            extensions.remove::<RequestOptions>();
        }
        if let Some(ForwardInformational(forward)) = extensions.remove() {
            exchange.on_info.get_or_insert(forward);
        }

        if let Some(protocol) = upgrade_protocol {
            let value = HeaderValue::from_str(&protocol)
                .map_err(|_| Error::invalid_argument("invalid upgrade protocol"))?;
            let headers = request.headers_mut();
            headers.insert(header::UPGRADE, value);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        } else if exchange.reset && !closes {
            request
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok(exchange)
    }

    /// Wraps the response: its body gives the connection back when it
    /// ends; an upgrade takes the connection out of the pool.
    fn finish(
        &mut self,
        response: http::Response<Incoming>,
        mut lease: Lease,
        permit: Option<Permit>,
    ) -> Result<Response, Error> {
        let (mut parts, incoming) = response.into_parts();
        if let Some(opaque) = self.opaque.take() {
            parts.extensions.insert(opaque);
        }
        let upgraded = parts.status == StatusCode::SWITCHING_PROTOCOLS
            || (self.connect && parts.status.is_success() && !lease.is_h2());
        if upgraded {
            lease.set_outcome(Outcome::Detach);
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let options = &lease.shared().options;
        let found = ResponseHeaders::of(&parts.headers);
        // hyper has parsed and checked the content-length already: its
        // body knows it.
        let content_length = http_body::Body::size_hint(&incoming).exact();
        if let (Some(max), Some(length)) = (options.max_response_size, content_length) {
            if length > max {
                return Err(exceeded_max_size(Some(max)));
            }
        }
        let outcome = if lease.is_h2() {
            Outcome::Reuse(None)
        } else {
            keep_alive(parts.version, &found, self.reset, options)
        };
        let max_size = options.max_response_size;
        if http_body::Body::is_end_stream(&incoming) {
            // Nothing to read (HEAD, 204, 304, an empty body): the
            // connection is free now, whether or not the body is polled.
            lease.set_outcome(outcome);
            return Ok(Response::from_parts(parts, Body::empty()));
        }
        let body = ResponseBody::new(
            incoming,
            lease,
            permit,
            outcome,
            self.body_timeout,
            max_size,
            content_length.is_some(),
        );
        Ok(Response::from_parts(parts, Body::response(body)))
    }
}

/// Requests for another origin are refused: a Client or Pool serves one
/// origin, and sending elsewhere silently would be worse than an error.
fn check_origin(origin: &Origin, uri: &Uri) -> Result<(), Error> {
    // A relative URI, or CONNECT's authority-form (which names the
    // tunnel's target, not us), or the origin as an Agent routed it.
    if uri.scheme().is_none() || origin.is_spelled_in(uri) {
        return Ok(());
    }
    let target = Origin::from_uri(uri)?;
    if &target != origin {
        return Err(Error::invalid_argument(format!(
            "request to {target} sent to a dispatcher for {origin}; use an Agent for several origins"
        )));
    }
    Ok(())
}

/// `keep-alive`, which `http` has no constant for.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// What one pass over a request's header names found, for the checks
/// that would otherwise look each name up in turn.
#[derive(Default)]
struct HeaderNames {
    transfer_encoding: bool,
    keep_alive: bool,
    upgrade: bool,
    expect: bool,
    content_length: bool,
    connection: bool,
}

impl HeaderNames {
    /// Most requests carry a handful of headers or none: one walk over
    /// the names costs less than a hashed lookup per name.
    fn of(headers: &HeaderMap) -> Self {
        let mut found = HeaderNames::default();
        for name in headers.keys() {
            if name == header::TRANSFER_ENCODING {
                found.transfer_encoding = true;
            } else if name == header::UPGRADE {
                found.upgrade = true;
            } else if name == header::EXPECT {
                found.expect = true;
            } else if name == header::CONTENT_LENGTH {
                found.content_length = true;
            } else if name == header::CONNECTION {
                found.connection = true;
            } else if name == KEEP_ALIVE {
                found.keep_alive = true;
            }
        }
        found
    }
}

/// Headers undici refuses, because they are the connection's business.
fn check_headers(headers: &HeaderMap, names: &HeaderNames) -> Result<(), Error> {
    if names.transfer_encoding {
        return Err(Error::invalid_argument(
            "invalid transfer-encoding header: the body decides the framing",
        ));
    }
    if names.keep_alive {
        return Err(Error::invalid_argument(
            "invalid keep-alive header: use the reset option or keep_alive_timeout",
        ));
    }
    if names.upgrade {
        return Err(Error::invalid_argument(
            "invalid upgrade header: use the upgrade option",
        ));
    }
    if names.expect {
        return Err(Error::not_supported("expect header not supported"));
    }
    if names.content_length && headers.get_all(header::CONTENT_LENGTH).iter().count() > 1 {
        return Err(Error::invalid_argument("duplicate content-length header"));
    }
    Ok(())
}

/// The response headers the pool reads, found in one pass over the
/// names (a response has a handful) rather than a hashed lookup each.
#[derive(Default)]
struct ResponseHeaders<'a> {
    connection: Option<&'a HeaderValue>,
    keep_alive: Option<&'a HeaderValue>,
}

impl<'a> ResponseHeaders<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        let mut found = ResponseHeaders::default();
        for (name, value) in headers {
            let slot = if name == header::CONNECTION {
                &mut found.connection
            } else if name == KEEP_ALIVE {
                &mut found.keep_alive
            } else {
                continue;
            };
            // The first value, as `HeaderMap::get` answers.
            slot.get_or_insert(value);
        }
        found
    }
}

/// `strict_content_length`: a known body must match its content-length
/// now; a streamed one is counted as it is sent.
fn check_content_length(request: &mut Request) -> Result<(), Error> {
    let Some(value) = request.headers().get(header::CONTENT_LENGTH) else {
        return Ok(());
    };
    let declared = value
        .to_str()
        .ok()
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| Error::invalid_argument("invalid content-length header"))?;
    let actual = http_body::Body::size_hint(request.body()).exact();
    match actual {
        Some(actual) if actual != declared => Err(crate::body::length_mismatch()),
        Some(_) => Ok(()),
        None => {
            let body = std::mem::take(request.body_mut());
            *request.body_mut() = body.length_checked(declared);
            Ok(())
        }
    }
}

/// undici's keep-alive rules for HTTP/1: `connection: close` or HTTP/1.0
/// end the connection; `Keep-Alive: timeout=N` sets its idle life to
/// `N - threshold`, capped, and a hint at or under the threshold ends it.
fn keep_alive(
    version: Version,
    found: &ResponseHeaders<'_>,
    reset: bool,
    options: &crate::ClientOptions,
) -> Outcome {
    if reset {
        return Outcome::Discard;
    }
    let connection = found.connection;
    if has_token(connection, "close")
        || (version == Version::HTTP_10 && !has_token(connection, "keep-alive"))
    {
        return Outcome::Discard;
    }
    let Some(hint) = found
        .keep_alive
        .and_then(|v| v.to_str().ok())
        .and_then(keep_alive_hint)
    else {
        return Outcome::Reuse(None);
    };
    match hint.checked_sub(options.keep_alive_timeout_threshold) {
        Some(timeout) if !timeout.is_zero() => {
            Outcome::Reuse(Some(timeout.min(options.keep_alive_max_timeout)))
        }
        _ => Outcome::Discard,
    }
}

/// Whether a comma-separated header value holds `token` (any case).
fn has_token(value: Option<&HeaderValue>, token: &str) -> bool {
    value
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

/// The `timeout=N` of a `Keep-Alive` header, in seconds.
fn keep_alive_hint(value: &str) -> Option<Duration> {
    let start = value.find("timeout=")? + "timeout=".len();
    let digits: &str = &value[start..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let seconds: u64 = digits[..end].parse().ok()?;
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_alive(
        parts: &http::response::Parts,
        reset: bool,
        options: &crate::ClientOptions,
    ) -> Outcome {
        let found = ResponseHeaders::of(&parts.headers);
        super::keep_alive(parts.version, &found, reset, options)
    }

    fn head(headers: &[(&str, &str)], version: Version) -> http::response::Parts {
        let mut builder = http::Response::builder().version(version);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap().into_parts().0
    }

    #[test]
    fn keep_alive_hint_minus_threshold_capped() {
        let options = crate::ClientOptions::new();
        let parts = head(&[("keep-alive", "timeout=5")], Version::HTTP_11);
        assert_eq!(
            keep_alive(&parts, false, &options),
            Outcome::Reuse(Some(Duration::from_secs(3)))
        );
        let parts = head(&[("keep-alive", "timeout=5000")], Version::HTTP_11);
        assert_eq!(
            keep_alive(&parts, false, &options),
            Outcome::Reuse(Some(Duration::from_secs(600)))
        );
        let parts = head(&[("keep-alive", "timeout=2")], Version::HTTP_11);
        assert_eq!(keep_alive(&parts, false, &options), Outcome::Discard);
    }

    #[test]
    fn connection_close_and_http_1_0_end_the_connection() {
        let options = crate::ClientOptions::new();
        let parts = head(&[("connection", "Close")], Version::HTTP_11);
        assert_eq!(keep_alive(&parts, false, &options), Outcome::Discard);
        let parts = head(&[], Version::HTTP_10);
        assert_eq!(keep_alive(&parts, false, &options), Outcome::Discard);
        let parts = head(&[], Version::HTTP_11);
        assert_eq!(keep_alive(&parts, true, &options), Outcome::Discard);
        assert_eq!(
            keep_alive(&head(&[], Version::HTTP_11), false, &options),
            Outcome::Reuse(None)
        );
    }

    #[test]
    fn forbidden_headers_are_refused_with_undici_codes() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        assert_eq!(
            check_headers(&headers, &HeaderNames::of(&headers))
                .unwrap_err()
                .code(),
            "UND_ERR_INVALID_ARG"
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::EXPECT, HeaderValue::from_static("100-continue"));
        assert_eq!(
            check_headers(&headers, &HeaderNames::of(&headers))
                .unwrap_err()
                .code(),
            "UND_ERR_NOT_SUPPORTED"
        );
    }

    #[test]
    fn content_length_must_match_a_known_body() {
        let mut request = http::Request::post("/")
            .header("content-length", "3")
            .body(Body::from("four"))
            .unwrap();
        assert_eq!(
            check_content_length(&mut request).unwrap_err().code(),
            "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH"
        );
    }
}
