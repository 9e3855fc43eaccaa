//! Issue 6's targets, checked against one run's medians.
//!
//! Each target is checked for every pair it covers (one of our clients
//! in one scenario, against one peer) where both have figures; the
//! report shows how many pairs missed and the worst one, so a run says
//! at a glance what it met instead of leaving that to the reader of the
//! ratio table. A pair without figures (a peer not installed) is not
//! counted.

use serde_json::{json, Value};

use crate::clients::ClientId;
use crate::memory::MemoryResult;
use crate::report::ScenarioResult;
use crate::scenario::{Compare, Scenario};
use crate::server::SMALL;
use crate::stats::{ratio, Sample};

/// Which figure a target divides.
#[derive(Clone, Copy)]
enum Figure {
    Rps,
    Cpu,
}

impl Figure {
    fn of(self, sample: &Sample) -> f64 {
        match self {
            Figure::Rps => sample.rps,
            Figure::Cpu => sample.cpu_s_per_100k,
        }
    }
}

/// How the ratio must compare with the bound.
#[derive(Clone, Copy)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

impl Bound {
    fn holds(self, ratio: f64) -> bool {
        match self {
            Bound::AtLeast(bound) => ratio >= bound,
            Bound::AtMost(bound) => ratio <= bound,
        }
    }

    /// Whether `a` is further from holding than `b`.
    fn worse(self, a: f64, b: f64) -> bool {
        match self {
            Bound::AtLeast(_) => a < b,
            Bound::AtMost(_) => a > b,
        }
    }
}

/// A ratio of ours to a peer that every covered pair must keep.
struct PeerTarget {
    text: &'static str,
    peer: ClientId,
    figure: Figure,
    bound: Bound,
    covers: fn(&Scenario) -> bool,
}

fn every_scenario(_: &Scenario) -> bool {
    true
}

/// "12 B bodies at N >= 16 and h2c" (h2c's 64 streams are 12 B too).
fn small_and_concurrent(scenario: &Scenario) -> bool {
    scenario.body_len == SMALL.len() && scenario.in_flight >= 16
}

const PEER_TARGETS: &[PeerTarget] = &[
    PeerTarget {
        text: "req/s at least 0.95x hyper-raw, every scenario",
        peer: ClientId::HyperRaw,
        figure: Figure::Rps,
        bound: Bound::AtLeast(0.95),
        covers: every_scenario,
    },
    PeerTarget {
        text: "CPU per request at most 1.05x hyper-raw, every scenario",
        peer: ClientId::HyperRaw,
        figure: Figure::Cpu,
        bound: Bound::AtMost(1.05),
        covers: every_scenario,
    },
    PeerTarget {
        text: "req/s never below reqwest",
        peer: ClientId::Reqwest,
        figure: Figure::Rps,
        bound: Bound::AtLeast(1.0),
        covers: every_scenario,
    },
    PeerTarget {
        text: "req/s never below hyper-util-legacy",
        peer: ClientId::HyperUtilLegacy,
        figure: Figure::Rps,
        bound: Bound::AtLeast(1.0),
        covers: every_scenario,
    },
    PeerTarget {
        text: "12 B at N >= 16 and h2c: req/s at least 1.3x reqwest",
        peer: ClientId::Reqwest,
        figure: Figure::Rps,
        bound: Bound::AtLeast(1.3),
        covers: small_and_concurrent,
    },
    PeerTarget {
        text: "12 B at N >= 16 and h2c: req/s at least 1.2x node-undici",
        peer: ClientId::NodeUndici,
        figure: Figure::Rps,
        bound: Bound::AtLeast(1.2),
        covers: small_and_concurrent,
    },
];

const STACK_TARGET: &str = "interceptor stack: req/s at least 0.95x the bare Agent";
const STACK_BOUND: Bound = Bound::AtLeast(0.95);
const MEMORY_TARGET: &str = "idle memory per connection at most hyper-util-legacy's";
const MEMORY_BOUND: Bound = Bound::AtMost(1.0);

/// One target over one run.
pub struct Check {
    text: &'static str,
    checked: usize,
    missed: usize,
    /// The ratio furthest from the bound, and where it was.
    worst: Option<(f64, String)>,
}

impl Check {
    fn new(text: &'static str) -> Check {
        Check {
            text,
            checked: 0,
            missed: 0,
            worst: None,
        }
    }

    fn record(&mut self, bound: Bound, ratio: f64, at: impl FnOnce() -> String) {
        self.checked += 1;
        if !bound.holds(ratio) {
            self.missed += 1;
        }
        if self
            .worst
            .as_ref()
            .is_none_or(|(w, _)| bound.worse(ratio, *w))
        {
            self.worst = Some((ratio, at()));
        }
    }

    /// `None` when no pair had figures.
    fn met(&self) -> Option<bool> {
        (self.checked > 0).then_some(self.missed == 0)
    }

    fn markdown_row(&self) -> String {
        let (worst, at) = self
            .worst
            .as_ref()
            .map_or(("n/a".to_owned(), ""), |(r, at)| {
                (format!("{r:.2}x"), at.as_str())
            });
        let met = match self.met() {
            Some(true) => "yes",
            Some(false) => "no",
            None => "n/a",
        };
        format!(
            "| {} | {met} | {} of {} | {worst} | {at} |",
            self.text, self.missed, self.checked
        )
    }

    fn json(&self) -> Value {
        json!({
            "target": self.text,
            "met": self.met(),
            "checked": self.checked,
            "missed": self.missed,
            "worst": self
                .worst
                .as_ref()
                .map(|(r, at)| json!({ "ratio": (r * 1000.0).round() / 1000.0, "at": at })),
        })
    }
}

/// Every target of issue 6 over the scenarios and memory of one run.
pub fn check(scenarios: &[ScenarioResult], memory: Option<&MemoryResult>) -> Vec<Check> {
    let mut checks = Vec::new();
    for target in PEER_TARGETS {
        let mut check = Check::new(target.text);
        for result in scenarios {
            let scenario = result.scenario;
            if !matches!(scenario.compare, Compare::Peers) || !(target.covers)(scenario) {
                continue;
            }
            let Some(peer) = result.median(target.peer) else {
                continue;
            };
            for (client, _) in result.outcomes.iter().filter(|(c, _)| c.is_ours()) {
                let Some(ours) = result.median(*client) else {
                    continue;
                };
                if let Some(r) = ratio(target.figure.of(ours), target.figure.of(peer)) {
                    check.record(target.bound, r, || {
                        format!("{}, {}", scenario.name, client.name())
                    });
                }
            }
        }
        checks.push(check);
    }

    let mut stack = Check::new(STACK_TARGET);
    for result in scenarios {
        if let Compare::Baseline { ours, base } = result.scenario.compare {
            let pair = result.median(ours).zip(result.median(base));
            if let Some(r) = pair.and_then(|(o, b)| ratio(o.rps, b.rps)) {
                stack.record(STACK_BOUND, r, || result.scenario.name.to_owned());
            }
        }
    }
    checks.push(stack);

    let mut idle = Check::new(MEMORY_TARGET);
    if let Some(memory) = memory {
        let pair = memory
            .per_connection_kib("undici-pool")
            .zip(memory.per_connection_kib("hyper-util-legacy"));
        if let Some(r) = pair.and_then(|(ours, legacy)| ratio(ours, legacy)) {
            idle.record(MEMORY_BOUND, r, || "memory, undici-pool".to_owned());
        }
    }
    checks.push(idle);
    checks
}

/// The section of the markdown report.
pub fn markdown(checks: &[Check]) -> String {
    let mut md = String::from(
        "\n### Issue 6's targets (every pair of our client and scenario the target covers)\n\n\
         | target | met | pairs missed | worst | worst at |\n|---|---|---|---:|---|\n",
    );
    for check in checks {
        md.push_str(&check.markdown_row());
        md.push('\n');
    }
    md
}

/// The `targets` array of the JSON report.
pub fn json(checks: &[Check]) -> Value {
    Value::Array(checks.iter().map(Check::json).collect())
}
