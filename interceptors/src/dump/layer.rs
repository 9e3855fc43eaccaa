//! `DumpLayer`: the dump interceptor's options.

use tower_layer::Layer;

use super::Dump;

/// undici's default `maxSize` for the dump interceptor: 1 MiB.
pub const DEFAULT_MAX_SIZE: u64 = 1024 * 1024;

/// How much more of a body without `content-length` is read and discarded
/// in the background once it passed `max_size`: 1 MiB.
pub const DEFAULT_DISCARD_LIMIT: u64 = 1024 * 1024;

/// Applies [`Dump`]: response bodies are read and discarded, up to
/// [`max_size`](Self::max_size) bytes.
///
/// ```
/// use undici_interceptors::dump::DumpLayer;
///
/// let layer = DumpLayer::new().max_size(64 * 1024).discard_limit(4 * 1024 * 1024);
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DumpLayer {
    max_size: u64,
    discard_limit: u64,
}

impl DumpLayer {
    /// undici's defaults: `max_size` 1 MiB; beyond undici, at most
    /// [`DEFAULT_DISCARD_LIMIT`] (1 MiB) discarded past it.
    pub const fn new() -> Self {
        DumpLayer {
            max_size: DEFAULT_MAX_SIZE,
            discard_limit: DEFAULT_DISCARD_LIMIT,
        }
    }

    /// The most bytes the caller waits for. A `content-length` above it
    /// is an `UND_ERR_ABORTED` error and closes the connection; a body
    /// without one that passes it ends the caller's response there, as in
    /// undici, and the rest is discarded in the background (see
    /// [`discard_limit`](Self::discard_limit)). `0` accepts only empty
    /// bodies. A request's
    /// [`RequestOptions::dump_max_size`](undici_dispatcher::RequestOptions::dump_max_size)
    /// overrides it. Default: [`DEFAULT_MAX_SIZE`] (1 MiB).
    pub const fn max_size(mut self, max_size: u64) -> Self {
        self.max_size = max_size;
        self
    }

    /// How many more bytes of a body that passed `max_size` are read and
    /// discarded in the background, so that its connection can be reused;
    /// past that the body is dropped, closing the connection. undici
    /// reads the rest whatever its size; `0` closes the connection at
    /// once. Default: [`DEFAULT_DISCARD_LIMIT`] (1 MiB).
    pub const fn discard_limit(mut self, bytes: u64) -> Self {
        self.discard_limit = bytes;
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
            discard_limit: self.discard_limit,
        }
    }
}
