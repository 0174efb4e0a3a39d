//! Seeded, deterministic fuzzers of wasmc, run through the library API:
//!
//! - [`gc_model`]: model-based testing of the externref collector (random
//!   programs over externref tables and globals, checked against an exact
//!   model and drop-counting host values);
//! - [`differential`]: wasm-smith modules run by wasmc and by the `wasmi`
//!   interpreter, results, traps, memories and globals compared; with
//!   [`edges`], the small modules of its edges profile.
//!
//! Both are driven by `src/bin/wasmc-fuzz.rs` (`make fuzz`), which runs cases
//! in worker processes so that a crash is reported with its seed, and
//! minimizes failures; `tests/gc_model.rs` and `tests/differential.rs` run a
//! bounded number of seeds in `make test`.

pub mod differential;
pub mod edges;
pub mod gc_model;

/// The outcome of one generated case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Everything matched.
    Pass,
    /// The case could not be judged (for example the reference interpreter
    /// ran out of stack where wasmc did not); counted, not a failure.
    Skip(String),
    /// A mismatch: the message says what differed.
    Fail(String),
}

/// SplitMix64: a small, fast, seedable generator. A case is a pure function
/// of its seed, so a failing seed reproduces on any machine.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5851_f42d_4c95_7f2d)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: u32) -> u32 {
        if n == 0 {
            0
        } else {
            (self.next_u64() % u64::from(n)) as u32
        }
    }

    /// A number in `0..n` (0 if `n` is 0), for 64-bit sizes.
    pub fn below_u64(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// An index in `0..n` (0 if `n` is 0).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den) < num
    }

    /// `n` random bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}
