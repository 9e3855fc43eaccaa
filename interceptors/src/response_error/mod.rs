//! The response_error interceptor (being written).
