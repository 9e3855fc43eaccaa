//! undici's `dispatcher.destroy()` example: requests in flight are
//! aborted with `UND_ERR_DESTROYED`, or with the reason given.
//!
//! Run with `cargo run --example dispatcher_destroy`.

use tokio::sync::mpsc;
use undici::prelude::*;
use undici::ErrorKind;
use undici_test_support::RawServer;

#[tokio::main]
async fn main() -> Result<(), Error> {
    // A server that takes requests and never answers, so that they are
    // still running when the client is destroyed.
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let server = RawServer::new(move |mut conn| {
        let arrived_tx = arrived_tx.clone();
        async move {
            if conn.read_request().await.is_ok() {
                let _ = arrived_tx.send(());
                let _ = conn.read_to_end().await;
            }
        }
    })
    .await;

    // `dispatcher.destroy()`: the running request fails with UND_ERR_DESTROYED.
    let client = Client::new(server.url())?;
    let running = tokio::spawn({
        let client = client.clone();
        async move {
            let request = http::Request::get("/")
                .body(Body::empty())
                .expect("a valid request");
            client.request(request).await
        }
    });
    arrived.recv().await;
    client.destroy(None).await;
    println!("Client destroyed");
    let err = running
        .await
        .expect("the request task")
        .expect_err("destroy aborts the running request");
    println!("request failed: {err}");
    assert_eq!(err.code(), "UND_ERR_DESTROYED");
    // Afterwards every request is refused.
    let late = http::Request::get("/")
        .body(Body::empty())
        .expect("a valid request");
    let err = client
        .request(late)
        .await
        .expect_err("a destroyed client refuses new requests");
    println!("after destroy: {}", err.code());
    assert_eq!(err.code(), "UND_ERR_DESTROYED");

    // `dispatcher.destroy(new Error('shutting down'))`: with a reason.
    let client = Client::new(server.url())?;
    let running = tokio::spawn({
        let client = client.clone();
        async move {
            let request = http::Request::get("/")
                .body(Body::empty())
                .expect("a valid request");
            client.request(request).await
        }
    });
    arrived.recv().await;
    client
        .destroy(Some(Error::new(ErrorKind::Aborted, "shutting down")))
        .await;
    let err = running
        .await
        .expect("the request task")
        .expect_err("destroy aborts the running request with its reason");
    println!("request failed with the reason: {err}");
    assert_eq!(err.message(), "shutting down");
    Ok(())
}
