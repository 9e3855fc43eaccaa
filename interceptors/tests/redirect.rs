//! The redirect interceptor against real servers: loops, limits, method
//! rewriting, bodies, header stripping within and across origins (two
//! servers behind an Agent), relative locations and the history.
#![cfg(feature = "redirect")]

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LANGUAGE, CONTENT_TYPE, COOKIE, PROXY_AUTHORIZATION};
use http::{HeaderName, Method, Request as HttpRequest, StatusCode, Uri};
use hyper::body::Incoming;
use undici_dispatcher::{
    Agent, Body, Client, Dispatcher, DispatcherExt, ErrorKind, Request, RequestOptions, Response,
};
use undici_interceptors::redirect::{RedirectHistory, RedirectLayer};
use undici_test_support::{handlers, TestBody, TestServer};

/// A server that answers `/redirect/<status>/<rest>` with that status and
/// `Location: /<rest>`, `/to/<url>` with a 302 to that absolute URL, and
/// echoes everything else ([`handlers::echo`]: `x-method`, `x-path`,
/// `x-req-<header>`, the body).
async fn site() -> TestServer {
    TestServer::http1(route).await
}

async fn route(request: http::Request<Incoming>) -> http::Response<TestBody> {
    let path = request.uri().path().to_owned();
    if let Some(rest) = path.strip_prefix("/redirect/") {
        let (status, target) = rest.split_once('/').unwrap_or((rest, ""));
        let status = status.parse().unwrap_or(302);
        return handlers::redirect(status, &format!("/{target}"));
    }
    if let Some(url) = path.strip_prefix("/to/") {
        return handlers::redirect(302, &format!("http://{url}"));
    }
    handlers::echo(request).await
}

fn client(server: &TestServer, layer: RedirectLayer) -> impl Dispatcher {
    Client::new(server.url().as_str()).unwrap().compose(layer)
}

fn get(path: &str) -> Request {
    HttpRequest::get(path).body(Body::empty()).unwrap()
}

fn header<'a>(response: &'a Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

fn history(response: &Response) -> Vec<String> {
    response
        .extensions()
        .get::<RedirectHistory>()
        .map(|history| history.urls().iter().map(Uri::to_string).collect())
        .unwrap_or_default()
}

/// The request a server saw, from the echo's headers.
fn echoed(response: &Response, name: &HeaderName) -> Option<String> {
    header(response, &format!("x-req-{name}")).map(str::to_owned)
}

#[tokio::test]
async fn a_redirect_loop_fails_with_invalid_arg() {
    let server = TestServer::http1(|request: http::Request<Incoming>| async move {
        match request.uri().path() {
            "/a" => handlers::redirect(302, "/b"),
            _ => handlers::redirect(302, "/a"),
        }
    })
    .await;
    let client = client(&server, RedirectLayer::new().max_redirections(10));
    let err = client.request(get("/a")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    assert!(err.message().starts_with("Redirect loop detected"), "{err}");
    // /a, then /b, whose redirect back to /a is the loop.
    assert_eq!(server.requests_received(), 2);
    // The redirects' bodies were read: one connection served both.
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn a_redirect_to_itself_is_a_loop() {
    let server = TestServer::http1(|_request| async { handlers::redirect(307, "/same") }).await;
    let client = client(&server, RedirectLayer::new().max_redirections(10));
    let err = client.request(get("/same")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    assert_eq!(server.requests_received(), 1);
}

/// A request to `url` carrying credentials and a custom header.
fn with_credentials(url: String) -> Request {
    HttpRequest::get(url)
        .header(AUTHORIZATION, "Bearer secret")
        .header(COOKIE, "session=1")
        .header(PROXY_AUTHORIZATION, "Basic cHJveHk=")
        .header("x-custom", "kept")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_cross_origin_hop_through_an_agent_drops_credentials() {
    let first = site().await;
    let second = site().await;
    assert_ne!(first.addr().port(), second.addr().port());
    let agent = Agent::new().compose(RedirectLayer::new().max_redirections(3));
    let target = format!("{}/landing", second.addr());
    let start = format!("{}/to/{target}", first.url());
    let response = agent
        .request(with_credentials(start.clone()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-path"), Some("/landing"));
    for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION] {
        assert_eq!(echoed(&response, &name), None, "{name} crossed origins");
    }
    assert_eq!(
        echoed(&response, &HeaderName::from_static("x-custom")).as_deref(),
        Some("kept")
    );
    // The Host header names the new origin, not the first one.
    assert_eq!(
        echoed(&response, &http::header::HOST),
        Some(second.addr().to_string())
    );
    assert_eq!(history(&response), [start, format!("http://{target}")]);
    assert_eq!(first.requests_received(), 1);
    assert_eq!(second.requests_received(), 1);
}

#[tokio::test]
async fn a_same_origin_hop_keeps_credentials() {
    let server = site().await;
    let agent = Agent::new().compose(RedirectLayer::new().max_redirections(3));
    let start = format!("{}/redirect/302/landing", server.url());
    let response = agent
        .request(with_credentials(start.clone()))
        .await
        .unwrap();
    assert_eq!(header(&response, "x-path"), Some("/landing"));
    assert_eq!(
        echoed(&response, &AUTHORIZATION).as_deref(),
        Some("Bearer secret")
    );
    assert_eq!(echoed(&response, &COOKIE).as_deref(), Some("session=1"));
    assert_eq!(
        echoed(&response, &PROXY_AUTHORIZATION).as_deref(),
        Some("Basic cHJveHk=")
    );
    assert_eq!(
        history(&response),
        [start, format!("{}/landing", server.url())]
    );
}

#[tokio::test]
async fn a_cross_origin_redirect_through_a_client_is_refused() {
    let first = site().await;
    let second = site().await;
    let client = client(&first, RedirectLayer::new().max_redirections(3));
    let path = format!("/to/{}/landing", second.addr());
    let err = client.request(get(&path)).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG", "{err:?}");
    assert_eq!(second.requests_received(), 0);
}

/// A POST (or `method`) with a body and `content-*` headers.
fn with_body(method: Method, path: &str) -> Request {
    HttpRequest::builder()
        .method(method)
        .uri(path)
        .header(CONTENT_TYPE, "text/plain")
        .header(CONTENT_LANGUAGE, "en")
        .header("x-keep", "1")
        .body(Body::from("payload"))
        .unwrap()
}

/// Asserts the echoed request was a bodiless `method` without `content-*`
/// headers.
async fn assert_rewritten(response: Response, method: &str) {
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-method"), Some(method));
    for name in ["content-type", "content-language", "content-length"] {
        assert_eq!(header(&response, &format!("x-req-{name}")), None, "{name}");
    }
    assert_eq!(header(&response, "x-req-x-keep"), Some("1"));
    assert_eq!(response.into_body().bytes().await.unwrap(), Bytes::new());
}

#[tokio::test]
async fn moved_and_found_turn_post_into_get_without_body_or_content_headers() {
    let server = site().await;
    let client = client(&server, RedirectLayer::new().max_redirections(3));
    for status in [301, 302] {
        let path = format!("/redirect/{status}/landing");
        let response = client
            .request(with_body(Method::POST, &path))
            .await
            .unwrap();
        assert_eq!(history(&response), [path.as_str(), "/landing"]);
        assert_rewritten(response, "GET").await;
    }
}

#[tokio::test]
async fn moved_and_found_keep_other_methods_and_their_body() {
    let server = site().await;
    let client = client(&server, RedirectLayer::new().max_redirections(3));
    for status in [301, 302] {
        let path = format!("/redirect/{status}/landing");
        let response = client.request(with_body(Method::PUT, &path)).await.unwrap();
        assert_eq!(header(&response, "x-method"), Some("PUT"));
        assert_eq!(header(&response, "x-req-content-type"), Some("text/plain"));
        assert_eq!(response.into_body().text().await.unwrap(), "payload");
    }
}

#[tokio::test]
async fn see_other_turns_any_method_but_head_into_get() {
    let server = site().await;
    let client = client(&server, RedirectLayer::new().max_redirections(3));
    for method in [Method::POST, Method::PUT, Method::DELETE] {
        let request = with_body(method, "/redirect/303/landing");
        let response = client.request(request).await.unwrap();
        assert_rewritten(response, "GET").await;
    }
    let head = HttpRequest::head("/redirect/303/landing")
        .header(CONTENT_LANGUAGE, "en")
        .body(Body::empty())
        .unwrap();
    let response = client.request(head).await.unwrap();
    assert_eq!(header(&response, "x-method"), Some("HEAD"));
    assert_eq!(header(&response, "x-req-content-language"), None);
    assert_eq!(history(&response), ["/redirect/303/landing", "/landing"]);
}

#[tokio::test]
async fn temporary_and_permanent_redirects_keep_method_and_replay_the_body() {
    let server = site().await;
    let client = client(&server, RedirectLayer::new().max_redirections(3));
    for status in [307, 308] {
        let path = format!("/redirect/{status}/landing");
        let response = client
            .request(with_body(Method::POST, &path))
            .await
            .unwrap();
        assert_eq!(header(&response, "x-path"), Some("/landing"));
        assert_eq!(header(&response, "x-method"), Some("POST"));
        assert_eq!(header(&response, "x-req-content-type"), Some("text/plain"));
        assert_eq!(header(&response, "x-req-content-length"), Some("7"));
        assert_eq!(response.into_body().text().await.unwrap(), "payload");
    }
    assert_eq!(server.requests_received(), 4);
}

fn streamed(method: Method, path: &str) -> Request {
    let chunks = futures_util::stream::iter([Ok::<_, std::io::Error>("pay"), Ok("load")]);
    HttpRequest::builder()
        .method(method)
        .uri(path)
        .body(Body::from_stream(chunks))
        .unwrap()
}

#[tokio::test]
async fn a_streamed_body_is_not_followed_and_the_redirect_is_handed_back() {
    let server = site().await;
    let client = client(&server, RedirectLayer::new().max_redirections(3));
    let response = client
        .request(streamed(Method::POST, "/redirect/307/landing"))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(header(&response, "location"), Some("/landing"));
    assert!(response.extensions().get::<RedirectHistory>().is_none());
    assert_eq!(
        response.into_body().text().await.unwrap(),
        "redirecting to /landing"
    );
    assert_eq!(server.requests_received(), 1);
}

#[tokio::test]
async fn a_streamed_body_is_dropped_and_followed_on_see_other() {
    let server = site().await;
    let client = client(&server, RedirectLayer::new().max_redirections(3));
    let response = client
        .request(streamed(Method::POST, "/redirect/303/landing"))
        .await
        .unwrap();
    assert_eq!(header(&response, "x-method"), Some("GET"));
    assert_eq!(response.into_body().text().await.unwrap(), "");
    assert_eq!(server.requests_received(), 2);
}

#[tokio::test]
async fn relative_locations_are_resolved_against_the_request() {
    let server = TestServer::http1(|request: http::Request<Incoming>| async move {
        let target = request.uri().path_and_query().map(|pq| pq.as_str());
        match target.unwrap_or_default() {
            "/docs/guide/intro" => handlers::redirect(302, "../api/index?v=2"),
            "/docs/api/index?v=2" => handlers::redirect(302, "?v=3#fragment"),
            _ => handlers::echo(request).await,
        }
    })
    .await;
    // Origin-form requests to a Client stay origin-form.
    let client = client(&server, RedirectLayer::new().max_redirections(5));
    let response = client.request(get("/docs/guide/intro")).await.unwrap();
    assert_eq!(header(&response, "x-path"), Some("/docs/api/index?v=3"));
    assert_eq!(
        history(&response),
        [
            "/docs/guide/intro",
            "/docs/api/index?v=2",
            "/docs/api/index?v=3"
        ]
    );
    // Absolute requests through an Agent stay absolute.
    let agent = Agent::new().compose(RedirectLayer::new().max_redirections(5));
    let url = format!("{}/docs/guide/intro", server.url());
    let response = agent.request(get(&url)).await.unwrap();
    assert_eq!(header(&response, "x-path"), Some("/docs/api/index?v=3"));
    assert_eq!(
        history(&response).last().map(String::as_str),
        Some(format!("{}/docs/api/index?v=3", server.url()).as_str())
    );
}

#[tokio::test]
async fn redirects_are_not_followed_unless_max_redirections_is_set() {
    let server = site().await;
    let client = client(&server, RedirectLayer::new());
    let response = client.request(get("/redirect/302/landing")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(header(&response, "location"), Some("/landing"));
    assert!(response.extensions().get::<RedirectHistory>().is_none());
    assert_eq!(
        response.into_body().text().await.unwrap(),
        "redirecting to /landing"
    );
    assert_eq!(server.requests_received(), 1);

    // The request's own max_redirections turns it on...
    let request = HttpRequest::get("/redirect/302/landing")
        .extension(RequestOptions::new().max_redirections(1))
        .body(Body::empty())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(server.requests_received(), 3);

    // ...and a request's 0 turns it off on a layer that follows.
    let following = self::client(&server, RedirectLayer::new().max_redirections(5));
    let request = HttpRequest::get("/redirect/302/landing")
        .extension(RequestOptions::new().max_redirections(0))
        .body(Body::empty())
        .unwrap();
    let response = following.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(server.requests_received(), 4);
    assert_eq!(server.connections_accepted(), 2);
}

/// /r1 -> /r2 -> /r3 -> /end.
async fn chain() -> TestServer {
    TestServer::http1(|request: http::Request<Incoming>| async move {
        match request.uri().path() {
            "/r1" => handlers::redirect(302, "/r2"),
            "/r2" => handlers::redirect(302, "/r3"),
            "/r3" => handlers::redirect(302, "/end"),
            _ => handlers::echo(request).await,
        }
    })
    .await
}

#[tokio::test]
async fn at_the_limit_the_last_redirect_is_handed_back() {
    let server = chain().await;
    let client = client(&server, RedirectLayer::new().max_redirections(2));
    let response = client.request(get("/r1")).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(header(&response, "location"), Some("/end"));
    assert_eq!(history(&response), ["/r1", "/r2", "/r3"]);
    assert_eq!(
        response.into_body().text().await.unwrap(),
        "redirecting to /end"
    );
    assert_eq!(server.requests_received(), 3);
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn throw_on_max_redirect_fails_at_the_limit() {
    let server = chain().await;
    let layer = RedirectLayer::new()
        .max_redirections(2)
        .throw_on_max_redirect(true);
    let client = client(&server, layer);
    let err = client.request(get("/r1")).await.unwrap_err();
    assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    assert_eq!(err.message(), "max redirects");
    assert_eq!(err.status(), Some(StatusCode::FOUND));
    assert_eq!(
        err.headers().and_then(|headers| headers.get("location")),
        Some(&http::HeaderValue::from_static("/end"))
    );
    assert_eq!(server.requests_received(), 3);
    // Enough redirections: no error.
    let request = HttpRequest::get("/r1")
        .extension(RequestOptions::new().max_redirections(3))
        .body(Body::empty())
        .unwrap();
    let response = client.request(request).await.unwrap();
    assert_eq!(header(&response, "x-path"), Some("/end"));
    // The thrown redirect's body was read: the connection survived.
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn throw_on_max_redirect_can_be_set_per_request() {
    let server = chain().await;
    let client = client(&server, RedirectLayer::new().max_redirections(1));
    let request = HttpRequest::get("/r1")
        .extension(RequestOptions::new().throw_on_max_redirect(true))
        .body(Body::empty())
        .unwrap();
    let err = client.request(request).await.unwrap_err();
    assert_eq!(err.message(), "max redirects");

    let throwing = self::client(
        &server,
        RedirectLayer::new()
            .max_redirections(1)
            .throw_on_max_redirect(true),
    );
    let request = HttpRequest::get("/r1")
        .extension(RequestOptions::new().throw_on_max_redirect(false))
        .body(Body::empty())
        .unwrap();
    let response = throwing.request(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(history(&response), ["/r1", "/r2"]);
}

fn name(text: &'static str) -> HeaderName {
    HeaderName::from_static(text)
}

fn with_headers(url: String, names: &[&'static str], options: RequestOptions) -> Request {
    let mut request = HttpRequest::get(url).extension(options);
    for header in names {
        request = request.header(*header, "1");
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn strip_headers_on_redirect_removes_them_on_every_hop() {
    let server = site().await;
    let layer = RedirectLayer::new()
        .max_redirections(3)
        .strip_headers_on_redirect([name("x-layer-secret")]);
    let client = client(&server, layer);
    // The request's list adds to the layer's.
    let options = RequestOptions::new().strip_headers_on_redirect([name("x-request-secret")]);
    let names = ["x-layer-secret", "x-request-secret", "x-other"];
    let url = "/redirect/307/landing".to_owned();
    let response = client
        .request(with_headers(url, &names, options))
        .await
        .unwrap();
    assert_eq!(header(&response, "x-path"), Some("/landing"));
    assert_eq!(header(&response, "x-req-x-layer-secret"), None);
    assert_eq!(header(&response, "x-req-x-request-secret"), None);
    assert_eq!(header(&response, "x-req-x-other"), Some("1"));

    // Without a redirect they are sent.
    let url = "/landing".to_owned();
    let response = client
        .request(with_headers(url, &names, RequestOptions::new()))
        .await
        .unwrap();
    assert_eq!(header(&response, "x-req-x-layer-secret"), Some("1"));
}

#[tokio::test]
async fn strip_headers_on_cross_origin_redirect_removes_them_only_across_origins() {
    let first = site().await;
    let second = site().await;
    let layer = RedirectLayer::new()
        .max_redirections(3)
        .strip_headers_on_cross_origin_redirect([name("x-layer-key")]);
    let agent = Agent::new().compose(layer);
    let names = ["x-layer-key", "x-request-key", "x-other"];
    let options =
        || RequestOptions::new().strip_headers_on_cross_origin_redirect([name("x-request-key")]);

    // Within the origin, they stay.
    let url = format!("{}/redirect/302/landing", first.url());
    let response = agent
        .request(with_headers(url, &names, options()))
        .await
        .unwrap();
    assert_eq!(header(&response, "x-path"), Some("/landing"));
    for header_name in names {
        assert_eq!(
            header(&response, &format!("x-req-{header_name}")),
            Some("1"),
            "{header_name}"
        );
    }

    // Across origins, the layer's and the request's lists go.
    let url = format!("{}/to/{}/landing", first.url(), second.addr());
    let response = agent
        .request(with_headers(url, &names, options()))
        .await
        .unwrap();
    assert_eq!(second.requests_received(), 1);
    assert_eq!(header(&response, "x-req-x-layer-key"), None);
    assert_eq!(header(&response, "x-req-x-request-key"), None);
    assert_eq!(header(&response, "x-req-x-other"), Some("1"));
}

#[tokio::test]
async fn the_redirect_history_lists_every_uri_in_order() {
    let server = chain().await;
    let client = client(&server, RedirectLayer::new().max_redirections(5));
    let response = client.request(get("/r1")).await.unwrap();
    let history = response
        .extensions()
        .get::<RedirectHistory>()
        .expect("a history after redirects")
        .clone();
    assert_eq!(history.urls(), ["/r1", "/r2", "/r3", "/end"]);
    assert_eq!(history.redirects(), 3);
    assert_eq!(history.original(), Some(&Uri::from_static("/r1")));
    assert_eq!(history.last(), Some(&Uri::from_static("/end")));
    assert_eq!(header(&response, "x-path"), Some("/end"));

    // No redirect, no history.
    let response = client.request(get("/end")).await.unwrap();
    assert!(response.extensions().get::<RedirectHistory>().is_none());
    assert_eq!(server.connections_accepted(), 1);
}

#[tokio::test]
async fn redirect_works_over_a_plain_service_fn() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tower::{service_fn, ServiceBuilder, ServiceExt};

    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let service = ServiceBuilder::new()
        .layer(RedirectLayer::new().max_redirections(2))
        .service(service_fn(move |request: Request| {
            counted.fetch_add(1, Ordering::SeqCst);
            async move {
                let response = match request.uri().path() {
                    "/old" => http::Response::builder()
                        .status(StatusCode::SEE_OTHER)
                        .header("location", "/new")
                        .body(Body::from("moved"))
                        .unwrap(),
                    _ => http::Response::builder()
                        .header("x-method", request.method().as_str())
                        .body(request.into_body())
                        .unwrap(),
                };
                Ok::<_, undici_dispatcher::Error>(response)
            }
        }));
    let request = HttpRequest::post("/old").body(Body::from("data")).unwrap();
    let response = service.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-method"), Some("GET"));
    assert_eq!(history(&response), ["/old", "/new"]);
    assert_eq!(response.into_body().text().await.unwrap(), "");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
