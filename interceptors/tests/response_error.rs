//! The responseError interceptor against real servers.
#![cfg(feature = "response-error")]

use http::{Request, Response, StatusCode};
use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt, ErrorBody, ErrorKind};
use undici_interceptors::response_error::{ResponseErrorLayer, DEFAULT_MAX_BODY_SIZE};
use undici_test_support::{body, RawServer, TestServer};

/// A server answering every request with `status`, `content-type` and
/// `body`.
async fn serve(status: u16, content_type: Option<&'static str>, body: &'static [u8]) -> TestServer {
    TestServer::http1(move |_req| async move {
        let mut response = Response::builder()
            .status(status)
            .header("x-request-id", "42");
        if let Some(content_type) = content_type {
            response = response.header("content-type", content_type);
        }
        response.body(body::full(body)).unwrap()
    })
    .await
}

fn get() -> Request<Body> {
    Request::get("/").body(Body::empty()).unwrap()
}

async fn error_of(server: &TestServer, layer: ResponseErrorLayer) -> undici_dispatcher::Error {
    let client = Client::new(server.url().as_str()).unwrap().compose(layer);
    let err = client.request(get()).await.unwrap_err();
    client.close().await;
    err
}

#[tokio::test]
async fn a_json_error_body_is_parsed() {
    let server = serve(
        400,
        Some("application/json; charset=utf-8"),
        br#"{"message":"bad input","field":"name"}"#,
    )
    .await;
    let err = error_of(&server, ResponseErrorLayer::new()).await;

    assert_eq!(err.kind(), ErrorKind::Response);
    assert_eq!(err.code(), "UND_ERR_RESPONSE");
    assert_eq!(err.message(), "Response Error");
    assert_eq!(err.status(), Some(StatusCode::BAD_REQUEST));
    assert_eq!(err.headers().unwrap()["x-request-id"], "42");
    let Some(ErrorBody::Json(value)) = err.body() else {
        panic!("expected a JSON body, got {:?}", err.body());
    };
    assert_eq!(value["message"], "bad input");
    assert_eq!(value["field"], "name");
}

#[tokio::test]
async fn a_problem_json_error_body_is_parsed() {
    let server = serve(
        422,
        Some("application/problem+json"),
        br#"{"title":"Unprocessable"}"#,
    )
    .await;
    let err = error_of(&server, ResponseErrorLayer::new()).await;
    let Some(ErrorBody::Json(value)) = err.body() else {
        panic!("expected a JSON body, got {:?}", err.body());
    };
    assert_eq!(value["title"], "Unprocessable");
}

#[tokio::test]
async fn json_that_does_not_parse_is_kept_as_text() {
    let server = serve(500, Some("application/json"), b"{not json").await;
    let err = error_of(&server, ResponseErrorLayer::new()).await;
    assert_eq!(err.status(), Some(StatusCode::INTERNAL_SERVER_ERROR));
    assert_eq!(err.body(), Some(&ErrorBody::Text("{not json".into())));
}

#[tokio::test]
async fn a_text_error_body_is_text() {
    let server = serve(503, Some("text/plain"), b"try again later \xff").await;
    let err = error_of(&server, ResponseErrorLayer::new()).await;
    assert_eq!(err.status(), Some(StatusCode::SERVICE_UNAVAILABLE));
    assert_eq!(
        err.body(),
        Some(&ErrorBody::Text("try again later \u{fffd}".into()))
    );
}

#[tokio::test]
async fn other_content_types_keep_the_raw_bytes() {
    let server = serve(404, Some("text/html"), b"<h1>Not Found</h1>").await;
    let err = error_of(&server, ResponseErrorLayer::new()).await;
    assert_eq!(
        err.body(),
        Some(&ErrorBody::Bytes("<h1>Not Found</h1>".into()))
    );

    let untyped = serve(410, None, b"\x00\x01").await;
    let err = error_of(&untyped, ResponseErrorLayer::new()).await;
    assert_eq!(err.status(), Some(StatusCode::GONE));
    assert_eq!(err.body(), Some(&ErrorBody::Bytes(vec![0u8, 1].into())));
}

#[tokio::test]
async fn statuses_under_400_pass_through_untouched() {
    for status in [200u16, 204, 302, 399] {
        let server = serve(status, Some("text/plain"), b"fine").await;
        let client = Client::new(server.url().as_str())
            .unwrap()
            .compose(ResponseErrorLayer::new());
        let response = client.request(get()).await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let expected = if status == 204 { "" } else { "fine" };
        assert_eq!(response.into_body().text().await.unwrap(), expected);
        client.close().await;
    }
}

#[tokio::test]
async fn error_bodies_are_read_so_the_connection_is_reused() {
    let server = serve(404, Some("text/plain"), b"missing").await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(ResponseErrorLayer::new());
    for _ in 0..3 {
        let err = client.request(get()).await.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::NOT_FOUND));
    }
    assert_eq!(server.connections_accepted(), 1);
    client.close().await;
}

#[tokio::test]
async fn error_bodies_are_truncated_at_max_body_size() {
    assert_eq!(DEFAULT_MAX_BODY_SIZE, 1024 * 1024);
    let server = TestServer::http1(|_req| async {
        Response::builder()
            .status(500)
            .header("content-type", "text/plain")
            .body(body::full(vec![b'a'; 64 * 1024]))
            .unwrap()
    })
    .await;
    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(ResponseErrorLayer::new().max_body_size(1000));

    let err = client.request(get()).await.unwrap_err();
    assert_eq!(err.body(), Some(&ErrorBody::Text("a".repeat(1000))));

    // The rest was not read: that connection is gone.
    client.request(get()).await.unwrap_err();
    assert_eq!(server.connections_accepted(), 2);
    client.close().await;
}

#[tokio::test]
async fn a_body_that_breaks_while_read_gives_its_own_error() {
    let server = RawServer::respond_then_close(
        b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-length: 100\r\n\r\nshort",
    )
    .await;

    let plain = Client::new(server.url().as_str()).unwrap();
    let expected = plain
        .request(get())
        .await
        .unwrap()
        .into_body()
        .bytes()
        .await
        .unwrap_err();
    plain.close().await;

    let client = Client::new(server.url().as_str())
        .unwrap()
        .compose(ResponseErrorLayer::new());
    let err = client.request(get()).await.unwrap_err();
    assert_ne!(err.kind(), ErrorKind::Response, "{err:?}");
    assert_eq!(err.kind(), expected.kind(), "{err:?}");
    assert_eq!(err.code(), expected.code(), "{err:?}");
    client.close().await;
}

#[tokio::test]
async fn response_error_works_in_a_service_builder_stack_over_any_service() {
    use tower::{service_fn, ServiceBuilder, ServiceExt};

    let service = ServiceBuilder::new()
        .layer(ResponseErrorLayer::new())
        .service(service_fn(|_req: Request<Body>| async {
            let response = Response::builder()
                .status(401)
                .header("content-type", "text/plain")
                .body(Body::from("who are you"))
                .unwrap();
            Ok::<_, undici_dispatcher::Error>(response)
        }));
    let err = service.oneshot(get()).await.unwrap_err();
    assert_eq!(err.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(err.body(), Some(&ErrorBody::Text("who are you".into())));
}
