//! The local hyper server, in its own process on its own cores.
//!
//! A separate process keeps the server's CPU time out of the client's
//! `getrusage` and its allocations out of the client's heap. It listens on
//! three ports of 127.0.0.1: HTTP/1.1, h2c (HTTP/2 with prior knowledge),
//! and HTTP/1.1 over TLS with a certificate generated at start, whose CA
//! it writes to a file for the clients. It answers:
//!
//! - `/12`: 12 bytes;
//! - `/65536`: 64 KiB;
//! - `/hold/<token>/<n>`: 12 bytes, once `n` requests with that token are
//!   in flight, so a client has to open `n` connections at once (the
//!   memory comparison).
//!
//! It exits when its standard input closes, so it never outlives the
//! conductor, even one that was killed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use undici_test_support::certs::TestPki;

use crate::affinity::{self, CoreSplit};
use crate::config::ROLE_VAR;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

const CORES_VAR: &str = "UNDICI_BENCH_SERVER_CORES";
const CA_FILE_VAR: &str = "UNDICI_BENCH_CA_FILE";

/// The small body: 12 bytes.
pub const SMALL: &[u8; 12] = b"hello world\n";
/// The large body's size: 64 KiB.
pub const LARGE_LEN: usize = 64 * 1024;

/// Where the clients find the server.
#[derive(Clone, Debug)]
pub struct Target {
    pub h1: SocketAddr,
    pub h2c: SocketAddr,
    pub tls: SocketAddr,
    /// The CA that issued the TLS port's certificate, PEM.
    pub ca_pem: Vec<u8>,
    pub ca_file: PathBuf,
}

/// The server child, killed on drop.
pub struct ServerProcess {
    child: Child,
    target: Target,
}

impl ServerProcess {
    /// Starts the server on `cores.server` and waits until it listens.
    pub fn spawn(cores: &CoreSplit, out_dir: &Path) -> Result<ServerProcess, BoxError> {
        std::fs::create_dir_all(out_dir)?;
        let ca_file = out_dir.join(format!("server-ca-{}.pem", std::process::id()));
        let server_cores = if cores.pinned {
            affinity::format_cores(&cores.server)
        } else {
            String::new()
        };
        let mut child = Command::new(std::env::current_exe()?)
            .env(ROLE_VAR, "server")
            .env(CORES_VAR, server_cores)
            .env(CA_FILE_VAR, &ca_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let ready = read_ready_line(&mut child);
        let (h1, h2c, tls) = match ready {
            Ok(addrs) => addrs,
            Err(err) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err);
            }
        };
        let ca_pem = std::fs::read(&ca_file)?;
        Ok(ServerProcess {
            child,
            target: Target {
                h1,
                h2c,
                tls,
                ca_pem,
                ca_file,
            },
        })
    }

    pub fn target(&self) -> &Target {
        &self.target
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.target.ca_file);
    }
}

/// The child's first line: `READY <h1> <h2c> <tls>`.
fn read_ready_line(child: &mut Child) -> Result<(SocketAddr, SocketAddr, SocketAddr), BoxError> {
    let stdout = child.stdout.take().ok_or("the server has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let mut words = line.split_whitespace();
    if words.next() != Some("READY") {
        return Err(format!("the server said {line:?} instead of READY").into());
    }
    let mut addr = || -> Result<SocketAddr, BoxError> {
        Ok(words.next().ok_or("READY without an address")?.parse()?)
    };
    Ok((addr()?, addr()?, addr()?))
}

/// The server process's `main`.
pub fn child_main() -> ExitCode {
    let cores = affinity::parse_cores(&std::env::var(CORES_VAR).unwrap_or_default());
    if !cores.is_empty() {
        affinity::pin_self(&cores);
    }
    affinity::raise_open_files_limit();
    let Some(ca_file) = std::env::var_os(CA_FILE_VAR) else {
        eprintln!("undici-bench server: {CA_FILE_VAR} is not set");
        return ExitCode::FAILURE;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores.len().max(1))
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(serve(PathBuf::from(ca_file))),
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(()) => {
            // The conductor is gone; the runtime's tasks die with us.
            std::process::exit(0)
        }
        Err(err) => {
            eprintln!("undici-bench server: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(ca_file: PathBuf) -> Result<(), BoxError> {
    let pki = TestPki::new();
    let cert = pki.server_cert(&["localhost", "127.0.0.1"]);
    std::fs::write(&ca_file, pki.ca_pem())?;
    let tls = TlsAcceptor::from(pki.server_config(&cert, &[b"http/1.1"]));

    let h1 = TcpListener::bind("127.0.0.1:0").await?;
    let h2c = TcpListener::bind("127.0.0.1:0").await?;
    let tls_listener = TcpListener::bind("127.0.0.1:0").await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "READY {} {} {}",
            h1.local_addr()?,
            h2c.local_addr()?,
            tls_listener.local_addr()?
        )?;
        stdout.flush()?;
    }

    let responder = Responder::new();
    tokio::spawn(accept(h1, responder.clone(), Protocol::Http1));
    tokio::spawn(accept(h2c, responder.clone(), Protocol::H2c));
    tokio::spawn(accept(tls_listener, responder, Protocol::Tls(tls)));

    // Until the conductor closes our stdin (or dies).
    tokio::task::spawn_blocking(|| {
        let mut byte = [0u8; 1];
        while matches!(std::io::stdin().read(&mut byte), Ok(n) if n > 0) {}
    })
    .await?;
    Ok(())
}

#[derive(Clone)]
enum Protocol {
    Http1,
    H2c,
    Tls(TlsAcceptor),
}

async fn accept(listener: TcpListener, responder: Responder, protocol: Protocol) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let responder = responder.clone();
        let protocol = protocol.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| responder.clone().respond(request));
            // A connection's error (a client closing mid-request) ends that
            // connection only.
            let _ = match protocol {
                Protocol::Http1 => {
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Protocol::H2c => {
                    hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .max_concurrent_streams(1024)
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                }
                Protocol::Tls(acceptor) => match acceptor.accept(stream).await {
                    Ok(stream) => {
                        hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await
                    }
                    Err(_) => return,
                },
            };
        });
    }
}

/// Answers every request from bodies made once: a clone of `Bytes` is a
/// reference count, so the server spends nothing per request on them.
#[derive(Clone)]
struct Responder {
    large: Bytes,
    holds: Arc<Mutex<HashMap<String, watch::Sender<usize>>>>,
}

impl Responder {
    fn new() -> Responder {
        Responder {
            large: Bytes::from(vec![b'x'; LARGE_LEN]),
            holds: Arc::default(),
        }
    }

    async fn respond(
        self,
        request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let path = request.uri().path();
        let body = if path == "/65536" {
            self.large.clone()
        } else if let Some(hold) = path.strip_prefix("/hold/") {
            self.hold(hold).await;
            Bytes::from_static(SMALL)
        } else {
            Bytes::from_static(SMALL)
        };
        Ok(Response::new(Full::new(body)))
    }

    /// Waits until `n` requests of `token` (from `<token>/<n>`) are here.
    async fn hold(&self, spec: &str) {
        let Some((token, n)) = spec.split_once('/') else {
            return;
        };
        let Ok(n) = n.parse::<usize>() else {
            return;
        };
        let mut arrived = {
            let mut holds = self.holds.lock().unwrap_or_else(PoisonError::into_inner);
            let sender = holds
                .entry(token.to_owned())
                .or_insert_with(|| watch::channel(0).0);
            sender.send_modify(|count| *count += 1);
            sender.subscribe()
        };
        let _ = arrived.wait_for(|count| *count >= n).await;
    }
}
