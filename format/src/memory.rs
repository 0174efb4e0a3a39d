//! The linear-memory strategies and their sizes: how compiled code keeps
//! memory accesses in bounds, and how much address space the loader reserves
//! for that to hold.
//!
//! ```text
//! Every linear memory the loader creates:
//! base                                   base + reservation       + guard
//! |<--- accessible: current length --->|<-- inaccessible -->|<-- guard -->|
//! |                                                         |             |
//! |<------------- GUARD_RESERVATION (4 GiB) --------------->|<- 2 GiB --->|
//! ```
//!
//! With a reservation of 4 GiB no 32-bit index can leave it, and a static
//! offset below [`GUARD_SIZE`] lands in the guard region: code compiled for
//! [`MemoryStrategy::Guard`] needs no bounds checks and an out-of-bounds
//! access faults.
//!
//! **The sandbox belongs to the loader.** The sizes are constants of this
//! crate, not values an artifact chooses: the header only names which known
//! strategy the code was compiled for ([`MemoryLayout::strategy`], a tag) and
//! repeats the sizes the compiler assumed, and the loader refuses an unknown
//! tag or sizes other than its own ([`MemoryLayout::check`]). Whatever the
//! header says, the loader gives every memory the full guard layout (code
//! compiled for [`MemoryStrategy::Explicit`] checks bounds as well and runs
//! unchanged in it), so a header forged to say `Explicit` over guard-mode code
//! cannot drop a bounds check either.

use serde::{Deserialize, Serialize};

/// Address space reserved per linear memory: the whole 32-bit index space.
pub const GUARD_RESERVATION: u64 = 1 << 32;
/// Inaccessible guard region after the reservation: 2 GiB, covering every
/// static offset up to 2 GiB without a bounds check.
pub const GUARD_SIZE: u64 = 1 << 31;

/// How compiled code keeps linear memory accesses in bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryStrategy {
    /// 32-bit accesses with a static offset below [`GUARD_SIZE`] are not
    /// bounds-checked; they rely on [`GUARD_RESERVATION`] plus [`GUARD_SIZE`]
    /// of address space behind the base, which never moves.
    Guard,
    /// Every access is compared with the memory's current length, and the
    /// base is reloaded after calls (it may move).
    Explicit,
}

impl MemoryStrategy {
    /// The tag the header stores for this strategy.
    pub const fn tag(self) -> u32 {
        match self {
            MemoryStrategy::Guard => 1,
            MemoryStrategy::Explicit => 2,
        }
    }

    /// The strategy with header tag `tag`, if it is a known one.
    pub const fn from_tag(tag: u32) -> Option<MemoryStrategy> {
        match tag {
            1 => Some(MemoryStrategy::Guard),
            2 => Some(MemoryStrategy::Explicit),
            _ => None,
        }
    }
}

impl core::fmt::Display for MemoryStrategy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemoryStrategy::Guard => write!(
                f,
                "guard pages (reservation {:#x}, guard {:#x})",
                GUARD_RESERVATION, GUARD_SIZE
            ),
            MemoryStrategy::Explicit => f.write_str("explicit bounds checks"),
        }
    }
}

/// What the header records about memory: the strategy's tag and the sizes
/// the compiler assumed (for a loader to compare with its own constants; it
/// never allocates from them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MemoryLayout {
    /// [`MemoryStrategy::tag`].
    pub strategy: u32,
    /// The reservation the code assumes ([`GUARD_RESERVATION`]).
    pub reservation: u64,
    /// The guard region the code assumes ([`GUARD_SIZE`]).
    pub guard: u64,
}

impl MemoryLayout {
    /// What the compiler writes for code compiled for `strategy`.
    pub const fn of(strategy: MemoryStrategy) -> MemoryLayout {
        MemoryLayout {
            strategy: strategy.tag(),
            reservation: GUARD_RESERVATION,
            guard: GUARD_SIZE,
        }
    }

    /// The strategy, if the tag names a known one and the sizes are this
    /// crate's; otherwise an error a person can act on.
    pub fn check(&self) -> Result<MemoryStrategy, String> {
        let strategy = MemoryStrategy::from_tag(self.strategy).ok_or_else(|| {
            format!(
                "artifact names an unknown memory strategy (tag {}); this loader knows \
                 guard pages (tag 1) and explicit bounds checks (tag 2)",
                self.strategy
            )
        })?;
        if self.guard != GUARD_SIZE {
            return Err(format!(
                "guard size mismatch: artifact was compiled for a guard region of {:#x} bytes, \
                 this loader provides {:#x}",
                self.guard, GUARD_SIZE
            ));
        }
        if self.reservation != GUARD_RESERVATION {
            return Err(format!(
                "reservation size mismatch: artifact was compiled for a reservation of {:#x} \
                 bytes, this loader provides {:#x}",
                self.reservation, GUARD_RESERVATION
            ));
        }
        Ok(strategy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_layouts_pass() {
        for s in [MemoryStrategy::Guard, MemoryStrategy::Explicit] {
            assert_eq!(MemoryLayout::of(s).check(), Ok(s));
            assert_eq!(MemoryStrategy::from_tag(s.tag()), Some(s));
        }
        let mut l = MemoryLayout::of(MemoryStrategy::Guard);
        l.guard = 0;
        assert!(l.check().unwrap_err().starts_with("guard size mismatch"));
        let mut l = MemoryLayout::of(MemoryStrategy::Guard);
        l.reservation = 1 << 16;
        assert!(l.check().unwrap_err().contains("reservation size mismatch"));
        for tag in [0, 3, u32::MAX] {
            let mut l = MemoryLayout::of(MemoryStrategy::Guard);
            l.strategy = tag;
            assert!(l
                .check()
                .unwrap_err()
                .starts_with("artifact names an unknown memory strategy"));
        }
        // 32-bit indices cannot leave the reservation.
        assert_eq!(
            GUARD_RESERVATION,
            crate::WASM32_MAX_PAGES * crate::WASM_PAGE_SIZE
        );
    }
}
