//! The executor hyper's HTTP/2 connections spawn their futures on.

use std::future::Future;

/// Spawns on the current tokio runtime, each future in a box of its own.
///
/// hyper spawns one future per HTTP/2 request, the one that waits for the
/// response head, and its type is the size of its largest variant (the
/// connection's own task): about one and a half kilobytes. tokio moves a
/// spawned future into its task, then writes the task's stage over it
/// twice (the output, then the end), each a copy of the whole future; in
/// a box, each of these moves a pointer. (hyper-util's legacy client
/// boxes them too.)
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BoxingExecutor;

impl<F> hyper::rt::Executor<F> for BoxingExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Box::pin(future));
    }
}
