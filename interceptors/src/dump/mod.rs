//! The dump interceptor (being written).
