//! undici for Rust: the dispatcher crate.
