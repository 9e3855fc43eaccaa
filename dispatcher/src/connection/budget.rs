//! `ConnectionBudget`: one cap on open connections shared by many pools
//! (an Agent's `max_total_connections`, beyond undici: its issue 3268).
//!
//! Every connection, and every connection being opened, holds one unit.
//! A pool that cannot get a unit waits in line and is offered units as
//! they come back; meanwhile it asks another pool to close an idle
//! connection, as Node's `http.Agent` does for `maxTotalSockets`.
//!
//! Lock order: a pool's lock may be held while taking the budget's, never
//! the other way round; the budget calls pools only with its lock
//! released.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::pool::Shared;
use crate::sync::lock;

#[derive(Debug)]
pub(crate) struct ConnectionBudget {
    max: usize,
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    used: usize,
    /// Pools waiting for a unit, first come first served.
    waiting: VecDeque<Weak<Shared>>,
    /// Every pool sharing the budget, to ask for idle connections.
    members: Vec<Weak<Shared>>,
}

impl ConnectionBudget {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionBudget {
            max,
            state: Mutex::new(BudgetState::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, BudgetState> {
        lock(&self.state)
    }

    pub(crate) fn join(&self, pool: &Arc<Shared>) {
        let mut st = self.lock();
        st.members.retain(|member| member.strong_count() > 0);
        st.members.push(Arc::downgrade(pool));
    }

    /// Takes up to `wanted` units; when short, `pool` waits in line.
    pub(crate) fn take(&self, wanted: usize, pool: &Arc<Shared>) -> usize {
        let mut st = self.lock();
        let granted = wanted.min(self.max.saturating_sub(st.used));
        st.used += granted;
        if granted < wanted {
            let me = Arc::downgrade(pool);
            if !st.waiting.iter().any(|waiting| waiting.ptr_eq(&me)) {
                st.waiting.push_back(me);
            }
        }
        granted
    }

    /// Gives back `n` units; answers the pools to offer them to: every
    /// waiting pool, in line order. Each takes what it still needs and
    /// waits again if that is more than is left, so a unit offered to a
    /// pool that no longer needs it is not lost to the others.
    pub(crate) fn give_back(&self, n: usize) -> Vec<Arc<Shared>> {
        let mut st = self.lock();
        st.used = st.used.saturating_sub(n);
        if st.used >= self.max {
            return Vec::new();
        }
        st.waiting.drain(..).filter_map(|w| w.upgrade()).collect()
    }

    /// Whether a pool other than `pool` waits for a unit: then an idle
    /// connection of `pool` is better closed than kept.
    pub(crate) fn is_wanted_elsewhere(&self, pool: &Arc<Shared>) -> bool {
        let me = Arc::downgrade(pool);
        self.lock()
            .waiting
            .iter()
            .any(|waiting| !waiting.ptr_eq(&me) && waiting.strong_count() > 0)
    }

    /// The other pools, to ask one of them for an idle connection.
    pub(crate) fn others(&self, pool: &Arc<Shared>) -> Vec<Arc<Shared>> {
        let me = Arc::downgrade(pool);
        self.lock()
            .members
            .iter()
            .filter(|member| !member.ptr_eq(&me))
            .filter_map(Weak::upgrade)
            .collect()
    }
}
