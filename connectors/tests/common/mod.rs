//! Helpers shared by the connector tests: a raw HTTP/1.1 exchange over a
//! [`Connection`], so the tests need no HTTP client.

// Each test file uses a subset of these helpers.
#![allow(dead_code)]

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use undici_connectors::ConnectOptions;
use undici_test_support::certs::TestPki;

/// A response read off the wire.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: String,
}

/// Sends `GET /` (HTTP/1.1, `connection: close`) and reads the response,
/// framed by its `content-length` (hyper sends one for full bodies).
pub async fn get<S>(io: &mut S, host: &str) -> io::Result<RawResponse>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let request = format!("GET / HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    io.write_all(request.as_bytes()).await?;
    io.flush().await?;
    read_response(io).await
}

async fn read_response<S>(io: &mut S) -> io::Result<RawResponse>
where
    S: AsyncRead + Unpin,
{
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the response head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, head.clone()))?;
    let length: usize = head
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = [0u8; 1024];
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the end of the body",
            ));
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Ok(RawResponse {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Connector options trusting only `pki`'s CA.
pub fn trusting(pki: &TestPki) -> ConnectOptions {
    ConnectOptions::new().ca(pki.ca_pem())
}
