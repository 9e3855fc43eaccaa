//! `RedirectLayer`: the redirect options, with undici's defaults.

use std::sync::Arc;

use http::HeaderName;
use tower_layer::Layer;

use super::policy::{DefaultRedirectPolicy, RedirectPolicy};
use super::Redirect;

/// How much of a redirect response's body is read and discarded so that
/// its connection can serve the next hop: 64 KiB. Larger bodies are
/// dropped, which closes their connection.
pub const DEFAULT_DUMP_MAX_SIZE: u64 = 64 * 1024;

/// The options, shared by the layer and its services.
#[derive(Clone, Debug)]
pub(crate) struct RedirectOptions {
    pub(crate) max_redirections: Option<usize>,
    pub(crate) throw_on_max_redirect: bool,
    pub(crate) strip_headers_on_redirect: Vec<HeaderName>,
    pub(crate) strip_headers_on_cross_origin_redirect: Vec<HeaderName>,
    pub(crate) dump_max_size: u64,
}

/// Follows redirects: undici's `interceptors.redirect()`.
///
/// Nothing is followed until [`max_redirections`](Self::max_redirections)
/// is set, here or per request with
/// [`RequestOptions::max_redirections`](undici_dispatcher::RequestOptions::max_redirections),
/// as in undici. Which redirects are followed is decided by a
/// [`RedirectPolicy`], all of them by default.
///
/// ```
/// use undici_interceptors::redirect::RedirectLayer;
///
/// let layer = RedirectLayer::new()
///     .max_redirections(5)
///     .throw_on_max_redirect(true)
///     .strip_headers_on_cross_origin_redirect([http::HeaderName::from_static("x-api-key")]);
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct RedirectLayer<P = DefaultRedirectPolicy> {
    pub(crate) options: Arc<RedirectOptions>,
    pub(crate) policy: P,
}

impl RedirectLayer {
    /// undici's defaults: no redirect is followed until
    /// `max_redirections` is set; the last redirect is handed back when
    /// the limit is reached; no extra header is stripped.
    pub fn new() -> Self {
        RedirectLayer {
            options: Arc::new(RedirectOptions {
                max_redirections: None,
                throw_on_max_redirect: false,
                strip_headers_on_redirect: Vec::new(),
                strip_headers_on_cross_origin_redirect: Vec::new(),
                dump_max_size: DEFAULT_DUMP_MAX_SIZE,
            }),
            policy: DefaultRedirectPolicy,
        }
    }
}

impl Default for RedirectLayer {
    fn default() -> Self {
        RedirectLayer::new()
    }
}

impl<P> RedirectLayer<P> {
    fn options_mut(&mut self) -> &mut RedirectOptions {
        Arc::make_mut(&mut self.options)
    }

    /// Redirects followed at most; `0` follows none. Default: none
    /// (undici's `undefined`). A request's own
    /// [`max_redirections`](undici_dispatcher::RequestOptions::max_redirections)
    /// wins over this.
    pub fn max_redirections(mut self, max: usize) -> Self {
        self.options_mut().max_redirections = Some(max);
        self
    }

    /// When the limit is reached on a redirect: `false` (the default)
    /// hands that redirect response back, `true` fails with an
    /// `UND_ERR_INVALID_ARG` error, "max redirects", carrying its status
    /// and headers (undici throws a plain `Error('max redirects')`).
    pub fn throw_on_max_redirect(mut self, throw: bool) -> Self {
        self.options_mut().throw_on_max_redirect = throw;
        self
    }

    /// Headers removed from the request on every hop (`host` always is).
    /// A request's own list adds to this one.
    pub fn strip_headers_on_redirect(
        mut self,
        names: impl IntoIterator<Item = HeaderName>,
    ) -> Self {
        self.options_mut().strip_headers_on_redirect = names.into_iter().collect();
        self
    }

    /// Headers removed on a hop to another origin, besides
    /// `authorization`, `cookie` and `proxy-authorization`, which always
    /// are. A request's own list adds to this one.
    pub fn strip_headers_on_cross_origin_redirect(
        mut self,
        names: impl IntoIterator<Item = HeaderName>,
    ) -> Self {
        self.options_mut().strip_headers_on_cross_origin_redirect = names.into_iter().collect();
        self
    }

    /// How much of a redirect response's body is read and discarded so
    /// that its connection survives; a larger body is dropped, closing the
    /// connection. Default [`DEFAULT_DUMP_MAX_SIZE`] (64 KiB).
    pub fn dump_max_size(mut self, bytes: u64) -> Self {
        self.options_mut().dump_max_size = bytes;
        self
    }

    /// Decides which redirects are followed with `policy` instead.
    pub fn policy<Q: RedirectPolicy>(self, policy: Q) -> RedirectLayer<Q> {
        RedirectLayer {
            options: self.options,
            policy,
        }
    }
}

impl<S, P: Clone> Layer<S> for RedirectLayer<P> {
    type Service = Redirect<S, P>;

    fn layer(&self, inner: S) -> Redirect<S, P> {
        Redirect {
            inner,
            options: self.options.clone(),
            policy: self.policy.clone(),
        }
    }
}
