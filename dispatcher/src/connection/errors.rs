//! hyper's errors in undici's terms: one place that decides which code a
//! failure of the connection, the response head or the body gets.

use std::error::Error as StdError;
use std::io;

use undici_connectors::TlsFailure;

use crate::error::{Error, ErrorKind, SocketInfo};

/// Where in the exchange a hyper error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Sending the request or waiting for the response head.
    Head,
    /// Reading the response body; `true` when it had a `content-length`.
    Body { sized: bool },
    /// The connection's task, between requests.
    Connection,
}

/// Translates a hyper error.
pub(crate) fn from_hyper(err: hyper::Error, phase: Phase, socket: SocketInfo) -> Error {
    if err.is_parse_status() {
        return parser("invalid HTTP status code", "HPE_INVALID_STATUS", err);
    }
    if err.is_parse() {
        return parse_error(err);
    }
    if let Some(h2) = find::<h2::Error>(&err) {
        return from_h2(h2, socket).with_source(err);
    }
    if let Some(failure) = TlsFailure::find_in(&err) {
        return Error::new(
            ErrorKind::Socket,
            format!("TLS failure: {}", failure.code()),
        )
        .with_code(failure.code())
        .with_socket(socket)
        .with_source(err);
    }
    if let Some(io) = find::<io::Error>(&err) {
        if let Some(error) = from_io(io, phase) {
            return error.with_socket(socket).with_source(err);
        }
    }
    if let Some(own) = find::<Error>(&err) {
        // A request body of ours failed (a length mismatch, a stream
        // error): that error is the answer.
        return own.clone();
    }
    if err.is_body_write_aborted() || (err.is_user() && !is_dispatch_gone(&err)) {
        return Error::new(ErrorKind::Aborted, "the request body failed").with_source(err);
    }
    if let (true, Phase::Body { sized: true }) = (err.is_incomplete_message(), phase) {
        return content_length_mismatch(err);
    }
    // Closed, canceled, incomplete: the other side went away.
    Error::socket("other side closed")
        .with_socket(socket)
        .with_source(err)
}

fn from_io(io: &io::Error, phase: Phase) -> Option<Error> {
    let message = io.to_string();
    let error = match io.kind() {
        io::ErrorKind::UnexpectedEof => match phase {
            Phase::Body { sized: true } => Error::new(
                ErrorKind::ResponseContentLengthMismatch,
                "Response body length does not match content-length header",
            ),
            _ => Error::socket("other side closed"),
        },
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData if message.contains("chunk") => {
            Error::new(ErrorKind::Parser, format!("Parse Error: {message}"))
                .with_code("HPE_INVALID_CHUNK_SIZE")
        }
        io::ErrorKind::ConnectionReset => Error::socket("read ECONNRESET").with_code("ECONNRESET"),
        io::ErrorKind::BrokenPipe => Error::socket("write EPIPE").with_code("EPIPE"),
        io::ErrorKind::ConnectionAborted => {
            Error::socket("connection aborted").with_code("ECONNABORTED")
        }
        _ => return None,
    };
    Some(error)
}

fn content_length_mismatch(err: hyper::Error) -> Error {
    Error::new(
        ErrorKind::ResponseContentLengthMismatch,
        "Response body length does not match content-length header",
    )
    .with_source(err)
}

fn parser(message: &'static str, code: &'static str, err: hyper::Error) -> Error {
    Error::new(ErrorKind::Parser, format!("Parse Error: {message}"))
        .with_code(code)
        .with_source(err)
}

/// llhttp's code for what hyper's parser rejected.
fn parse_error(err: hyper::Error) -> Error {
    let text = err.to_string();
    if text.contains("too large") {
        return Error::new(ErrorKind::HeadersOverflow, "Headers Overflow Error").with_source(err);
    }
    let code = if text.contains("content-length") {
        "HPE_UNEXPECTED_CONTENT_LENGTH"
    } else if text.contains("transfer-encoding") {
        "HPE_INVALID_TRANSFER_ENCODING"
    } else if text.contains("header") {
        "HPE_INVALID_HEADER_TOKEN"
    } else {
        // Not HTTP at all: llhttp expects "HTTP/" and says so.
        "HPE_INVALID_CONSTANT"
    };
    let message = format!("Parse Error: {text}");
    Error::new(ErrorKind::Parser, message)
        .with_code(code)
        .with_source(err)
}

/// `UND_ERR_HEADERS_TIMEOUT`.
pub(crate) fn headers_timeout() -> Error {
    Error::new(ErrorKind::HeadersTimeout, "Headers Timeout Error")
}

/// undici's `InformationalError` for a connection the server said GOAWAY
/// on.
pub(crate) fn goaway() -> Error {
    Error::new(
        ErrorKind::Informational,
        "HTTP/2: \"GOAWAY\" frame received",
    )
}

fn from_h2(err: &h2::Error, socket: SocketInfo) -> Error {
    if err.is_go_away() {
        return goaway().with_socket(socket);
    }
    if let Some(io) = err.get_io() {
        if let Some(error) = from_io(io, Phase::Connection) {
            return error.with_socket(socket);
        }
    }
    match err.reason() {
        Some(h2::Reason::FRAME_SIZE_ERROR) | Some(h2::Reason::COMPRESSION_ERROR) => {
            Error::new(ErrorKind::HeadersOverflow, "Headers Overflow Error")
        }
        Some(reason) => Error::socket(format!("HTTP/2: stream error {reason}")).with_socket(socket),
        None => Error::socket("HTTP/2: session error").with_socket(socket),
    }
}

/// True when the server cannot have processed the request, so it may be
/// sent again whatever its method: an HTTP/2 stream past a GOAWAY or
/// refused (`REFUSED_STREAM`), or a request still in hyper's queue when
/// the connection's task ended.
pub(crate) fn is_unprocessed(err: &hyper::Error) -> bool {
    is_dispatch_gone(err)
        || find::<h2::Error>(err)
            .is_some_and(|h2| h2.is_go_away() || h2.reason() == Some(h2::Reason::REFUSED_STREAM))
}

/// hyper's `DispatchGone`: the connection's task ended with the request
/// still queued. hyper offers no predicate for it, only its message.
fn is_dispatch_gone(err: &hyper::Error) -> bool {
    err.is_user() && err.to_string().contains("dispatch task")
}

/// True when an HTTP/1 connection closed under a request that had been
/// written: the keep-alive race, where the server closed an idle
/// connection just as we reused it.
pub(crate) fn is_closed_under_request(err: &hyper::Error) -> bool {
    err.is_incomplete_message()
        || err.is_canceled()
        || find::<io::Error>(err).is_some_and(|io| {
            matches!(
                io.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            )
        })
}

fn find<'a, E: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a E> {
    let mut next: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}
