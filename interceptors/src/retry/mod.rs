//! The retry interceptor (being written).
