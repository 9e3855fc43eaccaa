//! `DecompressLayer`: the decompress interceptor's options.

use std::sync::Arc;

use http::StatusCode;
use tower_layer::Layer;

use super::Decompress;

/// The default bound on a decoded body: 64 MiB.
pub const DEFAULT_MAX_DECODED_SIZE: u64 = 64 * 1024 * 1024;

/// The default bound on decoded bytes per encoded byte: 100.
pub const DEFAULT_MAX_RATIO: u64 = 100;

/// The default amount decoded before the ratio is checked: 1 MiB.
pub const DEFAULT_RATIO_THRESHOLD: u64 = 1024 * 1024;

/// Applies [`Decompress`]: decodes `content-encoding`d response bodies.
///
/// undici's options (`skip_status_codes`, `skip_error_responses`) with
/// undici's defaults, plus bounds on the decoded body that undici does
/// not have, and an opt-in `accept-encoding`.
#[derive(Clone, Debug)]
pub struct DecompressLayer {
    pub(super) config: Arc<Config>,
}

/// What [`DecompressLayer`] configures, shared by every clone of the
/// service.
#[derive(Clone, Debug)]
pub(super) struct Config {
    pub(super) skip_status_codes: Vec<StatusCode>,
    pub(super) skip_error_responses: bool,
    pub(super) limits: Limits,
    pub(super) accept_encoding: bool,
}

/// The bounds on a decoded body.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    pub(super) max_decoded_size: u64,
    pub(super) max_ratio: u64,
    pub(super) ratio_threshold: u64,
}

impl DecompressLayer {
    /// undici's defaults (skip 204 and 304, skip error responses, no
    /// `accept-encoding`), decoded bodies bounded to 64 MiB and to 100
    /// decoded bytes per encoded byte past the first MiB.
    pub fn new() -> Self {
        DecompressLayer {
            config: Arc::new(Config {
                skip_status_codes: vec![StatusCode::NO_CONTENT, StatusCode::NOT_MODIFIED],
                skip_error_responses: true,
                limits: Limits {
                    max_decoded_size: DEFAULT_MAX_DECODED_SIZE,
                    max_ratio: DEFAULT_MAX_RATIO,
                    ratio_threshold: DEFAULT_RATIO_THRESHOLD,
                },
                accept_encoding: false,
            }),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// Statuses whose bodies are passed through undecoded. Default: `204`
    /// and `304` (undici's `skipStatusCodes`).
    pub fn skip_status_codes(mut self, codes: impl IntoIterator<Item = StatusCode>) -> Self {
        self.config().skip_status_codes = codes.into_iter().collect();
        self
    }

    /// Whether responses of 400 and up are passed through undecoded.
    /// Default: `true` (undici's `skipErrorResponses`).
    pub fn skip_error_responses(mut self, skip: bool) -> Self {
        self.config().skip_error_responses = skip;
        self
    }

    /// The most a decoded body may weigh: past it the body ends with an
    /// `UND_ERR_RES_EXCEEDED_MAX_SIZE` error. `u64::MAX` turns the bound
    /// off. Default: [`DEFAULT_MAX_DECODED_SIZE`] (64 MiB); raise it for
    /// large compressed downloads. undici has no such bound.
    pub fn max_decoded_size(mut self, max: u64) -> Self {
        self.config().limits.max_decoded_size = max;
        self
    }

    /// The most decoded bytes per encoded byte read from the server, checked
    /// once [`ratio_threshold`](Self::ratio_threshold) bytes have been
    /// decoded: past it the body ends with an
    /// `UND_ERR_RES_EXCEEDED_MAX_SIZE` error. This stops a decompression
    /// bomb (a gzip of zeros decodes to about 1000 times its size) early,
    /// whatever `max_decoded_size` is. `u64::MAX` turns the check off.
    /// Default: [`DEFAULT_MAX_RATIO`] (100).
    pub fn max_ratio(mut self, ratio: u64) -> Self {
        self.config().limits.max_ratio = ratio;
        self
    }

    /// How much may be decoded before [`max_ratio`](Self::max_ratio)
    /// applies, so that small, very compressible bodies pass. Default:
    /// [`DEFAULT_RATIO_THRESHOLD`] (1 MiB).
    pub fn ratio_threshold(mut self, threshold: u64) -> Self {
        self.config().limits.ratio_threshold = threshold;
        self
    }

    /// Adds `accept-encoding` with the codings compiled in (`gzip,
    /// deflate`, then `br` and `zstd` with their features) to requests
    /// that have none. Default: `false`, as undici, which never adds it.
    pub fn accept_encoding(mut self, add: bool) -> Self {
        self.config().accept_encoding = add;
        self
    }
}

impl Default for DecompressLayer {
    fn default() -> Self {
        DecompressLayer::new()
    }
}

impl<S> Layer<S> for DecompressLayer {
    type Service = Decompress<S>;

    fn layer(&self, inner: S) -> Decompress<S> {
        Decompress {
            inner,
            config: self.config.clone(),
        }
    }
}
