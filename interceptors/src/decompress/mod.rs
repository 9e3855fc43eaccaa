//! The decompress interceptor (being written).
