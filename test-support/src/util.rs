//! Internal plumbing shared by the servers: task tracking, an executor for
//! hyper that spawns into the tracked set, and connection counters.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

/// How long the `wait_for_*` helpers wait before panicking with a
/// descriptive message instead of hanging the test forever.
pub(crate) const WAIT_LIMIT: Duration = Duration::from_secs(20);

/// Locks a mutex, ignoring poisoning (a panicking handler must not take the
/// whole server down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every task a server spawns (accept loop, connections, HTTP/2 streams).
/// [`Tasks::shutdown`] aborts all of them; it is called when the server
/// handle is dropped.
#[derive(Debug, Default)]
pub(crate) struct Tasks {
    inner: Mutex<TasksInner>,
}

#[derive(Debug, Default)]
struct TasksInner {
    set: JoinSet<()>,
    closed: bool,
}

impl Tasks {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Spawns `fut` on the current runtime, unless the set is shut down.
    pub(crate) fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut inner = lock(&self.inner);
        if inner.closed {
            return;
        }
        // Reap finished tasks so the set does not grow without bound.
        while inner.set.try_join_next().is_some() {}
        inner.set.spawn(fut);
    }

    /// Aborts every task and refuses new ones.
    pub(crate) fn shutdown(&self) {
        let mut inner = lock(&self.inner);
        inner.closed = true;
        inner.set.abort_all();
    }
}

/// A hyper executor that spawns into a [`Tasks`] set, so HTTP/2 stream tasks
/// die with the server.
#[derive(Clone, Debug)]
pub(crate) struct TrackedExecutor(pub(crate) Arc<Tasks>);

impl<F> hyper::rt::Executor<F> for TrackedExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, fut: F) {
        self.0.spawn(async move {
            fut.await;
        });
    }
}

/// Socket counters shared by every server type.
#[derive(Clone, Debug, Default)]
pub(crate) struct Counts {
    /// Sockets accepted so far.
    pub(crate) accepted: usize,
    /// Sockets currently open.
    pub(crate) open: usize,
    /// High-water mark of `open`.
    pub(crate) max_open: usize,
    /// Remote address of every accepted TCP socket, in accept order.
    pub(crate) peers: Vec<SocketAddr>,
}

impl Counts {
    /// Records an accepted socket and returns its id (0-based accept order).
    pub(crate) fn accept(&mut self, peer: Option<SocketAddr>) -> usize {
        let id = self.accepted;
        self.accepted += 1;
        self.open += 1;
        self.max_open = self.max_open.max(self.open);
        if let Some(peer) = peer {
            self.peers.push(peer);
        }
        id
    }

    /// Records a closed socket.
    pub(crate) fn close(&mut self) {
        self.open = self.open.saturating_sub(1);
    }
}

/// Waits until `pred` holds for the value in `state`, panicking with
/// `what()` after [`WAIT_LIMIT`].
pub(crate) async fn wait_until<T, P, W>(state: &watch::Sender<T>, mut pred: P, what: W)
where
    P: FnMut(&T) -> bool,
    W: FnOnce(&T) -> String,
{
    let mut rx = state.subscribe();
    let res = tokio::time::timeout(WAIT_LIMIT, rx.wait_for(|s| pred(s))).await;
    match res {
        Ok(Ok(_)) => {}
        // The sender lives as long as the server handle we were called
        // through, so the channel cannot be closed here.
        Ok(Err(_)) => unreachable!("server state channel closed while its handle is alive"),
        Err(_) => {
            let msg = what(&state.borrow());
            panic!("timed out after {WAIT_LIMIT:?} waiting for {msg}");
        }
    }
}

/// A unique name for temp files: pid, a process-wide counter and the time.
pub(crate) fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{n}-{nanos}", std::process::id())
}
