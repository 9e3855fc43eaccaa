//! Connections to one origin: the pool behind Client and Pool, the request
//! path, and the response body.

mod body;
mod budget;
mod errors;
mod executor;
mod gate;
mod h2_frames;
mod h2_io;
mod head_deadline;
mod lease;
mod open;
mod orders;
mod pool;
mod send;
mod stream_deadlines;

pub(crate) use body::ResponseBody;
pub(crate) use budget::ConnectionBudget;
pub(crate) use gate::{Permit, Wait};
pub(crate) use pool::{PoolConfig, Selection, Shared};
pub(crate) use send::{send, Call};
