//! Which redirects to follow: the [`RedirectPolicy`] trait, undici's
//! [`DefaultRedirectPolicy`] and [`SameOrigin`].

use http::{HeaderMap, Method, StatusCode, Uri};
use undici_dispatcher::{Error, Request};

/// A redirect the layer is about to follow, as a [`RedirectPolicy`] sees
/// it. The layer's own rules were applied already: the status is a
/// redirect with a `Location`, the limit is not reached, the body can be
/// sent again.
#[derive(Clone, Copy, Debug)]
pub struct Hop<'a> {
    pub(crate) status: StatusCode,
    pub(crate) headers: &'a HeaderMap,
    pub(crate) previous: &'a Uri,
    pub(crate) location: &'a Uri,
    pub(crate) method: &'a Method,
    pub(crate) redirects: usize,
    pub(crate) cross_origin: bool,
}

impl<'a> Hop<'a> {
    /// The redirect's status: 300, 301, 302, 303, 307 or 308.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The headers of the redirect response.
    pub fn headers(&self) -> &HeaderMap {
        self.headers
    }

    /// The URI that answered with the redirect.
    pub fn previous(&self) -> &Uri {
        self.previous
    }

    /// Where the redirect leads: `Location`, resolved against
    /// [`previous`](Self::previous).
    pub fn location(&self) -> &Uri {
        self.location
    }

    /// The method the next request will have (GET after a 303, or after
    /// a 301 or 302 answering a POST).
    pub fn method(&self) -> &Method {
        self.method
    }

    /// Redirects followed before this one.
    pub fn redirects(&self) -> usize {
        self.redirects
    }

    /// True when the redirect leads to another origin (also when the
    /// previous URI was origin-form, whose origin only the dispatcher
    /// knows, and the location is absolute).
    pub fn is_cross_origin(&self) -> bool {
        self.cross_origin
    }
}

/// What to do with a redirect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Follow it.
    Follow,
    /// Hand the redirect response to the caller.
    Stop,
}

/// Decides which redirects are followed, tower-http style; undici's
/// rules (limit, loops, methods, headers) apply whatever the policy.
///
/// ```
/// use undici_dispatcher::Error;
/// use undici_interceptors::redirect::{Action, Hop, RedirectLayer, RedirectPolicy};
///
/// /// Follows redirects, but never away from https.
/// #[derive(Clone)]
/// struct StayOnHttps;
///
/// impl RedirectPolicy for StayOnHttps {
///     fn redirect(&self, hop: &Hop<'_>) -> Result<Action, Error> {
///         let downgrade = hop.previous().scheme_str() == Some("https")
///             && hop.location().scheme_str() == Some("http");
///         if downgrade {
///             return Err(Error::invalid_argument("refusing a redirect from https to http"));
///         }
///         Ok(Action::Follow)
///     }
/// }
///
/// let layer = RedirectLayer::new().max_redirections(5).policy(StayOnHttps);
/// # let _ = layer;
/// ```
pub trait RedirectPolicy: Clone + Send + Sync + 'static {
    /// Follow the redirect, hand it back ([`Action::Stop`]), or fail the
    /// request with an error.
    fn redirect(&self, hop: &Hop<'_>) -> Result<Action, Error>;

    /// Called with each request sent because of a redirect, after the
    /// layer rewrote it (method, body, headers), before it is sent.
    /// Default: nothing.
    fn on_request(&self, request: &mut Request) {
        let _ = request;
    }
}

/// undici's policy: every redirect the layer's rules allow is followed.
#[derive(Clone, Copy, Debug, Default)]
pub struct DefaultRedirectPolicy;

impl RedirectPolicy for DefaultRedirectPolicy {
    fn redirect(&self, _hop: &Hop<'_>) -> Result<Action, Error> {
        Ok(Action::Follow)
    }
}

/// Follows redirects within the origin only; a redirect to another
/// origin is handed back to the caller.
#[derive(Clone, Copy, Debug, Default)]
pub struct SameOrigin;

impl RedirectPolicy for SameOrigin {
    fn redirect(&self, hop: &Hop<'_>) -> Result<Action, Error> {
        Ok(if hop.is_cross_origin() {
            Action::Stop
        } else {
            Action::Follow
        })
    }
}
