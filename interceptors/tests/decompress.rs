//! The decompress interceptor against real servers, with bodies encoded by
//! async-compression's encoders in the test.
#![cfg(feature = "decompress")]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::io::AsyncReadExt;
use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt, ErrorKind};
use undici_interceptors::decompress::DecompressLayer;
use undici_test_support::{body, handlers, RawServer, TestBody, TestServer};

const TEXT: &str = "undici for Rust: the decompress interceptor decodes bodies as they are read. ";

/// `data` encoded with one coding, as a server would send it.
async fn encode(coding: &str, data: &[u8]) -> Vec<u8> {
    use async_compression::tokio::bufread::{GzipEncoder, ZlibEncoder};
    let mut out = Vec::new();
    let read = match coding {
        "gzip" | "x-gzip" => GzipEncoder::new(data).read_to_end(&mut out).await,
        "deflate" | "compress" | "x-compress" => ZlibEncoder::new(data).read_to_end(&mut out).await,
        #[cfg(feature = "decompress-br")]
        "br" => {
            async_compression::tokio::bufread::BrotliEncoder::new(data)
                .read_to_end(&mut out)
                .await
        }
        #[cfg(feature = "decompress-zstd")]
        "zstd" => {
            async_compression::tokio::bufread::ZstdEncoder::new(data)
                .read_to_end(&mut out)
                .await
        }
        other => panic!("no encoder for {other}"),
    };
    read.unwrap();
    out
}

/// `data` encoded with each coding of `content_encoding` in turn, as the
/// header lists them.
async fn encode_all(content_encoding: &str, data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    for coding in content_encoding.split(',').map(str::trim) {
        out = encode(coding, &out).await;
    }
    out
}

/// A server answering every request with `status`, these headers and
/// `body`.
async fn serve(status: u16, headers: &[(&'static str, &'static str)], body: Vec<u8>) -> TestServer {
    let headers = headers.to_vec();
    let body = Bytes::from(body);
    TestServer::http1(move |_req| {
        let mut response = Response::builder().status(status);
        for (name, value) in &headers {
            response = response.header(*name, *value);
        }
        let response = response.body(body::full(body.clone())).unwrap();
        async move { response }
    })
    .await
}

/// A server answering with `body` encoded as `content_encoding` says.
async fn serve_encoded(content_encoding: &'static str, body: &[u8]) -> TestServer {
    let encoded = encode_all(content_encoding, body).await;
    serve(200, &[("content-encoding", content_encoding)], encoded).await
}

fn client(server: &TestServer, layer: DecompressLayer) -> impl Dispatcher {
    Client::new(server.url().as_str()).unwrap().compose(layer)
}

fn get() -> Request<Body> {
    Request::get("/").body(Body::empty()).unwrap()
}

fn text(repeat: usize) -> String {
    TEXT.repeat(repeat)
}

/// `len` bytes of letters and spaces that do not repeat, so they compress
/// about as well as real text (a ratio of 2, not 1000).
fn noisy_text(len: usize) -> String {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            match state % 27 {
                26 => ' ',
                letter => char::from(b'a' + letter as u8),
            }
        })
        .collect()
}

/// `len` bytes that do not compress (xorshift64).
fn random_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

async fn decoded_text(content_encoding: &'static str) -> String {
    let expected = text(200);
    let server = serve_encoded(content_encoding, expected.as_bytes()).await;
    let client = client(&server, DecompressLayer::new());
    let response = client.request(get()).await.unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    assert!(response.headers().get("content-length").is_none());
    let text = response.into_body().text().await.unwrap();
    client.close().await;
    text
}

#[tokio::test]
async fn gzip_is_decoded_and_the_connection_is_reused() {
    let expected = text(1000);
    let server = serve_encoded("gzip", expected.as_bytes()).await;
    let client = client(&server, DecompressLayer::new());
    for _ in 0..3 {
        let response = client.request(get()).await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("content-encoding").is_none());
        assert!(response.headers().get("content-length").is_none());
        assert_eq!(response.into_body().text().await.unwrap(), expected);
    }
    assert_eq!(server.connections_accepted(), 1);
    client.close().await;
}

#[tokio::test]
async fn x_gzip_is_gzip() {
    assert_eq!(decoded_text("x-gzip").await, text(200));
}

#[tokio::test]
async fn deflate_is_zlib_inflated() {
    assert_eq!(decoded_text("deflate").await, text(200));
}

#[tokio::test]
async fn compress_and_x_compress_are_inflated_as_undici_does() {
    assert_eq!(decoded_text("compress").await, text(200));
    assert_eq!(decoded_text("x-compress").await, text(200));
}

#[cfg(feature = "decompress-br")]
#[tokio::test]
async fn br_is_decoded() {
    assert_eq!(decoded_text("br").await, text(200));
}

#[cfg(feature = "decompress-zstd")]
#[tokio::test]
async fn zstd_is_decoded() {
    assert_eq!(decoded_text("zstd").await, text(200));
}

#[tokio::test]
async fn stacked_codings_are_decoded_in_reverse() {
    // The body was gzipped, then deflated: inflate first, then gunzip.
    assert_eq!(decoded_text("gzip, deflate").await, text(200));
    assert_eq!(decoded_text("deflate,gzip,gzip").await, text(200));
    assert_eq!(
        decoded_text("gzip, gzip, gzip, gzip, gzip").await,
        text(200)
    );
}

#[tokio::test]
async fn codings_from_several_header_fields_are_one_list() {
    let expected = text(100);
    let encoded = encode_all("gzip, deflate", expected.as_bytes()).await;
    let server = serve(
        200,
        &[
            ("content-encoding", "gzip"),
            ("content-encoding", "deflate"),
        ],
        encoded,
    )
    .await;
    let client = client(&server, DecompressLayer::new());
    let response = client.request(get()).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), expected);
    client.close().await;
}

#[tokio::test]
async fn a_response_without_content_encoding_flows_through_unchanged() {
    let server = serve(
        200,
        &[("content-type", "text/plain")],
        b"plain body".to_vec(),
    )
    .await;
    let client = client(&server, DecompressLayer::new());
    let response = client.request(get()).await.unwrap();
    assert_eq!(response.headers()["content-length"], "10");
    assert_eq!(response.headers()["content-type"], "text/plain");
    assert_eq!(response.into_body().bytes().await.unwrap(), "plain body");
    client.close().await;
}

#[tokio::test]
async fn an_unknown_coding_anywhere_passes_the_body_through_undecoded() {
    for content_encoding in ["lzma", "gzip, lzma", "lzma, gzip", "identity"] {
        let encoded = encode("gzip", b"hello").await;
        let server = serve(
            200,
            &[("content-encoding", content_encoding)],
            encoded.clone(),
        )
        .await;
        let client = client(&server, DecompressLayer::new());
        let response = client.request(get()).await.unwrap();
        assert_eq!(response.headers()["content-encoding"], content_encoding);
        assert_eq!(
            response.headers()["content-length"],
            encoded.len().to_string().as_str()
        );
        assert_eq!(response.into_body().bytes().await.unwrap(), encoded);
        client.close().await;
    }
}

#[cfg(not(feature = "decompress-br"))]
#[tokio::test]
async fn br_without_its_feature_passes_through() {
    let server = serve(
        200,
        &[("content-encoding", "br")],
        b"\x0b\x02\x80hi\x03".to_vec(),
    )
    .await;
    let client = client(&server, DecompressLayer::new());
    let response = client.request(get()).await.unwrap();
    assert_eq!(response.headers()["content-encoding"], "br");
    assert_eq!(
        response.into_body().bytes().await.unwrap().as_ref(),
        b"\x0b\x02\x80hi\x03"
    );
    client.close().await;
}

#[tokio::test]
async fn more_than_five_codings_are_an_error() {
    let server = serve(
        200,
        &[("content-encoding", "gzip, gzip, gzip, gzip, gzip, gzip")],
        b"whatever".to_vec(),
    )
    .await;
    let client = client(&server, DecompressLayer::new());
    let err = client.request(get()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotSupported);
    assert_eq!(err.code(), "UND_ERR_NOT_SUPPORTED");
    assert_eq!(
        err.message(),
        "too many content-encodings in response: 6, maximum allowed is 5"
    );
    client.close().await;
}

#[tokio::test]
async fn head_requests_are_not_decoded() {
    let server = serve_encoded("gzip", b"hello").await;
    let client = client(&server, DecompressLayer::new());
    let response = client
        .request(Request::head("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert!(response.headers().get("content-length").is_some());
    assert!(response.into_body().bytes().await.unwrap().is_empty());
    client.close().await;
}

#[tokio::test]
async fn no_content_and_not_modified_are_not_decoded() {
    for status in [204u16, 304] {
        let server = serve(status, &[("content-encoding", "gzip")], Vec::new()).await;
        let client = client(&server, DecompressLayer::new());
        let response = client.request(get()).await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()["content-encoding"], "gzip");
        client.close().await;
    }
}

#[tokio::test]
async fn skip_status_codes_can_be_changed() {
    let encoded = encode("gzip", b"partial").await;
    let server = serve(206, &[("content-encoding", "gzip")], encoded.clone()).await;

    let skipping = client(
        &server,
        DecompressLayer::new().skip_status_codes([StatusCode::PARTIAL_CONTENT]),
    );
    let response = skipping.request(get()).await.unwrap();
    assert_eq!(response.into_body().bytes().await.unwrap(), encoded);
    skipping.close().await;

    let decoding = client(&server, DecompressLayer::new());
    let response = decoding.request(get()).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "partial");
    decoding.close().await;
}

#[tokio::test]
async fn error_statuses_are_skipped_unless_asked() {
    let encoded = encode("gzip", b"server error").await;
    let server = serve(500, &[("content-encoding", "gzip")], encoded.clone()).await;

    let default = client(&server, DecompressLayer::new());
    let response = default.request(get()).await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.into_body().bytes().await.unwrap(), encoded);
    default.close().await;

    let decoding = client(&server, DecompressLayer::new().skip_error_responses(false));
    let response = decoding.request(get()).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "server error");
    decoding.close().await;
}

#[tokio::test]
async fn an_empty_encoded_body_decodes_to_an_empty_body() {
    let server = serve(200, &[("content-encoding", "gzip, deflate")], Vec::new()).await;
    let client = client(&server, DecompressLayer::new());
    let response = client.request(get()).await.unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    assert_eq!(response.into_body().text().await.unwrap(), "");
    client.close().await;
}

#[tokio::test]
async fn corrupt_data_is_a_clear_error() {
    // A gzip header followed by garbage.
    let mut corrupt = encode("gzip", text(10).as_bytes()).await;
    for byte in &mut corrupt[10..30] {
        *byte ^= 0x55;
    }
    let server = serve(200, &[("content-encoding", "gzip")], corrupt).await;
    let client = client(&server, DecompressLayer::new());
    let response = client.request(get()).await.unwrap();
    let err = response.into_body().bytes().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Parser);
    assert_eq!(err.code(), "Z_DATA_ERROR");
    assert!(
        err.message()
            .starts_with("Decompression failed (content-encoding: gzip)"),
        "{err}"
    );
    assert!(err.find_source::<std::io::Error>().is_some());
    client.close().await;
}

#[tokio::test]
async fn data_that_is_not_gzip_at_all_is_a_clear_error() {
    let server = serve(
        200,
        &[("content-encoding", "gzip")],
        b"not gzip at all".to_vec(),
    )
    .await;
    let client = client(&server, DecompressLayer::new());
    let err = client
        .request(get())
        .await
        .unwrap()
        .into_body()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "Z_DATA_ERROR");
    client.close().await;
}

#[tokio::test]
async fn a_truncated_stream_is_a_clear_error() {
    let mut truncated = encode("deflate", text(100).as_bytes()).await;
    truncated.truncate(truncated.len() / 2);
    let server = serve(200, &[("content-encoding", "deflate")], truncated).await;
    let client = client(&server, DecompressLayer::new());
    let err = client
        .request(get())
        .await
        .unwrap()
        .into_body()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "Z_DATA_ERROR");
    assert!(err.message().contains("content-encoding: deflate"), "{err}");
    client.close().await;
}

#[tokio::test]
async fn data_after_the_end_of_the_stream_is_an_error() {
    let mut padded = encode("deflate", b"hello").await;
    padded.extend_from_slice(b"trailing junk");
    let server = serve(200, &[("content-encoding", "deflate")], padded).await;
    let client = client(&server, DecompressLayer::new());
    let err = client
        .request(get())
        .await
        .unwrap()
        .into_body()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(err.code(), "Z_DATA_ERROR");
    assert!(
        err.message().contains("unexpected data after the end"),
        "{err}"
    );
    client.close().await;
}

#[tokio::test]
async fn a_connection_broken_mid_body_gives_the_connection_error() {
    let gzip = encode("gzip", text(100).as_bytes()).await;
    let mut response = format!(
        "HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
        gzip.len()
    )
    .into_bytes();
    response.extend_from_slice(&gzip[..gzip.len() / 2]);
    let server = RawServer::respond_then_close(&response).await;

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
        .compose(DecompressLayer::new());
    let err = client
        .request(get())
        .await
        .unwrap()
        .into_body()
        .bytes()
        .await
        .unwrap_err();
    assert_eq!(err.kind(), expected.kind(), "{err:?}");
    assert_eq!(err.code(), expected.code(), "{err:?}");
    assert_ne!(err.code(), "Z_DATA_ERROR");
    client.close().await;
}

#[tokio::test]
async fn gzip_members_are_all_decoded() {
    let mut members = encode("gzip", b"hello ").await;
    members.extend(encode("gzip", b"world").await);
    let server = serve(200, &[("content-encoding", "gzip")], members).await;
    let client = client(&server, DecompressLayer::new());
    let response = client.request(get()).await.unwrap();
    assert_eq!(response.into_body().text().await.unwrap(), "hello world");
    client.close().await;
}

/// A body that streams `members` gzip members, each 1 MiB of zeros
/// compressed (about 1 KiB): `members` MiB decoded, produced chunk by
/// chunk as the connection takes them, never held whole.
fn gzip_bomb(member: Bytes, members: usize) -> TestBody {
    let frames = std::iter::repeat_n(member, members).map(|m| Ok::<_, Infallible>(Frame::data(m)));
    body::from_body(http_body_util::StreamBody::new(futures_util::stream::iter(
        frames,
    )))
}

async fn bomb_server(members: usize) -> TestServer {
    let member = Bytes::from(encode("gzip", &vec![0u8; 1024 * 1024]).await);
    TestServer::http1(move |_req| {
        let body = gzip_bomb(member.clone(), members);
        async move {
            Response::builder()
                .header("content-encoding", "gzip")
                .body(body)
                .unwrap()
        }
    })
    .await
}

/// Reads `body` frame by frame without keeping the data; the bytes read
/// and how the body ended.
async fn drain(mut body: Body) -> (u64, Result<(), undici_dispatcher::Error>) {
    let mut read = 0u64;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    assert!(data.len() <= 32 * 1024, "a frame of {} bytes", data.len());
                    read += data.len() as u64;
                }
            }
            Err(err) => return (read, Err(err)),
        }
    }
    (read, Ok(()))
}

/// The peak resident set of this process, in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[tokio::test]
async fn a_gigabyte_gzip_bomb_is_stopped_by_the_ratio_quickly() {
    let server = bomb_server(1024).await; // 1 GiB decoded
    let client = client(&server, DecompressLayer::new());
    let started = Instant::now();

    let response = client.request(get()).await.unwrap();
    let (read, ended) = drain(response.into_body()).await;
    let err = ended.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::ResponseExceededMaxSize);
    assert_eq!(err.code(), "UND_ERR_RES_EXCEEDED_MAX_SIZE");
    assert!(err.message().contains("max_ratio of 100"), "{err}");
    assert!(
        read <= 2 * 1024 * 1024,
        "{read} bytes decoded before the stop"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    client.close().await;
}

/// The probe below, run in a process of its own so that no other test's
/// allocations move the peak it measures.
#[test]
fn a_gzip_bomb_is_stopped_at_max_decoded_size_with_flat_memory() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "memory_probe_bomb_up_to_max_decoded_size",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("1 passed"),
        "the probe did not run: {stdout}"
    );
}

#[tokio::test]
#[ignore = "run in its own process by a_gzip_bomb_is_stopped_at_max_decoded_size_with_flat_memory"]
async fn memory_probe_bomb_up_to_max_decoded_size() {
    let server = bomb_server(1024).await; // 1 GiB decoded
    let limit = 256 * 1024 * 1024;
    let client = client(
        &server,
        DecompressLayer::new()
            .max_ratio(u64::MAX)
            .max_decoded_size(limit),
    );
    let before = peak_rss_kib().expect("VmHWM in /proc/self/status");
    let started = Instant::now();

    let response = client.request(get()).await.unwrap();
    let (read, ended) = drain(response.into_body()).await;
    let err = ended.unwrap_err();

    assert_eq!(err.kind(), ErrorKind::ResponseExceededMaxSize);
    assert!(
        err.message()
            .contains("max_decoded_size of 268435456 bytes"),
        "{err}"
    );
    // Everything up to the bound was handed over, the rest never decoded.
    assert!(read <= limit && read > limit - 64 * 1024, "{read}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
    // 256 MiB went through; the process grew by a few MiB at most.
    let after = peak_rss_kib().expect("VmHWM in /proc/self/status");
    println!("peak RSS {before} KiB -> {after} KiB while decoding {read} bytes");
    assert!(
        after - before < 32 * 1024,
        "peak RSS grew from {before} KiB to {after} KiB"
    );
    client.close().await;
}

#[tokio::test]
async fn bodies_are_decoded_while_the_server_is_still_sending() {
    let expected = noisy_text(2 * 1024 * 1024);
    let encoded = Bytes::from(encode("gzip", expected.as_bytes()).await);
    let gate = Arc::new(tokio::sync::Notify::new());
    let server_gate = gate.clone();
    let server = TestServer::http1(move |_req| {
        let (tx, body) = body::channel(1);
        let (first, rest) = (
            encoded.slice(..encoded.len() / 2),
            encoded.slice(encoded.len() / 2..),
        );
        let gate = server_gate.clone();
        tokio::spawn(async move {
            tx.send_data(first).await.ok();
            // The rest only once the client has decoded something.
            gate.notified().await;
            tx.send_data(rest).await.ok();
        });
        async move {
            Response::builder()
                .header("content-encoding", "gzip")
                .body(body)
                .unwrap()
        }
    })
    .await;
    let client = client(&server, DecompressLayer::new());

    let response = client.request(get()).await.unwrap();
    let mut body = response.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first half decodes before the second is sent")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert!(!first.is_empty());
    gate.notify_one();
    let mut decoded = first.to_vec();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            decoded.extend_from_slice(&data);
        }
    }
    assert_eq!(decoded, expected.as_bytes());
    client.close().await;
}

#[tokio::test]
async fn trailers_follow_the_decoded_data() {
    let encoded = Bytes::from(encode("gzip", b"with trailers").await);
    let server = TestServer::h2c(move |_req| {
        let (tx, body) = body::channel(2);
        let encoded = encoded.clone();
        tokio::spawn(async move {
            tx.send_data(encoded).await.ok();
            let mut trailers = http::HeaderMap::new();
            trailers.insert("x-checksum", http::HeaderValue::from_static("abc"));
            tx.send_trailers(trailers).await.ok();
        });
        async move {
            Response::builder()
                .header("content-encoding", "gzip")
                .body(body)
                .unwrap()
        }
    })
    .await;
    let client = Client::builder()
        .h2c(true)
        .build(server.url().as_str())
        .unwrap()
        .compose(DecompressLayer::new());

    let response = client.request(get()).await.unwrap();
    let collected = response.into_body().collect().await.unwrap();
    assert_eq!(collected.trailers().unwrap()["x-checksum"], "abc");
    assert_eq!(collected.to_bytes(), "with trailers");
    client.close().await;
}

#[tokio::test]
async fn accept_encoding_is_added_only_when_asked() {
    let server = TestServer::http1(handlers::echo).await;

    let plain = client(&server, DecompressLayer::new());
    let response = plain.request(get()).await.unwrap();
    assert!(response.headers().get("x-req-accept-encoding").is_none());
    plain.close().await;

    let offering = client(&server, DecompressLayer::new().accept_encoding(true));
    let response = offering.request(get()).await.unwrap();
    let offered = response.headers()["x-req-accept-encoding"]
        .to_str()
        .unwrap();
    assert!(offered.starts_with("gzip, deflate"), "{offered}");
    assert_eq!(offered.contains("br"), cfg!(feature = "decompress-br"));
    assert_eq!(offered.contains("zstd"), cfg!(feature = "decompress-zstd"));

    // A request's own accept-encoding is kept.
    let own = Request::get("/")
        .header("accept-encoding", "identity")
        .body(Body::empty())
        .unwrap();
    let response = offering.request(own).await.unwrap();
    assert_eq!(response.headers()["x-req-accept-encoding"], "identity");
    offering.close().await;
}

#[tokio::test]
async fn decompress_works_in_a_service_builder_stack_over_any_service() {
    use tower::{service_fn, ServiceBuilder, ServiceExt};

    let encoded = Bytes::from(encode("gzip", b"from a plain service").await);
    let service = ServiceBuilder::new()
        .layer(DecompressLayer::new())
        .service(service_fn(move |_req: Request<Body>| {
            let encoded = encoded.clone();
            async move {
                let response = Response::builder()
                    .header("content-encoding", "gzip")
                    .body(Body::from(encoded))
                    .unwrap();
                Ok::<_, undici_dispatcher::Error>(response)
            }
        }));
    let response = service.oneshot(get()).await.unwrap();
    assert_eq!(
        response.into_body().text().await.unwrap(),
        "from a plain service"
    );
}

/// Bytes of encoded body a [`counted_gzip_server`] has handed to its
/// connection so far.
type SentBytes = tokio::sync::watch::Receiver<u64>;

/// A server streaming `members` copies of the gzip member `member`
/// through a channel of one frame, counting what its connection took:
/// the connection takes a frame only once it could write the previous one
/// to the socket, so the count is what the server has sent, give or take
/// the socket buffers.
async fn counted_gzip_server(member: Bytes, members: usize) -> (TestServer, SentBytes) {
    let (sent, count) = tokio::sync::watch::channel(0u64);
    let sent = Arc::new(sent);
    let server = TestServer::http1(move |_req| {
        let (member, sent) = (member.clone(), sent.clone());
        let (tx, body) = body::channel(1);
        tokio::spawn(async move {
            for _ in 0..members {
                if tx.send_data(member.clone()).await.is_err() {
                    return;
                }
                sent.send_modify(|count| *count += member.len() as u64);
            }
        });
        async move {
            Response::builder()
                .header("content-encoding", "gzip")
                .body(body)
                .unwrap()
        }
    })
    .await;
    (server, count)
}

#[tokio::test]
async fn the_server_is_held_back_while_the_decoded_body_is_not_read() {
    // Random bytes do not compress: the encoded body is as large as the
    // decoded one (32 MiB), and cheap to decode.
    let plain = random_bytes(64 * 1024);
    let member = Bytes::from(encode("gzip", &plain).await);
    let members = 512;
    let total = member.len() as u64 * members as u64;
    let (server, mut sent) = counted_gzip_server(member.clone(), members).await;
    let client = client(&server, DecompressLayer::new());

    let response = client.request(get()).await.unwrap();
    let mut body = response.into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert!(!first.is_empty());

    // While the caller does not read, the server gets nowhere near the
    // end: a body decoded ahead into memory would let it send everything
    // in a fraction of this time. (What it does send fills the sockets'
    // buffers: about 4.5 MB on loopback here, which the kernel sizes.)
    let held = tokio::time::timeout(
        Duration::from_secs(1),
        sent.wait_for(|&count| count >= total / 2),
    )
    .await
    .is_err();
    let stalled_at = *sent.borrow();
    println!("the server stalled at {stalled_at} of {total} bytes");
    assert!(held, "the server sent {stalled_at} of {total} bytes");

    // Reading again resumes it, to the end.
    let mut decoded = first.len() as u64;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.unwrap().into_data() {
            decoded += data.len() as u64;
        }
    }
    assert_eq!(decoded, plain.len() as u64 * members as u64);
    assert_eq!(*sent.borrow(), total);
    client.close().await;
}
