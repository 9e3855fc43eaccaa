//! Latency histograms, one run's figures, and medians across runs.

use std::time::Duration;

/// Sub-buckets per power of two: 2^7 = 128, so a recorded latency is off
/// by less than 0.8 %.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Latencies up to 2^40 ns (18 minutes); longer ones land in the last
/// bucket.
const MAX_BITS: u32 = 40;
const BUCKETS: usize = ((MAX_BITS - SUB_BITS + 1) as usize) << SUB_BITS;

/// A log-linear latency histogram in nanoseconds, as HdrHistogram lays
/// them out: exact below 128 ns, then 128 buckets per power of two.
///
/// Recording is an index computation and an increment into a table
/// allocated once, so the measuring loop allocates nothing and a client
/// pays no sampling cost that grows with the window.
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
        }
    }

    pub fn record(&mut self, latency: Duration) {
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.record_nanos(nanos);
    }

    pub fn record_nanos(&mut self, nanos: u64) {
        self.counts[index(nanos)] += 1;
        self.total += 1;
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The latency at quantile `q` (0.5 for p50), in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return value(i) as f64 / 1000.0;
            }
        }
        value(BUCKETS - 1) as f64 / 1000.0
    }
}

fn index(nanos: u64) -> usize {
    let v = nanos.min((1 << MAX_BITS) - 1);
    if v < SUB {
        return v as usize;
    }
    let exponent = 63 - v.leading_zeros();
    let shift = exponent - SUB_BITS;
    let mantissa = (v >> shift) - SUB;
    (((shift as u64 + 1) << SUB_BITS) + mantissa) as usize
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let shift = (i >> SUB_BITS) - 1;
    let mantissa = i & (SUB - 1);
    ((SUB + mantissa) << shift) + ((1 << shift) >> 1)
}

/// One run of one client in one scenario.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_s_per_100k: f64,
    pub requests: u64,
}

impl Sample {
    /// The figures of `requests` requests answered in `window`, with
    /// `cpu` CPU time spent on them.
    pub fn from_window(histogram: &Histogram, window: Duration, cpu: Duration) -> Sample {
        let requests = histogram.count();
        Sample::new(
            requests,
            window,
            cpu,
            histogram.quantile_us(0.50),
            histogram.quantile_us(0.99),
        )
    }

    pub fn new(requests: u64, window: Duration, cpu: Duration, p50_us: f64, p99_us: f64) -> Sample {
        let secs = window.as_secs_f64().max(f64::MIN_POSITIVE);
        let cpu_s_per_100k = if requests == 0 {
            0.0
        } else {
            cpu.as_secs_f64() / requests as f64 * 100_000.0
        };
        Sample {
            rps: requests as f64 / secs,
            p50_us,
            p99_us,
            cpu_s_per_100k,
            requests,
        }
    }
}

/// `ours / peer`, when both are figures (a client that measured nothing
/// has zeros).
pub fn ratio(ours: f64, peer: f64) -> Option<f64> {
    (ours > 0.0 && peer > 0.0).then(|| ours / peer)
}

/// Each figure's median across runs, taken figure by figure.
pub fn median(samples: &[Sample]) -> Sample {
    let of = |f: fn(&Sample) -> f64| median_of(samples.iter().map(f).collect());
    Sample {
        rps: of(|s| s.rps),
        p50_us: of(|s| s.p50_us),
        p99_us: of(|s| s.p99_us),
        cpu_s_per_100k: of(|s| s.cpu_s_per_100k),
        requests: of(|s| s.requests as f64) as u64,
    }
}

/// The median of `values`; the mean of the middle two for an even count.
pub fn median_of(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}
