//! `DispatcherExt::dispatch`: undici's v2 handler callbacks, their order,
//! pause/resume backpressure and aborts.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{get, within, PATIENCE};
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use undici_dispatcher::{
    Body, Client, Controller, DispatcherExt, Error, ErrorKind, Handler, Request, RequestOptions,
    UpgradedIo,
};
use undici_test_support::{body, handlers, RawServer, TestServer};

/// Records every callback; optionally pauses on the first chunk, aborts
/// on the final head, and hands its controller out.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
    body: Vec<u8>,
    trailers: HeaderMap,
    error: Option<Error>,
    socket: Option<UpgradedIo>,
    /// Bytes seen by `on_response_data`, readable from the test.
    received: Arc<AtomicUsize>,
    controllers: Option<mpsc::UnboundedSender<Controller>>,
    /// Pauses on the first chunk and sends the controller here.
    pause_on_first_chunk: Option<mpsc::UnboundedSender<Controller>>,
    abort_on_final_head: Option<Error>,
}

impl Handler for Recorder {
    fn on_request_start(&mut self, controller: &Controller, request: &Request) {
        self.events.push(format!(
            "request_start {} {}",
            request.method(),
            request.uri()
        ));
        if let Some(tx) = &self.controllers {
            let _ = tx.send(controller.clone());
        }
    }

    fn on_request_upgrade(
        &mut self,
        _controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        socket: UpgradedIo,
    ) {
        let protocol = headers
            .get("upgrade")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.events
            .push(format!("request_upgrade {} {protocol}", status.as_u16()));
        self.socket = Some(socket);
    }

    fn on_response_start(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        status_text: &str,
    ) {
        let link = headers
            .get("link")
            .map(|v| format!(" link={}", v.to_str().unwrap_or_default()))
            .unwrap_or_default();
        self.events.push(format!(
            "response_start {} {status_text}{link}",
            status.as_u16()
        ));
        if !status.is_informational() {
            if let Some(reason) = self.abort_on_final_head.take() {
                controller.abort(reason);
            }
        }
    }

    fn on_response_data(&mut self, controller: &Controller, chunk: Bytes) {
        if self.events.last().map(String::as_str) != Some("data") {
            self.events.push("data".into());
        }
        self.received.fetch_add(chunk.len(), Ordering::SeqCst);
        self.body.extend_from_slice(&chunk);
        if let Some(paused) = self.pause_on_first_chunk.take() {
            controller.pause();
            let _ = paused.send(controller.clone());
        }
    }

    fn on_response_end(&mut self, _controller: &Controller, trailers: &HeaderMap) {
        self.events.push("response_end".into());
        self.trailers = trailers.clone();
    }

    fn on_response_error(&mut self, _controller: &Controller, error: Error) {
        self.events.push(format!("response_error {}", error.code()));
        self.error = Some(error);
    }
}

#[tokio::test]
async fn callbacks_arrive_in_order_with_1xx_heads_and_trailers() {
    let server = RawServer::respond(
        b"HTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n\
          HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-sum\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\nx-sum: 42\r\n\r\n",
    )
    .await;
    let client = Client::new(server.url()).unwrap();
    let infos = Arc::new(AtomicUsize::new(0));
    let counted = infos.clone();
    let request = http::Request::get("/")
        .header("x-foo", "bar")
        .extension(RequestOptions::new().on_info(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        }))
        .body(Body::empty())
        .unwrap();
    let handler = within(PATIENCE, client.dispatch(request, Recorder::default())).await;
    assert_eq!(
        handler.events,
        [
            "request_start GET /",
            "response_start 103 Early Hints link=</a>",
            "response_start 200 OK",
            "data",
            "response_end",
        ]
    );
    assert_eq!(handler.body, b"hello world");
    assert_eq!(handler.trailers["x-sum"], "42");
    // The request's own onInfo still ran.
    assert_eq!(infos.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_status_text_is_the_servers_reason_phrase() {
    let server =
        RawServer::respond(b"HTTP/1.1 200 Fine Thanks\r\ncontent-length: 2\r\n\r\nok").await;
    let client = Client::new(server.url()).unwrap();
    let handler = within(PATIENCE, client.dispatch(get("/"), Recorder::default())).await;
    assert_eq!(handler.events[1], "response_start 200 Fine Thanks");
}

#[tokio::test]
async fn a_handler_by_reference_is_filled_in_place() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    let mut handler = Recorder::default();
    within(PATIENCE, client.dispatch(get("/"), &mut handler)).await;
    assert_eq!(handler.body, b"hello world");
    assert_eq!(handler.events.last().unwrap(), "response_end");
}

/// A server whose response is `total` bytes streamed in 64 KiB chunks; the
/// watch says how many bytes hyper has taken so far.
async fn streaming_server(total: usize) -> (TestServer, watch::Receiver<usize>) {
    let (progress_tx, progress) = watch::channel(0usize);
    let server = TestServer::http1(move |_req| {
        let progress_tx = progress_tx.clone();
        async move {
            let (tx, body) = body::channel(1);
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![b'x'; 64 * 1024]);
                let mut sent = 0;
                while sent < total {
                    let len = (total - sent).min(chunk.len());
                    if tx.send_data(chunk.slice(..len)).await.is_err() {
                        return;
                    }
                    sent += len;
                    progress_tx.send_replace(sent);
                }
            });
            http::Response::builder()
                .header("content-length", total.to_string())
                .body(body)
                .unwrap()
        }
    })
    .await;
    (server, progress)
}

#[tokio::test]
async fn a_paused_handler_holds_the_server_back_until_resumed() {
    const TOTAL: usize = 16 * 1024 * 1024;
    let (server, mut progress) = streaming_server(TOTAL).await;
    let client = Client::new(server.url()).unwrap();
    let (paused_tx, mut paused) = mpsc::unbounded_channel();
    let received = Arc::new(AtomicUsize::new(0));
    let handler = Recorder {
        pause_on_first_chunk: Some(paused_tx),
        received: received.clone(),
        ..Recorder::default()
    };
    let dispatching = tokio::spawn({
        let client = client.clone();
        async move { client.dispatch(get("/"), handler).await }
    });
    let controller = within(PATIENCE, paused.recv()).await.unwrap();
    assert!(controller.is_paused());
    let delivered = received.load(Ordering::SeqCst);
    assert!(delivered > 0);

    // Paused: the socket is not read, its buffers fill, the server stalls.
    let finished = tokio::time::timeout(
        Duration::from_millis(500),
        progress.wait_for(|&sent| sent >= TOTAL),
    )
    .await
    .is_ok();
    assert!(!finished, "the server sent everything to a paused handler");
    assert!(*progress.borrow() < TOTAL);
    assert_eq!(
        received.load(Ordering::SeqCst),
        delivered,
        "on_response_data ran while paused"
    );

    controller.resume();
    let handler = within(PATIENCE, dispatching).await.unwrap();
    assert_eq!(handler.events.last().unwrap(), "response_end");
    assert_eq!(handler.body.len(), TOTAL);
    assert!(!controller.is_paused());
}

#[tokio::test]
async fn abort_on_the_head_delivers_the_reason_once_and_closes_the_connection() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    let handler = Recorder {
        abort_on_final_head: Some(Error::new(ErrorKind::Aborted, "seen enough")),
        ..Recorder::default()
    };
    let handler = within(PATIENCE, client.dispatch(get("/"), handler)).await;
    assert_eq!(
        handler.events,
        [
            "request_start GET /",
            "response_start 200 OK",
            "response_error UND_ERR_ABORTED",
        ]
    );
    assert_eq!(handler.error.unwrap().message(), "seen enough");
    assert!(handler.body.is_empty());
    // Not reused: the next request needs a new connection.
    within(PATIENCE, server.wait_for_open_connections(0)).await;
    let handler = within(PATIENCE, client.dispatch(get("/"), Recorder::default())).await;
    assert_eq!(handler.body, b"hello world");
    assert_eq!(server.connections_accepted(), 2);
}

/// A server that reads the request, says so, and never answers.
async fn silent_server() -> (RawServer, mpsc::UnboundedReceiver<()>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let server = RawServer::new(move |mut conn| {
        let seen_tx = seen_tx.clone();
        async move {
            if conn.read_request().await.is_ok() {
                let _ = seen_tx.send(());
                let _ = conn.read_to_end().await;
            }
        }
    })
    .await;
    (server, seen)
}

#[tokio::test]
async fn abort_from_another_task_while_waiting_for_the_head() {
    let (server, mut seen) = silent_server().await;
    let client = Client::new(server.url()).unwrap();
    let (controllers_tx, mut controllers) = mpsc::unbounded_channel();
    let handler = Recorder {
        controllers: Some(controllers_tx),
        ..Recorder::default()
    };
    let dispatching = tokio::spawn({
        let client = client.clone();
        async move { client.dispatch(get("/"), handler).await }
    });
    let controller = within(PATIENCE, controllers.recv()).await.unwrap();
    within(PATIENCE, seen.recv()).await.unwrap();
    controller.abort(Error::aborted());
    let handler = within(PATIENCE, dispatching).await.unwrap();
    assert_eq!(
        handler.events,
        ["request_start GET /", "response_error UND_ERR_ABORTED"]
    );
    assert!(controller.is_aborted());
    within(PATIENCE, server.wait_for_open_connections(0)).await;
}

#[tokio::test]
async fn dropping_the_dispatch_future_aborts_the_request() {
    let (server, mut seen) = silent_server().await;
    let client = Client::new(server.url()).unwrap();
    let dispatching = tokio::spawn({
        let client = client.clone();
        async move { client.dispatch(get("/"), Recorder::default()).await }
    });
    within(PATIENCE, seen.recv()).await.unwrap();
    dispatching.abort();
    within(PATIENCE, server.wait_for_open_connections(0)).await;
}

/// Aborts before anything is sent.
struct AbortAtStart(Vec<String>);

impl Handler for AbortAtStart {
    fn on_request_start(&mut self, controller: &Controller, _request: &Request) {
        controller.abort(Error::new(ErrorKind::Aborted, "changed my mind"));
    }

    fn on_response_error(&mut self, _controller: &Controller, error: Error) {
        self.0.push(error.message().to_owned());
    }
}

#[tokio::test]
async fn abort_in_on_request_start_sends_nothing() {
    let server = TestServer::http1(handlers::hello).await;
    let client = Client::new(server.url()).unwrap();
    let handler = within(
        PATIENCE,
        client.dispatch(get("/"), AbortAtStart(Vec::new())),
    )
    .await;
    assert_eq!(handler.0, ["changed my mind"]);
    assert_eq!(server.connections_accepted(), 0);
}

#[tokio::test]
async fn a_failed_request_ends_in_on_response_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = Client::new(format!("http://{addr}")).unwrap();
    let handler = within(PATIENCE, client.dispatch(get("/"), Recorder::default())).await;
    assert_eq!(handler.events.len(), 2, "{:?}", handler.events);
    assert!(handler.error.unwrap().is_connect());
}

#[tokio::test]
async fn an_upgrade_ends_in_on_request_upgrade() {
    let server = RawServer::new(|mut conn| async move {
        if conn.read_request().await.is_err() {
            return;
        }
        let answer =
            b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n";
        if conn.write_all(answer).await.is_ok() {
            let data = conn.read_to_end().await.unwrap_or_default();
            let _ = conn.write_all(&data).await;
        }
    })
    .await;
    let client = Client::new(server.url()).unwrap();
    let request = http::Request::get("/")
        .extension(RequestOptions::new().upgrade("echo"))
        .body(Body::empty())
        .unwrap();
    let handler = within(PATIENCE, client.dispatch(request, Recorder::default())).await;
    assert_eq!(
        handler.events,
        ["request_start GET /", "request_upgrade 101 echo"]
    );
    let mut socket = handler.socket.unwrap();
    socket.write_all(b"hi").await.unwrap();
    socket.shutdown().await.unwrap();
    let mut echoed = String::new();
    within(PATIENCE, socket.read_to_string(&mut echoed))
        .await
        .unwrap();
    assert_eq!(echoed, "hi");
}
