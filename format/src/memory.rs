//! The linear-memory strategies and their sizes: how compiled code keeps
//! memory accesses in bounds, and how much address space the loader must
//! reserve for that to hold.
//!
//! ```text
//! Guard strategy, one memory:
//! base                                   base + reservation       + guard
//! |<--- accessible: current length --->|<-- inaccessible -->|<-- guard -->|
//! |                                                         |             |
//! |<------------------ reservation (>= 4 GiB) ------------->|             |
//! ```
//!
//! With a reservation of at least 4 GiB no 32-bit index can leave it, and a
//! static offset below the guard size lands in the guard region: the code
//! needs no bounds checks and an out-of-bounds access faults. The compiler
//! records the strategy in the artifact header; the loader allocates every
//! memory to match, and refuses a guard layout outside the limits below
//! (a smaller region would let the unchecked code reach host memory).

use serde::{Deserialize, Serialize};

/// Smallest guard-mode reservation: the whole 32-bit index space (4 GiB).
pub const MIN_GUARD_RESERVATION: u64 = 1 << 32;
/// Largest guard-mode reservation a loader accepts (8 GiB).
pub const MAX_GUARD_RESERVATION: u64 = 1 << 33;
/// Largest guard region a loader accepts (4 GiB).
pub const MAX_GUARD_SIZE: u64 = 1 << 32;

/// The compiler's default reservation: the smallest that needs no bounds
/// checks for 32-bit indices.
pub const DEFAULT_GUARD_RESERVATION: u64 = MIN_GUARD_RESERVATION;
/// The compiler's default guard region after the reservation: 2 GiB, covering
/// every static offset up to 2 GiB without a bounds check.
pub const DEFAULT_GUARD_SIZE: u64 = 1 << 31;

/// How linear memory accesses are kept in bounds. The loader must allocate
/// memories to match, so this is part of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemoryStrategy {
    /// Each memory reserves `reservation` bytes of address space followed by
    /// `guard` bytes of inaccessible guard region; 32-bit accesses with a
    /// static offset below `guard` are not bounds-checked and an out-of-bounds
    /// access faults into the reservation's inaccessible tail or the guard.
    /// The base never moves.
    Guard {
        /// Bytes of address space reserved per memory.
        reservation: u64,
        /// Bytes of guard region after the reservation.
        guard: u64,
    },
    /// Every access is compared with the memory's current length; memories
    /// reserve only what they need, and the base may move on `memory.grow`.
    Explicit,
}

impl MemoryStrategy {
    /// The compiler's default: [`DEFAULT_GUARD_RESERVATION`] plus
    /// [`DEFAULT_GUARD_SIZE`].
    pub const DEFAULT_GUARD: MemoryStrategy = MemoryStrategy::Guard {
        reservation: DEFAULT_GUARD_RESERVATION,
        guard: DEFAULT_GUARD_SIZE,
    };

    /// The largest guard layout a loader accepts ([`MAX_GUARD_RESERVATION`]
    /// plus [`MAX_GUARD_SIZE`]): a memory allocated with it (for example one
    /// the host creates before knowing which artifacts will import it) fits
    /// the code of every artifact the loader accepts.
    pub const LARGEST_GUARD: MemoryStrategy = MemoryStrategy::Guard {
        reservation: MAX_GUARD_RESERVATION,
        guard: MAX_GUARD_SIZE,
    };

    /// Whether a loader accepts this strategy: explicit checks, or a guard
    /// layout within [`MIN_GUARD_RESERVATION`]..=[`MAX_GUARD_RESERVATION`]
    /// and at most [`MAX_GUARD_SIZE`] of guard.
    pub fn is_supported(&self) -> bool {
        match *self {
            MemoryStrategy::Guard { reservation, guard } => {
                (MIN_GUARD_RESERVATION..=MAX_GUARD_RESERVATION).contains(&reservation)
                    && guard <= MAX_GUARD_SIZE
            }
            MemoryStrategy::Explicit => true,
        }
    }
}

impl core::fmt::Display for MemoryStrategy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemoryStrategy::Guard { reservation, guard } => {
                write!(f, "guard (reservation {reservation:#x}, guard {guard:#x})")
            }
            MemoryStrategy::Explicit => f.write_str("explicit bounds checks"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert!(MemoryStrategy::DEFAULT_GUARD.is_supported());
        assert!(MemoryStrategy::LARGEST_GUARD.is_supported());
        assert!(MemoryStrategy::Explicit.is_supported());
        let g = |reservation, guard| MemoryStrategy::Guard { reservation, guard };
        assert!(!g(MIN_GUARD_RESERVATION - 1, 0).is_supported());
        assert!(!g(MAX_GUARD_RESERVATION + 1, 0).is_supported());
        assert!(!g(MIN_GUARD_RESERVATION, MAX_GUARD_SIZE + 1).is_supported());
        // 32-bit indices cannot leave the smallest reservation.
        assert_eq!(
            MIN_GUARD_RESERVATION,
            crate::WASM32_MAX_PAGES * crate::WASM_PAGE_SIZE
        );
    }
}
