//! undici's interleaved weighted round robin (`lib/dispatcher/balanced-pool.js`).

/// The round robin's position: an index over the upstreams and the current
/// weight, lowered by the weights' GCD each cycle.
#[derive(Debug)]
pub(super) struct RoundRobin {
    index: usize,
    current_weight: i64,
}

/// What the round robin needs to know about an upstream.
#[derive(Clone, Copy, Debug)]
pub(super) struct Candidate {
    pub(super) weight: i64,
    /// Busy, closed or destroyed: skipped.
    pub(super) unavailable: bool,
}

impl RoundRobin {
    pub(super) fn new(max_weight: i64) -> Self {
        RoundRobin {
            index: 0,
            current_weight: max_weight,
        }
    }

    /// Starts over, as undici does when an upstream is added.
    pub(super) fn reset(&mut self, max_weight: i64) {
        self.index = 0;
        self.current_weight = max_weight;
    }

    /// The upstream to use, as undici's `kGetDispatcher`: the next one
    /// whose weight reaches the current weight; failing that, the
    /// heaviest available one. `None` when every upstream is unavailable.
    pub(super) fn pick(&mut self, candidates: &[Candidate], max_weight: i64) -> Option<usize> {
        let n = candidates.len();
        let mut heaviest = candidates.iter().position(|c| !c.unavailable)?;
        let gcd = candidates.iter().map(|c| c.weight).fold(0, gcd).max(1);
        for _ in 0..n {
            self.index = (self.index + 1) % n;
            let candidate = candidates[self.index];
            if !candidate.unavailable && candidate.weight > candidates[heaviest].weight {
                heaviest = self.index;
            }
            if self.index == 0 {
                self.current_weight -= gcd;
                if self.current_weight <= 0 {
                    self.current_weight = max_weight;
                }
            }
            if !candidate.unavailable && candidate.weight >= self.current_weight {
                return Some(self.index);
            }
        }
        self.current_weight = candidates[heaviest].weight;
        self.index = heaviest;
        Some(heaviest)
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spread(weights: &[i64], picks: usize) -> Vec<usize> {
        let candidates: Vec<Candidate> = weights
            .iter()
            .map(|&weight| Candidate {
                weight,
                unavailable: false,
            })
            .collect();
        let mut rr = RoundRobin::new(100);
        let mut counts = vec![0; weights.len()];
        for _ in 0..picks {
            counts[rr.pick(&candidates, 100).unwrap()] += 1;
        }
        counts
    }

    #[test]
    fn equal_weights_share_equally() {
        assert_eq!(spread(&[100, 100, 100], 300), vec![100, 100, 100]);
    }

    #[test]
    fn a_penalised_upstream_gets_less() {
        let counts = spread(&[100, 25], 500);
        assert!(counts[0] > 3 * counts[1], "{counts:?}");
        assert!(counts[1] > 0, "{counts:?}");
    }

    #[test]
    fn unavailable_upstreams_are_skipped() {
        let candidates = [
            Candidate {
                weight: 100,
                unavailable: true,
            },
            Candidate {
                weight: 10,
                unavailable: false,
            },
        ];
        let mut rr = RoundRobin::new(100);
        for _ in 0..10 {
            assert_eq!(rr.pick(&candidates, 100), Some(1));
        }
        let none = [Candidate {
            weight: 100,
            unavailable: true,
        }];
        assert_eq!(rr.pick(&none, 100), None);
    }
}
