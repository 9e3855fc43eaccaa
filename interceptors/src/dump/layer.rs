//! `DumpLayer`: the dump interceptor's options.

use tower_layer::Layer;

use super::Dump;

/// undici's default `maxSize` for the dump interceptor: 1 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024;

/// Applies [`Dump`]: response bodies are read and discarded, up to
/// [`max_size`](Self::max_size) bytes.
#[derive(Clone, Copy, Debug)]
pub struct DumpLayer {
    max_size: u64,
}

impl DumpLayer {
    /// undici's defaults: `max_size` 1 MiB.
    pub const fn new() -> Self {
        DumpLayer {
            max_size: DEFAULT_MAX_SIZE,
        }
    }

    /// The largest body discarded; a larger one is an `UND_ERR_ABORTED`
    /// error and closes its connection. `0` accepts only empty bodies.
    /// A request's
    /// [`RequestOptions::dump_max_size`](undici_dispatcher::RequestOptions::dump_max_size)
    /// overrides it. Default: [`DEFAULT_MAX_SIZE`] (1 MiB).
    pub const fn max_size(mut self, max_size: u64) -> Self {
        self.max_size = max_size;
        self
    }
}

impl Default for DumpLayer {
    fn default() -> Self {
        DumpLayer::new()
    }
}

impl<S> Layer<S> for DumpLayer {
    type Service = Dump<S>;

    fn layer(&self, inner: S) -> Dump<S> {
        Dump {
            inner,
            max_size: self.max_size,
        }
    }
}
