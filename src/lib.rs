//! undici for Rust.
