//! The pooling allocator: preallocated slots for linear memories and
//! tables, and a cap on live instances, shared by every store of an engine
//! (opt-in: `Config::allocation_strategy`, as Wasmtime's
//! `InstanceAllocationStrategy::Pooling`).
//!
//! **Memory slots.** [`Pool::new`] reserves `total_memories` regions of
//! [`PoolLimits::slot_bytes`] each (address space only: `PROT_NONE`,
//! `MAP_NORESERVE`). A slot is large enough for the default guard layout
//! (4 GiB reservation + 2 GiB guard), so code compiled for it runs in a
//! slot unchanged; explicit-bounds-check memories use slots too and grow in
//! place. A memory never grows past [`PoolLimits::max_memory_size`].
//!
//! **Teardown and reuse, O(touched pages).** When a pooled memory is freed
//! its slot is *discarded*, not unmapped: `madvise(MADV_DONTNEED)` over the
//! pages that were accessible (the kernel frees only the ones present), so
//! anonymous pages read zero again and the copy-on-write image pages read
//! the image again, and whatever the memory grew past its initial size is
//! made inaccessible again. The slot remembers which module's which memory
//! it held ([`SlotKey`]): the next instance of that same memory finds its
//! initial contents (images included) already in place and does nothing
//! at all; any other memory first replaces the slot's pages with fresh
//! inaccessible zero pages ([`Mmap::clear`], dropping the image mappings)
//! and then maps its own. Either way a slot never shows what a previous
//! instance wrote: every page the previous instance could reach was
//! discarded before the slot went back to the free list.
//!
//! **Tables.** A pooled table's elements live in a vector of
//! `table_elements` capacity taken from the pool and given back (cleared)
//! when the table is freed; it never grows past that capacity, so it never
//! reallocates. At most `total_tables` are live.
//!
//! **Instances.** At most `total_core_instances` are live ([`InstancePermit`]).
//!
//! When a limit is reached, instantiation fails with an error naming it.

use crate::vm::sys::mmap::Mmap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use wasmc_format::{MemoryStrategy, WASM_PAGE_SIZE};

/// The sizes and counts of a [`Pool`] (the public
/// `PoolingAllocationConfig`, checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PoolLimits {
    pub total_core_instances: u32,
    pub total_memories: u32,
    pub total_tables: u32,
    /// The most bytes any pooled memory may have (a multiple of the Wasm
    /// page size, at most [`Self::slot_bytes`]).
    pub max_memory_size: u64,
    /// The most elements any pooled table may have.
    pub table_elements: u32,
}

impl PoolLimits {
    /// Address space reserved per memory slot: the default guard layout.
    pub const fn slot_bytes() -> u64 {
        match MemoryStrategy::DEFAULT_GUARD {
            MemoryStrategy::Guard { reservation, guard } => reservation + guard,
            MemoryStrategy::Explicit => 1 << 32,
        }
    }
}

/// Which memory a slot was last initialised for: a module (by its unique
/// id, never reused within a process) and a memory index in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SlotKey {
    pub module: u64,
    pub memory: u32,
}

/// A free memory slot: its mapping and what is in it.
struct FreeSlot {
    mmap: Mmap,
    /// Set when `[0, initial length)` of the slot is exactly the initial
    /// contents of that memory (images mapped, the rest zero, read-write)
    /// and everything past it is inaccessible.
    key: Option<SlotKey>,
}

/// An engine's pool (module docs).
pub(crate) struct Pool {
    limits: PoolLimits,
    /// Free memory slots; the most recently freed last (warm).
    free_memories: Mutex<Vec<FreeSlot>>,
    /// Free table vectors, cleared, `table_elements` capacity each.
    free_tables: Mutex<Vec<Vec<*mut u8>>>,
    live_tables: AtomicU32,
    live_instances: AtomicU32,
}

// SAFETY: the free table vectors are empty (they hold no pointers, only
// capacity), and the memory slots are owned mappings (`Mmap` is Send and
// Sync); everything else is atomics and mutexes.
unsafe impl Send for Pool {}
// SAFETY: as for `Send`: all shared access goes through the mutexes and
// atomics.
unsafe impl Sync for Pool {}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("limits", &self.limits)
            .finish()
    }
}

/// A memory slot taken from the pool: its mapping, and whether it already
/// holds the initial contents of the memory it was taken for.
pub(crate) struct TakenSlot {
    pub mmap: Mmap,
    pub ready: bool,
}

impl Pool {
    /// Reserves every memory slot. `Err` names what failed (a limit out of
    /// range, or the address space).
    pub(crate) fn new(limits: PoolLimits) -> Result<Arc<Pool>, String> {
        if limits.max_memory_size > PoolLimits::slot_bytes()
            || !limits.max_memory_size.is_multiple_of(WASM_PAGE_SIZE)
        {
            return Err(format!(
                "pooling allocator: max_memory_size of {} bytes must be a multiple of \
                 the page size (65536) and at most the slot size, {} bytes",
                limits.max_memory_size,
                PoolLimits::slot_bytes()
            ));
        }
        let slot = usize::try_from(PoolLimits::slot_bytes())
            .map_err(|_| "pooling allocator: slots do not fit the address space")?;
        let mut free = Vec::with_capacity(limits.total_memories as usize);
        for i in 0..limits.total_memories {
            let mmap = Mmap::reserve(slot).map_err(|e| {
                format!(
                    "pooling allocator: cannot reserve memory slot {i} of {} ({slot} bytes \
                     each): {e}",
                    limits.total_memories
                )
            })?;
            free.push(FreeSlot { mmap, key: None });
        }
        Ok(Arc::new(Pool {
            limits,
            free_memories: Mutex::new(free),
            free_tables: Mutex::new(Vec::new()),
            live_tables: AtomicU32::new(0),
            live_instances: AtomicU32::new(0),
        }))
    }

    pub(crate) fn limits(&self) -> &PoolLimits {
        &self.limits
    }

    /// Takes a memory slot for memory `key` of `len` bytes initially, made
    /// read-write over `[0, len)`: the slot that last held the same memory
    /// if one is free (`ready`: its contents are already the initial ones),
    /// else the most recently freed one, cleared.
    pub(crate) fn take_memory(&self, key: SlotKey, len: usize) -> Result<TakenSlot, String> {
        if len as u64 > self.limits.max_memory_size {
            return Err(format!(
                "pooling allocator: a memory of {len} bytes exceeds max_memory_size ({} bytes)",
                self.limits.max_memory_size
            ));
        }
        let slot = {
            let mut free = self.free_memories.lock().unwrap_or_else(|e| e.into_inner());
            let i = free
                .iter()
                .rposition(|s| s.key == Some(key))
                .or_else(|| free.len().checked_sub(1));
            let Some(i) = i else {
                return Err(format!(
                    "pooling allocator: all {} memory slots are in use (total_memories)",
                    self.limits.total_memories
                ));
            };
            free.swap_remove(i)
        };
        let mut mmap = slot.mmap;
        if slot.key == Some(key) {
            return Ok(TakenSlot { mmap, ready: true });
        }
        let init = mmap.clear().and_then(|()| mmap.make_accessible(0, len));
        if let Err(e) = init {
            // The slot's state is unknown: do not reuse it.
            return Err(format!(
                "pooling allocator: cannot prepare a memory slot: {e}"
            ));
        }
        Ok(TakenSlot { mmap, ready: false })
    }

    /// Gives a memory slot back. `key` is set when `[0, keep)` held memory
    /// `key`'s initial contents at instantiation; the slot is discarded
    /// (module docs) so that it holds exactly them again. A slot that
    /// cannot be discarded or cleared is unmapped instead of reused.
    pub(crate) fn return_memory(&self, mut mmap: Mmap, key: Option<SlotKey>, keep: usize) {
        let key = match key {
            Some(k) if mmap.discard(keep).is_ok() => Some(k),
            _ => {
                if mmap.clear().is_err() {
                    return; // dropped: unmapped
                }
                None
            }
        };
        let mut free = self.free_memories.lock().unwrap_or_else(|e| e.into_inner());
        free.push(FreeSlot { mmap, key });
    }

    /// Takes an empty element vector of `table_elements` capacity for a
    /// table of `min` elements.
    pub(crate) fn take_table(&self, min: u32) -> Result<Vec<*mut u8>, String> {
        if min > self.limits.table_elements {
            return Err(format!(
                "pooling allocator: a table of {min} elements exceeds table_elements ({})",
                self.limits.table_elements
            ));
        }
        let total = self.limits.total_tables;
        self.live_tables
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < total).then_some(n + 1)
            })
            .map_err(|_| {
                format!("pooling allocator: all {total} table slots are in use (total_tables)")
            })?;
        let v = self
            .free_tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        Ok(v.unwrap_or_else(|| Vec::with_capacity(self.limits.table_elements as usize)))
    }

    /// Gives a table's element vector back (its elements already released).
    pub(crate) fn return_table(&self, mut v: Vec<*mut u8>) {
        v.clear();
        if v.capacity() >= self.limits.table_elements as usize {
            self.free_tables
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(v);
        }
        self.live_tables.fetch_sub(1, Ordering::AcqRel);
    }

    /// Counts one more live instance, or says which limit refuses it.
    pub(crate) fn acquire_instance(self: &Arc<Pool>) -> Result<InstancePermit, String> {
        let total = self.limits.total_core_instances;
        self.live_instances
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < total).then_some(n + 1)
            })
            .map_err(|_| {
                format!(
                    "pooling allocator: all {total} instance slots are in use \
                     (total_core_instances)"
                )
            })?;
        Ok(InstancePermit(self.clone()))
    }
}

/// One live instance of a pool; dropping it frees the place.
pub(crate) struct InstancePermit(Arc<Pool>);

impl Drop for InstancePermit {
    fn drop(&mut self) {
        self.0.live_instances.fetch_sub(1, Ordering::AcqRel);
    }
}
