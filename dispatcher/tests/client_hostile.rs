//! Hostile and malformed responses: each ends in its own clear error code,
//! none hangs or panics.

mod common;

use std::time::Duration;

use common::{get, within, PATIENCE};
use undici_dispatcher::{Client, Dispatcher, DispatcherExt, Error, EventKind};
use undici_test_support::RawServer;

/// Sends one GET to a server writing `bytes`, reads the whole body, and
/// answers the error.
async fn error_from(bytes: &'static [u8]) -> Error {
    let server = RawServer::respond_then_close(bytes).await;
    let client = Client::new(server.url()).unwrap();
    let outcome = within(PATIENCE, async {
        let response = client.request(get("/")).await?;
        response.into_body().bytes().await
    })
    .await;
    match outcome {
        Ok(body) => panic!("expected an error, got a body of {} bytes", body.len()),
        Err(err) => err,
    }
}

#[tokio::test]
async fn truncated_body_is_a_content_length_mismatch() {
    let err = error_from(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello").await;
    assert_eq!(err.code(), "UND_ERR_RES_CONTENT_LENGTH_MISMATCH", "{err:?}");
}

#[tokio::test]
async fn truncated_chunked_body_is_a_socket_error() {
    let err = error_from(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel").await;
    assert_eq!(err.code(), "UND_ERR_SOCKET", "{err:?}");
}

#[tokio::test]
async fn bad_chunk_size_is_a_parser_error() {
    let err = error_from(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(err.code(), "HPE_INVALID_CHUNK_SIZE", "{err:?}");
    assert!(err.is_parse());
}

#[tokio::test]
async fn header_overflow_is_headers_overflow() {
    let mut response = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    response.extend(std::iter::repeat_n(b'a', 20 * 1024));
    response.extend_from_slice(b"\r\ncontent-length: 0\r\n\r\n");
    let response: &'static [u8] = response.leak();
    let err = error_from(response).await;
    assert_eq!(err.code(), "UND_ERR_HEADERS_OVERFLOW", "{err:?}");
}

#[tokio::test]
async fn max_header_size_is_configurable() {
    let mut response = b"HTTP/1.1 200 OK\r\nx-big: ".to_vec();
    response.extend(std::iter::repeat_n(b'a', 20 * 1024));
    response.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\nok");
    let server = RawServer::respond_then_close(response).await;
    let client = Client::builder()
        .max_header_size(64 * 1024)
        .build(server.url())
        .unwrap();
    let body = within(PATIENCE, common::get_text(&client, "/"))
        .await
        .unwrap();
    assert_eq!(body, "ok");
}

#[tokio::test]
async fn headers_that_never_finish_time_out() {
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_ok() {
            let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nx-slow: ").await;
            conn.stall().await;
        }
    })
    .await;
    let client = Client::builder()
        .headers_timeout(Duration::from_millis(200))
        .build(server.url())
        .unwrap();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_HEADERS_TIMEOUT", "{err:?}");
    assert!(err.is_timeout());
}

/// A server that answers its first request and stalls on the second.
async fn answers_once_then_stalls() -> RawServer {
    RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_ok() {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await;
        }
        if conn.read_request().await.is_ok() {
            conn.stall().await;
        }
    })
    .await
}

#[tokio::test]
async fn a_late_head_on_a_reused_connection_times_out_on_time() {
    // The connection's task keeps the head's deadline: a request on a
    // connection whose timer waits for a keep-alive check far away still
    // times out at its own deadline, and the disconnect says why.
    let server = answers_once_then_stalls().await;
    let client = Client::builder()
        .keep_alive_timeout(Duration::from_secs(30))
        .headers_timeout(Duration::from_millis(200))
        .build(server.url())
        .unwrap();
    let mut events = client.events();
    assert_eq!(common::get_text(&client, "/").await.unwrap(), "ok");
    let started = std::time::Instant::now();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), "UND_ERR_HEADERS_TIMEOUT", "{err:?}");
    assert!(waited >= Duration::from_millis(190), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    let disconnect = within(PATIENCE, events.next_of(EventKind::Disconnect))
        .await
        .unwrap();
    let reason = disconnect.error.expect("a reason");
    assert_eq!(reason.code(), "UND_ERR_HEADERS_TIMEOUT", "{reason:?}");
}

#[tokio::test]
async fn a_head_deadline_past_the_keep_alive_check_still_holds() {
    // The keep-alive check comes first (every 300 ms here); the head's
    // deadline, later, is still kept.
    let server = answers_once_then_stalls().await;
    let client = Client::builder()
        .keep_alive_timeout(Duration::from_millis(300))
        .headers_timeout(Duration::from_secs(1))
        .build(server.url())
        .unwrap();
    assert_eq!(common::get_text(&client, "/").await.unwrap(), "ok");
    let started = std::time::Instant::now();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err.code(), "UND_ERR_HEADERS_TIMEOUT", "{err:?}");
    assert!(waited >= Duration::from_millis(990), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn a_stalled_body_times_out() {
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_ok() {
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nfirst bytes")
                .await;
            conn.stall().await;
        }
    })
    .await;
    let client = Client::builder()
        .body_timeout(Duration::from_millis(200))
        .build(server.url())
        .unwrap();
    let response = within(PATIENCE, client.request(get("/"))).await.unwrap();
    let err = within(PATIENCE, response.into_body().bytes())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_BODY_TIMEOUT", "{err:?}");
}

#[tokio::test]
async fn a_reset_is_a_socket_error() {
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_ok() {
            let _ = conn.reset();
        }
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    assert!(
        matches!(err.code(), "ECONNRESET" | "UND_ERR_SOCKET"),
        "{err:?}"
    );
    assert!(err.is_socket(), "{err:?}");
}

#[tokio::test]
async fn invalid_header_bytes_are_a_parser_error() {
    let err = error_from(b"HTTP/1.1 200 OK\r\nbad header: x\r\ncontent-length: 0\r\n\r\n").await;
    assert_eq!(err.code(), "HPE_INVALID_HEADER_TOKEN", "{err:?}");
}

#[tokio::test]
async fn two_different_content_lengths_are_refused() {
    let err =
        error_from(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\nhello!")
            .await;
    assert_eq!(err.code(), "HPE_UNEXPECTED_CONTENT_LENGTH", "{err:?}");
}

#[tokio::test]
async fn bytes_that_are_not_http_are_refused() {
    let err = error_from(b"SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    assert_eq!(err.code(), "HPE_INVALID_CONSTANT", "{err:?}");
}

#[tokio::test]
async fn a_closed_connection_without_a_response_is_a_socket_error() {
    let server = RawServer::new(|mut conn| async move {
        let _ = conn.read_request().await;
        let _ = conn.shutdown().await;
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_SOCKET", "{err:?}");
    assert_eq!(err.message(), "other side closed");
}

#[tokio::test]
async fn a_body_over_max_response_size_is_refused() {
    // Announced by content-length: refused at the head.
    let server = RawServer::respond(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n").await;
    let client = Client::builder()
        .max_response_size(10)
        .build(server.url())
        .unwrap();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_RES_EXCEEDED_MAX_SIZE", "{err:?}");

    // Discovered while reading a chunked body.
    let server = RawServer::respond(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n0\r\n\r\n",
    )
    .await;
    let client = Client::builder()
        .max_response_size(10)
        .build(server.url())
        .unwrap();
    let response = within(PATIENCE, client.request(get("/"))).await.unwrap();
    let err = within(PATIENCE, response.into_body().bytes())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UND_ERR_RES_EXCEEDED_MAX_SIZE", "{err:?}");
}

#[tokio::test]
async fn a_refused_connection_keeps_the_connect_code() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(format!("http://{addr}")).unwrap();
    let err = within(PATIENCE, client.request(get("/")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ECONNREFUSED", "{err:?}");
    assert!(err.is_connect());
}
