//! The timing loop both benchmark binaries share: warm up while doubling the
//! batch until one batch takes at least ~100 µs, then take per-iteration
//! samples (batch time / batch size) for `time`, at least 30 and at most
//! 5,000 of them. Each binary turns the samples into its own statistics.

use std::time::{Duration, Instant};

/// Per-iteration durations of `f`, unsorted.
pub fn samples(time: Duration, mut f: impl FnMut()) -> Vec<Duration> {
    let warm = Instant::now();
    let mut batch = 1u32;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        let e = t.elapsed();
        if e >= Duration::from_micros(100) && warm.elapsed() > Duration::from_millis(200) {
            break;
        }
        if e < Duration::from_micros(100) {
            batch *= 2;
        }
    }
    let mut per_iter = Vec::new();
    let start = Instant::now();
    while (start.elapsed() < time || per_iter.len() < 30) && per_iter.len() < 5000 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        per_iter.push(t.elapsed() / batch);
    }
    per_iter
}
