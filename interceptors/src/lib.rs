//! undici for Rust: the interceptors crate.
