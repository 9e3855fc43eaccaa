//! The redirect interceptor (being written).
