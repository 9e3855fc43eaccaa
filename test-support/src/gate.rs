//! [`Gate`]: holds handlers until the test lets them through, one by one.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// A turnstile for server handlers. Each [`Gate::open_one`] lets exactly
/// one waiting (or future) handler through: unlike `Notify::notify_one`,
/// releases made while no handler waits yet are counted, not merged.
#[derive(Clone, Debug)]
pub struct Gate {
    passes: Arc<Semaphore>,
}

impl Gate {
    /// A closed gate.
    pub fn new() -> Self {
        Gate {
            passes: Arc::new(Semaphore::new(0)),
        }
    }

    /// Lets one handler through, now or when it arrives.
    pub fn open_one(&self) {
        self.passes.add_permits(1);
    }

    /// Waits for a pass, which is used up.
    pub async fn pass(&self) {
        if let Ok(permit) = self.passes.acquire().await {
            permit.forget();
        }
    }
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}
